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
#include "pool.h"
#include "task.h"
#include "trace.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* Statistics only their worker writes (relaxed load + store, no RMW); stats.c sums them. */
struct weft__wstats {
#define WEFT_STATS_ATOMIC_(name, doc) _Atomic uint64_t name;
    WEFT_WORKER_STATS(WEFT_STATS_ATOMIC_)
#undef WEFT_STATS_ATOMIC_
    _Atomic int64_t born_ns;    /* when the worker started; 0 before */
    _Atomic int64_t died_ns;    /* when it left its loop; 0 while it runs */
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

struct weft__worker {
    struct weft__deque deque; /* cache-line aligned, owner/thief lines apart */
    WEFT_ALIGNED struct weft__wstats st;
    struct weft__trace *tr;             /* this worker's trace ring, NULL when not tracing */
    _Atomic uint32_t taking;            /* between taking a task and deciding its fate (worker.c) */
    WEFT_ALIGNED _Atomic uint32_t wake; /* futex word this worker parks on (park.c) */
    weft_pool *pool;
    unsigned index;
    unsigned inject_home; /* the injection shard it drains first */
    uint64_t rng;         /* victim selection; owner only */
    pthread_t thread;
    bool bound;
    cpu_set_t cpus; /* where to pin it, when bound */
};

/* The worker the calling thread is, if any (the only global state: thread-local). Read it
 * through weft__me() wherever a fork() child could be the reader. */
extern WEFT_TLS struct weft__worker *weft__self;

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

/* Worker entry point. */
void *weft__worker_main(void *arg);

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

/* A condition a worker waits for while helping. ready() is polled between tasks. Before the
 * worker parks, arm() registers whatever will call weft__unpark_worker(w) once ready() may have
 * become true (false: it already is); disarm() undoes that after the worker wakes, and must not
 * return while a wake-up through it is still in progress. */
struct weft__help_ops {
    bool (*ready)(void *ctx);
    bool (*arm)(void *ctx, struct weft__worker *w);
    void (*disarm)(void *ctx, struct weft__worker *w);
};

/* Runs tasks on worker w until ops->ready(ctx) or the deadline passes. 0 or -ETIMEDOUT. */
int weft__help(struct weft__worker *w, const struct weft__help_ops *ops, void *ctx,
               int64_t deadline);

/* Wakes worker w if it is parked (or makes its next park return at once). */
void weft__unpark_worker(struct weft__worker *w);

/* Takes the task at the bottom of w's own deque, as the scheduler does: NULL when empty,
 * WEFT_TASK_SKIP when it was a cancelled submission, else a task to give weft__run_task (a
 * submitted one already started). */
#define WEFT_TASK_SKIP ((struct weft__task *)1)
struct weft__task *weft__take_own(struct weft__worker *w);

/* Runs a task from weft__take_own or the scheduler. */
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
