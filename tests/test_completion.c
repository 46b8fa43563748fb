/* SPDX-License-Identifier: MIT */
/*
 * as_completed and completion sets: each future handed out exactly once in completion order
 * (those already finished first), -ETIMEDOUT and -ENOENT, empty sets, references (the set holds
 * one per future not yet handed out, next passes it on, destroy releases the rest), open-ended
 * sets with weft_completion_add, the pollable descriptor (poll and level-triggered epoll),
 * several threads on one set, and helping on a worker.
 */
#include "gather_wait_util.h"

#include <sys/epoll.h>
#include <unistd.h>

/* Test thread only: next must hand out a finished future; the caller releases it. */
static weft_future *take(weft_completion *c, int64_t timeout_ns)
{
    weft_future *f = NULL;
    int rc = weft_completion_next(c, timeout_ns, &f);
    ck_assert_msg(rc == 0, "weft_completion_next = %d (%s)", rc, weft_strerror(rc));
    ck_assert_ptr_nonnull(f);
    ck_assert(weft_future_done(f));
    return f;
}

static int next_rc(weft_completion *c, int64_t timeout_ns)
{
    weft_future *f = NULL;
    int rc = weft_completion_next(c, timeout_ns, &f);
    if (rc == 0)
        weft_future_release(f);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * as_completed
 */

START_TEST(test_ac_completion_order)
{
    enum { N = 5 };
    weft_pool *p = tu_pool_new(N, NULL);
    gw_job j[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), i == 3 ? 6 : 0, false);
        fs[i] = gw_submit_job(p, &j[i]);
    }
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(fs, N, &c), 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(next_rc(c, 0), -ETIMEDOUT);

    /* One at a time, the test thread blocked in next while each finishes. */
    static const int order[N] = {2, 0, 4, 3, 1};
    for (int k = 0; k < 3; k++) {
        gw_opener op;
        tu_gate *g = &j[order[k]].gate;
        gw_opener_start(&op, &g, NULL, 1, TU_MS(10));
        weft_future *f = take(c, WEFT_FOREVER);
        gw_opener_join(&op);
        ck_assert_msg(f == fs[order[k]], "hand-out %d is not future %d", k, order[k]);
        weft_future_release(f);
    }
    /* Two finish before anyone asks: they come out in the order they finished. A future's
     * state turns final just before the set hears of it, so wait until the descriptor shows
     * the first one arrived before letting the second finish. */
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    gw_finish(&j[3], fs[3]);
    ck_assert(gw_readable(fd, 30000));
    gw_finish(&j[1], fs[1]);
    weft_future *f = take(c, 0);
    ck_assert_ptr_eq(f, fs[3]);
    ck_assert_int_eq(weft_future_result(f, NULL), 6);
    weft_future_release(f);
    f = take(c, WEFT_FOREVER);
    ck_assert_ptr_eq(f, fs[1]);
    weft_future_release(f);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    ck_assert_int_eq(next_rc(c, WEFT_FOREVER), -ENOENT);
    ck_assert_int_eq(next_rc(c, TU_MS(5)), -ENOENT);
    weft_completion_destroy(c);
    gw_release_all(fs, N);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Those already finished when the set is made come first. */
START_TEST(test_ac_finished_first)
{
    weft_pool *p = tu_pool_new(3, NULL);
    gw_job g0, g2;
    gw_job_init(&g0, GW_VAL(0), 0, false);
    gw_job_init(&g2, GW_VAL(2), 0, false);
    weft_future *fs[4];
    fs[1] = gw_done_future(p, GW_VAL(1));
    fs[3] = gw_failed_future(p, 12);
    fs[0] = gw_submit_job(p, &g0);
    fs[2] = gw_submit_job(p, &g2);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(fs, 4, &c), 0);
    gw_finish(&g2, fs[2]);
    weft_future *a = take(c, 0), *b = take(c, 0);
    ck_assert((a == fs[1] && b == fs[3]) || (a == fs[3] && b == fs[1]));
    weft_future *d = take(c, WEFT_FOREVER); /* its node may fire just after its state */
    ck_assert_ptr_eq(d, fs[2]);
    ck_assert_int_eq(next_rc(c, 0), -ETIMEDOUT);
    tu_gate_open(&g0.gate);
    weft_future *e = take(c, WEFT_FOREVER);
    ck_assert_ptr_eq(e, fs[0]);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    weft_future *taken[4] = {a, b, d, e};
    gw_release_all(taken, 4);
    weft_completion_destroy(c);
    gw_release_all(fs, 4);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_ac_timeout)
{
    weft_pool *p = tu_pool_new(1, NULL);
    gw_job g;
    gw_job_init(&g, GW_VAL(0), 0, false);
    weft_future *f = gw_submit_job(p, &g);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(&f, 1, &c), 0);
    weft_future *sentinel = (weft_future *)&sentinel, *got = sentinel;
    int64_t t0 = tu_now_ns();
    ck_assert_int_eq(weft_completion_next(c, TU_MS(30), &got), -ETIMEDOUT);
    ck_assert_msg(tu_now_ns() - t0 >= TU_MS(30), "returned before its timeout");
    ck_assert_int_eq(weft_completion_next(c, 0, &got), -ETIMEDOUT);
    ck_assert_int_eq(weft_completion_next(c, 1, &got), -ETIMEDOUT);
    ck_assert(!weft_future_done(f)); /* a timeout cancels nothing */
    gw_finish(&g, f);
    got = take(c, WEFT_FOREVER);
    ck_assert_ptr_eq(got, f);
    weft_future_release(got);
    ck_assert_int_eq(next_rc(c, TU_MS(30)), -ENOENT);
    weft_completion_destroy(c);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_ac_empty)
{
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(NULL, 0, &c), 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    ck_assert_int_eq(next_rc(c, WEFT_FOREVER), -ENOENT);
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    ck_assert(!gw_readable(fd, 0));
    weft_completion_destroy(c);

    weft_future *dummy[1] = {NULL};
    ck_assert_int_eq(weft_as_completed(dummy, 0, &c), 0);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    weft_completion_destroy(c);
    weft_completion_destroy(NULL);
}
END_TEST

/* The set holds its own references: the caller may release its futures at once; destroy
 * releases the ones never handed out, finished or not (ASan checks both ways). */
START_TEST(test_ac_references)
{
    enum { N = 6 };
    weft_pool *p = tu_pool_new(N, NULL); /* every gated job gets a worker */
    gw_job j[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, false);
        fs[i] = gw_submit_job(p, &j[i]);
    }
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(fs, N, &c), 0);
    gw_release_all(fs, N); /* the set's references remain */

    tu_gate_open(&j[4].gate);
    weft_future *f = take(c, WEFT_FOREVER);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, GW_VAL(4));
    weft_future_release(f);
    /* Two more finish but are never taken; the other three are still running or pending. */
    tu_gate_open(&j[0].gate);
    tu_gate_open(&j[1].gate);
    /* The set still holds them, so they may be looked at until it is destroyed. */
    gw_wait_done(fs[0]);
    gw_wait_done(fs[1]);
    weft_completion_destroy(c);
    for (int i = 0; i < N; i++)
        tu_gate_open(&j[i].gate);
    tu_pool_free(p); /* the remaining futures finish after the set is gone */
    TU_ASSERT_NO_FAILURES();

    /* A set destroyed at once, every future still running. */
    p = tu_pool_new(2, NULL);
    for (int i = 0; i < 2; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, false);
        fs[i] = gw_submit_job(p, &j[i]);
    }
    ck_assert_int_eq(weft_as_completed(fs, 2, &c), 0);
    weft_completion_destroy(c);
    tu_gate_open(&j[0].gate);
    tu_gate_open(&j[1].gate);
    ck_assert_int_eq(weft_future_result(fs[0], NULL), 0);
    ck_assert_int_eq(weft_future_result(fs[1], NULL), 0);
    gw_release_all(fs, 2);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Arguments
 */

START_TEST(test_completion_einval)
{
    weft_pool *p = tu_pool_new(1, NULL);
    weft_future *a = gw_done_future(p, GW_VAL(0));
    weft_completion *sentinel = (weft_completion *)&sentinel, *c = sentinel;
    weft_future *fs[2] = {a, a};

    ck_assert_int_eq(weft_as_completed(fs, 2, NULL), -EINVAL);
    ck_assert_int_eq(weft_as_completed(NULL, 2, &c), -EINVAL);
    weft_future *with_null[3] = {a, a, NULL};
    ck_assert_int_eq(weft_as_completed(with_null, 3, &c), -EINVAL);
    ck_assert_ptr_eq(c, sentinel);
    ck_assert_int_eq(weft_completion_create(NULL), -EINVAL);

    ck_assert_int_eq(weft_completion_create(&c), 0);
    ck_assert_ptr_ne(c, sentinel);
    ck_assert_int_eq(weft_completion_add(NULL, a), -EINVAL);
    ck_assert_int_eq(weft_completion_add(c, NULL), -EINVAL);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_completion_next(NULL, 0, &f), -EINVAL);
    ck_assert_int_eq(weft_completion_next(c, 0, NULL), -EINVAL);
    ck_assert_int_eq(weft_completion_next(c, -2, &f), -EINVAL);
    ck_assert_int_eq(weft_completion_next(c, INT64_MIN, &f), -EINVAL);
    ck_assert_int_eq(weft_completion_fd(NULL), -EINVAL);
    /* The failed calls added nothing. */
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    ck_assert_int_eq(weft_completion_add(c, a), 0);
    ck_assert_int_eq(weft_completion_next(c, -2, &f), -EINVAL); /* took nothing */
    f = take(c, INT64_MAX);
    ck_assert_ptr_eq(f, a);
    weft_future_release(f);
    weft_completion_destroy(c);
    weft_future_release(a);
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Open-ended sets
 */

START_TEST(test_completion_open_ended)
{
    weft_pool *p = tu_pool_new(2, NULL);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    ck_assert_int_eq(next_rc(c, WEFT_FOREVER), -ENOENT);

    gw_job g;
    gw_job_init(&g, GW_VAL(1), 0, false);
    weft_future *f1 = gw_submit_job(p, &g);
    ck_assert_int_eq(weft_completion_add(c, f1), 0);
    weft_future_release(f1); /* the set took its own */
    ck_assert_int_eq(next_rc(c, 0), -ETIMEDOUT);
    tu_gate_open(&g.gate);
    weft_future *f = take(c, WEFT_FOREVER);
    ck_assert_ptr_eq(f, f1);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, GW_VAL(1));
    weft_future_release(f);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    ck_assert_int_eq(next_rc(c, WEFT_FOREVER), -ENOENT);

    /* Works again after another add: finished ones and running ones. */
    weft_future *d = gw_done_future(p, GW_VAL(2));
    ck_assert_int_eq(weft_completion_add(c, d), 0);
    f = take(c, 0);
    ck_assert_ptr_eq(f, d);
    weft_future_release(f);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    gw_job_init(&g, GW_VAL(3), 0, false);
    weft_future *f3 = gw_submit_job(p, &g);
    ck_assert_int_eq(weft_completion_add(c, f3), 0);
    ck_assert_int_eq(weft_completion_add(c, d), 0); /* d again: a second entry */
    f = take(c, WEFT_FOREVER);
    ck_assert_ptr_eq(f, d);
    weft_future_release(f);
    gw_opener op;
    tu_gate *gg = &g.gate;
    gw_opener_start(&op, &gg, NULL, 1, TU_MS(10));
    f = take(c, WEFT_FOREVER);
    gw_opener_join(&op);
    ck_assert_ptr_eq(f, f3);
    weft_future_release(f);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);

    /* Destroyed with one not handed out. */
    ck_assert_int_eq(weft_completion_add(c, d), 0);
    weft_completion_destroy(c);
    weft_future_release(d);
    weft_future_release(f3);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_completion_add_to_as_completed)
{
    weft_pool *p = tu_pool_new(2, NULL);
    weft_future *fs[2] = {gw_done_future(p, GW_VAL(0)), gw_done_future(p, GW_VAL(1))};
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(fs, 2, &c), 0);
    weft_future *a = take(c, 0), *b = take(c, 0);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    gw_job g;
    gw_job_init(&g, GW_VAL(2), 0, false);
    weft_future *f = gw_submit_job(p, &g);
    ck_assert_int_eq(weft_completion_add(c, f), 0);
    ck_assert_int_eq(next_rc(c, 0), -ETIMEDOUT);
    tu_gate_open(&g.gate);
    weft_future *t = take(c, WEFT_FOREVER);
    ck_assert_ptr_eq(t, f);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);
    /* An empty as_completed set accepts adds too. */
    weft_completion *e = NULL;
    ck_assert_int_eq(weft_as_completed(NULL, 0, &e), 0);
    ck_assert_int_eq(weft_completion_add(e, a), 0);
    weft_future *t2 = take(e, 0);
    ck_assert_ptr_eq(t2, a);
    weft_future *all[5] = {a, b, t, t2, f};
    gw_release_all(all, 5);
    weft_completion_destroy(e);
    weft_completion_destroy(c);
    gw_release_all(fs, 2);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The descriptor
 */

START_TEST(test_completion_fd_poll)
{
    weft_pool *p = tu_pool_new(2, NULL);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_completion_fd(c), fd);
    ck_assert(!gw_readable(fd, 0)); /* empty */

    gw_job g;
    gw_job_init(&g, GW_VAL(0), 0, false);
    weft_future *f = gw_submit_job(p, &g);
    ck_assert_int_eq(weft_completion_add(c, f), 0);
    ck_assert(!gw_readable(fd, 0)); /* not finished */
    gw_finish(&g, f);
    ck_assert(gw_readable(fd, 30000)); /* the set hears of it just after the state turns */
    ck_assert(gw_readable(fd, 0));
    ck_assert(gw_readable(fd, 0)); /* level: stays readable until taken */
    weft_future *t = take(c, 0);
    ck_assert_ptr_eq(t, f);
    weft_future_release(t);
    ck_assert(!gw_readable(fd, 0));
    ck_assert_int_eq(weft_completion_fd(c), fd);

    /* Two ready: readable until both are taken. */
    weft_future *d1 = gw_done_future(p, GW_VAL(1)), *d2 = gw_done_future(p, GW_VAL(2));
    ck_assert_int_eq(weft_completion_add(c, d1), 0);
    ck_assert_int_eq(weft_completion_add(c, d2), 0);
    ck_assert(gw_readable(fd, 0));
    t = take(c, 0);
    weft_future_release(t);
    ck_assert(gw_readable(fd, 0));
    t = take(c, 0);
    weft_future_release(t);
    ck_assert(!gw_readable(fd, 0));
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);

    /* A blocking poll wakes when a future finishes. */
    gw_job_init(&g, GW_VAL(3), 0, false);
    weft_future *f3 = gw_submit_job(p, &g);
    ck_assert_int_eq(weft_completion_add(c, f3), 0);
    gw_opener op;
    tu_gate *gg = &g.gate;
    gw_opener_start(&op, &gg, NULL, 1, TU_MS(10));
    ck_assert(gw_readable(fd, 30000));
    gw_opener_join(&op);
    t = take(c, 0);
    ck_assert_ptr_eq(t, f3);
    weft_future_release(t);
    ck_assert(!gw_readable(fd, 0));
    ck_assert_int_eq(weft_completion_fd(c), fd);

    weft_completion_destroy(c);
    weft_future *all[4] = {f, d1, d2, f3};
    gw_release_all(all, 4);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The descriptor asked for only after futures are ready reflects them. */
START_TEST(test_completion_fd_late)
{
    weft_pool *p = tu_pool_new(1, NULL);
    weft_future *fs[2] = {gw_done_future(p, GW_VAL(0)), gw_done_future(p, GW_VAL(1))};
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(fs, 2, &c), 0);
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    ck_assert(gw_readable(fd, 0));
    weft_future_release(take(c, 0));
    ck_assert(gw_readable(fd, 0));
    weft_future_release(take(c, 0));
    ck_assert(!gw_readable(fd, 0));
    weft_completion_destroy(c);

    /* Taken before the descriptor exists: not readable when it is made. */
    ck_assert_int_eq(weft_as_completed(fs, 2, &c), 0);
    weft_future_release(take(c, 0));
    fd = weft_completion_fd(c);
    ck_assert(gw_readable(fd, 0));
    weft_future_release(take(c, 0));
    ck_assert(!gw_readable(fd, 0));
    weft_completion_destroy(c);
    gw_release_all(fs, 2);
    tu_pool_free(p);
}
END_TEST

static int epoll_ready(int ep, int timeout_ms)
{
    struct epoll_event ev[4];
    int r;
    do {
        r = epoll_wait(ep, ev, 4, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r;
}

START_TEST(test_completion_fd_epoll)
{
    weft_pool *p = tu_pool_new(2, NULL);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ck_assert_int_ge(ep, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd}; /* level-triggered */
    ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
    ck_assert_int_eq(epoll_ready(ep, 0), 0);

    gw_job g[2];
    weft_future *fs[2];
    for (int i = 0; i < 2; i++) {
        gw_job_init(&g[i], GW_VAL(i), 0, false);
        fs[i] = gw_submit_job(p, &g[i]);
        ck_assert_int_eq(weft_completion_add(c, fs[i]), 0);
    }
    ck_assert_int_eq(epoll_ready(ep, 0), 0);
    gw_opener op;
    tu_gate *gg = &g[1].gate;
    gw_opener_start(&op, &gg, NULL, 1, TU_MS(10));
    ck_assert_int_eq(epoll_ready(ep, 30000), 1);
    gw_opener_join(&op);
    ck_assert_int_eq(epoll_ready(ep, 0), 1); /* level-triggered: reported again */
    ck_assert_int_eq(epoll_ready(ep, 0), 1);
    weft_future *t = take(c, 0);
    ck_assert_ptr_eq(t, fs[1]);
    weft_future_release(t);
    ck_assert_int_eq(epoll_ready(ep, 0), 0); /* taken: fs[0] still running */
    gw_finish(&g[0], fs[0]);
    ck_assert_int_eq(epoll_ready(ep, 30000), 1);
    ck_assert_int_eq(epoll_ready(ep, 0), 1);
    t = take(c, 0);
    ck_assert_ptr_eq(t, fs[0]);
    weft_future_release(t);
    ck_assert_int_eq(epoll_ready(ep, 0), 0);
    ck_assert_int_eq(next_rc(c, 0), -ENOENT);

    /* An event loop: wait on the descriptor, take with timeout 0 until -ETIMEDOUT/-ENOENT. */
    enum { K = 20 };
    weft_future *more[K];
    for (int i = 0; i < K; i++) {
        more[i] = gw_submit(p, tu_task_identity, GW_VAL(i));
        ck_assert_int_eq(weft_completion_add(c, more[i]), 0);
    }
    int got = 0, seen[K] = {0};
    while (got < K) {
        ck_assert_int_eq(epoll_ready(ep, 30000), 1);
        for (;;) {
            weft_future *f = NULL;
            int rc = weft_completion_next(c, 0, &f);
            if (rc != 0) {
                ck_assert(rc == -ETIMEDOUT || rc == -ENOENT);
                break;
            }
            void *v = NULL;
            ck_assert_int_eq(weft_future_result(f, &v), 0);
            seen[(intptr_t)v - 1000]++;
            got++;
            weft_future_release(f);
        }
    }
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_int_eq(epoll_ready(ep, 0), 0);
    close(ep);
    weft_completion_destroy(c);
    gw_release_all(fs, 2);
    gw_release_all(more, K);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Threads
 */

enum { CT_THREADS = 4, CT_PER_THREAD = 200 };

typedef struct ct_shared {
    weft_pool *pool;
    weft_completion *c;
    int fd;
    atomic_int seen[CT_THREADS * CT_PER_THREAD];
    atomic_int taken;
} ct_shared;

typedef struct ct_arg {
    ct_shared *sh;
    int index;
} ct_arg;

static void ct_take(ct_shared *sh, weft_future *f)
{
    void *v = NULL;
    TU_EXPECT(weft_future_result(f, &v) == 0);
    intptr_t id = (intptr_t)v;
    if (TU_EXPECT(id >= 0 && id < CT_THREADS * CT_PER_THREAD))
        atomic_fetch_add(&sh->seen[id], 1);
    atomic_fetch_add(&sh->taken, 1);
    weft_future_release(f);
}

/* Adds its own futures and takes whatever is ready, mixing every completion function. */
static void *ct_main(void *arg)
{
    ct_arg *a = arg;
    ct_shared *sh = a->sh;
    for (int k = 0; k < CT_PER_THREAD; k++) {
        intptr_t id = (intptr_t)a->index * CT_PER_THREAD + k;
        weft_future *f = NULL;
        if (!TU_EXPECT(weft_submit(sh->pool, tu_task_identity, (void *)id, &f) == 0))
            break;
        TU_EXPECT(weft_completion_add(sh->c, f) == 0);
        weft_future_release(f);
        TU_EXPECT(weft_completion_fd(sh->c) == sh->fd);
        weft_future *t = NULL;
        int rc = weft_completion_next(sh->c, k % 3 == 0 ? TU_MS(1) : 0, &t);
        if (rc == 0)
            ct_take(sh, t);
        else
            TU_EXPECT(rc == -ETIMEDOUT || rc == -ENOENT);
        if (k % 16 == 0) {
            struct pollfd pfd = {.fd = sh->fd, .events = POLLIN};
            TU_EXPECT(poll(&pfd, 1, 0) >= 0);
        }
    }
    return NULL;
}

START_TEST(test_completion_threads)
{
    ct_shared *sh = calloc(1, sizeof *sh);
    ck_assert_ptr_nonnull(sh);
    sh->pool = tu_pool_new(2, NULL);
    ck_assert_int_eq(weft_completion_create(&sh->c), 0);
    sh->fd = weft_completion_fd(sh->c);
    ck_assert_int_ge(sh->fd, 0);
    pthread_t th[CT_THREADS];
    ct_arg args[CT_THREADS];
    for (int i = 0; i < CT_THREADS; i++) {
        args[i] = (ct_arg){sh, i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, ct_main, &args[i]), 0);
    }
    for (int i = 0; i < CT_THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    /* Drain the rest. */
    for (;;) {
        weft_future *f = NULL;
        int rc = weft_completion_next(sh->c, WEFT_FOREVER, &f);
        if (rc == -ENOENT)
            break;
        ck_assert_int_eq(rc, 0);
        ct_take(sh, f);
    }
    ck_assert(!gw_readable(sh->fd, 0));
    ck_assert_int_eq(atomic_load(&sh->taken), CT_THREADS * CT_PER_THREAD);
    for (int i = 0; i < CT_THREADS * CT_PER_THREAD; i++)
        ck_assert_msg(atomic_load(&sh->seen[i]) == 1, "future %d handed out %d times", i,
                      atomic_load(&sh->seen[i]));
    weft_completion_destroy(sh->c);
    tu_pool_free(sh->pool);
    free(sh);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * On a worker: next helps instead of blocking (one worker).
 */

typedef struct cw_arg {
    weft_pool *pool;
    atomic_int ok;
} cw_arg;

static int slow_identity(void *arg, void **result)
{
    tu_sleep_ns(100000);
    *result = arg;
    return 0;
}

static int completion_on_worker(void *arg, void **result)
{
    (void)result;
    cw_arg *a = arg;
    enum { K = 10 };
    weft_future *fs[K];
    for (intptr_t i = 0; i < K; i++)
        if (!TU_EXPECT(weft_submit(a->pool, slow_identity, GW_VAL(i), &fs[i]) == 0))
            return -EIO;
    weft_completion *c = NULL;
    TU_EXPECT(weft_as_completed(fs, K, &c) == 0);
    gw_release_all(fs, K);
    int seen[K] = {0}, got = 0;
    for (;;) {
        weft_future *f = NULL;
        int rc = weft_completion_next(c, WEFT_FOREVER, &f);
        if (rc == -ENOENT)
            break;
        if (!TU_EXPECT(rc == 0))
            break;
        void *v = NULL;
        TU_EXPECT(weft_future_result(f, &v) == 0);
        seen[(intptr_t)v - 1000]++;
        got++;
        weft_future_release(f);
    }
    TU_EXPECT(got == K);
    for (int i = 0; i < K; i++)
        TU_EXPECT(seen[i] == 1);
    /* An open-ended set filled on the worker, taken with a timeout. */
    for (intptr_t i = 0; i < K; i++) {
        weft_future *f = NULL;
        TU_EXPECT(weft_submit(a->pool, slow_identity, GW_VAL(i), &f) == 0);
        TU_EXPECT(weft_completion_add(c, f) == 0);
        weft_future_release(f);
    }
    got = 0;
    for (int tries = 0; got < K && tries < 1000000; tries++) {
        weft_future *f = NULL;
        int rc = weft_completion_next(c, TU_MS(1), &f);
        if (rc == 0) {
            got++;
            weft_future_release(f);
        } else {
            TU_EXPECT(rc == -ETIMEDOUT);
        }
    }
    TU_EXPECT(got == K);
    weft_completion_destroy(c);
    atomic_store(&a->ok, 1);
    return 0;
}

START_TEST(test_completion_on_worker_helps)
{
    weft_pool *p = tu_pool_new(1, NULL);
    cw_arg a = {.pool = p};
    atomic_init(&a.ok, 0);
    weft_future *f = gw_submit(p, completion_on_worker, &a);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(atomic_load(&a.ok), 1);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* On a worker, next on a future held up elsewhere times out. */
static int timed_next_on_worker(void *arg, void **result)
{
    (void)result;
    weft_completion *c = arg;
    weft_future *f = NULL;
    TU_EXPECT(weft_completion_next(c, TU_MS(20), &f) == -ETIMEDOUT);
    TU_EXPECT(weft_completion_next(c, 0, &f) == -ETIMEDOUT);
    return 0;
}

START_TEST(test_completion_on_worker_timeout)
{
    weft_pool *p = tu_pool_new(1, NULL), *other = tu_pool_new(1, NULL);
    gw_job g;
    gw_job_init(&g, NULL, 0, false);
    weft_future *held = gw_submit_job(other, &g);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(&held, 1, &c), 0);
    weft_future *f = gw_submit(p, timed_next_on_worker, c);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);
    tu_gate_open(&g.gate);
    weft_future *t = take(c, WEFT_FOREVER);
    ck_assert_ptr_eq(t, held);
    weft_future_release(t);
    weft_completion_destroy(c);
    weft_future_release(held);
    tu_pool_free(p);
    tu_pool_free(other);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* weft_completion_submit: a task straight into a set, all or nothing. */
START_TEST(test_completion_submit)
{
    weft_pool *p = tu_pool_limits(1, 2, 0);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    tu_gate gate;
    tu_gate_init(&gate);
    ck_assert_int_eq(weft_completion_submit(c, p, tu_task_gate, &gate), 0);
    static int marker;
    int accepted = 1, refused = 0;
    for (int i = 0; i < 10; i++) {
        int rc = weft_completion_submit(c, p, tu_task_identity, &marker);
        ck_assert(rc == 0 || rc == -EAGAIN);
        if (rc == 0)
            accepted++;
        else
            refused++;
    }
    ck_assert_int_gt(refused, 0); /* max_pending refused some, and they are not in the set */
    ck_assert_int_eq(weft_completion_submit(NULL, p, tu_task_identity, NULL), -EINVAL);
    ck_assert_int_eq(weft_completion_submit(c, NULL, tu_task_identity, NULL), -EINVAL);
    ck_assert_int_eq(weft_completion_submit(c, p, NULL, NULL), -EINVAL);
    tu_gate_open(&gate);
    for (int i = 0; i < accepted; i++) {
        weft_future *f = NULL;
        ck_assert_int_eq(weft_completion_next(c, WEFT_FOREVER, &f), 0);
        ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
        weft_future_release(f);
    }
    weft_future *none = NULL;
    ck_assert_int_eq(weft_completion_next(c, 0, &none), -ENOENT);
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert_int_eq(weft_completion_submit(c, p, tu_task_identity, &marker), -ESHUTDOWN);
    ck_assert_int_eq(weft_completion_next(c, 0, &none), -ENOENT);
    weft_completion_destroy(c);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* weft_completion_submit_group: the task is in the group (waited for, cancelled by it) and its
 * future comes out of the set; a refusal leaves neither. */
START_TEST(test_completion_submit_group)
{
    weft_pool *p = tu_pool_limits(1, 0, 3);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    weft_group *g = NULL;
    ck_assert_int_eq(weft_group_create(p, &g), 0);
    tu_gate gate;
    tu_gate_init(&gate);
    static int marker;
    /* One runs (and holds the worker), two wait; the fourth finds no room. */
    ck_assert_int_eq(weft_completion_submit_group(c, g, tu_task_gate, &gate), 0);
    ck_assert_int_eq(weft_completion_submit_group(c, g, tu_task_identity, &marker), 0);
    ck_assert_int_eq(weft_completion_submit_group(c, g, tu_task_identity, &marker), 0);
    ck_assert_int_eq(weft_completion_submit_group(c, g, tu_task_identity, &marker), -EAGAIN);
    ck_assert_uint_eq(weft_group_pending(g), 3);
    ck_assert_int_eq(weft_completion_submit_group(NULL, g, tu_task_identity, NULL), -EINVAL);
    ck_assert_int_eq(weft_completion_submit_group(c, NULL, tu_task_identity, NULL), -EINVAL);
    ck_assert_int_eq(weft_completion_submit_group(c, g, NULL, NULL), -EINVAL);
    ck_assert_int_eq(weft_group_wait(g, 0), -ETIMEDOUT);
    /* The queued two are cancelled through the group and come out of the set first. */
    int cancelled = weft_group_cancel(g);
    /* The two queued ones; the gate task too if the worker has not started it yet. */
    ck_assert(cancelled == 2 || cancelled == 3);
    tu_gate_open(&gate);
    ck_assert_int_eq(weft_group_wait(g, WEFT_FOREVER), 0);
    ck_assert_uint_eq(weft_group_pending(g), 0);
    int done = 0, ncancelled = 0;
    for (int i = 0; i < 3; i++) {
        weft_future *f = NULL;
        ck_assert_int_eq(weft_completion_next(c, 0, &f), 0); /* all finished: ready now */
        weft_state st = weft_future_state(f);
        ck_assert(st == WEFT_DONE || st == WEFT_CANCELLED);
        if (st == WEFT_DONE)
            done++;
        else
            ncancelled++;
        weft_future_release(f);
    }
    ck_assert_int_eq(ncancelled, cancelled);
    ck_assert_int_eq(done + ncancelled, 3);
    weft_future *none = NULL;
    ck_assert_int_eq(weft_completion_next(c, 0, &none), -ENOENT);
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert_int_eq(weft_completion_submit_group(c, g, tu_task_identity, &marker), -ESHUTDOWN);
    ck_assert_uint_eq(weft_group_pending(g), 0);
    ck_assert_int_eq(weft_completion_next(c, 0, &none), -ENOENT);
    ck_assert_int_eq(weft_group_destroy(g), 0);
    weft_completion_destroy(c);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The descriptor under concurrent arrivals, with one thread taking: it is never readable with
 * nothing to take (each poll that says readable is followed by a successful next), it never
 * stays unreadable while something waits (a consumer that sleeps only in poll gets every
 * future), and it ends unreadable. Arrivals come from both workers and, as futures that have
 * already finished, from this thread's own adds. */
START_TEST(test_completion_fd_exact_threads)
{
    const long n = 20000 * tu_stress_scale();
    weft_pool *p = tu_pool_new(2, NULL);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    static int marker;
    long submitted = 0, taken = 0, spurious = 0;
    while (taken < n) {
        /* Batches of 16, each let come back entirely before the next: then, once any write
         * still under way has had time to land, the descriptor must be silent. */
        if (submitted % 16 == 0 && submitted > 0 && taken == submitted) {
            usleep(200);
            ck_assert_msg(!gw_readable(fd, 0), "readable with nothing ready, at %ld", taken);
        }
        while (submitted < n && (submitted % 16 != 0 || taken == submitted)) {
            if (submitted % 7 == 0) {
                weft_future *d = gw_done_future(p, &marker);
                ck_assert_int_eq(weft_completion_add(c, d), 0);
                weft_future_release(d);
            } else {
                ck_assert_int_eq(weft_completion_submit(c, p, tu_task_identity, &marker), 0);
            }
            submitted++;
        }
        weft_future *f = NULL;
        if (taken % 2 == 0) {
            /* Sleep in poll only: a descriptor that missed an arrival hangs here. */
            ck_assert_msg(gw_readable(fd, 30000), "%ld futures outstanding, descriptor silent",
                          submitted - taken);
            if (weft_completion_next(c, 0, &f) != 0) {
                spurious++;
                continue;
            }
        } else {
            /* Take without polling, as soon as a future arrives, often before its writer has
             * written the descriptor; then a poll that says readable must be right. */
            while (weft_completion_next(c, 0, &f) != 0) {
            }
            weft_future *g = NULL;
            if (gw_readable(fd, 0)) {
                if (weft_completion_next(c, 0, &g) == 0)
                    taken++;
                else
                    spurious++;
                weft_future_release(g);
            }
        }
        ck_assert_ptr_nonnull(f);
        weft_future_release(f);
        taken++;
        /* Sometimes take everything that is ready, so that the set empties. */
        while ((taken & 3) == 0 && weft_completion_next(c, 0, &f) == 0) {
            weft_future_release(f);
            taken++;
        }
    }
    ck_assert_int_eq(spurious, 0);
    weft_future *none = NULL;
    ck_assert_int_eq(weft_completion_next(c, 0, &none), -ENOENT);
    ck_assert(!gw_readable(fd, 0));
    weft_completion_destroy(c);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Destroying a set right after its last arrival, while the worker that finished the task may
 * still be writing the descriptor: destroy waits for it (ASan and TSan check the rest). */
START_TEST(test_completion_destroy_after_arrival)
{
    weft_pool *p = tu_pool_new(2, NULL);
    static int marker;
    for (int i = 0; i < 2000; i++) {
        weft_completion *c = NULL;
        ck_assert_int_eq(weft_completion_create(&c), 0);
        ck_assert_int_ge(weft_completion_fd(c), 0);
        ck_assert_int_eq(weft_completion_submit(c, p, tu_task_identity, &marker), 0);
        weft_future *f = NULL;
        ck_assert_int_eq(weft_completion_next(c, WEFT_FOREVER, &f), 0);
        weft_future_release(f);
        if (i % 2 == 0)
            ck_assert_int_eq(weft_completion_submit(c, p, tu_task_identity, &marker), 0);
        weft_completion_destroy(c); /* with the second one queued, running or just arrived */
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static Suite *completion_suite(void)
{
    Suite *s = suite_create("completion");

    TCase *tc = tcase_create("as_completed");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ac_completion_order);
    tcase_add_test(tc, test_completion_submit);
    tcase_add_test(tc, test_completion_submit_group);
    tcase_add_test(tc, test_ac_finished_first);
    tcase_add_test(tc, test_ac_timeout);
    tcase_add_test(tc, test_ac_empty);
    tcase_add_test(tc, test_ac_references);
    tcase_add_test(tc, test_completion_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("sets");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_completion_open_ended);
    tcase_add_test(tc, test_completion_add_to_as_completed);
    suite_add_tcase(s, tc);

    tc = tcase_create("fd");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_completion_fd_poll);
    tcase_add_test(tc, test_completion_fd_late);
    tcase_add_test(tc, test_completion_fd_epoll);
    tcase_add_test(tc, test_completion_fd_exact_threads);
    tcase_add_test(tc, test_completion_destroy_after_arrival);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_completion_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("helping");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_completion_on_worker_helps);
    tcase_add_test(tc, test_completion_on_worker_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(completion_suite());
}
