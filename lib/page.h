/* SPDX-License-Identifier: MIT */
/*
 * The pool's page: one page of its own (mmap) holding what must survive fork() or the pool
 * itself. See page.c.
 */
#ifndef WEFT_PAGE_H
#define WEFT_PAGE_H

#include "atomic.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

struct weft__page {
    _Atomic uint32_t alive; /* 1; reads 0 in a child after fork() where the kernel wipes */
    bool wipes;             /* the kernel wipes this page in a child (MADV_WIPEONFORK) */
    pid_t pid;              /* the creating process: the test where it does not wipe */
    /* Holds on the page: WEFT_PAGE_HOLD while the pool exists, one per outside submission that
     * counts against max_pending and has not started, one per waiting continuation. The last
     * one to go unmaps the page. Apart from the read-mostly line above. */
    WEFT_ALIGNED _Atomic size_t holds;
    /* The budgets, in one word so that a take of both is one CAS: outside submissions not
     * started (max_pending) in the low half, not finished (max_inflight) in the high half;
     * each counted only where its limit is set. */
    _Atomic uint64_t budget;
    uint32_t max_pending; /* the pool's limits (0: none), set before the pool is shared */
    uint32_t max_inflight;
    /* Room under the limits (page.c): submitters waiting for it sleep on room_seq, which a
     * give bumps while room_watch is not 0; an event loop polls room_fd. */
    _Atomic uint32_t room_seq;
    _Atomic uint32_t room_watch; /* sleeping submitters, plus one while room_fd is open */
    _Atomic uint32_t room_fd_open;
    pthread_mutex_t room_mu; /* room_fd and room_ready */
    int room_fd;             /* an eventfd readable while there is room; -1: none */
    bool room_ready;         /* room_fd holds a count (reads readable) */
    bool room_shut;          /* the pool was shut down: submissions fail at once */
    /* Continuations waiting for their predecessor hold the page too (then.c), and queue their
     * task only between launch_begin and launch_end: the pool's destruction sets `dead`, then
     * waits for `launching` to fall, so a launch never touches a freed pool. */
    _Atomic uint32_t launching;
    _Atomic uint32_t dead;
};

#define WEFT_PAGE_HOLD ((size_t)1 << (sizeof(size_t) * 8 - 1))

/* A new page for a pool (holds == WEFT_PAGE_HOLD) with these limits (0: none), or NULL when
 * out of memory. */
struct weft__page *weft__page_new(size_t max_pending, size_t max_inflight);

/* True when the page's pool has a limit on outside submissions. */
static inline bool weft__page_limited(const struct weft__page *pg)
{
    return (pg->max_pending | pg->max_inflight) != 0u;
}

/* Takes one unit of each limited budget for an outside submission: true, or false with nothing
 * taken when a budget is used up. Any thread. */
bool weft__room_take(struct weft__page *pg);

/* Gives back a unit of the max_pending budget (pending) and of the max_inflight budget
 * (inflight), each only where that limit is set, then tells those waiting for room. */
void weft__room_give(struct weft__page *pg, bool pending, bool inflight);

/* Waiting for room: weft__room_watch announces the caller and returns what to wait on; the
 * caller then tries again, and, if there is still no room, calls weft__room_wait (which sleeps
 * until a give or the absolute deadline, -1 for none: 0 or -ETIMEDOUT, possibly spuriously),
 * otherwise weft__room_unwatch. Either ends the announcement. */
uint32_t weft__room_watch(struct weft__page *pg);
int weft__room_wait(struct weft__page *pg, uint32_t seen, int64_t deadline);
void weft__room_unwatch(struct weft__page *pg);

/* The pool's room descriptor, opened on first use (0 or more, or -errno), and its closing at
 * the pool's destruction. */
int weft__room_fd(struct weft__page *pg);
/* At shutdown: wakes every waiter (their submissions now fail with -ESHUTDOWN), and the
 * descriptor stays readable from now on, so that an event loop learns it too. */
void weft__room_shut(struct weft__page *pg);
void weft__room_close(struct weft__page *pg);

/* True in a child process that inherited the page (and its pool) through fork(). */
static inline bool weft__page_forked(const struct weft__page *pg)
{
    /* relaxed: written once before the pool is shared; the kernel zeroes it in a child */
    if (ld_relaxed(&pg->alive) == 0)
        return true;
    return !pg->wipes && getpid() != pg->pid;
}

/* Gives back n of the page's holds (the pool's own is WEFT_PAGE_HOLD); the last one unmaps
 * it. Any thread. */
void weft__page_put(struct weft__page *pg, size_t n);

/* In a fork() child, when the inherited pool is destroyed: the page stays mapped, since
 * inherited continuations may still read it (they then cancel their task). */
void weft__page_drop_forked(struct weft__page *pg);

/* One more hold on the page, for a holder that already knows it is mapped. */
static inline void weft__page_get(struct weft__page *pg)
{
    add_relaxed(&pg->holds, 1); /* relaxed: the caller's own hold (or the pool's) keeps it */
}

/* A continuation's launch: true when the pool still exists, and may be used until
 * weft__launch_end; false when it is being destroyed (then call nothing). */
static inline bool weft__launch_begin(struct weft__page *pg)
{
    if (weft__page_forked(pg))
        return false; /* inherited through fork(): the pool's threads do not exist here */
    /* seq_cst increment then seq_cst load: pairs with the pool's destruction, which stores
     * `dead` then loads `launching` (page.c): one of the two sees the other */
    add_seq_cst(&pg->launching, 1);
    if (ld_seq_cst(&pg->dead) == 0)
        return true;
    sub_release(&pg->launching, 1); /* release: as in weft__launch_end */
    return false;
}

static inline void weft__launch_end(struct weft__page *pg)
{
    sub_release(&pg->launching, 1); /* release: the launch is done before the pool is freed */
}

/* The pool is about to be freed: refuse new launches and wait for those in progress. */
void weft__page_pool_dying(struct weft__page *pg);

#endif
