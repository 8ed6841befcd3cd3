/*
 * src/cli/main.c - the `clew` command: global help and version, and dispatch to
 * the subcommands (commands.h).
 *
 * The command table below is the single list of subcommands; `clew --help` is
 * generated from it and from each command's option table (cli_options.h).
 */
#include <stdio.h>
#include <string.h>

#include "clew/clew.h"
#include "cli/cli_options.h"
#include "cli/commands.h"

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command;

/* `serve` lives with the server and parses its own options; its summary is here. */
static const command commands[] = {
    {"serve", "run the server: receive OTLP spans, store them, answer queries", clew__cmd_serve},
    {"trace", NULL, clew__cmd_trace},
    {"search", NULL, clew__cmd_search},
    {"services", NULL, clew__cmd_services},
    {"store", "check an embedded store's files offline: clew store verify|stats", clew__cmd_store},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char *summary_of(const command *c)
{
    if (c->summary != NULL) {
        return c->summary;
    }
    const clew_cli_spec *specs[] = {&clew__trace_spec, &clew__search_spec, &clew__services_spec};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        if (strcmp(specs[i]->name, c->name) == 0) {
            return specs[i]->summary;
        }
    }
    return "";
}

static void print_usage(FILE *f)
{
    fprintf(f, "Usage: clew COMMAND [options]\n"
               "       clew help COMMAND | clew --help | clew --version\n");
}

static void print_help(FILE *f)
{
    print_usage(f);
    fprintf(f, "\nclew is a distributed tracing server and its command line client.\n"
               "\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(f, "  %-10s %s\n", commands[i].name, summary_of(&commands[i]));
    }
    fprintf(f, "  %-10s %s\n", "help", "show the options of a command (clew help trace)");
    fprintf(f, "\nOptions:\n"
               "  -h, --help      show this help\n"
               "  -V, --version   print the version\n"
               "\nEnvironment:\n"
               "  CLEW_SERVER     server the client commands ask when --server is not given\n"
               "                  (default http://127.0.0.1:16686)\n"
               "  NO_COLOR        when set and not empty, never print ANSI colours\n"
               "  COLUMNS         output width when it cannot be read from the terminal\n"
               "\nExit codes:\n"
               "  0  success\n"
               "  1  nothing found (no such trace, no matching traces, no services)\n"
               "  2  usage error (unknown command or option, missing argument)\n"
               "  3  the server cannot be reached, or another I/O error\n"
               "  4  bad input (malformed trace id, duration, tag or number)\n"
               "\nRun 'clew COMMAND --help' for the options of a command.\n");
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static int unknown_command(const char *name)
{
    fprintf(stderr, "clew: '%s' is not a clew command.\n", name);
    print_usage(stderr);
    fprintf(stderr, "Run 'clew --help' for the list of commands.\n");
    return CLEW_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "clew: no command given.\n");
        print_usage(stderr);
        fprintf(stderr, "Run 'clew --help' for the list of commands.\n");
        return CLEW_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        print_help(stdout);
        return CLEW_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
        printf("clew %s\n", clew_version_string());
        return CLEW_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc == 2) {
            print_help(stdout);
            return CLEW_EXIT_OK;
        }
        const command *c = find_command(argv[2]);
        if (c == NULL) {
            return unknown_command(argv[2]);
        }
        /* Every command answers --help from its own option table. */
        char help_flag[] = "--help";
        char *sub_argv[] = {argv[2], help_flag, NULL};
        return c->run(2, sub_argv);
    }
    if (cmd[0] == '-') {
        fprintf(stderr, "clew: unknown option '%s'; options go after the command.\n", cmd);
        print_usage(stderr);
        return CLEW_EXIT_USAGE;
    }
    const command *c = find_command(cmd);
    if (c == NULL) {
        return unknown_command(cmd);
    }
    return c->run(argc - 1, argv + 1);
}
