/*
 * tests/unit/test_model.c - the span model: equality, hashing, deep clone, grouping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "model/model.h"

#define S(lit) ((clew_str){lit, sizeof(lit) - 1})

static clew_kv nested_items[2];
static clew_value array_items[3];
static clew_kv attr_items[4];
static clew_resource res_a, res_b;
static clew_scope scope_a;

static void build_fixtures(void)
{
    array_items[0] = (clew_value){.type = CLEW_VALUE_INT, .u.i = -5};
    array_items[1] = (clew_value){.type = CLEW_VALUE_STRING, .u.s = S("x")};
    array_items[2] = (clew_value){.type = CLEW_VALUE_EMPTY};
    nested_items[0] = (clew_kv){S("k"), {.type = CLEW_VALUE_BOOL, .u.b = true}};
    nested_items[1] = (clew_kv){S("arr"), {.type = CLEW_VALUE_ARRAY, .u.array = {array_items, 3}}};
    attr_items[0] = (clew_kv){S("http.method"), {.type = CLEW_VALUE_STRING, .u.s = S("GET")}};
    attr_items[1] = (clew_kv){S("bytes"), {.type = CLEW_VALUE_BYTES, .u.s = {"\0\1\2", 3}}};
    attr_items[2] = (clew_kv){S("ratio"), {.type = CLEW_VALUE_DOUBLE, .u.d = 0.25}};
    attr_items[3] = (clew_kv){S("map"), {.type = CLEW_VALUE_KVLIST, .u.kvlist = {nested_items, 2}}};
    static clew_kv res_attrs_a[1] = {
        {S("service.name"), {.type = CLEW_VALUE_STRING, .u.s = S("api")}}};
    static clew_kv res_attrs_b[1] = {
        {S("service.name"), {.type = CLEW_VALUE_STRING, .u.s = S("db")}}};
    res_a = (clew_resource){.attrs = {res_attrs_a, 1, 0}};
    res_b = (clew_resource){.attrs = {res_attrs_b, 1, 0}};
    scope_a = (clew_scope){.name = S("lib"), .version = S("1.0")};
}

static clew_span_data make_span(uint8_t id, const clew_resource *r)
{
    static clew_event_data ev = {.time_ns = 5, .name = S("retry")};
    static clew_link_data link = {.trace_state = S("a=b"), .flags = 1};
    clew_span_data s;
    memset(&s, 0, sizeof(s));
    s.trace_id.bytes[15] = 1;
    s.span_id.bytes[7] = id;
    s.name = S("GET /users");
    s.kind = CLEW_KIND_SERVER;
    s.start_ns = 100;
    s.end_ns = 200;
    s.attrs = (clew_attrs){attr_items, 4, 1};
    s.events = &ev;
    s.n_events = 1;
    link.trace_id.bytes[0] = 9;
    link.span_id.bytes[0] = 9;
    s.links = &link;
    s.n_links = 1;
    s.status_code = CLEW_STATUS_ERROR;
    s.status_message = S("boom");
    s.resource = r;
    s.scope = &scope_a;
    return s;
}

static void equality_and_clone(void **state)
{
    (void)state;
    build_fixtures();
    clew_span_data a = make_span(1, &res_a);
    clew_arena arena;
    clew__arena_init(&arena, 128, 0);
    clew_span_data b;
    assert_int_equal(clew__span_clone(&b, &a, &arena), CLEW_OK);
    assert_true(clew__span_equal(&a, &b));
    /* the clone owns its strings: they live in the arena, not in the fixtures */
    assert_ptr_not_equal(a.name.ptr, b.name.ptr);
    assert_ptr_not_equal(a.attrs.items[3].value.u.kvlist.items,
                         b.attrs.items[3].value.u.kvlist.items);
    b.attrs.items[3].value.u.kvlist.items[1].value.u.array.items[0].u.i = 6;
    assert_false(clew__span_equal(&a, &b));
    clew__arena_deinit(&arena);

    clew_span_data c = make_span(1, &res_b);
    assert_false(clew__span_equal(&a, &c)); /* resources differ by content */
    clew_value nan1 = {.type = CLEW_VALUE_DOUBLE, .u.d = __builtin_nan("")};
    assert_true(clew__value_equal(&nan1, &nan1));
    clew_value z1 = {.type = CLEW_VALUE_DOUBLE, .u.d = 0.0},
               z2 = {.type = CLEW_VALUE_DOUBLE, .u.d = -0.0};
    assert_false(clew__value_equal(&z1, &z2));
}

static void clone_oom(void **state)
{
    (void)state;
    build_fixtures();
    clew_span_data a = make_span(1, &res_a);
    /* fail each allocation in turn: clone reports ENOMEM, never crashes */
    for (long n = 0; n < 6; n++) {
        clew_arena arena;
        clew__arena_init(&arena, 64, 0);
        clew_span_data b;
        clew__alloc_fail_after(n);
        clew_status rc = clew__span_clone(&b, &a, &arena);
        clew__alloc_fail_after(-1);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        clew__arena_deinit(&arena);
    }
}

static void hashing(void **state)
{
    (void)state;
    build_fixtures();
    clew_resource copy;
    clew_arena arena;
    clew__arena_init(&arena, 128, 0);
    assert_int_equal(clew__resource_clone(&copy, &res_a, &arena), CLEW_OK);
    assert_int_equal(clew__resource_hash(&copy), clew__resource_hash(&res_a));
    assert_true(clew__resource_equal(&copy, &res_a));
    assert_int_not_equal(clew__resource_hash(&res_a), clew__resource_hash(&res_b));
    clew__arena_deinit(&arena);
    clew_str svc = clew__resource_service(&res_a);
    assert_int_equal(svc.len, 3);
    assert_memory_equal(svc.ptr, "api", 3);
    assert_memory_equal(clew__resource_service(NULL).ptr, "unknown_service", 15);
}

static void grouping(void **state)
{
    (void)state;
    build_fixtures();
    clew_span_data s1 = make_span(1, &res_a), s2 = make_span(2, &res_b), s3 = make_span(3, &res_a);
    const clew_span_data *list[3] = {&s1, &s2, &s3};
    clew_arena arena;
    clew__arena_init(&arena, 256, 0);
    clew_batch b;
    assert_int_equal(clew__batch_from_spans(&b, list, 3, &arena), CLEW_OK);
    assert_int_equal(b.n_rs, 2);
    assert_int_equal(b.n_spans, 3);
    assert_ptr_equal(b.rs[0].resource, &res_a);
    assert_int_equal(b.rs[0].n_scopes, 1);
    assert_int_equal(b.rs[0].scopes[0].n_spans, 2);
    assert_int_equal(b.rs[0].scopes[0].spans[1].span_id.bytes[7], 3);
    assert_int_equal(b.rs[1].scopes[0].spans[0].span_id.bytes[7], 2);
    /* regrouped batch equals itself but not a batch in another span order */
    assert_true(clew__batch_equal(&b, &b));
    const clew_span_data *list2[3] = {&s1, &s3, &s2};
    clew_batch b2;
    assert_int_equal(clew__batch_from_spans(&b2, list2, 3, &arena), CLEW_OK);
    assert_true(clew__batch_equal(&b, &b2)); /* same grouping result */
    const clew_span_data *list3[3] = {&s2, &s1, &s3};
    clew_batch b3;
    assert_int_equal(clew__batch_from_spans(&b3, list3, 3, &arena), CLEW_OK);
    assert_false(clew__batch_equal(&b, &b3));
    clew__arena_deinit(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(equality_and_clone),
        cmocka_unit_test(clone_oom),
        cmocka_unit_test(hashing),
        cmocka_unit_test(grouping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
