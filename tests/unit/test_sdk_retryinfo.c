/*
 * tests/unit/test_sdk_retryinfo.c - the OTLP/gRPC exporter's retry rules:
 * grpc-status-details-bin values (base64 google.rpc.Status) decoded by
 * clew__grpc_retry_info, and the retry decision of clew__grpc_retryable that
 * otlp_http.c applies to every gRPC answer. RESOURCE_EXHAUSTED must be retried
 * only when a google.rpc.RetryInfo detail is present, and its retry_delay must
 * become the wait.
 *
 * The first value is a literal, encoded independently of this file's helpers;
 * the others are built here field by field, so each case states its bytes.
 *
 * The last tests run the real exporter (CLEW_OTLP_GRPC over http://, HTTP/2
 * with prior knowledge) against a scripted h2c server built on libnghttp2 in
 * this file: each call is answered trailers-only with the scripted grpc-status
 * and grpc-status-details-bin, and the server records when each call arrived,
 * so the tests see how many attempts were made and how long the exporter
 * waited between them. A retry is a second transfer on the exporter's handle,
 * so test_export_consecutive also guards against libcurl 7.88's broken reuse
 * of prior-knowledge connections (see h2_reuse_broken in otlp_http.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "clew/clew.h"
#include "common/clock.h"
#include "sdk/sdk_internal.h"

#define RETRY_INFO_URL "type.googleapis.com/google.rpc.RetryInfo"

/* Status{code: 8, message: "quota", details: [Any{RetryInfo{retry_delay: {seconds: 1,
 * nanos: 2}}}]}, base64 without padding as gRPC sends binary metadata. */
static const char k_literal[] =
    "CAgSBXF1b3RhGjIKKHR5cGUuZ29vZ2xlYXBpcy5jb20vZ29vZ2xlLnJwYy5SZXRyeUluZm8SBgoECAEQAg";

/* ---- building messages ---- */

typedef struct msg {
    uint8_t b[2048];
    size_t n;
} msg;

static void put_varint(msg *m, uint64_t v)
{
    while (v >= 0x80) {
        m->b[m->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    m->b[m->n++] = (uint8_t)v;
}

static void put_key(msg *m, uint32_t field, uint32_t wire)
{
    put_varint(m, ((uint64_t)field << 3) | wire);
}

static void put_bytes(msg *m, uint32_t field, const void *p, size_t n)
{
    put_key(m, field, 2);
    put_varint(m, n);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void put_int(msg *m, uint32_t field, int64_t v)
{
    put_key(m, field, 0);
    put_varint(m, (uint64_t)v);
}

static msg duration(int64_t seconds, int32_t nanos)
{
    msg d = {.n = 0};
    if (seconds != 0) {
        put_int(&d, 1, seconds);
    }
    if (nanos != 0) {
        put_int(&d, 2, nanos);
    }
    return d;
}

static msg retry_info(const msg *delay)
{
    msg r = {.n = 0};
    if (delay != NULL) {
        put_bytes(&r, 1, delay->b, delay->n);
    }
    return r;
}

static msg any(const char *type_url, const msg *value)
{
    msg a = {.n = 0};
    put_bytes(&a, 1, type_url, strlen(type_url));
    put_bytes(&a, 2, value->b, value->n);
    return a;
}

/* Status{code, message "busy", details...} */
static msg status(int code, const msg *details, size_t n)
{
    msg s = {.n = 0};
    put_int(&s, 1, code);
    put_bytes(&s, 2, "busy", 4);
    for (size_t i = 0; i < n; i++) {
        put_bytes(&s, 3, details[i].b, details[i].n);
    }
    return s;
}

/* Standard-alphabet base64 into out (NUL-terminated), padded or not. */
static void b64(const msg *m, bool pad, char *out, size_t cap)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < m->n; i += 3) {
        uint32_t v = (uint32_t)m->b[i] << 16;
        size_t k = m->n - i < 3 ? m->n - i : 3;
        if (k > 1) {
            v |= (uint32_t)m->b[i + 1] << 8;
        }
        if (k > 2) {
            v |= m->b[i + 2];
        }
        for (size_t j = 0; j < 4; j++) {
            assert_true(o + 1 < cap);
            if (j <= k) {
                out[o++] = a[(v >> (18 - 6 * j)) & 63];
            } else if (pad) {
                out[o++] = '=';
            }
        }
    }
    out[o] = '\0';
}

static clew_status decode(const msg *m, bool pad, uint64_t *delay)
{
    char text[4096];
    b64(m, pad, text, sizeof(text));
    return clew__grpc_retry_info(text, strlen(text), delay);
}

/* ---- tests ---- */

static void test_literal_trailer(void **state)
{
    (void)state;
    uint64_t d = 0;
    assert_int_equal(clew__grpc_retry_info(k_literal, strlen(k_literal), &d), CLEW_OK);
    assert_int_equal(d, 1000000002ull);
    /* the header line as libcurl hands it over: a leading blank and CRLF */
    char line[256];
    int n = snprintf(line, sizeof(line), " %s==\r\n", k_literal);
    d = 0;
    assert_int_equal(clew__grpc_retry_info(line, (size_t)n, &d), CLEW_OK);
    assert_int_equal(d, 1000000002ull);
}

static void test_built_matches_literal(void **state)
{
    (void)state;
    msg dur = duration(1, 2);
    msg ri = retry_info(&dur);
    msg detail = any(RETRY_INFO_URL, &ri);
    msg st = {.n = 0};
    put_int(&st, 1, 8);
    put_bytes(&st, 2, "quota", 5);
    put_bytes(&st, 3, detail.b, detail.n);
    char text[512];
    b64(&st, false, text, sizeof(text));
    assert_string_equal(text, k_literal);
}

static void test_padding_and_delays(void **state)
{
    (void)state;
    static const struct {
        int64_t s;
        int32_t ns;
        uint64_t want;
    } cases[] = {
        {0, 0, 0},
        {0, 250000000, 250000000ull},
        {3, 0, 3000000000ull},
        {30, 999999999, 30999999999ull},
        /* the largest that fits 64 bits of nanoseconds, then saturation below UINT64_MAX
         * ("none given") up to Duration's own limit */
        {18446744072ll, 999999999, 18446744072999999999ull},
        {18446744073ll, 0, UINT64_MAX - 1},
        {315576000000ll, 0, UINT64_MAX - 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg dur = duration(cases[i].s, cases[i].ns);
        msg ri = retry_info(&dur);
        msg detail = any(RETRY_INFO_URL, &ri);
        msg st = status(8, &detail, 1);
        for (int pad = 0; pad <= 1; pad++) {
            uint64_t d = 7;
            assert_int_equal(decode(&st, pad, &d), CLEW_OK);
            assert_int_equal(d, cases[i].want);
        }
    }
}

static void test_retryinfo_among_other_details(void **state)
{
    (void)state;
    msg other_val = {.n = 0};
    put_bytes(&other_val, 1, "QUOTA_EXCEEDED", 14); /* ErrorInfo.reason */
    msg dur = duration(2, 0);
    msg ri = retry_info(&dur);
    msg dur2 = duration(9, 0);
    msg ri2 = retry_info(&dur2);
    msg details[3] = {any("type.googleapis.com/google.rpc.ErrorInfo", &other_val),
                      any(RETRY_INFO_URL, &ri), any(RETRY_INFO_URL, &ri2)};
    msg st = status(8, details, 3);
    uint64_t d = 0;
    assert_int_equal(decode(&st, false, &d), CLEW_OK);
    assert_int_equal(d, 2000000000ull); /* the first RetryInfo decides */

    /* unknown Status fields of every wire type are skipped */
    put_key(&st, 9, 1);
    memset(st.b + st.n, 0xff, 8);
    st.n += 8;
    put_key(&st, 10, 5);
    memset(st.b + st.n, 0xff, 4);
    st.n += 4;
    put_int(&st, 11, -1);
    put_bytes(&st, 12, "x", 1);
    d = 0;
    assert_int_equal(decode(&st, false, &d), CLEW_OK);
    assert_int_equal(d, 2000000000ull);
}

static void test_no_retryinfo(void **state)
{
    (void)state;
    uint64_t d = 42;
    /* no details at all */
    msg st = status(8, NULL, 0);
    assert_int_equal(decode(&st, false, &d), CLEW_ENOTFOUND);
    /* only another detail type, even one whose payload looks like a RetryInfo */
    msg dur = duration(1, 0);
    msg ri = retry_info(&dur);
    msg other[2] = {any("type.googleapis.com/google.rpc.DebugInfo", &ri),
                    any("type.googleapis.com/google.rpc.RetryInfoX", &ri)};
    st = status(8, other, 2);
    assert_int_equal(decode(&st, false, &d), CLEW_ENOTFOUND);
    /* an empty value is an empty Status */
    assert_int_equal(clew__grpc_retry_info("", 0, &d), CLEW_ENOTFOUND);
    assert_int_equal(d, 42); /* untouched when nothing was found */
}

static void test_retryinfo_without_delay(void **state)
{
    (void)state;
    msg ri = retry_info(NULL);
    msg detail = any(RETRY_INFO_URL, &ri);
    msg st = status(8, &detail, 1);
    uint64_t d = 0;
    assert_int_equal(decode(&st, false, &d), CLEW_OK);
    assert_true(d == UINT64_MAX);
}

static void test_malformed(void **state)
{
    (void)state;
    uint64_t d = 0;
    /* not base64 */
    assert_int_equal(clew__grpc_retry_info("CAgS*XF1", 8, &d), CLEW_EPARSE);
    assert_int_equal(clew__grpc_retry_info("CAgSB", 5, &d), CLEW_EPARSE); /* 1 mod 4 */
    /* every strict prefix of a valid Status is truncated somewhere inside a field */
    msg dur = duration(1, 2);
    msg ri = retry_info(&dur);
    msg detail = any(RETRY_INFO_URL, &ri);
    msg st = status(8, &detail, 1);
    msg cut = st;
    cut.n = st.n - 1;
    assert_int_equal(decode(&cut, false, &d), CLEW_EPARSE);
    cut.n = 7; /* inside "busy" */
    assert_int_equal(decode(&cut, false, &d), CLEW_EPARSE);
    /* a length running past the end */
    msg bad = {.n = 0};
    put_key(&bad, 3, 2);
    put_varint(&bad, 100);
    put_bytes(&bad, 1, "x", 1);
    assert_int_equal(decode(&bad, false, &d), CLEW_EPARSE);
    /* a varint longer than ten bytes */
    bad.n = 0;
    put_key(&bad, 1, 0);
    memset(bad.b + bad.n, 0x80, 11);
    bad.n += 11;
    bad.b[bad.n++] = 1;
    assert_int_equal(decode(&bad, false, &d), CLEW_EPARSE);
    /* field number 0, and a group */
    bad.n = 0;
    put_key(&bad, 0, 0);
    put_varint(&bad, 1);
    assert_int_equal(decode(&bad, false, &d), CLEW_EPARSE);
    bad.n = 0;
    put_key(&bad, 5, 3);
    assert_int_equal(decode(&bad, false, &d), CLEW_EPARSE);
    /* details with the wrong wire type */
    bad.n = 0;
    put_int(&bad, 3, 1);
    assert_int_equal(decode(&bad, false, &d), CLEW_EPARSE);
}

static void test_bad_delays(void **state)
{
    (void)state;
    static const struct {
        int64_t s;
        int32_t ns;
    } cases[] = {{-1, 0}, {0, -5}, {0, 1000000000}, {315576000001ll, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg dur = duration(cases[i].s, cases[i].ns);
        msg ri = retry_info(&dur);
        msg detail = any(RETRY_INFO_URL, &ri);
        msg st = status(8, &detail, 1);
        uint64_t d = 0;
        assert_int_equal(decode(&st, false, &d), CLEW_EPARSE);
        /* a RetryInfo that cannot be honoured does not make RESOURCE_EXHAUSTED retryable */
        char text[512];
        b64(&st, false, text, sizeof(text));
        assert_false(clew__grpc_retryable(8, text, strlen(text), &d));
        assert_true(clew__grpc_retryable(14, text, strlen(text), &d));
        assert_true(d == UINT64_MAX);
    }
    /* retry_delay that is not a message */
    msg ri = {.n = 0};
    put_int(&ri, 1, 5);
    msg detail = any(RETRY_INFO_URL, &ri);
    msg st = status(8, &detail, 1);
    uint64_t d = 0;
    assert_int_equal(decode(&st, false, &d), CLEW_EPARSE);
}

static void test_too_long(void **state)
{
    (void)state;
    static char big[CLEW__GRPC_DETAILS_MAX + 5];
    memset(big, 'A', sizeof(big));
    uint64_t d = 0;
    assert_int_equal(clew__grpc_retry_info(big, sizeof(big), &d), CLEW_ETOOBIG);
    /* at the limit it is decoded: zero bytes are field 0, which is malformed */
    assert_int_equal(clew__grpc_retry_info(big, CLEW__GRPC_DETAILS_MAX, &d), CLEW_EPARSE);
    assert_int_equal(clew__grpc_retry_info(NULL, 0, &d), CLEW_EINVAL);
}

static void test_retry_decision(void **state)
{
    (void)state;
    msg dur = duration(1, 2);
    msg ri = retry_info(&dur);
    msg detail = any(RETRY_INFO_URL, &ri);
    msg with = status(8, &detail, 1);
    msg without = status(8, NULL, 0);
    char w[512], wo[512];
    b64(&with, false, w, sizeof(w));
    b64(&without, false, wo, sizeof(wo));
    uint64_t d = 0;

    /* RESOURCE_EXHAUSTED: final without RetryInfo, retried after its delay with it */
    assert_false(clew__grpc_retryable(8, NULL, 0, &d));
    assert_false(clew__grpc_retryable(8, wo, strlen(wo), &d));
    assert_false(clew__grpc_retryable(8, "!!!!", 4, &d));
    assert_true(clew__grpc_retryable(8, w, strlen(w), &d));
    assert_int_equal(d, 1000000002ull);

    /* the always-retryable codes, with and without a server delay */
    static const int retryable[] = {1, 4, 10, 11, 14, 15};
    for (size_t i = 0; i < sizeof(retryable) / sizeof(retryable[0]); i++) {
        d = 0;
        assert_true(clew__grpc_retryable(retryable[i], NULL, 0, &d));
        assert_true(d == UINT64_MAX);
        assert_true(clew__grpc_retryable(retryable[i], wo, strlen(wo), &d));
        assert_true(d == UINT64_MAX);
        assert_true(clew__grpc_retryable(retryable[i], w, strlen(w), &d));
        assert_int_equal(d, 1000000002ull);
    }
    /* everything else is final, RetryInfo or not */
    static const int final[] = {0, 2, 3, 5, 6, 7, 9, 12, 13, 16, 17, -1};
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        assert_false(clew__grpc_retryable(final[i], NULL, 0, &d));
        assert_false(clew__grpc_retryable(final[i], w, strlen(w), &d));
    }
}

/* ---- the exporter against a scripted h2c server ---- */

#define MAX_CALLS 8

static struct {
    int lfd, port;
    pthread_t th;
    pthread_mutex_t mu;
    bool stop;
    int calls;
    uint64_t call_ns[MAX_CALLS]; /* monotonic time each call's request ended */
    int n_script;
    int status[MAX_CALLS];        /* grpc-status of call i; past the script: 0 */
    char details[MAX_CALLS][512]; /* grpc-status-details-bin of call i; "" = none */
} h2;

typedef struct h2conn {
    int fd;
    nghttp2_session *session;
} h2conn;

static ssize_t h2_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    (void)session;
    (void)flags;
    h2conn *c = user_data;
    ssize_t n = send(c->fd, data, length, MSG_NOSIGNAL);
    return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

/* A request is complete when a frame carries END_STREAM: answer it
 * trailers-only (one HEADERS frame with END_STREAM). */
static int h2_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)user_data;
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    pthread_mutex_lock(&h2.mu);
    int i = h2.calls++;
    if (i < MAX_CALLS) {
        h2.call_ns[i] = clew__now_mono_ns();
    }
    int status = i < h2.n_script ? h2.status[i] : 0;
    char st[8], details[512];
    snprintf(st, sizeof(st), "%d", status);
    snprintf(details, sizeof(details), "%s", i < h2.n_script ? h2.details[i] : "");
    pthread_mutex_unlock(&h2.mu);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                        NV("grpc-status", st), NV("grpc-message", "scripted"),
                        NV("grpc-status-details-bin", details)};
#undef NV
    size_t n = details[0] != '\0' ? 5 : 4;
    return nghttp2_submit_response(session, frame->hd.stream_id, nva, n, NULL) == 0
               ? 0
               : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static void h2_serve_conn(int fd)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, h2_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_frame_recv);
    h2conn c = {fd, NULL};
    nghttp2_session_server_new(&c.session, cb, &c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c.session, NGHTTP2_FLAG_NONE, NULL, 0);
    for (;;) {
        if (nghttp2_session_send(c.session) != 0) {
            break;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, 100);
        pthread_mutex_lock(&h2.mu);
        bool stop = h2.stop;
        pthread_mutex_unlock(&h2.mu);
        if (stop) {
            break;
        }
        if (r <= 0) {
            continue;
        }
        uint8_t buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0 || nghttp2_session_mem_recv(c.session, buf, (size_t)n) < 0) {
            break;
        }
    }
    nghttp2_session_del(c.session);
    close(fd);
}

static void *h2_serve(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd pf = {h2.lfd, POLLIN, 0};
        int r = poll(&pf, 1, 100);
        pthread_mutex_lock(&h2.mu);
        bool stop = h2.stop;
        pthread_mutex_unlock(&h2.mu);
        if (stop) {
            return NULL;
        }
        if (r > 0) {
            int fd = accept(h2.lfd, NULL, NULL);
            if (fd >= 0) {
                h2_serve_conn(fd);
            }
        }
    }
}

static int h2_setup(void **state)
{
    (void)state;
    memset(&h2, 0, sizeof(h2));
    pthread_mutex_init(&h2.mu, NULL);
    h2.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (h2.lfd < 0 || bind(h2.lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(h2.lfd, 8) != 0 || getsockname(h2.lfd, (struct sockaddr *)&a, &al) != 0) {
        return -1;
    }
    h2.port = ntohs(a.sin_port);
    return pthread_create(&h2.th, NULL, h2_serve, NULL) == 0 ? 0 : -1;
}

static int h2_teardown(void **state)
{
    (void)state;
    pthread_mutex_lock(&h2.mu);
    h2.stop = true;
    pthread_mutex_unlock(&h2.mu);
    pthread_join(h2.th, NULL);
    close(h2.lfd);
    pthread_mutex_destroy(&h2.mu);
    return 0;
}

/* Scripts the answers of the next calls: grpc-status, details value (NULL = none). */
static void h2_script(int n, const int *status, const char *const *details)
{
    pthread_mutex_lock(&h2.mu);
    h2.calls = 0;
    h2.n_script = n;
    for (int i = 0; i < n; i++) {
        h2.status[i] = status[i];
        snprintf(h2.details[i], sizeof(h2.details[i]), "%s", details[i] ? details[i] : "");
    }
    pthread_mutex_unlock(&h2.mu);
}

static int h2_calls(uint64_t *gap_ns)
{
    pthread_mutex_lock(&h2.mu);
    int n = h2.calls;
    if (gap_ns != NULL) {
        *gap_ns = n >= 2 ? h2.call_ns[1] - h2.call_ns[0] : 0;
    }
    pthread_mutex_unlock(&h2.mu);
    return n;
}

/* Exports n spans (one export call each) through a simple-processor provider;
 * returns how many were exported (the others were counted as failed). */
static int export_n(int n, uint32_t timeout_ms)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", h2.port);
    clew_otlp_config oc;
    clew_otlp_config_init(&oc);
    oc.url = url;
    oc.protocol = CLEW_OTLP_GRPC;
    oc.retry_initial_ms = 10; /* the exporter's own backoff: far below the delays scripted */
    oc.retry_max_ms = 20;
    clew_provider_config c;
    clew_provider_config_init(&c);
    c.processor = CLEW_PROCESSOR_SIMPLE;
    c.batch.export_timeout_ms = timeout_ms;
    c.service_name = "retryinfo-test";
    assert_int_equal(clew_exporter_otlp_http(&oc, &c.exporter), CLEW_OK);
    clew_provider *p;
    assert_int_equal(clew_provider_create(&c, &p), CLEW_OK);
    clew_tracer *t;
    assert_int_equal(clew_provider_tracer(p, "retryinfo", NULL, &t), CLEW_OK);
    for (int i = 0; i < n; i++) {
        clew_span_end(clew_span_start(t, "one", NULL), 0);
    }
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    clew_provider_destroy(p);
    assert_int_equal(st.exported_spans + st.failed_spans, (uint64_t)n);
    return (int)st.exported_spans;
}

static bool export_one(uint32_t timeout_ms)
{
    return export_n(1, timeout_ms) == 1;
}

/* base64 of Status{code, details: [RetryInfo{retry_delay: {s, ns}}]} */
static void retry_details(int code, int64_t s, int32_t ns, char *out, size_t cap)
{
    msg dur = duration(s, ns);
    msg ri = retry_info(&dur);
    msg detail = any(RETRY_INFO_URL, &ri);
    msg st = status(code, &detail, 1);
    b64(&st, false, out, cap);
}

/* Consecutive exports on one exporter share its HTTP/2 connection (or, with
 * a libcurl that cannot reuse a prior-knowledge connection, open a new one):
 * either way every export arrives. */
static void test_export_consecutive(void **state)
{
    (void)state;
    h2_script(0, NULL, NULL);
    assert_int_equal(export_n(3, 5000), 3);
    assert_int_equal(h2_calls(NULL), 3);
}

static void test_export_resource_exhausted_with_retryinfo(void **state)
{
    (void)state;
    char d[512];
    retry_details(8, 0, 300000000, d, sizeof(d));
    const int st[] = {8};
    const char *const det[] = {d};
    h2_script(1, st, det);
    assert_true(export_one(5000));
    uint64_t gap;
    assert_int_equal(h2_calls(&gap), 2);
    /* the server's 300 ms, not the exporter's 10 ms backoff */
    assert_true(gap >= 300000000ull);
    assert_true(gap < 3000000000ull);
}

static void test_export_resource_exhausted_without_retryinfo(void **state)
{
    (void)state;
    msg other_val = {.n = 0};
    put_bytes(&other_val, 1, "QUOTA", 5);
    msg detail = any("type.googleapis.com/google.rpc.ErrorInfo", &other_val);
    msg stm = status(8, &detail, 1);
    char d[512];
    b64(&stm, false, d, sizeof(d));
    const int st[] = {8, 8};
    const char *const det[] = {NULL, d};
    /* no details at all: final after one call */
    h2_script(1, st, det);
    assert_false(export_one(5000));
    assert_int_equal(h2_calls(NULL), 1);
    /* details without a RetryInfo: final as well */
    h2_script(1, st + 1, det + 1);
    assert_false(export_one(5000));
    assert_int_equal(h2_calls(NULL), 1);
}

static void test_export_unavailable_honours_retryinfo(void **state)
{
    (void)state;
    char d[512];
    retry_details(14, 0, 250000000, d, sizeof(d));
    const int st[] = {14};
    const char *const det[] = {d};
    h2_script(1, st, det);
    assert_true(export_one(5000));
    uint64_t gap;
    assert_int_equal(h2_calls(&gap), 2);
    assert_true(gap >= 250000000ull);
}

static void test_export_retryinfo_past_deadline(void **state)
{
    (void)state;
    /* a delay longer than the export timeout (here the longest Duration):
     * the exporter gives up at once instead of sleeping past its deadline */
    char d[512];
    retry_details(8, 315576000000ll, 0, d, sizeof(d));
    const int st[] = {8};
    const char *const det[] = {d};
    h2_script(1, st, det);
    uint64_t t0 = clew__now_mono_ns();
    assert_false(export_one(1000));
    assert_true(clew__now_mono_ns() - t0 < 1000000000ull);
    assert_int_equal(h2_calls(NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_trailer),
        cmocka_unit_test(test_built_matches_literal),
        cmocka_unit_test(test_padding_and_delays),
        cmocka_unit_test(test_retryinfo_among_other_details),
        cmocka_unit_test(test_no_retryinfo),
        cmocka_unit_test(test_retryinfo_without_delay),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bad_delays),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_retry_decision),
    };
    const struct CMUnitTest exporter[] = {
        cmocka_unit_test(test_export_consecutive),
        cmocka_unit_test(test_export_resource_exhausted_with_retryinfo),
        cmocka_unit_test(test_export_resource_exhausted_without_retryinfo),
        cmocka_unit_test(test_export_unavailable_honours_retryinfo),
        cmocka_unit_test(test_export_retryinfo_past_deadline),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(exporter, h2_setup, h2_teardown);
}
