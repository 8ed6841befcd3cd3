/*
 * tests/fuzz/fuzz_baggage.c - baggage parser: arbitrary input must never crash
 * or leak; a parsed list respects the limits (64 members, 8192 bytes), formats
 * whole, and re-parses to the same members.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clew/propagation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[CLEW_BAGGAGE_MAX_BYTES + 1];
    clew_baggage *a = NULL, *b = NULL;
    if (clew_baggage_create(&a) != CLEW_OK || clew_baggage_create(&b) != CLEW_OK) {
        abort();
    }
    if (clew_baggage_parse(a, (const char *)data, size) != CLEW_OK) {
        abort(); /* only CLEW_ENOMEM may fail, and the fuzzer does not inject it */
    }
    size_t n = 0;
    if (clew_baggage_count(a) > CLEW_BAGGAGE_MAX_MEMBERS ||
        clew_baggage_format(a, out, sizeof(out), &n) != CLEW_OK || n > CLEW_BAGGAGE_MAX_BYTES ||
        strlen(out) != n) {
        abort();
    }
    if (clew_baggage_parse(b, out, n) != CLEW_OK || !clew_baggage_equal(a, b)) {
        abort();
    }
    clew_baggage_destroy(a);
    clew_baggage_destroy(b);
    return 0;
}
