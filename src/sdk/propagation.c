/*
 * src/sdk/propagation.c - propagator objects (built-ins and the composite
 * chosen by an OTEL_PROPAGATORS-style list), the header-list carriers and the
 * SQL comment carrier.
 */
#include "sdk/propagation_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/hex.h"

#define MAX_OPS 8

struct clew_propagator {
    bool is_static; /* built-ins are never freed */
    size_t n;
    const clew__propagator_ops *ops[MAX_OPS];
    char name[96];
};

static const clew_propagator p_tracecontext = {true, 1, {&clew__tracecontext_ops}, "tracecontext"};
static const clew_propagator p_baggage = {true, 1, {&clew__baggage_ops}, "baggage"};
static const clew_propagator p_b3 = {true, 1, {&clew__b3_single_ops}, "b3"};
static const clew_propagator p_b3multi = {true, 1, {&clew__b3_multi_ops}, "b3multi"};
static const clew_propagator p_jaeger = {true, 1, {&clew__jaeger_ops}, "jaeger"};

const clew_propagator *clew_propagator_tracecontext(void)
{
    return &p_tracecontext;
}

const clew_propagator *clew_propagator_baggage(void)
{
    return &p_baggage;
}

const clew_propagator *clew_propagator_b3(void)
{
    return &p_b3;
}

const clew_propagator *clew_propagator_b3multi(void)
{
    return &p_b3multi;
}

const clew_propagator *clew_propagator_jaeger(void)
{
    return &p_jaeger;
}

const char *clew_propagator_name(const clew_propagator *p)
{
    return p != NULL ? p->name : "";
}

static const clew__propagator_ops *ops_by_name(clew_str n)
{
    static const clew__propagator_ops *const all[] = {
        &clew__tracecontext_ops, &clew__baggage_ops, &clew__b3_single_ops,
        &clew__b3_multi_ops,     &clew__jaeger_ops,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strlen(all[i]->name) == n.len && strncasecmp(all[i]->name, n.ptr, n.len) == 0) {
            return all[i];
        }
    }
    return NULL;
}

static void name_append(clew_propagator *p, const char *s)
{
    size_t used = strlen(p->name);
    snprintf(p->name + used, sizeof(p->name) - used, "%s%s", used > 0 ? "," : "", s);
}

clew_status clew_propagator_create(const char *names, clew_propagator **out, clew_str *out_unknown)
{
    if (out == NULL) {
        return CLEW_EINVAL;
    }
    /* OTEL_* rule: an empty value is the same as unset. */
    clew_str list = {names != NULL ? names : "", names != NULL ? strlen(names) : 0};
    if (clew__trim_ows(list).len == 0) {
        list = (clew_str){"tracecontext,baggage", 20};
    }
    clew_propagator *p = clew__calloc(1, sizeof(*p));
    if (p == NULL) {
        return CLEW_ENOMEM;
    }
    bool unknown = false;
    size_t start = 0;
    while (start <= list.len) {
        const char *comma =
            list.len > start ? memchr(list.ptr + start, ',', list.len - start) : NULL;
        size_t end = comma ? (size_t)(comma - list.ptr) : list.len;
        clew_str item = clew__trim_ows((clew_str){list.ptr + start, end - start});
        start = end + 1;
        if (item.len == 0 || (item.len == 4 && strncasecmp(item.ptr, "none", 4) == 0)) {
            continue;
        }
        const clew__propagator_ops *ops = ops_by_name(item);
        if (ops == NULL) {
            if (!unknown && out_unknown != NULL) {
                *out_unknown = item;
            }
            unknown = true;
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < p->n; i++) {
            dup |= p->ops[i] == ops;
        }
        if (!dup && p->n < MAX_OPS) {
            p->ops[p->n++] = ops;
            name_append(p, ops->name);
        }
    }
    if (p->n == 0) {
        name_append(p, "none");
    }
    *out = p;
    return unknown ? CLEW_EUNSUPPORTED : CLEW_OK;
}

void clew_propagator_destroy(const clew_propagator *p)
{
    if (p != NULL && !p->is_static) {
        clew__free((void *)p);
    }
}

clew_status clew_propagator_inject(const clew_propagator *p, const clew_span_context *sc,
                                   const clew_baggage *baggage, const clew_carrier *c)
{
    if (p == NULL || c == NULL || c->set == NULL) {
        return CLEW_EINVAL;
    }
    if (p->n == 1) {
        return p->ops[0]->inject(sc, baggage, c);
    }
    for (size_t i = 0; i < p->n; i++) {
        clew_status rc = p->ops[i]->inject(sc, baggage, c);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

/* Copies a span context without the unused tail of the tracestate buffer. */
static void sc_copy(clew_span_context *dst, const clew_span_context *src)
{
    memcpy(dst, src, offsetof(clew_span_context, tracestate));
    dst->tracestate.len = src->tracestate.len;
    dst->tracestate.count = src->tracestate.count;
    memcpy(dst->tracestate.member_off, src->tracestate.member_off,
           src->tracestate.count * sizeof(src->tracestate.member_off[0]));
    memcpy(dst->tracestate.buf, src->tracestate.buf, src->tracestate.len);
}

/* Two or more propagators (the composite's two contexts are big: kept out of
 * the single-propagator path, which then needs no stack frame). */
static __attribute__((noinline)) clew_status extract_composite(const clew_propagator *p,
                                                               const clew_carrier *c,
                                                               clew_span_context *out_sc,
                                                               clew_baggage *baggage)
{
    clew_span_context tmp, found;
    bool have = false, bad = false, nomem = false;
    for (size_t i = 0; i < p->n; i++) {
        clew_status rc = p->ops[i]->extract(c, &tmp, baggage);
        if (rc == CLEW_OK) {
            /* Like OpenTelemetry's composite: a later valid context replaces an earlier one. */
            sc_copy(&found, &tmp);
            have = true;
        } else if (rc == CLEW_EPARSE) {
            bad = true;
        } else if (rc == CLEW_ENOMEM) {
            nomem = true;
        }
    }
    if (nomem) {
        return CLEW_ENOMEM;
    }
    if (have) {
        sc_copy(out_sc, &found);
        return CLEW_OK;
    }
    return bad ? CLEW_EPARSE : CLEW_ENOTFOUND;
}

clew_status clew_propagator_extract(const clew_propagator *p, const clew_carrier *c,
                                    clew_span_context *out_sc, clew_baggage *baggage)
{
    if (p == NULL || c == NULL || c->get == NULL || out_sc == NULL) {
        return CLEW_EINVAL;
    }
    if (p->n == 1) {
        /* Every extract writes its output only on success: no copy needed. */
        return p->ops[0]->extract(c, out_sc, baggage);
    }
    return extract_composite(p, c, out_sc, baggage);
}

/* ---- header-list carriers --------------------------------------------------- */

void clew_header_list_init(clew_header_list *l, clew_header *items, size_t count, size_t capacity,
                           char *buf, size_t buf_cap)
{
    l->items = items;
    l->count = count;
    l->capacity = capacity;
    l->buf = buf;
    l->buf_len = 0;
    l->buf_cap = buf != NULL ? buf_cap : 0;
    l->case_sensitive = false;
}

/* ASCII case-insensitive equality of n bytes: what HTTP field names need, and
 * inline (strncasecmp's call and locale handling cost more than the compare of
 * a short name). */
static inline bool ascii_case_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x != y) {
            unsigned char lx = x | 0x20;
            if (lx != (y | 0x20) || lx < 'a' || lx > 'z') {
                return false;
            }
        }
    }
    return true;
}

/* The case-insensitive retry, out of line: it keeps the common path of the
 * getter and setter small (fewer registers to save on every call). */
static __attribute__((noinline)) bool name_eq_fold(const clew_header_list *l, const char *a,
                                                   const char *b, size_t n)
{
    return !l->case_sensitive && ascii_case_eq(a, b, n);
}

static inline bool name_eq(const clew_header_list *l, clew_str name, const char *key, size_t klen)
{
    if (name.len != klen) {
        return false;
    }
    /* names usually arrive in the case they are looked up in: try that first */
    return clew__bytes_eq(name.ptr, key, klen) || name_eq_fold(l, name.ptr, key, klen);
}

static size_t hl_get(void *ctx, const char *key, clew_str *values, size_t max_values)
{
    clew_header_list *l = ctx;
    size_t klen = clew__key_len(key), n = 0;
    for (size_t i = 0; i < l->count; i++) {
        if (name_eq(l, l->items[i].name, key, klen)) {
            if (n < max_values) {
                values[n] = l->items[i].value;
            }
            n++;
        }
    }
    return n;
}

/* The setter's bookkeeping: makes `key` an entry (replacing an existing one,
 * removing later duplicates) whose value is the next len bytes of buf, and
 * returns where they go in *dst ("" for an empty value). The caller writes
 * them. */
static clew_status hl_put(clew_header_list *l, const char *key, size_t len, char **dst)
{
    size_t klen = clew__key_len(key);
    if (l->buf_cap - l->buf_len < len) {
        return CLEW_EFULL;
    }
    long at = -1;
    for (size_t i = 0; i < l->count; i++) {
        if (name_eq(l, l->items[i].name, key, klen)) {
            at = (long)i;
            break;
        }
    }
    if (at < 0 && l->count == l->capacity) {
        return CLEW_EFULL;
    }
    /* Later duplicates would make the receiver see two values: remove them. */
    for (size_t i = l->count; at >= 0 && i-- > (size_t)at + 1;) {
        if (name_eq(l, l->items[i].name, key, klen)) {
            memmove(&l->items[i], &l->items[i + 1], (l->count - i - 1) * sizeof(l->items[0]));
            l->count--;
        }
    }
    /* An empty value needs no storage (and buf may be NULL). */
    char *d = (char *)"";
    if (len > 0) {
        d = l->buf + l->buf_len;
    }
    l->buf_len += len;
    if (at < 0) {
        at = (long)l->count++;
    }
    l->items[at].name = (clew_str){key, klen};
    l->items[at].value = (clew_str){d, len};
    *dst = d;
    return CLEW_OK;
}

static clew_status hl_set(void *ctx, const char *key, clew_str value)
{
    char *dst;
    clew_status rc = hl_put(ctx, key, value.len, &dst);
    if (rc == CLEW_OK && value.len > 0) {
        memcpy(dst, value.ptr, value.len);
    }
    return rc;
}

clew_status clew__carrier_reserve(const clew_carrier *c, const char *key, size_t len, char **dst)
{
    if (c->set != hl_set || len == 0) {
        return CLEW_EUNSUPPORTED;
    }
    return hl_put(c->ctx, key, len, dst);
}

clew_carrier clew_http_headers_carrier(clew_header_list *l)
{
    l->case_sensitive = false;
    return (clew_carrier){l, hl_get, hl_set};
}

clew_carrier clew_message_headers_carrier(clew_header_list *l)
{
    l->case_sensitive = true;
    return (clew_carrier){l, hl_get, hl_set};
}

/* ---- SQL comments ------------------------------------------------------------ */

/* Longest comment body extraction looks at; real ones are under 1.7 KiB. */
#define SQL_MAX_COMMENT 4096

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

typedef struct sqlw {
    char *out;
    size_t cap, len;
    bool full;
} sqlw;

static void w_put(sqlw *w, const char *s, size_t n)
{
    if (w->full || w->cap - w->len < n + 1) {
        w->full = true;
        return;
    }
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

static void w_urlenc(sqlw *w, clew_str v)
{
    static const char hexdig[] = "0123456789ABCDEF";
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (is_unreserved(c)) {
            w_put(w, (const char *)&v.ptr[i], 1);
        } else {
            char e[3] = {'%', hexdig[c >> 4], hexdig[c & 15]};
            w_put(w, e, 3);
        }
    }
}

static bool has_comment(const char *q, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if ((q[i] == '/' && q[i + 1] == '*') || (q[i] == '-' && q[i + 1] == '-')) {
            return true;
        }
    }
    return false;
}

static bool is_sql_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

clew_status clew_sql_comment_inject(const clew_span_context *sc, const char *query, size_t qlen,
                                    char *out, size_t cap, size_t *out_len)
{
    if ((query == NULL && qlen > 0) || out == NULL || cap == 0) {
        return CLEW_EINVAL;
    }
    sqlw w = {out, cap, 0, false};
    char tp[CLEW_TRACEPARENT_SIZE];
    if (clew_traceparent_format(sc, tp) != CLEW_OK || has_comment(query, qlen)) {
        /* sqlcommenter: a statement that already has a comment is left alone. */
        w_put(&w, query, qlen);
    } else {
        size_t body = qlen;
        while (body > 0 && is_sql_space(query[body - 1])) {
            body--;
        }
        bool semi = body > 0 && query[body - 1] == ';';
        if (semi) {
            body--;
            while (body > 0 && is_sql_space(query[body - 1])) {
                body--;
            }
        }
        w_put(&w, query, body);
        w_put(&w, body > 0 ? " /*traceparent='" : "/*traceparent='", body > 0 ? 16 : 15);
        w_urlenc(&w, (clew_str){tp, CLEW_TRACEPARENT_LEN});
        w_put(&w, "'", 1);
        if (sc->tracestate.len > 0) {
            w_put(&w, ",tracestate='", 13);
            w_urlenc(&w, clew_tracestate_str(&sc->tracestate));
            w_put(&w, "'", 1);
        }
        w_put(&w, "*/", 2);
        if (semi) {
            w_put(&w, ";", 1);
        }
    }
    if (w.full) {
        return CLEW_ETOOBIG;
    }
    out[w.len] = '\0';
    if (out_len != NULL) {
        *out_len = w.len;
    }
    return CLEW_OK;
}

clew_status clew_sql_comment_extract(const char *query, size_t qlen, clew_span_context *out_sc)
{
    if ((query == NULL && qlen > 0) || out_sc == NULL) {
        return CLEW_EINVAL;
    }
    /* The last comment: last "*" "/" and the last "/" "*" before it. */
    size_t close = qlen, open = qlen;
    for (size_t i = qlen; i >= 2; i--) {
        if (query[i - 2] == '*' && query[i - 1] == '/') {
            close = i - 2;
            break;
        }
    }
    for (size_t i = close; close < qlen && i >= 2; i--) {
        if (query[i - 2] == '/' && query[i - 1] == '*') {
            open = i;
            break;
        }
    }
    if (close >= qlen || open >= qlen || open > close) {
        return CLEW_ENOTFOUND;
    }
    const char *s = query + open;
    size_t n = close - open;
    if (n > SQL_MAX_COMMENT) {
        return CLEW_EPARSE;
    }
    /* Decoded values are never longer than their encoded form. */
    char vbuf[SQL_MAX_COMMENT];
    size_t vlen = 0;
    clew_header items[8];
    clew_header_list l;
    clew_header_list_init(&l, items, 0, 8, NULL, 0);
    size_t i = 0;
    while (i < n) {
        while (i < n && is_sql_space(s[i])) {
            i++;
        }
        if (i == n) {
            break;
        }
        size_t ks = i;
        while (i < n && s[i] != '=') {
            i++;
        }
        if (i + 1 >= n || s[i + 1] != '\'') {
            return CLEW_EPARSE;
        }
        clew_str key = {s + ks, i - ks};
        i += 2;
        size_t vs = vlen;
        bool closed = false;
        while (i < n) {
            char ch = s[i];
            if (ch == '\\' && i + 1 < n) {
                ch = s[++i];
            } else if (ch == '\'') {
                closed = true;
                i++;
                break;
            } else if (ch == '%') {
                int h = i + 2 < n ? clew__hex_digit(s[i + 1]) : -1,
                    lo = i + 2 < n ? clew__hex_digit(s[i + 2]) : -1;
                if (h < 0 || lo < 0) {
                    return CLEW_EPARSE;
                }
                ch = (char)(h << 4 | lo);
                i += 2;
            }
            vbuf[vlen++] = ch;
            i++;
        }
        if (!closed) {
            return CLEW_EPARSE;
        }
        if (l.count < l.capacity) {
            items[l.count++] = (clew_header){key, {vbuf + vs, vlen - vs}};
        }
        while (i < n && is_sql_space(s[i])) {
            i++;
        }
        if (i < n && s[i] != ',') {
            return CLEW_EPARSE;
        }
        i++;
    }
    /* sqlcommenter keys are case-sensitive; reuse the tracecontext extractor. */
    clew_carrier c = clew_message_headers_carrier(&l);
    return clew__tracecontext_ops.extract(&c, out_sc, NULL);
}
