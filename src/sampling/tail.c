/*
 * src/sampling/tail.c - the tail sampling engine: traces pending a decision, their
 * deadlines, the decision caches and the memory bounds (docs/internals/tail-sampling.md).
 *
 * Pending traces live in a fixed array of num_traces records found through a chained
 * hash table. Two intrusive lists give every deadline in O(1): the age list holds all
 * pending traces in first-span order (decision_wait), the grace list holds those whose
 * root span has arrived, in last-span order (decision_grace). The clock is monotonic,
 * so appending at the tail keeps both lists sorted.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/hash.h"
#include "sampling/sampler.h"

#define NIL            UINT32_MAX
#define MAX_STR        1023u /* attribute strings are summarised up to this many bytes */
#define MAX_TS         16u   /* distinct trace_state values remembered per trace */
#define DEDUP_WINDOW   32u   /* recent attribute entries checked for a repeat */
#define LOG_EVERY_NS   (UINT64_C(60) * 1000000000u)
#define MAX_NUM_TRACES UINT64_C(50000000)

typedef struct trace_rec {
    clew_trace_id id;
    uint32_t hnext;        /* hash chain, or free list when unused */
    uint32_t aprev, anext; /* age list */
    uint32_t gprev, gnext; /* grace list */
    bool used, in_grace;
    unsigned status_seen;
    uint64_t first_ns, last_ns;
    uint64_t n_spans, n_summarised;
    uint64_t min_start, max_end;
    double head_adjusted;
    clew_tail_attr *attrs;
    uint32_t n_attrs, cap_attrs;
    char *strings;
    uint32_t str_len, str_cap;
    uint64_t *ts;
    uint32_t n_ts, cap_ts;
    size_t bytes; /* what this trace accounts for in pending_bytes */
} trace_rec;

typedef struct cache_ent {
    clew_trace_id id;
    uint32_t hnext;
    bool used;
    const char *reason;
    double adjusted;
} cache_ent;

/* A FIFO set of decided trace ids: the oldest entry makes room for the newest. */
typedef struct dcache {
    cache_ent *ents;
    uint32_t cap, pos;
    uint32_t *buckets;
    uint32_t mask;
} dcache;

typedef struct list {
    uint32_t head, tail;
} list;

struct clew_tail_engine {
    clew_tail_config *cfg;
    clew_tail_hooks hooks;
    trace_rec *recs;
    uint32_t n_recs, free_head;
    uint32_t *buckets;
    uint32_t mask;
    list age, grace;
    dcache sampled, non_sampled;
    clew_tail_metrics m;
    uint64_t forced_unlogged;
    uint64_t last_log_ns;
    bool logged_once;
};

static uint64_t now(clew_tail_engine *e)
{
    return e->hooks.clock != NULL ? e->hooks.clock(e->hooks.ud) : clew__now_mono_ns();
}

static uint32_t id_hash(const clew_trace_id *id)
{
    uint64_t lo, hi;
    memcpy(&hi, id->bytes, 8);
    memcpy(&lo, id->bytes + 8, 8);
    return (uint32_t)clew__hash_finish(lo ^ (hi * UINT64_C(0x9e3779b97f4a7c15)));
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 16;
    while (p < n && p < (UINT32_C(1) << 30)) {
        p <<= 1;
    }
    return p;
}

/* ---- decision cache ---- */

static clew_status dcache_init(dcache *c, uint64_t size)
{
    memset(c, 0, sizeof(*c));
    if (size == 0) {
        return CLEW_OK;
    }
    c->cap = (uint32_t)size;
    uint32_t nb = pow2_at_least(size * 2);
    c->mask = nb - 1;
    c->ents = clew__calloc(c->cap, sizeof(cache_ent));
    c->buckets = clew__malloc((size_t)nb * sizeof(uint32_t));
    if (c->ents == NULL || c->buckets == NULL) {
        return CLEW_ENOMEM;
    }
    memset(c->buckets, 0xff, (size_t)nb * sizeof(uint32_t));
    return CLEW_OK;
}

static void dcache_free(dcache *c)
{
    clew__free(c->ents);
    clew__free(c->buckets);
}

static cache_ent *dcache_find(dcache *c, const clew_trace_id *id)
{
    if (c->cap == 0) {
        return NULL;
    }
    for (uint32_t i = c->buckets[id_hash(id) & c->mask]; i != NIL; i = c->ents[i].hnext) {
        if (memcmp(c->ents[i].id.bytes, id->bytes, 16) == 0) {
            return &c->ents[i];
        }
    }
    return NULL;
}

static void dcache_put(dcache *c, const clew_trace_id *id, const char *reason, double adjusted)
{
    if (c->cap == 0) {
        return;
    }
    cache_ent *old = dcache_find(c, id);
    if (old != NULL) {
        old->reason = reason;
        old->adjusted = adjusted;
        return;
    }
    uint32_t slot = c->pos;
    cache_ent *s = &c->ents[slot];
    if (s->used) {
        /* evict the oldest: unlink it from its chain */
        uint32_t *pp = &c->buckets[id_hash(&s->id) & c->mask];
        while (*pp != slot) {
            pp = &c->ents[*pp].hnext;
        }
        *pp = s->hnext;
    }
    s->id = *id;
    s->used = true;
    s->reason = reason;
    s->adjusted = adjusted;
    uint32_t *b = &c->buckets[id_hash(id) & c->mask];
    s->hnext = *b;
    *b = slot;
    c->pos = (slot + 1) % c->cap;
}

/* ---- lists ---- */

#define LIST_FNS(NAME, PREV, NEXT)                                                                 \
    static void NAME##_push(clew_tail_engine *e, list *l, uint32_t i)                              \
    {                                                                                              \
        e->recs[i].PREV = l->tail;                                                                 \
        e->recs[i].NEXT = NIL;                                                                     \
        if (l->tail != NIL) {                                                                      \
            e->recs[l->tail].NEXT = i;                                                             \
        } else {                                                                                   \
            l->head = i;                                                                           \
        }                                                                                          \
        l->tail = i;                                                                               \
    }                                                                                              \
    static void NAME##_unlink(clew_tail_engine *e, list *l, uint32_t i)                            \
    {                                                                                              \
        trace_rec *r = &e->recs[i];                                                                \
        if (r->PREV != NIL) {                                                                      \
            e->recs[r->PREV].NEXT = r->NEXT;                                                       \
        } else {                                                                                   \
            l->head = r->NEXT;                                                                     \
        }                                                                                          \
        if (r->NEXT != NIL) {                                                                      \
            e->recs[r->NEXT].PREV = r->PREV;                                                       \
        } else {                                                                                   \
            l->tail = r->PREV;                                                                     \
        }                                                                                          \
        r->PREV = r->NEXT = NIL;                                                                   \
    }

LIST_FNS(age, aprev, anext)
LIST_FNS(grace, gprev, gnext)

/* ---- engine ---- */

clew_status clew__tail_engine_new(clew_tail_config *cfg, const clew_tail_hooks *hooks,
                                  clew_tail_engine **out)
{
    *out = NULL;
    if (cfg == NULL || cfg->num_traces == 0 || cfg->num_traces > MAX_NUM_TRACES ||
        cfg->sampled_cache_size > MAX_NUM_TRACES || cfg->non_sampled_cache_size > MAX_NUM_TRACES) {
        return CLEW_EINVAL;
    }
    clew_tail_engine *e = clew__calloc(1, sizeof(*e));
    if (e == NULL) {
        return CLEW_ENOMEM;
    }
    e->cfg = cfg;
    if (hooks != NULL) {
        e->hooks = *hooks;
    }
    e->n_recs = (uint32_t)cfg->num_traces;
    e->recs = clew__calloc(e->n_recs, sizeof(trace_rec));
    uint32_t nb = pow2_at_least(cfg->num_traces * 2);
    e->mask = nb - 1;
    e->buckets = clew__malloc((size_t)nb * sizeof(uint32_t));
    e->m.policy_sampled = clew__calloc(cfg->n_policies + 1, sizeof(uint64_t));
    e->m.policy_dropped = clew__calloc(cfg->n_policies + 1, sizeof(uint64_t));
    if (e->recs == NULL || e->buckets == NULL || e->m.policy_sampled == NULL ||
        e->m.policy_dropped == NULL ||
        dcache_init(&e->sampled, cfg->sampled_cache_size) != CLEW_OK ||
        dcache_init(&e->non_sampled, cfg->non_sampled_cache_size) != CLEW_OK) {
        clew__tail_engine_free(e);
        return CLEW_ENOMEM;
    }
    memset(e->buckets, 0xff, (size_t)nb * sizeof(uint32_t));
    for (uint32_t i = 0; i < e->n_recs; i++) {
        e->recs[i].hnext = i + 1 < e->n_recs ? i + 1 : NIL;
    }
    e->free_head = 0;
    e->age.head = e->age.tail = NIL;
    e->grace.head = e->grace.tail = NIL;
    *out = e;
    return CLEW_OK;
}

static void rec_release(trace_rec *r)
{
    clew__free(r->attrs);
    clew__free(r->strings);
    clew__free(r->ts);
}

void clew__tail_engine_free(clew_tail_engine *e)
{
    if (e == NULL) {
        return;
    }
    if (e->recs != NULL) {
        for (uint32_t i = 0; i < e->n_recs; i++) {
            if (e->recs[i].used) {
                rec_release(&e->recs[i]);
            }
        }
    }
    clew__free(e->recs);
    clew__free(e->buckets);
    clew__free(e->m.policy_sampled);
    clew__free(e->m.policy_dropped);
    dcache_free(&e->sampled);
    dcache_free(&e->non_sampled);
    clew__free(e);
}

static uint32_t rec_find(clew_tail_engine *e, const clew_trace_id *id)
{
    for (uint32_t i = e->buckets[id_hash(id) & e->mask]; i != NIL; i = e->recs[i].hnext) {
        if (memcmp(e->recs[i].id.bytes, id->bytes, 16) == 0) {
            return i;
        }
    }
    return NIL;
}

static size_t rec_bytes(const trace_rec *r)
{
    return sizeof(trace_rec) + (size_t)r->cap_attrs * sizeof(clew_tail_attr) + r->str_cap +
           (size_t)r->cap_ts * sizeof(uint64_t);
}

static void emit(clew_tail_engine *e, const clew_tail_decision *d)
{
    if (e->hooks.on_decision != NULL) {
        e->hooks.on_decision(d, e->hooks.ud);
    }
}

static void maybe_log_forced(clew_tail_engine *e, uint64_t t)
{
    if (e->hooks.log == NULL || e->forced_unlogged == 0) {
        return;
    }
    if (e->logged_once && t - e->last_log_ns < LOG_EVERY_NS) {
        return;
    }
    char msg[200];
    snprintf(msg, sizeof(msg),
             "tail sampling: %llu trace(s) decided before their time because the engine is full "
             "(num_traces or max_bytes); raise them or shorten decision_wait",
             (unsigned long long)e->forced_unlogged);
    e->hooks.log(msg, e->hooks.ud);
    e->forced_unlogged = 0;
    e->last_log_ns = t;
    e->logged_once = true;
}

static size_t policy_index(const clew_tail_config *c, const char *reason)
{
    for (size_t i = 0; i < c->n_policies; i++) {
        if (c->policies[i].name == reason) {
            return i;
        }
    }
    return c->n_policies;
}

/* Evaluates, reports, caches and forgets pending trace i. */
static void decide(clew_tail_engine *e, uint32_t i, uint64_t t, bool forced)
{
    trace_rec *r = &e->recs[i];
    clew_tail_trace_view v = {
        .trace_id = r->id,
        .n_spans = r->n_spans,
        .min_start_ns = r->min_start,
        .max_end_ns = r->max_end,
        .status_seen = r->status_seen,
        .attrs = r->attrs,
        .n_attrs = r->n_attrs,
        .strings = r->strings,
        .trace_states = r->ts,
        .n_trace_states = r->n_ts,
    };
    const char *reason;
    double adjusted;
    clew_tail_verdict verdict = clew__tail_evaluate(e->cfg, &v, t, &reason, &adjusted);
    clew_tail_decision d = {
        .trace_id = r->id,
        .state = verdict == CLEW_TAIL_SAMPLED ? CLEW_TRACE_KEPT : CLEW_TRACE_DROPPED,
        .reason = reason,
        .adjusted_count = verdict == CLEW_TAIL_SAMPLED ? adjusted * r->head_adjusted : 1.0,
        .n_spans = r->n_spans,
        .forced = forced,
    };
    e->m.traces_decided[verdict]++;
    e->m.spans_decided[verdict] += r->n_spans;
    size_t pi = policy_index(e->cfg, reason);
    if (verdict == CLEW_TAIL_SAMPLED) {
        e->m.policy_sampled[pi]++;
        dcache_put(&e->sampled, &r->id, reason, d.adjusted_count);
    } else {
        e->m.policy_dropped[pi]++;
        dcache_put(&e->non_sampled, &r->id, reason, 1.0);
    }
    if (forced) {
        e->m.forced_decisions++;
        e->forced_unlogged++;
    }

    /* forget it before reporting, so a callback that observes again sees the cache */
    age_unlink(e, &e->age, i);
    if (r->in_grace) {
        grace_unlink(e, &e->grace, i);
    }
    uint32_t *pp = &e->buckets[id_hash(&r->id) & e->mask];
    while (*pp != i) {
        pp = &e->recs[*pp].hnext;
    }
    *pp = r->hnext;
    e->m.pending_traces--;
    e->m.pending_bytes -= r->bytes;
    e->m.pending_spans -= r->n_spans;
    rec_release(r);
    memset(r, 0, sizeof(*r));
    r->hnext = e->free_head;
    e->free_head = i;

    emit(e, &d);
}

static bool ensure(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap) {
        return true;
    }
    uint32_t nc = *cap ? *cap : 4;
    while (nc < need) {
        nc *= 2;
    }
    void *np = clew__realloc(*p, (size_t)nc * elem);
    if (np == NULL) {
        return false;
    }
    *p = np;
    *cap = nc;
    return true;
}

static clew_status add_string(trace_rec *r, const char *s, size_t len, uint64_t *off)
{
    void *p = r->strings;
    if (!ensure(&p, &r->str_cap, r->str_len + (uint32_t)len, 1)) {
        return CLEW_ENOMEM;
    }
    r->strings = p;
    if (len > 0) {
        memcpy(r->strings + r->str_len, s, len);
    }
    *off = r->str_len;
    r->str_len += (uint32_t)len;
    return CLEW_OK;
}

static bool attr_same(const trace_rec *r, const clew_tail_attr *a, uint16_t slot,
                      const clew_value *v, size_t slen)
{
    if (a->slot != slot || a->type != (uint8_t)v->type) {
        return false;
    }
    switch (v->type) {
    case CLEW_VALUE_STRING:
        return a->len == slen && memcmp(r->strings + a->u.off, v->u.s.ptr, slen) == 0;
    case CLEW_VALUE_BOOL:
        return a->u.b == v->u.b;
    case CLEW_VALUE_INT:
        return a->u.i == v->u.i;
    case CLEW_VALUE_DOUBLE:
        return a->u.d == v->u.d;
    default:
        return false;
    }
}

static clew_status add_attr(trace_rec *r, uint16_t slot, const clew_value *v)
{
    if (v->type != CLEW_VALUE_STRING && v->type != CLEW_VALUE_BOOL && v->type != CLEW_VALUE_INT &&
        v->type != CLEW_VALUE_DOUBLE) {
        return CLEW_OK;
    }
    size_t slen = v->type == CLEW_VALUE_STRING ? (v->u.s.len < MAX_STR ? v->u.s.len : MAX_STR) : 0;
    uint32_t from = r->n_attrs > DEDUP_WINDOW ? r->n_attrs - DEDUP_WINDOW : 0;
    for (uint32_t k = from; k < r->n_attrs; k++) {
        if (attr_same(r, &r->attrs[k], slot, v, slen)) {
            return CLEW_OK;
        }
    }
    void *p = r->attrs;
    if (!ensure(&p, &r->cap_attrs, r->n_attrs + 1, sizeof(clew_tail_attr))) {
        return CLEW_ENOMEM;
    }
    r->attrs = p;
    clew_tail_attr a;
    memset(&a, 0, sizeof(a));
    a.slot = slot;
    a.type = (uint8_t)v->type;
    switch (v->type) {
    case CLEW_VALUE_STRING: {
        a.len = (uint32_t)slen;
        clew_status rc = add_string(r, v->u.s.ptr, slen, &a.u.off);
        if (rc != CLEW_OK) {
            return rc;
        }
        break;
    }
    case CLEW_VALUE_BOOL:
        a.u.b = v->u.b;
        break;
    case CLEW_VALUE_INT:
        a.u.i = v->u.i;
        break;
    default:
        a.u.d = v->u.d;
        break;
    }
    r->attrs[r->n_attrs++] = a;
    return CLEW_OK;
}

static clew_status add_trace_state(trace_rec *r, clew_str ts)
{
    size_t len = ts.len < MAX_STR ? ts.len : MAX_STR;
    for (uint32_t k = 0; k < r->n_ts; k++) {
        if ((r->ts[k] & 0xffffffffu) == len &&
            memcmp(r->strings + (r->ts[k] >> 32), ts.ptr, len) == 0) {
            return CLEW_OK;
        }
    }
    if (r->n_ts >= MAX_TS) {
        return CLEW_OK;
    }
    void *p = r->ts;
    if (!ensure(&p, &r->cap_ts, r->n_ts + 1, sizeof(uint64_t))) {
        return CLEW_ENOMEM;
    }
    r->ts = p;
    uint64_t off;
    clew_status rc = add_string(r, ts.ptr, len, &off);
    if (rc != CLEW_OK) {
        return rc;
    }
    r->ts[r->n_ts++] = (off << 32) | len;
    return CLEW_OK;
}

/* Folds one span into its pending trace's summary. */
static clew_status summarise(clew_tail_engine *e, uint32_t i, const clew_span_data *s, uint64_t t)
{
    trace_rec *r = &e->recs[i];
    static const uint8_t zero[8];
    r->n_spans++;
    e->m.pending_spans++;
    r->last_ns = t;
    if (r->n_spans == 1 || s->start_ns < r->min_start) {
        r->min_start = s->start_ns;
    }
    if (s->end_ns > r->max_end) {
        r->max_end = s->end_ns;
    }
    if ((unsigned)s->status_code < 3) {
        r->status_seen |= 1u << (unsigned)s->status_code;
    }
    bool root = memcmp(s->parent_span_id.bytes, zero, 8) == 0;
    if (root || r->in_grace) {
        /* grace runs from the last span once the root is in: move to the tail */
        if (r->in_grace) {
            grace_unlink(e, &e->grace, i);
        }
        grace_push(e, &e->grace, i);
        r->in_grace = true;
    }
    if (s->trace_state.len > 0 && r->head_adjusted == 1.0) {
        r->head_adjusted = clew__tail_head_adjusted(s->trace_state.ptr, s->trace_state.len);
    }
    if (r->n_summarised >= e->cfg->max_spans_per_trace) {
        e->m.spans_not_summarised++;
        return CLEW_OK;
    }
    r->n_summarised++;
    clew_status rc = CLEW_OK;
    for (size_t k = 0; k < e->cfg->n_attr_keys && rc == CLEW_OK; k++) {
        const char *key = e->cfg->attr_keys[k];
        size_t klen = strlen(key);
        const clew_value *v = clew__attrs_get(&s->attrs, key, klen);
        if (v != NULL) {
            rc = add_attr(r, (uint16_t)k, v);
        }
        if (rc == CLEW_OK && s->resource != NULL) {
            v = clew__attrs_get(&s->resource->attrs, key, klen);
            if (v != NULL) {
                rc = add_attr(r, (uint16_t)k, v);
            }
        }
    }
    if (rc == CLEW_OK && e->cfg->uses_trace_state && s->trace_state.len > 0) {
        rc = add_trace_state(r, s->trace_state);
    }
    size_t nb = rec_bytes(r);
    e->m.pending_bytes += nb - r->bytes;
    r->bytes = nb;
    return rc;
}

/* Reports late spans of a decided trace (one report per run of spans). */
static void report_late(clew_tail_engine *e, const clew_trace_id *id, uint64_t n)
{
    cache_ent *c = dcache_find(&e->sampled, id);
    clew_tail_decision d = {.trace_id = *id, .n_spans = n, .late = true};
    if (c != NULL) {
        d.state = CLEW_TRACE_KEPT;
        d.reason = c->reason;
        d.adjusted_count = c->adjusted;
        e->m.late_spans_kept += n;
    } else {
        c = dcache_find(&e->non_sampled, id);
        d.state = CLEW_TRACE_DROPPED;
        d.reason = c != NULL ? c->reason : NULL;
        d.adjusted_count = 1.0;
        e->m.late_spans_dropped += n;
    }
    emit(e, &d);
}

static uint32_t rec_new(clew_tail_engine *e, const clew_trace_id *id, uint64_t t)
{
    if (e->free_head == NIL) {
        decide(e, e->age.head, t, true);
    }
    uint32_t i = e->free_head;
    trace_rec *r = &e->recs[i];
    e->free_head = r->hnext;
    memset(r, 0, sizeof(*r));
    r->id = *id;
    r->used = true;
    r->first_ns = r->last_ns = t;
    r->head_adjusted = 1.0;
    r->gprev = r->gnext = NIL;
    r->bytes = sizeof(trace_rec);
    uint32_t *b = &e->buckets[id_hash(id) & e->mask];
    r->hnext = *b;
    *b = i;
    age_push(e, &e->age, i);
    e->m.pending_traces++;
    e->m.pending_bytes += r->bytes;
    return i;
}

clew_status clew__tail_observe_spans(clew_tail_engine *e, const clew_span_data *const *spans,
                                     size_t n)
{
    uint64_t t = now(e);
    clew_status rc = CLEW_OK;
    clew_trace_id late_id;
    uint64_t late_n = 0;
    for (size_t k = 0; k < n; k++) {
        const clew_span_data *s = spans[k];
        if (late_n > 0 && memcmp(late_id.bytes, s->trace_id.bytes, 16) != 0) {
            report_late(e, &late_id, late_n);
            late_n = 0;
        }
        uint32_t i = rec_find(e, &s->trace_id);
        if (i == NIL) {
            if (dcache_find(&e->sampled, &s->trace_id) != NULL ||
                dcache_find(&e->non_sampled, &s->trace_id) != NULL) {
                late_id = s->trace_id;
                late_n++;
                continue;
            }
            i = rec_new(e, &s->trace_id, t);
        }
        clew_status src = summarise(e, i, s, t);
        if (src != CLEW_OK && rc == CLEW_OK) {
            rc = src; /* the trace is still counted; only its summary is short */
        }
        /* the byte budget: decide the oldest traces until it holds again */
        while (e->m.pending_bytes > e->cfg->max_bytes && e->age.head != NIL) {
            bool self = e->age.head == i;
            decide(e, e->age.head, t, true);
            if (self) {
                break;
            }
        }
    }
    if (late_n > 0) {
        report_late(e, &late_id, late_n);
    }
    maybe_log_forced(e, t);
    return rc;
}

typedef struct collect_ctx {
    const clew_span_data **v;
    size_t n;
} collect_ctx;

static bool collect(const clew_span_data *s, void *ud)
{
    collect_ctx *c = ud;
    c->v[c->n++] = s;
    return true;
}

clew_status clew__tail_observe(clew_tail_engine *e, const clew_batch *b)
{
    if (b->n_spans == 0) {
        return CLEW_OK;
    }
    collect_ctx c = {.v = clew__calloc(b->n_spans, sizeof(*c.v)), .n = 0};
    if (c.v == NULL) {
        return CLEW_ENOMEM;
    }
    clew__batch_foreach(b, collect, &c);
    clew_status rc = clew__tail_observe_spans(e, c.v, c.n);
    clew__free(c.v);
    return rc;
}

size_t clew__tail_tick(clew_tail_engine *e)
{
    uint64_t t = now(e);
    size_t n = 0;
    for (;;) {
        uint32_t a = e->age.head;
        uint32_t g = e->grace.head;
        if (a != NIL && t - e->recs[a].first_ns >= e->cfg->decision_wait_ns) {
            decide(e, a, t, false);
        } else if (g != NIL && t - e->recs[g].last_ns >= e->cfg->decision_grace_ns) {
            decide(e, g, t, false);
        } else {
            break;
        }
        n++;
    }
    maybe_log_forced(e, t);
    return n;
}

size_t clew__tail_flush(clew_tail_engine *e)
{
    uint64_t t = now(e);
    size_t n = 0;
    while (e->age.head != NIL) {
        decide(e, e->age.head, t, false);
        n++;
    }
    return n;
}

uint64_t clew__tail_next_due(clew_tail_engine *e)
{
    uint64_t due = UINT64_MAX;
    if (e->age.head != NIL) {
        due = e->recs[e->age.head].first_ns + e->cfg->decision_wait_ns;
    }
    if (e->grace.head != NIL) {
        uint64_t g = e->recs[e->grace.head].last_ns + e->cfg->decision_grace_ns;
        due = g < due ? g : due;
    }
    if (due == UINT64_MAX) {
        return due;
    }
    uint64_t t = now(e);
    return due > t ? due - t : 0;
}

void clew__tail_metrics(clew_tail_engine *e, clew_tail_metrics *out)
{
    *out = e->m;
}
