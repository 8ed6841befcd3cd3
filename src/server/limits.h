/*
 * src/server/limits.h - span limits applied at ingest by every receiver
 * (docs/internals/limits.md).
 *
 * A receiver decodes a request into a batch, then calls clew__limits_apply on it
 * before store->append. Whatever a limit removes is never silent: the count goes
 * into the span's own dropped_* fields (attrs.dropped, dropped_events,
 * dropped_links), which the query APIs show, and the affected spans are counted
 * in `counters` (clew_spans_limited_total{what=...} on /metrics).
 *
 * Ownership: the limits struct borrows `counters` (they usually live in
 * clew_server_metrics); the batch is edited in place. Truncated strings keep
 * pointing where they pointed (only their length shrinks), so no memory is
 * allocated and the arena argument is only there for limits that may need copies.
 * Thread-safety: clew__limits_apply may run on many threads at once with the same
 * limits; the counters are relaxed atomics.
 */
#ifndef CLEW_SERVER_LIMITS_H
#define CLEW_SERVER_LIMITS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clew/status.h"
#include "common/arena.h"
#include "model/model.h"

/* What a limit cut, as the `what` label of clew_spans_limited_total. */
typedef enum clew_limit_what {
    CLEW_LIMIT_SPAN_ATTRIBUTES = 0,  /* span attributes over the count */
    CLEW_LIMIT_EVENT_ATTRIBUTES = 1, /* event attributes over the count */
    CLEW_LIMIT_LINK_ATTRIBUTES = 2,  /* link attributes over the count */
    CLEW_LIMIT_VALUE_LENGTH = 3,     /* string/bytes values truncated */
    CLEW_LIMIT_EVENTS = 4,           /* events over the count */
    CLEW_LIMIT_LINKS = 5,            /* links over the count */
    CLEW_LIMIT_COUNT
} clew_limit_what;

/* Label values for clew_limit_what, indexed by it. */
extern const char *const clew__limit_names[CLEW_LIMIT_COUNT];

/* 0 in any field means "no limit". */
typedef struct clew_limits {
    uint32_t span_attribute_count;
    uint32_t event_attribute_count;
    uint32_t link_attribute_count;
    uint64_t attribute_value_length; /* bytes; UTF-8 strings are cut on a character boundary */
    uint32_t span_event_count;
    uint32_t span_link_count;
    /* Optional (may be NULL): CLEW_LIMIT_COUNT counters, each incremented once per
     * span that the limit changed. */
    _Atomic uint64_t *counters;
} clew_limits;

/*
 * Applies the limits to every span of `batch` in place: keeps the first N
 * attributes/events/links and adds the rest to the matching dropped count;
 * truncates string and bytes values (array elements and key-list values
 * included) to attribute_value_length. Resource and scope attributes are left
 * alone. Returns CLEW_OK (CLEW_EINVAL for NULL arguments).
 */
CLEW_NODISCARD clew_status clew__limits_apply(const clew_limits *limits, clew_batch *batch,
                                              clew_arena *arena);

/*
 * clew__limits_apply that also tells whether it changed this batch: *changed is
 * true iff some limit cut something in one of its spans (exactly what the counters
 * count, but for this batch alone: other threads' batches do not show). A receiver
 * uses it to know that the batch still is what the request's bytes say. *changed is
 * false on CLEW_EINVAL; `changed` must not be NULL.
 */
CLEW_NODISCARD clew_status clew__limits_apply_changed(const clew_limits *limits, clew_batch *batch,
                                                      clew_arena *arena, bool *changed);

#endif /* CLEW_SERVER_LIMITS_H */
