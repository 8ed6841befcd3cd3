/*
 * src/sdk/tracecontext.c - the W3C traceparent header (Trace Context Level 2)
 * and the "tracecontext" propagator (traceparent + tracestate).
 *
 * The traceparent path is hand-written with a lookup table and no allocation:
 * inject + extract has a budget of 40 ns (design.md §7).
 */
#include "sdk/propagation_internal.h"

#include <string.h>

/* Not clew__hex_digit: traceparent allows lowercase digits only, and a table lookup
 * with 0 for "invalid" lets decode_lchex OR the checks together instead of branching
 * per digit, which the 40 ns budget needs. */
#define H(c, v) [c] = (v) + 1
const uint8_t clew__lchex[256] = {
    H('0', 0), H('1', 1), H('2', 2),  H('3', 3),  H('4', 4),  H('5', 5),  H('6', 6),  H('7', 7),
    H('8', 8), H('9', 9), H('a', 10), H('b', 11), H('c', 12), H('d', 13), H('e', 14), H('f', 15),
};
#undef H

static const char hexdig[16] = "0123456789abcdef";

clew_str clew__trim_ows(clew_str s)
{
    while (s.len > 0 && clew__is_ows(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && clew__is_ows(s.ptr[s.len - 1])) {
        s.len--;
    }
    return s;
}

void clew_span_context_init(clew_span_context *sc)
{
    memset(&sc->trace_id, 0, sizeof(sc->trace_id));
    memset(&sc->span_id, 0, sizeof(sc->span_id));
    sc->trace_flags = 0;
    sc->is_remote = false;
    clew_tracestate_init(&sc->tracestate);
}

bool clew_span_context_is_valid(const clew_span_context *sc)
{
    if (sc == NULL) {
        return false;
    }
    uint8_t t = 0, p = 0;
    for (size_t i = 0; i < 16; i++) {
        t |= sc->trace_id.bytes[i];
    }
    for (size_t i = 0; i < 8; i++) {
        p |= sc->span_id.bytes[i];
    }
    return t != 0 && p != 0;
}

bool clew_span_context_is_sampled(const clew_span_context *sc)
{
    return sc != NULL && (sc->trace_flags & CLEW_TRACE_FLAG_SAMPLED) != 0;
}

/*
 * Decodes n bytes from 2n lowercase hex digits. Returns the OR of all bytes
 * plus 0x100 when a digit is invalid, so one comparison checks both "bad digit"
 * and "all zero".
 */
static unsigned decode_lchex_scalar(const char *s, uint8_t *out, size_t n)
{
    unsigned bad = 0, any = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned hi = clew__lchex[(unsigned char)s[2 * i]];
        unsigned lo = clew__lchex[(unsigned char)s[2 * i + 1]];
        bad |= (hi == 0) | (lo == 0);
        uint8_t b = (uint8_t)(((hi - 1) << 4) | ((lo - 1) & 15));
        out[i] = b;
        any |= b;
    }
    return bad ? 0x100 : any;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * The same, eight digits at a time (SWAR): the traceparent budget is 40 ns for
 * inject + extract, and a byte loop over 50 digits alone costs about that.
 * Every byte must be ASCII and in '0'-'9' or 'a'-'f'; for such bytes a
 * digit's value is (c & 0xf) + 9 * bit6(c).
 */
#define ONES(b) (0x0101010101010101ULL * (b))
static unsigned decode_lchex(const char *s, uint8_t *out, size_t n)
{
    if (n % 4 != 0) {
        return decode_lchex_scalar(s, out, n);
    }
    uint64_t bad = 0, any = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint64_t x;
        memcpy(&x, s + 2 * i, 8);
        /* Adding (0x80 - lo) sets bit 7 of a byte iff byte >= lo; no carries for ASCII. */
        uint64_t ascii = x & ONES(0x80);
        uint64_t ge_0 = x + ONES(0x80 - '0');
        uint64_t gt_9 = x + ONES(0x7f - '9');
        uint64_t ge_a = x + ONES(0x80 - 'a');
        uint64_t gt_f = x + ONES(0x7f - 'f');
        uint64_t ok = ((ge_0 & ~gt_9) | (ge_a & ~gt_f)) & ONES(0x80);
        bad |= ascii | (ok ^ ONES(0x80));
        uint64_t v = (x & ONES(0x0f)) + 9 * ((x >> 6) & ONES(0x01));
        /* Pair up nibbles: byte 2k becomes (digit 2k << 4) | digit 2k+1. */
        uint64_t t = ((v << 4) | (v >> 8)) & 0x00ff00ff00ff00ffULL;
        t = (t | (t >> 8)) & 0x0000ffff0000ffffULL;
        t = (t | (t >> 16)) & 0x00000000ffffffffULL;
        uint32_t w = (uint32_t)t;
        memcpy(out + i, &w, 4);
        any |= w;
    }
    return bad ? 0x100 : (any != 0);
}

/* Writes 2n lowercase hex digits of n bytes (n a multiple of 4), eight at a time. */
static void encode_lchex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i += 4) {
        uint64_t x = (uint64_t)in[i] | (uint64_t)in[i + 1] << 16 | (uint64_t)in[i + 2] << 32 |
                     (uint64_t)in[i + 3] << 48;
        uint64_t nib = ((x >> 4) & 0x000f000f000f000fULL) | ((x & 0x000f000f000f000fULL) << 8);
        /* '0' + n, plus 39 more for n >= 10 (n + 6 carries into bit 4). */
        uint64_t c = nib + ONES('0') + (((nib + ONES(6)) >> 4) & ONES(1)) * 39;
        memcpy(out + 2 * i, &c, 8);
    }
}
#undef ONES
#else
static unsigned decode_lchex(const char *s, uint8_t *out, size_t n)
{
    return decode_lchex_scalar(s, out, n);
}

static void encode_lchex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
}
#endif

clew_status clew_traceparent_parse(const char *s, size_t len, clew_span_context *out)
{
    if (s == NULL || out == NULL) {
        return CLEW_EINVAL;
    }
    clew_str v = clew__trim_ows((clew_str){s, len});
    const char *p = v.ptr;
    if (v.len < CLEW_TRACEPARENT_LEN) {
        return CLEW_EPARSE;
    }
    unsigned vh = clew__lchex[(unsigned char)p[0]], vl = clew__lchex[(unsigned char)p[1]];
    if (vh == 0 || vl == 0 || p[2] != '-') {
        return CLEW_EPARSE;
    }
    unsigned version = ((vh - 1) << 4) | (vl - 1);
    if (version == 0xff) {
        return CLEW_EPARSE;
    }
    if (version == 0) {
        /* Version 00 is exactly 55 characters: nothing may follow the flags. */
        if (v.len != CLEW_TRACEPARENT_LEN) {
            return CLEW_EPARSE;
        }
    } else if (v.len > CLEW_TRACEPARENT_LEN && p[CLEW_TRACEPARENT_LEN] != '-') {
        /* A future version may append fields, but only after a "-". */
        return CLEW_EPARSE;
    }
    if (p[35] != '-' || p[52] != '-') {
        return CLEW_EPARSE;
    }
    clew_trace_id tid;
    clew_span_id sid;
    uint8_t flags;
    unsigned t = decode_lchex(p + 3, tid.bytes, 16);
    unsigned sp = decode_lchex(p + 36, sid.bytes, 8);
    unsigned fl = decode_lchex_scalar(p + 53, &flags, 1);
    if (t == 0 || t > 0xff || sp == 0 || sp > 0xff || fl > 0xff) {
        return CLEW_EPARSE;
    }
    out->trace_id = tid;
    out->span_id = sid;
    out->trace_flags = flags;
    out->is_remote = true;
    clew_tracestate_init(&out->tracestate);
    return CLEW_OK;
}

clew_status clew_traceparent_format(const clew_span_context *sc, char out[CLEW_TRACEPARENT_SIZE])
{
    if (out == NULL || !clew_span_context_is_valid(sc)) {
        return CLEW_EINVAL;
    }
    char *o = out;
    *o++ = '0';
    *o++ = '0';
    *o++ = '-';
    encode_lchex(sc->trace_id.bytes, 16, o);
    o += 32;
    *o++ = '-';
    encode_lchex(sc->span_id.bytes, 8, o);
    o += 16;
    *o++ = '-';
    /* Reserved bits are never forwarded: the processing model sets unknown flags to 0. */
    uint8_t f = sc->trace_flags & CLEW_TRACE_FLAGS_KNOWN;
    *o++ = '0';
    *o++ = hexdig[f];
    *o = '\0';
    return CLEW_OK;
}

/* ---- the tracecontext propagator ------------------------------------------- */

static clew_status tc_inject(const clew_span_context *sc, const clew_baggage *bag,
                             const clew_carrier *c)
{
    (void)bag;
    char tp[CLEW_TRACEPARENT_SIZE];
    if (clew_traceparent_format(sc, tp) != CLEW_OK) {
        return CLEW_OK; /* nothing to send for an invalid context */
    }
    clew_status rc = c->set(c->ctx, "traceparent", (clew_str){tp, CLEW_TRACEPARENT_LEN});
    if (rc != CLEW_OK) {
        return rc;
    }
    /* Sending an empty tracestate is allowed but discouraged by the spec. */
    if (sc->tracestate.len > 0) {
        rc = c->set(c->ctx, "tracestate", clew_tracestate_str(&sc->tracestate));
    }
    return rc;
}

static clew_status tc_extract(const clew_carrier *c, clew_span_context *out, clew_baggage *bag)
{
    (void)bag;
    clew_str vals[CLEW__MAX_HEADER_VALUES];
    size_t n = c->get(c->ctx, "traceparent", vals, 2);
    if (n == 0) {
        return CLEW_ENOTFOUND;
    }
    /* Two traceparent headers: the spec's test suite treats this as invalid. */
    if (n > 1) {
        return CLEW_EPARSE;
    }
    clew_span_context sc;
    clew_status rc = clew_traceparent_parse(vals[0].ptr, vals[0].len, &sc);
    if (rc != CLEW_OK) {
        /* An invalid traceparent means the tracestate must not be parsed at all. */
        return CLEW_EPARSE;
    }
    n = c->get(c->ctx, "tracestate", vals, CLEW__MAX_HEADER_VALUES);
    if (n > CLEW__MAX_HEADER_VALUES) {
        n = 0; /* more header lines than we look at: discard rather than use a part */
    }
    if (n > 0 && clew__tracestate_parse_parts(vals, n, &sc.tracestate) != CLEW_OK) {
        /* A tracestate failure never affects the traceparent: keep an empty list. */
        clew_tracestate_init(&sc.tracestate);
    }
    memcpy(out, &sc, offsetof(clew_span_context, tracestate));
    out->tracestate.len = sc.tracestate.len;
    out->tracestate.count = sc.tracestate.count;
    memcpy(out->tracestate.member_off, sc.tracestate.member_off,
           sc.tracestate.count * sizeof(sc.tracestate.member_off[0]));
    memcpy(out->tracestate.buf, sc.tracestate.buf, sc.tracestate.len);
    return CLEW_OK;
}

const clew__propagator_ops clew__tracecontext_ops = {"tracecontext", tc_inject, tc_extract};
