/*
 * src/query/api.c - routing and handlers of the Jaeger v1 and v3 query APIs; see
 * api.h. Every handler reads the store, renders JSON into resp->body and sets the
 * status; bad requests get a 4xx with a message that names the parameter and
 * echoes (a bounded prefix of) the bad value.
 */
#include "query/api.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec/otlp.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/clock.h"
#include "common/try.h"
#include "query/jaeger_json.h"
#include "query/params.h"

/* A response larger than this is refused with 500 rather than grown without bound. */
#define API_MAX_BODY         (128u * 1024u * 1024u)
#define SEARCH_DEFAULT_LIMIT 20u
#define SEARCH_MAX_LIMIT     1500u
/* How much of a bad value an error message quotes. */
#define ECHO_MAX 80u

void clew__api_response_init(clew_api_response *r)
{
    r->status = 200;
    r->content_type = "application/json";
    clew__buf_init(&r->body, API_MAX_BODY);
}

void clew__api_response_deinit(clew_api_response *r)
{
    clew__buf_deinit(&r->body);
}

typedef enum api_flavor { FLAVOR_V1, FLAVOR_V3 } api_flavor;

/* ---- error responses ---- */

/* Writes the error body of either API. `msg` is any bytes (escaped here). */
static void respond_error(clew_api_response *resp, api_flavor fl, int code, const char *msg,
                          size_t len)
{
    clew_status rc;
    clew__buf_reset(&resp->body);
    resp->status = code;
    resp->content_type = "application/json";
    if (fl == FLAVOR_V3) {
        rc = clew__buf_printf(&resp->body, "{\"error\":{\"httpCode\":%d,\"message\":", code);
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(&resp->body, msg, len);
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_puts(&resp->body, "}}");
        }
    } else {
        rc = clew__buf_printf(&resp->body,
                              "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{"
                              "\"code\":%d,\"msg\":",
                              code);
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(&resp->body, msg, len);
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_puts(&resp->body, "}]}");
        }
    }
    if (rc != CLEW_OK) {
        /* only ENOMEM can fail a few hundred bytes: send the status with an empty body
         * rather than half a JSON object */
        clew__buf_reset(&resp->body);
    }
}

static void respond_errorf(clew_api_response *resp, api_flavor fl, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void respond_errorf(clew_api_response *resp, api_flavor fl, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    respond_error(resp, fl, code, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/* 400 naming the parameter, quoting the value it got (bounded, any bytes) and why. */
static void respond_bad_param(clew_api_response *resp, api_flavor fl, const char *param,
                              clew_str value, const char *why)
{
    clew_buf m;
    clew__buf_init(&m, 1024);
    size_t n = value.len > ECHO_MAX ? ECHO_MAX : value.len;
    if (clew__buf_printf(&m, "invalid parameter %s=\"", param) == CLEW_OK &&
        clew__buf_append(&m, value.ptr, n) == CLEW_OK &&
        clew__buf_puts(&m, n < value.len ? "...\": " : "\": ") == CLEW_OK &&
        clew__buf_puts(&m, why) == CLEW_OK) {
        respond_error(resp, fl, 400, m.data, m.len);
    } else {
        respond_errorf(resp, fl, 400, "invalid parameter %s: %s", param, why);
    }
    clew__buf_deinit(&m);
}

/* Maps an internal failure to 500 (or the ETOOBIG message) after a handler failed. */
static void respond_internal(clew_api_response *resp, api_flavor fl, clew_status rc)
{
    if (rc == CLEW_ETOOBIG) {
        respond_errorf(resp, fl, 500,
                       "response larger than %u MiB; narrow the query or lower the limit",
                       API_MAX_BODY / (1024u * 1024u));
    } else {
        respond_errorf(resp, fl, 500, "internal error: %s", clew_strerror(rc));
    }
}

/* ---- parameter parsing ---- */

static bool str_is(clew_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static bool parse_u64(clew_str s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c < '0' || c > '9' || v > (UINT64_MAX - (uint64_t)(c - '0')) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return true;
}

/* "" = any kind. False for an unknown name. */
static bool parse_kind(clew_str s, clew_span_kind *out)
{
    static const clew_span_kind kinds[] = {CLEW_KIND_SERVER, CLEW_KIND_CLIENT, CLEW_KIND_PRODUCER,
                                           CLEW_KIND_CONSUMER, CLEW_KIND_INTERNAL};
    if (s.len == 0) {
        *out = CLEW_KIND_UNSPECIFIED;
        return true;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (str_is(s, clew__kind_name(kinds[i]))) {
            *out = kinds[i];
            return true;
        }
    }
    return false;
}

/* Jaeger's spanKind text: "" for unspecified. */
static const char *kind_text(clew_span_kind k)
{
    return k == CLEW_KIND_UNSPECIFIED ? "" : clew__kind_name(k);
}

/* Parses the query string; on failure answers 400 and returns false. */
static bool parse_query(const clew_api_request *req, clew_arena *a, clew_query_params *p,
                        clew_api_response *resp, api_flavor fl)
{
    clew_error err = {{0}, 0};
    clew_status rc = clew__query_parse(req->query, a, p, &err);
    if (rc == CLEW_ENOMEM) {
        respond_internal(resp, fl, rc);
        return false;
    }
    if (rc != CLEW_OK) {
        respond_errorf(resp, fl, 400, "invalid query string: %s", err.msg);
        return false;
    }
    return true;
}

static bool add_tag(clew_search_query *q, clew_str key, clew_str value, clew_api_response *resp,
                    api_flavor fl, const char *param)
{
    if (q->n_tags == CLEW_SEARCH_MAX_TAGS) {
        respond_errorf(resp, fl, 400, "invalid parameter %s: more than %d attribute conditions",
                       param, CLEW_SEARCH_MAX_TAGS);
        return false;
    }
    q->tags[q->n_tags].key = key;
    q->tags[q->n_tags].value = value;
    q->n_tags++;
    return true;
}

/* tags={"k":"v",...}: a JSON object of strings (Jaeger UI's form; v3's
 * query.attributes too). */
static bool parse_tags_json(clew_str v, clew_search_query *q, clew_arena *a,
                            clew_api_response *resp, api_flavor fl, const char *param)
{
    json_error_t jerr;
    json_t *root = json_loadb(v.ptr, v.len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        respond_bad_param(resp, fl, param, v,
                          root == NULL ? "not valid JSON; expected an object such as "
                                         "{\"http.status_code\":\"500\"}"
                                       : "expected a JSON object of strings such as "
                                         "{\"http.status_code\":\"500\"}");
        json_decref(root);
        return false;
    }
    const char *key;
    json_t *val;
    bool ok = true;
    json_object_foreach(root, key, val)
    {
        if (!json_is_string(val)) {
            respond_bad_param(resp, fl, param, v,
                              "every value must be a string, e.g. {\"error\":\"true\"}");
            ok = false;
            break;
        }
        /* copy out of jansson's memory, which goes away with json_decref */
        clew_str k = clew__arena_strdup(a, key, strlen(key));
        clew_str s = clew__arena_strdup(a, json_string_value(val), json_string_length(val));
        if (k.ptr == NULL || s.ptr == NULL) {
            respond_internal(resp, fl, CLEW_ENOMEM);
            ok = false;
            break;
        }
        if (!add_tag(q, k, s, resp, fl, param)) {
            ok = false;
            break;
        }
    }
    json_decref(root);
    return ok;
}

static bool parse_duration_param(const clew_query_params *p, const char *name, uint64_t *out,
                                 bool *present, clew_api_response *resp, api_flavor fl)
{
    const clew_str *v = clew__query_get(p, name);
    *present = false;
    if (v == NULL || v->len == 0) {
        return true;
    }
    uint64_t ns;
    if (clew__duration_parse(v->ptr, v->len, 0, &ns) != CLEW_OK) {
        respond_bad_param(resp, fl, name, *v,
                          "expected a duration with a unit, such as 500us, 100ms, 1.2s or 1h");
        return false;
    }
    *out = ns;
    *present = true;
    return true;
}

/* start/end are µs since the epoch; returned in ns. */
static bool parse_time_param(const clew_query_params *p, const char *name, uint64_t *out_ns,
                             bool *present, clew_api_response *resp)
{
    const clew_str *v = clew__query_get(p, name);
    uint64_t us;
    *present = false;
    if (v == NULL || v->len == 0) {
        return true;
    }
    if (!parse_u64(*v, &us) || us > UINT64_MAX / 1000) {
        respond_bad_param(resp, FLAVOR_V1, name, *v,
                          "expected microseconds since the Unix epoch, e.g. 1700000000000000");
        return false;
    }
    *out_ns = us * 1000;
    *present = true;
    return true;
}

/* A v1 tag filter (tags={json} or tag=key:value), if `it` is one; false after
 * answering 400. */
static bool v1_tag_param(const clew_query_param *it, clew_search_query *q, clew_arena *a,
                         clew_api_response *resp)
{
    if (it->value.len == 0) {
        return true;
    }
    if (str_is(it->key, "tags")) {
        return parse_tags_json(it->value, q, a, resp, FLAVOR_V1, "tags");
    }
    if (!str_is(it->key, "tag")) {
        return true;
    }
    const char *colon = memchr(it->value.ptr, ':', it->value.len);
    if (colon == NULL || colon == it->value.ptr) {
        respond_bad_param(resp, FLAVOR_V1, "tag", it->value,
                          "expected key:value, e.g. tag=http.method:GET");
        return false;
    }
    size_t kl = (size_t)(colon - it->value.ptr);
    clew_str key = {it->value.ptr, kl};
    clew_str val = {colon + 1, it->value.len - kl - 1};
    return add_tag(q, key, val, resp, FLAVOR_V1, "tag");
}

/* ---- v3 search parameters ---- */

/* Days from 1970-01-01 to a proleptic Gregorian date (civil calendar arithmetic
 * on 400-year eras, so no table of years is needed). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool take_digits(clew_str s, size_t *pos, size_t n, int *out)
{
    int v = 0;
    if (*pos + n > s.len) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s.ptr[*pos + i];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    *pos += n;
    *out = v;
    return true;
}

static bool take_char(clew_str s, size_t *pos, const char *set)
{
    if (*pos < s.len && s.ptr[*pos] != '\0' && strchr(set, s.ptr[*pos]) != NULL) {
        (*pos)++;
        return true;
    }
    return false;
}

/* RFC 3339 date-time ("2024-05-01T12:00:00.5Z", "...+02:00") to ns since the epoch.
 * Times before 1970 are refused. */
static bool parse_rfc3339(clew_str s, uint64_t *out_ns)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t pos = 0;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    if (!take_digits(s, &pos, 4, &y) || !take_char(s, &pos, "-") || !take_digits(s, &pos, 2, &mo) ||
        !take_char(s, &pos, "-") || !take_digits(s, &pos, 2, &d) || !take_char(s, &pos, "Tt ") ||
        !take_digits(s, &pos, 2, &h) || !take_char(s, &pos, ":") || !take_digits(s, &pos, 2, &mi) ||
        !take_char(s, &pos, ":") || !take_digits(s, &pos, 2, &sec)) {
        return false;
    }
    uint64_t frac = 0;
    if (take_char(s, &pos, ".")) {
        size_t start = pos;
        uint64_t scale = 100000000;
        while (pos < s.len && s.ptr[pos] >= '0' && s.ptr[pos] <= '9') {
            frac += (uint64_t)(s.ptr[pos] - '0') * scale; /* digits past ns are dropped */
            scale /= 10;
            pos++;
        }
        if (pos == start) {
            return false;
        }
    }
    if (take_char(s, &pos, "Zz")) {
        sign = 0;
    } else if (pos < s.len && (s.ptr[pos] == '+' || s.ptr[pos] == '-')) {
        sign = s.ptr[pos] == '-' ? -1 : 1;
        pos++;
        if (!take_digits(s, &pos, 2, &oh) || !take_char(s, &pos, ":") ||
            !take_digits(s, &pos, 2, &om) || oh > 23 || om > 59) {
            return false;
        }
    } else {
        return false;
    }
    if (pos != s.len || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 59) {
        return false;
    }
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) {
        return false;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
                   (int64_t)sign * (oh * 3600 + om * 60);
    /* years are 4 digits, so secs stays far below the uint64 ns limit (year 2554) */
    if (secs < 0 || (uint64_t)secs > UINT64_MAX / 1000000000u - 1) {
        return false;
    }
    *out_ns = (uint64_t)secs * 1000000000u + frac;
    return true;
}

static bool parse_rfc3339_param(const clew_query_params *p, const char *name, uint64_t *out_ns,
                                bool *present, clew_api_response *resp)
{
    const clew_str *v = clew__query_get(p, name);
    *present = false;
    if (v == NULL || v->len == 0) {
        return true;
    }
    if (!parse_rfc3339(*v, out_ns)) {
        respond_bad_param(resp, FLAVOR_V3, name, *v,
                          "expected an RFC 3339 time such as 2024-05-01T12:00:00Z");
        return false;
    }
    *present = true;
    return true;
}

/* A v3 tag filter (query.attributes={json}), if `it` is one; false after answering 400. */
static bool v3_tag_param(const clew_query_param *it, clew_search_query *q, clew_arena *a,
                         clew_api_response *resp)
{
    if (!str_is(it->key, "query.attributes") || it->value.len == 0) {
        return true;
    }
    return parse_tags_json(it->value, q, a, resp, FLAVOR_V3, "query.attributes");
}

/* ---- search parameters of either API ---- */

/* How one API spells its search parameters; the checks on them are the same. */
typedef struct search_dialect {
    api_flavor fl;
    const char *service, *operation, *dur_min, *dur_max, *start, *end, *limit;
    bool (*tag_param)(const clew_query_param *it, clew_search_query *q, clew_arena *a,
                      clew_api_response *resp);
    bool (*time_param)(const clew_query_params *p, const char *name, uint64_t *out_ns,
                       bool *present, clew_api_response *resp);
    bool lookback; /* v1's lookback=1h (relative to end, or now) */
} search_dialect;

static const search_dialect v1_search = {
    .fl = FLAVOR_V1,
    .service = "service",
    .operation = "operation",
    .dur_min = "minDuration",
    .dur_max = "maxDuration",
    .start = "start",
    .end = "end",
    .limit = "limit",
    .tag_param = v1_tag_param,
    .time_param = parse_time_param,
    .lookback = true,
};

static const search_dialect v3_search = {
    .fl = FLAVOR_V3,
    .service = "query.serviceName",
    .operation = "query.operationName",
    .dur_min = "query.durationMin",
    .dur_max = "query.durationMax",
    .start = "query.startTimeMin",
    .end = "query.startTimeMax",
    .limit = "query.searchDepth",
    .tag_param = v3_tag_param,
    .time_param = parse_rfc3339_param,
    .lookback = false,
};

/* Fills `q` from the search parameters; false after answering 400. */
static bool parse_search(const clew_query_params *p, clew_search_query *q, clew_arena *a,
                         clew_api_response *resp, const search_dialect *sd)
{
    const clew_str *v;
    memset(q, 0, sizeof(*q));
    if ((v = clew__query_get(p, sd->service)) != NULL) {
        q->service = *v;
    }
    if ((v = clew__query_get(p, sd->operation)) != NULL) {
        q->operation = *v;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (!sd->tag_param(&p->items[i], q, a, resp)) {
            return false;
        }
    }
    bool has_min, has_max, has_start, has_end;
    if (!parse_duration_param(p, sd->dur_min, &q->min_duration_ns, &has_min, resp, sd->fl) ||
        !parse_duration_param(p, sd->dur_max, &q->max_duration_ns, &has_max, resp, sd->fl) ||
        !sd->time_param(p, sd->start, &q->start_min_ns, &has_start, resp) ||
        !sd->time_param(p, sd->end, &q->start_max_ns, &has_end, resp)) {
        return false;
    }
    if (has_min && has_max && q->min_duration_ns > q->max_duration_ns) {
        respond_errorf(resp, sd->fl, 400, "invalid parameter %s: it is greater than %s",
                       sd->dur_min, sd->dur_max);
        return false;
    }
    if (has_start && has_end && q->start_min_ns > q->start_max_ns) {
        respond_errorf(resp, sd->fl, 400, "invalid parameter %s: it is after %s", sd->start,
                       sd->end);
        return false;
    }
    if (sd->lookback && (v = clew__query_get(p, "lookback")) != NULL && v->len > 0 &&
        !str_is(*v, "custom")) {
        uint64_t lb;
        if (clew__duration_parse(v->ptr, v->len, 0, &lb) != CLEW_OK) {
            respond_bad_param(resp, sd->fl, "lookback", *v,
                              "expected a duration such as 1h or 2d, or \"custom\"");
            return false;
        }
        /* an explicit start wins, as in Jaeger (the UI sends both) */
        if (!has_start) {
            uint64_t base = has_end ? q->start_max_ns : clew__now_unix_ns();
            q->start_min_ns = lb < base ? base - lb : 1;
        }
    }
    q->limit = SEARCH_DEFAULT_LIMIT;
    if ((v = clew__query_get(p, sd->limit)) != NULL && v->len > 0) {
        uint64_t lim;
        if (!parse_u64(*v, &lim) || lim == 0) {
            respond_bad_param(resp, sd->fl, sd->limit, *v, "expected a positive integer");
            return false;
        }
        q->limit = lim > SEARCH_MAX_LIMIT ? SEARCH_MAX_LIMIT : (size_t)lim;
    }
    return true;
}

/* ---- handlers ---- */

static clew_status envelope_close(clew_buf *b, size_t total)
{
    return clew__buf_printf(b, "],\"total\":%zu,\"limit\":0,\"offset\":0,\"errors\":null}", total);
}

/* ,"warnings":["..."] when the store said something about how it searched (an attribute
 * not indexed everywhere); nothing otherwise. Jaeger's clients ignore the field. */
static clew_status put_warnings(clew_buf *b, const clew_search_result *sr)
{
    if (sr == NULL || sr->n_warnings == 0) {
        return CLEW_OK;
    }
    CLEW_TRY(clew__buf_puts(b, ",\"warnings\":["));
    for (size_t i = 0; i < sr->n_warnings; i++) {
        if (i > 0) {
            CLEW_TRY(clew__buf_putc(b, ','));
        }
        CLEW_TRY(clew__buf_json_str(b, sr->warnings[i].ptr, sr->warnings[i].len));
    }
    return clew__buf_putc(b, ']');
}

/* The v1 envelope's end, with the search's warnings before the closing brace. */
static clew_status search_envelope_close(clew_buf *b, size_t total, const clew_search_result *sr)
{
    CLEW_TRY(
        clew__buf_printf(b, "],\"total\":%zu,\"limit\":0,\"offset\":0,\"errors\":null", total));
    CLEW_TRY(put_warnings(b, sr));
    return clew__buf_putc(b, '}');
}

static void handle_search(clew_store *store, const clew_api_request *req, clew_api_response *resp)
{
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_query_params p;
    clew_search_query q;
    if (!parse_query(req, &a, &p, resp, FLAVOR_V1) || !parse_search(&p, &q, &a, resp, &v1_search)) {
        clew__arena_deinit(&a);
        return;
    }
    clew_search_result *sr = NULL;
    clew_status rc = store->ops->search(store, &q, &sr);
    size_t shown = 0;
    clew_buf *b = &resp->body;
    clew__buf_reset(b);
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(b, "{\"data\":[");
    }
    for (size_t i = 0; rc == CLEW_OK && i < sr->n_traces; i++) {
        clew_trace_result *t = NULL;
        clew_status g = store->ops->get_trace(store, &sr->traces[i].trace_id, &t);
        if (g == CLEW_ENOTFOUND) {
            continue; /* evicted between search and fetch */
        }
        if (g != CLEW_OK) {
            rc = g;
            break;
        }
        if (shown > 0) {
            rc = clew__buf_putc(b, ',');
        }
        if (rc == CLEW_OK) {
            rc = clew__jaeger_trace_json(t, b);
        }
        clew__trace_result_free(t);
        shown++;
    }
    if (rc == CLEW_OK) {
        rc = search_envelope_close(b, shown, sr);
    }
    clew__search_result_free(sr);
    clew__arena_deinit(&a);
    if (rc != CLEW_OK) {
        respond_internal(resp, FLAVOR_V1, rc);
        return;
    }
    resp->status = 200;
}

/* Decodes the {id} path segment and parses it; answers 400 and returns false if bad. */
static bool parse_id_segment(clew_str seg, clew_trace_id *id, clew_api_response *resp,
                             api_flavor fl)
{
    char tmp[64];
    size_t n = 0;
    clew_error err = {{0}, 0};
    if (seg.len > sizeof(tmp) ||
        clew__percent_decode(seg.ptr, seg.len, false, tmp, &n, &err) != CLEW_OK ||
        !clew__jaeger_trace_id_parse(tmp, n, id)) {
        clew_buf m;
        clew__buf_init(&m, 1024);
        size_t el = seg.len > ECHO_MAX ? ECHO_MAX : seg.len;
        if (clew__buf_puts(&m, "invalid trace id \"") == CLEW_OK &&
            clew__buf_append(&m, seg.ptr, el) == CLEW_OK &&
            clew__buf_puts(&m, el < seg.len ? "...\"" : "\"") == CLEW_OK &&
            clew__buf_puts(&m, ": expected 1 to 32 hex digits, not all zero") == CLEW_OK) {
            respond_error(resp, fl, 400, m.data, m.len);
        } else {
            respond_errorf(resp, fl, 400, "invalid trace id: expected 1 to 32 hex digits");
        }
        clew__buf_deinit(&m);
        return false;
    }
    return true;
}

/* v1: {"data":[<Jaeger trace>],...}. */
static clew_status render_trace_v1(clew_trace_result *t, clew_buf *b)
{
    CLEW_TRY(clew__buf_puts(b, "{\"data\":["));
    CLEW_TRY(clew__jaeger_trace_json(t, b));
    return envelope_close(b, 0);
}

/* v3: {"result":<OTLP TracesData>,"clew":{trace metadata}}; Jaeger's clients read
 * "result" only. */
static clew_status render_trace_v3(clew_trace_result *t, clew_buf *b)
{
    clew_batch batch;
    CLEW_TRY(clew__batch_from_spans(&batch, t->spans, t->n_spans, &t->arena));
    CLEW_TRY(clew__buf_puts(b, "{\"result\":"));
    CLEW_TRY(clew__otlp_json_encode(&batch, b));
    CLEW_TRY(clew__buf_puts(b, ",\"clew\":"));
    CLEW_TRY(clew__trace_meta_json(&t->meta, b));
    return clew__buf_putc(b, '}');
}

/* GET one trace by the id in path segment `seg`, rendered by the API's `render`. */
static void handle_trace(clew_store *store, clew_str seg, clew_api_response *resp, api_flavor fl,
                         clew_status (*render)(clew_trace_result *t, clew_buf *b))
{
    clew_trace_id id;
    if (!parse_id_segment(seg, &id, resp, fl)) {
        return;
    }
    clew_trace_result *t = NULL;
    clew_status rc = store->ops->get_trace(store, &id, &t);
    if (rc == CLEW_ENOTFOUND) {
        respond_errorf(resp, fl, 404, "trace not found");
        return;
    }
    clew__buf_reset(&resp->body);
    if (rc == CLEW_OK) {
        rc = render(t, &resp->body);
    }
    clew__trace_result_free(t);
    if (rc != CLEW_OK) {
        respond_internal(resp, fl, rc);
        return;
    }
    resp->status = 200;
}

/* Encodes the spans of several traces as one OTLP TracesData in {"result": ...}, followed by
 * the search's warnings. */
static clew_status encode_traces_v3(clew_trace_result **traces, size_t n,
                                    const clew_search_result *sr, clew_buf *b)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += traces[i]->n_spans;
    }
    const clew_span_data **all = clew__calloc(total ? total : 1, sizeof(*all));
    if (all == NULL) {
        return CLEW_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < traces[i]->n_spans; j++) {
            all[k++] = traces[i]->spans[j];
        }
    }
    clew_arena a;
    clew__arena_init(&a, 16384, 0);
    clew_batch batch;
    clew_status rc = clew__batch_from_spans(&batch, all, total, &a);
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(b, "{\"result\":");
    }
    if (rc == CLEW_OK) {
        rc = clew__otlp_json_encode(&batch, b);
    }
    if (rc == CLEW_OK) {
        rc = put_warnings(b, sr);
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_putc(b, '}');
    }
    clew__arena_deinit(&a);
    clew__free(all);
    return rc;
}

/* GET /api/v3/traces?query.*: every matching trace's spans in one TracesData;
 * 404 when nothing matches (as Jaeger v3 does). */
static void handle_search_v3(clew_store *store, const clew_api_request *req,
                             clew_api_response *resp)
{
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_query_params p;
    clew_search_query q;
    if (!parse_query(req, &a, &p, resp, FLAVOR_V3) || !parse_search(&p, &q, &a, resp, &v3_search)) {
        clew__arena_deinit(&a);
        return;
    }
    clew_search_result *sr = NULL;
    clew_trace_result **traces = NULL;
    size_t n = 0;
    clew_status rc = store->ops->search(store, &q, &sr);
    if (rc == CLEW_OK) {
        traces = clew__calloc(sr->n_traces ? sr->n_traces : 1, sizeof(*traces));
        rc = traces ? CLEW_OK : CLEW_ENOMEM;
    }
    for (size_t i = 0; rc == CLEW_OK && i < sr->n_traces; i++) {
        clew_status g = store->ops->get_trace(store, &sr->traces[i].trace_id, &traces[n]);
        if (g == CLEW_OK) {
            n++;
        } else if (g != CLEW_ENOTFOUND) { /* ENOTFOUND: evicted since the search */
            rc = g;
        }
    }
    if (rc == CLEW_OK && n == 0) {
        respond_errorf(resp, FLAVOR_V3, 404, "no traces found");
    } else if (rc == CLEW_OK) {
        clew__buf_reset(&resp->body);
        rc = encode_traces_v3(traces, n, sr, &resp->body);
        resp->status = 200;
    }
    for (size_t i = 0; i < n; i++) {
        clew__trace_result_free(traces[i]);
    }
    clew__free(traces);
    clew__search_result_free(sr);
    clew__arena_deinit(&a);
    if (rc != CLEW_OK) {
        respond_internal(resp, FLAVOR_V3, rc);
    }
}

static void handle_services(clew_store *store, clew_api_response *resp, api_flavor fl)
{
    clew_name_list *l = NULL;
    clew_status rc = store->ops->services(store, &l);
    clew_buf *b = &resp->body;
    clew__buf_reset(b);
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(b, fl == FLAVOR_V3 ? "{\"services\":[" : "{\"data\":[");
    }
    for (size_t i = 0; rc == CLEW_OK && i < l->n; i++) {
        if (i > 0) {
            rc = clew__buf_putc(b, ',');
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(b, l->names[i].ptr, l->names[i].len);
        }
    }
    if (rc == CLEW_OK) {
        rc = fl == FLAVOR_V3 ? clew__buf_puts(b, "]}") : envelope_close(b, l->n);
    }
    clew__name_list_free(l);
    if (rc != CLEW_OK) {
        respond_internal(resp, fl, rc);
        return;
    }
    resp->status = 200;
}

/* /api/services/{service}/operations: names only, one per name (kinds merged). */
static void handle_service_ops(clew_store *store, clew_str seg, clew_api_response *resp)
{
    clew_arena a;
    clew__arena_init(&a, 1024, 0);
    clew_str svc;
    clew_error err = {{0}, 0};
    clew_status rc = clew__percent_decode_str(seg, false, &a, &svc, &err);
    if (rc == CLEW_EPARSE) {
        respond_errorf(resp, FLAVOR_V1, 400, "invalid service name in the path: %s", err.msg);
        clew__arena_deinit(&a);
        return;
    }
    clew_name_list *l = NULL;
    if (rc == CLEW_OK) {
        rc = store->ops->operations(store, svc, CLEW_KIND_UNSPECIFIED, &l);
    }
    clew_buf *b = &resp->body;
    clew__buf_reset(b);
    size_t n = 0;
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(b, "{\"data\":[");
    }
    for (size_t i = 0; rc == CLEW_OK && i < l->n; i++) {
        /* sorted by name then kind: equal names are adjacent */
        if (i > 0 && l->names[i].len == l->names[i - 1].len &&
            memcmp(l->names[i].ptr, l->names[i - 1].ptr, l->names[i].len) == 0) {
            continue;
        }
        if (n > 0) {
            rc = clew__buf_putc(b, ',');
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(b, l->names[i].ptr, l->names[i].len);
        }
        n++;
    }
    if (rc == CLEW_OK) {
        rc = envelope_close(b, n);
    }
    clew__name_list_free(l);
    clew__arena_deinit(&a);
    if (rc != CLEW_OK) {
        respond_internal(resp, FLAVOR_V1, rc);
        return;
    }
    resp->status = 200;
}

/* /api/operations and /api/v3/operations: ?service=&spanKind= */
static void handle_operations(clew_store *store, const clew_api_request *req,
                              clew_api_response *resp, api_flavor fl)
{
    clew_arena a;
    clew__arena_init(&a, 4096, 0);
    clew_query_params p;
    if (!parse_query(req, &a, &p, resp, fl)) {
        clew__arena_deinit(&a);
        return;
    }
    const clew_str *svc = clew__query_get(&p, "service");
    const clew_str *kv = clew__query_get(&p, "spanKind");
    clew_span_kind kind = CLEW_KIND_UNSPECIFIED;
    if (kv != NULL && !parse_kind(*kv, &kind)) {
        respond_bad_param(resp, fl, "spanKind", *kv,
                          "expected server, client, producer, consumer or internal");
        clew__arena_deinit(&a);
        return;
    }
    clew_name_list *l = NULL;
    clew_str empty = {"", 0};
    clew_status rc = store->ops->operations(store, svc ? *svc : empty, kind, &l);
    clew_buf *b = &resp->body;
    clew__buf_reset(b);
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(b, fl == FLAVOR_V3 ? "{\"operations\":[" : "{\"data\":[");
    }
    for (size_t i = 0; rc == CLEW_OK && i < l->n; i++) {
        rc = clew__buf_puts(b, i > 0 ? ",{\"name\":" : "{\"name\":");
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(b, l->names[i].ptr, l->names[i].len);
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_printf(b, ",\"spanKind\":\"%s\"}", kind_text(l->kinds[i]));
        }
    }
    if (rc == CLEW_OK) {
        rc = fl == FLAVOR_V3 ? clew__buf_puts(b, "]}") : envelope_close(b, l->n);
    }
    clew__name_list_free(l);
    clew__arena_deinit(&a);
    if (rc != CLEW_OK) {
        respond_internal(resp, fl, rc);
        return;
    }
    resp->status = 200;
}

/* ---- routing ---- */

typedef enum route {
    ROUTE_NONE,
    ROUTE_SEARCH,
    ROUTE_TRACE,
    ROUTE_SERVICES,
    ROUTE_SERVICE_OPS,
    ROUTE_OPERATIONS,
    ROUTE_V3_TRACE,
    ROUTE_V3_SEARCH,
    ROUTE_V3_SERVICES,
    ROUTE_V3_OPERATIONS,
} route;

/* If `path` is `prefix` followed by one non-empty segment (no '/'), sets *seg. */
static bool match_segment(clew_str path, const char *prefix, const char *suffix, clew_str *seg)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (path.len <= pl + sl || memcmp(path.ptr, prefix, pl) != 0 ||
        memcmp(path.ptr + path.len - sl, suffix, sl) != 0) {
        return false;
    }
    clew_str s = {path.ptr + pl, path.len - pl - sl};
    if (memchr(s.ptr, '/', s.len) != NULL) {
        return false;
    }
    *seg = s;
    return true;
}

static route find_route(clew_str path, clew_str *seg)
{
    if (str_is(path, "/api/traces")) {
        return ROUTE_SEARCH;
    }
    if (str_is(path, "/api/services")) {
        return ROUTE_SERVICES;
    }
    if (str_is(path, "/api/operations")) {
        return ROUTE_OPERATIONS;
    }
    if (str_is(path, "/api/v3/traces")) {
        return ROUTE_V3_SEARCH;
    }
    if (str_is(path, "/api/v3/services")) {
        return ROUTE_V3_SERVICES;
    }
    if (str_is(path, "/api/v3/operations")) {
        return ROUTE_V3_OPERATIONS;
    }
    if (match_segment(path, "/api/traces/", "", seg)) {
        return ROUTE_TRACE;
    }
    if (match_segment(path, "/api/services/", "/operations", seg)) {
        return ROUTE_SERVICE_OPS;
    }
    if (match_segment(path, "/api/v3/traces/", "", seg)) {
        return ROUTE_V3_TRACE;
    }
    return ROUTE_NONE;
}

clew_status clew__api_handle(clew_store *store, const clew_api_request *req,
                             clew_api_response *resp)
{
    clew_str seg = {"", 0};
    route r = find_route(req->path, &seg);
    if (r == ROUTE_NONE) {
        return CLEW_ENOTFOUND;
    }
    api_flavor fl = r == ROUTE_V3_TRACE || r == ROUTE_V3_SEARCH || r == ROUTE_V3_SERVICES ||
                            r == ROUTE_V3_OPERATIONS
                        ? FLAVOR_V3
                        : FLAVOR_V1;
    resp->content_type = "application/json";
    if (req->method == NULL || strcmp(req->method, "GET") != 0) {
        respond_errorf(resp, fl, 405, "method not allowed: use GET");
        return CLEW_OK;
    }
    switch (r) {
    case ROUTE_SEARCH:
        handle_search(store, req, resp);
        break;
    case ROUTE_TRACE:
        handle_trace(store, seg, resp, FLAVOR_V1, render_trace_v1);
        break;
    case ROUTE_SERVICES:
        handle_services(store, resp, FLAVOR_V1);
        break;
    case ROUTE_SERVICE_OPS:
        handle_service_ops(store, seg, resp);
        break;
    case ROUTE_OPERATIONS:
        handle_operations(store, req, resp, FLAVOR_V1);
        break;
    case ROUTE_V3_TRACE:
        handle_trace(store, seg, resp, FLAVOR_V3, render_trace_v3);
        break;
    case ROUTE_V3_SEARCH:
        handle_search_v3(store, req, resp);
        break;
    case ROUTE_V3_SERVICES:
        handle_services(store, resp, FLAVOR_V3);
        break;
    case ROUTE_V3_OPERATIONS:
        handle_operations(store, req, resp, FLAVOR_V3);
        break;
    case ROUTE_NONE:
        return CLEW_ENOTFOUND;
    }
    return CLEW_OK;
}
