/* SPDX-License-Identifier: MIT */
/*
 * The pool (internal): what every part of the library may know of it. The workers are in
 * worker.h; creation, shutdown and destruction in pool.c, submission in submit.c, settings from
 * the environment in config.c.
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include "weft.h"

#include "alloc.h"
#include "atomic.h"
#include "inject.h"
#include "list.h"
#include "page.h"
#include "park.h"
#include "seg.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weft__worker;
struct weft__trace;
struct weft__thread;
struct weft__ws;

/* The pool's spare threads (lend.c). */
struct weft__lend {
    pthread_mutex_t mu;
    struct weft__list idle;     /* threads holding no worker, waiting for one */
    struct weft__thread *extra; /* every thread started (workers' and spares), for the joins */
    unsigned nextra;            /* spares among them */
    bool closing;               /* every worker has left: idle threads leave, no spare starts */
};
#define WEFT_MAX_SPARES 256 /* spare threads per pool, at most */

/* pool->shutdown bits */
#define WEFT_SHUT_CLOSED 0x1u /* submissions refused */
#define WEFT_SHUT_CANCEL 0x2u /* tasks that have not started are cancelled */
#define WEFT_SHUT_EXIT   0x4u /* workers leave once no work is visible (set by destroy) */

struct weft_pool {
    struct weft__mem mem; /* where everything the pool owns comes from, the pool included */
    /* The worker records, by segment (seg.h): a record never moves, so a pool can grow while
     * thieves read them. Index i is in seg[weft__seg(i)]; see weft__worker_at (worker.h). */
    struct weft__worker *seg[WEFT_SEGS];
    _Atomic uint32_t nslots;   /* workers with a record, live or retired (see weft__pool_slots) */
    _Atomic uint32_t target;   /* the pool's size: workers from this index on retire */
    pthread_mutex_t resize_mu; /* one resize at a time; a worker's retirement (resize.c) */
    unsigned made;             /* worker records made, under resize_mu (not all published) */
    struct weft__lend lend;
    struct weft__page *page; /* fork detection and the max_pending budget (page.h) */
    struct weft__ws *ws;     /* $WEFT_WORKSPAN: work and span measured (workspan.c); or NULL */
    struct weft__inject inject;
    struct weft__parking park;
    WEFT_ALIGNED _Atomic uint32_t shutdown;
    WEFT_ALIGNED _Atomic uint64_t swept; /* tasks cancelled by a CANCEL shutdown's sweep */
    _Atomic uint32_t sweepers;           /* CANCEL sweeps taking tasks off the queues now */
    _Atomic uint32_t nthreads;           /* threads started; read by workers after the EXIT bit */
    _Atomic uint32_t exited;             /* workers out of their loop (futex word) */
    _Atomic uint32_t spinners;           /* idle workers spinning now (worker.c) */
    unsigned cpus;                       /* CPUs the creating thread could use (spinning) */
    size_t max_pending;
    void (*on_worker_start)(weft_pool *pool, unsigned worker, void *data);
    void (*on_worker_stop)(weft_pool *pool, unsigned worker, void *data);
    void *hook_data;
    char name[16];
    weft_bind bind;
    size_t stack_size;
    char *trace_path;   /* NULL when not tracing; may hold %p and %n (stats.c) */
    char *stats_path;   /* $WEFT_STATS: statistics written at destroy; NULL: none */
    uint32_t trace_cap; /* events per worker's trace ring, when tracing */
};

/* The number of worker records: every worker that runs, or ran and retired, has an index below
 * it, and its deque may be stolen from. acquire: pairs with the release in resize.c that
 * publishes new records, so the segments they are in are visible. */
static inline unsigned weft__pool_slots(const weft_pool *pool)
{
    return ld_acquire(&((weft_pool *)pool)->nslots);
}

/* resize.c. Under pool->resize_mu: grows the pool to n workers, all or nothing (creation too). */
int weft__pool_grow(weft_pool *pool, unsigned n);

/* Under pool->resize_mu: the workers that will leave their loop at destruction (not retired). */
unsigned weft__pool_live(weft_pool *pool);

/* True in a child process that inherited the pool through fork(). */
static inline bool weft__pool_forked(const weft_pool *pool)
{
    return weft__page_forked(pool->page);
}

/* Writes the pool's trace to pool->trace_path, after its workers were joined (stats.c). */
void weft__pool_write_trace(weft_pool *pool);

/* Writes the pool's statistics as JSON to pool->stats_path, after its workers were joined. */
void weft__pool_write_stats(weft_pool *pool);

/* The file name a template gives for pool: %p the process id, %n the pool's name, %% a '%'. */
void weft__expand_path(const char *tmpl, const weft_pool *pool, char *out, size_t len);

#endif
