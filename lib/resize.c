/* SPDX-License-Identifier: MIT */
/*
 * Growing and shrinking a pool: weft_pool_resize, the workers' own threads, and retirement.
 *
 * Records. Worker records live in a segmented array (seg.h): a grow adds records without moving
 * those in use, and no record is freed before the pool. Thieves, the exit test, the CANCEL sweep
 * and statistics read the number of records (pool->nslots, acquire; weft__pool_slots) and look
 * at every record below it, retired ones included: a retired worker keeps its deque (empty),
 * its trace ring and its counters, and a later grow brings it back with a new thread. A join
 * frame names its thief by index (join.c), which stays valid for the same reason.
 *
 * Size. pool->target is the pool's size (weft_pool_size). Every worker below it is LIVE (or
 * STOPPING with a revival asked for, which comes to the same). A worker at or above it retires.
 *
 * Retiring (weft__retire), at a top-level task boundary of the thread holding the worker, when
 * no thread that lent it is still in its wait (the lender must get it back first) and its
 * deque is empty:
 *  1. Under resize_mu it checks again, since a grow may have raised the target, and a destroy may
 *     have begun: from then on nobody retires, so that teardown's count of the workers that
 *     will leave their loop is exact. The worker becomes STOPPING.
 *  2. It passes on the wake-up it may have consumed: a submission's notify_one may have chosen
 *     it, and without this the task would wait for a worker that does not come.
 *  3. It runs the stop hook, still as the worker (weft_worker_index() answers), and moves what
 *     the hook submitted to its deque onto the injection queue.
 *  4. Under resize_mu: if a grow asked for it back meanwhile (revive), it runs the start hook again
 *     and goes on; otherwise the worker is OFF and the thread ends. An ended thread is joined by
 *     the next resize (weft__lend_reap) or by destroy.
 * Nothing queued is lost: the deque is empty, and the injection queue is drained by the workers
 * that stay (one at least: the size is never 0), which the passed-on wake-up or their own loop
 * brings to it. No retirement is slept through: a shrink lowers the target before it unparks
 * the workers it retires, and a worker re-reads the target after weft__park_prepare, whose
 * acquire load of the key pairs with the unpark's release increment (or its futex wait returns
 * at once). And a worker that must wait for a lender parks meanwhile: an idle pool still uses
 * no CPU.
 *
 * Growing (weft__pool_grow), under resize_mu: the records it needs are made (deque, trace ring,
 * park word), then one thread is started for each worker that is OFF, every one waiting for its
 * grant (lend.c). A worker still LIVE needs nothing (its retirement had not happened); a
 * STOPPING one is revived. Only once every thread has started are they granted their workers
 * and the size published. If one cannot start, the others are dismissed before they run
 * anything (no hook is called) and joined: nothing changes, but for records kept for the next
 * grow. Creation is a grow from nothing.
 *
 * Closing. A grow is refused once the pool is shut down (the closed bit, read under resize_mu): the
 * CANCEL sweep reads the number of records under resize_mu after setting the bit, so it sees every
 * worker that may take a task, and teardown counts the workers under resize_mu too.
 */
#include "worker.h"

#include "alloc.h"
#include "topology.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

/* Makes record i: its segment if new, deque, trace ring and park word. Under resize_mu. */
static int make_worker(weft_pool *pool, unsigned i)
{
    unsigned k = weft__seg(i);
    if (pool->seg[k] == NULL) {
        size_t size = weft__seg_len(k) * sizeof(struct weft__worker);
        /* zeroed: NULL deque buffers and trace rings, not made */
        struct weft__worker *seg = weft__mem_alloc(&pool->mem, WEFT_CACHE_LINE, size);
        if (seg == NULL)
            return -ENOMEM;
        pool->seg[k] = seg;
    }
    struct weft__worker *w = weft__worker_at(pool, i);
    w->pool = pool;
    w->index = i;
    w->inject_home = i % pool->inject.nshards;
    w->rng = 0x9e3779b97f4a7c15u * (i + 1) + (uintptr_t)pool;
    atomic_init(&w->wake, 0);
    atomic_init(&w->taking, 0);
    atomic_init(&w->want_back, 0);
    atomic_init(&w->epoch, 0);
    weft__list_init(&w->lenders);
    w->state = WEFT_SLOT_OFF;
    int rc = weft__park_register(&pool->park, i, &w->wake);
    if (rc == 0)
        rc = weft__deque_init(&w->deque, 256, &pool->mem);
    if (rc == 0 && pool->trace_path != NULL) {
        rc = weft__trace_init(&w->trace, pool->trace_cap, &pool->mem);
        w->tr = rc == 0 ? &w->trace : NULL;
    }
    if (rc == 0 && pool->ws != NULL)
        rc = weft__ws_worker(pool, w);
    if (rc != 0) {
        weft__deque_destroy(&w->deque);
        weft__trace_free(&w->trace, &pool->mem);
    }
    return rc;
}

/* Starts a thread for every worker in [from, to) that is OFF, linked on *fresh by `extra`; each
 * waits for its grant (weft__thread_main). The records are all allocated before any thread
 * starts, so that a failure leaves fewer threads to dismiss (and comes last, as in creation). */
static int start_threads(weft_pool *pool, unsigned from, unsigned to, struct weft__thread **fresh)
{
    struct weft__thread *todo = NULL;
    int rc = 0;
    for (unsigned i = from; rc == 0 && i < to; i++) {
        if (weft__worker_at(pool, i)->state != WEFT_SLOT_OFF)
            continue;
        struct weft__thread *t = weft__mem_alloc(&pool->mem, 0, sizeof(*t));
        if (t == NULL) {
            rc = -ENOMEM;
            break;
        }
        atomic_init(&t->wake, 0);
        atomic_init(&t->enlisted, 0);
        atomic_init(&t->dead, 0);
        t->pool = pool;
        t->first = i;
        t->own = true;
        weft__list_init(&t->link);
        t->extra = todo;
        todo = t;
    }
    pthread_attr_t attr;
    if (rc == 0 && pthread_attr_init(&attr) != 0)
        rc = -ENOMEM;
    if (rc == 0) {
        rc = pthread_attr_setstacksize(&attr, pool->stack_size) == 0 ? 0 : -EINVAL;
        /* Workers block every asynchronous signal, so that signals sent to the process reach
         * the application's own threads. A new thread inherits the creator's mask. */
        sigset_t all, old;
        sigfillset(&all);
        static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL,
                                           SIGTRAP, SIGSYS, SIGABRT};
        for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
            sigdelset(&all, sync_signals[i]);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        while (rc == 0 && todo != NULL) {
            struct weft__thread *t = todo;
            rc = weft__thread_start(&t->thread, &attr, weft__thread_main, t);
            if (rc == 0) {
                todo = t->extra;
                t->extra = *fresh;
                *fresh = t;
            }
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    while (todo != NULL) { /* never started */
        struct weft__thread *next = todo->extra;
        weft__mem_free(&pool->mem, todo);
        todo = next;
    }
    return rc;
}

int weft__pool_grow(weft_pool *pool, unsigned n)
{
    unsigned old = ld_relaxed(&pool->target); /* relaxed: written under resize_mu, which we hold */
    while (pool->made < n) {
        int rc = make_worker(pool, pool->made);
        if (rc != 0)
            return rc;
        pool->made++;
    }
    /* Where the new workers go: as in a pool of n made at once. Workers that run keep their
     * CPUs, so after a resize a SPREAD pool may differ from one made with its size. */
    cpu_set_t *sets = NULL;
    if (pool->bind != WEFT_BIND_NONE) {
        sets = weft__mem_alloc(&pool->mem, 0, n * sizeof(*sets));
        int rc = sets != NULL ? weft__bind_sets(pool->bind, n, sets) : -ENOMEM;
        if (rc != 0) {
            weft__mem_free(&pool->mem, sets);
            return rc;
        }
    }
    struct weft__thread *fresh = NULL;
    int rc = start_threads(pool, old, n, &fresh);
    if (rc != 0) {
        /* Granted nothing, they end before any hook. */
        weft__lend_admit(pool, fresh, false);
        while (fresh != NULL) {
            struct weft__thread *next = fresh->extra;
            pthread_join(fresh->thread, NULL);
            weft__mem_free(&pool->mem, fresh);
            fresh = next;
        }
        weft__mem_free(&pool->mem, sets);
        return rc;
    }
    for (unsigned i = old; i < n; i++) {
        struct weft__worker *w = weft__worker_at(pool, i);
        if (w->state == WEFT_SLOT_STOPPING) {
            w->revive = true; /* its holder goes on after the stop hook (weft__retire) */
        } else if (w->state == WEFT_SLOT_OFF) {
            /* Nobody holds it: its new thread reads these once granted (through lend.mu). */
            if (sets != NULL) {
                w->cpus = sets[i];
                w->bound = true;
            }
            w->state = WEFT_SLOT_LIVE;
        }
    }
    weft__mem_free(&pool->mem, sets);
    /* release: pairs with the acquire in weft_pool_size, so that a thread that reads the new
     * size also sees what the resizing thread did before its call. Decisions on it are made
     * under resize_mu; the new threads read it after their grant, through lend.mu */
    st_release(&pool->target, n);
    if (n > ld_relaxed(&pool->nslots)) { /* relaxed: written under resize_mu only */
        weft__park_publish(&pool->park, n);
        /* release: pairs with the acquire in weft__pool_slots, for the records and their
         * segments */
        st_release(&pool->nslots, n);
    }
    weft__lend_admit(pool, fresh, true);
    return 0;
}

/* Under resize_mu: lowers the size to n and wakes the workers that are to retire. */
static void shrink(weft_pool *pool, unsigned n)
{
    unsigned old = ld_relaxed(&pool->target); /* relaxed: as in weft__pool_grow */
    /* release: pairs with the acquire in weft_pool_size, as in weft__pool_grow. The workers that
     * retire learn of it through the unparks below: each is a release increment of the worker's
     * park word, which its next weft__park_prepare reads with acquire (see the top of the file) */
    st_release(&pool->target, n);
    for (unsigned i = n; i < old; i++) {
        struct weft__worker *w = weft__worker_at(pool, i);
        if (w->state == WEFT_SLOT_STOPPING)
            w->revive = false; /* grown back, then shrunk again before it stopped */
        else
            weft__park_unpark(&pool->park, i);
    }
}

unsigned weft__pool_live(weft_pool *pool)
{
    unsigned n = 0;
    for (unsigned i = 0; i < pool->made; i++) {
        struct weft__worker *w = weft__worker_at(pool, i);
        if (w->state == WEFT_SLOT_LIVE || (w->state == WEFT_SLOT_STOPPING && w->revive))
            n++;
    }
    return n;
}

static bool never(const struct weft__task *t, const void *ctx)
{
    (void)t;
    (void)ctx;
    return false;
}

int weft__retire(struct weft__worker *w, struct weft__thread *me, bool owed)
{
    weft_pool *pool = w->pool;
    WEFT_ASSERT(w == weft__self && w->holder == me && !weft__lend_pending(w));
    if (weft__deque_owner_nonempty(&w->deque))
        return WEFT_RETIRE_NOT_NOW; /* its own work first (or a thief's steal in progress) */
    pthread_mutex_lock(&pool->resize_mu);
    /* relaxed: both are written under resize_mu (teardown sets the exit bit under it) */
    bool go = w->state == WEFT_SLOT_LIVE && w->index >= ld_relaxed(&pool->target) &&
              !(ld_relaxed(&pool->shutdown) & WEFT_SHUT_EXIT);
    if (go) {
        w->state = WEFT_SLOT_STOPPING;
        w->revive = false;
    }
    pthread_mutex_unlock(&pool->resize_mu);
    if (!go)
        return WEFT_RETIRE_NOT_NOW;
    if (owed)
        weft__park_notify_one(&pool->park);
    weft__life_end(w);
    if (pool->on_worker_stop != NULL)
        pool->on_worker_stop(pool, me->first, pool->hook_data);
    /* Submissions the hook made went to this deque: they go where any worker takes them. */
    struct weft__task *t = weft__take_own_frame(w, never, NULL);
    WEFT_ASSERT(t == NULL);
    (void)t;
    pthread_mutex_lock(&pool->resize_mu);
    bool back = w->revive;
    w->revive = false;
    w->state = back ? WEFT_SLOT_LIVE : WEFT_SLOT_OFF;
    if (!back)
        weft__lend_release(w);
    pthread_mutex_unlock(&pool->resize_mu);
    if (!back)
        return WEFT_RETIRE_DONE;
    weft__life_begin(w);
    if (pool->on_worker_start != NULL)
        pool->on_worker_start(pool, me->first, pool->hook_data);
    return WEFT_RETIRE_REVIVED;
}

int weft_pool_resize(weft_pool *pool, unsigned threads)
{
    if (pool == NULL || threads == 0 || threads > WEFT_MAX_THREADS)
        return -EINVAL;
    /* acquire: pairs with the release side of weft_pool_shutdown's RMW; a fast refusal only,
     * the check that decides is under the mutex */
    if ((ld_acquire(&pool->shutdown) & WEFT_SHUT_CLOSED) || weft__pool_forked(pool))
        return -ESHUTDOWN;
    weft__lend_reap(pool);
    int rc = 0;
    pthread_mutex_lock(&pool->resize_mu);
    unsigned now = ld_relaxed(&pool->target); /* relaxed: written under resize_mu */
    /* relaxed: the CANCEL sweep sets the bit before it takes resize_mu (see the top of the file) */
    if (ld_relaxed(&pool->shutdown) & WEFT_SHUT_CLOSED)
        rc = -ESHUTDOWN;
    else if (threads > now)
        rc = weft__pool_grow(pool, threads);
    else if (threads < now)
        shrink(pool, threads);
    pthread_mutex_unlock(&pool->resize_mu);
    return rc;
}
