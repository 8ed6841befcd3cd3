/*
 * tests/unit/test_sdk_env.c - clew_provider_create_from_env (wire.md §3.7):
 * each OTEL_* variable, empty = unset, bad values ignored and reported exactly
 * once through the log callback, OTEL_SDK_DISABLED, percent-decoding of
 * OTEL_RESOURCE_ATTRIBUTES (a bad escape discards the whole variable).
 * Reads the provider's internals (sdk_internal.h) to see what was applied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clew/clew.h"
#include "sdk/sdk_internal.h"

static const char *all_vars[] = {"OTEL_SDK_DISABLED",
                                 "OTEL_SERVICE_NAME",
                                 "OTEL_RESOURCE_ATTRIBUTES",
                                 "OTEL_TRACES_SAMPLER",
                                 "OTEL_TRACES_SAMPLER_ARG",
                                 "OTEL_TRACES_EXPORTER",
                                 "OTEL_PROPAGATORS",
                                 "OTEL_BSP_SCHEDULE_DELAY",
                                 "OTEL_BSP_EXPORT_TIMEOUT",
                                 "OTEL_BSP_MAX_QUEUE_SIZE",
                                 "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                                 "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                                 "OTEL_ATTRIBUTE_COUNT_LIMIT",
                                 "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                                 "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                                 "OTEL_SPAN_EVENT_COUNT_LIMIT",
                                 "OTEL_SPAN_LINK_COUNT_LIMIT",
                                 "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
                                 "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
                                 "OTEL_EXPORTER_OTLP_ENDPOINT",
                                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                 "OTEL_EXPORTER_OTLP_PROTOCOL",
                                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                                 "OTEL_EXPORTER_OTLP_HEADERS",
                                 "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                                 "OTEL_EXPORTER_OTLP_TIMEOUT",
                                 "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                                 "OTEL_EXPORTER_OTLP_COMPRESSION",
                                 "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"};

static int n_logs;
static char logs[16][512];
static void on_log(void *ud, clew_log_level level, const char *msg)
{
    (void)ud;
    (void)level;
    if (n_logs < 16) {
        snprintf(logs[n_logs], sizeof(logs[0]), "%s", msg);
    }
    n_logs++;
}

static int clean(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++) {
        unsetenv(all_vars[i]);
    }
    n_logs = 0;
    return 0;
}

/* Creates a provider from the environment with no exporter unless a variable
 * asks for one (OTEL_TRACES_EXPORTER=none by default here, so no thread or
 * network is involved). */
static clew_provider *create(void)
{
    if (getenv("OTEL_TRACES_EXPORTER") == NULL) {
        setenv("OTEL_TRACES_EXPORTER", "none", 1);
    }
    clew_provider_config base;
    clew_provider_config_init(&base);
    base.log = on_log;
    clew_provider *p = NULL;
    assert_int_equal(clew_provider_create_from_env(&base, &p), CLEW_OK);
    return p;
}

static const char *res(const clew_provider *p, const char *key)
{
    static char out[256];
    const clew_value *v = clew__attrs_get(&p->resource.attrs, key, strlen(key));
    if (v == NULL) {
        return "<absent>";
    }
    snprintf(out, sizeof(out), "%.*s", (int)v->u.s.len, v->u.s.ptr);
    return out;
}

static void test_defaults(void **state)
{
    (void)state;
    clew_provider *p = create();
    assert_int_equal(p->batch.max_queue_size, 2048);
    assert_int_equal(p->batch.max_export_batch_size, 512);
    assert_int_equal(p->batch.schedule_delay_ms, 5000);
    assert_int_equal(p->batch.export_timeout_ms, 30000);
    assert_int_equal(p->limits.attribute_count, 128);
    assert_int_equal(p->limits.attribute_value_length, 0);
    assert_null(p->sampler); /* parentbased(always_on) */
    assert_null(p->exporter);
    assert_string_equal(clew_propagator_name(clew_provider_propagator(p)), "tracecontext,baggage");
    assert_string_equal(res(p, "service.name"), "unknown_service:test_sdk_env");
    assert_int_equal(n_logs, 0);
    clew_provider_destroy(p);
}

static void test_disabled(void **state)
{
    (void)state;
    setenv("OTEL_SDK_DISABLED", "TRUE", 1);
    clew_provider *p = create();
    clew_tracer *t;
    assert_int_equal(clew_provider_tracer(p, "x", NULL, &t), CLEW_OK);
    clew_span *s = clew_span_start(t, "x", NULL);
    assert_false(clew_span_is_recording(s));
    clew_span_end(s, 0);
    clew_provider_destroy(p);
    /* only "true" is true */
    setenv("OTEL_SDK_DISABLED", "1", 1);
    p = create();
    assert_int_equal(clew_provider_tracer(p, "x", NULL, &t), CLEW_OK);
    s = clew_span_start(t, "x", NULL);
    assert_true(clew_span_is_recording(s));
    clew_span_end(s, 0);
    clew_provider_destroy(p);
}

static void test_resource_attributes(void **state)
{
    (void)state;
    setenv("OTEL_RESOURCE_ATTRIBUTES", " a = b%2Cc ,d=%3D, service.name=from-attrs,e=caf%C3%A9", 1);
    clew_provider *p = create();
    assert_string_equal(res(p, "a"), "b,c");
    assert_string_equal(res(p, "d"), "=");
    assert_string_equal(res(p, "e"), "caf\xc3\xa9");
    assert_string_equal(res(p, "service.name"), "from-attrs");
    clew_provider_destroy(p);
    /* OTEL_SERVICE_NAME wins */
    setenv("OTEL_SERVICE_NAME", "svc", 1);
    p = create();
    assert_string_equal(res(p, "service.name"), "svc");
    assert_string_equal(res(p, "a"), "b,c");
    clew_provider_destroy(p);
    assert_int_equal(n_logs, 0);
}

static void test_resource_attributes_bad_escape(void **state)
{
    (void)state;
    setenv("OTEL_RESOURCE_ATTRIBUTES", "good=1,bad=%zz", 1);
    clew_provider *p = create();
    assert_string_equal(res(p, "good"), "<absent>"); /* the whole variable is discarded */
    assert_int_equal(n_logs, 1);
    assert_non_null(strstr(logs[0], "OTEL_RESOURCE_ATTRIBUTES"));
    clew_provider_destroy(p);
    n_logs = 0;
    setenv("OTEL_RESOURCE_ATTRIBUTES", "good=1,noequals", 1);
    p = create();
    assert_string_equal(res(p, "good"), "<absent>");
    assert_int_equal(n_logs, 1);
    clew_provider_destroy(p);
}

static void test_empty_is_unset(void **state)
{
    (void)state;
    setenv("OTEL_SERVICE_NAME", "", 1);
    setenv("OTEL_TRACES_SAMPLER", "", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "", 1);
    clew_provider *p = create();
    assert_string_equal(res(p, "service.name"), "unknown_service:test_sdk_env");
    assert_null(p->sampler);
    assert_int_equal(p->batch.max_queue_size, 2048);
    assert_int_equal(n_logs, 0);
    clew_provider_destroy(p);
}

static void test_samplers(void **state)
{
    (void)state;
    struct {
        const char *name, *arg, *desc;
        int logs;
    } rows[] = {
        {"always_on", NULL, "AlwaysOnSampler", 0},
        {"ALWAYS_OFF", NULL, "AlwaysOffSampler", 0},
        {"traceidratio", "0.5", "TraceIdRatioBased{0.5}", 0},
        {"traceidratio", "abc", "TraceIdRatioBased{1}", 1},
        {"traceidratio", "1.5", "TraceIdRatioBased{1}", 1},
        {"parentbased_traceidratio", "0.25",
         "ParentBased{root=TraceIdRatioBased{0.25},remoteParentSampled=AlwaysOnSampler,"
         "remoteParentNotSampled=AlwaysOffSampler,localParentSampled=AlwaysOnSampler,"
         "localParentNotSampled=AlwaysOffSampler}",
         0},
        {"parentbased_always_off", NULL,
         "ParentBased{root=AlwaysOffSampler,remoteParentSampled=AlwaysOnSampler,"
         "remoteParentNotSampled=AlwaysOffSampler,localParentSampled=AlwaysOnSampler,"
         "localParentNotSampled=AlwaysOffSampler}",
         0},
        {"xray", NULL, NULL, 1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        n_logs = 0;
        setenv("OTEL_TRACES_SAMPLER", rows[i].name, 1);
        if (rows[i].arg) {
            setenv("OTEL_TRACES_SAMPLER_ARG", rows[i].arg, 1);
        } else {
            unsetenv("OTEL_TRACES_SAMPLER_ARG");
        }
        clew_provider *p = create();
        if (rows[i].desc == NULL) {
            assert_null(p->sampler);
        } else {
            assert_non_null(p->sampler);
            assert_string_equal(clew_sampler_description(p->sampler), rows[i].desc);
        }
        assert_int_equal(n_logs, rows[i].logs);
        clew_provider_destroy(p);
    }
}

static void test_bsp_and_limits(void **state)
{
    (void)state;
    setenv("OTEL_BSP_SCHEDULE_DELAY", "100", 1);
    setenv("OTEL_BSP_EXPORT_TIMEOUT", "2000", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "128", 1); /* capped at the queue size */
    setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "10", 1);
    setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "50", 1);
    setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "20", 1); /* span-specific wins */
    setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "3", 1);
    setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "4", 1);
    setenv("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "5", 1);
    setenv("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "6", 1);
    clew_provider *p = create();
    assert_int_equal(p->batch.schedule_delay_ms, 100);
    assert_int_equal(p->batch.export_timeout_ms, 2000);
    assert_int_equal(p->batch.max_queue_size, 64);
    assert_int_equal(p->batch.max_export_batch_size, 64);
    assert_int_equal(p->limits.attribute_count, 10);
    assert_int_equal(p->limits.attribute_value_length, 20);
    assert_int_equal(p->limits.event_count, 3);
    assert_int_equal(p->limits.link_count, 4);
    assert_int_equal(p->limits.event_attribute_count, 5);
    assert_int_equal(p->limits.link_attribute_count, 6);
    assert_int_equal(n_logs, 0);
    clew_provider_destroy(p);
}

/* Each bad number is reported once, naming the variable, and ignored. */
static void test_bad_numbers(void **state)
{
    (void)state;
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "-1", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "5s", 1);
    setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "99999999999", 1);
    clew_provider *p = create();
    assert_int_equal(n_logs, 3);
    assert_non_null(strstr(logs[0], "OTEL_BSP_SCHEDULE_DELAY"));
    assert_non_null(strstr(logs[1], "OTEL_BSP_MAX_QUEUE_SIZE"));
    assert_non_null(strstr(logs[2], "OTEL_SPAN_EVENT_COUNT_LIMIT"));
    assert_int_equal(p->batch.max_queue_size, 2048);
    assert_int_equal(p->batch.schedule_delay_ms, 5000);
    assert_int_equal(p->limits.event_count, 128);
    clew_provider_destroy(p);
}

static void test_exporters_and_propagators(void **state)
{
    (void)state;
    setenv("OTEL_TRACES_EXPORTER", "console", 1);
    setenv("OTEL_PROPAGATORS", "b3multi,jaeger", 1);
    clew_provider *p = create();
    assert_non_null(p->exporter);
    assert_string_equal(clew_propagator_name(clew_provider_propagator(p)), "b3multi,jaeger");
    assert_int_equal(n_logs, 0);
    clew_provider_destroy(p);

    setenv("OTEL_TRACES_EXPORTER", "zipkin", 1); /* unknown: reported, otlp used */
    setenv("OTEL_PROPAGATORS", "xray,tracecontext", 1);
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "broken", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "fast", 1);
    n_logs = 0;
    p = create();
    assert_non_null(p->exporter);
    assert_string_equal(clew_propagator_name(clew_provider_propagator(p)), "tracecontext");
    assert_int_equal(n_logs, 6);
    clew_provider_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clean),
        cmocka_unit_test_setup(test_disabled, clean),
        cmocka_unit_test_setup(test_resource_attributes, clean),
        cmocka_unit_test_setup(test_resource_attributes_bad_escape, clean),
        cmocka_unit_test_setup(test_empty_is_unset, clean),
        cmocka_unit_test_setup(test_samplers, clean),
        cmocka_unit_test_setup(test_bsp_and_limits, clean),
        cmocka_unit_test_setup(test_bad_numbers, clean),
        cmocka_unit_test_setup(test_exporters_and_propagators, clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
