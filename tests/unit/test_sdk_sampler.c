/*
 * tests/unit/test_sdk_sampler.c - the samplers (wire.md §3.2, §3.3): decisions,
 * descriptions, traceidratio determinism, the superset property and the
 * observed rate, the parentbased delegate table, and the consistent
 * probability sampler's th/rv handling in the `ot` tracestate entry.
 *
 * Trace ids come from a fixed-seed splitmix64 sequence, so every run sees the
 * same ids and the rate checks cannot flake; the bounds are still the ones a
 * random sample would meet with the stated confidence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clew/clew.h"

static uint64_t seed = 0x1234567887654321ull;
static uint64_t next64(void)
{
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static clew_trace_id random_tid(void)
{
    clew_trace_id t;
    uint64_t a = next64(), b = next64();
    memcpy(t.bytes, &a, 8);
    memcpy(t.bytes + 8, &b, 8);
    return t;
}

/* A trace id whose low 56 bits (bytes 9..15) are r. */
static clew_trace_id tid_with_r(uint64_t r)
{
    clew_trace_id t;
    memset(t.bytes, 0x11, sizeof(t.bytes));
    for (int i = 15; i >= 9; i--) {
        t.bytes[i] = (uint8_t)r;
        r >>= 8;
    }
    return t;
}

static clew_span_context parent_ctx(bool remote, bool sampled)
{
    clew_span_context sc;
    clew_span_context_init(&sc);
    memset(sc.trace_id.bytes, 0x22, 16);
    memset(sc.span_id.bytes, 0x33, 8);
    sc.trace_flags = sampled ? CLEW_TRACE_FLAG_SAMPLED : 0;
    sc.is_remote = remote;
    return sc;
}

static bool sampled(const clew_sampler *s, const clew_span_context *parent,
                    const clew_trace_id *tid)
{
    return clew_sampler_should_sample(s, parent, tid, NULL) == CLEW_SAMPLING_RECORD_AND_SAMPLE;
}

static void test_always_on_off(void **state)
{
    (void)state;
    clew_sampler *on, *off;
    assert_int_equal(clew_sampler_always_on(&on), CLEW_OK);
    assert_int_equal(clew_sampler_always_off(&off), CLEW_OK);
    assert_string_equal(clew_sampler_description(on), "AlwaysOnSampler");
    assert_string_equal(clew_sampler_description(off), "AlwaysOffSampler");
    clew_span_context ps = parent_ctx(false, true), pn = parent_ctx(true, false);
    for (int i = 0; i < 100; i++) {
        clew_trace_id t = random_tid();
        assert_true(sampled(on, NULL, &t));
        assert_true(sampled(on, &pn, &t)); /* ignores the parent */
        assert_false(sampled(off, NULL, &t));
        assert_false(sampled(off, &ps, &t));
    }
    clew_sampler_destroy(on);
    clew_sampler_destroy(off);
    clew_sampler_destroy(NULL);
    assert_int_equal(clew_sampler_traceidratio(0.5, NULL), CLEW_EINVAL);
    assert_int_equal(clew_sampler_traceidratio(0.0 / 0.0, &on), CLEW_EINVAL);
}

/* The documented rule: sampled iff low56(trace id) >= (1 - r) * 2^56. */
static void test_ratio_rule_and_description(void **state)
{
    (void)state;
    clew_sampler *s;
    assert_int_equal(clew_sampler_traceidratio(0.25, &s), CLEW_OK);
    assert_string_equal(clew_sampler_description(s), "TraceIdRatioBased{0.25}");
    uint64_t t = 0xc0000000000000ull;
    clew_trace_id below = tid_with_r(t - 1), at = tid_with_r(t), top = tid_with_r((1ull << 56) - 1);
    assert_false(sampled(s, NULL, &below));
    assert_true(sampled(s, NULL, &at));
    assert_true(sampled(s, NULL, &top));
    /* the parent's flag does not matter */
    clew_span_context pn = parent_ctx(false, false);
    assert_true(sampled(s, &pn, &at));
    clew_sampler_destroy(s);

    clew_sampler *zero, *one;
    assert_int_equal(clew_sampler_traceidratio(0.0, &zero), CLEW_OK);
    assert_int_equal(clew_sampler_traceidratio(1.0, &one), CLEW_OK);
    for (int i = 0; i < 1000; i++) {
        clew_trace_id id = random_tid();
        assert_false(sampled(zero, NULL, &id));
        assert_true(sampled(one, NULL, &id));
    }
    clew_sampler_destroy(zero);
    clew_sampler_destroy(one);
}

/* Determinism, superset property and observed rate. 100,000 ids at 0.25: the
 * standard deviation of the rate is sqrt(0.25 * 0.75 / 1e5) = 0.00137, so the
 * bound 0.005 is 3.6 sigma: a correct sampler passes with probability > 99.9%
 * for random ids (and always for this fixed seed). */
static void test_ratio_determinism_superset_rate(void **state)
{
    (void)state;
    const double ratios[] = {0.01, 0.1, 0.25, 0.5, 0.9};
    clew_sampler *s[5];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(clew_sampler_traceidratio(ratios[i], &s[i]), CLEW_OK);
    }
    int count[5] = {0};
    const int n = 100000;
    for (int k = 0; k < n; k++) {
        clew_trace_id id = random_tid();
        bool prev = false;
        for (int i = 0; i < 5; i++) {
            bool d = sampled(s[i], NULL, &id);
            assert_int_equal(d, sampled(s[i], NULL, &id)); /* deterministic */
            if (prev) {
                assert_true(d); /* a lower ratio's sample is inside a higher one's */
            }
            prev = d;
            count[i] += d;
        }
    }
    double rate = (double)count[2] / n;
    assert_true(rate > 0.245 && rate < 0.255);
    for (int i = 0; i < 5; i++) {
        double r = (double)count[i] / n;
        assert_true(r > ratios[i] - 0.01 && r < ratios[i] + 0.01);
        clew_sampler_destroy(s[i]);
    }
}

/* Each of the five delegates is chosen by (has parent, remote, sampled). The
 * delegates here are the opposite of the defaults, so each case shows which one ran. */
static void test_parentbased_table(void **state)
{
    (void)state;
    clew_sampler *d[5];
    assert_int_equal(clew_sampler_always_off(&d[0]), CLEW_OK); /* root */
    assert_int_equal(clew_sampler_always_off(&d[1]), CLEW_OK); /* remote sampled */
    assert_int_equal(clew_sampler_always_on(&d[2]), CLEW_OK);  /* remote not sampled */
    assert_int_equal(clew_sampler_always_off(&d[3]), CLEW_OK); /* local sampled */
    assert_int_equal(clew_sampler_always_on(&d[4]), CLEW_OK);  /* local not sampled */
    clew_sampler *pb, *def;
    assert_int_equal(clew_sampler_parentbased(d[0], d[1], d[2], d[3], d[4], &pb), CLEW_OK);
    assert_int_equal(clew_sampler_parentbased(NULL, NULL, NULL, NULL, NULL, &def), CLEW_OK);
    clew_trace_id id = random_tid();
    clew_span_context rs = parent_ctx(true, true), rn = parent_ctx(true, false),
                      ls = parent_ctx(false, true), ln = parent_ctx(false, false);
    clew_span_context invalid;
    clew_span_context_init(&invalid);
    struct {
        const clew_span_context *parent;
        bool custom, dflt;
    } rows[] = {
        {NULL, false, true}, {&invalid, false, true}, {&rs, false, true},
        {&rn, true, false},  {&ls, false, true},      {&ln, true, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(sampled(pb, rows[i].parent, &id), rows[i].custom);
        assert_int_equal(sampled(def, rows[i].parent, &id), rows[i].dflt);
    }
    assert_string_equal(clew_sampler_description(def),
                        "ParentBased{root=AlwaysOnSampler,remoteParentSampled=AlwaysOnSampler,"
                        "remoteParentNotSampled=AlwaysOffSampler,localParentSampled="
                        "AlwaysOnSampler,localParentNotSampled=AlwaysOffSampler}");
    clew_sampler_destroy(pb);
    clew_sampler_destroy(def);
}

static const char *ot_of(const clew_tracestate *ts)
{
    static char out[300];
    clew_str v;
    if (clew_tracestate_get(ts, "ot", &v) != CLEW_OK) {
        return "<absent>";
    }
    snprintf(out, sizeof(out), "%.*s", (int)v.len, v.ptr);
    return out;
}

/* th from the ratio (4 hex digits, trailing zeros dropped), written only when sampled. */
static void test_consistent_threshold(void **state)
{
    (void)state;
    struct {
        double ratio;
        const char *th;
    } rows[] = {{1.0, "th:0"},
                {0.5, "th:8"},
                {0.25, "th:c"},
                {0.125, "th:e"},
                {0.01, "th:fd71"}}; /* 0.99*2^56 = 0xfd70a3d7..., rounded to 4 digits */
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        clew_sampler *s;
        assert_int_equal(clew_sampler_consistent_probability(rows[i].ratio, &s), CLEW_OK);
        clew_trace_id id = tid_with_r((1ull << 56) - 1);
        clew_tracestate ts;
        assert_int_equal(clew_sampler_should_sample(s, NULL, &id, &ts),
                         CLEW_SAMPLING_RECORD_AND_SAMPLE);
        assert_string_equal(ot_of(&ts), rows[i].th);
        clew_trace_id low = tid_with_r(0);
        if (rows[i].ratio < 1.0) {
            assert_int_equal(clew_sampler_should_sample(s, NULL, &low, &ts), CLEW_SAMPLING_DROP);
            assert_string_equal(ot_of(&ts), "<absent>");
        }
        clew_sampler_destroy(s);
    }
    clew_sampler *s;
    assert_int_equal(clew_sampler_consistent_probability(0.25, &s), CLEW_OK);
    assert_string_equal(clew_sampler_description(s), "ProbabilitySampler{0.25}");
    clew_sampler_destroy(s);
}

/* rv in the parent's `ot` entry replaces the trace id's bits and is never
 * overwritten; other members and sub-keys survive; a stale th is replaced or,
 * on a negative decision, removed. */
static void test_consistent_rv(void **state)
{
    (void)state;
    clew_sampler *s;
    assert_int_equal(clew_sampler_consistent_probability(0.25, &s), CLEW_OK);
    clew_span_context p = parent_ctx(true, true);
    const char *hdr = "vendor=v1,ot=th:8;rv:ffffffffffffff";
    assert_int_equal(clew_tracestate_parse(hdr, strlen(hdr), &p.tracestate), CLEW_OK);
    clew_trace_id low = tid_with_r(0); /* the trace id alone would be dropped */
    clew_tracestate ts;
    assert_int_equal(clew_sampler_should_sample(s, &p, &low, &ts), CLEW_SAMPLING_RECORD_AND_SAMPLE);
    assert_string_equal(ot_of(&ts), "th:c;rv:ffffffffffffff");
    clew_str v;
    assert_int_equal(clew_tracestate_get(&ts, "vendor", &v), CLEW_OK);

    const char *hdr2 = "ot=th:0;rv:00000000000001";
    assert_int_equal(clew_tracestate_parse(hdr2, strlen(hdr2), &p.tracestate), CLEW_OK);
    clew_trace_id high = tid_with_r((1ull << 56) - 1); /* would be kept without rv */
    assert_int_equal(clew_sampler_should_sample(s, &p, &high, &ts), CLEW_SAMPLING_DROP);
    assert_string_equal(ot_of(&ts), "rv:00000000000001");

    /* a malformed rv (13 digits) is ignored: the trace id decides */
    const char *hdr3 = "ot=rv:fffffffffffff";
    assert_int_equal(clew_tracestate_parse(hdr3, strlen(hdr3), &p.tracestate), CLEW_OK);
    assert_int_equal(clew_sampler_should_sample(s, &p, &low, &ts), CLEW_SAMPLING_DROP);
    clew_sampler_destroy(s);
}

/* Through a provider: a sampled root span's context carries ot=th:... */
static void test_consistent_in_span(void **state)
{
    (void)state;
    clew_provider_config c;
    clew_provider_config_init(&c);
    assert_int_equal(clew_sampler_consistent_probability(1.0, &c.sampler), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_tracer *t;
    assert_int_equal(clew_provider_tracer(p, "x", NULL, &t), CLEW_OK);
    clew_span *s = clew_span_start(t, "root", NULL);
    clew_span_context sc;
    clew_span_context_get(s, &sc);
    assert_string_equal(ot_of(&sc.tracestate), "th:0");
    clew_span_end(s, 0);
    clew_provider_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_always_on_off),
        cmocka_unit_test(test_ratio_rule_and_description),
        cmocka_unit_test(test_ratio_determinism_superset_rate),
        cmocka_unit_test(test_parentbased_table),
        cmocka_unit_test(test_consistent_threshold),
        cmocka_unit_test(test_consistent_rv),
        cmocka_unit_test(test_consistent_in_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
