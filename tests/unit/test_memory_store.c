/*
 * tests/unit/test_memory_store.c - the memory store: append/get with dedup,
 * interning, eviction, name lists, search filters, metadata and a concurrency smoke
 * test (meaningful under ASan/TSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "store/store.h"
#include "store_fixtures.h"

/* ---- batch builders ---- */

static clew_kv kv_bool(clew_arena *a, const char *k, bool v)
{
    clew_kv kv = {S(a, k), {.type = CLEW_VALUE_BOOL}};
    kv.value.u.b = v;
    return kv;
}

static clew_kv kv_double(clew_arena *a, const char *k, double v)
{
    clew_kv kv = {S(a, k), {.type = CLEW_VALUE_DOUBLE}};
    kv.value.u.d = v;
    return kv;
}

static clew_scope *mk_scope(clew_arena *a, const char *name)
{
    clew_scope *s = clew__arena_calloc(a, 1, sizeof(*s));
    s->name = S(a, name);
    s->version = S(a, "1.0");
    return s;
}

static void set_attrs(clew_arena *a, clew_span_data *s, const clew_kv *kvs, uint32_t n)
{
    s->attrs.items = clew__arena_calloc(a, n, sizeof(clew_kv));
    memcpy(s->attrs.items, kvs, n * sizeof(clew_kv));
    s->attrs.n = n;
}

static int cb_calls;
static clew_status cb_rc;

static void count_cb(clew_status rc, void *ud)
{
    (void)ud;
    cb_calls++;
    cb_rc = rc;
}

static void append_ok(clew_store *st, const clew_batch *b, const clew_trace_meta *m)
{
    int before = cb_calls;
    assert_int_equal(st->ops->append(st, b, m, count_cb, NULL), CLEW_OK);
    /* memory is durable at once: the callback ran before append returned */
    assert_int_equal(cb_calls, before + 1);
    assert_int_equal(cb_rc, CLEW_OK);
}

static clew_store *new_store(size_t max_traces, size_t max_bytes)
{
    clew_memory_store_config cfg = {max_traces, max_bytes};
    clew_store *st = NULL;
    assert_int_equal(clew__memory_store_create(&cfg, &st), CLEW_OK);
    assert_non_null(st);
    return st;
}

/* Appends a one-span trace `lo` of service `svc`, operation `op`. */
static void add_simple(clew_store *st, uint64_t lo, const char *svc, const char *op, uint64_t start,
                       uint64_t dur)
{
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data s = mk_span(&a, tid(0, lo), 1, 0, op, start, start + dur);
    clew_batch b = mk_batch(&a, mk_res(&a, svc, NULL, NULL), mk_scope(&a, "lib"), &s, 1);
    append_ok(st, &b, NULL);
    clew__arena_deinit(&a);
}

/* ---- tests ---- */

static void append_get_dedup(void **state)
{
    (void)state;
    clew_store *st = new_store(0, 0);
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_trace_id t = tid(0x1111, 0x2222);
    clew_span_data spans[4] = {
        mk_span(&a, t, 3, 1, "child-late", 3000, 4000), mk_span(&a, t, 1, 0, "root", 1000, 9000),
        mk_span(&a, t, 2, 1, "child-early", 2000, 2500),
        mk_span(&a, t, 2, 1, "child-early", 2000, 2500), /* resent in the same batch */
    };
    clew_kv kvs[1] = {kv_str(&a, "http.method", "GET")};
    set_attrs(&a, &spans[1], kvs, 1);
    clew_batch b =
        mk_batch(&a, mk_res(&a, "api", "host.name", "h1"), mk_scope(&a, "lib"), spans, 4);
    append_ok(st, &b, NULL);
    append_ok(st, &b, NULL); /* the whole batch again: all duplicates */
    /* the store must not point into the caller's memory (ASan checks the reads below) */
    clew__arena_deinit(&a);

    clew_trace_result *r = NULL;
    assert_int_equal(st->ops->get_trace(st, &t, &r), CLEW_OK);
    assert_int_equal(r->n_spans, 3);
    assert_memory_equal(r->trace_id.bytes, t.bytes, 16);
    /* sorted by start time */
    assert_int_equal(r->spans[0]->start_ns, 1000);
    assert_int_equal(r->spans[1]->start_ns, 2000);
    assert_int_equal(r->spans[2]->start_ns, 3000);
    assert_int_equal(r->spans[0]->name.len, 4);
    assert_memory_equal(r->spans[0]->name.ptr, "root", 4);
    assert_int_equal(r->spans[0]->attrs.n, 1);
    assert_memory_equal(r->spans[0]->attrs.items[0].value.u.s.ptr, "GET", 3);
    clew_str svc = clew__resource_service(r->spans[2]->resource);
    assert_int_equal(svc.len, 3);
    assert_memory_equal(svc.ptr, "api", 3);
    assert_memory_equal(r->spans[1]->scope->name.ptr, "lib", 3);
    /* default metadata when append got none */
    assert_int_equal(r->meta.state, CLEW_TRACE_KEPT);
    assert_true(r->meta.adjusted_count == 1.0);

    clew_store_stats stats;
    st->ops->stats(st, &stats);
    assert_int_equal(stats.spans, 3);
    assert_int_equal(stats.traces, 1);
    assert_int_equal(stats.duplicate_spans, 1 + 4);
    assert_int_equal(stats.evicted_traces, 0);
    assert_true(stats.bytes > 0);

    clew_trace_id missing = tid(0, 42);
    clew_trace_result *none = NULL;
    assert_int_equal(st->ops->get_trace(st, &missing, &none), CLEW_ENOTFOUND);
    assert_null(none);
    clew__trace_result_free(r);
    /* the result outlives nothing: freeing it after destroy would also be fine */
    clew__store_destroy(st);
}

static void result_outlives_store(void **state)
{
    (void)state;
    clew_store *st = new_store(0, 0);
    add_simple(st, 7, "svc", "op", 100, 50);
    clew_trace_id t = tid(0, 7);
    clew_trace_result *r = NULL;
    assert_int_equal(st->ops->get_trace(st, &t, &r), CLEW_OK);
    clew__store_destroy(st);
    /* everything the result points at is its own (ASan would catch a dangling read) */
    clew_str svc = clew__resource_service(r->spans[0]->resource);
    assert_memory_equal(svc.ptr, "svc", 3);
    assert_memory_equal(r->spans[0]->scope->name.ptr, "lib", 3);
    clew__trace_result_free(r);
}

static void resources_interned(void **state)
{
    (void)state;
    /* 50 traces whose resource carries a 20 KB attribute, each from its own batch
     * arena: interned, the store holds one copy, not 50 */
    clew_store *st = new_store(0, 0);
    char *big = clew__malloc(20001);
    memset(big, 'x', 20000);
    big[20000] = '\0';
    for (uint64_t i = 1; i <= 50; i++) {
        clew_arena a;
        clew__arena_init(&a, 4096, 0);
        clew_span_data s = mk_span(&a, tid(0, i), 1, 0, "op", 1000 * i, 1000 * i + 10);
        clew_batch b = mk_batch(&a, mk_res(&a, "svc", "blob", big), mk_scope(&a, "lib"), &s, 1);
        append_ok(st, &b, NULL);
        clew__arena_deinit(&a);
    }
    clew_store_stats stats;
    st->ops->stats(st, &stats);
    assert_int_equal(stats.traces, 50);
    assert_true(stats.bytes < 5 * 20000);

    /* two resources in one trace: spans keep their own */
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_trace_id t = tid(9, 9);
    clew_span_data s1 = mk_span(&a, t, 1, 0, "front", 10, 100);
    clew_span_data s2 = mk_span(&a, t, 2, 1, "back", 20, 90);
    clew_batch b1 = mk_batch(&a, mk_res(&a, "frontend", "k", "v1"), mk_scope(&a, "x"), &s1, 1);
    clew_batch b2 = mk_batch(&a, mk_res(&a, "backend", "k", "v2"), mk_scope(&a, "y"), &s2, 1);
    append_ok(st, &b1, NULL);
    append_ok(st, &b2, NULL);
    clew__arena_deinit(&a);
    clew_trace_result *r = NULL;
    assert_int_equal(st->ops->get_trace(st, &t, &r), CLEW_OK);
    assert_int_equal(r->n_spans, 2);
    assert_memory_equal(clew__resource_service(r->spans[0]->resource).ptr, "frontend", 8);
    assert_memory_equal(clew__resource_service(r->spans[1]->resource).ptr, "backend", 7);
    assert_memory_equal(r->spans[1]->scope->name.ptr, "y", 1);
    clew__trace_result_free(r);
    clew__free(big);
    clew__store_destroy(st);
}

static void interned_freed_with_last_trace(void **state)
{
    (void)state;
    /* one trace at a time: each new trace evicts the previous one, and with it the
     * only reference to its 20 KB resource, so memory stays near one trace's worth */
    clew_store *st = new_store(1, 0);
    char *big = clew__malloc(20001);
    memset(big, 'r', 20000);
    big[20000] = '\0';
    for (uint64_t i = 1; i <= 20; i++) {
        clew_arena a;
        clew__arena_init(&a, 4096, 0);
        big[0] = (char)('a' + i); /* a distinct resource per trace */
        clew_span_data s = mk_span(&a, tid(0, i), 1, 0, "op", i, i + 1);
        clew_batch b = mk_batch(&a, mk_res(&a, "svc", "blob", big), mk_scope(&a, "lib"), &s, 1);
        append_ok(st, &b, NULL);
        clew__arena_deinit(&a);
    }
    clew_store_stats stats;
    st->ops->stats(st, &stats);
    assert_int_equal(stats.traces, 1);
    assert_int_equal(stats.evicted_traces, 19);
    assert_true(stats.bytes > 20000);
    assert_true(stats.bytes < 2 * 20000);
    clew__free(big);
    clew__store_destroy(st);
}

static void evict_by_count(void **state)
{
    (void)state;
    clew_store *st = new_store(3, 0);
    for (uint64_t i = 1; i <= 5; i++) {
        add_simple(st, i, "svc", "op", i * 1000, 10);
    }
    clew_store_stats stats;
    st->ops->stats(st, &stats);
    assert_int_equal(stats.traces, 3);
    assert_int_equal(stats.spans, 3);
    assert_int_equal(stats.evicted_traces, 2);
    for (uint64_t i = 1; i <= 5; i++) {
        clew_trace_id t = tid(0, i);
        clew_trace_result *r = NULL;
        clew_status rc = st->ops->get_trace(st, &t, &r);
        /* the two oldest went first */
        assert_int_equal(rc, i <= 2 ? CLEW_ENOTFOUND : CLEW_OK);
        clew__trace_result_free(r);
    }
    /* adding spans to an old trace does not make it newer: creation order counts */
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data s = mk_span(&a, tid(0, 3), 2, 1, "late", 5000, 5010);
    clew_batch b = mk_batch(&a, mk_res(&a, "svc", NULL, NULL), mk_scope(&a, "lib"), &s, 1);
    append_ok(st, &b, NULL);
    clew__arena_deinit(&a);
    add_simple(st, 6, "svc", "op", 6000, 10);
    clew_trace_id t3 = tid(0, 3);
    clew_trace_result *r = NULL;
    assert_int_equal(st->ops->get_trace(st, &t3, &r), CLEW_ENOTFOUND);
    st->ops->stats(st, &stats);
    assert_int_equal(stats.evicted_traces, 3);
    clew__store_destroy(st);
}

static void evict_by_bytes(void **state)
{
    (void)state;
    const size_t budget = 256 * 1024;
    clew_store *st = new_store(0, budget);
    char val[8193];
    memset(val, 'v', 8192);
    val[8192] = '\0';
    for (uint64_t i = 1; i <= 200; i++) {
        clew_arena a;
        clew__arena_init(&a, 4096, 0);
        clew_span_data s = mk_span(&a, tid(0, i), 1, 0, "op", i, i + 1);
        clew_kv kvs[1] = {kv_str(&a, "payload", val)};
        set_attrs(&a, &s, kvs, 1);
        clew_batch b = mk_batch(&a, mk_res(&a, "svc", NULL, NULL), mk_scope(&a, "lib"), &s, 1);
        append_ok(st, &b, NULL);
        clew__arena_deinit(&a);
        clew_store_stats stats;
        st->ops->stats(st, &stats);
        assert_true(stats.bytes <= budget);
    }
    clew_store_stats stats;
    st->ops->stats(st, &stats);
    /* 200 x 8 KB cannot fit in 256 KB: most were evicted, the newest kept */
    assert_true(stats.evicted_traces > 150);
    assert_int_equal(stats.evicted_traces + stats.traces, 200);
    clew_trace_id newest = tid(0, 200), oldest = tid(0, 1);
    clew_trace_result *r = NULL;
    assert_int_equal(st->ops->get_trace(st, &newest, &r), CLEW_OK);
    clew__trace_result_free(r);
    r = NULL;
    assert_int_equal(st->ops->get_trace(st, &oldest, &r), CLEW_ENOTFOUND);
    clew__store_destroy(st);
}

static void names_sorted(void **state)
{
    (void)state;
    clew_store *st = new_store(0, 0);
    add_simple(st, 1, "zeta", "GET /z", 1, 1);
    add_simple(st, 2, "alpha", "b-op", 1, 1);
    add_simple(st, 3, "alpha", "a-op", 1, 1);
    add_simple(st, 4, "mid", "m", 1, 1);
    add_simple(st, 5, "alpha", "a-op", 1, 1); /* same op again: listed once */
    /* a client span with the same name as a server one: a second (name, kind) entry */
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data s = mk_span(&a, tid(0, 6), 1, 0, "a-op", 1, 2);
    s.kind = CLEW_KIND_CLIENT;
    clew_batch b = mk_batch(&a, mk_res(&a, "alpha", NULL, NULL), mk_scope(&a, "lib"), &s, 1);
    append_ok(st, &b, NULL);
    clew__arena_deinit(&a);

    clew_name_list *l = NULL;
    assert_int_equal(st->ops->services(st, &l), CLEW_OK);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->names[0].ptr, "alpha");
    assert_string_equal(l->names[1].ptr, "mid");
    assert_string_equal(l->names[2].ptr, "zeta");
    assert_null(l->kinds);
    clew__name_list_free(l);

    clew_str alpha = {"alpha", 5};
    assert_int_equal(st->ops->operations(st, alpha, CLEW_KIND_UNSPECIFIED, &l), CLEW_OK);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->names[0].ptr, "a-op");
    assert_string_equal(l->names[1].ptr, "a-op");
    assert_string_equal(l->names[2].ptr, "b-op");
    assert_int_equal(l->kinds[0], CLEW_KIND_SERVER);
    assert_int_equal(l->kinds[1], CLEW_KIND_CLIENT);
    clew__name_list_free(l);

    assert_int_equal(st->ops->operations(st, alpha, CLEW_KIND_CLIENT, &l), CLEW_OK);
    assert_int_equal(l->n, 1);
    assert_string_equal(l->names[0].ptr, "a-op");
    assert_int_equal(l->kinds[0], CLEW_KIND_CLIENT);
    clew__name_list_free(l);

    clew_str all = {"", 0};
    assert_int_equal(st->ops->operations(st, all, CLEW_KIND_SERVER, &l), CLEW_OK);
    assert_int_equal(l->n, 4);
    assert_string_equal(l->names[0].ptr, "GET /z");
    assert_string_equal(l->names[3].ptr, "m");
    clew__name_list_free(l);

    clew_str nosuch = {"nosuch", 6};
    assert_int_equal(st->ops->operations(st, nosuch, CLEW_KIND_UNSPECIFIED, &l), CLEW_OK);
    assert_int_equal(l->n, 0);
    clew__name_list_free(l);
    clew__store_destroy(st);
}

/* A store with a few varied traces for the search tests:
 *   T1 (oldest): frontend "GET /" 0..100ms, child backend "query" with db.rows=5,
 *                http.status_code=200 (int), cache.hit=true, ratio=0.5; resource region=eu
 *   T2: frontend "GET /" 1s..1.5s, error status on the root
 *   T3 (newest): backend "query" 2s..2.01s, resource region=us */
static clew_store *search_store(void)
{
    clew_store *st = new_store(0, 0);
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    const uint64_t ms = 1000000;
    clew_resource *fe = mk_res(&a, "frontend", "region", "eu");
    clew_resource *be = mk_res(&a, "backend", "region", "eu");
    clew_resource *be_us = mk_res(&a, "backend", "region", "us");
    clew_scope *sc = mk_scope(&a, "lib");

    clew_span_data r1 = mk_span(&a, tid(0, 1), 1, 0, "GET /", 0, 100 * ms);
    clew_span_data c1 = mk_span(&a, tid(0, 1), 2, 1, "query", 10 * ms, 60 * ms);
    c1.kind = CLEW_KIND_CLIENT;
    clew_kv kvs[4] = {kv_int(&a, "db.rows", 5), kv_int(&a, "http.status_code", 200),
                      kv_bool(&a, "cache.hit", true), kv_double(&a, "ratio", 0.5)};
    set_attrs(&a, &c1, kvs, 4);
    clew_batch b = mk_batch(&a, fe, sc, &r1, 1);
    append_ok(st, &b, NULL);
    b = mk_batch(&a, be, sc, &c1, 1);
    append_ok(st, &b, NULL);

    clew_span_data r2 = mk_span(&a, tid(0, 2), 1, 0, "GET /", 1000 * ms, 1500 * ms);
    r2.status_code = CLEW_STATUS_ERROR;
    b = mk_batch(&a, fe, sc, &r2, 1);
    append_ok(st, &b, NULL);

    clew_span_data r3 = mk_span(&a, tid(0, 3), 1, 0, "query", 2000 * ms, 2010 * ms);
    b = mk_batch(&a, be_us, sc, &r3, 1);
    append_ok(st, &b, NULL);
    clew__arena_deinit(&a);
    return st;
}

/* Runs q and returns the matching trace ids' low bytes, newest first, as a string
 * like "321" (so a failure prints what was found). */
static void search_ids(clew_store *st, const clew_search_query *q, char *out, size_t cap)
{
    clew_search_result *r = NULL;
    assert_int_equal(st->ops->search(st, q, &r), CLEW_OK);
    size_t n = 0;
    for (size_t i = 0; i < r->n_traces && n + 1 < cap; i++) {
        out[n++] = (char)('0' + r->traces[i].trace_id.bytes[15]);
    }
    out[n] = '\0';
    clew__search_result_free(r);
}

#define EXPECT_IDS(q, want)                                                                        \
    do {                                                                                           \
        char got_[32];                                                                             \
        search_ids(st, (q), got_, sizeof(got_));                                                   \
        assert_string_equal(got_, (want));                                                         \
    } while (0)

static clew_str cs(const char *s)
{
    return (clew_str){s, strlen(s)};
}

static void search_filters(void **state)
{
    (void)state;
    clew_store *st = search_store();
    const uint64_t ms = 1000000;
    clew_search_query q;

    memset(&q, 0, sizeof(q));
    EXPECT_IDS(&q, "321"); /* everything, newest first */

    q.service = cs("frontend");
    EXPECT_IDS(&q, "21");
    q.service = cs("backend");
    EXPECT_IDS(&q, "31");
    q.operation = cs("query");
    EXPECT_IDS(&q, "31");
    q.operation = cs("GET /"); /* backend never ran GET / */
    EXPECT_IDS(&q, "");
    q.service = cs("");
    EXPECT_IDS(&q, "21");

    /* tags on span attributes, typed values compared by their text */
    memset(&q, 0, sizeof(q));
    q.n_tags = 1;
    q.tags[0] = (clew_tag_filter){cs("http.status_code"), cs("200")};
    EXPECT_IDS(&q, "1");
    q.tags[0] = (clew_tag_filter){cs("http.status_code"), cs("201")};
    EXPECT_IDS(&q, "");
    q.tags[0] = (clew_tag_filter){cs("cache.hit"), cs("true")};
    EXPECT_IDS(&q, "1");
    q.tags[0] = (clew_tag_filter){cs("ratio"), cs("0.50")};
    EXPECT_IDS(&q, "1");
    /* resource attributes match too */
    q.tags[0] = (clew_tag_filter){cs("region"), cs("us")};
    EXPECT_IDS(&q, "3");
    q.tags[0] = (clew_tag_filter){cs("region"), cs("eu")};
    EXPECT_IDS(&q, "21");
    /* derived tags the v1 API shows */
    q.tags[0] = (clew_tag_filter){cs("error"), cs("true")};
    EXPECT_IDS(&q, "2");
    q.tags[0] = (clew_tag_filter){cs("span.kind"), cs("client")};
    EXPECT_IDS(&q, "1");

    /* several tags: all on the same span (or its resource) */
    q.n_tags = 2;
    q.tags[0] = (clew_tag_filter){cs("db.rows"), cs("5")};
    q.tags[1] = (clew_tag_filter){cs("region"), cs("eu")};
    EXPECT_IDS(&q, "1");
    q.tags[1] = (clew_tag_filter){cs("error"), cs("true")}; /* error is on another trace */
    EXPECT_IDS(&q, "");
    /* service + tag must hold on one span: frontend's span has no db.rows */
    q.n_tags = 1;
    q.tags[0] = (clew_tag_filter){cs("db.rows"), cs("5")};
    q.service = cs("frontend");
    EXPECT_IDS(&q, "");
    q.service = cs("backend");
    EXPECT_IDS(&q, "1");

    /* durations: T1 100ms, T2 500ms, T3 10ms */
    memset(&q, 0, sizeof(q));
    q.min_duration_ns = 50 * ms;
    EXPECT_IDS(&q, "21");
    q.max_duration_ns = 200 * ms;
    EXPECT_IDS(&q, "1");
    q.min_duration_ns = 0;
    EXPECT_IDS(&q, "31");

    /* start window */
    memset(&q, 0, sizeof(q));
    q.start_min_ns = 500 * ms;
    EXPECT_IDS(&q, "32");
    q.start_max_ns = 1500 * ms;
    EXPECT_IDS(&q, "2");

    memset(&q, 0, sizeof(q));
    q.errors_only = true;
    EXPECT_IDS(&q, "2");

    memset(&q, 0, sizeof(q));
    q.limit = 2;
    EXPECT_IDS(&q, "32");
    q.limit = 1;
    q.service = cs("frontend");
    EXPECT_IDS(&q, "2");

    /* summaries */
    memset(&q, 0, sizeof(q));
    clew_search_result *r = NULL;
    assert_int_equal(st->ops->search(st, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, 3);
    const clew_trace_summary *t1 = &r->traces[2];
    assert_int_equal(t1->start_ns, 0);
    assert_int_equal(t1->duration_ns, 100 * ms);
    assert_int_equal(t1->span_count, 2);
    assert_int_equal(t1->error_count, 0);
    assert_string_equal(t1->root_service.ptr, "frontend");
    assert_string_equal(t1->root_operation.ptr, "GET /");
    assert_int_equal(r->traces[1].error_count, 1);
    assert_int_equal(r->traces[0].state, CLEW_TRACE_KEPT);
    clew__search_result_free(r);
    clew__store_destroy(st);
}

static void default_limit(void **state)
{
    (void)state;
    clew_store *st = new_store(0, 0);
    for (uint64_t i = 1; i <= 30; i++) {
        add_simple(st, i, "svc", "op", i, 1);
    }
    clew_search_query q;
    memset(&q, 0, sizeof(q));
    clew_search_result *r = NULL;
    assert_int_equal(st->ops->search(st, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, 20);
    assert_int_equal(r->traces[0].trace_id.bytes[15], 30);
    assert_int_equal(r->traces[19].trace_id.bytes[15], 11);
    clew__search_result_free(r);
    clew__store_destroy(st);
}

static void root_is_parentless_span(void **state)
{
    (void)state;
    /* the root arrives after a child that started earlier (clock skew) */
    clew_store *st = new_store(0, 0);
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_trace_id t = tid(0, 1);
    clew_span_data spans[2] = {mk_span(&a, t, 2, 1, "child", 50, 80),
                               mk_span(&a, t, 1, 0, "root", 100, 200)};
    clew_batch b = mk_batch(&a, mk_res(&a, "svc", NULL, NULL), mk_scope(&a, "l"), spans, 2);
    append_ok(st, &b, NULL);
    clew__arena_deinit(&a);
    clew_search_query q;
    memset(&q, 0, sizeof(q));
    clew_search_result *r = NULL;
    assert_int_equal(st->ops->search(st, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, 1);
    assert_string_equal(r->traces[0].root_operation.ptr, "root");
    assert_int_equal(r->traces[0].start_ns, 50);
    assert_int_equal(r->traces[0].duration_ns, 150);
    clew__search_result_free(r);
    clew__store_destroy(st);
}

static void trace_meta(void **state)
{
    (void)state;
    clew_store *st = new_store(0, 0);
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data s = mk_span(&a, tid(0, 1), 1, 0, "op", 1, 2);
    clew_batch b = mk_batch(&a, mk_res(&a, "svc", NULL, NULL), mk_scope(&a, "l"), &s, 1);
    clew_trace_meta m = {.state = CLEW_TRACE_PENDING,
                         .kept_reason = {"", 0},
                         .adjusted_count = 1.0,
                         .tenant = cs("acme")};
    append_ok(st, &b, &m);
    clew__arena_deinit(&a);

    clew_trace_id t = tid(0, 1);
    clew_trace_result *r = NULL;
    assert_int_equal(st->ops->get_trace(st, &t, &r), CLEW_OK);
    assert_int_equal(r->meta.state, CLEW_TRACE_PENDING);
    assert_int_equal(r->meta.tenant.len, 4);
    assert_memory_equal(r->meta.tenant.ptr, "acme", 4);
    clew__trace_result_free(r);

    char reason[] = "errors-policy";
    clew_trace_meta kept = {.state = CLEW_TRACE_KEPT,
                            .kept_reason = cs(reason),
                            .adjusted_count = 10.0,
                            .tenant = cs("acme")};
    assert_int_equal(st->ops->set_trace_meta(st, &t, &kept), CLEW_OK);
    memset(reason, 0, sizeof(reason)); /* the store copied it */
    assert_int_equal(st->ops->get_trace(st, &t, &r), CLEW_OK);
    assert_int_equal(r->meta.state, CLEW_TRACE_KEPT);
    assert_string_equal(r->meta.kept_reason.ptr, "errors-policy");
    assert_true(r->meta.adjusted_count == 10.0);
    clew__trace_result_free(r);

    /* a late span sent as pending does not undo the decision */
    clew__arena_init(&a, 4096, 0);
    clew_span_data late = mk_span(&a, tid(0, 1), 2, 1, "late", 3, 4);
    b = mk_batch(&a, mk_res(&a, "svc", NULL, NULL), mk_scope(&a, "l"), &late, 1);
    append_ok(st, &b, &m);
    clew__arena_deinit(&a);
    assert_int_equal(st->ops->get_trace(st, &t, &r), CLEW_OK);
    assert_int_equal(r->n_spans, 2);
    assert_int_equal(r->meta.state, CLEW_TRACE_KEPT);
    assert_true(r->meta.adjusted_count == 10.0);
    clew__trace_result_free(r);

    clew_trace_id missing = tid(0, 99);
    assert_int_equal(st->ops->set_trace_meta(st, &missing, &kept), CLEW_ENOTFOUND);
    clew__store_destroy(st);
}

static void value_text_matching(void **state)
{
    (void)state;
    clew_value v = {.type = CLEW_VALUE_STRING};
    v.u.s = cs("abc");
    assert_true(clew__value_matches_text(&v, cs("abc")));
    assert_false(clew__value_matches_text(&v, cs("ab")));
    v.type = CLEW_VALUE_BOOL;
    v.u.b = false;
    assert_true(clew__value_matches_text(&v, cs("false")));
    assert_false(clew__value_matches_text(&v, cs("true")));
    v.type = CLEW_VALUE_INT;
    v.u.i = -42;
    assert_true(clew__value_matches_text(&v, cs("-42")));
    assert_false(clew__value_matches_text(&v, cs("-42x")));
    assert_false(clew__value_matches_text(&v, cs("99999999999999999999")));
    v.u.i = INT64_MIN;
    assert_true(clew__value_matches_text(&v, cs("-9223372036854775808")));
    v.type = CLEW_VALUE_DOUBLE;
    v.u.d = 1.5;
    assert_true(clew__value_matches_text(&v, cs("1.5")));
    assert_true(clew__value_matches_text(&v, cs("15e-1")));
    assert_false(clew__value_matches_text(&v, cs("1.5 ")));
    assert_false(clew__value_matches_text(&v, cs("")));
    v.type = CLEW_VALUE_BYTES;
    v.u.s = cs("hi!?");
    assert_true(clew__value_matches_text(&v, cs("aGkhPw==")));
    assert_false(clew__value_matches_text(&v, cs("aGkhPw")));
    v.type = CLEW_VALUE_ARRAY;
    v.u.array.n = 0;
    v.u.array.items = NULL;
    assert_false(clew__value_matches_text(&v, cs("[]")));
    assert_false(clew__value_matches_text(NULL, cs("x")));
}

/* Every allocation failure point of append, get, search and the name lists: each
 * call returns OK or ENOMEM (never crashes), and nothing leaks (ASan checks at exit). */
static void out_of_memory(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_trace_id t = tid(0, 5);
    clew_span_data spans[3] = {mk_span(&a, t, 1, 0, "root", 1, 10), mk_span(&a, t, 2, 1, "c", 2, 5),
                               mk_span(&a, tid(0, 6), 1, 0, "other", 3, 4)};
    clew_kv kvs[2] = {kv_str(&a, "k", "v"), kv_int(&a, "n", 1)};
    set_attrs(&a, &spans[0], kvs, 2);
    clew_batch b = mk_batch(&a, mk_res(&a, "svc", "host", "h"), mk_scope(&a, "lib"), spans, 3);
    int completed = 0;
    for (long n = 0; n < 200; n++) {
        clew_memory_store_config cfg = {1, 0}; /* 1: eviction runs too */
        clew_store *st = NULL;
        clew__alloc_fail_after(n);
        clew_status rc = clew__memory_store_create(&cfg, &st);
        if (rc != CLEW_OK) {
            clew__alloc_fail_after(-1);
            assert_int_equal(rc, CLEW_ENOMEM);
            continue;
        }
        rc = st->ops->append(st, &b, NULL, NULL, NULL);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        clew_trace_result *r = NULL;
        rc = st->ops->get_trace(st, &t, &r);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM || rc == CLEW_ENOTFOUND);
        clew__trace_result_free(r);
        clew_search_query q;
        memset(&q, 0, sizeof(q));
        clew_search_result *sr = NULL;
        rc = st->ops->search(st, &q, &sr);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        clew__search_result_free(sr);
        clew_name_list *l = NULL;
        rc = st->ops->services(st, &l);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        clew__name_list_free(l);
        l = NULL;
        rc = st->ops->operations(st, cs(""), CLEW_KIND_UNSPECIFIED, &l);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        clew__name_list_free(l);
        clew__alloc_fail_after(-1);
        /* after the failures the store still works */
        rc = st->ops->append(st, &b, NULL, NULL, NULL);
        assert_int_equal(rc, CLEW_OK);
        clew_store_stats stats;
        st->ops->stats(st, &stats);
        assert_int_equal(stats.traces, 1);
        completed++;
        clew__store_destroy(st);
    }
    assert_true(completed > 0);
    clew__arena_deinit(&a);
}

/* ---- the copy into the store: every part of a span, keys shared, sized blocks ---- */

/* A span using every part of the model that append copies; `tag` varies the strings. */
static clew_span_data rich_span(clew_arena *a, clew_trace_id t, uint64_t id, uint64_t parent,
                                uint64_t start, const char *tag)
{
    clew_span_data s = mk_span(a, t, id, parent, "rich-op", start, start + 10);
    s.trace_state = S(a, "vendor=1");
    s.status_code = CLEW_STATUS_ERROR;
    s.status_message = S(a, tag);
    clew_value *arr = clew__arena_calloc(a, 2, sizeof(*arr));
    arr[0] = (clew_value){.type = CLEW_VALUE_STRING, .u.s = S(a, tag)};
    arr[1] = (clew_value){.type = CLEW_VALUE_INT, .u.i = (int64_t)id};
    clew_kv *inner = clew__arena_calloc(a, 2, sizeof(*inner));
    inner[0] = kv_str(a, "inner.key", tag);
    inner[1] = kv_bool(a, "inner.flag", true);
    clew_kv kvs[6] = {kv_str(a, "http.route", "/a/{id}"), kv_str(a, "tag", tag),
                      kv_double(a, "ratio", 0.25)};
    kvs[3] = (clew_kv){S(a, "arr"), {.type = CLEW_VALUE_ARRAY}};
    kvs[3].value.u.array.items = arr;
    kvs[3].value.u.array.n = 2;
    kvs[4] = (clew_kv){S(a, "map"), {.type = CLEW_VALUE_KVLIST}};
    kvs[4].value.u.kvlist.items = inner;
    kvs[4].value.u.kvlist.n = 2;
    kvs[5] = (clew_kv){S(a, ""), {.type = CLEW_VALUE_BYTES, .u.s = S(a, "\x01\x02")}};
    set_attrs(a, &s, kvs, 6);
    s.attrs.dropped = 3;
    s.events = clew__arena_calloc(a, 2, sizeof(*s.events));
    s.n_events = 2;
    s.dropped_events = 1;
    for (uint32_t i = 0; i < 2; i++) {
        s.events[i].time_ns = start + i;
        s.events[i].name = S(a, i ? "retry" : tag);
        s.events[i].attrs.items = clew__arena_calloc(a, 1, sizeof(clew_kv));
        s.events[i].attrs.items[0] = kv_int(a, "attempt", i);
        s.events[i].attrs.n = 1;
    }
    s.links = clew__arena_calloc(a, 1, sizeof(*s.links));
    s.n_links = 1;
    s.links[0].trace_id = tid(9, id);
    s.links[0].span_id = sid(id + 100);
    s.links[0].trace_state = S(a, tag);
    s.links[0].flags = 1;
    s.links[0].attrs.items = clew__arena_calloc(a, 1, sizeof(clew_kv));
    s.links[0].attrs.items[0] = kv_str(a, "link.kind", "follows");
    s.links[0].attrs.n = 1;
    return s;
}

/* Trace `t` split over two resource groups of one batch, with a span resent in the
 * same batch; span i starts at 100 + i so get_trace returns them in input order. */
static clew_batch split_batch(clew_arena *a, clew_trace_id t, uint64_t first, size_t n)
{
    clew_span_data *spans = clew__arena_calloc(a, n + 1, sizeof(*spans));
    for (size_t i = 0; i < n; i++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "value-%zu", (size_t)first + i);
        spans[i] = rich_span(a, t, first + i, i ? first : 0, 100 + first + i, tag);
    }
    spans[n] = spans[0];
    clew_batch one =
        mk_batch(a, mk_res(a, "front", NULL, NULL), mk_scope(a, "lib"), spans, n / 2 + 1);
    clew_batch two = mk_batch(a, mk_res(a, "back", "host.name", "h2"), mk_scope(a, "lib2"),
                              spans + n / 2 + 1, n - n / 2);
    clew_batch b = one;
    b.rs = clew__arena_calloc(a, 2, sizeof(*b.rs));
    b.rs[0] = one.rs[0];
    b.rs[1] = two.rs[0];
    b.n_rs = 2;
    b.n_spans = n + 1;
    return b;
}

/* get_trace(t) has `total` spans, among them the n spans split_batch(first..)
 * built, field by field. */
static void assert_split_trace(clew_store *st, clew_trace_id t, uint64_t first, size_t n,
                               size_t total)
{
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch want = split_batch(&a, t, first, n);
    clew_trace_result *r = NULL;
    assert_int_equal(st->ops->get_trace(st, &t, &r), CLEW_OK);
    assert_int_equal(r->n_spans, total);
    size_t found = 0;
    for (size_t g = 0; g < want.n_rs; g++) {
        /* the last span is the resend of the first: the store kept the first copy */
        size_t m = want.rs[g].scopes[0].n_spans - (g + 1 == want.n_rs);
        for (size_t i = 0; i < m; i++) {
            const clew_span_data *w = &want.rs[g].scopes[0].spans[i];
            size_t k = 0;
            while (k < r->n_spans && memcmp(r->spans[k]->span_id.bytes, w->span_id.bytes, 8) != 0) {
                k++;
            }
            assert_true(k < r->n_spans);
            assert_true(clew__span_equal(r->spans[k], w));
            found++;
        }
    }
    assert_int_equal(found, n);
    clew__trace_result_free(r);
    clew__arena_deinit(&a);
}

static void copy_keeps_every_field(void **state)
{
    (void)state;
    clew_store *st = new_store(0, 0);
    clew_trace_id t = tid(3, 3);
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b = split_batch(&a, t, 1, 7);
    append_ok(st, &b, NULL);
    /* the store must not point into the caller's memory (ASan checks the reads below) */
    clew__arena_deinit(&a);
    assert_split_trace(st, t, 1, 7, 7);
    clew_store_stats stats;
    st->ops->stats(st, &stats);
    assert_int_equal(stats.spans, 7);
    assert_int_equal(stats.traces, 1);
    assert_int_equal(stats.duplicate_spans, 1);

    /* the trace keeps growing over later appends (new blocks, a bigger dedup set) */
    for (uint64_t round = 0; round < 20; round++) {
        clew__arena_init(&a, 4096, 0);
        b = split_batch(&a, t, 1000 + round * 10, 9);
        append_ok(st, &b, NULL);
        clew__arena_deinit(&a);
    }
    assert_split_trace(st, t, 1, 7, 7 + 20 * 9);
    assert_split_trace(st, t, 1190, 9, 7 + 20 * 9);

    /* shared keys and names still find spans */
    clew_search_query q;
    memset(&q, 0, sizeof(q));
    q.operation = cs("rich-op");
    q.n_tags = 1;
    q.tags[0] = (clew_tag_filter){cs("tag"), cs("value-1195")};
    clew_search_result *sr = NULL;
    assert_int_equal(st->ops->search(st, &q, &sr), CLEW_OK);
    assert_int_equal(sr->n_traces, 1);
    clew__search_result_free(sr);
    q.tags[0] = (clew_tag_filter){cs("tag"), cs("value-1199")};
    assert_int_equal(st->ops->search(st, &q, &sr), CLEW_OK);
    assert_int_equal(sr->n_traces, 0);
    clew__search_result_free(sr);
    clew__store_destroy(st);
}

/* More distinct keys than the store shares, and keys and values too long to share:
 * spans keep them all, and keys seen later still round trip. */
static void many_and_long_keys(void **state)
{
    (void)state;
    clew_store *st = new_store(0, 0);
    enum { N_KEYS = 9000 };
    char long_key[300];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    for (uint64_t t = 1; t <= 2; t++) {
        clew_arena a;
        clew__arena_init(&a, 65536, 0);
        clew_span_data s = mk_span(&a, tid(0, t), 1, 0, "keys", 10, 20);
        clew_kv *kvs = clew__arena_calloc(&a, N_KEYS + 2, sizeof(*kvs));
        for (uint32_t i = 0; i < N_KEYS; i++) {
            char k[32];
            snprintf(k, sizeof(k), "key-%" PRIu64 "-%u", t, i);
            kvs[i] = kv_int(&a, k, i);
        }
        kvs[N_KEYS] = kv_str(&a, long_key, "long");
        kvs[N_KEYS + 1] = kv_str(&a, "long.value", long_key);
        s.attrs.items = kvs;
        s.attrs.n = N_KEYS + 2;
        clew_batch b = mk_batch(&a, mk_res(&a, "svc", NULL, NULL), mk_scope(&a, "lib"), &s, 1);
        append_ok(st, &b, NULL);
        clew__arena_deinit(&a);
    }
    for (uint64_t t = 1; t <= 2; t++) {
        clew_trace_id id = tid(0, t);
        clew_trace_result *r = NULL;
        assert_int_equal(st->ops->get_trace(st, &id, &r), CLEW_OK);
        const clew_attrs *at = &r->spans[0]->attrs;
        assert_int_equal(at->n, N_KEYS + 2);
        for (uint32_t i = 0; i < N_KEYS; i++) {
            char k[32];
            int n = snprintf(k, sizeof(k), "key-%" PRIu64 "-%u", t, i);
            assert_int_equal(at->items[i].key.len, (size_t)n);
            assert_memory_equal(at->items[i].key.ptr, k, (size_t)n);
            assert_int_equal(at->items[i].value.u.i, i);
        }
        assert_int_equal(at->items[N_KEYS].key.len, strlen(long_key));
        assert_memory_equal(at->items[N_KEYS].key.ptr, long_key, strlen(long_key));
        assert_int_equal(at->items[N_KEYS + 1].value.u.s.len, strlen(long_key));
        assert_memory_equal(at->items[N_KEYS + 1].value.u.s.ptr, long_key, strlen(long_key));
        clew__trace_result_free(r);
    }
    clew__store_destroy(st);
}

/* Failing allocations anywhere in a batch of two traces over two resource groups
 * leave no trace without spans, and a retry completes both traces exactly. */
static void out_of_memory_split_batch(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b1 = split_batch(&a, tid(4, 1), 1, 5);
    clew_batch b2 = split_batch(&a, tid(4, 2), 50, 4);
    clew_batch b = b1;
    b.rs = clew__arena_calloc(&a, 4, sizeof(*b.rs));
    b.rs[0] = b1.rs[0];
    b.rs[1] = b2.rs[0];
    b.rs[2] = b1.rs[1];
    b.rs[3] = b2.rs[1];
    b.n_rs = 4;
    b.n_spans = b1.n_spans + b2.n_spans;
    int failed = 0;
    for (long n = 0; n < 400; n++) {
        clew_store *st = new_store(0, 0);
        clew__alloc_fail_after(n);
        clew_status rc = st->ops->append(st, &b, NULL, NULL, NULL);
        clew__alloc_fail_after(-1);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        failed += rc != CLEW_OK;
        clew_store_stats stats;
        st->ops->stats(st, &stats);
        /* no trace without spans */
        assert_true(stats.traces <= stats.spans);
        assert_int_equal(st->ops->append(st, &b, NULL, NULL, NULL), CLEW_OK);
        assert_split_trace(st, tid(4, 1), 1, 5, 5);
        assert_split_trace(st, tid(4, 2), 50, 4, 4);
        st->ops->stats(st, &stats);
        assert_int_equal(stats.traces, 2);
        assert_int_equal(stats.spans, 9);
        clew__store_destroy(st);
        if (rc == CLEW_OK) {
            break;
        }
    }
    assert_true(failed > 0);
    clew__arena_deinit(&a);
}

/* ---- concurrency smoke: two writers, one reader ---- */

typedef struct writer_arg {
    clew_store *st;
    uint64_t base;
} writer_arg;

/* The cut's pinned view: the same spans as get_trace, in the same order, that stay readable
 * (every field, resources included) after the trace is removed, dropped or grows, until the
 * unpin frees what was removed. ASan flags a read of freed memory and a leak of what the
 * unpin should have freed. */
static void pinned_view_outlives_removal(void **state)
{
    (void)state;
    clew_store *st = new_store(0, 0);
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_trace_id t1 = tid(7, 1), t2 = tid(7, 2), t3 = tid(7, 3);
    clew_batch b1 = split_batch(&a, t1, 10, 5);
    clew_batch b2 = split_batch(&a, t2, 20, 4);
    clew_batch b3 = split_batch(&a, t3, 30, 3);
    append_ok(st, &b1, NULL);
    append_ok(st, &b2, NULL);
    append_ok(st, &b3, NULL);

    clew_trace_result *v1 = NULL, *v2 = NULL, *v3 = NULL, *copy = NULL;
    clew_memory_pin *p1 = NULL, *p2 = NULL, *p3 = NULL;
    assert_int_equal(clew__memory_store_pin_trace(st, &t1, &v1, &p1), CLEW_OK);
    assert_int_equal(clew__memory_store_pin_trace(st, &t2, &v2, &p2), CLEW_OK);
    assert_int_equal(clew__memory_store_pin_trace(st, &t3, &v3, &p3), CLEW_OK);
    clew_trace_id none = tid(7, 9);
    clew_trace_result *vn = NULL;
    clew_memory_pin *pn = NULL;
    assert_int_equal(clew__memory_store_pin_trace(st, &none, &vn, &pn), CLEW_ENOTFOUND);

    /* what get_trace copies, span for span and in order */
    assert_int_equal(st->ops->get_trace(st, &t1, &copy), CLEW_OK);
    assert_int_equal(v1->n_spans, 5);
    assert_int_equal(copy->n_spans, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_true(clew__span_equal(v1->spans[i], copy->spans[i]));
    }
    assert_int_equal(v1->meta.state, CLEW_TRACE_KEPT);

    /* t1 removed by the cut, t2 dropped by the sampler, t3 grows: views unchanged */
    assert_int_equal(clew__memory_store_remove_trace(st, &t1, 5), CLEW_OK);
    clew_trace_meta dropped = {.state = CLEW_TRACE_DROPPED, .adjusted_count = 1.0};
    assert_int_equal(st->ops->set_trace_meta(st, &t2, &dropped), CLEW_OK);
    clew_batch more = split_batch(&a, t3, 40, 2);
    append_ok(st, &more, NULL);
    clew_trace_result *gone = NULL;
    assert_int_equal(st->ops->get_trace(st, &t1, &gone), CLEW_ENOTFOUND);
    assert_int_equal(st->ops->get_trace(st, &t2, &gone), CLEW_ENOTFOUND);
    clew_store_stats stats;
    st->ops->stats(st, &stats);
    assert_int_equal(stats.traces, 1);
    assert_int_equal(stats.spans, 5); /* removed traces are not counted while pinned */
    for (size_t i = 0; i < 5; i++) {
        assert_true(clew__span_equal(v1->spans[i], copy->spans[i]));
        assert_non_null(v1->spans[i]->resource);
        assert_true(v1->spans[i]->resource->attrs.n >= 1);
    }
    assert_int_equal(v2->n_spans, 4);
    assert_int_equal(v3->n_spans, 3);
    /* the head has 5 spans of t3 now: removing with the view's count is refused */
    assert_int_equal(clew__memory_store_remove_trace(st, &t3, 3), CLEW_EBUSY);

    clew__memory_store_unpin(st, p1);
    clew__memory_store_unpin(st, p2);
    clew__trace_result_free(v1);
    clew__trace_result_free(v2);
    clew__trace_result_free(copy);
    /* a view may be freed after its unpin, and an unpinned trace is removed at once */
    clew__memory_store_unpin(st, p3);
    assert_int_equal(clew__memory_store_remove_trace(st, &t3, 5), CLEW_OK);
    clew__trace_result_free(v3);
    st->ops->stats(st, &stats);
    assert_int_equal(stats.traces, 0);
    assert_int_equal(stats.spans, 0);
    clew__arena_deinit(&a);
    clew__store_destroy(st);
}

static void *writer(void *p)
{
    writer_arg *w = p;
    for (uint64_t i = 0; i < 300; i++) {
        clew_arena a;
        clew__arena_init(&a, 4096, 0);
        clew_trace_id t = tid(w->base, i + 1);
        clew_span_data spans[3] = {mk_span(&a, t, 1, 0, "root", i, i + 100),
                                   mk_span(&a, t, 2, 1, "child", i + 1, i + 50),
                                   mk_span(&a, t, 3, 1, "child", i + 2, i + 60)};
        clew_batch b = mk_batch(&a, mk_res(&a, w->base == 1 ? "w1" : "w2", NULL, NULL),
                                mk_scope(&a, "lib"), spans, 3);
        if (w->st->ops->append(w->st, &b, NULL, NULL, NULL) != CLEW_OK) {
            clew__arena_deinit(&a);
            return (void *)1;
        }
        clew__arena_deinit(&a);
    }
    return NULL;
}

static atomic_int writers_done;

static void *reader(void *p)
{
    clew_store *st = p;
    long found = 0;
    while (!writers_done) {
        clew_search_query q;
        memset(&q, 0, sizeof(q));
        q.service = cs("w1");
        q.limit = 5;
        clew_search_result *r = NULL;
        if (st->ops->search(st, &q, &r) != CLEW_OK) {
            return (void *)1;
        }
        for (size_t i = 0; i < r->n_traces; i++) {
            clew_trace_result *t = NULL;
            if (st->ops->get_trace(st, &r->traces[i].trace_id, &t) == CLEW_OK) {
                found += (long)t->n_spans;
                clew__trace_result_free(t);
            }
        }
        clew__search_result_free(r);
        clew_name_list *l = NULL;
        if (st->ops->services(st, &l) == CLEW_OK) {
            clew__name_list_free(l);
        }
    }
    (void)found;
    return NULL;
}

static void concurrency_smoke(void **state)
{
    (void)state;
    /* a small cap so eviction runs concurrently with reads */
    clew_store *st = new_store(100, 0);
    pthread_t w1, w2, r;
    writer_arg a1 = {st, 1}, a2 = {st, 2};
    writers_done = 0;
    assert_int_equal(pthread_create(&r, NULL, reader, st), 0);
    assert_int_equal(pthread_create(&w1, NULL, writer, &a1), 0);
    assert_int_equal(pthread_create(&w2, NULL, writer, &a2), 0);
    void *rv1, *rv2, *rv3;
    pthread_join(w1, &rv1);
    pthread_join(w2, &rv2);
    writers_done = 1;
    pthread_join(r, &rv3);
    assert_null(rv1);
    assert_null(rv2);
    assert_null(rv3);
    clew_store_stats stats;
    st->ops->stats(st, &stats);
    assert_int_equal(stats.traces, 100);
    assert_int_equal(stats.spans, 300);
    assert_int_equal(stats.evicted_traces, 500);
    assert_int_equal(stats.duplicate_spans, 0);
    clew__store_destroy(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_get_dedup),
        cmocka_unit_test(result_outlives_store),
        cmocka_unit_test(resources_interned),
        cmocka_unit_test(interned_freed_with_last_trace),
        cmocka_unit_test(evict_by_count),
        cmocka_unit_test(evict_by_bytes),
        cmocka_unit_test(names_sorted),
        cmocka_unit_test(search_filters),
        cmocka_unit_test(default_limit),
        cmocka_unit_test(root_is_parentless_span),
        cmocka_unit_test(trace_meta),
        cmocka_unit_test(value_text_matching),
        cmocka_unit_test(concurrency_smoke),
        cmocka_unit_test(out_of_memory),
        cmocka_unit_test(copy_keeps_every_field),
        cmocka_unit_test(many_and_long_keys),
        cmocka_unit_test(out_of_memory_split_batch),
        cmocka_unit_test(pinned_view_outlives_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
