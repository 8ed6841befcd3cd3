/*
 * tests/unit/test_tail_engine.c - the tail sampling engine on a fake clock: when a
 * trace is decided (decision_wait, early release on root + grace), late spans through
 * the decision caches, cache eviction, decisions forced by num_traces and the byte
 * budget (logged at most once a minute), a huge trace, metrics, batches.
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

#define MAX_DEC 4096

typedef struct fixture {
    uint64_t clock_ns;
    clew_tail_config *cfg;
    clew_tail_engine *eng;
    clew_tail_decision dec[MAX_DEC];
    size_t n_dec;
    int n_logs;
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

static void on_log(const char *msg, void *ud)
{
    fixture *f = ud;
    assert_non_null(strstr(msg, "decided before their time"));
    f->n_logs++;
}

/* A config of `settings` (tail_sampling keys) plus `policies`. */
static fixture *fx_new(const char *settings, const char *policies)
{
    fixture *f = clew__calloc(1, sizeof(*f));
    assert_non_null(f);
    f->clock_ns = 5000 * SEC;
    char yaml[4096];
    snprintf(yaml, sizeof(yaml), "tail_sampling:\n%s  policies:\n%s", settings, policies);
    clew_config_error err;
    if (clew__tail_config_load_buffer("e.yaml", yaml, strlen(yaml), &f->cfg, &err) != CLEW_OK) {
        print_error("config refused: %s\n", err.msg);
        fail();
    }
    clew_tail_hooks h = {.on_decision = on_decision, .clock = fake_clock, .log = on_log, .ud = f};
    assert_int_equal(clew__tail_engine_new(f->cfg, &h, &f->eng), CLEW_OK);
    return f;
}

static void fx_free(fixture *f)
{
    clew__tail_engine_free(f->eng);
    clew__tail_config_free(f->cfg);
    clew__free(f);
}

static const char *ERRORS = "    - {name: errors, type: status_code, "
                            "status_code: {status_codes: [ERROR]}}\n";

static clew_resource RES;

static clew_span_data mk(uint32_t trace, uint32_t span, uint32_t parent, clew_status_code code)
{
    clew_span_data s;
    memset(&s, 0, sizeof(s));
    s.trace_id.bytes[0] = 1;
    memcpy(&s.trace_id.bytes[12], &trace, 4);
    memcpy(&s.span_id.bytes[4], &span, 4);
    memcpy(&s.parent_span_id.bytes[4], &parent, 4);
    s.start_ns = UINT64_C(1700000000) * SEC;
    s.end_ns = s.start_ns + MS;
    s.status_code = code;
    s.resource = &RES;
    return s;
}

static void obs(fixture *f, clew_span_data s)
{
    const clew_span_data *p = &s;
    assert_int_equal(clew__tail_observe_spans(f->eng, &p, 1), CLEW_OK);
}

static uint32_t dec_trace(const clew_tail_decision *d)
{
    uint32_t t;
    memcpy(&t, &d->trace_id.bytes[12], 4);
    return t;
}

static void test_decision_wait(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 30s\n", ERRORS);
    /* a child span only: no root, so only decision_wait releases it */
    obs(f, mk(1, 2, 1, CLEW_STATUS_ERROR));
    f->clock_ns += 10 * SEC;
    obs(f, mk(1, 3, 1, CLEW_STATUS_UNSET));
    assert_int_equal(clew__tail_next_due(f->eng), 20 * SEC);
    f->clock_ns += 20 * SEC - 1;
    assert_int_equal(clew__tail_tick(f->eng), 0);
    assert_int_equal(f->n_dec, 0);
    f->clock_ns += 1;
    assert_int_equal(clew__tail_tick(f->eng), 1);
    assert_int_equal(f->n_dec, 1);
    assert_int_equal(f->dec[0].state, CLEW_TRACE_KEPT);
    assert_int_equal(f->dec[0].n_spans, 2);
    assert_false(f->dec[0].forced);
    assert_false(f->dec[0].late);
    assert_int_equal(clew__tail_next_due(f->eng), UINT64_MAX);
    fx_free(f);
}

static void test_early_release_on_root_and_grace(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 30s\n  decision_grace: 10s\n", ERRORS);
    obs(f, mk(1, 2, 1, CLEW_STATUS_UNSET)); /* t=0 child */
    f->clock_ns += 2 * SEC;
    obs(f, mk(1, 1, 0, CLEW_STATUS_UNSET)); /* t=2 root */
    f->clock_ns += 5 * SEC;
    obs(f, mk(1, 3, 1, CLEW_STATUS_ERROR)); /* t=7: a new span restarts the grace */
    f->clock_ns += 10 * SEC - 1;            /* t=17-1ns */
    assert_int_equal(clew__tail_tick(f->eng), 0);
    f->clock_ns += 1; /* t=17: 10s with no new span since the root arrived */
    assert_int_equal(clew__tail_tick(f->eng), 1);
    assert_int_equal(f->dec[0].state, CLEW_TRACE_KEPT);
    assert_int_equal(f->dec[0].n_spans, 3);

    /* a trace whose root never comes waits the full decision_wait */
    obs(f, mk(2, 2, 1, CLEW_STATUS_UNSET));
    f->clock_ns += 29 * SEC;
    assert_int_equal(clew__tail_tick(f->eng), 0);
    f->clock_ns += SEC;
    assert_int_equal(clew__tail_tick(f->eng), 1);
    assert_int_equal(f->dec[1].state, CLEW_TRACE_DROPPED);
    fx_free(f);
}

static void test_traces_decided_in_order(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 5s\n", ERRORS);
    for (uint32_t i = 1; i <= 5; i++) {
        obs(f, mk(i, 2, 1, CLEW_STATUS_UNSET));
        f->clock_ns += SEC;
    }
    /* t=5: only trace 1 (first seen at t=0) is due */
    assert_int_equal(clew__tail_tick(f->eng), 1);
    assert_int_equal(dec_trace(&f->dec[0]), 1);
    f->clock_ns += 3 * SEC;
    assert_int_equal(clew__tail_tick(f->eng), 3);
    assert_int_equal(dec_trace(&f->dec[3]), 4);
    fx_free(f);
}

static void test_late_spans_follow_decision(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 1s\n", ERRORS);
    obs(f, mk(1, 1, 0, CLEW_STATUS_ERROR));
    obs(f, mk(2, 1, 0, CLEW_STATUS_OK));
    f->clock_ns += SEC;
    assert_int_equal(clew__tail_tick(f->eng), 2);
    assert_int_equal(f->n_dec, 2);

    /* two late spans of the kept trace in one call: one report for both */
    clew_span_data late[3] = {mk(1, 5, 1, CLEW_STATUS_OK), mk(1, 6, 1, CLEW_STATUS_OK),
                              mk(2, 7, 1, CLEW_STATUS_ERROR)};
    const clew_span_data *p[3] = {&late[0], &late[1], &late[2]};
    assert_int_equal(clew__tail_observe_spans(f->eng, p, 3), CLEW_OK);
    assert_int_equal(f->n_dec, 4);
    assert_true(f->dec[2].late);
    assert_int_equal(f->dec[2].state, CLEW_TRACE_KEPT);
    assert_string_equal(f->dec[2].reason, "errors");
    assert_int_equal(f->dec[2].n_spans, 2);
    /* a late error does not resurrect a dropped trace: the decision stands */
    assert_true(f->dec[3].late);
    assert_int_equal(f->dec[3].state, CLEW_TRACE_DROPPED);
    assert_int_equal(dec_trace(&f->dec[3]), 2);

    clew_tail_metrics m;
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.late_spans_kept, 2);
    assert_int_equal(m.late_spans_dropped, 1);
    assert_int_equal(m.pending_traces, 0);
    fx_free(f);
}

static void test_cache_eviction(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 1s\n  decision_cache: {sampled_cache_size: 2, "
                        "non_sampled_cache_size: 1}\n",
                        ERRORS);
    for (uint32_t i = 1; i <= 3; i++) {
        obs(f, mk(i, 1, 0, CLEW_STATUS_ERROR));
    }
    obs(f, mk(10, 1, 0, CLEW_STATUS_OK));
    obs(f, mk(11, 1, 0, CLEW_STATUS_OK));
    f->clock_ns += SEC;
    assert_int_equal(clew__tail_tick(f->eng), 5);
    size_t before = f->n_dec;
    /* trace 1 was the oldest kept one: evicted by trace 3 (cache of 2) */
    obs(f, mk(1, 9, 1, CLEW_STATUS_OK));
    assert_int_equal(f->n_dec, before);
    clew_tail_metrics m;
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.pending_traces, 1); /* it starts over as a new pending trace */
    /* traces 2 and 3 are still remembered */
    obs(f, mk(3, 9, 1, CLEW_STATUS_OK));
    assert_int_equal(f->n_dec, before + 1);
    assert_true(f->dec[before].late);
    assert_int_equal(f->dec[before].state, CLEW_TRACE_KEPT);
    /* the non-sampled cache holds 1: trace 11, not trace 10 */
    obs(f, mk(11, 9, 1, CLEW_STATUS_OK));
    assert_int_equal(f->n_dec, before + 2);
    assert_int_equal(f->dec[before + 1].state, CLEW_TRACE_DROPPED);
    obs(f, mk(10, 9, 1, CLEW_STATUS_OK));
    assert_int_equal(f->n_dec, before + 2);
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.pending_traces, 2);
    fx_free(f);
}

static void test_caches_off(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 1s\n  decision_cache: {sampled_cache_size: 0, "
                        "non_sampled_cache_size: 0}\n",
                        ERRORS);
    obs(f, mk(1, 1, 0, CLEW_STATUS_ERROR));
    f->clock_ns += SEC;
    assert_int_equal(clew__tail_tick(f->eng), 1);
    obs(f, mk(1, 2, 1, CLEW_STATUS_OK));
    assert_int_equal(f->n_dec, 1);
    fx_free(f);
}

static void test_num_traces_forces_oldest(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 30s\n  num_traces: 3\n", ERRORS);
    for (uint32_t i = 1; i <= 3; i++) {
        obs(f, mk(i, 1, 1, i == 1 ? CLEW_STATUS_ERROR : CLEW_STATUS_UNSET));
        f->clock_ns += SEC;
    }
    assert_int_equal(f->n_dec, 0);
    /* a fourth trace: the oldest (1) is decided now, on what it has, not dropped blindly */
    obs(f, mk(4, 1, 1, CLEW_STATUS_UNSET));
    assert_int_equal(f->n_dec, 1);
    assert_int_equal(dec_trace(&f->dec[0]), 1);
    assert_true(f->dec[0].forced);
    assert_int_equal(f->dec[0].state, CLEW_TRACE_KEPT);
    assert_int_equal(f->n_logs, 1);
    /* more forced decisions within the minute: counted, not logged again */
    obs(f, mk(5, 1, 1, CLEW_STATUS_UNSET));
    obs(f, mk(6, 1, 1, CLEW_STATUS_UNSET));
    assert_int_equal(f->n_dec, 3);
    assert_int_equal(f->n_logs, 1);
    clew_tail_metrics m;
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.forced_decisions, 3);
    assert_int_equal(m.pending_traces, 3);
    /* a minute later the next one is logged again */
    f->clock_ns += 61 * SEC;
    obs(f, mk(7, 1, 1, CLEW_STATUS_UNSET));
    assert_int_equal(f->n_logs, 2);
    fx_free(f);
}

static void test_byte_budget_forces_oldest(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 30s\n  max_bytes: 64KiB\n",
                        "    - {name: big, type: string_attribute, string_attribute: "
                        "{key: payload, values: [x]}}\n");
    static char blob[900];
    memset(blob, 'a', sizeof(blob) - 1);
    clew_kv kv = {.key = {"payload", 7}, .value = {.type = CLEW_VALUE_STRING}};
    uint64_t peak = 0;
    /* each trace summarises ~900 distinct bytes; 200 traces cannot all fit in 64 KiB */
    for (uint32_t i = 1; i <= 200; i++) {
        clew_span_data s = mk(i, 1, 1, CLEW_STATUS_UNSET);
        blob[0] = (char)('a' + i % 26);
        kv.value.u.s = (clew_str){blob, sizeof(blob) - 1};
        s.attrs.items = &kv;
        s.attrs.n = 1;
        obs(f, s);
        clew_tail_metrics m;
        clew__tail_metrics(f->eng, &m);
        assert_true(m.pending_bytes <= 64 * 1024);
        peak = m.pending_traces > peak ? m.pending_traces : peak;
    }
    clew_tail_metrics m;
    clew__tail_metrics(f->eng, &m);
    assert_true(m.forced_decisions > 0);
    assert_int_equal(m.forced_decisions + m.pending_traces, 200);
    assert_true(peak > 10);
    /* the forced ones were the oldest */
    assert_int_equal(dec_trace(&f->dec[0]), 1);
    assert_true(f->dec[0].forced);
    fx_free(f);
}

static void test_huge_trace_does_not_stall_others(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 10s\n  decision_grace: 2s\n  max_spans_per_trace: 10\n",
                        "    - {name: tagged, type: string_attribute, string_attribute: "
                        "{key: k, values: [v]}}\n");
    static char vals[1000][8];
    clew_kv kv = {.key = {"k", 1}, .value = {.type = CLEW_VALUE_STRING}};
    obs(f, mk(2, 1, 0, CLEW_STATUS_UNSET)); /* a small trace with its root */
    for (uint32_t i = 0; i < 1000; i++) {
        clew_span_data s = mk(1, i + 2, 1, CLEW_STATUS_UNSET);
        snprintf(vals[i], sizeof(vals[i]), "x%u", i);
        kv.value.u.s = (clew_str){vals[i], strlen(vals[i])};
        s.attrs.items = &kv;
        s.attrs.n = 1;
        obs(f, s);
    }
    clew_tail_metrics m;
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.spans_not_summarised, 990);
    assert_int_equal(m.pending_spans, 1001);
    /* 10 summarised spans with short strings: a few hundred bytes, not 1000 spans' worth */
    assert_true(m.pending_bytes < 4096);
    /* the small trace is released on its grace while the huge one still waits */
    f->clock_ns += 2 * SEC;
    assert_int_equal(clew__tail_tick(f->eng), 1);
    assert_int_equal(dec_trace(&f->dec[0]), 2);
    f->clock_ns += 8 * SEC;
    assert_int_equal(clew__tail_tick(f->eng), 1);
    assert_int_equal(dec_trace(&f->dec[1]), 1);
    assert_int_equal(f->dec[1].n_spans, 1000);
    fx_free(f);
}

static void test_batch_and_metrics(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 1s\n",
                        "    - {name: errors, type: status_code, "
                        "status_code: {status_codes: [ERROR]}}\n"
                        "    - {name: slow, type: latency, latency: {threshold_ms: 100}}\n");
    clew_span_data s[4] = {mk(1, 1, 0, CLEW_STATUS_ERROR), mk(1, 2, 1, CLEW_STATUS_OK),
                           mk(2, 1, 0, CLEW_STATUS_OK), mk(3, 1, 0, CLEW_STATUS_OK)};
    s[2].end_ns = s[2].start_ns + 200 * MS;
    const clew_span_data *p[4] = {&s[0], &s[1], &s[2], &s[3]};
    clew_arena arena;
    clew__arena_init(&arena, 4096, 1 << 20);
    clew_batch b;
    assert_int_equal(clew__batch_from_spans(&b, p, 4, &arena), CLEW_OK);
    assert_int_equal(clew__tail_observe(f->eng, &b), CLEW_OK);
    clew__arena_deinit(&arena);
    clew_tail_metrics m;
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.pending_traces, 3);
    assert_int_equal(m.pending_spans, 4);
    assert_true(m.pending_bytes > 0);
    f->clock_ns += SEC;
    assert_int_equal(clew__tail_tick(f->eng), 3);
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.traces_decided[CLEW_TAIL_SAMPLED], 2);
    assert_int_equal(m.traces_decided[CLEW_TAIL_NOT_SAMPLED], 1);
    assert_int_equal(m.spans_decided[CLEW_TAIL_SAMPLED], 3);
    assert_int_equal(m.policy_sampled[0], 1);
    assert_int_equal(m.policy_sampled[1], 1);
    assert_int_equal(m.policy_dropped[2], 1); /* no policy matched */
    assert_int_equal(m.pending_traces, 0);
    assert_int_equal(m.pending_bytes, 0);
    assert_int_equal(m.pending_spans, 0);
    fx_free(f);
}

static void test_flush_decides_everything(void **state)
{
    (void)state;
    fixture *f = fx_new("", ERRORS);
    for (uint32_t i = 1; i <= 50; i++) {
        obs(f, mk(i, 1, 0, i % 5 == 0 ? CLEW_STATUS_ERROR : CLEW_STATUS_UNSET));
    }
    assert_int_equal(clew__tail_flush(f->eng), 50);
    size_t kept = 0;
    for (size_t i = 0; i < f->n_dec; i++) {
        kept += f->dec[i].state == CLEW_TRACE_KEPT;
    }
    assert_int_equal(kept, 10);
    fx_free(f);
}

static void test_engine_rejects_bad_config(void **state)
{
    (void)state;
    clew_tail_config c;
    clew__tail_config_defaults(&c);
    c.num_traces = 0;
    clew_tail_engine *e = (clew_tail_engine *)&c;
    assert_int_equal(clew__tail_engine_new(&c, NULL, &e), CLEW_EINVAL);
    assert_null(e);
}

/* Out of memory while creating the engine or summarising: a clean error, the trace
 * still counted and decided, nothing leaked. */
static void test_out_of_memory(void **state)
{
    (void)state;
    fixture *f = fx_new("  decision_wait: 1s\n", "    - {name: k, type: string_attribute, "
                                                 "string_attribute: {key: k, values: [v]}}\n");
    for (long n = 0; n < 20; n++) {
        clew_tail_engine *e = NULL;
        clew__alloc_fail_after(n);
        clew_status rc = clew__tail_engine_new(f->cfg, NULL, &e);
        clew__alloc_fail_after(-1);
        if (rc == CLEW_OK) {
            clew__tail_engine_free(e);
            break;
        }
        assert_int_equal(rc, CLEW_ENOMEM);
        assert_null(e);
    }
    clew_kv kv = {.key = {"k", 1}, .value = {.type = CLEW_VALUE_STRING, .u.s = {"v", 1}}};
    clew_span_data s = mk(1, 1, 0, CLEW_STATUS_UNSET);
    s.attrs.items = &kv;
    s.attrs.n = 1;
    const clew_span_data *p = &s;
    clew__alloc_fail_after(0);
    clew_status rc = clew__tail_observe_spans(f->eng, &p, 1);
    clew__alloc_fail_after(-1);
    assert_int_equal(rc, CLEW_ENOMEM);
    clew_tail_metrics m;
    clew__tail_metrics(f->eng, &m);
    assert_int_equal(m.pending_spans, 1);
    f->clock_ns += SEC;
    assert_int_equal(clew__tail_tick(f->eng), 1);
    assert_int_equal(f->dec[0].n_spans, 1);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_wait),
        cmocka_unit_test(test_early_release_on_root_and_grace),
        cmocka_unit_test(test_traces_decided_in_order),
        cmocka_unit_test(test_late_spans_follow_decision),
        cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_caches_off),
        cmocka_unit_test(test_num_traces_forces_oldest),
        cmocka_unit_test(test_byte_budget_forces_oldest),
        cmocka_unit_test(test_huge_trace_does_not_stall_others),
        cmocka_unit_test(test_batch_and_metrics),
        cmocka_unit_test(test_flush_decides_everything),
        cmocka_unit_test(test_engine_rejects_bad_config),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
