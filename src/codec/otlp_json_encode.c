/*
 * src/codec/otlp_json_encode.c - OTLP/JSON encoder (requests and responses).
 *
 * Part of clew_core (linked into the SDK), so libc only: the JSON is written
 * straight into a clew_buf. The mapping follows wire.md section 4.1, which is
 * proto3's JSON mapping with OTLP's deviations:
 *   - keys are lowerCamelCase; fields holding their default (0, empty) are left
 *     out, as proto3 JSON does, except AnyValue members (an intValue of "0" or an
 *     empty stringValue is written) and KeyValue keys;
 *   - trace and span ids are lowercase hex, enums are integers;
 *   - 64-bit integers (times, intValue) are decimal strings, 32-bit ones numbers;
 *   - bytesValue is standard base64 with padding;
 *   - doubles are the shortest decimal that parses back to the same bits, always
 *     with a '.' or exponent (so "-0.0" keeps its sign); NaN and the infinities
 *     are the strings "NaN", "Infinity", "-Infinity" (the sign and payload of a
 *     NaN are not kept).
 * Strings are escaped by clew__buf_json_str, which replaces invalid UTF-8 with
 * U+FFFD: protobuf input is not UTF-8 checked on decode, so that happens here.
 *
 * Thread-safety: no shared state.
 */
#include "codec/otlp.h"
#include "common/base64.h"
#include "common/hex.h"
#include "common/try.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every writer below returns early (CLEW_TRY) on the first failing append. */
static clew_status lit(clew_buf *b, const char *s, size_t n)
{
    return clew__buf_append(b, s, n);
}

#define LIT(b, s) lit((b), (s), sizeof(s) - 1)

/* Decimal digits of v into the end of tmp[24]; returns the start. */
static char *u64_digits(uint64_t v, char tmp[24])
{
    char *p = tmp + 24;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

static clew_status put_u64(clew_buf *b, uint64_t v)
{
    char tmp[24];
    char *p = u64_digits(v, tmp);
    return lit(b, p, (size_t)(tmp + 24 - p));
}

/* A 64-bit integer as a JSON string: "123". */
static clew_status put_u64_str(clew_buf *b, uint64_t v)
{
    char tmp[24];
    char *p = u64_digits(v, tmp);
    *--p = '"';
    CLEW_TRY(lit(b, p, (size_t)(tmp + 24 - p)));
    return clew__buf_putc(b, '"');
}

static clew_status put_i64_str(clew_buf *b, int64_t v)
{
    char tmp[24];
    /* negate in unsigned arithmetic so INT64_MIN works */
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(mag, tmp);
    if (v < 0) {
        *--p = '-';
    }
    *--p = '"';
    CLEW_TRY(lit(b, p, (size_t)(tmp + 24 - p)));
    return clew__buf_putc(b, '"');
}

/* The shortest %.Ng (N = 1..17) that reads back as exactly d; proto3 JSON spells the
 * non-finite values as strings. */
static clew_status put_double(clew_buf *b, double d)
{
    if (isnan(d)) {
        return LIT(b, "\"NaN\"");
    }
    if (isinf(d)) {
        return d > 0 ? LIT(b, "\"Infinity\"") : LIT(b, "\"-Infinity\"");
    }
    return clew__buf_double(b, d, 1, true);
}

static clew_status put_str(clew_buf *b, clew_str s)
{
    return clew__buf_json_str(b, s.ptr ? s.ptr : "", s.len);
}

static clew_status put_hex(clew_buf *b, const uint8_t *p, size_t n)
{
    char tmp[2 * 16 + 3];
    tmp[0] = '"';
    clew__hex_encode(p, n, tmp + 1);
    tmp[2 * n + 1] = '"';
    return lit(b, tmp, 2 * n + 2);
}

/* Writes `,"key":` (or without the comma for the first member). */
static clew_status key(clew_buf *b, bool *first, const char *k)
{
    if (!*first) {
        CLEW_TRY(clew__buf_putc(b, ','));
    }
    *first = false;
    CLEW_TRY(clew__buf_putc(b, '"'));
    CLEW_TRY(clew__buf_puts(b, k));
    return LIT(b, "\":");
}

static clew_status put_kvs(clew_buf *b, const clew_kv *items, uint32_t n);

static clew_status put_value(clew_buf *b, const clew_value *v)
{
    switch (v->type) {
    case CLEW_VALUE_EMPTY:
        return LIT(b, "{}");
    case CLEW_VALUE_STRING:
        CLEW_TRY(LIT(b, "{\"stringValue\":"));
        CLEW_TRY(put_str(b, v->u.s));
        break;
    case CLEW_VALUE_BOOL:
        return v->u.b ? LIT(b, "{\"boolValue\":true}") : LIT(b, "{\"boolValue\":false}");
    case CLEW_VALUE_INT:
        CLEW_TRY(LIT(b, "{\"intValue\":"));
        CLEW_TRY(put_i64_str(b, v->u.i));
        break;
    case CLEW_VALUE_DOUBLE:
        CLEW_TRY(LIT(b, "{\"doubleValue\":"));
        CLEW_TRY(put_double(b, v->u.d));
        break;
    case CLEW_VALUE_BYTES:
        CLEW_TRY(LIT(b, "{\"bytesValue\":"));
        CLEW_TRY(clew__buf_base64(b, (const uint8_t *)v->u.s.ptr, v->u.s.len, true));
        break;
    case CLEW_VALUE_ARRAY:
        CLEW_TRY(LIT(b, "{\"arrayValue\":{"));
        if (v->u.array.n) {
            CLEW_TRY(LIT(b, "\"values\":["));
            for (uint32_t i = 0; i < v->u.array.n; i++) {
                if (i) {
                    CLEW_TRY(clew__buf_putc(b, ','));
                }
                CLEW_TRY(put_value(b, &v->u.array.items[i]));
            }
            CLEW_TRY(clew__buf_putc(b, ']'));
        }
        CLEW_TRY(clew__buf_putc(b, '}'));
        break;
    case CLEW_VALUE_KVLIST:
        CLEW_TRY(LIT(b, "{\"kvlistValue\":{"));
        if (v->u.kvlist.n) {
            CLEW_TRY(LIT(b, "\"values\":"));
            CLEW_TRY(put_kvs(b, v->u.kvlist.items, v->u.kvlist.n));
        }
        CLEW_TRY(clew__buf_putc(b, '}'));
        break;
    default:
        return LIT(b, "{}");
    }
    return clew__buf_putc(b, '}');
}

/* A JSON array of KeyValue objects. */
static clew_status put_kvs(clew_buf *b, const clew_kv *items, uint32_t n)
{
    CLEW_TRY(clew__buf_putc(b, '['));
    for (uint32_t i = 0; i < n; i++) {
        CLEW_TRY(clew__buf_puts(b, i ? ",{\"key\":" : "{\"key\":"));
        CLEW_TRY(put_str(b, items[i].key));
        CLEW_TRY(LIT(b, ",\"value\":"));
        CLEW_TRY(put_value(b, &items[i].value));
        CLEW_TRY(clew__buf_putc(b, '}'));
    }
    return clew__buf_putc(b, ']');
}

/* "attributes" and "droppedAttributesCount" members, when not empty. */
static clew_status put_attrs(clew_buf *b, bool *first, const clew_attrs *a)
{
    if (a->n) {
        CLEW_TRY(key(b, first, "attributes"));
        CLEW_TRY(put_kvs(b, a->items, a->n));
    }
    if (a->dropped) {
        CLEW_TRY(key(b, first, "droppedAttributesCount"));
        CLEW_TRY(put_u64(b, a->dropped));
    }
    return CLEW_OK;
}

static clew_status put_str_member(clew_buf *b, bool *first, const char *k, clew_str s)
{
    if (s.len == 0) {
        return CLEW_OK;
    }
    CLEW_TRY(key(b, first, k));
    return put_str(b, s);
}

static clew_status put_u32_member(clew_buf *b, bool *first, const char *k, uint32_t v)
{
    if (v == 0) {
        return CLEW_OK;
    }
    CLEW_TRY(key(b, first, k));
    return put_u64(b, v);
}

static clew_status put_time_member(clew_buf *b, bool *first, const char *k, uint64_t v)
{
    if (v == 0) {
        return CLEW_OK;
    }
    CLEW_TRY(key(b, first, k));
    return put_u64_str(b, v);
}

static bool zero_bytes(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

static clew_status put_span(clew_buf *b, const clew_span_data *s)
{
    bool first = true;
    CLEW_TRY(clew__buf_putc(b, '{'));
    CLEW_TRY(key(b, &first, "traceId"));
    CLEW_TRY(put_hex(b, s->trace_id.bytes, 16));
    CLEW_TRY(key(b, &first, "spanId"));
    CLEW_TRY(put_hex(b, s->span_id.bytes, 8));
    CLEW_TRY(put_str_member(b, &first, "traceState", s->trace_state));
    if (!zero_bytes(s->parent_span_id.bytes, 8)) {
        CLEW_TRY(key(b, &first, "parentSpanId"));
        CLEW_TRY(put_hex(b, s->parent_span_id.bytes, 8));
    }
    CLEW_TRY(put_u32_member(b, &first, "flags", s->flags));
    CLEW_TRY(put_str_member(b, &first, "name", s->name));
    CLEW_TRY(put_u32_member(b, &first, "kind", (uint32_t)s->kind));
    CLEW_TRY(put_time_member(b, &first, "startTimeUnixNano", s->start_ns));
    CLEW_TRY(put_time_member(b, &first, "endTimeUnixNano", s->end_ns));
    CLEW_TRY(put_attrs(b, &first, &s->attrs));
    if (s->n_events) {
        CLEW_TRY(key(b, &first, "events"));
        CLEW_TRY(clew__buf_putc(b, '['));
        for (uint32_t i = 0; i < s->n_events; i++) {
            const clew_event_data *e = &s->events[i];
            bool f2 = true;
            CLEW_TRY(clew__buf_puts(b, i ? ",{" : "{"));
            CLEW_TRY(put_time_member(b, &f2, "timeUnixNano", e->time_ns));
            CLEW_TRY(put_str_member(b, &f2, "name", e->name));
            CLEW_TRY(put_attrs(b, &f2, &e->attrs));
            CLEW_TRY(clew__buf_putc(b, '}'));
        }
        CLEW_TRY(clew__buf_putc(b, ']'));
    }
    CLEW_TRY(put_u32_member(b, &first, "droppedEventsCount", s->dropped_events));
    if (s->n_links) {
        CLEW_TRY(key(b, &first, "links"));
        CLEW_TRY(clew__buf_putc(b, '['));
        for (uint32_t i = 0; i < s->n_links; i++) {
            const clew_link_data *l = &s->links[i];
            bool f2 = true;
            CLEW_TRY(clew__buf_puts(b, i ? ",{" : "{"));
            CLEW_TRY(key(b, &f2, "traceId"));
            CLEW_TRY(put_hex(b, l->trace_id.bytes, 16));
            CLEW_TRY(key(b, &f2, "spanId"));
            CLEW_TRY(put_hex(b, l->span_id.bytes, 8));
            CLEW_TRY(put_str_member(b, &f2, "traceState", l->trace_state));
            CLEW_TRY(put_attrs(b, &f2, &l->attrs));
            CLEW_TRY(put_u32_member(b, &f2, "flags", l->flags));
            CLEW_TRY(clew__buf_putc(b, '}'));
        }
        CLEW_TRY(clew__buf_putc(b, ']'));
    }
    CLEW_TRY(put_u32_member(b, &first, "droppedLinksCount", s->dropped_links));
    if (s->status_code || s->status_message.len) {
        bool f2 = true;
        CLEW_TRY(key(b, &first, "status"));
        CLEW_TRY(clew__buf_putc(b, '{'));
        CLEW_TRY(put_str_member(b, &f2, "message", s->status_message));
        CLEW_TRY(put_u32_member(b, &f2, "code", (uint32_t)s->status_code));
        CLEW_TRY(clew__buf_putc(b, '}'));
    }
    return clew__buf_putc(b, '}');
}

static clew_status put_scope_spans(clew_buf *b, const clew_scope_spans *ss)
{
    bool first = true;
    const clew_scope *sc = ss->scope;
    CLEW_TRY(clew__buf_putc(b, '{'));
    if (sc != NULL && (sc->name.len || sc->version.len || sc->attrs.n || sc->attrs.dropped)) {
        bool f2 = true;
        CLEW_TRY(key(b, &first, "scope"));
        CLEW_TRY(clew__buf_putc(b, '{'));
        CLEW_TRY(put_str_member(b, &f2, "name", sc->name));
        CLEW_TRY(put_str_member(b, &f2, "version", sc->version));
        CLEW_TRY(put_attrs(b, &f2, &sc->attrs));
        CLEW_TRY(clew__buf_putc(b, '}'));
    }
    if (ss->n_spans) {
        CLEW_TRY(key(b, &first, "spans"));
        CLEW_TRY(clew__buf_putc(b, '['));
        for (size_t i = 0; i < ss->n_spans; i++) {
            if (i) {
                CLEW_TRY(clew__buf_putc(b, ','));
            }
            CLEW_TRY(put_span(b, &ss->spans[i]));
        }
        CLEW_TRY(clew__buf_putc(b, ']'));
    }
    if (sc != NULL) {
        CLEW_TRY(put_str_member(b, &first, "schemaUrl", sc->schema_url));
    }
    return clew__buf_putc(b, '}');
}

clew_status clew__otlp_json_encode(const clew_batch *b, clew_buf *out)
{
    CLEW_TRY(LIT(out, "{\"resourceSpans\":["));
    for (size_t i = 0; i < b->n_rs; i++) {
        const clew_resource_spans *rs = &b->rs[i];
        const clew_resource *r = rs->resource;
        bool first = true;
        CLEW_TRY(clew__buf_puts(out, i ? ",{" : "{"));
        if (r != NULL && (r->attrs.n || r->attrs.dropped)) {
            bool f2 = true;
            CLEW_TRY(key(out, &first, "resource"));
            CLEW_TRY(clew__buf_putc(out, '{'));
            CLEW_TRY(put_attrs(out, &f2, &r->attrs));
            CLEW_TRY(clew__buf_putc(out, '}'));
        }
        if (rs->n_scopes) {
            CLEW_TRY(key(out, &first, "scopeSpans"));
            CLEW_TRY(clew__buf_putc(out, '['));
            for (size_t j = 0; j < rs->n_scopes; j++) {
                if (j) {
                    CLEW_TRY(clew__buf_putc(out, ','));
                }
                CLEW_TRY(put_scope_spans(out, &rs->scopes[j]));
            }
            CLEW_TRY(clew__buf_putc(out, ']'));
        }
        if (r != NULL) {
            CLEW_TRY(put_str_member(out, &first, "schemaUrl", r->schema_url));
        }
        CLEW_TRY(clew__buf_putc(out, '}'));
    }
    return LIT(out, "]}");
}

clew_status clew__otlp_json_encode_response(uint64_t rejected, clew_str message, clew_buf *out)
{
    if (rejected == 0 && message.len == 0) {
        return LIT(out, "{}");
    }
    bool first = true;
    CLEW_TRY(LIT(out, "{\"partialSuccess\":{"));
    if (rejected) {
        CLEW_TRY(key(out, &first, "rejectedSpans"));
        CLEW_TRY(put_u64_str(out, rejected));
    }
    CLEW_TRY(put_str_member(out, &first, "errorMessage", message));
    return LIT(out, "}}");
}

clew_status clew__rpc_status_json_encode(int32_t code, clew_str message, clew_buf *out)
{
    CLEW_TRY(clew__buf_printf(out, "{\"code\":%d,\"message\":", (int)code));
    CLEW_TRY(put_str(out, message));
    return clew__buf_putc(out, '}');
}
