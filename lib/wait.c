/*
 * weft_wait: done and pending sets over many futures.
 *
 * A waiter keeps two atomic counters, `done` and `failed`, and puts a node on every future that
 * had not finished on entry. Each node, when its future finishes, bumps the counters and, if the
 * condition now holds, wakes the waiter: a condition variable for a thread outside any pool, or
 * an unpark for a worker that helps meanwhile. The waiter checks the condition under the
 * mutex before each cond_wait and the node signals under it, so no wake-up is lost.
 *
 * Before returning, the waiter takes every node back (weft__future_remove_node waits for a node
 * that is firing), so nothing refers to its stack afterwards. The result is a fresh snapshot of
 * the states, partitioned stably into out[] from the entries (a copy of fs), so out may be fs.
 */
#include "pool.h"

#include "alloc.h"
#include "platform.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#define WAIT_STACK_ENTRIES 64

struct waiter;

struct wait_entry {
    struct weft__fnode node; /* first */
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
    struct weft__worker *w; /* helping worker, or NULL: sleep on cv */
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
    struct wait_entry *e = (struct wait_entry *)n;
    struct waiter *wt = e->wt;
    count(wt, f);
    if (holds(wt)) {
        if (wt->w != NULL) {
            weft__unpark_worker(wt->w);
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

static bool wt_arm(void *ctx, struct weft__worker *w)
{
    (void)w; /* the nodes are armed for the whole call and already unpark wt->w */
    return !holds(ctx);
}

static void wt_disarm(void *ctx, struct weft__worker *w)
{
    (void)ctx;
    (void)w;
}

static const struct weft__help_ops wait_ops = {wt_ready, wt_arm, wt_disarm};

static void sleep_until(struct waiter *wt, int64_t deadline)
{
    struct timespec ts;
    if (deadline >= 0) {
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
    }
    pthread_mutex_lock(&wt->mu);
    while (!holds(wt)) {
        if (deadline < 0)
            pthread_cond_wait(&wt->cv, &wt->mu);
        else if (pthread_cond_timedwait(&wt->cv, &wt->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&wt->mu);
}

int weft_wait(weft_future *const fs[], size_t n, weft_return_when when, int64_t timeout_ns,
              weft_future *out[], size_t *ndone)
{
    if (n == 0 || fs == NULL || out == NULL || ndone == NULL ||
        (when != WEFT_FIRST_COMPLETED && when != WEFT_FIRST_EXCEPTION &&
         when != WEFT_ALL_COMPLETED) ||
        (timeout_ns < 0 && timeout_ns != WEFT_FOREVER))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (fs[i] == NULL)
            return -EINVAL;
    }
    struct wait_entry stack_entries[WAIT_STACK_ENTRIES];
    struct wait_entry *e = stack_entries;
    if (n > WAIT_STACK_ENTRIES) {
        e = weft__malloc(n * sizeof(*e));
        if (e == NULL)
            return -ENOMEM;
    }
    int64_t deadline = weft__deadline(timeout_ns);
    struct waiter wt = {.n = n, .when = when, .w = weft__me()};
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

    if (!holds(&wt) && timeout_ns != 0) {
        if (wt.w == NULL) {
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            pthread_cond_init(&wt.cv, &ca);
            pthread_condattr_destroy(&ca);
            pthread_mutex_init(&wt.mu, NULL);
        }
        for (size_t i = 0; i < n && !holds(&wt); i++) {
            if (e[i].counted)
                continue;
            if (weft__future_add_node(e[i].f, &e[i].node))
                e[i].armed = true;
            else
                count(&wt, e[i].f); /* finished since the entry scan */
        }
        if (wt.w != NULL)
            weft__help(wt.w, &wait_ops, &wt, deadline);
        else
            sleep_until(&wt, deadline);
        for (size_t i = 0; i < n; i++) {
            if (e[i].armed)
                weft__future_remove_node(e[i].f, &e[i].node);
        }
        if (wt.w == NULL) {
            pthread_cond_destroy(&wt.cv);
            pthread_mutex_destroy(&wt.mu);
        }
    }

    /* The snapshot: "done" per entry, read again until a pass changes nothing, so that copies
     * of one future listed twice agree (a future finishing between two readings would otherwise
     * land in both parts). Each pass that changes something has a newly finished future, so
     * this ends. */
    for (size_t i = 0; i < n; i++)
        e[i].counted = weft_future_done(e[i].f); /* now: "done in the snapshot" */
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            if (!e[i].counted && weft_future_done(e[i].f))
                e[i].counted = changed = true;
        }
    }
    /* Stable partition from the copy in e[], so that out may alias fs. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].counted)
            out[k++] = e[i].f;
    }
    *ndone = k;
    for (size_t i = 0; i < n; i++) {
        if (!e[i].counted)
            out[k++] = e[i].f;
    }
    if (e != stack_entries)
        weft__free(e);
    return 0;
}
