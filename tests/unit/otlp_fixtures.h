/*
 * tests/unit/otlp_fixtures.h - a batch that uses every field and value type of the
 * span model, shared by the OTLP protobuf and JSON codec tests (test_otlp_pb.c,
 * test_otlp_json.c) so that both codecs are checked against the same data.
 *
 * Included by test files only (static functions); everything it builds lives in the
 * caller's arena. Not thread-safe, like the tests themselves.
 */
#ifndef CLEW_TESTS_UNIT_OTLP_FIXTURES_H
#define CLEW_TESTS_UNIT_OTLP_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "model/model.h"

#define S(lit) ((clew_str){(lit), sizeof(lit) - 1})

/* ---- a batch that uses every field and value type ---- */

static clew_value v_str(clew_str s)
{
    clew_value v = {.type = CLEW_VALUE_STRING};
    v.u.s = s;
    return v;
}
static clew_value v_int(int64_t i)
{
    clew_value v = {.type = CLEW_VALUE_INT};
    v.u.i = i;
    return v;
}
static clew_value v_dbl(double d)
{
    clew_value v = {.type = CLEW_VALUE_DOUBLE};
    v.u.d = d;
    return v;
}
static clew_value v_bool(bool b)
{
    clew_value v = {.type = CLEW_VALUE_BOOL};
    v.u.b = b;
    return v;
}
static clew_value v_bytes(const char *p, size_t n)
{
    clew_value v = {.type = CLEW_VALUE_BYTES};
    v.u.s = (clew_str){p, n};
    return v;
}

static void set_id(uint8_t *out, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(seed + i * 7 + 1);
    }
}

/* Builds the rich batch in arena a: 2 resources, 3 scopes, 4 spans. */
static void build_rich_batch(clew_arena *a, clew_batch *b)
{
    static const char nul_bytes[] = {0, 1, 0, (char)0xff, 'x'};
    clew_value *inner = clew__arena_calloc(a, 2, sizeof(clew_value));
    inner[0] = v_bool(true);
    inner[1] = (clew_value){.type = CLEW_VALUE_EMPTY};
    clew_kv *kvl = clew__arena_calloc(a, 2, sizeof(clew_kv));
    kvl[0] = (clew_kv){S("k1"), v_dbl(2.5)};
    kvl[1] = (clew_kv){S(""), v_str(S("empty key"))};
    clew_value *arr = clew__arena_calloc(a, 5, sizeof(clew_value));
    arr[0] = v_int(1);
    arr[1] = v_str(S("x"));
    arr[2].type = CLEW_VALUE_ARRAY;
    arr[2].u.array.items = inner;
    arr[2].u.array.n = 2;
    arr[3].type = CLEW_VALUE_KVLIST;
    arr[3].u.kvlist.items = kvl;
    arr[3].u.kvlist.n = 2;
    arr[4].type = CLEW_VALUE_ARRAY; /* an empty array */

    clew_kv *attrs = clew__arena_calloc(a, 24, sizeof(clew_kv));
    size_t n = 0;
    attrs[n++] = (clew_kv){S("str"), v_str(S("hello w\xc3\xb6rld"))};
    attrs[n++] = (clew_kv){S("empty.str"), v_str(S(""))};
    attrs[n++] = (clew_kv){S("bool.t"), v_bool(true)};
    attrs[n++] = (clew_kv){S("bool.f"), v_bool(false)};
    attrs[n++] = (clew_kv){S("int.0"), v_int(0)};
    attrs[n++] = (clew_kv){S("int.neg"), v_int(-1)};
    attrs[n++] = (clew_kv){S("int.min"), v_int(INT64_MIN)};
    attrs[n++] = (clew_kv){S("int.max"), v_int(INT64_MAX)};
    attrs[n++] = (clew_kv){S("dbl"), v_dbl(3.141592653589793)};
    attrs[n++] = (clew_kv){S("dbl.negzero"), v_dbl(-0.0)};
    attrs[n++] = (clew_kv){S("dbl.nan"), v_dbl(NAN)};
    attrs[n++] = (clew_kv){S("dbl.inf"), v_dbl(-INFINITY)};
    attrs[n++] = (clew_kv){S("dbl.tiny"), v_dbl(5e-324)};
    attrs[n++] = (clew_kv){S("dbl.big"), v_dbl(1.7976931348623157e308)};
    attrs[n++] = (clew_kv){S("dbl.int"), v_dbl(1e17)};
    attrs[n++] = (clew_kv){S("bytes"), v_bytes(nul_bytes, sizeof(nul_bytes))};
    attrs[n++] = (clew_kv){S("arr"), {.type = CLEW_VALUE_ARRAY, .u.array = {arr, 5}}};
    attrs[n++] = (clew_kv){S("kv"), {.type = CLEW_VALUE_KVLIST, .u.kvlist = {kvl, 2}}};
    attrs[n++] = (clew_kv){S("empty"), {.type = CLEW_VALUE_EMPTY}};
    attrs[n++] = (clew_kv){S("str.nul"), v_str((clew_str){"a\0b", 3})};
    /* past the one-byte lengths of the decoder's fast paths */
    char *long_str = clew__arena_alloc(a, 300);
    for (int i = 0; i < 300; i++) {
        long_str[i] = (char)('a' + i % 26);
    }
    attrs[n++] = (clew_kv){S("str.long"), v_str((clew_str){long_str, 300})};
    attrs[n++] = (clew_kv){S("int.big"), v_int(1234567890123)};

    clew_resource *res = clew__arena_calloc(a, 2, sizeof(clew_resource));
    clew_kv *rattrs = clew__arena_calloc(a, 2, sizeof(clew_kv));
    rattrs[0] = (clew_kv){S("service.name"), v_str(S("frontend"))};
    rattrs[1] = (clew_kv){S("host.cores"), v_int(8)};
    res[0] = (clew_resource){{rattrs, 2, 3}, S("https://opentelemetry.io/schemas/1.24.0")};
    res[1] = (clew_resource){{rattrs, 1, 0}, S("")};

    clew_scope *scopes = clew__arena_calloc(a, 3, sizeof(clew_scope));
    scopes[0] = (clew_scope){S("lib.http"), S("1.2.3"), {kvl, 1, 1}, S("scope-schema")};
    scopes[1] = (clew_scope){S("lib.db"), S(""), {NULL, 0, 0}, S("")};
    scopes[2] = (clew_scope){S(""), S(""), {NULL, 0, 0}, S("")};

    clew_span_data *spans = clew__arena_calloc(a, 4, sizeof(clew_span_data));
    for (int i = 0; i < 4; i++) {
        clew_span_data *s = &spans[i];
        set_id(s->trace_id.bytes, 16, (uint8_t)(i < 2 ? 1 : 2));
        set_id(s->span_id.bytes, 8, (uint8_t)(10 + i));
        s->trace_state = S("");
        s->name = S("GET /api/users");
        s->status_message = S("");
        s->start_ns = 1544712660000000000ull + (uint64_t)i;
        s->end_ns = 1544712661000000000ull + (uint64_t)i;
    }
    /* span 0: root, everything set */
    clew_span_data *s0 = &spans[0];
    s0->kind = CLEW_KIND_SERVER;
    s0->flags = CLEW_FLAG_SAMPLED | CLEW_FLAG_HAS_IS_REMOTE | CLEW_FLAG_IS_REMOTE;
    s0->trace_state = S("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    s0->attrs = (clew_attrs){attrs, (uint32_t)n, 7};
    s0->events = clew__arena_calloc(a, 2, sizeof(clew_event_data));
    s0->events[0] = (clew_event_data){1544712660500000000ull, S("exception"), {attrs, 3, 2}};
    s0->events[1] = (clew_event_data){0, S(""), {NULL, 0, 0}};
    s0->n_events = 2;
    s0->dropped_events = 5;
    s0->links = clew__arena_calloc(a, 1, sizeof(clew_link_data));
    set_id(s0->links[0].trace_id.bytes, 16, 40);
    set_id(s0->links[0].span_id.bytes, 8, 50);
    s0->links[0].trace_state = S("k=v");
    s0->links[0].attrs = (clew_attrs){kvl, 2, 4};
    s0->links[0].flags = 0x101;
    s0->n_links = 1;
    s0->dropped_links = 6;
    s0->status_code = CLEW_STATUS_ERROR;
    s0->status_message = S("boom");
    /* span 1: child of span 0 */
    spans[1].parent_span_id = s0->span_id;
    spans[1].kind = CLEW_KIND_CLIENT;
    spans[1].status_code = CLEW_STATUS_OK;
    /* span 2: no name, unset kind, zero times */
    spans[2].name = S("");
    spans[2].start_ns = 0;
    spans[2].end_ns = 0;
    spans[3].kind = CLEW_KIND_CONSUMER;
    spans[3].status_message = S("only a message");

    clew_scope_spans *ss = clew__arena_calloc(a, 4, sizeof(clew_scope_spans));
    ss[0] = (clew_scope_spans){&scopes[0], &spans[0], 2};
    ss[1] = (clew_scope_spans){&scopes[1], &spans[2], 1};
    ss[2] = (clew_scope_spans){&scopes[2], &spans[3], 1};
    ss[3] = (clew_scope_spans){&scopes[1], NULL, 0}; /* an empty ScopeSpans */
    for (int i = 0; i < 2; i++) {
        spans[i].resource = &res[0];
        spans[i].scope = &scopes[0];
    }
    spans[2].resource = &res[0];
    spans[2].scope = &scopes[1];
    spans[3].resource = &res[1];
    spans[3].scope = &scopes[2];

    clew_resource_spans *rs = clew__arena_calloc(a, 3, sizeof(clew_resource_spans));
    rs[0] = (clew_resource_spans){&res[0], ss, 2};
    rs[1] = (clew_resource_spans){&res[1], &ss[2], 2};
    rs[2] = (clew_resource_spans){&res[1], NULL, 0}; /* an empty ResourceSpans */
    *b = (clew_batch){rs, 3, 4, 0, S("")};
}

#endif /* CLEW_TESTS_UNIT_OTLP_FIXTURES_H */
