/*
 * src/codec/codec_util.c - see codec_util.h.
 */
#include "codec/codec_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "common/base64.h"
#include "common/try.h"

static size_t path_format(const clew__jpath *p, char *out, size_t cap)
{
    if (p == NULL) {
        return 0;
    }
    size_t n = path_format(p->up, out, cap);
    int w;
    if (p->key != NULL) {
        w = snprintf(out + n, cap - n, "%s%s", n ? "." : "", p->key);
    } else {
        w = snprintf(out + n, cap - n, "[%zu]", p->index);
    }
    if (w < 0) {
        return n;
    }
    n += (size_t)w;
    return n < cap ? n : cap - 1;
}

clew_status clew__jpath_fail(clew_error *err, const clew__jpath *p, const char *what)
{
    char where[200];
    where[0] = '\0';
    path_format(p, where, sizeof(where));
    clew__error_set(err, 0, "%s: %s", where[0] ? where : "(document)", what);
    return CLEW_EPARSE;
}

clew_status clew__json_need_object(clew_error *err, const clew__jpath *p, const json_t *j)
{
    return json_is_object(j) ? CLEW_OK : clew__jpath_fail(err, p, "expected an object");
}

clew_status clew__json_array_alloc(clew_arena *a, clew_error *err, const clew__jpath *p,
                                   const json_t *j, size_t elem, const char *what, void **out,
                                   size_t *n)
{
    *out = NULL;
    *n = 0;
    if (j == NULL || json_is_null(j)) {
        return CLEW_OK;
    }
    if (!json_is_array(j)) {
        return clew__jpath_fail(err, p, "expected an array");
    }
    size_t cnt = json_array_size(j);
    if (cnt == 0) {
        return CLEW_OK;
    }
    if (cnt > UINT32_MAX) {
        char msg[64];
        snprintf(msg, sizeof(msg), "too many %s", what);
        return clew__jpath_fail(err, p, msg);
    }
    *out = clew__arena_alloc(a, cnt * elem);
    if (*out == NULL) {
        return clew__arena_fail(a, err);
    }
    *n = cnt;
    return CLEW_OK;
}

clew_status clew__json_parse_body(const char *data, size_t len, clew_error *err, json_t **out)
{
    json_error_t jerr;
    *out = json_loadb(data != NULL ? data : "", data != NULL ? len : 0, JSON_ALLOW_NUL, &jerr);
    if (*out == NULL) {
        clew__error_set(err, jerr.position > 0 ? (size_t)jerr.position : 0,
                        "JSON syntax error at line %d, column %d (byte %d): %s", jerr.line,
                        jerr.column, jerr.position, jerr.text);
        return CLEW_EPARSE;
    }
    return CLEW_OK;
}

clew_status clew__json_kvs(clew_buf *b, const clew_kv *items, uint32_t n, int depth,
                           const clew__double_style *ds)
{
    CLEW_TRY(clew__buf_putc(b, '{'));
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0) {
            CLEW_TRY(clew__buf_putc(b, ','));
        }
        CLEW_TRY(clew__buf_json_str(b, items[i].key.ptr, items[i].key.len));
        CLEW_TRY(clew__buf_putc(b, ':'));
        CLEW_TRY(clew__json_value(b, &items[i].value, depth + 1, ds));
    }
    return clew__buf_putc(b, '}');
}

clew_status clew__json_value(clew_buf *b, const clew_value *v, int depth,
                             const clew__double_style *ds)
{
    if (depth > CLEW__JSON_VALUE_MAX_DEPTH) {
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
            const char *s = isnan(v->u.d) ? ds->nan : v->u.d > 0 ? ds->inf : ds->neg_inf;
            return clew__buf_printf(b, "\"%s\"", s);
        }
        return clew__buf_double(b, v->u.d, ds->min_prec, ds->json_real);
    case CLEW_VALUE_BYTES:
        return clew__buf_base64(b, (const uint8_t *)v->u.s.ptr, v->u.s.len, true);
    case CLEW_VALUE_ARRAY:
        CLEW_TRY(clew__buf_putc(b, '['));
        for (uint32_t i = 0; i < v->u.array.n; i++) {
            if (i > 0) {
                CLEW_TRY(clew__buf_putc(b, ','));
            }
            CLEW_TRY(clew__json_value(b, &v->u.array.items[i], depth + 1, ds));
        }
        return clew__buf_putc(b, ']');
    case CLEW_VALUE_KVLIST:
        return clew__json_kvs(b, v->u.kvlist.items, v->u.kvlist.n, depth, ds);
    case CLEW_VALUE_EMPTY:
    default:
        return clew__buf_puts(b, "null");
    }
}
