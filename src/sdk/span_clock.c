/*
 * src/sdk/span_clock.c - the span clock's slow path: anchoring each thread's
 * TSC extrapolation to CLOCK_REALTIME and calibrating the TSC rate (the fast
 * path is inline in sdk_internal.h).
 *
 * Why: a span reads the clock twice (start, end). clock_gettime through the
 * vDSO was the largest single cost of a sampled span (about a fifth of it in
 * sdk_bench's profile); reading the TSC and scaling it costs a fraction.
 *
 * When the TSC is used: only on x86-64 and only when the kernel itself runs
 * CLOCK_REALTIME on it (current_clocksource is "tsc"): the kernel has then
 * checked that the TSC is invariant and synchronised across CPUs, so readings
 * on different CPUs are comparable, exactly as the vDSO's own are. Anywhere
 * else every read is clock_gettime(CLOCK_REALTIME), as before.
 *
 * Accuracy: each thread anchors (realtime ns, TSC) with a bracketed read and
 * extrapolates for at most CLEW__CLOCK_WINDOW_NS; then it re-anchors. The rate
 * is measured against CLOCK_MONOTONIC from a first point taken at first use:
 * until CALIBRATE_NS have passed every read is clock_gettime, and it is
 * measured again every REFINE_NS, so its error falls from a few ppm towards
 * zero; a rate that jumps (suspend, migration) restarts the measurement. The
 * timestamp error is that rate error times the window plus the anchor's
 * jitter: measured within a few hundred nanoseconds of
 * clock_gettime(CLOCK_REALTIME) on a loaded VM (see docs/sdk.md). A thread's
 * timestamps never go backwards over such an error (CONTINUITY_NS); a step of
 * the wall clock (settimeofday, NTP step) shows within one window. Timestamps
 * keep nanosecond resolution; a span's end is still clamped to its start.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "sdk/sdk_internal.h"

#if CLEW__SPAN_CLOCK_TSC

/* The rate is first measured over at least this long, then again every
 * REFINE_NS against the same first point, so its error keeps shrinking. */
#define CALIBRATE_NS 20000000ull
#define REFINE_NS    10000000ull
/* A bracketed read (rdtsc, clock_gettime, rdtsc) taking more ticks than this
 * was interrupted or slowed down and is retried: the midpoint of a wide
 * bracket is a poor anchor. A vDSO read takes a few hundred ticks. */
#define MAX_BRACKET_TICKS 2000ull
#define BRACKET_TRIES     4
/* At a re-anchor the extrapolated time may be slightly ahead of the wall
 * clock (rate error, anchor jitter). Up to this much, the thread keeps its
 * extrapolated time rather than step back, so its timestamps never go
 * backwards; a larger difference is a real step of the wall clock and is
 * followed. */
#define CONTINUITY_NS 2000ull

CLEW__TLS clew__span_clock clew__tl_clock;

enum { TSC_UNCHECKED, TSC_CALIBRATING, TSC_READY, TSC_UNUSABLE };

static _Atomic int g_state = TSC_UNCHECKED;
static _Atomic uint64_t g_mult;       /* ns per tick, 32.32 fixed point */
static _Atomic uint64_t g_window;     /* ticks in CLEW__CLOCK_WINDOW_NS */
static _Atomic uint64_t g_refine_tsc; /* TSC after which the rate is measured again */
static pthread_mutex_t g_cal_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_cal_tsc, g_cal_ns; /* the first point of the measurement; under g_cal_mu */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* clock_gettime(id) bracketed by two TSC reads; *tsc is their midpoint. False
 * when no bracket of BRACKET_TRIES was narrow enough to trust. */
static bool bracketed(clockid_t id, uint64_t *ns, uint64_t *tsc)
{
    for (int i = 0; i < BRACKET_TRIES; i++) {
        struct timespec ts;
        uint64_t a = __builtin_ia32_rdtsc();
        clock_gettime(id, &ts);
        uint64_t b = __builtin_ia32_rdtsc();
        if (b >= a && b - a <= MAX_BRACKET_TICKS) {
            *ns = ts_ns(&ts);
            *tsc = a + (b - a) / 2;
            return true;
        }
    }
    return false;
}

static void check_once(void)
{
    char buf[16] = {0};
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n < 3 || memcmp(buf, "tsc", 3) != 0 || (n > 3 && buf[3] != '\n')) {
        atomic_store(&g_state, TSC_UNUSABLE);
        return;
    }
    if (bracketed(CLOCK_MONOTONIC, &g_cal_ns, &g_cal_tsc)) {
        atomic_store(&g_state, TSC_CALIBRATING);
        return;
    }
    atomic_store(&g_state, TSC_UNUSABLE);
}

/* Starts measuring the rate afresh from (ns, tsc): until CALIBRATE_NS have
 * passed, reads come from clock_gettime (threads drop their anchors within a
 * window). g_cal_mu held. */
static void restart_locked(uint64_t ns, uint64_t tsc)
{
    g_cal_ns = ns;
    g_cal_tsc = tsc;
    atomic_store_explicit(&g_mult, 0, memory_order_relaxed);
    atomic_store_explicit(&g_state, TSC_CALIBRATING, memory_order_release);
}

/* Measures the rate from the first point to now (once at least CALIBRATE_NS
 * apart) and publishes it. A rate more than 1 % off the published one (NTP
 * slews by at most 0.05 %) means the TSC and the clock parted: a suspend that
 * stopped one of them, a migration to another host. So does a TSC behind the
 * first point. Either way the measurement starts again from now. One thread
 * at a time: the others keep their anchors meanwhile. */
static void calibrate(void)
{
    if (pthread_mutex_trylock(&g_cal_mu) != 0) {
        return;
    }
    uint64_t ns, tsc;
    if (!bracketed(CLOCK_MONOTONIC, &ns, &tsc) || ns < g_cal_ns + CALIBRATE_NS) {
        pthread_mutex_unlock(&g_cal_mu);
        return;
    }
    if (tsc <= g_cal_tsc) {
        restart_locked(ns, tsc);
        pthread_mutex_unlock(&g_cal_mu);
        return;
    }
    uint64_t dns = ns - g_cal_ns, dt = tsc - g_cal_tsc;
    uint64_t mult = (uint64_t)(((unsigned __int128)dns << 32) / dt);
    uint64_t old = atomic_load_explicit(&g_mult, memory_order_relaxed);
    if (mult == 0 || mult >= (1000ull << 32)) {
        /* below 1 MHz or above 64 GHz is not a TSC worth trusting */
        atomic_store(&g_state, TSC_UNUSABLE);
    } else if (old != 0 && (mult > old + old / 100 || mult < old - old / 100)) {
        restart_locked(ns, tsc);
    } else {
        uint64_t window = (uint64_t)(((unsigned __int128)CLEW__CLOCK_WINDOW_NS << 32) / mult);
        uint64_t refine = (uint64_t)(((unsigned __int128)REFINE_NS << 32) / mult);
        atomic_store_explicit(&g_refine_tsc, tsc + refine, memory_order_relaxed);
        atomic_store_explicit(&g_mult, mult, memory_order_relaxed);
        atomic_store_explicit(&g_window, window, memory_order_relaxed);
        atomic_store_explicit(&g_state, TSC_READY, memory_order_release);
    }
    pthread_mutex_unlock(&g_cal_mu);
}

uint64_t clew__span_clock_slow(void)
{
    clew__span_clock *c = &clew__tl_clock;
    int state = atomic_load_explicit(&g_state, memory_order_acquire);
    if (state == TSC_UNCHECKED) {
        (void)pthread_once(&g_once, check_once);
        state = atomic_load_explicit(&g_state, memory_order_acquire);
    }
    if (state == TSC_CALIBRATING ||
        (state == TSC_READY &&
         __builtin_ia32_rdtsc() >= atomic_load_explicit(&g_refine_tsc, memory_order_relaxed))) {
        /* the first calibration, or a refinement (every REFINE_NS at most) */
        calibrate();
        state = atomic_load_explicit(&g_state, memory_order_acquire);
    }
    uint64_t ns, tsc;
    if (state != TSC_READY || !bracketed(CLOCK_REALTIME, &ns, &tsc)) {
        c->window = 0; /* next read comes here again */
        return clew__now_unix_ns();
    }
    uint64_t dt = tsc - c->tsc0;
    if (c->window != 0 && dt < 2 * c->window) {
        /* a recent anchor: do not step back over a small extrapolation error */
        uint64_t e = c->ns0 + ((dt * c->mult) >> 32);
        if (ns < e && e - ns <= CONTINUITY_NS) {
            ns = e;
        }
    }
    uint64_t mult = atomic_load_explicit(&g_mult, memory_order_relaxed);
    if (mult == 0) {
        /* another thread restarted the calibration since the state was read */
        c->window = 0;
        return clew__now_unix_ns();
    }
    c->mult = mult;
    c->ns0 = ns;
    c->tsc0 = tsc;
    c->window = atomic_load_explicit(&g_window, memory_order_relaxed);
    return ns;
}

#else

uint64_t clew__span_clock_slow(void)
{
    return clew__now_unix_ns();
}

#endif
