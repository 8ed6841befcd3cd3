/*
 * src/common/arena.h - a bump allocator with a hard size limit.
 *
 * Everything decoded from one request lives in one arena and is freed in one
 * call (clew__arena_deinit or clew__arena_reset). Allocations are 8-byte aligned.
 * An arena is not thread-safe.
 *
 * The limit bounds the sum of chunk sizes the arena may hold; an allocation that
 * would pass it fails (returns NULL) and sets `over_limit`, so a caller can tell
 * CLEW_ETOOBIG (limit) apart from CLEW_ENOMEM (the system allocator failed).
 */
#ifndef CLEW_COMMON_ARENA_H
#define CLEW_COMMON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include "clew/status.h"
#include "clew/types.h"
#include "common/error.h"

typedef struct clew_arena_chunk clew_arena_chunk;

typedef struct clew_arena {
    clew_arena_chunk *head; /* current chunk; older chunks follow via ->next */
    size_t chunk_size;      /* default size of a new chunk */
    size_t limit;           /* hard cap on total bytes held; 0 = unlimited */
    size_t held;            /* bytes held in chunks */
    size_t used;            /* bytes handed out */
    bool over_limit;        /* an allocation failed because of `limit` */
} clew_arena;

void clew__arena_init(clew_arena *a, size_t chunk_size, size_t limit);
/* Frees every chunk. The arena may be reused after clew__arena_init. */
void clew__arena_deinit(clew_arena *a);
/* Forgets every allocation but keeps the first chunk for reuse. */
void clew__arena_reset(clew_arena *a);

void *clew__arena_alloc(clew_arena *a, size_t size);
void *clew__arena_calloc(clew_arena *a, size_t n, size_t size);
/* Copies `len` bytes (plus a NUL, not counted in the result's len) into the arena. */
clew_str clew__arena_strdup(clew_arena *a, const char *s, size_t len);
/* Copies `n` bytes into the arena; NULL if n == 0 or on failure. */
void *clew__arena_memdup(clew_arena *a, const void *p, size_t n);

/* What a decoder returns when an arena allocation failed: CLEW_ETOOBIG with a message
 * naming the limit when the arena is over it, else CLEW_ENOMEM; err may be NULL. */
clew_status clew__arena_fail(const clew_arena *a, clew_error *err);

#endif /* CLEW_COMMON_ARENA_H */
