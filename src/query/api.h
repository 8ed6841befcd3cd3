/*
 * src/query/api.h - the query HTTP APIs (Jaeger v1, Jaeger v3), independent of
 * the HTTP server: the server hands a parsed request in and writes the response
 * out. This keeps the handlers unit-testable without a socket.
 *
 * Thread-safety: clew__api_handle may be called concurrently; it only reads the store.
 */
#ifndef CLEW_QUERY_API_H
#define CLEW_QUERY_API_H

#include "clew/status.h"
#include "clew/types.h"
#include "common/buf.h"
#include "store/store.h"

typedef struct clew_api_request {
    const char *method; /* "GET", ... */
    clew_str path;      /* "/api/traces/abc", percent-encoded as received, no query */
    clew_str query;     /* raw query string after '?', without the '?'; may be empty */
} clew_api_request;

typedef struct clew_api_response {
    int status;               /* HTTP status */
    const char *content_type; /* static string */
    clew_buf body;            /* owned; clew__api_response_deinit frees it */
} clew_api_response;

void clew__api_response_init(clew_api_response *r);
void clew__api_response_deinit(clew_api_response *r);

/*
 * Routes `req` among the query endpoints:
 *   GET /api/traces/{id}, GET /api/traces?..., GET /api/services,
 *   GET /api/services/{service}/operations, GET /api/operations?service=&spanKind=,
 *   GET /api/v3/traces/{id}, GET /api/v3/traces?query.*, GET /api/v3/services,
 *   GET /api/v3/operations.
 * Returns CLEW_ENOTFOUND (response untouched) when the path is none of them, so
 * the server can try its other routes; otherwise CLEW_OK with `resp` filled
 * (including 4xx/5xx answers with a message).
 */
CLEW_NODISCARD clew_status clew__api_handle(clew_store *store, const clew_api_request *req,
                                            clew_api_response *resp);

#endif /* CLEW_QUERY_API_H */
