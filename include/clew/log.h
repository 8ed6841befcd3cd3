/*
 * clew/log.h - structured JSON log lines that carry the current trace.
 *
 * Ownership: every argument is borrowed for the call. Nothing is kept.
 * Thread-safety: reentrant; each line is written with one fwrite (one write(2)
 * for the fd variant), so lines from several threads do not interleave on
 * unbuffered or line-buffered streams.
 */
#ifndef CLEW_LOG_H
#define CLEW_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "clew/export.h"
#include "clew/status.h"
#include "clew/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * clew_log_json - write one line
 *   {"time":"2026-01-02T03:04:05.123456789Z","level":"info","message":"...",
 *    "trace_id":"...","span_id":"...", <fields>}\n
 * to `f`. trace_id/span_id are those of the calling thread's current span and
 * are left out when there is none. `level` is a free string ("info"); `fields`
 * (n of them, may be NULL) are written as JSON values of their type (arrays as
 * JSON arrays, bytes as a hex string); strings are escaped (invalid UTF-8
 * becomes U+FFFD). Keys equal to the fixed ones are written anyway (JSON
 * readers keep the last).
 * Returns CLEW_OK, CLEW_EINVAL, CLEW_ENOMEM or CLEW_EIO. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_log_json(FILE *f, const char *level,
                                                     const char *message, const clew_attr *fields,
                                                     size_t n);

/* clew_log_json_fd - the same, written to file descriptor `fd` with one write. Added in 0.1. */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_log_json_fd(int fd, const char *level,
                                                        const char *message,
                                                        const clew_attr *fields, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* CLEW_LOG_H */
