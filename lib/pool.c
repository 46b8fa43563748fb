/* SPDX-License-Identifier: MIT */
/*
 * Pool lifecycle: creation, shutdown (with the CANCEL sweep) and destruction.
 *
 * Creation validates everything before it allocates (config.c), then allocates everything
 * before it starts a thread, and unwinds through one path (teardown) whatever step fails.
 * Shutdown sets the closed bit that every submission checks in a way the sweep cannot miss
 * (inject.c for outside submissions, submit.c for the workers' own).
 */
#include "worker.h"

#include "alloc.h"
#include "config.h"
#include "platform.h"
#include "topology.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

size_t weft_pool_memory(const weft_pool *pool)
{
    if (pool == NULL)
        return 0;
    /* relaxed: a snapshot of a tally */
    return atomic_load_explicit(&pool->mem.live, memory_order_relaxed) +
           (size_t)sysconf(_SC_PAGESIZE);
}

unsigned weft_pool_size(const weft_pool *pool)
{
    /* acquire: pairs with the release stores of weft__pool_grow and shrink (resize.c): who
     * reads a new size sees what the resizing thread did before weft_pool_resize */
    return pool != NULL ? ld_acquire(&((weft_pool *)pool)->target) : 0;
}

bool weft_pool_is_shutdown(const weft_pool *pool)
{
    if (pool == NULL)
        return false;
    /* acquire: pairs with the release in weft_pool_shutdown, as weft_submit's fast refusal */
    return (ld_acquire(&pool->shutdown) & WEFT_SHUT_CLOSED) || weft__pool_forked(pool);
}

/* --- creation and teardown --- */

/* Frees everything a pool owns; every part may be missing (creation failed before it).
 * forked: in a child after fork(), where a vanished worker may have held the injection queue's
 * mutexes, so they are freed without being destroyed. */
static void free_pool(weft_pool *pool, bool forked)
{
    weft__lend_destroy(pool, forked); /* joins the threads not joined yet */
    if (!forked)
        pthread_mutex_destroy(&pool->resize_mu);
    for (unsigned i = 0; i < pool->made; i++) {
        struct weft__worker *w = weft__worker_at(pool, i);
        weft__deque_destroy(&w->deque);
        weft__trace_free(&w->trace, &pool->mem);
    }
    for (unsigned k = 0; k < WEFT_SEGS; k++)
        weft__mem_free(&pool->mem, pool->seg[k]);
    weft__mem_free(&pool->mem, pool->trace_path);
    weft__mem_free(&pool->mem, pool->stats_path);
    weft__ws_free(pool, forked);
    weft__park_destroy(&pool->park, &pool->mem);
    if (forked)
        weft__mem_free(&pool->mem, pool->inject.shard);
    else
        weft__inject_destroy(&pool->inject, &pool->mem);
    if (pool->page != NULL) {
        if (forked)
            weft__page_drop_forked(pool->page);
        else
            weft__page_put(pool->page, WEFT_PAGE_HOLD); /* futures may still hold counts */
    }
    struct weft__mem mem = pool->mem; /* the pool frees itself through a copy */
    weft__mem_free(&mem, pool);
}

/* Waits until the `all` workers that run have left their loop. From then on no thread starts
 * any more, and every start has returned (a spare's starter is a lender, whose worker cannot
 * leave before the lender has it back): the threads' records are complete for the joins. */
static void wait_workers_left(weft_pool *pool, uint32_t all)
{
    /* acquire: pairs with the acq_rel increments in weft__thread_main */
    for (uint32_t left; (left = ld_acquire(&pool->exited)) < all;)
        weft__futex_wait(&pool->exited, left, -1);
}

/* Stops the workers, joins every thread, writes the trace and statistics (made: the pool was
 * made, rather than its creation failing) and frees the pool: the end of weft_pool_destroy, and
 * the one unwinding path of a failed weft_pool_create. */
static void teardown(weft_pool *pool, bool made)
{
    /* Under the resize mutex: no worker retires from now on (resize.c, weft__retire), so the
     * count of those that will leave their loop is exact. */
    pthread_mutex_lock(&pool->resize_mu);
    uint32_t all = weft__pool_live(pool);
    st_relaxed(&pool->nthreads, all); /* published by the seq_cst RMW below */
    /* seq_cst: pairs with the workers' seq_cst load before they leave (worker.c), which with
     * weft__inject_drained's seq_cst loads must not miss a task accepted before the close */
    or_seq_cst(&pool->shutdown, WEFT_SHUT_CLOSED | WEFT_SHUT_EXIT);
    pthread_mutex_unlock(&pool->resize_mu);
    weft__park_notify_all(&pool->park);
    wait_workers_left(pool, all);
    weft__lend_join(pool);
    if (pool->trace_path != NULL && made)
        weft__pool_write_trace(pool);
    if (pool->stats_path != NULL && made)
        weft__pool_write_stats(pool);
    if (pool->ws != NULL && made)
        weft__ws_write(pool);
    if (pool->page != NULL) {
        weft__page_pool_dying(pool->page); /* continuations launched from now on are cancelled */
        weft__room_close(pool->page);
    }
    free_pool(pool, false);
}

int weft_pool_create(const weft_config *cfg, weft_pool **out)
{
    weft_config defaults;
    if (out == NULL)
        return -EINVAL;
    if (cfg == NULL) {
        weft_config_init(&defaults);
        cfg = &defaults;
    }
    struct weft__settings st;
    int rc = weft__settings_resolve(cfg, &st, NULL, 0);
    if (rc != 0)
        return rc;

    struct weft__mem mem = {cfg->mem_alloc, cfg->mem_free, cfg->mem_opaque, 0};
    /* zeroed: every part absent, so that free_pool can unwind from anywhere */
    weft_pool *pool = weft__mem_alloc(&mem, WEFT_CACHE_LINE, sizeof(*pool));
    if (pool == NULL)
        return -ENOMEM;
    pool->mem = mem; /* its count holds the pool's own bytes already */
    atomic_init(&pool->mem.live, atomic_load_explicit(&mem.live, memory_order_relaxed));
    pool->bind = st.bind;
    pool->stack_size = st.stack;
    pool->max_pending = cfg->max_pending;
    pool->on_worker_start = cfg->on_worker_start;
    pool->on_worker_stop = cfg->on_worker_stop;
    pool->hook_data = cfg->hook_data;
    snprintf(pool->name, sizeof(pool->name), "%s", cfg->name != NULL ? cfg->name : "weft");
    atomic_init(&pool->nslots, 0);
    atomic_init(&pool->target, 0);
    atomic_init(&pool->shutdown, 0);
    atomic_init(&pool->swept, 0);
    atomic_init(&pool->sweepers, 0);
    atomic_init(&pool->nthreads, 0);
    atomic_init(&pool->exited, 0);
    atomic_init(&pool->spinners, 0);
    pool->cpus = weft__affinity_cpus();
    /* The two mutexes first: teardown and free_pool take them whatever failed after. */
    if (pthread_mutex_init(&pool->resize_mu, NULL) != 0) {
        weft__mem_free(&mem, pool);
        return -ENOMEM;
    }
    rc = weft__lend_init(pool);
    if (rc != 0) {
        pthread_mutex_destroy(&pool->resize_mu);
        weft__mem_free(&mem, pool);
        return rc;
    }

    pool->page = weft__page_new(cfg->max_pending, cfg->max_inflight);
    rc = pool->page != NULL ? 0 : -ENOMEM;
    if (rc == 0)
        rc = weft__inject_init(&pool->inject, st.threads, &pool->mem);
    if (rc == 0)
        rc = weft__park_init(&pool->park, &pool->mem);
    if (rc == 0 && st.trace != NULL) {
        pool->trace_cap = weft__trace_capacity(st.trace_events);
        pool->trace_path = weft__mem_alloc(&pool->mem, 0, strlen(st.trace) + 1);
        if (pool->trace_path != NULL)
            strcpy(pool->trace_path, st.trace);
        else
            rc = -ENOMEM;
    }
    if (rc == 0 && st.stats != NULL) {
        pool->stats_path = weft__mem_alloc(&pool->mem, 0, strlen(st.stats) + 1);
        if (pool->stats_path != NULL)
            strcpy(pool->stats_path, st.stats);
        else
            rc = -ENOMEM;
    }
    if (rc == 0 && st.workspan != NULL)
        rc = weft__ws_create(pool, st.workspan);
    if (rc == 0) {
        /* The workers are made and started as a grow from none would (resize.c). */
        pthread_mutex_lock(&pool->resize_mu);
        rc = weft__pool_grow(pool, st.threads);
        pthread_mutex_unlock(&pool->resize_mu);
    }
    if (rc != 0) {
        teardown(pool, false);
        return rc;
    }
    weft__debug("pool %p: %u workers, bind %d, stack %zu bytes, max_pending %zu", (void *)pool,
                st.threads, (int)st.bind, st.stack, pool->max_pending);
    weft__display_env(pool, cfg);
    *out = pool;
    return 0;
}

/* --- shutdown and destruction --- */

/* The CANCEL sweep: cancels every submitted task still queued, and returns only when none is
 * left PENDING anywhere a worker could start it.
 *
 * 1. The cancel bit is set (seq_cst) before the sweep. A worker pushing a submission onto its
 *    own deque, or taking a task, does so with `taking` up (seq_cst store, then a seq_cst load
 *    of the bits): either it sees the bit, or the sweep sees `taking` up and waits for it to
 *    fall. So after the first wait, every push has landed and every later take sees the bit.
 * 2. Everything queued is taken off the injection shards and the deques. Submitted tasks move
 *    to CANCELLED at once, but quietly: no waiter is woken and no callback runs yet.
 *    Work spread by running tasks (join frames) is kept aside: shutdown never cancels it.
 * 3. A second wait for `taking` covers the workers that took a task after the bit was set:
 *    they cancel it themselves, before `taking` falls (worker.c, decide).
 * 4. The kept frames go back on the injection queue, past the closed bit, for any worker.
 * 5. Only now, with nothing of the sweep's in flight, the cancelled tasks are announced: their
 *    waiters wake and their callbacks run. A callback that calls weft_pool_shutdown again
 *    finds nothing left to wait for, and returns at once.
 *
 * None of the waits spins without bound: they back off to sleeping (weft__backoff), because the
 * thread they wait for may have a lower priority than the one that shuts down. */

static void wait_takers(weft_pool *pool, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned round = 0;
        /* seq_cst: pairs with the seq_cst store of taking (worker.c and weft_submit); its
         * acquire side also pairs with the release that drops taking, so what the worker did
         * (a push, a cancel) is visible here */
        while (ld_seq_cst(&weft__worker_at(pool, i)->taking) != 0)
            weft__backoff(&round);
    }
}

struct sweep {
    struct weft__task *cancelled; /* futures this sweep moved to CANCELLED, linked by next */
    struct weft__task *keep;      /* join frames to put back */
};

static void sweep_one(weft_pool *pool, struct weft__task *t, struct sweep *sw)
{
    if (t->flags & WEFT_TASK_SUBMITTED) {
        weft_future *f = weft__container_of(t, weft_future, task);
        if (weft__future_cancel_quiet(f)) {
            add_relaxed(&pool->swept, 1);        /* relaxed: a statistic */
            st_relaxed(&t->next, sw->cancelled); /* relaxed: the task is ours now */
            sw->cancelled = t;
        } else {
            /* Cancelled by its owner while queued: a worker that popped it would count it as
             * skipped; the sweep took it, so the sweep counts it. Started by a wait that
             * claimed it (worker.c, weft__claim): counted as run already. relaxed: the failed
             * CAS read the word, and neither state goes back. */
            if ((ld_relaxed(&f->state) & WEFT_FS_STATE_MASK) == WEFT_CANCELLED)
                add_relaxed(&pool->swept, 1); /* relaxed: a statistic */
            weft_future_release(f);           /* the queue's reference */
        }
    } else {
        st_relaxed(&t->next, sw->keep); /* relaxed: the task is ours until pushed back */
        sw->keep = t;
    }
}

static void cancel_everything_queued(weft_pool *pool)
{
    struct sweep sw = {NULL, NULL};
    struct weft__task *batch[64];
    /* seq_cst: another sweep running at once (a shutdown from a callback on a worker, say)
     * may hold tasks it stole from a deque, still PENDING, where this one cannot see them: each
     * waits below for the others to have cancelled what they took */
    add_seq_cst(&pool->sweepers, 1);
    /* Every worker the sweep must see: read under the resize mutex, after the closed bit,
     * since a grow checks the bit under it (resize.c): a grow either published its workers
     * before, or fails with -ESHUTDOWN. */
    pthread_mutex_lock(&pool->resize_mu);
    unsigned nslots = weft__pool_slots(pool);
    pthread_mutex_unlock(&pool->resize_mu);
    wait_takers(pool, nslots);
    for (unsigned s = 0; s < pool->inject.nshards; s++) {
        struct weft__inject_shard *sh = &pool->inject.shard[s];
        unsigned round = 0;
        /* seq_cst: after the seq_cst set of the closed bit, a push in flight is counted here or
         * backs out (inject.c); wait for those that got in. */
        while (ld_seq_cst(&sh->count) != 0) {
            size_t n = weft__inject_pop(&pool->inject, s, batch, 64, true);
            for (size_t i = 0; i < n; i++)
                sweep_one(pool, batch[i], &sw);
            weft__inject_taken(&pool->inject, s, n);
            if (n == 0)
                weft__backoff(&round); /* a producer between its two steps, or a worker
                                          placing a batch it popped */
        }
    }
    for (unsigned i = 0; i < nslots; i++) {
        void *x;
        while ((x = weft__deque_steal(&weft__worker_at(pool, i)->deque, WEFT_STEAL_ANY)) !=
               WEFT_STEAL_EMPTY) {
            if (x != WEFT_STEAL_ABORT)
                sweep_one(pool, x, &sw);
        }
    }
    wait_takers(pool, nslots);
    /* Everything this sweep took is CANCELLED or kept aside (frames are never cancelled): wait
     * for the other sweeps in progress to be as far. None waits for this one's announcements,
     * so a sweep started from one of them does not wait for its own caller. acq_rel and
     * seq_cst: pair with the other sweeps' RMWs, whose cancellations they publish. */
    sub_acq_rel(&pool->sweepers, 1);
    for (unsigned round = 0; ld_seq_cst(&pool->sweepers) != 0;)
        weft__backoff(&round);
    while (sw.keep != NULL) {
        struct weft__task *next = ld_relaxed(&sw.keep->next);
        weft__inject_push(&pool->inject, 0, sw.keep, NULL, 0);
        sw.keep = next;
    }
    weft__park_notify_one(&pool->park);
    while (sw.cancelled != NULL) {
        weft_future *f = weft__container_of(sw.cancelled, weft_future, task);
        sw.cancelled = ld_relaxed(&sw.cancelled->next);
        weft__uncount(f, true);
        weft__future_announce(f);
        weft_future_release(f); /* the queue's reference */
    }
}

int weft_pool_shutdown(weft_pool *pool, weft_shutdown_mode mode)
{
    if (pool == NULL || (mode != WEFT_SHUTDOWN_DRAIN && mode != WEFT_SHUTDOWN_CANCEL))
        return -EINVAL;
    uint32_t bits = WEFT_SHUT_CLOSED | (mode == WEFT_SHUTDOWN_CANCEL ? WEFT_SHUT_CANCEL : 0);
    /* seq_cst: pairs with the seq_cst loads of the bits after the seq_cst store or increment
     * that announces a push (weft__inject_push, weft_submit's own-deque path) or a take
     * (worker.c, decide); its release side also pairs with weft_submit's and run_loop's
     * acquire fast checks of the closed bit, which refuse early but decide nothing */
    or_seq_cst(&pool->shutdown, bits);
    if (weft__pool_forked(pool))
        return 0;
    /* After the bit: a submitter that waits for room and wakes finds the pool closed */
    weft__room_shut(pool->page);
    if (mode == WEFT_SHUTDOWN_CANCEL)
        cancel_everything_queued(pool);
    return 0;
}

int weft_pool_destroy(weft_pool *pool)
{
    if (pool == NULL)
        return 0;
    struct weft__worker *self = weft__me();
    if (self != NULL && self->pool == pool)
        return -EDEADLK;
    if (weft__pool_forked(pool)) {
        /* In a child after fork(): the workers do not exist, so free the memory and touch
         * nothing else. Tasks still queued are dropped, their futures never finishing here. */
        free_pool(pool, true);
        return 0;
    }
    weft_pool_shutdown(pool, WEFT_SHUTDOWN_DRAIN);
    teardown(pool, true);
    return 0;
}
