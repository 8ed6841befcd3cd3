/*
 * src/server/metrics.h - the server's own counters, rendered for /metrics in the
 * Prometheus text format 0.0.4.
 *
 * Ownership: one clew_server_metrics per server (no globals), owned by serve.c.
 * Thread-safety: every counter is a relaxed atomic: workers and the loop thread
 * update them concurrently without locks. Rendering reads each counter once; a
 * scrape is not a consistent snapshot across counters (Prometheus does not need one).
 */
#ifndef CLEW_SERVER_METRICS_H
#define CLEW_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clew/status.h"
#include "common/buf.h"
#include "server/config.h"
#include "server/limits.h"
#include "store/store.h"

/* Receivers, as the `receiver` label. */
typedef enum clew_metric_receiver {
    CLEW_RECV_OTLP_HTTP = 0,
    CLEW_RECV_QUERY = 1,     /* the query port, so its traffic is visible too */
    CLEW_RECV_OTLP_GRPC = 2, /* OTLP/gRPC (receiver_otlp_grpc.c) */
    CLEW_RECV_ZIPKIN = 3,    /* Zipkin JSON (receiver_zipkin.c) */
    CLEW_RECV_COUNT
} clew_metric_receiver;

/* Wire formats, as the `format` label. */
typedef enum clew_metric_format {
    CLEW_FMT_PROTOBUF = 0,
    CLEW_FMT_JSON = 1,
    CLEW_FMT_COUNT
} clew_metric_format;

/* Why spans were not stored, as the `reason` label. */
typedef enum clew_reject_reason {
    CLEW_REJECT_INVALID_ID = 0,   /* decoder refused the span (partial_success) */
    CLEW_REJECT_BACKPRESSURE = 1, /* store full or budget exhausted: 429, sender retries */
    CLEW_REJECT_STORE_ERROR = 2,  /* store failed: 500 */
    CLEW_REJECT_COUNT
} clew_reject_reason;

/* HTTP status codes we count; anything else lands in "other". */
#define CLEW_METRIC_CODES                                                                          \
    {                                                                                              \
        200, 202, 204, 400, 404, 405, 413, 415, 429, 500, 503                                      \
    }
#define CLEW_METRIC_N_CODES 12 /* the eleven above + other */

#define CLEW_METRIC_N_BUCKETS 12 /* + Inf is implicit */
#define CLEW_GRPC_N_STATUS    17 /* gRPC status codes OK (0) .. UNAUTHENTICATED (16) */

typedef struct clew_server_metrics {
    _Atomic uint64_t spans_received[CLEW_RECV_COUNT][CLEW_FMT_COUNT];
    _Atomic uint64_t spans_accepted[CLEW_RECV_COUNT];
    _Atomic uint64_t spans_rejected[CLEW_REJECT_COUNT];
    _Atomic uint64_t requests[CLEW_RECV_COUNT][CLEW_METRIC_N_CODES];
    /* request duration of the OTLP receiver, from the body being read to the reply */
    _Atomic uint64_t duration_buckets[CLEW_METRIC_N_BUCKETS + 1]; /* last = +Inf */
    _Atomic uint64_t duration_sum_ns;
    _Atomic uint64_t duration_count;
    _Atomic uint64_t inflight_bytes; /* charged against the ingest budget */
    _Atomic uint64_t inflight_requests;
    /* OTLP/gRPC: calls answered by grpc-status (0..16), open connections and streams */
    _Atomic uint64_t grpc_calls[CLEW_GRPC_N_STATUS];
    _Atomic uint64_t grpc_connections;
    _Atomic uint64_t grpc_connections_refused; /* closed at accept: --max-connections */
    _Atomic uint64_t grpc_streams;
    /* per receiver: body bytes as received (before gunzip), spans not stored by
     * reason (the reason-only totals above stay for compatibility), and the
     * request duration of receivers other than otlp_http (which keeps duration_*) */
    _Atomic uint64_t bytes_received[CLEW_RECV_COUNT];
    _Atomic uint64_t spans_rejected_rx[CLEW_RECV_COUNT][CLEW_REJECT_COUNT];
    _Atomic uint64_t rx_duration_buckets[CLEW_RECV_COUNT][CLEW_METRIC_N_BUCKETS + 1];
    _Atomic uint64_t rx_duration_sum_ns[CLEW_RECV_COUNT];
    _Atomic uint64_t rx_duration_count[CLEW_RECV_COUNT];
    /* spans changed by an ingest limit (limits.h), by what was limited */
    _Atomic uint64_t spans_limited[CLEW_LIMIT_COUNT];
    clew_budgets budgets;
} clew_server_metrics;

void clew__metrics_init(clew_server_metrics *m, const clew_budgets *budgets);

void clew__metrics_request(clew_server_metrics *m, clew_metric_receiver r, int http_code);
void clew__metrics_duration(clew_server_metrics *m, uint64_t ns);
/* Request duration of receiver r (otlp_http goes to the same histogram as
 * clew__metrics_duration). */
void clew__metrics_observe(clew_server_metrics *m, clew_metric_receiver r, uint64_t ns);
/* Counts n spans of receiver r not stored for `reason`, in both the per-reason
 * total and the per-receiver series. */
void clew__metrics_spans_rejected(clew_server_metrics *m, clew_metric_receiver r,
                                  clew_reject_reason reason, uint64_t n);

/* Takes `n` bytes from the ingest budget if they fit; false (nothing taken) if not. */
bool clew__metrics_inflight_reserve(clew_server_metrics *m, uint64_t n);
/* Takes as much of `want` as is free, but at least `min`; writes what it took to
 * *got. False (nothing taken) when not even `min` is free. */
bool clew__metrics_inflight_reserve_upto(clew_server_metrics *m, uint64_t want, uint64_t min,
                                         uint64_t *got);
void clew__metrics_inflight_release(clew_server_metrics *m, uint64_t n);

/* Appends every metric in the Prometheus text format 0.0.4. `store` may be NULL. */
CLEW_NODISCARD clew_status clew__metrics_render(clew_server_metrics *m, clew_store *store,
                                                clew_buf *out);

/* Resident set size of this process from /proc/self/statm; 0 if unknown. */
uint64_t clew__process_rss_bytes(void);

#endif /* CLEW_SERVER_METRICS_H */
