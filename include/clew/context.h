/*
 * clew/context.h - the span context that crosses process boundaries: trace id,
 * span id, W3C trace flags and the W3C tracestate list.
 *
 * Everything here is a plain value: a clew_span_context (including its
 * tracestate) lives in caller storage, owns no heap memory, and is copied with
 * `=` or memcpy. Nothing here allocates.
 *
 * Tracestate is held inline: the members are kept in their header form
 * ("k1=v1,k2=v2", no OWS) in a 512-byte buffer, which is the amount the W3C
 * Trace Context spec says vendors SHOULD propagate at least, plus the start
 * offset of each of at most 32 members. When a change would make the list longer
 * than 512 bytes, whole members are removed: first members longer than 128
 * characters (right-most first), then members from the right, exactly the
 * truncation order the spec allows. A member that is itself longer than 512
 * bytes can never be held.
 *
 * Thread-safety: all functions are reentrant; a value may be read from several
 * threads at once but must not be written while another thread reads it.
 */
#ifndef CLEW_CONTEXT_H
#define CLEW_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/export.h"
#include "clew/status.h"
#include "clew/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* W3C trace-flags bits. Test bits; never compare the whole byte. */
#define CLEW_TRACE_FLAG_SAMPLED 0x01 /* the caller may have recorded data */
#define CLEW_TRACE_FLAG_RANDOM  0x02 /* Level 2: right-most 7 bytes of trace id are random */
/* The flag bits clew understands and propagates; bits 2-7 are reserved and sent as zero. */
#define CLEW_TRACE_FLAGS_KNOWN 0x03

/* Limits of the inline tracestate (see the file comment). */
#define CLEW_TRACESTATE_MAX_MEMBERS 32
#define CLEW_TRACESTATE_CAPACITY    512
/* Members longer than this are the first to go when the list must be truncated. */
#define CLEW_TRACESTATE_LONG_MEMBER 128
#define CLEW_TRACESTATE_MAX_KEY     256
#define CLEW_TRACESTATE_MAX_VALUE   256

/* Length of a version-00 traceparent value, and the buffer size that holds it plus NUL. */
#define CLEW_TRACEPARENT_LEN  55
#define CLEW_TRACEPARENT_SIZE 56

/*
 * The W3C tracestate list, held inline. Treat the fields as private: use the
 * functions below. A zeroed struct (or clew_tracestate_init) is the empty list.
 */
typedef struct clew_tracestate {
    uint16_t len;                                     /* bytes of buf in use */
    uint8_t count;                                    /* number of members */
    uint16_t member_off[CLEW_TRACESTATE_MAX_MEMBERS]; /* start of each member in buf */
    char buf[CLEW_TRACESTATE_CAPACITY];               /* "k=v,k=v", not NUL-terminated */
} clew_tracestate;

/*
 * What a span hands to its children and to other processes. A span can be
 * started from an extracted clew_span_context (is_remote true). A context is
 * valid when both ids are non-zero (clew_span_context_is_valid).
 */
typedef struct clew_span_context {
    clew_trace_id trace_id;
    clew_span_id span_id;
    uint8_t trace_flags; /* CLEW_TRACE_FLAG_* bits as received; inject sends only known bits */
    bool is_remote;      /* true when it was extracted from a carrier */
    clew_tracestate tracestate;
} clew_span_context;

/* clew_span_context_init - an invalid context (zero ids, no flags, empty tracestate). Added in 0.1.
 */
CLEW_EXPORT void clew_span_context_init(clew_span_context *sc);

/*
 * clew_span_context_is_valid - true when trace id and span id are both non-zero.
 * `sc` is borrowed; NULL gives false. Added in 0.1.
 */
CLEW_EXPORT bool clew_span_context_is_valid(const clew_span_context *sc);

/* clew_span_context_is_sampled - true when the sampled flag bit is set. Added in 0.1. */
CLEW_EXPORT bool clew_span_context_is_sampled(const clew_span_context *sc);

/*
 * clew_traceparent_parse - parse one traceparent header value (W3C Trace
 * Context Level 2, processing model): OWS around the value is ignored; version
 * "ff" is invalid; version 00 must be exactly 55 characters; a higher version
 * must be at least 55 characters and is parsed as 00, with "-" or the end
 * after the flags; only lowercase hex; all-zero ids are invalid.
 * `s` (len bytes, need not be NUL-terminated) is borrowed.
 * On success writes trace id, span id and flags into *out, sets is_remote and
 * empties out->tracestate; on failure *out is untouched.
 * Returns CLEW_OK, CLEW_EPARSE (the caller starts a new trace), or CLEW_EINVAL
 * for NULL arguments. Does not allocate. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_traceparent_parse(const char *s, size_t len,
                                                              clew_span_context *out);

/*
 * clew_traceparent_format - write the version-00 traceparent of `sc` (borrowed)
 * as 55 characters plus NUL into `out`. Only the sampled and random flag bits
 * are written; reserved bits are sent as zero.
 * Returns CLEW_OK, or CLEW_EINVAL when `sc` is not valid (out untouched). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_traceparent_format(const clew_span_context *sc,
                                                               char out[CLEW_TRACEPARENT_SIZE]);

/* clew_tracestate_init - make `ts` the empty list. Added in 0.1. */
CLEW_EXPORT void clew_tracestate_init(clew_tracestate *ts);

/* clew_tracestate_count - the number of members. Added in 0.1. */
CLEW_EXPORT size_t clew_tracestate_count(const clew_tracestate *ts);

/*
 * clew_tracestate_member - the i-th member from the left (0 = most recently
 * updated). The views point into `ts` and stay valid until `ts` changes.
 * Returns CLEW_OK, or CLEW_ENOTFOUND when i >= count (outputs untouched). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_tracestate_member(const clew_tracestate *ts, size_t i,
                                                              clew_str *out_key,
                                                              clew_str *out_value);

/*
 * clew_tracestate_get - the value of `key` (NUL-terminated, borrowed). The view
 * points into `ts` and stays valid until `ts` changes.
 * Returns CLEW_OK or CLEW_ENOTFOUND (out untouched). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_tracestate_get(const clew_tracestate *ts,
                                                           const char *key, clew_str *out_value);

/*
 * clew_tracestate_set - add or update `key`=`value` (both NUL-terminated,
 * copied) and move it to the left, as the spec requires for a modified key.
 * The key must match the Level 2 grammar ((lcalpha / DIGIT) then up to 255 of
 * lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"); the value 1-256 printable
 * ASCII characters without "," and "=", not ending in a space. When the list
 * then has 33 members the right-most is removed; when it is longer than 512
 * bytes other members are removed in the truncation order of the file comment.
 * Returns CLEW_OK; CLEW_EINVAL for a bad key or value; CLEW_ETOOBIG when the
 * member alone exceeds 512 bytes. On error `ts` is unchanged. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_tracestate_set(clew_tracestate *ts, const char *key,
                                                           const char *value);

/*
 * clew_tracestate_delete - remove `key` (NUL-terminated, borrowed); the order
 * of the other members is kept.
 * Returns CLEW_OK or CLEW_ENOTFOUND. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_tracestate_delete(clew_tracestate *ts, const char *key);

/*
 * clew_tracestate_parse - parse one (combined) tracestate header value. Empty
 * and whitespace-only members are skipped; OWS around members is removed. The
 * whole header is rejected when any member does not match the grammar or there
 * are more than 32 members (as the W3C test suite expects). A repeated key keeps
 * its first occurrence. If the result is longer than 512 bytes it is truncated
 * as described in the file comment. An empty header gives the empty list.
 * `s` is borrowed (len bytes, need not be NUL-terminated).
 * Returns CLEW_OK (out written) or CLEW_EPARSE (out untouched). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_tracestate_parse(const char *s, size_t len,
                                                             clew_tracestate *out);

/*
 * clew_tracestate_format - write the header value of `ts` plus a NUL into
 * `out` (`cap` bytes, caller-owned); at most CLEW_TRACESTATE_CAPACITY + 1 bytes
 * are needed. *out_len (optional) receives the length without the NUL.
 * Returns CLEW_OK, or CLEW_ETOOBIG when `cap` is too small (nothing written). Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_tracestate_format(const clew_tracestate *ts, char *out,
                                                              size_t cap, size_t *out_len);

/* clew_tracestate_str - the header value as a view into `ts` (valid until `ts` changes). */
CLEW_EXPORT clew_str clew_tracestate_str(const clew_tracestate *ts);

/* clew_tracestate_equal - true when both lists have the same members in the same order. */
CLEW_EXPORT bool clew_tracestate_equal(const clew_tracestate *a, const clew_tracestate *b);

#ifdef __cplusplus
}
#endif

#endif /* CLEW_CONTEXT_H */
