/*
 * tests/fuzz/fuzz_query_params.c - arbitrary bytes as the query string or the path
 * suffix of every query endpoint, on a small memory store. Must never crash, leak
 * or produce invalid output; the first input byte picks the endpoint and whether
 * the rest is the query string or the end of the path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "query/api.h"
#include "store/store.h"

static clew_store *store;

static void fill(clew_store *st)
{
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_resource res;
    memset(&res, 0, sizeof(res));
    clew_kv kv;
    kv.key = clew__arena_strdup(&a, "service.name", 12);
    kv.value.type = CLEW_VALUE_STRING;
    kv.value.u.s = clew__arena_strdup(&a, "svc", 3);
    res.attrs.items = &kv;
    res.attrs.n = 1;
    clew_scope sc;
    memset(&sc, 0, sizeof(sc));
    clew_span_data spans[3];
    memset(spans, 0, sizeof(spans));
    for (int i = 0; i < 3; i++) {
        /* trace ids 0..01 and 0..02 (64-bit), span ids 1..3 */
        spans[i].trace_id.bytes[15] = (uint8_t)(1 + (i == 2));
        spans[i].span_id.bytes[7] = (uint8_t)(i + 1);
        if (i == 1) {
            spans[i].parent_span_id.bytes[7] = 1;
        }
        spans[i].name = clew__arena_strdup(&a, i ? "child" : "GET /", i ? 5 : 5);
        spans[i].kind = (clew_span_kind)(i + 1);
        spans[i].start_ns = 1700000000000000000ull + (uint64_t)i * 1000000;
        spans[i].end_ns = spans[i].start_ns + 5000000;
        spans[i].attrs.items = &kv;
        spans[i].attrs.n = 1;
        spans[i].resource = &res;
        spans[i].scope = &sc;
    }
    clew_scope_spans ss = {&sc, spans, 3};
    clew_resource_spans rs = {&res, &ss, 1};
    clew_batch b;
    memset(&b, 0, sizeof(b));
    b.rs = &rs;
    b.n_rs = 1;
    b.n_spans = 3;
    if (st->ops->append(st, &b, NULL, NULL, NULL) != CLEW_OK) {
        abort();
    }
    clew__arena_deinit(&a);
}

static void cleanup(void)
{
    clew__store_destroy(store);
    store = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {
        "/api/traces",      "/api/traces/",       "/api/services",
        "/api/services/",   "/api/operations",    "/api/v3/traces/",
        "/api/v3/services", "/api/v3/operations", "/api/v3/traces",
    };
    const size_t n_paths = sizeof(paths) / sizeof(paths[0]);
    if (store == NULL) {
        clew_memory_store_config cfg = {100, 0};
        if (clew__memory_store_create(&cfg, &store) != CLEW_OK) {
            abort();
        }
        fill(store);
        atexit(cleanup);
    }
    if (size == 0) {
        return 0;
    }
    /* low nibble: the endpoint; bit 4: the rest is a path suffix, not the query */
    const char *base = paths[(data[0] & 0x0f) % n_paths];
    bool as_path = (data[0] & 0x10) != 0;
    data++;
    size--;

    char *path = NULL;
    clew_api_request req = {"GET", {base, strlen(base)}, {(const char *)data, size}};
    if (as_path) {
        /* the rest is the end of the path ("/operations" appended for the service route) */
        size_t bl = strlen(base);
        const char *suffix = strcmp(base, "/api/services/") == 0 ? "/operations" : "";
        size_t sl = strlen(suffix);
        path = clew__malloc(bl + size + sl + 1);
        if (path == NULL) {
            return 0;
        }
        memcpy(path, base, bl);
        if (size) {
            memcpy(path + bl, data, size);
        }
        memcpy(path + bl + size, suffix, sl + 1);
        req.path = (clew_str){path, bl + size + sl};
        req.query = (clew_str){"", 0};
    }
    clew_api_response resp;
    clew__api_response_init(&resp);
    clew_status rc = clew__api_handle(store, &req, &resp);
    if (rc == CLEW_OK) {
        /* every answer is a JSON object with a status the server can send */
        if (resp.status < 200 || resp.status > 599 || resp.body.len == 0 ||
            resp.body.data[0] != '{' || resp.body.data[resp.body.len - 1] != '}') {
            abort();
        }
    } else if (rc != CLEW_ENOTFOUND || resp.body.len != 0) {
        abort();
    }
    clew__api_response_deinit(&resp);
    clew__free(path);
    return 0;
}
