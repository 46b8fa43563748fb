/* SPDX-License-Identifier: MIT */
/*
 * Block caches.
 *
 * Every thread that allocates blocks gets a cache of its own (made on first use, reached through
 * a thread-local pointer, freed when the thread exits). A block remembers its home cache. Freed
 * on its home thread, it goes on the home's local list (owner only, no atomics). Freed on any
 * other thread, it is pushed onto the home's `remote` stack with one CAS; the owner takes the
 * whole stack with one exchange when its local list runs dry (mimalloc's "thread-delayed free").
 * Push-only stacks emptied by exchange have no ABA problem.
 *
 * In a server the event loop submits (allocates) and releases (frees) futures while workers
 * finish them, so blocks cycle through the loop thread's cache; workers that drop the last
 * reference send the block home. Either way no malloc happens once the caches are warm, as long
 * as no more blocks are out than the bounds below.
 *
 * Bounds. A cache keeps at most LOCAL_MAX blocks on its local list and REMOTE_MAX on its remote
 * stack; a block freed when its list or stack is full goes back to malloc, so a thread holds at
 * most LOCAL_MAX + REMOTE_MAX blocks of 144 bytes, some 72 KiB, for as long as it lives. The
 * remote bound matters most, because workers free what a submitting thread allocated: without
 * it, a burst of a million detached tasks left a million blocks (158 MB) on the submitting
 * thread's stack, then on its local list, for as long as that thread lived.
 *
 * `nremote` keeps the remote bound. A remote freer increments it before it pushes (a
 * reservation, undone at once when the count was already at the bound); the owner subtracts
 * the number of blocks it took, after its exchange. Invariant: a stack the owner takes holds at
 * most REMOTE_MAX blocks. Each block on it was reserved before it was pushed, the push is a
 * release and the take an acquire, so each of those reservations happens before the take and
 * hence before the owner's subtraction; right after the last of them, all of them stand in
 * `nremote` at once (other terms are never negative), and that last one found the count below
 * REMOTE_MAX. So the owner's walk over what it took is bounded by construction, and since
 * REMOTE_MAX <= LOCAL_MAX and the owner takes only when its local list is empty, all it takes
 * fits the local list: nothing taken goes back to malloc at once. `nremote` orders nothing
 * else, so all its accesses are relaxed.
 *
 * Lifetime: `live` counts the blocks of a cache that have not gone back to malloc, plus one for
 * the owner thread while it runs (remote freers give blocks back to malloc while the owner runs,
 * when the stack is full, and must not bring `live` to zero then). When its thread exits, the
 * cache frees its local and remote blocks, swaps `remote` to ABANDONED and drops those blocks and
 * its own count from `live`; a block freed later elsewhere sees ABANDONED and goes to malloc.
 * Whoever brings `live` to zero frees the cache itself.
 *
 * Builds with AddressSanitizer bypass the caches, so that a use after free of a future is
 * reported instead of hidden by reuse.
 */
#include "cache.h"

#include "alloc.h"
#include "atomic.h"
#include "platform.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_NO_BLOCK_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_NO_BLOCK_CACHE 1
#endif
#endif
#if !defined(__GLIBC__)
#define WEFT_NO_BLOCK_CACHE 1 /* thread-exit destructors below are glibc's */
#endif

#define LOCAL_MAX  256 /* blocks a cache keeps on its local list; more go back to malloc */
#define REMOTE_MAX 256 /* blocks other threads may park on a cache's remote stack; likewise */

_Static_assert(REMOTE_MAX <= LOCAL_MAX,
               "a remote stack taken whole must fit the empty local list: lower REMOTE_MAX");

struct cache;

struct block {
    struct cache *home; /* NULL: not cached, straight back to malloc */
    struct block *next; /* while free */
    _Alignas(max_align_t) unsigned char data[WEFT_BLOCK_SIZE];
};

#ifndef WEFT_NO_BLOCK_CACHE

struct cache {
    /* Owner only. */
    WEFT_ALIGNED struct block *local;
    unsigned nlocal;
    /* Written by the threads that free this cache's blocks, and by the owner. */
    WEFT_ALIGNED _Atomic(struct block *) remote; /* ABANDONED once the owner exited */
    _Atomic unsigned nremote;                    /* >= the blocks on `remote`; see above */
    _Atomic uint64_t live;
};

_Static_assert(offsetof(struct cache, remote) == WEFT_CACHE_LINE &&
                   sizeof(struct cache) == 2 * WEFT_CACHE_LINE,
               "the owner's fields and the remote freers' must sit on separate cache lines");

#define ABANDONED ((struct block *)1)

extern int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso_symbol);
extern void *__dso_handle;

static WEFT_TLS struct cache *tls_cache;

/* Frees a list of at most LOCAL_MAX blocks and adds their number to *n. */
static void release_blocks(struct block *b, uint64_t *n)
{
    while (b != NULL) {
        struct block *next = b->next;
        weft__free(b);
        (*n)++;
        b = next;
    }
}

static void cache_exit(void *arg)
{
    struct cache *c = arg;
    uint64_t n = 1; /* the owner's own count */
    release_blocks(c->local, &n);
    /* acq_rel: acquire the blocks pushed so far (pairs with the release CAS in remote_push);
     * release the abandonment to the remote freers that will see it */
    struct block *remote = xchg_acq_rel(&c->remote, ABANDONED);
    release_blocks(remote, &n);
    tls_cache = NULL;
    /* acq_rel: pairs with the decrements in weft__block_free; the last one frees the cache */
    if (sub_acq_rel(&c->live, n) == n)
        weft__free(c);
}

static struct cache *mine(void)
{
    struct cache *c = tls_cache;
    if (c != NULL)
        return c;
    c = weft__aligned_alloc(_Alignof(struct cache), sizeof(*c));
    if (c == NULL)
        return NULL;
    c->local = NULL;
    c->nlocal = 0;
    atomic_init(&c->remote, NULL);
    atomic_init(&c->nremote, 0);
    atomic_init(&c->live, 1); /* the owner's count, dropped by cache_exit */
    if (__cxa_thread_atexit_impl(cache_exit, c, &__dso_handle) != 0) {
        weft__free(c);
        return NULL;
    }
    tls_cache = c;
    return c;
}

/* Owner: moves the remote stack (non-empty) onto the local list (empty). */
static void take_remote(struct cache *c)
{
    /* acq_rel (acquire is what matters): pairs with the release CAS of each remote_push, so
     * b->next, the block's last uses and the reservation in `nremote` happen before this */
    struct block *b = xchg_acq_rel(&c->remote, NULL);
    unsigned n = 0;
    for (struct block *x = b; x != NULL; x = x->next)
        n++; /* at most REMOTE_MAX: see the invariant at the top */
    WEFT_ASSERT(n <= REMOTE_MAX);
    /* relaxed: the reservations being released happen before this through the exchange above;
     * nothing else is ordered by `nremote` */
    sub_relaxed(&c->nremote, n);
    c->local = b;
    c->nlocal = n;
}

void *weft__block_alloc(void)
{
    struct cache *c = mine();
    if (c != NULL) {
        /* relaxed: only a hint that the exchange in take_remote is worth doing */
        if (c->local == NULL && ld_relaxed(&c->remote) != NULL)
            take_remote(c);
        struct block *b = c->local;
        if (b != NULL) {
            c->local = b->next;
            c->nlocal--;
            return b->data;
        }
    }
    struct block *b = weft__malloc(sizeof(*b));
    if (b == NULL)
        return NULL;
    b->home = c;
    /* relaxed: only the decrements decide, with acq_rel; this one happens before the block's own
     * decrement through whatever handed the block over, which keeps the coherence order right */
    if (c != NULL)
        add_relaxed(&c->live, 1);
    return b->data;
}

/* Another thread than c's owner: parks b on c's remote stack. False when the stack is full or
 * abandoned; b is then the caller's to free. */
static bool remote_push(struct cache *c, struct block *b)
{
    /* relaxed: the CAS below checks the head again */
    struct block *head = ld_relaxed(&c->remote);
    if (head == ABANDONED)
        return false;
    /* relaxed, both: `nremote` only bounds memory (see the top); the load spares a full stack
     * the increment and its undo */
    if (ld_relaxed(&c->nremote) >= REMOTE_MAX)
        return false;
    if (add_relaxed(&c->nremote, 1) >= REMOTE_MAX) {
        sub_relaxed(&c->nremote, 1); /* relaxed: undoes the reservation just made */
        return false;
    }
    for (;;) {
        /* Abandoned after the reservation: the count no longer matters, the cache is freed by
         * `live`, which still counts b. */
        if (head == ABANDONED)
            return false;
        b->next = head;
        /* release: the owner's acquire exchange (take_remote, cache_exit) sees b->next, the
         * reservation above and everything done with b */
        if (cas_release(&c->remote, &head, b))
            return true;
    }
}

void weft__block_free(void *p)
{
    if (p == NULL)
        return;
    struct block *b = (struct block *)((unsigned char *)p - offsetof(struct block, data));
    struct cache *c = b->home;
    if (c == NULL) {
        weft__free(b);
        return;
    }
    if (c == tls_cache) {
        if (c->nlocal < LOCAL_MAX) {
            b->next = c->local;
            c->local = b;
            c->nlocal++;
            return;
        }
        weft__free(b);
        /* relaxed: the owner's own count keeps `live` above zero, and the owner's acq_rel
         * decrement in cache_exit, later in this thread, releases this one with it */
        sub_relaxed(&c->live, 1);
        return;
    }
    if (remote_push(c, b))
        return;
    weft__free(b);
    /* acq_rel: release orders this thread's uses of c before the free of c; acquire, on the
     * last decrement, orders that free after everyone's uses. Pairs with the other decrements,
     * cache_exit's among them. Zero is possible only after the owner's exit. */
    if (sub_acq_rel(&c->live, 1) == 1)
        weft__free(c);
}

#else /* WEFT_NO_BLOCK_CACHE */

void *weft__block_alloc(void)
{
    struct block *b = weft__malloc(sizeof(*b));
    if (b == NULL)
        return NULL;
    b->home = NULL;
    return b->data;
}

void weft__block_free(void *p)
{
    if (p != NULL)
        weft__free((unsigned char *)p - offsetof(struct block, data));
}

#endif
