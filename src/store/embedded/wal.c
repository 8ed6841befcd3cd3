/*
 * src/store/embedded/wal.c - segment files, the writer thread with group commit, and replay.
 *
 * The caller frames a record (header and CRC) in its own thread, so CRC work spreads over
 * the appending threads, and queues it. One writer thread owns the open segment: it takes the
 * whole queue at once, copies the records into a staging buffer, writes them with as few
 * pwrites as possible, fsyncs when the mode asks for it, and then calls the callbacks. In
 * `always` mode, everything appended while an fsync runs lands in the next batch: that is
 * the group commit, and it is what lets many writers share one fsync.
 *
 * Invariants:
 *  - Only the writer thread touches fd/seg/off/dirty/stage after clew__wal_open returns.
 *  - queued_bytes counts records from append until their callback has run, so a slow disk
 *    turns into CLEW_EFULL at the callers instead of memory growth.
 *  - failed is sticky: after a write or fsync error nothing more is written, because the
 *    kernel may already have dropped the dirty pages it could not write.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "store/embedded/wal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <isa-l/crc.h>

#include "common/alloc.h"

#define WAL_MAGIC           "CLEWWAL\0"
#define DEFAULT_SEGMENT     (64ull << 20)
#define DEFAULT_QUEUE       ((size_t)64 << 20)
#define DEFAULT_RECORD      ((size_t)32 << 20)
#define DEFAULT_INTERVAL    100u
#define STAGE_SIZE          ((size_t)1 << 20)
#define READ_AHEAD          ((size_t)64 << 10)
#define SEGMENT_NAME_DIGITS 20

/* ---- small helpers ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ISA-L's crc32_iscsi takes and returns the raw register: seed with ~0 and invert at the
 * end to get the standard CRC32C. Chained calls continue the same register. */
static uint32_t crc_update(uint32_t reg, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        int n = len > (1u << 30) ? (1 << 30) : (int)len;
        reg = crc32_iscsi((unsigned char *)p, n, reg);
        p += n;
        len -= (size_t)n;
    }
    return reg;
}

uint32_t clew__crc32c(const void *data, size_t len)
{
    return ~crc_update(0xFFFFFFFFu, data, len);
}

static uint32_t record_crc(uint8_t type, const void *payload, size_t len)
{
    uint32_t reg = crc_update(0xFFFFFFFFu, &type, 1);
    return ~crc_update(reg, payload, len);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the segment reader ---- */

typedef struct wal_src {
    /* Reads exactly n bytes at off; the scanner never asks past `size`. */
    clew_status (*read)(void *ctx, uint64_t off, void *buf, size_t n);
    void *ctx;
    uint64_t size;
} wal_src;

typedef struct scan_buf {
    uint8_t *p;
    size_t cap;
} scan_buf;

/* Counts the frames that follow a stop, to say how many records a cut drops. */
static clew_status count_frames(const wal_src *src, uint64_t off, uint64_t *out)
{
    uint64_t n = 0;
    uint8_t h[CLEW_WAL_RECORD_HEADER];
    while (off < src->size) {
        n++;
        if (src->size - off < CLEW_WAL_RECORD_HEADER) {
            break;
        }
        clew_status rc = src->read(src->ctx, off, h, sizeof(h));
        if (rc != CLEW_OK) {
            return rc;
        }
        uint64_t len = get_u32(h);
        if (len > src->size - off - CLEW_WAL_RECORD_HEADER) {
            break;
        }
        off += CLEW_WAL_RECORD_HEADER + len;
    }
    *out = n;
    return CLEW_OK;
}

static clew_status scan(const wal_src *src, uint64_t segment, size_t max_rec, scan_buf *buf,
                        clew_wal_replay_fn cb, void *ud, clew_wal_scan_result *res)
{
    memset(res, 0, sizeof(*res));
    uint8_t h[CLEW_WAL_SEGMENT_HEADER];
    if (src->size < CLEW_WAL_SEGMENT_HEADER) {
        res->header = CLEW_ECORRUPT;
        res->stop_reason = "short segment header";
        res->dropped_bytes = src->size;
        return CLEW_OK;
    }
    clew_status rc = src->read(src->ctx, 0, h, sizeof(h));
    if (rc != CLEW_OK) {
        return rc;
    }
    /* Magic and version keep their offsets in every future version, so a newer file is
     * recognised as such before its (possibly different) checksum is looked at. */
    if (memcmp(h, WAL_MAGIC, 8) != 0) {
        res->header = CLEW_ECORRUPT;
        res->stop_reason = "bad segment magic";
    } else if (get_u32(h + 8) != CLEW_WAL_VERSION) {
        res->header = CLEW_EUNSUPPORTED;
        res->stop_reason = "unsupported segment format version";
    } else if (clew__crc32c(h, 28) != get_u32(h + 28)) {
        res->header = CLEW_ECORRUPT;
        res->stop_reason = "segment header checksum mismatch";
    } else if (get_u32(h + 12) != CLEW_WAL_SEGMENT_HEADER) {
        res->header = CLEW_ECORRUPT;
        res->stop_reason = "bad segment header size";
    } else if (segment != UINT64_MAX && get_u64(h + 16) != segment) {
        res->header = CLEW_ECORRUPT;
        res->stop_reason = "segment number in header does not match the file name";
    }
    if (res->header != CLEW_OK) {
        res->dropped_bytes = src->size;
        return CLEW_OK;
    }
    uint64_t off = CLEW_WAL_SEGMENT_HEADER;
    res->valid_end = off;
    if (segment == UINT64_MAX) {
        segment = get_u64(h + 16);
    }
    while (off < src->size) {
        uint8_t rh[CLEW_WAL_RECORD_HEADER];
        if (src->size - off < CLEW_WAL_RECORD_HEADER) {
            res->stop_reason = "torn record header";
            break;
        }
        rc = src->read(src->ctx, off, rh, sizeof(rh));
        if (rc != CLEW_OK) {
            return rc;
        }
        uint64_t len = get_u32(rh);
        if (len > max_rec) {
            res->stop_reason = "record length over the limit";
            break;
        }
        if (len > src->size - off - CLEW_WAL_RECORD_HEADER) {
            res->stop_reason = "record extends past the end of the segment";
            break;
        }
        if (len > buf->cap) {
            uint8_t *np = clew__realloc(buf->p, len);
            if (np == NULL) {
                return CLEW_ENOMEM;
            }
            buf->p = np;
            buf->cap = len;
        }
        if (len > 0) {
            rc = src->read(src->ctx, off + CLEW_WAL_RECORD_HEADER, buf->p, len);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
        uint8_t type = rh[8];
        if (record_crc(type, buf->p, len) != get_u32(rh + 4)) {
            res->stop_reason = "record checksum mismatch";
            break;
        }
        if (type == 0) {
            res->stop_reason = "record of type 0";
            break;
        }
        if (cb != NULL) {
            rc = cb(ud, (clew_wal_pos){segment, off}, type, buf->p, len);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
        res->records++;
        off += CLEW_WAL_RECORD_HEADER + len;
        res->valid_end = off;
    }
    res->dropped_bytes = src->size - res->valid_end;
    if (res->stop_reason != NULL) {
        return count_frames(src, res->valid_end, &res->dropped_records);
    }
    return CLEW_OK;
}

typedef struct mem_ctx {
    const uint8_t *data;
} mem_ctx;

static clew_status mem_read(void *ctx, uint64_t off, void *buf, size_t n)
{
    memcpy(buf, ((mem_ctx *)ctx)->data + off, n);
    return CLEW_OK;
}

clew_status clew__wal_scan_buffer(const uint8_t *data, size_t size, uint64_t segment,
                                  size_t max_record_bytes, clew_wal_replay_fn cb, void *ud,
                                  clew_wal_scan_result *res)
{
    mem_ctx ctx = {data};
    wal_src src = {mem_read, &ctx, size};
    if (max_record_bytes == 0) {
        max_record_bytes = DEFAULT_RECORD;
    }
    if (max_record_bytes > CLEW_WAL_MAX_RECORD_SIZE) {
        max_record_bytes = CLEW_WAL_MAX_RECORD_SIZE;
    }
    scan_buf buf = {NULL, 0};
    clew_status rc = scan(&src, segment, max_record_bytes, &buf, cb, ud, res);
    clew__free(buf.p);
    return rc;
}

/* A file source with a small read-ahead, so reading 9-byte record headers does not cost a
 * system call each. */
typedef struct file_ctx {
    clew_fileio *io;
    int fd;
    uint64_t size;
    uint8_t *cache;
    uint64_t cache_off;
    size_t cache_len;
} file_ctx;

static clew_status read_exact(clew_fileio *io, int fd, uint64_t off, void *buf, size_t n)
{
    size_t got = 0;
    clew_status rc = io->pread_some(io, fd, buf, n, off, &got);
    if (rc != CLEW_OK) {
        return rc;
    }
    return got == n ? CLEW_OK : CLEW_EIO; /* the file shrank under us */
}

static clew_status file_read(void *vctx, uint64_t off, void *buf, size_t n)
{
    file_ctx *c = vctx;
    if (n > READ_AHEAD) {
        return read_exact(c->io, c->fd, off, buf, n);
    }
    if (off < c->cache_off || off + n > c->cache_off + c->cache_len) {
        size_t want = c->size - off < READ_AHEAD ? (size_t)(c->size - off) : READ_AHEAD;
        clew_status rc = read_exact(c->io, c->fd, off, c->cache, want);
        if (rc != CLEW_OK) {
            c->cache_len = 0;
            return rc;
        }
        c->cache_off = off;
        c->cache_len = want;
    }
    memcpy(buf, c->cache + (off - c->cache_off), n);
    return CLEW_OK;
}

/* ---- the WAL object ---- */

enum node_kind { NODE_RECORD, NODE_SYNC, NODE_ROTATE };

typedef struct wal_waiter {
    bool done;
    clew_status status;
    uint64_t segment;
} wal_waiter;

typedef struct wal_node {
    struct wal_node *next;
    enum node_kind kind;
    size_t size; /* framed bytes: header + payload */
    size_t cost; /* bytes charged to the queue */
    clew_wal_done_fn done;
    void *ud;
    clew_wal_pos pos;
    wal_waiter *waiter;
    uint8_t data[]; /* the framed record */
} wal_node;

struct clew_wal {
    clew_fileio *io;
    char *dir;  /* DIR/wal */
    char *path; /* scratch for segment paths */
    size_t path_cap;
    clew_wal_fsync_mode mode;
    uint64_t interval_ns;
    uint64_t segment_size;
    size_t max_queue;
    size_t max_record;
    clew_wal_log_fn log;
    void *log_ud;

    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* CLOCK_MONOTONIC */
    pthread_cond_t cv_done;
    bool sync_init;
    wal_node *head, *tail;
    size_t queued_bytes;
    bool closing;
    bool writer_waiting; /* the writer sleeps on cv_work: appends must wake it */
    clew_status failed;
    pthread_t thread;
    bool thread_started;

    /* the writer's own state */
    int fd;
    uint64_t seg;
    uint64_t off;
    bool dirty;
    uint64_t last_sync_ns;
    uint8_t *stage;
    size_t stage_len; /* staged bytes, for the file range just before off */

    pthread_mutex_t seg_mu; /* the list of segments on disk */
    bool seg_mu_init;
    uint64_t *segs;
    size_t n_segs, cap_segs;
};

static void wal_log(clew_wal *wal, clew_wal_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wal_log(clew_wal *wal, clew_wal_log_level level, const char *fmt, ...)
{
    if (wal->log == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wal->log(wal->log_ud, level, msg);
}

static const char *segment_path(clew_wal *wal, uint64_t seg)
{
    snprintf(wal->path, wal->path_cap, "%s/%0*" PRIu64 ".wal", wal->dir, SEGMENT_NAME_DIGITS, seg);
    return wal->path;
}

static clew_status segs_add(clew_wal *wal, uint64_t seg)
{
    pthread_mutex_lock(&wal->seg_mu);
    clew_status rc = CLEW_OK;
    if (wal->n_segs == wal->cap_segs) {
        size_t cap = wal->cap_segs ? wal->cap_segs * 2 : 16;
        uint64_t *n = clew__realloc(wal->segs, cap * sizeof(*n));
        if (n == NULL) {
            rc = CLEW_ENOMEM;
        } else {
            wal->segs = n;
            wal->cap_segs = cap;
        }
    }
    if (rc == CLEW_OK) {
        wal->segs[wal->n_segs++] = seg;
    }
    pthread_mutex_unlock(&wal->seg_mu);
    return rc;
}

static void set_failed(clew_wal *wal, clew_status rc)
{
    pthread_mutex_lock(&wal->mu);
    if (wal->failed == CLEW_OK) {
        wal->failed = rc;
    }
    pthread_mutex_unlock(&wal->mu);
    wal_log(wal, CLEW_WAL_LOG_ERROR,
            "wal: writing segment %" PRIu64 " failed (%s); the WAL accepts no more records",
            wal->seg, clew_strerror(rc));
}

static clew_status do_fsync(clew_wal *wal)
{
    clew_status rc = wal->io->fsync_file(wal->io, wal->fd);
    if (rc == CLEW_OK) {
        rc = wal->io->crash_point(wal->io, "wal.fsync.done");
    }
    if (rc == CLEW_OK) {
        wal->dirty = false;
        wal->last_sync_ns = now_ns();
    }
    return rc;
}

static clew_status flush_stage(clew_wal *wal)
{
    if (wal->stage_len == 0) {
        return CLEW_OK;
    }
    /* The stage always holds the bytes just before wal->off. */
    clew_status rc = wal->io->pwrite_all(wal->io, wal->fd, wal->stage, wal->stage_len,
                                         wal->off - wal->stage_len);
    wal->dirty = true;
    wal->stage_len = 0;
    if (rc == CLEW_OK) {
        rc = wal->io->crash_point(wal->io, "wal.record.written");
    }
    return rc;
}

/* Closes the current segment (durable first unless the mode is NEVER) and starts the next:
 * created exclusively, header written and fsynced, directory fsynced. */
static clew_status start_segment(clew_wal *wal, uint64_t seg)
{
    clew_fileio *io = wal->io;
    clew_status rc = CLEW_OK;
    if (wal->fd >= 0) {
        rc = flush_stage(wal);
        if (rc == CLEW_OK && wal->mode != CLEW_WAL_FSYNC_NEVER && wal->dirty) {
            rc = do_fsync(wal);
        }
        if (rc != CLEW_OK) {
            return rc;
        }
        rc = io->close_file(io, wal->fd);
        wal->fd = -1;
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    int fd = -1;
    rc = io->open_file(io, segment_path(wal, seg),
                       CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE | CLEW_FILEIO_EXCL, &fd);
    if (rc != CLEW_OK) {
        return rc == CLEW_EBUSY ? CLEW_EIO : rc;
    }
    uint8_t h[CLEW_WAL_SEGMENT_HEADER];
    memset(h, 0, sizeof(h));
    memcpy(h, WAL_MAGIC, 8);
    put_u32(h + 8, CLEW_WAL_VERSION);
    put_u32(h + 12, CLEW_WAL_SEGMENT_HEADER);
    put_u64(h + 16, seg);
    put_u32(h + 28, clew__crc32c(h, 28));
    rc = io->pwrite_all(io, fd, h, sizeof(h), 0);
    if (rc == CLEW_OK) {
        rc = io->fsync_file(io, fd);
    }
    if (rc == CLEW_OK) {
        rc = io->fsync_dir(io, wal->dir);
    }
    if (rc == CLEW_OK) {
        rc = segs_add(wal, seg);
    }
    wal->fd = fd;
    wal->seg = seg;
    wal->off = CLEW_WAL_SEGMENT_HEADER;
    wal->dirty = false;
    if (rc == CLEW_OK) {
        rc = io->crash_point(io, "wal.segment.rotated");
    }
    return rc;
}

/* Places one framed record after the previous ones, rotating first if it would not fit. */
static clew_status write_record(clew_wal *wal, wal_node *n)
{
    clew_status rc;
    if (wal->off > CLEW_WAL_SEGMENT_HEADER && wal->off + n->size > wal->segment_size) {
        rc = start_segment(wal, wal->seg + 1);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    n->pos = (clew_wal_pos){wal->seg, wal->off};
    if (wal->stage_len + n->size > STAGE_SIZE) {
        rc = flush_stage(wal);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    if (n->size > STAGE_SIZE) {
        rc = wal->io->pwrite_all(wal->io, wal->fd, n->data, n->size, wal->off);
        wal->dirty = true;
        if (rc == CLEW_OK) {
            rc = wal->io->crash_point(wal->io, "wal.record.written");
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    } else {
        memcpy(wal->stage + wal->stage_len, n->data, n->size);
        wal->stage_len += n->size;
    }
    wal->off += n->size;
    return CLEW_OK;
}

/* Runs the callbacks of the written records in [*pending, end), with `rc`, and frees them.
 * Their bytes leave the queue's budget first, so a caller that sees its callback can append
 * again at once. */
static void ack(clew_wal *wal, wal_node **pending, wal_node *end, clew_status rc)
{
    size_t freed = 0;
    for (wal_node *n = *pending; n != end; n = n->next) {
        if (n->kind == NODE_RECORD) {
            freed += n->cost;
        }
    }
    if (freed > 0) {
        pthread_mutex_lock(&wal->mu);
        wal->queued_bytes -= freed;
        pthread_mutex_unlock(&wal->mu);
    }
    wal_node *n = *pending;
    while (n != end) {
        wal_node *next = n->next;
        if (n->kind == NODE_RECORD) {
            if (n->done != NULL) {
                n->done(n->ud, rc, rc == CLEW_OK ? n->pos : (clew_wal_pos){0, 0});
            }
            clew__free(n);
        }
        n = next;
    }
    *pending = end;
}

static void complete_marker(clew_wal *wal, wal_node *m, clew_status rc)
{
    pthread_mutex_lock(&wal->mu);
    m->waiter->status = rc;
    m->waiter->segment = wal->seg;
    m->waiter->done = true;
    pthread_cond_broadcast(&wal->cv_done);
    pthread_mutex_unlock(&wal->mu);
}

static void process_batch(clew_wal *wal, wal_node *batch)
{
    pthread_mutex_lock(&wal->mu);
    clew_status rc = wal->failed;
    pthread_mutex_unlock(&wal->mu);
    wal_node *pending = batch; /* records not yet acknowledged */
    wal_node *n = batch;
    while (n != NULL) {
        wal_node *next = n->next;
        if (n->kind == NODE_RECORD) {
            if (rc == CLEW_OK) {
                rc = write_record(wal, n);
                if (rc != CLEW_OK) {
                    set_failed(wal, rc);
                }
            }
            n = next;
            continue;
        }
        /* A marker: everything before it must be done first. Markers live on the stack of
         * their waiting caller, so `n` must not be touched after complete_marker. */
        if (rc == CLEW_OK) {
            rc = flush_stage(wal);
            if (rc == CLEW_OK && wal->dirty &&
                (n->kind == NODE_SYNC || wal->mode == CLEW_WAL_FSYNC_ALWAYS)) {
                rc = do_fsync(wal);
            }
            if (rc != CLEW_OK) {
                set_failed(wal, rc);
            }
        }
        ack(wal, &pending, n, rc);
        if (rc == CLEW_OK && n->kind == NODE_ROTATE) {
            rc = start_segment(wal, wal->seg + 1);
            if (rc != CLEW_OK) {
                set_failed(wal, rc);
            }
        }
        pending = next;
        complete_marker(wal, n, rc);
        n = next;
    }
    if (rc == CLEW_OK) {
        rc = flush_stage(wal);
        if (rc == CLEW_OK && wal->mode == CLEW_WAL_FSYNC_ALWAYS && wal->dirty) {
            rc = do_fsync(wal);
        }
        if (rc != CLEW_OK) {
            set_failed(wal, rc);
        }
    }
    ack(wal, &pending, NULL, rc);
}

static void add_ns(struct timespec *ts, uint64_t ns)
{
    uint64_t t = (uint64_t)ts->tv_nsec + ns;
    ts->tv_sec += (time_t)(t / 1000000000ull);
    ts->tv_nsec = (long)(t % 1000000000ull);
}

static void *writer_main(void *arg)
{
    clew_wal *wal = arg;
    pthread_mutex_lock(&wal->mu);
    for (;;) {
        while (wal->head == NULL && !wal->closing) {
            if (wal->mode == CLEW_WAL_FSYNC_INTERVAL && wal->dirty && wal->failed == CLEW_OK) {
                uint64_t due = wal->last_sync_ns + wal->interval_ns;
                uint64_t now = now_ns();
                if (now >= due) {
                    break;
                }
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                add_ns(&ts, due - now);
                wal->writer_waiting = true;
                pthread_cond_timedwait(&wal->cv_work, &wal->mu, &ts);
                wal->writer_waiting = false;
            } else {
                wal->writer_waiting = true;
                pthread_cond_wait(&wal->cv_work, &wal->mu);
                wal->writer_waiting = false;
            }
        }
        wal_node *batch = wal->head;
        wal->head = wal->tail = NULL;
        bool closing = wal->closing;
        pthread_mutex_unlock(&wal->mu);

        if (batch != NULL) {
            process_batch(wal, batch);
        }
        pthread_mutex_lock(&wal->mu);
        bool ok = wal->failed == CLEW_OK;
        bool more = wal->head != NULL;
        pthread_mutex_unlock(&wal->mu);
        if (ok && wal->dirty && wal->mode != CLEW_WAL_FSYNC_NEVER &&
            ((wal->mode == CLEW_WAL_FSYNC_INTERVAL &&
              now_ns() >= wal->last_sync_ns + wal->interval_ns) ||
             (closing && !more))) {
            clew_status rc = do_fsync(wal);
            if (rc != CLEW_OK) {
                set_failed(wal, rc);
            }
        }
        pthread_mutex_lock(&wal->mu);
        if (closing && wal->head == NULL) {
            break;
        }
    }
    pthread_mutex_unlock(&wal->mu);
    return NULL;
}

/* ---- open: listing, replay, tail cut ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment numbers of the files named like 00000000000000000042.wal, sorted. */
static clew_status list_segments(clew_wal *wal, uint64_t **out, size_t *out_n)
{
    DIR *d = opendir(wal->dir);
    if (d == NULL) {
        return CLEW_EIO;
    }
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    clew_status rc = CLEW_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strlen(name) != SEGMENT_NAME_DIGITS + 4 ||
            strcmp(name + SEGMENT_NAME_DIGITS, ".wal") != 0) {
            continue;
        }
        uint64_t num = 0;
        bool ok = true;
        for (int i = 0; i < SEGMENT_NAME_DIGITS; i++) {
            if (name[i] < '0' || name[i] > '9' || num > (UINT64_MAX - 9) / 10) {
                ok = false;
                break;
            }
            num = num * 10 + (uint64_t)(name[i] - '0');
        }
        if (!ok || num == 0 || num == UINT64_MAX) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = clew__realloc(v, cap * sizeof(*nv));
            if (nv == NULL) {
                rc = CLEW_ENOMEM;
                break;
            }
            v = nv;
        }
        v[n++] = num;
    }
    closedir(d);
    if (rc != CLEW_OK) {
        clew__free(v);
        return rc;
    }
    if (n > 1) {
        qsort(v, n, sizeof(*v), cmp_u64);
    }
    *out = v;
    *out_n = n;
    return CLEW_OK;
}

static clew_status replay_segment(clew_wal *wal, uint64_t seg, bool last, scan_buf *buf,
                                  uint8_t *cache, clew_wal_replay_fn cb, void *ud)
{
    clew_fileio *io = wal->io;
    const char *path = segment_path(wal, seg);
    int fd = -1;
    clew_status rc = io->open_file(io, path, CLEW_FILEIO_READ | CLEW_FILEIO_WRITE, &fd);
    if (rc != CLEW_OK) {
        wal_log(wal, CLEW_WAL_LOG_ERROR, "wal: cannot open segment %s: %s", path,
                clew_strerror(rc));
        return rc;
    }
    file_ctx ctx = {io, fd, 0, cache, 0, 0};
    rc = io->file_size(io, fd, &ctx.size);
    wal_src src = {file_read, &ctx, ctx.size};
    clew_wal_scan_result res;
    if (rc == CLEW_OK) {
        /* The hard limit, not the configured one: lowering max_record_bytes must never make
         * records written before look corrupt (and get cut). The length is also checked
         * against the file size before anything is allocated. */
        rc = scan(&src, seg, CLEW_WAL_MAX_RECORD_SIZE, buf, cb, ud, &res);
    }
    if (rc != CLEW_OK) {
        (void)io->close_file(io, fd);
        return rc;
    }
    if (res.header == CLEW_EUNSUPPORTED) {
        uint8_t h[12];
        uint32_t version = 0;
        if (read_exact(io, fd, 0, h, sizeof(h)) == CLEW_OK) {
            version = get_u32(h + 8);
        }
        (void)io->close_file(io, fd);
        wal_log(wal, CLEW_WAL_LOG_ERROR,
                "wal: segment %s has format version %" PRIu32 "; this clew reads version %u only",
                path, version, CLEW_WAL_VERSION);
        return CLEW_EUNSUPPORTED;
    }
    if (res.header != CLEW_OK) {
        /* A last segment whose header never became durable is the trace of a crash during
         * its creation: nothing in it was ever acknowledged. */
        bool torn = last && ctx.size <= CLEW_WAL_SEGMENT_HEADER;
        if (last && !torn) {
            uint8_t h[CLEW_WAL_SEGMENT_HEADER];
            static const uint8_t zero[CLEW_WAL_SEGMENT_HEADER];
            torn =
                read_exact(io, fd, 0, h, sizeof(h)) == CLEW_OK && memcmp(h, zero, sizeof(h)) == 0;
        }
        (void)io->close_file(io, fd);
        if (torn) {
            wal_log(wal, CLEW_WAL_LOG_WARN,
                    "wal: removing segment %s with a torn header (%s): dropped %" PRIu64
                    " bytes, 0 records",
                    path, res.stop_reason, ctx.size);
            rc = io->unlink_path(io, path);
            if (rc == CLEW_OK) {
                rc = io->fsync_dir(io, wal->dir);
            }
            return rc;
        }
        wal_log(wal, CLEW_WAL_LOG_ERROR,
                "wal: segment %s is unreadable (%s); skipping its %" PRIu64 " bytes", path,
                res.stop_reason, ctx.size);
        return segs_add(wal, seg);
    }
    if (res.stop_reason != NULL && last) {
        wal_log(wal, CLEW_WAL_LOG_WARN,
                "wal: cut the torn tail of segment %s at offset %" PRIu64 " (%s): dropped %" PRIu64
                " bytes, %" PRIu64 " records; %" PRIu64 " records before it replayed",
                path, res.valid_end, res.stop_reason, res.dropped_bytes, res.dropped_records,
                res.records);
        rc = io->truncate_file(io, fd, res.valid_end);
        if (rc == CLEW_OK) {
            rc = io->fsync_file(io, fd);
        }
    } else if (res.stop_reason != NULL) {
        wal_log(wal, CLEW_WAL_LOG_ERROR,
                "wal: corrupt record in segment %s at offset %" PRIu64 " (%s): skipping the "
                "remaining %" PRIu64 " bytes (%" PRIu64 " records) of this segment; %" PRIu64
                " records before it replayed",
                path, res.valid_end, res.stop_reason, res.dropped_bytes, res.dropped_records,
                res.records);
    }
    clew_status crc = io->close_file(io, fd);
    if (rc == CLEW_OK) {
        rc = crc;
    }
    if (rc == CLEW_OK) {
        rc = segs_add(wal, seg);
    }
    return rc;
}

static clew_status replay_all(clew_wal *wal, clew_wal_replay_fn cb, void *ud, uint64_t *out_last)
{
    uint64_t *segs = NULL;
    size_t n = 0;
    clew_status rc = list_segments(wal, &segs, &n);
    if (rc != CLEW_OK) {
        return rc;
    }
    scan_buf buf = {NULL, 0};
    uint8_t *cache = clew__malloc(READ_AHEAD);
    if (cache == NULL) {
        clew__free(segs);
        return CLEW_ENOMEM;
    }
    for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
        rc = replay_segment(wal, segs[i], i + 1 == n, &buf, cache, cb, ud);
    }
    *out_last = n > 0 ? segs[n - 1] : 0;
    clew__free(cache);
    clew__free(buf.p);
    clew__free(segs);
    return rc;
}

static void wal_free(clew_wal *wal)
{
    if (wal->fd >= 0) {
        (void)wal->io->close_file(wal->io, wal->fd);
    }
    if (wal->sync_init) {
        pthread_mutex_destroy(&wal->mu);
        pthread_cond_destroy(&wal->cv_work);
        pthread_cond_destroy(&wal->cv_done);
    }
    if (wal->seg_mu_init) {
        pthread_mutex_destroy(&wal->seg_mu);
    }
    clew__free(wal->segs);
    clew__free(wal->stage);
    clew__free(wal->path);
    clew__free(wal->dir);
    clew__free(wal);
}

static clew_status init_sync(clew_wal *wal)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        return CLEW_ENOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool ok = pthread_mutex_init(&wal->mu, NULL) == 0;
    if (ok && pthread_cond_init(&wal->cv_work, &ca) != 0) {
        pthread_mutex_destroy(&wal->mu);
        ok = false;
    }
    if (ok && pthread_cond_init(&wal->cv_done, NULL) != 0) {
        pthread_cond_destroy(&wal->cv_work);
        pthread_mutex_destroy(&wal->mu);
        ok = false;
    }
    pthread_condattr_destroy(&ca);
    wal->sync_init = ok;
    if (!ok) {
        return CLEW_ENOMEM;
    }
    if (pthread_mutex_init(&wal->seg_mu, NULL) != 0) {
        return CLEW_ENOMEM;
    }
    wal->seg_mu_init = true;
    return CLEW_OK;
}

clew_status clew__wal_open(const char *dir, const clew_wal_options *opt, clew_wal_replay_fn replay,
                           void *replay_ud, clew_wal **out)
{
    if (dir == NULL || out == NULL) {
        return CLEW_EINVAL;
    }
    clew_wal_options o = {0};
    if (opt != NULL) {
        o = *opt;
    }
    if (o.fsync_mode != CLEW_WAL_FSYNC_INTERVAL && o.fsync_mode != CLEW_WAL_FSYNC_NEVER &&
        o.fsync_mode != CLEW_WAL_FSYNC_ALWAYS) {
        return CLEW_EINVAL;
    }
    clew_wal *wal = clew__calloc(1, sizeof(*wal));
    if (wal == NULL) {
        return CLEW_ENOMEM;
    }
    wal->fd = -1;
    wal->io = o.io != NULL ? o.io : clew__fileio_posix();
    wal->mode = o.fsync_mode;
    wal->interval_ns =
        (uint64_t)(o.fsync_interval_ms ? o.fsync_interval_ms : DEFAULT_INTERVAL) * 1000000ull;
    wal->segment_size = o.segment_size ? o.segment_size : DEFAULT_SEGMENT;
    wal->max_queue = o.max_queue_bytes ? o.max_queue_bytes : DEFAULT_QUEUE;
    wal->max_record = o.max_record_bytes ? o.max_record_bytes : DEFAULT_RECORD;
    if (wal->max_record > CLEW_WAL_MAX_RECORD_SIZE) {
        wal->max_record = CLEW_WAL_MAX_RECORD_SIZE;
    }
    wal->log = o.log;
    wal->log_ud = o.log_ud;
    /* A record that cannot fit in an empty queue would be refused forever. */
    if (wal->max_record + CLEW_WAL_RECORD_HEADER + sizeof(wal_node) > wal->max_queue ||
        wal->segment_size < CLEW_WAL_SEGMENT_HEADER + CLEW_WAL_RECORD_HEADER) {
        clew__free(wal);
        return CLEW_EINVAL;
    }
    size_t dl = strlen(dir);
    wal->dir = clew__malloc(dl + 5);
    wal->path_cap = dl + 5 + SEGMENT_NAME_DIGITS + 8;
    wal->path = clew__malloc(wal->path_cap);
    wal->stage = clew__malloc(STAGE_SIZE);
    if (wal->dir == NULL || wal->path == NULL || wal->stage == NULL) {
        wal_free(wal);
        return CLEW_ENOMEM;
    }
    memcpy(wal->dir, dir, dl);
    memcpy(wal->dir + dl, "/wal", 5);
    clew_status rc = init_sync(wal);
    if (rc != CLEW_OK) {
        wal_free(wal);
        return rc;
    }
    /* Directories are not files: they are made directly; the parent's fsync through the
     * fileio makes the new entry durable. */
    if (mkdir(wal->dir, 0755) == 0) {
        rc = wal->io->fsync_dir(wal->io, dir);
    } else if (errno != EEXIST) {
        wal_log(wal, CLEW_WAL_LOG_ERROR, "wal: cannot create %s: %s", wal->dir, strerror(errno));
        rc = CLEW_EIO;
    }
    uint64_t last = 0;
    if (rc == CLEW_OK) {
        rc = replay_all(wal, replay, replay_ud, &last);
    }
    if (rc == CLEW_OK) {
        rc = start_segment(wal, last + 1);
    }
    if (rc == CLEW_OK) {
        wal->last_sync_ns = now_ns();
        if (pthread_create(&wal->thread, NULL, writer_main, wal) != 0) {
            rc = CLEW_ENOMEM;
        } else {
            wal->thread_started = true;
        }
    }
    if (rc != CLEW_OK) {
        wal_free(wal);
        return rc;
    }
    *out = wal;
    return CLEW_OK;
}

/* ---- the caller-side API ---- */

clew_status clew__wal_append(clew_wal *wal, uint8_t type, const void *payload, size_t len,
                             clew_wal_done_fn done, void *ud)
{
    clew_wal_part part = {payload, len};
    return clew__wal_appendv(wal, type, &part, 1, done, ud);
}

clew_status clew__wal_appendv(clew_wal *wal, uint8_t type, const clew_wal_part *parts,
                              size_t n_parts, clew_wal_done_fn done, void *ud)
{
    if (wal == NULL || type == 0 || (parts == NULL && n_parts > 0)) {
        return CLEW_EINVAL;
    }
    size_t len = 0;
    for (size_t i = 0; i < n_parts; i++) {
        if (parts[i].ptr == NULL && parts[i].len > 0) {
            return CLEW_EINVAL;
        }
        if (parts[i].len > wal->max_record - len) { /* len <= max_record: no wrap */
            return CLEW_ETOOBIG;
        }
        len += parts[i].len;
    }
    size_t size = CLEW_WAL_RECORD_HEADER + len;
    size_t cost = sizeof(wal_node) + size;
    pthread_mutex_lock(&wal->mu);
    clew_status rc = wal->closing                                ? CLEW_ECLOSED
                     : wal->failed != CLEW_OK                    ? wal->failed
                     : wal->queued_bytes + cost > wal->max_queue ? CLEW_EFULL
                                                                 : CLEW_OK;
    pthread_mutex_unlock(&wal->mu);
    if (rc != CLEW_OK) {
        return rc;
    }
    wal_node *n = clew__malloc(cost);
    if (n == NULL) {
        return CLEW_ENOMEM;
    }
    memset(n, 0, sizeof(*n));
    n->kind = NODE_RECORD;
    n->size = size;
    n->cost = cost;
    n->done = done;
    n->ud = ud;
    put_u32(n->data, (uint32_t)len);
    uint32_t reg = crc_update(0xFFFFFFFFu, &type, 1);
    uint8_t *at = n->data + CLEW_WAL_RECORD_HEADER;
    for (size_t i = 0; i < n_parts; i++) {
        if (parts[i].len > 0) {
            memcpy(at, parts[i].ptr, parts[i].len);
            reg = crc_update(reg, parts[i].ptr, parts[i].len);
            at += parts[i].len;
        }
    }
    put_u32(n->data + 4, ~reg);
    n->data[8] = type;
    pthread_mutex_lock(&wal->mu);
    /* Checked again: the state may have changed while the record was framed. */
    rc = wal->closing                                ? CLEW_ECLOSED
         : wal->failed != CLEW_OK                    ? wal->failed
         : wal->queued_bytes + cost > wal->max_queue ? CLEW_EFULL
                                                     : CLEW_OK;
    if (rc == CLEW_OK) {
        if (wal->tail != NULL) {
            wal->tail->next = n;
        } else {
            wal->head = n;
        }
        wal->tail = n;
        wal->queued_bytes += cost;
        if (wal->writer_waiting) {
            /* a busy writer finds the record when it comes back for the next batch */
            pthread_cond_signal(&wal->cv_work);
        }
    }
    pthread_mutex_unlock(&wal->mu);
    if (rc != CLEW_OK) {
        clew__free(n);
    }
    return rc;
}

/* Queues a marker on the caller's stack and waits for the writer to reach it. */
static clew_status wait_marker(clew_wal *wal, enum node_kind kind, uint64_t *out_segment)
{
    wal_waiter w = {false, CLEW_OK, 0};
    wal_node m;
    memset(&m, 0, sizeof(m));
    m.kind = kind;
    m.waiter = &w;
    pthread_mutex_lock(&wal->mu);
    if (wal->closing) {
        pthread_mutex_unlock(&wal->mu);
        return CLEW_ECLOSED;
    }
    if (wal->tail != NULL) {
        wal->tail->next = &m;
    } else {
        wal->head = &m;
    }
    wal->tail = &m;
    pthread_cond_signal(&wal->cv_work);
    while (!w.done) {
        pthread_cond_wait(&wal->cv_done, &wal->mu);
    }
    pthread_mutex_unlock(&wal->mu);
    if (out_segment != NULL && w.status == CLEW_OK) {
        *out_segment = w.segment;
    }
    return w.status;
}

clew_status clew__wal_sync(clew_wal *wal)
{
    if (wal == NULL) {
        return CLEW_EINVAL;
    }
    return wait_marker(wal, NODE_SYNC, NULL);
}

clew_status clew__wal_rotate(clew_wal *wal, uint64_t *out_segment)
{
    if (wal == NULL) {
        return CLEW_EINVAL;
    }
    return wait_marker(wal, NODE_ROTATE, out_segment);
}

clew_status clew__wal_release_segments_before(clew_wal *wal, uint64_t segment, size_t *out_deleted)
{
    if (wal == NULL) {
        return CLEW_EINVAL;
    }
    clew_fileio *io = wal->io;
    size_t deleted = 0;
    clew_status rc = CLEW_OK;
    char *path = clew__malloc(wal->path_cap);
    if (path == NULL) {
        return CLEW_ENOMEM;
    }
    /* seg_mu serialises releases with each other and with the writer's additions; the
     * newest listed segment is the one being written (or about to be) and is kept. */
    pthread_mutex_lock(&wal->seg_mu);
    while (rc == CLEW_OK && wal->n_segs > 1 && wal->segs[0] < segment) {
        uint64_t seg = wal->segs[0];
        snprintf(path, wal->path_cap, "%s/%0*" PRIu64 ".wal", wal->dir, SEGMENT_NAME_DIGITS, seg);
        rc = io->crash_point(io, "wal.segment.deleting");
        if (rc == CLEW_OK) {
            rc = io->unlink_path(io, path);
            if (rc == CLEW_ENOTFOUND) {
                rc = CLEW_OK; /* removed by hand: the goal is reached anyway */
            }
        }
        if (rc == CLEW_OK) {
            rc = io->fsync_dir(io, wal->dir);
        }
        if (rc == CLEW_OK) {
            rc = io->crash_point(io, "wal.segment.deleted");
        }
        if (rc == CLEW_OK) {
            memmove(wal->segs, wal->segs + 1, (wal->n_segs - 1) * sizeof(*wal->segs));
            wal->n_segs--;
            deleted++;
            wal_log(wal, CLEW_WAL_LOG_INFO, "wal: released segment %s", path);
        } else {
            wal_log(wal, CLEW_WAL_LOG_ERROR, "wal: cannot delete segment %s: %s", path,
                    clew_strerror(rc));
        }
    }
    pthread_mutex_unlock(&wal->seg_mu);
    clew__free(path);
    if (out_deleted != NULL) {
        *out_deleted = deleted;
    }
    return rc;
}

clew_status clew__wal_segments(clew_wal *wal, uint64_t **out, size_t *out_n)
{
    if (wal == NULL || out == NULL || out_n == NULL) {
        return CLEW_EINVAL;
    }
    pthread_mutex_lock(&wal->seg_mu);
    size_t n = wal->n_segs;
    uint64_t *v = clew__malloc((n ? n : 1) * sizeof(*v));
    if (v != NULL && n > 0) {
        memcpy(v, wal->segs, n * sizeof(*v));
    }
    pthread_mutex_unlock(&wal->seg_mu);
    if (v == NULL) {
        return CLEW_ENOMEM;
    }
    *out = v;
    *out_n = n;
    return CLEW_OK;
}

clew_status clew__wal_close(clew_wal *wal)
{
    if (wal == NULL) {
        return CLEW_OK;
    }
    if (wal->thread_started) {
        pthread_mutex_lock(&wal->mu);
        wal->closing = true;
        pthread_cond_signal(&wal->cv_work);
        pthread_mutex_unlock(&wal->mu);
        pthread_join(wal->thread, NULL);
    }
    clew_status rc = wal->failed;
    if (wal->fd >= 0) {
        clew_status crc = wal->io->close_file(wal->io, wal->fd);
        wal->fd = -1;
        if (rc == CLEW_OK) {
            rc = crc;
        }
    }
    wal_free(wal);
    return rc;
}

/* ---- payloads ---- */

clew_status clew__wal_spans_encode(clew_str tenant, uint8_t encoding, const void *batch,
                                   size_t batch_len, uint8_t **out, size_t *out_len)
{
    if (tenant.len > UINT16_MAX || (tenant.ptr == NULL && tenant.len > 0) ||
        (batch == NULL && batch_len > 0) || out == NULL || out_len == NULL) {
        return CLEW_EINVAL;
    }
    size_t n = 2 + tenant.len + 1 + batch_len;
    uint8_t *p = clew__malloc(n ? n : 1);
    if (p == NULL) {
        return CLEW_ENOMEM;
    }
    p[0] = (uint8_t)tenant.len;
    p[1] = (uint8_t)(tenant.len >> 8);
    if (tenant.len > 0) {
        memcpy(p + 2, tenant.ptr, tenant.len);
    }
    p[2 + tenant.len] = encoding;
    if (batch_len > 0) {
        memcpy(p + 3 + tenant.len, batch, batch_len);
    }
    *out = p;
    *out_len = n;
    return CLEW_OK;
}

clew_status clew__wal_spans_decode(const uint8_t *payload, size_t len, clew_str *tenant,
                                   uint8_t *encoding, const uint8_t **batch, size_t *batch_len)
{
    if (payload == NULL || len < 3) {
        return CLEW_EPARSE;
    }
    size_t tl = (size_t)payload[0] | (size_t)payload[1] << 8;
    if (tl > len - 3) {
        return CLEW_EPARSE;
    }
    *tenant = (clew_str){(const char *)payload + 2, tl};
    *encoding = payload[2 + tl];
    *batch = payload + 3 + tl;
    *batch_len = len - 3 - tl;
    return CLEW_OK;
}

clew_status clew__wal_decision_encode(const clew_wal_decision *d, uint8_t **out, size_t *out_len)
{
    if (d == NULL || out == NULL || out_len == NULL || d->tenant.len > UINT16_MAX ||
        d->reason.len > UINT16_MAX || (d->tenant.ptr == NULL && d->tenant.len > 0) ||
        (d->reason.ptr == NULL && d->reason.len > 0) ||
        (d->state != CLEW_WAL_KEPT && d->state != CLEW_WAL_DROPPED)) {
        return CLEW_EINVAL;
    }
    size_t n = 2 + d->tenant.len + 16 + 1 + 2 + d->reason.len + 8;
    uint8_t *p = clew__malloc(n);
    if (p == NULL) {
        return CLEW_ENOMEM;
    }
    size_t o = 0;
    p[o++] = (uint8_t)d->tenant.len;
    p[o++] = (uint8_t)(d->tenant.len >> 8);
    if (d->tenant.len > 0) {
        memcpy(p + o, d->tenant.ptr, d->tenant.len);
    }
    o += d->tenant.len;
    memcpy(p + o, d->trace_id.bytes, 16);
    o += 16;
    p[o++] = (uint8_t)d->state;
    p[o++] = (uint8_t)d->reason.len;
    p[o++] = (uint8_t)(d->reason.len >> 8);
    if (d->reason.len > 0) {
        memcpy(p + o, d->reason.ptr, d->reason.len);
    }
    o += d->reason.len;
    uint64_t bits;
    memcpy(&bits, &d->adjusted_count, 8);
    put_u64(p + o, bits);
    *out = p;
    *out_len = n;
    return CLEW_OK;
}

clew_status clew__wal_decision_decode(const uint8_t *payload, size_t len, clew_wal_decision *out)
{
    if (payload == NULL || out == NULL || len < 2) {
        return CLEW_EPARSE;
    }
    size_t o = 0;
    size_t tl = (size_t)payload[0] | (size_t)payload[1] << 8;
    o = 2;
    if (len - o < tl + 16 + 1 + 2) {
        return CLEW_EPARSE;
    }
    clew_wal_decision d;
    d.tenant = (clew_str){(const char *)payload + o, tl};
    o += tl;
    memcpy(d.trace_id.bytes, payload + o, 16);
    o += 16;
    uint8_t st = payload[o++];
    if (st != CLEW_WAL_KEPT && st != CLEW_WAL_DROPPED) {
        return CLEW_EPARSE;
    }
    d.state = (clew_wal_decision_state)st;
    size_t rl = (size_t)payload[o] | (size_t)payload[o + 1] << 8;
    o += 2;
    if (len - o != rl + 8) {
        return CLEW_EPARSE;
    }
    d.reason = (clew_str){(const char *)payload + o, rl};
    o += rl;
    uint64_t bits = get_u64(payload + o);
    memcpy(&d.adjusted_count, &bits, 8);
    *out = d;
    return CLEW_OK;
}
