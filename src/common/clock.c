/*
 * src/common/clock.c - time helpers; see clock.h.
 */
#include "common/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t clew__now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clew__now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int unit_ns(const char *u, size_t n, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* µs, U+00B5 */
        {"\xce\xbcs", 1000}, /* μs, U+03BC */
        {"ms", 1000000},
        {"s", 1000000000ull},
        {"m", 60000000000ull},
        {"h", 3600000000000ull},
        {"d", 86400000000000ull},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0) {
            *out = units[i].ns;
            return 0;
        }
    }
    return -1;
}

clew_status clew__duration_parse(const char *s, size_t len, uint64_t bare_unit_ns, uint64_t *out_ns)
{
    size_t i = 0;
    long double total = 0;
    int parts = 0;
    if (len == 0) {
        return CLEW_EPARSE;
    }
    while (i < len) {
        /* number: digits with an optional fraction */
        long double v = 0, scale = 0;
        size_t start = i;
        while (i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) {
            if (s[i] == '.') {
                if (scale != 0) {
                    return CLEW_EPARSE;
                }
                scale = 1;
            } else if (scale != 0) {
                scale /= 10;
                v += (s[i] - '0') * scale;
            } else {
                v = v * 10 + (s[i] - '0');
            }
            i++;
        }
        if (i == start || (i == start + 1 && s[start] == '.')) {
            return CLEW_EPARSE;
        }
        size_t ustart = i;
        while (i < len && !((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) {
            i++;
        }
        uint64_t mult;
        if (i == ustart) {
            if (bare_unit_ns == 0 || parts > 0) {
                return CLEW_EPARSE;
            }
            mult = bare_unit_ns;
        } else if (unit_ns(s + ustart, i - ustart, &mult) != 0) {
            return CLEW_EPARSE;
        }
        total += v * (long double)mult;
        parts++;
    }
    if (total > 1.8e19L) {
        return CLEW_ETOOBIG;
    }
    *out_ns = (uint64_t)(total + 0.5L);
    return CLEW_OK;
}

void clew__duration_format(uint64_t ns, char *out, size_t out_size)
{
    if (ns >= 60000000000ull * 60) {
        snprintf(out, out_size, "%.2fh", (double)ns / 3.6e12);
    } else if (ns >= 60000000000ull) {
        snprintf(out, out_size, "%.2fm", (double)ns / 6e10);
    } else if (ns >= 1000000000ull) {
        snprintf(out, out_size, "%.2fs", (double)ns / 1e9);
    } else if (ns >= 1000000ull) {
        snprintf(out, out_size, "%.2fms", (double)ns / 1e6);
    } else if (ns >= 1000ull) {
        snprintf(out, out_size, "%.2f\xc2\xb5s", (double)ns / 1e3);
    } else {
        snprintf(out, out_size, "%lluns", (unsigned long long)ns);
    }
}
