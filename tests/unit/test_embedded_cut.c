/*
 * tests/unit/test_embedded_cut.c - the embedded store's head cut into blocks: queries across
 * head and blocks, reopen with deduplication, crash points, retention, --max-disk and
 * quarantine (docs/internals/embedded.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "store/embedded/embedded_store.h"
#include "store/store.h"
#include "dir_fixtures.h"
#include "store_fixtures.h"

typedef struct ack {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool fired;
    clew_status rc;
} ack;

static void on_ack(clew_status rc, void *ud)
{
    ack *a = ud;
    pthread_mutex_lock(&a->mu);
    a->fired = true;
    a->rc = rc;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static clew_status append_wait(clew_store *s, const clew_batch *b)
{
    ack a;
    memset(&a, 0, sizeof(a));
    pthread_mutex_init(&a.mu, NULL);
    pthread_cond_init(&a.cv, NULL);
    clew_trace_meta meta = {.state = CLEW_TRACE_KEPT, .adjusted_count = 1.0};
    clew_status rc = s->ops->append(s, b, &meta, on_ack, &a);
    if (rc == CLEW_OK) {
        pthread_mutex_lock(&a.mu);
        while (!a.fired) {
            pthread_cond_wait(&a.cv, &a.mu);
        }
        pthread_mutex_unlock(&a.mu);
        rc = a.rc;
    }
    pthread_mutex_destroy(&a.mu);
    pthread_cond_destroy(&a.cv);
    return rc;
}

typedef struct opts {
    clew_fileio *io;
    uint64_t max_disk;
    clew_wal_fsync_mode mode;
    size_t compact_min;
    size_t block_size; /* 0 = the store's default */
    size_t max_traces; /* block_max_traces; 0 = the store's default */
    size_t index_max;  /* index_max_bytes; 0 = no bound */
} opts;

static clew_store *open_store(const char *dir, const opts *o, clew_embedded_replay_stats *rs)
{
    clew_embedded_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.fsync_mode = o ? o->mode : CLEW_WAL_FSYNC_INTERVAL;
    cfg.io = o ? o->io : NULL;
    cfg.max_disk_bytes = o ? o->max_disk : 0;
    cfg.compact_min_blocks = o && o->compact_min ? o->compact_min : 100;
    cfg.block_size = o ? o->block_size : 0;
    cfg.block_max_traces = o ? o->max_traces : 0;
    cfg.index_max_bytes = o ? o->index_max : 0;
    cfg.wal_segment_size = 64 * 1024;
    cfg.manual_cut = true;
    clew_store *s = NULL;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, rs), CLEW_OK);
    return s;
}

static uint64_t now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Appends spans [first, first+n) of trace t (service svc, starting at `start`). */
static clew_status put(clew_store *s, clew_trace_id t, const char *svc, uint64_t first, size_t n,
                       uint64_t start)
{
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *r = mk_res(&a, svc, "host.name", "h1");
    (void)kv_int; /* a fixture this file does not need */
    clew_scope *sc = clew__arena_calloc(&a, 1, sizeof(*sc));
    sc->name = S(&a, "lib");
    sc->version = S(&a, "1.0");
    clew_span_data sp[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        sp[i] = mk_span(&a, t, first + i, i == 0 && first == 1 ? 0 : 1, "op", start + i * 1000,
                        start + i * 1000 + 500);
    }
    clew_batch b = mk_batch(&a, r, sc, sp, n);
    clew_status rc = append_wait(s, &b);
    clew__arena_deinit(&a);
    return rc;
}

/* Number of spans of trace t, failing on a duplicated span id; 0 when not found. */
static size_t count_spans(clew_store *s, clew_trace_id t)
{
    clew_trace_result *r = NULL;
    clew_status rc = s->ops->get_trace(s, &t, &r);
    if (rc == CLEW_ENOTFOUND) {
        return 0;
    }
    assert_int_equal(rc, CLEW_OK);
    for (size_t i = 0; i < r->n_spans; i++) {
        for (size_t j = i + 1; j < r->n_spans; j++) {
            assert_memory_not_equal(r->spans[i]->span_id.bytes, r->spans[j]->span_id.bytes, 8);
        }
    }
    size_t n = r->n_spans;
    clew__trace_result_free(r);
    return n;
}

static size_t count_files(const char *dir, const char *sub, const char *suffix)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null | grep -c '%s$'", path, suffix);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    unsigned long n = 0;
    assert_int_equal(fscanf(p, "%lu", &n), 1);
    pclose(p);
    return n;
}

/* ---- tests ---- */

static void test_cut_then_query_head_and_blocks(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_store *s = open_store(dir, NULL, NULL);
    uint64_t t0 = now_wall() - 60ull * 1000000000u;
    clew_trace_id a = tid(1, 1), b = tid(2, 2);
    assert_int_equal(put(s, a, "front", 1, 2, t0), CLEW_OK);
    size_t cut = 0;
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, 1);
    assert_int_equal(clew__embedded_store_n_blocks(s), 1);
    assert_int_equal(count_files(dir, "blocks", ".block"), 1);

    /* the same trace goes on after the cut, plus a duplicate of a span already cut */
    assert_int_equal(put(s, a, "front", 2, 2, t0 + 1000), CLEW_OK);
    assert_int_equal(put(s, b, "back", 1, 1, t0 + 5000000), CLEW_OK);
    assert_int_equal(count_spans(s, a), 3);
    assert_int_equal(count_spans(s, b), 1);

    clew_search_query q;
    memset(&q, 0, sizeof(q));
    q.limit = 10;
    clew_search_result *r = NULL;
    assert_int_equal(s->ops->search(s, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, 2);
    assert_memory_equal(r->traces[0].trace_id.bytes, b.bytes, 16); /* newest first */
    assert_memory_equal(r->traces[1].trace_id.bytes, a.bytes, 16);
    clew__search_result_free(r);
    q.limit = 1;
    assert_int_equal(s->ops->search(s, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, 1);
    clew__search_result_free(r);
    q.limit = 10;
    q.service = (clew_str){"front", 5};
    assert_int_equal(s->ops->search(s, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, 1);
    clew__search_result_free(r);

    clew_name_list *l = NULL;
    assert_int_equal(s->ops->services(s, &l), CLEW_OK);
    assert_int_equal(l->n, 2);
    assert_memory_equal(l->names[0].ptr, "back", 4);
    assert_memory_equal(l->names[1].ptr, "front", 5);
    clew__name_list_free(l);

    /* a second cut holds the rest of trace a: still returned whole, once */
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, 2);
    assert_int_equal(clew__embedded_store_n_blocks(s), 2);
    assert_int_equal(count_spans(s, a), 3);
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    assert_true(st.bytes > 0);
    clew__store_destroy(s);

    /* reopen: the blocks are loaded, the WAL segments they came from were released */
    clew_embedded_replay_stats rs;
    s = open_store(dir, NULL, &rs);
    assert_int_equal(rs.blocks, 2);
    assert_int_equal(rs.traces, 0);
    assert_int_equal(count_spans(s, a), 3);
    assert_int_equal(count_spans(s, b), 1);
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

/* A crash at a named point of the cut, then a power cut, then reopen: every acknowledged
 * span exactly once. */
static void crash_at(const char *point)
{
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_fileio *io = NULL;
    assert_int_equal(clew__fileio_powerloss_create(&io), CLEW_OK);
    opts o = {io, 0, CLEW_WAL_FSYNC_ALWAYS, 0, 0, 0, 0};
    clew_store *s = open_store(dir, &o, NULL);
    uint64_t t0 = now_wall();
    /* one block already there, so the replay has something to deduplicate against */
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(put(s, tid(7, i), "svc", 1, 3, t0), CLEW_OK);
    }
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(put(s, tid(7, i), "svc", 3, 3, t0), CLEW_OK); /* 3 is a duplicate */
        assert_int_equal(put(s, tid(8, i), "svc", 1, 2, t0), CLEW_OK);
    }
    clew__fileio_powerloss_arm(io, point, 1);
    clew_status rc = clew__embedded_store_cut(s, NULL);
    (void)rc; /* fails when the crash point was reached */
    clew__store_destroy(s);
    clew__fileio_powerloss_cut(io);

    clew_embedded_replay_stats rs;
    s = open_store(dir, &o, &rs);
    for (uint64_t i = 0; i < 5; i++) {
        if (count_spans(s, tid(7, i)) != 5 || count_spans(s, tid(8, i)) != 2) {
            fail_msg("crash at %s: trace %llu lost or duplicated spans", point,
                     (unsigned long long)i);
        }
    }
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    if (st.spans != 35) {
        fail_msg("crash at %s: %llu spans stored, want 35", point, (unsigned long long)st.spans);
    }
    /* and the store goes on: the next cut works */
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(count_spans(s, tid(7, i)), 5);
    }
    clew__store_destroy(s);
    clew__fileio_powerloss_destroy(io);
    remove_temp_dir(dir);
}

static void test_crash_points(void **state)
{
    (void)state;
    const char *points[] = {"block.written", "block.renamed", "block.dir_synced",
                            "wal.segment.deleting", "wal.segment.deleted"};
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        crash_at(points[i]);
    }
}

static void test_retention_removes_old_blocks(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_store *s = open_store(dir, NULL, NULL);
    /* 2020: far older than the default 72 h */
    uint64_t old = 1577836800ull * 1000000000u;
    assert_int_equal(put(s, tid(3, 1), "svc", 1, 2, old), CLEW_OK);
    size_t cut = 0;
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, 1);
    assert_int_equal(clew__embedded_store_n_blocks(s), 0);
    assert_int_equal(count_files(dir, "blocks", ".block"), 0);
    assert_int_equal(count_spans(s, tid(3, 1)), 0);
    /* a recent trace stays */
    assert_int_equal(put(s, tid(3, 2), "svc", 1, 2, now_wall()), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(clew__embedded_store_n_blocks(s), 1);
    assert_int_equal(count_spans(s, tid(3, 2)), 2);
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

static uint64_t file_size_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

static void test_max_disk_removes_oldest_first(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_store *s = open_store(dir, NULL, NULL);
    uint64_t t0 = now_wall();
    assert_int_equal(put(s, tid(4, 1), "svc", 1, 4, t0), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    assert_int_equal(put(s, tid(4, 2), "svc", 1, 4, t0 + 1000), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    assert_int_equal(clew__embedded_store_n_blocks(s), 2);
    clew__store_destroy(s);
    char p2[128];
    snprintf(p2, sizeof(p2), "%s/blocks/b0000000002.block", dir);
    uint64_t second = file_size_of(p2);

    opts o = {NULL, second + 1, CLEW_WAL_FSYNC_INTERVAL, 0, 0, 0, 0};
    s = open_store(dir, &o, NULL);
    assert_int_equal(clew__embedded_store_n_blocks(s), 2);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK); /* runs maintenance */
    assert_int_equal(clew__embedded_store_n_blocks(s), 1);
    assert_int_equal(count_spans(s, tid(4, 1)), 0);
    assert_int_equal(count_spans(s, tid(4, 2)), 4);
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

static void corrupt(const char *path, long from, long to)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    for (long i = from; i < to; i++) {
        assert_int_equal(fseek(f, i, SEEK_SET), 0);
        fputc(0x5a, f);
    }
    fclose(f);
}

static void test_quarantine(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_store *s = open_store(dir, NULL, NULL);
    uint64_t t0 = now_wall();
    assert_int_equal(put(s, tid(5, 1), "svc", 1, 4, t0), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    assert_int_equal(put(s, tid(5, 2), "svc", 1, 4, t0), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    clew__store_destroy(s);

    /* block 1: a broken footer, found on open */
    char p1[128], p2[128];
    snprintf(p1, sizeof(p1), "%s/blocks/b0000000001.block", dir);
    snprintf(p2, sizeof(p2), "%s/blocks/b0000000002.block", dir);
    long sz1 = (long)file_size_of(p1);
    corrupt(p1, sz1 - 24, sz1 - 4);
    clew_embedded_replay_stats rs;
    s = open_store(dir, NULL, &rs);
    assert_int_equal(rs.blocks, 1);
    assert_int_equal(count_files(dir, "quarantine", ".block"), 1);
    /* block 2: broken sections and pages, found when a query reads them */
    long sz2 = (long)file_size_of(p2);
    corrupt(p2, 16, sz2 / 2);
    /* the damaged block reads as missing; the store still answers */
    assert_int_equal(count_spans(s, tid(5, 2)), 0);
    assert_int_equal(put(s, tid(5, 3), "svc", 1, 1, t0), CLEW_OK);
    assert_int_equal(count_spans(s, tid(5, 3)), 1);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    assert_int_equal(count_files(dir, "quarantine", ".block"), 2);
    assert_int_equal(clew__embedded_store_n_blocks(s), 1);
    assert_int_equal(count_spans(s, tid(5, 3)), 1);
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

/* The indexes (every section) are read and checked when the store opens a block, so a damaged
 * section is quarantined at the restart rather than found by the first query after it. */
static void test_damaged_section_quarantined_at_open(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_store *s = open_store(dir, NULL, NULL);
    uint64_t t0 = now_wall();
    assert_int_equal(put(s, tid(6, 1), "svc", 1, 4, t0), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    assert_int_equal(put(s, tid(6, 2), "svc", 1, 4, t0), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    clew__store_destroy(s);
    /* the sections sit between the pages and the 440-byte footer */
    char p1[128];
    snprintf(p1, sizeof(p1), "%s/blocks/b0000000001.block", dir);
    long sz = (long)file_size_of(p1);
    corrupt(p1, sz - 440 - 64, sz - 440 - 8);
    clew_embedded_replay_stats rs;
    s = open_store(dir, NULL, &rs);
    assert_int_equal(rs.blocks, 1);
    assert_int_equal(count_files(dir, "quarantine", ".block"), 1);
    assert_int_equal(count_spans(s, tid(6, 2)), 4); /* the other block is served */
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

/* Three small blocks holding one trace in three parts (and a duplicate) become one block;
 * `point` (may be NULL) crashes the compaction there, then power is cut and the store
 * reopened. Either way every span is there exactly once. */
static void compaction_run(const char *point)
{
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_fileio *io = NULL;
    assert_int_equal(clew__fileio_powerloss_create(&io), CLEW_OK);
    opts o = {io, 0, CLEW_WAL_FSYNC_ALWAYS, 3, 0, 0, 0};
    clew_store *s = open_store(dir, &o, NULL);
    uint64_t t0 = now_wall();
    clew_trace_id t = tid(31, 1);
    assert_int_equal(put(s, t, "svc", 1, 2, t0), CLEW_OK);
    assert_int_equal(put(s, tid(31, 2), "svc", 1, 3, t0), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    assert_int_equal(put(s, t, "svc", 3, 2, t0), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    assert_int_equal(clew__embedded_store_n_blocks(s), 2);
    assert_int_equal(put(s, t, "svc", 4, 3, t0), CLEW_OK); /* span 4 again */
    if (point != NULL) {
        clew__fileio_powerloss_arm(io, point, 1);
    }
    clew_status rc = clew__embedded_store_cut(s, NULL); /* the third block, then compaction */
    if (point == NULL) {
        assert_int_equal(rc, CLEW_OK);
        assert_int_equal(clew__embedded_store_n_blocks(s), 1);
        assert_int_equal(count_files(dir, "blocks", ".block"), 1);
        assert_int_equal(count_files(dir, "blocks", ".replaces"), 0);
        assert_int_equal(count_spans(s, t), 6);
    } else if (strncmp(point, "compaction.", 11) == 0) {
        /* the crash came after the merged block was durable: 3 old + 1 new, or fewer
         * once the deletions started */
        assert_true(count_files(dir, "blocks", ".block") >= 1);
        assert_int_equal(count_files(dir, "blocks", ".replaces"), 1);
    }
    clew__store_destroy(s);
    clew__fileio_powerloss_cut(io);
    s = open_store(dir, &o, NULL);
    if (count_spans(s, t) != 6 || count_spans(s, tid(31, 2)) != 3) {
        fail_msg("compaction crash at %s: spans lost", point ? point : "(none)");
    }
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    if (st.spans != 9) {
        fail_msg("compaction crash at %s: %llu spans, want 9", point ? point : "(none)",
                 (unsigned long long)st.spans);
    }
    assert_int_equal(count_files(dir, "blocks", ".replaces"), 0);
    clew__store_destroy(s);
    clew__fileio_powerloss_destroy(io);
    remove_temp_dir(dir);
}

static void test_compaction(void **state)
{
    (void)state;
    compaction_run(NULL);
    const char *points[] = {"block.renamed", "compaction.written", "compaction.deleting",
                            "compaction.deleted"};
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        compaction_run(points[i]);
    }
}

/* Appends one span of trace t as PENDING (waiting on a sampling decision). */
static void put_pending(clew_store *s, clew_trace_id t, uint64_t span)
{
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource *r = mk_res(&a, "svc", NULL, NULL);
    clew_scope *sc = clew__arena_calloc(&a, 1, sizeof(*sc));
    sc->name = S(&a, "lib");
    clew_span_data sp = mk_span(&a, t, span, 0, "op", now_wall(), now_wall() + 10);
    clew_batch b = mk_batch(&a, r, sc, &sp, 1);
    ack k;
    memset(&k, 0, sizeof(k));
    pthread_mutex_init(&k.mu, NULL);
    pthread_cond_init(&k.cv, NULL);
    clew_trace_meta meta = {.state = CLEW_TRACE_PENDING, .adjusted_count = 1.0};
    assert_int_equal(s->ops->append(s, &b, &meta, on_ack, &k), CLEW_OK);
    pthread_mutex_lock(&k.mu);
    while (!k.fired) {
        pthread_cond_wait(&k.cv, &k.mu);
    }
    pthread_mutex_unlock(&k.mu);
    assert_int_equal(k.rc, CLEW_OK);
    pthread_mutex_destroy(&k.mu);
    pthread_cond_destroy(&k.cv);
    clew__arena_deinit(&a);
}

/* A PENDING trace stays in the head and keeps the WAL segments its records are in; the
 * segments before every pending trace's first record are released. */
static void test_pending_traces_keep_their_wal_segments(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_store *s = open_store(dir, NULL, NULL);
    clew_trace_id p = tid(41, 1), q = tid(41, 2), k = tid(41, 3);
    put_pending(s, p, 1);
    assert_int_equal(put(s, k, "svc", 1, 2, now_wall()), CLEW_OK);
    size_t cut = 0;
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, 1); /* k only */
    size_t wal1 = count_files(dir, "wal", ".wal");
    assert_true(wal1 >= 2); /* p's segment is kept */
    put_pending(s, q, 1);
    put_pending(s, p, 2);
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, 0);
    assert_int_equal(count_files(dir, "wal", ".wal"), wal1 + 1); /* nothing released */
    clew_trace_meta kept = {.state = CLEW_TRACE_KEPT, .adjusted_count = 1.0};
    assert_int_equal(s->ops->set_trace_meta(s, &p, &kept), CLEW_OK);
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, 1); /* p */
    /* p's segments go; q's first record is in the segment of cut 1, which stays */
    size_t wal3 = count_files(dir, "wal", ".wal");
    assert_true(wal3 < wal1 + 2);
    assert_true(wal3 >= 2);
    clew__store_destroy(s);

    s = open_store(dir, NULL, NULL);
    assert_int_equal(count_spans(s, p), 2);
    assert_int_equal(count_spans(s, q), 1);
    assert_int_equal(count_spans(s, k), 2);
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    assert_int_equal(st.spans, 5);
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

/* The background thread cuts while appends and queries run: every span, once. */
typedef struct writer_arg {
    clew_store *s;
    uint64_t hi;
    uint64_t t0;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *w = p;
    for (uint64_t i = 0; i < 60; i++) {
        /* each trace in two halves, some time apart, so cuts fall between them */
        if (put(w->s, tid(w->hi, i), "bg", 1, 2, w->t0) != CLEW_OK) {
            return (void *)1;
        }
        if (i >= 5 && put(w->s, tid(w->hi, i - 5), "bg", 3, 2, w->t0) != CLEW_OK) {
            return (void *)1;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    for (uint64_t i = 55; i < 60; i++) {
        if (put(w->s, tid(w->hi, i), "bg", 3, 2, w->t0) != CLEW_OK) {
            return (void *)1;
        }
    }
    return NULL;
}

static void test_background_cuts_during_ingest(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_embedded_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.wal_segment_size = 64 * 1024;
    cfg.block_duration_ns = 1; /* a cut at every wake-up of the thread (each second) */
    clew_store *s = NULL;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, NULL), CLEW_OK);
    writer_arg w[2] = {{s, 21, now_wall()}, {s, 22, now_wall()}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    /* queries meanwhile: never a duplicated span, never a crash */
    for (int k = 0; k < 40; k++) {
        (void)count_spans(s, tid(21, (uint64_t)k));
        clew_search_query q;
        memset(&q, 0, sizeof(q));
        q.limit = 50;
        clew_search_result *r = NULL;
        assert_int_equal(s->ops->search(s, &q, &r), CLEW_OK);
        clew__search_result_free(r);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 2; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    assert_true(clew__embedded_store_n_blocks(s) >= 1);
    for (uint64_t i = 0; i < 60; i++) {
        assert_int_equal(count_spans(s, tid(21, i)), 4);
        assert_int_equal(count_spans(s, tid(22, i)), 4);
    }
    clew__store_destroy(s); /* cuts the rest */
    cfg.manual_cut = true;
    clew_embedded_replay_stats rs;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, &rs), CLEW_OK);
    assert_int_equal(rs.traces, 0);
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    assert_int_equal(st.spans, 2 * 60 * 4);
    for (uint64_t i = 0; i < 60; i++) {
        assert_int_equal(count_spans(s, tid(21, i)), 4);
    }
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

/* The two memory-store operations the cut relies on. */
static void test_memory_store_list_and_remove(void **state)
{
    (void)state;
    clew_memory_store_config mc = {1000, 0};
    clew_store *m = NULL;
    assert_int_equal(clew__memory_store_create(&mc, &m), CLEW_OK);
    assert_int_equal(put(m, tid(9, 1), "svc", 1, 2, 1000), CLEW_OK);
    assert_int_equal(put(m, tid(9, 2), "svc", 1, 3, 2000), CLEW_OK);
    clew_memory_trace_ref *refs = NULL;
    size_t n = 0;
    assert_int_equal(clew__memory_store_list_traces(m, &refs, &n), CLEW_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(refs[0].id.bytes, tid(9, 1).bytes, 16); /* oldest first */
    assert_int_equal(refs[0].n_spans, 2);
    assert_int_equal(refs[1].n_spans, 3);
    clew__free(refs);
    clew_trace_id t1 = tid(9, 1), t2 = tid(9, 2), t3 = tid(9, 3);
    /* a trace that grew since it was copied is not removed */
    assert_int_equal(clew__memory_store_remove_trace(m, &t1, 1), CLEW_EBUSY);
    assert_int_equal(clew__memory_store_remove_trace(m, &t1, 2), CLEW_OK);
    assert_int_equal(clew__memory_store_remove_trace(m, &t3, 1), CLEW_ENOTFOUND);
    assert_int_equal(count_spans(m, t1), 0);
    assert_int_equal(count_spans(m, t2), 3);
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    m->ops->stats(m, &st);
    assert_int_equal(st.spans, 3);
    assert_int_equal(st.traces, 1);
    clew__store_destroy(m);
}

/* Head bytes (the memory store's measure of span data) of whatever the store holds now. */
static size_t head_bytes_of(clew_store *s)
{
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    return (size_t)st.bytes;
}

/* Every trace tid(hi, 0..n) has `spans` spans, once each, and a search by service finds
 * `total` traces (the store holds no others of that service), each with all its spans. */
static void expect_all(clew_store *s, uint64_t hi, size_t n, size_t spans, size_t total)
{
    for (uint64_t i = 0; i < n; i++) {
        size_t got = count_spans(s, tid(hi, i));
        if (got != spans) {
            fail_msg("trace %llu/%llu has %zu spans, want %zu", (unsigned long long)hi,
                     (unsigned long long)i, got, spans);
        }
    }
    clew_search_query q;
    memset(&q, 0, sizeof(q));
    q.limit = total + 10;
    q.service = (clew_str){"chunky", 6};
    clew_search_result *r = NULL;
    assert_int_equal(s->ops->search(s, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, total);
    for (size_t i = 0; i < r->n_traces; i++) {
        assert_int_equal(r->traces[i].span_count, spans);
    }
    clew__search_result_free(r);
}

/* A head several times the block size is cut into several blocks, each holding at most
 * block_size bytes of the head's span data (one trace more would not fit), and every trace
 * comes back whole, also after a reopen; a trace count bound cuts the same way. */
static void test_cut_in_chunks(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    uint64_t t0 = now_wall();
    const size_t n = 40;
    clew_store *s = open_store(dir, NULL, NULL);
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(put(s, tid(41, i), "chunky", 1, 4, t0 + i * 1000000), CLEW_OK);
    }
    size_t head = head_bytes_of(s);
    clew__store_destroy(s); /* manual_cut: nothing is cut on close, the WAL keeps it all */

    /* the same head, replayed, with a block size of a fifth of it */
    opts o = {NULL, 0, CLEW_WAL_FSYNC_INTERVAL, 0, head / 5, 0, 0};
    clew_embedded_replay_stats rs;
    s = open_store(dir, &o, &rs);
    assert_int_equal(rs.traces, n);
    assert_int_equal(head_bytes_of(s), head);
    size_t cut = 0;
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, n);
    size_t nb = clew__embedded_store_n_blocks(s);
    /* every chunk but the last is more than half full (the traces are all the same size),
     * so 5 <= blocks <= 2 * 5 + 1 */
    if (nb < 5 || nb > 11) {
        fail_msg("a head of %zu bytes with block size %zu was cut into %zu blocks", head, head / 5,
                 nb);
    }
    assert_int_equal(count_files(dir, "blocks", ".block"), nb);
    expect_all(s, 41, n, 4, n);
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    assert_int_equal(st.spans, n * 4);
    assert_int_equal(st.traces, n);
    clew__store_destroy(s);
    /* the WAL was released after the last chunk: nothing to replay, all in blocks */
    s = open_store(dir, &o, &rs);
    assert_int_equal(rs.traces, 0);
    assert_int_equal(rs.blocks, nb);
    expect_all(s, 41, n, 4, n);
    clew__store_destroy(s);
    remove_temp_dir(dir);

    /* the trace count bound: 20 traces, at most 6 per block -> 6 + 6 + 6 + 2 */
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    opts o2 = {NULL, 0, CLEW_WAL_FSYNC_INTERVAL, 0, 0, 6, 0};
    s = open_store(dir, &o2, NULL);
    for (uint64_t i = 0; i < 20; i++) {
        assert_int_equal(put(s, tid(42, i), "chunky", 1, 3, t0 + i * 1000000), CLEW_OK);
    }
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, 20);
    assert_int_equal(clew__embedded_store_n_blocks(s), 4);
    expect_all(s, 42, 20, 3, 20);
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

/* A crash during a cut of several chunks (`point`, its nth hit after arming), a power cut
 * and a reopen: every acknowledged span is there exactly once, and the next cut works. */
static void crash_in_chunks(const char *point, unsigned nth)
{
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    clew_fileio *io = NULL;
    assert_int_equal(clew__fileio_powerloss_create(&io), CLEW_OK);
    opts o = {io, 0, CLEW_WAL_FSYNC_ALWAYS, 0, 0, 4, 0};
    clew_store *s = open_store(dir, &o, NULL);
    uint64_t t0 = now_wall();
    /* an earlier cut (two chunks), so that the replay and the cut deduplicate against
     * blocks */
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(put(s, tid(43, i), "chunky", 1, 3, t0), CLEW_OK);
    }
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    assert_int_equal(clew__embedded_store_n_blocks(s), 2);
    /* 15 traces in the head: 4 chunks; tid(43, i) goes on across the cut, with span 3
     * sent again (a client's retry) */
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(put(s, tid(43, i), "chunky", 3, 3, t0), CLEW_OK);
    }
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(put(s, tid(44, i), "chunky", 1, 2, t0 + 1000000), CLEW_OK);
    }
    clew__fileio_powerloss_arm(io, point, nth);
    assert_int_not_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    clew__store_destroy(s);
    clew__fileio_powerloss_cut(io);

    clew_embedded_replay_stats rs;
    s = open_store(dir, &o, &rs);
    for (uint64_t i = 0; i < 5; i++) {
        if (count_spans(s, tid(43, i)) != 5) {
            fail_msg("crash at %s #%u: trace 43/%llu has %zu spans, want 5", point, nth,
                     (unsigned long long)i, count_spans(s, tid(43, i)));
        }
    }
    for (uint64_t i = 0; i < 10; i++) {
        if (count_spans(s, tid(44, i)) != 2) {
            fail_msg("crash at %s #%u: trace 44/%llu lost or duplicated spans", point, nth,
                     (unsigned long long)i);
        }
    }
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    if (st.spans != 45) {
        fail_msg("crash at %s #%u: %llu spans stored, want 45", point, nth,
                 (unsigned long long)st.spans);
    }
    /* the store goes on: the next cut puts the rest into blocks and releases the WAL */
    assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    clew__store_destroy(s);
    s = open_store(dir, &o, &rs);
    assert_int_equal(rs.traces, 0);
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    assert_int_equal(st.spans, 45);
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(count_spans(s, tid(43, i)), 5);
    }
    clew__store_destroy(s);
    clew__fileio_powerloss_destroy(io);
    remove_temp_dir(dir);
}

static void test_crash_between_chunks(void **state)
{
    (void)state;
    /* after the 1st and 3rd of 4 chunks; inside the 2nd chunk's block write (before and
     * after its rename), and while the WAL is released after the last chunk */
    crash_in_chunks("cut.chunk", 1);
    crash_in_chunks("cut.chunk", 3);
    crash_in_chunks("block.written", 2);
    crash_in_chunks("block.renamed", 2);
    crash_in_chunks("block.dir_synced", 4);
    crash_in_chunks("wal.segment.deleting", 1);
}

/* Compaction holds every span of the blocks it merges decoded, so it keeps to the cut's
 * bound too: blocks small on disk but whose spans would take more than block_size decoded
 * are not merged. */
static void test_compaction_is_bounded(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    uint64_t t0 = now_wall();
    clew_store *s = open_store(dir, NULL, NULL);
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(put(s, tid(45, i), "chunky", 1, 8, t0), CLEW_OK);
    }
    size_t head = head_bytes_of(s); /* one cut's worth, decoded */
    clew__store_destroy(s);
    remove_temp_dir(dir);

    /* three such cuts are together 1.5 block sizes decoded, each block a few KiB on disk
     * (far under a quarter of the block size): before the bound they were merged */
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    opts o = {NULL, 0, CLEW_WAL_FSYNC_INTERVAL, 3, 2 * head, 0, 0};
    s = open_store(dir, &o, NULL);
    for (uint64_t k = 0; k < 3; k++) {
        for (uint64_t i = 0; i < 10; i++) {
            assert_int_equal(put(s, tid(46 + k, i), "chunky", 1, 8, t0), CLEW_OK);
        }
        assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    }
    assert_true(count_files(dir, "blocks", ".block") == 3);
    assert_int_equal(clew__embedded_store_n_blocks(s), 3);
    clew__store_destroy(s);
    remove_temp_dir(dir);

    /* the same three cuts with room for them: merged into one */
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    opts big = {NULL, 0, CLEW_WAL_FSYNC_INTERVAL, 3, 64 * head, 0, 0};
    s = open_store(dir, &big, NULL);
    for (uint64_t k = 0; k < 3; k++) {
        for (uint64_t i = 0; i < 10; i++) {
            assert_int_equal(put(s, tid(46 + k, i), "chunky", 1, 8, t0), CLEW_OK);
        }
        assert_int_equal(clew__embedded_store_cut(s, NULL), CLEW_OK);
    }
    assert_int_equal(clew__embedded_store_n_blocks(s), 1);
    for (uint64_t k = 0; k < 3; k++) {
        expect_all(s, 46 + k, 10, 8, 30);
    }
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

static uint64_t index_bytes(clew_store *s)
{
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    s->ops->stats(s, &st);
    return st.index_bytes;
}

static size_t search_count(clew_store *s, const char *service)
{
    clew_search_query q;
    memset(&q, 0, sizeof(q));
    q.limit = 100;
    q.service = (clew_str){service, strlen(service)};
    clew_search_result *r = NULL;
    assert_int_equal(s->ops->search(s, &q, &r), CLEW_OK);
    size_t n = r->n_traces;
    clew__search_result_free(r);
    return n;
}

/* The memory of the blocks' indexes stays within index_max_bytes: past it, each maintenance
 * pass (here: after a cut) drops the indexes of the blocks queried least recently, and a
 * query loads them again, with the same answers. A bound of one byte drops them all. */
static void test_index_memory_bounded(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    uint64_t t0 = now_wall();
    opts unbounded = {0};
    clew_store *s = open_store(dir, &unbounded, NULL);
    for (uint64_t i = 1; i <= 6; i++) {
        assert_int_equal(put(s, tid(40, i), i % 2 ? "odd" : "even", 1, 3, t0 + i * 1000000),
                         CLEW_OK);
        size_t cut = 0;
        assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK); /* one block each */
    }
    assert_int_equal(clew__embedded_store_n_blocks(s), 6);
    uint64_t all = index_bytes(s);
    assert_true(all > 0);
    clew__store_destroy(s);

    /* reopened with a bound of a byte: nothing past the first block is loaded at open,
     * and the first pass drops that one too */
    opts tiny = {.index_max = 1};
    s = open_store(dir, &tiny, NULL);
    assert_true(index_bytes(s) < all);
    size_t cut = 0;
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(index_bytes(s), 0);
    for (uint64_t i = 1; i <= 6; i++) {
        assert_int_equal(count_spans(s, tid(40, i)), 3);
    }
    assert_true(index_bytes(s) > 0); /* loaded again by the lookups */
    assert_int_equal(search_count(s, "odd"), 3);
    assert_int_equal(search_count(s, "even"), 3);
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(index_bytes(s), 0);
    clew__store_destroy(s);

    /* a bound of about two blocks keeps the two queried last */
    opts two = {.index_max = (size_t)(all / 6 * 2 + all / 12)};
    s = open_store(dir, &two, NULL);
    assert_int_equal(count_spans(s, tid(40, 2)), 3);
    assert_int_equal(count_spans(s, tid(40, 5)), 3);
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    uint64_t kept = index_bytes(s);
    assert_true(kept > 0 && kept <= two.index_max);
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

typedef struct reader_job {
    clew_store *s;
    _Atomic bool stop;
    size_t rounds;
} reader_job;

static void *reader_main(void *p)
{
    reader_job *j = p;
    while (!atomic_load(&j->stop)) {
        for (uint64_t i = 1; i <= 6; i++) {
            if (count_spans(j->s, tid(41, i)) != 2) {
                fail_msg("trace %llu lost its spans", (unsigned long long)i);
            }
        }
        if (search_count(j->s, "svc") != 6) {
            fail_msg("a search lost traces");
        }
        j->rounds++;
    }
    return NULL;
}

/* Queries on one thread while another drops the indexes over and over: every answer stays
 * whole (ASan and TSan builds check that nothing freed is read). */
static void test_index_drop_while_querying(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-cut");
    uint64_t t0 = now_wall();
    opts tiny = {.index_max = 1};
    clew_store *s = open_store(dir, &tiny, NULL);
    for (uint64_t i = 1; i <= 6; i++) {
        assert_int_equal(put(s, tid(41, i), "svc", 1, 2, t0 + i * 1000000), CLEW_OK);
        size_t cut = 0;
        assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    }
    reader_job j = {.s = s, .rounds = 0};
    atomic_init(&j.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &j), 0);
    for (int i = 0; i < 200; i++) {
        size_t cut = 0;
        assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK); /* maintenance pass */
    }
    atomic_store(&j.stop, true);
    pthread_join(th, NULL);
    assert_true(j.rounds > 0);
    clew__store_destroy(s);
    remove_temp_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_then_query_head_and_blocks),
        cmocka_unit_test(test_crash_points),
        cmocka_unit_test(test_retention_removes_old_blocks),
        cmocka_unit_test(test_max_disk_removes_oldest_first),
        cmocka_unit_test(test_quarantine),
        cmocka_unit_test(test_damaged_section_quarantined_at_open),
        cmocka_unit_test(test_memory_store_list_and_remove),
        cmocka_unit_test(test_background_cuts_during_ingest),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_pending_traces_keep_their_wal_segments),
        cmocka_unit_test(test_cut_in_chunks),
        cmocka_unit_test(test_crash_between_chunks),
        cmocka_unit_test(test_compaction_is_bounded),
        cmocka_unit_test(test_index_memory_bounded),
        cmocka_unit_test(test_index_drop_while_querying),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
