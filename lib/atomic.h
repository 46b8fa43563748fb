/* SPDX-License-Identifier: MIT */
/*
 * Named memory orders.
 *
 * Every atomic access in weft goes through these macros so that its ordering is visible at the
 * call site and greppable. The convention at each call site is a comment naming the operation
 * the access pairs with ("pairs with the release in deque_push"). Relaxed accesses say why no
 * ordering is needed.
 *
 * ThreadSanitizer does not model standalone fences. weft therefore carries every
 * happens-before edge that protects plain data on a release store / acquire load (or an RMW)
 * of the same atomic object. The one fence kind used, weft_fence_seq_cst(), only orders a
 * store-load pair (Dekker) for wake-ups; no plain data depends on it.
 */
#ifndef WEFT_ATOMIC_H
#define WEFT_ATOMIC_H

#include <stdatomic.h>

#define ld_relaxed(p)    atomic_load_explicit((p), memory_order_relaxed)
#define ld_acquire(p)    atomic_load_explicit((p), memory_order_acquire)
#define ld_seq_cst(p)    atomic_load_explicit((p), memory_order_seq_cst)
#define st_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define st_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define st_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)

#define xchg_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define xchg_seq_cst(p, v) atomic_exchange_explicit((p), (v), memory_order_seq_cst)

#define add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define add_release(p, v) atomic_fetch_add_explicit((p), (v), memory_order_release)
#define add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define sub_release(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_release)
#define sub_acq_rel(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_acq_rel)
#define sub_seq_cst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define or_release(p, v)  atomic_fetch_or_explicit((p), (v), memory_order_release)
#define or_acq_rel(p, v)  atomic_fetch_or_explicit((p), (v), memory_order_acq_rel)
#define or_seq_cst(p, v)  atomic_fetch_or_explicit((p), (v), memory_order_seq_cst)
#define and_acq_rel(p, v) atomic_fetch_and_explicit((p), (v), memory_order_acq_rel)

/* Strong compare-and-swap; *expected is updated on failure. The failure order is the success
 * order weakened as C11 requires. */
#define cas_acq_rel(p, e, v)                                                                       \
    atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_acq_rel,                   \
                                            memory_order_acquire)
#define cas_release(p, e, v)                                                                       \
    atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_release,                   \
                                            memory_order_relaxed)
#define cas_seq_cst(p, e, v)                                                                       \
    atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_seq_cst,                   \
                                            memory_order_relaxed)

/* Full store-load barrier for the Dekker pairs of the parking protocol (see park.c). */
#define weft_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)

static inline void weft_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Thread-locals of the library use the initial-exec model: one instruction to reach them instead
 * of a call to __tls_get_addr, which matters on the fork-join path. It needs the library in the
 * initial TLS block or glibc's surplus for later dlopen, which a few pointers always fit. */
#define WEFT_TLS _Thread_local __attribute__((tls_model("initial-exec")))

#define WEFT_CACHE_LINE 64
#define WEFT_ALIGNED    _Alignas(WEFT_CACHE_LINE)

#endif
