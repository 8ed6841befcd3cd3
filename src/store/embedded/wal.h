/*
 * src/store/embedded/wal.h - the write-ahead log of the embedded store (design.md §4).
 *
 * Records (a type byte and a payload) are appended to numbered segment files in DIR/wal/,
 * framed by length and CRC32C. Appends never touch the disk in the caller's thread: they are
 * copied into a bounded queue and a single writer thread writes them, fsyncs according to
 * the mode (group commit for CLEW_WAL_FSYNC_ALWAYS) and then calls each record's completion
 * callback. Opening a WAL replays every record of every segment, cuts a torn tail off the
 * last segment, and starts a new segment for the appends of this run.
 * docs/internals/wal.md gives the byte layout and the exact meaning of an acknowledgement.
 *
 * Ownership: append copies the payload. Replay hands out payloads that are valid only during
 * the callback. The WAL borrows its clew_fileio, which must outlive it.
 *
 * Thread-safety: clew__wal_append, _sync, _rotate and _release_segments_before may be called
 * from any number of threads at once. Completion callbacks run on the writer thread, one at a
 * time, in append order; they must not block for long and must not call _sync, _rotate or
 * _close (append is allowed). clew__wal_close must be called once, after every other call
 * has returned.
 */
#ifndef CLEW_STORE_EMBEDDED_WAL_H
#define CLEW_STORE_EMBEDDED_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "clew/types.h"
#include "store/embedded/fileio.h"

/* The segment format version this code writes and reads; others are refused with
 * CLEW_EUNSUPPORTED. */
#define CLEW_WAL_VERSION         1u
#define CLEW_WAL_SEGMENT_HEADER  32u          /* bytes */
#define CLEW_WAL_RECORD_HEADER   9u           /* length u32, crc u32, type u8 */
#define CLEW_WAL_MAX_RECORD_SIZE (256u << 20) /* hard limit of a payload, whatever options say */

/* Record types. 0 is never valid (a zero-filled tail must not parse); 3..255 are free for
 * later use, and replay hands unknown types to the callback unchanged. */
typedef enum clew_wal_type {
    CLEW_WAL_SPANS = 1,    /* see clew__wal_spans_encode */
    CLEW_WAL_DECISION = 2, /* see clew__wal_decision_encode */
} clew_wal_type;

typedef enum clew_wal_fsync_mode {
    CLEW_WAL_FSYNC_INTERVAL = 0, /* the default */
    CLEW_WAL_FSYNC_NEVER,
    CLEW_WAL_FSYNC_ALWAYS,
} clew_wal_fsync_mode;

/* Where a record starts: its segment number and the byte offset of its header. */
typedef struct clew_wal_pos {
    uint64_t segment;
    uint64_t offset;
} clew_wal_pos;

typedef enum clew_wal_log_level {
    CLEW_WAL_LOG_INFO,
    CLEW_WAL_LOG_WARN,
    CLEW_WAL_LOG_ERROR,
} clew_wal_log_level;

/* Log sink: `msg` is a full sentence, borrowed for the call. */
typedef void (*clew_wal_log_fn)(void *ud, clew_wal_log_level level, const char *msg);

/* Completion of one append: status CLEW_OK when the record is durable as the mode says
 * (pos is then where it lies), or the I/O error that lost it (pos is then zero). */
typedef void (*clew_wal_done_fn)(void *ud, clew_status status, clew_wal_pos pos);

/* One replayed record. The payload is borrowed for the call. A non-OK return stops the
 * replay and clew__wal_open returns it. */
typedef clew_status (*clew_wal_replay_fn)(void *ud, clew_wal_pos pos, uint8_t type,
                                          const uint8_t *payload, size_t len);

typedef struct clew_wal_options {
    clew_fileio *io;                /* NULL = clew__fileio_posix() */
    clew_wal_fsync_mode fsync_mode; /* CLEW_WAL_FSYNC_INTERVAL by default */
    uint32_t fsync_interval_ms;     /* 0 = 100 */
    uint64_t segment_size;          /* rotate once a segment would exceed it; 0 = 64 MiB */
    size_t max_queue_bytes;         /* queued, not yet written; 0 = 64 MiB */
    size_t max_record_bytes;        /* payload limit; 0 = 32 MiB (max CLEW_WAL_MAX_RECORD_SIZE) */
    clew_wal_log_fn log;            /* may be NULL */
    void *log_ud;
} clew_wal_options;

typedef struct clew_wal clew_wal;

/* Opens (creating DIR/wal/ if needed) the WAL of store directory `dir`, replays every
 * record through `replay` (may be NULL), cuts a torn tail off the last segment (logged),
 * and starts the writer on a new segment. `opt` may be NULL for the defaults.
 * Returns CLEW_EUNSUPPORTED for a segment of another format version, CLEW_EIO, CLEW_ENOMEM,
 * CLEW_EINVAL for bad options, or the replay callback's error. */
CLEW_NODISCARD clew_status clew__wal_open(const char *dir, const clew_wal_options *opt,
                                          clew_wal_replay_fn replay, void *replay_ud,
                                          clew_wal **out);

/* Queues one record; the payload is copied. `done` (may be NULL) is called exactly once,
 * on the writer thread, when the record is acknowledged or lost - unless this returns an
 * error, in which case it is never called.
 * Returns CLEW_EFULL when the queue holds max_queue_bytes (back-pressure: retry later or
 * reject the request), CLEW_ETOOBIG for a payload over max_record_bytes, CLEW_EINVAL for
 * type 0, CLEW_EIO once the WAL has failed (a write or fsync error is sticky: the page cache
 * cannot be trusted afterwards), CLEW_ECLOSED during close, CLEW_ENOMEM. */
CLEW_NODISCARD clew_status clew__wal_append(clew_wal *wal, uint8_t type, const void *payload,
                                            size_t len, clew_wal_done_fn done, void *ud);

/* One piece of a record's payload (clew__wal_appendv). */
typedef struct clew_wal_part {
    const void *ptr;
    size_t len;
} clew_wal_part;

/* clew__wal_append of the payload made of parts[0..n_parts) end to end, copied straight into the
 * record: a caller whose payload is a small header and a large body it already has does not
 * have to join them first. */
CLEW_NODISCARD clew_status clew__wal_appendv(clew_wal *wal, uint8_t type,
                                             const clew_wal_part *parts, size_t n_parts,
                                             clew_wal_done_fn done, void *ud);

/* Waits until every record appended before the call is written and fsynced, whatever the
 * mode. Returns the WAL's sticky error if it has failed. */
CLEW_NODISCARD clew_status clew__wal_sync(clew_wal *wal);

/* Waits until every record appended before the call is written and durable per the mode,
 * then closes the current segment and starts a new one; *out_segment (may be NULL) gets the
 * new segment's number. Records appended after the call go to the new segment or a later
 * one, so a store can cut its head at this boundary and later release what precedes it. */
CLEW_NODISCARD clew_status clew__wal_rotate(clew_wal *wal, uint64_t *out_segment);

/* Deletes every segment whose number is below `segment` (never the segment being written),
 * oldest first: crash point "wal.segment.deleting", unlink, fsync of DIR/wal, crash point
 * "wal.segment.deleted". Runs in the caller's thread. *out_deleted (may be NULL) gets how many
 * were deleted. */
CLEW_NODISCARD clew_status clew__wal_release_segments_before(clew_wal *wal, uint64_t segment,
                                                             size_t *out_deleted);

/* The segment numbers currently on disk, oldest first (for tests and `clew store verify`). */
CLEW_NODISCARD clew_status clew__wal_segments(clew_wal *wal, uint64_t **out, size_t *out_n);

/* Drains the queue (every pending callback fires), fsyncs unless the mode is NEVER, stops
 * the writer and frees the WAL. Returns the sticky error, if any. NULL is a no-op. */
clew_status clew__wal_close(clew_wal *wal);

/* ---- the segment reader, on a buffer (for the fuzzer and tests) ---- */

typedef struct clew_wal_scan_result {
    clew_status header;       /* CLEW_OK, CLEW_ECORRUPT (short/garbled) or CLEW_EUNSUPPORTED */
    uint64_t valid_end;       /* bytes up to the end of the last good record */
    uint64_t records;         /* good records delivered */
    uint64_t dropped_bytes;   /* size - valid_end */
    uint64_t dropped_records; /* frames found after valid_end (torn or bad ones included) */
    const char *stop_reason;  /* static text, NULL when the whole buffer was good */
} clew_wal_scan_result;

/* Reads `data` as the segment file number `segment` (any number when UINT64_MAX), calling
 * `cb` (may be NULL) for each good record. Never fails on bad data: that is reported in
 * *res; returns only the callback's error or CLEW_ENOMEM. */
CLEW_NODISCARD clew_status clew__wal_scan_buffer(const uint8_t *data, size_t size, uint64_t segment,
                                                 size_t max_record_bytes, clew_wal_replay_fn cb,
                                                 void *ud, clew_wal_scan_result *res);

/* CRC32C (Castagnoli), as stored in the WAL: crc32c("123456789") == 0xE3069283. */
uint32_t clew__crc32c(const void *data, size_t len);

/* ---- payloads ---- */

/* SPANS payload: u16 tenant length, tenant bytes, u8 encoding (1 = the OTLP protobuf
 * ExportTraceServiceRequest exactly as received), then the batch bytes to the end.
 * Encode allocates *out (free with clew__free). Decode returns views into `payload`. */
#define CLEW_WAL_SPANS_OTLP_PB 1u
/* the same bytes, for spans appended pending a sampling decision: replay restores them
 * as PENDING (unless their trace is decided already) instead of KEPT */
#define CLEW_WAL_SPANS_OTLP_PB_PENDING 2u
CLEW_NODISCARD clew_status clew__wal_spans_encode(clew_str tenant, uint8_t encoding,
                                                  const void *batch, size_t batch_len,
                                                  uint8_t **out, size_t *out_len);
CLEW_NODISCARD clew_status clew__wal_spans_decode(const uint8_t *payload, size_t len,
                                                  clew_str *tenant, uint8_t *encoding,
                                                  const uint8_t **batch, size_t *batch_len);

/* DECISION payload: u16 tenant length, tenant, trace id (16 bytes), u8 state, u16 reason
 * length, reason, adjusted count (IEEE 754 double, little-endian). */
typedef enum clew_wal_decision_state {
    CLEW_WAL_DROPPED = 0,
    CLEW_WAL_KEPT = 1,
} clew_wal_decision_state;

typedef struct clew_wal_decision {
    clew_str tenant;
    clew_trace_id trace_id;
    clew_wal_decision_state state;
    clew_str reason;
    double adjusted_count;
} clew_wal_decision;

CLEW_NODISCARD clew_status clew__wal_decision_encode(const clew_wal_decision *d, uint8_t **out,
                                                     size_t *out_len);
/* Views into `payload`. CLEW_EPARSE for a malformed payload. */
CLEW_NODISCARD clew_status clew__wal_decision_decode(const uint8_t *payload, size_t len,
                                                     clew_wal_decision *out);

#endif /* CLEW_STORE_EMBEDDED_WAL_H */
