/* SPDX-License-Identifier: MIT */
/*
 * Sleeping and waking workers. This file pair owns every sleep and wake-up of a worker thread.
 * See park.c for the protocol.
 */
#ifndef WEFT_PARK_H
#define WEFT_PARK_H

#include "atomic.h"

#include <stdbool.h>
#include <stdint.h>

struct weft__parking {
    _Atomic uint64_t *idle; /* bit i set: worker i is parked or about to park */
    unsigned nwords;
    unsigned nworkers;
    _Atomic uint32_t **words; /* words[i]: worker i's futex word */
    /* woken_at[i]: when a waker last woke worker i (CLOCK_MONOTONIC ns): when its work came,
     * for the adaptive spinning of worker.c, which must not count the wake-up's own latency */
    _Atomic int64_t *woken_at;
};

struct weft__mem;
int weft__park_init(struct weft__parking *p, unsigned nworkers, struct weft__mem *mem);
void weft__park_destroy(struct weft__parking *p, struct weft__mem *mem);
void weft__park_register(struct weft__parking *p, unsigned i, _Atomic uint32_t *word);

/* Worker i announces that it is about to sleep. Returns the key to pass to commit. After it, the
 * worker must look for work (and whatever else may wake it) once more, then either cancel or
 * commit. */
uint32_t weft__park_prepare(struct weft__parking *p, unsigned i);

/* The worker found a reason not to sleep. Returns true if a waker had already chosen it, in
 * which case that wake-up is owed to someone: the caller passes it on with
 * weft__park_notify_one unless it goes on to look for work itself (worker.c, weft__help). */
bool weft__park_cancel(struct weft__parking *p, unsigned i);

/* Sleeps until woken or the absolute deadline (ns, -1 none). Returns true if a waker chose it
 * (rather than a time-out, a targeted unpark or a spurious return). */
bool weft__park_commit(struct weft__parking *p, unsigned i, uint32_t key, int64_t deadline);

/* After new work was published: wakes one parked worker, if any. */
void weft__park_notify_one(struct weft__parking *p);

/* Like notify_one, but only if the idle set already looks non-empty, and without the fence: for
 * work whose owner will run it anyway if nobody wakes (join frames). */
static inline void weft__park_notify_if_idle(struct weft__parking *p)
{
    for (unsigned w = 0; w < p->nwords; w++) {
        /* relaxed: a hint; a stale zero only means the owner runs the work itself */
        if (__builtin_expect(ld_relaxed(&p->idle[w]) != 0, 0)) {
            weft__park_notify_one(p);
            return;
        }
    }
}

/* When a waker last woke worker i (ns), 0 if never: see woken_at. */
static inline int64_t weft__park_woken_at(struct weft__parking *p, unsigned i)
{
    return ld_relaxed(&p->woken_at[i]); /* relaxed: a timestamp for a heuristic */
}

/* Wakes every worker (shutdown). */
void weft__park_notify_all(struct weft__parking *p);

/* Wakes worker i whether or not it is in the idle set (a future it waits on finished). */
void weft__park_unpark(struct weft__parking *p, unsigned i);

#endif
