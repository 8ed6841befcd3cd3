/*
 * src/store/embedded/embedded_store.c - the durable embedded store, first version:
 * WAL + head + replay (docs/internals/embedded.md).
 *
 * The head IS a memory store created without eviction (no trace cap, no byte cap): it
 * already has the indexes, search, deduplication and interning the head needs. This file
 * adds durability in front of it:
 *   - append encodes the batch as OTLP protobuf into a SPANS WAL record and returns; the
 *     WAL's completion callback (on its writer thread) decodes that record again, inserts
 *     the spans into the head and only then calls the caller's callback with CLEW_OK. So a
 *     span is never visible, nor acknowledged, before the WAL says it is durable as the
 *     fsync mode promises, and a query never sees a span a crash could take back.
 *   - set_trace_meta writes a DECISION record, then applies it to the head.
 *   - open replays every record into the head in WAL order.
 * Decoding on completion (rather than cloning the batch in append) keeps a single copy of
 * each pending batch, the one the WAL record is made of, and makes the live path and the
 * replay path insert exactly the same thing.
 *
 * The head's budget counts the head's span bytes plus the batches waiting on the WAL; an
 * append past it gets CLEW_EFULL (the receivers answer 429) instead of growing without
 * bound. TODO(blocks): cutting the head into block files (block.h), then releasing WAL
 * segments, is the next step; until then everything stays in the WAL and the head.
 *
 * Locking: the head locks itself; `mu` guards only the pending byte count.
 */
#include "store/embedded/embedded_store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/error.h"

#define DECODE_CHUNK   (64u * 1024u)
#define MAX_TENANT_LEN 65535u /* the SPANS and DECISION payloads store a u16 length */
#define MAX_REASON_LEN 65535u
#define DEFAULT_QUEUE  ((size_t)64 << 20) /* the WAL's own default queue */

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
} embedded_store;

/* One append waiting on the WAL. The payload is the WAL record (tenant + OTLP bytes);
 * kept_reason is copied after the struct. */
typedef struct pending {
    embedded_store *es;
    clew_append_cb cb;
    void *ud;
    uint8_t *payload;
    size_t len;
    clew_trace_state state;
    double adjusted_count;
    size_t reason_len;
    char reason[];
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

/* Decodes a SPANS payload and inserts its spans into the head with `meta` (whose tenant
 * is replaced by the record's). *n_spans (may be NULL) gets the number of spans decoded.
 * CLEW_EPARSE for a payload that does not decode. */
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
    if (encoding != CLEW_WAL_SPANS_OTLP_PB) {
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
        if (n_spans != NULL) {
            *n_spans = batch.n_spans;
        }
        rc = es->head->ops->append(es->head, &batch, &meta, NULL, NULL);
    } else if (rc != CLEW_ENOMEM) {
        rc = CLEW_EPARSE;
    }
    clew__arena_deinit(&arena);
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
        meta.kept_reason = (clew_str){p->reason, p->reason_len};
        status = insert_spans(es, p->payload, p->len, &meta, NULL);
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
    clew_buf buf;
    clew__buf_init(&buf, 0);
    clew_status rc = clew__otlp_pb_encode(b, &buf);
    uint8_t *payload = NULL;
    size_t len = 0;
    if (rc == CLEW_OK) {
        rc = clew__wal_spans_encode(tenant, CLEW_WAL_SPANS_OTLP_PB, buf.data, buf.len, &payload,
                                    &len);
    }
    clew__buf_deinit(&buf);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (over_budget(es, len)) {
        clew__free(payload);
        if (cb != NULL) {
            cb(CLEW_EFULL, ud);
        }
        return CLEW_OK;
    }
    pending *p = clew__calloc(1, sizeof(*p) + reason.len + 1);
    if (p == NULL) {
        clew__free(payload);
        return CLEW_ENOMEM;
    }
    p->es = es;
    p->cb = cb;
    p->ud = ud;
    p->payload = payload;
    p->len = len;
    p->state = meta ? meta->state : CLEW_TRACE_KEPT;
    p->adjusted_count = meta ? meta->adjusted_count : 1.0;
    p->reason_len = reason.len;
    if (reason.len > 0) {
        memcpy(p->reason, reason.ptr, reason.len);
    }
    pthread_mutex_lock(&es->mu);
    if (es->closing) {
        pthread_mutex_unlock(&es->mu);
        clew__free(payload);
        clew__free(p);
        return CLEW_ECLOSED;
    }
    es->pending_bytes += len;
    es->n_pending++;
    pthread_mutex_unlock(&es->mu);
    /* the WAL copies the payload; ours stays with `p` to be decoded on completion */
    rc = clew__wal_append(es->wal, CLEW_WAL_SPANS, payload, len, on_wal_done, p);
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

static clew_status es_get_trace(clew_store *s, const clew_trace_id *id, clew_trace_result **out)
{
    embedded_store *es = (embedded_store *)s;
    return es->head->ops->get_trace(es->head, id, out);
}

static clew_status es_search(clew_store *s, const clew_search_query *q, clew_search_result **out)
{
    embedded_store *es = (embedded_store *)s;
    return es->head->ops->search(es->head, q, out);
}

static clew_status es_services(clew_store *s, clew_name_list **out)
{
    embedded_store *es = (embedded_store *)s;
    return es->head->ops->services(es->head, out);
}

static clew_status es_operations(clew_store *s, clew_str service, clew_span_kind kind,
                                 clew_name_list **out)
{
    embedded_store *es = (embedded_store *)s;
    return es->head->ops->operations(es->head, service, kind, out);
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

static void es_stats(clew_store *s, clew_store_stats *out)
{
    embedded_store *es = (embedded_store *)s;
    es->head->ops->stats(es->head, out);
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

static void es_free(embedded_store *es)
{
    clew__store_destroy(es->head);
    pthread_cond_destroy(&es->cv);
    pthread_mutex_destroy(&es->mu);
    clew__free(es);
}

static void es_destroy(clew_store *s)
{
    embedded_store *es = (embedded_store *)s;
    /* first the WAL: closing it fires every pending callback, which still needs the head */
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
    es->base.ops = &embedded_ops;
    es->head_max_bytes = cfg->head_max_bytes;
    es->log = cfg->log;
    es->log_ud = cfg->log_ud;
    /* no eviction: the head must hold every acknowledged span until blocks exist */
    clew_memory_store_config mc = {SIZE_MAX, 0};
    clew_status rc = clew__memory_store_create(&mc, &es->head);
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
    rc = clew__wal_open(cfg->data_dir, &wo, on_replay, &rctx, &es->wal);
    if (rc != CLEW_OK) {
        es_free(es);
        return rc;
    }
    clew_store_stats st;
    memset(&st, 0, sizeof(st));
    es->head->ops->stats(es->head, &st);
    rctx.st.traces = st.traces;
    rctx.st.duration_ns = now_ns() - t0;
    logf_(es, CLEW_WAL_LOG_INFO,
          "replayed the WAL of %s: %llu records, %llu spans, %llu decisions, %llu traces in "
          "the head, %llu bad records skipped, in %.3f s",
          cfg->data_dir, (unsigned long long)rctx.st.records, (unsigned long long)rctx.st.spans,
          (unsigned long long)rctx.st.decisions, (unsigned long long)rctx.st.traces,
          (unsigned long long)rctx.st.bad_records, (double)rctx.st.duration_ns / 1e9);
    if (replay != NULL) {
        *replay = rctx.st;
    }
    *out = &es->base;
    return CLEW_OK;
}
