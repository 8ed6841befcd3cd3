/*
 * src/store/embedded/embedded_store.c - the durable embedded store: WAL + head + replay,
 * blocks, retention, quarantine, compaction (docs/internals/embedded.md).
 *
 * The head IS a memory store created without eviction (no trace cap, no byte cap): it
 * already has the indexes, search, deduplication and interning the head needs. This file
 * adds durability in front of it:
 *   - append writes the batch as OTLP protobuf into a SPANS WAL record and returns; the
 *     WAL's completion callback (on its writer thread) inserts the spans into the head and
 *     only then calls the caller's callback with CLEW_OK. So a span is never visible, nor
 *     acknowledged, before the WAL says it is durable as the fsync mode promises, and a
 *     query never sees a span a crash could take back.
 *   - the record's protobuf is the request's own bytes when the receiver hands them over
 *     (meta->otlp_pb: they decode to exactly the batch), else the batch encoded.
 *   - the spans inserted on completion come from the caller's batch when the caller holds
 *     it until the callback (meta->batch_held), else from decoding the record again.
 *     Either way they are what replaying the record gives: the live path and the replay
 *     path insert the same thing. Holding (rather than cloning the batch in append) keeps
 *     a single copy of each pending batch and saves decoding it twice.
 *   - set_trace_meta writes a DECISION record, then applies it to the head.
 *   - open replays every record into the head in WAL order.
 *
 * The head's budget counts the head's span bytes plus the batches waiting on the WAL; an
 * append past it gets CLEW_EFULL (the receivers answer 429) instead of growing without
 * bound.
 *
 * Blocks (block.h): a background thread cuts the decided traces of the head into an
 * immutable block file and releases the WAL segments they came from; queries merge the
 * head with every block; retention, --max-disk, quarantine and compaction run after each
 * cut. On open, blocks are loaded before the WAL replay, which skips spans a block already
 * holds. docs/internals/embedded.md gives the order of operations and why each crash
 * point is safe.
 *
 * Locking: the head locks itself; `mu` guards the pending counts, the cut markers and the
 * thread's sleep; `cut_mu` serializes cuts, retention and compaction (the only writers of
 * the block set); `blocks_lock` is held for reading by every query and for writing while
 * the block set changes. Order: cut_mu, then blocks_lock, then mu.
 */
#include "store/embedded/embedded_store.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/error.h"
#include "store/embedded/block.h"

#define DECODE_CHUNK   (64u * 1024u)
#define MAX_TENANT_LEN 65535u /* the SPANS and DECISION payloads store a u16 length */
#define MAX_REASON_LEN 65535u
#define DEFAULT_QUEUE  ((size_t)64 << 20) /* the WAL's own default queue */
/* A cut chunk and a compaction hold at most this many traces unless configured. */
#define DEFAULT_BLOCK_TRACES ((size_t)1 << 18)
/* Head (decoded) bytes per span assumed before a cut has measured it: the memory store held
 * the reference workload at about 1.1 KiB per span (bench/README.md). */
#define DEFAULT_BYTES_PER_SPAN ((size_t)1024)

typedef struct embedded_store {
    clew_store base;
    clew_store *head;
    clew_wal *wal;
    size_t head_max_bytes;
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* signalled when n_pending drops to 0 */
    size_t pending_bytes; /* payloads appended to the WAL, not yet in the head */
    size_t n_pending;     /* appends whose callback has not run yet */
    bool closing;         /* quiesced: appends are refused with CLEW_ECLOSED */
    clew_wal_log_fn log;
    void *log_ud;
    /* blocks (see "blocks" below) */
    clew_fileio *io;
    char *dir;
    uint64_t block_duration_ns;
    size_t block_size;       /* head span bytes per block: the cut's trigger and chunk */
    size_t block_max_traces; /* traces per block at most (a cut chunk, a compaction) */
    size_t bytes_per_span;   /* under cut_mu: head bytes per span seen by the last cut */
    uint64_t retention_ns;
    uint64_t max_disk_bytes;
    size_t index_max_bytes; /* bound on the blocks' loaded indexes; 0 = none */
    /* while the store opens its existing blocks: what their indexes loaded so far */
    bool opening;
    size_t index_bytes_open;
    size_t compact_min_blocks;
    bool manual_cut;
    pthread_rwlock_t blocks_lock; /* queries read; cut, retention and quarantine write */
    struct blk **blocks;          /* in cut order (oldest first) */
    size_t n_blocks, cap_blocks;
    uint64_t next_seq;      /* number of the next block */
    pthread_mutex_t cut_mu; /* one cut or maintenance at a time */
    uint64_t markers_done;  /* under mu: cut markers whose WAL callback ran */
    /* under cut_mu: the PENDING traces of the last cut, sorted by id, each with a bound
     * below which it has no WAL record, and that cut's rotate segment (0 before the
     * first cut: the records replayed on open may be anywhere) */
    struct pending_bound *bounds;
    size_t n_bounds;
    uint64_t last_cut_segment;
    bool replaying; /* open: skip spans a block already holds */
    uint64_t dedup_spans;
    pthread_t thread;
    bool thread_started;
    bool stop;                    /* under mu */
    pthread_cond_t wake_cv;       /* under mu: the background thread's sleep */
    clew_store_observer observer; /* set before the first append (store.h) */
    void *observer_ud;
} embedded_store;

typedef struct pending_bound {
    clew_trace_id id;
    uint64_t segment;
} pending_bound;

/* One block file served by the store. `bad` is set by a query that found it corrupt; the
 * next maintenance moves it to DATA_DIR/quarantine/. */
typedef struct blk {
    clew_block *b;
    clew_block_info info;
    uint64_t seq;
    _Atomic bool bad;
    _Atomic uint64_t last_used; /* monotonic ns of the last query that read it */
    char name[32];              /* <id>.block */
} blk;

/* One append waiting on the WAL. Either the caller holds its batch until the callback
 * (meta->batch_held: `batch` is it, and the spans go into the head straight from it) or
 * `payload` keeps the WAL record (tenant + OTLP bytes) to be decoded on completion.
 * `len` is the record's size either way. kept_reason and the tenant are copied after the
 * struct (the caller's meta is borrowed for the call only). */
typedef struct pending {
    embedded_store *es;
    clew_append_cb cb;
    void *ud;
    uint8_t *payload;
    const clew_batch *batch;
    size_t len;
    clew_trace_state state;
    double adjusted_count;
    size_t reason_len;
    size_t tenant_len;
    char strs[]; /* reason, then tenant */
} pending;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void logf_(embedded_store *es, clew_wal_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(embedded_store *es, clew_wal_log_level level, const char *fmt, ...)
{
    if (es->log == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    es->log(es->log_ud, level, msg);
}

/* ---- replay deduplication against blocks ----
 * The rule: a span whose (trace id, span id) a block already holds is not put back into
 * the head. A cut writes its block before the WAL segments it came from are released, so
 * after a crash in between the spans are in both places; this keeps them once. */

typedef struct span_list {
    const clew_span_data **v;
    size_t n, cap;
} span_list;

static bool collect_span(const clew_span_data *sp, void *ud)
{
    span_list *l = ud;
    if (l->n < l->cap) {
        l->v[l->n++] = sp;
    }
    return true;
}

/* True when some block holds the span. Corruption reads as "not held". */
static bool span_in_blocks(embedded_store *es, const clew_span_data *sp)
{
    for (size_t i = 0; i < es->n_blocks; i++) {
        blk *k = es->blocks[i];
        if (atomic_load(&k->bad)) {
            continue;
        }
        bool may = false;
        clew_error err;
        memset(&err, 0, sizeof(err));
        if (clew__block_may_contain(k->b, &sp->trace_id, &may, &err) != CLEW_OK || !may) {
            continue;
        }
        clew_trace_result *t = NULL;
        if (clew__block_get_trace(k->b, &sp->trace_id, &t, &err) != CLEW_OK) {
            continue;
        }
        bool found = false;
        for (size_t j = 0; j < t->n_spans && !found; j++) {
            found = memcmp(t->spans[j]->span_id.bytes, sp->span_id.bytes,
                           sizeof(sp->span_id.bytes)) == 0;
        }
        clew__trace_result_free(t);
        if (found) {
            return true;
        }
    }
    return false;
}

/* Replaces *b (in `arena`) by the spans no block holds. */
static clew_status drop_spans_in_blocks(embedded_store *es, clew_batch *b, clew_arena *arena)
{
    span_list l;
    l.cap = b->n_spans;
    l.n = 0;
    l.v = clew__arena_calloc(arena, l.cap > 0 ? l.cap : 1, sizeof(*l.v));
    if (l.v == NULL) {
        return CLEW_ENOMEM;
    }
    clew__batch_foreach(b, collect_span, &l);
    size_t kept = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (span_in_blocks(es, l.v[i])) {
            es->dedup_spans++;
        } else {
            l.v[kept++] = l.v[i];
        }
    }
    if (kept == l.n) {
        return CLEW_OK;
    }
    if (kept == 0) {
        b->n_spans = 0;
        return CLEW_OK;
    }
    return clew__batch_from_spans(b, (const clew_span_data *const *)l.v, kept, arena);
}

/* Decodes a SPANS payload and inserts its spans into the head with `meta` (whose tenant
 * is replaced by the record's; on replay, whose state is PENDING for a record written
 * pending). Live inserts are then shown to the observer. *n_spans (may be NULL) gets the
 * number of spans decoded. CLEW_EPARSE for a payload that does not decode. */
static clew_status insert_spans(embedded_store *es, const uint8_t *payload, size_t len,
                                const clew_trace_meta *meta_in, uint64_t *n_spans)
{
    clew_str tenant;
    uint8_t encoding = 0;
    const uint8_t *data = NULL;
    size_t data_len = 0;
    clew_status rc = clew__wal_spans_decode(payload, len, &tenant, &encoding, &data, &data_len);
    if (rc != CLEW_OK) {
        return CLEW_EPARSE;
    }
    if (encoding != CLEW_WAL_SPANS_OTLP_PB && encoding != CLEW_WAL_SPANS_OTLP_PB_PENDING) {
        return CLEW_EUNSUPPORTED;
    }
    clew_arena arena;
    clew__arena_init(&arena, DECODE_CHUNK, 0);
    clew_batch batch;
    clew_error err;
    memset(&err, 0, sizeof(err));
    rc = clew__otlp_pb_decode(data, data_len, &arena, &batch, &err);
    if (rc == CLEW_OK) {
        clew_trace_meta meta = *meta_in;
        meta.tenant = tenant;
        if (es->replaying && encoding == CLEW_WAL_SPANS_OTLP_PB_PENDING) {
            meta.state = CLEW_TRACE_PENDING;
        }
        if (n_spans != NULL) {
            *n_spans = batch.n_spans;
        }
        if (es->replaying && es->n_blocks > 0) {
            rc = drop_spans_in_blocks(es, &batch, &arena);
        }
        if (rc == CLEW_OK && batch.n_spans > 0) {
            rc = es->head->ops->append(es->head, &batch, &meta, NULL, NULL);
        }
        if (rc == CLEW_OK && !es->replaying && es->observer != NULL) {
            es->observer(&batch, es->observer_ud);
        }
    } else if (rc != CLEW_ENOMEM) {
        rc = CLEW_EPARSE;
    }
    clew__arena_deinit(&arena);
    return rc;
}

/* Inserts a live batch the caller still holds into the head, then shows it to the
 * observer: what insert_spans does with the batch it decodes, without the decoding. */
static clew_status insert_batch(embedded_store *es, const clew_batch *b,
                                const clew_trace_meta *meta)
{
    clew_status rc = CLEW_OK;
    if (b->n_spans > 0) {
        rc = es->head->ops->append(es->head, b, meta, NULL, NULL);
    }
    if (rc == CLEW_OK && es->observer != NULL) {
        es->observer(b, es->observer_ud);
    }
    return rc;
}

static void pending_done(embedded_store *es, size_t len)
{
    pthread_mutex_lock(&es->mu);
    es->pending_bytes -= len;
    if (--es->n_pending == 0) {
        pthread_cond_broadcast(&es->cv);
    }
    pthread_mutex_unlock(&es->mu);
}

/* The WAL's completion callback, on its writer thread. */
static void on_wal_done(void *ud, clew_status status, clew_wal_pos pos)
{
    (void)pos;
    pending *p = ud;
    embedded_store *es = p->es;
    if (status == CLEW_OK) {
        clew_trace_meta meta;
        memset(&meta, 0, sizeof(meta));
        meta.state = p->state;
        meta.adjusted_count = p->adjusted_count;
        meta.kept_reason = (clew_str){p->strs, p->reason_len};
        if (p->batch != NULL) {
            meta.tenant = (clew_str){p->strs + p->reason_len, p->tenant_len};
            status = insert_batch(es, p->batch, &meta);
        } else {
            status = insert_spans(es, p->payload, p->len, &meta, NULL);
        }
        if (status != CLEW_OK) {
            /* durable but not in the head: the client retries (deduplicated), and a
             * restart replays it anyway */
            logf_(es, CLEW_WAL_LOG_ERROR,
                  "a batch written to the WAL could not be added to the head: %s",
                  clew_strerror(status));
        }
    }
    size_t len = p->len;
    clew_append_cb cb = p->cb;
    void *cb_ud = p->ud;
    clew__free(p->payload);
    clew__free(p);
    if (cb != NULL) {
        cb(status, cb_ud);
    }
    /* last: clew__embedded_store_quiesce returns once every callback has run */
    pending_done(es, len);
}

static bool over_budget(embedded_store *es, size_t extra)
{
    if (es->head_max_bytes == 0) {
        return false;
    }
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    es->head->ops->stats(es->head, &st);
    pthread_mutex_lock(&es->mu);
    bool over = st.bytes + es->pending_bytes + extra > es->head_max_bytes;
    pthread_mutex_unlock(&es->mu);
    return over;
}

static clew_status es_append(clew_store *s, const clew_batch *b, const clew_trace_meta *meta,
                             clew_append_cb cb, void *ud)
{
    embedded_store *es = (embedded_store *)s;
    clew_str tenant = meta ? meta->tenant : (clew_str){NULL, 0};
    clew_str reason = meta ? meta->kept_reason : (clew_str){NULL, 0};
    if (tenant.len > MAX_TENANT_LEN || reason.len > MAX_REASON_LEN) {
        return CLEW_EINVAL;
    }
    /* the request's own protobuf bytes when the receiver vouches that they decode to this
     * very batch: the record is then the request as received, and nothing is re-encoded */
    bool raw = meta != NULL && meta->otlp_pb != NULL;
    bool held = meta != NULL && meta->batch_held;
    uint8_t enc = meta != NULL && meta->state == CLEW_TRACE_PENDING ? CLEW_WAL_SPANS_OTLP_PB_PENDING
                                                                    : CLEW_WAL_SPANS_OTLP_PB;
    clew_buf buf;
    clew__buf_init(&buf, 0);
    clew_status rc = raw ? CLEW_OK : clew__otlp_pb_encode(b, &buf);
    const uint8_t *body = raw ? meta->otlp_pb : (const uint8_t *)buf.data;
    size_t body_len = raw ? meta->otlp_pb_len : buf.len;
    /* the record's payload is clew__wal_spans_encode's: u16 tenant length, tenant, encoding,
     * the protobuf. A caller that holds its batch has it written from these pieces; else
     * the joined payload stays with `p`, to be decoded on completion */
    uint8_t tl[2] = {(uint8_t)tenant.len, (uint8_t)(tenant.len >> 8)};
    const clew_wal_part parts[4] = {{tl, 2}, {tenant.ptr, tenant.len}, {&enc, 1}, {body, body_len}};
    size_t len = 3 + tenant.len + body_len;
    uint8_t *payload = NULL;
    if (rc == CLEW_OK && !held) {
        size_t plen = 0;
        rc = clew__wal_spans_encode(tenant, enc, body, body_len, &payload, &plen);
    }
    if (rc != CLEW_OK) {
        clew__buf_deinit(&buf);
        return rc;
    }
    if (over_budget(es, len)) {
        clew__buf_deinit(&buf);
        clew__free(payload);
        if (cb != NULL) {
            cb(CLEW_EFULL, ud);
        }
        return CLEW_OK;
    }
    pending *p = clew__calloc(1, sizeof(*p) + reason.len + tenant.len + 1);
    if (p == NULL) {
        clew__buf_deinit(&buf);
        clew__free(payload);
        return CLEW_ENOMEM;
    }
    p->es = es;
    p->cb = cb;
    p->ud = ud;
    p->payload = payload;
    p->batch = held ? b : NULL;
    p->len = len;
    p->state = meta ? meta->state : CLEW_TRACE_KEPT;
    p->adjusted_count = meta ? meta->adjusted_count : 1.0;
    p->reason_len = reason.len;
    p->tenant_len = tenant.len;
    if (reason.len > 0) {
        memcpy(p->strs, reason.ptr, reason.len);
    }
    if (tenant.len > 0) {
        memcpy(p->strs + reason.len, tenant.ptr, tenant.len);
    }
    pthread_mutex_lock(&es->mu);
    if (es->closing) {
        pthread_mutex_unlock(&es->mu);
        clew__buf_deinit(&buf);
        clew__free(payload);
        clew__free(p);
        return CLEW_ECLOSED;
    }
    es->pending_bytes += len;
    es->n_pending++;
    pthread_mutex_unlock(&es->mu);
    /* the WAL copies the record; `p` (and the payload it keeps) must not be touched once this
     * returns: the callback may have run and freed it */
    rc = held ? clew__wal_appendv(es->wal, CLEW_WAL_SPANS, parts, 4, on_wal_done, p)
              : clew__wal_append(es->wal, CLEW_WAL_SPANS, payload, len, on_wal_done, p);
    clew__buf_deinit(&buf);
    if (rc != CLEW_OK) {
        pending_done(es, len);
        clew__free(payload);
        clew__free(p);
        if (rc == CLEW_EFULL) {
            if (cb != NULL) {
                cb(CLEW_EFULL, ud);
            }
            return CLEW_OK;
        }
        return rc;
    }
    return CLEW_OK;
}

/* ---- queries: the head, then every block ----
 * Readers hold blocks_lock for reading for the whole query, so no block is closed under
 * them. A block that reports corruption is flagged, skipped, and quarantined by the next
 * maintenance; the query goes on with the rest. */

static void block_failed(embedded_store *es, blk *k, clew_status rc, const clew_error *err)
{
    if (rc == CLEW_ECORRUPT && !atomic_exchange(&k->bad, true)) {
        logf_(es, CLEW_WAL_LOG_ERROR, "block %s is corrupt (%s); it will be quarantined", k->name,
              err->msg);
        if (es->thread_started) {
            pthread_mutex_lock(&es->mu);
            pthread_cond_signal(&es->wake_cv);
            pthread_mutex_unlock(&es->mu);
        }
    }
}

static int span_ptr_cmp(const void *a, const void *b)
{
    const clew_span_data *x = *(const clew_span_data *const *)a;
    const clew_span_data *y = *(const clew_span_data *const *)b;
    if (x->start_ns != y->start_ns) {
        return x->start_ns < y->start_ns ? -1 : 1;
    }
    return memcmp(x->span_id.bytes, y->span_id.bytes, sizeof(x->span_id.bytes));
}

static clew_status clone_span_into(clew_arena *a, const clew_span_data *src,
                                   const clew_span_data **out)
{
    clew_span_data *d = clew__arena_calloc(a, 1, sizeof(*d));
    clew_resource *r = clew__arena_calloc(a, 1, sizeof(*r));
    clew_scope *sc = clew__arena_calloc(a, 1, sizeof(*sc));
    if (d == NULL || r == NULL || sc == NULL) {
        return CLEW_ENOMEM;
    }
    clew_status rc = clew__span_clone(d, src, a);
    if (rc == CLEW_OK && src->resource != NULL) {
        rc = clew__resource_clone(r, src->resource, a);
        d->resource = r;
    }
    if (rc == CLEW_OK && src->scope != NULL) {
        rc = clew__scope_clone(sc, src->scope, a);
        d->scope = sc;
    }
    *out = d;
    return rc;
}

/* Merges several results of one trace into a fresh one, one span per span id. The
 * metadata comes from parts[0] (the head's when the head has the trace). */
static clew_status merge_traces(clew_trace_result **parts, size_t n, clew_trace_result **out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += parts[i]->n_spans;
    }
    const clew_span_data **all = clew__calloc(total > 0 ? total : 1, sizeof(*all));
    clew_trace_result *t = clew__calloc(1, sizeof(*t));
    if (all == NULL || t == NULL) {
        clew__free(all);
        clew__free(t);
        return CLEW_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < parts[i]->n_spans; j++) {
            const clew_span_data *sp = parts[i]->spans[j];
            bool dup = false;
            for (size_t m = 0; m < k && !dup; m++) {
                dup = memcmp(all[m]->span_id.bytes, sp->span_id.bytes, sizeof(sp->span_id.bytes)) ==
                      0;
            }
            if (!dup) {
                all[k++] = sp;
            }
        }
    }
    qsort(all, k, sizeof(*all), span_ptr_cmp);
    clew__arena_init(&t->arena, DECODE_CHUNK, 0);
    t->trace_id = parts[0]->trace_id;
    t->meta = parts[0]->meta;
    t->meta.kept_reason = clew__arena_strdup(&t->arena, parts[0]->meta.kept_reason.ptr,
                                             parts[0]->meta.kept_reason.len);
    t->meta.tenant =
        clew__arena_strdup(&t->arena, parts[0]->meta.tenant.ptr, parts[0]->meta.tenant.len);
    t->spans = clew__arena_calloc(&t->arena, k > 0 ? k : 1, sizeof(*t->spans));
    clew_status rc = t->spans != NULL ? CLEW_OK : CLEW_ENOMEM;
    for (size_t i = 0; i < k && rc == CLEW_OK; i++) {
        rc = clone_span_into(&t->arena, all[i], &t->spans[i]);
    }
    t->n_spans = k;
    clew__free(all);
    if (rc != CLEW_OK) {
        clew__trace_result_free(t);
        return rc;
    }
    *out = t;
    return CLEW_OK;
}

static clew_status es_get_trace(clew_store *s, const clew_trace_id *id, clew_trace_result **out)
{
    embedded_store *es = (embedded_store *)s;
    pthread_rwlock_rdlock(&es->blocks_lock);
    clew_trace_result **parts = clew__calloc(es->n_blocks + 1, sizeof(*parts));
    if (parts == NULL) {
        pthread_rwlock_unlock(&es->blocks_lock);
        return CLEW_ENOMEM;
    }
    size_t n = 0;
    clew_status rc = es->head->ops->get_trace(es->head, id, &parts[n]);
    if (rc == CLEW_OK) {
        n++;
    } else if (rc != CLEW_ENOTFOUND) {
        goto done;
    }
    rc = CLEW_OK;
    /* newest block first, so the metadata of a trace not in the head is its latest */
    for (size_t i = es->n_blocks; i-- > 0 && rc == CLEW_OK;) {
        blk *k = es->blocks[i];
        if (atomic_load(&k->bad)) {
            continue;
        }
        clew_error err;
        memset(&err, 0, sizeof(err));
        bool may = false;
        clew_status brc = clew__block_may_contain(k->b, id, &may, &err);
        atomic_store_explicit(&k->last_used, now_ns(), memory_order_relaxed);
        if (brc == CLEW_OK && may) {
            brc = clew__block_get_trace(k->b, id, &parts[n], &err);
            if (brc == CLEW_OK) {
                n++;
            }
        }
        if (brc == CLEW_ENOMEM) {
            rc = brc;
        } else if (brc != CLEW_OK && brc != CLEW_ENOTFOUND) {
            block_failed(es, k, brc, &err);
        }
    }
    if (rc == CLEW_OK) {
        if (n == 0) {
            rc = CLEW_ENOTFOUND;
        } else if (n == 1) {
            *out = parts[0];
            parts[0] = NULL;
        } else {
            rc = merge_traces(parts, n, out);
        }
    }
done:
    pthread_rwlock_unlock(&es->blocks_lock);
    for (size_t i = 0; i < n; i++) {
        clew__trace_result_free(parts[i]);
    }
    clew__free(parts);
    return rc;
}

static int summary_newest_first(const void *a, const void *b)
{
    const clew_trace_summary *x = a, *y = b;
    if (x->start_ns != y->start_ns) {
        return x->start_ns > y->start_ns ? -1 : 1;
    }
    return memcmp(x->trace_id.bytes, y->trace_id.bytes, sizeof(x->trace_id.bytes));
}

/* Counts, per tag of the query, the blocks where its key is not (fully) indexed: a search
 * there scans the traces (results stay exact, only slower), and the API says so. */
static void count_unindexed(clew_block *b, const clew_search_query *q, size_t *counts)
{
    clew_name_list *keys = NULL;
    clew_error err;
    memset(&err, 0, sizeof(err));
    if (q->n_tags == 0 || clew__block_unindexed_keys(b, &keys, &err) != CLEW_OK) {
        return; /* a corrupt block is reported by the search itself */
    }
    for (size_t t = 0; t < q->n_tags; t++) {
        for (size_t i = 0; i < keys->n; i++) {
            if (keys->names[i].len == q->tags[t].key.len &&
                memcmp(keys->names[i].ptr, q->tags[t].key.ptr, q->tags[t].key.len) == 0) {
                counts[t]++;
                break;
            }
        }
    }
    clew__name_list_free(keys);
}

static clew_status add_unindexed_warnings(clew_search_result *r, const clew_search_query *q,
                                          const size_t *counts, size_t n_blocks)
{
    size_t n = 0;
    for (size_t t = 0; t < q->n_tags; t++) {
        n += counts[t] > 0;
    }
    if (n == 0) {
        return CLEW_OK;
    }
    r->warnings = clew__arena_calloc(&r->arena, n, sizeof(*r->warnings));
    if (r->warnings == NULL) {
        return CLEW_ENOMEM;
    }
    for (size_t t = 0; t < q->n_tags; t++) {
        if (counts[t] == 0) {
            continue;
        }
        char msg[400];
        int len = snprintf(msg, sizeof(msg),
                           "attribute '%.*s' is not indexed in %zu of %zu blocks (values too "
                           "long or too many distinct values): they were scanned, so the "
                           "result is complete but slower",
                           (int)(q->tags[t].key.len > 200 ? 200 : q->tags[t].key.len),
                           q->tags[t].key.ptr, counts[t], n_blocks);
        size_t ml = len < 0 ? 0 : (size_t)len >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)len;
        clew_str w = clew__arena_strdup(&r->arena, msg, ml);
        if (w.ptr == NULL) {
            return CLEW_ENOMEM;
        }
        r->warnings[r->n_warnings++] = w;
    }
    return CLEW_OK;
}

static clew_status es_search(clew_store *s, const clew_search_query *q, clew_search_result **out)
{
    embedded_store *es = (embedded_store *)s;
    size_t limit = q->limit > 0 ? q->limit : 20;
    pthread_rwlock_rdlock(&es->blocks_lock);
    clew_search_result **parts = clew__calloc(es->n_blocks + 1, sizeof(*parts));
    clew_search_result *r = clew__calloc(1, sizeof(*r));
    if (parts == NULL || r == NULL) {
        pthread_rwlock_unlock(&es->blocks_lock);
        clew__free(parts);
        clew__free(r);
        return CLEW_ENOMEM;
    }
    clew__arena_init(&r->arena, DECODE_CHUNK, 0);
    size_t n = 0, total = 0, searched = 0;
    size_t unindexed[CLEW_SEARCH_MAX_TAGS] = {0};
    clew_status rc = es->head->ops->search(es->head, q, &parts[n]);
    if (rc == CLEW_OK) {
        total += parts[n++]->n_traces;
    }
    for (size_t i = 0; i < es->n_blocks && rc == CLEW_OK; i++) {
        blk *k = es->blocks[i];
        if (atomic_load(&k->bad)) {
            continue;
        }
        if (q->start_min_ns != 0 && k->info.max_end_ns < q->start_min_ns) {
            continue;
        }
        if (q->start_max_ns != 0 && k->info.min_start_ns > q->start_max_ns) {
            continue;
        }
        clew_error err;
        memset(&err, 0, sizeof(err));
        clew_status brc = clew__block_search(k->b, q, &parts[n], &err);
        atomic_store_explicit(&k->last_used, now_ns(), memory_order_relaxed);
        if (brc == CLEW_OK) {
            total += parts[n++]->n_traces;
            count_unindexed(k->b, q, unindexed);
            searched++;
        } else if (brc == CLEW_ENOMEM) {
            rc = brc;
        } else {
            block_failed(es, k, brc, &err);
        }
    }
    pthread_rwlock_unlock(&es->blocks_lock);
    clew_trace_summary *all = NULL;
    size_t m = 0;
    if (rc == CLEW_OK) {
        all = clew__calloc(total > 0 ? total : 1, sizeof(*all));
        rc = all != NULL ? CLEW_OK : CLEW_ENOMEM;
    }
    /* a trace split across the head and blocks: one summary covering every part */
    for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
        for (size_t j = 0; j < parts[i]->n_traces; j++) {
            const clew_trace_summary *t = &parts[i]->traces[j];
            size_t x = 0;
            while (x < m && memcmp(all[x].trace_id.bytes, t->trace_id.bytes, 16) != 0) {
                x++;
            }
            if (x == m) {
                all[m++] = *t;
                continue;
            }
            clew_trace_summary *u = &all[x];
            uint64_t end = u->start_ns + u->duration_ns;
            uint64_t tend = t->start_ns + t->duration_ns;
            if (t->start_ns < u->start_ns) {
                u->root_service = t->root_service;
                u->root_operation = t->root_operation;
                u->start_ns = t->start_ns;
            }
            end = end > tend ? end : tend;
            u->duration_ns = end - u->start_ns;
            u->span_count += t->span_count;
            u->error_count += t->error_count;
        }
    }
    if (rc == CLEW_OK) {
        qsort(all, m, sizeof(*all), summary_newest_first);
        m = m < limit ? m : limit;
        r->traces = clew__arena_calloc(&r->arena, m > 0 ? m : 1, sizeof(*r->traces));
        rc = r->traces != NULL ? CLEW_OK : CLEW_ENOMEM;
    }
    for (size_t i = 0; i < m && rc == CLEW_OK; i++) {
        r->traces[i] = all[i];
        r->traces[i].root_service =
            clew__arena_strdup(&r->arena, all[i].root_service.ptr, all[i].root_service.len);
        r->traces[i].root_operation =
            clew__arena_strdup(&r->arena, all[i].root_operation.ptr, all[i].root_operation.len);
    }
    r->n_traces = rc == CLEW_OK ? m : 0;
    if (rc == CLEW_OK) {
        rc = add_unindexed_warnings(r, q, unindexed, searched);
    }
    clew__free(all);
    for (size_t i = 0; i < n; i++) {
        clew__search_result_free(parts[i]);
    }
    clew__free(parts);
    if (rc != CLEW_OK) {
        clew__search_result_free(r);
        return rc;
    }
    *out = r;
    return CLEW_OK;
}

typedef struct name_ref {
    clew_str name;
    clew_span_kind kind;
} name_ref;

static int name_ref_cmp(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = n ? memcmp(x->name.ptr, y->name.ptr, n) : 0;
    if (c != 0) {
        return c;
    }
    if (x->name.len != y->name.len) {
        return x->name.len < y->name.len ? -1 : 1;
    }
    return (int)x->kind - (int)y->kind;
}

/* services (service.len == SIZE_MAX marker not used: ops == false) or operations */
static clew_status list_names(embedded_store *es, bool ops, clew_str service, clew_span_kind kind,
                              clew_name_list **out)
{
    pthread_rwlock_rdlock(&es->blocks_lock);
    clew_name_list **parts = clew__calloc(es->n_blocks + 1, sizeof(*parts));
    clew_name_list *l = clew__calloc(1, sizeof(*l));
    if (parts == NULL || l == NULL) {
        pthread_rwlock_unlock(&es->blocks_lock);
        clew__free(parts);
        clew__free(l);
        return CLEW_ENOMEM;
    }
    clew__arena_init(&l->arena, 4096, 0);
    size_t n = 0, total = 0;
    clew_status rc = ops ? es->head->ops->operations(es->head, service, kind, &parts[n])
                         : es->head->ops->services(es->head, &parts[n]);
    if (rc == CLEW_OK) {
        total += parts[n++]->n;
    }
    for (size_t i = 0; i < es->n_blocks && rc == CLEW_OK; i++) {
        blk *k = es->blocks[i];
        if (atomic_load(&k->bad)) {
            continue;
        }
        clew_error err;
        memset(&err, 0, sizeof(err));
        clew_status brc = ops ? clew__block_operations(k->b, service, kind, &parts[n], &err)
                              : clew__block_services(k->b, &parts[n], &err);
        if (brc == CLEW_OK) {
            total += parts[n++]->n;
        } else if (brc == CLEW_ENOMEM) {
            rc = brc;
        } else {
            block_failed(es, k, brc, &err);
        }
    }
    pthread_rwlock_unlock(&es->blocks_lock);
    name_ref *all = NULL;
    size_t m = 0;
    if (rc == CLEW_OK) {
        all = clew__calloc(total > 0 ? total : 1, sizeof(*all));
        rc = all != NULL ? CLEW_OK : CLEW_ENOMEM;
    }
    for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
        for (size_t j = 0; j < parts[i]->n; j++) {
            all[m].name = parts[i]->names[j];
            all[m].kind = ops && parts[i]->kinds ? parts[i]->kinds[j] : CLEW_KIND_UNSPECIFIED;
            m++;
        }
    }
    size_t u = 0;
    if (rc == CLEW_OK) {
        qsort(all, m, sizeof(*all), name_ref_cmp);
        for (size_t i = 0; i < m; i++) {
            if (u == 0 || name_ref_cmp(&all[u - 1], &all[i]) != 0) {
                all[u++] = all[i];
            }
        }
        l->names = clew__arena_calloc(&l->arena, u > 0 ? u : 1, sizeof(*l->names));
        if (ops) {
            l->kinds = clew__arena_calloc(&l->arena, u > 0 ? u : 1, sizeof(*l->kinds));
        }
        rc = l->names != NULL && (!ops || l->kinds != NULL) ? CLEW_OK : CLEW_ENOMEM;
    }
    for (size_t i = 0; i < u && rc == CLEW_OK; i++) {
        l->names[i] = clew__arena_strdup(&l->arena, all[i].name.ptr, all[i].name.len);
        if (ops) {
            l->kinds[i] = all[i].kind;
        }
    }
    l->n = rc == CLEW_OK ? u : 0;
    clew__free(all);
    for (size_t i = 0; i < n; i++) {
        clew__name_list_free(parts[i]);
    }
    clew__free(parts);
    if (rc != CLEW_OK) {
        clew__name_list_free(l);
        return rc;
    }
    *out = l;
    return CLEW_OK;
}

static clew_status es_services(clew_store *s, clew_name_list **out)
{
    return list_names((embedded_store *)s, false, (clew_str){NULL, 0}, CLEW_KIND_UNSPECIFIED, out);
}

static clew_status es_operations(clew_store *s, clew_str service, clew_span_kind kind,
                                 clew_name_list **out)
{
    return list_names((embedded_store *)s, true, service, kind, out);
}

static clew_status es_set_trace_meta(clew_store *s, const clew_trace_id *id,
                                     const clew_trace_meta *meta)
{
    embedded_store *es = (embedded_store *)s;
    /* a DECISION record holds only KEPT or DROPPED: going back to PENDING is applied to
     * the head but not logged (a replayed trace without a decision comes back KEPT; see
     * docs/internals/embedded.md) */
    if (meta->state != CLEW_TRACE_PENDING) {
        if (meta->tenant.len > MAX_TENANT_LEN || meta->kept_reason.len > MAX_REASON_LEN) {
            return CLEW_EINVAL;
        }
        clew_wal_decision d;
        memset(&d, 0, sizeof(d));
        d.tenant = meta->tenant;
        d.trace_id = *id;
        d.state = meta->state == CLEW_TRACE_KEPT ? CLEW_WAL_KEPT : CLEW_WAL_DROPPED;
        d.reason = meta->kept_reason;
        d.adjusted_count = meta->adjusted_count;
        uint8_t *payload = NULL;
        size_t len = 0;
        clew_status rc = clew__wal_decision_encode(&d, &payload, &len);
        if (rc != CLEW_OK) {
            return rc;
        }
        rc = clew__wal_append(es->wal, CLEW_WAL_DECISION, payload, len, NULL, NULL);
        clew__free(payload);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return es->head->ops->set_trace_meta(es->head, id, meta);
}

static void es_set_observer(clew_store *s, clew_store_observer fn, void *ud)
{
    embedded_store *es = (embedded_store *)s;
    es->observer = fn;
    es->observer_ud = ud;
}

/* Pending traces live only in the head: a cut never writes one to a block. */
static clew_status es_pending_traces(clew_store *s, clew_trace_id **out, size_t *out_n)
{
    embedded_store *es = (embedded_store *)s;
    return es->head->ops->pending_traces(es->head, out, out_n);
}

static void es_stats(clew_store *s, clew_store_stats *out)
{
    embedded_store *es = (embedded_store *)s;
    es->head->ops->stats(es->head, out);
    pthread_rwlock_rdlock(&es->blocks_lock);
    for (size_t i = 0; i < es->n_blocks; i++) {
        out->spans += es->blocks[i]->info.n_spans;
        out->traces += es->blocks[i]->info.n_traces;
        out->bytes += es->blocks[i]->info.file_size;
        out->index_bytes += clew__block_index_bytes(es->blocks[i]->b);
    }
    pthread_rwlock_unlock(&es->blocks_lock);
    out->duplicate_spans += es->dedup_spans;
}

size_t clew__embedded_store_n_blocks(clew_store *s)
{
    embedded_store *es = (embedded_store *)s;
    pthread_rwlock_rdlock(&es->blocks_lock);
    size_t n = es->n_blocks;
    pthread_rwlock_unlock(&es->blocks_lock);
    return n;
}

void clew__embedded_store_quiesce(clew_store *s)
{
    embedded_store *es = (embedded_store *)s;
    pthread_mutex_lock(&es->mu);
    es->closing = true;
    while (es->n_pending > 0) {
        pthread_cond_wait(&es->cv, &es->mu);
    }
    pthread_mutex_unlock(&es->mu);
}

/* ---- blocks: loading, the cut, retention, quarantine ---- */

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void format_time(uint64_t ns, char *out, size_t cap)
{
    time_t t = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, cap, "%llu ns", (unsigned long long)ns);
    }
}

/* Creates DATA_DIR/<sub> if missing (the fileio has no mkdir) and makes it durable. */
static clew_status ensure_dir(embedded_store *es, const char *sub, char *path, size_t cap)
{
    int w = snprintf(path, cap, "%s/%s", es->dir, sub);
    if (w < 0 || (size_t)w >= cap) {
        return CLEW_EINVAL;
    }
    if (mkdir(path, 0755) == 0) {
        return es->io->fsync_dir(es->io, es->dir);
    }
    return errno == EEXIST ? CLEW_OK : CLEW_EIO;
}

/* "b0000000042.block" -> 42; false for any other name. */
static bool parse_block_name(const char *name, uint64_t *seq)
{
    size_t len = strlen(name);
    if (len != 17 || name[0] != 'b' || strcmp(name + 11, ".block") != 0) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 1; i < 11; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *seq = v;
    return true;
}

static void blk_free(blk *k)
{
    if (k != NULL) {
        clew__block_close(k->b);
        clew__free(k);
    }
}

/* Moves DATA_DIR/blocks/<name> to DATA_DIR/quarantine/<name>, so a restart does not trip
 * on it again and an operator can look at it. */
static void quarantine(embedded_store *es, const char *name, const char *why)
{
    char qdir[4096], from[4096], to[4096], bdir[4096];
    clew_status rc = ensure_dir(es, "quarantine", qdir, sizeof(qdir));
    int a = snprintf(from, sizeof(from), "%s/blocks/%s", es->dir, name);
    int b = snprintf(to, sizeof(to), "%s/%s", qdir, name);
    int c = snprintf(bdir, sizeof(bdir), "%s/blocks", es->dir);
    if (rc == CLEW_OK && (a < 0 || b < 0 || c < 0 || (size_t)a >= sizeof(from) ||
                          (size_t)b >= sizeof(to) || (size_t)c >= sizeof(bdir))) {
        rc = CLEW_EINVAL;
    }
    if (rc == CLEW_OK) {
        rc = es->io->rename_path(es->io, from, to);
    }
    if (rc == CLEW_OK) {
        rc = es->io->fsync_dir(es->io, qdir);
    }
    if (rc == CLEW_OK) {
        rc = es->io->fsync_dir(es->io, bdir);
    }
    if (rc == CLEW_OK) {
        logf_(es, CLEW_WAL_LOG_ERROR, "quarantine: moved block %s to %s (%s)", name, qdir, why);
    } else {
        logf_(es, CLEW_WAL_LOG_ERROR, "quarantine: block %s (%s) could not be moved: %s", name, why,
              clew_strerror(rc));
    }
}

static clew_status add_block(embedded_store *es, blk *k)
{
    if (es->n_blocks == es->cap_blocks) {
        size_t cap = es->cap_blocks ? 2 * es->cap_blocks : 16;
        blk **v = clew__realloc(es->blocks, cap * sizeof(*v));
        if (v == NULL) {
            return CLEW_ENOMEM;
        }
        es->blocks = v;
        es->cap_blocks = cap;
    }
    /* keep cut order: blocks are loaded in directory order */
    size_t i = es->n_blocks;
    while (i > 0 && es->blocks[i - 1]->seq > k->seq) {
        es->blocks[i] = es->blocks[i - 1];
        i--;
    }
    es->blocks[i] = k;
    es->n_blocks++;
    if (k->seq >= es->next_seq) {
        es->next_seq = k->seq + 1;
    }
    return CLEW_OK;
}

/* Opens DATA_DIR/blocks/<name> and adds it. A corrupt block is quarantined (CLEW_OK). */
static clew_status open_block(embedded_store *es, const char *name, uint64_t seq)
{
    char path[4096];
    int w = snprintf(path, sizeof(path), "%s/blocks/%s", es->dir, name);
    if (w < 0 || (size_t)w >= sizeof(path)) {
        return CLEW_EINVAL;
    }
    blk *k = clew__calloc(1, sizeof(*k));
    if (k == NULL) {
        return CLEW_ENOMEM;
    }
    k->seq = seq;
    snprintf(k->name, sizeof(k->name), "%s", name);
    atomic_init(&k->bad, false);
    atomic_init(&k->last_used, now_ns());
    clew_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc = clew__block_open(es->io, path, &k->b, &err);
    if (rc == CLEW_OK) {
        /* the indexes now, not on the first query after the restart (see block.h), while
         * the ones loaded at start stay within their bound (later blocks load theirs when
         * used); a new block's at once (the bound's pass drops the least recently used) */
        bool room =
            es->index_max_bytes == 0 || !es->opening || es->index_bytes_open < es->index_max_bytes;
        rc = room ? clew__block_load_indexes(k->b, &err) : CLEW_OK;
        if (rc == CLEW_OK && room) {
            es->index_bytes_open += clew__block_index_bytes(k->b);
        }
        if (rc != CLEW_OK) {
            clew__block_close(k->b);
            k->b = NULL;
        }
    }
    if (rc == CLEW_ECORRUPT) {
        clew__free(k);
        quarantine(es, name, err.msg);
        return CLEW_OK;
    }
    if (rc != CLEW_OK) {
        clew__free(k);
        logf_(es, CLEW_WAL_LOG_ERROR, "block %s cannot be opened: %s (%s)", name, clew_strerror(rc),
              err.msg);
        return rc;
    }
    clew__block_info(k->b, &k->info);
    rc = add_block(es, k);
    if (rc != CLEW_OK) {
        blk_free(k);
    }
    return rc;
}

static void recover_compactions(embedded_store *es, const char *bdir);

/* Open: every block of DATA_DIR/blocks, and stray .tmp files (a cut that died) removed. */
static clew_status load_blocks(embedded_store *es)
{
    char bdir[4096];
    clew_status rc = ensure_dir(es, "blocks", bdir, sizeof(bdir));
    if (rc != CLEW_OK) {
        return rc;
    }
    recover_compactions(es, bdir);
    DIR *d = opendir(bdir);
    if (d == NULL) {
        return CLEW_EIO;
    }
    struct dirent *e;
    bool removed = false;
    while (rc == CLEW_OK && (e = readdir(d)) != NULL) {
        uint64_t seq = 0;
        size_t len = strlen(e->d_name);
        if (parse_block_name(e->d_name, &seq)) {
            rc = open_block(es, e->d_name, seq);
        } else if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
            char path[4096];
            int w = snprintf(path, sizeof(path), "%s/%s", bdir, e->d_name);
            if (w > 0 && (size_t)w < sizeof(path) && es->io->unlink_path(es->io, path) == CLEW_OK) {
                logf_(es, CLEW_WAL_LOG_WARN, "removed %s, left by a block write that died", path);
                removed = true;
            }
        }
    }
    closedir(d);
    if (rc == CLEW_OK && removed) {
        rc = es->io->fsync_dir(es->io, bdir);
    }
    return rc;
}

/* Unlinks a block file (the block is already out of the set). */
static void delete_block_file(embedded_store *es, blk *k, const char *why)
{
    char path[4096], bdir[4096], newest[40];
    snprintf(path, sizeof(path), "%s/blocks/%s", es->dir, k->name);
    snprintf(bdir, sizeof(bdir), "%s/blocks", es->dir);
    format_time(k->info.max_end_ns, newest, sizeof(newest));
    clew_status rc = es->io->unlink_path(es->io, path);
    if (rc == CLEW_OK) {
        rc = es->io->fsync_dir(es->io, bdir);
    }
    if (rc == CLEW_OK) {
        logf_(es, CLEW_WAL_LOG_INFO,
              "retention: removed block %s (%u traces, %llu bytes, "
              "newest %s): %s",
              k->name, k->info.n_traces, (unsigned long long)k->info.file_size, newest, why);
    } else {
        logf_(es, CLEW_WAL_LOG_ERROR, "retention: removing block %s (%s) failed: %s", k->name, why,
              clew_strerror(rc));
    }
}

static int cmp_last_used(const void *a, const void *b)
{
    uint64_t x = atomic_load_explicit(&(*(blk *const *)a)->last_used, memory_order_relaxed);
    uint64_t y = atomic_load_explicit(&(*(blk *const *)b)->last_used, memory_order_relaxed);
    return x < y ? -1 : x > y;
}

/* Keeps the memory of the blocks' loaded indexes within index_max_bytes: the indexes of the
 * blocks no query has read for the longest are dropped (they load again when needed). Queries
 * may load more between two passes (one second); a block being read is skipped this time. */
static void bound_indexes(embedded_store *es)
{
    if (es->index_max_bytes == 0) {
        return;
    }
    pthread_rwlock_rdlock(&es->blocks_lock);
    size_t n = es->n_blocks, total = 0;
    for (size_t i = 0; i < n; i++) {
        total += clew__block_index_bytes(es->blocks[i]->b);
    }
    blk **order = total > es->index_max_bytes ? clew__calloc(n, sizeof(*order)) : NULL;
    if (order != NULL) {
        memcpy(order, es->blocks, n * sizeof(*order));
        qsort(order, n, sizeof(*order), cmp_last_used);
        for (size_t i = 0; i < n && total > es->index_max_bytes; i++) {
            size_t got = clew__block_drop_indexes(order[i]->b);
            total -= got < total ? got : total;
        }
        clew__free(order);
    }
    pthread_rwlock_unlock(&es->blocks_lock);
}

/* Quarantine of flagged blocks, then --retention, then --max-disk (oldest first), then the
 * bound on the memory of block indexes. */
static void maintain(embedded_store *es)
{
    uint64_t now = wall_ns();
    pthread_rwlock_wrlock(&es->blocks_lock);
    uint64_t disk = 0;
    size_t kept = 0;
    for (size_t i = 0; i < es->n_blocks; i++) {
        blk *k = es->blocks[i];
        if (atomic_load(&k->bad)) {
            clew__block_close(k->b);
            k->b = NULL;
            quarantine(es, k->name, "failed a checksum on read");
            clew__free(k);
        } else if (es->retention_ns != UINT64_MAX && k->info.max_end_ns < now &&
                   now - k->info.max_end_ns > es->retention_ns) {
            delete_block_file(es, k, "older than --retention");
            blk_free(k);
        } else {
            es->blocks[kept++] = k;
            disk += k->info.file_size;
        }
    }
    es->n_blocks = kept;
    size_t drop = 0;
    while (es->max_disk_bytes > 0 && disk > es->max_disk_bytes && drop < es->n_blocks) {
        blk *k = es->blocks[drop++];
        disk -= k->info.file_size;
        delete_block_file(es, k, "over --max-disk");
        blk_free(k);
    }
    if (drop > 0) {
        memmove(es->blocks, es->blocks + drop, (es->n_blocks - drop) * sizeof(*es->blocks));
        es->n_blocks -= drop;
    }
    pthread_rwlock_unlock(&es->blocks_lock);
    bound_indexes(es);
}

/* Reads the new block back completely before the head lets go of its traces. A block
 * the reader refuses (a writer or reader bug, bad memory, a bad disk) is deleted, with an
 * ERROR line: its traces stay in the head and the WAL, and the next cut writes them again,
 * so keeping each failed copy in quarantine/ could fill the disk. */
static clew_status check_new_block(embedded_store *es, const char *file)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/blocks/%s", es->dir, file);
    clew_block *b = NULL;
    clew_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc = clew__block_open(es->io, path, &b, &err);
    if (rc == CLEW_OK) {
        rc = clew__block_verify_written(b, &err);
    }
    clew__block_close(b);
    if (rc != CLEW_OK && rc != CLEW_ENOMEM) {
        clew_status urc = es->io->unlink_path(es->io, path);
        logf_(es, CLEW_WAL_LOG_ERROR,
              "block %s does not read back (%s: %s); deleted it%s; its traces stay in the "
              "head and the WAL",
              file, clew_strerror(rc), err.msg, urc == CLEW_OK ? "" : " (the delete failed)");
    }
    return rc;
}

/* ---- compaction ----
 * Consecutive small blocks (each under a quarter of --block-size) whose spans lie within
 * one window (12 block durations) are merged into one new block once there are
 * compact_min_blocks of them; traces split across them are joined (one span per span id).
 * Crash safety: first a durable DATA_DIR/blocks/<new>.replaces file names the old blocks,
 * then the new block is written (durable), then the old blocks are deleted, then the
 * .replaces file. On open, a .replaces file whose block exists finishes the deletions
 * (the new block holds everything); one whose block does not exist is dropped (the old
 * blocks are still whole). So no span is ever lost or counted twice. */

static clew_status write_small_file(embedded_store *es, const char *path, const char *text)
{
    char tmp[4400];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = -1;
    clew_status rc = es->io->open_file(
        es->io, tmp, CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE | CLEW_FILEIO_TRUNC, &fd);
    if (rc != CLEW_OK) {
        return rc;
    }
    rc = es->io->pwrite_all(es->io, fd, text, strlen(text), 0);
    if (rc == CLEW_OK) {
        rc = es->io->fsync_file(es->io, fd);
    }
    clew_status crc = es->io->close_file(es->io, fd);
    if (rc == CLEW_OK) {
        rc = crc;
    }
    if (rc == CLEW_OK) {
        rc = es->io->rename_path(es->io, tmp, path);
    }
    return rc;
}

/* Open: finish or drop what a compaction that died left behind. */
static void recover_compactions(embedded_store *es, const char *bdir)
{
    DIR *d = opendir(bdir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    bool changed = false;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len != 20 || strcmp(e->d_name + 11, ".replaces") != 0) {
            continue;
        }
        char path[4400], block[4400];
        snprintf(path, sizeof(path), "%s/%s", bdir, e->d_name);
        snprintf(block, sizeof(block), "%s/%.11s.block", bdir, e->d_name);
        struct stat st;
        if (stat(block, &st) == 0) {
            uint8_t buf[4096];
            int fd = -1;
            size_t got = 0;
            if (es->io->open_file(es->io, path, CLEW_FILEIO_READ, &fd) == CLEW_OK) {
                if (es->io->pread_some(es->io, fd, buf, sizeof(buf) - 1, 0, &got) != CLEW_OK) {
                    got = 0;
                }
                (void)es->io->close_file(es->io, fd);
            }
            buf[got] = '\0';
            for (char *p = (char *)buf; *p != '\0';) {
                char *nl = strchr(p, '\n');
                if (nl == NULL) {
                    break;
                }
                *nl = '\0';
                uint64_t seq = 0;
                char old[4200];
                snprintf(old, sizeof(old), "%s/%.64s", bdir, p);
                if (parse_block_name(p, &seq) && stat(old, &st) == 0 &&
                    es->io->unlink_path(es->io, old) == CLEW_OK) {
                    logf_(es, CLEW_WAL_LOG_INFO,
                          "compaction: removed %s, already merged into %.11s.block", p, e->d_name);
                }
                p = nl + 1;
            }
        }
        (void)es->io->unlink_path(es->io, path);
        changed = true;
    }
    closedir(d);
    if (changed) {
        (void)es->io->fsync_dir(es->io, bdir);
    }
}

static int trace_id_cmp(const void *a, const void *b)
{
    return memcmp(((const clew_trace_id *)a)->bytes, ((const clew_trace_id *)b)->bytes,
                  sizeof(((const clew_trace_id *)a)->bytes));
}

/* Merges blocks [first, first + n) of the set into one. Caller holds cut_mu. */
static clew_status compact_range(embedded_store *es, size_t first, size_t n)
{
    blk **grp = es->blocks + first;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        cap += grp[i]->info.n_traces;
    }
    clew_trace_id *ids = clew__calloc(cap > 0 ? cap : 1, sizeof(*ids));
    clew_block_trace *bt = clew__calloc(cap > 0 ? cap : 1, sizeof(*bt));
    clew_trace_result **merged = clew__calloc(cap > 0 ? cap : 1, sizeof(*merged));
    clew_trace_result **parts = clew__calloc(n, sizeof(*parts));
    size_t n_ids = 0, n_merged = 0;
    clew_status rc = ids && bt && merged && parts ? CLEW_OK : CLEW_ENOMEM;
    clew_error err;
    memset(&err, 0, sizeof(err));
    for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
        clew_search_query q;
        memset(&q, 0, sizeof(q));
        q.limit = grp[i]->info.n_traces > 0 ? grp[i]->info.n_traces : 1;
        clew_search_result *r = NULL;
        rc = clew__block_search(grp[i]->b, &q, &r, &err);
        for (size_t j = 0; rc == CLEW_OK && j < r->n_traces && n_ids < cap; j++) {
            ids[n_ids++] = r->traces[j].trace_id;
        }
        clew__search_result_free(r);
    }
    /* a trace split across the blocks is merged once: sort, then keep one of each id */
    if (rc == CLEW_OK && n_ids > 1) {
        qsort(ids, n_ids, sizeof(*ids), trace_id_cmp);
        size_t u = 1;
        for (size_t k = 1; k < n_ids; k++) {
            if (memcmp(ids[u - 1].bytes, ids[k].bytes, sizeof(ids[k].bytes)) != 0) {
                ids[u++] = ids[k];
            }
        }
        n_ids = u;
    }
    for (size_t k = 0; k < n_ids && rc == CLEW_OK; k++) {
        size_t np = 0;
        for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
            clew_status g = clew__block_get_trace(grp[i]->b, &ids[k], &parts[np], &err);
            if (g == CLEW_OK) {
                np++;
            } else if (g != CLEW_ENOTFOUND) {
                rc = g;
            }
        }
        if (rc == CLEW_OK && np > 0) {
            /* newest part first: its metadata wins */
            for (size_t i = 0; i < np / 2; i++) {
                clew_trace_result *t = parts[i];
                parts[i] = parts[np - 1 - i];
                parts[np - 1 - i] = t;
            }
            rc = merge_traces(parts, np, &merged[n_merged]);
            if (rc == CLEW_OK) {
                clew_trace_result *t = merged[n_merged++];
                bt[n_merged - 1] = (clew_block_trace){t->trace_id, t->spans, t->n_spans, t->meta};
            }
        }
        for (size_t i = 0; i < np; i++) {
            clew__trace_result_free(parts[i]);
        }
    }
    uint64_t seq = es->next_seq;
    char name[32], file[40], repl[4200], bdir[4096];
    snprintf(name, sizeof(name), "b%010llu", (unsigned long long)seq);
    snprintf(file, sizeof(file), "%s.block", name);
    snprintf(bdir, sizeof(bdir), "%s/blocks", es->dir);
    snprintf(repl, sizeof(repl), "%s/%s.replaces", bdir, name);
    if (rc == CLEW_OK && n_merged > 0) {
        char text[2048] = "";
        size_t used = 0;
        for (size_t i = 0; i < n && used + 20 < sizeof(text); i++) {
            int w = snprintf(text + used, sizeof(text) - used, "%s\n", grp[i]->name);
            used += w > 0 ? (size_t)w : 0;
        }
        rc = write_small_file(es, repl, text);
        if (rc == CLEW_OK) {
            rc = es->io->fsync_dir(es->io, bdir);
        }
        if (rc == CLEW_OK) {
            rc = clew__block_write(es->io, es->dir, name, bt, n_merged, NULL, &err);
        }
        if (rc == CLEW_OK) {
            es->next_seq = seq + 1;
            rc = check_new_block(es, file);
            if (rc != CLEW_OK) {
                /* the merged block is gone: nothing for a restart to finish */
                (void)es->io->unlink_path(es->io, repl);
            }
        }
        if (rc == CLEW_OK) {
            rc = es->io->crash_point(es->io, "compaction.written");
        }
    }
    if (rc == CLEW_OK && n_merged > 0) {
        pthread_rwlock_wrlock(&es->blocks_lock);
        blk **old = clew__calloc(n, sizeof(*old));
        if (old == NULL) {
            rc = CLEW_ENOMEM;
        } else {
            memcpy(old, grp, n * sizeof(*old));
            memmove(grp, grp + n, (es->n_blocks - first - n) * sizeof(*grp));
            es->n_blocks -= n;
            rc = open_block(es, file, seq);
        }
        pthread_rwlock_unlock(&es->blocks_lock);
        uint64_t bytes = 0;
        for (size_t i = 0; old != NULL && i < n; i++) {
            char path[4200];
            snprintf(path, sizeof(path), "%s/%s", bdir, old[i]->name);
            bytes += old[i]->info.file_size;
            if (rc == CLEW_OK) {
                rc = es->io->crash_point(es->io, "compaction.deleting");
            }
            if (rc == CLEW_OK) {
                rc = es->io->unlink_path(es->io, path);
            }
            blk_free(old[i]);
        }
        clew__free(old);
        if (rc == CLEW_OK) {
            rc = es->io->fsync_dir(es->io, bdir);
        }
        if (rc == CLEW_OK) {
            rc = es->io->crash_point(es->io, "compaction.deleted");
        }
        if (rc == CLEW_OK) {
            rc = es->io->unlink_path(es->io, repl);
        }
        if (rc == CLEW_OK) {
            logf_(es, CLEW_WAL_LOG_INFO,
                  "compaction: merged %zu blocks (%llu bytes) into %s (%zu traces)", n,
                  (unsigned long long)bytes, file, n_merged);
        }
    }
    if (rc != CLEW_OK) {
        logf_(es, CLEW_WAL_LOG_ERROR, "compaction failed: %s (%s)", clew_strerror(rc), err.msg);
    }
    for (size_t i = 0; i < n_merged; i++) {
        clew__trace_result_free(merged[i]);
    }
    clew__free(merged);
    clew__free(parts);
    clew__free(bt);
    clew__free(ids);
    return rc;
}

/* One compaction per pass at most: the first run of enough small blocks of one window. */
static clew_status compact(embedded_store *es)
{
    /* compact_range holds every trace of the run decoded (twice: the blocks' copies and the
     * merged ones) while the writer works, and a block is 20-60 times smaller on disk than
     * decoded: so the run is bounded like a cut chunk, by its estimated decoded size (spans
     * times the head bytes per span the last cut saw) and its trace count, besides its size
     * on disk */
    uint64_t small = es->block_size / 4, window = es->block_duration_ns * 12;
    uint64_t per_span = es->bytes_per_span;
    size_t i = 0;
    while (i < es->n_blocks) {
        size_t j = i;
        uint64_t lo = UINT64_MAX, hi = 0, bytes = 0, decoded = 0, traces = 0;
        while (j < es->n_blocks) {
            blk *k = es->blocks[j];
            uint64_t nlo = k->info.min_start_ns < lo ? k->info.min_start_ns : lo;
            uint64_t nhi = k->info.max_end_ns > hi ? k->info.max_end_ns : hi;
            uint64_t dec = k->info.n_spans * per_span;
            if (atomic_load(&k->bad) || k->info.file_size >= small || dec >= small ||
                bytes + k->info.file_size > es->block_size || decoded + dec > es->block_size ||
                traces + k->info.n_traces > es->block_max_traces ||
                (nhi > nlo && nhi - nlo > window)) {
                break;
            }
            lo = nlo;
            hi = nhi;
            bytes += k->info.file_size;
            decoded += dec;
            traces += k->info.n_traces;
            j++;
        }
        if (j - i >= es->compact_min_blocks) {
            return compact_range(es, i, j - i);
        }
        i = j > i ? j : i + 1;
    }
    return CLEW_OK;
}

static void on_marker(void *ud, clew_status status, clew_wal_pos pos)
{
    (void)status;
    (void)pos;
    embedded_store *es = ud;
    pthread_mutex_lock(&es->mu);
    es->markers_done++;
    pthread_cond_broadcast(&es->cv);
    pthread_mutex_unlock(&es->mu);
}

/* The WAL record type of the cut marker: replay skips unknown types. */
#define MARKER_TYPE 3u

static int bound_cmp(const void *a, const void *b)
{
    return memcmp(((const pending_bound *)a)->id.bytes, ((const pending_bound *)b)->id.bytes, 16);
}

/* A PENDING trace keeps the WAL segments its records are in. The head does not know which
 * those are, but a bound is enough: a trace absent from the head at the previous cut's
 * listing has every record at or after that cut's rotate segment (everything before it
 * was in the head by then), so a trace first seen pending now gets the previous cut's
 * segment as its bound, and one already pending keeps its old bound (0 for the traces
 * replayed on open: any segment). The WAL is released below min(seg, every bound).
 * Caller holds cut_mu. */
static clew_status update_pending_bounds(embedded_store *es, const clew_memory_trace_ref *refs,
                                         size_t n_refs, uint64_t seg, uint64_t *release_below)
{
    size_t n = 0;
    for (size_t i = 0; i < n_refs; i++) {
        n += refs[i].state == CLEW_TRACE_PENDING;
    }
    pending_bound *nb = clew__calloc(n > 0 ? n : 1, sizeof(*nb));
    if (nb == NULL) {
        return CLEW_ENOMEM;
    }
    uint64_t low = seg;
    size_t k = 0;
    for (size_t i = 0; i < n_refs; i++) {
        if (refs[i].state != CLEW_TRACE_PENDING) {
            continue;
        }
        pending_bound key = {refs[i].id, 0};
        const pending_bound *old =
            es->n_bounds > 0 ? bsearch(&key, es->bounds, es->n_bounds, sizeof(key), bound_cmp)
                             : NULL;
        nb[k].id = refs[i].id;
        nb[k].segment = old != NULL ? old->segment : es->last_cut_segment;
        low = nb[k].segment < low ? nb[k].segment : low;
        k++;
    }
    qsort(nb, k, sizeof(*nb), bound_cmp);
    clew__free(es->bounds);
    es->bounds = nb;
    es->n_bounds = k;
    es->last_cut_segment = seg;
    *release_below = low;
    return CLEW_OK;
}

/* Leaves out of head copy `t` the spans a block already holds (a client's retry after an
 * earlier cut), so no span is written twice. One bloom check per block and one block read
 * per block that may hold the trace: per trace, not per span. Caller holds cut_mu (the only
 * writer of the block set). */
static clew_status drop_spans_held_by_blocks(embedded_store *es, clew_trace_result *t)
{
    for (size_t b = 0; b < es->n_blocks && t->n_spans > 0; b++) {
        blk *k = es->blocks[b];
        if (atomic_load(&k->bad)) {
            continue;
        }
        clew_error err;
        memset(&err, 0, sizeof(err));
        bool may = false;
        clew_status rc = clew__block_may_contain(k->b, &t->trace_id, &may, &err);
        if (rc != CLEW_OK || !may) {
            continue;
        }
        clew_trace_result *old = NULL;
        rc = clew__block_get_trace(k->b, &t->trace_id, &old, &err);
        if (rc == CLEW_ENOMEM) {
            return rc;
        }
        if (rc != CLEW_OK) {
            /* not there, or corrupt (reads as "not held", as on replay) */
            continue;
        }
        size_t keep = 0;
        for (size_t i = 0; i < t->n_spans; i++) {
            bool held = false;
            for (size_t j = 0; j < old->n_spans && !held; j++) {
                held = memcmp(old->spans[j]->span_id.bytes, t->spans[i]->span_id.bytes,
                              sizeof(t->spans[i]->span_id.bytes)) == 0;
            }
            if (!held) {
                t->spans[keep++] = t->spans[i];
            }
        }
        t->n_spans = keep;
        clew__trace_result_free(old);
    }
    return CLEW_OK;
}

/* CPU time of the calling thread: a cut's chunks run on one thread, so this is their cost
 * whatever else the machine runs (wall times of a cut under ingest mostly measure waiting). */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What a cut did so far, over all its chunks. */
typedef struct cut_totals {
    size_t blocks;      /* chunks written as blocks */
    size_t kept;        /* traces written */
    uint64_t spans;     /* spans written */
    size_t dropped;     /* DROPPED traces discarded */
    size_t pending;     /* PENDING traces left in the head */
    size_t busy;        /* traces that grew while copied: left in the head whole */
    uint64_t cpu_ns[3]; /* CPU time of the chunks: copy, block write, read back and swap */
    char first[32], last[32];
} cut_totals;

/* One chunk of a cut: starting at refs[*next], copies KEPT traces until the copies hold
 * es->block_size bytes of the head's span data or es->block_max_traces traces (at least one
 * trace, however large), writes them as one block, reads it back, serves it, and removes
 * from the head the traces of refs[*next .. end) it wrote plus the DROPPED ones there.
 * *next becomes `end`. So the copies and the block writer's working memory are bounded by
 * the configuration, not by the head. Caller holds cut_mu. On failure nothing of this
 * chunk has left the head (earlier chunks are in blocks). */
static clew_status cut_chunk(embedded_store *es, clew_memory_trace_ref *refs, size_t n_refs,
                             size_t *next, cut_totals *tot)
{
    size_t start = *next, cap = es->block_max_traces;
    if (cap > n_refs - start) {
        cap = n_refs - start;
    }
    /* the head's traces are read in place (pinned), not copied: their spans stay valid until
     * the unpin below, even once removed from the head */
    clew_trace_result **copies = clew__calloc(cap > 0 ? cap : 1, sizeof(*copies));
    clew_memory_pin **pins = clew__calloc(cap > 0 ? cap : 1, sizeof(*pins));
    clew_block_trace *bt = clew__calloc(cap > 0 ? cap : 1, sizeof(*bt));
    clew_status rc = copies != NULL && pins != NULL && bt != NULL ? CLEW_OK : CLEW_ENOMEM;
    size_t n_kept = 0, bytes = 0, end = start;
    uint64_t n_spans = 0, t_start = now_ns(), t_copied = 0, t_written = 0;
    uint64_t cpu_start = thread_cpu_ns();
    for (; end < n_refs && rc == CLEW_OK; end++) {
        clew_memory_trace_ref *r = &refs[end];
        if (r->state == CLEW_TRACE_PENDING) {
            tot->pending++;
            continue;
        }
        if (r->state == CLEW_TRACE_DROPPED) {
            /* the sampler dropped it: not written; removed below */
            continue;
        }
        if (n_kept > 0 && (n_kept >= cap || bytes + r->bytes > es->block_size)) {
            break; /* the next chunk starts here */
        }
        clew_trace_result *t = NULL;
        clew_memory_pin *pin = NULL;
        rc = clew__memory_store_pin_trace(es->head, &r->id, &t, &pin);
        if (rc == CLEW_ENOTFOUND) {
            rc = CLEW_OK;
            continue;
        }
        if (rc != CLEW_OK) {
            break;
        }
        r->n_spans = (uint32_t)t->n_spans; /* what the head lets go of */
        bytes += r->bytes;
        rc = drop_spans_held_by_blocks(es, t);
        if (rc != CLEW_OK || t->n_spans == 0) {
            clew__trace_result_free(t);
            clew__memory_store_unpin(es->head, pin);
            continue;
        }
        copies[n_kept] = t;
        pins[n_kept] = pin;
        bt[n_kept] = (clew_block_trace){t->trace_id, t->spans, t->n_spans, t->meta};
        n_spans += t->n_spans;
        n_kept++;
    }
    char name[32] = "";
    t_copied = now_ns();
    t_written = t_copied;
    uint64_t cpu_copied = thread_cpu_ns(), cpu_written = cpu_copied;
    if (rc == CLEW_OK && n_kept > 0) {
        uint64_t seq = es->next_seq;
        snprintf(name, sizeof(name), "b%010llu", (unsigned long long)seq);
        clew_error err;
        memset(&err, 0, sizeof(err));
        rc = clew__block_write(es->io, es->dir, name, bt, n_kept, NULL, &err);
        t_written = now_ns();
        cpu_written = thread_cpu_ns();
        if (rc != CLEW_OK) {
            logf_(es, CLEW_WAL_LOG_ERROR,
                  "cut: writing block %s failed: %s (%s); the traces "
                  "stay in the head and the WAL",
                  name, clew_strerror(rc), err.msg);
        } else {
            es->next_seq = seq + 1;
            char file[40];
            snprintf(file, sizeof(file), "%s.block", name);
            rc = check_new_block(es, file);
            if (rc == CLEW_OK) {
                pthread_rwlock_wrlock(&es->blocks_lock);
                rc = open_block(es, file, seq);
                pthread_rwlock_unlock(&es->blocks_lock);
            }
        }
    }
    /* the head's copy of what is freed below is what the estimate of decoded bytes per
     * span (compaction's bound) learns from */
    if (rc == CLEW_OK && n_spans > 0) {
        es->bytes_per_span = bytes / n_spans > 0 ? bytes / n_spans : 1;
    }
    /* the block is durable and served: the head copies can go (the query layer would
     * deduplicate them anyway, so no reader sees a gap or a double) */
    for (size_t i = start; i < end && rc == CLEW_OK; i++) {
        if (refs[i].state == CLEW_TRACE_PENDING) {
            continue;
        }
        clew_status r2 = clew__memory_store_remove_trace(es->head, &refs[i].id, refs[i].n_spans);
        if (r2 == CLEW_EBUSY) {
            tot->busy++;
        } else if (r2 == CLEW_OK && refs[i].state == CLEW_TRACE_DROPPED) {
            tot->dropped++;
        }
    }
    for (size_t i = 0; i < n_kept; i++) {
        clew__trace_result_free(copies[i]);
        clew__memory_store_unpin(es->head, pins[i]);
    }
    clew__free(copies);
    clew__free(pins);
    clew__free(bt);
    uint64_t cpu_end = thread_cpu_ns();
    tot->cpu_ns[0] += cpu_copied - cpu_start;
    tot->cpu_ns[1] += cpu_written - cpu_copied;
    tot->cpu_ns[2] += cpu_end - cpu_written;
    if (rc == CLEW_OK && n_kept > 0) {
        tot->blocks++;
        tot->kept += n_kept;
        tot->spans += n_spans;
        if (tot->blocks == 1) {
            snprintf(tot->first, sizeof(tot->first), "%s", name);
        }
        snprintf(tot->last, sizeof(tot->last), "%s", name);
        uint64_t t_end = now_ns();
        if (end < n_refs || tot->blocks > 1) {
            logf_(
                es, CLEW_WAL_LOG_INFO,
                "cut: part %zu: %zu traces (%llu spans, %zu head bytes) into block %s in %.2f s "
                "(copy %.2f s, write %.2f s, read back and swap %.2f s; CPU %.2f + %.2f + %.2f s)",
                tot->blocks, n_kept, (unsigned long long)n_spans, bytes, name,
                (double)(t_end - t_start) / 1e9, (double)(t_copied - t_start) / 1e9,
                (double)(t_written - t_copied) / 1e9, (double)(t_end - t_written) / 1e9,
                (double)(cpu_copied - cpu_start) / 1e9, (double)(cpu_written - cpu_copied) / 1e9,
                (double)(cpu_end - cpu_written) / 1e9);
        }
    }
    if (rc == CLEW_OK) {
        *next = end;
    }
    return rc;
}

/* The cut (docs/internals/embedded.md, "The cut"). Caller holds cut_mu. */
static clew_status cut_locked(embedded_store *es, size_t *out_traces)
{
    if (out_traces != NULL) {
        *out_traces = 0;
    }
    uint64_t seg = 0;
    clew_status rc = clew__wal_rotate(es->wal, &seg);
    if (rc != CLEW_OK) {
        return rc;
    }
    /* Every record before `seg` is durable, but its callback (the head insert) may not
     * have run yet. Callbacks run in append order, so once this marker's has run, every
     * span of the segments before `seg` is in the head. */
    pthread_mutex_lock(&es->mu);
    uint64_t want = es->markers_done + 1;
    pthread_mutex_unlock(&es->mu);
    uint8_t zero = 0;
    /* a full queue (heavy ingest) drains quickly: wait for room rather than give up the
     * cut, which is what frees the head */
    for (int tries = 0;; tries++) {
        rc = clew__wal_append(es->wal, MARKER_TYPE, &zero, 1, on_marker, es);
        if (rc != CLEW_EFULL || tries >= 3000) {
            break;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    pthread_mutex_lock(&es->mu);
    while (es->markers_done < want) {
        pthread_cond_wait(&es->cv, &es->mu);
    }
    pthread_mutex_unlock(&es->mu);

    clew_memory_trace_ref *refs = NULL;
    size_t n_refs = 0;
    rc = clew__memory_store_list_traces(es->head, &refs, &n_refs);
    if (rc != CLEW_OK) {
        return rc;
    }
    /* chunk by chunk, each one a block: a chunk's traces leave the head as soon as their
     * block is served, so a cut never holds a second copy of the whole head */
    cut_totals tot;
    memset(&tot, 0, sizeof(tot));
    size_t next = 0;
    uint64_t t0 = now_ns();
    while (rc == CLEW_OK && next < n_refs) {
        rc = cut_chunk(es, refs, n_refs, &next, &tot);
        if (rc == CLEW_OK && next < n_refs) {
            rc = es->io->crash_point(es->io, "cut.chunk");
        }
    }
    /* The WAL segments go only once EVERY chunk is in a block: a chunk that failed left its
     * traces in the head, and their records are still needed. A failed cut changes no
     * bound either (the blocks written so far are durable; a replay skips their spans). */
    size_t released = 0;
    uint64_t release_below = seg;
    if (rc == CLEW_OK) {
        rc = update_pending_bounds(es, refs, n_refs, seg, &release_below);
    }
    if (rc == CLEW_OK && release_below > 0) {
        rc = clew__wal_release_segments_before(es->wal, release_below, &released);
    }
    if (rc == CLEW_OK && (tot.kept > 0 || tot.dropped > 0 || released > 0)) {
        char blocks[112];
        if (tot.blocks > 1) {
            snprintf(blocks, sizeof(blocks), "%zu blocks %s..%s", tot.blocks, tot.first, tot.last);
        } else {
            snprintf(blocks, sizeof(blocks), "block %s", tot.blocks > 0 ? tot.first : "(none)");
        }
        logf_(es, CLEW_WAL_LOG_INFO,
              "cut: %zu traces (%llu spans) into %s, %zu dropped traces discarded, %zu "
              "kept in the head (%zu pending, %zu still growing), %zu WAL segments released, "
              "in %.2f s (CPU of the chunks: copy %.2f s, block write %.2f s, read-back and swap "
              "%.2f s)",
              tot.kept, (unsigned long long)tot.spans, blocks, tot.dropped, tot.pending + tot.busy,
              tot.pending, tot.busy, released, (double)(now_ns() - t0) / 1e9,
              (double)tot.cpu_ns[0] / 1e9, (double)tot.cpu_ns[1] / 1e9,
              (double)tot.cpu_ns[2] / 1e9);
    } else if (rc != CLEW_OK && tot.blocks > 0) {
        logf_(es, CLEW_WAL_LOG_ERROR,
              "cut: stopped after %zu blocks (%zu traces, %llu spans): %s; the rest stays in "
              "the head, and every WAL segment stays",
              tot.blocks, tot.kept, (unsigned long long)tot.spans, clew_strerror(rc));
    }
    clew__free(refs);
    if (rc == CLEW_OK && out_traces != NULL) {
        *out_traces = tot.kept;
    }
    return rc;
}

clew_status clew__embedded_store_cut(clew_store *s, size_t *out_traces)
{
    embedded_store *es = (embedded_store *)s;
    pthread_mutex_lock(&es->cut_mu);
    clew_status rc = cut_locked(es, out_traces);
    maintain(es);
    clew_status crc = compact(es);
    if (rc == CLEW_OK) {
        rc = crc;
    }
    pthread_mutex_unlock(&es->cut_mu);
    return rc;
}

static size_t head_bytes(embedded_store *es)
{
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    es->head->ops->stats(es->head, &st);
    return (size_t)st.bytes;
}

/* The background thread: wakes every second (or when a query flags a corrupt block), cuts
 * when the block duration has passed or the head holds block_size bytes, and maintains. */
static void *cut_thread(void *arg)
{
    embedded_store *es = arg;
    uint64_t last_cut = now_ns();
    pthread_mutex_lock(&es->mu);
    while (!es->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&es->wake_cv, &es->mu, &ts);
        if (es->stop) {
            break;
        }
        pthread_mutex_unlock(&es->mu);
        bool due = now_ns() - last_cut >= es->block_duration_ns || head_bytes(es) >= es->block_size;
        if (due) {
            size_t n = 0;
            clew_status rc = clew__embedded_store_cut(&es->base, &n);
            if (rc != CLEW_OK) {
                logf_(es, CLEW_WAL_LOG_ERROR, "cut failed: %s", clew_strerror(rc));
            }
            last_cut = now_ns();
        } else {
            pthread_mutex_lock(&es->cut_mu);
            maintain(es);
            pthread_mutex_unlock(&es->cut_mu);
        }
        pthread_mutex_lock(&es->mu);
    }
    pthread_mutex_unlock(&es->mu);
    return NULL;
}

static void es_free(embedded_store *es)
{
    clew__store_destroy(es->head);
    for (size_t i = 0; i < es->n_blocks; i++) {
        blk_free(es->blocks[i]);
    }
    clew__free(es->blocks);
    clew__free(es->bounds);
    clew__free(es->dir);
    pthread_rwlock_destroy(&es->blocks_lock);
    pthread_mutex_destroy(&es->cut_mu);
    pthread_cond_destroy(&es->wake_cv);
    pthread_cond_destroy(&es->cv);
    pthread_mutex_destroy(&es->mu);
    clew__free(es);
}

static void es_destroy(clew_store *s)
{
    embedded_store *es = (embedded_store *)s;
    if (es->thread_started) {
        pthread_mutex_lock(&es->mu);
        es->stop = true;
        pthread_cond_signal(&es->wake_cv);
        pthread_mutex_unlock(&es->mu);
        pthread_join(es->thread, NULL);
        /* graceful shutdown: what the head holds goes into a block, so the next start
         * replays little */
        clew_status rc = clew__embedded_store_cut(s, NULL);
        if (rc != CLEW_OK) {
            logf_(es, CLEW_WAL_LOG_ERROR,
                  "the cut at shutdown failed: %s; the WAL keeps "
                  "everything",
                  clew_strerror(rc));
        }
    }
    /* then the WAL: closing it fires every pending callback, which still needs the head */
    clew_status rc = clew__wal_close(es->wal);
    if (rc != CLEW_OK) {
        logf_(es, CLEW_WAL_LOG_ERROR, "closing the WAL failed: %s", clew_strerror(rc));
    }
    es_free(es);
}

static const clew_store_ops embedded_ops = {
    .name = "embedded",
    .destroy = es_destroy,
    .append = es_append,
    .get_trace = es_get_trace,
    .search = es_search,
    .services = es_services,
    .operations = es_operations,
    .set_trace_meta = es_set_trace_meta,
    .set_observer = es_set_observer,
    .pending_traces = es_pending_traces,
    .stats = es_stats,
};

/* ---- replay ---- */

typedef struct replay_ctx {
    embedded_store *es;
    clew_embedded_replay_stats st;
} replay_ctx;

static clew_status on_replay(void *ud, clew_wal_pos pos, uint8_t type, const uint8_t *payload,
                             size_t len)
{
    replay_ctx *rc_ = ud;
    embedded_store *es = rc_->es;
    rc_->st.records++;
    clew_status rc = CLEW_OK;
    if (type == CLEW_WAL_SPANS) {
        clew_trace_meta meta;
        memset(&meta, 0, sizeof(meta));
        meta.state = CLEW_TRACE_KEPT;
        meta.adjusted_count = 1.0;
        uint64_t n = 0;
        rc = insert_spans(es, payload, len, &meta, &n);
        rc_->st.spans += n;
    } else if (type == CLEW_WAL_DECISION) {
        clew_wal_decision d;
        rc = clew__wal_decision_decode(payload, len, &d);
        if (rc == CLEW_OK) {
            clew_trace_meta meta;
            memset(&meta, 0, sizeof(meta));
            meta.state = d.state == CLEW_WAL_KEPT ? CLEW_TRACE_KEPT : CLEW_TRACE_DROPPED;
            meta.kept_reason = d.reason;
            meta.adjusted_count = d.adjusted_count;
            meta.tenant = d.tenant;
            rc = es->head->ops->set_trace_meta(es->head, &d.trace_id, &meta);
            if (rc == CLEW_ENOTFOUND) {
                /* a decision about a trace whose spans were never acknowledged */
                rc = CLEW_OK;
            }
            rc_->st.decisions++;
        }
    }
    /* other types are from a later version of this store: skipped */
    if (rc == CLEW_ENOMEM) {
        return rc;
    }
    if (rc != CLEW_OK) {
        rc_->st.bad_records++;
        logf_(es, CLEW_WAL_LOG_WARN,
              "WAL segment %llu offset %llu: a record of type %u does not decode (%s); "
              "skipped",
              (unsigned long long)pos.segment, (unsigned long long)pos.offset, type,
              clew_strerror(rc));
    }
    return CLEW_OK;
}

clew_status clew__embedded_store_create(const clew_embedded_store_config *cfg, clew_store **out,
                                        clew_embedded_replay_stats *replay)
{
    if (cfg == NULL || cfg->data_dir == NULL || cfg->data_dir[0] == '\0' || out == NULL) {
        return CLEW_EINVAL;
    }
    embedded_store *es = clew__calloc(1, sizeof(*es));
    if (es == NULL) {
        return CLEW_ENOMEM;
    }
    if (pthread_mutex_init(&es->mu, NULL) != 0) {
        clew__free(es);
        return CLEW_ENOMEM;
    }
    if (pthread_cond_init(&es->cv, NULL) != 0) {
        pthread_mutex_destroy(&es->mu);
        clew__free(es);
        return CLEW_ENOMEM;
    }
    if (pthread_cond_init(&es->wake_cv, NULL) != 0) {
        pthread_cond_destroy(&es->cv);
        pthread_mutex_destroy(&es->mu);
        clew__free(es);
        return CLEW_ENOMEM;
    }
    /* init failures of these two leave them unusable only on exotic systems; the
     * defaults never fail on Linux */
    pthread_mutex_init(&es->cut_mu, NULL);
    pthread_rwlock_init(&es->blocks_lock, NULL);
    es->base.ops = &embedded_ops;
    es->io = cfg->io != NULL ? cfg->io : clew__fileio_posix();
    es->dir = clew__strdup(cfg->data_dir);
    es->block_duration_ns =
        cfg->block_duration_ns ? cfg->block_duration_ns : 5ull * 60u * 1000000000u;
    es->block_size = cfg->block_size ? cfg->block_size : (size_t)256 << 20;
    es->block_max_traces = cfg->block_max_traces ? cfg->block_max_traces : DEFAULT_BLOCK_TRACES;
    es->bytes_per_span = DEFAULT_BYTES_PER_SPAN;
    es->retention_ns = cfg->retention_ns ? cfg->retention_ns : 72ull * 3600u * 1000000000u;
    es->max_disk_bytes = cfg->max_disk_bytes;
    es->index_max_bytes = cfg->index_max_bytes;
    es->compact_min_blocks = cfg->compact_min_blocks ? cfg->compact_min_blocks : 4;
    es->manual_cut = cfg->manual_cut;
    es->next_seq = 1;
    es->head_max_bytes = cfg->head_max_bytes;
    es->log = cfg->log;
    es->log_ud = cfg->log_ud;
    /* no eviction: the head must hold every acknowledged span until blocks exist */
    clew_memory_store_config mc = {SIZE_MAX, 0};
    clew_status rc = es->dir != NULL ? clew__memory_store_create(&mc, &es->head) : CLEW_ENOMEM;
    if (rc != CLEW_OK) {
        es_free(es);
        return rc;
    }
    /* the data dir itself: the WAL creates it too, but the blocks come first */
    if (mkdir(es->dir, 0755) != 0 && errno != EEXIST) {
        es_free(es);
        return CLEW_EIO;
    }
    /* blocks first, so the replay can skip what they already hold */
    es->opening = true;
    rc = load_blocks(es);
    es->opening = false;
    if (rc != CLEW_OK) {
        es_free(es);
        return rc;
    }
    clew_wal_options wo;
    memset(&wo, 0, sizeof(wo));
    wo.io = cfg->io;
    wo.fsync_mode = cfg->fsync_mode;
    wo.fsync_interval_ms = cfg->fsync_interval_ms;
    wo.segment_size = cfg->wal_segment_size;
    wo.max_queue_bytes = cfg->wal_queue_bytes;
    if (wo.max_queue_bytes == 0 && cfg->max_record_bytes > 0) {
        /* the WAL refuses a queue that cannot hold its largest record: room for two */
        size_t need = 2 * cfg->max_record_bytes + 64 * 1024;
        wo.max_queue_bytes = need > DEFAULT_QUEUE ? need : DEFAULT_QUEUE;
    }
    wo.max_record_bytes = cfg->max_record_bytes;
    wo.log = cfg->log;
    wo.log_ud = cfg->log_ud;
    replay_ctx rctx;
    memset(&rctx, 0, sizeof(rctx));
    rctx.es = es;
    uint64_t t0 = now_ns();
    es->replaying = true;
    rc = clew__wal_open(cfg->data_dir, &wo, on_replay, &rctx, &es->wal);
    es->replaying = false;
    if (rc != CLEW_OK) {
        es_free(es);
        return rc;
    }
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    es->head->ops->stats(es->head, &st);
    rctx.st.traces = st.traces;
    rctx.st.dedup_spans = es->dedup_spans;
    rctx.st.blocks = es->n_blocks;
    rctx.st.duration_ns = now_ns() - t0;
    logf_(es, CLEW_WAL_LOG_INFO,
          "replayed the WAL of %s: %llu records, %llu spans, %llu decisions, %llu traces in "
          "the head, %llu bad records skipped, %llu spans already in one of %llu blocks skipped, "
          "in %.3f s",
          cfg->data_dir, (unsigned long long)rctx.st.records, (unsigned long long)rctx.st.spans,
          (unsigned long long)rctx.st.decisions, (unsigned long long)rctx.st.traces,
          (unsigned long long)rctx.st.bad_records, (unsigned long long)rctx.st.dedup_spans,
          (unsigned long long)rctx.st.blocks, (double)rctx.st.duration_ns / 1e9);
    if (replay != NULL) {
        *replay = rctx.st;
    }
    if (!es->manual_cut) {
        if (pthread_create(&es->thread, NULL, cut_thread, es) != 0) {
            clew_status crc = clew__wal_close(es->wal);
            (void)crc;
            es_free(es);
            return CLEW_ENOMEM;
        }
        es->thread_started = true;
    }
    *out = &es->base;
    return CLEW_OK;
}
