/*
 * src/sdk/provider.c - the provider: resource, tracers, the simple and batch
 * span processors, stats and fork handling.
 *
 * Batch processor: ended spans go into a bounded MPSC ring (see sdk_internal.h)
 * read by ONE export thread. A producer never waits: a full ring drops the span
 * and counts it. When the ring holds a full batch the producer wakes the export
 * thread (once per batch, through the `notified` flag, so the common path does
 * no syscall); otherwise the thread wakes on its schedule delay, a force_flush
 * or shutdown. The export thread never holds `mu` while exporting, so
 * force_flush callers and the fork handlers never wait behind the network.
 *
 * Fork: the child discards the parent's queued spans (the parent still exports
 * them), gives the exporter a fresh connection and starts its own export
 * thread on first use.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clew/version.h"
#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "sdk/sdk_internal.h"

void clew__span_drop(clew_span *s);

#define NO_THREAD UINT64_MAX

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static clew_provider *g_reg;
static pthread_once_t g_fork_once = PTHREAD_ONCE_INIT;

void clew_span_limits_init(clew_span_limits *l)
{
    if (l == NULL) {
        return;
    }
    l->attribute_count = 128;
    l->attribute_value_length = 0;
    l->event_count = 128;
    l->link_count = 128;
    l->event_attribute_count = 128;
    l->link_attribute_count = 128;
}

void clew_provider_config_init(clew_provider_config *c)
{
    if (c == NULL) {
        return;
    }
    memset(c, 0, sizeof(*c));
    clew_span_limits_init(&c->limits);
    c->processor = CLEW_PROCESSOR_BATCH;
}

void clew__provider_log(const clew_provider *p, clew_log_level level, const char *fmt, ...)
{
    if (p == NULL || p->log == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->log(p->log_ud, level, msg);
}

void clew__exporter_log(clew_exporter *e, clew_log_level level, const char *fmt, ...)
{
    if (e == NULL || e->log == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->log(e->log_ud, level, msg);
}

clew_status clew__encode_spans(const clew_span_data *const *spans, size_t n, bool json,
                               clew_arena *arena, clew_buf *out)
{
    clew_batch b;
    clew_status rc = clew__batch_from_spans(&b, spans, n, arena);
    if (rc != CLEW_OK) {
        return rc;
    }
    return json ? clew__otlp_json_encode(&b, out) : clew__otlp_pb_encode(&b, out);
}

/* ---- ring ---- */

static clew_status ring_init(clew__ring *r, size_t cap)
{
    r->cells = clew__calloc(cap, sizeof(*r->cells));
    if (r->cells == NULL) {
        return CLEW_ENOMEM;
    }
    r->cap = cap;
    r->pow2 = (cap & (cap - 1)) == 0;
    for (size_t i = 0; i < cap; i++) {
        atomic_init(&r->cells[i].seq, i);
    }
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return CLEW_OK;
}

/* The cell of position pos: a 64-bit division costs as much as the rest of a
 * push, so power-of-two rings (the default 2048) use a mask. */
static inline clew__ring_cell *ring_cell(const clew__ring *r, size_t pos)
{
    return &r->cells[r->pow2 ? pos & (r->cap - 1) : pos % r->cap];
}

static bool ring_push(clew__ring *r, clew_span *s, size_t *out_pos)
{
    size_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        clew__ring_cell *c = ring_cell(r, pos);
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->span = s;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                *out_pos = pos;
                return true;
            }
        } else if (dif < 0) {
            return false; /* full */
        } else {
            pos = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
}

static clew_span *ring_pop(clew__ring *r)
{
    size_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    clew__ring_cell *c = ring_cell(r, pos);
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if (seq != pos + 1) {
        return NULL; /* empty, or the producer has claimed but not yet written */
    }
    clew_span *s = c->span;
    atomic_store_explicit(&c->seq, pos + r->cap, memory_order_release);
    atomic_store_explicit(&r->tail, pos + 1, memory_order_relaxed);
    return s;
}

static size_t ring_count(clew__ring *r)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    return h > t ? h - t : 0;
}

/* ---- export ---- */

static void export_spans(clew_provider *p, clew_span **spans, size_t n)
{
    if (n == 0) {
        return;
    }
    clew_status rc = CLEW_OK;
    if (p->exporter != NULL) {
        uint64_t deadline = clew__now_mono_ns() + (uint64_t)p->batch.export_timeout_ms * 1000000u;
        /* clew_span starts with its clew_span_data at a fixed offset: hand the
         * exporter pointers to the embedded records */
        const clew_span_data *data[512];
        size_t done = 0;
        while (done < n) {
            size_t k = n - done < 512 ? n - done : 512;
            for (size_t i = 0; i < k; i++) {
                data[i] = &spans[done + i]->data;
            }
            atomic_fetch_add_explicit(&p->st_calls, 1, memory_order_relaxed);
            clew_status r = p->exporter->ops->export_spans(p->exporter, data, k, deadline);
            if (r == CLEW_OK) {
                atomic_fetch_add_explicit(&p->st_exported, k, memory_order_relaxed);
            } else {
                atomic_fetch_add_explicit(&p->st_failed, k, memory_order_relaxed);
                rc = r;
            }
            done += k;
        }
    }
    if (rc != CLEW_OK) {
        clew__provider_log(p, CLEW_LOG_WARN, "clew: exporting %zu spans failed: %s", n,
                           clew_strerror(rc));
    }
    clew__spans_release_remote(spans, n);
}

static void abs_deadline(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *export_thread(void *arg)
{
    clew_provider *p = arg;
    size_t batch = p->batch.max_export_batch_size;
    clew_span **buf = clew__calloc(batch, sizeof(*buf));
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct timespec dl;
        abs_deadline(&dl, p->batch.schedule_delay_ms);
        atomic_store_explicit(&p->notified, false, memory_order_relaxed);
        bool timed_out = false;
        while (!p->stop && p->flush_req == p->flush_done && ring_count(&p->ring) < batch &&
               !timed_out) {
            int e = pthread_cond_timedwait(&p->wake, &p->mu, &dl);
            atomic_store_explicit(&p->notified, false, memory_order_relaxed);
            timed_out = e == ETIMEDOUT;
        }
        uint64_t req = p->flush_req;
        bool stopping = p->stop;
        pthread_mutex_unlock(&p->mu);

        /* drain: whole batches, and everything when flushing, stopping or on the timer */
        bool all = stopping || req != p->flush_done || timed_out;
        for (;;) {
            if (!all && ring_count(&p->ring) < batch) {
                break;
            }
            size_t n = 0;
            clew_span *s;
            while (n < batch && (s = ring_pop(&p->ring)) != NULL) {
                if (buf != NULL) {
                    buf[n++] = s;
                } else {
                    clew__spans_release_remote(&s, 1);
                    atomic_fetch_add_explicit(&p->st_failed, 1, memory_order_relaxed);
                }
            }
            if (n == 0) {
                break;
            }
            export_spans(p, buf, n);
        }

        pthread_mutex_lock(&p->mu);
        if (req != p->flush_done) {
            p->flush_done = req;
            pthread_cond_broadcast(&p->done);
        }
        if (stopping && ring_count(&p->ring) == 0) {
            break;
        }
    }
    p->thread_exited = true;
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);
    clew__free(buf);
    return NULL;
}

/* Starts the export thread for the current fork generation (mu held). */
static clew_status start_thread_locked(clew_provider *p)
{
    uint64_t gen = atomic_load(&clew__fork_gen);
    if (atomic_load(&p->thread_gen) == gen) {
        return CLEW_OK;
    }
    p->thread_exited = false;
    if (pthread_create(&p->thread, NULL, export_thread, p) != 0) {
        return CLEW_EIO;
    }
    p->thread_started = true;
    atomic_store(&p->thread_gen, gen);
    return CLEW_OK;
}

void clew__provider_on_end(clew_provider *p, clew_span *s)
{
    if (atomic_load_explicit(&p->shut, memory_order_relaxed)) {
        /* started before shutdown, ended after: nobody will export it */
        atomic_fetch_add_explicit(&p->st_dropped, 1, memory_order_relaxed);
        clew__span_drop(s);
        return;
    }
    if (p->exporter == NULL || p->processor == CLEW_PROCESSOR_SIMPLE) {
        /* the batch path needs no counter of its own: every span it takes is
         * either a ring push (counted by the ring's head) or a drop */
        atomic_fetch_add_explicit(&p->st_ended, 1, memory_order_relaxed);
    }
    if (p->exporter == NULL) {
        clew__span_drop(s);
        return;
    }
    if (p->processor == CLEW_PROCESSOR_SIMPLE) {
        pthread_mutex_lock(&p->export_mu);
        const clew_span_data *d = &s->data;
        uint64_t deadline = clew__now_mono_ns() + (uint64_t)p->batch.export_timeout_ms * 1000000u;
        atomic_fetch_add_explicit(&p->st_calls, 1, memory_order_relaxed);
        clew_status rc = p->exporter->ops->export_spans(p->exporter, &d, 1, deadline);
        pthread_mutex_unlock(&p->export_mu);
        atomic_fetch_add_explicit(rc == CLEW_OK ? &p->st_exported : &p->st_failed, 1,
                                  memory_order_relaxed);
        clew__span_drop(s);
        return;
    }
    if (__builtin_expect(atomic_load_explicit(&p->thread_gen, memory_order_relaxed) !=
                             atomic_load_explicit(&clew__fork_gen, memory_order_relaxed),
                         0)) {
        /* first span after fork(): this process needs its own export thread */
        pthread_mutex_lock(&p->mu);
        clew_status rc = p->stop ? CLEW_ECLOSED : start_thread_locked(p);
        pthread_mutex_unlock(&p->mu);
        if (rc != CLEW_OK) {
            atomic_fetch_add_explicit(&p->st_dropped, 1, memory_order_relaxed);
            clew__span_drop(s);
            return;
        }
    }
    size_t pos;
    if (!ring_push(&p->ring, s, &pos)) {
        atomic_fetch_add_explicit(&p->st_dropped, 1, memory_order_relaxed);
        clew__span_drop(s);
        return;
    }
    /* Look at the consumer's position only once per batch-size pushes: reading
     * `tail` on every push would pull its cache line away from the export thread
     * each time. */
    size_t bs = p->batch.max_export_batch_size;
    if (((p->batch_pow2 ? (pos + 1) & (bs - 1) : (pos + 1) % bs) == 0) &&
        ring_count(&p->ring) >= p->batch.max_export_batch_size &&
        !atomic_exchange_explicit(&p->notified, true, memory_order_relaxed)) {
        pthread_cond_signal(&p->wake);
    }
}

/* ---- fork ---- */

static void fork_prepare(void)
{
    pthread_mutex_lock(&g_reg_mu);
    for (clew_provider *p = g_reg; p != NULL; p = p->reg_next) {
        pthread_mutex_lock(&p->mu);
        pthread_mutex_lock(&p->export_mu);
    }
}

static void fork_parent(void)
{
    for (clew_provider *p = g_reg; p != NULL; p = p->reg_next) {
        pthread_mutex_unlock(&p->export_mu);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&g_reg_mu);
}

static void fork_child(void)
{
    atomic_fetch_add(&clew__fork_gen, 1);
    for (clew_provider *p = g_reg; p != NULL; p = p->reg_next) {
        pthread_mutex_unlock(&p->export_mu);
        pthread_mutex_unlock(&p->mu);
        /* the parent's export thread does not exist here; a waiter could not be either */
        pthread_cond_destroy(&p->wake);
        pthread_cond_destroy(&p->done);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->wake, &ca);
        pthread_cond_init(&p->done, &ca);
        pthread_condattr_destroy(&ca);
        p->flush_done = p->flush_req;
        atomic_store(&p->notified, false);
        /* the parent exports what it queued: drop our copies */
        clew_span *s;
        while (p->ring.cells != NULL && (s = ring_pop(&p->ring)) != NULL) {
            clew__spans_release_remote(&s, 1);
        }
        /* a producer thread of the parent may have claimed a slot it never filled:
         * start the ring afresh (such a span is lost to the child, never reused) */
        for (size_t i = 0; i < p->ring.cap; i++) {
            atomic_store(&p->ring.cells[i].seq, i);
        }
        /* keep spans_ended monotonic across the reset */
        atomic_fetch_add(&p->st_ended, atomic_load(&p->ring.head));
        atomic_store(&p->ring.head, 0);
        atomic_store(&p->ring.tail, 0);
        if (p->exporter != NULL && p->exporter->ops->after_fork_child != NULL) {
            p->exporter->ops->after_fork_child(p->exporter);
        }
    }
    pthread_mutex_unlock(&g_reg_mu);
}

static void fork_once(void)
{
    (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void clew__fork_init(void)
{
    (void)pthread_once(&g_fork_once, fork_once);
}

/* ---- provider ---- */

static void *arena_mem(void *ctx, size_t n)
{
    return clew__arena_alloc(ctx, n);
}

static clew_status add_resource_attr(clew_provider *p, clew_kv *items, uint32_t *n,
                                     const clew_attr *a)
{
    if (a->key == NULL || a->key[0] == '\0') {
        return CLEW_OK;
    }
    size_t klen = strlen(a->key);
    uint32_t idx = *n;
    for (uint32_t i = 0; i < *n; i++) {
        if (items[i].key.len == klen && memcmp(items[i].key.ptr, a->key, klen) == 0) {
            idx = i;
        }
    }
    clew_status rc = clew__value_from_attr(&items[idx].value, a, 0, arena_mem, &p->arena);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (idx == *n) {
        items[idx].key = clew__arena_strdup(&p->arena, a->key, klen);
        if (items[idx].key.ptr == NULL) {
            return CLEW_ENOMEM;
        }
        (*n)++;
    }
    return CLEW_OK;
}

static void exe_name(char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/self/comm", "re");
    if (f != NULL) {
        if (fgets(out, (int)cap, f) == NULL) {
            out[0] = '\0';
        }
        fclose(f);
        size_t n = strlen(out);
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) {
            out[--n] = '\0';
        }
    }
    if (out[0] == '\0') {
        snprintf(out, cap, "%s", program_invocation_short_name);
    }
}

static clew_status build_resource(clew_provider *p, const clew_provider_config *c)
{
    size_t max = c->n_resource_attrs + 4;
    clew_kv *items = clew__arena_calloc(&p->arena, max, sizeof(*items));
    if (items == NULL) {
        return CLEW_ENOMEM;
    }
    uint32_t n = 0;
    clew_status rc = CLEW_OK;
    for (size_t i = 0; i < c->n_resource_attrs && rc == CLEW_OK; i++) {
        rc = add_resource_attr(p, items, &n, &c->resource_attrs[i]);
    }
    if (rc == CLEW_OK && c->service_name != NULL && c->service_name[0] != '\0') {
        clew_attr a = clew_attr_str("service.name", c->service_name);
        rc = add_resource_attr(p, items, &n, &a);
    }
    bool has_service = false;
    for (uint32_t i = 0; i < n; i++) {
        if (items[i].key.len == 12 && memcmp(items[i].key.ptr, "service.name", 12) == 0) {
            has_service = true;
        }
    }
    char svc[300];
    if (rc == CLEW_OK && !has_service) {
        char exe[256];
        exe_name(exe, sizeof(exe));
        snprintf(svc, sizeof(svc), "unknown_service:%s", exe);
        clew_attr a = clew_attr_str("service.name", svc);
        rc = add_resource_attr(p, items, &n, &a);
    }
    /* telemetry.sdk.language: the semantic conventions list no "c" value (their
     * enum stops at cpp, dotnet, ..., webjs); "c" is what a C SDK honestly is. */
    clew_attr sdk[3] = {clew_attr_str("telemetry.sdk.name", "clew"),
                        clew_attr_str("telemetry.sdk.language", "c"),
                        clew_attr_str("telemetry.sdk.version", CLEW_VERSION_STRING)};
    for (int i = 0; i < 3 && rc == CLEW_OK; i++) {
        rc = add_resource_attr(p, items, &n, &sdk[i]);
    }
    p->resource.attrs.items = items;
    p->resource.attrs.n = n;
    return rc;
}

static void registry_remove(clew_provider *p)
{
    pthread_mutex_lock(&g_reg_mu);
    for (clew_provider **it = &g_reg; *it != NULL; it = &(*it)->reg_next) {
        if (*it == p) {
            *it = p->reg_next;
            break;
        }
    }
    pthread_mutex_unlock(&g_reg_mu);
}

clew_status clew_provider_create(const clew_provider_config *config, clew_provider **out)
{
    clew_sampler *sampler = config ? config->sampler : NULL;
    clew_exporter *exporter = config ? config->exporter : NULL;
    if (config == NULL || out == NULL) {
        clew_sampler_destroy(sampler);
        clew_exporter_destroy(exporter);
        return CLEW_EINVAL;
    }
    clew__fork_init();
    clew_provider *p = clew__calloc(1, sizeof(*p));
    if (p == NULL) {
        clew_sampler_destroy(sampler);
        clew_exporter_destroy(exporter);
        return CLEW_ENOMEM;
    }
    p->sampler = sampler;
    p->root_decision = (int8_t)clew__sample_root_fixed(sampler);
    p->exporter = exporter;
    p->limits = config->limits;
    clew_span_limits defaults;
    clew_span_limits_init(&defaults);
    if (p->limits.attribute_count == 0) {
        p->limits.attribute_count = defaults.attribute_count;
    }
    if (p->limits.event_count == 0) {
        p->limits.event_count = defaults.event_count;
    }
    if (p->limits.link_count == 0) {
        p->limits.link_count = defaults.link_count;
    }
    if (p->limits.event_attribute_count == 0) {
        p->limits.event_attribute_count = defaults.event_attribute_count;
    }
    if (p->limits.link_attribute_count == 0) {
        p->limits.link_attribute_count = defaults.link_attribute_count;
    }
    p->idgen = config->id_generator;
    p->has_idgen = p->idgen.trace_id != NULL && p->idgen.span_id != NULL;
    p->id_random = p->has_idgen ? p->idgen.w3c_random : true;
    p->disabled = config->disabled;
    p->log = config->log;
    p->log_ud = config->log_ud;
    if (exporter != NULL) {
        exporter->log = p->log;
        exporter->log_ud = p->log_ud;
    }
    p->processor = config->processor;
    p->batch = config->batch;
    if (p->batch.max_queue_size == 0) {
        p->batch.max_queue_size = 2048;
    }
    if (p->batch.max_export_batch_size == 0) {
        p->batch.max_export_batch_size = 512;
    }
    if (p->batch.max_export_batch_size > p->batch.max_queue_size) {
        p->batch.max_export_batch_size = p->batch.max_queue_size;
    }
    p->batch_pow2 = (p->batch.max_export_batch_size & (p->batch.max_export_batch_size - 1)) == 0;
    if (p->batch.schedule_delay_ms == 0) {
        p->batch.schedule_delay_ms = 5000;
    }
    if (p->batch.export_timeout_ms == 0) {
        p->batch.export_timeout_ms = 30000;
    }
    atomic_init(&p->thread_gen, NO_THREAD);
    atomic_init(&p->shut, false);
    atomic_init(&p->notified, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->export_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_cond_init(&p->done, &ca);
    pthread_condattr_destroy(&ca);
    clew__arena_init(&p->arena, 4096, 0);

    clew_status rc = build_resource(p, config);
    if (rc == CLEW_OK) {
        rc = clew_propagator_create(NULL, &p->propagator, NULL);
    }
    if (rc == CLEW_OK && p->processor == CLEW_PROCESSOR_BATCH && exporter != NULL) {
        rc = ring_init(&p->ring, p->batch.max_queue_size);
        if (rc == CLEW_OK) {
            pthread_mutex_lock(&p->mu);
            rc = start_thread_locked(p);
            pthread_mutex_unlock(&p->mu);
        }
    }
    if (rc != CLEW_OK) {
        clew_provider_destroy(p);
        return rc;
    }
    pthread_mutex_lock(&g_reg_mu);
    p->reg_next = g_reg;
    g_reg = p;
    pthread_mutex_unlock(&g_reg_mu);
    *out = p;
    return CLEW_OK;
}

clew_status clew_provider_force_flush(clew_provider *p, uint32_t timeout_ms)
{
    if (p == NULL) {
        return CLEW_EINVAL;
    }
    if (atomic_load(&p->shut)) {
        return CLEW_ECLOSED;
    }
    if (p->processor != CLEW_PROCESSOR_BATCH || p->exporter == NULL) {
        return CLEW_OK;
    }
    struct timespec dl;
    abs_deadline(&dl, timeout_ms);
    clew_status rc = CLEW_OK;
    pthread_mutex_lock(&p->mu);
    if (atomic_load(&p->thread_gen) != atomic_load(&clew__fork_gen)) {
        rc = start_thread_locked(p);
    }
    uint64_t req = ++p->flush_req;
    pthread_cond_signal(&p->wake);
    while (rc == CLEW_OK && p->flush_done < req) {
        if (pthread_cond_timedwait(&p->done, &p->mu, &dl) == ETIMEDOUT) {
            rc = p->flush_done < req ? CLEW_ETIMEDOUT : CLEW_OK;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

clew_status clew_provider_shutdown(clew_provider *p, uint32_t timeout_ms)
{
    if (p == NULL) {
        return CLEW_EINVAL;
    }
    if (atomic_exchange(&p->shut, true)) {
        return CLEW_ECLOSED;
    }
    clew_status rc = CLEW_OK;
    pthread_mutex_lock(&p->mu);
    bool own_thread =
        p->thread_started && atomic_load(&p->thread_gen) == atomic_load(&clew__fork_gen);
    if (own_thread) {
        struct timespec dl;
        abs_deadline(&dl, timeout_ms);
        p->stop = true;
        p->flush_req++;
        pthread_cond_signal(&p->wake);
        while (!p->thread_exited) {
            if (pthread_cond_timedwait(&p->done, &p->mu, &dl) == ETIMEDOUT && !p->thread_exited) {
                rc = CLEW_ETIMEDOUT;
                break;
            }
        }
    }
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    if (own_thread) {
        if (rc == CLEW_OK) {
            pthread_join(p->thread, NULL);
        } else {
            pthread_detach(p->thread);
            p->detached = true;
            clew__provider_log(p, CLEW_LOG_ERROR,
                               "clew: shutdown timed out; the export thread is left running");
        }
        p->thread_started = false;
    } else if (p->processor == CLEW_PROCESSOR_BATCH) {
        /* forked child that never started a thread: spans left in the ring are ours */
        clew_span *s;
        while (p->ring.cells != NULL && (s = ring_pop(&p->ring)) != NULL) {
            clew__spans_release_remote(&s, 1);
        }
    }
    return rc;
}

void clew_provider_destroy(clew_provider *p)
{
    if (p == NULL) {
        return;
    }
    registry_remove(p);
    if (!atomic_load(&p->shut)) {
        clew_status rc = clew_provider_shutdown(p, 5000);
        (void)rc; /* a timeout is handled below through p->detached */
    }
    if (p->detached) {
        return; /* the export thread still uses p: leak rather than crash */
    }
    /* spans that ended while shutdown was draining may still sit in the ring */
    clew_span *s;
    while (p->ring.cells != NULL && (s = ring_pop(&p->ring)) != NULL) {
        atomic_fetch_add_explicit(&p->st_failed, 1, memory_order_relaxed);
        clew__spans_release_remote(&s, 1);
    }
    for (clew_tracer *t = p->tracers; t != NULL;) {
        clew_tracer *next = t->next;
        clew__free(t);
        t = next;
    }
    clew_exporter_destroy(p->exporter);
    clew_sampler_destroy(p->sampler);
    clew_propagator_destroy(p->propagator);
    clew__free(p->ring.cells);
    clew__arena_deinit(&p->arena);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->export_mu);
    clew__free(p);
}

void clew_provider_stats_get(const clew_provider *p, clew_provider_stats *out)
{
    if (out == NULL) {
        return;
    }
    memset(out, 0, sizeof(*out));
    if (p == NULL) {
        return;
    }
    clew_provider *q = (clew_provider *)p;
    out->spans_ended = atomic_load_explicit(&q->st_ended, memory_order_relaxed) +
                       atomic_load_explicit(&q->st_dropped, memory_order_relaxed);
    if (q->ring.cells != NULL) {
        out->spans_ended += atomic_load_explicit(&q->ring.head, memory_order_relaxed);
    }
    out->dropped_spans = atomic_load_explicit(&q->st_dropped, memory_order_relaxed);
    out->exported_spans = atomic_load_explicit(&q->st_exported, memory_order_relaxed);
    out->failed_spans = atomic_load_explicit(&q->st_failed, memory_order_relaxed);
    out->export_calls = atomic_load_explicit(&q->st_calls, memory_order_relaxed);
}

const clew_propagator *clew_provider_propagator(const clew_provider *p)
{
    return p == NULL ? NULL : p->propagator;
}

clew_status clew_provider_tracer(clew_provider *p, const char *name, const char *version,
                                 clew_tracer **out)
{
    if (p == NULL || name == NULL || out == NULL) {
        return CLEW_EINVAL;
    }
    size_t nlen = strlen(name);
    size_t vlen = version ? strlen(version) : 0;
    pthread_mutex_lock(&p->mu);
    for (clew_tracer *t = p->tracers; t != NULL; t = t->next) {
        if (t->scope.name.len == nlen && memcmp(t->scope.name.ptr, name, nlen) == 0 &&
            t->scope.version.len == vlen &&
            (vlen == 0 || memcmp(t->scope.version.ptr, version, vlen) == 0)) {
            pthread_mutex_unlock(&p->mu);
            *out = t;
            return CLEW_OK;
        }
    }
    clew_status rc = CLEW_ENOMEM;
    clew_tracer *t = clew__calloc(1, sizeof(*t));
    if (t != NULL) {
        t->provider = p;
        t->scope.name = clew__arena_strdup(&p->arena, name, nlen);
        if (vlen > 0) {
            t->scope.version = clew__arena_strdup(&p->arena, version, vlen);
        }
        if (t->scope.name.ptr == NULL || (vlen > 0 && t->scope.version.ptr == NULL)) {
            clew__free(t);
        } else {
            t->next = p->tracers;
            p->tracers = t;
            *out = t;
            rc = CLEW_OK;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}
