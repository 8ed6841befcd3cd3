/*
 * src/server/receiver_zipkin.c - POST /api/v2/spans and /api/v1/spans (Zipkin
 * JSON); see receiver_zipkin.h.
 *
 * Request lifecycle (the OTLP/HTTP receiver's, see receiver_otlp_http.c):
 *   loop thread   route, method, Content-Type, Content-Encoding (cheap 4xx here),
 *                 charge the body to the ingest budget (429 when it does not fit),
 *                 move the body into the job, submit (429 when the queue is full).
 *   worker        clew__ingest_prepare (shared with OTLP/HTTP: linearize, gunzip
 *                 with the body cap, charge the copy and the decode arena's limit
 *                 to the budget), decode into the worker's arena, apply the
 *                 ingest limits, append to the store.
 *   store         calls back once the batch may be acknowledged (any thread).
 *   loop thread   reply 202 (or the error), give the budget back.
 * Zipkin JSON is decoded with copies into the arena, so the body is freed before
 * the append.
 */
#include "server/receiver_zipkin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "codec/zipkin.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "server/receiver_otlp_http.h"

static const char CT_TEXT[] = "text/plain; charset=utf-8";

typedef struct zipkin_job {
    clew_http_job base; /* first: the HTTP layer hands us a clew_http_job * */
    clew_zipkin_receiver *rx;
    struct evhttp_request *req;
    struct evbuffer *body; /* owned; NULL once consumed */
    bool v1;
    bool gzip;
    uint64_t t0_ns;
    uint64_t reserved; /* bytes charged to the ingest budget, released in done() */
    uint64_t n_spans;  /* valid spans handed to the store */
    int http_code;     /* non-zero: the worker decided the answer (error) */
    clew_status append_rc;
    char msg[400];
} zipkin_job;

/* ---- replies ---- */

static void finish(clew_zipkin_receiver *rx, uint64_t t0_ns, int code)
{
    clew__metrics_request(rx->metrics, CLEW_RECV_ZIPKIN, code);
    clew__metrics_observe(rx->metrics, CLEW_RECV_ZIPKIN, clew__now_mono_ns() - t0_ns);
}

/* Zipkin's own server answers errors in plain text; so do we, one line. */
static void reply_text(clew_zipkin_receiver *rx, struct evhttp_request *req, uint64_t t0_ns,
                       int code, const char *msg)
{
    char line[sizeof(((zipkin_job *)0)->msg) + 2];
    int n = snprintf(line, sizeof(line), "%s\n", msg);
    if (n < 0) {
        n = 0;
    }
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
    }
    if (code == 429 || code == 503) {
        clew__http_add_header(req, "Retry-After", "1");
    }
    clew__http_reply(req, code, CT_TEXT, line, (size_t)n);
    finish(rx, t0_ns, code);
}

/* ---- the job ---- */

static void job_free(zipkin_job *j)
{
    if (j->body != NULL) {
        evbuffer_free(j->body);
    }
    clew__free(j);
}

static void job_fail(zipkin_job *j, int http_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void job_fail(zipkin_job *j, int http_code, const char *fmt, ...)
{
    j->http_code = http_code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->msg, sizeof(j->msg), fmt, ap);
    va_end(ap);
    clew__http_complete(j->rx->srv, &j->base);
}

static void on_appended(clew_status rc, void *ud)
{
    zipkin_job *j = ud;
    j->append_rc = rc;
    clew__http_complete(j->rx->srv, &j->base);
}

static void zipkin_work(clew_http_job *base, clew_http_worker *w)
{
    zipkin_job *j = (zipkin_job *)base;
    clew_zipkin_receiver *rx = j->rx;
    clew_server_metrics *m = rx->metrics;

    clew_ingest_input in;
    char pmsg[200] = "";
    int code = clew__ingest_prepare(w, &j->body, j->gzip, rx->max_body, m, &in, pmsg, sizeof(pmsg));
    j->reserved += in.reserved;
    if (code != 0) {
        job_fail(j, code, "%s", pmsg);
        return;
    }
    const char *data = (const char *)in.data;
    size_t len = in.len;

    clew_batch batch;
    clew_error err;
    memset(&batch, 0, sizeof(batch));
    memset(&err, 0, sizeof(err));
    clew_status rc = j->v1 ? clew__zipkin_v1_decode(data, len, &w->arena, &batch, &err)
                           : clew__zipkin_v2_decode(data, len, &w->arena, &batch, &err);
    if (rc == CLEW_EPARSE) {
        job_fail(j, 400, "malformed Zipkin %s JSON: %s", j->v1 ? "v1" : "v2",
                 err.msg[0] ? err.msg : "bad input");
        return;
    }
    if (rc == CLEW_ETOOBIG) {
        if (clew__ingest_toobig_code(&in, m) == 429) {
            job_fail(j, 429, "%s", CLEW_INGEST_BUSY);
        } else {
            job_fail(j, 413, "the decoded request needs more than %llu bytes of memory",
                     (unsigned long long)in.arena_got);
        }
        return;
    }
    if (rc != CLEW_OK) {
        job_fail(j, 500, "decoding failed: %s", clew_strerror(rc));
        return;
    }
    /* the decoder copied what it kept: the body can go before the append */
    if (j->body != NULL) {
        evbuffer_free(j->body);
        j->body = NULL;
    }
    if (rx->limits != NULL) {
        rc = clew__limits_apply(rx->limits, &batch, &w->arena);
        if (rc != CLEW_OK) {
            job_fail(j, 500, "applying the span limits failed: %s", clew_strerror(rc));
            return;
        }
    }

    clew__ingest_count(m, CLEW_RECV_ZIPKIN, CLEW_FMT_JSON, &batch);
    j->n_spans = batch.n_spans;
    if (batch.n_spans == 0) {
        j->append_rc = CLEW_OK;
        clew__http_complete(rx->srv, &j->base);
        return;
    }
    rc = clew__ingest_append(rx->store, &batch, NULL, 0, false, on_appended, j);
    if (rc != CLEW_OK) {
        /* the callback will never run: answer here */
        j->append_rc = rc;
        clew__http_complete(rx->srv, &j->base);
    }
}

static void zipkin_done(clew_http_job *base)
{
    zipkin_job *j = (zipkin_job *)base;
    clew_zipkin_receiver *rx = j->rx;
    clew_server_metrics *m = rx->metrics;
    if (j->base.cancelled) {
        reply_text(rx, j->req, j->t0_ns, 503, "the server is shutting down; retry later");
    } else if (j->http_code != 0) {
        reply_text(rx, j->req, j->t0_ns, j->http_code, j->msg);
    } else if (j->append_rc == CLEW_OK) {
        atomic_fetch_add_explicit(&m->spans_accepted[CLEW_RECV_ZIPKIN], j->n_spans,
                                  memory_order_relaxed);
        clew__http_reply(j->req, 202, NULL, NULL, 0);
        finish(rx, j->t0_ns, 202);
    } else if (j->append_rc == CLEW_EFULL) {
        clew__metrics_spans_rejected(m, CLEW_RECV_ZIPKIN, CLEW_REJECT_BACKPRESSURE, j->n_spans);
        reply_text(rx, j->req, j->t0_ns, 429, "the store is full; retry later");
    } else {
        clew__metrics_spans_rejected(m, CLEW_RECV_ZIPKIN, CLEW_REJECT_STORE_ERROR, j->n_spans);
        char msg[160];
        snprintf(msg, sizeof(msg), "the store failed: %s", clew_strerror(j->append_rc));
        reply_text(rx, j->req, j->t0_ns, 500, msg);
    }
    clew__metrics_inflight_release(m, j->reserved);
    atomic_fetch_sub_explicit(&m->inflight_requests, 1, memory_order_relaxed);
    job_free(j);
}

/* ---- the handler (loop thread) ---- */

static bool path_is(clew_str path, const char *want)
{
    size_t n = strlen(want);
    /* a trailing slash is tolerated: some clients add one */
    return (path.len == n || (path.len == n + 1 && path.ptr[n] == '/')) &&
           memcmp(path.ptr, want, n) == 0;
}

void clew__zipkin_handle(struct evhttp_request *req, void *ud)
{
    clew_zipkin_receiver *rx = ud;
    uint64_t t0 = clew__now_mono_ns();
    clew_str path, query;
    clew__http_split_uri(req, &path, &query);
    bool v2 = path_is(path, "/api/v2/spans");
    bool v1 = !v2 && path_is(path, "/api/v1/spans");
    if (!v1 && !v2) {
        reply_text(rx, req, t0, 404,
                   "unknown path; Zipkin spans go to POST /api/v2/spans (JSON v2) or "
                   "/api/v1/spans (JSON v1)");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        clew__http_add_header(req, "Allow", "POST");
        reply_text(rx, req, t0, 405,
                   v2 ? "/api/v2/spans only takes POST" : "/api/v1/spans only takes POST");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *ct = evhttp_find_header(h, "Content-Type");
    /* no Content-Type is read as JSON, as Zipkin's own collector does */
    if (ct != NULL && !clew__media_is(ct, "application/json")) {
        char shown[64];
        snprintf(shown, sizeof(shown), "%s", ct);
        for (char *p = shown; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                *p = '?';
            }
        }
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "Content-Type '%s' is not supported: only Zipkin JSON (application/json) is "
                 "accepted here (no protobuf or thrift)%s",
                 shown, v1 ? "; Zipkin v2 JSON on /api/v2/spans is preferred" : "");
        reply_text(rx, req, t0, 415, msg);
        return;
    }
    const char *ce = evhttp_find_header(h, "Content-Encoding");
    bool gzip = false;
    if (ce != NULL && clew__media_is(ce, "gzip")) {
        gzip = true;
    } else if (ce != NULL && !clew__media_is(ce, "identity") && ce[0] != '\0') {
        reply_text(rx, req, t0, 415, "Content-Encoding is not supported; send gzip or identity");
        return;
    }
    if (clew__http_stopping(rx->srv)) {
        reply_text(rx, req, t0, 503, "the server is shutting down; retry later");
        return;
    }
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(input);
    atomic_fetch_add_explicit(&rx->metrics->bytes_received[CLEW_RECV_ZIPKIN], len,
                              memory_order_relaxed);
    if (!clew__metrics_inflight_reserve(rx->metrics, len)) {
        reply_text(rx, req, t0, 429, CLEW_INGEST_BUSY);
        return;
    }
    zipkin_job *j = clew__calloc(1, sizeof(*j));
    struct evbuffer *body = j != NULL ? evbuffer_new() : NULL;
    if (body == NULL || evbuffer_add_buffer(body, input) != 0) {
        if (body != NULL) {
            evbuffer_free(body);
        }
        clew__free(j);
        clew__metrics_inflight_release(rx->metrics, len);
        reply_text(rx, req, t0, 500, "out of memory");
        return;
    }
    j->base.work = zipkin_work;
    j->base.done = zipkin_done;
    j->rx = rx;
    j->req = req;
    j->body = body;
    j->v1 = v1;
    j->gzip = gzip;
    j->t0_ns = t0;
    j->reserved = len;
    clew_status rc = clew__http_submit(rx->srv, &j->base);
    if (rc != CLEW_OK) {
        clew__metrics_inflight_release(rx->metrics, len);
        job_free(j);
        if (rc == CLEW_EFULL) {
            reply_text(rx, req, t0, 429, "too many requests waiting for a worker; retry later");
        } else {
            reply_text(rx, req, t0, 503, "the server is shutting down; retry later");
        }
        return;
    }
    atomic_fetch_add_explicit(&rx->metrics->inflight_requests, 1, memory_order_relaxed);
}
