/*
 * src/common/base64.h - base64 (RFC 4648) for bytes values in JSON.
 *
 * The encoders write the standard alphabet with '=' padding, which is what OTLP/JSON,
 * Zipkin and Jaeger JSON all show; the decoder also accepts the URL-safe alphabet
 * and missing padding, as protobuf's JSON parsers do. Pure functions over
 * caller-owned memory: no state, safe from any thread.
 */
#ifndef CLEW_COMMON_BASE64_H
#define CLEW_COMMON_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Length of the padded encoding of n bytes (n must be below SIZE_MAX / 4 * 3). */
#define CLEW_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* Writes the four characters that encode the next min(left, 3) bytes at p, padded
 * with '='; left must be at least 1. */
void clew__base64_quad(const uint8_t *p, size_t left, char q[4]);

/* Appends the padded encoding of n bytes, between double quotes when `quoted` (a JSON
 * string: the alphabet needs no escaping); CLEW_ETOOBIG if it cannot fit. */
CLEW_NODISCARD clew_status clew__buf_base64(clew_buf *b, const uint8_t *p, size_t n, bool quoted);

/* Drops trailing '=' from *len and returns how many bytes the rest decodes to, or
 * SIZE_MAX when that many characters cannot be base64 (a remainder of 1 mod 4). */
size_t clew__base64_decoded_len(const char *s, size_t *len);

/* Decodes len characters (padding already dropped by clew__base64_decoded_len) into
 * out, which has room for the length that returned; false on a character outside
 * both alphabets. */
bool clew__base64_decode(const char *s, size_t len, uint8_t *out);

#endif /* CLEW_COMMON_BASE64_H */
