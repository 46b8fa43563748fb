/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the gather, wait and completion-set suites (test_gather.c, test_wait.c,
 * test_completion.c, test_gather_wait_completion_stress.c), on top of testutil.h. Their prefix,
 * gw_, stands for gather/wait.
 *
 * The central piece is the gated job: a task that marks itself started, waits for its own gate
 * (a sleep loop, never a library wait, so it really occupies its worker), optionally gives up
 * with -ECANCELED once a cancellation was requested, and then returns a chosen code and value.
 * Tests decide the order in which children finish by opening gates, never by sleeping.
 *
 * Like testutil.h everything is static inline; ck_assert is used only in helpers documented as
 * "test thread only".
 */
#ifndef WEFT_GATHER_WAIT_UTIL_H
#define WEFT_GATHER_WAIT_UTIL_H

#include "testutil.h"

#include <poll.h>

/* ---------------------------------------------------------------------------------------------
 * Gated jobs
 */

typedef struct gw_job {
    tu_gate gate;
    atomic_int started;                /* 1 once the function began */
    atomic_int ran;                    /* times the function began (must stay 0 or 1) */
    atomic_int cancelled;              /* 1 if it returned -ECANCELED on a request */
    atomic_int saw_request_after_gate; /* weft_cancel_requested() once the gate was open */
    int ret;                           /* code returned when the gate opens */
    void *value;        /* *result set to this when the gate opens (also when failing) */
    bool honour_cancel; /* while waiting: return -ECANCELED once cancellation is requested */
} gw_job;

static inline void gw_job_init(gw_job *j, void *value, int ret, bool honour_cancel)
{
    tu_gate_init(&j->gate);
    atomic_init(&j->started, 0);
    atomic_init(&j->ran, 0);
    atomic_init(&j->cancelled, 0);
    atomic_init(&j->saw_request_after_gate, 0);
    j->ret = ret;
    j->value = value;
    j->honour_cancel = honour_cancel;
}

static inline int gw_job_task(void *arg, void **result)
{
    gw_job *j = arg;
    atomic_fetch_add(&j->ran, 1);
    atomic_store(&j->started, 1);
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (!tu_gate_is_open(&j->gate)) {
        if (j->honour_cancel && weft_cancel_requested()) {
            atomic_store(&j->cancelled, 1);
            return -ECANCELED;
        }
        if (tu_now_ns() > deadline) {
            TU_EXPECT(!"gw_job: gate never opened");
            break;
        }
        tu_sleep_ns(100000);
    }
    atomic_store(&j->saw_request_after_gate, weft_cancel_requested() ? 1 : 0);
    *result = j->value;
    return j->ret;
}

/* Test thread only: submits the job and returns its future. */
static inline weft_future *gw_submit_job(weft_pool *p, gw_job *j)
{
    weft_future *f = NULL;
    int rc = weft_submit(p, gw_job_task, j, &f);
    ck_assert_msg(rc == 0, "weft_submit = %d (%s)", rc, weft_strerror(rc));
    ck_assert_ptr_nonnull(f);
    return f;
}

/* Test thread only: waits until the job's function has started. */
static inline void gw_wait_started(gw_job *j)
{
    ck_assert_msg(tu_wait_atomic_ge(&j->started, 1, TU_PATIENCE_S), "job never started");
}

/* Test thread only: waits (polling, no library wait) until f has finished. */
static inline void gw_wait_done(const weft_future *f)
{
    ck_assert_msg(tu_wait_done(f, TU_PATIENCE_S), "future never finished");
}

/* Test thread only: opens the job's gate and waits until its future finished. */
static inline void gw_finish(gw_job *j, const weft_future *f)
{
    tu_gate_open(&j->gate);
    gw_wait_done(f);
}

/* ---------------------------------------------------------------------------------------------
 * Plain tasks
 */

/* Fails with the code (intptr_t)arg, after setting *result (which the caller must not see). */
static inline int gw_task_fail(void *arg, void **result)
{
    static int poison;
    *result = &poison;
    return (int)(intptr_t)arg;
}

/* Test thread only: submits fn(arg), asserting success. */
static inline weft_future *gw_submit(weft_pool *p, weft_fn fn, void *arg)
{
    weft_future *f = NULL;
    int rc = weft_submit(p, fn, arg, &f);
    ck_assert_msg(rc == 0, "weft_submit = %d (%s)", rc, weft_strerror(rc));
    ck_assert_ptr_nonnull(f);
    return f;
}

/* Test thread only: a future that is already DONE with value v. */
static inline weft_future *gw_done_future(weft_pool *p, void *v)
{
    weft_future *f = gw_submit(p, tu_task_identity, v);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    return f;
}

/* Test thread only: a future that is already FAILED with code. */
static inline weft_future *gw_failed_future(weft_pool *p, int code)
{
    weft_future *f = gw_submit(p, gw_task_fail, (void *)(intptr_t)code);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_state(f), WEFT_FAILED);
    return f;
}

static inline void gw_release_all(weft_future *const fs[], size_t n)
{
    for (size_t i = 0; i < n; i++)
        weft_future_release(fs[i]);
}

/* Distinct non-NULL values for slot i. */
#define GW_VAL(i) ((void *)(intptr_t)(1000 + (intptr_t)(i)))

/* ---------------------------------------------------------------------------------------------
 * Blocker: occupies the single worker of a pool so that what is submitted after it stays
 * PENDING until the blocker's gate opens.
 */

typedef struct gw_blocker {
    gw_job job;
    weft_future *f;
} gw_blocker;

/* Test thread only. */
static inline void gw_blocker_start(gw_blocker *b, weft_pool *p)
{
    gw_job_init(&b->job, NULL, 0, false);
    b->f = gw_submit_job(p, &b->job);
    gw_wait_started(&b->job);
}

/* Test thread only. */
static inline void gw_blocker_stop(gw_blocker *b)
{
    gw_finish(&b->job, b->f);
    weft_future_release(b->f);
    b->f = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * A helper thread that opens a list of gates in order, sleeping between them, so that the test
 * thread can be blocked in a wait of the library when each opens. The sleeps only give the
 * test thread time to block; correctness never depends on them.
 */

typedef struct gw_opener {
    pthread_t th;
    tu_gate **gates;
    size_t n;
    int64_t pause_ns;
    bool wait_done;           /* after each gate, wait for futs[i] to finish */
    weft_future *const *futs; /* optional: parallel to gates */
} gw_opener;

static inline void *gw_opener_main(void *arg)
{
    gw_opener *o = arg;
    for (size_t i = 0; i < o->n; i++) {
        tu_sleep_ns(o->pause_ns);
        tu_gate_open(o->gates[i]);
        if (o->wait_done && o->futs != NULL)
            TU_EXPECT(tu_wait_done(o->futs[i], TU_PATIENCE_S));
    }
    return NULL;
}

/* Test thread only. */
static inline void gw_opener_start(gw_opener *o, tu_gate **gates, weft_future *const *futs,
                                   size_t n, int64_t pause_ns)
{
    o->gates = gates;
    o->futs = futs;
    o->wait_done = futs != NULL;
    o->n = n;
    o->pause_ns = pause_ns;
    ck_assert_int_eq(pthread_create(&o->th, NULL, gw_opener_main, o), 0);
}

/* Test thread only. */
static inline void gw_opener_join(gw_opener *o)
{
    ck_assert_int_eq(pthread_join(o->th, NULL), 0);
}

/* ---------------------------------------------------------------------------------------------
 * Descriptors
 */

/* poll(fd, POLLIN) with the given timeout in ms: true when readable. Test thread only. */
static inline bool gw_readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r;
    do {
        r = poll(&pfd, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    ck_assert_msg(r >= 0, "poll: %s", strerror(errno));
    ck_assert_msg((pfd.revents & (POLLERR | POLLNVAL)) == 0, "poll revents %#x", pfd.revents);
    return r == 1 && (pfd.revents & POLLIN) != 0;
}

/* ---------------------------------------------------------------------------------------------
 * Small deterministic PRNG for stress tests (each thread its own state).
 */

static inline uint64_t gw_rand(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A short busy spin of about `iters` relax iterations, to shift races around. */
static inline void gw_spin(unsigned iters)
{
    for (volatile unsigned i = 0; i < iters; i++) {
    }
}

#endif /* WEFT_GATHER_WAIT_UTIL_H */
