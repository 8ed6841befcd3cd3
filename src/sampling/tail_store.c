/*
 * src/sampling/tail_store.c - the tail-sampling store wrapper (tail_store.h).
 *
 * Locking: `mu` guards the engine and the decision queue. The engine's decision callback
 * runs inside observe/tick (so under `mu`) and only queues; decisions are applied to the
 * inner store by the thread, outside `mu`, because set_trace_meta may wait on the inner
 * store (its WAL queue) and the observer runs on that store's own completion thread.
 */
#include "sampling/tail_store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/try.h"

#define RETRY_NS     (1000000000ull)      /* a failed decision is applied again this much later */
#define MAX_SLEEP_NS (1000000000ull)      /* the thread wakes at least this often */
#define LOG_EVERY_NS (60ull * 1000000000) /* failure messages: at most one a minute */

typedef struct queued {
    clew_trace_id id;
    clew_trace_state state;
    const char *reason; /* into the config: stable */
    double adjusted_count;
} queued;

typedef struct dqueue {
    queued *v;
    size_t n, cap;
} dqueue;

typedef struct tail_store {
    clew_store base;
    clew_store *inner;
    clew_tail_config *cfg;
    clew_tail_engine *eng;
    clew_tail_store_log_fn log;
    void *log_ud;
    clew_tail_clock_fn clock;
    void *clock_ud;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dqueue q;          /* under mu: decided, not yet applied */
    bool queue_failed; /* under mu: a decision could not be queued (out of memory) */
    bool stop;         /* under mu */
    bool thread_started;
    pthread_t thread;
    /* thread only */
    dqueue retry;
    uint64_t retry_at_ns;
    uint64_t last_fail_log_ns;
    /* counters (under mu) */
    uint64_t applied, apply_failures, retried;
} tail_store;

static void logf_(tail_store *ts, clew_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(tail_store *ts, clew_log_level level, const char *fmt, ...)
{
    if (ts->log == NULL) {
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ts->log(ts->log_ud, level, line);
}

static clew_status dq_push(dqueue *q, const queued *d)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        queued *v = clew__realloc(q->v, cap * sizeof(*v));
        if (v == NULL) {
            return CLEW_ENOMEM;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = *d;
    return CLEW_OK;
}

/* The engine's callback, under mu. */
static void on_decision(const clew_tail_decision *d, void *ud)
{
    tail_store *ts = ud;
    queued x = {d->trace_id, d->state, d->reason, d->adjusted_count};
    if (dq_push(&ts->q, &x) != CLEW_OK) {
        /* the trace stays pending in the store: a restart decides it again */
        ts->queue_failed = true;
    }
}

static uint64_t clock_thunk(void *ud)
{
    tail_store *ts = ud;
    return ts->clock(ts->clock_ud);
}

static void on_engine_log(const char *msg, void *ud)
{
    logf_((tail_store *)ud, CLEW_LOG_WARN, "tail sampling: %s", msg);
}

/* The inner store's observer: the batch is durable and queryable. */
static void on_stored(const clew_batch *b, void *ud)
{
    tail_store *ts = ud;
    pthread_mutex_lock(&ts->mu);
    clew_status rc = clew__tail_observe(ts->eng, b);
    bool wake = ts->q.n > 0;
    pthread_mutex_unlock(&ts->mu);
    if (rc != CLEW_OK) {
        /* the spans are stored; only the engine's summary of them is short */
        logf_(ts, CLEW_LOG_WARN, "tail sampling: a batch was only partly summarised: %s",
              clew_strerror(rc));
    }
    if (wake) {
        pthread_cond_signal(&ts->cv);
    }
}

/* Applies one decision; false when it must be retried. */
static bool apply(tail_store *ts, const queued *d, uint64_t now)
{
    clew_trace_meta m;
    memset(&m, 0, sizeof(m));
    m.state = d->state;
    if (d->state == CLEW_TRACE_KEPT && d->reason != NULL) {
        m.kept_reason = (clew_str){d->reason, strlen(d->reason)};
    }
    m.adjusted_count = d->state == CLEW_TRACE_KEPT ? d->adjusted_count : 1.0;
    clew_status rc = ts->inner->ops->set_trace_meta(ts->inner, &d->id, &m);
    /* not found: the memory store evicted it, or a late span's trace was cut already */
    if (rc == CLEW_OK || rc == CLEW_ENOTFOUND) {
        return true;
    }
    if (now - ts->last_fail_log_ns >= LOG_EVERY_NS || ts->last_fail_log_ns == 0) {
        ts->last_fail_log_ns = now;
        logf_(ts, CLEW_LOG_WARN,
              "tail sampling: a decision could not be stored (%s); retrying every second",
              clew_strerror(rc));
    }
    return false;
}

static void apply_all(tail_store *ts, dqueue *q, uint64_t now, size_t *applied)
{
    size_t failed = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (apply(ts, &q->v[i], now)) {
            (*applied)++;
        } else if (dq_push(&ts->retry, &q->v[i]) == CLEW_OK) {
            failed++;
        }
    }
    q->n = 0;
    if (failed > 0) {
        ts->retry_at_ns = now + RETRY_NS;
        pthread_mutex_lock(&ts->mu);
        ts->apply_failures += failed;
        pthread_mutex_unlock(&ts->mu);
    }
}

size_t clew__tail_store_run_once(clew_store *s)
{
    tail_store *ts = (tail_store *)s;
    uint64_t now = clew__now_mono_ns();
    pthread_mutex_lock(&ts->mu);
    clew__tail_tick(ts->eng);
    dqueue q = ts->q;
    memset(&ts->q, 0, sizeof(ts->q));
    bool lost = ts->queue_failed;
    ts->queue_failed = false;
    pthread_mutex_unlock(&ts->mu);
    if (lost) {
        logf_(ts, CLEW_LOG_ERROR,
              "tail sampling: out of memory queueing decisions; those traces stay pending "
              "until the next start");
    }
    size_t applied = 0;
    if (ts->retry.n > 0 && now >= ts->retry_at_ns) {
        dqueue r = ts->retry;
        memset(&ts->retry, 0, sizeof(ts->retry));
        pthread_mutex_lock(&ts->mu);
        ts->retried += r.n;
        pthread_mutex_unlock(&ts->mu);
        apply_all(ts, &r, now, &applied);
        clew__free(r.v);
    }
    apply_all(ts, &q, now, &applied);
    clew__free(q.v);
    pthread_mutex_lock(&ts->mu);
    ts->applied += applied;
    pthread_mutex_unlock(&ts->mu);
    return applied;
}

static void *thread_main(void *arg)
{
    tail_store *ts = arg;
    for (;;) {
        clew__tail_store_run_once(&ts->base);
        pthread_mutex_lock(&ts->mu);
        if (ts->stop) {
            pthread_mutex_unlock(&ts->mu);
            break;
        }
        if (ts->q.n == 0) {
            uint64_t due = clew__tail_next_due(ts->eng);
            uint64_t wait = due < MAX_SLEEP_NS ? due : MAX_SLEEP_NS;
            if (ts->retry.n > 0 && wait > RETRY_NS) {
                wait = RETRY_NS;
            }
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            uint64_t ns = (uint64_t)dl.tv_nsec + wait;
            dl.tv_sec += (time_t)(ns / 1000000000ull);
            dl.tv_nsec = (long)(ns % 1000000000ull);
            pthread_cond_timedwait(&ts->cv, &ts->mu, &dl);
        }
        bool stop = ts->stop;
        pthread_mutex_unlock(&ts->mu);
        if (stop) {
            break;
        }
    }
    return NULL;
}

/* ---- the store operations: appends go in pending, the rest is the inner store's ---- */

static clew_status t_append(clew_store *s, const clew_batch *b, const clew_trace_meta *meta,
                            clew_append_cb cb, void *ud)
{
    tail_store *ts = (tail_store *)s;
    clew_trace_meta m;
    memset(&m, 0, sizeof(m));
    if (meta != NULL) {
        m = *meta;
    }
    m.state = CLEW_TRACE_PENDING;
    m.adjusted_count = 1.0;
    m.kept_reason = (clew_str){NULL, 0};
    return ts->inner->ops->append(ts->inner, b, &m, cb, ud);
}

static clew_status t_get_trace(clew_store *s, const clew_trace_id *id, clew_trace_result **out)
{
    tail_store *ts = (tail_store *)s;
    return ts->inner->ops->get_trace(ts->inner, id, out);
}

static clew_status t_search(clew_store *s, const clew_search_query *q, clew_search_result **out)
{
    tail_store *ts = (tail_store *)s;
    return ts->inner->ops->search(ts->inner, q, out);
}

static clew_status t_services(clew_store *s, clew_name_list **out)
{
    tail_store *ts = (tail_store *)s;
    return ts->inner->ops->services(ts->inner, out);
}

static clew_status t_operations(clew_store *s, clew_str service, clew_span_kind kind,
                                clew_name_list **out)
{
    tail_store *ts = (tail_store *)s;
    return ts->inner->ops->operations(ts->inner, service, kind, out);
}

static clew_status t_set_trace_meta(clew_store *s, const clew_trace_id *id,
                                    const clew_trace_meta *meta)
{
    tail_store *ts = (tail_store *)s;
    return ts->inner->ops->set_trace_meta(ts->inner, id, meta);
}

static void t_set_observer(clew_store *s, clew_store_observer fn, void *ud)
{
    /* the engine is this wrapper's observer; a second one is not supported */
    (void)s;
    (void)fn;
    (void)ud;
}

static clew_status t_pending_traces(clew_store *s, clew_trace_id **out, size_t *out_n)
{
    tail_store *ts = (tail_store *)s;
    return ts->inner->ops->pending_traces(ts->inner, out, out_n);
}

static void t_stats(clew_store *s, clew_store_stats *out)
{
    tail_store *ts = (tail_store *)s;
    ts->inner->ops->stats(ts->inner, out);
}

static void t_destroy(clew_store *s)
{
    tail_store *ts = (tail_store *)s;
    if (ts->thread_started) {
        pthread_mutex_lock(&ts->mu);
        ts->stop = true;
        pthread_cond_signal(&ts->cv);
        pthread_mutex_unlock(&ts->mu);
        pthread_join(ts->thread, NULL);
    }
    /* decided but not yet applied: apply now so a restart does not decide them again */
    if (ts->eng != NULL) {
        ts->retry_at_ns = 0;
        clew__tail_store_run_once(s);
    }
    ts->inner->ops->set_observer(ts->inner, NULL, NULL);
    clew__tail_engine_free(ts->eng);
    clew__store_destroy(ts->inner);
    clew__free(ts->q.v);
    clew__free(ts->retry.v);
    pthread_cond_destroy(&ts->cv);
    pthread_mutex_destroy(&ts->mu);
    clew__free(ts);
}

static const clew_store_ops tail_ops = {
    .name = "tail-sampling",
    .destroy = t_destroy,
    .append = t_append,
    .get_trace = t_get_trace,
    .search = t_search,
    .services = t_services,
    .operations = t_operations,
    .set_trace_meta = t_set_trace_meta,
    .set_observer = t_set_observer,
    .pending_traces = t_pending_traces,
    .stats = t_stats,
};

clew_store *clew__tail_store_inner(clew_store *s)
{
    return ((tail_store *)s)->inner;
}

/* Shows the engine the traces the inner store holds pending (replayed after a restart). */
static clew_status reobserve_pending(tail_store *ts)
{
    clew_trace_id *ids = NULL;
    size_t n = 0;
    clew_status rc = ts->inner->ops->pending_traces(ts->inner, &ids, &n);
    if (rc != CLEW_OK) {
        return rc;
    }
    uint64_t spans = 0;
    for (size_t i = 0; i < n && rc == CLEW_OK; i++) {
        clew_trace_result *t = NULL;
        clew_status r = ts->inner->ops->get_trace(ts->inner, &ids[i], &t);
        if (r == CLEW_ENOTFOUND) {
            continue;
        }
        if (r != CLEW_OK) {
            rc = r;
            break;
        }
        pthread_mutex_lock(&ts->mu);
        rc = clew__tail_observe_spans(ts->eng, t->spans, t->n_spans);
        pthread_mutex_unlock(&ts->mu);
        spans += t->n_spans;
        clew__trace_result_free(t);
    }
    clew__free(ids);
    if (rc == CLEW_OK && n > 0) {
        logf_(ts, CLEW_LOG_INFO,
              "tail sampling: %zu traces (%llu spans) were pending a decision before the "
              "restart; they are decided from now on",
              n, (unsigned long long)spans);
    }
    return rc;
}

clew_status clew__tail_store_create(const clew_tail_store_options *opt, clew_store **out)
{
    if (opt == NULL || opt->inner == NULL || opt->cfg == NULL || out == NULL ||
        opt->inner->ops->set_observer == NULL || opt->inner->ops->pending_traces == NULL) {
        return CLEW_EINVAL;
    }
    tail_store *ts = clew__calloc(1, sizeof(*ts));
    if (ts == NULL) {
        return CLEW_ENOMEM;
    }
    ts->base.ops = &tail_ops;
    ts->inner = opt->inner;
    ts->cfg = opt->cfg;
    ts->log = opt->log;
    ts->log_ud = opt->log_ud;
    ts->clock = opt->clock;
    ts->clock_ud = opt->clock_ud;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&ts->mu, NULL) != 0 || pthread_cond_init(&ts->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        clew__free(ts);
        return CLEW_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    clew_tail_hooks h;
    memset(&h, 0, sizeof(h));
    h.on_decision = on_decision;
    h.log = on_engine_log;
    h.clock = opt->clock != NULL ? clock_thunk : NULL;
    h.ud = ts;
    clew_status rc = clew__tail_engine_new(opt->cfg, &h, &ts->eng);
    if (rc == CLEW_OK) {
        rc = reobserve_pending(ts);
    }
    if (rc == CLEW_OK) {
        ts->inner->ops->set_observer(ts->inner, on_stored, ts);
        if (!opt->no_thread) {
            if (pthread_create(&ts->thread, NULL, thread_main, ts) != 0) {
                rc = CLEW_ENOMEM;
            } else {
                ts->thread_started = true;
            }
        }
    }
    if (rc != CLEW_OK) {
        ts->inner->ops->set_observer(ts->inner, NULL, NULL);
        clew__tail_engine_free(ts->eng);
        clew__free(ts->q.v);
        pthread_cond_destroy(&ts->cv);
        pthread_mutex_destroy(&ts->mu);
        clew__free(ts);
        return rc;
    }
    *out = &ts->base;
    return CLEW_OK;
}

/* ---- /metrics ---- */

static const char *const OUTCOMES[CLEW_TAIL_OUTCOMES] = {"not_sampled", "sampled", "dropped"};

/* A policy name as a Prometheus label value: backslash, quote and newline escaped. */
static clew_status put_label(clew_buf *out, const char *v)
{
    for (const char *p = v; *p; p++) {
        char esc[3] = {'\\', *p == '\n' ? 'n' : *p, '\0'};
        bool quote = *p == '\\' || *p == '"' || *p == '\n';
        CLEW_TRY(clew__buf_append(out, quote ? esc : p, quote ? 2 : 1));
    }
    return CLEW_OK;
}

/* What /metrics prints, copied under the lock (the per-policy arrays live in the engine). */
typedef struct tail_snapshot {
    clew_tail_metrics m;
    uint64_t *sampled, *dropped; /* n_policies + 1 each: the engine's policy_sampled/dropped */
    uint64_t applied, failures;
    size_t queued;
} tail_snapshot;

static clew_status render(const tail_store *ts, const tail_snapshot *t, clew_buf *out)
{
    const clew_tail_metrics *m = &t->m;
    size_t np = ts->cfg->n_policies;
    CLEW_TRY(clew__buf_puts(out, "# HELP clew_tail_traces_decided_total Traces decided by tail "
                                 "sampling, by outcome.\n"
                                 "# TYPE clew_tail_traces_decided_total counter\n"));
    for (int o = 0; o < CLEW_TAIL_OUTCOMES; o++) {
        CLEW_TRY(clew__buf_printf(out, "clew_tail_traces_decided_total{outcome=\"%s\"} %llu\n",
                                  OUTCOMES[o], (unsigned long long)m->traces_decided[o]));
    }
    CLEW_TRY(clew__buf_puts(out, "# HELP clew_tail_spans_decided_total Spans of decided traces "
                                 "(seen while pending), by outcome.\n"
                                 "# TYPE clew_tail_spans_decided_total counter\n"));
    for (int o = 0; o < CLEW_TAIL_OUTCOMES; o++) {
        CLEW_TRY(clew__buf_printf(out, "clew_tail_spans_decided_total{outcome=\"%s\"} %llu\n",
                                  OUTCOMES[o], (unsigned long long)m->spans_decided[o]));
    }
    CLEW_TRY(clew__buf_puts(out, "# HELP clew_tail_policy_traces_total Traces per top-level policy "
                                 "and outcome (policy=\"\" when no policy matched).\n"
                                 "# TYPE clew_tail_policy_traces_total counter\n"));
    for (size_t i = 0; i <= np; i++) {
        for (int o = 0; o < 2; o++) {
            CLEW_TRY(clew__buf_puts(out, "clew_tail_policy_traces_total{policy=\""));
            CLEW_TRY(put_label(out, i < np ? ts->cfg->policies[i].name : ""));
            CLEW_TRY(clew__buf_printf(out, "\",outcome=\"%s\"} %llu\n",
                                      o == 0 ? "sampled" : "dropped",
                                      (unsigned long long)(o == 0 ? t->sampled : t->dropped)[i]));
        }
    }
    CLEW_TRY(clew__buf_printf(
        out,
        "# HELP clew_tail_late_spans_total Spans that arrived after their trace was decided.\n"
        "# TYPE clew_tail_late_spans_total counter\n"
        "clew_tail_late_spans_total{outcome=\"sampled\"} %llu\n"
        "clew_tail_late_spans_total{outcome=\"dropped\"} %llu\n"
        "# HELP clew_tail_forced_decisions_total Traces decided early because num_traces or the "
        "sampler's memory was full.\n# TYPE clew_tail_forced_decisions_total counter\n"
        "clew_tail_forced_decisions_total %llu\n"
        "# HELP clew_tail_spans_not_summarised_total Spans past max_spans_per_trace (counted, "
        "attributes not summarised).\n# TYPE clew_tail_spans_not_summarised_total counter\n"
        "clew_tail_spans_not_summarised_total %llu\n",
        (unsigned long long)m->late_spans_kept, (unsigned long long)m->late_spans_dropped,
        (unsigned long long)m->forced_decisions, (unsigned long long)m->spans_not_summarised));
    CLEW_TRY(clew__buf_printf(
        out,
        "# HELP clew_tail_pending_traces Traces waiting for a decision.\n"
        "# TYPE clew_tail_pending_traces gauge\nclew_tail_pending_traces %llu\n"
        "# HELP clew_tail_pending_spans Spans of traces waiting for a decision.\n"
        "# TYPE clew_tail_pending_spans gauge\nclew_tail_pending_spans %llu\n"
        "# HELP clew_tail_pending_bytes Memory the sampler holds for pending traces.\n"
        "# TYPE clew_tail_pending_bytes gauge\nclew_tail_pending_bytes %llu\n",
        (unsigned long long)m->pending_traces, (unsigned long long)m->pending_spans,
        (unsigned long long)m->pending_bytes));
    return clew__buf_printf(
        out,
        "# HELP clew_tail_decisions_applied_total Decisions written to the store.\n"
        "# TYPE clew_tail_decisions_applied_total counter\nclew_tail_decisions_applied_total "
        "%llu\n"
        "# HELP clew_tail_decision_failures_total Decisions the store refused (retried).\n"
        "# TYPE clew_tail_decision_failures_total counter\nclew_tail_decision_failures_total "
        "%llu\n"
        "# HELP clew_tail_decisions_queued Decisions made, not yet written to the store.\n"
        "# TYPE clew_tail_decisions_queued gauge\nclew_tail_decisions_queued %zu\n",
        (unsigned long long)t->applied, (unsigned long long)t->failures, t->queued);
}

clew_status clew__tail_store_render_metrics(clew_store *s, clew_buf *out)
{
    tail_store *ts = (tail_store *)s;
    size_t np = ts->cfg->n_policies;
    tail_snapshot t;
    uint64_t *pol = clew__calloc(2 * (np + 1), sizeof(*pol));
    if (pol == NULL) {
        return CLEW_ENOMEM;
    }
    pthread_mutex_lock(&ts->mu);
    clew__tail_metrics(ts->eng, &t.m);
    memcpy(pol, t.m.policy_sampled, (np + 1) * sizeof(*pol));
    memcpy(pol + np + 1, t.m.policy_dropped, (np + 1) * sizeof(*pol));
    t.applied = ts->applied;
    t.failures = ts->apply_failures;
    t.queued = ts->q.n;
    pthread_mutex_unlock(&ts->mu);
    t.sampled = pol;
    t.dropped = pol + np + 1;
    clew_status rc = render(ts, &t, out);
    clew__free(pol);
    return rc;
}
