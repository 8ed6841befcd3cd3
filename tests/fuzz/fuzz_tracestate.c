/*
 * tests/fuzz/fuzz_tracestate.c - tracestate parser: arbitrary input must never
 * crash; a parsed list stays within the limits, formats, and re-parses to the
 * same list. Mutations (set / delete) must keep those invariants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clew/context.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const clew_tracestate *a)
{
    if (clew_tracestate_count(a) > CLEW_TRACESTATE_MAX_MEMBERS ||
        clew_tracestate_str(a).len > CLEW_TRACESTATE_CAPACITY) {
        abort();
    }
    char out[CLEW_TRACESTATE_CAPACITY + 1];
    size_t n = 0;
    if (clew_tracestate_format(a, out, sizeof(out), &n) != CLEW_OK) {
        abort();
    }
    clew_tracestate b;
    if (clew_tracestate_parse(out, n, &b) != CLEW_OK || !clew_tracestate_equal(a, &b)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clew_tracestate a;
    if (clew_tracestate_parse((const char *)data, size, &a) != CLEW_OK) {
        return 0;
    }
    check(&a);
    /* Move every member to the front in turn; set must accept its own members. */
    size_t count = clew_tracestate_count(&a);
    for (size_t i = 0; i < count; i++) {
        clew_str k, v;
        if (clew_tracestate_member(&a, count - 1, &k, &v) != CLEW_OK) {
            abort();
        }
        char key[CLEW_TRACESTATE_MAX_KEY + 1], val[CLEW_TRACESTATE_MAX_VALUE + 1];
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        memcpy(val, v.ptr, v.len);
        val[v.len] = '\0';
        if (clew_tracestate_set(&a, key, val) != CLEW_OK || clew_tracestate_count(&a) != count) {
            abort();
        }
        check(&a);
    }
    if (count > 0) {
        clew_str k;
        char key[CLEW_TRACESTATE_MAX_KEY + 1];
        if (clew_tracestate_member(&a, 0, &k, NULL) != CLEW_OK) {
            abort();
        }
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        if (clew_tracestate_delete(&a, key) != CLEW_OK || clew_tracestate_count(&a) != count - 1) {
            abort();
        }
        check(&a);
    }
    return 0;
}
