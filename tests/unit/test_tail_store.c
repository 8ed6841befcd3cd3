/*
 * tests/unit/test_tail_store.c - the tail-sampling store wrapper over a real memory
 * store, driven by a fake clock without the background thread: appends are pending and
 * queryable at once, decisions reach the store (kept with the policy's name, dropped
 * traces gone), late spans follow the decision, pending traces held by the store when
 * the wrapper starts are decided, and /metrics has the clew_tail_* series.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "sampling/tail_store.h"
#include "store_fixtures.h"

#define SEC 1000000000ull

static uint64_t fake_now;

static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

typedef struct fixture {
    clew_arena a;
    clew_tail_config *cfg;
    clew_store *inner;
    clew_store *s;
} fixture;

static void setup_with(fixture *f, clew_store *inner)
{
    clew__arena_init(&f->a, 4096, 0);
    clew_config_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(clew__tail_preset_parse("errors+slow:500ms", &f->cfg, &err), CLEW_OK);
    f->cfg->decision_wait_ns = 10 * SEC;
    f->cfg->decision_grace_ns = 2 * SEC;
    f->inner = inner;
    clew_tail_store_options o;
    memset(&o, 0, sizeof(o));
    o.inner = inner;
    o.cfg = f->cfg;
    o.clock = fake_clock;
    o.no_thread = true;
    assert_int_equal(clew__tail_store_create(&o, &f->s), CLEW_OK);
}

static clew_store *new_memory_store(void)
{
    clew_memory_store_config mc = {1000, 0};
    clew_store *m = NULL;
    assert_int_equal(clew__memory_store_create(&mc, &m), CLEW_OK);
    return m;
}

static void teardown(fixture *f)
{
    clew__store_destroy(f->s); /* destroys the inner store too */
    clew__tail_config_free(f->cfg);
    clew__arena_deinit(&f->a);
}

static void append(clew_store *s, clew_batch *b)
{
    assert_int_equal(s->ops->append(s, b, NULL, NULL, NULL), CLEW_OK);
}

/* The trace's state, or -1 when the store does not have it. */
static int state_of(clew_store *s, clew_trace_id id, uint32_t *n_spans, char *reason, size_t cap)
{
    clew_trace_result *r = NULL;
    clew_status rc = s->ops->get_trace(s, &id, &r);
    if (rc == CLEW_ENOTFOUND) {
        return -1;
    }
    assert_int_equal(rc, CLEW_OK);
    int st = (int)r->meta.state;
    if (n_spans != NULL) {
        *n_spans = (uint32_t)r->n_spans;
    }
    if (reason != NULL) {
        snprintf(reason, cap, "%.*s", (int)r->meta.kept_reason.len,
                 r->meta.kept_reason.ptr ? r->meta.kept_reason.ptr : "");
    }
    clew__trace_result_free(r);
    return st;
}

static void test_decisions_reach_the_store(void **state)
{
    (void)state;
    fixture f;
    fake_now = 1000 * SEC;
    setup_with(&f, new_memory_store());
    clew_resource *res = mk_res(&f.a, "shop", NULL, NULL);
    clew_trace_id t_err = tid(1, 1), t_slow = tid(1, 2), t_norm = tid(1, 3);
    clew_span_data sp[4] = {
        mk_span(&f.a, t_err, 1, 0, "GET /checkout", 0, 50000000),
        mk_span(&f.a, t_err, 2, 1, "charge", 1000000, 20000000),
        mk_span(&f.a, t_slow, 3, 0, "GET /search", 0, 900000000),
        mk_span(&f.a, t_norm, 4, 0, "GET /home", 0, 30000000),
    };
    sp[1].status_code = CLEW_STATUS_ERROR;
    clew_batch b = mk_batch(&f.a, res, NULL, sp, 4);
    append(f.s, &b);
    /* acknowledged: queryable at once, pending */
    assert_int_equal(state_of(f.s, t_err, NULL, NULL, 0), CLEW_TRACE_PENDING);
    assert_int_equal(state_of(f.s, t_norm, NULL, NULL, 0), CLEW_TRACE_PENDING);
    /* not yet due: nothing decided */
    fake_now += 1 * SEC;
    assert_int_equal(clew__tail_store_run_once(f.s), 0);
    /* the roots have ended and decision_grace has passed */
    fake_now += 2 * SEC;
    assert_int_equal(clew__tail_store_run_once(f.s), 3);
    char reason[64];
    uint32_t n = 0;
    assert_int_equal(state_of(f.s, t_err, &n, reason, sizeof(reason)), CLEW_TRACE_KEPT);
    assert_string_equal(reason, "errors");
    assert_int_equal(n, 2);
    assert_int_equal(state_of(f.s, t_slow, NULL, reason, sizeof(reason)), CLEW_TRACE_KEPT);
    assert_string_equal(reason, "slow");
    assert_int_equal(state_of(f.s, t_norm, NULL, NULL, 0), -1);
    clew_store_stats st;
    f.s->ops->stats(f.s, &st);
    assert_int_equal(st.traces, 2);
    assert_int_equal(st.spans, 3);

    /* late spans follow the decision through the cache */
    clew_span_data late[2] = {mk_span(&f.a, t_err, 5, 1, "late", 2000000, 3000000),
                              mk_span(&f.a, t_norm, 6, 4, "late", 2000000, 3000000)};
    clew_batch lb = mk_batch(&f.a, res, NULL, late, 2);
    append(f.s, &lb);
    assert_int_equal(clew__tail_store_run_once(f.s), 2);
    assert_int_equal(state_of(f.s, t_err, &n, reason, sizeof(reason)), CLEW_TRACE_KEPT);
    assert_int_equal(n, 3);
    assert_string_equal(reason, "errors");
    assert_int_equal(state_of(f.s, t_norm, NULL, NULL, 0), -1);

    /* /metrics */
    clew_buf m;
    clew__buf_init(&m, 0);
    assert_int_equal(clew__tail_store_render_metrics(f.s, &m), CLEW_OK);
    assert_int_equal(clew__buf_putc(&m, '\0'), CLEW_OK);
    const char *txt = (const char *)m.data;
    assert_non_null(strstr(txt, "clew_tail_traces_decided_total{outcome=\"sampled\"} 2\n"));
    assert_non_null(strstr(txt, "clew_tail_traces_decided_total{outcome=\"not_sampled\"} 1\n"));
    assert_non_null(
        strstr(txt, "clew_tail_policy_traces_total{policy=\"errors\",outcome=\"sampled\"} 1\n"));
    assert_non_null(strstr(txt, "clew_tail_late_spans_total{outcome=\"sampled\"} 1\n"));
    assert_non_null(strstr(txt, "clew_tail_late_spans_total{outcome=\"dropped\"} 1\n"));
    assert_non_null(strstr(txt, "clew_tail_pending_traces 0\n"));
    assert_non_null(strstr(txt, "clew_tail_decisions_applied_total 5\n"));
    clew__buf_deinit(&m);
    teardown(&f);
}

/* A trace waits at most decision_wait when its root never arrives. */
static void test_decision_wait_without_root(void **state)
{
    (void)state;
    fixture f;
    fake_now = 5000 * SEC;
    setup_with(&f, new_memory_store());
    clew_resource *res = mk_res(&f.a, "shop", NULL, NULL);
    clew_trace_id t = tid(2, 1);
    clew_span_data sp = mk_span(&f.a, t, 7, 99, "child-only", 0, 10000000);
    sp.status_code = CLEW_STATUS_ERROR;
    clew_batch b = mk_batch(&f.a, res, NULL, &sp, 1);
    append(f.s, &b);
    fake_now += 9 * SEC;
    assert_int_equal(clew__tail_store_run_once(f.s), 0);
    assert_int_equal(state_of(f.s, t, NULL, NULL, 0), CLEW_TRACE_PENDING);
    fake_now += 1 * SEC;
    assert_int_equal(clew__tail_store_run_once(f.s), 1);
    assert_int_equal(state_of(f.s, t, NULL, NULL, 0), CLEW_TRACE_KEPT);
    teardown(&f);
}

/* Traces the store already holds as pending when the wrapper starts (after a restart,
 * replayed from the WAL) are decided; decided ones are left alone. */
static void test_pending_at_start_are_decided(void **state)
{
    (void)state;
    clew_store *inner = new_memory_store();
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "shop", NULL, NULL);
    clew_trace_id t_pend = tid(3, 1), t_kept = tid(3, 2);
    clew_span_data p = mk_span(&a, t_pend, 1, 0, "root", 0, 10000000);
    p.status_code = CLEW_STATUS_ERROR;
    clew_span_data k = mk_span(&a, t_kept, 2, 0, "root", 0, 10000000);
    clew_batch bp = mk_batch(&a, res, NULL, &p, 1), bk = mk_batch(&a, res, NULL, &k, 1);
    clew_trace_meta pending = {.state = CLEW_TRACE_PENDING, .adjusted_count = 1};
    clew_trace_meta kept = {.state = CLEW_TRACE_KEPT, .adjusted_count = 1};
    assert_int_equal(inner->ops->append(inner, &bp, &pending, NULL, NULL), CLEW_OK);
    assert_int_equal(inner->ops->append(inner, &bk, &kept, NULL, NULL), CLEW_OK);
    clew_trace_id *ids = NULL;
    size_t n = 0;
    assert_int_equal(inner->ops->pending_traces(inner, &ids, &n), CLEW_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(ids[0].bytes, t_pend.bytes, 16);
    clew__free(ids);

    fixture f;
    fake_now = 9000 * SEC;
    setup_with(&f, inner);
    fake_now += 3 * SEC; /* its root is in: decision_grace */
    assert_int_equal(clew__tail_store_run_once(f.s), 1);
    assert_int_equal(state_of(f.s, t_pend, NULL, NULL, 0), CLEW_TRACE_KEPT);
    assert_int_equal(state_of(f.s, t_kept, NULL, NULL, 0), CLEW_TRACE_KEPT);
    assert_int_equal(f.s->ops->pending_traces(f.s, &ids, &n), CLEW_OK);
    assert_int_equal(n, 0);
    clew__free(ids);
    teardown(&f);
    clew__arena_deinit(&a);
}

/* Pending traces are not decided at shutdown: they stay pending for the next start. */
static void test_destroy_leaves_pending(void **state)
{
    (void)state;
    fixture f;
    fake_now = 100 * SEC;
    setup_with(&f, new_memory_store());
    clew_resource *res = mk_res(&f.a, "shop", NULL, NULL);
    clew_span_data sp = mk_span(&f.a, tid(4, 1), 1, 0, "root", 0, 1000);
    clew_batch b = mk_batch(&f.a, res, NULL, &sp, 1);
    append(f.s, &b);
    assert_int_equal(clew__tail_store_run_once(f.s), 0);
    assert_ptr_equal(clew__tail_store_inner(f.s), f.inner);
    teardown(&f);
}

int main(void)
{
    (void)kv_int; /* fixtures this file does not need */
    (void)kv_str;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions_reach_the_store),
        cmocka_unit_test(test_decision_wait_without_root),
        cmocka_unit_test(test_pending_at_start_are_decided),
        cmocka_unit_test(test_destroy_leaves_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
