/* SPDX-License-Identifier: MIT */
/*
 * Waiting on futures: weft_future_wait and weft_future_result on one, weft_wait on many.
 *
 * On one future: a thread outside the pool sleeps on the future's state word (future.c); a
 * worker runs the awaited task itself if it has not started, else blocks with a node on the
 * future that wakes it, lending its worker meanwhile (worker.c, weft__help).
 *
 * weft_wait: done and pending sets over many futures.
 *
 * A waiter keeps two atomic counters, `done` and `failed`, and puts a node on every future that
 * had not finished on entry. Each node, when its future finishes, bumps the counters and, if the
 * condition now holds, wakes the waiter: a condition variable for a thread outside any pool, or
 * a wake-up of the worker thread's own word (weft__help). The waiter checks the condition under the
 * mutex before each cond_wait and the node signals under it, so no wake-up is lost.
 *
 * Before returning, the waiter takes every node back (weft__future_remove_node waits for a node
 * that is firing), so nothing refers to its stack afterwards. The result is a fresh snapshot of
 * the states, partitioned stably into out[] from the entries (a copy of fs), so out may be fs.
 */
#include "worker.h"

#include "alloc.h"
#include "platform.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

/* --- one future --- */

/* Waiting on one future: a node on it wakes the waiting thread. */
struct one_wait {
    struct weft__fnode node;
    weft_future *f;
    struct weft__thread *t;
};

static void one_fire(struct weft__fnode *n, weft_future *f)
{
    (void)f;
    struct one_wait *o = weft__container_of(n, struct one_wait, node);
    weft__thread_wake(o->t);
    weft__fnode_fired(n); /* last touch */
}

static bool finished(weft_future *f)
{
    return weft__state_final(ld_acquire(&f->state)); /* pairs with the release in finish */
}

static bool one_ready(void *ctx)
{
    return finished(((struct one_wait *)ctx)->f);
}

/* The awaited task itself, if it has not started: running it here is what the wait is for. */
static struct weft__task *one_find(void *ctx, struct weft__worker *w)
{
    return weft__claim(w, ((struct one_wait *)ctx)->f);
}

static bool one_arm(void *ctx, struct weft__thread *t)
{
    struct one_wait *o = ctx;
    o->t = t;
    o->node.fire = one_fire;
    return weft__future_add_node(o->f, &o->node);
}

static void one_disarm(void *ctx, struct weft__thread *t)
{
    (void)t;
    struct one_wait *o = ctx;
    weft__future_remove_node(o->f, &o->node);
}

static const struct weft__help_ops one_ops = {one_ready, one_find, one_arm, one_disarm};

static bool waits_on_itself(weft_future *f)
{
    if (weft__current == NULL || f == NULL)
        return false;
    if (weft__current->f == f)
        return true;
    /* A task further out on this thread's stack cannot finish before the inner ones return. */
    if ((ld_relaxed(&f->state) & WEFT_FS_STATE_MASK) != WEFT_RUNNING)
        return false;
    for (struct weft__run_frame *r = weft__current->prev; r != NULL; r = r->prev) {
        if (r->f == f)
            return true;
    }
    return false;
}

static inline __attribute__((always_inline)) int wait_deadline(weft_future *f, int64_t deadline)
{
    struct weft__worker *w = weft__me(); /* first: in a fork() child it forgets the tasks */
    if (waits_on_itself(f))
        return -EDEADLK;
    if (finished(f))
        return 0;
    if (w != NULL) {
        struct one_wait o = {.f = f};
        return weft__help(w, &one_ops, &o, deadline);
    }
    return weft__future_block(f, deadline);
}

int weft_future_wait(weft_future *f, int64_t timeout_ns)
{
    if (f == NULL || !weft__timeout_ok(timeout_ns))
        return -EINVAL;
    if (timeout_ns == 0) {
        (void)weft__me(); /* in a fork() child it forgets the tasks */
        if (waits_on_itself(f))
            return -EDEADLK;
        if (!finished(f))
            return -ETIMEDOUT;
        weft__ws_after_wait(f);
        return 0;
    }
    int r = wait_deadline(f, weft__deadline(timeout_ns));
    if (r == 0)
        weft__ws_after_wait(f); /* work and span: the waiter goes on after f's end */
    return r;
}

int weft_future_result(weft_future *f, void **result)
{
    if (f == NULL)
        return -EINVAL;
    int r = wait_deadline(f, -1);
    if (r != 0)
        return r;
    weft__ws_after_wait(f); /* work and span: the waiter goes on after f's end */
    return weft__future_outcome(f, result);
}

/* --- weft_wait --- */

#define WAIT_STACK_ENTRIES 64

struct waiter;

struct wait_entry {
    struct weft__fnode node;
    struct waiter *wt;
    weft_future *f;
    bool counted; /* finished before a node could be put on it */
    bool armed;   /* a node is on it */
};

struct waiter {
    _Atomic size_t done;
    _Atomic size_t failed;
    size_t n;
    weft_return_when when;
    struct weft__worker *w; /* the caller's worker, or NULL: sleep on cv */
    struct weft__thread *t; /* with w: the thread to wake */
    struct wait_entry *e;
    size_t next; /* with w: the entry find() looks at next */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static bool holds(struct waiter *wt)
{
    /* acquire: pairs with the release increments in entry_fire */
    size_t d = ld_acquire(&wt->done);
    switch (wt->when) {
    case WEFT_FIRST_COMPLETED:
        return d > 0;
    case WEFT_FIRST_EXCEPTION:
        return d == wt->n || ld_acquire(&wt->failed) > 0;
    default:
        return d == wt->n;
    }
}

static void count(struct waiter *wt, weft_future *f)
{
    /* acquire: pairs with the future's release CAS in finish */
    if ((ld_acquire(&f->state) & WEFT_FS_STATE_MASK) == WEFT_FAILED)
        add_release(&wt->failed, 1); /* release: pairs with the acquire in holds */
    add_release(&wt->done, 1);       /* release: pairs with the acquire in holds */
}

static void entry_fire(struct weft__fnode *n, weft_future *f)
{
    struct wait_entry *e = weft__container_of(n, struct wait_entry, node);
    struct waiter *wt = e->wt;
    count(wt, f);
    if (holds(wt)) {
        if (wt->w != NULL) {
            weft__thread_wake(wt->t);
        } else {
            pthread_mutex_lock(&wt->mu);
            pthread_cond_signal(&wt->cv);
            pthread_mutex_unlock(&wt->mu);
        }
    }
    weft__fnode_fired(n); /* last touch */
}

static bool wt_ready(void *ctx)
{
    return holds(ctx);
}

/* An awaited task that has not started, run here: each entry is tried once per call. */
static struct weft__task *wt_find(void *ctx, struct weft__worker *w)
{
    struct waiter *wt = ctx;
    while (wt->next < wt->n) {
        struct wait_entry *e = &wt->e[wt->next++];
        struct weft__task *t = e->counted ? NULL : weft__claim(w, e->f);
        if (t != NULL)
            return t;
    }
    return NULL;
}

static bool wt_arm(void *ctx, struct weft__thread *t)
{
    (void)t; /* the nodes are armed for the whole call and already wake wt->t */
    return !holds(ctx);
}

static void wt_disarm(void *ctx, struct weft__thread *t)
{
    (void)ctx;
    (void)t;
}

static const struct weft__help_ops wait_ops = {wt_ready, wt_find, wt_arm, wt_disarm};

static void sleep_until(struct waiter *wt, int64_t deadline)
{
    struct timespec ts = weft__timespec(deadline >= 0 ? deadline : 0);
    pthread_mutex_lock(&wt->mu);
    while (!holds(wt)) {
        if (deadline < 0)
            pthread_cond_wait(&wt->cv, &wt->mu);
        else if (pthread_cond_timedwait(&wt->cv, &wt->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&wt->mu);
}

/* Puts a node on every entry that had not finished on entry, until the condition holds. */
static void arm_entries(struct waiter *wt, struct wait_entry *e)
{
    for (size_t i = 0; i < wt->n && !holds(wt); i++) {
        if (e[i].counted)
            continue;
        if (weft__future_add_node(e[i].f, &e[i].node))
            e[i].armed = true;
        else
            count(wt, e[i].f); /* finished since the entry scan */
    }
}

/* Takes every node back; weft__future_remove_node waits for one that is firing, so nothing
 * refers to this call's stack afterwards. */
static void disarm_entries(struct waiter *wt, struct wait_entry *e)
{
    for (size_t i = 0; i < wt->n; i++) {
        if (e[i].armed)
            weft__future_remove_node(e[i].f, &e[i].node);
    }
}

/* Sleeps or helps until the condition holds or the deadline passes. */
static void wait_for(struct waiter *wt, struct wait_entry *e, int64_t deadline)
{
    if (wt->w == NULL) {
        weft__cond_init_monotonic(&wt->cv);
        pthread_mutex_init(&wt->mu, NULL);
    }
    arm_entries(wt, e);
    if (wt->w != NULL)
        weft__help(wt->w, &wait_ops, wt, deadline);
    else
        sleep_until(wt, deadline);
    disarm_entries(wt, e);
    if (wt->w == NULL) {
        pthread_cond_destroy(&wt->cv);
        pthread_mutex_destroy(&wt->mu);
    }
}

/* The snapshot: "done" per entry, read again until a pass changes nothing, so that copies of one
 * future listed twice agree (a future finishing between two readings would otherwise land in
 * both parts). Each pass that changes something has a newly finished future, so this ends. */
static void snapshot(struct wait_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        e[i].counted = weft_future_done(e[i].f); /* now: "done in the snapshot" */
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            if (!e[i].counted && weft_future_done(e[i].f))
                e[i].counted = changed = true;
        }
    }
}

/* Stable partition from the copy in e[], so that out may alias fs. Returns the done count. */
static size_t partition(const struct wait_entry *e, size_t n, weft_future *out[])
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].counted)
            out[k++] = e[i].f;
    }
    size_t done = k;
    for (size_t i = 0; i < n; i++) {
        if (!e[i].counted)
            out[k++] = e[i].f;
    }
    return done;
}

int weft_wait(weft_future *const fs[], size_t n, weft_return_when when, int64_t timeout_ns,
              weft_future *out[], size_t *ndone)
{
    if (n == 0 || fs == NULL || out == NULL || ndone == NULL ||
        (when != WEFT_FIRST_COMPLETED && when != WEFT_FIRST_EXCEPTION &&
         when != WEFT_ALL_COMPLETED) ||
        !weft__timeout_ok(timeout_ns) || weft__any_null(fs, n))
        return -EINVAL;
    struct wait_entry stack_entries[WAIT_STACK_ENTRIES];
    struct wait_entry *e = stack_entries;
    if (n > WAIT_STACK_ENTRIES) {
        e = weft__malloc(n * sizeof(*e));
        if (e == NULL)
            return -ENOMEM;
    }
    int64_t deadline = weft__deadline(timeout_ns);
    struct waiter wt = {.n = n, .when = when, .w = weft__me(), .t = weft__thr, .e = e};
    atomic_init(&wt.done, 0);
    atomic_init(&wt.failed, 0);
    for (size_t i = 0; i < n; i++) {
        e[i].f = fs[i];
        e[i].wt = &wt;
        e[i].armed = false;
        e[i].counted = weft_future_done(fs[i]);
        e[i].node.fire = entry_fire;
        if (e[i].counted)
            count(&wt, fs[i]);
    }
    if (!holds(&wt) && timeout_ns != 0)
        wait_for(&wt, e, deadline);
    snapshot(e, n);
    *ndone = partition(e, n, out);
    for (size_t i = 0; i < *ndone; i++)
        weft__ws_after_wait(out[i]); /* work and span: it goes on after those it saw done */
    if (e != stack_entries)
        weft__free(e);
    return 0;
}
