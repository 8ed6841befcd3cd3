/*
 * src/codec/zipkin_json.c - Zipkin v2 JSON <-> span model (see zipkin.h and
 * docs/internals/zipkin.md for the full mapping table).
 *
 * Part of clew_server_lib. Decoding parses the body with jansson, whose tree is
 * freed before returning; everything the batch keeps is copied into the arena.
 *
 * The mapping is the OpenTelemetry Collector's (pkg/translator/zipkin/zipkinv2,
 * with its network-convention feature gates at their default, enabled):
 *   - kind CLIENT/SERVER/PRODUCER/CONSUMER -> the same span kind. No kind gives
 *     SPAN_KIND_UNSPECIFIED, as the Collector does, unless the tag span.kind is
 *     "internal" (what the Collector's exporter writes for INTERNAL spans), which
 *     gives INTERNAL; with no kind the span.kind tag is consumed either way.
 *   - localEndpoint.serviceName -> resource service.name (one resource per distinct
 *     service in a request); tags otel.scope.name/version (or the older
 *     otel.library.name/version) -> the instrumentation scope.
 *   - endpoints -> span attributes network.local.address, network.local.port,
 *     service.peer.name, network.peer.address, network.peer.port (the Collector's
 *     EmitV1NetworkConventions names; an IPv6 address wins over an IPv4 one).
 *   - tags -> string attributes; error / otel.status_code / otel.status_description
 *     -> status; w3c.tracestate -> trace_state; otlp.link.N -> links; an annotation
 *     value "name|{json attributes}|dropped" -> an event with attributes.
 *   - shared:true -> the span gets a derived id, its parent becomes the shared id
 *     (derive_shared_id below).
 * Zipkin v1 JSON is converted span by span into v2 objects (v1_convert_span) and
 * then decoded by the same code.
 *
 * Thread-safety: no shared state.
 */
#include "codec/zipkin.h"
#include "codec/codec_util.h"
#include "common/alloc.h"
#include "common/base64.h"
#include "common/hash.h"
#include "common/hex.h"
#include "common/reject.h"
#include "common/try.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Span attribute names for the endpoints (semantic conventions v1.40, as the
 * Collector emits them by default). The encoder also reads the older names. */
#define ATTR_LOCAL_ADDR   "network.local.address"
#define ATTR_LOCAL_PORT   "network.local.port"
#define ATTR_PEER_SERVICE "service.peer.name"
#define ATTR_PEER_ADDR    "network.peer.address"
#define ATTR_PEER_PORT    "network.peer.port"

/* The Collector reads links from tags otlp.link.0 .. otlp.link.127. */
#define MAX_LINK_TAGS 128
/* Nesting of attribute values carried in annotation/link JSON. */
#define MAX_VALUE_DEPTH 64

#define LIT(b, s) clew__buf_append((b), (s), sizeof(s) - 1)

static const clew_str empty_str = {"", 0};

static bool str_is(clew_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* ======================================================================== */
/* decoding                                                                 */
/* ======================================================================== */

typedef clew__jpath path;

/* One resource per distinct localEndpoint.serviceName. */
typedef struct res_group {
    clew_str service; /* len 0 with has_service false: no service name */
    bool has_service;
    clew_resource *res;
    size_t n_scopes;
} res_group;

/* One scope group per (resource, scope name, scope version). */
typedef struct scope_group {
    uint32_t res;
    clew_scope *scope;
    size_t n_spans;
    size_t slot; /* index in the batch's scope_spans, set when building */
} scope_group;

/* Open addressing table of indexes + 1 (0 = empty). */
typedef struct itable {
    uint32_t *slots;
    size_t mask;
} itable;

typedef struct zdec {
    clew_arena *arena;
    clew_error *err;
    clew_batch *batch;
    res_group *res;
    size_t n_res;
    scope_group *groups;
    size_t n_groups;
    itable res_tab;
    itable group_tab;
    int value_depth;
} zdec;

static clew_status fail(zdec *d, const path *p, const char *what)
{
    return clew__jpath_fail(d->err, p, what);
}

static clew_status fail_alloc(zdec *d)
{
    return clew__arena_fail(d->arena, d->err);
}

static clew_status copy_str(zdec *d, const char *s, size_t len, clew_str *out)
{
    if (len == 0) {
        *out = empty_str;
        return CLEW_OK;
    }
    *out = clew__arena_strdup(d->arena, s, len);
    return out->ptr != NULL ? CLEW_OK : fail_alloc(d);
}

/* A string member: *present is false for absent or null. The view points into the
 * jansson tree (valid until it is freed). */
static clew_status get_raw_str(zdec *d, const path *p, const json_t *j, clew_str *out,
                               bool *present)
{
    *present = false;
    *out = empty_str;
    if (j == NULL || json_is_null(j)) {
        return CLEW_OK;
    }
    if (!json_is_string(j)) {
        return fail(d, p, "expected a string");
    }
    *out = (clew_str){json_string_value(j), json_string_length(j)};
    *present = true;
    return CLEW_OK;
}

/* An integer member (a JSON integer or an integral real): *present is false for
 * absent or null. */
static clew_status get_int(zdec *d, const path *p, const json_t *j, int64_t *out, bool *present)
{
    *present = false;
    *out = 0;
    if (j == NULL || json_is_null(j)) {
        return CLEW_OK;
    }
    if (json_is_integer(j)) {
        *out = json_integer_value(j);
    } else if (json_is_real(j)) {
        double v = json_real_value(j);
        /* 2^63 is the first double out of range */
        if (v != floor(v) || v >= 9223372036854775808.0 || v < -9223372036854775808.0) {
            return fail(d, p, "expected an integer");
        }
        *out = (int64_t)v;
    } else {
        return fail(d, p, "expected a number");
    }
    *present = true;
    return CLEW_OK;
}

static clew_status get_bool(zdec *d, const path *p, const json_t *j, bool *out)
{
    *out = false;
    if (j == NULL || json_is_null(j)) {
        return CLEW_OK;
    }
    if (!json_is_boolean(j)) {
        return fail(d, p, "expected true or false");
    }
    *out = json_is_true(j);
    return CLEW_OK;
}

static clew_status need_object(zdec *d, const path *p, const json_t *j)
{
    return clew__json_need_object(d->err, p, j);
}

/* ---- interning tables ---- */

static clew_status itable_init(zdec *d, itable *t, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2) {
        cap *= 2;
    }
    t->slots = clew__arena_calloc(d->arena, cap, sizeof(uint32_t));
    if (t->slots == NULL) {
        return fail_alloc(d);
    }
    t->mask = cap - 1;
    return CLEW_OK;
}

static uint64_t hash_str(uint64_t h, clew_str s)
{
    h = clew__hash_u64(h, s.len);
    return clew__hash_bytes(h, s.ptr, s.len);
}

static bool str_eq(clew_str a, clew_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The resource for a service (interned); `service` points into the jansson tree
 * and is copied when a new resource is made. */
static clew_status intern_resource(zdec *d, clew_str service, bool has_service, uint32_t *out)
{
    uint64_t h = clew__hash_u64(CLEW_HASH_SEED, has_service);
    h = clew__hash_finish(hash_str(h, service));
    size_t i = (size_t)h & d->res_tab.mask;
    for (; d->res_tab.slots[i] != 0; i = (i + 1) & d->res_tab.mask) {
        const res_group *g = &d->res[d->res_tab.slots[i] - 1];
        if (g->has_service == has_service && str_eq(g->service, service)) {
            *out = d->res_tab.slots[i] - 1;
            return CLEW_OK;
        }
    }
    res_group *g = &d->res[d->n_res];
    clew_resource *r = clew__arena_calloc(d->arena, 1, sizeof(*r));
    if (r == NULL) {
        return fail_alloc(d);
    }
    r->schema_url = empty_str;
    g->has_service = has_service;
    g->service = empty_str;
    g->n_scopes = 0;
    if (has_service) {
        CLEW_TRY(copy_str(d, service.ptr, service.len, &g->service));
        clew_kv *kv = clew__arena_alloc(d->arena, sizeof(*kv));
        if (kv == NULL) {
            return fail_alloc(d);
        }
        kv->key = (clew_str){"service.name", 12};
        kv->value.type = CLEW_VALUE_STRING;
        kv->value.u.s = g->service;
        r->attrs = (clew_attrs){kv, 1, 0};
    }
    g->res = r;
    d->res_tab.slots[i] = (uint32_t)(d->n_res + 1);
    *out = (uint32_t)d->n_res++;
    return CLEW_OK;
}

/* The scope group for (resource, name, version); name and version are arena copies. */
static clew_status intern_scope(zdec *d, uint32_t res, clew_str name, clew_str version,
                                uint32_t *out)
{
    uint64_t h = clew__hash_u64(CLEW_HASH_SEED, res);
    h = clew__hash_finish(hash_str(hash_str(h, name), version));
    size_t i = (size_t)h & d->group_tab.mask;
    for (; d->group_tab.slots[i] != 0; i = (i + 1) & d->group_tab.mask) {
        const scope_group *g = &d->groups[d->group_tab.slots[i] - 1];
        if (g->res == res && str_eq(g->scope->name, name) && str_eq(g->scope->version, version)) {
            *out = d->group_tab.slots[i] - 1;
            return CLEW_OK;
        }
    }
    clew_scope *s = clew__arena_calloc(d->arena, 1, sizeof(*s));
    if (s == NULL) {
        return fail_alloc(d);
    }
    *s = (clew_scope){name, version, {NULL, 0, 0}, empty_str};
    d->groups[d->n_groups] = (scope_group){res, s, 0, 0};
    d->res[res].n_scopes++;
    d->group_tab.slots[i] = (uint32_t)(d->n_groups + 1);
    *out = (uint32_t)d->n_groups++;
    return CLEW_OK;
}

/* ---- attribute values carried as JSON (annotation and link tags) ---- */

static clew_status json_to_attrs(zdec *d, const json_t *obj, clew_attrs *out);

static clew_status json_to_value(zdec *d, const json_t *j, clew_value *v)
{
    v->type = CLEW_VALUE_EMPTY;
    if (json_is_string(j)) {
        v->type = CLEW_VALUE_STRING;
        return copy_str(d, json_string_value(j), json_string_length(j), &v->u.s);
    }
    if (json_is_boolean(j)) {
        v->type = CLEW_VALUE_BOOL;
        v->u.b = json_is_true(j);
    } else if (json_is_integer(j)) {
        v->type = CLEW_VALUE_INT;
        v->u.i = json_integer_value(j);
    } else if (json_is_real(j)) {
        v->type = CLEW_VALUE_DOUBLE;
        v->u.d = json_real_value(j);
    } else if ((json_is_array(j) || json_is_object(j)) && d->value_depth < MAX_VALUE_DEPTH) {
        clew_status rc = CLEW_OK;
        d->value_depth++;
        if (json_is_object(j)) {
            clew_attrs a;
            rc = json_to_attrs(d, j, &a);
            v->type = CLEW_VALUE_KVLIST;
            v->u.kvlist.items = a.items;
            v->u.kvlist.n = a.n;
        } else {
            size_t n = json_array_size(j);
            v->type = CLEW_VALUE_ARRAY;
            v->u.array.items = NULL;
            v->u.array.n = 0;
            if (n > 0 && n <= UINT32_MAX) {
                v->u.array.items = clew__arena_alloc(d->arena, n * sizeof(clew_value));
                rc = v->u.array.items != NULL ? CLEW_OK : fail_alloc(d);
                for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
                    rc = json_to_value(d, json_array_get(j, i), &v->u.array.items[i]);
                    v->u.array.n++;
                }
            }
        }
        d->value_depth--;
        return rc;
    }
    /* null, or nested deeper than we keep: an empty value */
    return CLEW_OK;
}

static clew_status json_to_attrs(zdec *d, const json_t *obj, clew_attrs *out)
{
    *out = (clew_attrs){NULL, 0, 0};
    size_t n = json_object_size(obj);
    if (n == 0 || n > UINT32_MAX) {
        return CLEW_OK;
    }
    out->items = clew__arena_alloc(d->arena, n * sizeof(clew_kv));
    if (out->items == NULL) {
        return fail_alloc(d);
    }
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)obj, k, m)
    {
        clew_kv *kv = &out->items[out->n];
        CLEW_TRY(copy_str(d, k, strlen(k), &kv->key));
        CLEW_TRY(json_to_value(d, m, &kv->value));
        out->n++;
    }
    return CLEW_OK;
}

/* A decimal uint32 filling all of [s, s+len). */
static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > 10) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Parses a JSON object held in [s, s+len) into attributes; false if it is not one. */
static clew_status parse_json_attrs(zdec *d, const char *s, size_t len, clew_attrs *out, bool *ok)
{
    *ok = false;
    if (len < 2 || s[0] != '{') {
        return CLEW_OK;
    }
    json_t *j = json_loadb(s, len, 0, NULL);
    if (j == NULL) {
        return CLEW_OK;
    }
    clew_status rc = CLEW_OK;
    if (json_is_object(j)) {
        rc = json_to_attrs(d, j, out);
        *ok = rc == CLEW_OK;
    }
    json_decref(j);
    return rc;
}

/* ---- one span ---- */

/* What an endpoint object holds. `service` points into the jansson tree. */
typedef struct endpoint {
    clew_str service;
    bool has_service;
    char addr[INET6_ADDRSTRLEN];
    bool has_addr;
    int64_t port; /* 0 = none */
} endpoint;

/* Normalises an address with inet_pton/inet_ntop; false if it is not one. */
static bool normalise_addr(clew_str s, int af, char out[INET6_ADDRSTRLEN])
{
    char tmp[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    if (s.len == 0 || s.len >= sizeof(tmp) || memchr(s.ptr, '\0', s.len) != NULL) {
        return false;
    }
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = '\0';
    return inet_pton(af, tmp, bin) == 1 && inet_ntop(af, bin, out, INET6_ADDRSTRLEN) != NULL;
}

static clew_status decode_endpoint(zdec *d, const path *p, const json_t *j, endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
    ep->service = empty_str;
    if (j == NULL || json_is_null(j)) {
        return CLEW_OK;
    }
    CLEW_TRY(need_object(d, p, j));
    path sp = {p, "serviceName", 0};
    CLEW_TRY(
        get_raw_str(d, &sp, json_object_get(j, "serviceName"), &ep->service, &ep->has_service));
    ep->has_service = ep->has_service && ep->service.len > 0;
    clew_str v4, v6;
    bool has_v4, has_v6;
    path p4 = {p, "ipv4", 0}, p6 = {p, "ipv6", 0}, pp = {p, "port", 0};
    CLEW_TRY(get_raw_str(d, &p4, json_object_get(j, "ipv4"), &v4, &has_v4));
    CLEW_TRY(get_raw_str(d, &p6, json_object_get(j, "ipv6"), &v6, &has_v6));
    bool has_port;
    CLEW_TRY(get_int(d, &pp, json_object_get(j, "port"), &ep->port, &has_port));
    /* as Zipkin itself does, an address that does not parse is ignored; the IPv6
     * one wins when both are given, as in the Collector */
    ep->has_addr = (has_v6 && normalise_addr(v6, AF_INET6, ep->addr)) ||
                   (has_v4 && normalise_addr(v4, AF_INET, ep->addr));
    if (ep->port <= 0 || ep->port > 65535) {
        ep->port = 0;
    }
    return CLEW_OK;
}

static clew_status decode_annotations(zdec *d, const path *p, const json_t *j, clew_span_data *s)
{
    size_t n;
    void *arr;
    CLEW_TRY(clew__json_array_alloc(d->arena, d->err, p, j, sizeof(clew_event_data), "annotations",
                                    &arr, &n));
    s->events = arr;
    for (size_t i = 0; i < n; i++) {
        path ip = {p, NULL, i};
        const json_t *o = json_array_get(j, i);
        CLEW_TRY(need_object(d, &ip, o));
        path tp = {&ip, "timestamp", 0}, vp = {&ip, "value", 0};
        int64_t ts;
        bool has_ts, has_value;
        clew_str value;
        CLEW_TRY(get_int(d, &tp, json_object_get(o, "timestamp"), &ts, &has_ts));
        CLEW_TRY(get_raw_str(d, &vp, json_object_get(o, "value"), &value, &has_value));
        if (!has_ts || ts <= 0 || (uint64_t)ts > UINT64_MAX / 1000) {
            /* an event needs a time: drop it and count it */
            s->dropped_events++;
            continue;
        }
        clew_event_data *e = &s->events[s->n_events];
        *e = (clew_event_data){(uint64_t)ts * 1000, empty_str, {NULL, 0, 0}};
        /* "name|{json attributes}|dropped count" is how the Collector's exporter
         * writes an event with attributes; anything else is just a name */
        const char *first = memchr(value.ptr, '|', value.len);
        const char *last = NULL;
        for (size_t k = value.len; k > 0; k--) {
            if (value.ptr[k - 1] == '|') {
                last = value.ptr + k - 1;
                break;
            }
        }
        bool split = false;
        uint32_t dropped = 0;
        if (first != NULL && last > first &&
            parse_u32(last + 1, (size_t)(value.ptr + value.len - last - 1), &dropped)) {
            CLEW_TRY(parse_json_attrs(d, first + 1, (size_t)(last - first - 1), &e->attrs, &split));
        }
        if (split) {
            e->attrs.dropped = dropped;
            CLEW_TRY(copy_str(d, value.ptr, (size_t)(first - value.ptr), &e->name));
        } else {
            e->attrs = (clew_attrs){NULL, 0, 0};
            CLEW_TRY(copy_str(d, value.ptr, value.len, &e->name));
        }
        s->n_events++;
    }
    return CLEW_OK;
}

/* A tag value as text: strings as they are; numbers and booleans, which some
 * clients send unquoted, as their JSON text. */
static clew_status tag_text(zdec *d, const json_t *v, clew_str *out)
{
    if (json_is_string(v)) {
        return copy_str(d, json_string_value(v), json_string_length(v), out);
    }
    char tmp[40];
    int n;
    if (json_is_true(v)) {
        n = snprintf(tmp, sizeof(tmp), "true");
    } else if (json_is_false(v)) {
        n = snprintf(tmp, sizeof(tmp), "false");
    } else if (json_is_integer(v)) {
        n = snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else {
        n = snprintf(tmp, sizeof(tmp), "%.17g", json_real_value(v));
    }
    return copy_str(d, tmp, n > 0 ? (size_t)n : 0, out);
}

/* Parses tag otlp.link.N ("traceid|spanid|tracestate|{json}|dropped"). */
static clew_status parse_link(zdec *d, clew_str v, clew_link_data *l, bool *ok)
{
    *ok = false;
    const char *end = v.ptr + v.len;
    const char *p1 = memchr(v.ptr, '|', v.len);
    const char *p2 = p1 ? memchr(p1 + 1, '|', (size_t)(end - p1 - 1)) : NULL;
    const char *p3 = p2 ? memchr(p2 + 1, '|', (size_t)(end - p2 - 1)) : NULL;
    const char *p4 = NULL;
    for (const char *q = end; p3 != NULL && q > p3 + 1; q--) {
        if (q[-1] == '|') {
            p4 = q - 1;
            break;
        }
    }
    if (p4 == NULL) {
        return CLEW_OK;
    }
    memset(l, 0, sizeof(*l));
    uint32_t dropped;
    if (!clew__trace_id_parse(v.ptr, (size_t)(p1 - v.ptr), &l->trace_id) ||
        !clew__span_id_parse(p1 + 1, (size_t)(p2 - p1 - 1), &l->span_id) ||
        !parse_u32(p4 + 1, (size_t)(end - p4 - 1), &dropped)) {
        return CLEW_OK;
    }
    bool json_ok;
    CLEW_TRY(parse_json_attrs(d, p3 + 1, (size_t)(p4 - p3 - 1), &l->attrs, &json_ok));
    if (!json_ok) {
        return CLEW_OK;
    }
    l->attrs.dropped = dropped;
    CLEW_TRY(copy_str(d, p2 + 1, (size_t)(p3 - p2 - 1), &l->trace_state));
    *ok = true;
    return CLEW_OK;
}

/* Tags this decoder turns into something other than an attribute. */
static const char *const consumed_always[] = {
    "otel.scope.name",      "otel.scope.version", "otel.library.name",
    "otel.library.version", "w3c.tracestate",
};

/* The index N of a tag key "otlp.link.N" (N < MAX_LINK_TAGS, no leading zero), or -1. */
static int link_tag_index(const char *k)
{
    if (strncmp(k, "otlp.link.", 10) != 0) {
        return -1;
    }
    k += 10;
    size_t len = strlen(k);
    uint32_t n;
    if (len == 0 || (len > 1 && k[0] == '0') || !parse_u32(k, len, &n) || n >= MAX_LINK_TAGS) {
        return -1;
    }
    return (int)n;
}

typedef struct tag_info {
    clew_str scope_name, scope_version; /* arena copies */
} tag_info;

/* Attributes, status, trace state, kind, scope and links from the tags, then the
 * endpoint attributes (which replace a tag of the same name, as in the Collector). */
static clew_status decode_tags(zdec *d, const path *p, const json_t *tags, bool has_kind,
                               const endpoint *local, const endpoint *remote, clew_span_data *s,
                               tag_info *ti)
{
    ti->scope_name = empty_str;
    ti->scope_version = empty_str;
    size_t n_tags = 0;
    if (tags != NULL && !json_is_null(tags)) {
        CLEW_TRY(need_object(d, p, tags));
        n_tags = json_object_size(tags);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)tags, k, v)
        {
            if (!json_is_null(v) && !json_is_string(v) && !json_is_number(v) &&
                !json_is_boolean(v)) {
                path kp = {p, k, 0};
                return fail(d, &kp, "expected a string");
            }
        }
    } else {
        tags = NULL;
    }
    size_t cap = n_tags + 5;
    s->attrs.items = clew__arena_alloc(d->arena, cap * sizeof(clew_kv));
    if (s->attrs.items == NULL) {
        return fail_alloc(d);
    }
    bool consume_kind = false, consume_error = false, consume_desc = false;
    bool link_ok[MAX_LINK_TAGS] = {false};
    if (tags != NULL) {
        const json_t *v;
        if ((v = json_object_get(tags, "otel.scope.name")) != NULL ||
            (v = json_object_get(tags, "otel.library.name")) != NULL) {
            CLEW_TRY(json_is_null(v) ? CLEW_OK : tag_text(d, v, &ti->scope_name));
        }
        if ((v = json_object_get(tags, "otel.scope.version")) != NULL ||
            (v = json_object_get(tags, "otel.library.version")) != NULL) {
            CLEW_TRY(json_is_null(v) ? CLEW_OK : tag_text(d, v, &ti->scope_version));
        }
        if ((v = json_object_get(tags, "w3c.tracestate")) != NULL && !json_is_null(v)) {
            CLEW_TRY(tag_text(d, v, &s->trace_state));
        }
        if (!has_kind && (v = json_object_get(tags, "span.kind")) != NULL) {
            consume_kind = true;
            if (json_is_string(v) && strcmp(json_string_value(v), "internal") == 0) {
                s->kind = CLEW_KIND_INTERNAL;
            }
        }
        if ((v = json_object_get(tags, "otel.status_code")) != NULL && json_is_string(v)) {
            const char *c = json_string_value(v);
            if (strcmp(c, "OK") == 0 || strcmp(c, "STATUS_CODE_OK") == 0) {
                s->status_code = CLEW_STATUS_OK;
            } else if (strcmp(c, "ERROR") == 0 || strcmp(c, "STATUS_CODE_ERROR") == 0) {
                s->status_code = CLEW_STATUS_ERROR;
            }
            if ((v = json_object_get(tags, "otel.status_description")) != NULL &&
                !json_is_null(v)) {
                CLEW_TRY(tag_text(d, v, &s->status_message));
                consume_desc = true;
            }
        }
        if ((v = json_object_get(tags, "error")) != NULL && !json_is_null(v)) {
            /* Zipkin marks a failed span with an error tag; its value is the message
             * unless it is just "true" (the Collector drops that tag). "false" is no
             * error at all and stays a plain tag. */
            clew_str ev;
            CLEW_TRY(tag_text(d, v, &ev));
            if (!str_is(ev, "false")) {
                s->status_code = CLEW_STATUS_ERROR;
                if (str_is(ev, "true") || ev.len == 0) {
                    consume_error = true;
                } else if (s->status_message.len == 0) {
                    s->status_message = ev;
                }
            }
        }
        /* links, in order, while otlp.link.0, .1, ... exist */
        size_t n_links = 0;
        while (n_links < MAX_LINK_TAGS) {
            char key[40];
            snprintf(key, sizeof(key), "otlp.link.%zu", n_links);
            if (json_object_get(tags, key) == NULL) {
                break;
            }
            n_links++;
        }
        if (n_links > 0) {
            s->links = clew__arena_alloc(d->arena, n_links * sizeof(clew_link_data));
            if (s->links == NULL) {
                return fail_alloc(d);
            }
        }
        for (size_t i = 0; i < n_links; i++) {
            char key[40];
            snprintf(key, sizeof(key), "otlp.link.%zu", i);
            v = json_object_get(tags, key);
            if (!json_is_string(v)) {
                continue;
            }
            clew_str lv = {json_string_value(v), json_string_length(v)};
            CLEW_TRY(parse_link(d, lv, &s->links[s->n_links], &link_ok[i]));
            if (link_ok[i]) {
                s->n_links++;
            }
        }
        /* what is left becomes string attributes */
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)tags, k, m)
        {
            if (json_is_null(m)) {
                continue;
            }
            bool skip = (consume_kind && strcmp(k, "span.kind") == 0) ||
                        (strcmp(k, "otel.status_code") == 0) ||
                        (consume_desc && strcmp(k, "otel.status_description") == 0) ||
                        (consume_error && strcmp(k, "error") == 0);
            for (size_t c = 0; !skip && c < sizeof(consumed_always) / sizeof(*consumed_always);
                 c++) {
                skip = strcmp(k, consumed_always[c]) == 0;
            }
            int li = skip ? -1 : link_tag_index(k);
            if (skip || (li >= 0 && link_ok[li])) {
                continue;
            }
            clew_kv *kv = &s->attrs.items[s->attrs.n];
            CLEW_TRY(copy_str(d, k, strlen(k), &kv->key));
            kv->value.type = CLEW_VALUE_STRING;
            CLEW_TRY(tag_text(d, m, &kv->value.u.s));
            s->attrs.n++;
        }
    }
    /* endpoint attributes */
    struct {
        const char *key;
        bool present;
        bool is_int;
        const char *s;
        size_t len;
        int64_t i;
    } ep[5] = {
        {ATTR_LOCAL_ADDR, local->has_addr, false, local->addr, strlen(local->addr), 0},
        {ATTR_LOCAL_PORT, local->port > 0, true, NULL, 0, local->port},
        {ATTR_PEER_SERVICE, remote->has_service, false, remote->service.ptr, remote->service.len,
         0},
        {ATTR_PEER_ADDR, remote->has_addr, false, remote->addr, strlen(remote->addr), 0},
        {ATTR_PEER_PORT, remote->port > 0, true, NULL, 0, remote->port},
    };
    size_t n_from_tags = s->attrs.n;
    for (size_t e = 0; e < 5; e++) {
        if (!ep[e].present) {
            continue;
        }
        clew_value val;
        if (ep[e].is_int) {
            val.type = CLEW_VALUE_INT;
            val.u.i = ep[e].i;
        } else {
            val.type = CLEW_VALUE_STRING;
            CLEW_TRY(copy_str(d, ep[e].s, ep[e].len, &val.u.s));
        }
        size_t klen = strlen(ep[e].key);
        clew_kv *slot = NULL;
        for (size_t a = 0; a < n_from_tags; a++) {
            if (s->attrs.items[a].key.len == klen &&
                memcmp(s->attrs.items[a].key.ptr, ep[e].key, klen) == 0) {
                slot = &s->attrs.items[a];
                break;
            }
        }
        if (slot == NULL) {
            slot = &s->attrs.items[s->attrs.n++];
            slot->key = (clew_str){ep[e].key, klen};
        }
        slot->value = val;
    }
    return CLEW_OK;
}

/*
 * The id of the server half of a shared span. zipkin-js (and Zipkin's B3 "shared
 * span" model in general) reports the server side of an RPC with the client's span
 * id and "shared": true. A store that keys spans by trace id + span id would merge
 * the two halves, so, as Jaeger's span-id deduper does, the server half gets an id
 * of its own and becomes the client span's child. Unlike Jaeger (which counts up
 * from the largest id in the trace) the id is a pure function of the trace id and
 * the shared span id, so a resent span gets the same id again and the store still
 * dedups it:
 *   h  = FNV-1a-64 over "clew.zipkin.shared" || trace_id (16 bytes) || span_id (8)
 *   h  = splitmix64-finish(h); while h is 0 or equals span_id:
 *        h = splitmix64-finish(h + 0x9e3779b97f4a7c15)
 *   id = h as 8 big-endian bytes.
 */
static clew_span_id derive_shared_id(const clew_trace_id *trace, const clew_span_id *shared)
{
    static const char tag[] = "clew.zipkin.shared";
    uint64_t orig = 0;
    for (int i = 0; i < 8; i++) {
        orig = orig << 8 | shared->bytes[i];
    }
    uint64_t h = clew__hash_bytes(CLEW_HASH_SEED, tag, sizeof(tag) - 1);
    h = clew__hash_bytes(h, trace->bytes, 16);
    h = clew__hash_bytes(h, shared->bytes, 8);
    h = clew__hash_finish(h);
    while (h == 0 || h == orig) {
        /* practically never taken; re-mixing keeps the result a function of the input */
        h = clew__hash_finish(h + 0x9e3779b97f4a7c15ull);
    }
    clew_span_id out;
    for (int i = 7; i >= 0; i--) {
        out.bytes[i] = (uint8_t)h;
        h >>= 8;
    }
    return out;
}

static clew_status reject(zdec *d, size_t index, const char *why)
{
    return clew__reject_note(&d->batch->rejected, &d->batch->reject_reason, d->arena, d->err,
                             "span [%zu]: %s", index, why);
}

static clew_status decode_span(zdec *d, size_t index, const json_t *o, clew_span_data *s,
                               uint32_t *group, bool *keep)
{
    *keep = false;
    path ip = {NULL, NULL, index};
    CLEW_TRY(need_object(d, &ip, o));
    *s = (clew_span_data){.trace_state = empty_str, .name = empty_str, .status_message = empty_str};

    path p_trace = {&ip, "traceId", 0}, p_id = {&ip, "id", 0}, p_parent = {&ip, "parentId", 0};
    path p_name = {&ip, "name", 0}, p_kind = {&ip, "kind", 0}, p_ts = {&ip, "timestamp", 0};
    path p_dur = {&ip, "duration", 0}, p_debug = {&ip, "debug", 0}, p_shared = {&ip, "shared", 0};
    path p_local = {&ip, "localEndpoint", 0}, p_remote = {&ip, "remoteEndpoint", 0};
    path p_ann = {&ip, "annotations", 0}, p_tags = {&ip, "tags", 0};

    /* every member is type-checked before ids are judged: a malformed body fails as a
     * whole even where the span would have been rejected anyway */
    clew_str trace_s, id_s, parent_s, name, kind;
    bool has_trace, has_id, has_parent, has_name, has_kind, has_ts, has_dur, debug, shared;
    int64_t ts, dur;
    CLEW_TRY(get_raw_str(d, &p_trace, json_object_get(o, "traceId"), &trace_s, &has_trace));
    CLEW_TRY(get_raw_str(d, &p_id, json_object_get(o, "id"), &id_s, &has_id));
    CLEW_TRY(get_raw_str(d, &p_parent, json_object_get(o, "parentId"), &parent_s, &has_parent));
    CLEW_TRY(get_raw_str(d, &p_name, json_object_get(o, "name"), &name, &has_name));
    CLEW_TRY(get_raw_str(d, &p_kind, json_object_get(o, "kind"), &kind, &has_kind));
    CLEW_TRY(get_int(d, &p_ts, json_object_get(o, "timestamp"), &ts, &has_ts));
    CLEW_TRY(get_int(d, &p_dur, json_object_get(o, "duration"), &dur, &has_dur));
    CLEW_TRY(get_bool(d, &p_debug, json_object_get(o, "debug"), &debug));
    CLEW_TRY(get_bool(d, &p_shared, json_object_get(o, "shared"), &shared));
    endpoint local, remote;
    CLEW_TRY(decode_endpoint(d, &p_local, json_object_get(o, "localEndpoint"), &local));
    CLEW_TRY(decode_endpoint(d, &p_remote, json_object_get(o, "remoteEndpoint"), &remote));
    CLEW_TRY(decode_annotations(d, &p_ann, json_object_get(o, "annotations"), s));

    /* kind: unknown names read as "no kind", as in the Collector */
    s->kind = CLEW_KIND_UNSPECIFIED;
    bool known_kind = true;
    if (str_is(kind, "CLIENT")) {
        s->kind = CLEW_KIND_CLIENT;
    } else if (str_is(kind, "SERVER")) {
        s->kind = CLEW_KIND_SERVER;
    } else if (str_is(kind, "PRODUCER")) {
        s->kind = CLEW_KIND_PRODUCER;
    } else if (str_is(kind, "CONSUMER")) {
        s->kind = CLEW_KIND_CONSUMER;
    } else {
        known_kind = false;
    }
    tag_info ti;
    CLEW_TRY(
        decode_tags(d, &p_tags, json_object_get(o, "tags"), known_kind, &local, &remote, s, &ti));
    CLEW_TRY(copy_str(d, name.ptr, name.len, &s->name));
    if (debug) {
        s->flags |= CLEW_FLAG_SAMPLED;
    }

    /* the span is judged */
    if (!has_trace || !clew__trace_id_parse(trace_s.ptr, trace_s.len, &s->trace_id)) {
        return reject(d, index,
                      has_trace ? "traceId must be 1 to 32 hex digits and not all zero"
                                : "traceId is missing");
    }
    if (!has_id || !clew__span_id_parse(id_s.ptr, id_s.len, &s->span_id)) {
        return reject(d, index,
                      has_id ? "id must be 1 to 16 hex digits and not all zero" : "id is missing");
    }
    memset(s->parent_span_id.bytes, 0, 8);
    if (has_parent && parent_s.len > 0 &&
        !clew__span_id_parse(parent_s.ptr, parent_s.len, &s->parent_span_id)) {
        return reject(d, index, "parentId must be 1 to 16 hex digits and not all zero");
    }
    if (memcmp(s->parent_span_id.bytes, s->span_id.bytes, 8) == 0) {
        /* a span cannot be its own parent: the Collector reads it as a root */
        memset(s->parent_span_id.bytes, 0, 8);
    }
    if (!has_ts || ts <= 0) {
        return reject(d, index, has_ts ? "timestamp must be positive" : "timestamp is missing");
    }
    if ((uint64_t)ts > UINT64_MAX / 1000) {
        return reject(d, index, "timestamp is out of range");
    }
    if (has_dur && dur < 0) {
        return reject(d, index, "duration must not be negative");
    }
    uint64_t dur_us = has_dur ? (uint64_t)dur : 0;
    if (dur_us > UINT64_MAX / 1000 - (uint64_t)ts) {
        return reject(d, index, "timestamp + duration is out of range");
    }
    s->start_ns = (uint64_t)ts * 1000;
    s->end_ns = ((uint64_t)ts + dur_us) * 1000;
    if (shared) {
        clew_span_id orig = s->span_id;
        s->span_id = derive_shared_id(&s->trace_id, &orig);
        s->parent_span_id = orig;
    }

    uint32_t res = 0;
    CLEW_TRY(intern_resource(d, local.service, local.has_service, &res));
    CLEW_TRY(intern_scope(d, res, ti.scope_name, ti.scope_version, group));
    s->resource = d->res[res].res;
    s->scope = d->groups[*group].scope;
    *keep = true;
    return CLEW_OK;
}

/* Lays the kept spans out as resource -> scope -> spans, in first-seen order. */
static clew_status build_batch(zdec *d, clew_span_data *spans, const uint32_t *group, size_t n)
{
    clew_batch *b = d->batch;
    if (n == 0) {
        return CLEW_OK;
    }
    b->rs = clew__arena_calloc(d->arena, d->n_res, sizeof(clew_resource_spans));
    clew_scope_spans *ss = clew__arena_calloc(d->arena, d->n_groups, sizeof(clew_scope_spans));
    clew_span_data *out = clew__arena_alloc(d->arena, n * sizeof(clew_span_data));
    size_t *fill = clew__arena_calloc(d->arena, d->n_res, sizeof(size_t));
    if (b->rs == NULL || ss == NULL || out == NULL || fill == NULL) {
        return fail_alloc(d);
    }
    size_t off = 0;
    for (size_t r = 0; r < d->n_res; r++) {
        b->rs[r] = (clew_resource_spans){d->res[r].res, ss + off, d->res[r].n_scopes};
        off += d->res[r].n_scopes;
    }
    b->n_rs = d->n_res;
    for (size_t g = 0; g < d->n_groups; g++) {
        scope_group *sg = &d->groups[g];
        clew_resource_spans *rs = &b->rs[sg->res];
        sg->slot = (size_t)(rs->scopes - ss) + fill[sg->res]++;
        ss[sg->slot].scope = sg->scope;
        ss[sg->slot].n_spans = 0;
    }
    for (size_t i = 0; i < n; i++) {
        d->groups[group[i]].n_spans++;
    }
    /* slot order (by resource) differs from group order: size each slot from its group */
    size_t *slot_size = clew__arena_calloc(d->arena, d->n_groups, sizeof(size_t));
    if (slot_size == NULL) {
        return fail_alloc(d);
    }
    for (size_t g = 0; g < d->n_groups; g++) {
        slot_size[d->groups[g].slot] = d->groups[g].n_spans;
    }
    off = 0;
    for (size_t slot = 0; slot < d->n_groups; slot++) {
        ss[slot].spans = out + off;
        off += slot_size[slot];
    }
    for (size_t i = 0; i < n; i++) {
        clew_scope_spans *dst = &ss[d->groups[group[i]].slot];
        dst->spans[dst->n_spans++] = spans[i];
    }
    b->n_spans = n;
    return CLEW_OK;
}

static clew_status decode_root(zdec *d, const json_t *root)
{
    if (!json_is_array(root)) {
        return fail(d, NULL, "expected a JSON array of spans");
    }
    size_t n = json_array_size(root);
    if (n == 0) {
        return CLEW_OK;
    }
    if (n > UINT32_MAX / 2) {
        return fail(d, NULL, "too many spans");
    }
    clew_span_data *spans = clew__arena_alloc(d->arena, n * sizeof(clew_span_data));
    uint32_t *group = clew__arena_alloc(d->arena, n * sizeof(uint32_t));
    d->res = clew__arena_alloc(d->arena, n * sizeof(res_group));
    d->groups = clew__arena_alloc(d->arena, n * sizeof(scope_group));
    if (spans == NULL || group == NULL || d->res == NULL || d->groups == NULL) {
        return fail_alloc(d);
    }
    CLEW_TRY(itable_init(d, &d->res_tab, n));
    CLEW_TRY(itable_init(d, &d->group_tab, n));
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep;
        CLEW_TRY(decode_span(d, i, json_array_get(root, i), &spans[kept], &group[kept], &keep));
        if (keep) {
            kept++;
        }
    }
    return build_batch(d, spans, group, kept);
}

/* ======================================================================== */
/* Zipkin v1 JSON (POST /api/v1/spans): converted to v2 objects, then decoded */
/* ======================================================================== */

/* A v1 annotation or binary annotation endpoint, checked, as a v2 endpoint object
 * (a new reference, or NULL when there is none). */
static clew_status v1_endpoint(zdec *d, const path *p, const json_t *j, json_t **out)
{
    *out = NULL;
    if (j == NULL || json_is_null(j)) {
        return CLEW_OK;
    }
    endpoint ep;
    CLEW_TRY(decode_endpoint(d, p, j, &ep)); /* type checks with the v1 path */
    json_t *o = json_object();
    if (o == NULL) {
        return fail_alloc(d);
    }
    static const char *const keys[] = {"serviceName", "ipv4", "ipv6", "port"};
    for (size_t i = 0; i < 4; i++) {
        json_t *m = json_object_get(j, keys[i]);
        if (m != NULL && !json_is_null(m) && json_object_set(o, keys[i], m) != 0) {
            json_decref(o);
            return fail_alloc(d);
        }
    }
    *out = o;
    return CLEW_OK;
}

static bool same_service(const json_t *a, const json_t *b)
{
    const json_t *sa = a ? json_object_get(a, "serviceName") : NULL;
    const json_t *sb = b ? json_object_get(b, "serviceName") : NULL;
    return json_is_string(sa) && json_is_string(sb) && json_equal((json_t *)sa, (json_t *)sb);
}

/* One v2 span being built from a v1 span. */
typedef struct v1_part {
    json_t *obj;            /* the v2 span object */
    json_t *local;          /* borrowed: its localEndpoint, or NULL */
    const char *remote_key; /* binary annotation naming its remote endpoint: "sa", "ca", "ma" */
    json_t *annotations;    /* borrowed */
    json_t *tags;           /* borrowed */
} v1_part;

/* Starts a part: its v2 object, annotations and tags, all or none (on failure the
 * part is left empty). */
static clew_status new_part(zdec *d, v1_part *pt)
{
    memset(pt, 0, sizeof(*pt));
    pt->obj = json_object();
    pt->annotations = json_array();
    pt->tags = json_object();
    if (pt->obj == NULL || pt->annotations == NULL || pt->tags == NULL) {
        json_decref(pt->obj);
        json_decref(pt->annotations);
        json_decref(pt->tags);
        memset(pt, 0, sizeof(*pt));
        return fail_alloc(d);
    }
    return CLEW_OK;
}

static bool put_int(json_t *o, const char *k, int64_t v)
{
    return json_object_set_new(o, k, json_integer((json_int_t)v)) == 0;
}

/* Builds the v2 spans of one v1 span (the rules of Zipkin's V1SpanConverter, reduced):
 * cs/cr make a CLIENT part, sr/ss a SERVER part, ms a PRODUCER and mr a CONSUMER part,
 * each with the endpoint of its annotation as localEndpoint and its own start and
 * duration. A span with both a client and a server part is the v1 shared span: the
 * server part is "shared". A server-only span without a v1 timestamp did not own the
 * span id (v1 reporters leave timestamp out when they joined a client's span), so it
 * is shared too. ca/sa/ma binary annotations give remote endpoints; other binary
 * annotations and plain annotations go to the part with the same service. */
static clew_status v1_convert_span(zdec *d, size_t index, const json_t *o, json_t *out_list)
{
    path ip = {NULL, NULL, index};
    CLEW_TRY(need_object(d, &ip, o));
    /* type checks of the scalar members, with v1 paths */
    static const char *const str_keys[] = {"traceId", "traceIdHigh", "id", "parentId", "name"};
    for (size_t i = 0; i < sizeof(str_keys) / sizeof(*str_keys); i++) {
        path kp = {&ip, str_keys[i], 0};
        clew_str sv;
        bool has;
        CLEW_TRY(get_raw_str(d, &kp, json_object_get(o, str_keys[i]), &sv, &has));
    }
    path p_ts = {&ip, "timestamp", 0}, p_dur = {&ip, "duration", 0}, p_dbg = {&ip, "debug", 0};
    int64_t ts, dur;
    bool has_ts, has_dur, debug;
    CLEW_TRY(get_int(d, &p_ts, json_object_get(o, "timestamp"), &ts, &has_ts));
    CLEW_TRY(get_int(d, &p_dur, json_object_get(o, "duration"), &dur, &has_dur));
    CLEW_TRY(get_bool(d, &p_dbg, json_object_get(o, "debug"), &debug));

    /* annotations: find the core ones */
    const json_t *anns = json_object_get(o, "annotations");
    path p_ann = {&ip, "annotations", 0};
    size_t n_ann = 0;
    if (anns != NULL && !json_is_null(anns)) {
        if (!json_is_array(anns)) {
            return fail(d, &p_ann, "expected an array");
        }
        n_ann = json_array_size(anns);
    }
    enum { CS, CR, SR, SS, MS, MR, N_CORE };
    static const char *const core_names[N_CORE] = {"cs", "cr", "sr", "ss", "ms", "mr"};
    int64_t core_ts[N_CORE] = {0};
    bool core_has[N_CORE] = {false};
    json_t *core_ep[N_CORE] = {NULL};
    clew_status rc = CLEW_OK;
    for (size_t i = 0; i < n_ann && rc == CLEW_OK; i++) {
        /* no early return from here on: core_ep holds references */
        path ap = {&p_ann, NULL, i};
        const json_t *a = json_array_get(anns, i);
        path tp = {&ap, "timestamp", 0}, vp = {&ap, "value", 0}, ep = {&ap, "endpoint", 0};
        int64_t ats = 0;
        bool has_ats = false, has_val;
        clew_str val = empty_str;
        json_t *e = NULL;
        rc = need_object(d, &ap, a);
        if (rc == CLEW_OK) {
            rc = get_int(d, &tp, json_object_get(a, "timestamp"), &ats, &has_ats);
        }
        if (rc == CLEW_OK) {
            rc = get_raw_str(d, &vp, json_object_get(a, "value"), &val, &has_val);
        }
        if (rc == CLEW_OK) {
            rc = v1_endpoint(d, &ep, json_object_get(a, "endpoint"), &e);
        }
        if (rc != CLEW_OK) {
            break;
        }
        for (int c = 0; c < N_CORE; c++) {
            if (!core_has[c] && str_is(val, core_names[c])) {
                core_has[c] = true;
                core_ts[c] = has_ats ? ats : 0;
                core_ep[c] = e;
                e = NULL;
                break;
            }
        }
        json_decref(e);
    }

    /* binary annotations: checked now, used below */
    const json_t *bins = json_object_get(o, "binaryAnnotations");
    path p_bin = {&ip, "binaryAnnotations", 0};
    size_t n_bin = 0;
    if (bins != NULL && !json_is_null(bins)) {
        if (!json_is_array(bins)) {
            rc = fail(d, &p_bin, "expected an array");
        } else {
            n_bin = json_array_size(bins);
        }
    }
    json_t *lc_ep = NULL;
    for (size_t i = 0; i < n_bin && rc == CLEW_OK; i++) {
        path bp = {&p_bin, NULL, i};
        const json_t *b = json_array_get(bins, i);
        rc = need_object(d, &bp, b);
        path kp = {&bp, "key", 0}, vp = {&bp, "value", 0}, ep = {&bp, "endpoint", 0};
        clew_str key;
        bool has_key;
        if (rc == CLEW_OK) {
            rc = get_raw_str(d, &kp, json_object_get(b, "key"), &key, &has_key);
        }
        const json_t *v = rc == CLEW_OK ? json_object_get(b, "value") : NULL;
        if (v != NULL && !json_is_null(v) && !json_is_string(v) && !json_is_number(v) &&
            !json_is_boolean(v)) {
            rc = fail(d, &vp, "expected a string, number or boolean");
        }
        json_t *e = NULL;
        if (rc == CLEW_OK) {
            rc = v1_endpoint(d, &ep, json_object_get(b, "endpoint"), &e);
        }
        if (rc == CLEW_OK && lc_ep == NULL && str_is(key, "lc") && e != NULL) {
            lc_ep = e;
            e = NULL;
        }
        json_decref(e);
    }

    /* the parts */
    v1_part parts[3];
    size_t n_parts = 0;
    bool client = core_has[CS] || core_has[CR], server = core_has[SR] || core_has[SS];
    struct {
        bool on;
        const char *kind;
        int start, end;
        const char *remote;
    } plan[4] = {
        {client, "CLIENT", CS, CR, "sa"},
        {server, "SERVER", SR, SS, "ca"},
        {!client && !server && core_has[MS], "PRODUCER", MS, -1, "ma"},
        {!client && !server && core_has[MR], "CONSUMER", MR, -1, "ma"},
    };
    bool owner_used = false;
    for (size_t k = 0; k < 4 && rc == CLEW_OK; k++) {
        if (!plan[k].on) {
            continue;
        }
        v1_part *pt = &parts[n_parts];
        if ((rc = new_part(d, pt)) != CLEW_OK) {
            break;
        }
        n_parts++;
        int st = plan[k].start, en = plan[k].end;
        json_t *ep = core_ep[st] != NULL ? core_ep[st] : en >= 0 ? core_ep[en] : NULL;
        pt->local = ep;
        pt->remote_key = plan[k].remote;
        bool ok = json_object_set_new(pt->obj, "kind", json_string(plan[k].kind)) == 0;
        if (ep != NULL) {
            ok = ok && json_object_set(pt->obj, "localEndpoint", ep) == 0;
        }
        /* the first part owns the v1 timestamp and duration when they are given; a
         * second part reuses the span id */
        bool shared = n_parts > 1;
        if (!owner_used && has_ts) {
            owner_used = true;
            ok = ok && put_int(pt->obj, "timestamp", ts);
            if (has_dur) {
                ok = ok && put_int(pt->obj, "duration", dur);
            }
        } else {
            owner_used = true;
            if (core_has[st] && core_ts[st] > 0) {
                ok = ok && put_int(pt->obj, "timestamp", core_ts[st]);
                if (en >= 0 && core_has[en] && core_ts[en] >= core_ts[st]) {
                    ok = ok && put_int(pt->obj, "duration", core_ts[en] - core_ts[st]);
                }
            }
            if (k == 1 && !has_ts) {
                shared = true; /* a server that joined the client's span */
            }
        }
        if (shared) {
            ok = ok && json_object_set_new(pt->obj, "shared", json_true()) == 0;
        }
        if (!ok) {
            rc = fail_alloc(d);
        }
    }
    if (rc == CLEW_OK && n_parts == 0) {
        /* a local span: the lc endpoint, else the first annotation's */
        v1_part *pt = &parts[0];
        if ((rc = new_part(d, pt)) == CLEW_OK) {
            n_parts = 1;
            bool ok = true;
            if (has_ts) {
                ok = put_int(pt->obj, "timestamp", ts);
            }
            if (has_dur) {
                ok = ok && put_int(pt->obj, "duration", dur);
            }
            json_t *first_ep = NULL;
            for (size_t i = 0; i < n_ann && first_ep == NULL && ok; i++) {
                path ap = {&p_ann, NULL, i};
                path epp = {&ap, "endpoint", 0};
                rc = v1_endpoint(d, &epp, json_object_get(json_array_get(anns, i), "endpoint"),
                                 &first_ep);
                if (rc != CLEW_OK) {
                    break;
                }
            }
            json_t *lep = lc_ep != NULL ? lc_ep : first_ep;
            if (lep != NULL) {
                ok = ok && json_object_set(pt->obj, "localEndpoint", lep) == 0;
                pt->local = lep;
            }
            if (!has_ts && n_ann > 0) {
                /* no v1 timestamp: the first annotation's */
                int64_t ats;
                bool has_ats;
                path ap = {&p_ann, NULL, 0};
                path tp = {&ap, "timestamp", 0};
                if (rc == CLEW_OK) {
                    rc = get_int(d, &tp, json_object_get(json_array_get(anns, 0), "timestamp"),
                                 &ats, &has_ats);
                }
                if (rc == CLEW_OK && has_ats) {
                    ok = ok && put_int(pt->obj, "timestamp", ats);
                }
            }
            json_decref(first_ep);
            if (!ok && rc == CLEW_OK) {
                rc = fail_alloc(d);
            }
        }
    }

    /* plain annotations and binary annotations to their parts */
    for (size_t i = 0; i < n_ann && rc == CLEW_OK; i++) {
        const json_t *a = json_array_get(anns, i);
        const json_t *val = json_object_get(a, "value");
        bool core = false;
        for (int c = 0; c < N_CORE && !core; c++) {
            core = json_is_string(val) && strcmp(json_string_value(val), core_names[c]) == 0;
        }
        if (core) {
            continue; /* they became kinds and times */
        }
        size_t to = 0;
        for (size_t k = 0; k < n_parts; k++) {
            if (same_service(parts[k].local, json_object_get(a, "endpoint"))) {
                to = k;
                break;
            }
        }
        json_t *na = json_object();
        const json_t *at = json_object_get(a, "timestamp");
        if (na == NULL || (at != NULL && json_object_set(na, "timestamp", (json_t *)at) != 0) ||
            (val != NULL && json_object_set(na, "value", (json_t *)val) != 0) ||
            json_array_append_new(parts[to].annotations, na) != 0) {
            rc = fail_alloc(d);
        }
    }
    for (size_t i = 0; i < n_bin && rc == CLEW_OK; i++) {
        const json_t *b = json_array_get(bins, i);
        const json_t *key = json_object_get(b, "key");
        const json_t *v = json_object_get(b, "value");
        const json_t *e = json_object_get(b, "endpoint");
        if (!json_is_string(key) || v == NULL || json_is_null(v)) {
            continue;
        }
        const char *k = json_string_value(key);
        bool addr = strcmp(k, "ca") == 0 || strcmp(k, "sa") == 0 || strcmp(k, "ma") == 0;
        if (addr) {
            /* an address annotation names the remote side of the part it belongs to */
            for (size_t p = 0; p < n_parts; p++) {
                if (parts[p].remote_key != NULL && strcmp(parts[p].remote_key, k) == 0 &&
                    e != NULL && json_is_object(e) &&
                    json_object_get(parts[p].obj, "remoteEndpoint") == NULL) {
                    json_t *re;
                    path bp = {&p_bin, NULL, i};
                    path ep = {&bp, "endpoint", 0};
                    rc = v1_endpoint(d, &ep, e, &re);
                    if (rc == CLEW_OK && re != NULL &&
                        json_object_set_new(parts[p].obj, "remoteEndpoint", re) != 0) {
                        rc = fail_alloc(d);
                    }
                }
            }
            continue;
        }
        size_t to = 0;
        for (size_t p = 0; p < n_parts; p++) {
            if (same_service(parts[p].local, e)) {
                to = p;
                break;
            }
        }
        if (json_object_set(parts[to].tags, k, (json_t *)v) != 0) {
            rc = fail_alloc(d);
        }
    }

    /* common members, then append */
    static const char *const copy_keys[] = {"id", "parentId", "name", "debug"};
    const json_t *tid = json_object_get(o, "traceId");
    const json_t *high = json_object_get(o, "traceIdHigh");
    json_t *trace = NULL;
    if (rc == CLEW_OK && json_is_string(tid)) {
        size_t hl = json_is_string(high) ? json_string_length(high) : 0;
        size_t tl = json_string_length(tid);
        if (hl > 0 && hl <= 16 && tl > 0 && tl <= 16) {
            /* traceIdHigh is the upper 64 bits, sent separately by old reporters:
             * both halves left-padded to 16 digits */
            char buf[32];
            memset(buf, '0', sizeof(buf));
            memcpy(buf + 16 - hl, json_string_value(high), hl);
            memcpy(buf + 32 - tl, json_string_value(tid), tl);
            trace = json_stringn(buf, sizeof(buf));
        } else {
            trace = json_incref((json_t *)tid);
        }
        if (trace == NULL) {
            rc = fail_alloc(d);
        }
    }
    for (size_t k = 0; k < n_parts; k++) {
        v1_part *pt = &parts[k];
        bool ok = rc == CLEW_OK;
        if (ok && trace != NULL) {
            ok = json_object_set(pt->obj, "traceId", trace) == 0;
        }
        for (size_t c = 0; ok && c < sizeof(copy_keys) / sizeof(*copy_keys); c++) {
            json_t *m = json_object_get(o, copy_keys[c]);
            if (m != NULL) {
                ok = json_object_set(pt->obj, copy_keys[c], m) == 0;
            }
        }
        ok = ok && json_object_set(pt->obj, "annotations", pt->annotations) == 0 &&
             json_object_set(pt->obj, "tags", pt->tags) == 0 &&
             json_array_append(out_list, pt->obj) == 0;
        if (!ok && rc == CLEW_OK) {
            rc = fail_alloc(d);
        }
        json_decref(pt->obj);
        json_decref(pt->annotations);
        json_decref(pt->tags);
    }
    json_decref(trace);
    json_decref(lc_ep);
    for (int c = 0; c < N_CORE; c++) {
        json_decref(core_ep[c]);
    }
    return rc;
}

/* A v1 request (a JSON array of v1 spans) as the v2 array the decoder reads; *out is
 * set (possibly partly filled) whenever it was created, for the caller to release. */
static clew_status v1_convert(zdec *d, const json_t *root, json_t **out)
{
    *out = NULL;
    if (!json_is_array(root)) {
        return fail(d, NULL, "expected a JSON array of spans");
    }
    if ((*out = json_array()) == NULL) {
        return fail_alloc(d);
    }
    for (size_t i = 0; i < json_array_size(root); i++) {
        CLEW_TRY(v1_convert_span(d, i, json_array_get(root, i), *out));
    }
    return CLEW_OK;
}

/* Both versions: parse, convert v1 to v2 objects, decode those. */
static clew_status decode_body(const char *data, size_t len, bool v1, clew_arena *arena,
                               clew_batch *out, clew_error *err)
{
    json_t *root;
    CLEW_TRY(clew__json_parse_body(data, len, err, &root));
    clew_batch b = {NULL, 0, 0, 0, {"", 0}};
    zdec d;
    memset(&d, 0, sizeof(d));
    d.arena = arena;
    d.err = err;
    d.batch = &b;
    clew_status rc = CLEW_OK;
    if (v1) {
        json_t *v2;
        rc = v1_convert(&d, root, &v2);
        json_decref(root);
        root = v2;
    }
    if (rc == CLEW_OK) {
        rc = decode_root(&d, root);
    }
    json_decref(root);
    if (rc == CLEW_OK) {
        *out = b;
    }
    return rc;
}

clew_status clew__zipkin_v2_decode(const char *data, size_t len, clew_arena *arena, clew_batch *out,
                                   clew_error *err)
{
    return decode_body(data, len, false, arena, out, err);
}

clew_status clew__zipkin_v1_decode(const char *data, size_t len, clew_arena *arena, clew_batch *out,
                                   clew_error *err)
{
    return decode_body(data, len, true, arena, out, err);
}

/* ======================================================================== */
/* encoding                                                                 */
/* ======================================================================== */

/* A set of tag keys already written for one span (first writer wins). */
typedef struct keyset {
    clew_str *keys;
    size_t mask;
} keyset;

static uint64_t key_hash(const char *s, size_t len)
{
    return clew__hash_finish(clew__hash_bytes(CLEW_HASH_SEED, s, len));
}

/* True if newly added; false if the key was already there. */
static bool keyset_add(keyset *ks, const char *s, size_t len)
{
    if (s == NULL) {
        s = ""; /* an empty key given as {NULL, 0}; NULL marks a free slot */
    }
    size_t i = (size_t)key_hash(s, len) & ks->mask;
    for (; ks->keys[i].ptr != NULL; i = (i + 1) & ks->mask) {
        if (ks->keys[i].len == len && memcmp(ks->keys[i].ptr, s, len) == 0) {
            return false;
        }
    }
    ks->keys[i] = (clew_str){s, len};
    return true;
}

typedef struct zenc {
    clew_buf *out;
    clew_buf tmp; /* scratch for text that is escaped afterwards */
    keyset ks;
    size_t ks_cap;
    bool first_tag;
    /* "otlp.link.N" keys: the key set keeps pointers, so they must outlive a span */
    char link_keys[MAX_LINK_TAGS][16];
} zenc;

static clew_status put_u64(clew_buf *b, uint64_t v)
{
    return clew__buf_printf(b, "%" PRIu64, v);
}

/* Shortest %.Ng that reads back as d; `json` adds ".0" to a bare integer so that a
 * JSON reader sees a real, and writes non-finite values as strings. */
static clew_status put_double(clew_buf *b, double d, bool json)
{
    if (!isfinite(d)) {
        const char *s = isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity";
        return json ? clew__buf_printf(b, "\"%s\"", s) : clew__buf_puts(b, s);
    }
    return clew__buf_double(b, d, 1, json);
}

/* Attribute values as plain JSON (inside annotation and link tags and for array /
 * kvlist tag text): doubles as the Collector writes them. */
static const clew__double_style json_doubles = {1, true, "NaN", "Infinity", "-Infinity"};

/* An attribute value as tag text (Zipkin tags are strings): what the Collector's
 * pcommon.Value.AsString gives. */
static clew_status put_value_text(zenc *e, const clew_value *v)
{
    clew_buf *t = &e->tmp;
    clew__buf_reset(t);
    switch (v->type) {
    case CLEW_VALUE_STRING:
        return clew__buf_json_str(e->out, v->u.s.ptr, v->u.s.len);
    case CLEW_VALUE_BOOL:
        CLEW_TRY(clew__buf_puts(t, v->u.b ? "true" : "false"));
        break;
    case CLEW_VALUE_INT:
        CLEW_TRY(clew__buf_printf(t, "%" PRId64, v->u.i));
        break;
    case CLEW_VALUE_DOUBLE:
        CLEW_TRY(put_double(t, v->u.d, false));
        break;
    case CLEW_VALUE_BYTES:
        CLEW_TRY(clew__buf_base64(t, (const uint8_t *)v->u.s.ptr, v->u.s.len, false));
        break;
    case CLEW_VALUE_ARRAY:
    case CLEW_VALUE_KVLIST:
        CLEW_TRY(clew__json_value(t, v, 0, &json_doubles));
        break;
    case CLEW_VALUE_EMPTY:
    default:
        break;
    }
    return clew__buf_json_str(e->out, t->data != NULL ? t->data : "", t->len);
}

/* Writes `"key":` for a tag if the key is new for this span. */
static clew_status tag_key(zenc *e, const char *k, size_t len, bool *wrote)
{
    *wrote = keyset_add(&e->ks, k, len);
    if (!*wrote) {
        return CLEW_OK;
    }
    if (!e->first_tag) {
        CLEW_TRY(clew__buf_putc(e->out, ','));
    }
    e->first_tag = false;
    CLEW_TRY(clew__buf_json_str(e->out, k, len));
    return clew__buf_putc(e->out, ':');
}

static clew_status tag_str(zenc *e, const char *k, const char *v, size_t vlen)
{
    bool wrote;
    CLEW_TRY(tag_key(e, k, strlen(k), &wrote));
    return wrote ? clew__buf_json_str(e->out, v, vlen) : CLEW_OK;
}

static const clew_value *attr_get(const clew_attrs *a, const char *k)
{
    return clew__attrs_get(a, k, strlen(k));
}

/* An endpoint read back from span attributes; the keys used are marked so they
 * are not written again as tags. */
typedef struct enc_endpoint {
    clew_str service;
    bool v6;
    char addr[INET6_ADDRSTRLEN];
    bool has_addr;
    int64_t port;
} enc_endpoint;

static void endpoint_from_attrs(zenc *e, const clew_attrs *a, const char *const *addr_keys,
                                const char *const *port_keys, enc_endpoint *ep)
{
    ep->has_addr = false;
    ep->port = 0;
    for (size_t i = 0; addr_keys[i] != NULL && !ep->has_addr; i++) {
        const clew_value *v = attr_get(a, addr_keys[i]);
        if (v == NULL || v->type != CLEW_VALUE_STRING || v->u.s.len == 0) {
            continue;
        }
        bool v6 = memchr(v->u.s.ptr, ':', v->u.s.len) != NULL;
        if (normalise_addr(v->u.s, v6 ? AF_INET6 : AF_INET, ep->addr)) {
            ep->has_addr = true;
            ep->v6 = v6;
            keyset_add(&e->ks, addr_keys[i], strlen(addr_keys[i]));
        }
    }
    for (size_t i = 0; port_keys[i] != NULL && ep->port == 0; i++) {
        const clew_value *v = attr_get(a, port_keys[i]);
        int64_t port = 0;
        if (v != NULL && v->type == CLEW_VALUE_INT) {
            port = v->u.i;
        } else if (v != NULL && v->type == CLEW_VALUE_STRING) {
            uint32_t p32;
            if (parse_u32(v->u.s.ptr, v->u.s.len, &p32)) {
                port = p32;
            }
        }
        if (port > 0 && port <= 65535) {
            ep->port = port;
            keyset_add(&e->ks, port_keys[i], strlen(port_keys[i]));
        }
    }
}

static clew_status put_endpoint(zenc *e, const char *member, const enc_endpoint *ep,
                                bool has_service)
{
    clew_buf *b = e->out;
    CLEW_TRY(clew__buf_printf(b, ",\"%s\":{", member));
    bool first = true;
    if (has_service) {
        CLEW_TRY(LIT(b, "\"serviceName\":"));
        CLEW_TRY(clew__buf_json_str(b, ep->service.ptr, ep->service.len));
        first = false;
    }
    if (ep->has_addr) {
        CLEW_TRY(clew__buf_printf(b, "%s\"%s\":\"%s\"", first ? "" : ",", ep->v6 ? "ipv6" : "ipv4",
                                  ep->addr));
        first = false;
    }
    if (ep->port > 0) {
        CLEW_TRY(clew__buf_printf(b, "%s\"port\":%" PRId64, first ? "" : ",", ep->port));
    }
    return clew__buf_putc(b, '}');
}

static clew_status keyset_prepare(zenc *e, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2) {
        cap *= 2;
    }
    if (cap > e->ks_cap) {
        clew__free(e->ks.keys);
        e->ks.keys = clew__calloc(cap, sizeof(clew_str));
        if (e->ks.keys == NULL) {
            e->ks_cap = 0;
            return CLEW_ENOMEM;
        }
        e->ks_cap = cap;
    } else {
        memset(e->ks.keys, 0, cap * sizeof(clew_str));
    }
    e->ks.mask = cap - 1;
    return CLEW_OK;
}

static const char *const local_addr_keys[] = {ATTR_LOCAL_ADDR, "net.host.ip", NULL};
static const char *const local_port_keys[] = {ATTR_LOCAL_PORT, "net.host.port", NULL};
static const char *const peer_addr_keys[] = {ATTR_PEER_ADDR, "net.peer.ip", "net.sock.peer.addr",
                                             NULL};
static const char *const peer_port_keys[] = {ATTR_PEER_PORT, "net.peer.port", "net.sock.peer.port",
                                             NULL};
static const char *const peer_service_keys[] = {ATTR_PEER_SERVICE, "peer.service", NULL};

static clew_status encode_tags(zenc *e, const clew_span_data *s)
{
    clew_buf *b = e->out;
    const clew_resource *res = s->resource;
    const clew_scope *scope = s->scope;
    bool wrote;
    CLEW_TRY(LIT(b, ",\"tags\":{"));
    e->first_tag = true;
    /* status first: it decides the error tag (the Collector's populateStatus) */
    if (s->status_code == CLEW_STATUS_ERROR) {
        const clew_value *ev = attr_get(&s->attrs, "error");
        if (ev != NULL && ev->type == CLEW_VALUE_STRING && ev->u.s.len > 0 &&
            !str_is(ev->u.s, "true") && !str_is(ev->u.s, "false")) {
            CLEW_TRY(tag_str(e, "error", ev->u.s.ptr, ev->u.s.len));
        } else {
            CLEW_TRY(tag_str(e, "error", "true", 4));
        }
        CLEW_TRY(tag_str(e, "otel.status_code", "ERROR", 5));
    } else {
        /* "error" means failed to Zipkin: never carry one for a span that did not fail */
        keyset_add(&e->ks, "error", 5);
        if (s->status_code == CLEW_STATUS_OK) {
            CLEW_TRY(tag_str(e, "otel.status_code", "OK", 2));
        }
    }
    if (s->status_code != CLEW_STATUS_UNSET && s->status_message.len > 0) {
        CLEW_TRY(
            tag_str(e, "otel.status_description", s->status_message.ptr, s->status_message.len));
    }
    if (s->kind == CLEW_KIND_INTERNAL) {
        CLEW_TRY(tag_str(e, "span.kind", "internal", 8));
    }
    if (s->trace_state.len > 0) {
        CLEW_TRY(tag_str(e, "w3c.tracestate", s->trace_state.ptr, s->trace_state.len));
    }
    for (uint32_t i = 0; i < s->n_links && i < MAX_LINK_TAGS; i++) {
        const clew_link_data *l = &s->links[i];
        char tid[33], sid[17];
        const char *key = e->link_keys[i];
        CLEW_TRY(tag_key(e, key, strlen(key), &wrote));
        if (!wrote) {
            continue;
        }
        clew__trace_id_hex(&l->trace_id, tid);
        clew__span_id_hex(&l->span_id, sid);
        clew__buf_reset(&e->tmp);
        CLEW_TRY(clew__buf_printf(&e->tmp, "%s|%s|", tid, sid));
        CLEW_TRY(clew__buf_append(&e->tmp, l->trace_state.ptr, l->trace_state.len));
        CLEW_TRY(clew__buf_putc(&e->tmp, '|'));
        CLEW_TRY(clew__json_kvs(&e->tmp, l->attrs.items, l->attrs.n, 0, &json_doubles));
        CLEW_TRY(clew__buf_printf(&e->tmp, "|%u", l->attrs.dropped));
        CLEW_TRY(clew__buf_json_str(b, e->tmp.data, e->tmp.len));
    }
    /* span attributes, then scope and resource ones (the span's win on a clash) */
    for (uint32_t i = 0; i < s->attrs.n; i++) {
        const clew_kv *kv = &s->attrs.items[i];
        CLEW_TRY(tag_key(e, kv->key.ptr, kv->key.len, &wrote));
        if (wrote) {
            CLEW_TRY(put_value_text(e, &kv->value));
        }
    }
    if (scope != NULL && scope->name.len > 0) {
        CLEW_TRY(tag_str(e, "otel.scope.name", scope->name.ptr, scope->name.len));
    }
    if (scope != NULL && scope->version.len > 0) {
        CLEW_TRY(tag_str(e, "otel.scope.version", scope->version.ptr, scope->version.len));
    }
    if (res != NULL) {
        for (uint32_t i = 0; i < res->attrs.n; i++) {
            const clew_kv *kv = &res->attrs.items[i];
            if (str_is(kv->key, "service.name")) {
                continue; /* it is localEndpoint.serviceName */
            }
            CLEW_TRY(tag_key(e, kv->key.ptr, kv->key.len, &wrote));
            if (wrote) {
                CLEW_TRY(put_value_text(e, &kv->value));
            }
        }
    }
    if (e->first_tag) {
        /* nothing written: drop the empty object */
        b->len -= sizeof(",\"tags\":{") - 1;
        b->data[b->len] = '\0';
        return CLEW_OK;
    }
    return clew__buf_putc(b, '}');
}

static clew_status encode_annotations(zenc *e, const clew_span_data *s)
{
    clew_buf *b = e->out;
    if (s->n_events == 0) {
        return CLEW_OK;
    }
    CLEW_TRY(LIT(b, ",\"annotations\":["));
    for (uint32_t i = 0; i < s->n_events; i++) {
        const clew_event_data *ev = &s->events[i];
        CLEW_TRY(clew__buf_printf(b, "%s{\"timestamp\":%" PRIu64 ",\"value\":", i ? "," : "",
                                  ev->time_ns / 1000));
        if (ev->attrs.n == 0 && ev->attrs.dropped == 0) {
            CLEW_TRY(clew__buf_json_str(b, ev->name.ptr, ev->name.len));
        } else {
            clew__buf_reset(&e->tmp);
            CLEW_TRY(clew__buf_append(&e->tmp, ev->name.ptr, ev->name.len));
            CLEW_TRY(clew__buf_putc(&e->tmp, '|'));
            CLEW_TRY(clew__json_kvs(&e->tmp, ev->attrs.items, ev->attrs.n, 0, &json_doubles));
            CLEW_TRY(clew__buf_printf(&e->tmp, "|%u", ev->attrs.dropped));
            CLEW_TRY(clew__buf_json_str(b, e->tmp.data, e->tmp.len));
        }
        CLEW_TRY(clew__buf_putc(b, '}'));
    }
    return clew__buf_putc(b, ']');
}

static clew_status encode_span(zenc *e, const clew_span_data *s)
{
    clew_buf *b = e->out;
    size_t n_keys = s->attrs.n + (s->resource != NULL ? s->resource->attrs.n : 0) + s->n_links + 16;
    CLEW_TRY(keyset_prepare(e, n_keys));

    char tid[33], sid[17];
    clew__trace_id_hex(&s->trace_id, tid);
    /* a 64-bit trace id goes out as the 16 digits the Zipkin client sent */
    const char *tid_out = clew__trace_id_is_64bit(&s->trace_id) ? tid + 16 : tid;
    clew__span_id_hex(&s->span_id, sid);
    CLEW_TRY(clew__buf_printf(b, "{\"traceId\":\"%s\",\"id\":\"%s\"", tid_out, sid));
    if (!clew__span_id_is_zero(&s->parent_span_id)) {
        clew__span_id_hex(&s->parent_span_id, sid);
        CLEW_TRY(clew__buf_printf(b, ",\"parentId\":\"%s\"", sid));
    }
    static const char *const kinds[] = {NULL, NULL, "SERVER", "CLIENT", "PRODUCER", "CONSUMER"};
    if ((unsigned)s->kind < sizeof(kinds) / sizeof(*kinds) && kinds[s->kind] != NULL) {
        CLEW_TRY(clew__buf_printf(b, ",\"kind\":\"%s\"", kinds[s->kind]));
    }
    CLEW_TRY(LIT(b, ",\"name\":"));
    CLEW_TRY(clew__buf_json_str(b, s->name.ptr, s->name.len));
    uint64_t ts = s->start_ns / 1000;
    if (ts > 0) {
        CLEW_TRY(LIT(b, ",\"timestamp\":"));
        CLEW_TRY(put_u64(b, ts));
    }
    if (s->end_ns > s->start_ns) {
        /* whole µs, rounded down; a sub-µs span still shows as 1 µs, as zipkin-go does */
        uint64_t dur = (s->end_ns - s->start_ns) / 1000;
        CLEW_TRY(LIT(b, ",\"duration\":"));
        CLEW_TRY(put_u64(b, dur > 0 ? dur : 1));
    }

    enc_endpoint local, remote;
    memset(&local, 0, sizeof(local));
    memset(&remote, 0, sizeof(remote));
    local.service = clew__resource_service(s->resource);
    endpoint_from_attrs(e, &s->attrs, local_addr_keys, local_port_keys, &local);
    CLEW_TRY(put_endpoint(e, "localEndpoint", &local, true));

    bool has_peer_service = false;
    for (size_t i = 0; peer_service_keys[i] != NULL && !has_peer_service; i++) {
        const clew_value *v = attr_get(&s->attrs, peer_service_keys[i]);
        if (v != NULL && v->type == CLEW_VALUE_STRING && v->u.s.len > 0) {
            remote.service = v->u.s;
            has_peer_service = true;
            keyset_add(&e->ks, peer_service_keys[i], strlen(peer_service_keys[i]));
        }
    }
    endpoint_from_attrs(e, &s->attrs, peer_addr_keys, peer_port_keys, &remote);
    if (has_peer_service || remote.has_addr || remote.port > 0) {
        CLEW_TRY(put_endpoint(e, "remoteEndpoint", &remote, has_peer_service));
    }
    CLEW_TRY(encode_annotations(e, s));
    CLEW_TRY(encode_tags(e, s));
    return clew__buf_putc(b, '}');
}

clew_status clew__zipkin_v2_encode(const clew_span_data *const *spans, size_t n, clew_buf *out)
{
    size_t start = out->len;
    zenc e;
    memset(&e, 0, sizeof(e));
    e.out = out;
    clew__buf_init(&e.tmp, out->max);
    for (unsigned i = 0; i < MAX_LINK_TAGS; i++) {
        snprintf(e.link_keys[i], sizeof(e.link_keys[i]), "otlp.link.%u", i);
    }
    clew_status rc = clew__buf_putc(out, '[');
    for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
        if (i > 0) {
            rc = clew__buf_putc(out, ',');
        }
        if (rc == CLEW_OK) {
            rc = encode_span(&e, spans[i]);
        }
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_putc(out, ']');
    }
    clew__buf_deinit(&e.tmp);
    clew__free(e.ks.keys);
    if (rc != CLEW_OK && out->data != NULL) {
        /* leave the buffer as it was */
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}
