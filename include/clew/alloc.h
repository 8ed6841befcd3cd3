/*
 * clew/alloc.h - replace the allocator libclew uses.
 */
#ifndef CLEW_ALLOC_H
#define CLEW_ALLOC_H

#include <stddef.h>

#include "clew/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The four functions libclew allocates with; they follow the C library's contracts. */
typedef struct clew_allocator {
    void *(*malloc_fn)(size_t size);
    void *(*calloc_fn)(size_t n, size_t size);
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
} clew_allocator;

/*
 * clew_set_allocator - route every libclew allocation through `a` (copied).
 * NULL restores the C library's allocator. Call it only before the first clew
 * object exists, from one thread: memory allocated before must not be freed by
 * the new functions.
 * Returns CLEW_OK, or CLEW_EINVAL if a function pointer is NULL. Added in 0.1.
 */
CLEW_EXPORT int clew_set_allocator(const clew_allocator *a);

#ifdef __cplusplus
}
#endif

#endif /* CLEW_ALLOC_H */
