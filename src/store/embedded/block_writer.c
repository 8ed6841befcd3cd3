/*
 * src/store/embedded/block_writer.c - writes a set of complete traces as one immutable block.
 *
 * Two passes over the input. The first interns every attribute key, service, resource and
 * scope, so the key and service dictionaries can be sorted (the reader binary-searches them)
 * before any span refers to them by id. The second encodes each trace as a columnar record
 * into pages (traces in start-time order, so a newest-first search walks pages backwards),
 * compresses each full page with zstd and writes it at once, while collecting summaries,
 * operations and search terms. The metadata sections and the footer follow the pages.
 */
#include "store/embedded/block.h"

#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "store/embedded/block_format.h"

#define DEFAULT_PAGE_SIZE   (256u * 1024u)
#define DEFAULT_ZSTD_LEVEL  6
#define DEFAULT_MAX_VALUE   256u
#define DEFAULT_MAX_PER_KEY 50000u

/* ---- an interning table: content -> dense id, first seen first ---- */

typedef enum itab_kind { ITAB_STR, ITAB_RESOURCE, ITAB_SCOPE } itab_kind;

typedef struct itab {
    itab_kind kind;
    uint32_t *slots; /* id + 1; 0 = empty */
    size_t n_slots;  /* power of two, at least twice n */
    uint64_t *hashes;
    clew_str *strs;    /* ITAB_STR */
    const void **objs; /* ITAB_RESOURCE / ITAB_SCOPE */
    uint32_t n, cap;
} itab;

static void itab_deinit(itab *t)
{
    clew__free(t->slots);
    clew__free(t->hashes);
    clew__free(t->strs);
    clew__free(t->objs);
    memset(t, 0, sizeof(*t));
}

/* Forgets every entry, keeping the memory. */
static void itab_clear(itab *t)
{
    if (t->slots != NULL) {
        memset(t->slots, 0, t->n_slots * sizeof(*t->slots));
    }
    t->n = 0;
}

static bool itab_eq(const itab *t, uint32_t id, const void *obj)
{
    switch (t->kind) {
    case ITAB_STR: {
        const clew_str *s = obj;
        return t->strs[id].len == s->len &&
               (s->len == 0 || memcmp(t->strs[id].ptr, s->ptr, s->len) == 0);
    }
    case ITAB_RESOURCE:
        return clew__resource_equal(t->objs[id], obj);
    case ITAB_SCOPE:
        return clew__scope_equal(t->objs[id], obj);
    }
    return false;
}

static clew_status itab_grow(itab *t)
{
    if (t->n + 1 > t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        uint64_t *h = clew__realloc(t->hashes, cap * sizeof(*h));
        if (h == NULL) {
            return CLEW_ENOMEM;
        }
        t->hashes = h;
        if (t->kind == ITAB_STR) {
            clew_str *s = clew__realloc(t->strs, cap * sizeof(*s));
            if (s == NULL) {
                return CLEW_ENOMEM;
            }
            t->strs = s;
        } else {
            const void **o = clew__realloc(t->objs, cap * sizeof(*o));
            if (o == NULL) {
                return CLEW_ENOMEM;
            }
            t->objs = o;
        }
        t->cap = cap;
    }
    if ((size_t)(t->n + 1) * 2 > t->n_slots) {
        size_t ns = t->n_slots ? t->n_slots * 2 : 128;
        uint32_t *slots = clew__calloc(ns, sizeof(*slots));
        if (slots == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t id = 0; id < t->n; id++) {
            size_t i = t->hashes[id] & (ns - 1);
            while (slots[i] != 0) {
                i = (i + 1) & (ns - 1);
            }
            slots[i] = id + 1;
        }
        clew__free(t->slots);
        t->slots = slots;
        t->n_slots = ns;
    }
    return CLEW_OK;
}

/* Looks a string up without interning it: its id, or false. */
static bool itab_find_str(const itab *t, clew_str s, uint32_t *out_id)
{
    if (t->n_slots == 0) {
        return false;
    }
    uint64_t h = XXH3_64bits(s.ptr != NULL ? s.ptr : "", s.len);
    size_t i = h & (t->n_slots - 1);
    while (t->slots[i] != 0) {
        uint32_t id = t->slots[i] - 1;
        if (t->hashes[id] == h && itab_eq(t, id, &s)) {
            *out_id = id;
            return true;
        }
        i = (i + 1) & (t->n_slots - 1);
    }
    return false;
}

/* Interns `obj` (a clew_str *, clew_resource * or clew_scope *; borrowed for the writer's
 * lifetime) and writes its id. */
static clew_status itab_put(itab *t, const void *obj, uint32_t *out_id, bool *out_new)
{
    uint64_t h;
    if (t->kind == ITAB_STR) {
        const clew_str *s = obj;
        h = XXH3_64bits(s->ptr != NULL ? s->ptr : "", s->len);
    } else if (t->kind == ITAB_RESOURCE) {
        h = clew__resource_hash(obj);
    } else {
        h = clew__scope_hash(obj);
    }
    if (t->n_slots > 0) {
        size_t i = h & (t->n_slots - 1);
        while (t->slots[i] != 0) {
            uint32_t id = t->slots[i] - 1;
            if (t->hashes[id] == h && itab_eq(t, id, obj)) {
                *out_id = id;
                if (out_new != NULL) {
                    *out_new = false;
                }
                return CLEW_OK;
            }
            i = (i + 1) & (t->n_slots - 1);
        }
    }
    clew_status rc = itab_grow(t);
    if (rc != CLEW_OK) {
        return rc;
    }
    uint32_t id = t->n++;
    t->hashes[id] = h;
    if (t->kind == ITAB_STR) {
        t->strs[id] = *(const clew_str *)obj;
    } else {
        t->objs[id] = obj;
    }
    size_t i = h & (t->n_slots - 1);
    while (t->slots[i] != 0) {
        i = (i + 1) & (t->n_slots - 1);
    }
    t->slots[i] = id + 1;
    *out_id = id;
    if (out_new != NULL) {
        *out_new = true;
    }
    return CLEW_OK;
}

/* ---- counted strings: an itab with an occurrence count and a dictionary index ---- */

typedef struct ctab {
    itab t;
    uint32_t *count; /* by itab id */
    uint32_t *index; /* dictionary index + 1, 0 = not in the dictionary; by itab id */
    uint32_t *ntr;   /* distinct traces it occurs in */
    uint32_t *last;  /* the last trace (ordinal + 1) it occurred in */
    size_t cap;
} ctab;

static void ctab_deinit(ctab *c)
{
    itab_deinit(&c->t);
    clew__free(c->count);
    clew__free(c->index);
    clew__free(c->ntr);
    clew__free(c->last);
    c->count = NULL;
    c->index = NULL;
    c->ntr = NULL;
    c->last = NULL;
    c->cap = 0;
}

static clew_status ctab_add(ctab *c, clew_str str, uint32_t ord)
{
    uint32_t id;
    bool is_new;
    clew_status rc = itab_put(&c->t, &str, &id, &is_new);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (id >= c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        uint32_t *n = clew__realloc(c->count, cap * sizeof(*n));
        if (n == NULL) {
            return CLEW_ENOMEM;
        }
        c->count = n;
        uint32_t *x = clew__realloc(c->index, cap * sizeof(*x));
        if (x == NULL) {
            return CLEW_ENOMEM;
        }
        c->index = x;
        uint32_t *t = clew__realloc(c->ntr, cap * sizeof(*t));
        if (t == NULL) {
            return CLEW_ENOMEM;
        }
        c->ntr = t;
        uint32_t *l = clew__realloc(c->last, cap * sizeof(*l));
        if (l == NULL) {
            return CLEW_ENOMEM;
        }
        c->last = l;
        c->cap = cap;
    }
    if (is_new) {
        c->count[id] = 0;
        c->index[id] = 0;
        c->ntr[id] = 0;
        c->last[id] = 0;
    }
    c->count[id]++;
    if (c->last[id] != ord + 1) {
        c->last[id] = ord + 1;
        c->ntr[id]++;
    }
    return CLEW_OK;
}

static uint32_t ctab_count(const ctab *c, clew_str s)
{
    uint32_t id;
    return itab_find_str(&c->t, s, &id) ? c->count[id] : 0;
}

static uint32_t ctab_index(const ctab *c, clew_str s)
{
    uint32_t id;
    return itab_find_str(&c->t, s, &id) ? c->index[id] : 0;
}

/* Gives an index to every string seen at least `min` times (in `min` distinct traces when
 * by_traces); returns how many got one. */
static uint32_t ctab_assign(ctab *c, uint32_t min, bool by_traces)
{
    uint32_t n = 0;
    for (uint32_t id = 0; id < c->t.n; id++) {
        c->index[id] = (by_traces ? c->ntr[id] : c->count[id]) >= min ? ++n : 0;
    }
    return n;
}

/* A direct-mapped cache from resource/scope pointer to id: spans share their resource and
 * scope pointers, so most lookups skip hashing the attributes. */
#define PCACHE_SIZE 256

typedef struct pcache {
    const void *ptr[PCACHE_SIZE];
    uint32_t id[PCACHE_SIZE];
} pcache;

static clew_status itab_put_cached(itab *t, pcache *c, const void *obj, uint32_t *out_id,
                                   bool *out_new)
{
    size_t slot = ((uintptr_t)obj >> 4) & (PCACHE_SIZE - 1);
    if (c->ptr[slot] == obj) {
        *out_id = c->id[slot];
        if (out_new != NULL) {
            *out_new = false;
        }
        return CLEW_OK;
    }
    clew_status rc = itab_put(t, obj, out_id, out_new);
    if (rc == CLEW_OK) {
        c->ptr[slot] = obj;
        c->id[slot] = *out_id;
    }
    return rc;
}

/* ---- writer state ---- */

typedef struct term_pair {
    uint64_t hash;
    uint32_t ord;
    uint32_t key; /* key id (sorted) for attribute terms, UINT32_MAX otherwise */
} term_pair;

typedef struct op_triple {
    uint32_t service; /* service index (sorted) */
    uint32_t name;    /* string id */
    uint32_t kind;
} op_triple;

typedef struct summary {
    uint64_t start, duration;
    uint32_t root_service, root_op, span_count, error_count;
    uint8_t state;
    uint32_t kept_reason, tenant;
    double adjusted;
    uint32_t page, offset;
    uint32_t svc_first, svc_n; /* into w->trace_svcs */
} summary;

typedef struct span_ref {
    const clew_span_data *sp;
    uint32_t idx;
} span_ref;

typedef struct writer {
    clew_fileio *io;
    int fd;
    bool fd_open;
    clew_error *err;
    size_t page_size;
    int level;
    size_t max_value;
    size_t max_per_key;

    itab strings;  /* every string the sections refer to by id */
    itab keys;     /* attribute keys (first-seen ids, remapped to sorted) */
    itab services; /* service names */
    itab resources, scopes;
    pcache res_cache, scope_cache;
    uint32_t *key_remap; /* first-seen id -> sorted id */
    uint32_t *key_order; /* sorted id -> first-seen id */
    uint8_t *key_flags;  /* by sorted id */
    uint32_t *svc_remap, *svc_order;
    uint32_t *res_service; /* resource id -> sorted service index */

    const clew_block_trace *traces;
    size_t n_traces;
    uint32_t *by_id;  /* ordinal -> input index (trace id order) */
    uint32_t *ord_of; /* input index -> ordinal */
    summary *sums;    /* by ordinal */
    uint32_t *trace_svcs;
    size_t n_trace_svcs, cap_trace_svcs;

    term_pair *terms;
    size_t n_terms, cap_terms;
    op_triple *ops;
    size_t n_ops, cap_ops;

    /* the page being filled: its traces (ordinals) wait here until the page is cut, so
     * that its dictionary can hold exactly the strings that repeat inside it */
    uint32_t *pend;
    size_t n_pend, cap_pend;
    size_t page_est; /* rough raw size of the pending traces */
    ctab pc;         /* string values of the pending traces not in gc's dictionary */
    ctab gc;         /* string values of the whole block: the VALUES dictionary */
    uint32_t n_values;
    clew_arena garena;       /* skeleton strings counted in gc */
    clew_arena parena;       /* skeleton strings of the page being filled */
    span_ref *refs, *by_sid; /* scratch, max spans per trace */
    struct attr_ref *aref;   /* scratch, attributes of a trace */
    struct vform *forms;
    size_t cap_aref;
    clew_buf page;  /* the page being filled (raw) */
    clew_buf pages; /* page table */
    uint32_t n_pages;
    uint64_t off; /* next write offset in the file */
    uint64_t n_spans, min_start, max_end;
    void *zbuf;
    size_t zcap;
    ZSTD_CCtx *zctx;

    uint8_t sec_table[BLK_N_SECTIONS * BLK_SECTION_ENTRY];
} writer;

static clew_status fail(writer *w, clew_status rc, const char *what)
{
    clew__error_set(w->err, 0, "block write: %s: %s", what, clew_strerror(rc));
    return rc;
}

static int str_cmp(clew_str a, clew_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

/* ---- pass 1: interning ---- */

static clew_status intern_attr_keys(writer *w, const clew_attrs *a)
{
    for (uint32_t i = 0; i < a->n; i++) {
        uint32_t id;
        clew_status rc = itab_put(&w->keys, &a->items[i].key, &id, NULL);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

static clew_status pass1_span(writer *w, const clew_span_data *sp)
{
    uint32_t id;
    bool is_new;
    clew_status rc = itab_put_cached(&w->resources, &w->res_cache, sp->resource, &id, &is_new);
    if (rc == CLEW_OK && is_new) {
        clew_str svc = clew__resource_service(sp->resource);
        uint32_t sid;
        rc = itab_put(&w->services, &svc, &sid, NULL);
    }
    if (rc == CLEW_OK && is_new) {
        rc = intern_attr_keys(w, &sp->resource->attrs);
    }
    if (rc == CLEW_OK) {
        rc = itab_put_cached(&w->scopes, &w->scope_cache, sp->scope, &id, &is_new);
    }
    if (rc == CLEW_OK && is_new) {
        rc = intern_attr_keys(w, &sp->scope->attrs);
    }
    if (rc == CLEW_OK) {
        rc = intern_attr_keys(w, &sp->attrs);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < sp->n_events; i++) {
        rc = intern_attr_keys(w, &sp->events[i].attrs);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < sp->n_links; i++) {
        rc = intern_attr_keys(w, &sp->links[i].attrs);
    }
    return rc;
}

typedef struct str_idx {
    clew_str s;
    uint32_t id;
} str_idx;

static int str_idx_cmp(const void *a, const void *b)
{
    const str_idx *x = a, *y = b;
    return str_cmp(x->s, y->s);
}

/* Sorted order of a string table: order[sorted] = first-seen id, remap[first-seen] = sorted. */
static clew_status sort_table(itab *t, uint32_t **order, uint32_t **remap)
{
    size_t n = t->n ? t->n : 1;
    *order = clew__calloc(n, sizeof(uint32_t));
    *remap = clew__calloc(n, sizeof(uint32_t));
    str_idx *tmp = clew__calloc(n, sizeof(*tmp));
    if (*order == NULL || *remap == NULL || tmp == NULL) {
        clew__free(tmp);
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        tmp[i].s = t->strs[i];
        tmp[i].id = i;
    }
    qsort(tmp, t->n, sizeof(*tmp), str_idx_cmp);
    for (uint32_t i = 0; i < t->n; i++) {
        (*order)[i] = tmp[i].id;
        (*remap)[tmp[i].id] = i;
    }
    clew__free(tmp);
    return CLEW_OK;
}

/* ---- pass 2: spans into pages ---- */

static clew_status key_sorted(void *ud, clew_str key, uint32_t *out)
{
    writer *w = ud;
    uint32_t id;
    clew_status rc = itab_put(&w->keys, &key, &id, NULL);
    if (rc == CLEW_OK) {
        *out = w->key_remap[id];
    }
    return rc;
}

static clew_status str_id(writer *w, clew_str s, uint32_t *out)
{
    return itab_put(&w->strings, &s, out, NULL);
}

static clew_status add_term(writer *w, uint64_t hash, uint32_t ord, uint32_t key)
{
    if (w->n_terms == w->cap_terms) {
        size_t cap = w->cap_terms ? w->cap_terms * 2 : 4096;
        term_pair *t = clew__realloc(w->terms, cap * sizeof(*t));
        if (t == NULL) {
            return CLEW_ENOMEM;
        }
        w->terms = t;
        w->cap_terms = cap;
    }
    w->terms[w->n_terms].hash = hash;
    w->terms[w->n_terms].ord = ord;
    w->terms[w->n_terms].key = key;
    w->n_terms++;
    return CLEW_OK;
}

static clew_status add_op(writer *w, uint32_t service, uint32_t name, uint32_t kind)
{
    if (w->n_ops > 0 && w->ops[w->n_ops - 1].service == service &&
        w->ops[w->n_ops - 1].name == name && w->ops[w->n_ops - 1].kind == kind) {
        return CLEW_OK;
    }
    if (w->n_ops == w->cap_ops) {
        size_t cap = w->cap_ops ? w->cap_ops * 2 : 1024;
        op_triple *o = clew__realloc(w->ops, cap * sizeof(*o));
        if (o == NULL) {
            return CLEW_ENOMEM;
        }
        w->ops = o;
        w->cap_ops = cap;
    }
    w->ops[w->n_ops].service = service;
    w->ops[w->n_ops].name = name;
    w->ops[w->n_ops].kind = kind;
    w->n_ops++;
    return CLEW_OK;
}

static clew_status index_attrs(writer *w, const clew_attrs *a, uint32_t ord)
{
    for (uint32_t i = 0; i < a->n; i++) {
        const clew_kv *kv = &a->items[i];
        uint32_t kid;
        clew_status rc = itab_put(&w->keys, &kv->key, &kid, NULL);
        if (rc != CLEW_OK) {
            return rc;
        }
        kid = w->key_remap[kid];
        uint8_t tmp[8];
        const void *vb;
        size_t vlen;
        unsigned letter = clew__blk_value_term(&kv->value, tmp, &vb, &vlen);
        if (letter == 0) {
            /* bytes can match a search (by base64), so the key is only partly indexed;
             * arrays, kvlists and NaN never match, so they leave the index complete */
            if (kv->value.type == CLEW_VALUE_BYTES) {
                w->key_flags[kid] |= BLK_KEY_PARTIAL;
            }
            continue;
        }
        if (vlen > w->max_value) {
            w->key_flags[kid] |= BLK_KEY_PARTIAL;
            continue;
        }
        rc = add_term(w, clew__blk_term_hash(BLK_TERM_ATTR | letter << 8, kv->key, vb, vlen), ord,
                      kid);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

static clew_status compress_page(writer *w)
{
    if (w->page.len == 0) {
        return CLEW_OK;
    }
    size_t bound = ZSTD_compressBound(w->page.len);
    if (bound > w->zcap) {
        void *z = clew__realloc(w->zbuf, bound);
        if (z == NULL) {
            return CLEW_ENOMEM;
        }
        w->zbuf = z;
        w->zcap = bound;
    }
    size_t zn = ZSTD_compressCCtx(w->zctx, w->zbuf, w->zcap, w->page.data, w->page.len, w->level);
    if (ZSTD_isError(zn)) {
        return fail(w, CLEW_EIO, "zstd compression failed");
    }
    clew_status rc = w->io->pwrite_all(w->io, w->fd, w->zbuf, zn, w->off);
    if (rc != CLEW_OK) {
        return fail(w, rc, "writing a page");
    }
    uint8_t e[BLK_PAGE_ENTRY];
    blk_put_u64(e, w->off);
    blk_put_u32(e + 8, (uint32_t)zn);
    blk_put_u32(e + 12, (uint32_t)w->page.len);
    blk_put_u32(e + 16, crc32_iscsi(w->zbuf, (int)zn, 0));
    rc = clew__buf_append(&w->pages, e, sizeof(e));
    if (rc != CLEW_OK) {
        return rc;
    }
    w->off += zn;
    w->n_pages++;
    clew__buf_reset(&w->page);
    return CLEW_OK;
}

static int span_ref_cmp(const void *a, const void *b)
{
    const span_ref *x = a, *y = b;
    if (x->sp->start_ns != y->sp->start_ns) {
        return x->sp->start_ns < y->sp->start_ns ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx ? 1 : 0;
}

static int span_id_cmp(const void *a, const void *b)
{
    const span_ref *x = a, *y = b;
    return memcmp(x->sp->span_id.bytes, y->sp->span_id.bytes, 8);
}

static bool zero_span_id(const clew_span_id *id)
{
    static const uint8_t zero[8];
    return memcmp(id->bytes, zero, 8) == 0;
}

static clew_status put_inline_strs(clew_buf *b, const span_ref *s, uint32_t n, size_t field)
{
    for (uint32_t i = 0; i < n; i++) {
        const clew_str *str = (const clew_str *)((const char *)s[i].sp + field);
        if (str->len > 0) {
            clew_status rc = clew__blk_put_str(b, *str);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
    }
    return CLEW_OK;
}

/* ---- value dictionaries ----
 *
 * Strings that repeat across the block (SQL statements, routes, user agents) go to the
 * block's VALUES dictionary once; strings that repeat only inside one page (a request id on
 * every span of a trace) go to that page's dictionary. A string seen once whose skeleton (its
 * text with the digit runs taken out, see clew__blk_skeleton) repeats is written as the
 * skeleton's index plus its numbers. */

#define GLOBAL_MIN 3u /* distinct traces a string must occur in for the VALUES dictionary */

static clew_status skeleton_add(ctab *c, clew_arena *a, clew_str s, uint32_t ord)
{
    if (s.len == 0) {
        return CLEW_OK;
    }
    char *sk = clew__arena_alloc(a, s.len);
    if (sk == NULL) {
        return CLEW_ENOMEM;
    }
    uint64_t nums[BLK_MAX_RUNS];
    uint8_t widths[BLK_MAX_RUNS];
    clew_str skel = {sk, 0};
    if (clew__blk_skeleton(s, sk, &skel.len, nums, widths) == 0) {
        return CLEW_OK;
    }
    return ctab_add(c, skel, ord);
}

/* pass 0 counts whole strings, pass 1 the skeletons of strings seen once; `global` counts
 * for the block, otherwise for the page (leaving out what the block dictionary has). */
static clew_status count_attrs(writer *w, const clew_attrs *a, int pass, bool global, uint32_t ord)
{
    for (uint32_t i = 0; i < a->n; i++) {
        const clew_value *v = &a->items[i].value;
        if (v->type != CLEW_VALUE_STRING) {
            continue;
        }
        clew_str str = v->u.s;
        clew_status rc = CLEW_OK;
        if (global) {
            if (pass == 0) {
                rc = ctab_add(&w->gc, str, ord);
            } else if (ctab_count(&w->gc, str) == 1) {
                rc = skeleton_add(&w->gc, &w->garena, str, ord);
            }
        } else if (ctab_index(&w->gc, str) == 0) {
            if (pass == 0) {
                rc = ctab_add(&w->pc, str, ord);
            } else if (ctab_count(&w->pc, str) == 1) {
                rc = skeleton_add(&w->pc, &w->parena, str, ord);
            }
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

static clew_status count_trace(writer *w, uint32_t ord, int pass, bool global)
{
    const clew_block_trace *t = &w->traces[w->by_id[ord]];
    clew_status rc = CLEW_OK;
    for (size_t j = 0; rc == CLEW_OK && j < t->n_spans; j++) {
        const clew_span_data *sp = t->spans[j];
        rc = count_attrs(w, &sp->attrs, pass, global, ord);
        for (uint32_t e = 0; rc == CLEW_OK && e < sp->n_events; e++) {
            rc = count_attrs(w, &sp->events[e].attrs, pass, global, ord);
        }
        for (uint32_t l = 0; rc == CLEW_OK && l < sp->n_links; l++) {
            rc = count_attrs(w, &sp->links[l].attrs, pass, global, ord);
        }
    }
    return rc;
}

/* The DICT index of a string: block dictionary first, then the page's. */
static bool dict_ref(const writer *w, clew_str s, uint32_t *out)
{
    uint32_t g = ctab_index(&w->gc, s);
    if (g != 0) {
        *out = g - 1;
        return true;
    }
    uint32_t p = ctab_index(&w->pc, s);
    if (p != 0) {
        *out = w->n_values + p - 1;
        return true;
    }
    return false;
}

/* The str_fn of event and link attributes in pages: a string that repeats in the page is a
 * dictionary index; anything else stays inline. */
static clew_status page_str(void *ud, clew_buf *b, clew_str s, bool *done)
{
    writer *w = ud;
    uint32_t idx;
    if (!dict_ref(w, s, &idx)) {
        return CLEW_OK;
    }
    clew_status rc = clew__buf_putc(b, (char)BLK_VALUE_DICT);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_varint(b, idx);
    }
    *done = rc == CLEW_OK;
    return rc;
}

/* The form a top-level attribute value takes in a page: what goes into the shape column
 * (tag and the parts that repeat from span to span) and what into the value column. */
typedef struct vform {
    unsigned tag;  /* clew_value_type or BLK_VALUE_DICT / TEMPLATE / DECIMAL */
    uint32_t a;    /* dictionary index (DICT, TEMPLATE's skeleton) */
    unsigned runs; /* TEMPLATE */
    uint64_t nums[BLK_MAX_RUNS];
    uint8_t widths[BLK_MAX_RUNS];
    int64_t m; /* DECIMAL */
    unsigned scale;
} vform;

static clew_status choose_form(writer *w, const clew_value *v, vform *f)
{
    f->tag = (unsigned)v->type;
    if (v->type == CLEW_VALUE_DOUBLE) {
        if (clew__blk_decimal(v->u.d, &f->scale, &f->m)) {
            f->tag = BLK_VALUE_DECIMAL;
        }
        return CLEW_OK;
    }
    if (v->type != CLEW_VALUE_STRING) {
        return CLEW_OK;
    }
    uint32_t idx;
    if (dict_ref(w, v->u.s, &idx)) {
        f->tag = BLK_VALUE_DICT;
        f->a = idx;
        return CLEW_OK;
    }
    if (v->u.s.len == 0) {
        return CLEW_OK;
    }
    char *sk = clew__arena_alloc(&w->parena, v->u.s.len);
    if (sk == NULL) {
        return CLEW_ENOMEM;
    }
    clew_str skel = {sk, 0};
    f->runs = clew__blk_skeleton(v->u.s, sk, &skel.len, f->nums, f->widths);
    if (f->runs > 0 && dict_ref(w, skel, &idx)) {
        f->tag = BLK_VALUE_TEMPLATE;
        f->a = idx;
    }
    return CLEW_OK;
}

static clew_status put_shape(clew_buf *b, const vform *f)
{
    clew_status rc = clew__buf_putc(b, (char)f->tag);
    if (rc == CLEW_OK && f->tag == BLK_VALUE_TEMPLATE) {
        rc = clew__blk_put_varint(b, f->a);
        for (unsigned r = 0; rc == CLEW_OK && r < f->runs; r++) {
            rc = clew__buf_putc(b, (char)f->widths[r]);
        }
    } else if (rc == CLEW_OK && f->tag == BLK_VALUE_DECIMAL) {
        rc = clew__buf_putc(b, (char)f->scale);
    }
    return rc;
}

static clew_status put_form(clew_buf *b, const clew_value *v, const vform *f)
{
    clew_status rc = CLEW_OK;
    switch (f->tag) {
    case BLK_VALUE_DICT:
        return clew__blk_put_varint(b, f->a);
    case BLK_VALUE_TEMPLATE:
        for (unsigned r = 0; rc == CLEW_OK && r < f->runs; r++) {
            rc = clew__blk_put_varint(b, f->nums[r]);
        }
        return rc;
    case BLK_VALUE_DECIMAL:
        return clew__blk_put_varint(b, blk_zigzag(f->m));
    default:
        return clew__blk_put_payload(b, v, 0);
    }
}

typedef struct attr_ref {
    uint32_t key;
    uint32_t k; /* position in the shape column */
    const clew_value *v;
} attr_ref;

static int attr_ref_cmp(const void *x, const void *y)
{
    const attr_ref *a = x, *b = y;
    if (a->key != b->key) {
        return a->key < b->key ? -1 : 1;
    }
    return a->k < b->k ? -1 : a->k > b->k;
}

/* Span attributes of a trace in two parts: the shape (per span: count, dropped, then key id
 * and form tag of each attribute), then the values grouped by key id, so that a key's values
 * sit together and zstd sees one run of similar bytes instead of ten interleaved ones. */
static clew_status encode_span_attrs(writer *w, clew_buf *b, const span_ref *s, uint32_t n)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        total += s[i].sp->attrs.n;
    }
    if (total > w->cap_aref) {
        attr_ref *r = clew__realloc(w->aref, total * sizeof(*r));
        vform *f = r == NULL ? NULL : clew__realloc(w->forms, total * sizeof(*f));
        if (r != NULL) {
            w->aref = r;
        }
        if (f == NULL) {
            return CLEW_ENOMEM;
        }
        w->forms = f;
        w->cap_aref = total;
    }
    clew_status rc = CLEW_OK;
    uint32_t k = 0;
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_attrs *a = &s[i].sp->attrs;
        rc = clew__blk_put_varint(b, a->n);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_varint(b, a->dropped);
        }
        for (uint32_t j = 0; rc == CLEW_OK && j < a->n; j++, k++) {
            uint32_t kid = 0;
            rc = key_sorted(w, a->items[j].key, &kid);
            if (rc == CLEW_OK) {
                rc = choose_form(w, &a->items[j].value, &w->forms[k]);
            }
            if (rc == CLEW_OK) {
                rc = clew__blk_put_varint(b, kid);
            }
            if (rc == CLEW_OK) {
                rc = put_shape(b, &w->forms[k]);
            }
            w->aref[k].key = kid;
            w->aref[k].k = k;
            w->aref[k].v = &a->items[j].value;
        }
    }
    if (rc == CLEW_OK && total > 1) {
        qsort(w->aref, total, sizeof(*w->aref), attr_ref_cmp);
    }
    for (size_t i = 0; rc == CLEW_OK && i < total; i++) {
        rc = put_form(b, w->aref[i].v, &w->forms[w->aref[i].k]);
    }
    return rc;
}

static clew_status encode_trace(writer *w, clew_buf *b, const span_ref *s, const span_ref *by_sid,
                                uint32_t n, uint64_t t0);

/* Cuts the pending traces into one page: dictionary, then each trace record. */
static clew_status flush_page(writer *w)
{
    if (w->n_pend == 0) {
        return CLEW_OK;
    }
    itab_clear(&w->pc.t);
    clew__arena_reset(&w->parena);
    clew_status rc = CLEW_OK;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; rc == CLEW_OK && i < w->n_pend; i++) {
            rc = count_trace(w, w->pend[i], pass, false);
        }
    }
    uint32_t n_dict = rc == CLEW_OK ? ctab_assign(&w->pc, 2, false) : 0;
    clew__buf_reset(&w->page);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_varint(&w->page, n_dict);
    }
    for (uint32_t id = 0; rc == CLEW_OK && id < w->pc.t.n; id++) {
        if (w->pc.index[id] != 0) {
            rc = clew__blk_put_str(&w->page, w->pc.t.strs[id]);
        }
    }
    for (size_t k = 0; rc == CLEW_OK && k < w->n_pend; k++) {
        uint32_t ord = w->pend[k];
        const clew_block_trace *t = &w->traces[w->by_id[ord]];
        uint32_t n = (uint32_t)t->n_spans;
        for (uint32_t i = 0; i < n; i++) {
            w->refs[i].sp = t->spans[i];
            w->refs[i].idx = i;
        }
        qsort(w->refs, n, sizeof(*w->refs), span_ref_cmp);
        for (uint32_t i = 0; i < n; i++) {
            w->refs[i].idx = i; /* now the position in start order */
            w->by_sid[i] = w->refs[i];
        }
        qsort(w->by_sid, n, sizeof(*w->by_sid), span_id_cmp);
        w->sums[ord].page = w->n_pages;
        w->sums[ord].offset = (uint32_t)w->page.len;
        rc = encode_trace(w, &w->page, w->refs, w->by_sid, n, w->refs[0].sp->start_ns);
    }
    if (rc == CLEW_OK) {
        rc = compress_page(w);
    }
    w->n_pend = 0;
    w->page_est = 0;
    return rc;
}

/* Encodes one trace, column by column (docs/internals/block.md, "trace record"). `s` is in
 * start order; `by_sid` is the same spans sorted by span id, to find parents. */
static clew_status encode_trace(writer *w, clew_buf *b, const span_ref *s, const span_ref *by_sid,
                                uint32_t n, uint64_t t0)
{
    clew_status rc = clew__blk_put_varint(b, n);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_varint(b, t0);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__buf_append(b, s[i].sp->span_id.bytes, 8);
    }
    /* parents: 0 = none (all-zero id), i + 1 = the i-th span of this trace (start order),
     * n + 1 = outside the trace (the 8 bytes follow) */
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = s[i].sp;
        if (zero_span_id(&sp->parent_span_id)) {
            rc = clew__blk_put_varint(b, 0);
            continue;
        }
        span_ref key = {.sp = NULL, .idx = 0};
        clew_span_data probe;
        memcpy(probe.span_id.bytes, sp->parent_span_id.bytes, 8);
        key.sp = &probe;
        const span_ref *hit = bsearch(&key, by_sid, n, sizeof(*by_sid), span_id_cmp);
        if (hit != NULL) {
            rc = clew__blk_put_varint(b, (uint64_t)hit->idx + 1);
        } else {
            rc = clew__blk_put_varint(b, (uint64_t)n + 1);
            if (rc == CLEW_OK) {
                rc = clew__buf_append(b, sp->parent_span_id.bytes, 8);
            }
        }
    }
    /* starts: from the parent's start when the parent comes earlier in the trace (children
     * start soon after their parent, so the numbers are small), else from the trace start */
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = s[i].sp;
        uint64_t base = t0;
        if (!zero_span_id(&sp->parent_span_id)) {
            span_ref key;
            clew_span_data probe;
            memcpy(probe.span_id.bytes, sp->parent_span_id.bytes, 8);
            key.sp = &probe;
            key.idx = 0;
            const span_ref *hit = bsearch(&key, by_sid, n, sizeof(*by_sid), span_id_cmp);
            if (hit != NULL && hit->idx < i) {
                base = hit->sp->start_ns;
            }
        }
        rc = clew__blk_put_varint(b, blk_zigzag((int64_t)(sp->start_ns - base)));
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_varint(b, blk_zigzag((int64_t)(s[i].sp->end_ns - s[i].sp->start_ns)));
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        uint32_t sid;
        rc = str_id(w, s[i].sp->name, &sid);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_varint(b, sid);
        }
    }
    /* kind (3 bits), status code (2 bits), has trace_state, has status message */
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = s[i].sp;
        unsigned bits = ((unsigned)sp->kind & 7u) | ((unsigned)sp->status_code & 3u) << 3 |
                        (sp->trace_state.len > 0 ? 1u << 5 : 0) |
                        (sp->status_message.len > 0 ? 1u << 6 : 0);
        rc = clew__buf_putc(b, (char)bits);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_varint(b, s[i].sp->flags);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        uint32_t rid;
        rc = itab_put_cached(&w->resources, &w->res_cache, s[i].sp->resource, &rid, NULL);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_varint(b, rid);
        }
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        uint32_t cid;
        rc = itab_put_cached(&w->scopes, &w->scope_cache, s[i].sp->scope, &cid, NULL);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_varint(b, cid);
        }
    }
    if (rc == CLEW_OK) {
        rc = put_inline_strs(b, s, n, offsetof(clew_span_data, trace_state));
    }
    if (rc == CLEW_OK) {
        rc = put_inline_strs(b, s, n, offsetof(clew_span_data, status_message));
    }
    if (rc == CLEW_OK) {
        rc = encode_span_attrs(w, b, s, n);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = s[i].sp;
        rc = clew__blk_put_varint(b, sp->n_events);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_varint(b, sp->dropped_events);
        }
        for (uint32_t e = 0; rc == CLEW_OK && e < sp->n_events; e++) {
            const clew_event_data *ev = &sp->events[e];
            rc = clew__blk_put_varint(b, blk_zigzag((int64_t)(ev->time_ns - sp->start_ns)));
            if (rc == CLEW_OK) {
                rc = clew__blk_put_str(b, ev->name);
            }
            if (rc == CLEW_OK) {
                rc = clew__blk_put_attrs(b, &ev->attrs, key_sorted, page_str, w);
            }
        }
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = s[i].sp;
        rc = clew__blk_put_varint(b, sp->n_links);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_varint(b, sp->dropped_links);
        }
        for (uint32_t l = 0; rc == CLEW_OK && l < sp->n_links; l++) {
            const clew_link_data *ln = &sp->links[l];
            rc = clew__buf_append(b, ln->trace_id.bytes, 16);
            if (rc == CLEW_OK) {
                rc = clew__buf_append(b, ln->span_id.bytes, 8);
            }
            if (rc == CLEW_OK) {
                rc = clew__blk_put_str(b, ln->trace_state);
            }
            if (rc == CLEW_OK) {
                rc = clew__blk_put_varint(b, ln->flags);
            }
            if (rc == CLEW_OK) {
                rc = clew__blk_put_attrs(b, &ln->attrs, key_sorted, page_str, w);
            }
        }
    }
    return rc;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Encodes trace `ord` into the current page and records its summary and terms. */
static clew_status write_trace(writer *w, uint32_t ord, span_ref *refs, span_ref *by_sid)
{
    const clew_block_trace *t = &w->traces[w->by_id[ord]];
    uint32_t n = (uint32_t)t->n_spans;
    for (uint32_t i = 0; i < n; i++) {
        refs[i].sp = t->spans[i];
        refs[i].idx = i;
    }
    qsort(refs, n, sizeof(*refs), span_ref_cmp);
    for (uint32_t i = 0; i < n; i++) {
        refs[i].idx = i; /* now the position in start order */
        by_sid[i] = refs[i];
    }
    qsort(by_sid, n, sizeof(*by_sid), span_id_cmp);

    summary *sm = &w->sums[ord];
    uint64_t t0 = refs[0].sp->start_ns, t1 = 0;
    uint32_t root = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        const clew_span_data *sp = refs[i].sp;
        if (sp->end_ns > t1) {
            t1 = sp->end_ns;
        }
        if (root == UINT32_MAX && zero_span_id(&sp->parent_span_id)) {
            root = i;
        }
        if (sp->status_code == CLEW_STATUS_ERROR) {
            sm->error_count++;
        }
    }
    if (root == UINT32_MAX) {
        root = 0;
    }
    if (t1 < t0) {
        t1 = t0;
    }
    sm->start = t0;
    sm->duration = t1 - t0;
    sm->span_count = n;
    sm->state = (uint8_t)t->meta.state;
    sm->adjusted = t->meta.adjusted_count;
    clew_status rc = str_id(w, t->meta.kept_reason, &sm->kept_reason);
    if (rc == CLEW_OK) {
        rc = str_id(w, t->meta.tenant, &sm->tenant);
    }
    if (rc == CLEW_OK) {
        rc = str_id(w, refs[root].sp->name, &sm->root_op);
    }
    if (w->n_spans == 0 || t0 < w->min_start) {
        w->min_start = t0;
    }
    if (t1 > w->max_end) {
        w->max_end = t1;
    }
    w->n_spans += n;

    /* services of the trace, operations, and the search terms */
    size_t svc_first = w->n_trace_svcs;
    uint32_t last_res = UINT32_MAX;
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = refs[i].sp;
        uint32_t rid;
        rc = itab_put_cached(&w->resources, &w->res_cache, sp->resource, &rid, NULL);
        if (rc != CLEW_OK) {
            break;
        }
        uint32_t svc = w->res_service[rid];
        if (i == root) {
            sm->root_service = svc;
        }
        clew_str svc_name = w->services.strs[w->svc_order[svc]];
        uint32_t name_id;
        rc = str_id(w, sp->name, &name_id);
        if (rc == CLEW_OK) {
            rc = add_op(w, svc, name_id, (uint32_t)sp->kind);
        }
        if (rc == CLEW_OK && rid != last_res) {
            /* one resource's attributes and service once per run of spans sharing it;
             * duplicates across runs fall out when the terms are sorted */
            last_res = rid;
            if (w->n_trace_svcs == w->cap_trace_svcs) {
                size_t cap = w->cap_trace_svcs ? w->cap_trace_svcs * 2 : 1024;
                uint32_t *p = clew__realloc(w->trace_svcs, cap * sizeof(*p));
                if (p == NULL) {
                    rc = CLEW_ENOMEM;
                    break;
                }
                w->trace_svcs = p;
                w->cap_trace_svcs = cap;
            }
            w->trace_svcs[w->n_trace_svcs++] = svc;
            rc = add_term(w, clew__blk_term_hash(BLK_TERM_SERVICE, svc_name, NULL, 0), ord,
                          UINT32_MAX);
            if (rc == CLEW_OK) {
                rc = index_attrs(w, &sp->resource->attrs, ord);
            }
        }
        if (rc == CLEW_OK) {
            rc = add_term(
                w, clew__blk_term_hash(BLK_TERM_SERVICE_OP, svc_name, sp->name.ptr, sp->name.len),
                ord, UINT32_MAX);
        }
        if (rc == CLEW_OK) {
            rc = add_term(w, clew__blk_term_hash(BLK_TERM_OP, sp->name, NULL, 0), ord, UINT32_MAX);
        }
        if (rc == CLEW_OK) {
            rc = index_attrs(w, &sp->attrs, ord);
        }
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    /* the trace's distinct services, sorted */
    size_t cnt = w->n_trace_svcs - svc_first;
    qsort(&w->trace_svcs[svc_first], cnt, sizeof(uint32_t), u32_cmp);
    size_t u = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (u == 0 || w->trace_svcs[svc_first + u - 1] != w->trace_svcs[svc_first + i]) {
            w->trace_svcs[svc_first + u++] = w->trace_svcs[svc_first + i];
        }
    }
    w->n_trace_svcs = svc_first + u;
    sm->svc_first = (uint32_t)svc_first;
    sm->svc_n = (uint32_t)u;

    /* queue the trace for the page being filled; a rough size decides where pages end */
    if (w->n_pend == w->cap_pend) {
        size_t cap = w->cap_pend ? w->cap_pend * 2 : 256;
        uint32_t *p = clew__realloc(w->pend, cap * sizeof(*p));
        if (p == NULL) {
            return CLEW_ENOMEM;
        }
        w->pend = p;
        w->cap_pend = cap;
    }
    w->pend[w->n_pend++] = ord;
    for (uint32_t i = 0; i < n; i++) {
        const clew_attrs *at = &refs[i].sp->attrs;
        w->page_est += 32;
        for (uint32_t k = 0; k < at->n; k++) {
            w->page_est +=
                2 + (at->items[k].value.type == CLEW_VALUE_STRING ? at->items[k].value.u.s.len : 8);
        }
    }
    if (w->page_est >= w->page_size) {
        rc = flush_page(w);
    }
    return rc;
}

/* ---- sections ---- */

static clew_status write_section(writer *w, unsigned sec, const clew_buf *raw)
{
    const void *data = raw->data != NULL ? raw->data : "";
    size_t len = raw->len;
    uint32_t codec = BLK_CODEC_RAW;
    size_t bound = ZSTD_compressBound(len);
    if (bound > w->zcap) {
        void *z = clew__realloc(w->zbuf, bound);
        if (z == NULL) {
            return CLEW_ENOMEM;
        }
        w->zbuf = z;
        w->zcap = bound;
    }
    if (len > 64) {
        size_t zn = ZSTD_compressCCtx(w->zctx, w->zbuf, w->zcap, data, len, w->level);
        if (!ZSTD_isError(zn) && zn < len) {
            data = w->zbuf;
            codec = BLK_CODEC_ZSTD;
            len = zn;
        }
    }
    clew_status rc = w->io->pwrite_all(w->io, w->fd, data, len, w->off);
    if (rc != CLEW_OK) {
        return fail(w, rc, "writing a section");
    }
    uint8_t *e = &w->sec_table[sec * BLK_SECTION_ENTRY];
    blk_put_u64(e, w->off);
    blk_put_u64(e + 8, len);
    blk_put_u64(e + 16, raw->len);
    blk_put_u32(e + 24, crc32_iscsi((unsigned char *)data, (int)len, 0));
    blk_put_u32(e + 28, codec);
    w->off += len;
    return CLEW_OK;
}

static int term_hash_cmp(const void *a, const void *b)
{
    const term_pair *x = a, *y = b;
    if (x->hash != y->hash) {
        return x->hash < y->hash ? -1 : 1;
    }
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* Drops the terms of keys with too many distinct values, then builds TERMS and POSTINGS. */
static clew_status build_postings(writer *w, clew_buf *terms, clew_buf *post)
{
    /* one sort by (hash, ordinal); a term's hash belongs to one key, so counting the distinct
     * hashes of each key in that order gives its number of distinct values */
    qsort(w->terms, w->n_terms, sizeof(*w->terms), term_hash_cmp);
    size_t *distinct = clew__calloc(w->keys.n ? w->keys.n : 1, sizeof(*distinct));
    if (distinct == NULL) {
        return CLEW_ENOMEM;
    }
    for (size_t i = 0; i < w->n_terms; i++) {
        uint32_t key = w->terms[i].key;
        if (key != UINT32_MAX && (i == 0 || w->terms[i].hash != w->terms[i - 1].hash)) {
            distinct[key]++;
        }
    }
    /* a key with more distinct values than the block has traces (at least 1024) is finer
     * than a trace: its postings would cost more than they save */
    size_t cap = w->n_traces > 1024 ? w->n_traces : 1024;
    if (cap > w->max_per_key) {
        cap = w->max_per_key;
    }
    for (uint32_t k = 0; k < w->keys.n; k++) {
        if (distinct[k] > cap) {
            w->key_flags[k] |= BLK_KEY_UNINDEXED;
        }
    }
    clew__free(distinct);
    size_t kept = 0;
    for (size_t i = 0; i < w->n_terms; i++) {
        uint32_t key = w->terms[i].key;
        if (key == UINT32_MAX || (w->key_flags[key] & BLK_KEY_UNINDEXED) == 0) {
            w->terms[kept++] = w->terms[i];
        }
    }
    w->n_terms = kept;
    size_t i;
    /* TERMS: u32 n, then columns hash u64[n], count u32[n], postings offset u32[n] */
    size_t n_distinct = 0;
    for (i = 0; i < w->n_terms; i++) {
        if (i == 0 || w->terms[i].hash != w->terms[i - 1].hash) {
            n_distinct++;
        }
    }
    clew_buf hashes, counts, offs;
    clew__buf_init(&hashes, 0);
    clew__buf_init(&counts, 0);
    clew__buf_init(&offs, 0);
    clew_status rc = clew__blk_put_fixed32(terms, (uint32_t)n_distinct);
    i = 0;
    while (rc == CLEW_OK && i < w->n_terms) {
        uint64_t h = w->terms[i].hash;
        uint32_t count = 0, prev = 0;
        rc = clew__blk_put_fixed32(&offs, (uint32_t)post->len);
        for (; rc == CLEW_OK && i < w->n_terms && w->terms[i].hash == h; i++) {
            uint32_t ord = w->terms[i].ord;
            if (count > 0 && ord == prev) {
                continue; /* the same term twice in one trace */
            }
            rc = clew__blk_put_varint(post, count == 0 ? ord : ord - prev);
            prev = ord;
            count++;
        }
        if (rc == CLEW_OK) {
            rc = clew__blk_put_fixed64(&hashes, h);
        }
        if (rc == CLEW_OK) {
            rc = clew__blk_put_fixed32(&counts, count);
        }
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_append(terms, hashes.data, hashes.len);
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_append(terms, counts.data, counts.len);
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_append(terms, offs.data, offs.len);
    }
    clew__buf_deinit(&hashes);
    clew__buf_deinit(&counts);
    clew__buf_deinit(&offs);
    return rc;
}

static int op_cmp(const void *a, const void *b)
{
    const op_triple *x = a, *y = b;
    if (x->service != y->service) {
        return x->service < y->service ? -1 : 1;
    }
    if (x->name != y->name) {
        return x->name < y->name ? -1 : 1;
    }
    return x->kind < y->kind ? -1 : x->kind > y->kind;
}

static clew_status write_sections(writer *w)
{
    clew_buf b;
    clew__buf_init(&b, 0);
    clew_status rc = write_section(w, BLK_SEC_PAGE_TABLE, &w->pages);
    uint32_t n = (uint32_t)w->n_traces;

    /* TRACE_INDEX: ids[n][16] (sorted), page u32[n], offset u32[n] */
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__buf_append(&b, w->traces[w->by_id[i]].trace_id.bytes, 16);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, w->sums[i].page);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, w->sums[i].offset);
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_TRACE_INDEX, &b);
    }

    /* BLOOM: u64 n_bits, then the bits */
    clew__buf_reset(&b);
    uint64_t n_bits = (uint64_t)n * BLK_BLOOM_BITS_PER_ITEM;
    n_bits = (n_bits + 63) / 64 * 64;
    uint8_t *bits = clew__calloc(n_bits / 8, 1);
    if (rc == CLEW_OK && bits == NULL) {
        rc = CLEW_ENOMEM;
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        clew__blk_bloom_add(bits, n_bits, &w->traces[w->by_id[i]].trace_id);
    }
    if (rc == CLEW_OK) {
        rc = clew__blk_put_fixed64(&b, n_bits);
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_append(&b, bits, n_bits / 8);
    }
    clew__free(bits);
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_BLOOM, &b);
    }

    /* SUMMARIES: columns by ordinal (see block.md) */
    clew__buf_reset(&b);
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed64(&b, w->sums[i].start);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed64(&b, w->sums[i].duration);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, w->sums[i].root_service);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, w->sums[i].root_op);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, w->sums[i].span_count);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, w->sums[i].error_count);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__buf_putc(&b, (char)w->sums[i].state);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, w->sums[i].kept_reason);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        uint64_t bitsd;
        memcpy(&bitsd, &w->sums[i].adjusted, 8);
        rc = clew__blk_put_fixed64(&b, bitsd);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, w->sums[i].tenant);
    }
    /* the services of each trace, laid out in ordinal order so that trace i's list ends
     * where trace i + 1's starts (they were collected in page order) */
    uint32_t at = 0;
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = clew__blk_put_fixed32(&b, at);
        at += w->sums[i].svc_n;
    }
    if (rc == CLEW_OK) {
        rc = clew__blk_put_fixed32(&b, at);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        for (uint32_t k = 0; rc == CLEW_OK && k < w->sums[i].svc_n; k++) {
            rc = clew__blk_put_fixed32(&b, w->trace_svcs[w->sums[i].svc_first + k]);
        }
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_SUMMARIES, &b);
    }

    /* SERVICES: u32 n, string id u32[n] (sorted by name). Interned before STRINGS is
     * written, so every id below exists there. */
    clew__buf_reset(&b);
    uint32_t n_svc = w->services.n;
    if (rc == CLEW_OK) {
        rc = clew__blk_put_fixed32(&b, n_svc);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n_svc; i++) {
        uint32_t sid;
        rc = str_id(w, w->services.strs[w->svc_order[i]], &sid);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_fixed32(&b, sid);
        }
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_SERVICES, &b);
    }

    /* KEYS: u32 n, string id u32[n] (sorted by key), flags u8[n] */
    clew__buf_reset(&b);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_fixed32(&b, w->keys.n);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < w->keys.n; i++) {
        uint32_t sid;
        rc = str_id(w, w->keys.strs[w->key_order[i]], &sid);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_fixed32(&b, sid);
        }
    }
    clew_buf terms, post;
    clew__buf_init(&terms, 0);
    clew__buf_init(&post, 0);
    if (rc == CLEW_OK) {
        /* postings first: they set the UNINDEXED flags */
        rc = build_postings(w, &terms, &post);
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_append(&b, w->key_flags, w->keys.n);
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_KEYS, &b);
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_TERMS, &terms);
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_POSTINGS, &post);
    }
    clew__buf_deinit(&terms);
    clew__buf_deinit(&post);

    /* OPERATIONS: u32 n, then service u32[n], name string id u32[n], kind u8[n] (sorted) */
    clew__buf_reset(&b);
    if (w->n_ops > 0) {
        qsort(w->ops, w->n_ops, sizeof(*w->ops), op_cmp);
    }
    size_t u = 0;
    for (size_t i = 0; i < w->n_ops; i++) {
        if (u == 0 || op_cmp(&w->ops[u - 1], &w->ops[i]) != 0) {
            w->ops[u++] = w->ops[i];
        }
    }
    w->n_ops = u;
    if (rc == CLEW_OK) {
        rc = clew__blk_put_fixed32(&b, (uint32_t)u);
    }
    for (size_t i = 0; rc == CLEW_OK && i < u; i++) {
        rc = clew__blk_put_fixed32(&b, w->ops[i].service);
    }
    for (size_t i = 0; rc == CLEW_OK && i < u; i++) {
        rc = clew__blk_put_fixed32(&b, w->ops[i].name);
    }
    for (size_t i = 0; rc == CLEW_OK && i < u; i++) {
        rc = clew__buf_putc(&b, (char)w->ops[i].kind);
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_OPERATIONS, &b);
    }

    /* RESOURCES: varint n, each attrs + schema_url; varint n scopes, each name, version,
     * attrs, schema_url */
    clew__buf_reset(&b);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_varint(&b, w->resources.n);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < w->resources.n; i++) {
        const clew_resource *r = w->resources.objs[i];
        rc = clew__blk_put_attrs(&b, &r->attrs, key_sorted, NULL, w);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_str(&b, r->schema_url);
        }
    }
    if (rc == CLEW_OK) {
        rc = clew__blk_put_varint(&b, w->scopes.n);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < w->scopes.n; i++) {
        const clew_scope *s = w->scopes.objs[i];
        rc = clew__blk_put_str(&b, s->name);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_str(&b, s->version);
        }
        if (rc == CLEW_OK) {
            rc = clew__blk_put_attrs(&b, &s->attrs, key_sorted, NULL, w);
        }
        if (rc == CLEW_OK) {
            rc = clew__blk_put_str(&b, s->schema_url);
        }
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_RESOURCES, &b);
    }

    /* VALUES: the block's value dictionary, laid out like STRINGS */
    clew__buf_reset(&b);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_fixed32(&b, w->n_values);
    }
    uint32_t vend = 0;
    for (uint32_t id = 0; rc == CLEW_OK && id < w->gc.t.n; id++) {
        if (w->gc.index[id] != 0) {
            vend += (uint32_t)w->gc.t.strs[id].len;
            rc = clew__blk_put_fixed32(&b, vend);
        }
    }
    for (uint32_t id = 0; rc == CLEW_OK && id < w->gc.t.n; id++) {
        if (w->gc.index[id] != 0 && w->gc.t.strs[id].len > 0) {
            rc = clew__buf_append(&b, w->gc.t.strs[id].ptr, w->gc.t.strs[id].len);
        }
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_VALUES, &b);
    }

    /* STRINGS last: every id handed out above is in it. u32 n, u32 end offsets[n], bytes */
    clew__buf_reset(&b);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_fixed32(&b, w->strings.n);
    }
    uint32_t end = 0;
    for (uint32_t i = 0; rc == CLEW_OK && i < w->strings.n; i++) {
        end += (uint32_t)w->strings.strs[i].len;
        rc = clew__blk_put_fixed32(&b, end);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < w->strings.n; i++) {
        if (w->strings.strs[i].len > 0) {
            rc = clew__buf_append(&b, w->strings.strs[i].ptr, w->strings.strs[i].len);
        }
    }
    if (rc == CLEW_OK) {
        rc = write_section(w, BLK_SEC_STRINGS, &b);
    }
    clew__buf_deinit(&b);
    return rc;
}

static clew_status write_footer(writer *w)
{
    uint8_t f[BLK_FOOTER_SIZE];
    memset(f, 0, sizeof(f));
    blk_put_u32(f, CLEW_BLOCK_VERSION);
    blk_put_u32(f + 4, BLK_N_SECTIONS);
    blk_put_u32(f + 8, (uint32_t)w->n_traces);
    blk_put_u32(f + 12, w->n_pages);
    blk_put_u64(f + 16, w->n_spans);
    blk_put_u64(f + 24, w->min_start);
    blk_put_u64(f + 32, w->max_end);
    memcpy(f + 40, w->sec_table, sizeof(w->sec_table));
    size_t crc_at = 40 + sizeof(w->sec_table);
    blk_put_u32(f + crc_at, crc32_iscsi(f, (int)crc_at, 0));
    blk_put_u32(f + crc_at + 4, BLK_FOOTER_SIZE);
    blk_put_u64(f + crc_at + 8, BLK_MAGIC);
    clew_status rc = w->io->pwrite_all(w->io, w->fd, f, sizeof(f), w->off);
    if (rc != CLEW_OK) {
        return fail(w, rc, "writing the footer");
    }
    w->off += sizeof(f);
    return CLEW_OK;
}

typedef struct id_idx {
    clew_trace_id id;
    uint32_t idx;
} id_idx;

static int id_idx_cmp(const void *a, const void *b)
{
    const id_idx *x = a, *y = b;
    return clew__blk_id_cmp(&x->id, &y->id);
}

typedef struct start_idx {
    uint64_t start;
    uint32_t ord;
} start_idx;

static int start_idx_cmp(const void *a, const void *b)
{
    const start_idx *x = a, *y = b;
    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static void writer_deinit(writer *w)
{
    if (w->fd_open) {
        (void)w->io->close_file(w->io, w->fd);
    }
    itab_deinit(&w->strings);
    itab_deinit(&w->keys);
    itab_deinit(&w->services);
    itab_deinit(&w->resources);
    itab_deinit(&w->scopes);
    clew__free(w->key_remap);
    clew__free(w->key_order);
    clew__free(w->key_flags);
    clew__free(w->svc_remap);
    clew__free(w->svc_order);
    clew__free(w->res_service);
    clew__free(w->by_id);
    clew__free(w->ord_of);
    clew__free(w->sums);
    clew__free(w->trace_svcs);
    clew__free(w->terms);
    clew__free(w->ops);
    clew__buf_deinit(&w->page);
    clew__buf_deinit(&w->pages);
    clew__free(w->refs);
    clew__free(w->by_sid);
    clew__free(w->aref);
    clew__free(w->forms);
    clew__free(w->pend);
    ctab_deinit(&w->pc);
    ctab_deinit(&w->gc);
    clew__arena_deinit(&w->parena);
    clew__arena_deinit(&w->garena);
    clew__free(w->zbuf);
    ZSTD_freeCCtx(w->zctx);
}

static clew_status check_input(writer *w)
{
    for (size_t i = 0; i < w->n_traces; i++) {
        const clew_block_trace *t = &w->traces[i];
        if (t->n_spans == 0 || t->n_spans > UINT32_MAX / 2 || t->spans == NULL) {
            clew__error_set(w->err, i, "block write: trace %zu has no spans", i);
            return CLEW_EINVAL;
        }
        for (size_t j = 0; j < t->n_spans; j++) {
            const clew_span_data *sp = t->spans[j];
            if (sp == NULL || sp->resource == NULL || sp->scope == NULL ||
                clew__blk_id_cmp(&sp->trace_id, &t->trace_id) != 0) {
                clew__error_set(w->err, i,
                                "block write: span %zu of trace %zu is of another trace or "
                                "lacks a resource or scope",
                                j, i);
                return CLEW_EINVAL;
            }
        }
    }
    return CLEW_OK;
}

static clew_status run(writer *w, const char *tmp_path)
{
    size_t n = w->n_traces;
    clew_status rc = check_input(w);
    if (rc != CLEW_OK) {
        return rc;
    }
    w->by_id = clew__calloc(n, sizeof(uint32_t));
    w->ord_of = clew__calloc(n, sizeof(uint32_t));
    w->sums = clew__calloc(n, sizeof(summary));
    w->zctx = ZSTD_createCCtx();
    if (w->by_id == NULL || w->ord_of == NULL || w->sums == NULL || w->zctx == NULL) {
        return CLEW_ENOMEM;
    }
    id_idx *ids = clew__calloc(n, sizeof(*ids));
    if (ids == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        ids[i].id = w->traces[i].trace_id;
        ids[i].idx = i;
    }
    qsort(ids, n, sizeof(*ids), id_idx_cmp);
    for (uint32_t i = 0; i < n; i++) {
        w->by_id[i] = ids[i].idx;
    }
    clew__free(ids);
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0 && clew__blk_id_cmp(&w->traces[w->by_id[i - 1]].trace_id,
                                      &w->traces[w->by_id[i]].trace_id) == 0) {
            clew__error_set(w->err, w->by_id[i], "block write: trace id given twice");
            return CLEW_EINVAL;
        }
        w->ord_of[w->by_id[i]] = i;
    }

    /* pass 1 */
    size_t max_spans = 0;
    for (size_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_block_trace *t = &w->traces[i];
        if (t->n_spans > max_spans) {
            max_spans = t->n_spans;
        }
        for (size_t j = 0; rc == CLEW_OK && j < t->n_spans; j++) {
            rc = pass1_span(w, t->spans[j]);
        }
        /* start of the trace, for the page order */
        uint64_t t0 = UINT64_MAX;
        for (size_t j = 0; j < t->n_spans; j++) {
            if (t->spans[j]->start_ns < t0) {
                t0 = t->spans[j]->start_ns;
            }
        }
        w->sums[w->ord_of[i]].start = t0;
    }
    /* the block's value dictionary */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t ord = 0; rc == CLEW_OK && ord < n; ord++) {
            rc = count_trace(w, ord, pass, true);
        }
    }
    if (rc == CLEW_OK) {
        w->n_values = ctab_assign(&w->gc, GLOBAL_MIN, true);
    }
    if (rc == CLEW_OK) {
        rc = sort_table(&w->keys, &w->key_order, &w->key_remap);
    }
    if (rc == CLEW_OK) {
        rc = sort_table(&w->services, &w->svc_order, &w->svc_remap);
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    w->key_flags = clew__calloc(w->keys.n ? w->keys.n : 1, 1);
    w->res_service = clew__calloc(w->resources.n ? w->resources.n : 1, sizeof(uint32_t));
    if (w->key_flags == NULL || w->res_service == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < w->resources.n; i++) {
        clew_str svc = clew__resource_service(w->resources.objs[i]);
        uint32_t sid;
        rc = itab_put(&w->services, &svc, &sid, NULL);
        if (rc != CLEW_OK) {
            return rc;
        }
        w->res_service[i] = w->svc_remap[sid];
    }

    rc = w->io->open_file(w->io, tmp_path,
                          CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE | CLEW_FILEIO_TRUNC, &w->fd);
    if (rc != CLEW_OK) {
        return fail(w, rc, "creating the temporary file");
    }
    w->fd_open = true;
    uint8_t hdr[BLK_HEADER_SIZE];
    blk_put_u64(hdr, BLK_MAGIC);
    blk_put_u32(hdr + 8, CLEW_BLOCK_VERSION);
    blk_put_u32(hdr + 12, 0);
    rc = w->io->pwrite_all(w->io, w->fd, hdr, sizeof(hdr), 0);
    if (rc != CLEW_OK) {
        return fail(w, rc, "writing the header");
    }
    w->off = BLK_HEADER_SIZE;

    /* pass 2: pages in start-time order */
    start_idx *by_start = clew__calloc(n, sizeof(*by_start));
    w->refs = clew__calloc(max_spans, sizeof(span_ref));
    w->by_sid = clew__calloc(max_spans, sizeof(span_ref));
    span_ref *refs = w->refs, *by_sid = w->by_sid;
    if (by_start == NULL || refs == NULL || by_sid == NULL) {
        rc = CLEW_ENOMEM;
    }
    if (rc == CLEW_OK) {
        for (uint32_t i = 0; i < n; i++) {
            by_start[i].start = w->sums[i].start;
            by_start[i].ord = i;
        }
        qsort(by_start, n, sizeof(*by_start), start_idx_cmp);
    }
    for (size_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = write_trace(w, by_start[i].ord, refs, by_sid);
    }
    clew__free(by_start);
    if (rc == CLEW_OK) {
        rc = flush_page(w);
    }
    if (rc == CLEW_OK) {
        rc = write_sections(w);
    }
    if (rc == CLEW_OK) {
        rc = write_footer(w);
    }
    if (rc == CLEW_OK) {
        rc = w->io->fsync_file(w->io, w->fd);
        if (rc != CLEW_OK) {
            fail(w, rc, "fsync of the temporary file");
        }
    }
    if (rc == CLEW_OK) {
        rc = w->io->close_file(w->io, w->fd);
        w->fd_open = false;
    }
    return rc;
}

clew_status clew__block_write(clew_fileio *io, const char *dir, const char *id,
                              const clew_block_trace *traces, size_t n_traces,
                              const clew_block_write_options *opt, clew_error *err)
{
    if (io == NULL || dir == NULL || id == NULL || traces == NULL || n_traces == 0 ||
        n_traces > UINT32_MAX / 2) {
        clew__error_set(err, 0, "block write: no traces");
        return CLEW_EINVAL;
    }
    char blocks[4096], tmp[4096], final[4096];
    int a = snprintf(blocks, sizeof(blocks), "%s/blocks", dir);
    int b = snprintf(tmp, sizeof(tmp), "%s/blocks/%s.tmp", dir, id);
    int c = snprintf(final, sizeof(final), "%s/blocks/%s.block", dir, id);
    if (a < 0 || b < 0 || c < 0 || (size_t)c >= sizeof(final) || (size_t)b >= sizeof(tmp)) {
        clew__error_set(err, 0, "block write: path too long");
        return CLEW_EINVAL;
    }
    writer w;
    memset(&w, 0, sizeof(w));
    w.io = io;
    w.err = err;
    w.traces = traces;
    w.n_traces = n_traces;
    w.page_size = opt && opt->page_size ? opt->page_size : DEFAULT_PAGE_SIZE;
    w.level = opt && opt->zstd_level ? opt->zstd_level : DEFAULT_ZSTD_LEVEL;
    w.max_value = opt && opt->max_indexed_value ? opt->max_indexed_value : DEFAULT_MAX_VALUE;
    w.max_per_key = opt && opt->max_values_per_key ? opt->max_values_per_key : DEFAULT_MAX_PER_KEY;
    w.strings.kind = ITAB_STR;
    w.keys.kind = ITAB_STR;
    w.services.kind = ITAB_STR;
    w.resources.kind = ITAB_RESOURCE;
    w.scopes.kind = ITAB_SCOPE;
    w.pc.t.kind = ITAB_STR;
    w.gc.t.kind = ITAB_STR;
    clew__arena_init(&w.garena, 64 * 1024, 0);
    clew__arena_init(&w.parena, 64 * 1024, 0);
    clew__buf_init(&w.page, 0);
    clew__buf_init(&w.pages, 0);
    clew_status rc = run(&w, tmp);
    writer_deinit(&w);
    if (rc != CLEW_OK) {
        if (rc == CLEW_ENOMEM) {
            clew__error_set(err, 0, "block write: out of memory");
        }
        return rc;
    }
    /* the data is durable under the temporary name; now make it appear whole or not at all */
    rc = io->crash_point(io, "block.written");
    if (rc == CLEW_OK) {
        rc = io->rename_path(io, tmp, final);
    }
    if (rc == CLEW_OK) {
        rc = io->crash_point(io, "block.renamed");
    }
    if (rc == CLEW_OK) {
        rc = io->fsync_dir(io, blocks);
    }
    if (rc == CLEW_OK) {
        rc = io->crash_point(io, "block.dir_synced");
    }
    if (rc != CLEW_OK) {
        clew__error_set(err, 0, "block write: publishing %s: %s", final, clew_strerror(rc));
    }
    return rc;
}
