/* SPDX-License-Identifier: MIT */
/*
 * The pool's page.
 *
 * Fork detection without global state: `alive` sits on a page the kernel wipes in a child after
 * fork() (MADV_WIPEONFORK), so a child reads 0 and knows the pool's threads are gone. Where the
 * kernel cannot wipe, the creator's pid is compared instead (a system call, on that fallback
 * only).
 *
 * The max_pending budget: `holds` counts the outside submissions that have not started, plus
 * WEFT_PAGE_HOLD while the pool exists. A future that counts keeps a pointer to the page and
 * gives its count back when it leaves PENDING, whoever moves it: a worker starting it, the
 * shutdown's sweep, or weft_future_cancel on any thread. That last one may run after the pool
 * was destroyed (the CAS that cancels lets a worker drop the task at once), so the count does
 * not live in the pool: the page outlives it until every count is back, and whoever brings
 * `holds` to zero unmaps it.
 *
 * Room. An outside submission takes a unit of each budget that has a limit (the max_pending
 * one until it starts, the max_inflight one until it finishes), both with one CAS on `budget`,
 * which never goes past a limit; one that finds a budget used up takes nothing and fails with
 * -EAGAIN, or, from weft_submit_timed, waits for room. A waiter announces itself in
 * `room_watch` (seq_cst) and then tries again; a give decrements (seq_cst) and then reads
 * `room_watch` (seq_cst): in the single total order of those four, either the retry sees the
 * unit given back, or the give sees the waiter and bumps `room_seq`, which the waiter read
 * before its retry and sleeps on, so it wakes. A take that fails changes nothing, so it has
 * nothing to announce (a waiter never wakes itself). Only a give that finds no room before it
 * (its decrement's old value) wakes anyone: a waiter sleeps only after a retry that found no
 * room, and the give that brought room back after that retry is such a give. So when the
 * limits are not reached, starting and finishing tasks cost no system call.
 *
 * An open room descriptor counts as a watcher. A take that leaves no room, and a give that
 * found none, recomputes under `room_mu` whether there is room and makes the eventfd readable or
 * not to match; other takes and gives cannot change the answer. Every change of the answer is
 * thus followed by a recomputation that reads counts including it, so the last one tells the
 * truth.
 *
 * In a child after fork() nothing gives counts back (a cancel there leaves inherited futures
 * alone, and the pool's workers do not exist), but an inherited continuation may still read
 * the page when its predecessor finishes there, so destroying the inherited pool leaves the
 * page mapped: one page per inherited pool, for the life of the child.
 */
#include "page.h"

#include "alloc.h"
#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Static_assert(sizeof(struct weft__page) <= 4096, "the page must fit the smallest page size");

struct weft__page *weft__page_new(size_t max_pending, size_t max_inflight)
{
    bool wipes = false;
    struct weft__page *pg = weft__map_fork_page(&wipes);
    if (pg == NULL)
        return NULL;
    atomic_init(&pg->alive, 1);
    pg->wipes = wipes;
    pg->pid = getpid();
    atomic_init(&pg->holds, WEFT_PAGE_HOLD);
    atomic_init(&pg->budget, 0);
    /* Counts never pass their limit, so a limit past a half's range cannot be reached anyway */
    pg->max_pending = max_pending > UINT32_MAX ? UINT32_MAX : (uint32_t)max_pending;
    pg->max_inflight = max_inflight > UINT32_MAX ? UINT32_MAX : (uint32_t)max_inflight;
    atomic_init(&pg->room_seq, 0);
    atomic_init(&pg->room_watch, 0);
    atomic_init(&pg->room_fd_open, 0);
    pthread_mutex_init(&pg->room_mu, NULL);
    pg->room_fd = -1;
    pg->room_ready = false;
    pg->room_shut = false;
    atomic_init(&pg->launching, 0);
    atomic_init(&pg->dead, 0);
    return pg;
}

void weft__page_put(struct weft__page *pg, size_t n)
{
    /* acq_rel: every holder's last use of the page comes before the unmapping, which the last
     * one does; pairs with the other holders' decrements */
    if (sub_acq_rel(&pg->holds, n) == n) {
        pthread_mutex_destroy(&pg->room_mu);
        weft__unmap_fork_page(pg);
    }
}

/* --- room --- */

#define INFLIGHT_ONE ((uint64_t)1 << 32)

static bool room_in(const struct weft__page *pg, uint64_t b)
{
    return (pg->max_pending == 0 || (uint32_t)b < pg->max_pending) &&
           (pg->max_inflight == 0 || (uint32_t)(b >> 32) < pg->max_inflight);
}

static bool has_room(const struct weft__page *pg)
{
    /* seq_cst: part of the total order with the takes and gives (see the top of the file) */
    return room_in(pg, ld_seq_cst(&pg->budget));
}

/* Makes the room descriptor say whether there is room now. */
static void room_update(struct weft__page *pg)
{
    pthread_mutex_lock(&pg->room_mu);
    if (pg->room_fd >= 0) {
        bool ready = pg->room_shut || has_room(pg);
        uint64_t v = 1;
        ssize_t n = 0;
        if (ready && !pg->room_ready)
            n = write(pg->room_fd, &v, sizeof(v));
        else if (!ready && pg->room_ready)
            n = read(pg->room_fd, &v, sizeof(v));
        if (n == (ssize_t)sizeof(v)) /* an eventfd holding 0 or 1 never fails these */
            pg->room_ready = ready;
    }
    pthread_mutex_unlock(&pg->room_mu);
}

/* The units of `budget` for one task: of max_pending (pending) and of max_inflight (inflight),
 * each only where that limit is set. */
static uint64_t units(const struct weft__page *pg, bool pending, bool inflight)
{
    return (pending && pg->max_pending != 0 ? 1 : 0) +
           (inflight && pg->max_inflight != 0 ? INFLIGHT_ONE : 0);
}

/* Wakes every submitter waiting for room (they try again). */
static void room_signal(struct weft__page *pg)
{
    /* release: pairs with the acquire load of room_seq in weft__room_watch */
    add_release(&pg->room_seq, 1);
    weft__futex_wake(&pg->room_seq, INT_MAX);
}

bool weft__room_take(struct weft__page *pg)
{
    uint64_t one = units(pg, true, true);
    /* seq_cst, the load and both sides of the CAS: the read that finds no room is the one the
     * argument at the top of the file orders against a give's seq_cst decrement */
    uint64_t b = ld_seq_cst(&pg->budget);
    do {
        if (!room_in(pg, b))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&pg->budget, &b, b + one, memory_order_seq_cst,
                                                    memory_order_seq_cst));
    /* seq_cst: after the take; pairs with the seq_cst store in weft__room_fd, which then
     * reads the budget: one of the two sees the other. A take that leaves room changes
     * nothing the descriptor says (see the top of the file). */
    if (ld_seq_cst(&pg->room_fd_open) != 0 && !room_in(pg, b + one))
        room_update(pg);
    return true;
}

void weft__room_give(struct weft__page *pg, bool pending, bool inflight)
{
    uint64_t one = units(pg, pending, inflight);
    if (one == 0)
        return;
    /* seq_cst decrement, then a seq_cst load of room_watch: see the top of the file */
    uint64_t old = sub_seq_cst(&pg->budget, one);
    if (ld_seq_cst(&pg->room_watch) == 0 || room_in(pg, old))
        return; /* nobody watches, or there was room already: nobody waits for this one */
    room_signal(pg);
    if (ld_acquire(&pg->room_fd_open) != 0) /* acquire: pairs with the release in room_fd */
        room_update(pg);
}

uint32_t weft__room_watch(struct weft__page *pg)
{
    /* acquire: pairs with the release bump in room_signal */
    uint32_t seen = ld_acquire(&pg->room_seq);
    add_seq_cst(&pg->room_watch, 1); /* seq_cst: see the top of the file */
    return seen;
}

int weft__room_wait(struct weft__page *pg, uint32_t seen, int64_t deadline)
{
    int rc = weft__futex_wait(&pg->room_seq, seen, deadline);
    weft__room_unwatch(pg);
    return rc;
}

void weft__room_unwatch(struct weft__page *pg)
{
    sub_relaxed(&pg->room_watch, 1); /* relaxed: a give that still sees it only wakes in vain */
}

int weft__room_fd(struct weft__page *pg)
{
    pthread_mutex_lock(&pg->room_mu);
    int fd = pg->room_fd;
    if (fd < 0) {
        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
            int err = errno;
            pthread_mutex_unlock(&pg->room_mu);
            return -err;
        }
        pg->room_fd = fd;
        pg->room_ready = false;
        add_seq_cst(&pg->room_watch, 1); /* seq_cst: the fd is a watcher from now on */
        /* seq_cst: pairs with the seq_cst load in weft__room_take (see there); the release
         * side pairs with the acquire load in weft__room_give */
        st_seq_cst(&pg->room_fd_open, 1);
    }
    pthread_mutex_unlock(&pg->room_mu);
    room_update(pg); /* counts read after the store above */
    return fd;
}

void weft__room_shut(struct weft__page *pg)
{
    pthread_mutex_lock(&pg->room_mu);
    pg->room_shut = true;
    pthread_mutex_unlock(&pg->room_mu);
    room_signal(pg);
    room_update(pg);
}

void weft__room_close(struct weft__page *pg)
{
    pthread_mutex_lock(&pg->room_mu);
    if (pg->room_fd >= 0) {
        close(pg->room_fd);
        pg->room_fd = -1;
    }
    pthread_mutex_unlock(&pg->room_mu);
}

void weft__page_pool_dying(struct weft__page *pg)
{
    st_seq_cst(&pg->dead, 1); /* seq_cst: see weft__launch_begin */
    unsigned round = 0;
    /* acquire: pairs with the release decrements; a launch is a few instructions long */
    while (ld_seq_cst(&pg->launching) != 0)
        weft__backoff(&round);
}

void weft__page_drop_forked(struct weft__page *pg)
{
    (void)pg; /* one page per inherited pool, kept for the life of the child */
}
