/* SPDX-License-Identifier: MIT */
/*
 * The Chase-Lev deque of lib/deque.h and lib/deque.c, transcribed for Relacy. Shared by
 * deque_relacy.cpp (which checks the deque) and park_relacy.cpp (whose workers use it).
 *
 * Every function below follows the lib/ function named in its comment statement for statement,
 * with the same memory order on every atomic access. The orders that are not relaxed are
 * parameters (struct DequeOrders) so that the negative tests can weaken one of them:
 *
 *   DequeOrders::push_top      deque.h push, try_push, room  ld_acquire(&d->top)
 *   DequeOrders::push_bottom   deque.h push, try_push        st_release(&d->bottom, b + 1)
 *   DequeOrders::take_bottom   deque.h take                  st_seq_cst(&d->bottom, b)
 *   DequeOrders::take_top      deque.h take                  ld_seq_cst(&d->top)
 *   DequeOrders::take_cas      deque.h take                  cas_seq_cst(&d->top, &t, t + 1)
 *   DequeOrders::steal_top     deque.c steal                 ld_seq_cst(&d->top)
 *   DequeOrders::steal_bottom  deque.c steal                 ld_seq_cst(&d->bottom)
 *   DequeOrders::steal_buf     deque.c steal                 ld_acquire(&d->buf)
 *   DequeOrders::steal_cas     deque.c steal                 cas_seq_cst(&d->top, &t, t + 1)
 *   DequeOrders::grow_buf      deque.c grow                  st_release(&d->buf, nb)
 *   (maybe_nonempty, deque.h: ld_acquire(&d->top) then ld_acquire(&d->bottom), not varied.)
 * Every other atomic access is relaxed in lib/ and here: the owner's loads of bottom and buf,
 * the slot stores and loads, grow's copy, take's two restoring stores of bottom. cas_seq_cst's
 * failure order is relaxed (atomic.h).
 *
 * Deviations (none changes the algorithm): the capacity is a parameter of init (lib/ rounds it
 * up to at least 16), at most MODEL_MAX_CAP; allocation never fails; new buffers' slots are
 * stored NULL unless g_uninit_slots (lib/'s buf_new leaves them uninitialised; see
 * deque_relacy.cpp). The buffer's mask is a plain field in lib/, an rl::var here, so Relacy checks
 * that thieves read it only after it was published.
 */
#ifndef WEFT_MODEL_DEQUE_MODEL_H
#define WEFT_MODEL_DEQUE_MODEL_H

#include <cstdint>

#include "model_runner.h" /* the standard headers, then Relacy */

namespace model
{

/* The orders of lib/. */
struct DequeOrders {
    static const rl::memory_order push_top = rl::mo_acquire;
    static const rl::memory_order push_bottom = rl::mo_release;
    static const rl::memory_order take_bottom = rl::mo_seq_cst;
    static const rl::memory_order take_top = rl::mo_seq_cst;
    static const rl::memory_order take_cas = rl::mo_seq_cst;
    static const rl::memory_order steal_top = rl::mo_seq_cst;
    static const rl::memory_order steal_bottom = rl::mo_seq_cst;
    static const rl::memory_order steal_buf = rl::mo_acquire;
    static const rl::memory_order steal_cas = rl::mo_seq_cst;
    static const rl::memory_order grow_buf = rl::mo_release;
    /* lib/ keeps old buffers on the retired list until destroy */
    static const bool free_old_buffer = false;
};

const int MODEL_MAX_CAP = 16;

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

/* WEFT_STEAL_EMPTY, WEFT_STEAL_ABORT */
template <class T> T *steal_empty()
{
    return nullptr;
}
template <class T> T *steal_abort()
{
    return reinterpret_cast<T *>(uintptr_t(1));
}

/* struct weft__deque and its functions */
template <class O, class T> struct Deque {
    typedef DequeBuf<T> Buf;
    rl::atomic<int64_t> top;
    rl::atomic<int64_t> bottom;
    rl::atomic<Buf *> buf;

    /* weft__deque_init */
    void init(int64_t capacity)
    {
        Buf *b = buf_new<T>(capacity);
        top.store(0, rl::mo_relaxed, $);    /* atomic_init */
        bottom.store(0, rl::mo_relaxed, $); /* atomic_init */
        buf.store(b, rl::mo_relaxed, $);    /* atomic_init */
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
        buf.store(nb, O::grow_buf, $);
        return nb;
    }

    /* weft__deque_push (never fails here) */
    void push(T *item)
    {
        int64_t b = bottom.load(rl::mo_relaxed, $);
        int64_t t = top.load(O::push_top, $);
        Buf *a = buf.load(rl::mo_relaxed, $);
        if (b - t > a->mask($))
            a = grow(a, t, b);
        a->slot[b & a->mask($)].store(item, rl::mo_relaxed, $);
        bottom.store(b + 1, O::push_bottom, $);
    }

    /* weft__deque_try_push */
    bool try_push(T *item)
    {
        int64_t b = bottom.load(rl::mo_relaxed, $);
        int64_t t = top.load(O::push_top, $);
        Buf *a = buf.load(rl::mo_relaxed, $);
        if (b - t > a->mask($))
            return false;
        a->slot[b & a->mask($)].store(item, rl::mo_relaxed, $);
        bottom.store(b + 1, O::push_bottom, $);
        return true;
    }

    /* weft__deque_take */
    T *take()
    {
        int64_t b = bottom.load(rl::mo_relaxed, $) - 1;
        Buf *a = buf.load(rl::mo_relaxed, $);
        bottom.store(b, O::take_bottom, $);
        int64_t t = top.load(O::take_top, $);
        T *x = nullptr;
        if (t < b) {
            x = a->slot[b & a->mask($)].load(rl::mo_relaxed, $);
        } else if (t == b) {
            x = a->slot[b & a->mask($)].load(rl::mo_relaxed, $);
            if (!top.compare_exchange_strong(t, t + 1, O::take_cas, $, rl::mo_relaxed, $))
                x = nullptr;
            bottom.store(b + 1, rl::mo_relaxed, $);
        } else {
            bottom.store(b + 1, rl::mo_relaxed, $);
        }
        return x;
    }

    /* weft__deque_room */
    int64_t room()
    {
        int64_t b = bottom.load(rl::mo_relaxed, $);
        int64_t t = top.load(O::push_top, $);
        Buf *a = buf.load(rl::mo_relaxed, $);
        int64_t free_slots = a->mask($) + 1 - (b - t);
        return free_slots > 0 ? free_slots : 0;
    }

    /* weft__deque_steal */
    T *steal()
    {
        int64_t t = top.load(O::steal_top, $);
        int64_t b = bottom.load(O::steal_bottom, $);
        if (t >= b)
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
        int64_t b = bottom.load(rl::mo_acquire, $);
        return b > t;
    }
};

} // namespace model

#endif
