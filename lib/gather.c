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
 */
#include "future.h"

#include "alloc.h"

#include <errno.h>

struct gather_node {
    struct weft__fnode node; /* first */
    struct gather *g;
    size_t i;
};

struct gather {
    weft_future fut; /* first */
    size_t n;
    unsigned flags;
    _Atomic size_t remaining;
    weft_future **children;
    void **results;
    struct gather_node *nodes;
};

static void finish_gather(struct gather *g, weft_state st, int code)
{
    if (weft__future_start(&g->fut)) /* claim: see above */
        weft__future_finish(&g->fut, st, code, st == WEFT_DONE ? (void *)g->results : NULL);
}

static void cancel_children(struct gather *g)
{
    for (size_t i = 0; i < g->n; i++) {
        weft_future *c = g->children[i];
        if (c->task.kind == WEFT_TASK_GATHER)
            weft__gather_cancel(c); /* recurse even into a finished (failed) gather */
        else if (!weft_future_done(c))
            weft_future_cancel(c);
    }
}

static void child_done(struct gather *g, size_t i)
{
    weft_future *c = g->children[i];
    /* acquire: pairs with the child's release CAS in finish; its result is then visible */
    weft_state cs = (weft_state)(ld_acquire(&c->state) & WEFT_FS_STATE_MASK);
    if (cs == WEFT_DONE) {
        g->results[i] = c->result;
    } else if (!(g->flags & WEFT_RETURN_EXCEPTIONS)) {
        finish_gather(g, WEFT_FAILED, cs == WEFT_FAILED ? c->code : -ECANCELED);
        if (g->flags & WEFT_CANCEL_ON_ERROR)
            cancel_children(g);
    }
    /* acq_rel: the release publishes results[i]; the acquire in the last decrement makes every
     * slot visible to the thread that finishes the gather. */
    if (sub_acq_rel(&g->remaining, 1) == 1)
        finish_gather(g, WEFT_DONE, 0);
}

static void node_fire(struct weft__fnode *n, weft_future *f)
{
    (void)f;
    struct gather_node *gn = (struct gather_node *)n;
    struct gather *g = gn->g;
    child_done(g, gn->i);
    weft_future_release(&g->fut); /* the node's reference */
}

int weft_gather(weft_future *const fs[], size_t n, unsigned flags, weft_future **out)
{
    if (out == NULL || (n > 0 && fs == NULL) ||
        (flags & ~(WEFT_RETURN_EXCEPTIONS | WEFT_CANCEL_ON_ERROR)) != 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (fs[i] == NULL)
            return -EINVAL;
    }
    size_t per = sizeof(weft_future *) + sizeof(void *) + sizeof(struct gather_node);
    if (n > (SIZE_MAX - sizeof(struct gather)) / per)
        return -ENOMEM;
    struct gather *g = weft__malloc(sizeof(*g) + n * per);
    if (g == NULL)
        return -ENOMEM;
    weft_future *f = &g->fut;
    /* the caller's, one for the duration of this call, one per child node */
    weft__future_init(f, WEFT_TASK_GATHER, NULL, NULL, NULL, (uint32_t)(2 + n));
    g->n = n;
    g->flags = flags;
    atomic_init(&g->remaining, n);
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
        finish_gather(g, WEFT_DONE, 0);
    *out = f;
    weft_future_release(f); /* this call's reference; the caller's remains */
    return 0;
}

int weft__gather_cancel(weft_future *f)
{
    struct gather *g = (struct gather *)f;
    /* A gather being finished by its last child (claimed: RUNNING) counts as finished. */
    int won = weft__future_cancel_pending(f) ? 1 : 0;
    cancel_children(g);
    return won;
}

void weft__gather_free(weft_future *f)
{
    struct gather *g = (struct gather *)f;
    for (size_t i = 0; i < g->n; i++)
        weft_future_release(g->children[i]);
    weft__free(g);
}

int weft_gather_child(const weft_future *f, size_t i, void **result)
{
    if (f == NULL || f->task.kind != WEFT_TASK_GATHER)
        return -EINVAL;
    const struct gather *g = (const struct gather *)f;
    if (i >= g->n)
        return -EINVAL;
    weft_future *c = g->children[i];
    /* acquire: pairs with the child's release CAS in finish */
    switch ((weft_state)(ld_acquire(&c->state) & WEFT_FS_STATE_MASK)) {
    case WEFT_DONE:
        if (result != NULL)
            *result = c->result;
        return 0;
    case WEFT_FAILED:
        return c->code;
    case WEFT_CANCELLED:
        return -ECANCELED;
    default:
        return -EAGAIN;
    }
}
