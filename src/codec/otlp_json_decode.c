/*
 * src/codec/otlp_json_decode.c - OTLP/JSON decoder (jansson).
 *
 * Part of clew_server_lib. jansson parses the whole body into its own tree, which
 * is freed before returning, so every string the batch keeps is copied into the
 * caller's arena. The mapping read (wire.md section 4.1, proto3 JSON):
 *   - ids are hex strings of 32 / 16 digits in either case; a span whose ids are
 *     missing, the wrong length, not hex or all zero is rejected on its own (counted
 *     in batch->rejected), the rest of the request is kept; a link with bad ids is
 *     dropped and counted in the span's dropped_links;
 *   - 64-bit integers are JSON numbers or decimal strings, 32-bit ones too;
 *   - enums are integers or their proto names ("SPAN_KIND_SERVER");
 *   - doubles are numbers, numeric strings or "NaN" / "Infinity" / "-Infinity";
 *   - bytesValue is base64 (standard or URL-safe alphabet, padding optional);
 *   - keys are lowerCamelCase, the proto snake_case names are accepted too, unknown
 *     keys are ignored and null stands for "not set".
 * A value of the wrong JSON type fails the request with CLEW_EPARSE and a message
 * naming the path, e.g. "resourceSpans[0].scopeSpans[1].spans[2].name: expected a
 * string"; syntax errors report jansson's line, column and byte position.
 *
 * Nesting: jansson refuses documents deeper than JSON_PARSER_MAX_DEPTH (2048), and
 * AnyValue nesting is limited to 64 here, as in the protobuf decoder.
 *
 * Thread-safety: no shared state.
 */
#include "codec/codec_util.h"
#include "codec/otlp.h"
#include "common/base64.h"
#include "common/hex.h"
#include "common/reject.h"
#include "common/try.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUE_DEPTH 64

typedef clew__jpath path;

typedef struct jdec {
    clew_arena *arena;
    clew_error *err;
    clew_batch *batch;
    int value_depth;
} jdec;

static const clew_str empty_str = {"", 0};

static clew_status fail(jdec *d, const path *p, const char *what)
{
    return clew__jpath_fail(d->err, p, what);
}

static clew_status fail_alloc(jdec *d)
{
    return clew__arena_fail(d->arena, d->err);
}

/* Allocates the elements of an array member; see clew__json_array_alloc. */
static clew_status get_array(jdec *d, const path *p, const json_t *j, size_t elem, const char *what,
                             void **out, size_t *n)
{
    return clew__json_array_alloc(d->arena, d->err, p, j, elem, what, out, n);
}

/* True when `k` is the camelCase or the snake_case name. */
static bool is_key(const char *k, const char *camel, const char *snake)
{
    return strcmp(k, camel) == 0 || (snake != NULL && strcmp(k, snake) == 0);
}

/* ---- scalar readers ---- */

static clew_status get_str(jdec *d, const path *p, const json_t *j, clew_str *out)
{
    if (json_is_null(j)) {
        *out = empty_str;
        return CLEW_OK;
    }
    if (!json_is_string(j)) {
        return fail(d, p, "expected a string");
    }
    size_t len = json_string_length(j);
    if (len == 0) {
        *out = empty_str;
        return CLEW_OK;
    }
    *out = clew__arena_strdup(d->arena, json_string_value(j), len);
    return out->ptr != NULL ? CLEW_OK : fail_alloc(d);
}

/* Parses a decimal integer string; magnitudes up to UINT64_MAX. */
static bool parse_dec(const char *s, size_t len, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    *neg = false;
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        *neg = s[0] == '-';
        i = 1;
    }
    if (i == len) {
        return false;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10) {
            return false;
        }
        v = v * 10 + dgt;
    }
    *mag = v;
    return true;
}

/* An integer given as a JSON integer, an integral real, or a decimal string, as
 * sign and magnitude. */
static clew_status get_int_parts(jdec *d, const path *p, const json_t *j, bool *neg, uint64_t *mag)
{
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        *neg = v < 0;
        *mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
        return CLEW_OK;
    }
    if (json_is_real(j)) {
        double v = json_real_value(j);
        if (v != floor(v) || fabs(v) >= 18446744073709551616.0) {
            return fail(d, p, "expected an integer");
        }
        *neg = v < 0;
        *mag = (uint64_t)fabs(v);
        return CLEW_OK;
    }
    if (json_is_string(j)) {
        if (!parse_dec(json_string_value(j), json_string_length(j), neg, mag)) {
            return fail(d, p, "expected a decimal integer string");
        }
        return CLEW_OK;
    }
    return fail(d, p, "expected an integer or a decimal string");
}

static clew_status get_u64(jdec *d, const path *p, const json_t *j, uint64_t *out)
{
    bool neg = false;
    uint64_t mag = 0;
    if (json_is_null(j)) {
        *out = 0;
        return CLEW_OK;
    }
    CLEW_TRY(get_int_parts(d, p, j, &neg, &mag));
    if (neg && mag != 0) {
        return fail(d, p, "must not be negative");
    }
    *out = mag;
    return CLEW_OK;
}

static clew_status get_u32(jdec *d, const path *p, const json_t *j, uint32_t *out)
{
    uint64_t v = 0;
    CLEW_TRY(get_u64(d, p, j, &v));
    if (v > UINT32_MAX) {
        return fail(d, p, "out of range for a 32-bit unsigned integer");
    }
    *out = (uint32_t)v;
    return CLEW_OK;
}

static clew_status get_i64(jdec *d, const path *p, const json_t *j, int64_t *out)
{
    bool neg = false;
    uint64_t mag = 0;
    CLEW_TRY(get_int_parts(d, p, j, &neg, &mag));
    if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX) {
        return fail(d, p, "out of range for a 64-bit integer");
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return CLEW_OK;
}

static clew_status get_double(jdec *d, const path *p, const json_t *j, double *out)
{
    if (json_is_real(j)) {
        *out = json_real_value(j);
        return CLEW_OK;
    }
    if (json_is_integer(j)) {
        *out = (double)json_integer_value(j);
        return CLEW_OK;
    }
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        size_t len = json_string_length(j);
        if (strcmp(s, "NaN") == 0) {
            *out = NAN;
            return CLEW_OK;
        }
        if (strcmp(s, "Infinity") == 0) {
            *out = INFINITY;
            return CLEW_OK;
        }
        if (strcmp(s, "-Infinity") == 0) {
            *out = -INFINITY;
            return CLEW_OK;
        }
        /* a number in a string: digits, sign, point and exponent only (strtod
         * alone would also take "inf", hex floats and leading blanks) */
        bool ok = len > 0 && len < 64;
        for (size_t i = 0; ok && i < len; i++) {
            ok = strchr("0123456789+-.eE", s[i]) != NULL && s[i] != '\0';
        }
        char *end = NULL;
        if (ok) {
            double v = strtod(s, &end);
            if (end == s + len) {
                *out = v;
                return CLEW_OK;
            }
        }
        return fail(d, p, "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\"");
    }
    return fail(d, p, "expected a number");
}

/* An enum given as an integer or as one of `names` (index = value). */
static clew_status get_enum(jdec *d, const path *p, const json_t *j, const char *const *names,
                            size_t n_names, int *out)
{
    if (json_is_null(j)) {
        *out = 0;
        return CLEW_OK;
    }
    if (json_is_string(j)) {
        for (size_t i = 0; i < n_names; i++) {
            if (strcmp(json_string_value(j), names[i]) == 0) {
                *out = (int)i;
                return CLEW_OK;
            }
        }
        return fail(d, p, "unknown enum name");
    }
    if (!json_is_integer(j)) {
        return fail(d, p, "expected an enum integer or name");
    }
    json_int_t v = json_integer_value(j);
    /* values this version does not know (newer OTLP) read as 0, as in protobuf */
    *out = v >= 0 && (size_t)v < n_names ? (int)v : 0;
    return CLEW_OK;
}

static clew_status get_base64(jdec *d, const path *p, const json_t *j, clew_str *out)
{
    if (!json_is_string(j)) {
        return fail(d, p, "expected a base64 string");
    }
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    size_t n = clew__base64_decoded_len(s, &len);
    if (n == SIZE_MAX) {
        return fail(d, p, "invalid base64 length");
    }
    char *o = clew__arena_alloc(d->arena, n + 1);
    if (o == NULL) {
        return fail_alloc(d);
    }
    if (!clew__base64_decode(s, len, (uint8_t *)o)) {
        return fail(d, p, "invalid base64 character");
    }
    o[n] = '\0';
    *out = (clew_str){o, n};
    return CLEW_OK;
}

/* Hex id of exactly n bytes. Returns a reason it is unusable, or NULL when fine.
 * JSON null and "" count as missing (len 0). */
static clew_status get_hex_id(jdec *d, const path *p, const json_t *j, uint8_t *out, size_t n,
                              const char **bad)
{
    *bad = NULL;
    size_t len = 0;
    const char *s = "";
    if (!json_is_null(j)) {
        if (!json_is_string(j)) {
            return fail(d, p, "expected a hex string");
        }
        s = json_string_value(j);
        len = json_string_length(j);
    }
    if (len != 2 * n) {
        *bad = n == 16 ? "must be 32 hex digits" : "must be 16 hex digits";
    } else if (!clew__hex_decode(s, n, out)) {
        *bad = "is not hex";
    }
    return CLEW_OK;
}

/* ---- messages ---- */

static clew_status decode_kvs(jdec *d, const path *p, const json_t *j, clew_kv **items,
                              uint32_t *n);

static clew_status decode_any(jdec *d, const path *p, const json_t *j, clew_value *v)
{
    v->type = CLEW_VALUE_EMPTY;
    if (json_is_null(j)) {
        return CLEW_OK;
    }
    if (!json_is_object(j)) {
        return fail(d, p, "expected an object");
    }
    if (d->value_depth >= MAX_VALUE_DEPTH) {
        return fail(d, p, "values nested more than 64 deep");
    }
    d->value_depth++;
    clew_status rc = CLEW_OK;
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path here = {p, k, 0};
        if (json_is_null(m)) {
            continue;
        }
        if (is_key(k, "stringValue", "string_value")) {
            v->type = CLEW_VALUE_STRING;
            rc = get_str(d, &here, m, &v->u.s);
        } else if (is_key(k, "boolValue", "bool_value")) {
            if (!json_is_boolean(m)) {
                rc = fail(d, &here, "expected true or false");
            } else {
                v->type = CLEW_VALUE_BOOL;
                v->u.b = json_is_true(m);
            }
        } else if (is_key(k, "intValue", "int_value")) {
            v->type = CLEW_VALUE_INT;
            rc = get_i64(d, &here, m, &v->u.i);
        } else if (is_key(k, "doubleValue", "double_value")) {
            v->type = CLEW_VALUE_DOUBLE;
            rc = get_double(d, &here, m, &v->u.d);
        } else if (is_key(k, "bytesValue", "bytes_value")) {
            v->type = CLEW_VALUE_BYTES;
            rc = get_base64(d, &here, m, &v->u.s);
        } else if (is_key(k, "arrayValue", "array_value") ||
                   is_key(k, "kvlistValue", "kvlist_value")) {
            bool is_array = k[0] == 'a';
            if (!json_is_object(m)) {
                rc = fail(d, &here, "expected an object");
                break;
            }
            json_t *vals = json_object_get(m, "values");
            path vp = {&here, "values", 0};
            if (is_array) {
                v->type = CLEW_VALUE_ARRAY;
                v->u.array.items = NULL;
                v->u.array.n = 0;
                if (vals != NULL && !json_is_null(vals)) {
                    if (!json_is_array(vals)) {
                        rc = fail(d, &vp, "expected an array");
                        break;
                    }
                    size_t n = json_array_size(vals);
                    if (n > 0) {
                        v->u.array.items = clew__arena_alloc(d->arena, n * sizeof(clew_value));
                        if (v->u.array.items == NULL) {
                            rc = fail_alloc(d);
                            break;
                        }
                    }
                    for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
                        path ip = {&vp, NULL, i};
                        rc = decode_any(d, &ip, json_array_get(vals, i), &v->u.array.items[i]);
                        v->u.array.n++;
                    }
                }
            } else {
                v->type = CLEW_VALUE_KVLIST;
                v->u.kvlist.items = NULL;
                v->u.kvlist.n = 0;
                if (vals != NULL) {
                    rc = decode_kvs(d, &vp, vals, &v->u.kvlist.items, &v->u.kvlist.n);
                }
            }
        }
        if (rc != CLEW_OK) {
            break;
        }
    }
    d->value_depth--;
    return rc;
}

static clew_status decode_kvs(jdec *d, const path *p, const json_t *j, clew_kv **items, uint32_t *n)
{
    *n = 0;
    size_t cnt;
    void *arr;
    CLEW_TRY(get_array(d, p, j, sizeof(clew_kv), "attributes", &arr, &cnt));
    *items = arr;
    clew_kv *kvs = arr;
    for (size_t i = 0; i < cnt; i++) {
        path ip = {p, NULL, i};
        const json_t *o = json_array_get(j, i);
        if (!json_is_object(o)) {
            return fail(d, &ip, "expected an object");
        }
        clew_kv *kv = &kvs[i];
        kv->key = empty_str;
        kv->value.type = CLEW_VALUE_EMPTY;
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)o, k, m)
        {
            path kp = {&ip, k, 0};
            if (strcmp(k, "key") == 0) {
                CLEW_TRY(get_str(d, &kp, m, &kv->key));
            } else if (strcmp(k, "value") == 0) {
                CLEW_TRY(decode_any(d, &kp, m, &kv->value));
            }
        }
        (*n)++;
    }
    return CLEW_OK;
}

static clew_status decode_attrs_member(jdec *d, const path *p, const char *k, const json_t *m,
                                       clew_attrs *a, bool *handled)
{
    *handled = true;
    if (strcmp(k, "attributes") == 0) {
        return decode_kvs(d, p, m, &a->items, &a->n);
    }
    if (is_key(k, "droppedAttributesCount", "dropped_attributes_count")) {
        return get_u32(d, p, m, &a->dropped);
    }
    *handled = false;
    return CLEW_OK;
}

static clew_status need_object(jdec *d, const path *p, const json_t *j)
{
    return clew__json_need_object(d->err, p, j);
}

static clew_status decode_resource(jdec *d, const path *p, const json_t *j, clew_resource *r)
{
    if (json_is_null(j)) {
        return CLEW_OK;
    }
    CLEW_TRY(need_object(d, p, j));
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        bool handled;
        CLEW_TRY(decode_attrs_member(d, &kp, k, m, &r->attrs, &handled));
    }
    return CLEW_OK;
}

static clew_status decode_scope(jdec *d, const path *p, const json_t *j, clew_scope *s)
{
    if (json_is_null(j)) {
        return CLEW_OK;
    }
    CLEW_TRY(need_object(d, p, j));
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        bool handled;
        CLEW_TRY(decode_attrs_member(d, &kp, k, m, &s->attrs, &handled));
        if (handled) {
            continue;
        }
        if (strcmp(k, "name") == 0) {
            CLEW_TRY(get_str(d, &kp, m, &s->name));
        } else if (strcmp(k, "version") == 0) {
            CLEW_TRY(get_str(d, &kp, m, &s->version));
        }
    }
    return CLEW_OK;
}

/* An array member: checks the type, returns its size (0 for null). */
static clew_status decode_events(jdec *d, const path *p, const json_t *j, clew_span_data *s)
{
    size_t n;
    s->n_events = 0;
    void *arr;
    CLEW_TRY(get_array(d, p, j, sizeof(clew_event_data), "events", &arr, &n));
    s->events = arr;
    for (size_t i = 0; i < n; i++) {
        path ip = {p, NULL, i};
        const json_t *o = json_array_get(j, i);
        CLEW_TRY(need_object(d, &ip, o));
        clew_event_data *e = &s->events[i];
        *e = (clew_event_data){0, empty_str, {NULL, 0, 0}};
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)o, k, m)
        {
            path kp = {&ip, k, 0};
            bool handled;
            CLEW_TRY(decode_attrs_member(d, &kp, k, m, &e->attrs, &handled));
            if (handled) {
                continue;
            }
            if (is_key(k, "timeUnixNano", "time_unix_nano")) {
                CLEW_TRY(get_u64(d, &kp, m, &e->time_ns));
            } else if (strcmp(k, "name") == 0) {
                CLEW_TRY(get_str(d, &kp, m, &e->name));
            }
        }
        s->n_events++;
    }
    return CLEW_OK;
}

static clew_status decode_links(jdec *d, const path *p, const json_t *j, clew_span_data *s,
                                uint32_t *bad_links)
{
    size_t n;
    s->n_links = 0;
    void *arr;
    CLEW_TRY(get_array(d, p, j, sizeof(clew_link_data), "links", &arr, &n));
    s->links = arr;
    for (size_t i = 0; i < n; i++) {
        path ip = {p, NULL, i};
        const json_t *o = json_array_get(j, i);
        CLEW_TRY(need_object(d, &ip, o));
        clew_link_data *l = &s->links[s->n_links];
        memset(l, 0, sizeof(*l));
        l->trace_state = empty_str;
        const char *bad_t = "must be 32 hex digits", *bad_s = "must be 16 hex digits";
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)o, k, m)
        {
            path kp = {&ip, k, 0};
            bool handled;
            CLEW_TRY(decode_attrs_member(d, &kp, k, m, &l->attrs, &handled));
            if (handled) {
                continue;
            }
            if (is_key(k, "traceId", "trace_id")) {
                CLEW_TRY(get_hex_id(d, &kp, m, l->trace_id.bytes, 16, &bad_t));
            } else if (is_key(k, "spanId", "span_id")) {
                CLEW_TRY(get_hex_id(d, &kp, m, l->span_id.bytes, 8, &bad_s));
            } else if (is_key(k, "traceState", "trace_state")) {
                CLEW_TRY(get_str(d, &kp, m, &l->trace_state));
            } else if (strcmp(k, "flags") == 0) {
                CLEW_TRY(get_u32(d, &kp, m, &l->flags));
            }
        }
        if (bad_t == NULL && bad_s == NULL) {
            s->n_links++;
        } else {
            /* a link we cannot represent is dropped and counted, not the span */
            (*bad_links)++;
        }
    }
    return CLEW_OK;
}

typedef struct span_pos {
    size_t span, scope, rs;
} span_pos;

static clew_status reject(jdec *d, const span_pos *pos, const char *field, const char *why)
{
    return clew__reject_note(&d->batch->rejected, &d->batch->reject_reason, d->arena, d->err,
                             "span %zu of scope %zu of resource %zu: %s %s", pos->span, pos->scope,
                             pos->rs, field, why);
}

static const char *const kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
static const char *const code_names[] = {
    "STATUS_CODE_UNSET",
    "STATUS_CODE_OK",
    "STATUS_CODE_ERROR",
};

static clew_status decode_status(jdec *d, const path *p, const json_t *j, clew_span_data *s)
{
    if (json_is_null(j)) {
        return CLEW_OK;
    }
    CLEW_TRY(need_object(d, p, j));
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        if (strcmp(k, "message") == 0) {
            CLEW_TRY(get_str(d, &kp, m, &s->status_message));
        } else if (strcmp(k, "code") == 0) {
            int c = 0;
            CLEW_TRY(get_enum(d, &kp, m, code_names, 3, &c));
            s->status_code = (clew_status_code)c;
        }
    }
    return CLEW_OK;
}

static clew_status decode_span(jdec *d, const path *p, const json_t *j, clew_span_data *s,
                               const span_pos *pos, bool *keep)
{
    *keep = false;
    CLEW_TRY(need_object(d, p, j));
    const char *bad_t = "must be 32 hex digits", *bad_s = "must be 16 hex digits", *bad_p = NULL;
    uint32_t bad_links = 0;
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        bool handled;
        CLEW_TRY(decode_attrs_member(d, &kp, k, m, &s->attrs, &handled));
        if (handled) {
            continue;
        }
        if (is_key(k, "traceId", "trace_id")) {
            CLEW_TRY(get_hex_id(d, &kp, m, s->trace_id.bytes, 16, &bad_t));
        } else if (is_key(k, "spanId", "span_id")) {
            CLEW_TRY(get_hex_id(d, &kp, m, s->span_id.bytes, 8, &bad_s));
        } else if (is_key(k, "parentSpanId", "parent_span_id")) {
            memset(s->parent_span_id.bytes, 0, 8);
            bad_p = NULL;
            if (!json_is_null(m) && !(json_is_string(m) && json_string_length(m) == 0)) {
                CLEW_TRY(get_hex_id(d, &kp, m, s->parent_span_id.bytes, 8, &bad_p));
            }
        } else if (is_key(k, "traceState", "trace_state")) {
            CLEW_TRY(get_str(d, &kp, m, &s->trace_state));
        } else if (strcmp(k, "flags") == 0) {
            CLEW_TRY(get_u32(d, &kp, m, &s->flags));
        } else if (strcmp(k, "name") == 0) {
            CLEW_TRY(get_str(d, &kp, m, &s->name));
        } else if (strcmp(k, "kind") == 0) {
            int kind = 0;
            CLEW_TRY(get_enum(d, &kp, m, kind_names, 6, &kind));
            s->kind = (clew_span_kind)kind;
        } else if (is_key(k, "startTimeUnixNano", "start_time_unix_nano")) {
            CLEW_TRY(get_u64(d, &kp, m, &s->start_ns));
        } else if (is_key(k, "endTimeUnixNano", "end_time_unix_nano")) {
            CLEW_TRY(get_u64(d, &kp, m, &s->end_ns));
        } else if (strcmp(k, "events") == 0) {
            CLEW_TRY(decode_events(d, &kp, m, s));
        } else if (is_key(k, "droppedEventsCount", "dropped_events_count")) {
            CLEW_TRY(get_u32(d, &kp, m, &s->dropped_events));
        } else if (strcmp(k, "links") == 0) {
            CLEW_TRY(decode_links(d, &kp, m, s, &bad_links));
        } else if (is_key(k, "droppedLinksCount", "dropped_links_count")) {
            CLEW_TRY(get_u32(d, &kp, m, &s->dropped_links));
        } else if (strcmp(k, "status") == 0) {
            CLEW_TRY(decode_status(d, &kp, m, s));
        }
    }
    s->dropped_links += bad_links;
    if (bad_t != NULL) {
        return reject(d, pos, "trace_id", bad_t);
    }
    if (clew__trace_id_is_zero(&s->trace_id)) {
        return reject(d, pos, "trace_id", "must not be all zero");
    }
    if (bad_s != NULL) {
        return reject(d, pos, "span_id", bad_s);
    }
    if (clew__span_id_is_zero(&s->span_id)) {
        return reject(d, pos, "span_id", "must not be all zero");
    }
    if (bad_p != NULL) {
        return reject(d, pos, "parent_span_id", bad_p);
    }
    *keep = true;
    return CLEW_OK;
}

static const clew_span_data span_template = {
    .trace_state = {"", 0},
    .name = {"", 0},
    .status_message = {"", 0},
};

/* The members ResourceSpans and ScopeSpans share, in document order: the one message
 * under `one_key` (decoded into `obj` by decode_one), schemaUrl, and the repeated list
 * (camel or snake name), whose elements are allocated (*items, *n) and left to the
 * caller to decode, with the list and its path as spelled. The caller has checked
 * that j is an object (before allocating anything for it). */
typedef struct group_shape {
    const char *one_key;
    clew_status (*decode_one)(jdec *d, const path *p, const json_t *j, void *obj);
    const char *list_camel, *list_snake;
    size_t elem;      /* size of one list element */
    const char *what; /* the elements, for "too many ..." */
} group_shape;

static clew_status decode_group(jdec *d, const path *p, const json_t *j, const group_shape *g,
                                void *obj, clew_str *schema_url, path *list_path,
                                const json_t **list, void **items, size_t *n)
{
    *list = NULL;
    *list_path = (path){p, g->list_camel, 0};
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        if (strcmp(k, g->one_key) == 0) {
            CLEW_TRY(g->decode_one(d, &kp, m, obj));
        } else if (is_key(k, "schemaUrl", "schema_url")) {
            CLEW_TRY(get_str(d, &kp, m, schema_url));
        } else if (is_key(k, g->list_camel, g->list_snake)) {
            *list = m;
            list_path->key = k;
        }
    }
    return get_array(d, list_path, *list, g->elem, g->what, items, n);
}

static clew_status scope_member(jdec *d, const path *p, const json_t *j, void *obj)
{
    return decode_scope(d, p, j, obj);
}

static clew_status resource_member(jdec *d, const path *p, const json_t *j, void *obj)
{
    return decode_resource(d, p, j, obj);
}

static const group_shape scope_spans_shape = {
    .one_key = "scope",
    .decode_one = scope_member,
    .list_camel = "spans",
    .list_snake = NULL,
    .elem = sizeof(clew_span_data),
    .what = "spans",
};
static const group_shape resource_spans_shape = {
    .one_key = "resource",
    .decode_one = resource_member,
    .list_camel = "scopeSpans",
    .list_snake = "scope_spans",
    .elem = sizeof(clew_scope_spans),
    .what = "scope spans",
};

static clew_status decode_scope_spans(jdec *d, const path *p, const json_t *j, clew_scope_spans *ss,
                                      const clew_resource *res, span_pos *pos)
{
    CLEW_TRY(need_object(d, p, j));
    clew_scope *scope = clew__arena_alloc(d->arena, sizeof(*scope));
    if (scope == NULL) {
        return fail_alloc(d);
    }
    *scope = (clew_scope){empty_str, empty_str, {NULL, 0, 0}, empty_str};
    *ss = (clew_scope_spans){scope, NULL, 0};
    const json_t *spans;
    path spans_path;
    size_t n;
    void *arr;
    CLEW_TRY(decode_group(d, p, j, &scope_spans_shape, scope, &scope->schema_url, &spans_path,
                          &spans, &arr, &n));
    ss->spans = arr;
    for (size_t i = 0; i < n; i++) {
        path ip = {&spans_path, NULL, i};
        clew_span_data *s = &ss->spans[ss->n_spans];
        *s = span_template;
        s->resource = res;
        s->scope = scope;
        bool keep;
        pos->span = i;
        CLEW_TRY(decode_span(d, &ip, json_array_get(spans, i), s, pos, &keep));
        if (keep) {
            ss->n_spans++;
        }
    }
    d->batch->n_spans += ss->n_spans;
    return CLEW_OK;
}

static clew_status decode_resource_spans(jdec *d, const path *p, const json_t *j,
                                         clew_resource_spans *rs, span_pos *pos)
{
    CLEW_TRY(need_object(d, p, j));
    clew_resource *res = clew__arena_alloc(d->arena, sizeof(*res));
    if (res == NULL) {
        return fail_alloc(d);
    }
    *res = (clew_resource){{NULL, 0, 0}, empty_str};
    *rs = (clew_resource_spans){res, NULL, 0};
    const json_t *scopes;
    path scopes_path;
    size_t n;
    void *arr;
    CLEW_TRY(decode_group(d, p, j, &resource_spans_shape, res, &res->schema_url, &scopes_path,
                          &scopes, &arr, &n));
    rs->scopes = arr;
    for (size_t i = 0; i < n; i++) {
        path ip = {&scopes_path, NULL, i};
        pos->scope = i;
        CLEW_TRY(decode_scope_spans(d, &ip, json_array_get(scopes, i), &rs->scopes[i], res, pos));
        rs->n_scopes++;
    }
    return CLEW_OK;
}

static clew_status decode_root(jdec *d, const json_t *root, clew_batch *b)
{
    path rp = {NULL, "resourceSpans", 0};
    if (!json_is_object(root)) {
        return fail(d, NULL, "expected an object");
    }
    const json_t *list = json_object_get(root, "resourceSpans");
    if (list == NULL) {
        list = json_object_get(root, "resource_spans");
        rp.key = "resource_spans";
    }
    size_t n;
    void *arr;
    CLEW_TRY(get_array(d, &rp, list, sizeof(clew_resource_spans), "resource spans", &arr, &n));
    b->rs = arr;
    span_pos pos = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        path ip = {&rp, NULL, i};
        pos.rs = i;
        CLEW_TRY(decode_resource_spans(d, &ip, json_array_get(list, i), &b->rs[i], &pos));
        b->n_rs++;
    }
    return CLEW_OK;
}

clew_status clew__otlp_json_decode(const char *data, size_t len, clew_arena *arena, clew_batch *out,
                                   clew_error *err)
{
    json_t *root;
    CLEW_TRY(clew__json_parse_body(data, len, err, &root));
    clew_batch b = {NULL, 0, 0, 0, {"", 0}};
    jdec d = {arena, err, &b, 0};
    clew_status rc = decode_root(&d, root, &b);
    json_decref(root);
    if (rc == CLEW_OK) {
        *out = b;
    }
    return rc;
}
