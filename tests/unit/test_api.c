/*
 * tests/unit/test_api.c - the query API handlers: Jaeger v1 JSON shapes, search
 * parameters and their errors, name lists, v3 output. Every response is parsed with
 * jansson so the assertions are on fields and types, not on text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "common/clock.h"
#include "query/api.h"
#include "query/params.h"
#include "store/store.h"
#include "store_fixtures.h"

/* ---- builders ---- */

static clew_attrs attrs(clew_arena *a, const clew_kv *kvs, uint32_t n)
{
    clew_attrs at = {clew__arena_calloc(a, n, sizeof(clew_kv)), n, 0};
    memcpy(at.items, kvs, n * sizeof(clew_kv));
    return at;
}

static void append(clew_store *st, clew_arena *a, const clew_resource *r, const clew_scope *sc,
                   const clew_span_data *spans, size_t n)
{
    clew_batch b = mk_batch(a, r, sc, spans, n);
    assert_int_equal(st->ops->append(st, &b, NULL, NULL, NULL), CLEW_OK);
}

#define T0_NS 1700000000123456789ull /* a start time with sub-µs digits */

/*
 * The fixture:
 *   trace A = tid(0xaaaa, 0x1): 128-bit id. Service "front end" (a space), scope
 *     "io.clew/http" 2.1, resource host.name=h1.
 *     root span 1 "GET /cart", server, status ok, attributes of every type, an
 *     event "retry" with attempt=2, a link to trace B span 9, tracestate "k=v".
 *     child span 2 "SELECT", client, error "db down", service "db" (a second
 *     process).
 *   trace B = tid(0, 0xbeef): 64-bit id, service "worker", one internal span
 *     "job/run" lasting 2 s.
 */
static clew_store *fixture(void)
{
    clew_memory_store_config cfg = {0, 0};
    clew_store *st = NULL;
    assert_int_equal(clew__memory_store_create(&cfg, &st), CLEW_OK);
    clew_arena a;
    clew__arena_init(&a, 4096, 0);

    clew_scope *sc = clew__arena_calloc(&a, 1, sizeof(*sc));
    sc->name = S(&a, "io.clew/http");
    sc->version = S(&a, "2.1");

    clew_trace_id ta = tid(0xaaaa, 0x1);
    clew_span_data root = mk_span(&a, ta, 1, 0, "GET /cart", T0_NS, T0_NS + 1500000);
    root.status_code = CLEW_STATUS_OK;
    root.trace_state = S(&a, "k=v");
    root.flags = CLEW_FLAG_SAMPLED | CLEW_FLAG_HAS_IS_REMOTE;

    clew_value arr_items[2] = {{.type = CLEW_VALUE_STRING}, {.type = CLEW_VALUE_INT}};
    arr_items[0].u.s = S(&a, "x");
    arr_items[1].u.i = 7;
    clew_kv kvs[8];
    kvs[0] = kv_str(&a, "http.method", "GET");
    kvs[1] = kv_int(&a, "http.status_code", 200);
    kvs[2] = (clew_kv){S(&a, "cache.hit"), {.type = CLEW_VALUE_BOOL}};
    kvs[2].value.u.b = true;
    kvs[3] = (clew_kv){S(&a, "ratio"), {.type = CLEW_VALUE_DOUBLE}};
    kvs[3].value.u.d = 0.25;
    kvs[4] = (clew_kv){S(&a, "blob"), {.type = CLEW_VALUE_BYTES}};
    kvs[4].value.u.s = S(&a, "hi!?");
    kvs[5] = kv_int(&a, "big", 9007199254740993LL); /* 2^53 + 1 */
    kvs[6] = (clew_kv){S(&a, "list"), {.type = CLEW_VALUE_ARRAY}};
    kvs[6].value.u.array.items = arr_items;
    kvs[6].value.u.array.n = 2;
    kvs[7] = kv_str(&a, "quote\"key", "line\nbreak");
    root.attrs = attrs(&a, kvs, 8);

    clew_event_data ev = {T0_NS + 500000, S(&a, "retry"), {0}};
    clew_kv evkv[1] = {kv_int(&a, "attempt", 2)};
    ev.attrs = attrs(&a, evkv, 1);
    root.events = &ev;
    root.n_events = 1;
    clew_link_data link;
    memset(&link, 0, sizeof(link));
    link.trace_id = tid(0, 0xbeef);
    link.span_id = sid(9);
    root.links = &link;
    root.n_links = 1;

    clew_span_data child = mk_span(&a, ta, 2, 1, "SELECT", T0_NS + 1000, T0_NS + 801000);
    child.kind = CLEW_KIND_CLIENT;
    child.status_code = CLEW_STATUS_ERROR;
    child.status_message = S(&a, "db down");

    append(st, &a, mk_res(&a, "front end", "host.name", "h1"), sc, &root, 1);
    append(st, &a, mk_res(&a, "db", NULL, NULL), sc, &child, 1);

    clew_span_data job =
        mk_span(&a, tid(0, 0xbeef), 9, 0, "job/run", T0_NS + 5000000000ull, T0_NS + 7000000000ull);
    job.kind = CLEW_KIND_INTERNAL;
    append(st, &a, mk_res(&a, "worker", NULL, NULL), sc, &job, 1);
    clew__arena_deinit(&a);
    return st;
}

/* Issues a request and parses the JSON body; returns the status. */
static int call(clew_store *st, const char *method, const char *path, const char *query,
                json_t **out)
{
    clew_api_request req = {method, {path, strlen(path)}, {query, query ? strlen(query) : 0}};
    clew_api_response resp;
    clew__api_response_init(&resp);
    assert_int_equal(clew__api_handle(st, &req, &resp), CLEW_OK);
    assert_string_equal(resp.content_type, "application/json");
    json_error_t err;
    json_t *j = json_loadb(resp.body.data, resp.body.len, 0, &err);
    if (j == NULL) {
        fprintf(stderr, "invalid JSON (%s) in: %.*s\n", err.text, (int)resp.body.len,
                resp.body.data);
    }
    assert_non_null(j);
    int status = resp.status;
    clew__api_response_deinit(&resp);
    *out = j;
    return status;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* The tag object with this key in a Jaeger tags[] array, or NULL. */
static json_t *tag(json_t *tags, const char *key)
{
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        if (strcmp(jstr(t, "key"), key) == 0) {
            return t;
        }
    }
    return NULL;
}

static json_t *span_by_op(json_t *trace, const char *op)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(trace, "spans"), i, s)
    {
        if (strcmp(jstr(s, "operationName"), op) == 0) {
            return s;
        }
    }
    fail_msg("no span %s", op);
    return NULL;
}

/* Asserts a v1 error envelope with `code` whose message contains `needle`. */
static void assert_v1_error(json_t *j, int code, const char *needle)
{
    assert_true(json_is_null(json_object_get(j, "data")));
    assert_int_equal(jint(j, "total"), 0);
    json_t *errs = json_object_get(j, "errors");
    assert_true(json_is_array(errs));
    assert_int_equal(json_array_size(errs), 1);
    json_t *e0 = json_array_get(errs, 0);
    assert_int_equal(jint(e0, "code"), code);
    const char *msg = jstr(e0, "msg");
    if (strstr(msg, needle) == NULL) {
        fail_msg("error message \"%s\" does not mention \"%s\"", msg, needle);
    }
}

/* ---- tests ---- */

static void trace_v1_shape(void **state)
{
    clew_store *st = *state;
    json_t *j;
    assert_int_equal(call(st, "GET", "/api/traces/000000000000aaaa0000000000000001", NULL, &j),
                     200);
    assert_int_equal(jint(j, "total"), 0);
    assert_int_equal(jint(j, "limit"), 0);
    assert_int_equal(jint(j, "offset"), 0);
    assert_true(json_is_null(json_object_get(j, "errors")));
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 1);
    json_t *t = json_array_get(data, 0);
    assert_string_equal(jstr(t, "traceID"), "000000000000aaaa0000000000000001");
    assert_true(json_is_null(json_object_get(t, "warnings")));
    assert_int_equal(json_array_size(json_object_get(t, "spans")), 2);

    json_t *root = span_by_op(t, "GET /cart");
    assert_string_equal(jstr(root, "traceID"), "000000000000aaaa0000000000000001");
    assert_string_equal(jstr(root, "spanID"), "0000000000000001");
    /* µs, truncated from ns */
    assert_int_equal(jint(root, "startTime"), (json_int_t)(T0_NS / 1000));
    assert_int_equal(jint(root, "duration"), 1500);
    assert_int_equal(jint(root, "flags"), 1);
    assert_true(json_is_null(json_object_get(root, "warnings")));

    /* references: no parent, one link -> FOLLOWS_FROM with a 64-bit trace id */
    json_t *refs = json_object_get(root, "references");
    assert_int_equal(json_array_size(refs), 1);
    assert_string_equal(jstr(json_array_get(refs, 0), "refType"), "FOLLOWS_FROM");
    assert_string_equal(jstr(json_array_get(refs, 0), "traceID"), "000000000000beef");
    assert_string_equal(jstr(json_array_get(refs, 0), "spanID"), "0000000000000009");

    json_t *tags = json_object_get(root, "tags");
    json_t *x;
    x = tag(tags, "http.method");
    assert_string_equal(jstr(x, "type"), "string");
    assert_string_equal(jstr(x, "value"), "GET");
    x = tag(tags, "http.status_code");
    assert_string_equal(jstr(x, "type"), "int64");
    assert_int_equal(jint(x, "value"), 200);
    x = tag(tags, "cache.hit");
    assert_string_equal(jstr(x, "type"), "bool");
    assert_true(json_is_true(json_object_get(x, "value")));
    x = tag(tags, "ratio");
    assert_string_equal(jstr(x, "type"), "float64");
    assert_true(json_is_real(json_object_get(x, "value")));
    assert_true(json_real_value(json_object_get(x, "value")) == 0.25);
    x = tag(tags, "blob");
    assert_string_equal(jstr(x, "type"), "binary");
    assert_string_equal(jstr(x, "value"), "aGkhPw==");
    x = tag(tags, "big"); /* beyond 2^53: sent as text */
    assert_string_equal(jstr(x, "type"), "int64");
    assert_string_equal(jstr(x, "value"), "9007199254740993");
    x = tag(tags, "list");
    assert_string_equal(jstr(x, "type"), "string");
    assert_string_equal(jstr(x, "value"), "[\"x\",7]");
    x = tag(tags, "quote\"key");
    assert_string_equal(jstr(x, "value"), "line\nbreak");
    /* derived tags */
    assert_string_equal(jstr(tag(tags, "span.kind"), "value"), "server");
    assert_string_equal(jstr(tag(tags, "otel.status_code"), "value"), "OK");
    assert_null(tag(tags, "error"));
    assert_string_equal(jstr(tag(tags, "otel.scope.name"), "value"), "io.clew/http");
    assert_string_equal(jstr(tag(tags, "otel.scope.version"), "value"), "2.1");
    assert_string_equal(jstr(tag(tags, "w3c.tracestate"), "value"), "k=v");

    /* events -> logs */
    json_t *logs = json_object_get(root, "logs");
    assert_int_equal(json_array_size(logs), 1);
    json_t *log = json_array_get(logs, 0);
    assert_int_equal(jint(log, "timestamp"), (json_int_t)((T0_NS + 500000) / 1000));
    json_t *fields = json_object_get(log, "fields");
    assert_string_equal(jstr(json_array_get(fields, 0), "key"), "event");
    assert_string_equal(jstr(json_array_get(fields, 0), "value"), "retry");
    assert_int_equal(jint(tag(fields, "attempt"), "value"), 2);

    json_t *child = span_by_op(t, "SELECT");
    refs = json_object_get(child, "references");
    assert_int_equal(json_array_size(refs), 1);
    assert_string_equal(jstr(json_array_get(refs, 0), "refType"), "CHILD_OF");
    assert_string_equal(jstr(json_array_get(refs, 0), "traceID"),
                        "000000000000aaaa0000000000000001");
    assert_string_equal(jstr(json_array_get(refs, 0), "spanID"), "0000000000000001");
    assert_int_equal(jint(child, "duration"), 800);
    tags = json_object_get(child, "tags");
    assert_string_equal(jstr(tag(tags, "span.kind"), "value"), "client");
    assert_string_equal(jstr(tag(tags, "otel.status_code"), "value"), "ERROR");
    assert_string_equal(jstr(tag(tags, "error"), "type"), "bool");
    assert_true(json_is_true(json_object_get(tag(tags, "error"), "value")));
    assert_string_equal(jstr(tag(tags, "otel.status_description"), "value"), "db down");

    /* processes: one per resource, service.name not repeated as a tag */
    json_t *procs = json_object_get(t, "processes");
    assert_int_equal(json_object_size(procs), 2);
    json_t *p_root = json_object_get(procs, jstr(root, "processID"));
    json_t *p_child = json_object_get(procs, jstr(child, "processID"));
    assert_non_null(p_root);
    assert_non_null(p_child);
    assert_string_equal(jstr(p_root, "serviceName"), "front end");
    assert_string_equal(jstr(p_child, "serviceName"), "db");
    assert_string_equal(jstr(tag(json_object_get(p_root, "tags"), "host.name"), "value"), "h1");
    assert_null(tag(json_object_get(p_root, "tags"), "service.name"));
    assert_int_equal(json_array_size(json_object_get(p_child, "tags")), 0);

    json_t *meta = json_object_get(t, "clew");
    assert_string_equal(jstr(meta, "state"), "kept");
    assert_true(json_number_value(json_object_get(meta, "adjustedCount")) == 1.0);
    json_decref(j);
}

static void trace_v1_ids(void **state)
{
    clew_store *st = *state;
    json_t *j;
    /* 64-bit id: 16 hex digits out; the request may use 16, 32, upper case or fewer */
    const char *paths[] = {"/api/traces/000000000000beef", "/api/traces/BEEF",
                           "/api/traces/0000000000000000000000000000beef", "/api/traces/be%65f"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(call(st, "GET", paths[i], NULL, &j), 200);
        json_t *t = json_array_get(json_object_get(j, "data"), 0);
        assert_string_equal(jstr(t, "traceID"), "000000000000beef");
        json_t *s = json_array_get(json_object_get(t, "spans"), 0);
        assert_string_equal(jstr(s, "traceID"), "000000000000beef");
        assert_int_equal(jint(s, "duration"), 2000000);
        /* internal kind: no span.kind tag */
        assert_null(tag(json_object_get(s, "tags"), "span.kind"));
        json_decref(j);
    }

    assert_int_equal(call(st, "GET", "/api/traces/123456", NULL, &j), 404);
    assert_v1_error(j, 404, "trace not found");
    json_decref(j);

    const char *bad[] = {"/api/traces/xyz", "/api/traces/0000", "/api/traces/%zz",
                         "/api/traces/111111111111111111111111111111111", "/api/traces/12%00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(call(st, "GET", bad[i], NULL, &j), 400);
        assert_v1_error(j, 400, "invalid trace id");
        json_decref(j);
    }
}

static void methods_and_routes(void **state)
{
    clew_store *st = *state;
    json_t *j;
    assert_int_equal(call(st, "POST", "/api/traces/beef", NULL, &j), 405);
    assert_v1_error(j, 405, "GET");
    json_decref(j);
    assert_int_equal(call(st, "DELETE", "/api/services", NULL, &j), 405);
    json_decref(j);
    assert_int_equal(call(st, "PUT", "/api/v3/traces/beef", NULL, &j), 405);
    assert_int_equal(jint(json_object_get(j, "error"), "httpCode"), 405);
    json_decref(j);

    const char *others[] = {"/",
                            "/api",
                            "/api/traces/",
                            "/api/traces/a/b",
                            "/api/servicesx",
                            "/api/services/x/ops",
                            "/api/services//operations",
                            "/metrics",
                            "/api/v3/traces/",
                            "/api/dependencies"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        clew_api_request req = {"GET", {others[i], strlen(others[i])}, {"", 0}};
        clew_api_response resp;
        clew__api_response_init(&resp);
        assert_int_equal(clew__api_handle(st, &req, &resp), CLEW_ENOTFOUND);
        assert_int_equal(resp.body.len, 0);
        clew__api_response_deinit(&resp);
    }
}

/* traceIDs of a v1 search answer, in order, comma-separated. */
static void search(clew_store *st, const char *query, int want_status, const char *want_ids)
{
    json_t *j;
    int status = call(st, "GET", "/api/traces", query, &j);
    if (status != want_status) {
        char *txt = json_dumps(j, 0);
        fail_msg("query %s: status %d, want %d: %s", query, status, want_status, txt);
    }
    if (want_ids != NULL) {
        char got[256] = "";
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(j, "data"), i, t)
        {
            if (i > 0) {
                strncat(got, ",", sizeof(got) - strlen(got) - 1);
            }
            strncat(got, jstr(t, "traceID"), sizeof(got) - strlen(got) - 1);
        }
        if (strcmp(got, want_ids) != 0) {
            fail_msg("query %s: got [%s], want [%s]", query, got, want_ids);
        }
        assert_int_equal(jint(j, "total"), (json_int_t)json_array_size(json_object_get(j, "data")));
    }
    json_decref(j);
}

#define A "000000000000aaaa0000000000000001"
#define B "000000000000beef"

static void search_params(void **state)
{
    clew_store *st = *state;
    search(st, "", 200, B "," A);
    search(st, "service=worker", 200, B);
    /* percent-decoding: '+' and %20 are spaces */
    search(st, "service=front+end", 200, A);
    search(st, "service=front%20end&operation=GET%20%2Fcart", 200, A);
    search(st, "service=front%20end&operation=SELECT", 200, "");
    search(st, "service=db&operation=SELECT", 200, A);
    search(st, "tags=%7B%22http.status_code%22%3A%22200%22%7D", 200, A);
    search(st, "tags={\"error\":\"true\"}", 200, A);
    search(st, "tags={\"error\":\"true\",\"http.method\":\"GET\"}", 200, ""); /* not one span */
    search(st, "tag=http.method:GET", 200, A);
    search(st, "tag=host.name:h1&tag=cache.hit:true", 200, A);
    search(st, "tag=host.name:h2", 200, "");
    search(st, "tag=url:http://x", 200, ""); /* only the first ':' splits */
    search(st, "minDuration=1s", 200, B);
    search(st, "maxDuration=1.5ms", 200, A);
    search(st, "minDuration=1ms&maxDuration=1h", 200, B "," A);
    search(st, "limit=1", 200, B);
    search(st, "limit=100000", 200, B "," A); /* clamped, not refused */
    char q[128];
    snprintf(q, sizeof(q), "start=%llu", (unsigned long long)(T0_NS / 1000 + 1000000));
    search(st, q, 200, B);
    snprintf(q, sizeof(q), "end=%llu&lookback=custom", (unsigned long long)(T0_NS / 1000 + 1));
    search(st, q, 200, A);
    /* the fixture's traces are from 2023: a 1h lookback from now finds none */
    search(st, "lookback=1h", 200, "");
    search(st, "lookback=custom&prettyPrint=true&unknown=1", 200, B "," A);
    search(st, "service=nosuch", 200, "");
}

static void search_bad_params(void **state)
{
    clew_store *st = *state;
    struct {
        const char *query;
        const char *needle; /* the message must name the parameter (and the value) */
    } cases[] = {
        {"minDuration=abc", "minDuration=\"abc\""},
        {"maxDuration=10", "maxDuration"}, /* a unit is required */
        {"minDuration=-1s", "minDuration"},
        {"minDuration=2s&maxDuration=1s", "minDuration"},
        {"start=12x", "start=\"12x\""},
        {"end=-5", "end"},
        {"start=99999999999999999999", "start"},
        {"start=2000&end=1000", "start"},
        {"limit=0", "limit=\"0\""},
        {"limit=-3", "limit"},
        {"limit=ten", "limit"},
        {"lookback=forever", "lookback"},
        {"tags=not-json", "tags"},
        {"tags=[1,2]", "tags"},
        {"tags={\"a\":1}", "tags"},
        {"tag=nocolon", "tag=\"nocolon\""},
        {"tag=:value", "tag"},
        {"service=%zz", "service"},
        {"service=ab%2", "percent"},
        {"tag=a:1&tag=b:2&tag=c:3&tag=d:4&tag=e:5&tag=f:6&tag=g:7&tag=h:8&tag=i:9&tag=j:10&"
         "tag=k:11&tag=l:12&tag=m:13&tag=n:14&tag=o:15&tag=p:16&tag=q:17",
         "16"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j;
        int status = call(st, "GET", "/api/traces", cases[i].query, &j);
        if (status != 400) {
            fail_msg("query %s: status %d, want 400", cases[i].query, status);
        }
        assert_v1_error(j, 400, cases[i].needle);
        json_decref(j);
    }
    /* a long bad value is quoted only in part */
    char q[4096] = "minDuration=";
    memset(q + strlen(q), '9', 3000);
    json_t *j;
    assert_int_equal(call(st, "GET", "/api/traces", q, &j), 400);
    const char *msg = jstr(json_array_get(json_object_get(j, "errors"), 0), "msg");
    assert_true(strlen(msg) < 400);
    json_decref(j);
}

static void name_lists(void **state)
{
    clew_store *st = *state;
    json_t *j;
    assert_int_equal(call(st, "GET", "/api/services", NULL, &j), 200);
    json_t *d = json_object_get(j, "data");
    assert_int_equal(json_array_size(d), 3);
    assert_string_equal(json_string_value(json_array_get(d, 0)), "db");
    assert_string_equal(json_string_value(json_array_get(d, 1)), "front end");
    assert_string_equal(json_string_value(json_array_get(d, 2)), "worker");
    assert_int_equal(jint(j, "total"), 3);
    assert_true(json_is_null(json_object_get(j, "errors")));
    json_decref(j);

    /* service name percent-decoded from the path */
    assert_int_equal(call(st, "GET", "/api/services/front%20end/operations", NULL, &j), 200);
    d = json_object_get(j, "data");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(json_string_value(json_array_get(d, 0)), "GET /cart");
    assert_int_equal(jint(j, "total"), 1);
    json_decref(j);
    assert_int_equal(call(st, "GET", "/api/services/nosuch/operations", NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    assert_int_equal(call(st, "GET", "/api/services/a%g1/operations", NULL, &j), 400);
    assert_v1_error(j, 400, "service");
    json_decref(j);

    assert_int_equal(call(st, "GET", "/api/operations", "service=db", &j), 200);
    d = json_object_get(j, "data");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(jstr(json_array_get(d, 0), "name"), "SELECT");
    assert_string_equal(jstr(json_array_get(d, 0), "spanKind"), "client");
    json_decref(j);
    assert_int_equal(call(st, "GET", "/api/operations", "spanKind=internal", &j), 200);
    d = json_object_get(j, "data");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(jstr(json_array_get(d, 0), "name"), "job/run");
    assert_int_equal(jint(j, "total"), 1);
    json_decref(j);
    assert_int_equal(call(st, "GET", "/api/operations", "service=db&spanKind=server", &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    assert_int_equal(call(st, "GET", "/api/operations", "spanKind=sideways", &j), 400);
    assert_v1_error(j, 400, "spanKind=\"sideways\"");
    json_decref(j);

    assert_int_equal(call(st, "GET", "/api/v3/services", NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "services")), 3);
    json_decref(j);
    assert_int_equal(call(st, "GET", "/api/v3/operations", "service=worker", &j), 200);
    d = json_object_get(j, "operations");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(jstr(json_array_get(d, 0), "spanKind"), "internal");
    json_decref(j);
}

/* The AnyValue object of attribute `key` in an OTLP JSON attributes array. */
static json_t *otlp_attr(json_t *arr, const char *key)
{
    size_t i;
    json_t *kv;
    json_array_foreach(arr, i, kv)
    {
        if (strcmp(jstr(kv, "key"), key) == 0) {
            return json_object_get(kv, "value");
        }
    }
    return NULL;
}

static void trace_v3(void **state)
{
    clew_store *st = *state;
    json_t *j;
    assert_int_equal(call(st, "GET", "/api/v3/traces/000000000000aaaa0000000000000001", NULL, &j),
                     200);
    json_t *rs = json_object_get(json_object_get(j, "result"), "resourceSpans");
    assert_int_equal(json_array_size(rs), 2); /* two resources */
    size_t n_spans = 0;
    json_t *root = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(rs, i, r)
    {
        json_t *spans =
            json_object_get(json_array_get(json_object_get(r, "scopeSpans"), 0), "spans");
        n_spans += json_array_size(spans);
        size_t k;
        json_t *s;
        json_array_foreach(spans, k, s)
        {
            if (strcmp(jstr(s, "name"), "GET /cart") == 0) {
                root = s;
            }
        }
    }
    assert_int_equal(n_spans, 2);
    assert_non_null(root);
    /* OTLP JSON keeps nanoseconds exactly (as decimal strings) and 32-hex ids */
    assert_string_equal(jstr(root, "startTimeUnixNano"), "1700000000123456789");
    assert_string_equal(jstr(root, "endTimeUnixNano"), "1700000000124956789");
    assert_string_equal(jstr(root, "traceId"), "000000000000aaaa0000000000000001");
    json_t *at = json_object_get(root, "attributes");
    assert_string_equal(jstr(otlp_attr(at, "http.status_code"), "intValue"), "200");
    assert_string_equal(jstr(otlp_attr(at, "big"), "intValue"), "9007199254740993");
    assert_true(json_is_true(json_object_get(otlp_attr(at, "cache.hit"), "boolValue")));
    assert_true(json_number_value(json_object_get(otlp_attr(at, "ratio"), "doubleValue")) == 0.25);
    assert_string_equal(jstr(otlp_attr(at, "blob"), "bytesValue"), "aGkhPw==");
    json_decref(j);

    assert_int_equal(call(st, "GET", "/api/v3/traces/00ff", NULL, &j), 404);
    json_t *e = json_object_get(j, "error");
    assert_int_equal(jint(e, "httpCode"), 404);
    assert_string_equal(jstr(e, "message"), "trace not found");
    json_decref(j);
    assert_int_equal(call(st, "GET", "/api/v3/traces/nothex", NULL, &j), 400);
    assert_int_equal(jint(json_object_get(j, "error"), "httpCode"), 400);
    json_decref(j);
}

/* Names of the spans in a v3 answer, sorted, comma-separated; "404" if none found. */
static void search_v3(clew_store *st, const char *query, int want_status, const char *want)
{
    json_t *j;
    int status = call(st, "GET", "/api/v3/traces", query, &j);
    if (status != want_status) {
        fail_msg("query %s: status %d, want %d", query, status, want_status);
    }
    if (status != 200) {
        json_t *e = json_object_get(j, "error");
        assert_int_equal(jint(e, "httpCode"), status);
        if (strstr(jstr(e, "message"), want) == NULL) {
            fail_msg("query %s: message \"%s\" lacks \"%s\"", query, jstr(e, "message"), want);
        }
        json_decref(j);
        return;
    }
    const char *names[8];
    size_t n = 0, i, k;
    json_t *r, *s;
    json_array_foreach(json_object_get(json_object_get(j, "result"), "resourceSpans"), i, r)
    {
        json_array_foreach(
            json_object_get(json_array_get(json_object_get(r, "scopeSpans"), 0), "spans"), k, s)
        {
            assert_true(n < 8);
            names[n++] = jstr(s, "name");
        }
    }
    /* sort for a stable comparison */
    for (size_t x = 0; x < n; x++) {
        for (size_t y = x + 1; y < n; y++) {
            if (strcmp(names[y], names[x]) < 0) {
                const char *t = names[x];
                names[x] = names[y];
                names[y] = t;
            }
        }
    }
    char got[256] = "";
    for (size_t x = 0; x < n; x++) {
        if (x > 0) {
            strncat(got, ",", sizeof(got) - strlen(got) - 1);
        }
        strncat(got, names[x], sizeof(got) - strlen(got) - 1);
    }
    if (strcmp(got, want) != 0) {
        fail_msg("query %s: got [%s], want [%s]", query, got, want);
    }
    json_decref(j);
}

static void search_v3_params(void **state)
{
    clew_store *st = *state;
    /* T0 is 2023-11-14T22:13:20.123456789Z */
    search_v3(st, "", 200, "GET /cart,SELECT,job/run");
    search_v3(st, "query.serviceName=worker", 200, "job/run");
    search_v3(st, "query.serviceName=front+end&query.operationName=GET%20%2Fcart", 200,
              "GET /cart,SELECT");
    search_v3(st, "query.attributes=%7B%22http.method%22%3A%22GET%22%7D", 200, "GET /cart,SELECT");
    search_v3(st, "query.startTimeMin=2023-11-14T22:13:21Z", 200, "job/run");
    search_v3(st, "query.startTimeMin=2023-11-14T23:13:21%2B01:00", 200, "job/run");
    search_v3(st, "query.startTimeMax=2023-11-14T22:13:20.123456789Z", 200, "GET /cart,SELECT");
    search_v3(st, "query.startTimeMax=2023-11-14T22:13:20.123456788Z", 404, "no traces");
    search_v3(st,
              "query.startTimeMin=2023-11-14T22:00:00Z&query.startTimeMax=2023-11-14T23:00:00Z"
              "&query.durationMin=1s",
              200, "job/run");
    search_v3(st, "query.searchDepth=1", 200, "job/run");
    search_v3(st, "query.serviceName=nosuch", 404, "no traces");

    search_v3(st, "query.startTimeMin=yesterday", 400, "query.startTimeMin=\"yesterday\"");
    search_v3(st, "query.startTimeMin=2023-02-29T00:00:00Z", 400, "query.startTimeMin");
    search_v3(st, "query.startTimeMax=2023-11-14T22:13:20", 400,
              "query.startTimeMax"); /* no zone */
    search_v3(st, "query.startTimeMin=1969-12-31T23:59:59Z", 400, "query.startTimeMin");
    search_v3(st, "query.durationMin=5", 400, "query.durationMin");
    search_v3(st, "query.durationMin=2s&query.durationMax=1s", 400, "query.durationMin");
    search_v3(st, "query.searchDepth=0", 400, "query.searchDepth");
    search_v3(st, "query.attributes=%5B%5D", 400, "query.attributes");
}

static void empty_store(void **state)
{
    (void)state;
    clew_memory_store_config cfg = {0, 0};
    clew_store *st = NULL;
    assert_int_equal(clew__memory_store_create(&cfg, &st), CLEW_OK);
    json_t *j;
    assert_int_equal(call(st, "GET", "/api/services", NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    assert_int_equal(call(st, "GET", "/api/traces", "service=x", &j), 200);
    assert_true(json_is_array(json_object_get(j, "data")));
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    clew__store_destroy(st);
}

static void percent_decoding(void **state)
{
    (void)state;
    char out[64];
    size_t n = 0;
    clew_error err = {{0}, 0};
    const char *in = "%41%6a+%2B%2f%C3%A9x";
    assert_int_equal(clew__percent_decode(in, strlen(in), true, out, &n, &err), CLEW_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "Aj +/\xc3\xa9x", 8);
    /* in a path, '+' is a plus */
    assert_int_equal(clew__percent_decode("a+b", 3, false, out, &n, &err), CLEW_OK);
    assert_memory_equal(out, "a+b", 3);
    /* %00 decodes to a NUL byte; lengths, not NULs, delimit values */
    assert_int_equal(clew__percent_decode("a%00b", 5, true, out, &n, &err), CLEW_OK);
    assert_int_equal(n, 3);
    assert_int_equal(out[1], 0);
    const char *bad[] = {"%", "%4", "%4g", "ab%", "%%41", "x%G0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(clew__percent_decode(bad[i], strlen(bad[i]), true, out, &n, &err),
                         CLEW_EPARSE);
    }
    assert_int_equal(clew__percent_decode("ab%4", 4, true, out, &n, &err), CLEW_EPARSE);
    assert_int_equal(err.offset, 2);

    /* splitting: empty pieces skipped, no '=' means an empty value, keys decoded too */
    clew_arena a;
    clew__arena_init(&a, 1024, 0);
    clew_query_params p;
    const char *q = "a=1&&b&c%3Dd=x%3Dy&=z&a=2";
    assert_int_equal(clew__query_parse((clew_str){q, strlen(q)}, &a, &p, &err), CLEW_OK);
    assert_int_equal(p.n, 5);
    assert_string_equal(clew__query_get(&p, "a")->ptr, "1"); /* the first one */
    assert_int_equal(clew__query_get(&p, "b")->len, 0);
    assert_string_equal(clew__query_get(&p, "c=d")->ptr, "x=y");
    assert_string_equal(clew__query_get(&p, "")->ptr, "z");
    assert_null(clew__query_get(&p, "missing"));
    q = "ok=1&bad=%x1";
    assert_int_equal(clew__query_parse((clew_str){q, strlen(q)}, &a, &p, &err), CLEW_EPARSE);
    assert_non_null(strstr(err.msg, "\"bad\""));
    assert_int_equal(err.offset, 9);
    /* bounded number of pairs */
    char many[1200];
    size_t len = 0;
    for (int i = 0; i < 300; i++) {
        many[len++] = 'k';
        many[len++] = '&';
    }
    assert_int_equal(clew__query_parse((clew_str){many, len}, &a, &p, &err), CLEW_ETOOBIG);
    clew__arena_deinit(&a);
}

static int setup(void **state)
{
    *state = fixture();
    return 0;
}

static int teardown(void **state)
{
    clew__store_destroy(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trace_v1_shape),     cmocka_unit_test(trace_v1_ids),
        cmocka_unit_test(methods_and_routes), cmocka_unit_test(search_params),
        cmocka_unit_test(search_bad_params),  cmocka_unit_test(name_lists),
        cmocka_unit_test(trace_v3),           cmocka_unit_test(empty_store),
        cmocka_unit_test(percent_decoding),   cmocka_unit_test(search_v3_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
