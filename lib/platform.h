/*
 * Operating-system services: futex waits and wakes, monotonic time, stack limits.
 *
 * weft__futex_wait() sleeps while *word == expected, until woken or the absolute
 * CLOCK_MONOTONIC deadline (in ns; negative: none) passes. It may return spuriously, so every
 * caller re-checks its condition in a loop. Returns 0 or -ETIMEDOUT.
 */
#ifndef WEFT_PLATFORM_H
#define WEFT_PLATFORM_H

#include <stdatomic.h>
#include <stdint.h>

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

/* Debug messages go to stderr only when $WEFT_DEBUG is set to a non-empty value other than 0. */
void weft__debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
