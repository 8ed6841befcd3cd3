/*
 * src/sdk/sdk_internal.h - the tracing SDK's internal structures, shared by
 * span.c, span_clock.c, ids.c, sampler.c, provider.c, env.c, the exporters and
 * grpc_retry.c. Not installed.
 *
 * Memory of a recording span (why it is shaped like this):
 * - A clew_span IS the exported record: it embeds the clew_span_data the
 *   exporter encodes, plus a private arena for names, keys, values, events and
 *   links. Ending a span converts nothing; the pointer goes into the queue.
 * - Spans come from a per-thread pool (clew__tpool). The owner thread pops and
 *   pushes its free list without atomics. The export thread hands spans back
 *   through the pool's `returned` stack: a lock-free push (CAS) by the exporter
 *   and an atomic exchange that takes the whole stack by the owner, so neither
 *   side ever waits for the other and no malloc happens in steady state. This
 *   is what keeps the caller and the exporter out of each other's way: they
 *   share no allocator lock and no mutex, only one cache line per pool.
 *   (The exporter also resets each span's arena before handing it back, so the
 *   owner pays nothing for the cleanup.)
 * - A pool outlives its thread while any of its spans is outside it (still
 *   live on another thread, queued, being exported): see `refs` in
 *   clew__tpool. Whoever makes it zero frees the pool and what sits in
 *   `returned`. The owner counts without atomics (`out`); only spans coming
 *   back from other threads touch the shared counter.
 *
 * Thread-safety: see each field.
 */
#ifndef CLEW_SDK_SDK_INTERNAL_H
#define CLEW_SDK_SDK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clew/context.h"
#include "clew/exporter.h"
#include "clew/propagation.h"
#include "clew/trace.h"
#include "common/arena.h"
#include "common/buf.h"
#include "model/model.h"

/* The SDK's thread-local variables use the initial-exec TLS model: libclew is built
 * position-independent (it is a shared library too), and the default model there
 * reaches a thread-local through a __tls_get_addr call, which also made the span
 * hot paths save and restore registers around it. Initial-exec is one %fs-relative
 * load. The cost: libclew.so takes a few dozen bytes of the static TLS block, which
 * glibc reserves spare room for, so dlopen() of libclew still works. */
#define CLEW__TLS _Thread_local __attribute__((tls_model("initial-exec")))

typedef struct clew__tpool clew__tpool;

/* The current fork generation: incremented in every forked child. */
extern _Atomic uint64_t clew__fork_gen;

struct clew_span {
    clew_span *next;   /* free list / returned stack link */
    clew__tpool *pool; /* owner pool; NULL for the shared no-op span */
    clew_provider *provider;
    uint8_t recording;    /* attributes etc. are recorded */
    uint8_t sampled;      /* goes to the exporter at end */
    uint8_t status_final; /* status was set to Ok */
    uint8_t id_pending;   /* non-recording: CLEW__PENDING_* ids not made yet */
    /* Right after the flags, so that everything a non-recording span touches
     * (the fields above, ids, trace flags, tracestate length and count) is in
     * the span's first cache line. data.trace_state points into ctx.tracestate. */
    clew_span_context ctx;
    uint32_t attr_cap, event_cap, link_cap;
    uint32_t inl_used;   /* bytes of inl handed out */
    clew_span_data data; /* the record the exporter encodes */
    /* Small spans live entirely in inl (a bump region inside the span itself:
     * one allocation per span for its whole pooled life, and the fewest cache
     * lines); the arena takes only what does not fit. */
    _Alignas(8) char inl[640];
    clew_arena arena;
};

#define CLEW__PENDING_SPAN_ID  1u /* ctx.span_id */
#define CLEW__PENDING_TRACE_ID 2u /* ctx.trace_id (a dropped root with random ids) */

struct clew__tpool {
    clew_span *free; /* owner thread only */
    uint32_t n_free; /* owner thread only */
    /* owner thread only: spans taken from this pool minus spans the owner put
     * back itself; a span handed back by another thread is counted in refs */
    int64_t out;
    /* the export thread's line: kept apart so the owner's hot fields never bounce */
    _Alignas(64) _Atomic(clew_span *) returned; /* pushed by other threads, taken by owner */
    /* Spans counted into `returned`: a thread adds before it pushes, the owner takes the
     * list and then exchanges this with 0, adding it to n_free. So n_free is never below
     * the length of the free list (it may count a few spans still being pushed, which
     * arrive with the next list), and never wraps when a span is taken. */
    _Atomic uint64_t returned_n;
    /* REFS_BIAS while the thread lives, minus one for every span another thread
     * handed back; at thread exit the owner adds out - REFS_BIAS, so refs is then
     * the number of spans still outside the pool (live or queued). The change that
     * makes it zero frees the pool. */
    _Atomic int64_t refs;
};

#define CLEW__REFS_BIAS ((int64_t)1 << 62)

/* Gives spans back to their pools from any thread: resets each span, pushes
 * runs of spans of one pool with one CAS and drops their references with one
 * atomic subtraction. */
void clew__spans_release_remote(clew_span **spans, size_t n);

/* Makes the ids of a non-recording span on first use (see id_pending). */
void clew__span_ensure_id(clew_span *s);

/* The calling thread's id generator: splitmix64 (one add and a mix per
 * output, and outputs do not wait on each other, so an id costs a few cycles),
 * seeded from getrandom(2) on first use and again in a forked child: each
 * thread remembers the fork generation it was seeded in. */
extern CLEW__TLS uint64_t clew__tl_rng;
extern CLEW__TLS uint64_t clew__tl_rng_gen; /* 0 = never seeded */
void clew__rng_reseed(void);

static inline uint64_t clew__rand_u64(void)
{
    if (__builtin_expect(
            clew__tl_rng_gen != atomic_load_explicit(&clew__fork_gen, memory_order_relaxed), 0)) {
        clew__rng_reseed();
    }
    uint64_t z = (clew__tl_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random non-zero ids. */
static inline void clew__rand_trace_id(clew_trace_id *out)
{
    uint64_t a, b;
    do {
        a = clew__rand_u64();
        b = clew__rand_u64();
    } while ((a | b) == 0);
    __builtin_memcpy(out->bytes, &a, 8);
    __builtin_memcpy(out->bytes + 8, &b, 8);
}

static inline void clew__rand_span_id(clew_span_id *out)
{
    uint64_t a;
    do {
        a = clew__rand_u64();
    } while (a == 0);
    __builtin_memcpy(out->bytes, &a, 8);
}

/* ---- the span clock (span_clock.c) ----
 * Wall-clock nanoseconds for span and event timestamps. On x86-64 with the
 * kernel's clocksource on the TSC, each thread extrapolates from a recent
 * (CLOCK_REALTIME, TSC) anchor for at most CLEW__CLOCK_WINDOW_NS, which costs
 * one rdtsc and a multiply instead of a clock_gettime; elsewhere it is
 * clock_gettime(CLOCK_REALTIME). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CLEW__SPAN_CLOCK_TSC 1
#else
#define CLEW__SPAN_CLOCK_TSC 0
#endif

#define CLEW__CLOCK_WINDOW_NS 1000000ull /* re-anchor at least every millisecond */

/* Re-anchors the calling thread (and calibrates on first use); returns now. */
uint64_t clew__span_clock_slow(void);

#if CLEW__SPAN_CLOCK_TSC
typedef struct clew__span_clock {
    uint64_t tsc0;   /* anchor: TSC reading */
    uint64_t ns0;    /* anchor: CLOCK_REALTIME at tsc0 */
    uint64_t window; /* ticks the anchor is good for; 0 = no anchor */
    uint64_t mult;   /* ns per tick, 32.32 fixed point (window * mult < 2^64) */
} clew__span_clock;

extern CLEW__TLS clew__span_clock clew__tl_clock;

static inline uint64_t clew__span_now_ns(void)
{
    const clew__span_clock *c = &clew__tl_clock;
    /* a TSC behind the anchor wraps to a huge dt and takes the slow path */
    uint64_t dt = __builtin_ia32_rdtsc() - c->tsc0;
    if (__builtin_expect(dt < c->window, 1)) {
        return c->ns0 + ((dt * c->mult) >> 32);
    }
    return clew__span_clock_slow();
}
#else
static inline uint64_t clew__span_now_ns(void)
{
    return clew__span_clock_slow();
}
#endif

/* Registers the fork handlers once. */
void clew__fork_init(void);

/* ---- samplers ---- */

typedef enum clew__sampler_kind {
    CLEW__SAMPLER_ON,
    CLEW__SAMPLER_OFF,
    CLEW__SAMPLER_RATIO,
    CLEW__SAMPLER_CONSISTENT,
    CLEW__SAMPLER_PARENT,
} clew__sampler_kind;

struct clew_sampler {
    clew__sampler_kind kind;
    double ratio;
    uint64_t threshold; /* RATIO and CONSISTENT: reject below this 56-bit value; 2^56 = never */
    char th[16];        /* CONSISTENT: the th value written on a positive decision */
    clew_sampler *d[5]; /* PARENT: root, remote sampled, remote not, local sampled, local not */
    char *desc;
};

/* ---- exporters ---- */

typedef struct clew__exporter_ops {
    /* Exports n spans; must give up by deadline_mono_ns (monotonic clock).
     * Returns CLEW_OK when accepted. */
    clew_status (*export_spans)(clew_exporter *e, const clew_span_data *const *spans, size_t n,
                                uint64_t deadline_mono_ns);
    void (*after_fork_child)(clew_exporter *e); /* optional */
    void (*destroy)(clew_exporter *e);
} clew__exporter_ops;

struct clew_exporter {
    const clew__exporter_ops *ops;
    clew_log_fn log; /* set by the provider that owns the exporter */
    void *log_ud;
};

/* Logs through an exporter's callback (printf style). */
void clew__exporter_log(clew_exporter *e, clew_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Builds an ExportTraceServiceRequest of `spans` in `arena` and encodes it into
 * `out` (protobuf, or OTLP/JSON when json is true). */
CLEW_NODISCARD clew_status clew__encode_spans(const clew_span_data *const *spans, size_t n,
                                              bool json, clew_arena *arena, clew_buf *out);

/* ---- OTLP/gRPC retry rules (grpc_retry.c) ---- */

/* Longest grpc-status-details-bin value (base64 characters) that is decoded;
 * a longer one is not looked into. */
#define CLEW__GRPC_DETAILS_MAX 4096

/* Decodes a grpc-status-details-bin value (base64 google.rpc.Status, padded or
 * not, surrounding blanks ignored) and looks for a google.rpc.RetryInfo detail.
 * CLEW_OK when there is one: *delay_ns is its retry_delay, or UINT64_MAX when
 * it gives none. CLEW_ENOTFOUND when the Status has no RetryInfo, CLEW_EPARSE
 * when the value is not base64, not a well-formed Status, or the delay is
 * negative or out of Duration's range, CLEW_ETOOBIG above CLEW__GRPC_DETAILS_MAX
 * characters. Pure: no allocation, any thread. */
CLEW_NODISCARD clew_status clew__grpc_retry_info(const char *value, size_t len, uint64_t *delay_ns);

/* Whether a gRPC answer with `grpc_status` (and the grpc-status-details-bin
 * value, NULL when absent) is retried: the OTLP specification's retryable codes
 * always; RESOURCE_EXHAUSTED (8) only with a RetryInfo detail. *delay_ns
 * receives the server's retry delay when one was given, else UINT64_MAX (use
 * the exporter's own backoff). */
bool clew__grpc_retryable(int grpc_status, const char *details, size_t details_len,
                          uint64_t *delay_ns);

/* ---- provider ---- */

typedef struct clew__ring_cell {
    _Atomic size_t seq;
    clew_span *span;
} clew__ring_cell;

/* Bounded MPSC queue of span pointers (Vyukov's sequence-numbered ring):
 * producers claim a slot with one CAS on `head`, the single consumer reads in
 * order. Never blocks; a full ring refuses. */
typedef struct clew__ring {
    clew__ring_cell *cells;
    size_t cap;
    bool pow2; /* cap is a power of two: positions map to cells with a mask, not a division */
    _Alignas(64) _Atomic size_t head; /* next position to claim (producers) */
    _Alignas(64) _Atomic size_t tail; /* next position to read (consumer writes) */
} clew__ring;

struct clew_tracer {
    clew_tracer *next;
    clew_provider *provider;
    clew_scope scope; /* strings in the provider's arena */
};

struct clew_provider {
    /* read-mostly: everything the span hot path reads */
    clew_sampler *sampler;
    clew_span_limits limits;
    clew_id_generator idgen;
    bool has_idgen;
    bool id_random; /* roots get CLEW_TRACE_FLAG_RANDOM */
    bool disabled;
    _Atomic bool shut;
    clew_exporter *exporter;
    clew_processor_kind processor;
    clew_batch_config batch;
    bool batch_pow2;             /* max_export_batch_size is a power of two (see on_end) */
    int8_t root_decision;        /* clew__sample_root_fixed(sampler) */
    _Atomic uint64_t thread_gen; /* fork generation the export thread runs in; ~0 = none */
    clew_resource resource;
    clew_log_fn log;
    void *log_ud;
    clew__ring ring; /* its head and tail sit on lines of their own */

    /* host-written counters, on their own line: the export thread never writes here */
    _Alignas(64) _Atomic uint64_t st_ended; /* simple processor / no exporter only */
    _Atomic uint64_t st_dropped;
    _Atomic bool notified;

    /* export-thread-written counters */
    _Alignas(64) _Atomic uint64_t st_exported;
    _Atomic uint64_t st_failed;
    _Atomic uint64_t st_calls;

    /* cold state, under mu */
    _Alignas(64) pthread_mutex_t mu; /* tracers, arena, flush/stop state */
    clew_arena arena;                /* resource and scopes */
    clew_tracer *tracers;
    clew_propagator *propagator;
    pthread_mutex_t export_mu; /* simple processor: one export at a time */
    pthread_t thread;
    bool thread_started;
    bool thread_exited;
    bool stop;
    bool detached; /* shutdown timed out: the thread is still inside the exporter */
    pthread_cond_t wake;
    pthread_cond_t done;
    uint64_t flush_req, flush_done;
    clew_provider *reg_next; /* registry for fork handling */
};

/* Called by clew_span_end for sampled spans. Takes the span (releases it). */
void clew__provider_on_end(clew_provider *p, clew_span *s);

/* Logs through the provider's callback (printf style). */
void clew__provider_log(const clew_provider *p, clew_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies a clew_attr into a model value with memory from alloc(ctx, n),
 * truncating strings and bytes to max_len (0 = unlimited). */
typedef void *(*clew__alloc_fn)(void *ctx, size_t n);
CLEW_NODISCARD clew_status clew__value_from_attr(clew_value *dst, const clew_attr *src,
                                                 uint32_t max_len, clew__alloc_fn alloc, void *ctx);

/* Copies the tracestate compactly (only the bytes in use). */
static inline void clew__tracestate_copy(clew_tracestate *dst, const clew_tracestate *src)
{
    dst->len = src->len;
    dst->count = src->count;
    for (uint8_t i = 0; i < src->count; i++) {
        dst->member_off[i] = src->member_off[i];
    }
    for (uint16_t i = 0; i < src->len; i++) {
        dst->buf[i] = src->buf[i];
    }
}

/* The sampler decision used by span start (s may be NULL = parentbased(always_on)). */
clew_sampling_decision clew__sample(const clew_sampler *s, const clew_span_context *parent,
                                    const clew_trace_id *tid, clew_tracestate *ts);

/* The decision `s` makes for every root span when it depends neither on the
 * trace id nor on the tracestate (always_on, always_off, parentbased over
 * those), else -1. Lets span start skip the sampler call, and for a dropped
 * root the trace id, which is then made on first use like the span id. */
int clew__sample_root_fixed(const clew_sampler *s);

/* Percent-decodes `len` bytes of `s` into `out` (at least len bytes); false on a
 * malformed escape. *out_len receives the decoded length. */
bool clew__percent_decode(const char *s, size_t len, char *out, size_t *out_len);

/* Parses a "k1=v1,k2=v2" list (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS):
 * keys and values trimmed, values percent-decoded; calls fn for each pair (NUL-
 * terminated, valid during the call). Returns CLEW_OK or CLEW_EPARSE (nothing
 * is called for a malformed list: it is checked whole first). */
typedef clew_status (*clew__kv_fn)(void *ud, const char *key, const char *value);
CLEW_NODISCARD clew_status clew__parse_kv_list(const char *s, clew__kv_fn fn, void *ud);

#endif /* CLEW_SDK_SDK_INTERNAL_H */
