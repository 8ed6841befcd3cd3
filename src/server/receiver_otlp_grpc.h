/*
 * src/server/receiver_otlp_grpc.h - the OTLP/gRPC trace receiver:
 * opentelemetry.proto.collector.trace.v1.TraceService/Export over HTTP/2
 * cleartext (prior knowledge), served by nghttp2's server session on libevent
 * bufferevents of the HTTP server's event_base.
 *
 * Ownership: the receiver borrows the HTTP server (its event_base and worker
 * pool), the store and the metrics; they must outlive it. It owns its listener,
 * its connections and their streams. Jobs handed to the worker pool hold a
 * reference on their connection, so a connection that closes (or a stream the
 * client resets) while a worker decodes its message is detached, not freed under
 * the worker: done() then only releases what the job held.
 * Thread-safety: everything runs on the loop thread except the jobs' work(),
 * which touches only the job.
 */
#ifndef CLEW_SERVER_RECEIVER_OTLP_GRPC_H
#define CLEW_SERVER_RECEIVER_OTLP_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "server/config.h"
#include "server/http.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "store/store.h"

struct evconnlistener;
typedef struct grpc_conn grpc_conn;

typedef struct clew_otlp_grpc_receiver {
    /* set by the caller before clew__otlp_grpc_listen */
    clew_http_server *srv;
    clew_store *store;
    clew_server_metrics *metrics;
    size_t max_message; /* largest message, compressed and after gunzip (RESOURCE_EXHAUSTED) */
    size_t max_headers; /* bytes of header names + values per stream */
    uint64_t idle_timeout_ns;  /* a connection with no traffic for this long is closed */
    const clew_limits *limits; /* span limits applied to each decoded batch; NULL = none */
    size_t max_connections;    /* connections beyond this are closed at accept; 0 = no cap */
    /* private */
    struct evconnlistener *listener;
    grpc_conn *conns; /* open connections (doubly linked) */
    bool stopping;
} clew_otlp_grpc_receiver;

/* Opens the listener on `addr` (not off). The bound port goes to *port_out. On
 * failure returns CLEW_EIO (or CLEW_ENOMEM) with a sentence in err. */
CLEW_NODISCARD clew_status clew__otlp_grpc_listen(clew_otlp_grpc_receiver *rx,
                                                  const clew_listen_addr *addr, uint16_t *port_out,
                                                  char *err, size_t err_size);

/* Loop thread, on SIGTERM: stops accepting, tells every connection a GOAWAY is
 * coming (nghttp2_submit_shutdown_notice) and sends the final GOAWAY on each
 * once its in-flight streams are answered. New calls meanwhile get UNAVAILABLE. */
void clew__otlp_grpc_stop(clew_otlp_grpc_receiver *rx);

/* Closes the listener and every connection, before the event_base is freed.
 * Jobs still in the pool keep their (detached) connection alive until done().
 * Safe on a receiver that never listened (zeroed). */
void clew__otlp_grpc_close(clew_otlp_grpc_receiver *rx);

#endif /* CLEW_SERVER_RECEIVER_OTLP_GRPC_H */
