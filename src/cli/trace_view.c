/*
 * src/cli/trace_view.c - trace tree, critical path, bottleneck and the text
 * waterfall; see trace_view.h.
 *
 * Everything here is iterative (no recursion over the tree) so a trace shaped
 * like a million-deep chain cannot exhaust the stack.
 */
#include "cli/trace_view.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"

/* ---- small helpers ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/*
 * A copy of `s` that is safe to print on a terminal: control characters (C0,
 * DEL and the C1 range, which some terminals obey as escape sequences) and bytes
 * that are not valid UTF-8 become '?'. Span names come from whoever sent the
 * spans, so they must not be able to move the cursor or change colours.
 */
static char *sanitize_dup(const char *s)
{
    if (s == NULL) {
        s = "";
    }
    size_t len = strlen(s);
    char *out = clew__malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq_len(p + i);
        if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7F)) ||
            (n == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0)) {
            out[o++] = '?';
            i += n ? n : 1;
            continue;
        }
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
    return out;
}

size_t clew__tv_display_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) != 0x80) {
            w++;
        }
    }
    return w;
}

/* Byte length of the longest prefix of s that is at most `cols` columns wide. */
static size_t prefix_bytes_for_width(const char *s, size_t cols)
{
    size_t w = 0;
    size_t i = 0;
    while (s[i]) {
        size_t n = 1;
        while (s[i + n] && ((unsigned char)s[i + n] & 0xC0) == 0x80) {
            n++;
        }
        if (w + 1 > cols) {
            break;
        }
        w++;
        i += n;
    }
    return i;
}

/* Normalises a span id of 0-16 hex digits to 16 lowercase digits ("" for an
 * empty or all-zero id). False for anything else. */
static bool norm_span_id(const char *in, char out[17])
{
    size_t len = in ? strlen(in) : 0;
    out[0] = '\0';
    if (len == 0) {
        return true;
    }
    if (len > 16) {
        return false;
    }
    bool zero = true;
    size_t pad = 16 - len;
    for (size_t i = 0; i < 16; i++) {
        char c = i < pad ? '0' : in[i - pad];
        if (c >= 'A' && c <= 'F') {
            c = (char)(c - 'A' + 'a');
        }
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            out[0] = '\0';
            return false;
        }
        if (c != '0') {
            zero = false;
        }
        out[i] = c;
    }
    out[16] = '\0';
    if (zero) {
        out[0] = '\0';
    }
    return true;
}

/* ---- the model ---------------------------------------------------------- */

void clew__tv_init(clew_trace_view *tv)
{
    memset(tv, 0, sizeof(*tv));
    tv->root = CLEW_TV_NONE;
    tv->bottleneck = CLEW_TV_NONE;
}

void clew__tv_deinit(clew_trace_view *tv)
{
    for (size_t i = 0; i < tv->n; i++) {
        clew__free(tv->spans[i].service);
        clew__free(tv->spans[i].operation);
        clew__free(tv->spans[i].status_message);
    }
    clew__free(tv->spans);
    clew__free(tv->order);
    for (size_t i = 0; i < tv->n_meta; i++) {
        clew__free(tv->meta[i]);
    }
    clew__free(tv->meta);
    clew__tv_init(tv);
}

clew_status clew__tv_add_span(clew_trace_view *tv, const clew_tv_span_in *in)
{
    char sid[17], pid[17];
    if (!norm_span_id(in->span_id, sid) || !norm_span_id(in->parent_id, pid)) {
        return CLEW_EINVAL;
    }
    if (tv->n == tv->cap) {
        size_t cap = tv->cap ? tv->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(clew_tv_span)) {
            return CLEW_ENOMEM;
        }
        clew_tv_span *p = clew__realloc(tv->spans, cap * sizeof(*p));
        if (p == NULL) {
            return CLEW_ENOMEM;
        }
        tv->spans = p;
        tv->cap = cap;
    }
    clew_tv_span *s = &tv->spans[tv->n];
    memset(s, 0, sizeof(*s));
    s->service = sanitize_dup(in->service);
    s->operation = sanitize_dup(in->operation);
    s->status_message = sanitize_dup(in->status_message);
    if (s->service == NULL || s->operation == NULL || s->status_message == NULL) {
        clew__free(s->service);
        clew__free(s->operation);
        clew__free(s->status_message);
        return CLEW_ENOMEM;
    }
    memcpy(s->span_id, sid, sizeof(sid));
    memcpy(s->parent_id, pid, sizeof(pid));
    s->start_ns = in->start_ns;
    s->end_ns = in->end_ns < in->start_ns ? in->start_ns : in->end_ns;
    s->kind = in->kind;
    s->error = in->error;
    s->parent = CLEW_TV_NONE;
    tv->n++;
    return CLEW_OK;
}

clew_status clew__tv_add_meta(clew_trace_view *tv, const char *key, const char *value)
{
    clew_buf b;
    clew__buf_init(&b, 4096);
    if (clew__buf_printf(&b, "%s: %s", key, value) != CLEW_OK) {
        /* Over-long metadata is cut rather than refused: it is informational. */
        clew__buf_deinit(&b);
        clew__buf_init(&b, 0);
        if (clew__buf_printf(&b, "%.200s: %.1000s", key, value) != CLEW_OK) {
            clew__buf_deinit(&b);
            return CLEW_ENOMEM;
        }
    }
    char *line = sanitize_dup(b.data ? b.data : "");
    clew__buf_deinit(&b);
    if (line == NULL) {
        return CLEW_ENOMEM;
    }
    char **m = clew__realloc(tv->meta, (tv->n_meta + 1) * sizeof(*m));
    if (m == NULL) {
        clew__free(line);
        return CLEW_ENOMEM;
    }
    tv->meta = m;
    tv->meta[tv->n_meta++] = line;
    return CLEW_OK;
}

/* ---- building ----------------------------------------------------------- */

/* Sort context for qsort_r (glibc; _GNU_SOURCE is set project-wide), so the
 * comparators need no global state. */
typedef struct sort_ctx {
    const clew_tv_span *spans;
    const uint64_t *lo;
    const uint64_t *hi;
} sort_ctx;

static int cmp_by_id(const void *a, const void *b, void *ctx)
{
    const clew_tv_span *spans = ((const sort_ctx *)ctx)->spans;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(spans[x].span_id, spans[y].span_id);
    if (c != 0) {
        return c;
    }
    return x < y ? -1 : x > y;
}

/* Siblings: earlier start first; equal starts: the longer one first; then input order. */
static int cmp_by_start(const void *a, const void *b, void *ctx)
{
    const clew_tv_span *spans = ((const sort_ctx *)ctx)->spans;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    const clew_tv_span *p = &spans[x], *q = &spans[y];
    if (p->start_ns != q->start_ns) {
        return p->start_ns < q->start_ns ? -1 : 1;
    }
    if (p->end_ns != q->end_ns) {
        return p->end_ns > q->end_ns ? -1 : 1;
    }
    return x < y ? -1 : x > y;
}

/* Critical path candidates: latest (clipped) end first; equal ends: the one that
 * covers more (earlier clipped start) first; then input order. */
static int cmp_by_end_desc(const void *a, const void *b, void *ctx)
{
    const uint64_t *lo = ((const sort_ctx *)ctx)->lo, *hi = ((const sort_ctx *)ctx)->hi;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (hi[x] != hi[y]) {
        return hi[x] > hi[y] ? -1 : 1;
    }
    if (lo[x] != lo[y]) {
        return lo[x] < lo[y] ? -1 : 1;
    }
    return x < y ? -1 : x > y;
}

static size_t find_by_id(const clew_trace_view *tv, const size_t *by_id, const char *id)
{
    size_t lo = 0, hi = tv->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(tv->spans[by_id[mid]].span_id, id) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < tv->n && strcmp(tv->spans[by_id[lo]].span_id, id) == 0) {
        return by_id[lo];
    }
    return CLEW_TV_NONE;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct crit_frame {
    size_t span;
    uint64_t cursor;
    size_t pos; /* next candidate in the span's children sorted by end */
} crit_frame;

/* Scratch arrays of one build; freed together. */
typedef struct build_tmp {
    size_t *by_id;
    size_t *first;  /* CSR: children of i are kids[first[i] .. first[i+1]) */
    size_t *kids;   /* by start */
    size_t *kids_e; /* by clipped end, descending */
    size_t *roots;
    size_t *stack;
    uint8_t *state;
    uint64_t *lo;
    uint64_t *hi;
    crit_frame *frames;
    char **names;
} build_tmp;

static void build_tmp_free(build_tmp *t)
{
    clew__free(t->by_id);
    clew__free(t->first);
    clew__free(t->kids);
    clew__free(t->kids_e);
    clew__free(t->roots);
    clew__free(t->stack);
    clew__free(t->state);
    clew__free(t->lo);
    clew__free(t->hi);
    clew__free(t->frames);
    clew__free(t->names);
}

/* Links every span to its parent and breaks parent cycles (each cycle loses one
 * link, and that span becomes an orphan at the root level). */
static void link_parents(clew_trace_view *tv, build_tmp *t)
{
    size_t n = tv->n;
    for (size_t i = 0; i < n; i++) {
        clew_tv_span *s = &tv->spans[i];
        s->parent = CLEW_TV_NONE;
        s->orphan = false;
        if (s->parent_id[0] == '\0') {
            continue;
        }
        size_t p = find_by_id(tv, t->by_id, s->parent_id);
        if (p == CLEW_TV_NONE || p == i) {
            s->orphan = true;
        } else {
            s->parent = p;
        }
    }
    /* state: 0 unseen, 1 on the current walk, 2 done */
    memset(t->state, 0, n);
    for (size_t i = 0; i < n; i++) {
        size_t depth = 0;
        size_t cur = i;
        while (cur != CLEW_TV_NONE && t->state[cur] == 0) {
            t->state[cur] = 1;
            t->stack[depth++] = cur;
            cur = tv->spans[cur].parent;
        }
        if (cur != CLEW_TV_NONE && t->state[cur] == 1) {
            /* The walk came back to itself: cut the cycle at `cur`. */
            tv->spans[cur].parent = CLEW_TV_NONE;
            tv->spans[cur].orphan = true;
        }
        for (size_t k = 0; k < depth; k++) {
            t->state[t->stack[k]] = 2;
        }
    }
}

/* Children lists (CSR), sorted by start, and the root level. Returns the number
 * of root-level spans. */
static size_t group_children(clew_trace_view *tv, build_tmp *t)
{
    size_t n = tv->n;
    memset(t->first, 0, (n + 1) * sizeof(size_t));
    size_t nroots = 0;
    for (size_t i = 0; i < n; i++) {
        size_t p = tv->spans[i].parent;
        if (p == CLEW_TV_NONE) {
            t->roots[nroots++] = i;
        } else {
            t->first[p + 1]++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        t->first[i + 1] += t->first[i];
    }
    /* reuse `stack` as per-parent fill cursors */
    for (size_t i = 0; i < n; i++) {
        t->stack[i] = t->first[i];
    }
    for (size_t i = 0; i < n; i++) {
        size_t p = tv->spans[i].parent;
        if (p != CLEW_TV_NONE) {
            t->kids[t->stack[p]++] = i;
        }
    }
    sort_ctx ctx = {tv->spans, NULL, NULL};
    qsort_r(t->roots, nroots, sizeof(size_t), cmp_by_start, &ctx);
    for (size_t i = 0; i < n; i++) {
        size_t cnt = t->first[i + 1] - t->first[i];
        if (cnt > 1) {
            qsort_r(t->kids + t->first[i], cnt, sizeof(size_t), cmp_by_start, &ctx);
        }
    }
    return nroots;
}

/* Pre-order depth-first walk: display order, depth, last-child flags, and the
 * children's intervals clipped to their parent's. */
static void walk_tree(clew_trace_view *tv, build_tmp *t, size_t nroots)
{
    size_t out = 0;
    size_t sp = 0;
    for (size_t r = nroots; r-- > 0;) {
        size_t i = t->roots[r];
        tv->spans[i].depth = 0;
        tv->spans[i].last_child = (r == nroots - 1);
        t->lo[i] = tv->spans[i].start_ns;
        t->hi[i] = tv->spans[i].end_ns;
        t->stack[sp++] = i;
    }
    while (sp > 0) {
        size_t i = t->stack[--sp];
        tv->order[out++] = i;
        size_t a = t->first[i], b = t->first[i + 1];
        for (size_t k = b; k-- > a;) {
            size_t c = t->kids[k];
            clew_tv_span *s = &tv->spans[c];
            s->depth = tv->spans[i].depth + 1;
            s->last_child = (k == b - 1);
            uint64_t lo = s->start_ns > t->lo[i] ? s->start_ns : t->lo[i];
            uint64_t hi = s->end_ns < t->hi[i] ? s->end_ns : t->hi[i];
            if (hi < lo) {
                hi = lo; /* entirely outside its parent: nothing to contribute */
            }
            t->lo[c] = lo;
            t->hi[c] = hi;
            t->stack[sp++] = c;
        }
    }
}

static void critical_path(clew_trace_view *tv, build_tmp *t)
{
    size_t n = tv->n;
    memcpy(t->kids_e, t->kids, n * sizeof(size_t));
    sort_ctx ctx = {tv->spans, t->lo, t->hi};
    for (size_t i = 0; i < n; i++) {
        size_t cnt = t->first[i + 1] - t->first[i];
        if (cnt > 1) {
            qsort_r(t->kids_e + t->first[i], cnt, sizeof(size_t), cmp_by_end_desc, &ctx);
        }
        tv->spans[i].critical = false;
        tv->spans[i].crit_self_ns = 0;
    }
    if (tv->root == CLEW_TV_NONE) {
        return;
    }
    size_t sp = 0;
    t->frames[sp++] = (crit_frame){tv->root, t->hi[tv->root], 0};
    tv->spans[tv->root].critical = true;
    while (sp > 0) {
        crit_frame *f = &t->frames[sp - 1];
        size_t a = t->first[f->span], cnt = t->first[f->span + 1] - a;
        size_t pick = CLEW_TV_NONE;
        while (f->pos < cnt) {
            size_t c = t->kids_e[a + f->pos];
            f->pos++;
            /* The cursor only moves back, so a child ending after it is never
             * a candidate again; zero-length (or clipped-away) children cover
             * nothing and are passed over. */
            if (t->hi[c] <= f->cursor && t->hi[c] > t->lo[c]) {
                pick = c;
                break;
            }
        }
        if (pick == CLEW_TV_NONE) {
            tv->spans[f->span].crit_self_ns += f->cursor - t->lo[f->span];
            sp--;
            continue;
        }
        tv->spans[f->span].crit_self_ns += f->cursor - t->hi[pick];
        f->cursor = t->lo[pick];
        tv->spans[pick].critical = true;
        t->frames[sp++] = (crit_frame){pick, t->hi[pick], 0};
    }
}

clew_status clew__tv_build(clew_trace_view *tv)
{
    size_t n = tv->n;
    build_tmp t;
    memset(&t, 0, sizeof(t));
    clew__free(tv->order);
    tv->order = NULL;
    tv->root = CLEW_TV_NONE;
    tv->bottleneck = CLEW_TV_NONE;
    tv->start_ns = tv->end_ns = 0;
    tv->n_services = tv->n_errors = tv->n_orphans = 0;
    if (n == 0) {
        return CLEW_OK;
    }
    tv->order = clew__calloc(n, sizeof(size_t));
    t.by_id = clew__calloc(n, sizeof(size_t));
    t.first = clew__calloc(n + 1, sizeof(size_t));
    t.kids = clew__calloc(n, sizeof(size_t));
    t.kids_e = clew__calloc(n, sizeof(size_t));
    t.roots = clew__calloc(n, sizeof(size_t));
    t.stack = clew__calloc(n, sizeof(size_t));
    t.state = clew__calloc(n, 1);
    t.lo = clew__calloc(n, sizeof(uint64_t));
    t.hi = clew__calloc(n, sizeof(uint64_t));
    t.frames = clew__calloc(n, sizeof(crit_frame));
    t.names = clew__calloc(n, sizeof(char *));
    if (tv->order == NULL || t.by_id == NULL || t.first == NULL || t.kids == NULL ||
        t.kids_e == NULL || t.roots == NULL || t.stack == NULL || t.state == NULL || t.lo == NULL ||
        t.hi == NULL || t.frames == NULL || t.names == NULL) {
        build_tmp_free(&t);
        clew__free(tv->order);
        tv->order = NULL;
        return CLEW_ENOMEM;
    }

    for (size_t i = 0; i < n; i++) {
        t.by_id[i] = i;
    }
    sort_ctx ctx = {tv->spans, NULL, NULL};
    qsort_r(t.by_id, n, sizeof(size_t), cmp_by_id, &ctx);
    link_parents(tv, &t);
    size_t nroots = group_children(tv, &t);
    walk_tree(tv, &t, nroots);

    /* The critical path starts at the earliest true root; a trace whose root
     * never arrived falls back to its earliest orphan. */
    for (size_t r = 0; r < nroots && tv->root == CLEW_TV_NONE; r++) {
        if (!tv->spans[t.roots[r]].orphan) {
            tv->root = t.roots[r];
        }
    }
    if (tv->root == CLEW_TV_NONE) {
        tv->root = t.roots[0];
    }
    critical_path(tv, &t);

    uint64_t best = 0;
    tv->start_ns = UINT64_MAX;
    for (size_t k = 0; k < n; k++) {
        size_t i = tv->order[k];
        const clew_tv_span *s = &tv->spans[i];
        if (s->critical && s->crit_self_ns > best) {
            best = s->crit_self_ns;
            tv->bottleneck = i;
        }
        tv->start_ns = s->start_ns < tv->start_ns ? s->start_ns : tv->start_ns;
        tv->end_ns = s->end_ns > tv->end_ns ? s->end_ns : tv->end_ns;
        tv->n_errors += s->error;
        tv->n_orphans += s->orphan;
        t.names[k] = s->service;
    }
    qsort(t.names, n, sizeof(char *), cmp_str_ptr);
    for (size_t k = 0; k < n; k++) {
        if (k == 0 || strcmp(t.names[k], t.names[k - 1]) != 0) {
            tv->n_services++;
        }
    }
    build_tmp_free(&t);
    return CLEW_OK;
}

/* ---- parsing Jaeger v3 JSON --------------------------------------------- */

/* A 64-bit OTLP JSON integer: a decimal string (the mapping's output form) or a
 * JSON integer (accepted on input). */
static bool json_u64(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0) {
            return false;
        }
        *out = (uint64_t)x;
        return true;
    }
    if (!json_is_string(v)) {
        return false;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 20) {
        return false;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10) {
            return false;
        }
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

static const char *json_str_or(const json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* The value of attribute `key` in an OTLP KeyValue array, or NULL. */
static const json_t *attr_value(const json_t *attrs, const char *key)
{
    size_t i;
    const json_t *kv;
    if (!json_is_array(attrs)) {
        return NULL;
    }
    json_array_foreach(attrs, i, kv)
    {
        const char *k = json_str_or(json_object_get(kv, "key"), NULL);
        if (k != NULL && strcmp(k, key) == 0) {
            return json_object_get(kv, "value");
        }
    }
    return NULL;
}

static bool status_is_error(const json_t *status)
{
    const json_t *code = json_object_get(status, "code");
    if (json_is_integer(code)) {
        return json_integer_value(code) == 2;
    }
    const char *s = json_str_or(code, "");
    return strcmp(s, "STATUS_CODE_ERROR") == 0 || strcmp(s, "2") == 0;
}

static clew_status add_meta_json(clew_trace_view *tv, const char *key, const json_t *v)
{
    char tmp[64];
    const char *text = NULL;
    if (json_is_string(v)) {
        text = json_string_value(v);
        if (text[0] == '\0') {
            return CLEW_OK; /* an unset field, nothing to show */
        }
    } else if (json_is_integer(v)) {
        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = tmp;
    } else if (json_is_real(v)) {
        snprintf(tmp, sizeof(tmp), "%g", json_real_value(v));
        text = tmp;
    } else if (json_is_boolean(v)) {
        text = json_is_true(v) ? "true" : "false";
    } else if (json_is_array(v)) {
        /* e.g. "warnings": ["..."] - one line per string element */
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            if (json_is_string(e) && add_meta_json(tv, key, e) != CLEW_OK) {
                return CLEW_ENOMEM;
            }
        }
        return CLEW_OK;
    } else {
        return CLEW_OK;
    }
    return clew__tv_add_meta(tv, key, text);
}

static clew_status add_meta_object(clew_trace_view *tv, const json_t *obj)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (add_meta_json(tv, key, v) != CLEW_OK) {
            return CLEW_ENOMEM;
        }
    }
    return CLEW_OK;
}

static clew_status parse_span(clew_trace_view *tv, const char *service, const json_t *span,
                              size_t *skipped)
{
    clew_tv_span_in in;
    memset(&in, 0, sizeof(in));
    in.service = service;
    in.operation = json_str_or(json_object_get(span, "name"), "");
    in.span_id = json_str_or(json_object_get(span, "spanId"), "");
    in.parent_id = json_str_or(json_object_get(span, "parentSpanId"), "");
    if (!json_u64(json_object_get(span, "startTimeUnixNano"), &in.start_ns) ||
        !json_u64(json_object_get(span, "endTimeUnixNano"), &in.end_ns)) {
        (*skipped)++;
        return CLEW_OK;
    }
    const json_t *kind = json_object_get(span, "kind");
    if (json_is_integer(kind) && json_integer_value(kind) >= 0 && json_integer_value(kind) <= 5) {
        in.kind = (int)json_integer_value(kind);
    }
    const json_t *status = json_object_get(span, "status");
    in.error = status_is_error(status);
    in.status_message = json_str_or(json_object_get(status, "message"), "");
    const json_t *err_attr = attr_value(json_object_get(span, "attributes"), "error");
    if (json_is_true(json_object_get(err_attr, "boolValue"))) {
        in.error = true;
    }
    clew_status rc = clew__tv_add_span(tv, &in);
    if (rc == CLEW_EINVAL) {
        (*skipped)++;
        return CLEW_OK;
    }
    if (rc == CLEW_OK && tv->trace_id[0] == '\0') {
        const char *tid = json_str_or(json_object_get(span, "traceId"), "");
        size_t tl = strlen(tid);
        if (tl <= 32) {
            size_t k;
            for (k = 0; k < tl; k++) {
                char c = tid[k];
                if (c >= 'A' && c <= 'F') {
                    c = (char)(c - 'A' + 'a');
                }
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                    break;
                }
                tv->trace_id[k] = c;
            }
            tv->trace_id[k == tl ? tl : 0] = '\0';
        }
    }
    return rc;
}

clew_status clew__tv_parse_v3_json(const char *json, size_t len, clew_trace_view *tv,
                                   clew_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (root == NULL) {
        clew__error_set(err, (size_t)(jerr.position < 0 ? 0 : jerr.position),
                        "the server's answer is not valid JSON (%s)", jerr.text);
        return CLEW_EPARSE;
    }
    clew_status rc = CLEW_OK;
    const json_t *result = json_object_get(root, "result");
    const json_t *rss = json_object_get(result, "resourceSpans");
    if (!json_is_object(result) || !json_is_array(rss)) {
        clew__error_set(err, 0, "the server's answer has no \"result.resourceSpans\" array");
        json_decref(root);
        return CLEW_EPARSE;
    }
    size_t skipped = 0;
    size_t i;
    const json_t *rs;
    json_array_foreach(rss, i, rs)
    {
        const json_t *sv = attr_value(
            json_object_get(json_object_get(rs, "resource"), "attributes"), "service.name");
        const char *service = json_str_or(json_object_get(sv, "stringValue"), "unknown_service");
        size_t j;
        const json_t *ss;
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
        {
            size_t k;
            const json_t *span;
            json_array_foreach(json_object_get(ss, "spans"), k, span)
            {
                if (!json_is_object(span)) {
                    skipped++;
                    continue;
                }
                rc = parse_span(tv, service, span, &skipped);
                if (rc != CLEW_OK) {
                    goto out;
                }
            }
        }
    }

    /* Optional trace-level metadata: scalars next to "result", and objects named
     * metadata/traceMetadata/clew at either level. Absent is the normal case. */
    {
        const char *key;
        const json_t *v;
        json_object_foreach(root, key, v)
        {
            if (strcmp(key, "result") == 0) {
                continue;
            }
            if (!json_is_object(v)) {
                rc = add_meta_json(tv, key, v);
            } else if (strcmp(key, "metadata") == 0 || strcmp(key, "traceMetadata") == 0 ||
                       strcmp(key, "clew") == 0) {
                rc = add_meta_object(tv, v);
            }
            if (rc != CLEW_OK) {
                goto out;
            }
        }
        static const char *const inner[] = {"metadata", "traceMetadata", "clew"};
        for (size_t m = 0; m < 3; m++) {
            const json_t *o = json_object_get(result, inner[m]);
            if (json_is_object(o) && (rc = add_meta_object(tv, o)) != CLEW_OK) {
                goto out;
            }
        }
    }
    if (skipped > 0) {
        char num[64];
        snprintf(num, sizeof(num), "%zu malformed span%s not shown", skipped,
                 skipped == 1 ? "" : "s");
        rc = clew__tv_add_meta(tv, "warning", num);
        if (rc != CLEW_OK) {
            goto out;
        }
    }
    if (tv->n == 0) {
        clew__error_set(err, 0, "the trace has no spans");
        rc = CLEW_ENOTFOUND;
        goto out;
    }
    rc = clew__tv_build(tv);
out:
    json_decref(root);
    return rc;
}

/* ---- rendering ---------------------------------------------------------- */

#define ANSI_RESET  "\033[0m"
#define ANSI_BOLD   "\033[1m"
#define ANSI_DIM    "\033[2m"
#define ANSI_RED    "\033[31m"
#define ANSI_YELLOW "\033[1;33m"
#define ANSI_CYAN   "\033[36m"
#define ANSI_ALERT  "\033[1;31m"

#define GLYPH_TEE    "\xe2\x94\x9c\xe2\x94\x80 " /* "├─ " */
#define GLYPH_ELBOW  "\xe2\x94\x94\xe2\x94\x80 " /* "└─ " */
#define GLYPH_PIPE   "\xe2\x94\x82  "            /* "│  " */
#define GLYPH_ORPHAN "?\xe2\x94\x80 "            /* "?─ " */
#define GLYPH_MORE   "\xe2\x80\xa6"              /* "…" */
#define GLYPH_BAR    "\xe2\x96\x88"              /* "█" */
#define GLYPH_CRIT   "\xe2\x97\x8f"              /* "●" */
#define GLYPH_ERR    "\xe2\x9c\x97"              /* "✗" */

#define DUR_W    9 /* "999.99ms" is 8 columns, plus a gap */
#define MARKER_W 3 /* critical, error, space */

static const char SUFFIX_LONG[] = "  <-- here's your problem";
static const char SUFFIX_SHORT[] = "  <--";

typedef struct layout {
    size_t width;
    size_t name_w; /* tree prefix + service + operation */
    size_t bar_w;
    const char *suffix;
    size_t suffix_w;
    size_t max_levels; /* tree levels drawn before the indentation is elided */
    bool color;
} layout;

/* Appends the ANSI sequence only in colour mode. */
static clew_status put_color(clew_buf *out, const layout *L, const char *seq)
{
    return L->color ? clew__buf_puts(out, seq) : CLEW_OK;
}

/* Appends `s` cut to `cols` columns, ending in "…" when it was cut. Adds the
 * number of columns written to *used. */
static clew_status put_trunc(clew_buf *out, const char *s, size_t cols, size_t *used)
{
    size_t w = clew__tv_display_width(s);
    if (w <= cols) {
        *used += w;
        return clew__buf_puts(out, s);
    }
    if (cols == 0) {
        return CLEW_OK;
    }
    size_t nb = prefix_bytes_for_width(s, cols - 1);
    clew_status rc = clew__buf_append(out, s, nb);
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(out, GLYPH_MORE);
    }
    *used += cols;
    return rc;
}

static clew_status put_spaces(clew_buf *out, size_t n)
{
    static const char sp[] = "                                ";
    while (n > 0) {
        size_t k = n < sizeof(sp) - 1 ? n : sizeof(sp) - 1;
        clew_status rc = clew__buf_append(out, sp, k);
        if (rc != CLEW_OK) {
            return rc;
        }
        n -= k;
    }
    return CLEW_OK;
}

/* Columns the tree prefix of a span at `depth` takes. */
static size_t prefix_width(const layout *L, const clew_tv_span *s)
{
    if (s->depth == 0) {
        return s->orphan ? 3 : 0;
    }
    if (s->depth <= L->max_levels) {
        return 3 * s->depth;
    }
    return 1 + 3 * L->max_levels; /* "…" then the last levels */
}

static clew_status layout_compute(const clew_trace_view *tv, const clew_tv_render_opts *o,
                                  layout *L)
{
    L->width = o->width < 20 ? 20 : (size_t)o->width;
    L->color = o->color;
    L->suffix = "";
    L->suffix_w = 0;
    /* Indentation may use at most a third of the name column's share. */
    L->max_levels = (L->width - MARKER_W - 1 - DUR_W - 1) / 9;
    if (L->max_levels < 1) {
        L->max_levels = 1;
    } else if (L->max_levels > 64) {
        L->max_levels = 64; /* put_prefix's flag array */
    }
    size_t natural = 0;
    for (size_t i = 0; i < tv->n; i++) {
        const clew_tv_span *s = &tv->spans[i];
        size_t w = prefix_width(L, s) + clew__tv_display_width(s->service) + 2 +
                   clew__tv_display_width(s->operation);
        natural = w > natural ? w : natural;
    }
    /* The bottleneck row's suffix is reserved on every row so all rows share one
     * time axis. The full sentence when it leaves the names whole and the bar at
     * least 16 columns (or the terminal is wide anyway), else a bare arrow. */
    size_t fixed = MARKER_W + 1 + DUR_W + 1;
    if (tv->bottleneck != CLEW_TV_NONE) {
        if (L->width >= 100 || L->width >= fixed + (sizeof(SUFFIX_LONG) - 1) + natural + 16) {
            L->suffix = SUFFIX_LONG;
        } else if (L->width >= 40) {
            L->suffix = SUFFIX_SHORT;
        }
        L->suffix_w = strlen(L->suffix);
    }
    size_t avail = L->width - fixed - L->suffix_w;
    /* The name column gets what it needs up to 60% of the room; the bar the rest. */
    size_t cap = avail * 3 / 5;
    if (cap < 12) {
        cap = avail < 12 ? avail : 12;
    }
    L->name_w = natural < cap ? natural : cap;
    L->bar_w = avail - L->name_w;
    if (L->bar_w < 4) {
        /* Too narrow for a meaningful bar: give its room to the names. */
        L->name_w = avail;
        L->bar_w = 0;
    }
    return CLEW_OK;
}

/* Tree prefix for the row of span i: "│  " / "   " per ancestor level, then
 * "├─ " or "└─ ". Deep levels beyond max_levels collapse into a leading "…". */
static clew_status put_prefix(const clew_trace_view *tv, const layout *L, size_t i, clew_buf *out,
                              size_t *used)
{
    const clew_tv_span *s = &tv->spans[i];
    clew_status rc = CLEW_OK;
    if (s->depth == 0) {
        if (s->orphan) {
            *used += 3;
            return clew__buf_puts(out, GLYPH_ORPHAN);
        }
        return CLEW_OK;
    }
    size_t shown = s->depth <= L->max_levels ? s->depth : L->max_levels;
    /* Collect last-child flags of the `shown` nearest levels (self first). */
    bool last[64];
    size_t nlast = shown < 64 ? shown : 64;
    size_t cur = i;
    for (size_t k = 0; k < nlast; k++) {
        last[k] = tv->spans[cur].last_child;
        cur = tv->spans[cur].parent;
    }
    if (s->depth > shown) {
        rc = clew__buf_puts(out, GLYPH_MORE);
        *used += 1;
    }
    for (size_t k = nlast; k-- > 1 && rc == CLEW_OK;) {
        rc = clew__buf_puts(out, last[k] ? "   " : GLYPH_PIPE);
        *used += 3;
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(out, last[0] ? GLYPH_ELBOW : GLYPH_TEE);
        *used += 3;
    }
    return rc;
}

/* Bar cells [*b0, *b1) for an interval on the trace's time axis. */
static void bar_cells(const clew_trace_view *tv, const layout *L, uint64_t s, uint64_t e,
                      size_t *b0, size_t *b1)
{
    uint64_t total = tv->end_ns - tv->start_ns;
    if (total == 0) {
        *b0 = 0;
        *b1 = L->bar_w;
        return;
    }
    long double scale = (long double)L->bar_w / (long double)total;
    size_t c0 = (size_t)((long double)(s - tv->start_ns) * scale);
    long double fe = (long double)(e - tv->start_ns) * scale;
    size_t c1 = (size_t)fe;
    if ((long double)c1 < fe) {
        c1++;
    }
    if (c0 >= L->bar_w) {
        c0 = L->bar_w - 1;
    }
    if (c1 > L->bar_w) {
        c1 = L->bar_w;
    }
    if (c1 <= c0) {
        c1 = c0 + 1;
    }
    *b0 = c0;
    *b1 = c1;
}

static clew_status render_row(const clew_trace_view *tv, const layout *L, size_t i, clew_buf *out)
{
    const clew_tv_span *s = &tv->spans[i];
    clew_status rc = CLEW_OK;
    size_t used = 0;

    /* markers */
    if (s->critical) {
        rc = put_color(out, L, ANSI_YELLOW);
        rc = rc ? rc : clew__buf_puts(out, GLYPH_CRIT);
        rc = rc ? rc : put_color(out, L, ANSI_RESET);
    } else {
        rc = clew__buf_putc(out, ' ');
    }
    if (rc == CLEW_OK && s->error) {
        rc = put_color(out, L, ANSI_RED);
        rc = rc ? rc : clew__buf_puts(out, GLYPH_ERR);
        rc = rc ? rc : put_color(out, L, ANSI_RESET);
    } else if (rc == CLEW_OK) {
        rc = clew__buf_putc(out, ' ');
    }
    rc = rc ? rc : clew__buf_putc(out, ' ');

    /* name column: tree, service, operation */
    size_t pw = prefix_width(L, s);
    if (rc == CLEW_OK && pw < L->name_w) {
        rc = put_prefix(tv, L, i, out, &used);
    }
    size_t room = L->name_w > used ? L->name_w - used : 0;
    size_t ws = clew__tv_display_width(s->service);
    size_t wo = clew__tv_display_width(s->operation);
    size_t svc_w = ws, op_w = wo;
    if (ws + 2 + wo > room) {
        /* Each side may keep up to half the room; a side that needs less than
         * half leaves the rest to the other. */
        size_t half = room > 2 ? (room - 2) / 2 : 0;
        if (ws <= half) {
            op_w = room - 2 - ws;
        } else if (wo <= half) {
            svc_w = room - 2 - wo;
        } else {
            svc_w = half;
            op_w = room - 2 - half;
        }
        if (room < 2 + 2 + 2) {
            /* no room for both: the service alone */
            svc_w = room;
            op_w = 0;
        }
    }
    if (rc == CLEW_OK && svc_w > 0) {
        rc = put_color(out, L, ANSI_BOLD);
        rc = rc ? rc : put_trunc(out, s->service, svc_w, &used);
        rc = rc ? rc : put_color(out, L, ANSI_RESET);
    }
    if (rc == CLEW_OK && op_w > 0) {
        rc = clew__buf_puts(out, "  ");
        used += 2;
        rc = rc ? rc : put_color(out, L, s->error ? ANSI_RED : "");
        rc = rc ? rc : put_trunc(out, s->operation, op_w, &used);
        rc = rc ? rc : put_color(out, L, s->error ? ANSI_RESET : "");
    }
    if (rc == CLEW_OK && used < L->name_w) {
        rc = put_spaces(out, L->name_w - used);
    }

    /* duration, right-aligned */
    char dur[32];
    clew__duration_format(s->end_ns - s->start_ns, dur, sizeof(dur));
    size_t dw = clew__tv_display_width(dur);
    rc = rc ? rc : put_spaces(out, 1 + (dw < DUR_W ? DUR_W - dw : 0));
    rc = rc ? rc : clew__buf_puts(out, dur);

    /* bar */
    if (rc == CLEW_OK && L->bar_w > 0) {
        size_t b0, b1;
        bar_cells(tv, L, s->start_ns, s->end_ns, &b0, &b1);
        rc = put_spaces(out, 1 + b0);
        const char *col = s->error ? ANSI_RED : s->critical ? ANSI_YELLOW : ANSI_CYAN;
        rc = rc ? rc : put_color(out, L, col);
        for (size_t c = b0; c < b1 && rc == CLEW_OK; c++) {
            rc = clew__buf_puts(out, GLYPH_BAR);
        }
        rc = rc ? rc : put_color(out, L, ANSI_RESET);
    }
    if (rc == CLEW_OK && i == tv->bottleneck && L->suffix_w > 0) {
        rc = put_color(out, L, ANSI_ALERT);
        rc = rc ? rc : clew__buf_puts(out, L->suffix);
        rc = rc ? rc : put_color(out, L, ANSI_RESET);
    }
    return rc ? rc : clew__buf_putc(out, '\n');
}

/* Appends one plain line cut to the width, optionally wrapped in a colour. */
static clew_status put_line(clew_buf *out, const layout *L, const char *color, const char *text)
{
    size_t used = 0;
    clew_status rc = put_color(out, L, color);
    rc = rc ? rc : put_trunc(out, text, L->width, &used);
    rc = rc ? rc : put_color(out, L, color[0] ? ANSI_RESET : "");
    return rc ? rc : clew__buf_putc(out, '\n');
}

static clew_status render_header(const clew_trace_view *tv, const layout *L, clew_buf *out)
{
    char dur[32];
    clew__duration_format(tv->end_ns - tv->start_ns, dur, sizeof(dur));
    clew_buf line;
    clew__buf_init(&line, 1 << 16);
    clew_status rc = clew__buf_printf(
        &line, "trace %s  %zu span%s  %zu service%s  %s", tv->trace_id[0] ? tv->trace_id : "?",
        tv->n, tv->n == 1 ? "" : "s", tv->n_services, tv->n_services == 1 ? "" : "s", dur);
    if (rc == CLEW_OK && tv->n_errors > 0) {
        rc = clew__buf_printf(&line, "  %zu error%s", tv->n_errors, tv->n_errors == 1 ? "" : "s");
    }
    if (rc == CLEW_OK && tv->n_orphans > 0) {
        rc =
            clew__buf_printf(&line, "  %zu orphan%s", tv->n_orphans, tv->n_orphans == 1 ? "" : "s");
    }
    rc = rc ? rc : put_line(out, L, ANSI_BOLD, line.data);
    for (size_t m = 0; m < tv->n_meta && rc == CLEW_OK; m++) {
        clew__buf_reset(&line);
        rc = clew__buf_printf(&line, "  %s", tv->meta[m]);
        rc = rc ? rc : put_line(out, L, ANSI_DIM, line.data);
    }
    /* Time axis: "0" under the bar's first cell, the total at its last. */
    if (rc == CLEW_OK && L->bar_w >= clew__tv_display_width(dur) + 3) {
        size_t lead = MARKER_W + L->name_w + 1 + DUR_W + 1;
        rc = put_spaces(out, lead);
        rc = rc ? rc : put_color(out, L, ANSI_DIM);
        rc = rc ? rc : clew__buf_putc(out, '0');
        rc = rc ? rc : put_spaces(out, L->bar_w - 1 - clew__tv_display_width(dur));
        rc = rc ? rc : clew__buf_puts(out, dur);
        rc = rc ? rc : put_color(out, L, ANSI_RESET);
        rc = rc ? rc : clew__buf_putc(out, '\n');
    }
    clew__buf_deinit(&line);
    return rc;
}

static clew_status render_footer(const clew_trace_view *tv, const layout *L, clew_buf *out)
{
    clew_buf line;
    clew__buf_init(&line, 1 << 16);
    clew_status rc = CLEW_OK;
    if (tv->bottleneck != CLEW_TV_NONE) {
        const clew_tv_span *b = &tv->spans[tv->bottleneck];
        char self[32];
        clew__duration_format(b->crit_self_ns, self, sizeof(self));
        uint64_t total = tv->end_ns - tv->start_ns;
        unsigned pct = total ? (unsigned)((b->crit_self_ns * 100.0L) / total + 0.5L) : 100;
        rc = clew__buf_printf(&line, "bottleneck: %s: %s, %s self time, %u%% of the trace",
                              b->service, b->operation, self, pct);
        rc = rc ? rc : put_line(out, L, ANSI_ALERT, line.data);
    }
    /* A few error spans by name; the rows already mark all of them. */
    size_t shown = 0;
    for (size_t k = 0; k < tv->n && rc == CLEW_OK; k++) {
        const clew_tv_span *s = &tv->spans[tv->order[k]];
        if (!s->error) {
            continue;
        }
        if (shown == 3) {
            clew__buf_reset(&line);
            rc = clew__buf_printf(&line, "error: ... and %zu more", tv->n_errors - shown);
            rc = rc ? rc : put_line(out, L, ANSI_RED, line.data);
            break;
        }
        clew__buf_reset(&line);
        rc = clew__buf_printf(&line, "error: %s: %s%s%s%s", s->service, s->operation,
                              s->status_message[0] ? " (" : "", s->status_message,
                              s->status_message[0] ? ")" : "");
        rc = rc ? rc : put_line(out, L, ANSI_RED, line.data);
        shown++;
    }
    if (rc == CLEW_OK) {
        clew__buf_reset(&line);
        rc = clew__buf_printf(&line, GLYPH_CRIT " critical path  " GLYPH_ERR " error%s",
                              tv->n_orphans ? "  ?\xe2\x94\x80 parent not in trace" : "");
        rc = rc ? rc : put_line(out, L, ANSI_DIM, line.data);
    }
    clew__buf_deinit(&line);
    return rc;
}

clew_status clew__tv_render(const clew_trace_view *tv, const clew_tv_render_opts *opts,
                            clew_buf *out)
{
    layout L;
    clew_status rc = layout_compute(tv, opts, &L);
    if (rc == CLEW_OK && opts->header) {
        rc = render_header(tv, &L, out);
    }
    for (size_t k = 0; k < tv->n && rc == CLEW_OK; k++) {
        rc = render_row(tv, &L, tv->order[k], out);
    }
    if (rc == CLEW_OK && opts->footer) {
        rc = render_footer(tv, &L, out);
    }
    return rc;
}

clew_status clew__tv_render_file(const clew_trace_view *tv, const clew_tv_render_opts *opts,
                                 FILE *f)
{
    clew_buf b;
    clew__buf_init(&b, 0);
    clew_status rc = clew__tv_render(tv, opts, &b);
    if (rc == CLEW_OK && b.len > 0 && fwrite(b.data, 1, b.len, f) != b.len) {
        rc = CLEW_EIO;
    }
    if (rc == CLEW_OK && fflush(f) != 0) {
        rc = CLEW_EIO;
    }
    clew__buf_deinit(&b);
    return rc;
}
