/*
 * src/server/metrics.c - counters and their Prometheus rendering; see metrics.h.
 */
#include "server/metrics.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const int CODES[] = CLEW_METRIC_CODES;
static const char *const RECEIVERS[CLEW_RECV_COUNT] = {"otlp_http", "query", "otlp_grpc", "zipkin"};
static const char *const FORMATS[CLEW_FMT_COUNT] = {"protobuf", "json"};
static const char *const REASONS[CLEW_REJECT_COUNT] = {"invalid_id", "backpressure", "store_error"};
/* upper bounds in seconds, Prometheus' usual spread from 1ms to 10s */
static const double BUCKETS[CLEW_METRIC_N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   10};

#define RELAXED memory_order_relaxed

void clew__metrics_init(clew_server_metrics *m, const clew_budgets *budgets)
{
    memset(m, 0, sizeof(*m));
    m->budgets = *budgets;
}

void clew__metrics_request(clew_server_metrics *m, clew_metric_receiver r, int http_code)
{
    size_t slot = CLEW_METRIC_N_CODES - 1;
    for (size_t i = 0; i < sizeof(CODES) / sizeof(CODES[0]); i++) {
        if (CODES[i] == http_code) {
            slot = i;
            break;
        }
    }
    atomic_fetch_add_explicit(&m->requests[r][slot], 1, RELAXED);
}

void clew__metrics_duration(clew_server_metrics *m, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t b = CLEW_METRIC_N_BUCKETS;
    for (size_t i = 0; i < CLEW_METRIC_N_BUCKETS; i++) {
        if (s <= BUCKETS[i]) {
            b = i;
            break;
        }
    }
    /* buckets are stored non-cumulative and summed when rendered */
    atomic_fetch_add_explicit(&m->duration_buckets[b], 1, RELAXED);
    atomic_fetch_add_explicit(&m->duration_sum_ns, ns, RELAXED);
    atomic_fetch_add_explicit(&m->duration_count, 1, RELAXED);
}

void clew__metrics_observe(clew_server_metrics *m, clew_metric_receiver r, uint64_t ns)
{
    if (r == CLEW_RECV_OTLP_HTTP) {
        clew__metrics_duration(m, ns);
        return;
    }
    double s = (double)ns / 1e9;
    size_t b = CLEW_METRIC_N_BUCKETS;
    for (size_t i = 0; i < CLEW_METRIC_N_BUCKETS; i++) {
        if (s <= BUCKETS[i]) {
            b = i;
            break;
        }
    }
    atomic_fetch_add_explicit(&m->rx_duration_buckets[r][b], 1, RELAXED);
    atomic_fetch_add_explicit(&m->rx_duration_sum_ns[r], ns, RELAXED);
    atomic_fetch_add_explicit(&m->rx_duration_count[r], 1, RELAXED);
}

void clew__metrics_spans_rejected(clew_server_metrics *m, clew_metric_receiver r,
                                  clew_reject_reason reason, uint64_t n)
{
    atomic_fetch_add_explicit(&m->spans_rejected[reason], n, RELAXED);
    atomic_fetch_add_explicit(&m->spans_rejected_rx[r][reason], n, RELAXED);
}

bool clew__metrics_inflight_reserve(clew_server_metrics *m, uint64_t n)
{
    uint64_t cur = atomic_load_explicit(&m->inflight_bytes, RELAXED);
    for (;;) {
        if (n > m->budgets.ingest || cur > m->budgets.ingest - n) {
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(&m->inflight_bytes, &cur, cur + n, RELAXED,
                                                  RELAXED)) {
            return true;
        }
    }
}

bool clew__metrics_inflight_reserve_upto(clew_server_metrics *m, uint64_t want, uint64_t min,
                                         uint64_t *got)
{
    uint64_t cur = atomic_load_explicit(&m->inflight_bytes, RELAXED);
    for (;;) {
        uint64_t free_bytes = cur >= m->budgets.ingest ? 0 : m->budgets.ingest - cur;
        if (free_bytes < min) {
            return false;
        }
        uint64_t take = want < free_bytes ? want : free_bytes;
        if (atomic_compare_exchange_weak_explicit(&m->inflight_bytes, &cur, cur + take, RELAXED,
                                                  RELAXED)) {
            *got = take;
            return true;
        }
    }
}

void clew__metrics_inflight_release(clew_server_metrics *m, uint64_t n)
{
    atomic_fetch_sub_explicit(&m->inflight_bytes, n, RELAXED);
}

uint64_t clew__process_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0) {
        return 0;
    }
    return (uint64_t)resident * (uint64_t)page;
}

static uint64_t ld(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, RELAXED);
}

#define P(...)                                                                                     \
    do {                                                                                           \
        clew_status rc_ = clew__buf_printf(out, __VA_ARGS__);                                      \
        if (rc_ != CLEW_OK) {                                                                      \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

static clew_status render_counter_head(clew_buf *out, const char *name, const char *type,
                                       const char *help)
{
    P("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    return CLEW_OK;
}

#define HEAD(name, type, help)                                                                     \
    do {                                                                                           \
        clew_status rc_ = render_counter_head(out, name, type, help);                              \
        if (rc_ != CLEW_OK) {                                                                      \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

clew_status clew__metrics_render(clew_server_metrics *m, clew_store *store, clew_buf *out)
{
    HEAD("clew_spans_received_total", "counter", "Spans decoded from requests, valid or not.");
    for (int r = 0; r < 1; r++) { /* only the OTLP receiver takes spans so far */
        for (int f = 0; f < CLEW_FMT_COUNT; f++) {
            P("clew_spans_received_total{receiver=\"%s\",format=\"%s\"} %llu\n", RECEIVERS[r],
              FORMATS[f], (unsigned long long)ld(&m->spans_received[r][f]));
        }
    }
    P("clew_spans_received_total{receiver=\"otlp_grpc\",format=\"protobuf\"} %llu\n",
      (unsigned long long)ld(&m->spans_received[CLEW_RECV_OTLP_GRPC][CLEW_FMT_PROTOBUF]));
    P("clew_spans_received_total{receiver=\"zipkin\",format=\"json\"} %llu\n",
      (unsigned long long)ld(&m->spans_received[CLEW_RECV_ZIPKIN][CLEW_FMT_JSON]));
    HEAD("clew_spans_accepted_total", "counter", "Spans the store acknowledged.");
    P("clew_spans_accepted_total{receiver=\"%s\"} %llu\n", RECEIVERS[0],
      (unsigned long long)ld(&m->spans_accepted[0]));
    P("clew_spans_accepted_total{receiver=\"otlp_grpc\"} %llu\n",
      (unsigned long long)ld(&m->spans_accepted[CLEW_RECV_OTLP_GRPC]));
    P("clew_spans_accepted_total{receiver=\"zipkin\"} %llu\n",
      (unsigned long long)ld(&m->spans_accepted[CLEW_RECV_ZIPKIN]));
    HEAD("clew_spans_rejected_total", "counter", "Spans not stored, by reason.");
    for (int i = 0; i < CLEW_REJECT_COUNT; i++) {
        P("clew_spans_rejected_total{reason=\"%s\"} %llu\n", REASONS[i],
          (unsigned long long)ld(&m->spans_rejected[i]));
    }
    HEAD("clew_receiver_spans_rejected_total", "counter",
         "Spans not stored, by receiver and reason (invalid_id: dropped by the decoder; "
         "backpressure: refused with 429, the sender retries; store_error: 500).");
    for (int r = 0; r < CLEW_RECV_COUNT; r++) {
        if (r == CLEW_RECV_QUERY) {
            continue;
        }
        for (int i = 0; i < CLEW_REJECT_COUNT; i++) {
            P("clew_receiver_spans_rejected_total{receiver=\"%s\",reason=\"%s\"} %llu\n",
              RECEIVERS[r], REASONS[i], (unsigned long long)ld(&m->spans_rejected_rx[r][i]));
        }
    }
    HEAD("clew_spans_limited_total", "counter",
         "Spans an ingest limit changed (the span's dropped counts say by how much).");
    for (int i = 0; i < CLEW_LIMIT_COUNT; i++) {
        P("clew_spans_limited_total{what=\"%s\"} %llu\n", clew__limit_names[i],
          (unsigned long long)ld(&m->spans_limited[i]));
    }
    HEAD("clew_received_bytes_total", "counter",
         "Request body bytes received, as sent (before gunzip), by receiver.");
    for (int r = 0; r < CLEW_RECV_COUNT; r++) {
        P("clew_received_bytes_total{receiver=\"%s\"} %llu\n", RECEIVERS[r],
          (unsigned long long)ld(&m->bytes_received[r]));
    }
    HEAD("clew_requests_total", "counter", "HTTP requests answered, by receiver and status code.");
    for (int r = 0; r < CLEW_RECV_COUNT; r++) {
        for (size_t c = 0; c < CLEW_METRIC_N_CODES; c++) {
            uint64_t v = ld(&m->requests[r][c]);
            if (c + 1 == CLEW_METRIC_N_CODES) {
                P("clew_requests_total{receiver=\"%s\",code=\"other\"} %llu\n", RECEIVERS[r],
                  (unsigned long long)v);
            } else {
                P("clew_requests_total{receiver=\"%s\",code=\"%d\"} %llu\n", RECEIVERS[r], CODES[c],
                  (unsigned long long)v);
            }
        }
    }
    HEAD("clew_grpc_calls_total", "counter", "OTLP/gRPC calls answered, by grpc-status.");
    for (int c = 0; c < CLEW_GRPC_N_STATUS; c++) {
        P("clew_grpc_calls_total{receiver=\"otlp_grpc\",grpc_status=\"%d\"} %llu\n", c,
          (unsigned long long)ld(&m->grpc_calls[c]));
    }
    HEAD("clew_grpc_connections", "gauge", "Open OTLP/gRPC (HTTP/2) connections.");
    P("clew_grpc_connections{receiver=\"otlp_grpc\"} %llu\n",
      (unsigned long long)ld(&m->grpc_connections));
    HEAD("clew_grpc_connections_refused_total", "counter",
         "OTLP/gRPC connections closed at accept because --max-connections were open.");
    P("clew_grpc_connections_refused_total{receiver=\"otlp_grpc\"} %llu\n",
      (unsigned long long)ld(&m->grpc_connections_refused));
    HEAD("clew_grpc_streams", "gauge", "Open OTLP/gRPC streams (calls in progress).");
    P("clew_grpc_streams{receiver=\"otlp_grpc\"} %llu\n", (unsigned long long)ld(&m->grpc_streams));
    HEAD("clew_request_duration_seconds", "histogram",
         "Ingest request time from the body being read to the reply being queued.");
    uint64_t cum = 0;
    for (size_t i = 0; i < CLEW_METRIC_N_BUCKETS; i++) {
        cum += ld(&m->duration_buckets[i]);
        P("clew_request_duration_seconds_bucket{receiver=\"otlp_http\",le=\"%g\"} %llu\n",
          BUCKETS[i], (unsigned long long)cum);
    }
    cum += ld(&m->duration_buckets[CLEW_METRIC_N_BUCKETS]);
    P("clew_request_duration_seconds_bucket{receiver=\"otlp_http\",le=\"+Inf\"} %llu\n",
      (unsigned long long)cum);
    P("clew_request_duration_seconds_sum{receiver=\"otlp_http\"} %.9f\n",
      (double)ld(&m->duration_sum_ns) / 1e9);
    P("clew_request_duration_seconds_count{receiver=\"otlp_http\"} %llu\n",
      (unsigned long long)ld(&m->duration_count));
    for (int r = 0; r < CLEW_RECV_COUNT; r++) {
        if (r == CLEW_RECV_OTLP_HTTP || r == CLEW_RECV_QUERY) {
            continue;
        }
        cum = 0;
        for (size_t i = 0; i < CLEW_METRIC_N_BUCKETS; i++) {
            cum += ld(&m->rx_duration_buckets[r][i]);
            P("clew_request_duration_seconds_bucket{receiver=\"%s\",le=\"%g\"} %llu\n",
              RECEIVERS[r], BUCKETS[i], (unsigned long long)cum);
        }
        cum += ld(&m->rx_duration_buckets[r][CLEW_METRIC_N_BUCKETS]);
        P("clew_request_duration_seconds_bucket{receiver=\"%s\",le=\"+Inf\"} %llu\n", RECEIVERS[r],
          (unsigned long long)cum);
        P("clew_request_duration_seconds_sum{receiver=\"%s\"} %.9f\n", RECEIVERS[r],
          (double)ld(&m->rx_duration_sum_ns[r]) / 1e9);
        P("clew_request_duration_seconds_count{receiver=\"%s\"} %llu\n", RECEIVERS[r],
          (unsigned long long)ld(&m->rx_duration_count[r]));
    }

    HEAD("clew_inflight_bytes", "gauge", "Bytes charged to the ingest budget right now.");
    P("clew_inflight_bytes %llu\n", (unsigned long long)ld(&m->inflight_bytes));
    HEAD("clew_inflight_requests", "gauge", "OTLP requests handed to workers, not yet answered.");
    P("clew_inflight_requests %llu\n", (unsigned long long)ld(&m->inflight_requests));
    HEAD("clew_budget_bytes", "gauge", "Memory budgets split from --max-memory.");
    P("clew_budget_bytes{budget=\"ingest\"} %llu\n", (unsigned long long)m->budgets.ingest);
    P("clew_budget_bytes{budget=\"store\"} %llu\n", (unsigned long long)m->budgets.store);
    P("clew_budget_bytes{budget=\"query\"} %llu\n", (unsigned long long)m->budgets.query);
    P("clew_budget_bytes{budget=\"sampler\"} %llu\n", (unsigned long long)m->budgets.sampler);
    HEAD("clew_budget_used_bytes", "gauge",
         "Memory in use per budget (query results are not tracked yet and read 0).");
    P("clew_budget_used_bytes{budget=\"ingest\"} %llu\n",
      (unsigned long long)ld(&m->inflight_bytes));
    if (store != NULL) {
        clew_store_stats used;
        memset(&used, 0, sizeof(used));
        store->ops->stats(store, &used);
        P("clew_budget_used_bytes{budget=\"store\"} %llu\n", (unsigned long long)used.bytes);
    }
    P("clew_budget_used_bytes{budget=\"query\"} 0\n");

    if (store != NULL) {
        clew_store_stats st;
        memset(&st, 0, sizeof(st));
        store->ops->stats(store, &st);
        HEAD("clew_store_spans", "gauge", "Spans held by the store.");
        P("clew_store_spans %llu\n", (unsigned long long)st.spans);
        HEAD("clew_store_traces", "gauge", "Traces held by the store.");
        P("clew_store_traces %llu\n", (unsigned long long)st.traces);
        HEAD("clew_store_bytes", "gauge", "Bytes of span data held by the store.");
        P("clew_store_bytes %llu\n", (unsigned long long)st.bytes);
        HEAD("clew_store_index_bytes", "gauge",
             "Memory of the embedded store's loaded block indexes (bounded by an eighth of the "
             "store budget).");
        P("clew_store_index_bytes %llu\n", (unsigned long long)st.index_bytes);
        HEAD("clew_store_evicted_traces_total", "counter",
             "Acknowledged traces the memory store evicted (max traces or store budget).");
        P("clew_store_evicted_traces_total %llu\n", (unsigned long long)st.evicted_traces);
        HEAD("clew_store_duplicate_spans_total", "counter",
             "Spans dropped as duplicates of a stored span.");
        P("clew_store_duplicate_spans_total %llu\n", (unsigned long long)st.duplicate_spans);
    }
    HEAD("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    P("process_resident_memory_bytes %llu\n", (unsigned long long)clew__process_rss_bytes());
    return CLEW_OK;
}
