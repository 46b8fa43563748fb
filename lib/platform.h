/* SPDX-License-Identifier: MIT */
/*
 * Operating-system services: futex waits and wakes, monotonic time, stack limits.
 *
 * weft__futex_wait() sleeps while *word == expected, until woken or the absolute
 * CLOCK_MONOTONIC deadline (in ns; negative: none) passes. It may return spuriously, so every
 * caller re-checks its condition in a loop. Returns 0 or -ETIMEDOUT.
 */
#ifndef WEFT_PLATFORM_H
#define WEFT_PLATFORM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* WEFT_ASSERT(cond): an invariant, checked in Debug, sanitizer and fuzz builds (WEFT_ASSERTS,
 * set by CMake) and compiled out elsewhere. A failure prints where and what, then aborts: it
 * is a bug in weft, never a reaction to user input. */
#ifdef WEFT_ASSERTS
#define WEFT_ASSERT(cond)                                                                          \
    (__builtin_expect(!!(cond), 1) ? (void)0 : weft__assert_fail(#cond, __FILE__, __LINE__))
#else
#define WEFT_ASSERT(cond) ((void)0)
#endif
__attribute__((noreturn, cold)) void weft__assert_fail(const char *what, const char *file,
                                                       int line);

int weft__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline_ns);
void weft__futex_wake(_Atomic uint32_t *word, int n);

/* One round of waiting for another thread that is a few instructions away from a step: a pause
 * for the first rounds, then sleeps growing from 1 us to 1 ms. Sleeping, unlike sched_yield,
 * lets a thread of lower priority run on this CPU. *round starts at 0. */
void weft__backoff(unsigned *round);

/* CLOCK_MONOTONIC in ns. */
int64_t weft__now_ns(void);

/* Absolute deadline for a relative timeout; -1 (none) for WEFT_FOREVER. */
int64_t weft__deadline(int64_t timeout_ns);

/* Whether a relative timeout is one the API accepts: >= 0, or WEFT_FOREVER (-1). */
static inline bool weft__timeout_ok(int64_t timeout_ns)
{
    return timeout_ns >= 0 || timeout_ns == -1;
}

/* An absolute CLOCK_MONOTONIC deadline (ns, >= 0) as a timespec. */
static inline struct timespec weft__timespec(int64_t deadline_ns)
{
    return (struct timespec){(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
}

/* Initialises a condition variable whose timed waits take CLOCK_MONOTONIC deadlines. */
void weft__cond_init_monotonic(pthread_cond_t *cv);

/* Debug messages go to stderr only when $WEFT_DEBUG is set to a non-empty value other than 0. */
void weft__debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
