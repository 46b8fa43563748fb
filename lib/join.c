/* SPDX-License-Identifier: MIT */
/*
 * Fork-join and parallel loops.
 *
 * weft_join(a, b) on a worker pushes a frame for b, which lives on the caller's stack, onto the
 * worker's own deque, runs a, then takes the frame back (Cilk's work-first order, with Lace's
 * stack-allocated frames): in the common case nobody stole it and b runs inline, so a join costs
 * a push and a take and allocates nothing. If a thief took the frame, the owner helps (runs other
 * tasks, then parks) until the thief marks the frame done.
 *
 * Frame state, one atomic word: JOIN_DONE set by the thief after b returns (release: b's effects
 * are visible to the owner's acquire), JOIN_WAITING set by the owner before it parks. Whichever
 * RMW comes second sees the other's bit: the thief unparks the owner if it saw WAITING, and the
 * owner does not park if it saw DONE. The thief reads everything it needs from the frame before
 * setting DONE, since the owner may return and pop the frame off its stack at once after.
 *
 * A frame is never refused or cancelled by shutdown: if shutdown's sweep steals one it puts it
 * on the injection queue, where any worker runs it.
 *
 * weft_parallel_for splits lazily (Tzannes, Caragea, Barua, Vishkin, "Lazy binary splitting",
 * PPoPP 2010): a worker runs its range a grain at a time, and splits what is left in two (a
 * join) only when its own deque is empty, that is when no task of its own is there for thieves
 * to take. Uniform loops thus split about once per worker; skewed ones keep splitting where the
 * work is. weft_parallel_reduce is the same loop with an accumulator per range: a split gives
 * the right half a fresh copy of the identity on the splitting stack and combines it into the
 * left half's accumulator after the join.
 */
#include "worker.h"

#include "platform.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define JOIN_DONE    0x1u
#define JOIN_WAITING 0x2u
#define JOIN_STOLEN  0x4u /* thief, base and epoch are written */

struct join_frame {
    struct weft__task task;
    void (*fn)(void *);
    void *arg;
    struct weft__thread *owner; /* the offering thread, NULL when private (weft_frame_offer) */
    weft_future *ctx;           /* the task the halves answer weft_cancel_requested() for */
    _Atomic uint32_t state;
    uint32_t epoch;      /* JOIN_STOLEN: the thief worker's lend count when fn began */
    struct scope *scope; /* weft_scope_spawn: the scope, and the frame spawned before */
    struct join_frame *prev;
    int64_t base;   /* JOIN_STOLEN: the thief's deque bottom when fn began */
    unsigned thief; /* JOIN_STOLEN: the thief worker's index */
};

/* Every frame of a pool that measures work and span (workspan.c) is one of these: the point
 * where fn forked, written before the push; then fn's own work and end, written by whoever ran
 * it (a thief before JOIN_DONE, whose release publishes it). Kept out of struct join_frame so
 * that weft_join's own frame, on the hottest path, does not grow when nothing measures. */
struct ws_frame {
    struct join_frame f;
    struct weft__wsp ws;
    uint32_t level; /* an offer: the level its reclaim closes to (workspan.c) */
};

static inline struct weft__wsp *ws_of(struct join_frame *fr)
{
    return &weft__container_of(fr, struct ws_frame, f)->ws;
}

/* The inside of a weft_scope. A scope made on a worker of a pool that does not measure work and
 * span has q, its deque: its spawns are offers and its wait reclaims them, inline (weft.h) or here
 * alike, and owner and pushed are unused. Otherwise q is NULL, and spawns of the owner's thread in
 * a measuring pool are frames of their own (spawn_measured), counted by pushed. */
struct scope {
    struct weft__fjq *q;        /* weft.h's weft__scope_head.q */
    struct join_frame *last;    /* newest spawned frame; frames link through prev */
    struct weft__worker *owner; /* q NULL: the worker that made it, NULL: spawns run at once */
    size_t pushed;              /* q NULL: frames pushed, not yet taken back or waited for */
};

_Static_assert(sizeof(struct scope) <= sizeof(weft_scope), "weft_scope too small: grow opaque_");
_Static_assert(sizeof(struct ws_frame) <= sizeof(weft_spawn), "weft_spawn too small: grow opaque_");
_Static_assert(_Alignof(struct join_frame) <= _Alignof(weft_spawn), "weft_spawn misaligned");
_Static_assert(offsetof(struct scope, q) == offsetof(weft_scope, h_.q) &&
                   offsetof(struct scope, last) == offsetof(weft_scope, h_.last) &&
                   offsetof(weft_spawn, frame_) == 0,
               "weft.h's inline scope functions must see struct scope's words");

/* A stolen frame in a measuring pool: a branch of the owner's graph, from the fork point, its end
 * back in the frame. */
__attribute__((noinline)) static void run_frame_measured(struct weft__worker *w,
                                                         struct join_frame *fr)
{
    struct weft__wsp *ws = ws_of(fr);
    uint32_t base = weft__ws_begin(w, ws->span, ws->bspan);
    weft__run_as(fr->ctx, fr->fn, fr->arg);
    *ws = weft__ws_close(base);
    w->ws->stolen++;
}

/* The run function of a frame, for the thief that stole it (or a worker that took it off the
 * injection queue, where shutdown's sweep put it). */
static void run_frame(struct weft__worker *w, struct weft__task *t)
{
    struct join_frame *fr = weft__container_of(t, struct join_frame, task);
    WEFT_COUNT(w, joins_stolen, 1);
    /* Everything pushed on w's deque from here until fn returns, while w is not lent, is
     * fn's own spread work: the owner may take it while it waits (join_find). */
    fr->thief = w->index;
    fr->base = weft__deque_bottom(&w->deque);
    fr->epoch = ld_relaxed(&w->epoch);   /* relaxed: only w's holder (this thread) bumps it */
    or_release(&fr->state, JOIN_STOLEN); /* release: publishes the three fields to join_find */
    if (__builtin_expect(w->ws != NULL, 0))
        run_frame_measured(w, fr);
    else
        weft__run_as(fr->ctx, fr->fn, fr->arg);
    /* acq_rel: release publishes b's effects to the owner's acquire in join_ready; acquire
     * orders this read of WAITING, and of the waiter, after the owner's RMW in join_arm */
    struct weft__thread *waiter = fr->owner; /* read now: the frame ends with JOIN_DONE */
    if (or_acq_rel(&fr->state, JOIN_DONE) & JOIN_WAITING)
        weft__thread_wake(waiter);
}

static bool join_ready(void *ctx)
{
    struct join_frame *fr = ctx;
    return (ld_acquire(&fr->state) & JOIN_DONE) != 0; /* pairs with the or in run_frame */
}

/* Leapfrogging (Wagner and Calder): while the thief runs the stolen half, the owner takes
 * frames back from the thief's deque, above the point where the half began, and runs them:
 * they are the half's own spread work, which the join waits for anyway. A frame taken there
 * after the half returned, or after the thief lent its worker (its deque then also holds a
 * spare's work), may be anyone's: it goes to the injection queue instead, for any worker, and
 * so does a submitted task left there, which nothing here waits for. */
static struct weft__task *join_find(void *ctx, struct weft__worker *w)
{
    struct join_frame *fr = ctx;
    uint32_t s = ld_acquire(&fr->state); /* acquire: pairs with the release or in run_frame */
    if ((s & (JOIN_STOLEN | JOIN_DONE)) != JOIN_STOLEN)
        return NULL;
    struct weft__worker *thief = weft__worker_at(w->pool, fr->thief); /* records never move */
    /* Taken with taking up, as the scheduler takes, in case it is a submitted task that must
     * go back where a CANCEL shutdown's sweep can see it (worker.c, acquire_task). */
    st_seq_cst(&w->taking, 1); /* seq_cst: see worker.c, acquire_task */
    void *x = weft__deque_steal(&thief->deque, fr->base);
    WEFT_COUNT(w, steal_attempts, 1);
    if (x == WEFT_STEAL_EMPTY || x == WEFT_STEAL_ABORT) {
        st_release(&w->taking, 0); /* release: as in worker.c, decide */
        return NULL;
    }
    struct weft__task *t = x;
    /* acquire loads: the steal acquired the push of t, so a DONE or a lend before that push is
     * seen here (pairs with the or in run_frame and the add in weft__lend) */
    if (!(t->flags & WEFT_TASK_SUBMITTED) && !(ld_acquire(&fr->state) & JOIN_DONE) &&
        ld_acquire(&thief->epoch) == fr->epoch) {
        st_release(&w->taking, 0); /* release: as in worker.c, decide */
        WEFT_COUNT(w, steals, 1);
        if (w->tr != NULL)
            weft__trace_add(w->tr, WEFT_EV_STEAL, weft__now_ns(), 0);
        return t;
    }
    weft__requeue(w, t); /* drops taking */
    return NULL;
}

static bool join_arm(void *ctx, struct weft__thread *t)
{
    struct join_frame *fr = ctx;
    WEFT_ASSERT(fr->owner == t); /* the frame is on the waiting thread's stack */
    (void)t;
    /* acq_rel: see the top of the file; false when the thief has already finished */
    return (or_acq_rel(&fr->state, JOIN_WAITING) & JOIN_DONE) == 0;
}

static void join_disarm(void *ctx, struct weft__thread *t)
{
    (void)ctx; /* the thief's wake-up touches the waiting thread, never the frame, after DONE */
    (void)t;
}

static const struct weft__help_ops join_ops = {join_ready, join_find, join_arm, join_disarm};

static bool is_frame(const struct weft__task *t, const void *fr)
{
    return t == fr;
}

static bool in_scope(const struct weft__task *t, const void *s)
{
    return t->run == run_frame && weft__container_of(t, const struct join_frame, task)->scope == s;
}

static void ws_notify(struct weft__worker *w);

/* What a thief reads of a frame besides fn and arg. offer_ws writes it at once; a frame weft_offer
 * pushed inline (weft.h), which wrote fn, arg and its index and marked it with run NULL, gets it
 * when it is shared. Only the offering thread calls this, while the frame is private:
 * weft__help shares a waiting task's frames before anything else runs on the thread, so the
 * frames are the present task's, on this thread's stack. */
static inline void fill(struct join_frame *fr)
{
    fr->task.run = run_frame; /* task.next is set only if shutdown requeues it */
    fr->task.flags = 0;
    fr->owner = weft__thr; /* the frame lives on this thread's stack until it is done */
    fr->ctx = weft__current_task();
    atomic_init(&fr->state, 0);
    fr->scope = NULL;
}

void weft__frame_fill(struct weft__task *t)
{
    fill(weft__container_of(t, struct join_frame, task));
}

/* weft__publish; ws: the pool measures work and span (a constant at every call site). A
 * missed wake-up costs parallelism only (the owner runs the frames itself if nobody takes
 * them), so idle workers are woken only when none spins and the idle set looks non-empty,
 * without a fence. */
static inline __attribute__((always_inline)) void publish(struct weft__worker *w, bool ws)
{
    struct weft__deque *d = &w->deque;
    /* relaxed: the owner's own words */
    for (int64_t i = ld_relaxed(&d->split), b = ld_relaxed(&d->bottom); i < b; i++) {
        struct weft__task *t = ld_relaxed(&d->slot[i & d->mask]); /* the owner's own write */
        if (t->run == NULL)
            fill(weft__container_of(t, struct join_frame, task)); /* counted by weft_offer */
    }
    weft__deque_publish(d); /* release: publishes the fills */
    /* An idle worker that is spinning will find the frames: wake one only when none is (as Go's
     * scheduler wakes a thread only when no spinning one is looking). relaxed: a hint. */
    if (ld_relaxed(&w->pool->spinners) != 0)
        return;
    if (ws)
        ws_notify(w);
    else
        weft__park_notify_if_idle(&w->pool->park);
}

void weft__publish(struct weft__worker *w)
{
    publish(w, w->ws != NULL);
}

/* Fills in a frame of worker w for fn(arg) and offers it to thieves. False when the deque is
 * full (a frame never grows it): fn(arg) then stays the caller's to run. ws: the pool measures
 * work and span (a constant at every call site). */
static inline __attribute__((always_inline)) bool
offer_ws(struct weft__worker *w, struct join_frame *fr, void (*fn)(void *), void *arg, bool ws)
{
    fr->fn = fn;
    fr->arg = arg;
    fill(fr);
    int pushed = weft__deque_try_push(&w->deque, &fr->task);
    if (pushed == 0)
        return false;
    WEFT_COUNT(w, joins, 1);
    /* Private, unless thieves took the whole shared part: then they want work, and everything
     * private is shared (with a wake-up). */
    if (__builtin_expect(pushed == 2, 0))
        publish(w, ws);
    return true;
}

static inline __attribute__((always_inline)) bool
offer(struct weft__worker *w, struct join_frame *fr, void (*fn)(void *), void *arg)
{
    return offer_ws(w, fr, fn, arg, false);
}

/* Takes frame fr back off w's deque: true if nobody stole it (its function is then the
 * caller's to run), false once the thief has run it. */
static inline __attribute__((always_inline)) bool reclaim(struct weft__worker *w,
                                                          struct join_frame *fr)
{
    WEFT_ASSERT(w == weft__self); /* reclaimed on the thread that offered */
    /* The common case: the frame is at the bottom, nothing above it. */
    void *x = weft__deque_take_if(&w->deque, &fr->task);
    if (x == &fr->task)
        return true;
    if (x == WEFT_TAKE_OTHER) {
        /* Left above the frame: detached submissions, which go to the injection queue rather
         * than run on this stack (nothing here waits for them). */
        struct weft__task *t = weft__take_own_frame(w, is_frame, &fr->task);
        if (t != NULL)
            return true; /* fr */
    }
    weft__help(w, &join_ops, fr, -1); /* stolen: wait for the thief */
    return false;
}

/* Fork-join outside any pool runs serially, which a user may not expect: say so once per
 * thread under $WEFT_DEBUG (the flag first, so that serial code pays one load per call). */
static WEFT_TLS bool told_serial;

__attribute__((cold, noinline)) static void outside_pool(const char *call)
{
    if (!told_serial) {
        told_serial = true;
        weft__debug("%s called outside any pool runs serially; enter a pool with "
                    "weft_pool_run (said once per thread)",
                    call);
    }
}

/* --- work and span (workspan.c): the forks of a measuring pool --- */

/* An offer's wake-up of an idle worker, in a measuring pool: a system call that is scheduling,
 * which the burden stands for (Cilkscale leaves the runtime's spawn out of its strands too), so
 * its time is left out of the strand. Clock reads only when there is someone to wake. */
static void ws_notify(struct weft__worker *w)
{
    struct weft__parking *p = &w->pool->park;
    for (unsigned i = 0; i < p->nwords; i++) {
        /* relaxed: a hint, as in weft__park_notify_if_idle */
        if (__builtin_expect(ld_relaxed(&p->idle[i]) != 0, 0)) {
            int64_t t = weft__now_ns();
            weft__park_notify_one(p);
            weft__ws_skip(t);
            return;
        }
    }
}

/* fr, about to be offered by a strand now at fork point p: its branch starts there. The
 * continuation pays a spawn's burden. */
static inline void ws_fork(struct join_frame *fr, const struct weft__wsp *p)
{
    *ws_of(fr) = (struct weft__wsp){0, p->span, p->bspan};
    weft__ws_spawned();
}

/* Runs fr's function on the offering thread as the branch it is, its end into its ws_frame. Out
 * of line, so that weft_scope_wait's unmeasured path keeps its frame. */
__attribute__((noinline)) static void ws_run_branch(struct join_frame *fr)
{
    weft__ws_branch(ws_of(fr));
    uint32_t base = weft__ws_open();
    fr->fn(fr->arg);
    *ws_of(fr) = weft__ws_close(base);
}

/* weft_join on a worker of a measuring pool: a and b are two branches of the fork point. */
__attribute__((noinline)) static void join_measured(struct weft__worker *w, void (*a)(void *),
                                                    void *a_arg, void (*b)(void *), void *b_arg)
{
    struct ws_frame wf;
    struct join_frame *fr = &wf.f;
    struct weft__wsp p = weft__ws_point();
    ws_fork(fr, &p);
    bool offered = offer_ws(w, fr, b, b_arg, true);
    if (!offered) { /* a full deque: still two branches of the graph */
        fr->fn = b;
        fr->arg = b_arg;
    }
    uint32_t base = weft__ws_open();
    a(a_arg);
    struct weft__wsp j = weft__ws_close(base);
    if (!offered || reclaim(w, fr))
        ws_run_branch(fr);
    weft__ws_join(&j, &wf.ws); /* stolen: the thief left b's end there */
    weft__ws_set(&j);
}

/* The exported function (weft.h makes weft_join(...) its inline common case). */
void(weft_join)(void (*a)(void *), void *a_arg, void (*b)(void *), void *b_arg)
{
    struct weft__worker *w = weft__self;
    struct join_frame fr;
    if (w == NULL)
        outside_pool("weft_join");
    else if (__builtin_expect(w->ws != NULL, 0)) {
        join_measured(w, a, a_arg, b, b_arg);
        return;
    }
    if (w == NULL || !offer(w, &fr, b, b_arg)) {
        /* outside any pool, or a full deque: run in order */
        a(a_arg);
        b(b_arg);
        return;
    }
    a(a_arg);
    if (reclaim(w, &fr))
        b(b_arg);
}

/* --- inline fork-join: weft_offer / weft_reclaim --- */

_Static_assert(sizeof(struct ws_frame) <= sizeof(weft_frame), "weft_frame too small: grow opaque_");
_Static_assert(_Alignof(struct join_frame) <= _Alignof(weft_frame), "weft_frame misaligned");
/* weft.h's inline weft_offer writes these three and index_ (beyond a join_frame, in what only
 * a measuring pool's frames use: struct ws_frame), and reads nothing else of a frame: */
_Static_assert(offsetof(weft_frame, index_) >= sizeof(struct join_frame) &&
                   offsetof(struct join_frame, task.run) == offsetof(weft_frame, run_) &&
                   offsetof(struct join_frame, fn) == offsetof(weft_frame, fn_) &&
                   offsetof(struct join_frame, arg) == offsetof(weft_frame, arg_) &&
                   offsetof(struct join_frame, task) == 0 &&
                   offsetof(struct join_frame, prev) == offsetof(weft_frame, scope_.prev_),
               "weft_frame's leading members must mirror struct join_frame");

/* weft_offer in a measuring pool: fn(arg) is a branch of the present point, and the caller's own
 * part up to the reclaim a level above it (workspan.c, "Reclaimed frames"). */
__attribute__((noinline)) static void offer_measured(struct weft__worker *w, struct join_frame *fr,
                                                     void (*fn)(void *), void *arg)
{
    weft__ws_offering(fr);
    struct weft__wsp p = weft__ws_point();
    ws_fork(fr, &p);
    weft__container_of(fr, struct ws_frame, f)->level = weft__ws_open();
    if (!offer_ws(w, fr, fn, arg, true))
        fr->owner = NULL; /* a full deque: private, and reclaim runs it (fn and arg are set) */
}

void weft_frame_offer(weft_frame *slot, void (*fn)(void *), void *arg)
{
    struct join_frame *fr = (struct join_frame *)slot;
    struct weft__worker *w = weft__self;
    if (w == NULL) {
        outside_pool("weft_offer");
    } else if (__builtin_expect(w->ws != NULL, 0)) {
        offer_measured(w, fr, fn, arg);
        return;
    }
    int64_t at = w != NULL ? weft__deque_bottom(&w->deque) : -1;
    if (w == NULL || !offer(w, fr, fn, arg)) {
        /* Outside any pool, or a full deque: the frame stays private, never pushed. */
        fr->task.run = run_frame; /* not weft_offer's NULL: see weft_frame_reclaim */
        fr->owner = NULL;
        at = -1;
    }
    slot->index_ = at; /* for weft_reclaim's inline check (weft.h) */
}

/* weft_reclaim in a measuring pool: fn is a branch of the offer's fork point. Taken by a thief,
 * the thief left its end in the frame and the join is here. Not taken (or private), the caller
 * runs fn after this returns true: the strand goes back to the fork point for it, and the join
 * with the continuation's end waits until the level the offer was made at closes, which is
 * after fn returned (workspan.c, "Reclaimed frames"). */
__attribute__((noinline)) static bool reclaim_measured(struct weft__worker *w,
                                                       struct join_frame *fr)
{
    struct ws_frame *wf = weft__container_of(fr, struct ws_frame, f);
    struct weft__wsp j = weft__ws_close(wf->level);
    if (fr->owner == NULL || reclaim(w, fr)) {
        weft__ws_defer(&j, &wf->ws, fr);
        return true;
    }
    weft__ws_join(&j, &wf->ws);
    weft__ws_set(&j);
    return false;
}

bool weft_frame_reclaim(weft_frame *slot)
{
    struct join_frame *fr = (struct join_frame *)slot;
    struct weft__worker *w = weft__self; /* the thread that offered it, with its worker */
    if (w != NULL && __builtin_expect(w->ws != NULL, 0))
        return reclaim_measured(w, fr);
    /* Private, never pushed: weft_frame_offer left owner NULL, or weft_offer found the deque
     * full (run WEFT__FRAME_KEPT). A frame weft_offer pushed inline and nobody filled in (run
     * NULL) is still on the deque, under something else. */
    if ((void (*)(void *, void *))fr->task.run == WEFT__FRAME_KEPT)
        return true;
    if (fr->task.run != NULL && fr->owner == NULL)
        return true;
    return reclaim(w, fr);
}

/* --- scopes: spawn many, wait for all --- */

void(weft_scope_init)(weft_scope *sc)
{
    struct scope *s = (struct scope *)sc;
    s->q = weft__fjq_self; /* NULL outside any pool and in a measuring pool */
    s->last = NULL;
    s->owner = weft__self;
    s->pushed = 0;
}

/* weft_scope_spawn by the scope's thread in a measuring pool: every spawn is a branch of its
 * own fork point, joined at weft_scope_wait, so every frame goes on the scope's list; one that
 * finds the deque full runs at once, its end kept in its frame. */
__attribute__((noinline)) static void spawn_measured(struct scope *s, struct weft__worker *w,
                                                     struct join_frame *fr, void (*fn)(void *),
                                                     void *arg)
{
    struct weft__wsp p = weft__ws_point();
    ws_fork(fr, &p);
    if (offer_ws(w, fr, fn, arg, true)) {
        s->pushed++;
    } else {
        fr->fn = fn;
        fr->arg = arg;
        ws_run_branch(fr);
        st_relaxed(&fr->state, JOIN_DONE); /* relaxed: only this thread reads it */
        struct weft__wsp c = {p.work, p.span, p.bspan + WEFT_WS_BURDEN_NS};
        weft__ws_set(&c); /* the continuation goes on from the fork point */
    }
    fr->scope = s;
    fr->prev = s->last;
    s->last = fr;
}

void(weft_scope_spawn)(weft_scope *sc, weft_spawn *slot, void (*fn)(void *), void *arg)
{
    struct scope *s = (struct scope *)sc;
    if (s->q != NULL) {
        if (s->q == weft__fjq_self)
            weft__scope_spawn(sc, slot, fn, arg); /* what weft.h's inline spawn does */
        else
            fn(arg); /* on another thread than the scope's */
        return;
    }
    struct weft__worker *w = weft__self;
    struct join_frame *fr = (struct join_frame *)slot;
    if (w == NULL)
        outside_pool("weft_scope_spawn");
    if (w != NULL && w == s->owner && __builtin_expect(w->ws != NULL, 0)) {
        spawn_measured(s, w, fr, fn, arg);
        return;
    }
    if (w == NULL || w != s->owner || !offer(w, fr, fn, arg)) {
        fn(arg); /* outside a pool, on another thread than the scope's, or a full deque */
        return;
    }
    /* Only this thread reads these two (thieves read fn, arg, owner and ctx), so they may be
     * written after the push. */
    fr->scope = s;
    fr->prev = s->last;
    s->last = fr;
    s->pushed++;
}

void(weft_scope_wait)(weft_scope *sc)
{
    struct scope *s = (struct scope *)sc;
    if (s->q != NULL) {
        /* Waited for on the thread that spawned, as weft.h's inline wait does (which calls
         * this only on another thread, where nothing was spawned). */
        if (s->q == weft__fjq_self)
            weft__scope_wait(sc);
        WEFT_ASSERT(s->last == NULL);
        return;
    }
    struct weft__worker *w = s->owner;
    if (w == NULL || s->last == NULL)
        return;
    WEFT_ASSERT(w == weft__self); /* waited for on the thread that spawned */
    /* Work and span: every spawn is a branch, joined here with the continuation's end j. */
    bool ws = w->ws != NULL;
    struct weft__wsp j = {0, 0, 0};
    if (__builtin_expect(ws, 0))
        j = weft__ws_mark();
    /* Take back, newest first, the frames nobody stole, and run them here. Anything else on top
     * of them was left there by the spawned functions (detached submissions): it goes to the
     * injection queue (see reclaim). */
    struct join_frame *next = s->last; /* the newest frame not yet taken back, as a guess */
    while (s->pushed > 0) {
        /* The common case: that frame is the deque's newest item. Taken as reclaim takes its
         * frame, private or shared: a frame, never a submission, so without the sweep's
         * handshake (worker.c, weft__take_own_frame). NULL: thieves took it, and with it every
         * older item. Otherwise the general search. */
        void *x = next != NULL ? weft__deque_take_if(&w->deque, &next->task) : WEFT_TAKE_OTHER;
        struct weft__task *t = x;
        if (x == WEFT_TAKE_OTHER)
            t = weft__take_own_frame(w, in_scope, s);
        if (t == NULL)
            break; /* the rest were stolen */
        struct join_frame *fr = weft__container_of(t, struct join_frame, task);
        next = fr->prev;
        if (__builtin_expect(ws, 0))
            ws_run_branch(fr);
        else
            fr->fn(fr->arg);
        st_relaxed(&fr->state, JOIN_DONE); /* relaxed: only this thread reads it */
        s->pushed--;
    }
    /* Wait for the stolen ones: none, when every pushed frame came back (the frames that were
     * never pushed ran at once). */
    if (s->pushed == 0 && __builtin_expect(!ws, 1)) {
        s->last = NULL;
        return;
    }
    for (struct join_frame *fr = s->last; fr != NULL; fr = fr->prev) {
        if (!join_ready(fr))
            weft__help(w, &join_ops, fr, -1);
        if (__builtin_expect(ws, 0))
            weft__ws_join(&j, ws_of(fr));
    }
    if (__builtin_expect(ws, 0))
        weft__ws_set(&j);
    s->last = NULL;
    s->pushed = 0;
}

/* --- parallel_for and parallel_reduce --- */

struct loop {
    void (*body)(size_t lo, size_t hi, void *ctx);             /* parallel_for */
    void (*rbody)(size_t lo, size_t hi, void *acc, void *ctx); /* parallel_reduce */
    void (*combine)(void *acc, const void *other, void *ctx);
    const void *identity;
    size_t acc_size;
    void *ctx;
    size_t grain;
    bool split; /* more than one worker: splitting can pay */
};

struct range {
    struct loop *l;
    size_t lo, hi;
    void *acc; /* parallel_reduce: where this range accumulates */
};

static void run_range(void *arg);

static void run_piece(struct loop *l, size_t lo, size_t hi, void *acc)
{
    if (l->rbody != NULL)
        l->rbody(lo, hi, acc, l->ctx);
    else
        l->body(lo, hi, l->ctx);
}

/* Splits [lo, hi) in two halves run by a join. The right half accumulates into a fresh copy of
 * the identity on this stack, combined into acc after the left half: left-to-right order is
 * kept, so the operator need only be associative. */
static void split_range(struct loop *l, size_t lo, size_t hi, void *acc)
{
    size_t mid = lo + (hi - lo) / 2;
    _Alignas(max_align_t) unsigned char right_acc[WEFT_REDUCE_MAX_ACC];
    struct range left = {l, lo, mid, acc}, right = {l, mid, hi, right_acc};
    if (l->acc_size > 0)
        memcpy(right_acc, l->identity, l->acc_size);
    weft_join(run_range, &left, run_range, &right);
    if (l->combine != NULL)
        l->combine(acc, right_acc, l->ctx);
}

static void loop_range(struct loop *l, size_t lo, size_t hi, void *acc)
{
    struct weft__worker *w = weft__self;
    while (hi - lo > l->grain) {
        if (l->split && w != NULL && !weft__deque_maybe_nonempty(&w->deque)) {
            split_range(l, lo, hi, acc);
            return;
        }
        run_piece(l, lo, lo + l->grain, acc);
        lo += l->grain;
    }
    if (hi > lo)
        run_piece(l, lo, hi, acc);
}

static void run_range(void *arg)
{
    struct range *r = arg;
    loop_range(r->l, r->lo, r->hi, r->acc);
}

/* --- loops in a measuring pool: the full binary split, however lazily it runs --- */

/* A node of the loop's logical split tree. Every leaf starts at the loop's fork point p (the
 * splits themselves cost no time on the span); the node's result r is its own work and the
 * end of its longest leaf, a spawn and a sync burdened per level. */
struct mnode {
    struct loop *l;
    size_t lo, hi;
    void *acc;
    const struct weft__wsp *p;
    struct weft__wsp r;
};

static void measured_node(struct mnode *n);

static void run_mnode(void *arg)
{
    measured_node(arg);
}

/* The two halves of n in parallel, as split_range forks them: a plain fork of the two node
 * runs, whose results come back in the nodes, not through the strand. */
__attribute__((noinline)) static void measured_split(struct weft__worker *w, struct mnode *n,
                                                     struct mnode *left, struct mnode *right)
{
    struct loop *l = n->l;
    _Alignas(max_align_t) unsigned char right_acc[WEFT_REDUCE_MAX_ACC];
    if (l->acc_size > 0) {
        memcpy(right_acc, l->identity, l->acc_size);
        right->acc = right_acc;
    }
    struct ws_frame wf;
    wf.ws = *n->p; /* the thief's strand starts there; the node's result is what counts */
    if (!offer_ws(w, &wf.f, run_mnode, right, true)) {
        measured_node(left);
        measured_node(right);
    } else {
        measured_node(left);
        if (reclaim(w, &wf.f))
            measured_node(right);
    }
    if (l->combine != NULL) {
        /* after the join: a strand of its own, from the longer half */
        struct weft__wsp c = {0, left->r.span, left->r.bspan + WEFT_WS_BURDEN_NS};
        weft__ws_join(&c, &right->r);
        c.work = 0;
        weft__ws_set(&c);
        uint32_t base = weft__ws_open();
        l->combine(n->acc, right_acc, l->ctx);
        c = weft__ws_close(base);
        n->r = (struct weft__wsp){left->r.work + right->r.work + c.work, c.span, c.bspan};
    }
}

static void measured_node(struct mnode *n)
{
    struct loop *l = n->l;
    if (n->hi - n->lo <= l->grain) {
        weft__ws_branch(n->p);
        uint32_t base = weft__ws_open();
        run_piece(l, n->lo, n->hi, n->acc);
        n->r = weft__ws_close(base);
        return;
    }
    size_t mid = n->lo + (n->hi - n->lo) / 2;
    struct mnode left = {l, n->lo, mid, n->acc, n->p, {0, 0, 0}};
    struct mnode right = {l, mid, n->hi, n->acc, n->p, {0, 0, 0}};
    struct weft__worker *w = weft__self;
    if (l->split && w != NULL && !weft__deque_maybe_nonempty(&w->deque)) {
        measured_split(w, n, &left, &right);
        if (l->combine != NULL)
            return; /* n->r includes the combine */
    } else {
        measured_node(&left);
        measured_node(&right);
    }
    n->r = left.r;
    n->r.bspan += WEFT_WS_BURDEN_NS; /* the spawn on the continuation's side */
    weft__ws_join(&n->r, &right.r);
}

/* A whole loop from the calling strand: one fork of the tree at the present point. */
__attribute__((noinline)) static void loop_measured(struct range *all)
{
    struct weft__wsp p = weft__ws_point();
    struct mnode root = {all->l, all->lo, all->hi, all->acc, &p, {0, 0, 0}};
    measured_node(&root);
    struct weft__wsp e = {p.work + root.r.work, root.r.span, root.r.bspan};
    weft__ws_set(&e);
}

/* Runs a whole loop on the calling worker. */
static void loop_all(struct range *all)
{
    struct weft__worker *w = weft__self;
    if (w != NULL && __builtin_expect(w->ws != NULL, 0))
        loop_measured(all);
    else
        run_range(all);
}

static int loop_task(void *arg, void **result)
{
    (void)result;
    loop_all(arg);
    return 0;
}

/* Runs the loop l over [begin, end) on pool, from wherever the caller is. */
static int run_loop(weft_pool *pool, struct loop *l, size_t begin, size_t end, void *acc)
{
    struct weft__worker *self = weft__me();
    if (pool == NULL)
        pool = self != NULL ? self->pool : NULL;
    if (pool == NULL || begin > end)
        return -EINVAL;
    bool inside = self != NULL && self->pool == pool;
    /* acquire: pairs with the release in weft_pool_shutdown */
    if (!inside && ((ld_acquire(&pool->shutdown) & WEFT_SHUT_CLOSED) || weft__pool_forked(pool)))
        return -ESHUTDOWN;
    size_t n = end - begin;
    if (n == 0)
        return 0;
    unsigned workers = weft_pool_size(pool); /* a hint, should a resize come meanwhile */
    l->split = workers > 1;
    if (l->grain == 0) {
        /* about 16 pieces per worker: enough to balance skewed loops, few enough that a
         * uniform loop pays for a handful of splits */
        l->grain = n / ((size_t)workers * 16);
        if (l->grain == 0)
            l->grain = 1;
    }
    struct range all = {l, begin, end, acc};
    if (inside) {
        loop_all(&all);
        return 0;
    }
    weft_future *f;
    int rc = weft_submit(pool, loop_task, &all, &f);
    if (rc != 0)
        return rc;
    rc = weft_future_result(f, NULL);
    weft_future_release(f);
    /* Cancelled before it started: a CANCEL shutdown swept it, and nothing was called. */
    return rc == -ECANCELED ? -ESHUTDOWN : rc;
}

int weft_parallel_for(weft_pool *pool, size_t begin, size_t end, size_t grain,
                      void (*body)(size_t lo, size_t hi, void *ctx), void *ctx)
{
    if (body == NULL)
        return -EINVAL;
    struct loop l = {.body = body, .ctx = ctx, .grain = grain};
    return run_loop(pool, &l, begin, end, NULL);
}

int weft_parallel_reduce(weft_pool *pool, size_t begin, size_t end, size_t grain, size_t acc_size,
                         const void *identity,
                         void (*body)(size_t lo, size_t hi, void *acc, void *ctx),
                         void (*combine)(void *acc, const void *other, void *ctx), void *ctx,
                         void *result)
{
    if (body == NULL || combine == NULL || identity == NULL || result == NULL || acc_size == 0 ||
        acc_size > WEFT_REDUCE_MAX_ACC)
        return -EINVAL;
    struct loop l = {.rbody = body,
                     .combine = combine,
                     .identity = identity,
                     .acc_size = acc_size,
                     .ctx = ctx,
                     .grain = grain};
    _Alignas(max_align_t) unsigned char acc[WEFT_REDUCE_MAX_ACC];
    memcpy(acc, identity, acc_size);
    int rc = run_loop(pool, &l, begin, end, acc);
    if (rc == 0)
        memcpy(result, acc, acc_size);
    return rc;
}
