/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the fork-join and loop suites (test_join.c, test_loops.c), on top of testutil.h.
 *
 * - Pools made with jt_pool_new() tag each of their worker threads (through on_worker_start)
 *   so that code running on a worker can tell which pool it belongs to: jt_current_pool().
 * - jt_run() runs a void function as a task on a pool from the test thread and checks that the
 *   task ended DONE; the function itself records failures with TU_EXPECT.
 * - jt_spin_until() is a bounded busy wait on an atomic flag (a join half that waits for its
 *   sibling to be stolen must keep its worker busy, not sleep).
 *
 * Like testutil.h everything is static inline; ck_assert is used only in helpers documented as
 * "test thread only".
 */
#ifndef WEFT_JOINUTIL_H
#define WEFT_JOINUTIL_H

#include "testutil.h"

/* ---------------------------------------------------------------------------------------------
 * Pools whose workers know their pool
 */

static inline weft_pool **jt_tls_pool(void)
{
    static _Thread_local weft_pool *pool;
    return &pool;
}

static inline void jt_on_worker_start(weft_pool *pool, unsigned worker, void *data)
{
    (void)worker;
    (void)data;
    *jt_tls_pool() = pool;
}

/* The pool the calling thread is a worker of (made by jt_pool_new), NULL on other threads. */
static inline weft_pool *jt_current_pool(void)
{
    return *jt_tls_pool();
}

/* Test thread only. */
static inline weft_pool *jt_pool_new(unsigned n)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = n;
    cfg.on_worker_start = jt_on_worker_start;
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    ck_assert_msg(rc == 0, "weft_pool_create(threads=%u) = %d (%s)", n, rc, weft_strerror(rc));
    ck_assert_uint_eq(weft_pool_size(p), n);
    return p;
}

/* Test thread only: asserts that the atomic *obj holds want (readable messages). */
#define JT_ASSERT_ATOMIC_EQ(obj, want)                                                             \
    do {                                                                                           \
        long long jt_v_ = (long long)atomic_load(obj);                                             \
        long long jt_w_ = (long long)(want);                                                       \
        ck_assert_msg(jt_v_ == jt_w_, "%s = %lld, want %lld", #obj, jt_v_, jt_w_);                 \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * Running a function as a task
 */

typedef struct jt_call {
    void (*fn)(void *);
    void *arg;
} jt_call;

static inline int jt_call_task(void *arg, void **result)
{
    (void)result;
    jt_call *c = arg;
    c->fn(c->arg);
    return 0;
}

/* Test thread only: runs fn(arg) as a task on p, waits for it and asserts it ended DONE. */
static inline void jt_run(weft_pool *p, void (*fn)(void *), void *arg)
{
    jt_call c = {fn, arg};
    weft_future *f = NULL;
    int rc = weft_submit(p, jt_call_task, &c, &f);
    ck_assert_msg(rc == 0, "weft_submit = %d (%s)", rc, weft_strerror(rc));
    rc = weft_future_result(f, NULL);
    ck_assert_msg(rc == 0, "task result = %d (%s)", rc, weft_strerror(rc));
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    weft_future_release(f);
}

/* ---------------------------------------------------------------------------------------------
 * Busy waits and busy work
 */

/* Spins (never sleeps, never calls the library) until *flag != 0 or timeout_s passed. */
static inline bool jt_spin_until(atomic_int *flag, double timeout_s)
{
    int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * 1e9);
    while (atomic_load(flag) == 0) {
        if (tu_now_ns() > deadline)
            return false;
    }
    return true;
}

/* Some arithmetic the compiler cannot drop; cost proportional to n. */
static inline uint64_t jt_work(uint64_t seed, uint64_t n)
{
    uint64_t x = seed | 1;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

/* Bumps a maximum kept in an atomic. */
static inline void jt_atomic_max(atomic_long *m, long v)
{
    long cur = atomic_load(m);
    while (v > cur && !atomic_compare_exchange_weak(m, &cur, v)) {
    }
}

#endif /* WEFT_JOINUTIL_H */
