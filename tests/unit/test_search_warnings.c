/*
 * tests/unit/test_search_warnings.c - "attribute values too long or too many to index are
 * stored but not indexed, and the API says so": a real embedded store cuts traces whose
 * `payload` attribute is longer than the block's indexing limit; a search by that attribute
 * (without a service name) still finds the trace, by scanning, and both query APIs carry a
 * warning naming the attribute. A search by an indexed attribute carries none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "query/api.h"
#include "store/embedded/embedded_store.h"
#include "store_fixtures.h"

/* The append callback runs on the WAL's thread. */
static void on_ack(clew_status rc, void *ud)
{
    atomic_store((_Atomic int *)ud, rc == CLEW_OK ? 1 : 2);
}

static void append_wait(clew_store *s, const clew_batch *b)
{
    _Atomic int done = 0;
    assert_int_equal(s->ops->append(s, b, NULL, on_ack, (void *)&done), CLEW_OK);
    for (int i = 0; i < 5000 && atomic_load(&done) == 0; i++) {
        usleep(1000);
    }
    assert_int_equal(atomic_load(&done), 1);
}

static char *api_get(clew_store *s, const char *path, const char *query, int *status)
{
    clew_api_request req = {"GET", {path, strlen(path)}, {query, strlen(query)}};
    clew_api_response resp;
    clew__api_response_init(&resp);
    assert_int_equal(clew__api_handle(s, &req, &resp), CLEW_OK);
    *status = resp.status ? resp.status : 200;
    char *out = calloc(1, resp.body.len + 1);
    assert_non_null(out);
    memcpy(out, resp.body.data, resp.body.len);
    clew__api_response_deinit(&resp);
    return out;
}

static void test_unindexed_attribute_is_scanned_and_reported(void **state)
{
    (void)state;
    char dir[] = "/tmp/clew-warn-XXXXXX";
    assert_non_null(mkdtemp(dir));
    clew_embedded_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    cfg.manual_cut = true;
    clew_store *s = NULL;
    assert_int_equal(clew__embedded_store_create(&cfg, &s, NULL), CLEW_OK);

    clew_arena a;
    clew__arena_init(&a, 8192, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u;
    char long_value[400];
    memset(long_value, 'x', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    memcpy(long_value, "needle-", 7);
    clew_span_data sp[2] = {mk_span(&a, tid(7, 1), 1, 0, "upload", now, now + 1000),
                            mk_span(&a, tid(7, 2), 2, 0, "upload", now, now + 1000)};
    for (int i = 0; i < 2; i++) {
        sp[i].attrs.items = clew__arena_calloc(&a, 2, sizeof(clew_kv));
        sp[i].attrs.items[sp[i].attrs.n++] = kv_str(&a, "payload", i == 0 ? long_value : "short");
        sp[i].attrs.items[sp[i].attrs.n++] = kv_str(&a, "tier", i == 0 ? "gold" : "free");
    }
    clew_batch b = mk_batch(&a, mk_res(&a, "uploader", NULL, NULL), NULL, sp, 2);
    append_wait(s, &b);
    size_t cut = 0;
    assert_int_equal(clew__embedded_store_cut(s, &cut), CLEW_OK);
    assert_int_equal(cut, 2);
    assert_int_equal(clew__embedded_store_n_blocks(s), 1);

    /* the store: found by scanning, with a warning naming the attribute */
    clew_search_query q;
    memset(&q, 0, sizeof(q));
    q.tags[0].key = S(&a, "payload");
    q.tags[0].value = S(&a, long_value);
    q.n_tags = 1;
    clew_search_result *r = NULL;
    assert_int_equal(s->ops->search(s, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, 1);
    assert_memory_equal(r->traces[0].trace_id.bytes, tid(7, 1).bytes, 16);
    assert_int_equal(r->n_warnings, 1);
    char w[512];
    snprintf(w, sizeof(w), "%.*s", (int)r->warnings[0].len, r->warnings[0].ptr);
    assert_non_null(strstr(w, "attribute 'payload' is not indexed in 1 of 1 blocks"));
    clew__search_result_free(r);

    /* an indexed attribute: no warning */
    q.tags[0].key = S(&a, "tier");
    q.tags[0].value = S(&a, "gold");
    assert_int_equal(s->ops->search(s, &q, &r), CLEW_OK);
    assert_int_equal(r->n_traces, 1);
    assert_int_equal(r->n_warnings, 0);
    clew__search_result_free(r);

    /* both APIs pass the warning on; without a service name */
    int status = 0;
    char query[600];
    snprintf(query, sizeof(query), "tags=%%7B%%22payload%%22%%3A%%22%s%%22%%7D&limit=5",
             long_value);
    char *body = api_get(s, "/api/traces", query, &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "\"warnings\":[\"attribute 'payload' is not indexed"));
    assert_non_null(strstr(body, "\"traceID\":\"00000000000000070000000000000001\""));
    free(body);
    snprintf(query, sizeof(query),
             "query.attributes=%%7B%%22payload%%22%%3A%%22%s%%22%%7D&query.num_traces=5",
             long_value);
    body = api_get(s, "/api/v3/traces", query, &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "\"warnings\":[\"attribute 'payload' is not indexed"));
    free(body);
    body = api_get(s, "/api/traces", "tags=%7B%22tier%22%3A%22gold%22%7D", &status);
    assert_int_equal(status, 200);
    assert_null(strstr(body, "\"warnings\":[\""));
    free(body);

    clew__store_destroy(s);
    clew__arena_deinit(&a);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    (void)kv_int; /* fixtures this file does not need */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unindexed_attribute_is_scanned_and_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
