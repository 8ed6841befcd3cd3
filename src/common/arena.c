/*
 * src/common/arena.c - bump allocator; see arena.h.
 */
#include "common/arena.h"
#include "common/alloc.h"

#include <stdint.h>
#include <string.h>

struct clew_arena_chunk {
    clew_arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t pos;
    /* max_align_t keeps data[] aligned for any type */
    _Alignas(16) unsigned char data[];
};

void clew__arena_init(clew_arena *a, size_t chunk_size, size_t limit)
{
    memset(a, 0, sizeof(*a));
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->limit = limit;
}

void clew__arena_deinit(clew_arena *a)
{
    clew_arena_chunk *c = a->head;
    while (c != NULL) {
        clew_arena_chunk *next = c->next;
        clew__free(c);
        c = next;
    }
    a->head = NULL;
    a->held = 0;
    a->used = 0;
}

void clew__arena_reset(clew_arena *a)
{
    if (a->head == NULL) {
        return;
    }
    /* keep the oldest chunk (the last in the list) when it has the default size */
    clew_arena_chunk *c = a->head, *keep = NULL;
    while (c != NULL) {
        clew_arena_chunk *next = c->next;
        if (next == NULL && c->size == a->chunk_size) {
            keep = c;
        } else {
            clew__free(c);
        }
        c = next;
    }
    a->head = keep;
    a->held = keep ? sizeof(*keep) + keep->size : 0;
    a->used = 0;
    a->over_limit = false;
    if (keep) {
        keep->pos = 0;
        keep->next = NULL;
    }
}

void *clew__arena_alloc(clew_arena *a, size_t size)
{
    size = (size + 7u) & ~(size_t)7u;
    if (size == 0) {
        size = 8;
    }
    clew_arena_chunk *c = a->head;
    if (c == NULL || c->size - c->pos < size) {
        size_t want = size > a->chunk_size ? size : a->chunk_size;
        if (want > SIZE_MAX - sizeof(*c)) {
            return NULL;
        }
        if (a->limit != 0 && (a->held + sizeof(*c) + want > a->limit)) {
            a->over_limit = true;
            return NULL;
        }
        c = clew__malloc(sizeof(*c) + want);
        if (c == NULL) {
            return NULL;
        }
        c->size = want;
        c->pos = 0;
        /* a one-off big chunk goes behind the current one so the current keeps filling */
        if (a->head != NULL && want > a->chunk_size && a->head->size - a->head->pos >= 64) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
        a->held += sizeof(*c) + want;
    }
    void *p = c->data + c->pos;
    c->pos += size;
    a->used += size;
    return p;
}

void *clew__arena_calloc(clew_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = clew__arena_alloc(a, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

clew_str clew__arena_strdup(clew_arena *a, const char *s, size_t len)
{
    clew_str out = {NULL, 0};
    char *p = clew__arena_alloc(a, len + 1);
    if (p == NULL) {
        return out;
    }
    if (len) {
        memcpy(p, s, len);
    }
    p[len] = '\0';
    out.ptr = p;
    out.len = len;
    return out;
}

void *clew__arena_memdup(clew_arena *a, const void *p, size_t n)
{
    if (n == 0) {
        return NULL;
    }
    void *q = clew__arena_alloc(a, n);
    if (q != NULL) {
        memcpy(q, p, n);
    }
    return q;
}

clew_status clew__arena_fail(const clew_arena *a, clew_error *err)
{
    if (a->over_limit) {
        clew__error_set(err, 0, "decoded request exceeds the memory limit (%zu bytes)", a->limit);
        return CLEW_ETOOBIG;
    }
    clew__error_set(err, 0, "out of memory while decoding");
    return CLEW_ENOMEM;
}
