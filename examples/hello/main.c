/*
 * examples/hello/main.c - the libclew hello world of docs/sdk.md, grown a
 * little: a SERVER span with attributes and two CLIENT children, one of which
 * fails (status ERROR plus an "exception" event). Everything the exporter needs
 * comes from the OTEL_* environment variables. Prints the trace id (32 hex
 * digits) on stdout so scripts can look the trace up.
 *
 * Uses only the public headers in include/clew/. Single-threaded.
 */
#include <clew/clew.h>
#include <stdio.h>

static void on_log(void *ud, clew_log_level level, const char *message)
{
    (void)ud;
    if (level >= CLEW_LOG_WARN) {
        fprintf(stderr, "%s\n", message);
    }
}

int main(void)
{
    clew_provider_config base;
    clew_provider_config_init(&base);
    base.log = on_log; /* the SDK never prints by itself: show its warnings */
    clew_provider *p;
    if (clew_provider_create_from_env(&base, &p) != CLEW_OK) {
        fprintf(stderr, "hello: cannot create the provider\n");
        return 1;
    }
    clew_tracer *t;
    if (clew_provider_tracer(p, "hello", "1.0", &t) != CLEW_OK) {
        fprintf(stderr, "hello: cannot create the tracer\n");
        clew_provider_destroy(p);
        return 1;
    }

    clew_attr server_attrs[] = {
        clew_attr_str("http.request.method", "GET"),
        clew_attr_str("url.path", "/hello"),
    };
    clew_span_options so = {.kind = CLEW_SPAN_KIND_SERVER, .attrs = server_attrs, .n_attrs = 2};
    clew_span *srv = clew_span_start(t, "GET /hello", &so);
    clew_span_set_int(srv, "http.response.status_code", 200);
    clew_span_set_bool(srv, "hello.cached", false);
    clew_current_token tok = clew_span_make_current(srv);

    /* children of the current span (srv) */
    clew_span_options co = {.kind = CLEW_SPAN_KIND_CLIENT};
    clew_span *db = clew_span_start(t, "SELECT greetings", &co);
    clew_span_set_str(db, "db.system", "postgresql");
    clew_span_set_double(db, "hello.rows", 1.0);
    clew_span_end(db, 0);

    clew_span *cache = clew_span_start(t, "GET cache", &co);
    clew_span_set_str(cache, "server.address", "cache.internal");
    clew_span_record_exception(cache, "ConnectionRefused", "cache.internal:6379 refused", NULL);
    clew_span_set_status(cache, CLEW_SPAN_STATUS_ERROR, "cache unavailable");
    clew_span_end(cache, 0);

    clew_span_context sc;
    clew_span_context_get(srv, &sc);
    clew_span_restore(tok);
    clew_span_end(srv, 0);

    int rc = 0;
    if (clew_provider_shutdown(p, 5000) != CLEW_OK) {
        fprintf(stderr, "hello: shutdown timed out\n");
        rc = 1;
    }
    clew_provider_stats st;
    clew_provider_stats_get(p, &st);
    if (st.failed_spans != 0 || st.dropped_spans != 0) {
        fprintf(stderr, "hello: %llu spans failed, %llu dropped\n",
                (unsigned long long)st.failed_spans, (unsigned long long)st.dropped_spans);
        rc = 1;
    }
    clew_provider_destroy(p);

    for (int i = 0; i < 16; i++) {
        printf("%02x", sc.trace_id.bytes[i]);
    }
    printf("\n");
    return rc;
}
