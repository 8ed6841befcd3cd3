/*
 * clew/status.h - the one status code every clew function returns.
 *
 * CLEW_OK is zero and every error is negative, so callers can write a single
 * `if (rc < 0)`. Numbers are never reused: a retired code stays in the table
 * as a placeholder. clew_strerror() and clew_status_name() are generated from
 * the same table as the enum, so they cannot drift.
 *
 * Thread-safety: every function here is pure and may be called from any thread.
 */
#ifndef CLEW_STATUS_H
#define CLEW_STATUS_H

#include "clew/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define CLEW_STATUS_MAP(X)                                                                         \
    X(CLEW_OK, 0, "success")                                                                       \
    X(CLEW_ENOMEM, -1, "out of memory")                                                            \
    X(CLEW_EINVAL, -2, "invalid argument")                                                         \
    X(CLEW_EPARSE, -3, "malformed input")                                                          \
    X(CLEW_ETOOBIG, -4, "size limit exceeded")                                                     \
    X(CLEW_EIO, -5, "input/output error")                                                          \
    X(CLEW_EFULL, -6, "queue or budget full")                                                      \
    X(CLEW_ENOTFOUND, -7, "not found")                                                             \
    X(CLEW_EUNSUPPORTED, -8, "not supported")                                                      \
    X(CLEW_ETIMEDOUT, -9, "timed out")                                                             \
    X(CLEW_ECLOSED, -10, "already shut down")                                                      \
    X(CLEW_EBUSY, -11, "resource busy or locked")                                                  \
    X(CLEW_ECORRUPT, -12, "data corrupt (checksum or format)")                                     \
    X(CLEW_EAGAIN, -13, "temporarily unavailable, retry later")                                    \
    X(CLEW_ENET, -14, "network error")

typedef enum clew_status {
#define CLEW__STATUS_ENUM(name, value, msg) name = value,
    CLEW_STATUS_MAP(CLEW__STATUS_ENUM)
#undef CLEW__STATUS_ENUM
} clew_status;

/*
 * clew_strerror - a human-readable sentence fragment for `status`.
 * Returns a static string (never NULL, never to be freed); unknown codes give
 * "unknown error". Added in 0.1.
 */
CLEW_EXPORT const char *clew_strerror(int status);

/*
 * clew_status_name - the enum's name ("CLEW_EPARSE") for `status`.
 * Returns a static string (never NULL); unknown codes give "CLEW_UNKNOWN". Added in 0.1.
 */
CLEW_EXPORT const char *clew_status_name(int status);

#ifdef __cplusplus
}
#endif

#endif /* CLEW_STATUS_H */
