/*
 * src/model/model.h - the one internal span model.
 *
 * Every codec (OTLP protobuf and JSON, Zipkin, Jaeger, Tempo), the SDK's exporter
 * and the store speak this model; nothing but a codec knows a wire format.
 *
 * Ownership: the model holds no allocator of its own. Every pointer and string
 * view in these structs points into an arena (clew_arena) or other storage owned
 * by whoever built the value: a decoder fills a request arena, the store copies
 * what it keeps into store-owned memory with clew__span_clone. Strings are views
 * (clew_str), not NUL-terminated unless a producer says so.
 *
 * Ids: fixed byte arrays. A 64-bit trace id (Zipkin, Jaeger) is zero-padded on
 * the left to 16 bytes. A root span has an all-zero parent_span_id.
 *
 * Resources and scopes are shared: spans point at them, and a store interns them
 * (same content -> one copy) using clew__resource_hash / clew__scope_hash.
 */
#ifndef CLEW_MODEL_MODEL_H
#define CLEW_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "clew/types.h"
#include "common/arena.h"

/* ---- attribute values (OTLP AnyValue) ---- */

typedef enum clew_value_type {
    CLEW_VALUE_EMPTY = 0, /* AnyValue with no member set */
    CLEW_VALUE_STRING = 1,
    CLEW_VALUE_BOOL = 2,
    CLEW_VALUE_INT = 3,
    CLEW_VALUE_DOUBLE = 4,
    CLEW_VALUE_ARRAY = 5,
    CLEW_VALUE_KVLIST = 6,
    CLEW_VALUE_BYTES = 7,
} clew_value_type;

typedef struct clew_value clew_value;
typedef struct clew_kv clew_kv;

struct clew_value {
    clew_value_type type;
    union {
        clew_str s; /* STRING (UTF-8) and BYTES (raw) */
        bool b;
        int64_t i;
        double d;
        struct {
            clew_value *items;
            uint32_t n;
        } array;
        struct {
            clew_kv *items;
            uint32_t n;
        } kvlist;
    } u;
};

struct clew_kv {
    clew_str key;
    clew_value value;
};

/* A list of attributes with the count the producer had to drop. */
typedef struct clew_attrs {
    clew_kv *items;
    uint32_t n;
    uint32_t dropped;
} clew_attrs;

/* ---- resource and instrumentation scope ---- */

typedef struct clew_resource {
    clew_attrs attrs;
    clew_str schema_url;
} clew_resource;

typedef struct clew_scope {
    clew_str name;
    clew_str version;
    clew_attrs attrs;
    clew_str schema_url;
} clew_scope;

/* ---- spans ---- */

typedef enum clew_span_kind {
    CLEW_KIND_UNSPECIFIED = 0,
    CLEW_KIND_INTERNAL = 1,
    CLEW_KIND_SERVER = 2,
    CLEW_KIND_CLIENT = 3,
    CLEW_KIND_PRODUCER = 4,
    CLEW_KIND_CONSUMER = 5,
} clew_span_kind;

typedef enum clew_status_code {
    CLEW_STATUS_UNSET = 0,
    CLEW_STATUS_OK = 1,
    CLEW_STATUS_ERROR = 2,
} clew_status_code;

/* OTLP Span.flags bits (wire.md §4): W3C flags in bits 0-7, then is-remote. */
#define CLEW_FLAG_SAMPLED       0x01u
#define CLEW_FLAG_RANDOM        0x02u
#define CLEW_FLAG_HAS_IS_REMOTE 0x100u
#define CLEW_FLAG_IS_REMOTE     0x200u

typedef struct clew_event_data {
    uint64_t time_ns;
    clew_str name;
    clew_attrs attrs;
} clew_event_data;

typedef struct clew_link_data {
    clew_trace_id trace_id;
    clew_span_id span_id;
    clew_str trace_state;
    clew_attrs attrs;
    uint32_t flags;
} clew_link_data;

typedef struct clew_span_data {
    clew_trace_id trace_id;
    clew_span_id span_id;
    clew_span_id parent_span_id; /* all zero for a root span */
    clew_str trace_state;
    uint32_t flags;
    clew_str name;
    clew_span_kind kind;
    uint64_t start_ns; /* Unix epoch nanoseconds */
    uint64_t end_ns;
    clew_attrs attrs;
    clew_event_data *events;
    uint32_t n_events;
    uint32_t dropped_events;
    clew_link_data *links;
    uint32_t n_links;
    uint32_t dropped_links;
    clew_status_code status_code;
    clew_str status_message;
    const clew_resource *resource; /* shared; never NULL in a decoded batch */
    const clew_scope *scope;       /* shared; never NULL in a decoded batch */
} clew_span_data;

/* ---- a batch, shaped like an OTLP ExportTraceServiceRequest ---- */

typedef struct clew_scope_spans {
    const clew_scope *scope;
    clew_span_data *spans;
    size_t n_spans;
} clew_scope_spans;

typedef struct clew_resource_spans {
    const clew_resource *resource;
    clew_scope_spans *scopes;
    size_t n_scopes;
} clew_resource_spans;

typedef struct clew_batch {
    clew_resource_spans *rs;
    size_t n_rs;
    size_t n_spans; /* total spans over all rs/scopes */
    /* spans a decoder refused individually (invalid ids, ...): they are not in rs */
    uint64_t rejected;
    clew_str reject_reason; /* first reason, for partial_success.error_message */
} clew_batch;

/* ---- helpers ---- */

/* Finds the attribute `key` (first match), or NULL. */
const clew_value *clew__attrs_get(const clew_attrs *a, const char *key, size_t key_len);
/* service.name of a resource, or "unknown_service" if absent or not a string. */
clew_str clew__resource_service(const clew_resource *r);

bool clew__value_equal(const clew_value *a, const clew_value *b);
bool clew__attrs_equal(const clew_attrs *a, const clew_attrs *b);
bool clew__resource_equal(const clew_resource *a, const clew_resource *b);
bool clew__scope_equal(const clew_scope *a, const clew_scope *b);
/* Compares every field, including resource and scope by content. */
bool clew__span_equal(const clew_span_data *a, const clew_span_data *b);
/* Compares two batches span by span in order, by content (grouping may differ). */
bool clew__batch_equal(const clew_batch *a, const clew_batch *b);

uint64_t clew__value_hash(uint64_t h, const clew_value *v);
uint64_t clew__attrs_hash(uint64_t h, const clew_attrs *a);
uint64_t clew__resource_hash(const clew_resource *r);
uint64_t clew__scope_hash(const clew_scope *s);

/* Deep copies into `arena`. The span's resource and scope pointers are copied as
 * they are (the caller re-points them at interned copies). NULL/ENOMEM on failure. */
CLEW_NODISCARD clew_status clew__value_clone(clew_value *dst, const clew_value *src, clew_arena *a);
CLEW_NODISCARD clew_status clew__attrs_clone(clew_attrs *dst, const clew_attrs *src, clew_arena *a);
CLEW_NODISCARD clew_status clew__resource_clone(clew_resource *dst, const clew_resource *src,
                                                clew_arena *a);
CLEW_NODISCARD clew_status clew__scope_clone(clew_scope *dst, const clew_scope *src, clew_arena *a);
CLEW_NODISCARD clew_status clew__span_clone(clew_span_data *dst, const clew_span_data *src,
                                            clew_arena *a);

/* Builds a batch (in `arena`) from a flat array of span pointers, grouping spans by
 * resource and scope pointer identity in first-seen order. Spans are copied
 * shallowly (their strings and lists keep pointing where they pointed). */
CLEW_NODISCARD clew_status clew__batch_from_spans(clew_batch *out,
                                                  const clew_span_data *const *spans, size_t n,
                                                  clew_arena *arena);

/* Calls fn for each span of a batch in order; stops early if fn returns false. */
typedef bool (*clew_span_visit_fn)(const clew_span_data *span, void *ud);
void clew__batch_foreach(const clew_batch *b, clew_span_visit_fn fn, void *ud);

/* Names used by the JSON APIs ("SPAN_KIND_SERVER" style and "server" style). */
const char *clew__kind_name(clew_span_kind k);          /* "server", "client", ..., "unspecified" */
const char *clew__status_code_name(clew_status_code c); /* "unset", "ok", "error" */

#endif /* CLEW_MODEL_MODEL_H */
