/*
 * src/sampling/config.c - the `tail_sampling` section of the server's YAML config
 * (the OpenTelemetry Collector's tail_sampling keys, verbatim) and the `--sampling`
 * preset. Every refusal says "file:line: reason".
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "sampling/sampler.h"

#define MS_NS         UINT64_C(1000000)
#define MAX_COUNT     UINT64_C(50000000)
#define MAX_NAME      128
#define MAX_VALUE_LEN 1024
#define MAX_WAIT_NS   (UINT64_C(24) * 3600 * 1000000000u)

typedef struct pctx {
    yaml_document_t *doc;
    const char *file;
    clew_config_error *err;
    size_t n_policies; /* all levels, against CLEW_TAIL_MAX_POLICIES */
} pctx;

static size_t line_of(const yaml_node_t *n)
{
    return n != NULL ? n->start_mark.line + 1 : 0;
}

static clew_status fail(pctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static clew_status fail(pctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(c->err->msg, sizeof(c->err->msg), "%s:%zu: %s", c->file, line_of(n), why);
    return CLEW_EPARSE;
}

static yaml_node_t *node(pctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static size_t pair_count(const yaml_node_t *map)
{
    return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

static yaml_node_t *pair_key(pctx *c, const yaml_node_t *map, size_t i)
{
    return node(c, map->data.mapping.pairs.start[i].key);
}

static yaml_node_t *pair_value(pctx *c, const yaml_node_t *map, size_t i)
{
    return node(c, map->data.mapping.pairs.start[i].value);
}

static bool is_scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE;
}

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool key_is(const yaml_node_t *k, const char *s)
{
    return strlen(s) == k->data.scalar.length && memcmp(sval(k), s, k->data.scalar.length) == 0;
}

static clew_status want_scalar(pctx *c, const yaml_node_t *v, const char *key)
{
    if (!is_scalar(v)) {
        return fail(c, v, "%s: expected a single value", key);
    }
    if (strlen(sval(v)) != v->data.scalar.length) {
        return fail(c, v, "%s: value contains a NUL byte", key);
    }
    return CLEW_OK;
}

static clew_status get_uint(pctx *c, const yaml_node_t *v, const char *key, uint64_t min,
                            uint64_t max, uint64_t *out)
{
    clew_status rc = want_scalar(c, v, key);
    if (rc != CLEW_OK) {
        return rc;
    }
    const char *s = sval(v);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0) {
        return fail(c, v, "%s: '%.40s' is not a whole number", key, s);
    }
    if (x < min || x > max) {
        return fail(c, v, "%s: %llu is out of range [%llu, %llu]", key, x, (unsigned long long)min,
                    (unsigned long long)max);
    }
    *out = x;
    return CLEW_OK;
}

static clew_status get_int(pctx *c, const yaml_node_t *v, const char *key, int64_t *out)
{
    clew_status rc = want_scalar(c, v, key);
    if (rc != CLEW_OK) {
        return rc;
    }
    const char *s = sval(v);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0) {
        return fail(c, v, "%s: '%.40s' is not a whole number", key, s);
    }
    *out = x;
    return CLEW_OK;
}

static clew_status get_double(pctx *c, const yaml_node_t *v, const char *key, double min,
                              double max, double *out)
{
    clew_status rc = want_scalar(c, v, key);
    if (rc != CLEW_OK) {
        return rc;
    }
    const char *s = sval(v);
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(x)) {
        return fail(c, v, "%s: '%.40s' is not a number", key, s);
    }
    if (x < min || x > max) {
        return fail(c, v, "%s: %g is out of range [%g, %g]", key, x, min, max);
    }
    *out = x;
    return CLEW_OK;
}

static clew_status get_bool(pctx *c, const yaml_node_t *v, const char *key, bool *out)
{
    clew_status rc = want_scalar(c, v, key);
    if (rc != CLEW_OK) {
        return rc;
    }
    const char *s = sval(v);
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
        *out = true;
    } else if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
        *out = false;
    } else {
        return fail(c, v, "%s: '%.40s' is not true or false", key, s);
    }
    return CLEW_OK;
}

static clew_status get_duration(pctx *c, const yaml_node_t *v, const char *key, uint64_t *out)
{
    clew_status rc = want_scalar(c, v, key);
    if (rc != CLEW_OK) {
        return rc;
    }
    uint64_t ns;
    if (clew__duration_parse(sval(v), v->data.scalar.length, 0, &ns) != CLEW_OK) {
        return fail(c, v, "%s: '%.40s' is not a duration (use e.g. 30s or 500ms)", key, sval(v));
    }
    if (ns == 0 || ns > MAX_WAIT_NS) {
        return fail(c, v, "%s: must be more than 0 and at most 24h", key);
    }
    *out = ns;
    return CLEW_OK;
}

static clew_status get_size(pctx *c, const yaml_node_t *v, const char *key, uint64_t *out)
{
    clew_status rc = want_scalar(c, v, key);
    if (rc != CLEW_OK) {
        return rc;
    }
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}, {"", 1}};
    const char *s = sval(v);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (s[0] >= '0' && s[0] <= '9' && errno == 0) {
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strcmp(end, units[i].suffix) == 0) {
                if (x > (UINT64_C(1) << 50) / units[i].mult || x * units[i].mult < 65536) {
                    return fail(c, v, "%s: must be between 64KiB and 1PiB", key);
                }
                *out = x * units[i].mult;
                return CLEW_OK;
            }
        }
    }
    return fail(c, v, "%s: '%.40s' is not a size (use e.g. 256MiB)", key, s);
}

static clew_status get_string(pctx *c, const yaml_node_t *v, const char *key, char **out)
{
    clew_status rc = want_scalar(c, v, key);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (v->data.scalar.length > MAX_VALUE_LEN) {
        return fail(c, v, "%s: longer than %d bytes", key, MAX_VALUE_LEN);
    }
    clew__free(*out);
    *out = clew__strdup(sval(v));
    if (*out == NULL) {
        return fail(c, v, "out of memory");
    }
    return CLEW_OK;
}

/* A sequence of strings, each at most MAX_VALUE_LEN bytes. */
static clew_status get_strings(pctx *c, const yaml_node_t *v, const char *key, char ***out,
                               size_t *n_out)
{
    if (v == NULL || v->type != YAML_SEQUENCE_NODE) {
        return fail(c, v, "%s: expected a list", key);
    }
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > CLEW_TAIL_MAX_VALUES) {
        return fail(c, v, "%s: more than %d values", key, CLEW_TAIL_MAX_VALUES);
    }
    for (size_t i = 0; i < *n_out; i++) {
        clew__free((*out)[i]);
    }
    clew__free(*out);
    *n_out = 0;
    *out = clew__calloc(n ? n : 1, sizeof(char *));
    if (*out == NULL) {
        return fail(c, v, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node(c, v->data.sequence.items.start[i]);
        clew_status rc = get_string(c, item, key, &(*out)[i]);
        if (rc != CLEW_OK) {
            return rc;
        }
        *n_out = i + 1;
    }
    return CLEW_OK;
}

static const struct {
    const char *name;
    clew_tail_policy_type type;
} TYPES[] = {
    {"always_sample", CLEW_TAIL_ALWAYS_SAMPLE},
    {"latency", CLEW_TAIL_LATENCY},
    {"status_code", CLEW_TAIL_STATUS_CODE},
    {"probabilistic", CLEW_TAIL_PROBABILISTIC},
    {"string_attribute", CLEW_TAIL_STRING_ATTRIBUTE},
    {"numeric_attribute", CLEW_TAIL_NUMERIC_ATTRIBUTE},
    {"boolean_attribute", CLEW_TAIL_BOOLEAN_ATTRIBUTE},
    {"span_count", CLEW_TAIL_SPAN_COUNT},
    {"trace_state", CLEW_TAIL_TRACE_STATE},
    {"rate_limiting", CLEW_TAIL_RATE_LIMITING},
    {"and", CLEW_TAIL_AND},
    {"composite", CLEW_TAIL_COMPOSITE},
    {"drop", CLEW_TAIL_DROP},
};

#define N_TYPES (sizeof(TYPES) / sizeof(TYPES[0]))

static clew_status parse_policies(pctx *c, const yaml_node_t *seq, const char *key, int depth,
                                  clew_tail_policy **out, size_t *n_out);

/* Iterates the key/value pairs of a mapping node. Written as a single loop whose
 * body sees k and v as plain locals (a nested one-trip loop confused clang's
 * optimizer under -fsanitize=fuzzer into passing an undefined k). */
#define FOR_PAIRS(c, map, k, v)                                                                    \
    for (size_t i_##k = 0, n_##k = pair_count(map); i_##k < n_##k; i_##k++)                        \
        for (yaml_node_t *k = pair_key(c, map, i_##k), *v = pair_value(c, map, i_##k); k != NULL;  \
             k = NULL, v = NULL)

/* The per-type section of a policy, e.g. `latency: {threshold_ms: 500}`. */
static clew_status parse_section(pctx *c, clew_tail_policy *p, const yaml_node_t *sec, int depth)
{
    clew_status rc = CLEW_OK;
    if (sec == NULL || sec->type != YAML_MAPPING_NODE) {
        return fail(c, sec, "policy '%s': expected a mapping of settings", p->name);
    }
    bool have_key = false, have_values = false, have_value = false, have_rate = false;
    bool have_pct = false, have_sps = false, have_subs = false, have_codes = false;
    bool have_threshold = false, have_min_spans = false;
    const yaml_node_t *alloc_node = NULL, *order_node = NULL;
    FOR_PAIRS(c, sec, k, v)
    {
        if (!is_scalar(k)) {
            return fail(c, k, "policy '%s': keys must be plain names", p->name);
        }
        const char *kn = sval(k);
        switch (p->type) {
        case CLEW_TAIL_LATENCY:
            if (key_is(k, "threshold_ms") || key_is(k, "upper_threshold_ms")) {
                uint64_t ms;
                rc = get_uint(c, v, kn, 0, UINT64_C(86400000) * 365, &ms);
                if (key_is(k, "threshold_ms")) {
                    p->threshold_ns = ms * MS_NS;
                    have_threshold = true;
                } else {
                    p->upper_threshold_ns = ms * MS_NS;
                }
                break;
            }
            goto unknown;
        case CLEW_TAIL_STATUS_CODE:
            if (key_is(k, "status_codes")) {
                char **codes = NULL;
                size_t n = 0;
                rc = get_strings(c, v, kn, &codes, &n);
                for (size_t i = 0; rc == CLEW_OK && i < n; i++) {
                    if (strcmp(codes[i], "OK") == 0) {
                        p->status_mask |= 1u << CLEW_STATUS_OK;
                    } else if (strcmp(codes[i], "ERROR") == 0) {
                        p->status_mask |= 1u << CLEW_STATUS_ERROR;
                    } else if (strcmp(codes[i], "UNSET") == 0) {
                        p->status_mask |= 1u << CLEW_STATUS_UNSET;
                    } else {
                        rc =
                            fail(c, v, "status_codes: '%.40s' is not OK, ERROR or UNSET", codes[i]);
                    }
                }
                for (size_t i = 0; i < n; i++) {
                    clew__free(codes[i]);
                }
                clew__free(codes);
                have_codes = rc == CLEW_OK && n > 0;
                break;
            }
            goto unknown;
        case CLEW_TAIL_PROBABILISTIC:
            if (key_is(k, "sampling_percentage")) {
                rc = get_double(c, v, kn, 0.0, 100.0, &p->percentage);
                have_pct = true;
            } else if (key_is(k, "hash_salt")) {
                rc = get_string(c, v, kn, &p->hash_salt);
            } else {
                goto unknown;
            }
            break;
        case CLEW_TAIL_STRING_ATTRIBUTE:
        case CLEW_TAIL_NUMERIC_ATTRIBUTE:
        case CLEW_TAIL_BOOLEAN_ATTRIBUTE:
        case CLEW_TAIL_TRACE_STATE:
            if (key_is(k, "key")) {
                rc = get_string(c, v, kn, &p->key);
                have_key = rc == CLEW_OK && p->key[0] != '\0';
            } else if (key_is(k, "invert_match") && p->type != CLEW_TAIL_TRACE_STATE) {
                rc = get_bool(c, v, kn, &p->invert);
            } else if (key_is(k, "values") && (p->type == CLEW_TAIL_STRING_ATTRIBUTE ||
                                               p->type == CLEW_TAIL_TRACE_STATE)) {
                rc = get_strings(c, v, kn, &p->values, &p->n_values);
                have_values = true;
            } else if (key_is(k, "enabled_regex_matching") &&
                       p->type == CLEW_TAIL_STRING_ATTRIBUTE) {
                rc = get_bool(c, v, kn, &p->regex);
            } else if (key_is(k, "cache_max_size") && p->type == CLEW_TAIL_STRING_ATTRIBUTE) {
                uint64_t ignored; /* the Collector's regex result cache: nothing to size here */
                rc = get_uint(c, v, kn, 0, MAX_COUNT, &ignored);
            } else if (key_is(k, "min_value") && p->type == CLEW_TAIL_NUMERIC_ATTRIBUTE) {
                rc = get_int(c, v, kn, &p->min_value);
                p->has_min = true;
            } else if (key_is(k, "max_value") && p->type == CLEW_TAIL_NUMERIC_ATTRIBUTE) {
                rc = get_int(c, v, kn, &p->max_value);
                p->has_max = true;
            } else if (key_is(k, "value") && p->type == CLEW_TAIL_BOOLEAN_ATTRIBUTE) {
                rc = get_bool(c, v, kn, &p->bool_value);
                have_value = true;
            } else {
                goto unknown;
            }
            break;
        case CLEW_TAIL_SPAN_COUNT:
            if (key_is(k, "min_spans")) {
                rc = get_uint(c, v, kn, 0, UINT32_MAX, &p->min_spans);
                have_min_spans = true;
            } else if (key_is(k, "max_spans")) {
                rc = get_uint(c, v, kn, 0, UINT32_MAX, &p->max_spans);
            } else {
                goto unknown;
            }
            break;
        case CLEW_TAIL_RATE_LIMITING:
            if (key_is(k, "spans_per_second")) {
                rc = get_uint(c, v, kn, 1, UINT32_MAX, &p->spans_per_second);
                have_rate = true;
                break;
            }
            goto unknown;
        case CLEW_TAIL_AND:
        case CLEW_TAIL_DROP:
            if ((p->type == CLEW_TAIL_AND && key_is(k, "and_sub_policy")) ||
                (p->type == CLEW_TAIL_DROP && key_is(k, "drop_sub_policy"))) {
                rc = parse_policies(c, v, kn, depth + 1, &p->subs, &p->n_subs);
                have_subs = true;
                break;
            }
            goto unknown;
        case CLEW_TAIL_COMPOSITE:
            if (key_is(k, "max_total_spans_per_second")) {
                rc = get_uint(c, v, kn, 1, UINT32_MAX, &p->max_total_sps);
                have_sps = true;
            } else if (key_is(k, "composite_sub_policy")) {
                rc = parse_policies(c, v, kn, depth + 1, &p->subs, &p->n_subs);
                have_subs = true;
            } else if (key_is(k, "policy_order")) {
                order_node = v;
            } else if (key_is(k, "rate_allocation")) {
                alloc_node = v;
            } else {
                goto unknown;
            }
            break;
        case CLEW_TAIL_ALWAYS_SAMPLE:
            goto unknown;
        }
        if (rc != CLEW_OK) {
            return rc;
        }
        continue;
    unknown:
        return fail(c, k, "policy '%s': unknown key '%.60s' for type %s", p->name, kn,
                    TYPES[p->type].name);
    }
    switch (p->type) {
    case CLEW_TAIL_LATENCY:
        if (!have_threshold && p->upper_threshold_ns == 0) {
            return fail(c, sec, "policy '%s': latency needs threshold_ms", p->name);
        }
        if (p->upper_threshold_ns != 0 && p->upper_threshold_ns <= p->threshold_ns) {
            return fail(c, sec, "policy '%s': upper_threshold_ms must be above threshold_ms",
                        p->name);
        }
        break;
    case CLEW_TAIL_STATUS_CODE:
        if (!have_codes) {
            return fail(c, sec, "policy '%s': status_code needs status_codes", p->name);
        }
        break;
    case CLEW_TAIL_PROBABILISTIC:
        if (!have_pct) {
            return fail(c, sec, "policy '%s': probabilistic needs sampling_percentage", p->name);
        }
        break;
    case CLEW_TAIL_STRING_ATTRIBUTE:
    case CLEW_TAIL_TRACE_STATE:
        if (!have_key || !have_values || p->n_values == 0) {
            return fail(c, sec, "policy '%s': %s needs key and values", p->name,
                        TYPES[p->type].name);
        }
        break;
    case CLEW_TAIL_NUMERIC_ATTRIBUTE:
        if (!have_key || (!p->has_min && !p->has_max)) {
            return fail(c, sec,
                        "policy '%s': numeric_attribute needs key and min_value or "
                        "max_value",
                        p->name);
        }
        if (p->has_min && p->has_max && p->min_value > p->max_value) {
            return fail(c, sec, "policy '%s': min_value is above max_value", p->name);
        }
        break;
    case CLEW_TAIL_BOOLEAN_ATTRIBUTE:
        if (!have_key || !have_value) {
            return fail(c, sec, "policy '%s': boolean_attribute needs key and value", p->name);
        }
        break;
    case CLEW_TAIL_SPAN_COUNT:
        if (!have_min_spans && p->max_spans == 0) {
            return fail(c, sec, "policy '%s': span_count needs min_spans", p->name);
        }
        if (p->max_spans != 0 && p->max_spans < p->min_spans) {
            return fail(c, sec, "policy '%s': max_spans is below min_spans", p->name);
        }
        break;
    case CLEW_TAIL_RATE_LIMITING:
        if (!have_rate) {
            return fail(c, sec, "policy '%s': rate_limiting needs spans_per_second", p->name);
        }
        break;
    case CLEW_TAIL_AND:
    case CLEW_TAIL_DROP:
    case CLEW_TAIL_COMPOSITE:
        if (!have_subs || p->n_subs == 0) {
            return fail(c, sec, "policy '%s': %s needs at least one sub-policy", p->name,
                        TYPES[p->type].name);
        }
        break;
    default:
        break;
    }
    if (p->type != CLEW_TAIL_COMPOSITE) {
        return CLEW_OK;
    }
    if (!have_sps) {
        return fail(c, sec, "policy '%s': composite needs max_total_spans_per_second", p->name);
    }
    p->order = clew__calloc(p->n_subs, sizeof(size_t));
    p->alloc_pct = clew__calloc(p->n_subs, sizeof(double));
    if (p->order == NULL || p->alloc_pct == NULL) {
        return fail(c, sec, "out of memory");
    }
    bool *seen = clew__calloc(p->n_subs, sizeof(bool));
    if (seen == NULL) {
        return fail(c, sec, "out of memory");
    }
    clew_status rc2 = CLEW_OK;
    if (order_node != NULL) {
        char **names = NULL;
        size_t n = 0;
        rc2 = get_strings(c, order_node, "policy_order", &names, &n);
        for (size_t i = 0; rc2 == CLEW_OK && i < n; i++) {
            size_t j = 0;
            while (j < p->n_subs && strcmp(p->subs[j].name, names[i]) != 0) {
                j++;
            }
            if (j == p->n_subs) {
                rc2 = fail(c, order_node, "policy_order: '%.60s' is not a composite_sub_policy",
                           names[i]);
            } else if (seen[j]) {
                rc2 = fail(c, order_node, "policy_order: '%.60s' is listed twice", names[i]);
            } else {
                seen[j] = true;
                p->order[i] = j;
            }
        }
        if (rc2 == CLEW_OK && n != p->n_subs) {
            rc2 = fail(c, order_node, "policy_order must list every composite_sub_policy");
        }
        for (size_t i = 0; i < n; i++) {
            clew__free(names[i]);
        }
        clew__free(names);
    } else {
        for (size_t i = 0; i < p->n_subs; i++) {
            p->order[i] = i;
        }
    }
    /* rate_allocation: [{policy, percent}]; the rest is shared by the unlisted */
    memset(seen, 0, p->n_subs * sizeof(bool));
    double total = 0;
    size_t listed = 0;
    if (rc2 == CLEW_OK && alloc_node != NULL) {
        if (alloc_node->type != YAML_SEQUENCE_NODE) {
            rc2 = fail(c, alloc_node, "rate_allocation: expected a list");
        }
        for (yaml_node_item_t *it = alloc_node->data.sequence.items.start;
             rc2 == CLEW_OK && it < alloc_node->data.sequence.items.top; it++) {
            yaml_node_t *m = node(c, *it);
            if (m == NULL || m->type != YAML_MAPPING_NODE) {
                rc2 = fail(c, m, "rate_allocation: expected {policy, percent}");
                break;
            }
            char *pname = NULL;
            double pct = -1;
            FOR_PAIRS(c, m, k, v)
            {
                if (rc2 != CLEW_OK) {
                    break;
                }
                if (is_scalar(k) && key_is(k, "policy")) {
                    rc2 = get_string(c, v, "policy", &pname);
                } else if (is_scalar(k) && key_is(k, "percent")) {
                    rc2 = get_double(c, v, "percent", 0, 100, &pct);
                } else {
                    rc2 = fail(c, k, "rate_allocation: unknown key");
                }
            }
            if (rc2 == CLEW_OK && (pname == NULL || pct < 0)) {
                rc2 = fail(c, m, "rate_allocation: needs policy and percent");
            }
            size_t j = 0;
            while (rc2 == CLEW_OK && j < p->n_subs && strcmp(p->subs[j].name, pname) != 0) {
                j++;
            }
            if (rc2 == CLEW_OK && j == p->n_subs) {
                rc2 = fail(c, m, "rate_allocation: '%.60s' is not a composite_sub_policy", pname);
            } else if (rc2 == CLEW_OK && seen[j]) {
                rc2 = fail(c, m, "rate_allocation: '%.60s' is listed twice", pname);
            } else if (rc2 == CLEW_OK) {
                seen[j] = true;
                p->alloc_pct[j] = pct;
                total += pct;
                listed++;
            }
            clew__free(pname);
        }
        if (rc2 == CLEW_OK && total > 100.0 + 1e-9) {
            rc2 =
                fail(c, alloc_node, "rate_allocation: percents add up to %g, more than 100", total);
        }
    }
    if (rc2 == CLEW_OK && listed < p->n_subs) {
        double share = (100.0 - total) / (double)(p->n_subs - listed);
        for (size_t i = 0; i < p->n_subs; i++) {
            if (!seen[i]) {
                p->alloc_pct[i] = share;
            }
        }
    }
    clew__free(seen);
    return rc2;
}

static clew_status parse_policy(pctx *c, const yaml_node_t *m, int depth, clew_tail_policy *p)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE) {
        return fail(c, m, "a policy must be a mapping with name and type");
    }
    const yaml_node_t *name = NULL, *type = NULL, *sec = NULL, *sec_key = NULL;
    FOR_PAIRS(c, m, k, v)
    {
        if (!is_scalar(k)) {
            return fail(c, k, "policy keys must be plain names");
        }
        if (key_is(k, "name")) {
            name = v;
        } else if (key_is(k, "type")) {
            type = v;
        } else {
            bool known = false;
            for (size_t i = 0; i < N_TYPES; i++) {
                known = known || key_is(k, TYPES[i].name);
            }
            if (!known) {
                return fail(c, k, "unknown policy key '%.60s'", sval(k));
            }
            if (sec != NULL) {
                return fail(c, k, "a policy has one settings section, found a second: '%.60s'",
                            sval(k));
            }
            sec = v;
            sec_key = k;
        }
    }
    if (name == NULL) {
        return fail(c, m, "policy without a name");
    }
    clew_status rc = get_string(c, name, "name", &p->name);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (p->name[0] == '\0' || strlen(p->name) > MAX_NAME) {
        return fail(c, name, "policy name must be 1 to %d characters", MAX_NAME);
    }
    if (type == NULL) {
        return fail(c, m, "policy '%s' has no type", p->name);
    }
    rc = want_scalar(c, type, "type");
    if (rc != CLEW_OK) {
        return rc;
    }
    size_t ti = 0;
    while (ti < N_TYPES && strcmp(TYPES[ti].name, sval(type)) != 0) {
        ti++;
    }
    if (ti == N_TYPES) {
        return fail(c, type,
                    "policy '%s': unknown type '%.60s' (known: always_sample, latency, "
                    "status_code, probabilistic, string_attribute, numeric_attribute, "
                    "boolean_attribute, span_count, trace_state, rate_limiting, and, composite, "
                    "drop)",
                    p->name, sval(type));
    }
    p->type = TYPES[ti].type;
    if (p->type == CLEW_TAIL_ALWAYS_SAMPLE) {
        if (sec != NULL) {
            return fail(c, sec_key, "policy '%s': always_sample takes no settings", p->name);
        }
        return CLEW_OK;
    }
    if (sec == NULL || !key_is(sec_key, TYPES[ti].name)) {
        return fail(c, sec_key != NULL ? sec_key : m, "policy '%s': type %s needs a '%s:' section",
                    p->name, TYPES[ti].name, TYPES[ti].name);
    }
    return parse_section(c, p, sec, depth);
}

static clew_status parse_policies(pctx *c, const yaml_node_t *seq, const char *key, int depth,
                                  clew_tail_policy **out, size_t *n_out)
{
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE) {
        return fail(c, seq, "%s: expected a list of policies", key);
    }
    if (depth > CLEW_TAIL_MAX_DEPTH) {
        return fail(c, seq, "%s: policies nested more than %d deep", key, CLEW_TAIL_MAX_DEPTH);
    }
    if (*out != NULL) {
        return fail(c, seq, "%s: given twice", key);
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0) {
        return fail(c, seq, "%s: the list is empty", key);
    }
    if (c->n_policies + n > CLEW_TAIL_MAX_POLICIES) {
        return fail(c, seq, "%s: more than %d policies in all", key, CLEW_TAIL_MAX_POLICIES);
    }
    c->n_policies += n;
    *out = clew__calloc(n, sizeof(clew_tail_policy));
    if (*out == NULL) {
        return fail(c, seq, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        /* count it first so that a failure frees what it half-built */
        *n_out = i + 1;
        yaml_node_t *pn = node(c, seq->data.sequence.items.start[i]);
        clew_status rc = parse_policy(c, pn, depth, &(*out)[i]);
        if (rc != CLEW_OK) {
            return rc;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp((*out)[j].name, (*out)[i].name) == 0) {
                return fail(c, pn, "policy name '%s' is used twice", (*out)[i].name);
            }
        }
    }
    return CLEW_OK;
}

static clew_status parse_section_root(pctx *c, const yaml_node_t *sec, clew_tail_config *cfg)
{
    if (sec == NULL || sec->type != YAML_MAPPING_NODE) {
        return fail(c, sec, "tail_sampling: expected a mapping (decision_wait, policies, ...)");
    }
    const yaml_node_t *policies = NULL;
    FOR_PAIRS(c, sec, k, v)
    {
        clew_status rc;
        if (!is_scalar(k)) {
            return fail(c, k, "tail_sampling: keys must be plain names");
        }
        const char *kn = sval(k);
        if (key_is(k, "decision_wait")) {
            rc = get_duration(c, v, kn, &cfg->decision_wait_ns);
        } else if (key_is(k, "decision_grace")) {
            rc = get_duration(c, v, kn, &cfg->decision_grace_ns);
        } else if (key_is(k, "num_traces")) {
            rc = get_uint(c, v, kn, 1, MAX_COUNT, &cfg->num_traces);
        } else if (key_is(k, "expected_new_traces_per_sec")) {
            rc = get_uint(c, v, kn, 0, MAX_COUNT, &cfg->expected_new_traces_per_sec);
        } else if (key_is(k, "max_bytes")) {
            rc = get_size(c, v, kn, &cfg->max_bytes);
        } else if (key_is(k, "max_spans_per_trace")) {
            rc = get_uint(c, v, kn, 1, MAX_COUNT, &cfg->max_spans_per_trace);
        } else if (key_is(k, "decision_cache")) {
            if (v == NULL || v->type != YAML_MAPPING_NODE) {
                return fail(c, v, "decision_cache: expected a mapping");
            }
            rc = CLEW_OK;
            FOR_PAIRS(c, v, k2, v2)
            {
                if (rc != CLEW_OK) {
                    break;
                }
                if (is_scalar(k2) && key_is(k2, "sampled_cache_size")) {
                    rc = get_uint(c, v2, "sampled_cache_size", 0, MAX_COUNT,
                                  &cfg->sampled_cache_size);
                } else if (is_scalar(k2) && key_is(k2, "non_sampled_cache_size")) {
                    rc = get_uint(c, v2, "non_sampled_cache_size", 0, MAX_COUNT,
                                  &cfg->non_sampled_cache_size);
                } else {
                    rc = fail(c, k2,
                              "decision_cache: unknown key (sampled_cache_size, "
                              "non_sampled_cache_size)");
                }
            }
        } else if (key_is(k, "policies")) {
            policies = v;
            rc = parse_policies(c, v, kn, 1, &cfg->policies, &cfg->n_policies);
        } else {
            rc = fail(c, k, "tail_sampling: unknown key '%.60s'", kn);
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    if (policies == NULL) {
        return fail(c, sec, "tail_sampling: no policies (add at least one under policies:)");
    }
    clew_config_error ferr;
    memset(&ferr, 0, sizeof(ferr));
    clew_status rc = clew__tail_config_finish(cfg, &ferr);
    if (rc != CLEW_OK) {
        return fail(c, policies, "%s", ferr.msg);
    }
    return CLEW_OK;
}

clew_status clew__tail_config_load_buffer(const char *name, const char *data, size_t len,
                                          clew_tail_config **out, clew_config_error *err)
{
    *out = NULL;
    memset(err, 0, sizeof(*err));
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
        return CLEW_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err->msg, sizeof(err->msg), "%s:%zu: %s", name,
                 (size_t)parser.problem_mark.line + 1,
                 parser.problem != NULL ? parser.problem : "not valid YAML");
        yaml_parser_delete(&parser);
        return CLEW_EPARSE;
    }
    yaml_parser_delete(&parser);
    pctx c = {.doc = &doc, .file = name, .err = err};
    clew_status rc = CLEW_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    const yaml_node_t *sec = NULL;
    if (root != NULL && root->type == YAML_MAPPING_NODE) {
        FOR_PAIRS(&c, root, k, v)
        {
            if (is_scalar(k) && key_is(k, "tail_sampling")) {
                if (sec != NULL) {
                    rc = fail(&c, k, "tail_sampling: given twice");
                }
                sec = v;
            }
        }
    }
    if (rc == CLEW_OK && sec != NULL) {
        clew_tail_config *cfg = clew__calloc(1, sizeof(*cfg));
        if (cfg == NULL) {
            rc = fail(&c, sec, "out of memory");
        } else {
            clew__tail_config_defaults(cfg);
            rc = parse_section_root(&c, sec, cfg);
            if (rc == CLEW_OK && cfg->decision_grace_ns > cfg->decision_wait_ns) {
                /* grace longer than the wait never releases early: harmless, but say so
                 * by clamping rather than refusing (the Collector has no grace) */
                cfg->decision_grace_ns = cfg->decision_wait_ns;
            }
            if (rc != CLEW_OK) {
                clew__tail_config_free(cfg);
            } else {
                *out = cfg;
            }
        }
    }
    yaml_document_delete(&doc);
    return rc;
}

/* ---- the --sampling preset ---- */

static clew_status preset_fail(clew_config_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static clew_status preset_fail(clew_config_error *err, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(err->msg, sizeof(err->msg), "--sampling: %s (e.g. errors+slow:500ms+10%%, or off)",
             why);
    return CLEW_EINVAL;
}

clew_status clew__tail_preset_parse(const char *s, clew_tail_config **out, clew_config_error *err)
{
    *out = NULL;
    memset(err, 0, sizeof(*err));
    if (strcmp(s, "off") == 0) {
        return CLEW_OK;
    }
    if (s[0] == '\0') {
        return preset_fail(err, "empty");
    }
    clew_tail_config *cfg = clew__calloc(1, sizeof(*cfg));
    if (cfg != NULL) {
        clew__tail_config_defaults(cfg);
        cfg->policies = clew__calloc(4, sizeof(clew_tail_policy));
    }
    if (cfg == NULL || cfg->policies == NULL) {
        clew__free(cfg);
        snprintf(err->msg, sizeof(err->msg), "--sampling: out of memory");
        return CLEW_ENOMEM;
    }
    clew_status rc = CLEW_OK;
    bool seen[4] = {false, false, false, false};
    const char *p = s;
    while (rc == CLEW_OK) {
        const char *end = strchr(p, '+');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        int kind;
        clew_tail_policy pol;
        memset(&pol, 0, sizeof(pol));
        if (n == 6 && memcmp(p, "errors", 6) == 0) {
            kind = 0;
            pol.type = CLEW_TAIL_STATUS_CODE;
            pol.status_mask = 1u << CLEW_STATUS_ERROR;
            pol.name = clew__strdup("errors");
        } else if (n > 5 && memcmp(p, "slow:", 5) == 0) {
            kind = 1;
            pol.type = CLEW_TAIL_LATENCY;
            if (clew__duration_parse(p + 5, n - 5, 0, &pol.threshold_ns) != CLEW_OK ||
                pol.threshold_ns == 0) {
                rc = preset_fail(err, "'%.*s' is not a duration above 0", (int)(n - 5), p + 5);
                break;
            }
            pol.name = clew__strdup("slow");
        } else if (n > 1 && p[n - 1] == '%') {
            kind = 2;
            pol.type = CLEW_TAIL_PROBABILISTIC;
            char num[32];
            char *e;
            if (n - 1 >= sizeof(num)) {
                rc = preset_fail(err, "'%.*s' is not a percentage", (int)n, p);
                break;
            }
            memcpy(num, p, n - 1);
            num[n - 1] = '\0';
            errno = 0;
            pol.percentage = strtod(num, &e);
            if (num[0] < '0' || num[0] > '9' || *e != '\0' || errno != 0 ||
                !(pol.percentage > 0.0 && pol.percentage <= 100.0)) {
                rc = preset_fail(err, "'%.*s' is not a percentage in (0, 100]", (int)n, p);
                break;
            }
            pol.name = clew__strdup("probabilistic");
        } else if (n == 3 && memcmp(p, "all", 3) == 0) {
            kind = 3;
            pol.type = CLEW_TAIL_ALWAYS_SAMPLE;
            pol.name = clew__strdup("all");
        } else {
            rc = preset_fail(err, "unknown part '%.*s'", (int)(n > 60 ? 60 : n), p);
            break;
        }
        if (pol.name == NULL) {
            snprintf(err->msg, sizeof(err->msg), "--sampling: out of memory");
            rc = CLEW_ENOMEM;
            break;
        }
        if (seen[kind]) {
            clew__free(pol.name);
            rc = preset_fail(err, "'%.*s' given twice", (int)(n > 60 ? 60 : n), p);
            break;
        }
        seen[kind] = true;
        cfg->policies[cfg->n_policies++] = pol;
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    if (rc == CLEW_OK) {
        rc = clew__tail_config_finish(cfg, err);
    }
    if (rc != CLEW_OK) {
        clew__tail_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return CLEW_OK;
}
