/* SPDX-License-Identifier: MIT */
/*
 * Futures.
 *
 * State machine, one atomic 32-bit word (`state`): PENDING -> RUNNING -> DONE | FAILED, or
 * PENDING -> CANCELLED, or RUNNING -> CANCELLED when the task returns -ECANCELED after a
 * cancellation request. Every transition is a CAS on the word, so exactly one thread makes each;
 * the flags in the word (cancel requested, nodes registered, futex sleepers) are set by CAS too
 * and survive the transitions.
 *
 * Linearization points: start at the CAS PENDING -> RUNNING; finish (and cancel) at the CAS to
 * the final state. `result` and `code` are written by the runner before that CAS (release) and
 * read after an acquire load that sees a final state.
 *
 * Waiting and callbacks:
 *  - Threads that are not workers sleep on the state word itself (futex) after setting
 *    WEFT_FS_WAITERS; the finisher wakes them all if the flag was set.
 *  - Everything else (on_done callbacks, helping workers, multi-future waits) is a node on a
 *    list under a small futex lock. A node is added only while the future has not finished,
 *    and WEFT_FS_HAS_NODES is set by CAS in the same critical section; the finisher's CAS sees
 *    the flag iff some node was added before it, and then detaches the whole list under the
 *    lock and fires each node outside it. A node added after the final CAS is refused, and its
 *    owner acts at once. So each node fires exactly once.
 *  - The finisher holds a reference while it wakes and fires, so callbacks may release the last
 *    reference the user had.
 */
#include "future.h"

#include "alloc.h"
#include "cache.h"
#include "platform.h"
#include "workspan.h"

#include <errno.h>
#include <limits.h>

/* How long weft__future_remove_node spins for a firing node before it sleeps. */
#define REMOVE_SPINS 128

/* --- the node lock: a three-state futex mutex (Drepper, "Futexes are tricky", mutex 3) --- */

static void lock(weft_future *f)
{
    uint32_t c = 0;
    if (cas_acq_rel(&f->lock, &c, 1)) /* acquire: pairs with the release in unlock */
        return;
    if (c != 2)
        c = xchg_acq_rel(&f->lock, 2); /* acquire: pairs with the release in unlock; 2: sleepers */
    while (c != 0) {
        weft__futex_wait(&f->lock, 2, -1);
        c = xchg_acq_rel(&f->lock, 2); /* acquire: pairs with the release in unlock */
    }
}

static void unlock(weft_future *f)
{
    /* release: pairs with the acquire in lock */
    if (sub_release(&f->lock, 1) != 1) {
        st_release(&f->lock, 0); /* release: as above, for the sleeper woken next */
        weft__futex_wake(&f->lock, 1);
    }
}

static void task_future_free(weft_future *f)
{
    weft__block_free(f);
}

static const struct weft__future_ops task_future_ops = {weft__task_future_cancel, task_future_free};

bool weft__future_is_task(const weft_future *f)
{
    return f->ops == &task_future_ops;
}

weft_future *weft__future_new(weft_pool *pool, weft_fn fn, void *arg, uint32_t refs)
{
    _Static_assert(sizeof(weft_future) <= WEFT_BLOCK_SIZE, "weft_future outgrew WEFT_BLOCK_SIZE");
    weft_future *f = weft__block_alloc();
    if (f != NULL) {
        weft__future_init(f, &task_future_ops, pool, fn, arg, refs);
        f->task.flags = WEFT_TASK_SUBMITTED;
    }
    return f;
}

void weft__future_init(weft_future *f, const struct weft__future_ops *ops, weft_pool *pool,
                       weft_fn fn, void *arg, uint32_t refs)
{
    atomic_init(&f->task.next, NULL);
    f->task.run = NULL;
    f->task.flags = 0;
    f->ops = ops;
    atomic_init(&f->state, WEFT_PENDING);
    atomic_init(&f->lock, 0);
    atomic_init(&f->refs, refs);
    f->pid = 0;
    f->counted_in = NULL;
    f->fn = fn;
    f->arg = arg;
    f->pool = pool;
    f->result = NULL;
    f->code = 0;
    atomic_init(&f->ws_flags, 0);
    weft__list_init(&f->nodes);
}

bool weft__future_start(weft_future *f)
{
    uint32_t s = ld_relaxed(&f->state); /* relaxed: the CAS below decides */
    for (;;) {
        if ((s & WEFT_FS_STATE_MASK) != WEFT_PENDING)
            return false;
        /* acq_rel: orders the task's reads after the start, and pairs with a cancel's CAS */
        if (cas_acq_rel(&f->state, &s, (s & ~WEFT_FS_STATE_MASK) | WEFT_RUNNING))
            return true;
    }
}

static void fire_all(weft_future *f)
{
    struct weft__list detached;
    lock(f);
    weft__list_move_all(&f->nodes, &detached);
    for (struct weft__list *l = detached.next; l != &detached; l = l->next)
        weft__container_of(l, struct weft__fnode, link)->linked = false;
    unlock(f);
    /* Off the future's list: from here on only this thread follows these links. */
    for (struct weft__list *l = detached.next; l != &detached;) {
        struct weft__list *next = l->next; /* read first: fire() may end the node's life */
        struct weft__fnode *n = weft__container_of(l, struct weft__fnode, link);
        n->fire(n, f);
        l = next;
    }
}

/* After the final CAS: wake the sleepers and fire the nodes that the old state word announced. */
static void announce(weft_future *f, uint32_t old)
{
    if (old & (WEFT_FS_WAITERS | WEFT_FS_HAS_NODES)) {
        weft_future_retain(f); /* callbacks may release the caller's last reference */
        if (old & WEFT_FS_WAITERS)
            weft__futex_wake(&f->state, INT_MAX);
        if (old & WEFT_FS_HAS_NODES)
            fire_all(f);
        weft_future_release(f);
    }
}

void weft__future_finish(weft_future *f, weft_state st, int code, void *result)
{
    /* Only the runner finishes a RUNNING future (a cancel only sets a flag then), and only the
     * setter that claimed a promise (SETTING) finishes it, so these plain writes race with no
     * one; the release CAS below publishes them. */
    f->result = result;
    f->code = code;
    uint32_t s = ld_relaxed(&f->state);
    WEFT_ASSERT((s & WEFT_FS_STATE_MASK) == WEFT_RUNNING ||
                ((s & WEFT_FS_STATE_MASK) == WEFT_PENDING && (s & WEFT_FS_SETTING)));
    WEFT_ASSERT(st >= WEFT_DONE && st <= WEFT_CANCELLED);
    /* acq_rel: release publishes result/code to whoever acquires the final state; acquire
     * orders the wake-ups after the flags' writers. The loop only re-reads flags set by others. */
    while (
        !cas_acq_rel(&f->state, &s, (s & ~(WEFT_FS_STATE_MASK | WEFT_FS_SETTING)) | (uint32_t)st))
        ;
    announce(f, s);
}

void weft__future_settle(weft_future *f)
{
    unsigned round = 0;
    /* acquire: pairs with the release CAS in weft__future_finish */
    while (!weft__state_final(ld_acquire(&f->state)))
        weft__backoff(&round);
}

bool weft__future_cancel_quiet(weft_future *f)
{
    uint32_t s = ld_relaxed(&f->state); /* relaxed: the CAS below decides */
    for (;;) {
        if ((s & WEFT_FS_STATE_MASK) != WEFT_PENDING || (s & WEFT_FS_SETTING))
            return false; /* started, being set, or already finished */
        /* acq_rel: pairs with the CAS in weft__future_start or a promise's claim; exactly one
         * of them wins */
        if (cas_acq_rel(&f->state, &s, (s & ~WEFT_FS_STATE_MASK) | WEFT_CANCELLED))
            break;
    }
    return true;
}

void weft__future_announce(weft_future *f)
{
    /* relaxed: a final state word never changes again (flags are only added to unfinished
     * futures), and this thread made it final, so it reads the word its CAS wrote */
    announce(f, ld_relaxed(&f->state));
}

bool weft__future_cancel_pending(weft_future *f)
{
    if (!weft__future_cancel_quiet(f))
        return false;
    weft__future_announce(f);
    return true;
}

bool weft__future_add_node(weft_future *f, struct weft__fnode *n)
{
    atomic_init(&n->fired, 0);
    lock(f);
    uint32_t s = ld_relaxed(&f->state); /* relaxed: the CAS below decides */
    for (;;) {
        if (weft__state_final(s)) {
            unlock(f);
            return false;
        }
        if (s & WEFT_FS_HAS_NODES)
            break;
        /* acq_rel: the finisher's CAS either sees this flag or makes this CAS fail */
        if (cas_acq_rel(&f->state, &s, s | WEFT_FS_HAS_NODES))
            break;
    }
    weft__list_push_head(&f->nodes, &n->link); /* newest first, as they fire */
    n->linked = true;
    unlock(f);
    return true;
}

void weft__future_remove_node(weft_future *f, struct weft__fnode *n)
{
    lock(f);
    if (n->linked) {
        weft__list_remove(&n->link);
        n->linked = false;
        unlock(f);
        return;
    }
    unlock(f);
    /* Detached by the finisher: its fire() is running or about to, a handful of instructions
     * away from weft__fnode_fired. Spin that long, then sleep: the finisher may be a thread of
     * lower priority that this one would otherwise keep off its CPU. */
    for (int i = 0; i < REMOVE_SPINS; i++) {
        if (ld_acquire(&n->fired) == 1) /* acquire: pairs with the exchange in fnode_fired */
            return;
        weft_cpu_relax();
    }
    uint32_t v = 0;
    /* acq_rel: announces the sleeper to fnode_fired's exchange, which then wakes it; on
     * failure (v == 1) the acquire pairs with that exchange */
    if (!cas_acq_rel(&n->fired, &v, 2) && v == 1)
        return;
    while (ld_acquire(&n->fired) != 1) /* acquire: as above */
        weft__futex_wait(&n->fired, 2, -1);
}

void weft__fnode_fired(struct weft__fnode *n)
{
    /* acq_rel: the release orders fire()'s work on the node before the owner reclaims it
     * (pairs with the acquires in remove_node); the acquire sees a sleeper's CAS. */
    if (xchg_acq_rel(&n->fired, 1) == 2)
        weft__futex_wake(&n->fired, 1); /* the owner may free n once it sees 1: a wake-up on
                                           its old address is at worst a spurious one */
}

int weft__future_block(weft_future *f, int64_t deadline)
{
    uint32_t s = ld_acquire(&f->state); /* acquire: pairs with the release CAS in finish */
    while (!weft__state_final(s)) {
        if (!(s & WEFT_FS_WAITERS)) {
            /* acquire: as above; the finisher's CAS then sees the flag */
            if (!cas_acq_rel(&f->state, &s, s | WEFT_FS_WAITERS))
                continue;
            s |= WEFT_FS_WAITERS;
        }
        if (weft__futex_wait(&f->state, s, deadline) == -ETIMEDOUT) {
            if (weft__state_final(ld_acquire(&f->state)))
                return 0;
            return -ETIMEDOUT;
        }
        s = ld_acquire(&f->state); /* acquire: pairs with the release CAS in finish */
    }
    return 0;
}

/* --- public: state, references, callbacks --- */

weft_state weft_future_state(const weft_future *f)
{
    if (f == NULL)
        return WEFT_CANCELLED;
    /* acquire: a caller that sees DONE may read the result next */
    return (weft_state)(ld_acquire(&((weft_future *)f)->state) & WEFT_FS_STATE_MASK);
}

bool weft_future_done(const weft_future *f)
{
    return f != NULL && weft__state_final(ld_acquire(&((weft_future *)f)->state));
}

void weft_future_retain(weft_future *f)
{
    if (f != NULL)
        add_relaxed(&f->refs, 1); /* relaxed: the caller already holds a reference */
}

bool weft__future_unref(weft_future *f)
{
    /* acq_rel: the release orders this holder's uses before the free; the acquire on the last
     * decrement orders the free after every other holder's uses. */
    return sub_acq_rel(&f->refs, 1) == 1;
}

void weft_future_release(weft_future *f)
{
    if (f != NULL && weft__future_unref(f))
        f->ops->free(f);
}

int weft_future_cancel(weft_future *f)
{
    if (f == NULL)
        return -EINVAL;
    return f->ops->cancel(f, &(int32_t){0});
}

int weft__task_future_cancel(weft_future *f, int32_t *pid)
{
    uint32_t s = ld_acquire(&f->state); /* acquire: pairs with the release CAS in finish */
    for (;;) {
        switch ((weft_state)(s & WEFT_FS_STATE_MASK)) {
        case WEFT_PENDING:
            /* Inherited through fork(): it never finishes in this process. The pid is the
             * future's own copy, since its pool may be gone (freed in this child, or in the
             * parent by a destroy that a worker dropping the task let through). */
            if (f->pid != 0) {
                if (*pid == 0)
                    *pid = (int32_t)getpid();
                if (f->pid != *pid)
                    return 0;
            }
            if (weft__future_cancel_pending(f)) {
                /* Only the future and its pool's page are touched from here on: once the CAS
                 * is done, a worker may drop the task and the pool may be destroyed. */
                weft__uncount(f, true); /* it will never start */
                return 1;
            }
            s = ld_acquire(&f->state); /* it started meanwhile */
            continue;
        case WEFT_RUNNING:
            /* acq_rel: the request is a flag the task polls; the CAS keeps the other bits */
            if (cas_acq_rel(&f->state, &s, s | WEFT_FS_CANCEL_REQ))
                return 0;
            continue;
        default:
            return 0;
        }
    }
}

int weft__future_outcome(const weft_future *f, void **result)
{
    /* acquire: pairs with the release CAS in finish; result and code are then visible */
    switch ((weft_state)(ld_acquire(&((weft_future *)f)->state) & WEFT_FS_STATE_MASK)) {
    case WEFT_DONE:
        if (result != NULL)
            *result = f->result;
        return 0;
    case WEFT_FAILED:
        return f->code;
    case WEFT_CANCELLED:
        return -ECANCELED;
    default:
        return -EAGAIN;
    }
}

const char *weft_state_name(weft_state s)
{
    switch (s) {
    case WEFT_PENDING:
        return "PENDING";
    case WEFT_RUNNING:
        return "RUNNING";
    case WEFT_DONE:
        return "DONE";
    case WEFT_FAILED:
        return "FAILED";
    case WEFT_CANCELLED:
        return "CANCELLED";
    }
    return "unknown";
}

/* --- promises: futures completed by the caller --- */

static int promise_cancel(weft_future *f, int32_t *pid)
{
    (void)pid; /* no pool, no fork rule: a promise is completed by whoever holds it */
    if (weft__future_cancel_pending(f))
        return 1;
    weft__future_settle(f); /* lost to a setter that claimed it (SETTING) */
    return 0;
}

static void callback_fire(struct weft__fnode *n, weft_future *f);
static void callback_free(struct weft__fnode *n);

/* A promise may lose its last reference unfinished: nobody can complete it any more, and the
 * on_done callbacks on it will never run. They are the only nodes that hold no reference to
 * anything (a gather's, a continuation's or a completion set's node would have kept the
 * promise alive, and waiters take theirs back before they return): free them with it. */
typedef void (*result_free_fn)(void *result);

static void promise_free(weft_future *f)
{
    /* Plain reads: the last reference is gone (weft__future_unref's acq_rel pairs with every
     * earlier release), so the setter's writes of result_free and result happen before
     * this. */
    if (f->result_free != NULL)
        f->result_free(f->result);
    for (struct weft__list *l = f->nodes.next; l != &f->nodes;) {
        struct weft__list *next = l->next;
        struct weft__fnode *n = weft__container_of(l, struct weft__fnode, link);
        WEFT_ASSERT(n->fire == callback_fire);
        callback_free(n);
        l = next;
    }
    weft__block_free(f);
}

static const struct weft__future_ops promise_ops = {promise_cancel, promise_free};

int weft_future_create(weft_future **out)
{
    if (out == NULL)
        return -EINVAL;
    weft_future *f = weft__block_alloc();
    if (f == NULL)
        return -ENOMEM;
    weft__future_init(f, &promise_ops, NULL, NULL, NULL, 1);
    f->result_free = NULL; /* the union's member promise_free reads */
    *out = f;
    return 0;
}

/* PENDING -> st, for a promise. The setter first claims the future (the SETTING flag, which a
 * cancel and other setters respect), so that only it writes result and code, then publishes
 * them with the final CAS as a task's runner does. */
static int promise_complete(weft_future *f, weft_state st, int code, void *result,
                            result_free_fn free_fn)
{
    if (f == NULL || f->ops != &promise_ops)
        return -EINVAL;
    uint32_t s = ld_relaxed(&f->state); /* relaxed: the CAS below decides */
    for (;;) {
        if ((s & WEFT_FS_STATE_MASK) != WEFT_PENDING)
            return -EALREADY;
        if (s & WEFT_FS_SETTING) {
            weft__future_settle(f); /* another setter won */
            return -EALREADY;
        }
        /* acq_rel: pairs with a cancel's CAS and other setters' claims: one of them wins */
        if (cas_acq_rel(&f->state, &s, s | WEFT_FS_SETTING))
            break;
    }
    /* Only the claimant writes result_free; promise_free reads it after the last reference.
     * (fn is the work and span's, below.) */
    f->result_free = free_fn;
    weft__ws_before_set(f);                   /* work and span: its setter's point */
    weft__future_finish(f, st, code, result); /* as a task's runner does, SETTING cleared */
    return 0;
}

int weft_future_set_result(weft_future *f, void *result)
{
    return promise_complete(f, WEFT_DONE, 0, result, NULL);
}

int weft_future_set_result_owned(weft_future *f, void *result, void (*free_fn)(void *result))
{
    if (free_fn == NULL)
        return -EINVAL;
    return promise_complete(f, WEFT_DONE, 0, result, free_fn);
}

int weft_future_set_error(weft_future *f, int code)
{
    if (code == 0)
        return -EINVAL;
    return promise_complete(f, WEFT_FAILED, code, NULL, NULL);
}

/* --- callbacks --- */

struct callback_node {
    struct weft__fnode node;
    void (*cb)(weft_future *f, void *data);
    void *data;
};

static void callback_free(struct weft__fnode *n)
{
    weft__block_free(weft__container_of(n, struct callback_node, node));
}

static void callback_fire(struct weft__fnode *n, weft_future *f)
{
    struct callback_node *c = weft__container_of(n, struct callback_node, node);
    c->cb(f, c->data);
    weft__block_free(c);
}

int weft_future_on_done(weft_future *f, void (*cb)(weft_future *f, void *data), void *data)
{
    if (f == NULL || cb == NULL)
        return -EINVAL;
    if (weft_future_done(f)) {
        cb(f, data);
        return 0;
    }
    _Static_assert(sizeof(struct callback_node) <= WEFT_BLOCK_SIZE, "callback node too big");
    struct callback_node *c = weft__block_alloc();
    if (c == NULL)
        return -ENOMEM;
    c->node.fire = callback_fire;
    c->cb = cb;
    c->data = data;
    if (!weft__future_add_node(f, &c->node)) {
        weft__block_free(c);
        cb(f, data);
    }
    return 0;
}
