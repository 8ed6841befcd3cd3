/*
 * tests/unit/test_limits.c - clew__limits_apply: counts kept and dropped counts
 * added (never silent), value truncation (UTF-8 boundaries, bytes, arrays, key
 * lists), events and links, "0 = no limit", and the per-limit counters; and
 * clew__limits_apply_changed telling exactly whether this batch was changed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "server/limits.h"

/* One span in one scope in one resource, all in the arena. */
typedef struct fixture {
    clew_arena arena;
    clew_batch batch;
    clew_span_data *span;
} fixture;

static clew_kv *make_attrs(clew_arena *a, uint32_t n, const char *value)
{
    clew_kv *kv = clew__arena_calloc(a, n, sizeof(*kv));
    assert_non_null(kv);
    for (uint32_t i = 0; i < n; i++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "k%u", i);
        kv[i].key = clew__arena_strdup(a, key, (size_t)len);
        kv[i].value.type = CLEW_VALUE_STRING;
        kv[i].value.u.s = clew__arena_strdup(a, value, strlen(value));
    }
    return kv;
}

static void fixture_init(fixture *f, uint32_t n_attrs, uint32_t n_events, uint32_t n_links)
{
    memset(f, 0, sizeof(*f));
    clew__arena_init(&f->arena, 64 * 1024, 0);
    clew_arena *a = &f->arena;
    clew_resource *res = clew__arena_calloc(a, 1, sizeof(*res));
    clew_scope *scope = clew__arena_calloc(a, 1, sizeof(*scope));
    clew_resource_spans *rs = clew__arena_calloc(a, 1, sizeof(*rs));
    clew_scope_spans *ss = clew__arena_calloc(a, 1, sizeof(*ss));
    clew_span_data *sp = clew__arena_calloc(a, 1, sizeof(*sp));
    assert_non_null(sp);
    /* resource attributes over every limit: they must stay untouched */
    res->attrs.items = make_attrs(a, 300, "resource-value");
    res->attrs.n = 300;
    sp->resource = res;
    sp->scope = scope;
    sp->span_id.bytes[7] = 1;
    sp->trace_id.bytes[15] = 1;
    sp->attrs.items = make_attrs(a, n_attrs, "v");
    sp->attrs.n = n_attrs;
    sp->events = clew__arena_calloc(a, n_events + 1, sizeof(*sp->events));
    sp->n_events = n_events;
    for (uint32_t i = 0; i < n_events; i++) {
        sp->events[i].attrs.items = make_attrs(a, 5, "event");
        sp->events[i].attrs.n = 5;
    }
    sp->links = clew__arena_calloc(a, n_links + 1, sizeof(*sp->links));
    sp->n_links = n_links;
    for (uint32_t i = 0; i < n_links; i++) {
        sp->links[i].attrs.items = make_attrs(a, 5, "link");
        sp->links[i].attrs.n = 5;
    }
    ss->scope = scope;
    ss->spans = sp;
    ss->n_spans = 1;
    rs->resource = res;
    rs->scopes = ss;
    rs->n_scopes = 1;
    f->batch.rs = rs;
    f->batch.n_rs = 1;
    f->batch.n_spans = 1;
    f->span = sp;
}

static void fixture_deinit(fixture *f)
{
    clew__arena_deinit(&f->arena);
}

static void attribute_count_adds_to_dropped(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 200, 0, 0);
    f.span->attrs.dropped = 7; /* what the producer already dropped stays counted */
    _Atomic uint64_t counters[CLEW_LIMIT_COUNT] = {0};
    clew_limits l = {.span_attribute_count = 128, .counters = counters};
    assert_int_equal(clew__limits_apply(&l, &f.batch, &f.arena), CLEW_OK);
    assert_int_equal(f.span->attrs.n, 128);
    assert_int_equal(f.span->attrs.dropped, 7 + 72);
    /* the first attributes are the ones kept */
    assert_int_equal(f.span->attrs.items[0].key.len, 2);
    assert_memory_equal(f.span->attrs.items[127].key.ptr, "k127", 4);
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_SPAN_ATTRIBUTES]), 1);
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_VALUE_LENGTH]), 0);
    /* resource attributes are not span attributes */
    assert_int_equal(f.span->resource->attrs.n, 300);
    assert_int_equal(f.span->resource->attrs.dropped, 0);
    fixture_deinit(&f);
}

static void under_limits_nothing_changes(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 10, 3, 2);
    _Atomic uint64_t counters[CLEW_LIMIT_COUNT] = {0};
    clew_limits l = {128, 128, 128, 1024, 128, 128, counters};
    assert_int_equal(clew__limits_apply(&l, &f.batch, &f.arena), CLEW_OK);
    assert_int_equal(f.span->attrs.n, 10);
    assert_int_equal(f.span->attrs.dropped, 0);
    assert_int_equal(f.span->n_events, 3);
    assert_int_equal(f.span->dropped_events, 0);
    assert_int_equal(f.span->n_links, 2);
    assert_int_equal(f.span->dropped_links, 0);
    for (int w = 0; w < CLEW_LIMIT_COUNT; w++) {
        assert_int_equal(atomic_load(&counters[w]), 0);
    }
    fixture_deinit(&f);
}

static void zero_means_no_limit(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 500, 300, 300);
    clew_limits l;
    memset(&l, 0, sizeof(l)); /* and no counters: must not crash */
    assert_int_equal(clew__limits_apply(&l, &f.batch, &f.arena), CLEW_OK);
    assert_int_equal(f.span->attrs.n, 500);
    assert_int_equal(f.span->n_events, 300);
    assert_int_equal(f.span->n_links, 300);
    fixture_deinit(&f);
}

static void events_and_links(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 1, 10, 6);
    f.span->dropped_events = 1;
    _Atomic uint64_t counters[CLEW_LIMIT_COUNT] = {0};
    clew_limits l = {.span_event_count = 4,
                     .span_link_count = 5,
                     .event_attribute_count = 2,
                     .link_attribute_count = 3,
                     .counters = counters};
    assert_int_equal(clew__limits_apply(&l, &f.batch, &f.arena), CLEW_OK);
    assert_int_equal(f.span->n_events, 4);
    assert_int_equal(f.span->dropped_events, 1 + 6);
    assert_int_equal(f.span->n_links, 5);
    assert_int_equal(f.span->dropped_links, 1);
    for (uint32_t i = 0; i < f.span->n_events; i++) {
        assert_int_equal(f.span->events[i].attrs.n, 2);
        assert_int_equal(f.span->events[i].attrs.dropped, 3);
    }
    for (uint32_t i = 0; i < f.span->n_links; i++) {
        assert_int_equal(f.span->links[i].attrs.n, 3);
        assert_int_equal(f.span->links[i].attrs.dropped, 2);
    }
    /* counted once per span and limit, not once per event */
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_EVENTS]), 1);
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_LINKS]), 1);
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_EVENT_ATTRIBUTES]), 1);
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_LINK_ATTRIBUTES]), 1);
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_SPAN_ATTRIBUTES]), 0);
    fixture_deinit(&f);
}

static void value_truncation(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 4, 1, 0);
    clew_arena *a = &f.arena;
    clew_kv *kv = f.span->attrs.items;
    /* "héllo wörld": é and ö are 2 bytes; a cut at 2 bytes would split é */
    kv[0].value.u.s = clew__arena_strdup(a, "h\xc3\xa9llo w\xc3\xb6rld", 13);
    /* bytes are cut exactly, whatever they contain */
    kv[1].value.type = CLEW_VALUE_BYTES;
    kv[1].value.u.s = clew__arena_strdup(a, "\xc3\xc3\xc3\xc3", 4);
    /* an array: each element on its own */
    clew_value *items = clew__arena_calloc(a, 2, sizeof(*items));
    items[0].type = CLEW_VALUE_STRING;
    items[0].u.s = clew__arena_strdup(a, "abcdef", 6);
    items[1].type = CLEW_VALUE_INT;
    items[1].u.i = 123456789;
    kv[2].value.type = CLEW_VALUE_ARRAY;
    kv[2].value.u.array.items = items;
    kv[2].value.u.array.n = 2;
    /* a 3-byte character (€) straddling the cut */
    kv[3].value.u.s = clew__arena_strdup(a, "a\xe2\x82\xac", 4);
    f.span->events[0].attrs.items[0].value.u.s = clew__arena_strdup(a, "eventvalue", 10);

    _Atomic uint64_t counters[CLEW_LIMIT_COUNT] = {0};
    clew_limits l = {.attribute_value_length = 2, .counters = counters};
    assert_int_equal(clew__limits_apply(&l, &f.batch, &f.arena), CLEW_OK);
    assert_int_equal(kv[0].value.u.s.len, 1); /* "h": é would not fit whole */
    assert_int_equal(kv[1].value.u.s.len, 2);
    assert_int_equal(items[0].u.s.len, 2);
    assert_int_equal(items[1].u.i, 123456789);
    assert_int_equal(kv[3].value.u.s.len, 1); /* "a" */
    assert_int_equal(f.span->events[0].attrs.items[0].value.u.s.len, 2);
    /* counts stay: truncation drops no attribute */
    assert_int_equal(f.span->attrs.n, 4);
    assert_int_equal(f.span->attrs.dropped, 0);
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_VALUE_LENGTH]), 1);

    /* a cut right after a whole character keeps it */
    l.attribute_value_length = 3;
    kv[0].value.u.s = clew__arena_strdup(a, "h\xc3\xa9llo", 6);
    assert_int_equal(clew__limits_apply(&l, &f.batch, &f.arena), CLEW_OK);
    assert_int_equal(kv[0].value.u.s.len, 3);
    fixture_deinit(&f);
}

static void several_spans_counted_each(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 0, 0, 0);
    clew_span_data *spans = clew__arena_calloc(&f.arena, 3, sizeof(*spans));
    for (int i = 0; i < 3; i++) {
        spans[i].attrs.items = make_attrs(&f.arena, 3, "x");
        spans[i].attrs.n = 3;
    }
    spans[2].attrs.n = 1; /* under the limit */
    f.batch.rs[0].scopes[0].spans = spans;
    f.batch.rs[0].scopes[0].n_spans = 3;
    f.batch.n_spans = 3;
    _Atomic uint64_t counters[CLEW_LIMIT_COUNT] = {0};
    clew_limits l = {.span_attribute_count = 2, .counters = counters};
    assert_int_equal(clew__limits_apply(&l, &f.batch, &f.arena), CLEW_OK);
    assert_int_equal(spans[0].attrs.dropped, 1);
    assert_int_equal(spans[1].attrs.dropped, 1);
    assert_int_equal(spans[2].attrs.dropped, 0);
    assert_int_equal(atomic_load(&counters[CLEW_LIMIT_SPAN_ATTRIBUTES]), 2);
    fixture_deinit(&f);
}

static void bad_arguments(void **state)
{
    (void)state;
    clew_limits l;
    memset(&l, 0, sizeof(l));
    clew_batch b;
    memset(&b, 0, sizeof(b));
    assert_int_equal(clew__limits_apply(NULL, &b, NULL), CLEW_EINVAL);
    assert_int_equal(clew__limits_apply(&l, NULL, NULL), CLEW_EINVAL);
    assert_int_equal(clew__limits_apply(&l, &b, NULL), CLEW_OK); /* empty batch */
    assert_string_equal(clew__limit_names[CLEW_LIMIT_VALUE_LENGTH], "attribute_value_length");
}

/* A fresh one-span batch (3 attributes of "v", 2 events and 2 links of 5 attributes
 * each) put through limits l: whether clew__limits_apply_changed says it changed. */
static bool changed_by(const clew_limits *l)
{
    fixture f;
    fixture_init(&f, 3, 2, 2);
    bool changed = true;
    assert_int_equal(clew__limits_apply_changed(l, &f.batch, &f.arena, &changed), CLEW_OK);
    fixture_deinit(&f);
    return changed;
}

static void changed_is_exact(void **state)
{
    (void)state;
    _Atomic uint64_t counters[CLEW_LIMIT_COUNT] = {0};
    /* within every limit, some of them exactly at it: unchanged */
    clew_limits l = {.span_attribute_count = 3,
                     .event_attribute_count = 5,
                     .link_attribute_count = 5,
                     .attribute_value_length = 5, /* "event" is 5 bytes */
                     .span_event_count = 2,
                     .span_link_count = 2,
                     .counters = counters};
    assert_false(changed_by(&l));
    clew_limits none;
    memset(&none, 0, sizeof(none));
    assert_false(changed_by(&none));

    /* each kind of cut, alone, reports a change */
    clew_limits c = l;
    c.span_attribute_count = 2;
    assert_true(changed_by(&c));
    c = l;
    c.event_attribute_count = 4;
    assert_true(changed_by(&c));
    c = l;
    c.link_attribute_count = 4;
    assert_true(changed_by(&c));
    c = l;
    c.span_event_count = 1;
    assert_true(changed_by(&c));
    c = l;
    c.span_link_count = 1;
    assert_true(changed_by(&c));
    c = l;
    c.attribute_value_length = 4; /* cuts only the events' "event" values */
    assert_true(changed_by(&c));
    /* and with no counters to look at, it is still told */
    c = l;
    c.span_attribute_count = 1;
    c.counters = NULL;
    assert_true(changed_by(&c));

    /* another batch's cut does not show in this one's answer, although the shared
     * counters moved meanwhile */
    uint64_t before = atomic_load(&counters[CLEW_LIMIT_SPAN_ATTRIBUTES]);
    assert_true(before > 0);
    assert_false(changed_by(&l));

    /* a nested value and a bytes value, each on its own, in the last of several spans */
    fixture f;
    fixture_init(&f, 0, 0, 0);
    clew_span_data *spans = clew__arena_calloc(&f.arena, 3, sizeof(*spans));
    assert_non_null(spans);
    clew_value *items = clew__arena_calloc(&f.arena, 1, sizeof(*items));
    assert_non_null(items);
    items[0].type = CLEW_VALUE_STRING;
    items[0].u.s = clew__arena_strdup(&f.arena, "abcdef", 6);
    for (int i = 0; i < 3; i++) {
        spans[i].attrs.items = make_attrs(&f.arena, 1, "x");
        spans[i].attrs.n = 1;
    }
    spans[2].attrs.items[0].value.type = CLEW_VALUE_ARRAY;
    spans[2].attrs.items[0].value.u.array.items = items;
    spans[2].attrs.items[0].value.u.array.n = 1;
    f.batch.rs[0].scopes[0].spans = spans;
    f.batch.rs[0].scopes[0].n_spans = 3;
    f.batch.n_spans = 3;
    clew_limits v = {.attribute_value_length = 6};
    bool changed = true;
    assert_int_equal(clew__limits_apply_changed(&v, &f.batch, &f.arena, &changed), CLEW_OK);
    assert_false(changed);
    v.attribute_value_length = 5;
    assert_int_equal(clew__limits_apply_changed(&v, &f.batch, &f.arena, &changed), CLEW_OK);
    assert_true(changed);
    assert_int_equal(items[0].u.s.len, 5);
    /* applying the same limits again finds nothing left to cut */
    assert_int_equal(clew__limits_apply_changed(&v, &f.batch, &f.arena, &changed), CLEW_OK);
    assert_false(changed);
    spans[1].attrs.items[0].value.type = CLEW_VALUE_BYTES;
    spans[1].attrs.items[0].value.u.s = clew__arena_strdup(&f.arena, "\x01\x02\x03\x04\x05\x06", 6);
    assert_int_equal(clew__limits_apply_changed(&v, &f.batch, &f.arena, &changed), CLEW_OK);
    assert_true(changed);
    fixture_deinit(&f);

    /* bad arguments change nothing and say so */
    clew_batch b;
    memset(&b, 0, sizeof(b));
    changed = true;
    assert_int_equal(clew__limits_apply_changed(NULL, &b, NULL, &changed), CLEW_EINVAL);
    assert_false(changed);
    changed = true;
    assert_int_equal(clew__limits_apply_changed(&l, NULL, NULL, &changed), CLEW_EINVAL);
    assert_false(changed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attribute_count_adds_to_dropped),
        cmocka_unit_test(under_limits_nothing_changes),
        cmocka_unit_test(zero_means_no_limit),
        cmocka_unit_test(events_and_links),
        cmocka_unit_test(value_truncation),
        cmocka_unit_test(several_spans_counted_each),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(changed_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
