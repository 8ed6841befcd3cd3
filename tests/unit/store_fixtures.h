/*
 * tests/unit/store_fixtures.h - builders for ids, attributes, spans and one-resource
 * batches, shared by the store and query API tests (test_memory_store.c, test_api.c).
 *
 * Included by test files only (static functions); everything they build lives in
 * the caller's arena. Not thread-safe, like the tests themselves.
 */
#ifndef CLEW_TESTS_UNIT_STORE_FIXTURES_H
#define CLEW_TESTS_UNIT_STORE_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "model/model.h"

static clew_trace_id tid(uint64_t hi, uint64_t lo)
{
    clew_trace_id t;
    for (int i = 0; i < 8; i++) {
        t.bytes[i] = (uint8_t)(hi >> (56 - 8 * i));
        t.bytes[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    return t;
}

static clew_span_id sid(uint64_t v)
{
    clew_span_id s;
    for (int i = 0; i < 8; i++) {
        s.bytes[i] = (uint8_t)(v >> (56 - 8 * i));
    }
    return s;
}

static clew_str S(clew_arena *a, const char *s)
{
    return clew__arena_strdup(a, s, strlen(s));
}

static clew_kv kv_str(clew_arena *a, const char *k, const char *v)
{
    clew_kv kv = {S(a, k), {.type = CLEW_VALUE_STRING}};
    kv.value.u.s = S(a, v);
    return kv;
}

static clew_kv kv_int(clew_arena *a, const char *k, int64_t v)
{
    clew_kv kv = {S(a, k), {.type = CLEW_VALUE_INT}};
    kv.value.u.i = v;
    return kv;
}

/* A resource with service.name and optionally one more string attribute. */
static clew_resource *mk_res(clew_arena *a, const char *svc, const char *k, const char *v)
{
    clew_resource *r = clew__arena_calloc(a, 1, sizeof(*r));
    r->attrs.items = clew__arena_calloc(a, 2, sizeof(clew_kv));
    r->attrs.items[r->attrs.n++] = kv_str(a, "service.name", svc);
    if (k != NULL) {
        r->attrs.items[r->attrs.n++] = kv_str(a, k, v);
    }
    return r;
}

static clew_span_data mk_span(clew_arena *a, clew_trace_id t, uint64_t span, uint64_t parent,
                              const char *name, uint64_t start, uint64_t end)
{
    clew_span_data s;
    memset(&s, 0, sizeof(s));
    s.trace_id = t;
    s.span_id = sid(span);
    if (parent) {
        s.parent_span_id = sid(parent);
    }
    s.name = S(a, name);
    s.kind = CLEW_KIND_SERVER;
    s.start_ns = start;
    s.end_ns = end;
    return s;
}

/* One resource, one scope, n spans (copied). */
static clew_batch mk_batch(clew_arena *a, const clew_resource *r, const clew_scope *sc,
                           const clew_span_data *spans, size_t n)
{
    clew_batch b;
    memset(&b, 0, sizeof(b));
    clew_resource_spans *rs = clew__arena_calloc(a, 1, sizeof(*rs));
    clew_scope_spans *ss = clew__arena_calloc(a, 1, sizeof(*ss));
    ss->scope = sc;
    ss->spans = clew__arena_calloc(a, n, sizeof(clew_span_data));
    memcpy(ss->spans, spans, n * sizeof(clew_span_data));
    ss->n_spans = n;
    for (size_t i = 0; i < n; i++) {
        ss->spans[i].resource = r;
        ss->spans[i].scope = sc;
    }
    rs->resource = r;
    rs->scopes = ss;
    rs->n_scopes = 1;
    b.rs = rs;
    b.n_rs = 1;
    b.n_spans = n;
    return b;
}

#endif /* CLEW_TESTS_UNIT_STORE_FIXTURES_H */
