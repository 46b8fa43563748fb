/* SPDX-License-Identifier: MIT */
/*
 * Chase-Lev work-stealing deque, single owner, many thieves.
 * See deque.c for the algorithm, its source and its invariants.
 */
#ifndef WEFT_DEQUE_H
#define WEFT_DEQUE_H

#include "alloc.h"
#include "atomic.h"
#include "platform.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weft__deque_buf {
    int64_t mask;                    /* capacity - 1; capacity is a power of two */
    struct weft__deque_buf *retired; /* older buffers, kept until the deque is destroyed */
    _Atomic(void *) slot[];
};

struct weft__deque {
    /* Written by thieves (CAS) and by the owner when it takes the last item. */
    WEFT_ALIGNED _Atomic int64_t top;
    /* Written by the owner only; read by thieves. */
    WEFT_ALIGNED _Atomic int64_t bottom;
    _Atomic(struct weft__deque_buf *) buf;
    struct weft__mem *mem; /* where its buffers come from: the pool's allocator */
    char pad_[WEFT_CACHE_LINE - sizeof(_Atomic int64_t) - 2 * sizeof(void *)];
};

_Static_assert(sizeof(struct weft__deque) == 2 * WEFT_CACHE_LINE,
               "top and bottom must sit on separate cache lines: fix pad_");

/* Returns 0 or -ENOMEM. Buffers come from mem (the pool's allocator, alloc.h). */
int weft__deque_init(struct weft__deque *d, int64_t capacity, struct weft__mem *mem);
/* Frees the buffer and every retired one; no thread may use the deque any more. */
void weft__deque_destroy(struct weft__deque *d);

/* Out of line, for push: a buffer twice as large holding items t..b-1, or NULL. */
struct weft__deque_buf *weft__deque_grow(struct weft__deque *d, struct weft__deque_buf *old,
                                         int64_t t, int64_t b);

/* Owner only. 0, or -ENOMEM when growing failed (nothing pushed). The memory orders are
 * explained in deque.c. */
static inline int weft__deque_push(struct weft__deque *d, void *item)
{
    int64_t b = ld_relaxed(&d->bottom); /* relaxed: only the owner writes bottom */
    /* acquire pairs with the CAS on top in steal: slots below top are free to reuse once the
     * thief that took them has read them. */
    int64_t t = ld_acquire(&d->top);
    struct weft__deque_buf *a = ld_relaxed(&d->buf); /* relaxed: only the owner writes buf */
    WEFT_ASSERT(t <= b && b - t <= a->mask + 1);     /* never more items than slots */
    if (__builtin_expect(b - t > a->mask, 0)) {
        a = weft__deque_grow(d, a, t, b);
        if (a == NULL)
            return -ENOMEM;
    }
    st_relaxed(&a->slot[b & a->mask], item); /* published by the release below */
    /* release pairs with the seq_cst/acquire loads of bottom in steal and maybe_nonempty: a thief
     * that sees bottom > b sees the item and everything the owner wrote before pushing it. */
    st_release(&d->bottom, b + 1);
    return 0;
}

/* Owner only: push unless the buffer is full; never grows, never allocates. */
static inline bool weft__deque_try_push(struct weft__deque *d, void *item)
{
    int64_t b = ld_relaxed(&d->bottom);              /* relaxed: only the owner writes bottom */
    int64_t t = ld_acquire(&d->top);                 /* acquire: as in push */
    struct weft__deque_buf *a = ld_relaxed(&d->buf); /* relaxed: only the owner writes buf */
    if (__builtin_expect(b - t > a->mask, 0))
        return false;
    st_relaxed(&a->slot[b & a->mask], item); /* published by the release below */
    st_release(&d->bottom, b + 1);           /* release: as in push */
    return true;
}

/* Owner only. NULL when empty. */
static inline void *weft__deque_take(struct weft__deque *d)
{
    int64_t b = ld_relaxed(&d->bottom) - 1;          /* relaxed: only the owner writes bottom */
    struct weft__deque_buf *a = ld_relaxed(&d->buf); /* relaxed: only the owner writes buf */
    /* seq_cst store then seq_cst load of top: store-load order against steal's seq_cst load of
     * top then bottom. Either the thief sees the reserved bottom or the owner sees its CAS. */
    st_seq_cst(&d->bottom, b);
    int64_t t = ld_seq_cst(&d->top);
    WEFT_ASSERT(t <= b + 1); /* top passes bottom by one at most: an empty deque */
    void *x = NULL;
    if (__builtin_expect(t < b, 1)) {
        x = ld_relaxed(&a->slot[b & a->mask]); /* the owner's own write */
    } else if (t == b) {
        x = ld_relaxed(
            &a->slot[b & a->mask]); /* the owner's own write; kept only if the CAS wins */
        /* Last item: race the thieves for it. seq_cst pairs with steal's CAS. */
        if (!cas_seq_cst(&d->top, &t, t + 1))
            x = NULL;
        st_relaxed(&d->bottom, b + 1); /* relaxed: empty either way, top == b + 1 */
    } else {
        st_relaxed(&d->bottom, b + 1); /* relaxed: restores an empty deque, top == b + 1 */
    }
    return x;
}

#define WEFT_TAKE_OTHER ((void *)1)

/* Owner only: weft__deque_take, but only of `item`. Returns item when it took it, NULL when the
 * deque is empty (item was stolen), WEFT_TAKE_OTHER when another item is at the bottom (nothing
 * taken). The bottom slot is read first, without any barrier: it holds item or another item
 * when the deque is not empty, and an old value when it is empty, which take then finds. */
static inline void *weft__deque_take_if(struct weft__deque *d, const void *item)
{
    int64_t b = ld_relaxed(&d->bottom) - 1;          /* relaxed: only the owner writes bottom */
    struct weft__deque_buf *a = ld_relaxed(&d->buf); /* relaxed: only the owner writes buf */
    if (ld_relaxed(&a->slot[b & a->mask]) != item)   /* relaxed: the owner's own write */
        return WEFT_TAKE_OTHER;
    /* From here on, weft__deque_take: the same accesses in the same order. */
    st_seq_cst(&d->bottom, b);
    int64_t t = ld_seq_cst(&d->top);
    WEFT_ASSERT(t <= b + 1);
    if (__builtin_expect(t < b, 1))
        return (void *)item;
    void *x = NULL;
    /* Last item: race the thieves for it. seq_cst pairs with steal's CAS. */
    if (t == b && cas_seq_cst(&d->top, &t, t + 1))
        x = (void *)item;
    st_relaxed(&d->bottom, b + 1); /* relaxed: empty either way, top == b + 1 */
    return x;
}

/* Owner only: how many more items fit without growing. */
static inline size_t weft__deque_room(struct weft__deque *d)
{
    int64_t b = ld_relaxed(&d->bottom);              /* relaxed: only the owner writes bottom */
    int64_t t = ld_acquire(&d->top);                 /* acquire: as in push */
    struct weft__deque_buf *a = ld_relaxed(&d->buf); /* relaxed: only the owner writes buf */
    int64_t free_slots = a->mask + 1 - (b - t);
    return free_slots > 0 ? (size_t)free_slots : 0;
}

#define WEFT_STEAL_EMPTY NULL
#define WEFT_STEAL_ABORT ((void *)1)
#define WEFT_STEAL_ANY   INT64_MIN
/* Any thread. An item, WEFT_STEAL_EMPTY, or WEFT_STEAL_ABORT when it lost a race (retry).
 * Only an item at index min_top or above is taken (WEFT_STEAL_ANY: any); below it, the deque
 * counts as empty. Indices are those of weft__deque_bottom. */
void *weft__deque_steal(struct weft__deque *d, int64_t min_top);

/* Owner only: the index the next push will fill. */
static inline int64_t weft__deque_bottom(struct weft__deque *d)
{
    return ld_relaxed(&d->bottom); /* relaxed: only the owner writes bottom */
}

/* Any thread: a snapshot that is exact only when the deque is quiescent. */
static inline bool weft__deque_maybe_nonempty(struct weft__deque *d)
{
    /* acquire on bottom pairs with the release in weft__deque_push, acquire on top with the
     * CAS in steal/take: a task published before the caller's synchronization is seen. */
    int64_t t = ld_acquire(&d->top);
    int64_t b = ld_acquire(&d->bottom);
    return b > t;
}

#endif
