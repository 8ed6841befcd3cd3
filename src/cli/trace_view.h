/*
 * src/cli/trace_view.h - one trace prepared for the terminal: the span tree, the
 * critical path, the bottleneck, and the text waterfall `clew trace` prints.
 *
 * The model is deliberately small and display-oriented (service, operation,
 * times, parent link, error flag, kind); it is not the server's span model and
 * knows nothing about storage. It is filled either span by span
 * (clew__tv_add_span, used by the unit tests) or from a Jaeger v3 response
 * (clew__tv_parse_v3_json), then clew__tv_build computes the tree, the order of
 * the rows, the critical path and the bottleneck, and clew__tv_render draws it.
 *
 * Ownership: a clew_trace_view owns every string and array it holds; strings
 * passed in are copied. clew__tv_deinit frees everything and leaves an empty view.
 * Thread-safety: a view belongs to one thread at a time (rendering only reads
 * it); nothing here keeps global state, so separate views may be used on
 * separate threads.
 */
#ifndef CLEW_CLI_TRACE_VIEW_H
#define CLEW_CLI_TRACE_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clew/status.h"
#include "common/buf.h"
#include "common/error.h"

/* "No span" in index fields. */
#define CLEW_TV_NONE ((size_t)-1)

/* What the caller supplies for one span. Strings are borrowed for the call and
 * copied; NULL is treated as "". Ids are hex strings; an empty or all-zero
 * parent id means "root span". */
typedef struct clew_tv_span_in {
    const char *service;
    const char *operation;
    const char *span_id;
    const char *parent_id;
    uint64_t start_ns; /* Unix ns */
    uint64_t end_ns;   /* Unix ns; an end before the start is treated as the start */
    int kind;          /* OTLP SpanKind: 0 unspecified .. 5 consumer */
    bool error;        /* status code ERROR (or an error=true attribute) */
    const char *status_message;
} clew_tv_span_in;

typedef struct clew_tv_span {
    /* input (owned copies; names are sanitised: control bytes and invalid UTF-8 become '?') */
    char *service;
    char *operation;
    char *status_message;
    char span_id[17];   /* lowercase hex, "" if absent */
    char parent_id[17]; /* lowercase hex, "" for a root */
    uint64_t start_ns;
    uint64_t end_ns;
    int kind;
    bool error;

    /* computed by clew__tv_build */
    size_t parent;         /* index, or CLEW_TV_NONE at the root level */
    bool orphan;           /* names a parent that is not in the trace (or a cycle) */
    size_t depth;          /* 0 at the root level */
    bool last_child;       /* last among its siblings in display order */
    bool critical;         /* on the critical path */
    uint64_t crit_self_ns; /* time the critical path spends in this span itself */
} clew_tv_span;

typedef struct clew_trace_view {
    char trace_id[33]; /* lowercase hex, "" if unknown */
    clew_tv_span *spans;
    size_t n;
    size_t cap;

    /* computed by clew__tv_build */
    size_t *order;     /* display order: depth-first, children by start time (n entries) */
    size_t root;       /* the earliest root span (critical path start), or CLEW_TV_NONE */
    size_t bottleneck; /* largest self time on the critical path, or CLEW_TV_NONE */
    uint64_t start_ns; /* earliest start over all spans */
    uint64_t end_ns;   /* latest end over all spans */
    size_t n_services;
    size_t n_errors;
    size_t n_orphans;

    /* optional trace-level metadata from the response: "key=value" lines, owned */
    char **meta;
    size_t n_meta;
} clew_trace_view;

void clew__tv_init(clew_trace_view *tv);
void clew__tv_deinit(clew_trace_view *tv);

/* Copies one span into the view. CLEW_EINVAL for a span id or parent id that is
 * not 1-16 hex digits (an empty parent id is fine), CLEW_ENOMEM on allocation failure. */
CLEW_NODISCARD clew_status clew__tv_add_span(clew_trace_view *tv, const clew_tv_span_in *in);

/* Copies one "key=value" line of trace-level metadata (shown under the header). */
CLEW_NODISCARD clew_status clew__tv_add_meta(clew_trace_view *tv, const char *key,
                                             const char *value);

/*
 * Builds the tree and computes everything in the "computed" fields:
 *  - parent links by span id; a span whose parent is missing (or that sits in a
 *    parent cycle) is an orphan shown at the root level;
 *  - siblings ordered by start time (ties: longer first, then input order);
 *  - the critical path from the earliest root: walking back from the span's end,
 *    the child that finished last no later than the cursor is on the path; the
 *    cursor then moves to that child's start; time covered by no chosen child is
 *    the span's own self time. Children are clipped to their parent's interval
 *    first, so a child that outlives its parent counts only up to the parent's end;
 *  - the bottleneck: the span with the largest self time on the path.
 * May be called again after more spans were added. CLEW_ENOMEM on allocation failure.
 */
CLEW_NODISCARD clew_status clew__tv_build(clew_trace_view *tv);

/*
 * Parses a Jaeger v3 GET /api/v3/traces/{id} body ({"result": OTLP JSON TracesData})
 * into `tv` (which must be freshly initialised) and builds it. Top-level members
 * other than "result" whose values are scalars, and the members of an object
 * named "metadata", "traceMetadata" or "clew" (at the top level or inside "result"),
 * become metadata lines. CLEW_EPARSE with `err` filled for malformed JSON or a
 * body of the wrong shape; CLEW_ENOTFOUND for a trace with no spans.
 */
CLEW_NODISCARD clew_status clew__tv_parse_v3_json(const char *json, size_t len, clew_trace_view *tv,
                                                  clew_error *err);

typedef struct clew_tv_render_opts {
    int width;   /* total columns; values below 20 are treated as 20 */
    bool color;  /* emit ANSI colour and bold */
    bool header; /* header line(s) above the rows */
    bool footer; /* bottleneck and error summary below the rows */
} clew_tv_render_opts;

/* Appends the waterfall (header, one row per span, footer) to `out`. The view must
 * have been built. Every line fits `width` display columns (plain or coloured). */
CLEW_NODISCARD clew_status clew__tv_render(const clew_trace_view *tv,
                                           const clew_tv_render_opts *opts, clew_buf *out);

/* Same, written to `f`. CLEW_EIO if the write fails. */
CLEW_NODISCARD clew_status clew__tv_render_file(const clew_trace_view *tv,
                                                const clew_tv_render_opts *opts, FILE *f);

/* Number of terminal columns a UTF-8 string occupies (one per code point). */
size_t clew__tv_display_width(const char *s);

#endif /* CLEW_CLI_TRACE_VIEW_H */
