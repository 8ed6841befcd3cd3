/*
 * src/query/jaeger_json.c - Jaeger v1 trace JSON; see jaeger_json.h.
 */
#include "query/jaeger_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/hex.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        clew_status rc_ = (expr);                                                                  \
        if (rc_ != CLEW_OK) {                                                                      \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

/* Values nested deeper than this render as null: a decoder bounds nesting already,
 * this only keeps the recursion here bounded on its own. */
#define MAX_VALUE_DEPTH 64

/* Integers beyond +-2^53 lose precision in JavaScript, so Jaeger sends them as text. */
#define JS_SAFE_INT 9007199254740992LL

void clew__jaeger_trace_id_hex(const clew_trace_id *id, char out[33])
{
    if (clew__trace_id_is_64bit(id)) {
        clew__hex_encode(id->bytes + 8, 8, out);
    } else {
        clew__hex_encode(id->bytes, 16, out);
    }
}

bool clew__jaeger_trace_id_parse(const char *s, size_t len, clew_trace_id *out)
{
    char padded[32];
    if (len == 0 || len > 32) {
        return false;
    }
    memset(padded, '0', sizeof(padded));
    memcpy(padded + 32 - len, s, len);
    clew_trace_id id;
    if (!clew__hex_decode(padded, 16, id.bytes) || clew__trace_id_is_zero(&id)) {
        return false;
    }
    *out = id;
    return true;
}

/* Shortest text that reads back as the same double (finite values only). */
static clew_status put_double(clew_buf *b, double d)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) {
            break;
        }
    }
    return clew__buf_puts(b, tmp);
}

static const char *nonfinite_text(double d)
{
    return isnan(d) ? "NaN" : (d > 0 ? "+Inf" : "-Inf");
}

static clew_status put_base64(clew_buf *b, const uint8_t *p, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    TRY(clew__buf_reserve(b, (n + 2) / 3 * 4 + 2));
    TRY(clew__buf_putc(b, '"'));
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t v = (uint32_t)p[i] << 16;
        if (left > 1) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (left > 2) {
            v |= p[i + 2];
        }
        char q[4] = {al[(v >> 18) & 63], al[(v >> 12) & 63], left > 1 ? al[(v >> 6) & 63] : '=',
                     left > 2 ? al[v & 63] : '='};
        TRY(clew__buf_append(b, q, 4));
    }
    return clew__buf_putc(b, '"');
}

/* The JSON form of a value, used as the text of array and kvlist tags (what
 * Jaeger's translation shows for them). */
static clew_status value_json(clew_buf *b, const clew_value *v, int depth)
{
    if (depth > MAX_VALUE_DEPTH) {
        return clew__buf_puts(b, "null");
    }
    switch (v->type) {
    case CLEW_VALUE_STRING:
        return clew__buf_json_str(b, v->u.s.ptr, v->u.s.len);
    case CLEW_VALUE_BOOL:
        return clew__buf_puts(b, v->u.b ? "true" : "false");
    case CLEW_VALUE_INT:
        return clew__buf_printf(b, "%" PRId64, v->u.i);
    case CLEW_VALUE_DOUBLE:
        if (!isfinite(v->u.d)) {
            return clew__buf_printf(b, "\"%s\"", nonfinite_text(v->u.d));
        }
        return put_double(b, v->u.d);
    case CLEW_VALUE_BYTES:
        return put_base64(b, (const uint8_t *)v->u.s.ptr, v->u.s.len);
    case CLEW_VALUE_ARRAY:
        TRY(clew__buf_putc(b, '['));
        for (uint32_t i = 0; i < v->u.array.n; i++) {
            if (i > 0) {
                TRY(clew__buf_putc(b, ','));
            }
            TRY(value_json(b, &v->u.array.items[i], depth + 1));
        }
        return clew__buf_putc(b, ']');
    case CLEW_VALUE_KVLIST:
        TRY(clew__buf_putc(b, '{'));
        for (uint32_t i = 0; i < v->u.kvlist.n; i++) {
            const clew_kv *kv = &v->u.kvlist.items[i];
            if (i > 0) {
                TRY(clew__buf_putc(b, ','));
            }
            TRY(clew__buf_json_str(b, kv->key.ptr, kv->key.len));
            TRY(clew__buf_putc(b, ':'));
            TRY(value_json(b, &kv->value, depth + 1));
        }
        return clew__buf_putc(b, '}');
    case CLEW_VALUE_EMPTY:
        break;
    }
    return clew__buf_puts(b, "null");
}

static clew_status tag_open(clew_buf *b, bool *first, const char *key, size_t klen,
                            const char *type)
{
    if (!*first) {
        TRY(clew__buf_putc(b, ','));
    }
    *first = false;
    TRY(clew__buf_puts(b, "{\"key\":"));
    TRY(clew__buf_json_str(b, key, klen));
    return clew__buf_printf(b, ",\"type\":\"%s\",\"value\":", type);
}

static clew_status str_tag(clew_buf *b, bool *first, const char *key, const char *val, size_t len)
{
    TRY(tag_open(b, first, key, strlen(key), "string"));
    TRY(clew__buf_json_str(b, val, len));
    return clew__buf_putc(b, '}');
}

static clew_status value_tag(clew_buf *b, bool *first, clew_str key, const clew_value *v)
{
    switch (v->type) {
    case CLEW_VALUE_STRING:
        TRY(tag_open(b, first, key.ptr, key.len, "string"));
        TRY(clew__buf_json_str(b, v->u.s.ptr, v->u.s.len));
        break;
    case CLEW_VALUE_BOOL:
        TRY(tag_open(b, first, key.ptr, key.len, "bool"));
        TRY(clew__buf_puts(b, v->u.b ? "true" : "false"));
        break;
    case CLEW_VALUE_INT:
        TRY(tag_open(b, first, key.ptr, key.len, "int64"));
        if (v->u.i > JS_SAFE_INT || v->u.i < -JS_SAFE_INT) {
            TRY(clew__buf_printf(b, "\"%" PRId64 "\"", v->u.i));
        } else {
            TRY(clew__buf_printf(b, "%" PRId64, v->u.i));
        }
        break;
    case CLEW_VALUE_DOUBLE:
        if (isfinite(v->u.d)) {
            TRY(tag_open(b, first, key.ptr, key.len, "float64"));
            TRY(put_double(b, v->u.d));
        } else {
            /* JSON has no NaN or Inf: send the text, typed as what it now is */
            TRY(tag_open(b, first, key.ptr, key.len, "string"));
            TRY(clew__buf_printf(b, "\"%s\"", nonfinite_text(v->u.d)));
        }
        break;
    case CLEW_VALUE_BYTES:
        TRY(tag_open(b, first, key.ptr, key.len, "binary"));
        TRY(put_base64(b, (const uint8_t *)v->u.s.ptr, v->u.s.len));
        break;
    case CLEW_VALUE_ARRAY:
    case CLEW_VALUE_KVLIST: {
        /* render into a side buffer, then embed that text as a JSON string */
        clew_buf tmp;
        clew__buf_init(&tmp, b->max);
        clew_status rc = value_json(&tmp, v, 0);
        if (rc == CLEW_OK) {
            rc = tag_open(b, first, key.ptr, key.len, "string");
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(b, tmp.data ? tmp.data : "", tmp.len);
        }
        clew__buf_deinit(&tmp);
        TRY(rc);
        break;
    }
    case CLEW_VALUE_EMPTY:
        TRY(tag_open(b, first, key.ptr, key.len, "string"));
        TRY(clew__buf_puts(b, "\"\""));
        break;
    }
    return clew__buf_putc(b, '}');
}

static clew_status attrs_tags(clew_buf *b, bool *first, const clew_attrs *a, bool skip_service)
{
    for (uint32_t i = 0; i < a->n; i++) {
        const clew_kv *kv = &a->items[i];
        if (skip_service && kv->key.len == 12 && memcmp(kv->key.ptr, "service.name", 12) == 0) {
            continue;
        }
        TRY(value_tag(b, first, kv->key, &kv->value));
    }
    return CLEW_OK;
}

static clew_status span_tags(clew_buf *b, const clew_span_data *s)
{
    bool first = true;
    TRY(clew__buf_puts(b, "\"tags\":["));
    TRY(attrs_tags(b, &first, &s->attrs, false));
    if (s->kind >= CLEW_KIND_SERVER && s->kind <= CLEW_KIND_CONSUMER) {
        const char *k = clew__kind_name(s->kind);
        TRY(str_tag(b, &first, "span.kind", k, strlen(k)));
    }
    if (s->status_code == CLEW_STATUS_OK) {
        TRY(str_tag(b, &first, "otel.status_code", "OK", 2));
    } else if (s->status_code == CLEW_STATUS_ERROR) {
        TRY(str_tag(b, &first, "otel.status_code", "ERROR", 5));
        TRY(tag_open(b, &first, "error", 5, "bool"));
        TRY(clew__buf_puts(b, "true}"));
    }
    if (s->status_message.len > 0) {
        TRY(str_tag(b, &first, "otel.status_description", s->status_message.ptr,
                    s->status_message.len));
    }
    if (s->scope != NULL && s->scope->name.len > 0) {
        TRY(str_tag(b, &first, "otel.scope.name", s->scope->name.ptr, s->scope->name.len));
    }
    if (s->scope != NULL && s->scope->version.len > 0) {
        TRY(str_tag(b, &first, "otel.scope.version", s->scope->version.ptr, s->scope->version.len));
    }
    if (s->trace_state.len > 0) {
        TRY(str_tag(b, &first, "w3c.tracestate", s->trace_state.ptr, s->trace_state.len));
    }
    return clew__buf_putc(b, ']');
}

static clew_status put_ref(clew_buf *b, bool *first, const char *type, const clew_trace_id *tid,
                           const clew_span_id *sid)
{
    char th[33], sh[17];
    clew__jaeger_trace_id_hex(tid, th);
    clew__span_id_hex(sid, sh);
    if (!*first) {
        TRY(clew__buf_putc(b, ','));
    }
    *first = false;
    return clew__buf_printf(b, "{\"refType\":\"%s\",\"traceID\":\"%s\",\"spanID\":\"%s\"}", type,
                            th, sh);
}

static clew_status span_json(clew_buf *b, const clew_span_data *s, size_t process)
{
    char th[33], sh[17];
    clew__jaeger_trace_id_hex(&s->trace_id, th);
    clew__span_id_hex(&s->span_id, sh);
    uint64_t dur = s->end_ns > s->start_ns ? s->end_ns - s->start_ns : 0;
    TRY(clew__buf_printf(b, "{\"traceID\":\"%s\",\"spanID\":\"%s\",\"operationName\":", th, sh));
    TRY(clew__buf_json_str(b, s->name.ptr, s->name.len));
    TRY(clew__buf_puts(b, ",\"references\":["));
    bool first = true;
    if (!clew__span_id_is_zero(&s->parent_span_id)) {
        TRY(put_ref(b, &first, "CHILD_OF", &s->trace_id, &s->parent_span_id));
    }
    for (uint32_t i = 0; i < s->n_links; i++) {
        TRY(put_ref(b, &first, "FOLLOWS_FROM", &s->links[i].trace_id, &s->links[i].span_id));
    }
    TRY(clew__buf_printf(b, "],\"startTime\":%" PRIu64 ",\"duration\":%" PRIu64 ",",
                         s->start_ns / 1000, dur / 1000));
    TRY(span_tags(b, s));
    TRY(clew__buf_puts(b, ",\"logs\":["));
    for (uint32_t i = 0; i < s->n_events; i++) {
        const clew_event_data *ev = &s->events[i];
        bool ffirst = true;
        TRY(clew__buf_printf(b, "%s{\"timestamp\":%" PRIu64 ",\"fields\":[", i ? "," : "",
                             ev->time_ns / 1000));
        TRY(str_tag(b, &ffirst, "event", ev->name.ptr, ev->name.len));
        TRY(attrs_tags(b, &ffirst, &ev->attrs, false));
        TRY(clew__buf_puts(b, "]}"));
    }
    return clew__buf_printf(b, "],\"processID\":\"p%zu\",\"warnings\":null,\"flags\":%u}",
                            process + 1, (unsigned)(s->flags & 0xffu));
}

static const char *state_name(clew_trace_state st)
{
    switch (st) {
    case CLEW_TRACE_PENDING:
        return "pending";
    case CLEW_TRACE_DROPPED:
        return "dropped";
    default:
        return "kept";
    }
}

clew_status clew__jaeger_trace_json(const clew_trace_result *t, clew_buf *out)
{
    /* one process per distinct resource: by pointer first (the store interns), then
     * by content, so equal resources share a process even if copied twice */
    size_t n = t->n_spans;
    size_t *proc = clew__calloc(n ? n : 1, sizeof(*proc));
    const clew_resource **res = clew__calloc(n ? n : 1, sizeof(*res));
    size_t n_res = 0;
    clew_status rc = proc && res ? CLEW_OK : CLEW_ENOMEM;
    static const clew_resource empty;
    for (size_t i = 0; rc == CLEW_OK && i < n; i++) {
        const clew_resource *r = t->spans[i]->resource ? t->spans[i]->resource : &empty;
        size_t j;
        for (j = 0; j < n_res && res[j] != r; j++) {
        }
        if (j == n_res) {
            for (j = 0; j < n_res && !clew__resource_equal(res[j], r); j++) {
            }
        }
        if (j == n_res) {
            res[n_res++] = r;
        }
        proc[i] = j;
    }
    char th[33];
    clew__jaeger_trace_id_hex(&t->trace_id, th);
    if (rc == CLEW_OK) {
        rc = clew__buf_printf(out, "{\"traceID\":\"%s\",\"spans\":[", th);
    }
    for (size_t i = 0; rc == CLEW_OK && i < n; i++) {
        if (i > 0) {
            rc = clew__buf_putc(out, ',');
        }
        if (rc == CLEW_OK) {
            rc = span_json(out, t->spans[i], proc[i]);
        }
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(out, "],\"processes\":{");
    }
    for (size_t j = 0; rc == CLEW_OK && j < n_res; j++) {
        clew_str svc = clew__resource_service(res[j]);
        bool first = true;
        rc = clew__buf_printf(out, "%s\"p%zu\":{\"serviceName\":", j ? "," : "", j + 1);
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(out, svc.ptr, svc.len);
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_puts(out, ",\"tags\":[");
        }
        if (rc == CLEW_OK) {
            rc = attrs_tags(out, &first, &res[j]->attrs, true);
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_puts(out, "]}");
        }
    }
    clew__free(proc);
    clew__free(res);
    TRY(rc);
    TRY(clew__buf_printf(out, "},\"warnings\":null,\"clew\":{\"state\":\"%s\",\"keptReason\":",
                         state_name(t->meta.state)));
    TRY(clew__buf_json_str(out, t->meta.kept_reason.ptr, t->meta.kept_reason.len));
    TRY(clew__buf_puts(out, ",\"adjustedCount\":"));
    if (isfinite(t->meta.adjusted_count)) {
        TRY(put_double(out, t->meta.adjusted_count));
    } else {
        TRY(clew__buf_puts(out, "null"));
    }
    TRY(clew__buf_puts(out, ",\"tenant\":"));
    TRY(clew__buf_json_str(out, t->meta.tenant.ptr, t->meta.tenant.len));
    return clew__buf_puts(out, "}}");
}
