/*
 * src/server/config.c - defaults, YAML file, flags, --help and --print-config of
 * `clew serve`, all driven by one option table (see config.h).
 */
#include "server/config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "sampling/sampler.h"

typedef enum opt_type {
    OPT_LISTEN,   /* clew_listen_addr */
    OPT_PATH,     /* char[CLEW_CONFIG_PATH_MAX] */
    OPT_STORAGE,  /* clew_storage_kind */
    OPT_SIZE,     /* uint64_t bytes */
    OPT_COUNT,    /* uint64_t */
    OPT_DURATION, /* uint64_t nanoseconds */
    OPT_LOGLEVEL, /* clew_log_level */
    OPT_FSYNC,    /* clew_fsync_kind */
    OPT_SAMPLING, /* char[CLEW_CONFIG_SAMPLING_MAX], a valid --sampling preset */
} opt_type;

typedef struct opt {
    const char *key; /* YAML key; the flag is "--" + key with '-' for '_' */
    opt_type type;
    size_t offset;
    uint64_t min, max; /* bounds for sizes, counts and durations */
    const char *arg;   /* placeholder in --help */
    const char *help;
} opt;

#define OFF(field) offsetof(clew_server_config, field)
#define KIB        ((uint64_t)1024)
#define MIB        (KIB * 1024)
#define GIB        (MIB * 1024)
#define SEC        ((uint64_t)1000000000)

/* The option table. Defaults live in clew__config_defaults only; --help formats
 * them from there so the two cannot disagree. */
static const opt OPTS[] = {
    {"otlp_http", OPT_LISTEN, OFF(otlp_http), 0, 0, "HOST:PORT|off",
     "OTLP/HTTP receiver (POST /v1/traces, protobuf or JSON, gzip or not)."},
    {"otlp_grpc", OPT_LISTEN, OFF(otlp_grpc), 0, 0, "HOST:PORT|off",
     "OTLP/gRPC receiver (HTTP/2 cleartext, TraceService/Export; messages up to "
     "--max-request-body)."},
    {"zipkin", OPT_LISTEN, OFF(zipkin), 0, 0, "HOST:PORT|off",
     "Zipkin receiver (POST /api/v2/spans and /api/v1/spans, JSON, gzip or not; 202 once stored)."},
    {"http", OPT_LISTEN, OFF(http), 0, 0, "HOST:PORT|off",
     "Query port: Jaeger APIs under /api/, /metrics, /healthz, /readyz."},
    {"data_dir", OPT_PATH, OFF(data_dir), 0, 0, "DIR",
     "Directory for data; locked so that one clew serve owns it."},
    {"storage", OPT_STORAGE, OFF(storage), 0, 0, "memory|embedded",
     "Where spans go. embedded (the default) is durable: a write-ahead log in --data-dir, cut "
     "into block files every --block-duration; see --fsync, --retention, --max-disk. memory is "
     "lossy: once --max-traces traces (or the store budget) are held, the oldest acknowledged "
     "traces are evicted."},
    {"fsync", OPT_FSYNC, OFF(fsync), 0, 0, "never|interval|always",
     "Embedded store: when the WAL is fsynced. Every mode survives a process crash; always "
     "acknowledges a batch only after its fsync (survives power loss), interval fsyncs at most "
     "--fsync-interval apart (power loss may take that much), never leaves it to the OS."},
    {"fsync_interval", OPT_DURATION, OFF(fsync_interval_ns), SEC / 1000, 60 * SEC, "DURATION",
     "Embedded store, --fsync interval: the longest time between two fsyncs of the WAL."},
    {"block_duration", OPT_DURATION, OFF(block_duration_ns), SEC, 24 * 3600 * SEC, "DURATION",
     "Embedded store: how often the in-memory head is cut into a block file (also on shutdown "
     "and when the head holds --block-size)."},
    {"block_size", OPT_SIZE, OFF(block_size), MIB, UINT64_C(1) << 40, "SIZE",
     "Embedded store: cut the head once it holds this much span data; also the most one block "
     "takes from the head, so a cut's memory is bounded. Capped at an eighth of the store "
     "budget: the head gets the store budget minus two of these and the blocks' index bound "
     "(another eighth)."},
    {"retention", OPT_DURATION, OFF(retention_ns), SEC, SEC * 3600 * 24 * 365 * 100, "DURATION",
     "Embedded store: blocks whose newest span is older than this are deleted (logged)."},
    {"max_disk", OPT_SIZE, OFF(max_disk), 0, UINT64_C(1) << 60, "SIZE",
     "Embedded store: the oldest blocks are deleted (logged) to keep the blocks under this; "
     "0 = 90% of the free space of --data-dir's file system at start."},
    {"max_memory", OPT_SIZE, OFF(max_memory), 16 * MIB, UINT64_C(1) << 50, "SIZE",
     "Memory the server may use, split into budgets: ingest 1/4, query 1/8, store the rest."},
    {"max_traces", OPT_COUNT, OFF(max_traces), 1, 1000000000, "N",
     "Memory store: traces kept before the oldest are evicted."},
    {"max_request_body", OPT_SIZE, OFF(max_request_body), 128, 4 * GIB, "SIZE",
     "Largest request body, counted while it is read and again after gunzip (413 past it)."},
    {"max_headers", OPT_SIZE, OFF(max_headers), 1 * KIB, 16 * MIB, "SIZE",
     "Largest request line plus headers."},
    {"workers", OPT_COUNT, OFF(workers), 0, 1024, "N",
     "Threads that decode and store requests; 0 = one per core."},
    {"timeout", OPT_DURATION, OFF(timeout_ns), SEC / 1000, 3600 * SEC, "DURATION",
     "Read and write timeout per connection, and the deadline for a whole request (headers and "
     "body) to arrive or an idle keep-alive connection to send one, so slow clients cannot hold "
     "the server."},
    {"shutdown_timeout", OPT_DURATION, OFF(shutdown_timeout_ns), 0, 3600 * SEC, "DURATION",
     "On SIGINT/SIGTERM, how long to wait for in-flight requests to be answered."},
    {"max_connections", OPT_COUNT, OFF(max_connections), 0, 1000000, "N",
     "Open connections per HTTP listener; connections past it are closed at once. 0 = no limit."},
    {"span_attribute_count_limit", OPT_COUNT, OFF(span_attribute_count_limit), 0, UINT32_MAX, "N",
     "Attributes kept per span at ingest; the rest are added to its dropped count. 0 = no limit."},
    {"event_attribute_count_limit", OPT_COUNT, OFF(event_attribute_count_limit), 0, UINT32_MAX, "N",
     "Attributes kept per span event at ingest. 0 = no limit."},
    {"link_attribute_count_limit", OPT_COUNT, OFF(link_attribute_count_limit), 0, UINT32_MAX, "N",
     "Attributes kept per span link at ingest. 0 = no limit."},
    {"attribute_value_length_limit", OPT_SIZE, OFF(attribute_value_length_limit), 0, 4 * GIB,
     "SIZE",
     "Longest string or bytes attribute value (each array element too) kept at ingest; longer "
     "ones are truncated (UTF-8 on a character boundary). 0 = no limit."},
    {"span_event_count_limit", OPT_COUNT, OFF(span_event_count_limit), 0, UINT32_MAX, "N",
     "Events kept per span at ingest; the rest are added to its dropped count. 0 = no limit."},
    {"span_link_count_limit", OPT_COUNT, OFF(span_link_count_limit), 0, UINT32_MAX, "N",
     "Links kept per span at ingest; the rest are added to its dropped count. 0 = no limit."},
    {"sampling", OPT_SAMPLING, OFF(sampling), 0, 0, "off|PRESET",
     "Tail-based sampling: off stores every trace; a preset is '+'-joined parts among errors "
     "(keep traces with an error span), slow:DURATION (keep traces at least that long), N% "
     "(keep N% of the rest, by trace id) and all, e.g. errors+slow:500ms+10%. Traces wait "
     "30s (or 10s after their root span ends) for the decision. For the full policy set "
     "use a tail_sampling section in --config (the OpenTelemetry Collector's keys); the "
     "two cannot be combined."},
    {"log_level", OPT_LOGLEVEL, OFF(log_level), 0, 0, "error|warn|info|debug",
     "Which messages go to stderr."},
};
#define N_OPTS (sizeof(OPTS) / sizeof(OPTS[0]))

static const char *const STORAGE_NAMES[] = {"memory", "embedded"};
static const char *const LOG_NAMES[] = {"error", "warn", "info", "debug"};
static const char *const FSYNC_NAMES[] = {"never", "interval", "always"};

void clew__config_defaults(clew_server_config *c)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->otlp_http.host, "127.0.0.1", 10);
    c->otlp_http.port = 4318;
    memcpy(c->otlp_grpc.host, "127.0.0.1", 10);
    c->otlp_grpc.port = 4317;
    memcpy(c->zipkin.host, "127.0.0.1", 10);
    c->zipkin.port = 9411;
    memcpy(c->http.host, "127.0.0.1", 10);
    c->http.port = 16686;
    memcpy(c->data_dir, "./clew-data", 12);
    c->storage = CLEW_STORAGE_EMBEDDED;
    c->fsync = CLEW_FSYNC_INTERVAL;
    c->fsync_interval_ns = SEC / 10;
    c->block_duration_ns = 5 * 60 * SEC;
    c->block_size = 256 * MIB;
    c->retention_ns = 72 * 3600 * SEC;
    c->max_disk = 0;
    c->max_memory = 512 * MIB;
    c->max_traces = 100000;
    c->max_request_body = 64 * MIB;
    c->max_headers = 64 * KIB;
    c->workers = 0;
    c->timeout_ns = 30 * SEC;
    c->shutdown_timeout_ns = 10 * SEC;
    c->max_connections = 1024;
    c->span_attribute_count_limit = 128;
    c->event_attribute_count_limit = 128;
    c->link_attribute_count_limit = 128;
    c->attribute_value_length_limit = 64 * KIB;
    c->span_event_count_limit = 128;
    c->span_link_count_limit = 128;
    c->log_level = CLEW_LOG_INFO;
    memcpy(c->sampling, "off", 4);
}

bool clew__config_sampling_on(const clew_server_config *c)
{
    return strcmp(c->sampling, "off") != 0 || c->tail_sampling_line != 0;
}

static void err_set(clew_config_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void err_set(clew_config_error *err, const char *fmt, ...)
{
    if (err == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* A value quoted for a message: at most 60 bytes, control bytes as '?', so a
 * hostile file cannot fill the terminal or the log. */
static void quote_value(const char *v, char *out, size_t out_size)
{
    size_t n = 0;
    for (const char *p = v; *p != '\0' && n + 4 < out_size; p++) {
        if (n >= 60) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char ch = (unsigned char)*p;
        out[n++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    out[n] = '\0';
}

/* ---- value parsers ---- */

static const struct {
    const char *name;
    uint64_t mult;
} SIZE_UNITS[] = {
    {"", 1},
    {"b", 1},
    {"k", KIB},
    {"kb", 1000},
    {"kib", KIB},
    {"m", MIB},
    {"mb", 1000000},
    {"mib", MIB},
    {"g", GIB},
    {"gb", 1000000000},
    {"gib", GIB},
    {"t", GIB * 1024},
    {"tb", UINT64_C(1000000000000)},
    {"tib", GIB * 1024},
};

clew_status clew__parse_size(const char *s, uint64_t *out)
{
    const char *p = s;
    while (*p == ' ') {
        p++;
    }
    if (*p < '0' || *p > '9') {
        return CLEW_EPARSE;
    }
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return CLEW_EPARSE;
        }
        v = v * 10 + d;
        p++;
    }
    while (*p == ' ') {
        p++;
    }
    char unit[4];
    size_t n = 0;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
        if (n == sizeof(unit) - 1) {
            return CLEW_EPARSE;
        }
        char ch = *p++;
        unit[n++] = (char)((ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch);
    }
    unit[n] = '\0';
    while (*p == ' ') {
        p++;
    }
    if (*p != '\0') {
        return CLEW_EPARSE;
    }
    for (size_t i = 0; i < sizeof(SIZE_UNITS) / sizeof(SIZE_UNITS[0]); i++) {
        if (strcmp(unit, SIZE_UNITS[i].name) == 0) {
            if (v > UINT64_MAX / SIZE_UNITS[i].mult) {
                return CLEW_EPARSE;
            }
            *out = v * SIZE_UNITS[i].mult;
            return CLEW_OK;
        }
    }
    return CLEW_EPARSE;
}

void clew__format_size(uint64_t bytes, char *out, size_t out_size)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    static const uint64_t mults[] = {GIB * 1024, GIB, MIB, KIB};
    for (size_t i = 0; i < 4; i++) {
        if (bytes != 0 && bytes % mults[i] == 0) {
            snprintf(out, out_size, "%llu%s", (unsigned long long)(bytes / mults[i]), units[i]);
            return;
        }
    }
    snprintf(out, out_size, "%llu", (unsigned long long)bytes);
}

static bool port_parse(const char *p, uint16_t *out)
{
    if (*p == '\0') {
        return false;
    }
    uint32_t v = 0;
    for (size_t i = 0; p[i] != '\0'; i++) {
        if (p[i] < '0' || p[i] > '9' || i >= 5) {
            return false;
        }
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v > 65535) {
        return false;
    }
    *out = (uint16_t)v;
    return true;
}

static bool host_chars_ok(const char *h, size_t n, bool v6)
{
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-' || ch == '_' ||
                  (v6 && (ch == ':' || ch == '%'));
        if (!ok) {
            return false;
        }
    }
    return true;
}

clew_status clew__parse_listen(const char *s, clew_listen_addr *out)
{
    clew_listen_addr a;
    memset(&a, 0, sizeof(a));
    if (strcmp(s, "off") == 0) {
        a.off = true;
        *out = a;
        return CLEW_OK;
    }
    const char *host, *colon;
    size_t host_len;
    bool v6 = false;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return CLEW_EPARSE;
        }
        host = s + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
        v6 = true;
        if (memchr(host, ':', host_len) == NULL) {
            return CLEW_EPARSE;
        }
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return CLEW_EPARSE;
        }
        host = s;
        host_len = (size_t)(colon - s);
        if (memchr(host, ':', host_len) != NULL) {
            return CLEW_EPARSE; /* an IPv6 address needs brackets */
        }
    }
    if (host_len == 0 || host_len >= sizeof(a.host) || !host_chars_ok(host, host_len, v6)) {
        return CLEW_EPARSE;
    }
    if (!port_parse(colon + 1, &a.port)) {
        return CLEW_EPARSE;
    }
    memcpy(a.host, host, host_len);
    a.host[host_len] = '\0';
    *out = a;
    return CLEW_OK;
}

void clew__format_listen(const clew_listen_addr *a, char *out, size_t out_size)
{
    if (a->off) {
        snprintf(out, out_size, "off");
    } else if (strchr(a->host, ':') != NULL) {
        snprintf(out, out_size, "[%s]:%u", a->host, (unsigned)a->port);
    } else {
        snprintf(out, out_size, "%s:%u", a->host, (unsigned)a->port);
    }
}

static void format_duration(uint64_t ns, char *out, size_t out_size)
{
    if (ns != 0 && ns % (3600 * SEC) == 0) {
        snprintf(out, out_size, "%lluh", (unsigned long long)(ns / (3600 * SEC)));
    } else if (ns != 0 && ns % (60 * SEC) == 0) {
        snprintf(out, out_size, "%llum", (unsigned long long)(ns / (60 * SEC)));
    } else if (ns % SEC == 0) {
        snprintf(out, out_size, "%llus", (unsigned long long)(ns / SEC));
    } else if (ns % 1000000 == 0) {
        snprintf(out, out_size, "%llums", (unsigned long long)(ns / 1000000));
    } else {
        snprintf(out, out_size, "%lluns", (unsigned long long)ns);
    }
}

static int name_index(const char *const *names, size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], v) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static const opt *opt_find(const char *key)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strcmp(OPTS[i].key, key) == 0) {
            return &OPTS[i];
        }
    }
    return NULL;
}

/* Text of an option's current value in `c`. */
static void opt_format(const clew_server_config *c, const opt *o, char *out, size_t out_size)
{
    const char *base = (const char *)c + o->offset;
    switch (o->type) {
    case OPT_LISTEN:
        clew__format_listen((const clew_listen_addr *)(const void *)base, out, out_size);
        break;
    case OPT_PATH:
    case OPT_SAMPLING:
        snprintf(out, out_size, "%s", base);
        break;
    case OPT_STORAGE:
        snprintf(out, out_size, "%s",
                 STORAGE_NAMES[*(const clew_storage_kind *)(const void *)base]);
        break;
    case OPT_SIZE:
        clew__format_size(*(const uint64_t *)(const void *)base, out, out_size);
        break;
    case OPT_COUNT:
        snprintf(out, out_size, "%llu", (unsigned long long)*(const uint64_t *)(const void *)base);
        break;
    case OPT_DURATION:
        format_duration(*(const uint64_t *)(const void *)base, out, out_size);
        break;
    case OPT_LOGLEVEL:
        snprintf(out, out_size, "%s", LOG_NAMES[*(const clew_log_level *)(const void *)base]);
        break;
    case OPT_FSYNC:
        snprintf(out, out_size, "%s", FSYNC_NAMES[*(const clew_fsync_kind *)(const void *)base]);
        break;
    }
}

static clew_status opt_set(clew_server_config *c, const opt *o, const char *value,
                           const char *where, clew_config_error *err)
{
    char *base = (char *)c + o->offset;
    char q[80];
    quote_value(value, q, sizeof(q));
    if (value[0] == '\0') {
        err_set(err, "%s: needs a value (%s)", where, o->arg);
        return CLEW_EPARSE;
    }
    switch (o->type) {
    case OPT_LISTEN: {
        clew_listen_addr a;
        if (clew__parse_listen(value, &a) != CLEW_OK) {
            err_set(err,
                    "%s: '%s' is not a listen address (use HOST:PORT, [IPv6]:PORT or off, "
                    "e.g. 127.0.0.1:4318)",
                    where, q);
            return CLEW_EPARSE;
        }
        memcpy(base, &a, sizeof(a));
        return CLEW_OK;
    }
    case OPT_PATH: {
        size_t n = strlen(value);
        if (n >= CLEW_CONFIG_PATH_MAX) {
            err_set(err, "%s: the path is longer than %d bytes", where, CLEW_CONFIG_PATH_MAX - 1);
            return CLEW_EPARSE;
        }
        memset(base, 0, CLEW_CONFIG_PATH_MAX);
        memcpy(base, value, n);
        return CLEW_OK;
    }
    case OPT_SAMPLING: {
        clew_tail_config *tc = NULL;
        clew_config_error perr;
        memset(&perr, 0, sizeof(perr));
        if (strlen(value) >= CLEW_CONFIG_SAMPLING_MAX ||
            clew__tail_preset_parse(value, &tc, &perr) != CLEW_OK) {
            /* the preset parser names the flag itself */
            const char *m = perr.msg[0] ? perr.msg : "the preset is longer than 255 bytes";
            if (strncmp(m, "--sampling: ", 12) == 0) {
                m += 12;
            }
            err_set(err, "%s: %s", where, m);
            return CLEW_EPARSE;
        }
        clew__tail_config_free(tc);
        memset(base, 0, CLEW_CONFIG_SAMPLING_MAX);
        memcpy(base, value, strlen(value));
        return CLEW_OK;
    }
    case OPT_STORAGE:
    case OPT_FSYNC:
    case OPT_LOGLEVEL: {
        bool st = o->type == OPT_STORAGE;
        int i = st                     ? name_index(STORAGE_NAMES, 2, value)
                : o->type == OPT_FSYNC ? name_index(FSYNC_NAMES, 3, value)
                                       : name_index(LOG_NAMES, 4, value);
        if (i < 0) {
            err_set(err, "%s: '%s' is not one of %s", where, q, o->arg);
            return CLEW_EPARSE;
        }
        if (st) {
            *(clew_storage_kind *)(void *)base = (clew_storage_kind)i;
        } else if (o->type == OPT_FSYNC) {
            *(clew_fsync_kind *)(void *)base = (clew_fsync_kind)i;
        } else {
            *(clew_log_level *)(void *)base = (clew_log_level)i;
        }
        return CLEW_OK;
    }
    case OPT_SIZE:
    case OPT_COUNT:
    case OPT_DURATION: {
        uint64_t v = 0;
        clew_status rc;
        const char *what, *example;
        if (o->type == OPT_SIZE) {
            rc = clew__parse_size(value, &v);
            what = "a size";
            example = "512MiB";
        } else if (o->type == OPT_DURATION) {
            rc = clew__duration_parse(value, strlen(value), 0, &v);
            what = "a duration";
            example = "30s";
        } else {
            rc = clew__parse_size(value, &v);
            /* a count is a plain number: no unit */
            for (const char *p = value; rc == CLEW_OK && *p; p++) {
                if (!(*p >= '0' && *p <= '9') && *p != ' ') {
                    rc = CLEW_EPARSE;
                }
            }
            what = "a whole number";
            example = "100000";
        }
        if (rc != CLEW_OK) {
            err_set(err, "%s: '%s' is not %s (use e.g. %s)", where, q, what, example);
            return CLEW_EPARSE;
        }
        if (v < o->min || v > o->max) {
            char lo[40], hi[40];
            if (o->type == OPT_SIZE) {
                clew__format_size(o->min, lo, sizeof(lo));
                clew__format_size(o->max, hi, sizeof(hi));
            } else if (o->type == OPT_DURATION) {
                format_duration(o->min, lo, sizeof(lo));
                format_duration(o->max, hi, sizeof(hi));
            } else {
                snprintf(lo, sizeof(lo), "%llu", (unsigned long long)o->min);
                snprintf(hi, sizeof(hi), "%llu", (unsigned long long)o->max);
            }
            err_set(err, "%s: '%s' is out of range (%s to %s)", where, q, lo, hi);
            return CLEW_EPARSE;
        }
        memcpy(base, &v, sizeof(v));
        return CLEW_OK;
    }
    }
    return CLEW_EPARSE;
}

clew_status clew__config_set(clew_server_config *c, const char *key, const char *value,
                             const char *where, clew_config_error *err)
{
    const opt *o = opt_find(key);
    if (o == NULL) {
        err_set(err, "%s: unknown setting '%s'", where, key);
        return CLEW_ENOTFOUND;
    }
    return opt_set(c, o, value, where, err);
}

/* ---- YAML ---- */

#define YAML_MAX_DEPTH 4

typedef struct yaml_ctx {
    yaml_parser_t parser;
    const char *name;
    clew_server_config *cfg;
    clew_config_error *err;
    bool seen[N_OPTS];
} yaml_ctx;

static size_t ev_line(const yaml_event_t *ev)
{
    return ev->start_mark.line + 1;
}

static clew_status next_event(yaml_ctx *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->parser, ev)) {
        err_set(y->err, "%s:%zu: not valid YAML: %s", y->name, y->parser.problem_mark.line + 1,
                y->parser.problem ? y->parser.problem : "syntax error");
        return CLEW_EPARSE;
    }
    return CLEW_OK;
}

static bool is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strncmp(OPTS[i].key, prefix, n) == 0 && OPTS[i].key[n] == '.') {
            return true;
        }
    }
    return false;
}

/* Consumes the rest of a mapping or sequence whose start event was consumed. */
static clew_status skip_node(yaml_ctx *y)
{
    int open = 1;
    while (open > 0) {
        yaml_event_t ev;
        clew_status rc = next_event(y, &ev);
        if (rc != CLEW_OK) {
            return rc;
        }
        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) {
            open++;
        } else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            open--;
        } else if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            return CLEW_EPARSE;
        }
        yaml_event_delete(&ev);
    }
    return CLEW_OK;
}

/* Reads the pairs of a mapping whose MAPPING_START was consumed. Nested mappings
 * are sections: their keys are joined with '.' ("section.key"). */
static clew_status yaml_mapping(yaml_ctx *y, const char *prefix, int depth)
{
    for (;;) {
        yaml_event_t kev;
        clew_status rc = next_event(y, &kev);
        if (rc != CLEW_OK) {
            return rc;
        }
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return CLEW_OK;
        }
        size_t line = ev_line(&kev);
        if (kev.type != YAML_SCALAR_EVENT) {
            err_set(y->err, "%s:%zu: a key must be a plain name", y->name, line);
            yaml_event_delete(&kev);
            return CLEW_EPARSE;
        }
        char key[128];
        int kn = snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "",
                          (const char *)kev.data.scalar.value);
        yaml_event_delete(&kev);
        if (kn < 0 || (size_t)kn >= sizeof(key)) {
            err_set(y->err, "%s:%zu: unknown setting (key too long)", y->name, line);
            return CLEW_EPARSE;
        }
        yaml_event_t vev;
        rc = next_event(y, &vev);
        if (rc != CLEW_OK) {
            return rc;
        }
        char where[CLEW_CONFIG_PATH_MAX + 160];
        snprintf(where, sizeof(where), "%s:%zu: %s", y->name, line, key);
        if (depth == 0 && strcmp(key, "tail_sampling") == 0 &&
            vev.type != YAML_MAPPING_START_EVENT) {
            err_set(y->err,
                    "%s: must be a mapping of the OpenTelemetry Collector's tail_sampling settings "
                    "(decision_wait:, policies:, ...)",
                    where);
            yaml_event_delete(&vev);
            return CLEW_EPARSE;
        }
        switch (vev.type) {
        case YAML_SCALAR_EVENT: {
            const opt *o = opt_find(key);
            if (o == NULL) {
                err_set(y->err, "%s:%zu: unknown setting '%s' (clew serve --help lists them)",
                        y->name, line, key);
                rc = CLEW_EPARSE;
                break;
            }
            size_t idx = (size_t)(o - OPTS);
            if (y->seen[idx]) {
                err_set(y->err, "%s:%zu: '%s' is set twice", y->name, line, key);
                rc = CLEW_EPARSE;
                break;
            }
            y->seen[idx] = true;
            if (strlen((const char *)vev.data.scalar.value) != vev.data.scalar.length) {
                err_set(y->err, "%s: the value contains a NUL byte", where);
                rc = CLEW_EPARSE;
                break;
            }
            rc = opt_set(y->cfg, o, (const char *)vev.data.scalar.value, where, y->err);
            if (rc != CLEW_OK) {
                rc = CLEW_EPARSE;
            }
            break;
        }
        case YAML_MAPPING_START_EVENT:
            if (depth == 0 && strcmp(key, "tail_sampling") == 0) {
                /* parsed by the sampler's own loader (serve.c); only its place is noted */
                if (y->cfg->tail_sampling_line != 0) {
                    err_set(y->err, "%s:%zu: 'tail_sampling' is set twice", y->name, line);
                    rc = CLEW_EPARSE;
                } else {
                    y->cfg->tail_sampling_line = (uint32_t)line;
                    rc = skip_node(y);
                }
            } else if (!is_section(key)) {
                err_set(y->err, "%s:%zu: unknown setting '%s' (clew serve --help lists them)",
                        y->name, line, key);
                rc = CLEW_EPARSE;
            } else if (depth + 1 >= YAML_MAX_DEPTH) {
                err_set(y->err, "%s:%zu: sections nest too deep", y->name, line);
                rc = CLEW_EPARSE;
            } else {
                rc = yaml_mapping(y, key, depth + 1);
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
            err_set(y->err, "%s: takes a single value, not a list", where);
            rc = CLEW_EPARSE;
            break;
        case YAML_ALIAS_EVENT:
            err_set(y->err, "%s: aliases (*name) are not supported", where);
            rc = CLEW_EPARSE;
            break;
        default:
            err_set(y->err, "%s: unexpected YAML", where);
            rc = CLEW_EPARSE;
            break;
        }
        yaml_event_delete(&vev);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
}

static clew_status yaml_document(yaml_ctx *y)
{
    yaml_event_t ev;
    clew_status rc = next_event(y, &ev);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (ev.type == YAML_MAPPING_START_EVENT) {
        yaml_event_delete(&ev);
        return yaml_mapping(y, "", 0);
    }
    /* "---" with nothing after it: an empty document sets nothing */
    bool empty = ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0 &&
                 ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    size_t line = ev_line(&ev);
    yaml_event_delete(&ev);
    if (empty) {
        return CLEW_OK;
    }
    err_set(y->err, "%s:%zu: the file must be a mapping of settings (key: value)", y->name, line);
    return CLEW_EPARSE;
}

clew_status clew__config_load_buffer(clew_server_config *c, const char *name, const char *data,
                                     size_t len, clew_config_error *err)
{
    yaml_ctx y;
    memset(&y, 0, sizeof(y));
    y.name = name;
    y.cfg = c;
    y.err = err;
    if (!yaml_parser_initialize(&y.parser)) {
        err_set(err, "%s: out of memory", name);
        return CLEW_ENOMEM;
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)data, len);
    /* apply to a copy so that a failed load leaves `c` untouched */
    clew_server_config work = *c;
    y.cfg = &work;

    clew_status rc = CLEW_OK;
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        rc = next_event(&y, &ev);
        if (rc != CLEW_OK) {
            break;
        }
        yaml_event_type_t t = ev.type;
        size_t line = ev_line(&ev);
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT) {
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT) {
            if (++docs > 1) {
                err_set(err, "%s:%zu: only one YAML document is allowed", name, line);
                rc = CLEW_EPARSE;
                break;
            }
            rc = yaml_document(&y);
            if (rc != CLEW_OK) {
                break;
            }
        }
        /* STREAM_START and DOCUMENT_END need nothing */
    }
    yaml_parser_delete(&y.parser);
    if (rc == CLEW_OK) {
        *c = work;
    }
    return rc;
}

clew_status clew__config_read_file(const char *path, char **out, size_t *out_len,
                                   clew_config_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        err_set(err, "%s: cannot open the config file: %s", path, strerror(errno));
        return CLEW_EIO;
    }
    /* a config file is small; refuse anything huge rather than read it all */
    const size_t max = 1024 * 1024;
    char *buf = clew__malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        err_set(err, "%s: out of memory", path);
        return CLEW_ENOMEM;
    }
    size_t n = fread(buf, 1, max + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || n > max) {
        clew__free(buf);
        err_set(err,
                bad ? "%s: cannot read the config file" : "%s: the config file is larger than 1MiB",
                path);
        return bad ? CLEW_EIO : CLEW_EPARSE;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return CLEW_OK;
}

clew_status clew__config_load_file(clew_server_config *c, const char *path, clew_config_error *err)
{
    char *buf = NULL;
    size_t n = 0;
    clew_status rc = clew__config_read_file(path, &buf, &n, err);
    if (rc == CLEW_OK) {
        rc = clew__config_load_buffer(c, path, buf, n, err);
        clew__free(buf);
    }
    return rc;
}

void clew__config_budgets(const clew_server_config *c, clew_budgets *out)
{
    out->ingest = c->max_memory / 4;
    out->query = c->max_memory / 8;
    out->sampler = clew__config_sampling_on(c) ? c->max_memory / 16 : 0;
    out->store = c->max_memory - out->ingest - out->query - out->sampler;
}

unsigned clew__config_workers(const clew_server_config *c)
{
    if (c->workers != 0) {
        return (unsigned)c->workers;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

clew_status clew__config_validate(const clew_server_config *c, clew_config_error *err)
{
    clew_budgets b;
    clew__config_budgets(c, &b);
    if (c->max_request_body > b.ingest) {
        char body[40], ingest[40];
        clew__format_size(c->max_request_body, body, sizeof(body));
        clew__format_size(b.ingest, ingest, sizeof(ingest));
        err_set(err,
                "max_request_body %s does not fit the ingest budget %s (a quarter of "
                "max_memory); lower --max-request-body or raise --max-memory",
                body, ingest);
        return CLEW_EINVAL;
    }
    if (!c->otlp_http.off && !c->http.off && c->otlp_http.port != 0 &&
        c->otlp_http.port == c->http.port && strcmp(c->otlp_http.host, c->http.host) == 0) {
        err_set(err, "otlp_http and http are both set to port %u; give them different ports",
                (unsigned)c->http.port);
        return CLEW_EINVAL;
    }
    /* the gRPC listener against the other two */
    const clew_listen_addr *others[] = {&c->otlp_http, &c->http};
    const char *other_names[] = {"otlp_http", "http"};
    for (size_t i = 0; i < 2; i++) {
        const clew_listen_addr *o = others[i];
        if (!c->otlp_grpc.off && !o->off && o->port != 0 && o->port == c->otlp_grpc.port &&
            strcmp(o->host, c->otlp_grpc.host) == 0) {
            err_set(err, "otlp_grpc and %s are both set to port %u; give them different ports",
                    other_names[i], (unsigned)o->port);
            return CLEW_EINVAL;
        }
    }
    if (strcmp(c->sampling, "off") != 0 && c->tail_sampling_line != 0) {
        err_set(err,
                "sampling '%s' and the config file's tail_sampling section (line %u) are both "
                "set; use one of them",
                c->sampling, (unsigned)c->tail_sampling_line);
        return CLEW_EINVAL;
    }
    return CLEW_OK;
}

/* ---- flags ---- */

/* "--max-memory" -> "max_memory"; false if it is not a "--name" flag. */
static bool flag_key(const char *flag, size_t flag_len, char *key, size_t key_size)
{
    if (flag_len < 3 || flag[0] != '-' || flag[1] != '-' || flag_len - 2 >= key_size) {
        return false;
    }
    for (size_t i = 2; i < flag_len; i++) {
        key[i - 2] = flag[i] == '-' ? '_' : flag[i];
    }
    key[flag_len - 2] = '\0';
    return true;
}

static void flag_name(const char *key, char *out, size_t out_size)
{
    size_t n = 0;
    out[n++] = '-';
    out[n++] = '-';
    for (const char *p = key; *p && n + 1 < out_size; p++) {
        out[n++] = *p == '_' ? '-' : *p;
    }
    out[n] = '\0';
}

clew_status clew__config_from_args(clew_server_config *c, int argc, char **argv,
                                   clew_serve_args *args, clew_config_error *err)
{
    memset(args, 0, sizeof(*args));
    clew__config_defaults(c);
    /* pass 1: --help, --print-config and --config, so the file is applied before
     * the other flags whatever their order */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args->help = true;
            return CLEW_OK;
        }
        if (strcmp(a, "--print-config") == 0) {
            args->print_config = true;
        } else if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                err_set(err, "--config needs a file name");
                return CLEW_EINVAL;
            }
            args->config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            args->config_path = a + 9;
        } else if (strncmp(a, "--", 2) == 0 && strchr(a, '=') == NULL) {
            i++; /* skip the value of a "--key VALUE" flag */
        } else if (strncmp(a, "--", 2) != 0) {
            err_set(err, "unexpected argument '%s'", a);
            return CLEW_EINVAL;
        }
    }
    if (args->config_path != NULL) {
        clew_status rc = clew__config_load_file(c, args->config_path, err);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    /* pass 2: every other flag overrides the file */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--print-config") == 0 || strncmp(a, "--config=", 9) == 0) {
            continue;
        }
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t flen = eq ? (size_t)(eq - a) : strlen(a);
        char key[64];
        if (!flag_key(a, flen, key, sizeof(key)) || opt_find(key) == NULL) {
            err_set(err, "unknown option '%.*s'", (int)(flen > 80 ? 80 : flen), a);
            return CLEW_EINVAL;
        }
        const char *value;
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            err_set(err, "%.*s needs a value", (int)flen, a);
            return CLEW_EINVAL;
        }
        char where[80];
        flag_name(key, where, sizeof(where));
        clew_status rc = clew__config_set(c, key, value, where, err);
        if (rc != CLEW_OK) {
            return CLEW_EPARSE;
        }
    }
    return clew__config_validate(c, err) == CLEW_OK ? CLEW_OK : CLEW_EPARSE;
}

/* ---- --help and --print-config ---- */

/* Prints `text` indented, breaking lines at spaces before `width` columns. */
static void print_wrapped(FILE *out, const char *text, int indent, int width)
{
    const char *p = text;
    while (*p != '\0') {
        int room = width - indent;
        size_t n = strlen(p);
        size_t take = n;
        if (n > (size_t)room) {
            take = (size_t)room;
            while (take > 0 && p[take] != ' ') {
                take--;
            }
            if (take == 0) {
                take = (size_t)room; /* one long word: cut it */
            }
        }
        fprintf(out, "%*s%.*s\n", indent, "", (int)take, p);
        p += take;
        while (*p == ' ') {
            p++;
        }
    }
}

void clew__config_print_help(FILE *out)
{
    clew_server_config d;
    clew__config_defaults(&d);
    fprintf(out, "Usage: clew serve [--config FILE] [OPTIONS]\n\n"
                 "Receive OpenTelemetry spans, store them and answer queries.\n\n"
                 "Settings come from their defaults, then the YAML file given with --config\n"
                 "(keys spelled with '_', e.g. max_memory: 1GiB), then these flags.\n\n"
                 "Options:\n");
    fprintf(out, "  --config FILE\n      YAML file with any of the settings below.\n");
    fprintf(out, "  --print-config\n      Print the effective settings and memory budgets, then "
                 "exit.\n");
    fprintf(out, "  --help\n      Print this help and exit.\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char flag[80], def[CLEW_CONFIG_PATH_MAX + 8];
        flag_name(OPTS[i].key, flag, sizeof(flag));
        opt_format(&d, &OPTS[i], def, sizeof(def));
        fprintf(out, "  %s %s\n", flag, OPTS[i].arg);
        char text[1024 + CLEW_CONFIG_PATH_MAX];
        snprintf(text, sizeof(text), "%s (default: %s)", OPTS[i].help, def);
        print_wrapped(out, text, 6, 80);
    }
    fprintf(out, "\nSizes: a number of bytes with an optional unit (KiB, MiB, GiB; KB, MB, GB).\n"
                 "Durations: a number with a unit (ms, s, m, h), e.g. 30s.\n"
                 "The memory store is lossy: past --max-traces it evicts the oldest traces even\n"
                 "though they were acknowledged to the sender.\n"
                 "Exit codes: 0 stopped by SIGINT/SIGTERM, 2 bad option or setting, 3 data dir\n"
                 "in use or a listener cannot be opened.\n");
}

void clew__config_print(const clew_server_config *c, FILE *out)
{
    fprintf(out, "# clew serve: effective settings\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char v[CLEW_CONFIG_PATH_MAX + 8];
        opt_format(c, &OPTS[i], v, sizeof(v));
        /* double-quoted so that the output loads back (e.g. "off" is a boolean to other
         * YAML tools); quotes, backslashes and control bytes escaped */
        fprintf(out, "%s: \"", OPTS[i].key);
        for (const char *p = v; *p != '\0'; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch == '"' || ch == '\\') {
                fprintf(out, "\\%c", ch);
            } else if (ch < 0x20 || ch == 0x7f) {
                fprintf(out, "\\x%02x", ch);
            } else {
                fputc(ch, out);
            }
        }
        fputs("\"\n", out);
    }
    clew_budgets b;
    clew__config_budgets(c, &b);
    char in[40], st[40], qu[40], sa[40];
    clew__format_size(b.ingest, in, sizeof(in));
    clew__format_size(b.store, st, sizeof(st));
    clew__format_size(b.query, qu, sizeof(qu));
    clew__format_size(b.sampler, sa, sizeof(sa));
    if (c->tail_sampling_line != 0) {
        fprintf(out, "# tail_sampling: the section at line %u of the config file (not repeated)\n",
                (unsigned)c->tail_sampling_line);
    }
    fprintf(out,
            "# budgets (from max_memory):\n"
            "#   ingest:  %s  (request bodies in flight, gunzipped copies, decode arenas)\n"
            "#   store:   %s  (span data held by the store)\n"
            "#   query:   %s  (query results being built)\n"
            "#   sampler: %s  (traces pending a tail-sampling decision; 1/16 when on)\n"
            "# workers: %u\n",
            in, st, qu, sa, clew__config_workers(c));
}
