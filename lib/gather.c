/* SPDX-License-Identifier: MIT */
/*
 * gather: one future aggregating many.
 *
 * A gather is a weft_future that is never queued. It holds a reference to each child and puts
 * a node on each; the node holds a reference to the gather, so a gather the user released
 * lives until its last child has reported. Each child reports exactly once (node firing, or
 * inline at creation when it had already finished):
 *   - a DONE child stores its result in its slot;
 *   - without WEFT_RETURN_EXCEPTIONS, a FAILED or CANCELLED child finishes the gather FAILED
 *     with its code (and with WEFT_CANCEL_ON_ERROR cancels the siblings);
 *   - the child that brings `remaining` to zero finishes the gather DONE.
 * Finishing is claimed by the CAS PENDING -> RUNNING (weft__future_start), so only the claimant
 * writes the gather's code and result, and a concurrent cancel (CAS PENDING -> CANCELLED) either
 * wins before the claim or loses. The result slots are written before the acq_rel decrements of
 * `remaining`, whose release sequence ends in the finishing CAS, so whoever sees DONE sees them.
 *
 * Sweeps. Cancelling the children (WEFT_CANCEL_ON_ERROR, or a cancel of the gather) is one pass
 * over them, sweep(). Each cancellation it makes fires, on this thread and inside the pass, the
 * child's node of this gather, and any callback a user put on the child, which may cancel the
 * gather again. Were those to sweep too, each would start from child 0 one frame deeper: stack
 * depth n and O(n^2) work. So:
 *   - child_done sweeps only if it is the one that finished the gather FAILED. A child cancelled
 *     by a sweep finds the gather finished already; a child failing on another thread after the
 *     first leaves the cancelling to the first, whose pass covers every child.
 *   - A sweep of a gather that this thread is sweeping already, further up its stack, returns at
 *     once: the pass below goes on from where it is. `sweeping` is this thread's list of them.
 *     Another thread's sweep of the same gather is not such a sweep and makes its own pass, so
 *     that a cancel returns only once every child has been cancelled or asked to stop.
 *   - A pass that reached every child, and every nested gather in full, marks the gather
 *     `swept`: each child was then finished or asked to stop, for good, so a later sweep
 *     returns at once. This keeps a chain of failing nested gathers, each sweeping in turn on the
 *     way back, linear in the number of futures.
 * A nested gather is swept within its parent's pass, so sweeps cost stack as deep as the gathers
 * nest, and never as wide as they are.
 */
#include "future.h"

#include "alloc.h"

#include <errno.h>
#include <unistd.h>

struct gather_node {
    struct weft__fnode node;
    struct gather *g;
    size_t i;
};

struct gather {
    weft_future fut;
    size_t n;
    unsigned flags;
    _Atomic size_t remaining;
    _Atomic bool swept; /* a sweep reached every child (see above) */
    size_t failed;      /* the child that failed the gather; written by the claimant */
    weft_future **children;
    void **results;
    struct gather_node *nodes;
};

/* The sweeps running on this thread, innermost first; each frame lives in its sweep's call. */
struct sweep_frame {
    const struct gather *g;
    const struct sweep_frame *outer;
};

static WEFT_TLS const struct sweep_frame *sweeping;

/* Claims and finishes g: false if it had been claimed or cancelled already. A loser returns
 * only once g is final: the claimant is a few instructions from its final CAS, and whoever
 * finished a child that fails g must see g finished when it returns, as with any future. */
static bool finish_gather(struct gather *g, weft_state st, int code, size_t child)
{
    if (!weft__future_start(&g->fut)) { /* claim: see above */
        weft__future_settle(&g->fut);
        return false;
    }
    g->failed = child; /* the claimant's alone; published by the final CAS below */
    weft__future_finish(&g->fut, st, code, st == WEFT_DONE ? (void *)g->results : NULL);
    return true;
}

static bool sweep(struct gather *g, int32_t *pid);
static int gather_cancel(weft_future *f, int32_t *pid);
static void gather_free(weft_future *f);

static const struct weft__future_ops gather_ops = {gather_cancel, gather_free};

static struct gather *as_gather(weft_future *f)
{
    return weft__container_of(f, struct gather, fut);
}

/* Cancels child c if it has not finished; a gather is swept even then (a FAILED one may have
 * children still running). False when sweep() left part of it to a pass further up. */
static bool cancel_child(weft_future *c, int32_t *pid)
{
    if (c->ops != &gather_ops) {
        if (!weft_future_done(c))
            c->ops->cancel(c, pid);
        return true;
    }
    weft__future_cancel_pending(c); /* a gather being finished (claimed: RUNNING) is left be */
    return sweep(as_gather(c), pid);
}

/* One pass over g's children cancelling those not finished, nested gathers included (see the
 * top of the file). Returns true when every child was then finished or asked to stop; false
 * when some nested gather was being swept further up this thread's stack, which finishes it. */
static bool sweep(struct gather *g, int32_t *pid)
{
    /* The pid now, not at the first pending child: a system call between the requests to the
     * running children and the cancel of a pending one would give a worker freed by a request
     * more time to start that one first. */
    if (*pid == 0)
        *pid = (int32_t)getpid();
    /* acquire: pairs with the release store below; the cancellations of the pass that set it
     * happen before this returns, as this sweep's caller is promised */
    if (ld_acquire(&g->swept))
        return true;
    for (const struct sweep_frame *s = sweeping; s != NULL; s = s->outer) {
        if (s->g == g)
            return false; /* fired by that pass's own cancellations: it goes on */
    }
    struct sweep_frame me = {g, sweeping};
    sweeping = &me;
    bool complete = true;
    for (size_t i = 0; i < g->n; i++) {
        if (!cancel_child(g->children[i], pid))
            complete = false;
    }
    sweeping = me.outer;
    if (complete)
        st_release(&g->swept, true); /* release: pairs with the acquire load above */
    return complete;
}

static void child_done(struct gather *g, size_t i)
{
    weft_future *c = g->children[i];
    /* acquire: pairs with the child's release CAS in finish; its result is then visible */
    weft_state cs = (weft_state)(ld_acquire(&c->state) & WEFT_FS_STATE_MASK);
    if (cs == WEFT_DONE) {
        g->results[i] = c->result;
    } else if (!(g->flags & WEFT_RETURN_EXCEPTIONS)) {
        /* Only the child that fails the gather sweeps it (see the top of the file). */
        if (finish_gather(g, WEFT_FAILED, cs == WEFT_FAILED ? c->code : -ECANCELED, i) &&
            (g->flags & WEFT_CANCEL_ON_ERROR))
            sweep(g, &(int32_t){0});
    }
    /* acq_rel: the release publishes results[i]; the acquire in the last decrement makes every
     * slot visible to the thread that finishes the gather. */
    if (sub_acq_rel(&g->remaining, 1) == 1)
        finish_gather(g, WEFT_DONE, 0, SIZE_MAX);
}

static void node_fire(struct weft__fnode *n, weft_future *f)
{
    (void)f;
    struct gather_node *gn = weft__container_of(n, struct gather_node, node);
    struct gather *g = gn->g;
    child_done(g, gn->i);
    weft_future_release(&g->fut); /* the node's reference */
}

int weft_gather(weft_future *const fs[], size_t n, unsigned flags, weft_future **out)
{
    if (out == NULL || (n > 0 && fs == NULL) ||
        (flags & ~(WEFT_RETURN_EXCEPTIONS | WEFT_CANCEL_ON_ERROR)) != 0)
        return -EINVAL;
    if (weft__any_null(fs, n))
        return -EINVAL;
    size_t per = sizeof(weft_future *) + sizeof(void *) + sizeof(struct gather_node);
    if (n > (SIZE_MAX - sizeof(struct gather)) / per)
        return -ENOMEM;
    struct gather *g = weft__malloc(sizeof(*g) + n * per);
    if (g == NULL)
        return -ENOMEM;
    weft_future *f = &g->fut;
    /* the caller's, one for the duration of this call, one per child node */
    weft__future_init(f, &gather_ops, NULL, NULL, NULL, (uint32_t)(2 + n));
    g->n = n;
    g->flags = flags;
    atomic_init(&g->remaining, n);
    atomic_init(&g->swept, false);
    g->failed = SIZE_MAX;
    g->nodes = (struct gather_node *)(g + 1);
    g->children = (weft_future **)(g->nodes + n);
    g->results = (void **)(g->children + n);
    for (size_t i = 0; i < n; i++) {
        g->children[i] = fs[i];
        weft_future_retain(fs[i]);
        g->results[i] = NULL;
        g->nodes[i].g = g;
        g->nodes[i].i = i;
        g->nodes[i].node.fire = node_fire;
    }
    /* All slots are ready before any node can fire. */
    for (size_t i = 0; i < n; i++) {
        if (!weft__future_add_node(fs[i], &g->nodes[i].node)) {
            child_done(g, i);
            weft_future_release(f); /* that node's reference */
        }
    }
    if (n == 0)
        finish_gather(g, WEFT_DONE, 0, SIZE_MAX);
    *out = f;
    weft_future_release(f); /* this call's reference; the caller's remains */
    return 0;
}

/* Called again from a callback fired by this thread's own sweep of f (a user's on_done on a
 * child that cancels the gather), it returns before that sweep has reached every child. */
static int gather_cancel(weft_future *f, int32_t *pid)
{
    /* A gather being finished by its last child (claimed: RUNNING) counts as finished. */
    int won = weft__future_cancel_pending(f) ? 1 : 0;
    sweep(as_gather(f), pid);
    return won;
}

static void gather_free(weft_future *f)
{
    struct gather *g = as_gather(f);
    for (size_t i = 0; i < g->n; i++)
        weft_future_release(g->children[i]);
    weft__free(g);
}

int weft_gather_child(const weft_future *f, size_t i, void **result)
{
    if (f == NULL || f->ops != &gather_ops)
        return -EINVAL;
    const struct gather *g = as_gather((weft_future *)f);
    if (i >= g->n)
        return -EINVAL;
    return weft__future_outcome(g->children[i], result);
}

int weft_gather_failed_child(const weft_future *f, size_t *index)
{
    if (f == NULL || f->ops != &gather_ops || index == NULL)
        return -EINVAL;
    const struct gather *g = as_gather((weft_future *)f);
    /* acquire: pairs with the final CAS that published `failed` */
    switch ((weft_state)(ld_acquire(&((weft_future *)f)->state) & WEFT_FS_STATE_MASK)) {
    case WEFT_FAILED:
        *index = g->failed;
        return 0;
    case WEFT_DONE:
    case WEFT_CANCELLED:
        return -ENOENT;
    default:
        return -EAGAIN;
    }
}
