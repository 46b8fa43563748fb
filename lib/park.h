/* SPDX-License-Identifier: MIT */
/*
 * Sleeping and waking workers. This file pair owns every sleep and wake-up of a worker thread.
 * See park.c for the protocol.
 */
#ifndef WEFT_PARK_H
#define WEFT_PARK_H

#include "atomic.h"
#include "seg.h"

#include <stdbool.h>
#include <stdint.h>

/* The idle set has room for WEFT_MAX_THREADS workers from the start (128 bytes), so that a pool
 * that grows never moves it; the futex words are a segmented table (seg.h) for the same reason.
 * A grow registers the new workers' words, then publishes how many there are (resize.c). */
#define WEFT_PARK_WORDS ((WEFT_MAX_THREADS + 63) / 64)

struct weft__parking {
    _Atomic uint64_t *idle;              /* bit i set: worker i is parked or about to park */
    _Atomic uint32_t nwords;             /* words of idle that hold a registered worker's bit */
    _Atomic uint32_t nworkers;           /* workers registered */
    _Atomic uint32_t **words[WEFT_SEGS]; /* worker i's futex word, by segment */
    /* When a waker last woke worker i (CLOCK_MONOTONIC ns), by segment: when its work came,
     * for the adaptive spinning of worker.c, which must not count the wake-up's own latency */
    _Atomic int64_t *woken_at[WEFT_SEGS];
    struct weft__mem *mem; /* the pool's allocator, for the tables */
};

struct weft__mem;
int weft__park_init(struct weft__parking *p, struct weft__mem *mem);
void weft__park_destroy(struct weft__parking *p, struct weft__mem *mem);
/* Registers worker i's futex word, before the worker can run: 0 or -ENOMEM. */
int weft__park_register(struct weft__parking *p, unsigned i, _Atomic uint32_t *word);
/* Workers 0..n-1 are registered: wake-ups may go to them from now on. Only grows (resize.c). */
void weft__park_publish(struct weft__parking *p, unsigned n);

/* The words of the idle set in use. relaxed: a worker that parks was registered before its
 * thread started, and a waker reads this after its fence F2 (park.c): if the worker's F1
 * precedes F2, the registration, which happens before F1, is visible after F2 (C11's rule for
 * seq_cst fences, as C++20 states it), so the waker sees the worker's word. */
static inline unsigned weft__park_nwords(const struct weft__parking *p)
{
    return ld_relaxed(&p->nwords);
}

/* When a waker last woke worker i (ns), 0 if never: see woken_at. */
static inline int64_t weft__park_woken_at(const struct weft__parking *p, unsigned i)
{
    unsigned k = weft__seg(i);
    return ld_relaxed(&p->woken_at[k][weft__seg_off(i, k)]); /* relaxed: a heuristic's clock */
}

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
    unsigned nw = weft__park_nwords(p);
    for (unsigned w = 0; w < nw; w++) {
        /* relaxed: a hint; a stale zero only means the owner runs the work itself */
        if (__builtin_expect(ld_relaxed(&p->idle[w]) != 0, 0)) {
            weft__park_notify_one(p);
            return;
        }
    }
}

/* Wakes every worker (shutdown). */
void weft__park_notify_all(struct weft__parking *p);

/* Wakes worker i whether or not it is in the idle set (a future it waits on finished). */
void weft__park_unpark(struct weft__parking *p, unsigned i);

#endif
