/*
 * src/cli/cli_options.h - option tables for the clew subcommands, and the one
 * parser and help printer that read them.
 *
 * Each command describes itself as data (clew_cli_spec: name, arguments,
 * summary, options, examples); `clew CMD --help`, `clew help CMD` and the
 * parser are generated from that table, so they cannot drift apart.
 *
 * Ownership: specs are static data; the parser only points into argv.
 * Thread-safety: none needed (the CLI is single-threaded); no global state.
 */
#ifndef CLEW_CLI_CLI_OPTIONS_H
#define CLEW_CLI_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct clew_cli_opt {
    int id;                /* the command's own identifier for the option */
    const char *long_name; /* without the leading "--" */
    char short_name;       /* 0 for none */
    const char *arg;       /* argument name for the help ("URL"), NULL for a flag */
    const char *help;      /* one line */
} clew_cli_opt;

typedef struct clew_cli_spec {
    const char *name;     /* "trace" */
    const char *args;     /* positional synopsis ("ID"), "" for none */
    const char *summary;  /* one line for `clew --help` */
    const char *describe; /* a paragraph for `clew CMD --help` */
    const clew_cli_opt *opts;
    size_t n_opts;
    const char *examples; /* lines, "\n"-separated, or NULL */
} clew_cli_spec;

/* The specs of the commands in this directory (cmd_trace.c, cmd_search.c); main.c
 * lists them in `clew --help`. */
extern const clew_cli_spec clew__trace_spec;
extern const clew_cli_spec clew__search_spec;
extern const clew_cli_spec clew__services_spec;

/* Option id every command uses for -h/--help. */
#define CLEW_CLI_OPT_HELP (-1)

typedef struct clew_cli_parser {
    const clew_cli_spec *spec;
    int argc;
    char **argv;
    int i;         /* next argv index */
    bool only_pos; /* after "--" */
} clew_cli_parser;

typedef enum clew_cli_next {
    CLEW_CLI_DONE = 0,
    CLEW_CLI_OPTION = 1,     /* *opt and (for options with an argument) *value set */
    CLEW_CLI_POSITIONAL = 2, /* *value set */
    CLEW_CLI_ERROR = -1,     /* message and usage line already printed to stderr */
} clew_cli_next;

/* argv[0] is the command name and is skipped. */
void clew__cli_parser_init(clew_cli_parser *p, const clew_cli_spec *spec, int argc, char **argv);
clew_cli_next clew__cli_next(clew_cli_parser *p, const clew_cli_opt **opt, const char **value);

/* A command's walk over its argv: clew__cli_next plus the answers every command
 * gives alike (-h/--help, usage errors). */
typedef struct clew_cli_args {
    clew_cli_parser p;
    const clew_cli_opt *opt; /* the option just read; NULL for a positional argument */
    const char *val;         /* its value (NULL for a flag), or the positional argument */
    int exit_code;           /* once the walk stops: -1 to go on, else what to return */
} clew_cli_args;

void clew__cli_args_init(clew_cli_args *a, const clew_cli_spec *spec, int argc, char **argv);
/* True, with a->opt and a->val set, while there is an option (other than --help) or
 * a positional argument for the command to handle. False at the end of argv
 * (exit_code -1), after printing the help for -h/--help (exit_code CLEW_EXIT_OK) or
 * after a usage error was reported (exit_code CLEW_EXIT_USAGE). */
bool clew__cli_args_next(clew_cli_args *a);

/* The full help (usage, description, options, examples) for `clew CMD --help`. */
void clew__cli_print_help(const clew_cli_spec *spec, FILE *f);
/* "clew: MESSAGE" then "Usage: ..." and a pointer to --help, on stderr. Returns
 * CLEW_EXIT_USAGE, for `return clew__cli_usage_error(...)`. */
int clew__cli_usage_error(const clew_cli_spec *spec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Strict parsers for option values: the whole string must be a number in
 * [min, max]. False otherwise. */
bool clew__cli_parse_long(const char *s, long min, long max, long *out);

/* Columns of the terminal on `fd` (ioctl TIOCGWINSZ), else $COLUMNS, else 100. */
int clew__cli_terminal_width(int fd);

/* True when `fd` is a terminal and NO_COLOR is unset or empty (no-color.org). */
bool clew__cli_color_wanted(int fd);

#endif /* CLEW_CLI_CLI_OPTIONS_H */
