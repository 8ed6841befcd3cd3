/*
 * src/store/embedded/block_format.h - the byte layout shared by the block writer and reader:
 * constants, section ids, varints, the bounded read cursor, the span-record codec, search
 * term hashing and the bloom filter. docs/internals/block.md describes every byte.
 *
 * Ownership: encoders append to a caller's clew_buf; decoders allocate from a caller's arena
 * and never read outside the cursor's bounds (every count is checked against the bytes left
 * before anything is allocated for it).
 *
 * Thread-safety: stateless functions.
 */
#ifndef CLEW_STORE_EMBEDDED_BLOCK_FORMAT_H
#define CLEW_STORE_EMBEDDED_BLOCK_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clew/status.h"
#include "clew/types.h"
#include "common/arena.h"
#include "common/buf.h"
#include "model/model.h"

#define BLK_MAGIC       0x314b4c4257454c43ull /* "CLEWBLK1" little-endian */
#define BLK_HEADER_SIZE 16u

enum blk_section {
    BLK_SEC_PAGE_TABLE = 0,
    BLK_SEC_TRACE_INDEX,
    BLK_SEC_BLOOM,
    BLK_SEC_SUMMARIES,
    BLK_SEC_STRINGS,
    BLK_SEC_SERVICES,
    BLK_SEC_OPERATIONS,
    BLK_SEC_KEYS,
    BLK_SEC_RESOURCES,
    BLK_SEC_TERMS,
    BLK_SEC_POSTINGS,
    BLK_SEC_VALUES,
    BLK_N_SECTIONS
};

#define BLK_CODEC_RAW  0u
#define BLK_CODEC_ZSTD 1u

/* footer: version, n_sections, n_traces, n_pages (4 x u32), n_spans, min_start, max_end
 * (3 x u64), the section table, then footer_crc, footer_len (u32) and the magic (u64). */
#define BLK_SECTION_ENTRY 32u
#define BLK_FOOTER_SIZE   (16u + 24u + BLK_N_SECTIONS * BLK_SECTION_ENTRY + 16u)

#define BLK_PAGE_ENTRY 20u /* u64 offset, u32 stored length, u32 raw length, u32 crc32c */

/* Hard limits a reader enforces, so a damaged length cannot make it allocate without bound. */
#define BLK_MAX_SECTION_RAW (1ull << 30)
#define BLK_MAX_PAGE_RAW    (256u << 20)
#define BLK_MAX_VALUE_DEPTH 16

/* Key flags in the KEYS section. */
#define BLK_KEY_PARTIAL   0x1u /* some values (too long, bytes) are not in the postings */
#define BLK_KEY_UNINDEXED 0x2u /* too many distinct values: none are in the postings */

/* Search term kinds (the seed of the term hash). */
#define BLK_TERM_SERVICE    1u
#define BLK_TERM_SERVICE_OP 2u
#define BLK_TERM_OP         3u
#define BLK_TERM_ATTR       4u

#define BLK_STR_NONE 0xffffffffu

/* ---- little-endian fixed width ---- */

static inline void blk_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void blk_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint32_t blk_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t blk_get_u64(const uint8_t *p)
{
    return (uint64_t)blk_get_u32(p) | (uint64_t)blk_get_u32(p + 4) << 32;
}

static inline uint64_t blk_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t blk_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- writing ---- */

CLEW_NODISCARD clew_status clew__blk_put_varint(clew_buf *b, uint64_t v);
CLEW_NODISCARD clew_status clew__blk_put_fixed32(clew_buf *b, uint32_t v);
CLEW_NODISCARD clew_status clew__blk_put_fixed64(clew_buf *b, uint64_t v);
CLEW_NODISCARD clew_status clew__blk_put_str(clew_buf *b, clew_str s);

/* Inline appenders for the writer's hot loops: they write in place when the buffer already
 * has room (the common case once a page buffer has grown) and fall back to the functions
 * above otherwise. Same bytes, same errors. */
static inline clew_status blk_buf_varint(clew_buf *b, uint64_t v)
{
    if (b->cap - b->len > 11 && b->max - b->len > 11) {
        uint8_t *p = (uint8_t *)b->data + b->len;
        size_t n = 0;
        while (v >= 0x80) {
            p[n++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        p[n++] = (uint8_t)v;
        p[n] = 0; /* clew_buf keeps its data NUL-terminated */
        b->len += n;
        return CLEW_OK;
    }
    return clew__blk_put_varint(b, v);
}

static inline clew_status blk_buf_byte(clew_buf *b, uint8_t c)
{
    if (b->cap - b->len > 2 && b->max - b->len > 2) {
        b->data[b->len++] = (char)c;
        b->data[b->len] = '\0';
        return CLEW_OK;
    }
    return clew__buf_putc(b, (char)c);
}

static inline clew_status blk_buf_bytes(clew_buf *b, const void *p, size_t n)
{
    size_t room = b->cap < b->max ? b->cap : b->max;
    if (room - b->len > 1 && n < room - b->len - 1) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return CLEW_OK;
    }
    return clew__buf_append(b, p, n);
}

/* Maps an attribute key to its id in the block's KEYS dictionary (the writer's interning). */
typedef clew_status (*clew_blk_key_fn)(void *ud, clew_str key, uint32_t *out_id);
/* Writes a top-level string attribute value in a page form (BLK_VALUE_DICT/TEMPLATE) and
 * sets *done, or leaves *done false for the plain inline form. */
typedef clew_status (*clew_blk_str_fn)(void *ud, clew_buf *b, clew_str s, bool *done);

/* Page-only value forms (after the clew_value_type tags): a string from the page dictionary;
 * a string rebuilt from a skeleton in the page dictionary and its numbers; a double written
 * as a decimal. Only top-level attribute values in pages use them. */
#define BLK_VALUE_DICT     8u /* varint index */
#define BLK_VALUE_TEMPLATE 9u /* span attributes only: skeleton index + widths, then numbers */
#define BLK_MAX_RUNS       8u
#define BLK_MAX_DIGITS     19u
#define BLK_VALUE_DECIMAL  10u /* u8 scale k, zigzag varint m: the double m / 10^k */
#define BLK_MAX_SCALE      6u

/* True when d is exactly m / 10^k for some k <= BLK_MAX_SCALE (the reader recomputes it
 * bit for bit). */
bool clew__blk_decimal(double d, unsigned *scale, int64_t *mantissa);
extern const double clew__blk_pow10[BLK_MAX_SCALE + 1];

/* The strings a DICT or TEMPLATE index refers to: indexes below ng are the block's VALUES
 * dictionary (g), the rest the page's own dictionary (s). */
typedef struct blk_dict {
    const clew_str *g;
    uint32_t ng;
    const clew_str *s;
    uint32_t n;
} blk_dict;

static inline bool blk_dict_get(const blk_dict *d, uint64_t i, clew_str *out)
{
    if (d == NULL) {
        return false;
    }
    if (i < d->ng) {
        *out = d->g[i];
        return true;
    }
    if (i - d->ng < d->n) {
        *out = d->s[i - d->ng];
        return true;
    }
    return false;
}

CLEW_NODISCARD clew_status clew__blk_put_value(clew_buf *b, const clew_value *v, int depth);
/* The value without its type tag (the tag lives in a separate column). */
CLEW_NODISCARD clew_status clew__blk_put_payload(clew_buf *b, const clew_value *v, int depth);
CLEW_NODISCARD clew_status clew__blk_put_attrs(clew_buf *b, const clew_attrs *a,
                                               clew_blk_key_fn key_fn, clew_blk_str_fn str_fn,
                                               void *ud);

/* The skeleton of a string: every maximal run of decimal digits replaced by one '0' (so each
 * '0' of the skeleton marks a run). Writes it to `out` (capacity s.len), and each run's value
 * and width to nums/widths (capacity BLK_MAX_RUNS). Returns the run count; 0 when s has no
 * digits, more than BLK_MAX_RUNS runs or a run longer than BLK_MAX_DIGITS. */
unsigned clew__blk_skeleton(clew_str s, char *out, size_t *out_len, uint64_t *nums,
                            uint8_t *widths);
/* Rebuilds the string into `a`; CLEW_ECORRUPT when the parts do not fit together. */
CLEW_NODISCARD clew_status clew__blk_unskeleton(clew_str skel, const uint64_t *nums,
                                                const uint8_t *widths, unsigned runs, clew_arena *a,
                                                clew_str *out);

/* ---- reading: a bounded cursor; any read past the end sets `bad` and returns zeros ---- */

typedef struct blk_cursor {
    const uint8_t *p;
    const uint8_t *end;
    const uint8_t *base; /* for offsets in error messages */
    bool bad;
} blk_cursor;

static inline void blk_cursor_init(blk_cursor *c, const uint8_t *p, size_t n)
{
    c->p = p;
    c->end = p + n;
    c->base = p;
    c->bad = false;
}

static inline size_t blk_left(const blk_cursor *c)
{
    return (size_t)(c->end - c->p);
}

uint64_t clew__blk_get_varint(blk_cursor *c);
/* A count of things that each take at least `min_bytes` bytes: fails (bad) when the rest of
 * the cursor could not hold that many, which bounds every allocation by the input size. */
uint32_t clew__blk_get_count(blk_cursor *c, size_t min_bytes);
const uint8_t *clew__blk_get_bytes(blk_cursor *c, size_t n);
clew_str clew__blk_get_str(blk_cursor *c);

/* Resolves a key id from the KEYS dictionary (the reader's lookup): CLEW_ECORRUPT for an
 * unknown id, CLEW_ENOMEM. */
typedef clew_status (*clew_blk_key_lookup_fn)(void *ud, uint64_t id, clew_str *out);

/* Decoders: strings are views into the cursor's bytes (the caller keeps them alive or copies
 * them). CLEW_ECORRUPT on malformed input, CLEW_ENOMEM. */
CLEW_NODISCARD clew_status clew__blk_get_value(blk_cursor *c, clew_value *out, clew_arena *a,
                                               int depth, const blk_dict *dict);
/* A value whose tag (clew_value_type or BLK_VALUE_*) was read separately. */
CLEW_NODISCARD clew_status clew__blk_get_payload(blk_cursor *c, unsigned type, clew_value *out,
                                                 clew_arena *a, int depth, const blk_dict *dict);
/* `dict` is the page dictionary (NULL outside pages: the page-only forms are then corrupt). */
CLEW_NODISCARD clew_status clew__blk_get_attrs(blk_cursor *c, clew_attrs *out, clew_arena *a,
                                               clew_blk_key_lookup_fn key_fn, void *ud,
                                               const blk_dict *dict);

/* ---- search terms ---- */

/* Hash of (kind, a, b): e.g. (SERVICE, name, ""), (ATTR | type << 8, key, value bytes). */
uint64_t clew__blk_term_hash(unsigned kind, clew_str a, const void *b, size_t b_len);

/* The indexed form of an attribute value: returns its type letter ('s', 'e', 'b', 'i', 'd';
 * the term kind is BLK_TERM_ATTR | letter << 8) and points *out at its bytes (`tmp` holds
 * them for non-strings). Returns 0 when the value has no indexed form (arrays, kvlists,
 * bytes, NaN). */
unsigned clew__blk_value_term(const clew_value *v, uint8_t tmp[8], const void **out,
                              size_t *out_len);

/* ---- bloom filter on trace ids (k probes by double hashing of XXH3) ---- */

#define BLK_BLOOM_K             7u
#define BLK_BLOOM_BITS_PER_ITEM 10u

void clew__blk_bloom_add(uint8_t *bits, uint64_t n_bits, const clew_trace_id *id);
bool clew__blk_bloom_test(const uint8_t *bits, uint64_t n_bits, const clew_trace_id *id);

int clew__blk_id_cmp(const clew_trace_id *a, const clew_trace_id *b);

#endif /* CLEW_STORE_EMBEDDED_BLOCK_FORMAT_H */
