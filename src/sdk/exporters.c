/*
 * src/sdk/exporters.c - the exporters that need no network: none, callback
 * (OTLP protobuf bytes to a user function), console (an indented tree) and
 * file (OTLP/JSON, one ExportTraceServiceRequest per line).
 *
 * Each keeps its encode arena and buffer between calls, so a steady stream of
 * batches allocates nothing after the first few. They are called by one thread
 * at a time (the provider guarantees it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/hex.h"
#include "sdk/sdk_internal.h"

/* Requests larger than this are refused (the OTLP recommendation is 64 MiB). */
#define MAX_REQUEST (64u << 20)

void clew_exporter_destroy(clew_exporter *e)
{
    if (e != NULL && e->ops != NULL && e->ops->destroy != NULL) {
        e->ops->destroy(e);
    }
}

/* ---- none ---- */

static clew_status none_export(clew_exporter *e, const clew_span_data *const *spans, size_t n,
                               uint64_t deadline)
{
    return CLEW_OK;
}

static void plain_destroy(clew_exporter *e)
{
    clew__free(e);
}

static const clew__exporter_ops none_ops = {none_export, NULL, plain_destroy};

clew_status clew_exporter_none(clew_exporter **out)
{
    if (out == NULL) {
        return CLEW_EINVAL;
    }
    clew_exporter *e = clew__calloc(1, sizeof(*e));
    if (e == NULL) {
        return CLEW_ENOMEM;
    }
    e->ops = &none_ops;
    *out = e;
    return CLEW_OK;
}

/* ---- callback and file: encode then hand the bytes over ---- */

typedef struct enc_exporter {
    clew_exporter base;
    clew_arena arena;
    clew_buf buf;
    clew_export_fn fn;
    void *ud;
    FILE *file; /* file exporter */
} enc_exporter;

static void enc_destroy(clew_exporter *e)
{
    enc_exporter *x = (enc_exporter *)e;
    if (x->file != NULL) {
        fclose(x->file);
    }
    clew__arena_deinit(&x->arena);
    clew__buf_deinit(&x->buf);
    clew__free(x);
}

static clew_status enc_export(clew_exporter *e, const clew_span_data *const *spans, size_t n,
                              uint64_t deadline)
{
    enc_exporter *x = (enc_exporter *)e;
    clew__arena_reset(&x->arena);
    clew__buf_reset(&x->buf);
    clew_status rc = clew__encode_spans(spans, n, x->file != NULL, &x->arena, &x->buf);
    if (rc != CLEW_OK) {
        clew__exporter_log(e, CLEW_LOG_ERROR, "clew: encoding %zu spans failed: %s", n,
                           clew_strerror(rc));
        return rc;
    }
    if (x->file != NULL) {
        if (clew__buf_putc(&x->buf, '\n') != CLEW_OK ||
            fwrite(x->buf.data, 1, x->buf.len, x->file) != x->buf.len || fflush(x->file) != 0) {
            return CLEW_EIO;
        }
        return CLEW_OK;
    }
    return x->fn(x->ud, (const uint8_t *)x->buf.data, x->buf.len);
}

static const clew__exporter_ops enc_ops = {enc_export, NULL, enc_destroy};

static clew_status enc_create(enc_exporter **out)
{
    enc_exporter *x = clew__calloc(1, sizeof(*x));
    if (x == NULL) {
        return CLEW_ENOMEM;
    }
    x->base.ops = &enc_ops;
    clew__arena_init(&x->arena, 64 * 1024, 0);
    clew__buf_init(&x->buf, MAX_REQUEST);
    *out = x;
    return CLEW_OK;
}

clew_status clew_exporter_callback(clew_export_fn fn, void *ud, clew_exporter **out)
{
    if (fn == NULL || out == NULL) {
        return CLEW_EINVAL;
    }
    enc_exporter *x;
    clew_status rc = enc_create(&x);
    if (rc != CLEW_OK) {
        return rc;
    }
    x->fn = fn;
    x->ud = ud;
    *out = &x->base;
    return CLEW_OK;
}

clew_status clew_exporter_file(const char *path, clew_exporter **out)
{
    if (path == NULL || out == NULL) {
        return CLEW_EINVAL;
    }
    FILE *f = fopen(path, "ae");
    if (f == NULL) {
        return CLEW_EIO;
    }
    enc_exporter *x;
    clew_status rc = enc_create(&x);
    if (rc != CLEW_OK) {
        fclose(f);
        return rc;
    }
    x->file = f;
    *out = &x->base;
    return CLEW_OK;
}

/* ---- console ---- */

typedef struct console_exporter {
    clew_exporter base;
    FILE *f;
    clew_buf buf;
} console_exporter;

static void console_destroy(clew_exporter *e)
{
    console_exporter *x = (console_exporter *)e;
    clew__buf_deinit(&x->buf);
    clew__free(x);
}

static clew_status put_value(clew_buf *b, const clew_value *v)
{
    switch (v->type) {
    case CLEW_VALUE_STRING:
        return clew__buf_json_str(b, v->u.s.ptr, v->u.s.len);
    case CLEW_VALUE_BOOL:
        return clew__buf_puts(b, v->u.b ? "true" : "false");
    case CLEW_VALUE_INT:
        return clew__buf_printf(b, "%" PRId64, v->u.i);
    case CLEW_VALUE_DOUBLE:
        return clew__buf_printf(b, "%g", v->u.d);
    case CLEW_VALUE_BYTES: {
        clew_status rc = clew__buf_puts(b, "0x");
        for (size_t i = 0; i < v->u.s.len && rc == CLEW_OK; i++) {
            rc = clew__buf_printf(b, "%02x", (unsigned char)v->u.s.ptr[i]);
        }
        return rc;
    }
    case CLEW_VALUE_ARRAY: {
        clew_status rc = clew__buf_putc(b, '[');
        for (uint32_t i = 0; i < v->u.array.n && rc == CLEW_OK; i++) {
            if (i > 0) {
                rc = clew__buf_puts(b, ", ");
            }
            if (rc == CLEW_OK) {
                rc = put_value(b, &v->u.array.items[i]);
            }
        }
        return rc == CLEW_OK ? clew__buf_putc(b, ']') : rc;
    }
    case CLEW_VALUE_KVLIST: {
        /* the SDK builds kvlists at most CLEW_ATTR_MAX_DEPTH deep, so this recursion is bounded */
        clew_status rc = clew__buf_putc(b, '{');
        for (uint32_t i = 0; i < v->u.kvlist.n && rc == CLEW_OK; i++) {
            const clew_kv *kv = &v->u.kvlist.items[i];
            rc = clew__buf_printf(b, "%s%.*s: ", i > 0 ? ", " : "", (int)kv->key.len, kv->key.ptr);
            if (rc == CLEW_OK) {
                rc = put_value(b, &kv->value);
            }
        }
        return rc == CLEW_OK ? clew__buf_putc(b, '}') : rc;
    }
    default:
        return clew__buf_puts(b, "(empty)");
    }
}

static clew_status put_attrs(clew_buf *b, const clew_attrs *a, int indent)
{
    clew_status rc = CLEW_OK;
    for (uint32_t i = 0; i < a->n && rc == CLEW_OK; i++) {
        rc = clew__buf_printf(b, "%*s%.*s = ", indent, "", (int)a->items[i].key.len,
                              a->items[i].key.ptr);
        if (rc == CLEW_OK) {
            rc = put_value(b, &a->items[i].value);
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_putc(b, '\n');
        }
    }
    if (rc == CLEW_OK && a->dropped > 0) {
        rc = clew__buf_printf(b, "%*s(%u attributes dropped)\n", indent, "", a->dropped);
    }
    return rc;
}

static clew_status put_span(clew_buf *b, const clew_span_data *const *spans, size_t n, size_t i,
                            int depth)
{
    const clew_span_data *s = spans[i];
    char sid[17], dur[32];
    clew__span_id_hex(&s->span_id, sid);
    clew__duration_format(s->end_ns - s->start_ns, dur, sizeof(dur));
    int ind = 2 + depth * 4;
    clew_status rc = clew__buf_printf(
        b, "%*s%.*s [%s] %s span=%s status=%s%s%.*s\n", ind, "", (int)s->name.len, s->name.ptr,
        clew__kind_name(s->kind), dur, sid, clew__status_code_name(s->status_code),
        s->status_message.len ? ": " : "", (int)s->status_message.len, s->status_message.ptr);
    if (rc == CLEW_OK) {
        rc = put_attrs(b, &s->attrs, ind + 4);
    }
    for (uint32_t e = 0; e < s->n_events && rc == CLEW_OK; e++) {
        char at[32];
        clew__duration_format(s->events[e].time_ns - s->start_ns, at, sizeof(at));
        rc = clew__buf_printf(b, "%*s* %.*s at +%s\n", ind + 4, "", (int)s->events[e].name.len,
                              s->events[e].name.ptr, at);
        if (rc == CLEW_OK) {
            rc = put_attrs(b, &s->events[e].attrs, ind + 8);
        }
    }
    for (size_t j = 0; j < n && rc == CLEW_OK && depth < 64; j++) {
        if (j != i && memcmp(&spans[j]->trace_id, &s->trace_id, sizeof(s->trace_id)) == 0 &&
            memcmp(&spans[j]->parent_span_id, &s->span_id, sizeof(s->span_id)) == 0) {
            rc = put_span(b, spans, n, j, depth + 1);
        }
    }
    return rc;
}

static bool parent_in_batch(const clew_span_data *const *spans, size_t n, size_t i)
{
    if (clew__span_id_is_zero(&spans[i]->parent_span_id)) {
        return false;
    }
    for (size_t j = 0; j < n; j++) {
        if (j != i && memcmp(&spans[j]->trace_id, &spans[i]->trace_id, 16) == 0 &&
            memcmp(&spans[j]->span_id, &spans[i]->parent_span_id, 8) == 0) {
            return true;
        }
    }
    return false;
}

static clew_status console_export(clew_exporter *e, const clew_span_data *const *spans, size_t n,
                                  uint64_t deadline)
{
    console_exporter *x = (console_exporter *)e;
    clew__buf_reset(&x->buf);
    clew_status rc = CLEW_OK;
    for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
        bool first_of_trace = true;
        for (size_t j = 0; j < i; j++) {
            if (memcmp(&spans[j]->trace_id, &spans[i]->trace_id, 16) == 0) {
                first_of_trace = false;
                break;
            }
        }
        if (!first_of_trace) {
            continue;
        }
        char tid[33];
        clew__trace_id_hex(&spans[i]->trace_id, tid);
        rc = clew__buf_printf(&x->buf, "trace %s\n", tid);
        for (size_t j = i; j < n && rc == CLEW_OK; j++) {
            if (memcmp(&spans[j]->trace_id, &spans[i]->trace_id, 16) == 0 &&
                !parent_in_batch(spans, n, j)) {
                rc = put_span(&x->buf, spans, n, j, 0);
            }
        }
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    if (fwrite(x->buf.data, 1, x->buf.len, x->f) != x->buf.len) {
        return CLEW_EIO;
    }
    fflush(x->f);
    return CLEW_OK;
}

static const clew__exporter_ops console_ops = {console_export, NULL, console_destroy};

clew_status clew_exporter_console(FILE *f, clew_exporter **out)
{
    if (f == NULL || out == NULL) {
        return CLEW_EINVAL;
    }
    console_exporter *x = clew__calloc(1, sizeof(*x));
    if (x == NULL) {
        return CLEW_ENOMEM;
    }
    x->base.ops = &console_ops;
    x->f = f;
    clew__buf_init(&x->buf, MAX_REQUEST);
    *out = &x->base;
    return CLEW_OK;
}
