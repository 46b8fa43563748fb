/* SPDX-License-Identifier: MIT */
/*
 * A split work-stealing deque: single owner, many thieves; a private part only the owner
 * touches and a shared part thieves steal from. See deque.c for the algorithm, its sources and
 * its invariants.
 */
#ifndef WEFT_DEQUE_H
#define WEFT_DEQUE_H

#include "alloc.h"
#include "atomic.h"
#include "platform.h"

#include "weft.h" /* struct weft__fjq, the owner's view weft_offer and weft_reclaim read inline */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A push keeps the shared part at least this long: while it holds fewer items, a push shares
 * every private one (deque.c). weft.h defines it, since its inline weft_offer applies it too. */
#define WEFT_KEEP_SHARED WEFT__KEEP_SHARED

struct weft__deque_buf {
    int64_t mask;                    /* capacity - 1; capacity is a power of two */
    struct weft__deque_buf *retired; /* older buffers, kept until the deque is destroyed */
    _Atomic(void *) slot[];
};

struct weft__deque {
    /* Written by thieves (CAS) and by the owner when it takes the last shared item. */
    WEFT_ALIGNED _Atomic int64_t top;
    /* The owner's line. bottom and split are written by the owner only; thieves read split,
     * and others read bottom only as a hint. Items [top, split) are shared, [split, bottom)
     * private. */
    WEFT_ALIGNED _Atomic int64_t bottom;
    _Atomic int64_t split;
    _Atomic(void *) *slot;  /* the owner's copies of buf->slot and buf->mask: the */
    int64_t mask;           /* inline offer reads them without reaching into buf */
    _Atomic uint64_t forks; /* frames weft_offer pushed inline (the owner counts) */
    _Atomic(struct weft__deque_buf *) buf;
    struct weft__mem *mem; /* where its buffers come from: the pool's allocator */
    char pad_[WEFT_CACHE_LINE - 3 * sizeof(_Atomic int64_t) - 4 * sizeof(void *)];
};

_Static_assert(sizeof(struct weft__deque) == 2 * WEFT_CACHE_LINE,
               "top and bottom must sit on separate cache lines: fix pad_");
/* weft.h's inline weft_offer and weft_reclaim read the deque through struct weft__fjq: */
_Static_assert(offsetof(struct weft__deque, top) == offsetof(struct weft__fjq, top) &&
                   offsetof(struct weft__deque, bottom) == offsetof(struct weft__fjq, bottom) &&
                   offsetof(struct weft__deque, split) == offsetof(struct weft__fjq, split) &&
                   offsetof(struct weft__deque, slot) == offsetof(struct weft__fjq, slot) &&
                   offsetof(struct weft__deque, mask) == offsetof(struct weft__fjq, mask) &&
                   offsetof(struct weft__deque, forks) == offsetof(struct weft__fjq, forks) &&
                   sizeof(_Atomic int64_t) == sizeof(int64_t) &&
                   sizeof(_Atomic(void *)) == sizeof(void *),
               "struct weft__fjq in weft.h must mirror struct weft__deque");

/* Returns 0 or -ENOMEM. Buffers come from mem (the pool's allocator, alloc.h). */
int weft__deque_init(struct weft__deque *d, int64_t capacity, struct weft__mem *mem);
/* Frees the buffer and every retired one; no thread may use the deque any more. */
void weft__deque_destroy(struct weft__deque *d);

/* Out of line, for push: a buffer twice as large holding items t..b-1, or NULL. */
struct weft__deque_buf *weft__deque_grow(struct weft__deque *d, struct weft__deque_buf *old,
                                         int64_t t, int64_t b);

/* Owner only: makes every private item shared. The caller has made them ready for a thief. */
static inline void weft__deque_publish(struct weft__deque *d)
{
    int64_t b = ld_relaxed(&d->bottom); /* relaxed: only the owner writes bottom */
    /* release pairs with the seq_cst load of split in steal (and the acquire in
     * maybe_nonempty): a thief that sees split > i sees item i and everything the owner wrote
     * before publishing it. */
    st_release(&d->split, b);
}

/* Owner only: pushes a shared item (every private one below it becomes shared too: the caller
 * has made them ready for a thief). 0, or -ENOMEM when growing failed (nothing pushed). */
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
    st_relaxed(&d->bottom, b + 1);           /* relaxed: a hint for others; split decides */
    /* release pairs with the seq_cst load of split in steal and the acquire in maybe_nonempty:
     * a thief that sees split > b sees the item and everything written before it. */
    st_release(&d->split, b + 1);
    return 0;
}

/* Owner only: pushes a private item unless the buffer is full (never grows, never allocates).
 * 1: pushed, and the shared part holds WEFT_KEEP_SHARED items or more; 2: pushed, and it held
 * fewer when it looked (thieves may want work: the caller publishes); 0: full, nothing pushed.
 * weft.h's inline weft_offer is this function's first case. */
static inline int weft__deque_try_push(struct weft__deque *d, void *item)
{
    int64_t b = ld_relaxed(&d->bottom); /* relaxed: only the owner writes bottom */
    int64_t t = ld_acquire(&d->top);    /* acquire: as in push */
    int64_t mask = d->mask;             /* only the owner writes it (grow) */
    if (__builtin_expect(b - t > mask, 0))
        return 0;
    st_relaxed(&d->slot[b & mask], item); /* private: no thief reads it before a publish */
    st_relaxed(&d->bottom, b + 1);        /* relaxed: a hint for others; split decides */
    /* relaxed: only the owner writes split */
    return t + WEFT_KEEP_SHARED <= ld_relaxed(&d->split) ? 1 : 2;
}

/* Owner only, the shared part of take: item b (bottom - 1 == split - 1) is shared. Chase and
 * Lev's take with split in the role of bottom. */
static inline void *weft__deque_take_shared(struct weft__deque *d, int64_t b)
{
    /* seq_cst store then seq_cst load of top: store-load order against steal's seq_cst load of
     * top then split. Either the thief sees the lowered split or the owner sees its CAS. */
    st_seq_cst(&d->split, b);
    int64_t t = ld_seq_cst(&d->top);
    WEFT_ASSERT(t <= b + 1); /* top passes split by one at most: an empty deque */
    void *x = NULL;
    if (__builtin_expect(t < b, 1)) {
        x = ld_relaxed(&d->slot[b & d->mask]); /* the owner's own write */
        st_relaxed(&d->bottom, b);             /* relaxed: a hint for others */
    } else if (t == b) {
        x = ld_relaxed(&d->slot[b & d->mask]); /* the owner's own write; kept if the CAS wins */
        /* Last item: race the thieves for it. seq_cst pairs with steal's CAS. */
        if (!cas_seq_cst(&d->top, &t, t + 1))
            x = NULL;
        /* release: empty either way, top == b + 1, and bottom is still b + 1; release rather
         * than relaxed so that a thief's seq_cst load of this value synchronizes with the owner
         * as with any other store of split (no reliance on release sequences continued by
         * plain stores, which C++20 dropped); a plain store on x86-64 all the same */
        st_release(&d->split, b + 1);
    } else {
        st_release(&d->split, b + 1); /* release: restores an empty deque, top == b + 1; as above */
    }
    return x;
}

/* Owner only. NULL when empty. A private item costs two plain loads and a plain store. */
static inline void *weft__deque_take(struct weft__deque *d)
{
    int64_t b = ld_relaxed(&d->bottom) - 1; /* relaxed: only the owner writes bottom */
    if (__builtin_expect(b >= ld_relaxed(&d->split), 1)) { /* relaxed: the owner's own */
        st_relaxed(&d->bottom, b);                         /* relaxed: private, a hint for others */
        return ld_relaxed(&d->slot[b & d->mask]);          /* the owner's own write */
    }
    return weft__deque_take_shared(d, b);
}

#define WEFT_TAKE_OTHER ((void *)1)

/* Owner only: weft__deque_take, but only of `item`. Returns item when it took it, NULL when the
 * deque is empty (item was stolen), WEFT_TAKE_OTHER when another item is at the bottom (nothing
 * taken). The bottom slot is read first, without any barrier: it holds item or another item
 * when the deque is not empty, and an old value when it is empty, which take then finds. */
static inline void *weft__deque_take_if(struct weft__deque *d, const void *item)
{
    int64_t b = ld_relaxed(&d->bottom) - 1;        /* relaxed: only the owner writes bottom */
    if (ld_relaxed(&d->slot[b & d->mask]) != item) /* relaxed: the owner's own write */
        return WEFT_TAKE_OTHER;
    /* From here on, weft__deque_take. */
    if (__builtin_expect(b >= ld_relaxed(&d->split), 1)) { /* relaxed: the owner's own */
        st_relaxed(&d->bottom, b);                         /* relaxed: private, a hint for others */
        return (void *)item;
    }
    return weft__deque_take_shared(d, b);
}

/* Owner only: how many more items fit without growing. */
static inline size_t weft__deque_room(struct weft__deque *d)
{
    int64_t b = ld_relaxed(&d->bottom); /* relaxed: only the owner writes bottom */
    int64_t t = ld_acquire(&d->top);    /* acquire: as in push */
    int64_t free_slots = d->mask + 1 - (b - t);
    return free_slots > 0 ? (size_t)free_slots : 0;
}

/* Owner only: whether it holds private items. */
static inline bool weft__deque_has_private(struct weft__deque *d)
{
    /* relaxed: only the owner writes both */
    return ld_relaxed(&d->bottom) > ld_relaxed(&d->split);
}

#define WEFT_STEAL_EMPTY NULL
#define WEFT_STEAL_ABORT ((void *)1)
#define WEFT_STEAL_ANY   INT64_MIN
/* Any thread. A shared item, WEFT_STEAL_EMPTY, or WEFT_STEAL_ABORT when it lost a race (retry).
 * Only an item at index min_top or above is taken (WEFT_STEAL_ANY: any); below it, the deque
 * counts as empty. Indices are those of weft__deque_bottom. */
void *weft__deque_steal(struct weft__deque *d, int64_t min_top);

/* Owner only: the index the next push will fill. */
static inline int64_t weft__deque_bottom(struct weft__deque *d)
{
    return ld_relaxed(&d->bottom); /* relaxed: only the owner writes bottom */
}

/* Any thread: whether the shared part holds items (what a thief could take). A snapshot that
 * is exact only when the deque is quiescent. */
static inline bool weft__deque_maybe_nonempty(struct weft__deque *d)
{
    /* acquire on split pairs with the release stores in push and publish, acquire on top with
     * the CAS in steal/take: a task published before the caller's synchronization is seen. */
    int64_t t = ld_acquire(&d->top);
    int64_t s = ld_acquire(&d->split);
    return s > t;
}

/* Owner only: whether it holds any item, shared or private. */
static inline bool weft__deque_owner_nonempty(struct weft__deque *d)
{
    int64_t t = ld_acquire(&d->top);   /* acquire: as in maybe_nonempty */
    return ld_relaxed(&d->bottom) > t; /* relaxed: only the owner writes bottom */
}

#endif
