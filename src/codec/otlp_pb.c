/*
 * src/codec/otlp_pb.c - OTLP trace protobuf decoder and encoder, hand-written.
 *
 * This file is part of clew_core (linked into the SDK), so it uses libc only.
 *
 * Decoder: zero-copy. Strings and bytes in the batch are views into the input
 * buffer; arrays (resource spans, scopes, spans, events, links, attributes, array
 * and kvlist values) are allocated in the caller's arena. Every message is walked
 * twice: a counting pass over its own fields (nested payloads are skipped, not
 * parsed) sizes the arrays exactly, then a filling pass decodes. So each tag is
 * read twice and nothing is allocated per field. Strings are not checked for
 * UTF-8 here (protobuf says they must be UTF-8, but checking costs time on the
 * hot path); the JSON encoder replaces invalid sequences with U+FFFD instead.
 *
 * Singular message fields that appear more than once are merged as protobuf
 * specifies (repeated members concatenated, scalars last-wins); fields whose wire
 * type does not match the schema are skipped like unknown fields, as protobuf's
 * own parsers do.
 *
 * Encoder: two passes. The first computes the size of every length-delimited
 * message in the order the second pass will write them (pre-order) and keeps the
 * sizes in a side array; the second reserves the exact total once and writes
 * without further bounds checks. Lengths are minimal varints.
 *
 * Thread-safety: no shared state; concurrent calls on different data are fine.
 */
#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/reject.h"
#include "common/try.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* AnyValue nesting (arrays in arrays, kvlists in kvlists) beyond this is refused:
 * it bounds recursion and no real producer comes near it. */
#define MAX_VALUE_DEPTH 64
/* Unknown groups (wire types 3/4) nest too; bound them the same way. */
#define MAX_GROUP_DEPTH 64

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* Message kinds, only for naming fields in error messages. */
typedef enum msg_kind {
    M_REQUEST,
    M_RESOURCE_SPANS,
    M_RESOURCE,
    M_SCOPE_SPANS,
    M_SCOPE,
    M_SPAN,
    M_EVENT,
    M_LINK,
    M_STATUS,
    M_KEY_VALUE,
    M_ANY_VALUE,
    M_ARRAY_VALUE,
    M_KVLIST_VALUE,
} msg_kind;

static const char *const msg_names[] = {
    "ExportTraceServiceRequest",
    "ResourceSpans",
    "Resource",
    "ScopeSpans",
    "InstrumentationScope",
    "Span",
    "Span.Event",
    "Span.Link",
    "Status",
    "KeyValue",
    "AnyValue",
    "ArrayValue",
    "KeyValueList",
};

/* Field names by message and number (wire.md section 4), for error messages. */
static const char *field_name(msg_kind m, uint32_t num)
{
    static const char *const request[] = {NULL, "resource_spans"};
    static const char *const rs[] = {NULL, "resource", "scope_spans", "schema_url"};
    static const char *const resource[] = {NULL, "attributes", "dropped_attributes_count",
                                           "entity_refs"};
    static const char *const ss[] = {NULL, "scope", "spans", "schema_url"};
    static const char *const scope[] = {NULL, "name", "version", "attributes",
                                        "dropped_attributes_count"};
    static const char *const span[] = {NULL,
                                       "trace_id",
                                       "span_id",
                                       "trace_state",
                                       "parent_span_id",
                                       "name",
                                       "kind",
                                       "start_time_unix_nano",
                                       "end_time_unix_nano",
                                       "attributes",
                                       "dropped_attributes_count",
                                       "events",
                                       "dropped_events_count",
                                       "links",
                                       "dropped_links_count",
                                       "status",
                                       "flags"};
    static const char *const event[] = {NULL, "time_unix_nano", "name", "attributes",
                                        "dropped_attributes_count"};
    static const char *const link[] = {NULL,          "trace_id",   "span_id",
                                       "trace_state", "attributes", "dropped_attributes_count",
                                       "flags"};
    static const char *const status[] = {NULL, NULL, "message", "code"};
    static const char *const kv[] = {NULL, "key", "value", "key_strindex"};
    static const char *const any[] = {NULL,           "string_value", "bool_value",
                                      "int_value",    "double_value", "array_value",
                                      "kvlist_value", "bytes_value",  "string_value_strindex"};
    static const char *const values[] = {NULL, "values"};
    static const struct {
        const char *const *names;
        uint32_t n;
    } t[] = {
        [M_REQUEST] = {request, 2},     [M_RESOURCE_SPANS] = {rs, 4}, [M_RESOURCE] = {resource, 4},
        [M_SCOPE_SPANS] = {ss, 4},      [M_SCOPE] = {scope, 5},       [M_SPAN] = {span, 17},
        [M_EVENT] = {event, 5},         [M_LINK] = {link, 7},         [M_STATUS] = {status, 4},
        [M_KEY_VALUE] = {kv, 4},        [M_ANY_VALUE] = {any, 9},     [M_ARRAY_VALUE] = {values, 2},
        [M_KVLIST_VALUE] = {values, 2},
    };
    if (num < t[m].n) {
        return t[m].names[num];
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* decoding                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct dec {
    const uint8_t *base; /* start of the input, for offsets in errors */
    clew_arena *arena;
    clew_error *err;
    clew_batch *batch;
    int value_depth;
} dec;

/* One field as read off the wire. */
typedef struct field {
    uint32_t num;
    uint32_t wt;
    uint64_t v;         /* VARINT, I64 and I32 payloads */
    const uint8_t *ptr; /* LEN payload */
    size_t len;
} field;

static const clew_str empty_str = {"", 0};

static clew_status fail(dec *d, const uint8_t *at, msg_kind m, uint32_t num, const char *what)
{
    const char *fname = field_name(m, num);
    size_t off = (size_t)(at - d->base);
    if (num == 0) {
        clew__error_set(d->err, off, "%s: %s at offset %zu", msg_names[m], what, off);
    } else if (fname != NULL) {
        clew__error_set(d->err, off, "%s.%s: %s at offset %zu", msg_names[m], fname, what, off);
    } else {
        clew__error_set(d->err, off, "%s field %u: %s at offset %zu", msg_names[m], num, what, off);
    }
    return CLEW_EPARSE;
}

static clew_status fail_alloc(dec *d)
{
    return clew__arena_fail(d->arena, d->err);
}

/* Reads a varint; false if it is truncated or longer than 10 bytes. Bits past
 * 64 in a 10th byte are dropped, as protobuf's parsers do. */
static inline bool read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return true;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (p >= end) {
            return false;
        }
        uint8_t c = *p++;
        v |= (uint64_t)(c & 0x7f) << (7 * i);
        if (c < 0x80) {
            *out = v;
            *pp = p;
            return true;
        }
    }
    return false;
}

static inline uint64_t load_le(const uint8_t *p, unsigned n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n == 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    if (n == 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
#endif
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static clew_status skip_group(dec *d, const uint8_t **pp, const uint8_t *end, msg_kind m,
                              uint32_t num, int depth);

/* Reads the next field of a message of kind m from *pp (which must be < end).
 * Groups are skipped here and reported with wt == WT_SGROUP and no payload. */
static clew_status next_field_slow(dec *d, const uint8_t **pp, const uint8_t *end, msg_kind m,
                                   field *f)
{
    const uint8_t *start = *pp;
    uint64_t tag;
    if (!read_varint(pp, end, &tag)) {
        return fail(d, start, m, 0, "truncated or overlong tag varint");
    }
    uint64_t num = tag >> 3;
    f->wt = (uint32_t)(tag & 7);
    if (num == 0 || num > 536870911u) {
        return fail(d, start, m, 0, "invalid field number");
    }
    f->num = (uint32_t)num;
    const uint8_t *p = *pp;
    switch (f->wt) {
    case WT_VARINT:
        if (!read_varint(pp, end, &f->v)) {
            return fail(d, p, m, f->num, "truncated or overlong varint");
        }
        return CLEW_OK;
    case WT_I64:
        if ((size_t)(end - p) < 8) {
            return fail(d, p, m, f->num, "fixed64 past end of message");
        }
        f->v = load_le(p, 8);
        *pp = p + 8;
        return CLEW_OK;
    case WT_I32:
        if ((size_t)(end - p) < 4) {
            return fail(d, p, m, f->num, "fixed32 past end of message");
        }
        f->v = load_le(p, 4);
        *pp = p + 4;
        return CLEW_OK;
    case WT_LEN: {
        uint64_t len;
        if (!read_varint(pp, end, &len)) {
            return fail(d, p, m, f->num, "truncated or overlong length varint");
        }
        if (len > (uint64_t)(end - *pp)) {
            char what[80];
            snprintf(what, sizeof(what), "length %llu past end of message",
                     (unsigned long long)len);
            return fail(d, p, m, f->num, what);
        }
        f->ptr = *pp;
        f->len = (size_t)len;
        *pp += len;
        return CLEW_OK;
    }
    case WT_SGROUP:
        return skip_group(d, pp, end, m, f->num, 1);
    case WT_EGROUP:
        return fail(d, start, m, f->num, "end-group tag without a start-group");
    default:
        return fail(d, start, m, f->num, "invalid wire type");
    }
}

/* next_field with a fast path for the common shapes: a one-byte tag followed by a
 * one-byte varint or length, or a fixed-size payload. */
static inline clew_status next_field(dec *d, const uint8_t **pp, const uint8_t *end, msg_kind m,
                                     field *f)
{
    const uint8_t *p = *pp;
    size_t avail = (size_t)(end - p);
    if (avail >= 2 && p[0] < 0x80 && p[0] >= 8) {
        f->num = p[0] >> 3u;
        f->wt = p[0] & 7u;
        switch (f->wt) {
        case WT_LEN:
            if (p[1] < 0x80 && p[1] <= avail - 2) {
                f->ptr = p + 2;
                f->len = p[1];
                *pp = p + 2 + p[1];
                return CLEW_OK;
            }
            break;
        case WT_VARINT:
            if (p[1] < 0x80) {
                f->v = p[1];
                *pp = p + 2;
                return CLEW_OK;
            }
            break;
        case WT_I64:
            if (avail >= 9) {
                f->v = load_le(p + 1, 8);
                *pp = p + 9;
                return CLEW_OK;
            }
            break;
        case WT_I32:
            if (avail >= 5) {
                f->v = load_le(p + 1, 4);
                *pp = p + 5;
                return CLEW_OK;
            }
            break;
        default:
            break;
        }
    }
    return next_field_slow(d, pp, end, m, f);
}

/* Skips a (deprecated, but legal) group up to its matching end-group tag. */
static clew_status skip_group(dec *d, const uint8_t **pp, const uint8_t *end, msg_kind m,
                              uint32_t num, int depth)
{
    if (depth > MAX_GROUP_DEPTH) {
        return fail(d, *pp, m, num, "groups nested too deeply");
    }
    for (;;) {
        if (*pp >= end) {
            return fail(d, *pp, m, num, "group without end-group tag");
        }
        const uint8_t *start = *pp;
        uint64_t tag;
        if (!read_varint(pp, end, &tag)) {
            return fail(d, start, m, num, "truncated tag varint in group");
        }
        uint32_t wt = (uint32_t)(tag & 7);
        uint64_t inner = tag >> 3;
        if (inner == 0 || inner > 536870911u) {
            return fail(d, start, m, num, "invalid field number in group");
        }
        if (wt == WT_EGROUP) {
            if (inner != num) {
                return fail(d, start, m, num, "mismatched end-group tag");
            }
            return CLEW_OK;
        }
        if (wt == WT_SGROUP) {
            clew_status rc = skip_group(d, pp, end, m, (uint32_t)inner, depth + 1);
            if (rc != CLEW_OK) {
                return rc;
            }
            continue;
        }
        /* re-read the field with next_field's payload logic */
        *pp = start;
        field f;
        clew_status rc = next_field(d, pp, end, m, &f);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
}

/* Counts the LEN fields numbered n1, n2, n3 (0 = none) in a message (one pass over its fields). */
static clew_status count_fields(dec *d, const uint8_t *p, const uint8_t *end, msg_kind m,
                                uint32_t n1, uint32_t n2, uint32_t n3, size_t c[3])
{
    c[0] = c[1] = c[2] = 0;
    while (p < end) {
        field f;
        clew_status rc = next_field(d, &p, end, m, &f);
        if (rc != CLEW_OK) {
            return rc;
        }
        if (f.wt != WT_LEN) {
            continue;
        }
        if (f.num == n1) {
            c[0]++;
        } else if (f.num == n2) {
            c[1]++;
        } else if (f.num == n3) {
            c[2]++;
        }
    }
    return CLEW_OK;
}

/* Sizes the repeated message field `num` of a message of kind m (the counting pass)
 * and allocates that many elements of `elem` bytes; *out is NULL when there are none. */
static clew_status alloc_repeated(dec *d, const uint8_t *p, const uint8_t *end, msg_kind m,
                                  uint32_t num, size_t elem, void **out)
{
    size_t c[3];
    CLEW_TRY(count_fields(d, p, end, m, num, 0, 0, c));
    *out = NULL;
    if (c[0] > 0) {
        *out = clew__arena_alloc(d->arena, c[0] * elem);
        if (*out == NULL) {
            return fail_alloc(d);
        }
    }
    return CLEW_OK;
}

static inline clew_str view(const field *f)
{
    return (clew_str){(const char *)f->ptr, f->len};
}

/* Grows an arena array from `have` to `have + extra` elements (copying the old
 * ones: only merged repeats of a singular field take this path). */
static void *grow(dec *d, void *old, size_t have, size_t extra, size_t elem)
{
    if (extra == 0) {
        return old;
    }
    if (have + extra > UINT32_MAX) {
        return NULL;
    }
    void *p = clew__arena_alloc(d->arena, (have + extra) * elem);
    if (p != NULL && have > 0) {
        memcpy(p, old, have * elem);
    }
    return p;
}

static clew_status decode_kv(dec *d, const uint8_t *p, const uint8_t *end, clew_kv *kv);

static clew_status decode_any(dec *d, const uint8_t *p, const uint8_t *end, clew_value *v);

/* ArrayValue: appends its values to v (already of type ARRAY). */
static clew_status decode_array(dec *d, const uint8_t *p, const uint8_t *end, clew_value *v)
{
    size_t c[3];
    clew_status rc = count_fields(d, p, end, M_ARRAY_VALUE, 1, 0, 0, c);
    if (rc != CLEW_OK) {
        return rc;
    }
    uint32_t have = v->u.array.n;
    clew_value *items = grow(d, v->u.array.items, have, c[0], sizeof(clew_value));
    if (items == NULL && c[0] > 0) {
        return fail_alloc(d);
    }
    v->u.array.items = items;
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_ARRAY_VALUE, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.num == 1 && f.wt == WT_LEN) {
            clew_value *item = &items[v->u.array.n++];
            item->type = CLEW_VALUE_EMPTY;
            if ((rc = decode_any(d, f.ptr, f.ptr + f.len, item)) != CLEW_OK) {
                return rc;
            }
        }
    }
    return CLEW_OK;
}

/* A list of KeyValue appended to (items, n): for attributes and kvlists. */
static clew_status alloc_kvs(dec *d, clew_kv **items, uint32_t n, size_t extra)
{
    clew_kv *p = grow(d, *items, n, extra, sizeof(clew_kv));
    if (p == NULL && extra > 0) {
        return fail_alloc(d);
    }
    *items = p;
    return CLEW_OK;
}

static clew_status add_kv(dec *d, const field *f, clew_kv *items, uint32_t *n)
{
    clew_kv *kv = &items[(*n)++];
    /* Fast path for the usual attribute as every SDK writes it: key (0A klen ...)
     * then value (12 vlen ...) holding only a short string_value or an int_value,
     * with one-byte lengths. Anything else takes the general path below. */
    const uint8_t *p = f->ptr;
    size_t len = f->len;
    if (len >= 4 && p[0] == 0x0A && p[1] < 0x80 && (size_t)p[1] + 4 <= len && p[2 + p[1]] == 0x12) {
        size_t klen = p[1];
        size_t vlen = p[3 + klen];
        const uint8_t *v = p + 4 + klen;
        if (vlen < 0x80 && 4 + klen + vlen == len && vlen >= 2) {
            if (v[0] == 0x0A && v[1] == vlen - 2) {
                kv->key = (clew_str){(const char *)p + 2, klen};
                kv->value.type = CLEW_VALUE_STRING;
                kv->value.u.s = (clew_str){(const char *)v + 2, vlen - 2};
                return CLEW_OK;
            }
            const uint8_t *q = v + 1;
            uint64_t x;
            if (v[0] == 0x18 && read_varint(&q, v + vlen, &x) && q == v + vlen) {
                kv->key = (clew_str){(const char *)p + 2, klen};
                kv->value.type = CLEW_VALUE_INT;
                kv->value.u.i = (int64_t)x;
                return CLEW_OK;
            }
        }
    }
    kv->key = empty_str;
    kv->value.type = CLEW_VALUE_EMPTY;
    return decode_kv(d, f->ptr, f->ptr + f->len, kv);
}

static clew_status decode_kvlist(dec *d, const uint8_t *p, const uint8_t *end, clew_value *v)
{
    size_t c[3];
    clew_status rc = count_fields(d, p, end, M_KVLIST_VALUE, 1, 0, 0, c);
    if (rc != CLEW_OK) {
        return rc;
    }
    if ((rc = alloc_kvs(d, &v->u.kvlist.items, v->u.kvlist.n, c[0])) != CLEW_OK) {
        return rc;
    }
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_KVLIST_VALUE, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.num == 1 && f.wt == WT_LEN) {
            if ((rc = add_kv(d, &f, v->u.kvlist.items, &v->u.kvlist.n)) != CLEW_OK) {
                return rc;
            }
        }
    }
    return CLEW_OK;
}

/* AnyValue into v. A member set again replaces the previous one (oneof), except
 * that a repeated array or kvlist member merges into the one already there. */
static clew_status decode_any(dec *d, const uint8_t *p, const uint8_t *end, clew_value *v)
{
    clew_status rc = CLEW_OK;
    if (d->value_depth >= MAX_VALUE_DEPTH) {
        return fail(d, p, M_ANY_VALUE, 0, "values nested more than 64 deep");
    }
    d->value_depth++;
    while (p < end && rc == CLEW_OK) {
        field f;
        if ((rc = next_field(d, &p, end, M_ANY_VALUE, &f)) != CLEW_OK) {
            break;
        }
        switch (f.num) {
        case 1:
        case 7:
            if (f.wt == WT_LEN) {
                v->type = f.num == 1 ? CLEW_VALUE_STRING : CLEW_VALUE_BYTES;
                v->u.s = view(&f);
            }
            break;
        case 2:
            if (f.wt == WT_VARINT) {
                v->type = CLEW_VALUE_BOOL;
                v->u.b = f.v != 0;
            }
            break;
        case 3:
            if (f.wt == WT_VARINT) {
                v->type = CLEW_VALUE_INT;
                v->u.i = (int64_t)f.v;
            }
            break;
        case 4:
            if (f.wt == WT_I64) {
                v->type = CLEW_VALUE_DOUBLE;
                memcpy(&v->u.d, &f.v, sizeof(double));
            }
            break;
        case 5:
            if (f.wt == WT_LEN) {
                if (v->type != CLEW_VALUE_ARRAY) {
                    v->type = CLEW_VALUE_ARRAY;
                    v->u.array.items = NULL;
                    v->u.array.n = 0;
                }
                rc = decode_array(d, f.ptr, f.ptr + f.len, v);
            }
            break;
        case 6:
            if (f.wt == WT_LEN) {
                if (v->type != CLEW_VALUE_KVLIST) {
                    v->type = CLEW_VALUE_KVLIST;
                    v->u.kvlist.items = NULL;
                    v->u.kvlist.n = 0;
                }
                rc = decode_kvlist(d, f.ptr, f.ptr + f.len, v);
            }
            break;
        default:
            /* 8 (string_value_strindex, profiles only) is treated as absent */
            break;
        }
    }
    d->value_depth--;
    return rc;
}

static clew_status decode_kv(dec *d, const uint8_t *p, const uint8_t *end, clew_kv *kv)
{
    while (p < end) {
        field f;
        clew_status rc = next_field(d, &p, end, M_KEY_VALUE, &f);
        if (rc != CLEW_OK) {
            return rc;
        }
        if (f.wt != WT_LEN) {
            continue; /* key_strindex (3) is profiles-only: treated as absent */
        }
        if (f.num == 1) {
            kv->key = view(&f);
        } else if (f.num == 2) {
            /* fast path for the most common attribute: an AnyValue holding just a
             * short string_value (0A len bytes) */
            if (f.len >= 2 && f.ptr[0] == 0x0A && f.ptr[1] < 0x80 && f.ptr[1] == f.len - 2) {
                kv->value.type = CLEW_VALUE_STRING;
                kv->value.u.s = (clew_str){(const char *)f.ptr + 2, f.len - 2};
                continue;
            }
            if ((rc = decode_any(d, f.ptr, f.ptr + f.len, &kv->value)) != CLEW_OK) {
                return rc;
            }
        }
    }
    return CLEW_OK;
}

/* Resource into r; a second occurrence merges into the first. */
static clew_status decode_resource(dec *d, const uint8_t *p, const uint8_t *end, clew_resource *r)
{
    size_t c[3];
    clew_status rc = count_fields(d, p, end, M_RESOURCE, 1, 0, 0, c);
    if (rc != CLEW_OK || (rc = alloc_kvs(d, &r->attrs.items, r->attrs.n, c[0])) != CLEW_OK) {
        return rc;
    }
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_RESOURCE, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.num == 1 && f.wt == WT_LEN) {
            if ((rc = add_kv(d, &f, r->attrs.items, &r->attrs.n)) != CLEW_OK) {
                return rc;
            }
        } else if (f.num == 2 && f.wt == WT_VARINT) {
            r->attrs.dropped = (uint32_t)f.v;
        }
        /* 3 entity_refs: not kept by clew */
    }
    return CLEW_OK;
}

static clew_status decode_scope(dec *d, const uint8_t *p, const uint8_t *end, clew_scope *s)
{
    size_t c[3];
    clew_status rc = count_fields(d, p, end, M_SCOPE, 3, 0, 0, c);
    if (rc != CLEW_OK || (rc = alloc_kvs(d, &s->attrs.items, s->attrs.n, c[0])) != CLEW_OK) {
        return rc;
    }
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_SCOPE, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.wt == WT_LEN) {
            if (f.num == 1) {
                s->name = view(&f);
            } else if (f.num == 2) {
                s->version = view(&f);
            } else if (f.num == 3) {
                if ((rc = add_kv(d, &f, s->attrs.items, &s->attrs.n)) != CLEW_OK) {
                    return rc;
                }
            }
        } else if (f.num == 4 && f.wt == WT_VARINT) {
            s->attrs.dropped = (uint32_t)f.v;
        }
    }
    return CLEW_OK;
}

static clew_status decode_event(dec *d, const uint8_t *p, const uint8_t *end, clew_event_data *e)
{
    size_t c[3];
    clew_status rc = count_fields(d, p, end, M_EVENT, 3, 0, 0, c);
    if (rc != CLEW_OK || (rc = alloc_kvs(d, &e->attrs.items, 0, c[0])) != CLEW_OK) {
        return rc;
    }
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_EVENT, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.num == 1 && f.wt == WT_I64) {
            e->time_ns = f.v;
        } else if (f.num == 2 && f.wt == WT_LEN) {
            e->name = view(&f);
        } else if (f.num == 3 && f.wt == WT_LEN) {
            if ((rc = add_kv(d, &f, e->attrs.items, &e->attrs.n)) != CLEW_OK) {
                return rc;
            }
        } else if (f.num == 4 && f.wt == WT_VARINT) {
            e->attrs.dropped = (uint32_t)f.v;
        }
    }
    return CLEW_OK;
}

/* Link: its ids are raw views until the end, then checked. Returns false in *ok
 * when the ids have the wrong size (the span keeps going without the link). */
static clew_status decode_link(dec *d, const uint8_t *p, const uint8_t *end, clew_link_data *l,
                               bool *ok)
{
    size_t c[3];
    clew_status rc = count_fields(d, p, end, M_LINK, 4, 0, 0, c);
    if (rc != CLEW_OK || (rc = alloc_kvs(d, &l->attrs.items, 0, c[0])) != CLEW_OK) {
        return rc;
    }
    clew_str tid = {NULL, 0}, sid = {NULL, 0};
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_LINK, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.wt == WT_LEN) {
            if (f.num == 1) {
                tid = view(&f);
            } else if (f.num == 2) {
                sid = view(&f);
            } else if (f.num == 3) {
                l->trace_state = view(&f);
            } else if (f.num == 4) {
                if ((rc = add_kv(d, &f, l->attrs.items, &l->attrs.n)) != CLEW_OK) {
                    return rc;
                }
            }
        } else if (f.num == 5 && f.wt == WT_VARINT) {
            l->attrs.dropped = (uint32_t)f.v;
        } else if (f.num == 6 && f.wt == WT_I32) {
            l->flags = (uint32_t)f.v;
        }
    }
    *ok = tid.len == 16 && sid.len == 8;
    if (*ok) {
        memcpy(l->trace_id.bytes, tid.ptr, 16);
        memcpy(l->span_id.bytes, sid.ptr, 8);
    }
    return CLEW_OK;
}

static clew_status decode_status(dec *d, const uint8_t *p, const uint8_t *end, clew_span_data *s)
{
    while (p < end) {
        field f;
        clew_status rc = next_field(d, &p, end, M_STATUS, &f);
        if (rc != CLEW_OK) {
            return rc;
        }
        if (f.num == 2 && f.wt == WT_LEN) {
            s->status_message = view(&f);
        } else if (f.num == 3 && f.wt == WT_VARINT) {
            /* unknown codes (newer OTLP) read as UNSET rather than leak out of the enum */
            s->status_code = f.v <= 2 ? (clew_status_code)f.v : CLEW_STATUS_UNSET;
        }
    }
    return CLEW_OK;
}

typedef struct span_pos {
    size_t span, scope, rs;
} span_pos;

/* Records the first rejection reason (in the arena) and counts the span. */
static clew_status reject(dec *d, const span_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static clew_status reject(dec *d, const span_pos *pos, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return clew__reject_note(&d->batch->rejected, &d->batch->reject_reason, d->arena, d->err,
                             "span %zu of scope %zu of resource %zu: %s", pos->span, pos->scope,
                             pos->rs, why);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

/* Decodes a Span into s. *keep is false when the span failed validation. */
static clew_status decode_span(dec *d, const uint8_t *p, const uint8_t *end, clew_span_data *s,
                               const span_pos *pos, bool *keep)
{
    size_t c[3];
    clew_status rc = count_fields(d, p, end, M_SPAN, 9, 11, 13, c);
    if (rc != CLEW_OK) {
        return rc;
    }
    if ((rc = alloc_kvs(d, &s->attrs.items, 0, c[0])) != CLEW_OK) {
        return rc;
    }
    if (c[1] > UINT32_MAX || c[2] > UINT32_MAX) {
        return fail(d, p, M_SPAN, 0, "too many events or links");
    }
    if (c[1] > 0) {
        s->events = clew__arena_alloc(d->arena, c[1] * sizeof(clew_event_data));
        if (s->events == NULL) {
            return fail_alloc(d);
        }
    }
    if (c[2] > 0) {
        s->links = clew__arena_alloc(d->arena, c[2] * sizeof(clew_link_data));
        if (s->links == NULL) {
            return fail_alloc(d);
        }
    }
    clew_str tid = {NULL, 0}, sid = {NULL, 0}, pid = {NULL, 0};
    uint32_t bad_links = 0;
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_SPAN, &f)) != CLEW_OK) {
            return rc;
        }
        switch (f.wt) {
        case WT_LEN:
            switch (f.num) {
            case 1:
                tid = view(&f);
                break;
            case 2:
                sid = view(&f);
                break;
            case 3:
                s->trace_state = view(&f);
                break;
            case 4:
                pid = view(&f);
                break;
            case 5:
                s->name = view(&f);
                break;
            case 9:
                rc = add_kv(d, &f, s->attrs.items, &s->attrs.n);
                break;
            case 11: {
                clew_event_data *e = &s->events[s->n_events++];
                e->time_ns = 0;
                e->name = empty_str;
                e->attrs = (clew_attrs){NULL, 0, 0};
                rc = decode_event(d, f.ptr, f.ptr + f.len, e);
                break;
            }
            case 13: {
                clew_link_data *l = &s->links[s->n_links];
                memset(l, 0, sizeof(*l));
                l->trace_state = empty_str;
                bool ok = false;
                rc = decode_link(d, f.ptr, f.ptr + f.len, l, &ok);
                if (ok) {
                    s->n_links++;
                } else {
                    /* a link we cannot represent is dropped and counted, not the span */
                    bad_links++;
                }
                break;
            }
            case 15:
                rc = decode_status(d, f.ptr, f.ptr + f.len, s);
                break;
            default:
                break;
            }
            break;
        case WT_VARINT:
            switch (f.num) {
            case 6:
                /* unknown kinds (newer OTLP) read as UNSPECIFIED */
                s->kind = f.v <= 5 ? (clew_span_kind)f.v : CLEW_KIND_UNSPECIFIED;
                break;
            case 10:
                s->attrs.dropped = (uint32_t)f.v;
                break;
            case 12:
                s->dropped_events = (uint32_t)f.v;
                break;
            case 14:
                s->dropped_links = (uint32_t)f.v;
                break;
            default:
                break;
            }
            break;
        case WT_I64:
            if (f.num == 7) {
                s->start_ns = f.v;
            } else if (f.num == 8) {
                s->end_ns = f.v;
            }
            break;
        case WT_I32:
            if (f.num == 16) {
                s->flags = (uint32_t)f.v;
            }
            break;
        default:
            break;
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    s->dropped_links += bad_links;
    *keep = false;
    if (tid.len != 16) {
        return reject(d, pos, "trace_id must be 16 bytes, got %zu", tid.len);
    }
    if (all_zero((const uint8_t *)tid.ptr, 16)) {
        return reject(d, pos, "trace_id must not be all zero");
    }
    if (sid.len != 8) {
        return reject(d, pos, "span_id must be 8 bytes, got %zu", sid.len);
    }
    if (all_zero((const uint8_t *)sid.ptr, 8)) {
        return reject(d, pos, "span_id must not be all zero");
    }
    if (pid.len != 0 && pid.len != 8) {
        return reject(d, pos, "parent_span_id must be empty or 8 bytes, got %zu", pid.len);
    }
    memcpy(s->trace_id.bytes, tid.ptr, 16);
    memcpy(s->span_id.bytes, sid.ptr, 8);
    if (pid.len == 8) {
        memcpy(s->parent_span_id.bytes, pid.ptr, 8);
    }
    *keep = true;
    return CLEW_OK;
}

static const clew_span_data span_template = {
    .trace_state = {"", 0},
    .name = {"", 0},
    .status_message = {"", 0},
};

static clew_status decode_scope_spans(dec *d, const uint8_t *p, const uint8_t *end,
                                      clew_scope_spans *ss, const clew_resource *res, span_pos *pos)
{
    clew_scope *scope = clew__arena_alloc(d->arena, sizeof(*scope));
    if (scope == NULL) {
        return fail_alloc(d);
    }
    *scope = (clew_scope){empty_str, empty_str, {NULL, 0, 0}, empty_str};
    void *spans;
    clew_status rc = alloc_repeated(d, p, end, M_SCOPE_SPANS, 2, sizeof(clew_span_data), &spans);
    if (rc != CLEW_OK) {
        return rc;
    }
    *ss = (clew_scope_spans){scope, spans, 0};
    pos->span = 0;
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_SCOPE_SPANS, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.wt != WT_LEN) {
            continue;
        }
        if (f.num == 1) {
            rc = decode_scope(d, f.ptr, f.ptr + f.len, scope);
        } else if (f.num == 3) {
            scope->schema_url = view(&f);
        } else if (f.num == 2) {
            clew_span_data *s = &ss->spans[ss->n_spans];
            *s = span_template;
            s->resource = res;
            s->scope = scope;
            bool keep = false;
            rc = decode_span(d, f.ptr, f.ptr + f.len, s, pos, &keep);
            if (keep) {
                ss->n_spans++;
            }
            pos->span++;
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    d->batch->n_spans += ss->n_spans;
    return CLEW_OK;
}

static clew_status decode_resource_spans(dec *d, const uint8_t *p, const uint8_t *end,
                                         clew_resource_spans *rs, span_pos *pos)
{
    clew_resource *res = clew__arena_alloc(d->arena, sizeof(*res));
    if (res == NULL) {
        return fail_alloc(d);
    }
    *res = (clew_resource){{NULL, 0, 0}, empty_str};
    void *scopes;
    clew_status rc =
        alloc_repeated(d, p, end, M_RESOURCE_SPANS, 2, sizeof(clew_scope_spans), &scopes);
    if (rc != CLEW_OK) {
        return rc;
    }
    *rs = (clew_resource_spans){res, scopes, 0};
    /* the resource may follow the spans on the wire; spans hold its pointer, so
     * filling it in later is fine */
    pos->scope = 0;
    while (p < end) {
        field f;
        if ((rc = next_field(d, &p, end, M_RESOURCE_SPANS, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.wt != WT_LEN) {
            continue;
        }
        if (f.num == 1) {
            rc = decode_resource(d, f.ptr, f.ptr + f.len, res);
        } else if (f.num == 3) {
            res->schema_url = view(&f);
        } else if (f.num == 2) {
            clew_scope_spans *ss = &rs->scopes[rs->n_scopes++];
            rc = decode_scope_spans(d, f.ptr, f.ptr + f.len, ss, res, pos);
            pos->scope++;
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

clew_status clew__otlp_pb_decode(const uint8_t *data, size_t len, clew_arena *arena,
                                 clew_batch *out, clew_error *err)
{
    static const uint8_t nothing[1] = {0};
    if (data == NULL) {
        data = nothing;
        len = 0;
    }
    clew_batch b = {NULL, 0, 0, 0, {"", 0}};
    dec d = {data, arena, err, &b, 0};
    const uint8_t *p = data, *end = data + len;
    void *list;
    clew_status rc = alloc_repeated(&d, p, end, M_REQUEST, 1, sizeof(clew_resource_spans), &list);
    if (rc != CLEW_OK) {
        return rc;
    }
    b.rs = list;
    span_pos pos = {0, 0, 0};
    while (p < end) {
        field f;
        if ((rc = next_field(&d, &p, end, M_REQUEST, &f)) != CLEW_OK) {
            return rc;
        }
        if (f.wt == WT_LEN && f.num == 1) {
            clew_resource_spans *rs = &b.rs[b.n_rs++];
            if ((rc = decode_resource_spans(&d, f.ptr, f.ptr + f.len, rs, &pos)) != CLEW_OK) {
                return rc;
            }
            pos.rs++;
        }
    }
    *out = b;
    return CLEW_OK;
}

/* ------------------------------------------------------------------------ */
/* encoding                                                                  */
/* ------------------------------------------------------------------------ */

/* Sizes of nested messages in pre-order, filled by the size pass and consumed in
 * the same order by the write pass. */
typedef struct enc {
    uint32_t *sizes;
    size_t n, cap;
    size_t next; /* write pass: next size to use */
    bool failed; /* allocation failed or a message exceeds 4 GiB */
    bool too_big;
    uint8_t *w; /* write pass cursor */
} enc;

static inline size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Reserves a slot for a message size; returns its index. */
static size_t slot_open(enc *e)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        uint32_t *p = clew__realloc(e->sizes, cap * sizeof(uint32_t));
        if (p == NULL) {
            e->failed = true;
            return SIZE_MAX;
        }
        e->sizes = p;
        e->cap = cap;
    }
    return e->n++;
}

/* Stores a message size; returns the size of the field carrying it (tag + length + body). */
static size_t slot_close(enc *e, size_t slot, size_t tag_size, size_t body)
{
    if (body > UINT32_MAX) {
        e->too_big = true;
        body = 0;
    }
    if (slot != SIZE_MAX) {
        e->sizes[slot] = (uint32_t)body;
    }
    return tag_size + varint_size(body) + body;
}

static inline size_t len_field_size(size_t tag_size, size_t n)
{
    return tag_size + varint_size(n) + n;
}

/* Size of a span's Status body (message, code); both passes need it. */
static size_t status_body_size(const clew_span_data *s)
{
    size_t body = 0;
    if (s->status_message.len) {
        body += len_field_size(1, s->status_message.len);
    }
    if (s->status_code) {
        body += 1 + varint_size((uint64_t)s->status_code);
    }
    return body;
}

static size_t size_kvs(enc *e, const clew_kv *items, uint32_t n, size_t tag_size);

static size_t size_any(enc *e, const clew_value *v)
{
    size_t body = 0;
    switch (v->type) {
    case CLEW_VALUE_EMPTY:
        break;
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        body = len_field_size(1, v->u.s.len);
        break;
    case CLEW_VALUE_BOOL:
        body = 2;
        break;
    case CLEW_VALUE_INT:
        body = 1 + varint_size((uint64_t)v->u.i);
        break;
    case CLEW_VALUE_DOUBLE:
        body = 9;
        break;
    case CLEW_VALUE_ARRAY: {
        size_t slot = slot_open(e);
        size_t inner = 0;
        for (uint32_t i = 0; i < v->u.array.n; i++) {
            size_t s = slot_open(e);
            inner += slot_close(e, s, 1, size_any(e, &v->u.array.items[i]));
        }
        body = slot_close(e, slot, 1, inner);
        break;
    }
    case CLEW_VALUE_KVLIST: {
        size_t slot = slot_open(e);
        body = slot_close(e, slot, 1, size_kvs(e, v->u.kvlist.items, v->u.kvlist.n, 1));
        break;
    }
    }
    return body;
}

/* Size of a list of KeyValue fields (each with its tag), recording slots. */
static size_t size_kvs(enc *e, const clew_kv *items, uint32_t n, size_t tag_size)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const clew_kv *kv = &items[i];
        size_t slot = slot_open(e);
        size_t body = kv->key.len ? len_field_size(1, kv->key.len) : 0;
        size_t vslot = slot_open(e);
        body += slot_close(e, vslot, 1, size_any(e, &kv->value));
        total += slot_close(e, slot, tag_size, body);
    }
    return total;
}

static bool resource_empty(const clew_resource *r)
{
    return r == NULL || (r->attrs.n == 0 && r->attrs.dropped == 0);
}

static bool scope_empty(const clew_scope *s)
{
    return s == NULL ||
           (s->name.len == 0 && s->version.len == 0 && s->attrs.n == 0 && s->attrs.dropped == 0);
}

static size_t size_span(enc *e, const clew_span_data *s)
{
    size_t n = 2 + 16 + 2 + 8; /* trace_id, span_id */
    if (s->trace_state.len) {
        n += len_field_size(1, s->trace_state.len);
    }
    if (!all_zero(s->parent_span_id.bytes, 8)) {
        n += 2 + 8;
    }
    if (s->flags) {
        n += 2 + 4;
    }
    if (s->name.len) {
        n += len_field_size(1, s->name.len);
    }
    if (s->kind) {
        n += 1 + varint_size((uint64_t)s->kind);
    }
    if (s->start_ns) {
        n += 9;
    }
    if (s->end_ns) {
        n += 9;
    }
    n += size_kvs(e, s->attrs.items, s->attrs.n, 1);
    if (s->attrs.dropped) {
        n += 1 + varint_size(s->attrs.dropped);
    }
    for (uint32_t i = 0; i < s->n_events; i++) {
        const clew_event_data *ev = &s->events[i];
        size_t slot = slot_open(e);
        size_t body = ev->time_ns ? 9 : 0;
        if (ev->name.len) {
            body += len_field_size(1, ev->name.len);
        }
        body += size_kvs(e, ev->attrs.items, ev->attrs.n, 1);
        if (ev->attrs.dropped) {
            body += 1 + varint_size(ev->attrs.dropped);
        }
        n += slot_close(e, slot, 1, body);
    }
    if (s->dropped_events) {
        n += 1 + varint_size(s->dropped_events);
    }
    for (uint32_t i = 0; i < s->n_links; i++) {
        const clew_link_data *l = &s->links[i];
        size_t slot = slot_open(e);
        size_t body = 2 + 16 + 2 + 8;
        if (l->trace_state.len) {
            body += len_field_size(1, l->trace_state.len);
        }
        body += size_kvs(e, l->attrs.items, l->attrs.n, 1);
        if (l->attrs.dropped) {
            body += 1 + varint_size(l->attrs.dropped);
        }
        if (l->flags) {
            body += 5;
        }
        n += slot_close(e, slot, 1, body);
    }
    if (s->dropped_links) {
        n += 1 + varint_size(s->dropped_links);
    }
    if (s->status_code || s->status_message.len) {
        /* small and flat: recomputed when writing */
        n += len_field_size(1, status_body_size(s));
    }
    return n;
}

static size_t size_request(enc *e, const clew_batch *b)
{
    size_t total = 0;
    for (size_t i = 0; i < b->n_rs; i++) {
        const clew_resource_spans *rs = &b->rs[i];
        size_t slot = slot_open(e);
        size_t body = 0;
        if (!resource_empty(rs->resource)) {
            size_t rslot = slot_open(e);
            size_t rb = size_kvs(e, rs->resource->attrs.items, rs->resource->attrs.n, 1);
            if (rs->resource->attrs.dropped) {
                rb += 1 + varint_size(rs->resource->attrs.dropped);
            }
            body += slot_close(e, rslot, 1, rb);
        }
        for (size_t j = 0; j < rs->n_scopes; j++) {
            const clew_scope_spans *ss = &rs->scopes[j];
            size_t sslot = slot_open(e);
            size_t sb = 0;
            if (!scope_empty(ss->scope)) {
                const clew_scope *sc = ss->scope;
                size_t cslot = slot_open(e);
                size_t cb = 0;
                if (sc->name.len) {
                    cb += len_field_size(1, sc->name.len);
                }
                if (sc->version.len) {
                    cb += len_field_size(1, sc->version.len);
                }
                cb += size_kvs(e, sc->attrs.items, sc->attrs.n, 1);
                if (sc->attrs.dropped) {
                    cb += 1 + varint_size(sc->attrs.dropped);
                }
                sb += slot_close(e, cslot, 1, cb);
            }
            for (size_t k = 0; k < ss->n_spans; k++) {
                size_t spslot = slot_open(e);
                sb += slot_close(e, spslot, 1, size_span(e, &ss->spans[k]));
            }
            if (ss->scope != NULL && ss->scope->schema_url.len) {
                sb += len_field_size(1, ss->scope->schema_url.len);
            }
            body += slot_close(e, sslot, 1, sb);
        }
        if (rs->resource != NULL && rs->resource->schema_url.len) {
            body += len_field_size(1, rs->resource->schema_url.len);
        }
        total += slot_close(e, slot, 1, body);
    }
    return total;
}

/* ---- write pass: the buffer has room for everything, so no checks ---- */

static inline void put_varint(enc *e, uint64_t v)
{
    uint8_t *w = e->w;
    while (v >= 0x80) {
        *w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    e->w = w;
}

static inline void put_byte(enc *e, uint8_t c)
{
    *e->w++ = c;
}

static inline void put_tag(enc *e, uint32_t num, uint32_t wt)
{
    put_varint(e, ((uint64_t)num << 3) | wt);
}

static inline void put_bytes(enc *e, const void *p, size_t n)
{
    if (n) {
        memcpy(e->w, p, n);
        e->w += n;
    }
}

static inline void put_len_field(enc *e, uint32_t num, const void *p, size_t n)
{
    put_tag(e, num, WT_LEN);
    put_varint(e, n);
    put_bytes(e, p, n);
}

static inline void put_fixed(enc *e, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        *e->w++ = (uint8_t)(v >> (8 * i));
    }
}

/* Opens a nested message: tag and the length recorded by the size pass. */
static inline void put_open(enc *e, uint32_t num)
{
    put_tag(e, num, WT_LEN);
    put_varint(e, e->sizes[e->next++]);
}

static void put_kvs(enc *e, uint32_t num, const clew_kv *items, uint32_t n);

static void put_any(enc *e, const clew_value *v)
{
    switch (v->type) {
    case CLEW_VALUE_EMPTY:
        break;
    case CLEW_VALUE_STRING:
        put_len_field(e, 1, v->u.s.ptr, v->u.s.len);
        break;
    case CLEW_VALUE_BYTES:
        put_len_field(e, 7, v->u.s.ptr, v->u.s.len);
        break;
    case CLEW_VALUE_BOOL:
        put_byte(e, 0x10);
        put_byte(e, v->u.b ? 1 : 0);
        break;
    case CLEW_VALUE_INT:
        put_byte(e, 0x18);
        put_varint(e, (uint64_t)v->u.i);
        break;
    case CLEW_VALUE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, sizeof(bits));
        put_byte(e, 0x21);
        put_fixed(e, bits, 8);
        break;
    }
    case CLEW_VALUE_ARRAY:
        put_open(e, 5);
        for (uint32_t i = 0; i < v->u.array.n; i++) {
            put_open(e, 1);
            put_any(e, &v->u.array.items[i]);
        }
        break;
    case CLEW_VALUE_KVLIST:
        put_open(e, 6);
        put_kvs(e, 1, v->u.kvlist.items, v->u.kvlist.n);
        break;
    }
}

static void put_kvs(enc *e, uint32_t num, const clew_kv *items, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        put_open(e, num);
        if (items[i].key.len) {
            put_len_field(e, 1, items[i].key.ptr, items[i].key.len);
        }
        put_open(e, 2);
        put_any(e, &items[i].value);
    }
}

static void put_uint_field(enc *e, uint32_t num, uint64_t v)
{
    if (v) {
        put_tag(e, num, WT_VARINT);
        put_varint(e, v);
    }
}

static void put_span(enc *e, const clew_span_data *s)
{
    put_len_field(e, 1, s->trace_id.bytes, 16);
    put_len_field(e, 2, s->span_id.bytes, 8);
    if (s->trace_state.len) {
        put_len_field(e, 3, s->trace_state.ptr, s->trace_state.len);
    }
    if (!all_zero(s->parent_span_id.bytes, 8)) {
        put_len_field(e, 4, s->parent_span_id.bytes, 8);
    }
    if (s->name.len) {
        put_len_field(e, 5, s->name.ptr, s->name.len);
    }
    put_uint_field(e, 6, (uint64_t)s->kind);
    if (s->start_ns) {
        put_byte(e, 0x39);
        put_fixed(e, s->start_ns, 8);
    }
    if (s->end_ns) {
        put_byte(e, 0x41);
        put_fixed(e, s->end_ns, 8);
    }
    put_kvs(e, 9, s->attrs.items, s->attrs.n);
    put_uint_field(e, 10, s->attrs.dropped);
    for (uint32_t i = 0; i < s->n_events; i++) {
        const clew_event_data *ev = &s->events[i];
        put_open(e, 11);
        if (ev->time_ns) {
            put_byte(e, 0x09);
            put_fixed(e, ev->time_ns, 8);
        }
        if (ev->name.len) {
            put_len_field(e, 2, ev->name.ptr, ev->name.len);
        }
        put_kvs(e, 3, ev->attrs.items, ev->attrs.n);
        put_uint_field(e, 4, ev->attrs.dropped);
    }
    put_uint_field(e, 12, s->dropped_events);
    for (uint32_t i = 0; i < s->n_links; i++) {
        const clew_link_data *l = &s->links[i];
        put_open(e, 13);
        put_len_field(e, 1, l->trace_id.bytes, 16);
        put_len_field(e, 2, l->span_id.bytes, 8);
        if (l->trace_state.len) {
            put_len_field(e, 3, l->trace_state.ptr, l->trace_state.len);
        }
        put_kvs(e, 4, l->attrs.items, l->attrs.n);
        put_uint_field(e, 5, l->attrs.dropped);
        if (l->flags) {
            put_byte(e, 0x35);
            put_fixed(e, l->flags, 4);
        }
    }
    put_uint_field(e, 14, s->dropped_links);
    if (s->status_code || s->status_message.len) {
        put_tag(e, 15, WT_LEN);
        put_varint(e, status_body_size(s));
        if (s->status_message.len) {
            put_len_field(e, 2, s->status_message.ptr, s->status_message.len);
        }
        put_uint_field(e, 3, (uint64_t)s->status_code);
    }
    /* flags last: field 16 was added after 15 and senders put it here too */
    if (s->flags) {
        put_byte(e, 0x85);
        put_byte(e, 0x01);
        put_fixed(e, s->flags, 4);
    }
}

static void put_request(enc *e, const clew_batch *b)
{
    for (size_t i = 0; i < b->n_rs; i++) {
        const clew_resource_spans *rs = &b->rs[i];
        put_open(e, 1);
        if (!resource_empty(rs->resource)) {
            put_open(e, 1);
            put_kvs(e, 1, rs->resource->attrs.items, rs->resource->attrs.n);
            put_uint_field(e, 2, rs->resource->attrs.dropped);
        }
        for (size_t j = 0; j < rs->n_scopes; j++) {
            const clew_scope_spans *ss = &rs->scopes[j];
            put_open(e, 2);
            if (!scope_empty(ss->scope)) {
                const clew_scope *sc = ss->scope;
                put_open(e, 1);
                if (sc->name.len) {
                    put_len_field(e, 1, sc->name.ptr, sc->name.len);
                }
                if (sc->version.len) {
                    put_len_field(e, 2, sc->version.ptr, sc->version.len);
                }
                put_kvs(e, 3, sc->attrs.items, sc->attrs.n);
                put_uint_field(e, 4, sc->attrs.dropped);
            }
            for (size_t k = 0; k < ss->n_spans; k++) {
                put_open(e, 2);
                put_span(e, &ss->spans[k]);
            }
            if (ss->scope != NULL && ss->scope->schema_url.len) {
                put_len_field(e, 3, ss->scope->schema_url.ptr, ss->scope->schema_url.len);
            }
        }
        if (rs->resource != NULL && rs->resource->schema_url.len) {
            put_len_field(e, 3, rs->resource->schema_url.ptr, rs->resource->schema_url.len);
        }
    }
}

clew_status clew__otlp_pb_encode(const clew_batch *b, clew_buf *out)
{
    enc e = {0};
    size_t total = size_request(&e, b);
    clew_status rc = CLEW_OK;
    if (e.failed) {
        rc = CLEW_ENOMEM;
    } else if (e.too_big) {
        rc = CLEW_ETOOBIG;
    } else if ((rc = clew__buf_reserve(out, total)) == CLEW_OK) {
        e.w = (uint8_t *)out->data + out->len;
        put_request(&e, b);
        out->len += total;
        out->data[out->len] = '\0';
    }
    clew__free(e.sizes);
    return rc;
}

/* ---- responses ---- */

/* Appends a message of varint field 1 (`v`, left out when 0) and string field 2
 * (left out when empty), the shape of both ExportTracePartialSuccess and
 * google.rpc.Status; `wrapped` puts it in field 1 of an outer message, which is
 * left out as a whole when the inner one is empty. */
static clew_status put_code_message(clew_buf *out, uint64_t v, clew_str message, bool wrapped)
{
    size_t body = (v ? 1 + varint_size(v) : 0) + (message.len ? len_field_size(1, message.len) : 0);
    if (wrapped && body == 0) {
        return CLEW_OK;
    }
    size_t total = wrapped ? len_field_size(1, body) : body;
    clew_status rc = clew__buf_reserve(out, total);
    if (rc != CLEW_OK) {
        return rc;
    }
    enc e = {0};
    e.w = (uint8_t *)out->data + out->len;
    if (wrapped) {
        put_tag(&e, 1, WT_LEN);
        put_varint(&e, body);
    }
    put_uint_field(&e, 1, v);
    if (message.len) {
        put_len_field(&e, 2, message.ptr, message.len);
    }
    out->len += total;
    if (out->data != NULL) {
        out->data[out->len] = '\0';
    }
    return CLEW_OK;
}

clew_status clew__otlp_pb_encode_response(uint64_t rejected, clew_str message, clew_buf *out)
{
    /* an empty ExportTraceServiceResponse is zero bytes */
    return put_code_message(out, rejected, message, true);
}

clew_status clew__rpc_status_pb_encode(int32_t code, clew_str message, clew_buf *out)
{
    /* int32 is sign-extended to 64 bits on the wire, so a negative code takes 10 bytes */
    return put_code_message(out, (uint64_t)(int64_t)code, message, false);
}
