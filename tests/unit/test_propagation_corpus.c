/*
 * tests/unit/test_propagation_corpus.c - runs libclew's propagators over the
 * shared corpus tests/interop/propagation_js/corpus.txt.
 *
 * As a unit test it checks that every corpus line is well-formed and that
 * libclew's result matches the line's `expect` column. When CLEW_PROP_OUT is
 * set, it also writes one JSON object per case to that file; the interop test
 * tests/interop/test_propagation_js.sh compares those with what the
 * OpenTelemetry JS propagators extract from the same corpus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clew/propagation.h"

#define MAX_CASES   256
#define MAX_HEADERS 8

typedef struct corpus_case {
    int line;
    char *id, *prop, *expect;
    clew_header headers[MAX_HEADERS];
    size_t nheaders;
} corpus_case;

static char text[256 * 1024];
static corpus_case cases[MAX_CASES];
static size_t ncases;

/* Replaces "\t" by TAB and "\\" by a backslash in place; returns the new length. */
static size_t unescape(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] == '\\' && s[i + 1] == 't') {
            s[o++] = '\t';
            i++;
        } else if (s[i] == '\\' && s[i + 1] == '\\') {
            s[o++] = '\\';
            i++;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

/* Loads and splits the corpus once; fails the calling test on a malformed line. */
static void load(void)
{
    if (ncases > 0) {
        return;
    }
    const char *path = CLEW_SOURCE_DIR "/tests/interop/propagation_js/corpus.txt";
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    assert_true(n < sizeof(text) - 1);
    text[n] = '\0';
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        assert_true(ncases < MAX_CASES);
        corpus_case *c = &cases[ncases++];
        memset(c, 0, sizeof(*c));
        c->line = lineno;
        char *fields[2 + 1 + MAX_HEADERS];
        size_t nf = 0;
        char *p = line;
        while (p != NULL && nf < sizeof(fields) / sizeof(fields[0])) {
            fields[nf++] = p;
            p = strchr(p, '\t');
            if (p != NULL) {
                *p++ = '\0';
            }
        }
        if (nf < 4 || p != NULL) {
            fail_msg("corpus line %d: need id, propagator, expect and 1-%d headers", lineno,
                     MAX_HEADERS);
        }
        c->id = fields[0];
        c->prop = fields[1];
        c->expect = fields[2];
        for (size_t i = 3; i < nf; i++) {
            char *colon = strstr(fields[i], ": ");
            if (colon == NULL) {
                fail_msg("corpus line %d: header %zu has no \": \"", lineno, i - 2);
            }
            *colon = '\0';
            char *value = colon + 2;
            size_t vlen = unescape(value);
            c->headers[c->nheaders++] =
                (clew_header){{fields[i], strlen(fields[i])}, {value, vlen}};
        }
    }
}

static const clew_propagator *prop_by_name(const char *name)
{
    if (strcmp(name, "tracecontext") == 0) {
        return clew_propagator_tracecontext();
    }
    if (strcmp(name, "baggage") == 0) {
        return clew_propagator_baggage();
    }
    if (strcmp(name, "b3") == 0) {
        return clew_propagator_b3();
    }
    if (strcmp(name, "b3multi") == 0) {
        return clew_propagator_b3multi();
    }
    if (strcmp(name, "jaeger") == 0) {
        return clew_propagator_jaeger();
    }
    return NULL;
}

static void json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f); /* bytes >= 0x80 are UTF-8: the parser replaced bad sequences */
        }
    }
    fputc('"', f);
}

static void hex(FILE *f, const uint8_t *b, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%02x", b[i]);
    }
    fputc('"', f);
}

/* Runs one case; returns true when a context (or baggage member) was found. */
static bool run_case(const corpus_case *c, FILE *out)
{
    const clew_propagator *p = prop_by_name(c->prop);
    assert_non_null(p);
    clew_header items[MAX_HEADERS];
    memcpy(items, c->headers, sizeof(items));
    clew_header_list l;
    clew_header_list_init(&l, items, c->nheaders, MAX_HEADERS, NULL, 0);
    clew_carrier carrier = clew_http_headers_carrier(&l);
    clew_baggage *bag = NULL;
    assert_int_equal(clew_baggage_create(&bag), CLEW_OK);
    clew_span_context sc;
    clew_status rc = clew_propagator_extract(p, &carrier, &sc, bag);
    assert_true(rc == CLEW_OK || rc == CLEW_ENOTFOUND || rc == CLEW_EPARSE);
    bool is_baggage = p == clew_propagator_baggage();
    bool found = is_baggage ? clew_baggage_count(bag) > 0 : rc == CLEW_OK;
    if (out != NULL) {
        fprintf(out, "{\"id\":");
        json_str(out, c->id, strlen(c->id));
        if (is_baggage) {
            fprintf(out, ",\"baggage\":[");
            for (size_t i = 0; i < clew_baggage_count(bag); i++) {
                clew_str k, v, m;
                assert_int_equal(clew_baggage_entry(bag, i, &k, &v, &m), CLEW_OK);
                fprintf(out, "%s[", i ? "," : "");
                json_str(out, k.ptr, k.len);
                fputc(',', out);
                json_str(out, v.ptr, v.len);
                fputc(',', out);
                json_str(out, m.ptr, m.len);
                fputc(']', out);
            }
            fprintf(out, "]");
        } else if (rc == CLEW_OK) {
            fprintf(out, ",\"ctx\":{\"traceId\":");
            hex(out, sc.trace_id.bytes, 16);
            fprintf(out, ",\"spanId\":");
            hex(out, sc.span_id.bytes, 8);
            fprintf(out, ",\"flags\":%d,\"traceState\":", sc.trace_flags);
            clew_str ts = clew_tracestate_str(&sc.tracestate);
            json_str(out, ts.ptr, ts.len);
            fprintf(out, "}");
        } else {
            fprintf(out, ",\"ctx\":null");
        }
        fprintf(out, "}\n");
    }
    clew_baggage_destroy(bag);
    return found;
}

/* Every line names a known propagator and an expectation, and has headers. */
static void test_corpus_wellformed(void **state)
{
    (void)state;
    load();
    assert_true(ncases >= 50);
    for (size_t i = 0; i < ncases; i++) {
        if (prop_by_name(cases[i].prop) == NULL) {
            fail_msg("corpus line %d: unknown propagator \"%s\"", cases[i].line, cases[i].prop);
        }
        if (strcmp(cases[i].expect, "ok") != 0 && strcmp(cases[i].expect, "none") != 0) {
            fail_msg("corpus line %d: expect must be ok or none", cases[i].line);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cases[i].id, cases[j].id) == 0) {
                fail_msg("corpus line %d: duplicate id %s", cases[i].line, cases[i].id);
            }
        }
    }
}

/* libclew's results match the corpus expectations; optionally written out for the
 * cross-check against OpenTelemetry JS. */
static void test_corpus_results(void **state)
{
    (void)state;
    load();
    const char *path = getenv("CLEW_PROP_OUT");
    FILE *out = NULL;
    if (path != NULL && path[0] != '\0') {
        out = fopen(path, "w");
        assert_non_null(out);
    }
    int bad = 0;
    for (size_t i = 0; i < ncases; i++) {
        bool found = run_case(&cases[i], out);
        if (found != (strcmp(cases[i].expect, "ok") == 0)) {
            print_error("corpus line %d (%s): expected %s, libclew found %s\n", cases[i].line,
                        cases[i].id, cases[i].expect, found ? "ok" : "none");
            bad++;
        }
    }
    if (out != NULL) {
        fclose(out);
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_wellformed),
        cmocka_unit_test(test_corpus_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
