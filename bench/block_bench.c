/*
 * bench/block_bench.c - bytes on disk per span and read latency of the embedded store's
 * block files, next to plain OTLP protobuf + zstd.
 *
 * Generates a workload of the shape of the design target (design.md §7, "bytes on disk per
 * span"): 8 services with 5 resource attributes each, 40 operations, traces of 5-30 spans,
 * 10 attributes per span with realistic values: user ids drawn from 2 million, URL paths
 * with numeric ids, about 20 SQL statements, a request id unique per trace, client
 * addresses, user agents; about 2% of spans fail. Then:
 *   - baseline: the same traces as OTLP/protobuf requests of ~512 spans (whole traces),
 *     each compressed with zstd at the same level as the block pages;
 *   - block: one block file written by clew__block_write, its size per span and per section;
 *   - reads: get-trace by id (random present ids) and searches, p50/p99.
 *
 * This workload differs from bench/ingest_load.c's (5 operations, 1M user ids, a request
 * id per span): the size target names this shape, so the generator is its own here.
 *
 * Usage: block_bench [--spans N] [--level L] [--page-size BYTES] [--max-per-key K] [--dir DIR]
 *                    [--seed S] [--write-runs N] [--keep 1] [--write-only 1] [--clone 1]
 *                    [--distinct-spans N] [--share 1]
 * --write-runs N writes the block N times (default 1) and reports the median and the
 * fastest, wall and CPU time; --keep 1 leaves the block file in DIR/blocks/bench.block;
 * --write-only 1 skips the OTLP baseline and the reads, so that a profile of the run shows
 * the writer alone.
 * Three options shape the input like what the server's cut hands the writer. Two change
 * only where its strings live, not its content (the block is the same): --share 1 makes
 * the values that repeat per service one shared string each, as the embedded store's head
 * shares them (the cut hands the writer the head's own spans, so the writer can recognise
 * them by address); --clone 1 deep-copies each trace on its own (strings, resources and
 * scope: nothing shared between traces, the worst case for the writer's caches by address).
 * --distinct-spans N generates about N spans and repeats those traces (deep copies) under
 * new trace ids and start times up to --spans, as bench/ingest_load.c resends its
 * pre-encoded requests: every value repeats across traces, the shape of the server's
 * blocks under that load.
 * Exit status 0 on success, 1 on failure, 2 on bad usage. Single-threaded.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/clock.h"
#include "model/model.h"
#include "store/embedded/block.h"
#include "store/embedded/block_format.h"
#include "store/embedded/fileio.h"
#include "store/store.h"

#define N_SERVICES      8
#define OPS_PER_SERVICE 5
#define SPAN_ATTRS      10
#define RESOURCE_ATTRS  5
#define MIN_SPANS       5
#define MAX_SPANS       30

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
    return n == 0 ? 0 : splitmix64(s) % n;
}

static const char *const SERVICES[N_SERVICES] = {"frontend",  "api-gateway", "checkout", "payment",
                                                 "inventory", "shipping",    "users",    "catalog"};

static const char *const OP_TEMPLATES[OPS_PER_SERVICE] = {
    "GET /api/v1/%s/{id}", "POST /api/v1/%s", "GET /api/v1/%s", "%s.process", "SELECT %s",
};

static const char *const SQL[20] = {
    "SELECT * FROM orders WHERE id = $1",
    "SELECT id, status FROM orders WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20",
    "UPDATE orders SET status = $1 WHERE id = $2",
    "INSERT INTO orders (user_id, total, currency) VALUES ($1, $2, $3) RETURNING id",
    "SELECT * FROM users WHERE id = $1",
    "SELECT email, name FROM users WHERE email = $1",
    "UPDATE users SET last_login = now() WHERE id = $1",
    "SELECT sku, qty FROM inventory WHERE sku = ANY($1)",
    "UPDATE inventory SET qty = qty - $1 WHERE sku = $2 AND qty >= $1",
    "SELECT * FROM products WHERE category_id = $1 LIMIT 50",
    "SELECT price FROM prices WHERE sku = $1 AND region = $2",
    "INSERT INTO payments (order_id, amount, provider) VALUES ($1, $2, $3)",
    "SELECT status FROM payments WHERE order_id = $1",
    "INSERT INTO shipments (order_id, carrier) VALUES ($1, $2)",
    "SELECT * FROM shipments WHERE tracking_no = $1",
    "DELETE FROM carts WHERE user_id = $1",
    "SELECT item_id, qty FROM cart_items WHERE cart_id = $1",
    "INSERT INTO cart_items (cart_id, item_id, qty) VALUES ($1, $2, $3)",
    "SELECT count(*) FROM orders WHERE created_at > $1",
    "BEGIN",
};

static const char *const USER_AGENTS[4] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
};

typedef struct workload {
    clew_arena arena;
    clew_resource res[N_SERVICES];
    clew_scope scope;
    clew_str ops[N_SERVICES][OPS_PER_SERVICE];
    clew_block_trace *traces;
    size_t n_traces;
    size_t n_spans;
} workload;

static clew_str lit(const char *s)
{
    clew_str r = {s, strlen(s)};
    return r;
}

static clew_str fmt(clew_arena *a, const char *f, ...) __attribute__((format(printf, 2, 3)));

static clew_str fmt(clew_arena *a, const char *f, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(tmp, sizeof(tmp), f, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    return clew__arena_strdup(a, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void kv_s(clew_kv *kv, const char *k, clew_str v)
{
    kv->key = lit(k);
    kv->value.type = CLEW_VALUE_STRING;
    kv->value.u.s = v;
}

static void kv_i(clew_kv *kv, const char *k, int64_t v)
{
    kv->key = lit(k);
    kv->value.type = CLEW_VALUE_INT;
    kv->value.u.i = v;
}

static void make_resources(workload *w, uint64_t *rng)
{
    clew_arena *a = &w->arena;
    w->scope.name = lit("io.opentelemetry.http-server");
    w->scope.version = lit("1.27.0");
    for (int i = 0; i < N_SERVICES; i++) {
        clew_kv *kv = clew__arena_calloc(a, RESOURCE_ATTRS, sizeof(*kv));
        kv_s(&kv[0], "service.name", lit(SERVICES[i]));
        kv_s(&kv[1], "service.version", fmt(a, "1.%d.%u", i % 7, (unsigned)below(rng, 20)));
        kv_s(&kv[2], "service.instance.id",
             fmt(a, "%s-7f9c6d%04x", SERVICES[i], (unsigned)below(rng, 0x10000)));
        kv_s(&kv[3], "host.name", fmt(a, "node-%d.prod.internal", i % 3));
        kv_s(&kv[4], "telemetry.sdk.language", lit(i % 2 ? "go" : "java"));
        w->res[i].attrs.items = kv;
        w->res[i].attrs.n = RESOURCE_ATTRS;
        for (int o = 0; o < OPS_PER_SERVICE; o++) {
            w->ops[i][o] = fmt(a, OP_TEMPLATES[o], SERVICES[i]);
        }
    }
}

/* --share 1: the values that repeat per service are one string each, shared by every span
 * that has them, as the embedded store's head shares the values that repeat (and as its cut
 * hands them to the writer); otherwise every span has its own copy. */
static bool g_share;
static clew_str g_shared[N_SERVICES][4];

static clew_str per_service(clew_arena *a, int svc, int which, const char *f)
{
    if (g_share && g_shared[svc][which].ptr != NULL) {
        return g_shared[svc][which];
    }
    clew_str s = fmt(a, f, SERVICES[svc]);
    if (g_share) {
        g_shared[svc][which] = s;
    }
    return s;
}

static void span_attrs(clew_arena *a, clew_span_data *sp, int svc, clew_str request_id,
                       uint64_t *rng)
{
    clew_kv *kv = clew__arena_calloc(a, SPAN_ATTRS, sizeof(*kv));
    bool err = sp->status_code == CLEW_STATUS_ERROR;
    clew_str user = fmt(a, "user-%07u", (unsigned)below(rng, 2000000));
    if (sp->kind == CLEW_KIND_SERVER || sp->kind == CLEW_KIND_CLIENT) {
        static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
        kv_s(&kv[0], "http.request.method", lit(methods[below(rng, 4)]));
        kv_s(&kv[1], "url.path",
             fmt(a, "/api/v1/%s/%u", SERVICES[svc], (unsigned)below(rng, 1000000)));
        kv_s(&kv[2], "http.route", per_service(a, svc, 0, "/api/v1/%s/{id}"));
        kv_i(&kv[3], "http.response.status_code", err ? 503 : 200);
        kv_s(&kv[4], "server.address", per_service(a, svc, 1, "%s.prod.svc.cluster.local"));
        kv_i(&kv[5], "server.port", 8080);
        kv_s(&kv[6], "client.address",
             fmt(a, "10.%u.%u.%u", (unsigned)below(rng, 4), (unsigned)below(rng, 256),
                 (unsigned)below(rng, 256)));
        kv_s(&kv[7], "user_agent.original", lit(USER_AGENTS[below(rng, 4)]));
        kv_s(&kv[8], "enduser.id", user);
        kv_s(&kv[9], "app.request.id", request_id);
    } else {
        static const char *const regions[] = {"eu-west-1", "us-east-1", "ap-south-1"};
        kv_s(&kv[0], "db.system", lit("postgresql"));
        kv_s(&kv[1], "db.statement", lit(SQL[below(rng, 20)]));
        kv_s(&kv[2], "db.name", per_service(a, svc, 2, "%s_db"));
        kv_s(&kv[3], "code.function", per_service(a, svc, 3, "%s.handler.process_item"));
        kv_i(&kv[4], "thread.id", 1 + (int64_t)below(rng, 64));
        kv[5].key = lit("app.cache.hit");
        kv[5].value.type = CLEW_VALUE_BOOL;
        kv[5].value.u.b = below(rng, 3) != 0;
        kv[6].key = lit("app.order.amount");
        kv[6].value.type = CLEW_VALUE_DOUBLE;
        kv[6].value.u.d = (double)below(rng, 100000) / 100.0;
        kv_s(&kv[7], "enduser.id", user);
        kv_s(&kv[8], "app.request.id", request_id);
        kv_s(&kv[9], "cloud.region", lit(regions[below(rng, 3)]));
    }
    sp->attrs.items = kv;
    sp->attrs.n = SPAN_ATTRS;
}

static void make_trace(workload *w, clew_block_trace *bt, unsigned n, uint64_t t0, uint64_t *rng)
{
    clew_arena *a = &w->arena;
    clew_span_data *spans = clew__arena_calloc(a, n, sizeof(*spans));
    const clew_span_data **ptrs = clew__arena_calloc(a, n, sizeof(*ptrs));
    int svc_of[MAX_SPANS];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = splitmix64(rng);
        memcpy(&bt->trace_id.bytes[i], &r, 8);
    }
    clew_str request_id = fmt(a, "req-%016" PRIx64, splitmix64(rng));
    for (unsigned i = 0; i < n; i++) {
        clew_span_data *sp = &spans[i];
        sp->trace_id = bt->trace_id;
        uint64_t r = splitmix64(rng) | 1;
        memcpy(sp->span_id.bytes, &r, 8);
        sp->flags = CLEW_FLAG_SAMPLED | CLEW_FLAG_HAS_IS_REMOTE;
        sp->scope = &w->scope;
        int svc;
        if (i == 0) {
            svc = (int)below(rng, 2);
            sp->kind = CLEW_KIND_SERVER;
            sp->start_ns = t0;
            sp->end_ns = t0 + 5000000 + below(rng, 300000000);
        } else {
            unsigned p = (unsigned)below(rng, i);
            const clew_span_data *parent = &spans[p];
            sp->parent_span_id = parent->span_id;
            svc = below(rng, 2) == 0 ? (int)below(rng, N_SERVICES) : svc_of[p];
            if (svc != svc_of[p]) {
                sp->kind = CLEW_KIND_SERVER;
            } else {
                static const clew_span_kind same[] = {CLEW_KIND_CLIENT, CLEW_KIND_INTERNAL,
                                                      CLEW_KIND_CLIENT, CLEW_KIND_INTERNAL,
                                                      CLEW_KIND_PRODUCER};
                sp->kind = same[below(rng, 5)];
            }
            uint64_t dur = parent->end_ns - parent->start_ns;
            sp->start_ns = parent->start_ns + below(rng, dur / 2 + 1);
            sp->end_ns = sp->start_ns + 1 + below(rng, parent->end_ns - sp->start_ns);
        }
        svc_of[i] = svc;
        sp->resource = &w->res[svc];
        sp->name = w->ops[svc][below(rng, OPS_PER_SERVICE)];
        if (below(rng, 50) == 0) {
            sp->status_code = CLEW_STATUS_ERROR;
            sp->status_message = lit("upstream returned 503 Service Unavailable");
        }
        span_attrs(a, sp, svc, request_id, rng);
        ptrs[i] = sp;
    }
    bt->spans = ptrs;
    bt->n_spans = n;
    bt->meta.state = CLEW_TRACE_KEPT;
    bt->meta.adjusted_count = 1.0;
    bt->meta.kept_reason = lit("");
    bt->meta.tenant = lit("");
}

/* Deep copy of trace `src` into `a`, with its own resources and scope (as a store that copies
 * its traces out hands them over), under trace id `id` and shifted to start `shift` ns
 * later. */
static void clone_trace(clew_arena *a, clew_block_trace *dst, const clew_block_trace *src,
                        const clew_trace_id *id, uint64_t shift)
{
    clew_span_data *spans = clew__arena_calloc(a, src->n_spans, sizeof(*spans));
    const clew_span_data **ptrs = clew__arena_calloc(a, src->n_spans, sizeof(*ptrs));
    clew_resource *res = clew__arena_calloc(a, N_SERVICES, sizeof(*res));
    clew_scope *scope = clew__arena_calloc(a, 1, sizeof(*scope));
    const clew_resource *res_src[N_SERVICES] = {NULL};
    if (spans == NULL || ptrs == NULL || res == NULL || scope == NULL ||
        clew__scope_clone(scope, src->spans[0]->scope, a) != CLEW_OK) {
        fprintf(stderr, "block_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < src->n_spans; i++) {
        const clew_span_data *sp = src->spans[i];
        if (clew__span_clone(&spans[i], sp, a) != CLEW_OK) {
            fprintf(stderr, "block_bench: out of memory\n");
            exit(1);
        }
        spans[i].trace_id = *id;
        spans[i].start_ns += shift;
        spans[i].end_ns += shift;
        spans[i].scope = scope;
        size_t r = 0;
        while (r < N_SERVICES && res_src[r] != NULL && res_src[r] != sp->resource) {
            r++;
        }
        if (r < N_SERVICES && res_src[r] == NULL) {
            res_src[r] = sp->resource;
            if (clew__resource_clone(&res[r], sp->resource, a) != CLEW_OK) {
                fprintf(stderr, "block_bench: out of memory\n");
                exit(1);
            }
        }
        spans[i].resource = &res[r];
        ptrs[i] = &spans[i];
    }
    *dst = *src;
    dst->trace_id = *id;
    dst->spans = ptrs;
}

/* --distinct-spans and --clone: the traces beyond the first `n_distinct` repeat those under
 * new ids, and with `clone` every trace is a deep copy of its own. */
static void reshape_workload(workload *w, size_t spans, size_t n_distinct, bool clone,
                             uint64_t *rng)
{
    size_t n_gen = w->n_traces;
    if (n_distinct == 0 || n_distinct > n_gen) {
        n_distinct = n_gen;
    }
    if (!clone && w->n_spans >= spans) {
        return; /* nothing to repeat, nothing to copy */
    }
    clew_block_trace *out = clew__calloc(spans / MIN_SPANS + 1, sizeof(*out));
    if (out == NULL) {
        fprintf(stderr, "block_bench: out of memory\n");
        exit(1);
    }
    size_t n = 0, total = 0;
    uint64_t t0 = w->traces[0].spans[0]->start_ns;
    while (total < spans && n < spans / MIN_SPANS + 1) {
        const clew_block_trace *src = &w->traces[n % n_distinct];
        clew_trace_id id = src->trace_id;
        if (n >= n_distinct) {
            for (int i = 0; i < 16; i += 8) {
                uint64_t r = splitmix64(rng);
                memcpy(&id.bytes[i], &r, 8);
            }
        }
        uint64_t shift = t0 + (uint64_t)n * 1000000 - src->spans[0]->start_ns;
        if (clone || n >= n_distinct) {
            clone_trace(&w->arena, &out[n], src, &id, shift);
        } else {
            out[n] = *src;
        }
        total += src->n_spans;
        n++;
    }
    clew__free(w->traces);
    w->traces = out;
    w->n_traces = n;
    w->n_spans = total;
}

static void make_workload(workload *w, size_t spans, size_t n_distinct, bool clone, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    clew__arena_init(&w->arena, 1u << 20, 0);
    uint64_t rng = seed;
    make_resources(w, &rng);
    size_t cap = spans / MIN_SPANS + 1;
    size_t gen = n_distinct > 0 && n_distinct < spans ? n_distinct : spans;
    w->traces = clew__calloc(cap, sizeof(*w->traces));
    uint64_t t0 = 1700000000000000000ull;
    while (w->n_spans < gen && w->n_traces < cap) {
        unsigned n = MIN_SPANS + (unsigned)below(&rng, MAX_SPANS - MIN_SPANS + 1);
        /* a steady stream of requests, 1 ms apart */
        make_trace(w, &w->traces[w->n_traces], n, t0 + (uint64_t)w->n_traces * 1000000, &rng);
        w->n_spans += n;
        w->n_traces++;
    }
    size_t n_traces = w->n_traces;
    reshape_workload(w, spans, gen < spans ? n_traces : 0, clone, &rng);
}

/* ---- the baseline ---- */

static size_t otlp_zstd_bytes(const workload *w, int level, size_t *raw_out)
{
    size_t total = 0, raw = 0;
    clew_arena a;
    clew__arena_init(&a, 1u << 20, 0);
    clew_buf out;
    clew__buf_init(&out, 0);
    const clew_span_data **ptrs = clew__calloc(512 + MAX_SPANS, sizeof(*ptrs));
    void *z = clew__malloc(ZSTD_compressBound(8u << 20));
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t t = 0;
    while (t < w->n_traces) {
        size_t n = 0;
        while (t < w->n_traces && n < 512) {
            for (size_t i = 0; i < w->traces[t].n_spans; i++) {
                ptrs[n++] = w->traces[t].spans[i];
            }
            t++;
        }
        clew_batch b;
        clew__arena_reset(&a);
        clew__buf_reset(&out);
        if (clew__batch_from_spans(&b, ptrs, n, &a) != CLEW_OK ||
            clew__otlp_pb_encode(&b, &out) != CLEW_OK) {
            fprintf(stderr, "block_bench: OTLP encoding failed\n");
            exit(1);
        }
        size_t zn =
            ZSTD_compressCCtx(cctx, z, ZSTD_compressBound(8u << 20), out.data, out.len, level);
        if (ZSTD_isError(zn)) {
            fprintf(stderr, "block_bench: zstd failed\n");
            exit(1);
        }
        total += zn;
        raw += out.len;
    }
    ZSTD_freeCCtx(cctx);
    clew__free(z);
    clew__free(ptrs);
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
    *raw_out = raw;
    return total;
}

/* ---- timing ---- */

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report_latency(const char *what, uint64_t *ns, size_t n)
{
    qsort(ns, n, sizeof(*ns), u64_cmp);
    printf("  %-40s p50 %8.1f us   p99 %8.1f us   (%zu runs)\n", what, (double)ns[n / 2] / 1e3,
           (double)ns[(n * 99) / 100] / 1e3, n);
}

static void time_search(clew_block *b, const char *what, const clew_search_query *q, size_t runs)
{
    uint64_t *ns = clew__calloc(runs, sizeof(*ns));
    size_t found = 0;
    for (size_t i = 0; i < runs; i++) {
        clew_search_result *r = NULL;
        clew_error err;
        uint64_t t0 = clew__now_mono_ns();
        clew_status rc = clew__block_search(b, q, &r, &err);
        ns[i] = clew__now_mono_ns() - t0;
        if (rc != CLEW_OK) {
            fprintf(stderr, "block_bench: search failed: %s\n", err.msg);
            exit(1);
        }
        found = r->n_traces;
        clew__search_result_free(r);
    }
    char label[128];
    snprintf(label, sizeof(label), "%s (%zu hits)", what, found);
    report_latency(label, ns, runs);
    clew__free(ns);
}

/* CPU time of this (single-threaded) process: user + system, page faults included. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The unindexed keys, then get-trace and search latencies on the block at `path`; 0 on
 * success. */
static int run_reads(const workload *wl, const char *path, uint64_t seed)
{
    clew_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc;
    clew_block *b = NULL;
    if (clew__block_open(clew__fileio_posix(), path, &b, &err) != CLEW_OK) {
        fprintf(stderr, "block_bench: open failed: %s\n", err.msg);
        return 1;
    }
    clew_name_list *un = NULL;
    if (clew__block_unindexed_keys(b, &un, &err) == CLEW_OK) {
        printf("  keys not fully indexed:");
        for (size_t i = 0; i < un->n; i++) {
            printf(" %.*s", (int)un->names[i].len, un->names[i].ptr);
        }
        printf("%s\n", un->n ? "" : " none");
        clew__name_list_free(un);
    }
    printf("reads (one block, warm page cache):\n");
    size_t runs = 2000;
    uint64_t *ns = clew__calloc(runs, sizeof(*ns));
    uint64_t rng = seed ^ 0x5555;
    for (size_t i = 0; i < runs; i++) {
        const clew_block_trace *bt = &wl->traces[below(&rng, wl->n_traces)];
        clew_trace_result *r = NULL;
        uint64_t s0 = clew__now_mono_ns();
        rc = clew__block_get_trace(b, &bt->trace_id, &r, &err);
        ns[i] = clew__now_mono_ns() - s0;
        if (rc != CLEW_OK || r->n_spans != bt->n_spans) {
            fprintf(stderr, "block_bench: get_trace failed: %s\n", err.msg);
            return 1;
        }
        clew__trace_result_free(r);
    }
    report_latency("get trace by id", ns, runs);
    clew__free(ns);

    clew_search_query q;
    memset(&q, 0, sizeof(q));
    q.service = lit("payment");
    time_search(b, "search service=payment", &q, 200);
    q.operation = wl->ops[3][0];
    time_search(b, "search service+operation", &q, 200);
    memset(&q, 0, sizeof(q));
    q.tags[0].key = lit("db.statement");
    q.tags[0].value = lit(SQL[7]);
    q.n_tags = 1;
    time_search(b, "search db.statement (no service)", &q, 200);
    /* a user id that exists: the first span attribute of a known trace */
    const clew_span_data *sp = wl->traces[wl->n_traces / 2].spans[0];
    q.tags[0].key = lit("enduser.id");
    q.tags[0].value = sp->attrs.items[8].value.u.s;
    time_search(b, "search enduser.id (no service)", &q, 20);
    q.tags[0].key = lit("http.response.status_code");
    q.tags[0].value = lit("503");
    q.service = lit("checkout");
    time_search(b, "search service + status 503", &q, 50);
    clew__block_close(b);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: block_bench [--spans N] [--level L] [--page-size BYTES] "
                    "[--max-per-key K] [--dir DIR] [--seed S] [--write-runs N] [--keep 1] "
                    "[--write-only 1] [--clone 1] [--distinct-spans N] [--share 1]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    size_t spans = 200000;
    int level = 0;
    size_t max_per_key = 0;
    size_t page_size = 0;
    uint64_t seed = 42;
    size_t write_runs = 1;
    bool keep = false;
    bool write_only = false;
    bool clone = false;
    size_t n_distinct = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage();
        }
        char *end = NULL;
        unsigned long long v = strtoull(argv[i + 1], &end, 10);
        if (strcmp(argv[i], "--dir") == 0) {
            dir = argv[++i];
            continue;
        }
        if (end == argv[i + 1] || *end != '\0') {
            usage();
        }
        if (strcmp(argv[i], "--spans") == 0) {
            spans = (size_t)v;
        } else if (strcmp(argv[i], "--level") == 0) {
            level = (int)v;
        } else if (strcmp(argv[i], "--page-size") == 0) {
            page_size = (size_t)v;
        } else if (strcmp(argv[i], "--max-per-key") == 0) {
            max_per_key = (size_t)v;
        } else if (strcmp(argv[i], "--seed") == 0) {
            seed = v;
        } else if (strcmp(argv[i], "--write-runs") == 0 && v > 0 && v <= 1000) {
            write_runs = (size_t)v;
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = v != 0;
        } else if (strcmp(argv[i], "--write-only") == 0) {
            write_only = v != 0;
        } else if (strcmp(argv[i], "--share") == 0) {
            g_share = v != 0;
        } else if (strcmp(argv[i], "--clone") == 0) {
            clone = v != 0;
        } else if (strcmp(argv[i], "--distinct-spans") == 0) {
            n_distinct = (size_t)v;
        } else {
            usage();
        }
        i++;
    }
    char tmpl[] = "/tmp/clew-block-bench-XXXXXX";
    char blocks[512], path[600];
    if (dir == NULL) {
        dir = mkdtemp(tmpl);
        if (dir == NULL) {
            perror("block_bench: mkdtemp");
            return 1;
        }
    }
    snprintf(blocks, sizeof(blocks), "%s/blocks", dir);
    mkdir(blocks, 0700);
    snprintf(path, sizeof(path), "%s/bench.block", blocks);

    workload w;
    make_workload(&w, spans, n_distinct, clone, seed);
    clew_block_write_options opt = {
        .zstd_level = level, .max_values_per_key = max_per_key, .page_size = page_size};
    int zl = level ? level : 2; /* the writer's default */
    printf("workload: %zu spans in %zu traces, %d services, %d operations, %d attributes/span\n",
           w.n_spans, w.n_traces, N_SERVICES, N_SERVICES * OPS_PER_SERVICE, SPAN_ATTRS);

    if (!write_only) {
        size_t raw = 0;
        size_t base = otlp_zstd_bytes(&w, zl, &raw);
        printf("OTLP protobuf:                 %10zu bytes  %7.1f B/span\n", raw,
               (double)raw / (double)w.n_spans);
        printf("OTLP protobuf + zstd -%-2d:      %10zu bytes  %7.1f B/span  (512-span requests)\n",
               zl, base, (double)base / (double)w.n_spans);
    }

    clew_error err;
    memset(&err, 0, sizeof(err));
    /* the write, `write_runs` times (the same block, replaced each time): the median wall
     * time is the headline, and the CPU time the write itself used, which a machine
     * shared with other work does not inflate the way it inflates the wall time */
    uint64_t *wall = clew__calloc(write_runs, sizeof(*wall));
    uint64_t *cpu = clew__calloc(write_runs, sizeof(*cpu));
    if (wall == NULL || cpu == NULL) {
        fprintf(stderr, "block_bench: out of memory\n");
        return 1;
    }
    clew_status rc = CLEW_OK;
    for (size_t r = 0; r < write_runs; r++) {
        uint64_t c0 = cpu_ns();
        uint64_t t0 = clew__now_mono_ns();
        rc =
            clew__block_write(clew__fileio_posix(), dir, "bench", w.traces, w.n_traces, &opt, &err);
        wall[r] = clew__now_mono_ns() - t0;
        cpu[r] = cpu_ns() - c0;
        if (rc != CLEW_OK) {
            fprintf(stderr, "block_bench: write failed: %s\n", err.msg);
            return 1;
        }
    }
    qsort(wall, write_runs, sizeof(*wall), u64_cmp);
    qsort(cpu, write_runs, sizeof(*cpu), u64_cmp);
    uint64_t wt = wall[write_runs / 2];
    struct stat st;
    stat(path, &st);
    printf("block (zstd -%-2d):              %10lld bytes  %7.1f B/span  (written in %.2f s, "
           "%.0f spans/s)\n",
           zl, (long long)st.st_size, (double)st.st_size / (double)w.n_spans, (double)wt / 1e9,
           (double)w.n_spans / ((double)wt / 1e9));
    printf("  write: %zu run(s), wall median %.3f s min %.3f s; CPU median %.3f s min %.3f s "
           "(%.0f spans/s per CPU second)\n",
           write_runs, (double)wt / 1e9, (double)wall[0] / 1e9, (double)cpu[write_runs / 2] / 1e9,
           (double)cpu[0] / 1e9, (double)w.n_spans / ((double)cpu[write_runs / 2] / 1e9));
    clew__free(wall);
    clew__free(cpu);

    /* per-section sizes, straight from the footer */
    FILE *f = fopen(path, "rb");
    uint8_t footer[BLK_FOOTER_SIZE];
    if (f == NULL || fseek(f, -(long)BLK_FOOTER_SIZE, SEEK_END) != 0 ||
        fread(footer, 1, sizeof(footer), f) != sizeof(footer)) {
        fprintf(stderr, "block_bench: cannot read the footer\n");
        return 1;
    }
    fclose(f);
    static const char *const names[BLK_N_SECTIONS] = {
        "page table", "trace index", "bloom",     "summaries", "strings",  "services",
        "operations", "keys",        "resources", "terms",     "postings", "values",
    };
    uint64_t meta = 0;
    for (int s = 0; s < BLK_N_SECTIONS; s++) {
        meta += blk_get_u64(footer + 40 + (size_t)s * BLK_SECTION_ENTRY + 8);
    }
    uint64_t pages = (uint64_t)st.st_size - meta - BLK_HEADER_SIZE - BLK_FOOTER_SIZE;
    printf("  %-12s %10" PRIu64 " bytes  %6.2f B/span\n", "pages", pages,
           (double)pages / (double)w.n_spans);
    for (int s = 0; s < BLK_N_SECTIONS; s++) {
        uint64_t n = blk_get_u64(footer + 40 + (size_t)s * BLK_SECTION_ENTRY + 8);
        printf("  %-12s %10" PRIu64 " bytes  %6.2f B/span\n", names[s], n,
               (double)n / (double)w.n_spans);
    }

    if (!write_only && run_reads(&w, path, seed) != 0) {
        return 1;
    }
    if (keep) {
        printf("block kept: %s\n", path);
    } else {
        unlink(path);
        rmdir(blocks);
        if (dir == tmpl) {
            rmdir(dir);
        }
    }
    clew__free(w.traces);
    clew__arena_deinit(&w.arena);
    return 0;
}
