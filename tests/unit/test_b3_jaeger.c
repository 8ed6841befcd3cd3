/*
 * tests/unit/test_b3_jaeger.c - B3 single and multi-header propagation and the
 * Jaeger uber-trace-id header. Each test names the rule it checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clew/propagation.h"

#define TID  "80f198ee56343ba864fe8b2a57d3eff7"
#define SID  "e457b5a2e4d86bd1"
#define PSID "05e3ac9a4f6e3b90"

typedef struct hdrs {
    clew_header items[16];
    char buf[1024];
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

static const char *hdr(hdrs *h, const char *name)
{
    static char out[200];
    clew_str v;
    out[0] = '\0';
    if (h->c.get(h->c.ctx, name, &v, 1) > 0) {
        snprintf(out, sizeof(out), "%.*s", (int)v.len, v.ptr);
    }
    return out;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
}

/* Extracts one header with propagator p; on success writes "tid sid flags". */
static clew_status ex1(const clew_propagator *p, const char *name, const char *value, char *out)
{
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, name, value);
    clew_span_context sc;
    clew_status rc = clew_propagator_extract(p, &h.c, &sc, NULL);
    if (rc == CLEW_OK) {
        char t[33], s[17];
        hex(sc.trace_id.bytes, 16, t);
        hex(sc.span_id.bytes, 8, s);
        snprintf(out, 64, "%s %s %d%s", t, s, sc.trace_flags, sc.is_remote ? "" : " local");
    }
    return rc;
}

/* B3 single: {traceid}-{spanid}-{sampled}-{parentspanid}. */
static void test_b3_single_full(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(ex1(clew_propagator_b3(), "b3", TID "-" SID "-1-" PSID, out), CLEW_OK);
    assert_string_equal(out, TID " " SID " 1");
    assert_int_equal(ex1(clew_propagator_b3(), "b3", TID "-" SID "-0", out), CLEW_OK);
    assert_string_equal(out, TID " " SID " 0");
    /* "d" (debug) implies sampled */
    assert_int_equal(ex1(clew_propagator_b3(), "b3", TID "-" SID "-d", out), CLEW_OK);
    assert_string_equal(out, TID " " SID " 1");
    /* no sampling state: deferred, not sampled */
    assert_int_equal(ex1(clew_propagator_b3(), "B3", TID "-" SID, out), CLEW_OK);
    assert_string_equal(out, TID " " SID " 0");
}

/* B3: a 64-bit trace id is zero-padded on the left to 128 bits. */
static void test_b3_single_64bit(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(ex1(clew_propagator_b3(), "b3", "64fe8b2a57d3eff7-" SID "-1", out), CLEW_OK);
    assert_string_equal(out, "000000000000000064fe8b2a57d3eff7 " SID " 1");
}

/* B3: "b3: 0" / "1" / "d" carry only a sampling decision, no context to continue. */
static void test_b3_single_sampling_only(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(ex1(clew_propagator_b3(), "b3", "0", out), CLEW_ENOTFOUND);
    assert_int_equal(ex1(clew_propagator_b3(), "b3", "d", out), CLEW_ENOTFOUND);
    assert_int_equal(ex1(clew_propagator_b3(), "x-other", "x", out), CLEW_ENOTFOUND);
}

/* B3 single: malformed values are parse errors. */
static void test_b3_single_malformed(void **state)
{
    (void)state;
    char out[64];
    const char *bad[] = {
        TID,                                    /* no span id */
        TID "-" SID "-2",                       /* bad sampling state */
        TID "-" SID "-1-" PSID "-x",            /* too many fields */
        TID "-e457b5a2e4d86b",                  /* short span id */
        "80f198ee56343ba864fe8b2a57d3eff-" SID, /* 31-digit trace id */
        TID "-" SID "-1-123",                   /* short parent id */
        "00000000000000000000000000000000-" SID "-1",
        TID "-0000000000000000-1",
        TID "-" SID "-",
        "80F198EE56343BA864FE8B2A57D3EFF7-" SID "-1", /* B3 ids are lower-hex */
        TID "-E457B5A2E4D86BD1-1",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ex1(clew_propagator_b3(), "b3", bad[i], out), CLEW_EPARSE);
    }
}

/* B3 single inject: 32-digit trace id, span id, sampling state. */
static void test_b3_single_inject(void **state)
{
    (void)state;
    clew_span_context sc;
    assert_int_equal(clew_traceparent_parse("00-" TID "-" SID "-01", 55, &sc), CLEW_OK);
    hdrs h;
    hdrs_init(&h);
    assert_int_equal(clew_propagator_inject(clew_propagator_b3(), &sc, NULL, &h.c), CLEW_OK);
    assert_string_equal(hdr(&h, "b3"), TID "-" SID "-1");
    sc.trace_flags = 0;
    assert_int_equal(clew_propagator_inject(clew_propagator_b3(), &sc, NULL, &h.c), CLEW_OK);
    assert_string_equal(hdr(&h, "b3"), TID "-" SID "-0");
    assert_int_equal(h.list.count, 1);
}

/* B3 multi: X-B3-TraceId, X-B3-SpanId, X-B3-Sampled, X-B3-ParentSpanId, names any case. */
static void test_b3_multi_extract(void **state)
{
    (void)state;
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "X-B3-TraceId", TID);
    hdrs_add(&h, "X-B3-SpanId", SID);
    hdrs_add(&h, "X-B3-ParentSpanId", PSID);
    hdrs_add(&h, "X-B3-Sampled", "1");
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_b3multi(), &h.c, &sc, NULL), CLEW_OK);
    char t[33];
    hex(sc.trace_id.bytes, 16, t);
    assert_string_equal(t, TID);
    assert_true(clew_span_context_is_sampled(&sc));
    assert_true(sc.is_remote);
}

/* B3 multi: sampling from X-B3-Sampled ("1"/"true"/"0") and X-B3-Flags (debug). */
static void test_b3_multi_sampling(void **state)
{
    (void)state;
    const struct {
        const char *name, *value;
        int sampled;
    } cases[] = {{"x-b3-sampled", "0", 0},
                 {"x-b3-sampled", "true", 1},
                 {"x-b3-sampled", "false", 0},
                 {"x-b3-flags", "1", 1},
                 {"x-b3-other", "1", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hdrs h;
        hdrs_init(&h);
        hdrs_add(&h, "x-b3-traceid", TID);
        hdrs_add(&h, "x-b3-spanid", SID);
        hdrs_add(&h, cases[i].name, cases[i].value);
        clew_span_context sc;
        assert_int_equal(clew_propagator_extract(clew_propagator_b3multi(), &h.c, &sc, NULL),
                         CLEW_OK);
        assert_int_equal(clew_span_context_is_sampled(&sc), cases[i].sampled);
    }
}

/* B3 multi: 64-bit trace id padded; a missing id is an error; none at all is "not found". */
static void test_b3_multi_ids(void **state)
{
    (void)state;
    hdrs h;
    hdrs_init(&h);
    hdrs_add(&h, "x-b3-traceid", "64fe8b2a57d3eff7");
    hdrs_add(&h, "x-b3-spanid", SID);
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_b3multi(), &h.c, &sc, NULL), CLEW_OK);
    char t[33];
    hex(sc.trace_id.bytes, 16, t);
    assert_string_equal(t, "000000000000000064fe8b2a57d3eff7");
    hdrs_init(&h);
    hdrs_add(&h, "x-b3-traceid", TID);
    assert_int_equal(clew_propagator_extract(clew_propagator_b3multi(), &h.c, &sc, NULL),
                     CLEW_EPARSE);
    hdrs_init(&h);
    hdrs_add(&h, "x-b3-sampled", "1");
    assert_int_equal(clew_propagator_extract(clew_propagator_b3multi(), &h.c, &sc, NULL),
                     CLEW_ENOTFOUND);
    hdrs_init(&h);
    hdrs_add(&h, "x-b3-traceid", "xyz");
    hdrs_add(&h, "x-b3-spanid", SID);
    assert_int_equal(clew_propagator_extract(clew_propagator_b3multi(), &h.c, &sc, NULL),
                     CLEW_EPARSE);
}

/* B3 multi inject: three headers, lowercase names, 32-digit trace id. */
static void test_b3_multi_inject(void **state)
{
    (void)state;
    clew_span_context sc;
    assert_int_equal(
        clew_traceparent_parse("00-000000000000000064fe8b2a57d3eff7-" SID "-00", 55, &sc), CLEW_OK);
    hdrs h;
    hdrs_init(&h);
    assert_int_equal(clew_propagator_inject(clew_propagator_b3multi(), &sc, NULL, &h.c), CLEW_OK);
    assert_int_equal(h.list.count, 3);
    assert_string_equal(hdr(&h, "x-b3-traceid"), "000000000000000064fe8b2a57d3eff7");
    assert_string_equal(hdr(&h, "x-b3-spanid"), SID);
    assert_string_equal(hdr(&h, "x-b3-sampled"), "0");
}

/* Jaeger: {trace-id}:{span-id}:{parent}:{flags}, flags bit 0 = sampled. */
static void test_jaeger_extract(void **state)
{
    (void)state;
    char out[64];
    const clew_propagator *j = clew_propagator_jaeger();
    assert_int_equal(ex1(j, "uber-trace-id", TID ":" SID ":0:1", out), CLEW_OK);
    assert_string_equal(out, TID " " SID " 1");
    assert_int_equal(ex1(j, "Uber-Trace-Id", TID ":" SID ":" PSID ":03", out), CLEW_OK);
    assert_string_equal(out, TID " " SID " 1");
    assert_int_equal(ex1(j, "uber-trace-id", TID ":" SID ":0:02", out), CLEW_OK);
    assert_string_equal(out, TID " " SID " 0");
}

/* Jaeger: hex ids may be shorter than full length; they are left-padded. */
static void test_jaeger_short_ids(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(ex1(clew_propagator_jaeger(), "uber-trace-id", "abc:1:0:1", out), CLEW_OK);
    assert_string_equal(out, "00000000000000000000000000000abc 0000000000000001 1");
}

/* Jaeger: a percent-encoded ":" (%3A) is accepted. */
static void test_jaeger_percent_colon(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(ex1(clew_propagator_jaeger(), "uber-trace-id", TID "%3A" SID "%3a0%3A1", out),
                     CLEW_OK);
    assert_string_equal(out, TID " " SID " 1");
}

/* Jaeger: malformed values are parse errors. */
static void test_jaeger_malformed(void **state)
{
    (void)state;
    char out[64];
    const char *bad[] = {
        TID ":" SID ":0",     /* three fields */
        TID ":" SID ":0:1:2", /* five fields */
        TID ":" SID ":0:zz",  /* flags not hex */
        TID ":" SID ":0:123", /* flags longer than a byte */
        TID ":" SID "::1",    /* empty parent */
        "0:" SID ":0:1",      /* zero trace id */
        TID ":0:0:1",         /* zero span id */
        TID "0:" SID ":0:1",  /* 33-digit trace id */
        TID ":" SID "0:0:1",  /* 17-digit span id */
        "xyz:" SID ":0:1",    "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ex1(clew_propagator_jaeger(), "uber-trace-id", bad[i], out), CLEW_EPARSE);
    }
    assert_int_equal(ex1(clew_propagator_jaeger(), "x", "y", out), CLEW_ENOTFOUND);
}

/* Jaeger inject: full-length ids, parent "0", flags as two hex digits. */
static void test_jaeger_inject(void **state)
{
    (void)state;
    clew_span_context sc;
    assert_int_equal(clew_traceparent_parse("00-" TID "-" SID "-03", 55, &sc), CLEW_OK);
    hdrs h;
    hdrs_init(&h);
    assert_int_equal(clew_propagator_inject(clew_propagator_jaeger(), &sc, NULL, &h.c), CLEW_OK);
    assert_string_equal(hdr(&h, "uber-trace-id"), TID ":" SID ":0:01");
    char out[64];
    assert_int_equal(ex1(clew_propagator_jaeger(), "uber-trace-id", hdr(&h, "uber-trace-id"), out),
                     CLEW_OK);
    assert_string_equal(out, TID " " SID " 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b3_single_full),          cmocka_unit_test(test_b3_single_64bit),
        cmocka_unit_test(test_b3_single_sampling_only), cmocka_unit_test(test_b3_single_malformed),
        cmocka_unit_test(test_b3_single_inject),        cmocka_unit_test(test_b3_multi_extract),
        cmocka_unit_test(test_b3_multi_sampling),       cmocka_unit_test(test_b3_multi_ids),
        cmocka_unit_test(test_b3_multi_inject),         cmocka_unit_test(test_jaeger_extract),
        cmocka_unit_test(test_jaeger_short_ids),        cmocka_unit_test(test_jaeger_percent_colon),
        cmocka_unit_test(test_jaeger_malformed),        cmocka_unit_test(test_jaeger_inject),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
