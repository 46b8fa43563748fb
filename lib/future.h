/* SPDX-License-Identifier: MIT */
/*
 * Futures. See future.c for the state machine and its invariants.
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include "weft.h"

#include "atomic.h"
#include "list.h"
#include "page.h"
#include "task.h"

#include <stdbool.h>
#include <stdint.h>

/* The state word: the weft_state in the low bits, flags above. */
#define WEFT_FS_STATE_MASK 0x7u
#define WEFT_FS_CANCEL_REQ 0x8u  /* cancellation requested while RUNNING */
#define WEFT_FS_HAS_NODES  0x10u /* the node list may be non-empty */
#define WEFT_FS_WAITERS    0x20u /* threads sleep in futex_wait on the state word */
#define WEFT_FS_SETTING    0x40u /* a promise's setter has claimed it (still PENDING to readers) */

static inline bool weft__state_final(uint32_t s)
{
    return (s & WEFT_FS_STATE_MASK) >= WEFT_DONE;
}

/* Something to do when a future finishes. Nodes live on the future's list under its lock;
 * fire() is called once, outside the lock, by the thread that finished it. */
struct weft__fnode {
    struct weft__list link;
    void (*fire)(struct weft__fnode *n, weft_future *f);
    bool linked; /* on the future's list; under the future's lock */
    /* For nodes their owner waits to reclaim (weft__future_remove_node): 0 until fire() is
     * done with the node, then 1; 2 while the owner sleeps waiting for it. */
    _Atomic uint32_t fired;
};

/* The last touch of fire() on a node its owner may be waiting to reclaim: after it the owner
 * may free the node. Wakes the owner if it sleeps. */
void weft__fnode_fired(struct weft__fnode *n);

/* What differs between kinds of futures: a task's future, a gather (gather.c). */
struct weft__future_ops {
    /* weft_future_cancel. *pid is the caller's process id, or 0 until looked up (once for many
     * calls, since it is a system call). */
    int (*cancel)(weft_future *f, int32_t *pid);
    /* Frees f once its last reference is gone. */
    void (*free)(weft_future *f);
};

struct weft_future {
    struct weft__task task; /* a submitted future is its own task */
    _Atomic uint32_t state;
    _Atomic uint32_t lock; /* protects nodes; 0 free, 1 held, 2 held with sleepers */
    _Atomic uint32_t refs;
    int32_t pid; /* submitted: the pool's process (fork, see weft__future_cancel_task); or 0 */
    union {
        weft_fn fn; /* a task's function, until it has returned */
        /* Work and span (workspan.c), once ws_flags says WEFT_WS_ENDED: a task's own work, or
         * the pool a promise was completed in. Written before the final state (release). */
        int64_t ws_work;
        const weft_pool *ws_source;
    };
    union {
        void *arg; /* a task's argument */
        /* A promise's: the free function weft_future_set_result_owned gave for its result
         * (written by the setter before the final state; read by promise_free) */
        void (*result_free)(void *result);
    };
    weft_pool *pool;           /* the pool that runs it; NULL for a gather */
    void *result;              /* written by the runner before the final state (release) */
    int code;                  /* likewise */
    _Atomic uint32_t ws_flags; /* WEFT_WS_* (workspan.h); 0 unless its pool measures */
    struct weft__list nodes;
    /* Non-NULL when it counts against its pool's max_pending or max_inflight: the pool's page
     * (page.h), which outlives the pool until every count is given back. Whoever wins the CAS
     * out of PENDING gives the max_pending count back (weft__uncount), and the thread that ran
     * it the max_inflight count (weft__unflight). */
    struct weft__page *counted_in;
    const struct weft__future_ops *ops;
    /* Work and span: where a task of a measuring pool starts (written at submission), then
     * where it ended (WEFT_WS_ENDED). */
    int64_t ws_span, ws_bspan;
};

/* The cancel of a task's future (its ops->cancel), for futures that differ from a task's only
 * in how they are freed (continuations, then.c). */
int weft__task_future_cancel(weft_future *f, int32_t *pid);

/* A task's future, as weft_submit makes it: PENDING, with `refs` references, not yet queued
 * (the caller sets task.run). NULL when out of memory. */
weft_future *weft__future_new(weft_pool *pool, weft_fn fn, void *arg, uint32_t refs);

/* Whether f is a submitted task's future (not a gather, a promise or a continuation). */
bool weft__future_is_task(const weft_future *f);

/* Initialises f as a PENDING future with the given behaviour and `refs` references. */
void weft__future_init(weft_future *f, const struct weft__future_ops *ops, weft_pool *pool,
                       weft_fn fn, void *arg, uint32_t refs);

/* PENDING -> RUNNING. False if it was cancelled (it must then not run). */
bool weft__future_start(weft_future *f);

/* RUNNING -> DONE / FAILED / CANCELLED, by the runner only (whoever won weft__future_start), or
 * a promise claimed with WEFT_FS_SETTING -> DONE / FAILED, by its setter.
 * Wakes waiters and fires nodes. */
void weft__future_finish(weft_future *f, weft_state st, int code, void *result);

/* Waits until f is final, for a caller that lost a claim on it (a promise's SETTING, a
 * gather's RUNNING) to a thread a few instructions away from its final CAS in
 * weft__future_finish: so that the loser answers "already finished" only once that is true
 * for every reader. Backs off to sleeping (the claimant may have a lower priority). */
void weft__future_settle(weft_future *f);

/* PENDING -> CANCELLED, and nothing else: false if the future has started or finished. Wakes
 * waiters and fires nodes. */
bool weft__future_cancel_pending(weft_future *f);

/* PENDING -> CANCELLED without waking anyone yet: for a caller that must not run callbacks
 * where it stands (shutdown's sweep, a worker deciding a task's fate). On success the caller
 * calls weft__future_announce once it may run them. */
bool weft__future_cancel_quiet(weft_future *f);

/* After weft__future_cancel_quiet: wakes the waiters and fires the nodes. */
void weft__future_announce(weft_future *f);

/* Adds n to f's list, unless f has finished: then returns false and n is not added. */
bool weft__future_add_node(weft_future *f, struct weft__fnode *n);

/* Takes n back off f's list. If it was already taken off for firing, waits until its fire()
 * has called weft__fnode_fired. */
void weft__future_remove_node(weft_future *f, struct weft__fnode *n);

/* Gives back one reference without freeing: true when it was the last, and the caller must
 * then free f (f->ops->free), for instance in a loop rather than by recursion. */
bool weft__future_unref(weft_future *f);

/* Waits from a thread that is not a worker: sleeps on the state word. 0 or -ETIMEDOUT. */
int weft__future_block(weft_future *f, int64_t deadline);

/* What a finished future answers: 0 with *result set (if result is not NULL) for DONE, its
 * code for FAILED, -ECANCELED for CANCELLED; -EAGAIN while it has not finished. */
int weft__future_outcome(const weft_future *f, void **result);

/* f has left PENDING, to RUNNING (final false) or CANCELLED (final true): it no longer counts
 * against max_pending, nor, when it will never run, against max_inflight. Called once, by
 * whoever won the CAS out of PENDING. */
static inline void weft__uncount(weft_future *f, bool final)
{
    struct weft__page *pg = f->counted_in;
    if (pg == NULL)
        return;
    bool flies = pg->max_inflight != 0;
    weft__room_give(pg, true, final);
    if (final || !flies)
        weft__page_put(pg, 1); /* then the page, which the count held */
}

/* f, which started, has finished running: it no longer counts against max_inflight. Called
 * once, by the thread that ran it, before the future's final state is published (so that a
 * caller who waited for it finds its room). */
static inline void weft__unflight(weft_future *f)
{
    struct weft__page *pg = f->counted_in;
    if (pg == NULL || pg->max_inflight == 0)
        return;
    weft__room_give(pg, false, true);
    weft__page_put(pg, 1);
}

/* True if any of fs[0..n) is NULL. */
static inline bool weft__any_null(weft_future *const fs[], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fs[i] == NULL)
            return true;
    }
    return false;
}

#endif
