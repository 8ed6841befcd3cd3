/*
 * src/cli/http_client.h - the CLI's only way to talk to a clew server: HTTP GET
 * with libcurl, bounded in time and in size.
 *
 * The base URL comes from --server, else $CLEW_SERVER, else
 * http://127.0.0.1:16686 (clew__http_base_url). Requests time out after 3 s
 * connecting and 30 s in total; an answer larger than CLEW_HTTP_MAX_BODY is
 * refused rather than buffered.
 *
 * Ownership: a client owns a copy of its base URL and its curl handle; responses
 * own their body (clew__http_response_deinit). Strings passed in are copied or
 * only read during the call.
 * Thread-safety: one client per thread. clew__http_client_create initialises
 * libcurl's globals, which is not thread-safe: create clients before starting
 * threads (the CLI has none).
 */
#ifndef CLEW_CLI_HTTP_CLIENT_H
#define CLEW_CLI_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "clew/status.h"
#include "common/buf.h"

#define CLEW_HTTP_DEFAULT_SERVER "http://127.0.0.1:16686"
#define CLEW_HTTP_MAX_BODY       ((size_t)256 << 20)
#define CLEW_HTTP_CONNECT_MS     3000L
#define CLEW_HTTP_TOTAL_MS       30000L

typedef struct clew_http_client clew_http_client;

typedef struct clew_http_response {
    long status;     /* HTTP status; 0 when no answer arrived */
    clew_buf body;   /* owned, NUL-terminated */
    char error[256]; /* transport failure in words ("Connection refused"), else "" */
    bool too_big;    /* the body passed CLEW_HTTP_MAX_BODY */
} clew_http_response;

/* The server to use: `flag` (from --server) if not NULL, else $CLEW_SERVER if set
 * and not empty, else CLEW_HTTP_DEFAULT_SERVER. Borrowed result (one of the inputs
 * or a static string). */
const char *clew__http_base_url(const char *flag);

/*
 * Creates a client for `base_url`. A URL without a scheme gets "http://"; a
 * trailing '/' is dropped. CLEW_EINVAL for a scheme other than http or https or
 * an empty host; CLEW_ENOMEM; CLEW_EIO if libcurl cannot be initialised.
 */
CLEW_NODISCARD clew_status clew__http_client_create(const char *base_url, clew_http_client **out);
/* clew__http_client_create for --server (see clew__http_base_url) as a command
 * needs it: on failure prints why to stderr and returns the exit code
 * (CLEW_EXIT_BADINPUT for an unusable URL, else CLEW_EXIT_IO); CLEW_EXIT_OK on success. */
int clew__http_open(const char *server, clew_http_client **out);
/* NULL is a no-op. */
void clew__http_client_destroy(clew_http_client *c);
/* The normalised base URL (owned by the client). */
const char *clew__http_client_base(const clew_http_client *c);

/* Appends `s` percent-encoded for a URL query value. CLEW_ENOMEM/ETOOBIG. */
CLEW_NODISCARD clew_status clew__http_escape(clew_http_client *c, clew_buf *out, const char *s);

/* Appends "?key=value" (first parameter, when `out` has no '?') or "&key=value",
 * with the value percent-encoded. */
CLEW_NODISCARD clew_status clew__http_add_param(clew_http_client *c, clew_buf *out, const char *key,
                                                const char *value);

void clew__http_response_init(clew_http_response *r);
void clew__http_response_deinit(clew_http_response *r);

/*
 * GETs base URL + `path_and_query` (which starts with '/'). Fills `resp` (which
 * must be initialised). Returns CLEW_OK whenever an HTTP answer arrived, whatever
 * its status; CLEW_ENET when the server could not be reached or the transfer
 * failed (resp->error says why); CLEW_ETIMEDOUT on a timeout; CLEW_ETOOBIG when
 * the body passed CLEW_HTTP_MAX_BODY; CLEW_ENOMEM.
 */
CLEW_NODISCARD clew_status clew__http_get(clew_http_client *c, const char *path_and_query,
                                          clew_http_response *resp);

/* Prints the sentence for a failed clew__http_get (rc != CLEW_OK) to stderr and
 * returns the exit code for it (CLEW_EXIT_IO). */
int clew__http_report_failure(const clew_http_client *c, clew_status rc,
                              const clew_http_response *resp);

/* Prints "clew: the server at URL answered HTTP N: message" for an unexpected
 * status, taking the message from a JSON error body when there is one; returns
 * CLEW_EXIT_BADINPUT for 400 (the server refused our parameters), else
 * CLEW_EXIT_IO. */
int clew__http_report_status(const clew_http_client *c, const clew_http_response *resp);

struct json_t;
/* Writes j to stdout indented by two, keys in order, and a newline; CLEW_EXIT_IO with
 * a message when stdout cannot take it, else CLEW_EXIT_OK. */
int clew__cli_print_json(const struct json_t *j);

#endif /* CLEW_CLI_HTTP_CLIENT_H */
