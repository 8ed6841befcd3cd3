/*
 * src/sdk/otlp_http.c - the OTLP/HTTP exporter (protobuf or JSON) on libcurl.
 *
 * One easy handle is kept and reused by the export thread, so the connection
 * stays alive between batches. Retries (wire.md §4.1): only 429, 502, 503 and
 * 504 and connection-level failures are retried, with exponential backoff and
 * full jitter in [d/2, d], or exactly the Retry-After delay (seconds or an
 * HTTP-date, parsed by curl_getdate) when the server sends one; the loop gives
 * up at the export deadline and the provider counts the spans as failed. Any
 * other status, 400 included, is final.
 *
 * Compression: with CLEW_OTLP_COMPRESSION_GZIP the encoded request is deflated
 * with a gzip wrapper (zlib, the library libcurl itself links for response
 * decoding) into a second buffer, and sent with Content-Encoding: gzip (HTTP)
 * or as a compressed gRPC message with grpc-encoding: gzip (gRPC).
 *
 * gRPC (CLEW_OTLP_GRPC): the same handle speaks HTTP/2 (prior knowledge for
 * http://, so no upgrade round trip; ALPN for https://). The body is one
 * length-prefixed message (1 byte compressed flag, 4 bytes big-endian length,
 * the ExportTraceServiceRequest); the answer's grpc-status and grpc-message
 * arrive in the trailers, which libcurl hands to the header callback like any
 * header (or in the headers of a trailers-only answer). Retried codes follow
 * the OTLP specification's table (grpc_retry.c); RESOURCE_EXHAUSTED is retried
 * only when the grpc-status-details-bin trailer carries a google.rpc.RetryInfo
 * detail, and a RetryInfo's retry_delay replaces the computed backoff.
 */
#include <curl/curl.h>
#include <zlib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clew/version.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "sdk/sdk_internal.h"

#define MAX_REQUEST  (64u << 20)
#define MAX_RESPONSE (4u << 20)

#define GRPC_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

typedef struct otlp_exporter {
    clew_exporter base;
    char *url;
    bool json;
    bool grpc;
    bool gzip;
    bool fresh_conn;    /* a new connection per transfer (see h2_reuse_broken) */
    clew_buf wire;      /* the compressed and/or length-prefixed payload */
    int grpc_status;    /* from the last answer; -1 = none seen */
    char grpc_msg[256]; /* grpc-message of the last answer (percent-encoded as sent) */
    /* grpc-status-details-bin of the last answer; -1 = none, -2 = too long to look at */
    int details_len;
    char details[CLEW__GRPC_DETAILS_MAX + 8]; /* + the blanks and CRLF around it */
    struct curl_slist *headers;
    char *ca, *key, *cert;
    uint32_t retry_initial_ms, retry_max_ms;
    CURL *curl;
    clew_arena arena;
    clew_buf body;
    clew_buf resp;
    int64_t retry_after_ms; /* from the last response; -1 = none */
} otlp_exporter;

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void clew_otlp_config_init(clew_otlp_config *c)
{
    if (c == NULL) {
        return;
    }
    memset(c, 0, sizeof(*c));
    c->url = "http://localhost:4318/v1/traces";
    c->protocol = CLEW_OTLP_HTTP_PROTOBUF;
    c->timeout_ms = 10000;
    c->retry_initial_ms = 200;
    c->retry_max_ms = 5000;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    otlp_exporter *x = ud;
    size_t n = size * nmemb;
    if (x->resp.len + n > MAX_RESPONSE) {
        return 0; /* the client MUST cap the response: abort the transfer */
    }
    return clew__buf_append(&x->resp, ptr, n) == CLEW_OK ? n : 0;
}

/* Copies the value of header line `ptr` (n bytes) after its `skip`-byte name,
 * trimmed, into v (cap bytes, NUL-terminated, cut when longer). */
static void header_value(const char *ptr, size_t n, size_t skip, char *v, size_t cap)
{
    size_t vl = n - skip;
    if (vl >= cap) {
        vl = cap - 1;
    }
    memcpy(v, ptr + skip, vl);
    v[vl] = '\0';
    size_t lead = 0;
    while (v[lead] == ' ' || v[lead] == '\t') {
        lead++;
    }
    memmove(v, v + lead, vl - lead + 1);
    size_t l = strlen(v);
    while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' ')) {
        v[--l] = '\0';
    }
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    otlp_exporter *x = ud;
    size_t n = size * nmemb;
    static const char gs[] = "grpc-status:";
    static const char gm[] = "grpc-message:";
    if (n > sizeof(gs) - 1 && strncasecmp(ptr, gs, sizeof(gs) - 1) == 0) {
        char v[16];
        header_value(ptr, n, sizeof(gs) - 1, v, sizeof(v));
        bool digits = v[0] != '\0' && strlen(v) <= 3;
        for (size_t i = 0; v[i] != '\0' && digits; i++) {
            digits = v[i] >= '0' && v[i] <= '9';
        }
        /* an unparsable status counts as UNKNOWN (2), which is final */
        x->grpc_status = digits ? (int)strtol(v, NULL, 10) : 2;
        return n;
    }
    if (n > sizeof(gm) - 1 && strncasecmp(ptr, gm, sizeof(gm) - 1) == 0) {
        header_value(ptr, n, sizeof(gm) - 1, x->grpc_msg, sizeof(x->grpc_msg));
        return n;
    }
    static const char gd[] = "grpc-status-details-bin:";
    if (n > sizeof(gd) - 1 && strncasecmp(ptr, gd, sizeof(gd) - 1) == 0) {
        /* kept raw: clew__grpc_retry_info trims and decodes it */
        size_t vl = n - (sizeof(gd) - 1);
        if (vl > sizeof(x->details)) {
            x->details_len = -2;
        } else {
            memcpy(x->details, ptr + sizeof(gd) - 1, vl);
            x->details_len = (int)vl;
        }
        return n;
    }
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
        char v[128];
        size_t vl = n - (sizeof(name) - 1);
        if (vl >= sizeof(v)) {
            vl = sizeof(v) - 1;
        }
        memcpy(v, ptr + sizeof(name) - 1, vl);
        v[vl] = '\0';
        char *s = v;
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == '\r' || s[l - 1] == '\n' || s[l - 1] == ' ')) {
            s[--l] = '\0';
        }
        bool digits = l > 0 && l < 10;
        for (size_t i = 0; i < l && digits; i++) {
            digits = s[i] >= '0' && s[i] <= '9';
        }
        if (digits) {
            x->retry_after_ms = (int64_t)strtoll(s, NULL, 10) * 1000;
        } else {
            time_t t = curl_getdate(s, NULL);
            if (t != (time_t)-1) {
                int64_t d = ((int64_t)t - (int64_t)time(NULL)) * 1000;
                x->retry_after_ms = d > 0 ? d : 0;
            }
        }
    }
    return n;
}

/* libcurl 7.88.x cannot reuse an HTTP/2 connection opened with prior
 * knowledge: the next transfer on it fails at once with CURLE_HTTP2 ("Error in
 * the HTTP2 framing layer"; curl issue #10634, fixed in 8.0.0), which made
 * every gRPC export over http:// after the first one fail, retries included.
 * With such a libcurl each of those transfers gets a connection of its own. */
static bool h2_reuse_broken(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v != NULL && v->version_num >= 0x075800 && v->version_num < 0x080000;
}

static void otlp_destroy(clew_exporter *e)
{
    otlp_exporter *x = (otlp_exporter *)e;
    if (x->curl != NULL) {
        curl_easy_cleanup(x->curl);
    }
    curl_slist_free_all(x->headers);
    clew__free(x->url);
    clew__free(x->ca);
    clew__free(x->key);
    clew__free(x->cert);
    clew__arena_deinit(&x->arena);
    clew__buf_deinit(&x->body);
    clew__buf_deinit(&x->wire);
    clew__buf_deinit(&x->resp);
    clew__free(x);
}

static void otlp_after_fork(clew_exporter *e)
{
    /* The handle's socket is shared with the parent: abandon it (a cleanup could
     * write on the parent's connection) and connect afresh on first use. */
    otlp_exporter *x = (otlp_exporter *)e;
    x->curl = NULL;
}

static bool retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
        return true;
    default:
        return false;
    }
}

/* Appends src[0..n) to dst as one gzip member (RFC 1952). */
static clew_status gzip_append(const char *src, size_t n, clew_buf *dst)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16 selects the gzip wrapper instead of zlib's */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        return CLEW_ENOMEM;
    }
    uLong bound = deflateBound(&zs, (uLong)n);
    clew_status rc = clew__buf_reserve(dst, (size_t)bound);
    if (rc == CLEW_OK) {
        zs.next_in = (Bytef *)(uintptr_t)src;
        zs.avail_in = (uInt)n;
        zs.next_out = (Bytef *)dst->data + dst->len;
        zs.avail_out = (uInt)bound;
        /* the output cannot outgrow deflateBound, so one Z_FINISH call completes */
        if (deflate(&zs, Z_FINISH) == Z_STREAM_END) {
            dst->len += (size_t)zs.total_out;
        } else {
            rc = CLEW_EIO;
        }
    }
    deflateEnd(&zs);
    return rc;
}

/* Builds what goes on the wire from x->body into x->wire when the body is not
 * sent as is; *payload / *len point at the bytes to send. */
static clew_status build_payload(otlp_exporter *x, const char **payload, size_t *len)
{
    if (!x->grpc && !x->gzip) {
        *payload = x->body.data ? x->body.data : "";
        *len = x->body.len;
        return CLEW_OK;
    }
    clew__buf_reset(&x->wire);
    clew_status rc = CLEW_OK;
    if (x->grpc) {
        char prefix[5] = {0};
        rc = clew__buf_append(&x->wire, prefix, sizeof(prefix));
    }
    if (rc == CLEW_OK) {
        if (x->gzip) {
            rc = gzip_append(x->body.data ? x->body.data : "", x->body.len, &x->wire);
        } else {
            rc = clew__buf_append(&x->wire, x->body.data ? x->body.data : "", x->body.len);
        }
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    if (x->grpc) {
        size_t m = x->wire.len - 5;
        if (m > UINT32_MAX) {
            return CLEW_ETOOBIG;
        }
        uint8_t *p = (uint8_t *)x->wire.data;
        p[0] = x->gzip ? 1 : 0;
        p[1] = (uint8_t)(m >> 24);
        p[2] = (uint8_t)(m >> 16);
        p[3] = (uint8_t)(m >> 8);
        p[4] = (uint8_t)m;
    }
    *payload = x->wire.data;
    *len = x->wire.len;
    return CLEW_OK;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static clew_status otlp_export(clew_exporter *e, const clew_span_data *const *spans, size_t n,
                               uint64_t deadline)
{
    otlp_exporter *x = (otlp_exporter *)e;
    clew__arena_reset(&x->arena);
    clew__buf_reset(&x->body);
    clew_status rc = clew__encode_spans(spans, n, x->json, &x->arena, &x->body);
    if (rc != CLEW_OK) {
        clew__exporter_log(e, CLEW_LOG_ERROR, "clew: encoding %zu spans failed: %s", n,
                           clew_strerror(rc));
        return rc;
    }
    const char *payload;
    size_t payload_len;
    rc = build_payload(x, &payload, &payload_len);
    if (rc != CLEW_OK) {
        clew__exporter_log(e, CLEW_LOG_ERROR, "clew: compressing %zu spans failed: %s", n,
                           clew_strerror(rc));
        return rc;
    }
    if (x->curl == NULL) {
        x->curl = curl_easy_init();
        if (x->curl == NULL) {
            return CLEW_ENOMEM;
        }
    }
    CURL *c = x->curl;
    char ua[64];
    snprintf(ua, sizeof(ua), "OTel-OTLP-Exporter-C/%s (clew)", CLEW_VERSION_STRING);
    uint64_t backoff = x->retry_initial_ms ? x->retry_initial_ms : 200;
    for (unsigned attempt = 0;; attempt++) {
        uint64_t now = clew__now_mono_ns();
        if (now >= deadline) {
            return CLEW_ETIMEDOUT;
        }
        long left_ms = (long)((deadline - now) / 1000000u);
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, x->url);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)payload_len);
        if (x->grpc) {
            curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                             strncmp(x->url, "https://", 8) == 0
                                 ? (long)CURL_HTTP_VERSION_2TLS
                                 : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
        curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left_ms > 0 ? left_ms : 1L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (x->fresh_conn) {
            curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
        if (x->ca != NULL) {
            curl_easy_setopt(c, CURLOPT_CAINFO, x->ca);
        }
        if (x->cert != NULL) {
            curl_easy_setopt(c, CURLOPT_SSLCERT, x->cert);
        }
        if (x->key != NULL) {
            curl_easy_setopt(c, CURLOPT_SSLKEY, x->key);
        }
        clew__buf_reset(&x->resp);
        x->retry_after_ms = -1;
        x->grpc_status = -1;
        x->grpc_msg[0] = '\0';
        x->details_len = -1;
        uint64_t server_delay_ns = UINT64_MAX;
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        bool retry;
        if (cc == CURLE_OK && x->grpc) {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            if (status == 200 && x->grpc_status == 0) {
                return CLEW_OK;
            }
            if (status != 200) {
                /* an HTTP-level refusal (proxy, wrong port): the gRPC spec maps
                 * 429, 502, 503 and 504 to UNAVAILABLE */
                retry = status == 429 || status == 502 || status == 503 || status == 504;
            } else {
                /* a details value too long to look at counts as one without RetryInfo */
                retry = clew__grpc_retryable(
                    x->grpc_status, x->details_len >= 0 ? x->details : NULL,
                    x->details_len >= 0 ? (size_t)x->details_len : 0, &server_delay_ns);
            }
            if (!retry) {
                clew__exporter_log(e, CLEW_LOG_ERROR,
                                   "clew: OTLP/gRPC export to %s refused: HTTP %ld, grpc-status "
                                   "%d (%s) (not retried)",
                                   x->url, status, x->grpc_status, x->grpc_msg);
                return x->grpc_status == 3 ? CLEW_EINVAL : CLEW_EIO;
            }
        } else if (cc == CURLE_OK) {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            if (status >= 200 && status < 300) {
                return CLEW_OK;
            }
            retry = status == 429 || status == 502 || status == 503 || status == 504;
            if (!retry) {
                clew__exporter_log(e, CLEW_LOG_ERROR,
                                   "clew: OTLP export to %s refused with HTTP %ld (not retried)",
                                   x->url, status);
                return status >= 400 && status < 500 ? CLEW_EINVAL : CLEW_EIO;
            }
        } else {
            retry = retryable_curl(cc);
            if (!retry) {
                clew__exporter_log(e, CLEW_LOG_ERROR, "clew: OTLP export to %s failed: %s", x->url,
                                   curl_easy_strerror(cc));
                return CLEW_ENET;
            }
        }
        uint64_t delay;
        if (server_delay_ns != UINT64_MAX) {
            /* RetryInfo: at least the server's delay, so round up to whole ms */
            delay = server_delay_ns / 1000000u + (server_delay_ns % 1000000u != 0);
        } else if (x->retry_after_ms >= 0) {
            delay = (uint64_t)x->retry_after_ms;
        } else {
            /* jitter in [backoff/2, backoff] so clients that failed together spread out */
            delay = backoff / 2 + clew__rand_u64() % (backoff / 2 + 1);
            backoff *= 2;
            uint64_t cap = x->retry_max_ms ? x->retry_max_ms : 5000;
            if (backoff > cap) {
                backoff = cap;
            }
        }
        now = clew__now_mono_ns();
        /* compared in ms: a server's delay may be as long as a Duration goes */
        if (now >= deadline || delay >= (deadline - now) / 1000000u) {
            clew__exporter_log(
                e, CLEW_LOG_WARN, "clew: OTLP export to %s gave up after %u attempts (%s)", x->url,
                attempt + 1, cc == CURLE_OK ? "retryable status" : curl_easy_strerror(cc));
            return cc == CURLE_OK ? CLEW_ETIMEDOUT : CLEW_ENET;
        }
        sleep_ms(delay);
    }
}

static const clew__exporter_ops otlp_ops = {otlp_export, otlp_after_fork, otlp_destroy};

typedef struct hdr_ctx {
    struct curl_slist *list;
    bool oom;
} hdr_ctx;

static clew_status add_header(void *ud, const char *key, const char *value)
{
    hdr_ctx *h = ud;
    size_t n = strlen(key) + strlen(value) + 3;
    char *line = clew__malloc(n);
    if (line == NULL) {
        return CLEW_ENOMEM;
    }
    snprintf(line, n, "%s: %s", key, value);
    struct curl_slist *l = curl_slist_append(h->list, line);
    clew__free(line);
    if (l == NULL) {
        return CLEW_ENOMEM;
    }
    h->list = l;
    return CLEW_OK;
}

/* The gRPC method URL: the scheme and authority of `base`, then GRPC_PATH. */
static char *grpc_url(const char *base, bool *oom)
{
    const char *auth = strstr(base, "://") + 3;
    size_t n = strcspn(auth, "/?#") + (size_t)(auth - base);
    size_t len = n + sizeof(GRPC_PATH);
    char *u = clew__malloc(len);
    if (u == NULL) {
        *oom = true;
        return NULL;
    }
    snprintf(u, len, "%.*s%s", (int)n, base, GRPC_PATH);
    return u;
}

static char *dup_opt(const char *s, bool *oom)
{
    if (s == NULL || s[0] == '\0') {
        return NULL;
    }
    char *d = clew__strdup(s);
    if (d == NULL) {
        *oom = true;
    }
    return d;
}

clew_status clew_exporter_otlp_http(const clew_otlp_config *config, clew_exporter **out)
{
    if (config == NULL || out == NULL || config->url == NULL ||
        (strncmp(config->url, "http://", 7) != 0 && strncmp(config->url, "https://", 8) != 0) ||
        (unsigned)config->protocol > (unsigned)CLEW_OTLP_GRPC ||
        (unsigned)config->compression > (unsigned)CLEW_OTLP_COMPRESSION_GZIP) {
        return CLEW_EINVAL;
    }
    (void)pthread_once(&g_curl_once, curl_init_once);
    otlp_exporter *x = clew__calloc(1, sizeof(*x));
    if (x == NULL) {
        return CLEW_ENOMEM;
    }
    x->base.ops = &otlp_ops;
    x->json = config->protocol == CLEW_OTLP_HTTP_JSON;
    x->grpc = config->protocol == CLEW_OTLP_GRPC;
    x->gzip = config->compression == CLEW_OTLP_COMPRESSION_GZIP;
    x->fresh_conn = x->grpc && strncmp(config->url, "http://", 7) == 0 && h2_reuse_broken();
    x->retry_initial_ms = config->retry_initial_ms;
    x->retry_max_ms = config->retry_max_ms;
    clew__arena_init(&x->arena, 64 * 1024, 0);
    clew__buf_init(&x->body, MAX_REQUEST);
    clew__buf_init(&x->wire, MAX_REQUEST + (MAX_REQUEST >> 6) + 64); /* gzip can grow a bit */
    clew__buf_init(&x->resp, MAX_RESPONSE);
    bool oom = false;
    x->url = x->grpc ? grpc_url(config->url, &oom) : dup_opt(config->url, &oom);
    x->ca = dup_opt(config->ca_file, &oom);
    x->key = dup_opt(config->client_key_file, &oom);
    x->cert = dup_opt(config->client_cert_file, &oom);
    hdr_ctx h = {NULL, false};
    clew_status rc = oom ? CLEW_ENOMEM : CLEW_OK;
    if (rc == CLEW_OK && x->grpc) {
        rc = add_header(&h, "Content-Type", "application/grpc");
        if (rc == CLEW_OK) {
            rc = add_header(&h, "TE", "trailers");
        }
        if (rc == CLEW_OK && x->gzip) {
            rc = add_header(&h, "grpc-encoding", "gzip");
        }
    } else if (rc == CLEW_OK) {
        rc =
            add_header(&h, "Content-Type", x->json ? "application/json" : "application/x-protobuf");
        if (rc == CLEW_OK && x->gzip) {
            rc = add_header(&h, "Content-Encoding", "gzip");
        }
    }
    if (rc == CLEW_OK) {
        /* libcurl adds "Expect: 100-continue" to large POSTs: one round trip lost */
        struct curl_slist *l = curl_slist_append(h.list, "Expect:");
        rc = l == NULL ? CLEW_ENOMEM : CLEW_OK;
        h.list = l ? l : h.list;
    }
    if (rc == CLEW_OK && config->headers != NULL) {
        rc = clew__parse_kv_list(config->headers, add_header, &h);
        if (rc == CLEW_EPARSE) {
            rc = CLEW_EINVAL;
        }
    }
    x->headers = h.list;
    if (rc != CLEW_OK) {
        otlp_destroy(&x->base);
        return rc;
    }
    *out = &x->base;
    return CLEW_OK;
}
