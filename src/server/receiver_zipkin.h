/*
 * src/server/receiver_zipkin.h - the Zipkin receiver: POST /api/v2/spans (and
 * /api/v1/spans) with Zipkin JSON, default port 9411 (docs/api.md).
 *
 * It follows the OTLP/HTTP receiver's request path (http.h worker pool, ingest
 * budget, gunzip cap, limits, store append, answer once the store called back),
 * with Zipkin's answers: 202 and no body once stored; 400 with a plain-text
 * message saying what and where; 415; 429/503 with Retry-After. Zipkin has no
 * partial-success answer: spans with invalid ids are dropped one by one, the rest
 * are stored and the request still gets 202; the drops show on /metrics.
 *
 * Ownership: borrows the server, store, metrics and limits; they must outlive it.
 * Thread-safety: the handler runs on the loop thread; its jobs run on workers.
 */
#ifndef CLEW_SERVER_RECEIVER_ZIPKIN_H
#define CLEW_SERVER_RECEIVER_ZIPKIN_H

#include <stddef.h>

#include "server/http.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "store/store.h"

typedef struct clew_zipkin_receiver {
    clew_http_server *srv;
    clew_store *store;
    clew_server_metrics *metrics;
    const clew_limits *limits; /* may be NULL: no limits */
    size_t max_body;           /* also the cap on a gunzipped body */
} clew_zipkin_receiver;

/* The listener handler: pass the receiver as `ud` to clew__http_listen. */
void clew__zipkin_handle(struct evhttp_request *req, void *ud);

#endif /* CLEW_SERVER_RECEIVER_ZIPKIN_H */
