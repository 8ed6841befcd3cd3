/*
 * src/store/embedded/block_format.c - varints, the attribute value codec, term hashing and
 * the bloom filter shared by the block writer and reader.
 */
#include "store/embedded/block_format.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

/* ---- writing ---- */

clew_status clew__blk_put_varint(clew_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return clew__buf_append(b, tmp, n);
}

clew_status clew__blk_put_fixed32(clew_buf *b, uint32_t v)
{
    uint8_t tmp[4];
    blk_put_u32(tmp, v);
    return clew__buf_append(b, tmp, 4);
}

clew_status clew__blk_put_fixed64(clew_buf *b, uint64_t v)
{
    uint8_t tmp[8];
    blk_put_u64(tmp, v);
    return clew__buf_append(b, tmp, 8);
}

clew_status clew__blk_put_str(clew_buf *b, clew_str s)
{
    clew_status rc = clew__blk_put_varint(b, s.len);
    if (rc == CLEW_OK && s.len > 0) {
        rc = clew__buf_append(b, s.ptr, s.len);
    }
    return rc;
}

const double clew__blk_pow10[BLK_MAX_SCALE + 1] = {1.0,     10.0,     100.0,    1000.0,
                                                   10000.0, 100000.0, 1000000.0};

bool clew__blk_decimal(double d, unsigned *scale, int64_t *mantissa)
{
    uint64_t want;
    memcpy(&want, &d, 8);
    for (unsigned k = 0; k <= BLK_MAX_SCALE; k++) {
        double x = d * clew__blk_pow10[k];
        if (!(x > -9007199254740992.0 && x < 9007199254740992.0) || x != (double)(int64_t)x) {
            continue;
        }
        int64_t m = (int64_t)x;
        double back = (double)m / clew__blk_pow10[k];
        uint64_t got;
        memcpy(&got, &back, 8);
        if (got == want) {
            *scale = k;
            *mantissa = m;
            return true;
        }
    }
    return false;
}

clew_status clew__blk_put_value(clew_buf *b, const clew_value *v, int depth)
{
    if (depth > BLK_MAX_VALUE_DEPTH) {
        /* the reader refuses deeper nesting, so never write it */
        return CLEW_EINVAL;
    }
    clew_status rc = clew__buf_putc(b, (char)v->type);
    if (rc != CLEW_OK) {
        return rc;
    }
    return clew__blk_put_payload(b, v, depth);
}

clew_status clew__blk_put_payload(clew_buf *b, const clew_value *v, int depth)
{
    clew_status rc;
    if (depth > BLK_MAX_VALUE_DEPTH) {
        return CLEW_EINVAL;
    }
    switch (v->type) {
    case CLEW_VALUE_EMPTY:
        return CLEW_OK;
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        return clew__blk_put_str(b, v->u.s);
    case CLEW_VALUE_BOOL:
        return clew__buf_putc(b, v->u.b ? 1 : 0);
    case CLEW_VALUE_INT:
        return clew__blk_put_varint(b, blk_zigzag(v->u.i));
    case CLEW_VALUE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, 8);
        return clew__blk_put_fixed64(b, bits);
    }
    case CLEW_VALUE_ARRAY:
        rc = clew__blk_put_varint(b, v->u.array.n);
        for (uint32_t i = 0; rc == CLEW_OK && i < v->u.array.n; i++) {
            rc = clew__blk_put_value(b, &v->u.array.items[i], depth + 1);
        }
        return rc;
    case CLEW_VALUE_KVLIST:
        rc = clew__blk_put_varint(b, v->u.kvlist.n);
        for (uint32_t i = 0; rc == CLEW_OK && i < v->u.kvlist.n; i++) {
            rc = clew__blk_put_str(b, v->u.kvlist.items[i].key);
            if (rc == CLEW_OK) {
                rc = clew__blk_put_value(b, &v->u.kvlist.items[i].value, depth + 1);
            }
        }
        return rc;
    }
    return CLEW_EINVAL;
}

clew_status clew__blk_put_attrs(clew_buf *b, const clew_attrs *a, clew_blk_key_fn key_fn,
                                clew_blk_str_fn str_fn, void *ud)
{
    clew_status rc = clew__blk_put_varint(b, a->n);
    if (rc == CLEW_OK) {
        rc = clew__blk_put_varint(b, a->dropped);
    }
    for (uint32_t i = 0; rc == CLEW_OK && i < a->n; i++) {
        uint32_t id;
        rc = key_fn(ud, a->items[i].key, &id);
        if (rc == CLEW_OK) {
            rc = clew__blk_put_varint(b, id);
        }
        bool done = false;
        if (rc == CLEW_OK && str_fn != NULL && a->items[i].value.type == CLEW_VALUE_STRING) {
            rc = str_fn(ud, b, a->items[i].value.u.s, &done);
        }
        if (rc == CLEW_OK && !done) {
            rc = clew__blk_put_value(b, &a->items[i].value, 0);
        }
    }
    return rc;
}

static inline bool is_digit(unsigned char c)
{
    return (unsigned)(c - '0') <= 9u;
}

unsigned clew__blk_skeleton(clew_str s, char *out, size_t *out_len, uint64_t *nums, uint8_t *widths)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.len;
    unsigned runs = 0;
    size_t o = 0;
    size_t i = 0;
    while (i < n) {
        /* the text up to the next digit, copied as it is */
        size_t j = i;
        while (j < n && !is_digit(p[j])) {
            j++;
        }
        if (j > i) {
            memcpy(out + o, p + i, j - i);
            o += j - i;
            i = j;
        }
        if (i == n) {
            break;
        }
        uint64_t v = 0;
        while (j < n && is_digit(p[j])) {
            v = v * 10 + (uint64_t)(p[j] - '0');
            j++;
            if (j - i > BLK_MAX_DIGITS) {
                return 0; /* longer than a u64 can hold: keep the string whole */
            }
        }
        if (runs == BLK_MAX_RUNS) {
            return 0;
        }
        nums[runs] = v;
        widths[runs] = (uint8_t)(j - i);
        runs++;
        out[o++] = '0';
        i = j;
    }
    *out_len = o;
    return runs;
}

clew_status clew__blk_unskeleton(clew_str skel, const uint64_t *nums, const uint8_t *widths,
                                 unsigned runs, clew_arena *a, clew_str *out)
{
    size_t len = skel.len - runs;
    for (unsigned r = 0; r < runs; r++) {
        len += widths[r];
    }
    char *buf = clew__arena_alloc(a, len ? len : 1);
    if (buf == NULL) {
        return CLEW_ENOMEM;
    }
    size_t o = 0;
    unsigned r = 0;
    for (size_t i = 0; i < skel.len; i++) {
        if (skel.ptr[i] != '0') {
            buf[o++] = skel.ptr[i];
            continue;
        }
        if (r == runs) {
            return CLEW_ECORRUPT;
        }
        uint64_t v = nums[r];
        for (unsigned k = widths[r]; k > 0; k--) {
            buf[o + k - 1] = (char)('0' + v % 10);
            v /= 10;
        }
        if (v != 0) {
            return CLEW_ECORRUPT; /* the number does not fit its width */
        }
        o += widths[r];
        r++;
    }
    if (r != runs || o != len) {
        return CLEW_ECORRUPT;
    }
    out->ptr = buf;
    out->len = len;
    return CLEW_OK;
}

/* ---- reading ---- */

uint64_t clew__blk_get_varint(blk_cursor *c)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) {
            c->bad = true;
            return 0;
        }
        uint8_t byte = *c->p++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
            return v;
        }
    }
    c->bad = true;
    return 0;
}

uint32_t clew__blk_get_count(blk_cursor *c, size_t min_bytes)
{
    uint64_t n = clew__blk_get_varint(c);
    if (c->bad || n > UINT32_MAX || (min_bytes > 0 && n > blk_left(c) / min_bytes)) {
        c->bad = true;
        return 0;
    }
    return (uint32_t)n;
}

const uint8_t *clew__blk_get_bytes(blk_cursor *c, size_t n)
{
    if (c->bad || n > blk_left(c)) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    return p;
}

clew_str clew__blk_get_str(blk_cursor *c)
{
    clew_str s = {"", 0};
    uint64_t n = clew__blk_get_varint(c);
    if (c->bad || n > blk_left(c)) {
        c->bad = true;
        return s;
    }
    if (n > 0) {
        s.ptr = (const char *)c->p;
        s.len = (size_t)n;
        c->p += n;
    }
    return s;
}

clew_status clew__blk_get_value(blk_cursor *c, clew_value *out, clew_arena *a, int depth,
                                const blk_dict *dict)
{
    memset(out, 0, sizeof(*out));
    if (depth > BLK_MAX_VALUE_DEPTH || c->p >= c->end) {
        return CLEW_ECORRUPT;
    }
    uint8_t type = *c->p++;
    return clew__blk_get_payload(c, type, out, a, depth, dict);
}

clew_status clew__blk_get_payload(blk_cursor *c, unsigned type, clew_value *out, clew_arena *a,
                                  int depth, const blk_dict *dict)
{
    memset(out, 0, sizeof(*out));
    if (depth > BLK_MAX_VALUE_DEPTH) {
        return CLEW_ECORRUPT;
    }
    out->type = (clew_value_type)type;
    switch (type) {
    case CLEW_VALUE_EMPTY:
        return CLEW_OK;
    case CLEW_VALUE_STRING:
    case CLEW_VALUE_BYTES:
        out->u.s = clew__blk_get_str(c);
        break;
    case BLK_VALUE_DICT: {
        uint64_t i = clew__blk_get_varint(c);
        clew_str v;
        if (depth != 0 || c->bad || !blk_dict_get(dict, i, &v)) {
            return CLEW_ECORRUPT;
        }
        out->type = CLEW_VALUE_STRING;
        if (i < dict->ng && v.len > 0) {
            /* block dictionary strings live in the block: copy them into the result */
            v = clew__arena_strdup(a, v.ptr, v.len);
            if (v.ptr == NULL) {
                return CLEW_ENOMEM;
            }
        }
        out->u.s = v;
        break;
    }
    case CLEW_VALUE_BOOL: {
        const uint8_t *p = clew__blk_get_bytes(c, 1);
        if (p == NULL || *p > 1) {
            return CLEW_ECORRUPT;
        }
        out->u.b = *p == 1;
        break;
    }
    case CLEW_VALUE_INT:
        out->u.i = blk_unzigzag(clew__blk_get_varint(c));
        break;
    case CLEW_VALUE_DOUBLE: {
        const uint8_t *p = clew__blk_get_bytes(c, 8);
        if (p != NULL) {
            uint64_t bits = blk_get_u64(p);
            memcpy(&out->u.d, &bits, 8);
        }
        break;
    }
    case CLEW_VALUE_ARRAY: {
        uint32_t n = clew__blk_get_count(c, 1);
        if (c->bad) {
            return CLEW_ECORRUPT;
        }
        clew_value *items = n ? clew__arena_calloc(a, n, sizeof(*items)) : NULL;
        if (n > 0 && items == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < n; i++) {
            clew_status rc = clew__blk_get_value(c, &items[i], a, depth + 1, NULL);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
        out->u.array.items = items;
        out->u.array.n = n;
        break;
    }
    case CLEW_VALUE_KVLIST: {
        uint32_t n = clew__blk_get_count(c, 2);
        if (c->bad) {
            return CLEW_ECORRUPT;
        }
        clew_kv *items = n ? clew__arena_calloc(a, n, sizeof(*items)) : NULL;
        if (n > 0 && items == NULL) {
            return CLEW_ENOMEM;
        }
        for (uint32_t i = 0; i < n; i++) {
            items[i].key = clew__blk_get_str(c);
            if (c->bad) {
                return CLEW_ECORRUPT;
            }
            clew_status rc = clew__blk_get_value(c, &items[i].value, a, depth + 1, NULL);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
        out->u.kvlist.items = items;
        out->u.kvlist.n = n;
        break;
    }
    default:
        return CLEW_ECORRUPT;
    }
    return c->bad ? CLEW_ECORRUPT : CLEW_OK;
}

clew_status clew__blk_get_attrs(blk_cursor *c, clew_attrs *out, clew_arena *a,
                                clew_blk_key_lookup_fn key_fn, void *ud, const blk_dict *dict)
{
    memset(out, 0, sizeof(*out));
    uint32_t n = clew__blk_get_count(c, 2);
    uint64_t dropped = clew__blk_get_varint(c);
    if (c->bad || dropped > UINT32_MAX) {
        return CLEW_ECORRUPT;
    }
    out->dropped = (uint32_t)dropped;
    if (n == 0) {
        return CLEW_OK;
    }
    out->items = clew__arena_calloc(a, n, sizeof(*out->items));
    if (out->items == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = clew__blk_get_varint(c);
        if (c->bad) {
            return CLEW_ECORRUPT;
        }
        clew_status rc = key_fn(ud, id, &out->items[i].key);
        if (rc != CLEW_OK) {
            return rc;
        }
        rc = clew__blk_get_value(c, &out->items[i].value, a, 0, dict);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    out->n = n;
    return CLEW_OK;
}

/* ---- terms ---- */

uint64_t clew__blk_term_hash(unsigned kind, clew_str a, const void *b, size_t b_len)
{
    /* hash `a` seeded by the kind, then `b` seeded by that: no separator byte can be forged
     * by content, since each part is hashed as a whole */
    uint64_t h = XXH3_64bits_withSeed(a.ptr != NULL ? a.ptr : "", a.len, kind);
    return XXH3_64bits_withSeed(b != NULL ? b : "", b_len, h);
}

unsigned clew__blk_value_term(const clew_value *v, uint8_t tmp[8], const void **out,
                              size_t *out_len)
{
    switch (v->type) {
    case CLEW_VALUE_STRING:
        *out = v->u.s.ptr;
        *out_len = v->u.s.len;
        return 's';
    case CLEW_VALUE_EMPTY:
        *out = tmp;
        *out_len = 0;
        return 'e';
    case CLEW_VALUE_BOOL:
        tmp[0] = v->u.b ? 1 : 0;
        *out = tmp;
        *out_len = 1;
        return 'b';
    case CLEW_VALUE_INT:
        blk_put_u64(tmp, (uint64_t)v->u.i);
        *out = tmp;
        *out_len = 8;
        return 'i';
    case CLEW_VALUE_DOUBLE: {
        if (isnan(v->u.d)) {
            return 0; /* NaN never matches a search */
        }
        double d = v->u.d == 0.0 ? 0.0 : v->u.d; /* -0 == 0 */
        uint64_t bits;
        memcpy(&bits, &d, 8);
        blk_put_u64(tmp, bits);
        *out = tmp;
        *out_len = 8;
        return 'd';
    }
    default:
        return 0;
    }
}

/* ---- bloom ---- */

static void bloom_hashes(const clew_trace_id *id, uint64_t *h1, uint64_t *h2)
{
    XXH128_hash_t h = XXH3_128bits(id->bytes, sizeof(id->bytes));
    *h1 = h.low64;
    *h2 = h.high64 | 1; /* odd: probes never collapse onto one bit */
}

void clew__blk_bloom_add(uint8_t *bits, uint64_t n_bits, const clew_trace_id *id)
{
    uint64_t h1, h2;
    bloom_hashes(id, &h1, &h2);
    for (unsigned i = 0; i < BLK_BLOOM_K; i++) {
        uint64_t bit = (h1 + i * h2) % n_bits;
        bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
}

bool clew__blk_bloom_test(const uint8_t *bits, uint64_t n_bits, const clew_trace_id *id)
{
    uint64_t h1, h2;
    bloom_hashes(id, &h1, &h2);
    for (unsigned i = 0; i < BLK_BLOOM_K; i++) {
        uint64_t bit = (h1 + i * h2) % n_bits;
        if ((bits[bit >> 3] & (1u << (bit & 7))) == 0) {
            return false;
        }
    }
    return true;
}

int clew__blk_id_cmp(const clew_trace_id *a, const clew_trace_id *b)
{
    return memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}
