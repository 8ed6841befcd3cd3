/*
 * src/codec/codec_util.h - helpers shared by the JSON codecs in clew_server_lib
 * (OTLP/JSON and Zipkin JSON decoding, Zipkin and Jaeger JSON encoding).
 *
 * Part of clew_server_lib (it uses jansson, so clew_core must not include it). Error
 * text lands in a caller-supplied clew_error; the functions keep no state and are safe
 * from any thread on distinct data.
 */
#ifndef CLEW_CODEC_CODEC_UTIL_H
#define CLEW_CODEC_CODEC_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/error.h"
#include "model/model.h"

/* The path to the value being decoded, as a chain of stack frames (each frame lives
 * in the caller that descends into a member or element); it is only turned into text
 * when an error is reported, so decoding valid input pays nothing for it. */
typedef struct clew__jpath {
    const struct clew__jpath *up;
    const char *key; /* member name, or NULL for an array index */
    size_t index;
} clew__jpath;

/* Sets err to "<path>: <what>" (e.g. "resourceSpans[0].name: expected a string"; a
 * NULL path reads "(document)") and returns CLEW_EPARSE. */
clew_status clew__jpath_fail(clew_error *err, const clew__jpath *p, const char *what);

/* CLEW_OK for a JSON object, else the clew__jpath_fail "expected an object" error. */
clew_status clew__json_need_object(clew_error *err, const clew__jpath *p, const json_t *j);

/* Sizes and allocates the arena array for the JSON array j: absent (NULL) or null gives
 * *out NULL and *n 0, as does an empty array; anything but an array fails with
 * "expected an array", more than UINT32_MAX elements with "too many <what>". The
 * elements (elem bytes each) are left uninitialised for the caller to fill. */
clew_status clew__json_array_alloc(clew_arena *a, clew_error *err, const clew__jpath *p,
                                   const json_t *j, size_t elem, const char *what, void **out,
                                   size_t *n);

/* Parses a request body (data may be NULL when len is 0; NUL bytes inside strings are
 * allowed). On a syntax error sets err to jansson's line, column and byte position and
 * returns CLEW_EPARSE. The caller owns *out and releases it with json_decref. */
clew_status clew__json_parse_body(const char *data, size_t len, clew_error *err, json_t **out);

/* How the value writers below spell doubles: finite ones through clew__buf_double
 * (min_prec, json_real), the others as these JSON strings. */
typedef struct clew__double_style {
    int min_prec;
    bool json_real;
    const char *nan, *inf, *neg_inf;
} clew__double_style;

/* Values nested deeper than this are written as null (decoders bound nesting already;
 * this only keeps the recursion bounded for spans built in memory). */
#define CLEW__JSON_VALUE_MAX_DEPTH 64

/* Appends an attribute value as plain JSON: strings escaped, ints as numbers, bytes as a
 * base64 string, arrays and kvlists as JSON arrays and objects, empty as null. */
CLEW_NODISCARD clew_status clew__json_value(clew_buf *b, const clew_value *v, int depth,
                                            const clew__double_style *ds);
/* Appends attributes as a JSON object, their values one level deeper than depth. */
CLEW_NODISCARD clew_status clew__json_kvs(clew_buf *b, const clew_kv *items, uint32_t n, int depth,
                                          const clew__double_style *ds);

#endif /* CLEW_CODEC_CODEC_UTIL_H */
