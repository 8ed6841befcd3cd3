/*
 * src/server/config.h - the one configuration of `clew serve`.
 *
 * Every setting lives in clew_server_config with its default. Values come, in
 * this order, from the defaults, a YAML file (--config FILE) and command-line
 * flags, each later source overriding the earlier. Every setting is one row of
 * the option table in config.c (key, type, offset, default, help): the same row
 * drives the YAML loader, the flag parser, `clew serve --help` and
 * `--print-config`, so adding a setting is one line there plus its field here.
 *
 * A bad value is refused with where it came from and why, e.g.
 *   config.yaml:3: max_memory: '12 potatoes' is not a size (use e.g. 512MiB)
 *
 * Ownership: the struct holds no pointers (strings are fixed arrays), so it can
 * be copied freely and needs no deinit.
 * Thread-safety: none; load it once at start, then read it from any thread.
 */
#ifndef CLEW_SERVER_CONFIG_H
#define CLEW_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clew/status.h"

#define CLEW_CONFIG_HOST_MAX     256
#define CLEW_CONFIG_PATH_MAX     1024
#define CLEW_CONFIG_SAMPLING_MAX 256

/* A listener: HOST:PORT, [v6]:PORT, or `off` (not opened). */
typedef struct clew_listen_addr {
    bool off;
    char host[CLEW_CONFIG_HOST_MAX]; /* without brackets for IPv6 */
    uint16_t port;                   /* 0 = the kernel picks one */
} clew_listen_addr;

typedef enum clew_storage_kind {
    CLEW_STORAGE_MEMORY = 0,
    CLEW_STORAGE_EMBEDDED = 1,
} clew_storage_kind;

/* When the embedded store's WAL fsyncs (docs/internals/embedded.md). */
typedef enum clew_fsync_kind {
    CLEW_FSYNC_NEVER = 0,
    CLEW_FSYNC_INTERVAL = 1,
    CLEW_FSYNC_ALWAYS = 2,
} clew_fsync_kind;

typedef enum clew_log_level {
    CLEW_LOG_ERROR = 0,
    CLEW_LOG_WARN = 1,
    CLEW_LOG_INFO = 2,
    CLEW_LOG_DEBUG = 3,
} clew_log_level;

typedef struct clew_server_config {
    clew_listen_addr otlp_http; /* OTLP/HTTP receiver, default 127.0.0.1:4318 */
    clew_listen_addr http;      /* query APIs, /metrics, /healthz; default 127.0.0.1:16686 */
    clew_listen_addr otlp_grpc; /* OTLP/gRPC receiver, default 127.0.0.1:4317 */
    clew_listen_addr zipkin;    /* Zipkin JSON receiver, default 127.0.0.1:9411 */
    char data_dir[CLEW_CONFIG_PATH_MAX];
    clew_storage_kind storage;
    /* embedded store: when the WAL fsyncs, and at most how far apart with interval */
    clew_fsync_kind fsync;
    uint64_t fsync_interval_ns;
    /* embedded store: head cut, retention and disk limit (0 max_disk = 90% of free space) */
    uint64_t block_duration_ns;
    uint64_t block_size;
    uint64_t retention_ns;
    uint64_t max_disk;
    uint64_t max_memory;       /* bytes; split into budgets (clew__config_budgets) */
    uint64_t max_traces;       /* memory store: oldest traces evicted past this */
    uint64_t max_request_body; /* bytes, after decompression too */
    uint64_t max_headers;      /* bytes of request line + headers */
    uint64_t workers;          /* decode/store threads; 0 = number of cores */
    uint64_t timeout_ns;       /* HTTP read/write timeout per connection */
    uint64_t shutdown_timeout_ns;
    uint64_t max_connections; /* open connections per HTTP listener; 0 = no limit */
    /* span limits applied at ingest (limits.h); 0 = no limit */
    uint64_t span_attribute_count_limit;
    uint64_t event_attribute_count_limit;
    uint64_t link_attribute_count_limit;
    uint64_t attribute_value_length_limit; /* bytes */
    uint64_t span_event_count_limit;
    uint64_t span_link_count_limit;
    clew_log_level log_level;
    /* tail sampling: a --sampling preset ("off" or e.g. "errors+slow:500ms+10%"), and the
     * line of the config file's tail_sampling section (0 = none; serve.c parses that
     * section itself, see sampling/sampler.h). Both on is refused by validate. */
    char sampling[CLEW_CONFIG_SAMPLING_MAX];
    uint32_t tail_sampling_line;
} clew_server_config;

/* Whether tail sampling runs (a preset other than off, or a tail_sampling section). */
bool clew__config_sampling_on(const clew_server_config *c);

/* The memory budgets max_memory is split into. */
typedef struct clew_budgets {
    uint64_t ingest;  /* request bodies in flight, their decompressed copies and decode arenas */
    uint64_t store;   /* span data the store holds */
    uint64_t query;   /* query results being built */
    uint64_t sampler; /* traces pending a tail-sampling decision; 0 when sampling is off */
} clew_budgets;

/* Where a config error is described: "file:line: key: reason" or "--flag: reason". */
typedef struct clew_config_error {
    char msg[512];
} clew_config_error;

void clew__config_defaults(clew_server_config *c);

/* Loads a YAML file over `c` (only the keys it names change). Errors: CLEW_EIO
 * (cannot read), CLEW_EPARSE (bad YAML, unknown key, bad value; err has file:line). */
CLEW_NODISCARD clew_status clew__config_load_file(clew_server_config *c, const char *path,
                                                  clew_config_error *err);
/* Reads a whole config file (at most 1MiB) into *out (NUL-terminated; free with
 * clew__free). Errors: CLEW_EIO, CLEW_EPARSE (too large), with err set. */
CLEW_NODISCARD clew_status clew__config_read_file(const char *path, char **out, size_t *out_len,
                                                  clew_config_error *err);
/* The same from memory; `name` is used in messages in place of a file name. */
CLEW_NODISCARD clew_status clew__config_load_buffer(clew_server_config *c, const char *name,
                                                    const char *data, size_t len,
                                                    clew_config_error *err);

/* Sets one key (YAML spelling, e.g. "max_memory") from its text form. `where`
 * prefixes messages ("config.yaml:3" or "--max-memory"). CLEW_ENOTFOUND for an
 * unknown key, CLEW_EPARSE for a bad value. */
CLEW_NODISCARD clew_status clew__config_set(clew_server_config *c, const char *key,
                                            const char *value, const char *where,
                                            clew_config_error *err);

/* Checks settings against each other (e.g. the request limit must fit the ingest
 * budget). CLEW_EINVAL with err set when they do not. */
CLEW_NODISCARD clew_status clew__config_validate(const clew_server_config *c,
                                                 clew_config_error *err);

/* What `clew serve` was asked to do besides serving. */
typedef struct clew_serve_args {
    bool help;
    bool print_config;
    const char *config_path; /* points into argv; NULL when not given */
} clew_serve_args;

/*
 * Parses `clew serve` flags (argv[0] is "serve"): defaults, then --config FILE,
 * then every other flag over it. Flags are `--key VALUE` or `--key=VALUE`, where
 * key is the YAML key with '-' for '_'. Returns CLEW_OK; CLEW_EINVAL for misuse
 * (unknown flag, missing value: exit 2 with usage); CLEW_EPARSE or CLEW_EIO for a
 * bad value or file (exit 2). With --help, stops early with args->help set.
 */
CLEW_NODISCARD clew_status clew__config_from_args(clew_server_config *c, int argc, char **argv,
                                                  clew_serve_args *args, clew_config_error *err);

void clew__config_budgets(const clew_server_config *c, clew_budgets *out);
/* Effective worker count (resolves 0 to the number of cores). */
unsigned clew__config_workers(const clew_server_config *c);

/* Writes `clew serve --help` (generated from the option table). */
void clew__config_print_help(FILE *out);
/* Writes the effective configuration as loadable YAML, then the budgets. */
void clew__config_print(const clew_server_config *c, FILE *out);

/* Parsers shared with tests. A size is a whole number of bytes with an optional
 * unit: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (KiB = 1024, KB = 1000). */
CLEW_NODISCARD clew_status clew__parse_size(const char *s, uint64_t *out);
CLEW_NODISCARD clew_status clew__parse_listen(const char *s, clew_listen_addr *out);
/* "512MiB"-style text for a size (exact when possible). */
void clew__format_size(uint64_t bytes, char *out, size_t out_size);
/* "127.0.0.1:4318", "[::1]:4318" or "off". */
void clew__format_listen(const clew_listen_addr *a, char *out, size_t out_size);

#endif /* CLEW_SERVER_CONFIG_H */
