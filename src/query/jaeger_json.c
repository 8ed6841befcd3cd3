/*
 * src/query/jaeger_json.c - Jaeger v1 trace JSON; see jaeger_json.h.
 */
#include "query/jaeger_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_util.h"
#include "common/alloc.h"
#include "common/base64.h"
#include "common/hex.h"
#include "common/try.h"

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

/* Shortest text that reads back as the same double (finite values only); from 15
 * digits up, so that round numbers read as people write them ("100", not "1e+02"). */
static clew_status put_double(clew_buf *b, double d)
{
    return clew__buf_double(b, d, 15, false);
}

static const char *nonfinite_text(double d)
{
    return isnan(d) ? "NaN" : (d > 0 ? "+Inf" : "-Inf");
}

/* The JSON form of a value is the text of array and kvlist tags (what Jaeger's
 * translation shows for them); doubles read as in the other tags. */
static const clew__double_style json_doubles = {15, false, "NaN", "+Inf", "-Inf"};

static clew_status tag_open(clew_buf *b, bool *first, const char *key, size_t klen,
                            const char *type)
{
    if (!*first) {
        CLEW_TRY(clew__buf_putc(b, ','));
    }
    *first = false;
    CLEW_TRY(clew__buf_puts(b, "{\"key\":"));
    CLEW_TRY(clew__buf_json_str(b, key, klen));
    return clew__buf_printf(b, ",\"type\":\"%s\",\"value\":", type);
}

static clew_status str_tag(clew_buf *b, bool *first, const char *key, const char *val, size_t len)
{
    CLEW_TRY(tag_open(b, first, key, strlen(key), "string"));
    CLEW_TRY(clew__buf_json_str(b, val, len));
    return clew__buf_putc(b, '}');
}

static clew_status value_tag(clew_buf *b, bool *first, clew_str key, const clew_value *v)
{
    switch (v->type) {
    case CLEW_VALUE_STRING:
        CLEW_TRY(tag_open(b, first, key.ptr, key.len, "string"));
        CLEW_TRY(clew__buf_json_str(b, v->u.s.ptr, v->u.s.len));
        break;
    case CLEW_VALUE_BOOL:
        CLEW_TRY(tag_open(b, first, key.ptr, key.len, "bool"));
        CLEW_TRY(clew__buf_puts(b, v->u.b ? "true" : "false"));
        break;
    case CLEW_VALUE_INT:
        CLEW_TRY(tag_open(b, first, key.ptr, key.len, "int64"));
        if (v->u.i > JS_SAFE_INT || v->u.i < -JS_SAFE_INT) {
            CLEW_TRY(clew__buf_printf(b, "\"%" PRId64 "\"", v->u.i));
        } else {
            CLEW_TRY(clew__buf_printf(b, "%" PRId64, v->u.i));
        }
        break;
    case CLEW_VALUE_DOUBLE:
        if (isfinite(v->u.d)) {
            CLEW_TRY(tag_open(b, first, key.ptr, key.len, "float64"));
            CLEW_TRY(put_double(b, v->u.d));
        } else {
            /* JSON has no NaN or Inf: send the text, typed as what it now is */
            CLEW_TRY(tag_open(b, first, key.ptr, key.len, "string"));
            CLEW_TRY(clew__buf_printf(b, "\"%s\"", nonfinite_text(v->u.d)));
        }
        break;
    case CLEW_VALUE_BYTES:
        CLEW_TRY(tag_open(b, first, key.ptr, key.len, "binary"));
        CLEW_TRY(clew__buf_base64(b, (const uint8_t *)v->u.s.ptr, v->u.s.len, true));
        break;
    case CLEW_VALUE_ARRAY:
    case CLEW_VALUE_KVLIST: {
        /* render into a side buffer, then embed that text as a JSON string */
        clew_buf tmp;
        clew__buf_init(&tmp, b->max);
        clew_status rc = clew__json_value(&tmp, v, 0, &json_doubles);
        if (rc == CLEW_OK) {
            rc = tag_open(b, first, key.ptr, key.len, "string");
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(b, tmp.data ? tmp.data : "", tmp.len);
        }
        clew__buf_deinit(&tmp);
        CLEW_TRY(rc);
        break;
    }
    case CLEW_VALUE_EMPTY:
        CLEW_TRY(tag_open(b, first, key.ptr, key.len, "string"));
        CLEW_TRY(clew__buf_puts(b, "\"\""));
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
        CLEW_TRY(value_tag(b, first, kv->key, &kv->value));
    }
    return CLEW_OK;
}

static clew_status span_tags(clew_buf *b, const clew_span_data *s)
{
    bool first = true;
    CLEW_TRY(clew__buf_puts(b, "\"tags\":["));
    CLEW_TRY(attrs_tags(b, &first, &s->attrs, false));
    if (s->kind >= CLEW_KIND_SERVER && s->kind <= CLEW_KIND_CONSUMER) {
        const char *k = clew__kind_name(s->kind);
        CLEW_TRY(str_tag(b, &first, "span.kind", k, strlen(k)));
    }
    if (s->status_code == CLEW_STATUS_OK) {
        CLEW_TRY(str_tag(b, &first, "otel.status_code", "OK", 2));
    } else if (s->status_code == CLEW_STATUS_ERROR) {
        CLEW_TRY(str_tag(b, &first, "otel.status_code", "ERROR", 5));
        CLEW_TRY(tag_open(b, &first, "error", 5, "bool"));
        CLEW_TRY(clew__buf_puts(b, "true}"));
    }
    if (s->status_message.len > 0) {
        CLEW_TRY(str_tag(b, &first, "otel.status_description", s->status_message.ptr,
                         s->status_message.len));
    }
    if (s->scope != NULL && s->scope->name.len > 0) {
        CLEW_TRY(str_tag(b, &first, "otel.scope.name", s->scope->name.ptr, s->scope->name.len));
    }
    if (s->scope != NULL && s->scope->version.len > 0) {
        CLEW_TRY(
            str_tag(b, &first, "otel.scope.version", s->scope->version.ptr, s->scope->version.len));
    }
    if (s->trace_state.len > 0) {
        CLEW_TRY(str_tag(b, &first, "w3c.tracestate", s->trace_state.ptr, s->trace_state.len));
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
        CLEW_TRY(clew__buf_putc(b, ','));
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
    CLEW_TRY(
        clew__buf_printf(b, "{\"traceID\":\"%s\",\"spanID\":\"%s\",\"operationName\":", th, sh));
    CLEW_TRY(clew__buf_json_str(b, s->name.ptr, s->name.len));
    CLEW_TRY(clew__buf_puts(b, ",\"references\":["));
    bool first = true;
    if (!clew__span_id_is_zero(&s->parent_span_id)) {
        CLEW_TRY(put_ref(b, &first, "CHILD_OF", &s->trace_id, &s->parent_span_id));
    }
    for (uint32_t i = 0; i < s->n_links; i++) {
        CLEW_TRY(put_ref(b, &first, "FOLLOWS_FROM", &s->links[i].trace_id, &s->links[i].span_id));
    }
    CLEW_TRY(clew__buf_printf(b, "],\"startTime\":%" PRIu64 ",\"duration\":%" PRIu64 ",",
                              s->start_ns / 1000, dur / 1000));
    CLEW_TRY(span_tags(b, s));
    CLEW_TRY(clew__buf_puts(b, ",\"logs\":["));
    for (uint32_t i = 0; i < s->n_events; i++) {
        const clew_event_data *ev = &s->events[i];
        bool ffirst = true;
        CLEW_TRY(clew__buf_printf(b, "%s{\"timestamp\":%" PRIu64 ",\"fields\":[", i ? "," : "",
                                  ev->time_ns / 1000));
        CLEW_TRY(str_tag(b, &ffirst, "event", ev->name.ptr, ev->name.len));
        CLEW_TRY(attrs_tags(b, &ffirst, &ev->attrs, false));
        CLEW_TRY(clew__buf_puts(b, "]}"));
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
    CLEW_TRY(rc);
    CLEW_TRY(clew__buf_puts(out, "},\"warnings\":null,\"clew\":"));
    CLEW_TRY(clew__trace_meta_json(&t->meta, out));
    return clew__buf_putc(out, '}');
}

clew_status clew__trace_meta_json(const clew_trace_meta *m, clew_buf *out)
{
    CLEW_TRY(clew__buf_printf(out, "{\"state\":\"%s\",\"keptReason\":", state_name(m->state)));
    CLEW_TRY(clew__buf_json_str(out, m->kept_reason.ptr, m->kept_reason.len));
    CLEW_TRY(clew__buf_puts(out, ",\"adjustedCount\":"));
    if (isfinite(m->adjusted_count)) {
        CLEW_TRY(put_double(out, m->adjusted_count));
    } else {
        CLEW_TRY(clew__buf_puts(out, "null"));
    }
    CLEW_TRY(clew__buf_puts(out, ",\"tenant\":"));
    CLEW_TRY(clew__buf_json_str(out, m->tenant.ptr, m->tenant.len));
    return clew__buf_putc(out, '}');
}
