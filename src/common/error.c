/*
 * src/common/error.c - see error.h.
 */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>

void clew__error_set(clew_error *err, size_t offset, const char *fmt, ...)
{
    if (err == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->offset = offset;
}
