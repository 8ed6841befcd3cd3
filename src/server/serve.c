/*
 * src/server/serve.c - `clew serve`: configuration, data dir lock, store,
 * listeners, the query port's routes, signals and shutdown.
 *
 * Query requests (GET /api/..., /metrics, /healthz, /readyz) run on the loop
 * thread: the memory store answers them in microseconds, and a hop to the worker
 * pool would cost more than the work. When a slow (disk) store arrives they will
 * move to the pool like the OTLP receiver's jobs.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "cli/commands.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "query/api.h"
#include "server/config.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/receiver_otlp_grpc.h"
#include "server/receiver_otlp_http.h"
#include "server/receiver_zipkin.h"
#include "sampling/sampler.h"
#include "sampling/tail_store.h"
#include "store/embedded/embedded_store.h"
#include "store/store.h"

typedef struct serve_ctx {
    clew_server_config cfg;
    clew_budgets budgets;
    clew_http_server *srv;
    clew_store *store;          /* what receivers and queries use: inner, or the sampling wrapper */
    clew_store *inner_store;    /* the memory or embedded store */
    clew_tail_config *tail_cfg; /* NULL when sampling is off; outlives the wrapper */
    clew_server_metrics metrics;
    clew_otlp_http_receiver otlp;
    clew_zipkin_receiver zipkin;
    clew_limits limits; /* span limits every receiver applies at ingest */
    clew_otlp_grpc_receiver grpc;
    bool ready;
    int lock_fd;
} serve_ctx;

static void logmsg(const serve_ctx *c, clew_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logmsg(const serve_ctx *c, clew_log_level level, const char *fmt, ...)
{
    if (c != NULL && level > c->cfg.log_level) {
        return;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "clew: %s\n", line);
}

/* ---- data dir ---- */

/* mkdir -p: creates the missing parents too. */
static int mkdir_p(const char *dir)
{
    char path[CLEW_CONFIG_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char saved = path[i];
            path[i] = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            path[i] = saved;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Creates the data dir and takes DATA_DIR/LOCK with a non-blocking flock, which
 * the kernel drops when the process dies however it dies. Returns the exit code. */
static int lock_data_dir(serve_ctx *c)
{
    const char *dir = c->cfg.data_dir;
    if (mkdir_p(dir) != 0) {
        logmsg(NULL, CLEW_LOG_ERROR, "cannot create data dir %s: %s", dir, strerror(errno));
        return CLEW_EXIT_IO;
    }
    char path[CLEW_CONFIG_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        logmsg(NULL, CLEW_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return CLEW_EXIT_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            char pid[32] = "";
            ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\r\n")] = '\0';
            logmsg(NULL, CLEW_LOG_ERROR, "data dir %s is in use by another clew serve (pid %s)",
                   dir, pid[0] ? pid : "unknown");
        } else {
            logmsg(NULL, CLEW_LOG_ERROR, "cannot lock %s: %s", path, strerror(e));
        }
        close(fd);
        return CLEW_EXIT_IO;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        logmsg(NULL, CLEW_LOG_WARN, "cannot write the pid to %s: %s", path, strerror(errno));
    }
    c->lock_fd = fd;
    return CLEW_EXIT_OK;
}

/* ---- the query port ---- */

static void reply_text(serve_ctx *c, struct evhttp_request *req, int code, const char *ctype,
                       const char *text)
{
    clew__http_reply(req, code, ctype, text, strlen(text));
    clew__metrics_request(&c->metrics, CLEW_RECV_QUERY, code);
}

/* Jaeger's error envelope, so that its UI shows the message. */
static void reply_json_error(serve_ctx *c, struct evhttp_request *req, int code, const char *msg)
{
    clew_buf b;
    clew__buf_init(&b, 4096);
    clew_status rc = clew__buf_puts(&b, "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,"
                                        "\"errors\":[{\"code\":");
    if (rc == CLEW_OK) {
        rc = clew__buf_printf(&b, "%d,\"msg\":", code);
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_json_str(&b, msg, strlen(msg));
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(&b, "}]}\n");
    }
    if (rc == CLEW_OK) {
        clew__http_reply_buf(req, code, "application/json", &b);
    } else {
        clew__http_reply(req, code, "text/plain; charset=utf-8", msg, strlen(msg));
    }
    clew__buf_deinit(&b);
    clew__metrics_request(&c->metrics, CLEW_RECV_QUERY, code);
}

static void route_healthz(serve_ctx *c, struct evhttp_request *req)
{
    reply_text(c, req, 200, "text/plain; charset=utf-8", "ok\n");
}

static void route_readyz(serve_ctx *c, struct evhttp_request *req)
{
    if (c->ready && !clew__http_stopping(c->srv)) {
        reply_text(c, req, 200, "text/plain; charset=utf-8", "ready\n");
    } else {
        clew__http_add_header(req, "Retry-After", "1");
        reply_text(c, req, 503, "text/plain; charset=utf-8", "not ready\n");
    }
}

static void route_metrics(serve_ctx *c, struct evhttp_request *req)
{
    clew_buf b;
    clew__buf_init(&b, 4 * 1024 * 1024);
    if (clew__metrics_render(&c->metrics, c->store, &b) != CLEW_OK ||
        clew__http_render_metrics(c->srv, &b) != CLEW_OK ||
        (c->tail_cfg != NULL && clew__tail_store_render_metrics(c->store, &b) != CLEW_OK)) {
        clew__buf_deinit(&b);
        reply_text(c, req, 500, "text/plain; charset=utf-8", "cannot render metrics\n");
        return;
    }
    clew__metrics_request(&c->metrics, CLEW_RECV_QUERY, 200);
    clew__http_reply_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    clew__buf_deinit(&b);
}

typedef void (*route_fn)(serve_ctx *c, struct evhttp_request *req);

/* The query port's own routes; everything under /api/ goes to clew__api_handle. */
static const struct route {
    const char *path;
    route_fn fn;
    const char *doc;
} ROUTES[] = {
    {"/healthz", route_healthz, "200 \"ok\" while the process serves"},
    {"/readyz", route_readyz, "200 once the listeners are open, 503 while shutting down"},
    {"/metrics", route_metrics, "Prometheus text format 0.0.4"},
};

static void query_handle(struct evhttp_request *req, void *ud)
{
    serve_ctx *c = ud;
    clew_str path, query;
    clew__http_split_uri(req, &path, &query);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    for (size_t i = 0; i < sizeof(ROUTES) / sizeof(ROUTES[0]); i++) {
        if (path.len == strlen(ROUTES[i].path) && memcmp(path.ptr, ROUTES[i].path, path.len) == 0) {
            if (!get) {
                clew__http_add_header(req, "Allow", "GET, HEAD");
                reply_json_error(c, req, 405, "this path only takes GET");
                return;
            }
            ROUTES[i].fn(c, req);
            return;
        }
    }
    if (path.len >= 5 && memcmp(path.ptr, "/api/", 5) == 0) {
        if (!get) {
            clew__http_add_header(req, "Allow", "GET, HEAD");
            reply_json_error(c, req, 405, "the query API only takes GET");
            return;
        }
        clew_api_request areq = {"GET", path, query};
        clew_api_response resp;
        clew__api_response_init(&resp);
        clew_status rc = clew__api_handle(c->store, &areq, &resp);
        if (rc == CLEW_OK) {
            int code = resp.status ? resp.status : 200;
            clew__metrics_request(&c->metrics, CLEW_RECV_QUERY, code);
            clew__http_reply_buf(req, code, resp.content_type, &resp.body);
            clew__api_response_deinit(&resp);
            return;
        }
        clew__api_response_deinit(&resp);
        if (rc != CLEW_ENOTFOUND) {
            reply_json_error(c, req, 500, clew_strerror(rc));
            return;
        }
    }
    char msg[300];
    snprintf(msg, sizeof(msg), "no such endpoint: %.*s", (int)(path.len > 200 ? 200 : path.len),
             path.ptr);
    reply_json_error(c, req, 404, msg);
}

/* ---- signals ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    serve_ctx *c = arg;
    if (clew__http_stopping(c->srv)) {
        return;
    }
    logmsg(c, CLEW_LOG_INFO, "%s received: finishing %zu in-flight requests, then exiting",
           sig == SIGINT ? "SIGINT" : "SIGTERM", clew__http_pending(c->srv));
    clew__http_stop(c->srv, c->cfg.shutdown_timeout_ns);
    clew__otlp_grpc_stop(&c->grpc);
}

/* ---- the command ---- */

static void usage_line(void)
{
    fprintf(stderr, "usage: clew serve [--config FILE] [--OPTION VALUE]... (clew serve --help)\n");
}

static int open_listener(serve_ctx *c, const clew_listen_addr *a, size_t max_body,
                         clew_http_handler h, void *ud, const char *what)
{
    if (a->off) {
        logmsg(c, CLEW_LOG_INFO, "%s is off", what);
        return CLEW_EXIT_OK;
    }
    char err[300];
    uint16_t port = 0;
    clew_status rc = clew__http_listen(c->srv, a, max_body, h, ud, &port, err, sizeof(err));
    if (rc != CLEW_OK) {
        logmsg(NULL, CLEW_LOG_ERROR, "%s: %s", what, err);
        return CLEW_EXIT_IO;
    }
    clew_listen_addr shown = *a;
    shown.port = port;
    char addr[300];
    clew__format_listen(&shown, addr, sizeof(addr));
    logmsg(c, CLEW_LOG_INFO, "listening on %s (%s)", addr, what);
    return CLEW_EXIT_OK;
}

/* The OTLP/gRPC receiver: its own HTTP/2 listener on the same loop and workers. */
static int open_grpc_listener(serve_ctx *c)
{
    c->grpc.srv = c->srv;
    c->grpc.store = c->store;
    c->grpc.metrics = &c->metrics;
    c->grpc.max_message = (size_t)c->cfg.max_request_body;
    c->grpc.max_headers = (size_t)c->cfg.max_headers;
    c->grpc.idle_timeout_ns = c->cfg.timeout_ns;
    c->grpc.limits = &c->limits;
    c->grpc.max_connections = (size_t)c->cfg.max_connections;
    if (c->cfg.otlp_grpc.off) {
        logmsg(c, CLEW_LOG_INFO, "OTLP/gRPC is off");
        return CLEW_EXIT_OK;
    }
    char err[300], addr[300];
    clew_listen_addr shown = c->cfg.otlp_grpc;
    if (clew__otlp_grpc_listen(&c->grpc, &c->cfg.otlp_grpc, &shown.port, err, sizeof(err)) !=
        CLEW_OK) {
        logmsg(NULL, CLEW_LOG_ERROR, "OTLP/gRPC: %s", err);
        return CLEW_EXIT_IO;
    }
    clew__format_listen(&shown, addr, sizeof(addr));
    logmsg(c, CLEW_LOG_INFO, "listening on %s (OTLP/gRPC)", addr);
    return CLEW_EXIT_OK;
}

/* The Zipkin receiver. Like every listener, a port that cannot be opened stops the
 * start with a message: a user who runs a Zipkin server on 9411 already says
 * --zipkin off (or another port) rather than getting a server that silently lacks
 * a receiver. */
static int open_zipkin_listener(serve_ctx *c)
{
    return open_listener(c, &c->cfg.zipkin, (size_t)c->cfg.max_request_body, clew__zipkin_handle,
                         &c->zipkin, "Zipkin");
}

/* The embedded store's log lines (WAL replay, torn tails, I/O errors) go to ours. */
static void store_log(void *ud, clew_wal_log_level level, const char *msg)
{
    clew_log_level l = level == CLEW_WAL_LOG_ERROR  ? CLEW_LOG_ERROR
                       : level == CLEW_WAL_LOG_WARN ? CLEW_LOG_WARN
                                                    : CLEW_LOG_INFO;
    logmsg(ud, l, "%s", msg);
}

static clew_status create_embedded_store(serve_ctx *c)
{
    static const clew_wal_fsync_mode modes[] = {
        [CLEW_FSYNC_NEVER] = CLEW_WAL_FSYNC_NEVER,
        [CLEW_FSYNC_INTERVAL] = CLEW_WAL_FSYNC_INTERVAL,
        [CLEW_FSYNC_ALWAYS] = CLEW_WAL_FSYNC_ALWAYS,
    };
    clew_embedded_store_config ec;
    memset(&ec, 0, sizeof(ec));
    ec.data_dir = c->cfg.data_dir;
    ec.fsync_mode = modes[c->cfg.fsync];
    ec.fsync_interval_ms = (uint32_t)(c->cfg.fsync_interval_ns / 1000000u);
    if (ec.fsync_interval_ms == 0) {
        ec.fsync_interval_ms = 1;
    }
    /* a WAL record is the request's own protobuf, or the batch encoded as protobuf, which
     * is no larger than the body it came in (JSON or protobuf, limited after gunzip too);
     * the WAL has a hard cap of its own */
    uint64_t rec = c->cfg.max_request_body + 64 * 1024;
    ec.max_record_bytes = (size_t)(rec < CLEW_WAL_MAX_RECORD_SIZE ? rec : CLEW_WAL_MAX_RECORD_SIZE);
    /* A cut reads the head's traces in place but holds up to about twice its chunk in the
     * writer's work (columns, pages, indexes) beside the head: chunks of at most an eighth
     * of the store budget, and a head budget that leaves room for two, keep head + cut
     * within the store budget. */
    uint64_t bs = c->cfg.block_size, eighth = c->budgets.store / 8;
    ec.block_size = (size_t)(eighth > 0 && bs > eighth ? eighth : bs);
    /* The open blocks' indexes get an eighth of the store budget too (the least recently
     * queried are dropped past it and load again when used), the head the rest. */
    ec.index_max_bytes = (size_t)eighth;
    ec.head_max_bytes =
        (size_t)(c->budgets.store - 2 * (uint64_t)ec.block_size - (uint64_t)ec.index_max_bytes);
    ec.block_duration_ns = c->cfg.block_duration_ns;
    ec.retention_ns = c->cfg.retention_ns;
    ec.max_disk_bytes = c->cfg.max_disk;
    if (ec.max_disk_bytes == 0) {
        struct statvfs vfs;
        if (statvfs(c->cfg.data_dir, &vfs) == 0) {
            ec.max_disk_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize / 10 * 9;
        }
        logmsg(c, CLEW_LOG_INFO, "embedded store: --max-disk %llu bytes (90%% of the free space)",
               (unsigned long long)ec.max_disk_bytes);
    }
    ec.log = store_log;
    ec.log_ud = c;
    return clew__embedded_store_create(&ec, &c->store, NULL);
}

static void tail_log(void *ud, clew_log_level level, const char *msg)
{
    logmsg(ud, level, "%s", msg);
}

/* The tail-sampling policies: the --sampling preset, or the config file's section.
 * Returns the exit code (2 with a message for a bad section). */
static int load_tail_config(serve_ctx *c, const char *config_path)
{
    clew_config_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc = CLEW_OK;
    if (strcmp(c->cfg.sampling, "off") != 0) {
        rc = clew__tail_preset_parse(c->cfg.sampling, &c->tail_cfg, &err);
    } else if (c->cfg.tail_sampling_line != 0 && config_path != NULL) {
        char *data = NULL;
        size_t n = 0;
        rc = clew__config_read_file(config_path, &data, &n, &err);
        if (rc == CLEW_OK) {
            rc = clew__tail_config_load_buffer(config_path, data, n, &c->tail_cfg, &err);
            clew__free(data);
        }
    }
    if (rc != CLEW_OK) {
        logmsg(NULL, CLEW_LOG_ERROR, "%s", err.msg);
        return CLEW_EXIT_USAGE;
    }
    return CLEW_EXIT_OK;
}

/* Wraps the store in the tail sampler (sampling/tail_store.h). Its memory is the
 * sampler budget, or less if the section's max_bytes says so. */
static int start_tail_sampling(serve_ctx *c)
{
    if (c->tail_cfg == NULL) {
        return CLEW_EXIT_OK;
    }
    if (c->tail_cfg->max_bytes > c->budgets.sampler) {
        c->tail_cfg->max_bytes = c->budgets.sampler;
    }
    clew_tail_store_options o;
    memset(&o, 0, sizeof(o));
    o.inner = c->inner_store;
    o.cfg = c->tail_cfg;
    o.log = tail_log;
    o.log_ud = c;
    clew_store *w = NULL;
    clew_status rc = clew__tail_store_create(&o, &w);
    if (rc != CLEW_OK) {
        logmsg(NULL, CLEW_LOG_ERROR, "cannot start tail sampling: %s", clew_strerror(rc));
        return CLEW_EXIT_IO;
    }
    c->store = w;
    char mem[40];
    clew__format_size(c->tail_cfg->max_bytes, mem, sizeof(mem));
    logmsg(c, CLEW_LOG_INFO,
           "tail sampling on: %zu policies, decision_wait %llums, up to %llu pending traces in %s",
           c->tail_cfg->n_policies, (unsigned long long)(c->tail_cfg->decision_wait_ns / 1000000),
           (unsigned long long)c->tail_cfg->num_traces, mem);
    return CLEW_EXIT_OK;
}

static int serve_run(serve_ctx *c)
{
    clew__config_budgets(&c->cfg, &c->budgets);
    /* glibc grows each malloc arena by what a request needs and trims it back as soon as
     * the top is free: under ingest (decode arenas, head clones, block writer buffers come
     * and go) that was a steady stream of mprotect/brk calls and page faults, a fifth of
     * the server's CPU in a perf profile. Growing by up to 64MiB at a time (a sixteenth of
     * --max-memory when that is smaller) cut server CPU per million spans by about a
     * quarter in bench/ingest_load runs (embedded store, 500k spans, 3 runs each).
     * Setting any of these turns off glibc's dynamic mmap threshold, which would otherwise
     * have risen past our request-sized buffers: every allocation of 128KiB or more (a
     * request body, its decode arena, a WAL payload, the block writer's columns) became a
     * fresh mmap, zeroed page by page and unmapped with TLB shootdowns on free. So the
     * threshold is set where the dynamic one would end (32MiB, at most the pad), and the
     * top is trimmed only past four pads. Ingest of 2M spans (`ingest_load --spans 2000000`
     * then the shutdown cut, one run each, 8GiB): 9.33 -> 8.31 server CPU-s
     * per million spans, 6.1 -> 4.6 s of it in the kernel. */
    uint64_t pad = c->cfg.max_memory / 16;
    if (pad > ((uint64_t)64 << 20)) {
        pad = (uint64_t)64 << 20;
    }
    uint64_t mmap_threshold = pad < ((uint64_t)32 << 20) ? pad : ((uint64_t)32 << 20);
    mallopt(M_TOP_PAD, (int)pad);
    mallopt(M_MMAP_THRESHOLD, (int)(mmap_threshold > (128u << 10) ? mmap_threshold : (128u << 10)));
    mallopt(M_TRIM_THRESHOLD, (int)(pad * 4));
    clew__metrics_init(&c->metrics, &c->budgets);

    int code = lock_data_dir(c);
    if (code != CLEW_EXIT_OK) {
        return code;
    }
    clew_status rc;
    if (c->cfg.storage == CLEW_STORAGE_EMBEDDED) {
        rc = create_embedded_store(c);
    } else {
        clew_memory_store_config mc = {(size_t)c->cfg.max_traces, (size_t)c->budgets.store};
        rc = clew__memory_store_create(&mc, &c->store);
    }
    if (rc != CLEW_OK) {
        logmsg(NULL, CLEW_LOG_ERROR, "cannot open the %s store: %s",
               c->cfg.storage == CLEW_STORAGE_EMBEDDED ? "embedded" : "memory", clew_strerror(rc));
        return CLEW_EXIT_IO;
    }
    c->inner_store = c->store;
    code = start_tail_sampling(c);
    if (code != CLEW_EXIT_OK) {
        return code;
    }
    clew_http_options ho;
    memset(&ho, 0, sizeof(ho));
    ho.workers = clew__config_workers(&c->cfg);
    ho.max_headers = (size_t)c->cfg.max_headers;
    ho.timeout_ns = c->cfg.timeout_ns;
    ho.max_connections = (size_t)c->cfg.max_connections;
    rc = clew__http_server_create(&ho, &c->srv);
    if (rc != CLEW_OK) {
        logmsg(NULL, CLEW_LOG_ERROR, "cannot start the HTTP server: %s", clew_strerror(rc));
        return CLEW_EXIT_IO;
    }
    c->otlp.srv = c->srv;
    c->otlp.store = c->store;
    c->otlp.metrics = &c->metrics;
    c->otlp.max_body = (size_t)c->cfg.max_request_body;
    c->limits.span_attribute_count = (uint32_t)c->cfg.span_attribute_count_limit;
    c->limits.event_attribute_count = (uint32_t)c->cfg.event_attribute_count_limit;
    c->limits.link_attribute_count = (uint32_t)c->cfg.link_attribute_count_limit;
    c->limits.attribute_value_length = c->cfg.attribute_value_length_limit;
    c->limits.span_event_count = (uint32_t)c->cfg.span_event_count_limit;
    c->limits.span_link_count = (uint32_t)c->cfg.span_link_count_limit;
    c->limits.counters = c->metrics.spans_limited;
    c->otlp.limits = &c->limits;
    c->zipkin.srv = c->srv;
    c->zipkin.store = c->store;
    c->zipkin.metrics = &c->metrics;
    c->zipkin.limits = &c->limits;
    c->zipkin.max_body = (size_t)c->cfg.max_request_body;

    code = open_listener(c, &c->cfg.otlp_http, (size_t)c->cfg.max_request_body,
                         clew__otlp_http_handle, &c->otlp, "OTLP/HTTP");
    if (code == CLEW_EXIT_OK) {
        /* the query port takes GETs: a small body limit is plenty */
        code = open_listener(c, &c->cfg.http, 64 * 1024, query_handle, c, "query HTTP");
    }
    if (code == CLEW_EXIT_OK) {
        code = open_zipkin_listener(c);
    }
    if (code == CLEW_EXIT_OK) {
        code = open_grpc_listener(c);
    }
    if (code != CLEW_EXIT_OK) {
        return code;
    }
    struct event_base *base = clew__http_base(c->srv);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, c);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, c);
    if (sigint == NULL || sigterm == NULL || event_add(sigint, NULL) != 0 ||
        event_add(sigterm, NULL) != 0) {
        if (sigint != NULL) {
            event_free(sigint);
        }
        if (sigterm != NULL) {
            event_free(sigterm);
        }
        logmsg(NULL, CLEW_LOG_ERROR, "cannot install signal handlers");
        return CLEW_EXIT_IO;
    }
    char mem[40];
    clew__format_size(c->cfg.max_memory, mem, sizeof(mem));
    if (c->cfg.storage == CLEW_STORAGE_EMBEDDED) {
        static const char *const fsync_names[] = {"never", "interval", "always"};
        logmsg(c, CLEW_LOG_INFO, "ready: embedded store in %s (fsync %s), %u workers, %s memory",
               c->cfg.data_dir, fsync_names[c->cfg.fsync], ho.workers, mem);
    } else {
        logmsg(c, CLEW_LOG_INFO,
               "ready: memory store (max %llu traces, lossy), %u workers, %s memory",
               (unsigned long long)c->cfg.max_traces, ho.workers, mem);
    }
    c->ready = true;
    rc = clew__http_run(c->srv);
    event_free(sigint);
    event_free(sigterm);
    if (clew__http_pending(c->srv) > 0) {
        logmsg(c, CLEW_LOG_WARN, "%zu requests were still in flight at exit",
               clew__http_pending(c->srv));
    }
    logmsg(c, CLEW_LOG_INFO, "stopped");
    return rc == CLEW_OK ? CLEW_EXIT_OK : CLEW_EXIT_IO;
}

int clew__cmd_serve(int argc, char **argv)
{
    serve_ctx *c = clew__calloc(1, sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "clew: out of memory\n");
        return CLEW_EXIT_IO;
    }
    c->lock_fd = -1;
    clew_serve_args args;
    clew_config_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc = clew__config_from_args(&c->cfg, argc, argv, &args, &err);
    int code;
    if (rc == CLEW_OK && args.help) {
        clew__config_print_help(stdout);
        code = CLEW_EXIT_OK;
    } else if (rc == CLEW_EINVAL) {
        fprintf(stderr, "clew: %s\n", err.msg);
        usage_line();
        code = CLEW_EXIT_USAGE;
    } else if (rc != CLEW_OK) {
        fprintf(stderr, "clew: %s\n", err.msg);
        code = CLEW_EXIT_USAGE;
    } else if (args.print_config) {
        clew__config_print(&c->cfg, stdout);
        code = CLEW_EXIT_OK;
    } else if ((code = load_tail_config(c, args.config_path)) == CLEW_EXIT_OK) {
        /* a client that hangs up must not kill the server with SIGPIPE */
        signal(SIGPIPE, SIG_IGN);
        code = serve_run(c);
    }
    /* teardown order: listeners and workers (they reference the store), then the store.
     * The embedded store calls append callbacks from its WAL thread: every one must have
     * run while the HTTP server (which they complete jobs on) still exists. */
    if (c->inner_store != NULL && c->cfg.storage == CLEW_STORAGE_EMBEDDED) {
        clew__embedded_store_quiesce(c->inner_store);
    }
    /* gRPC connections are bufferevents on the loop's base: gone before it is */
    clew__otlp_grpc_close(&c->grpc);
    clew__http_server_destroy(c->srv);
    /* the wrapper (if any) applies the decisions already made, then destroys the inner
     * store; pending traces stay pending in the WAL for the next start */
    clew__store_destroy(c->store);
    clew__tail_config_free(c->tail_cfg);
    if (c->lock_fd >= 0) {
        close(c->lock_fd);
    }
    clew__free(c);
    /* libevent keeps global lock state after evthread_use_pthreads; free it so the
     * leak checker sees a clean exit */
    libevent_global_shutdown();
    return code;
}
