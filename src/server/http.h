/*
 * src/server/http.h - HTTP/1.1 listeners on one libevent loop, plus the worker
 * pool that takes decoding and store work off that loop.
 *
 * Threads: one loop thread runs the event_base: it accepts, reads requests (with
 * the body, chunked or not, capped by max_body while it is read), calls the
 * listener's handler and writes replies. A handler either answers at once
 * (cheap work: routing, 4xx, health, queries on the memory store) or wraps the
 * request in a clew_http_job and submits it. A worker runs job->work, then
 * someone (the worker, or a store callback on any thread) calls
 * clew__http_complete, and the loop thread runs job->done, which replies and
 * frees the job. So every libevent object is only touched on the loop thread.
 *
 * Ownership: the server owns its listeners, workers and queues. A submitted job
 * belongs to the pool until its done() runs; done() must reply to the request
 * (always: even when the client has gone, see http.c) and free the job.
 *
 * Thread-safety: clew__http_complete may be called from any thread; everything
 * else only from the thread that created the server (the loop thread).
 */
#ifndef CLEW_SERVER_HTTP_H
#define CLEW_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "common/arena.h"
#include "common/buf.h"
#include "server/config.h"

struct evhttp_request;
struct event_base;

typedef struct clew_http_server clew_http_server;

/* State a worker thread keeps between jobs, so a job allocates nothing in the
 * steady state: the arena and the scratch buffer are reset after every job
 * (and shrunk back when one job made them large). */
typedef struct clew_http_worker {
    unsigned index;
    clew_arena arena; /* decode arena; the job sets arena.limit before use */
    clew_buf scratch; /* e.g. the gunzipped body */
} clew_http_worker;

typedef struct clew_http_job clew_http_job;

struct clew_http_job {
    clew_http_job *next; /* queue link, owned by http.c */
    /* On a worker thread. Must lead to exactly one clew__http_complete(job), now
     * or later from another thread. If the server is stopping before the job
     * started, `work` is skipped and `cancelled` is set, then done() runs. */
    void (*work)(clew_http_job *job, clew_http_worker *w);
    /* On the loop thread: reply and free the job. */
    void (*done)(clew_http_job *job);
    bool cancelled;
};

/* Handler for every request on one listener; runs on the loop thread. */
typedef void (*clew_http_handler)(struct evhttp_request *req, void *ud);

typedef struct clew_http_options {
    unsigned workers;
    size_t max_headers;
    uint64_t timeout_ns;
    size_t worker_arena_chunk; /* default chunk of each worker's arena */
    size_t max_queued_jobs;    /* submit gives CLEW_EFULL past it */
    /* Open connections per listener; one past it is closed as soon as it is
     * accepted. 0 = no limit. Each connection also gets a deadline of timeout_ns
     * for a whole request (headers and body) to arrive, counted from its accept
     * or the end of its previous reply, so a client trickling bytes (each of
     * which would restart libevent's own read timeout) is cut off. */
    size_t max_connections;
} clew_http_options;

CLEW_NODISCARD clew_status clew__http_server_create(const clew_http_options *opts,
                                                    clew_http_server **out);
/* Stops the workers and frees everything. Call after clew__http_run returned. */
void clew__http_server_destroy(clew_http_server *s);

struct event_base *clew__http_base(clew_http_server *s);

/*
 * Opens a listener on `addr` (must not be off) whose requests go to handler(ud).
 * `max_body` caps request bodies there (413 from libevent while the body is
 * read). The bound port (useful with port 0) goes to *port_out. On failure
 * returns CLEW_EIO with a sentence in err.
 */
CLEW_NODISCARD clew_status clew__http_listen(clew_http_server *s, const clew_listen_addr *addr,
                                             size_t max_body, clew_http_handler handler, void *ud,
                                             uint16_t *port_out, char *err, size_t err_size);

/* The listening socket clew__http_listen uses (non-blocking, SO_REUSEADDR,
 * TCP_NODELAY inherited by accepted sockets), for listeners that are not evhttp
 * (the gRPC receiver). Returns the fd, or -1 with a sentence in err. */
int clew__http_open_socket(const clew_listen_addr *addr, char *err, size_t err_size);
/* The local port a socket is bound to; 0 if unknown. */
uint16_t clew__http_bound_port(int fd);

/* Queues a job for the workers. CLEW_EFULL when max_queued_jobs are waiting,
 * CLEW_ECLOSED when stopping; then the job was not taken. */
CLEW_NODISCARD clew_status clew__http_submit(clew_http_server *s, clew_http_job *job);

/* From any thread: hands a finished job back to the loop thread. */
void clew__http_complete(clew_http_server *s, clew_http_job *job);

/* Runs the loop until clew__http_stop was called and in-flight jobs are answered
 * (or the shutdown timeout passed). */
CLEW_NODISCARD clew_status clew__http_run(clew_http_server *s);

/* Loop thread: closes the listeners and starts the bounded drain. */
void clew__http_stop(clew_http_server *s, uint64_t timeout_ns);
bool clew__http_stopping(const clew_http_server *s);
/* Jobs submitted and not yet done. */
size_t clew__http_pending(const clew_http_server *s);
/* Loop thread: work that is not a job yet but must finish before the drain ends
 * (a gRPC call whose message is still arriving). Every hold(true) is matched by
 * one hold(false). */
void clew__http_hold(clew_http_server *s, bool hold);

/* Appends the HTTP layer's gauges and counters (open, refused and timed-out
 * connections per listener, the worker queue depth) in the Prometheus text
 * format. Loop thread. `s` may be NULL (nothing is written). */
CLEW_NODISCARD clew_status clew__http_render_metrics(clew_http_server *s, clew_buf *out);

/* ---- reply helpers (loop thread) ---- */

/* Sends `len` bytes of `body` (copied) with `content_type` (may be NULL when len is 0). */
void clew__http_reply(struct evhttp_request *req, int code, const char *content_type,
                      const void *body, size_t len);
/* The same, taking over the buffer's memory instead of copying it; `body` is left empty. */
void clew__http_reply_buf(struct evhttp_request *req, int code, const char *content_type,
                          clew_buf *body);
/* Adds a response header before a reply. */
void clew__http_add_header(struct evhttp_request *req, const char *name, const char *value);
/* The request path without its query, and the query (without '?'), as views into
 * the request's URI. */
void clew__http_split_uri(struct evhttp_request *req, clew_str *path, clew_str *query);

#endif /* CLEW_SERVER_HTTP_H */
