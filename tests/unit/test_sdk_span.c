/*
 * tests/unit/test_sdk_span.c - span lifecycle through the public SDK API:
 * ids and flags, parent/child, attributes of every type and the limits,
 * events, exceptions, links, status rules, names, current-span scopes,
 * explicit contexts, the resource, tracer caching, shutdown and the JSON log
 * helper. Spans are exported with the simple processor through the public
 * callback exporter and decoded back with the OTLP protobuf decoder, so each
 * check sees what a collector would receive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clew/clew.h"
#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/hex.h"
#include "model/model.h"

/* ---- capture: every exported request, decoded on demand ---- */

#define MAX_REQ 256
static struct {
    uint8_t *data[MAX_REQ];
    size_t len[MAX_REQ];
    size_t n;
    clew_arena arena;
    const clew_span_data *spans[1024];
    size_t n_spans;
} cap;

static clew_status capture(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    assert_true(cap.n < MAX_REQ);
    cap.data[cap.n] = clew__malloc(len ? len : 1);
    memcpy(cap.data[cap.n], data, len);
    cap.len[cap.n++] = len;
    return CLEW_OK;
}

static bool collect(const clew_span_data *s, void *ud)
{
    (void)ud;
    cap.spans[cap.n_spans++] = s;
    return true;
}

/* Decodes everything captured so far; cap.spans[] in export order. */
static size_t decode_all(void)
{
    clew__arena_deinit(&cap.arena);
    clew__arena_init(&cap.arena, 1 << 16, 0);
    cap.n_spans = 0;
    for (size_t i = 0; i < cap.n; i++) {
        clew_batch b;
        clew_error err;
        memset(&err, 0, sizeof(err));
        assert_int_equal(clew__otlp_pb_decode(cap.data[i], cap.len[i], &cap.arena, &b, &err),
                         CLEW_OK);
        clew__batch_foreach(&b, collect, NULL);
    }
    return cap.n_spans;
}

static void cap_reset(void)
{
    for (size_t i = 0; i < cap.n; i++) {
        clew__free(cap.data[i]);
    }
    cap.n = 0;
    cap.n_spans = 0;
    clew__arena_deinit(&cap.arena);
}

static int log_count;
static char last_log[512];
static void on_log(void *ud, clew_log_level level, const char *msg)
{
    (void)ud;
    (void)level;
    log_count++;
    snprintf(last_log, sizeof(last_log), "%s", msg);
}

static clew_provider *make_provider(clew_sampler *sampler, const clew_span_limits *limits)
{
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.processor = CLEW_PROCESSOR_SIMPLE;
    c.sampler = sampler;
    c.service_name = "checkout";
    if (limits != NULL) {
        c.limits = *limits;
    }
    c.log = on_log;
    assert_int_equal(clew_exporter_callback(capture, NULL, &c.exporter), CLEW_OK);
    clew_provider *p = NULL;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    return p;
}

static clew_tracer *tracer(clew_provider *p)
{
    clew_tracer *t = NULL;
    assert_int_equal(clew_provider_tracer(p, "test.lib", "1.2.3", &t), CLEW_OK);
    return t;
}

static int teardown(void **state)
{
    (void)state;
    cap_reset();
    return 0;
}

static const clew_value *attr(const clew_attrs *a, const char *key)
{
    return clew__attrs_get(a, key, strlen(key));
}

static bool str_is(clew_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* ---- tests ---- */

/* A root span has fresh non-zero ids, the sampled and random flags, no parent. */
static void test_root_span_ids_and_flags(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_span *s = clew_span_start(tracer(p), "root", NULL);
    assert_true(clew_span_is_recording(s));
    clew_span_context sc;
    clew_span_context_get(s, &sc);
    assert_true(clew_span_context_is_valid(&sc));
    assert_true(sc.trace_flags & CLEW_TRACE_FLAG_SAMPLED);
    assert_true(sc.trace_flags & CLEW_TRACE_FLAG_RANDOM);
    assert_false(sc.is_remote);
    clew_span_end(s, 0);
    assert_int_equal(decode_all(), 1);
    const clew_span_data *d = cap.spans[0];
    assert_memory_equal(&d->trace_id, &sc.trace_id, 16);
    assert_memory_equal(&d->span_id, &sc.span_id, 8);
    assert_true(clew__span_id_is_zero(&d->parent_span_id));
    assert_true(str_is(d->name, "root"));
    assert_int_equal(d->kind, CLEW_KIND_INTERNAL);
    assert_true(d->end_ns >= d->start_ns && d->start_ns > 0);
    /* sampled + random + has-is-remote, not remote */
    assert_int_equal(d->flags, 0x103);
    assert_true(str_is(d->scope->name, "test.lib"));
    assert_true(str_is(d->scope->version, "1.2.3"));
    clew_provider_destroy(p);
}

/* Two roots never share ids (the PRNG is not stuck). */
static void test_ids_differ(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_span_context a, b;
    clew_span *s1 = clew_span_start(tracer(p), "a", NULL);
    clew_span *s2 = clew_span_start(tracer(p), "b", NULL);
    clew_span_context_get(s1, &a);
    clew_span_context_get(s2, &b);
    assert_memory_not_equal(&a.trace_id, &b.trace_id, 16);
    assert_memory_not_equal(&a.span_id, &b.span_id, 8);
    clew_span_end(s2, 0);
    clew_span_end(s1, 0);
    clew_provider_destroy(p);
}

/* A child started while the parent is current shares its trace id and points at it;
 * nested make_current/restore pairs put the right span back. */
static void test_current_span_scopes(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_tracer *t = tracer(p);
    assert_null(clew_span_current());
    clew_span *a = clew_span_start(t, "a", NULL);
    clew_current_token ta = clew_span_make_current(a);
    assert_ptr_equal(clew_span_current(), a);
    clew_span *b = clew_span_start(t, "b", NULL);
    clew_current_token tb = clew_span_make_current(b);
    clew_span *c = clew_span_start(t, "c", NULL);
    clew_span_context ca, cb, cc;
    clew_span_context_get(a, &ca);
    clew_span_context_get(b, &cb);
    clew_span_context_get(c, &cc);
    clew_span_end(c, 0);
    clew_span_restore(tb);
    assert_ptr_equal(clew_span_current(), a);
    /* an out-of-order restore (tb again) is ignored */
    clew_span_restore(tb);
    assert_ptr_equal(clew_span_current(), a);
    clew_span_end(b, 0);
    clew_span *d = clew_span_start(t, "d", NULL);
    clew_span_context cd;
    clew_span_context_get(d, &cd);
    clew_span_end(d, 0);
    clew_span_restore(ta);
    assert_null(clew_span_current());
    clew_span_end(a, 0);

    assert_memory_equal(&cb.trace_id, &ca.trace_id, 16);
    assert_memory_equal(&cc.trace_id, &ca.trace_id, 16);
    assert_memory_equal(&cd.trace_id, &ca.trace_id, 16);
    assert_int_equal(decode_all(), 4);
    /* export order: c, b, d, a */
    assert_memory_equal(&cap.spans[0]->parent_span_id, &cb.span_id, 8);
    assert_memory_equal(&cap.spans[1]->parent_span_id, &ca.span_id, 8);
    assert_memory_equal(&cap.spans[2]->parent_span_id, &ca.span_id, 8);
    assert_true(clew__span_id_is_zero(&cap.spans[3]->parent_span_id));
    clew_provider_destroy(p);
}

/* An explicit remote parent wins over the current span; root=true ignores the current. */
static void test_explicit_and_remote_parent(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_tracer *t = tracer(p);
    clew_span_context remote;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_int_equal(clew_traceparent_parse(tp, strlen(tp), &remote), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&remote.tracestate, "vendor", "x1"), CLEW_OK);
    clew_span *cur = clew_span_start(t, "current", NULL);
    clew_current_token tok = clew_span_make_current(cur);
    clew_span_options o = {.kind = CLEW_SPAN_KIND_SERVER, .parent = &remote};
    clew_span *s = clew_span_start(t, "server", &o);
    clew_span_context sc;
    clew_span_context_get(s, &sc);
    assert_memory_equal(&sc.trace_id, &remote.trace_id, 16);
    /* the random flag is inherited, and this remote parent did not set it */
    assert_false(sc.trace_flags & CLEW_TRACE_FLAG_RANDOM);
    assert_true(clew_tracestate_equal(&sc.tracestate, &remote.tracestate));
    clew_span_end(s, 0);
    clew_span_options r = {.root = true};
    clew_span *root = clew_span_start(t, "fresh", &r);
    clew_span_context rc;
    clew_span_context_get(root, &rc);
    clew_span_context cc;
    clew_span_context_get(cur, &cc);
    assert_memory_not_equal(&rc.trace_id, &cc.trace_id, 16);
    clew_span_end(root, 0);
    clew_span_restore(tok);
    clew_span_end(cur, 0);
    assert_int_equal(decode_all(), 3);
    const clew_span_data *d = cap.spans[0];
    assert_memory_equal(&d->parent_span_id, &remote.span_id, 8);
    assert_int_equal(d->kind, CLEW_KIND_SERVER);
    /* sampled, has-is-remote, is-remote */
    assert_int_equal(d->flags, 0x301);
    assert_true(str_is(d->trace_state, "vendor=x1"));
    assert_true(clew__span_id_is_zero(&cap.spans[1]->parent_span_id));
    clew_provider_destroy(p);
}

/* Every attribute type round-trips; setting a key again replaces its value. */
static void test_attribute_types(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_span *s = clew_span_start(tracer(p), "attrs", NULL);
    clew_span_set_str(s, "s", "hello");
    clew_span_set_strn(s, "sn", "abcdef", 3);
    clew_span_set_int(s, "i", -42);
    clew_span_set_bool(s, "b", true);
    clew_span_set_double(s, "d", 2.5);
    clew_span_set_bytes(s, "bytes", "\x00\x01\xff", 3);
    const char *strs[] = {"x", "y"};
    int64_t ints[] = {1, 2, 3};
    double dbls[] = {0.5};
    bool bools[] = {true, false};
    clew_attr arr[] = {
        {.key = "sa", .type = CLEW_ATTR_STRING_ARRAY, .v.array = {strs, 2}},
        {.key = "ia", .type = CLEW_ATTR_INT_ARRAY, .v.array = {ints, 3}},
        {.key = "da", .type = CLEW_ATTR_DOUBLE_ARRAY, .v.array = {dbls, 1}},
        {.key = "ba", .type = CLEW_ATTR_BOOL_ARRAY, .v.array = {bools, 2}},
    };
    clew_span_set_attrs(s, arr, 4);
    clew_span_set_int(s, "i", 7);        /* replaces */
    clew_span_set_str(s, "", "ignored"); /* empty keys are invalid */
    clew_span_end(s, 0);
    assert_int_equal(decode_all(), 1);
    const clew_attrs *a = &cap.spans[0]->attrs;
    assert_int_equal(a->n, 10);
    assert_int_equal(a->dropped, 0);
    assert_true(str_is(attr(a, "s")->u.s, "hello"));
    assert_true(str_is(attr(a, "sn")->u.s, "abc"));
    assert_int_equal(attr(a, "i")->u.i, 7);
    assert_true(attr(a, "b")->u.b);
    assert_true(attr(a, "d")->u.d == 2.5);
    assert_int_equal(attr(a, "bytes")->type, CLEW_VALUE_BYTES);
    assert_int_equal(attr(a, "bytes")->u.s.len, 3);
    assert_memory_equal(attr(a, "bytes")->u.s.ptr, "\x00\x01\xff", 3);
    const clew_value *sa = attr(a, "sa");
    assert_int_equal(sa->type, CLEW_VALUE_ARRAY);
    assert_int_equal(sa->u.array.n, 2);
    assert_true(str_is(sa->u.array.items[1].u.s, "y"));
    assert_int_equal(attr(a, "ia")->u.array.items[2].u.i, 3);
    assert_true(attr(a, "da")->u.array.items[0].u.d == 0.5);
    assert_false(attr(a, "ba")->u.array.items[1].u.b);
    clew_provider_destroy(p);
}

/* kvlist values: nested maps and arrays come out as OTLP kvlists (through the
 * protobuf encoder and decoder), the value length limit applies inside them,
 * and nesting deeper than CLEW_ATTR_MAX_DEPTH drops the attribute. The log
 * line and the console exporter print them too. */
static void test_kvlist_attrs(void **state)
{
    (void)state;
    clew_span_limits lim;
    clew_span_limits_init(&lim);
    lim.attribute_value_length = 4;
    clew_provider *p = make_provider(NULL, &lim);
    clew_span *s = clew_span_start(tracer(p), "maps", NULL);
    int64_t ints[] = {7, 8};
    clew_attr inner[] = {clew_attr_bool("ok", true),
                         {.key = "ids", .type = CLEW_ATTR_INT_ARRAY, .v.array = {ints, 2}}};
    clew_attr outer[] = {clew_attr_str("name", "abcdefgh"), clew_attr_kvlist("inner", inner, 2),
                         clew_attr_kvlist("empty", NULL, 0)};
    clew_attr a1 = clew_attr_kvlist("map", outer, 3);
    clew_span_set_attr(s, &a1);
    /* CLEW_ATTR_MAX_DEPTH + 1 kvlists inside each other */
    clew_attr chain[CLEW_ATTR_MAX_DEPTH + 1];
    chain[0] = clew_attr_int("leaf", 1);
    for (int i = 1; i <= CLEW_ATTR_MAX_DEPTH; i++) {
        chain[i] = clew_attr_kvlist("level", &chain[i - 1], 1);
    }
    clew_attr deep = clew_attr_kvlist("deep", &chain[CLEW_ATTR_MAX_DEPTH], 1);
    clew_span_set_attr(s, &deep);
    clew_attr ok_depth = clew_attr_kvlist("ok_depth", &chain[CLEW_ATTR_MAX_DEPTH - 1], 1);
    clew_span_set_attr(s, &ok_depth);
    clew_attr nokey[] = {{.key = NULL, .type = CLEW_ATTR_INT, .v.i = 1}};
    clew_attr bad = clew_attr_kvlist("bad", nokey, 1);
    clew_span_set_attr(s, &bad);
    clew_span_end(s, 0);
    assert_int_equal(decode_all(), 1);
    const clew_attrs *a = &cap.spans[0]->attrs;
    assert_int_equal(a->n, 2);
    assert_int_equal(a->dropped, 2); /* deep, bad */
    const clew_value *m = attr(a, "map");
    assert_int_equal(m->type, CLEW_VALUE_KVLIST);
    assert_int_equal(m->u.kvlist.n, 3);
    assert_true(str_is(m->u.kvlist.items[0].key, "name"));
    assert_true(str_is(m->u.kvlist.items[0].value.u.s, "abcd")); /* cut to the limit */
    const clew_value *in = &m->u.kvlist.items[1].value;
    assert_int_equal(in->type, CLEW_VALUE_KVLIST);
    assert_int_equal(in->u.kvlist.n, 2);
    assert_true(in->u.kvlist.items[0].value.u.b);
    assert_int_equal(in->u.kvlist.items[1].value.u.array.items[1].u.i, 8);
    assert_int_equal(m->u.kvlist.items[2].value.type, CLEW_VALUE_KVLIST);
    assert_int_equal(m->u.kvlist.items[2].value.u.kvlist.n, 0);
    const clew_value *d = attr(a, "ok_depth");
    for (int i = 0; i < CLEW_ATTR_MAX_DEPTH; i++) {
        assert_int_equal(d->type, CLEW_VALUE_KVLIST);
        assert_int_equal(d->u.kvlist.n, 1);
        d = &d->u.kvlist.items[0].value;
    }
    assert_int_equal(d->type, CLEW_VALUE_INT);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(clew_log_json(f, "info", "m", outer, 2), CLEW_OK);
    fclose(f);
    assert_non_null(strstr(text, "\"name\":\"abcdefgh\",\"inner\":{\"ok\":true,\"ids\":[7,8]}}"));
    free(text);
    clew_provider_destroy(p);

    f = open_memstream(&text, &len);
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.processor = CLEW_PROCESSOR_SIMPLE;
    assert_int_equal(clew_exporter_console(f, &c.exporter), CLEW_OK);
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    s = clew_span_start(tracer(p), "maps", NULL);
    clew_span_set_attr(s, &a1);
    clew_span_end(s, 0);
    clew_provider_destroy(p);
    fclose(f);
    assert_non_null(
        strstr(text, "map = {name: \"abcdefgh\", inner: {ok: true, ids: [7, 8]}, empty: {}}"));
    free(text);
}

/* Many attributes with long values (past the span's first attribute slots and past its
 * inline memory), keys set again as another type or another string: every key once, with
 * its last value, nothing dropped; and a limit of 1 attribute (one eager slot) keeps the
 * first and drops the second. */
static void test_many_attributes(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_span *s = clew_span_start(tracer(p), "many", NULL);
    char key[32], val[128];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "attr.%d", i);
        snprintf(val, sizeof(val), "%0100d", i); /* 100 digits */
        clew_span_set_str(s, key, val);
    }
    for (int i = 0; i < 40; i += 4) {
        snprintf(key, sizeof(key), "attr.%d", i);
        clew_span_set_int(s, key, -i);
        snprintf(key, sizeof(key), "attr.%d", i + 1);
        clew_span_set_str(s, key, "again");
    }
    clew_span_end(s, 0);
    clew_provider_destroy(p);

    clew_span_limits l;
    clew_span_limits_init(&l);
    l.attribute_count = 1; /* 0 would mean the default */
    clew_provider *p0 = make_provider(NULL, &l);
    clew_span *s0 = clew_span_start(tracer(p0), "none", NULL);
    clew_span_set_str(s0, "a", "x");
    clew_span_set_int(s0, "b", 1);
    clew_span_end(s0, 0);
    clew_provider_destroy(p0);

    assert_int_equal(decode_all(), 2);
    const clew_span_data *d = cap.spans[0];
    if (d->attrs.n != 40) {
        d = cap.spans[1];
    }
    assert_int_equal(d->attrs.n, 40);
    assert_int_equal(d->attrs.dropped, 0);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "attr.%d", i);
        const clew_value *v = attr(&d->attrs, key);
        assert_non_null(v);
        if (i % 4 == 0) {
            assert_int_equal(v->type, CLEW_VALUE_INT);
            assert_int_equal(v->u.i, -i);
        } else if (i % 4 == 1) {
            assert_true(str_is(v->u.s, "again"));
        } else {
            snprintf(val, sizeof(val), "%0100d", i);
            assert_true(str_is(v->u.s, val));
        }
    }
    const clew_span_data *d0 = d == cap.spans[0] ? cap.spans[1] : cap.spans[0];
    assert_int_equal(d0->attrs.n, 1);
    assert_int_equal(d0->attrs.dropped, 1);
    assert_true(str_is(attr(&d0->attrs, "a")->u.s, "x"));
}

/* Limits: extra attributes, events and links are dropped and counted; long
 * strings are cut (at a UTF-8 boundary, per array element too). */
static void test_limits(void **state)
{
    (void)state;
    clew_span_limits l;
    clew_span_limits_init(&l);
    l.attribute_count = 3;
    l.attribute_value_length = 4;
    l.event_count = 2;
    l.link_count = 1;
    l.event_attribute_count = 1;
    l.link_attribute_count = 1;
    clew_provider *p = make_provider(NULL, &l);
    clew_span *s = clew_span_start(tracer(p), "limited", NULL);
    clew_span_set_str(s, "a", "abcdefgh");
    clew_span_set_str(s, "b", "abc\xc3\xa9z"); /* é straddles byte 4 */
    const char *strs[] = {"123456", "12"};
    clew_attr arr = {.key = "c", .type = CLEW_ATTR_STRING_ARRAY, .v.array = {strs, 2}};
    clew_span_set_attr(s, &arr);
    clew_span_set_int(s, "d", 1);
    clew_span_set_int(s, "e", 2);
    clew_span_set_int(s, "a", 3); /* replacing an existing key is not a drop */
    clew_attr ev[] = {clew_attr_int("x", 1), clew_attr_int("y", 2)};
    clew_span_add_event(s, "e1", ev, 2, 0);
    clew_span_add_event(s, "e2", NULL, 0, 12345);
    clew_span_add_event(s, "e3", NULL, 0, 0);
    clew_span_context other;
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_int_equal(clew_traceparent_parse(tp, strlen(tp), &other), CLEW_OK);
    clew_link links[2] = {{&other, ev, 2}, {&other, NULL, 0}};
    clew_span_add_link(s, &links[0]);
    clew_span_add_link(s, &links[1]);
    clew_span_end(s, 0);
    assert_int_equal(decode_all(), 1);
    const clew_span_data *d = cap.spans[0];
    assert_int_equal(d->attrs.n, 3);
    assert_int_equal(d->attrs.dropped, 2);
    assert_int_equal(attr(&d->attrs, "a")->u.i, 3);
    assert_true(str_is(attr(&d->attrs, "b")->u.s, "abc"));
    assert_true(str_is(attr(&d->attrs, "c")->u.array.items[0].u.s, "1234"));
    assert_true(str_is(attr(&d->attrs, "c")->u.array.items[1].u.s, "12"));
    assert_int_equal(d->n_events, 2);
    assert_int_equal(d->dropped_events, 1);
    assert_int_equal(d->events[0].attrs.n, 1);
    assert_int_equal(d->events[0].attrs.dropped, 1);
    assert_int_equal(d->events[1].time_ns, 12345);
    assert_int_equal(d->n_links, 1);
    assert_int_equal(d->dropped_links, 1);
    assert_int_equal(d->links[0].attrs.n, 1);
    assert_int_equal(d->links[0].attrs.dropped, 1);
    assert_memory_equal(&d->links[0].trace_id, &other.trace_id, 16);
    assert_int_equal(d->links[0].flags, 0x301);
    clew_provider_destroy(p);
}

/* Events with attributes, an exception event, links at start. */
static void test_events_exception_links(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_span_context other;
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    assert_int_equal(clew_traceparent_parse(tp, strlen(tp), &other), CLEW_OK);
    clew_attr la = clew_attr_str("reason", "batch");
    clew_link link = {&other, &la, 1};
    clew_span_options o = {.links = &link, .n_links = 1, .start_ns = 1000, .kind = 99};
    clew_span *s = clew_span_start(tracer(p), "ev", &o);
    clew_attr ea[] = {clew_attr_int("retry", 2)};
    clew_span_add_event(s, "retrying", ea, 1, 1500);
    clew_span_record_exception(s, "IOError", "disk full", "at main.c:12");
    clew_span_end(s, 2000);
    assert_int_equal(decode_all(), 1);
    const clew_span_data *d = cap.spans[0];
    assert_int_equal(d->start_ns, 1000);
    assert_int_equal(d->end_ns, 2000);
    assert_int_equal(d->kind, CLEW_KIND_INTERNAL); /* an unknown kind becomes INTERNAL */
    assert_int_equal(d->n_events, 2);
    assert_true(str_is(d->events[0].name, "retrying"));
    assert_int_equal(d->events[0].time_ns, 1500);
    assert_true(str_is(d->events[1].name, "exception"));
    assert_true(str_is(attr(&d->events[1].attrs, "exception.type")->u.s, "IOError"));
    assert_true(str_is(attr(&d->events[1].attrs, "exception.message")->u.s, "disk full"));
    assert_true(str_is(attr(&d->events[1].attrs, "exception.stacktrace")->u.s, "at main.c:12"));
    assert_int_equal(d->status_code, CLEW_STATUS_UNSET); /* an exception alone sets no status */
    assert_int_equal(d->n_links, 1);
    assert_true(str_is(attr(&d->links[0].attrs, "reason")->u.s, "batch"));
    assert_int_equal(d->links[0].flags, 0x300);
    clew_provider_destroy(p);
}

/* Status: Error keeps its description, Ok is final and has none, Unset is ignored. */
static void test_status_rules(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_tracer *t = tracer(p);
    clew_span *a = clew_span_start(t, "a", NULL);
    clew_span_set_status(a, CLEW_SPAN_STATUS_ERROR, "boom");
    clew_span_set_status(a, CLEW_SPAN_STATUS_UNSET, NULL);
    clew_span_end(a, 0);
    clew_span *b = clew_span_start(t, "b", NULL);
    clew_span_set_status(b, CLEW_SPAN_STATUS_ERROR, "first");
    clew_span_set_status(b, CLEW_SPAN_STATUS_OK, "ignored description");
    clew_span_set_status(b, CLEW_SPAN_STATUS_ERROR, "after ok");
    clew_span_end(b, 0);
    clew_span *c = clew_span_start(t, "c", NULL);
    clew_span_update_name(c, "c-renamed");
    clew_span_end(c, 0);
    assert_int_equal(decode_all(), 3);
    assert_int_equal(cap.spans[0]->status_code, CLEW_STATUS_ERROR);
    assert_true(str_is(cap.spans[0]->status_message, "boom"));
    assert_int_equal(cap.spans[1]->status_code, CLEW_STATUS_OK);
    assert_int_equal(cap.spans[1]->status_message.len, 0);
    assert_int_equal(cap.spans[2]->status_code, CLEW_STATUS_UNSET);
    assert_true(str_is(cap.spans[2]->name, "c-renamed"));
    clew_provider_destroy(p);
}

/* always_off: spans are not recording, export nothing, but still carry a context
 * (same trace for children, sampled flag clear) so propagation works. */
static void test_unsampled_span(void **state)
{
    (void)state;
    clew_sampler *off;
    assert_int_equal(clew_sampler_always_off(&off), CLEW_OK);
    clew_provider *p = make_provider(off, NULL);
    clew_tracer *t = tracer(p);
    clew_span *s = clew_span_start(t, "dropped", NULL);
    assert_false(clew_span_is_recording(s));
    clew_span_set_int(s, "x", 1);
    clew_span_add_event(s, "e", NULL, 0, 0);
    clew_span_context sc, again;
    clew_span_context_get(s, &sc);
    assert_true(clew_span_context_is_valid(&sc));
    assert_false(sc.trace_flags & CLEW_TRACE_FLAG_SAMPLED);
    /* the span id (made on first use) is stable */
    clew_span_context_get(s, &again);
    assert_memory_equal(&again.span_id, &sc.span_id, 8);
    clew_current_token tok = clew_span_make_current(s);
    clew_span *child = clew_span_start(t, "child", NULL);
    clew_span_context cc;
    clew_span_context_get(child, &cc);
    assert_memory_equal(&cc.trace_id, &sc.trace_id, 16);
    clew_span_end(child, 0);
    clew_span_restore(tok);
    clew_span_end(s, 0);
    assert_int_equal(cap.n, 0);
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.spans_ended, 0);
    clew_provider_destroy(p);
}

/* The resource: service.name from the config, the telemetry.sdk.* attributes,
 * user attributes kept; without a service name, unknown_service:<exe>. */
static void test_resource(void **state)
{
    (void)state;
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.processor = CLEW_PROCESSOR_SIMPLE;
    clew_attr ra[] = {clew_attr_str("deployment.environment", "prod"),
                      clew_attr_str("service.name", "overridden")};
    c.resource_attrs = ra;
    c.n_resource_attrs = 2;
    c.service_name = "cart";
    assert_int_equal(clew_exporter_callback(capture, NULL, &c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_span_end(clew_span_start(tracer(p), "x", NULL), 0);
    clew_provider_destroy(p);

    c.service_name = NULL;
    c.n_resource_attrs = 0;
    assert_int_equal(clew_exporter_callback(capture, NULL, &c.exporter), CLEW_OK);
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_span_end(clew_span_start(tracer(p), "y", NULL), 0);
    clew_provider_destroy(p);

    assert_int_equal(decode_all(), 2);
    const clew_attrs *r = &cap.spans[0]->resource->attrs;
    assert_true(str_is(attr(r, "service.name")->u.s, "cart"));
    assert_true(str_is(attr(r, "deployment.environment")->u.s, "prod"));
    assert_true(str_is(attr(r, "telemetry.sdk.name")->u.s, "clew"));
    assert_true(str_is(attr(r, "telemetry.sdk.language")->u.s, "c"));
    assert_true(str_is(attr(r, "telemetry.sdk.version")->u.s, clew_version_string()));
    clew_str svc = attr(&cap.spans[1]->resource->attrs, "service.name")->u.s;
    assert_true(svc.len > 16 && memcmp(svc.ptr, "unknown_service:", 16) == 0);
    assert_true(str_is(svc, "unknown_service:test_sdk_span"));
}

/* The same scope gives the same tracer; another version another one. */
static void test_tracer_cache(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_tracer *a, *b, *c;
    assert_int_equal(clew_provider_tracer(p, "lib", "1", &a), CLEW_OK);
    assert_int_equal(clew_provider_tracer(p, "lib", "1", &b), CLEW_OK);
    assert_int_equal(clew_provider_tracer(p, "lib", NULL, &c), CLEW_OK);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_int_equal(clew_provider_tracer(p, NULL, NULL, &c), CLEW_EINVAL);
    clew_provider_destroy(p);
}

/* After shutdown spans are non-recording no-ops; a second shutdown says closed. */
static void test_shutdown_noop(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_tracer *t = tracer(p);
    assert_int_equal(clew_provider_shutdown(p, 1000), CLEW_OK);
    assert_int_equal(clew_provider_shutdown(p, 1000), CLEW_ECLOSED);
    assert_int_equal(clew_provider_force_flush(p, 1000), CLEW_ECLOSED);
    clew_span *s = clew_span_start(t, "late", NULL);
    assert_false(clew_span_is_recording(s));
    clew_span_end(s, 0);
    assert_int_equal(cap.n, 0);
    clew_provider_destroy(p);
    clew_provider_destroy(NULL);
    /* a NULL tracer gives the shared no-op span, which is safe to use */
    clew_span *n = clew_span_start(NULL, "x", NULL);
    assert_false(clew_span_is_recording(n));
    clew_span_set_int(n, "k", 1);
    clew_span_end(n, 0);
    clew_span_end(NULL, 0);
}

static clew_trace_id fixed_tid;
static void gen_tid(void *ud, clew_trace_id *out)
{
    (void)ud;
    *out = fixed_tid;
}
static void gen_sid(void *ud, clew_span_id *out)
{
    int *n = ud;
    memset(out, 0, sizeof(*out));
    out->bytes[7] = (uint8_t)++ * n;
}

/* A custom id generator is used; the random flag follows its declaration. */
static void test_id_generator(void **state)
{
    (void)state;
    memset(&fixed_tid, 0xab, sizeof(fixed_tid));
    int counter = 0;
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.processor = CLEW_PROCESSOR_SIMPLE;
    c.id_generator = (clew_id_generator){gen_tid, gen_sid, &counter, false};
    assert_int_equal(clew_exporter_callback(capture, NULL, &c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_span *s = clew_span_start(tracer(p), "x", NULL);
    clew_span_context sc;
    clew_span_context_get(s, &sc);
    assert_memory_equal(&sc.trace_id, &fixed_tid, 16);
    assert_int_equal(sc.span_id.bytes[7], 1);
    assert_false(sc.trace_flags & CLEW_TRACE_FLAG_RANDOM);
    clew_span_end(s, 0);
    clew_provider_destroy(p);
}

/* clew_log_json writes one JSON line with the current span's ids and escaped fields. */
static void test_log_json(void **state)
{
    (void)state;
    clew_provider *p = make_provider(NULL, NULL);
    clew_span *s = clew_span_start(tracer(p), "logging", NULL);
    clew_current_token tok = clew_span_make_current(s);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int64_t ints[] = {1, 2};
    clew_attr fields[] = {clew_attr_str("user", "a\"b\n"),
                          clew_attr_int("n", 3),
                          {.key = "list", .type = CLEW_ATTR_INT_ARRAY, .v.array = {ints, 2}}};
    assert_int_equal(clew_log_json(f, "info", "hello \"world\"", fields, 3), CLEW_OK);
    fclose(f);
    clew_span_context sc;
    clew_span_context_get(s, &sc);
    char tid[33], sid[17], want[128];
    clew__trace_id_hex(&sc.trace_id, tid);
    clew__span_id_hex(&sc.span_id, sid);
    snprintf(want, sizeof(want), "\"trace_id\":\"%s\",\"span_id\":\"%s\"", tid, sid);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "\"message\":\"hello \\\"world\\\"\""));
    assert_non_null(strstr(text, "\"user\":\"a\\\"b\\n\",\"n\":3,\"list\":[1,2]}\n"));
    assert_non_null(strstr(text, "{\"time\":\""));
    assert_int_equal(strchr(text, '\n') - text + 1, (long)len); /* one line */
    free(text);
    clew_span_restore(tok);
    clew_span_end(s, 0);
    /* no current span: no ids */
    f = open_memstream(&text, &len);
    assert_int_equal(clew_log_json(f, "warn", "plain", NULL, 0), CLEW_OK);
    fclose(f);
    assert_null(strstr(text, "trace_id"));
    free(text);
    clew_provider_destroy(p);
}

/* The console exporter prints one tree per trace: children indented under
 * their parent, with kind, ids, status, attributes and events. */
static void test_console_exporter(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.batch.schedule_delay_ms = 60000;
    assert_int_equal(clew_exporter_console(f, &c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_tracer *t = tracer(p);
    clew_span_options so = {.kind = CLEW_SPAN_KIND_SERVER};
    clew_span *root = clew_span_start(t, "GET /cart", &so);
    clew_current_token tok = clew_span_make_current(root);
    clew_span *child = clew_span_start(t, "SELECT cart", NULL);
    clew_span_set_str(child, "db.system.name", "postgresql");
    clew_span_set_status(child, CLEW_SPAN_STATUS_ERROR, "timeout");
    clew_span_add_event(child, "retry", NULL, 0, 0);
    clew_span_end(child, 0);
    clew_span_restore(tok);
    clew_span_end(root, 0);
    assert_int_equal(clew_provider_force_flush(p, 5000), CLEW_OK);
    clew_provider_destroy(p);
    fclose(f);
    assert_non_null(strstr(text, "trace "));
    const char *r = strstr(text, "\n  GET /cart [server] ");
    const char *ch = strstr(text, "\n      SELECT cart [internal] ");
    assert_non_null(r);
    assert_non_null(ch);
    assert_true(r < ch); /* the child is printed under its parent, one level deeper */
    assert_non_null(strstr(text, "status=error: timeout\n"));
    assert_non_null(strstr(text, "          db.system.name = \"postgresql\"\n"));
    assert_non_null(strstr(text, "          * retry at +"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_root_span_ids_and_flags, teardown),
        cmocka_unit_test_teardown(test_ids_differ, teardown),
        cmocka_unit_test_teardown(test_current_span_scopes, teardown),
        cmocka_unit_test_teardown(test_explicit_and_remote_parent, teardown),
        cmocka_unit_test_teardown(test_attribute_types, teardown),
        cmocka_unit_test_teardown(test_kvlist_attrs, teardown),
        cmocka_unit_test_teardown(test_many_attributes, teardown),
        cmocka_unit_test_teardown(test_limits, teardown),
        cmocka_unit_test_teardown(test_events_exception_links, teardown),
        cmocka_unit_test_teardown(test_status_rules, teardown),
        cmocka_unit_test_teardown(test_unsampled_span, teardown),
        cmocka_unit_test_teardown(test_resource, teardown),
        cmocka_unit_test_teardown(test_tracer_cache, teardown),
        cmocka_unit_test_teardown(test_shutdown_noop, teardown),
        cmocka_unit_test_teardown(test_id_generator, teardown),
        cmocka_unit_test_teardown(test_log_json, teardown),
        cmocka_unit_test_teardown(test_console_exporter, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
