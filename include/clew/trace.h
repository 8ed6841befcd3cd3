/*
 * clew/trace.h - the tracing SDK: provider, tracers, spans, samplers and the
 * thread's current span.
 *
 * A clew_provider owns everything: resource, sampler, limits, the span
 * processor (batch or simple) and its exporter. Tracers come from a provider
 * (cached by scope name and version) and spans from a tracer.
 *
 * Ownership:
 * - Strings passed in (names, keys, string values) are COPIED unless a comment
 *   says otherwise; arrays of clew_attr / clew_link are borrowed for the call.
 * - clew_provider_create takes ownership of the sampler and exporter in the
 *   config, also when it fails.
 * - A clew_span handle is valid from clew_span_start until clew_span_end. Its
 *   memory is then recycled for later spans of the starting thread, so the
 *   handle must not be used after end (not even to end it twice).
 * - A tracer lives as long as its provider.
 *
 * Thread-safety:
 * - Provider and tracer functions may be called from any thread at once,
 *   except create/destroy/shutdown, which the caller must not race with other
 *   calls on the same provider.
 * - A span may be passed between threads, but calls on ONE span must not run
 *   concurrently (the caller serialises them); the hot path takes no lock.
 * - The current span is per thread.
 *
 * The SDK never aborts, never blocks the calling thread on I/O (only
 * clew_provider_force_flush / shutdown wait, up to their timeout), and never
 * writes to stderr: diagnostics go to the log callback of the provider.
 */
#ifndef CLEW_TRACE_H
#define CLEW_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/context.h"
#include "clew/export.h"
#include "clew/propagation.h"
#include "clew/status.h"
#include "clew/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clew_provider clew_provider;
typedef struct clew_tracer clew_tracer;
typedef struct clew_span clew_span;
typedef struct clew_sampler clew_sampler;
typedef struct clew_exporter clew_exporter; /* see clew/exporter.h */

/* ---- attributes ------------------------------------------------------------- */

typedef enum clew_attr_type {
    CLEW_ATTR_STRING = 1,       /* UTF-8 text: v.s */
    CLEW_ATTR_BOOL = 2,         /* v.b */
    CLEW_ATTR_INT = 3,          /* v.i */
    CLEW_ATTR_DOUBLE = 4,       /* v.d */
    CLEW_ATTR_BYTES = 5,        /* raw bytes: v.s */
    CLEW_ATTR_STRING_ARRAY = 6, /* v.array.items is const char *const[] (NUL-terminated) */
    CLEW_ATTR_BOOL_ARRAY = 7,   /* v.array.items is const bool[] */
    CLEW_ATTR_INT_ARRAY = 8,    /* v.array.items is const int64_t[] */
    CLEW_ATTR_DOUBLE_ARRAY = 9, /* v.array.items is const double[] */
    /* An OTLP kvlist (a map): v.array.items is const clew_attr[] of v.array.n
     * members, each with its own non-NULL key; members may be kvlists again, at
     * most CLEW_ATTR_MAX_DEPTH levels deep. Added in 0.1. */
    CLEW_ATTR_KVLIST = 10,
} clew_attr_type;

/* How deep kvlists may nest (the outermost kvlist is level 1); a deeper value is
 * rejected (the attribute is dropped and counted). */
#define CLEW_ATTR_MAX_DEPTH 8

/* One attribute to pass in. Everything it points at is borrowed for the call and
 * copied by the SDK. `key` is NUL-terminated and must not be empty. */
typedef struct clew_attr {
    const char *key;
    clew_attr_type type;
    union {
        clew_str s;
        bool b;
        int64_t i;
        double d;
        struct {
            const void *items;
            size_t n;
        } array;
    } v;
} clew_attr;

/* Constructors for clew_attr literals: clew_attr a[] = {clew_attr_str("k", "v"), ...}. */
static inline clew_attr clew_attr_str(const char *key, const char *value)
{
    clew_attr a;
    size_t n = 0;
    while (value != NULL && value[n] != '\0') {
        n++;
    }
    a.key = key;
    a.type = CLEW_ATTR_STRING;
    a.v.s.ptr = value;
    a.v.s.len = n;
    return a;
}
static inline clew_attr clew_attr_int(const char *key, int64_t value)
{
    clew_attr a;
    a.key = key;
    a.type = CLEW_ATTR_INT;
    a.v.i = value;
    return a;
}
static inline clew_attr clew_attr_bool(const char *key, bool value)
{
    clew_attr a;
    a.key = key;
    a.type = CLEW_ATTR_BOOL;
    a.v.b = value;
    return a;
}
static inline clew_attr clew_attr_double(const char *key, double value)
{
    clew_attr a;
    a.key = key;
    a.type = CLEW_ATTR_DOUBLE;
    a.v.d = value;
    return a;
}
/* A kvlist of the n members at `members` (borrowed until the attribute is set). */
static inline clew_attr clew_attr_kvlist(const char *key, const struct clew_attr *members, size_t n)
{
    clew_attr a;
    a.key = key;
    a.type = CLEW_ATTR_KVLIST;
    a.v.array.items = members;
    a.v.array.n = n;
    return a;
}

/* ---- limits ----------------------------------------------------------------- */

/* Span limits (OpenTelemetry "Span Limits"); 0 in a count means "use the default"
 * in clew_span_limits_init, and value_length 0 means unlimited. Over-limit
 * attributes, events and links are dropped and counted in the span's dropped_*
 * counts; strings and bytes longer than value_length are truncated (per array
 * element; UTF-8 strings are cut at a character boundary). */
typedef struct clew_span_limits {
    uint32_t attribute_count;        /* per span, default 128 */
    uint32_t attribute_value_length; /* default 0 = unlimited */
    uint32_t event_count;            /* default 128 */
    uint32_t link_count;             /* default 128 */
    uint32_t event_attribute_count;  /* default 128 */
    uint32_t link_attribute_count;   /* default 128 */
} clew_span_limits;

/* clew_span_limits_init - the defaults above. Added in 0.1. */
CLEW_EXPORT void clew_span_limits_init(clew_span_limits *l);

/* ---- samplers --------------------------------------------------------------- */

typedef enum clew_sampling_decision {
    CLEW_SAMPLING_DROP = 0,             /* non-recording span */
    CLEW_SAMPLING_RECORD_ONLY = 1,      /* recorded, sampled flag unset, not exported */
    CLEW_SAMPLING_RECORD_AND_SAMPLE = 2 /* recorded, sampled flag set, exported */
} clew_sampling_decision;

/*
 * Samplers are immutable after creation and thread-safe; destroy with
 * clew_sampler_destroy (NULL is a no-op). A sampler given to a provider or to
 * clew_sampler_parentbased is owned by it.
 *
 * traceidratio(r): deterministic on the trace id and independent of the parent:
 * R = the low 56 bits of the trace id (bytes 9..15, big-endian; the bytes W3C
 * Level 2 makes random), T = round((1 - r) * 2^56); sampled iff R >= T. A higher
 * ratio has a lower T, so it samples a superset of the trace ids a lower ratio
 * samples. r <= 0 drops everything, r >= 1 samples everything. Description
 * "TraceIdRatioBased{r}" (printed with %g).
 *
 * consistent_probability(r) (OTEP 235): the same rule, but R is the `rv` sub-key
 * of the `ot` tracestate entry when present (14 lowercase hex digits), else the
 * low 56 bits of the trace id; T is rounded to 4 hex digits (to more when that
 * would round to 2^56). On a positive decision it writes `th:<T>` (trailing
 * zeros removed, `th:0` for 100%) into the `ot` entry of the new span's
 * tracestate, keeping the other sub-keys (an `rv` is never touched); on a
 * negative decision it removes `th`. Description "ProbabilitySampler{r}".
 *
 * parentbased(root, remote_sampled, remote_not_sampled, local_sampled,
 * local_not_sampled): no valid parent -> root; otherwise the delegate chosen by
 * (parent is_remote, parent sampled). NULL delegates take the defaults:
 * root AlwaysOn, *_sampled AlwaysOn, *_not_sampled AlwaysOff. Takes ownership of
 * every delegate, also on failure. Description
 * "ParentBased{root=...,remoteParentSampled=...,...}".
 *
 * Each returns CLEW_OK with *out set (caller owns it), CLEW_EINVAL (out NULL,
 * ratio NaN) or CLEW_ENOMEM. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_sampler_always_on(clew_sampler **out);
CLEW_EXPORT CLEW_NODISCARD clew_status clew_sampler_always_off(clew_sampler **out);
CLEW_EXPORT CLEW_NODISCARD clew_status clew_sampler_traceidratio(double ratio, clew_sampler **out);
CLEW_EXPORT CLEW_NODISCARD clew_status clew_sampler_consistent_probability(double ratio,
                                                                           clew_sampler **out);
CLEW_EXPORT CLEW_NODISCARD clew_status clew_sampler_parentbased(
    clew_sampler *root, clew_sampler *remote_sampled, clew_sampler *remote_not_sampled,
    clew_sampler *local_sampled, clew_sampler *local_not_sampled, clew_sampler **out);

/* clew_sampler_destroy - free `s` and its delegates; NULL is a no-op. Added in 0.1. */
CLEW_EXPORT void clew_sampler_destroy(clew_sampler *s);

/* clew_sampler_description - the spec's description string, owned by `s`. Added in 0.1. */
CLEW_EXPORT const char *clew_sampler_description(const clew_sampler *s);

/*
 * clew_sampler_should_sample - run the sampler as span start does. `parent`
 * (borrowed; NULL or invalid = root) and `trace_id` (the new span's trace id).
 * *out_tracestate receives the tracestate the new span gets (the parent's,
 * possibly modified by the consistent sampler); it may be NULL.
 * Returns the decision. Does not allocate. Added in 0.1.
 */
CLEW_EXPORT clew_sampling_decision clew_sampler_should_sample(const clew_sampler *s,
                                                              const clew_span_context *parent,
                                                              const clew_trace_id *trace_id,
                                                              clew_tracestate *out_tracestate);

/* ---- provider --------------------------------------------------------------- */

typedef enum clew_log_level {
    CLEW_LOG_DEBUG = 0,
    CLEW_LOG_INFO = 1,
    CLEW_LOG_WARN = 2,
    CLEW_LOG_ERROR = 3,
} clew_log_level;

/* Called with one diagnostic line (NUL-terminated, borrowed for the call). May be
 * called from any thread, including the export thread; must not call back into
 * the provider. */
typedef void (*clew_log_fn)(void *ud, clew_log_level level, const char *message);

/* A custom id generator. Both functions must be thread-safe and fill a non-zero
 * id. `w3c_random` says whether the right-most 7 bytes of each trace id are
 * random (W3C Level 2); only then do new root spans get the random flag. */
typedef struct clew_id_generator {
    void (*trace_id)(void *ud, clew_trace_id *out);
    void (*span_id)(void *ud, clew_span_id *out);
    void *ud;
    bool w3c_random;
} clew_id_generator;

typedef enum clew_processor_kind {
    CLEW_PROCESSOR_BATCH = 0,  /* queue + one export thread (default) */
    CLEW_PROCESSOR_SIMPLE = 1, /* export synchronously inside clew_span_end (tests) */
} clew_processor_kind;

/* Batch processor settings (OTEL_BSP_*); 0 means "default". */
typedef struct clew_batch_config {
    uint32_t max_queue_size;        /* 2048 */
    uint32_t max_export_batch_size; /* 512, at most max_queue_size */
    uint32_t schedule_delay_ms;     /* 5000 */
    uint32_t export_timeout_ms;     /* 30000 */
} clew_batch_config;

typedef struct clew_provider_config {
    /* resource attributes (borrowed for create, copied); a later duplicate key
     * wins. `service_name` below wins over a service.name given here. */
    const clew_attr *resource_attrs;
    size_t n_resource_attrs;
    const char *service_name; /* optional; copied */
    clew_sampler *sampler;    /* owned; NULL = parentbased(always_on) */
    clew_span_limits limits;
    clew_processor_kind processor;
    clew_batch_config batch;
    clew_exporter *exporter;        /* owned; NULL = spans are dropped after processing */
    clew_id_generator id_generator; /* trace_id NULL = the built-in per-thread PRNG */
    clew_log_fn log;                /* NULL = diagnostics are discarded */
    void *log_ud;
    bool disabled; /* true: every span is a non-recording no-op */
} clew_provider_config;

/* clew_provider_config_init - defaults: no resource attributes, default sampler,
 * default limits, batch processor with defaults, no exporter, no log. Added in 0.1. */
CLEW_EXPORT void clew_provider_config_init(clew_provider_config *c);

/*
 * clew_provider_create - a provider from `config` (borrowed; the sampler and the
 * exporter are taken over, also on failure). With the batch processor the export
 * thread starts here. Caller frees *out with clew_provider_destroy.
 * Returns CLEW_OK, CLEW_EINVAL, CLEW_ENOMEM or CLEW_EIO (thread creation).
 * Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_provider_create(const clew_provider_config *config,
                                                            clew_provider **out);

/*
 * clew_provider_create_from_env - like clew_provider_create, with the settings of
 * the OTEL_* environment variables applied over `base` (borrowed; NULL = defaults;
 * its sampler and exporter are taken over, and replaced when a variable says
 * otherwise). See docs/sdk.md for the list. Empty variables count as unset;
 * bad values are reported once through the log callback and ignored.
 * OTEL_SDK_DISABLED=true gives a no-op provider. Reads the environment with
 * getenv: call it before starting threads that call setenv.
 * Returns as clew_provider_create. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status
clew_provider_create_from_env(const clew_provider_config *base, clew_provider **out);

/*
 * clew_provider_force_flush - export every span ended before the call; waits at
 * most timeout_ms. Returns CLEW_OK, CLEW_ETIMEDOUT, or CLEW_ECLOSED after shutdown.
 * Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_provider_force_flush(clew_provider *p,
                                                                 uint32_t timeout_ms);

/*
 * clew_provider_shutdown - flush, stop the export thread and shut the exporter
 * down, waiting at most timeout_ms. Afterwards new spans are non-recording
 * no-ops. A second call returns CLEW_ECLOSED. Returns CLEW_OK or CLEW_ETIMEDOUT
 * (the thread is still stuck in the exporter; destroy then detaches it and
 * leaks its memory rather than block). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_provider_shutdown(clew_provider *p,
                                                              uint32_t timeout_ms);

/* clew_provider_destroy - shut down (5 s at most) if not done, then free `p`, its
 * tracers, sampler and exporter. Spans of `p` must have ended. NULL is a no-op.
 * Added in 0.1. */
CLEW_EXPORT void clew_provider_destroy(clew_provider *p);

/* Counters since creation; read with relaxed atomics (approximate while spans run). */
typedef struct clew_provider_stats {
    uint64_t spans_ended;    /* recording and sampled spans handed to the processor */
    uint64_t dropped_spans;  /* sampled spans lost: queue full, or ended after shutdown */
    uint64_t exported_spans; /* spans the exporter accepted */
    uint64_t failed_spans;   /* spans lost because the export failed or timed out */
    uint64_t export_calls;   /* exporter invocations */
} clew_provider_stats;

/* clew_provider_stats_get - copy the counters into *out. Added in 0.1. */
CLEW_EXPORT void clew_provider_stats_get(const clew_provider *p, clew_provider_stats *out);

/* clew_provider_propagator - the propagator OTEL_PROPAGATORS chose (tracecontext,
 * baggage by default); owned by `p`. Added in 0.1. */
CLEW_EXPORT const clew_propagator *clew_provider_propagator(const clew_provider *p);

/*
 * clew_provider_tracer - the tracer for instrumentation scope `name` (required)
 * and `version` (optional), both copied; the same pointer is returned for the
 * same (name, version). Owned by `p`.
 * Returns CLEW_OK, CLEW_EINVAL or CLEW_ENOMEM. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_provider_tracer(clew_provider *p, const char *name,
                                                            const char *version, clew_tracer **out);

/* ---- spans ------------------------------------------------------------------ */

typedef enum clew_kind {
    CLEW_SPAN_KIND_INTERNAL = 1,
    CLEW_SPAN_KIND_SERVER = 2,
    CLEW_SPAN_KIND_CLIENT = 3,
    CLEW_SPAN_KIND_PRODUCER = 4,
    CLEW_SPAN_KIND_CONSUMER = 5,
} clew_kind;

typedef enum clew_span_status {
    CLEW_SPAN_STATUS_UNSET = 0,
    CLEW_SPAN_STATUS_OK = 1,
    CLEW_SPAN_STATUS_ERROR = 2,
} clew_span_status;

/* A link to another span context (borrowed for the call, copied). */
typedef struct clew_link {
    const clew_span_context *context;
    const clew_attr *attrs;
    size_t n_attrs;
} clew_link;

/* Optional arguments of clew_span_start; a zeroed struct gives the defaults. */
typedef struct clew_span_options {
    clew_kind kind;                  /* 0 = INTERNAL */
    const clew_span_context *parent; /* explicit parent; NULL = the thread's current span */
    bool root;                       /* true: ignore the current span, start a new trace */
    const clew_attr *attrs;          /* initial attributes (borrowed, copied) */
    size_t n_attrs;
    const clew_link *links; /* borrowed, copied */
    size_t n_links;
    uint64_t start_ns; /* Unix epoch ns; 0 = now */
} clew_span_options;

/*
 * clew_span_start - start a span named `name` (copied) from tracer `t`.
 * `opt` (borrowed) may be NULL. Sampling is decided before any attribute is
 * copied: a dropped span is a cheap non-recording object that still carries a
 * span context for propagation. Never returns NULL (on OOM or with a NULL tracer
 * it returns a shared no-op span whose context is invalid). End it with
 * clew_span_end. Added in 0.1.
 */
CLEW_EXPORT clew_span *clew_span_start(clew_tracer *t, const char *name,
                                       const clew_span_options *opt);

/* clew_span_end - end `s` now (end_ns 0) or at end_ns (Unix epoch ns), hand it
 * to the processor and release the handle. NULL is a no-op. Added in 0.1. */
CLEW_EXPORT void clew_span_end(clew_span *s, uint64_t end_ns);

/* clew_span_is_recording - true when attributes etc. are recorded. Added in 0.1. */
CLEW_EXPORT bool clew_span_is_recording(const clew_span *s);

/* clew_span_context_get - the span's context (copy into caller storage). Added in 0.1. */
CLEW_EXPORT void clew_span_context_get(const clew_span *s, clew_span_context *out);

/*
 * Attribute setters: set (or replace, when the key exists) one attribute. Values
 * are copied. Non-recording spans ignore them. When the count limit is reached
 * a new key is dropped and counted. Return nothing: the SDK never fails the
 * caller for telemetry. Added in 0.1.
 */
CLEW_EXPORT void clew_span_set_attr(clew_span *s, const clew_attr *a);
CLEW_EXPORT void clew_span_set_attrs(clew_span *s, const clew_attr *attrs, size_t n);
CLEW_EXPORT void clew_span_set_str(clew_span *s, const char *key, const char *value);
CLEW_EXPORT void clew_span_set_strn(clew_span *s, const char *key, const char *value, size_t len);
CLEW_EXPORT void clew_span_set_int(clew_span *s, const char *key, int64_t value);
CLEW_EXPORT void clew_span_set_bool(clew_span *s, const char *key, bool value);
CLEW_EXPORT void clew_span_set_double(clew_span *s, const char *key, double value);
CLEW_EXPORT void clew_span_set_bytes(clew_span *s, const char *key, const void *data, size_t len);

/* clew_span_add_event - an event `name` with attributes (borrowed, copied) at
 * time_ns (0 = now). Added in 0.1. */
CLEW_EXPORT void clew_span_add_event(clew_span *s, const char *name, const clew_attr *attrs,
                                     size_t n_attrs, uint64_t time_ns);

/* clew_span_add_link - add a link after start (borrowed, copied). Added in 0.1. */
CLEW_EXPORT void clew_span_add_link(clew_span *s, const clew_link *link);

/* clew_span_record_exception - an "exception" event with exception.type,
 * exception.message and exception.stacktrace (each optional, NULL = absent). It
 * does not change the status. Added in 0.1. */
CLEW_EXPORT void clew_span_record_exception(clew_span *s, const char *type, const char *message,
                                            const char *stacktrace);

/* clew_span_set_status - Ok is final; Error replaces Unset or Error; Unset is
 * ignored. `description` (copied) is kept only with Error. Added in 0.1. */
CLEW_EXPORT void clew_span_set_status(clew_span *s, clew_span_status code, const char *description);

/* clew_span_update_name - replace the name (copied). Added in 0.1. */
CLEW_EXPORT void clew_span_update_name(clew_span *s, const char *name);

/* ---- current span ----------------------------------------------------------- */

/* What clew_span_make_current returns: restore it with clew_span_restore. Plain
 * value; its fields are private. */
typedef struct clew_current_token {
    clew_span *prev;
    uint32_t depth;
} clew_current_token;

/*
 * clew_span_make_current - make `s` the current span of the calling thread, so
 * spans started without an explicit parent become its children. Returns the
 * token to pass to clew_span_restore; restores must be done in reverse order on
 * the same thread. `s` must stay un-ended while current. Added in 0.1.
 */
CLEW_EXPORT clew_current_token clew_span_make_current(clew_span *s);

/* clew_span_restore - make the span current before the matching make_current
 * current again. Out-of-order restores are ignored. Added in 0.1. */
CLEW_EXPORT void clew_span_restore(clew_current_token token);

/* clew_span_current - the calling thread's current span, or NULL. Added in 0.1. */
CLEW_EXPORT clew_span *clew_span_current(void);

#ifdef __cplusplus
}
#endif

#endif /* CLEW_TRACE_H */
