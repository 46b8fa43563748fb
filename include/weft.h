/* SPDX-License-Identifier: MIT */
/*
 * weft: a work-stealing task executor for C11.
 *
 * This header is the reference for the public API. Every function says what it does, what
 * each error means, which threads may call it, whether it blocks, and who owns what after it
 * returns.
 *
 * Lifecycle rules, in order:
 *  1. A pool (weft_pool) owns its worker threads and all scheduling state. Pools share nothing:
 *     several pools can live side by side in one process. The only global state is a
 *     thread-local pointer to the worker the calling thread is, if any.
 *  2. A future (weft_future) is reference-counted. weft_submit() hands the caller one reference;
 *     weft_future_retain() adds one, weft_future_release() gives one back. A future stays valid
 *     while references exist, even after the pool that ran it is destroyed.
 *  3. weft_pool_shutdown() refuses new submissions; weft_pool_destroy() waits for the accepted
 *     work, joins the workers and frees the pool.
 *
 * Errors: every function that can fail returns an int, 0 on success or a negative errno value.
 * A call that fails changes nothing. weft_strerror() describes any code.
 *
 * Threads: every function may be called from any thread, including from inside a running task,
 * unless its comment says otherwise. Every wait, when called on one of a pool's worker threads,
 * runs other tasks of that pool while it waits instead of blocking the thread; called from any
 * other thread it sleeps without spinning.
 *
 * ABI (docs/packaging.md, "ABI"): the shared library is libweft.so.N, and N changes with every
 * incompatible change to what this header exports, 0.x releases included. The structs callers
 * allocate (weft_config, weft_scope, weft_spawn, weft_frame, weft_machine_info, weft_stats,
 * weft_worker_stats) are part of it: their size, alignment and member offsets never change
 * under one N. A struct gains members without a new N only where it has reserved space, by
 * placing them in an anonymous union with that space, of the same size.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_STATIC)
#define WEFT_API
#elif defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Conventions
 */

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH", possibly followed by a suffix such as "-dev". Never NULL. */
WEFT_API const char *weft_version(void);

/* A static, never NULL description of a code returned by weft: 0, a negative errno value this
 * API uses (-EINVAL, -ENOMEM, -ETIMEDOUT, -ECANCELED, -ESHUTDOWN, -EAGAIN, -EDEADLK, -ENOENT),
 * or any other int (a task's own failure code, for instance). */
WEFT_API const char *weft_strerror(int code);

/* Timeouts are relative, in nanoseconds. 0 polls without waiting; WEFT_FOREVER waits without
 * limit. Any other negative timeout is -EINVAL. */
#define WEFT_FOREVER (-1)

/* ---------------------------------------------------------------------------------------------
 * Pool
 */

typedef struct weft_pool weft_pool;

/* Worker pinning. NONE leaves placement to the OS. COMPACT fills the allowed processing units in
 * topology order (neighbours share caches). SPREAD puts consecutive workers as far apart as the
 * topology allows (separate cores, then separate packages). */
typedef enum { WEFT_BIND_NONE, WEFT_BIND_COMPACT, WEFT_BIND_SPREAD } weft_bind;

/* Its layout is part of the ABI: appending a member changes its size, which needs a new SONAME
 * (see "ABI" above). reserved_ is the room later members take without changing the size:
 * weft_config_init zeroes it, and a pool refuses a config where it is not zero (-EINVAL), so
 * that a program built against this header keeps working when a later library gives those bytes
 * a meaning. */
typedef struct weft_config {
    /* Number of workers. 0: $WEFT_THREADS if set, else one per core this process may use
     * (affinity mask and cgroup CPU quota respected). At most WEFT_MAX_THREADS. */
    unsigned threads;
    /* Worker pinning; WEFT_BIND_NONE unless $WEFT_BIND (none, compact, spread) says otherwise. */
    weft_bind bind;
    /* Worker thread name prefix; NULL: "weft". Threads are named "<prefix>-<index>", the prefix
     * shortened so that the whole name fits the 15 characters the OS keeps. Copied at creation. */
    const char *name;
    /* Called on each thread of the pool when it starts, before it runs any task, and when it
     * stops, after the pool's last task: the workers' own threads, and spare threads that stand
     * in for a worker whose thread is blocked in a wait (they pass the index of the worker they
     * first stood in for, so an index may come more than once). After weft_pool_resize, a
     * thread started by a grow calls on_worker_start, and the thread that retires a worker after
     * a shrink calls on_worker_stop then ends (see weft_pool_resize). Each thread calls them in
     * pairs: start, then stop. They may call weft functions but must not wait on tasks. */
    void (*on_worker_start)(weft_pool *pool, unsigned worker, void *data);
    void (*on_worker_stop)(weft_pool *pool, unsigned worker, void *data);
    void *hook_data;
    /* 0: no limit. Otherwise the most tasks submitted from threads outside the pool that may be
     * waiting to start; past it weft_submit() from such a thread returns -EAGAIN (and
     * weft_submit_timed waits for room). Tasks that tasks submit do not count. */
    size_t max_pending;
    /* Bytes of stack per worker thread. 0: $WEFT_STACK_SIZE if set, else WEFT_DEFAULT_STACK_SIZE.
     * A wait on a worker runs the task it waits for on the same stack if that task has not
     * started, so depth of nested waits costs stack:
     * the default holds a chain of more than 10,000 tasks each waiting on the next. */
    size_t stack_size;
    /* Where to write a Chrome trace-event file of this pool's execution when it is destroyed;
     * NULL: $WEFT_TRACE if set, else no tracing. Copied at creation. In the path, %p becomes
     * the process id, %n the pool's name and %% a '%'. If this process has already written a
     * file of that name (another pool did), the pool writes the first of NAME.1.EXT,
     * NAME.2.EXT, ... it has not; a file left by another process is overwritten. $WEFT_STATS
     * names its files the same way. */
    const char *trace_path;
    /* 0: no limit. Otherwise the most tasks submitted from threads outside the pool that may be
     * queued or running at once; past it weft_submit() from such a thread returns -EAGAIN (and
     * weft_submit_timed waits). With max_inflight equal to the number of workers, a submission
     * is accepted only while a worker is free to run it (a thread pool with no queue). A task
     * stops counting just before its future finishes, so a caller that waited for it finds the
     * room it leaves. */
    size_t max_inflight;
    /* WEFT_CONFIG_NO_ENV: read no environment variable ($WEFT_THREADS, $WEFT_BIND,
     * $WEFT_STACK_SIZE, $WEFT_TRACE, $WEFT_TRACE_EVENTS, $WEFT_STATS, $WEFT_DISPLAY_ENV); the
     * defaults stand where a field is 0. For a library that embeds a pool, whose users set those
     * variables for their own pools. Only $WEFT_DEBUG, which changes no behaviour, still
     * applies. Other bits: -EINVAL. */
    unsigned flags;
    /* Where the pool's own memory comes from, for a library that passes its user's allocator
     * (zstd's ZSTD_customMem): both NULL for malloc and free, or both set (else -EINVAL).
     * mem_alloc(mem_opaque, size) returns size bytes aligned for any type, or NULL; mem_free
     * gives back what it returned. Everything the pool owns comes from it: the pool, its
     * workers' records and deques, its queues, trace rings, spare threads' records and task
     * groups (weft_group_create). It is called from any thread, the pool's workers included
     * (a deque grows on its worker), until weft_pool_destroy returns. Futures, gathers and
     * completion sets come from per-thread block caches shared by all pools (malloc, at most
     * some 72 KiB per thread, kept until it exits); thread stacks from the OS (mmap). */
    void *(*mem_alloc)(void *opaque, size_t size);
    void (*mem_free)(void *opaque, void *p);
    void *mem_opaque;
    void *reserved_[8]; /* zero (weft_config_init) */
} weft_config;

#define WEFT_CONFIG_NO_ENV 0x1u

#define WEFT_MAX_THREADS        1024u
#define WEFT_DEFAULT_STACK_SIZE ((size_t)64 << 20)

/* Fills *cfg with the defaults: every field 0 or NULL (threads and bind then follow the
 * environment at weft_pool_create()). A zeroed weft_config is equivalent. */
WEFT_API void weft_config_init(weft_config *cfg);

/* Checks cfg (NULL: defaults) and the environment ($WEFT_THREADS, $WEFT_BIND,
 * $WEFT_STACK_SIZE, $WEFT_TRACE_EVENTS) as weft_pool_create does, without creating anything.
 * Returns 0 and "ok", or -EINVAL and a sentence naming the field or variable, its value and
 * what is accepted, written into buf (len bytes, always NUL-terminated; buf may be NULL).
 * weft_pool_create fails with the same -EINVAL, and prints the sentence under $WEFT_DEBUG. */
WEFT_API int weft_config_check(const weft_config *cfg, char *buf, size_t len);

/* Creates a pool and starts its workers. cfg NULL means all defaults.
 * Errors: -EINVAL (out NULL, cfg->bind not a weft_bind, unknown flags, one of mem_alloc and
 * mem_free without the other, threads > WEFT_MAX_THREADS, a $WEFT_THREADS or $WEFT_BIND that cannot
 * be parsed, stack_size below PTHREAD_STACK_MIN), -ENOMEM, -EAGAIN (a worker thread could not be
 * started). On error *out is untouched and nothing is left running or allocated. */
WEFT_API int weft_pool_create(const weft_config *cfg, weft_pool **out);

/* What weft sees of the machine, for tools and diagnostics (weft-info). */
typedef struct weft_machine_info {
    unsigned default_threads; /* workers a pool gets with threads = 0 and no $WEFT_THREADS */
    unsigned cores;           /* cores in this process's affinity mask (hwloc); 0 without hwloc */
    unsigned pus;             /* processing units (hardware threads) in the mask */
    unsigned affinity_cpus;   /* CPUs in the mask as sched_getaffinity reports it */
    unsigned cgroup_cpus;     /* the cgroup CPU quota in CPUs, rounded up; 0 for none */
    bool hwloc;               /* hwloc loaded the topology */
} weft_machine_info;

/* Fills *out. Errors: -EINVAL (out NULL). */
WEFT_API int weft_machine_query(weft_machine_info *out);

/* Where policy bind puts each of n workers: cpus[i] receives the first CPU of worker i's set
 * (-1 for WEFT_BIND_NONE). Errors: -EINVAL (bad bind, n 0 or above WEFT_MAX_THREADS, cpus
 * NULL), -ENOMEM. */
WEFT_API int weft_bind_plan(weft_bind bind, unsigned n, int *cpus);

/* Bytes of memory the pool owns now: what it took from its allocator (weft_config.mem_alloc,
 * or malloc), headers included, plus its page; deque buffers grow while it runs. Not counted:
 * the workers' stacks (address space the OS commits as it is touched: stack_size per thread),
 * futures (block caches, see weft_config.mem_alloc). 0 for NULL. Any thread; a snapshot. */
WEFT_API size_t weft_pool_memory(const weft_pool *pool);

/* Number of workers: as created, or as last set by weft_pool_resize (during a shrink, the new
 * size, while the workers above it finish their tasks). 0 for NULL. A thread that reads the size
 * a resize set also sees what the resizing thread wrote before it called weft_pool_resize. */
WEFT_API unsigned weft_pool_size(const weft_pool *pool);

/* Changes the number of workers to threads, at run time (as zstd's POOL_resize), keeping the
 * pool, its queued tasks and its statistics. It never waits for a task.
 *  - Growing starts the new workers' threads at once: each calls on_worker_start, is pinned by
 *    the pool's WEFT_BIND policy as in a pool created with the new size (workers already
 *    running keep their CPUs), and takes work like any other. All or nothing: if a thread
 *    cannot start, the ones this call started end before running anything (no hook is called)
 *    and the pool keeps its size.
 *  - Shrinking returns at once: weft_pool_size gives the new size from then on, and the workers
 *    at or above it (the highest indices) retire as they become idle: each finishes the task
 *    it runs, and the tasks its own deque holds, then calls on_worker_stop and its thread ends.
 *    A worker whose thread is blocked in a wait retires once the wait has returned and its task
 *    finished. Tasks queued in the pool are never lost: the remaining workers run them.
 *  - A grow that follows a shrink takes back workers that have not begun to retire (no hook
 *    is called for them), and starts new threads for those that have retired; a worker whose
 *    on_worker_stop is running then calls on_worker_start next and goes on, on the same thread.
 *    Threads that ended are joined by the next weft_pool_resize or by weft_pool_destroy.
 *  - Worker indices stay below the size (from 0), except for retiring workers. Per-worker
 *    statistics and trace tracks are kept for every worker that ever ran: weft_pool_stats sums
 *    retired workers' counts too (weft_stats.workers counts them all).
 * Any thread may call it, including a task or a hook of this pool, and several threads at
 * once (the calls take turns); it blocks only for the start of threads (and the joins of
 * threads that ended).
 * Errors: -EINVAL (pool NULL, threads 0 or above WEFT_MAX_THREADS), -ESHUTDOWN (the pool was
 * shut down), -ENOMEM, -EAGAIN (a worker thread could not be started). On error the size and
 * the workers are as before. */
WEFT_API int weft_pool_resize(weft_pool *pool, unsigned threads);

/* Whether submissions to pool are refused with -ESHUTDOWN: weft_pool_shutdown() was called, or
 * this is a child process forked after the pool was made. Once true it stays true. For code
 * that accepts work on behalf of a pool (an event source, weft_mpi_future) and must refuse it
 * as weft_submit would. False for NULL. */
WEFT_API bool weft_pool_is_shutdown(const weft_pool *pool);

typedef enum { WEFT_SHUTDOWN_DRAIN, WEFT_SHUTDOWN_CANCEL } weft_shutdown_mode;

/* From now on weft_submit() on this pool fails with -ESHUTDOWN. DRAIN lets every task already
 * submitted run; CANCEL moves every submitted task that has not started to WEFT_CANCELLED before
 * returning (running ones finish). Returns at once; calling it again is harmless (a CANCEL after a
 * DRAIN still cancels what has not started). Work that running tasks spread with weft_join() and
 * loops is never refused or cancelled by it.
 * Errors: -EINVAL (pool NULL, bad mode). */
WEFT_API int weft_pool_shutdown(weft_pool *pool, weft_shutdown_mode mode);

/* Shuts down with DRAIN if not done yet, waits for every accepted task, runs the stop hooks,
 * joins the workers and frees the pool. NULL is a no-op returning 0. Futures still held stay
 * valid until released.
 * Errors: -EDEADLK when called from one of this pool's own workers (nothing is done). */
WEFT_API int weft_pool_destroy(weft_pool *pool);

/* The index of the calling thread among its pool's workers, -1 on any other thread. */
WEFT_API int weft_worker_index(void);

/* ---------------------------------------------------------------------------------------------
 * Tasks and futures
 */

/* A task: returns 0 on success with its value in *result (initially NULL), or any other value
 * to fail with that code. */
typedef int (*weft_fn)(void *arg, void **result);

typedef struct weft_future weft_future;
typedef enum { WEFT_PENDING, WEFT_RUNNING, WEFT_DONE, WEFT_FAILED, WEFT_CANCELLED } weft_state;

/* Queues fn(arg) on the pool. With out non-NULL, *out receives a future holding one reference
 * for the caller; with out NULL the task runs detached. From one of the pool's workers the task
 * goes to that worker's own deque, from elsewhere to the pool's injection queue.
 * Order: tasks one thread outside the pool submits start in the order it submitted them on a
 * pool of one worker (first in, first out: a one-worker pool is a serial queue); with more
 * workers they are taken in that order but run in parallel, so they may finish in any order.
 * Tasks a worker submits go to its own deque, which it runs newest first (as fork-join wants)
 * unless others steal them, oldest first. Nothing orders submissions of different threads.
 * Errors: -EINVAL (pool or fn NULL), -ESHUTDOWN (pool shut down), -ENOMEM, -EAGAIN (max_pending
 * tasks from outside the pool are already waiting to start, or max_inflight are queued or
 * running). */
WEFT_API int weft_submit(weft_pool *pool, weft_fn fn, void *arg, weft_future **out);

/* weft_submit that waits for room: where weft_submit would return -EAGAIN because of
 * max_pending or max_inflight, it sleeps until a task leaves room, then submits; after
 * timeout_ns (0: do not wait; WEFT_FOREVER: no limit) it returns -ETIMEDOUT instead. It blocks
 * the calling thread, even on a worker of another pool (whose other tasks then wait); on a
 * worker of pool itself, and on a pool without limits, it never waits (as weft_submit). Waiters
 * are not served in order: each wake lets every waiter try again.
 * Errors: those of weft_submit but -EAGAIN, -EINVAL (also a bad timeout), -ETIMEDOUT; a pool
 * shut down while the caller waits gives -ESHUTDOWN. On error nothing was submitted. */
WEFT_API int weft_submit_timed(weft_pool *pool, weft_fn fn, void *arg, int64_t timeout_ns,
                               weft_future **out);

/* A descriptor that poll and epoll report readable (POLLIN) while the pool has room for a
 * submission from outside under max_pending and max_inflight (always, with neither set): after
 * weft_submit's -EAGAIN, an event loop polls it and submits again when it is readable. Made on
 * first call, then the same one; owned by the pool (never read from it or close it), closed by
 * weft_pool_destroy. Room is a snapshot: another thread may take it first, and then the next
 * submission fails again and the descriptor is not readable until room comes back.
 * Errors: -EINVAL (pool NULL), -EMFILE, -ENFILE, -ENOMEM from eventfd. */
WEFT_API int weft_pool_room_fd(weft_pool *pool);

/* Runs fn(arg, result) as a task of pool and waits for it: the way into a pool for code that
 * forks and joins (weft_join, scopes, weft_offer and loops run serially outside any pool), as
 * oneTBB's task_arena::execute or Lace's RUN. Called on one of pool's workers it calls fn at
 * once. Returns what fn returned (0, or its failure code; *result, when result is not NULL,
 * receives its value), or an error of its own: -EINVAL (pool or fn NULL), -ESHUTDOWN,
 * -ENOMEM and -EAGAIN as weft_submit, -ECANCELED when a CANCEL shutdown cancelled the task
 * before it started. */
WEFT_API int weft_pool_run(weft_pool *pool, weft_fn fn, void *arg, void **result);

/* The current state. A future changes state once: PENDING -> RUNNING -> DONE or FAILED, or
 * PENDING -> CANCELLED, or RUNNING -> CANCELLED when the task returns -ECANCELED after a
 * cancellation was requested. NULL reads as WEFT_CANCELLED. */
WEFT_API weft_state weft_future_state(const weft_future *f);

/* "PENDING", "RUNNING", "DONE", "FAILED" or "CANCELLED"; "unknown" for any other value. */
WEFT_API const char *weft_state_name(weft_state s);

/* True once the future is DONE, FAILED or CANCELLED; false for NULL. */
WEFT_API bool weft_future_done(const weft_future *f);

/* Waits until the future has finished or timeout_ns passed. On a worker, it runs the task
 * itself if it has not started, else blocks and lends its worker to a spare thread meanwhile,
 * so that the pool keeps its parallelism (README, "Waits on a worker"). Returns 0 when
 * finished.
 * Errors: -ETIMEDOUT, -EINVAL (f NULL, bad timeout), -EDEADLK (called inside f's own task). */
WEFT_API int weft_future_wait(weft_future *f, int64_t timeout_ns);

/* Waits without limit (as weft_future_wait on a worker), then: 0 for DONE with *result set to the
 * task's value (if result is not NULL), the task's code for FAILED, -ECANCELED for CANCELLED. The
 * value belongs to the user; weft never frees it. Errors: -EINVAL (f NULL), -EDEADLK (called inside
 * f's own task). */
WEFT_API int weft_future_result(weft_future *f, void **result);

/* 1 when the future is now CANCELLED and its function will never run; 0 when it had already
 * finished or is running. For a running task it records a request that the task reads with
 * weft_cancel_requested(). Errors: -EINVAL (f NULL). */
WEFT_API int weft_future_cancel(weft_future *f);

/* Runs cb(f, data) exactly once after f finishes: at once, in the calling thread, if it already
 * has; otherwise on the thread that finishes it. Callbacks must not block; they may release f.
 * Errors: -EINVAL (f or cb NULL), -ENOMEM (nothing registered). */
WEFT_API int weft_future_on_done(weft_future *f, void (*cb)(weft_future *f, void *data),
                                 void *data);

/* Adds one reference. f must hold a reference already. NULL is ignored. */
WEFT_API void weft_future_retain(weft_future *f);

/* Gives back one reference; the last one frees the future. NULL is ignored. */
WEFT_API void weft_future_release(weft_future *f);

/* Inside a task: whether weft_future_cancel() was called on its future. False outside tasks. */
WEFT_API bool weft_cancel_requested(void);

/* ---------------------------------------------------------------------------------------------
 * Futures completed by the caller (promises) and continuations
 */

/* A new PENDING future that no task will run: the caller (any thread: a worker, an event-loop
 * thread, a callback) completes it once with weft_future_set_result or weft_future_set_error.
 * Waits, gathers, weft_wait, completion sets and on_done callbacks treat it like any other
 * future, and weft_future_cancel on it while PENDING makes it CANCELLED and returns 1. *out
 * holds one reference. Comes from the block caches: no malloc once warm. A promise that nobody
 * completes keeps what waits on it (gathers, continuations, callbacks) alive, and they it:
 * complete or cancel a promise before letting go of it.
 * Errors: -EINVAL (out NULL), -ENOMEM. */
WEFT_API int weft_future_create(weft_future **out);

/* PENDING -> DONE with result, or PENDING -> FAILED with code (nonzero). Of concurrent calls
 * (and a concurrent cancel), exactly one wins, and every reader sees its outcome.
 * Errors: -EINVAL (f NULL or not made by weft_future_create, code 0), -EALREADY (f had already
 * finished, cancelled included: nothing changes). */
WEFT_API int weft_future_set_result(weft_future *f, void *result);
WEFT_API int weft_future_set_error(weft_future *f, int code);

/* As weft_future_set_result, and the future takes result over: free_fn(result) runs once, on
 * the thread that gives back the future's last reference, when the future is freed; readers
 * may use result until then. For a result that must live exactly as long as the future (a
 * status record a library fills in, say). On error nothing changes and result still belongs to
 * the caller. Errors: those of weft_future_set_result, and -EINVAL (free_fn NULL). */
WEFT_API int weft_future_set_result_owned(weft_future *f, void *result,
                                          void (*free_fn)(void *result));

/* A continuation: returns 0 on success with its value in *result, or a failure code. */
typedef int (*weft_then_fn)(weft_future *prev, void *arg, void **result);

/* Once prev has finished, whatever its outcome, fn(prev, arg, &result) runs as a task of pool,
 * and its return value and result decide *out as for a submitted task. prev stays valid during
 * the call (the continuation holds a reference). If prev has already finished, the task is
 * submitted at once; otherwise nothing waits: prev's completion queues it, so chains of any
 * length, and continuations of gathers, block no thread and do not deepen any stack.
 * Cancelling *out before fn started makes it CANCELLED and fn never runs; it does not cancel
 * prev. If pool has been shut down by the time prev finishes, *out ends CANCELLED and fn never
 * runs. *out holds one reference. From outside the pool, a continuation counts against
 * max_pending from this call until it starts.
 * Errors: -EINVAL (prev, pool, fn or out NULL), -ESHUTDOWN, -ENOMEM, -EAGAIN (as weft_submit
 * from outside the pool, with max_pending). On error nothing runs and *out is untouched. */
WEFT_API int weft_future_then(weft_future *prev, weft_pool *pool, weft_then_fn fn, void *arg,
                              weft_future **out);

/* ---------------------------------------------------------------------------------------------
 * Task groups
 */

/* A counted set of tasks of one pool with one wait and one cancel, as asyncio's TaskGroup or
 * oneTBB's task_group: tasks may be detached, and the group still knows when they are done.
 * Every call may come from any thread, a task of the group included. */
typedef struct weft_group weft_group;

/* A new, empty group for tasks of pool. Errors: -EINVAL (pool or out NULL), -ENOMEM. */
WEFT_API int weft_group_create(weft_pool *pool, weft_group **out);

/* weft_submit into the group: the group counts the task until it has finished (whatever its
 * outcome); *out, when out is not NULL, receives a future as from weft_submit. Errors: those
 * of weft_submit, and -EINVAL (g or fn NULL), -ENOMEM; on error nothing was submitted. */
WEFT_API int weft_group_submit(weft_group *g, weft_fn fn, void *arg, weft_future **out);

/* Tasks submitted to g that have not finished; 0 for NULL. */
WEFT_API size_t weft_group_pending(const weft_group *g);

/* Waits until every task submitted to g so far, and those they submit to g meanwhile, has
 * finished, or timeout_ns passes (on a worker, as weft_future_wait waits). 0, or
 * -ETIMEDOUT; -EINVAL (g NULL, bad timeout); -EDEADLK when called from a task of g, which
 * would wait for itself. */
WEFT_API int weft_group_wait(weft_group *g, int64_t timeout_ns);

/* Cancels every task of g that has not started (running ones get a request they can read with
 * weft_cancel_requested). Returns how many were cancelled, or -EINVAL (g NULL), -ENOMEM. */
WEFT_API int weft_group_cancel(weft_group *g);

/* Waits for every task of g (as weft_group_wait without a timeout), then frees g. NULL is a
 * no-op returning 0. Errors: -EDEADLK from a task of g (nothing is done). */
WEFT_API int weft_group_destroy(weft_group *g);

/* ---------------------------------------------------------------------------------------------
 * Fork-join and loops
 */

/* On a worker: runs a(a_arg) and b(b_arg), possibly in parallel (b may be stolen by another
 * worker), and returns when both are done. Allocates nothing on the heap: b's frame lives on the
 * caller's stack. While b runs elsewhere the caller runs other tasks. Outside any pool it runs a
 * then b. Inside either half, weft_cancel_requested() answers for the task that called
 * weft_join. Neither half may leave by longjmp. */
WEFT_API void weft_join(void (*a)(void *), void *a_arg, void (*b)(void *), void *b_arg);

/* Inline fork-join, for recursion where every call may be a task:
 *
 *     weft_frame fr;
 *     weft_offer(&fr, fn, arg);   // fn(arg) is now available to thieves
 *     ...                         // the caller's own part of the work
 *     if (weft_reclaim(&fr))      // nobody took it:
 *         fn(arg);                //   a direct call, which the compiler can inline
 *
 * On a worker, weft_offer makes fn(arg) available to the other workers; fr lives on the
 * caller's stack and must stay valid until weft_reclaim(fr) returns. The same thread reclaims
 * its frames in the reverse order of its offers. weft_reclaim returns true when no thief took
 * the frame: the caller must then call fn(arg) itself. It returns false when a thief took it:
 * fn(arg) has then returned and its effects are visible to the caller; while it waited, the
 * caller ran other tasks. Outside any pool weft_offer only records and weft_reclaim returns
 * true. Neither allocates nor fails: an offer that does not fit in the worker's deque stays
 * private (weft_reclaim then returns true). Inside fn, weft_cancel_requested() answers for the
 * task that offered. fn must not leave by longjmp.
 * In a pool that measures work and span ($WEFT_WORKSPAN, below) the answers are the same, and
 * the fn(arg) the caller calls after true still counts as a branch beside the caller's own part
 * between offer and reclaim. weft cannot see that call return: what the caller does after it,
 * until the enclosing reclaim, join half, scope branch, loop body, region, task or stolen frame
 * ends, counts as part of the branch (in pfib, x->r = a.r + b.r; docs/workspan.md). */
typedef struct weft_frame {
    /* The library's. weft_offer writes run_, fn_, arg_ and index_, and weft_scope_spawn prev_;
     * the rest is the library's. */
    void *link_;
    void (*run_)(void *, void *);
    uint32_t flags_;
    void (*fn_)(void *);
    void *arg_;
    union {
        void *opaque_[7];
        struct {
            void *lib_[4];
            struct weft_frame *prev_; /* a scope's: the frame spawned before (weft_scope_spawn) */
            void *lib2_[2];
        } scope_;
    };
    int64_t index_; /* where weft_offer pushed it in the worker's deque; -1: not pushed there */
    void *opaque2_[3];
} weft_frame;

/* The out-of-line parts of weft_offer and weft_reclaim; call those. */
WEFT_API void weft_frame_offer(weft_frame *fr, void (*fn)(void *), void *arg);
WEFT_API bool weft_frame_reclaim(weft_frame *fr);

/* Not API, but ABI: what weft_offer and weft_reclaim read inline. The calling thread's worker
 * deque as its owner sees it (lib/deque.h, which asserts that the layouts agree), or NULL when
 * the thread is no worker, or one of a pool that measures work and span. The deque is split
 * (lib/deque.c): items [top, split) may be stolen, items [split, bottom) are the owner's alone,
 * so pushing and taking them back needs no fence. A change to this struct, to weft__fjq_self,
 * to WEFT__FRAME_KEPT or to weft_frame's members up to index_ changes the library's SONAME
 * (libweft.so.2 has these). Accessed with the GNU __atomic builtins, as the library accesses
 * the same words. */
struct weft__fjq {
    int64_t top; /* thieves' */
    char line_[64 - sizeof(int64_t)];
    int64_t bottom; /* the owner's: the next index to fill */
    int64_t split;  /* the owner's: the first private index */
    void **slot;    /* the owner's copy of the buffer, capacity mask + 1 */
    int64_t mask;
    uint64_t forks; /* the owner's count of the frames pushed here (statistics: joins) */
};
extern __thread struct weft__fjq *weft__fjq_self __attribute__((tls_model("initial-exec")));

/* weft_frame's run_ when weft_offer kept the frame because the deque was full (ABI too). */
#define WEFT__FRAME_KEPT ((void (*)(void *, void *))(uintptr_t)1)

/* A push keeps at least this many items shared: while fewer are, it shares every private one
 * (lib/deque.c, where it is WEFT_KEEP_SHARED). ABI too. */
#define WEFT__KEEP_SHARED 2

/* A frame pushed privately by the inline path: weft_frame_offer's publish fills in the rest
 * (run_ NULL marks it) before a thief can see it. A frame that finds the buffer full is kept
 * (run_ WEFT__FRAME_KEPT): never pushed, and its reclaim answers true. Falls back to
 * weft_frame_offer outside a pool, in a measuring pool, and when fewer than WEFT__KEEP_SHARED items
 * are shared (thieves took them: the frame and every private one are then shared). Returns
 * whether the frame went on the deque (index_ >= 0), known on the inline path without a load. */
static inline bool weft__offer(weft_frame *fr, void (*fn)(void *), void *arg)
{
    struct weft__fjq *q = weft__fjq_self;
    fr->run_ = 0;
    fr->fn_ = fn;
    fr->arg_ = arg;
    if (q != NULL) {
        int64_t b = __atomic_load_n(&q->bottom, __ATOMIC_RELAXED); /* the owner's own */
        /* acquire pairs with a thief's CAS on top: a slot below top is free once it was read */
        int64_t t = __atomic_load_n(&q->top, __ATOMIC_ACQUIRE);
        /* enough shared items left for thieves, and room */
        if (__builtin_expect(t + WEFT__KEEP_SHARED <=
                                     __atomic_load_n(&q->split, __ATOMIC_RELAXED) &&
                                 b - t <= q->mask,
                             1)) {
            /* relaxed: private until a publish, whose release store of split publishes it */
            __atomic_store_n(&q->slot[b & q->mask], (void *)fr, __ATOMIC_RELAXED);
            __atomic_store_n(&q->bottom, b + 1, __ATOMIC_RELAXED); /* a hint for others */
            fr->index_ = b;
            /* relaxed: a statistic only the owner writes (weft_pool_stats reads it) */
            __atomic_store_n(&q->forks, __atomic_load_n(&q->forks, __ATOMIC_RELAXED) + 1,
                             __ATOMIC_RELAXED);
            return true;
        }
        if (b - t > q->mask) {
            fr->run_ = WEFT__FRAME_KEPT; /* the deque is full: the frame stays the caller's */
            fr->index_ = -1;             /* no index that a reclaim could take for its own */
            return false;
        }
    }
    weft_frame_offer(fr, fn, arg);
    return fr->index_ >= 0;
}

/* weft__offer without its answer. */
static inline void weft_offer(weft_frame *fr, void (*fn)(void *), void *arg)
{
    (void)weft__offer(fr, fn, arg);
}

/* True at once when fr is the newest item of the calling worker's deque and private: no thief
 * can have seen it. Anything else (shared, stolen, never pushed) is weft_frame_reclaim's.
 * The new bottom is the frame's index, not the bottom just loaded minus one (the same value):
 * the store then waits for no load of bottom, which would wait for the store before it, so
 * offers and reclaims do not form one chain of store-to-load forwarding through bottom. */
static inline bool weft_reclaim(weft_frame *fr)
{
    struct weft__fjq *q = weft__fjq_self;
    if (q != NULL) {
        int64_t i = fr->index_;
        if (__builtin_expect(__atomic_load_n(&q->bottom, __ATOMIC_RELAXED) == i + 1 && /* own */
                                 i >= __atomic_load_n(&q->split, __ATOMIC_RELAXED),
                             1)) {
            __atomic_store_n(&q->bottom, i, __ATOMIC_RELAXED); /* a hint for others */
            return true;
        }
        if (fr->run_ == WEFT__FRAME_KEPT) /* never pushed: the deque was full */
            return true;
    }
    return weft_frame_reclaim(fr);
}

/* weft_join's common case, inline as weft_offer and weft_reclaim are: on a worker of a pool that
 * does not measure work and span, b is offered and a called directly, so that where a and b are
 * known the compiler makes both direct calls. Everything else (outside a pool, a measuring pool)
 * is the exported function's; (weft_join), in parentheses, names the function itself. */
static inline void weft__join(void (*a)(void *), void *a_arg, void (*b)(void *), void *b_arg)
{
    if (weft__fjq_self == NULL) {
        (weft_join)(a, a_arg, b, b_arg);
        return;
    }
    weft_frame fr;
    weft_offer(&fr, b, b_arg);
    a(a_arg);
    if (weft_reclaim(&fr))
        b(b_arg);
}
#define weft_join(a, a_arg, b, b_arg) weft__join((a), (a_arg), (b), (b_arg))

/* An n-ary fork-join scope: spawn any number of functions, then wait for all of them. Spawning
 * allocates nothing: each spawn uses a weft_spawn slot the caller provides (an array on its
 * stack, typically), which must stay valid until weft_scope_wait returns.
 *
 *     weft_scope s;
 *     weft_spawn slot[4];
 *     weft_scope_init(&s);
 *     for (int i = 0; i < 4; i++)
 *         weft_scope_spawn(&s, &slot[i], work, &args[i]);
 *     weft_scope_wait(&s);
 *
 * On a worker, each spawn is offered as weft_offer offers a frame: other workers may steal it.
 * weft_scope_wait takes them back newest first, as weft_reclaim does, running each one nobody
 * took; for one a thief took, it runs other tasks until that one is done. Outside any pool (or
 * on a thread other than the one that called weft_scope_init, or when the worker's deque is
 * full) weft_scope_spawn runs the function at once. Init, spawn and wait belong to one thread;
 * a spawned function may spawn into its own scope (run by the wait, it adds to what the wait
 * runs; run by a thief, the spawn runs at once there). After wait the scope may be used again.
 * Inside spawned functions weft_cancel_requested() answers for the task that spawned them. On a
 * worker of a pool that does not measure work and span, the three are inline, as weft_offer and
 * weft_reclaim are; the exported functions, named in parentheses, do the rest and the same. */

/* Not API, but ABI (as struct weft__fjq): what the inline scope functions read and write of a
 * weft_scope. q: the deque of the worker that called weft_scope_init, NULL when it was none or
 * one of a measuring pool (the exported functions then do everything). last: the newest frame
 * spawned and offered, the older ones linked through weft_frame's prev_. */
struct weft__scope_head {
    struct weft__fjq *q;
    weft_frame *last;
    void *lib_[2];
};
typedef struct weft_scope {
    union {
        void *opaque_[4];
        struct weft__scope_head h_;
    };
} weft_scope;
typedef struct weft_spawn {
    union {
        void *opaque_[16];
        weft_frame frame_;
    };
} weft_spawn;

WEFT_API void weft_scope_init(weft_scope *s);
WEFT_API void weft_scope_spawn(weft_scope *s, weft_spawn *slot, void (*fn)(void *), void *arg);
WEFT_API void weft_scope_wait(weft_scope *s);

static inline void weft__scope_init(weft_scope *s)
{
    struct weft__fjq *q = weft__fjq_self;
    if (q == NULL) {
        (weft_scope_init)(s);
        return;
    }
    s->h_.q = q;
    s->h_.last = 0;
}

/* A frame that was not pushed (index_ -1: the deque was full) runs at once. */
static inline void weft__scope_spawn(weft_scope *s, weft_spawn *slot, void (*fn)(void *), void *arg)
{
    struct weft__fjq *q = weft__fjq_self;
    if (q == NULL || q != s->h_.q) {
        (weft_scope_spawn)(s, slot, fn, arg);
        return;
    }
    weft_frame *fr = &slot->frame_;
    if (!weft__offer(fr, fn, arg)) {
        fn(arg);
        return;
    }
    fr->scope_.prev_ = s->h_.last;
    s->h_.last = fr;
}

static inline void weft__scope_wait(weft_scope *s)
{
    struct weft__fjq *q = weft__fjq_self;
    if (q == NULL || q != s->h_.q) {
        (weft_scope_wait)(s);
        return;
    }
    /* One frame off the list at a time: a function run here may spawn into this scope again,
     * and its frame goes on the list, and on the deque, above the rest. */
    for (weft_frame *fr; (fr = s->h_.last) != 0;) {
        s->h_.last = fr->scope_.prev_;
        if (weft_reclaim(fr))
            fr->fn_(fr->arg_);
    }
}
#define weft_scope_init(s)                 weft__scope_init(s)
#define weft_scope_spawn(s, slot, fn, arg) weft__scope_spawn((s), (slot), (fn), (arg))
#define weft_scope_wait(s)                 weft__scope_wait(s)

/* Calls body(lo, hi, ctx) on disjoint, non-empty ranges that cover [begin, end) exactly once,
 * each at most grain long (grain 0: chosen automatically, about 16 ranges per worker at most),
 * and returns when all are done. The ranges are split lazily: a worker splits what is left of its
 * range only when other workers may need work. Bodies run on the pool's workers and may run on
 * the calling thread when it is one of them. pool NULL means the pool of the calling worker.
 * From outside the pool it submits one task and waits for it.
 * Errors: -EINVAL (body NULL, begin > end, pool NULL outside any pool), -ESHUTDOWN (called
 * from outside a pool that is shut down, or shut down with CANCEL before the loop started:
 * nothing is called), -ENOMEM, -EAGAIN (from outside, max_pending tasks already wait). */
WEFT_API int weft_parallel_for(weft_pool *pool, size_t begin, size_t end, size_t grain,
                               void (*body)(size_t lo, size_t hi, void *ctx), void *ctx);

/* The largest accumulator weft_parallel_reduce takes, in bytes (it lives on worker stacks). */
#define WEFT_REDUCE_MAX_ACC 256u

/* A parallel reduction over [begin, end). Each range gets an accumulator of acc_size bytes,
 * initialised as a copy of *identity; body(lo, hi, acc, ctx) folds the indices lo..hi-1 into it,
 * and combine(acc, other, ctx) folds the accumulator of the range just right of acc's into acc.
 * Ranges are split as in weft_parallel_for and combined in left-to-right order, so combine need
 * only be associative (it need not commute); with an exact operator the result equals the serial
 * fold. On success *result (acc_size bytes) holds the final accumulator; an empty range gives
 * the identity. Threads, blocking and grain as in weft_parallel_for.
 * Errors: -EINVAL (body, combine, identity or result NULL, acc_size 0 or above
 * WEFT_REDUCE_MAX_ACC, begin > end, pool NULL outside any pool), -ESHUTDOWN, -ENOMEM, -EAGAIN
 * (as weft_parallel_for). */
WEFT_API int weft_parallel_reduce(weft_pool *pool, size_t begin, size_t end, size_t grain,
                                  size_t acc_size, const void *identity,
                                  void (*body)(size_t lo, size_t hi, void *acc, void *ctx),
                                  void (*combine)(void *acc, const void *other, void *ctx),
                                  void *ctx, void *result);

/* ---------------------------------------------------------------------------------------------
 * gather: one future for many (asyncio.gather)
 */

#define WEFT_RETURN_EXCEPTIONS 0x1u
#define WEFT_CANCEL_ON_ERROR   0x2u

/* *out receives a new future (one reference) aggregating fs[0..n) in order. The gather takes its
 * own reference to each child, so the caller may release its own at once. Children may come
 * from different pools and may be gathers themselves.
 *  - DONE when every child is DONE; weft_future_result(g, &r) then gives r as a void ** array
 *    of the n child results in input order, owned by g (valid until g is freed).
 *  - Without WEFT_RETURN_EXCEPTIONS, the first child to end FAILED or CANCELLED fails the gather
 *    at once with that child's code (-ECANCELED for a cancelled child); the other children go
 *    on unless WEFT_CANCEL_ON_ERROR is set, in which case they are cancelled.
 *  - With WEFT_RETURN_EXCEPTIONS the gather is DONE once every child has finished, whatever the
 *    outcome; the array holds each DONE child's result and NULL for the others, and
 *    weft_gather_child() gives each child's code.
 *  - Cancelling the gather cancels every child that has not finished, recursively through
 *    nested gathers (failed ones included), even when the gather itself has already failed;
 *    the gather becomes CANCELLED (and weft_future_cancel returns 1) only if it had not finished.
 *  - n == 0 gives a gather that is DONE at once (fs may then be NULL).
 * Errors: -EINVAL (out NULL, fs NULL with n > 0, a NULL entry, unknown flag bits), -ENOMEM. */
WEFT_API int weft_gather(weft_future *const fs[], size_t n, unsigned flags, weft_future **out);

/* Child i of gather g: returns its code (0, its failure code, -ECANCELED) and sets *result (if
 * result is not NULL) to its value when it is DONE. Does not wait.
 * Errors: -EINVAL (g NULL or not a gather, i >= n), -EAGAIN (child i has not finished). */
WEFT_API int weft_gather_child(const weft_future *g, size_t i, void **result);

/* Which child failed a gather that fails fast (no WEFT_RETURN_EXCEPTIONS): *index receives
 * the position of the child whose failure or cancellation made the gather FAILED (its code is
 * the gather's, and weft_gather_child gives it too).
 * Errors: -EINVAL (g NULL or not a gather, index NULL), -EAGAIN (g has not finished), -ENOENT
 * (g finished otherwise: DONE, or CANCELLED by a cancel of its own). A task's failure code and
 * an API error share the errno space: the API's codes come back from the call itself, a task's
 * from weft_future_result or weft_gather_child of a FAILED future, never the other way. */
WEFT_API int weft_gather_failed_child(const weft_future *g, size_t *index);

/* ---------------------------------------------------------------------------------------------
 * wait: done and pending sets (asyncio.wait)
 */

typedef enum { WEFT_FIRST_COMPLETED, WEFT_FIRST_EXCEPTION, WEFT_ALL_COMPLETED } weft_return_when;

/* Waits until the condition `when` holds for fs[0..n) or the timeout passes, whichever is first.
 * A timeout is not an error: it returns 0 with what has finished so far. On return
 * out[0..*ndone) holds the finished futures and out[*ndone..n) the unfinished ones, each part in
 * input order; out may be fs itself, so that waiting again on out + *ndone continues with the
 * rest. Cancels nothing, takes no references.
 *  - FIRST_COMPLETED: at least one finished. FIRST_EXCEPTION: one ended FAILED (a CANCELLED one
 *    does not count), or all finished. ALL_COMPLETED: all finished. If the condition holds on
 *    entry it returns at once.
 * On a worker it runs other tasks while it waits; elsewhere it sleeps on a condition variable.
 * Sets up to 64 futures need no allocation; larger ones allocate one block per call.
 * Errors: -EINVAL (n == 0, fs/out/ndone NULL, a NULL entry, bad when, bad timeout), -ENOMEM. */
WEFT_API int weft_wait(weft_future *const fs[], size_t n, weft_return_when when, int64_t timeout_ns,
                       weft_future *out[], size_t *ndone);

/* ---------------------------------------------------------------------------------------------
 * as_completed and completion sets
 */

typedef struct weft_completion weft_completion;

/* A completion set over fs[0..n), holding one reference to each. n == 0 (fs possibly NULL)
 * gives an empty set. Errors: -EINVAL (out NULL, fs NULL with n > 0, a NULL entry), -ENOMEM. */
WEFT_API int weft_as_completed(weft_future *const fs[], size_t n, weft_completion **out);

/* An open-ended completion set, empty. Errors: -EINVAL (out NULL), -ENOMEM. */
WEFT_API int weft_completion_create(weft_completion **out);

/* Adds f (the set takes its own reference). It is handed out by weft_completion_next once it
 * has finished. Errors: -EINVAL (c or f NULL), -ENOMEM. */
WEFT_API int weft_completion_add(weft_completion *c, weft_future *f);

/* weft_submit straight into a completion set: the task's future goes to c, which hands it out
 * once it has finished (the caller keeps no reference). All or nothing: on error nothing was
 * submitted. Errors: those of weft_submit (-EAGAIN with max_pending among them), -EINVAL (c,
 * pool or fn NULL), -ENOMEM. */
WEFT_API int weft_completion_submit(weft_completion *c, weft_pool *pool, weft_fn fn, void *arg);

/* weft_completion_submit for a task group: the task is submitted with weft_group_submit (g
 * counts it until it has finished, and weft_group_wait and weft_group_cancel reach it), and its
 * future goes to c. An event loop hands work out this way when it wants both its results on a
 * descriptor and one wait, or one cancel, for everything in flight at shutdown. All or nothing.
 * Errors: those of weft_group_submit, -EINVAL (c, g or fn NULL), -ENOMEM. */
WEFT_API int weft_completion_submit_group(weft_completion *c, weft_group *g, weft_fn fn, void *arg);

/* Hands out each future of the set exactly once, in the order they finish (those already
 * finished first), passing the set's reference to the caller, who releases it.
 * Returns 0 with *f set; -ETIMEDOUT when none finished in time; -ENOENT when every future added
 * so far has been handed out. On a worker it runs other tasks while it waits.
 * Errors: -EINVAL (c or f NULL, bad timeout). */
WEFT_API int weft_completion_next(weft_completion *c, int64_t timeout_ns, weft_future **f);

/* A descriptor that poll and epoll report readable (POLLIN) exactly while
 * weft_completion_next(c, 0, &f) would return a future. It changes only when the set goes from
 * nothing ready to something ready and back, so a loop that takes every ready future when it
 * wakes pays two system calls per batch, not per future. Owned by c, closed by
 * weft_completion_destroy. Errors: -EINVAL (c NULL), -EMFILE/-ENFILE/-ENOMEM from eventfd. */
WEFT_API int weft_completion_fd(const weft_completion *c);

/* Releases the futures never handed out and frees the set. NULL is ignored. Not to be called
 * while another thread uses c. */
WEFT_API void weft_completion_destroy(weft_completion *c);

/* ---------------------------------------------------------------------------------------------
 * Work and span (predicting scaling past this machine; docs/workspan.md)
 *
 * With $WEFT_WORKSPAN set to a file path when a pool is created (%p in it becomes the process id,
 * %n the pool's name, %% a '%'), the pool measures, as Cilkscale does, the work (the time spent
 * in its tasks, join halves, scope spawns, offered frames and loop bodies) and the span (the
 * longest chain of that time through the fork-join, submit and wait dependencies) of everything
 * it runs, and writes them as JSON at weft_pool_destroy: work_ns, span_ns, parallelism (work /
 * span, the most speedup any number of cores can give), burdened_span_ns (the span with a
 * scheduling cost charged for each spawn and sync on it) and the regions below. The span is that
 * of the logical graph, not of the schedule: a weft_parallel_for or weft_parallel_reduce counts
 * as the full binary split of its range down to its grain, however lazily it ran. A wait on a
 * future that no task of the pool completed (a promise set from outside, a task of another pool)
 * adds nothing to the span: the outside world is taken to answer at once. An empty variable is
 * no variable; a file that cannot be written is skipped (said under $WEFT_DEBUG), and destroy
 * still succeeds. Without the variable none of this costs more than a test of a pointer.
 */

/* Work and span of a region, in nanoseconds. parallelism is work / span (0 when span is 0), the
 * burdened one work / burdened span. */
typedef struct weft_workspan {
    uint64_t work_ns;
    uint64_t span_ns;
    uint64_t burdened_span_ns;
    double parallelism;
    double burdened_parallelism;
} weft_workspan;

/* A named part of a job whose work and span are measured apart (Cilkscale's wsp_getworkspan
 * pair). Storage for the caller, on its stack typically. */
typedef struct weft_region {
    uint64_t opaque_[8];
} weft_region;

/* Opens region r of pool, named name, at the calling thread's present point: inside a task of
 * pool, the task's; on any other thread, the point its waits on pool's futures have reached.
 * The region covers what runs between this call and weft_region_end on the same thread in the
 * same task: its own code, and all that it forks and joins or waits for (work that it submits
 * and never waits for is not counted). Regions nest and may run in parallel. name must stay
 * valid until weft_region_end; regions closed under one name add up in the JSON file.
 * Costs two clock reads. When pool does not measure ($WEFT_WORKSPAN unset at its creation) it
 * costs a test, returns -ENOTSUP and marks r so that weft_region_end(r) returns -ENOTSUP too:
 * the pair may be called unconditionally.
 * Errors: -EINVAL (r, pool or name NULL), -ENOTSUP. */
WEFT_API int weft_region_begin(weft_region *r, weft_pool *pool, const char *name);

/* Closes region r, on the thread and in the task that opened it, before the pool is destroyed:
 * *out (when out is not NULL) receives its work and span, and they are added to the region's
 * name in the pool's JSON file.
 * Errors: -EINVAL (r NULL, not open, or closed on another thread or in another task than the
 * one that opened it: nothing changes), -ENOTSUP (opened on a pool that does not measure),
 * -ENOMEM (nothing recorded, r stays open). */
WEFT_API int weft_region_end(weft_region *r, weft_workspan *out);

/* ---------------------------------------------------------------------------------------------
 * Statistics
 *
 * Each worker counts what it does in counters only it writes, on a cache line of its own, so
 * counting costs a few plain instructions and no shared traffic; readers add them up. Counts
 * are exact once the pool is quiescent, and monotonic (but not mutually consistent) while it
 * runs. Times are nanoseconds of the worker's life: busy + helping + idle = its lifetime.
 */

/* X(name, description): one table for the struct, the JSON writer and the documentation. */
#define WEFT_WORKER_STATS(X)                                                                       \
    X(tasks_run, "submitted tasks this worker started")                                            \
    X(tasks_skipped, "queued tasks it found cancelled, or cancelled at a CANCEL shutdown")         \
    X(submitted, "tasks it submitted to its own pool (weft_submit from a task)")                   \
    X(joins, "weft_join halves, scope spawns and offered frames it pushed")                        \
    X(joins_stolen, "join halves and spawns of other workers it ran")                              \
    X(steal_attempts, "steals it tried on other workers' deques")                                  \
    X(steals, "steals that gave it a task or a frame")                                             \
    X(inject_taken, "tasks it took from the injection queue")                                      \
    X(parks, "times it went to sleep")                                                             \
    X(busy_ns, "time running tasks")                                                               \
    X(helping_ns, "time inside waits with nothing to run, before they block")                      \
    X(idle_ns, "time with no task at all (searching or asleep)")                                   \
    X(lent, "times a wait blocked and let another thread hold this worker meanwhile")

#define WEFT_STATS_FIELD_(name, doc) uint64_t name;
typedef struct weft_worker_stats {
    WEFT_WORKER_STATS(WEFT_STATS_FIELD_)
} weft_worker_stats;
#undef WEFT_STATS_FIELD_

typedef struct weft_stats {
    unsigned workers;           /* workers counted: every worker the pool has had, those
                                   that retired after weft_pool_resize included */
    uint64_t submitted_outside; /* tasks submitted from threads outside the pool */
    uint64_t cancelled_queued;  /* queued tasks a CANCEL shutdown's sweep took off the queues:
                                   cancelled by it, or by their owner before */
    weft_worker_stats total;    /* the sum over the workers */
} weft_stats;

/* Fills *out (if not NULL) and per_worker[0..min(n, workers)) (if not NULL), indexed by worker
 * index; a retired worker's counts stay (and go on if a grow brings it back). When the pool is
 * quiescent, submitted_outside + total.submitted == total.tasks_run + total.tasks_skipped +
 * cancelled_queued. Errors: -EINVAL (pool NULL). */
WEFT_API int weft_pool_stats(const weft_pool *pool, weft_stats *out, weft_worker_stats *per_worker,
                             size_t n);

/* Writes the statistics as one JSON object: {"weft_version", "workers", "submitted_outside",
 * "cancelled_queued", "total": {...}, "per_worker": [{...}, ...]} with the fields of
 * WEFT_WORKER_STATS. fd is a file descriptor open for writing; the text goes straight to it
 * with write(2), ahead of anything still in a stdio buffer on the same file (fflush(stdout)
 * first, or use weft_stats_write_json_file). Errors: -EINVAL (pool NULL, fd < 0), a negative
 * errno from write(2). */
WEFT_API int weft_stats_write_json(const weft_pool *pool, int fd);

/* The same JSON, written through the stdio stream fp: it lands in order with what the caller
 * wrote to fp before and after. fp is neither flushed nor closed. Threads: as any stdio call on
 * fp. Errors: -EINVAL (pool or fp NULL), -EIO (the stream's error indicator is set afterwards:
 * a write failed, now or earlier; errno tells why). */
WEFT_API int weft_stats_write_json_file(const weft_pool *pool, FILE *fp);

/* ---------------------------------------------------------------------------------------------
 * Traces
 */

/* Names the trace slice of the task (or stolen weft_join half, scope spawn or loop range) that
 * the calling thread is running, so that the trace shows label instead of "task" or "join"
 * (the kind stays in the event's "cat"). A later call in the same task replaces the label. The
 * label is copied (its first 127 bytes), so a buffer the task formats and reuses is fine; each
 * worker keeps up to 4096 distinct labels. Work a task runs inline (the half of a join nobody
 * stole, a direct call) belongs to the task's slice: a label given there names that slice.
 * Returns 1 when the label was recorded, 0 when there is no traced slice to name (the pool is
 * not tracing, or the caller is not running a task of a pool), without cost beyond a
 * thread-local read. Cost while tracing: the label's length, hashed, and a copy the first time
 * a worker sees it. Errors: -EINVAL (label NULL), -ENOSPC (4096 distinct labels on this
 * worker already), -ENOMEM; the slice then keeps its previous name. */
WEFT_API int weft_trace_label(const char *label);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_H */
