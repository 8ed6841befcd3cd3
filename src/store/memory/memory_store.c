/*
 * src/store/memory/memory_store.c - the memory store: every trace in RAM, bounded
 * by a trace count and a byte budget, oldest trace evicted first.
 *
 * Layout:
 *   - traces: a chained hash table trace id -> trace_entry, plus a doubly linked
 *     list in creation order (oldest .. newest) that drives eviction and the
 *     newest-first order of search results.
 *   - each trace_entry owns an arena with its cloned spans, an array of span
 *     pointers, and an open-addressing set of span ids for deduplication.
 *   - resources and scopes are interned per store (same content -> one copy) and
 *     refcounted by the traces that use them: a trace holds one reference per
 *     distinct interned object, so when the last trace using a resource is evicted
 *     its copy is freed. Refcounting (rather than store-lifetime interning with a
 *     cap) keeps memory proportional to what is stored, which matters when
 *     resources carry per-process attributes (pid, host) that change on every
 *     restart of a service.
 *   - the service and operation index (service -> (operation, kind)) only grows,
 *     like Jaeger's; it is capped (MAX_INDEX_ENTRIES) so that a client sending
 *     unbounded distinct names cannot exhaust memory. Names past the cap are not
 *     listed but their spans are still stored and searchable.
 *
 * Metadata: append's meta (or KEPT with adjusted_count 1 when NULL) is set when a
 * trace is created; later appends leave it alone and set_trace_meta changes it.
 *
 * Span copies: one append copies each trace's new spans into one block of the
 * trace's arena, sized by a first pass over the batch. Attribute keys, span names
 * and repeated string values are not copied per span: spans point at store-wide
 * tables (keys, the operation index, values shared per key) that live as long as the
 * store and are bounded (MAX_KEYS, MAX_INDEX_ENTRIES, MAX_SHARED_VALUES); past a
 * bound, strings are copied per span as before.
 *
 * Byte budget: max_bytes counts span data (each trace's arena, arrays and dedup set)
 * and the interned resources and scopes; the bounded name index and key and value
 * tables are not counted.
 *
 * Locking: one rwlock. append and set_trace_meta take it for writing; get_trace,
 * search, services, operations and stats for reading. Everything handed out is
 * copied into a result arena before the lock is released, except the embedded
 * store's pinned views (clew__memory_store_pin_trace): a stored span is never
 * written again, so the cut reads the spans themselves, and a trace removed while
 * pinned is only unlinked until its last unpin frees it.
 */
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/hash.h"

#define DEFAULT_MAX_TRACES 100000u
#define DEFAULT_LIMIT      20u
#define TRACE_CHUNK        64u    /* fallback arena chunk of a trace; spans go in sized blocks */
#define RESULT_CHUNK       16384u /* arena chunk of a result handed to a caller */
#define MAX_INDEX_ENTRIES  100000u
#define MAX_KEYS           8192u      /* distinct attribute keys interned per store */
#define MAX_KEY_LEN        128u       /* longer keys are copied per span */
#define KEY_CACHE          32u        /* attribute positions with a last-key cache */
#define KEY_VALUES         16u        /* string values shared per key */
#define MAX_VALUE_LEN      128u       /* longer values are copied per span */
#define MAX_SHARED_VALUES  (1u << 20) /* bytes of shared values (and their lists) */

/* ---- a chained hash table of intrusive nodes ---- */

typedef struct hnode {
    struct hnode *next;
    uint64_t hash;
} hnode;

typedef struct htable {
    hnode **b;
    size_t nb; /* power of two, or 0 before the first insert */
    size_t n;
} htable;

static clew_status ht_reserve(htable *t)
{
    if (t->n < t->nb) {
        return CLEW_OK;
    }
    size_t nb = t->nb ? t->nb * 2 : 64;
    hnode **b = clew__calloc(nb, sizeof(*b));
    if (b == NULL) {
        return CLEW_ENOMEM;
    }
    for (size_t i = 0; i < t->nb; i++) {
        hnode *n = t->b[i];
        while (n != NULL) {
            hnode *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    clew__free(t->b);
    t->b = b;
    t->nb = nb;
    return CLEW_OK;
}

/* The caller called ht_reserve first, so this cannot fail. */
static void ht_insert(htable *t, hnode *n)
{
    hnode **slot = &t->b[n->hash & (t->nb - 1)];
    n->next = *slot;
    *slot = n;
    t->n++;
}

static void ht_remove(htable *t, hnode *n)
{
    hnode **p = &t->b[n->hash & (t->nb - 1)];
    while (*p != NULL && *p != n) {
        p = &(*p)->next;
    }
    if (*p == n) {
        *p = n->next;
        t->n--;
    }
}

static hnode *ht_first(const htable *t, uint64_t hash)
{
    return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

/* ---- entries ---- */

typedef struct interned {
    hnode node;
    size_t refs;  /* traces that reference it */
    size_t bytes; /* accounted against max_bytes */
    clew_arena arena;
    union {
        clew_resource r;
        clew_scope s;
    } u;
} interned;

typedef struct svc_entry {
    hnode node;
    size_t len;
    char name[];
} svc_entry;

/* An interned attribute key: spans point at `s` instead of holding a copy. Keys
 * live as long as the store (bounded by MAX_KEYS), like the name index.
 *
 * A key also shares up to KEY_VALUES of its string values (http.route,
 * server.address, user_agent.original repeat across spans). A key whose values
 * keep missing the full list (ids, paths with ids) stops sharing, so that it costs
 * no more than a few compares. */
typedef struct key_entry {
    hnode node;
    clew_str *vals; /* KEY_VALUES slots in ms->shared, NULL until the first value */
    uint32_t n_vals;
    uint32_t hits, misses; /* once the list is full */
    bool values_off;
    size_t len;
    char s[];
} key_entry;

typedef struct op_entry {
    hnode node;
    const svc_entry *svc;
    clew_span_kind kind;
    size_t len;
    char name[];
} op_entry;

typedef struct trace_entry {
    hnode node;
    struct trace_entry *older, *newer;
    clew_trace_id id;
    clew_arena arena;
    clew_span_data **spans;
    uint32_t n_spans, cap_spans;
    uint32_t *slots; /* span index + 1, 0 = empty; open addressing on the span id */
    uint32_t n_slots;
    interned **res; /* distinct interned resources, one reference each */
    uint32_t n_res, cap_res;
    interned **scopes;
    uint32_t n_scopes, cap_scopes;
    /* summary kept current on append so search need not visit spans */
    uint64_t start_ns, end_ns;
    uint32_t root; /* index of the root span (zero parent, earliest), else the earliest */
    uint32_t errors;
    /* metadata; strings owned (clew__malloc) */
    clew_trace_state state;
    double adjusted_count;
    char *kept_reason;
    size_t kept_reason_len;
    char *tenant;
    size_t tenant_len;
    size_t bytes; /* what this entry added to store->bytes */
    /* free space of the current span block (structs from blk_lo up, strings from
     * blk_hi down); a block is sized for all of one append's spans of this trace */
    char *blk_lo, *blk_hi;
    /* during one append: bytes and spans of this trace still to store */
    size_t pend_bytes;
    uint32_t pend_spans;
    /* pinned views (clew__memory_store_pin_trace) reading the spans; a trace removed while
     * pinned is unlinked at once and freed by its last unpin */
    uint32_t pins;
    bool unlinked;
} trace_entry;

typedef struct memory_store {
    clew_store base;
    pthread_rwlock_t lock;
    size_t max_traces;
    size_t max_bytes;
    htable traces;
    trace_entry *oldest, *newest;
    htable resources, scopes;
    htable services, ops;
    htable keys;                        /* key_entry, at most MAX_KEYS */
    key_entry *key_cache[KEY_CACHE][2]; /* last two keys seen at each attribute position */
    clew_arena shared;                  /* shared values, at most MAX_SHARED_VALUES */
    uint64_t spans, bytes, evicted, duplicates;
    clew_store_observer observer; /* set before the first append; read without the lock */
    void *observer_ud;
} memory_store;

static bool str_eq(clew_str a, const char *p, size_t len)
{
    return a.len == len && (len == 0 || memcmp(a.ptr, p, len) == 0);
}

static bool str_eq2(clew_str a, clew_str b)
{
    return str_eq(a, b.ptr, b.len);
}

/* The store's tables hash a word at a time: every span is looked up by trace id,
 * span id, operation and attribute keys, and the byte-wise FNV of common/hash.h
 * showed up in profiles of ingest. These hashes never leave this file. */
static uint64_t str_hash(uint64_t h, const char *p, size_t n)
{
    const uint64_t mul = 0x9e3779b97f4a7c15ull;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * mul;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    if (n > 0) {
        memcpy(&w, p, n);
    }
    return clew__hash_finish((h ^ w ^ ((uint64_t)n << 56)) * mul);
}

static uint64_t trace_hash(const clew_trace_id *id)
{
    return str_hash(CLEW_HASH_SEED, (const char *)id->bytes, sizeof(id->bytes));
}

static uint64_t span_id_hash(const clew_span_id *id)
{
    uint64_t w;
    memcpy(&w, id->bytes, sizeof(w));
    return clew__hash_finish(w ^ CLEW_HASH_SEED);
}

/* ---- interning ---- */

static void interned_release(memory_store *ms, htable *t, interned *o)
{
    if (--o->refs > 0) {
        return;
    }
    ht_remove(t, &o->node);
    ms->bytes -= o->bytes;
    clew__arena_deinit(&o->arena);
    clew__free(o);
}

/* Finds or creates the interned copy of a resource (scope == NULL) or scope. A new
 * copy starts with refs == 0: the caller takes a reference at once. */
static clew_status intern(memory_store *ms, const clew_resource *r, const clew_scope *s,
                          interned **out)
{
    htable *t = s ? &ms->scopes : &ms->resources;
    uint64_t h = s ? clew__scope_hash(s) : clew__resource_hash(r);
    for (hnode *n = ht_first(t, h); n != NULL; n = n->next) {
        interned *o = (interned *)n;
        if (n->hash == h &&
            (s ? clew__scope_equal(&o->u.s, s) : clew__resource_equal(&o->u.r, r))) {
            *out = o;
            return CLEW_OK;
        }
    }
    if (ht_reserve(t) != CLEW_OK) {
        return CLEW_ENOMEM;
    }
    interned *o = clew__calloc(1, sizeof(*o));
    if (o == NULL) {
        return CLEW_ENOMEM;
    }
    clew__arena_init(&o->arena, 512, 0);
    clew_status rc =
        s ? clew__scope_clone(&o->u.s, s, &o->arena) : clew__resource_clone(&o->u.r, r, &o->arena);
    if (rc != CLEW_OK) {
        clew__arena_deinit(&o->arena);
        clew__free(o);
        return rc;
    }
    o->node.hash = h;
    o->bytes = sizeof(*o) + o->arena.held;
    ms->bytes += o->bytes;
    ht_insert(t, &o->node);
    *out = o;
    return CLEW_OK;
}

/* Gives trace `e` a reference to `o` unless it has one already. */
static clew_status entry_ref(interned ***list, uint32_t *n, uint32_t *cap, interned *o)
{
    for (uint32_t i = 0; i < *n; i++) {
        if ((*list)[i] == o) {
            return CLEW_OK;
        }
    }
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 2;
        interned **l = clew__realloc(*list, nc * sizeof(*l));
        if (l == NULL) {
            return CLEW_ENOMEM;
        }
        *list = l;
        *cap = nc;
    }
    (*list)[(*n)++] = o;
    o->refs++;
    return CLEW_OK;
}

/* ---- service / operation index ---- */

static uint64_t name_hash(const svc_entry *svc, clew_str name, clew_span_kind kind)
{
    uint64_t h = clew__hash_finish(CLEW_HASH_SEED ^ (uint64_t)(uintptr_t)svc ^ (uint64_t)kind);
    return str_hash(h, name.ptr, name.len);
}

/* Returns the service's index entry, creating it; NULL when the index is full or
 * memory ran out (the span is stored anyway, only the listing misses it). */
static svc_entry *index_service(memory_store *ms, clew_str name)
{
    uint64_t h = name_hash(NULL, name, CLEW_KIND_UNSPECIFIED);
    for (hnode *n = ht_first(&ms->services, h); n != NULL; n = n->next) {
        svc_entry *e = (svc_entry *)n;
        if (n->hash == h && e->len == name.len && memcmp(e->name, name.ptr, name.len) == 0) {
            return e;
        }
    }
    if (ms->services.n >= MAX_INDEX_ENTRIES || ht_reserve(&ms->services) != CLEW_OK) {
        return NULL;
    }
    svc_entry *e = clew__malloc(sizeof(*e) + name.len + 1);
    if (e == NULL) {
        return NULL;
    }
    e->node.hash = h;
    e->len = name.len;
    if (name.len) {
        memcpy(e->name, name.ptr, name.len);
    }
    e->name[name.len] = '\0';
    ht_insert(&ms->services, &e->node);
    return e;
}

/* Returns the operation's index entry, creating it; NULL like index_service. Its
 * name outlives every trace, so stored spans share it instead of copying theirs. */
static const op_entry *index_operation(memory_store *ms, const svc_entry *svc, clew_str name,
                                       clew_span_kind kind)
{
    if (svc == NULL) {
        return NULL;
    }
    uint64_t h = name_hash(svc, name, kind);
    for (hnode *n = ht_first(&ms->ops, h); n != NULL; n = n->next) {
        op_entry *e = (op_entry *)n;
        if (n->hash == h && e->svc == svc && e->kind == kind && e->len == name.len &&
            memcmp(e->name, name.ptr, name.len) == 0) {
            return e;
        }
    }
    if (ms->ops.n >= MAX_INDEX_ENTRIES || ht_reserve(&ms->ops) != CLEW_OK) {
        return NULL;
    }
    op_entry *e = clew__malloc(sizeof(*e) + name.len + 1);
    if (e == NULL) {
        return NULL;
    }
    e->node.hash = h;
    e->svc = svc;
    e->kind = kind;
    e->len = name.len;
    if (name.len) {
        memcpy(e->name, name.ptr, name.len);
    }
    e->name[name.len] = '\0';
    ht_insert(&ms->ops, &e->node);
    return e;
}

/* ---- trace entries ---- */

static size_t entry_bytes(const trace_entry *e)
{
    return sizeof(*e) + e->arena.held + (size_t)e->cap_spans * sizeof(*e->spans) +
           (size_t)e->n_slots * sizeof(*e->slots) + (size_t)e->cap_res * sizeof(*e->res) +
           (size_t)e->cap_scopes * sizeof(*e->scopes) + e->kept_reason_len + e->tenant_len;
}

static void entry_account(memory_store *ms, trace_entry *e)
{
    ms->bytes -= e->bytes;
    e->bytes = entry_bytes(e);
    ms->bytes += e->bytes;
}

static void entry_free(memory_store *ms, trace_entry *e)
{
    for (uint32_t i = 0; i < e->n_res; i++) {
        interned_release(ms, &ms->resources, e->res[i]);
    }
    for (uint32_t i = 0; i < e->n_scopes; i++) {
        interned_release(ms, &ms->scopes, e->scopes[i]);
    }
    ms->bytes -= e->bytes;
    ms->spans -= e->n_spans;
    clew__free(e->res);
    clew__free(e->scopes);
    clew__free(e->spans);
    clew__free(e->slots);
    clew__free(e->kept_reason);
    clew__free(e->tenant);
    clew__arena_deinit(&e->arena);
    clew__free(e);
}

/* Unlinks and frees a trace (eviction or destroy); a pinned one is only unlinked (and no
 * longer counted), its last unpin frees it. */
static void entry_remove(memory_store *ms, trace_entry *e)
{
    ht_remove(&ms->traces, &e->node);
    if (e->older) {
        e->older->newer = e->newer;
    } else {
        ms->oldest = e->newer;
    }
    if (e->newer) {
        e->newer->older = e->older;
    } else {
        ms->newest = e->older;
    }
    if (e->pins > 0) {
        ms->bytes -= e->bytes;
        e->bytes = 0;
        ms->spans -= e->n_spans;
        e->n_spans = 0;
        e->unlinked = true;
        return;
    }
    entry_free(ms, e);
}

static clew_status dup_owned(char **dst, size_t *dst_len, clew_str src)
{
    char *p = NULL;
    if (src.len > 0) {
        p = clew__strndup(src.ptr, src.len);
        if (p == NULL) {
            return CLEW_ENOMEM;
        }
    }
    clew__free(*dst);
    *dst = p;
    *dst_len = src.len;
    return CLEW_OK;
}

static clew_status entry_set_meta(trace_entry *e, const clew_trace_meta *m)
{
    e->state = m->state;
    e->adjusted_count = m->adjusted_count;
    clew_str kr = {e->kept_reason, e->kept_reason_len}, tn = {e->tenant, e->tenant_len};
    clew_status rc = CLEW_OK;
    if (!str_eq2(kr, m->kept_reason)) {
        rc = dup_owned(&e->kept_reason, &e->kept_reason_len, m->kept_reason);
    }
    if (rc == CLEW_OK && !str_eq2(tn, m->tenant)) {
        rc = dup_owned(&e->tenant, &e->tenant_len, m->tenant);
    }
    return rc;
}

static trace_entry *entry_find(memory_store *ms, const clew_trace_id *id)
{
    uint64_t h = trace_hash(id);
    for (hnode *n = ht_first(&ms->traces, h); n != NULL; n = n->next) {
        trace_entry *e = (trace_entry *)n;
        if (n->hash == h && memcmp(e->id.bytes, id->bytes, sizeof(id->bytes)) == 0) {
            return e;
        }
    }
    return NULL;
}

static clew_status entry_create(memory_store *ms, const clew_trace_id *id, trace_entry **out)
{
    if (ht_reserve(&ms->traces) != CLEW_OK) {
        return CLEW_ENOMEM;
    }
    trace_entry *e = clew__calloc(1, sizeof(*e));
    if (e == NULL) {
        return CLEW_ENOMEM;
    }
    e->node.hash = trace_hash(id);
    e->id = *id;
    clew__arena_init(&e->arena, TRACE_CHUNK, 0);
    e->state = CLEW_TRACE_KEPT;
    e->adjusted_count = 1;
    ht_insert(&ms->traces, &e->node);
    e->older = ms->newest;
    if (ms->newest) {
        ms->newest->newer = e;
    } else {
        ms->oldest = e;
    }
    ms->newest = e;
    entry_account(ms, e);
    *out = e;
    return CLEW_OK;
}

/* Index of the span with this id, or -1. */
static long entry_lookup_span(const trace_entry *e, const clew_span_id *id)
{
    if (e->n_slots == 0) {
        return -1;
    }
    uint32_t mask = e->n_slots - 1;
    for (uint32_t i = (uint32_t)span_id_hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = e->slots[i];
        if (v == 0) {
            return -1;
        }
        if (memcmp(e->spans[v - 1]->span_id.bytes, id->bytes, sizeof(id->bytes)) == 0) {
            return (long)(v - 1);
        }
    }
}

static void slots_put(uint32_t *slots, uint32_t n_slots, const clew_span_id *id, uint32_t v)
{
    uint32_t mask = n_slots - 1;
    uint32_t i = (uint32_t)span_id_hash(id) & mask;
    while (slots[i] != 0) {
        i = (i + 1) & mask;
    }
    slots[i] = v;
}

/* Makes room for `extra` more spans (array and dedup set, load factor <= 1/2), so
 * that one append reserves once for all of its spans of a trace. */
static clew_status entry_grow(trace_entry *e, uint32_t extra)
{
    const uint32_t max = UINT32_MAX / 4;
    if (e->n_spans >= max) {
        return CLEW_ETOOBIG;
    }
    if (extra == 0 || extra > max - e->n_spans) {
        extra = 1;
    }
    uint32_t want = e->n_spans + extra;
    if (want > e->cap_spans) {
        uint32_t nc = e->cap_spans * 2 > want ? e->cap_spans * 2 : want;
        clew_span_data **sp = clew__realloc(e->spans, nc * sizeof(*sp));
        if (sp == NULL) {
            return CLEW_ENOMEM;
        }
        e->spans = sp;
        e->cap_spans = nc;
    }
    if (want * 2 > e->n_slots) {
        uint32_t ns = e->n_slots ? e->n_slots : 8;
        while (ns < want * 2) {
            ns *= 2;
        }
        uint32_t *slots = clew__calloc(ns, sizeof(*slots));
        if (slots == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < e->n_spans; i++) {
            slots_put(slots, ns, &e->spans[i]->span_id, i + 1);
        }
        clew__free(e->slots);
        e->slots = slots;
        e->n_slots = ns;
    }
    return CLEW_OK;
}

static bool is_root(const clew_span_data *s)
{
    static const clew_span_id zero;
    return memcmp(s->parent_span_id.bytes, zero.bytes, sizeof(zero.bytes)) == 0;
}

static void entry_update_summary(trace_entry *e, uint32_t idx)
{
    const clew_span_data *s = e->spans[idx];
    uint64_t end = s->end_ns > s->start_ns ? s->end_ns : s->start_ns;
    if (idx == 0) {
        e->start_ns = s->start_ns;
        e->end_ns = end;
        e->root = 0;
    } else {
        if (s->start_ns < e->start_ns) {
            e->start_ns = s->start_ns;
        }
        if (end > e->end_ns) {
            e->end_ns = end;
        }
        const clew_span_data *r = e->spans[e->root];
        bool sr = is_root(s), rr = is_root(r);
        if ((sr && !rr) || (sr == rr && s->start_ns < r->start_ns)) {
            e->root = idx;
        }
    }
    if (s->status_code == CLEW_STATUS_ERROR) {
        e->errors++;
    }
}

/* ---- copying a span into its trace ----
 *
 * A span is copied into a block of its trace's arena that append sized for all of
 * the batch's spans of that trace (one allocation per trace and batch, no chunk
 * tails). Structs fill a block from the bottom and strings, which need no
 * alignment, from the top. Attribute keys point at the store's key table and span
 * names at the operation index, and repeated string values at their key; all live
 * as long as the store. span_size counts exactly what span_copy takes from the
 * block; should a table change in between (a value list filled up or switched
 * off), the rest comes from the arena. */

_Static_assert(sizeof(clew_value) % 8 == 0 && sizeof(clew_kv) % 8 == 0 &&
                   sizeof(clew_event_data) % 8 == 0 && sizeof(clew_link_data) % 8 == 0 &&
                   sizeof(clew_span_data) % 8 == 0,
               "block structs keep 8-byte alignment");

static uint64_t key_hash(clew_str k)
{
    return str_hash(CLEW_HASH_SEED, k.ptr, k.len);
}

/* The interned copy of key `k` (added if the table has room), or NULL. `pos` is the
 * attribute's position in its list: spans of one kind repeat their keys in order,
 * so comparing with the last two keys seen there (two: kinds of spans interleave)
 * usually saves the hash. */
static key_entry *intern_key(memory_store *ms, clew_str k, uint32_t pos)
{
    if (k.len == 0 || k.len > MAX_KEY_LEN) {
        return NULL;
    }
    key_entry **cache = pos < KEY_CACHE ? ms->key_cache[pos] : NULL;
    for (int i = 0; cache != NULL && i < 2; i++) {
        if (cache[i] != NULL && cache[i]->len == k.len && memcmp(cache[i]->s, k.ptr, k.len) == 0) {
            return cache[i];
        }
    }
    uint64_t h = key_hash(k);
    key_entry *found = NULL;
    for (hnode *n = ht_first(&ms->keys, h); n != NULL && found == NULL; n = n->next) {
        key_entry *e = (key_entry *)n;
        if (n->hash == h && e->len == k.len && memcmp(e->s, k.ptr, k.len) == 0) {
            found = e;
        }
    }
    if (found == NULL) {
        if (ms->keys.n >= MAX_KEYS || ht_reserve(&ms->keys) != CLEW_OK) {
            return NULL;
        }
        key_entry *e = clew__calloc(1, sizeof(*e) + k.len);
        if (e == NULL) {
            return NULL;
        }
        e->node.hash = h;
        e->len = k.len;
        memcpy(e->s, k.ptr, k.len);
        ht_insert(&ms->keys, &e->node);
        found = e;
    }
    if (cache != NULL) {
        cache[1] = cache[0];
        cache[0] = found;
    }
    return found;
}

/* The shared copy of string value `v` of key `k` (added if the key's list has
 * room), or NULL. */
static const char *intern_value(memory_store *ms, key_entry *k, clew_str v)
{
    if (k->values_off || v.len == 0 || v.len > MAX_VALUE_LEN) {
        return NULL;
    }
    for (uint32_t i = 0; i < k->n_vals; i++) {
        if (k->vals[i].len == v.len && memcmp(k->vals[i].ptr, v.ptr, v.len) == 0) {
            k->hits += k->n_vals == KEY_VALUES;
            return k->vals[i].ptr;
        }
    }
    if (k->n_vals == KEY_VALUES) {
        /* mostly distinct values: stop comparing */
        if (++k->misses > k->hits && k->misses >= 64) {
            k->values_off = true;
        }
        return NULL;
    }
    if (k->vals == NULL) {
        k->vals = clew__arena_alloc(&ms->shared, KEY_VALUES * sizeof(*k->vals));
    }
    char *p = k->vals ? clew__arena_alloc(&ms->shared, v.len) : NULL;
    if (p == NULL) {
        k->values_off = true;
        return NULL;
    }
    memcpy(p, v.ptr, v.len);
    k->vals[k->n_vals++] = (clew_str){p, v.len};
    return p;
}

/* A kv's key and string value as stored: shared copies where the tables have them
 * (NULL where the span needs its own). Sizing and copying both call this, so a
 * block holds exactly what the copy needs. */
/* What kv_shared found for one attribute: the plan keeps it for a span's own
 * attributes so that the copy need not look again. */
typedef struct shared_kv {
    const key_entry *key;
    const char *val;
} shared_kv;

static void kv_shared(memory_store *ms, const clew_kv *kv, uint32_t pos, const key_entry **key,
                      const char **val)
{
    key_entry *k = intern_key(ms, kv->key, pos);
    *key = k;
    *val = NULL;
    if (k != NULL && kv->value.type == CLEW_VALUE_STRING) {
        *val = intern_value(ms, k, kv->value.u.s);
    }
}

static size_t kvs_size(memory_store *ms, const clew_kv *kv, uint32_t n, shared_kv *out);

static size_t value_size(memory_store *ms, const clew_value *v)
{
    switch (v->type) {
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        return v->u.s.len;
    case CLEW_VALUE_ARRAY: {
        size_t n = (size_t)v->u.array.n * sizeof(clew_value);
        for (uint32_t i = 0; i < v->u.array.n; i++) {
            n += value_size(ms, &v->u.array.items[i]);
        }
        return n;
    }
    case CLEW_VALUE_KVLIST:
        return kvs_size(ms, v->u.kvlist.items, v->u.kvlist.n, NULL);
    default:
        return 0;
    }
}

/* `out`, when not NULL, receives what each attribute shares. */
static size_t kvs_size(memory_store *ms, const clew_kv *kv, uint32_t n, shared_kv *out)
{
    size_t total = (size_t)n * sizeof(clew_kv);
    for (uint32_t i = 0; i < n; i++) {
        const key_entry *k;
        const char *v;
        kv_shared(ms, &kv[i], i, &k, &v);
        total += (k ? 0 : kv[i].key.len) + (v ? 0 : value_size(ms, &kv[i].value));
        if (out != NULL) {
            out[i] = (shared_kv){k, v};
        }
    }
    return total;
}

static size_t span_size(memory_store *ms, const clew_span_data *s, bool shared_name,
                        shared_kv *attrs_out)
{
    size_t n = sizeof(*s) + s->trace_state.len + (shared_name ? 0 : s->name.len) +
               s->status_message.len + kvs_size(ms, s->attrs.items, s->attrs.n, attrs_out);
    n += (size_t)s->n_events * sizeof(clew_event_data);
    for (uint32_t i = 0; i < s->n_events; i++) {
        n += s->events[i].name.len +
             kvs_size(ms, s->events[i].attrs.items, s->events[i].attrs.n, NULL);
    }
    n += (size_t)s->n_links * sizeof(clew_link_data);
    for (uint32_t i = 0; i < s->n_links; i++) {
        n += s->links[i].trace_state.len +
             kvs_size(ms, s->links[i].attrs.items, s->links[i].attrs.n, NULL);
    }
    return n;
}

typedef struct copier {
    memory_store *ms;
    trace_entry *e;
} copier;

/* `n` is a multiple of 8 (every struct placed here is). */
static void *cp_struct(copier *c, size_t n)
{
    trace_entry *e = c->e;
    if ((size_t)(e->blk_hi - e->blk_lo) >= n) {
        void *p = e->blk_lo;
        e->blk_lo += n;
        return p;
    }
    return clew__arena_alloc(&e->arena, n);
}

static clew_status cp_str(copier *c, clew_str *dst, clew_str src)
{
    if (src.len == 0) {
        *dst = (clew_str){"", 0};
        return CLEW_OK;
    }
    trace_entry *e = c->e;
    char *p;
    if ((size_t)(e->blk_hi - e->blk_lo) >= src.len) {
        e->blk_hi -= src.len;
        p = e->blk_hi;
    } else if ((p = clew__arena_alloc(&e->arena, src.len)) == NULL) {
        return CLEW_ENOMEM;
    }
    memcpy(p, src.ptr, src.len);
    *dst = (clew_str){p, src.len};
    return CLEW_OK;
}

static clew_status cp_kvs(copier *c, clew_kv **dst, const clew_kv *src, uint32_t n,
                          const shared_kv *pre);

static clew_status cp_value(copier *c, clew_value *dst, const clew_value *src)
{
    *dst = *src;
    switch (src->type) {
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        return cp_str(c, &dst->u.s, src->u.s);
    case CLEW_VALUE_ARRAY:
        dst->u.array.items = NULL;
        if (src->u.array.n == 0) {
            return CLEW_OK;
        }
        dst->u.array.items = cp_struct(c, (size_t)src->u.array.n * sizeof(clew_value));
        if (dst->u.array.items == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < src->u.array.n; i++) {
            clew_status rc = cp_value(c, &dst->u.array.items[i], &src->u.array.items[i]);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
        return CLEW_OK;
    case CLEW_VALUE_KVLIST:
        return cp_kvs(c, &dst->u.kvlist.items, src->u.kvlist.items, src->u.kvlist.n, NULL);
    default:
        return CLEW_OK;
    }
}

/* `pre`, when not NULL, is what kvs_size found for these attributes. */
static clew_status cp_kvs(copier *c, clew_kv **dst, const clew_kv *src, uint32_t n,
                          const shared_kv *pre)
{
    *dst = NULL;
    if (n == 0) {
        return CLEW_OK;
    }
    clew_kv *kv = cp_struct(c, (size_t)n * sizeof(*kv));
    if (kv == NULL) {
        return CLEW_ENOMEM;
    }
    *dst = kv;
    for (uint32_t i = 0; i < n; i++) {
        const key_entry *k;
        const char *v;
        if (pre != NULL) {
            k = pre[i].key;
            v = pre[i].val;
        } else {
            kv_shared(c->ms, &src[i], i, &k, &v);
        }
        clew_status rc = CLEW_OK;
        if (k != NULL) {
            kv[i].key = (clew_str){k->s, k->len};
        } else {
            rc = cp_str(c, &kv[i].key, src[i].key);
        }
        if (rc == CLEW_OK && v != NULL) {
            kv[i].value = src[i].value;
            kv[i].value.u.s.ptr = v;
        } else if (rc == CLEW_OK) {
            rc = cp_value(c, &kv[i].value, &src[i].value);
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

static clew_status cp_attrs(copier *c, clew_attrs *dst, const clew_attrs *src, const shared_kv *pre)
{
    dst->n = src->n;
    dst->dropped = src->dropped;
    return cp_kvs(c, &dst->items, src->items, src->n, pre);
}

/* Copies `src` into `dst` (a struct in the block); the name is shared with `op`
 * when the operation index has it, and `pre` is what span_size found for the
 * span's attributes. Resource and scope are left to the caller. */
static clew_status span_copy(copier *c, clew_span_data *dst, const clew_span_data *src,
                             const op_entry *op, const shared_kv *pre)
{
    clew_status rc;
    *dst = *src;
    if (op != NULL) {
        dst->name = (clew_str){op->name, op->len};
    } else if ((rc = cp_str(c, &dst->name, src->name)) != CLEW_OK) {
        return rc;
    }
    if ((rc = cp_str(c, &dst->trace_state, src->trace_state)) != CLEW_OK ||
        (rc = cp_str(c, &dst->status_message, src->status_message)) != CLEW_OK ||
        (rc = cp_attrs(c, &dst->attrs, &src->attrs, pre)) != CLEW_OK) {
        return rc;
    }
    dst->events = NULL;
    dst->links = NULL;
    if (src->n_events) {
        dst->events = cp_struct(c, (size_t)src->n_events * sizeof(clew_event_data));
        if (dst->events == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < src->n_events; i++) {
            dst->events[i] = src->events[i];
            if ((rc = cp_str(c, &dst->events[i].name, src->events[i].name)) != CLEW_OK ||
                (rc = cp_attrs(c, &dst->events[i].attrs, &src->events[i].attrs, NULL)) != CLEW_OK) {
                return rc;
            }
        }
    }
    if (src->n_links) {
        dst->links = cp_struct(c, (size_t)src->n_links * sizeof(clew_link_data));
        if (dst->links == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < src->n_links; i++) {
            dst->links[i] = src->links[i];
            if ((rc = cp_str(c, &dst->links[i].trace_state, src->links[i].trace_state)) !=
                    CLEW_OK ||
                (rc = cp_attrs(c, &dst->links[i].attrs, &src->links[i].attrs, NULL)) != CLEW_OK) {
                return rc;
            }
        }
    }
    return CLEW_OK;
}

/* What append's first pass learned about one span of the batch. */
typedef struct span_plan {
    trace_entry *e;
    const op_entry *op;
    shared_kv *attrs; /* one per attribute of the span */
    size_t size;      /* span_size */
} span_plan;

/* Adds one span to trace `e` unless the trace has it already. */
static clew_status store_span(memory_store *ms, const span_plan *p, const clew_span_data *src,
                              interned *res, interned *scope)
{
    trace_entry *e = p->e;
    clew_status rc;
    /* the span leaves this batch's pending work whatever happens below */
    uint32_t pend_spans = e->pend_spans;
    size_t pend_bytes = e->pend_bytes;
    e->pend_spans = pend_spans > 0 ? pend_spans - 1 : 0;
    e->pend_bytes = pend_bytes > p->size ? pend_bytes - p->size : 0;
    if (entry_lookup_span(e, &src->span_id) >= 0) {
        ms->duplicates++;
        return CLEW_OK;
    }
    if ((rc = entry_grow(e, pend_spans)) != CLEW_OK) {
        return rc;
    }
    if ((size_t)(e->blk_hi - e->blk_lo) < p->size) {
        size_t want = pend_bytes > p->size ? pend_bytes : p->size;
        char *blk = clew__arena_alloc(&e->arena, want);
        if (blk == NULL) {
            return CLEW_ENOMEM;
        }
        e->blk_lo = blk;
        e->blk_hi = blk + want;
    }
    copier c = {ms, e};
    clew_span_data *s = cp_struct(&c, sizeof(*s));
    if (s == NULL) {
        return CLEW_ENOMEM;
    }
    if ((rc = span_copy(&c, s, src, p->op, p->attrs)) != CLEW_OK) {
        return rc;
    }
    if ((rc = entry_ref(&e->res, &e->n_res, &e->cap_res, res)) != CLEW_OK ||
        (rc = entry_ref(&e->scopes, &e->n_scopes, &e->cap_scopes, scope)) != CLEW_OK) {
        return rc;
    }
    s->resource = &res->u.r;
    s->scope = &scope->u.s;
    uint32_t idx = e->n_spans++;
    e->spans[idx] = s;
    slots_put(e->slots, e->n_slots, &s->span_id, idx + 1);
    entry_update_summary(e, idx);
    entry_account(ms, e);
    ms->spans++;
    return CLEW_OK;
}

/* First pass for one span: finds or creates its trace (`last` caches the previous
 * one: spans of a trace usually arrive together), indexes its operation and adds
 * its size to the trace's pending work. */
static clew_status plan_span(memory_store *ms, const clew_span_data *src,
                             const clew_trace_meta *meta, const svc_entry *svc, trace_entry **last,
                             span_plan *p, shared_kv *attrs)
{
    trace_entry *e = *last;
    if (e == NULL || memcmp(e->id.bytes, src->trace_id.bytes, sizeof(e->id.bytes)) != 0) {
        e = entry_find(ms, &src->trace_id);
        if (e == NULL) {
            clew_status rc = entry_create(ms, &src->trace_id, &e);
            if (rc != CLEW_OK) {
                return rc;
            }
            /* meta applies to a trace it creates only: a late span (sent as pending
             * by a receiver that cannot know) must not undo a sampling decision made
             * since with set_trace_meta */
            if (meta != NULL && (rc = entry_set_meta(e, meta)) != CLEW_OK) {
                return rc;
            }
        }
        *last = e;
    }
    p->e = e;
    p->op = index_operation(ms, svc, src->name, src->kind);
    p->attrs = attrs;
    p->size = span_size(ms, src, p->op != NULL, attrs);
    e->pend_bytes += p->size;
    e->pend_spans++;
    return CLEW_OK;
}

/* ---- operations ---- */

/* Append works in two passes over the batch: the first finds every span's trace
 * and sizes what each trace gets, the second copies spans into one block per trace.
 * Between the passes every resource and scope group holds a reference to its
 * interned copy, so a trace removed after a failure cannot free it. */
typedef struct append_state {
    span_plan *plans;
    shared_kv *attrs;  /* for every span's attributes, in batch order */
    interned **res;    /* per resource group */
    interned **scopes; /* per scope group, over all resource groups */
    size_t n_res, n_scopes;
} append_state;

static clew_status plan_batch(memory_store *ms, const clew_batch *b, const clew_trace_meta *meta,
                              append_state *st)
{
    static const clew_resource empty_res;
    static const clew_scope empty_scope;
    trace_entry *last = NULL;
    size_t k = 0, a = 0;
    for (size_t r = 0; r < b->n_rs; r++) {
        const clew_resource_spans *rs = &b->rs[r];
        interned *ir = NULL;
        clew_status rc = intern(ms, rs->resource ? rs->resource : &empty_res, NULL, &ir);
        if (rc != CLEW_OK) {
            return rc;
        }
        ir->refs++;
        st->res[st->n_res++] = ir;
        const svc_entry *svc = index_service(ms, clew__resource_service(&ir->u.r));
        for (size_t g = 0; g < rs->n_scopes; g++) {
            const clew_scope_spans *ss = &rs->scopes[g];
            interned *is = NULL;
            rc = intern(ms, NULL, ss->scope ? ss->scope : &empty_scope, &is);
            if (rc != CLEW_OK) {
                return rc;
            }
            is->refs++;
            st->scopes[st->n_scopes++] = is;
            for (size_t i = 0; i < ss->n_spans; i++) {
                rc = plan_span(ms, &ss->spans[i], meta, svc, &last, &st->plans[k++], &st->attrs[a]);
                if (rc != CLEW_OK) {
                    return rc;
                }
                a += ss->spans[i].attrs.n;
            }
        }
    }
    return CLEW_OK;
}

static clew_status store_batch(memory_store *ms, const clew_batch *b, const append_state *st)
{
    size_t k = 0, g_all = 0;
    for (size_t r = 0; r < b->n_rs; r++) {
        const clew_resource_spans *rs = &b->rs[r];
        for (size_t g = 0; g < rs->n_scopes; g++, g_all++) {
            const clew_scope_spans *ss = &rs->scopes[g];
            for (size_t i = 0; i < ss->n_spans; i++, k++) {
                clew_status rc =
                    store_span(ms, &st->plans[k], &ss->spans[i], st->res[r], st->scopes[g_all]);
                if (rc != CLEW_OK) {
                    return rc;
                }
            }
        }
    }
    return CLEW_OK;
}

static void evict(memory_store *ms)
{
    while (ms->oldest != NULL &&
           (ms->traces.n > ms->max_traces || (ms->max_bytes != 0 && ms->bytes > ms->max_bytes))) {
        entry_remove(ms, ms->oldest);
        ms->evicted++;
    }
}

static clew_status ms_append(clew_store *s, const clew_batch *b, const clew_trace_meta *meta,
                             clew_append_cb cb, void *ud)
{
    memory_store *ms = (memory_store *)s;
    size_t n_scopes = 0, n_spans = 0, n_attrs = 0;
    for (size_t r = 0; r < b->n_rs; r++) {
        n_scopes += b->rs[r].n_scopes;
        for (size_t g = 0; g < b->rs[r].n_scopes; g++) {
            const clew_scope_spans *ss = &b->rs[r].scopes[g];
            n_spans += ss->n_spans;
            for (size_t i = 0; i < ss->n_spans; i++) {
                n_attrs += ss->spans[i].attrs.n;
            }
        }
    }
    append_state st = {0};
    st.plans = clew__calloc(n_spans ? n_spans : 1, sizeof(*st.plans));
    st.res = clew__calloc(b->n_rs ? b->n_rs : 1, sizeof(*st.res));
    st.scopes = clew__calloc(n_scopes ? n_scopes : 1, sizeof(*st.scopes));
    /* not cleared: plan_span writes each span's entries before anything reads them */
    st.attrs = clew__malloc((n_attrs ? n_attrs : 1) * sizeof(*st.attrs));
    clew_status rc = CLEW_OK;
    if (st.plans == NULL || st.res == NULL || st.scopes == NULL || st.attrs == NULL) {
        rc = CLEW_ENOMEM;
    }
    pthread_rwlock_wrlock(&ms->lock);
    trace_entry *before = ms->newest;
    if (rc == CLEW_OK) {
        rc = plan_batch(ms, b, meta, &st);
    }
    if (rc == CLEW_OK) {
        rc = store_batch(ms, b, &st);
    }
    if (rc != CLEW_OK) {
        /* spans stored before the failure stay (a retry is deduplicated); forget the
         * rest of the plan, then drop the traces this call created without spans:
         * they would count against max_traces for nothing */
        for (size_t k = 0; st.plans != NULL && k < n_spans && st.plans[k].e != NULL; k++) {
            st.plans[k].e->pend_bytes = 0;
            st.plans[k].e->pend_spans = 0;
        }
        trace_entry *e = before ? before->newer : ms->oldest;
        while (e != NULL) {
            trace_entry *next = e->newer;
            if (e->n_spans == 0) {
                entry_remove(ms, e);
            }
            e = next;
        }
    }
    for (size_t i = 0; i < st.n_scopes; i++) {
        interned_release(ms, &ms->scopes, st.scopes[i]);
    }
    for (size_t i = 0; i < st.n_res; i++) {
        interned_release(ms, &ms->resources, st.res[i]);
    }
    evict(ms);
    pthread_rwlock_unlock(&ms->lock);
    clew__free(st.plans);
    clew__free(st.res);
    clew__free(st.scopes);
    clew__free(st.attrs);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (ms->observer != NULL) {
        ms->observer(b, ms->observer_ud);
    }
    if (cb != NULL) {
        cb(CLEW_OK, ud);
    }
    return CLEW_OK;
}

static int span_cmp(const void *a, const void *b)
{
    const clew_span_data *x = *(const clew_span_data *const *)a;
    const clew_span_data *y = *(const clew_span_data *const *)b;
    if (x->start_ns != y->start_ns) {
        return x->start_ns < y->start_ns ? -1 : 1;
    }
    return memcmp(x->span_id.bytes, y->span_id.bytes, sizeof(x->span_id.bytes));
}

static bool span_before(const clew_span_data *x, const clew_span_data *y)
{
    if (x->start_ns != y->start_ns) {
        return x->start_ns < y->start_ns;
    }
    return memcmp(x->span_id.bytes, y->span_id.bytes, sizeof(x->span_id.bytes)) < 0;
}

/* Orders spans as span_cmp does: by insertion for the usual small trace (no call through a
 * comparison function per step; the cut orders every trace of the head), qsort beyond. */
static void sort_spans(const clew_span_data **v, size_t n)
{
    if (n > 32) {
        qsort(v, n, sizeof(*v), span_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        const clew_span_data *x = v[i];
        size_t j = i;
        while (j > 0 && span_before(x, v[j - 1])) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static clew_status copy_str(clew_str *dst, const char *p, size_t len, clew_arena *a)
{
    if (len == 0) {
        *dst = (clew_str){"", 0};
        return CLEW_OK;
    }
    *dst = clew__arena_strdup(a, p, len);
    return dst->ptr ? CLEW_OK : CLEW_ENOMEM;
}

static clew_status copy_trace(const trace_entry *e, clew_trace_result *t)
{
    clew_arena *a = &t->arena;
    clew_status rc;
    t->trace_id = e->id;
    t->meta.state = e->state;
    t->meta.adjusted_count = e->adjusted_count;
    if ((rc = copy_str(&t->meta.kept_reason, e->kept_reason, e->kept_reason_len, a)) != CLEW_OK ||
        (rc = copy_str(&t->meta.tenant, e->tenant, e->tenant_len, a)) != CLEW_OK) {
        return rc;
    }
    /* the interned copies may be freed once the lock is released: clone them too */
    clew_resource *res = clew__arena_calloc(a, e->n_res ? e->n_res : 1, sizeof(*res));
    clew_scope *sc = clew__arena_calloc(a, e->n_scopes ? e->n_scopes : 1, sizeof(*sc));
    clew_span_data *spans = clew__arena_calloc(a, e->n_spans, sizeof(*spans));
    const clew_span_data **ptrs = clew__arena_calloc(a, e->n_spans, sizeof(*ptrs));
    if (res == NULL || sc == NULL || spans == NULL || ptrs == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < e->n_res; i++) {
        if ((rc = clew__resource_clone(&res[i], &e->res[i]->u.r, a)) != CLEW_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < e->n_scopes; i++) {
        if ((rc = clew__scope_clone(&sc[i], &e->scopes[i]->u.s, a)) != CLEW_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < e->n_spans; i++) {
        const clew_span_data *src = e->spans[i];
        if ((rc = clew__span_clone(&spans[i], src, a)) != CLEW_OK) {
            return rc;
        }
        for (uint32_t j = 0; j < e->n_res; j++) {
            if (src->resource == &e->res[j]->u.r) {
                spans[i].resource = &res[j];
                break;
            }
        }
        for (uint32_t j = 0; j < e->n_scopes; j++) {
            if (src->scope == &e->scopes[j]->u.s) {
                spans[i].scope = &sc[j];
                break;
            }
        }
        ptrs[i] = &spans[i];
    }
    sort_spans(ptrs, e->n_spans);
    t->spans = ptrs;
    t->n_spans = e->n_spans;
    return CLEW_OK;
}

static clew_status ms_get_trace(clew_store *s, const clew_trace_id *id, clew_trace_result **out)
{
    memory_store *ms = (memory_store *)s;
    clew_trace_result *t = clew__calloc(1, sizeof(*t));
    if (t == NULL) {
        return CLEW_ENOMEM;
    }
    clew__arena_init(&t->arena, RESULT_CHUNK, 0);
    pthread_rwlock_rdlock(&ms->lock);
    const trace_entry *e = entry_find(ms, id);
    clew_status rc = e == NULL || e->n_spans == 0 ? CLEW_ENOTFOUND : copy_trace(e, t);
    pthread_rwlock_unlock(&ms->lock);
    if (rc != CLEW_OK) {
        clew__trace_result_free(t);
        return rc;
    }
    *out = t;
    return CLEW_OK;
}

/* ---- search ---- */

static bool attrs_match(const clew_attrs *a, const clew_tag_filter *f)
{
    for (uint32_t i = 0; i < a->n; i++) {
        if (str_eq2(a->items[i].key, f->key) &&
            clew__value_matches_text(&a->items[i].value, f->value)) {
            return true;
        }
    }
    return false;
}

static bool key_is(const clew_tag_filter *f, const char *lit)
{
    return str_eq(f->key, lit, strlen(lit));
}

static bool value_is(const clew_tag_filter *f, const char *lit)
{
    return str_eq(f->value, lit, strlen(lit));
}

/* The tags the Jaeger v1 API derives from span fields (query/jaeger_json.c shows
 * them), so that a search for what the UI displays finds it. */
static bool derived_tag_match(const clew_span_data *s, const clew_tag_filter *f)
{
    if (key_is(f, "error")) {
        return s->status_code == CLEW_STATUS_ERROR && value_is(f, "true");
    }
    if (key_is(f, "span.kind")) {
        return s->kind >= CLEW_KIND_SERVER && s->kind <= CLEW_KIND_CONSUMER &&
               value_is(f, clew__kind_name(s->kind));
    }
    if (key_is(f, "otel.status_code")) {
        return (s->status_code == CLEW_STATUS_OK && value_is(f, "OK")) ||
               (s->status_code == CLEW_STATUS_ERROR && value_is(f, "ERROR"));
    }
    if (key_is(f, "otel.status_description")) {
        return s->status_message.len > 0 && str_eq2(s->status_message, f->value);
    }
    if (key_is(f, "otel.scope.name")) {
        return s->scope != NULL && s->scope->name.len > 0 && str_eq2(s->scope->name, f->value);
    }
    if (key_is(f, "otel.scope.version")) {
        return s->scope != NULL && s->scope->version.len > 0 &&
               str_eq2(s->scope->version, f->value);
    }
    if (key_is(f, "w3c.tracestate")) {
        return s->trace_state.len > 0 && str_eq2(s->trace_state, f->value);
    }
    return false;
}

static bool span_matches(const clew_span_data *s, const clew_search_query *q)
{
    if (q->service.len > 0 && !str_eq2(clew__resource_service(s->resource), q->service)) {
        return false;
    }
    if (q->operation.len > 0 && !str_eq2(s->name, q->operation)) {
        return false;
    }
    for (size_t i = 0; i < q->n_tags; i++) {
        const clew_tag_filter *f = &q->tags[i];
        if (!attrs_match(&s->attrs, f) && !attrs_match(&s->resource->attrs, f) &&
            !derived_tag_match(s, f)) {
            return false;
        }
    }
    return true;
}

static bool trace_matches(const trace_entry *e, const clew_search_query *q)
{
    uint64_t dur = e->end_ns - e->start_ns;
    if (e->n_spans == 0 || (q->start_min_ns && e->start_ns < q->start_min_ns) ||
        (q->start_max_ns && e->start_ns > q->start_max_ns) ||
        (q->min_duration_ns && dur < q->min_duration_ns) ||
        (q->max_duration_ns && dur > q->max_duration_ns) || (q->errors_only && e->errors == 0)) {
        return false;
    }
    if (q->service.len > 0) {
        /* cheap rejection before visiting spans: does any resource carry the service? */
        bool any = false;
        for (uint32_t i = 0; i < e->n_res && !any; i++) {
            any = str_eq2(clew__resource_service(&e->res[i]->u.r), q->service);
        }
        if (!any) {
            return false;
        }
    }
    if (q->service.len == 0 && q->operation.len == 0 && q->n_tags == 0) {
        return true;
    }
    for (uint32_t i = 0; i < e->n_spans; i++) {
        if (span_matches(e->spans[i], q)) {
            return true;
        }
    }
    return false;
}

static clew_status summarize(const trace_entry *e, clew_trace_summary *out, clew_arena *a)
{
    const clew_span_data *root = e->spans[e->root];
    clew_str svc = clew__resource_service(root->resource);
    out->trace_id = e->id;
    out->start_ns = e->start_ns;
    out->duration_ns = e->end_ns - e->start_ns;
    out->span_count = e->n_spans;
    out->error_count = e->errors;
    out->state = e->state;
    clew_status rc = copy_str(&out->root_service, svc.ptr, svc.len, a);
    if (rc == CLEW_OK) {
        rc = copy_str(&out->root_operation, root->name.ptr, root->name.len, a);
    }
    return rc;
}

static clew_status ms_search(clew_store *s, const clew_search_query *q, clew_search_result **out)
{
    memory_store *ms = (memory_store *)s;
    size_t limit = q->limit ? q->limit : DEFAULT_LIMIT;
    if (q->n_tags > CLEW_SEARCH_MAX_TAGS) {
        return CLEW_EINVAL;
    }
    clew_search_result *r = clew__calloc(1, sizeof(*r));
    if (r == NULL) {
        return CLEW_ENOMEM;
    }
    clew__arena_init(&r->arena, RESULT_CHUNK, 0);
    clew_status rc = CLEW_OK;
    pthread_rwlock_rdlock(&ms->lock);
    size_t cap = limit < ms->traces.n ? limit : ms->traces.n;
    r->traces = clew__arena_calloc(&r->arena, cap ? cap : 1, sizeof(*r->traces));
    if (r->traces == NULL) {
        rc = CLEW_ENOMEM;
    }
    for (const trace_entry *e = ms->newest; rc == CLEW_OK && e != NULL && r->n_traces < cap;
         e = e->older) {
        if (trace_matches(e, q)) {
            rc = summarize(e, &r->traces[r->n_traces], &r->arena);
            r->n_traces++;
        }
    }
    pthread_rwlock_unlock(&ms->lock);
    if (rc != CLEW_OK) {
        clew__search_result_free(r);
        return rc;
    }
    *out = r;
    return CLEW_OK;
}

/* ---- name lists ---- */

typedef struct name_item {
    const char *name;
    size_t len;
    clew_span_kind kind;
} name_item;

static int name_item_cmp(const void *a, const void *b)
{
    const name_item *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->name, y->name, n) : 0;
    if (c != 0) {
        return c;
    }
    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return (int)x->kind - (int)y->kind;
}

/* Sorts, removes duplicates and copies `items` into a fresh list. */
static clew_status make_list(name_item *items, size_t n, bool with_kinds, clew_name_list **out)
{
    clew_name_list *l = clew__calloc(1, sizeof(*l));
    if (l == NULL) {
        return CLEW_ENOMEM;
    }
    clew__arena_init(&l->arena, RESULT_CHUNK, 0);
    if (n > 0) {
        qsort(items, n, sizeof(*items), name_item_cmp);
    }
    l->names = clew__arena_calloc(&l->arena, n ? n : 1, sizeof(*l->names));
    l->kinds = with_kinds ? clew__arena_calloc(&l->arena, n ? n : 1, sizeof(*l->kinds)) : NULL;
    if (l->names == NULL || (with_kinds && l->kinds == NULL)) {
        clew__name_list_free(l);
        return CLEW_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && name_item_cmp(&items[i - 1], &items[i]) == 0) {
            continue;
        }
        if (copy_str(&l->names[l->n], items[i].name, items[i].len, &l->arena) != CLEW_OK) {
            clew__name_list_free(l);
            return CLEW_ENOMEM;
        }
        if (with_kinds) {
            l->kinds[l->n] = items[i].kind;
        }
        l->n++;
    }
    *out = l;
    return CLEW_OK;
}

static clew_status ms_services(clew_store *s, clew_name_list **out)
{
    memory_store *ms = (memory_store *)s;
    pthread_rwlock_rdlock(&ms->lock);
    size_t n = 0;
    name_item *items = clew__calloc(ms->services.n ? ms->services.n : 1, sizeof(*items));
    clew_status rc = CLEW_ENOMEM;
    if (items != NULL) {
        for (size_t i = 0; i < ms->services.nb; i++) {
            for (hnode *h = ms->services.b[i]; h != NULL; h = h->next) {
                const svc_entry *e = (const svc_entry *)h;
                items[n++] = (name_item){e->name, e->len, CLEW_KIND_UNSPECIFIED};
            }
        }
        rc = make_list(items, n, false, out);
    }
    pthread_rwlock_unlock(&ms->lock);
    clew__free(items);
    return rc;
}

static clew_status ms_operations(clew_store *s, clew_str service, clew_span_kind kind,
                                 clew_name_list **out)
{
    memory_store *ms = (memory_store *)s;
    pthread_rwlock_rdlock(&ms->lock);
    size_t n = 0;
    name_item *items = clew__calloc(ms->ops.n ? ms->ops.n : 1, sizeof(*items));
    clew_status rc = CLEW_ENOMEM;
    if (items != NULL) {
        for (size_t i = 0; i < ms->ops.nb; i++) {
            for (hnode *h = ms->ops.b[i]; h != NULL; h = h->next) {
                const op_entry *e = (const op_entry *)h;
                if ((service.len > 0 && !str_eq(service, e->svc->name, e->svc->len)) ||
                    (kind != CLEW_KIND_UNSPECIFIED && e->kind != kind)) {
                    continue;
                }
                items[n++] = (name_item){e->name, e->len, e->kind};
            }
        }
        rc = make_list(items, n, true, out);
    }
    pthread_rwlock_unlock(&ms->lock);
    clew__free(items);
    return rc;
}

static clew_status ms_set_trace_meta(clew_store *s, const clew_trace_id *id,
                                     const clew_trace_meta *meta)
{
    memory_store *ms = (memory_store *)s;
    pthread_rwlock_wrlock(&ms->lock);
    trace_entry *e = entry_find(ms, id);
    clew_status rc = CLEW_ENOTFOUND;
    if (e != NULL && meta->state == CLEW_TRACE_DROPPED) {
        /* a dropped trace is never served again: free it now rather than at eviction */
        entry_remove(ms, e);
        rc = CLEW_OK;
    } else if (e != NULL) {
        rc = entry_set_meta(e, meta);
        entry_account(ms, e);
    }
    pthread_rwlock_unlock(&ms->lock);
    return rc;
}

static void ms_set_observer(clew_store *s, clew_store_observer fn, void *ud)
{
    memory_store *ms = (memory_store *)s;
    ms->observer = fn;
    ms->observer_ud = ud;
}

static clew_status ms_pending_traces(clew_store *s, clew_trace_id **out, size_t *out_n)
{
    memory_store *ms = (memory_store *)s;
    pthread_rwlock_rdlock(&ms->lock);
    size_t n = 0;
    for (trace_entry *e = ms->oldest; e != NULL; e = e->newer) {
        n += e->state == CLEW_TRACE_PENDING;
    }
    clew_trace_id *ids = clew__calloc(n > 0 ? n : 1, sizeof(*ids));
    if (ids == NULL) {
        pthread_rwlock_unlock(&ms->lock);
        return CLEW_ENOMEM;
    }
    size_t i = 0;
    for (trace_entry *e = ms->oldest; e != NULL && i < n; e = e->newer) {
        if (e->state == CLEW_TRACE_PENDING) {
            ids[i++] = e->id;
        }
    }
    pthread_rwlock_unlock(&ms->lock);
    *out = ids;
    *out_n = i;
    return CLEW_OK;
}

static void ms_stats(clew_store *s, clew_store_stats *out)
{
    memory_store *ms = (memory_store *)s;
    pthread_rwlock_rdlock(&ms->lock);
    out->spans = ms->spans;
    out->traces = ms->traces.n;
    out->bytes = ms->bytes;
    out->evicted_traces = ms->evicted;
    out->duplicate_spans = ms->duplicates;
    pthread_rwlock_unlock(&ms->lock);
}

static void free_table_nodes(htable *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        hnode *n = t->b[i];
        while (n != NULL) {
            hnode *next = n->next;
            clew__free(n);
            n = next;
        }
    }
    clew__free(t->b);
    t->b = NULL;
    t->nb = t->n = 0;
}

static void ms_destroy(clew_store *s)
{
    memory_store *ms = (memory_store *)s;
    while (ms->oldest != NULL) {
        entry_remove(ms, ms->oldest);
    }
    /* every interned object went with its last trace; these tables are empty now */
    free_table_nodes(&ms->resources);
    free_table_nodes(&ms->scopes);
    free_table_nodes(&ms->traces);
    free_table_nodes(&ms->services);
    free_table_nodes(&ms->ops);
    free_table_nodes(&ms->keys);
    clew__arena_deinit(&ms->shared);
    pthread_rwlock_destroy(&ms->lock);
    clew__free(ms);
}

static const clew_store_ops memory_ops = {
    .name = "memory",
    .destroy = ms_destroy,
    .append = ms_append,
    .get_trace = ms_get_trace,
    .search = ms_search,
    .services = ms_services,
    .operations = ms_operations,
    .set_trace_meta = ms_set_trace_meta,
    .set_observer = ms_set_observer,
    .pending_traces = ms_pending_traces,
    .stats = ms_stats,
};

clew_status clew__memory_store_create(const clew_memory_store_config *cfg, clew_store **out)
{
    memory_store *ms = clew__calloc(1, sizeof(*ms));
    if (ms == NULL) {
        return CLEW_ENOMEM;
    }
    if (pthread_rwlock_init(&ms->lock, NULL) != 0) {
        clew__free(ms);
        return CLEW_ENOMEM;
    }
    ms->base.ops = &memory_ops;
    clew__arena_init(&ms->shared, 16384, MAX_SHARED_VALUES);
    ms->max_traces = cfg && cfg->max_traces ? cfg->max_traces : DEFAULT_MAX_TRACES;
    ms->max_bytes = cfg ? cfg->max_bytes : 0;
    *out = &ms->base;
    return CLEW_OK;
}

/* ---- for the embedded store's head cut (store.h) ---- */

clew_status clew__memory_store_list_traces(clew_store *s, clew_memory_trace_ref **out,
                                           size_t *out_n)
{
    memory_store *ms = (memory_store *)s;
    pthread_rwlock_rdlock(&ms->lock);
    size_t n = ms->traces.n;
    clew_memory_trace_ref *refs = clew__calloc(n > 0 ? n : 1, sizeof(*refs));
    if (refs == NULL) {
        pthread_rwlock_unlock(&ms->lock);
        return CLEW_ENOMEM;
    }
    size_t i = 0;
    for (trace_entry *e = ms->oldest; e != NULL && i < n; e = e->newer) {
        refs[i].id = e->id;
        refs[i].state = e->state;
        refs[i].n_spans = e->n_spans;
        refs[i].bytes = e->bytes;
        i++;
    }
    pthread_rwlock_unlock(&ms->lock);
    *out = refs;
    *out_n = i;
    return CLEW_OK;
}

clew_status clew__memory_store_pin_trace(clew_store *s, const clew_trace_id *id,
                                         clew_trace_result **out, clew_memory_pin **pin)
{
    memory_store *ms = (memory_store *)s;
    clew_trace_result *t = clew__calloc(1, sizeof(*t));
    if (t == NULL) {
        return CLEW_ENOMEM;
    }
    clew__arena_init(&t->arena, 1024, 0);
    /* the write lock: the pin count changes */
    pthread_rwlock_wrlock(&ms->lock);
    trace_entry *e = entry_find(ms, id);
    clew_status rc = e == NULL || e->n_spans == 0 ? CLEW_ENOTFOUND : CLEW_OK;
    const clew_span_data **ptrs = NULL;
    if (rc == CLEW_OK) {
        t->trace_id = e->id;
        t->meta.state = e->state;
        t->meta.adjusted_count = e->adjusted_count;
        ptrs = clew__arena_alloc(&t->arena, (size_t)e->n_spans * sizeof(*ptrs));
        rc = ptrs != NULL ? CLEW_OK : CLEW_ENOMEM;
    }
    /* the meta's strings may be replaced by set_trace_meta: copied */
    if (rc == CLEW_OK &&
        ((rc = copy_str(&t->meta.kept_reason, e->kept_reason, e->kept_reason_len, &t->arena)) !=
             CLEW_OK ||
         (rc = copy_str(&t->meta.tenant, e->tenant, e->tenant_len, &t->arena)) != CLEW_OK)) {
        ptrs = NULL;
    }
    if (rc == CLEW_OK) {
        /* a stored span is never written again, and its resource, scope and the store-wide
         * strings it points at live as long as the entry: the pointers are the view */
        memcpy(ptrs, e->spans, (size_t)e->n_spans * sizeof(*ptrs));
        t->spans = ptrs;
        t->n_spans = e->n_spans;
        e->pins++;
    }
    pthread_rwlock_unlock(&ms->lock);
    if (rc != CLEW_OK) {
        clew__trace_result_free(t);
        return rc;
    }
    sort_spans(ptrs, t->n_spans);
    *out = t;
    *pin = (clew_memory_pin *)e;
    return CLEW_OK;
}

void clew__memory_store_unpin(clew_store *s, clew_memory_pin *pin)
{
    memory_store *ms = (memory_store *)s;
    trace_entry *e = (trace_entry *)pin;
    if (e == NULL) {
        return;
    }
    pthread_rwlock_wrlock(&ms->lock);
    if (--e->pins == 0 && e->unlinked) {
        entry_free(ms, e);
    }
    pthread_rwlock_unlock(&ms->lock);
}

clew_status clew__memory_store_remove_trace(clew_store *s, const clew_trace_id *id,
                                            uint32_t expected_spans)
{
    memory_store *ms = (memory_store *)s;
    clew_status rc = CLEW_OK;
    pthread_rwlock_wrlock(&ms->lock);
    trace_entry *e = entry_find(ms, id);
    if (e == NULL) {
        rc = CLEW_ENOTFOUND;
    } else if (e->n_spans != expected_spans) {
        /* spans arrived since the caller copied the trace: they would be lost */
        rc = CLEW_EBUSY;
    } else {
        entry_remove(ms, e);
    }
    pthread_rwlock_unlock(&ms->lock);
    return rc;
}
