/*
 * tests/unit/test_trace_view.c - the CLI's trace view: tree building, sibling
 * order, orphans and cycles, the critical path and bottleneck on hand-built
 * traces, exact plain-text rendering, truncation, and parsing the Jaeger v3
 * JSON fixture (tests/unit/data/trace_v3.json).
 *
 * The CLI sources are not in a library, so the file under test is included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/trace_view.c"

#define MS    1000000ull
#define T0    1700000000000000000ull
#define NONE_ CLEW_TV_NONE

static void add(clew_trace_view *tv, const char *svc, const char *op, const char *id,
                const char *parent, uint64_t start_ms, uint64_t end_ms, bool error)
{
    clew_tv_span_in in;
    memset(&in, 0, sizeof(in));
    in.service = svc;
    in.operation = op;
    in.span_id = id;
    in.parent_id = parent;
    in.start_ns = T0 + start_ms * MS;
    in.end_ns = T0 + end_ms * MS;
    in.error = error;
    assert_int_equal(clew__tv_add_span(tv, &in), CLEW_OK);
}

/* Index of the span with this id (ids in these tests are unique). */
static size_t idx(const clew_trace_view *tv, const char *id)
{
    char norm[17];
    assert_true(norm_span_id(id, norm));
    for (size_t i = 0; i < tv->n; i++) {
        if (strcmp(tv->spans[i].span_id, norm) == 0) {
            return i;
        }
    }
    fail_msg("no span %s", id);
    return NONE_;
}

static uint64_t self_ms(const clew_trace_view *tv, const char *id)
{
    return tv->spans[idx(tv, id)].crit_self_ns / MS;
}

static bool crit(const clew_trace_view *tv, const char *id)
{
    return tv->spans[idx(tv, id)].critical;
}

/* The critical path covers the root's whole duration, split into self times. */
static void assert_path_sums_to_root(const clew_trace_view *tv)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < tv->n; i++) {
        sum += tv->spans[i].crit_self_ns;
        if (!tv->spans[i].critical) {
            assert_int_equal(tv->spans[i].crit_self_ns, 0);
        }
    }
    const clew_tv_span *r = &tv->spans[tv->root];
    assert_int_equal(sum, r->end_ns - r->start_ns);
}

/* Splits rendered text into lines (in place); returns the count. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l != NULL && n < max;
         l = strtok_r(NULL, "\n", &save)) {
        lines[n++] = l;
    }
    return n;
}

/* Display width of a line without its ANSI escape sequences. */
static size_t visible_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == 0x1b) {
            while (*p && *p != 'm') {
                p++;
            }
            if (!*p) {
                break;
            }
            continue;
        }
        w += (*p & 0xC0) != 0x80;
    }
    return w;
}

static char *render(const clew_trace_view *tv, int width, bool color, bool hf)
{
    clew_buf b;
    clew__buf_init(&b, 0);
    clew_tv_render_opts o = {width, color, hf, hf};
    assert_int_equal(clew__tv_render(tv, &o, &b), CLEW_OK);
    return clew__buf_take(&b, NULL);
}

/* ---- tree ---------------------------------------------------------------- */

static void test_tree_and_order(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    /* added out of order: children before their parent, later siblings first */
    add(&tv, "b", "late", "3", "1", 50, 60, false);
    add(&tv, "b", "grandchild", "4", "2", 12, 15, false);
    add(&tv, "a", "root", "1", "", 0, 100, false);
    add(&tv, "c", "early", "2", "1", 10, 20, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);

    assert_int_equal(tv.spans[idx(&tv, "1")].parent, NONE_);
    assert_int_equal(tv.spans[idx(&tv, "2")].parent, idx(&tv, "1"));
    assert_int_equal(tv.spans[idx(&tv, "4")].parent, idx(&tv, "2"));
    assert_int_equal(tv.spans[idx(&tv, "4")].depth, 2);
    /* depth-first, siblings by start time */
    assert_int_equal(tv.order[0], idx(&tv, "1"));
    assert_int_equal(tv.order[1], idx(&tv, "2"));
    assert_int_equal(tv.order[2], idx(&tv, "4"));
    assert_int_equal(tv.order[3], idx(&tv, "3"));
    assert_false(tv.spans[idx(&tv, "2")].last_child);
    assert_true(tv.spans[idx(&tv, "3")].last_child);
    assert_int_equal(tv.root, idx(&tv, "1"));
    assert_int_equal(tv.n_services, 3);
    assert_int_equal(tv.n_orphans, 0);
    assert_int_equal(tv.start_ns, T0);
    assert_int_equal(tv.end_ns, T0 + 100 * MS);
    clew__tv_deinit(&tv);
}

static void test_equal_starts_longer_first(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "a", "root", "1", "", 0, 100, false);
    add(&tv, "a", "short", "2", "1", 10, 20, false);
    add(&tv, "a", "long", "3", "1", 10, 80, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    assert_int_equal(tv.order[1], idx(&tv, "3"));
    assert_int_equal(tv.order[2], idx(&tv, "2"));
    clew__tv_deinit(&tv);
}

static void test_orphans_attach_at_root_level(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "a", "root", "1", "", 0, 100, false);
    add(&tv, "b", "lost", "2", "99", 30, 40, false); /* parent never arrived */
    add(&tv, "b", "lost child", "3", "2", 31, 39, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    const clew_tv_span *lost = &tv.spans[idx(&tv, "2")];
    assert_true(lost->orphan);
    assert_int_equal(lost->parent, NONE_);
    assert_int_equal(lost->depth, 0);
    assert_int_equal(tv.spans[idx(&tv, "3")].parent, idx(&tv, "2"));
    assert_false(tv.spans[idx(&tv, "3")].orphan);
    assert_int_equal(tv.n_orphans, 1);
    /* the critical path starts at the true root, not at the orphan */
    assert_int_equal(tv.root, idx(&tv, "1"));
    assert_false(lost->critical);
    assert_int_equal(tv.order[0], idx(&tv, "1"));
    assert_int_equal(tv.order[1], idx(&tv, "2"));
    assert_int_equal(tv.order[2], idx(&tv, "3"));

    char *out = render(&tv, 80, false, true);
    assert_non_null(strstr(out, "?\xe2\x94\x80 b  lost"));
    assert_non_null(strstr(out, "1 orphan"));
    assert_non_null(strstr(out, "parent not in trace"));
    clew__free(out);
    clew__tv_deinit(&tv);
}

static void test_parent_cycle_is_broken(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "a", "x", "1", "2", 0, 10, false);
    add(&tv, "a", "y", "2", "1", 1, 9, false);
    add(&tv, "a", "self", "3", "3", 2, 3, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    /* every span appears exactly once in the display order */
    int seen[3] = {0, 0, 0};
    for (size_t k = 0; k < tv.n; k++) {
        seen[tv.order[k]]++;
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
    assert_true(tv.spans[idx(&tv, "3")].orphan);
    assert_true(tv.n_orphans >= 2);
    assert_true(tv.root != NONE_);
    clew__tv_deinit(&tv);
}

static void test_bad_ids_rejected(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    clew_tv_span_in in;
    memset(&in, 0, sizeof(in));
    in.span_id = "xyz";
    assert_int_equal(clew__tv_add_span(&tv, &in), CLEW_EINVAL);
    in.span_id = "00112233445566778"; /* 17 digits */
    assert_int_equal(clew__tv_add_span(&tv, &in), CLEW_EINVAL);
    in.span_id = "AbC";
    in.parent_id = "0000000000000000"; /* all-zero parent = root */
    assert_int_equal(clew__tv_add_span(&tv, &in), CLEW_OK);
    assert_string_equal(tv.spans[0].span_id, "0000000000000abc");
    assert_string_equal(tv.spans[0].parent_id, "");
    assert_int_equal(tv.n, 1);
    clew__tv_deinit(&tv);
}

/* ---- critical path ---------------------------------------------------------- */

static void test_critical_sequential(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "a", "root", "1", "", 0, 100, false);
    add(&tv, "b", "first", "2", "1", 10, 40, false);
    add(&tv, "c", "second", "3", "1", 50, 90, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    assert_true(crit(&tv, "1") && crit(&tv, "2") && crit(&tv, "3"));
    assert_int_equal(self_ms(&tv, "1"), 30);
    assert_int_equal(self_ms(&tv, "2"), 30);
    assert_int_equal(self_ms(&tv, "3"), 40);
    assert_int_equal(tv.bottleneck, idx(&tv, "3"));
    assert_path_sums_to_root(&tv);
    clew__tv_deinit(&tv);
}

static void test_critical_parallel(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "a", "root", "1", "", 0, 100, false);
    add(&tv, "b", "slow", "2", "1", 10, 90, false);
    add(&tv, "c", "fast", "3", "1", 20, 60, false); /* runs inside "slow": not blocking */
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    assert_true(crit(&tv, "2"));
    assert_false(crit(&tv, "3"));
    assert_int_equal(self_ms(&tv, "1"), 20);
    assert_int_equal(self_ms(&tv, "2"), 80);
    assert_int_equal(self_ms(&tv, "3"), 0);
    assert_int_equal(tv.bottleneck, idx(&tv, "2"));
    assert_path_sums_to_root(&tv);

    /* the non-critical row has no dot; the critical ones do */
    char *out = render(&tv, 80, false, false);
    char *lines[8];
    size_t n = split_lines(out, lines, 8);
    assert_int_equal(n, 3);
    assert_memory_equal(lines[0], "\xe2\x97\x8f  a  root", 12);
    assert_memory_equal(lines[1], "\xe2\x97\x8f  \xe2\x94\x9c\xe2\x94\x80 b  slow", 19);
    assert_memory_equal(lines[2], "   \xe2\x94\x94\xe2\x94\x80 c  fast", 17);
    clew__free(out);
    clew__tv_deinit(&tv);
}

static void test_critical_child_outlives_parent(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "a", "root", "1", "", 0, 100, false);
    add(&tv, "b", "async", "2", "1", 40, 150, false); /* ends after its parent */
    add(&tv, "b", "inner", "3", "2", 90, 140, false); /* clipped to [90, 100] */
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    assert_true(crit(&tv, "2"));
    /* only the part inside the parent counts */
    assert_int_equal(self_ms(&tv, "1"), 40);
    assert_int_equal(self_ms(&tv, "2"), 50);
    assert_int_equal(self_ms(&tv, "3"), 10);
    assert_int_equal(tv.bottleneck, idx(&tv, "2"));
    assert_path_sums_to_root(&tv);
    /* the trace's extent still includes the overhang */
    assert_int_equal(tv.end_ns - tv.start_ns, 150 * MS);
    clew__tv_deinit(&tv);
}

static void test_critical_single_span(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "solo", "only", "1", "", 5, 25, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    assert_true(crit(&tv, "1"));
    assert_int_equal(self_ms(&tv, "1"), 20);
    assert_int_equal(tv.bottleneck, 0);
    char *out = render(&tv, 80, false, true);
    assert_non_null(strstr(out, "bottleneck: solo: only, 20.00ms self time, 100% of the trace"));
    assert_non_null(strstr(out, "<-- here's your problem"));
    clew__free(out);
    clew__tv_deinit(&tv);
}

static void test_critical_overlapping_children(void **state)
{
    (void)state;
    /* "a" ends after "b" starts: walking back from b's start, a finished too
     * late to be chosen, so the time before b is the root's own. */
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "r", "root", "1", "", 0, 100, false);
    add(&tv, "s", "a", "2", "1", 0, 60, false);
    add(&tv, "s", "b", "3", "1", 50, 100, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    assert_true(crit(&tv, "3"));
    assert_false(crit(&tv, "2"));
    assert_int_equal(self_ms(&tv, "1"), 50);
    assert_int_equal(self_ms(&tv, "3"), 50);
    assert_path_sums_to_root(&tv);
    clew__tv_deinit(&tv);
}

static void test_critical_deep_chain(void **state)
{
    (void)state;
    enum { N = 20000 };
    clew_trace_view tv;
    clew__tv_init(&tv);
    for (int i = 0; i < N; i++) {
        char id[17], parent[17];
        snprintf(id, sizeof(id), "%x", i + 1);
        snprintf(parent, sizeof(parent), "%x", i);
        clew_tv_span_in in;
        memset(&in, 0, sizeof(in));
        in.service = "svc";
        in.operation = "level";
        in.span_id = id;
        in.parent_id = i == 0 ? "" : parent;
        in.start_ns = T0 + (uint64_t)i;
        in.end_ns = T0 + 2ull * N - (uint64_t)i;
        assert_int_equal(clew__tv_add_span(&tv, &in), CLEW_OK);
    }
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    for (size_t i = 0; i < tv.n; i++) {
        assert_true(tv.spans[i].critical);
        assert_int_equal(tv.spans[i].depth, i);
        assert_int_equal(tv.order[i], i);
    }
    assert_int_equal(tv.spans[0].crit_self_ns, 2);
    assert_int_equal(tv.spans[N - 1].crit_self_ns, 2);
    assert_path_sums_to_root(&tv);

    /* rendering stays within the width however deep the tree goes */
    char *out = render(&tv, 100, false, true);
    size_t lines = 0;
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        assert_true(visible_width(l) <= 100);
        lines++;
    }
    assert_true(lines >= (size_t)N);
    clew__free(out);
    clew__tv_deinit(&tv);
}

static void test_bottleneck_is_self_time_not_duration(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    /* the root waits 40ms itself between two 30ms calls; a 90ms background span
     * runs in parallel and finishes first, so it is not on the path */
    add(&tv, "gw", "root", "1", "", 0, 100, false);
    add(&tv, "x", "call x", "2", "1", 0, 30, false);
    add(&tv, "y", "call y", "3", "1", 70, 100, false);
    add(&tv, "z", "background", "4", "1", 1, 91, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    assert_false(crit(&tv, "4"));
    assert_int_equal(self_ms(&tv, "1"), 40);
    assert_int_equal(tv.bottleneck, idx(&tv, "1"));
    assert_path_sums_to_root(&tv);
    clew__tv_deinit(&tv);
}

static void test_zero_length_trace(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "a", "instant", "1", "", 10, 10, false);
    add(&tv, "a", "child", "2", "1", 10, 10, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    assert_int_equal(tv.bottleneck, NONE_);
    char *out = render(&tv, 60, false, true);
    assert_null(strstr(out, "here's your problem"));
    assert_null(strstr(out, "bottleneck:"));
    clew__free(out);
    clew__tv_deinit(&tv);
}

/* ---- rendering -------------------------------------------------------------- */

static void build_small(clew_trace_view *tv)
{
    clew__tv_init(tv);
    memcpy(tv->trace_id, "abc", 4);
    add(tv, "api", "GET /users", "a", "", 0, 100, false);
    add(tv, "db", "SELECT", "b", "a", 10, 60, false);
    add(tv, "cache", "get", "c", "a", 70, 90, true);
    assert_int_equal(clew__tv_build(tv), CLEW_OK);
}

static void test_render_exact_plain(void **state)
{
    (void)state;
    clew_trace_view tv;
    build_small(&tv);
    char *out = render(&tv, 60, false, true);
    /* width 60: suffix "  <--" reserved (5), name column 15 (the widest name,
     * "api  GET /users"), duration 9, bar 26 columns for 100ms: db [10,60] ->
     * cells [2,16), cache [70,90] -> cells [18,24). */
    const char *expect =
        "trace abc  3 spans  3 services  100.00ms  1 error\n"
        "                             0                 100.00ms\n"
        "\xe2\x97\x8f  api  GET /users  100.00ms "
        "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88"
        "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88"
        "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88"
        "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\n"
        "\xe2\x97\x8f  \xe2\x94\x9c\xe2\x94\x80 db  SELECT     50.00ms   "
        "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88"
        "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88"
        "  <--\n"
        "\xe2\x97\x8f\xe2\x9c\x97 \xe2\x94\x94\xe2\x94\x80 cache  get     20.00ms"
        "                   "
        "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\n"
        "bottleneck: db: SELECT, 50.00ms self time, 50% of the trace\n"
        "error: cache: get\n"
        "\xe2\x97\x8f critical path  \xe2\x9c\x97 error\n";
    assert_string_equal(out, expect);
    clew__free(out);
    clew__tv_deinit(&tv);
}

static void test_render_wide_has_full_marker(void **state)
{
    (void)state;
    clew_trace_view tv;
    build_small(&tv);
    char *out = render(&tv, 100, false, false);
    char *lines[4];
    assert_int_equal(split_lines(out, lines, 4), 3);
    /* the marker is on the bottleneck's row and only there */
    assert_null(strstr(lines[0], "<--"));
    assert_non_null(strstr(lines[1], "db  SELECT"));
    const char *m = strstr(lines[1], "\xe2\x96\x88  <-- here's your problem");
    assert_non_null(m);
    assert_string_equal(m + 3, "  <-- here's your problem");
    assert_null(strstr(lines[2], "<--"));
    for (int i = 0; i < 3; i++) {
        assert_true(visible_width(lines[i]) <= 100);
    }
    clew__free(out);
    clew__tv_deinit(&tv);
}

static void test_render_truncates_not_wraps(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "a-service-with-a-really-long-name", "an operation name that goes on and on", "1", "",
        0, 100, false);
    add(&tv, "another-long-service-name", "child operation with long name", "2", "1", 10, 50,
        false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    for (int w = 20; w <= 140; w += 7) {
        char *out = render(&tv, w, false, true);
        if (w <= 80 && strstr(out, "\xe2\x80\xa6") == NULL) {
            fail_msg("width %d: no ellipsis in:\n%s", w, out); /* an ellipsis, not a wrap */
        }
        char *lines[16];
        size_t n = split_lines(out, lines, 16);
        assert_true(n >= 4);
        for (size_t i = 0; i < n; i++) {
            if (visible_width(lines[i]) > (size_t)w) {
                fail_msg("width %d: line %zu is %zu wide: %s", w, i, visible_width(lines[i]),
                         lines[i]);
            }
        }
        clew__free(out);
    }
    clew__tv_deinit(&tv);
}

static void test_render_color_only_when_asked(void **state)
{
    (void)state;
    clew_trace_view tv;
    build_small(&tv);
    char *plain = render(&tv, 80, false, true);
    char *color = render(&tv, 80, true, true);
    assert_null(strchr(plain, '\033'));
    assert_non_null(strstr(color, "\033[31m"));   /* error in red */
    assert_non_null(strstr(color, "\033[1;33m")); /* critical path */
    char *lines[16];
    size_t n = split_lines(color, lines, 16);
    for (size_t i = 0; i < n; i++) {
        assert_true(visible_width(lines[i]) <= 80);
    }
    clew__free(plain);
    clew__free(color);
    clew__tv_deinit(&tv);
}

static void test_render_sanitizes_names(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew__tv_init(&tv);
    add(&tv, "evil\033[2J", "op\nnext\xff\xc2\x9b", "1", "", 0, 10, false);
    assert_int_equal(clew__tv_build(&tv), CLEW_OK);
    char *out = render(&tv, 80, false, true);
    assert_null(strchr(out, '\033'));
    assert_non_null(strstr(out, "evil?[2J  op?next??"));
    clew__free(out);
    clew__tv_deinit(&tv);
}

/* ---- parsing ---------------------------------------------------------------- */

static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/unit/data/%s", CLEW_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    clew_buf b;
    clew__buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        assert_int_equal(clew__buf_append(&b, chunk, n), CLEW_OK);
    }
    fclose(f);
    return clew__buf_take(&b, len);
}

static void test_parse_v3_fixture(void **state)
{
    (void)state;
    size_t len;
    char *json = read_fixture("trace_v3.json", &len);
    clew_trace_view tv;
    clew__tv_init(&tv);
    clew_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(clew__tv_parse_v3_json(json, len, &tv, &err), CLEW_OK);
    assert_string_equal(tv.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_int_equal(tv.n, 5);
    assert_int_equal(tv.n_services, 3);
    assert_int_equal(tv.n_errors, 1);
    assert_int_equal(tv.n_meta, 0);

    const clew_tv_span *root = &tv.spans[tv.root];
    assert_string_equal(root->service, "checkout");
    assert_string_equal(root->operation, "POST /checkout");
    assert_int_equal(root->kind, 2);
    assert_int_equal(root->start_ns, 1700000000000000000ull);
    assert_int_equal(root->end_ns, 1700000003000000000ull);

    const clew_tv_span *charge = &tv.spans[idx(&tv, "c1")];
    assert_string_equal(charge->service, "payment");
    assert_true(charge->error);
    assert_string_equal(charge->status_message, "card declined");
    assert_int_equal(charge->parent, tv.root);

    const clew_tv_span *fraud = &tv.spans[tv.bottleneck];
    assert_string_equal(fraud->service, "fraud-check");
    assert_string_equal(fraud->operation, "Fraud Check");
    assert_false(fraud->error); /* status code 1 = OK */
    assert_int_equal(fraud->crit_self_ns, 2400 * MS);
    assert_int_equal(fraud->depth, 2);
    assert_path_sums_to_root(&tv);

    char *out = render(&tv, 100, false, true);
    assert_non_null(strstr(out, "trace 5b8efff798038103d269b633813fc60c  5 spans  3 services  "
                                "3.00s  1 error\n"));
    assert_non_null(
        strstr(out, "bottleneck: fraud-check: Fraud Check, 2.40s self time, 80% of the trace\n"));
    assert_non_null(strstr(out, "error: payment: Charge (card declined)\n"));
    /* row order follows start times under each parent */
    const char *p1 = strstr(out, "load cart");
    const char *p2 = strstr(out, "Charge");
    const char *p3 = strstr(out, "Fraud Check");
    const char *p4 = strstr(out, "send receipt");
    assert_true(p1 && p2 && p3 && p4 && p1 < p2 && p2 < p3 && p3 < p4);
    const char *fraud_row = strstr(out, "\xe2\x94\x82  \xe2\x94\x94\xe2\x94\x80 fraud-check");
    assert_non_null(fraud_row);
    const char *eol = strchr(fraud_row, '\n');
    const char *marker = strstr(fraud_row, "<-- here's your problem");
    assert_true(marker != NULL && marker < eol);
    clew__free(out);
    clew__tv_deinit(&tv);
    clew__free(json);
}

static clew_status parse_str(const char *json, clew_trace_view *tv, clew_error *err)
{
    clew__tv_init(tv);
    memset(err, 0, sizeof(*err));
    return clew__tv_parse_v3_json(json, strlen(json), tv, err);
}

static void test_parse_errors(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew_error err;
    assert_int_equal(parse_str("{\"result\": ", &tv, &err), CLEW_EPARSE);
    assert_non_null(strstr(err.msg, "not valid JSON"));
    clew__tv_deinit(&tv);
    assert_int_equal(parse_str("[1,2]", &tv, &err), CLEW_EPARSE);
    assert_non_null(strstr(err.msg, "resourceSpans"));
    clew__tv_deinit(&tv);
    assert_int_equal(parse_str("{\"result\":{\"resourceSpans\":[]}}", &tv, &err), CLEW_ENOTFOUND);
    clew__tv_deinit(&tv);
    assert_int_equal(parse_str("{\"result\":{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":"
                               "[{\"spanId\":\"zz\",\"startTimeUnixNano\":\"1\","
                               "\"endTimeUnixNano\":\"2\"},"
                               "{\"spanId\":\"01\",\"startTimeUnixNano\":\"-5\"}]}]}]}}",
                               &tv, &err),
                     CLEW_ENOTFOUND);
    clew__tv_deinit(&tv);
}

static void test_parse_skips_bad_spans_and_reads_metadata(void **state)
{
    (void)state;
    clew_trace_view tv;
    clew_error err;
    const char *json =
        "{\"result\":{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"00000000000000000000000000000abc\",\"spanId\":\"01\",\"name\":\"ok\","
        "\"startTimeUnixNano\":100,\"endTimeUnixNano\":\"300\",\"kind\":3,"
        "\"attributes\":[{\"key\":\"error\",\"value\":{\"boolValue\":true}}]},"
        "{\"spanId\":\"not-hex\",\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\"},"
        "7]}]}],"
        "\"clew\":{\"state\":\"kept\",\"keptReason\":\"\",\"adjustedCount\":10}},"
        "\"warnings\":[\"clock skew adjusted\"]}";
    assert_int_equal(parse_str(json, &tv, &err), CLEW_OK);
    assert_int_equal(tv.n, 1);
    assert_string_equal(tv.spans[0].service, "unknown_service");
    assert_true(tv.spans[0].error); /* from the error=true attribute */
    assert_int_equal(tv.spans[0].kind, 3);
    assert_int_equal(tv.spans[0].end_ns - tv.spans[0].start_ns, 200);
    char *out = render(&tv, 80, false, true);
    assert_non_null(strstr(out, "  warnings: clock skew adjusted\n"));
    assert_non_null(strstr(out, "  state: kept\n"));
    assert_non_null(strstr(out, "  adjustedCount: 10\n"));
    assert_null(strstr(out, "keptReason")); /* empty values are not shown */
    assert_non_null(strstr(out, "  warning: 2 malformed spans not shown\n"));
    clew__free(out);
    clew__tv_deinit(&tv);
}

static void test_oom_during_build(void **state)
{
    (void)state;
    /* every allocation failure point in build reports ENOMEM and leaks nothing */
    for (long k = 0; k < 20; k++) {
        clew_trace_view tv;
        build_small(&tv);
        clew__alloc_fail_after(k);
        clew_status rc = clew__tv_build(&tv);
        clew__alloc_fail_after(-1);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        clew__tv_deinit(&tv);
    }
}

static void test_oom_during_parse_and_render(void **state)
{
    (void)state;
    size_t len;
    char *json = read_fixture("trace_v3.json", &len);
    bool parsed = false, rendered = false;
    for (long k = 0; k < 400 && !(parsed && rendered); k++) {
        clew_trace_view tv;
        clew__tv_init(&tv);
        clew_error err;
        clew__alloc_fail_after(k);
        clew_status rc = clew__tv_parse_v3_json(json, len, &tv, &err);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        if (rc == CLEW_OK) {
            parsed = true;
            clew_buf b;
            clew__buf_init(&b, 0);
            clew_tv_render_opts o = {100, false, true, true};
            rc = clew__tv_render(&tv, &o, &b);
            assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
            rendered = rc == CLEW_OK;
            clew__buf_deinit(&b);
        }
        clew__alloc_fail_after(-1);
        clew__tv_deinit(&tv);
    }
    assert_true(parsed && rendered);
    clew__free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_and_order),
        cmocka_unit_test(test_equal_starts_longer_first),
        cmocka_unit_test(test_orphans_attach_at_root_level),
        cmocka_unit_test(test_parent_cycle_is_broken),
        cmocka_unit_test(test_bad_ids_rejected),
        cmocka_unit_test(test_critical_sequential),
        cmocka_unit_test(test_critical_parallel),
        cmocka_unit_test(test_critical_child_outlives_parent),
        cmocka_unit_test(test_critical_single_span),
        cmocka_unit_test(test_critical_overlapping_children),
        cmocka_unit_test(test_critical_deep_chain),
        cmocka_unit_test(test_bottleneck_is_self_time_not_duration),
        cmocka_unit_test(test_zero_length_trace),
        cmocka_unit_test(test_render_exact_plain),
        cmocka_unit_test(test_render_wide_has_full_marker),
        cmocka_unit_test(test_render_truncates_not_wraps),
        cmocka_unit_test(test_render_color_only_when_asked),
        cmocka_unit_test(test_render_sanitizes_names),
        cmocka_unit_test(test_parse_v3_fixture),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_skips_bad_spans_and_reads_metadata),
        cmocka_unit_test(test_oom_during_build),
        cmocka_unit_test(test_oom_during_parse_and_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
