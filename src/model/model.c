/*
 * src/model/model.c - equality, hashing, cloning and grouping for the span model.
 */
#include "model/model.h"
#include "common/hash.h"

#include <math.h>
#include <string.h>

static bool str_eq(clew_str a, clew_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

const clew_value *clew__attrs_get(const clew_attrs *a, const char *key, size_t key_len)
{
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->items[i].key.len == key_len && memcmp(a->items[i].key.ptr, key, key_len) == 0) {
            return &a->items[i].value;
        }
    }
    return NULL;
}

clew_str clew__resource_service(const clew_resource *r)
{
    static const char unknown[] = "unknown_service";
    if (r != NULL) {
        const clew_value *v = clew__attrs_get(&r->attrs, "service.name", 12);
        if (v != NULL && v->type == CLEW_VALUE_STRING && v->u.s.len > 0) {
            return v->u.s;
        }
    }
    return (clew_str){unknown, sizeof(unknown) - 1};
}

bool clew__value_equal(const clew_value *a, const clew_value *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case CLEW_VALUE_EMPTY:
        return true;
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        return str_eq(a->u.s, b->u.s);
    case CLEW_VALUE_BOOL:
        return a->u.b == b->u.b;
    case CLEW_VALUE_INT:
        return a->u.i == b->u.i;
    case CLEW_VALUE_DOUBLE:
        /* bitwise, so NaN equals NaN and -0 differs from 0 (round trips must be exact) */
        return memcmp(&a->u.d, &b->u.d, sizeof(double)) == 0;
    case CLEW_VALUE_ARRAY:
        if (a->u.array.n != b->u.array.n) {
            return false;
        }
        for (uint32_t i = 0; i < a->u.array.n; i++) {
            if (!clew__value_equal(&a->u.array.items[i], &b->u.array.items[i])) {
                return false;
            }
        }
        return true;
    case CLEW_VALUE_KVLIST:
        if (a->u.kvlist.n != b->u.kvlist.n) {
            return false;
        }
        for (uint32_t i = 0; i < a->u.kvlist.n; i++) {
            if (!str_eq(a->u.kvlist.items[i].key, b->u.kvlist.items[i].key) ||
                !clew__value_equal(&a->u.kvlist.items[i].value, &b->u.kvlist.items[i].value)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

bool clew__attrs_equal(const clew_attrs *a, const clew_attrs *b)
{
    if (a->n != b->n || a->dropped != b->dropped) {
        return false;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        if (!str_eq(a->items[i].key, b->items[i].key) ||
            !clew__value_equal(&a->items[i].value, &b->items[i].value)) {
            return false;
        }
    }
    return true;
}

bool clew__resource_equal(const clew_resource *a, const clew_resource *b)
{
    if (a == b) {
        return true;
    }
    if (a == NULL || b == NULL) {
        return false;
    }
    return clew__attrs_equal(&a->attrs, &b->attrs) && str_eq(a->schema_url, b->schema_url);
}

bool clew__scope_equal(const clew_scope *a, const clew_scope *b)
{
    if (a == b) {
        return true;
    }
    if (a == NULL || b == NULL) {
        return false;
    }
    return str_eq(a->name, b->name) && str_eq(a->version, b->version) &&
           clew__attrs_equal(&a->attrs, &b->attrs) && str_eq(a->schema_url, b->schema_url);
}

bool clew__span_equal(const clew_span_data *a, const clew_span_data *b)
{
    if (memcmp(&a->trace_id, &b->trace_id, sizeof(a->trace_id)) != 0 ||
        memcmp(&a->span_id, &b->span_id, sizeof(a->span_id)) != 0 ||
        memcmp(&a->parent_span_id, &b->parent_span_id, sizeof(a->parent_span_id)) != 0 ||
        !str_eq(a->trace_state, b->trace_state) || a->flags != b->flags ||
        !str_eq(a->name, b->name) || a->kind != b->kind || a->start_ns != b->start_ns ||
        a->end_ns != b->end_ns || !clew__attrs_equal(&a->attrs, &b->attrs) ||
        a->n_events != b->n_events || a->dropped_events != b->dropped_events ||
        a->n_links != b->n_links || a->dropped_links != b->dropped_links ||
        a->status_code != b->status_code || !str_eq(a->status_message, b->status_message) ||
        !clew__resource_equal(a->resource, b->resource) || !clew__scope_equal(a->scope, b->scope)) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_events; i++) {
        const clew_event_data *x = &a->events[i], *y = &b->events[i];
        if (x->time_ns != y->time_ns || !str_eq(x->name, y->name) ||
            !clew__attrs_equal(&x->attrs, &y->attrs)) {
            return false;
        }
    }
    for (uint32_t i = 0; i < a->n_links; i++) {
        const clew_link_data *x = &a->links[i], *y = &b->links[i];
        if (memcmp(&x->trace_id, &y->trace_id, sizeof(x->trace_id)) != 0 ||
            memcmp(&x->span_id, &y->span_id, sizeof(x->span_id)) != 0 ||
            !str_eq(x->trace_state, y->trace_state) || x->flags != y->flags ||
            !clew__attrs_equal(&x->attrs, &y->attrs)) {
            return false;
        }
    }
    return true;
}

typedef struct {
    const clew_span_data **spans;
    size_t n, cap;
} span_list;

static bool collect(const clew_span_data *s, void *ud)
{
    span_list *l = ud;
    if (l->n < l->cap) {
        l->spans[l->n] = s;
    }
    l->n++;
    return true;
}

bool clew__batch_equal(const clew_batch *a, const clew_batch *b)
{
    if (a->n_spans != b->n_spans || a->rejected != b->rejected) {
        return false;
    }
    /* walk both in order; the counts above make a fixed pass enough */
    size_t n = a->n_spans;
    if (n == 0) {
        return true;
    }
    const clew_span_data *stack_a[64], *stack_b[64];
    const clew_span_data **la = stack_a, **lb = stack_b;
    clew_arena tmp;
    clew__arena_init(&tmp, 4096, 0);
    if (n > 64) {
        la = clew__arena_calloc(&tmp, n, sizeof(*la));
        lb = clew__arena_calloc(&tmp, n, sizeof(*lb));
        if (la == NULL || lb == NULL) {
            clew__arena_deinit(&tmp);
            return false;
        }
    }
    span_list sa = {la, 0, n}, sb = {lb, 0, n};
    clew__batch_foreach(a, collect, &sa);
    clew__batch_foreach(b, collect, &sb);
    bool eq = sa.n == n && sb.n == n;
    for (size_t i = 0; eq && i < n; i++) {
        eq = clew__span_equal(la[i], lb[i]);
    }
    clew__arena_deinit(&tmp);
    return eq;
}

uint64_t clew__value_hash(uint64_t h, const clew_value *v)
{
    h = clew__hash_u64(h, (uint64_t)v->type);
    switch (v->type) {
    case CLEW_VALUE_EMPTY:
        break;
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        h = clew__hash_u64(h, v->u.s.len);
        h = clew__hash_bytes(h, v->u.s.ptr, v->u.s.len);
        break;
    case CLEW_VALUE_BOOL:
        h = clew__hash_u64(h, v->u.b);
        break;
    case CLEW_VALUE_INT:
        h = clew__hash_u64(h, (uint64_t)v->u.i);
        break;
    case CLEW_VALUE_DOUBLE:
        h = clew__hash_bytes(h, &v->u.d, sizeof(double));
        break;
    case CLEW_VALUE_ARRAY:
        h = clew__hash_u64(h, v->u.array.n);
        for (uint32_t i = 0; i < v->u.array.n; i++) {
            h = clew__value_hash(h, &v->u.array.items[i]);
        }
        break;
    case CLEW_VALUE_KVLIST:
        h = clew__hash_u64(h, v->u.kvlist.n);
        for (uint32_t i = 0; i < v->u.kvlist.n; i++) {
            h = clew__hash_bytes(h, v->u.kvlist.items[i].key.ptr, v->u.kvlist.items[i].key.len);
            h = clew__value_hash(h, &v->u.kvlist.items[i].value);
        }
        break;
    }
    return h;
}

uint64_t clew__attrs_hash(uint64_t h, const clew_attrs *a)
{
    h = clew__hash_u64(h, a->n);
    h = clew__hash_u64(h, a->dropped);
    for (uint32_t i = 0; i < a->n; i++) {
        h = clew__hash_u64(h, a->items[i].key.len);
        h = clew__hash_bytes(h, a->items[i].key.ptr, a->items[i].key.len);
        h = clew__value_hash(h, &a->items[i].value);
    }
    return h;
}

uint64_t clew__resource_hash(const clew_resource *r)
{
    uint64_t h = clew__attrs_hash(CLEW_HASH_SEED, &r->attrs);
    h = clew__hash_bytes(h, r->schema_url.ptr, r->schema_url.len);
    return clew__hash_finish(h);
}

uint64_t clew__scope_hash(const clew_scope *s)
{
    uint64_t h = clew__hash_u64(CLEW_HASH_SEED, s->name.len);
    h = clew__hash_bytes(h, s->name.ptr, s->name.len);
    h = clew__hash_u64(h, s->version.len);
    h = clew__hash_bytes(h, s->version.ptr, s->version.len);
    h = clew__attrs_hash(h, &s->attrs);
    h = clew__hash_bytes(h, s->schema_url.ptr, s->schema_url.len);
    return clew__hash_finish(h);
}

static clew_status str_clone(clew_str *dst, clew_str src, clew_arena *a)
{
    if (src.len == 0) {
        *dst = (clew_str){"", 0};
        return CLEW_OK;
    }
    *dst = clew__arena_strdup(a, src.ptr, src.len);
    return dst->ptr ? CLEW_OK : CLEW_ENOMEM;
}

clew_status clew__value_clone(clew_value *dst, const clew_value *src, clew_arena *a)
{
    clew_status rc;
    *dst = *src;
    switch (src->type) {
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        return str_clone(&dst->u.s, src->u.s, a);
    case CLEW_VALUE_ARRAY:
        if (src->u.array.n == 0) {
            dst->u.array.items = NULL;
            return CLEW_OK;
        }
        dst->u.array.items = clew__arena_alloc(a, sizeof(clew_value) * src->u.array.n);
        if (dst->u.array.items == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < src->u.array.n; i++) {
            rc = clew__value_clone(&dst->u.array.items[i], &src->u.array.items[i], a);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
        return CLEW_OK;
    case CLEW_VALUE_KVLIST: {
        clew_attrs s = {src->u.kvlist.items, src->u.kvlist.n, 0}, d;
        rc = clew__attrs_clone(&d, &s, a);
        dst->u.kvlist.items = d.items;
        return rc;
    }
    default:
        return CLEW_OK;
    }
}

clew_status clew__attrs_clone(clew_attrs *dst, const clew_attrs *src, clew_arena *a)
{
    *dst = *src;
    if (src->n == 0) {
        dst->items = NULL;
        return CLEW_OK;
    }
    dst->items = clew__arena_alloc(a, sizeof(clew_kv) * src->n);
    if (dst->items == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < src->n; i++) {
        clew_status rc = str_clone(&dst->items[i].key, src->items[i].key, a);
        if (rc == CLEW_OK) {
            rc = clew__value_clone(&dst->items[i].value, &src->items[i].value, a);
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

clew_status clew__resource_clone(clew_resource *dst, const clew_resource *src, clew_arena *a)
{
    clew_status rc = clew__attrs_clone(&dst->attrs, &src->attrs, a);
    if (rc == CLEW_OK) {
        rc = str_clone(&dst->schema_url, src->schema_url, a);
    }
    return rc;
}

clew_status clew__scope_clone(clew_scope *dst, const clew_scope *src, clew_arena *a)
{
    clew_status rc = str_clone(&dst->name, src->name, a);
    if (rc == CLEW_OK) {
        rc = str_clone(&dst->version, src->version, a);
    }
    if (rc == CLEW_OK) {
        rc = clew__attrs_clone(&dst->attrs, &src->attrs, a);
    }
    if (rc == CLEW_OK) {
        rc = str_clone(&dst->schema_url, src->schema_url, a);
    }
    return rc;
}

clew_status clew__span_clone(clew_span_data *dst, const clew_span_data *src, clew_arena *a)
{
    clew_status rc;
    *dst = *src;
    if ((rc = str_clone(&dst->trace_state, src->trace_state, a)) != CLEW_OK ||
        (rc = str_clone(&dst->name, src->name, a)) != CLEW_OK ||
        (rc = str_clone(&dst->status_message, src->status_message, a)) != CLEW_OK ||
        (rc = clew__attrs_clone(&dst->attrs, &src->attrs, a)) != CLEW_OK) {
        return rc;
    }
    dst->events = NULL;
    dst->links = NULL;
    if (src->n_events) {
        dst->events = clew__arena_alloc(a, sizeof(clew_event_data) * src->n_events);
        if (dst->events == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < src->n_events; i++) {
            dst->events[i] = src->events[i];
            if ((rc = str_clone(&dst->events[i].name, src->events[i].name, a)) != CLEW_OK ||
                (rc = clew__attrs_clone(&dst->events[i].attrs, &src->events[i].attrs, a)) !=
                    CLEW_OK) {
                return rc;
            }
        }
    }
    if (src->n_links) {
        dst->links = clew__arena_alloc(a, sizeof(clew_link_data) * src->n_links);
        if (dst->links == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < src->n_links; i++) {
            dst->links[i] = src->links[i];
            if ((rc = str_clone(&dst->links[i].trace_state, src->links[i].trace_state, a)) !=
                    CLEW_OK ||
                (rc = clew__attrs_clone(&dst->links[i].attrs, &src->links[i].attrs, a)) !=
                    CLEW_OK) {
                return rc;
            }
        }
    }
    return CLEW_OK;
}

clew_status clew__batch_from_spans(clew_batch *out, const clew_span_data *const *spans, size_t n,
                                   clew_arena *arena)
{
    memset(out, 0, sizeof(*out));
    if (n == 0) {
        return CLEW_OK;
    }
    /* Worst case one resource group and one scope group per span. Quadratic in the
     * number of distinct resources, which is small for one trace. */
    clew_resource_spans *rs = clew__arena_calloc(arena, n, sizeof(*rs));
    if (rs == NULL) {
        return CLEW_ENOMEM;
    }
    size_t n_rs = 0;
    /* first pass: group keys */
    for (size_t i = 0; i < n; i++) {
        size_t r;
        for (r = 0; r < n_rs && rs[r].resource != spans[i]->resource; r++) {
        }
        if (r == n_rs) {
            rs[n_rs++].resource = spans[i]->resource;
            rs[r].scopes = clew__arena_calloc(arena, n, sizeof(clew_scope_spans));
            if (rs[r].scopes == NULL) {
                return CLEW_ENOMEM;
            }
        }
        size_t s;
        for (s = 0; s < rs[r].n_scopes && rs[r].scopes[s].scope != spans[i]->scope; s++) {
        }
        if (s == rs[r].n_scopes) {
            rs[r].scopes[rs[r].n_scopes++].scope = spans[i]->scope;
        }
        rs[r].scopes[s].n_spans++; /* counted now, filled in the second pass */
    }
    for (size_t r = 0; r < n_rs; r++) {
        for (size_t s = 0; s < rs[r].n_scopes; s++) {
            rs[r].scopes[s].spans =
                clew__arena_alloc(arena, sizeof(clew_span_data) * rs[r].scopes[s].n_spans);
            if (rs[r].scopes[s].spans == NULL) {
                return CLEW_ENOMEM;
            }
            rs[r].scopes[s].n_spans = 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t r, s;
        for (r = 0; rs[r].resource != spans[i]->resource; r++) {
        }
        for (s = 0; rs[r].scopes[s].scope != spans[i]->scope; s++) {
        }
        rs[r].scopes[s].spans[rs[r].scopes[s].n_spans++] = *spans[i];
    }
    out->rs = rs;
    out->n_rs = n_rs;
    out->n_spans = n;
    return CLEW_OK;
}

void clew__batch_foreach(const clew_batch *b, clew_span_visit_fn fn, void *ud)
{
    for (size_t r = 0; r < b->n_rs; r++) {
        for (size_t s = 0; s < b->rs[r].n_scopes; s++) {
            const clew_scope_spans *ss = &b->rs[r].scopes[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                if (!fn(&ss->spans[i], ud)) {
                    return;
                }
            }
        }
    }
}

const char *clew__kind_name(clew_span_kind k)
{
    switch (k) {
    case CLEW_KIND_INTERNAL:
        return "internal";
    case CLEW_KIND_SERVER:
        return "server";
    case CLEW_KIND_CLIENT:
        return "client";
    case CLEW_KIND_PRODUCER:
        return "producer";
    case CLEW_KIND_CONSUMER:
        return "consumer";
    default:
        return "unspecified";
    }
}

const char *clew__status_code_name(clew_status_code c)
{
    switch (c) {
    case CLEW_STATUS_OK:
        return "ok";
    case CLEW_STATUS_ERROR:
        return "error";
    default:
        return "unset";
    }
}
