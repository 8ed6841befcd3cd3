/*
 * src/query/params.c - percent-decoding and query string splitting; see params.h.
 */
#include "query/params.h"

#include <string.h>

#include "common/hex.h"

clew_status clew__percent_decode(const char *src, size_t len, bool plus_is_space, char *dst,
                                 size_t *out_len, clew_error *err)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi = i + 1 < len ? clew__hex_digit(src[i + 1]) : -1;
            int lo = i + 2 < len ? clew__hex_digit(src[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                clew__error_set(err, i, "'%%' not followed by two hex digits");
                return CLEW_EPARSE;
            }
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            dst[o++] = ' ';
        } else {
            dst[o++] = c;
        }
    }
    *out_len = o;
    return CLEW_OK;
}

clew_status clew__percent_decode_str(clew_str src, bool plus_is_space, clew_arena *a, clew_str *out,
                                     clew_error *err)
{
    char *dst = clew__arena_alloc(a, src.len + 1);
    if (dst == NULL) {
        clew__error_set(err, 0, "out of memory");
        return CLEW_ENOMEM;
    }
    size_t n = 0;
    clew_status rc = clew__percent_decode(src.ptr, src.len, plus_is_space, dst, &n, err);
    if (rc != CLEW_OK) {
        return rc;
    }
    dst[n] = '\0';
    *out = (clew_str){dst, n};
    return CLEW_OK;
}

clew_status clew__query_parse(clew_str query, clew_arena *a, clew_query_params *out,
                              clew_error *err)
{
    if (query.len == 0) {
        out->items = NULL;
        out->n = 0;
        return CLEW_OK;
    }
    /* count the pieces first so the array is allocated once */
    size_t pieces = 1;
    for (size_t i = 0; i < query.len; i++) {
        pieces += query.ptr[i] == '&';
    }
    clew_query_param *items = clew__arena_calloc(a, pieces, sizeof(*items));
    if (items == NULL) {
        clew__error_set(err, 0, "out of memory");
        return CLEW_ENOMEM;
    }
    size_t n = 0, pos = 0;
    while (pos <= query.len) {
        const char *p = query.ptr + pos;
        const char *amp = memchr(p, '&', query.len - pos);
        size_t plen = amp ? (size_t)(amp - p) : query.len - pos;
        if (plen > 0) {
            if (n == CLEW_QUERY_MAX_PARAMS) {
                clew__error_set(err, pos, "too many query parameters (more than %d)",
                                CLEW_QUERY_MAX_PARAMS);
                return CLEW_ETOOBIG;
            }
            const char *eq = memchr(p, '=', plen);
            size_t klen = eq ? (size_t)(eq - p) : plen;
            clew_str k = {p, klen};
            clew_str v = {eq ? eq + 1 : p + plen, eq ? plen - klen - 1 : 0};
            clew_status rc = clew__percent_decode_str(k, true, a, &items[n].key, err);
            if (rc == CLEW_EPARSE) {
                clew__error_set(err, pos + (err ? err->offset : 0),
                                "bad percent-encoding in a query parameter name at byte %zu: "
                                "'%%' must be followed by two hex digits",
                                pos + (err ? err->offset : 0));
                return rc;
            }
            if (rc == CLEW_OK) {
                rc = clew__percent_decode_str(v, true, a, &items[n].value, err);
            }
            if (rc == CLEW_EPARSE) {
                size_t at = (size_t)(v.ptr - query.ptr) + (err ? err->offset : 0);
                /* the key decoded fine: name it so the user knows which value is bad */
                clew__error_set(err, at,
                                "bad percent-encoding in query parameter \"%.*s\" at byte %zu: "
                                "'%%' must be followed by two hex digits",
                                (int)(items[n].key.len > 64 ? 64 : items[n].key.len),
                                items[n].key.ptr, at);
            }
            if (rc != CLEW_OK) {
                return rc;
            }
            n++;
        }
        pos += plen + 1;
    }
    out->items = items;
    out->n = n;
    return CLEW_OK;
}

const clew_str *clew__query_get(const clew_query_params *p, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < p->n; i++) {
        if (p->items[i].key.len == kl && memcmp(p->items[i].key.ptr, key, kl) == 0) {
            return &p->items[i].value;
        }
    }
    return NULL;
}
