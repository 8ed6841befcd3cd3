/*
 * src/store/embedded/block.h - immutable block files of the embedded store: writer and reader.
 *
 * A block holds a set of complete traces cut from the head (design.md §4): spans grouped by
 * trace and zstd-compressed in pages, a sorted trace-id index, a bloom filter on trace ids,
 * columnar trace summaries, dictionaries, and posting lists from search terms to traces.
 * docs/internals/block.md gives the byte layout.
 *
 * Every byte goes through a clew_fileio, so tests can cut the power between any two calls.
 *
 * Ownership: the writer borrows its input for the duration of the call. A clew_block owns its
 * file descriptor and the sections it has loaded; results (clew_trace_result,
 * clew_search_result, clew_name_list) are owned by the caller and freed with their
 * clew__*_free function from store.h.
 *
 * Thread-safety: clew__block_write is reentrant (it touches only its own file). A clew_block
 * may be used by several threads at once: sections are loaded under an internal mutex and
 * are read-only until clew__block_drop_indexes frees them, which it does only while no call
 * is reading them (a read-write lock); each call decodes into its own memory.
 */
#ifndef CLEW_STORE_EMBEDDED_BLOCK_H
#define CLEW_STORE_EMBEDDED_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "clew/types.h"
#include "common/error.h"
#include "model/model.h"
#include "store/embedded/fileio.h"
#include "store/store.h"

/* The format version this code writes and reads. A reader refuses any other version with
 * CLEW_EUNSUPPORTED. */
#define CLEW_BLOCK_VERSION 1u

/* One complete trace handed to the writer: its spans (any order; the writer stores them by
 * start time) and its metadata. Every span's trace_id must equal trace_id, and every span
 * must have a resource and a scope. */
typedef struct clew_block_trace {
    clew_trace_id trace_id;
    const clew_span_data *const *spans;
    size_t n_spans;
    clew_trace_meta meta;
} clew_block_trace;

typedef struct clew_block_write_options {
    /* estimated uncompressed attribute bytes per page before it is cut; 0 = 256 KiB. Larger
     * pages compress better; get-trace decompresses one page. */
    size_t page_size;
    int zstd_level;           /* 0 = 2 */
    size_t max_indexed_value; /* longer attribute values are not indexed; 0 = 256 bytes */
    /* a key with more distinct values in the block than this, or than the block has traces
     * (at least 1024), is not indexed (searches on it scan); 0 = 50000 */
    size_t max_values_per_key;
} clew_block_write_options;

/* Writes the traces as DIR/blocks/<id>.block: to <id>.tmp first, fsync, rename, fsync the
 * directory (crash points "block.written", "block.renamed", "block.dir_synced"). DIR/blocks
 * must exist. `opt` may be NULL. On failure the .tmp file may remain; the caller (store
 * recovery) removes stray .tmp files.
 * Returns CLEW_EINVAL for an empty set, duplicate trace ids, spans of another trace or spans
 * without resource/scope, CLEW_EIO from the file system, CLEW_ENOMEM. */
CLEW_NODISCARD clew_status clew__block_write(clew_fileio *io, const char *dir, const char *id,
                                             const clew_block_trace *traces, size_t n_traces,
                                             const clew_block_write_options *opt, clew_error *err);

typedef struct clew_block clew_block;

/* Facts from the footer, available right after open. */
typedef struct clew_block_info {
    uint32_t version;
    uint32_t n_traces;
    uint32_t n_pages;
    uint64_t n_spans;
    uint64_t min_start_ns;
    uint64_t max_end_ns;
    uint64_t file_size;
} clew_block_info;

/* Opens a block file: checks both magics, the version and the footer CRC. Section CRCs are
 * checked when a section is first used (or by clew__block_verify). `io` must outlive the
 * block. Returns CLEW_ECORRUPT (err says what and where), CLEW_EUNSUPPORTED for another
 * format version, CLEW_EIO, CLEW_ENOMEM. */
CLEW_NODISCARD clew_status clew__block_open(clew_fileio *io, const char *path, clew_block **out,
                                            clew_error *err);
/* Closes the file and frees everything; NULL is a no-op. */
void clew__block_close(clew_block *b);

void clew__block_info(const clew_block *b, clew_block_info *out);

/* True when the bloom filter says the trace may be in the block (false: surely not). */
CLEW_NODISCARD clew_status clew__block_may_contain(clew_block *b, const clew_trace_id *id,
                                                   bool *out, clew_error *err);

/* The whole trace (spans by start time, with its metadata), or CLEW_ENOTFOUND. */
CLEW_NODISCARD clew_status clew__block_get_trace(clew_block *b, const clew_trace_id *id,
                                                 clew_trace_result **out, clew_error *err);

/* Traces matching q (same semantics as the memory store), newest first, at most q->limit
 * (0 = 20). */
CLEW_NODISCARD clew_status clew__block_search(clew_block *b, const clew_search_query *q,
                                              clew_search_result **out, clew_error *err);

/* Sorted service names of the block. */
CLEW_NODISCARD clew_status clew__block_services(clew_block *b, clew_name_list **out,
                                                clew_error *err);
/* Operations (name + kind) of `service` (empty = all), of `kind` (UNSPECIFIED = any). */
CLEW_NODISCARD clew_status clew__block_operations(clew_block *b, clew_str service,
                                                  clew_span_kind kind, clew_name_list **out,
                                                  clew_error *err);
/* Attribute keys whose values are not all in the posting lists (too long, too many distinct
 * values, bytes): a search on them scans the traces instead, and the API can say so. */
CLEW_NODISCARD clew_status clew__block_unindexed_keys(clew_block *b, clew_name_list **out,
                                                      clew_error *err);

/* Reads, checks and keeps in memory every section (the indexes: everything but the pages),
 * which queries otherwise load on first use. The embedded store calls it when it opens a
 * block, so that the first query after a restart does not pay for reading them from disk.
 * CLEW_ECORRUPT like the lazy load. */
CLEW_NODISCARD clew_status clew__block_load_indexes(clew_block *b, clew_error *err);

/* Bytes the block holds in memory for its loaded sections (and the tables made from them). */
size_t clew__block_index_bytes(clew_block *b);

/* Frees every loaded section (they load again, lazily, when a call needs them) and returns
 * the bytes freed; 0 without waiting when a call on the block is reading them right now.
 * For the embedded store's bound on the memory of block indexes. */
size_t clew__block_drop_indexes(clew_block *b);

/* Reads and checks everything: every section CRC and structure, every page CRC, and decodes
 * every trace. For `clew store verify`. */
CLEW_NODISCARD clew_status clew__block_verify(clew_block *b, clew_error *err);

/* The read-back of a block this process has just written (a cut, a compaction): what
 * clew__block_verify checks, except that only one trace of each page (its first in trace-id order)
 * is decoded. So every byte is read back from the file and checked (footer, every section's CRC and
 * structure, every page's CRC, decompression and dictionary, the bloom filter against every
 * id, every posting list), which catches what the disk or the file system did to the file;
 * a trace the writer encoded in a way the reader refuses is caught when it is the first of
 * its page (a systematic mismatch), not always (tests/unit/test_block.c round-trips every
 * trace). Decoding every trace cost about a third of the CPU of writing the block. */
CLEW_NODISCARD clew_status clew__block_verify_written(clew_block *b, clew_error *err);

#endif /* CLEW_STORE_EMBEDDED_BLOCK_H */
