/*
 * src/common/bytes.h - equality of short byte strings without a memcmp call.
 *
 * Keys, names and header names are mostly 4 to 16 bytes; for those two overlapping
 * word loads on each side are cheaper than a call. Shared by the SDK (header names in
 * propagation.c) and the block writer (interned strings). Pure functions, thread-safe.
 */
#ifndef CLEW_COMMON_BYTES_H
#define CLEW_COMMON_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Whether the n bytes at a and b are equal. Reads only [0, n) of each. */
static inline bool clew__bytes_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a0, b0, a1, b1;
        memcpy(&a0, a, 8);
        memcpy(&b0, b, 8);
        memcpy(&a1, a + n - 8, 8);
        memcpy(&b1, b + n - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t a0, b0, a1, b1;
        memcpy(&a0, a, 4);
        memcpy(&b0, b, 4);
        memcpy(&a1, a + n - 4, 4);
        memcpy(&b1, b + n - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (n > 0 && n < 4) {
        /* positions 0, n / 2 and n - 1 cover every byte of 1 to 3 */
        return a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1];
    }
    return n == 0 || memcmp(a, b, n) == 0;
}

#endif /* CLEW_COMMON_BYTES_H */
