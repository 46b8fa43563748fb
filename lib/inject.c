/* SPDX-License-Identifier: MIT */
/*
 * The injection queue.
 *
 * It is sharded, one shard per worker; a submitting thread always uses the same shard (hashed
 * from its identity), and workers drain their own shard first, then the others, a batch at a
 * time. Each shard is Vyukov's intrusive multi-producer single-consumer queue ("Intrusive MPSC
 * node-based queue", 1024cores.net): a push is one exchange on `tail` and one store, with no
 * lock and no waiting, so submitters never block on workers or on each other beyond the cache
 * line. Consumers (workers, and shutdown's sweep) take turns through a mutex, with trylock on
 * the hot path so a worker never waits for another.
 *
 * Queue invariants (single consumer): `head` is the oldest node or the stub; a node is linked
 * when its predecessor's `next` points to it. A push exchanges itself into `tail` and then links
 * its predecessor to it; between the two the queue is momentarily cut, and the consumer sees the
 * nodes after the cut only once the producer's store lands (pop returns nothing meanwhile).
 *
 * `count` is incremented before a push and decremented after a pop, so it is positive whenever
 * a task is queued or a push is in flight. Shutdown relies on that: a push first increments
 * `count`, then (seq_cst) checks the pool's closed bit; shutdown sets the bit (seq_cst) and
 * its sweep, or the workers' exit test, wait for every `count` to reach zero. Either the push
 * sees the bit and backs out, or the pool sees the count and waits for the task.
 */
#include "inject.h"

#include "alloc.h"

#include <errno.h>

int weft__inject_init(struct weft__inject *q, unsigned nshards, struct weft__mem *mem)
{
    q->shard = weft__mem_alloc(mem, WEFT_CACHE_LINE, nshards * sizeof(*q->shard));
    if (q->shard == NULL)
        return -ENOMEM;
    q->nshards = nshards;
    for (unsigned i = 0; i < nshards; i++) {
        struct weft__inject_shard *s = &q->shard[i];
        atomic_init(&s->stub.next, NULL);
        s->stub.run = NULL;
        s->stub.flags = 0;
        atomic_init(&s->tail, &s->stub);
        atomic_init(&s->count, 0);
        atomic_init(&s->total, 0);
        pthread_mutex_init(&s->consumer, NULL);
        s->head = &s->stub;
    }
    return 0;
}

void weft__inject_destroy(struct weft__inject *q, struct weft__mem *mem)
{
    for (unsigned i = 0; i < q->nshards; i++)
        pthread_mutex_destroy(&q->shard[i].consumer);
    weft__mem_free(mem, q->shard);
    q->shard = NULL;
}

unsigned weft__inject_home(const struct weft__inject *q)
{
    /* The address of a thread-local object identifies the thread without any shared state. */
    static WEFT_TLS char me;
    uintptr_t h = (uintptr_t)&me;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15u;
    return (unsigned)((h >> 32) % q->nshards);
}

static void link_in(struct weft__inject_shard *sh, struct weft__task *t)
{
    st_relaxed(&t->next, NULL); /* published by the release store below */
    /* acq_rel: the acquire orders this push after the previous tail's link; the release is
     * for the consumer that will see t as the new tail in pop. */
    struct weft__task *prev = xchg_acq_rel(&sh->tail, t);
    /* release pairs with the acquire loads of next in pop: the consumer that follows the link
     * sees the task's contents. */
    st_release(&prev->next, t);
}

int weft__inject_push(struct weft__inject *q, unsigned s, struct weft__task *t,
                      _Atomic uint32_t *closed, uint32_t closed_mask)
{
    struct weft__inject_shard *sh = &q->shard[s];
    /* seq_cst increment then seq_cst check of the closed bit: pairs with shutdown's seq_cst
     * set of the bit then load of count (see above). */
    add_seq_cst(&sh->count, 1);
    if (closed != NULL && (ld_seq_cst(closed) & closed_mask) != 0) {
        sub_release(&sh->count, 1); /* release: a sweeper that sees 0 is done with us */
        return -ESHUTDOWN;
    }
    link_in(sh, t);
    if (closed != NULL)             /* a submission, not shutdown putting a join frame back */
        add_relaxed(&sh->total, 1); /* relaxed: a statistic; the line is already this thread's */
    return 0;
}

/* One node from the single-consumer side, or NULL (empty, or a push is half done). */
static struct weft__task *pop_one(struct weft__inject_shard *sh)
{
    struct weft__task *h = sh->head;
    struct weft__task *next = ld_acquire(&h->next); /* pairs with the release in link_in */
    if (h == &sh->stub) {
        if (next == NULL)
            return NULL;
        sh->head = next;
        h = next;
        next = ld_acquire(&h->next); /* as above */
    }
    if (next != NULL) {
        sh->head = next;
        return h;
    }
    /* h is the last linked node. If it is not the tail, a producer is between its exchange and
     * its link: report empty for now. */
    if (ld_acquire(&sh->tail) != h) /* acquire: pairs with the exchange in link_in */
        return NULL;
    link_in(sh, &sh->stub);      /* put the stub behind h so h can leave */
    next = ld_acquire(&h->next); /* as above */
    if (next != NULL) {
        sh->head = next;
        return h;
    }
    return NULL;
}

size_t weft__inject_pop(struct weft__inject *q, unsigned s, struct weft__task **out, size_t max,
                        bool wait)
{
    struct weft__inject_shard *sh = &q->shard[s];
    if (ld_relaxed(&sh->count) == 0) /* relaxed: a hint; pop_one's acquires decide */
        return 0;
    if (wait)
        pthread_mutex_lock(&sh->consumer);
    else if (pthread_mutex_trylock(&sh->consumer) != 0)
        return 0;
    size_t n = 0;
    while (n < max) {
        struct weft__task *t = pop_one(sh);
        if (t == NULL)
            break;
        out[n++] = t;
    }
    pthread_mutex_unlock(&sh->consumer);
    return n;
}

void weft__inject_taken(struct weft__inject *q, unsigned s, size_t n)
{
    if (n > 0)
        sub_release(&q->shard[s].count, n); /* release: pairs with the acquire in maybe_nonempty */
}

bool weft__inject_maybe_nonempty(struct weft__inject *q)
{
    for (unsigned i = 0; i < q->nshards; i++) {
        /* acquire: pairs with the releases on count; a positive count means queued or in
         * flight */
        if (ld_acquire(&q->shard[i].count) != 0)
            return true;
    }
    return false;
}

bool weft__inject_drained(struct weft__inject *q)
{
    for (unsigned i = 0; i < q->nshards; i++) {
        /* seq_cst: pairs with the seq_cst increment in push (see the top of this file) */
        if (ld_seq_cst(&q->shard[i].count) != 0)
            return false;
    }
    return true;
}

uint64_t weft__inject_total(const struct weft__inject *q)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < q->nshards; i++)
        n += ld_relaxed(&q->shard[i].total); /* relaxed: a statistic */
    return n;
}
