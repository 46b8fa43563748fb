/* SPDX-License-Identifier: MIT */
/*
 * Workers (internal): the threads of a pool, their scheduling loop, running tasks, and waiting
 * by helping. See worker.c.
 */
#ifndef WEFT_WORKER_H
#define WEFT_WORKER_H

#include "weft.h"

#include "atomic.h"
#include "deque.h"
#include "future.h"
#include "list.h"
#include "pool.h"
#include "task.h"
#include "trace.h"
#include "workspan.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* Statistics only their worker writes (relaxed load + store, no RMW); stats.c sums them. */
struct weft__wstats {
#define WEFT_STATS_ATOMIC_(name, doc) _Atomic uint64_t name;
    WEFT_WORKER_STATS(WEFT_STATS_ATOMIC_)
#undef WEFT_STATS_ATOMIC_
    _Atomic int64_t born_ns;    /* when the worker (last) started; 0 before */
    _Atomic int64_t died_ns;    /* when it left its loop or retired; 0 while it runs */
    _Atomic int64_t lived_ns;   /* the lengths of its lives that ended (a worker that retires
                                   may come back) */
    _Atomic int64_t idle_since; /* start of the idle spell in progress, 0 if none */
    _Atomic int64_t wait_since; /* start of the helping wait spell in progress, 0 if none */
};

/* Adds n to one of worker w's counters. relaxed: only w writes it; readers only need a value. */
#ifndef WEFT_NO_STATS
#define WEFT_COUNT(w, field, n)                                                                    \
    st_relaxed(&(w)->st.field, ld_relaxed(&(w)->st.field) + (uint64_t)(n))
#else
#define WEFT_COUNT(w, field, n) ((void)(w), (void)(n)) /* bench/stats_cost.sh's baseline */
#endif

/* A worker is a place in the pool (an index, a deque, statistics), held by one thread at a
 * time: its own thread, or a spare that stands in while the holder is blocked in a wait
 * (lend.c). Everything below that says "owner" means the thread holding it. */
struct weft__worker {
    struct weft__deque deque; /* cache-line aligned, owner/thief lines apart */
    WEFT_ALIGNED struct weft__wstats st;
    struct weft__trace *tr;             /* this worker's trace ring, NULL when not tracing */
    struct weft__ws_worker *ws;         /* its work-and-span accumulator, NULL when not measuring */
    _Atomic uint32_t taking;            /* between taking a task and deciding its fate (worker.c) */
    _Atomic uint32_t want_back;         /* threads that lent it and wait to get it back (lend.c) */
    _Atomic uint32_t epoch;             /* bumped each time it is lent (join.c, leapfrogging) */
    WEFT_ALIGNED _Atomic uint32_t wake; /* futex word this worker parks on (park.c) */
    weft_pool *pool;
    unsigned index;
    unsigned inject_home; /* the injection shard it drains first */
    uint64_t rng;         /* victim selection; owner only */
    int64_t idle_avg_ns;  /* average of its recent idle spells (worker.c, spinning); owner only */
    bool bound;
    cpu_set_t cpus;           /* where to pin it, when bound */
    struct weft__trace trace; /* its ring, when tracing (tr points here) */
    /* Under pool->lend.mu (lend.c): */
    struct weft__thread *holder; /* the thread holding it */
    struct weft__list lenders;   /* threads blocked in a wait that lent it, newest first */
    /* Under pool->resize_mu (resize.c): */
    uint8_t state; /* WEFT_SLOT_OFF, _LIVE or _STOPPING */
    bool revive;   /* STOPPING: a grow wants it back, so its holder goes on running it */
};

/* What a worker is, as resize.c sees it. */
enum {
    WEFT_SLOT_OFF,      /* no thread holds it: never started, or retired */
    WEFT_SLOT_LIVE,     /* held by a thread (or lent) */
    WEFT_SLOT_STOPPING, /* its holder is retiring it (running the stop hook) */
};

/* Worker i's record; i below weft__pool_slots(pool), or known from a worker that ran. */
static inline struct weft__worker *weft__worker_at(const weft_pool *pool, unsigned i)
{
    unsigned k = weft__seg(i);
    return &pool->seg[k][weft__seg_off(i, k)];
}

/* One OS thread of a pool: a worker's own thread, or a spare (lend.c). */
struct weft__thread {
    _Atomic uint32_t wake; /* futex word: bumped by a grant and by the wake-ups of its waits */
    weft_pool *pool;
    pthread_t thread;
    unsigned first;             /* the worker it first held: the index its hooks are given */
    struct weft__thread *extra; /* next thread of the pool (pool->lend.extra) */
    bool own;                   /* started for worker `first` by a grow (else a spare) */
    _Atomic uint32_t dead;      /* 1: it retired a worker and ends; joining it is quick */
    /* Under pool->lend.mu: */
    struct weft__worker *slot; /* once granted: the worker it is to hold; NULL: leave */
    bool granted;
    bool back;                 /* a lender whose wait is over, waiting for its worker */
    bool reserve;              /* a spare started ahead of need: it enlists itself as idle */
    _Atomic uint32_t enlisted; /* a reserve spare: 1 once on the idle list (futex word) */
    struct weft__list link;    /* on pool->lend.idle, or on a worker's lenders */
    bool joining;              /* under mu: a join of its thread is claimed (lend.c) */
};

/* The thread record of the calling thread, NULL if it is none of a pool's (thread-local). */
extern WEFT_TLS struct weft__thread *weft__thr;

/* Wakes thread t out of a wait (a condition it waits for may hold). Any thread. */
void weft__thread_wake(struct weft__thread *t);

/* The worker the calling thread is, if any (the only global state: thread-local). Read it
 * through weft__me() wherever a fork() child could be the reader. */
extern WEFT_TLS struct weft__worker *weft__self;

/* Makes w (NULL: none) the calling thread's worker: weft__self, and weft__fjq_self (weft.h),
 * the deque weft_offer and weft_reclaim push to inline, unless w's pool measures work and span
 * (its offers are then all out of line). */
static inline void weft__set_self(struct weft__worker *w)
{
    weft__self = w;
    weft__fjq_self = w != NULL && w->ws == NULL ? (struct weft__fjq *)(void *)&w->deque : NULL;
}

/* Owner only: readies w's private frames for a thief (weft_offer's, which the inline path
 * left half-written) and shares them (deque.h, publish); wakes an idle worker if any. Called
 * before anything else may run on the thread's stack (a wait's help) and before a shared push. */
void weft__publish(struct weft__worker *w);

/* A frame weft_offer pushed inline (run NULL): filled in by the thread that offered it. */
void weft__frame_fill(struct weft__task *t);

/* In a child after fork() inside a task, the forking thread still has the thread-locals of a
 * worker whose pool is gone: forget them, so that the thread is no worker from then on. */
void weft__forget_worker(void);

/* The worker the calling thread is, NULL if none (or if it was one before a fork()). */
static inline struct weft__worker *weft__me(void)
{
    struct weft__worker *w = weft__self;
    if (w != NULL && __builtin_expect(weft__pool_forked(w->pool), 0)) {
        weft__forget_worker();
        return NULL;
    }
    return w;
}

/* Worker index's thread name, "<prefix>-<index>" shortened to the 15 characters the OS keeps. */
void weft__worker_name(const weft_pool *pool, unsigned index, char name[16]);

/* Entry point of every pool thread; arg is its struct weft__thread, granted its first
 * worker (a worker's own thread) or not yet (a spare). */
void *weft__thread_main(void *arg);

/* lend.c. The pool's spare threads, and how a worker changes hands (pool->lend). */

int weft__lend_init(weft_pool *pool);
/* Joins the threads not joined yet (after every worker left) and frees every record; with
 * forked, in a child after fork(), frees the records only. */
void weft__lend_destroy(weft_pool *pool, bool forked);

/* Joins every thread the pool started, once every worker has left (destruction). */
void weft__lend_join(weft_pool *pool);

/* Joins and frees the threads that ended after retiring a worker (resize.c). */
void weft__lend_reap(weft_pool *pool);

/* Threads just started for workers by a grow, linked by `extra`, waiting for their grant: with
 * go, each is granted worker `first` and joins the pool's threads; without, each is granted
 * nothing and ends at once (the caller joins it and frees its record). */
void weft__lend_admit(weft_pool *pool, struct weft__thread *fresh, bool go);

/* The holder of w retired it: nobody holds it now. */
void weft__lend_release(struct weft__worker *w);

/* The holder of w (the caller, me) is about to block in a wait: hands w to a thread that lent
 * it and is ready to take it back, else to an idle spare, else to a new spare. False when no
 * thread could take it (WEFT_MAX_SPARES reached, or a thread could not start): the caller
 * keeps w. */
bool weft__lend(struct weft__worker *w, struct weft__thread *me);

/* The wait of me, which lent w, is over: asks for w back and returns once me holds it again. */
void weft__lend_reclaim(struct weft__worker *w, struct weft__thread *me);

/* The holder of w, at a task boundary (nothing of its own on its stack), saw w->want_back:
 * gives w to a lender that wants it back and becomes an idle spare. Returns false (and keeps
 * w) if no lender wanted it after all; true once w is given away. */
bool weft__lend_hand_back(struct weft__worker *w, struct weft__thread *me);

/* An idle thread (a spare, or one that handed its worker back) waits to be granted a worker:
 * returns it, or NULL when the pool is closing and the thread must leave. */
struct weft__worker *weft__lend_await(struct weft__thread *me);

/* Keeps one idle spare ready, so that a wait that blocks need not start a thread (nor
 * allocate): called before the pool's first task, and by a spare when it takes a worker.
 * Starts one if none is idle. */
void weft__lend_reserve(weft_pool *pool);

/* A reserve spare, just started, joins the idle list: false if the pool is closing. */
bool weft__lend_enlist(struct weft__thread *me);

/* The last worker has left its loop: idle spares leave, and none start any more. */
void weft__lend_close(weft_pool *pool);

/* Whether threads that lent w are still blocked in their waits, or waiting for it back. Only
 * w's holder changes the list (weft__lend, weft__lend_hand_back, under the mutex, which also
 * hands w over), so w's holder may read it without the mutex. */
static inline bool weft__lend_pending(struct weft__worker *w)
{
    return !weft__list_empty(&w->lenders);
}

/* Whether lenders of w wait for it: read at every task boundary. */
static inline bool weft__lend_wanted(struct weft__worker *w)
{
    /* acquire: pairs with the release store in weft__lend_reclaim */
    return __builtin_expect(ld_acquire(&w->want_back) != 0, 0);
}

/* resize.c. Whether w, whose holder is at a task boundary, is to retire (a shrink) and may: no
 * thread that lent it waits in a wait. Read at every task boundary, and before parking.
 * relaxed: a hint; weft__retire decides under the resize mutex, and a shrink wakes the workers
 * it retires (their park's acquire of the key then orders this load after it). */
static inline bool weft__retire_due(struct weft__worker *w)
{
    return __builtin_expect(w->index >= ld_relaxed(&w->pool->target), 0) && !weft__lend_pending(w);
}

/* What weft__retire did. */
enum { WEFT_RETIRE_NOT_NOW, WEFT_RETIRE_DONE, WEFT_RETIRE_REVIVED };

/* The holder me of w, at a top-level task boundary with weft__retire_due(w): retires w if the
 * pool still wants it to (and its deque is empty): passes on a wake-up it owes, runs the stop
 * hook, and gives w up (DONE: the thread then ends). REVIVED: a grow wanted w back while the
 * hook ran, the start hook ran again, and me goes on holding w. NOT_NOW: nothing happened. */
int weft__retire(struct weft__worker *w, struct weft__thread *me, bool owed);

/* The start and end of a worker's life (statistics), by its holder. */
void weft__life_begin(struct weft__worker *w);
void weft__life_end(struct weft__worker *w);

/* The run function of a submitted task (task.run of the futures weft_submit makes). */
void weft__run_submitted(struct weft__worker *w, struct weft__task *t);

/* submit.c. A new task future of pool for fn(arg), PENDING and not queued, with refs
 * references; from outside the pool it counts against max_pending. 0, -ESHUTDOWN, -ENOMEM or
 * -EAGAIN. */
int weft__task_new(weft_pool *pool, weft_fn fn, void *arg, uint32_t refs, bool outside,
                   weft_future **out);

/* Frees a future from weft__task_new that was never queued, giving back its count. */
void weft__task_discard(weft_future *f);

/* Queues f, a PENDING task future of pool whose references include one for the queue: on the
 * deque of self (the caller's weft__me()) when it is one of pool's workers, else on the
 * injection queue.
 * 0, -ESHUTDOWN (pool shut down: nothing queued), or with may_fail -ENOMEM (the worker's deque
 * could not grow); without may_fail such a push goes to the injection queue instead. */
int weft__enqueue(weft_pool *pool, weft_future *f, struct weft__worker *self, bool may_fail);

/* A condition a worker waits for. ready() is polled. find() (may be NULL) offers work that
 * is safe to run on the waiting thread's stack, because the wait depends on it: a task it
 * claimed (see weft__claim) or a frame it took, for weft__run_task; NULL when there is none.
 * Before the thread blocks, arm() registers whatever will call weft__thread_wake(t) once
 * ready() may have become true (false: it already is); disarm() undoes that after the wait,
 * and must not return while a wake-up through it is still in progress. */
struct weft__help_ops {
    bool (*ready)(void *ctx);
    struct weft__task *(*find)(void *ctx, struct weft__worker *w);
    bool (*arm)(void *ctx, struct weft__thread *t);
    void (*disarm)(void *ctx, struct weft__thread *t);
};

/* Waits on worker w until ops->ready(ctx) or the deadline passes: runs what ops->find offers,
 * spins a little, then blocks, lending w to another thread meanwhile (lend.c), so that the
 * pool keeps its parallelism and no unrelated task ever runs on the waiting stack.
 * 0 or -ETIMEDOUT. */
int weft__help(struct weft__worker *w, const struct weft__help_ops *ops, void *ctx,
               int64_t deadline);

/* For find(): f, if it is a task of w's pool that has not started, started here (as a worker
 * that took it would), with a reference for the run; the caller runs it with weft__run_task.
 * NULL otherwise. Its entry stays in its queue, and is dropped when taken. */
struct weft__task *weft__claim(struct weft__worker *w, weft_future *f);

/* With w->taking up (seq_cst store), w took t off a deque where it must not run it: puts it on
 * the injection queue for any worker (a submitted task is cancelled instead under a CANCEL
 * shutdown), then drops w->taking. */
void weft__requeue(struct weft__worker *w, struct weft__task *t);

/* Takes the bottom of w's own deque until it finds a frame (a task that is not a submitted
 * one) for which mine(t, ctx) holds, and returns it; NULL once the deque is empty. Everything
 * it finds before goes to the injection queue (a submitted task is cancelled instead under a
 * CANCEL shutdown). For waits, which must not run on their stack what they do not wait for. */
struct weft__task *weft__take_own_frame(struct weft__worker *w,
                                        bool (*mine)(const struct weft__task *t, const void *ctx),
                                        const void *ctx);

/* What the scheduler's take gives for a queued submission that must not run (cancelled). */
#define WEFT_TASK_SKIP ((struct weft__task *)1)

/* Runs a task from the scheduler or a wait's find(). */
void weft__run_task(struct weft__worker *w, struct weft__task *t);

/* The tasks running on this thread, innermost first; tasks nest when a wait helps. */
struct weft__run_frame {
    weft_future *f;
    struct weft__run_frame *prev;
};
extern WEFT_TLS struct weft__run_frame *weft__current;

/* The task running on this thread, NULL if none. */
static inline weft_future *weft__current_task(void)
{
    return weft__current != NULL ? weft__current->f : NULL;
}

/* Runs fn(arg) on behalf of task ctx: weft_cancel_requested() inside answers for ctx. */
void weft__run_as(weft_future *ctx, void (*fn)(void *), void *arg);

/* Any work visible to the pool's workers: deques or injection queue. */
bool weft__work_visible(weft_pool *pool);

#endif
