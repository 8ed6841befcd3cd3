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

#include <stddef.h>

#include "server/http.h"
#include "server/metrics.h"
#include "store/store.h"

typedef struct clew_otlp_http_receiver {
    clew_http_server *srv;
    clew_store *store;
    clew_server_metrics *metrics;
    size_t max_body; /* also the cap on a gunzipped body */
} clew_otlp_http_receiver;

/* The listener handler: pass the receiver as `ud` to clew__http_listen. */
void clew__otlp_http_handle(struct evhttp_request *req, void *ud);

#endif /* CLEW_SERVER_RECEIVER_OTLP_HTTP_H */
