/*
 * tests/unit/test_wal.c - the write-ahead log: framing and CRC, replay across rotations,
 * what an acknowledgement guarantees in each fsync mode (checked against the power-loss
 * simulator), torn tails at every byte, corruption in older segments, version mismatch,
 * segment release, crash injection at every named point, and back-pressure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "store/embedded/fileio.h"
#include "store/embedded/wal.h"
#include "dir_fixtures.h"

/* ---- helpers ---- */

static void seg_path(const char *dir, uint64_t seg, char *out, size_t n)
{
    snprintf(out, n, "%s/wal/%020" PRIu64 ".wal", dir, seg);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Record payloads: an 8-byte id, then id-derived filler of id-derived length, so replay can
 * check every byte. */
static size_t make_payload(uint64_t id, uint8_t *out, size_t cap)
{
    size_t len = 8 + (size_t)(id * 7919 % 200);
    assert_true(len <= cap);
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(id >> (8 * i));
    }
    for (size_t i = 8; i < len; i++) {
        out[i] = (uint8_t)(id * 31 + i);
    }
    return len;
}

static bool check_payload(const uint8_t *p, size_t len, uint64_t *id)
{
    if (len < 8) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    uint8_t want[256];
    size_t wl = make_payload(v, want, sizeof(want));
    *id = v;
    return wl == len && memcmp(want, p, len) == 0;
}

/* What a replay saw. */
typedef struct seen {
    uint64_t *ids;
    clew_wal_pos *pos;
    size_t n, cap;
    bool bad;
} seen;

static clew_status on_replay(void *ud, clew_wal_pos pos, uint8_t type, const uint8_t *payload,
                             size_t len)
{
    seen *s = ud;
    uint64_t id = 0;
    if (type != 7 || !check_payload(payload, len, &id)) {
        s->bad = true;
        return CLEW_OK;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->ids = realloc(s->ids, s->cap * sizeof(*s->ids));
        s->pos = realloc(s->pos, s->cap * sizeof(*s->pos));
    }
    s->ids[s->n] = id;
    s->pos[s->n] = pos;
    s->n++;
    return CLEW_OK;
}

static void seen_free(seen *s)
{
    free(s->ids);
    free(s->pos);
    memset(s, 0, sizeof(*s));
}

/* Log capture. */
typedef struct logs {
    char text[8192];
    size_t len;
    int warn, error;
} logs;

static void on_log(void *ud, clew_wal_log_level level, const char *msg)
{
    logs *l = ud;
    if (level == CLEW_WAL_LOG_WARN) {
        l->warn++;
    } else if (level == CLEW_WAL_LOG_ERROR) {
        l->error++;
    }
    int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s\n", msg);
    if (n > 0 && l->len + (size_t)n < sizeof(l->text)) {
        l->len += (size_t)n;
    }
}

/* Acknowledgements, from any thread. */
typedef struct acks {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t ok, failed;
    bool *acked;       /* by id */
    clew_wal_pos *pos; /* by id */
    size_t max_id;
    int fsyncs_at_ack_min; /* with a counting fileio: fsyncs seen by the earliest callback */
} acks;

typedef struct ack_ctx {
    acks *a;
    uint64_t id;
} ack_ctx;

static void acks_init(acks *a, size_t max_id)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->max_id = max_id;
    a->acked = calloc(max_id, sizeof(bool));
    a->pos = calloc(max_id, sizeof(clew_wal_pos));
}

static void acks_free(acks *a)
{
    free(a->acked);
    free(a->pos);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
}

static void on_done(void *ud, clew_status st, clew_wal_pos pos)
{
    ack_ctx *c = ud;
    acks *a = c->a;
    pthread_mutex_lock(&a->mu);
    if (st == CLEW_OK) {
        a->ok++;
        a->acked[c->id] = true;
        a->pos[c->id] = pos;
    } else {
        a->failed++;
    }
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static bool acks_wait(acks *a, size_t n, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    while (a->ok + a->failed < n) {
        if (pthread_cond_timedwait(&a->cv, &a->mu, &ts) != 0) {
            break;
        }
    }
    bool done = a->ok + a->failed >= n;
    pthread_mutex_unlock(&a->mu);
    return done;
}

/* A fileio that forwards to another, counts fsyncs and can hold every write at a gate. */
typedef struct wrap_io {
    clew_fileio base;
    clew_fileio *in;
    atomic_int fsyncs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gate_closed;
} wrap_io;

static clew_fileio *inner(clew_fileio *io)
{
    return ((wrap_io *)io)->in;
}

static clew_status w_open(clew_fileio *io, const char *p, int fl, int *fd)
{
    return inner(io)->open_file(inner(io), p, fl, fd);
}

static clew_status w_close(clew_fileio *io, int fd)
{
    return inner(io)->close_file(inner(io), fd);
}

static clew_status w_pwrite(clew_fileio *io, int fd, const void *b, size_t n, uint64_t off)
{
    wrap_io *w = (wrap_io *)io;
    pthread_mutex_lock(&w->mu);
    while (w->gate_closed) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return inner(io)->pwrite_all(inner(io), fd, b, n, off);
}

static clew_status w_pread(clew_fileio *io, int fd, void *b, size_t n, uint64_t off, size_t *o)
{
    return inner(io)->pread_some(inner(io), fd, b, n, off, o);
}

static clew_status w_fsync(clew_fileio *io, int fd)
{
    atomic_fetch_add(&((wrap_io *)io)->fsyncs, 1);
    return inner(io)->fsync_file(inner(io), fd);
}

static clew_status w_trunc(clew_fileio *io, int fd, uint64_t s)
{
    return inner(io)->truncate_file(inner(io), fd, s);
}

static clew_status w_size(clew_fileio *io, int fd, uint64_t *s)
{
    return inner(io)->file_size(inner(io), fd, s);
}

static clew_status w_rename(clew_fileio *io, const char *a, const char *b)
{
    return inner(io)->rename_path(inner(io), a, b);
}

static clew_status w_unlink(clew_fileio *io, const char *p)
{
    return inner(io)->unlink_path(inner(io), p);
}

static clew_status w_fsync_dir(clew_fileio *io, const char *d)
{
    return inner(io)->fsync_dir(inner(io), d);
}

static clew_status w_crash(clew_fileio *io, const char *n)
{
    return inner(io)->crash_point(inner(io), n);
}

static void wrap_init(wrap_io *w, clew_fileio *in)
{
    memset(w, 0, sizeof(*w));
    w->base = (clew_fileio){w_open, w_close,  w_pwrite, w_pread,     w_fsync, w_trunc,
                            w_size, w_rename, w_unlink, w_fsync_dir, w_crash};
    w->in = in;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void wrap_gate(wrap_io *w, bool closed)
{
    pthread_mutex_lock(&w->mu);
    w->gate_closed = closed;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wrap_deinit(wrap_io *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static clew_status append_id(clew_wal *wal, uint64_t id, ack_ctx *ctx)
{
    uint8_t buf[256];
    size_t len = make_payload(id, buf, sizeof(buf));
    return clew__wal_append(wal, 7, buf, len, ctx != NULL ? on_done : NULL, ctx);
}

/* ---- tests ---- */

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(clew__crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(clew__crc32c("", 0), 0);
    /* 32 zero bytes: the iSCSI test vector of RFC 3720 B.4 */
    uint8_t z[32] = {0};
    assert_int_equal(clew__crc32c(z, sizeof(z)), 0x8A9136AAu);
}

static void test_roundtrip_across_rotations(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    const size_t n = 3000;
    acks a;
    acks_init(&a, n);
    ack_ctx *ctx = calloc(n, sizeof(*ctx));
    clew_wal_options o = {.fsync_mode = CLEW_WAL_FSYNC_NEVER, .segment_size = 8192};
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    for (size_t i = 0; i < n; i++) {
        ctx[i] = (ack_ctx){&a, i};
        assert_int_equal(append_id(wal, i, &ctx[i]), CLEW_OK);
    }
    assert_int_equal(clew__wal_sync(wal), CLEW_OK);
    assert_true(acks_wait(&a, n, 10000));
    assert_int_equal(a.ok, n);
    uint64_t *segs = NULL;
    size_t nsegs = 0;
    assert_int_equal(clew__wal_segments(wal, &segs, &nsegs), CLEW_OK);
    assert_true(nsegs > 20);
    for (size_t i = 1; i < nsegs; i++) {
        assert_true(segs[i] == segs[i - 1] + 1);
    }
    clew__free(segs);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    /* every segment respects the size limit */
    for (uint64_t s = 1; s <= nsegs; s++) {
        char p[128];
        seg_path(dir, s, p, sizeof(p));
        assert_true(file_size(p) <= 8192);
    }

    seen sn = {0};
    logs lg = {0};
    o.log = on_log;
    o.log_ud = &lg;
    assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
    assert_false(sn.bad);
    assert_int_equal(sn.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sn.ids[i], i);
        /* the position given to the callback is where replay finds the record */
        assert_int_equal(sn.pos[i].segment, a.pos[i].segment);
        assert_int_equal(sn.pos[i].offset, a.pos[i].offset);
    }
    assert_int_equal(lg.warn + lg.error, 0);
    /* appends of this run go to a new segment after the replayed ones */
    ack_ctx c = {&a, 0};
    a.ok = 0;
    assert_int_equal(append_id(wal, 0, &c), CLEW_OK);
    assert_true(acks_wait(&a, 1, 5000));
    assert_int_equal(a.pos[0].segment, nsegs + 1);
    assert_int_equal(a.pos[0].offset, CLEW_WAL_SEGMENT_HEADER);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    seen_free(&sn);
    acks_free(&a);
    free(ctx);
    remove_temp_dir(dir);
}

typedef struct writer_args {
    clew_wal *wal;
    acks *a;
    ack_ctx *ctx;
    uint64_t first, count;
    atomic_size_t accepted;
} writer_args;

static void *writer_thread(void *arg)
{
    writer_args *w = arg;
    for (uint64_t i = w->first; i < w->first + w->count; i++) {
        w->ctx[i] = (ack_ctx){w->a, i};
        clew_status rc = append_id(w->wal, i, &w->ctx[i]);
        if (rc == CLEW_EFULL) {
            usleep(100);
            i--;
            continue;
        }
        if (rc != CLEW_OK) {
            break; /* the WAL died */
        }
        atomic_fetch_add(&w->accepted, 1);
        if (i % 16 == 0) {
            usleep(50); /* let batches of different sizes form */
        }
    }
    return NULL;
}

/* Appends from two threads with the power-loss fileio, crashing at `point` the nth time;
 * then cuts the power and checks that every acknowledged record survived. */
static void run_powerloss(clew_wal_fsync_mode mode, const char *point, unsigned nth,
                          size_t per_thread, bool power_cut, size_t *out_acked, bool *out_crashed)
{
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    clew_fileio *pl = NULL;
    assert_int_equal(clew__fileio_powerloss_create(&pl), CLEW_OK);
    size_t n = per_thread * 2;
    acks a;
    acks_init(&a, n);
    ack_ctx *ctx = calloc(n, sizeof(*ctx));
    clew_wal_options o = {.io = pl, .fsync_mode = mode, .segment_size = 16384};
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    if (point != NULL) {
        clew__fileio_powerloss_arm(pl, point, nth);
    }
    writer_args w[2] = {{wal, &a, ctx, 0, per_thread, 0},
                        {wal, &a, ctx, per_thread, per_thread, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        pthread_create(&t[i], NULL, writer_thread, &w[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    size_t accepted = atomic_load(&w[0].accepted) + atomic_load(&w[1].accepted);
    /* every accepted record gets exactly one callback */
    assert_true(acks_wait(&a, accepted, 10000));
    size_t acked = a.ok;
    if (power_cut) {
        /* the power goes out before close could sync anything more */
        clew__fileio_powerloss_cut(pl);
        (void)clew__wal_close(wal);
        clew__fileio_powerloss_cut(pl);
    } else {
        /* only the process died (kill -9): what it wrote stays in the page cache */
        (void)clew__wal_close(wal);
        clew__fileio_powerloss_destroy(pl);
        pl = NULL;
        o.io = NULL;
    }

    seen sn = {0};
    assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
    assert_false(sn.bad);
    bool *present = calloc(n, sizeof(bool));
    for (size_t i = 0; i < sn.n; i++) {
        assert_true(sn.ids[i] < n);
        assert_false(present[sn.ids[i]]); /* never twice */
        present[sn.ids[i]] = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (a.acked[i] && !present[i]) {
            fail_msg("record %zu was acknowledged but is lost (mode %d, crash %s #%u, %s)", i, mode,
                     point ? point : "-", nth, power_cut ? "power cut" : "process crash");
        }
    }
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    *out_acked = acked;
    *out_crashed = accepted < n || a.failed > 0;
    free(present);
    seen_free(&sn);
    acks_free(&a);
    free(ctx);
    clew__fileio_powerloss_destroy(pl);
    remove_temp_dir(dir);
}

static void test_always_acks_only_durable_records(void **state)
{
    (void)state;
    size_t acked = 0;
    bool crashed = false;
    int interesting = 0;
    /* crash after the k-th group write: that group was never fsynced, so it must not have
     * been acknowledged. How many groups a run has depends on how the two threads
     * interleave, so each run may or may not crash, or crash before any acknowledgement;
     * some runs must do both for the test to mean something. */
    for (unsigned k = 2; k <= 50; k += 6) {
        run_powerloss(CLEW_WAL_FSYNC_ALWAYS, "wal.record.written", k, 300, true, &acked, &crashed);
        interesting += crashed && acked > 0;
    }
    for (unsigned k = 2; k <= 30; k += 7) {
        run_powerloss(CLEW_WAL_FSYNC_ALWAYS, "wal.fsync.done", k, 300, true, &acked, &crashed);
        interesting += crashed && acked > 0;
    }
    assert_true(interesting >= 2);
    /* no crash: a cut after the last callback loses nothing */
    run_powerloss(CLEW_WAL_FSYNC_ALWAYS, NULL, 0, 300, true, &acked, &crashed);
    assert_int_equal(acked, 600);
    assert_false(crashed);
}

static void test_process_crash_keeps_acks_in_every_mode(void **state)
{
    (void)state;
    /* design.md §4: no acknowledged record is lost to a process crash, whatever the mode */
    static const clew_wal_fsync_mode modes[] = {CLEW_WAL_FSYNC_NEVER, CLEW_WAL_FSYNC_INTERVAL,
                                                CLEW_WAL_FSYNC_ALWAYS};
    int interesting = 0;
    for (size_t m = 0; m < 3; m++) {
        for (unsigned k = 2; k <= 20; k += 6) {
            size_t acked = 0;
            bool crashed = false;
            run_powerloss(modes[m], "wal.record.written", k, 300, false, &acked, &crashed);
            interesting += crashed && acked > 0;
        }
    }
    assert_true(interesting >= 2);
}

static void test_always_group_commit(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    wrap_io w;
    wrap_init(&w, clew__fileio_posix());
    clew_wal_options o = {.io = &w.base, .fsync_mode = CLEW_WAL_FSYNC_ALWAYS};
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    const size_t n = 500;
    acks a;
    acks_init(&a, n);
    ack_ctx *ctx = calloc(n, sizeof(*ctx));
    int before = atomic_load(&w.fsyncs);
    /* hold the writer at its first write, so the appends pile up behind it */
    wrap_gate(&w, true);
    for (size_t i = 0; i < n; i++) {
        ctx[i] = (ack_ctx){&a, i};
        assert_int_equal(append_id(wal, i, &ctx[i]), CLEW_OK);
    }
    usleep(20000);
    assert_int_equal(a.ok, 0); /* nothing acknowledged before its fsync */
    wrap_gate(&w, false);
    assert_true(acks_wait(&a, n, 10000));
    assert_int_equal(a.ok, n);
    int fsyncs = atomic_load(&w.fsyncs) - before;
    /* one fsync per group, far fewer than one per record */
    assert_true(fsyncs >= 1 && fsyncs <= 3);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    acks_free(&a);
    free(ctx);
    wrap_deinit(&w);
    remove_temp_dir(dir);
}

static void test_never_and_interval_timing(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    clew_fileio *pl = NULL;
    assert_int_equal(clew__fileio_powerloss_create(&pl), CLEW_OK);
    wrap_io w;
    wrap_init(&w, pl);
    acks a;
    acks_init(&a, 64);
    ack_ctx ctx[64];

    /* never: acknowledged once written, never fsynced, so a power cut may lose it */
    clew_wal_options o = {.io = &w.base, .fsync_mode = CLEW_WAL_FSYNC_NEVER};
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    int f0 = atomic_load(&w.fsyncs);
    for (uint64_t i = 0; i < 10; i++) {
        ctx[i] = (ack_ctx){&a, i};
        assert_int_equal(append_id(wal, i, &ctx[i]), CLEW_OK);
    }
    assert_true(acks_wait(&a, 10, 5000));
    usleep(150000);
    assert_int_equal(atomic_load(&w.fsyncs), f0);
    clew__fileio_powerloss_cut(pl);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    seen sn = {0};
    assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
    assert_int_equal(sn.n, 0);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    seen_free(&sn);

    /* interval: acknowledged after the write, before the fsync that follows within the
     * interval */
    o.fsync_mode = CLEW_WAL_FSYNC_INTERVAL;
    o.fsync_interval_ms = 200;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    f0 = atomic_load(&w.fsyncs);
    a.ok = 0;
    for (uint64_t i = 10; i < 20; i++) {
        ctx[i] = (ack_ctx){&a, i};
        assert_int_equal(append_id(wal, i, &ctx[i]), CLEW_OK);
    }
    assert_true(acks_wait(&a, 10, 5000));
    /* acknowledged before any fsync (the interval since open has not passed yet) */
    assert_int_equal(atomic_load(&w.fsyncs), f0);
    /* the fsync comes by itself, about one interval after the last one */
    double elapsed = 0;
    while (atomic_load(&w.fsyncs) == f0) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        assert_true(elapsed < 3);
        usleep(1000);
    }
    assert_true(elapsed > 0.15);
    clew__fileio_powerloss_cut(pl);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
    assert_int_equal(sn.n, 10);
    assert_int_equal(sn.ids[0], 10);
    /* explicit sync in any mode */
    f0 = atomic_load(&w.fsyncs);
    ctx[20] = (ack_ctx){&a, 20};
    assert_int_equal(append_id(wal, 20, &ctx[20]), CLEW_OK);
    assert_int_equal(clew__wal_sync(wal), CLEW_OK);
    assert_true(atomic_load(&w.fsyncs) > f0);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    seen_free(&sn);

    acks_free(&a);
    wrap_deinit(&w);
    clew__fileio_powerloss_destroy(pl);
    remove_temp_dir(dir);
}

/* Writes `n` records into segment 1 of a fresh WAL and returns the segment's bytes. */
static uint8_t *build_segment(const char *dir, uint64_t n, size_t *size, uint64_t *last_off)
{
    clew_wal *wal = NULL;
    acks a;
    acks_init(&a, n);
    ack_ctx ctx[64];
    assert_true(n <= 64);
    clew_wal_options o = {.fsync_mode = CLEW_WAL_FSYNC_NEVER};
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    for (uint64_t i = 0; i < n; i++) {
        ctx[i] = (ack_ctx){&a, i};
        assert_int_equal(append_id(wal, i, &ctx[i]), CLEW_OK);
    }
    assert_true(acks_wait(&a, n, 5000));
    *last_off = a.pos[n - 1].offset;
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    char p[128];
    seg_path(dir, 1, p, sizeof(p));
    uint8_t *data = slurp(p, size);
    acks_free(&a);
    return data;
}

static void test_torn_tail_every_offset(void **state)
{
    (void)state;
    char src[64];
    make_temp_dir(src, sizeof(src), "clew-wal");
    size_t size = 0;
    uint64_t last_off = 0;
    uint8_t *data = build_segment(src, 5, &size, &last_off);
    remove_temp_dir(src);
    for (size_t cut = last_off; cut < size; cut++) {
        char dir[64], p[128], wd[128];
        make_temp_dir(dir, sizeof(dir), "clew-wal");
        snprintf(wd, sizeof(wd), "%s/wal", dir);
        mkdir(wd, 0755);
        seg_path(dir, 1, p, sizeof(p));
        spit(p, data, cut);
        seen sn = {0};
        logs lg = {0};
        clew_wal_options o = {.fsync_mode = CLEW_WAL_FSYNC_NEVER, .log = on_log, .log_ud = &lg};
        clew_wal *wal = NULL;
        assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
        assert_int_equal(sn.n, 4);
        assert_false(sn.bad);
        for (uint64_t i = 0; i < 4; i++) {
            assert_int_equal(sn.ids[i], i);
        }
        assert_int_equal(file_size(p), (int64_t)last_off);
        if (cut > last_off) {
            char want[96];
            snprintf(want, sizeof(want), "dropped %zu bytes, 1 records", cut - (size_t)last_off);
            if (strstr(lg.text, want) == NULL) {
                fail_msg("cut at %zu: log lacks \"%s\": %s", cut, want, lg.text);
            }
            assert_int_equal(lg.warn, 1);
        } else {
            assert_int_equal(lg.warn + lg.error, 0);
        }
        assert_int_equal(clew__wal_close(wal), CLEW_OK);
        seen_free(&sn);
        remove_temp_dir(dir);
    }
    /* a flipped byte in the last record, and zeros after it, are cut the same way */
    for (int variant = 0; variant < 2; variant++) {
        char dir[64], p[128], wd[128];
        make_temp_dir(dir, sizeof(dir), "clew-wal");
        snprintf(wd, sizeof(wd), "%s/wal", dir);
        mkdir(wd, 0755);
        seg_path(dir, 1, p, sizeof(p));
        uint8_t *copy = malloc(size + 4096);
        memcpy(copy, data, size);
        size_t n = size;
        if (variant == 0) {
            copy[size - 3] ^= 0x40;
        } else {
            memset(copy + size, 0, 4096);
            n = size + 4096;
        }
        spit(p, copy, n);
        seen sn = {0};
        logs lg = {0};
        clew_wal_options o = {.fsync_mode = CLEW_WAL_FSYNC_NEVER, .log = on_log, .log_ud = &lg};
        clew_wal *wal = NULL;
        assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
        assert_int_equal(sn.n, variant == 0 ? 4 : 5);
        assert_int_equal(file_size(p), variant == 0 ? (int64_t)last_off : (int64_t)size);
        assert_non_null(strstr(lg.text, variant == 0 ? "checksum mismatch" : "dropped 4096 bytes"));
        assert_int_equal(clew__wal_close(wal), CLEW_OK);
        seen_free(&sn);
        free(copy);
        remove_temp_dir(dir);
    }
    free(data);
}

static void test_corrupt_middle_of_older_segment(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    clew_wal_options o = {.fsync_mode = CLEW_WAL_FSYNC_NEVER};
    clew_wal *wal = NULL;
    acks a;
    acks_init(&a, 30);
    ack_ctx ctx[30];
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    for (uint64_t i = 0; i < 30; i++) {
        ctx[i] = (ack_ctx){&a, i};
        assert_int_equal(append_id(wal, i, &ctx[i]), CLEW_OK);
        if (i == 9 || i == 19) {
            uint64_t seg = 0;
            assert_int_equal(clew__wal_rotate(wal, &seg), CLEW_OK);
            assert_int_equal(seg, i == 9 ? 2 : 3);
        }
    }
    assert_true(acks_wait(&a, 30, 5000));
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    /* corrupt record 4 (in segment 1): its payload */
    char p[128];
    seg_path(dir, 1, p, sizeof(p));
    size_t size = 0;
    uint8_t *d = slurp(p, &size);
    d[a.pos[4].offset + CLEW_WAL_RECORD_HEADER + 2] ^= 1;
    spit(p, d, size);
    seen sn = {0};
    logs lg = {0};
    o.log = on_log;
    o.log_ud = &lg;
    assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
    /* 0..3 from segment 1, then segments 2 and 3 whole */
    assert_int_equal(sn.n, 4 + 20);
    for (size_t i = 0; i < sn.n; i++) {
        assert_int_equal(sn.ids[i], i < 4 ? i : i + 6);
    }
    assert_int_equal(lg.error, 1);
    assert_non_null(strstr(lg.text, "corrupt record"));
    assert_non_null(strstr(lg.text, "6 records"));
    assert_int_equal(file_size(p), (int64_t)size); /* an older segment is left as it is */
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    seen_free(&sn);
    free(d);
    acks_free(&a);
    remove_temp_dir(dir);
}

static void test_version_mismatch(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    size_t size = 0;
    uint64_t last = 0;
    uint8_t *d = build_segment(dir, 3, &size, &last);
    d[8] = 2; /* version 2, with a valid header checksum */
    uint32_t crc = clew__crc32c(d, 28);
    for (int i = 0; i < 4; i++) {
        d[28 + i] = (uint8_t)(crc >> (8 * i));
    }
    char p[128];
    seg_path(dir, 1, p, sizeof(p));
    spit(p, d, size);
    logs lg = {0};
    clew_wal_options o = {.log = on_log, .log_ud = &lg};
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_EUNSUPPORTED);
    assert_null(wal);
    assert_non_null(strstr(lg.text, "format version 2"));
    assert_int_equal(file_size(p), (int64_t)size); /* nothing was cut */
    /* the scanner says the same on a buffer */
    clew_wal_scan_result res;
    assert_int_equal(clew__wal_scan_buffer(d, size, 1, 0, NULL, NULL, &res), CLEW_OK);
    assert_int_equal(res.header, CLEW_EUNSUPPORTED);
    free(d);
    remove_temp_dir(dir);
}

static void test_release_segments(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    clew_wal_options o = {.fsync_mode = CLEW_WAL_FSYNC_ALWAYS};
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(append_id(wal, i, NULL), CLEW_OK);
        uint64_t seg = 0;
        assert_int_equal(clew__wal_rotate(wal, &seg), CLEW_OK);
        assert_int_equal(seg, i + 2);
    }
    size_t deleted = 0;
    assert_int_equal(clew__wal_release_segments_before(wal, 3, &deleted), CLEW_OK);
    assert_int_equal(deleted, 2);
    char p[128];
    seg_path(dir, 2, p, sizeof(p));
    assert_int_equal(file_size(p), -1);
    seg_path(dir, 3, p, sizeof(p));
    assert_true(file_size(p) > 0);
    /* the segment being written is never released */
    assert_int_equal(clew__wal_release_segments_before(wal, UINT64_MAX, &deleted), CLEW_OK);
    assert_int_equal(deleted, 3);
    uint64_t *segs = NULL;
    size_t n = 0;
    assert_int_equal(clew__wal_segments(wal, &segs, &n), CLEW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(segs[0], 6);
    clew__free(segs);
    assert_int_equal(append_id(wal, 5, NULL), CLEW_OK);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    seen sn = {0};
    assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
    assert_int_equal(sn.n, 1);
    assert_int_equal(sn.ids[0], 5);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    seen_free(&sn);
    remove_temp_dir(dir);
}

/* Drives appends, rotations and releases in one thread until the armed crash kills the
 * "process", then restarts and checks: every acknowledged record of an unreleased segment
 * is back, none twice, in order. */
static void crash_case(const char *point, unsigned nth)
{
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    clew_fileio *pl = NULL;
    assert_int_equal(clew__fileio_powerloss_create(&pl), CLEW_OK);
    const size_t n = 400;
    acks a;
    acks_init(&a, n);
    ack_ctx *ctx = calloc(n, sizeof(*ctx));
    clew_wal_options o = {.io = pl, .fsync_mode = CLEW_WAL_FSYNC_ALWAYS, .segment_size = 2048};
    clew__fileio_powerloss_arm(pl, point, nth);
    clew_wal *wal = NULL;
    uint64_t released_before = 0;
    clew_status rc = clew__wal_open(dir, &o, NULL, NULL, &wal);
    if (rc == CLEW_OK) {
        for (uint64_t i = 0; i < n; i++) {
            ctx[i] = (ack_ctx){&a, i};
            if (append_id(wal, i, &ctx[i]) != CLEW_OK) {
                break;
            }
            if (i % 8 == 7 && clew__wal_sync(wal) != CLEW_OK) {
                break;
            }
            if (i % 40 == 39) {
                uint64_t seg = 0;
                if (clew__wal_rotate(wal, &seg) != CLEW_OK) {
                    break;
                }
                released_before = seg - 1;
                if (clew__wal_release_segments_before(wal, released_before, NULL) != CLEW_OK) {
                    break;
                }
            }
        }
        (void)clew__wal_close(wal);
    } else {
        assert_int_equal(rc, CLEW_EIO);
    }
    clew__fileio_powerloss_cut(pl);
    seen sn = {0};
    logs lg = {0};
    o.log = on_log;
    o.log_ud = &lg;
    assert_int_equal(clew__wal_open(dir, &o, on_replay, &sn, &wal), CLEW_OK);
    assert_false(sn.bad);
    assert_int_equal(lg.error, 0);
    for (size_t i = 1; i < sn.n; i++) {
        assert_true(sn.ids[i] > sn.ids[i - 1]);
    }
    size_t j = 0;
    for (uint64_t id = 0; id < n; id++) {
        while (j < sn.n && sn.ids[j] < id) {
            j++;
        }
        bool present = j < sn.n && sn.ids[j] == id;
        if (a.acked[id] && a.pos[id].segment >= released_before && !present) {
            fail_msg("crash at %s #%u: acknowledged record %" PRIu64 " lost", point, nth, id);
        }
    }
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    seen_free(&sn);
    acks_free(&a);
    free(ctx);
    clew__fileio_powerloss_destroy(pl);
    remove_temp_dir(dir);
}

static void test_crash_points(void **state)
{
    (void)state;
    static const char *points[] = {"wal.record.written", "wal.fsync.done", "wal.segment.rotated",
                                   "wal.segment.deleting", "wal.segment.deleted"};
    for (size_t p = 0; p < sizeof(points) / sizeof(points[0]); p++) {
        for (unsigned nth = 1; nth <= 13; nth += 3) {
            crash_case(points[p], nth);
        }
    }
}

static void test_backpressure(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    wrap_io w;
    wrap_init(&w, clew__fileio_posix());
    clew_wal_options o = {.io = &w.base,
                          .fsync_mode = CLEW_WAL_FSYNC_NEVER,
                          .max_queue_bytes = 64 * 1024,
                          .max_record_bytes = 4096};
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    uint8_t big[4097];
    memset(big, 'x', sizeof(big));
    assert_int_equal(clew__wal_append(wal, 7, big, 4097, NULL, NULL), CLEW_ETOOBIG);
    assert_int_equal(clew__wal_append(wal, 0, big, 10, NULL, NULL), CLEW_EINVAL);
    acks a;
    acks_init(&a, 1000);
    ack_ctx *ctx = calloc(1000, sizeof(*ctx));
    wrap_gate(&w, true);
    size_t accepted = 0;
    clew_status rc = CLEW_OK;
    for (uint64_t i = 0; i < 1000; i++) {
        ctx[i] = (ack_ctx){&a, i};
        rc = clew__wal_append(wal, 7, big, 1000, on_done, &ctx[i]);
        if (rc != CLEW_OK) {
            break;
        }
        accepted++;
    }
    assert_int_equal(rc, CLEW_EFULL);
    /* refused once about 64 KiB are queued or in flight (the first record may be held by the
     * writer at the gate) */
    assert_true(accepted >= 55 && accepted <= 66);
    wrap_gate(&w, false);
    assert_true(acks_wait(&a, accepted, 5000));
    assert_int_equal(a.ok, accepted);
    assert_int_equal(clew__wal_append(wal, 7, big, 1000, NULL, NULL), CLEW_OK);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    acks_free(&a);
    free(ctx);
    wrap_deinit(&w);
    remove_temp_dir(dir);
}

static void test_payloads(void **state)
{
    (void)state;
    uint8_t *p = NULL;
    size_t n = 0;
    const char batch[] = "\x0a\x02\x0a\x00";
    assert_int_equal(
        clew__wal_spans_encode((clew_str){"acme", 4}, CLEW_WAL_SPANS_OTLP_PB, batch, 4, &p, &n),
        CLEW_OK);
    clew_str tenant;
    uint8_t enc = 0;
    const uint8_t *b = NULL;
    size_t bl = 0;
    assert_int_equal(clew__wal_spans_decode(p, n, &tenant, &enc, &b, &bl), CLEW_OK);
    assert_int_equal(tenant.len, 4);
    assert_memory_equal(tenant.ptr, "acme", 4);
    assert_int_equal(enc, CLEW_WAL_SPANS_OTLP_PB);
    assert_int_equal(bl, 4);
    assert_memory_equal(b, batch, 4);
    assert_int_equal(clew__wal_spans_decode(p, 5, &tenant, &enc, &b, &bl), CLEW_EPARSE);
    clew__free(p);

    clew_wal_decision d = {.tenant = {"", 0},
                           .state = CLEW_WAL_KEPT,
                           .reason = {"error span", 10},
                           .adjusted_count = 12.5};
    for (int i = 0; i < 16; i++) {
        d.trace_id.bytes[i] = (uint8_t)(i + 1);
    }
    assert_int_equal(clew__wal_decision_encode(&d, &p, &n), CLEW_OK);
    clew_wal_decision e;
    assert_int_equal(clew__wal_decision_decode(p, n, &e), CLEW_OK);
    assert_int_equal(e.tenant.len, 0);
    assert_memory_equal(e.trace_id.bytes, d.trace_id.bytes, 16);
    assert_int_equal(e.state, CLEW_WAL_KEPT);
    assert_int_equal(e.reason.len, 10);
    assert_memory_equal(e.reason.ptr, "error span", 10);
    assert_true(e.adjusted_count == 12.5);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(clew__wal_decision_decode(p, cut, &e), CLEW_EPARSE);
    }
    clew__free(p);
}

/* A real OTLP batch stored as a SPANS record comes back byte for byte and decodes to the
 * same spans. */
typedef struct got_batch {
    uint8_t *bytes;
    size_t len;
    int count;
    bool bad;
} got_batch;

static clew_status on_spans(void *ud, clew_wal_pos pos, uint8_t type, const uint8_t *payload,
                            size_t len)
{
    (void)pos;
    got_batch *g = ud;
    clew_str tenant;
    uint8_t enc = 0;
    const uint8_t *b = NULL;
    size_t bl = 0;
    g->count++;
    if (type != CLEW_WAL_SPANS ||
        clew__wal_spans_decode(payload, len, &tenant, &enc, &b, &bl) != CLEW_OK ||
        enc != CLEW_WAL_SPANS_OTLP_PB || tenant.len != 4 || memcmp(tenant.ptr, "acme", 4) != 0) {
        g->bad = true;
        return CLEW_OK;
    }
    free(g->bytes);
    g->bytes = malloc(bl ? bl : 1);
    memcpy(g->bytes, b, bl); /* the payload is only valid during the callback */
    g->len = bl;
    return CLEW_OK;
}

static void test_otlp_batch_roundtrip(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *pb = slurp(CLEW_SOURCE_DIR "/tests/fuzz/corpus/otlp_pb/full.pb", &n);
    clew_arena arena;
    clew__arena_init(&arena, 0, 0);
    clew_batch before;
    clew_error err;
    assert_int_equal(clew__otlp_pb_decode(pb, n, &arena, &before, &err), CLEW_OK);
    assert_true(before.n_spans > 0);
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, NULL, NULL, NULL, &wal), CLEW_OK);
    uint8_t *payload = NULL;
    size_t plen = 0;
    assert_int_equal(clew__wal_spans_encode((clew_str){"acme", 4}, CLEW_WAL_SPANS_OTLP_PB, pb, n,
                                            &payload, &plen),
                     CLEW_OK);
    assert_int_equal(clew__wal_append(wal, CLEW_WAL_SPANS, payload, plen, NULL, NULL), CLEW_OK);
    clew__free(payload);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    got_batch g = {NULL, 0, 0, false};
    assert_int_equal(clew__wal_open(dir, NULL, on_spans, &g, &wal), CLEW_OK);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    assert_false(g.bad);
    assert_int_equal(g.count, 1);
    assert_int_equal(g.len, n);
    assert_memory_equal(g.bytes, pb, n);
    clew_batch after;
    assert_int_equal(clew__otlp_pb_decode(g.bytes, n, &arena, &after, &err), CLEW_OK);
    assert_true(clew__batch_equal(&before, &after));
    free(g.bytes);
    clew__arena_deinit(&arena);
    free(pb);
    remove_temp_dir(dir);
}

/* Records replayed as whole payloads (two at most). */
typedef struct two_payloads {
    uint8_t *p[2];
    size_t len[2];
    size_t n;
} two_payloads;

static clew_status keep_payload(void *ud, clew_wal_pos pos, uint8_t type, const uint8_t *payload,
                                size_t len)
{
    (void)pos;
    (void)type;
    two_payloads *t = ud;
    if (t->n < 2) {
        t->p[t->n] = malloc(len ? len : 1);
        memcpy(t->p[t->n], payload, len); /* valid during the callback only */
        t->len[t->n++] = len;
    }
    return CLEW_OK;
}

/* clew__wal_appendv writes the same record as clew__wal_append of its parts joined (what the
 * embedded store relies on to log a held request without joining it first), and the record
 * limit counts the parts together. */
static void test_appendv_is_the_joined_payload(void **state)
{
    (void)state;
    char dir[64];
    make_temp_dir(dir, sizeof(dir), "clew-wal");
    clew_wal_options o = {.fsync_mode = CLEW_WAL_FSYNC_NEVER, .max_record_bytes = 4096};
    clew_wal *wal = NULL;
    assert_int_equal(clew__wal_open(dir, &o, NULL, NULL, &wal), CLEW_OK);
    uint8_t body[3000];
    for (size_t i = 0; i < sizeof(body); i++) {
        body[i] = (uint8_t)(i * 7);
    }
    uint8_t *joined = NULL;
    size_t jl = 0;
    assert_int_equal(clew__wal_spans_encode((clew_str){"acme", 4}, CLEW_WAL_SPANS_OTLP_PB, body,
                                            sizeof(body), &joined, &jl),
                     CLEW_OK);
    assert_int_equal(clew__wal_append(wal, CLEW_WAL_SPANS, joined, jl, NULL, NULL), CLEW_OK);
    uint8_t tl[2] = {4, 0}, enc = CLEW_WAL_SPANS_OTLP_PB;
    clew_wal_part parts[5] = {
        {tl, 2}, {"acme", 4}, {&enc, 1}, {body, 1000}, {body + 1000, sizeof(body) - 1000}};
    assert_int_equal(clew__wal_appendv(wal, CLEW_WAL_SPANS, parts, 5, NULL, NULL), CLEW_OK);
    clew_wal_part too_big[2] = {{body, 3000}, {body, 1097}};
    assert_int_equal(clew__wal_appendv(wal, CLEW_WAL_SPANS, too_big, 2, NULL, NULL), CLEW_ETOOBIG);
    clew_wal_part no_ptr[1] = {{NULL, 5}};
    assert_int_equal(clew__wal_appendv(wal, CLEW_WAL_SPANS, no_ptr, 1, NULL, NULL), CLEW_EINVAL);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);

    two_payloads t = {{NULL, NULL}, {0, 0}, 0};
    assert_int_equal(clew__wal_open(dir, &o, keep_payload, &t, &wal), CLEW_OK);
    assert_int_equal(clew__wal_close(wal), CLEW_OK);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.len[0], jl);
    assert_int_equal(t.len[1], jl);
    assert_memory_equal(t.p[0], joined, jl);
    assert_memory_equal(t.p[1], joined, jl);
    free(t.p[0]);
    free(t.p[1]);
    clew__free(joined);
    remove_temp_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_roundtrip_across_rotations),
        cmocka_unit_test(test_always_acks_only_durable_records),
        cmocka_unit_test(test_process_crash_keeps_acks_in_every_mode),
        cmocka_unit_test(test_always_group_commit),
        cmocka_unit_test(test_never_and_interval_timing),
        cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_corrupt_middle_of_older_segment),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_release_segments),
        cmocka_unit_test(test_crash_points),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_payloads),
        cmocka_unit_test(test_otlp_batch_roundtrip),
        cmocka_unit_test(test_appendv_is_the_joined_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
