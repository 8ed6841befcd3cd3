/*
 * tests/unit/test_block.c - the immutable block files of the embedded store: write then
 * read back every trace, get of absent ids (bloom false positives too), search compared
 * with the memory store's answers, unindexed keys, name lists, large traces and numbered
 * values, a checksum failure in every
 * section and page, truncation at every offset, version mismatch, power loss at each
 * crash point of the writer, and the same block whether the input shares its strings or
 * copies them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "store/embedded/block.h"
#include "store/embedded/block_format.h"
#include "store/embedded/fileio.h"
#include "store/store.h"

/* ---- a deterministic corpus ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static clew_str S(clew_arena *a, const char *s)
{
    return clew__arena_strdup(a, s, strlen(s));
}

static clew_str F(clew_arena *a, const char *fmt, unsigned v)
{
    char tmp[128];
    int n = snprintf(tmp, sizeof(tmp), fmt, v);
    return clew__arena_strdup(a, tmp, (size_t)n);
}

#define N_RES    3
#define N_SCOPES 2

typedef struct corpus {
    clew_arena arena;
    clew_resource res[N_RES];
    clew_scope scopes[N_SCOPES];
    clew_block_trace *traces;
    size_t n_traces;
    size_t n_spans;
} corpus;

static const char *const SERVICES[N_RES] = {"frontend", "checkout", "db"};
static const char *const OPS[] = {"GET /cart", "POST /pay", "SELECT", "cache.get"};

static void set_str(clew_arena *a, clew_kv *kv, const char *k, clew_str v)
{
    kv->key = S(a, k);
    kv->value.type = CLEW_VALUE_STRING;
    kv->value.u.s = v;
}

/* Span attributes exercising every value type; `big` adds a nested array and kvlist. */
static void span_attrs(clew_arena *a, clew_span_data *sp, uint64_t *rng, unsigned ti, bool big)
{
    unsigned n = big ? 10 : 6;
    clew_kv *kv = clew__arena_calloc(a, n, sizeof(*kv));
    set_str(a, &kv[0], "http.route", S(a, rng_next(rng) % 2 ? "/cart" : "/pay"));
    kv[1].key = S(a, "http.status_code");
    kv[1].value.type = CLEW_VALUE_INT;
    kv[1].value.u.i = rng_next(rng) % 4 == 0 ? 500 : 200;
    kv[2].key = S(a, "cache.hit");
    kv[2].value.type = CLEW_VALUE_BOOL;
    kv[2].value.u.b = rng_next(rng) % 2;
    kv[3].key = S(a, "amount");
    kv[3].value.type = CLEW_VALUE_DOUBLE;
    kv[3].value.u.d = (double)(rng_next(rng) % 8) / 2.0;
    set_str(a, &kv[4], "user.id", F(a, "user-%u", (unsigned)(rng_next(rng) % 10)));
    set_str(a, &kv[5], "trace.tag", F(a, "t%u", ti));
    if (big) {
        kv[6].key = S(a, "list");
        kv[6].value.type = CLEW_VALUE_ARRAY;
        kv[6].value.u.array.n = 3;
        kv[6].value.u.array.items = clew__arena_calloc(a, 3, sizeof(clew_value));
        kv[6].value.u.array.items[0].type = CLEW_VALUE_INT;
        kv[6].value.u.array.items[0].u.i = -7;
        kv[6].value.u.array.items[1].type = CLEW_VALUE_STRING;
        kv[6].value.u.array.items[1].u.s = S(a, "x");
        kv[6].value.u.array.items[2].type = CLEW_VALUE_EMPTY;
        kv[7].key = S(a, "map");
        kv[7].value.type = CLEW_VALUE_KVLIST;
        kv[7].value.u.kvlist.n = 2;
        kv[7].value.u.kvlist.items = clew__arena_calloc(a, 2, sizeof(clew_kv));
        set_str(a, &kv[7].value.u.kvlist.items[0], "inner", S(a, "v"));
        kv[7].value.u.kvlist.items[1].key = S(a, "deep");
        kv[7].value.u.kvlist.items[1].value.type = CLEW_VALUE_DOUBLE;
        kv[7].value.u.kvlist.items[1].value.u.d = -0.25;
        kv[8].key = S(a, "blob");
        kv[8].value.type = CLEW_VALUE_BYTES;
        kv[8].value.u.s = S(a, "\x01\x02\x03");
        kv[9].key = S(a, "nothing");
        kv[9].value.type = CLEW_VALUE_EMPTY;
    }
    sp->attrs.items = kv;
    sp->attrs.n = n;
    sp->attrs.dropped = big ? 2 : 0;
}

static void corpus_init(corpus *c, size_t n_traces, uint64_t seed)
{
    memset(c, 0, sizeof(*c));
    clew__arena_init(&c->arena, 64 * 1024, 0);
    clew_arena *a = &c->arena;
    uint64_t rng = seed;
    for (int i = 0; i < N_RES; i++) {
        clew_kv *kv = clew__arena_calloc(a, 2, sizeof(*kv));
        set_str(a, &kv[0], "service.name", S(a, SERVICES[i]));
        set_str(a, &kv[1], "host.name", F(a, "host-%u", (unsigned)i % 2));
        c->res[i].attrs.items = kv;
        c->res[i].attrs.n = 2;
        c->res[i].schema_url = i == 0 ? S(a, "https://opentelemetry.io/schemas/1.4.0") : S(a, "");
    }
    c->scopes[0].name = S(a, "lib.http");
    c->scopes[0].version = S(a, "1.0");
    c->scopes[1].name = S(a, "lib.db");
    clew_kv *skv = clew__arena_calloc(a, 1, sizeof(*skv));
    set_str(a, skv, "scope.attr", S(a, "yes"));
    c->scopes[1].attrs.items = skv;
    c->scopes[1].attrs.n = 1;

    c->n_traces = n_traces;
    c->traces = clew__arena_calloc(a, n_traces, sizeof(*c->traces));
    uint64_t t_base = 1700000000000000000ull;
    for (size_t t = 0; t < n_traces; t++) {
        clew_block_trace *bt = &c->traces[t];
        for (int i = 0; i < 16; i++) {
            bt->trace_id.bytes[i] = (uint8_t)rng_next(&rng);
        }
        size_t n = 1 + rng_next(&rng) % 9;
        clew_span_data *spans = clew__arena_calloc(a, n, sizeof(*spans));
        const clew_span_data **ptrs = clew__arena_calloc(a, n, sizeof(*ptrs));
        uint64_t t0 = t_base + t * 1000000 + rng_next(&rng) % 500000;
        for (size_t i = 0; i < n; i++) {
            clew_span_data *sp = &spans[i];
            sp->trace_id = bt->trace_id;
            uint64_t id = rng_next(&rng) | 1;
            memcpy(sp->span_id.bytes, &id, 8);
            if (i > 0) {
                sp->parent_span_id = spans[rng_next(&rng) % i].span_id;
            } else if (t % 7 == 3) {
                /* a parent outside the trace's spans (not yet received) */
                uint64_t ext = 0xabcdef;
                memcpy(sp->parent_span_id.bytes, &ext, 8);
            }
            sp->name = S(a, OPS[rng_next(&rng) % 4]);
            sp->kind = (clew_span_kind)(rng_next(&rng) % 6);
            sp->start_ns = t0 + i * 1000 + rng_next(&rng) % 999;
            sp->end_ns = sp->start_ns + 1000 + rng_next(&rng) % (t % 5 == 0 ? 50000000 : 5000);
            sp->flags = CLEW_FLAG_SAMPLED | (i % 2 ? CLEW_FLAG_HAS_IS_REMOTE : 0);
            sp->resource = &c->res[(t + i) % N_RES];
            sp->scope = &c->scopes[i % N_SCOPES];
            if (rng_next(&rng) % 6 == 0) {
                sp->status_code = CLEW_STATUS_ERROR;
                sp->status_message = S(a, "boom");
            } else if (rng_next(&rng) % 3 == 0) {
                sp->status_code = CLEW_STATUS_OK;
            }
            if (t % 4 == 1 && i == 0) {
                sp->trace_state = S(a, "vendor=abc");
            }
            span_attrs(a, sp, &rng, (unsigned)t, t % 5 == 2 && i == 0);
            if (t % 3 == 0) {
                sp->n_events = 2;
                sp->dropped_events = 1;
                sp->events = clew__arena_calloc(a, 2, sizeof(*sp->events));
                sp->events[0].time_ns = sp->start_ns + 10;
                sp->events[0].name = S(a, "exception");
                clew_kv *ekv = clew__arena_calloc(a, 1, sizeof(*ekv));
                set_str(a, ekv, "exception.message", S(a, "oops"));
                sp->events[0].attrs.items = ekv;
                sp->events[0].attrs.n = 1;
                sp->events[1].time_ns = sp->start_ns - 5; /* before the span: allowed */
                sp->events[1].name = S(a, "");
            }
            if (t % 4 == 2) {
                sp->n_links = 1;
                sp->dropped_links = 3;
                sp->links = clew__arena_calloc(a, 1, sizeof(*sp->links));
                memset(sp->links[0].trace_id.bytes, 0x42, 16);
                memset(sp->links[0].span_id.bytes, 0x24, 8);
                sp->links[0].trace_state = S(a, "k=v");
                sp->links[0].flags = 1;
                clew_kv *lkv = clew__arena_calloc(a, 1, sizeof(*lkv));
                lkv->key = S(a, "link.n");
                lkv->value.type = CLEW_VALUE_INT;
                lkv->value.u.i = (int64_t)i;
                sp->links[0].attrs.items = lkv;
                sp->links[0].attrs.n = 1;
            }
            ptrs[i] = sp;
        }
        /* give the writer the spans out of order: it must store them by start */
        if (n > 2) {
            const clew_span_data *tmp = ptrs[0];
            ptrs[0] = ptrs[n - 1];
            ptrs[n - 1] = tmp;
        }
        bt->spans = ptrs;
        bt->n_spans = n;
        bt->meta.state = (clew_trace_state)(t % 3);
        bt->meta.kept_reason = t % 3 == 1 ? S(a, "errors-policy") : S(a, "");
        bt->meta.adjusted_count = 1.0 + (double)(t % 4);
        bt->meta.tenant = t % 5 == 0 ? S(a, "acme") : S(a, "");
        c->n_spans += n;
    }
}

static void corpus_deinit(corpus *c)
{
    clew__arena_deinit(&c->arena);
}

/* ---- temp dirs ---- */

typedef struct tmpdir {
    char dir[64];
    char blocks[96];
    char path[160]; /* <dir>/blocks/b1.block */
    char tmp[160];
} tmpdir;

static void tmpdir_make(tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/clew-block-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->blocks, sizeof(t->blocks), "%s/blocks", t->dir);
    assert_int_equal(mkdir(t->blocks, 0700), 0);
    snprintf(t->path, sizeof(t->path), "%s/b1.block", t->blocks);
    snprintf(t->tmp, sizeof(t->tmp), "%s/b1.tmp", t->blocks);
}

static void tmpdir_remove(tmpdir *t)
{
    unlink(t->path);
    unlink(t->tmp);
    rmdir(t->blocks);
    rmdir(t->dir);
}

static void write_block(const tmpdir *t, const corpus *c, const clew_block_write_options *opt)
{
    clew_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc =
        clew__block_write(clew__fileio_posix(), t->dir, "b1", c->traces, c->n_traces, opt, &err);
    if (rc != CLEW_OK) {
        fail_msg("block write: %s (%s)", clew_strerror(rc), err.msg);
    }
}

static clew_block *open_block(const tmpdir *t)
{
    clew_block *b = NULL;
    clew_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc = clew__block_open(clew__fileio_posix(), t->path, &b, &err);
    if (rc != CLEW_OK) {
        fail_msg("block open: %s (%s)", clew_strerror(rc), err.msg);
    }
    return b;
}

static int span_start_cmp(const void *x, const void *y)
{
    const clew_span_data *a = *(const clew_span_data *const *)x;
    const clew_span_data *b = *(const clew_span_data *const *)y;
    return a->start_ns < b->start_ns ? -1 : a->start_ns > b->start_ns;
}

static bool str_eq(clew_str a, clew_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_trace(clew_block *b, const clew_block_trace *bt)
{
    clew_trace_result *r = NULL;
    clew_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc = clew__block_get_trace(b, &bt->trace_id, &r, &err);
    if (rc != CLEW_OK) {
        fail_msg("get_trace: %s (%s)", clew_strerror(rc), err.msg);
    }
    assert_int_equal(r->n_spans, bt->n_spans);
    assert_memory_equal(r->trace_id.bytes, bt->trace_id.bytes, 16);
    const clew_span_data **want = clew__calloc(bt->n_spans, sizeof(*want));
    assert_non_null(want);
    memcpy(want, bt->spans, bt->n_spans * sizeof(*want));
    qsort(want, bt->n_spans, sizeof(*want), span_start_cmp);
    for (size_t i = 0; i < bt->n_spans; i++) {
        assert_true(clew__span_equal(r->spans[i], want[i]));
    }
    clew__free(want);
    assert_int_equal(r->meta.state, bt->meta.state);
    assert_true(str_eq(r->meta.kept_reason, bt->meta.kept_reason));
    assert_true(str_eq(r->meta.tenant, bt->meta.tenant));
    assert_true(r->meta.adjusted_count == bt->meta.adjusted_count);
    clew__trace_result_free(r);
}

/* ---- round trip ---- */

static void roundtrip(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 120, 1);
    tmpdir t;
    tmpdir_make(&t);
    /* small pages: many pages, traces on both sides of page boundaries */
    clew_block_write_options opt = {.page_size = 2048};
    write_block(&t, &c, &opt);
    struct stat st;
    assert_int_equal(stat(t.tmp, &st), -1); /* renamed away */
    clew_block *b = open_block(&t);
    clew_block_info info;
    clew__block_info(b, &info);
    assert_int_equal(info.n_traces, c.n_traces);
    assert_int_equal(info.n_spans, c.n_spans);
    assert_true(info.n_pages > 3);
    assert_int_equal(info.version, CLEW_BLOCK_VERSION);
    for (size_t i = 0; i < c.n_traces; i++) {
        check_trace(b, &c.traces[i]);
    }
    clew_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(clew__block_verify(b, &err), CLEW_OK);
    clew__block_close(b);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

/* Clients that send no scope name (Zipkin without otel.scope.name) or a resource without
 * attributes produce the smallest possible resource and scope records; a block holding only
 * those must read back (the reader's count sanity bound once assumed bigger records). */
static void empty_resources_and_scopes(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 20, 5);
    for (size_t i = 0; i < sizeof(c.scopes) / sizeof(c.scopes[0]); i++) {
        memset(&c.scopes[i], 0, sizeof(c.scopes[i]));
    }
    for (int i = 0; i < N_RES; i++) {
        c.res[i].attrs.n = 0;
        c.res[i].schema_url = (clew_str){"", 0};
    }
    tmpdir t;
    tmpdir_make(&t);
    write_block(&t, &c, NULL);
    clew_block *b = open_block(&t);
    for (size_t i = 0; i < c.n_traces; i++) {
        check_trace(b, &c.traces[i]);
    }
    clew_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(clew__block_verify(b, &err), CLEW_OK);
    clew__block_close(b);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

static void absent_ids(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 50, 2);
    tmpdir t;
    tmpdir_make(&t);
    write_block(&t, &c, NULL);
    clew_block *b = open_block(&t);
    clew_error err;
    clew_trace_result *r = NULL;
    clew_trace_id id;
    memset(id.bytes, 0x77, 16);
    assert_int_equal(clew__block_get_trace(b, &id, &r, &err), CLEW_ENOTFOUND);
    /* find ids the bloom filter lets through although they are absent: the binary search
     * must still answer ENOTFOUND */
    uint64_t rng = 99;
    int fps = 0, tries = 0;
    for (; tries < 200000 && fps < 3; tries++) {
        for (int i = 0; i < 16; i++) {
            id.bytes[i] = (uint8_t)rng_next(&rng);
        }
        bool may = false;
        assert_int_equal(clew__block_may_contain(b, &id, &may, &err), CLEW_OK);
        if (may) {
            fps++;
            assert_int_equal(clew__block_get_trace(b, &id, &r, &err), CLEW_ENOTFOUND);
        }
    }
    assert_int_equal(fps, 3);
    /* ~1% designed false positive rate: 3 hits need a few hundred tries, not 200000 */
    assert_true(tries < 5000);
    for (size_t i = 0; i < c.n_traces; i++) {
        bool may = false;
        assert_int_equal(clew__block_may_contain(b, &c.traces[i].trace_id, &may, &err), CLEW_OK);
        assert_true(may);
    }
    clew__block_close(b);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

static void bad_input(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 4, 3);
    tmpdir t;
    tmpdir_make(&t);
    clew_error err;
    c.traces[2].trace_id = c.traces[1].trace_id; /* duplicate id (and foreign spans) */
    assert_int_equal(clew__block_write(clew__fileio_posix(), t.dir, "b1", c.traces, 4, NULL, &err),
                     CLEW_EINVAL);
    assert_int_equal(clew__block_write(clew__fileio_posix(), t.dir, "b1", c.traces, 0, NULL, &err),
                     CLEW_EINVAL);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

/* ---- search, against the memory store ---- */

static void append_cb(clew_status rc, void *ud)
{
    *(clew_status *)ud = rc;
}

static clew_store *memory_copy(const corpus *c)
{
    clew_memory_store_config cfg = {.max_traces = 100000};
    clew_store *s = NULL;
    assert_int_equal(clew__memory_store_create(&cfg, &s), CLEW_OK);
    for (size_t i = 0; i < c->n_traces; i++) {
        clew_arena a;
        clew__arena_init(&a, 4096, 0);
        clew_batch batch;
        assert_int_equal(
            clew__batch_from_spans(&batch, c->traces[i].spans, c->traces[i].n_spans, &a), CLEW_OK);
        clew_status got = CLEW_EIO;
        assert_int_equal(s->ops->append(s, &batch, &c->traces[i].meta, append_cb, &got), CLEW_OK);
        assert_int_equal(got, CLEW_OK);
        clew__arena_deinit(&a);
    }
    return s;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(((const clew_trace_summary *)a)->trace_id.bytes,
                  ((const clew_trace_summary *)b)->trace_id.bytes, 16);
}

/* Runs q on the block and on the memory store (no limit) and compares the sets; returns
 * how many matched. */
static size_t same_answer(clew_block *b, clew_store *ms, clew_search_query q)
{
    q.limit = 100000;
    clew_search_result *rb = NULL, *rm = NULL;
    clew_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc = clew__block_search(b, &q, &rb, &err);
    if (rc != CLEW_OK) {
        fail_msg("search: %s (%s)", clew_strerror(rc), err.msg);
    }
    assert_int_equal(ms->ops->search(ms, &q, &rm), CLEW_OK);
    assert_int_equal(rb->n_traces, rm->n_traces);
    /* newest first */
    for (size_t i = 1; i < rb->n_traces; i++) {
        assert_true(rb->traces[i - 1].start_ns >= rb->traces[i].start_ns);
    }
    qsort(rb->traces, rb->n_traces, sizeof(*rb->traces), id_cmp);
    qsort(rm->traces, rm->n_traces, sizeof(*rm->traces), id_cmp);
    for (size_t i = 0; i < rb->n_traces; i++) {
        const clew_trace_summary *x = &rb->traces[i], *y = &rm->traces[i];
        assert_memory_equal(x->trace_id.bytes, y->trace_id.bytes, 16);
        assert_int_equal(x->start_ns, y->start_ns);
        assert_int_equal(x->duration_ns, y->duration_ns);
        assert_int_equal(x->span_count, y->span_count);
        assert_int_equal(x->error_count, y->error_count);
        assert_int_equal(x->state, y->state);
        assert_true(str_eq(x->root_service, y->root_service));
        assert_true(str_eq(x->root_operation, y->root_operation));
    }
    size_t n = rb->n_traces;
    clew__search_result_free(rb);
    clew__search_result_free(rm);
    return n;
}

static clew_str L(const char *s)
{
    clew_str r = {s, strlen(s)};
    return r;
}

static clew_search_query tagq(const char *k, const char *v)
{
    clew_search_query q;
    memset(&q, 0, sizeof(q));
    q.tags[0].key = L(k);
    q.tags[0].value = L(v);
    q.n_tags = 1;
    return q;
}

static int u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

static void search_matches_memory_store(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 200, 4);
    tmpdir t;
    tmpdir_make(&t);
    clew_block_write_options opt = {.page_size = 4096};
    write_block(&t, &c, &opt);
    clew_block *b = open_block(&t);
    clew_store *ms = memory_copy(&c);

    clew_search_query q;
    memset(&q, 0, sizeof(q));
    assert_int_equal(same_answer(b, ms, q), c.n_traces);
    for (int i = 0; i < N_RES; i++) {
        memset(&q, 0, sizeof(q));
        q.service = L(SERVICES[i]);
        assert_true(same_answer(b, ms, q) > 0);
        for (int o = 0; o < 4; o++) {
            q.operation = L(OPS[o]);
            same_answer(b, ms, q);
        }
    }
    memset(&q, 0, sizeof(q));
    q.operation = L("SELECT");
    assert_true(same_answer(b, ms, q) > 0);
    q.service = L("nope");
    assert_int_equal(same_answer(b, ms, q), 0);

    /* each value type, by its text form */
    assert_true(same_answer(b, ms, tagq("http.status_code", "500")) > 0);
    assert_true(same_answer(b, ms, tagq("http.status_code", "+500")) > 0);
    assert_true(same_answer(b, ms, tagq("cache.hit", "true")) > 0);
    assert_true(same_answer(b, ms, tagq("amount", "1.5")) > 0);
    assert_true(same_answer(b, ms, tagq("amount", "15e-1")) > 0);
    assert_true(same_answer(b, ms, tagq("amount", "2")) > 0); /* int text, double value */
    assert_int_equal(same_answer(b, ms, tagq("trace.tag", "t17")), 1);
    assert_true(same_answer(b, ms, tagq("host.name", "host-1")) > 0); /* resource attribute */
    assert_true(same_answer(b, ms, tagq("nothing", "")) > 0);         /* empty value */
    assert_true(same_answer(b, ms, tagq("blob", "AQID")) > 0);        /* bytes as base64 */
    assert_int_equal(same_answer(b, ms, tagq("no.such.key", "x")), 0);
    assert_int_equal(same_answer(b, ms, tagq("user.id", "user-99")), 0);
    /* derived tags come from span fields */
    assert_true(same_answer(b, ms, tagq("error", "true")) > 0);
    assert_true(same_answer(b, ms, tagq("span.kind", "server")) > 0);
    assert_true(same_answer(b, ms, tagq("otel.scope.name", "lib.db")) > 0);

    /* combinations: all conditions on one span */
    q = tagq("http.status_code", "500");
    q.tags[1].key = L("cache.hit");
    q.tags[1].value = L("false");
    q.n_tags = 2;
    same_answer(b, ms, q);
    q.service = L("db");
    same_answer(b, ms, q);
    q.operation = L("SELECT");
    same_answer(b, ms, q);
    q = tagq("user.id", "user-3");
    q.service = L("checkout");
    assert_true(same_answer(b, ms, q) > 0);
    q = tagq("host.name", "host-0");
    q.operation = L("GET /cart");
    q.tags[1].key = L("error");
    q.tags[1].value = L("true");
    q.n_tags = 2;
    same_answer(b, ms, q);

    /* durations, time range, errors */
    memset(&q, 0, sizeof(q));
    q.min_duration_ns = 1000000;
    assert_true(same_answer(b, ms, q) > 0);
    q.max_duration_ns = 20000000;
    same_answer(b, ms, q);
    memset(&q, 0, sizeof(q));
    q.start_min_ns = c.traces[50].spans[0]->start_ns;
    q.start_max_ns = c.traces[150].spans[0]->start_ns;
    assert_true(same_answer(b, ms, q) > 50);
    memset(&q, 0, sizeof(q));
    q.errors_only = true;
    q.service = L("frontend");
    assert_true(same_answer(b, ms, q) > 0);

    /* the limit keeps the newest */
    memset(&q, 0, sizeof(q));
    q.limit = 5;
    clew_search_result *r = NULL;
    clew_error err;
    assert_int_equal(clew__block_search(b, &q, &r, &err), CLEW_OK);
    assert_int_equal(r->n_traces, 5);
    uint64_t newest = 0;
    for (size_t i = 0; i < c.n_traces; i++) {
        uint64_t s0 = UINT64_MAX;
        for (size_t j = 0; j < c.traces[i].n_spans; j++) {
            s0 = c.traces[i].spans[j]->start_ns < s0 ? c.traces[i].spans[j]->start_ns : s0;
        }
        newest = s0 > newest ? s0 : newest;
    }
    assert_int_equal(r->traces[0].start_ns, newest);
    clew__search_result_free(r);
    q.limit = 0; /* default 20 */
    assert_int_equal(clew__block_search(b, &q, &r, &err), CLEW_OK);
    assert_int_equal(r->n_traces, 20);
    /* exactly the 20 newest trace starts, newest first */
    uint64_t *starts = clew__calloc(c.n_traces, sizeof(*starts));
    for (size_t i = 0; i < c.n_traces; i++) {
        starts[i] = UINT64_MAX;
        for (size_t j = 0; j < c.traces[i].n_spans; j++) {
            if (c.traces[i].spans[j]->start_ns < starts[i]) {
                starts[i] = c.traces[i].spans[j]->start_ns;
            }
        }
    }
    qsort(starts, c.n_traces, sizeof(*starts), u64_desc);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(r->traces[i].start_ns, starts[i]);
    }
    clew__free(starts);
    clew__search_result_free(r);

    clew__store_destroy(ms);
    clew__block_close(b);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

static void names_and_unindexed_keys(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 60, 5);
    /* a value longer than the indexed limit */
    char longv[400];
    memset(longv, 'q', sizeof(longv));
    clew_span_data *sp = (clew_span_data *)c.traces[7].spans[0];
    sp->attrs.items[0].value.u.s.ptr = longv;
    sp->attrs.items[0].value.u.s.len = sizeof(longv);
    tmpdir t;
    tmpdir_make(&t);
    /* user.id has 10 distinct values, trace.tag 60: a cap of 12 leaves user.id indexed */
    clew_block_write_options opt = {.max_values_per_key = 12};
    write_block(&t, &c, &opt);
    clew_block *b = open_block(&t);
    clew_error err;
    clew_name_list *l = NULL;
    assert_int_equal(clew__block_unindexed_keys(b, &l, &err), CLEW_OK);
    /* blob: bytes; http.route: a long value; trace.tag: too many values */
    assert_int_equal(l->n, 3);
    assert_true(str_eq(l->names[0], L("blob")));
    assert_true(str_eq(l->names[1], L("http.route")));
    assert_true(str_eq(l->names[2], L("trace.tag")));
    clew__name_list_free(l);
    /* unindexed keys are still searchable (by decoding) */
    clew_store *ms = memory_copy(&c);
    assert_int_equal(same_answer(b, ms, tagq("trace.tag", "t33")), 1);
    clew_search_query q = tagq("http.route", "/cart");
    assert_true(same_answer(b, ms, q) > 0);
    q.tags[0].value.ptr = longv;
    q.tags[0].value.len = sizeof(longv);
    assert_int_equal(same_answer(b, ms, q), 1);
    assert_true(same_answer(b, ms, tagq("user.id", "user-4")) > 0);

    assert_int_equal(clew__block_services(b, &l, &err), CLEW_OK);
    assert_int_equal(l->n, 3);
    assert_true(str_eq(l->names[0], L("checkout")));
    assert_true(str_eq(l->names[1], L("db")));
    assert_true(str_eq(l->names[2], L("frontend")));
    clew__name_list_free(l);
    clew_name_list *m = NULL;
    for (int svc = -1; svc < N_RES; svc++) {
        for (int kind = 0; kind <= CLEW_KIND_CONSUMER; kind++) {
            clew_str s = svc < 0 ? L("") : L(SERVICES[svc]);
            assert_int_equal(clew__block_operations(b, s, (clew_span_kind)kind, &l, &err), CLEW_OK);
            assert_int_equal(ms->ops->operations(ms, s, (clew_span_kind)kind, &m), CLEW_OK);
            assert_int_equal(l->n, m->n);
            for (size_t i = 0; i < l->n; i++) {
                assert_true(str_eq(l->names[i], m->names[i]));
                assert_int_equal(l->kinds[i], m->kinds[i]);
            }
            clew__name_list_free(l);
            clew__name_list_free(m);
        }
    }
    clew__store_destroy(ms);
    clew__block_close(b);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

/* Large traces (the writer sorts them differently from small ones), numbered strings seen
 * once (written as a skeleton plus numbers), a string shared by span and event attributes,
 * and a key that passes the distinct-value cap halfway through the block. */
static void large_traces_and_numbered_values(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 40, 11);
    clew_arena *a = &c.arena;
    uint64_t rng = 99;
    for (size_t t = 0; t < c.n_traces; t += 4) {
        clew_block_trace *bt = &c.traces[t];
        size_t n = 33 + rng_next(&rng) % 90;
        clew_span_data *spans = clew__arena_calloc(a, n, sizeof(*spans));
        const clew_span_data **ptrs = clew__arena_calloc(a, n, sizeof(*ptrs));
        uint64_t t0 = bt->spans[0]->start_ns;
        for (size_t i = 0; i < n; i++) {
            clew_span_data *sp = &spans[i];
            *sp = *bt->spans[0];
            uint64_t id = rng_next(&rng) | 1;
            memcpy(sp->span_id.bytes, &id, 8);
            memset(sp->parent_span_id.bytes, 0, 8);
            if (i > 0 && i % 17 == 0) {
                uint64_t ext = 0x5151 + i; /* a parent outside the trace */
                memcpy(sp->parent_span_id.bytes, &ext, 8);
            } else if (i > 0) {
                sp->parent_span_id = spans[rng_next(&rng) % i].span_id;
            }
            /* starts repeat (ties keep the input order) and run backwards at times */
            sp->start_ns = t0 + (rng_next(&rng) % 3 == 0 ? 0 : rng_next(&rng) % 100000);
            sp->end_ns = sp->start_ns + 1 + rng_next(&rng) % 5000;
            clew_kv *kv = clew__arena_calloc(a, 4, sizeof(*kv));
            set_str(a, &kv[0], "order.id",
                    F(a, "order-%07u", (unsigned)(rng_next(&rng) % 9000000)));
            set_str(a, &kv[1], "url.path", F(a, "/api/v1/items/%u", (unsigned)rng_next(&rng)));
            set_str(a, &kv[2], "shared", S(a, "same text"));
            kv[3].key = S(a, "seq");
            kv[3].value.type = CLEW_VALUE_INT;
            kv[3].value.u.i = (int64_t)(t * 1000 + i); /* distinct everywhere: past the cap */
            sp->attrs.items = kv;
            sp->attrs.n = 4;
            sp->attrs.dropped = 0;
            clew_kv *ekv = clew__arena_calloc(a, 1, sizeof(*ekv));
            set_str(a, ekv, "shared", S(a, "same text"));
            sp->n_events = 1;
            sp->dropped_events = 0;
            sp->events = clew__arena_calloc(a, 1, sizeof(*sp->events));
            sp->events[0].time_ns = sp->start_ns;
            sp->events[0].name = S(a, "e");
            sp->events[0].attrs.items = ekv;
            sp->events[0].attrs.n = 1;
            sp->n_links = 0;
            sp->links = NULL;
            ptrs[i] = sp;
        }
        /* input order is not start order */
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = rng_next(&rng) % (i + 1);
            const clew_span_data *tmp = ptrs[i];
            ptrs[i] = ptrs[j];
            ptrs[j] = tmp;
        }
        c.n_spans += n - bt->n_spans;
        bt->spans = ptrs;
        bt->n_spans = n;
    }
    tmpdir t;
    tmpdir_make(&t);
    clew_block_write_options opt = {.page_size = 4096, .max_values_per_key = 100};
    write_block(&t, &c, &opt);
    clew_block *b = open_block(&t);
    clew_error err;
    assert_int_equal(clew__block_verify(b, &err), CLEW_OK);
    for (size_t i = 0; i < c.n_traces; i++) {
        check_trace(b, &c.traces[i]);
    }
    clew_name_list *l = NULL;
    assert_int_equal(clew__block_unindexed_keys(b, &l, &err), CLEW_OK);
    /* blob: bytes; order.id, seq, url.path: more distinct values than the cap */
    assert_int_equal(l->n, 4);
    assert_true(str_eq(l->names[0], L("blob")));
    assert_true(str_eq(l->names[1], L("order.id")));
    assert_true(str_eq(l->names[2], L("seq")));
    assert_true(str_eq(l->names[3], L("url.path")));
    clew__name_list_free(l);
    clew_store *ms = memory_copy(&c);
    const clew_span_data *sp = c.traces[8].spans[5];
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)sp->attrs.items[3].value.u.i);
    assert_int_equal(same_answer(b, ms, tagq("seq", num)), 1);
    clew_search_query q = tagq("order.id", "");
    q.tags[0].value = sp->attrs.items[0].value.u.s;
    assert_true(same_answer(b, ms, q) >= 1);
    assert_int_equal(same_answer(b, ms, tagq("shared", "same text")), 10);
    assert_true(same_answer(b, ms, tagq("user.id", "user-4")) > 0);
    clew__store_destroy(ms);
    clew__block_close(b);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

/* ---- damage ---- */

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = clew__malloc((size_t)len);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Runs every reader call; returns the first error (never crashes, the point of it). */
static clew_status exercise(const char *path, const corpus *c, clew_error *err)
{
    clew_block *b = NULL;
    clew_status rc = clew__block_open(clew__fileio_posix(), path, &b, err);
    if (rc != CLEW_OK) {
        return rc;
    }
    clew_status first = CLEW_OK;
    for (size_t i = 0; i < c->n_traces; i++) {
        clew_trace_result *r = NULL;
        rc = clew__block_get_trace(b, &c->traces[i].trace_id, &r, err);
        if (rc == CLEW_OK) {
            clew__trace_result_free(r);
        } else if (first == CLEW_OK) {
            first = rc;
        }
    }
    clew_search_query q = tagq("http.status_code", "500");
    q.service = L("db");
    clew_search_result *sr = NULL;
    rc = clew__block_search(b, &q, &sr, err);
    if (rc == CLEW_OK) {
        clew__search_result_free(sr);
    } else if (first == CLEW_OK) {
        first = rc;
    }
    clew_name_list *l = NULL;
    rc = clew__block_operations(b, L(""), CLEW_KIND_UNSPECIFIED, &l, err);
    if (rc == CLEW_OK) {
        clew__name_list_free(l);
    } else if (first == CLEW_OK) {
        first = rc;
    }
    rc = clew__block_verify(b, err);
    if (first == CLEW_OK) {
        first = rc;
    }
    clew__block_close(b);
    return first;
}

static void checksum_in_every_section(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 40, 6);
    tmpdir t;
    tmpdir_make(&t);
    clew_block_write_options opt = {.page_size = 1024};
    write_block(&t, &c, &opt);
    size_t n;
    uint8_t *orig = slurp(t.path, &n);
    const uint8_t *footer = orig + n - BLK_FOOTER_SIZE;
    uint8_t *copy = clew__malloc(n);
    clew_error err;
    /* each section: flip one byte in its middle */
    for (int s = 0; s < BLK_N_SECTIONS; s++) {
        const uint8_t *e = footer + 40 + (size_t)s * BLK_SECTION_ENTRY;
        uint64_t off = blk_get_u64(e), len = blk_get_u64(e + 8);
        assert_true(len > 0);
        memcpy(copy, orig, n);
        copy[off + len / 2] ^= 0x10;
        spit(t.path, copy, n);
        memset(&err, 0, sizeof(err));
        clew_status rc = exercise(t.path, &c, &err);
        assert_int_equal(rc, CLEW_ECORRUPT);
        /* the message names the section */
        assert_non_null(strstr(err.msg, "checksum"));
    }
    /* a page: only traces in that page fail, verify fails */
    uint64_t page0 = BLK_HEADER_SIZE;
    memcpy(copy, orig, n);
    copy[page0 + 5] ^= 0x01;
    spit(t.path, copy, n);
    memset(&err, 0, sizeof(err));
    assert_int_equal(exercise(t.path, &c, &err), CLEW_ECORRUPT);
    assert_non_null(strstr(err.msg, "page"));
    /* the footer and both magics */
    size_t spots[] = {n - BLK_FOOTER_SIZE + 9, n - 1, 0, n - 12};
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        memcpy(copy, orig, n);
        copy[spots[i]] ^= 0x40;
        spit(t.path, copy, n);
        memset(&err, 0, sizeof(err));
        assert_int_equal(exercise(t.path, &c, &err), CLEW_ECORRUPT);
        assert_true(strlen(err.msg) > 0);
    }
    /* the undamaged file still passes */
    spit(t.path, orig, n);
    memset(&err, 0, sizeof(err));
    assert_int_equal(exercise(t.path, &c, &err), CLEW_OK);
    clew__free(copy);
    clew__free(orig);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

/* The read-back of a cut (clew__block_verify_written) decodes only the first trace of each
 * page, but still reads every byte: a flipped bit anywhere in any page or section of a file
 * with many pages is caught, as clew__block_verify catches it. */
static void verify_written_reads_every_byte(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 60, 11);
    tmpdir t;
    tmpdir_make(&t);
    clew_block_write_options opt = {.page_size = 700};
    write_block(&t, &c, &opt);
    size_t n;
    uint8_t *orig = slurp(t.path, &n);
    const uint8_t *footer = orig + n - BLK_FOOTER_SIZE;
    assert_true(blk_get_u32(footer + 12) >= 8); /* many pages, so most traces are not first */
    uint64_t pages_end = n - BLK_FOOTER_SIZE;
    for (int s = 0; s < BLK_N_SECTIONS; s++) {
        uint64_t off = blk_get_u64(footer + 40 + (size_t)s * BLK_SECTION_ENTRY);
        pages_end = off < pages_end ? off : pages_end;
    }
    uint8_t *copy = clew__malloc(n);
    clew_error err;
    clew_block *b = NULL;
    /* the sound file passes */
    assert_int_equal(clew__block_open(clew__fileio_posix(), t.path, &b, &err), CLEW_OK);
    assert_int_equal(clew__block_verify_written(b, &err), CLEW_OK);
    clew__block_close(b);
    /* 64 spots spread over the pages (the last byte of the last page included), then the
     * middle of every section */
    size_t spots[64 + BLK_N_SECTIONS];
    size_t n_spots = 0;
    for (size_t i = 0; i < 64; i++) {
        spots[n_spots++] = BLK_HEADER_SIZE + (size_t)((pages_end - 1 - BLK_HEADER_SIZE) * i / 63);
    }
    for (int s = 0; s < BLK_N_SECTIONS; s++) {
        const uint8_t *e = footer + 40 + (size_t)s * BLK_SECTION_ENTRY;
        spots[n_spots++] = blk_get_u64(e) + blk_get_u64(e + 8) / 2;
    }
    for (size_t i = 0; i < n_spots; i++) {
        memcpy(copy, orig, n);
        copy[spots[i]] ^= 0x08;
        spit(t.path, copy, n);
        memset(&err, 0, sizeof(err));
        b = NULL;
        clew_status rc = clew__block_open(clew__fileio_posix(), t.path, &b, &err);
        if (rc == CLEW_OK) {
            rc = clew__block_verify_written(b, &err);
        }
        clew__block_close(b);
        assert_int_equal(rc, CLEW_ECORRUPT);
        assert_non_null(strstr(err.msg, "checksum"));
    }
    clew__free(copy);
    clew__free(orig);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

static void truncated_everywhere(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 12, 7);
    tmpdir t;
    tmpdir_make(&t);
    clew_block_write_options opt = {.page_size = 512};
    write_block(&t, &c, &opt);
    size_t n;
    uint8_t *orig = slurp(t.path, &n);
    size_t step = n > 4000 ? 3 : 1;
    for (size_t cut = 0; cut < n; cut += step) {
        spit(t.path, orig, cut);
        clew_error err;
        memset(&err, 0, sizeof(err));
        clew_status rc = exercise(t.path, &c, &err);
        assert_int_equal(rc, CLEW_ECORRUPT);
        assert_true(strlen(err.msg) > 0);
    }
    /* a whole block with garbage appended is not a block either (the end magic moved) */
    uint8_t *longer = clew__malloc(n + 7);
    memcpy(longer, orig, n);
    memset(longer + n, 0, 7);
    spit(t.path, longer, n + 7);
    clew_error err;
    assert_int_equal(exercise(t.path, &c, &err), CLEW_ECORRUPT);
    clew__free(longer);
    clew__free(orig);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

static void version_mismatch(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 5, 8);
    tmpdir t;
    tmpdir_make(&t);
    write_block(&t, &c, NULL);
    size_t n;
    uint8_t *p = slurp(t.path, &n);
    uint8_t *f = p + n - BLK_FOOTER_SIZE;
    size_t crc_at = 40 + BLK_N_SECTIONS * BLK_SECTION_ENTRY;
    /* a future version, with a valid footer checksum */
    blk_put_u32(f, CLEW_BLOCK_VERSION + 1);
    blk_put_u32(p + 8, CLEW_BLOCK_VERSION + 1);
    blk_put_u32(f + crc_at, crc32_iscsi(f, (int)crc_at, 0));
    spit(t.path, p, n);
    clew_block *b = NULL;
    clew_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(clew__block_open(clew__fileio_posix(), t.path, &b, &err), CLEW_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "version"));
    clew__free(p);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

/* ---- power loss ---- */

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void crash_points(void **state)
{
    (void)state;
    static const char *const points[] = {"block.written", "block.renamed", "block.dir_synced",
                                         NULL};
    corpus c;
    corpus_init(&c, 30, 9);
    for (int i = 0; i < 4; i++) {
        tmpdir t;
        tmpdir_make(&t);
        clew_fileio *io = NULL;
        assert_int_equal(clew__fileio_powerloss_create(&io), CLEW_OK);
        if (points[i] != NULL) {
            clew__fileio_powerloss_arm(io, points[i], 1);
        }
        clew_error err;
        memset(&err, 0, sizeof(err));
        clew_status rc = clew__block_write(io, t.dir, "b1", c.traces, c.n_traces, NULL, &err);
        assert_int_equal(rc, points[i] != NULL ? CLEW_EIO : CLEW_OK);
        clew__fileio_powerloss_cut(io);
        /* after the power comes back the block is either absent or whole */
        bool whole = exists(t.path);
        if (whole) {
            clew_block *b = NULL;
            assert_int_equal(clew__block_open(io, t.path, &b, &err), CLEW_OK);
            assert_int_equal(clew__block_verify(b, &err), CLEW_OK);
            for (size_t k = 0; k < c.n_traces; k++) {
                check_trace(b, &c.traces[k]);
            }
            clew__block_close(b);
        }
        /* a crash before the directory was synced loses the rename; after it, never */
        bool durable = points[i] == NULL || strcmp(points[i], "block.dir_synced") == 0;
        assert_int_equal(whole, durable);
        clew__fileio_powerloss_destroy(io);
        tmpdir_remove(&t);
    }
    corpus_deinit(&c);
}

/* ---- out of memory: every allocation of the writer and the reader may fail ---- */

static void out_of_memory(void **state)
{
    (void)state;
    corpus c;
    corpus_init(&c, 8, 10);
    tmpdir t;
    tmpdir_make(&t);
    clew_error err;
    clew_block_write_options opt = {.page_size = 1024};
    long n;
    clew_status rc = CLEW_ENOMEM;
    for (n = 0; n < 100000 && rc != CLEW_OK; n++) {
        clew__alloc_fail_after(n);
        rc = clew__block_write(clew__fileio_posix(), t.dir, "b1", c.traces, c.n_traces, &opt, &err);
        clew__alloc_fail_after(-1);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
    }
    assert_int_equal(rc, CLEW_OK);
    assert_true(n > 10); /* the loop did meet failures */
    /* the reader: each call either works or says ENOMEM, and works once memory is back */
    bool all_ok = false;
    for (n = 0; n < 100000 && !all_ok; n++) {
        clew__alloc_fail_after(n);
        clew_block *b = NULL;
        rc = clew__block_open(clew__fileio_posix(), t.path, &b, &err);
        if (rc != CLEW_OK) {
            clew__alloc_fail_after(-1);
            assert_int_equal(rc, CLEW_ENOMEM);
            continue;
        }
        clew_trace_result *r = NULL;
        clew_status r1 = clew__block_get_trace(b, &c.traces[3].trace_id, &r, &err);
        clew__trace_result_free(r);
        clew_search_query q = tagq("http.status_code", "200");
        q.service = L("db");
        clew_search_result *sr = NULL;
        clew_status r2 = clew__block_search(b, &q, &sr, &err);
        clew__search_result_free(sr);
        clew_name_list *l = NULL;
        clew_status r3 = clew__block_operations(b, L(""), CLEW_KIND_UNSPECIFIED, &l, &err);
        clew__name_list_free(l);
        clew_status r4 = clew__block_verify(b, &err);
        clew__alloc_fail_after(-1);
        clew_status rs[] = {r1, r2, r3, r4};
        all_ok = true;
        for (int i = 0; i < 4; i++) {
            assert_true(rs[i] == CLEW_OK || rs[i] == CLEW_ENOMEM);
            all_ok = all_ok && rs[i] == CLEW_OK;
        }
        /* with memory back, the same handle answers everything */
        assert_int_equal(clew__block_get_trace(b, &c.traces[3].trace_id, &r, &err), CLEW_OK);
        clew__trace_result_free(r);
        assert_int_equal(clew__block_verify(b, &err), CLEW_OK);
        clew__block_close(b);
    }
    assert_true(all_ok);
    tmpdir_remove(&t);
    corpus_deinit(&c);
}

/* ---- where the input's strings live ---- */

/* A deep copy of the corpus's traces: every trace with its own strings, resources and
 * scopes, as a store that copies traces out of its memory hands them to the writer. */
static clew_block_trace *clone_traces(const corpus *c, clew_arena *a)
{
    clew_block_trace *out = clew__arena_calloc(a, c->n_traces, sizeof(*out));
    assert_non_null(out);
    for (size_t t = 0; t < c->n_traces; t++) {
        const clew_block_trace *src = &c->traces[t];
        clew_span_data *spans = clew__arena_calloc(a, src->n_spans, sizeof(*spans));
        const clew_span_data **ptrs = clew__arena_calloc(a, src->n_spans, sizeof(*ptrs));
        clew_resource *res = clew__arena_calloc(a, N_RES, sizeof(*res));
        clew_scope *sc = clew__arena_calloc(a, N_SCOPES, sizeof(*sc));
        assert_true(spans != NULL && ptrs != NULL && res != NULL && sc != NULL);
        for (int i = 0; i < N_RES; i++) {
            assert_int_equal(clew__resource_clone(&res[i], &c->res[i], a), CLEW_OK);
        }
        for (int i = 0; i < N_SCOPES; i++) {
            assert_int_equal(clew__scope_clone(&sc[i], &c->scopes[i], a), CLEW_OK);
        }
        for (size_t i = 0; i < src->n_spans; i++) {
            const clew_span_data *sp = src->spans[i];
            assert_int_equal(clew__span_clone(&spans[i], sp, a), CLEW_OK);
            spans[i].resource = &res[sp->resource - c->res];
            spans[i].scope = &sc[sp->scope - c->scopes];
            ptrs[i] = &spans[i];
        }
        out[t] = *src;
        out[t].spans = ptrs;
        out[t].meta.kept_reason =
            clew__arena_strdup(a, src->meta.kept_reason.ptr, src->meta.kept_reason.len);
        out[t].meta.tenant = clew__arena_strdup(a, src->meta.tenant.ptr, src->meta.tenant.len);
    }
    return out;
}

/* Makes equal strings one string, as a store that shares the values that repeat does; a
 * few values become views of the start of another one (the same address, a shorter
 * length). */
static void share_strings(corpus *c)
{
    clew_str seen[512];
    size_t n_seen = 0;
    for (size_t t = 0; t < c->n_traces; t++) {
        for (size_t i = 0; i < c->traces[t].n_spans; i++) {
            clew_span_data *sp = (clew_span_data *)c->traces[t].spans[i];
            clew_str *strs[3] = {&sp->name, NULL, NULL};
            for (uint32_t k = 0; k < sp->attrs.n; k++) {
                clew_kv *kv = &sp->attrs.items[k];
                strs[1] = &kv->key;
                strs[2] = kv->value.type == CLEW_VALUE_STRING ? &kv->value.u.s : NULL;
                for (int j = 1; j < 3; j++) {
                    size_t x = 0;
                    while (strs[j] != NULL && x < n_seen && !str_eq(seen[x], *strs[j])) {
                        x++;
                    }
                    if (strs[j] != NULL && x < n_seen) {
                        *strs[j] = seen[x];
                    } else if (strs[j] != NULL && n_seen < 512) {
                        seen[n_seen++] = *strs[j];
                    }
                }
                if (kv->value.type == CLEW_VALUE_STRING && kv->value.u.s.len > 4 && t % 3 == 1 &&
                    str_eq(kv->key, L("user.id"))) {
                    kv->value.u.s.len = 4; /* "user" at the address of "user-N" */
                }
            }
        }
    }
}

/* The block depends on the traces' content only: not on which of their strings, resources
 * and scopes are one object and which are copies (the writer finds repeats by address
 * first), nor on a string at the address of a longer one. */
static void same_block_wherever_strings_live(void **state)
{
    (void)state;
    for (int shared = 0; shared < 2; shared++) {
        corpus c;
        corpus_init(&c, 120, 21);
        if (shared) {
            share_strings(&c);
        }
        tmpdir t;
        tmpdir_make(&t);
        write_block(&t, &c, NULL);
        size_t n1, n2;
        uint8_t *b1 = slurp(t.path, &n1);
        corpus copy = c;
        clew_arena a;
        clew__arena_init(&a, 64 * 1024, 0);
        copy.traces = clone_traces(&c, &a);
        write_block(&t, &copy, NULL);
        uint8_t *b2 = slurp(t.path, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        /* and the block reads back as the content it was given */
        clew_block *b = open_block(&t);
        clew_error err;
        clew_trace_result *r = NULL;
        assert_int_equal(clew__block_get_trace(b, &c.traces[4].trace_id, &r, &err), CLEW_OK);
        assert_int_equal(r->n_spans, c.traces[4].n_spans);
        clew__trace_result_free(r);
        assert_int_equal(clew__block_verify(b, &err), CLEW_OK);
        clew__block_close(b);
        clew__free(b1);
        clew__free(b2);
        clew__arena_deinit(&a);
        tmpdir_remove(&t);
        corpus_deinit(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip),
        cmocka_unit_test(empty_resources_and_scopes),
        cmocka_unit_test(absent_ids),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(search_matches_memory_store),
        cmocka_unit_test(names_and_unindexed_keys),
        cmocka_unit_test(large_traces_and_numbered_values),
        cmocka_unit_test(checksum_in_every_section),
        cmocka_unit_test(verify_written_reads_every_byte),
        cmocka_unit_test(truncated_everywhere),
        cmocka_unit_test(version_mismatch),
        cmocka_unit_test(crash_points),
        cmocka_unit_test(out_of_memory),
        cmocka_unit_test(same_block_wherever_strings_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
