/*
 * clew/types.h - small value types passed by value: ids and string views.
 *
 * These are plain structs with no ownership: copying one copies the value.
 */
#ifndef CLEW_TYPES_H
#define CLEW_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A W3C / OpenTelemetry trace id: 16 bytes, all-zero is invalid. 64-bit ids
 * (Zipkin, Jaeger) are stored zero-padded on the left (bytes 0..7 are zero). */
typedef struct clew_trace_id {
    uint8_t bytes[16];
} clew_trace_id;

/* A span id: 8 bytes, all-zero is invalid (and means "no parent" where a parent is expected). */
typedef struct clew_span_id {
    uint8_t bytes[8];
} clew_span_id;

/* A string view: `len` bytes at `ptr`, not necessarily NUL-terminated. Borrowed:
 * whoever hands one out says how long `ptr` stays valid. */
typedef struct clew_str {
    const char *ptr;
    size_t len;
} clew_str;

#ifdef __cplusplus
}
#endif

#endif /* CLEW_TYPES_H */
