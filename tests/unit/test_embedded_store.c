/*
 * tests/unit/test_embedded_store.c - the embedded store (WAL + head): what an append
 * acknowledges comes back identical after a close and reopen (every attribute type),
 * sampling decisions survive a reopen, duplicates stay deduplicated across a reopen, a
 * full head refuses appends with CLEW_EFULL, and with --fsync always every acknowledged
 * span survives a power cut (power-loss fileio).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "store/embedded/embedded_store.h"
#include "store/store.h"
#include "dir_fixtures.h"
#include "store_fixtures.h"

/* ---- helpers ---- */

/* Counts append callbacks by outcome; a test waits for as many as it made appends. */
typedef struct acks {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t ok, full, other, total;
} acks;

static void acks_init(acks *a)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
}

static void acks_deinit(acks *a)
{
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
}

static void on_ack(clew_status rc, void *ud)
{
    acks *a = ud;
    pthread_mutex_lock(&a->mu);
    if (rc == CLEW_OK) {
        a->ok++;
    } else if (rc == CLEW_EFULL) {
        a->full++;
    } else {
        a->other++;
    }
    a->total++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Per-append callback: records its own outcome (for the power-loss test). */
typedef struct one_ack {
    acks *a;
    clew_status rc;
    bool fired;
} one_ack;

static void on_one_ack(clew_status rc, void *ud)
{
    one_ack *o = ud;
    o->rc = rc;
    o->fired = true;
    on_ack(rc, o->a);
}

static bool acks_wait(acks *a, size_t n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&a->mu);
    while (a->total < n) {
        if (pthread_cond_timedwait(&a->cv, &a->mu, &dl) != 0) {
            break;
        }
    }
    bool done = a->total >= n;
    pthread_mutex_unlock(&a->mu);
    return done;
}

static clew_store *open_store(const char *dir, clew_wal_fsync_mode mode, clew_fileio *io,
                              size_t head_max, clew_embedded_replay_stats *rs)
{
    clew_embedded_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.fsync_mode = mode;
    cfg.io = io;
    cfg.head_max_bytes = head_max;
    cfg.wal_segment_size = 64 * 1024; /* several segments in the bigger tests */
    /* these tests are about the WAL; the cut is tested in test_embedded_cut.c */
    cfg.manual_cut = true;
    clew_store *s = NULL;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, rs), CLEW_OK);
    assert_non_null(s);
    return s;
}

/* Appends and waits for the callback; returns its status. */
static clew_status append_wait(clew_store *s, const clew_batch *b)
{
    acks a;
    acks_init(&a);
    clew_trace_meta meta = {.state = CLEW_TRACE_KEPT, .adjusted_count = 1.0};
    clew_status rc = s->ops->append(s, b, &meta, on_ack, &a);
    if (rc == CLEW_OK) {
        assert_true(acks_wait(&a, 1));
        rc = a.ok ? CLEW_OK : a.full ? CLEW_EFULL : CLEW_EIO;
    }
    acks_deinit(&a);
    return rc;
}

/* A span carrying every attribute type, events, links and a status. */
static clew_span_data rich_span(clew_arena *a, clew_trace_id t, uint64_t id)
{
    clew_span_data s = mk_span(a, t, id, id > 1 ? 1 : 0, "GET /orders", 1000 + id, 5000 + id);
    s.kind = CLEW_KIND_CLIENT;
    s.flags = CLEW_FLAG_SAMPLED;
    s.trace_state = S(a, "ot=th:8");
    s.status_code = CLEW_STATUS_ERROR;
    s.status_message = S(a, "boom");
    clew_kv *kv = clew__arena_calloc(a, 8, sizeof(clew_kv));
    kv[0] = kv_str(a, "http.method", "GET");
    kv[1] = kv_int(a, "http.status_code", -503);
    kv[2].key = S(a, "cache.hit");
    kv[2].value.type = CLEW_VALUE_BOOL;
    kv[2].value.u.b = true;
    kv[3].key = S(a, "ratio");
    kv[3].value.type = CLEW_VALUE_DOUBLE;
    kv[3].value.u.d = 0.125;
    kv[4].key = S(a, "blob");
    kv[4].value.type = CLEW_VALUE_BYTES;
    kv[4].value.u.s = (clew_str){"\x00\x01\xff", 3};
    kv[5].key = S(a, "list");
    kv[5].value.type = CLEW_VALUE_ARRAY;
    clew_value *items = clew__arena_calloc(a, 2, sizeof(clew_value));
    items[0].type = CLEW_VALUE_STRING;
    items[0].u.s = S(a, "x");
    items[1].type = CLEW_VALUE_INT;
    items[1].u.i = 7;
    kv[5].value.u.array.items = items;
    kv[5].value.u.array.n = 2;
    kv[6].key = S(a, "map");
    kv[6].value.type = CLEW_VALUE_KVLIST;
    clew_kv *inner = clew__arena_calloc(a, 1, sizeof(clew_kv));
    inner[0] = kv_str(a, "k", "v");
    kv[6].value.u.kvlist.items = inner;
    kv[6].value.u.kvlist.n = 1;
    kv[7].key = S(a, "nothing");
    kv[7].value.type = CLEW_VALUE_EMPTY;
    s.attrs.items = kv;
    s.attrs.n = 8;
    s.attrs.dropped = 2;
    s.events = clew__arena_calloc(a, 1, sizeof(clew_event_data));
    s.events[0].time_ns = 2000 + id;
    s.events[0].name = S(a, "exception");
    s.events[0].attrs.items = clew__arena_calloc(a, 1, sizeof(clew_kv));
    s.events[0].attrs.items[0] = kv_str(a, "exception.type", "E");
    s.events[0].attrs.n = 1;
    s.n_events = 1;
    s.dropped_events = 3;
    s.links = clew__arena_calloc(a, 1, sizeof(clew_link_data));
    s.links[0].trace_id = tid(9, 9);
    s.links[0].span_id = sid(99);
    s.links[0].trace_state = S(a, "a=b");
    s.links[0].flags = 1;
    s.n_links = 1;
    return s;
}

static clew_scope *mk_scope(clew_arena *a)
{
    clew_scope *sc = clew__arena_calloc(a, 1, sizeof(*sc));
    sc->name = S(a, "lib");
    sc->version = S(a, "1.2");
    return sc;
}

/* ---- tests ---- */

static void test_roundtrip_across_reopen(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-emb");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "orders", "host.name", "h1");
    clew_scope *sc = mk_scope(&a);
    clew_trace_id t = tid(1, 2);
    clew_span_data spans[3];
    for (size_t i = 0; i < 3; i++) {
        spans[i] = rich_span(&a, t, i + 1);
    }
    clew_batch b = mk_batch(&a, res, sc, spans, 3);

    clew_store *s = open_store(dir, CLEW_WAL_FSYNC_INTERVAL, NULL, 0, NULL);
    assert_int_equal(append_wait(s, &b), CLEW_OK);
    /* the acknowledgement means the spans are in the head already */
    expect_trace(s, t, b.rs[0].scopes[0].spans, 3);
    clew__store_destroy(s);

    clew_embedded_replay_stats rs;
    s = open_store(dir, CLEW_WAL_FSYNC_INTERVAL, NULL, 0, &rs);
    assert_int_equal(rs.spans, 3);
    assert_int_equal(rs.traces, 1);
    assert_int_equal(rs.bad_records, 0);
    expect_trace(s, t, b.rs[0].scopes[0].spans, 3);
    /* the indexes are rebuilt too */
    clew_name_list *l = NULL;
    assert_int_equal(s->ops->services(s, &l), CLEW_OK);
    assert_int_equal(l->n, 1);
    assert_memory_equal(l->names[0].ptr, "orders", 6);
    clew__name_list_free(l);
    clew_search_query q;
    memset(&q, 0, sizeof(q));
    q.tags[0] = (clew_tag_filter){{"http.status_code", 16}, {"-503", 4}};
    q.n_tags = 1;
    clew_search_result *sr = NULL;
    assert_int_equal(s->ops->search(s, &q, &sr), CLEW_OK);
    assert_int_equal(sr->n_traces, 1);
    assert_int_equal(sr->traces[0].span_count, 3);
    clew__search_result_free(sr);
    clew__store_destroy(s);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

static void test_decisions_survive_reopen(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-emb");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "svc", NULL, NULL);
    clew_span_data sp[2] = {mk_span(&a, tid(0, 1), 1, 0, "a", 10, 20),
                            mk_span(&a, tid(0, 2), 2, 0, "b", 10, 20)};
    clew_batch b = mk_batch(&a, res, NULL, sp, 2);
    clew_store *s = open_store(dir, CLEW_WAL_FSYNC_ALWAYS, NULL, 0, NULL);
    assert_int_equal(append_wait(s, &b), CLEW_OK);
    clew_trace_id t1 = tid(0, 1), t2 = tid(0, 2);
    clew_trace_meta m = {.state = CLEW_TRACE_DROPPED, .adjusted_count = 4.0};
    m.kept_reason = (clew_str){"errors", 6};
    m.tenant = (clew_str){"acme", 4};
    assert_int_equal(s->ops->set_trace_meta(s, &t1, &m), CLEW_OK);
    clew_trace_meta m2 = {.state = CLEW_TRACE_KEPT, .adjusted_count = 10.0};
    m2.kept_reason = (clew_str){"latency", 7};
    assert_int_equal(s->ops->set_trace_meta(s, &t2, &m2), CLEW_OK);
    /* a decision on an unknown trace is refused, as by the memory store */
    clew_trace_id t3 = tid(0, 3);
    assert_int_equal(s->ops->set_trace_meta(s, &t3, &m2), CLEW_ENOTFOUND);
    clew__store_destroy(s);

    clew_embedded_replay_stats rs;
    s = open_store(dir, CLEW_WAL_FSYNC_ALWAYS, NULL, 0, &rs);
    assert_int_equal(rs.decisions, 3);
    clew_trace_result *r = NULL;
    /* a dropped trace stays dropped: the decision replays and nothing serves it */
    assert_int_equal(s->ops->get_trace(s, &t1, &r), CLEW_ENOTFOUND);
    assert_int_equal(s->ops->get_trace(s, &t2, &r), CLEW_OK);
    assert_int_equal(r->meta.state, CLEW_TRACE_KEPT);
    assert_true(r->meta.adjusted_count == 10.0);
    assert_memory_equal(r->meta.kept_reason.ptr, "latency", 7);
    clew__trace_result_free(r);
    assert_int_equal(s->ops->get_trace(s, &t3, &r), CLEW_ENOTFOUND);
    clew__store_destroy(s);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

static void test_dedup_across_reopen(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-emb");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "svc", NULL, NULL);
    clew_trace_id t = tid(5, 5);
    clew_span_data sp[2] = {mk_span(&a, t, 1, 0, "root", 10, 50),
                            mk_span(&a, t, 2, 1, "child", 20, 30)};
    clew_batch b = mk_batch(&a, res, mk_scope(&a), sp, 2);
    clew_store *s = open_store(dir, CLEW_WAL_FSYNC_NEVER, NULL, 0, NULL);
    assert_int_equal(append_wait(s, &b), CLEW_OK);
    assert_int_equal(append_wait(s, &b), CLEW_OK); /* a client retry */
    clew__store_destroy(s);

    s = open_store(dir, CLEW_WAL_FSYNC_NEVER, NULL, 0, NULL);
    assert_int_equal(append_wait(s, &b), CLEW_OK); /* and another after the restart */
    expect_trace(s, t, b.rs[0].scopes[0].spans, 2);
    clew_store_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.spans, 2);
    assert_int_equal(st.traces, 1);
    assert_int_equal(st.duplicate_spans, 4);
    clew__store_destroy(s);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

static void test_full_head_refuses_with_efull(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-emb");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "svc", NULL, NULL);
    clew_store *s = open_store(dir, CLEW_WAL_FSYNC_NEVER, NULL, 32 * 1024, NULL);
    size_t ok = 0, full = 0;
    for (uint64_t i = 1; i <= 400 && full == 0; i++) {
        clew_span_data sp = rich_span(&a, tid(7, i), 1);
        clew_batch b = mk_batch(&a, res, NULL, &sp, 1);
        clew_status rc = append_wait(s, &b);
        if (rc == CLEW_OK) {
            ok++;
        } else {
            assert_int_equal(rc, CLEW_EFULL);
            full++;
        }
    }
    /* some fit, then the budget refused the rest instead of growing past it */
    assert_true(ok > 0);
    assert_int_equal(full, 1);
    clew_store_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.traces, ok);
    /* admission is checked before the batch is stored: it may overshoot by one batch */
    assert_true(st.bytes <= 32 * 1024 + 8 * 1024);
    /* a refused batch is neither stored nor logged */
    clew_trace_id refused = tid(7, ok + 1);
    clew_trace_result *r = NULL;
    assert_int_equal(s->ops->get_trace(s, &refused, &r), CLEW_ENOTFOUND);
    clew__store_destroy(s);
    clew_embedded_replay_stats rs;
    s = open_store(dir, CLEW_WAL_FSYNC_NEVER, NULL, 0, &rs);
    assert_int_equal(rs.traces, ok);
    clew__store_destroy(s);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

/* --fsync always + power cut: every span whose callback said OK is there after reopen. */
static void run_power_cut(unsigned crash_at, size_t *out_acked, size_t *out_lost_unacked)
{
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-emb");
    clew_fileio *pl = NULL;
    assert_int_equal(clew__fileio_powerloss_create(&pl), CLEW_OK);
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "svc", NULL, NULL);
    clew_scope *sc = mk_scope(&a);
    enum { N = 60 };
    clew_span_data spans[N];
    one_ack oa[N];
    acks all;
    acks_init(&all);
    memset(oa, 0, sizeof(oa));
    clew_store *s = open_store(dir, CLEW_WAL_FSYNC_ALWAYS, pl, 0, NULL);
    /* the machine dies at the crash_at-th fsync: that fsync and everything after fail */
    clew__fileio_powerloss_arm(pl, "wal.fsync.done", crash_at);
    size_t accepted = 0;
    for (size_t i = 0; i < N; i++) {
        spans[i] = rich_span(&a, tid(3, i + 1), 1);
        spans[i].resource = res; /* as stored: with its resource and scope */
        spans[i].scope = sc;
        clew_batch b = mk_batch(&a, res, sc, &spans[i], 1);
        clew_trace_meta meta = {.state = CLEW_TRACE_KEPT, .adjusted_count = 1.0};
        oa[i].a = &all;
        if (s->ops->append(s, &b, &meta, on_one_ack, &oa[i]) == CLEW_OK) {
            accepted++;
        }
        /* one at a time, so that each append is one fsync and crash_at picks the batch */
        assert_true(acks_wait(&all, accepted));
    }
    clew__fileio_powerloss_cut(pl);
    clew__store_destroy(s);
    clew__fileio_powerloss_cut(pl);

    s = open_store(dir, CLEW_WAL_FSYNC_ALWAYS, pl, 0, NULL);
    size_t acked = 0, lost = 0;
    for (size_t i = 0; i < N; i++) {
        clew_trace_id t = tid(3, i + 1);
        clew_trace_result *r = NULL;
        clew_status rc = s->ops->get_trace(s, &t, &r);
        if (oa[i].fired && oa[i].rc == CLEW_OK) {
            acked++;
            if (rc != CLEW_OK) {
                fail_msg("span %zu was acknowledged but is lost after the power cut", i);
            }
            assert_int_equal(r->n_spans, 1);
            assert_true(clew__span_equal(&spans[i], r->spans[0]));
        } else if (rc != CLEW_OK) {
            lost++;
        }
        clew__trace_result_free(r);
    }
    clew__store_destroy(s);
    acks_deinit(&all);
    clew__arena_deinit(&a);
    clew__fileio_powerloss_destroy(pl);
    remove_temp_dir(dir);
    *out_acked = acked;
    *out_lost_unacked = lost;
}

static void test_fsync_always_survives_power_cut(void **state)
{
    (void)state;
    size_t meaningful = 0;
    for (unsigned k = 1; k <= 25; k += 4) {
        size_t acked = 0, lost = 0;
        run_power_cut(k, &acked, &lost);
        /* a run means something when it acknowledged some spans and lost others */
        if (acked > 0 && lost > 0) {
            meaningful++;
        }
    }
    assert_true(meaningful > 0);
}

/* A fileio whose fsyncs wait while the gate is closed: it holds the WAL writer so that the
 * queue fills up deterministically. */
typedef struct gate_io {
    clew_fileio io;
    clew_fileio *in;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool closed;
} gate_io;

static clew_fileio *inner_io(clew_fileio *io)
{
    return ((gate_io *)io)->in;
}

static clew_status g_open(clew_fileio *io, const char *p, int fl, int *fd)
{
    return inner_io(io)->open_file(inner_io(io), p, fl, fd);
}

static clew_status g_close(clew_fileio *io, int fd)
{
    return inner_io(io)->close_file(inner_io(io), fd);
}

static clew_status g_pwrite(clew_fileio *io, int fd, const void *b, size_t n, uint64_t off)
{
    return inner_io(io)->pwrite_all(inner_io(io), fd, b, n, off);
}

static clew_status g_pread(clew_fileio *io, int fd, void *b, size_t n, uint64_t off, size_t *o)
{
    return inner_io(io)->pread_some(inner_io(io), fd, b, n, off, o);
}

static clew_status g_fsync(clew_fileio *io, int fd)
{
    gate_io *g = (gate_io *)io;
    pthread_mutex_lock(&g->mu);
    while (g->closed) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return g->in->fsync_file(g->in, fd);
}

static clew_status g_trunc(clew_fileio *io, int fd, uint64_t sz)
{
    return inner_io(io)->truncate_file(inner_io(io), fd, sz);
}

static clew_status g_size(clew_fileio *io, int fd, uint64_t *sz)
{
    return inner_io(io)->file_size(inner_io(io), fd, sz);
}

static clew_status g_rename(clew_fileio *io, const char *a, const char *b)
{
    return inner_io(io)->rename_path(inner_io(io), a, b);
}

static clew_status g_unlink(clew_fileio *io, const char *p)
{
    return inner_io(io)->unlink_path(inner_io(io), p);
}

static clew_status g_fsync_dir(clew_fileio *io, const char *d)
{
    return inner_io(io)->fsync_dir(inner_io(io), d);
}

static clew_status g_crash(clew_fileio *io, const char *n)
{
    return inner_io(io)->crash_point(inner_io(io), n);
}

static void gate_set(gate_io *g, bool closed)
{
    pthread_mutex_lock(&g->mu);
    g->closed = closed;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void test_full_wal_queue_refuses_with_efull(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-emb");
    gate_io g = {.io = {g_open, g_close, g_pwrite, g_pread, g_fsync, g_trunc, g_size, g_rename,
                        g_unlink, g_fsync_dir, g_crash},
                 .in = clew__fileio_posix()};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    clew_embedded_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.fsync_mode = CLEW_WAL_FSYNC_ALWAYS;
    cfg.io = &g.io;
    cfg.max_record_bytes = 8 * 1024;
    cfg.wal_queue_bytes = 64 * 1024;
    clew_store *s = NULL;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, NULL), CLEW_OK);
    gate_set(&g, true); /* the writer now stops at its first fsync */

    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "svc", NULL, NULL);
    clew_scope *sc = mk_scope(&a);
    enum { N = 400 };
    one_ack *oa = calloc(N, sizeof(*oa));
    acks all;
    acks_init(&all);
    clew_trace_meta meta = {.state = CLEW_TRACE_KEPT, .adjusted_count = 1.0};
    size_t n = 0;
    for (; n < N; n++) {
        clew_span_data sp = rich_span(&a, tid(4, n + 1), 1);
        clew_batch b = mk_batch(&a, res, sc, &sp, 1);
        oa[n].a = &all;
        assert_int_equal(s->ops->append(s, &b, &meta, on_one_ack, &oa[n]), CLEW_OK);
        if (oa[n].fired) {
            break; /* refused at once: the queue is full */
        }
    }
    assert_true(n < N);
    assert_int_equal(oa[n].rc, CLEW_EFULL);
    /* nothing was acknowledged while the fsync was held */
    for (size_t i = 0; i < n; i++) {
        assert_false(oa[i].fired);
    }
    gate_set(&g, false);
    assert_true(acks_wait(&all, n + 1));
    for (size_t i = 0; i <= n; i++) {
        clew_trace_id t = tid(4, i + 1);
        clew_trace_result *r = NULL;
        clew_status rc = s->ops->get_trace(s, &t, &r);
        assert_int_equal(rc, i < n ? CLEW_OK : CLEW_ENOTFOUND);
        assert_int_equal(oa[i].rc, i < n ? CLEW_OK : CLEW_EFULL);
        clew__trace_result_free(r);
    }
    clew__store_destroy(s);
    acks_deinit(&all);
    free(oa);
    clew__arena_deinit(&a);
    pthread_mutex_destroy(&g.mu);
    pthread_cond_destroy(&g.cv);
    remove_temp_dir(dir);
}

static void test_quiesce_runs_every_callback_then_refuses(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-emb");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "svc", NULL, NULL);
    clew_store *s = open_store(dir, CLEW_WAL_FSYNC_ALWAYS, NULL, 0, NULL);
    acks all;
    acks_init(&all);
    clew_trace_meta meta = {.state = CLEW_TRACE_KEPT, .adjusted_count = 1.0};
    for (uint64_t i = 1; i <= 20; i++) {
        clew_span_data sp = mk_span(&a, tid(8, i), 1, 0, "x", 1, 2);
        clew_batch b = mk_batch(&a, res, mk_scope(&a), &sp, 1);
        assert_int_equal(s->ops->append(s, &b, &meta, on_ack, &all), CLEW_OK);
    }
    /* no waiting here: quiesce itself must wait for all 20 callbacks */
    clew__embedded_store_quiesce(s);
    pthread_mutex_lock(&all.mu);
    size_t ok = all.ok, total = all.total;
    pthread_mutex_unlock(&all.mu);
    assert_int_equal(total, 20);
    assert_int_equal(ok, 20);
    clew_span_data sp = mk_span(&a, tid(8, 99), 1, 0, "x", 1, 2);
    clew_batch b = mk_batch(&a, res, mk_scope(&a), &sp, 1);
    assert_int_equal(s->ops->append(s, &b, &meta, on_ack, &all), CLEW_ECLOSED);
    clew__store_destroy(s);
    assert_int_equal(all.total, 20); /* the refused append's callback never ran */
    acks_deinit(&all);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

static void count_warn(void *ud, clew_wal_log_level level, const char *msg)
{
    (void)msg;
    if (level == CLEW_WAL_LOG_WARN) {
        (*(int *)ud)++;
    }
}

static void test_undecodable_records_are_skipped(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-emb");
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *res = mk_res(&a, "svc", NULL, NULL);
    clew_span_data sp = mk_span(&a, tid(6, 1), 1, 0, "x", 1, 2);
    clew_batch b = mk_batch(&a, res, mk_scope(&a), &sp, 1);
    clew_store *s = open_store(dir, CLEW_WAL_FSYNC_NEVER, NULL, 0, NULL);
    assert_int_equal(append_wait(s, &b), CLEW_OK);
    clew__store_destroy(s);

    /* records with a good CRC but a bad payload, as a buggy or newer writer might leave */
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, NULL, NULL, NULL, &wal), CLEW_OK);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};
    uint8_t *p = NULL;
    size_t len = 0;
    /* a protobuf that does not parse */
    assert_int_equal(clew__wal_spans_encode((clew_str){"", 0}, CLEW_WAL_SPANS_OTLP_PB, junk,
                                            sizeof(junk), &p, &len),
                     CLEW_OK);
    assert_int_equal(clew__wal_append(wal, CLEW_WAL_SPANS, p, len, NULL, NULL), CLEW_OK);
    clew__free(p);
    /* an encoding this version does not know */
    assert_int_equal(clew__wal_spans_encode((clew_str){"", 0}, 9, junk, sizeof(junk), &p, &len),
                     CLEW_OK);
    assert_int_equal(clew__wal_append(wal, CLEW_WAL_SPANS, p, len, NULL, NULL), CLEW_OK);
    clew__free(p);
    /* a truncated decision, and a type from the future (ignored, not an error) */
    assert_int_equal(clew__wal_append(wal, CLEW_WAL_DECISION, junk, 3, NULL, NULL), CLEW_OK);
    assert_int_equal(clew__wal_append(wal, 77, junk, sizeof(junk), NULL, NULL), CLEW_OK);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);

    int warns = 0;
    clew_embedded_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.log = count_warn;
    cfg.log_ud = &warns;
    clew_embedded_replay_stats rs;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, &rs), CLEW_OK);
    assert_int_equal(rs.records, 5);
    assert_int_equal(rs.bad_records, 3);
    assert_int_equal(warns, 3);
    expect_trace(s, tid(6, 1), b.rs[0].scopes[0].spans, 1);
    /* and the store keeps working */
    clew_span_data sp2 = mk_span(&a, tid(6, 2), 1, 0, "y", 1, 2);
    clew_batch b2 = mk_batch(&a, res, mk_scope(&a), &sp2, 1);
    assert_int_equal(append_wait(s, &b2), CLEW_OK);
    expect_trace(s, tid(6, 2), b2.rs[0].scopes[0].spans, 1);
    clew__store_destroy(s);
    clew__arena_deinit(&a);
    remove_temp_dir(dir);
}

static void test_bad_config(void **state)
{
    (void)state;
    clew_embedded_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    clew_store *s = NULL;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, NULL), CLEW_EINVAL);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_across_reopen),
        cmocka_unit_test(test_decisions_survive_reopen),
        cmocka_unit_test(test_dedup_across_reopen),
        cmocka_unit_test(test_full_head_refuses_with_efull),
        cmocka_unit_test(test_fsync_always_survives_power_cut),
        cmocka_unit_test(test_full_wal_queue_refuses_with_efull),
        cmocka_unit_test(test_quiesce_runs_every_callback_then_refuses),
        cmocka_unit_test(test_undecodable_records_are_skipped),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
