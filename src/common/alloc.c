/*
 * src/common/alloc.c - the only file that calls the C library's allocator.
 */
#include "common/alloc.h"
#include "clew/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static clew_allocator g_alloc = {malloc, calloc, realloc, free};
/* Negative: no failure injection. Otherwise the number of allocations still allowed. */
static _Atomic long g_fail_after = -1;

static int should_fail(void)
{
    long left = atomic_load_explicit(&g_fail_after, memory_order_relaxed);
    if (left < 0) {
        return 0;
    }
    if (left == 0) {
        return 1;
    }
    atomic_fetch_sub_explicit(&g_fail_after, 1, memory_order_relaxed);
    return 0;
}

int clew_set_allocator(const clew_allocator *a)
{
    if (a == NULL) {
        g_alloc = (clew_allocator){malloc, calloc, realloc, free};
        return 0;
    }
    if (!a->malloc_fn || !a->calloc_fn || !a->realloc_fn || !a->free_fn) {
        return -2; /* CLEW_EINVAL */
    }
    g_alloc = *a;
    return 0;
}

void *clew__malloc(size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return g_alloc.malloc_fn(size ? size : 1);
}

void *clew__calloc(size_t n, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return g_alloc.calloc_fn(n ? n : 1, size ? size : 1);
}

void *clew__realloc(void *ptr, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return g_alloc.realloc_fn(ptr, size ? size : 1);
}

void clew__free(void *ptr)
{
    if (ptr != NULL) {
        g_alloc.free_fn(ptr);
    }
}

char *clew__strndup(const char *s, size_t len)
{
    char *p = clew__malloc(len + 1);
    if (p == NULL) {
        return NULL;
    }
    if (len > 0) {
        memcpy(p, s, len);
    }
    p[len] = '\0';
    return p;
}

char *clew__strdup(const char *s)
{
    return clew__strndup(s, strlen(s));
}

void clew__alloc_fail_after(long n)
{
    atomic_store(&g_fail_after, n);
}
