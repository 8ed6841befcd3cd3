/*
 * tests/unit/test_tail_config.c - the `tail_sampling` YAML section (a Collector config
 * pasted as it is), every refusal with its file:line, and the --sampling preset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "sampling/sampler.h"

#define MS  UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

/* A server config with a tail_sampling section copied from an OpenTelemetry
 * Collector config: the keys are the Collector's, verbatim. */
static const char *COLLECTOR =
    "# clew serve config\n"                                 /* 1 */
    "storage: embedded\n"                                   /* 2 */
    "tail_sampling:\n"                                      /* 3 */
    "  decision_wait: 10s\n"                                /* 4 */
    "  num_traces: 100000\n"                                /* 5 */
    "  expected_new_traces_per_sec: 1000\n"                 /* 6 */
    "  decision_cache:\n"                                   /* 7 */
    "    sampled_cache_size: 50000\n"                       /* 8 */
    "    non_sampled_cache_size: 20000\n"                   /* 9 */
    "  policies:\n"                                         /* 10 */
    "    [\n"                                               /* 11 */
    "      {\n"                                             /* 12 */
    "        name: errors-policy,\n"                        /* 13 */
    "        type: status_code,\n"                          /* 14 */
    "        status_code: {status_codes: [ERROR, UNSET]}\n" /* 15 */
    "      },\n"                                            /* 16 */
    "      {\n"                                             /* 17 */
    "        name: test-policy-2,\n"                        /* 18 */
    "        type: latency,\n"                              /* 19 */
    "        latency: {threshold_ms: 5000, upper_threshold_ms: 10000}\n"
    "      },\n"
    "      {\n"
    "        name: test-policy-4,\n"
    "        type: probabilistic,\n"
    "        probabilistic: {sampling_percentage: 10, hash_salt: \"custom-salt\"}\n"
    "      },\n"
    "      {\n"
    "        name: test-policy-6,\n"
    "        type: string_attribute,\n"
    "        string_attribute: {key: key2, values: [value1, value2]}\n"
    "      },\n"
    "      {\n"
    "        name: test-policy-7,\n"
    "        type: string_attribute,\n"
    "        string_attribute: {key: key2, values: [value1, val*], "
    "enabled_regex_matching: true, cache_max_size: 10}\n"
    "      },\n"
    "      {\n"
    "        name: test-policy-5,\n"
    "        type: numeric_attribute,\n"
    "        numeric_attribute: {key: key1, min_value: 50, max_value: 100}\n"
    "      },\n"
    "      {\n"
    "        name: test-policy-bool,\n"
    "        type: boolean_attribute,\n"
    "        boolean_attribute: {key: key4, value: true}\n"
    "      },\n"
    "      {\n"
    "        name: test-policy-8,\n"
    "        type: rate_limiting,\n"
    "        rate_limiting: {spans_per_second: 35}\n"
    "      },\n"
    "      {\n"
    "        name: test-policy-10,\n"
    "        type: span_count,\n"
    "        span_count: {min_spans: 2, max_spans: 20}\n"
    "      },\n"
    "      {\n"
    "        name: test-policy-11,\n"
    "        type: trace_state,\n"
    "        trace_state: { key: key3, values: [value1, value2] }\n"
    "      },\n"
    "      {\n"
    "        name: and-policy-1,\n"
    "        type: and,\n"
    "        and: {\n"
    "          and_sub_policy: [\n"
    "            {\n"
    "              name: test-and-policy-1,\n"
    "              type: numeric_attribute,\n"
    "              numeric_attribute: { key: key1, min_value: 50, max_value: 100 }\n"
    "            },\n"
    "            {\n"
    "              name: test-and-policy-2,\n"
    "              type: string_attribute,\n"
    "              string_attribute: { key: key2, values: [ value1, value2 ] }\n"
    "            },\n"
    "          ]\n"
    "        }\n"
    "      },\n"
    "      {\n"
    "        name: composite-policy-1,\n"
    "        type: composite,\n"
    "        composite:\n"
    "          {\n"
    "            max_total_spans_per_second: 1000,\n"
    "            policy_order: [test-composite-policy-1, test-composite-policy-2, "
    "test-composite-policy-3],\n"
    "            composite_sub_policy:\n"
    "              [\n"
    "                {\n"
    "                  name: test-composite-policy-1,\n"
    "                  type: numeric_attribute,\n"
    "                  numeric_attribute: {key: key1, min_value: 50, max_value: 100}\n"
    "                },\n"
    "                {\n"
    "                  name: test-composite-policy-2,\n"
    "                  type: string_attribute,\n"
    "                  string_attribute: {key: key2, values: [value1, value2]}\n"
    "                },\n"
    "                {\n"
    "                  name: test-composite-policy-3,\n"
    "                  type: always_sample\n"
    "                }\n"
    "              ],\n"
    "            rate_allocation:\n"
    "              [\n"
    "                {\n"
    "                  policy: test-composite-policy-1,\n"
    "                  percent: 50\n"
    "                },\n"
    "                {\n"
    "                  policy: test-composite-policy-2,\n"
    "                  percent: 25\n"
    "                }\n"
    "              ]\n"
    "          }\n"
    "      },\n"
    "      {\n"
    "        name: drop-it,\n"
    "        type: drop,\n"
    "        drop: {\n"
    "          drop_sub_policy: [\n"
    "            {\n"
    "              name: healthcheck,\n"
    "              type: string_attribute,\n"
    "              string_attribute: {key: url.path, values: [\"^/health\", /metrics], "
    "enabled_regex_matching: true}\n"
    "            }\n"
    "          ]\n"
    "        }\n"
    "      },\n"
    "    ]\n"
    "log_level: info\n";

static const clew_tail_policy *find(const clew_tail_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_policies; i++) {
        if (strcmp(c->policies[i].name, name) == 0) {
            return &c->policies[i];
        }
    }
    fail_msg("no policy %s", name);
    return NULL;
}

static void test_collector_config(void **state)
{
    (void)state;
    clew_tail_config *c = NULL;
    clew_config_error err;
    clew_status rc =
        clew__tail_config_load_buffer("clew.yaml", COLLECTOR, strlen(COLLECTOR), &c, &err);
    if (rc != CLEW_OK) {
        fail_msg("%s", err.msg);
    }
    assert_non_null(c);
    assert_int_equal(c->decision_wait_ns, 10 * SEC);
    assert_int_equal(c->decision_grace_ns, 10 * SEC); /* default, not above the wait */
    assert_int_equal(c->num_traces, 100000);
    assert_int_equal(c->expected_new_traces_per_sec, 1000);
    assert_int_equal(c->sampled_cache_size, 50000);
    assert_int_equal(c->non_sampled_cache_size, 20000);
    assert_int_equal(c->n_policies, 13);

    const clew_tail_policy *p = find(c, "errors-policy");
    assert_int_equal(p->type, CLEW_TAIL_STATUS_CODE);
    assert_int_equal(p->status_mask, (1u << CLEW_STATUS_ERROR) | (1u << CLEW_STATUS_UNSET));
    p = find(c, "test-policy-2");
    assert_int_equal(p->threshold_ns, 5000 * MS);
    assert_int_equal(p->upper_threshold_ns, 10000 * MS);
    p = find(c, "test-policy-4");
    assert_true(p->percentage == 10.0);
    assert_string_equal(p->hash_salt, "custom-salt");
    p = find(c, "test-policy-7");
    assert_true(p->regex);
    assert_int_equal(p->n_values, 2);
    assert_non_null(p->regexes);
    p = find(c, "test-policy-5");
    assert_true(p->has_min && p->has_max);
    assert_int_equal(p->min_value, 50);
    assert_int_equal(p->max_value, 100);
    p = find(c, "test-policy-bool");
    assert_true(p->bool_value);
    p = find(c, "test-policy-8");
    assert_int_equal(p->spans_per_second, 35);
    p = find(c, "test-policy-10");
    assert_int_equal(p->min_spans, 2);
    assert_int_equal(p->max_spans, 20);
    p = find(c, "test-policy-11");
    assert_string_equal(p->key, "key3");
    assert_true(c->uses_trace_state);
    p = find(c, "and-policy-1");
    assert_int_equal(p->type, CLEW_TAIL_AND);
    assert_int_equal(p->n_subs, 2);
    assert_string_equal(p->subs[1].name, "test-and-policy-2");
    p = find(c, "composite-policy-1");
    assert_int_equal(p->max_total_sps, 1000);
    assert_int_equal(p->n_subs, 3);
    assert_true(p->alloc_pct[0] == 50.0);
    assert_true(p->alloc_pct[1] == 25.0);
    assert_true(p->alloc_pct[2] == 25.0); /* the unlisted one gets the rest */
    assert_int_equal(p->order[2], 2);
    p = find(c, "drop-it");
    assert_int_equal(p->type, CLEW_TAIL_DROP);
    assert_string_equal(p->subs[0].values[0], "^/health");
    /* key1, key2, key4, url.path: each key once in the engine's table */
    assert_int_equal(c->n_attr_keys, 4);
    clew__tail_config_free(c);
}

static void test_no_section(void **state)
{
    (void)state;
    const char *y = "storage: memory\nmax_traces: 10\n";
    clew_tail_config *c = (clew_tail_config *)&c;
    clew_config_error err;
    assert_int_equal(clew__tail_config_load_buffer("a.yaml", y, strlen(y), &c, &err), CLEW_OK);
    assert_null(c);
    assert_int_equal(clew__tail_config_load_buffer("a.yaml", "", 0, &c, &err), CLEW_OK);
    assert_null(c);
}

static void test_clew_extensions(void **state)
{
    (void)state;
    const char *y = "tail_sampling:\n  decision_wait: 30s\n  decision_grace: 3s\n"
                    "  max_bytes: 128MiB\n  max_spans_per_trace: 500\n"
                    "  policies:\n    - {name: a, type: always_sample}\n";
    clew_tail_config *c;
    clew_config_error err;
    assert_int_equal(clew__tail_config_load_buffer("a.yaml", y, strlen(y), &c, &err), CLEW_OK);
    assert_int_equal(c->decision_grace_ns, 3 * SEC);
    assert_int_equal(c->max_bytes, 128u << 20);
    assert_int_equal(c->max_spans_per_trace, 500);
    clew__tail_config_free(c);
}

/* Loading `yaml` fails with a message that contains `want` (which names the line). */
static void expect_error(const char *yaml, const char *want)
{
    clew_tail_config *c = (clew_tail_config *)&c;
    clew_config_error err;
    clew_status rc = clew__tail_config_load_buffer("t.yaml", yaml, strlen(yaml), &c, &err);
    if (rc == CLEW_OK || strstr(err.msg, want) == NULL) {
        print_error("yaml:\n%s\nwant error containing: %s\ngot rc=%d msg: %s\n", yaml, want, rc,
                    err.msg);
        fail();
    }
    assert_null(c);
}

#define HEAD "tail_sampling:\n  policies:\n"

static void test_errors(void **state)
{
    (void)state;
    expect_error("a: [\n", "t.yaml:2: ");
    expect_error("tail_sampling: 5\n", "t.yaml:1: tail_sampling: expected a mapping");
    expect_error("tail_sampling:\n  decision_wait: 10s\n", "t.yaml:2: tail_sampling: no policies");
    expect_error("tail_sampling:\n  decision_wait: soon\n  policies: []\n",
                 "t.yaml:2: decision_wait: 'soon' is not a duration");
    expect_error("tail_sampling:\n  decision_wait: 0s\n", "t.yaml:2: decision_wait: must be");
    expect_error("tail_sampling:\n  num_traces: -3\n", "t.yaml:2: num_traces: '-3' is not a whole");
    expect_error("tail_sampling:\n  num_traces: 0\n", "t.yaml:2: num_traces: 0 is out of range");
    expect_error("tail_sampling:\n  num_traces: [1]\n", "t.yaml:2: num_traces: expected a single");
    expect_error("tail_sampling:\n  max_bytes: 12 potatoes\n", "t.yaml:2: max_bytes: '12 potatoes' "
                                                               "is not a size");
    expect_error("tail_sampling:\n  max_bytes: 1KiB\n", "t.yaml:2: max_bytes: must be between");
    expect_error("tail_sampling:\n  decision_cache: 5\n", "t.yaml:2: decision_cache: expected");
    expect_error("tail_sampling:\n  decision_cache:\n    sampled: 5\n",
                 "t.yaml:3: decision_cache: unknown key");
    expect_error("tail_sampling:\n  bogus: 1\n", "t.yaml:2: tail_sampling: unknown key 'bogus'");
    expect_error("tail_sampling: {policies: []}\ntail_sampling: {}\n", "t.yaml:2: tail_sampling: "
                                                                       "given twice");
    expect_error(HEAD "    {a: 1}\n", "t.yaml:3: policies: expected a list");
    expect_error(HEAD "    []\n", "t.yaml:3: policies: the list is empty");
    expect_error(HEAD "    - 5\n", "t.yaml:3: a policy must be a mapping");
    expect_error(HEAD "    - {type: always_sample}\n", "t.yaml:3: policy without a name");
    expect_error(HEAD "    - {name: a}\n", "t.yaml:3: policy 'a' has no type");
    expect_error(HEAD "    - {name: a, type: sometimes}\n", "t.yaml:3: policy 'a': unknown type "
                                                            "'sometimes'");
    expect_error(HEAD
                 "    - {name: a, type: always_sample}\n    - {name: a, type: always_sample}\n",
                 "t.yaml:4: policy name 'a' is used twice");
    expect_error(HEAD "    - {name: a, type: always_sample, colour: red}\n",
                 "t.yaml:3: unknown policy key 'colour'");
    expect_error(HEAD "    - {name: a, type: always_sample, latency: {threshold_ms: 1}}\n",
                 "always_sample takes no settings");
    expect_error(HEAD "    - {name: a, type: latency}\n", "t.yaml:3: policy 'a': type latency "
                                                          "needs a 'latency:' section");
    expect_error(HEAD "    - name: a\n      type: latency\n      status_code: {}\n",
                 "t.yaml:5: policy 'a': type latency needs a 'latency:' section");
    expect_error(HEAD "    - name: a\n      type: latency\n      latency: {}\n",
                 "t.yaml:5: policy 'a': latency needs threshold_ms");
    expect_error(HEAD "    - name: a\n      type: latency\n      latency:\n"
                      "        threshold_ms: 100\n        upper_threshold_ms: 50\n",
                 "t.yaml:6: policy 'a': upper_threshold_ms must be above");
    expect_error(HEAD "    - name: a\n      type: latency\n      latency:\n"
                      "        threshold: 100\n",
                 "t.yaml:6: policy 'a': unknown key 'threshold' for type latency");
    expect_error(HEAD "    - name: a\n      type: status_code\n      status_code:\n"
                      "        status_codes: [ERROR, FINE]\n",
                 "t.yaml:6: status_codes: 'FINE' is not OK, ERROR or UNSET");
    expect_error(HEAD
                 "    - name: a\n      type: status_code\n      status_code: {status_codes: []}\n",
                 "t.yaml:5: policy 'a': status_code needs status_codes");
    expect_error(HEAD "    - name: p\n      type: probabilistic\n      probabilistic:\n"
                      "        sampling_percentage: 101\n",
                 "t.yaml:6: sampling_percentage: 101 is out of range");
    expect_error(HEAD "    - name: p\n      type: probabilistic\n      probabilistic:\n"
                      "        sampling_percentage: ten\n",
                 "t.yaml:6: sampling_percentage: 'ten' is not a number");
    expect_error(HEAD
                 "    - name: p\n      type: probabilistic\n      probabilistic: {hash_salt: x}\n",
                 "t.yaml:5: policy 'p': probabilistic needs sampling_percentage");
    expect_error(HEAD "    - name: s\n      type: string_attribute\n      string_attribute:\n"
                      "        key: k\n",
                 "t.yaml:6: policy 's': string_attribute needs key and values");
    expect_error(HEAD "    - name: s\n      type: string_attribute\n      string_attribute:\n"
                      "        key: k\n        values: x\n",
                 "t.yaml:7: values: expected a list");
    expect_error(HEAD
                 "    - name: s\n      type: string_attribute\n      string_attribute:\n"
                 "        key: k\n        values: ['(']\n        enabled_regex_matching: true\n",
                 "policy 's': bad regex '('");
    /* patterns that would make regcomp take gigabytes are refused before it runs */
    expect_error(HEAD "    - name: s\n      type: string_attribute\n      string_attribute:\n"
                      "        key: k\n        values: ['a++++++++']\n"
                      "        enabled_regex_matching: true\n",
                 "policy 's': regex 'a++++++++' refused: repetition of a repetition");
    expect_error(HEAD "    - name: s\n      type: string_attribute\n      string_attribute:\n"
                      "        key: k\n        values: ['((a{100})b{100})']\n"
                      "        enabled_regex_matching: true\n",
                 "refused: too many or too large repetitions");
    expect_error(HEAD
                 "    - name: s\n      type: string_attribute\n      string_attribute:\n"
                 "        key: k\n        values: ['(((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)']\n"
                 "        enabled_regex_matching: true\n",
                 "refused: too many or too large repetitions");
    expect_error(HEAD "    - name: s\n      type: string_attribute\n      string_attribute:\n"
                      "        key: k\n        values: [a]\n        invert_match: maybe\n",
                 "t.yaml:8: invert_match: 'maybe' is not true or false");
    expect_error(HEAD "    - name: n\n      type: numeric_attribute\n      numeric_attribute:\n"
                      "        key: k\n",
                 "t.yaml:6: policy 'n': numeric_attribute needs key and min_value or max_value");
    expect_error(HEAD "    - name: n\n      type: numeric_attribute\n      numeric_attribute:\n"
                      "        {key: k, min_value: 9, max_value: 3}\n",
                 "t.yaml:6: policy 'n': min_value is above max_value");
    expect_error(HEAD "    - name: n\n      type: numeric_attribute\n      numeric_attribute:\n"
                      "        {key: k, min_value: 1.5}\n",
                 "t.yaml:6: min_value: '1.5' is not a whole number");
    expect_error(HEAD "    - name: b\n      type: boolean_attribute\n      boolean_attribute:\n"
                      "        {key: k}\n",
                 "t.yaml:6: policy 'b': boolean_attribute needs key and value");
    expect_error(HEAD "    - name: c\n      type: span_count\n      span_count:\n"
                      "        {min_spans: 5, max_spans: 2}\n",
                 "t.yaml:6: policy 'c': max_spans is below min_spans");
    expect_error(HEAD "    - name: t\n      type: trace_state\n      trace_state: {key: k}\n",
                 "t.yaml:5: policy 't': trace_state needs key and values");
    expect_error(HEAD "    - name: r\n      type: rate_limiting\n      rate_limiting: {}\n",
                 "t.yaml:5: policy 'r': rate_limiting needs spans_per_second");
    expect_error(HEAD "    - name: r\n      type: rate_limiting\n"
                      "      rate_limiting: {spans_per_second: 0}\n",
                 "t.yaml:5: spans_per_second: 0 is out of range");
    expect_error(HEAD "    - name: x\n      type: and\n      and: {and_sub_policy: []}\n",
                 "t.yaml:5: and_sub_policy: the list is empty");
    expect_error(HEAD "    - name: x\n      type: and\n      and: {}\n",
                 "t.yaml:5: policy 'x': and needs at least one sub-policy");
    expect_error(HEAD "    - name: x\n      type: drop\n      drop:\n        and_sub_policy: []\n",
                 "t.yaml:6: policy 'x': unknown key 'and_sub_policy' for type drop");
    expect_error(HEAD "    - name: c\n      type: composite\n      composite:\n"
                      "        composite_sub_policy: [{name: a, type: always_sample}]\n",
                 "t.yaml:6: policy 'c': composite needs max_total_spans_per_second");
    expect_error(HEAD "    - name: c\n      type: composite\n      composite:\n"
                      "        max_total_spans_per_second: 10\n"
                      "        composite_sub_policy: [{name: a, type: always_sample}]\n"
                      "        policy_order: [b]\n",
                 "t.yaml:8: policy_order: 'b' is not a composite_sub_policy");
    expect_error(HEAD "    - name: c\n      type: composite\n      composite:\n"
                      "        max_total_spans_per_second: 10\n"
                      "        composite_sub_policy:\n"
                      "          - {name: a, type: always_sample}\n"
                      "          - {name: b, type: always_sample}\n"
                      "        rate_allocation:\n"
                      "          - {policy: a, percent: 80}\n"
                      "          - {policy: b, percent: 30}\n",
                 "t.yaml:11: rate_allocation: percents add up to 110");
    expect_error(HEAD "    - name: c\n      type: composite\n      composite:\n"
                      "        max_total_spans_per_second: 10\n"
                      "        composite_sub_policy: [{name: a, type: always_sample}]\n"
                      "        rate_allocation:\n"
                      "          - {policy: z, percent: 10}\n",
                 "t.yaml:9: rate_allocation: 'z' is not a composite_sub_policy");
    /* nesting is bounded */
    expect_error(HEAD "    - name: a\n      type: and\n      and:\n        and_sub_policy:\n"
                      "          - name: b\n            type: and\n            and:\n"
                      "              and_sub_policy:\n"
                      "                - name: c\n                  type: and\n"
                      "                  and:\n                    and_sub_policy:\n"
                      "                      - {name: d, type: always_sample}\n",
                 "t.yaml:15: and_sub_policy: policies nested more than 3 deep");
}

static void test_preset(void **state)
{
    (void)state;
    clew_tail_config *c;
    clew_config_error err;
    assert_int_equal(clew__tail_preset_parse("errors+slow:500ms+10%", &c, &err), CLEW_OK);
    assert_non_null(c);
    assert_int_equal(c->n_policies, 3);
    assert_int_equal(c->policies[0].type, CLEW_TAIL_STATUS_CODE);
    assert_int_equal(c->policies[0].status_mask, 1u << CLEW_STATUS_ERROR);
    assert_string_equal(c->policies[0].name, "errors");
    assert_int_equal(c->policies[1].type, CLEW_TAIL_LATENCY);
    assert_int_equal(c->policies[1].threshold_ns, 500 * MS);
    assert_int_equal(c->policies[2].type, CLEW_TAIL_PROBABILISTIC);
    assert_true(c->policies[2].percentage == 10.0);
    assert_int_equal(c->decision_wait_ns, 30 * SEC); /* the defaults otherwise */
    clew__tail_config_free(c);

    assert_int_equal(clew__tail_preset_parse("2.5%", &c, &err), CLEW_OK);
    assert_true(c->policies[0].percentage == 2.5);
    clew__tail_config_free(c);

    c = (clew_tail_config *)&c;
    assert_int_equal(clew__tail_preset_parse("off", &c, &err), CLEW_OK);
    assert_null(c);

    static const struct {
        const char *in, *want;
    } bad[] = {
        {"", "empty"},
        {"errors+", "unknown part ''"},
        {"errors+errors", "'errors' given twice"},
        {"slow:fast", "'fast' is not a duration"},
        {"slow:0ms", "'0ms' is not a duration above 0"},
        {"0%", "not a percentage in (0, 100]"},
        {"150%", "not a percentage in (0, 100]"},
        {"-5%", "not a percentage"},
        {"%", "unknown part '%'"},
        {"most", "unknown part 'most'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = (clew_tail_config *)&c;
        clew_status rc = clew__tail_preset_parse(bad[i].in, &c, &err);
        if (rc == CLEW_OK || strstr(err.msg, bad[i].want) == NULL ||
            strstr(err.msg, "--sampling:") == NULL) {
            fail_msg("preset '%s': want '%s', got rc=%d '%s'", bad[i].in, bad[i].want, rc, err.msg);
        }
        assert_null(c);
    }
}

/* Out of memory at every allocation in turn: a clean refusal, never a crash or a leak
 * (ASan checks the leaks), and with enough memory the same config loads. */
static void test_out_of_memory(void **state)
{
    (void)state;
    bool loaded = false;
    for (long n = 0; n < 2000 && !loaded; n++) {
        clew_tail_config *c = NULL;
        clew_config_error err;
        clew__alloc_fail_after(n);
        clew_status rc =
            clew__tail_config_load_buffer("oom.yaml", COLLECTOR, strlen(COLLECTOR), &c, &err);
        clew__alloc_fail_after(-1);
        if (rc == CLEW_OK) {
            assert_non_null(c);
            assert_int_equal(c->n_policies, 13);
            clew__tail_config_free(c);
            loaded = true;
        } else {
            assert_null(c);
            assert_true(err.msg[0] != '\0');
        }
    }
    assert_true(loaded);
    loaded = false;
    for (long n = 0; n < 100 && !loaded; n++) {
        clew_tail_config *c = NULL;
        clew_config_error err;
        clew__alloc_fail_after(n);
        clew_status rc = clew__tail_preset_parse("errors+slow:1s+5%", &c, &err);
        clew__alloc_fail_after(-1);
        if (rc == CLEW_OK) {
            assert_int_equal(c->n_policies, 3);
            clew__tail_config_free(c);
            loaded = true;
        } else {
            assert_int_equal(rc, CLEW_ENOMEM);
            assert_null(c);
        }
    }
    assert_true(loaded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collector_config), cmocka_unit_test(test_no_section),
        cmocka_unit_test(test_clew_extensions),  cmocka_unit_test(test_errors),
        cmocka_unit_test(test_preset),           cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
