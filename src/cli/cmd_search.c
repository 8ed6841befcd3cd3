/*
 * src/cli/cmd_search.c - `clew search` (find traces through GET /api/traces, the
 * Jaeger v1 search) and `clew services` (GET /api/services).
 *
 * Arguments are checked here before any request, so a typo in a duration is a
 * clear "bad input" (exit 4) rather than whatever the server makes of it.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "cli/http_client.h"
#include "common/alloc.h"
#include "common/clock.h"

/* ---- shared ------------------------------------------------------------- */

/* GETs `path`, expects 200 with a JSON body; on success *out is the parsed body. */
static int fetch_json(clew_http_client *c, const char *path, json_t **out)
{
    clew_http_response resp;
    clew__http_response_init(&resp);
    int code = CLEW_EXIT_OK;
    clew_status st = clew__http_get(c, path, &resp);
    if (st != CLEW_OK) {
        code = clew__http_report_failure(c, st, &resp);
    } else if (resp.status != 200) {
        code = clew__http_report_status(c, &resp);
    } else {
        json_error_t jerr;
        *out = json_loadb(resp.body.data, resp.body.len, 0, &jerr);
        if (*out == NULL) {
            fprintf(stderr, "clew: the answer from %s is not valid JSON (%s at byte %d).\n",
                    clew__http_client_base(c), jerr.text, jerr.position);
            code = CLEW_EXIT_IO;
        }
    }
    clew__http_response_deinit(&resp);
    return code;
}

/* Prints `s` with control bytes replaced, at most `max_cols` columns (0 = no
 * limit), ending in "…" when cut. Server-supplied names must not be able to
 * drive the terminal. */
static void print_clean(const char *s, size_t max_cols)
{
    size_t cols = 0;
    size_t total = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        total += (*p & 0xC0) != 0x80;
    }
    bool cut = max_cols > 0 && total > max_cols;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool lead = (*p & 0xC0) != 0x80;
        if (lead && cut && cols + 1 >= max_cols) {
            fputs("\xe2\x80\xa6", stdout);
            return;
        }
        cols += lead;
        putchar(*p < 0x20 || *p == 0x7F ? '?' : *p);
    }
}

/* ---- clew search -------------------------------------------------------- */

enum {
    OPT_SERVER = 1,
    OPT_SERVICE,
    OPT_OPERATION,
    OPT_TAG,
    OPT_MIN_DURATION,
    OPT_MAX_DURATION,
    OPT_SINCE,
    OPT_LIMIT,
    OPT_JSON,
};

static const clew_cli_opt search_opts[] = {
    {OPT_SERVICE, "service", 's', "S", "traces with a span of service S"},
    {OPT_OPERATION, "operation", 'o', "O", "traces with a span named O (of --service, if given)"},
    {OPT_TAG, "tag", 't', "K=V", "traces with attribute K equal to V; repeat for more (all match)"},
    {OPT_MIN_DURATION, "min-duration", 0, "D", "traces lasting at least D (e.g. 250ms, 1.5s)"},
    {OPT_MAX_DURATION, "max-duration", 0, "D", "traces lasting at most D"},
    {OPT_SINCE, "since", 0, "D", "traces that started in the last D (default 1h; e.g. 15m, 2d)"},
    {OPT_LIMIT, "limit", 'n', "N", "show at most N traces, most recent first (default 20)"},
    {OPT_JSON, "json", 'j', NULL, "print the server's JSON (Jaeger v1) instead of the table"},
    {OPT_SERVER, "server", 0, "URL",
     "clew server to ask (default: $CLEW_SERVER, else " CLEW_HTTP_DEFAULT_SERVER ")"},
};

const clew_cli_spec clew__search_spec = {
    "search",
    "",
    "find traces by service, operation, attributes, duration and time",
    "Asks the server for recent traces that match every filter given and prints one\n"
    "row per trace: id, start (local time), duration, spans, error spans, and the\n"
    "root span's service and operation. Exits 1 when nothing matches.",
    search_opts,
    sizeof(search_opts) / sizeof(search_opts[0]),
    "  clew search --service checkout --since 15m\n"
    "  clew search --service payment --min-duration 1s --limit 5\n"
    "  clew search --tag http.status_code=500 --tag http.method=POST\n",
};

#define MAX_TAGS 16

typedef struct trace_row {
    char id[33];
    int64_t start_us;
    int64_t duration_us;
    size_t spans;
    size_t errors;
    const char *root_service;
    const char *root_op;
} trace_row;

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool tag_is_error(const json_t *span)
{
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(span, "tags"), i, t)
    {
        const char *k = json_string_value(json_object_get(t, "key"));
        const json_t *v = json_object_get(t, "value");
        if (k != NULL && strcmp(k, "error") == 0 &&
            (json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0))) {
            return true;
        }
    }
    return false;
}

/* The span's parent id: the first CHILD_OF reference, else parentSpanID. */
static const char *parent_of(const json_t *span)
{
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(span, "references"), i, r)
    {
        const char *type = json_string_value(json_object_get(r, "refType"));
        if (type != NULL && strcmp(type, "CHILD_OF") == 0) {
            return json_string_value(json_object_get(r, "spanID"));
        }
    }
    return json_string_value(json_object_get(span, "parentSpanID"));
}

static const char *service_of(const json_t *trace, const json_t *span)
{
    const json_t *proc = json_object_get(span, "process");
    if (!json_is_object(proc)) {
        const char *pid = json_string_value(json_object_get(span, "processID"));
        proc = pid ? json_object_get(json_object_get(trace, "processes"), pid) : NULL;
    }
    const char *s = json_string_value(json_object_get(proc, "serviceName"));
    return s ? s : "?";
}

/* Summarises one Jaeger v1 trace object. False for one with no usable spans. */
static bool summarise(const json_t *trace, trace_row *row)
{
    const json_t *spans = json_object_get(trace, "spans");
    size_t n = json_array_size(spans);
    memset(row, 0, sizeof(*row));
    const char *tid = json_string_value(json_object_get(trace, "traceID"));
    snprintf(row->id, sizeof(row->id), "%s", tid ? tid : "?");
    if (n == 0) {
        return false;
    }
    /* Sorted span ids, so "is my parent in this trace?" is a binary search. */
    const char **ids = clew__calloc(n, sizeof(char *));
    if (ids == NULL) {
        return false;
    }
    size_t nid = 0;
    for (size_t i = 0; i < n; i++) {
        const char *sid = json_string_value(json_object_get(json_array_get(spans, i), "spanID"));
        if (sid != NULL) {
            ids[nid++] = sid;
        }
    }
    qsort(ids, nid, sizeof(char *), cmp_cstr);

    int64_t start = INT64_MAX, end = INT64_MIN;
    int64_t root_start = INT64_MAX, any_start = INT64_MAX;
    const json_t *root = NULL, *earliest = NULL;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(spans, i);
        const json_t *st = json_object_get(s, "startTime");
        const json_t *du = json_object_get(s, "duration");
        if (!json_is_integer(st)) {
            continue;
        }
        int64_t s0 = json_integer_value(st);
        int64_t d = json_is_integer(du) ? json_integer_value(du) : 0;
        d = d < 0 ? 0 : d;
        row->spans++;
        row->errors += tag_is_error(s);
        start = s0 < start ? s0 : start;
        if (s0 <= INT64_MAX - d && s0 + d > end) {
            end = s0 + d;
        }
        if (s0 < any_start) {
            any_start = s0;
            earliest = s;
        }
        const char *pid = parent_of(s);
        bool has_parent = pid != NULL && pid[0] != '\0' &&
                          bsearch(&pid, ids, nid, sizeof(char *), cmp_cstr) != NULL;
        if (!has_parent && s0 < root_start) {
            root_start = s0;
            root = s;
        }
    }
    clew__free(ids);
    if (row->spans == 0) {
        return false;
    }
    if (root == NULL) {
        root = earliest;
    }
    row->start_us = start;
    row->duration_us = end > start ? end - start : 0;
    row->root_service = service_of(trace, root);
    const char *op = json_string_value(json_object_get(root, "operationName"));
    row->root_op = op ? op : "?";
    return true;
}

static void print_row(const trace_row *r, size_t width)
{
    char when[32] = "?";
    time_t secs = (time_t)(r->start_us / 1000000);
    struct tm tm;
    if (localtime_r(&secs, &tm) != NULL) {
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    }
    char dur[32];
    clew__duration_format((uint64_t)r->duration_us * 1000u, dur, sizeof(dur));
    /* "µs" is two bytes for one column: pad by display width, not bytes. */
    size_t dcols = 0;
    for (const unsigned char *p = (const unsigned char *)dur; *p; p++) {
        dcols += (*p & 0xC0) != 0x80;
    }
    printf("%-32s  %-19s  %*s%s  %5zu  %6zu  ", r->id, when, (int)(dcols < 9 ? 9 - dcols : 0), "",
           dur, r->spans, r->errors);
    size_t used = 32 + 2 + 19 + 2 + 9 + 2 + 5 + 2 + 6 + 2;
    size_t room = width > used ? width - used : 0;
    size_t svc_cols = 0;
    for (const unsigned char *p = (const unsigned char *)r->root_service; *p; p++) {
        svc_cols += (*p & 0xC0) != 0x80;
    }
    if (width == 0) {
        print_clean(r->root_service, 0);
        fputs(": ", stdout);
        print_clean(r->root_op, 0);
    } else if (room > svc_cols + 3) {
        print_clean(r->root_service, 0);
        fputs(": ", stdout);
        print_clean(r->root_op, room - svc_cols - 2);
    } else {
        print_clean(r->root_service, room > 1 ? room : 1);
    }
    putchar('\n');
}

static int append_cb(const char *buffer, size_t size, void *data)
{
    return clew__buf_append(data, buffer, size) == CLEW_OK ? 0 : -1;
}

/* {"k1":"v1",...} from "k1=v1" strings (the last of a repeated key wins). */
static int tags_to_json(const char *const *tags, size_t n_tags, clew_buf *out)
{
    json_t *obj = json_object();
    int code = obj ? CLEW_EXIT_OK : CLEW_EXIT_IO;
    for (size_t i = 0; i < n_tags && code == CLEW_EXIT_OK; i++) {
        const char *eq = strchr(tags[i], '=');
        char *key = clew__strndup(tags[i], (size_t)(eq - tags[i]));
        json_t *v = json_string(eq + 1);
        if (key == NULL || v == NULL || json_object_set_new(obj, key, v) != 0) {
            /* json_string refuses invalid UTF-8; set_new frees v on failure */
            if (v != NULL && key == NULL) {
                json_decref(v);
            }
            fprintf(stderr, "clew: --tag '%s' is not valid UTF-8 text.\n", tags[i]);
            code = CLEW_EXIT_BADINPUT;
        }
        clew__free(key);
    }
    if (code == CLEW_EXIT_OK &&
        json_dump_callback(obj, append_cb, out, JSON_COMPACT | JSON_SORT_KEYS) != 0) {
        fprintf(stderr, "clew: the --tag filters are too long.\n");
        code = CLEW_EXIT_BADINPUT;
    }
    json_decref(obj);
    return code;
}

int clew__cmd_search(int argc, char **argv)
{
    const clew_cli_spec *spec = &clew__search_spec;
    const char *server = NULL, *service = NULL, *operation = NULL;
    const char *tags[MAX_TAGS];
    size_t n_tags = 0;
    uint64_t min_ns = 0, max_ns = 0, since_ns = 3600ull * 1000000000ull;
    bool have_min = false, have_max = false, json = false;
    long limit = 20;

    clew_cli_args args;
    clew__cli_args_init(&args, spec, argc, argv);
    while (clew__cli_args_next(&args)) {
        const clew_cli_opt *opt = args.opt;
        const char *val = args.val;
        if (opt == NULL) {
            return clew__cli_usage_error(spec,
                                         "'clew search' takes no arguments, only options "
                                         "(got '%s').",
                                         val);
        }
        switch (opt->id) {
        case OPT_SERVER:
            server = val;
            break;
        case OPT_SERVICE:
        case OPT_OPERATION:
            if (val[0] == '\0') {
                fprintf(stderr, "clew: --%s needs a non-empty name.\n", opt->long_name);
                return CLEW_EXIT_BADINPUT;
            }
            *(opt->id == OPT_SERVICE ? &service : &operation) = val;
            break;
        case OPT_TAG: {
            const char *eq = strchr(val, '=');
            if (eq == NULL || eq == val) {
                fprintf(stderr,
                        "clew: --tag needs KEY=VALUE (for example http.status_code=500), "
                        "not '%s'.\n",
                        val);
                return CLEW_EXIT_BADINPUT;
            }
            if (n_tags == MAX_TAGS) {
                fprintf(stderr, "clew: at most %d --tag filters are supported.\n", MAX_TAGS);
                return CLEW_EXIT_BADINPUT;
            }
            tags[n_tags++] = val;
            break;
        }
        case OPT_MIN_DURATION:
        case OPT_MAX_DURATION:
        case OPT_SINCE: {
            uint64_t ns;
            if (clew__duration_parse(val, strlen(val), 0, &ns) != CLEW_OK) {
                fprintf(stderr,
                        "clew: --%s needs a duration with a unit such as 500ms, 2s, 15m "
                        "or 1h30m, not '%s'.\n",
                        opt->long_name, val);
                return CLEW_EXIT_BADINPUT;
            }
            if (opt->id == OPT_MIN_DURATION) {
                min_ns = ns;
                have_min = true;
            } else if (opt->id == OPT_MAX_DURATION) {
                max_ns = ns;
                have_max = true;
            } else if (ns == 0) {
                fprintf(stderr, "clew: --since must be longer than zero.\n");
                return CLEW_EXIT_BADINPUT;
            } else {
                since_ns = ns;
            }
            break;
        }
        case OPT_LIMIT:
            if (!clew__cli_parse_long(val, 1, 10000, &limit)) {
                fprintf(stderr, "clew: --limit needs a number from 1 to 10000, not '%s'.\n", val);
                return CLEW_EXIT_BADINPUT;
            }
            break;
        case OPT_JSON:
            json = true;
            break;
        default:
            break;
        }
    }
    if (args.exit_code >= 0) {
        return args.exit_code;
    }
    if (have_min && have_max && min_ns > max_ns) {
        fprintf(stderr,
                "clew: --min-duration is longer than --max-duration; nothing could match.\n");
        return CLEW_EXIT_BADINPUT;
    }

    /* tags travel as one JSON object, as Jaeger's `tags` parameter expects */
    clew_buf tagjson;
    clew__buf_init(&tagjson, 1 << 16);
    if (n_tags > 0) {
        int code = tags_to_json(tags, n_tags, &tagjson);
        if (code != CLEW_EXIT_OK) {
            clew__buf_deinit(&tagjson);
            return code;
        }
    }

    clew_http_client *client = NULL;
    int code = clew__http_open(server, &client);
    if (code != CLEW_EXIT_OK) {
        clew__buf_deinit(&tagjson);
        return code;
    }
    uint64_t now_us = clew__now_unix_ns() / 1000u;
    uint64_t since_us = since_ns / 1000u;
    uint64_t start_us = since_us < now_us ? now_us - since_us : 0;
    char num[32];
    clew_buf path;
    clew__buf_init(&path, 1 << 20);
    clew_status st = clew__buf_puts(&path, "/api/traces");
    if (st == CLEW_OK && service != NULL) {
        st = clew__http_add_param(client, &path, "service", service);
    }
    if (st == CLEW_OK && operation != NULL) {
        st = clew__http_add_param(client, &path, "operation", operation);
    }
    if (st == CLEW_OK && n_tags > 0) {
        st = clew__http_add_param(client, &path, "tags", tagjson.data);
    }
    if (st == CLEW_OK && have_min) {
        snprintf(num, sizeof(num), "%" PRIu64 "ns", min_ns);
        st = clew__http_add_param(client, &path, "minDuration", num);
    }
    if (st == CLEW_OK && have_max) {
        snprintf(num, sizeof(num), "%" PRIu64 "ns", max_ns);
        st = clew__http_add_param(client, &path, "maxDuration", num);
    }
    if (st == CLEW_OK) {
        snprintf(num, sizeof(num), "%" PRIu64, start_us);
        st = clew__http_add_param(client, &path, "start", num);
    }
    if (st == CLEW_OK) {
        snprintf(num, sizeof(num), "%" PRIu64, now_us);
        st = clew__http_add_param(client, &path, "end", num);
    }
    if (st == CLEW_OK) {
        snprintf(num, sizeof(num), "%ld", limit);
        st = clew__http_add_param(client, &path, "limit", num);
    }
    clew__buf_deinit(&tagjson);
    if (st != CLEW_OK) {
        fprintf(stderr, "clew: cannot build the request: %s.\n", clew_strerror(st));
        clew__buf_deinit(&path);
        clew__http_client_destroy(client);
        return st == CLEW_ETOOBIG ? CLEW_EXIT_BADINPUT : CLEW_EXIT_IO;
    }

    json_t *body = NULL;
    code = fetch_json(client, path.data, &body);
    clew__buf_deinit(&path);
    if (code != CLEW_EXIT_OK) {
        clew__http_client_destroy(client);
        return code;
    }
    const json_t *data = json_object_get(body, "data");
    size_t n = json_array_size(data);
    /* the server's notes on how it searched (e.g. an attribute it had to scan for) */
    size_t wi;
    const json_t *w;
    json_array_foreach(json_object_get(body, "warnings"), wi, w)
    {
        if (json_is_string(w) && !json) {
            fprintf(stderr, "clew: note from the server: %s\n", json_string_value(w));
        }
    }
    if (json != false) {
        code = clew__cli_print_json(body);
        if (code == CLEW_EXIT_OK && n == 0) {
            code = CLEW_EXIT_NOTFOUND;
        }
    } else if (n == 0) {
        char since_txt[32];
        clew__duration_format(since_ns, since_txt, sizeof(since_txt));
        fprintf(stderr, "clew: no traces matched in the last %s on %s.\n", since_txt,
                clew__http_client_base(client));
        code = CLEW_EXIT_NOTFOUND;
    } else {
        size_t width = isatty(STDOUT_FILENO) ? (size_t)clew__cli_terminal_width(STDOUT_FILENO) : 0;
        printf("%-32s  %-19s  %9s  %5s  %6s  %s\n", "TRACE ID", "START", "DURATION", "SPANS",
               "ERRORS", "ROOT");
        size_t shown = 0;
        for (size_t i = 0; i < n; i++) {
            trace_row row;
            if (summarise(json_array_get(data, i), &row)) {
                print_row(&row, width);
                shown++;
            }
        }
        if (fflush(stdout) != 0) {
            fprintf(stderr, "clew: cannot write to standard output.\n");
            code = CLEW_EXIT_IO;
        } else if (shown == 0) {
            code = CLEW_EXIT_NOTFOUND;
        }
    }
    json_decref(body);
    clew__http_client_destroy(client);
    return code;
}

/* ---- clew services ------------------------------------------------------ */

enum { SOPT_SERVER = 1, SOPT_JSON };

static const clew_cli_opt services_opts[] = {
    {SOPT_JSON, "json", 'j', NULL, "print the server's JSON instead of one name per line"},
    {SOPT_SERVER, "server", 0, "URL",
     "clew server to ask (default: $CLEW_SERVER, else " CLEW_HTTP_DEFAULT_SERVER ")"},
};

const clew_cli_spec clew__services_spec = {
    "services",
    "",
    "list the services the server has seen",
    "Prints the name of every service the server holds spans of, one per line, sorted.\n"
    "Exits 1 when there are none yet.",
    services_opts,
    sizeof(services_opts) / sizeof(services_opts[0]),
    "  clew services\n"
    "  clew services --server http://tracing:16686\n",
};

int clew__cmd_services(int argc, char **argv)
{
    const clew_cli_spec *spec = &clew__services_spec;
    const char *server = NULL;
    bool json = false;
    clew_cli_args args;
    clew__cli_args_init(&args, spec, argc, argv);
    while (clew__cli_args_next(&args)) {
        const clew_cli_opt *opt = args.opt;
        const char *val = args.val;
        if (opt == NULL) {
            return clew__cli_usage_error(spec, "'clew services' takes no arguments (got '%s').",
                                         val);
        }
        if (opt->id == SOPT_SERVER) {
            server = val;
        } else if (opt->id == SOPT_JSON) {
            json = true;
        }
    }
    if (args.exit_code >= 0) {
        return args.exit_code;
    }
    clew_http_client *client = NULL;
    int code = clew__http_open(server, &client);
    if (code != CLEW_EXIT_OK) {
        return code;
    }
    json_t *body = NULL;
    code = fetch_json(client, "/api/services", &body);
    if (code != CLEW_EXIT_OK) {
        clew__http_client_destroy(client);
        return code;
    }
    const json_t *data = json_object_get(body, "data");
    size_t n = json_array_size(data);
    if (json) {
        code = clew__cli_print_json(body);
    } else {
        const char **names = clew__calloc(n ? n : 1, sizeof(char *));
        size_t m = 0;
        if (names == NULL) {
            fprintf(stderr, "clew: out of memory.\n");
            code = CLEW_EXIT_IO;
        } else {
            for (size_t i = 0; i < n; i++) {
                const char *s = json_string_value(json_array_get(data, i));
                if (s != NULL) {
                    names[m++] = s;
                }
            }
            qsort(names, m, sizeof(char *), cmp_cstr);
            for (size_t i = 0; i < m; i++) {
                print_clean(names[i], 0);
                putchar('\n');
            }
            n = m;
            clew__free(names);
            if (fflush(stdout) != 0) {
                fprintf(stderr, "clew: cannot write to standard output.\n");
                code = CLEW_EXIT_IO;
            }
        }
    }
    if (code == CLEW_EXIT_OK && n == 0) {
        if (!json) {
            fprintf(stderr, "clew: the server at %s has no services yet.\n",
                    clew__http_client_base(client));
        }
        code = CLEW_EXIT_NOTFOUND;
    }
    json_decref(body);
    clew__http_client_destroy(client);
    return code;
}
