/*
 * src/server/receiver_otlp_grpc.c - OTLP/gRPC: TraceService/Export over HTTP/2
 * cleartext (prior knowledge), see receiver_otlp_grpc.h and docs/internals/grpc.md.
 *
 * nghttp2 does the HTTP/2 protocol (framing, HPACK, flow control, PING, SETTINGS,
 * GOAWAY); this file moves bytes between it and a libevent bufferevent and maps
 * streams onto the server's worker pool:
 *
 *   loop thread   HEADERS: check method, :path, content-type, grpc-encoding.
 *                 DATA: the gRPC framing parser (grpc_frame.c) splits the body;
 *                 the one message is copied into the stream's buffer, its
 *                 declared length charged to the ingest budget first. A second
 *                 message, a message over the limit or a budget that is full
 *                 ends the call: the buffer is dropped at once, the error answer
 *                 goes out at END_STREAM. END_STREAM: the buffer moves into a job.
 *   worker        gunzip (capped), decode into the worker's arena, append.
 *   store         calls back when the batch is durable (any thread).
 *   loop thread   done(): answer HEADERS + message + trailers (or trailers only
 *                 for an error), give the budget back.
 *
 * The job holds the batch until the store calls back (meta.batch_held), as the
 * OTLP/HTTP receiver does: the worker's arena (and gunzip buffer) move into the job
 * before the append and the message stays with it, so the embedded store can put the
 * spans into its head from this very batch once its WAL record is durable. The budget
 * charged for the gunzipped copy and the arena moves into the job with them and is
 * given back in done(). A message that the decoder and the span limits left as it was
 * goes to the store as its own bytes too (meta.otlp_pb), which the WAL record is then
 * made of, instead of an encoding of the batch.
 *
 * A stream the client resets, or a connection that closes, while its job is in
 * the pool: the stream is freed and the job's stream pointer cleared (both on the
 * loop thread, so no lock); the job keeps a reference on the connection struct,
 * whose nghttp2 session and bufferevent are freed at once. done() then only
 * releases the budget and drops that reference.
 */
#include "server/receiver_otlp_grpc.h"
#include "server/limits.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "server/grpc_frame.h"
#include "server/receiver_otlp_http.h"

static const char METHOD_PATH[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/* Streams a client may open at once on one connection (SETTINGS). */
#define MAX_CONCURRENT_STREAMS 100
/* Flow-control windows we grant: large enough that a 4 MiB export is not paced
 * by WINDOW_UPDATE round trips; every byte received is charged to the budget. */
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW   (16 << 20)

/* gRPC status codes we answer with */
enum {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
};

typedef struct grpc_stream grpc_stream;
typedef struct grpc_job grpc_job;

struct grpc_conn {
    clew_otlp_grpc_receiver *rx;
    grpc_conn *prev, *next; /* in rx->conns while open */
    struct bufferevent *bev;
    nghttp2_session *session;
    grpc_stream *streams; /* open streams (doubly linked) */
    unsigned refs;        /* jobs in the pool that point here */
    bool closed;          /* session and bufferevent are gone */
    bool goaway_sent;
    bool close_after_write;
    bool doomed; /* protocol error: close once the output is written, streams or not */
};

struct grpc_stream {
    grpc_conn *conn;
    grpc_stream *prev, *next;
    int32_t id;
    uint64_t t0_ns;
    size_t header_bytes;
    bool post, path_ok, ct_ok, enc_gzip, enc_bad;
    char path[96]; /* for the UNIMPLEMENTED message */
    char enc[32];
    clew_grpc_frame_parser parser;
    clew_buf msg;      /* the request message as received */
    bool compressed;   /* its flag */
    uint64_t reserved; /* budget charged for msg */
    bool answered;     /* a response was submitted; later DATA is dropped */
    bool after_stop;   /* opened after shutdown began: answered UNAVAILABLE */
    bool remote_done;  /* the client's END_STREAM arrived */
    bool deferred;     /* an error answer waits for the client's END_STREAM */
    int http_status;   /* non-zero: that error answer is plain HTTP, not gRPC */
    bool holding;      /* holds the shutdown drain until answered or handed to a job */
    grpc_job *job;     /* in the pool; NULL otherwise */
    /* the response: framed message, then trailers */
    clew_buf resp;
    size_t resp_off;
    int code;
    char status_msg[400];
};

struct grpc_job {
    clew_http_job base; /* first: the pool hands us a clew_http_job * */
    clew_otlp_grpc_receiver *rx;
    grpc_conn *conn;     /* referenced (conn->refs) */
    grpc_stream *stream; /* NULL once the stream is gone */
    clew_buf msg;        /* the message as received; freed early once gunzipped */
    bool compressed;
    uint64_t reserved; /* bytes charged to the ingest budget, released in done() */
    /* what the store may read until it calls back (see the top of the file) */
    clew_batch batch;
    clew_arena arena; /* the worker's arena, moved here; zero until then */
    clew_buf scratch; /* the gunzipped message, moved here; zero until then */
    uint64_t n_spans;
    uint64_t rejected;
    int code; /* non-zero: the worker decided (an error) */
    clew_status append_rc;
    char msg_text[320];
};

static void conn_flush(grpc_conn *c);
static void conn_close(grpc_conn *c);
static void stream_unhold(grpc_stream *st);

static clew_server_metrics *metrics_of(grpc_conn *c)
{
    return c->rx->metrics;
}

/* ---- answers (loop thread) ---- */

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

static void count_call(clew_otlp_grpc_receiver *rx, int code, int http_status, uint64_t t0_ns)
{
    if (code >= 0 && code < CLEW_GRPC_N_STATUS) {
        atomic_fetch_add_explicit(&rx->metrics->grpc_calls[code], 1, memory_order_relaxed);
    }
    clew__metrics_request(rx->metrics, CLEW_RECV_OTLP_GRPC, http_status);
    if (t0_ns != 0) {
        clew__metrics_observe(rx->metrics, CLEW_RECV_OTLP_GRPC, clew__now_mono_ns() - t0_ns);
    }
}

/* A call that was in flight when shutdown began keeps the drain waiting until it
 * is answered or becomes a job (which the drain waits for anyway). */
static void stream_unhold(grpc_stream *st)
{
    if (st->holding) {
        st->holding = false;
        clew__http_hold(st->conn->rx->srv, false);
    }
}

static void set_status(grpc_stream *st, int code, const char *msg)
{
    st->code = code;
    (void)clew__grpc_percent_encode(msg, strlen(msg), st->status_msg, sizeof(st->status_msg));
}

/* Submits the error answer decided earlier (st->http_status, st->code, st->status_msg). */
static void send_error(grpc_stream *st)
{
    grpc_conn *c = st->conn;
    int rc;
    if (st->http_status != 0) {
        /* not gRPC at all (wrong method or content-type): the gRPC spec asks for a plain
         * 415 there, so that a non-gRPC client does not read a gRPC error's 200 as success */
        char code[8];
        snprintf(code, sizeof(code), "%d", st->http_status);
        nghttp2_nv hdrs[] = {NV(":status", code), NV("content-type", "text/plain; charset=utf-8"),
                             NV("x-clew-error", st->status_msg)};
        rc = nghttp2_submit_response(c->session, st->id, hdrs, 3, NULL);
        clew__metrics_request(c->rx->metrics, CLEW_RECV_OTLP_GRPC, st->http_status);
    } else {
        /* "Trailers-Only": one HEADERS frame with the status, and END_STREAM */
        char status[8];
        snprintf(status, sizeof(status), "%d", st->code);
        nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                             NV("grpc-accept-encoding", "gzip,identity"), NV("grpc-status", status),
                             NV("grpc-message", st->status_msg)};
        rc = nghttp2_submit_response(c->session, st->id, hdrs, 5, NULL);
        count_call(c->rx, st->code, 200, st->t0_ns);
    }
    if (rc != 0) {
        (void)nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, st->id,
                                        NGHTTP2_INTERNAL_ERROR);
    }
    stream_unhold(st);
}

/*
 * Decides an error answer. The message received so far is dropped (and its
 * budget given back) at once, and so is whatever DATA still comes. The answer
 * itself waits for the client's END_STREAM when the request is not complete yet:
 * answering mid-upload would need RST_STREAM(NO_ERROR) to stop the client, which
 * curl (7.88) reports as an error, and without it curl stalls the stream; gRPC
 * clients are content either way.
 */
static void answer_error_with(grpc_stream *st, int http_status, int code, const char *text)
{
    grpc_conn *c = st->conn;
    st->answered = true;
    st->http_status = http_status;
    set_status(st, code, text);
    clew__buf_deinit(&st->msg);
    clew__metrics_inflight_release(c->rx->metrics, st->reserved);
    st->reserved = 0;
    if (st->remote_done) {
        send_error(st);
    } else {
        st->deferred = true;
    }
}

static void answer_http(grpc_stream *st, int status, const char *text)
{
    answer_error_with(st, status, 0, text);
}

static void answer_error(grpc_stream *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void answer_error(grpc_stream *st, int code, const char *fmt, ...)
{
    char text[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    answer_error_with(st, 0, code, text);
}

/* nghttp2 pulls the response message from here, then we queue the trailers. */
static ssize_t resp_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    (void)ud;
    grpc_stream *st = source->ptr;
    size_t left = st->resp.len - st->resp_off;
    size_t n = left < length ? left : length;
    if (n > 0) {
        memcpy(buf, st->resp.data + st->resp_off, n);
        st->resp_off += n;
    }
    if (st->resp_off == st->resp.len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        char status[8];
        snprintf(status, sizeof(status), "%d", st->code);
        nghttp2_nv tr[] = {NV("grpc-status", status), NV("grpc-message", st->status_msg)};
        if (nghttp2_submit_trailer(session, stream_id, tr, st->status_msg[0] ? 2 : 1) != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

/* Success: HEADERS, one length-prefixed ExportTraceServiceResponse, trailers. */
static void answer_ok(grpc_stream *st, uint64_t rejected, const char *reject_msg)
{
    grpc_conn *c = st->conn;
    clew__buf_reset(&st->resp);
    uint8_t prefix[CLEW_GRPC_PREFIX_LEN] = {0};
    clew_str m = {reject_msg, rejected > 0 ? strlen(reject_msg) : 0};
    clew_status rc = clew__buf_append(&st->resp, prefix, sizeof(prefix));
    if (rc == CLEW_OK) {
        rc = clew__otlp_pb_encode_response(rejected, m, &st->resp);
    }
    if (rc != CLEW_OK || st->resp.len - CLEW_GRPC_PREFIX_LEN > UINT32_MAX) {
        answer_error(st, GRPC_INTERNAL, "cannot encode the response");
        return;
    }
    clew__grpc_frame_prefix((uint8_t *)st->resp.data, false,
                            (uint32_t)(st->resp.len - CLEW_GRPC_PREFIX_LEN));
    st->resp_off = 0;
    set_status(st, GRPC_OK, "");
    nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                         NV("grpc-accept-encoding", "gzip,identity")};
    nghttp2_data_provider dp;
    dp.source.ptr = st;
    dp.read_callback = resp_read;
    st->answered = true;
    stream_unhold(st);
    if (nghttp2_submit_response(c->session, st->id, hdrs, 3, &dp) != 0) {
        (void)nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, st->id,
                                        NGHTTP2_INTERNAL_ERROR);
    }
    count_call(c->rx, GRPC_OK, 200, st->t0_ns);
}

/* ---- streams ---- */

static void stream_free(grpc_stream *st)
{
    grpc_conn *c = st->conn;
    if (st->job != NULL) {
        st->job->stream = NULL; /* the worker's result will be dropped */
    }
    stream_unhold(st);
    if (st->prev != NULL) {
        st->prev->next = st->next;
    } else {
        c->streams = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    }
    clew__metrics_inflight_release(metrics_of(c), st->reserved);
    clew__buf_deinit(&st->msg);
    clew__buf_deinit(&st->resp);
    atomic_fetch_sub_explicit(&metrics_of(c)->grpc_streams, 1, memory_order_relaxed);
    clew__free(st);
}

static grpc_stream *stream_of(grpc_conn *c, int32_t id)
{
    return nghttp2_session_get_stream_user_data(c->session, id);
}

/* ---- jobs ---- */

static void job_free(grpc_job *j)
{
    clew__buf_deinit(&j->msg);
    clew__arena_deinit(&j->arena);
    clew__buf_deinit(&j->scratch);
    clew__free(j);
}

static void job_fail(grpc_job *j, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void job_fail(grpc_job *j, int code, const char *fmt, ...)
{
    j->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->msg_text, sizeof(j->msg_text), fmt, ap);
    va_end(ap);
    clew__http_complete(j->rx->srv, &j->base);
}

static void on_appended(clew_status rc, void *ud)
{
    grpc_job *j = ud;
    j->append_rc = rc;
    clew__http_complete(j->rx->srv, &j->base);
}

/* The work proper. Budget for what lives in the worker (the gunzipped copy, the
 * decode arena) goes to *local and is released by grpc_work when this returns:
 * the worker resets both after every job, and the job itself may already be
 * answered and freed by then, so it must not carry that budget - until both move
 * into the job just before the append, and their budget with them. */
static void grpc_work_inner(grpc_job *j, clew_http_worker *w, uint64_t *local)
{
    clew_otlp_grpc_receiver *rx = j->rx;
    clew_server_metrics *m = rx->metrics;
    clew_ingest_input in;
    memset(&in, 0, sizeof(in));
    in.data = j->msg.data != NULL ? (const uint8_t *)j->msg.data : (const uint8_t *)"";
    in.len = j->msg.len;
    char pmsg[200] = "";
    int code = 0;

    if (j->compressed) {
        code = clew__ingest_gunzip(w, in.data, in.len, rx->max_message, m, &in, pmsg, sizeof(pmsg));
        if (code == 413) {
            job_fail(j, GRPC_RESOURCE_EXHAUSTED,
                     "the gzip message expands past the limit of %zu bytes", rx->max_message);
            return;
        }
        if (code == 400) {
            job_fail(j, GRPC_INTERNAL, "cannot decompress the message: %s", pmsg);
            return;
        }
        if (code == 500) {
            job_fail(j, GRPC_INTERNAL, "out of memory decompressing the message");
            return;
        }
        if (code != 0) {
            job_fail(j, GRPC_UNAVAILABLE, "%s", CLEW_INGEST_BUSY);
            return;
        }
        /* the compressed bytes are not needed any more: give them and their budget back */
        uint64_t clen = j->msg.len;
        clew__buf_deinit(&j->msg);
        clew__metrics_inflight_release(m, clen);
        j->reserved -= clen;
    }

    code = clew__ingest_reserve_arena(w, m, &in, pmsg, sizeof(pmsg));
    *local += in.reserved; /* the gunzipped copy and the arena; 0 when gunzip failed */
    if (code != 0) {
        job_fail(j, GRPC_UNAVAILABLE, "%s", CLEW_INGEST_BUSY);
        return;
    }
    const uint8_t *data = in.data;
    size_t len = in.len;

    clew_batch *batch = &j->batch;
    clew_error err;
    memset(batch, 0, sizeof(*batch));
    memset(&err, 0, sizeof(err));
    clew_status rc = clew__otlp_pb_decode(data, len, &w->arena, batch, &err);
    if (rc == CLEW_EPARSE) {
        job_fail(j, GRPC_INVALID_ARGUMENT, "malformed OTLP protobuf request: %s",
                 err.msg[0] ? err.msg : "bad input");
        return;
    }
    if (rc == CLEW_ETOOBIG) {
        if (clew__ingest_toobig_code(&in, m) == 429) {
            job_fail(j, GRPC_UNAVAILABLE, "%s", CLEW_INGEST_BUSY);
        } else {
            job_fail(j, GRPC_RESOURCE_EXHAUSTED,
                     "the decoded request needs more than %llu bytes of memory",
                     (unsigned long long)in.arena_got);
        }
        return;
    }
    if (rc != CLEW_OK) {
        job_fail(j, GRPC_INTERNAL, "decoding failed: %s", clew_strerror(rc));
        return;
    }
    clew__ingest_count(m, CLEW_RECV_OTLP_GRPC, CLEW_FMT_PROTOBUF, batch);
    bool limited = false;
    if (rx->limits != NULL &&
        clew__limits_apply_changed(rx->limits, batch, &w->arena, &limited) != CLEW_OK) {
        job_fail(j, GRPC_INTERNAL, "applying the span limits failed");
        return;
    }
    j->rejected = batch->rejected;
    j->n_spans = batch->n_spans;
    clew__ingest_reject_msg(batch, j->msg_text, sizeof(j->msg_text));
    if (batch->n_spans == 0) {
        j->append_rc = CLEW_OK;
        clew__http_complete(rx->srv, &j->base);
        return;
    }
    /* the store may read the batch until it calls back, and the job may be answered and
     * freed as soon as it does: everything the batch points into (the arena, the gunzipped
     * message or the message itself) moves into the job first, with its budget, and the
     * job is not touched after append */
    clew__ingest_hold(w, j->compressed, &j->arena, &j->scratch);
    j->reserved += *local;
    *local = 0;
    /* the message's bytes still say exactly what the batch holds unless something was cut */
    bool as_received = batch->rejected == 0 && !limited;
    rc =
        clew__ingest_append(rx->store, batch, as_received ? data : NULL, len, true, on_appended, j);
    if (rc != CLEW_OK) {
        /* the callback will never run: answer here */
        j->append_rc = rc;
        clew__http_complete(rx->srv, &j->base);
    }
}

static void grpc_work(clew_http_job *base, clew_http_worker *w)
{
    grpc_job *j = (grpc_job *)base;
    clew_server_metrics *m = j->rx->metrics;
    uint64_t local = 0;
    grpc_work_inner(j, w, &local); /* j may be freed once this returns */
    clew__metrics_inflight_release(m, local);
}

static void conn_release(grpc_conn *c)
{
    if (c->closed && c->refs == 0) {
        clew__free(c);
    }
}

static void grpc_done(clew_http_job *base)
{
    grpc_job *j = (grpc_job *)base;
    clew_otlp_grpc_receiver *rx = j->rx;
    clew_server_metrics *m = rx->metrics;
    int code = GRPC_OK;
    const char *text = "";
    char store_msg[160];
    if (j->base.cancelled) {
        code = GRPC_UNAVAILABLE;
        text = "the server is shutting down; retry later";
    } else if (j->code != 0) {
        code = j->code;
        text = j->msg_text;
    } else if (j->append_rc == CLEW_OK) {
        atomic_fetch_add_explicit(&m->spans_accepted[CLEW_RECV_OTLP_GRPC], j->n_spans,
                                  memory_order_relaxed);
    } else if (j->append_rc == CLEW_EFULL) {
        clew__metrics_spans_rejected(m, CLEW_RECV_OTLP_GRPC, CLEW_REJECT_BACKPRESSURE, j->n_spans);
        code = GRPC_UNAVAILABLE;
        text = "the store is full; retry later";
    } else {
        clew__metrics_spans_rejected(m, CLEW_RECV_OTLP_GRPC, CLEW_REJECT_STORE_ERROR, j->n_spans);
        snprintf(store_msg, sizeof(store_msg), "the store failed: %s", clew_strerror(j->append_rc));
        code = GRPC_INTERNAL;
        text = store_msg;
    }
    clew__metrics_inflight_release(m, j->reserved);
    atomic_fetch_sub_explicit(&m->inflight_requests, 1, memory_order_relaxed);

    grpc_conn *c = j->conn;
    grpc_stream *st = j->stream;
    c->refs--;
    if (st != NULL && !c->closed) {
        st->job = NULL;
        if (code == GRPC_OK) {
            answer_ok(st, j->rejected, j->msg_text);
        } else {
            answer_error(st, code, "%s", text);
        }
        job_free(j);
        conn_flush(c); /* may close and free c */
        return;
    }
    /* nobody is listening for this answer any more */
    atomic_fetch_add_explicit(&m->grpc_calls[GRPC_CANCELLED], 1, memory_order_relaxed);
    job_free(j);
    conn_release(c);
}

/* The request stream ended: hand its message to the pool. */
static void request_end(grpc_stream *st)
{
    if (st->answered || st->job != NULL) {
        return;
    }
    grpc_conn *c = st->conn;
    clew_otlp_grpc_receiver *rx = c->rx;
    char msg[200];
    if (clew__grpc_frame_finish(&st->parser, msg, sizeof(msg)) != CLEW_OK) {
        answer_error(st, GRPC_INTERNAL, "%s", msg);
        return;
    }
    if (st->parser.messages == 0) {
        answer_error(st, GRPC_INTERNAL, "the call ended without a request message");
        return;
    }
    if (st->after_stop) {
        answer_error(st, GRPC_UNAVAILABLE, "the server is shutting down; retry later");
        return;
    }
    grpc_job *j = clew__calloc(1, sizeof(*j));
    if (j == NULL) {
        answer_error(st, GRPC_UNAVAILABLE, "out of memory; retry later");
        return;
    }
    j->base.work = grpc_work;
    j->base.done = grpc_done;
    j->rx = rx;
    j->conn = c;
    j->stream = st;
    j->msg = st->msg;
    j->compressed = st->compressed;
    j->reserved = st->reserved;
    clew_status rc = clew__http_submit(rx->srv, &j->base);
    if (rc != CLEW_OK) {
        clew__free(j);
        answer_error(st, GRPC_UNAVAILABLE,
                     rc == CLEW_EFULL ? "too many requests waiting for a worker; retry later"
                                      : "the server is shutting down; retry later");
        return;
    }
    /* the job owns the message and its budget now */
    clew__buf_init(&st->msg, 0);
    st->reserved = 0;
    st->job = j;
    stream_unhold(st);
    c->refs++;
    atomic_fetch_add_explicit(&rx->metrics->inflight_requests, 1, memory_order_relaxed);
}

/* ---- nghttp2 callbacks (inside nghttp2_session_mem_recv / mem_send) ---- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    grpc_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    grpc_stream *st = clew__calloc(1, sizeof(*st));
    if (st == NULL) {
        (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                        NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    st->conn = c;
    st->id = frame->hd.stream_id;
    st->t0_ns = clew__now_mono_ns();
    st->after_stop = c->rx->stopping || clew__http_stopping(c->rx->srv);
    st->holding = true;
    clew__http_hold(c->rx->srv, true);
    clew__grpc_frame_init(&st->parser, c->rx->max_message);
    clew__buf_init(&st->msg, c->rx->max_message);
    clew__buf_init(&st->resp, 0);
    st->next = c->streams;
    if (c->streams != NULL) {
        c->streams->prev = st;
    }
    c->streams = st;
    atomic_fetch_add_explicit(&metrics_of(c)->grpc_streams, 1, memory_order_relaxed);
    if (nghttp2_session_set_stream_user_data(session, st->id, st) != 0) {
        stream_free(st);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static bool value_is(const uint8_t *v, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(v, want, len) == 0;
}

/* A header value kept for a message, truncated. nghttp2 has refused NUL, CR and
 * LF in values already; grpc-message's percent-encoding takes care of the rest. */
static void copy_value(char *out, size_t out_size, const uint8_t *v, size_t len)
{
    size_t n = len < out_size - 1 ? len : out_size - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)session;
    (void)flags;
    grpc_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* request trailers carry nothing we use */
    }
    grpc_stream *st = stream_of(c, frame->hd.stream_id);
    if (st == NULL) {
        return 0;
    }
    st->header_bytes += namelen + valuelen + 32;
    if (st->header_bytes > c->rx->max_headers) {
        /* resets the stream (nghttp2 sends RST_STREAM) */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (value_is(name, namelen, ":method")) {
        st->post = value_is(value, valuelen, "POST");
    } else if (value_is(name, namelen, ":path")) {
        st->path_ok = value_is(value, valuelen, METHOD_PATH);
        copy_value(st->path, sizeof(st->path), value, valuelen);
    } else if (value_is(name, namelen, "content-type")) {
        /* application/grpc, application/grpc+proto, application/grpc;... */
        static const char CT[] = "application/grpc";
        size_t n = sizeof(CT) - 1;
        st->ct_ok = valuelen >= n && strncasecmp((const char *)value, CT, n) == 0 &&
                    (valuelen == n || value[n] == '+' || value[n] == ';');
    } else if (value_is(name, namelen, "grpc-encoding")) {
        st->enc_gzip = value_is(value, valuelen, "gzip");
        st->enc_bad = !st->enc_gzip && !value_is(value, valuelen, "identity");
        copy_value(st->enc, sizeof(st->enc), value, valuelen);
    }
    return 0;
}

/* The request's headers are complete: everything that can be refused before the
 * body is refused here. */
static void headers_done(grpc_stream *st)
{
    if (!st->post) {
        answer_http(st, 405, "gRPC calls use POST");
    } else if (!st->ct_ok) {
        answer_http(st, 415, "content-type must be application/grpc");
    } else if (!st->path_ok) {
        answer_error(st, GRPC_UNIMPLEMENTED,
                     "unknown method %s; this server implements "
                     "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                     st->path);
    } else if (st->enc_bad) {
        answer_error(st, GRPC_UNIMPLEMENTED,
                     "grpc-encoding '%s' is not supported; use gzip or identity", st->enc);
    } else if (st->after_stop) {
        answer_error(st, GRPC_UNAVAILABLE, "the server is shutting down; retry later");
    }
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    (void)session;
    grpc_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    grpc_stream *st = stream_of(c, frame->hd.stream_id);
    if (st == NULL) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        headers_done(st);
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        st->remote_done = true;
        if (st->deferred) {
            st->deferred = false;
            send_error(st);
        } else {
            request_end(st);
        }
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    (void)session;
    (void)flags;
    grpc_conn *c = ud;
    grpc_stream *st = stream_of(c, stream_id);
    if (st == NULL || st->answered || st->job != NULL) {
        return 0; /* dropped; nghttp2 still credits the flow-control window */
    }
    clew_server_metrics *m = metrics_of(c);
    atomic_fetch_add_explicit(&m->bytes_received[CLEW_RECV_OTLP_GRPC], len, memory_order_relaxed);
    clew_grpc_frame_out ev;
    memset(&ev, 0, sizeof(ev));
    do {
        size_t used = 0;
        char msg[200];
        clew_status rc =
            clew__grpc_frame_feed(&st->parser, data, len, &used, &ev, msg, sizeof(msg));
        if (rc == CLEW_ETOOBIG) {
            answer_error(st, GRPC_RESOURCE_EXHAUSTED, "%s", msg);
            return 0;
        }
        if (rc != CLEW_OK) {
            answer_error(st, GRPC_INTERNAL, "%s", msg);
            return 0;
        }
        data += used;
        len -= used;
        if (ev.ev == CLEW_GRPC_EV_PREFIX) {
            if (st->parser.messages > 0) {
                answer_error(st, GRPC_INTERNAL,
                             "TraceService/Export is unary: the call sent more than one message");
                return 0;
            }
            if (ev.compressed && !st->enc_gzip) {
                answer_error(st, GRPC_INTERNAL,
                             "the message is compressed but grpc-encoding is not gzip");
                return 0;
            }
            /* the declared length is charged before any byte is kept, so a stream
             * can never buffer more than the budget allows */
            if (!clew__metrics_inflight_reserve(m, ev.length)) {
                answer_error(st, GRPC_UNAVAILABLE, "%s", CLEW_INGEST_BUSY);
                return 0;
            }
            st->reserved += ev.length;
            st->compressed = ev.compressed;
            if (clew__buf_reserve(&st->msg, ev.length) != CLEW_OK) {
                answer_error(st, GRPC_UNAVAILABLE, "out of memory; retry later");
                return 0;
            }
        } else if (ev.ev == CLEW_GRPC_EV_DATA) {
            if (clew__buf_append(&st->msg, ev.data, ev.data_len) != CLEW_OK) {
                answer_error(st, GRPC_UNAVAILABLE, "out of memory; retry later");
                return 0;
            }
        }
    } while (len > 0 || ev.ev != CLEW_GRPC_EV_NONE);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    (void)error_code;
    grpc_conn *c = ud;
    if (c->closed) {
        return 0;
    }
    grpc_stream *st = stream_of(c, stream_id);
    if (st == NULL) {
        return 0;
    }
    (void)nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_free(st);
    return 0;
}

/* ---- connections (loop thread) ---- */

static void conn_close(grpc_conn *c)
{
    if (c->closed) {
        return;
    }
    c->closed = true;
    clew_otlp_grpc_receiver *rx = c->rx;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        rx->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    /* c->closed makes the callbacks nghttp2 may run while deleting no-ops */
    nghttp2_session_del(c->session);
    c->session = NULL;
    while (c->streams != NULL) {
        stream_free(c->streams);
    }
    bufferevent_free(c->bev);
    c->bev = NULL;
    atomic_fetch_sub_explicit(&rx->metrics->grpc_connections, 1, memory_order_relaxed);
    conn_release(c);
}

/* Writes whatever nghttp2 has queued; closes the connection when the session is
 * finished. May free c. */
static void conn_flush(grpc_conn *c)
{
    if (c->closed) {
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (;;) {
            const uint8_t *out = NULL;
            ssize_t n = nghttp2_session_mem_send(c->session, &out);
            if (n < 0) {
                conn_close(c);
                return;
            }
            if (n == 0) {
                break;
            }
            if (bufferevent_write(c->bev, out, (size_t)n) != 0) {
                conn_close(c);
                return;
            }
        }
        /* shutting down: once the streams in flight are answered, the final GOAWAY */
        if (pass == 0 && c->rx->stopping && !c->goaway_sent && c->streams == NULL) {
            c->goaway_sent = true;
            c->close_after_write = true;
            (void)nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                        nghttp2_session_get_last_proc_stream_id(c->session),
                                        NGHTTP2_NO_ERROR, NULL, 0);
            continue;
        }
        break;
    }
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
        c->close_after_write = true;
    }
    if (c->close_after_write && (c->streams == NULL || c->doomed) &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_close(c);
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    grpc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    while (!c->closed && (len = evbuffer_get_length(in)) > 0) {
        size_t n = (size_t)evbuffer_get_contiguous_space(in);
        if (n == 0 || n > len) {
            n = len;
        }
        const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)n);
        if (data == NULL) {
            conn_close(c);
            return;
        }
        ssize_t used = nghttp2_session_mem_recv(c->session, data, n);
        if (used < 0) {
            /* not HTTP/2 (e.g. an HTTP/1.1 client) or a protocol error: nghttp2
             * has queued a GOAWAY where it could; send it and hang up */
            c->close_after_write = true;
            c->doomed = true;
            evbuffer_drain(in, len);
            break;
        }
        evbuffer_drain(in, n);
    }
    conn_flush(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    grpc_conn *c = arg;
    if (c->close_after_write && (c->streams == NULL || c->doomed)) {
        conn_close(c);
    }
}

static bool conn_has_jobs(const grpc_conn *c)
{
    for (const grpc_stream *st = c->streams; st != NULL; st = st->next) {
        if (st->job != NULL) {
            return true;
        }
    }
    return false;
}

/* EOF, error or timeout. A timeout with a half-sent call (a client that stalls
 * mid-message, holding budget) closes the connection. */
static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    grpc_conn *c = arg;
    if ((what & BEV_EVENT_TIMEOUT) != 0 && conn_has_jobs(c) && !c->closed) {
        /* idle on the wire, but calls are in the pool: keep waiting for them */
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) != 0 && c->streams == NULL && !c->goaway_sent && !c->closed) {
        /* idle: say goodbye politely so the client reconnects without an error */
        c->goaway_sent = true;
        c->close_after_write = true;
        (void)nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                    nghttp2_session_get_last_proc_stream_id(c->session),
                                    NGHTTP2_NO_ERROR, NULL, 0);
        bufferevent_enable(bev, EV_WRITE);
        conn_flush(c);
        return;
    }
    conn_close(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    clew_otlp_grpc_receiver *rx = arg;
    if (rx->max_connections != 0 &&
        atomic_load_explicit(&rx->metrics->grpc_connections, memory_order_relaxed) >=
            rx->max_connections) {
        /* over --max-connections: close at once, like the HTTP listeners */
        atomic_fetch_add_explicit(&rx->metrics->grpc_connections_refused, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    grpc_conn *c = clew__calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cbs = NULL;
    if (c == NULL || nghttp2_session_callbacks_new(&cbs) != 0) {
        clew__free(c);
        close(fd);
        return;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    c->rx = rx;
    int nrc = nghttp2_session_server_new(&c->session, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    c->bev = nrc == 0 ? bufferevent_socket_new(clew__http_base(rx->srv), fd, BEV_OPT_CLOSE_ON_FREE)
                      : NULL;
    if (c->bev == NULL) {
        if (c->session != NULL) {
            nghttp2_session_del(c->session);
        }
        clew__free(c);
        close(fd);
        return;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)rx->max_headers},
    };
    (void)nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    (void)nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    c->next = rx->conns;
    if (rx->conns != NULL) {
        rx->conns->prev = c;
    }
    rx->conns = c;
    atomic_fetch_add_explicit(&rx->metrics->grpc_connections, 1, memory_order_relaxed);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    uint64_t t = rx->idle_timeout_ns;
    struct timeval tv = {(time_t)(t / 1000000000u), (suseconds_t)((t % 1000000000u) / 1000u)};
    bufferevent_set_timeouts(c->bev, t > 0 ? &tv : NULL, t > 0 ? &tv : NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_flush(c); /* our SETTINGS */
}

/* ---- lifecycle ---- */

clew_status clew__otlp_grpc_listen(clew_otlp_grpc_receiver *rx, const clew_listen_addr *addr,
                                   uint16_t *port_out, char *err, size_t err_size)
{
    int fd = clew__http_open_socket(addr, err, err_size);
    if (fd < 0) {
        return CLEW_EIO;
    }
    /* backlog 0: the socket is listening already */
    rx->listener = evconnlistener_new(clew__http_base(rx->srv), accept_cb, rx,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (rx->listener == NULL) {
        close(fd);
        snprintf(err, err_size, "cannot accept on the listening socket");
        return CLEW_EIO;
    }
    if (port_out != NULL) {
        *port_out = clew__http_bound_port(fd);
    }
    return CLEW_OK;
}

void clew__otlp_grpc_stop(clew_otlp_grpc_receiver *rx)
{
    if (rx->stopping) {
        return;
    }
    rx->stopping = true;
    if (rx->listener != NULL) {
        evconnlistener_free(rx->listener);
        rx->listener = NULL;
    }
    grpc_conn *c = rx->conns;
    while (c != NULL) {
        grpc_conn *next = c->next;
        /* a GOAWAY with the highest stream id: "finish what you sent, send no
         * more"; the final GOAWAY follows in conn_flush once the streams are done */
        (void)nghttp2_submit_shutdown_notice(c->session);
        conn_flush(c);
        c = next;
    }
}

void clew__otlp_grpc_close(clew_otlp_grpc_receiver *rx)
{
    rx->stopping = true;
    if (rx->listener != NULL) {
        evconnlistener_free(rx->listener);
        rx->listener = NULL;
    }
    while (rx->conns != NULL) {
        conn_close(rx->conns);
    }
}
