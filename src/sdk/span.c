/*
 * src/sdk/span.c - span start/end, attributes, events, links, status, the
 * per-thread span pools and the thread's current span.
 *
 * See sdk_internal.h for the memory design. Hot-path rules kept here:
 * - sampling is decided before anything is copied; a dropped span touches only
 *   its ids, flags and tracestate (no clock read, no arena);
 * - nothing on the start/attribute/end path takes a lock or calls malloc once
 *   the thread's pool and the span's arena chunk exist.
 */
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "sdk/sdk_internal.h"

/* More free spans than this per thread are given back to the allocator (enough
 * for the default queue of 2048 plus batches in flight, so steady state never
 * frees and reallocates). */
#define POOL_MAX_FREE    4096
#define SPAN_ARENA_CHUNK 2048
/* Attribute slots a recording span starts with, in its inline region (8 x 40 of its 640
 * bytes; the rest is for names, keys and values). */
#define SPAN_FIRST_ATTRS 8
/* A span's own memory is bounded too: past this, new data is dropped and counted. */
#define SPAN_ARENA_LIMIT (4u << 20)

_Static_assert(SPAN_FIRST_ATTRS * sizeof(clew_kv) <= sizeof(((clew_span *)0)->inl) / 2,
               "the first attribute slots take at most half of the inline region");

static clew_span g_noop_span; /* pool NULL, not recording, invalid context */

static CLEW__TLS clew__tpool *tl_pool;
static CLEW__TLS clew_span *tl_current;
static CLEW__TLS uint32_t tl_depth;

static pthread_key_t g_pool_key;
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

static void span_free(clew_span *s)
{
    clew__arena_deinit(&s->arena);
    clew__free(s);
}

static void free_list(clew_span *s)
{
    while (s != NULL) {
        clew_span *next = s->next;
        span_free(s);
        s = next;
    }
}

/* Adds `delta` to the pool's references; the change that reaches zero frees the
 * pool with whatever sits in `returned`. */
static void pool_refs_add(clew__tpool *pool, int64_t delta)
{
    if (atomic_fetch_add_explicit(&pool->refs, delta, memory_order_acq_rel) + delta == 0) {
        free_list(atomic_exchange_explicit(&pool->returned, NULL, memory_order_acquire));
        clew__free(pool);
    }
}

/* Thread exit: free what the thread holds; spans still in flight keep the pool. */
static void pool_thread_exit(void *arg)
{
    clew__tpool *pool = arg;
    free_list(pool->free);
    pool->free = NULL;
    free_list(atomic_exchange_explicit(&pool->returned, NULL, memory_order_acquire));
    tl_pool = NULL;
    pool_refs_add(pool, pool->out - CLEW__REFS_BIAS);
}

static void pool_key_init(void)
{
    (void)pthread_key_create(&g_pool_key, pool_thread_exit);
}

static clew__tpool *pool_get(void)
{
    clew__tpool *pool = tl_pool;
    if (__builtin_expect(pool != NULL, 1)) {
        return pool;
    }
    (void)pthread_once(&g_pool_once, pool_key_init);
    pool = clew__calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return NULL;
    }
    atomic_init(&pool->returned, NULL);
    atomic_init(&pool->returned_n, 0);
    atomic_init(&pool->refs, CLEW__REFS_BIAS);
    if (pthread_setspecific(g_pool_key, pool) != 0) {
        clew__free(pool);
        return NULL;
    }
    tl_pool = pool;
    return pool;
}

/* Asks for the lines a recording span writes first (its head, the capacities and the
 * record, the start of its inline memory) ahead of time: a span handed back by the
 * export thread is cold in this core's cache, and the next allocation is a span's
 * work away. Prefetching NULL is harmless. */
static inline void span_prefetch(const clew_span *s)
{
    const char *p = (const char *)s;
    __builtin_prefetch(p, 1, 3);
    __builtin_prefetch(p + offsetof(clew_span, inl_used), 1, 3);
    __builtin_prefetch(p + offsetof(clew_span, data) + 64, 1, 3);
    __builtin_prefetch(p + offsetof(clew_span, data) + 128, 1, 3);
    __builtin_prefetch(p + offsetof(clew_span, inl), 1, 3);
    __builtin_prefetch(p + offsetof(clew_span, inl) + 64, 1, 3);
}

static clew_span *span_alloc(clew__tpool *pool)
{
    clew_span *s = pool->free;
    if (__builtin_expect(s == NULL, 0)) {
        s = atomic_exchange_explicit(&pool->returned, NULL, memory_order_acquire);
        if (s == NULL) {
            s = clew__calloc(1, sizeof(*s));
            if (s == NULL) {
                return NULL;
            }
            s->pool = pool;
            clew__arena_init(&s->arena, SPAN_ARENA_CHUNK, SPAN_ARENA_LIMIT);
            pool->out++;
            return s;
        }
        /* not a walk of the list to count it: each of its spans is a cache miss
         * that waits for the one before (a fifth of the sampled path's time) */
        pool->n_free +=
            (uint32_t)atomic_exchange_explicit(&pool->returned_n, 0, memory_order_acquire);
    }
    pool->free = s->next;
    span_prefetch(s->next);
    pool->n_free--;
    pool->out++;
    return s;
}

/* Gives back what the span's arena holds beyond its inline memory. The inline
 * memory itself is reset when the span starts recording again (span_start_full),
 * so that a thread handing spans back does not write the line it lives on. */
static inline void span_reset(clew_span *s)
{
    if (s->arena.head != NULL) {
        clew__arena_reset(&s->arena);
    }
}

/* The rare ways back to the pool: ended on another thread, a span that recorded
 * (its arena may hold memory), or a pool with enough free spans already. */
static __attribute__((noinline)) void span_put_slow(clew_span *s)
{
    clew__tpool *pool = s->pool;
    if (pool != tl_pool) {
        /* ended on another thread: hand it back the way the exporter does */
        clew__spans_release_remote(&s, 1);
        return;
    }
    pool->out--;
    span_reset(s);
    if (pool->n_free >= POOL_MAX_FREE) {
        span_free(s);
        return;
    }
    s->next = pool->free;
    pool->free = s;
    pool->n_free++;
}

/* Gives a span back from the thread that ends it. A span that never recorded has
 * allocated nothing, so the common case (an unsampled span ended where it started)
 * touches neither the lines where its allocation state lives nor any register the
 * caller must save. */
static inline void span_put_local(clew_span *s)
{
    clew__tpool *pool = s->pool;
    if (__builtin_expect(pool != tl_pool || s->recording || pool->n_free >= POOL_MAX_FREE, 0)) {
        span_put_slow(s);
        return;
    }
    pool->out--;
    s->next = pool->free;
    pool->free = s;
    pool->n_free++;
}

void clew__spans_release_remote(clew_span **spans, size_t n)
{
    size_t i = 0;
    while (i < n) {
        clew__tpool *pool = spans[i]->pool;
        clew_span *head = NULL, *tail = NULL;
        size_t j = i;
        for (; j < n && spans[j]->pool == pool; j++) {
            clew_span *s = spans[j];
            span_reset(s);
            s->next = head;
            if (tail == NULL) {
                tail = s;
            }
            head = s;
        }
        /* counted before they are pushed: the owner takes the list, then the count,
         * so its count is never below the spans it has (see returned_n) */
        atomic_fetch_add_explicit(&pool->returned_n, (uint64_t)(j - i), memory_order_release);
        clew_span *old = atomic_load_explicit(&pool->returned, memory_order_relaxed);
        do {
            tail->next = old;
        } while (!atomic_compare_exchange_weak_explicit(
            &pool->returned, &old, head, memory_order_release, memory_order_relaxed));
        pool_refs_add(pool, -(int64_t)(j - i));
        i = j;
    }
}

/* Span memory beyond the inline region: the span's arena. */
static __attribute__((noinline)) void *span_mem_arena(clew_span *s, size_t n)
{
    return clew__arena_alloc(&s->arena, n);
}

/* Span memory: the inline region first, then the span's arena. Inline: every
 * attribute makes one or two of these, and the common case is a bump. */
static inline void *span_mem_inl(clew_span *s, size_t n)
{
    n = (n + 7u) & ~(size_t)7u;
    if (__builtin_expect(n <= sizeof(s->inl) - s->inl_used, 1)) {
        void *p = s->inl + s->inl_used;
        s->inl_used += (uint32_t)n;
        return p;
    }
    return span_mem_arena(s, n);
}

/* The same as a clew__alloc_fn (for clew__value_from_attr). */
static void *span_mem(void *ctx, size_t n)
{
    return span_mem_inl(ctx, n);
}

/* Copies n bytes without a call for the short strings spans are made of:
 * overlapping fixed-size moves the compiler turns into a few loads and stores
 * (a memcpy call of 20 bytes costs more than the copy). Reads and writes only
 * [0, n). */
static inline void copy_short(char *d, const char *p, size_t n)
{
    if (n >= 16) {
        if (n > 32) {
            memcpy(d, p, n);
            return;
        }
        memcpy(d, p, 16);
        memcpy(d + n - 16, p + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, p, 8);
        memcpy(d + n - 8, p + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, p, 4);
        memcpy(d + n - 4, p + n - 4, 4);
    } else if (n > 0) {
        d[0] = p[0];
        d[n / 2] = p[n / 2];
        d[n - 1] = p[n - 1];
    }
}

static inline clew_str span_strdup(clew_span *s, const char *p, size_t len)
{
    char *d = span_mem_inl(s, len + 1);
    if (__builtin_expect(d == NULL, 0)) {
        return (clew_str){NULL, 0};
    }
    copy_short(d, p, len);
    d[len] = '\0';
    return (clew_str){d, len};
}

/* ---- values ---- */

static size_t utf8_cut(const char *p, size_t len, size_t max)
{
    if (max == 0 || len <= max) {
        return len;
    }
    size_t n = max;
    while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80) {
        n--;
    }
    return n;
}

static clew_status value_from_attr(clew_value *dst, const clew_attr *src, uint32_t max_len,
                                   clew__alloc_fn alloc, void *ctx, unsigned depth);

/* A kvlist's members, copied; depth counts the kvlists around this one. */
static clew_status kvlist_from_attr(clew_value *dst, const clew_attr *src, uint32_t max_len,
                                    clew__alloc_fn alloc, void *ctx, unsigned depth)
{
    size_t n = src->v.array.n;
    if (depth >= CLEW_ATTR_MAX_DEPTH || n > UINT32_MAX || (n > 0 && src->v.array.items == NULL)) {
        return CLEW_EINVAL;
    }
    const clew_attr *members = src->v.array.items;
    clew_kv *items = n ? alloc(ctx, n * sizeof(*items)) : NULL;
    if (n > 0 && items == NULL) {
        return CLEW_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (members[i].key == NULL) {
            return CLEW_EINVAL;
        }
        size_t kl = strlen(members[i].key);
        char *k = alloc(ctx, kl + 1);
        if (k == NULL) {
            return CLEW_ENOMEM;
        }
        memcpy(k, members[i].key, kl + 1);
        items[i].key.ptr = k;
        items[i].key.len = kl;
        clew_status rc =
            value_from_attr(&items[i].value, &members[i], max_len, alloc, ctx, depth + 1);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    dst->type = CLEW_VALUE_KVLIST;
    dst->u.kvlist.items = items;
    dst->u.kvlist.n = (uint32_t)n;
    return CLEW_OK;
}

clew_status clew__value_from_attr(clew_value *dst, const clew_attr *src, uint32_t max_len,
                                  clew__alloc_fn alloc, void *ctx)
{
    return value_from_attr(dst, src, max_len, alloc, ctx, 0);
}

static clew_status value_from_attr(clew_value *dst, const clew_attr *src, uint32_t max_len,
                                   clew__alloc_fn alloc, void *ctx, unsigned depth)
{
    switch (src->type) {
    case CLEW_ATTR_KVLIST:
        return kvlist_from_attr(dst, src, max_len, alloc, ctx, depth);
    case CLEW_ATTR_STRING:
    case CLEW_ATTR_BYTES: {
        size_t n = src->v.s.len;
        if (src->type == CLEW_ATTR_STRING) {
            n = utf8_cut(src->v.s.ptr, n, max_len);
        } else if (max_len != 0 && n > max_len) {
            n = max_len;
        }
        char *d = alloc(ctx, n + 1);
        if (d == NULL) {
            return CLEW_ENOMEM;
        }
        if (n > 0) {
            memcpy(d, src->v.s.ptr, n);
        }
        d[n] = '\0';
        clew_str s = {d, n};
        dst->type = src->type == CLEW_ATTR_STRING ? CLEW_VALUE_STRING : CLEW_VALUE_BYTES;
        dst->u.s = s;
        return CLEW_OK;
    }
    case CLEW_ATTR_BOOL:
        dst->type = CLEW_VALUE_BOOL;
        dst->u.b = src->v.b;
        return CLEW_OK;
    case CLEW_ATTR_INT:
        dst->type = CLEW_VALUE_INT;
        dst->u.i = src->v.i;
        return CLEW_OK;
    case CLEW_ATTR_DOUBLE:
        dst->type = CLEW_VALUE_DOUBLE;
        dst->u.d = src->v.d;
        return CLEW_OK;
    case CLEW_ATTR_STRING_ARRAY:
    case CLEW_ATTR_BOOL_ARRAY:
    case CLEW_ATTR_INT_ARRAY:
    case CLEW_ATTR_DOUBLE_ARRAY: {
        size_t n = src->v.array.n;
        if (n > UINT32_MAX || (n > 0 && src->v.array.items == NULL)) {
            return CLEW_EINVAL;
        }
        clew_value *items = n ? alloc(ctx, n * sizeof(*items)) : NULL;
        if (n > 0 && items == NULL) {
            return CLEW_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            clew_attr e;
            e.key = NULL;
            if (src->type == CLEW_ATTR_STRING_ARRAY) {
                const char *str = ((const char *const *)src->v.array.items)[i];
                e = clew_attr_str(NULL, str);
            } else if (src->type == CLEW_ATTR_BOOL_ARRAY) {
                e = clew_attr_bool(NULL, ((const bool *)src->v.array.items)[i]);
            } else if (src->type == CLEW_ATTR_INT_ARRAY) {
                e = clew_attr_int(NULL, ((const int64_t *)src->v.array.items)[i]);
            } else {
                e = clew_attr_double(NULL, ((const double *)src->v.array.items)[i]);
            }
            clew_status rc = value_from_attr(&items[i], &e, max_len, alloc, ctx, depth);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
        dst->type = CLEW_VALUE_ARRAY;
        dst->u.array.items = items;
        dst->u.array.n = (uint32_t)n;
        return CLEW_OK;
    }
    }
    return CLEW_EINVAL;
}

/* Grows `list` (capacity *cap) in span memory; false when out of memory. */
static __attribute__((noinline)) bool attrs_grow(clew_span *s, clew_attrs *list, uint32_t *cap,
                                                 uint32_t limit)
{
    uint32_t ncap = *cap ? *cap * 2 : 8;
    if (ncap > limit) {
        ncap = limit;
    }
    clew_kv *items = span_mem_inl(s, ncap * sizeof(*items));
    if (items == NULL) {
        return false;
    }
    if (list->n > 0) {
        memcpy(items, list->items, list->n * sizeof(*items));
    }
    list->items = items;
    *cap = ncap;
    return true;
}

/* The value slot of `key` in `list` (capacity *cap, growing in span memory):
 * the existing entry's when the key is set already, else a new entry with a
 * copy of the key, unless the count limit is reached (then NULL, and the
 * attribute is counted as dropped). NULL without counting for an empty key.
 * The caller writes the value into the slot: building a clew_value on the
 * stack and copying it cost a store-forwarding stall per attribute. */
/* The entry of `key` (klen bytes) in `list`, or NULL. */
static inline clew_kv *attrs_find(clew_attrs *list, const char *key, size_t klen)
{
    clew_kv *items = list->items;
    for (uint32_t i = 0; i < list->n; i++) {
        if (items[i].key.len == klen && items[i].key.ptr[0] == key[0] &&
            memcmp(items[i].key.ptr, key, klen) == 0) {
            return &items[i];
        }
    }
    return NULL;
}

/* A new entry at the end of `list` (capacity *cap, growing in span memory), its key not
 * set yet; NULL (counted as dropped) when the count limit is reached or memory is out. */
static inline clew_kv *attrs_add(clew_span *s, clew_attrs *list, uint32_t *cap, uint32_t limit)
{
    if (__builtin_expect(list->n >= limit, 0)) {
        list->dropped++;
        return NULL;
    }
    if (__builtin_expect(list->n == *cap, 0) && !attrs_grow(s, list, cap, limit)) {
        list->dropped++;
        return NULL;
    }
    return &list->items[list->n++];
}

/* The value slot of `key` in `list`: the existing entry's when the key is set already,
 * else a new entry with a copy of the key (see attrs_add). NULL without counting for an
 * empty key. The caller writes the value into the slot: building a clew_value on the
 * stack and copying it cost a store-forwarding stall per attribute. */
static inline clew_value *attrs_slot(clew_span *s, clew_attrs *list, uint32_t *cap, uint32_t limit,
                                     const char *key)
{
    if (key == NULL || key[0] == '\0') {
        return NULL;
    }
    size_t klen = strlen(key);
    clew_kv *kv = attrs_find(list, key, klen);
    if (kv != NULL) {
        return &kv->value;
    }
    clew_str k = span_strdup(s, key, klen);
    if (__builtin_expect(k.ptr == NULL, 0)) {
        list->dropped++;
        return NULL;
    }
    kv = attrs_add(s, list, cap, limit);
    if (kv == NULL) {
        return NULL;
    }
    kv->key = k;
    return &kv->value;
}

/* Sets `key` to `v` (already in span memory) in `list`: see attrs_slot. */
static void attrs_commit(clew_span *s, clew_attrs *list, uint32_t *cap, uint32_t limit,
                         const char *key, const clew_value *v)
{
    clew_value *slot = attrs_slot(s, list, cap, limit, key);
    if (slot != NULL) {
        *slot = *v;
    }
}

static void attrs_put(clew_span *s, clew_attrs *list, uint32_t *cap, uint32_t limit,
                      const clew_attr *a)
{
    if (a == NULL || a->key == NULL || a->key[0] == '\0') {
        return;
    }
    clew_value v;
    if (clew__value_from_attr(&v, a, s->provider->limits.attribute_value_length, span_mem, s) !=
        CLEW_OK) {
        list->dropped++;
        return;
    }
    attrs_commit(s, list, cap, limit, a->key, &v);
}

/* The span's own attribute list: the common case of the setters below. */
static inline clew_value *span_attr_slot(clew_span *s, const char *key)
{
    return attrs_slot(s, &s->data.attrs, &s->attr_cap, s->provider->limits.attribute_count, key);
}

/* A fixed list of n attributes (events, links): keeps the first `limit`. */
static void attrs_fixed(clew_span *s, clew_attrs *out, const clew_attr *attrs, size_t n,
                        uint32_t limit)
{
    memset(out, 0, sizeof(*out));
    if (n == 0 || attrs == NULL) {
        return;
    }
    uint32_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        attrs_put(s, out, &cap, limit, &attrs[i]);
    }
}

/* ---- start / end ---- */

static void span_make_id(clew_span *s)
{
    clew_provider *p = s->provider;
    if (p->has_idgen) {
        p->idgen.span_id(p->idgen.ud, &s->ctx.span_id);
    } else {
        clew__rand_span_id(&s->ctx.span_id);
    }
}

void clew__span_ensure_id(clew_span *s)
{
    if (s->id_pending) {
        if (s->id_pending & CLEW__PENDING_TRACE_ID) {
            clew__rand_trace_id(&s->ctx.trace_id);
        }
        span_make_id(s);
        s->id_pending = 0;
    }
}

static void link_add(clew_span *s, const clew_link *l)
{
    if (l == NULL || l->context == NULL || !clew_span_context_is_valid(l->context)) {
        return;
    }
    clew_span_data *d = &s->data;
    if (d->n_links >= s->provider->limits.link_count) {
        d->dropped_links++;
        return;
    }
    if (d->n_links == s->link_cap) {
        uint32_t ncap = s->link_cap ? s->link_cap * 2 : 4;
        clew_link_data *items = span_mem(s, ncap * sizeof(*items));
        if (items == NULL) {
            d->dropped_links++;
            return;
        }
        if (d->n_links > 0) {
            memcpy(items, d->links, d->n_links * sizeof(*items));
        }
        d->links = items;
        s->link_cap = ncap;
    }
    clew_link_data *ld = &d->links[d->n_links];
    memset(ld, 0, sizeof(*ld));
    ld->trace_id = l->context->trace_id;
    ld->span_id = l->context->span_id;
    clew_str ts = clew_tracestate_str(&l->context->tracestate);
    if (ts.len > 0) {
        ld->trace_state = span_strdup(s, ts.ptr, ts.len);
    }
    ld->flags = (l->context->trace_flags & 0xffu) | CLEW_FLAG_HAS_IS_REMOTE |
                (l->context->is_remote ? CLEW_FLAG_IS_REMOTE : 0);
    attrs_fixed(s, &ld->attrs, l->attrs, l->n_attrs, s->provider->limits.link_attribute_count);
    d->n_links++;
}

/* A root span its sampler drops whatever the trace id (always_off, or
 * parentbased over it) with random ids: it needs no sampler call and no id
 * (span_ensure_id makes both on first use); opt can change nothing of it. */
static inline void span_init_dropped_root(clew_span *s, clew_provider *p)
{
    s->provider = p;
    s->recording = 0;
    s->sampled = 0;
    s->id_pending = CLEW__PENDING_SPAN_ID | CLEW__PENDING_TRACE_ID;
    s->ctx.is_remote = false;
    s->ctx.tracestate.len = 0;
    s->ctx.tracestate.count = 0;
    s->ctx.trace_flags = p->id_random ? CLEW_TRACE_FLAG_RANDOM : 0;
}

static __attribute__((noinline)) clew_span *span_start_full(clew_tracer *t, const char *name,
                                                            const clew_span_options *opt)
{
    static const clew_span_options defaults;
    if (t == NULL) {
        return &g_noop_span;
    }
    if (opt == NULL) {
        opt = &defaults;
    }
    clew_provider *p = t->provider;
    clew__tpool *pool = pool_get();
    if (pool == NULL) {
        return &g_noop_span;
    }
    clew_span *s = span_alloc(pool);
    if (s == NULL) {
        return &g_noop_span;
    }
    s->provider = p;

    const clew_span_context *parent = opt->parent;
    if (parent == NULL && !opt->root && tl_current != NULL) {
        clew__span_ensure_id(tl_current);
        parent = &tl_current->ctx;
    }
    bool has_parent = parent != NULL && clew_span_context_is_valid(parent);
    bool active = !p->disabled && !atomic_load_explicit(&p->shut, memory_order_relaxed);
    clew_span_context *ctx = &s->ctx;
    ctx->is_remote = false;
    clew_sampling_decision dec = CLEW_SAMPLING_DROP;
    if (has_parent) {
        ctx->trace_id = parent->trace_id;
        clew__tracestate_copy(&ctx->tracestate, &parent->tracestate);
        ctx->trace_flags = parent->trace_flags & CLEW_TRACE_FLAG_RANDOM;
        if (active) {
            dec = clew__sample(p->sampler, parent, &ctx->trace_id, &ctx->tracestate);
        }
    } else {
        ctx->tracestate.len = 0;
        ctx->tracestate.count = 0;
        ctx->trace_flags = p->id_random ? CLEW_TRACE_FLAG_RANDOM : 0;
        int fixed = active ? p->root_decision : CLEW_SAMPLING_DROP;
        if (fixed == CLEW_SAMPLING_DROP && !p->has_idgen) {
            span_init_dropped_root(s, p);
            return s;
        }
        if (p->has_idgen) {
            p->idgen.trace_id(p->idgen.ud, &ctx->trace_id);
        } else {
            clew__rand_trace_id(&ctx->trace_id);
        }
        if (fixed >= 0) {
            dec = (clew_sampling_decision)fixed;
        } else {
            dec = clew__sample(p->sampler, NULL, &ctx->trace_id, &ctx->tracestate);
        }
    }
    if (dec == CLEW_SAMPLING_DROP) {
        /* the span id of a dropped span is made when somebody first looks at
         * it (span_ensure_id): most dropped spans are never propagated */
        s->recording = 0;
        s->sampled = 0;
        s->id_pending = CLEW__PENDING_SPAN_ID;
        return s;
    }
    s->id_pending = 0;
    span_make_id(s);
    s->recording = 1;
    /* the first attribute slots are taken from the inline region right away: nearly every
     * span gets attributes, and growing the list from nothing was a call per span */
    uint32_t first =
        p->limits.attribute_count < SPAN_FIRST_ATTRS ? p->limits.attribute_count : SPAN_FIRST_ATTRS;
    s->inl_used = first * (uint32_t)sizeof(clew_kv);
    s->sampled = dec == CLEW_SAMPLING_RECORD_AND_SAMPLE;
    s->status_final = 0;
    if (s->sampled) {
        ctx->trace_flags |= CLEW_TRACE_FLAG_SAMPLED;
    }
    s->attr_cap = first;
    s->event_cap = s->link_cap = 0;

    /* field by field: a memset of the whole record costs more than the span's
     * attributes (rep stos start-up) and most fields are written below anyway */
    clew_span_data *d = &s->data;
    d->attrs = (clew_attrs){first > 0 ? (clew_kv *)(void *)s->inl : NULL, 0, 0};
    d->events = NULL;
    d->n_events = d->dropped_events = 0;
    d->links = NULL;
    d->n_links = d->dropped_links = 0;
    d->status_code = CLEW_STATUS_UNSET;
    d->status_message = (clew_str){NULL, 0};
    d->end_ns = 0;
    d->parent_span_id = (clew_span_id){{0}};
    d->trace_id = ctx->trace_id;
    d->span_id = ctx->span_id;
    if (has_parent) {
        d->parent_span_id = parent->span_id;
    }
    d->trace_state.ptr = ctx->tracestate.buf;
    d->trace_state.len = ctx->tracestate.len;
    d->flags = ctx->trace_flags | CLEW_FLAG_HAS_IS_REMOTE |
               (has_parent && parent->is_remote ? CLEW_FLAG_IS_REMOTE : 0);
    d->name = span_strdup(s, name ? name : "", name ? strlen(name) : 0);
    d->kind = opt->kind >= CLEW_SPAN_KIND_INTERNAL && opt->kind <= CLEW_SPAN_KIND_CONSUMER
                  ? (clew_span_kind)opt->kind
                  : CLEW_KIND_INTERNAL;
    d->start_ns = opt->start_ns ? opt->start_ns : clew__span_now_ns();
    d->resource = &p->resource;
    d->scope = &t->scope;
    for (size_t i = 0; i < opt->n_attrs && opt->attrs != NULL; i++) {
        attrs_put(s, &d->attrs, &s->attr_cap, p->limits.attribute_count, &opt->attrs[i]);
    }
    for (size_t i = 0; i < opt->n_links && opt->links != NULL; i++) {
        link_add(s, &opt->links[i]);
    }
    return s;
}

/* The fast path: a dropped root from a free span of this thread's pool, in
 * as few instructions (and as few registers to save) as possible; anything
 * else goes to span_start_full. */
clew_span *clew_span_start(clew_tracer *t, const char *name, const clew_span_options *opt)
{
    if (__builtin_expect(t != NULL, 1) && (opt == NULL || opt->parent == NULL) &&
        (tl_current == NULL || (opt != NULL && opt->root))) {
        clew_provider *p = t->provider;
        clew__tpool *pool = tl_pool;
        if (p->root_decision == CLEW_SAMPLING_DROP && !p->has_idgen && pool != NULL &&
            pool->free != NULL) {
            clew_span *s = pool->free;
            pool->free = s->next;
            pool->n_free--;
            pool->out++;
            span_init_dropped_root(s, p);
            return s;
        }
    }
    return span_start_full(t, name, opt);
}

static void span_end_sampled(clew_span *s, uint64_t end_ns);

void clew_span_end(clew_span *s, uint64_t end_ns)
{
    if (s == NULL || s->pool == NULL) {
        return;
    }
    if (tl_current == s) {
        /* ending the current span: children must not see a recycled parent */
        tl_current = NULL;
    }
    if (!s->recording || !s->sampled) {
        span_put_local(s);
        return;
    }
    span_end_sampled(s, end_ns);
}

/* Out of line so that clew_span_end's unsampled case saves no register. */
static __attribute__((noinline)) void span_end_sampled(clew_span *s, uint64_t end_ns)
{
    s->data.end_ns = end_ns ? end_ns : clew__span_now_ns();
    if (s->data.end_ns < s->data.start_ns) {
        s->data.end_ns = s->data.start_ns;
    }
    if (s->data.name.ptr == NULL) {
        s->data.name = (clew_str){"", 0};
    }
    clew__provider_on_end(s->provider, s);
}

/* Called by the provider when it did not take the span (no exporter, queue full). */
void clew__span_drop(clew_span *s);
void clew__span_drop(clew_span *s)
{
    span_put_local(s);
}

bool clew_span_is_recording(const clew_span *s)
{
    return s != NULL && s->recording;
}

void clew_span_context_get(const clew_span *s, clew_span_context *out)
{
    if (out == NULL) {
        return;
    }
    if (s == NULL || s->pool == NULL) {
        clew_span_context_init(out);
        return;
    }
    clew__span_ensure_id((clew_span *)s); /* the handle is not const inside */
    out->trace_id = s->ctx.trace_id;
    out->span_id = s->ctx.span_id;
    out->trace_flags = s->ctx.trace_flags;
    out->is_remote = false;
    clew__tracestate_copy(&out->tracestate, &s->ctx.tracestate);
}

/* ---- attributes, events, links, status ---- */

void clew_span_set_attr(clew_span *s, const clew_attr *a)
{
    if (s == NULL || !s->recording) {
        return;
    }
    attrs_put(s, &s->data.attrs, &s->attr_cap, s->provider->limits.attribute_count, a);
}

void clew_span_set_attrs(clew_span *s, const clew_attr *attrs, size_t n)
{
    if (s == NULL || !s->recording || attrs == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        attrs_put(s, &s->data.attrs, &s->attr_cap, s->provider->limits.attribute_count, &attrs[i]);
    }
}

/* The setters below are thin: the public function only checks that the span
 * records and tail-calls the worker, so a non-recording span costs a call and
 * a compare (the worker's register saves are not paid on that path). */

static __attribute__((noinline)) void set_str_rec(clew_span *s, const char *key, const char *value)
{
    if (value == NULL || key == NULL || key[0] == '\0') {
        return;
    }
    size_t n = utf8_cut(value, strlen(value), s->provider->limits.attribute_value_length);
    size_t klen = strlen(key);
    clew_attrs *list = &s->data.attrs;
    clew_kv *kv = attrs_find(list, key, klen);
    char *d;
    if (kv != NULL) {
        d = span_mem_inl(s, n + 1);
        if (__builtin_expect(d == NULL, 0)) {
            list->dropped++;
            return;
        }
    } else {
        /* a new key: its copy and the value's in one piece of span memory */
        kv = attrs_add(s, list, &s->attr_cap, s->provider->limits.attribute_count);
        char *k = kv != NULL ? span_mem_inl(s, klen + 1 + n + 1) : NULL;
        if (__builtin_expect(k == NULL, 0)) {
            if (kv != NULL) {
                list->n--; /* the entry just added stays unused */
                list->dropped++;
            }
            return;
        }
        copy_short(k, key, klen);
        k[klen] = '\0';
        kv->key = (clew_str){k, klen};
        d = k + klen + 1;
    }
    copy_short(d, value, n);
    d[n] = '\0';
    kv->value.type = CLEW_VALUE_STRING;
    kv->value.u.s = (clew_str){d, n};
}

void clew_span_set_str(clew_span *s, const char *key, const char *value)
{
    if (s == NULL || !s->recording) {
        return;
    }
    set_str_rec(s, key, value);
}

void clew_span_set_strn(clew_span *s, const char *key, const char *value, size_t len)
{
    if (s == NULL || !s->recording || (value == NULL && len > 0)) {
        return;
    }
    clew_attr a = {.key = key, .type = CLEW_ATTR_STRING, .v.s = {value, len}};
    clew_span_set_attr(s, &a);
}

/* The scalar setters write the value in its slot: no clew_attr, no type
 * switch. The whole union is written, as a fresh value would be. */
static __attribute__((noinline)) void set_int_rec(clew_span *s, const char *key, int64_t value)
{
    clew_value *slot = span_attr_slot(s, key);
    if (slot != NULL) {
        slot->type = CLEW_VALUE_INT;
        slot->u.s = (clew_str){NULL, 0};
        slot->u.i = value;
    }
}

void clew_span_set_int(clew_span *s, const char *key, int64_t value)
{
    if (s == NULL || !s->recording) {
        return;
    }
    set_int_rec(s, key, value);
}

static __attribute__((noinline)) void set_bool_rec(clew_span *s, const char *key, bool value)
{
    clew_value *slot = span_attr_slot(s, key);
    if (slot != NULL) {
        slot->type = CLEW_VALUE_BOOL;
        slot->u.s = (clew_str){NULL, 0};
        slot->u.b = value;
    }
}

void clew_span_set_bool(clew_span *s, const char *key, bool value)
{
    if (s == NULL || !s->recording) {
        return;
    }
    set_bool_rec(s, key, value);
}

static __attribute__((noinline)) void set_double_rec(clew_span *s, const char *key, double value)
{
    clew_value *slot = span_attr_slot(s, key);
    if (slot != NULL) {
        slot->type = CLEW_VALUE_DOUBLE;
        slot->u.s = (clew_str){NULL, 0};
        slot->u.d = value;
    }
}

void clew_span_set_double(clew_span *s, const char *key, double value)
{
    if (s == NULL || !s->recording) {
        return;
    }
    set_double_rec(s, key, value);
}

void clew_span_set_bytes(clew_span *s, const char *key, const void *data, size_t len)
{
    if (s == NULL || !s->recording || (data == NULL && len > 0)) {
        return;
    }
    clew_attr a = {.key = key, .type = CLEW_ATTR_BYTES, .v.s = {data, len}};
    clew_span_set_attr(s, &a);
}

void clew_span_add_event(clew_span *s, const char *name, const clew_attr *attrs, size_t n_attrs,
                         uint64_t time_ns)
{
    if (s == NULL || !s->recording) {
        return;
    }
    clew_span_data *d = &s->data;
    if (d->n_events >= s->provider->limits.event_count) {
        d->dropped_events++;
        return;
    }
    if (d->n_events == s->event_cap) {
        uint32_t ncap = s->event_cap ? s->event_cap * 2 : 4;
        clew_event_data *items = span_mem(s, ncap * sizeof(*items));
        if (items == NULL) {
            d->dropped_events++;
            return;
        }
        if (d->n_events > 0) {
            memcpy(items, d->events, d->n_events * sizeof(*items));
        }
        d->events = items;
        s->event_cap = ncap;
    }
    clew_event_data *e = &d->events[d->n_events];
    e->time_ns = time_ns ? time_ns : clew__span_now_ns();
    e->name = span_strdup(s, name ? name : "", name ? strlen(name) : 0);
    if (e->name.ptr == NULL) {
        d->dropped_events++;
        return;
    }
    attrs_fixed(s, &e->attrs, attrs, n_attrs, s->provider->limits.event_attribute_count);
    d->n_events++;
}

void clew_span_add_link(clew_span *s, const clew_link *link)
{
    if (s == NULL || !s->recording) {
        return;
    }
    link_add(s, link);
}

void clew_span_record_exception(clew_span *s, const char *type, const char *message,
                                const char *stacktrace)
{
    if (s == NULL || !s->recording) {
        return;
    }
    clew_attr a[3];
    size_t n = 0;
    if (type != NULL) {
        a[n++] = clew_attr_str("exception.type", type);
    }
    if (message != NULL) {
        a[n++] = clew_attr_str("exception.message", message);
    }
    if (stacktrace != NULL) {
        a[n++] = clew_attr_str("exception.stacktrace", stacktrace);
    }
    clew_span_add_event(s, "exception", a, n, 0);
}

void clew_span_set_status(clew_span *s, clew_span_status code, const char *description)
{
    if (s == NULL || !s->recording || s->status_final) {
        return;
    }
    if (code == CLEW_SPAN_STATUS_OK) {
        s->data.status_code = CLEW_STATUS_OK;
        s->data.status_message = (clew_str){NULL, 0};
        s->status_final = 1;
    } else if (code == CLEW_SPAN_STATUS_ERROR) {
        s->data.status_code = CLEW_STATUS_ERROR;
        s->data.status_message = (clew_str){NULL, 0};
        if (description != NULL && description[0] != '\0') {
            s->data.status_message = span_strdup(s, description, strlen(description));
        }
    }
}

void clew_span_update_name(clew_span *s, const char *name)
{
    if (s == NULL || !s->recording || name == NULL) {
        return;
    }
    clew_str n = span_strdup(s, name, strlen(name));
    if (n.ptr != NULL) {
        s->data.name = n;
    }
}

/* ---- current span ---- */

clew_current_token clew_span_make_current(clew_span *s)
{
    clew_current_token tok = {tl_current, ++tl_depth};
    tl_current = (s != NULL && s->pool != NULL) ? s : NULL;
    return tok;
}

void clew_span_restore(clew_current_token token)
{
    if (token.depth != tl_depth || tl_depth == 0) {
        return;
    }
    tl_current = token.prev;
    tl_depth--;
}

clew_span *clew_span_current(void)
{
    return tl_current;
}
