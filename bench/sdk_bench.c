/*
 * bench/sdk_bench.c - the SDK's hot paths (design.md §7 targets):
 *   sampled span: start, 4 attributes, end, enqueue into the batch processor
 *                 with an exporter that discards (clew_exporter_none);
 *   unsampled span: the same calls under always_off;
 *   traceparent inject + extract through the tracecontext propagator;
 *   heap allocations per span in steady state (counted via clew_set_allocator);
 *   2-thread scaling of the sampled path;
 *   a fixed reference (integer work, no memory) timed in the same rounds, which
 *   shows how fast the machine was during the run.
 * Spans the queue had to drop are reported: a dropped span is cheaper than an
 * enqueued one, so the figure is only honest when drops are near zero.
 *
 * Measuring on a shared machine: the single-thread figures are taken in rounds
 * (ROUND_SAMPLED sampled spans, ROUND other operations), each timed on the
 * thread's CPU clock; the figure printed is the median round ("best" is the
 * fastest), so a round disturbed by another process moves neither. The rounds
 * of the three paths are interleaved (see single_thread_bench), so that slower
 * stretches of the machine weigh on all of them alike. Between rounds of
 * sampled spans the batch processor is flushed (untimed), so a round never
 * finds the queue (2048) full: every span measured is an enqueued one, and the
 * export thread still runs during the round (it is woken each time a batch
 * fills, as in production). Other rounds are longer, so the two CPU-clock
 * reads around each (system calls) stay below 1 % of it. Allocations are
 * counted inside the timed rounds only.
 *
 * Usage: sdk_bench [spans]   (default 2,000,000)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clew/alloc.h"
#include "clew/clew.h"

static _Atomic long n_allocs;

static void *count_malloc(size_t n)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return malloc(n);
}
static void *count_calloc(size_t n, size_t s)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return calloc(n, s);
}
static void *count_realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return realloc(p, n);
}
static void count_free(void *p)
{
    free(p);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static clew_provider *make_provider(bool sampled)
{
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.service_name = "bench";
    if (!sampled && clew_sampler_always_off(&c.sampler) != CLEW_OK) {
        exit(1);
    }
    if (clew_exporter_none(&c.exporter) != CLEW_OK) {
        exit(1);
    }
    clew_provider *p;
    if (clew_provider_create(&c, &p) != CLEW_OK) {
        fprintf(stderr, "sdk_bench: provider creation failed\n");
        exit(1);
    }
    return p;
}

static inline void one_span(clew_tracer *t)
{
    clew_span *s = clew_span_start(t, "GET /api/v1/users/{id}", NULL);
    clew_span_set_str(s, "http.request.method", "GET");
    clew_span_set_str(s, "http.route", "/api/v1/users/{id}");
    clew_span_set_int(s, "http.response.status_code", 200);
    clew_span_set_bool(s, "cache.hit", true);
    clew_span_end(s, 0);
}

typedef struct job {
    clew_tracer *t;
    long n;
    double ns;     /* wall */
    double cpu_ns; /* this thread's CPU time: steady even when the machine is shared */
} job;

static void *run(void *arg)
{
    job *j = arg;
    for (long i = 0; i < 10000; i++) { /* warm the thread's pool */
        one_span(j->t);
    }
    double t0 = now_ns(), c0 = cpu_ns();
    for (long i = 0; i < j->n; i++) {
        one_span(j->t);
    }
    j->ns = now_ns() - t0;
    j->cpu_ns = cpu_ns() - c0;
    return NULL;
}

#define ROUND_SAMPLED 1024
#define ROUND         16384

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One measured path: the ns per operation of each of its rounds, and its totals. */
typedef struct path {
    const char *label;
    double *cpu; /* ns per op of each round */
    size_t n;
    double wall; /* total ns */
    long ops, allocs;
} path;

static void path_init(path *pa, const char *label, size_t max_rounds)
{
    *pa = (path){label, calloc(max_rounds, sizeof(double)), 0, 0, 0, 0};
    if (pa->cpu == NULL) {
        exit(1);
    }
}

static void path_report(path *pa, const char *unit, const char *extra)
{
    qsort(pa->cpu, pa->n, sizeof(*pa->cpu), cmp_double);
    double med = pa->n ? pa->cpu[pa->n / 2] : 0, best = pa->n ? pa->cpu[0] : 0;
    printf("%-32s %7.1f ns/%s wall, %7.1f ns CPU (best %5.1f)  allocations %ld  %s\n", pa->label,
           pa->wall / (double)pa->ops, unit, med, best, pa->allocs, extra);
    free(pa->cpu);
}

/* Runs `body` k times as one timed round of `pa` (CPU and wall time, allocations). */
#define TIMED_ROUND(pa, k, body)                                                                   \
    do {                                                                                           \
        long a0_ = atomic_load(&n_allocs);                                                         \
        double t0_ = now_ns(), c0_ = cpu_ns();                                                     \
        for (long i_ = 0; i_ < (k); i_++) {                                                        \
            body;                                                                                  \
        }                                                                                          \
        double c1_ = cpu_ns(), t1_ = now_ns();                                                     \
        (pa)->cpu[(pa)->n++] = (c1_ - c0_) / (double)(k);                                          \
        (pa)->wall += t1_ - t0_;                                                                   \
        (pa)->ops += (k);                                                                          \
        (pa)->allocs += atomic_load(&n_allocs) - a0_;                                              \
    } while (0)

static void flush(clew_provider *p)
{
    if (clew_provider_force_flush(p, 10000) != CLEW_OK) {
        fprintf(stderr, "sdk_bench: flush failed\n");
    }
}

/* The state of one traceparent inject + extract (the context changes every time). */
typedef struct prop_state {
    clew_span_context sc;
    clew_header items[4];
    char buf[256];
    const clew_propagator *prop;
    unsigned ok;
} prop_state;

static inline void one_inject_extract(prop_state *ps)
{
    clew_header_list l;
    clew_header_list_init(&l, ps->items, 0, 4, ps->buf, sizeof(ps->buf));
    clew_carrier c = clew_http_headers_carrier(&l);
    ps->ok += clew_propagator_inject(ps->prop, &ps->sc, NULL, &c) == CLEW_OK;
    clew_span_context out;
    ps->ok += clew_propagator_extract(ps->prop, &c, &out, NULL) == CLEW_OK;
    ps->sc.span_id.bytes[7] = out.span_id.bytes[7] + 1;
}

/* The machine's reference: a fixed piece of integer work with as much instruction-level
 * parallelism as the SDK's paths (eight independent xorshift chains, ~50 instructions a
 * step, no memory), so that it slows down as they do when the host gives this virtual CPU
 * less of its core (a dependent chain would not: it leaves the core idle anyway). */
typedef struct ref_state {
    uint64_t x[8];
} ref_state;

static inline void ref_step(ref_state *r)
{
    uint64_t a = r->x[0], b = r->x[1], c = r->x[2], d = r->x[3];
    uint64_t e = r->x[4], f = r->x[5], g = r->x[6], h = r->x[7];
#define XS(v) (v ^= v << 13, v ^= v >> 7, v ^= v << 17)
    XS(a), XS(b), XS(c), XS(d), XS(e), XS(f), XS(g), XS(h);
#undef XS
    __asm__ volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f), "+r"(g), "+r"(h));
    r->x[0] = a, r->x[1] = b, r->x[2] = c, r->x[3] = d;
    r->x[4] = e, r->x[5] = f, r->x[6] = g, r->x[7] = h;
}

/* The three single-thread paths and the reference, measured in interleaved rounds: each cycle is 16
 * rounds of sampled spans (flushed between, untimed), one round of unsampled spans and one of
 * inject + extract. So every path's median is taken over rounds spread across the whole
 * run: a stretch of seconds in which the machine runs slower (this VM has them: whole
 * seconds at ~1.5x) touches every path alike instead of whichever ran then. */
static void single_thread_bench(long n)
{
    clew_provider *ps = make_provider(true), *pu = make_provider(false);
    clew_tracer *ts, *tu;
    if (clew_provider_tracer(ps, "bench", "1.0", &ts) != CLEW_OK ||
        clew_provider_tracer(pu, "bench", "1.0", &tu) != CLEW_OK) {
        exit(1);
    }
    prop_state pr;
    memset(&pr, 0, sizeof(pr));
    pr.prop = clew_propagator_tracecontext();
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    if (clew_traceparent_parse(tp, strlen(tp), &pr.sc) != CLEW_OK) {
        exit(1);
    }
    /* warm-up: the thread's pool grows to the most spans ever in flight at once (the
     * queue, the batch being exported, spans on their way back); from then on nothing is
     * allocated. 4096 spans alive at once (unsampled: they come from the same per-thread
     * pool) grow it to what it keeps at most, so a slow return of exported spans during a
     * round does not show as an allocation. */
    enum { PREGROW = 4096 };
    clew_span **live = calloc(PREGROW, sizeof(*live));
    if (live == NULL) {
        exit(1);
    }
    for (int i = 0; i < PREGROW; i++) {
        live[i] = clew_span_start(tu, "pregrow", NULL);
    }
    for (int i = 0; i < PREGROW; i++) {
        clew_span_end(live[i], 0);
    }
    free(live);
    for (long i = 0; i < n / 4; i++) {
        one_span(ts);
        if (i % ROUND_SAMPLED == ROUND_SAMPLED - 1) {
            flush(ps);
        }
    }
    flush(ps);
    clew_provider_stats before;
    clew_provider_stats_get(ps, &before);
    long cycles = (n + ROUND - 1) / ROUND;
    path sampled, unsampled, prop, ref;
    ref_state rs = {{1, 2, 3, 4, 5, 6, 7, 8}};
    path_init(&sampled, "sampled span (4 attrs, batch)", (size_t)cycles * (ROUND / ROUND_SAMPLED));
    path_init(&unsampled, "unsampled span (4 attrs)", (size_t)cycles);
    path_init(&prop, "traceparent inject+extract", (size_t)cycles);
    path_init(&ref, "reference: fixed integer work", (size_t)cycles);
    for (long c = 0; c < cycles; c++) {
        for (int r = 0; r < ROUND / ROUND_SAMPLED; r++) {
            TIMED_ROUND(&sampled, ROUND_SAMPLED, one_span(ts));
            flush(ps);
        }
        TIMED_ROUND(&unsampled, ROUND, one_span(tu));
        TIMED_ROUND(&prop, ROUND, one_inject_extract(&pr));
        TIMED_ROUND(&ref, ROUND, ref_step(&rs));
    }
    clew_provider_stats st;
    clew_provider_stats_get(ps, &st);
    char extra[96];
    snprintf(extra, sizeof(extra), "dropped %llu of %ld",
             (unsigned long long)(st.dropped_spans - before.dropped_spans), sampled.ops);
    path_report(&sampled, "span", extra);
    path_report(&unsampled, "span", "");
    snprintf(extra, sizeof(extra), "(ok %u)", pr.ok);
    path_report(&prop, "op", extra);
    snprintf(extra, sizeof(extra), "(machine speed; [%llx])", (unsigned long long)(rs.x[0] & 0xff));
    path_report(&ref, "step", extra);
    clew_provider_destroy(ps);
    clew_provider_destroy(pu);
}

static void threads_bench(long n)
{
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.batch.max_queue_size = 65536;
    c.batch.max_export_batch_size = 512;
    if (clew_exporter_none(&c.exporter) != CLEW_OK) {
        exit(1);
    }
    clew_provider *p;
    if (clew_provider_create(&c, &p) != CLEW_OK) {
        exit(1);
    }
    clew_tracer *t;
    if (clew_provider_tracer(p, "bench", NULL, &t) != CLEW_OK) {
        exit(1);
    }
    for (int threads = 1; threads <= 2; threads++) {
        pthread_t th[2];
        job jobs[2];
        clew_provider_stats before;
        clew_provider_stats_get(p, &before);
        double t0 = now_ns();
        for (int i = 0; i < threads; i++) {
            jobs[i] = (job){t, n / threads, 0, 0};
            pthread_create(&th[i], NULL, run, &jobs[i]);
        }
        for (int i = 0; i < threads; i++) {
            pthread_join(th[i], NULL);
        }
        double wall = now_ns() - t0;
        if (clew_provider_force_flush(p, 10000) != CLEW_OK) {
            fprintf(stderr, "sdk_bench: flush failed\n");
        }
        clew_provider_stats st;
        clew_provider_stats_get(p, &st);
        printf("sampled, %d thread(s)             %7.1f ns/span wall, %7.1f ns CPU per thread, "
               "%.2f M spans/s total, dropped %llu\n",
               threads, jobs[0].ns / jobs[0].n, jobs[0].cpu_ns / jobs[0].n,
               (double)(threads * (n / threads)) / wall * 1e3,
               (unsigned long long)(st.dropped_spans - before.dropped_spans));
    }
    clew_provider_destroy(p);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    if (n <= 0) {
        fprintf(stderr, "usage: sdk_bench [spans]\n");
        return 2;
    }
    clew_allocator a = {count_malloc, count_calloc, count_realloc, count_free};
    if (clew_set_allocator(&a) != 0) {
        return 1;
    }
    single_thread_bench(n);
    threads_bench(n);
    return 0;
}
