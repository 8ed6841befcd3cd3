/*
 * src/sdk/env.c - clew_provider_create_from_env: the OTEL_* environment
 * variables (wire.md §3.7) applied over a base configuration.
 *
 * Rules: an empty variable is unset; booleans are true only for a
 * case-insensitive "true"; enums are case-insensitive; a bad value is reported
 * once through the log callback and ignored (the default or the base config
 * stays). OTEL_RESOURCE_ATTRIBUTES with a bad percent escape or a member without
 * "=" is discarded whole, as the resource SDK spec requires.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "sdk/sdk_internal.h"

bool clew__percent_decode(const char *s, size_t len, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= len) {
            return false;
        }
        int hi = isxdigit((unsigned char)s[i + 1]) ? s[i + 1] : -1;
        int lo = isxdigit((unsigned char)s[i + 2]) ? s[i + 2] : -1;
        if (hi < 0 || lo < 0) {
            return false;
        }
        hi = hi <= '9' ? hi - '0' : (tolower(hi) - 'a' + 10);
        lo = lo <= '9' ? lo - '0' : (tolower(lo) - 'a' + 10);
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    *out_len = o;
    return true;
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b)) {
        (*b)++;
    }
    while (*e > *b && isspace((unsigned char)(*e)[-1])) {
        (*e)--;
    }
}

/* Parses (and, with fn NULL, only validates) the list. */
static clew_status kv_walk(const char *s, clew__kv_fn fn, void *ud)
{
    size_t len = strlen(s);
    char *buf = clew__malloc(len + 1);
    if (buf == NULL) {
        return CLEW_ENOMEM;
    }
    clew_status rc = CLEW_OK;
    const char *p = s, *end = s + len;
    while (p < end && rc == CLEW_OK) {
        const char *m_end = memchr(p, ',', (size_t)(end - p));
        if (m_end == NULL) {
            m_end = end;
        }
        const char *kb = p, *ke = memchr(p, '=', (size_t)(m_end - p));
        if (ke == NULL) {
            const char *b = p, *e = m_end;
            trim(&b, &e);
            if (b != e) {
                rc = CLEW_EPARSE; /* a member without "=" */
            }
            p = m_end + 1;
            continue;
        }
        const char *vb = ke + 1, *ve = m_end;
        trim(&kb, &ke);
        trim(&vb, &ve);
        if (kb == ke) {
            rc = CLEW_EPARSE;
            break;
        }
        size_t klen, vlen;
        if (!clew__percent_decode(kb, (size_t)(ke - kb), buf, &klen)) {
            rc = CLEW_EPARSE;
            break;
        }
        buf[klen] = '\0';
        if (!clew__percent_decode(vb, (size_t)(ve - vb), buf + klen + 1, &vlen)) {
            rc = CLEW_EPARSE;
            break;
        }
        buf[klen + 1 + vlen] = '\0';
        if (memchr(buf, '\0', klen) != NULL || memchr(buf + klen + 1, '\0', vlen) != NULL) {
            rc = CLEW_EPARSE; /* %00 cannot be carried in a C string */
            break;
        }
        if (fn != NULL) {
            rc = fn(ud, buf, buf + klen + 1);
        }
        p = m_end + 1;
    }
    clew__free(buf);
    return rc;
}

clew_status clew__parse_kv_list(const char *s, clew__kv_fn fn, void *ud)
{
    if (s == NULL) {
        return CLEW_EINVAL;
    }
    clew_status rc = kv_walk(s, NULL, NULL);
    if (rc != CLEW_OK) {
        return rc;
    }
    return kv_walk(s, fn, ud);
}

/* ---- helpers ---- */

typedef struct env_ctx {
    const clew_provider_config *base;
    clew_provider_config cfg;
    clew_attr *attrs;
    size_t n_attrs, cap_attrs;
    char **strings; /* owned copies backing attrs */
    size_t n_strings, cap_strings;
} env_ctx;

static void env_log(env_ctx *c, clew_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void env_log(env_ctx *c, clew_log_level lvl, const char *fmt, ...)
{
    if (c->cfg.log == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->cfg.log(c->cfg.log_ud, lvl, msg);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

/* The TRACES_ variant wins over the general one. */
static const char *env2(const char *traces_name, const char *general_name, const char **which)
{
    const char *v = env(traces_name);
    *which = traces_name;
    if (v == NULL) {
        v = env(general_name);
        *which = general_name;
    }
    return v;
}

static bool env_u32(env_ctx *c, const char *name, uint32_t *out)
{
    const char *v = env(name);
    if (v == NULL) {
        return false;
    }
    const char *b = v, *e = v + strlen(v);
    trim(&b, &e);
    bool ok = b < e && (size_t)(e - b) <= 10;
    uint64_t x = 0;
    for (const char *p = b; p < e && ok; p++) {
        ok = *p >= '0' && *p <= '9';
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (!ok || x > UINT32_MAX) {
        env_log(c, CLEW_LOG_WARN, "clew: ignoring %s=\"%s\": not a non-negative integer", name, v);
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

static char *keep(env_ctx *c, const char *s)
{
    if (c->n_strings == c->cap_strings) {
        size_t ncap = c->cap_strings ? c->cap_strings * 2 : 16;
        char **n = clew__realloc(c->strings, ncap * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        c->strings = n;
        c->cap_strings = ncap;
    }
    char *d = clew__strdup(s);
    if (d != NULL) {
        c->strings[c->n_strings++] = d;
    }
    return d;
}

static clew_status add_attr(void *ud, const char *key, const char *value)
{
    env_ctx *c = ud;
    if (c->n_attrs == c->cap_attrs) {
        size_t ncap = c->cap_attrs ? c->cap_attrs * 2 : 16;
        clew_attr *n = clew__realloc(c->attrs, ncap * sizeof(*n));
        if (n == NULL) {
            return CLEW_ENOMEM;
        }
        c->attrs = n;
        c->cap_attrs = ncap;
    }
    char *k = keep(c, key);
    char *v = keep(c, value);
    if (k == NULL || v == NULL) {
        return CLEW_ENOMEM;
    }
    c->attrs[c->n_attrs++] = clew_attr_str(k, v);
    return CLEW_OK;
}

static void env_ctx_free(env_ctx *c)
{
    for (size_t i = 0; i < c->n_strings; i++) {
        clew__free(c->strings[i]);
    }
    clew__free(c->strings);
    clew__free(c->attrs);
}

static clew_status env_sampler(env_ctx *c)
{
    const char *name = env("OTEL_TRACES_SAMPLER");
    const char *arg = env("OTEL_TRACES_SAMPLER_ARG");
    if (name == NULL) {
        return CLEW_OK;
    }
    double ratio = 1.0;
    bool uses_arg =
        strcasecmp(name, "traceidratio") == 0 || strcasecmp(name, "parentbased_traceidratio") == 0;
    if (uses_arg && arg != NULL) {
        char *end = NULL;
        errno = 0;
        double r = strtod(arg, &end);
        while (end != NULL && isspace((unsigned char)*end)) {
            end++;
        }
        if (errno != 0 || end == arg || *end != '\0' || !(r >= 0.0 && r <= 1.0)) {
            env_log(c, CLEW_LOG_WARN,
                    "clew: ignoring OTEL_TRACES_SAMPLER_ARG=\"%s\": not a ratio in [0, 1]", arg);
        } else {
            ratio = r;
        }
    }
    clew_sampler *s = NULL;
    clew_status rc;
    if (strcasecmp(name, "always_on") == 0) {
        rc = clew_sampler_always_on(&s);
    } else if (strcasecmp(name, "always_off") == 0) {
        rc = clew_sampler_always_off(&s);
    } else if (strcasecmp(name, "traceidratio") == 0) {
        rc = clew_sampler_traceidratio(ratio, &s);
    } else if (strcasecmp(name, "parentbased_always_on") == 0) {
        rc = clew_sampler_parentbased(NULL, NULL, NULL, NULL, NULL, &s);
    } else if (strcasecmp(name, "parentbased_always_off") == 0) {
        clew_sampler *off;
        rc = clew_sampler_always_off(&off);
        if (rc == CLEW_OK) {
            rc = clew_sampler_parentbased(off, NULL, NULL, NULL, NULL, &s);
        }
    } else if (strcasecmp(name, "parentbased_traceidratio") == 0) {
        clew_sampler *r;
        rc = clew_sampler_traceidratio(ratio, &r);
        if (rc == CLEW_OK) {
            rc = clew_sampler_parentbased(r, NULL, NULL, NULL, NULL, &s);
        }
    } else {
        env_log(c, CLEW_LOG_WARN,
                "clew: ignoring OTEL_TRACES_SAMPLER=\"%s\": unknown or unsupported sampler", name);
        return CLEW_OK;
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    clew_sampler_destroy(c->cfg.sampler);
    c->cfg.sampler = s;
    return CLEW_OK;
}

static clew_status env_otlp(env_ctx *c, clew_exporter **out)
{
    clew_otlp_config oc;
    clew_otlp_config_init(&oc);
    const char *which;
    char url[2048];
    /* the protocol first: it decides the default endpoint and whether a path is appended */
    const char *v =
        env2("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL", &which);
    if (v != NULL) {
        if (strcasecmp(v, "http/protobuf") == 0) {
            oc.protocol = CLEW_OTLP_HTTP_PROTOBUF;
        } else if (strcasecmp(v, "http/json") == 0) {
            oc.protocol = CLEW_OTLP_HTTP_JSON;
        } else if (strcasecmp(v, "grpc") == 0) {
            oc.protocol = CLEW_OTLP_GRPC;
            oc.url = "http://localhost:4317";
        } else {
            env_log(c, CLEW_LOG_WARN,
                    "clew: ignoring %s=\"%s\": only http/protobuf, http/json and grpc are "
                    "supported",
                    which, v);
        }
    }
    bool grpc = oc.protocol == CLEW_OTLP_GRPC;
    v = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if (v != NULL) {
        /* used as is; an empty path becomes "/" (gRPC ignores the path) */
        const char *scheme_end = strstr(v, "://");
        bool has_path = scheme_end != NULL && strchr(scheme_end + 3, '/') != NULL;
        snprintf(url, sizeof(url), "%s%s", v, has_path ? "" : "/");
        oc.url = url;
    } else if ((v = env("OTEL_EXPORTER_OTLP_ENDPOINT")) != NULL) {
        size_t n = strlen(v);
        snprintf(url, sizeof(url), "%s%s%s", v, n > 0 && v[n - 1] == '/' ? "" : "/",
                 grpc ? "" : "v1/traces");
        oc.url = url;
    }
    if (strncmp(oc.url, "http://", 7) != 0 && strncmp(oc.url, "https://", 8) != 0) {
        env_log(c, CLEW_LOG_WARN, "clew: ignoring OTLP endpoint \"%s\": not an http(s) URL",
                oc.url);
        oc.url = grpc ? "http://localhost:4317" : "http://localhost:4318/v1/traces";
    }
    v = env2("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", &which);
    if (v != NULL) {
        clew_status rc = clew__parse_kv_list(v, NULL, NULL);
        if (rc == CLEW_OK) {
            oc.headers = v;
        } else {
            env_log(c, CLEW_LOG_WARN, "clew: ignoring %s: malformed k=v list", which);
        }
    }
    uint32_t t;
    if (env_u32(c, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", &t) ||
        env_u32(c, "OTEL_EXPORTER_OTLP_TIMEOUT", &t)) {
        if (t > 0) {
            oc.timeout_ms = t;
        }
    }
    v = env2("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION", &which);
    if (v != NULL && strcasecmp(v, "gzip") == 0) {
        oc.compression = CLEW_OTLP_COMPRESSION_GZIP;
    } else if (v != NULL && strcasecmp(v, "none") != 0) {
        env_log(c, CLEW_LOG_WARN,
                "clew: %s=\"%s\" is not supported (gzip or none); sending uncompressed", which, v);
    }
    oc.ca_file =
        env2("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE", &which);
    oc.client_key_file =
        env2("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY", &which);
    oc.client_cert_file = env2("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                               "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &which);
    /* the per-export deadline of the batch processor follows the OTLP timeout
     * unless OTEL_BSP_EXPORT_TIMEOUT says otherwise */
    if (c->cfg.batch.export_timeout_ms == 0) {
        c->cfg.batch.export_timeout_ms = oc.timeout_ms;
    }
    return clew_exporter_otlp_http(&oc, out);
}

static clew_status env_exporter(env_ctx *c)
{
    const char *v = env("OTEL_TRACES_EXPORTER");
    if (v == NULL && c->cfg.exporter != NULL) {
        return CLEW_OK; /* the base config chose one */
    }
    char first[32] = "otlp";
    if (v != NULL) {
        const char *b = v, *e = strchr(v, ',');
        if (e == NULL) {
            e = v + strlen(v);
        } else {
            env_log(c, CLEW_LOG_WARN,
                    "clew: OTEL_TRACES_EXPORTER=\"%s\": only the first exporter is used", v);
        }
        trim(&b, &e);
        snprintf(first, sizeof(first), "%.*s", (int)(e - b), b);
    }
    clew_exporter *x = NULL;
    clew_status rc = CLEW_OK;
    if (strcasecmp(first, "otlp") == 0) {
        rc = env_otlp(c, &x);
    } else if (strcasecmp(first, "console") == 0) {
        rc = clew_exporter_console(stdout, &x);
    } else if (strcasecmp(first, "none") == 0) {
        x = NULL;
    } else {
        env_log(c, CLEW_LOG_WARN, "clew: ignoring OTEL_TRACES_EXPORTER=\"%s\": unknown exporter",
                v);
        if (c->cfg.exporter != NULL) {
            return CLEW_OK;
        }
        rc = env_otlp(c, &x);
    }
    if (rc != CLEW_OK) {
        return rc;
    }
    clew_exporter_destroy(c->cfg.exporter);
    c->cfg.exporter = x;
    return CLEW_OK;
}

clew_status clew_provider_create_from_env(const clew_provider_config *base, clew_provider **out)
{
    env_ctx c;
    memset(&c, 0, sizeof(c));
    c.base = base;
    if (base != NULL) {
        c.cfg = *base;
    } else {
        clew_provider_config_init(&c.cfg);
    }
    if (out == NULL) {
        clew_sampler_destroy(c.cfg.sampler);
        clew_exporter_destroy(c.cfg.exporter);
        return CLEW_EINVAL;
    }
    clew_status rc = CLEW_OK;
    const char *v = env("OTEL_SDK_DISABLED");
    if (v != NULL && strcasecmp(v, "true") == 0) {
        c.cfg.disabled = true;
        clew_exporter_destroy(c.cfg.exporter);
        c.cfg.exporter = NULL;
        return clew_provider_create(&c.cfg, out);
    }
    for (size_t i = 0; base != NULL && i < base->n_resource_attrs && rc == CLEW_OK; i++) {
        if (c.n_attrs == c.cap_attrs) {
            size_t ncap = c.cap_attrs ? c.cap_attrs * 2 : 16;
            clew_attr *n = clew__realloc(c.attrs, ncap * sizeof(*n));
            if (n == NULL) {
                rc = CLEW_ENOMEM;
                break;
            }
            c.attrs = n;
            c.cap_attrs = ncap;
        }
        c.attrs[c.n_attrs++] = base->resource_attrs[i];
    }
    v = env("OTEL_RESOURCE_ATTRIBUTES");
    if (rc == CLEW_OK && v != NULL) {
        rc = clew__parse_kv_list(v, add_attr, &c);
        if (rc == CLEW_EPARSE) {
            env_log(&c, CLEW_LOG_WARN,
                    "clew: ignoring OTEL_RESOURCE_ATTRIBUTES: malformed list or percent escape");
            rc = CLEW_OK;
        }
    }
    c.cfg.resource_attrs = c.attrs;
    c.cfg.n_resource_attrs = c.n_attrs;
    v = env("OTEL_SERVICE_NAME");
    if (v != NULL) {
        c.cfg.service_name = v;
    }
    if (rc == CLEW_OK) {
        rc = env_sampler(&c);
    }
    uint32_t u;
    if (env_u32(&c, "OTEL_BSP_SCHEDULE_DELAY", &u)) {
        c.cfg.batch.schedule_delay_ms = u;
    }
    if (env_u32(&c, "OTEL_BSP_EXPORT_TIMEOUT", &u)) {
        c.cfg.batch.export_timeout_ms = u;
    }
    if (env_u32(&c, "OTEL_BSP_MAX_QUEUE_SIZE", &u)) {
        c.cfg.batch.max_queue_size = u;
    }
    if (env_u32(&c, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &u)) {
        c.cfg.batch.max_export_batch_size = u;
    }
    /* general attribute limits first, then the span-specific ones override */
    if (env_u32(&c, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", &u)) {
        c.cfg.limits.attribute_value_length = u;
    }
    if (env_u32(&c, "OTEL_ATTRIBUTE_COUNT_LIMIT", &u)) {
        c.cfg.limits.attribute_count = u;
    }
    if (env_u32(&c, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", &u)) {
        c.cfg.limits.attribute_value_length = u;
    }
    if (env_u32(&c, "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", &u)) {
        c.cfg.limits.attribute_count = u;
    }
    if (env_u32(&c, "OTEL_SPAN_EVENT_COUNT_LIMIT", &u)) {
        c.cfg.limits.event_count = u;
    }
    if (env_u32(&c, "OTEL_SPAN_LINK_COUNT_LIMIT", &u)) {
        c.cfg.limits.link_count = u;
    }
    if (env_u32(&c, "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", &u)) {
        c.cfg.limits.event_attribute_count = u;
    }
    if (env_u32(&c, "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", &u)) {
        c.cfg.limits.link_attribute_count = u;
    }
    if (rc == CLEW_OK) {
        rc = env_exporter(&c);
    }
    if (rc != CLEW_OK) {
        clew_sampler_destroy(c.cfg.sampler);
        clew_exporter_destroy(c.cfg.exporter);
        env_ctx_free(&c);
        return rc;
    }
    clew_provider *p = NULL;
    rc = clew_provider_create(&c.cfg, &p);
    if (rc == CLEW_OK && (v = env("OTEL_PROPAGATORS")) != NULL) {
        clew_propagator *prop = NULL;
        clew_str unknown = {NULL, 0};
        clew_status prc = clew_propagator_create(v, &prop, &unknown);
        if (prc == CLEW_EUNSUPPORTED) {
            env_log(&c, CLEW_LOG_WARN, "clew: OTEL_PROPAGATORS: ignoring unknown \"%.*s\"",
                    (int)unknown.len, unknown.ptr);
            prc = CLEW_OK;
        }
        if (prc == CLEW_OK) {
            clew_propagator_destroy(p->propagator);
            p->propagator = prop;
        }
    }
    env_ctx_free(&c);
    if (rc == CLEW_OK) {
        *out = p;
    }
    return rc;
}
