/*
 * src/common/reject.c - see reject.h.
 */
#include "common/reject.h"

#include <stdarg.h>
#include <stdio.h>

clew_status clew__reject_note(uint64_t *count, clew_str *reason, clew_arena *a, clew_error *err,
                              const char *fmt, ...)
{
    (*count)++;
    if (reason->len != 0) {
        return CLEW_OK;
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    *reason = clew__arena_strdup(a, msg, len);
    return reason->ptr != NULL ? CLEW_OK : clew__arena_fail(a, err);
}
