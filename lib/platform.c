/* SPDX-License-Identifier: MIT */
#include "platform.h"

#include "atomic.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int weft__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns >= 0) {
        ts = weft__timespec(deadline_ns);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so retries after EINTR or a
     * spurious wake-up need no arithmetic. */
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected,
                     tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0; /* woken, value changed (EAGAIN) or interrupted: the caller re-checks */
}

void weft__futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

#define BACKOFF_SPINS     64
#define BACKOFF_MAX_SHIFT 10 /* 1 us << 10: about 1 ms */

void weft__backoff(unsigned *round)
{
    unsigned r = (*round)++;
    if (r < BACKOFF_SPINS) {
        weft_cpu_relax();
        return;
    }
    r -= BACKOFF_SPINS;
    struct timespec ts = {0, 1000L << (r < BACKOFF_MAX_SHIFT ? r : BACKOFF_MAX_SHIFT)};
    nanosleep(&ts, NULL);
}

int64_t weft__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft__deadline(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    int64_t now = weft__now_ns();
    if (timeout_ns > INT64_MAX - now)
        return -1;
    return now + timeout_ns;
}

void weft__cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void weft__assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "weft: internal invariant broken at %s:%d: %s\n", file, line, what);
    abort();
}

void weft__debug(const char *fmt, ...)
{
    const char *env = getenv("WEFT_DEBUG");
    if (env == NULL || env[0] == '\0' || (env[0] == '0' && env[1] == '\0'))
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("weft: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
