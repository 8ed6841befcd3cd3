/*
 * tests/unit/test_tail_policy.c - every tail sampling policy alone and combined
 * (drop veto, and, composite allocation), run through the engine with a fake clock:
 * which traces are kept, why, and the adjusted count they carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "sampling/sampler.h"

#define MS  UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

/* ---- fixture: a config from YAML, an engine on a fake clock, recorded decisions ---- */

#define MAX_DEC 20000

typedef struct fixture {
    uint64_t clock_ns;
    clew_tail_config *cfg;
    clew_tail_engine *eng;
    clew_tail_decision dec[MAX_DEC];
    size_t n_dec;
} fixture;

static uint64_t fake_clock(void *ud)
{
    return ((fixture *)ud)->clock_ns;
}

static void on_decision(const clew_tail_decision *d, void *ud)
{
    fixture *f = ud;
    assert_true(f->n_dec < MAX_DEC);
    f->dec[f->n_dec++] = *d;
}

static fixture *fx_new(const char *policies_yaml)
{
    fixture *f = clew__calloc(1, sizeof(*f));
    assert_non_null(f);
    f->clock_ns = 1000 * SEC;
    char yaml[4096];
    snprintf(yaml, sizeof(yaml), "tail_sampling:\n  decision_wait: 30s\n  policies:\n%s",
             policies_yaml);
    clew_config_error err;
    clew_status rc = clew__tail_config_load_buffer("t.yaml", yaml, strlen(yaml), &f->cfg, &err);
    if (rc != CLEW_OK) {
        print_error("config refused: %s\n%s\n", err.msg, yaml);
        fail();
    }
    assert_non_null(f->cfg);
    clew_tail_hooks h = {.on_decision = on_decision, .clock = fake_clock, .ud = f};
    assert_int_equal(clew__tail_engine_new(f->cfg, &h, &f->eng), CLEW_OK);
    return f;
}

static void fx_free(fixture *f)
{
    clew__tail_engine_free(f->eng);
    clew__tail_config_free(f->cfg);
    clew__free(f);
}

/* A span builder: ids from small numbers, times in ms since an epoch. */
typedef struct tspan {
    clew_span_data s;
    clew_kv kv[4];
    clew_resource res;
    clew_kv res_kv[2];
} tspan;

static void tspan_init(tspan *t, uint32_t trace, uint8_t span, uint8_t parent, uint64_t start_ms,
                       uint64_t end_ms)
{
    memset(t, 0, sizeof(*t));
    t->s.trace_id.bytes[0] = 0xab;
    memcpy(&t->s.trace_id.bytes[12], &trace, 4);
    t->s.trace_id.bytes[8] = (uint8_t)(trace * 7);
    t->s.span_id.bytes[7] = span;
    t->s.parent_span_id.bytes[7] = parent;
    t->s.start_ns = UINT64_C(1700000000000) * MS + start_ms * MS;
    t->s.end_ns = UINT64_C(1700000000000) * MS + end_ms * MS;
    t->s.name = (clew_str){"op", 2};
    t->s.attrs.items = t->kv;
    t->res.attrs.items = t->res_kv;
    t->s.resource = &t->res;
}

static clew_str cs(const char *s)
{
    return (clew_str){s, strlen(s)};
}

static void add_str(tspan *t, const char *k, const char *v)
{
    clew_kv *kv = &t->kv[t->s.attrs.n++];
    kv->key = cs(k);
    kv->value.type = CLEW_VALUE_STRING;
    kv->value.u.s = cs(v);
}

static void add_int(tspan *t, const char *k, int64_t v)
{
    clew_kv *kv = &t->kv[t->s.attrs.n++];
    kv->key = cs(k);
    kv->value.type = CLEW_VALUE_INT;
    kv->value.u.i = v;
}

static void add_bool(tspan *t, const char *k, bool v)
{
    clew_kv *kv = &t->kv[t->s.attrs.n++];
    kv->key = cs(k);
    kv->value.type = CLEW_VALUE_BOOL;
    kv->value.u.b = v;
}

static void add_res_str(tspan *t, const char *k, const char *v)
{
    clew_kv *kv = &t->res_kv[t->res.attrs.n++];
    kv->key = cs(k);
    kv->value.type = CLEW_VALUE_STRING;
    kv->value.u.s = cs(v);
}

static void observe(fixture *f, tspan *spans, size_t n)
{
    const clew_span_data *v[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        v[i] = &spans[i].s;
    }
    assert_int_equal(clew__tail_observe_spans(f->eng, v, n), CLEW_OK);
}

/* Observes one trace, flushes, and returns its decision. */
static clew_tail_decision decide(fixture *f, tspan *spans, size_t n)
{
    size_t before = f->n_dec;
    observe(f, spans, n);
    assert_int_equal(clew__tail_flush(f->eng), 1);
    assert_int_equal(f->n_dec, before + 1);
    return f->dec[before];
}

/* A one-span trace with the given duration and status. */
static clew_tail_decision decide_simple(fixture *f, uint32_t trace, uint64_t dur_ms,
                                        clew_status_code code)
{
    tspan t;
    tspan_init(&t, trace, 1, 0, 0, dur_ms);
    t.s.status_code = code;
    return decide(f, &t, 1);
}

static void assert_kept(clew_tail_decision d, const char *reason)
{
    assert_int_equal(d.state, CLEW_TRACE_KEPT);
    assert_non_null(d.reason);
    assert_string_equal(d.reason, reason);
}

static void assert_dropped(clew_tail_decision d)
{
    assert_int_equal(d.state, CLEW_TRACE_DROPPED);
}

/* ---- single policies ---- */

static void test_always_sample(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: everything, type: always_sample}\n");
    clew_tail_decision d = decide_simple(f, 1, 5, CLEW_STATUS_UNSET);
    assert_kept(d, "everything");
    assert_true(d.adjusted_count == 1.0);
    fx_free(f);
}

static void test_no_policy_matches_drops(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: slow, type: latency, latency: {threshold_ms: 500}}\n");
    clew_tail_decision d = decide_simple(f, 1, 5, CLEW_STATUS_UNSET);
    assert_dropped(d);
    assert_null(d.reason);
    fx_free(f);
}

static void test_latency(void **state)
{
    (void)state;
    fixture *f = fx_new("    - name: slow\n      type: latency\n"
                        "      latency: {threshold_ms: 500, upper_threshold_ms: 5000}\n");
    assert_kept(decide_simple(f, 1, 500, CLEW_STATUS_UNSET), "slow");
    assert_kept(decide_simple(f, 2, 4999, CLEW_STATUS_UNSET), "slow");
    assert_dropped(decide_simple(f, 3, 499, CLEW_STATUS_UNSET));
    assert_dropped(decide_simple(f, 4, 5000, CLEW_STATUS_UNSET));
    /* the trace's duration runs from the earliest start to the latest end, across
     * spans that are each short */
    tspan t[2];
    tspan_init(&t[0], 5, 1, 0, 0, 100);
    tspan_init(&t[1], 5, 2, 1, 550, 600);
    assert_kept(decide(f, t, 2), "slow");
    fx_free(f);
}

static void test_status_code(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: errors, type: status_code, "
                        "status_code: {status_codes: [ERROR]}}\n");
    /* an error on any span, not only the root, keeps the trace */
    tspan t[3];
    tspan_init(&t[0], 1, 1, 0, 0, 10);
    tspan_init(&t[1], 1, 2, 1, 1, 5);
    tspan_init(&t[2], 1, 3, 1, 2, 6);
    t[2].s.status_code = CLEW_STATUS_ERROR;
    assert_kept(decide(f, t, 3), "errors");
    assert_dropped(decide_simple(f, 2, 10, CLEW_STATUS_OK));
    assert_dropped(decide_simple(f, 3, 10, CLEW_STATUS_UNSET));
    fx_free(f);
    f = fx_new("    - {name: okish, type: status_code, "
               "status_code: {status_codes: [OK, UNSET]}}\n");
    assert_kept(decide_simple(f, 4, 10, CLEW_STATUS_UNSET), "okish");
    assert_dropped(decide_simple(f, 5, 10, CLEW_STATUS_ERROR));
    fx_free(f);
}

static size_t count_kept(fixture *f, uint32_t from, uint32_t n, bool *kept)
{
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        clew_tail_decision d = decide_simple(f, from + i, 1, CLEW_STATUS_UNSET);
        if (kept != NULL) {
            kept[i] = d.state == CLEW_TRACE_KEPT;
        }
        if (d.state == CLEW_TRACE_KEPT) {
            k++;
            assert_string_equal(d.reason, "tenth");
            assert_true(d.adjusted_count == 10.0);
        }
    }
    return k;
}

static void test_probabilistic_share_and_determinism(void **state)
{
    (void)state;
    const char *pol = "    - {name: tenth, type: probabilistic, "
                      "probabilistic: {sampling_percentage: 10}}\n";
    fixture *a = fx_new(pol);
    fixture *b = fx_new(pol);
    static bool ka[4000], kb[4000];
    size_t n = count_kept(a, 1, 4000, ka);
    /* 10% of 4000 = 400; a binomial sd is ~19, so 300..500 fails only on a broken hash */
    assert_in_range(n, 300, 500);
    /* deterministic on the trace id: a second engine keeps exactly the same traces */
    assert_int_equal(count_kept(b, 1, 4000, kb), n);
    assert_memory_equal(ka, kb, sizeof(ka));
    fx_free(a);
    fx_free(b);

    /* another salt keeps a different set of about the same size */
    fixture *c = fx_new("    - {name: tenth, type: probabilistic, "
                        "probabilistic: {sampling_percentage: 10, hash_salt: pepper}}\n");
    static bool kc[4000];
    size_t nc = count_kept(c, 1, 4000, kc);
    assert_in_range(nc, 300, 500);
    assert_memory_not_equal(ka, kc, sizeof(ka));
    fx_free(c);
}

static void test_probabilistic_bounds(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: none, type: probabilistic, "
                        "probabilistic: {sampling_percentage: 0}}\n");
    for (uint32_t i = 0; i < 200; i++) {
        assert_dropped(decide_simple(f, i, 1, CLEW_STATUS_UNSET));
    }
    fx_free(f);
    f = fx_new("    - {name: every, type: probabilistic, "
               "probabilistic: {sampling_percentage: 100}}\n");
    for (uint32_t i = 0; i < 200; i++) {
        clew_tail_decision d = decide_simple(f, i, 1, CLEW_STATUS_UNSET);
        assert_kept(d, "every");
        assert_true(d.adjusted_count == 1.0);
    }
    fx_free(f);
}

static void test_string_attribute(void **state)
{
    (void)state;
    fixture *f = fx_new("    - name: checkout\n      type: string_attribute\n"
                        "      string_attribute: {key: service.name, values: [checkout, cart]}\n");
    tspan t;
    /* on the resource */
    tspan_init(&t, 1, 1, 0, 0, 1);
    add_res_str(&t, "service.name", "cart");
    assert_kept(decide(f, &t, 1), "checkout");
    /* on the span */
    tspan_init(&t, 2, 1, 0, 0, 1);
    add_str(&t, "service.name", "checkout");
    assert_kept(decide(f, &t, 1), "checkout");
    /* exact match only */
    tspan_init(&t, 3, 1, 0, 0, 1);
    add_str(&t, "service.name", "checkout2");
    assert_dropped(decide(f, &t, 1));
    /* a number with the same text is not a string match */
    tspan_init(&t, 4, 1, 0, 0, 1);
    add_int(&t, "service.name", 7);
    assert_dropped(decide(f, &t, 1));
    fx_free(f);
}

static void test_string_attribute_regex_and_invert(void **state)
{
    (void)state;
    fixture *f = fx_new("    - name: api\n      type: string_attribute\n"
                        "      string_attribute:\n        key: http.route\n"
                        "        values: ['^/api/v[0-9]+/']\n"
                        "        enabled_regex_matching: true\n");
    tspan t;
    tspan_init(&t, 1, 1, 0, 0, 1);
    add_str(&t, "http.route", "/api/v2/orders");
    assert_kept(decide(f, &t, 1), "api");
    tspan_init(&t, 2, 1, 0, 0, 1);
    add_str(&t, "http.route", "/static/api/v2/");
    assert_dropped(decide(f, &t, 1));
    fx_free(f);

    f = fx_new(
        "    - name: not-health\n      type: string_attribute\n"
        "      string_attribute: {key: http.route, values: [/healthz], invert_match: true}\n");
    tspan_init(&t, 3, 1, 0, 0, 1);
    add_str(&t, "http.route", "/healthz");
    assert_dropped(decide(f, &t, 1));
    tspan_init(&t, 4, 1, 0, 0, 1);
    add_str(&t, "http.route", "/orders");
    assert_kept(decide(f, &t, 1), "not-health");
    /* no such attribute at all: nothing matched, so the inverted policy keeps it */
    tspan_init(&t, 5, 1, 0, 0, 1);
    assert_kept(decide(f, &t, 1), "not-health");
    fx_free(f);
}

static void test_numeric_attribute(void **state)
{
    (void)state;
    fixture *f = fx_new("    - name: server-errors\n      type: numeric_attribute\n"
                        "      numeric_attribute: {key: http.status_code, min_value: 500, "
                        "max_value: 599}\n");
    int64_t vals[] = {499, 500, 599, 600};
    bool want[] = {false, true, true, false};
    for (uint32_t i = 0; i < 4; i++) {
        tspan t;
        tspan_init(&t, i + 1, 1, 0, 0, 1);
        add_int(&t, "http.status_code", vals[i]);
        clew_tail_decision d = decide(f, &t, 1);
        assert_int_equal(d.state == CLEW_TRACE_KEPT, want[i]);
    }
    /* a double value compares too; a string does not */
    tspan t;
    tspan_init(&t, 10, 1, 0, 0, 1);
    t.kv[0].key = cs("http.status_code");
    t.kv[0].value.type = CLEW_VALUE_DOUBLE;
    t.kv[0].value.u.d = 503.0;
    t.s.attrs.n = 1;
    assert_kept(decide(f, &t, 1), "server-errors");
    tspan_init(&t, 11, 1, 0, 0, 1);
    add_str(&t, "http.status_code", "503");
    assert_dropped(decide(f, &t, 1));
    fx_free(f);
}

static void test_boolean_attribute(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: debug, type: boolean_attribute, "
                        "boolean_attribute: {key: debug, value: true}}\n");
    tspan t;
    tspan_init(&t, 1, 1, 0, 0, 1);
    add_bool(&t, "debug", true);
    assert_kept(decide(f, &t, 1), "debug");
    tspan_init(&t, 2, 1, 0, 0, 1);
    add_bool(&t, "debug", false);
    assert_dropped(decide(f, &t, 1));
    fx_free(f);
}

static void test_span_count(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: mid, type: span_count, "
                        "span_count: {min_spans: 2, max_spans: 3}}\n");
    for (size_t n = 1; n <= 4; n++) {
        tspan t[4];
        for (size_t i = 0; i < n; i++) {
            tspan_init(&t[i], (uint32_t)(100 + n), (uint8_t)(i + 1), i ? 1 : 0, 0, 1);
        }
        clew_tail_decision d = decide(f, t, n);
        assert_int_equal(d.state == CLEW_TRACE_KEPT, n == 2 || n == 3);
        assert_int_equal(d.n_spans, n);
    }
    fx_free(f);
}

static void test_trace_state(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: vendor, type: trace_state, "
                        "trace_state: {key: acme, values: [gold, silver]}}\n");
    tspan t;
    tspan_init(&t, 1, 1, 0, 0, 1);
    t.s.trace_state = cs("ot=th:8, acme=silver");
    assert_kept(decide(f, &t, 1), "vendor");
    tspan_init(&t, 2, 1, 0, 0, 1);
    t.s.trace_state = cs("acme=bronze");
    assert_dropped(decide(f, &t, 1));
    tspan_init(&t, 3, 1, 0, 0, 1);
    t.s.trace_state = cs("xacme=gold");
    assert_dropped(decide(f, &t, 1));
    fx_free(f);
}

static void test_rate_limiting(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: budget, type: rate_limiting, "
                        "rate_limiting: {spans_per_second: 10}}\n");
    /* traces of 4 spans: two fit in a second's budget of 10, the third does not */
    for (uint32_t tr = 1; tr <= 3; tr++) {
        tspan t[4];
        for (uint8_t i = 0; i < 4; i++) {
            tspan_init(&t[i], tr, (uint8_t)(i + 1), i ? 1 : 0, 0, 1);
        }
        clew_tail_decision d = decide(f, t, 4);
        assert_int_equal(d.state, tr <= 2 ? CLEW_TRACE_KEPT : CLEW_TRACE_DROPPED);
    }
    /* a new second brings a new budget */
    f->clock_ns += SEC;
    assert_kept(decide_simple(f, 4, 1, CLEW_STATUS_UNSET), "budget");
    fx_free(f);
}

static void test_head_sampling_adjusts_count(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: everything, type: always_sample}\n");
    tspan t;
    tspan_init(&t, 1, 1, 0, 0, 1);
    /* th:c = rejection threshold 0xc0.. = head-sampled at 25%: it stands for 4 */
    t.s.trace_state = cs("ot=th:c;rv:0123456789abcd");
    clew_tail_decision d = decide(f, &t, 1);
    assert_kept(d, "everything");
    assert_true(d.adjusted_count == 4.0);
    fx_free(f);
    assert_true(clew__tail_head_adjusted("ot=th:0", 7) == 1.0);
    assert_true(clew__tail_head_adjusted("ot=th:8", 7) == 2.0);
    assert_true(clew__tail_head_adjusted("ot=th:zz", 8) == 1.0);
    assert_true(clew__tail_head_adjusted("foo=bar", 7) == 1.0);
}

/* ---- combinations ---- */

static void test_drop_vetoes(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: everything, type: always_sample}\n"
                        "    - name: no-health\n      type: drop\n      drop:\n"
                        "        drop_sub_policy:\n"
                        "          - {name: health, type: string_attribute, "
                        "string_attribute: {key: http.route, values: [/healthz]}}\n");
    tspan t;
    tspan_init(&t, 1, 1, 0, 0, 1);
    add_str(&t, "http.route", "/healthz");
    t.s.status_code = CLEW_STATUS_ERROR;
    clew_tail_decision d = decide(f, &t, 1);
    assert_dropped(d);
    assert_string_equal(d.reason, "no-health");
    tspan_init(&t, 2, 1, 0, 0, 1);
    add_str(&t, "http.route", "/orders");
    assert_kept(decide(f, &t, 1), "everything");
    clew_tail_metrics m;
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.policy_dropped[1], 1);
    assert_int_equal(m.policy_sampled[0], 1);
    fx_free(f);
}

static void test_and(void **state)
{
    (void)state;
    fixture *f = fx_new("    - name: slow-checkout-half\n      type: and\n      and:\n"
                        "        and_sub_policy:\n"
                        "          - {name: slow, type: latency, latency: {threshold_ms: 100}}\n"
                        "          - {name: half, type: probabilistic, "
                        "probabilistic: {sampling_percentage: 50}}\n");
    size_t kept = 0;
    for (uint32_t i = 0; i < 400; i++) {
        clew_tail_decision d = decide_simple(f, i, 200, CLEW_STATUS_UNSET);
        if (d.state == CLEW_TRACE_KEPT) {
            kept++;
            assert_string_equal(d.reason, "slow-checkout-half");
            /* both must hold; only the probabilistic part thins: stands for 2 */
            assert_true(d.adjusted_count == 2.0);
        }
    }
    assert_in_range(kept, 140, 260);
    for (uint32_t i = 0; i < 100; i++) {
        assert_dropped(decide_simple(f, 1000 + i, 50, CLEW_STATUS_UNSET));
    }
    fx_free(f);
}

static void test_lowest_adjusted_count_explains(void **state)
{
    (void)state;
    fixture *f = fx_new("    - {name: tenth, type: probabilistic, "
                        "probabilistic: {sampling_percentage: 10}}\n"
                        "    - {name: errors, type: status_code, "
                        "status_code: {status_codes: [ERROR]}}\n");
    /* every error is kept by `errors` with count 1, even those the 10% also picks */
    for (uint32_t i = 0; i < 300; i++) {
        clew_tail_decision d = decide_simple(f, i, 1, CLEW_STATUS_ERROR);
        assert_kept(d, "errors");
        assert_true(d.adjusted_count == 1.0);
    }
    fx_free(f);
}

static void test_composite_allocation(void **state)
{
    (void)state;
    fixture *f = fx_new("    - name: comp\n      type: composite\n      composite:\n"
                        "        max_total_spans_per_second: 100\n"
                        "        policy_order: [vip, rest]\n"
                        "        composite_sub_policy:\n"
                        "          - {name: vip, type: string_attribute, "
                        "string_attribute: {key: tier, values: [vip]}}\n"
                        "          - {name: rest, type: always_sample}\n"
                        "        rate_allocation:\n"
                        "          - {policy: vip, percent: 30}\n"
                        "          - {policy: rest, percent: 20}\n");
    /* traces of 10 spans: vip gets 30 spans/s (3 traces), rest 20 (2 traces) */
    size_t vip_kept = 0, rest_kept = 0;
    for (uint32_t tr = 1; tr <= 10; tr++) {
        bool vip = tr % 2 == 1;
        tspan t[10];
        for (uint8_t i = 0; i < 10; i++) {
            tspan_init(&t[i], tr, (uint8_t)(i + 1), i ? 1 : 0, 0, 1);
        }
        if (vip) {
            add_str(&t[0], "tier", "vip");
        }
        clew_tail_decision d = decide(f, t, 10);
        if (d.state == CLEW_TRACE_KEPT) {
            assert_string_equal(d.reason, "comp");
            if (vip) {
                vip_kept++;
            } else {
                rest_kept++;
            }
        }
    }
    assert_int_equal(vip_kept, 3);
    assert_int_equal(rest_kept, 2);
    /* the next second refills each share */
    f->clock_ns += SEC;
    tspan t;
    tspan_init(&t, 99, 1, 0, 0, 1);
    assert_kept(decide(f, &t, 1), "comp");
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_always_sample),
        cmocka_unit_test(test_no_policy_matches_drops),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_status_code),
        cmocka_unit_test(test_probabilistic_share_and_determinism),
        cmocka_unit_test(test_probabilistic_bounds),
        cmocka_unit_test(test_string_attribute),
        cmocka_unit_test(test_string_attribute_regex_and_invert),
        cmocka_unit_test(test_numeric_attribute),
        cmocka_unit_test(test_boolean_attribute),
        cmocka_unit_test(test_span_count),
        cmocka_unit_test(test_trace_state),
        cmocka_unit_test(test_rate_limiting),
        cmocka_unit_test(test_head_sampling_adjusts_count),
        cmocka_unit_test(test_drop_vetoes),
        cmocka_unit_test(test_and),
        cmocka_unit_test(test_lowest_adjusted_count_explains),
        cmocka_unit_test(test_composite_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
