/*
 * src/store/store.c - backend-independent parts of the storage interface: freeing
 * results and matching attribute values against search text.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/base64.h"

void clew__trace_result_free(clew_trace_result *t)
{
    if (t == NULL) {
        return;
    }
    clew__arena_deinit(&t->arena);
    clew__free(t);
}

void clew__search_result_free(clew_search_result *r)
{
    if (r == NULL) {
        return;
    }
    clew__arena_deinit(&r->arena);
    clew__free(r);
}

void clew__name_list_free(clew_name_list *l)
{
    if (l == NULL) {
        return;
    }
    clew__arena_deinit(&l->arena);
    clew__free(l);
}

static bool text_eq(clew_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.ptr, lit, n) == 0;
}

/* Parses an optionally signed decimal integer that fills all of `t` (no spaces,
 * no leading '+' beyond one sign, no overflow). */
bool clew__tag_text_i64(clew_str t, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (t.len == 0) {
        return false;
    }
    if (t.ptr[0] == '-' || t.ptr[0] == '+') {
        neg = t.ptr[0] == '-';
        i = 1;
    }
    if (i == t.len) {
        return false;
    }
    uint64_t v = 0;
    for (; i < t.len; i++) {
        char c = t.ptr[i];
        if (c < '0' || c > '9') {
            return false;
        }
        if (v > (UINT64_MAX - (uint64_t)(c - '0')) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return false;
        }
        *out = (int64_t)v;
    }
    return true;
}

/* strtod needs a NUL-terminated string: copy the (short) text to the stack. Texts
 * longer than any sensible number do not match. The whole text must be consumed. */
bool clew__tag_text_double(clew_str t, double *out)
{
    char tmp[64];
    if (t.len == 0 || t.len >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, t.ptr, t.len);
    tmp[t.len] = '\0';
    if (memchr(tmp, '\0', t.len) != NULL) {
        return false;
    }
    char *end = NULL;
    double d = strtod(tmp, &end);
    if (end != tmp + t.len) {
        return false;
    }
    *out = d;
    return true;
}

/* Compares raw bytes with standard padded base64 text without allocating: the form
 * the Jaeger v1 API shows binary tags in, so a user can paste what they see. */
static bool bytes_match_base64(clew_str raw, clew_str text)
{
    if (text.len != CLEW_BASE64_LEN(raw.len)) {
        return false;
    }
    const uint8_t *p = (const uint8_t *)raw.ptr;
    size_t o = 0;
    for (size_t i = 0; i < raw.len; i += 3) {
        char q[4];
        clew__base64_quad(p + i, raw.len - i, q);
        if (memcmp(q, text.ptr + o, 4) != 0) {
            return false;
        }
        o += 4;
    }
    return true;
}

bool clew__value_matches_text(const clew_value *v, clew_str text)
{
    if (v == NULL) {
        return false;
    }
    switch (v->type) {
    case CLEW_VALUE_STRING:
        return v->u.s.len == text.len &&
               (text.len == 0 || memcmp(v->u.s.ptr, text.ptr, text.len) == 0);
    case CLEW_VALUE_BOOL:
        return text_eq(text, v->u.b ? "true" : "false");
    case CLEW_VALUE_INT: {
        int64_t i;
        return clew__tag_text_i64(text, &i) && i == v->u.i;
    }
    case CLEW_VALUE_DOUBLE: {
        double d;
        /* numeric comparison: "1.5", "1.50" and "15e-1" all match 1.5; NaN never matches */
        return clew__tag_text_double(text, &d) && d == v->u.d;
    }
    case CLEW_VALUE_BYTES:
        return bytes_match_base64(v->u.s, text);
    case CLEW_VALUE_EMPTY:
        return text.len == 0;
    case CLEW_VALUE_ARRAY:
    case CLEW_VALUE_KVLIST:
        /* no agreed text form; searching inside structured values is out of scope */
        return false;
    }
    return false;
}
