/*
 * src/common/hex.h - lowercase hex encoding and id helpers.
 */
#ifndef CLEW_COMMON_HEX_H
#define CLEW_COMMON_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/types.h"

/* Writes 2*n lowercase hex digits and a NUL into out (size >= 2*n + 1). */
void clew__hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2*n hex digits (either case) into out; false on any non-hex digit. */
bool clew__hex_decode(const char *in, size_t n_bytes, uint8_t *out);
/* Value of one hex digit (either case), or -1. */
int clew__hex_digit(char c);

/* Parses a trace id of 32 or 16 hex digits (either case); 16 digits are
 * zero-padded on the left, as the span model stores 64-bit ids. The all-zero id
 * is rejected. */
bool clew__trace_id_parse(const char *s, size_t len, clew_trace_id *out);
/* Parses a span id of exactly 16 hex digits (either case); up to 16 digits are
 * accepted and left-padded (Zipkin senders drop leading zeros). All-zero is rejected. */
bool clew__span_id_parse(const char *s, size_t len, clew_span_id *out);
/* 32 lowercase hex digits + NUL. */
void clew__trace_id_hex(const clew_trace_id *id, char out[33]);
/* 16 lowercase hex digits + NUL. */
void clew__span_id_hex(const clew_span_id *id, char out[17]);
bool clew__trace_id_is_zero(const clew_trace_id *id);
bool clew__span_id_is_zero(const clew_span_id *id);
/* True for a trace id whose upper 8 bytes are zero (a 64-bit id padded to 128). */
bool clew__trace_id_is_64bit(const clew_trace_id *id);

#endif /* CLEW_COMMON_HEX_H */
