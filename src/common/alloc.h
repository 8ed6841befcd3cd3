/*
 * src/common/alloc.h - allocation hooks. All clew code allocates through these,
 * never through raw malloc/free (the lint in scripts/lint.sh enforces it).
 *
 * Test builds can make the Nth allocation fail (clew__alloc_fail_after) to drive
 * out-of-memory paths.
 */
#ifndef CLEW_COMMON_ALLOC_H
#define CLEW_COMMON_ALLOC_H

#include <stddef.h>

void *clew__malloc(size_t size);
void *clew__calloc(size_t n, size_t size);
void *clew__realloc(void *ptr, size_t size);
void clew__free(void *ptr);
/* A NUL-terminated copy of `len` bytes at `s`; NULL on OOM. Free with clew__free. */
char *clew__strndup(const char *s, size_t len);
char *clew__strdup(const char *s);

/* Fail every allocation after `n` more succeed; n < 0 disables failure injection.
 * For tests only; not thread-safe with respect to concurrent allocation. */
void clew__alloc_fail_after(long n);

#endif /* CLEW_COMMON_ALLOC_H */
