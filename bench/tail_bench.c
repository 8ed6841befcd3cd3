/*
 * bench/tail_bench.c - spans/s through the tail sampling engine with 100,000 traces
 * pending, and the engine's memory per pending span.
 *
 * Workload: a window of 100,000 traces receives spans round-robin (10 spans each,
 * the first one the root), so every trace stays pending while the others arrive; a
 * fake clock advances 1µs per span and decision_wait is 1s, so a window is decided as
 * the next one fills and the engine holds ~100,000 pending traces throughout. Spans
 * carry a service.name resource attribute and an http.route span attribute; the
 * policies are errors + slow:500ms + 10% + a string_attribute on service.name.
 *
 *   tail_bench [spans]      (default 5,000,000)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/clock.h"
#include "sampling/sampler.h"

#define WINDOW 100000u
#define PER    10u

static uint64_t fake_ns;
static uint64_t kept, dropped;

static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_ns;
}

static void on_decision(const clew_tail_decision *d, void *ud)
{
    (void)ud;
    if (d->state == CLEW_TRACE_KEPT) {
        kept++;
    } else {
        dropped++;
    }
}

static const char *YAML = "tail_sampling:\n"
                          "  decision_wait: 1s\n"
                          "  decision_grace: 1s\n"
                          "  num_traces: 200000\n"
                          "  max_bytes: 1GiB\n"
                          "  policies:\n"
                          "    - {name: errors, type: status_code, "
                          "status_code: {status_codes: [ERROR]}}\n"
                          "    - {name: slow, type: latency, latency: {threshold_ms: 500}}\n"
                          "    - {name: tenth, type: probabilistic, "
                          "probabilistic: {sampling_percentage: 10}}\n"
                          "    - {name: checkout, type: string_attribute, "
                          "string_attribute: {key: service.name, values: [checkout]}}\n";

int main(int argc, char **argv)
{
    uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000;
    clew_tail_config *cfg;
    clew_config_error err;
    if (clew__tail_config_load_buffer("bench", YAML, strlen(YAML), &cfg, &err) != CLEW_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    clew_tail_hooks h = {.on_decision = on_decision, .clock = fake_clock};
    clew_tail_engine *e;
    if (clew__tail_engine_new(cfg, &h, &e) != CLEW_OK) {
        fprintf(stderr, "engine: out of memory\n");
        return 1;
    }
    static const char *services[] = {"frontend", "checkout", "cart", "payment", "shipping"};
    static const char *routes[] = {"/api/v1/orders", "/api/v1/cart", "/healthz", "/api/v2/pay"};
    clew_kv res_kv[5];
    clew_resource res[5];
    for (int i = 0; i < 5; i++) {
        res_kv[i].key = (clew_str){"service.name", 12};
        res_kv[i].value.type = CLEW_VALUE_STRING;
        res_kv[i].value.u.s = (clew_str){services[i], strlen(services[i])};
        memset(&res[i], 0, sizeof(res[i]));
        res[i].attrs.items = &res_kv[i];
        res[i].attrs.n = 1;
    }
    clew_kv span_kv[4];
    for (int i = 0; i < 4; i++) {
        span_kv[i].key = (clew_str){"http.route", 10};
        span_kv[i].value.type = CLEW_VALUE_STRING;
        span_kv[i].value.u.s = (clew_str){routes[i], strlen(routes[i])};
    }

    enum { BATCH = 512 };
    clew_span_data spans[BATCH];
    const clew_span_data *ptrs[BATCH];
    uint64_t peak_traces = 0, peak_spans = 0, peak_bytes = 0;
    uint64_t t0 = clew__now_mono_ns();
    for (uint64_t j = 0; j < total;) {
        size_t n = 0;
        for (; n < BATCH && j < total; n++, j++) {
            uint64_t window = j / ((uint64_t)WINDOW * PER);
            uint64_t in = j % ((uint64_t)WINDOW * PER);
            uint64_t trace = window * WINDOW + in % WINDOW;
            uint64_t nth = in / WINDOW;
            clew_span_data *s = &spans[n];
            memset(s, 0, sizeof(*s));
            uint64_t mixed = trace * UINT64_C(0x9e3779b97f4a7c15);
            memcpy(s->trace_id.bytes, &mixed, 8);
            memcpy(s->trace_id.bytes + 8, &trace, 8);
            uint64_t sid = nth + 1;
            memcpy(s->span_id.bytes, &sid, 8);
            if (nth > 0) {
                uint64_t parent = 1;
                memcpy(s->parent_span_id.bytes, &parent, 8);
            }
            s->start_ns = UINT64_C(1700000000000000000) + trace * 1000000 + nth * 1000000;
            s->end_ns = s->start_ns + (trace % 50 == 0 ? 800 : 20) * UINT64_C(1000000);
            s->status_code = trace % 97 == 0 ? CLEW_STATUS_ERROR : CLEW_STATUS_UNSET;
            s->resource = &res[trace % 5];
            s->attrs.items = &span_kv[(trace + nth) % 4];
            s->attrs.n = 1;
            ptrs[n] = s;
            fake_ns += 1000;
        }
        if (clew__tail_observe_spans(e, ptrs, n) != CLEW_OK) {
            fprintf(stderr, "observe failed\n");
            return 1;
        }
        (void)clew__tail_tick(e);
        clew_tail_metrics m;
        clew__tail_metrics(e, &m);
        if (m.pending_traces > peak_traces) {
            peak_traces = m.pending_traces;
            peak_spans = m.pending_spans;
            peak_bytes = m.pending_bytes;
        }
    }
    uint64_t dt = clew__now_mono_ns() - t0;
    clew_tail_metrics m;
    clew__tail_metrics(e, &m);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("spans: %" PRIu64 " in %.3f s = %.0f spans/s (%.0f ns/span)\n", total, dt / 1e9,
           total / (dt / 1e9), (double)dt / (double)total);
    printf("pending at peak: %" PRIu64 " traces, %" PRIu64 " spans, %" PRIu64 " bytes "
           "= %.1f bytes/pending span (trace summaries incl. their records)\n",
           peak_traces, peak_spans, peak_bytes, (double)peak_bytes / (double)peak_spans);
    printf("decided: %" PRIu64 " kept, %" PRIu64 " dropped; forced %" PRIu64
           "; max RSS %ld MiB (whole process, = %.1f bytes/pending span at peak)\n",
           kept, dropped, m.forced_decisions, ru.ru_maxrss / 1024,
           (double)ru.ru_maxrss * 1024.0 / (double)peak_spans);
    clew__tail_engine_free(e);
    clew__tail_config_free(cfg);
    return 0;
}
