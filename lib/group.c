/* SPDX-License-Identifier: MIT */
/*
 * Task groups: a counted set of submitted tasks with one wait and one cancel.
 *
 * A group keeps, under its mutex, the list of its members, oldest first: one per task that has
 * not finished, holding a reference to the task's future and a node on it. The node's firing
 * (on the thread that finished the task) takes the member off the list and frees it. So the
 * group knows its unfinished tasks even when the user keeps no future.
 *
 * Waiting is waiting on the oldest member's future, again and again, until the list is empty:
 * weft_future_wait does the helping on workers, the timeouts and the -EDEADLK for a task of the
 * group that would wait for itself. Each member is waited for at most once, so a wait costs
 * O(members). Cancelling takes a snapshot of the members' futures (with a reference each), then
 * cancels them outside the mutex, since a cancel fires the member's node, which takes the
 * mutex.
 */
#include "worker.h"

#include "alloc.h"
#include "cache.h"
#include "platform.h"

#include <errno.h>
#include <pthread.h>

struct member {
    struct weft__fnode node;
    struct weft__list link; /* on the group's list, under its mutex */
    weft_future *f;         /* one reference */
    weft_group *g;
};

_Static_assert(sizeof(struct member) <= WEFT_BLOCK_SIZE, "struct member outgrew a block");

struct weft_group {
    weft_pool *pool;
    pthread_mutex_t mu;
    struct weft__list members; /* oldest first */
    size_t pending;            /* members on the list; under mu */
};

int weft_group_create(weft_pool *pool, weft_group **out)
{
    if (pool == NULL || out == NULL)
        return -EINVAL;
    weft_group *g = weft__mem_alloc(&pool->mem, 0, sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    g->pool = pool;
    pthread_mutex_init(&g->mu, NULL);
    weft__list_init(&g->members);
    g->pending = 0;
    *out = g;
    return 0;
}

static void leave(struct member *m)
{
    weft_group *g = m->g;
    pthread_mutex_lock(&g->mu);
    weft__list_remove(&m->link);
    g->pending--;
    pthread_mutex_unlock(&g->mu);
    weft_future_release(m->f);
    weft__block_free(m);
}

static void member_fire(struct weft__fnode *n, weft_future *f)
{
    (void)f;
    leave(weft__container_of(n, struct member, node));
}

int weft_group_submit(weft_group *g, weft_fn fn, void *arg, weft_future **out)
{
    if (g == NULL || fn == NULL)
        return -EINVAL;
    struct member *m = weft__block_alloc();
    if (m == NULL)
        return -ENOMEM;
    /* The member is on the list before its task can run: a task of the group that waits for
     * the group must find itself there (-EDEADLK), not an empty group that lets it free g. So
     * the steps of weft_submit are taken one by one: make the future, list it, queue it. */
    struct weft__worker *self = weft__me();
    bool outside = self == NULL || self->pool != g->pool;
    weft_future *f;
    /* references: the queue's, the member's, and the caller's when out is given */
    int rc = weft__task_new(g->pool, fn, arg, out != NULL ? 3 : 2, outside, &f);
    if (rc != 0) {
        weft__block_free(m);
        return rc;
    }
    m->f = f;
    m->g = g;
    m->node.fire = member_fire;
    pthread_mutex_lock(&g->mu);
    weft__list_push_tail(&g->members, &m->link);
    g->pending++;
    pthread_mutex_unlock(&g->mu);
    /* From here on, weft_group_cancel may cancel f at any time, firing the member's node. */
    if (!weft__future_add_node(f, &m->node)) {
        /* Cancelled before it was queued: it will never run. The member leaves as its node
         * would have made it; the queue's reference goes with it. */
        leave(m);
        weft_future_release(f);
        if (out != NULL)
            *out = f;
        return 0;
    }
    rc = weft__enqueue(g->pool, f, self, true);
    if (rc != 0) {
        /* Not queued: end it CANCELLED (unless a weft_group_cancel did), which fires the node
         * and takes the member off the list; then drop every reference but the member's. */
        weft_future_cancel(f);
        weft_future_release(f); /* the queue's */
        if (out != NULL)
            weft_future_release(f); /* the caller's, never handed out */
        return rc;
    }
    if (out != NULL)
        *out = f;
    return 0;
}

size_t weft_group_pending(const weft_group *cg)
{
    if (cg == NULL)
        return 0;
    weft_group *g = (weft_group *)cg;
    pthread_mutex_lock(&g->mu);
    size_t n = g->pending;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* The oldest member whose task has not finished, with a reference for the caller; NULL when
 * there is none, and then *empty says whether the list is empty too (members whose task has
 * finished leave it as soon as their node has fired). */
static weft_future *first_unfinished(weft_group *g, bool *empty)
{
    weft_future *f = NULL;
    pthread_mutex_lock(&g->mu);
    *empty = weft__list_empty(&g->members);
    for (struct weft__list *l = g->members.next; l != &g->members; l = l->next) {
        weft_future *c = weft__container_of(l, struct member, link)->f;
        if (!weft_future_done(c)) {
            f = c;
            weft_future_retain(f);
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return f;
}

static int wait_until(weft_group *g, int64_t deadline)
{
    unsigned round = 0;
    for (;;) {
        bool empty;
        weft_future *f = first_unfinished(g, &empty);
        if (f == NULL) {
            if (empty)
                return 0;
            /* Every task has finished; their nodes are a few instructions from taking them
             * off the list. Spin briefly, then sleep: the firing threads may have a lower
             * priority than this one. */
            if (deadline >= 0 && weft__now_ns() >= deadline)
                return -ETIMEDOUT;
            weft__backoff(&round);
            continue;
        }
        int64_t left = -1;
        if (deadline >= 0) {
            left = deadline - weft__now_ns();
            if (left < 0)
                left = 0;
        }
        int rc = weft_future_wait(f, left);
        weft_future_release(f);
        if (rc != 0)
            return rc; /* -ETIMEDOUT, or -EDEADLK: a task of the group waits for itself */
    }
}

int weft_group_wait(weft_group *g, int64_t timeout_ns)
{
    if (g == NULL || !weft__timeout_ok(timeout_ns))
        return -EINVAL;
    return wait_until(g, weft__deadline(timeout_ns));
}

int weft_group_cancel(weft_group *g)
{
    if (g == NULL)
        return -EINVAL;
    pthread_mutex_lock(&g->mu);
    size_t n = g->pending;
    weft_future **fs = n > 0 ? weft__mem_alloc(&g->pool->mem, 0, n * sizeof(*fs)) : NULL;
    if (n > 0 && fs == NULL) {
        pthread_mutex_unlock(&g->mu);
        return -ENOMEM;
    }
    size_t k = 0;
    for (struct weft__list *l = g->members.next; l != &g->members; l = l->next) {
        fs[k] = weft__container_of(l, struct member, link)->f;
        weft_future_retain(fs[k++]);
    }
    pthread_mutex_unlock(&g->mu);
    int cancelled = 0;
    for (size_t i = 0; i < k; i++) {
        if (weft_future_cancel(fs[i]) == 1)
            cancelled++;
        weft_future_release(fs[i]);
    }
    weft__mem_free(&g->pool->mem, fs);
    return cancelled;
}

int weft_group_destroy(weft_group *g)
{
    if (g == NULL)
        return 0;
    int rc = wait_until(g, -1);
    if (rc != 0)
        return rc;
    /* Every member has left, but the last firing may still be inside the mutex. */
    pthread_mutex_lock(&g->mu);
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_destroy(&g->mu);
    weft__mem_free(&g->pool->mem, g);
    return 0;
}
