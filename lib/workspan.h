/* SPDX-License-Identifier: MIT */
/*
 * Work and span ($WEFT_WORKSPAN, internal): what the rest of the library calls, always behind a
 * test of a per-worker or per-pool pointer that is NULL unless the pool measures. See
 * workspan.c for the model.
 */
#ifndef WEFT_WORKSPAN_H
#define WEFT_WORKSPAN_H

#include "weft.h"

#include "alloc.h"
#include "atomic.h"
#include "future.h"
#include "platform.h"

#include <pthread.h>
#include <stdint.h>

struct weft__worker;

/* The burden charged on the burdened span for each spawn (on the continuation) and each sync
 * (on the child's end), as Cilkscale charges one per spawn and sync. Chosen from weft's own
 * costs on the development machine (docs/workspan.md, "The burden"): a steal of a frame by a
 * spinning thief plus the wake-up of a joining thread that had parked. */
#define WEFT_WS_BURDEN_NS 5000

/* A point of the logical graph: the work that flowed into it (the time of every strand before
 * it in series-parallel order) and the longest chain of time, plain and burdened, ending there.
 * Nanoseconds. A branch's point starts with work 0 and the span of where it forked. */
struct weft__wsp {
    int64_t work, span, bspan;
};

/* Per worker, written only by the thread holding the worker (the hand-over of a worker between
 * threads goes through a mutex, lend.c), read after the workers were joined. */
struct weft__ws_worker {
    int64_t work;        /* time spent in the pool's code on this worker */
    int64_t span, bspan; /* the latest end of a task it ran: the pool's span is the largest */
    uint64_t tasks;      /* tasks it ran measured */
    uint64_t stolen;     /* frames of other workers it ran */
} __attribute__((aligned(WEFT_CACHE_LINE)));

struct weft__ws_region; /* workspan.c */

/* A pool's measurement (pool->ws), made when $WEFT_WORKSPAN was set at its creation. */
struct weft__ws {
    struct weft__ws_worker *workers; /* one per worker */
    char *path;                      /* written at destroy; may hold %p and %n (stats.c) */
    uint64_t id;                     /* tells it from an earlier pool's at the same address */
    pthread_mutex_t mu;              /* the regions closed so far */
    struct weft__ws_region *regions;
    size_t nregions, cap;
    struct weft__mem *mem; /* the pool's allocator */
};

/* A join that a weft_reclaim left pending (workspan.c, "Reclaimed frames"): the end of the
 * continuation(s), joined with the strand when `level` closes. */
struct weft__ws_pend {
    struct weft__wsp j;
    uint32_t level;    /* the level the reclaim left the thread at */
    uint32_t syncs;    /* the joins merged here: the burdens the strand's side pays */
    const void *frame; /* the frame of the oldest of them (weft__ws_offering) */
};

/* The strand the calling thread is running: thread-local, so that the accounting of a fork, a
 * join or a task costs no shared memory traffic. `acc` is NULL on a thread that never ran a
 * measured strand. The levels and the pending joins are the thread's, across the strands
 * nested on its stack (a wait runs other strands above the waiting one). */
struct weft__strand {
    struct weft__ws_worker *acc; /* the worker's accumulator its time goes to */
    weft_pool *pool;             /* the pool whose graph it is part of */
    int64_t t0;                  /* start of the segment in progress */
    struct weft__wsp at;         /* the point at t0 */
    uint32_t level;              /* levels open: offers, branches, strands, regions */
    uint32_t npend, cap;         /* pend[0 .. npend): levels strictly increasing */
    struct weft__ws_pend *pend;  /* from mem, freed when the thread leaves the pool */
    struct weft__mem *mem;
};
extern WEFT_TLS struct weft__strand weft__strand;

/* --- pool lifecycle (pool.c) --- */

/* Makes pool->ws (path copied) and points every worker at its accumulator. 0 or -ENOMEM. */
int weft__ws_create(weft_pool *pool, const char *path);
/* Worker w of a measuring pool, as it is made (resize.c), gets its accumulator. 0. */
int weft__ws_worker(weft_pool *pool, struct weft__worker *w);
/* Writes the JSON file, after the workers were joined. Failures are reported under
 * $WEFT_DEBUG only, as for $WEFT_STATS. */
void weft__ws_write(weft_pool *pool);
/* The file template given in $WEFT_WORKSPAN. */
const char *weft__ws_path(const weft_pool *pool);
/* Frees pool->ws (if any); forked: in a child after fork(), where its mutex may be held. */
void weft__ws_free(weft_pool *pool, bool forked);

/* --- strands --- */

/* Closes the segment in progress (its time goes to the strand's point and the worker's work)
 * and returns the point reached. */
struct weft__wsp weft__ws_mark(void);
/* The strand continues from p; the segment in progress goes on (the bookkeeping between a
 * mark and a set is counted once, in the next segment, and costs no clock read). */
void weft__ws_set(const struct weft__wsp *p);
/* Where a fork made now starts: the point of the last mark, short of the segment in progress.
 * A fork costs no clock read this way; the span it gives the child misses the few nanoseconds
 * since the strand's last mark (the code between two forks, in a recursion). But while a
 * reclaim's join is pending at the present level, the segment may hold the whole branch the
 * caller ran after that reclaim, which the fork comes after: then the segment is closed first. */
static inline struct weft__wsp weft__ws_point(void)
{
    struct weft__strand *s = &weft__strand;
    if (s->npend > 0 && s->pend[s->npend - 1].level == s->level)
        return weft__ws_mark();
    return s->at;
}
/* A strand begins on worker w: a task or a stolen frame, at span `span`, `bspan`. It opens a
 * level, and returns the level to close at its end (weft__ws_close gives its end). */
uint32_t weft__ws_begin(struct weft__worker *w, int64_t span, int64_t bspan);
/* Scheduling done by the strand since `since` (a wake-up of an idle worker) is left out of it. */
static inline void weft__ws_skip(int64_t since)
{
    weft__strand.t0 += weft__now_ns() - since;
}
/* The continuation of a spawn pays the burden (Cilkscale's rule). */
void weft__ws_spawned(void);
/* A wait on a worker (weft__help) is about to run other strands on this stack or block: the
 * waiting strand's point is closed into *saved; resume takes it up again, the time waited
 * counting as nobody's work. */
void weft__ws_pause(struct weft__wsp *saved);
void weft__ws_resume(struct weft__wsp *saved);

/* A branch that forked at p starts on this thread: work 0, p's spans. */
static inline void weft__ws_branch(const struct weft__wsp *p)
{
    struct weft__wsp b = {0, p->span, p->bspan};
    weft__ws_set(&b);
}

/* Joins branch b (its own work, its end) into j: work adds up, the spans take the longer, and
 * the burdened one pays a sync on b's side. */
static inline void weft__ws_join(struct weft__wsp *j, const struct weft__wsp *b)
{
    j->work += b->work;
    if (b->span > j->span)
        j->span = b->span;
    if (b->bspan + WEFT_WS_BURDEN_NS > j->bspan)
        j->bspan = b->bspan + WEFT_WS_BURDEN_NS;
}

/* --- levels and pending joins (workspan.c, "Reclaimed frames") --- */

/* Opens a level (an offer, a join's half, a branch run here, a region); returns the level to
 * close it to. */
static inline uint32_t weft__ws_open(void)
{
    return weft__strand.level++;
}
/* Closes the levels above `base`: the segment in progress is closed, the pending joins left
 * above base are applied, and the point reached is returned. */
struct weft__wsp weft__ws_close(uint32_t base);
/* A reclaim found its frame not taken, at j (its weft__ws_close): the caller runs the branch
 * now, from `fork`. The join of the branch with j is left pending at the present level; out of
 * memory, it is made at once, and the branch counts as run after j. */
void weft__ws_defer(const struct weft__wsp *j, const struct weft__wsp *fork, const void *frame);
/* Makes the newest pending join now, after closing the segment in progress. */
void weft__ws_rejoin(void);
/* An offer of `frame` is about to open a level: if the newest pending join at the present level
 * began with a reclaim of the same frame, the caller is past the branch that reclaim returned
 * (a loop that offers and reclaims one frame in turn), and the join is made now. */
static inline void weft__ws_offering(const void *frame)
{
    struct weft__strand *s = &weft__strand;
    if (s->npend > 0 && s->pend[s->npend - 1].frame == frame &&
        s->pend[s->npend - 1].level == s->level)
        weft__ws_rejoin();
}
/* The calling thread leaves its pool: frees its pending joins' stack. */
void weft__ws_thread_end(void);

/* --- tasks and futures --- */

/* weft__task_new made f for pool, which measures: f starts where its submitter is. */
void weft__ws_submitted(weft_pool *pool, weft_future *f);
/* A task of a measuring pool starts on w (weft__run_submitted), and ends: its end is written
 * into f before f finishes. base: what task_begin returned. */
uint32_t weft__ws_task_begin(struct weft__worker *w, weft_future *f);
void weft__ws_task_end(struct weft__worker *w, weft_future *f, uint32_t base);
/* The calling thread has seen f finished in a wait (or a continuation starts after it): its
 * point moves past f's end. For any thread; does nothing unless f carries a stamp of a
 * measuring pool. */
void weft__ws_waited(weft_future *f);
/* A promise is completed by the calling thread: stamped with its point if it runs a measured
 * strand. */
void weft__ws_promise(weft_future *f);

/* After any wait that saw f finished: a load and a test when nothing measures. */
static inline void weft__ws_after_wait(weft_future *f)
{
    /* relaxed: read after the acquire load that saw f final, which published the flags */
    if (__builtin_expect(ld_relaxed(&f->ws_flags) != 0, 0))
        weft__ws_waited(f);
}

/* Before a promise is completed: a thread-local test when nothing measures. */
static inline void weft__ws_before_set(weft_future *f)
{
    if (__builtin_expect(weft__strand.acc != NULL, 0))
        weft__ws_promise(f);
}

/* future->ws_flags */
#define WEFT_WS_ENDED   0x1u /* ws_span, ws_bspan (and a task's ws_work) hold its end */
#define WEFT_WS_TAKEN   0x2u /* a waiter has taken its work into its own */
#define WEFT_WS_PROMISE 0x4u /* a promise: ws_source names the measuring pool */

#endif
