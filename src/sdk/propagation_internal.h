/*
 * src/sdk/propagation_internal.h - helpers shared by the propagation files of
 * libclew (tracecontext.c, tracestate.c, baggage.c, b3.c, jaeger_propagation.c,
 * propagation.c). Not installed; no ABI promise.
 *
 * Ownership: every clew_str argument is borrowed for the duration of the call.
 * Thread-safety: all functions are reentrant and touch only their arguments.
 */
#ifndef CLEW_SDK_PROPAGATION_INTERNAL_H
#define CLEW_SDK_PROPAGATION_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clew/context.h"
#include "clew/propagation.h"

/* Value + 1 of a lowercase hex digit, 0 for anything else (uppercase included). */
extern const uint8_t clew__lchex[256];

/* True for the HTTP optional whitespace characters (SP, HTAB). */
static inline bool clew__is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Removes leading and trailing OWS from a view. */
clew_str clew__trim_ows(clew_str s);

/*
 * Parses a tracestate made of several header values, as if they were joined
 * with "," (RFC 9110 §5.3). Same rules and results as clew_tracestate_parse.
 */
clew_status clew__tracestate_parse_parts(const clew_str *parts, size_t n, clew_tracestate *out);

/* Parses a baggage header made of several values, appending members to `b`. */
clew_status clew__baggage_parse_parts(clew_baggage *b, const clew_str *parts, size_t n);

/* How many values of one header a propagator looks at; more than this are ignored. */
#define CLEW__MAX_HEADER_VALUES 16

/* One propagator: a table of functions the composite calls in order. */
typedef struct clew__propagator_ops {
    const char *name;
    clew_status (*inject)(const clew_span_context *sc, const clew_baggage *bag,
                          const clew_carrier *c);
    /* Returns CLEW_OK (span context written), CLEW_ENOTFOUND, CLEW_EPARSE or CLEW_ENOMEM. */
    clew_status (*extract)(const clew_carrier *c, clew_span_context *out, clew_baggage *bag);
} clew__propagator_ops;

/* The tracecontext header names as objects of their own: the header-list
 * carrier recognises them by address and knows their length without a strlen
 * (inject + extract look names up three times; see clew__key_len). */
extern const char clew__name_traceparent[12];
extern const char clew__name_tracestate[11];

static inline size_t clew__key_len(const char *key)
{
    if (key == clew__name_traceparent) {
        return sizeof(clew__name_traceparent) - 1;
    }
    if (key == clew__name_tracestate) {
        return sizeof(clew__name_tracestate) - 1;
    }
    return strlen(key);
}

/* For the SDK's own header-list carriers (clew_http_headers_carrier,
 * clew_message_headers_carrier): sets `key` exactly as the carrier's setter
 * would, to a value of len bytes that the caller then writes at *dst, so a
 * formatted value is written in place instead of copied (a copy of bytes just
 * stored also waits for the stores to retire). CLEW_EUNSUPPORTED for any other
 * carrier or len 0 (use c->set), else what the setter would return. */
clew_status clew__carrier_reserve(const clew_carrier *c, const char *key, size_t len, char **dst);

extern const clew__propagator_ops clew__tracecontext_ops;
extern const clew__propagator_ops clew__baggage_ops;
extern const clew__propagator_ops clew__b3_single_ops;
extern const clew__propagator_ops clew__b3_multi_ops;
extern const clew__propagator_ops clew__jaeger_ops;

#endif /* CLEW_SDK_PROPAGATION_INTERNAL_H */
