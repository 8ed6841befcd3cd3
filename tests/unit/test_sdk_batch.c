/*
 * tests/unit/test_sdk_batch.c - the batch span processor: a full queue drops
 * and counts exactly while the host thread never blocks, four threads creating
 * spans while the exporter runs, force_flush and shutdown, and fork (the child
 * exports only its own spans, the parent's buffered spans are exported once),
 * and the per-thread span pools: spans handed back by the export thread are
 * reused, and a thread keeps only a bounded number of free spans.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clew/alloc.h"
#include "clew/clew.h"
#include "codec/otlp.h"
#include "common/clock.h"
#include "model/model.h"

/* ---- an exporter callback that can be held inside export ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool hold;   /* block inside the callback while true */
static int entered; /* callbacks started */
static uint64_t spans_seen;

static size_t count_spans(const uint8_t *data, size_t len)
{
    clew_arena a;
    clew__arena_init(&a, 1 << 16, 0);
    clew_batch b;
    clew_error err;
    memset(&err, 0, sizeof(err));
    size_t n = 0;
    if (clew__otlp_pb_decode(data, len, &a, &b, &err) == CLEW_OK) {
        n = b.n_spans;
    }
    clew__arena_deinit(&a);
    return n;
}

static clew_status holding_export(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    size_t n = count_spans(data, len);
    pthread_mutex_lock(&mu);
    entered++;
    pthread_cond_broadcast(&cv);
    while (hold) {
        pthread_cond_wait(&cv, &mu);
    }
    spans_seen += n;
    pthread_mutex_unlock(&mu);
    return CLEW_OK;
}

static void reset_exporter_state(void)
{
    pthread_mutex_lock(&mu);
    hold = false;
    entered = 0;
    spans_seen = 0;
    pthread_mutex_unlock(&mu);
}

static clew_provider *make(uint32_t queue, uint32_t batch, uint32_t delay_ms)
{
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.batch.max_queue_size = queue;
    c.batch.max_export_batch_size = batch;
    c.batch.schedule_delay_ms = delay_ms;
    assert_int_equal(clew_exporter_callback(holding_export, NULL, &c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    return p;
}

static clew_tracer *tracer(clew_provider *p)
{
    clew_tracer *t;
    assert_int_equal(clew_provider_tracer(p, "batch.test", NULL, &t), CLEW_OK);
    return t;
}

static void one_span(clew_tracer *t)
{
    clew_span *s = clew_span_start(t, "work", NULL);
    clew_span_set_int(s, "i", 1);
    clew_span_set_str(s, "s", "value");
    clew_span_end(s, 0);
}

/* With the export thread stuck inside the exporter, a queue of 10 takes exactly
 * 10 more spans; the other 990 are dropped and counted, and the producing loop
 * finishes quickly (it never waits for the exporter). */
static void test_queue_full_drops_exactly(void **state)
{
    (void)state;
    reset_exporter_state();
    hold = true;
    clew_provider *p = make(10, 1, 60000);
    clew_tracer *t = tracer(p);
    one_span(t); /* a full batch of 1: wakes the export thread, which then blocks */
    pthread_mutex_lock(&mu);
    while (entered == 0) {
        pthread_cond_wait(&cv, &mu);
    }
    pthread_mutex_unlock(&mu);

    uint64_t t0 = clew__now_mono_ns();
    for (int i = 0; i < 1000; i++) {
        one_span(t);
    }
    uint64_t took = clew__now_mono_ns() - t0;
    assert_true(took < 2000000000ull); /* 2 s even under sanitizers: nothing blocked */
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.dropped_spans, 990);
    assert_int_equal(st.spans_ended, 1001);

    pthread_mutex_lock(&mu);
    hold = false;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    assert_int_equal(clew_provider_force_flush(p, 10000), CLEW_OK);
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.exported_spans, 11);
    assert_int_equal(spans_seen, 11);
    assert_int_equal(st.failed_spans, 0);
    clew_provider_destroy(p);
}

/* force_flush exports what was ended before it, long before the schedule delay;
 * shutdown exports the rest and later spans are no-ops. */
static void test_flush_and_shutdown(void **state)
{
    (void)state;
    reset_exporter_state();
    clew_provider *p = make(2048, 512, 60000);
    clew_tracer *t = tracer(p);
    for (int i = 0; i < 5; i++) {
        one_span(t);
    }
    assert_int_equal(clew_provider_force_flush(p, 10000), CLEW_OK);
    assert_int_equal(spans_seen, 5);
    for (int i = 0; i < 3; i++) {
        one_span(t);
    }
    clew_span *straddling = clew_span_start(t, "started before shutdown", NULL);
    assert_int_equal(clew_provider_shutdown(p, 10000), CLEW_OK);
    assert_int_equal(spans_seen, 8);
    one_span(t);
    clew_span_end(straddling, 0); /* nobody can export it now: dropped and counted */
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.exported_spans, 8);
    assert_int_equal(st.spans_ended, 9);
    assert_int_equal(st.dropped_spans, 1);
    clew_provider_destroy(p);
}

/* A stuck exporter makes force_flush time out instead of hanging. */
static void test_flush_timeout(void **state)
{
    (void)state;
    reset_exporter_state();
    hold = true;
    clew_provider *p = make(100, 10, 60000);
    clew_tracer *t = tracer(p);
    one_span(t);
    uint64_t t0 = clew__now_mono_ns();
    assert_int_equal(clew_provider_force_flush(p, 200), CLEW_ETIMEDOUT);
    uint64_t took = clew__now_mono_ns() - t0;
    assert_true(took >= 150000000ull && took < 5000000000ull);
    pthread_mutex_lock(&mu);
    hold = false;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    clew_provider_destroy(p);
    assert_int_equal(spans_seen, 1);
}

typedef struct worker {
    clew_tracer *t;
    int n;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        clew_span *parent = clew_span_start(w->t, "parent", NULL);
        clew_current_token tok = clew_span_make_current(parent);
        one_span(w->t);
        clew_span_restore(tok);
        clew_span_end(parent, 0);
    }
    return NULL;
}

/* Four threads create spans while the exporter runs: every span is exported or
 * counted as dropped, none is lost or exported twice, and the pools return every
 * span (ASan would report a leak or a use after free). */
static void test_four_threads(void **state)
{
    (void)state;
    reset_exporter_state();
    clew_provider *p = make(2048, 256, 5);
    clew_tracer *t = tracer(p);
    pthread_t th[4];
    worker w = {t, 5000};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, work, &w), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(clew_provider_force_flush(p, 30000), CLEW_OK);
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.spans_ended, 40000);
    assert_int_equal(st.exported_spans + st.dropped_spans, 40000);
    assert_int_equal(spans_seen, st.exported_spans);
    assert_true(st.exported_spans > 0);
    clew_provider_destroy(p);
}

typedef struct starter {
    clew_tracer *t;
    clew_span *sampled, *dropped;
} starter;

static void *start_only(void *arg)
{
    starter *st = arg;
    st->sampled = clew_span_start(st->t, "outlives its thread", NULL);
    clew_span_set_str(st->sampled, "k", "v");
    clew_span_context sc;
    clew_span_context_get(st->sampled, &sc);
    sc.trace_flags = 0; /* an unsampled parent: parentbased drops the child */
    clew_span_options o = {.parent = &sc};
    st->dropped = clew_span_start(st->t, "dropped", &o);
    /* also leave a span in this thread's pool queue when the thread exits */
    one_span(st->t);
    return NULL;
}

/* Spans started on a thread that exits before they end: the thread's pool
 * stays alive until the last of them comes back (ASan reports a use after free
 * or a leak otherwise), and the sampled one is still exported. */
static void test_span_outlives_thread(void **state)
{
    (void)state;
    reset_exporter_state();
    clew_provider *p = make(2048, 512, 60000);
    starter st = {tracer(p), NULL, NULL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, start_only, &st), 0);
    pthread_join(th, NULL);
    assert_false(clew_span_is_recording(st.dropped));
    clew_span_end(st.dropped, 0);
    clew_span_end(st.sampled, 0);
    assert_int_equal(clew_provider_force_flush(p, 10000), CLEW_OK);
    assert_int_equal(spans_seen, 2);
    clew_provider_destroy(p);
}

/* ---- fork: a file exporter shared by parent and child ---- */

/* ThreadSanitizer cannot run a child that starts threads after a
 * multi-threaded fork (it dies or hangs), so the fork tests skip there. */
#if defined(__SANITIZE_THREAD__)
#define CLEW_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CLEW_TEST_TSAN 1
#endif
#endif

static void skip_under_tsan(void)
{
#ifdef CLEW_TEST_TSAN
    skip();
#endif
}

static size_t count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t c = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        c++;
    }
    return c;
}

static void test_fork(void **state)
{
    (void)state;
    skip_under_tsan();
    char path[] = "/tmp/clew_sdk_fork_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.batch.schedule_delay_ms = 60000;
    assert_int_equal(clew_exporter_file(path, &c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_tracer *t = tracer(p);
    for (int i = 0; i < 3; i++) {
        clew_span_end(clew_span_start(t, "parent-span", NULL), 0);
    }
    clew_span_context before;
    clew_span *probe = clew_span_start(t, "probe", NULL);
    clew_span_context_get(probe, &before);
    clew_span_end(probe, 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 2; i++) {
            clew_span_end(clew_span_start(t, "child-span", NULL), 0);
        }
        clew_status rc = clew_provider_force_flush(p, 10000);
        _exit(rc == CLEW_OK ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the child flushed only its own spans */
    assert_int_equal(count_in_file(path, "\"child-span\""), 2);
    assert_int_equal(count_in_file(path, "\"parent-span\""), 0);
    assert_int_equal(clew_provider_force_flush(p, 10000), CLEW_OK);
    assert_int_equal(count_in_file(path, "\"parent-span\""), 3);
    assert_int_equal(count_in_file(path, "\"child-span\""), 2);
    clew_provider_destroy(p);
    unlink(path);
}

/* The child's ids do not repeat the parent's sequence (the PRNG is re-seeded). */
static void test_fork_reseeds_ids(void **state)
{
    (void)state;
    skip_under_tsan();
    clew_provider_config c;
    clew_provider_config_init(&c);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_tracer *t = tracer(p);
    clew_span_end(clew_span_start(t, "warm", NULL), 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    clew_span *s = clew_span_start(t, "x", NULL);
    clew_span_context sc;
    clew_span_context_get(s, &sc);
    clew_span_end(s, 0);
    if (pid == 0) {
        ssize_t w = write(pipefd[1], &sc.trace_id, sizeof(sc.trace_id));
        _exit(w == (ssize_t)sizeof(sc.trace_id) ? 0 : 1);
    }
    close(pipefd[1]); /* a child that dies early then gives EOF, not a hang */
    clew_trace_id child;
    assert_int_equal(read(pipefd[0], &child, sizeof(child)), (ssize_t)sizeof(child));
    waitpid(pid, NULL, 0);
    close(pipefd[0]);
    assert_memory_not_equal(&child, &sc.trace_id, sizeof(child));
    clew_provider_destroy(p);
}

/* ---- allocation counting (installed in main, before any clew object) ---- */

static _Atomic long n_mallocs, n_frees;

static void *count_malloc(size_t n)
{
    atomic_fetch_add(&n_mallocs, 1);
    return malloc(n);
}
static void *count_calloc(size_t n, size_t size)
{
    atomic_fetch_add(&n_mallocs, 1);
    return calloc(n, size);
}
static void *count_realloc(void *p, size_t n)
{
    atomic_fetch_add(&n_mallocs, 1);
    return realloc(p, n);
}
static void count_free(void *p)
{
    if (p != NULL) {
        atomic_fetch_add(&n_frees, 1);
    }
    free(p);
}

/* Sampled spans go to the export thread and come back to this thread's pool: once the
 * pool has grown to what is in flight (the queue and the batch being exported), ending
 * and starting spans allocates nothing. Twenty rounds of 1024 spans after a warm-up
 * may allocate at most a queue's worth (the export thread's timing varies), never one
 * per span. */
static void test_pool_reuses_exported_spans(void **state)
{
    (void)state;
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.batch.max_queue_size = 2048;
    c.batch.max_export_batch_size = 512;
    assert_int_equal(clew_exporter_none(&c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_tracer *t = tracer(p);
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < 1024; i++) {
            one_span(t);
        }
        assert_int_equal(clew_provider_force_flush(p, 10000), CLEW_OK);
    }
    long a0 = atomic_load(&n_mallocs);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 1024; i++) {
            one_span(t);
        }
        assert_int_equal(clew_provider_force_flush(p, 10000), CLEW_OK);
    }
    long allocated = atomic_load(&n_mallocs) - a0;
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.dropped_spans, 0);
    assert_int_equal(st.exported_spans, 28 * 1024);
    assert_true(allocated <= 2048);
    clew_provider_destroy(p);
}

/* A burst of 6000 spans alive at once on one thread: ending them gives some back to
 * the allocator (a thread's pool keeps a bounded number of free spans), and the next
 * burst reuses the ones kept. */
static void test_pool_keeps_a_bounded_number(void **state)
{
    (void)state;
    enum { BURST = 6000 };
    clew_provider_config c;
    clew_provider_config_init(&c);
    assert_int_equal(clew_sampler_always_off(&c.sampler), CLEW_OK);
    assert_int_equal(clew_exporter_none(&c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_tracer *t = tracer(p);
    clew_span **live = calloc(BURST, sizeof(*live));
    assert_non_null(live);
    for (int round = 0; round < 2; round++) {
        long a0 = atomic_load(&n_mallocs);
        for (int i = 0; i < BURST; i++) {
            live[i] = clew_span_start(t, "burst", NULL);
            assert_false(clew_span_is_recording(live[i]));
        }
        long allocated = atomic_load(&n_mallocs) - a0;
        long f0 = atomic_load(&n_frees);
        for (int i = 0; i < BURST; i++) {
            clew_span_end(live[i], 0);
        }
        long freed = atomic_load(&n_frees) - f0;
        assert_true(freed > 0);     /* not all 6000 kept */
        assert_true(freed < BURST); /* but some kept for reuse */
        if (round == 1) {
            /* what the first burst's end kept is taken again, the rest allocated */
            assert_int_equal(allocated, freed);
        }
    }
    free(live);
    clew_provider_destroy(p);
}

int main(void)
{
    clew_allocator a = {count_malloc, count_calloc, count_realloc, count_free};
    if (clew_set_allocator(&a) != CLEW_OK) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_full_drops_exactly),
        cmocka_unit_test(test_flush_and_shutdown),
        cmocka_unit_test(test_flush_timeout),
        cmocka_unit_test(test_four_threads),
        cmocka_unit_test(test_span_outlives_thread),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_fork_reseeds_ids),
        cmocka_unit_test(test_pool_reuses_exported_spans),
        cmocka_unit_test(test_pool_keeps_a_bounded_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
