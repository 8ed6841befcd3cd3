/*
 * src/store/embedded/store_cmd.c - `clew store verify|stats --data-dir DIR`: offline checks
 * of an embedded store's files (docs/internals/embedded.md).
 *
 * verify reads every block completely (every section and page CRC, every trace decoded) and
 * scans every WAL segment; it reports each problem and exits 1 when it found damage. stats
 * sums what the blocks and the WAL hold. Both only read: they may run next to a server, but
 * then the newest WAL segment may end in a record being written (reported as a torn tail,
 * which is not damage).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/error.h"
#include "store/embedded/block.h"
#include "store/embedded/fileio.h"
#include "store/embedded/wal.h"

static const char store_help[] =
    "Usage: clew store verify --data-dir DIR\n"
    "       clew store stats --data-dir DIR\n"
    "\n"
    "Offline checks of the files of `clew serve --storage embedded`.\n"
    "\n"
    "  verify   read every block in DIR/blocks completely (every checksum, every trace) and\n"
    "           scan every WAL segment in DIR/wal; print each problem. Exit 0 when all is\n"
    "           sound, 1 when something is damaged (move a damaged block to\n"
    "           DIR/quarantine/ or let the server do it on its next start), 3 on I/O errors.\n"
    "  stats    spans, traces, bytes, bytes per span, time range and blocks of the store.\n"
    "\n"
    "Options:\n"
    "  --data-dir DIR   the store's directory (as given to clew serve)\n"
    "  -h, --help       this text\n";

/* Names in DIR/sub ending in `suffix`, sorted; *out freed with free_names. */
static int list_names(const char *dir, const char *sub, const char *suffix, char ***out,
                      size_t *n_out)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(path);
    if (d == NULL) {
        return 0; /* no such directory: nothing of that kind */
    }
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= sl || strcmp(e->d_name + len - sl, suffix) != 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = clew__realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                break;
            }
            v = nv;
        }
        v[n] = clew__strdup(e->d_name);
        if (v[n] != NULL) {
            n++;
        }
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    }
    *out = v;
    *n_out = n;
    return 0;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        clew__free(v[i]);
    }
    clew__free(v);
}

/* Reads a whole file through the POSIX fileio. */
static clew_status read_all(const char *path, uint8_t **out, size_t *len)
{
    clew_fileio *io = clew__fileio_posix();
    int fd = -1;
    clew_status rc = io->open_file(io, path, CLEW_FILEIO_READ, &fd);
    if (rc != CLEW_OK) {
        return rc;
    }
    uint64_t size = 0;
    rc = io->file_size(io, fd, &size);
    uint8_t *buf = NULL;
    size_t got = 0;
    if (rc == CLEW_OK) {
        buf = clew__malloc(size > 0 ? (size_t)size : 1);
        rc = buf != NULL ? CLEW_OK : CLEW_ENOMEM;
    }
    if (rc == CLEW_OK) {
        rc = io->pread_some(io, fd, buf, (size_t)size, 0, &got);
    }
    clew_status crc = io->close_file(io, fd);
    (void)crc;
    if (rc != CLEW_OK) {
        clew__free(buf);
        return rc;
    }
    *out = buf;
    *len = got;
    return CLEW_OK;
}

typedef struct wal_count {
    uint64_t spans;
    uint64_t spans_records;
    uint64_t bad_payloads;
} wal_count;

static clew_status count_record(void *ud, clew_wal_pos pos, uint8_t type, const uint8_t *payload,
                                size_t len)
{
    (void)pos;
    wal_count *c = ud;
    if (type != CLEW_WAL_SPANS) {
        return CLEW_OK;
    }
    c->spans_records++;
    clew_str tenant;
    uint8_t enc = 0;
    const uint8_t *data = NULL;
    size_t dlen = 0;
    if (clew__wal_spans_decode(payload, len, &tenant, &enc, &data, &dlen) != CLEW_OK ||
        (enc != CLEW_WAL_SPANS_OTLP_PB && enc != CLEW_WAL_SPANS_OTLP_PB_PENDING)) {
        c->bad_payloads++;
        return CLEW_OK;
    }
    clew_arena a;
    clew__arena_init(&a, 64 * 1024, 0);
    clew_batch b;
    clew_error err;
    memset(&err, 0, sizeof(err));
    if (clew__otlp_pb_decode(data, dlen, &a, &b, &err) == CLEW_OK) {
        c->spans += b.n_spans;
    } else {
        c->bad_payloads++;
    }
    clew__arena_deinit(&a);
    return CLEW_OK;
}

static void fmt_time(uint64_t ns, char *out, size_t cap)
{
    time_t t = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (ns == 0 || gmtime_r(&t, &tm) == NULL ||
        strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, cap, "-");
    }
}

static int run(const char *dir, bool verify)
{
    char **blocks = NULL, **segs = NULL;
    size_t n_blocks = 0, n_segs = 0;
    list_names(dir, "blocks", ".block", &blocks, &n_blocks);
    list_names(dir, "wal", ".wal", &segs, &n_segs);
    size_t damaged = 0, io_errors = 0;
    uint64_t b_spans = 0, b_traces = 0, b_bytes = 0, tmin = UINT64_MAX, tmax = 0;
    for (size_t i = 0; i < n_blocks; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/blocks/%s", dir, blocks[i]);
        clew_block *b = NULL;
        clew_error err;
        memset(&err, 0, sizeof(err));
        clew_status rc = clew__block_open(clew__fileio_posix(), path, &b, &err);
        if (rc == CLEW_OK && verify) {
            rc = clew__block_verify(b, &err);
        }
        if (rc != CLEW_OK) {
            printf("block %s: %s: %s\n", blocks[i], rc == CLEW_EIO ? "I/O error" : "DAMAGED",
                   err.msg[0] ? err.msg : clew_strerror(rc));
            if (rc == CLEW_EIO || rc == CLEW_ENOMEM) {
                io_errors++;
            } else {
                damaged++;
            }
            clew__block_close(b);
            continue;
        }
        clew_block_info info;
        clew__block_info(b, &info);
        clew__block_close(b);
        b_spans += info.n_spans;
        b_traces += info.n_traces;
        b_bytes += info.file_size;
        tmin = info.min_start_ns < tmin ? info.min_start_ns : tmin;
        tmax = info.max_end_ns > tmax ? info.max_end_ns : tmax;
        if (verify) {
            printf("block %s: ok (%u traces, %llu spans, %llu bytes)\n", blocks[i], info.n_traces,
                   (unsigned long long)info.n_spans, (unsigned long long)info.file_size);
        }
    }
    wal_count wc;
    memset(&wc, 0, sizeof(wc));
    uint64_t w_bytes = 0, w_records = 0;
    for (size_t i = 0; i < n_segs; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/wal/%s", dir, segs[i]);
        uint8_t *data = NULL;
        size_t len = 0;
        clew_status rc = read_all(path, &data, &len);
        if (rc != CLEW_OK) {
            printf("WAL segment %s: I/O error: %s\n", segs[i], clew_strerror(rc));
            io_errors++;
            continue;
        }
        clew_wal_scan_result res;
        memset(&res, 0, sizeof(res));
        uint64_t bad_before = wc.bad_payloads;
        rc = clew__wal_scan_buffer(data, len, UINT64_MAX, CLEW_WAL_MAX_RECORD_SIZE, count_record,
                                   &wc, &res);
        clew__free(data);
        w_bytes += len;
        w_records += res.records;
        bool last = i + 1 == n_segs;
        if (rc != CLEW_OK || res.header != CLEW_OK) {
            printf("WAL segment %s: DAMAGED: bad header (%s)\n", segs[i],
                   clew_strerror(res.header));
            damaged++;
        } else if (res.stop_reason != NULL && !last) {
            printf("WAL segment %s: DAMAGED at byte %llu: %s (%llu bytes, %llu records "
                   "after it)\n",
                   segs[i], (unsigned long long)res.valid_end, res.stop_reason,
                   (unsigned long long)res.dropped_bytes, (unsigned long long)res.dropped_records);
            damaged++;
        } else if (res.stop_reason != NULL && verify) {
            printf("WAL segment %s: torn tail at byte %llu (%s): the newest segment after a "
                   "crash or while written; cut on the next start, not damage\n",
                   segs[i], (unsigned long long)res.valid_end, res.stop_reason);
        }
        if (wc.bad_payloads > bad_before) {
            printf("WAL segment %s: DAMAGED: %llu records with a good CRC do not decode\n", segs[i],
                   (unsigned long long)(wc.bad_payloads - bad_before));
            damaged++;
        } else if (verify && rc == CLEW_OK && res.header == CLEW_OK) {
            printf("WAL segment %s: ok (%llu records)\n", segs[i], (unsigned long long)res.records);
        }
    }
    if (verify) {
        printf("%zu blocks, %zu WAL segments checked: %s\n", n_blocks, n_segs,
               damaged     ? "DAMAGE FOUND"
               : io_errors ? "I/O errors"
                           : "no damage");
    } else {
        uint64_t spans = b_spans + wc.spans, bytes = b_bytes + w_bytes;
        char from[40], to[40];
        fmt_time(tmin == UINT64_MAX ? 0 : tmin, from, sizeof(from));
        fmt_time(tmax, to, sizeof(to));
        printf("spans:          %llu (%llu in blocks, %llu in the WAL)\n",
               (unsigned long long)spans, (unsigned long long)b_spans,
               (unsigned long long)wc.spans);
        printf("traces:         %llu in blocks (the WAL's are not counted)\n",
               (unsigned long long)b_traces);
        printf("bytes:          %llu (%llu in blocks, %llu in the WAL)\n",
               (unsigned long long)bytes, (unsigned long long)b_bytes, (unsigned long long)w_bytes);
        printf("bytes/span:     %.1f in blocks\n",
               b_spans ? (double)b_bytes / (double)b_spans : 0.0);
        printf("time range:     %s .. %s (blocks)\n", from, to);
        printf("blocks:         %zu\n", n_blocks);
        printf("WAL segments:   %zu (%llu records)\n", n_segs, (unsigned long long)w_records);
    }
    free_names(blocks, n_blocks);
    free_names(segs, n_segs);
    if (damaged > 0) {
        return 1;
    }
    return io_errors > 0 ? CLEW_EXIT_IO : CLEW_EXIT_OK;
}

int clew__cmd_store(int argc, char **argv)
{
    const char *sub = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(store_help, stdout);
            return CLEW_EXIT_OK;
        } else if (strcmp(a, "--data-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strncmp(a, "--data-dir=", 11) == 0) {
            dir = a + 11;
        } else if (a[0] != '-' && sub == NULL) {
            sub = a;
        } else {
            fprintf(stderr, "clew store: unknown argument '%s'\n%s", a, store_help);
            return CLEW_EXIT_USAGE;
        }
    }
    if (sub == NULL || dir == NULL || dir[0] == '\0' ||
        (strcmp(sub, "verify") != 0 && strcmp(sub, "stats") != 0)) {
        fprintf(stderr, "clew store: need verify or stats, and --data-dir DIR\n%s", store_help);
        return CLEW_EXIT_USAGE;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "clew store: cannot open %s\n", dir);
        return CLEW_EXIT_IO;
    }
    closedir(d);
    return run(dir, strcmp(sub, "verify") == 0);
}
