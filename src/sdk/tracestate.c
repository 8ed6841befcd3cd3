/*
 * src/sdk/tracestate.c - the W3C tracestate list (Trace Context Level 2 key
 * grammar), held inline in clew_tracestate; see clew/context.h.
 *
 * Invariant of clew_tracestate: buf[0..len) is exactly the header value
 * "k1=v1,...,kn=vn" without OWS, every member valid, keys unique, count <= 32,
 * member_off[i] the start of member i. Every mutation rebuilds a candidate list
 * of views first and commits it only when it is valid, so a failed call leaves
 * the value unchanged.
 */
#include "sdk/propagation_internal.h"

#include <string.h>

/* One member as views into some buffer: the whole "k=v" text and the key length. */
typedef struct ts_member {
    const char *ptr;
    size_t len;
    size_t key_len;
} ts_member;

static bool is_lcalpha_digit(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Level 2: key = (lcalpha / DIGIT) 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"). */
static bool key_valid(const char *k, size_t n)
{
    if (n == 0 || n > CLEW_TRACESTATE_MAX_KEY || !is_lcalpha_digit((unsigned char)k[0])) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (!is_lcalpha_digit(c) && c != '_' && c != '-' && c != '*' && c != '/' && c != '@') {
            return false;
        }
    }
    return true;
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-7E except "," and "=". */
static bool value_valid(const char *v, size_t n)
{
    if (n == 0 || n > CLEW_TRACESTATE_MAX_VALUE || v[n - 1] == ' ') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=') {
            return false;
        }
    }
    return true;
}

/* Splits and validates one OWS-trimmed, non-empty member. */
static bool member_parse(clew_str m, ts_member *out)
{
    const char *eq = memchr(m.ptr, '=', m.len);
    if (eq == NULL) {
        return false;
    }
    size_t kl = (size_t)(eq - m.ptr);
    if (!key_valid(m.ptr, kl) || !value_valid(eq + 1, m.len - kl - 1)) {
        return false;
    }
    out->ptr = m.ptr;
    out->len = m.len;
    out->key_len = kl;
    return true;
}

static bool same_key(const ts_member *a, const ts_member *b)
{
    return a->key_len == b->key_len && memcmp(a->ptr, b->ptr, a->key_len) == 0;
}

static size_t total_len(const ts_member *m, size_t n)
{
    size_t t = n > 0 ? n - 1 : 0; /* the commas */
    for (size_t i = 0; i < n; i++) {
        t += m[i].len;
    }
    return t;
}

static void remove_at(ts_member *m, size_t *n, size_t i)
{
    memmove(&m[i], &m[i + 1], (*n - i - 1) * sizeof(*m));
    (*n)--;
}

/*
 * Applies the spec's only allowed truncation: while too long, remove members
 * longer than 128 characters (right-most first), then members from the right.
 * Members before index `keep` are never removed (a just-set member).
 */
static void truncate_members(ts_member *m, size_t *n, size_t keep)
{
    for (size_t i = *n; i > keep && total_len(m, *n) > CLEW_TRACESTATE_CAPACITY; i--) {
        if (m[i - 1].len > CLEW_TRACESTATE_LONG_MEMBER) {
            remove_at(m, n, i - 1);
        }
    }
    while (*n > keep && total_len(m, *n) > CLEW_TRACESTATE_CAPACITY) {
        (*n)--;
    }
}

/* Writes the members into ts; they must fit (callers truncate first). The
 * members may point into ts->buf itself, so build in a scratch buffer. */
static void commit(clew_tracestate *ts, const ts_member *m, size_t n)
{
    char tmp[CLEW_TRACESTATE_CAPACITY];
    size_t pos = 0;
    uint16_t off[CLEW_TRACESTATE_MAX_MEMBERS];
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            tmp[pos++] = ',';
        }
        off[i] = (uint16_t)pos;
        memcpy(tmp + pos, m[i].ptr, m[i].len);
        pos += m[i].len;
    }
    memcpy(ts->buf, tmp, pos);
    memcpy(ts->member_off, off, n * sizeof(off[0]));
    ts->len = (uint16_t)pos;
    ts->count = (uint8_t)n;
}

/* Views of the members currently in ts. */
static size_t load(const clew_tracestate *ts, ts_member *m)
{
    size_t n = ts->count;
    for (size_t i = 0; i < n; i++) {
        size_t start = ts->member_off[i];
        size_t end = i + 1 < n ? (size_t)ts->member_off[i + 1] - 1 : ts->len;
        m[i].ptr = ts->buf + start;
        m[i].len = end - start;
        const char *eq = memchr(m[i].ptr, '=', m[i].len);
        m[i].key_len = (size_t)(eq - m[i].ptr);
    }
    return n;
}

void clew_tracestate_init(clew_tracestate *ts)
{
    ts->len = 0;
    ts->count = 0;
}

size_t clew_tracestate_count(const clew_tracestate *ts)
{
    return ts->count;
}

clew_str clew_tracestate_str(const clew_tracestate *ts)
{
    return (clew_str){ts->buf, ts->len};
}

clew_status clew_tracestate_member(const clew_tracestate *ts, size_t i, clew_str *out_key,
                                   clew_str *out_value)
{
    if (ts == NULL || i >= ts->count) {
        return CLEW_ENOTFOUND;
    }
    ts_member m[CLEW_TRACESTATE_MAX_MEMBERS];
    load(ts, m);
    if (out_key != NULL) {
        *out_key = (clew_str){m[i].ptr, m[i].key_len};
    }
    if (out_value != NULL) {
        *out_value = (clew_str){m[i].ptr + m[i].key_len + 1, m[i].len - m[i].key_len - 1};
    }
    return CLEW_OK;
}

static long find(const ts_member *m, size_t n, const char *key, size_t kl)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].key_len == kl && memcmp(m[i].ptr, key, kl) == 0) {
            return (long)i;
        }
    }
    return -1;
}

clew_status clew_tracestate_get(const clew_tracestate *ts, const char *key, clew_str *out_value)
{
    if (ts == NULL || key == NULL) {
        return CLEW_ENOTFOUND;
    }
    ts_member m[CLEW_TRACESTATE_MAX_MEMBERS];
    size_t n = load(ts, m);
    long i = find(m, n, key, strlen(key));
    if (i < 0) {
        return CLEW_ENOTFOUND;
    }
    if (out_value != NULL) {
        *out_value = (clew_str){m[i].ptr + m[i].key_len + 1, m[i].len - m[i].key_len - 1};
    }
    return CLEW_OK;
}

clew_status clew_tracestate_set(clew_tracestate *ts, const char *key, const char *value)
{
    if (ts == NULL || key == NULL || value == NULL) {
        return CLEW_EINVAL;
    }
    size_t kl = strlen(key), vl = strlen(value);
    if (!key_valid(key, kl) || !value_valid(value, vl)) {
        return CLEW_EINVAL;
    }
    if (kl + 1 + vl > CLEW_TRACESTATE_CAPACITY) {
        return CLEW_ETOOBIG;
    }
    /* The new member is assembled outside ts->buf, which commit() overwrites. */
    char member[CLEW_TRACESTATE_CAPACITY];
    memcpy(member, key, kl);
    member[kl] = '=';
    memcpy(member + kl + 1, value, vl);

    ts_member m[CLEW_TRACESTATE_MAX_MEMBERS + 1];
    size_t n = load(ts, m + 1);
    long old = find(m + 1, n, key, kl);
    m[0] = (ts_member){member, kl + 1 + vl, kl};
    n++;
    if (old >= 0) {
        remove_at(m, &n, (size_t)old + 1);
    }
    if (n > CLEW_TRACESTATE_MAX_MEMBERS) {
        n = CLEW_TRACESTATE_MAX_MEMBERS; /* the spec: drop the right-most member */
    }
    truncate_members(m, &n, 1);
    commit(ts, m, n);
    return CLEW_OK;
}

clew_status clew_tracestate_delete(clew_tracestate *ts, const char *key)
{
    if (ts == NULL || key == NULL) {
        return CLEW_ENOTFOUND;
    }
    ts_member m[CLEW_TRACESTATE_MAX_MEMBERS];
    size_t n = load(ts, m);
    long i = find(m, n, key, strlen(key));
    if (i < 0) {
        return CLEW_ENOTFOUND;
    }
    remove_at(m, &n, (size_t)i);
    commit(ts, m, n);
    return CLEW_OK;
}

clew_status clew__tracestate_parse_parts(const clew_str *parts, size_t nparts, clew_tracestate *out)
{
    ts_member m[CLEW_TRACESTATE_MAX_MEMBERS];
    size_t n = 0, seen = 0;
    for (size_t p = 0; p < nparts; p++) {
        const char *s = parts[p].ptr;
        size_t len = parts[p].len;
        size_t start = 0;
        while (start <= len) {
            const char *comma = len > start ? memchr(s + start, ',', len - start) : NULL;
            size_t end = comma ? (size_t)(comma - s) : len;
            clew_str item = clew__trim_ows((clew_str){s + start, end - start});
            if (item.len > 0) {
                ts_member cand;
                /* list = list-member 0*31(...): a 33rd member makes the header invalid. */
                if (++seen > CLEW_TRACESTATE_MAX_MEMBERS || !member_parse(item, &cand)) {
                    return CLEW_EPARSE;
                }
                /* Duplicate keys: keep the first, which the spec allows a receiver to do. */
                bool dup = false;
                for (size_t i = 0; i < n && !dup; i++) {
                    dup = same_key(&m[i], &cand);
                }
                if (!dup) {
                    m[n++] = cand;
                }
            }
            start = end + 1;
        }
    }
    truncate_members(m, &n, 0);
    commit(out, m, n);
    return CLEW_OK;
}

clew_status clew_tracestate_parse(const char *s, size_t len, clew_tracestate *out)
{
    if (out == NULL || (s == NULL && len > 0)) {
        return CLEW_EINVAL;
    }
    clew_str part = {s != NULL ? s : "", len};
    return clew__tracestate_parse_parts(&part, 1, out);
}

clew_status clew_tracestate_format(const clew_tracestate *ts, char *out, size_t cap,
                                   size_t *out_len)
{
    if (ts == NULL || out == NULL || cap < (size_t)ts->len + 1) {
        return CLEW_ETOOBIG;
    }
    memcpy(out, ts->buf, ts->len);
    out[ts->len] = '\0';
    if (out_len != NULL) {
        *out_len = ts->len;
    }
    return CLEW_OK;
}

bool clew_tracestate_equal(const clew_tracestate *a, const clew_tracestate *b)
{
    /* The canonical form makes equal lists byte-identical. */
    return a->len == b->len && a->count == b->count && memcmp(a->buf, b->buf, a->len) == 0;
}
