/*
 * src/server/http.c - libevent (evhttp) listeners, the worker pool and the
 * completion hand-off; see http.h.
 *
 * A request whose client goes away while a worker holds it: libevent 2.1, on EOF
 * or timeout of a connection whose current request has not been answered yet
 * (userdone == 0), unlinks that request from the connection, sets its evcon to
 * NULL and frees only the connection. The request itself stays valid until we
 * call evhttp_send_reply on it, which then frees it instead of writing. So the
 * rule that makes it safe is simple: every request handed to a job is answered
 * exactly once, by done() on the loop thread, and nothing touches it after that.
 * The only other path that frees pending requests is evhttp_free, which runs in
 * clew__http_server_destroy after the workers were joined and every completed
 * job was answered.
 */
#include "server/http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "common/alloc.h"
#include "common/clock.h"

#define MAX_LISTENERS 8
#define CONN_BUCKETS  1024 /* power of two */

typedef struct listener {
    struct evhttp *http;
    struct evhttp_bound_socket *bound; /* NULL once closed */
    clew_http_server *srv;
    clew_http_handler handler;
    void *ud;
    char name[300]; /* HOST:PORT as bound, the `listener` label */
    /* loop thread only */
    uint64_t n_open;    /* connections accepted and not yet closed */
    uint64_t refused;   /* closed at once: max_connections were open */
    uint64_t timed_out; /* closed: no whole request within the deadline */
} listener;

/* One accepted connection (see "connection limits and deadlines" below). */
typedef struct conn_state conn_state;
struct conn_state {
    conn_state *next; /* hash chain, or the unresolved list */
    listener *l;
    struct bufferevent *bev;         /* what our bevcb made for it */
    struct evhttp_connection *evcon; /* NULL until resolved */
    struct event *deadline;
    bool hold;   /* we are freeing the connection ourselves: we free the state */
    bool closed; /* on_conn_close ran */
};

typedef struct worker_thread {
    clew_http_server *srv;
    pthread_t tid;
    bool started;
    clew_http_worker w;
} worker_thread;

struct clew_http_server {
    clew_http_options opts;
    struct event_base *base;
    listener listeners[MAX_LISTENERS];
    size_t n_listeners;

    /* job queue: loop thread -> workers */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    clew_http_job *q_head, *q_tail;
    size_t q_len;
    bool q_quit;   /* workers exit once the queue is empty */
    bool q_cancel; /* workers complete queued jobs without running them */
    bool q_init;

    /* completion queue: any thread -> loop thread */
    pthread_mutex_t c_mu;
    clew_http_job *c_head, *c_tail;
    struct event *c_ev;
    bool c_init;

    worker_thread *workers;
    unsigned n_workers;

    /* connections (loop thread only): unresolved ones (accepted, evcon not yet
     * known) and the rest hashed by evcon */
    conn_state *unresolved;
    struct event *resolve_ev;
    conn_state *conns[CONN_BUCKETS];

    size_t pending; /* submitted, done() not yet run; loop thread only */
    size_t holds;   /* other work the drain waits for (clew__http_hold); loop thread only */
    bool stopping;
    uint64_t stop_deadline_ns;
    struct event *drain_ev;
};

/* connection bookkeeping, defined with the listeners below */
static void resolve_cb(evutil_socket_t fd, short what, void *arg);
static void conn_free(conn_state *st);

/* ---- completion hand-off ---- */

static void run_completions(clew_http_server *s)
{
    pthread_mutex_lock(&s->c_mu);
    clew_http_job *j = s->c_head;
    s->c_head = s->c_tail = NULL;
    pthread_mutex_unlock(&s->c_mu);
    while (j != NULL) {
        clew_http_job *next = j->next;
        s->pending--;
        j->done(j); /* frees j */
        j = next;
    }
}

static void completion_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_completions(arg);
}

void clew__http_complete(clew_http_server *s, clew_http_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&s->c_mu);
    bool was_empty = s->c_head == NULL;
    if (s->c_tail != NULL) {
        s->c_tail->next = job;
    } else {
        s->c_head = job;
    }
    s->c_tail = job;
    pthread_mutex_unlock(&s->c_mu);
    /* one wake-up per batch of completions: the loop takes the whole list */
    if (was_empty) {
        event_active(s->c_ev, EV_READ, 0);
    }
}

/* ---- workers ---- */

static void worker_cleanup(clew_http_worker *w)
{
    clew__arena_reset(&w->arena);
    w->arena.limit = 0;
    /* a job with a huge body must not pin its memory after it is gone */
    if (w->scratch.cap > 4u * 1024 * 1024) {
        clew__buf_deinit(&w->scratch);
    } else {
        clew__buf_reset(&w->scratch);
    }
}

static void *worker_main(void *arg)
{
    worker_thread *t = arg;
    clew_http_server *s = t->srv;
    for (;;) {
        pthread_mutex_lock(&s->q_mu);
        while (s->q_head == NULL && !s->q_quit) {
            pthread_cond_wait(&s->q_cv, &s->q_mu);
        }
        clew_http_job *job = s->q_head;
        if (job == NULL) {
            pthread_mutex_unlock(&s->q_mu);
            break;
        }
        s->q_head = job->next;
        if (s->q_head == NULL) {
            s->q_tail = NULL;
        }
        s->q_len--;
        bool cancel = s->q_cancel;
        pthread_mutex_unlock(&s->q_mu);
        job->next = NULL;
        if (cancel) {
            job->cancelled = true;
            clew__http_complete(s, job);
        } else {
            job->work(job, &t->w);
        }
        worker_cleanup(&t->w);
    }
    return NULL;
}

clew_status clew__http_submit(clew_http_server *s, clew_http_job *job)
{
    if (s->stopping && s->q_cancel) {
        return CLEW_ECLOSED;
    }
    job->next = NULL;
    job->cancelled = false;
    pthread_mutex_lock(&s->q_mu);
    if (s->q_len >= s->opts.max_queued_jobs) {
        pthread_mutex_unlock(&s->q_mu);
        return CLEW_EFULL;
    }
    if (s->q_tail != NULL) {
        s->q_tail->next = job;
    } else {
        s->q_head = job;
    }
    s->q_tail = job;
    s->q_len++;
    pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    s->pending++;
    return CLEW_OK;
}

static void workers_stop(clew_http_server *s, bool cancel)
{
    if (!s->q_init) {
        return;
    }
    pthread_mutex_lock(&s->q_mu);
    s->q_quit = true;
    s->q_cancel = s->q_cancel || cancel;
    pthread_cond_broadcast(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    for (unsigned i = 0; i < s->n_workers; i++) {
        if (s->workers[i].started) {
            pthread_join(s->workers[i].tid, NULL);
            s->workers[i].started = false;
        }
    }
}

/* ---- lifecycle ---- */

clew_status clew__http_server_create(const clew_http_options *opts, clew_http_server **out)
{
    /* libevent locks and cross-thread event_active need this before the base exists */
    if (evthread_use_pthreads() != 0) {
        return CLEW_ENOMEM;
    }
    clew_http_server *s = clew__calloc(1, sizeof(*s));
    if (s == NULL) {
        return CLEW_ENOMEM;
    }
    s->opts = *opts;
    if (s->opts.workers == 0) {
        s->opts.workers = 1;
    }
    if (s->opts.max_queued_jobs == 0) {
        s->opts.max_queued_jobs = 4096;
    }
    if (s->opts.worker_arena_chunk == 0) {
        s->opts.worker_arena_chunk = 256 * 1024;
    }
    s->base = event_base_new();
    if (s->base == NULL) {
        clew__http_server_destroy(s);
        return CLEW_ENOMEM;
    }
    if (pthread_mutex_init(&s->q_mu, NULL) != 0) {
        clew__http_server_destroy(s);
        return CLEW_ENOMEM;
    }
    if (pthread_cond_init(&s->q_cv, NULL) != 0) {
        pthread_mutex_destroy(&s->q_mu);
        clew__http_server_destroy(s);
        return CLEW_ENOMEM;
    }
    s->q_init = true;
    if (pthread_mutex_init(&s->c_mu, NULL) != 0) {
        clew__http_server_destroy(s);
        return CLEW_ENOMEM;
    }
    s->c_init = true;
    s->c_ev = event_new(s->base, -1, EV_PERSIST, completion_cb, s);
    s->resolve_ev = event_new(s->base, -1, 0, resolve_cb, s);
    s->workers = clew__calloc(s->opts.workers, sizeof(*s->workers));
    if (s->c_ev == NULL || s->resolve_ev == NULL || s->workers == NULL) {
        clew__http_server_destroy(s);
        return CLEW_ENOMEM;
    }
    s->n_workers = s->opts.workers;
    for (unsigned i = 0; i < s->n_workers; i++) {
        worker_thread *t = &s->workers[i];
        t->srv = s;
        t->w.index = i;
        clew__arena_init(&t->w.arena, s->opts.worker_arena_chunk, 0);
        clew__buf_init(&t->w.scratch, 0);
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        if (pthread_create(&s->workers[i].tid, NULL, worker_main, &s->workers[i]) != 0) {
            clew__http_server_destroy(s);
            return CLEW_ENOMEM;
        }
        s->workers[i].started = true;
    }
    *out = s;
    return CLEW_OK;
}

void clew__http_server_destroy(clew_http_server *s)
{
    if (s == NULL) {
        return;
    }
    workers_stop(s, true);
    /* answer whatever the workers completed, so no request is left to evhttp_free
     * while a job still points at it */
    if (s->c_init) {
        run_completions(s);
    }
    for (size_t i = 0; i < s->n_listeners; i++) {
        evhttp_free(s->listeners[i].http); /* on_conn_close forgets each connection */
    }
    /* accepted on the last loop turn and never resolved: their bufferevents went
     * with their connections above */
    while (s->unresolved != NULL) {
        conn_state *st = s->unresolved;
        s->unresolved = st->next;
        conn_free(st);
    }
    if (s->resolve_ev != NULL) {
        event_free(s->resolve_ev);
    }
    if (s->drain_ev != NULL) {
        event_free(s->drain_ev);
    }
    if (s->c_ev != NULL) {
        event_free(s->c_ev);
    }
    if (s->workers != NULL) {
        for (unsigned i = 0; i < s->n_workers; i++) {
            clew__arena_deinit(&s->workers[i].w.arena);
            clew__buf_deinit(&s->workers[i].w.scratch);
        }
        clew__free(s->workers);
    }
    if (s->q_init) {
        pthread_cond_destroy(&s->q_cv);
        pthread_mutex_destroy(&s->q_mu);
    }
    if (s->c_init) {
        pthread_mutex_destroy(&s->c_mu);
    }
    if (s->base != NULL) {
        event_base_free(s->base);
    }
    clew__free(s);
}

struct event_base *clew__http_base(clew_http_server *s)
{
    return s->base;
}

/* ---- connection limits and deadlines ----
 *
 * libevent 2.1 has no connection limit and its read timeout restarts on every
 * byte, so a client sending a header byte per second holds a connection forever.
 * evhttp tells us little about connections, so we learn about them this way:
 *   1. evhttp asks our bevcb for a bufferevent for every accepted socket: we make
 *      it, count the connection and note it as unresolved;
 *   2. right after the accept callback (same loop iteration, before any read),
 *      resolve_cb reads the evhttp_connection out of the bufferevent's callback
 *      argument (evhttp registers its callbacks with the connection as argument),
 *      sets the connection's close callback and either closes it (over
 *      max_connections) or arms its deadline;
 *   3. our request callback disarms the deadline while the request is handled and
 *      re-arms it when the reply has been written (on_complete), for the next
 *      request on the keep-alive connection;
 *   4. the close callback, which evhttp calls once whenever it frees the
 *      connection (EOF, error, timeout, reply with close, evhttp_free), forgets it.
 * A deadline that fires frees the connection with evhttp_connection_free; it can
 * only fire while no request of the connection is with a handler or a worker.
 * One gap: if evhttp failed to allocate a request for a just-accepted socket it
 * frees the connection before step 2, without its close callback; we do not
 * survive that out-of-memory case gracefully.
 */

static size_t conn_bucket(const struct evhttp_connection *evcon)
{
    uintptr_t p = (uintptr_t)evcon;
    return (size_t)((p >> 4) ^ (p >> 14)) & (CONN_BUCKETS - 1);
}

static conn_state *conn_find(clew_http_server *s, const struct evhttp_connection *evcon)
{
    if (evcon == NULL) {
        return NULL;
    }
    for (conn_state *c = s->conns[conn_bucket(evcon)]; c != NULL; c = c->next) {
        if (c->evcon == evcon) {
            return c;
        }
    }
    return NULL;
}

static void conn_unlink(clew_http_server *s, conn_state *st)
{
    conn_state **pp = &s->conns[conn_bucket(st->evcon)];
    while (*pp != NULL && *pp != st) {
        pp = &(*pp)->next;
    }
    if (*pp == st) {
        *pp = st->next;
    }
    st->next = NULL;
}

static void conn_free(conn_state *st)
{
    if (st->deadline != NULL) {
        event_free(st->deadline);
    }
    clew__free(st);
}

static void arm_deadline(conn_state *st)
{
    const clew_http_options *o = &st->l->srv->opts;
    if (st->deadline == NULL || o->timeout_ns == 0) {
        return;
    }
    struct timeval tv = {(time_t)(o->timeout_ns / 1000000000u),
                         (suseconds_t)((o->timeout_ns % 1000000000u) / 1000u)};
    (void)event_add(st->deadline, &tv);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn_state *st = arg;
    conn_unlink(st->l->srv, st);
    st->l->n_open--;
    st->closed = true;
    if (!st->hold) {
        conn_free(st);
    }
}

/* Closes a resolved connection from outside evhttp's callbacks and forgets it. */
static void conn_close(conn_state *st)
{
    st->hold = true;
    evhttp_connection_free(st->evcon); /* runs on_conn_close (it leaves st to us) */
    if (!st->closed) {
        conn_unlink(st->l->srv, st);
        st->l->n_open--;
    }
    conn_free(st);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_state *st = arg;
    st->l->timed_out++;
    conn_close(st);
}

static void resolve_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    clew_http_server *s = arg;
    conn_state *list = s->unresolved;
    s->unresolved = NULL;
    while (list != NULL) {
        conn_state *st = list;
        list = st->next;
        st->next = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(st->bev, NULL, NULL, NULL, &cbarg);
        st->evcon = cbarg;
        if (st->evcon == NULL) {
            /* evhttp did not take the bufferevent (cannot happen in 2.1) */
            st->l->n_open--;
            conn_free(st);
            continue;
        }
        size_t b = conn_bucket(st->evcon);
        st->next = s->conns[b];
        s->conns[b] = st;
        evhttp_connection_set_closecb(st->evcon, on_conn_close, st);
        if (s->opts.max_connections != 0 && st->l->n_open > s->opts.max_connections) {
            st->l->refused++;
            conn_close(st);
            continue;
        }
        st->deadline = event_new(s->base, -1, 0, deadline_cb, st);
        arm_deadline(st);
    }
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    listener *l = arg;
    clew_http_server *s = l->srv;
    /* the options evhttp uses when it makes the bufferevent itself */
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (bev == NULL) {
        return NULL; /* evhttp tries on its own and fails the same way */
    }
    conn_state *st = clew__calloc(1, sizeof(*st));
    if (st == NULL) {
        return bev; /* untracked: no limit or deadline for this one */
    }
    st->l = l;
    st->bev = bev;
    st->next = s->unresolved;
    s->unresolved = st;
    l->n_open++;
    event_active(s->resolve_ev, EV_READ, 0);
    return bev;
}

static void on_request_complete(struct evhttp_request *req, void *arg)
{
    conn_state *st = conn_find(arg, evhttp_request_get_connection(req));
    if (st != NULL) {
        arm_deadline(st); /* the next request on this connection */
    }
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    listener *l = arg;
    conn_state *st = conn_find(l->srv, evhttp_request_get_connection(req));
    if (st != NULL && st->deadline != NULL) {
        /* the request is complete: from here on its reply is up to us */
        (void)event_del(st->deadline);
        evhttp_request_set_on_complete_cb(req, on_request_complete, l->srv);
    }
    l->handler(req, l->ud);
}

clew_status clew__http_render_metrics(clew_http_server *s, clew_buf *out)
{
    if (s == NULL) {
        return CLEW_OK;
    }
    static const char *const heads[][3] = {
        {"clew_http_connections", "gauge", "Open connections per HTTP listener."},
        {"clew_http_connections_refused_total", "counter",
         "Connections closed on accept because --max-connections were open."},
        {"clew_http_connections_timed_out_total", "counter",
         "Connections closed because no whole request arrived within --timeout."},
    };
    for (size_t h = 0; h < 3; h++) {
        clew_status rc = clew__buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", heads[h][0],
                                          heads[h][2], heads[h][0], heads[h][1]);
        for (size_t i = 0; rc == CLEW_OK && i < s->n_listeners; i++) {
            const listener *l = &s->listeners[i];
            uint64_t v = h == 0 ? l->n_open : h == 1 ? l->refused : l->timed_out;
            rc = clew__buf_printf(out, "%s{listener=\"%s\"} %llu\n", heads[h][0], l->name,
                                  (unsigned long long)v);
        }
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    pthread_mutex_lock(&s->q_mu);
    size_t depth = s->q_len;
    pthread_mutex_unlock(&s->q_mu);
    return clew__buf_printf(out,
                            "# HELP clew_worker_queue_depth Requests waiting for a worker.\n"
                            "# TYPE clew_worker_queue_depth gauge\n"
                            "clew_worker_queue_depth %zu\n"
                            "# HELP clew_workers Worker threads.\n"
                            "# TYPE clew_workers gauge\n"
                            "clew_workers %u\n",
                            depth, s->n_workers);
}

/* ---- listeners ---- */

int clew__http_open_socket(const clew_listen_addr *addr, char *err, size_t err_size)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)addr->port);
    int gai = getaddrinfo(addr->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_size, "cannot resolve '%s': %s", addr->host, gai_strerror(gai));
        return -1;
    }
    evutil_socket_t fd = -1;
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* Linux copies TCP_NODELAY from the listening socket to every accepted one,
         * so replies never wait on Nagle + delayed ACK (about 40 ms per request on
         * keep-alive connections otherwise) */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) {
            break;
        }
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        char where[300];
        clew__format_listen(addr, where, sizeof(where));
        snprintf(err, err_size, "cannot listen on %s: %s", where, strerror(last_errno));
    }
    return fd;
}

uint16_t clew__http_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

clew_status clew__http_listen(clew_http_server *s, const clew_listen_addr *addr, size_t max_body,
                              clew_http_handler handler, void *ud, uint16_t *port_out, char *err,
                              size_t err_size)
{
    if (addr->off || s->n_listeners == MAX_LISTENERS) {
        snprintf(err, err_size, "no listener to open");
        return CLEW_EINVAL;
    }
    evutil_socket_t fd = clew__http_open_socket(addr, err, err_size);
    if (fd < 0) {
        return CLEW_EIO;
    }
    struct evhttp *http = evhttp_new(s->base);
    if (http == NULL) {
        close(fd);
        snprintf(err, err_size, "out of memory");
        return CLEW_ENOMEM;
    }
    /* the body limit is enforced while the body is read, chunked or not: libevent
     * answers 413 and drops the connection before the rest arrives */
    evhttp_set_max_body_size(http, (ev_ssize_t)max_body);
    evhttp_set_max_headers_size(http, (ev_ssize_t)s->opts.max_headers);
    struct timeval tv = {(time_t)(s->opts.timeout_ns / 1000000000u),
                         (suseconds_t)((s->opts.timeout_ns % 1000000000u) / 1000u)};
    evhttp_set_timeout_tv(http, &tv);
    /* every method reaches the handler, which answers 405 itself with an Allow header */
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                         EVHTTP_REQ_PATCH);
    listener *l = &s->listeners[s->n_listeners];
    l->srv = s;
    l->handler = handler;
    l->ud = ud;
    evhttp_set_gencb(http, request_cb, l);
    evhttp_set_bevcb(http, make_bev, l);
    struct evhttp_bound_socket *b = evhttp_accept_socket_with_handle(http, fd);
    if (b == NULL) {
        close(fd);
        evhttp_free(http);
        snprintf(err, err_size, "cannot accept on the listening socket");
        return CLEW_EIO;
    }
    s->listeners[s->n_listeners].http = http;
    s->listeners[s->n_listeners].bound = b;
    s->n_listeners++;
    clew_listen_addr shown = *addr;
    shown.port = clew__http_bound_port(fd);
    clew__format_listen(&shown, l->name, sizeof(l->name));
    if (port_out != NULL) {
        *port_out = shown.port;
    }
    return CLEW_OK;
}

/* ---- run and stop ---- */

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    clew_http_server *s = arg;
    if ((s->pending == 0 && s->holds == 0) || clew__now_mono_ns() >= s->stop_deadline_ns) {
        event_base_loopbreak(s->base);
    }
}

void clew__http_stop(clew_http_server *s, uint64_t timeout_ns)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    /* stop accepting: new connections are refused by the kernel from now on;
     * open keep-alive connections get 503 from the handlers */
    for (size_t i = 0; i < s->n_listeners; i++) {
        if (s->listeners[i].bound != NULL) {
            evhttp_del_accept_socket(s->listeners[i].http, s->listeners[i].bound);
            s->listeners[i].bound = NULL;
        }
    }
    s->stop_deadline_ns = clew__now_mono_ns() + timeout_ns;
    s->drain_ev = event_new(s->base, -1, EV_PERSIST, drain_cb, s);
    struct timeval tv = {0, 20000};
    if (s->drain_ev == NULL || event_add(s->drain_ev, &tv) != 0) {
        event_base_loopbreak(s->base);
    }
}

bool clew__http_stopping(const clew_http_server *s)
{
    return s->stopping;
}

void clew__http_hold(clew_http_server *s, bool hold)
{
    if (hold) {
        s->holds++;
    } else if (s->holds > 0) {
        s->holds--;
    }
}

size_t clew__http_pending(const clew_http_server *s)
{
    return s->pending;
}

clew_status clew__http_run(clew_http_server *s)
{
    int rc = event_base_dispatch(s->base);
    /* whatever is still queued is cancelled (answered 503); running jobs finish */
    workers_stop(s, true);
    run_completions(s);
    /* give the last replies a chance to reach their sockets */
    (void)event_base_loop(s->base, EVLOOP_NONBLOCK);
    return rc < 0 ? CLEW_EIO : CLEW_OK;
}

/* ---- replies ---- */

/* libevent 2.1's phrase table stops before some codes we send (429 reads "Client
 * Error" there) */
static const char *reason_phrase(int code)
{
    switch (code) {
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return NULL;
    }
}

void clew__http_add_header(struct evhttp_request *req, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), name, value);
}

void clew__http_reply(struct evhttp_request *req, int code, const char *content_type,
                      const void *body, size_t len)
{
    if (content_type != NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    }
    if (len > 0) {
        (void)evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    }
    evhttp_send_reply(req, code, reason_phrase(code), NULL);
}

static void free_ref(const void *data, size_t len, void *extra)
{
    (void)len;
    (void)extra;
    clew__free((void *)data);
}

void clew__http_reply_buf(struct evhttp_request *req, int code, const char *content_type,
                          clew_buf *body)
{
    size_t len = 0;
    char *data = clew__buf_take(body, &len);
    if (content_type != NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    }
    if (data != NULL && len > 0) {
        if (evbuffer_add_reference(evhttp_request_get_output_buffer(req), data, len, free_ref,
                                   NULL) != 0) {
            clew__free(data);
        }
    } else {
        clew__free(data);
    }
    evhttp_send_reply(req, code, reason_phrase(code), NULL);
}

void clew__http_split_uri(struct evhttp_request *req, clew_str *path, clew_str *query)
{
    const char *uri = evhttp_request_get_uri(req);
    if (uri == NULL) {
        uri = "";
    }
    /* absolute-form ("http://host/path") is legal in a request line; skip to the path */
    if (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0) {
        const char *p = strchr(uri + 8, '/');
        uri = p != NULL ? p : "/";
    }
    const char *q = strchr(uri, '?');
    const char *hash = strchr(uri, '#');
    size_t end = strlen(uri);
    if (hash != NULL) {
        end = (size_t)(hash - uri);
    }
    if (q != NULL && (size_t)(q - uri) < end) {
        path->ptr = uri;
        path->len = (size_t)(q - uri);
        query->ptr = q + 1;
        query->len = end - path->len - 1;
    } else {
        path->ptr = uri;
        path->len = end;
        query->ptr = uri + end;
        query->len = 0;
    }
}
