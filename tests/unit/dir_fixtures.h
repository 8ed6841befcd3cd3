/*
 * tests/unit/dir_fixtures.h - temporary data directories for the tests of the embedded
 * store and its WAL (test_wal.c, test_embedded_store.c, test_embedded_cut.c,
 * test_ingest_path.c), and the check that a store holds exactly a trace's spans.
 *
 * Included by test files only, after <cmocka.h> (the helpers assert) and store.h.
 * static inline, so a file that uses only some of them compiles warning-free. Not
 * thread-safe, like the tests themselves.
 */
#ifndef CLEW_TESTS_UNIT_DIR_FIXTURES_H
#define CLEW_TESTS_UNIT_DIR_FIXTURES_H

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "model/model.h"
#include "store/store.h"

static inline int dir_fixtures_rm_one(const char *path, const struct stat *st, int flag,
                                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Makes a new empty directory /tmp/<prefix>-XXXXXX; its path goes to dir[n]. */
static inline void make_temp_dir(char *dir, size_t n, const char *prefix)
{
    snprintf(dir, n, "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(dir));
}

/* Removes the directory and everything below it. */
static inline void remove_temp_dir(const char *dir)
{
    nftw(dir, dir_fixtures_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The store's trace t must hold exactly spans[0..n) (by content, in any order). */
static inline void expect_trace(clew_store *s, clew_trace_id t, const clew_span_data *spans,
                                size_t n)
{
    clew_trace_result *r = NULL;
    assert_int_equal(s->ops->get_trace(s, &t, &r), CLEW_OK);
    assert_int_equal(r->n_spans, n);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < r->n_spans && !found; j++) {
            found = clew__span_equal(&spans[i], r->spans[j]);
        }
        if (!found) {
            fail_msg("span %zu of the trace is missing or differs", i);
        }
    }
    clew__trace_result_free(r);
}

#endif /* CLEW_TESTS_UNIT_DIR_FIXTURES_H */
