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
#include "codec/otlp.h"
#include "common/hex.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUE_DEPTH 64

/* The path to the value being decoded, as a chain of stack frames; it is only
 * turned into text when an error is reported. */
typedef struct path {
    const struct path *up;
    const char *key; /* member name, or NULL for an array index */
    size_t index;
} path;

typedef struct jdec {
    clew_arena *arena;
    clew_error *err;
    clew_batch *batch;
    int value_depth;
} jdec;

static const clew_str empty_str = {"", 0};

static size_t path_format(const path *p, char *out, size_t cap)
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

static clew_status fail(jdec *d, const path *p, const char *what)
{
    char where[200];
    where[0] = '\0';
    path_format(p, where, sizeof(where));
    clew__error_set(d->err, 0, "%s: %s", where[0] ? where : "(document)", what);
    return CLEW_EPARSE;
}

static clew_status fail_alloc(jdec *d)
{
    if (d->arena->over_limit) {
        clew__error_set(d->err, 0, "decoded request exceeds the memory limit (%zu bytes)",
                        d->arena->limit);
        return CLEW_ETOOBIG;
    }
    clew__error_set(d->err, 0, "out of memory while decoding");
    return CLEW_ENOMEM;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        clew_status rc_ = (expr);                                                                  \
        if (rc_ != CLEW_OK) {                                                                      \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

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
    TRY(get_int_parts(d, p, j, &neg, &mag));
    if (neg && mag != 0) {
        return fail(d, p, "must not be negative");
    }
    *out = mag;
    return CLEW_OK;
}

static clew_status get_u32(jdec *d, const path *p, const json_t *j, uint32_t *out)
{
    uint64_t v = 0;
    TRY(get_u64(d, p, j, &v));
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
    TRY(get_int_parts(d, p, j, &neg, &mag));
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

static int b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

static clew_status get_base64(jdec *d, const path *p, const json_t *j, clew_str *out)
{
    if (!json_is_string(j)) {
        return fail(d, p, "expected a base64 string");
    }
    const unsigned char *s = (const unsigned char *)json_string_value(j);
    size_t len = json_string_length(j);
    while (len > 0 && s[len - 1] == '=') {
        len--;
    }
    if (len % 4 == 1) {
        return fail(d, p, "invalid base64 length");
    }
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    char *o = clew__arena_alloc(d->arena, n + 1);
    if (o == NULL) {
        return fail_alloc(d);
    }
    uint32_t acc = 0;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_digit(s[i]);
        if (v < 0) {
            return fail(d, p, "invalid base64 character");
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            o[w++] = (char)(acc >> 16);
            o[w++] = (char)(acc >> 8);
            o[w++] = (char)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) {
        o[w++] = (char)(acc >> 4);
    } else if (len % 4 == 3) {
        o[w++] = (char)(acc >> 10);
        o[w++] = (char)(acc >> 2);
    }
    o[w] = '\0';
    *out = (clew_str){o, w};
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
    *items = NULL;
    *n = 0;
    if (json_is_null(j)) {
        return CLEW_OK;
    }
    if (!json_is_array(j)) {
        return fail(d, p, "expected an array");
    }
    size_t cnt = json_array_size(j);
    if (cnt == 0) {
        return CLEW_OK;
    }
    if (cnt > UINT32_MAX) {
        return fail(d, p, "too many attributes");
    }
    clew_kv *kvs = clew__arena_alloc(d->arena, cnt * sizeof(clew_kv));
    if (kvs == NULL) {
        return fail_alloc(d);
    }
    *items = kvs;
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
                TRY(get_str(d, &kp, m, &kv->key));
            } else if (strcmp(k, "value") == 0) {
                TRY(decode_any(d, &kp, m, &kv->value));
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
    return json_is_object(j) ? CLEW_OK : fail(d, p, "expected an object");
}

static clew_status decode_resource(jdec *d, const path *p, const json_t *j, clew_resource *r)
{
    if (json_is_null(j)) {
        return CLEW_OK;
    }
    TRY(need_object(d, p, j));
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        bool handled;
        TRY(decode_attrs_member(d, &kp, k, m, &r->attrs, &handled));
    }
    return CLEW_OK;
}

static clew_status decode_scope(jdec *d, const path *p, const json_t *j, clew_scope *s)
{
    if (json_is_null(j)) {
        return CLEW_OK;
    }
    TRY(need_object(d, p, j));
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        bool handled;
        TRY(decode_attrs_member(d, &kp, k, m, &s->attrs, &handled));
        if (handled) {
            continue;
        }
        if (strcmp(k, "name") == 0) {
            TRY(get_str(d, &kp, m, &s->name));
        } else if (strcmp(k, "version") == 0) {
            TRY(get_str(d, &kp, m, &s->version));
        }
    }
    return CLEW_OK;
}

/* An array member: checks the type, returns its size (0 for null). */
static clew_status get_array(jdec *d, const path *p, const json_t *j, size_t *n)
{
    *n = 0;
    if (json_is_null(j)) {
        return CLEW_OK;
    }
    if (!json_is_array(j)) {
        return fail(d, p, "expected an array");
    }
    *n = json_array_size(j);
    return CLEW_OK;
}

static clew_status decode_events(jdec *d, const path *p, const json_t *j, clew_span_data *s)
{
    size_t n;
    TRY(get_array(d, p, j, &n));
    s->events = NULL;
    s->n_events = 0;
    if (n == 0) {
        return CLEW_OK;
    }
    if (n > UINT32_MAX) {
        return fail(d, p, "too many events");
    }
    s->events = clew__arena_alloc(d->arena, n * sizeof(clew_event_data));
    if (s->events == NULL) {
        return fail_alloc(d);
    }
    for (size_t i = 0; i < n; i++) {
        path ip = {p, NULL, i};
        const json_t *o = json_array_get(j, i);
        TRY(need_object(d, &ip, o));
        clew_event_data *e = &s->events[i];
        *e = (clew_event_data){0, empty_str, {NULL, 0, 0}};
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)o, k, m)
        {
            path kp = {&ip, k, 0};
            bool handled;
            TRY(decode_attrs_member(d, &kp, k, m, &e->attrs, &handled));
            if (handled) {
                continue;
            }
            if (is_key(k, "timeUnixNano", "time_unix_nano")) {
                TRY(get_u64(d, &kp, m, &e->time_ns));
            } else if (strcmp(k, "name") == 0) {
                TRY(get_str(d, &kp, m, &e->name));
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
    TRY(get_array(d, p, j, &n));
    s->links = NULL;
    s->n_links = 0;
    if (n == 0) {
        return CLEW_OK;
    }
    if (n > UINT32_MAX) {
        return fail(d, p, "too many links");
    }
    s->links = clew__arena_alloc(d->arena, n * sizeof(clew_link_data));
    if (s->links == NULL) {
        return fail_alloc(d);
    }
    for (size_t i = 0; i < n; i++) {
        path ip = {p, NULL, i};
        const json_t *o = json_array_get(j, i);
        TRY(need_object(d, &ip, o));
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
            TRY(decode_attrs_member(d, &kp, k, m, &l->attrs, &handled));
            if (handled) {
                continue;
            }
            if (is_key(k, "traceId", "trace_id")) {
                TRY(get_hex_id(d, &kp, m, l->trace_id.bytes, 16, &bad_t));
            } else if (is_key(k, "spanId", "span_id")) {
                TRY(get_hex_id(d, &kp, m, l->span_id.bytes, 8, &bad_s));
            } else if (is_key(k, "traceState", "trace_state")) {
                TRY(get_str(d, &kp, m, &l->trace_state));
            } else if (strcmp(k, "flags") == 0) {
                TRY(get_u32(d, &kp, m, &l->flags));
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
    d->batch->rejected++;
    if (d->batch->reject_reason.len != 0) {
        return CLEW_OK;
    }
    char msg[200];
    int n = snprintf(msg, sizeof(msg), "span %zu of scope %zu of resource %zu: %s %s", pos->span,
                     pos->scope, pos->rs, field, why);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    d->batch->reject_reason = clew__arena_strdup(d->arena, msg, len);
    return d->batch->reject_reason.ptr != NULL ? CLEW_OK : fail_alloc(d);
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
    TRY(need_object(d, p, j));
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        if (strcmp(k, "message") == 0) {
            TRY(get_str(d, &kp, m, &s->status_message));
        } else if (strcmp(k, "code") == 0) {
            int c = 0;
            TRY(get_enum(d, &kp, m, code_names, 3, &c));
            s->status_code = (clew_status_code)c;
        }
    }
    return CLEW_OK;
}

static clew_status decode_span(jdec *d, const path *p, const json_t *j, clew_span_data *s,
                               const span_pos *pos, bool *keep)
{
    *keep = false;
    TRY(need_object(d, p, j));
    const char *bad_t = "must be 32 hex digits", *bad_s = "must be 16 hex digits", *bad_p = NULL;
    uint32_t bad_links = 0;
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        bool handled;
        TRY(decode_attrs_member(d, &kp, k, m, &s->attrs, &handled));
        if (handled) {
            continue;
        }
        if (is_key(k, "traceId", "trace_id")) {
            TRY(get_hex_id(d, &kp, m, s->trace_id.bytes, 16, &bad_t));
        } else if (is_key(k, "spanId", "span_id")) {
            TRY(get_hex_id(d, &kp, m, s->span_id.bytes, 8, &bad_s));
        } else if (is_key(k, "parentSpanId", "parent_span_id")) {
            memset(s->parent_span_id.bytes, 0, 8);
            bad_p = NULL;
            if (!json_is_null(m) && !(json_is_string(m) && json_string_length(m) == 0)) {
                TRY(get_hex_id(d, &kp, m, s->parent_span_id.bytes, 8, &bad_p));
            }
        } else if (is_key(k, "traceState", "trace_state")) {
            TRY(get_str(d, &kp, m, &s->trace_state));
        } else if (strcmp(k, "flags") == 0) {
            TRY(get_u32(d, &kp, m, &s->flags));
        } else if (strcmp(k, "name") == 0) {
            TRY(get_str(d, &kp, m, &s->name));
        } else if (strcmp(k, "kind") == 0) {
            int kind = 0;
            TRY(get_enum(d, &kp, m, kind_names, 6, &kind));
            s->kind = (clew_span_kind)kind;
        } else if (is_key(k, "startTimeUnixNano", "start_time_unix_nano")) {
            TRY(get_u64(d, &kp, m, &s->start_ns));
        } else if (is_key(k, "endTimeUnixNano", "end_time_unix_nano")) {
            TRY(get_u64(d, &kp, m, &s->end_ns));
        } else if (strcmp(k, "events") == 0) {
            TRY(decode_events(d, &kp, m, s));
        } else if (is_key(k, "droppedEventsCount", "dropped_events_count")) {
            TRY(get_u32(d, &kp, m, &s->dropped_events));
        } else if (strcmp(k, "links") == 0) {
            TRY(decode_links(d, &kp, m, s, &bad_links));
        } else if (is_key(k, "droppedLinksCount", "dropped_links_count")) {
            TRY(get_u32(d, &kp, m, &s->dropped_links));
        } else if (strcmp(k, "status") == 0) {
            TRY(decode_status(d, &kp, m, s));
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

static clew_status decode_scope_spans(jdec *d, const path *p, const json_t *j, clew_scope_spans *ss,
                                      const clew_resource *res, span_pos *pos)
{
    TRY(need_object(d, p, j));
    clew_scope *scope = clew__arena_alloc(d->arena, sizeof(*scope));
    if (scope == NULL) {
        return fail_alloc(d);
    }
    *scope = (clew_scope){empty_str, empty_str, {NULL, 0, 0}, empty_str};
    *ss = (clew_scope_spans){scope, NULL, 0};
    const char *k;
    json_t *m;
    const json_t *spans = NULL;
    path spans_path = {p, "spans", 0};
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        if (strcmp(k, "scope") == 0) {
            TRY(decode_scope(d, &kp, m, scope));
        } else if (is_key(k, "schemaUrl", "schema_url")) {
            TRY(get_str(d, &kp, m, &scope->schema_url));
        } else if (strcmp(k, "spans") == 0) {
            spans = m;
        }
    }
    size_t n = 0;
    if (spans != NULL) {
        TRY(get_array(d, &spans_path, spans, &n));
    }
    if (n > 0) {
        ss->spans = clew__arena_alloc(d->arena, n * sizeof(clew_span_data));
        if (ss->spans == NULL) {
            return fail_alloc(d);
        }
    }
    for (size_t i = 0; i < n; i++) {
        path ip = {&spans_path, NULL, i};
        clew_span_data *s = &ss->spans[ss->n_spans];
        *s = span_template;
        s->resource = res;
        s->scope = scope;
        bool keep;
        pos->span = i;
        TRY(decode_span(d, &ip, json_array_get(spans, i), s, pos, &keep));
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
    TRY(need_object(d, p, j));
    clew_resource *res = clew__arena_alloc(d->arena, sizeof(*res));
    if (res == NULL) {
        return fail_alloc(d);
    }
    *res = (clew_resource){{NULL, 0, 0}, empty_str};
    *rs = (clew_resource_spans){res, NULL, 0};
    const char *k;
    json_t *m;
    const json_t *scopes = NULL;
    path scopes_path = {p, "scopeSpans", 0};
    json_object_foreach((json_t *)j, k, m)
    {
        path kp = {p, k, 0};
        if (strcmp(k, "resource") == 0) {
            TRY(decode_resource(d, &kp, m, res));
        } else if (is_key(k, "schemaUrl", "schema_url")) {
            TRY(get_str(d, &kp, m, &res->schema_url));
        } else if (is_key(k, "scopeSpans", "scope_spans")) {
            scopes = m;
            scopes_path.key = k;
        }
    }
    size_t n = 0;
    if (scopes != NULL) {
        TRY(get_array(d, &scopes_path, scopes, &n));
    }
    if (n > 0) {
        rs->scopes = clew__arena_alloc(d->arena, n * sizeof(clew_scope_spans));
        if (rs->scopes == NULL) {
            return fail_alloc(d);
        }
    }
    for (size_t i = 0; i < n; i++) {
        path ip = {&scopes_path, NULL, i};
        pos->scope = i;
        TRY(decode_scope_spans(d, &ip, json_array_get(scopes, i), &rs->scopes[i], res, pos));
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
    size_t n = 0;
    if (list != NULL) {
        TRY(get_array(d, &rp, list, &n));
    }
    if (n > 0) {
        b->rs = clew__arena_alloc(d->arena, n * sizeof(clew_resource_spans));
        if (b->rs == NULL) {
            return fail_alloc(d);
        }
    }
    span_pos pos = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        path ip = {&rp, NULL, i};
        pos.rs = i;
        TRY(decode_resource_spans(d, &ip, json_array_get(list, i), &b->rs[i], &pos));
        b->n_rs++;
    }
    return CLEW_OK;
}

clew_status clew__otlp_json_decode(const char *data, size_t len, clew_arena *arena, clew_batch *out,
                                   clew_error *err)
{
    json_error_t jerr;
    json_t *root =
        json_loadb(data != NULL ? data : "", data != NULL ? len : 0, JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        clew__error_set(err, jerr.position > 0 ? (size_t)jerr.position : 0,
                        "JSON syntax error at line %d, column %d (byte %d): %s", jerr.line,
                        jerr.column, jerr.position, jerr.text);
        return CLEW_EPARSE;
    }
    clew_batch b = {NULL, 0, 0, 0, {"", 0}};
    jdec d = {arena, err, &b, 0};
    clew_status rc = decode_root(&d, root, &b);
    json_decref(root);
    if (rc == CLEW_OK) {
        *out = b;
    }
    return rc;
}
