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
 * reference send the block home. Either way no malloc happens once the caches are warm.
 *
 * Lifetime: `live` counts the blocks of a cache that have not gone back to malloc. When its
 * thread exits, the cache frees its local and remote blocks and swaps `remote` to ABANDONED;
 * a block freed later elsewhere sees ABANDONED and goes to malloc. Whoever brings `live` to zero
 * after the abandonment frees the cache itself.
 *
 * Builds with AddressSanitizer bypass the caches, so that a use after free of a future is
 * reported instead of hidden by reuse.
 */
#include "cache.h"

#include "alloc.h"
#include "atomic.h"

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

#define LOCAL_MAX 256 /* blocks a cache keeps on its local list; more go back to malloc */

struct cache;

struct block {
    struct cache *home; /* NULL: not cached, straight back to malloc */
    struct block *next; /* while free */
    _Alignas(max_align_t) unsigned char data[WEFT_BLOCK_SIZE];
};

#ifndef WEFT_NO_BLOCK_CACHE

struct cache {
    struct block *local; /* owner only */
    unsigned nlocal;
    _Atomic(struct block *) remote; /* blocks freed elsewhere; ABANDONED once the owner exited */
    _Atomic uint64_t live;
};

#define ABANDONED ((struct block *)1)

extern int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso_symbol);
extern void *__dso_handle;

static WEFT_TLS struct cache *tls_cache;

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
    uint64_t n = 0;
    release_blocks(c->local, &n);
    /* acq_rel: acquire the blocks pushed so far (pairs with the release CAS in block_free);
     * release the abandonment to the remote freers that will see it */
    struct block *remote = xchg_acq_rel(&c->remote, ABANDONED);
    release_blocks(remote, &n);
    tls_cache = NULL;
    /* acq_rel: the last decrement, here or in a remote free, frees the cache */
    if (atomic_fetch_sub_explicit(&c->live, n, memory_order_acq_rel) == n)
        weft__free(c);
}

static struct cache *mine(void)
{
    struct cache *c = tls_cache;
    if (c != NULL)
        return c;
    c = weft__calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    atomic_init(&c->remote, NULL);
    atomic_init(&c->live, 0);
    if (__cxa_thread_atexit_impl(cache_exit, c, &__dso_handle) != 0) {
        weft__free(c);
        return NULL;
    }
    tls_cache = c;
    return c;
}

void *weft__block_alloc(void)
{
    struct cache *c = mine();
    if (c != NULL) {
        struct block *b = c->local;
        if (b == NULL && ld_relaxed(&c->remote) != NULL) {
            /* acquire: pairs with the release CAS of each remote free */
            b = xchg_acq_rel(&c->remote, NULL);
            c->nlocal = 0;
            for (struct block *x = b; x != NULL; x = x->next)
                c->nlocal++;
        }
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
    if (c != NULL)
        add_relaxed(&c->live, 1); /* relaxed: only the decrements decide, with acq_rel */
    return b->data;
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
        /* acq_rel: as in cache_exit; the owner is alive, so this never reaches zero for good */
        atomic_fetch_sub_explicit(&c->live, 1, memory_order_acq_rel);
        return;
    }
    struct block *head = ld_relaxed(&c->remote);
    for (;;) {
        if (head == ABANDONED) {
            weft__free(b);
            /* acq_rel: pairs with the other decrements; the last one frees the cache */
            if (atomic_fetch_sub_explicit(&c->live, 1, memory_order_acq_rel) == 1)
                weft__free(c);
            return;
        }
        b->next = head;
        /* release: the owner's acquire exchange sees b->next and everything done with b */
        if (atomic_compare_exchange_weak_explicit(&c->remote, &head, b, memory_order_release,
                                                  memory_order_relaxed))
            return;
    }
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
