/*
 * tests/unit/test_tracecontext.c - W3C traceparent (wire.md §1.1, §1.3), the
 * tracecontext propagator, header-list carriers, the composite chosen by an
 * OTEL_PROPAGATORS list and the SQL comment carrier. Each test names the rule
 * it checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clew/context.h"
#include "clew/propagation.h"

#define TID  "12345678901234567890123456789012"
#define PID  "1234567890123456"
#define TP00 "00-" TID "-" PID "-01"

/* A header list of up to 16 headers with 4 KiB for injected values. */
typedef struct hdrs {
    clew_header items[16];
    char buf[4096];
    clew_header_list list;
    clew_carrier c;
} hdrs;

static void hdrs_init(hdrs *h)
{
    clew_header_list_init(&h->list, h->items, 0, 16, h->buf, sizeof(h->buf));
    h->c = clew_http_headers_carrier(&h->list);
}

static void hdrs_add(hdrs *h, const char *name, const char *value)
{
    h->items[h->list.count++] = (clew_header){{name, strlen(name)}, {value, strlen(value)}};
}

/* The value of header `name` as a NUL-terminated copy in `out`, or "" when absent. */
static const char *hdr(hdrs *h, const char *name, char *out, size_t cap)
{
    clew_str v;
    out[0] = '\0';
    if (h->c.get(h->c.ctx, name, &v, 1) > 0) {
        snprintf(out, cap, "%.*s", (int)v.len, v.ptr);
    }
    return out;
}

static clew_status parse(const char *s, clew_span_context *sc)
{
    return clew_traceparent_parse(s, strlen(s), sc);
}

static int valid(const char *s)
{
    clew_span_context sc;
    return parse(s, &sc) == CLEW_OK;
}

static void tid_hex(const clew_span_context *sc, char out[33])
{
    for (int i = 0; i < 16; i++) {
        snprintf(out + 2 * i, 3, "%02x", sc->trace_id.bytes[i]);
    }
}

/* §1.1 version-format for 00: trace-id, parent-id and flags decoded from hex. */
static void test_parse_version00(void **state)
{
    (void)state;
    clew_span_context sc;
    assert_int_equal(parse(TP00, &sc), CLEW_OK);
    char t[33];
    tid_hex(&sc, t);
    assert_string_equal(t, TID);
    assert_int_equal(sc.span_id.bytes[0], 0x12);
    assert_int_equal(sc.span_id.bytes[7], 0x56);
    assert_int_equal(sc.trace_flags, 0x01);
    assert_true(sc.is_remote);
    assert_true(clew_span_context_is_valid(&sc));
    assert_int_equal(clew_tracestate_count(&sc.tracestate), 0);
}

/* §1.1 test_traceparent_ows_handling: leading/trailing SP and HTAB are stripped. */
static void test_ows_handling(void **state)
{
    (void)state;
    assert_true(valid(" " TP00));
    assert_true(valid("\t" TP00));
    assert_true(valid(TP00 " "));
    assert_true(valid(TP00 "\t"));
    assert_true(valid("\t " TP00 " \t"));
    /* OWS is only allowed around the value, not inside it. */
    assert_false(valid("00- " TID "-" PID "-01"));
}

/* §1.1 test_traceparent_version_0x00: exactly 55 characters, nothing after the flags. */
static void test_version00_strict(void **state)
{
    (void)state;
    assert_false(valid(TP00 "."));
    assert_false(valid(TP00 "-what-the-future-will-be-like"));
    assert_false(valid(TP00 "-"));
    assert_false(valid("00-" TID "-" PID "-1"));
    assert_false(valid("00-" TID "1-" PID "-01"));
}

/* §1.1 version ff is forbidden. */
static void test_version_ff(void **state)
{
    (void)state;
    assert_false(valid("ff-" TID "-" PID "-01"));
    assert_false(valid("ff-" TID "-" PID "-01-extra"));
}

/* §1.1 test_traceparent_version_0xcc: a higher version parses the 00 fields,
 * then needs end-of-string or "-"; shorter than 55 restarts. */
static void test_version_cc(void **state)
{
    (void)state;
    clew_span_context sc;
    assert_int_equal(parse("cc-" TID "-" PID "-01-what-the-future-will-be-like", &sc), CLEW_OK);
    char t[33];
    tid_hex(&sc, t);
    assert_string_equal(t, TID);
    assert_true(clew_span_context_is_sampled(&sc));
    assert_true(valid("cc-" TID "-" PID "-01"));
    assert_false(valid("cc-" TID "-" PID "-01.what-the-future-will-be-like"));
    assert_false(valid("cc-" TID "-" PID "-0"));
    assert_false(valid("cc-" TID "-" PID));
}

/* §1.1 version must be 2 lowercase hex digits followed by "-". */
static void test_version_format(void **state)
{
    (void)state;
    assert_false(valid("0-" TID "-" PID "-01x"));
    assert_false(valid("000-" TID "-" PID "-01"));
    assert_false(valid("0g-" TID "-" PID "-01"));
    assert_false(valid("0A-" TID "-" PID "-01"));
    assert_false(valid("00_" TID "-" PID "-01"));
    assert_false(valid("00-" TID "_" PID "-01"));
    assert_false(valid("00-" TID "-" PID "_01"));
    assert_false(valid(""));
}

/* §1.1 HEXDIGLC: uppercase anywhere makes the header invalid. */
static void test_uppercase_invalid(void **state)
{
    (void)state;
    assert_false(valid("00-ABCDEF78901234567890123456789012-" PID "-01"));
    assert_false(valid("00-" TID "-ABCDEF7890123456-01"));
    assert_false(valid("00-" TID "-" PID "-0A"));
    assert_true(valid("00-abcdef78901234567890123456789012-abcdef7890123456-0a"));
}

/* §1.1 all-zero trace-id or parent-id: ignore the entire header. */
static void test_zero_ids(void **state)
{
    (void)state;
    assert_false(valid("00-00000000000000000000000000000000-" PID "-01"));
    assert_false(valid("00-" TID "-0000000000000000-01"));
    assert_true(valid("00-00000000000000000000000000000001-0000000000000001-00"));
}

/* §1.1 trace-flags: test bits, never compare the whole byte. Unknown bits are
 * kept as received but never sent (§1.1 reserved: vendors MUST set them to zero). */
static void test_flags_bits(void **state)
{
    (void)state;
    clew_span_context sc;
    assert_int_equal(parse("00-" TID "-" PID "-09", &sc), CLEW_OK);
    assert_true(clew_span_context_is_sampled(&sc));
    assert_int_equal(parse("00-" TID "-" PID "-fe", &sc), CLEW_OK);
    assert_false(clew_span_context_is_sampled(&sc));
    assert_true(sc.trace_flags & CLEW_TRACE_FLAG_RANDOM);
    char out[CLEW_TRACEPARENT_SIZE];
    assert_int_equal(clew_traceparent_format(&sc, out), CLEW_OK);
    assert_string_equal(out, "00-" TID "-" PID "-02");
    sc.trace_flags = 0xff;
    assert_int_equal(clew_traceparent_format(&sc, out), CLEW_OK);
    assert_string_equal(out, "00-" TID "-" PID "-03");
}

/* §1.1 a higher version is re-emitted as version 00. */
static void test_future_version_reemitted_as_00(void **state)
{
    (void)state;
    clew_span_context sc;
    assert_int_equal(parse("cc-" TID "-" PID "-01-extra", &sc), CLEW_OK);
    char out[CLEW_TRACEPARENT_SIZE];
    assert_int_equal(clew_traceparent_format(&sc, out), CLEW_OK);
    assert_string_equal(out, TP00);
}

/* A parse failure leaves the output untouched (out-params only on success). */
static void test_failure_leaves_output(void **state)
{
    (void)state;
    clew_span_context sc;
    clew_span_context_init(&sc);
    sc.trace_flags = 0x5a;
    assert_int_equal(parse("00-" TID "-" PID "-0g", &sc), CLEW_EPARSE);
    assert_int_equal(sc.trace_flags, 0x5a);
    assert_false(clew_span_context_is_valid(&sc));
    assert_int_equal(clew_traceparent_parse(NULL, 0, &sc), CLEW_EINVAL);
}

/* Formatting an invalid context is refused. */
static void test_format_invalid(void **state)
{
    (void)state;
    clew_span_context sc;
    clew_span_context_init(&sc);
    char out[CLEW_TRACEPARENT_SIZE] = "untouched";
    assert_int_equal(clew_traceparent_format(&sc, out), CLEW_EINVAL);
    assert_string_equal(out, "untouched");
}

/* §1.3 no traceparent: extract reports "not found" (the caller starts a trace). */
static void test_extract_absent(void **state)
{
    (void)state;
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "tracestate", "foo=1");
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &h.c, &sc, NULL),
                     CLEW_ENOTFOUND);
}

/* §1.1 test_traceparent_duplicated: two traceparent headers are invalid, even equal ones. */
static void test_extract_duplicated(void **state)
{
    (void)state;
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "traceparent", TP00);
    hdrs_add(&h, "traceparent", "00-12345678901234567890123456789011-1234567890123456-01");
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &h.c, &sc, NULL),
                     CLEW_EPARSE);
    hdrs_init(&h);
    hdrs_add(&h, "traceparent", TP00);
    hdrs_add(&h, "Traceparent", TP00);
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &h.c, &sc, NULL),
                     CLEW_EPARSE);
}

/* §1.1 header name is ASCII case-insensitive (HTTP carrier). */
static void test_extract_case_insensitive_name(void **state)
{
    (void)state;
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "TraceParent", TP00);
    hdrs_add(&h, "TRACESTATE", "foo=1");
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &h.c, &sc, NULL),
                     CLEW_OK);
    clew_str v;
    assert_int_equal(clew_tracestate_get(&sc.tracestate, "foo", &v), CLEW_OK);
    assert_int_equal(v.len, 1);
}

/* §1.2/§1.3 invalid traceparent: the tracestate MUST NOT be parsed and the output stays. */
static void test_extract_invalid_skips_tracestate(void **state)
{
    (void)state;
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "traceparent", "00-" TID "-" PID "-01-extra");
    hdrs_add(&h, "tracestate", "foo=1");
    clew_span_context sc;
    clew_span_context_init(&sc);
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &h.c, &sc, NULL),
                     CLEW_EPARSE);
    assert_false(clew_span_context_is_valid(&sc));
    assert_int_equal(clew_tracestate_count(&sc.tracestate), 0);
}

/* §1.2 multiple tracestate headers are combined as if joined with ",". */
static void test_extract_multiple_tracestate(void **state)
{
    (void)state;
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "traceparent", TP00);
    hdrs_add(&h, "tracestate", "foo=1,bar=2");
    hdrs_add(&h, "tracestate", "baz=3");
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &h.c, &sc, NULL),
                     CLEW_OK);
    clew_str s = clew_tracestate_str(&sc.tracestate);
    assert_int_equal(s.len, strlen("foo=1,bar=2,baz=3"));
    assert_memory_equal(s.ptr, "foo=1,bar=2,baz=3", s.len);
}

/* §1.2 a tracestate failure MUST NOT affect the traceparent. */
static void test_extract_bad_tracestate_keeps_traceparent(void **state)
{
    (void)state;
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "traceparent", TP00);
    hdrs_add(&h, "tracestate", "foo=1,BAR=2");
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &h.c, &sc, NULL),
                     CLEW_OK);
    assert_true(clew_span_context_is_valid(&sc));
    assert_int_equal(clew_tracestate_count(&sc.tracestate), 0);
}

/* §1.1 inject writes version 00 with only bits 0-1; §1.2 no empty tracestate is sent. */
static void test_inject(void **state)
{
    (void)state;
    clew_span_context sc;
    assert_int_equal(parse("cc-" TID "-" PID "-ff-x", &sc), CLEW_OK);
    hdrs h;
    hdrs_init(&h);
    assert_int_equal(clew_propagator_inject(clew_propagator_tracecontext(), &sc, NULL, &h.c),
                     CLEW_OK);
    char v[600];
    assert_string_equal(hdr(&h, "traceparent", v, sizeof(v)), "00-" TID "-" PID "-03");
    assert_int_equal(h.list.count, 1); /* no tracestate header for an empty list */
    /* §1.1 the header name SHOULD be sent lowercase */
    assert_int_equal(h.items[0].name.len, 11);
    assert_memory_equal(h.items[0].name.ptr, "traceparent", 11);
    assert_int_equal(clew_tracestate_set(&sc.tracestate, "congo", "t61rcWkgMzE"), CLEW_OK);
    assert_int_equal(clew_propagator_inject(clew_propagator_tracecontext(), &sc, NULL, &h.c),
                     CLEW_OK);
    assert_string_equal(hdr(&h, "tracestate", v, sizeof(v)), "congo=t61rcWkgMzE");
    assert_int_equal(h.list.count, 2); /* traceparent replaced, not duplicated */
}

/* Inject then extract gives back the same context (is_remote set on the way in). */
static void test_round_trip(void **state)
{
    (void)state;
    clew_span_context a, b;
    assert_int_equal(parse("00-" TID "-" PID "-03", &a), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&a.tracestate, "rojo", "00f067aa0ba902b7"), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&a.tracestate, "ot", "th:c;rv:0123456789abcd"), CLEW_OK);
    hdrs h;
    hdrs_init(&h);
    assert_int_equal(clew_propagator_inject(clew_propagator_tracecontext(), &a, NULL, &h.c),
                     CLEW_OK);
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &h.c, &b, NULL),
                     CLEW_OK);
    assert_memory_equal(&a.trace_id, &b.trace_id, sizeof(a.trace_id));
    assert_memory_equal(&a.span_id, &b.span_id, sizeof(a.span_id));
    assert_int_equal(a.trace_flags, b.trace_flags);
    assert_true(clew_tracestate_equal(&a.tracestate, &b.tracestate));
}

/* §1.2 "if traceparent was not changed, tracestate MUST NOT be changed": what is
 * extracted is forwarded byte for byte (after OWS removal), order included. */
static void test_tracestate_forwarded_unchanged(void **state)
{
    (void)state;
    hdrs in, out;
    hdrs_init(&in);
    hdrs_add(&in, "traceparent", TP00);
    hdrs_add(&in, "tracestate", "zz=1,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,a@b=x y");
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &in.c, &sc, NULL),
                     CLEW_OK);
    hdrs_init(&out);
    assert_int_equal(clew_propagator_inject(clew_propagator_tracecontext(), &sc, NULL, &out.c),
                     CLEW_OK);
    char v[600];
    assert_string_equal(hdr(&out, "tracestate", v, sizeof(v)),
                        "zz=1,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,a@b=x y");
    assert_string_equal(hdr(&out, "traceparent", v, sizeof(v)), TP00);
}

/* An invalid context injects nothing (no header to restart from). */
static void test_inject_invalid_context(void **state)
{
    (void)state;
    clew_span_context sc;
    clew_span_context_init(&sc);
    hdrs h;
    hdrs_init(&h);
    assert_int_equal(clew_propagator_inject(clew_propagator_tracecontext(), &sc, NULL, &h.c),
                     CLEW_OK);
    assert_int_equal(h.list.count, 0);
}

/* Carrier helpers: setters replace an existing header and report a full carrier. */
static void test_header_list_full(void **state)
{
    (void)state;
    clew_header items[1];
    char buf[60];
    clew_header_list l;
    clew_header_list_init(&l, items, 0, 1, buf, sizeof(buf));
    clew_carrier c = clew_http_headers_carrier(&l);
    clew_span_context sc;
    assert_int_equal(parse(TP00, &sc), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&sc.tracestate, "a", "b"), CLEW_OK);
    /* one slot: traceparent fits, tracestate does not */
    assert_int_equal(clew_propagator_inject(clew_propagator_tracecontext(), &sc, NULL, &c),
                     CLEW_EFULL);
    assert_int_equal(l.count, 1);
    clew_header_list_init(&l, items, 0, 1, buf, 10);
    c = clew_http_headers_carrier(&l);
    assert_int_equal(clew_propagator_inject(clew_propagator_tracecontext(), &sc, NULL, &c),
                     CLEW_EFULL);
    assert_int_equal(l.count, 0);
}

/* Message headers (Kafka-style) compare keys case-sensitively. */
static void test_message_headers_case_sensitive(void **state)
{
    (void)state;
    clew_header items[2] = {{{"Traceparent", 11}, {TP00, 55}}, {{"x", 1}, {"y", 1}}};
    clew_header_list l;
    clew_header_list_init(&l, items, 2, 2, NULL, 0);
    clew_carrier c = clew_message_headers_carrier(&l);
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &c, &sc, NULL),
                     CLEW_ENOTFOUND);
    items[0].name = (clew_str){"traceparent", 11};
    assert_int_equal(clew_propagator_extract(clew_propagator_tracecontext(), &c, &sc, NULL),
                     CLEW_OK);
}

/* OTEL_PROPAGATORS: default "tracecontext,baggage"; case-insensitive; duplicates ignored. */
static void test_composite_names(void **state)
{
    (void)state;
    clew_propagator *p = NULL;
    assert_int_equal(clew_propagator_create(NULL, &p, NULL), CLEW_OK);
    assert_string_equal(clew_propagator_name(p), "tracecontext,baggage");
    clew_propagator_destroy(p);
    assert_int_equal(clew_propagator_create("  ", &p, NULL), CLEW_OK);
    assert_string_equal(clew_propagator_name(p), "tracecontext,baggage");
    clew_propagator_destroy(p);
    assert_int_equal(clew_propagator_create(" B3 , b3multi,jaeger,b3", &p, NULL), CLEW_OK);
    assert_string_equal(clew_propagator_name(p), "b3,b3multi,jaeger");
    clew_propagator_destroy(p);
    assert_int_equal(clew_propagator_create("none", &p, NULL), CLEW_OK);
    assert_string_equal(clew_propagator_name(p), "none");
    clew_propagator_destroy(p);
    clew_propagator_destroy(NULL);
    clew_propagator_destroy(clew_propagator_b3()); /* built-ins are never freed */
    assert_string_equal(clew_propagator_name(clew_propagator_b3()), "b3");
}

/* OTEL_PROPAGATORS: unknown names are reported through the status and ignored. */
static void test_composite_unknown(void **state)
{
    (void)state;
    clew_propagator *p = NULL;
    clew_str unknown = {NULL, 0};
    assert_int_equal(clew_propagator_create("tracecontext,xray,ottrace", &p, &unknown),
                     CLEW_EUNSUPPORTED);
    assert_non_null(p);
    assert_int_equal(unknown.len, 4);
    assert_memory_equal(unknown.ptr, "xray", 4);
    assert_string_equal(clew_propagator_name(p), "tracecontext");
    clew_propagator_destroy(p);
}

/* "none" propagates nothing either way. */
static void test_composite_none(void **state)
{
    (void)state;
    clew_propagator *p = NULL;
    assert_int_equal(clew_propagator_create("none", &p, NULL), CLEW_OK);
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "traceparent", TP00);
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(p, &h.c, &sc, NULL), CLEW_ENOTFOUND);
    assert_int_equal(parse(TP00, &sc), CLEW_OK);
    hdrs_init(&h);
    assert_int_equal(clew_propagator_inject(p, &sc, NULL, &h.c), CLEW_OK);
    assert_int_equal(h.list.count, 0);
    clew_propagator_destroy(p);
}

/* Composite: all formats are injected; on extract the last valid one wins, an
 * invalid header does not override a valid one. */
static void test_composite_inject_extract(void **state)
{
    (void)state;
    clew_propagator *p = NULL;
    assert_int_equal(clew_propagator_create("tracecontext,b3multi,jaeger", &p, NULL), CLEW_OK);
    clew_span_context sc, got;
    assert_int_equal(parse(TP00, &sc), CLEW_OK);
    hdrs h;
    hdrs_init(&h);
    assert_int_equal(clew_propagator_inject(p, &sc, NULL, &h.c), CLEW_OK);
    assert_int_equal(h.list.count, 5);
    char v[100];
    assert_string_equal(hdr(&h, "uber-trace-id", v, sizeof(v)), TID ":" PID ":0:01");

    hdrs_init(&h);
    hdrs_add(&h, "traceparent", TP00);
    hdrs_add(&h, "uber-trace-id", "zz:def:0:0");
    assert_int_equal(clew_propagator_extract(p, &h.c, &got, NULL), CLEW_OK);
    char t[33];
    tid_hex(&got, t);
    assert_string_equal(t, TID);
    assert_true(clew_span_context_is_sampled(&got));

    hdrs_init(&h);
    hdrs_add(&h, "traceparent", TP00);
    hdrs_add(&h, "uber-trace-id", "abc:def:0:0");
    assert_int_equal(clew_propagator_extract(p, &h.c, &got, NULL), CLEW_OK);
    tid_hex(&got, t);
    assert_string_equal(t, "00000000000000000000000000000abc");
    assert_false(clew_span_context_is_sampled(&got));

    hdrs_init(&h);
    hdrs_add(&h, "traceparent", "00-00000000000000000000000000000000-" PID "-01");
    assert_int_equal(clew_propagator_extract(p, &h.c, &got, NULL), CLEW_EPARSE);
    clew_propagator_destroy(p);
}

/* SQL comment: traceparent and URL-encoded tracestate appended; round trip. */
static void test_sql_comment_round_trip(void **state)
{
    (void)state;
    clew_span_context sc, got;
    assert_int_equal(parse(TP00, &sc), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&sc.tracestate, "b", "x y"), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&sc.tracestate, "a", "1"), CLEW_OK);
    const char *q = "SELECT * FROM t WHERE id = 'it''s' ;";
    char out[512];
    size_t n = 0;
    assert_int_equal(clew_sql_comment_inject(&sc, q, strlen(q), out, sizeof(out), &n), CLEW_OK);
    assert_string_equal(out, "SELECT * FROM t WHERE id = 'it''s' /*traceparent='" TP00
                             "',tracestate='a%3D1%2Cb%3Dx%20y'*/;");
    assert_int_equal(n, strlen(out));
    assert_int_equal(clew_sql_comment_extract(out, n, &got), CLEW_OK);
    assert_memory_equal(&got.trace_id, &sc.trace_id, sizeof(sc.trace_id));
    assert_memory_equal(&got.span_id, &sc.span_id, sizeof(sc.span_id));
    assert_true(clew_tracestate_equal(&got.tracestate, &sc.tracestate));
}

/* SQL comment: statements that already carry a comment are left alone; limits. */
static void test_sql_comment_edge_cases(void **state)
{
    (void)state;
    clew_span_context sc, got;
    assert_int_equal(parse(TP00, &sc), CLEW_OK);
    char out[256];
    size_t n = 0;
    const char *q = "SELECT 1 -- hint";
    assert_int_equal(clew_sql_comment_inject(&sc, q, strlen(q), out, sizeof(out), &n), CLEW_OK);
    assert_string_equal(out, q);
    q = "SELECT 1";
    assert_int_equal(clew_sql_comment_inject(&sc, q, strlen(q), out, 20, &n), CLEW_ETOOBIG);
    assert_int_equal(clew_sql_comment_inject(&sc, q, strlen(q), out, sizeof(out), &n), CLEW_OK);
    assert_string_equal(out, "SELECT 1 /*traceparent='" TP00 "'*/");
    assert_int_equal(clew_sql_comment_extract(q, strlen(q), &got), CLEW_ENOTFOUND);
    q = "SELECT 1 /*traceparent='00-zz'*/";
    assert_int_equal(clew_sql_comment_extract(q, strlen(q), &got), CLEW_EPARSE);
    q = "SELECT 1 /*traceparent='" TP00 "*/";
    assert_int_equal(clew_sql_comment_extract(q, strlen(q), &got), CLEW_EPARSE);
    q = "SELECT 1 /*action='run',traceparent='" TP00 "'*/";
    assert_int_equal(clew_sql_comment_extract(q, strlen(q), &got), CLEW_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_version00),
        cmocka_unit_test(test_ows_handling),
        cmocka_unit_test(test_version00_strict),
        cmocka_unit_test(test_version_ff),
        cmocka_unit_test(test_version_cc),
        cmocka_unit_test(test_version_format),
        cmocka_unit_test(test_uppercase_invalid),
        cmocka_unit_test(test_zero_ids),
        cmocka_unit_test(test_flags_bits),
        cmocka_unit_test(test_future_version_reemitted_as_00),
        cmocka_unit_test(test_failure_leaves_output),
        cmocka_unit_test(test_format_invalid),
        cmocka_unit_test(test_extract_absent),
        cmocka_unit_test(test_extract_duplicated),
        cmocka_unit_test(test_extract_case_insensitive_name),
        cmocka_unit_test(test_extract_invalid_skips_tracestate),
        cmocka_unit_test(test_extract_multiple_tracestate),
        cmocka_unit_test(test_extract_bad_tracestate_keeps_traceparent),
        cmocka_unit_test(test_inject),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tracestate_forwarded_unchanged),
        cmocka_unit_test(test_inject_invalid_context),
        cmocka_unit_test(test_header_list_full),
        cmocka_unit_test(test_message_headers_case_sensitive),
        cmocka_unit_test(test_composite_names),
        cmocka_unit_test(test_composite_unknown),
        cmocka_unit_test(test_composite_none),
        cmocka_unit_test(test_composite_inject_extract),
        cmocka_unit_test(test_sql_comment_round_trip),
        cmocka_unit_test(test_sql_comment_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
