/*
 * tests/unit/test_otlp_pb.c - the OTLP protobuf codec: round trips over every value
 * type, hand-assembled wire bytes (wire.md section 4 tags), per-span validation,
 * truncation at every offset, unknown fields of every wire type, limits, and
 * independent checks with Debian's protoc (--decode_raw, --decode, --encode)
 * against src/codec/otlp.proto.
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
#include <unistd.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/hex.h"
#include "model/model.h"
#include "otlp_fixtures.h"

/* ---- hand assembly of protobuf bytes ---- */

static void pb_varint(clew_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        assert_int_equal(clew__buf_putc(b, (char)(v | 0x80)), CLEW_OK);
        v >>= 7;
    }
    assert_int_equal(clew__buf_putc(b, (char)v), CLEW_OK);
}

static void pb_tag(clew_buf *b, uint32_t num, uint32_t wt)
{
    pb_varint(b, (uint64_t)num << 3 | wt);
}

static void pb_bytes(clew_buf *b, uint32_t num, const void *p, size_t n)
{
    pb_tag(b, num, 2);
    pb_varint(b, n);
    assert_int_equal(clew__buf_append(b, p, n), CLEW_OK);
}

/* Appends `inner` as field num and resets inner. */
static void pb_msg(clew_buf *b, uint32_t num, clew_buf *inner)
{
    pb_bytes(b, num, inner->data ? inner->data : "", inner->len);
    clew__buf_reset(inner);
}

static void pb_fixed(clew_buf *b, uint32_t num, uint64_t v, int n)
{
    pb_tag(b, num, n == 8 ? 1 : 5);
    for (int i = 0; i < n; i++) {
        assert_int_equal(clew__buf_putc(b, (char)(v >> (8 * i))), CLEW_OK);
    }
}

static void pb_uint(clew_buf *b, uint32_t num, uint64_t v)
{
    pb_tag(b, num, 0);
    pb_varint(b, v);
}

/* ---- helpers ---- */

static clew_status decode(const clew_buf *in, clew_arena *a, clew_batch *out, clew_error *err)
{
    return clew__otlp_pb_decode((const uint8_t *)in->data, in->len, a, out, err);
}

static void encode_ok(const clew_batch *b, clew_buf *out)
{
    assert_int_equal(clew__otlp_pb_encode(b, out), CLEW_OK);
}

/* ---- tests ---- */

static void round_trip_every_type(void **state)
{
    (void)state;
    clew_arena a, a2;
    clew__arena_init(&a, 4096, 0);
    clew__arena_init(&a2, 4096, 0);
    clew_batch b, d;
    build_rich_batch(&a, &b);
    clew_buf out;
    clew__buf_init(&out, 0);
    encode_ok(&b, &out);
    clew_error err = {{0}, 0};
    assert_int_equal(decode(&out, &a2, &d, &err), CLEW_OK);
    assert_true(clew__batch_equal(&b, &d));
    assert_int_equal(d.n_rs, 3);
    assert_int_equal(d.rs[0].n_scopes, 2);
    assert_int_equal(d.rs[1].n_scopes, 2);
    assert_int_equal(d.rs[1].scopes[1].n_spans, 0);
    assert_int_equal(d.rs[2].n_scopes, 0);
    /* empty resource/scope still give objects, never NULL */
    assert_non_null(d.rs[2].resource);
    assert_non_null(d.rs[1].scopes[0].spans[0].scope);
    assert_int_equal(d.rs[1].scopes[0].spans[0].scope->name.len, 0);
    /* zero copy: string views point into the input buffer */
    const clew_span_data *s0 = &d.rs[0].scopes[0].spans[0];
    assert_true(s0->name.ptr >= out.data && s0->name.ptr < out.data + out.len);
    assert_memory_equal(s0->name.ptr, "GET /api/users", 14);
    const clew_value *v = clew__attrs_get(&s0->attrs, "int.min", 7);
    assert_non_null(v);
    assert_int_equal(v->type, CLEW_VALUE_INT);
    assert_true(v->u.i == INT64_MIN);
    v = clew__attrs_get(&s0->attrs, "dbl.negzero", 11);
    assert_true(v->type == CLEW_VALUE_DOUBLE && v->u.d == 0 && signbit(v->u.d));
    v = clew__attrs_get(&s0->attrs, "empty", 5);
    assert_int_equal(v->type, CLEW_VALUE_EMPTY);
    v = clew__attrs_get(&s0->attrs, "bytes", 5);
    assert_int_equal(v->type, CLEW_VALUE_BYTES);
    assert_int_equal(v->u.s.len, 5);
    assert_memory_equal(v->u.s.ptr, "\0\1\0\xffx", 5);
    assert_int_equal(s0->flags, 0x301);
    assert_int_equal(s0->dropped_links, 6);
    assert_int_equal(s0->links[0].flags, 0x101);

    /* encoding the decoded batch gives the very same bytes */
    clew_buf again;
    clew__buf_init(&again, 0);
    encode_ok(&d, &again);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);

    clew__buf_deinit(&again);
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
    clew__arena_deinit(&a2);
}

static void empty_request(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch empty = {NULL, 0, 0, 0, S("")}, d;
    clew_buf out;
    clew__buf_init(&out, 0);
    encode_ok(&empty, &out);
    assert_int_equal(out.len, 0);
    clew_error err;
    assert_int_equal(clew__otlp_pb_decode((const uint8_t *)"", 0, &a, &d, &err), CLEW_OK);
    assert_int_equal(d.n_rs, 0);
    assert_int_equal(d.n_spans, 0);
    assert_int_equal(clew__otlp_pb_decode(NULL, 0, &a, &d, &err), CLEW_OK);
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
}

/* A Span assembled byte by byte from wire.md's tag column. */
static void hand_assembled_span(void **state)
{
    (void)state;
    static const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                    0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    static const uint8_t sid[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
    uint8_t span[128];
    size_t n = 0;
    span[n++] = 0x0A; /* trace_id */
    span[n++] = 16;
    memcpy(span + n, tid, 16);
    n += 16;
    span[n++] = 0x12; /* span_id */
    span[n++] = 8;
    memcpy(span + n, sid, 8);
    n += 8;
    span[n++] = 0x2A; /* name */
    span[n++] = 3;
    memcpy(span + n, "abc", 3);
    n += 3;
    span[n++] = 0x30; /* kind = SERVER */
    span[n++] = 2;
    span[n++] = 0x39; /* start_time_unix_nano fixed64 */
    for (int i = 0; i < 8; i++) {
        span[n++] = (uint8_t)(1544712660000000000ull >> (8 * i));
    }
    span[n++] = 0x85; /* flags: field 16, fixed32 */
    span[n++] = 0x01;
    span[n++] = 0x01;
    span[n++] = 0x03;
    span[n++] = 0x00;
    span[n++] = 0x00;
    span[n++] = 0x60; /* dropped_events_count */
    span[n++] = 9;
    span[n++] = 0x7A; /* status */
    span[n++] = 2;
    span[n++] = 0x18; /* code = ERROR */
    span[n++] = 2;
    uint8_t req[160];
    size_t m = 0;
    req[m++] = 0x0A; /* resource_spans */
    req[m++] = (uint8_t)(n + 4);
    req[m++] = 0x12; /* scope_spans */
    req[m++] = (uint8_t)(n + 2);
    req[m++] = 0x12; /* spans */
    req[m++] = (uint8_t)n;
    memcpy(req + m, span, n);
    m += n;

    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch d;
    clew_error err = {{0}, 0};
    assert_int_equal(clew__otlp_pb_decode(req, m, &a, &d, &err), CLEW_OK);
    assert_int_equal(d.n_spans, 1);
    const clew_span_data *s = &d.rs[0].scopes[0].spans[0];
    assert_memory_equal(s->trace_id.bytes, tid, 16);
    assert_memory_equal(s->span_id.bytes, sid, 8);
    assert_true(clew__span_id_is_zero(&s->parent_span_id));
    assert_int_equal(s->name.len, 3);
    assert_int_equal(s->kind, CLEW_KIND_SERVER);
    assert_true(s->start_ns == 1544712660000000000ull);
    assert_int_equal(s->flags, 0x301);
    assert_int_equal(s->dropped_events, 9);
    assert_int_equal(s->status_code, CLEW_STATUS_ERROR);
    assert_non_null(s->resource);
    assert_non_null(s->scope);

    /* and our encoder writes these same tags */
    clew_buf out;
    clew__buf_init(&out, 0);
    encode_ok(&d, &out);
    const uint8_t *o = (const uint8_t *)out.data;
    assert_int_equal(o[0], 0x0A);
    bool saw_flags = false;
    for (size_t i = 0; i + 5 < out.len; i++) {
        if (o[i] == 0x85 && o[i + 1] == 0x01 && o[i + 2] == 0x01 && o[i + 3] == 0x03) {
            saw_flags = true;
        }
    }
    assert_true(saw_flags);
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
}

/* One span message with the given ids (NULL = field absent). */
static void add_span(clew_buf *scope, const void *tid, size_t tl, const void *sid, size_t sl,
                     const void *pid, size_t pl, const char *name)
{
    clew_buf sp;
    clew__buf_init(&sp, 0);
    if (tid) {
        pb_bytes(&sp, 1, tid, tl);
    }
    if (sid) {
        pb_bytes(&sp, 2, sid, sl);
    }
    if (pid) {
        pb_bytes(&sp, 4, pid, pl);
    }
    pb_bytes(&sp, 5, name, strlen(name));
    pb_msg(scope, 2, &sp);
    clew__buf_deinit(&sp);
}

static void invalid_spans_rejected_individually(void **state)
{
    (void)state;
    static const uint8_t t16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t z16[16] = {0};
    static const uint8_t s8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t z8[8] = {0};
    clew_buf scope, rs, req;
    clew__buf_init(&scope, 0);
    clew__buf_init(&rs, 0);
    clew__buf_init(&req, 0);
    add_span(&scope, t16, 5, s8, 8, NULL, 0, "short trace id"); /* 0 */
    add_span(&scope, z16, 16, s8, 8, NULL, 0, "zero trace id"); /* 1 */
    add_span(&scope, t16, 16, s8, 4, NULL, 0, "short span id"); /* 2 */
    add_span(&scope, t16, 16, z8, 8, NULL, 0, "zero span id");  /* 3 */
    add_span(&scope, t16, 16, s8, 8, s8, 3, "bad parent");      /* 4 */
    add_span(&scope, t16, 16, s8, 8, z8, 8, "root by zeros");   /* 5 kept */
    add_span(&scope, t16, 16, s8, 8, s8, 8, "child");           /* 6 kept */
    add_span(&scope, NULL, 0, s8, 8, NULL, 0, "no trace id");   /* 7 */
    pb_msg(&rs, 2, &scope);
    pb_msg(&req, 1, &rs);

    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch d;
    clew_error err;
    assert_int_equal(decode(&req, &a, &d, &err), CLEW_OK);
    assert_int_equal(d.rejected, 6);
    assert_int_equal(d.n_spans, 2);
    assert_int_equal(d.rs[0].scopes[0].n_spans, 2);
    assert_memory_equal(d.rs[0].scopes[0].spans[0].name.ptr, "root by zeros", 13);
    assert_true(clew__span_id_is_zero(&d.rs[0].scopes[0].spans[0].parent_span_id));
    assert_memory_equal(d.rs[0].scopes[0].spans[1].parent_span_id.bytes, s8, 8);
    assert_string_equal(d.reject_reason.ptr,
                        "span 0 of scope 0 of resource 0: trace_id must be 16 bytes, got 5");

    /* the second resource's third span: positions in the message */
    clew__buf_reset(&req);
    add_span(&scope, t16, 16, s8, 8, NULL, 0, "ok");
    pb_msg(&rs, 2, &scope);
    pb_msg(&req, 1, &rs);
    add_span(&scope, t16, 16, s8, 8, NULL, 0, "ok");
    add_span(&scope, t16, 16, s8, 8, NULL, 0, "ok");
    add_span(&scope, t16, 16, t16, 9, NULL, 0, "bad");
    pb_msg(&rs, 2, &scope);
    pb_msg(&req, 1, &rs);
    assert_int_equal(decode(&req, &a, &d, &err), CLEW_OK);
    assert_int_equal(d.rejected, 1);
    assert_int_equal(d.n_spans, 3);
    assert_string_equal(d.reject_reason.ptr,
                        "span 2 of scope 0 of resource 1: span_id must be 8 bytes, got 9");

    clew__buf_deinit(&scope);
    clew__buf_deinit(&rs);
    clew__buf_deinit(&req);
    clew__arena_deinit(&a);
}

static void truncated_at_every_offset(void **state)
{
    (void)state;
    clew_arena a, a2;
    clew__arena_init(&a, 4096, 0);
    clew__arena_init(&a2, 4096, 0);
    clew_batch b, d;
    build_rich_batch(&a, &b);
    clew_buf out;
    clew__buf_init(&out, 0);
    encode_ok(&b, &out);
    size_t ok = 0, bad = 0;
    for (size_t len = 0; len < out.len; len++) {
        /* a heap copy of exactly len bytes, so ASan sees any read past the end */
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, out.data, len);
        clew_error err = {{0}, 0};
        clew_status rc = clew__otlp_pb_decode(copy, len, &a2, &d, &err);
        if (rc == CLEW_OK) {
            ok++;
            assert_true(d.n_spans <= b.n_spans);
        } else {
            assert_int_equal(rc, CLEW_EPARSE);
            assert_true(err.msg[0] != '\0');
            assert_true(err.offset <= len);
            bad++;
        }
        free(copy);
        clew__arena_reset(&a2);
    }
    /* most prefixes cut a length-delimited field short */
    assert_true(bad > out.len / 2);
    assert_true(ok >= 1);
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
    clew__arena_deinit(&a2);
}

/* Unknown fields of every wire type, at every level, are skipped. */
static void add_unknowns(clew_buf *b)
{
    pb_uint(b, 99, 123456789);                  /* VARINT */
    pb_fixed(b, 100, 0x1122334455667788ull, 8); /* I64 */
    pb_bytes(b, 101, "junk\0junk", 9);          /* LEN */
    pb_tag(b, 102, 3);                          /* SGROUP with nested content */
    pb_uint(b, 1, 5);
    pb_tag(b, 7, 3);
    pb_bytes(b, 2, "x", 1);
    pb_tag(b, 7, 4);
    pb_fixed(b, 3, 9, 4);
    pb_tag(b, 102, 4);               /* EGROUP */
    pb_fixed(b, 103, 0xdeadbeef, 4); /* I32 */
}

static void unknown_fields_skipped(void **state)
{
    (void)state;
    static const uint8_t t16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t s8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    clew_buf any, kv, span, scope, ss, rs, req;
    clew_buf *all[] = {&any, &kv, &span, &scope, &ss, &rs, &req};
    for (size_t i = 0; i < 7; i++) {
        clew__buf_init(all[i], 0);
    }
    add_unknowns(&any);
    pb_uint(&any, 3, (uint64_t)-42); /* int_value -42: 10-byte varint */
    add_unknowns(&any);
    pb_bytes(&kv, 1, "answer", 6);
    add_unknowns(&kv);
    pb_msg(&kv, 2, &any);
    add_unknowns(&span);
    pb_bytes(&span, 1, t16, 16);
    add_unknowns(&span);
    pb_bytes(&span, 2, s8, 8);
    pb_msg(&span, 9, &kv);
    pb_fixed(&span, 16, 0x101, 4);
    add_unknowns(&span);
    add_unknowns(&scope);
    pb_bytes(&scope, 1, "lib", 3);
    add_unknowns(&ss);
    pb_msg(&ss, 1, &scope);
    pb_msg(&ss, 2, &span);
    add_unknowns(&ss);
    add_unknowns(&rs);
    pb_msg(&rs, 2, &ss);
    pb_bytes(&rs, 1000, "reserved", 8);
    add_unknowns(&req);
    pb_msg(&req, 1, &rs);
    add_unknowns(&req);

    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch d;
    clew_error err = {{0}, 0};
    assert_int_equal(decode(&req, &a, &d, &err), CLEW_OK);
    assert_int_equal(d.n_spans, 1);
    const clew_span_data *s = &d.rs[0].scopes[0].spans[0];
    assert_int_equal(s->attrs.n, 1);
    assert_memory_equal(s->attrs.items[0].key.ptr, "answer", 6);
    assert_int_equal(s->attrs.items[0].value.type, CLEW_VALUE_INT);
    assert_true(s->attrs.items[0].value.u.i == -42);
    assert_int_equal(s->flags, 0x101);
    assert_int_equal(s->scope->name.len, 3);

    for (size_t i = 0; i < 7; i++) {
        clew__buf_deinit(all[i]);
    }
    clew__arena_deinit(&a);
}

static void malformed_input_errors(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch d;
    clew_error err;

    /* wire type 6 at the top level */
    static const uint8_t wt6[] = {0x0E, 0x00};
    assert_int_equal(clew__otlp_pb_decode(wt6, sizeof(wt6), &a, &d, &err), CLEW_EPARSE);
    assert_non_null(strstr(err.msg, "invalid wire type"));
    assert_non_null(strstr(err.msg, "offset 0"));

    /* a Span.name whose length runs past the span */
    clew_buf sp, sc, rs, req;
    clew__buf_init(&sp, 0);
    clew__buf_init(&sc, 0);
    clew__buf_init(&rs, 0);
    clew__buf_init(&req, 0);
    pb_tag(&sp, 5, 2);
    pb_varint(&sp, 1000);
    assert_int_equal(clew__buf_append(&sp, "abc", 3), CLEW_OK);
    pb_msg(&sc, 2, &sp);
    pb_msg(&rs, 2, &sc);
    pb_msg(&req, 1, &rs);
    assert_int_equal(decode(&req, &a, &d, &err), CLEW_EPARSE);
    assert_string_equal(err.msg, "Span.name: length 1000 past end of message at offset 7");
    assert_int_equal(err.offset, 7);

    /* an overlong varint (11 bytes) */
    static const uint8_t longv[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(clew__otlp_pb_decode(longv, sizeof(longv), &a, &d, &err), CLEW_EPARSE);
    assert_non_null(strstr(err.msg, "varint"));
    /* end-group without start, field number 0, group never closed */
    static const uint8_t eg[] = {0x0C};
    assert_int_equal(clew__otlp_pb_decode(eg, sizeof(eg), &a, &d, &err), CLEW_EPARSE);
    static const uint8_t f0[] = {0x00, 0x00};
    assert_int_equal(clew__otlp_pb_decode(f0, sizeof(f0), &a, &d, &err), CLEW_EPARSE);
    static const uint8_t open_group[] = {0x0B, 0x08, 0x01};
    assert_int_equal(clew__otlp_pb_decode(open_group, sizeof(open_group), &a, &d, &err),
                     CLEW_EPARSE);
    static const uint8_t bad_group_end[] = {0x0B, 0x14};
    assert_int_equal(clew__otlp_pb_decode(bad_group_end, sizeof(bad_group_end), &a, &d, &err),
                     CLEW_EPARSE);
    clew__buf_deinit(&sp);
    clew__buf_deinit(&sc);
    clew__buf_deinit(&rs);
    clew__buf_deinit(&req);
    clew__arena_deinit(&a);
}

/* Request with one span whose only attribute is `depth` nested array values. */
static void nested_request(clew_buf *req, int depth)
{
    static const uint8_t t16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t s8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    clew_buf v, tmp;
    clew__buf_init(&v, 0);
    clew__buf_init(&tmp, 0);
    pb_uint(&v, 3, 7); /* innermost: int_value 7 */
    for (int i = 1; i < depth; i++) {
        /* AnyValue{array_value: ArrayValue{values: [v]}} */
        pb_msg(&tmp, 1, &v);
        pb_msg(&v, 5, &tmp);
    }
    clew_buf kv, sp, sc, rs;
    clew__buf_init(&kv, 0);
    clew__buf_init(&sp, 0);
    clew__buf_init(&sc, 0);
    clew__buf_init(&rs, 0);
    pb_bytes(&kv, 1, "deep", 4);
    pb_msg(&kv, 2, &v);
    pb_bytes(&sp, 1, t16, 16);
    pb_bytes(&sp, 2, s8, 8);
    pb_msg(&sp, 9, &kv);
    pb_msg(&sc, 2, &sp);
    pb_msg(&rs, 2, &sc);
    clew__buf_reset(req);
    pb_msg(req, 1, &rs);
    clew_buf *all[] = {&v, &tmp, &kv, &sp, &sc, &rs};
    for (size_t i = 0; i < 6; i++) {
        clew__buf_deinit(all[i]);
    }
}

static void nesting_and_memory_limits(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch d;
    clew_error err;
    clew_buf req;
    clew__buf_init(&req, 0);
    nested_request(&req, 64);
    assert_int_equal(decode(&req, &a, &d, &err), CLEW_OK);
    /* and it round-trips through the encoder */
    clew_buf out;
    clew__buf_init(&out, 0);
    encode_ok(&d, &out);
    assert_int_equal(out.len, req.len);
    assert_memory_equal(out.data, req.data, req.len);
    nested_request(&req, 65);
    assert_int_equal(decode(&req, &a, &d, &err), CLEW_EPARSE);
    assert_non_null(strstr(err.msg, "nested"));
    nested_request(&req, 1000);
    assert_int_equal(decode(&req, &a, &d, &err), CLEW_EPARSE);

    /* a small arena limit gives ETOOBIG, not ENOMEM or a crash */
    clew_arena small, big;
    clew__arena_init(&small, 1024, 2048);
    clew__arena_init(&big, 4096, 0);
    clew_batch b;
    build_rich_batch(&big, &b);
    clew__buf_reset(&out);
    encode_ok(&b, &out);
    assert_int_equal(decode(&out, &small, &d, &err), CLEW_ETOOBIG);
    assert_non_null(strstr(err.msg, "limit"));

    /* an output buffer that is too small: ETOOBIG */
    clew_buf tiny;
    clew__buf_init(&tiny, 100);
    assert_int_equal(clew__otlp_pb_encode(&b, &tiny), CLEW_ETOOBIG);
    clew__buf_deinit(&tiny);

    clew__buf_deinit(&out);
    clew__buf_deinit(&req);
    clew__arena_deinit(&a);
    clew__arena_deinit(&small);
    clew__arena_deinit(&big);
}

/* proto3 merging: a repeated singular message merges, scalars are last-wins. */
static void repeated_singular_fields_merge(void **state)
{
    (void)state;
    static const uint8_t t16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t s8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    clew_buf kv, res, sp, sc, rs, req;
    clew_buf *all[] = {&kv, &res, &sp, &sc, &rs, &req};
    for (size_t i = 0; i < 6; i++) {
        clew__buf_init(all[i], 0);
    }
    pb_bytes(&kv, 1, "a", 1);
    pb_msg(&res, 1, &kv);
    pb_msg(&rs, 1, &res);
    pb_bytes(&kv, 1, "b", 1);
    pb_msg(&res, 1, &kv);
    pb_uint(&res, 2, 4);
    pb_msg(&rs, 1, &res); /* second Resource: merged into the first */
    pb_bytes(&sp, 1, t16, 16);
    pb_bytes(&sp, 2, s8, 8);
    /* a KeyValue with its value before its key */
    pb_uint(&res, 3, 99);
    pb_msg(&kv, 2, &res);
    pb_bytes(&kv, 1, "late.key", 8);
    pb_msg(&sp, 9, &kv);
    pb_bytes(&sp, 5, "first", 5);
    pb_bytes(&sp, 5, "second", 6);
    pb_uint(&sp, 6, 3);
    pb_msg(&sc, 2, &sp);
    pb_msg(&rs, 2, &sc);
    pb_msg(&req, 1, &rs);

    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch d;
    clew_error err;
    assert_int_equal(decode(&req, &a, &d, &err), CLEW_OK);
    const clew_resource *r = d.rs[0].resource;
    assert_int_equal(r->attrs.n, 2);
    assert_memory_equal(r->attrs.items[0].key.ptr, "a", 1);
    assert_memory_equal(r->attrs.items[1].key.ptr, "b", 1);
    assert_int_equal(r->attrs.dropped, 4);
    const clew_span_data *s = &d.rs[0].scopes[0].spans[0];
    assert_int_equal(s->name.len, 6);
    assert_memory_equal(s->name.ptr, "second", 6);
    assert_int_equal(s->kind, CLEW_KIND_CLIENT);
    assert_ptr_equal(s->resource, r);
    assert_int_equal(s->attrs.n, 1);
    assert_memory_equal(s->attrs.items[0].key.ptr, "late.key", 8);
    assert_int_equal(s->attrs.items[0].value.type, CLEW_VALUE_INT);
    assert_true(s->attrs.items[0].value.u.i == 99);
    for (size_t i = 0; i < 6; i++) {
        clew__buf_deinit(all[i]);
    }
    clew__arena_deinit(&a);
}

static void responses(void **state)
{
    (void)state;
    clew_buf out;
    clew__buf_init(&out, 0);
    assert_int_equal(clew__otlp_pb_encode_response(0, S(""), &out), CLEW_OK);
    assert_int_equal(out.len, 0);
    assert_int_equal(clew__otlp_pb_encode_response(3, S("bad ids"), &out), CLEW_OK);
    static const uint8_t want[] = {0x0A, 0x0B, 0x08, 0x03, 0x12, 0x07, 'b',
                                   'a',  'd',  ' ',  'i',  'd',  's'};
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    clew__buf_reset(&out);
    assert_int_equal(clew__rpc_status_pb_encode(3, S("bad"), &out), CLEW_OK);
    static const uint8_t want2[] = {0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'};
    assert_int_equal(out.len, sizeof(want2));
    assert_memory_equal(out.data, want2, sizeof(want2));
    clew__buf_reset(&out);
    assert_int_equal(clew__rpc_status_pb_encode(0, S(""), &out), CLEW_OK);
    assert_int_equal(out.len, 0);
    clew__buf_deinit(&out);
}

/* Every allocation failing in turn: ENOMEM (never a crash or a leak), then success. */
static void out_of_memory(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    build_rich_batch(&a, &b);
    clew_buf ref;
    clew__buf_init(&ref, 0);
    encode_ok(&b, &ref);
    bool succeeded = false;
    for (long n = 0; n < 64 && !succeeded; n++) {
        clew_buf out;
        clew__buf_init(&out, 0);
        clew_arena da;
        clew__arena_init(&da, 256, 0);
        clew_batch d;
        clew_error err;
        clew__alloc_fail_after(n);
        clew_status erc = clew__otlp_pb_encode(&b, &out);
        clew_status drc = clew__otlp_pb_decode((const uint8_t *)ref.data, ref.len, &da, &d, &err);
        clew__alloc_fail_after(-1);
        assert_true(erc == CLEW_OK || erc == CLEW_ENOMEM);
        assert_true(drc == CLEW_OK || drc == CLEW_ENOMEM);
        if (erc == CLEW_OK && drc == CLEW_OK) {
            assert_int_equal(out.len, ref.len);
            assert_true(clew__batch_equal(&b, &d));
            succeeded = true;
        }
        clew__buf_deinit(&out);
        clew__arena_deinit(&da);
    }
    assert_true(succeeded);
    clew__buf_deinit(&ref);
    clew__arena_deinit(&a);
}

/* ---- independent checks with protoc ---- */

static void need_protoc(void)
{
    FILE *p = popen("protoc --version 2>&1", "r");
    char line[128] = "";
    if (p != NULL) {
        if (fgets(line, sizeof(line), p) == NULL) {
            line[0] = '\0';
        }
        pclose(p);
    }
    if (strncmp(line, "libprotoc", 9) != 0) {
        fail_msg("protoc is not installed (apt-get install protobuf-compiler): the codec cannot "
                 "be checked against an independent implementation");
    }
}

/* Runs `protoc <args>` with `in` as stdin; returns its stdout (malloc'd). */
static char *run_protoc(const char *args, const void *in, size_t n, int *exit_code)
{
    char inpath[] = "/tmp/clew_otlp_pb_in_XXXXXX";
    int fd = mkstemp(inpath);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, in, n), (ssize_t)n);
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "protoc %s < %s 2>&1", args, inpath);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    size_t got;
    while ((got = fread(text + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 1024) {
            cap *= 2;
            text = realloc(text, cap);
        }
    }
    text[len] = '\0';
    int st = pclose(p);
    *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    unlink(inpath);
    return text;
}

#define PROTO_ARGS "--proto_path=" CLEW_SOURCE_DIR "/src/codec otlp.proto"

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL) {
        fail_msg("expected protoc output to contain [%s]; output:\n%s", needle, text);
    }
}

static void protoc_decodes_our_output(void **state)
{
    (void)state;
    need_protoc();
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    build_rich_batch(&a, &b);
    clew_buf out;
    clew__buf_init(&out, 0);
    encode_ok(&b, &out);
    int code;

    /* --decode_raw knows nothing of our schema: field numbers straight from the wire */
    char *raw = run_protoc("--decode_raw", out.data, out.len, &code);
    assert_int_equal(code, 0);
    assert_contains(raw, "1 {\n  1 {\n    1 {\n      1: \"service.name\"");
    assert_contains(raw, "5: \"GET /api/users\"");
    assert_contains(raw, "6: 2\n");                  /* Span.kind */
    assert_contains(raw, "7: 0x156febfae3594800");   /* start time, fixed64 */
    assert_contains(raw, "16: 0x00000301");          /* flags, fixed32 */
    assert_contains(raw, "3: 18446744073709551615"); /* int_value -1: varint */
    assert_contains(raw, "3: 9223372036854775808");  /* INT64_MIN */
    free(raw);

    char *txt = run_protoc("--decode=clew.otlp.ExportTraceServiceRequest " PROTO_ARGS, out.data,
                           out.len, &code);
    if (code != 0) {
        fail_msg("protoc --decode failed: %s", txt);
    }
    assert_contains(txt, "name: \"GET /api/users\"");
    assert_contains(txt, "kind: SPAN_KIND_SERVER");
    assert_contains(txt, "kind: SPAN_KIND_CONSUMER");
    assert_contains(txt, "start_time_unix_nano: 1544712660000000000");
    assert_contains(txt, "end_time_unix_nano: 1544712661000000000");
    assert_contains(txt, "flags: 769");
    assert_contains(txt, "    attributes {\n      key: \"service.name\"\n      value {\n        "
                         "string_value: \"frontend\"");
    assert_contains(txt, "int_value: -9223372036854775808");
    assert_contains(txt, "int_value: 9223372036854775807");
    assert_contains(txt, "int_value: 0");       /* a oneof member at its default is still sent */
    assert_contains(txt, "string_value: \"\""); /* same for the empty string */
    assert_contains(txt, "bool_value: false");
    assert_contains(txt, "double_value: -0");
    assert_contains(txt, "double_value: nan");
    assert_contains(txt, "double_value: -inf");
    assert_contains(txt, "double_value: 3.141592653589793");
    assert_contains(txt, "bytes_value: \"\\000\\001\\000\\377x\"");
    assert_contains(txt, "dropped_attributes_count: 7");
    assert_contains(txt, "dropped_events_count: 5");
    assert_contains(txt, "dropped_links_count: 6");
    assert_contains(txt, "code: STATUS_CODE_ERROR");
    assert_contains(txt, "message: \"boom\"");
    assert_contains(txt, "trace_state: \"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\"");
    assert_contains(txt, "time_unix_nano: 1544712660500000000");
    assert_contains(txt, "schema_url: \"https://opentelemetry.io/schemas/1.24.0\"");
    assert_contains(txt, "version: \"1.2.3\"");
    assert_contains(txt, "kvlist_value {");
    assert_contains(txt, "array_value {\n");
    /* no unknown fields: protoc prints those by number */
    assert_null(strstr(txt, "\n1: "));
    free(txt);

    /* protoc re-encodes its parse; our decoder must read that back to the same batch */
    char *again = run_protoc("--decode=clew.otlp.ExportTraceServiceRequest " PROTO_ARGS, out.data,
                             out.len, &code);
    char *bin = NULL;
    {
        char inpath[] = "/tmp/clew_otlp_pb_txt_XXXXXX";
        int fd = mkstemp(inpath);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, again, strlen(again)), (ssize_t)strlen(again));
        close(fd);
        char outpath[] = "/tmp/clew_otlp_pb_bin_XXXXXX";
        int fd2 = mkstemp(outpath);
        assert_true(fd2 >= 0);
        close(fd2);
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "protoc --encode=clew.otlp.ExportTraceServiceRequest " PROTO_ARGS " < %s > %s",
                 inpath, outpath);
        assert_int_equal(system(cmd), 0);
        FILE *f = fopen(outpath, "rb");
        assert_non_null(f);
        bin = malloc(out.len + 64);
        size_t n = fread(bin, 1, out.len + 64, f);
        fclose(f);
        unlink(inpath);
        unlink(outpath);
        clew_arena a2;
        clew__arena_init(&a2, 4096, 0);
        clew_batch d;
        clew_error err;
        assert_int_equal(clew__otlp_pb_decode((const uint8_t *)bin, n, &a2, &d, &err), CLEW_OK);
        assert_true(clew__batch_equal(&b, &d));
        clew__arena_deinit(&a2);
    }
    free(bin);
    free(again);

    /* responses decoded by protoc */
    clew__buf_reset(&out);
    assert_int_equal(clew__otlp_pb_encode_response(3, S("3 spans had bad ids"), &out), CLEW_OK);
    txt = run_protoc("--decode=clew.otlp.ExportTraceServiceResponse " PROTO_ARGS, out.data, out.len,
                     &code);
    assert_int_equal(code, 0);
    assert_contains(txt, "partial_success {\n  rejected_spans: 3\n  error_message: \"3 spans had "
                         "bad ids\"\n}");
    free(txt);
    clew__buf_reset(&out);
    assert_int_equal(clew__rpc_status_pb_encode(-5, S("negative"), &out), CLEW_OK);
    txt = run_protoc("--decode=clew.otlp.RpcStatus " PROTO_ARGS, out.data, out.len, &code);
    assert_int_equal(code, 0);
    assert_contains(txt, "code: -5\nmessage: \"negative\"");
    free(txt);

    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
}

static void we_decode_protoc_output(void **state)
{
    (void)state;
    need_protoc();
    static const char text[] =
        "resource_spans {\n"
        "  resource { attributes { key: \"service.name\" value { string_value: \"checkout\" } }\n"
        "             dropped_attributes_count: 2 }\n"
        "  scope_spans {\n"
        "    scope { name: \"io.clew\" version: \"0.1\" }\n"
        "    spans {\n"
        "      trace_id: \"\\x5b\\x8e\\xff\\xf7\\x98\\x03\\x81\\x03\\xd2\\x69\\xb6\\x33\\x81\\x3f"
        "\\xc6\\x0c\"\n"
        "      span_id: \"\\xee\\xe1\\x9b\\x7e\\xc3\\xc1\\xb1\\x74\"\n"
        "      parent_span_id: \"\\xee\\xe1\\x9b\\x7e\\xc3\\xc1\\xb1\\x73\"\n"
        "      name: \"charge card\"\n"
        "      kind: SPAN_KIND_CLIENT\n"
        "      start_time_unix_nano: 1544712660000000000\n"
        "      end_time_unix_nano: 18446744073709551615\n"
        "      flags: 257\n"
        "      attributes { key: \"n\" value { int_value: -1234567890123 } }\n"
        "      attributes { key: \"d\" value { double_value: -2.5e-10 } }\n"
        "      attributes { key: \"b\" value { bytes_value: \"\\000\\377\" } }\n"
        "      attributes { key: \"a\" value { array_value { values { bool_value: true }\n"
        "                   values { kvlist_value { values { key: \"x\" value { } } } } } } }\n"
        "      events { time_unix_nano: 7 name: \"ev\" dropped_attributes_count: 1 }\n"
        "      links { trace_id: \"0123456789abcdef\" span_id: \"01234567\" flags: 1 }\n"
        "      links { trace_id: \"short\" span_id: \"01234567\" }\n"
        "      dropped_links_count: 2\n"
        "      status { code: STATUS_CODE_OK message: \"fine\" }\n"
        "    }\n"
        "  }\n"
        "}\n";
    char inpath[] = "/tmp/clew_otlp_pb_txt_XXXXXX";
    int fd = mkstemp(inpath);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "protoc --encode=clew.otlp.ExportTraceServiceRequest " PROTO_ARGS " < %s", inpath);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    uint8_t bin[4096];
    size_t n = fread(bin, 1, sizeof(bin), p);
    assert_int_equal(pclose(p), 0);
    unlink(inpath);
    assert_true(n > 50);

    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch d;
    clew_error err = {{0}, 0};
    assert_int_equal(clew__otlp_pb_decode(bin, n, &a, &d, &err), CLEW_OK);
    assert_int_equal(d.n_spans, 1);
    const clew_span_data *s = &d.rs[0].scopes[0].spans[0];
    char hex[33];
    clew__trace_id_hex(&s->trace_id, hex);
    assert_string_equal(hex, "5b8efff798038103d269b633813fc60c");
    clew__span_id_hex(&s->span_id, hex);
    assert_string_equal(hex, "eee19b7ec3c1b174");
    clew__span_id_hex(&s->parent_span_id, hex);
    assert_string_equal(hex, "eee19b7ec3c1b173");
    assert_int_equal(s->name.len, 11);
    assert_memory_equal(s->name.ptr, "charge card", 11);
    assert_int_equal(s->kind, CLEW_KIND_CLIENT);
    assert_true(s->start_ns == 1544712660000000000ull);
    assert_true(s->end_ns == UINT64_MAX);
    assert_int_equal(s->flags, 257);
    assert_int_equal(s->attrs.n, 4);
    assert_true(s->attrs.items[0].value.u.i == -1234567890123LL);
    assert_true(s->attrs.items[1].value.u.d == -2.5e-10);
    assert_int_equal(s->attrs.items[2].value.type, CLEW_VALUE_BYTES);
    assert_int_equal(s->attrs.items[2].value.u.s.len, 2);
    const clew_value *arr = &s->attrs.items[3].value;
    assert_int_equal(arr->type, CLEW_VALUE_ARRAY);
    assert_int_equal(arr->u.array.n, 2);
    assert_int_equal(arr->u.array.items[0].type, CLEW_VALUE_BOOL);
    assert_int_equal(arr->u.array.items[1].type, CLEW_VALUE_KVLIST);
    assert_int_equal(arr->u.array.items[1].u.kvlist.items[0].value.type, CLEW_VALUE_EMPTY);
    assert_int_equal(s->n_events, 1);
    assert_true(s->events[0].time_ns == 7);
    assert_int_equal(s->events[0].attrs.dropped, 1);
    /* the link with a 5-byte trace id cannot be kept: dropped and counted */
    assert_int_equal(s->n_links, 1);
    assert_int_equal(s->dropped_links, 3);
    assert_int_equal(s->links[0].flags, 1);
    assert_int_equal(s->status_code, CLEW_STATUS_OK);
    assert_int_equal(s->resource->attrs.dropped, 2);
    assert_int_equal(s->scope->version.len, 3);
    clew_str svc = clew__resource_service(s->resource);
    assert_int_equal(svc.len, 8);
    assert_memory_equal(svc.ptr, "checkout", 8);
    clew__arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_every_type),
        cmocka_unit_test(empty_request),
        cmocka_unit_test(hand_assembled_span),
        cmocka_unit_test(invalid_spans_rejected_individually),
        cmocka_unit_test(truncated_at_every_offset),
        cmocka_unit_test(unknown_fields_skipped),
        cmocka_unit_test(malformed_input_errors),
        cmocka_unit_test(nesting_and_memory_limits),
        cmocka_unit_test(repeated_singular_fields_merge),
        cmocka_unit_test(responses),
        cmocka_unit_test(out_of_memory),
        cmocka_unit_test(protoc_decodes_our_output),
        cmocka_unit_test(we_decode_protoc_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
