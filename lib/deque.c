/* SPDX-License-Identifier: MIT */
/*
 * The split deque of van Dijk and van de Pol ("Lace: non-blocking split deque for
 * work-stealing", Euro-Par 2014 workshops), built on the deque of Chase and Lev ("Dynamic
 * circular work-stealing deque", SPAA 2005) with the C11 memory orders proven correct by Lê,
 * Pop, Cohen and Zappa Nardelli ("Correct and efficient work-stealing for weak memory models",
 * PPoPP 2013, figure 1).
 *
 * The owner pushes and takes at `bottom`; thieves steal at `top`, but only below `split`:
 * items [top, split) are shared, [split, bottom) private. Only the owner moves split. Indices
 * are signed 64-bit and only grow (top) or move by one (bottom), so they never wrap in
 * practice. Items live in slot[i & mask] of a circular buffer.
 *
 * The owner's private part costs no fence and no atomic read-modify-write: a private push is a
 * store of the slot and of bottom, a private take a load of split and bottom and a store of
 * bottom. Publishing (split = bottom, a release store) makes every private item shared, and is
 * a plain store on x86-64. Only taking back a shared item pays Chase and Lev's price, with
 * split in the role of their bottom: the owner lowers split (seq_cst store) and reads top
 * (seq_cst load), and races the thieves with a CAS on top for the last one. This is Lace's
 * design; weft's differs in three ways:
 *  - Lace grows the shared part when a thief asks (a flag) and shrinks it to the middle when the
 *    owner reaches it. Here the owner publishes every private item when it pushes and finds
 *    fewer than WEFT_KEEP_SHARED (2) items shared (thieves took them: they want work), and a
 *    shared item stays shared until it is taken: no flag, and nothing a thief wrote is ever
 *    made private again. Two rather than one: a frame pushed while one older item is shared is
 *    shared too, so that a second thief can take it while the owner runs a long part that
 *    pushes nothing (weft_join(long_a, b) after a scope spawn: with one, b stayed private until
 *    long_a returned). The owner still cannot share what it pushed while two older items were
 *    shared until it pushes again or waits (weft__help shares everything): the price of a
 *    private part that costs no fence, which Lace pays too.
 *  - Lace's tail and split share one word, and its owner writes half of it with a plain
 *    store. Here top and split are separate words, as Chase and Lev's top and bottom are, so
 *    that every access is a C11 atomic access that ThreadSanitizer and Relacy check.
 *  - The items are pointers to frames that live elsewhere (the offering thread's stack), so
 *    the deque is Chase and Lev's circular buffer, and thieves read the slot before their CAS.
 *
 * Invariants:
 *  - top <= split <= bottom, except inside take_shared between the seq_cst store of split and
 *    its repair, where top may pass split by one; thieves then see an empty deque.
 *  - Only the owner writes bottom, split and buf; top only increases, by CAS.
 *  - An index i is handed out at most once: to a thief by CAS(top, i, i+1) after it saw
 *    i < split; to the owner by take, privately when i >= split (no thief takes an index at or
 *    above split, and split only moves down in take_shared, where Chase and Lev's argument
 *    holds), or, for the last shared item, by winning CAS(top) too.
 *
 * Linearization points: a private push or take at its store to bottom (no other thread can
 * observe it); publish and push at the store to split; steal at its successful CAS on top; a
 * shared take at the store to split (several items) or at its CAS on top (last item).
 *
 * Deviation from the paper, for ThreadSanitizer (which does not model standalone fences):
 *  - publishing is a release store of split instead of fence(release) + relaxed store.
 *  - take_shared's store of split and load of top, and steal's loads of top and split, are
 *    seq_cst accesses instead of relaxed/acquire accesses around a seq_cst fence. The seq_cst
 *    total order gives the same store-load ordering the fences give (a thief and the owner
 *    cannot both miss each other's update), and on x86-64 it compiles to the same code (xchg for
 *    the store instead of mov + mfence).
 *
 * push, try_push and take are inline in deque.h, since they are most of what a fork-join costs;
 * weft.h repeats try_push's and take's private cases for weft_offer and weft_reclaim.
 *
 * Growth: when full, the owner copies the live items into a buffer twice as large and publishes
 * it with a release store. The old buffer is kept on the `retired` list until the deque is
 * destroyed, because a thief may still be reading a slot of it; a thief that read an item from
 * an old buffer keeps it only if its CAS on top succeeds, and then the item is the same in both.
 * Only push grows (a shared item: submitted tasks); try_push, for frames, never does.
 */
#include "deque.h"

#include "alloc.h"

#include <errno.h>

static struct weft__deque_buf *buf_new(struct weft__mem *mem, int64_t capacity)
{
    /* Zeroed: a thief racing a growth may read a slot of the new buffer that the owner has not
     * written (its CAS then fails and the value is dropped); it should read something defined. */
    struct weft__deque_buf *b =
        weft__mem_alloc(mem, 0, sizeof(*b) + (size_t)capacity * sizeof(_Atomic(void *)));
    if (b == NULL)
        return NULL;
    b->mask = capacity - 1;
    b->retired = NULL;
    return b;
}

int weft__deque_init(struct weft__deque *d, int64_t capacity, struct weft__mem *mem)
{
    d->mem = mem;
    int64_t cap = 16;
    while (cap < capacity)
        cap <<= 1;
    struct weft__deque_buf *b = buf_new(mem, cap);
    if (b == NULL)
        return -ENOMEM;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->split, 0);
    atomic_init(&d->forks, 0);
    d->slot = b->slot;
    d->mask = b->mask;
    atomic_init(&d->buf, b);
    return 0;
}

void weft__deque_destroy(struct weft__deque *d)
{
    struct weft__deque_buf *b = ld_relaxed(&d->buf); /* no other thread is left */
    while (b != NULL) {
        struct weft__deque_buf *next = b->retired;
        weft__mem_free(d->mem, b);
        b = next;
    }
    st_relaxed(&d->buf, NULL);
}

__attribute__((noinline, cold)) struct weft__deque_buf *
weft__deque_grow(struct weft__deque *d, struct weft__deque_buf *old, int64_t t, int64_t b)
{
    WEFT_ASSERT(b - t == old->mask + 1); /* grows only when full */
    struct weft__deque_buf *nb = buf_new(d->mem, (old->mask + 1) * 2);
    if (nb == NULL)
        return NULL;
    for (int64_t i = t; i < b; i++) {
        /* relaxed: the owner wrote these slots itself */
        st_relaxed(&nb->slot[i & nb->mask], ld_relaxed(&old->slot[i & old->mask]));
    }
    nb->retired = old;
    d->slot = nb->slot; /* the owner's copies */
    d->mask = nb->mask;
    /* release pairs with the acquire load of buf in weft__deque_steal: a thief that sees the
     * new buffer sees the copied slots. */
    st_release(&d->buf, nb);
    return nb;
}

void *weft__deque_steal(struct weft__deque *d, int64_t min_top)
{
    /* seq_cst loads: see the comment in take_shared. The load of split also acquires the
     * owner's release store in push or publish, which publishes the slot contents. */
    int64_t t = ld_seq_cst(&d->top);
    int64_t s = ld_seq_cst(&d->split);
    if (t >= s || t < min_top) /* the CAS below hands out index t only if top is still t */
        return WEFT_STEAL_EMPTY;
    /* acquire pairs with the release store in grow (the paper's consume). */
    struct weft__deque_buf *a = ld_acquire(&d->buf);
    void *x = ld_relaxed(&a->slot[t & a->mask]); /* published by the release store of split */
    /* seq_cst CAS pairs with the owner's CAS in take and with other thieves: index t is handed
     * out once. */
    if (!cas_seq_cst(&d->top, &t, t + 1))
        return WEFT_STEAL_ABORT;
    return x;
}
