/*
 * src/store/embedded/block_reader.c - reads immutable block files.
 *
 * The reader uses pread through the clew_fileio, not mmap: every byte then passes the same
 * interface the power-loss tests replace, a truncated or shrinking file yields a clean
 * short read (CLEW_ECORRUPT) instead of SIGBUS, and what it holds is exactly what it has
 * checked. Sections are small next to the pages; each is read, CRC-checked, decompressed and
 * structurally validated the first time a call needs it, then kept read-only for the
 * block's lifetime. Pages are read one at a time, into the caller's memory.
 *
 * After validation every id a section holds is known to be in range, so the query code
 * below indexes the columns without further checks; page bytes are the exception and are
 * decoded through a bounded cursor on every read.
 */
#include "store/embedded/block.h"

#include <isa-l/crc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/alloc.h"
#include "store/embedded/block_format.h"

#define DEFAULT_LIMIT 20
#define RESULT_CHUNK  (64u * 1024u)

static const char *const SECTION_NAMES[BLK_N_SECTIONS] = {
    "page table", "trace index", "bloom filter", "summaries", "strings",  "services",
    "operations", "keys",        "resources",    "terms",     "postings", "values",
};

typedef struct section {
    uint64_t off, stored, raw;
    uint32_t crc, codec;
    uint8_t *data; /* raw bytes once loaded */
    bool loaded;
    clew_status status; /* sticky: a section that failed once fails again the same way */
    char msg[200];
} section;

struct clew_block {
    clew_fileio *io;
    int fd;
    char *path;
    uint64_t size;
    uint64_t footer_off;
    pthread_mutex_t mu;
    /* held for reading by every call that reads sections, for writing by
     * clew__block_drop_indexes while it frees them */
    pthread_rwlock_t use;
    clew_block_info info;
    section sec[BLK_N_SECTIONS];

    /* views into loaded sections (valid once that section is loaded) */
    const uint8_t *ids, *id_page, *id_off;
    uint64_t bloom_bits;
    const uint8_t *bloom;
    const uint8_t *s_start, *s_dur, *s_root_svc, *s_root_op, *s_spans, *s_errors, *s_state,
        *s_reason, *s_adjusted, *s_tenant, *s_svc_first, *s_svcs;
    uint32_t n_trace_svcs;
    uint32_t n_strings;
    const uint8_t *str_ends, *str_bytes;
    uint32_t n_services;
    const uint8_t *svc_ids;
    uint32_t n_ops;
    const uint8_t *op_svc, *op_name, *op_kind;
    uint32_t n_keys;
    const uint8_t *key_ids, *key_flags;
    uint32_t n_res, n_scopes;
    size_t *res_off, *scope_off; /* n + 1 offsets into the RESOURCES section */
    uint32_t n_terms;
    const uint8_t *term_hash, *term_count, *term_off;
    clew_str *values; /* the VALUES dictionary */
    uint32_t n_values;
};

static clew_status corrupt(clew_block *b, clew_error *err, int sec, uint64_t off, const char *what)
{
    if (sec >= 0) {
        clew__error_set(err, (size_t)off, "block %s: %s section (file offset %llu): %s", b->path,
                        SECTION_NAMES[sec], (unsigned long long)off, what);
    } else {
        clew__error_set(err, (size_t)off, "block %s: at file offset %llu: %s", b->path,
                        (unsigned long long)off, what);
    }
    return CLEW_ECORRUPT;
}

static clew_status read_exact(clew_block *b, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        size_t k = 0;
        clew_status rc =
            b->io->pread_some(b->io, b->fd, (uint8_t *)buf + got, n - got, off + got, &k);
        if (rc != CLEW_OK) {
            return rc;
        }
        if (k == 0) {
            return CLEW_ECORRUPT; /* the file ends early */
        }
        got += k;
    }
    return CLEW_OK;
}

/* ---- small accessors ---- */

static clew_str bstr(const clew_block *b, uint32_t id)
{
    uint32_t end = blk_get_u32(b->str_ends + 4 * (size_t)id);
    uint32_t start = id == 0 ? 0 : blk_get_u32(b->str_ends + 4 * ((size_t)id - 1));
    clew_str s = {(const char *)b->str_bytes + start, end - start};
    return s;
}

static bool str_eq(clew_str a, clew_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int str_cmp(clew_str a, clew_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

static clew_str arena_copy(clew_arena *a, clew_str s)
{
    if (s.len == 0) {
        clew_str e = {"", 0};
        return e;
    }
    return clew__arena_strdup(a, s.ptr, s.len);
}

/* ---- section loading and validation ---- */

static clew_status load(clew_block *b, int sec, clew_error *err);
static clew_status key_check(void *ud, uint64_t id, clew_str *out);

static clew_status sec_fail(clew_block *b, int sec, clew_error *err, clew_status rc,
                            const char *what)
{
    section *s = &b->sec[sec];
    if (rc == CLEW_ECORRUPT) {
        /* damage does not go away; out-of-memory or a read error may, so those are retried */
        s->status = rc;
        snprintf(s->msg, sizeof(s->msg), "%s", what);
    }
    if (rc == CLEW_ECORRUPT) {
        return corrupt(b, err, sec, s->off, what);
    }
    clew__error_set(err, 0, "block %s: %s section: %s", b->path, SECTION_NAMES[sec], what);
    return rc;
}

static clew_status validate(clew_block *b, int sec, clew_error *err)
{
    section *s = &b->sec[sec];
    const uint8_t *d = s->data;
    uint64_t n = s->raw;
    uint32_t nt = b->info.n_traces;
    clew_status rc;
    switch (sec) {
    case BLK_SEC_PAGE_TABLE:
        if (n != (uint64_t)b->info.n_pages * BLK_PAGE_ENTRY) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "size does not match the page count");
        }
        for (uint32_t i = 0; i < b->info.n_pages; i++) {
            const uint8_t *e = d + (size_t)i * BLK_PAGE_ENTRY;
            uint64_t off = blk_get_u64(e);
            uint32_t stored = blk_get_u32(e + 8), raw = blk_get_u32(e + 12);
            if (off < BLK_HEADER_SIZE || off > b->footer_off || stored > b->footer_off - off ||
                raw == 0 || raw > BLK_MAX_PAGE_RAW) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "a page entry is out of bounds");
            }
        }
        return CLEW_OK;
    case BLK_SEC_TRACE_INDEX:
        if ((rc = load(b, BLK_SEC_PAGE_TABLE, err)) != CLEW_OK) {
            return rc;
        }
        if (n != (uint64_t)nt * 24) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "size does not match the trace count");
        }
        b->ids = d;
        b->id_page = d + (size_t)nt * 16;
        b->id_off = b->id_page + (size_t)nt * 4;
        for (uint32_t i = 0; i < nt; i++) {
            if (i > 0 && memcmp(d + (size_t)(i - 1) * 16, d + (size_t)i * 16, 16) >= 0) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "trace ids are not sorted");
            }
            uint32_t page = blk_get_u32(b->id_page + 4 * (size_t)i);
            if (page >= b->info.n_pages || blk_get_u32(b->id_off + 4 * (size_t)i) >=
                                               blk_get_u32(b->sec[BLK_SEC_PAGE_TABLE].data +
                                                           (size_t)page * BLK_PAGE_ENTRY + 12)) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "a trace points outside its page");
            }
        }
        return CLEW_OK;
    case BLK_SEC_BLOOM:
        if (n < 8 || blk_get_u64(d) == 0 || blk_get_u64(d) % 8 != 0 ||
            blk_get_u64(d) / 8 != n - 8) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "bad bit count");
        }
        b->bloom_bits = blk_get_u64(d);
        b->bloom = d + 8;
        return CLEW_OK;
    case BLK_SEC_STRINGS: {
        if (n < 4 || blk_get_u32(d) > (n - 4) / 4) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "bad string count");
        }
        uint32_t ns = blk_get_u32(d);
        uint64_t bytes = n - 4 - 4 * (uint64_t)ns;
        uint32_t prev = 0;
        for (uint32_t i = 0; i < ns; i++) {
            uint32_t e = blk_get_u32(d + 4 + 4 * (size_t)i);
            if (e < prev || e > bytes) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "string offsets out of order");
            }
            prev = e;
        }
        b->n_strings = ns;
        b->str_ends = d + 4;
        b->str_bytes = d + 4 + 4 * (size_t)ns;
        return CLEW_OK;
    }
    case BLK_SEC_SERVICES:
        if ((rc = load(b, BLK_SEC_STRINGS, err)) != CLEW_OK) {
            return rc;
        }
        if (n < 4 || n != 4 + 4 * (uint64_t)blk_get_u32(d)) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "bad service count");
        }
        b->n_services = blk_get_u32(d);
        b->svc_ids = d + 4;
        for (uint32_t i = 0; i < b->n_services; i++) {
            if (blk_get_u32(b->svc_ids + 4 * (size_t)i) >= b->n_strings) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "a service name is missing");
            }
        }
        return CLEW_OK;
    case BLK_SEC_KEYS:
        if ((rc = load(b, BLK_SEC_STRINGS, err)) != CLEW_OK) {
            return rc;
        }
        if (n < 4 || n != 4 + 5 * (uint64_t)blk_get_u32(d)) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "bad key count");
        }
        b->n_keys = blk_get_u32(d);
        b->key_ids = d + 4;
        b->key_flags = d + 4 + 4 * (size_t)b->n_keys;
        for (uint32_t i = 0; i < b->n_keys; i++) {
            if (blk_get_u32(b->key_ids + 4 * (size_t)i) >= b->n_strings) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "a key name is missing");
            }
        }
        return CLEW_OK;
    case BLK_SEC_OPERATIONS:
        if ((rc = load(b, BLK_SEC_SERVICES, err)) != CLEW_OK) {
            return rc;
        }
        if (n < 4 || n != 4 + 9 * (uint64_t)blk_get_u32(d)) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "bad operation count");
        }
        b->n_ops = blk_get_u32(d);
        b->op_svc = d + 4;
        b->op_name = b->op_svc + 4 * (size_t)b->n_ops;
        b->op_kind = b->op_name + 4 * (size_t)b->n_ops;
        for (uint32_t i = 0; i < b->n_ops; i++) {
            if (blk_get_u32(b->op_svc + 4 * (size_t)i) >= b->n_services ||
                blk_get_u32(b->op_name + 4 * (size_t)i) >= b->n_strings ||
                b->op_kind[i] > CLEW_KIND_CONSUMER) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "an operation is out of range");
            }
        }
        return CLEW_OK;
    case BLK_SEC_SUMMARIES: {
        if ((rc = load(b, BLK_SEC_SERVICES, err)) != CLEW_OK) {
            return rc;
        }
        uint64_t fixed = (uint64_t)nt * 53 + 4; /* 11 columns: 8+8+4+4+4+4+1+4+8+4+4 */
        if (n < fixed) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "too short for the trace count");
        }
        const uint8_t *p = d;
        b->s_start = p;
        p += 8 * (size_t)nt;
        b->s_dur = p;
        p += 8 * (size_t)nt;
        b->s_root_svc = p;
        p += 4 * (size_t)nt;
        b->s_root_op = p;
        p += 4 * (size_t)nt;
        b->s_spans = p;
        p += 4 * (size_t)nt;
        b->s_errors = p;
        p += 4 * (size_t)nt;
        b->s_state = p;
        p += nt;
        b->s_reason = p;
        p += 4 * (size_t)nt;
        b->s_adjusted = p;
        p += 8 * (size_t)nt;
        b->s_tenant = p;
        p += 4 * (size_t)nt;
        b->s_svc_first = p;
        p += 4 * (size_t)nt;
        b->n_trace_svcs = blk_get_u32(p);
        p += 4;
        b->s_svcs = p;
        if (n - fixed != 4 * (uint64_t)b->n_trace_svcs) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "bad service list size");
        }
        uint32_t prev = 0;
        for (uint32_t i = 0; i < nt; i++) {
            uint32_t first = blk_get_u32(b->s_svc_first + 4 * (size_t)i);
            if (first < prev || first > b->n_trace_svcs ||
                blk_get_u32(b->s_root_svc + 4 * (size_t)i) >= b->n_services ||
                blk_get_u32(b->s_root_op + 4 * (size_t)i) >= b->n_strings ||
                blk_get_u32(b->s_reason + 4 * (size_t)i) >= b->n_strings ||
                blk_get_u32(b->s_tenant + 4 * (size_t)i) >= b->n_strings ||
                b->s_state[i] > CLEW_TRACE_DROPPED) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "a summary is out of range");
            }
            prev = first;
        }
        for (uint32_t i = 0; i < b->n_trace_svcs; i++) {
            if (blk_get_u32(b->s_svcs + 4 * (size_t)i) >= b->n_services) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "a trace service is out of range");
            }
        }
        return CLEW_OK;
    }
    case BLK_SEC_RESOURCES: {
        if ((rc = load(b, BLK_SEC_KEYS, err)) != CLEW_OK) {
            return rc;
        }
        /* walk every resource and scope once to find where each starts; decoding them
         * into a scratch arena is the structural check */
        clew__free(b->res_off); /* from an attempt that ran out of memory */
        clew__free(b->scope_off);
        b->res_off = NULL;
        b->scope_off = NULL;
        blk_cursor c;
        blk_cursor_init(&c, d, (size_t)n);
        clew_arena a;
        clew__arena_init(&a, 4096, 0);
        rc = CLEW_OK;
        b->n_res = clew__blk_get_count(&c, 1);
        b->res_off = clew__calloc((size_t)b->n_res + 1, sizeof(size_t));
        if (b->res_off == NULL) {
            rc = CLEW_ENOMEM;
        }
        for (uint32_t i = 0; rc == CLEW_OK && !c.bad && i < b->n_res; i++) {
            b->res_off[i] = (size_t)(c.p - d);
            clew_attrs at;
            rc = clew__blk_get_attrs(&c, &at, &a, key_check, b, NULL);
            (void)clew__blk_get_str(&c);
            clew__arena_reset(&a);
        }
        if (rc == CLEW_OK && !c.bad) {
            b->res_off[b->n_res] = (size_t)(c.p - d);
            b->n_scopes = clew__blk_get_count(&c, 1);
            b->scope_off = clew__calloc((size_t)b->n_scopes + 1, sizeof(size_t));
            if (b->scope_off == NULL) {
                rc = CLEW_ENOMEM;
            }
        }
        for (uint32_t i = 0; rc == CLEW_OK && !c.bad && i < b->n_scopes; i++) {
            b->scope_off[i] = (size_t)(c.p - d);
            (void)clew__blk_get_str(&c);
            (void)clew__blk_get_str(&c);
            clew_attrs at;
            rc = clew__blk_get_attrs(&c, &at, &a, key_check, b, NULL);
            (void)clew__blk_get_str(&c);
            clew__arena_reset(&a);
        }
        if (rc == CLEW_OK && !c.bad) {
            b->scope_off[b->n_scopes] = (size_t)(c.p - d);
        }
        clew__arena_deinit(&a);
        if (rc == CLEW_ENOMEM) {
            return sec_fail(b, sec, err, rc, "out of memory");
        }
        if (rc != CLEW_OK || c.bad || c.p != c.end) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "malformed resource or scope");
        }
        return CLEW_OK;
    }
    case BLK_SEC_TERMS:
        if ((rc = load(b, BLK_SEC_POSTINGS, err)) != CLEW_OK) {
            return rc;
        }
        if (n < 4 || n != 4 + 16 * (uint64_t)blk_get_u32(d)) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "bad term count");
        }
        b->n_terms = blk_get_u32(d);
        b->term_hash = d + 4;
        b->term_count = b->term_hash + 8 * (size_t)b->n_terms;
        b->term_off = b->term_count + 4 * (size_t)b->n_terms;
        for (uint32_t i = 0; i < b->n_terms; i++) {
            if ((i > 0 && blk_get_u64(b->term_hash + 8 * (size_t)i) <=
                              blk_get_u64(b->term_hash + 8 * (size_t)(i - 1))) ||
                blk_get_u32(b->term_off + 4 * (size_t)i) > b->sec[BLK_SEC_POSTINGS].raw ||
                blk_get_u32(b->term_count + 4 * (size_t)i) > nt) {
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "a term is out of range");
            }
        }
        return CLEW_OK;
    case BLK_SEC_POSTINGS:
        return CLEW_OK; /* each list is checked as it is decoded */
    case BLK_SEC_VALUES: {
        /* the same layout as STRINGS */
        if (n < 4 || blk_get_u32(d) > (n - 4) / 4) {
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "bad value count");
        }
        uint32_t nv = blk_get_u32(d);
        uint64_t bytes = n - 4 - 4 * (uint64_t)nv;
        const uint8_t *base = d + 4 + 4 * (size_t)nv;
        b->values = clew__calloc(nv ? nv : 1, sizeof(*b->values));
        if (b->values == NULL) {
            return sec_fail(b, sec, err, CLEW_ENOMEM, "out of memory");
        }
        uint32_t prev = 0;
        for (uint32_t i = 0; i < nv; i++) {
            uint32_t e = blk_get_u32(d + 4 + 4 * (size_t)i);
            if (e < prev || e > bytes) {
                clew__free(b->values);
                b->values = NULL;
                return sec_fail(b, sec, err, CLEW_ECORRUPT, "value offsets out of order");
            }
            b->values[i].ptr = (const char *)base + prev;
            b->values[i].len = e - prev;
            prev = e;
        }
        b->n_values = nv;
        return CLEW_OK;
    }
    }
    return CLEW_OK;
}

/* Reads, checks and decompresses section `sec` once. Called with b->mu held. */
static clew_status load(clew_block *b, int sec, clew_error *err)
{
    section *s = &b->sec[sec];
    if (s->loaded) {
        return CLEW_OK;
    }
    if (s->status != CLEW_OK) {
        if (s->status == CLEW_ECORRUPT) {
            return corrupt(b, err, sec, s->off, s->msg);
        }
        clew__error_set(err, 0, "block %s: %s section: %s", b->path, SECTION_NAMES[sec], s->msg);
        return s->status;
    }
    uint8_t *stored = clew__malloc(s->stored ? (size_t)s->stored : 1);
    if (stored == NULL) {
        return sec_fail(b, sec, err, CLEW_ENOMEM, "out of memory");
    }
    clew_status rc = read_exact(b, stored, (size_t)s->stored, s->off);
    if (rc != CLEW_OK) {
        clew__free(stored);
        return sec_fail(b, sec, err, rc,
                        rc == CLEW_ECORRUPT ? "the file ends early" : "read failed");
    }
    if (crc32_iscsi(stored, (int)s->stored, 0) != s->crc) {
        clew__free(stored);
        return sec_fail(b, sec, err, CLEW_ECORRUPT, "checksum mismatch");
    }
    if (s->codec == BLK_CODEC_ZSTD) {
        uint8_t *raw = clew__malloc(s->raw ? (size_t)s->raw : 1);
        if (raw == NULL) {
            clew__free(stored);
            return sec_fail(b, sec, err, CLEW_ENOMEM, "out of memory");
        }
        size_t got = ZSTD_decompress(raw, (size_t)s->raw, stored, (size_t)s->stored);
        clew__free(stored);
        if (ZSTD_isError(got) || got != s->raw) {
            clew__free(raw);
            return sec_fail(b, sec, err, CLEW_ECORRUPT, "does not decompress to its size");
        }
        stored = raw;
    }
    s->data = stored;
    rc = validate(b, sec, err);
    if (rc != CLEW_OK) {
        clew__free(s->data);
        s->data = NULL;
        return rc;
    }
    s->loaded = true;
    return CLEW_OK;
}

static clew_status load_many(clew_block *b, const int *secs, size_t n, clew_error *err)
{
    pthread_mutex_lock(&b->mu);
    clew_status rc = CLEW_OK;
    for (size_t i = 0; rc == CLEW_OK && i < n; i++) {
        rc = load(b, secs[i], err);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* ---- open / close ---- */

clew_status clew__block_open(clew_fileio *io, const char *path, clew_block **out, clew_error *err)
{
    clew_block *b = clew__calloc(1, sizeof(*b));
    if (b == NULL) {
        return CLEW_ENOMEM;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_rwlock_init(&b->use, NULL);
    b->io = io;
    b->fd = -1;
    b->path = clew__strdup(path);
    if (b->path == NULL) {
        clew__block_close(b);
        return CLEW_ENOMEM;
    }
    clew_status rc = io->open_file(io, path, CLEW_FILEIO_READ, &b->fd);
    if (rc != CLEW_OK) {
        clew__error_set(err, 0, "block %s: cannot open: %s", path, clew_strerror(rc));
        b->fd = -1;
        clew__block_close(b);
        return rc;
    }
    rc = io->file_size(io, b->fd, &b->size);
    uint8_t hdr[BLK_HEADER_SIZE];
    uint8_t f[BLK_FOOTER_SIZE];
    if (rc == CLEW_OK && b->size < BLK_HEADER_SIZE + BLK_FOOTER_SIZE) {
        rc = corrupt(b, err, -1, b->size, "file too short to be a block");
    }
    if (rc == CLEW_OK) {
        rc = read_exact(b, hdr, sizeof(hdr), 0);
    }
    if (rc == CLEW_OK) {
        b->footer_off = b->size - BLK_FOOTER_SIZE;
        rc = read_exact(b, f, sizeof(f), b->footer_off);
    }
    if (rc == CLEW_ECORRUPT && err != NULL && err->msg[0] == '\0') {
        corrupt(b, err, -1, 0, "the file ends early");
    }
    const size_t crc_at = 40 + BLK_N_SECTIONS * BLK_SECTION_ENTRY;
    if (rc == CLEW_OK && blk_get_u64(hdr) != BLK_MAGIC) {
        rc = corrupt(b, err, -1, 0, "bad magic at the start (not a block file)");
    }
    if (rc == CLEW_OK && blk_get_u64(f + crc_at + 8) != BLK_MAGIC) {
        rc = corrupt(b, err, -1, b->size - 8, "bad magic at the end (truncated or torn write)");
    }
    if (rc == CLEW_OK && blk_get_u32(f + crc_at + 4) != BLK_FOOTER_SIZE) {
        rc = corrupt(b, err, -1, b->size - 12, "bad footer length");
    }
    if (rc == CLEW_OK && crc32_iscsi(f, (int)crc_at, 0) != blk_get_u32(f + crc_at)) {
        rc = corrupt(b, err, -1, b->footer_off, "footer checksum mismatch");
    }
    if (rc == CLEW_OK &&
        (blk_get_u32(hdr + 8) != CLEW_BLOCK_VERSION || blk_get_u32(f) != CLEW_BLOCK_VERSION)) {
        clew__error_set(err, 8, "block %s: format version %u, this build reads version %u", path,
                        blk_get_u32(f), CLEW_BLOCK_VERSION);
        rc = CLEW_EUNSUPPORTED;
    }
    if (rc == CLEW_OK && blk_get_u32(f + 4) != BLK_N_SECTIONS) {
        rc = corrupt(b, err, -1, b->footer_off + 4, "unexpected section count");
    }
    if (rc == CLEW_OK) {
        b->info.version = blk_get_u32(f);
        b->info.n_traces = blk_get_u32(f + 8);
        b->info.n_pages = blk_get_u32(f + 12);
        b->info.n_spans = blk_get_u64(f + 16);
        b->info.min_start_ns = blk_get_u64(f + 24);
        b->info.max_end_ns = blk_get_u64(f + 32);
        b->info.file_size = b->size;
        if (b->info.n_traces > UINT32_MAX / 64) {
            rc = corrupt(b, err, -1, b->footer_off + 8, "trace count out of range");
        }
    }
    for (int i = 0; rc == CLEW_OK && i < BLK_N_SECTIONS; i++) {
        const uint8_t *e = f + 40 + (size_t)i * BLK_SECTION_ENTRY;
        section *s = &b->sec[i];
        s->off = blk_get_u64(e);
        s->stored = blk_get_u64(e + 8);
        s->raw = blk_get_u64(e + 16);
        s->crc = blk_get_u32(e + 24);
        s->codec = blk_get_u32(e + 28);
        if (s->off < BLK_HEADER_SIZE || s->off > b->footer_off ||
            s->stored > b->footer_off - s->off || s->raw > BLK_MAX_SECTION_RAW ||
            s->codec > BLK_CODEC_ZSTD || (s->codec == BLK_CODEC_RAW && s->raw != s->stored)) {
            rc = corrupt(b, err, i, s->off, "section table entry out of bounds");
        }
    }
    if (rc != CLEW_OK) {
        clew__block_close(b);
        return rc;
    }
    *out = b;
    return CLEW_OK;
}

void clew__block_close(clew_block *b)
{
    if (b == NULL) {
        return;
    }
    if (b->fd >= 0) {
        (void)b->io->close_file(b->io, b->fd);
    }
    for (int i = 0; i < BLK_N_SECTIONS; i++) {
        clew__free(b->sec[i].data);
    }
    clew__free(b->res_off);
    clew__free(b->scope_off);
    clew__free(b->values);
    clew__free(b->path);
    pthread_mutex_destroy(&b->mu);
    pthread_rwlock_destroy(&b->use);
    clew__free(b);
}

void clew__block_info(const clew_block *b, clew_block_info *out)
{
    *out = b->info;
}

/* ---- pages and trace records ---- */

/* Reads page `p` and decompresses it into memory from `a` (so decoded strings may point
 * into it for as long as the arena lives). */
static clew_status read_page(clew_block *b, uint32_t p, clew_arena *a, const uint8_t **out,
                             size_t *out_len, blk_dict *dict, clew_error *err)
{
    const uint8_t *e = b->sec[BLK_SEC_PAGE_TABLE].data + (size_t)p * BLK_PAGE_ENTRY;
    uint64_t off = blk_get_u64(e);
    uint32_t stored = blk_get_u32(e + 8), raw = blk_get_u32(e + 12), crc = blk_get_u32(e + 16);
    uint8_t *z = clew__malloc(stored ? stored : 1);
    uint8_t *dst = clew__arena_alloc(a, raw);
    if (z == NULL || dst == NULL) {
        clew__free(z);
        return CLEW_ENOMEM;
    }
    clew_status rc = read_exact(b, z, stored, off);
    if (rc == CLEW_ECORRUPT) {
        rc = corrupt(b, err, -1, off, "page runs past the end of the file");
    } else if (rc != CLEW_OK) {
        clew__error_set(err, 0, "block %s: reading page %u: %s", b->path, p, clew_strerror(rc));
    } else if (crc32_iscsi(z, (int)stored, 0) != crc) {
        rc = corrupt(b, err, -1, off, "page checksum mismatch");
    } else {
        size_t got = ZSTD_decompress(dst, raw, z, stored);
        if (ZSTD_isError(got) || got != raw) {
            rc = corrupt(b, err, -1, off, "page does not decompress to its size");
        }
    }
    clew__free(z);
    if (rc != CLEW_OK) {
        return rc;
    }
    /* the page dictionary: varint count, then that many strings */
    blk_cursor c;
    blk_cursor_init(&c, dst, raw);
    uint32_t n = clew__blk_get_count(&c, 1);
    clew_str *strs = clew__arena_calloc(a, n ? n : 1, sizeof(*strs));
    if (strs == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < n && !c.bad; i++) {
        strs[i] = clew__blk_get_str(&c);
    }
    if (c.bad) {
        return corrupt(b, err, -1, off, "malformed page dictionary");
    }
    dict->g = b->values;
    dict->ng = b->n_values;
    dict->s = strs;
    dict->n = n;
    *out = dst;
    *out_len = raw;
    return CLEW_OK;
}

typedef struct decode_ctx {
    clew_block *b;
    clew_arena *a;
    const blk_dict *dict;      /* the page's */
    const clew_resource **res; /* decoded on first use, per call */
    const clew_scope **scopes;
} decode_ctx;

static clew_status key_lookup(void *ud, uint64_t id, clew_str *out)
{
    decode_ctx *d = ud;
    if (id >= d->b->n_keys) {
        return CLEW_ECORRUPT;
    }
    clew_str k = bstr(d->b, blk_get_u32(d->b->key_ids + 4 * (size_t)id));
    *out = arena_copy(d->a, k);
    return out->ptr != NULL ? CLEW_OK : CLEW_ENOMEM;
}

/* Used while validating RESOURCES: ud is the block, keys need not be copied. */
static clew_status key_check(void *ud, uint64_t id, clew_str *out)
{
    clew_block *b = ud;
    if (id >= b->n_keys) {
        return CLEW_ECORRUPT;
    }
    *out = bstr(b, blk_get_u32(b->key_ids + 4 * (size_t)id));
    return CLEW_OK;
}

static clew_status get_resource(decode_ctx *d, uint32_t id, const clew_resource **out)
{
    if (d->res == NULL) {
        d->res = clew__arena_calloc(d->a, d->b->n_res ? d->b->n_res : 1, sizeof(*d->res));
        if (d->res == NULL) {
            return CLEW_ENOMEM;
        }
    }
    if (d->res[id] == NULL) {
        size_t from = d->b->res_off[id], to = d->b->res_off[id + 1];
        /* copy the bytes so the decoded strings live in the result's arena */
        const uint8_t *bytes = clew__arena_memdup(d->a, d->b->sec[BLK_SEC_RESOURCES].data + from,
                                                  to - from ? to - from : 1);
        clew_resource *r = clew__arena_calloc(d->a, 1, sizeof(*r));
        if (bytes == NULL || r == NULL) {
            return CLEW_ENOMEM;
        }
        blk_cursor c;
        blk_cursor_init(&c, bytes, to - from);
        clew_status rc = clew__blk_get_attrs(&c, &r->attrs, d->a, key_lookup, d, NULL);
        if (rc != CLEW_OK) {
            return rc;
        }
        r->schema_url = clew__blk_get_str(&c);
        if (c.bad) {
            return CLEW_ECORRUPT;
        }
        d->res[id] = r;
    }
    *out = d->res[id];
    return CLEW_OK;
}

static clew_status get_scope(decode_ctx *d, uint32_t id, const clew_scope **out)
{
    if (d->scopes == NULL) {
        d->scopes =
            clew__arena_calloc(d->a, d->b->n_scopes ? d->b->n_scopes : 1, sizeof(*d->scopes));
        if (d->scopes == NULL) {
            return CLEW_ENOMEM;
        }
    }
    if (d->scopes[id] == NULL) {
        size_t from = d->b->scope_off[id], to = d->b->scope_off[id + 1];
        const uint8_t *bytes = clew__arena_memdup(d->a, d->b->sec[BLK_SEC_RESOURCES].data + from,
                                                  to - from ? to - from : 1);
        clew_scope *s = clew__arena_calloc(d->a, 1, sizeof(*s));
        if (bytes == NULL || s == NULL) {
            return CLEW_ENOMEM;
        }
        blk_cursor c;
        blk_cursor_init(&c, bytes, to - from);
        s->name = clew__blk_get_str(&c);
        s->version = clew__blk_get_str(&c);
        clew_status rc = clew__blk_get_attrs(&c, &s->attrs, d->a, key_lookup, d, NULL);
        if (rc != CLEW_OK) {
            return rc;
        }
        s->schema_url = clew__blk_get_str(&c);
        if (c.bad) {
            return CLEW_ECORRUPT;
        }
        d->scopes[id] = s;
    }
    *out = d->scopes[id];
    return CLEW_OK;
}

typedef struct attr_ref {
    uint32_t key;
    uint32_t k; /* position in the shape column */
    clew_value *v;
} attr_ref;

static int attr_ref_cmp(const void *x, const void *y)
{
    const attr_ref *a = x, *b = y;
    if (a->key != b->key) {
        return a->key < b->key ? -1 : 1;
    }
    return a->k < b->k ? -1 : a->k > b->k;
}

typedef struct ashape {
    uint8_t tag, runs, scale;
    uint8_t widths[BLK_MAX_RUNS];
    uint32_t a; /* skeleton dictionary index */
} ashape;

/* Reads the value part of one span attribute, given its shape. */
static clew_status get_form(decode_ctx *d, blk_cursor *c, const ashape *sh, clew_value *out)
{
    if (sh->tag == BLK_VALUE_TEMPLATE) {
        uint64_t nums[BLK_MAX_RUNS];
        for (unsigned r = 0; r < sh->runs; r++) {
            nums[r] = clew__blk_get_varint(c);
        }
        if (c->bad) {
            return CLEW_ECORRUPT;
        }
        memset(out, 0, sizeof(*out));
        out->type = CLEW_VALUE_STRING;
        clew_str skel;
        if (!blk_dict_get(d->dict, sh->a, &skel)) {
            return CLEW_ECORRUPT;
        }
        return clew__blk_unskeleton(skel, nums, sh->widths, sh->runs, d->a, &out->u.s);
    }
    if (sh->tag == BLK_VALUE_DECIMAL) {
        int64_t m = blk_unzigzag(clew__blk_get_varint(c));
        if (c->bad) {
            return CLEW_ECORRUPT;
        }
        memset(out, 0, sizeof(*out));
        out->type = CLEW_VALUE_DOUBLE;
        out->u.d = (double)m / clew__blk_pow10[sh->scale];
        return CLEW_OK;
    }
    return clew__blk_get_payload(c, sh->tag, out, d->a, 0, d->dict);
}

static clew_status get_shape(decode_ctx *d, blk_cursor *c, ashape *sh)
{
    const uint8_t *t = clew__blk_get_bytes(c, 1);
    if (t == NULL) {
        return CLEW_ECORRUPT;
    }
    sh->tag = *t;
    if (sh->tag == BLK_VALUE_TEMPLATE) {
        uint64_t a = clew__blk_get_varint(c);
        clew_str skel;
        if (c->bad || a > UINT32_MAX || !blk_dict_get(d->dict, a, &skel)) {
            return CLEW_ECORRUPT;
        }
        sh->a = (uint32_t)a;
        unsigned runs = 0;
        for (size_t i = 0; i < skel.len; i++) {
            runs += skel.ptr[i] == '0';
        }
        if (runs == 0 || runs > BLK_MAX_RUNS) {
            return CLEW_ECORRUPT;
        }
        sh->runs = (uint8_t)runs;
        const uint8_t *w = clew__blk_get_bytes(c, runs);
        if (w == NULL) {
            return CLEW_ECORRUPT;
        }
        for (unsigned r = 0; r < runs; r++) {
            if (w[r] == 0 || w[r] > BLK_MAX_DIGITS) {
                return CLEW_ECORRUPT;
            }
            sh->widths[r] = w[r];
        }
    } else if (sh->tag == BLK_VALUE_DECIMAL) {
        const uint8_t *k = clew__blk_get_bytes(c, 1);
        if (k == NULL || *k > BLK_MAX_SCALE) {
            return CLEW_ECORRUPT;
        }
        sh->scale = *k;
    }
    return CLEW_OK;
}

/* Span attributes: the shape column (count, dropped, key id + shape per attribute), then the
 * values grouped by key id in the writer's order (block.md "span attributes"). */
static clew_status decode_span_attrs(decode_ctx *d, blk_cursor *c, clew_span_data *sp, uint32_t n)
{
    size_t total = 0;
    ashape **shapes = clew__arena_calloc(d->a, n, sizeof(*shapes));
    uint32_t **keys = clew__arena_calloc(d->a, n, sizeof(*keys));
    if (shapes == NULL || keys == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t na = clew__blk_get_count(c, 2);
        uint64_t dropped = clew__blk_get_varint(c);
        if (c->bad || dropped > UINT32_MAX) {
            return CLEW_ECORRUPT;
        }
        sp[i].attrs.dropped = (uint32_t)dropped;
        if (na == 0) {
            continue;
        }
        sp[i].attrs.items = clew__arena_calloc(d->a, na, sizeof(clew_kv));
        shapes[i] = clew__arena_calloc(d->a, na, sizeof(ashape));
        keys[i] = clew__arena_calloc(d->a, na, sizeof(uint32_t));
        if (sp[i].attrs.items == NULL || shapes[i] == NULL || keys[i] == NULL) {
            return CLEW_ENOMEM;
        }
        sp[i].attrs.n = na;
        for (uint32_t j = 0; j < na; j++) {
            uint64_t kid = clew__blk_get_varint(c);
            if (c->bad) {
                return CLEW_ECORRUPT;
            }
            clew_status rc = key_lookup(d, kid, &sp[i].attrs.items[j].key);
            if (rc == CLEW_OK) {
                rc = get_shape(d, c, &shapes[i][j]);
            }
            if (rc != CLEW_OK) {
                return rc;
            }
            keys[i][j] = (uint32_t)kid;
        }
        total += na;
    }
    if (total == 0) {
        return CLEW_OK;
    }
    attr_ref *refs = clew__arena_calloc(d->a, total, sizeof(*refs));
    const ashape **ks = clew__arena_calloc(d->a, total, sizeof(*ks));
    if (refs == NULL || ks == NULL) {
        return CLEW_ENOMEM;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < sp[i].attrs.n; j++, k++) {
            refs[k].key = keys[i][j];
            refs[k].k = k;
            refs[k].v = &sp[i].attrs.items[j].value;
            ks[k] = &shapes[i][j];
        }
    }
    qsort(refs, total, sizeof(*refs), attr_ref_cmp);
    for (size_t i = 0; i < total; i++) {
        clew_status rc = get_form(d, c, ks[refs[i].k], refs[i].v);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return c->bad ? CLEW_ECORRUPT : CLEW_OK;
}

/* Decodes the trace record at the cursor (block.md "trace record"). Strings point into the
 * cursor's bytes or into d->a. */
static clew_status decode_trace(decode_ctx *d, blk_cursor *c, const clew_trace_id *tid,
                                clew_span_data **out, uint32_t *out_n)
{
    clew_block *b = d->b;
    uint32_t n = clew__blk_get_count(c, 8);
    uint64_t t0 = clew__blk_get_varint(c);
    if (c->bad || n == 0) {
        return CLEW_ECORRUPT;
    }
    clew_span_data *sp = clew__arena_calloc(d->a, n, sizeof(*sp));
    if (sp == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        sp[i].trace_id = *tid;
        const uint8_t *id = clew__blk_get_bytes(c, 8);
        if (id == NULL) {
            return CLEW_ECORRUPT;
        }
        memcpy(sp[i].span_id.bytes, id, 8);
    }
    uint32_t *ppos = clew__arena_alloc(d->a, (size_t)n * sizeof(*ppos));
    if (ppos == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t code = clew__blk_get_varint(c);
        ppos[i] = UINT32_MAX;
        if (code == 0) {
            continue;
        }
        if (code <= n) {
            sp[i].parent_span_id = sp[code - 1].span_id;
            ppos[i] = (uint32_t)(code - 1);
        } else if (code == (uint64_t)n + 1) {
            const uint8_t *id = clew__blk_get_bytes(c, 8);
            if (id == NULL) {
                return CLEW_ECORRUPT;
            }
            memcpy(sp[i].parent_span_id.bytes, id, 8);
        } else {
            return CLEW_ECORRUPT;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        /* relative to an earlier parent's start, else to the trace start (as written) */
        uint64_t base = ppos[i] < i ? sp[ppos[i]].start_ns : t0;
        sp[i].start_ns = base + (uint64_t)blk_unzigzag(clew__blk_get_varint(c));
    }
    for (uint32_t i = 0; i < n; i++) {
        sp[i].end_ns = sp[i].start_ns + (uint64_t)blk_unzigzag(clew__blk_get_varint(c));
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t sid = clew__blk_get_varint(c);
        if (c->bad || sid >= b->n_strings) {
            return CLEW_ECORRUPT;
        }
        sp[i].name = arena_copy(d->a, bstr(b, (uint32_t)sid));
        if (sp[i].name.ptr == NULL) {
            return CLEW_ENOMEM;
        }
    }
    uint8_t *bits = clew__arena_alloc(d->a, n);
    if (bits == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = clew__blk_get_bytes(c, 1);
        if (p == NULL || (*p & 7u) > CLEW_KIND_CONSUMER || ((*p >> 3) & 3u) > 2 ||
            (*p & 0x80u) != 0) {
            return CLEW_ECORRUPT;
        }
        bits[i] = *p;
        sp[i].kind = (clew_span_kind)(*p & 7u);
        sp[i].status_code = (clew_status_code)((*p >> 3) & 3u);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t flags = clew__blk_get_varint(c);
        if (flags > UINT32_MAX) {
            return CLEW_ECORRUPT;
        }
        sp[i].flags = (uint32_t)flags;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t rid = clew__blk_get_varint(c);
        if (c->bad || rid >= b->n_res) {
            return CLEW_ECORRUPT;
        }
        clew_status rc = get_resource(d, (uint32_t)rid, &sp[i].resource);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t cid = clew__blk_get_varint(c);
        if (c->bad || cid >= b->n_scopes) {
            return CLEW_ECORRUPT;
        }
        clew_status rc = get_scope(d, (uint32_t)cid, &sp[i].scope);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (bits[i] & 0x20u) {
            sp[i].trace_state = clew__blk_get_str(c);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (bits[i] & 0x40u) {
            sp[i].status_message = clew__blk_get_str(c);
        }
    }
    clew_status arc = decode_span_attrs(d, c, sp, n);
    if (arc != CLEW_OK) {
        return arc;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t ne = clew__blk_get_count(c, 4);
        uint64_t dropped = clew__blk_get_varint(c);
        if (c->bad || dropped > UINT32_MAX) {
            return CLEW_ECORRUPT;
        }
        sp[i].dropped_events = (uint32_t)dropped;
        if (ne == 0) {
            continue;
        }
        sp[i].events = clew__arena_calloc(d->a, ne, sizeof(*sp[i].events));
        if (sp[i].events == NULL) {
            return CLEW_ENOMEM;
        }
        sp[i].n_events = ne;
        for (uint32_t e = 0; e < ne; e++) {
            clew_event_data *ev = &sp[i].events[e];
            ev->time_ns = sp[i].start_ns + (uint64_t)blk_unzigzag(clew__blk_get_varint(c));
            ev->name = clew__blk_get_str(c);
            clew_status rc = clew__blk_get_attrs(c, &ev->attrs, d->a, key_lookup, d, d->dict);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t nl = clew__blk_get_count(c, 27);
        uint64_t dropped = clew__blk_get_varint(c);
        if (c->bad || dropped > UINT32_MAX) {
            return CLEW_ECORRUPT;
        }
        sp[i].dropped_links = (uint32_t)dropped;
        if (nl == 0) {
            continue;
        }
        sp[i].links = clew__arena_calloc(d->a, nl, sizeof(*sp[i].links));
        if (sp[i].links == NULL) {
            return CLEW_ENOMEM;
        }
        sp[i].n_links = nl;
        for (uint32_t l = 0; l < nl; l++) {
            clew_link_data *ln = &sp[i].links[l];
            const uint8_t *t = clew__blk_get_bytes(c, 16);
            const uint8_t *s = clew__blk_get_bytes(c, 8);
            if (t == NULL || s == NULL) {
                return CLEW_ECORRUPT;
            }
            memcpy(ln->trace_id.bytes, t, 16);
            memcpy(ln->span_id.bytes, s, 8);
            ln->trace_state = clew__blk_get_str(c);
            uint64_t flags = clew__blk_get_varint(c);
            if (c->bad || flags > UINT32_MAX) {
                return CLEW_ECORRUPT;
            }
            ln->flags = (uint32_t)flags;
            clew_status rc = clew__blk_get_attrs(c, &ln->attrs, d->a, key_lookup, d, d->dict);
            if (rc != CLEW_OK) {
                return rc;
            }
        }
    }
    if (c->bad) {
        return CLEW_ECORRUPT;
    }
    *out = sp;
    *out_n = n;
    return CLEW_OK;
}

/* Decodes trace `ord` from a decompressed page. */
static clew_status decode_ord(clew_block *b, uint32_t ord, const uint8_t *page, size_t page_len,
                              const blk_dict *dict, clew_arena *a, clew_span_data **out,
                              uint32_t *out_n, clew_error *err)
{
    uint32_t off = blk_get_u32(b->id_off + 4 * (size_t)ord);
    blk_cursor c;
    blk_cursor_init(&c, page + off, page_len - off);
    clew_trace_id tid;
    memcpy(tid.bytes, b->ids + (size_t)ord * 16, 16);
    decode_ctx d = {.b = b, .a = a, .dict = dict, .res = NULL, .scopes = NULL};
    clew_status rc = decode_trace(&d, &c, &tid, out, out_n);
    if (rc == CLEW_ECORRUPT) {
        uint32_t page_no = blk_get_u32(b->id_page + 4 * (size_t)ord);
        char what[96];
        snprintf(what, sizeof(what), "malformed trace record (page %u, offset %u + %zu)", page_no,
                 off, (size_t)(c.p - c.base));
        uint64_t foff =
            blk_get_u64(b->sec[BLK_SEC_PAGE_TABLE].data + (size_t)page_no * BLK_PAGE_ENTRY);
        return corrupt(b, err, -1, foff, what);
    }
    if (rc == CLEW_OK && *out_n != blk_get_u32(b->s_spans + 4 * (size_t)ord)) {
        return corrupt(b, err, -1, 0, "trace record span count differs from its summary");
    }
    return rc;
}

/* Binary search of the trace index. */
static bool find_ord(const clew_block *b, const clew_trace_id *id, uint32_t *out)
{
    size_t lo = 0, hi = b->info.n_traces;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(b->ids + mid * 16, id->bytes, 16);
        if (c == 0) {
            *out = (uint32_t)mid;
            return true;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

static const int GET_SECTIONS[] = {BLK_SEC_BLOOM,     BLK_SEC_TRACE_INDEX, BLK_SEC_STRINGS,
                                   BLK_SEC_SUMMARIES, BLK_SEC_KEYS,        BLK_SEC_RESOURCES,
                                   BLK_SEC_VALUES};

static clew_status may_contain_unlocked(clew_block *b, const clew_trace_id *id, bool *out,
                                        clew_error *err)
{
    static const int secs[] = {BLK_SEC_BLOOM};
    clew_status rc = load_many(b, secs, 1, err);
    if (rc == CLEW_OK) {
        *out = clew__blk_bloom_test(b->bloom, b->bloom_bits, id);
    }
    return rc;
}

static clew_status get_trace_unlocked(clew_block *b, const clew_trace_id *id,
                                      clew_trace_result **out, clew_error *err)
{
    clew_status rc =
        load_many(b, GET_SECTIONS, sizeof(GET_SECTIONS) / sizeof(GET_SECTIONS[0]), err);
    if (rc != CLEW_OK) {
        return rc;
    }
    uint32_t ord;
    if (!clew__blk_bloom_test(b->bloom, b->bloom_bits, id) || !find_ord(b, id, &ord)) {
        return CLEW_ENOTFOUND;
    }
    clew_trace_result *r = clew__calloc(1, sizeof(*r));
    if (r == NULL) {
        return CLEW_ENOMEM;
    }
    clew__arena_init(&r->arena, RESULT_CHUNK, 0);
    const uint8_t *page;
    size_t page_len;
    blk_dict dict;
    clew_span_data *spans = NULL;
    uint32_t n = 0;
    rc = read_page(b, blk_get_u32(b->id_page + 4 * (size_t)ord), &r->arena, &page, &page_len, &dict,
                   err);
    if (rc == CLEW_OK) {
        rc = decode_ord(b, ord, page, page_len, &dict, &r->arena, &spans, &n, err);
    }
    if (rc == CLEW_OK) {
        r->spans = clew__arena_calloc(&r->arena, n, sizeof(*r->spans));
        if (r->spans == NULL) {
            rc = CLEW_ENOMEM;
        }
    }
    if (rc == CLEW_OK) {
        for (uint32_t i = 0; i < n; i++) {
            r->spans[i] = &spans[i];
        }
        /* the writer stored them by start time (ties in input order) */
        r->n_spans = n;
        r->trace_id = *id;
        r->meta.state = (clew_trace_state)b->s_state[ord];
        uint64_t bits = blk_get_u64(b->s_adjusted + 8 * (size_t)ord);
        memcpy(&r->meta.adjusted_count, &bits, 8);
        r->meta.kept_reason =
            arena_copy(&r->arena, bstr(b, blk_get_u32(b->s_reason + 4 * (size_t)ord)));
        r->meta.tenant = arena_copy(&r->arena, bstr(b, blk_get_u32(b->s_tenant + 4 * (size_t)ord)));
        if (r->meta.kept_reason.ptr == NULL || r->meta.tenant.ptr == NULL) {
            rc = CLEW_ENOMEM;
        }
    }
    if (rc != CLEW_OK) {
        clew__trace_result_free(r);
        return rc;
    }
    *out = r;
    return CLEW_OK;
}

/* ---- search ---- */

static bool term_find(const clew_block *b, uint64_t h, uint32_t *out)
{
    size_t lo = 0, hi = b->n_terms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t v = blk_get_u64(b->term_hash + 8 * mid);
        if (v == h) {
            *out = (uint32_t)mid;
            return true;
        }
        if (v < h) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

typedef struct ordlist {
    uint32_t *v;
    size_t n;
} ordlist;

/* Appends the postings of term hash `h` (if present) to `l`. */
static clew_status postings_add(clew_block *b, uint64_t h, ordlist *l, clew_error *err)
{
    uint32_t t;
    if (!term_find(b, h, &t)) {
        return CLEW_OK;
    }
    uint32_t count = blk_get_u32(b->term_count + 4 * (size_t)t);
    uint32_t off = blk_get_u32(b->term_off + 4 * (size_t)t);
    const section *ps = &b->sec[BLK_SEC_POSTINGS];
    blk_cursor c;
    blk_cursor_init(&c, ps->data + off, (size_t)ps->raw - off);
    uint32_t *v = clew__realloc(l->v, (l->n + count + 1) * sizeof(*v));
    if (v == NULL) {
        return CLEW_ENOMEM;
    }
    l->v = v;
    uint64_t ord = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t delta = clew__blk_get_varint(&c);
        ord = i == 0 ? delta : ord + delta;
        if (c.bad || (i > 0 && delta == 0) || ord >= b->info.n_traces) {
            return corrupt(b, err, BLK_SEC_POSTINGS, ps->off, "malformed posting list");
        }
        l->v[l->n++] = (uint32_t)ord;
    }
    return CLEW_OK;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void ordlist_sort_unique(ordlist *l)
{
    if (l->n > 1) {
        qsort(l->v, l->n, sizeof(*l->v), u32_cmp);
    }
    size_t u = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (u == 0 || l->v[u - 1] != l->v[i]) {
            l->v[u++] = l->v[i];
        }
    }
    l->n = u;
}

/* cand = cand ∩ l (both sorted); cand->v == NULL means "every trace". Takes l. */
static void intersect(ordlist *cand, ordlist *l, bool *all)
{
    if (*all) {
        *cand = *l;
        *all = false;
        return;
    }
    size_t i = 0, j = 0, u = 0;
    while (i < cand->n && j < l->n) {
        if (cand->v[i] < l->v[j]) {
            i++;
        } else if (cand->v[i] > l->v[j]) {
            j++;
        } else {
            cand->v[u++] = cand->v[i];
            i++;
            j++;
        }
    }
    cand->n = u;
    clew__free(l->v);
}

static bool key_find(const clew_block *b, clew_str key, uint32_t *out)
{
    size_t lo = 0, hi = b->n_keys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(bstr(b, blk_get_u32(b->key_ids + 4 * mid)), key);
        if (c == 0) {
            *out = (uint32_t)mid;
            return true;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

static bool lit_eq(clew_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Tags the Jaeger API derives from span fields (as the memory store matches them). */
static bool is_derived_key(clew_str k)
{
    return lit_eq(k, "error") || lit_eq(k, "span.kind") || lit_eq(k, "otel.status_code") ||
           lit_eq(k, "otel.status_description") || lit_eq(k, "otel.scope.name") ||
           lit_eq(k, "otel.scope.version") || lit_eq(k, "w3c.tracestate");
}

static bool derived_match(const clew_span_data *s, const clew_tag_filter *f)
{
    if (lit_eq(f->key, "error")) {
        return s->status_code == CLEW_STATUS_ERROR && lit_eq(f->value, "true");
    }
    if (lit_eq(f->key, "span.kind")) {
        return s->kind >= CLEW_KIND_SERVER && s->kind <= CLEW_KIND_CONSUMER &&
               lit_eq(f->value, clew__kind_name(s->kind));
    }
    if (lit_eq(f->key, "otel.status_code")) {
        return (s->status_code == CLEW_STATUS_OK && lit_eq(f->value, "OK")) ||
               (s->status_code == CLEW_STATUS_ERROR && lit_eq(f->value, "ERROR"));
    }
    if (lit_eq(f->key, "otel.status_description")) {
        return s->status_message.len > 0 && str_eq(s->status_message, f->value);
    }
    if (lit_eq(f->key, "otel.scope.name")) {
        return s->scope->name.len > 0 && str_eq(s->scope->name, f->value);
    }
    if (lit_eq(f->key, "otel.scope.version")) {
        return s->scope->version.len > 0 && str_eq(s->scope->version, f->value);
    }
    if (lit_eq(f->key, "w3c.tracestate")) {
        return s->trace_state.len > 0 && str_eq(s->trace_state, f->value);
    }
    return false;
}

static bool attrs_match(const clew_attrs *a, const clew_tag_filter *f)
{
    for (uint32_t i = 0; i < a->n; i++) {
        if (str_eq(a->items[i].key, f->key) &&
            clew__value_matches_text(&a->items[i].value, f->value)) {
            return true;
        }
    }
    return false;
}

static bool span_matches(const clew_span_data *s, const clew_search_query *q)
{
    if (q->service.len > 0 && !str_eq(clew__resource_service(s->resource), q->service)) {
        return false;
    }
    if (q->operation.len > 0 && !str_eq(s->name, q->operation)) {
        return false;
    }
    for (size_t i = 0; i < q->n_tags; i++) {
        const clew_tag_filter *f = &q->tags[i];
        if (!attrs_match(&s->attrs, f) && !attrs_match(&s->resource->attrs, f) &&
            !derived_match(s, f)) {
            return false;
        }
    }
    return true;
}

/* The postings of key = text: the union over every typed value the text matches. */
static clew_status tag_postings(clew_block *b, const clew_tag_filter *f, ordlist *l,
                                clew_error *err)
{
    clew_value vals[4];
    size_t nv = 0;
    vals[nv].type = CLEW_VALUE_STRING;
    vals[nv++].u.s = f->value;
    if (lit_eq(f->value, "true") || lit_eq(f->value, "false")) {
        vals[nv].type = CLEW_VALUE_BOOL;
        vals[nv++].u.b = lit_eq(f->value, "true");
    }
    /* the number grammar of clew__value_matches_text, so a search by the postings finds
     * exactly what a scan would */
    int64_t i64;
    if (clew__tag_text_i64(f->value, &i64)) {
        vals[nv].type = CLEW_VALUE_INT;
        vals[nv++].u.i = i64;
    }
    double d;
    if (clew__tag_text_double(f->value, &d)) {
        vals[nv].type = CLEW_VALUE_DOUBLE;
        vals[nv++].u.d = d;
    }
    if (f->value.len == 0) {
        vals[nv++].type = CLEW_VALUE_EMPTY;
    }
    for (size_t i = 0; i < nv; i++) {
        uint8_t tmp[8];
        const void *vb;
        size_t vlen;
        unsigned letter = clew__blk_value_term(&vals[i], tmp, &vb, &vlen);
        if (letter == 0) {
            continue;
        }
        clew_status rc = postings_add(
            b, clew__blk_term_hash(BLK_TERM_ATTR | letter << 8, f->key, vb, vlen), l, err);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    ordlist_sort_unique(l);
    return CLEW_OK;
}

typedef struct cand {
    uint64_t start;
    uint32_t ord;
} cand;

static int cand_newest_first(const void *x, const void *y)
{
    const cand *a = x, *c = y;
    if (a->start != c->start) {
        return a->start > c->start ? -1 : 1;
    }
    return a->ord > c->ord ? -1 : a->ord < c->ord;
}

/* Moves the k newest candidates to the front (any order) with a min-heap of k; returns k. */
static size_t top_newest(cand *cs, size_t n, size_t k)
{
    /* heap on cs[0..k): the oldest of the kept ones at the root */
    for (size_t i = k / 2; i-- > 0;) {
        size_t j = i;
        for (;;) {
            size_t l = 2 * j + 1, m = j;
            if (l < k && cand_newest_first(&cs[l], &cs[m]) > 0) {
                m = l;
            }
            if (l + 1 < k && cand_newest_first(&cs[l + 1], &cs[m]) > 0) {
                m = l + 1;
            }
            if (m == j) {
                break;
            }
            cand t = cs[j];
            cs[j] = cs[m];
            cs[m] = t;
            j = m;
        }
    }
    for (size_t i = k; i < n; i++) {
        if (cand_newest_first(&cs[i], &cs[0]) >= 0) {
            continue; /* older than every kept one */
        }
        cs[0] = cs[i];
        size_t j = 0;
        for (;;) {
            size_t l = 2 * j + 1, m = j;
            if (l < k && cand_newest_first(&cs[l], &cs[m]) > 0) {
                m = l;
            }
            if (l + 1 < k && cand_newest_first(&cs[l + 1], &cs[m]) > 0) {
                m = l + 1;
            }
            if (m == j) {
                break;
            }
            cand t = cs[j];
            cs[j] = cs[m];
            cs[m] = t;
            j = m;
        }
    }
    return k;
}

static const int SEARCH_SECTIONS[] = {
    BLK_SEC_PAGE_TABLE, BLK_SEC_TRACE_INDEX, BLK_SEC_STRINGS, BLK_SEC_SERVICES, BLK_SEC_KEYS,
    BLK_SEC_SUMMARIES,  BLK_SEC_RESOURCES,   BLK_SEC_TERMS,   BLK_SEC_POSTINGS, BLK_SEC_VALUES};

static bool summary_ok(const clew_block *b, uint32_t ord, const clew_search_query *q)
{
    uint64_t start = blk_get_u64(b->s_start + 8 * (size_t)ord);
    uint64_t dur = blk_get_u64(b->s_dur + 8 * (size_t)ord);
    return !((q->start_min_ns && start < q->start_min_ns) ||
             (q->start_max_ns && start > q->start_max_ns) ||
             (q->min_duration_ns && dur < q->min_duration_ns) ||
             (q->max_duration_ns && dur > q->max_duration_ns) ||
             (q->errors_only && blk_get_u32(b->s_errors + 4 * (size_t)ord) == 0));
}

/* Scratch for verifying candidates: keeps the last decompressed page, since candidates come
 * newest first and pages are in start order. */
typedef struct verifier {
    clew_arena page_arena, trace_arena;
    uint32_t page_no;
    const uint8_t *page;
    size_t page_len;
    blk_dict dict;
} verifier;

static clew_status verify_candidate(clew_block *b, verifier *v, uint32_t ord,
                                    const clew_search_query *q, bool *out, clew_error *err)
{
    uint32_t p = blk_get_u32(b->id_page + 4 * (size_t)ord);
    clew_status rc;
    if (v->page == NULL || v->page_no != p) {
        clew__arena_reset(&v->page_arena);
        v->page = NULL;
        rc = read_page(b, p, &v->page_arena, &v->page, &v->page_len, &v->dict, err);
        if (rc != CLEW_OK) {
            return rc;
        }
        v->page_no = p;
    }
    clew__arena_reset(&v->trace_arena);
    clew_span_data *spans;
    uint32_t n;
    rc = decode_ord(b, ord, v->page, v->page_len, &v->dict, &v->trace_arena, &spans, &n, err);
    if (rc != CLEW_OK) {
        return rc;
    }
    *out = false;
    for (uint32_t i = 0; i < n && !*out; i++) {
        *out = span_matches(&spans[i], q);
    }
    return CLEW_OK;
}

static clew_status search_unlocked(clew_block *b, const clew_search_query *q,
                                   clew_search_result **out, clew_error *err)
{
    if (q->n_tags > CLEW_SEARCH_MAX_TAGS) {
        return CLEW_EINVAL;
    }
    clew_status rc =
        load_many(b, SEARCH_SECTIONS, sizeof(SEARCH_SECTIONS) / sizeof(SEARCH_SECTIONS[0]), err);
    if (rc != CLEW_OK) {
        return rc;
    }
    size_t limit = q->limit ? q->limit : DEFAULT_LIMIT;
    ordlist cand_l = {NULL, 0};
    bool all = true, none = false;
    /* A single condition is answered exactly by its posting list; several must hold on one
     * span, which trace-level postings cannot tell, so candidates are then decoded. */
    size_t n_conds = (q->service.len > 0 && q->operation.len == 0 ? 1 : 0) +
                     (q->operation.len > 0 ? 1 : 0) + q->n_tags;
    bool verify = n_conds > 1;
    if (q->service.len > 0 || q->operation.len > 0) {
        ordlist l = {NULL, 0};
        uint64_t h = q->operation.len == 0
                         ? clew__blk_term_hash(BLK_TERM_SERVICE, q->service, NULL, 0)
                     : q->service.len > 0 ? clew__blk_term_hash(BLK_TERM_SERVICE_OP, q->service,
                                                                q->operation.ptr, q->operation.len)
                                          : clew__blk_term_hash(BLK_TERM_OP, q->operation, NULL, 0);
        rc = postings_add(b, h, &l, err);
        if (rc == CLEW_OK) {
            ordlist_sort_unique(&l);
            intersect(&cand_l, &l, &all);
        } else {
            clew__free(l.v);
        }
    }
    for (size_t i = 0; rc == CLEW_OK && i < q->n_tags; i++) {
        const clew_tag_filter *f = &q->tags[i];
        uint32_t k;
        bool in_dict = key_find(b, f->key, &k);
        if (is_derived_key(f->key) || (in_dict && b->key_flags[k] != 0)) {
            verify = true; /* not (fully) in the postings: decode and look */
            continue;
        }
        if (!in_dict) {
            none = true; /* no span of this block has the key */
            break;
        }
        ordlist l = {NULL, 0};
        rc = tag_postings(b, f, &l, err);
        if (rc == CLEW_OK) {
            intersect(&cand_l, &l, &all);
        } else {
            clew__free(l.v);
        }
    }
    cand *cs = NULL;
    size_t n_cs = 0;
    if (rc == CLEW_OK && !none) {
        size_t cap = all ? b->info.n_traces : cand_l.n;
        cs = clew__calloc(cap ? cap : 1, sizeof(*cs));
        if (cs == NULL) {
            rc = CLEW_ENOMEM;
        }
        for (size_t i = 0; rc == CLEW_OK && i < cap; i++) {
            uint32_t ord = all ? (uint32_t)i : cand_l.v[i];
            if (summary_ok(b, ord, q)) {
                cs[n_cs].start = blk_get_u64(b->s_start + 8 * (size_t)ord);
                cs[n_cs].ord = ord;
                n_cs++;
            }
        }
        if (rc == CLEW_OK && !verify && n_cs > limit) {
            /* every candidate matches: only the newest `limit` are needed */
            n_cs = top_newest(cs, n_cs, limit);
        }
        if (rc == CLEW_OK && n_cs > 1) {
            qsort(cs, n_cs, sizeof(*cs), cand_newest_first);
        }
    }
    clew__free(cand_l.v);

    clew_search_result *r = NULL;
    if (rc == CLEW_OK) {
        r = clew__calloc(1, sizeof(*r));
        if (r == NULL) {
            rc = CLEW_ENOMEM;
        } else {
            clew__arena_init(&r->arena, RESULT_CHUNK, 0);
            size_t cap = n_cs < limit ? n_cs : limit;
            r->traces = clew__arena_calloc(&r->arena, cap ? cap : 1, sizeof(*r->traces));
            if (r->traces == NULL) {
                rc = CLEW_ENOMEM;
            }
        }
    }
    verifier v;
    memset(&v, 0, sizeof(v));
    clew__arena_init(&v.page_arena, 256 * 1024, 0);
    clew__arena_init(&v.trace_arena, 64 * 1024, 0);
    for (size_t i = 0; rc == CLEW_OK && i < n_cs && r->n_traces < limit; i++) {
        uint32_t ord = cs[i].ord;
        if (verify) {
            bool ok;
            rc = verify_candidate(b, &v, ord, q, &ok, err);
            if (rc != CLEW_OK || !ok) {
                continue;
            }
        }
        clew_trace_summary *s = &r->traces[r->n_traces];
        memcpy(s->trace_id.bytes, b->ids + (size_t)ord * 16, 16);
        s->start_ns = cs[i].start;
        s->duration_ns = blk_get_u64(b->s_dur + 8 * (size_t)ord);
        s->span_count = blk_get_u32(b->s_spans + 4 * (size_t)ord);
        s->error_count = blk_get_u32(b->s_errors + 4 * (size_t)ord);
        s->state = (clew_trace_state)b->s_state[ord];
        uint32_t svc = blk_get_u32(b->s_root_svc + 4 * (size_t)ord);
        s->root_service = arena_copy(&r->arena, bstr(b, blk_get_u32(b->svc_ids + 4 * (size_t)svc)));
        s->root_operation =
            arena_copy(&r->arena, bstr(b, blk_get_u32(b->s_root_op + 4 * (size_t)ord)));
        if (s->root_service.ptr == NULL || s->root_operation.ptr == NULL) {
            rc = CLEW_ENOMEM;
        }
        r->n_traces++;
    }
    clew__arena_deinit(&v.page_arena);
    clew__arena_deinit(&v.trace_arena);
    clew__free(cs);
    if (rc != CLEW_OK) {
        clew__search_result_free(r);
        return rc;
    }
    *out = r;
    return CLEW_OK;
}

/* ---- name lists ---- */

typedef struct name_item {
    clew_str name;
    clew_span_kind kind;
} name_item;

static int name_item_cmp(const void *x, const void *y)
{
    const name_item *a = x, *c = y;
    int r = str_cmp(a->name, c->name);
    if (r != 0) {
        return r;
    }
    return (int)a->kind - (int)c->kind;
}

static clew_status make_list(name_item *items, size_t n, bool kinds, clew_name_list **out)
{
    clew_name_list *l = clew__calloc(1, sizeof(*l));
    if (l == NULL) {
        return CLEW_ENOMEM;
    }
    clew__arena_init(&l->arena, RESULT_CHUNK, 0);
    if (n > 1) {
        qsort(items, n, sizeof(*items), name_item_cmp);
    }
    l->names = clew__arena_calloc(&l->arena, n ? n : 1, sizeof(*l->names));
    l->kinds = kinds ? clew__arena_calloc(&l->arena, n ? n : 1, sizeof(*l->kinds)) : NULL;
    if (l->names == NULL || (kinds && l->kinds == NULL)) {
        clew__name_list_free(l);
        return CLEW_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && name_item_cmp(&items[i - 1], &items[i]) == 0) {
            continue;
        }
        l->names[l->n] = arena_copy(&l->arena, items[i].name);
        if (l->names[l->n].ptr == NULL) {
            clew__name_list_free(l);
            return CLEW_ENOMEM;
        }
        if (kinds) {
            l->kinds[l->n] = items[i].kind;
        }
        l->n++;
    }
    *out = l;
    return CLEW_OK;
}

static clew_status services_unlocked(clew_block *b, clew_name_list **out, clew_error *err)
{
    static const int secs[] = {BLK_SEC_SERVICES};
    clew_status rc = load_many(b, secs, 1, err);
    if (rc != CLEW_OK) {
        return rc;
    }
    name_item *items = clew__calloc(b->n_services ? b->n_services : 1, sizeof(*items));
    if (items == NULL) {
        return CLEW_ENOMEM;
    }
    for (uint32_t i = 0; i < b->n_services; i++) {
        items[i].name = bstr(b, blk_get_u32(b->svc_ids + 4 * (size_t)i));
    }
    rc = make_list(items, b->n_services, false, out);
    clew__free(items);
    return rc;
}

static clew_status operations_unlocked(clew_block *b, clew_str service, clew_span_kind kind,
                                       clew_name_list **out, clew_error *err)
{
    static const int secs[] = {BLK_SEC_OPERATIONS};
    clew_status rc = load_many(b, secs, 1, err);
    if (rc != CLEW_OK) {
        return rc;
    }
    name_item *items = clew__calloc(b->n_ops ? b->n_ops : 1, sizeof(*items));
    if (items == NULL) {
        return CLEW_ENOMEM;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < b->n_ops; i++) {
        uint32_t svc = blk_get_u32(b->op_svc + 4 * (size_t)i);
        clew_span_kind k = (clew_span_kind)b->op_kind[i];
        if (service.len > 0 &&
            !str_eq(bstr(b, blk_get_u32(b->svc_ids + 4 * (size_t)svc)), service)) {
            continue;
        }
        if (kind != CLEW_KIND_UNSPECIFIED && k != kind) {
            continue;
        }
        items[n].name = bstr(b, blk_get_u32(b->op_name + 4 * (size_t)i));
        items[n].kind = k;
        n++;
    }
    rc = make_list(items, n, true, out);
    clew__free(items);
    return rc;
}

static clew_status unindexed_keys_unlocked(clew_block *b, clew_name_list **out, clew_error *err)
{
    static const int secs[] = {BLK_SEC_KEYS};
    clew_status rc = load_many(b, secs, 1, err);
    if (rc != CLEW_OK) {
        return rc;
    }
    name_item *items = clew__calloc(b->n_keys ? b->n_keys : 1, sizeof(*items));
    if (items == NULL) {
        return CLEW_ENOMEM;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < b->n_keys; i++) {
        if (b->key_flags[i] != 0) {
            items[n++].name = bstr(b, blk_get_u32(b->key_ids + 4 * (size_t)i));
        }
    }
    rc = make_list(items, n, false, out);
    clew__free(items);
    return rc;
}

/* ---- full verification ---- */

/* Both verifies: with `decode_all` every trace is decoded, else only the first of each page in
 * trace-id order (see clew__block_verify_written). */
static clew_status verify_impl(clew_block *b, bool decode_all, clew_error *err)
{
    static const int all[] = {BLK_SEC_PAGE_TABLE, BLK_SEC_TRACE_INDEX, BLK_SEC_BLOOM,
                              BLK_SEC_SUMMARIES,  BLK_SEC_STRINGS,     BLK_SEC_SERVICES,
                              BLK_SEC_OPERATIONS, BLK_SEC_KEYS,        BLK_SEC_RESOURCES,
                              BLK_SEC_TERMS,      BLK_SEC_POSTINGS,    BLK_SEC_VALUES};
    clew_status rc = load_many(b, all, sizeof(all) / sizeof(all[0]), err);
    if (rc != CLEW_OK) {
        return rc;
    }
    uint64_t spans = 0;
    for (uint32_t i = 0; i < b->info.n_traces; i++) {
        spans += blk_get_u32(b->s_spans + 4 * (size_t)i);
        clew_trace_id id;
        memcpy(id.bytes, b->ids + (size_t)i * 16, 16);
        if (!clew__blk_bloom_test(b->bloom, b->bloom_bits, &id)) {
            return corrupt(b, err, BLK_SEC_BLOOM, b->sec[BLK_SEC_BLOOM].off,
                           "a stored trace id is missing from the bloom filter");
        }
    }
    if (spans != b->info.n_spans) {
        return corrupt(b, err, -1, b->footer_off, "span count differs from the summaries");
    }
    /* every posting list */
    for (uint32_t t = 0; t < b->n_terms; t++) {
        ordlist l = {NULL, 0};
        rc = postings_add(b, blk_get_u64(b->term_hash + 8 * (size_t)t), &l, err);
        clew__free(l.v);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    /* The traces of each page, by ordinal, in one pass over the trace index (not one pass
     * per page): first[p] is page p's first trace in a linked list threaded through next[]. */
    uint32_t np = b->info.n_pages, nt = b->info.n_traces;
    uint32_t *first = clew__malloc((np ? np : 1) * sizeof(*first));
    uint32_t *next = clew__malloc((nt ? nt : 1) * sizeof(*next));
    if (first == NULL || next == NULL) {
        clew__free(first);
        clew__free(next);
        return CLEW_ENOMEM;
    }
    for (uint32_t p = 0; p < np; p++) {
        first[p] = UINT32_MAX;
    }
    for (uint32_t i = nt; i-- > 0;) {
        uint32_t p = blk_get_u32(b->id_page + 4 * (size_t)i); /* < np: checked on load */
        next[i] = first[p];
        first[p] = i;
    }
    /* every page (read, CRC, decompressed, dictionary parsed), and every trace in it or
     * only the first */
    clew_arena pa, ta;
    clew__arena_init(&pa, 256 * 1024, 0);
    clew__arena_init(&ta, 64 * 1024, 0);
    for (uint32_t p = 0; rc == CLEW_OK && p < np; p++) {
        const uint8_t *page;
        size_t len;
        blk_dict dict;
        clew__arena_reset(&pa);
        rc = read_page(b, p, &pa, &page, &len, &dict, err);
        for (uint32_t i = first[p]; rc == CLEW_OK && i != UINT32_MAX; i = next[i]) {
            clew__arena_reset(&ta);
            clew_span_data *spans_out;
            uint32_t n;
            rc = decode_ord(b, i, page, len, &dict, &ta, &spans_out, &n, err);
            if (!decode_all) {
                break;
            }
        }
    }
    clew__arena_deinit(&pa);
    clew__arena_deinit(&ta);
    clew__free(first);
    clew__free(next);
    return rc;
}

static clew_status load_indexes_unlocked(clew_block *b, clew_error *err)
{
    static const int all[] = {BLK_SEC_PAGE_TABLE, BLK_SEC_TRACE_INDEX, BLK_SEC_BLOOM,
                              BLK_SEC_SUMMARIES,  BLK_SEC_STRINGS,     BLK_SEC_SERVICES,
                              BLK_SEC_OPERATIONS, BLK_SEC_KEYS,        BLK_SEC_RESOURCES,
                              BLK_SEC_TERMS,      BLK_SEC_POSTINGS,    BLK_SEC_VALUES};
    return load_many(b, all, sizeof(all) / sizeof(all[0]), err);
}

static clew_status verify_unlocked(clew_block *b, clew_error *err)
{
    return verify_impl(b, true, err);
}

static clew_status verify_written_unlocked(clew_block *b, clew_error *err)
{
    return verify_impl(b, false, err);
}

/* ---- memory of the loaded sections ---- */

/* Called with b->mu held. */
static size_t index_bytes_locked(const clew_block *b)
{
    size_t n = 0;
    for (int i = 0; i < BLK_N_SECTIONS; i++) {
        if (b->sec[i].loaded) {
            n += (size_t)b->sec[i].raw;
        }
    }
    if (b->res_off != NULL) {
        n += ((size_t)b->n_res + 1) * sizeof(size_t);
    }
    if (b->scope_off != NULL) {
        n += ((size_t)b->n_scopes + 1) * sizeof(size_t);
    }
    if (b->values != NULL) {
        n += (size_t)b->n_values * sizeof(*b->values);
    }
    return n;
}

size_t clew__block_index_bytes(clew_block *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = index_bytes_locked(b);
    pthread_mutex_unlock(&b->mu);
    return n;
}

size_t clew__block_drop_indexes(clew_block *b)
{
    if (pthread_rwlock_trywrlock(&b->use) != 0) {
        return 0; /* a call is reading them: another time */
    }
    pthread_mutex_lock(&b->mu);
    size_t n = index_bytes_locked(b);
    for (int i = 0; i < BLK_N_SECTIONS; i++) {
        section *sec = &b->sec[i];
        if (sec->loaded) {
            clew__free(sec->data);
            sec->data = NULL;
            sec->loaded = false;
        }
    }
    /* the tables and views derived from them are made again when their sections load */
    clew__free(b->res_off);
    clew__free(b->scope_off);
    clew__free(b->values);
    b->res_off = NULL;
    b->scope_off = NULL;
    b->values = NULL;
    pthread_mutex_unlock(&b->mu);
    pthread_rwlock_unlock(&b->use);
    return n;
}

/* ---- the calls that read sections: each holds `use` for reading, so that
 * clew__block_drop_indexes never frees what a call is reading ---- */

clew_status clew__block_may_contain(clew_block *b, const clew_trace_id *id, bool *out,
                                    clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = may_contain_unlocked(b, id, out, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}

clew_status clew__block_get_trace(clew_block *b, const clew_trace_id *id, clew_trace_result **out,
                                  clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = get_trace_unlocked(b, id, out, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}

clew_status clew__block_search(clew_block *b, const clew_search_query *q, clew_search_result **out,
                               clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = search_unlocked(b, q, out, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}

clew_status clew__block_services(clew_block *b, clew_name_list **out, clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = services_unlocked(b, out, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}

clew_status clew__block_operations(clew_block *b, clew_str service, clew_span_kind kind,
                                   clew_name_list **out, clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = operations_unlocked(b, service, kind, out, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}

clew_status clew__block_unindexed_keys(clew_block *b, clew_name_list **out, clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = unindexed_keys_unlocked(b, out, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}

clew_status clew__block_load_indexes(clew_block *b, clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = load_indexes_unlocked(b, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}

clew_status clew__block_verify(clew_block *b, clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = verify_unlocked(b, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}

clew_status clew__block_verify_written(clew_block *b, clew_error *err)
{
    pthread_rwlock_rdlock(&b->use);
    clew_status rc = verify_written_unlocked(b, err);
    pthread_rwlock_unlock(&b->use);
    return rc;
}
