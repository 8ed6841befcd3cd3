/*
 * src/sdk/sampler.c - always_on, always_off, traceidratio, parentbased and the
 * consistent probability sampler (OTEP 235 th/rv).
 *
 * The decision runs on every span start, before any attribute is copied, so it
 * is a switch over the sampler kind with no allocation and no lock. Both ratio
 * samplers compare a 56-bit randomness value R with a rejection threshold T
 * (sample iff R >= T, T = round((1 - ratio) * 2^56)): a higher ratio has a
 * lower T and therefore samples a superset of what a lower ratio samples.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "sdk/sdk_internal.h"

#define TWO56 (1ull << 56)

static uint64_t ratio_threshold(double ratio)
{
    if (!(ratio > 0.0)) {
        return TWO56;
    }
    if (ratio >= 1.0) {
        return 0;
    }
    /* + 0.5 and truncation: round to nearest without libm (libclew links libc only) */
    uint64_t accept = (uint64_t)(ratio * (double)TWO56 + 0.5);
    if (accept == 0) {
        accept = 1; /* the smallest representable probability, 2^-56 */
    }
    return TWO56 - accept;
}

static clew_status make(clew__sampler_kind kind, double ratio, clew_sampler **out)
{
    if (out == NULL || ratio != ratio) { /* NaN */
        return CLEW_EINVAL;
    }
    clew_sampler *s = clew__calloc(1, sizeof(*s));
    if (s == NULL) {
        return CLEW_ENOMEM;
    }
    s->kind = kind;
    s->ratio = ratio;
    char buf[96];
    switch (kind) {
    case CLEW__SAMPLER_ON:
        snprintf(buf, sizeof(buf), "AlwaysOnSampler");
        break;
    case CLEW__SAMPLER_OFF:
        snprintf(buf, sizeof(buf), "AlwaysOffSampler");
        break;
    case CLEW__SAMPLER_RATIO:
        s->threshold = ratio_threshold(ratio);
        snprintf(buf, sizeof(buf), "TraceIdRatioBased{%g}", ratio);
        break;
    case CLEW__SAMPLER_CONSISTENT: {
        uint64_t t = ratio_threshold(ratio);
        /* 4 hex digits of precision (the spec's recommendation), unless rounding
         * would turn a tiny probability into zero. */
        uint64_t t4 = ((t + (1ull << 39)) >> 40) << 40;
        if (t4 < TWO56) {
            t = t4;
        }
        s->threshold = t;
        if (t < TWO56) {
            char hex[15];
            snprintf(hex, sizeof(hex), "%014llx", (unsigned long long)t);
            size_t n = 14;
            while (n > 1 && hex[n - 1] == '0') {
                n--;
            }
            hex[n] = '\0';
            snprintf(s->th, sizeof(s->th), "%s", hex);
        }
        snprintf(buf, sizeof(buf), "ProbabilitySampler{%g}", ratio);
        break;
    }
    case CLEW__SAMPLER_PARENT:
        buf[0] = '\0';
        break;
    }
    s->desc = clew__strdup(buf);
    if (s->desc == NULL) {
        clew__free(s);
        return CLEW_ENOMEM;
    }
    *out = s;
    return CLEW_OK;
}

clew_status clew_sampler_always_on(clew_sampler **out)
{
    return make(CLEW__SAMPLER_ON, 1.0, out);
}

clew_status clew_sampler_always_off(clew_sampler **out)
{
    return make(CLEW__SAMPLER_OFF, 0.0, out);
}

clew_status clew_sampler_traceidratio(double ratio, clew_sampler **out)
{
    return make(CLEW__SAMPLER_RATIO, ratio, out);
}

clew_status clew_sampler_consistent_probability(double ratio, clew_sampler **out)
{
    return make(CLEW__SAMPLER_CONSISTENT, ratio, out);
}

clew_status clew_sampler_parentbased(clew_sampler *root, clew_sampler *remote_sampled,
                                     clew_sampler *remote_not_sampled, clew_sampler *local_sampled,
                                     clew_sampler *local_not_sampled, clew_sampler **out)
{
    clew_sampler *d[5] = {root, remote_sampled, remote_not_sampled, local_sampled,
                          local_not_sampled};
    static const bool default_on[5] = {true, true, false, true, false};
    clew_status rc = CLEW_OK;
    for (int i = 0; i < 5 && rc == CLEW_OK; i++) {
        if (d[i] == NULL) {
            rc = default_on[i] ? clew_sampler_always_on(&d[i]) : clew_sampler_always_off(&d[i]);
        }
    }
    clew_sampler *s = NULL;
    if (rc == CLEW_OK) {
        rc = make(CLEW__SAMPLER_PARENT, 0.0, &s);
    }
    char *desc = NULL;
    if (rc == CLEW_OK) {
        size_t len = 128;
        for (int i = 0; i < 5; i++) {
            len += strlen(d[i]->desc);
        }
        desc = clew__malloc(len);
        if (desc == NULL) {
            rc = CLEW_ENOMEM;
        } else {
            snprintf(desc, len,
                     "ParentBased{root=%s,remoteParentSampled=%s,remoteParentNotSampled=%s,"
                     "localParentSampled=%s,localParentNotSampled=%s}",
                     d[0]->desc, d[1]->desc, d[2]->desc, d[3]->desc, d[4]->desc);
        }
    }
    if (rc != CLEW_OK) {
        for (int i = 0; i < 5; i++) {
            clew_sampler_destroy(d[i]);
        }
        clew_sampler_destroy(s);
        return out == NULL ? CLEW_EINVAL : rc;
    }
    clew__free(s->desc);
    s->desc = desc;
    memcpy(s->d, d, sizeof(d));
    *out = s;
    return CLEW_OK;
}

void clew_sampler_destroy(clew_sampler *s)
{
    if (s == NULL) {
        return;
    }
    for (int i = 0; i < 5; i++) {
        clew_sampler_destroy(s->d[i]);
    }
    clew__free(s->desc);
    clew__free(s);
}

const char *clew_sampler_description(const clew_sampler *s)
{
    return s == NULL ? "ParentBased{root=AlwaysOnSampler,remoteParentSampled=AlwaysOnSampler,"
                       "remoteParentNotSampled=AlwaysOffSampler,localParentSampled=AlwaysOnSampler,"
                       "localParentNotSampled=AlwaysOffSampler}"
                     : s->desc;
}

/* The low 56 bits of the trace id: bytes 9..15, big-endian. */
static uint64_t trace_id_r(const clew_trace_id *tid)
{
    uint64_t r = 0;
    for (int i = 9; i < 16; i++) {
        r = (r << 8) | tid->bytes[i];
    }
    return r;
}

/* Finds sub-key `key` ("rv", "th") in the `ot` value. */
static bool ot_subkey(clew_str ot, const char *key, clew_str *out)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < ot.len) {
        size_t j = i;
        while (j < ot.len && ot.ptr[j] != ';') {
            j++;
        }
        if (j - i > klen && memcmp(ot.ptr + i, key, klen) == 0 && ot.ptr[i + klen] == ':') {
            out->ptr = ot.ptr + i + klen + 1;
            out->len = j - i - klen - 1;
            return true;
        }
        i = j + 1;
    }
    return false;
}

static bool parse_rv(clew_str v, uint64_t *out)
{
    if (v.len != 14) {
        return false;
    }
    uint64_t r = 0;
    for (size_t i = 0; i < 14; i++) {
        char c = v.ptr[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) {
            return false;
        }
        r = (r << 4) | (uint64_t)d;
    }
    *out = r;
    return true;
}

/* Rewrites `ot` with th set to `th` (NULL = removed), other sub-keys kept in order. */
static void ot_write_th(clew_tracestate *ts, const char *th)
{
    clew_str ot = {NULL, 0};
    char val[CLEW_TRACESTATE_MAX_VALUE + 1];
    size_t n = 0;
    bool had = clew_tracestate_get(ts, "ot", &ot) == CLEW_OK;
    if (th != NULL) {
        n = (size_t)snprintf(val, sizeof(val), "th:%s", th);
    }
    size_t i = 0;
    while (had && i < ot.len) {
        size_t j = i;
        while (j < ot.len && ot.ptr[j] != ';') {
            j++;
        }
        bool is_th = j - i >= 3 && memcmp(ot.ptr + i, "th:", 3) == 0;
        if (!is_th && j > i) {
            if (n + 1 + (j - i) >= sizeof(val)) {
                break; /* the spec caps `ot` at 256 characters: drop what does not fit */
            }
            if (n > 0) {
                val[n++] = ';';
            }
            memcpy(val + n, ot.ptr + i, j - i);
            n += j - i;
        }
        i = j + 1;
    }
    val[n] = '\0';
    if (n == 0) {
        if (had) {
            clew_status rc = clew_tracestate_delete(ts, "ot");
            (void)rc; /* present, so it cannot be missing */
        }
        return;
    }
    if (th == NULL && had && ot.len == n && memcmp(ot.ptr, val, n) == 0) {
        return; /* nothing changed: keep the member where it is */
    }
    /* a failure leaves ts unchanged, which still propagates a valid state */
    clew_status rc = clew_tracestate_set(ts, "ot", val);
    (void)rc;
}

clew_sampling_decision clew__sample(const clew_sampler *s, const clew_span_context *parent,
                                    const clew_trace_id *tid, clew_tracestate *ts)
{
    bool has_parent = parent != NULL && clew_span_context_is_valid(parent);
    if (s == NULL) {
        if (!has_parent) {
            return CLEW_SAMPLING_RECORD_AND_SAMPLE;
        }
        return (parent->trace_flags & CLEW_TRACE_FLAG_SAMPLED) ? CLEW_SAMPLING_RECORD_AND_SAMPLE
                                                               : CLEW_SAMPLING_DROP;
    }
    switch (s->kind) {
    case CLEW__SAMPLER_ON:
        return CLEW_SAMPLING_RECORD_AND_SAMPLE;
    case CLEW__SAMPLER_OFF:
        return CLEW_SAMPLING_DROP;
    case CLEW__SAMPLER_RATIO:
        return trace_id_r(tid) >= s->threshold ? CLEW_SAMPLING_RECORD_AND_SAMPLE
                                               : CLEW_SAMPLING_DROP;
    case CLEW__SAMPLER_CONSISTENT: {
        uint64_t r = trace_id_r(tid);
        clew_str ot, rv;
        if (ts != NULL && clew_tracestate_get(ts, "ot", &ot) == CLEW_OK &&
            ot_subkey(ot, "rv", &rv)) {
            uint64_t v;
            if (parse_rv(rv, &v)) {
                r = v;
            }
        }
        bool keep = r >= s->threshold;
        if (ts != NULL) {
            clew_str th;
            bool had_th = clew_tracestate_get(ts, "ot", &ot) == CLEW_OK && ot_subkey(ot, "th", &th);
            if (keep) {
                ot_write_th(ts, s->th);
            } else if (had_th) {
                ot_write_th(ts, NULL);
            }
        }
        return keep ? CLEW_SAMPLING_RECORD_AND_SAMPLE : CLEW_SAMPLING_DROP;
    }
    case CLEW__SAMPLER_PARENT: {
        if (!has_parent) {
            return clew__sample(s->d[0], parent, tid, ts);
        }
        bool sampled = (parent->trace_flags & CLEW_TRACE_FLAG_SAMPLED) != 0;
        int idx = parent->is_remote ? (sampled ? 1 : 2) : (sampled ? 3 : 4);
        return clew__sample(s->d[idx], parent, tid, ts);
    }
    }
    return CLEW_SAMPLING_DROP;
}

int clew__sample_root_fixed(const clew_sampler *s)
{
    if (s == NULL) {
        return CLEW_SAMPLING_RECORD_AND_SAMPLE; /* parentbased(always_on) */
    }
    switch (s->kind) {
    case CLEW__SAMPLER_ON:
        return CLEW_SAMPLING_RECORD_AND_SAMPLE;
    case CLEW__SAMPLER_OFF:
        return CLEW_SAMPLING_DROP;
    case CLEW__SAMPLER_PARENT:
        return clew__sample_root_fixed(s->d[0]);
    default:
        return -1;
    }
}

clew_sampling_decision clew_sampler_should_sample(const clew_sampler *s,
                                                  const clew_span_context *parent,
                                                  const clew_trace_id *trace_id,
                                                  clew_tracestate *out_tracestate)
{
    clew_tracestate tmp;
    clew_tracestate_init(&tmp);
    if (parent != NULL && clew_span_context_is_valid(parent)) {
        clew__tracestate_copy(&tmp, &parent->tracestate);
    }
    if (trace_id == NULL) {
        return CLEW_SAMPLING_DROP;
    }
    clew_sampling_decision d = clew__sample(s, parent, trace_id, &tmp);
    if (out_tracestate != NULL) {
        *out_tracestate = tmp;
    }
    return d;
}
