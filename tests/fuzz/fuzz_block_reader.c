/*
 * tests/fuzz/fuzz_block_reader.c - opens arbitrary bytes as a block file and runs every
 * reader call on it: get by id, search, name lists, unindexed keys, full verify. Nothing
 * may crash, hang or leak, whatever the bytes.
 *
 * The bytes are served by a memory-backed clew_fileio (no temp files). Random bytes rarely
 * pass the checksums, so when the first input byte is odd the target first "repairs" the
 * file the way a forger would: it recomputes every page CRC (rewriting the page table
 * uncompressed at the end), every section CRC and the footer CRC. The decoders behind the
 * checksums are then reached by mutated content.
 */
#include <isa-l/crc.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zstd.h>

#include "common/alloc.h"
#include "store/embedded/block.h"
#include "store/embedded/block_format.h"

typedef struct mem_io {
    clew_fileio io;
    const uint8_t *data;
    size_t len;
} mem_io;

static clew_status m_open(clew_fileio *io, const char *path, int flags, int *out_fd)
{
    (void)io;
    (void)path;
    if (flags != CLEW_FILEIO_READ) {
        return CLEW_EUNSUPPORTED;
    }
    *out_fd = 3;
    return CLEW_OK;
}

static clew_status m_close(clew_fileio *io, int fd)
{
    (void)io;
    (void)fd;
    return CLEW_OK;
}

static clew_status m_pwrite(clew_fileio *io, int fd, const void *buf, size_t n, uint64_t off)
{
    (void)io;
    (void)fd;
    (void)buf;
    (void)n;
    (void)off;
    return CLEW_EUNSUPPORTED;
}

static clew_status m_pread(clew_fileio *io, int fd, void *buf, size_t n, uint64_t off,
                           size_t *out_n)
{
    mem_io *m = (mem_io *)io;
    (void)fd;
    if (off >= m->len) {
        *out_n = 0;
        return CLEW_OK;
    }
    size_t k = m->len - (size_t)off < n ? m->len - (size_t)off : n;
    memcpy(buf, m->data + off, k);
    *out_n = k;
    return CLEW_OK;
}

static clew_status m_fsync(clew_fileio *io, int fd)
{
    (void)io;
    (void)fd;
    return CLEW_OK;
}

static clew_status m_truncate(clew_fileio *io, int fd, uint64_t size)
{
    (void)io;
    (void)fd;
    (void)size;
    return CLEW_EUNSUPPORTED;
}

static clew_status m_size(clew_fileio *io, int fd, uint64_t *out)
{
    (void)fd;
    *out = ((mem_io *)io)->len;
    return CLEW_OK;
}

static clew_status m_rename(clew_fileio *io, const char *a, const char *b)
{
    (void)io;
    (void)a;
    (void)b;
    return CLEW_EUNSUPPORTED;
}

static clew_status m_unlink(clew_fileio *io, const char *a)
{
    (void)io;
    (void)a;
    return CLEW_EUNSUPPORTED;
}

static clew_status m_fsync_dir(clew_fileio *io, const char *a)
{
    (void)io;
    (void)a;
    return CLEW_OK;
}

static clew_status m_crash(clew_fileio *io, const char *a)
{
    (void)io;
    (void)a;
    return CLEW_OK;
}

/* Recomputes page, section and footer CRCs; returns a new buffer (caller frees) or NULL
 * when the input does not even have a footer to repair. */
static uint8_t *repair(const uint8_t *in, size_t len, size_t *out_len)
{
    if (len < BLK_HEADER_SIZE + BLK_FOOTER_SIZE) {
        return NULL;
    }
    const uint8_t *f = in + len - BLK_FOOTER_SIZE;
    size_t foff = len - BLK_FOOTER_SIZE;
    const uint8_t *pt = f + 40 + BLK_SEC_PAGE_TABLE * BLK_SECTION_ENTRY;
    uint64_t pt_off = blk_get_u64(pt), pt_stored = blk_get_u64(pt + 8);
    uint64_t pt_raw = blk_get_u64(pt + 16);
    if (pt_off > foff || pt_stored > foff - pt_off || pt_raw > (1u << 20)) {
        return NULL;
    }
    uint8_t *table = clew__malloc(pt_raw ? (size_t)pt_raw : 1);
    if (table == NULL) {
        return NULL;
    }
    if (blk_get_u32(pt + 28) == BLK_CODEC_ZSTD) {
        size_t got = ZSTD_decompress(table, (size_t)pt_raw, in + pt_off, (size_t)pt_stored);
        if (ZSTD_isError(got) || got != pt_raw) {
            clew__free(table);
            return NULL;
        }
    } else {
        if (pt_raw != pt_stored) {
            clew__free(table);
            return NULL;
        }
        memcpy(table, in + pt_off, (size_t)pt_raw);
    }
    for (size_t e = 0; e + BLK_PAGE_ENTRY <= pt_raw; e += BLK_PAGE_ENTRY) {
        uint64_t off = blk_get_u64(table + e);
        uint32_t stored = blk_get_u32(table + e + 8);
        if (off <= foff && stored <= foff - off) {
            blk_put_u32(table + e + 16, crc32_iscsi((unsigned char *)in + off, (int)stored, 0));
        }
    }
    /* new image: old body, the raw page table, the footer */
    size_t n = foff + (size_t)pt_raw + BLK_FOOTER_SIZE;
    uint8_t *out = clew__malloc(n);
    if (out == NULL) {
        clew__free(table);
        return NULL;
    }
    memcpy(out, in, foff);
    memcpy(out + foff, table, (size_t)pt_raw);
    clew__free(table);
    uint8_t *nf = out + foff + pt_raw;
    memcpy(nf, f, BLK_FOOTER_SIZE);
    uint8_t *npt = nf + 40 + BLK_SEC_PAGE_TABLE * BLK_SECTION_ENTRY;
    blk_put_u64(npt, foff);
    blk_put_u64(npt + 8, pt_raw);
    blk_put_u64(npt + 16, pt_raw);
    blk_put_u32(npt + 28, BLK_CODEC_RAW);
    for (int s = 0; s < BLK_N_SECTIONS; s++) {
        uint8_t *e = nf + 40 + (size_t)s * BLK_SECTION_ENTRY;
        uint64_t off = blk_get_u64(e), stored = blk_get_u64(e + 8);
        if (off <= n && stored <= n - off) {
            blk_put_u32(e + 24, crc32_iscsi(out + off, (int)stored, 0));
        }
    }
    size_t crc_at = 40 + BLK_N_SECTIONS * BLK_SECTION_ENTRY;
    blk_put_u32(nf + crc_at, crc32_iscsi(nf, (int)crc_at, 0));
    *out_len = n;
    return out;
}

static clew_str lit(const char *s)
{
    clew_str r = {s, strlen(s)};
    return r;
}

static void run(const uint8_t *data, size_t len)
{
    mem_io m = {.io = {m_open, m_close, m_pwrite, m_pread, m_fsync, m_truncate, m_size, m_rename,
                       m_unlink, m_fsync_dir, m_crash},
                .data = data,
                .len = len};
    clew_block *b = NULL;
    clew_error err;
    if (clew__block_open(&m.io, "fuzz.block", &b, &err) != CLEW_OK) {
        return;
    }
    clew_block_info info;
    clew__block_info(b, &info);
    /* ids: an absent one, and ones taken from the input (often real ids of a seed) */
    clew_trace_id ids[4];
    memset(&ids[0], 0, sizeof(ids[0]));
    for (int i = 1; i < 4; i++) {
        size_t at = (len / 4) * (size_t)i;
        memset(&ids[i], 0x5a, sizeof(ids[i]));
        if (at + 16 <= len) {
            memcpy(ids[i].bytes, data + at, 16);
        }
    }
    for (int i = 0; i < 4; i++) {
        clew_trace_result *r = NULL;
        if (clew__block_get_trace(b, &ids[i], &r, &err) == CLEW_OK) {
            clew__trace_result_free(r);
        }
    }
    clew_search_query qs[4];
    memset(qs, 0, sizeof(qs));
    qs[0].limit = 5;
    qs[1].service = lit("frontend");
    qs[1].operation = lit("GET /cart");
    qs[2].tags[0].key = lit("http.status_code");
    qs[2].tags[0].value = lit("500");
    qs[2].n_tags = 1;
    qs[3].tags[0].key = lit("error");
    qs[3].tags[0].value = lit("true");
    qs[3].tags[1].key = lit("user.id");
    qs[3].tags[1].value = lit("user-1");
    qs[3].n_tags = 2;
    qs[3].min_duration_ns = 1;
    for (int i = 0; i < 4; i++) {
        clew_search_result *r = NULL;
        if (clew__block_search(b, &qs[i], &r, &err) != CLEW_OK) {
            continue;
        }
        /* the ids the block itself lists: reach the page decoder for real traces */
        for (size_t k = 0; i == 0 && k < r->n_traces; k++) {
            clew_trace_result *t = NULL;
            if (clew__block_get_trace(b, &r->traces[k].trace_id, &t, &err) == CLEW_OK) {
                clew__trace_result_free(t);
            }
        }
        clew__search_result_free(r);
    }
    clew_name_list *l = NULL;
    if (clew__block_services(b, &l, &err) == CLEW_OK) {
        clew__name_list_free(l);
    }
    if (clew__block_operations(b, lit(""), CLEW_KIND_UNSPECIFIED, &l, &err) == CLEW_OK) {
        clew__name_list_free(l);
    }
    if (clew__block_unindexed_keys(b, &l, &err) == CLEW_OK) {
        clew__name_list_free(l);
    }
    if (clew__block_verify(b, &err) != CLEW_OK) {
        /* expected for most inputs; the point is that it returns */
        err.msg[0] = '\0';
    }
    clew__block_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    bool fix = (data[0] & 1) != 0;
    data++;
    size--;
    if (fix) {
        size_t n = 0;
        uint8_t *fixed = repair(data, size, &n);
        if (fixed != NULL) {
            run(fixed, n);
            clew__free(fixed);
            return 0;
        }
    }
    run(data, size);
    return 0;
}
