/*
 * tests/fuzz/fuzz_traceparent.c - traceparent parser: arbitrary input must never
 * crash; whatever parses must format to version 00 and re-parse to the same ids
 * and known flags. The input is also fed to the tracecontext propagator as
 * header lines (first line traceparent, the others tracestate). A plain
 * reference parser written from wire.md §1.1 cross-checks the optimised one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clew/context.h"
#include "clew/propagation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const clew_span_context *a)
{
    char out[CLEW_TRACEPARENT_SIZE];
    if (clew_traceparent_format(a, out) != CLEW_OK || strlen(out) != CLEW_TRACEPARENT_LEN ||
        out[0] != '0' || out[1] != '0') {
        abort();
    }
    clew_span_context b;
    if (clew_traceparent_parse(out, CLEW_TRACEPARENT_LEN, &b) != CLEW_OK ||
        memcmp(&a->trace_id, &b.trace_id, sizeof(b.trace_id)) != 0 ||
        memcmp(&a->span_id, &b.span_id, sizeof(b.span_id)) != 0 ||
        (a->trace_flags & CLEW_TRACE_FLAGS_KNOWN) != b.trace_flags || !b.is_remote) {
        abort();
    }
}

static int lc(char c)
{
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* The rules spelled out one by one; returns 1 and fills out on success. */
static int reference_parse(const char *s, size_t n, uint8_t out[25])
{
    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n < 55 || lc(s[0]) < 0 || lc(s[1]) < 0 || s[2] != '-' || (s[0] == 'f' && s[1] == 'f')) {
        return 0;
    }
    if (s[0] == '0' && s[1] == '0' && n != 55) {
        return 0;
    }
    if (n > 55 && s[55] != '-') {
        return 0;
    }
    if (s[35] != '-' || s[52] != '-') {
        return 0;
    }
    const size_t pos[25] = {3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23, 25, 27,
                            29, 31, 33, 36, 38, 40, 42, 44, 46, 48, 50, 53};
    int tz = 1, sz = 1;
    for (size_t i = 0; i < 25; i++) {
        int h = lc(s[pos[i]]), l = lc(s[pos[i] + 1]);
        if (h < 0 || l < 0) {
            return 0;
        }
        out[i] = (uint8_t)(h * 16 + l);
        if (i < 16 && out[i] != 0) {
            tz = 0;
        }
        if (i >= 16 && i < 24 && out[i] != 0) {
            sz = 0;
        }
    }
    return !tz && !sz;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    clew_span_context a;
    uint8_t ref[25];
    int ok = clew_traceparent_parse(s, size, &a) == CLEW_OK;
    if (ok != reference_parse(s, size, ref)) {
        abort();
    }
    if (ok) {
        if (!clew_span_context_is_valid(&a) || memcmp(a.trace_id.bytes, ref, 16) != 0 ||
            memcmp(a.span_id.bytes, ref + 16, 8) != 0 || a.trace_flags != ref[24]) {
            abort();
        }
        check_round_trip(&a);
    }

    /* Header lines through the propagator. */
    clew_header items[8];
    clew_header_list l;
    clew_header_list_init(&l, items, 0, 8, NULL, 0);
    size_t start = 0;
    while (start < size && l.count < 8) {
        const char *nl = memchr(s + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - s) : size;
        const char *name = l.count == 0 ? "traceparent" : "tracestate";
        items[l.count++] = (clew_header){{name, strlen(name)}, {s + start, end - start}};
        start = end + 1;
    }
    clew_carrier c = clew_http_headers_carrier(&l);
    clew_span_context sc;
    if (clew_propagator_extract(clew_propagator_tracecontext(), &c, &sc, NULL) == CLEW_OK) {
        check_round_trip(&sc);
        if (clew_tracestate_str(&sc.tracestate).len > CLEW_TRACESTATE_CAPACITY ||
            clew_tracestate_count(&sc.tracestate) > CLEW_TRACESTATE_MAX_MEMBERS) {
            abort();
        }
    }
    return 0;
}
