/*
 * src/common/reject.h - bookkeeping for items a decoder drops one by one.
 *
 * A decoder that refuses one span but keeps the rest of a request counts it and keeps
 * the first reason, which becomes OTLP's partial_success.error_message. The reason is
 * copied into the caller's arena, so it lives as long as the decoded batch. No state
 * of its own: safe from any thread on distinct data.
 */
#ifndef CLEW_COMMON_REJECT_H
#define CLEW_COMMON_REJECT_H

#include <stdint.h>

#include "clew/status.h"
#include "clew/types.h"
#include "common/arena.h"
#include "common/error.h"

/* Adds one to *count and, when *reason is still empty, sets it to the printf-style
 * message (truncated to 199 bytes). Fails only when the arena cannot hold the text
 * (see clew__arena_fail). */
CLEW_NODISCARD clew_status clew__reject_note(uint64_t *count, clew_str *reason, clew_arena *a,
                                             clew_error *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif /* CLEW_COMMON_REJECT_H */
