/*
 * tests/unit/test_otlp_json.c - the OTLP/JSON codec: round trips over every value
 * type, the exact output mapping (hex ids, integer enums, 64-bit integers as
 * strings, doubles that read back bit-exact), protobuf <-> JSON cross round trips,
 * the lenient input forms proto3 JSON allows, wire.md's example, per-span
 * validation, and error messages that name the path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/otlp.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/hex.h"
#include "model/model.h"
#include "otlp_fixtures.h"

/* ---- helpers ---- */

static clew_status jdecode(const char *text, clew_arena *a, clew_batch *out, clew_error *err)
{
    return clew__otlp_json_decode(text, strlen(text), a, out, err);
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL) {
        fail_msg("expected output to contain [%s]; output:\n%s", needle, text);
    }
}

/* Decodes `text` and returns the single span (asserts there is exactly one). */
static const clew_span_data *one_span(const char *text, clew_arena *a, clew_batch *b)
{
    clew_error err = {{0}, 0};
    clew_status rc = jdecode(text, a, b, &err);
    if (rc != CLEW_OK) {
        fail_msg("decode failed (%d): %s", rc, err.msg);
    }
    assert_int_equal(b->n_spans, 1);
    for (size_t i = 0; i < b->n_rs; i++) {
        for (size_t j = 0; j < b->rs[i].n_scopes; j++) {
            if (b->rs[i].scopes[j].n_spans) {
                return &b->rs[i].scopes[j].spans[0];
            }
        }
    }
    return NULL;
}

#define ONE_SPAN_DOC(span_json)                                                                    \
    "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[" span_json "]}]}]}"
#define IDS "\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\""

/* ---- tests ---- */

static void json_round_trip_every_type(void **state)
{
    (void)state;
    clew_arena a, a2;
    clew__arena_init(&a, 4096, 0);
    clew__arena_init(&a2, 4096, 0);
    clew_batch b, d;
    build_rich_batch(&a, &b);
    clew_buf out;
    clew__buf_init(&out, 0);
    assert_int_equal(clew__otlp_json_encode(&b, &out), CLEW_OK);
    clew_error err = {{0}, 0};
    clew_status rc = clew__otlp_json_decode(out.data, out.len, &a2, &d, &err);
    if (rc != CLEW_OK) {
        fail_msg("%s\n%s", err.msg, out.data);
    }
    assert_true(clew__batch_equal(&b, &d));
    assert_int_equal(d.n_rs, 3);
    assert_int_equal(d.rs[1].n_scopes, 2);
    assert_non_null(d.rs[2].resource);
    /* strings are copies in the arena, not views into the JSON text */
    const clew_span_data *s0 = &d.rs[0].scopes[0].spans[0];
    assert_false(s0->name.ptr >= out.data && s0->name.ptr < out.data + out.len);
    /* and encoding again gives the same text */
    clew_buf again;
    clew__buf_init(&again, 0);
    assert_int_equal(clew__otlp_json_encode(&d, &again), CLEW_OK);
    assert_string_equal(again.data, out.data);
    clew__buf_deinit(&again);
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
    clew__arena_deinit(&a2);
}

static void json_output_mapping(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    build_rich_batch(&a, &b);
    clew_buf out;
    clew__buf_init(&out, 0);
    assert_int_equal(clew__otlp_json_encode(&b, &out), CLEW_OK);
    const char *t = out.data;
    assert_true(strncmp(t,
                        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                        "\"service.name\",\"value\":{\"stringValue\":\"frontend\"}}",
                        80) == 0);
    assert_contains(t, "\"droppedAttributesCount\":3}");
    assert_contains(t, "\"schemaUrl\":\"https://opentelemetry.io/schemas/1.24.0\"");
    assert_contains(t, "\"scope\":{\"name\":\"lib.http\",\"version\":\"1.2.3\"");
    /* ids: lowercase hex; the root span has no parentSpanId */
    assert_contains(t, "{\"traceId\":\"020910171e252c333a41484f565d646b\",\"spanId\":"
                       "\"0b121920272e353c\",\"traceState\":\"rojo=00f067aa0ba902b7,congo="
                       "t61rcWkgMzE\",\"flags\":769,\"name\":\"GET /api/users\",\"kind\":2,"
                       "\"startTimeUnixNano\":\"1544712660000000000\",\"endTimeUnixNano\":"
                       "\"1544712661000000000\",\"attributes\":[");
    assert_contains(t, "\"parentSpanId\":\"0b121920272e353c\"");
    /* 64-bit integers are strings, AnyValue members are kept at their defaults */
    assert_contains(t, "{\"key\":\"int.min\",\"value\":{\"intValue\":\"-9223372036854775808\"}}");
    assert_contains(t, "{\"key\":\"int.max\",\"value\":{\"intValue\":\"9223372036854775807\"}}");
    assert_contains(t, "{\"key\":\"int.0\",\"value\":{\"intValue\":\"0\"}}");
    assert_contains(t, "{\"key\":\"empty.str\",\"value\":{\"stringValue\":\"\"}}");
    assert_contains(t, "{\"key\":\"bool.f\",\"value\":{\"boolValue\":false}}");
    assert_contains(t, "{\"key\":\"empty\",\"value\":{}}");
    /* doubles: shortest exact form, specials as strings */
    assert_contains(t, "\"doubleValue\":3.141592653589793}");
    assert_contains(t, "\"doubleValue\":-0.0}");
    assert_contains(t, "\"doubleValue\":\"NaN\"}");
    assert_contains(t, "\"doubleValue\":\"-Infinity\"}");
    assert_contains(t, "\"doubleValue\":5e-324}");
    assert_contains(t, "\"doubleValue\":1.7976931348623157e+308}");
    assert_contains(t, "\"doubleValue\":1e+17}");
    assert_contains(t, "{\"key\":\"k1\",\"value\":{\"doubleValue\":2.5}}");
    /* bytes: base64; NUL inside a string: \u0000 */
    assert_contains(t, "\"bytesValue\":\"AAEA/3g=\"");
    assert_contains(t, "\"stringValue\":\"a\\u0000b\"");
    assert_contains(t, "\"stringValue\":\"hello w\xc3\xb6rld\"");
    /* nested values; an empty array has no "values" */
    assert_contains(t, "\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},{\"stringValue\":\"x\"},"
                       "{\"arrayValue\":{\"values\":[{\"boolValue\":true},{}]}},{\"kvlistValue\":"
                       "{\"values\":[{\"key\":\"k1\",\"value\":{\"doubleValue\":2.5}},{\"key\":"
                       "\"\",\"value\":{\"stringValue\":\"empty key\"}}]}},{\"arrayValue\":{}}]}");
    assert_contains(t, "\"events\":[{\"timeUnixNano\":\"1544712660500000000\",\"name\":"
                       "\"exception\",\"attributes\":[");
    assert_contains(t, "\"droppedAttributesCount\":2},{}],\"droppedEventsCount\":5,");
    assert_contains(t,
                    "\"links\":[{\"traceId\":\"2930373e454c535a61686f767d848b92\",\"spanId\":"
                    "\"333a41484f565d64\",\"traceState\":\"k=v\",\"attributes\":[{\"key\":\"k1\"");
    assert_contains(t, "\"droppedAttributesCount\":4,\"flags\":257}],\"droppedLinksCount\":6,"
                       "\"status\":{\"message\":\"boom\",\"code\":2}}");
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
}

/* protobuf -> JSON -> protobuf gives the same bytes; JSON -> protobuf -> JSON the same text. */
static void pb_json_cross_round_trip(void **state)
{
    (void)state;
    clew_arena a, a2, a3;
    clew__arena_init(&a, 4096, 0);
    clew__arena_init(&a2, 4096, 0);
    clew__arena_init(&a3, 4096, 0);
    clew_batch b, from_pb, from_json;
    build_rich_batch(&a, &b);
    clew_buf pb, json, pb2, json2;
    clew__buf_init(&pb, 0);
    clew__buf_init(&json, 0);
    clew__buf_init(&pb2, 0);
    clew__buf_init(&json2, 0);
    clew_error err = {{0}, 0};
    assert_int_equal(clew__otlp_pb_encode(&b, &pb), CLEW_OK);
    assert_int_equal(clew__otlp_pb_decode((const uint8_t *)pb.data, pb.len, &a2, &from_pb, &err),
                     CLEW_OK);
    assert_int_equal(clew__otlp_json_encode(&from_pb, &json), CLEW_OK);
    assert_int_equal(clew__otlp_json_decode(json.data, json.len, &a3, &from_json, &err), CLEW_OK);
    assert_true(clew__batch_equal(&from_pb, &from_json));
    assert_int_equal(clew__otlp_pb_encode(&from_json, &pb2), CLEW_OK);
    assert_int_equal(pb2.len, pb.len);
    assert_memory_equal(pb2.data, pb.data, pb.len);
    assert_int_equal(clew__otlp_json_encode(&from_json, &json2), CLEW_OK);
    assert_string_equal(json2.data, json.data);
    clew__buf_deinit(&pb);
    clew__buf_deinit(&json);
    clew__buf_deinit(&pb2);
    clew__buf_deinit(&json2);
    clew__arena_deinit(&a);
    clew__arena_deinit(&a2);
    clew__arena_deinit(&a3);
}

/* Every finite double (random bit patterns) reads back bit-exact. */
static void doubles_read_back_exactly(void **state)
{
    (void)state;
    enum { N = 4000 };
    clew_arena a, a2;
    clew__arena_init(&a, 4096, 0);
    clew__arena_init(&a2, 4096, 0);
    clew_batch b, d;
    build_rich_batch(&a, &b);
    clew_kv *kvs = clew__arena_calloc(&a, N, sizeof(clew_kv));
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t bits = x;
        if (i % 4 == 1) {
            bits &= 0x800fffffffffffffull; /* subnormals */
        } else if (i % 4 == 2) {
            bits = (uint64_t)(i * 977) | (i % 8 == 2 ? 0x8000000000000000ull : 0);
        }
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (isnan(v)) {
            v = (double)i / 3.0;
        } else if (i % 4 == 3) {
            v = (double)(x % 100000) / 1000.0; /* short decimals such as 12.345 */
        }
        kvs[i] = (clew_kv){S("d"), v_dbl(v)};
    }
    kvs[0].value.u.d = 12.345;
    clew_span_data *s = &b.rs[0].scopes[0].spans[1];
    s->attrs = (clew_attrs){kvs, N, 0};
    clew_buf out;
    clew__buf_init(&out, 0);
    assert_int_equal(clew__otlp_json_encode(&b, &out), CLEW_OK);
    clew_error err;
    assert_int_equal(clew__otlp_json_decode(out.data, out.len, &a2, &d, &err), CLEW_OK);
    const clew_span_data *ds = &d.rs[0].scopes[0].spans[1];
    assert_int_equal(ds->attrs.n, N);
    for (int i = 0; i < N; i++) {
        if (memcmp(&ds->attrs.items[i].value.u.d, &kvs[i].value.u.d, sizeof(double)) != 0) {
            fail_msg("double %d: %.17g came back as %.17g", i, kvs[i].value.u.d,
                     ds->attrs.items[i].value.u.d);
        }
    }
    assert_contains(out.data, "\"doubleValue\":12.345}"); /* not 12.345000000000001 */
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
    clew__arena_deinit(&a2);
}

static void wire_md_example_decodes(void **state)
{
    (void)state;
    /* examples/trace.json as quoted in wire.md 4.1, uppercase hex ids */
    static const char doc[] =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"my.service\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"my.library\","
        "\"version\":\"1.0.0\"},\"spans\":[{\"traceId\":\"5B8EFFF798038103D269B633813FC60C\","
        "\"spanId\":\"EEE19B7EC3C1B174\",\"parentSpanId\":\"EEE19B7EC3C1B173\",\"name\":\"I'm a "
        "server span\",\"startTimeUnixNano\":\"1544712660000000000\",\"endTimeUnixNano\":"
        "\"1544712661000000000\",\"kind\":2}]}]}]}";
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    const clew_span_data *s = one_span(doc, &a, &b);
    char hex[33];
    clew__trace_id_hex(&s->trace_id, hex);
    assert_string_equal(hex, "5b8efff798038103d269b633813fc60c");
    clew__span_id_hex(&s->span_id, hex);
    assert_string_equal(hex, "eee19b7ec3c1b174");
    clew__span_id_hex(&s->parent_span_id, hex);
    assert_string_equal(hex, "eee19b7ec3c1b173");
    assert_string_equal(s->name.ptr, "I'm a server span");
    assert_true(s->start_ns == 1544712660000000000ull);
    assert_true(s->end_ns == 1544712661000000000ull);
    assert_int_equal(s->kind, CLEW_KIND_SERVER);
    clew_str svc = clew__resource_service(s->resource);
    assert_int_equal(svc.len, 10);
    assert_memory_equal(svc.ptr, "my.service", 10);
    assert_string_equal(s->scope->name.ptr, "my.library");
    assert_string_equal(s->scope->version.ptr, "1.0.0");
    assert_int_equal(b.rejected, 0);
    clew__arena_deinit(&a);
}

/* The forms proto3 JSON and real exporters use besides our own output. */
static void lenient_input_forms(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    const clew_span_data *s = one_span(
        ONE_SPAN_DOC("{\"trace_id\":\"0102030405060708090A0B0C0D0E0F10\",\"span_id\":"
                     "\"0102030405060708\",\"parent_span_id\":\"\",\"kind\":\"SPAN_KIND_PRODUCER\","
                     "\"start_time_unix_nano\":1544712660000000000,\"endTimeUnixNano\":"
                     "\"18446744073709551615\",\"flags\":\"257\",\"droppedAttributesCount\":0,"
                     "\"unknownKey\":{\"deep\":[1,2,{}]},\"name\":null,"
                     "\"status\":{\"code\":\"STATUS_CODE_ERROR\",\"message\":\"m\"},"
                     "\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":201}},"
                     "{\"key\":\"s\",\"value\":{\"int_value\":\"-7\"}},"
                     "{\"key\":\"d1\",\"value\":{\"doubleValue\":3}},"
                     "{\"key\":\"d2\",\"value\":{\"doubleValue\":\"Infinity\"}},"
                     "{\"key\":\"d3\",\"value\":{\"doubleValue\":\"1.25\"}},"
                     "{\"key\":\"d4\",\"value\":{\"doubleValue\":\"NaN\"}},"
                     "{\"key\":\"b64\",\"value\":{\"bytesValue\":\"_-8\"}},"
                     "{\"key\":\"n\",\"value\":null},{\"value\":{\"stringValue\":\"no key\"}},"
                     "{\"key\":\"kv\",\"value\":{\"kvlist_value\":{\"values\":[]}}}],"
                     "\"events\":[{\"time_unix_nano\":\"5\",\"name\":\"e\"}],"
                     "\"links\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":"
                     "\"0102030405060708\",\"flags\":1}]}"),
        &a, &b);
    assert_int_equal(s->kind, CLEW_KIND_PRODUCER);
    assert_true(s->start_ns == 1544712660000000000ull);
    assert_true(s->end_ns == UINT64_MAX);
    assert_int_equal(s->flags, 257);
    assert_int_equal(s->name.len, 0);
    assert_non_null(s->name.ptr);
    assert_true(clew__span_id_is_zero(&s->parent_span_id));
    assert_int_equal(s->status_code, CLEW_STATUS_ERROR);
    assert_int_equal(s->attrs.n, 10);
    assert_true(s->attrs.items[0].value.u.i == 201);
    assert_true(s->attrs.items[1].value.u.i == -7);
    assert_true(s->attrs.items[2].value.type == CLEW_VALUE_DOUBLE &&
                s->attrs.items[2].value.u.d == 3.0);
    assert_true(isinf(s->attrs.items[3].value.u.d) && s->attrs.items[3].value.u.d > 0);
    assert_true(s->attrs.items[4].value.u.d == 1.25);
    assert_true(isnan(s->attrs.items[5].value.u.d));
    assert_int_equal(s->attrs.items[6].value.type, CLEW_VALUE_BYTES);
    assert_int_equal(s->attrs.items[6].value.u.s.len, 2);
    assert_memory_equal(s->attrs.items[6].value.u.s.ptr, "\xff\xef", 2);
    assert_int_equal(s->attrs.items[7].value.type, CLEW_VALUE_EMPTY);
    assert_int_equal(s->attrs.items[8].key.len, 0);
    assert_int_equal(s->attrs.items[9].value.type, CLEW_VALUE_KVLIST);
    assert_int_equal(s->attrs.items[9].value.u.kvlist.n, 0);
    assert_true(s->events[0].time_ns == 5);
    assert_int_equal(s->n_links, 1);
    assert_int_equal(s->links[0].flags, 1);

    /* an empty document and an empty list are fine */
    clew_error err;
    assert_int_equal(jdecode("{}", &a, &b, &err), CLEW_OK);
    assert_int_equal(b.n_rs, 0);
    assert_int_equal(jdecode("{\"resourceSpans\":[{},{\"scopeSpans\":[{}]}]}", &a, &b, &err),
                     CLEW_OK);
    assert_int_equal(b.n_rs, 2);
    assert_int_equal(b.n_spans, 0);
    assert_non_null(b.rs[1].scopes[0].scope);
    clew__arena_deinit(&a);
}

static void wrong_types_name_the_path(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        const char *msg;
    } cases[] = {
        {"[]", "(document): expected an object"},
        {"{\"resourceSpans\":5}", "resourceSpans: expected an array"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{},{\"spans\":[{},{},{\"name\":5}]}]}]}",
         "resourceSpans[0].scopeSpans[1].spans[2].name: expected a string"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":5}]}]}",
         "resourceSpans[0].scopeSpans[0].spans: expected an array"},
        {ONE_SPAN_DOC("{" IDS ",\"kind\":\"SERVER\"}"),
         "resourceSpans[0].scopeSpans[0].spans[0].kind: unknown enum name"},
        {ONE_SPAN_DOC("{" IDS ",\"startTimeUnixNano\":\"12x\"}"),
         "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected a decimal integer "
         "string"},
        {ONE_SPAN_DOC("{" IDS ",\"startTimeUnixNano\":-1}"),
         "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: must not be negative"},
        {ONE_SPAN_DOC("{" IDS ",\"startTimeUnixNano\":\"18446744073709551616\"}"),
         "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected a decimal integer "
         "string"},
        {ONE_SPAN_DOC("{" IDS ",\"flags\":4294967296}"),
         "resourceSpans[0].scopeSpans[0].spans[0].flags: out of range for a 32-bit unsigned "
         "integer"},
        {ONE_SPAN_DOC("{" IDS ",\"traceId\":12}"),
         "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected a hex string"},
        {ONE_SPAN_DOC("{" IDS ",\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":"
                      "\"9223372036854775808\"}}]}"),
         "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue: out of range "
         "for a 64-bit integer"},
        {ONE_SPAN_DOC("{" IDS ",\"attributes\":[{\"key\":\"k\",\"value\":{\"arrayValue\":"
                      "{\"values\":[{\"boolValue\":1}]}}}]}"),
         "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.arrayValue.values[0]."
         "boolValue: expected true or false"},
        {ONE_SPAN_DOC("{" IDS ",\"attributes\":[{\"key\":\"k\",\"value\":{\"bytesValue\":"
                      "\"a*==\"}}]}"),
         "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.bytesValue: invalid "
         "base64 character"},
        {ONE_SPAN_DOC("{" IDS ",\"attributes\":[{\"key\":\"k\",\"value\":{\"doubleValue\":"
                      "\"inf\"}}]}"),
         "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.doubleValue: expected a "
         "number, \"NaN\", \"Infinity\" or \"-Infinity\""},
        {ONE_SPAN_DOC("{" IDS ",\"events\":[{\"timeUnixNano\":1.5}]}"),
         "resourceSpans[0].scopeSpans[0].spans[0].events[0].timeUnixNano: expected an integer"},
        {ONE_SPAN_DOC("{" IDS ",\"status\":[]}"),
         "resourceSpans[0].scopeSpans[0].spans[0].status: expected an object"},
        {"{\"resourceSpans\":[{\"resource\":{\"attributes\":{}}}]}",
         "resourceSpans[0].resource.attributes: expected an array"},
    };
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clew_batch b;
        clew_error err = {{0}, 0};
        clew_status rc = jdecode(cases[i].doc, &a, &b, &err);
        if (rc != CLEW_EPARSE || strcmp(err.msg, cases[i].msg) != 0) {
            fail_msg("case %zu: rc %d, message [%s], wanted [%s]", i, rc, err.msg, cases[i].msg);
        }
    }
    clew__arena_deinit(&a);
}

static void syntax_errors_say_where(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    clew_error err;
    assert_int_equal(jdecode("{\"resourceSpans\":\n [ }", &a, &b, &err), CLEW_EPARSE);
    assert_contains(err.msg, "JSON syntax error at line 2, column 4");
    assert_int_equal(jdecode("", &a, &b, &err), CLEW_EPARSE);
    assert_int_equal(jdecode("{} trailing", &a, &b, &err), CLEW_EPARSE);
    assert_int_equal(clew__otlp_json_decode(NULL, 0, &a, &b, &err), CLEW_EPARSE);
    /* deeper than jansson's limit: refused, not a stack overflow */
    size_t n = 100000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    assert_int_equal(jdecode(deep, &a, &b, &err), CLEW_EPARSE);
    free(deep);
    clew__arena_deinit(&a);
}

static void invalid_ids_rejected_individually(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"0102\",\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0fXX\",\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"01020304050607\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0000000000000000\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\","
        "\"parentSpanId\":\"01\"},"
        "{\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\","
        "\"parentSpanId\":\"0000000000000000\",\"name\":\"kept root\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060709\","
        "\"parentSpanId\":\"0102030405060708\",\"name\":\"kept child\",\"droppedLinksCount\":1,"
        "\"links\":[{\"traceId\":\"01\",\"spanId\":\"0102030405060708\"},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\"}]}"
        "]}]}]}";
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    clew_error err;
    assert_int_equal(jdecode(doc, &a, &b, &err), CLEW_OK);
    assert_int_equal(b.rejected, 7);
    assert_int_equal(b.n_spans, 2);
    assert_string_equal(b.reject_reason.ptr,
                        "span 0 of scope 0 of resource 0: trace_id must be 32 hex digits");
    const clew_span_data *s = &b.rs[0].scopes[0].spans[0];
    assert_string_equal(s->name.ptr, "kept root");
    assert_true(clew__span_id_is_zero(&s->parent_span_id));
    s = &b.rs[0].scopes[0].spans[1];
    assert_string_equal(s->name.ptr, "kept child");
    assert_int_equal(s->n_links, 1);
    assert_int_equal(s->dropped_links, 2);
    clew__arena_deinit(&a);
}

/* AnyValue nesting: 64 levels decode, 65 are refused. */
static void nesting_limit(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    for (int depth = 63; depth <= 65; depth++) {
        clew_buf doc;
        clew__buf_init(&doc, 0);
        assert_int_equal(clew__buf_puts(&doc,
                                        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{" IDS
                                        ",\"attributes\":[{\"key\":\"k\",\"value\":"),
                         CLEW_OK);
        for (int i = 1; i < depth; i++) {
            assert_int_equal(clew__buf_puts(&doc, "{\"arrayValue\":{\"values\":["), CLEW_OK);
        }
        assert_int_equal(clew__buf_puts(&doc, "{\"intValue\":1}"), CLEW_OK);
        for (int i = 1; i < depth; i++) {
            assert_int_equal(clew__buf_puts(&doc, "]}}"), CLEW_OK);
        }
        assert_int_equal(clew__buf_puts(&doc, "}]}]}]}]}"), CLEW_OK);
        clew_batch b;
        clew_error err = {{0}, 0};
        clew_status rc = jdecode(doc.data, &a, &b, &err);
        if (depth <= 64) {
            if (rc != CLEW_OK) {
                fail_msg("depth %d: %s", depth, err.msg);
            }
        } else {
            assert_int_equal(rc, CLEW_EPARSE);
            assert_contains(err.msg, "nested more than 64 deep");
        }
        clew__buf_deinit(&doc);
    }
    clew__arena_deinit(&a);

    /* an arena limit gives ETOOBIG */
    clew_arena small, big;
    clew__arena_init(&small, 1024, 2048);
    clew__arena_init(&big, 4096, 0);
    clew_batch b, d;
    build_rich_batch(&big, &b);
    clew_buf out;
    clew__buf_init(&out, 0);
    assert_int_equal(clew__otlp_json_encode(&b, &out), CLEW_OK);
    clew_error err;
    assert_int_equal(clew__otlp_json_decode(out.data, out.len, &small, &d, &err), CLEW_ETOOBIG);
    /* a bounded output buffer gives ETOOBIG */
    clew_buf tiny;
    clew__buf_init(&tiny, 200);
    assert_int_equal(clew__otlp_json_encode(&b, &tiny), CLEW_ETOOBIG);
    clew__buf_deinit(&tiny);
    clew__buf_deinit(&out);
    clew__arena_deinit(&small);
    clew__arena_deinit(&big);
}

static void invalid_utf8_becomes_replacement_char(void **state)
{
    (void)state;
    clew_arena a, a2;
    clew__arena_init(&a, 4096, 0);
    clew__arena_init(&a2, 4096, 0);
    clew_batch b, d;
    build_rich_batch(&a, &b);
    b.rs[0].scopes[0].spans[0].name = S("bad \xff\xfe utf8 \xc3");
    clew_buf out;
    clew__buf_init(&out, 0);
    assert_int_equal(clew__otlp_json_encode(&b, &out), CLEW_OK);
    clew_error err;
    assert_int_equal(clew__otlp_json_decode(out.data, out.len, &a2, &d, &err), CLEW_OK);
    assert_string_equal(d.rs[0].scopes[0].spans[0].name.ptr,
                        "bad \xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd");
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
    clew__arena_deinit(&a2);
}

static void json_responses(void **state)
{
    (void)state;
    clew_buf out;
    clew__buf_init(&out, 0);
    assert_int_equal(clew__otlp_json_encode_response(0, S(""), &out), CLEW_OK);
    assert_string_equal(out.data, "{}");
    clew__buf_reset(&out);
    assert_int_equal(clew__otlp_json_encode_response(3, S("bad \"ids\""), &out), CLEW_OK);
    assert_string_equal(out.data,
                        "{\"partialSuccess\":{\"rejectedSpans\":\"3\",\"errorMessage\":\"bad "
                        "\\\"ids\\\"\"}}");
    clew__buf_reset(&out);
    assert_int_equal(clew__otlp_json_encode_response(0, S("warning"), &out), CLEW_OK);
    assert_string_equal(out.data, "{\"partialSuccess\":{\"errorMessage\":\"warning\"}}");
    clew__buf_reset(&out);
    assert_int_equal(clew__rpc_status_json_encode(3, S("bad request"), &out), CLEW_OK);
    assert_string_equal(out.data, "{\"code\":3,\"message\":\"bad request\"}");
    clew__buf_deinit(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_round_trip_every_type),
        cmocka_unit_test(json_output_mapping),
        cmocka_unit_test(pb_json_cross_round_trip),
        cmocka_unit_test(doubles_read_back_exactly),
        cmocka_unit_test(wire_md_example_decodes),
        cmocka_unit_test(lenient_input_forms),
        cmocka_unit_test(wrong_types_name_the_path),
        cmocka_unit_test(syntax_errors_say_where),
        cmocka_unit_test(invalid_ids_rejected_individually),
        cmocka_unit_test(nesting_limit),
        cmocka_unit_test(invalid_utf8_becomes_replacement_char),
        cmocka_unit_test(json_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
