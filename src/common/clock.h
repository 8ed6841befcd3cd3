/*
 * src/common/clock.h - wall and monotonic time, and duration parsing/formatting.
 */
#ifndef CLEW_COMMON_CLOCK_H
#define CLEW_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t clew__now_unix_ns(void);
/* Nanoseconds on a monotonic clock with an arbitrary origin. */
uint64_t clew__now_mono_ns(void);

/* Parses a duration such as "1.5s", "250ms", "90us", "100µs", "10ns", "2m", "3h", "1h30m"
 * into nanoseconds. A bare number is rejected unless `bare_unit_ns` is non-zero, in
 * which case it is multiplied by it (Jaeger's minDuration accepts only units).
 * Negative values are rejected. */
CLEW_NODISCARD clew_status clew__duration_parse(const char *s, size_t len, uint64_t bare_unit_ns,
                                                uint64_t *out_ns);
/* Writes a short human form of `ns` ("1.23s", "450ms", "87µs", "12ns") into out. */
void clew__duration_format(uint64_t ns, char *out, size_t out_size);

#endif /* CLEW_COMMON_CLOCK_H */
