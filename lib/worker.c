/* SPDX-License-Identifier: MIT */
/*
 * Workers: the scheduling loop, running tasks, and waiting by helping.
 *
 * A worker looks for work in this order: its own deque (LIFO, hot in cache), its home shard of
 * the injection queue (taking a batch into its deque so that others can steal from it), the
 * other workers' deques (FIFO end, random first victim), then the other shards. Having found
 * nothing for a while it spins briefly, then parks (park.c).
 */
#include "worker.h"

#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

WEFT_TLS struct weft__worker *weft__self;
WEFT_API __thread struct weft__fjq *weft__fjq_self __attribute__((tls_model("initial-exec")));

WEFT_TLS struct weft__run_frame *weft__current;

/* Idle spinning, only while it pays. A worker that found nothing keeps looking for a while
 * before it parks, because a park and wake-up pair costs microseconds of system calls and of
 * wake-up latency: pausing for the first SPIN_PAUSES rounds, then yielding the CPU to any other
 * runnable thread (submitters, on a busy machine) for up to SPIN_NS.
 *
 * Spinning for as long as blocking costs, then blocking, never costs more than twice the best
 * choice made knowing the future (competitive spinning, Karlin, Manasse, McGeoch and Owicki,
 * SOSP 1991); knowing the recent past does better. Each worker keeps an average of its last
 * idle spells, from the first failed look to the task found, parked time included. While that
 * average is longer than SPIN_NS, spinning would almost always end in a park anyway, so the
 * worker parks right after the pauses: a pool fed jobs one at a time with gaps longer than a
 * wake-up (an embedded compressor's) then uses CPU only for its jobs. When spells shorten
 * again, the parked ones pull the average back down and spinning resumes. And, as Go's
 * scheduler does, at most half the workers (at least one) spin at once, and at most half the
 * CPUs: more spinners find no more work, they only burn the cores the others need (with 64
 * workers on 2 CPUs, 32 yielding spinners took most of the time from the 2 that worked). */
#define SPIN_NS      20000
#define SPIN_PAUSES  16
#define SPIN_AVG_MAX 1000000 /* longer spells count as this long, so one cannot dominate */

struct spin {
    int rounds;
    int64_t since; /* start of the yielding phase, 0 before it */
    bool counted;  /* holds one of pool->spinners */
};

static bool spin_allowed(struct weft__worker *w)
{
    return w->idle_avg_ns <= SPIN_NS;
}

/* A wait's spin, before it blocks: false once it has lasted SPIN_NS. Not limited as an idle
 * worker's is: it waits for one future, which its own work may be about to finish. */
static bool wait_spinning(struct spin *s)
{
    if (s->rounds++ < SPIN_PAUSES) {
        weft_cpu_relax();
        return true;
    }
    int64_t now = weft__now_ns();
    if (s->since == 0)
        s->since = now;
    if (now - s->since < SPIN_NS) {
        sched_yield();
        return true;
    }
    return false;
}

/* An idle worker's spin: false once it has lasted SPIN_NS, or should not go on: time to
 * park. */
static bool keep_spinning(struct weft__worker *w, struct spin *s)
{
    /* Past the pauses, the yielding phase needs leave to start: spells that were short, and
     * a place among the spinners. Then it goes on as a wait's spin does. */
    if (s->rounds >= SPIN_PAUSES && !s->counted) {
        if (!spin_allowed(w))
            return false;
        weft_pool *pool = w->pool;
        unsigned size = weft_pool_size(pool);
        if (size > pool->cpus)
            size = pool->cpus; /* oversubscribed: spinners would take the CPUs from workers */
        unsigned cap = size > 1 ? size / 2 : 1;
        /* relaxed: a head count that only limits spinning; nothing is published through it */
        if (add_relaxed(&pool->spinners, 1) >= cap) {
            sub_relaxed(&pool->spinners, 1);
            return false;
        }
        s->counted = true;
    }
    return wait_spinning(s);
}

/* The spin is over (work found, or time to park): gives back its place among the spinners. */
static void spin_end(struct weft__worker *w, struct spin *s)
{
    if (s->counted)
        sub_relaxed(&w->pool->spinners, 1); /* relaxed: as in keep_spinning */
    *s = (struct spin){0, 0, false};
}

/* An idle spell that began at `start` (0: none) ended with a task found: into the average.
 * came: when a waker woke this worker for the work, if it parked (0: it found it spinning);
 * the wake-up's latency is the cost of parking, not part of the gap between tasks. */
static void idle_spell_done(struct weft__worker *w, int64_t start, int64_t came)
{
    if (start == 0)
        return;
    int64_t d = (came > start ? came : weft__now_ns()) - start;
    if (d > SPIN_AVG_MAX)
        d = SPIN_AVG_MAX;
    w->idle_avg_ns += (d - w->idle_avg_ns) / 4; /* owner only */
}

#define INJECT_BATCH 32

static uint64_t next_rand(struct weft__worker *w)
{
    /* xorshift64 */
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return x;
}

static struct weft__task *take_injected(struct weft__worker *w, unsigned s)
{
    weft_pool *pool = w->pool;
    /* Take a batch, but no more than the deque has room for, so none has to go back. */
    size_t room = weft__deque_room(&w->deque);
    size_t max = room < INJECT_BATCH ? room + 1 : INJECT_BATCH;
    struct weft__task *batch[INJECT_BATCH];
    size_t n = weft__inject_pop(&pool->inject, s, batch, max, false);
    if (n == 0)
        return NULL;
    WEFT_COUNT(w, inject_taken, n);
    /* Keep the rest in the deque, where other workers can steal them. Newest first, so that
     * this worker, taking from the bottom, runs them oldest first, in submission order. */
    for (size_t i = n - 1; i >= 1; i--)
        weft__deque_push(&w->deque, batch[i]); /* cannot fail: room checked */
    /* All placed: the rest in the deque, batch[0] in hand under w->taking (see acquire_task). */
    weft__inject_taken(&pool->inject, s, n);
    if (n > 1)
        weft__park_notify_one(&pool->park);
    return batch[0];
}

static struct weft__task *steal_any(struct weft__worker *w)
{
    weft_pool *pool = w->pool;
    unsigned n = weft__pool_slots(pool);
    if (n > 1) {
        unsigned start = (unsigned)(next_rand(w) % n);
        for (unsigned k = 0; k < n; k++) {
            unsigned v = (start + k) % n;
            if (v == w->index)
                continue;
            void *x;
            int tries = 0;
            do {
                x = weft__deque_steal(&weft__worker_at(pool, v)->deque, WEFT_STEAL_ANY);
            } while (x == WEFT_STEAL_ABORT && ++tries < 4);
            WEFT_COUNT(w, steal_attempts, 1);
            if (x != WEFT_STEAL_EMPTY && x != WEFT_STEAL_ABORT) {
                WEFT_COUNT(w, steals, 1);
                if (w->tr != NULL)
                    weft__trace_add(w->tr, WEFT_EV_STEAL, weft__now_ns(), 0);
                return x;
            }
        }
    }
    for (unsigned k = 1; k <= pool->inject.nshards; k++) {
        unsigned s = (w->inject_home + k) % pool->inject.nshards;
        struct weft__task *t = take_injected(w, s);
        if (t != NULL)
            return t;
    }
    return NULL;
}

static struct weft__task *find_task(struct weft__worker *w)
{
    WEFT_ASSERT(w == weft__self); /* a deque's bottom is its owner's alone */
    struct weft__task *t = weft__deque_take(&w->deque);
    if (t != NULL) {
        if (__builtin_expect(t->run == NULL, 0))
            weft__frame_fill(t); /* none at a task boundary (help shares them): defensive */
        return t;
    }
    t = take_injected(w, w->inject_home);
    if (t != NULL)
        return t;
    return steal_any(w);
}

bool weft__work_visible(weft_pool *pool)
{
    if (weft__inject_maybe_nonempty(&pool->inject))
        return true;
    unsigned n = weft__pool_slots(pool);
    for (unsigned i = 0; i < n; i++) {
        if (weft__deque_maybe_nonempty(&weft__worker_at(pool, i)->deque))
            return true;
    }
    return false;
}

void weft__forget_worker(void)
{
    weft__set_self(NULL);
    weft__thr = NULL;
    weft__current = NULL;
}

/* A task forked and this is the child, returning from the task: the pool it ran on is gone
 * here, and its future must not finish in this process. The thread ends as if it had returned
 * from its start routine (the process ends with it, since it is the only thread). */
__attribute__((noreturn, cold, noinline)) static void end_forked_child(void)
{
    weft__forget_worker();
    pthread_exit(NULL);
}

/* Runs a submitted task that decide has started; ws: the pool measures work and span
 * (workspan.c), a constant in each of the two copies below. */
static inline __attribute__((always_inline)) void run_submitted(struct weft__worker *w,
                                                                struct weft__task *t, bool ws)
{
    weft_future *f = weft__container_of(t, weft_future, task);
    struct weft__run_frame frame = {f, weft__current};
    weft__current = &frame;
    uint32_t ws_base = 0; /* the level its strand opened (workspan.c) */
    if (ws)
        ws_base = weft__ws_task_begin(w, f);
    void *result = NULL;
    int code = f->fn(f->arg, &result);
    /* In a fork() child, a call into weft has already forgotten the worker, and the pool may
     * have been freed since: test the thread-local before touching the pool. */
    if (__builtin_expect(weft__self != w, 0) || weft__pool_forked(w->pool))
        end_forked_child();
    weft__current = frame.prev;
    if (ws)
        weft__ws_task_end(w, f, ws_base); /* its end, into f before it finishes */
    weft_state st = WEFT_DONE;
    if (code == -ECANCELED && (ld_relaxed(&f->state) & WEFT_FS_CANCEL_REQ))
        st = WEFT_CANCELLED; /* relaxed: the flag was set before the task could read it */
    else if (code != 0)
        st = WEFT_FAILED;
    weft__unflight(f);
    weft__future_finish(f, st, code, result);
    weft_future_release(f); /* the task's reference */
}

__attribute__((noinline)) static void run_submitted_measured(struct weft__worker *w,
                                                             struct weft__task *t)
{
    run_submitted(w, t, true);
}

void weft__run_submitted(struct weft__worker *w, struct weft__task *t)
{
    if (__builtin_expect(w->ws != NULL, 0))
        run_submitted_measured(w, t);
    else
        run_submitted(w, t, false);
}

/* A submitted task f taken off a queue while a CANCEL shutdown is under way, with taking up:
 * it ends CANCELLED unless it has started or finished. The state changes before taking falls,
 * so that the shutdown waiting for taking finds it CANCELLED; waiters wake after. */
static void decide_cancelled(struct weft__worker *w, weft_future *f)
{
    bool won = weft__future_cancel_quiet(f);
    /* release: the CANCELLED state is visible to the shutdown waiting for this */
    st_release(&w->taking, 0);
    if (won) {
        weft__uncount(f, true);
        weft__future_announce(f);
    }
    /* Not counted when a wait had claimed and started it (weft__claim): it counts as run.
     * relaxed: the failed CAS read the word, and neither state goes back. */
    if (won || (ld_relaxed(&f->state) & WEFT_FS_STATE_MASK) == WEFT_CANCELLED)
        WEFT_COUNT(w, tasks_skipped, 1);
    weft_future_release(f); /* the queue's reference */
}

/* Takes a task to run and, if it is a submitted one, decides at once whether it starts or,
 * because a CANCEL shutdown has begun, ends CANCELLED. w->taking is up from before the take
 * until that decision, so that weft_pool_shutdown(CANCEL), which waits for it to fall after
 * setting the cancel bit and sweeping the queues, never returns while a task it could not see
 * is still PENDING: seq_cst store of taking then seq_cst load of the bit here, seq_cst set of
 * the bit then seq_cst load of taking there, so at least one side sees the other. No user code
 * runs while taking is up (a cancelled task's callbacks run after it falls), so a shutdown
 * called from a callback cannot wait for its own thread.
 * Returns NULL when there was nothing to take, WEFT_TASK_SKIP when the task was dropped. */
static struct weft__task *decide(struct weft__worker *w, struct weft__task *t)
{
    if (t != NULL && (t->flags & WEFT_TASK_SUBMITTED)) {
        weft_future *f = weft__container_of(t, weft_future, task);
        if (ld_seq_cst(&w->pool->shutdown) & WEFT_SHUT_CANCEL) {
            decide_cancelled(w, f); /* drops taking */
            return WEFT_TASK_SKIP;
        }
        if (!weft__future_start(f)) {
            /* Cancelled while queued, or started by a wait that claimed it (weft__claim):
             * drop the queue's reference. Only the first counts as skipped. relaxed: the
             * failed CAS read the word; a final or running state never goes back. */
            if ((ld_relaxed(&f->state) & WEFT_FS_STATE_MASK) == WEFT_CANCELLED)
                WEFT_COUNT(w, tasks_skipped, 1);
            weft_future_release(f);
            t = WEFT_TASK_SKIP;
        } else {
            weft__uncount(f, false);
            WEFT_COUNT(w, tasks_run, 1);
        }
    }
    st_release(&w->taking, 0); /* release: the decision above is visible to the shutdown */
    return t;
}

static struct weft__task *acquire_task(struct weft__worker *w)
{
    st_seq_cst(&w->taking, 1); /* seq_cst: see above */
    return decide(w, find_task(w));
}

/* weft__run_task while tracing: the task's slice, with its label. Out of line, so that the
 * untraced path keeps a prologue of its own (no registers saved for this one). */
__attribute__((noinline, cold)) static void run_traced(struct weft__worker *w, struct weft__task *t,
                                                       struct weft__trace *tr)
{
    uint32_t kind = (t->flags & WEFT_TASK_SUBMITTED) ? WEFT_EV_TASK : WEFT_EV_JOIN;
    /* The slice of the task that called us keeps its label (weft_trace_label) while this one
     * gets its own. */
    uint32_t outer = tr->label;
    tr->label = 0;
    int64_t t0 = weft__now_ns();
    tr->depth++;
    t->run(w, t); /* may free t */
    tr->depth--;
    weft__trace_slice(tr, kind, t0, weft__now_ns() - t0, tr->label);
    tr->label = outer;
}

void weft__run_task(struct weft__worker *w, struct weft__task *t)
{
    struct weft__trace *tr = w->tr;
    if (__builtin_expect(tr == NULL, 1))
        t->run(w, t);
    else
        run_traced(w, t, tr);
}

/* Sleeps as weft__park_commit does, and records the sleep as a slice when tracing. */
static bool park(struct weft__worker *w, uint32_t key, int64_t deadline)
{
    WEFT_COUNT(w, parks, 1);
    if (w->tr == NULL)
        return weft__park_commit(&w->pool->park, w->index, key, deadline);
    int64_t t0 = weft__now_ns();
    bool chosen = weft__park_commit(&w->pool->park, w->index, key, deadline);
    weft__trace_add(w->tr, WEFT_EV_PARK, t0, weft__now_ns() - t0);
    return chosen;
}

void weft__run_as(weft_future *ctx, void (*fn)(void *), void *arg)
{
    struct weft__run_frame frame = {ctx, weft__current};
    weft__current = &frame;
    fn(arg);
    weft__current = frame.prev;
}

/* Idle and helping spells: the start is published so that readers can count a spell in
 * progress; the end adds it up. relaxed: statistics, written by this worker only. */
static inline void spell_begin(_Atomic int64_t *since)
{
    if (ld_relaxed(since) == 0)
        st_relaxed(since, weft__now_ns());
}

static inline void spell_end(_Atomic int64_t *since, _Atomic uint64_t *total)
{
    int64_t s = ld_relaxed(since);
    if (s != 0) {
        st_relaxed(total, ld_relaxed(total) + (uint64_t)(weft__now_ns() - s));
        st_relaxed(since, 0);
    }
}

void weft__life_begin(struct weft__worker *w)
{
    /* relaxed: statistics, written by w's holder only */
    st_relaxed(&w->st.born_ns, weft__now_ns());
    st_relaxed(&w->st.died_ns, 0);
}

void weft__life_end(struct weft__worker *w)
{
    /* relaxed: as above; a reader may see the two stores apart, for a moment (weft.h:
     * monotonic but not mutually consistent while the pool runs) */
    int64_t now = weft__now_ns();
    int64_t born = ld_relaxed(&w->st.born_ns);
    st_relaxed(&w->st.lived_ns, ld_relaxed(&w->st.lived_ns) + (now - born));
    st_relaxed(&w->st.died_ns, now);
}

/* --- waits on a worker --- */

struct weft__task *weft__claim(struct weft__worker *w, weft_future *f)
{
    if (!weft__future_is_task(f) || f->pool != w->pool)
        return NULL;
    /* relaxed: a hint; the CAS in weft__future_start decides */
    if ((ld_relaxed(&f->state) & WEFT_FS_STATE_MASK) != WEFT_PENDING)
        return NULL;
    /* As in decide, with taking up: a CANCEL shutdown that has begun cancels the task rather
     * than let it start (its sweep finds the queue entry, or this sees the bit). */
    st_seq_cst(&w->taking, 1); /* seq_cst: see acquire_task */
    /* The common case, a task that submitted f and now waits for it: f is at the bottom of this
     * worker's deque. Taken from there, it runs as the scheduler would run it, with the
     * queue's reference, and leaves no entry behind. */
    if (weft__deque_take_if(&w->deque, &f->task) == &f->task) {
        struct weft__task *t = decide(w, &f->task); /* drops taking */
        return t != WEFT_TASK_SKIP ? t : NULL;
    }
    bool started = !(ld_seq_cst(&w->pool->shutdown) & WEFT_SHUT_CANCEL) && weft__future_start(f);
    st_release(&w->taking, 0); /* release: as in decide */
    if (!started)
        return NULL;
    weft__uncount(f, false);
    weft_future_retain(f); /* the run's reference; the queue entry keeps its own */
    WEFT_COUNT(w, tasks_run, 1);
    return &f->task;
}

void weft__requeue(struct weft__worker *w, struct weft__task *t)
{
    weft_pool *pool = w->pool;
    if (t->run == NULL)
        weft__frame_fill(t); /* a private frame of weft_offer's, taken back out of order */
    if (t->flags & WEFT_TASK_SUBMITTED) {
        if (ld_seq_cst(&pool->shutdown) & WEFT_SHUT_CANCEL) {
            decide_cancelled(w, weft__container_of(t, weft_future, task)); /* drops taking */
            return;
        }
    }
    /* Past the closed bit: it was accepted. With taking up, a CANCEL shutdown's sweep finds it
     * there, or this saw the bit. */
    weft__inject_push(&pool->inject, w->inject_home, t, NULL, 0);
    st_release(&w->taking, 0); /* release: the push is visible to the sweep */
    weft__park_notify_one(&pool->park);
}

struct weft__task *weft__take_own_frame(struct weft__worker *w,
                                        bool (*mine)(const struct weft__task *t, const void *ctx),
                                        const void *ctx)
{
    WEFT_ASSERT(w == weft__self);
    for (;;) {
        st_seq_cst(&w->taking, 1); /* seq_cst: see acquire_task */
        struct weft__task *t = weft__deque_take(&w->deque);
        if (t == NULL || (!(t->flags & WEFT_TASK_SUBMITTED) && mine(t, ctx))) {
            st_release(&w->taking, 0); /* release: as in decide */
            return t;
        }
        /* A submission a running task left on the deque; or a frame of a thread that held
         * this worker while the caller was blocked, or one of the caller's outer frames that
         * came back through the injection queue: nothing here waits for it, so it goes where
         * any worker takes it. */
        weft__requeue(w, t);
    }
}

/* Blocks until ops->ready(ctx), the deadline, or a wake-up, having lent w if it could. */
static void block(struct weft__worker *w, const struct weft__help_ops *ops, void *ctx,
                  int64_t deadline)
{
    struct weft__thread *me = weft__thr;
    if (!ops->arm(ctx, me))
        return;                    /* ready already */
    bool lent = weft__lend(w, me); /* from here on, w and its trace ring are the holder's */
    for (;;) {
        uint32_t key = ld_acquire(&me->wake); /* acquire: pairs with weft__thread_wake */
        if (ops->ready(ctx) || (deadline >= 0 && weft__now_ns() >= deadline))
            break;
        weft__futex_wait(&me->wake, key, deadline);
    }
    if (lent)
        weft__lend_reclaim(w, me);
    ops->disarm(ctx, me);
}

/* Work and span: the waiting strand stops while other strands run on its stack (workspan.c). */
static inline int ws_resumed(struct weft__worker *w, struct weft__wsp *saved, int rc)
{
    if (__builtin_expect(w->ws != NULL, 0))
        weft__ws_resume(saved);
    return rc;
}

int weft__help(struct weft__worker *w, const struct weft__help_ops *ops, void *ctx,
               int64_t deadline)
{
    WEFT_ASSERT(w == weft__self);
    /* Other tasks may run on this stack from here on, or another thread hold w: the private
     * frames of the waiting task are made whole and shared first, so that they keep its
     * context, and a thief can take them while it waits. */
    if (weft__deque_has_private(&w->deque))
        weft__publish(w);
    struct weft__wsp saved; /* written and read only when w->ws is set */
    if (__builtin_expect(w->ws != NULL, 0))
        weft__ws_pause(&saved);
    for (;;) {
        struct spin spin = {0, 0, false};
        for (;;) {
            if (ops->ready(ctx)) {
                spell_end(&w->st.wait_since, &w->st.helping_ns);
                return ws_resumed(w, &saved, 0);
            }
            /* The deadline holds between tasks too: a wait overruns it by at most the task
             * that was running when it passed. */
            if (deadline >= 0 && weft__now_ns() >= deadline) {
                spell_end(&w->st.wait_since, &w->st.helping_ns);
                return ws_resumed(w, &saved, -ETIMEDOUT);
            }
            struct weft__task *t = ops->find != NULL ? ops->find(ctx, w) : NULL;
            if (t != NULL) {
                spell_end(&w->st.wait_since, &w->st.helping_ns);
                weft__run_task(w, t);
                spin = (struct spin){0, 0, false};
                continue;
            }
            spell_begin(&w->st.wait_since);
            /* A lender waits for this worker: blocking hands it over at once. */
            if (weft__lend_wanted(w) || !wait_spinning(&spin))
                break;
        }
        /* Nothing this wait depends on can run here: block, and let another thread hold the
         * worker meanwhile (its time is then that thread's: the spell ends here). arm() is
         * called only now, so that waits that end while spinning cost no registration. */
        spell_end(&w->st.wait_since, &w->st.helping_ns);
        block(w, ops, ctx, deadline);
    }
}

/* --- the worker thread --- */

void weft__worker_name(const weft_pool *pool, unsigned index, char name[16])
{
    char idx[12];
    int il = snprintf(idx, sizeof(idx), "-%u", index);
    size_t keep = strlen(pool->name);
    if (keep + (size_t)il > 15)
        keep = 15 - (size_t)il;
    memcpy(name, pool->name, keep);
    memcpy(name + keep, idx, (size_t)il + 1);
}

static void name_thread(struct weft__thread *me, struct weft__worker *w)
{
    char name[16];
    if (me->own) {
        weft__worker_name(me->pool, w->index, name);
    } else {
        /* a spare: "<prefix>-s<index it first stood for>", shortened like a worker's */
        char idx[13];
        int il = snprintf(idx, sizeof(idx), "-s%u", w->index);
        size_t keep = strlen(me->pool->name);
        if (keep + (size_t)il > 15)
            keep = 15 - (size_t)il;
        memcpy(name, me->pool->name, keep);
        memcpy(name + keep, idx, (size_t)il + 1);
    }
    pthread_setname_np(pthread_self(), name);
}

/* Why run_worker returned. */
enum { HANDED_BACK, LEFT, RETIRED };

/* The scheduling loop of the thread holding w, until the pool ends (LEFT), it hands w back
 * to a thread that lent it (HANDED_BACK: the caller then holds no worker), or it retires w
 * after a shrink (RETIRED: the stop hook has run, and the caller's thread ends). */
static int run_worker(struct weft__thread *me, struct weft__worker *w)
{
    weft_pool *pool = w->pool;
    weft__set_self(w);
    if (w->bound)
        pthread_setaffinity_np(pthread_self(), sizeof(w->cpus), &w->cpus);
    struct spin spin = {0, 0, false};
    int64_t idle_start = 0; /* the idle spell in progress began then (0: none) */
    int64_t came = 0;       /* within it, when a waker last woke this worker */
    /* A waker chose this worker for new work and it has not looked for work since: if it hands
     * the worker back first, the wake-up is passed on, since the thread taking it back goes on
     * with its task, not to the queues (found by the model checker, tests/model). */
    bool owed = false;
    for (;;) {
        /* A task boundary: nothing of this thread's is on its stack. */
        if (weft__lend_wanted(w) && weft__lend_hand_back(w, me)) {
            if (owed)
                weft__park_notify_one(&pool->park);
            spin_end(w, &spin);
            spell_end(&w->st.idle_since, &w->st.idle_ns);
            weft__set_self(NULL);
            return HANDED_BACK;
        }
        if (weft__retire_due(w)) {
            spell_end(&w->st.idle_since, &w->st.idle_ns);
            int r = weft__retire(w, me, owed); /* passes on a wake-up it owed, if it retires */
            if (r == WEFT_RETIRE_DONE) {
                weft__set_self(NULL);
                return RETIRED;
            }
            if (r == WEFT_RETIRE_REVIVED)
                owed = false;
        }
        struct weft__task *t = acquire_task(w);
        owed = false; /* it has looked */
        if (t != NULL) {
            spell_end(&w->st.idle_since, &w->st.idle_ns);
            spin_end(w, &spin);
            idle_spell_done(w, idle_start, came);
            idle_start = came = 0;
            if (t != WEFT_TASK_SKIP)
                weft__run_task(w, t);
            continue;
        }
        spell_begin(&w->st.idle_since);
        if (idle_start == 0)
            idle_start = weft__now_ns();
        if (keep_spinning(w, &spin))
            continue;
        spin_end(w, &spin);
        uint32_t key = weft__park_prepare(&pool->park, w->index);
        /* seq_cst: with inject_drained's seq_cst loads, no task accepted before the pool
         * closed can be missed (inject.c). A worker lent by a task still waiting stays, to be
         * handed back (the task is not finished, whatever the queues say). */
        if ((ld_seq_cst(&pool->shutdown) & WEFT_SHUT_EXIT) && weft__inject_drained(&pool->inject) &&
            !weft__work_visible(pool) && !weft__lend_pending(w)) {
            weft__park_cancel(&pool->park, w->index);
            break;
        }
        /* A lender asking for w back unparks it after raising want_back (lend.c); a shrink
         * unparks the workers it retires after lowering the target (resize.c) */
        if (weft__work_visible(pool) || weft__lend_wanted(w) || weft__retire_due(w)) {
            owed = weft__park_cancel(&pool->park, w->index);
            continue;
        }
        owed = park(w, key, -1);
        if (owed)
            came = weft__park_woken_at(&pool->park, w->index);
    }
    spell_end(&w->st.idle_since, &w->st.idle_ns);
    weft__life_end(w);
    /* Another worker may have parked after the exit bit was set, having seen a shard's count
     * still up while this one placed the last batch it popped (its exit test then failed, and
     * nothing was left to take): wake every worker, so that each tests again and leaves. */
    weft__park_notify_all(&pool->park);
    weft__set_self(NULL);
    return LEFT;
}

void *weft__thread_main(void *arg)
{
    struct weft__thread *me = arg;
    weft_pool *pool = me->pool;
    weft__thr = me;
    if (me->reserve && !weft__lend_enlist(me)) {
        weft__thr = NULL;
        return NULL; /* the pool closed before it was needed */
    }
    /* A worker's own thread, or a spare started by a lend, is granted at once. */
    struct weft__worker *w = weft__lend_await(me);
    if (w == NULL) {
        weft__thr = NULL;
        return NULL; /* a reserve spare the pool never needed */
    }
    me->first = w->index;
    if (me->own)
        weft__life_begin(w); /* a grow granted it its worker, which starts now */
    name_thread(me, w);
    /* The hooks run on every thread that runs tasks, before its first and after the pool's
     * last: a spare passes the index of the worker it first stood in for. */
    if (pool->on_worker_start != NULL) {
        weft__set_self(w); /* the hook may ask weft_worker_index() */
        pool->on_worker_start(pool, me->first, pool->hook_data);
    }
    for (;;) {
        if (!me->own || me->first != w->index)
            weft__lend_reserve(pool); /* a spare took the reserve's place: replace it */
        int why = run_worker(me, w);
        if (why == RETIRED) {
            /* The stop hook has run (weft__retire). Touch nothing of the pool after the flag:
             * a resize may join this thread and free its record at once. release: pairs with
             * the acquire in weft__lend_reap. */
            weft__thr = NULL;
            st_release(&me->dead, 1);
            return NULL;
        }
        if (why == LEFT) {
            /* Stop hooks run once every worker has left its loop, so each sees every task
             * finished. */
            uint32_t all = ld_relaxed(&pool->nthreads);        /* relaxed: ordered by the acquire
                                                                  in the exit test */
            uint32_t left = add_acq_rel(&pool->exited, 1) + 1; /* acq_rel: pairs with the
                                                                  waits below */
            if (left == all) {
                weft__lend_close(pool); /* idle spares leave */
                weft__futex_wake(&pool->exited, INT_MAX);
            }
            break;
        }
        w = weft__lend_await(me); /* an idle spare until granted a worker, or closing */
        if (w == NULL)
            break;
    }
    uint32_t all = ld_relaxed(&pool->nthreads); /* relaxed: as above */
    uint32_t left;
    /* acquire: pairs with the acq_rel increments */
    while ((left = ld_acquire(&pool->exited)) < all)
        weft__futex_wait(&pool->exited, left, -1);
    if (pool->on_worker_stop != NULL) {
        weft__set_self(weft__worker_at(pool, me->first)); /* as for the start hook */
        pool->on_worker_stop(pool, me->first, pool->hook_data);
    }
    weft__ws_thread_end(); /* work and span: this thread's pending joins, if it kept any */
    weft__set_self(NULL);
    weft__thr = NULL;
    return NULL;
}

/* --- public calls that depend on the running task --- */

bool weft_cancel_requested(void)
{
    /* relaxed: a request, read again if needed; nothing is published through it */
    return weft__current != NULL && weft__current->f != NULL &&
           (ld_relaxed(&weft__current->f->state) & WEFT_FS_CANCEL_REQ) != 0;
}

int weft_worker_index(void)
{
    struct weft__worker *w = weft__me();
    return w != NULL ? (int)w->index : -1;
}
