/*
 * Chase-Lev work-stealing deque, single owner, many thieves.
 * See deque.c for the algorithm, its source and its invariants.
 */
#ifndef WEFT_DEQUE_H
#define WEFT_DEQUE_H

#include "atomic.h"

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
    char pad_[WEFT_CACHE_LINE - sizeof(_Atomic int64_t) - sizeof(void *)];
};

_Static_assert(sizeof(struct weft__deque) == 2 * WEFT_CACHE_LINE,
               "top and bottom must sit on separate cache lines: fix pad_");

/* Returns 0 or -ENOMEM. */
int weft__deque_init(struct weft__deque *d, int64_t capacity);
/* Frees the buffer and every retired one; no thread may use the deque any more. */
void weft__deque_destroy(struct weft__deque *d);

/* Owner only. 0, or -ENOMEM when growing failed (nothing pushed). */
int weft__deque_push(struct weft__deque *d, void *item);
/* Owner only. NULL when empty. */
void *weft__deque_take(struct weft__deque *d);

/* Owner only: how many more items fit without growing. */
static inline size_t weft__deque_room(struct weft__deque *d)
{
    int64_t b = ld_relaxed(&d->bottom); /* relaxed: only the owner writes bottom */
    int64_t t = ld_acquire(&d->top);    /* acquire: as in push */
    struct weft__deque_buf *a = ld_relaxed(&d->buf);
    int64_t free_slots = a->mask + 1 - (b - t);
    return free_slots > 0 ? (size_t)free_slots : 0;
}

#define WEFT_STEAL_EMPTY NULL
#define WEFT_STEAL_ABORT ((void *)1)
/* Any thread. An item, WEFT_STEAL_EMPTY, or WEFT_STEAL_ABORT when it lost a race (retry). */
void *weft__deque_steal(struct weft__deque *d);

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
