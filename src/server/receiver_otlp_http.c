/*
 * src/server/receiver_otlp_http.c - POST /v1/traces (wire.md §4.1).
 *
 * Request lifecycle:
 *   loop thread   route, method, Content-Type, Content-Encoding (cheap 4xx here),
 *                 charge the body to the ingest budget (429 when it does not fit),
 *                 move the body's evbuffer chains into the job (no copy), submit.
 *   worker        linearize the body (the one copy, skipped when it is already one
 *                 chunk), gunzip with a hard output cap, decode into the worker's
 *                 arena, append to the store.
 *   store         calls back once the batch may be acknowledged (any thread).
 *   loop thread   encode the answer in the request's content type and reply, give
 *                 the budget back.
 * Nothing here allocates per span: the decoded batch lives in the worker's arena.
 *
 * The job holds the batch until the store calls back (meta.batch_held): the worker's
 * arena (and gunzip buffer) move into the job before the append, and the body stays
 * with it, so the embedded store can put the spans into its head from this very batch
 * once its WAL record is durable instead of decoding the record a second time. The
 * ingest budget charged for the body and the arena is given back only when the job
 * ends, so it already covered that. A protobuf request that the decoder and the span
 * limits left as it was goes to the store as its own bytes too (meta.otlp_pb), which
 * the WAL record is then made of, instead of an encoding of the batch.
 */
#include "server/receiver_otlp_http.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/clock.h"

#define MIB ((uint64_t)1024 * 1024)

/*
 * Decode arena limit: 16 bytes of decoded model per byte of (plain) body, plus
 * 1 MiB. The smallest valid protobuf span is about 30 bytes on the wire (two ids
 * and the framing) and becomes a ~200-byte clew_span_data: 6.7x; arrays that grow
 * by doubling can waste up to 2x more, so 16x covers any valid request while a
 * hostile one (a body of empty attributes) hits a hard stop instead of the heap.
 * The limit is also charged to the ingest budget, so it can be smaller when the
 * server is busy; see decode failure handling below.
 */
#define ARENA_FACTOR 16
#define ARENA_BASE   MIB
/* the gunzip buffer a worker keeps between jobs at most (as http.c does) */
#define SCRATCH_KEEP ((size_t)4 * MIB)

/* google.rpc.Code values used in Status bodies */
enum {
    RPC_INVALID_ARGUMENT = 3,
    RPC_NOT_FOUND = 5,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_UNIMPLEMENTED = 12,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
};

typedef struct otlp_job {
    clew_http_job base; /* first: the HTTP layer hands us a clew_http_job * */
    clew_otlp_http_receiver *rx;
    struct evhttp_request *req;
    struct evbuffer *body; /* owned; NULL once consumed */
    const char *ctype;     /* answer in the request's content type */
    bool json;
    bool gzip;
    uint64_t t0_ns;
    uint64_t reserved; /* bytes charged to the ingest budget, released in done() */
    /* what the store may read until it calls back (see the top of the file) */
    clew_batch batch;
    clew_arena arena;  /* the worker's arena, moved here; zero until then */
    clew_buf scratch;  /* the gunzipped body, moved here; zero until then */
    uint64_t n_spans;  /* valid spans handed to the store */
    uint64_t rejected; /* spans the decoder refused */
    int http_code;     /* non-zero: the worker decided the answer (error) */
    int32_t rpc_code;
    clew_status append_rc;
    char msg[320];
} otlp_job;

static const char CT_JSON[] = "application/json";
static const char CT_PB[] = "application/x-protobuf";
static const char CT_PB2[] = "application/protobuf";

/* ---- replies ---- */

static void finish(clew_otlp_http_receiver *rx, uint64_t t0_ns, int code)
{
    clew__metrics_request(rx->metrics, CLEW_RECV_OTLP_HTTP, code);
    clew__metrics_duration(rx->metrics, clew__now_mono_ns() - t0_ns);
}

/* A google.rpc.Status answer, in JSON or protobuf. */
static void reply_status(clew_otlp_http_receiver *rx, struct evhttp_request *req, uint64_t t0_ns,
                         int http_code, bool json, const char *ctype, int32_t rpc_code,
                         const char *msg)
{
    clew_buf b;
    clew__buf_init(&b, 64 * 1024);
    clew_str m = {msg, strlen(msg)};
    clew_status rc = json ? clew__rpc_status_json_encode(rpc_code, m, &b)
                          : clew__rpc_status_pb_encode(rpc_code, m, &b);
    if (http_code == 429 || http_code == 503) {
        clew__http_add_header(req, "Retry-After", "1");
    }
    if (rc == CLEW_OK) {
        clew__http_reply_buf(req, http_code, ctype, &b);
    } else {
        clew__http_reply(req, http_code, "text/plain; charset=utf-8", msg, strlen(msg));
    }
    clew__buf_deinit(&b);
    finish(rx, t0_ns, http_code);
}

/* ---- content negotiation ---- */

bool clew__media_is(const char *v, const char *type)
{
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    size_t n = strlen(type);
    if (strncasecmp(v, type, n) != 0) {
        return false;
    }
    const char *p = v + n;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return *p == '\0' || *p == ';';
}

/* ---- gunzip with a hard output cap (shared with the gRPC receiver) ---- */

clew_status clew__gunzip_capped(const uint8_t *in, size_t len, clew_buf *out, char *msg,
                                size_t msg_size)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 16 + MAX_WBITS: gzip framing only, as Content-Encoding: gzip promises */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        return CLEW_ENOMEM;
    }
    clew_status rc = CLEW_OK;
    size_t in_left = len;
    zs.next_in = (Bytef *)(uintptr_t)in;
    for (;;) {
        if (zs.avail_in == 0 && in_left > 0) {
            uInt take = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            zs.avail_in = take;
            in_left -= take;
        }
        if (out->cap <= out->len + 1 || out->len == out->max) {
            size_t room = out->max - out->len;
            if (room == 0) {
                snprintf(msg, msg_size, "the gzip body expands past the request limit of %zu bytes",
                         out->max);
                rc = CLEW_ETOOBIG;
                break;
            }
            size_t grow = out->len < 65536 ? 65536 : out->len; /* doubling */
            rc = clew__buf_reserve(out, grow < room ? grow : room);
            if (rc != CLEW_OK) {
                break;
            }
        }
        /* the buffer may have grown past max (it doubles): never write beyond max */
        size_t space = out->cap - out->len - 1;
        if (space > out->max - out->len) {
            space = out->max - out->len;
        }
        zs.next_out = (Bytef *)out->data + out->len;
        zs.avail_out = space > UINT_MAX ? UINT_MAX : (uInt)space;
        uInt before = zs.avail_out;
        int z = inflate(&zs, Z_NO_FLUSH);
        out->len += before - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (zs.avail_in == 0 && in_left == 0) {
                break;
            }
            /* another gzip member follows (concatenated files are valid gzip) */
            if (inflateReset(&zs) != Z_OK) {
                rc = CLEW_ENOMEM;
                break;
            }
            continue;
        }
        if (z == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) {
            snprintf(msg, msg_size, "the gzip body is truncated (after %zu bytes)", len);
            rc = CLEW_EPARSE;
            break;
        }
        if (z == Z_MEM_ERROR) {
            rc = CLEW_ENOMEM;
            break;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            snprintf(msg, msg_size, "the body is not valid gzip: %s at byte %zu",
                     zs.msg ? zs.msg : "corrupt data", len - in_left - zs.avail_in);
            rc = CLEW_EPARSE;
            break;
        }
    }
    inflateEnd(&zs);
    if (out->data != NULL) {
        out->data[out->len] = '\0';
    }
    return rc;
}

/* ---- the ingest path shared with the Zipkin and gRPC receivers ---- */

int clew__ingest_gunzip(clew_http_worker *w, const uint8_t *data, size_t len, size_t max_out,
                        clew_server_metrics *m, clew_ingest_input *in, char *msg, size_t msg_size)
{
    w->scratch.max = max_out;
    clew_status rc = clew__gunzip_capped(data, len, &w->scratch, msg, msg_size);
    if (rc == CLEW_ETOOBIG || rc == CLEW_EPARSE) {
        return rc == CLEW_ETOOBIG ? 413 : 400;
    }
    if (rc != CLEW_OK) {
        snprintf(msg, msg_size, "out of memory decompressing the body");
        return 500;
    }
    if (!clew__metrics_inflight_reserve(m, w->scratch.len)) {
        snprintf(msg, msg_size, "%s", CLEW_INGEST_BUSY);
        return 429;
    }
    in->reserved += w->scratch.len;
    in->data = w->scratch.data != NULL ? (const uint8_t *)w->scratch.data : (const uint8_t *)"";
    in->len = w->scratch.len;
    return 0;
}

void clew__ingest_hold(clew_http_worker *w, bool gunzipped, clew_arena *arena, clew_buf *scratch)
{
    *arena = w->arena;
    clew__arena_init(&w->arena, arena->chunk_size, 0);
    if (gunzipped) {
        *scratch = w->scratch;
        clew__buf_init(&w->scratch, 0);
        /* without the head start the next gzip input would double its buffer up from
         * nothing */
        size_t keep = scratch->cap < SCRATCH_KEEP ? scratch->cap : SCRATCH_KEEP;
        clew_status rc = keep > 1 ? clew__buf_reserve(&w->scratch, keep - 1) : CLEW_OK;
        (void)rc;
    }
}

int clew__ingest_reserve_arena(clew_http_worker *w, clew_server_metrics *m, clew_ingest_input *in,
                               char *msg, size_t msg_size)
{
    in->arena_want = (uint64_t)in->len * ARENA_FACTOR + ARENA_BASE;
    if (!clew__metrics_inflight_reserve_upto(m, in->arena_want, ARENA_BASE, &in->arena_got)) {
        snprintf(msg, msg_size, "%s", CLEW_INGEST_BUSY);
        return 429;
    }
    in->reserved += in->arena_got;
    w->arena.limit = w->arena.held + (size_t)in->arena_got;
    return 0;
}

int clew__ingest_prepare(clew_http_worker *w, struct evbuffer **body, bool gzip, size_t max_body,
                         clew_server_metrics *m, clew_ingest_input *in, char *msg, size_t msg_size)
{
    memset(in, 0, sizeof(*in));
    in->len = evbuffer_get_length(*body);
    in->data = (const uint8_t *)"";
    if (in->len > 0) {
        /* the body's only copy, and none when libevent read it into one chunk */
        in->data = evbuffer_pullup(*body, -1);
        if (in->data == NULL) {
            snprintf(msg, msg_size, "out of memory reading the body");
            return 500;
        }
    }
    if (gzip) {
        int code = clew__ingest_gunzip(w, in->data, in->len, max_body, m, in, msg, msg_size);
        if (code != 0) {
            return code;
        }
        /* the compressed bytes are not needed any more: give them back early */
        evbuffer_free(*body);
        *body = NULL;
    }
    return clew__ingest_reserve_arena(w, m, in, msg, msg_size);
}

void clew__ingest_count(clew_server_metrics *m, clew_metric_receiver r, clew_metric_format fmt,
                        const clew_batch *b)
{
    atomic_fetch_add_explicit(&m->spans_received[r][fmt], b->n_spans + b->rejected,
                              memory_order_relaxed);
    clew__metrics_spans_rejected(m, r, CLEW_REJECT_INVALID_ID, b->rejected);
}

void clew__ingest_reject_msg(const clew_batch *b, char *msg, size_t msg_size)
{
    if (b->rejected == 0) {
        return;
    }
    if (b->reject_reason.len > 0) {
        snprintf(msg, msg_size, "%.*s", (int)b->reject_reason.len, b->reject_reason.ptr);
    } else {
        snprintf(msg, msg_size, "%llu spans had invalid ids", (unsigned long long)b->rejected);
    }
}

clew_status clew__ingest_append(clew_store *s, const clew_batch *b, const uint8_t *as_received,
                                size_t as_received_len, bool held, clew_append_cb cb, void *ud)
{
    clew_trace_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.state = CLEW_TRACE_KEPT;
    meta.adjusted_count = 1.0;
    meta.batch_held = held;
    meta.otlp_pb = as_received;
    meta.otlp_pb_len = as_received != NULL ? as_received_len : 0;
    return s->ops->append(s, b, &meta, cb, ud);
}

int clew__ingest_toobig_code(const clew_ingest_input *in, const clew_server_metrics *m)
{
    /* the budget, not the request, was the limit: another time it fits */
    return in->arena_got < in->arena_want && in->arena_got < m->budgets.ingest / 2 ? 429 : 413;
}

/* ---- the job ---- */

static void job_free(otlp_job *j)
{
    if (j->body != NULL) {
        evbuffer_free(j->body);
    }
    clew__arena_deinit(&j->arena);
    clew__buf_deinit(&j->scratch);
    clew__free(j);
}

static void job_fail(otlp_job *j, int http_code, int32_t rpc_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void job_fail(otlp_job *j, int http_code, int32_t rpc_code, const char *fmt, ...)
{
    j->http_code = http_code;
    j->rpc_code = rpc_code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->msg, sizeof(j->msg), fmt, ap);
    va_end(ap);
    clew__http_complete(j->rx->srv, &j->base);
}

static void on_appended(clew_status rc, void *ud)
{
    otlp_job *j = ud;
    j->append_rc = rc;
    clew__http_complete(j->rx->srv, &j->base);
}

static void otlp_work(clew_http_job *base, clew_http_worker *w)
{
    otlp_job *j = (otlp_job *)base;
    clew_otlp_http_receiver *rx = j->rx;
    clew_server_metrics *m = rx->metrics;

    clew_ingest_input in;
    char pmsg[200] = "";
    int code = clew__ingest_prepare(w, &j->body, j->gzip, rx->max_body, m, &in, pmsg, sizeof(pmsg));
    j->reserved += in.reserved;
    if (code != 0) {
        job_fail(j, code,
                 code == 429   ? RPC_RESOURCE_EXHAUSTED
                 : code == 500 ? RPC_INTERNAL
                               : RPC_INVALID_ARGUMENT,
                 "%s", pmsg);
        return;
    }
    const uint8_t *data = in.data;
    size_t len = in.len;

    clew_batch *batch = &j->batch;
    clew_error err;
    memset(batch, 0, sizeof(*batch));
    memset(&err, 0, sizeof(err));
    clew_status rc = j->json
                         ? clew__otlp_json_decode((const char *)data, len, &w->arena, batch, &err)
                         : clew__otlp_pb_decode(data, len, &w->arena, batch, &err);
    if (rc == CLEW_EPARSE) {
        /* the decoder's message already says where */
        job_fail(j, 400, RPC_INVALID_ARGUMENT, "malformed %s request: %s",
                 j->json ? "OTLP/JSON" : "OTLP protobuf", err.msg[0] ? err.msg : "bad input");
        return;
    }
    if (rc == CLEW_ETOOBIG) {
        if (clew__ingest_toobig_code(&in, m) == 429) {
            job_fail(j, 429, RPC_RESOURCE_EXHAUSTED, "%s", CLEW_INGEST_BUSY);
        } else {
            job_fail(j, 413, RPC_INVALID_ARGUMENT,
                     "the decoded request needs more than %llu bytes of memory",
                     (unsigned long long)in.arena_got);
        }
        return;
    }
    if (rc != CLEW_OK) {
        job_fail(j, 500, RPC_INTERNAL, "decoding failed: %s", clew_strerror(rc));
        return;
    }
    bool limited = false;
    if (rx->limits != NULL &&
        clew__limits_apply_changed(rx->limits, batch, &w->arena, &limited) != CLEW_OK) {
        job_fail(j, 500, RPC_INTERNAL, "applying the span limits failed");
        return;
    }
    /* the request's bytes still say exactly what the batch holds */
    bool as_received = !j->json && batch->rejected == 0 && !limited;

    clew__ingest_count(m, CLEW_RECV_OTLP_HTTP, j->json ? CLEW_FMT_JSON : CLEW_FMT_PROTOBUF, batch);
    j->rejected = batch->rejected;
    j->n_spans = batch->n_spans;
    clew__ingest_reject_msg(batch, j->msg, sizeof(j->msg));
    if (batch->n_spans == 0) {
        j->append_rc = CLEW_OK;
        clew__http_complete(rx->srv, &j->base);
        return;
    }
    /* the store may read the batch until it calls back, and the job may be answered and
     * freed as soon as it does: everything the batch points into (the arena, the gunzipped
     * body, the body) moves into the job first, and the job is not touched after append */
    clew__ingest_hold(w, j->gzip, &j->arena, &j->scratch);
    rc =
        clew__ingest_append(rx->store, batch, as_received ? data : NULL, len, true, on_appended, j);
    if (rc != CLEW_OK) {
        /* the callback will never run: answer here */
        j->append_rc = rc;
        clew__http_complete(rx->srv, &j->base);
    }
}

static void otlp_done(clew_http_job *base)
{
    otlp_job *j = (otlp_job *)base;
    clew_otlp_http_receiver *rx = j->rx;
    clew_server_metrics *m = rx->metrics;
    if (j->base.cancelled) {
        reply_status(rx, j->req, j->t0_ns, 503, j->json, j->ctype, RPC_UNAVAILABLE,
                     "the server is shutting down; retry later");
    } else if (j->http_code != 0) {
        reply_status(rx, j->req, j->t0_ns, j->http_code, j->json, j->ctype, j->rpc_code, j->msg);
    } else if (j->append_rc == CLEW_OK) {
        atomic_fetch_add_explicit(&m->spans_accepted[CLEW_RECV_OTLP_HTTP], j->n_spans,
                                  memory_order_relaxed);
        clew_buf b;
        clew__buf_init(&b, 64 * 1024);
        clew_str msg = {j->msg, j->rejected > 0 ? strlen(j->msg) : 0};
        clew_status rc = j->json ? clew__otlp_json_encode_response(j->rejected, msg, &b)
                                 : clew__otlp_pb_encode_response(j->rejected, msg, &b);
        if (rc == CLEW_OK) {
            clew__http_reply_buf(j->req, 200, j->ctype, &b);
            finish(rx, j->t0_ns, 200);
        } else {
            reply_status(rx, j->req, j->t0_ns, 500, j->json, j->ctype, RPC_INTERNAL,
                         "cannot encode the response");
        }
        clew__buf_deinit(&b);
    } else if (j->append_rc == CLEW_EFULL) {
        clew__metrics_spans_rejected(m, CLEW_RECV_OTLP_HTTP, CLEW_REJECT_BACKPRESSURE, j->n_spans);
        reply_status(rx, j->req, j->t0_ns, 429, j->json, j->ctype, RPC_RESOURCE_EXHAUSTED,
                     "the store is full; retry later");
    } else {
        clew__metrics_spans_rejected(m, CLEW_RECV_OTLP_HTTP, CLEW_REJECT_STORE_ERROR, j->n_spans);
        char msg[160];
        snprintf(msg, sizeof(msg), "the store failed: %s", clew_strerror(j->append_rc));
        reply_status(rx, j->req, j->t0_ns, 500, j->json, j->ctype, RPC_INTERNAL, msg);
    }
    clew__metrics_inflight_release(m, j->reserved);
    atomic_fetch_sub_explicit(&m->inflight_requests, 1, memory_order_relaxed);
    job_free(j);
}

/* ---- the handler (loop thread) ---- */

void clew__otlp_http_handle(struct evhttp_request *req, void *ud)
{
    clew_otlp_http_receiver *rx = ud;
    uint64_t t0 = clew__now_mono_ns();
    clew_str path, query;
    clew__http_split_uri(req, &path, &query);
    if (!(path.len == 10 && memcmp(path.ptr, "/v1/traces", 10) == 0)) {
        reply_status(rx, req, t0, 404, true, CT_JSON, RPC_NOT_FOUND,
                     "unknown path; OTLP/HTTP traces go to POST /v1/traces");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *ct = evhttp_find_header(h, "Content-Type");
    bool json;
    const char *ctype;
    if (ct != NULL && clew__media_is(ct, CT_JSON)) {
        json = true;
        ctype = CT_JSON;
    } else if (ct != NULL && clew__media_is(ct, CT_PB)) {
        json = false;
        ctype = CT_PB;
    } else if (ct != NULL && clew__media_is(ct, CT_PB2)) {
        json = false;
        ctype = CT_PB2;
    } else {
        json = true;
        ctype = CT_JSON;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        clew__http_add_header(req, "Allow", "POST");
        reply_status(rx, req, t0, 405, json, ctype, RPC_UNIMPLEMENTED,
                     "/v1/traces only takes POST");
        return;
    }
    if (ct == NULL || (json && !clew__media_is(ct, CT_JSON))) {
        char msg[200];
        char shown[64];
        snprintf(shown, sizeof(shown), "%s", ct ? ct : "");
        for (char *p = shown; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                *p = '?';
            }
        }
        snprintf(msg, sizeof(msg),
                 ct ? "Content-Type '%s' is not supported; send application/x-protobuf or "
                      "application/json"
                    : "Content-Type is missing%s; send application/x-protobuf or "
                      "application/json",
                 shown);
        reply_status(rx, req, t0, 415, true, CT_JSON, RPC_INVALID_ARGUMENT, msg);
        return;
    }
    const char *ce = evhttp_find_header(h, "Content-Encoding");
    bool gzip = false;
    if (ce != NULL && clew__media_is(ce, "gzip")) {
        gzip = true;
    } else if (ce != NULL && !clew__media_is(ce, "identity") && ce[0] != '\0') {
        reply_status(rx, req, t0, 415, json, ctype, RPC_INVALID_ARGUMENT,
                     "Content-Encoding is not supported; send gzip or identity");
        return;
    }
    if (clew__http_stopping(rx->srv)) {
        reply_status(rx, req, t0, 503, json, ctype, RPC_UNAVAILABLE,
                     "the server is shutting down; retry later");
        return;
    }
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(input);
    atomic_fetch_add_explicit(&rx->metrics->bytes_received[CLEW_RECV_OTLP_HTTP], len,
                              memory_order_relaxed);
    if (!clew__metrics_inflight_reserve(rx->metrics, len)) {
        reply_status(rx, req, t0, 429, json, ctype, RPC_RESOURCE_EXHAUSTED,
                     "the server is busy (ingest memory budget exhausted); retry later");
        return;
    }
    otlp_job *j = clew__calloc(1, sizeof(*j));
    struct evbuffer *body = j != NULL ? evbuffer_new() : NULL;
    if (body == NULL || evbuffer_add_buffer(body, input) != 0) {
        if (body != NULL) {
            evbuffer_free(body);
        }
        clew__free(j);
        clew__metrics_inflight_release(rx->metrics, len);
        reply_status(rx, req, t0, 500, json, ctype, RPC_INTERNAL, "out of memory");
        return;
    }
    j->base.work = otlp_work;
    j->base.done = otlp_done;
    j->rx = rx;
    j->req = req;
    j->body = body;
    j->ctype = ctype;
    j->json = json;
    j->gzip = gzip;
    j->t0_ns = t0;
    j->reserved = len;
    clew_status rc = clew__http_submit(rx->srv, &j->base);
    if (rc != CLEW_OK) {
        clew__metrics_inflight_release(rx->metrics, len);
        job_free(j);
        if (rc == CLEW_EFULL) {
            reply_status(rx, req, t0, 429, json, ctype, RPC_RESOURCE_EXHAUSTED,
                         "too many requests waiting for a worker; retry later");
        } else {
            reply_status(rx, req, t0, 503, json, ctype, RPC_UNAVAILABLE,
                         "the server is shutting down; retry later");
        }
        return;
    }
    atomic_fetch_add_explicit(&rx->metrics->inflight_requests, 1, memory_order_relaxed);
}
