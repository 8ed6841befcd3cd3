/*
 * src/common/buf.h - a growable byte buffer with a hard maximum.
 *
 * Growing past `max` fails with CLEW_ETOOBIG (which the HTTP layer maps to 413);
 * the buffer keeps what it had. The contents are always NUL-terminated (the NUL
 * is not counted in len), so a text buffer can be used as a C string.
 */
#ifndef CLEW_COMMON_BUF_H
#define CLEW_COMMON_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"

typedef struct clew_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len; 0 = SIZE_MAX/2 */
} clew_buf;

void clew__buf_init(clew_buf *b, size_t max);
void clew__buf_deinit(clew_buf *b);
/* Sets len to 0, keeps the allocation. */
void clew__buf_reset(clew_buf *b);
/* Hands the data (NUL-terminated) to the caller, who frees it with clew__free, and
 * leaves the buffer empty. Returns NULL for an empty buffer that never allocated. */
char *clew__buf_take(clew_buf *b, size_t *out_len);

CLEW_NODISCARD clew_status clew__buf_reserve(clew_buf *b, size_t extra);
CLEW_NODISCARD clew_status clew__buf_append(clew_buf *b, const void *p, size_t n);
CLEW_NODISCARD clew_status clew__buf_putc(clew_buf *b, char c);
CLEW_NODISCARD clew_status clew__buf_puts(clew_buf *b, const char *s);
CLEW_NODISCARD clew_status clew__buf_printf(clew_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
CLEW_NODISCARD clew_status clew__buf_vprintf(clew_buf *b, const char *fmt, va_list ap);
/* Appends `s` as a JSON string literal, quotes included, escaping as RFC 8259 requires.
 * Invalid UTF-8 bytes are replaced by U+FFFD so the output is always valid JSON. */
CLEW_NODISCARD clew_status clew__buf_json_str(clew_buf *b, const char *s, size_t len);
/* Appends the shortest "%.Ng" text (N from min_prec up to 17) that reads back as exactly
 * d, with '.' as the decimal point whatever LC_NUMERIC says. d must be finite (callers
 * spell NaN and infinities their own way). With json_real, text without '.', 'e' or 'E'
 * gets ".0", so a JSON reader sees a real and "-0" keeps its sign. */
CLEW_NODISCARD clew_status clew__buf_double(clew_buf *b, double d, int min_prec, bool json_real);

#endif /* CLEW_COMMON_BUF_H */
