/*
 * src/store/store.h - the backend-neutral storage interface.
 *
 * Implementations behind it: the durable embedded engine (store/embedded/, the
 * default), the memory store (store/memory/, lossy, bounded by --max-traces; also the
 * embedded engine's head) and, wrapping either, the tail sampler's store
 * (sampling/tail_store.h); ClickHouse is a later issue. The server and the query
 * layer only ever see this header.
 *
 * Thread-safety: every operation may be called from any thread concurrently; each
 * implementation does its own locking.
 *
 * Ownership: append() borrows the batch for the duration of the call only: the
 * store copies what it keeps before returning (unless the caller's meta says
 * batch_held: then the batch stays valid until the append callback). Results
 * (clew_trace_result, clew_search_result, clew_name_list) are owned by the caller and
 * freed with their clew__*_free function.
 */
#ifndef CLEW_STORE_STORE_H
#define CLEW_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "clew/types.h"
#include "common/arena.h"
#include "model/model.h"

typedef struct clew_store clew_store;

/* Where a trace stands with respect to tail sampling. */
typedef enum clew_trace_state {
    CLEW_TRACE_PENDING = 0, /* waiting on a sampling decision */
    CLEW_TRACE_KEPT = 1,
    CLEW_TRACE_DROPPED = 2,
} clew_trace_state;

/* Trace-level metadata the store keeps beside the spans (never inside a span). */
typedef struct clew_trace_meta {
    clew_trace_state state;
    clew_str kept_reason;  /* policy name that kept it; empty when not sampled by a policy */
    double adjusted_count; /* how many traces this one stands for; 1 when unsampled */
    clew_str tenant;       /* empty = default tenant */
    /* Hints for append() only (every other operation ignores them, and a result's meta
     * has them zero); a store may ignore them too. They let a receiver spare the store
     * a copy and a re-encoding of what it already holds.
     * otlp_pb: the protobuf ExportTraceServiceRequest the batch was decoded from, when
     * decoding these bytes again gives exactly the batch (nothing rejected, nothing
     * changed since); a store that logs protobuf may write them instead of encoding
     * the batch. Borrowed like the batch. NULL = not given.
     * batch_held: the caller keeps the batch (and otlp_pb) unchanged and valid until
     * the append callback has run, not just for the call, so a store may read it
     * then instead of copying it now. */
    const uint8_t *otlp_pb;
    size_t otlp_pb_len;
    bool batch_held;
} clew_trace_meta;

/* A whole trace: its spans (deduplicated on trace id + span id) and its metadata.
 * Everything lives in `arena`. */
typedef struct clew_trace_result {
    clew_arena arena;
    clew_trace_id trace_id;
    clew_trace_meta meta;
    const clew_span_data **spans; /* n_spans pointers, ordered by start time */
    size_t n_spans;
} clew_trace_result;

void clew__trace_result_free(clew_trace_result *t);

/* One search condition on an attribute: key = value, compared as text. The value
 * matches string attributes exactly and other types by their text form
 * ("true", "200", "1.5"). Span attributes and resource attributes both match. */
typedef struct clew_tag_filter {
    clew_str key;
    clew_str value;
} clew_tag_filter;

#define CLEW_SEARCH_MAX_TAGS 16

typedef struct clew_search_query {
    clew_str service;   /* empty = any; matches any span's service.name */
    clew_str operation; /* empty = any; a span of `service` (if set) with this name */
    clew_tag_filter tags[CLEW_SEARCH_MAX_TAGS];
    size_t n_tags;            /* all tags must match (on one span, or on its resource) */
    uint64_t min_duration_ns; /* 0 = no bound; compared with the trace's duration */
    uint64_t max_duration_ns; /* 0 = no bound */
    uint64_t start_min_ns;    /* trace start >= this; 0 = no bound */
    uint64_t start_max_ns;    /* trace start <= this; 0 = no bound */
    bool errors_only;
    size_t limit; /* most recent first; 0 = implementation default (20) */
} clew_search_query;

/* A summary of one matching trace. */
typedef struct clew_trace_summary {
    clew_trace_id trace_id;
    uint64_t start_ns;
    uint64_t duration_ns;
    clew_str root_service; /* service of the root span (or of the earliest span) */
    clew_str root_operation;
    uint32_t span_count;
    uint32_t error_count;
    clew_trace_state state;
} clew_trace_summary;

typedef struct clew_search_result {
    clew_arena arena;
    clew_trace_summary *traces; /* newest first */
    size_t n_traces;
    /* what the caller should know about how the result was found, for the API to pass on:
     * e.g. an attribute whose values are not indexed in some blocks (those were scanned).
     * Sentences in `arena`; none in the common case. */
    clew_str *warnings;
    size_t n_warnings;
} clew_search_result;

void clew__search_result_free(clew_search_result *r);

/* A sorted list of names, e.g. services or operations. For operations, kinds[i] is
 * the span kind of names[i] (one entry per distinct name + kind pair); NULL for services. */
typedef struct clew_name_list {
    clew_arena arena;
    clew_str *names;
    clew_span_kind *kinds;
    size_t n;
} clew_name_list;

void clew__name_list_free(clew_name_list *l);

/* Called once per append when the batch may be acknowledged (rc == CLEW_OK: durable
 * as configured) or must be refused (CLEW_EFULL: back-pressure, answer 429/UNAVAILABLE;
 * other codes: answer 500). May run on a store thread: it must not block. */
typedef void (*clew_append_cb)(clew_status rc, void *ud);

/* Called with each appended batch once its spans are in the store (queryable), before
 * the append callback runs; never for spans replayed on open. This is where the tail
 * sampler sees what was acknowledged. Runs on whatever thread completes the append (a
 * store thread for the embedded store): it must not block on I/O nor call append. The
 * batch is borrowed for the call. */
typedef void (*clew_store_observer)(const clew_batch *b, void *ud);

typedef struct clew_store_stats {
    uint64_t spans;
    uint64_t traces;
    uint64_t bytes;           /* memory or disk held */
    uint64_t evicted_traces;  /* memory store: acknowledged traces evicted by --max-traces */
    uint64_t duplicate_spans; /* spans dropped as duplicates of one already stored */
    uint64_t index_bytes;     /* embedded store: memory of the open blocks' loaded indexes */
} clew_store_stats;

typedef struct clew_store_ops {
    const char *name;
    void (*destroy)(clew_store *s);
    /* Copies the batch's spans and calls cb exactly once, now or later (possibly on
     * another thread). Returns CLEW_OK if cb will be (or was) called; an error return
     * means cb is never called. */
    clew_status (*append)(clew_store *s, const clew_batch *b, const clew_trace_meta *meta,
                          clew_append_cb cb, void *ud);
    /* CLEW_ENOTFOUND when the store has no span of the trace. */
    clew_status (*get_trace)(clew_store *s, const clew_trace_id *id, clew_trace_result **out);
    clew_status (*search)(clew_store *s, const clew_search_query *q, clew_search_result **out);
    clew_status (*services)(clew_store *s, clew_name_list **out);
    /* Operations of `service` (empty = all services), optionally of one kind
     * (CLEW_KIND_UNSPECIFIED = any kind). */
    clew_status (*operations)(clew_store *s, clew_str service, clew_span_kind kind,
                              clew_name_list **out);
    /* Sets the sampling state and metadata of a trace (used by the tail sampler). A
     * trace set to CLEW_TRACE_DROPPED is discarded: it is no longer returned by any
     * query (the embedded store also logs the decision, so a restart keeps it). */
    clew_status (*set_trace_meta)(clew_store *s, const clew_trace_id *id,
                                  const clew_trace_meta *meta);
    /* Installs the observer (NULL to remove); call before the first append. */
    void (*set_observer)(clew_store *s, clew_store_observer fn, void *ud);
    /* The ids of every trace in CLEW_TRACE_PENDING state (after a restart: the traces
     * replayed without a decision), oldest first. *out is freed with clew__free. */
    clew_status (*pending_traces)(clew_store *s, clew_trace_id **out, size_t *out_n);
    void (*stats)(clew_store *s, clew_store_stats *out);
} clew_store_ops;

/* Every implementation's struct starts with this. */
struct clew_store {
    const clew_store_ops *ops;
};

static inline void clew__store_destroy(clew_store *s)
{
    if (s != NULL) {
        s->ops->destroy(s);
    }
}

/* ---- the memory store ---- */

typedef struct clew_memory_store_config {
    size_t max_traces; /* oldest traces are evicted past this; default 100000 */
    size_t max_bytes;  /* memory budget for span data; evicts oldest past it; 0 = no limit */
} clew_memory_store_config;

CLEW_NODISCARD clew_status clew__memory_store_create(const clew_memory_store_config *cfg,
                                                     clew_store **out);

/* The embedded store's head cut: a snapshot of the traces, oldest first (free *out with
 * clew__free), and the removal of one trace, refused with CLEW_EBUSY when it no longer has
 * exactly `expected_spans` spans (some arrived after the caller copied it). `s` must be a
 * memory store. */
typedef struct clew_memory_trace_ref {
    clew_trace_id id;
    clew_trace_state state;
    uint32_t n_spans;
    size_t bytes;
} clew_memory_trace_ref;

CLEW_NODISCARD clew_status clew__memory_store_list_traces(clew_store *s,
                                                          clew_memory_trace_ref **out,
                                                          size_t *out_n);
CLEW_NODISCARD clew_status clew__memory_store_remove_trace(clew_store *s, const clew_trace_id *id,
                                                           uint32_t expected_spans);

/* The cut's read of one trace without copying its spans: *out is like get_trace's result
 * (meta and the span pointer array in its arena, spans ordered by start time) but its spans
 * are the store's own, which stay valid and unchanged until clew__memory_store_unpin(*pin)
 * - even if the trace is removed meanwhile (its memory is freed at the unpin then). Spans
 * added to the trace after the pin are not in *out. Free *out with clew__trace_result_free,
 * and unpin exactly once (before destroying the store); either order. CLEW_ENOTFOUND when
 * the store has no span of the trace. */
typedef struct clew_memory_pin clew_memory_pin;
CLEW_NODISCARD clew_status clew__memory_store_pin_trace(clew_store *s, const clew_trace_id *id,
                                                        clew_trace_result **out,
                                                        clew_memory_pin **pin);
void clew__memory_store_unpin(clew_store *s, clew_memory_pin *pin);

/* Matches a value against a tag filter's text (see clew_tag_filter). */
bool clew__value_matches_text(const clew_value *v, clew_str text);

/* The number grammar clew__value_matches_text reads a tag filter's text with, for an
 * index that must find exactly what a scan would (the embedded store's postings):
 * the whole text must be the number. _i64: one optional sign, decimal digits, no
 * overflow. _double: what strtod takes, at most 63 bytes. Pure; any thread. */
bool clew__tag_text_i64(clew_str t, int64_t *out);
bool clew__tag_text_double(clew_str t, double *out);

#endif /* CLEW_STORE_STORE_H */
