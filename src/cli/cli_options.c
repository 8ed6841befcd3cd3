/*
 * src/cli/cli_options.c - the table-driven option parser and help printer; see
 * cli_options.h.
 *
 * Accepted forms: "--name value", "--name=value", "-x value", "-xvalue", flags
 * "--name" and "-x", and "--" to end the options. Options and positional
 * arguments may be mixed in any order.
 */
#include "cli/cli_options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/commands.h"

static const clew_cli_opt help_opt = {CLEW_CLI_OPT_HELP, "help", 'h', NULL, "show this help"};

void clew__cli_parser_init(clew_cli_parser *p, const clew_cli_spec *spec, int argc, char **argv)
{
    p->spec = spec;
    p->argc = argc;
    p->argv = argv;
    p->i = 1;
    p->only_pos = false;
}

static const clew_cli_opt *find_long(const clew_cli_spec *spec, const char *name, size_t len)
{
    for (size_t k = 0; k < spec->n_opts; k++) {
        const char *ln = spec->opts[k].long_name;
        if (strlen(ln) == len && memcmp(ln, name, len) == 0) {
            return &spec->opts[k];
        }
    }
    if (len == 4 && memcmp(name, "help", 4) == 0) {
        return &help_opt;
    }
    return NULL;
}

static const clew_cli_opt *find_short(const clew_cli_spec *spec, char c)
{
    for (size_t k = 0; k < spec->n_opts; k++) {
        if (spec->opts[k].short_name == c) {
            return &spec->opts[k];
        }
    }
    return c == 'h' ? &help_opt : NULL;
}

clew_cli_next clew__cli_next(clew_cli_parser *p, const clew_cli_opt **opt, const char **value)
{
    *opt = NULL;
    *value = NULL;
    if (p->i >= p->argc) {
        return CLEW_CLI_DONE;
    }
    const char *a = p->argv[p->i++];
    if (p->only_pos || a[0] != '-' || a[1] == '\0') {
        *value = a; /* "-" alone is a positional argument by convention */
        return CLEW_CLI_POSITIONAL;
    }
    if (strcmp(a, "--") == 0) {
        p->only_pos = true;
        return clew__cli_next(p, opt, value);
    }
    const clew_cli_opt *o;
    const char *inline_val = NULL;
    if (a[1] == '-') {
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        o = find_long(p->spec, name, len);
        if (o == NULL) {
            clew__cli_usage_error(p->spec, "unknown option '--%.*s' for 'clew %s'.", (int)len, name,
                                  p->spec->name);
            return CLEW_CLI_ERROR;
        }
        if (eq != NULL) {
            if (o->arg == NULL) {
                clew__cli_usage_error(p->spec, "option '--%s' takes no value.", o->long_name);
                return CLEW_CLI_ERROR;
            }
            inline_val = eq + 1;
        }
    } else {
        o = find_short(p->spec, a[1]);
        if (o == NULL) {
            clew__cli_usage_error(p->spec, "unknown option '-%c' for 'clew %s'.", a[1],
                                  p->spec->name);
            return CLEW_CLI_ERROR;
        }
        if (a[2] != '\0') {
            if (o->arg == NULL) {
                clew__cli_usage_error(p->spec, "option '-%c' takes no value (got '%s').", a[1], a);
                return CLEW_CLI_ERROR;
            }
            inline_val = a + 2;
        }
    }
    *opt = o;
    if (o->arg != NULL) {
        if (inline_val == NULL) {
            if (p->i >= p->argc) {
                clew__cli_usage_error(p->spec, "option '--%s' needs a value (%s).", o->long_name,
                                      o->arg);
                return CLEW_CLI_ERROR;
            }
            inline_val = p->argv[p->i++];
        }
        *value = inline_val;
    }
    return CLEW_CLI_OPTION;
}

void clew__cli_args_init(clew_cli_args *a, const clew_cli_spec *spec, int argc, char **argv)
{
    clew__cli_parser_init(&a->p, spec, argc, argv);
    a->opt = NULL;
    a->val = NULL;
    a->exit_code = -1;
}

bool clew__cli_args_next(clew_cli_args *a)
{
    switch (clew__cli_next(&a->p, &a->opt, &a->val)) {
    case CLEW_CLI_DONE:
        a->exit_code = -1;
        return false;
    case CLEW_CLI_ERROR:
        a->exit_code = CLEW_EXIT_USAGE;
        return false;
    case CLEW_CLI_POSITIONAL:
        return true;
    case CLEW_CLI_OPTION:
        break;
    }
    if (a->opt->id == CLEW_CLI_OPT_HELP) {
        clew__cli_print_help(a->p.spec, stdout);
        a->exit_code = CLEW_EXIT_OK;
        return false;
    }
    return true;
}

static void print_usage_line(const clew_cli_spec *spec, FILE *f)
{
    fprintf(f, "Usage: clew %s%s%s [options]\n", spec->name, spec->args[0] ? " " : "", spec->args);
}

void clew__cli_print_help(const clew_cli_spec *spec, FILE *f)
{
    print_usage_line(spec, f);
    fprintf(f, "\n%s\n\nOptions:\n", spec->describe);
    /* Align the help texts after the longest "-x, --name ARG". */
    size_t col = 0;
    for (size_t k = 0; k <= spec->n_opts; k++) {
        const clew_cli_opt *o = k < spec->n_opts ? &spec->opts[k] : &help_opt;
        size_t w = 6 + strlen(o->long_name) + (o->arg ? 1 + strlen(o->arg) : 0);
        col = w > col ? w : col;
    }
    for (size_t k = 0; k <= spec->n_opts; k++) {
        const clew_cli_opt *o = k < spec->n_opts ? &spec->opts[k] : &help_opt;
        char left[128];
        if (o->short_name) {
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->long_name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
        } else {
            snprintf(left, sizeof(left), "    --%s%s%s", o->long_name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        }
        fprintf(f, "  %-*s  %s\n", (int)col, left, o->help);
    }
    if (spec->examples != NULL) {
        fprintf(f, "\nExamples:\n%s", spec->examples);
    }
    fprintf(f, "\nExit codes: 0 ok, 1 nothing found, 2 usage error, 3 server unreachable or I/O "
               "error, 4 bad input.\n");
}

int clew__cli_usage_error(const clew_cli_spec *spec, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("clew: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    print_usage_line(spec, stderr);
    fprintf(stderr, "Run 'clew %s --help' for the options.\n", spec->name);
    return CLEW_EXIT_USAGE;
}

bool clew__cli_parse_long(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

int clew__cli_terminal_width(int fd)
{
    struct winsize ws;
    if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    long cols;
    if (clew__cli_parse_long(getenv("COLUMNS"), 1, 100000, &cols)) {
        return (int)cols;
    }
    return 100;
}

bool clew__cli_color_wanted(int fd)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(fd) && (nc == NULL || nc[0] == '\0');
}
