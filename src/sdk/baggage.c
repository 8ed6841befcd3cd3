/*
 * src/sdk/baggage.c - the W3C Baggage list (baggage/HTTP_HEADER_FORMAT.md):
 * storage, percent-decoding parser and percent-encoding formatter.
 *
 * Invariant: the encoded size of the list (what clew_baggage_format writes)
 * is tracked in `enc_total` and never exceeds CLEW_BAGGAGE_MAX_BYTES, nor the
 * member count CLEW_BAGGAGE_MAX_MEMBERS. The parser and the formatter measure
 * a member with the same function, so a parsed list always formats whole and
 * re-parses to the same list (the fuzz target checks this).
 */
#include "sdk/propagation_internal.h"

#include <string.h>

#include "common/alloc.h"
#include "common/hex.h"

typedef struct bag_entry {
    char *mem; /* one allocation: key, value, metadata back to back */
    size_t klen, vlen, mlen;
    size_t enc_len; /* bytes of "key=encoded-value[;metadata]" */
} bag_entry;

struct clew_baggage {
    bag_entry *items;
    size_t count;
    size_t cap;
    size_t enc_total; /* encoded bytes including the commas */
};

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E */
static bool is_baggage_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_tchar((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static bool all_octets(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_baggage_octet((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* Bytes the value takes once encoded: "%" and non-baggage-octets take three. */
static size_t encoded_value_len(const char *v, size_t n)
{
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        e += (is_baggage_octet(c) && c != '%') ? 1 : 3;
    }
    return e;
}

static size_t entry_enc_len(size_t klen, const char *v, size_t vlen, size_t mlen)
{
    return klen + 1 + encoded_value_len(v, vlen) + (mlen > 0 ? 1 + mlen : 0);
}

/* Encoded size of the list after adding a member of `enc` bytes to `count` members. */
static size_t total_with(size_t total, size_t count, size_t enc)
{
    return total + enc + (count > 0 ? 1 : 0);
}

/*
 * Canonical metadata check: properties separated by ";", each `token` or
 * `token=*baggage-octet`, no OWS (the parser removes it before storing).
 */
static bool metadata_valid(const char *m, size_t n)
{
    size_t start = 0;
    if (n == 0) {
        return true;
    }
    while (start <= n) {
        const char *semi = memchr(m + start, ';', n - start);
        size_t end = semi ? (size_t)(semi - m) : n;
        const char *eq = memchr(m + start, '=', end - start);
        size_t kend = eq ? (size_t)(eq - m) : end;
        if (!is_token(m + start, kend - start)) {
            return false;
        }
        if (eq != NULL && !all_octets(eq + 1, end - kend - 1)) {
            return false;
        }
        start = end + 1;
    }
    return true;
}

clew_status clew_baggage_create(clew_baggage **out)
{
    if (out == NULL) {
        return CLEW_EINVAL;
    }
    clew_baggage *b = clew__calloc(1, sizeof(*b));
    if (b == NULL) {
        return CLEW_ENOMEM;
    }
    *out = b;
    return CLEW_OK;
}

void clew_baggage_clear(clew_baggage *b)
{
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < b->count; i++) {
        clew__free(b->items[i].mem);
    }
    b->count = 0;
    b->enc_total = 0;
}

void clew_baggage_destroy(clew_baggage *b)
{
    if (b == NULL) {
        return;
    }
    clew_baggage_clear(b);
    clew__free(b->items);
    clew__free(b);
}

size_t clew_baggage_count(const clew_baggage *b)
{
    return b != NULL ? b->count : 0;
}

static clew_str e_key(const bag_entry *e)
{
    return (clew_str){e->mem, e->klen};
}

static clew_str e_val(const bag_entry *e)
{
    return (clew_str){e->mem + e->klen + 1, e->vlen};
}

static clew_str e_meta(const bag_entry *e)
{
    return (clew_str){e->mem + e->klen + 1 + e->vlen + 1, e->mlen};
}

static bool key_is(const bag_entry *e, clew_str key)
{
    return e->klen == key.len && (key.len == 0 || memcmp(e->mem, key.ptr, key.len) == 0);
}

clew_status clew_baggage_entry(const clew_baggage *b, size_t i, clew_str *out_key,
                               clew_str *out_value, clew_str *out_metadata)
{
    if (b == NULL || i >= b->count) {
        return CLEW_ENOTFOUND;
    }
    if (out_key != NULL) {
        *out_key = e_key(&b->items[i]);
    }
    if (out_value != NULL) {
        *out_value = e_val(&b->items[i]);
    }
    if (out_metadata != NULL) {
        *out_metadata = e_meta(&b->items[i]);
    }
    return CLEW_OK;
}

clew_status clew_baggage_get(const clew_baggage *b, clew_str key, clew_str *out_value,
                             clew_str *out_metadata)
{
    for (size_t i = 0; b != NULL && i < b->count; i++) {
        if (key_is(&b->items[i], key)) {
            return clew_baggage_entry(b, i, NULL, out_value, out_metadata);
        }
    }
    return CLEW_ENOTFOUND;
}

/* Builds an entry (copies the three parts); NULL mem on OOM. */
static bag_entry make_entry(clew_str key, clew_str val, clew_str meta)
{
    bag_entry e = {0};
    e.mem = clew__malloc(key.len + val.len + meta.len + 3);
    if (e.mem == NULL) {
        return e;
    }
    char *p = e.mem;
    if (key.len > 0) {
        memcpy(p, key.ptr, key.len);
    }
    p[key.len] = '\0';
    p += key.len + 1;
    if (val.len > 0) {
        memcpy(p, val.ptr, val.len);
    }
    p[val.len] = '\0';
    p += val.len + 1;
    if (meta.len > 0) {
        memcpy(p, meta.ptr, meta.len);
    }
    p[meta.len] = '\0';
    e.klen = key.len;
    e.vlen = val.len;
    e.mlen = meta.len;
    e.enc_len = entry_enc_len(key.len, val.ptr, val.len, meta.len);
    return e;
}

static clew_status reserve_one(clew_baggage *b)
{
    if (b->count < b->cap) {
        return CLEW_OK;
    }
    size_t ncap = b->cap ? b->cap * 2 : 8;
    bag_entry *n = clew__realloc(b->items, ncap * sizeof(*n));
    if (n == NULL) {
        return CLEW_ENOMEM;
    }
    b->items = n;
    b->cap = ncap;
    return CLEW_OK;
}

static void remove_index(clew_baggage *b, size_t i)
{
    size_t enc = b->items[i].enc_len;
    clew__free(b->items[i].mem);
    memmove(&b->items[i], &b->items[i + 1], (b->count - i - 1) * sizeof(b->items[0]));
    b->count--;
    b->enc_total -= enc + (b->count > 0 ? 1 : 0);
}

clew_status clew_baggage_set(clew_baggage *b, clew_str key, clew_str value, clew_str metadata)
{
    if (b == NULL || (key.ptr == NULL && key.len > 0) || (value.ptr == NULL && value.len > 0) ||
        (metadata.ptr == NULL && metadata.len > 0)) {
        return CLEW_EINVAL;
    }
    if (!is_token(key.ptr, key.len) || !metadata_valid(metadata.ptr, metadata.len)) {
        return CLEW_EINVAL;
    }
    /* Work out the size the list would have, without the old members of the key. */
    size_t enc = entry_enc_len(key.len, value.ptr, value.len, metadata.len);
    size_t total = 0, count = 0;
    long first = -1;
    for (size_t i = 0; i < b->count; i++) {
        if (key_is(&b->items[i], key)) {
            if (first < 0) {
                first = (long)i;
            }
            continue;
        }
        total = total_with(total, count, b->items[i].enc_len);
        count++;
    }
    if (count + 1 > CLEW_BAGGAGE_MAX_MEMBERS ||
        total_with(total, count, enc) > CLEW_BAGGAGE_MAX_BYTES) {
        return CLEW_ETOOBIG;
    }
    if (first < 0 && reserve_one(b) != CLEW_OK) {
        return CLEW_ENOMEM;
    }
    bag_entry e = make_entry(key, value, metadata);
    if (e.mem == NULL) {
        return CLEW_ENOMEM;
    }
    if (first < 0) {
        b->items[b->count++] = e;
    } else {
        clew__free(b->items[first].mem);
        b->items[first] = e;
        for (size_t i = b->count; i-- > (size_t)first + 1;) {
            if (key_is(&b->items[i], key)) {
                clew__free(b->items[i].mem);
                memmove(&b->items[i], &b->items[i + 1], (b->count - i - 1) * sizeof(e));
                b->count--;
            }
        }
    }
    b->enc_total = total_with(total, count, enc);
    return CLEW_OK;
}

clew_status clew_baggage_remove(clew_baggage *b, clew_str key)
{
    bool found = false;
    for (size_t i = b != NULL ? b->count : 0; i-- > 0;) {
        if (key_is(&b->items[i], key)) {
            remove_index(b, i);
            found = true;
        }
    }
    return found ? CLEW_OK : CLEW_ENOTFOUND;
}

/* ---- parsing ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 with *bad = length of
 * the maximal ill-formed subpart (>= 1) that one U+FFFD replaces. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n || s[k] < lo || s[k] > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need + 1;
}

/*
 * Percent-decodes v into out (room for 3 * n bytes: invalid UTF-8 may grow
 * into U+FFFD). Returns false on a "%" not followed by two hex digits.
 */
static bool percent_decode(const char *v, size_t n, char *out, size_t *out_len)
{
    size_t raw = 0;
    char *tmp = out + 2 * n; /* decode raw bytes into the tail first */
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '%') {
            if (i + 2 >= n) {
                return false;
            }
            int h = clew__hex_digit(v[i + 1]), l = clew__hex_digit(v[i + 2]);
            if (h < 0 || l < 0) {
                return false;
            }
            tmp[raw++] = (char)(h << 4 | l);
            i += 2;
        } else {
            tmp[raw++] = v[i];
        }
    }
    /* Now re-emit from the tail to the front, replacing bad UTF-8. The output
     * never overtakes the input: it grows by at most 2 bytes per bad byte and
     * the raw copy sits 2n bytes ahead. */
    size_t o = 0, i = 0;
    while (i < raw) {
        size_t bad = 0;
        size_t k = utf8_seq((const unsigned char *)tmp + i, raw - i, &bad);
        if (k > 0) {
            memmove(out + o, tmp + i, k);
            o += k;
            i += k;
        } else {
            out[o++] = (char)0xef;
            out[o++] = (char)0xbf;
            out[o++] = (char)0xbd;
            i += bad;
        }
    }
    *out_len = o;
    return true;
}

/*
 * Parses one list-member (trimmed, non-empty): key OWS "=" OWS value
 * *(OWS ";" OWS property). On success returns its parts; the value is decoded
 * into `vbuf` and the metadata canonicalised into `mbuf` (both >= 3 * len).
 */
static bool member_parse(clew_str m, clew_str *key, clew_str *val, clew_str *meta, char *vbuf,
                         char *mbuf)
{
    const char *semi = memchr(m.ptr, ';', m.len);
    size_t head_len = semi ? (size_t)(semi - m.ptr) : m.len;
    const char *eq = memchr(m.ptr, '=', head_len);
    if (eq == NULL) {
        return false;
    }
    clew_str k = clew__trim_ows((clew_str){m.ptr, (size_t)(eq - m.ptr)});
    clew_str v = clew__trim_ows((clew_str){eq + 1, head_len - (size_t)(eq - m.ptr) - 1});
    if (!is_token(k.ptr, k.len) || !all_octets(v.ptr, v.len)) {
        return false;
    }
    size_t vlen = 0;
    if (!percent_decode(v.ptr, v.len, vbuf, &vlen)) {
        return false;
    }
    size_t mlen = 0;
    size_t pos = head_len;
    while (pos < m.len) {
        /* m.ptr[pos] is a ";" */
        size_t start = pos + 1;
        const char *next = memchr(m.ptr + start, ';', m.len - start);
        size_t end = next ? (size_t)(next - m.ptr) : m.len;
        clew_str prop = clew__trim_ows((clew_str){m.ptr + start, end - start});
        const char *peq = memchr(prop.ptr, '=', prop.len);
        clew_str pk = prop, pv = {NULL, 0};
        if (peq != NULL) {
            pk = clew__trim_ows((clew_str){prop.ptr, (size_t)(peq - prop.ptr)});
            pv = clew__trim_ows((clew_str){peq + 1, prop.len - (size_t)(peq - prop.ptr) - 1});
        }
        if (!is_token(pk.ptr, pk.len) || !all_octets(pv.ptr, pv.len)) {
            return false;
        }
        if (mlen > 0) {
            mbuf[mlen++] = ';';
        }
        memcpy(mbuf + mlen, pk.ptr, pk.len);
        mlen += pk.len;
        if (peq != NULL) {
            mbuf[mlen++] = '=';
            if (pv.len > 0) {
                memcpy(mbuf + mlen, pv.ptr, pv.len);
            }
            mlen += pv.len;
        }
        pos = end;
    }
    *key = k;
    *val = (clew_str){vbuf, vlen};
    *meta = (clew_str){mbuf, mlen};
    return true;
}

/* Parses one header value; *stop becomes true once a member did not fit. */
static clew_status parse_one(clew_baggage *b, clew_str s, bool *stop)
{
    size_t start = 0;
    while (start <= s.len && !*stop) {
        const char *comma = s.len > start ? memchr(s.ptr + start, ',', s.len - start) : NULL;
        size_t end = comma ? (size_t)(comma - s.ptr) : s.len;
        clew_str item = clew__trim_ows((clew_str){s.ptr + start, end - start});
        start = end + 1;
        if (item.len == 0) {
            continue;
        }
        if (item.len > 3 * CLEW_BAGGAGE_MAX_BYTES) {
            continue; /* cannot fit whatever it decodes to; skip without a huge buffer */
        }
        char *scratch = clew__malloc(6 * item.len + 2);
        if (scratch == NULL) {
            return CLEW_ENOMEM;
        }
        clew_str k, v, m;
        if (!member_parse(item, &k, &v, &m, scratch, scratch + 3 * item.len + 1)) {
            clew__free(scratch); /* malformed members are dropped (spec: MAY) */
            continue;
        }
        size_t enc = entry_enc_len(k.len, v.ptr, v.len, m.len);
        if (b->count + 1 > CLEW_BAGGAGE_MAX_MEMBERS ||
            total_with(b->enc_total, b->count, enc) > CLEW_BAGGAGE_MAX_BYTES) {
            /* Over the limits: drop this member and every one to its right. */
            clew__free(scratch);
            *stop = true;
            break;
        }
        clew_status rc = reserve_one(b);
        bag_entry e = rc == CLEW_OK ? make_entry(k, v, m) : (bag_entry){0};
        clew__free(scratch);
        if (e.mem == NULL) {
            return CLEW_ENOMEM;
        }
        b->enc_total = total_with(b->enc_total, b->count, enc);
        b->items[b->count++] = e;
    }
    return CLEW_OK;
}

clew_status clew__baggage_parse_parts(clew_baggage *b, const clew_str *parts, size_t n)
{
    bool stop = false;
    for (size_t i = 0; i < n && !stop; i++) {
        clew_status rc = parse_one(b, parts[i], &stop);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

clew_status clew_baggage_parse(clew_baggage *b, const char *s, size_t len)
{
    if (b == NULL || (s == NULL && len > 0)) {
        return CLEW_EINVAL;
    }
    clew_str part = {s != NULL ? s : "", len};
    return clew__baggage_parse_parts(b, &part, 1);
}

/* ---- formatting ------------------------------------------------------------- */

clew_status clew_baggage_format(const clew_baggage *b, char *out, size_t cap, size_t *out_len)
{
    static const char hexdig[] = "0123456789ABCDEF";
    size_t total = b != NULL ? b->enc_total : 0;
    if (out == NULL || cap < total + 1) {
        return CLEW_ETOOBIG;
    }
    size_t o = 0;
    for (size_t i = 0; b != NULL && i < b->count; i++) {
        const bag_entry *e = &b->items[i];
        if (i > 0) {
            out[o++] = ',';
        }
        memcpy(out + o, e->mem, e->klen);
        o += e->klen;
        out[o++] = '=';
        clew_str v = e_val(e);
        for (size_t j = 0; j < v.len; j++) {
            unsigned char c = (unsigned char)v.ptr[j];
            if (is_baggage_octet(c) && c != '%') {
                out[o++] = (char)c;
            } else {
                out[o++] = '%';
                out[o++] = hexdig[c >> 4];
                out[o++] = hexdig[c & 15];
            }
        }
        if (e->mlen > 0) {
            out[o++] = ';';
            memcpy(out + o, e_meta(e).ptr, e->mlen);
            o += e->mlen;
        }
    }
    out[o] = '\0';
    if (out_len != NULL) {
        *out_len = o;
    }
    return CLEW_OK;
}

bool clew_baggage_equal(const clew_baggage *a, const clew_baggage *b)
{
    size_t na = clew_baggage_count(a), nb = clew_baggage_count(b);
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        const bag_entry *x = &a->items[i], *y = &b->items[i];
        if (x->klen != y->klen || x->vlen != y->vlen || x->mlen != y->mlen ||
            memcmp(x->mem, y->mem, x->klen + x->vlen + x->mlen + 3) != 0) {
            return false;
        }
    }
    return true;
}

/* ---- the baggage propagator --------------------------------------------------- */

static clew_status bg_inject(const clew_span_context *sc, const clew_baggage *bag,
                             const clew_carrier *c)
{
    (void)sc;
    if (bag == NULL || bag->count == 0) {
        return CLEW_OK;
    }
    char buf[CLEW_BAGGAGE_MAX_BYTES + 1];
    size_t n = 0;
    clew_status rc = clew_baggage_format(bag, buf, sizeof(buf), &n);
    if (rc != CLEW_OK) {
        return rc;
    }
    return c->set(c->ctx, "baggage", (clew_str){buf, n});
}

static clew_status bg_extract(const clew_carrier *c, clew_span_context *out, clew_baggage *bag)
{
    (void)out;
    if (bag == NULL) {
        return CLEW_ENOTFOUND;
    }
    clew_str vals[CLEW__MAX_HEADER_VALUES];
    size_t n = c->get(c->ctx, "baggage", vals, CLEW__MAX_HEADER_VALUES);
    if (n > CLEW__MAX_HEADER_VALUES) {
        n = CLEW__MAX_HEADER_VALUES; /* limits apply to the combination anyway */
    }
    clew_status rc = clew__baggage_parse_parts(bag, vals, n);
    /* Baggage never yields a span context: report "not found" to the composite. */
    return rc == CLEW_OK ? CLEW_ENOTFOUND : rc;
}

const clew__propagator_ops clew__baggage_ops = {"baggage", bg_inject, bg_extract};
