/* SPDX-License-Identifier: MIT */
/*
 * Submission: weft_submit. From outside the pool a task goes to the injection queue; from one of
 * the pool's workers, to that worker's own deque. Both check the pool's closed bit in a way
 * that a shutdown's sweep cannot miss (inject.c; pool.c, cancel_everything_queued).
 */
#include "worker.h"

#include "cache.h"

#include <errno.h>

int weft__task_new(weft_pool *pool, weft_fn fn, void *arg, uint32_t refs, bool outside,
                   weft_future **out)
{
    /* acquire: pairs with the release in weft_pool_shutdown; a fast refusal only, the checks
     * that decide are in weft__enqueue */
    if ((ld_acquire(&pool->shutdown) & WEFT_SHUT_CLOSED) || weft__pool_forked(pool))
        return -ESHUTDOWN;
    weft_future *f = weft__future_new(pool, fn, arg, refs);
    if (f == NULL)
        return -ENOMEM;
    f->task.run = weft__run_submitted;
    if (__builtin_expect(pool->ws != NULL, 0))
        weft__ws_submitted(pool, f); /* where it starts in the graph (workspan.c) */
    struct weft__page *page = pool->page;
    f->pid = page->pid;
    if (outside && weft__page_limited(page)) {
        /* The pool's own hold keeps the page while this takes its own. */
        if (!weft__room_take(page)) {
            weft__block_free(f);
            return -EAGAIN;
        }
        weft__page_get(page); /* the future's count holds the page, as its pointer does */
        f->counted_in = page;
    }
    *out = f;
    return 0;
}

void weft__task_discard(weft_future *f)
{
    if (f->counted_in != NULL) {
        weft__room_give(f->counted_in, true, true);
        /* relaxed: the pool's own hold keeps this from being the last */
        sub_relaxed(&f->counted_in->holds, 1);
    }
    weft__block_free(f);
}

int weft__enqueue(weft_pool *pool, weft_future *f, struct weft__worker *self, bool may_fail)
{
    bool inside = self != NULL && self->pool == pool;
    int rc = -ENOMEM;
    if (inside) {
        /* A shared push shares the private frames below it: ready them first. */
        if (weft__deque_has_private(&self->deque))
            weft__publish(self);
        /* The push is made with taking up, like a take, so that a CANCEL shutdown's sweep
         * cannot miss it (cancel_everything_queued). seq_cst store then seq_cst load: pairs
         * with the shutdown's seq_cst set of the bits then load of taking. */
        st_seq_cst(&self->taking, 1);
        if (ld_seq_cst(&pool->shutdown) & WEFT_SHUT_CLOSED)
            rc = -ESHUTDOWN;
        else
            rc = weft__deque_push(&self->deque, &f->task);
        st_release(&self->taking, 0); /* release: the push is visible to the sweep */
        if (rc == 0)
            WEFT_COUNT(self, submitted, 1);
    }
    if (rc == -ENOMEM && inside && may_fail)
        return rc;     /* the deque could not grow: the caller reports it */
    if (rc == -ENOMEM) /* from outside, or the deque could not grow for a caller that cannot
                          report it: the injection queue never needs memory */
        rc = weft__inject_push(&pool->inject, weft__inject_home(&pool->inject), &f->task,
                               &pool->shutdown, WEFT_SHUT_CLOSED);
    if (rc != 0)
        return rc;
    /* A lone worker has nobody to wake but itself (a stale size after a grow costs the new
     * workers this wake-up only: the pushing worker runs the task if nobody steals it). */
    if (!inside || weft_pool_size(pool) > 1)
        weft__park_notify_one(&pool->park);
    return 0;
}

int weft_pool_run(weft_pool *pool, weft_fn fn, void *arg, void **result)
{
    if (pool == NULL || fn == NULL)
        return -EINVAL;
    void *value = NULL;
    struct weft__worker *self = weft__me();
    int rc;
    if (self != NULL && self->pool == pool) {
        rc = fn(arg, &value); /* already inside: the caller's task is the one */
    } else {
        weft_future *f;
        rc = weft_submit(pool, fn, arg, &f);
        if (rc != 0)
            return rc;
        rc = weft_future_result(f, &value);
        weft_future_release(f);
    }
    if (rc == 0 && result != NULL)
        *result = value;
    return rc;
}

int weft_submit(weft_pool *pool, weft_fn fn, void *arg, weft_future **out)
{
    if (pool == NULL || fn == NULL)
        return -EINVAL;
    struct weft__worker *self = weft__me();
    bool outside = self == NULL || self->pool != pool;
    weft_future *f;
    int rc = weft__task_new(pool, fn, arg, out != NULL ? 2 : 1, outside, &f);
    if (rc != 0)
        return rc;
    rc = weft__enqueue(pool, f, self, true);
    if (rc != 0) {
        weft__task_discard(f);
        return rc;
    }
    if (out != NULL)
        *out = f;
    return 0;
}

int weft_submit_timed(weft_pool *pool, weft_fn fn, void *arg, int64_t timeout_ns, weft_future **out)
{
    if (pool == NULL || fn == NULL || !weft__timeout_ok(timeout_ns))
        return -EINVAL;
    int64_t deadline = weft__deadline(timeout_ns);
    int rc = weft_submit(pool, fn, arg, out);
    if (rc != -EAGAIN)
        return rc;
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    for (;;) {
        uint32_t seen = weft__room_watch(pool->page);
        rc = weft_submit(pool, fn, arg, out); /* again, announced: see page.c */
        if (rc != -EAGAIN) {
            weft__room_unwatch(pool->page);
            return rc;
        }
        if (weft__room_wait(pool->page, seen, deadline) == -ETIMEDOUT) {
            rc = weft_submit(pool, fn, arg, out); /* a last chance: room may have come late */
            return rc == -EAGAIN ? -ETIMEDOUT : rc;
        }
    }
}

int weft_pool_room_fd(weft_pool *pool)
{
    if (pool == NULL)
        return -EINVAL;
    return weft__room_fd(pool->page);
}
