/*
 * src/sdk/b3.c - Zipkin B3 propagation: the single "b3" header
 * ({traceid}-{spanid}[-{sampled}[-{parentspanid}]], or just a sampling state
 * "0", "1", "d") and the multi-header form (x-b3-traceid, x-b3-spanid,
 * x-b3-sampled, x-b3-flags, x-b3-parentspanid).
 *
 * Trace ids of 16 hex digits (64-bit) are zero-padded on the left to 128 bits.
 * The B3 spec encodes ids as "lower-hex": uppercase is rejected, as in
 * traceparent. Output always has 32-digit trace ids.
 */
#include "sdk/propagation_internal.h"

#include <string.h>
#include <strings.h>

#include "common/hex.h"

static bool all_lchex(clew_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (clew__lchex[(unsigned char)s.ptr[i]] == 0) {
            return false;
        }
    }
    return true;
}

static bool parse_trace_id(clew_str s, clew_trace_id *out)
{
    return (s.len == 16 || s.len == 32) && all_lchex(s) && clew__trace_id_parse(s.ptr, s.len, out);
}

static bool parse_span_id(clew_str s, clew_span_id *out)
{
    return s.len == 16 && all_lchex(s) && clew__span_id_parse(s.ptr, s.len, out);
}

static bool str_is(clew_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.ptr, lit, n) == 0;
}

static void fill(clew_span_context *out, const clew_trace_id *t, const clew_span_id *s,
                 bool sampled)
{
    out->trace_id = *t;
    out->span_id = *s;
    out->trace_flags = sampled ? CLEW_TRACE_FLAG_SAMPLED : 0;
    out->is_remote = true;
    clew_tracestate_init(&out->tracestate);
}

/* ---- single header ---------------------------------------------------------- */

static clew_status b3s_extract(const clew_carrier *c, clew_span_context *out, clew_baggage *bag)
{
    (void)bag;
    clew_str v;
    if (c->get(c->ctx, "b3", &v, 1) == 0) {
        return CLEW_ENOTFOUND;
    }
    v = clew__trim_ows(v);
    /* A lone sampling state carries no ids: there is no span context to continue. */
    if (str_is(v, "0") || str_is(v, "1") || str_is(v, "d")) {
        return CLEW_ENOTFOUND;
    }
    clew_str f[4];
    size_t n = 0, start = 0;
    while (start <= v.len) {
        const char *dash = v.len > start ? memchr(v.ptr + start, '-', v.len - start) : NULL;
        size_t end = dash ? (size_t)(dash - v.ptr) : v.len;
        if (n == 4) {
            return CLEW_EPARSE;
        }
        f[n++] = (clew_str){v.ptr + start, end - start};
        start = end + 1;
    }
    clew_trace_id t;
    clew_span_id s, parent;
    if (n < 2 || !parse_trace_id(f[0], &t) || !parse_span_id(f[1], &s)) {
        return CLEW_EPARSE;
    }
    bool sampled = false;
    if (n >= 3) {
        if (str_is(f[2], "1") || str_is(f[2], "d")) {
            sampled = true;
        } else if (!str_is(f[2], "0")) {
            return CLEW_EPARSE;
        }
    }
    if (n == 4 && !parse_span_id(f[3], &parent)) {
        return CLEW_EPARSE;
    }
    fill(out, &t, &s, sampled);
    return CLEW_OK;
}

static clew_status b3s_inject(const clew_span_context *sc, const clew_baggage *bag,
                              const clew_carrier *c)
{
    (void)bag;
    if (!clew_span_context_is_valid(sc)) {
        return CLEW_OK;
    }
    char buf[32 + 1 + 16 + 1 + 1 + 1];
    clew__trace_id_hex(&sc->trace_id, buf);
    buf[32] = '-';
    clew__span_id_hex(&sc->span_id, buf + 33);
    buf[49] = '-';
    buf[50] = clew_span_context_is_sampled(sc) ? '1' : '0';
    buf[51] = '\0';
    return c->set(c->ctx, "b3", (clew_str){buf, 51});
}

const clew__propagator_ops clew__b3_single_ops = {"b3", b3s_inject, b3s_extract};

/* ---- multiple headers ------------------------------------------------------- */

static bool get1(const clew_carrier *c, const char *key, clew_str *v)
{
    if (c->get(c->ctx, key, v, 1) == 0) {
        return false;
    }
    *v = clew__trim_ows(*v);
    return true;
}

static clew_status b3m_extract(const clew_carrier *c, clew_span_context *out, clew_baggage *bag)
{
    (void)bag;
    clew_str tv, sv, v;
    bool has_t = get1(c, "x-b3-traceid", &tv);
    bool has_s = get1(c, "x-b3-spanid", &sv);
    if (!has_t && !has_s) {
        return CLEW_ENOTFOUND;
    }
    clew_trace_id t;
    clew_span_id s;
    if (!has_t || !has_s || !parse_trace_id(tv, &t) || !parse_span_id(sv, &s)) {
        return CLEW_EPARSE;
    }
    /* Debug (x-b3-flags: 1) implies accept; "true" is the legacy spelling of "1". */
    bool sampled =
        (get1(c, "x-b3-flags", &v) && str_is(v, "1")) ||
        (get1(c, "x-b3-sampled", &v) && (str_is(v, "1") || str_is(v, "true") || str_is(v, "d")));
    fill(out, &t, &s, sampled);
    return CLEW_OK;
}

static clew_status b3m_inject(const clew_span_context *sc, const clew_baggage *bag,
                              const clew_carrier *c)
{
    (void)bag;
    if (!clew_span_context_is_valid(sc)) {
        return CLEW_OK;
    }
    char tid[33], sid[17];
    clew__trace_id_hex(&sc->trace_id, tid);
    clew__span_id_hex(&sc->span_id, sid);
    clew_status rc = c->set(c->ctx, "x-b3-traceid", (clew_str){tid, 32});
    if (rc == CLEW_OK) {
        rc = c->set(c->ctx, "x-b3-spanid", (clew_str){sid, 16});
    }
    if (rc == CLEW_OK) {
        rc = c->set(c->ctx, "x-b3-sampled",
                    (clew_str){clew_span_context_is_sampled(sc) ? "1" : "0", 1});
    }
    return rc;
}

const clew__propagator_ops clew__b3_multi_ops = {"b3multi", b3m_inject, b3m_extract};
