/*
 * src/sampling/sampler.h - tail-based sampling: policies, their configuration and
 * the engine that holds traces pending a decision (docs/internals/tail-sampling.md).
 *
 * Flow: the server acknowledges a batch (durable in the WAL), then hands it to
 * clew__tail_observe(). The engine keeps a small summary per pending trace (times,
 * status codes, span count, root seen, and only the attribute values that some
 * policy asks about), never the spans themselves: those are in the store already.
 * clew__tail_tick() decides every trace whose time has come and reports each
 * decision through the clew_tail_decision_fn callback, which is where the server
 * calls the store's set_trace_meta(trace_id, {state, kept_reason, adjusted_count}).
 *
 * Ownership: a clew_tail_config owns its policies and strings (free with
 * clew__tail_config_free). The engine copies nothing from the config: the config
 * must outlive the engine. Batches passed to observe are borrowed for the call only.
 * The reason string given to the callback points into the config (stable).
 *
 * Thread-safety: none. One engine is driven by one thread (or under one lock);
 * the decision callback runs on the calling thread, inside observe/tick/flush.
 */
#ifndef CLEW_SAMPLING_SAMPLER_H
#define CLEW_SAMPLING_SAMPLER_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "clew/types.h"
#include "model/model.h"
#include "server/config.h"
#include "store/store.h"

/* ---- policies (named like the OpenTelemetry Collector's tail_sampling processor) ---- */

typedef enum clew_tail_policy_type {
    CLEW_TAIL_ALWAYS_SAMPLE = 0,
    CLEW_TAIL_LATENCY,
    CLEW_TAIL_STATUS_CODE,
    CLEW_TAIL_PROBABILISTIC,
    CLEW_TAIL_STRING_ATTRIBUTE,
    CLEW_TAIL_NUMERIC_ATTRIBUTE,
    CLEW_TAIL_BOOLEAN_ATTRIBUTE,
    CLEW_TAIL_SPAN_COUNT,
    CLEW_TAIL_TRACE_STATE,
    CLEW_TAIL_RATE_LIMITING,
    CLEW_TAIL_AND,
    CLEW_TAIL_COMPOSITE,
    CLEW_TAIL_DROP,
} clew_tail_policy_type;

/* Longest nesting of and/composite/drop inside each other, and most policies in one
 * config (all levels): bounds on what a config file can make the engine do. */
#define CLEW_TAIL_MAX_DEPTH     3
#define CLEW_TAIL_MAX_POLICIES  256
#define CLEW_TAIL_MAX_VALUES    256
#define CLEW_TAIL_MAX_ATTR_KEYS 64

typedef struct clew_tail_policy clew_tail_policy;

struct clew_tail_policy {
    char *name; /* unique at its level; the kept_reason of traces it keeps */
    clew_tail_policy_type type;

    /* latency: trace duration (earliest start to latest end) >= threshold, and
     * < upper when upper is non-zero */
    uint64_t threshold_ns, upper_threshold_ns;
    /* status_code: bit (1 << clew_status_code) for each listed code */
    unsigned status_mask;
    /* probabilistic */
    double percentage; /* 0..100 */
    char *hash_salt;   /* NULL = none */
    uint64_t prob_threshold;
    /* string/numeric/boolean attribute and trace_state: the key, and for strings and
     * trace_state the values (regexes when regex is set) */
    char *key;
    char **values;
    size_t n_values;
    bool regex;
    regex_t *regexes; /* n_values compiled patterns when regex */
    bool invert;
    int64_t min_value, max_value;
    bool has_min, has_max;
    bool bool_value;
    int attr_slot; /* index of `key` in the engine's attribute key table (config-time) */
    /* span_count: min_spans <= count, and count <= max_spans when max_spans != 0 */
    uint64_t min_spans, max_spans;
    /* rate_limiting */
    uint64_t spans_per_second;
    /* and / drop / composite sub-policies */
    clew_tail_policy *subs;
    size_t n_subs;
    /* composite */
    uint64_t max_total_sps;
    size_t *order;     /* n_subs indexes into subs, evaluation order (policy_order) */
    double *alloc_pct; /* per sub: percent of max_total_sps (after defaulting) */
    /* runtime state of rate_limiting and composite: the current second and what was
     * spent in it (composite: per sub in sub_spent) */
    uint64_t cur_second;
    uint64_t spent;
    uint64_t *sub_spent;
};

typedef struct clew_tail_config {
    uint64_t decision_wait_ns;            /* default 30s */
    uint64_t decision_grace_ns;           /* default 10s; clew extension */
    uint64_t num_traces;                  /* pending traces held; default 50000 */
    uint64_t expected_new_traces_per_sec; /* sizing hint only */
    uint64_t sampled_cache_size;          /* decision_cache: default 100000; 0 = off */
    uint64_t non_sampled_cache_size;      /* default 100000; 0 = off */
    uint64_t max_bytes;                   /* memory budget of pending traces; default 64 MiB */
    uint64_t max_spans_per_trace;         /* spans summarised per trace; default 10000 */
    clew_tail_policy *policies;
    size_t n_policies;
    /* every attribute key any policy asks about (filled by the parser) */
    char *attr_keys[CLEW_TAIL_MAX_ATTR_KEYS];
    size_t n_attr_keys;
    bool uses_trace_state;
} clew_tail_config;

void clew__tail_config_defaults(clew_tail_config *c);
void clew__tail_config_free(clew_tail_config *c);

/* Parses the `tail_sampling` section of a YAML document in `data` (the server's
 * config file: the section is a top-level key). *out is NULL (and CLEW_OK returned)
 * when the document has no such section. Errors: CLEW_EPARSE with
 * "name:line: reason" in err. The result is freed with clew__tail_config_free. */
CLEW_NODISCARD clew_status clew__tail_config_load_buffer(const char *name, const char *data,
                                                         size_t len, clew_tail_config **out,
                                                         clew_config_error *err);

/* Parses a `--sampling` preset: "off" (*out = NULL) or '+'-joined parts among
 * "errors" (status_code ERROR), "slow:DURATION" (latency), "N%" (probabilistic),
 * "all" (always_sample), e.g. "errors+slow:500ms+10%". */
CLEW_NODISCARD clew_status clew__tail_preset_parse(const char *s, clew_tail_config **out,
                                                   clew_config_error *err);

/* Builds the derived fields (attribute key table, probability thresholds) once the
 * policies are set; the parsers call it. Exposed for tests that build configs in C. */
CLEW_NODISCARD clew_status clew__tail_config_finish(clew_tail_config *c, clew_config_error *err);

/* ---- what a policy sees: the summary of one trace ---- */

typedef struct clew_tail_attr {
    uint16_t slot; /* index into clew_tail_config.attr_keys */
    uint8_t type;  /* clew_value_type: STRING, BOOL, INT or DOUBLE */
    uint8_t pad;
    uint32_t len; /* string length; the bytes follow in the trace's string area */
    union {
        int64_t i;
        double d;
        bool b;
        uint64_t off; /* offset of the string in the trace's string area */
    } u;
} clew_tail_attr;

typedef struct clew_tail_trace_view {
    clew_trace_id trace_id;
    uint64_t n_spans; /* every span seen, stored or only counted */
    uint64_t min_start_ns, max_end_ns;
    unsigned status_seen; /* bit (1 << code) for each status code seen */
    const clew_tail_attr *attrs;
    size_t n_attrs;
    const char *strings;          /* string area of attrs and trace states */
    const uint64_t *trace_states; /* (offset << 32 | len) of each distinct trace_state */
    size_t n_trace_states;
} clew_tail_trace_view;

typedef enum clew_tail_verdict {
    CLEW_TAIL_NOT_SAMPLED = 0,
    CLEW_TAIL_SAMPLED = 1,
    CLEW_TAIL_DROPPED = 2, /* a drop policy vetoes */
} clew_tail_verdict;

/* Evaluates one policy at time now_ns (rate limits count seconds of that clock).
 * *adjusted is how many traces a SAMPLED trace stands for under this policy. */
clew_tail_verdict clew__tail_policy_eval(clew_tail_policy *p, const clew_tail_config *c,
                                         const clew_tail_trace_view *t, uint64_t now_ns,
                                         double *adjusted);

/* Evaluates all policies: drop policies first (any match vetoes), then the rest;
 * SAMPLED when any samples. *reason is the sampling (or dropping) policy's name
 * (the one with the smallest adjusted count when several sample), NULL if none. */
clew_tail_verdict clew__tail_evaluate(clew_tail_config *c, const clew_tail_trace_view *t,
                                      uint64_t now_ns, const char **reason, double *adjusted);

/* The head-sampling adjusted count carried by a W3C tracestate's `ot=th:` entry
 * (wire.md §3.3): 2^56 / (2^56 - T); 1 when absent or malformed. */
double clew__tail_head_adjusted(const char *ts, size_t len);

/* ---- the engine ---- */

typedef struct clew_tail_engine clew_tail_engine;

typedef struct clew_tail_decision {
    clew_trace_id trace_id;
    clew_trace_state state; /* CLEW_TRACE_KEPT or CLEW_TRACE_DROPPED */
    const char *reason;     /* policy name (kept or dropped by); NULL = no policy matched */
    double adjusted_count;  /* traces this one stands for (KEPT); 1 otherwise */
    uint64_t n_spans;       /* spans of this observation: the trace so far, or the late ones */
    bool late;              /* repeated for late spans found in the decision cache */
    bool forced;            /* decided early because the engine was full */
} clew_tail_decision;

typedef void (*clew_tail_decision_fn)(const clew_tail_decision *d, void *ud);
typedef uint64_t (*clew_tail_clock_fn)(void *ud); /* nanoseconds, monotonic */
typedef void (*clew_tail_log_fn)(const char *msg, void *ud);

typedef struct clew_tail_hooks {
    clew_tail_decision_fn on_decision;
    clew_tail_clock_fn clock; /* NULL = clew__now_mono_ns */
    clew_tail_log_fn log;     /* NULL = silent */
    void *ud;
} clew_tail_hooks;

#define CLEW_TAIL_OUTCOMES 3 /* indexed by clew_tail_verdict */

typedef struct clew_tail_metrics {
    uint64_t traces_decided[CLEW_TAIL_OUTCOMES];
    uint64_t spans_decided[CLEW_TAIL_OUTCOMES];
    /* per top-level policy (config order), traces it sampled / dropped; index
     * n_policies counts traces no policy matched */
    uint64_t *policy_sampled;
    uint64_t *policy_dropped;
    uint64_t late_spans_kept, late_spans_dropped;
    uint64_t forced_decisions;     /* decided early: num_traces or max_bytes reached */
    uint64_t spans_not_summarised; /* beyond max_spans_per_trace: counted only */
    uint64_t pending_traces;
    uint64_t pending_bytes;
    uint64_t pending_spans;
} clew_tail_metrics;

CLEW_NODISCARD clew_status clew__tail_engine_new(clew_tail_config *cfg,
                                                 const clew_tail_hooks *hooks,
                                                 clew_tail_engine **out);
/* Decides nothing: pending traces are lost to the engine (the caller flushes first
 * if it wants decisions). */
void clew__tail_engine_free(clew_tail_engine *e);

/* Records acknowledged spans. Spans of decided traces found in the decision cache
 * are reported at once (late=true) with the earlier decision. May force decisions
 * of the oldest pending traces to stay within num_traces and max_bytes. */
CLEW_NODISCARD clew_status clew__tail_observe(clew_tail_engine *e, const clew_batch *b);
/* Same for a flat span array (tests, bench). */
CLEW_NODISCARD clew_status clew__tail_observe_spans(clew_tail_engine *e,
                                                    const clew_span_data *const *spans, size_t n);
/* Decides every trace that is due at the clock's current time; returns how many. */
size_t clew__tail_tick(clew_tail_engine *e);
/* Decides every pending trace now (shutdown). */
size_t clew__tail_flush(clew_tail_engine *e);
/* Nanoseconds until the next trace falls due (UINT64_MAX when none pending). */
uint64_t clew__tail_next_due(clew_tail_engine *e);
/* A snapshot; the per-policy arrays point into the engine (valid until free). */
void clew__tail_metrics(clew_tail_engine *e, clew_tail_metrics *out);

#endif /* CLEW_SAMPLING_SAMPLER_H */
