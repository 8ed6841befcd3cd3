/*
 * bench/ingest_load.c - OTLP/HTTP protobuf load generator for `clew serve`.
 *
 * Builds the reference workload (bench/README.md) with the span model and the OTLP
 * protobuf encoder, pre-encodes K requests of S spans each, then sends them over C
 * keep-alive HTTP/1.1 connections (one thread per connection, Content-Length bodies)
 * until a span count or a duration is reached. Only a 200 answer counts as
 * acknowledged. Prints spans/s, requests/s, p50/p99 request latency and, given the
 * server's pid, its CPU seconds per million spans (utime+stime from /proc/PID/stat)
 * and its peak RSS (VmHWM from /proc/PID/status).
 *
 * Every request carries whole traces (a trace never straddles two requests), and each
 * send rewrites the first 8 bytes of every trace id in its copy of the encoded request
 * with a per-send mask, so every trace the server sees is new while the send path does
 * no encoding work.
 *
 * Exit status: 0 when every request was answered 200, 1 otherwise, 2 on bad usage.
 * Single process; the workload is built before the threads start and is read-only
 * while they run.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/hex.h"
#include "model/model.h"

#define MAX_SERVICES      12
#define OPS_PER_SERVICE   5
#define MIN_TRACE_SPANS   5
#define MAX_TRACE_SPANS   30
#define SPAN_ATTRS        10
#define RESOURCE_ATTRS    5
#define RESPONSE_MAX_BODY (1u << 20)

/* ---- options ---- */

typedef struct options {
    char host[256];
    char port[16];
    char path[512];
    uint64_t spans;    /* stop after this many spans (rounded up to whole requests); 0 = no limit */
    double duration_s; /* stop after this long; 0 = no limit */
    unsigned connections;
    unsigned batch;     /* spans per request */
    unsigned templates; /* pre-encoded requests */
    unsigned services;
    uint64_t seed;
    long server_pid; /* 0 = not given */
    const char *trace_log;
    unsigned retries; /* resends of a request answered 429/503 (back-pressure), 0 = none */
} options;

/* ---- a small PRNG (splitmix64): fast, seedable, good enough for a workload ---- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
    return n == 0 ? 0 : splitmix64(s) % n;
}

/* A bijection of the send sequence number: distinct sends get distinct id masks. */
static uint64_t send_mask(uint64_t seq)
{
    uint64_t s = seq;
    return splitmix64(&s);
}

/* ---- the reference workload ---- */

static const char *const SERVICE_NAMES[MAX_SERVICES] = {
    "frontend", "api-gateway", "checkout", "payment", "inventory", "shipping",
    "users",    "catalog",     "search",   "pricing", "email",     "recommendation",
};

static const char *const OPERATIONS[OPS_PER_SERVICE] = {
    "GET /api/v1/orders/{id}",
    "POST /api/v1/cart/items",
    "GET /api/v1/products",
    "SELECT orders",
    "cache.get",
};

static const char *const USER_AGENTS[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
};

typedef struct workload {
    clew_arena arena; /* resources, scope and their strings */
    clew_resource resources[MAX_SERVICES];
    clew_scope scope;
    unsigned n_services;
} workload;

static clew_str lit(const char *s)
{
    clew_str r = {s, strlen(s)};
    return r;
}

static bool put_str(clew_arena *a, clew_kv *kv, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool put_str(clew_arena *a, clew_kv *kv, const char *key, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return false;
    }
    size_t len = (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1;
    kv->key = lit(key);
    kv->value.type = CLEW_VALUE_STRING;
    kv->value.u.s = clew__arena_strdup(a, tmp, len);
    return kv->value.u.s.ptr != NULL;
}

static void put_int(clew_kv *kv, const char *key, int64_t v)
{
    kv->key = lit(key);
    kv->value.type = CLEW_VALUE_INT;
    kv->value.u.i = v;
}

static void put_double(clew_kv *kv, const char *key, double v)
{
    kv->key = lit(key);
    kv->value.type = CLEW_VALUE_DOUBLE;
    kv->value.u.d = v;
}

static void put_bool(clew_kv *kv, const char *key, bool v)
{
    kv->key = lit(key);
    kv->value.type = CLEW_VALUE_BOOL;
    kv->value.u.b = v;
}

static clew_status workload_init(workload *w, unsigned n_services, uint64_t *rng)
{
    memset(w, 0, sizeof(*w));
    clew__arena_init(&w->arena, 64 * 1024, 0);
    w->n_services = n_services;
    w->scope.name = lit("io.opentelemetry.http-server");
    w->scope.version = lit("1.27.0");
    for (unsigned i = 0; i < n_services; i++) {
        clew_kv *kv = clew__arena_calloc(&w->arena, RESOURCE_ATTRS, sizeof(*kv));
        if (kv == NULL) {
            return CLEW_ENOMEM;
        }
        const char *svc = SERVICE_NAMES[i];
        bool ok = put_str(&w->arena, &kv[0], "service.name", "%s", svc) &&
                  put_str(&w->arena, &kv[1], "service.version", "1.%u.%u", i % 7,
                          (unsigned)rnd_below(rng, 20)) &&
                  put_str(&w->arena, &kv[2], "service.instance.id", "%s-7f9c6d%04x", svc,
                          (unsigned)rnd_below(rng, 0x10000)) &&
                  put_str(&w->arena, &kv[3], "host.name", "node-%u.prod.internal", i % 3) &&
                  put_str(&w->arena, &kv[4], "telemetry.sdk.language", "%s", i % 2 ? "go" : "java");
        if (!ok) {
            return CLEW_ENOMEM;
        }
        w->resources[i].attrs.items = kv;
        w->resources[i].attrs.n = RESOURCE_ATTRS;
    }
    return CLEW_OK;
}

/* The 10 attributes of a span: HTTP semantic conventions for server and client spans,
 * code and application attributes for internal ones. */
static bool span_attrs(clew_arena *a, clew_span_data *sp, unsigned svc, uint64_t *rng)
{
    clew_kv *kv = clew__arena_calloc(a, SPAN_ATTRS, sizeof(*kv));
    if (kv == NULL) {
        return false;
    }
    bool err = sp->status_code == CLEW_STATUS_ERROR;
    unsigned id = (unsigned)rnd_below(rng, 1000000);
    bool ok;
    if (sp->kind == CLEW_KIND_SERVER || sp->kind == CLEW_KIND_CLIENT) {
        static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
        ok =
            put_str(a, &kv[0], "http.request.method", "%s", methods[rnd_below(rng, 4)]) &&
            put_str(a, &kv[1], "url.path", "/api/v1/orders/%u/items?expand=shipping", id) &&
            put_str(a, &kv[2], "http.route", "/api/v1/orders/{id}/items") &&
            put_str(a, &kv[4], "server.address", "%s.prod.svc.cluster.local", SERVICE_NAMES[svc]) &&
            put_str(a, &kv[6], "client.address", "10.%u.%u.%u", (unsigned)rnd_below(rng, 256),
                    (unsigned)rnd_below(rng, 256), (unsigned)rnd_below(rng, 256)) &&
            put_str(a, &kv[7], "user_agent.original", "%s",
                    USER_AGENTS[rnd_below(rng, sizeof(USER_AGENTS) / sizeof(USER_AGENTS[0]))]) &&
            put_str(a, &kv[8], "network.protocol.version", "1.1") &&
            put_str(a, &kv[9], "enduser.id", "user-%06u", (unsigned)rnd_below(rng, 1000000));
        put_int(&kv[3], "http.response.status_code", err ? 503 : 200);
        put_int(&kv[5], "server.port", 8080);
    } else {
        static const char *const regions[] = {"eu-west-1", "us-east-1", "ap-south-1"};
        ok = put_str(a, &kv[0], "code.function.name", "%s.handler.process_item",
                     SERVICE_NAMES[svc]) &&
             put_str(a, &kv[1], "code.file.path", "src/%s/handlers/items.c", SERVICE_NAMES[svc]) &&
             put_str(a, &kv[5], "app.user.tier", "%s", rnd_below(rng, 4) ? "standard" : "gold") &&
             put_str(a, &kv[6], "cloud.region", "%s", regions[rnd_below(rng, 3)]) &&
             put_str(a, &kv[9], "app.request.id", "req-%016" PRIx64, splitmix64(rng));
        put_int(&kv[2], "code.line.number", 100 + (int64_t)rnd_below(rng, 900));
        put_int(&kv[3], "thread.id", 1 + (int64_t)rnd_below(rng, 64));
        put_bool(&kv[4], "app.cache.hit", rnd_below(rng, 3) != 0);
        put_double(&kv[7], "app.order.amount", (double)rnd_below(rng, 100000) / 100.0);
        put_int(&kv[8], "app.items.count", 1 + (int64_t)rnd_below(rng, 20));
    }
    sp->attrs.items = kv;
    sp->attrs.n = SPAN_ATTRS;
    return ok;
}

/* Fills spans[0..n) with one trace: a server root on a front service, then each span a
 * child of a random earlier one, nested inside its parent's time range. A child in
 * another service is that service's SERVER span; one in the same service is a CLIENT,
 * INTERNAL or (rarely) PRODUCER span. About 2% of spans fail. */
static bool make_trace(const workload *w, clew_arena *a, clew_span_data *spans, unsigned n,
                       uint64_t t0, uint64_t *rng)
{
    clew_trace_id tid;
    for (unsigned i = 0; i < 16; i += 8) {
        uint64_t r = splitmix64(rng);
        memcpy(&tid.bytes[i], &r, 8);
    }
    unsigned svc_of[MAX_TRACE_SPANS];
    for (unsigned i = 0; i < n; i++) {
        clew_span_data *sp = &spans[i];
        memset(sp, 0, sizeof(*sp));
        sp->trace_id = tid;
        uint64_t r = splitmix64(rng) | 1; /* never all zero */
        memcpy(sp->span_id.bytes, &r, 8);
        sp->flags = CLEW_FLAG_SAMPLED | CLEW_FLAG_HAS_IS_REMOTE;
        sp->scope = &w->scope;
        unsigned svc;
        if (i == 0) {
            svc = (unsigned)rnd_below(rng, w->n_services < 2 ? w->n_services : 2);
            sp->kind = CLEW_KIND_SERVER;
            sp->start_ns = t0;
            sp->end_ns = t0 + 5000000 + rnd_below(rng, 300000000);
        } else {
            unsigned p = (unsigned)rnd_below(rng, i);
            const clew_span_data *parent = &spans[p];
            sp->parent_span_id = parent->span_id;
            if (rnd_below(rng, 2) == 0) {
                svc = (unsigned)rnd_below(rng, w->n_services);
            } else {
                svc = svc_of[p];
            }
            if (svc != svc_of[p]) {
                sp->kind = CLEW_KIND_SERVER;
            } else {
                static const clew_span_kind same[] = {CLEW_KIND_CLIENT, CLEW_KIND_INTERNAL,
                                                      CLEW_KIND_CLIENT, CLEW_KIND_INTERNAL,
                                                      CLEW_KIND_PRODUCER};
                sp->kind = same[rnd_below(rng, 5)];
            }
            uint64_t dur = parent->end_ns - parent->start_ns;
            sp->start_ns = parent->start_ns + rnd_below(rng, dur / 2 + 1);
            sp->end_ns = sp->start_ns + 1 + rnd_below(rng, parent->end_ns - sp->start_ns);
        }
        svc_of[i] = svc;
        sp->resource = &w->resources[svc];
        sp->name = lit(OPERATIONS[(svc + rnd_below(rng, OPS_PER_SERVICE)) % OPS_PER_SERVICE]);
        if (rnd_below(rng, 50) == 0) {
            sp->status_code = CLEW_STATUS_ERROR;
            sp->status_message = lit("upstream returned 503 Service Unavailable");
        }
        if (!span_attrs(a, sp, svc, rng)) {
            return false;
        }
    }
    return true;
}

/* One pre-encoded request, with where its trace ids sit in the encoded bytes. */
typedef struct tmpl_trace {
    clew_trace_id id;
    uint32_t spans;
} tmpl_trace;

typedef struct tmpl {
    char *body;
    size_t len;
    size_t *id_offsets; /* every occurrence of a trace id in body */
    size_t n_offsets;
    tmpl_trace *traces;
    size_t n_traces;
} tmpl;

static void tmpl_deinit(tmpl *t)
{
    clew__free(t->body);
    clew__free(t->id_offsets);
    clew__free(t->traces);
    memset(t, 0, sizeof(*t));
}

static clew_status tmpl_build(tmpl *t, const workload *w, unsigned batch, uint64_t t0,
                              uint64_t *rng)
{
    memset(t, 0, sizeof(*t));
    clew_arena a;
    clew__arena_init(&a, 256 * 1024, 0);
    clew_status st = CLEW_ENOMEM;
    clew_buf out;
    clew__buf_init(&out, 0);
    clew_span_data *spans = clew__arena_calloc(&a, batch, sizeof(*spans));
    const clew_span_data **ptrs = clew__arena_calloc(&a, batch, sizeof(*ptrs));
    t->traces = clew__calloc(batch, sizeof(*t->traces));
    t->id_offsets = clew__calloc(batch, sizeof(*t->id_offsets));
    if (spans == NULL || ptrs == NULL || t->traces == NULL || t->id_offsets == NULL) {
        goto done;
    }
    unsigned used = 0;
    while (used < batch) {
        unsigned n =
            MIN_TRACE_SPANS + (unsigned)rnd_below(rng, MAX_TRACE_SPANS - MIN_TRACE_SPANS + 1);
        if (n > batch - used) {
            n = batch - used; /* the last trace of a request is cut to fit */
        }
        /* traces start 1 ms apart, like a steady stream of requests */
        if (!make_trace(w, &a, &spans[used], n, t0 + (uint64_t)t->n_traces * 1000000, rng)) {
            goto done;
        }
        t->traces[t->n_traces].id = spans[used].trace_id;
        t->traces[t->n_traces].spans = n;
        t->n_traces++;
        used += n;
    }
    for (unsigned i = 0; i < batch; i++) {
        ptrs[i] = &spans[i];
    }
    clew_batch b;
    st = clew__batch_from_spans(&b, ptrs, batch, &a);
    if (st != CLEW_OK) {
        goto done;
    }
    st = clew__otlp_pb_encode(&b, &out);
    if (st != CLEW_OK) {
        goto done;
    }
    t->body = clew__buf_take(&out, &t->len);
    /* The request must decode back to the same spans, or the figures mean nothing. */
    clew__arena_reset(&a);
    clew_batch back;
    clew_error err;
    memset(&err, 0, sizeof(err));
    st = clew__otlp_pb_decode((const uint8_t *)t->body, t->len, &a, &back, &err);
    if (st == CLEW_OK && (back.n_spans != batch || back.rejected != 0)) {
        st = CLEW_ECORRUPT;
    }
    if (st != CLEW_OK) {
        goto done;
    }
    /* Find every trace id in the encoding: each span's trace_id field. Random 16-byte ids
     * do not occur by chance elsewhere, and the count check below proves it. */
    for (size_t k = 0; k < t->n_traces; k++) {
        size_t found = 0;
        const char *p = t->body;
        const char *end = t->body + t->len;
        while ((p = memmem(p, (size_t)(end - p), t->traces[k].id.bytes, 16)) != NULL) {
            if (t->n_offsets == batch) {
                st = CLEW_ECORRUPT;
                goto done;
            }
            t->id_offsets[t->n_offsets++] = (size_t)(p - t->body);
            found++;
            p += 16;
        }
        if (found != t->traces[k].spans) {
            st = CLEW_ECORRUPT;
            goto done;
        }
    }
    st = CLEW_OK;
done:
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
    if (st != CLEW_OK) {
        tmpl_deinit(t);
    }
    return st;
}

/* ---- HTTP client ---- */

typedef struct conn {
    int fd;
    char buf[16384];
    size_t start, end;
} conn;

static int conn_open(const options *o)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(o->host, o->port, &hints, &res) != 0 || res == NULL) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* a server that stops answering fails the request instead of hanging the run */
        struct timeval tv = {.tv_sec = 60, .tv_usec = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

static bool write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

static bool conn_fill(conn *c)
{
    if (c->start == c->end) {
        c->start = c->end = 0;
    }
    if (c->end == sizeof(c->buf)) {
        if (c->start == 0) {
            return false; /* a line longer than the buffer */
        }
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    for (;;) {
        ssize_t r = read(c->fd, c->buf + c->end, sizeof(c->buf) - c->end);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        c->end += (size_t)r;
        return true;
    }
}

/* Reads one CRLF-terminated line into out (NUL-terminated, CRLF stripped). */
static bool conn_line(conn *c, char *out, size_t out_size)
{
    for (;;) {
        char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
        if (nl != NULL) {
            size_t len = (size_t)(nl - (c->buf + c->start));
            size_t keep = len;
            if (keep > 0 && c->buf[c->start + keep - 1] == '\r') {
                keep--;
            }
            if (keep >= out_size) {
                keep = out_size - 1;
            }
            memcpy(out, c->buf + c->start, keep);
            out[keep] = '\0';
            c->start += len + 1;
            return true;
        }
        if (!conn_fill(c)) {
            return false;
        }
    }
}

/* Reads n body bytes, keeping the first out_size-1 of them in out. */
static bool conn_body(conn *c, uint64_t n, char *out, size_t out_size, size_t *kept)
{
    while (n > 0) {
        if (c->start == c->end && !conn_fill(c)) {
            return false;
        }
        size_t take = c->end - c->start;
        if (take > n) {
            take = (size_t)n;
        }
        if (*kept + 1 < out_size) {
            size_t room = out_size - 1 - *kept;
            size_t copy = take < room ? take : room;
            memcpy(out + *kept, c->buf + c->start, copy);
            *kept += copy;
            out[*kept] = '\0';
        }
        c->start += take;
        n -= take;
    }
    return true;
}

/* Reads one response; *status gets its code and body its first bytes. false = the
 * connection is unusable (closed, malformed answer). *close_after says the server
 * asked to close. */
static bool read_response(conn *c, int *status, char *body, size_t body_size, bool *close_after)
{
    char line[1024];
    size_t kept = 0;
    body[0] = '\0';
    *close_after = false;
    do {
        if (!conn_line(c, line, sizeof(line))) {
            return false;
        }
    } while (line[0] == '\0'); /* tolerate stray CRLF between responses */
    if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12) {
        return false;
    }
    char *endp;
    long code = strtol(line + 9, &endp, 10);
    if (code < 100 || code > 599) {
        return false;
    }
    *status = (int)code;
    uint64_t content_length = 0;
    bool chunked = false;
    for (;;) {
        if (!conn_line(c, line, sizeof(line))) {
            return false;
        }
        if (line[0] == '\0') {
            break;
        }
        if (strncasecmp(line, "content-length:", 15) == 0) {
            content_length = strtoull(line + 15, NULL, 10);
        } else if (strncasecmp(line, "transfer-encoding:", 18) == 0 &&
                   strstr(line + 18, "chunked") != NULL) {
            chunked = true;
        } else if (strncasecmp(line, "connection:", 11) == 0 &&
                   strstr(line + 11, "close") != NULL) {
            *close_after = true;
        }
    }
    if (!chunked) {
        if (content_length > RESPONSE_MAX_BODY) {
            return false;
        }
        return conn_body(c, content_length, body, body_size, &kept);
    }
    for (;;) {
        if (!conn_line(c, line, sizeof(line))) {
            return false;
        }
        uint64_t size = strtoull(line, &endp, 16);
        if (endp == line || size > RESPONSE_MAX_BODY) {
            return false;
        }
        if (size == 0) {
            break;
        }
        if (!conn_body(c, size, body, body_size, &kept) || !conn_line(c, line, sizeof(line))) {
            return false;
        }
    }
    do { /* trailers, up to the empty line */
        if (!conn_line(c, line, sizeof(line))) {
            return false;
        }
    } while (line[0] != '\0');
    return true;
}

/* ---- the senders ---- */

typedef struct shared {
    const options *opt;
    const tmpl *tmpls;
    uint64_t total_requests; /* 0 = until the deadline */
    uint64_t deadline_ns;    /* 0 = none */
    atomic_uint_fast64_t next;
    size_t max_body;
    pthread_mutex_t log_lock;
    FILE *log;
} shared;

/* What each sender thread counts; the sender structs of both load generators (this file and
 * grpc_load.c) hold one as `c`. */
typedef struct sender_counts {
    uint64_t sent, acked, failed, conn_errors;
    uint64_t *lat_ns; /* one latency per answered request */
    size_t n_lat, cap_lat;
} sender_counts;

/* Records one latency; false when out of memory (the latency is then not counted). */
static bool counts_add_latency(sender_counts *c, uint64_t ns)
{
    if (c->n_lat == c->cap_lat) {
        size_t cap = c->cap_lat ? c->cap_lat * 2 : 4096;
        uint64_t *p = clew__realloc(c->lat_ns, cap * sizeof(*p));
        if (p == NULL) {
            return false;
        }
        c->lat_ns = p;
        c->cap_lat = cap;
    }
    c->lat_ns[c->n_lat++] = ns;
    return true;
}

typedef struct sender {
    shared *sh;
    pthread_t thread;
    sender_counts c;
    uint64_t retried;    /* resends after a 429/503 */
    uint64_t backoff_ns; /* time spent waiting before them */
    int first_bad_status;
    char first_bad_body[256];
} sender;

static void log_traces(shared *sh, const tmpl *t, uint64_t mask)
{
    pthread_mutex_lock(&sh->log_lock);
    for (size_t k = 0; k < t->n_traces; k++) {
        clew_trace_id id = t->traces[k].id;
        uint64_t head;
        memcpy(&head, id.bytes, 8);
        head ^= mask;
        memcpy(id.bytes, &head, 8);
        char hex[33];
        clew__trace_id_hex(&id, hex);
        fprintf(sh->log, "%s %" PRIu32 "\n", hex, t->traces[k].spans);
    }
    pthread_mutex_unlock(&sh->log_lock);
}

static void *sender_main(void *arg)
{
    sender *s = arg;
    shared *sh = s->sh;
    const options *o = sh->opt;
    conn *c = clew__calloc(1, sizeof(*c));
    char *body = clew__malloc(sh->max_body);
    if (c == NULL || body == NULL) {
        s->c.conn_errors++;
        goto out;
    }
    c->fd = -1;
    char header[1024];
    for (;;) {
        uint64_t seq = atomic_fetch_add(&sh->next, 1);
        if (sh->total_requests != 0 && seq >= sh->total_requests) {
            break;
        }
        if (sh->deadline_ns != 0 && clew__now_mono_ns() >= sh->deadline_ns) {
            break;
        }
        const tmpl *t = &sh->tmpls[seq % o->templates];
        uint64_t mask = send_mask(seq ^ o->seed);
        memcpy(body, t->body, t->len);
        for (size_t k = 0; k < t->n_offsets; k++) {
            uint64_t head;
            memcpy(&head, body + t->id_offsets[k], 8);
            head ^= mask;
            memcpy(body + t->id_offsets[k], &head, 8);
        }
        if (sh->log != NULL) {
            log_traces(sh, t, mask);
        }
        int hl = snprintf(header, sizeof(header),
                          "POST %s HTTP/1.1\r\nHost: %s:%s\r\n"
                          "Content-Type: application/x-protobuf\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          o->path, o->host, o->port, t->len);
        if (hl < 0 || (size_t)hl >= sizeof(header)) {
            s->c.failed++;
            break;
        }
        unsigned attempt = 0;
    again:
        if (c->fd < 0) {
            c->fd = conn_open(o);
            c->start = c->end = 0;
            if (c->fd < 0) {
                s->c.conn_errors++;
                s->c.failed++;
                s->c.sent++;
                if (s->c.conn_errors > 10) {
                    break; /* the server is gone; do not spin */
                }
                continue;
            }
        }
        uint64_t t_start = clew__now_mono_ns();
        struct iovec iov[2] = {{header, (size_t)hl}, {body, t->len}};
        int status = 0;
        bool close_after = false;
        char resp[256];
        s->c.sent += attempt == 0; /* a resend is the same request */
        if (!write_all(c->fd, iov, 2) ||
            !read_response(c, &status, resp, sizeof(resp), &close_after)) {
            s->c.conn_errors++;
            s->c.failed++;
            close(c->fd);
            c->fd = -1;
            if (s->c.conn_errors > 10) {
                break;
            }
            continue;
        }
        uint64_t lat = clew__now_mono_ns() - t_start;
        if ((status == 429 || status == 503) && attempt < o->retries) {
            /* back-pressure: wait and send the same request again, as an OTLP exporter
             * does (exponential from 50 ms, at most 1 s; Retry-After is 1 s) */
            uint64_t wait = (uint64_t)50000000u << (attempt < 4 ? attempt : 4);
            wait = wait > 1000000000u ? 1000000000u : wait;
            struct timespec ts = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
            nanosleep(&ts, NULL);
            s->retried++;
            s->backoff_ns += wait;
            attempt++;
            if (close_after) {
                close(c->fd);
                c->fd = -1;
            }
            goto again;
        }
        if (status == 200) {
            s->c.acked++;
        } else {
            s->c.failed++;
            if (s->first_bad_status == 0) {
                s->first_bad_status = status;
                snprintf(s->first_bad_body, sizeof(s->first_bad_body), "%s", resp);
            }
        }
        if (!counts_add_latency(&s->c, lat)) {
            break;
        }
        if (close_after) {
            close(c->fd);
            c->fd = -1;
        }
    }
out:
    if (c != NULL && c->fd >= 0) {
        close(c->fd);
    }
    clew__free(c);
    clew__free(body);
    return NULL;
}

/* ---- /proc readings ---- */

/* utime + stime of a process, in seconds; false if it cannot be read. */
static bool proc_cpu_seconds(long pid, double *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    char line[2048];
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!ok) {
        return false;
    }
    /* the command name may hold spaces and parentheses: fields resume after the last ')' */
    char *p = strrchr(line, ')');
    if (p == NULL) {
        return false;
    }
    p++;
    /* after ')': field 3 (state) ... field 14 utime, 15 stime */
    unsigned long long utime = 0, stime = 0;
    char *save = NULL;
    int field = 2;
    for (char *tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 14) {
            utime = strtoull(tok, NULL, 10);
        } else if (field == 15) {
            stime = strtoull(tok, NULL, 10);
            break;
        }
    }
    if (field != 15) {
        return false;
    }
    long tck = sysconf(_SC_CLK_TCK);
    *out = (double)(utime + stime) / (double)(tck > 0 ? tck : 100);
    return true;
}

/* VmHWM (peak resident set) of a process in KiB; false if it cannot be read. */
static bool proc_peak_rss_kib(long pid, unsigned long long *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    char line[256];
    bool ok = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            *out = strtoull(line + 6, NULL, 10);
            ok = true;
            break;
        }
    }
    fclose(f);
    return ok;
}

/* ---- main ---- */

/* The options' help under another tool's name and --url line (grpc_load shares them). */
static void usage_as(FILE *to, const char *prog, const char *url_help)
{
    fprintf(to,
            "usage: %s [options]\n"
            "  --url URL            %s\n"
            "  --spans N            spans to send, rounded up to whole requests (default 2000000)\n"
            "  --duration SECONDS   stop after this long instead (with --spans 0: only this)\n"
            "  --connections C      keep-alive connections, one thread each (default 2)\n"
            "  --batch S            spans per request (default 512)\n"
            "  --templates K        distinct pre-encoded requests (default 32)\n"
            "  --services N         services in the workload, 1-%d (default 8)\n"
            "  --seed S             workload seed (default: from the clock)\n"
            "  --server-pid PID     report the server's CPU time and peak RSS from /proc\n"
            "  --trace-log FILE     write '<trace id> <span count>' for every trace sent\n"
            "  --retry N            resend a request answered 429/503 up to N times after a\n"
            "                       pause (50 ms doubling to 1 s), as OTLP exporters do\n"
            "                       (default 0: a 429 counts as not acknowledged)\n",
            prog, url_help, MAX_SERVICES);
}

static void usage(FILE *to)
{
    usage_as(to, "ingest_load", "OTLP/HTTP endpoint (default http://127.0.0.1:4318/v1/traces)");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == '-') {
        return false;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_url(options *o, const char *url)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        return false;
    }
    p += 7;
    const char *slash = strchr(p, '/');
    const char *hostport_end = slash ? slash : p + strlen(p);
    const char *colon = memchr(p, ':', (size_t)(hostport_end - p));
    const char *host_end = colon ? colon : hostport_end;
    size_t hl = (size_t)(host_end - p);
    if (hl == 0 || hl >= sizeof(o->host)) {
        return false;
    }
    memcpy(o->host, p, hl);
    o->host[hl] = '\0';
    if (colon) {
        size_t pl = (size_t)(hostport_end - colon - 1);
        if (pl == 0 || pl >= sizeof(o->port)) {
            return false;
        }
        memcpy(o->port, colon + 1, pl);
        o->port[pl] = '\0';
    } else {
        snprintf(o->port, sizeof(o->port), "80");
    }
    snprintf(o->path, sizeof(o->path), "%s", slash ? slash : "/v1/traces");
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(const uint64_t *sorted, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1e6;
}

/* The figures both load generators (this one and grpc_load.c) print at the end. */
typedef struct load_report {
    const char *unit;      /* "requests" or "calls" */
    const char *ok_answer; /* what counted as acknowledged, e.g. "answered 200" */
    uint64_t sent, acked, failed, conn_errors;
    unsigned connections, batch;
    double secs;
    const uint64_t *lat; /* request latencies, sorted ascending */
    size_t n_lat;
    bool have_server_cpu;
    double server_cpu; /* seconds, from --server-pid */
} load_report;

/* "sent:" and "acknowledged:" (bench/store_bench.sh reads the latter). */
static void report_counts(const load_report *r)
{
    printf("sent: %" PRIu64 " %s (%" PRIu64 " spans) over %u connections in %.3f s\n", r->sent,
           r->unit, r->sent * r->batch, r->connections, r->secs);
    printf("acknowledged: %" PRIu64 " %s (%" PRIu64 " spans) %s; %" PRIu64 " not (%" PRIu64
           " connection errors)\n",
           r->acked, r->unit, r->acked * r->batch, r->ok_answer, r->failed, r->conn_errors);
}

/* Throughput, latency and the server's CPU per span. */
static void report_rates(const load_report *r)
{
    uint64_t acked_spans = r->acked * r->batch;
    printf("throughput: %.0f spans/s, %.1f %s/s (acknowledged)\n",
           r->secs > 0 ? (double)acked_spans / r->secs : 0,
           r->secs > 0 ? (double)r->acked / r->secs : 0, r->unit);
    printf("latency per %s: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           strcmp(r->unit, "calls") == 0 ? "call" : "request",
           percentile_ms(r->lat, r->n_lat, 0.50), percentile_ms(r->lat, r->n_lat, 0.99),
           r->n_lat ? (double)r->lat[r->n_lat - 1] / 1e6 : 0.0);
}

static void report_server_cpu(const load_report *r)
{
    if (!r->have_server_cpu) {
        return;
    }
    uint64_t acked_spans = r->acked * r->batch;
    double cpu = r->server_cpu;
    double per_m = acked_spans ? cpu / ((double)acked_spans / 1e6) : 0;
    printf("server CPU: %.2f s = %.3f CPU-seconds per million spans = %.0f spans per CPU-second\n",
           cpu, per_m, cpu > 0 ? (double)acked_spans / cpu : 0);
}

/* Sums the senders' counts into r and merges their latencies, sorted, into *lat (freed by the
 * caller with clew__free). False when out of memory. */
static bool gather_counts(const sender_counts *const *c, unsigned n, load_report *r, uint64_t **lat)
{
    size_t n_lat = 0;
    for (unsigned i = 0; i < n; i++) {
        r->sent += c[i]->sent;
        r->acked += c[i]->acked;
        r->failed += c[i]->failed;
        r->conn_errors += c[i]->conn_errors;
        n_lat += c[i]->n_lat;
    }
    uint64_t *all = clew__malloc((n_lat ? n_lat : 1) * sizeof(*all));
    if (all == NULL) {
        return false;
    }
    size_t k = 0;
    for (unsigned i = 0; i < n; i++) {
        if (c[i]->n_lat > 0) {
            memcpy(all + k, c[i]->lat_ns, c[i]->n_lat * sizeof(*all));
        }
        k += c[i]->n_lat;
    }
    qsort(all, n_lat, sizeof(*all), cmp_u64);
    r->lat = all;
    r->n_lat = n_lat;
    r->connections = n;
    *lat = all;
    return true;
}

static int parse_args(options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    parse_url(o, "http://127.0.0.1:4318/v1/traces");
    o->spans = 2000000;
    o->connections = 2;
    o->batch = 512;
    o->templates = 32;
    o->services = 8;
    o->seed = clew__now_unix_ns();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "ingest_load: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            if (!parse_url(o, v)) {
                fprintf(stderr, "ingest_load: bad --url %s (want http://HOST:PORT/PATH)\n", v);
                return -1;
            }
            continue;
        }
        if (strcmp(a, "--trace-log") == 0) {
            o->trace_log = v;
            continue;
        }
        if (strcmp(a, "--duration") == 0) {
            char *end;
            o->duration_s = strtod(v, &end);
            if (*end != '\0' || !(o->duration_s >= 0) || o->duration_s > 86400) {
                fprintf(stderr, "ingest_load: bad --duration %s\n", v);
                return -1;
            }
            continue;
        }
        if (!parse_u64(v, &n)) {
            fprintf(stderr, "ingest_load: %s wants a non-negative integer, not %s\n", a, v);
            return -1;
        }
        if (strcmp(a, "--spans") == 0) {
            o->spans = n;
        } else if (strcmp(a, "--connections") == 0 && n >= 1 && n <= 256) {
            o->connections = (unsigned)n;
        } else if (strcmp(a, "--batch") == 0 && n >= 1 && n <= 100000) {
            o->batch = (unsigned)n;
        } else if (strcmp(a, "--templates") == 0 && n >= 1 && n <= 4096) {
            o->templates = (unsigned)n;
        } else if (strcmp(a, "--services") == 0 && n >= 1 && n <= MAX_SERVICES) {
            o->services = (unsigned)n;
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = n;
        } else if (strcmp(a, "--retry") == 0 && n <= 1000000) {
            o->retries = (unsigned)n;
        } else if (strcmp(a, "--server-pid") == 0 && n >= 1 && n <= 0x7fffffff) {
            o->server_pid = (long)n;
        } else {
            fprintf(stderr, "ingest_load: unknown option or value out of range: %s %s\n", a, v);
            return -1;
        }
    }
    if (o->spans == 0 && o->duration_s == 0) {
        fprintf(stderr, "ingest_load: --spans 0 needs a --duration\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(&o, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    int rc = 1;
    workload w;
    tmpl *tmpls = clew__calloc(o.templates, sizeof(*tmpls));
    sender *senders = clew__calloc(o.connections, sizeof(*senders));
    shared sh;
    memset(&sh, 0, sizeof(sh));
    pthread_mutex_init(&sh.log_lock, NULL);
    uint64_t rng = o.seed;
    if (tmpls == NULL || senders == NULL || workload_init(&w, o.services, &rng) != CLEW_OK) {
        fprintf(stderr, "ingest_load: out of memory building the workload\n");
        clew__free(tmpls);
        clew__free(senders);
        return 1;
    }

    /* times a minute in the past: recent enough for any retention, and already ended */
    uint64_t t0 = clew__now_unix_ns() - 60ull * 1000000000ull;
    size_t total_bytes = 0;
    unsigned built = 0;
    for (; built < o.templates; built++) {
        clew_status st = tmpl_build(&tmpls[built], &w, o.batch, t0, &rng);
        if (st != CLEW_OK) {
            fprintf(stderr, "ingest_load: building request %u: %s\n", built, clew_strerror(st));
            goto done;
        }
        total_bytes += tmpls[built].len;
        if (tmpls[built].len > sh.max_body) {
            sh.max_body = tmpls[built].len;
        }
    }
    printf("workload: %u services, %u spans/request, %u pre-encoded requests, "
           "%.1f B/span as protobuf (%.1f KiB/request)\n",
           o.services, o.batch, o.templates, (double)total_bytes / ((double)o.templates * o.batch),
           (double)total_bytes / o.templates / 1024.0);

    printf("services:");
    for (unsigned i = 0; i < o.services; i++) {
        printf("%s%s", i ? "," : " ", SERVICE_NAMES[i]);
    }
    printf("\n");
    fflush(stdout);

    if (o.trace_log != NULL) {
        sh.log = fopen(o.trace_log, "w");
        if (sh.log == NULL) {
            fprintf(stderr, "ingest_load: cannot write %s: %s\n", o.trace_log, strerror(errno));
            goto done;
        }
    }
    sh.opt = &o;
    sh.tmpls = tmpls;
    sh.total_requests = o.spans ? (o.spans + o.batch - 1) / o.batch : 0;
    atomic_init(&sh.next, 0);

    double cpu0 = 0, cpu1 = 0;
    bool have_cpu = o.server_pid != 0 && proc_cpu_seconds(o.server_pid, &cpu0);
    if (o.server_pid != 0 && !have_cpu) {
        fprintf(stderr, "ingest_load: cannot read /proc/%ld/stat\n", o.server_pid);
    }
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t start = clew__now_mono_ns();
    if (o.duration_s > 0) {
        sh.deadline_ns = start + (uint64_t)(o.duration_s * 1e9);
    }
    unsigned started = 0;
    for (; started < o.connections; started++) {
        senders[started].sh = &sh;
        if (pthread_create(&senders[started].thread, NULL, sender_main, &senders[started]) != 0) {
            fprintf(stderr, "ingest_load: cannot start a thread\n");
            break;
        }
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(senders[i].thread, NULL);
    }
    uint64_t elapsed = clew__now_mono_ns() - start;
    getrusage(RUSAGE_SELF, &ru1);
    if (have_cpu && !proc_cpu_seconds(o.server_pid, &cpu1)) {
        have_cpu = false;
        fprintf(stderr, "ingest_load: the server (pid %ld) is gone\n", o.server_pid);
    }
    if (sh.log != NULL) {
        fclose(sh.log);
        sh.log = NULL;
    }

    load_report rep = {.unit = "requests",
                       .ok_answer = "answered 200",
                       .batch = o.batch,
                       .secs = (double)elapsed / 1e9,
                       .have_server_cpu = have_cpu,
                       .server_cpu = cpu1 - cpu0};
    const sender_counts *counts[256];
    for (unsigned i = 0; i < started; i++) {
        counts[i] = &senders[i].c;
    }
    uint64_t *lat = NULL;
    if (!gather_counts(counts, started, &rep, &lat)) {
        goto done;
    }
    report_counts(&rep);
    uint64_t retried = 0, backoff_ns = 0;
    for (unsigned i = 0; i < started; i++) {
        retried += senders[i].retried;
        backoff_ns += senders[i].backoff_ns;
    }
    if (o.retries > 0) {
        printf("back-pressure: %" PRIu64 " requests answered 429/503 and sent again after %.1f s "
               "of pauses in all (--retry %u)\n",
               retried, (double)backoff_ns / 1e9, o.retries);
    }
    for (unsigned i = 0; i < started; i++) {
        if (senders[i].first_bad_status != 0) {
            printf("first non-200 answer: HTTP %d %s\n", senders[i].first_bad_status,
                   senders[i].first_bad_body);
            break;
        }
    }
    report_rates(&rep);
    double client_cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                        (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                        (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                        (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("load generator CPU: %.2f s\n", client_cpu);
    report_server_cpu(&rep);
    unsigned long long hwm = 0;
    if (o.server_pid != 0 && proc_peak_rss_kib(o.server_pid, &hwm)) {
        printf("server peak RSS (VmHWM): %.1f MiB\n", (double)hwm / 1024.0);
    }
    clew__free(lat);
    rc = (rep.failed == 0 && rep.acked == rep.sent && rep.sent > 0) ? 0 : 1;
done:
    for (unsigned i = 0; i < o.connections; i++) {
        clew__free(senders[i].c.lat_ns);
    }
    for (unsigned i = 0; i < built; i++) {
        tmpl_deinit(&tmpls[i]);
    }
    if (sh.log != NULL) {
        fclose(sh.log);
    }
    pthread_mutex_destroy(&sh.log_lock);
    clew__arena_deinit(&w.arena);
    clew__free(tmpls);
    clew__free(senders);
    return rc;
}
