/*
 * examples/w3c-service/main.c - the test service of the W3C trace-context
 * interoperability harness, on libclew's public API: for `POST /test` whose
 * body is a JSON list of {"url": ..., "arguments": ...}, it POSTs each
 * `arguments` (as JSON) to its `url` in order, each call inside a CLIENT span
 * whose context travels in the outgoing headers, all under a SERVER span that
 * continues the context the request carried (or starts a new trace when the
 * headers are missing or invalid, as the processing model says). Answers 200
 * once every call is done, 400 for a body that is not such a list.
 *
 * Usage: w3c-service [--port N] (default 8080; listens on 127.0.0.1). The
 * propagators come from OTEL_PROPAGATORS (default tracecontext,baggage) and the
 * exporter from the other OTEL_* variables. SIGINT/SIGTERM stop it cleanly.
 *
 * The HTTP server is libevent's evhttp, the client libcurl and the JSON parser
 * jansson: dependencies of this example only, not of libclew. Single-threaded:
 * outgoing calls are made synchronously from the request callback, which is
 * what the harness expects (one test request at a time).
 */
#include <clew/clew.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY    (1u << 20)
#define MAX_HEADERS 64

typedef struct service {
    clew_provider *provider;
    clew_tracer *tracer;
    CURL *curl;
} service;

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* POSTs `body` to `url` with the context of `span` in the headers; returns the
 * HTTP status, or -1 when the request could not be made. */
static long forward(service *svc, clew_span *span, const char *url, const char *body)
{
    clew_span_context sc;
    clew_span_context_get(span, &sc);
    clew_header items[8];
    char buf[2048];
    clew_header_list hl;
    clew_header_list_init(&hl, items, 0, 8, buf, sizeof(buf));
    clew_carrier c = clew_http_headers_carrier(&hl);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (clew_propagator_inject(clew_provider_propagator(svc->provider), &sc, NULL, &c) == CLEW_OK) {
        for (size_t i = 0; i < hl.count && hdrs != NULL; i++) {
            char line[2304];
            snprintf(line, sizeof(line), "%.*s: %.*s", (int)items[i].name.len, items[i].name.ptr,
                     (int)items[i].value.len, items[i].value.ptr);
            struct curl_slist *n = curl_slist_append(hdrs, line);
            if (n == NULL) {
                curl_slist_free_all(hdrs);
                hdrs = NULL;
            } else {
                hdrs = n;
            }
        }
    }
    if (hdrs == NULL) {
        return -1;
    }
    CURL *h = svc->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long status = -1;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(hdrs);
    return status;
}

static void reply(struct evhttp_request *req, int code, const char *reason)
{
    evhttp_send_reply(req, code, reason, NULL);
}

static void on_test(struct evhttp_request *req, void *ud)
{
    service *svc = ud;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply(req, 405, "Method Not Allowed");
        return;
    }
    /* the incoming headers, as views for the extracting carrier */
    clew_header items[MAX_HEADERS];
    size_t n = 0;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    for (struct evkeyval *kv = in->tqh_first; kv != NULL && n < MAX_HEADERS;
         kv = kv->next.tqe_next) {
        items[n].name.ptr = kv->key;
        items[n].name.len = strlen(kv->key);
        items[n].value.ptr = kv->value;
        items[n].value.len = strlen(kv->value);
        n++;
    }
    clew_header_list hl;
    clew_header_list_init(&hl, items, n, MAX_HEADERS, NULL, 0);
    clew_carrier c = clew_http_headers_carrier(&hl);
    clew_span_context parent;
    clew_span_options so = {.kind = CLEW_SPAN_KIND_SERVER, .root = true};
    if (clew_propagator_extract(clew_provider_propagator(svc->provider), &c, &parent, NULL) ==
        CLEW_OK) {
        so.parent = &parent;
        so.root = false;
    }

    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    if (len > MAX_BODY) {
        reply(req, 413, "Payload Too Large");
        return;
    }
    json_error_t err;
    json_t *list = json_loadb((const char *)evbuffer_pullup(b, -1), len, 0, &err);
    if (list == NULL || !json_is_array(list)) {
        json_decref(list);
        reply(req, 400, "Bad Request");
        return;
    }
    clew_span *srv = clew_span_start(svc->tracer, "POST /test", &so);
    clew_span_set_str(srv, "http.request.method", "POST");
    int code = 200;
    size_t i;
    json_t *call;
    json_array_foreach(list, i, call)
    {
        const char *url = json_string_value(json_object_get(call, "url"));
        json_t *args = json_object_get(call, "arguments");
        if (url == NULL) {
            code = 400;
            break;
        }
        char *body = json_dumps(args != NULL ? args : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        if (body == NULL) {
            code = 500;
            break;
        }
        clew_span_context sc;
        clew_span_context_get(srv, &sc);
        clew_span_options co = {.kind = CLEW_SPAN_KIND_CLIENT, .parent = &sc};
        clew_span *cl = clew_span_start(svc->tracer, "POST", &co);
        clew_span_set_str(cl, "url.full", url);
        long status = forward(svc, cl, url, body);
        clew_span_set_int(cl, "http.response.status_code", status);
        if (status < 200 || status >= 300) {
            clew_span_set_status(cl, CLEW_SPAN_STATUS_ERROR, "call failed");
        }
        clew_span_end(cl, 0);
        free(body); /* json_dumps' memory comes from jansson's malloc */
    }
    json_decref(list);
    clew_span_set_int(srv, "http.response.status_code", code);
    clew_span_end(srv, 0);
    reply(req, code, code == 200 ? "OK" : "Error");
}

static void on_signal(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    event_base_loopexit(ud, NULL);
}

int main(int argc, char **argv)
{
    long port = 8080;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || port <= 0 || port > 65535) {
                fprintf(stderr, "w3c-service: bad port \"%s\"\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: w3c-service [--port N]\n");
            return 2;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    service svc = {0};
    int rc = 1;
    struct event_base *base = NULL;
    struct evhttp *http = NULL;
    struct event *sigint = NULL, *sigterm = NULL;
    if (clew_provider_create_from_env(NULL, &svc.provider) != CLEW_OK ||
        clew_provider_tracer(svc.provider, "w3c-service", "1.0", &svc.tracer) != CLEW_OK) {
        fprintf(stderr, "w3c-service: cannot set up tracing\n");
        goto out;
    }
    svc.curl = curl_easy_init();
    base = event_base_new();
    http = base != NULL ? evhttp_new(base) : NULL;
    if (svc.curl == NULL || http == NULL) {
        fprintf(stderr, "w3c-service: out of memory\n");
        goto out;
    }
    evhttp_set_max_body_size(http, MAX_BODY);
    evhttp_set_cb(http, "/test", on_test, &svc);
    if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) != 0) {
        fprintf(stderr, "w3c-service: cannot listen on 127.0.0.1:%ld\n", port);
        goto out;
    }
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    if (sigint == NULL || sigterm == NULL || event_add(sigint, NULL) != 0 ||
        event_add(sigterm, NULL) != 0) {
        goto out;
    }
    printf("w3c-service listening on 127.0.0.1:%ld\n", port);
    fflush(stdout);
    rc = event_base_dispatch(base) < 0 ? 1 : 0;
out:
    if (sigint != NULL) {
        event_free(sigint);
    }
    if (sigterm != NULL) {
        event_free(sigterm);
    }
    if (http != NULL) {
        evhttp_free(http);
    }
    if (base != NULL) {
        event_base_free(base);
    }
    if (svc.curl != NULL) {
        curl_easy_cleanup(svc.curl);
    }
    clew_provider_destroy(svc.provider);
    curl_global_cleanup();
    return rc;
}
