/* SPDX-License-Identifier: MIT */
/*
 * The split deque of lib/deque.h and lib/deque.c, transcribed for Relacy. Shared by
 * deque_relacy.cpp (which checks the deque) and park_relacy.cpp (whose workers use it).
 *
 * Every function below follows the lib/ function named in its comment statement for statement,
 * with the same memory order on every atomic access. The orders that are not relaxed are
 * parameters (struct DequeOrders) so that the negative tests can weaken one of them:
 *
 *   DequeOrders::publish_split deque.h publish               st_release(&d->split, b)
 *   DequeOrders::push_top      deque.h push, try_push, room  ld_acquire(&d->top)
 *   DequeOrders::push_split    deque.h push                  st_release(&d->split, b + 1)
 *   DequeOrders::take_split    deque.h take_shared           st_seq_cst(&d->split, b)
 *   DequeOrders::take_top      deque.h take_shared           ld_seq_cst(&d->top)
 *   DequeOrders::take_cas      deque.h take_shared           cas_seq_cst(&d->top, &t, t + 1)
 *   DequeOrders::take_repair_split  deque.h take_shared     st_release(&d->split, b + 1) (twice)
 *   DequeOrders::steal_top     deque.c steal                 ld_seq_cst(&d->top)
 *   DequeOrders::steal_split   deque.c steal                 ld_seq_cst(&d->split)
 *   DequeOrders::steal_buf     deque.c steal                 ld_acquire(&d->buf)
 *   DequeOrders::steal_cas     deque.c steal                 cas_seq_cst(&d->top, &t, t + 1)
 *   DequeOrders::grow_buf      deque.c grow                  st_release(&d->buf, nb)
 *   (maybe_nonempty, deque.h: ld_acquire(&d->top) then ld_acquire(&d->split), and
 *   owner_nonempty's ld_acquire(&d->top), are not varied.)
 * Every other atomic access is relaxed in lib/ and here: the owner's loads of bottom, split and
 * buf, the slot stores and loads, grow's copy, the private push's and take's stores of bottom,
 * take_shared's store of bottom. cas_seq_cst's failure order is
 * relaxed (atomic.h).
 *
 * Two switches, not orders, break the algorithm for the negative tests: take_repair (false:
 * take_shared leaves split lowered when the deque turns out empty or it raced for the last
 * item) and take_private_any (true: take takes the bottom item privately even when it is
 * shared, without the CAS). lib/ is DequeOrders: take_repair true, take_private_any false.
 *
 * Deviations (none changes the algorithm): the capacity is a parameter of init (lib/ rounds it
 * up to at least 16), at most MODEL_MAX_CAP; allocation never fails; new buffers' slots are
 * stored NULL unless g_uninit_slots (see deque_relacy.cpp). The buffer's mask, a plain field in
 * lib/, is an rl::var here, so Relacy checks that thieves read it only after it was published.
 * The owner's copies d->slot and d->mask are plain fields as in lib/, assigned by owner_view()
 * (check_drift.py reads an assignment to a name it knows as an rl::atomic as an implicit access).
 */
#ifndef WEFT_MODEL_DEQUE_MODEL_H
#define WEFT_MODEL_DEQUE_MODEL_H

#include <cstdint>

#include "model_runner.h" /* the standard headers, then Relacy */

namespace model
{

/* The orders of lib/. */
struct DequeOrders {
    static const rl::memory_order publish_split = rl::mo_release;
    static const rl::memory_order push_top = rl::mo_acquire;
    static const rl::memory_order push_split = rl::mo_release;
    static const rl::memory_order take_split = rl::mo_seq_cst;
    static const rl::memory_order take_top = rl::mo_seq_cst;
    static const rl::memory_order take_cas = rl::mo_seq_cst;
    static const rl::memory_order take_repair_split = rl::mo_release;
    static const rl::memory_order steal_top = rl::mo_seq_cst;
    static const rl::memory_order steal_split = rl::mo_seq_cst;
    static const rl::memory_order steal_buf = rl::mo_acquire;
    static const rl::memory_order steal_cas = rl::mo_seq_cst;
    static const rl::memory_order grow_buf = rl::mo_release;
    /* lib/ keeps old buffers on the retired list until destroy */
    static const bool free_old_buffer = false;
    /* lib/'s take_shared restores split when the deque is empty after it */
    static const bool take_repair = true;
    /* lib/'s take takes privately only at or above split */
    static const bool take_private_any = false;
};

const int MODEL_MAX_CAP = 16;

/* deque.h: a push shares every private item while fewer than this many are shared */
const int64_t WEFT_KEEP_SHARED = 2;

/* deque.c buf_new: false (lib/) would leave the slots of a new buffer unwritten. */
inline bool g_uninit_slots = false;

/* struct weft__deque_buf */
template <class T> struct DequeBuf {
    rl::var<int64_t> mask; /* capacity - 1 */
    DequeBuf *retired;     /* owner only */
    rl::atomic<T *> slot[MODEL_MAX_CAP];
};

/* deque.c buf_new */
template <class T> DequeBuf<T> *buf_new(int64_t capacity)
{
    RL_ASSERT(capacity <= MODEL_MAX_CAP);
    DequeBuf<T> *b = new DequeBuf<T>;
    b->mask($) = capacity - 1;
    b->retired = nullptr;
    if (!g_uninit_slots) {
        for (int64_t i = 0; i < capacity; i++)
            b->slot[i].store(nullptr, rl::mo_relaxed, $); /* model only, see above */
    }
    return b;
}

/* WEFT_STEAL_EMPTY, WEFT_STEAL_ABORT, WEFT_TAKE_OTHER */
template <class T> T *steal_empty()
{
    return nullptr;
}
template <class T> T *steal_abort()
{
    return reinterpret_cast<T *>(uintptr_t(1));
}
template <class T> T *take_other()
{
    return reinterpret_cast<T *>(uintptr_t(1));
}

/* struct weft__deque and its functions */
template <class O, class T> struct Deque {
    typedef DequeBuf<T> Buf;
    rl::atomic<int64_t> top;
    rl::atomic<int64_t> bottom;
    rl::atomic<int64_t> split;
    rl::atomic<T *> *slot; /* the owner's copies of buf->slot and buf->mask */
    int64_t mask;
    rl::atomic<uint64_t> forks; /* statistics: weft_offer's inline pushes (weft.h) */
    rl::atomic<Buf *> buf;

    /* d->slot = b->slot; d->mask = b->mask; (see the header) */
    void owner_view(Buf *b)
    {
        slot = b->slot;
        mask = b->mask($);
    }

    /* weft__deque_init */
    void init(int64_t capacity)
    {
        Buf *b = buf_new<T>(capacity);
        top.store(0, rl::mo_relaxed, $);    /* atomic_init */
        bottom.store(0, rl::mo_relaxed, $); /* atomic_init */
        split.store(0, rl::mo_relaxed, $);  /* atomic_init */
        forks.store(0, rl::mo_relaxed, $);  /* atomic_init */
        owner_view(b);
        buf.store(b, rl::mo_relaxed, $); /* atomic_init */
    }

    /* weft__deque_destroy */
    void destroy()
    {
        Buf *b = buf.load(rl::mo_relaxed, $);
        while (b != nullptr) {
            Buf *next = b->retired;
            delete b;
            b = next;
        }
        buf.store(nullptr, rl::mo_relaxed, $);
    }

    /* weft__deque_grow */
    Buf *grow(Buf *old, int64_t t, int64_t b)
    {
        int64_t old_mask = old->mask($);
        Buf *nb = buf_new<T>((old_mask + 1) * 2);
        int64_t nmask = nb->mask($);
        for (int64_t i = t; i < b; i++)
            nb->slot[i & nmask].store(old->slot[i & old_mask].load(rl::mo_relaxed, $),
                                      rl::mo_relaxed, $);
        if (O::free_old_buffer) {
            nb->retired = old->retired; /* negative test: old is freed while thieves may read it */
            delete old;
        } else {
            nb->retired = old;
        }
        owner_view(nb); /* the owner's copies */
        buf.store(nb, O::grow_buf, $);
        return nb;
    }

    /* weft__deque_publish */
    void publish()
    {
        int64_t b = bottom.load(rl::mo_relaxed, $);
        split.store(b, O::publish_split, $);
    }

    /* weft__deque_push (never fails here) */
    void push(T *item)
    {
        int64_t b = bottom.load(rl::mo_relaxed, $);
        int64_t t = top.load(O::push_top, $);
        Buf *a = buf.load(rl::mo_relaxed, $);
        RL_ASSERT(t <= b && b - t <= a->mask($) + 1);
        if (b - t > a->mask($))
            a = grow(a, t, b);
        a->slot[b & a->mask($)].store(item, rl::mo_relaxed, $);
        bottom.store(b + 1, rl::mo_relaxed, $);
        split.store(b + 1, O::push_split, $);
    }

    /* weft__deque_try_push: 0 full, 1 pushed, 2 pushed and the shared part was empty */
    int try_push(T *item)
    {
        int64_t b = bottom.load(rl::mo_relaxed, $);
        int64_t t = top.load(O::push_top, $);
        int64_t m = mask;
        if (b - t > m)
            return 0;
        slot[b & m].store(item, rl::mo_relaxed, $);
        bottom.store(b + 1, rl::mo_relaxed, $);
        return t + WEFT_KEEP_SHARED <= split.load(rl::mo_relaxed, $) ? 1 : 2;
    }

    /* weft__deque_take_shared */
    T *take_shared(int64_t b)
    {
        split.store(b, O::take_split, $);
        int64_t t = top.load(O::take_top, $);
        RL_ASSERT(t <= b + 1);
        T *x = nullptr;
        if (t < b) {
            x = slot[b & mask].load(rl::mo_relaxed, $);
            bottom.store(b, rl::mo_relaxed, $);
        } else if (t == b) {
            x = slot[b & mask].load(rl::mo_relaxed, $);
            if (!top.compare_exchange_strong(t, t + 1, O::take_cas, $, rl::mo_relaxed, $))
                x = nullptr;
            if (O::take_repair)
                split.store(b + 1, O::take_repair_split, $);
        } else {
            if (O::take_repair)
                split.store(b + 1, O::take_repair_split, $);
        }
        return x;
    }

    /* weft__deque_take */
    T *take()
    {
        int64_t b = bottom.load(rl::mo_relaxed, $) - 1;
        if (O::take_private_any || b >= split.load(rl::mo_relaxed, $)) {
            bottom.store(b, rl::mo_relaxed, $);
            return slot[b & mask].load(rl::mo_relaxed, $);
        }
        return take_shared(b);
    }

    /* weft__deque_take_if: item, NULL (empty: item was stolen) or take_other() */
    T *take_if(const T *item)
    {
        int64_t b = bottom.load(rl::mo_relaxed, $) - 1;
        if (slot[b & mask].load(rl::mo_relaxed, $) != item)
            return take_other<T>();
        if (b >= split.load(rl::mo_relaxed, $)) {
            bottom.store(b, rl::mo_relaxed, $);
            return const_cast<T *>(item);
        }
        return take_shared(b);
    }

    /* weft__deque_room */
    int64_t room()
    {
        int64_t b = bottom.load(rl::mo_relaxed, $);
        int64_t t = top.load(O::push_top, $);
        int64_t free_slots = mask + 1 - (b - t);
        return free_slots > 0 ? free_slots : 0;
    }

    /* weft__deque_has_private */
    bool has_private()
    {
        return bottom.load(rl::mo_relaxed, $) > split.load(rl::mo_relaxed, $);
    }

    /* weft__deque_steal, with min_top WEFT_STEAL_ANY (as every caller the models have) */
    T *steal()
    {
        int64_t t = top.load(O::steal_top, $);
        int64_t s = split.load(O::steal_split, $);
        if (t >= s)
            return steal_empty<T>();
        Buf *a = buf.load(O::steal_buf, $);
        T *x = a->slot[t & a->mask($)].load(rl::mo_relaxed, $);
        if (!top.compare_exchange_strong(t, t + 1, O::steal_cas, $, rl::mo_relaxed, $))
            return steal_abort<T>();
        return x;
    }

    /* weft__deque_maybe_nonempty */
    bool maybe_nonempty()
    {
        int64_t t = top.load(rl::mo_acquire, $);
        int64_t s = split.load(rl::mo_acquire, $);
        return s > t;
    }

    /* weft__deque_owner_nonempty */
    bool owner_nonempty()
    {
        int64_t t = top.load(rl::mo_acquire, $);
        return bottom.load(rl::mo_relaxed, $) > t;
    }
};

} // namespace model

#endif
