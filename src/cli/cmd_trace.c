/*
 * src/cli/cmd_trace.c - `clew trace ID`: fetch one trace over the Jaeger v3 API
 * and draw it as a text waterfall (tree, durations, bars, critical path and the
 * bottleneck), or print the server's JSON with --json.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/trace_view.h"
#include "common/alloc.h"

enum { OPT_SERVER = 1, OPT_JSON, OPT_NO_COLOR, OPT_WIDTH };

static const clew_cli_opt trace_opts[] = {
    {OPT_SERVER, "server", 0, "URL",
     "clew server to ask (default: $CLEW_SERVER, else " CLEW_HTTP_DEFAULT_SERVER ")"},
    {OPT_JSON, "json", 'j', NULL, "print the server's JSON (OTLP, pretty-printed) instead"},
    {OPT_NO_COLOR, "no-color", 0, NULL, "no ANSI colours even on a terminal"},
    {OPT_WIDTH, "width", 'w', "N", "draw N columns wide (default: the terminal's width)"},
};

const clew_cli_spec clew__trace_spec = {
    "trace",
    "ID",
    "show one trace as a tree with the critical path and the bottleneck",
    "Fetches trace ID (1 to 32 hex digits) from the server and draws one row per span:\n"
    "the tree, service and operation, duration, and a bar on the trace's time axis.\n"
    "Spans on the critical path are marked with a dot, errors with a cross, and the\n"
    "span with the most self time on the critical path gets \"<-- here's your problem\".\n"
    "Colours are used on a terminal unless NO_COLOR is set or --no-color is given.",
    trace_opts,
    sizeof(trace_opts) / sizeof(trace_opts[0]),
    "  clew trace 4bf92f3577b34da6a3ce929d0e0e4736\n"
    "  clew trace 4bf92f3577b34da6a3ce929d0e0e4736 --json > trace.json\n"
    "  CLEW_SERVER=http://tracing:16686 clew trace 4bf92f3577b34da6a3ce929d0e0e4736 --width 120\n",
};

/* 1 to 32 hex digits, either case, not all zero; lowercased into out. */
static bool valid_trace_id(const char *s, char out[33])
{
    size_t len = strlen(s);
    if (len == 0 || len > 32 || strspn(s, "0") == len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F') {
            c = (char)(c - 'A' + 'a');
        }
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
        out[i] = c;
    }
    out[len] = '\0';
    return true;
}

/* Pretty-prints a JSON body to stdout. */
static int print_json(const clew_http_response *resp)
{
    json_error_t jerr;
    json_t *j = json_loadb(resp->body.data, resp->body.len, 0, &jerr);
    if (j == NULL) {
        fprintf(stderr, "clew: the server's answer is not valid JSON (%s at byte %d).\n", jerr.text,
                jerr.position);
        return CLEW_EXIT_IO;
    }
    int code = clew__cli_print_json(j);
    json_decref(j);
    return code;
}

int clew__cmd_trace(int argc, char **argv)
{
    const clew_cli_spec *spec = &clew__trace_spec;
    const char *server = NULL;
    const char *id_arg = NULL;
    bool json = false, no_color = false;
    long width = 0;

    clew_cli_args args;
    clew__cli_args_init(&args, spec, argc, argv);
    while (clew__cli_args_next(&args)) {
        const clew_cli_opt *opt = args.opt;
        const char *val = args.val;
        if (opt == NULL) {
            if (id_arg != NULL) {
                return clew__cli_usage_error(spec,
                                             "'clew trace' takes one trace id, got '%s' "
                                             "and '%s'.",
                                             id_arg, val);
            }
            id_arg = val;
            continue;
        }
        switch (opt->id) {
        case OPT_SERVER:
            server = val;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_NO_COLOR:
            no_color = true;
            break;
        case OPT_WIDTH:
            if (!clew__cli_parse_long(val, 20, 10000, &width)) {
                fprintf(stderr,
                        "clew: --width needs a number of columns from 20 to 10000, not "
                        "'%s'.\n",
                        val);
                return CLEW_EXIT_BADINPUT;
            }
            break;
        default:
            break;
        }
    }
    if (args.exit_code >= 0) {
        return args.exit_code;
    }
    if (id_arg == NULL) {
        return clew__cli_usage_error(spec, "'clew trace' needs a trace id.");
    }
    char id[33];
    if (!valid_trace_id(id_arg, id)) {
        fprintf(stderr,
                "clew: '%s' is not a trace id; a trace id is 1 to 32 hex digits, not all zero.\n",
                id_arg);
        return CLEW_EXIT_BADINPUT;
    }

    clew_http_client *client = NULL;
    int code = clew__http_open(server, &client);
    if (code != CLEW_EXIT_OK) {
        return code;
    }
    char path[64];
    snprintf(path, sizeof(path), "/api/v3/traces/%s", id);
    clew_http_response resp;
    clew__http_response_init(&resp);
    clew_status st = clew__http_get(client, path, &resp);
    if (st != CLEW_OK) {
        code = clew__http_report_failure(client, st, &resp);
    } else if (resp.status == 404) {
        fprintf(stderr, "clew: trace %s not found on %s\n", id, clew__http_client_base(client));
        code = CLEW_EXIT_NOTFOUND;
    } else if (resp.status != 200) {
        code = clew__http_report_status(client, &resp);
    } else if (json) {
        code = print_json(&resp);
    } else {
        clew_trace_view tv;
        clew__tv_init(&tv);
        clew_error err;
        memset(&err, 0, sizeof(err));
        st = clew__tv_parse_v3_json(resp.body.data, resp.body.len, &tv, &err);
        if (st == CLEW_ENOTFOUND) {
            fprintf(stderr, "clew: trace %s not found on %s (the server returned no spans)\n", id,
                    clew__http_client_base(client));
            code = CLEW_EXIT_NOTFOUND;
        } else if (st != CLEW_OK) {
            fprintf(stderr, "clew: cannot read the trace from %s: %s.\n",
                    clew__http_client_base(client),
                    st == CLEW_EPARSE ? err.msg : clew_strerror(st));
            code = CLEW_EXIT_IO;
        } else {
            clew_tv_render_opts ro;
            ro.width = width > 0 ? (int)width : clew__cli_terminal_width(STDOUT_FILENO);
            ro.color = !no_color && clew__cli_color_wanted(STDOUT_FILENO);
            ro.header = true;
            ro.footer = true;
            if (clew__tv_render_file(&tv, &ro, stdout) != CLEW_OK) {
                fprintf(stderr, "clew: cannot write to standard output.\n");
                code = CLEW_EXIT_IO;
            }
        }
        clew__tv_deinit(&tv);
    }
    clew__http_response_deinit(&resp);
    clew__http_client_destroy(client);
    return code;
}
