/*
 * tests/unit/test_zipkin.c - the Zipkin v2 JSON codec: the mapping to the span model
 * (as the OpenTelemetry Collector's Zipkin receiver maps it), shared spans, per-span
 * rejection, parse errors with paths, and the encoder as the decoder's inverse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "codec/zipkin.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/hex.h"
#include "model/model.h"

#define S(lit)    ((clew_str){lit, sizeof(lit) - 1})
#define MAX_SPANS 64

/* The example of wire.md section 5.4, verbatim. */
static const char wire_example[] =
    "[{\n"
    "  \"traceId\": \"4d1e00c0db9010db86154a4ba6e91385\",\n"
    "  \"parentId\": \"86154a4ba6e91385\",\n"
    "  \"id\": \"4d1e00c0db9010db\",\n"
    "  \"kind\": \"CLIENT\",\n"
    "  \"name\": \"get\",\n"
    "  \"timestamp\": 1472470996199000,\n"
    "  \"duration\": 207000,\n"
    "  \"localEndpoint\": {\"serviceName\": \"frontend\", \"ipv6\": \"2001:db8::c001\"},\n"
    "  \"remoteEndpoint\": {\"serviceName\": \"backend\", \"ipv4\": \"192.168.99.101\", "
    "\"port\": 9000},\n"
    "  \"annotations\": [{\"timestamp\": 1472470996238000, \"value\": \"foo\"}],\n"
    "  \"tags\": {\"http.path\": \"/api\", \"clnt/finagle.version\": \"6.45.0\"},\n"
    "  \"debug\": false,\n"
    "  \"shared\": false\n"
    "}]";

typedef struct decoded {
    clew_arena arena;
    clew_batch batch;
    clew_error err;
    clew_status rc;
    const clew_span_data *spans[MAX_SPANS];
    size_t n;
} decoded;

static bool collect(const clew_span_data *s, void *ud)
{
    decoded *d = ud;
    if (d->n < MAX_SPANS) {
        d->spans[d->n++] = s;
    }
    return true;
}

static void decode_into(decoded *d, const char *json, size_t limit)
{
    memset(d, 0, sizeof(*d));
    clew__arena_init(&d->arena, 4096, limit);
    d->rc = clew__zipkin_v2_decode(json, strlen(json), &d->arena, &d->batch, &d->err);
    if (d->rc == CLEW_OK) {
        clew__batch_foreach(&d->batch, collect, d);
    }
}

static void decode_ok(decoded *d, const char *json)
{
    decode_into(d, json, 0);
    if (d->rc != CLEW_OK) {
        fail_msg("decode failed: %d %s", d->rc, d->err.msg);
    }
    assert_int_equal(d->n, d->batch.n_spans);
}

static void done(decoded *d)
{
    clew__arena_deinit(&d->arena);
}

static void assert_str(clew_str s, const char *want)
{
    size_t n = strlen(want);
    if (s.len != n || memcmp(s.ptr, want, n) != 0) {
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.len, s.ptr ? s.ptr : "", want);
    }
}

static void assert_attr_str(const clew_attrs *a, const char *key, const char *want)
{
    const clew_value *v = clew__attrs_get(a, key, strlen(key));
    if (v == NULL) {
        fail_msg("attribute %s missing", key);
    }
    assert_int_equal(v->type, CLEW_VALUE_STRING);
    assert_str(v->u.s, want);
}

static bool has_attr(const clew_attrs *a, const char *key)
{
    return clew__attrs_get(a, key, strlen(key)) != NULL;
}

static void assert_hex_trace(const clew_trace_id *id, const char *want32)
{
    char hex[33];
    clew__trace_id_hex(id, hex);
    assert_string_equal(hex, want32);
}

static void assert_hex_span(const clew_span_id *id, const char *want16)
{
    char hex[17];
    clew__span_id_hex(id, hex);
    assert_string_equal(hex, want16);
}

static const clew_span_data *find_span(const decoded *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->spans[i]->name.len == strlen(name) &&
            memcmp(d->spans[i]->name.ptr, name, strlen(name)) == 0) {
            return d->spans[i];
        }
    }
    fail_msg("span %s not found", name);
    return NULL;
}

/* ---- decoding ---- */

static void wire_example_maps_field_by_field(void **state)
{
    (void)state;
    decoded d;
    decode_ok(&d, wire_example);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.batch.rejected, 0);
    assert_int_equal(d.batch.n_rs, 1);
    const clew_span_data *s = d.spans[0];
    assert_hex_trace(&s->trace_id, "4d1e00c0db9010db86154a4ba6e91385");
    assert_hex_span(&s->span_id, "4d1e00c0db9010db");
    assert_hex_span(&s->parent_span_id, "86154a4ba6e91385");
    assert_int_equal(s->kind, CLEW_KIND_CLIENT);
    assert_str(s->name, "get");
    assert_true(s->start_ns == 1472470996199000ull * 1000);
    assert_true(s->end_ns == (1472470996199000ull + 207000) * 1000);
    assert_int_equal(s->flags, 0); /* debug: false */
    assert_int_equal(s->status_code, CLEW_STATUS_UNSET);
    assert_str(clew__resource_service(s->resource), "frontend");
    assert_int_equal(s->resource->attrs.n, 1);
    assert_non_null(s->scope);
    /* endpoints and tags */
    assert_int_equal(s->attrs.n, 6);
    assert_attr_str(&s->attrs, "http.path", "/api");
    assert_attr_str(&s->attrs, "clnt/finagle.version", "6.45.0");
    assert_attr_str(&s->attrs, "network.local.address", "2001:db8::c001");
    assert_attr_str(&s->attrs, "service.peer.name", "backend");
    assert_attr_str(&s->attrs, "network.peer.address", "192.168.99.101");
    const clew_value *port = clew__attrs_get(&s->attrs, "network.peer.port", 17);
    assert_non_null(port);
    assert_int_equal(port->type, CLEW_VALUE_INT);
    assert_int_equal(port->u.i, 9000);
    assert_false(has_attr(&s->attrs, "network.local.port"));
    /* annotation -> event */
    assert_int_equal(s->n_events, 1);
    assert_true(s->events[0].time_ns == 1472470996238000ull * 1000);
    assert_str(s->events[0].name, "foo");
    assert_int_equal(s->events[0].attrs.n, 0);
    assert_int_equal(s->n_links, 0);
    done(&d);
}

/* What py_zipkin sends: 128-bit trace ids, separate client and server span ids,
 * one span per service, debug set by the sampler. */
static void py_zipkin_request(void **state)
{
    (void)state;
    static const char body[] =
        "[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"name\":\"GET /\",\"parentId\":null,"
        "\"id\":\"b7ad6b7169203331\",\"kind\":\"SERVER\",\"timestamp\":1700000000000001,"
        "\"duration\":5000,\"debug\":true,\"shared\":false,"
        "\"localEndpoint\":{\"serviceName\":\"web\",\"ipv4\":\"10.0.0.1\",\"port\":8080},"
        "\"remoteEndpoint\":{\"ipv4\":\"10.0.0.9\",\"port\":51000},"
        "\"annotations\":[],\"tags\":{\"http.method\":\"GET\",\"http.status_code\":\"200\"}},"
        "{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"name\":\"query\","
        "\"parentId\":\"b7ad6b7169203331\",\"id\":\"00f067aa0ba902b7\",\"kind\":\"CLIENT\","
        "\"timestamp\":1700000000000100,\"duration\":1200,\"debug\":false,\"shared\":false,"
        "\"localEndpoint\":{\"serviceName\":\"web\",\"ipv4\":\"10.0.0.1\"},"
        "\"remoteEndpoint\":{\"serviceName\":\"postgres\"},"
        "\"annotations\":[],\"tags\":{\"db.statement\":\"SELECT 1\"}},"
        "{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"name\":\"handle\","
        "\"parentId\":\"00f067aa0ba902b7\",\"id\":\"1111111111111111\",\"kind\":\"SERVER\","
        "\"timestamp\":1700000000000200,\"duration\":900,"
        "\"localEndpoint\":{\"serviceName\":\"postgres\"},\"tags\":{}}]";
    decoded d;
    decode_ok(&d, body);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.batch.rejected, 0);
    /* two services -> two resources; both "web" spans share one resource */
    assert_int_equal(d.batch.n_rs, 2);
    assert_int_equal(d.batch.rs[0].n_scopes, 1);
    assert_int_equal(d.batch.rs[0].scopes[0].n_spans, 2);
    const clew_span_data *srv = find_span(&d, "GET /");
    const clew_span_data *cli = find_span(&d, "query");
    const clew_span_data *db = find_span(&d, "handle");
    assert_ptr_equal(srv->resource, cli->resource);
    assert_ptr_not_equal(srv->resource, db->resource);
    assert_str(clew__resource_service(db->resource), "postgres");
    assert_int_equal(srv->kind, CLEW_KIND_SERVER);
    assert_int_equal(cli->kind, CLEW_KIND_CLIENT);
    assert_true(clew__span_id_is_zero(&srv->parent_span_id));
    assert_memory_equal(cli->parent_span_id.bytes, srv->span_id.bytes, 8);
    assert_int_equal(srv->flags & CLEW_FLAG_SAMPLED, CLEW_FLAG_SAMPLED); /* debug: true */
    assert_int_equal(cli->flags & CLEW_FLAG_SAMPLED, 0);
    assert_true(srv->end_ns - srv->start_ns == 5000000ull);
    assert_attr_str(&srv->attrs, "network.local.address", "10.0.0.1");
    const clew_value *lp = clew__attrs_get(&srv->attrs, "network.local.port", 18);
    assert_non_null(lp);
    assert_int_equal(lp->u.i, 8080);
    assert_attr_str(&srv->attrs, "network.peer.address", "10.0.0.9");
    assert_attr_str(&srv->attrs, "http.status_code", "200");
    assert_attr_str(&cli->attrs, "service.peer.name", "postgres");
    assert_false(has_attr(&cli->attrs, "network.peer.address"));
    done(&d);
}

/* zipkin-js: the server half reuses the client's span id and says "shared": true. */
static const char shared_pair[] =
    "[{\"traceId\":\"5af7183fb1d4cf5f\",\"parentId\":\"6b221d5bc9e6496c\","
    "\"id\":\"352bff9a74ca9ad2\",\"kind\":\"CLIENT\",\"name\":\"get /api\","
    "\"timestamp\":1700000000100000,\"duration\":3000,"
    "\"localEndpoint\":{\"serviceName\":\"frontend\"}},"
    "{\"traceId\":\"5af7183fb1d4cf5f\",\"parentId\":\"6b221d5bc9e6496c\","
    "\"id\":\"352bff9a74ca9ad2\",\"kind\":\"SERVER\",\"name\":\"get /api\",\"shared\":true,"
    "\"timestamp\":1700000000100500,\"duration\":2000,"
    "\"localEndpoint\":{\"serviceName\":\"backend\"}}]";

static void shared_span_pair_gets_distinct_ids(void **state)
{
    (void)state;
    decoded d;
    decode_ok(&d, shared_pair);
    assert_int_equal(d.n, 2);
    const clew_span_data *cli = d.spans[0]->kind == CLEW_KIND_CLIENT ? d.spans[0] : d.spans[1];
    const clew_span_data *srv = d.spans[0]->kind == CLEW_KIND_SERVER ? d.spans[0] : d.spans[1];
    assert_int_equal(cli->kind, CLEW_KIND_CLIENT);
    assert_int_equal(srv->kind, CLEW_KIND_SERVER);
    /* 64-bit trace id zero-padded to 128 bits */
    assert_hex_trace(&cli->trace_id, "00000000000000005af7183fb1d4cf5f");
    /* the client half keeps its ids */
    assert_hex_span(&cli->span_id, "352bff9a74ca9ad2");
    assert_hex_span(&cli->parent_span_id, "6b221d5bc9e6496c");
    /* the server half: a new non-zero id, child of the client half */
    assert_memory_not_equal(srv->span_id.bytes, cli->span_id.bytes, 8);
    assert_false(clew__span_id_is_zero(&srv->span_id));
    assert_memory_equal(srv->parent_span_id.bytes, cli->span_id.bytes, 8);
    assert_memory_equal(srv->trace_id.bytes, cli->trace_id.bytes, 16);
    done(&d);
}

static void shared_span_resend_gets_same_id(void **state)
{
    (void)state;
    decoded a, b;
    decode_ok(&a, shared_pair);
    decode_ok(&b, shared_pair);
    const clew_span_data *sa = a.spans[0]->kind == CLEW_KIND_SERVER ? a.spans[0] : a.spans[1];
    const clew_span_data *sb = b.spans[0]->kind == CLEW_KIND_SERVER ? b.spans[0] : b.spans[1];
    /* a store dedups a resend on trace id + span id: the id must be stable */
    assert_memory_equal(sa->span_id.bytes, sb->span_id.bytes, 8);
    assert_memory_equal(sa->parent_span_id.bytes, sb->parent_span_id.bytes, 8);
    done(&a);
    done(&b);

    /* another shared span id gives another derived id */
    static const char other[] =
        "[{\"traceId\":\"5af7183fb1d4cf5f\",\"id\":\"352bff9a74ca9ad3\",\"kind\":\"SERVER\","
        "\"name\":\"x\",\"shared\":true,\"timestamp\":1700000000100500}]";
    decode_ok(&a, shared_pair);
    decode_ok(&b, other);
    const clew_span_data *s1 = a.spans[0]->kind == CLEW_KIND_SERVER ? a.spans[0] : a.spans[1];
    assert_memory_not_equal(s1->span_id.bytes, b.spans[0]->span_id.bytes, 8);
    assert_hex_span(&b.spans[0]->parent_span_id, "352bff9a74ca9ad3");
    done(&a);
    done(&b);
}

static void error_tag_sets_status(void **state)
{
    (void)state;
    static const char body[] =
        "[{\"traceId\":\"01\",\"id\":\"01\",\"name\":\"a\",\"timestamp\":1,"
        "\"tags\":{\"error\":\"true\",\"k\":\"v\"}},"
        "{\"traceId\":\"01\",\"id\":\"02\",\"name\":\"b\",\"timestamp\":1,"
        "\"tags\":{\"error\":\"connection refused\"}},"
        "{\"traceId\":\"01\",\"id\":\"03\",\"name\":\"c\",\"timestamp\":1,"
        "\"tags\":{\"error\":\"false\"}},"
        "{\"traceId\":\"01\",\"id\":\"04\",\"name\":\"d\",\"timestamp\":1,"
        "\"tags\":{\"otel.status_code\":\"ERROR\",\"otel.status_description\":\"bad\"}},"
        "{\"traceId\":\"01\",\"id\":\"05\",\"name\":\"e\",\"timestamp\":1,"
        "\"tags\":{\"otel.status_code\":\"OK\"}},"
        "{\"traceId\":\"01\",\"id\":\"06\",\"name\":\"f\",\"timestamp\":1,"
        "\"tags\":{\"otel.status_description\":\"no code\"}}]";
    decoded d;
    decode_ok(&d, body);
    assert_int_equal(d.n, 6);
    const clew_span_data *s = find_span(&d, "a");
    assert_int_equal(s->status_code, CLEW_STATUS_ERROR);
    assert_int_equal(s->status_message.len, 0);
    assert_false(has_attr(&s->attrs, "error")); /* "true" is dropped, as the Collector does */
    assert_attr_str(&s->attrs, "k", "v");
    s = find_span(&d, "b");
    assert_int_equal(s->status_code, CLEW_STATUS_ERROR);
    assert_str(s->status_message, "connection refused");
    assert_attr_str(&s->attrs, "error", "connection refused"); /* other values are kept */
    s = find_span(&d, "c");
    assert_int_equal(s->status_code, CLEW_STATUS_UNSET);
    assert_attr_str(&s->attrs, "error", "false");
    s = find_span(&d, "d");
    assert_int_equal(s->status_code, CLEW_STATUS_ERROR);
    assert_str(s->status_message, "bad");
    assert_int_equal(s->attrs.n, 0);
    s = find_span(&d, "e");
    assert_int_equal(s->status_code, CLEW_STATUS_OK);
    assert_int_equal(s->attrs.n, 0);
    s = find_span(&d, "f");
    assert_int_equal(s->status_code, CLEW_STATUS_UNSET);
    assert_attr_str(&s->attrs, "otel.status_description", "no code");
    done(&d);
}

static void kinds_and_special_tags(void **state)
{
    (void)state;
    static const char body[] =
        "[{\"traceId\":\"01\",\"id\":\"01\",\"name\":\"local\",\"timestamp\":1},"
        "{\"traceId\":\"01\",\"id\":\"02\",\"name\":\"internal\",\"timestamp\":1,"
        "\"tags\":{\"span.kind\":\"internal\"}},"
        "{\"traceId\":\"01\",\"id\":\"03\",\"name\":\"prod\",\"kind\":\"PRODUCER\",\"timestamp\":1,"
        "\"tags\":{\"span.kind\":\"producer\",\"w3c.tracestate\":\"a=1\","
        "\"otel.scope.name\":\"lib\",\"otel.scope.version\":\"2.0\",\"n\":42,\"b\":true}},"
        "{\"traceId\":\"01\",\"id\":\"04\",\"name\":\"cons\",\"kind\":\"CONSUMER\",\"timestamp\":1}"
        "]";
    decoded d;
    decode_ok(&d, body);
    assert_int_equal(find_span(&d, "local")->kind, CLEW_KIND_UNSPECIFIED);
    const clew_span_data *s = find_span(&d, "internal");
    assert_int_equal(s->kind, CLEW_KIND_INTERNAL);
    assert_int_equal(s->attrs.n, 0);
    s = find_span(&d, "prod");
    assert_int_equal(s->kind, CLEW_KIND_PRODUCER);
    assert_attr_str(&s->attrs, "span.kind", "producer"); /* only consumed without a kind */
    assert_str(s->trace_state, "a=1");
    assert_str(s->scope->name, "lib");
    assert_str(s->scope->version, "2.0");
    assert_false(has_attr(&s->attrs, "otel.scope.name"));
    assert_attr_str(&s->attrs, "n", "42"); /* unquoted values become their text */
    assert_attr_str(&s->attrs, "b", "true");
    assert_ptr_not_equal(s->scope, find_span(&d, "local")->scope);
    assert_int_equal(find_span(&d, "cons")->kind, CLEW_KIND_CONSUMER);
    /* 1-digit ids are left-padded */
    assert_hex_span(&find_span(&d, "cons")->span_id, "0000000000000004");
    assert_hex_trace(&s->trace_id, "00000000000000000000000000000001");
    done(&d);
}

static void invalid_spans_rejected_individually(void **state)
{
    (void)state;
    static const char body[] =
        "[{\"traceId\":\"0af7651916cd43dd\",\"id\":\"0000000000000001\",\"name\":\"good\","
        "\"timestamp\":10},"
        /* 1: trace id not hex */
        "{\"traceId\":\"0af7651916cd43zz\",\"id\":\"01\",\"name\":\"x\",\"timestamp\":10},"
        /* 2: trace id 33 digits */
        "{\"traceId\":\"0af7651916cd43dd8448eb211c80319c1\",\"id\":\"01\",\"timestamp\":10},"
        /* 3: trace id missing */
        "{\"id\":\"01\",\"name\":\"x\",\"timestamp\":10},"
        /* 4: trace id all zero */
        "{\"traceId\":\"00000000000000000000000000000000\",\"id\":\"01\",\"timestamp\":10},"
        /* 5: span id all zero */
        "{\"traceId\":\"0af7651916cd43dd\",\"id\":\"0000000000000000\",\"timestamp\":10},"
        /* 6: span id 17 digits */
        "{\"traceId\":\"0af7651916cd43dd\",\"id\":\"00000000000000001\",\"timestamp\":10},"
        /* 7: span id missing */
        "{\"traceId\":\"0af7651916cd43dd\",\"timestamp\":10},"
        /* 8: parent id not hex */
        "{\"traceId\":\"0af7651916cd43dd\",\"id\":\"02\",\"parentId\":\"xyz\",\"timestamp\":10},"
        /* 9: timestamp missing */
        "{\"traceId\":\"0af7651916cd43dd\",\"id\":\"03\",\"name\":\"x\"},"
        /* 10: negative duration */
        "{\"traceId\":\"0af7651916cd43dd\",\"id\":\"04\",\"timestamp\":10,\"duration\":-1},"
        /* 11: fine, no duration, empty parent */
        "{\"traceId\":\"0af7651916cd43dd\",\"id\":\"05\",\"parentId\":\"\",\"name\":\"nodur\","
        "\"timestamp\":10}]";
    decoded d;
    decode_ok(&d, body);
    assert_int_equal(d.batch.rejected, 10);
    assert_int_equal(d.n, 2);
    assert_non_null(strstr(d.batch.reject_reason.ptr, "span [1]"));
    assert_non_null(strstr(d.batch.reject_reason.ptr, "traceId"));
    const clew_span_data *s = find_span(&d, "nodur");
    assert_true(s->end_ns == s->start_ns);
    assert_true(s->start_ns == 10000);
    assert_true(clew__span_id_is_zero(&s->parent_span_id));
    done(&d);

    /* the first reason names the field */
    decode_ok(&d, "[{\"traceId\":\"01\",\"id\":\"01\"}]");
    assert_int_equal(d.batch.rejected, 1);
    assert_non_null(strstr(d.batch.reject_reason.ptr, "span [0]: timestamp is missing"));
    done(&d);
}

static void assert_eparse(const char *body, const char *want_msg)
{
    decoded d;
    decode_into(&d, body, 0);
    assert_int_equal(d.rc, CLEW_EPARSE);
    if (strstr(d.err.msg, want_msg) == NULL) {
        fail_msg("error \"%s\" does not contain \"%s\"", d.err.msg, want_msg);
    }
    done(&d);
}

static void malformed_input_fails_with_path(void **state)
{
    (void)state;
    assert_eparse("[{\"traceId\":", "JSON syntax error");
    assert_eparse("", "JSON syntax error");
    assert_eparse("{\"traceId\":\"01\"}", "(document): expected a JSON array");
    assert_eparse("[{\"traceId\":\"01\",\"id\":\"01\",\"timestamp\":1}, 7]",
                  "[1]: expected an object");
    assert_eparse("[{},{},{},{\"traceId\":\"01\",\"id\":\"01\",\"timestamp\":\"1\"}]",
                  "[3].timestamp: expected a number");
    assert_eparse("[{\"traceId\":1}]", "[0].traceId: expected a string");
    assert_eparse("[{\"duration\":1.5}]", "[0].duration: expected an integer");
    assert_eparse("[{\"localEndpoint\":{\"port\":\"80\"}}]",
                  "[0].localEndpoint.port: expected a number");
    assert_eparse("[{\"remoteEndpoint\":[]}]", "[0].remoteEndpoint: expected an object");
    assert_eparse("[{\"tags\":{\"k\":{}}}]", "[0].tags.k: expected a string");
    assert_eparse("[{\"tags\":[]}]", "[0].tags: expected an object");
    assert_eparse("[{\"annotations\":[{\"timestamp\":1,\"value\":2}]}]",
                  "[0].annotations[0].value: expected a string");
    assert_eparse("[{\"debug\":\"yes\"}]", "[0].debug: expected true or false");
    /* a type error fails the request even when the span's ids are also bad */
    assert_eparse("[{\"traceId\":\"zz\",\"kind\":5}]", "[0].kind: expected a string");
}

static void empty_array_and_memory_limit(void **state)
{
    (void)state;
    decoded d;
    decode_ok(&d, "[]");
    assert_int_equal(d.n, 0);
    assert_int_equal(d.batch.n_rs, 0);
    assert_int_equal(d.batch.rejected, 0);
    done(&d);

    char big[8192];
    size_t off = 0;
    off += (size_t)snprintf(big + off, sizeof(big) - off, "[");
    for (int i = 0; i < 40; i++) {
        off += (size_t)snprintf(big + off, sizeof(big) - off,
                                "%s{\"traceId\":\"01\",\"id\":\"%02x\",\"timestamp\":1,"
                                "\"name\":\"some span name\",\"tags\":{\"k\":\"value\"}}",
                                i ? "," : "", i + 1);
    }
    snprintf(big + off, sizeof(big) - off, "]");
    decode_into(&d, big, 2048);
    assert_int_equal(d.rc, CLEW_ETOOBIG);
    assert_non_null(strstr(d.err.msg, "memory limit"));
    done(&d);
    decode_ok(&d, big);
    assert_int_equal(d.n, 40);
    done(&d);
}

static void annotations_with_attributes(void **state)
{
    (void)state;
    static const char body[] =
        "[{\"traceId\":\"01\",\"id\":\"01\",\"name\":\"a\",\"timestamp\":5,\"annotations\":["
        "{\"timestamp\":6,\"value\":\"retry|{\\\"attempt\\\":2,\\\"ok\\\":false}|1\"},"
        "{\"timestamp\":7,\"value\":\"a|b\"},"
        "{\"value\":\"no time\"},"
        "{\"timestamp\":8,\"value\":\"x|{not json}|0\"}]}]";
    decoded d;
    decode_ok(&d, body);
    const clew_span_data *s = d.spans[0];
    assert_int_equal(s->n_events, 3);
    assert_int_equal(s->dropped_events, 1);
    assert_str(s->events[0].name, "retry");
    assert_int_equal(s->events[0].attrs.n, 2);
    assert_int_equal(s->events[0].attrs.dropped, 1);
    const clew_value *v = clew__attrs_get(&s->events[0].attrs, "attempt", 7);
    assert_non_null(v);
    assert_int_equal(v->type, CLEW_VALUE_INT);
    assert_int_equal(v->u.i, 2);
    assert_str(s->events[1].name, "a|b");
    assert_str(s->events[2].name, "x|{not json}|0");
    done(&d);
}

/* ---- encoding ---- */

static char *encode(const clew_span_data *const *spans, size_t n)
{
    clew_buf b;
    clew__buf_init(&b, 0);
    assert_int_equal(clew__zipkin_v2_encode(spans, n, &b), CLEW_OK);
    size_t len;
    char *s = clew__buf_take(&b, &len);
    assert_non_null(s);
    return s;
}

static void encode_wire_example_gives_it_back(void **state)
{
    (void)state;
    decoded a, b;
    decode_ok(&a, wire_example);
    char *json = encode(a.spans, a.n);
    /* endpoints are rebuilt from the attributes */
    assert_non_null(strstr(json, "\"traceId\":\"4d1e00c0db9010db86154a4ba6e91385\""));
    assert_non_null(strstr(
        json, "\"localEndpoint\":{\"serviceName\":\"frontend\",\"ipv6\":\"2001:db8::c001\"}"));
    assert_non_null(strstr(json, "\"remoteEndpoint\":{\"serviceName\":\"backend\","
                                 "\"ipv4\":\"192.168.99.101\",\"port\":9000}"));
    assert_non_null(strstr(json, "\"timestamp\":1472470996199000"));
    assert_non_null(strstr(json, "\"duration\":207000"));
    assert_non_null(strstr(json, "\"kind\":\"CLIENT\""));
    assert_null(strstr(json, "network.peer.address")); /* not repeated as a tag */
    decode_ok(&b, json);
    assert_int_equal(b.n, 1);
    assert_true(clew__span_equal(a.spans[0], b.spans[0]));
    clew__free(json);
    done(&a);
    done(&b);
}

static void encode_decode_round_trip(void **state)
{
    (void)state;
    static clew_kv res_attrs[1] = {
        {S("service.name"), {.type = CLEW_VALUE_STRING, .u.s = S("svc")}}};
    static clew_resource res = {.attrs = {res_attrs, 1, 0}};
    static clew_scope scope = {.name = S("my.lib"), .version = S("1.2")};
    static clew_kv attrs[3] = {
        {S("http.route"), {.type = CLEW_VALUE_STRING, .u.s = S("/u/\"q\"")}},
        {S("retries"), {.type = CLEW_VALUE_INT, .u.i = -42}},
        {S("cached"), {.type = CLEW_VALUE_BOOL, .u.b = true}},
    };
    static clew_kv ev_attrs[2] = {
        {S("ratio"), {.type = CLEW_VALUE_DOUBLE, .u.d = 0.5}},
        {S("who"), {.type = CLEW_VALUE_STRING, .u.s = S("me|you")}},
    };
    static clew_event_data events[2] = {
        {.time_ns = 1700000000000123999ull, .name = S("start")},
        {.time_ns = 1700000000000200000ull, .name = S("cache miss"), .attrs = {ev_attrs, 2, 0}},
    };
    static clew_link_data links[2] = {{.trace_state = S("k=v")}, {.trace_state = S("")}};
    clew_link_data *const link = &links[0];
    clew_span_data spans[3];
    memset(spans, 0, sizeof(spans));
    for (int i = 0; i < 3; i++) {
        clew_span_data *s = &spans[i];
        s->resource = &res;
        s->scope = &scope;
        s->span_id.bytes[7] = (uint8_t)(i + 1);
        s->span_id.bytes[0] = 0xab;
        s->trace_state = (clew_str){"", 0};
        s->status_message = (clew_str){"", 0};
    }
    /* 0: root, 128-bit trace id, server, events, link, error status */
    spans[0].trace_id.bytes[0] = 0x11;
    spans[0].trace_id.bytes[15] = 0x22;
    spans[0].name = S("GET /u");
    spans[0].kind = CLEW_KIND_SERVER;
    spans[0].start_ns = 1700000000000000999ull; /* sub-µs part is rounded down */
    spans[0].end_ns = 1700000000002500999ull;
    spans[0].attrs = (clew_attrs){attrs, 3, 0};
    spans[0].events = events;
    spans[0].n_events = 2;
    link->trace_id.bytes[3] = 7;
    link->span_id.bytes[5] = 9;
    links[1].trace_id.bytes[15] = 1;
    links[1].span_id.bytes[7] = 2;
    links[1].attrs = (clew_attrs){ev_attrs, 2, 3};
    spans[0].links = links;
    spans[0].n_links = 2;
    spans[0].status_code = CLEW_STATUS_ERROR;
    spans[0].status_message = S("it broke");
    spans[0].trace_state = S("vendor=x");
    /* 1: 64-bit trace id, internal, child of 0 */
    spans[1].trace_id.bytes[15] = 0xab;
    spans[1].name = S("work");
    spans[1].kind = CLEW_KIND_INTERNAL;
    spans[1].parent_span_id = spans[0].span_id;
    spans[1].start_ns = 1700000000001000000ull;
    spans[1].end_ns = 1700000000001000000ull;
    spans[1].status_code = CLEW_STATUS_OK;
    /* 2: producer, unspecified -> no kind */
    spans[2].trace_id.bytes[15] = 0xab;
    spans[2].name = S("send");
    spans[2].kind = CLEW_KIND_PRODUCER;
    spans[2].start_ns = 1700000000001000000ull;
    spans[2].end_ns = 1700000000001000100ull; /* 100 ns: shown as 1 µs */

    const clew_span_data *in[3] = {&spans[0], &spans[1], &spans[2]};
    char *json = encode(in, 3);
    assert_non_null(strstr(json, "\"traceId\":\"00000000000000ab\"")); /* 64-bit: 16 digits */
    assert_non_null(strstr(json, "\"traceId\":\"11000000000000000000000000000022\""));
    assert_non_null(strstr(json, "\"span.kind\":\"internal\""));
    assert_non_null(strstr(json, "\"retries\":\"-42\"")); /* non-strings as text */

    decoded d;
    decode_ok(&d, json);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.batch.rejected, 0);
    for (int i = 0; i < 3; i++) {
        const clew_span_data *o = &spans[i];
        const clew_span_data *r = find_span(&d, i == 0 ? "GET /u" : i == 1 ? "work" : "send");
        assert_memory_equal(r->trace_id.bytes, o->trace_id.bytes, 16);
        assert_memory_equal(r->span_id.bytes, o->span_id.bytes, 8);
        assert_memory_equal(r->parent_span_id.bytes, o->parent_span_id.bytes, 8);
        assert_int_equal(r->kind,
                         o->kind == CLEW_KIND_UNSPECIFIED ? CLEW_KIND_UNSPECIFIED : o->kind);
        assert_true(r->start_ns == o->start_ns / 1000 * 1000);
        assert_str(clew__resource_service(r->resource), "svc");
        assert_str(r->scope->name, "my.lib");
        assert_str(r->scope->version, "1.2");
        assert_int_equal(r->status_code, o->status_code);
    }
    const clew_span_data *r = find_span(&d, "GET /u");
    assert_true(r->end_ns - r->start_ns == 2500000ull);
    assert_str(r->status_message, "it broke");
    assert_str(r->trace_state, "vendor=x");
    assert_int_equal(r->attrs.n, 3);
    assert_attr_str(&r->attrs, "http.route", "/u/\"q\"");
    assert_attr_str(&r->attrs, "retries", "-42");
    assert_attr_str(&r->attrs, "cached", "true");
    assert_int_equal(r->n_events, 2);
    assert_true(r->events[0].time_ns == 1700000000000123000ull);
    assert_str(r->events[0].name, "start");
    assert_str(r->events[1].name, "cache miss");
    assert_true(clew__attrs_equal(&r->events[1].attrs, &events[1].attrs));
    assert_int_equal(r->n_links, 2);
    assert_memory_equal(r->links[0].trace_id.bytes, link->trace_id.bytes, 16);
    assert_memory_equal(r->links[0].span_id.bytes, link->span_id.bytes, 8);
    assert_str(r->links[0].trace_state, "k=v");
    assert_memory_equal(r->links[1].trace_id.bytes, links[1].trace_id.bytes, 16);
    assert_true(clew__attrs_equal(&r->links[1].attrs, &links[1].attrs));
    assert_false(has_attr(&r->attrs, "otlp.link.1"));
    r = find_span(&d, "work");
    assert_true(r->end_ns == r->start_ns);
    assert_int_equal(r->attrs.n, 0);
    r = find_span(&d, "send");
    assert_true(r->end_ns - r->start_ns == 1000);

    /* and once more: a second trip changes nothing */
    char *json2 = encode(d.spans, d.n);
    decoded d2;
    decode_ok(&d2, json2);
    for (size_t i = 0; i < d.n; i++) {
        assert_true(clew__span_equal(d.spans[i], d2.spans[i]));
    }
    clew__free(json);
    clew__free(json2);
    done(&d);
    done(&d2);
}

static void encode_respects_buffer_limit(void **state)
{
    (void)state;
    decoded d;
    decode_ok(&d, wire_example);
    clew_buf b;
    clew__buf_init(&b, 64);
    assert_int_equal(clew__zipkin_v2_encode(d.spans, d.n, &b), CLEW_ETOOBIG);
    assert_int_equal(b.len, 0);
    clew__buf_deinit(&b);
    clew__buf_init(&b, 0);
    assert_int_equal(clew__zipkin_v2_encode(NULL, 0, &b), CLEW_OK);
    assert_string_equal(b.data, "[]");
    clew__buf_deinit(&b);
    done(&d);
}

/* Spans built elsewhere (the SDK, the store) may hold {NULL, 0} strings and no
 * resource or scope; the encoder must take them as they are. */
static void encode_sparse_span(void **state)
{
    (void)state;
    static clew_kv attrs[3] = {
        {{NULL, 0}, {.type = CLEW_VALUE_STRING, .u.s = {NULL, 0}}},
        {S("network.peer.address"), {.type = CLEW_VALUE_STRING, .u.s = {NULL, 0}}},
        {S("network.peer.port"), {.type = CLEW_VALUE_STRING, .u.s = S("8080")}},
    };
    clew_span_data s;
    memset(&s, 0, sizeof(s));
    s.trace_id.bytes[15] = 3;
    s.span_id.bytes[7] = 4;
    s.start_ns = 5000;
    s.end_ns = 4000; /* end before start: no duration */
    s.attrs = (clew_attrs){attrs, 3, 0};
    s.status_code = CLEW_STATUS_ERROR;
    const clew_span_data *in[1] = {&s};
    char *json = encode(in, 1);
    assert_non_null(strstr(json, "\"serviceName\":\"unknown_service\""));
    assert_non_null(strstr(json, "\"remoteEndpoint\":{\"port\":8080}"));
    assert_null(strstr(json, "duration"));
    decoded d;
    decode_ok(&d, json);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.spans[0]->status_code, CLEW_STATUS_ERROR);
    assert_true(d.spans[0]->start_ns == 5000 && d.spans[0]->end_ns == 5000);
    assert_attr_str(&d.spans[0]->attrs, "network.peer.address", "");
    clew__free(json);
    done(&d);
}

/* ---- Zipkin v1 ---- */

static void decode_v1_ok(decoded *d, const char *json)
{
    memset(d, 0, sizeof(*d));
    clew__arena_init(&d->arena, 4096, 0);
    d->rc = clew__zipkin_v1_decode(json, strlen(json), &d->arena, &d->batch, &d->err);
    if (d->rc != CLEW_OK) {
        fail_msg("v1 decode failed: %d %s", d->rc, d->err.msg);
    }
    clew__batch_foreach(&d->batch, collect, d);
}

/* The v1 form of the wire.md example: one span id, client and server annotations. */
static void v1_rpc_span_splits_into_client_and_server(void **state)
{
    (void)state;
    static const char body[] =
        "[{\"traceId\":\"5af7183fb1d4cf5f\",\"id\":\"352bff9a74ca9ad2\","
        "\"parentId\":\"6b221d5bc9e6496c\",\"name\":\"get\",\"timestamp\":1000,\"duration\":500,"
        "\"annotations\":["
        "{\"timestamp\":1000,\"value\":\"cs\",\"endpoint\":{\"serviceName\":\"frontend\","
        "\"ipv4\":\"127.0.0.1\"}},"
        "{\"timestamp\":1100,\"value\":\"sr\",\"endpoint\":{\"serviceName\":\"backend\","
        "\"ipv4\":\"192.168.99.101\",\"port\":9000}},"
        "{\"timestamp\":1300,\"value\":\"ss\",\"endpoint\":{\"serviceName\":\"backend\"}},"
        "{\"timestamp\":1500,\"value\":\"cr\",\"endpoint\":{\"serviceName\":\"frontend\"}},"
        "{\"timestamp\":1200,\"value\":\"db-call\",\"endpoint\":{\"serviceName\":\"backend\"}}],"
        "\"binaryAnnotations\":["
        "{\"key\":\"http.path\",\"value\":\"/api\",\"endpoint\":{\"serviceName\":\"backend\"}},"
        "{\"key\":\"clnt/finagle.version\",\"value\":\"6.45.0\","
        "\"endpoint\":{\"serviceName\":\"frontend\"}},"
        "{\"key\":\"sa\",\"value\":true,\"endpoint\":{\"serviceName\":\"backend\","
        "\"ipv4\":\"192.168.99.101\",\"port\":9000}},"
        "{\"key\":\"ca\",\"value\":true,\"endpoint\":{\"serviceName\":\"frontend\","
        "\"ipv4\":\"127.0.0.1\"}}]}]";
    decoded d;
    decode_v1_ok(&d, body);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.batch.rejected, 0);
    const clew_span_data *cli = d.spans[0]->kind == CLEW_KIND_CLIENT ? d.spans[0] : d.spans[1];
    const clew_span_data *srv = d.spans[0]->kind == CLEW_KIND_SERVER ? d.spans[0] : d.spans[1];
    assert_int_equal(cli->kind, CLEW_KIND_CLIENT);
    assert_int_equal(srv->kind, CLEW_KIND_SERVER);
    assert_hex_span(&cli->span_id, "352bff9a74ca9ad2");
    assert_hex_span(&cli->parent_span_id, "6b221d5bc9e6496c");
    assert_str(clew__resource_service(cli->resource), "frontend");
    assert_true(cli->start_ns == 1000000 && cli->end_ns == 1500000);
    assert_attr_str(&cli->attrs, "clnt/finagle.version", "6.45.0");
    assert_attr_str(&cli->attrs, "service.peer.name", "backend");
    assert_attr_str(&cli->attrs, "network.peer.address", "192.168.99.101");
    assert_false(has_attr(&cli->attrs, "http.path"));
    /* the server half: shared, so its own id, child of the client half */
    assert_memory_not_equal(srv->span_id.bytes, cli->span_id.bytes, 8);
    assert_memory_equal(srv->parent_span_id.bytes, cli->span_id.bytes, 8);
    assert_str(clew__resource_service(srv->resource), "backend");
    assert_true(srv->start_ns == 1100000 && srv->end_ns == 1300000);
    assert_attr_str(&srv->attrs, "http.path", "/api");
    assert_attr_str(&srv->attrs, "network.local.address", "192.168.99.101");
    assert_attr_str(&srv->attrs, "network.peer.address", "127.0.0.1");
    assert_attr_str(&srv->attrs, "service.peer.name", "frontend");
    assert_int_equal(srv->n_events, 1);
    assert_str(srv->events[0].name, "db-call");
    assert_int_equal(cli->n_events, 0);

    /* the same request through v2 gives the same derived id */
    decoded v2;
    decode_ok(&v2, "[{\"traceId\":\"5af7183fb1d4cf5f\",\"id\":\"352bff9a74ca9ad2\","
                   "\"kind\":\"SERVER\",\"shared\":true,\"timestamp\":1100}]");
    assert_memory_equal(v2.spans[0]->span_id.bytes, srv->span_id.bytes, 8);
    done(&v2);
    done(&d);
}

static void v1_local_and_server_only_spans(void **state)
{
    (void)state;
    static const char body[] =
        "[{\"traceId\":\"01\",\"id\":\"02\",\"name\":\"compute\",\"timestamp\":5,\"duration\":3,"
        "\"binaryAnnotations\":[{\"key\":\"lc\",\"value\":\"worker\","
        "\"endpoint\":{\"serviceName\":\"batch\"}},{\"key\":\"n\",\"value\":7}]},"
        /* a server that joined the client's span: no v1 timestamp */
        "{\"traceId\":\"01\",\"id\":\"03\",\"name\":\"rpc\",\"annotations\":["
        "{\"timestamp\":10,\"value\":\"sr\",\"endpoint\":{\"serviceName\":\"s\"}},"
        "{\"timestamp\":15,\"value\":\"ss\",\"endpoint\":{\"serviceName\":\"s\"}}]},"
        /* traceIdHigh carries the upper 64 bits */
        "{\"traceIdHigh\":\"0af7651916cd43dd\",\"traceId\":\"8448eb211c80319c\",\"id\":\"04\","
        "\"name\":\"hi\",\"timestamp\":20,\"annotations\":[{\"timestamp\":20,\"value\":\"ms\","
        "\"endpoint\":{\"serviceName\":\"p\"}}]}]";
    decoded d;
    decode_v1_ok(&d, body);
    assert_int_equal(d.n, 3);
    const clew_span_data *s = find_span(&d, "compute");
    assert_int_equal(s->kind, CLEW_KIND_UNSPECIFIED);
    assert_str(clew__resource_service(s->resource), "batch");
    assert_attr_str(&s->attrs, "lc", "worker");
    assert_attr_str(&s->attrs, "n", "7");
    assert_true(s->end_ns - s->start_ns == 3000);
    s = find_span(&d, "rpc");
    assert_int_equal(s->kind, CLEW_KIND_SERVER);
    assert_hex_span(&s->parent_span_id, "0000000000000003");
    assert_memory_not_equal(s->span_id.bytes, s->parent_span_id.bytes, 8);
    assert_true(s->start_ns == 10000 && s->end_ns == 15000);
    s = find_span(&d, "hi");
    assert_int_equal(s->kind, CLEW_KIND_PRODUCER);
    assert_hex_trace(&s->trace_id, "0af7651916cd43dd8448eb211c80319c");
    done(&d);
}

static void v1_malformed_input_fails_with_path(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"{}", "(document): expected a JSON array"},
        {"[{\"annotations\":[{\"value\":\"cs\",\"endpoint\":{\"serviceName\":\"a\"}},"
         "{\"timestamp\":\"x\"}]}]",
         "[0].annotations[1].timestamp: expected a number"},
        {"[{\"binaryAnnotations\":[{\"key\":\"k\",\"value\":{}}]}]",
         "[0].binaryAnnotations[0].value: expected a string, number or boolean"},
        {"[{\"annotations\":[{\"value\":\"sr\",\"endpoint\":{\"port\":\"1\"}}]}]",
         "[0].annotations[0].endpoint.port: expected a number"},
        {"[{\"id\":5}]", "[0].id: expected a string"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        decoded d;
        memset(&d, 0, sizeof(d));
        clew__arena_init(&d.arena, 4096, 0);
        d.rc = clew__zipkin_v1_decode(bad[i][0], strlen(bad[i][0]), &d.arena, &d.batch, &d.err);
        assert_int_equal(d.rc, CLEW_EPARSE);
        if (strstr(d.err.msg, bad[i][1]) == NULL) {
            fail_msg("error \"%s\" does not contain \"%s\"", d.err.msg, bad[i][1]);
        }
        done(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wire_example_maps_field_by_field),
        cmocka_unit_test(py_zipkin_request),
        cmocka_unit_test(shared_span_pair_gets_distinct_ids),
        cmocka_unit_test(shared_span_resend_gets_same_id),
        cmocka_unit_test(error_tag_sets_status),
        cmocka_unit_test(kinds_and_special_tags),
        cmocka_unit_test(invalid_spans_rejected_individually),
        cmocka_unit_test(malformed_input_fails_with_path),
        cmocka_unit_test(empty_array_and_memory_limit),
        cmocka_unit_test(annotations_with_attributes),
        cmocka_unit_test(encode_wire_example_gives_it_back),
        cmocka_unit_test(encode_decode_round_trip),
        cmocka_unit_test(encode_respects_buffer_limit),
        cmocka_unit_test(encode_sparse_span),
        cmocka_unit_test(v1_rpc_span_splits_into_client_and_server),
        cmocka_unit_test(v1_local_and_server_only_spans),
        cmocka_unit_test(v1_malformed_input_fails_with_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
