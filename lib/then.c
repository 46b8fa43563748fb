/* SPDX-License-Identifier: MIT */
/*
 * Continuations: weft_future_then.
 *
 * A continuation is a task future `next` of its pool, made at once but queued only when `prev`
 * finishes, plus a block `cont` holding what the task needs: prev, the user's function and
 * argument, and a node on prev. next's function is cont_run, its argument cont.
 *
 *   - then() puts the node on prev. If prev has already finished, next is queued at once.
 *   - The node fires (on the thread that finished prev, outside prev's lock) and queues next,
 *     unless next was cancelled meanwhile or the pool has been shut down (next then ends
 *     CANCELLED). Firing only queues: a chain of a million continuations completes one link
 *     per task, and no stack grows with it.
 *   - next's references: the caller's (*out), and one that the node holds and hands to the
 *     queue when it queues next (or drops, when it does not).
 *   - cont lives as long as next: next's free hook releases prev and frees cont. So prev stays
 *     valid for the whole call of fn, and a cancelled continuation leaves nothing behind.
 *   - The pool may be destroyed while a continuation waits: cont holds the pool's page (which
 *     outlives the pool, page.c) and queues next only inside weft__launch_begin/end, which the
 *     pool's destruction waits for. A launch after it cancels next instead.
 *
 * Both blocks come from the block caches: no malloc per continuation once warm.
 */
#include "worker.h"

#include "cache.h"

#include <errno.h>

struct cont {
    struct weft__fnode node; /* on prev */
    weft_future *prev;       /* one reference, until next is freed */
    weft_future *next;
    weft_then_fn fn;
    void *arg;
    struct weft__page *page; /* next's pool's page, one hold until the launch is over */
};

_Static_assert(sizeof(struct cont) <= WEFT_BLOCK_SIZE, "struct cont outgrew WEFT_BLOCK_SIZE");

static int cont_run(void *arg, void **result)
{
    struct cont *c = arg;
    weft__ws_after_wait(c->prev); /* work and span: it starts after prev ended */
    return c->fn(c->prev, c->arg, result);
}

static void cont_free(weft_future *next);

/* A task future's cancel, and a free that also ends the continuation's block. */
static const struct weft__future_ops cont_ops = {weft__task_future_cancel, cont_free};

/* Freeing the last link of a chain frees the link before it, and so on: in a loop, since a
 * chain may be a million links long. */
static void cont_free(weft_future *next)
{
    for (;;) {
        struct cont *c = next->arg;
        weft_future *prev = c->prev;
        weft__block_free(c);
        weft__block_free(next);
        if (!weft__future_unref(prev))
            return;
        if (prev->ops != &cont_ops) {
            prev->ops->free(prev);
            return;
        }
        next = prev;
    }
}

/* Queues next, or cancels it when it cannot run: the node's reference goes to the queue, or
 * back. */
static void cont_launch(struct cont *c)
{
    weft_future *next = c->next;
    struct weft__page *page = c->page; /* read now: once queued, next (and c) may be freed */
    if (weft_future_state(next) == WEFT_PENDING && weft__launch_begin(page)) {
        /* The pool exists until weft__launch_end: its destruction waits for this. */
        int rc = weft__enqueue(next->pool, next, weft__me(), false);
        weft__launch_end(page);
        if (rc == 0) {
            weft__page_put(page, 1);
            return; /* the queue has the reference now */
        }
    }
    /* Cancelled by its owner already, or the pool was shut down or destroyed: it never runs. */
    if (weft__future_cancel_pending(next))
        weft__uncount(next, true);
    weft_future_release(next);
    weft__page_put(page, 1);
}

static void cont_fire(struct weft__fnode *n, weft_future *prev)
{
    (void)prev;
    cont_launch(weft__container_of(n, struct cont, node));
}

int weft_future_then(weft_future *prev, weft_pool *pool, weft_then_fn fn, void *arg,
                     weft_future **out)
{
    if (prev == NULL || pool == NULL || fn == NULL || out == NULL)
        return -EINVAL;
    /* acquire: pairs with the release in weft_pool_shutdown. A closed pool refuses before any
     * allocation, so that a shut-down pool answers -ESHUTDOWN, never -ENOMEM. */
    if ((ld_acquire(&pool->shutdown) & WEFT_SHUT_CLOSED) || weft__pool_forked(pool))
        return -ESHUTDOWN;
    struct weft__worker *self = weft__me();
    bool outside = self == NULL || self->pool != pool;
    struct cont *c = weft__block_alloc();
    if (c == NULL)
        return -ENOMEM;
    weft_future *next;
    int rc = weft__task_new(pool, cont_run, c, 2, outside, &next);
    if (rc != 0) {
        weft__block_free(c);
        return rc;
    }
    next->ops = &cont_ops; /* a task's future but for its free, which also ends cont */
    weft_future_retain(prev);
    c->prev = prev;
    c->next = next;
    c->fn = fn;
    c->arg = arg;
    c->page = pool->page;
    weft__page_get(c->page); /* the pool's own hold keeps the page while we take ours */
    c->node.fire = cont_fire;
    *out = next;
    if (!weft__future_add_node(prev, &c->node))
        cont_launch(c); /* prev had finished already */
    return 0;
}
