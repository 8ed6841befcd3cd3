/*
 * src/common/error.h - a parse error a person can read: message plus byte offset.
 *
 * Parsers fill a caller-supplied clew_error next to returning CLEW_EPARSE, so the
 * HTTP API and the CLI can print "what and where".
 */
#ifndef CLEW_COMMON_ERROR_H
#define CLEW_COMMON_ERROR_H

#include <stddef.h>

typedef struct clew_error {
    char msg[256];
    size_t offset; /* byte offset into the input where the problem was found */
} clew_error;

/* Sets err (if not NULL) with a printf-style message; returns nothing. */
void clew__error_set(clew_error *err, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* CLEW_COMMON_ERROR_H */
