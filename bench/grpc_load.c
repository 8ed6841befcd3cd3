/*
 * bench/grpc_load.c - OTLP/gRPC load generator for `clew serve --otlp-grpc`.
 *
 * The same reference workload and pre-encoded requests as bench/ingest_load.c (its
 * code is compiled into this file, with its main renamed, so the two tools cannot
 * drift apart), sent as unary TraceService/Export calls over HTTP/2 cleartext with
 * nghttp2's client session: C connections (one thread each), each keeping up to N
 * calls in flight as concurrent streams. A call counts as acknowledged when its
 * trailers say grpc-status 0. Prints spans/s, p50/p99 call latency and, given the
 * server's pid, its CPU seconds per million spans, in the same words as ingest_load,
 * so the two figures sit side by side.
 *
 * Options: those of ingest_load (--url http://HOST:PORT, the path part is ignored)
 * plus --streams N (calls in flight per connection, default 8).
 * Exit status: 0 when every call was acknowledged, 1 otherwise, 2 on bad usage.
 */
#include <nghttp2/nghttp2.h>

/* ingest_load.c's main is not used here; everything else is */
int ingest_load_main(int argc, char **argv);
#define main ingest_load_main
#include "ingest_load.c"
#undef main

static const char GRPC_PATH[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

typedef struct gcall {
    uint8_t *body; /* 5-byte prefix + the request, sized for the largest template */
    size_t len, off;
    uint64_t t0_ns;
    int grpc_status; /* -1 until the trailers arrive */
    bool busy;
} gcall;

typedef struct gsender {
    shared *sh;
    unsigned streams;
    pthread_t thread;
    int fd;
    nghttp2_session *session;
    gcall *calls;
    unsigned inflight;
    bool exhausted; /* no more calls to start */
    sender_counts c;
    int first_bad_status;
    char first_bad_msg[256];
} gsender;

static ssize_t call_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    (void)session;
    (void)stream_id;
    (void)ud;
    gcall *c = source->ptr;
    size_t n = c->len - c->off < length ? c->len - c->off : length;
    memcpy(buf, c->body + c->off, n);
    c->off += n;
    if (c->off == c->len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    gsender *s = ud;
    gcall *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (c == NULL) {
        return 0;
    }
    if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++) {
            v = v * 10 + (value[i] - '0');
        }
        c->grpc_status = v;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0 &&
               s->first_bad_msg[0] == '\0') {
        snprintf(s->first_bad_msg, sizeof(s->first_bad_msg), "%.*s", (int)valuelen,
                 (const char *)value);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    gsender *s = ud;
    gcall *c = nghttp2_session_get_stream_user_data(session, stream_id);
    if (c == NULL) {
        return 0;
    }
    if (c->grpc_status == 0 && error_code == NGHTTP2_NO_ERROR) {
        s->c.acked++;
    } else {
        s->c.failed++;
        if (s->first_bad_status == 0) {
            s->first_bad_status = c->grpc_status != 0 ? c->grpc_status : 1000 + (int)error_code;
        }
    }
    (void)counts_add_latency(&s->c, clew__now_mono_ns() - c->t0_ns); /* out of memory: uncounted */
    c->busy = false;
    s->inflight--;
    return 0;
}

/* Starts one call in a free slot; false when there is nothing more to send. */
static bool start_call(gsender *s)
{
    shared *sh = s->sh;
    const options *o = sh->opt;
    uint64_t seq = atomic_fetch_add(&sh->next, 1);
    if ((sh->total_requests != 0 && seq >= sh->total_requests) ||
        (sh->deadline_ns != 0 && clew__now_mono_ns() >= sh->deadline_ns)) {
        s->exhausted = true;
        return false;
    }
    gcall *c = NULL;
    for (unsigned i = 0; i < s->streams; i++) {
        if (!s->calls[i].busy) {
            c = &s->calls[i];
            break;
        }
    }
    if (c == NULL) {
        return false;
    }
    const tmpl *t = &sh->tmpls[seq % o->templates];
    uint64_t mask = send_mask(seq ^ o->seed);
    c->body[0] = 0;
    c->body[1] = (uint8_t)(t->len >> 24);
    c->body[2] = (uint8_t)(t->len >> 16);
    c->body[3] = (uint8_t)(t->len >> 8);
    c->body[4] = (uint8_t)t->len;
    memcpy(c->body + 5, t->body, t->len);
    for (size_t k = 0; k < t->n_offsets; k++) {
        uint64_t head;
        memcpy(&head, c->body + 5 + t->id_offsets[k], 8);
        head ^= mask;
        memcpy(c->body + 5 + t->id_offsets[k], &head, 8);
    }
    c->len = t->len + 5;
    c->off = 0;
    c->grpc_status = -1;
    c->t0_ns = clew__now_mono_ns();
    char authority[300];
    snprintf(authority, sizeof(authority), "%s:%s", o->host, o->port);
    nghttp2_nv hdrs[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)GRPC_PATH, 5, sizeof(GRPC_PATH) - 1, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider dp;
    dp.source.ptr = c;
    dp.read_callback = call_read;
    int32_t id = nghttp2_submit_request(s->session, NULL, hdrs, 6, &dp, c);
    if (id < 0) {
        s->c.failed++;
        s->c.sent++;
        return false;
    }
    c->busy = true;
    s->inflight++;
    s->c.sent++;
    return true;
}

static bool flush_out(gsender *s)
{
    for (;;) {
        const uint8_t *out = NULL;
        ssize_t n = nghttp2_session_mem_send(s->session, &out);
        if (n < 0) {
            return false;
        }
        if (n == 0) {
            return true;
        }
        struct iovec iov = {(void *)(uintptr_t)out, (size_t)n};
        if (!write_all(s->fd, &iov, 1)) {
            return false;
        }
    }
}

static void *gsender_main(void *arg)
{
    gsender *s = arg;
    const options *o = s->sh->opt;
    nghttp2_session_callbacks *cbs = NULL;
    uint8_t *rbuf = clew__malloc(65536);
    s->calls = clew__calloc(s->streams, sizeof(*s->calls));
    s->fd = conn_open(o);
    if (rbuf == NULL || s->calls == NULL || s->fd < 0 || nghttp2_session_callbacks_new(&cbs) != 0) {
        s->c.conn_errors++;
        goto out;
    }
    for (unsigned i = 0; i < s->streams; i++) {
        s->calls[i].body = clew__malloc(s->sh->max_body + 5);
        if (s->calls[i].body == NULL) {
            s->c.conn_errors++;
            goto out;
        }
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    if (nghttp2_session_client_new(&s->session, cbs, s) != 0) {
        s->c.conn_errors++;
        goto out;
    }
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    (void)nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, iv, 1);
    for (;;) {
        while (!s->exhausted && s->inflight < s->streams && start_call(s)) {
        }
        if (s->inflight == 0) {
            break;
        }
        if (!flush_out(s)) {
            s->c.conn_errors++;
            break;
        }
        ssize_t r = read(s->fd, rbuf, 65536);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0 || nghttp2_session_mem_recv(s->session, rbuf, (size_t)r) < 0) {
            s->c.conn_errors++;
            break;
        }
    }
    /* whatever is still in flight on a broken connection failed */
    s->c.failed += s->inflight;
out:
    if (s->session != NULL) {
        nghttp2_session_del(s->session);
    }
    if (cbs != NULL) {
        nghttp2_session_callbacks_del(cbs);
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    if (s->calls != NULL) {
        for (unsigned i = 0; i < s->streams; i++) {
            clew__free(s->calls[i].body);
        }
        clew__free(s->calls);
    }
    clew__free(rbuf);
    return NULL;
}

static void grpc_usage(FILE *to)
{
    usage_as(to, "grpc_load",
             "OTLP/gRPC server as http://HOST:PORT, the path ignored (default port 4317)");
    fprintf(to, "  --streams N          calls in flight per connection, 1-100 (default 8)\n");
}

int main(int argc, char **argv)
{
    /* take --streams out, hand the rest to ingest_load's parser */
    unsigned streams = 8;
    char **args = clew__calloc((size_t)argc + 1, sizeof(*args));
    int n_args = 0;
    if (args == NULL) {
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        if (i > 0 && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
            grpc_usage(stdout);
            clew__free(args);
            return 0;
        }
        if (strcmp(argv[i], "--streams") == 0 && i + 1 < argc) {
            uint64_t v = 0;
            if (!parse_u64(argv[i + 1], &v) || v < 1 || v > 100) {
                fprintf(stderr, "grpc_load: --streams wants 1..100\n");
                clew__free(args);
                return 2;
            }
            streams = (unsigned)v;
            i++;
            continue;
        }
        args[n_args++] = argv[i];
    }
    options o;
    int prc = parse_args(&o, n_args, args);
    clew__free(args);
    if (prc != 0) {
        grpc_usage(stderr);
        return 2;
    }
    bool default_url = true;
    for (int i = 1; i < argc; i++) {
        default_url = default_url && strcmp(argv[i], "--url") != 0;
    }
    if (default_url) {
        snprintf(o.port, sizeof(o.port), "4317");
    }
    int rc = 1;
    workload w;
    tmpl *tmpls = clew__calloc(o.templates, sizeof(*tmpls));
    gsender *senders = clew__calloc(o.connections, sizeof(*senders));
    shared sh;
    memset(&sh, 0, sizeof(sh));
    uint64_t rng = o.seed;
    if (tmpls == NULL || senders == NULL || workload_init(&w, o.services, &rng) != CLEW_OK) {
        fprintf(stderr, "grpc_load: out of memory building the workload\n");
        clew__free(tmpls);
        clew__free(senders);
        return 1;
    }
    uint64_t t0 = clew__now_unix_ns() - 60ull * 1000000000ull;
    size_t total_bytes = 0;
    unsigned built = 0;
    for (; built < o.templates; built++) {
        clew_status st = tmpl_build(&tmpls[built], &w, o.batch, t0, &rng);
        if (st != CLEW_OK) {
            fprintf(stderr, "grpc_load: building request %u: %s\n", built, clew_strerror(st));
            goto done;
        }
        total_bytes += tmpls[built].len;
        if (tmpls[built].len > sh.max_body) {
            sh.max_body = tmpls[built].len;
        }
    }
    printf("workload: %u services, %u spans/request, %u pre-encoded requests, "
           "%.1f B/span as protobuf; OTLP/gRPC to %s:%s, %u streams per connection\n",
           o.services, o.batch, o.templates, (double)total_bytes / ((double)o.templates * o.batch),
           o.host, o.port, streams);
    fflush(stdout);
    sh.opt = &o;
    sh.tmpls = tmpls;
    sh.total_requests = o.spans ? (o.spans + o.batch - 1) / o.batch : 0;
    atomic_init(&sh.next, 0);
    double cpu0 = 0, cpu1 = 0;
    bool have_cpu = o.server_pid != 0 && proc_cpu_seconds(o.server_pid, &cpu0);
    uint64_t start = clew__now_mono_ns();
    if (o.duration_s > 0) {
        sh.deadline_ns = start + (uint64_t)(o.duration_s * 1e9);
    }
    unsigned started = 0;
    for (; started < o.connections; started++) {
        senders[started].sh = &sh;
        senders[started].streams = streams;
        senders[started].fd = -1;
        if (pthread_create(&senders[started].thread, NULL, gsender_main, &senders[started]) != 0) {
            break;
        }
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(senders[i].thread, NULL);
    }
    uint64_t elapsed = clew__now_mono_ns() - start;
    if (have_cpu && !proc_cpu_seconds(o.server_pid, &cpu1)) {
        have_cpu = false;
    }
    load_report rep = {.unit = "calls",
                       .ok_answer = "answered grpc-status 0",
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
    for (unsigned i = 0; i < started; i++) {
        if (senders[i].first_bad_status != 0) {
            printf("first failed call: grpc-status %d %s\n", senders[i].first_bad_status,
                   senders[i].first_bad_msg);
            break;
        }
    }
    report_rates(&rep);
    report_server_cpu(&rep);
    clew__free(lat);
    rc = (rep.failed == 0 && rep.acked == rep.sent && rep.sent > 0) ? 0 : 1;
done:
    for (unsigned i = 0; i < o.connections; i++) {
        clew__free(senders[i].c.lat_ns);
    }
    for (unsigned i = 0; i < built; i++) {
        tmpl_deinit(&tmpls[i]);
    }
    clew__arena_deinit(&w.arena);
    clew__free(tmpls);
    clew__free(senders);
    return rc;
}
