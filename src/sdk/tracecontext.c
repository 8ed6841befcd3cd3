/*
 * src/sdk/tracecontext.c - the W3C traceparent header (Trace Context Level 2)
 * and the "tracecontext" propagator (traceparent + tracestate).
 *
 * The traceparent path is hand-written with a lookup table and no allocation:
 * inject + extract has a budget of 40 ns (design.md §7).
 */
#include "sdk/propagation_internal.h"

#include <string.h>
#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#endif

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

const char clew__name_traceparent[12] = "traceparent";
const char clew__name_tracestate[11] = "tracestate";

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

/* A context is valid when both ids are non-zero (inline for inject). */
static inline bool sc_valid(const clew_span_context *sc)
{
    if (sc == NULL) {
        return false;
    }
    uint64_t t0, t1, p;
    memcpy(&t0, sc->trace_id.bytes, 8);
    memcpy(&t1, sc->trace_id.bytes + 8, 8);
    memcpy(&p, sc->span_id.bytes, 8);
    return (t0 | t1) != 0 && p != 0;
}

bool clew_span_context_is_valid(const clew_span_context *sc)
{
    return sc_valid(sc);
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

#if defined(__SSE2__) && defined(__x86_64__)
/*
 * The same, sixteen digits at a time with SSE2 (every x86-64 has it): the
 * SWAR version below took about 35 instructions per eight digits, which made
 * the hex codec the largest part of inject + extract. n must be a multiple
 * of 8 (trace and span ids). Signed byte compares are right here: a byte
 * above 0x7f is negative, so below '0' and rejected.
 */
static inline __attribute__((always_inline)) unsigned decode_lchex(const char *s, uint8_t *out,
                                                                   size_t n)
{
    if (n % 8 != 0) {
        return decode_lchex_scalar(s, out, n);
    }
    __m128i bad = _mm_setzero_si128(), any = _mm_setzero_si128();
    for (size_t i = 0; i < n; i += 8) {
        /* two 8-byte loads, not one of 16: a header value just written by
         * memcpy (inject, then extract in the same process) is in the store
         * buffer as wide overlapping stores, and a 16-byte load across two
         * of them cannot be forwarded and stalls until they retire */
        __m128i v =
            _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(const void *)(s + 2 * i)),
                               _mm_loadl_epi64((const __m128i *)(const void *)(s + 2 * i + 8)));
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('a' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('f' + 1)));
        bad = _mm_or_si128(bad, _mm_andnot_si128(_mm_or_si128(digit, lower), _mm_set1_epi8(-1)));
        /* '0'-'9' -> 0-9, 'a'-'f' -> 1-6 + 9 */
        __m128i nib = _mm_add_epi8(_mm_and_si128(v, _mm_set1_epi8(0x0f)),
                                   _mm_and_si128(lower, _mm_set1_epi8(9)));
        /* each 16-bit lane holds (low digit << 8) | high digit: make it one byte */
        __m128i w = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(nib, _mm_set1_epi16(0x00ff)), 4),
                                 _mm_srli_epi16(nib, 8));
        __m128i bytes = _mm_packus_epi16(w, w);
        _mm_storel_epi64((__m128i *)(void *)(out + i), bytes);
        any = _mm_or_si128(any, bytes);
    }
    if (_mm_movemask_epi8(bad) != 0) {
        return 0x100;
    }
    /* packus wrote each result into both halves: the low 8 bytes hold them all */
    return _mm_cvtsi128_si64(any) != 0;
}

/* Writes 2n lowercase hex digits of n bytes (n a multiple of 8), sixteen at a time. */
static void encode_lchex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i += 8) {
        __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)(in + i));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), _mm_set1_epi8(0x0f));
        __m128i lo = _mm_and_si128(x, _mm_set1_epi8(0x0f));
        __m128i nib = _mm_unpacklo_epi8(hi, lo);
        /* '0' + n, plus 39 more ('a' - '0' - 10) for n >= 10 */
        __m128i c = _mm_add_epi8(nib, _mm_set1_epi8('0'));
        c = _mm_add_epi8(
            c, _mm_and_si128(_mm_cmpgt_epi8(nib, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10)));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * i), c);
    }
}
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
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

static inline void copy8(uint8_t *dst, const uint8_t *src)
{
    uint64_t v;
    memcpy(&v, src, 8);
    memcpy(dst, &v, 8);
}

clew_status clew_traceparent_parse(const char *s, size_t len, clew_span_context *out)
{
    if (s == NULL || out == NULL) {
        return CLEW_EINVAL;
    }
    clew_str v = {s, len};
    if (len > 0 && (clew__is_ows(s[0]) || clew__is_ows(s[len - 1]))) {
        v = clew__trim_ows(v); /* the call only when there is something to trim */
    }
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
    /* copied in the 8-byte pieces decode_lchex stored: a 16-byte load of tid
     * could not be forwarded from two 8-byte stores and would stall */
    copy8(out->trace_id.bytes, tid.bytes);
    copy8(out->trace_id.bytes + 8, tid.bytes + 8);
    copy8(out->span_id.bytes, sid.bytes);
    out->trace_flags = flags;
    out->is_remote = true;
    out->tracestate.len = 0;
    out->tracestate.count = 0;
    return CLEW_OK;
}

/* Writes the CLEW_TRACEPARENT_LEN characters of a valid context's traceparent
 * (no NUL). */
static void tp_write(const clew_span_context *sc, char *o)
{
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
    *o = hexdig[f];
}

clew_status clew_traceparent_format(const clew_span_context *sc, char out[CLEW_TRACEPARENT_SIZE])
{
    if (out == NULL || !sc_valid(sc)) {
        return CLEW_EINVAL;
    }
    tp_write(sc, out);
    out[CLEW_TRACEPARENT_LEN] = '\0';
    return CLEW_OK;
}

/* ---- the tracecontext propagator ------------------------------------------- */

static clew_status tc_inject(const clew_span_context *sc, const clew_baggage *bag,
                             const clew_carrier *c)
{
    (void)bag;
    if (!sc_valid(sc)) {
        return CLEW_OK; /* nothing to send for an invalid context */
    }
    /* into the SDK's own header list: written in place, no copy */
    char *dst;
    clew_status rc = clew__carrier_reserve(c, clew__name_traceparent, CLEW_TRACEPARENT_LEN, &dst);
    if (rc == CLEW_OK) {
        tp_write(sc, dst);
    } else if (rc == CLEW_EUNSUPPORTED) {
        char tp[CLEW_TRACEPARENT_SIZE];
        tp_write(sc, tp);
        rc = c->set(c->ctx, clew__name_traceparent, (clew_str){tp, CLEW_TRACEPARENT_LEN});
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    /* Sending an empty tracestate is allowed but discouraged by the spec. */
    if (sc->tracestate.len > 0) {
        rc = c->set(c->ctx, clew__name_tracestate, clew_tracestate_str(&sc->tracestate));
    }
    return rc;
}

static clew_status tc_extract(const clew_carrier *c, clew_span_context *out, clew_baggage *bag)
{
    (void)bag;
    clew_str vals[CLEW__MAX_HEADER_VALUES];
    size_t n = c->get(c->ctx, clew__name_traceparent, vals, 2);
    if (n == 0) {
        return CLEW_ENOTFOUND;
    }
    /* Two traceparent headers: the spec's test suite treats this as invalid. */
    if (n > 1) {
        return CLEW_EPARSE;
    }
    /* Straight into *out: the traceparent parser leaves it untouched on
     * failure, and from its success on this extract succeeds, so no copy of
     * a whole context is needed. */
    clew_status rc = clew_traceparent_parse(vals[0].ptr, vals[0].len, out);
    if (rc != CLEW_OK) {
        /* An invalid traceparent means the tracestate must not be parsed at all. */
        return CLEW_EPARSE;
    }
    n = c->get(c->ctx, clew__name_tracestate, vals, CLEW__MAX_HEADER_VALUES);
    if (n > CLEW__MAX_HEADER_VALUES) {
        n = 0; /* more header lines than we look at: discard rather than use a part */
    }
    if (n > 0 && clew__tracestate_parse_parts(vals, n, &out->tracestate) != CLEW_OK) {
        /* A tracestate failure never affects the traceparent: keep an empty list. */
        clew_tracestate_init(&out->tracestate);
    }
    return CLEW_OK;
}

const clew__propagator_ops clew__tracecontext_ops = {"tracecontext", tc_inject, tc_extract};
