/*
 * src/store/embedded/block_writer.c - writes a set of complete traces as one immutable block.
 *
 * Two passes over the input. The first interns every attribute key, service, resource and
 * scope, so the key and service dictionaries can be sorted (the reader binary-searches them)
 * before any span refers to them by id, and counts the string values of the whole block for
 * its VALUES dictionary. The second encodes each trace as a columnar record into pages
 * (traces in start-time order, so a newest-first search walks pages backwards), compresses
 * each full page with zstd and writes it at once, while collecting summaries, operations and
 * search terms. The metadata sections and the footer follow the pages.
 *
 * The writer is the embedded store's ingest bottleneck, so each key and each value string
 * is hashed once: pass 1 records every span attribute's key id and value id in flat arrays
 * (a_key, a_val), and everything after that (page dictionaries, value forms, search terms)
 * works on those ids. Search terms go through a hash table from term hash to a dense id, so
 * the postings are built by counting instead of sorting every (term, trace) pair.
 *
 * What else keeps the CPU per span down (bench/block_bench.c measures it):
 *   - the head shares resources, scopes, span names and the string values that repeat, so
 *     each is first looked up by address (pcache, vcache, ncache) and hashed only when that
 *     misses; a resource the address misses is compared with the last one of the same
 *     service before its attributes are hashed;
 *   - the resource and scope of each span are found once, in pass 1 (s_res, s_scope);
 *   - the values are counted in input order (the order of the spans in memory, usually),
 *     not in trace id order;
 *   - once the VALUES dictionary is fixed, a_val refers to it directly (mark_values), so
 *     the page passes look up only the strings outside it; a page's strings are counted as
 *     its traces are queued, not in another walk when it is cut.
 */
#include "store/embedded/block.h"

#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* the writer hashes millions of short strings: inlined, XXH3 skips the call and its
 * dispatch on the length (same function, same values as the library's) */
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/buf.h"
#include "store/embedded/block_format.h"

#define DEFAULT_PAGE_SIZE (256u * 1024u)
/* zstd -2 rather than -6: pages come out about 5% larger, and their compression takes a
 * third of the time it did (it was a quarter of the writer's CPU) */
#define DEFAULT_ZSTD_LEVEL  2
#define DEFAULT_MAX_VALUE   256u
#define DEFAULT_MAX_PER_KEY 50000u

/* The capacity to grow to for `need` elements (doubling from `cap`, or `first`). */
static size_t next_cap(size_t cap, size_t need, size_t first)
{
    size_t c = cap ? cap : first;
    while (c < need) {
        c *= 2;
    }
    return c;
}

/* ---- an interning table: content -> dense id, first seen first ---- */

typedef enum itab_kind { ITAB_STR, ITAB_RESOURCE, ITAB_SCOPE } itab_kind;

/* A slot holds id + 1 in its low half (0 = empty) and the high half of the entry's hash, so
 * a probe rejects other entries without touching their hash or content (the value table of
 * a large block does not fit in the cache). */
typedef struct itab {
    itab_kind kind;
    uint64_t *slots;
    size_t n_slots; /* power of two, at least twice n */
    uint64_t *hashes;
    clew_str *strs;    /* ITAB_STR */
    const void **objs; /* ITAB_RESOURCE / ITAB_SCOPE */
    uint32_t n, cap;
} itab;

#define SLOT_TAG(h) ((h)&0xffffffff00000000ull)

static void itab_deinit(itab *t)
{
    clew__free(t->slots);
    clew__free(t->hashes);
    clew__free(t->strs);
    clew__free(t->objs);
    memset(t, 0, sizeof(*t));
}

static uint64_t str_hash(clew_str s)
{
    return XXH3_64bits(s.ptr != NULL ? s.ptr : "", s.len);
}

/* Whether n bytes at a and b are equal: the same pointer (the head shares strings) or,
 * for the short strings that most keys and values are, two overlapping loads each side
 * instead of a call to memcmp. */
static bool same_bytes(const char *a, const char *b, size_t n)
{
    return a == b || clew__bytes_eq(a, b, n);
}

static bool itab_eq(const itab *t, uint32_t id, const void *obj)
{
    switch (t->kind) {
    case ITAB_STR: {
        const clew_str *s = obj;
        return t->strs[id].len == s->len && same_bytes(t->strs[id].ptr, s->ptr, s->len);
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
        if (t->cap > UINT32_MAX / 8) {
            return CLEW_ENOMEM; /* ids stay below 2^30: a_val keeps two flag bits */
        }
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
        uint64_t *slots = clew__calloc(ns, sizeof(*slots));
        if (slots == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t id = 0; id < t->n; id++) {
            size_t i = t->hashes[id] & (ns - 1);
            while (slots[i] != 0) {
                i = (i + 1) & (ns - 1);
            }
            slots[i] = SLOT_TAG(t->hashes[id]) | (id + 1u);
        }
        clew__free(t->slots);
        t->slots = slots;
        t->n_slots = ns;
    }
    return CLEW_OK;
}

/* Looks `obj` with hash h up: its id, or false. */
static bool itab_find_h(const itab *t, const void *obj, uint64_t h, uint32_t *out_id)
{
    if (t->n_slots == 0) {
        return false;
    }
    size_t mask = t->n_slots - 1;
    for (size_t i = h & mask; t->slots[i] != 0; i = (i + 1) & mask) {
        uint64_t s = t->slots[i];
        if (SLOT_TAG(s) == SLOT_TAG(h)) {
            /* 32 bits of hash matched: compare the content without another lookup */
            uint32_t id = (uint32_t)s - 1;
            if (itab_eq(t, id, obj)) {
                *out_id = id;
                return true;
            }
        }
    }
    return false;
}

/* Looks a string up without interning it: its id, or false. */
static bool itab_find_str(const itab *t, clew_str s, uint32_t *out_id)
{
    return itab_find_h(t, &s, str_hash(s), out_id);
}

/* Interns `obj` (a clew_str *, clew_resource * or clew_scope *; borrowed for the writer's
 * lifetime) with its hash h already computed, and writes its id. */
static clew_status itab_put_h(itab *t, const void *obj, uint64_t h, uint32_t *out_id, bool *out_new)
{
    if (itab_find_h(t, obj, h, out_id)) {
        if (out_new != NULL) {
            *out_new = false;
        }
        return CLEW_OK;
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
    t->slots[i] = SLOT_TAG(h) | (id + 1u);
    *out_id = id;
    if (out_new != NULL) {
        *out_new = true;
    }
    return CLEW_OK;
}

static clew_status itab_put(itab *t, const void *obj, uint32_t *out_id, bool *out_new)
{
    uint64_t h;
    if (t->kind == ITAB_STR) {
        h = str_hash(*(const clew_str *)obj);
    } else if (t->kind == ITAB_RESOURCE) {
        h = clew__resource_hash(obj);
    } else {
        h = clew__scope_hash(obj);
    }
    return itab_put_h(t, obj, h, out_id, out_new);
}

/* ---- the block's value strings: an itab with counts and the per-string caches ----
 *
 * Every string value of the block (and every skeleton the writer looks at) gets one id here,
 * hashed once when first met. Later passes reach a value by that id through the per
 * attribute array `a_val`, never by hashing its text again. */

#define NONE32 UINT32_MAX
/* a_val once the VALUES dictionary is fixed (mark_values; gc ids and indexes stay below
 * 2^30, see itab_grow): a string in it is AV_VALUES | its index there; a string that occurs
 * once in the block is AV_ONCE | the gc id of its skeleton (AV_NOSKEL: none); any other
 * string keeps its gc id. NONE32 has both bits. */
#define AV_VALUES 0x80000000u
#define AV_ONCE   0x40000000u
#define AV_FLAGS  (AV_VALUES | AV_ONCE)
#define AV_NOSKEL (AV_ONCE - 1u)

/* skel[] values: not computed yet, no skeleton (no digits, too many runs, empty) */
#define SKEL_UNKNOWN 0u
#define SKEL_NONE    1u

/* One value string's fields, together: the passes read several of them at once, and the
 * table of a large block does not fit in the cache. */
typedef struct gent {
    uint32_t count; /* occurrences */
    uint32_t index; /* VALUES index + 1, 0 = not in VALUES */
    uint32_t ntr;   /* distinct traces it occurs in */
    uint32_t last;  /* the last trace (ordinal + 1) it occurred in */
    uint32_t skel;  /* id of its skeleton + 2, or SKEL_UNKNOWN / SKEL_NONE */
    uint32_t tkey;  /* key id + 1 (first-seen) that `tid` was computed for, 0 = none */
    uint32_t tid;   /* search term id of (tkey, this string), NONE32 = not indexed */
    uint32_t pmap;  /* entry in the page table + 1 while a page is cut, 0 = none */
} gent;

typedef struct ctab {
    itab t;
    gent *e; /* by id */
    size_t cap;
} ctab;

static void ctab_deinit(ctab *c)
{
    clew__free(c->e);
    c->e = NULL;
    itab_deinit(&c->t);
    c->cap = 0;
}

/* Makes room for id and zeroes a new entry's fields. */
static clew_status ctab_slot(ctab *c, uint32_t id, bool is_new)
{
    if (id >= c->cap) {
        size_t cap = next_cap(c->cap, (size_t)id + 1, 1024);
        gent *e = clew__realloc(c->e, cap * sizeof(*e));
        if (e == NULL) {
            return CLEW_ENOMEM;
        }
        c->e = e;
        c->cap = cap;
    }
    if (is_new) {
        gent *g = &c->e[id];
        memset(g, 0, sizeof(*g));
        g->skel = SKEL_UNKNOWN;
        g->tid = NONE32;
    }
    return CLEW_OK;
}

/* The id of `s` (borrowed: it must outlive the writer), added uncounted when new. */
static clew_status ctab_intern_h(ctab *c, clew_str s, uint64_t h, uint32_t *out_id)
{
    bool is_new;
    clew_status rc = itab_put_h(&c->t, &s, h, out_id, &is_new);
    if (rc == CLEW_OK) {
        rc = ctab_slot(c, *out_id, is_new);
    }
    return rc;
}

/* Counts one occurrence of entry `id` in trace `ord`. */
static void ctab_count_id(ctab *c, uint32_t id, uint32_t ord)
{
    gent *g = &c->e[id];
    g->count++;
    if (g->last != ord + 1) {
        g->last = ord + 1;
        g->ntr++;
    }
}

static clew_status ctab_add(ctab *c, clew_str str, uint32_t ord, uint32_t *out_id)
{
    uint32_t id;
    clew_status rc = ctab_intern_h(c, str, str_hash(str), &id);
    if (rc != CLEW_OK) {
        return rc;
    }
    ctab_count_id(c, id, ord);
    if (out_id != NULL) {
        *out_id = id;
    }
    return CLEW_OK;
}

/* Like ctab_intern_h for a string in scratch memory: copied into `a` when it is new. */
static clew_status ctab_intern_copy(ctab *c, clew_arena *a, clew_str s, uint32_t *out_id)
{
    uint64_t h = str_hash(s);
    if (itab_find_h(&c->t, &s, h, out_id)) {
        return CLEW_OK;
    }
    clew_str copy = clew__arena_strdup(a, s.ptr, s.len);
    if (copy.ptr == NULL) {
        return CLEW_ENOMEM;
    }
    return ctab_intern_h(c, copy, h, out_id);
}

/* Gives a VALUES index to every string seen in at least `min` distinct traces; returns how
 * many got one. */
static uint32_t ctab_assign(ctab *c, uint32_t min)
{
    uint32_t n = 0;
    for (uint32_t id = 0; id < c->t.n; id++) {
        c->e[id].index = c->e[id].ntr >= min ? ++n : 0;
    }
    return n;
}

/* A direct-mapped cache from resource/scope pointer to id: spans share their resource and
 * scope pointers, so most lookups skip hashing the attributes. */
#define PCACHE_SIZE 256

/* Behind it, a direct-mapped cache from the hash of a resource's service name (a scope's
 * name) to the id last interned under it: when every trace comes with its own copies (a
 * compaction reads its traces back from blocks), the pointers change from trace to trace
 * while the content repeats. A hit costs a short hash and one comparison instead of hashing
 * every attribute. */
#define CCACHE_SIZE 1024

typedef struct pcache {
    const void *ptr[PCACHE_SIZE];
    uint32_t id[PCACHE_SIZE];
    uint32_t by_name[CCACHE_SIZE]; /* id + 1, 0 = empty */
} pcache;

static clew_status itab_put_cached(itab *t, pcache *c, const void *obj, uint32_t *out_id,
                                   bool *out_new)
{
    size_t slot = ((uintptr_t)obj >> 4) & (PCACHE_SIZE - 1);
    *out_new = false;
    if (c->ptr[slot] == obj) {
        *out_id = c->id[slot];
        return CLEW_OK;
    }
    clew_str name =
        t->kind == ITAB_RESOURCE ? clew__resource_service(obj) : ((const clew_scope *)obj)->name;
    size_t ns = str_hash(name) & (CCACHE_SIZE - 1);
    uint32_t cand = c->by_name[ns];
    clew_status rc = CLEW_OK;
    if (cand != 0 && itab_eq(t, cand - 1, obj)) {
        *out_id = cand - 1;
    } else {
        rc = itab_put(t, obj, out_id, out_new);
    }
    if (rc == CLEW_OK) {
        c->ptr[slot] = obj;
        c->id[slot] = *out_id;
        c->by_name[ns] = *out_id + 1;
    }
    return rc;
}

/* ---- writer state ---- */
typedef struct op_triple {
    uint32_t service; /* service index (sorted) */
    uint32_t name;    /* string id */
    uint32_t kind;
} op_triple;

/* ---- writer state ---- */

typedef struct summary {
    uint64_t start, duration;
    uint32_t root_service, root_op, span_count, error_count;
    uint8_t state;
    uint32_t kept_reason, tenant;
    double adjusted;
    uint32_t page, offset;
    uint32_t svc_first, svc_n; /* into w->trace_svcs */
    /* the trace's search terms: occ[occ_first, + occ_n) has its attribute terms (recorded
     * while the values are counted), occ[occ2_first, + occ2_n) its service and operation
     * terms (recorded when it is written) */
    size_t occ_first, occ2_first;
    uint32_t occ_n, occ2_n;
    size_t est; /* rough raw size: 32 a span, 2 + the value's length (8 if not a string) an
                 * attribute; counted in count_global, where the attributes are read anyway */
} summary;

/* Per STRINGS id of a span name: its search terms and the last operation recorded. */
typedef struct name_cache {
    uint32_t op_term;  /* OP term id + 1, 0 = not computed */
    uint32_t sop_svc;  /* service index + 1 that sop_term is for */
    uint32_t sop_term; /* SERVICE_OP term id */
    uint32_t op_svc;   /* service index + 1 of the operations added ... */
    uint32_t op_kinds; /* ... and their kinds, one bit each */
} name_cache;

/* A slot of the term table: the term hash and its id + 1 (0 = empty). */
typedef struct term_slot {
    uint64_t hash;
    uint32_t t;
} term_slot;

/* A cached term of a fixed-size value: per key and letter slot + 1, the value's bytes. */
typedef struct fixed_term {
    uint64_t bits;
    uint32_t slot;
    uint32_t t; /* term id + 1, 0 = empty */
} fixed_term;

#define FIXED_TERMS_LOG 12

/* A direct-mapped cache from a value string's address and length to its gc id: the head
 * shares the strings of the values that repeat (a route, a user agent), so most of them
 * are found here without hashing or comparing their text. The input is borrowed and
 * unchanged while the writer runs, so the same address and length is the same string. */
typedef struct vcache_ent {
    const char *ptr;
    uint32_t len;
    uint32_t id;
} vcache_ent;

#define VCACHE_LOG  12
#define NCACHE_SIZE 256u

static size_t vcache_slot(const char *p)
{
    return (size_t)(((uintptr_t)p * 0x9e3779b97f4a7c15ull) >> (64 - VCACHE_LOG));
}

/* Letters of the indexed value forms, for the per-key seed cache. */
#define N_LETTERS 5

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
    uint8_t *key_flags;  /* by first-seen id during the walk, by sorted id after */
    uint32_t *svc_remap, *svc_order;
    uint32_t *res_service; /* resource id -> sorted service index */

    const clew_block_trace *traces;
    size_t n_traces;
    uint32_t *by_id;  /* ordinal -> input index (trace id order) */
    uint32_t *ord_of; /* input index -> ordinal */
    summary *sums;    /* by ordinal */
    uint32_t *trace_svcs;
    size_t n_trace_svcs, cap_trace_svcs;

    /* Per span and per span attribute, so that each key and value is hashed once. A span's
     * global index is span_base[input trace index] + its index in the trace; its attributes
     * are attr_base[span] .. attr_base[span + 1]. */
    size_t *span_base;
    size_t *attr_base;
    size_t n_spans_in, n_attrs, cap_attrs; /* n_attrs: so far, while the spans are walked */
    uint32_t *a_key;                       /* key id: first-seen in pass 1, sorted afterwards */
    /* gc id of a string value, NONE32 for other types; once the VALUES dictionary is
     * fixed, flagged as AV_VALUES says */
    uint32_t *a_val;
    /* by span_base[trace] + position in start order */
    uint32_t *s_idx;  /* the span's index in its trace */
    uint32_t *s_par;  /* its code in the parents column */
    uint32_t *s_name; /* STRINGS id of its name */
    /* by global span index (input order): resource and scope ids, found in pass 1 */
    uint32_t *s_res, *s_scope;

    /* search terms: a hash table from term hash to a dense term id; a trace's distinct
     * terms are appended to occ (see summary) */
    uint64_t *tt_hash;
    uint32_t *tt_key;  /* key id of an attribute term (as key_flags), NONE32 otherwise */
    uint32_t *tt_last; /* last ordinal + 1 the term was seen in */
    uint32_t *tt_cnt;  /* distinct traces */
    struct term_slot *tt_slots;
    size_t n_tt, cap_tt, n_tt_slots;
    /* per key, by first-seen id while the spans are walked (key_flags by sorted id after) */
    uint32_t *key_distinct; /* its attribute terms so far */
    size_t cap_keys;        /* of key_flags, key_distinct, kseed / N_LETTERS, kseed_ok */
    size_t key_cap;         /* more distinct values than this: the key is UNINDEXED */
    uint32_t *occ;
    size_t n_occ, cap_occ;
    uint64_t *kseed;    /* per key and letter: the seed of its attribute terms */
    uint8_t *kseed_ok;  /* same index: 1 when computed */
    uint32_t *svc_term; /* per sorted service: SERVICE term id + 1 */
    fixed_term *fixed_terms;
    vcache_ent *vcache;             /* 1 << VCACHE_LOG entries */
    vcache_ent ncache[NCACHE_SIZE]; /* span names */
    name_cache *names;              /* by STRINGS id */
    size_t cap_names;
    uint32_t *res_tfirst, *res_tn; /* per resource: its terms in res_terms, n = NONE32 unset */
    size_t cap_res;
    uint32_t *res_terms;
    size_t n_res_terms, cap_res_terms;

    op_triple *ops; /* distinct (op_slots finds them) */
    size_t n_ops, cap_ops;
    uint32_t *op_slots; /* index in ops + 1, 0 = empty; a power of two, at least 2 n_ops */
    size_t n_op_slots;

    /* the page being filled: its traces (ordinals) wait here until the page is cut, so
     * that its dictionary can hold exactly the strings that repeat inside it */
    uint32_t *pend;
    size_t n_pend, cap_pend;
    size_t page_est; /* rough raw size of the pending traces */
    /* strings of the pending traces not in VALUES, by gc id (gc.pmap points back here) */
    uint32_t *pc_gid, *pc_count, *pc_index;
    size_t n_pc, cap_pc;
    ctab gc; /* string values of the whole block: the VALUES dictionary */
    uint32_t n_values;
    clew_arena garena; /* skeleton strings interned in gc */
    char *skbuf;       /* scratch for one skeleton */
    size_t skcap;
    /* scratch for one trace's span attributes */
    struct vform *forms;
    uint32_t *perm, *touched, *kcount;
    const clew_value **avals;
    uint32_t *akeys;
    size_t cap_aref;
    struct span_key *skeys; /* scratch for sorting one trace's spans */
    uint64_t *th;           /* scratch for one trace's value hashes ... */
    uint32_t *tcand;        /* ... and their likely table entries */
    size_t cap_th;
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

/* Grows a u32 array with its own capacity to hold at least `need` elements. */
static clew_status grow_u32(uint32_t **p, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return CLEW_OK;
    }
    size_t c = next_cap(*cap, need, 1024);
    uint32_t *q = clew__realloc(*p, c * sizeof(*q));
    if (q == NULL) {
        return CLEW_ENOMEM;
    }
    *p = q;
    *cap = c;
    return CLEW_OK;
}
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

/* Interns the keys of `a`; writes their ids to out[] when out is not NULL. Consecutive spans
 * usually carry the same keys in the same order (one instrumentation, one code path), so
 * a key equal to the one at the same position of the previous span reuses its id without
 * hashing. */
static clew_status intern_attr_keys(writer *w, const clew_attrs *a, uint32_t *out,
                                    const clew_attrs *prev, const uint32_t *prev_ids)
{
    for (uint32_t i = 0; i < a->n; i++) {
        clew_str k = a->items[i].key;
        uint32_t id;
        if (prev != NULL && i < prev->n && prev->items[i].key.len == k.len &&
            same_bytes(prev->items[i].key.ptr, k.ptr, k.len)) {
            id = prev_ids[i];
        } else {
            clew_status rc = itab_put(&w->keys, &k, &id, NULL);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
        if (out != NULL) {
            out[i] = id;
        }
    }
    return CLEW_OK;
}

/* `gs` is the span's global index; `prev` the span interned before it (or NULL). */
static clew_status pass1_span(writer *w, const clew_span_data *sp, size_t gs,
                              const clew_span_data *prev, size_t prev_gs)
{
    uint32_t id;
    bool is_new;
    clew_status rc = itab_put_cached(&w->resources, &w->res_cache, sp->resource, &id, &is_new);
    if (rc == CLEW_OK) {
        w->s_res[gs] = id;
    }
    if (rc == CLEW_OK && is_new) {
        clew_str svc = clew__resource_service(sp->resource);
        uint32_t sid;
        rc = itab_put(&w->services, &svc, &sid, NULL);
    }
    if (rc == CLEW_OK && is_new) {
        rc = intern_attr_keys(w, &sp->resource->attrs, NULL, NULL, NULL);
    }
    if (rc == CLEW_OK) {
        rc = itab_put_cached(&w->scopes, &w->scope_cache, sp->scope, &id, &is_new);
    }
    if (rc == CLEW_OK) {
        w->s_scope[gs] = id;
    }
    if (rc == CLEW_OK && is_new) {
        rc = intern_attr_keys(w, &sp->scope->attrs, NULL, NULL, NULL);
    }
    if (rc == CLEW_OK) {
        rc = intern_attr_keys(w, &sp->attrs, &w->a_key[w->attr_base[gs]],
                              prev != NULL ? &prev->attrs : NULL,
                              prev != NULL ? &w->a_key[w->attr_base[prev_gs]] : NULL);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < sp->n_events; i++) {
        rc = intern_attr_keys(w, &sp->events[i].attrs, NULL, NULL, NULL);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < sp->n_links; i++) {
        rc = intern_attr_keys(w, &sp->links[i].attrs, NULL, NULL, NULL);
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

/* str_id of a span name, through a cache by address like the values' (the head shares the
 * names of its operations). */
static clew_status name_id(writer *w, clew_str s, uint32_t *out)
{
    vcache_ent *ve = &w->ncache[vcache_slot(s.ptr) & (NCACHE_SIZE - 1)];
    if (ve->ptr == s.ptr && ve->len == s.len && s.ptr != NULL) {
        *out = ve->id;
        return CLEW_OK;
    }
    clew_status rc = str_id(w, s, out);
    if (rc == CLEW_OK && s.len <= UINT32_MAX) {
        ve->ptr = s.ptr;
        ve->len = (uint32_t)s.len;
        ve->id = *out;
    }
    return rc;
}

/* ---- search terms ----
 *
 * A term is met once per span that has it, so terms are kept in a hash table from the term
 * hash to a dense id, and a trace records each of its distinct terms once (tt_last). The
 * hashes themselves are cached where they repeat: per value string and key, per service,
 * per span name, per resource. */

/* The id of the term with hash h; `key` is the key id of an attribute term (first-seen: terms
 * are made during the walk over the spans), NONE32 for the others. */
static clew_status term_get(writer *w, uint64_t h, uint32_t key, uint32_t *out)
{
    if (w->n_tt_slots > 0) {
        size_t mask = w->n_tt_slots - 1;
        for (size_t i = h & mask; w->tt_slots[i].t != 0; i = (i + 1) & mask) {
            if (w->tt_slots[i].hash == h) {
                *out = w->tt_slots[i].t - 1;
                return CLEW_OK;
            }
        }
    }
    if (w->n_tt >= UINT32_MAX - 1) {
        return CLEW_ENOMEM;
    }
    if (w->n_tt == w->cap_tt) {
        size_t cap = next_cap(w->cap_tt, w->n_tt + 1, 4096);
        uint64_t *hs = clew__realloc(w->tt_hash, cap * sizeof(*hs));
        if (hs == NULL) {
            return CLEW_ENOMEM;
        }
        w->tt_hash = hs;
        uint32_t **arrs[3] = {&w->tt_key, &w->tt_last, &w->tt_cnt};
        for (int k = 0; k < 3; k++) {
            uint32_t *p = clew__realloc(*arrs[k], cap * sizeof(*p));
            if (p == NULL) {
                return CLEW_ENOMEM;
            }
            *arrs[k] = p;
        }
        w->cap_tt = cap;
    }
    if ((w->n_tt + 1) * 2 > w->n_tt_slots) {
        size_t ns = w->n_tt_slots ? w->n_tt_slots * 2 : 8192;
        term_slot *slots = clew__calloc(ns, sizeof(*slots));
        if (slots == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t t = 0; t < w->n_tt; t++) {
            size_t i = w->tt_hash[t] & (ns - 1);
            while (slots[i].t != 0) {
                i = (i + 1) & (ns - 1);
            }
            slots[i].hash = w->tt_hash[t];
            slots[i].t = t + 1;
        }
        clew__free(w->tt_slots);
        w->tt_slots = slots;
        w->n_tt_slots = ns;
    }
    uint32_t t = (uint32_t)w->n_tt++;
    w->tt_hash[t] = h;
    w->tt_key[t] = key;
    w->tt_last[t] = 0;
    w->tt_cnt[t] = 0;
    size_t i = h & (w->n_tt_slots - 1);
    while (w->tt_slots[i].t != 0) {
        i = (i + 1) & (w->n_tt_slots - 1);
    }
    w->tt_slots[i].hash = h;
    w->tt_slots[i].t = t + 1;
    if (key != NONE32 && ++w->key_distinct[key] > w->key_cap) {
        /* final: build_postings drops the terms of this key, so stop making them */
        w->key_flags[key] |= BLK_KEY_UNINDEXED;
    }
    *out = t;
    return CLEW_OK;
}

/* Records that trace `ord` (the one being written) has term t. */
static clew_status term_occ(writer *w, uint32_t t, uint32_t ord)
{
    if (w->tt_last[t] == ord + 1) {
        return CLEW_OK;
    }
    w->tt_last[t] = ord + 1;
    w->tt_cnt[t]++;
    if (w->n_occ == w->cap_occ) {
        clew_status rc = grow_u32(&w->occ, &w->cap_occ, w->n_occ + 1);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    w->occ[w->n_occ++] = t;
    return CLEW_OK;
}

static unsigned letter_slot(unsigned letter)
{
    switch (letter) {
    case 's':
        return 0;
    case 'e':
        return 1;
    case 'b':
        return 2;
    case 'i':
        return 3;
    default:
        return 4;
    }
}

/* The term id of attribute (key kid, first-seen, value v), NONE32 when the value is not
 * indexed; `gid` is the value's gc id for a string (its term is then cached), else NONE32.
 * Sets the key's PARTIAL flag as block.md says. */
static clew_status attr_term(writer *w, uint32_t kid, const clew_value *v, uint32_t gid,
                             uint32_t *out)
{
    *out = NONE32;
    if (gid != NONE32 && w->gc.e[gid].tkey == kid + 1) {
        *out = w->gc.e[gid].tid;
        return CLEW_OK;
    }
    uint8_t tmp[8] = {0};
    const void *vb;
    size_t vlen;
    unsigned letter = clew__blk_value_term(v, tmp, &vb, &vlen);
    if (letter == 0) {
        /* bytes can match a search (by base64), so the key is only partly indexed;
         * arrays, kvlists and NaN never match, so they leave the index complete */
        if (v->type == CLEW_VALUE_BYTES) {
            w->key_flags[kid] |= BLK_KEY_PARTIAL;
        }
        return CLEW_OK;
    }
    clew_status rc = CLEW_OK;
    if (vlen > w->max_value) {
        w->key_flags[kid] |= BLK_KEY_PARTIAL;
    } else if ((w->key_flags[kid] & BLK_KEY_UNINDEXED) != 0) {
        return CLEW_OK; /* too many distinct values: its terms would be dropped */
    } else {
        /* clew__blk_term_hash with the first half (the key) cached per key and letter */
        size_t slot = (size_t)kid * N_LETTERS + letter_slot(letter);
        if (!w->kseed_ok[slot]) {
            clew_str key = w->keys.strs[kid];
            w->kseed[slot] = XXH3_64bits_withSeed(key.ptr != NULL ? key.ptr : "", key.len,
                                                  BLK_TERM_ATTR | letter << 8);
            w->kseed_ok[slot] = 1;
        }
        /* numbers and booleans repeat (status codes, ports, flags): a direct-mapped cache
         * of their terms skips the hash and the table */
        fixed_term *ft = NULL;
        uint64_t bits = 0;
        if (letter != 's') {
            memcpy(&bits, tmp, sizeof(tmp)); /* vb == tmp, the bytes beyond vlen are zero */
            uint64_t mix = (bits ^ ((uint64_t)slot << 40)) * 0x9e3779b97f4a7c15ull;
            ft = &w->fixed_terms[mix >> (64 - FIXED_TERMS_LOG)];
            if (ft->t != 0 && ft->slot == slot + 1 && ft->bits == bits) {
                *out = ft->t - 1;
                return CLEW_OK;
            }
        }
        uint64_t h = XXH3_64bits_withSeed(vb != NULL ? vb : "", vlen, w->kseed[slot]);
        rc = term_get(w, h, kid, out);
        if (rc == CLEW_OK && ft != NULL) {
            ft->bits = bits;
            ft->slot = (uint32_t)slot + 1;
            ft->t = *out + 1;
        }
    }
    if (rc == CLEW_OK && gid != NONE32) {
        w->gc.e[gid].tkey = kid + 1;
        w->gc.e[gid].tid = *out;
    }
    return rc;
}

/* The terms of a resource's attributes, computed on its first use, recorded for `ord`. */
static clew_status resource_terms(writer *w, uint32_t rid, const clew_resource *r, uint32_t ord)
{
    clew_status rc = CLEW_OK;
    if (w->res_tn[rid] == NONE32) {
        size_t first = w->n_res_terms;
        for (uint32_t i = 0; rc == CLEW_OK && i < r->attrs.n; i++) {
            const clew_kv *kv = &r->attrs.items[i];
            uint32_t kid, t;
            rc = itab_put(&w->keys, &kv->key, &kid, NULL); /* first-seen id, see run() */
            if (rc == CLEW_OK) {
                rc = attr_term(w, kid, &kv->value, NONE32, &t);
            }
            if (rc == CLEW_OK && t != NONE32) {
                rc = grow_u32(&w->res_terms, &w->cap_res_terms, w->n_res_terms + 1);
                if (rc == CLEW_OK) {
                    w->res_terms[w->n_res_terms++] = t;
                }
            }
        }
        if (rc != CLEW_OK) {
            return rc;
        }
        w->res_tfirst[rid] = (uint32_t)first;
        w->res_tn[rid] = (uint32_t)(w->n_res_terms - first);
    }
    for (uint32_t k = 0; rc == CLEW_OK && k < w->res_tn[rid]; k++) {
        rc = term_occ(w, w->res_terms[w->res_tfirst[rid] + k], ord);
    }
    return rc;
}

/* The name cache entry of STRINGS id sid (zeroed when new). */
static clew_status name_entry(writer *w, uint32_t sid, name_cache **out)
{
    if (sid >= w->cap_names) {
        size_t cap = next_cap(w->cap_names, (size_t)sid + 1, 256);
        name_cache *p = clew__realloc(w->names, cap * sizeof(*p));
        if (p == NULL) {
            return CLEW_ENOMEM;
        }
        memset(p + w->cap_names, 0, (cap - w->cap_names) * sizeof(*p));
        w->names = p;
        w->cap_names = cap;
    }
    *out = &w->names[sid];
    return CLEW_OK;
}

static size_t op_hash(uint32_t service, uint32_t name, uint32_t kind)
{
    uint64_t h = ((uint64_t)service << 32 | name) * 0x9e3779b97f4a7c15ull;
    return (size_t)((h ^ (h >> 29) ^ kind) * 0xbf58476d1ce4e5b9ull >> 20);
}

/* Adds an operation unless it is there already: span names are often shared by several
 * services (name_cache remembers one), and a list of every span's operation to sort and
 * deduplicate at the end cost as much as a large part of the pages. */
static clew_status add_op(writer *w, uint32_t service, uint32_t name, uint32_t kind)
{
    size_t mask = w->n_op_slots - 1;
    size_t i = w->n_op_slots > 0 ? op_hash(service, name, kind) & mask : 0;
    for (; w->n_op_slots > 0 && w->op_slots[i] != 0; i = (i + 1) & mask) {
        const op_triple *o = &w->ops[w->op_slots[i] - 1];
        if (o->service == service && o->name == name && o->kind == kind) {
            return CLEW_OK;
        }
    }
    if ((w->n_ops + 1) * 2 > w->n_op_slots) {
        size_t ns = w->n_op_slots ? w->n_op_slots * 2 : 1024;
        uint32_t *slots = clew__calloc(ns, sizeof(*slots));
        if (slots == NULL || w->n_ops >= UINT32_MAX / 2) {
            clew__free(slots);
            return CLEW_ENOMEM;
        }
        for (size_t k = 0; k < w->n_ops; k++) {
            const op_triple *o = &w->ops[k];
            size_t j = op_hash(o->service, o->name, o->kind) & (ns - 1);
            while (slots[j] != 0) {
                j = (j + 1) & (ns - 1);
            }
            slots[j] = (uint32_t)k + 1;
        }
        clew__free(w->op_slots);
        w->op_slots = slots;
        w->n_op_slots = ns;
        mask = ns - 1;
        i = op_hash(service, name, kind) & mask;
        while (w->op_slots[i] != 0) {
            i = (i + 1) & mask;
        }
    }
    if (w->n_ops == w->cap_ops) {
        size_t cap = next_cap(w->cap_ops, w->n_ops + 1, 1024);
        op_triple *o = clew__realloc(w->ops, cap * sizeof(*o));
        if (o == NULL) {
            return CLEW_ENOMEM;
        }
        w->ops = o;
        w->cap_ops = cap;
    }
    w->op_slots[i] = (uint32_t)w->n_ops + 1;
    w->ops[w->n_ops].service = service;
    w->ops[w->n_ops].name = name;
    w->ops[w->n_ops].kind = kind;
    w->n_ops++;
    return CLEW_OK;
}

/* The operation and the OP / SERVICE_OP terms of one span. */
static clew_status span_name_terms(writer *w, uint32_t svc, uint32_t sid, clew_str name,
                                   uint32_t kind, uint32_t ord)
{
    name_cache *nc;
    clew_status rc = name_entry(w, sid, &nc);
    if (rc != CLEW_OK) {
        return rc;
    }
    uint32_t bit = kind < 32 ? 1u << kind : 0;
    if (nc->op_svc != svc + 1) {
        nc->op_svc = svc + 1;
        nc->op_kinds = 0;
    }
    if ((nc->op_kinds & bit) == 0 || bit == 0) {
        /* the cache holds one service per name: add_op finds the operations of a name
         * shared by several services */
        nc->op_kinds |= bit;
        rc = add_op(w, svc, sid, kind);
    }
    if (rc == CLEW_OK && nc->sop_svc != svc + 1) {
        clew_str svc_name = w->services.strs[w->svc_order[svc]];
        rc = term_get(w, clew__blk_term_hash(BLK_TERM_SERVICE_OP, svc_name, name.ptr, name.len),
                      NONE32, &nc->sop_term);
        if (rc == CLEW_OK) {
            nc->sop_svc = svc + 1;
        }
    }
    if (rc == CLEW_OK) {
        rc = term_occ(w, nc->sop_term, ord);
    }
    if (rc == CLEW_OK && nc->op_term == 0) {
        uint32_t t;
        rc = term_get(w, clew__blk_term_hash(BLK_TERM_OP, name, NULL, 0), NONE32, &t);
        if (rc == CLEW_OK) {
            nc->op_term = t + 1;
        }
    }
    if (rc == CLEW_OK) {
        rc = term_occ(w, nc->op_term - 1, ord);
    }
    return rc;
}

static clew_status service_term(writer *w, uint32_t svc, uint32_t ord)
{
    if (w->svc_term[svc] == 0) {
        uint32_t t;
        clew_str svc_name = w->services.strs[w->svc_order[svc]];
        clew_status rc =
            term_get(w, clew__blk_term_hash(BLK_TERM_SERVICE, svc_name, NULL, 0), NONE32, &t);
        if (rc != CLEW_OK) {
            return rc;
        }
        w->svc_term[svc] = t + 1;
    }
    return term_occ(w, w->svc_term[svc] - 1, ord);
}

/* ---- value dictionaries ----
 *
 * Strings that repeat across the block (SQL statements, routes, user agents) go to the
 * block's VALUES dictionary once; strings that repeat only inside one page (a request id on
 * every span of a trace) go to that page's dictionary. A string seen once whose skeleton (its
 * text with the digit runs taken out, see clew__blk_skeleton) repeats is written as the
 * skeleton's index plus its numbers. */

#define GLOBAL_MIN 3u /* distinct traces a string must occur in for the VALUES dictionary */

static clew_status reserve_skbuf(writer *w, size_t n)
{
    if (n <= w->skcap) {
        return CLEW_OK;
    }
    size_t cap = next_cap(w->skcap, n, 256);
    char *p = clew__realloc(w->skbuf, cap);
    if (p == NULL) {
        return CLEW_ENOMEM;
    }
    w->skbuf = p;
    w->skcap = cap;
    return CLEW_OK;
}

/* The gc id of the skeleton of string gid (interned when new, cached per string), NONE32
 * when it has none. `counted`: also count one occurrence of the skeleton in trace `ord`. */
static clew_status skel_of(writer *w, uint32_t gid, bool counted, uint32_t ord, uint32_t *out)
{
    uint32_t c = w->gc.e[gid].skel;
    if (c == SKEL_UNKNOWN) {
        clew_str s = w->gc.t.strs[gid];
        c = SKEL_NONE;
        if (s.len > 0) {
            clew_status rc = reserve_skbuf(w, s.len);
            if (rc != CLEW_OK) {
                return rc;
            }
            uint64_t nums[BLK_MAX_RUNS];
            uint8_t widths[BLK_MAX_RUNS];
            clew_str skel = {w->skbuf, 0};
            if (clew__blk_skeleton(s, w->skbuf, &skel.len, nums, widths) > 0) {
                uint32_t sg;
                rc = ctab_intern_copy(&w->gc, &w->garena, skel, &sg);
                if (rc != CLEW_OK) {
                    return rc;
                }
                c = sg + 2;
            }
        }
        w->gc.e[gid].skel = c;
    }
    *out = c == SKEL_NONE ? NONE32 : c - 2;
    if (counted && *out != NONE32) {
        ctab_count_id(&w->gc, *out, ord);
    }
    return CLEW_OK;
}

/* Block-wide counting of event and link attribute values (span attributes take the fast
 * path in count_global). */
static clew_status count_attrs_global(writer *w, const clew_attrs *a, uint32_t ord)
{
    for (uint32_t i = 0; i < a->n; i++) {
        const clew_value *v = &a->items[i].value;
        if (v->type == CLEW_VALUE_STRING) {
            clew_status rc = ctab_add(&w->gc, v->u.s, ord, NULL);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
    }
    return CLEW_OK;
}

/* The candidate entry of hash h in table t: the first slot on its probe path with the same
 * tag (a hint, not a match), or NONE32. */
static uint32_t itab_candidate(const itab *t, uint64_t h)
{
    if (t->n_slots == 0) {
        return NONE32;
    }
    size_t mask = t->n_slots - 1;
    for (size_t i = h & mask; t->slots[i] != 0; i = (i + 1) & mask) {
        if (SLOT_TAG(t->slots[i]) == SLOT_TAG(h)) {
            return (uint32_t)t->slots[i] - 1;
        }
    }
    return NONE32;
}

/* Pass 0 of the VALUES dictionary for trace `ord`: adds every string value to gc and
 * records its id in a_val (span attributes) in the order span attributes, then that span's
 * events and links; records the trace's attribute search terms and its rough page size on
 * the way. A value whose address is in vcache has its id at once. The table is larger than
 * the caches, so the other lookups are prepared for the whole trace first: hash every such
 * span attribute value and prefetch its slot, then the entry and text the slot points at,
 * and only then intern them in order. */
static clew_status count_global(writer *w, uint32_t ord)
{
    size_t ti = w->by_id[ord];
    const clew_block_trace *t = &w->traces[ti];
    size_t a0 = w->attr_base[w->span_base[ti]];
    size_t na = w->attr_base[w->span_base[ti + 1]] - a0;
    if (na > w->cap_th) {
        size_t cap = next_cap(w->cap_th, na, 256);
        uint64_t *h = clew__realloc(w->th, cap * sizeof(*h));
        if (h == NULL) {
            return CLEW_ENOMEM;
        }
        w->th = h;
        uint32_t *c = clew__realloc(w->tcand, cap * sizeof(*c));
        if (c == NULL) {
            return CLEW_ENOMEM;
        }
        w->tcand = c;
        w->cap_th = cap;
    }
    const itab *gt = &w->gc.t;
    const vcache_ent *vc = w->vcache;
    for (size_t j = 0; j < t->n_spans; j++) {
        const clew_attrs *a = &t->spans[j]->attrs;
        size_t ab = w->attr_base[w->span_base[ti] + j] - a0;
        for (uint32_t k = 0; k < a->n; k++) {
            if (a->items[k].value.type == CLEW_VALUE_STRING) {
                clew_str v = a->items[k].value.u.s;
                const vcache_ent *ve = &vc[vcache_slot(v.ptr)];
                if (ve->ptr == v.ptr && ve->len == v.len && v.ptr != NULL) {
                    w->a_val[a0 + ab + k] = ve->id; /* found: no hash, no lookup */
                    continue;
                }
                uint64_t h = str_hash(v);
                w->th[ab + k] = h;
                if (gt->n_slots > 0) {
                    __builtin_prefetch(&gt->slots[h & (gt->n_slots - 1)]);
                }
            }
        }
    }
    for (size_t x = 0; x < na; x++) {
        w->tcand[x] = NONE32;
    }
    for (size_t j = 0; j < t->n_spans; j++) {
        const clew_attrs *a = &t->spans[j]->attrs;
        size_t ab = w->attr_base[w->span_base[ti] + j] - a0;
        for (uint32_t k = 0; k < a->n; k++) {
            if (a->items[k].value.type == CLEW_VALUE_STRING && w->a_val[a0 + ab + k] == NONE32) {
                uint32_t c = itab_candidate(gt, w->th[ab + k]);
                w->tcand[ab + k] = c;
                if (c != NONE32) {
                    __builtin_prefetch(&gt->strs[c]);
                    __builtin_prefetch(&w->gc.e[c]);
                }
            }
        }
    }
    for (size_t x = 0; x < na; x++) {
        if (w->tcand[x] != NONE32) {
            __builtin_prefetch(gt->strs[w->tcand[x]].ptr);
        }
    }
    clew_status rc = CLEW_OK;
    w->sums[ord].occ_first = w->n_occ;
    size_t est = 32 * t->n_spans;
    for (size_t j = 0; rc == CLEW_OK && j < t->n_spans; j++) {
        const clew_span_data *sp = t->spans[j];
        size_t ab = w->attr_base[w->span_base[ti] + j];
        for (uint32_t k = 0; rc == CLEW_OK && k < sp->attrs.n; k++) {
            const clew_value *val = &sp->attrs.items[k].value;
            est += 2 + (val->type == CLEW_VALUE_STRING ? val->u.s.len : 8);
            if (val->type == CLEW_VALUE_STRING) {
                uint32_t id = w->a_val[ab + k];
                if (id == NONE32) {
                    clew_str v = sp->attrs.items[k].value.u.s;
                    rc = ctab_intern_h(&w->gc, v, w->th[ab - a0 + k], &id);
                    if (rc == CLEW_OK && v.ptr != NULL && v.len <= UINT32_MAX) {
                        vcache_ent *ve = &w->vcache[vcache_slot(v.ptr)];
                        ve->ptr = v.ptr;
                        ve->len = (uint32_t)v.len;
                        ve->id = id;
                    }
                }
                if (rc == CLEW_OK) {
                    ctab_count_id(&w->gc, id, ord);
                    w->a_val[ab + k] = id;
                }
            }
            /* the attribute's search term, while its value's entry is in the cache */
            uint32_t term;
            if (rc == CLEW_OK) {
                rc = attr_term(w, w->a_key[ab + k], &sp->attrs.items[k].value, w->a_val[ab + k],
                               &term);
            }
            if (rc == CLEW_OK && term != NONE32) {
                rc = term_occ(w, term, ord);
            }
        }
        /* the attributes of the resources the trace's spans use; each resource's terms
         * are computed once, and a trace records each term once */
        uint32_t rid = w->s_res[w->span_base[ti] + j];
        if (rc == CLEW_OK && (j == 0 || rid != w->s_res[w->span_base[ti] + j - 1])) {
            rc = resource_terms(w, rid, sp->resource, ord);
        }
        for (uint32_t e = 0; rc == CLEW_OK && e < sp->n_events; e++) {
            rc = count_attrs_global(w, &sp->events[e].attrs, ord);
        }
        for (uint32_t l = 0; rc == CLEW_OK && l < sp->n_links; l++) {
            rc = count_attrs_global(w, &sp->links[l].attrs, ord);
        }
    }
    w->sums[ord].occ_n = (uint32_t)(w->n_occ - w->sums[ord].occ_first);
    w->sums[ord].est = est;
    return rc;
}

/* Pass 1 of the VALUES dictionary: counts the skeleton of every string seen once, in the
 * order the strings were met. A string seen once occurs exactly once, and ids are given in
 * the order of first occurrence, so walking the ids in order meets them in the order a
 * second walk over the spans would, without reading the spans again; its one trace is
 * `last`. A skeleton equal to a string not yet reached raises that string's count, which
 * the walk sees, as a walk over the spans would. */
static clew_status skeletons_global(writer *w)
{
    uint32_t n0 = w->gc.t.n;
    for (uint32_t gid = 0; gid < n0; gid++) {
        if (gid + 16 < n0 && w->gc.e[gid + 16].count == 1) {
            __builtin_prefetch(w->gc.t.strs[gid + 16].ptr);
        }
        if (w->gc.e[gid].count == 1) {
            uint32_t sg;
            clew_status rc = skel_of(w, gid, true, w->gc.e[gid].last - 1, &sg);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
    }
    return CLEW_OK;
}

/* Counts one occurrence of gc string gid in the page being cut. */
static clew_status pc_add(writer *w, uint32_t gid)
{
    uint32_t p = w->gc.e[gid].pmap;
    if (p == 0) {
        if (w->n_pc == w->cap_pc) {
            size_t cap = next_cap(w->cap_pc, w->n_pc + 1, 1024);
            uint32_t **arrs[3] = {&w->pc_gid, &w->pc_count, &w->pc_index};
            for (int k = 0; k < 3; k++) {
                uint32_t *q = clew__realloc(*arrs[k], cap * sizeof(*q));
                if (q == NULL) {
                    return CLEW_ENOMEM;
                }
                *arrs[k] = q;
            }
            w->cap_pc = cap;
        }
        p = (uint32_t)w->n_pc++;
        w->pc_gid[p] = gid;
        w->pc_count[p] = 0;
        w->pc_index[p] = 0;
        w->gc.e[gid].pmap = p + 1;
    } else {
        p--;
    }
    w->pc_count[p]++;
    return CLEW_OK;
}

/* Starts loading the spans of input trace `ti` (stage 0), or their attribute arrays (stage
 * 1, once the spans are in: their addresses are in the spans), while earlier traces are
 * worked on: the cut hands the writer the head's own spans, spread over the head's memory,
 * and each pass over a trace would otherwise wait for every one of them in turn. */
static void prefetch_trace(const writer *w, size_t ti, int stage)
{
    if (ti >= w->n_traces) {
        return;
    }
    const clew_block_trace *t = &w->traces[ti];
    for (size_t j = 0; j < t->n_spans; j++) {
        const clew_span_data *sp = t->spans[j];
        if (stage == 0) {
            __builtin_prefetch(sp);
            __builtin_prefetch((const char *)sp + 64);
            __builtin_prefetch((const char *)sp + 128);
            continue;
        }
        if (sp == NULL) {
            continue; /* not checked yet: check_trace refuses it */
        }
        const char *p = (const char *)sp->attrs.items;
        size_t bytes = sp->attrs.n * sizeof(*sp->attrs.items);
        for (size_t off = 0; off < bytes; off += 64) {
            __builtin_prefetch(p + off);
        }
    }
}

/* Starts loading the value table entries of trace `ti`'s span attributes: the passes over a
 * trace look each of them up, and they are scattered over a table larger than the caches. */
static void prefetch_values(const writer *w, size_t ti)
{
    size_t a0 = w->attr_base[w->span_base[ti]];
    size_t a1 = w->attr_base[w->span_base[ti + 1]];
    for (size_t a = a0; a < a1; a++) {
        if ((w->a_val[a] & AV_FLAGS) == 0) {
            __builtin_prefetch(&w->gc.e[w->a_val[a]]);
        }
    }
}

/* After the VALUES dictionary is fixed (and the skeletons of the strings seen once are
 * known), a span attribute whose string is in it refers to its index directly, and one whose
 * string occurs nowhere else to its skeleton, so that the page passes look up only the
 * strings in between (the value table of a large block is larger than the caches, and most
 * of it is strings seen once; here the walk is in order and the entries are prefetched). */
static void mark_values(writer *w)
{
    uint32_t *av = w->a_val;
    const gent *e = w->gc.e;
    size_t n = w->n_attrs;
    for (size_t x = 0; x < n; x++) {
        if (x + 32 < n && av[x + 32] != NONE32) {
            __builtin_prefetch(&e[av[x + 32]]);
        }
        uint32_t g = av[x];
        if (g == NONE32) {
            continue;
        }
        if (e[g].index != 0) {
            av[x] = AV_VALUES | (e[g].index - 1);
        } else if (e[g].count == 1 && e[g].skel != SKEL_UNKNOWN) {
            av[x] = AV_ONCE | (e[g].skel >= 2 ? e[g].skel - 2 : AV_NOSKEL);
        }
    }
}

/* Counts the string values of trace `ord` not in VALUES for the dictionary of the page it
 * is queued for (pass 0; pass 1 is in flush_page). */
static clew_status count_page(writer *w, uint32_t ord)
{
    size_t ti = w->by_id[ord];
    const clew_block_trace *t = &w->traces[ti];
    clew_status rc = CLEW_OK;
    for (size_t j = 0; rc == CLEW_OK && j < t->n_spans; j++) {
        const clew_span_data *sp = t->spans[j];
        size_t ab = w->attr_base[w->span_base[ti] + j];
        for (uint32_t k = 0; rc == CLEW_OK && k < sp->attrs.n; k++) {
            uint32_t gid = w->a_val[ab + k];
            if ((gid & AV_FLAGS) == 0) {
                rc = pc_add(w, gid);
            } else if ((gid & AV_FLAGS) == AV_ONCE) {
                /* seen once: only its skeleton can repeat in the page (what pass 1 in
                 * flush_page does for the strings seen once in the page) */
                uint32_t sg = gid & ~AV_ONCE;
                if (sg != AV_NOSKEL && w->gc.e[sg].index == 0) {
                    rc = pc_add(w, sg);
                }
            }
        }
        for (uint32_t e = 0; e < sp->n_events + sp->n_links && rc == CLEW_OK; e++) {
            const clew_attrs *a =
                e < sp->n_events ? &sp->events[e].attrs : &sp->links[e - sp->n_events].attrs;
            for (uint32_t k = 0; rc == CLEW_OK && k < a->n; k++) {
                uint32_t gid;
                if (a->items[k].value.type == CLEW_VALUE_STRING &&
                    itab_find_str(&w->gc.t, a->items[k].value.u.s, &gid) &&
                    w->gc.e[gid].index == 0) {
                    rc = pc_add(w, gid);
                }
            }
        }
    }
    return rc;
}

/* The DICT index of gc string gid: block dictionary first, then the page's. */
static bool dict_ref_id(const writer *w, uint32_t gid, uint32_t *out)
{
    uint32_t g = w->gc.e[gid].index;
    if (g != 0) {
        *out = g - 1;
        return true;
    }
    uint32_t p = w->gc.e[gid].pmap;
    if (p != 0 && w->pc_index[p - 1] != 0) {
        *out = w->n_values + w->pc_index[p - 1] - 1;
        return true;
    }
    return false;
}

/* The str_fn of event and link attributes in pages: a string that repeats in the page is a
 * dictionary index; anything else stays inline. */
static clew_status page_str(void *ud, clew_buf *b, clew_str s, bool *done)
{
    writer *w = ud;
    uint32_t gid, idx;
    if (!itab_find_str(&w->gc.t, s, &gid) || !dict_ref_id(w, gid, &idx)) {
        return CLEW_OK;
    }
    clew_status rc = clew__buf_putc(b, (char)BLK_VALUE_DICT);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_varint(b, idx);
    }
    *done = rc == CLEW_OK;
    return rc;
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

static bool zero_span_id(const clew_span_id *id)
{
    static const uint8_t zero[8];
    return memcmp(id->bytes, zero, 8) == 0;
}

/* A 64-bit key and a position: span start times and span ids (order_spans), term hashes
 * and term numbers (build_postings), trace start times and ordinals (pages in start order). */
typedef struct span_key {
    uint64_t k;
    uint32_t pos;
} span_key;

static int span_key_cmp(const void *a, const void *b)
{
    const span_key *x = a, *y = b;
    if (x->k != y->k) {
        return x->k < y->k ? -1 : 1;
    }
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static uint64_t span_id_u64(const clew_span_id *id)
{
    uint64_t v;
    memcpy(&v, id->bytes, 8);
    return v;
}

/* Small traces are sorted by insertion (no calls through a comparison function); larger
 * ones with qsort. Both sort by (start, input index), a total order, so the result is the
 * same. */
#define SMALL_TRACE 32u

/* Orders trace t's spans by start time (ties in input order): pos[i] = input index of the
 * i-th span; then the parents column: par[i] = 0 (root), p + 1 (the p-th span in start
 * order; the first one when ids repeat), n + 1 (outside the trace). */
static void order_spans(writer *w, const clew_block_trace *t, uint32_t *pos, uint32_t *par)
{
    uint32_t n = (uint32_t)t->n_spans;
    const clew_span_data *const *sp = t->spans;
    span_key *sk = w->skeys;
    if (n <= SMALL_TRACE) {
        for (uint32_t i = 0; i < n; i++) {
            uint64_t s = sp[i]->start_ns;
            uint32_t j = i;
            while (j > 0 && sp[pos[j - 1]]->start_ns > s) {
                pos[j] = pos[j - 1];
                j--;
            }
            pos[j] = i;
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            sk[i].k = sp[i]->start_ns;
            sk[i].pos = i;
        }
        qsort(sk, n, sizeof(*sk), span_key_cmp);
        for (uint32_t i = 0; i < n; i++) {
            pos[i] = sk[i].pos;
        }
    }
    if (n > SMALL_TRACE) {
        for (uint32_t i = 0; i < n; i++) {
            sk[i].k = span_id_u64(&sp[pos[i]]->span_id);
            sk[i].pos = i;
        }
        qsort(sk, n, sizeof(*sk), span_key_cmp);
    }
    for (uint32_t i = 0; i < n; i++) {
        const clew_span_id *pid = &sp[pos[i]]->parent_span_id;
        if (zero_span_id(pid)) {
            par[i] = 0;
            continue;
        }
        uint64_t k = span_id_u64(pid);
        uint32_t hit = NONE32;
        if (n <= SMALL_TRACE) {
            for (uint32_t j = 0; j < n; j++) {
                if (span_id_u64(&sp[pos[j]]->span_id) == k) {
                    hit = j;
                    break;
                }
            }
        } else {
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (sk[mid].k < k) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if (lo < n && sk[lo].k == k) {
                hit = sk[lo].pos;
            }
        }
        par[i] = hit != NONE32 ? hit + 1 : n + 1;
    }
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

/* `gid`: the gc id of a string value. */
static clew_status choose_form(writer *w, const clew_value *v, uint32_t gid, vform *f)
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
    if ((gid & AV_FLAGS) == AV_VALUES) {
        f->tag = BLK_VALUE_DICT;
        f->a = gid & ~AV_VALUES;
        return CLEW_OK;
    }
    if ((gid & AV_FLAGS) == AV_ONCE) {
        /* seen once in the block: inline, or its skeleton's index and its numbers */
        uint32_t sg = gid & ~AV_ONCE;
        if (v->u.s.len == 0 || sg == AV_NOSKEL || !dict_ref_id(w, sg, &idx)) {
            return CLEW_OK;
        }
        clew_status rc = reserve_skbuf(w, v->u.s.len);
        if (rc != CLEW_OK) {
            return rc;
        }
        size_t len;
        f->runs = clew__blk_skeleton(v->u.s, w->skbuf, &len, f->nums, f->widths);
        if (f->runs > 0) {
            f->tag = BLK_VALUE_TEMPLATE;
            f->a = idx;
        }
        return CLEW_OK;
    }
    if (dict_ref_id(w, gid, &idx)) {
        f->tag = BLK_VALUE_DICT;
        f->a = idx;
        return CLEW_OK;
    }
    uint32_t sk = w->gc.e[gid].skel;
    if (v->u.s.len == 0 || sk == SKEL_NONE || (sk >= 2 && !dict_ref_id(w, sk - 2, &idx))) {
        return CLEW_OK; /* no skeleton, or one in no dictionary: inline */
    }
    clew_status rc = reserve_skbuf(w, v->u.s.len);
    if (rc != CLEW_OK) {
        return rc;
    }
    clew_str skel = {w->skbuf, 0};
    f->runs = clew__blk_skeleton(v->u.s, w->skbuf, &skel.len, f->nums, f->widths);
    if (f->runs == 0) {
        return CLEW_OK;
    }
    /* a string seen once in its page had its skeleton interned when the page was counted;
     * otherwise look it up without interning it */
    uint32_t sg;
    bool have;
    if (w->gc.e[gid].skel >= 2) {
        sg = w->gc.e[gid].skel - 2;
        have = true;
    } else {
        have = itab_find_str(&w->gc.t, skel, &sg);
    }
    if (have && dict_ref_id(w, sg, &idx)) {
        f->tag = BLK_VALUE_TEMPLATE;
        f->a = idx;
    }
    return CLEW_OK;
}

static clew_status put_shape(clew_buf *b, const vform *f)
{
    clew_status rc = blk_buf_byte(b, (uint8_t)f->tag);
    if (rc == CLEW_OK && f->tag == BLK_VALUE_TEMPLATE) {
        rc = blk_buf_varint(b, f->a);
        for (unsigned r = 0; rc == CLEW_OK && r < f->runs; r++) {
            rc = blk_buf_byte(b, f->widths[r]);
        }
    } else if (rc == CLEW_OK && f->tag == BLK_VALUE_DECIMAL) {
        rc = blk_buf_byte(b, (uint8_t)f->scale);
    }
    return rc;
}

static clew_status put_form(clew_buf *b, const clew_value *v, const vform *f)
{
    clew_status rc = CLEW_OK;
    switch (f->tag) {
    case BLK_VALUE_DICT:
        return blk_buf_varint(b, f->a);
    case BLK_VALUE_TEMPLATE:
        for (unsigned r = 0; rc == CLEW_OK && r < f->runs; r++) {
            rc = blk_buf_varint(b, f->nums[r]);
        }
        return rc;
    case BLK_VALUE_DECIMAL:
        return blk_buf_varint(b, blk_zigzag(f->m));
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        rc = blk_buf_varint(b, v->u.s.len);
        if (rc == CLEW_OK && v->u.s.len > 0) {
            rc = blk_buf_bytes(b, v->u.s.ptr, v->u.s.len);
        }
        return rc;
    case CLEW_VALUE_BOOL:
        return blk_buf_byte(b, v->u.b ? 1 : 0);
    case CLEW_VALUE_INT:
        return blk_buf_varint(b, blk_zigzag(v->u.i));
    default:
        return clew__blk_put_payload(b, v, 0);
    }
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void sort_u32(uint32_t *a, size_t n)
{
    if (n > SMALL_TRACE) {
        qsort(a, n, sizeof(*a), u32_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint32_t x = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > x) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* Span attributes of a trace in two parts: the shape (per span: count, dropped, then key id
 * and form tag of each attribute), then the values grouped by key id, so that a key's values
 * sit together and zstd sees one run of similar bytes instead of ten interleaved ones.
 * `pos` gives the spans in start order; `gs0` is the trace's first global span index. */
static clew_status encode_span_attrs(writer *w, clew_buf *b, const clew_block_trace *t, size_t gs0,
                                     const uint32_t *pos, uint32_t n)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        total += t->spans[i]->attrs.n;
    }
    if (total > w->cap_aref) {
        size_t cap = next_cap(w->cap_aref, total, 256);
        vform *f = clew__realloc(w->forms, cap * sizeof(*f));
        if (f == NULL) {
            return CLEW_ENOMEM;
        }
        w->forms = f;
        const clew_value **av = clew__realloc(w->avals, cap * sizeof(*av));
        if (av == NULL) {
            return CLEW_ENOMEM;
        }
        w->avals = av;
        uint32_t **arrs[3] = {&w->perm, &w->touched, &w->akeys};
        for (int k = 0; k < 3; k++) {
            uint32_t *p = clew__realloc(*arrs[k], cap * sizeof(*p));
            if (p == NULL) {
                return CLEW_ENOMEM;
            }
            *arrs[k] = p;
        }
        w->cap_aref = cap;
    }
    clew_status rc = CLEW_OK;
    size_t k = 0;
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_attrs *a = &t->spans[pos[i]]->attrs;
        size_t ab = w->attr_base[gs0 + pos[i]];
        rc = blk_buf_varint(b, a->n);
        if (rc == CLEW_OK) {
            rc = blk_buf_varint(b, a->dropped);
        }
        for (uint32_t j = 0; rc == CLEW_OK && j < a->n; j++, k++) {
            uint32_t kid = w->a_key[ab + j];
            rc = choose_form(w, &a->items[j].value, w->a_val[ab + j], &w->forms[k]);
            if (rc == CLEW_OK) {
                rc = blk_buf_varint(b, kid);
            }
            if (rc == CLEW_OK) {
                rc = put_shape(b, &w->forms[k]);
            }
            w->akeys[k] = kid;
            w->avals[k] = &a->items[j].value;
        }
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    /* a stable counting sort by key id: the value column order */
    size_t nt = 0;
    for (size_t i = 0; i < total; i++) {
        if (w->kcount[w->akeys[i]]++ == 0) {
            w->touched[nt++] = w->akeys[i];
        }
    }
    sort_u32(w->touched, nt);
    uint32_t at = 0;
    for (size_t i = 0; i < nt; i++) {
        uint32_t c = w->kcount[w->touched[i]];
        w->kcount[w->touched[i]] = at;
        at += c;
    }
    for (size_t i = 0; i < total; i++) {
        w->perm[w->kcount[w->akeys[i]]++] = (uint32_t)i;
    }
    for (size_t i = 0; i < nt; i++) {
        w->kcount[w->touched[i]] = 0;
    }
    for (size_t i = 0; rc == CLEW_OK && i < total; i++) {
        uint32_t x = w->perm[i];
        rc = put_form(b, w->avals[x], &w->forms[x]);
    }
    return rc;
}

static clew_status put_inline_str(clew_buf *b, clew_str s)
{
    if (s.len == 0) {
        return CLEW_OK;
    }
    clew_status rc = blk_buf_varint(b, s.len);
    if (rc == CLEW_OK) {
        rc = blk_buf_bytes(b, s.ptr, s.len);
    }
    return rc;
}

/* Encodes trace `ord`, column by column (docs/internals/block.md, "trace record"), with
 * the span order and parents write_trace computed. */
static clew_status encode_trace(writer *w, clew_buf *b, uint32_t ord)
{
    size_t ti = w->by_id[ord];
    const clew_block_trace *t = &w->traces[ti];
    uint32_t n = (uint32_t)t->n_spans;
    size_t gs0 = w->span_base[ti];
    const uint32_t *pos = &w->s_idx[gs0];
    const uint32_t *par = &w->s_par[gs0];
    const uint32_t *names = &w->s_name[gs0];
    const clew_span_data *const *spans = t->spans;
    uint64_t t0 = spans[pos[0]]->start_ns;
    prefetch_values(w, ti);
    clew_status rc = blk_buf_varint(b, n);
    if (rc == CLEW_OK) {
        rc = blk_buf_varint(b, t0);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = blk_buf_bytes(b, spans[pos[i]]->span_id.bytes, 8);
    }
    /* parents: 0 = none (all-zero id), i + 1 = the i-th span of this trace (start order),
     * n + 1 = outside the trace (the 8 bytes follow) */
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = blk_buf_varint(b, par[i]);
        if (rc == CLEW_OK && par[i] == n + 1) {
            rc = blk_buf_bytes(b, spans[pos[i]]->parent_span_id.bytes, 8);
        }
    }
    /* starts: from the parent's start when the parent comes earlier in the trace (children
     * start soon after their parent, so the numbers are small), else from the trace start */
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = spans[pos[i]];
        uint64_t base = t0;
        if (par[i] >= 1 && par[i] <= n && par[i] - 1 < i) {
            base = spans[pos[par[i] - 1]]->start_ns;
        }
        rc = blk_buf_varint(b, blk_zigzag((int64_t)(sp->start_ns - base)));
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = spans[pos[i]];
        rc = blk_buf_varint(b, blk_zigzag((int64_t)(sp->end_ns - sp->start_ns)));
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = blk_buf_varint(b, names[i]);
    }
    /* kind (3 bits), status code (2 bits), has trace_state, has status message */
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = spans[pos[i]];
        unsigned bits = ((unsigned)sp->kind & 7u) | ((unsigned)sp->status_code & 3u) << 3 |
                        (sp->trace_state.len > 0 ? 1u << 5 : 0) |
                        (sp->status_message.len > 0 ? 1u << 6 : 0);
        rc = blk_buf_byte(b, (uint8_t)bits);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = blk_buf_varint(b, spans[pos[i]]->flags);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = blk_buf_varint(b, w->s_res[gs0 + pos[i]]);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = blk_buf_varint(b, w->s_scope[gs0 + pos[i]]);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = put_inline_str(b, spans[pos[i]]->trace_state);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = put_inline_str(b, spans[pos[i]]->status_message);
    }
    if (rc == CLEW_OK) {
        rc = encode_span_attrs(w, b, t, gs0, pos, n);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = spans[pos[i]];
        rc = blk_buf_varint(b, sp->n_events);
        if (rc == CLEW_OK) {
            rc = blk_buf_varint(b, sp->dropped_events);
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
        const clew_span_data *sp = spans[pos[i]];
        rc = blk_buf_varint(b, sp->n_links);
        if (rc == CLEW_OK) {
            rc = blk_buf_varint(b, sp->dropped_links);
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

/* Cuts the pending traces into one page: dictionary, then each trace record. */
static clew_status flush_page(writer *w)
{
    if (w->n_pend == 0) {
        return CLEW_OK;
    }
    clew_status rc = CLEW_OK;
    /* pass 1: the skeleton of each string seen once in the page, in the order the strings
     * were met (see skeletons_global for why the table order is that order) */
    size_t n0 = w->n_pc;
    for (size_t p = 0; rc == CLEW_OK && p < n0; p++) {
        uint32_t sg;
        if (w->pc_count[p] == 1) {
            rc = skel_of(w, w->pc_gid[p], false, 0, &sg);
            /* a skeleton in VALUES is referred to there: it needs no page entry */
            if (rc == CLEW_OK && sg != NONE32 && w->gc.e[sg].index == 0) {
                rc = pc_add(w, sg);
            }
        }
    }
    /* the page dictionary: strings seen at least twice in the page, first seen first */
    uint32_t n_dict = 0;
    for (size_t p = 0; p < w->n_pc; p++) {
        w->pc_index[p] = w->pc_count[p] >= 2 ? ++n_dict : 0;
    }
    clew__buf_reset(&w->page);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_varint(&w->page, n_dict);
    }
    for (size_t p = 0; rc == CLEW_OK && p < w->n_pc; p++) {
        if (w->pc_index[p] != 0) {
            rc = clew__blk_put_str(&w->page, w->gc.t.strs[w->pc_gid[p]]);
        }
    }
    for (size_t k = 0; rc == CLEW_OK && k < w->n_pend; k++) {
        uint32_t ord = w->pend[k];
        w->sums[ord].page = w->n_pages;
        w->sums[ord].offset = (uint32_t)w->page.len;
        if (k + 1 < w->n_pend) {
            prefetch_trace(w, w->by_id[w->pend[k + 1]], 0);
            prefetch_trace(w, w->by_id[w->pend[k + 1]], 1);
        }
        rc = encode_trace(w, &w->page, ord);
    }
    if (rc == CLEW_OK) {
        rc = compress_page(w);
    }
    /* the next page counts its strings afresh */
    for (size_t p = 0; p < w->n_pc; p++) {
        w->gc.e[w->pc_gid[p]].pmap = 0;
    }
    w->n_pc = 0;
    w->n_pend = 0;
    w->page_est = 0;
    return rc;
}

/* Records trace `ord`'s span order, summary, services, operations and search terms, and
 * queues it for the page being filled. */
static clew_status write_trace(writer *w, uint32_t ord)
{
    size_t ti = w->by_id[ord];
    const clew_block_trace *t = &w->traces[ti];
    uint32_t n = (uint32_t)t->n_spans;
    size_t gs0 = w->span_base[ti];
    uint32_t *pos = &w->s_idx[gs0];
    uint32_t *names = &w->s_name[gs0];
    prefetch_values(w, ti);
    order_spans(w, t, pos, &w->s_par[gs0]);
    const clew_span_data *const *spans = t->spans;

    summary *sm = &w->sums[ord];
    uint64_t t0 = spans[pos[0]]->start_ns, t1 = 0;
    uint32_t root = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        const clew_span_data *sp = spans[pos[i]];
        if (sp->end_ns > t1) {
            t1 = sp->end_ns;
        }
        if (root == UINT32_MAX && w->s_par[gs0 + i] == 0) {
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
        rc = str_id(w, spans[pos[root]]->name, &sm->root_op);
    }
    if (w->n_spans == 0 || t0 < w->min_start) {
        w->min_start = t0;
    }
    if (t1 > w->max_end) {
        w->max_end = t1;
    }
    w->n_spans += n;

    /* services of the trace, operations, and their search terms */
    sm->occ2_first = w->n_occ;
    size_t svc_first = w->n_trace_svcs;
    uint32_t last_res = UINT32_MAX;
    for (uint32_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_span_data *sp = spans[pos[i]];
        uint32_t rid = w->s_res[gs0 + pos[i]];
        uint32_t svc = w->res_service[rid];
        if (i == root) {
            sm->root_service = svc;
        }
        rc = name_id(w, sp->name, &names[i]);
        if (rc == CLEW_OK && rid != last_res) {
            /* a service once per run of spans sharing a resource; duplicates across runs
             * fall out in term_occ and below */
            last_res = rid;
            if (w->n_trace_svcs == w->cap_trace_svcs) {
                rc = grow_u32(&w->trace_svcs, &w->cap_trace_svcs, w->n_trace_svcs + 1);
                if (rc != CLEW_OK) {
                    break;
                }
            }
            w->trace_svcs[w->n_trace_svcs++] = svc;
            rc = service_term(w, svc, ord);
        }
        if (rc == CLEW_OK) {
            rc = span_name_terms(w, svc, names[i], sp->name, (uint32_t)sp->kind, ord);
        }
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    sm->occ2_n = (uint32_t)(w->n_occ - sm->occ2_first);
    /* the trace's distinct services, sorted */
    size_t cnt = w->n_trace_svcs - svc_first;
    sort_u32(&w->trace_svcs[svc_first], cnt);
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
        rc = grow_u32(&w->pend, &w->cap_pend, w->n_pend + 1);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    w->pend[w->n_pend++] = ord;
    rc = count_page(w, ord);
    if (rc != CLEW_OK) {
        return rc;
    }
    w->page_est += sm->est;
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

/* Sorts by hash with an LSD radix sort (8 bits a pass, passes where every element has the
 * same byte skipped); `tmp` holds n elements. Small arrays go to qsort. */
static void sort_span_keys(span_key *a, span_key *tmp, size_t n)
{
    if (n < 256) {
        qsort(a, n, sizeof(*a), span_key_cmp);
        return;
    }
    size_t count[256];
    for (unsigned shift = 0; shift < 64; shift += 8) {
        memset(count, 0, sizeof(count));
        for (size_t i = 0; i < n; i++) {
            count[(a[i].k >> shift) & 0xff]++;
        }
        if (count[(a[0].k >> shift) & 0xff] == n) {
            continue;
        }
        size_t at = 0;
        for (unsigned d = 0; d < 256; d++) {
            size_t c = count[d];
            count[d] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++) {
            tmp[count[(a[i].k >> shift) & 0xff]++] = a[i];
        }
        memcpy(a, tmp, n * sizeof(*a));
    }
}

/* Drops the terms of keys with too many distinct values, builds TERMS and POSTINGS:
 * terms by hash, each with its traces (ordinals) ascending. */
static clew_status build_postings(writer *w, clew_buf *terms, clew_buf *post)
{
    /* keys with too many distinct values were flagged UNINDEXED by term_get */
    size_t nt = w->n_tt ? w->n_tt : 1;
    span_key *kept = clew__calloc(nt, sizeof(*kept));
    span_key *tmp = clew__calloc(nt, sizeof(*tmp));
    /* next free posting slot, NONE32 = dropped; u32 (half the cache lines of size_t) since
     * there are fewer postings than term occurrences */
    uint32_t *at = clew__calloc(nt, sizeof(*at));
    size_t n_kept = 0, n_post = 0;
    clew_status rc = kept == NULL || tmp == NULL || at == NULL ? CLEW_ENOMEM : CLEW_OK;
    if (w->n_occ >= NONE32) {
        rc = CLEW_ENOMEM; /* four billion term occurrences: far beyond any block */
    }
    for (uint32_t t = 0; rc == CLEW_OK && t < w->n_tt; t++) {
        uint32_t key = w->tt_key[t];
        if (key != NONE32 && (w->key_flags[key] & BLK_KEY_UNINDEXED) != 0) {
            at[t] = NONE32;
            continue;
        }
        kept[n_kept].k = w->tt_hash[t];
        kept[n_kept].pos = t;
        n_kept++;
    }
    if (rc == CLEW_OK) {
        sort_span_keys(kept, tmp, n_kept);
        for (size_t i = 0; i < n_kept; i++) {
            at[kept[i].pos] = (uint32_t)n_post;
            n_post += w->tt_cnt[kept[i].pos];
        }
    }
    clew__free(tmp);
    /* the postings, filled in ordinal order so that each list comes out ascending */
    uint32_t *plist = rc == CLEW_OK ? clew__calloc(n_post ? n_post : 1, sizeof(*plist)) : NULL;
    if (rc == CLEW_OK && plist == NULL) {
        rc = CLEW_ENOMEM;
    }
    for (uint32_t ord = 0; rc == CLEW_OK && ord < w->n_traces; ord++) {
        for (int r = 0; r < 2; r++) {
            const summary *sm = &w->sums[ord];
            const uint32_t *o = &w->occ[r == 0 ? sm->occ_first : sm->occ2_first];
            uint32_t no = r == 0 ? sm->occ_n : sm->occ2_n;
            for (uint32_t i = 0; i < no; i++) {
                if (at[o[i]] != NONE32) {
                    plist[at[o[i]]++] = ord;
                }
            }
        }
    }
    clew__free(at);
    /* TERMS: u32 n, then columns hash u64[n], count u32[n], postings offset u32[n] */
    clew_buf hashes, counts, offs;
    clew__buf_init(&hashes, 0);
    clew__buf_init(&counts, 0);
    clew__buf_init(&offs, 0);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_fixed32(terms, (uint32_t)n_kept);
    }
    size_t p = 0;
    for (size_t i = 0; rc == CLEW_OK && i < n_kept; i++) {
        uint32_t n_ords = w->tt_cnt[kept[i].pos], count = 0, prev = 0;
        rc = clew__blk_put_fixed32(&offs, (uint32_t)post->len);
        for (uint32_t c = 0; rc == CLEW_OK && c < n_ords; c++, p++) {
            if (count > 0 && plist[p] == prev) {
                continue; /* one trace twice: only if two kinds of term share a hash */
            }
            rc = blk_buf_varint(post, count == 0 ? plist[p] : plist[p] - prev);
            prev = plist[p];
            count++;
        }
        if (rc == CLEW_OK) {
            rc = clew__blk_put_fixed64(&hashes, kept[i].k);
        }
        if (rc == CLEW_OK) {
            rc = clew__blk_put_fixed32(&counts, count);
        }
    }
    clew__free(plist);
    clew__free(kept);
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
        if (w->gc.e[id].index != 0) {
            vend += (uint32_t)w->gc.t.strs[id].len;
            rc = clew__blk_put_fixed32(&b, vend);
        }
    }
    for (uint32_t id = 0; rc == CLEW_OK && id < w->gc.t.n; id++) {
        if (w->gc.e[id].index != 0 && w->gc.t.strs[id].len > 0) {
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
    void *arrays[] = {
        w->key_remap,   w->key_order, w->key_flags, w->svc_remap,    w->svc_order, w->res_service,
        w->by_id,       w->ord_of,    w->sums,      w->trace_svcs,   w->span_base, w->attr_base,
        w->a_key,       w->a_val,     w->s_idx,     w->s_par,        w->s_name,    w->tt_hash,
        w->tt_key,      w->tt_last,   w->tt_cnt,    w->tt_slots,     w->occ,       w->kseed,
        w->kseed_ok,    w->svc_term,  w->names,     w->res_tfirst,   w->res_tn,    w->res_terms,
        w->ops,         w->op_slots,  w->pend,      w->pc_gid,       w->pc_count,  w->pc_index,
        w->skbuf,       w->forms,     w->perm,      w->touched,      w->kcount,    w->avals,
        w->akeys,       w->skeys,     w->zbuf,      w->key_distinct, w->th,        w->tcand,
        w->fixed_terms, w->s_res,     w->s_scope,   w->vcache,
    };
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        clew__free(arrays[i]);
    }
    clew__buf_deinit(&w->page);
    clew__buf_deinit(&w->pages);
    ctab_deinit(&w->gc);
    clew__arena_deinit(&w->garena);
    ZSTD_freeCCtx(w->zctx);
}

/* Checks the traces (not yet their spans: check_trace) and lays out the per trace and per
 * span arrays (see the writer struct), from the trace array alone: the spans themselves are
 * first read by the walk, which checks them on the way. */
static clew_status check_input(writer *w, size_t *max_spans)
{
    size_t n = w->n_traces;
    size_t spans = 0;
    *max_spans = 1;
    w->span_base = clew__calloc(n + 1, sizeof(size_t));
    if (w->span_base == NULL) {
        return CLEW_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const clew_block_trace *t = &w->traces[i];
        if (t->n_spans == 0 || t->n_spans > UINT32_MAX / 2 || t->spans == NULL) {
            clew__error_set(w->err, i, "block write: trace %zu has no spans", i);
            return CLEW_EINVAL;
        }
        w->span_base[i] = spans;
        spans += t->n_spans;
        *max_spans = t->n_spans > *max_spans ? t->n_spans : *max_spans;
    }
    w->span_base[n] = spans;
    w->n_spans_in = spans;
    w->attr_base = clew__calloc(spans + 1, sizeof(size_t));
    w->s_idx = clew__calloc(spans ? spans : 1, sizeof(uint32_t));
    w->s_par = clew__calloc(spans ? spans : 1, sizeof(uint32_t));
    w->s_name = clew__calloc(spans ? spans : 1, sizeof(uint32_t));
    w->s_res = clew__calloc(spans ? spans : 1, sizeof(uint32_t));
    w->s_scope = clew__calloc(spans ? spans : 1, sizeof(uint32_t));
    w->skeys = clew__calloc(*max_spans, sizeof(span_key));
    if (w->attr_base == NULL || w->s_idx == NULL || w->s_par == NULL || w->s_name == NULL ||
        w->s_res == NULL || w->s_scope == NULL || w->skeys == NULL) {
        return CLEW_ENOMEM;
    }
    return CLEW_OK;
}

/* Checks the spans of input trace i and lays out their attributes (attr_base, and room in
 * a_key and a_val, whose new entries pass 1 and count_global fill). The walk calls it just
 * before pass 1 of the trace: a bad span is still refused before the file is created. */
static clew_status check_trace(writer *w, size_t i)
{
    const clew_block_trace *t = &w->traces[i];
    size_t gs = w->span_base[i], attrs = w->n_attrs;
    for (size_t j = 0; j < t->n_spans; j++, gs++) {
        const clew_span_data *sp = t->spans[j];
        if (sp == NULL || sp->resource == NULL || sp->scope == NULL ||
            clew__blk_id_cmp(&sp->trace_id, &t->trace_id) != 0) {
            clew__error_set(w->err, i,
                            "block write: span %zu of trace %zu is of another trace or "
                            "lacks a resource or scope",
                            j, i);
            return CLEW_EINVAL;
        }
        w->attr_base[gs] = attrs;
        attrs += sp->attrs.n;
    }
    w->attr_base[gs] = attrs; /* the end of this trace's attributes (where the next starts) */
    if (attrs > w->cap_attrs || w->a_key == NULL) {
        size_t cap = next_cap(w->cap_attrs, attrs, 4096);
        uint32_t *k = clew__realloc(w->a_key, cap * sizeof(*k));
        if (k == NULL) {
            return CLEW_ENOMEM;
        }
        w->a_key = k;
        uint32_t *v = clew__realloc(w->a_val, cap * sizeof(*v));
        if (v == NULL) {
            return CLEW_ENOMEM;
        }
        w->a_val = v;
        memset(v + w->cap_attrs, 0xff, (cap - w->cap_attrs) * sizeof(*v)); /* NONE32 */
        w->cap_attrs = cap;
    }
    w->n_attrs = attrs;
    return CLEW_OK;
}

/* Grows the tables indexed by key or resource id that the walk over the spans fills to the
 * counts so far (pass 1 of a trace may have added keys and resources); new entries zero
 * (res_tn NONE32: not computed). */
static clew_status grow_walk_arrays(writer *w)
{
    if (w->keys.n > w->cap_keys || w->key_flags == NULL) {
        size_t old = w->cap_keys, cap = next_cap(old, w->keys.n, 64);
        uint8_t *f = clew__realloc(w->key_flags, cap);
        if (f == NULL) {
            return CLEW_ENOMEM;
        }
        w->key_flags = f;
        uint32_t *d = clew__realloc(w->key_distinct, cap * sizeof(*d));
        if (d == NULL) {
            return CLEW_ENOMEM;
        }
        w->key_distinct = d;
        uint64_t *ks = clew__realloc(w->kseed, cap * N_LETTERS * sizeof(*ks));
        if (ks == NULL) {
            return CLEW_ENOMEM;
        }
        w->kseed = ks;
        uint8_t *ko = clew__realloc(w->kseed_ok, cap * N_LETTERS);
        if (ko == NULL) {
            return CLEW_ENOMEM;
        }
        w->kseed_ok = ko;
        memset(f + old, 0, cap - old);
        memset(d + old, 0, (cap - old) * sizeof(*d));
        memset(ko + old * N_LETTERS, 0, (cap - old) * N_LETTERS);
        w->cap_keys = cap;
    }
    if (w->resources.n > w->cap_res || w->res_tn == NULL) {
        size_t old = w->cap_res, cap = next_cap(old, w->resources.n, 64);
        uint32_t *tf = clew__realloc(w->res_tfirst, cap * sizeof(*tf));
        if (tf == NULL) {
            return CLEW_ENOMEM;
        }
        w->res_tfirst = tf;
        uint32_t *tn = clew__realloc(w->res_tn, cap * sizeof(*tn));
        if (tn == NULL) {
            return CLEW_ENOMEM;
        }
        w->res_tn = tn;
        memset(tn + old, 0xff, (cap - old) * sizeof(*tn)); /* NONE32: not computed */
        w->cap_res = cap;
    }
    return CLEW_OK;
}

/* After the walk, with the keys and services sorted: key ids become sorted ids (a_key,
 * key_flags, tt_key), and the tables the pages need are sized. */
static clew_status alloc_key_arrays(writer *w)
{
    size_t nk = w->keys.n ? w->keys.n : 1;
    size_t nr = w->resources.n ? w->resources.n : 1;
    uint8_t *flags = clew__calloc(nk, 1);
    w->kcount = clew__calloc(nk, sizeof(uint32_t));
    w->svc_term = clew__calloc(w->services.n ? w->services.n : 1, sizeof(uint32_t));
    w->res_service = clew__calloc(nr, sizeof(uint32_t));
    if (flags == NULL || w->kcount == NULL || w->svc_term == NULL || w->res_service == NULL) {
        clew__free(flags);
        return CLEW_ENOMEM;
    }
    for (uint32_t k = 0; k < w->keys.n; k++) {
        flags[w->key_remap[k]] = w->key_flags[k];
    }
    clew__free(w->key_flags);
    w->key_flags = flags;
    for (size_t t = 0; t < w->n_tt; t++) {
        if (w->tt_key[t] != NONE32) {
            w->tt_key[t] = w->key_remap[w->tt_key[t]];
        }
    }
    for (size_t a = 0; a < w->n_attrs; a++) {
        w->a_key[a] = w->key_remap[w->a_key[a]];
    }
    for (uint32_t i = 0; i < w->resources.n; i++) {
        clew_str svc = clew__resource_service(w->resources.objs[i]);
        uint32_t sid;
        clew_status rc = itab_put(&w->services, &svc, &sid, NULL);
        if (rc != CLEW_OK) {
            return rc;
        }
        w->res_service[i] = w->svc_remap[sid];
    }
    return CLEW_OK;
}

static clew_status run(writer *w, const char *tmp_path)
{
    size_t n = w->n_traces;
    size_t max_spans;
    clew_status rc = check_input(w, &max_spans);
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
    /* a key with more distinct values than the block has traces (at least 1024) is finer
     * than a trace: its postings would cost more than they save. Every term id is one
     * distinct hash, so term_get counts a key's distinct values as it makes its terms. */
    w->key_cap = n > 1024 ? n : 1024;
    if (w->key_cap > w->max_per_key) {
        w->key_cap = w->max_per_key;
    }

    w->fixed_terms = clew__calloc((size_t)1 << FIXED_TERMS_LOG, sizeof(fixed_term));
    w->vcache = clew__calloc((size_t)1 << VCACHE_LOG, sizeof(vcache_ent));
    if (w->fixed_terms == NULL || w->vcache == NULL) {
        return CLEW_ENOMEM;
    }
    /* One walk over the spans, trace by trace in input order (the order of the spans in
     * memory, usually): pass 1 interns the trace's keys, resources and scopes, then
     * count_global counts its values and records its attribute search terms while its spans
     * are still in the cache. Key ids are first-seen ids until the keys are sorted after the
     * walk (alloc_key_arrays). */
    const clew_span_data *prev = NULL;
    size_t prev_gs = 0;
    for (size_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_block_trace *t = &w->traces[i];
        prefetch_trace(w, i + 2, 0);
        prefetch_trace(w, i + 1, 1);
        rc = check_trace(w, i);
        for (size_t j = 0; rc == CLEW_OK && j < t->n_spans; j++) {
            size_t gs = w->span_base[i] + j;
            rc = pass1_span(w, t->spans[j], gs, prev, prev_gs);
            prev = t->spans[j];
            prev_gs = gs;
        }
        /* start of the trace, for the page order */
        uint64_t t0 = UINT64_MAX;
        for (size_t j = 0; rc == CLEW_OK && j < t->n_spans; j++) {
            if (t->spans[j]->start_ns < t0) {
                t0 = t->spans[j]->start_ns;
            }
        }
        w->sums[w->ord_of[i]].start = t0;
        if (rc == CLEW_OK) {
            rc = grow_walk_arrays(w);
        }
        if (rc == CLEW_OK) {
            rc = count_global(w, w->ord_of[i]);
        }
    }
    if (rc == CLEW_OK) {
        rc = sort_table(&w->keys, &w->key_order, &w->key_remap);
    }
    if (rc == CLEW_OK) {
        rc = sort_table(&w->services, &w->svc_order, &w->svc_remap);
    }
    if (rc == CLEW_OK) {
        rc = alloc_key_arrays(w);
    }
    if (rc == CLEW_OK) {
        rc = skeletons_global(w);
    }
    if (rc == CLEW_OK) {
        w->n_values = ctab_assign(&w->gc, GLOBAL_MIN);
        mark_values(w);
    }
    if (rc != CLEW_OK) {
        return rc;
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
    span_key *by_start = clew__calloc(n, sizeof(*by_start));
    if (by_start == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        by_start[i] = (span_key){w->sums[i].start, i};
    }
    qsort(by_start, n, sizeof(*by_start), span_key_cmp);
    for (size_t i = 0; rc == CLEW_OK && i < n; i++) {
        if (i + 2 < n) {
            prefetch_trace(w, w->by_id[by_start[i + 2].pos], 0);
        }
        rc = write_trace(w, by_start[i].pos);
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
    w.gc.t.kind = ITAB_STR;
    clew__arena_init(&w.garena, 64 * 1024, 0);
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
