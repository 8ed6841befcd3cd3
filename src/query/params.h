/*
 * src/query/params.h - URL query strings and path segments for the query APIs:
 * percent-decoding and splitting "a=1&b=2" into decoded key/value pairs.
 *
 * Ownership: decoded strings live in the caller's arena (NUL-terminated, but
 * they may contain NUL bytes: always use the length).
 * Thread-safety: pure functions.
 */
#ifndef CLEW_QUERY_PARAMS_H
#define CLEW_QUERY_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "clew/status.h"
#include "clew/types.h"
#include "common/arena.h"
#include "common/error.h"

/* A query string with more pairs than this is refused (CLEW_ETOOBIG). */
#define CLEW_QUERY_MAX_PARAMS 256

typedef struct clew_query_param {
    clew_str key;
    clew_str value;
} clew_query_param;

typedef struct clew_query_params {
    clew_query_param *items;
    size_t n;
} clew_query_params;

/*
 * Decodes %XX escapes (either case) in `len` bytes at `src` into `dst`, which must
 * hold at least `len` bytes; with plus_is_space, '+' becomes ' ' (query strings,
 * not paths). CLEW_EPARSE when a '%' is not followed by two hex digits; `err`
 * then gives the byte offset of that '%'.
 */
CLEW_NODISCARD clew_status clew__percent_decode(const char *src, size_t len, bool plus_is_space,
                                                char *dst, size_t *out_len, clew_error *err);

/* Decodes into a fresh arena string (NUL-terminated). */
CLEW_NODISCARD clew_status clew__percent_decode_str(clew_str src, bool plus_is_space, clew_arena *a,
                                                    clew_str *out, clew_error *err);

/*
 * Splits a raw query string (no leading '?') on '&' into decoded pairs. Empty
 * pieces ("a=1&&b=2") are skipped; a piece without '=' has an empty value.
 * CLEW_EPARSE on a bad escape, CLEW_ETOOBIG past CLEW_QUERY_MAX_PARAMS pairs,
 * CLEW_ENOMEM; `err` says what.
 */
CLEW_NODISCARD clew_status clew__query_parse(clew_str query, clew_arena *a, clew_query_params *out,
                                             clew_error *err);

/* The first value of `key`, or NULL. */
const clew_str *clew__query_get(const clew_query_params *p, const char *key);

#endif /* CLEW_QUERY_PARAMS_H */
