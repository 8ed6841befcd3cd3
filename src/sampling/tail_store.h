/*
 * src/sampling/tail_store.h - tail sampling inside `clew serve`: a store that wraps the
 * real one (memory or embedded) and runs the engine of sampler.h on what it stores.
 *
 *   receivers ──append (PENDING)──▶ inner store (WAL, ack, head) ──observer──▶ engine
 *                                        ▲                                     │ tick
 *                                        └──── set_trace_meta(KEPT|DROPPED) ◀──┘ (own thread)
 *
 * Every append goes to the inner store as CLEW_TRACE_PENDING, so the embedded store
 * logs it as pending and a cut leaves it in the head. The inner store shows the engine
 * each batch once it is durable and queryable (clew_store_observer), never before: a
 * decision cannot reach the store before the spans it is about. A background thread
 * ticks the engine when the next trace falls due and applies every decision through the
 * inner store's set_trace_meta, which for the embedded store is a DECISION record in the
 * WAL, so a restart keeps what was decided. A failed decision (WAL queue full) is
 * retried a second later; decisions are never dropped.
 *
 * On create, the traces the inner store holds as pending (replayed from the WAL after a
 * restart) are shown to the engine again: they are decided like new traces, timed from
 * the restart. On destroy, pending traces are NOT decided: they stay pending in the
 * inner store (and its WAL) for the next start.
 *
 * Ownership: a successful create owns `inner` (destroyed with the wrapper) and borrows
 * `cfg`, which must outlive it. Thread-safety: every store operation may be called from
 * any thread (the engine is under one mutex).
 */
#ifndef CLEW_SAMPLING_TAIL_STORE_H
#define CLEW_SAMPLING_TAIL_STORE_H

#include "common/buf.h"
#include "sampling/sampler.h"
#include "store/store.h"

typedef void (*clew_tail_store_log_fn)(void *ud, clew_log_level level, const char *msg);

typedef struct clew_tail_store_options {
    clew_store *inner;          /* must implement set_observer and pending_traces */
    clew_tail_config *cfg;      /* borrowed */
    clew_tail_store_log_fn log; /* NULL = silent */
    void *log_ud;
    clew_tail_clock_fn clock; /* NULL = monotonic clock; tests inject one */
    void *clock_ud;
    bool no_thread; /* tests: no background thread; drive with clew__tail_store_run_once */
} clew_tail_store_options;

CLEW_NODISCARD clew_status clew__tail_store_create(const clew_tail_store_options *opt,
                                                   clew_store **out);

/* The wrapped store (e.g. to quiesce the embedded store at shutdown). */
clew_store *clew__tail_store_inner(clew_store *s);

/* Ticks the engine once and applies every decision waiting; returns how many decisions
 * were applied. The background thread does this; tests without one call it. */
size_t clew__tail_store_run_once(clew_store *s);

/* Appends the clew_tail_* series of /metrics (Prometheus text format 0.0.4). */
CLEW_NODISCARD clew_status clew__tail_store_render_metrics(clew_store *s, clew_buf *out);

#endif /* CLEW_SAMPLING_TAIL_STORE_H */
