/*
 * tests/unit/test_ingest_path.c - the embedded store's append hints (store.h:
 * clew_trace_meta.otlp_pb and batch_held), as the OTLP/HTTP receiver uses them.
 *
 * What a user relies on: a batch appended with the hints is acknowledged only once it is
 * in the head, comes back identical from the head and after a reopen (replay), keeps its
 * tenant, kept reason and pending state; the WAL record is the request's own bytes (an
 * unknown field the client sent is in the log, which an encoding of the batch would not
 * hold); the store never reads the batch after its callback (the callbacks here free it,
 * so ASan catches a late read), including when it refuses the batch with CLEW_EFULL.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "store/embedded/embedded_store.h"
#include "store/store.h"
#include "dir_fixtures.h"
#include "store_fixtures.h"

/* An unknown field of ExportTraceServiceRequest (number 9, length-delimited): decoders
 * skip it, so the request decodes to the same batch with or without it. */
static const char MARKER[] = "\x4a\x19"
                             "clew-unknown-field-marker";
#define MARKER_LEN (sizeof(MARKER) - 1)

/* ---- helpers ---- */

static clew_store *open_store(const char *dir, size_t head_max, clew_embedded_replay_stats *rs)
{
    clew_embedded_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.fsync_mode = CLEW_WAL_FSYNC_INTERVAL;
    cfg.head_max_bytes = head_max;
    cfg.manual_cut = true;
    clew_store *s = NULL;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, rs), CLEW_OK);
    assert_non_null(s);
    return s;
}

/* Callbacks seen, and the order of observer calls and callbacks. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t done, ok, full;
    size_t observed_spans;
    size_t observed_before_done; /* observer calls that came before any callback */
} waiter;

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void waiter_deinit(waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static bool waiter_wait(waiter *w, size_t n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&w->mu);
    while (w->done < n) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0) {
            break;
        }
    }
    bool ok = w->done >= n;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

/* A request as a receiver holds it: its protobuf bytes and the batch decoded from them
 * (strings point into the bytes, arrays into the arena), all on the heap. */
typedef struct held_req {
    uint8_t *pb;
    size_t pb_len;
    clew_arena arena;
    clew_batch batch;
    waiter *w;
} held_req;

/* Encodes `src`, appends `extra` (raw protobuf fields) and decodes the result. */
static held_req *make_req(const clew_batch *src, const void *extra, size_t extra_len, waiter *w)
{
    clew_buf buf;
    clew__buf_init(&buf, 0);
    assert_int_equal(clew__otlp_pb_encode(src, &buf), CLEW_OK);
    if (extra_len > 0) {
        assert_int_equal(clew__buf_append(&buf, extra, extra_len), CLEW_OK);
    }
    held_req *r = clew__calloc(1, sizeof(*r));
    assert_non_null(r);
    r->pb = clew__malloc(buf.len);
    assert_non_null(r->pb);
    memcpy(r->pb, buf.data, buf.len);
    r->pb_len = buf.len;
    clew__buf_deinit(&buf);
    clew__arena_init(&r->arena, 4096, 0);
    clew_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(clew__otlp_pb_decode(r->pb, r->pb_len, &r->arena, &r->batch, &err), CLEW_OK);
    assert_int_equal(r->batch.n_spans, src->n_spans);
    r->w = w;
    return r;
}

static void held_req_free(held_req *r)
{
    /* poison first: a store still reading the batch reads garbage even without ASan */
    memset(r->pb, 0xa5, r->pb_len);
    clew__free(r->pb);
    clew__arena_deinit(&r->arena);
    memset(&r->batch, 0xa5, sizeof(r->batch));
    clew__free(r);
}

/* The append callback frees the request: the store may not touch it afterwards. */
static void on_done(clew_status rc, void *ud)
{
    held_req *r = ud;
    waiter *w = r->w;
    held_req_free(r);
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->ok += rc == CLEW_OK;
    w->full += rc == CLEW_EFULL;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_observe(const clew_batch *b, void *ud)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->observed_spans += b->n_spans;
    w->observed_before_done += w->done == 0;
    pthread_mutex_unlock(&w->mu);
}

/* Appends `r` with both hints; the callback frees it. */
static void append_held(clew_store *s, held_req *r, const clew_trace_meta *base)
{
    clew_trace_meta meta;
    memset(&meta, 0, sizeof(meta));
    if (base != NULL) {
        meta = *base;
    } else {
        meta.state = CLEW_TRACE_KEPT;
        meta.adjusted_count = 1.0;
    }
    meta.otlp_pb = r->pb;
    meta.otlp_pb_len = r->pb_len;
    meta.batch_held = true;
    assert_int_equal(s->ops->append(s, &r->batch, &meta, on_done, r), CLEW_OK);
}

/* A span with attributes of every type, an event, a link and an error status. */
static clew_span_data rich_span(clew_arena *a, clew_trace_id t, uint64_t id)
{
    clew_span_data s = mk_span(a, t, id, id > 1 ? 1 : 0, "GET /orders/{id}", 1000 + id, 9000);
    s.kind = CLEW_KIND_CLIENT;
    s.trace_state = S(a, "ot=th:8");
    s.status_code = CLEW_STATUS_ERROR;
    s.status_message = S(a, "upstream timed out");
    clew_kv *kv = clew__arena_calloc(a, 5, sizeof(clew_kv));
    kv[0] = kv_str(a, "http.request.method", "GET");
    kv[1] = kv_int(a, "http.response.status_code", 504);
    kv[2].key = S(a, "app.cache.hit");
    kv[2].value.type = CLEW_VALUE_BOOL;
    kv[2].value.u.b = true;
    kv[3].key = S(a, "app.order.amount");
    kv[3].value.type = CLEW_VALUE_DOUBLE;
    kv[3].value.u.d = 12.5;
    kv[4].key = S(a, "app.tags");
    kv[4].value.type = CLEW_VALUE_ARRAY;
    clew_value *items = clew__arena_calloc(a, 2, sizeof(clew_value));
    items[0].type = CLEW_VALUE_STRING;
    items[0].u.s = S(a, "gold");
    items[1].type = CLEW_VALUE_INT;
    items[1].u.i = -7;
    kv[4].value.u.array.items = items;
    kv[4].value.u.array.n = 2;
    s.attrs.items = kv;
    s.attrs.n = 5;
    s.attrs.dropped = 1;
    s.events = clew__arena_calloc(a, 1, sizeof(clew_event_data));
    s.events[0].time_ns = 2000 + id;
    s.events[0].name = S(a, "exception");
    s.events[0].attrs.items = clew__arena_calloc(a, 1, sizeof(clew_kv));
    s.events[0].attrs.items[0] = kv_str(a, "exception.type", "Timeout");
    s.events[0].attrs.n = 1;
    s.n_events = 1;
    s.links = clew__arena_calloc(a, 1, sizeof(clew_link_data));
    s.links[0].trace_id = tid(9, 9);
    s.links[0].span_id = sid(99);
    s.n_links = 1;
    return s;
}

static clew_scope *mk_scope(clew_arena *a)
{
    clew_scope *sc = clew__arena_calloc(a, 1, sizeof(*sc));
    sc->name = S(a, "io.opentelemetry.http-server");
    sc->version = S(a, "1.27.0");
    return sc;
}

/* True when some WAL segment of `dir` holds the bytes. */
static bool wal_contains(const char *dir, const void *needle, size_t n)
{
    char wdir[256];
    snprintf(wdir, sizeof(wdir), "%s/wal", dir);
    DIR *d = opendir(wdir);
    assert_non_null(d);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", wdir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        clew_buf b;
        clew__buf_init(&b, 0);
        char chunk[65536];
        size_t got;
        while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            assert_int_equal(clew__buf_append(&b, chunk, got), CLEW_OK);
        }
        fclose(f);
        found = b.len >= n && memmem(b.data, b.len, needle, n) != NULL;
        clew__buf_deinit(&b);
    }
    closedir(d);
    return found;
}

/* Two traces of rich spans in one batch built in `a`. */
static clew_batch two_traces(clew_arena *a, clew_span_data *spans)
{
    for (size_t i = 0; i < 3; i++) {
        spans[i] = rich_span(a, tid(1, 1), i + 1);
    }
    for (size_t i = 3; i < 5; i++) {
        spans[i] = rich_span(a, tid(2, 2), i + 1);
    }
    return mk_batch(a, mk_res(a, "checkout", "host.name", "node-7"), mk_scope(a), spans, 5);
}

/* ---- tests ---- */

static void test_held_batch_in_head_and_after_reopen(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-ingest");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data spans[5];
    clew_batch b = two_traces(&a, spans);
    const clew_span_data *want = b.rs[0].scopes[0].spans;

    waiter w;
    waiter_init(&w);
    clew_store *s = open_store(dir, 0, NULL);
    append_held(s, make_req(&b, NULL, 0, &w), NULL);
    assert_true(waiter_wait(&w, 1));
    assert_int_equal(w.ok, 1);
    /* acknowledged means queryable, though the request is gone by now */
    expect_trace(s, tid(1, 1), want, 3);
    expect_trace(s, tid(2, 2), want + 3, 2);
    clew__store_destroy(s);

    clew_embedded_replay_stats rs;
    s = open_store(dir, 0, &rs);
    assert_int_equal(rs.spans, 5);
    assert_int_equal(rs.traces, 2);
    assert_int_equal(rs.bad_records, 0);
    expect_trace(s, tid(1, 1), want, 3);
    expect_trace(s, tid(2, 2), want + 3, 2);
    clew__store_destroy(s);
    waiter_deinit(&w);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

/* The record is the request as received: bytes the decoder skipped are in the log when
 * the receiver hands the request over, and not when the store encodes the batch. */
static void test_record_is_the_request_as_received(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data spans[5];
    clew_batch b = two_traces(&a, spans);
    const clew_span_data *want = b.rs[0].scopes[0].spans;
    waiter w;
    waiter_init(&w);

    /* control: no otlp_pb hint, so the store encodes the batch */
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-ingest");
    clew_store *s = open_store(dir, 0, NULL);
    held_req *r = make_req(&b, MARKER, MARKER_LEN, &w);
    clew_trace_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.state = CLEW_TRACE_KEPT;
    meta.adjusted_count = 1.0;
    meta.batch_held = true;
    assert_int_equal(s->ops->append(s, &r->batch, &meta, on_done, r), CLEW_OK);
    assert_true(waiter_wait(&w, 1));
    clew__store_destroy(s);
    assert_false(wal_contains(dir, MARKER, MARKER_LEN));
    remove_temp_dir(dir);

    make_temp_dir(dir, sizeof(dir), "clew-ingest");
    s = open_store(dir, 0, NULL);
    append_held(s, make_req(&b, MARKER, MARKER_LEN, &w), NULL);
    assert_true(waiter_wait(&w, 2));
    assert_int_equal(w.ok, 2);
    clew__store_destroy(s);
    assert_true(wal_contains(dir, MARKER, MARKER_LEN));
    /* and it replays to the same spans */
    clew_embedded_replay_stats rs;
    s = open_store(dir, 0, &rs);
    assert_int_equal(rs.spans, 5);
    assert_int_equal(rs.bad_records, 0);
    expect_trace(s, tid(1, 1), want, 3);
    expect_trace(s, tid(2, 2), want + 3, 2);
    clew__store_destroy(s);
    remove_temp_dir(dir);
    waiter_deinit(&w);
    clew__arena_deinit(&a);
}

/* The meta is borrowed for the call only: its strings may be gone before the WAL write
 * completes, yet the trace keeps its tenant, reason and state, also after a reopen. */
static void test_meta_strings_outlive_the_call(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-ingest");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data sp = rich_span(&a, tid(3, 3), 1);
    clew_batch b = mk_batch(&a, mk_res(&a, "payments", NULL, NULL), mk_scope(&a), &sp, 1);
    waiter w;
    waiter_init(&w);
    clew_store *s = open_store(dir, 0, NULL);

    char *tenant = clew__strdup("acme");
    char *reason = clew__strdup("errors-policy");
    clew_trace_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.state = CLEW_TRACE_KEPT;
    meta.adjusted_count = 4.0;
    meta.tenant = (clew_str){tenant, 4};
    meta.kept_reason = (clew_str){reason, 13};
    append_held(s, make_req(&b, NULL, 0, &w), &meta);
    memset(tenant, 'x', 4);
    memset(reason, 'x', 13);
    clew__free(tenant);
    clew__free(reason);
    assert_true(waiter_wait(&w, 1));
    assert_int_equal(w.ok, 1);

    clew_trace_id t = tid(3, 3);
    clew_trace_result *r = NULL;
    assert_int_equal(s->ops->get_trace(s, &t, &r), CLEW_OK);
    assert_int_equal(r->meta.state, CLEW_TRACE_KEPT);
    assert_int_equal(r->meta.tenant.len, 4);
    assert_memory_equal(r->meta.tenant.ptr, "acme", 4);
    assert_int_equal(r->meta.kept_reason.len, 13);
    assert_memory_equal(r->meta.kept_reason.ptr, "errors-policy", 13);
    assert_true(r->meta.adjusted_count == 4.0);
    clew__trace_result_free(r);
    clew__store_destroy(s);

    s = open_store(dir, 0, NULL);
    r = NULL;
    assert_int_equal(s->ops->get_trace(s, &t, &r), CLEW_OK);
    assert_int_equal(r->meta.tenant.len, 4);
    assert_memory_equal(r->meta.tenant.ptr, "acme", 4);
    clew__trace_result_free(r);
    clew__store_destroy(s);
    waiter_deinit(&w);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

/* Spans appended pending a sampling decision come back pending after a reopen. */
static void test_pending_state_survives_reopen(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-ingest");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data sp[2] = {rich_span(&a, tid(4, 4), 1), rich_span(&a, tid(4, 4), 2)};
    clew_batch b = mk_batch(&a, mk_res(&a, "inventory", NULL, NULL), mk_scope(&a), sp, 2);
    waiter w;
    waiter_init(&w);
    clew_store *s = open_store(dir, 0, NULL);
    clew_trace_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.state = CLEW_TRACE_PENDING;
    meta.adjusted_count = 1.0;
    append_held(s, make_req(&b, NULL, 0, &w), &meta);
    assert_true(waiter_wait(&w, 1));
    clew__store_destroy(s);

    s = open_store(dir, 0, NULL);
    clew_trace_id *ids = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->pending_traces(s, &ids, &n), CLEW_OK);
    assert_int_equal(n, 1);
    clew_trace_id t = tid(4, 4);
    assert_memory_equal(ids[0].bytes, t.bytes, 16);
    clew__free(ids);
    expect_trace(s, t, b.rs[0].scopes[0].spans, 2);
    clew__store_destroy(s);
    waiter_deinit(&w);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

/* The observer sees each held batch once, before its callback. */
static void test_observer_sees_held_batch(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-ingest");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_span_data spans[5];
    clew_batch b = two_traces(&a, spans);
    waiter w;
    waiter_init(&w);
    clew_store *s = open_store(dir, 0, NULL);
    s->ops->set_observer(s, on_observe, &w);
    append_held(s, make_req(&b, NULL, 0, &w), NULL);
    assert_true(waiter_wait(&w, 1));
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.observed_spans, 5);
    assert_int_equal(w.observed_before_done, 1);
    clew__store_destroy(s);
    waiter_deinit(&w);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

/* A full head refuses a held batch with CLEW_EFULL through the callback (which frees
 * it), stores none of it, and keeps taking batches that fit. */
static void test_full_head_refuses_held_batch(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-ingest");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    enum { N = 200 };
    clew_span_data *spans = clew__arena_calloc(&a, N, sizeof(*spans));
    for (size_t i = 0; i < N; i++) {
        spans[i] = rich_span(&a, tid(5, 5), i + 1);
    }
    clew_batch big = mk_batch(&a, mk_res(&a, "catalog", NULL, NULL), mk_scope(&a), spans, N);
    clew_span_data one = rich_span(&a, tid(6, 6), 1);
    clew_batch small = mk_batch(&a, mk_res(&a, "catalog", NULL, NULL), mk_scope(&a), &one, 1);
    waiter w;
    waiter_init(&w);
    /* room for a few spans, not for 200 */
    clew_store *s = open_store(dir, 16 * 1024, NULL);
    append_held(s, make_req(&big, NULL, 0, &w), NULL);
    assert_true(waiter_wait(&w, 1));
    assert_int_equal(w.full, 1);
    clew_trace_id t = tid(5, 5);
    clew_trace_result *r = NULL;
    assert_int_equal(s->ops->get_trace(s, &t, &r), CLEW_ENOTFOUND);
    append_held(s, make_req(&small, NULL, 0, &w), NULL);
    assert_true(waiter_wait(&w, 2));
    assert_int_equal(w.ok, 1);
    expect_trace(s, tid(6, 6), small.rs[0].scopes[0].spans, 1);
    clew__store_destroy(s);
    waiter_deinit(&w);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

/* Many held appends from two threads at once: every one acknowledged, every span there
 * after a reopen (the WAL completes them in order on its thread while others append). */
typedef struct thread_arg {
    clew_store *s;
    waiter *w;
    uint64_t base;
} thread_arg;

enum { PER_THREAD = 50 };

static void *append_many(void *p)
{
    thread_arg *ta = p;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    for (uint64_t i = 0; i < PER_THREAD; i++) {
        clew_span_data sp[2] = {rich_span(&a, tid(ta->base, i), 1),
                                rich_span(&a, tid(ta->base, i), 2)};
        clew_batch b = mk_batch(&a, mk_res(&a, "frontend", NULL, NULL), mk_scope(&a), sp, 2);
        append_held(ta->s, make_req(&b, NULL, 0, ta->w), NULL);
    }
    clew__arena_deinit(&a);
    return NULL;
}

static void test_concurrent_held_appends(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-ingest");
    waiter w;
    waiter_init(&w);
    clew_store *s = open_store(dir, 0, NULL);
    pthread_t th[2];
    thread_arg ta[2] = {{s, &w, 100}, {s, &w, 200}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, append_many, &ta[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
    }
    assert_true(waiter_wait(&w, 2 * PER_THREAD));
    assert_int_equal(w.ok, 2 * PER_THREAD);
    clew_store_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.spans, 4 * PER_THREAD);
    clew__store_destroy(s);
    clew_embedded_replay_stats rs;
    s = open_store(dir, 0, &rs);
    assert_int_equal(rs.spans, 4 * PER_THREAD);
    assert_int_equal(rs.traces, 2 * PER_THREAD);
    clew__store_destroy(s);
    waiter_deinit(&w);
    remove_temp_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_batch_in_head_and_after_reopen),
        cmocka_unit_test(test_record_is_the_request_as_received),
        cmocka_unit_test(test_meta_strings_outlive_the_call),
        cmocka_unit_test(test_pending_state_survives_reopen),
        cmocka_unit_test(test_observer_sees_held_batch),
        cmocka_unit_test(test_full_head_refuses_held_batch),
        cmocka_unit_test(test_concurrent_held_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
