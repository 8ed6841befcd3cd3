/*
 * bench/codec_bench.c - micro benchmark of the OTLP codecs.
 *
 * Builds one ExportTraceServiceRequest of 512 realistic spans (10 attributes
 * each, about 500 bytes per span on the wire, the shape of an HTTP server's
 * spans), then times repeated protobuf decodes and encodes and JSON encodes and
 * decodes, printing nanoseconds per span and MB/s of wire bytes. The decode loop
 * reuses one arena (reset between requests), as the server does per request.
 *
 * Usage: codec_bench [iterations]   (default 2000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/otlp.h"
#include "common/arena.h"
#include "common/buf.h"
#include "model/model.h"

#define N_SPANS 512
#define N_ATTRS 10

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static clew_str str(const char *s)
{
    return (clew_str){s, strlen(s)};
}

/* Builds the batch in `a`; strings point at static text or into `a`. */
static void build(clew_arena *a, clew_batch *b)
{
    static const char *const routes[] = {"/api/v1/users/{id}", "/api/v1/orders",
                                         "/api/v1/cart/items", "/healthz"};
    static clew_kv rattrs[3];
    rattrs[0] = (clew_kv){str("service.name"), {.type = CLEW_VALUE_STRING}};
    rattrs[0].value.u.s = str("checkout-frontend");
    rattrs[1] = (clew_kv){str("service.version"), {.type = CLEW_VALUE_STRING}};
    rattrs[1].value.u.s = str("2.14.1");
    rattrs[2] = (clew_kv){str("host.name"), {.type = CLEW_VALUE_STRING}};
    rattrs[2].value.u.s = str("ip-10-0-12-34.eu-west-1.compute.internal");
    static clew_resource res;
    res = (clew_resource){{rattrs, 3, 0}, str("https://opentelemetry.io/schemas/1.24.0")};
    static clew_scope scope;
    scope = (clew_scope){str("io.opentelemetry.http"), str("1.32.0"), {NULL, 0, 0}, str("")};

    clew_span_data *spans = clew__arena_calloc(a, N_SPANS, sizeof(clew_span_data));
    uint64_t x = 0x243f6a8885a308d3ull;
    for (int i = 0; i < N_SPANS; i++) {
        clew_span_data *s = &spans[i];
        for (int k = 0; k < 16; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            s->trace_id.bytes[k] = (uint8_t)(x >> 56);
        }
        for (int k = 0; k < 8; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            s->span_id.bytes[k] = (uint8_t)(x >> 56);
            s->parent_span_id.bytes[k] = (uint8_t)(x >> 48);
        }
        const char *route = routes[i % 4];
        char *name = clew__arena_alloc(a, 64);
        snprintf(name, 64, "GET %s", route);
        s->name = str(name);
        s->trace_state = str("");
        s->status_message = str("");
        s->kind = CLEW_KIND_SERVER;
        s->flags = CLEW_FLAG_SAMPLED | CLEW_FLAG_HAS_IS_REMOTE;
        s->start_ns = 1700000000000000000ull + (uint64_t)i * 1000003;
        s->end_ns = s->start_ns + 1234567;
        s->resource = &res;
        s->scope = &scope;
        clew_kv *kv = clew__arena_calloc(a, N_ATTRS, sizeof(clew_kv));
        static const char *const keys[N_ATTRS] = {
            "http.request.method",    "url.path",       "http.route",
            "server.address",         "server.port",    "http.response.status_code",
            "user_agent.original",    "client.address", "network.protocol.version",
            "http.response.body.size"};
        for (int k = 0; k < N_ATTRS; k++) {
            kv[k].key = str(keys[k]);
            kv[k].value.type = CLEW_VALUE_STRING;
        }
        kv[0].value.u.s = str("GET");
        char *path = clew__arena_alloc(a, 64);
        snprintf(path, 64, "/api/v1/users/%d", 100000 + i);
        kv[1].value.u.s = str(path);
        kv[2].value.u.s = str(route);
        kv[3].value.u.s = str("shop.example.com");
        kv[4].value.type = CLEW_VALUE_INT;
        kv[4].value.u.i = 443;
        kv[5].value.type = CLEW_VALUE_INT;
        kv[5].value.u.i = i % 50 ? 200 : 500;
        kv[6].value.u.s = str("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                              "Gecko) Chrome/126.0 Safari/537.36");
        kv[7].value.u.s = str("203.0.113.57");
        kv[8].value.u.s = str("1.1");
        kv[9].value.type = CLEW_VALUE_INT;
        kv[9].value.u.i = 1024 + i;
        s->attrs = (clew_attrs){kv, N_ATTRS, 0};
        if (i % 50 == 0) {
            s->status_code = CLEW_STATUS_ERROR;
            s->status_message = str("upstream returned 500");
        }
    }
    const clew_span_data **ptrs = clew__arena_calloc(a, N_SPANS, sizeof(*ptrs));
    for (int i = 0; i < N_SPANS; i++) {
        ptrs[i] = &spans[i];
    }
    if (clew__batch_from_spans(b, ptrs, N_SPANS, a) != CLEW_OK) {
        fprintf(stderr, "batch_from_spans failed\n");
        exit(1);
    }
}

static void report(const char *what, double secs, int iters, size_t bytes)
{
    double per_span = secs * 1e9 / ((double)iters * N_SPANS);
    double mbs = (double)bytes * iters / secs / 1e6;
    printf("%-12s %8.1f ns/span  %8.0f MB/s  %10.0f spans/s\n", what, per_span, mbs,
           (double)iters * N_SPANS / secs);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2000;
    if (iters <= 0) {
        iters = 2000;
    }
    clew_arena build_arena, arena;
    clew__arena_init(&build_arena, 1 << 16, 0);
    clew__arena_init(&arena, 1 << 20, 64u << 20);
    clew_batch b, d;
    build(&build_arena, &b);

    clew_buf pb, json;
    clew__buf_init(&pb, 0);
    clew__buf_init(&json, 0);
    if (clew__otlp_pb_encode(&b, &pb) != CLEW_OK || clew__otlp_json_encode(&b, &json) != CLEW_OK) {
        fprintf(stderr, "encode failed\n");
        return 1;
    }
    printf("request: %d spans x %d attributes, protobuf %zu bytes (%.0f B/span), JSON %zu bytes\n",
           N_SPANS, N_ATTRS, pb.len, (double)pb.len / N_SPANS, json.len);

    clew_error err;
    double t0 = now_s();
    for (int i = 0; i < iters; i++) {
        clew__arena_reset(&arena);
        if (clew__otlp_pb_decode((const uint8_t *)pb.data, pb.len, &arena, &d, &err) != CLEW_OK ||
            d.n_spans != N_SPANS) {
            fprintf(stderr, "decode failed: %s\n", err.msg);
            return 1;
        }
    }
    report("pb decode", now_s() - t0, iters, pb.len);

    clew_buf out;
    clew__buf_init(&out, 0);
    t0 = now_s();
    for (int i = 0; i < iters; i++) {
        clew__buf_reset(&out);
        if (clew__otlp_pb_encode(&b, &out) != CLEW_OK) {
            return 1;
        }
    }
    report("pb encode", now_s() - t0, iters, pb.len);

    int jiters = iters / 10 > 0 ? iters / 10 : 1;
    t0 = now_s();
    for (int i = 0; i < jiters; i++) {
        clew__buf_reset(&out);
        if (clew__otlp_json_encode(&b, &out) != CLEW_OK) {
            return 1;
        }
    }
    report("json encode", now_s() - t0, jiters, json.len);

    t0 = now_s();
    for (int i = 0; i < jiters; i++) {
        clew__arena_reset(&arena);
        if (clew__otlp_json_decode(json.data, json.len, &arena, &d, &err) != CLEW_OK) {
            fprintf(stderr, "json decode failed: %s\n", err.msg);
            return 1;
        }
    }
    report("json decode", now_s() - t0, jiters, json.len);

    clew__buf_deinit(&out);
    clew__buf_deinit(&pb);
    clew__buf_deinit(&json);
    clew__arena_deinit(&arena);
    clew__arena_deinit(&build_arena);
    return 0;
}
