/*
 * src/store/embedded/embedded_store.h - the durable embedded store (design.md §4), first
 * version: a write-ahead log (wal.h) plus an in-memory head that is rebuilt from the WAL
 * on open. docs/internals/embedded.md states what exists and the durability contract.
 *
 * Ownership: the store borrows cfg->io (which must outlive it) and copies every string of
 * the configuration. The returned store is freed with clew__store_destroy, which drains
 * the WAL (every pending append callback fires), fsyncs unless the mode is never, and
 * closes it.
 *
 * Thread-safety: like every clew_store (store.h), all operations may be called from any
 * thread. Append callbacks run on the WAL writer thread.
 */
#ifndef CLEW_STORE_EMBEDDED_EMBEDDED_STORE_H
#define CLEW_STORE_EMBEDDED_EMBEDDED_STORE_H

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

#endif /* CLEW_STORE_EMBEDDED_EMBEDDED_STORE_H */
