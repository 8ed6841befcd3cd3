/*
 * src/server/receiver_otlp_http.h - the OTLP/HTTP trace receiver (POST /v1/traces).
 *
 * Ownership: the receiver borrows the server, store and metrics; they must
 * outlive it. It owns nothing beyond the jobs it has in flight, which the HTTP
 * server answers or cancels before it is destroyed.
 * Thread-safety: the handler runs on the loop thread; its jobs run on workers.
 */
#ifndef CLEW_SERVER_RECEIVER_OTLP_HTTP_H
#define CLEW_SERVER_RECEIVER_OTLP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/http.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "store/store.h"

struct evbuffer;

typedef struct clew_otlp_http_receiver {
    clew_http_server *srv;
    clew_store *store;
    clew_server_metrics *metrics;
    size_t max_body;           /* also the cap on a gunzipped body */
    const clew_limits *limits; /* span limits applied before append; NULL = none */
} clew_otlp_http_receiver;

/* The listener handler: pass the receiver as `ud` to clew__http_listen. */
void clew__otlp_http_handle(struct evhttp_request *req, void *ud);

/* Inflates gzip data (several members allowed) into `out`, never past out->max
 * bytes: CLEW_ETOOBIG past it, CLEW_EPARSE for bad or truncated gzip (msg says
 * which), CLEW_ENOMEM. Any thread. Also used by the gRPC receiver. */
CLEW_NODISCARD clew_status clew__gunzip_capped(const uint8_t *in, size_t len, clew_buf *out,
                                               char *msg, size_t msg_size);

/* ---- the worker half of an ingest request, shared by the HTTP receivers ---- */

#define CLEW_INGEST_BUSY "the server is busy (ingest memory budget exhausted); retry later"

/* A request body made ready for a decoder, and what it charged to the ingest budget. */
typedef struct clew_ingest_input {
    const uint8_t *data; /* the body (linearized) or its gunzipped copy in w->scratch */
    size_t len;
    uint64_t reserved;   /* bytes charged here (gunzipped copy + arena); the caller releases them */
    uint64_t arena_want; /* decode arena wanted: 16 x len + 1 MiB */
    uint64_t arena_got;  /* what the budget gave; w->arena.limit is set to it */
} clew_ingest_input;

/*
 * On a worker: linearizes *body, gunzips it when `gzip` (capped at max_body; then
 * *body is freed and set to NULL), charges the gunzipped size and the decode
 * arena's limit to the ingest budget and sets w->arena.limit. Returns 0 when the
 * input is ready, else the HTTP status to answer (400 bad gzip, 413 over
 * max_body, 429 budget exhausted, 500 out of memory) with a sentence in msg. In
 * both cases in->reserved holds what was charged.
 */
int clew__ingest_prepare(clew_http_worker *w, struct evbuffer **body, bool gzip, size_t max_body,
                         clew_server_metrics *m, clew_ingest_input *in, char *msg, size_t msg_size);

/*
 * The two steps of clew__ingest_prepare, for a receiver whose input is already one
 * linear buffer (the gRPC receiver's message):
 * clew__ingest_gunzip inflates data into w->scratch, capped at max_out, and charges
 * its size to the ingest budget (in->reserved); on success in->data and in->len name
 * the result. Returns 0, or 400 bad gzip, 413 past max_out, 429 budget exhausted,
 * 500 out of memory, with a sentence in msg.
 * clew__ingest_reserve_arena charges the decode arena for in->len plain bytes
 * (in->arena_want, in->arena_got, in->reserved) and sets w->arena.limit. Returns 0
 * or 429 with msg.
 */
int clew__ingest_gunzip(clew_http_worker *w, const uint8_t *data, size_t len, size_t max_out,
                        clew_server_metrics *m, clew_ingest_input *in, char *msg, size_t msg_size);
int clew__ingest_reserve_arena(clew_http_worker *w, clew_server_metrics *m, clew_ingest_input *in,
                               char *msg, size_t msg_size);

/* After a decoder returned CLEW_ETOOBIG on the prepared input: 429 when the budget
 * (not the request) was the limit, so the same request fits another time; else 413. */
int clew__ingest_toobig_code(const clew_ingest_input *in, const clew_server_metrics *m);

/* After a decode: counts the batch's spans (valid and rejected) as received by
 * receiver r in format fmt, and its invalid-id rejections. */
void clew__ingest_count(clew_server_metrics *m, clew_metric_receiver r, clew_metric_format fmt,
                        const clew_batch *b);

/* The partial-success message of a batch with rejected spans: its reject reason, or
 * a count. Writes nothing when the batch rejected no span. */
void clew__ingest_reject_msg(const clew_batch *b, char *msg, size_t msg_size);

/* Moves what a decoded batch points into out of the worker and into a job that holds the
 * batch until the store calls back (clew_trace_meta.batch_held): the decode arena into
 * *arena, and when `gunzipped` the gunzip buffer into *scratch. The worker gets a fresh
 * arena and, for its next gzip input, a head start of up to 4 MiB on its buffer (as if it
 * had kept it); a failure to reserve only loses the head start. */
void clew__ingest_hold(clew_http_worker *w, bool gunzipped, clew_arena *arena, clew_buf *scratch);

/* Hands a decoded batch to the store as a kept trace (a tail-sampling store wrapper makes it
 * pending). `as_received` (may be NULL) is the protobuf request the batch was decoded from,
 * given only when decoding it again gives exactly the batch (nothing rejected, no limit
 * applied): the store may log those bytes instead of encoding the batch. `held`: the caller
 * keeps the batch and what it points into until cb has run (clew_trace_meta.batch_held).
 * Same contract as the store's append: cb runs exactly once iff CLEW_OK. */
CLEW_NODISCARD clew_status clew__ingest_append(clew_store *s, const clew_batch *b,
                                               const uint8_t *as_received, size_t as_received_len,
                                               bool held, clew_append_cb cb, void *ud);

/* Whether header value v has the media type `type`: leading blanks and parameters
 * (after ';') ignored, compared case-insensitively ("application/json; charset=utf-8"
 * is application/json). */
bool clew__media_is(const char *v, const char *type);

#endif /* CLEW_SERVER_RECEIVER_OTLP_HTTP_H */
