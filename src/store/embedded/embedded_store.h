/*
 * src/store/embedded/embedded_store.h - the durable embedded store (design.md §4): a
 * write-ahead log (wal.h), an in-memory head rebuilt from the WAL on open, and immutable
 * block files (block.h) the head is cut into. docs/internals/embedded.md states what
 * exists and the durability contract.
 *
 * Ownership: the store borrows cfg->io (which must outlive it) and copies every string of
 * the configuration. The returned store is freed with clew__store_destroy, which drains
 * the WAL (every pending append callback fires), fsyncs unless the mode is never, and
 * closes it.
 *
 * Thread-safety: like every clew_store (store.h), all operations may be called from any
 * thread. Append callbacks run on the WAL writer thread; cuts, retention and compaction
 * on the store's background thread (unless manual_cut).
 */
#ifndef CLEW_STORE_EMBEDDED_EMBEDDED_STORE_H
#define CLEW_STORE_EMBEDDED_EMBEDDED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "store/embedded/fileio.h"
#include "store/embedded/wal.h"
#include "store/store.h"

/* What clew__embedded_store_create found when it replayed the WAL. */
typedef struct clew_embedded_replay_stats {
    uint64_t records;     /* records read from the WAL */
    uint64_t spans;       /* spans decoded from SPANS records (duplicates included) */
    uint64_t decisions;   /* DECISION records applied */
    uint64_t bad_records; /* records with a good CRC whose payload did not decode: skipped */
    uint64_t traces;      /* traces in the head after the replay */
    uint64_t dedup_spans; /* spans skipped because a block already holds them */
    uint64_t blocks;      /* blocks loaded (quarantined ones not counted) */
    uint64_t duration_ns; /* time the replay took */
} clew_embedded_replay_stats;

typedef struct clew_embedded_store_config {
    const char *data_dir;           /* required; the WAL lives in DATA_DIR/wal/ */
    clew_wal_fsync_mode fsync_mode; /* CLEW_WAL_FSYNC_INTERVAL by default */
    uint32_t fsync_interval_ms;     /* 0 = 100 */
    uint64_t wal_segment_size;      /* 0 = the WAL's default (64 MiB) */
    size_t wal_queue_bytes;         /* queued, not yet written; 0 = the WAL's default */
    size_t max_record_bytes;        /* largest batch (encoded); 0 = the WAL's default */
    /* The head's memory budget (span data plus batches waiting on the WAL): appends past
     * it are refused with CLEW_EFULL. 0 = no limit. */
    size_t head_max_bytes;
    /* The head is cut into a block (DATA_DIR/blocks/) every block_duration_ns (0 = 5 min),
     * when its span bytes pass block_size (0 = 256 MiB) and on close. */
    uint64_t block_duration_ns;
    size_t block_size;
    /* Blocks whose newest span ended more than retention_ns ago are deleted (0 = 72 h);
     * past max_disk_bytes of blocks the oldest are deleted (0 = no limit). */
    uint64_t retention_ns;
    uint64_t max_disk_bytes;
    /* Bound on the memory the open blocks' indexes (their sections) take: past it, the
     * indexes of the blocks least recently queried are dropped at the next maintenance pass
     * (every second) and load again when a query needs them. 0 = no bound. */
    size_t index_max_bytes;
    /* Compaction merges this many consecutive small blocks (each under block_size / 4,
     * spanning at most 12 block durations) into one; 0 = 4. */
    size_t compact_min_blocks;
    /* A cut writes the head in chunks, one block each, of at most block_size bytes of the
     * head's span data and at most block_max_traces traces (0 = 262144), so its memory is
     * bounded by these two whatever the head holds. Compaction keeps to the same bounds. */
    size_t block_max_traces;
    /* Tests: no background thread and no cut on close; cuts and retention only through
     * clew__embedded_store_cut. */
    bool manual_cut;
    clew_fileio *io;     /* NULL = clew__fileio_posix() */
    clew_wal_log_fn log; /* may be NULL */
    void *log_ud;
} clew_embedded_store_config;

/* Opens the store in cfg->data_dir (created if missing; the caller holds the data dir
 * lock), replaying the WAL into the head; *replay (may be NULL) gets what the replay did.
 * Returns CLEW_EINVAL for a bad configuration, or clew__wal_open's errors. */
CLEW_NODISCARD clew_status clew__embedded_store_create(const clew_embedded_store_config *cfg,
                                                       clew_store **out,
                                                       clew_embedded_replay_stats *replay);

/* For shutdown, before whatever the append callbacks reference goes away: from now on
 * appends return CLEW_ECLOSED (their callback never runs), and this waits until every
 * callback of an earlier append has returned. `s` must be an embedded store. */
void clew__embedded_store_quiesce(clew_store *s);

/* Cuts the head into a block now (rotate the WAL, write the decided traces whose records
 * are all before the new segment, drop them from the head, release the WAL segments no
 * pending trace needs), then applies quarantine and retention. What the background
 * thread does every block duration. *out_traces (may be NULL) gets the traces cut.
 * `s` must be an embedded store. */
CLEW_NODISCARD clew_status clew__embedded_store_cut(clew_store *s, size_t *out_traces);

/* Blocks currently served (for tests and stats). */
size_t clew__embedded_store_n_blocks(clew_store *s);

#endif /* CLEW_STORE_EMBEDDED_EMBEDDED_STORE_H */
