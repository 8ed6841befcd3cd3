/*
 * tests/unit/test_sdk_export.c - the OTLP/HTTP exporter end to end: a real
 * libcurl client against a tiny HTTP/1.1 listener on a loopback socket in this
 * process. Checks the request (path, headers, User-Agent, body decoded with
 * the OTLP decoders), connection reuse, the retry rules (429/502/503/504 and
 * Retry-After retried, 400 final, giving up at the timeout, connection
 * refused), the JSON protocol, gzip request bodies, and the endpoint/header/
 * compression environment variables. (OTLP/gRPC needs an HTTP/2 peer:
 * tests/integration/test_sdk_export.sh runs it against clew serve.)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "clew/clew.h"
#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "model/model.h"

/* ---- the listener ---- */

#define MAX_REQS 32
typedef struct req {
    char head[4096];
    char path[256];
    uint8_t *body;
    size_t body_len;
} req;

static struct {
    int lfd;
    int port;
    pthread_t th;
    _Atomic int stop;
    pthread_mutex_t mu;
    const char *responses[8]; /* status line + headers, e.g. "503 X\r\nRetry-After: 0" */
    int n_responses;          /* after the last one, the last repeats */
    int served;
    int connections;
    req reqs[MAX_REQS];
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool read_request(int fd, req *r)
{
    size_t len = 0;
    char *end = NULL;
    while (end == NULL) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) {
            if (srv.stop) {
                return false;
            }
            continue;
        }
        ssize_t n = recv(fd, r->head + len, sizeof(r->head) - 1 - len, 0);
        if (n <= 0) {
            return false;
        }
        len += (size_t)n;
        r->head[len] = '\0';
        end = strstr(r->head, "\r\n\r\n");
        if (end == NULL && len == sizeof(r->head) - 1) {
            return false;
        }
    }
    size_t head_len = (size_t)(end - r->head) + 4;
    sscanf(r->head, "POST %255s", r->path);
    size_t clen = 0;
    const char *cl = strcasestr(r->head, "\r\ncontent-length:");
    if (cl != NULL) {
        clen = strtoul(cl + 17, NULL, 10);
    }
    r->body = clew__malloc(clen + 1);
    size_t have = len - head_len;
    if (have > clen) {
        have = clen; /* bytes beyond the body (not HTTP/1.1, e.g. an HTTP/2 preface) */
    }
    memcpy(r->body, r->head + head_len, have);
    while (have < clen) {
        ssize_t n = recv(fd, r->body + have, clen - have, 0);
        if (n <= 0) {
            return false;
        }
        have += (size_t)n;
    }
    r->body_len = clen;
    r->head[head_len] = '\0';
    return true;
}

static void *serve(void *arg)
{
    (void)arg;
    while (!srv.stop) {
        struct pollfd pf = {srv.lfd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0) {
            continue;
        }
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        pthread_mutex_lock(&srv.mu);
        srv.connections++;
        pthread_mutex_unlock(&srv.mu);
        for (;;) {
            req r;
            memset(&r, 0, sizeof(r));
            if (!read_request(fd, &r)) {
                clew__free(r.body);
                break;
            }
            pthread_mutex_lock(&srv.mu);
            int i = srv.served < srv.n_responses ? srv.served : srv.n_responses - 1;
            const char *resp = srv.n_responses ? srv.responses[i] : "200 OK";
            if (srv.served < MAX_REQS) {
                srv.reqs[srv.served] = r;
            } else {
                clew__free(r.body);
            }
            srv.served++;
            pthread_mutex_unlock(&srv.mu);
            char out[512];
            int n = snprintf(out, sizeof(out),
                             "HTTP/1.1 %s\r\nContent-Type: application/x-protobuf\r\n"
                             "Content-Length: 0\r\n\r\n",
                             resp);
            if (send(fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
                break;
            }
        }
        close(fd);
    }
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    srv.stop = 0;
    srv.served = 0;
    srv.connections = 0;
    srv.n_responses = 0;
    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(srv.lfd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(srv.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(srv.lfd, 8), 0);
    socklen_t al = sizeof(a);
    getsockname(srv.lfd, (struct sockaddr *)&a, &al);
    srv.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&srv.th, NULL, serve, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    srv.stop = 1;
    pthread_join(srv.th, NULL);
    close(srv.lfd);
    for (int i = 0; i < srv.served && i < MAX_REQS; i++) {
        clew__free(srv.reqs[i].body);
    }
    return 0;
}

static void script(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    pthread_mutex_lock(&srv.mu);
    for (int i = 0; i < n; i++) {
        srv.responses[i] = va_arg(ap, const char *);
    }
    srv.n_responses = n;
    pthread_mutex_unlock(&srv.mu);
    va_end(ap);
}

/* Requests served so far; taking the lock also makes the server thread's
 * writes to srv.reqs visible to the test (for ThreadSanitizer too). */
static int served(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.served;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* ---- provider helpers ---- */

static clew_provider *make(const char *path, clew_otlp_protocol proto, const char *headers,
                           uint32_t timeout_ms)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path);
    clew_otlp_config oc;
    clew_otlp_config_init(&oc);
    oc.url = url;
    oc.protocol = proto;
    oc.headers = headers;
    oc.timeout_ms = timeout_ms;
    oc.retry_initial_ms = 20;
    oc.retry_max_ms = 100;
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.processor = CLEW_PROCESSOR_SIMPLE;
    c.batch.export_timeout_ms = timeout_ms;
    c.service_name = "exporter-test";
    assert_int_equal(clew_exporter_otlp_http(&oc, &c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    return p;
}

static void emit(clew_provider *p, const char *name)
{
    clew_tracer *t;
    assert_int_equal(clew_provider_tracer(p, "export.test", "0.1", &t), CLEW_OK);
    clew_span *s = clew_span_start(t, name, NULL);
    clew_span_set_int(s, "http.response.status_code", 200);
    clew_span_end(s, 0);
}

static bool has_header(const req *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

/* Protobuf export: path, content type, User-Agent, custom headers, the spans
 * in the body; the second export reuses the connection. */
static void test_protobuf_export(void **state)
{
    (void)state;
    clew_provider *p =
        make("/v1/traces", CLEW_OTLP_HTTP_PROTOBUF, "x-api-key=abc%20def, tenant = t1", 5000);
    emit(p, "first");
    emit(p, "second");
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.exported_spans, 2);
    assert_int_equal(st.failed_spans, 0);
    assert_int_equal(served(), 2);
    pthread_mutex_lock(&srv.mu);
    int connections = srv.connections;
    pthread_mutex_unlock(&srv.mu);
    assert_int_equal(connections, 1); /* keep-alive */
    const req *r = &srv.reqs[0];
    assert_string_equal(r->path, "/v1/traces");
    assert_true(has_header(r, "\r\nContent-Type: application/x-protobuf\r\n"));
    assert_true(has_header(r, "\r\nUser-Agent: OTel-OTLP-Exporter-C/"));
    assert_true(has_header(r, "\r\nx-api-key: abc def\r\n"));
    assert_true(has_header(r, "\r\ntenant: t1\r\n"));
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    clew_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(clew__otlp_pb_decode(srv.reqs[1].body, srv.reqs[1].body_len, &a, &b, &err),
                     CLEW_OK);
    assert_int_equal(b.n_spans, 1);
    const clew_span_data *d = &b.rs[0].scopes[0].spans[0];
    assert_int_equal(d->name.len, 6);
    assert_memory_equal(d->name.ptr, "second", 6);
    assert_int_equal(clew__attrs_get(&d->attrs, "http.response.status_code", 25)->u.i, 200);
    clew_str svc = clew__resource_service(b.rs[0].resource);
    assert_int_equal(svc.len, 13);
    assert_memory_equal(svc.ptr, "exporter-test", 13);
    clew__arena_deinit(&a);
    clew_provider_destroy(p);
}

/* 503 and 429 with Retry-After (seconds, and an HTTP-date in the past) are
 * retried until a 200. */
static void test_retry_then_success(void **state)
{
    (void)state;
    script(4, "503 Unavailable\r\nRetry-After: 0", "429 Too Many\r\nRetry-After: 0",
           "503 Unavailable\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT", "200 OK");
    clew_provider *p = make("/v1/traces", CLEW_OTLP_HTTP_PROTOBUF, NULL, 5000);
    uint64_t t0 = clew__now_mono_ns();
    emit(p, "retried");
    assert_true(clew__now_mono_ns() - t0 < 3000000000ull);
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(served(), 4);
    assert_int_equal(st.exported_spans, 1);
    assert_int_equal(st.failed_spans, 0);
    clew_provider_destroy(p);
}

/* 400 is final: one request, the span counted as failed. Also 500. */
static void test_400_is_final(void **state)
{
    (void)state;
    script(1, "400 Bad Request");
    clew_provider *p = make("/v1/traces", CLEW_OTLP_HTTP_PROTOBUF, NULL, 5000);
    emit(p, "rejected");
    assert_int_equal(served(), 1);
    script(1, "500 Internal");
    emit(p, "rejected again");
    assert_int_equal(served(), 2);
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.failed_spans, 2);
    assert_int_equal(st.exported_spans, 0);
    clew_provider_destroy(p);
}

/* Always 502 without Retry-After: backoff retries, then give up at the timeout. */
static void test_gives_up_at_timeout(void **state)
{
    (void)state;
    script(1, "502 Bad Gateway");
    clew_provider *p = make("/v1/traces", CLEW_OTLP_HTTP_PROTOBUF, NULL, 400);
    uint64_t t0 = clew__now_mono_ns();
    emit(p, "lost");
    uint64_t took = clew__now_mono_ns() - t0;
    assert_true(took < 2000000000ull);
    assert_true(served() >= 2);
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.failed_spans, 1);
    clew_provider_destroy(p);
}

/* Nothing listening: connection refused is retried until the timeout, then lost. */
static void test_connection_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd); /* the port is now (almost certainly) closed */
    int saved = srv.port;
    srv.port = ntohs(a.sin_port);
    clew_provider *p = make("/v1/traces", CLEW_OTLP_HTTP_PROTOBUF, NULL, 300);
    srv.port = saved;
    uint64_t t0 = clew__now_mono_ns();
    emit(p, "nowhere");
    assert_true(clew__now_mono_ns() - t0 < 2000000000ull);
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.failed_spans, 1);
    clew_provider_destroy(p);
}

/* OTLP/JSON: application/json, and the body is a valid ExportTraceServiceRequest. */
static void test_json_export(void **state)
{
    (void)state;
    clew_provider *p = make("/v1/traces", CLEW_OTLP_HTTP_JSON, NULL, 5000);
    emit(p, "as-json");
    assert_int_equal(served(), 1);
    const req *r = &srv.reqs[0];
    assert_true(has_header(r, "\r\nContent-Type: application/json\r\n"));
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_batch b;
    clew_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(clew__otlp_json_decode((const char *)r->body, r->body_len, &a, &b, &err),
                     CLEW_OK);
    assert_int_equal(b.n_spans, 1);
    assert_int_equal(b.rs[0].scopes[0].spans[0].name.len, 7);
    clew__arena_deinit(&a);
    clew_provider_destroy(p);
}

/* OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces appended; the TRACES_ variant is
 * used as is; headers come from OTEL_EXPORTER_OTLP_HEADERS. */
static void test_env_endpoint(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20xyz", 1);
    clew_provider *p;
    assert_int_equal(clew_provider_create_from_env(NULL, &p), CLEW_OK);
    emit(p, "env");
    assert_int_equal(clew_provider_force_flush(p, 5000), CLEW_OK);
    clew_provider_destroy(p);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/custom/path", srv.port);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, 1);
    assert_int_equal(clew_provider_create_from_env(NULL, &p), CLEW_OK);
    emit(p, "env2");
    clew_provider_destroy(p); /* shutdown flushes */
    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
    assert_int_equal(served(), 2);
    assert_string_equal(srv.reqs[0].path, "/v1/traces");
    assert_true(has_header(&srv.reqs[0], "\r\nauthorization: Bearer xyz\r\n"));
    assert_string_equal(srv.reqs[1].path, "/custom/path");
}

/* Inflates a gzip member (what the server would do) into a fresh buffer the
 * caller frees with clew__free. */
static uint8_t *gunzip(const uint8_t *in, size_t n, size_t *out_len)
{
    size_t cap = 1 << 20;
    uint8_t *out = clew__malloc(cap);
    assert_non_null(out);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK); /* gzip wrapper only */
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0); /* one member, nothing after it */
    *out_len = (size_t)zs.total_out;
    inflateEnd(&zs);
    return out;
}

/* OTEL_EXPORTER_OTLP_COMPRESSION=gzip: Content-Encoding: gzip, and the body is
 * a gzip member whose content decodes as the ExportTraceServiceRequest, for
 * protobuf and for JSON (OTEL_EXPORTER_OTLP_TRACES_COMPRESSION wins). */
static void test_gzip_export(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP", 1);
    char big[2048];
    memset(big, 'z', sizeof(big) - 1); /* compressible: the body must shrink */
    big[sizeof(big) - 1] = '\0';
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
            setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none", 1);
            setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip", 1);
        }
        clew_provider *p;
        assert_int_equal(clew_provider_create_from_env(NULL, &p), CLEW_OK);
        clew_tracer *t;
        assert_int_equal(clew_provider_tracer(p, "export.test", "0.1", &t), CLEW_OK);
        clew_span *s = clew_span_start(t, "zipped", NULL);
        clew_span_set_str(s, "big", big);
        clew_span_end(s, 0);
        assert_int_equal(clew_provider_force_flush(p, 5000), CLEW_OK);
        clew_provider_destroy(p);
        assert_int_equal(served(), round + 1);
        const req *r = &srv.reqs[round];
        assert_true(has_header(r, "\r\nContent-Encoding: gzip\r\n"));
        assert_true(has_header(r, round == 0 ? "\r\nContent-Type: application/x-protobuf\r\n"
                                             : "\r\nContent-Type: application/json\r\n"));
        assert_true(r->body_len > 18 && r->body[0] == 0x1f && r->body[1] == 0x8b);
        assert_true(r->body_len < sizeof(big) / 2);
        size_t plain_len;
        uint8_t *plain = gunzip(r->body, r->body_len, &plain_len);
        assert_true(plain_len > sizeof(big));
        clew_arena a;
        clew__arena_init(&a, 4096, 0);
        clew_batch b;
        clew_error err;
        memset(&err, 0, sizeof(err));
        if (round == 0) {
            assert_int_equal(clew__otlp_pb_decode(plain, plain_len, &a, &b, &err), CLEW_OK);
        } else {
            assert_int_equal(clew__otlp_json_decode((const char *)plain, plain_len, &a, &b, &err),
                             CLEW_OK);
        }
        assert_int_equal(b.n_spans, 1);
        const clew_span_data *d = &b.rs[0].scopes[0].spans[0];
        assert_int_equal(d->name.len, 6);
        assert_memory_equal(d->name.ptr, "zipped", 6);
        const clew_value *v = clew__attrs_get(&d->attrs, "big", 3);
        assert_non_null(v);
        assert_int_equal(v->u.s.len, sizeof(big) - 1);
        assert_memory_equal(v->u.s.ptr, big, sizeof(big) - 1);
        clew__arena_deinit(&a);
        clew__free(plain);
    }
    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
    unsetenv("OTEL_EXPORTER_OTLP_COMPRESSION");
    unsetenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
}

/* gRPC over http:// speaks HTTP/2 with prior knowledge: the connection opens
 * with the HTTP/2 preface (no HTTP/1.1 upgrade). Against this HTTP/1.1-only
 * listener the export must fail promptly and count the span as failed. */
static void test_grpc_prior_knowledge(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ignored/path", srv.port);
    clew_otlp_config oc;
    clew_otlp_config_init(&oc);
    oc.url = url;
    oc.protocol = CLEW_OTLP_GRPC;
    oc.retry_initial_ms = 20;
    oc.retry_max_ms = 50;
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.processor = CLEW_PROCESSOR_SIMPLE;
    c.batch.export_timeout_ms = 2000;
    assert_int_equal(clew_exporter_otlp_http(&oc, &c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    uint64_t t0 = clew__now_mono_ns();
    emit(p, "over-grpc");
    assert_true(clew__now_mono_ns() - t0 < 3000000000ull);
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    assert_int_equal(st.exported_spans, 0);
    assert_int_equal(st.failed_spans, 1);
    clew_provider_destroy(p);
    assert_true(served() >= 1);
    assert_memory_equal(srv.reqs[0].head, "PRI * HTTP/2.0\r\n\r\n", 18);
}

static void test_bad_config(void **state)
{
    (void)state;
    clew_otlp_config oc;
    clew_otlp_config_init(&oc);
    clew_exporter *e = NULL;
    oc.url = "ftp://example.com";
    assert_int_equal(clew_exporter_otlp_http(&oc, &e), CLEW_EINVAL);
    oc.url = "http://localhost:4318/v1/traces";
    oc.headers = "novalue";
    assert_int_equal(clew_exporter_otlp_http(&oc, &e), CLEW_EINVAL);
    oc.headers = "k=%zz";
    assert_int_equal(clew_exporter_otlp_http(&oc, &e), CLEW_EINVAL);
    oc.headers = NULL;
    oc.compression = (clew_otlp_compression)7;
    assert_int_equal(clew_exporter_otlp_http(&oc, &e), CLEW_EINVAL);
    oc.compression = CLEW_OTLP_COMPRESSION_GZIP;
    oc.protocol = (clew_otlp_protocol)9;
    assert_int_equal(clew_exporter_otlp_http(&oc, &e), CLEW_EINVAL);
    oc.protocol = CLEW_OTLP_GRPC;
    assert_int_equal(clew_exporter_otlp_http(&oc, &e), CLEW_OK);
    clew_exporter_destroy(e);
    oc.protocol = CLEW_OTLP_HTTP_PROTOBUF;
    assert_int_equal(clew_exporter_otlp_http(&oc, &e), CLEW_OK);
    clew_exporter_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_protobuf_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gives_up_at_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_prior_knowledge, setup, teardown),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
