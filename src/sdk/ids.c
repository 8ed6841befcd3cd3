/*
 * src/sdk/ids.c - seeding the per-thread id generator (the generator itself is
 * inline in sdk_internal.h).
 *
 * splitmix64 per thread, seeded from getrandom(2) on first use. A thread
 * remembers the fork generation it was seeded in; the fork child handler bumps
 * clew__fork_gen, so a forked child re-seeds on its next id instead of
 * repeating the parent's sequence (checking getpid() per id would cost a
 * syscall). When getrandom fails the seed mixes time, pid, a stack address and
 * a counter: worse, but never a crash. These ids are unpredictable enough for
 * tracing (W3C Level 2 "random"), not for security.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/clock.h"
#include "sdk/sdk_internal.h"

_Atomic uint64_t clew__fork_gen = 1;
CLEW__TLS uint64_t clew__tl_rng;
CLEW__TLS uint64_t clew__tl_rng_gen;

void clew__rng_reseed(void)
{
    static _Atomic uint64_t fallback_counter;
    uint64_t seed = 0;
    size_t got = 0;
    while (got < sizeof(seed)) {
        ssize_t n = getrandom((char *)&seed + got, sizeof(seed) - got, GRND_NONBLOCK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    if (got < sizeof(seed)) {
        seed = clew__now_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&got ^
               atomic_fetch_add(&fallback_counter, 1) * 0x2545f4914f6cdd1dull;
    }
    clew__tl_rng = seed;
    clew__tl_rng_gen = atomic_load(&clew__fork_gen);
}
