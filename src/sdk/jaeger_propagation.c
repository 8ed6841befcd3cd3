/*
 * src/sdk/jaeger_propagation.c - the Jaeger "uber-trace-id" header:
 * {trace-id}:{span-id}:{parent-span-id}:{flags}. Ids are hex and may be
 * shorter than full length (leading zeros dropped); they are left-padded.
 * Flags are 1-2 hex digits, bit 0 = sampled. Some HTTP stacks percent-encode
 * the colons, so "%3A" is accepted as ":".
 */
#include "sdk/propagation_internal.h"

#include <string.h>

#include "common/hex.h"

/* Longest value we consider: 32 + 16 + 16 + 2 digits, 3 colons spelled "%3A". */
#define JAEGER_MAX_LEN 80

static clew_status jg_extract(const clew_carrier *c, clew_span_context *out, clew_baggage *bag)
{
    (void)bag;
    clew_str raw;
    if (c->get(c->ctx, "uber-trace-id", &raw, 1) == 0) {
        return CLEW_ENOTFOUND;
    }
    raw = clew__trim_ows(raw);
    if (raw.len > JAEGER_MAX_LEN) {
        return CLEW_EPARSE;
    }
    char v[JAEGER_MAX_LEN];
    size_t n = 0;
    for (size_t i = 0; i < raw.len; i++) {
        if (raw.ptr[i] == '%' && i + 2 < raw.len && raw.ptr[i + 1] == '3' &&
            (raw.ptr[i + 2] == 'A' || raw.ptr[i + 2] == 'a')) {
            v[n++] = ':';
            i += 2;
        } else {
            v[n++] = raw.ptr[i];
        }
    }
    clew_str f[4];
    size_t nf = 0, start = 0;
    while (start <= n) {
        const char *colon = n > start ? memchr(v + start, ':', n - start) : NULL;
        size_t end = colon ? (size_t)(colon - v) : n;
        if (nf == 4) {
            return CLEW_EPARSE;
        }
        f[nf++] = (clew_str){v + start, end - start};
        start = end + 1;
    }
    clew_trace_id t;
    clew_span_id s;
    if (nf != 4 || !clew__trace_id_parse(f[0].ptr, f[0].len, &t) ||
        !clew__span_id_parse(f[1].ptr, f[1].len, &s) || f[3].len < 1 || f[3].len > 2) {
        return CLEW_EPARSE;
    }
    int hi = f[3].len == 2 ? clew__hex_digit(f[3].ptr[0]) : 0;
    int lo = clew__hex_digit(f[3].ptr[f[3].len - 1]);
    if (hi < 0 || lo < 0) {
        return CLEW_EPARSE;
    }
    /* The parent field is deprecated ("0" when absent); it must still be hex. */
    for (size_t i = 0; i < f[2].len; i++) {
        if (clew__hex_digit(f[2].ptr[i]) < 0) {
            return CLEW_EPARSE;
        }
    }
    if (f[2].len == 0 || f[2].len > 16) {
        return CLEW_EPARSE;
    }
    out->trace_id = t;
    out->span_id = s;
    out->trace_flags = (lo & 1) ? CLEW_TRACE_FLAG_SAMPLED : 0;
    out->is_remote = true;
    clew_tracestate_init(&out->tracestate);
    return CLEW_OK;
}

static clew_status jg_inject(const clew_span_context *sc, const clew_baggage *bag,
                             const clew_carrier *c)
{
    (void)bag;
    if (!clew_span_context_is_valid(sc)) {
        return CLEW_OK;
    }
    /* 32 + ':' + 16 + ":0:" + 2 */
    char buf[32 + 1 + 16 + 3 + 2 + 1];
    clew__trace_id_hex(&sc->trace_id, buf);
    buf[32] = ':';
    clew__span_id_hex(&sc->span_id, buf + 33);
    memcpy(buf + 49, ":0:0", 4);
    buf[53] = clew_span_context_is_sampled(sc) ? '1' : '0';
    buf[54] = '\0';
    return c->set(c->ctx, "uber-trace-id", (clew_str){buf, 54});
}

const clew__propagator_ops clew__jaeger_ops = {"jaeger", jg_inject, jg_extract};
