/*
 * src/cli/commands.h - entry points of the clew subcommands.
 *
 * Each takes the subcommand's own argv (argv[0] is the subcommand name) and
 * returns the process exit code (docs/cli.md: 0 ok, 1 nothing found, 2 usage,
 * 3 server unreachable or I/O, 4 bad input). `serve` lives with the server in
 * src/server/serve.c; the other commands talk to a server over HTTP only.
 */
#ifndef CLEW_CLI_COMMANDS_H
#define CLEW_CLI_COMMANDS_H

#define CLEW_EXIT_OK       0
#define CLEW_EXIT_NOTFOUND 1
#define CLEW_EXIT_USAGE    2
#define CLEW_EXIT_IO       3
#define CLEW_EXIT_BADINPUT 4

int clew__cmd_serve(int argc, char **argv);
int clew__cmd_trace(int argc, char **argv);
int clew__cmd_search(int argc, char **argv);
int clew__cmd_services(int argc, char **argv);
/* src/store/embedded/store_cmd.c: offline verify/stats of an embedded store */
int clew__cmd_store(int argc, char **argv);

#endif /* CLEW_CLI_COMMANDS_H */
