/* SPDX-License-Identifier: MIT */
/*
 * Room for outside submissions: max_inflight, weft_submit_timed and weft_pool_room_fd.
 *
 *  - max_inflight = K: at most K tasks submitted from outside are queued or running; the K+1-th
 *    submission is refused with -EAGAIN and changes nothing; a task's room comes back before its
 *    future finishes, so a caller that waited for it can submit again at once. With K equal to
 *    the number of workers, a submission is accepted only while a worker is free.
 *  - weft_submit_timed: times out with -ETIMEDOUT (0 polls) and changes nothing; waits for room
 *    and then submits; a shutdown wakes it with -ESHUTDOWN; never waits on the pool's workers.
 *  - the room descriptor: readable exactly while a submission would find room (one thread
 *    submitting), always readable without limits, readable after shutdown.
 *  - under load: submitters blocked in weft_submit_timed on a pool with max_inflight: every task
 *    runs exactly once and never more than max_inflight outside tasks run at once.
 */
#include "testutil.h"

#include <poll.h>

static bool readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, timeout_ms);
    ck_assert_int_ge(n, 0);
    return n == 1 && (pfd.revents & POLLIN);
}

/* --- max_inflight --- */

START_TEST(test_inflight_counts_running)
{
    enum { W = 2 };
    weft_pool *p = tu_pool_limits(W, 0, W);
    tu_gated g[W];
    weft_future *fs[W];
    for (int i = 0; i < W; i++) {
        tu_gated_init(&g[i]);
        fs[i] = tu_submit_ok(p, tu_task_gated, &g[i]);
    }
    for (int i = 0; i < W; i++)
        ck_assert(tu_wait_atomic_ge(&g[i].started, 1, TU_PATIENCE_S));
    /* Both workers busy with outside tasks: no room, though nothing is queued. */
    weft_stats before, after;
    ck_assert_int_eq(weft_pool_stats(p, &before, NULL, 0), 0);
    weft_future *sentinel = (weft_future *)&g[0];
    weft_future *f = sentinel;
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &f), -EAGAIN);
    ck_assert_ptr_eq(f, sentinel);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -EAGAIN);
    ck_assert_int_eq(weft_submit_timed(p, tu_task_identity, NULL, 0, &f), -ETIMEDOUT);
    ck_assert_int_eq(weft_submit_timed(p, tu_task_identity, NULL, TU_MS(20), &f), -ETIMEDOUT);
    ck_assert_ptr_eq(f, sentinel);
    ck_assert_int_eq(weft_pool_stats(p, &after, NULL, 0), 0);
    ck_assert_uint_eq(after.submitted_outside, before.submitted_outside);

    /* A finished task's room is back by the time its waiter wakes. */
    for (int round = 0; round < 50; round++) {
        tu_gate_open(&g[0].gate);
        ck_assert_int_eq(weft_future_wait(fs[0], WEFT_FOREVER), 0);
        weft_future_release(fs[0]);
        tu_gated_init(&g[0]);
        fs[0] = tu_submit_ok(p, tu_task_gated, &g[0]);
        ck_assert(tu_wait_atomic_ge(&g[0].started, 1, TU_PATIENCE_S));
        ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -EAGAIN);
    }
    for (int i = 0; i < W; i++) {
        tu_gate_open(&g[i].gate);
        ck_assert_int_eq(weft_future_wait(fs[i], WEFT_FOREVER), 0);
        weft_future_release(fs[i]);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Queued tasks count too; cancelled ones give their room back. */
START_TEST(test_inflight_counts_queued_and_cancel_frees)
{
    weft_pool *p = tu_pool_limits(1, 0, 2);
    tu_gated g;
    tu_gated_init(&g);
    weft_future *run = tu_submit_ok(p, tu_task_gated, &g);
    ck_assert(tu_wait_atomic_ge(&g.started, 1, TU_PATIENCE_S));
    weft_future *queued = tu_submit_ok(p, tu_task_identity, NULL);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -EAGAIN);
    ck_assert_int_eq(weft_future_cancel(queued), 1);
    weft_future *again = tu_submit_ok(p, tu_task_identity, NULL);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -EAGAIN);
    tu_gate_open(&g.gate);
    ck_assert_int_eq(weft_future_wait(again, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_state(queued), WEFT_CANCELLED);
    weft_future_release(run);
    weft_future_release(queued);
    weft_future_release(again);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Tasks that tasks submit never count, and never wait in weft_submit_timed. */
typedef struct inner_ctx {
    weft_pool *pool;
    atomic_int ran;
    atomic_int refused;
} inner_ctx;

static int task_inner(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add(&((inner_ctx *)arg)->ran, 1);
    return 0;
}

static int task_outer(void *arg, void **result)
{
    (void)result;
    inner_ctx *x = arg;
    weft_future *fs[64];
    for (int i = 0; i < 64; i++) {
        int rc = weft_submit_timed(x->pool, task_inner, x, 0, &fs[i]);
        if (rc != 0) {
            atomic_fetch_add(&x->refused, 1);
            fs[i] = NULL;
        }
    }
    for (int i = 0; i < 64; i++) {
        if (fs[i] != NULL) {
            TU_EXPECT(weft_future_wait(fs[i], WEFT_FOREVER) == 0);
            weft_future_release(fs[i]);
        }
    }
    return 0;
}

START_TEST(test_inside_never_counts)
{
    weft_pool *p = tu_pool_limits(2, 1, 1);
    inner_ctx x = {.pool = p};
    atomic_init(&x.ran, 0);
    atomic_init(&x.refused, 0);
    weft_future *f = tu_submit_ok(p, task_outer, &x);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
    weft_future_release(f);
    ck_assert_int_eq(tu_ld(&x.refused), 0);
    ck_assert_int_eq(tu_ld(&x.ran), 64);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* --- weft_submit_timed --- */

typedef struct timed_ctx {
    weft_pool *pool;
    int64_t timeout;
    int rc;
    weft_future *f;
    atomic_int entered;
} timed_ctx;

static void *timed_thread(void *arg)
{
    timed_ctx *t = arg;
    atomic_store(&t->entered, 1);
    t->rc = weft_submit_timed(t->pool, tu_task_identity, t, t->timeout, &t->f);
    return NULL;
}

START_TEST(test_timed_waits_for_room)
{
    weft_pool *p = tu_pool_limits(1, 1, 0);
    tu_gated g;
    tu_gated_init(&g);
    weft_future *run = tu_submit_ok(p, tu_task_gated, &g);
    ck_assert(tu_wait_atomic_ge(&g.started, 1, TU_PATIENCE_S));
    weft_future *queued = tu_submit_ok(p, tu_task_identity, NULL); /* max_pending reached */

    timed_ctx t = {.pool = p, .timeout = WEFT_FOREVER, .rc = 1};
    atomic_init(&t.entered, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, timed_thread, &t), 0);
    ck_assert(tu_wait_atomic_ge(&t.entered, 1, TU_PATIENCE_S));
    tu_sleep_ms(20); /* most likely asleep by now; the result is the same either way */
    tu_gate_open(&g.gate);
    pthread_join(th, NULL);
    ck_assert_int_eq(t.rc, 0);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(t.f, &v), 0);
    ck_assert_ptr_eq(v, &t);
    weft_future_release(t.f);
    weft_future_release(run);
    weft_future_release(queued);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_timed_shutdown_wakes)
{
    weft_pool *p = tu_pool_limits(1, 0, 1);
    tu_gated g;
    tu_gated_init(&g);
    weft_future *run = tu_submit_ok(p, tu_task_gated, &g);
    ck_assert(tu_wait_atomic_ge(&g.started, 1, TU_PATIENCE_S));
    timed_ctx t = {.pool = p, .timeout = WEFT_FOREVER, .rc = 1};
    atomic_init(&t.entered, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, timed_thread, &t), 0);
    ck_assert(tu_wait_atomic_ge(&t.entered, 1, TU_PATIENCE_S));
    tu_sleep_ms(20);
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(t.rc, -ESHUTDOWN);
    tu_gate_open(&g.gate);
    ck_assert_int_eq(weft_future_wait(run, WEFT_FOREVER), 0);
    weft_future_release(run);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_timed_bad_input)
{
    weft_pool *p = tu_pool_limits(1, 0, 0);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit_timed(NULL, tu_task_identity, NULL, 0, &f), -EINVAL);
    ck_assert_int_eq(weft_submit_timed(p, NULL, NULL, 0, &f), -EINVAL);
    ck_assert_int_eq(weft_submit_timed(p, tu_task_identity, NULL, -2, &f), -EINVAL);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(weft_pool_room_fd(NULL), -EINVAL);
    /* No limits: never waits, always readable. */
    ck_assert_int_eq(weft_submit_timed(p, tu_task_identity, NULL, 0, &f), 0);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
    weft_future_release(f);
    int fd = weft_pool_room_fd(p);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_pool_room_fd(p), fd);
    ck_assert(readable(fd, 0));
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* --- the room descriptor --- */

START_TEST(test_room_fd_tracks_room)
{
    /* _i: 0 with max_pending, 1 with max_inflight */
    size_t mp = _i == 0 ? 1 : 0, mi = _i == 1 ? 2 : 0;
    weft_pool *p = tu_pool_limits(1, mp, mi);
    int fd = weft_pool_room_fd(p);
    ck_assert_int_ge(fd, 0);
    for (int round = 0; round < 20; round++) {
        ck_assert(readable(fd, 0));
        tu_gated g;
        tu_gated_init(&g);
        weft_future *run = tu_submit_ok(p, tu_task_gated, &g);
        ck_assert(tu_wait_atomic_ge(&g.started, 1, TU_PATIENCE_S));
        weft_future *queued = tu_submit_ok(p, tu_task_identity, NULL); /* now full either way */
        ck_assert(!readable(fd, 0));
        ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -EAGAIN);
        ck_assert(!readable(fd, 0));
        tu_gate_open(&g.gate);
        ck_assert(readable(fd, (int)(TU_PATIENCE_S * 1000)));
        ck_assert_int_eq(weft_future_wait(queued, WEFT_FOREVER), 0);
        weft_future_release(run);
        weft_future_release(queued);
    }
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert(readable(fd, 0)); /* and a submission says why at once */
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -ESHUTDOWN);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* An event loop that polls the room descriptor after -EAGAIN: every task runs once. */
static int task_count_fast(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

START_TEST(test_room_fd_event_loop)
{
    enum { N = 2000 };
    weft_pool *p = tu_pool_limits(2, 0, 2);
    int fd = weft_pool_room_fd(p);
    atomic_int ran;
    atomic_init(&ran, 0);
    int refused = 0;
    for (int i = 0; i < N;) {
        int rc = weft_submit(p, task_count_fast, &ran, NULL);
        if (rc == 0) {
            i++;
            continue;
        }
        ck_assert_int_eq(rc, -EAGAIN);
        refused++;
        ck_assert_msg(readable(fd, (int)(TU_PATIENCE_S * 1000)), "no room came back");
    }
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&ran), N);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* --- under load --- */

typedef struct load_ctx {
    weft_pool *pool;
    atomic_int running;
    atomic_int max_running;
    atomic_int ran;
    atomic_int errors;
    int per_thread;
} load_ctx;

static int task_load(void *arg, void **result)
{
    (void)result;
    load_ctx *x = arg;
    int now = atomic_fetch_add(&x->running, 1) + 1;
    int seen = atomic_load(&x->max_running);
    while (now > seen && !atomic_compare_exchange_weak(&x->max_running, &seen, now))
        ;
    for (volatile int i = 0; i < 2000; i++)
        ;
    atomic_fetch_add(&x->ran, 1);
    atomic_fetch_sub(&x->running, 1);
    return 0;
}

static void *load_thread(void *arg)
{
    load_ctx *x = arg;
    for (int i = 0; i < x->per_thread; i++) {
        int rc = weft_submit_timed(x->pool, task_load, x, WEFT_FOREVER, NULL);
        if (rc != 0)
            atomic_fetch_add(&x->errors, 1);
    }
    return NULL;
}

/* Runs load_thread on `threads` threads at once over x, from zeroed counters, to the end. */
static void run_load(load_ctx *x, int threads)
{
    atomic_init(&x->running, 0);
    atomic_init(&x->max_running, 0);
    atomic_init(&x->ran, 0);
    atomic_init(&x->errors, 0);
    pthread_t th[8];
    ck_assert_int_le(threads, 8);
    for (int i = 0; i < threads; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, load_thread, x), 0);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
}

START_TEST(test_timed_load)
{
    enum { THREADS = 4, K = 2 };
    weft_pool *p = tu_pool_limits(4, 0, K);
    load_ctx x = {.pool = p, .per_thread = (int)(2000 * tu_stress_scale())};
    run_load(&x, THREADS);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&x.errors), 0);
    ck_assert_int_eq(tu_ld(&x.ran), THREADS * x.per_thread);
    ck_assert_int_le(tu_ld(&x.max_running), K);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The same load with the room descriptor open, as a server has it: gives that bring room back
 * still wake the submitters waiting for it, and once the load is over the descriptor says
 * there is room; filled up again, it says there is none. */
START_TEST(test_timed_load_with_fd)
{
    enum { THREADS = 4, K = 2 };
    weft_pool *p = tu_pool_limits(4, 0, K);
    int fd = weft_pool_room_fd(p);
    ck_assert_int_ge(fd, 0);
    load_ctx x = {.pool = p, .per_thread = (int)(2000 * tu_stress_scale())};
    run_load(&x, THREADS);
    while (tu_ld(&x.ran) < THREADS * x.per_thread)
        usleep(1000);
    ck_assert(readable(fd, (int)(TU_PATIENCE_S * 1000))); /* the last tasks gave their room */
    tu_gate gate;
    tu_gate_init(&gate);
    weft_future *held[K];
    for (int i = 0; i < K; i++)
        held[i] = tu_submit_ok(p, tu_task_gate, &gate);
    ck_assert(!readable(fd, 0));
    tu_gate_open(&gate);
    ck_assert(readable(fd, (int)(TU_PATIENCE_S * 1000)));
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(weft_future_result(held[i], NULL), 0);
        weft_future_release(held[i]);
    }
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&x.errors), 0);
    ck_assert_int_le(tu_ld(&x.max_running), K);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static Suite *room_suite(void)
{
    Suite *s = suite_create("room");
    TCase *tc = tcase_create("inflight");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_inflight_counts_running);
    tcase_add_test(tc, test_inflight_counts_queued_and_cancel_frees);
    tcase_add_test(tc, test_inside_never_counts);
    suite_add_tcase(s, tc);

    tc = tcase_create("timed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_timed_waits_for_room);
    tcase_add_test(tc, test_timed_shutdown_wakes);
    tcase_add_test(tc, test_timed_bad_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("fd");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_room_fd_tracks_room, 0, 2);
    tcase_add_test(tc, test_room_fd_event_loop);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_timed_load);
    tcase_add_test(tc, test_timed_load_with_fd);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(room_suite());
}
