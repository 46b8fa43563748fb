/*
 * The pool and its workers (internal).
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include "weft.h"

#include "atomic.h"
#include "deque.h"
#include "future.h"
#include "inject.h"
#include "park.h"
#include "trace.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <unistd.h>

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
    bool started;
    bool bound;
    cpu_set_t cpus; /* where to pin it, when bound */
};

/* pool->shutdown bits */
#define WEFT_SHUT_CLOSED 0x1u /* submissions refused */
#define WEFT_SHUT_CANCEL 0x2u /* tasks that have not started are cancelled */
#define WEFT_SHUT_EXIT   0x4u /* workers leave once no work is visible (set by destroy) */

/* The pool's page: a page of its own (mmap) for what must survive fork() or the pool itself.
 *
 * Fork detection without global state: `alive` sits on a page the kernel wipes in a child
 * after fork() (MADV_WIPEONFORK), so a child reads 0 and knows the pool's threads are gone.
 * Where the kernel cannot wipe, the creator's pid is compared instead.
 *
 * The max_pending budget: `holds` counts the outside submissions that have not started
 * (the low bits), plus WEFT_PAGE_HOLD while the pool exists. A future that counts keeps a
 * pointer to the page and gives its count back when it leaves PENDING, whoever moves it: a
 * worker starting it, shutdown's sweep, or weft_future_cancel on any thread. That last one may
 * run after the pool was destroyed (the CAS that cancels lets a worker drop the task at once),
 * so the count must not live in the pool: whoever brings `holds` to zero unmaps the page. */
struct weft__fork_guard {
    _Atomic uint32_t alive;
    bool wipes;
    pid_t pid;
    WEFT_ALIGNED _Atomic size_t holds; /* apart from the read-mostly line above */
};

#define WEFT_PAGE_HOLD ((size_t)1 << (sizeof(size_t) * 8 - 1))

/* Gives back n of the page's holds; the last one unmaps it. */
void weft__page_put(struct weft__fork_guard *g, size_t n);

struct weft_pool {
    struct weft__worker *workers;
    struct weft__fork_guard *guard;
    unsigned nworkers;
    struct weft__inject inject;
    struct weft__parking park;
    WEFT_ALIGNED _Atomic uint32_t shutdown;
    WEFT_ALIGNED _Atomic uint64_t swept; /* tasks cancelled by a CANCEL shutdown's sweep (stats) */
    _Atomic uint32_t nthreads;           /* threads started; read by workers after WEFT_SHUT_EXIT */
    _Atomic uint32_t exited;             /* workers out of their loop (futex word) */
    size_t max_pending;
    void (*on_worker_start)(weft_pool *pool, unsigned worker, void *data);
    void (*on_worker_stop)(weft_pool *pool, unsigned worker, void *data);
    void *hook_data;
    char name[16];
    weft_bind bind;
    size_t stack_size;
    char *trace_path;           /* NULL when not tracing */
    struct weft__trace *traces; /* one ring per worker */
};

/* True in a child process that inherited the pool through fork(). */
static inline bool weft__pool_forked(const weft_pool *pool)
{
    /* relaxed: written once before the pool is shared; the kernel zeroes it in a child */
    if (ld_relaxed(&pool->guard->alive) == 0)
        return true;
    return !pool->guard->wipes && getpid() != pool->guard->pid;
}

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

/* Worker entry point (worker.c). */
void *weft__worker_main(void *arg);

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

/* Takes the task at the bottom of w's own deque, as the scheduler does (worker.c): NULL when
 * empty, WEFT_TASK_SKIP when it was a cancelled submission, else a join frame or a submitted
 * task already started, for weft__run_task. */
#define WEFT_TASK_SKIP ((struct weft__task *)1)
struct weft__task *weft__take_own(struct weft__worker *w);

/* Runs a task from weft__take_own or the scheduler (worker.c); a join frame (join.c). */
void weft__run_task(struct weft__worker *w, struct weft__task *t);
void weft__run_join(struct weft__worker *w, struct weft__task *t);

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

/* f has left PENDING (started or cancelled): it no longer counts against max_pending. Called
 * once, by whoever won the CAS out of PENDING. */
static inline void weft__uncount(weft_future *f)
{
    if (f->counted_in != NULL)
        weft__page_put(f->counted_in, 1);
}

/* Any work visible to worker w's pool: deques or injection queue. */
bool weft__work_visible(weft_pool *pool);

#endif
