/*
 * clew/propagation.h - carrying a span context and baggage across process
 * boundaries: carriers (where headers are read and written), propagators (the
 * formats: W3C tracecontext and baggage, B3 single and multi, Jaeger) and the
 * W3C baggage list.
 *
 * Ownership, in general: strings passed in are borrowed for the call and copied
 * when kept; views handed out (clew_str) point into the object that produced
 * them and stay valid until that object changes or is destroyed.
 *
 * Thread-safety: propagators are immutable after creation and may be used from
 * any number of threads at once. A clew_baggage or a header list is not
 * synchronised: one writer at a time, no reader during a write.
 */
#ifndef CLEW_PROPAGATION_H
#define CLEW_PROPAGATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/context.h"
#include "clew/export.h"
#include "clew/status.h"
#include "clew/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- carriers --------------------------------------------------------------- */

/*
 * Reads header `key` (lowercase, NUL-terminated, static storage) from `carrier`.
 * Writes up to `max_values` views of its values (one per occurrence of the
 * header, in order) into `values` and returns the total number of occurrences,
 * which may be larger than `max_values` (so a propagator can see a duplicated
 * header while asking for one value). The views must stay valid until the
 * propagator call returns. HTTP carriers compare names case-insensitively.
 */
typedef size_t (*clew_carrier_get_fn)(void *carrier, const char *key, clew_str *values,
                                      size_t max_values);

/*
 * Writes header `key` (lowercase, NUL-terminated, static storage: it may be
 * kept by pointer) with `value` (borrowed for the call: copy it) into
 * `carrier`, replacing any existing header of that name. Returns CLEW_OK or an
 * error (CLEW_EFULL when the carrier has no room), which inject passes on.
 */
typedef clew_status (*clew_carrier_set_fn)(void *carrier, const char *key, clew_str value);

/* A carrier: the caller's object plus its getter and setter (either may be NULL
 * when only extract or only inject is used). Passed by pointer, borrowed. */
typedef struct clew_carrier {
    void *ctx;
    clew_carrier_get_fn get;
    clew_carrier_set_fn set;
} clew_carrier;

/* One header or message-header entry: views, owned by whoever filled them. */
typedef struct clew_header {
    clew_str name;
    clew_str value;
} clew_header;

/*
 * A list of headers in caller storage: `items` (capacity entries, the first
 * `count` in use) and a text buffer `buf` (buf_cap bytes) where the setter
 * copies injected values. Nothing is allocated. Names written by the setter are
 * static strings; values point into `buf`. Entries the caller put in are
 * borrowed and must outlive the list's use.
 */
typedef struct clew_header_list {
    clew_header *items;
    size_t count;
    size_t capacity;
    char *buf;
    size_t buf_len;
    size_t buf_cap;
    bool case_sensitive; /* false for HTTP headers, true for message headers */
} clew_header_list;

/*
 * clew_header_list_init - set up `l` over caller storage (all borrowed: they
 * must outlive `l`). `count` entries of `items` are already filled (for
 * extraction); `buf` may be NULL with buf_cap 0 when nothing is injected.
 * Added in 0.1.
 */
CLEW_EXPORT void clew_header_list_init(clew_header_list *l, clew_header *items, size_t count,
                                       size_t capacity, char *buf, size_t buf_cap);

/*
 * clew_http_headers_carrier - a carrier over `l` for HTTP headers: names are
 * compared ASCII case-insensitively. clew_message_headers_carrier - the same for
 * message headers (Kafka, AMQP, ...), where keys are case-sensitive. Both
 * setters replace an existing entry of the same name and return CLEW_EFULL when
 * `items` or `buf` has no room. `l` is borrowed by the returned carrier.
 * Added in 0.1.
 */
CLEW_EXPORT clew_carrier clew_http_headers_carrier(clew_header_list *l);
CLEW_EXPORT clew_carrier clew_message_headers_carrier(clew_header_list *l);

/* ---- baggage ---------------------------------------------------------------- */

/* W3C Baggage limits: lists within both are always propagated in full. */
#define CLEW_BAGGAGE_MAX_MEMBERS 64
#define CLEW_BAGGAGE_MAX_BYTES   8192

/*
 * A W3C baggage list: ordered (key, value, metadata) members. Keys are tokens
 * (RFC 9110), values are arbitrary bytes (percent-decoded), metadata is the
 * properties text after the first ";" ("p1=v1;p2"), kept as on the wire.
 * Opaque heap object: create with clew_baggage_create, free with
 * clew_baggage_destroy. Its encoded form never exceeds 64 members and 8192
 * bytes, so it can always be propagated whole.
 */
typedef struct clew_baggage clew_baggage;

/* clew_baggage_create - a new empty list into *out (caller frees with
 * clew_baggage_destroy). Returns CLEW_OK, CLEW_EINVAL or CLEW_ENOMEM. Added in 0.1. */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_baggage_create(clew_baggage **out);

/* clew_baggage_destroy - free `b` and every view into it; NULL is a no-op. Added in 0.1. */
CLEW_EXPORT void clew_baggage_destroy(clew_baggage *b);

/* clew_baggage_clear - remove every member. Added in 0.1. */
CLEW_EXPORT void clew_baggage_clear(clew_baggage *b);

/* clew_baggage_count - number of members. Added in 0.1. */
CLEW_EXPORT size_t clew_baggage_count(const clew_baggage *b);

/*
 * clew_baggage_get - value (and metadata, optional) of the first member named
 * `key` (borrowed). Views point into `b` until it changes.
 * Returns CLEW_OK or CLEW_ENOTFOUND (outputs untouched). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_baggage_get(const clew_baggage *b, clew_str key,
                                                        clew_str *out_value,
                                                        clew_str *out_metadata);

/*
 * clew_baggage_set - set `key` to `value` with `metadata` (all copied; metadata
 * may be {NULL, 0}). An existing member keeps its position and later
 * duplicates of the key are removed; a new member goes to the end.
 * Returns CLEW_OK; CLEW_EINVAL when key is not a token or metadata is not a
 * valid property list; CLEW_ETOOBIG when the list would exceed 64 members or
 * 8192 encoded bytes; CLEW_ENOMEM. On error `b` is unchanged. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_baggage_set(clew_baggage *b, clew_str key,
                                                        clew_str value, clew_str metadata);

/* clew_baggage_remove - remove every member named `key`. Returns CLEW_OK or
 * CLEW_ENOTFOUND. Added in 0.1. */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_baggage_remove(clew_baggage *b, clew_str key);

/*
 * clew_baggage_entry - the i-th member, for iteration (0 .. count-1). Outputs
 * are optional views into `b`. Returns CLEW_OK or CLEW_ENOTFOUND. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_baggage_entry(const clew_baggage *b, size_t i,
                                                          clew_str *out_key, clew_str *out_value,
                                                          clew_str *out_metadata);

/*
 * clew_baggage_parse - append the members of one baggage header value `s`
 * (borrowed) to `b`. OWS around keys, values and properties is removed; values
 * are percent-decoded (invalid UTF-8 becomes U+FFFD); properties are kept.
 * Malformed members are dropped, valid ones kept. Members beyond the limits
 * (64 members, 8192 encoded bytes, counting what `b` already holds) are
 * dropped from the right, never partially.
 * Returns CLEW_OK (also when members were dropped), CLEW_ENOMEM. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_baggage_parse(clew_baggage *b, const char *s,
                                                          size_t len);

/*
 * clew_baggage_format - write the header value plus NUL into `out` (cap bytes,
 * caller-owned): members joined by ",", values percent-encoded where
 * baggage-octet forbids a byte, and "%" always. CLEW_BAGGAGE_MAX_BYTES + 1
 * bytes always suffice. *out_len (optional) gets the length without NUL.
 * Returns CLEW_OK or CLEW_ETOOBIG (cap too small; nothing usable written). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_baggage_format(const clew_baggage *b, char *out,
                                                           size_t cap, size_t *out_len);

/* clew_baggage_equal - same members (key, value, metadata) in the same order. Added in 0.1. */
CLEW_EXPORT bool clew_baggage_equal(const clew_baggage *a, const clew_baggage *b);

/* ---- propagators ------------------------------------------------------------ */

/* A propagator: immutable, thread-safe. The built-in ones are static (never
 * destroyed); a composite is created and destroyed by the caller. */
typedef struct clew_propagator clew_propagator;

/* The built-in propagators (static; clew_propagator_destroy ignores them):
 * tracecontext (traceparent + tracestate), baggage, b3 (single "b3" header),
 * b3multi (x-b3-* headers) and jaeger (uber-trace-id). Added in 0.1. */
CLEW_EXPORT const clew_propagator *clew_propagator_tracecontext(void);
CLEW_EXPORT const clew_propagator *clew_propagator_baggage(void);
CLEW_EXPORT const clew_propagator *clew_propagator_b3(void);
CLEW_EXPORT const clew_propagator *clew_propagator_b3multi(void);
CLEW_EXPORT const clew_propagator *clew_propagator_jaeger(void);

/*
 * clew_propagator_create - a composite from a comma list in the syntax of
 * OTEL_PROPAGATORS (borrowed; names trimmed, case-insensitive, duplicates
 * ignored): tracecontext, baggage, b3, b3multi, jaeger, none. NULL or an empty
 * list means "tracecontext,baggage"; "none" alone means a propagator that does
 * nothing. Caller frees *out with clew_propagator_destroy.
 * Returns CLEW_OK; CLEW_ENOMEM / CLEW_EINVAL (nothing written); or
 * CLEW_EUNSUPPORTED when some names were unknown: this one is a WARNING, the
 * composite of the known names IS written to *out (the caller owns it) and,
 * when `out_unknown` is not NULL, it receives the first unknown name as a view
 * into `names`. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_propagator_create(const char *names,
                                                              clew_propagator **out,
                                                              clew_str *out_unknown);

/* clew_propagator_destroy - free a composite; NULL and built-ins are no-ops. Added in 0.1. */
CLEW_EXPORT void clew_propagator_destroy(const clew_propagator *p);

/*
 * clew_propagator_inject - write `sc` (borrowed; may be NULL or invalid: then no
 * trace headers are written) and `baggage` (borrowed; may be NULL or empty:
 * no baggage header) into carrier `c` through its setter. Writes only version
 * 00 traceparent with reserved flag bits cleared.
 * Returns CLEW_OK or the first error of the setter. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_propagator_inject(const clew_propagator *p,
                                                              const clew_span_context *sc,
                                                              const clew_baggage *baggage,
                                                              const clew_carrier *c);

/*
 * clew_propagator_extract - read a remote span context from carrier `c`.
 * Returns CLEW_OK with *out_sc written (is_remote set); CLEW_ENOTFOUND when no
 * trace header was found (baggage alone never yields a span context, so the
 * "baggage" propagator always reports this); CLEW_EPARSE when a header was present but
 * invalid (the caller starts a new trace). *out_sc is written only on CLEW_OK.
 * With several trace propagators, the last one that succeeds wins. When
 * `baggage` is not NULL, baggage members found are appended to it whatever the
 * span-context result (CLEW_ENOMEM if that fails). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_propagator_extract(const clew_propagator *p,
                                                               const clew_carrier *c,
                                                               clew_span_context *out_sc,
                                                               clew_baggage *baggage);

/* clew_propagator_name - "tracecontext", "b3", ... or the composite's list
 * ("tracecontext,baggage"); a static or `p`-owned string. Added in 0.1. */
CLEW_EXPORT const char *clew_propagator_name(const clew_propagator *p);

/* ---- SQL comments (sqlcommenter style) -------------------------------------- */

/*
 * clew_sql_comment_inject - copy `query` (qlen bytes, borrowed) into `out`
 * (cap bytes, caller-owned) with the trace context appended as a C-style SQL
 * comment holding `traceparent='00-...-01',tracestate='k%3Dv'`. Values are
 * URL-encoded and keys sorted, as sqlcommenter does; a trailing ";" stays at
 * the end. A query that already contains a comment ("/" "*" or "--") is copied
 * unchanged, as is any query when `sc` is not valid. Always NUL-terminates;
 * *out_len (optional) gets the length without NUL.
 * Returns CLEW_OK, CLEW_EINVAL or CLEW_ETOOBIG (cap too small). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_sql_comment_inject(const clew_span_context *sc,
                                                               const char *query, size_t qlen,
                                                               char *out, size_t cap,
                                                               size_t *out_len);

/*
 * clew_sql_comment_extract - find the last comment of `query` (borrowed) and
 * extract its traceparent / tracestate like the tracecontext propagator.
 * Returns CLEW_OK (*out_sc written), CLEW_ENOTFOUND or CLEW_EPARSE. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_sql_comment_extract(const char *query, size_t qlen,
                                                                clew_span_context *out_sc);

#ifdef __cplusplus
}
#endif

#endif /* CLEW_PROPAGATION_H */
