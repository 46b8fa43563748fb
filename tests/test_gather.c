/* SPDX-License-Identifier: MIT */
/*
 * gather (asyncio.gather): results in input order whatever the finishing order, the result
 * array owned by the gather, failure and cancellation of children, WEFT_RETURN_EXCEPTIONS and
 * WEFT_CANCEL_ON_ERROR, gathers of gathers and their cancellation at every depth, children from
 * two pools, weft_gather_child, the argument errors, helping when a task gathers on a worker,
 * and wide gathers whose cancellation must cost neither stack nor work quadratic in their width.
 *
 * Children finish in an order the test chooses by opening their gates (gather_wait_util.h).
 */
#include "gather_wait_util.h"

/* ---------------------------------------------------------------------------------------------
 * Results
 */

START_TEST(test_gather_input_order)
{
    enum { N = 5 };
    weft_pool *p = tu_pool_new(N, NULL); /* every gated child gets a worker */
    gw_job jobs[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&jobs[i], GW_VAL(i), 0, false);
        fs[i] = gw_submit_job(p, &jobs[i]);
    }
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, N, 0, &g), 0);
    ck_assert_ptr_nonnull(g);
    ck_assert(!weft_future_done(g));
    ck_assert_int_eq(weft_future_wait(g, 0), -ETIMEDOUT);

    /* The last child finishes first, the first last. */
    for (int i = N - 1; i >= 0; i--) {
        ck_assert(!weft_future_done(g));
        ck_assert_int_eq(weft_gather_child(g, (size_t)i, NULL), -EAGAIN);
        gw_finish(&jobs[i], fs[i]);
        void *v = NULL;
        ck_assert_int_eq(weft_gather_child(g, (size_t)i, &v), 0);
        ck_assert_ptr_eq(v, GW_VAL(i));
    }
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    ck_assert_ptr_nonnull(r);
    void **arr = r;
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(arr[i], GW_VAL(i));
    /* The array is the gather's: asking again gives the same one. */
    void *r2 = NULL;
    ck_assert_int_eq(weft_future_result(g, &r2), 0);
    ck_assert_ptr_eq(r2, r);
    ck_assert_int_eq(weft_future_cancel(g), 0); /* finished */
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);

    gw_release_all(fs, N);
    /* Children released by the caller: the gather still holds them and its array. */
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        ck_assert_int_eq(weft_gather_child(g, (size_t)i, &v), 0);
        ck_assert_ptr_eq(v, GW_VAL(i));
        ck_assert_ptr_eq(arr[i], GW_VAL(i));
    }
    weft_future_release(g);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The caller releases its references to the children right after weft_gather, and in a second
 * case the gather too, while every child is still running or pending. */
START_TEST(test_gather_release_children_early)
{
    enum { N = 4 };
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job jobs[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&jobs[i], GW_VAL(i), 0, false);
        fs[i] = gw_submit_job(p, &jobs[i]);
    }
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, N, 0, &g), 0);
    gw_release_all(fs, N);

    /* A second gather over children nobody else holds, released before they finish. */
    gw_job more[N];
    weft_future *fs2[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&more[i], GW_VAL(10 + i), 0, false);
        fs2[i] = gw_submit_job(p, &more[i]);
    }
    weft_future *g2 = NULL;
    ck_assert_int_eq(weft_gather(fs2, N, WEFT_RETURN_EXCEPTIONS, &g2), 0);
    gw_release_all(fs2, N);
    weft_future_release(g2);

    for (int i = N - 1; i >= 0; i--) {
        tu_gate_open(&jobs[i].gate);
        tu_gate_open(&more[i].gate);
    }
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(((void **)r)[i], GW_VAL(i));
    weft_future_release(g);
    tu_pool_free(p); /* waits for the second group; ASan sees any leak or late use */
    TU_ASSERT_NO_FAILURES();
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&more[i].ran), 1);
}
END_TEST

START_TEST(test_gather_empty)
{
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(NULL, 0, 0, &g), 0);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    ck_assert(weft_future_done(g));
    ck_assert_int_eq(weft_future_wait(g, 0), 0);
    ck_assert_int_eq(weft_future_result(g, NULL), 0);
    void *r = &r;
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    ck_assert_int_eq(weft_gather_child(g, 0, NULL), -EINVAL);
    ck_assert_int_eq(weft_future_cancel(g), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    weft_future_release(g);

    /* Non-NULL fs with n == 0, every flag combination. */
    weft_future *dummy[1] = {NULL};
    for (unsigned flags = 0; flags < 4; flags++) {
        g = NULL;
        ck_assert_int_eq(weft_gather(dummy, 0, flags, &g), 0);
        ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
        weft_future_release(g);
    }
}
END_TEST

/* Children that have all finished before the gather is made: it is finished at once. */
START_TEST(test_gather_children_already_finished)
{
    weft_pool *p = tu_pool_new(2, NULL);
    weft_future *fs[3] = {gw_done_future(p, GW_VAL(0)), gw_done_future(p, GW_VAL(1)),
                          gw_done_future(p, GW_VAL(2))};
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 3, 0, &g), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(((void **)r)[i], GW_VAL(i));
    weft_future_release(g);

    /* One already FAILED: the gather is FAILED at once with its code. */
    weft_future *bad = gw_failed_future(p, 17);
    weft_future *fs2[3] = {fs[0], bad, fs[2]};
    ck_assert_int_eq(weft_gather(fs2, 3, 0, &g), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    ck_assert_int_eq(weft_future_result(g, NULL), 17);
    weft_future_release(g);

    /* The same with WEFT_RETURN_EXCEPTIONS: DONE at once. */
    ck_assert_int_eq(weft_gather(fs2, 3, WEFT_RETURN_EXCEPTIONS, &g), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    ck_assert_ptr_eq(((void **)r)[0], GW_VAL(0));
    ck_assert_ptr_null(((void **)r)[1]);
    ck_assert_ptr_eq(((void **)r)[2], GW_VAL(2));
    ck_assert_int_eq(weft_gather_child(g, 1, NULL), 17);
    weft_future_release(g);

    weft_future_release(bad);
    gw_release_all(fs, 3);
    tu_pool_free(p);
}
END_TEST

/* The same future twice in one gather. */
START_TEST(test_gather_same_child_twice)
{
    weft_pool *p = tu_pool_new(1, NULL);
    gw_job j;
    gw_job_init(&j, GW_VAL(7), 0, false);
    weft_future *f = gw_submit_job(p, &j);
    weft_future *fs[3] = {f, f, f};
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 3, 0, &g), 0);
    weft_future_release(f);
    tu_gate_open(&j.gate);
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(((void **)r)[i], GW_VAL(7));
    weft_future_release(g);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Arguments
 */

START_TEST(test_gather_einval)
{
    weft_pool *p = tu_pool_new(1, NULL);
    weft_future *a = gw_done_future(p, GW_VAL(0));
    weft_future *b = gw_done_future(p, GW_VAL(1));
    weft_future *fs[2] = {a, b};
    weft_future *sentinel = (weft_future *)&sentinel;
    weft_future *g = sentinel;

    ck_assert_int_eq(weft_gather(fs, 2, 0, NULL), -EINVAL);
    ck_assert_int_eq(weft_gather(NULL, 2, 0, &g), -EINVAL);
    ck_assert_ptr_eq(g, sentinel);
    weft_future *with_null[3] = {a, NULL, b};
    ck_assert_int_eq(weft_gather(with_null, 3, 0, &g), -EINVAL);
    ck_assert_ptr_eq(g, sentinel);
    weft_future *last_null[3] = {a, b, NULL};
    ck_assert_int_eq(weft_gather(last_null, 3, WEFT_RETURN_EXCEPTIONS, &g), -EINVAL);
    ck_assert_ptr_eq(g, sentinel);
    static const unsigned bad_flags[] = {0x4u, 0x8u, 0x7u, 0x100u, 0x80000000u, ~0u};
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        ck_assert_int_eq(weft_gather(fs, 2, bad_flags[i], &g), -EINVAL);
        ck_assert_ptr_eq(g, sentinel);
        ck_assert_int_eq(weft_gather(NULL, 0, bad_flags[i], &g), -EINVAL);
        ck_assert_ptr_eq(g, sentinel);
    }
    /* Both known flags together are accepted. */
    ck_assert_int_eq(weft_gather(fs, 2, WEFT_RETURN_EXCEPTIONS | WEFT_CANCEL_ON_ERROR, &g), 0);
    ck_assert_int_eq(weft_future_result(g, NULL), 0);

    /* weft_gather_child */
    ck_assert_int_eq(weft_gather_child(NULL, 0, NULL), -EINVAL);
    void *v = sentinel;
    ck_assert_int_eq(weft_gather_child(NULL, 0, &v), -EINVAL);
    ck_assert_int_eq(weft_gather_child(a, 0, &v), -EINVAL); /* not a gather */
    ck_assert_ptr_eq(v, sentinel);
    ck_assert_int_eq(weft_gather_child(g, 2, &v), -EINVAL);
    ck_assert_int_eq(weft_gather_child(g, SIZE_MAX, &v), -EINVAL);
    ck_assert_ptr_eq(v, sentinel);
    ck_assert_int_eq(weft_gather_child(g, 1, &v), 0);
    ck_assert_ptr_eq(v, GW_VAL(1));
    ck_assert_int_eq(weft_gather_child(g, 0, NULL), 0);
    weft_future_release(g);

    weft_future_release(a);
    weft_future_release(b);
    tu_pool_free(p);
}
END_TEST

/* -EAGAIN for a child that has not finished, then its code once it has; *result untouched for
 * a child that is not DONE. */
START_TEST(test_gather_child_pending)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job ok, bad;
    gw_job_init(&ok, GW_VAL(1), 0, false);
    gw_job_init(&bad, GW_VAL(2), 33, false);
    weft_future *fs[2] = {gw_submit_job(p, &ok), gw_submit_job(p, &bad)};
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 2, WEFT_RETURN_EXCEPTIONS, &g), 0);
    void *sentinel = &sentinel, *v = sentinel;
    ck_assert_int_eq(weft_gather_child(g, 0, &v), -EAGAIN);
    ck_assert_int_eq(weft_gather_child(g, 1, &v), -EAGAIN);
    ck_assert_ptr_eq(v, sentinel);
    gw_finish(&bad, fs[1]);
    ck_assert_int_eq(weft_gather_child(g, 1, &v), 33);
    ck_assert_ptr_eq(v, sentinel);
    ck_assert_int_eq(weft_gather_child(g, 0, &v), -EAGAIN);
    ck_assert(!weft_future_done(g)); /* RETURN_EXCEPTIONS: waits for all */
    gw_finish(&ok, fs[0]);
    ck_assert_int_eq(weft_gather_child(g, 0, &v), 0);
    ck_assert_ptr_eq(v, GW_VAL(1));
    ck_assert_int_eq(weft_future_result(g, NULL), 0);
    weft_future_release(g);
    gw_release_all(fs, 2);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Failure and cancellation of children
 */

/* Without flags the first failure fails the gather at once with its code; the others go on and
 * later failures change nothing. */
START_TEST(test_gather_first_failure)
{
    weft_pool *p = tu_pool_new(4, NULL);
    gw_job a, b, c, d;
    gw_job_init(&a, GW_VAL(0), 0, true);
    gw_job_init(&b, GW_VAL(1), 42, true);
    gw_job_init(&c, GW_VAL(2), 0, true);
    gw_job_init(&d, GW_VAL(3), 7, true);
    weft_future *fs[4] = {gw_submit_job(p, &a), gw_submit_job(p, &b), gw_submit_job(p, &c),
                          gw_submit_job(p, &d)};
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 4, 0, &g), 0);
    gw_wait_started(&a);
    gw_wait_started(&c);
    gw_wait_started(&d);

    tu_gate_open(&b.gate);
    /* Fails once b fails, while a, c and d are still running. */
    ck_assert_int_eq(weft_future_result(g, NULL), 42);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    ck_assert_int_eq(weft_future_state(fs[0]), WEFT_RUNNING);
    ck_assert_int_eq(weft_future_state(fs[2]), WEFT_RUNNING);
    ck_assert_int_eq(weft_future_state(fs[3]), WEFT_RUNNING);
    ck_assert_int_eq(weft_gather_child(g, 1, NULL), 42);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(g, &v), 42);

    gw_finish(&d, fs[3]); /* a second failure */
    gw_finish(&a, fs[0]);
    gw_finish(&c, fs[2]);
    /* Nobody cancelled them: they ran to their own end. */
    ck_assert_int_eq(weft_future_state(fs[0]), WEFT_DONE);
    ck_assert_int_eq(weft_future_state(fs[2]), WEFT_DONE);
    ck_assert_int_eq(weft_future_state(fs[3]), WEFT_FAILED);
    ck_assert_int_eq(atomic_load(&a.saw_request_after_gate), 0);
    ck_assert_int_eq(atomic_load(&c.saw_request_after_gate), 0);
    ck_assert_int_eq(weft_future_result(g, NULL), 42);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    ck_assert_int_eq(weft_gather_child(g, 0, &v), 0);
    ck_assert_ptr_eq(v, GW_VAL(0));
    ck_assert_int_eq(weft_gather_child(g, 3, NULL), 7);
    weft_future_release(g);
    gw_release_all(fs, 4);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A cancelled child fails the gather with -ECANCELED; the gather is FAILED, not CANCELLED. */
START_TEST(test_gather_cancelled_child)
{
    weft_pool *p = tu_pool_new(1, NULL);
    gw_blocker blk;
    gw_blocker_start(&blk, p);
    gw_job a, b;
    gw_job_init(&a, GW_VAL(0), 0, false);
    gw_job_init(&b, GW_VAL(1), 0, false);
    tu_gate_open(&a.gate);
    tu_gate_open(&b.gate);
    weft_future *fs[2] = {gw_submit_job(p, &a), gw_submit_job(p, &b)};
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 2, 0, &g), 0);
    ck_assert_int_eq(weft_future_cancel(fs[1]), 1);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    ck_assert_int_eq(weft_future_result(g, NULL), -ECANCELED);
    ck_assert_int_eq(weft_gather_child(g, 1, NULL), -ECANCELED);
    ck_assert_int_eq(weft_gather_child(g, 0, NULL), -EAGAIN);
    ck_assert_int_eq(weft_future_state(fs[0]), WEFT_PENDING); /* goes on */
    gw_blocker_stop(&blk);
    ck_assert_int_eq(weft_future_result(fs[0], NULL), 0);
    ck_assert_int_eq(weft_gather_child(g, 0, NULL), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    ck_assert_int_eq(atomic_load(&b.ran), 0);

    /* A running child that honours the request ends CANCELLED: same outcome. */
    gw_job r;
    gw_job_init(&r, NULL, 0, true);
    weft_future *rf = gw_submit_job(p, &r);
    weft_future *g2 = NULL;
    ck_assert_int_eq(weft_gather(&rf, 1, 0, &g2), 0);
    gw_wait_started(&r);
    ck_assert_int_eq(weft_future_cancel(rf), 0); /* running: a request */
    ck_assert_int_eq(weft_future_result(g2, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(g2), WEFT_FAILED);
    ck_assert_int_eq(weft_future_state(rf), WEFT_CANCELLED);
    weft_future_release(g2);
    weft_future_release(rf);

    weft_future_release(g);
    gw_release_all(fs, 2);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_gather_cancel_on_error)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job run, bad, pend;
    gw_job_init(&run, GW_VAL(0), 0, true);
    gw_job_init(&bad, GW_VAL(1), 5, false);
    gw_job_init(&pend, GW_VAL(2), 0, true);
    weft_future *fs[4];
    fs[3] = gw_done_future(p, GW_VAL(3)); /* finished before the gather */
    fs[0] = gw_submit_job(p, &run);
    fs[1] = gw_submit_job(p, &bad);
    gw_wait_started(&run);
    gw_wait_started(&bad);
    fs[2] = gw_submit_job(p, &pend); /* both workers busy: stays pending */
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 4, WEFT_CANCEL_ON_ERROR, &g), 0);
    ck_assert(!weft_future_done(g));

    tu_gate_open(&bad.gate);
    ck_assert_int_eq(weft_future_result(g, NULL), 5);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    /* The siblings were cancelled: the pending one never runs to its end, the running one sees
     * the request. */
    ck_assert_int_eq(weft_future_result(fs[2], NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(fs[2]), WEFT_CANCELLED);
    ck_assert_int_eq(weft_future_result(fs[0], NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(fs[0]), WEFT_CANCELLED);
    ck_assert_int_eq(atomic_load(&run.cancelled), 1);
    ck_assert_int_eq(weft_future_state(fs[3]), WEFT_DONE); /* finished ones stay */
    ck_assert_int_eq(weft_future_result(g, NULL), 5);      /* the first code stays */
    ck_assert_int_eq(weft_gather_child(g, 0, NULL), -ECANCELED);
    ck_assert_int_eq(weft_gather_child(g, 1, NULL), 5);
    ck_assert_int_eq(weft_gather_child(g, 2, NULL), -ECANCELED);
    ck_assert_int_eq(weft_gather_child(g, 3, NULL), 0);
    weft_future_release(g);
    tu_pool_free(p);
    /* never ran, or (a worker that a cancelled sibling freed took it before the cancel
     * reached it) started and honoured the request */
    ck_assert(atomic_load(&pend.ran) == 0 || atomic_load(&pend.cancelled) == 1);
    gw_release_all(fs, 4);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Without WEFT_CANCEL_ON_ERROR a failure cancels nothing (the request flag stays clear). */
START_TEST(test_gather_no_cancel_without_flag)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job run, bad;
    gw_job_init(&run, GW_VAL(0), 0, true);
    gw_job_init(&bad, GW_VAL(1), 5, false);
    weft_future *fs[2] = {gw_submit_job(p, &run), gw_submit_job(p, &bad)};
    gw_wait_started(&run);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 2, WEFT_RETURN_EXCEPTIONS, &g), 0);
    weft_future *g2 = NULL;
    ck_assert_int_eq(weft_gather(fs, 2, 0, &g2), 0);
    gw_finish(&bad, fs[1]);
    ck_assert_int_eq(weft_future_result(g2, NULL), 5);
    ck_assert(!weft_future_done(g));
    tu_gate_open(&run.gate);
    ck_assert_int_eq(weft_future_result(fs[0], NULL), 0);
    ck_assert_int_eq(atomic_load(&run.cancelled), 0);
    ck_assert_int_eq(atomic_load(&run.saw_request_after_gate), 0);
    ck_assert_int_eq(weft_future_result(g, NULL), 0);
    weft_future_release(g);
    weft_future_release(g2);
    gw_release_all(fs, 2);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_gather_return_exceptions)
{
    weft_pool *p = tu_pool_new(3, NULL);
    gw_blocker blk; /* not on this pool: a one-worker pool keeps the cancelled child pending */
    weft_pool *one = tu_pool_new(1, NULL);
    gw_blocker_start(&blk, one);

    gw_job ok0, bad1, ok3, bad4;
    gw_job_init(&ok0, GW_VAL(0), 0, false);
    gw_job_init(&bad1, GW_VAL(1), 9, false); /* sets *result, then fails: slot must be NULL */
    gw_job_init(&ok3, GW_VAL(3), 0, false);
    gw_job_init(&bad4, GW_VAL(4), -EIO, false);
    gw_job pend;
    gw_job_init(&pend, GW_VAL(2), 0, false);
    weft_future *fs[5];
    fs[0] = gw_submit_job(p, &ok0);
    fs[1] = gw_submit_job(p, &bad1);
    fs[2] = gw_submit_job(one, &pend);
    fs[3] = gw_submit_job(p, &ok3);
    fs[4] = gw_submit_job(one, &bad4); /* pending behind the blocker too */
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 5, WEFT_RETURN_EXCEPTIONS, &g), 0);

    gw_finish(&bad1, fs[1]);
    ck_assert(!weft_future_done(g));
    ck_assert_int_eq(weft_future_cancel(fs[2]), 1);
    ck_assert(!weft_future_done(g));
    gw_finish(&ok3, fs[3]);
    gw_finish(&ok0, fs[0]);
    ck_assert(!weft_future_done(g));
    tu_gate_open(&bad4.gate);
    gw_blocker_stop(&blk);

    void *r = NULL;
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    void **arr = r;
    ck_assert_ptr_eq(arr[0], GW_VAL(0));
    ck_assert_ptr_null(arr[1]);
    ck_assert_ptr_null(arr[2]);
    ck_assert_ptr_eq(arr[3], GW_VAL(3));
    ck_assert_ptr_null(arr[4]);
    void *sentinel = &sentinel;
    static const int codes[5] = {0, 9, -ECANCELED, 0, -EIO};
    for (size_t i = 0; i < 5; i++) {
        void *v = sentinel;
        ck_assert_int_eq(weft_gather_child(g, i, &v), codes[i]);
        if (codes[i] == 0)
            ck_assert_ptr_eq(v, GW_VAL(i));
        else
            ck_assert_ptr_eq(v, sentinel);
    }
    weft_future_release(g);
    gw_release_all(fs, 5);
    tu_pool_free(p);
    tu_pool_free(one);
    ck_assert_int_eq(atomic_load(&pend.ran), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Cancelling gathers
 */

/* ---------------------------------------------------------------------------------------------
 * Cancelling gathers
 */

START_TEST(test_gather_cancel)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job r0, r1, pend;
    gw_job_init(&r0, GW_VAL(0), 0, true);
    gw_job_init(&r1, GW_VAL(1), 0, true);
    gw_job_init(&pend, GW_VAL(2), 0, true);
    weft_future *fs[4];
    fs[3] = gw_done_future(p, GW_VAL(3));
    fs[0] = gw_submit_job(p, &r0);
    fs[1] = gw_submit_job(p, &r1);
    gw_wait_started(&r0);
    gw_wait_started(&r1);
    fs[2] = gw_submit_job(p, &pend);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 4, 0, &g), 0);

    ck_assert_int_eq(weft_future_cancel(g), 1);
    ck_assert_int_eq(weft_future_state(g), WEFT_CANCELLED);
    ck_assert_int_eq(weft_future_cancel(g), 0);
    ck_assert_int_eq(weft_future_result(g, NULL), -ECANCELED);
    /* The pending child is cancelled at once (or, started by a worker that a cancelled sibling
     * freed before the cancel reached it, by request), the running ones by request. */
    ck_assert(weft_future_state(fs[2]) == WEFT_CANCELLED ||
              weft_future_state(fs[2]) == WEFT_RUNNING);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), -ECANCELED);
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_CANCELLED);
        ck_assert_int_eq(weft_gather_child(g, (size_t)i, NULL), -ECANCELED);
    }
    ck_assert_int_eq(weft_future_state(fs[3]), WEFT_DONE);
    ck_assert_int_eq(weft_gather_child(g, 3, NULL), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_CANCELLED);
    weft_future_release(g);
    tu_pool_free(p);
    /* never ran, or (a worker that a cancelled sibling freed took it before the cancel
     * reached it) started and honoured the request */
    ck_assert(atomic_load(&pend.ran) == 0 || atomic_load(&pend.cancelled) == 1);
    ck_assert_int_eq(atomic_load(&r0.cancelled), 1);
    ck_assert_int_eq(atomic_load(&r1.cancelled), 1);
    gw_release_all(fs, 4);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Cancelling a finished gather returns 0 and changes nothing. */
START_TEST(test_gather_cancel_finished)
{
    weft_pool *p = tu_pool_new(1, NULL);
    weft_future *a = gw_done_future(p, GW_VAL(0));
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(&a, 1, 0, &g), 0);
    ck_assert_int_eq(weft_future_result(g, NULL), 0);
    ck_assert_int_eq(weft_future_cancel(g), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    ck_assert_int_eq(weft_future_state(a), WEFT_DONE);
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    ck_assert_ptr_eq(((void **)r)[0], GW_VAL(0));
    weft_future_release(g);
    weft_future_release(a);
    tu_pool_free(p);
}
END_TEST

/* Groups of groups: the result of a gather of gathers holds their arrays. */
START_TEST(test_gather_nested_results)
{
    enum { N = 5 };
    weft_pool *p = tu_pool_new(N, NULL);
    weft_future *x = gw_done_future(p, GW_VAL(99));
    gw_job j[N];
    weft_future *leaf[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, false);
        leaf[i] = gw_submit_job(p, &j[i]);
    }
    weft_future *g1 = NULL, *g11 = NULL, *g2 = NULL, *outer = NULL;
    weft_future *s1[2] = {leaf[0], leaf[1]};
    ck_assert_int_eq(weft_gather(s1, 2, 0, &g1), 0);
    weft_future *s11[2] = {leaf[3], leaf[4]};
    ck_assert_int_eq(weft_gather(s11, 2, 0, &g11), 0);
    weft_future *s2[2] = {leaf[2], g11};
    ck_assert_int_eq(weft_gather(s2, 2, 0, &g2), 0);
    weft_future *so[3] = {g1, g2, x};
    ck_assert_int_eq(weft_gather(so, 3, 0, &outer), 0);
    /* The outer gather holds the inner ones and they their children. */
    weft_future_release(g1);
    weft_future_release(g2);
    weft_future_release(g11);
    weft_future_release(x);

    for (int i = N - 1; i >= 0; i--) {
        ck_assert(!weft_future_done(outer));
        gw_finish(&j[i], leaf[i]);
    }
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(outer, &r), 0);
    void **o = r;
    void **r1 = o[0], **r2 = o[1];
    ck_assert_ptr_nonnull(r1);
    ck_assert_ptr_nonnull(r2);
    ck_assert_ptr_eq(o[2], GW_VAL(99));
    ck_assert_ptr_eq(r1[0], GW_VAL(0));
    ck_assert_ptr_eq(r1[1], GW_VAL(1));
    ck_assert_ptr_eq(r2[0], GW_VAL(2));
    void **r11 = r2[1];
    ck_assert_ptr_nonnull(r11);
    ck_assert_ptr_eq(r11[0], GW_VAL(3));
    ck_assert_ptr_eq(r11[1], GW_VAL(4));
    void *v = NULL;
    ck_assert_int_eq(weft_gather_child(outer, 1, &v), 0);
    ck_assert_ptr_eq(v, (void *)r2);
    weft_future_release(outer);
    gw_release_all(leaf, N);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Cancelling one group cancels its unfinished children and leaves the other group alone. */
START_TEST(test_gather_cancel_one_group)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job a, b, c, d;
    gw_job_init(&a, GW_VAL(0), 0, true);
    gw_job_init(&b, GW_VAL(1), 0, true);
    gw_job_init(&c, GW_VAL(2), 0, true);
    gw_job_init(&d, GW_VAL(3), 0, true);
    weft_future *fa = gw_submit_job(p, &a), *fc = gw_submit_job(p, &c);
    gw_wait_started(&a);
    gw_wait_started(&c);
    weft_future *fb = gw_submit_job(p, &b), *fd = gw_submit_job(p, &d); /* pending */
    weft_future *g1 = NULL, *g2 = NULL, *outer = NULL;
    weft_future *s1[2] = {fa, fb}, *s2[2] = {fc, fd};
    ck_assert_int_eq(weft_gather(s1, 2, 0, &g1), 0);
    ck_assert_int_eq(weft_gather(s2, 2, 0, &g2), 0);
    weft_future *so[2] = {g1, g2};
    ck_assert_int_eq(weft_gather(so, 2, 0, &outer), 0);

    ck_assert_int_eq(weft_future_cancel(g1), 1);
    ck_assert_int_eq(weft_future_state(g1), WEFT_CANCELLED);
    ck_assert_int_eq(weft_future_state(fb), WEFT_CANCELLED);
    ck_assert_int_eq(weft_future_result(fa, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(fa), WEFT_CANCELLED);
    /* The outer gather fails with -ECANCELED, as for any cancelled child. */
    ck_assert_int_eq(weft_future_result(outer, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(outer), WEFT_FAILED);
    /* The other group goes on untouched. */
    ck_assert(!weft_future_done(g2));
    ck_assert(!weft_future_done(fc));
    ck_assert(!weft_future_done(fd));
    tu_gate_open(&c.gate);
    tu_gate_open(&d.gate);
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(g2, &r), 0);
    ck_assert_ptr_eq(((void **)r)[0], GW_VAL(2));
    ck_assert_ptr_eq(((void **)r)[1], GW_VAL(3));
    ck_assert_int_eq(atomic_load(&c.saw_request_after_gate), 0);
    ck_assert_int_eq(atomic_load(&d.saw_request_after_gate), 0);
    ck_assert_int_eq(weft_future_state(outer), WEFT_FAILED);
    weft_future_release(outer);
    weft_future_release(g1);
    weft_future_release(g2);
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&b.ran), 0);
    weft_future *all[4] = {fa, fb, fc, fd};
    gw_release_all(all, 4);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A finished gather that is not DONE: CANCELLED, or FAILED with -ECANCELED. */
static void assert_cancelled_gather(weft_future *g, const char *name)
{
    weft_state st = weft_future_state(g);
    int rc = weft_future_result(g, NULL);
    ck_assert_msg((st == WEFT_CANCELLED || st == WEFT_FAILED) && rc == -ECANCELED,
                  "gather %s: state %d, code %d", name, (int)st, rc);
}

/* Cancelling the outer gather cancels every unfinished task at every depth:
 *   outer = [g1 = [l0, g11 = [l1, l2]], g2 = [l3], l4, done]
 * with l0 and l1 running (they honour requests) and l2, l3, l4 pending. */
START_TEST(test_gather_cancel_outer_deep)
{
    enum { N = 5 };
    weft_pool *p = tu_pool_new(2, NULL);
    weft_future *done = gw_done_future(p, GW_VAL(9));
    gw_job j[N];
    weft_future *leaf[N];
    for (int i = 0; i < N; i++)
        gw_job_init(&j[i], GW_VAL(i), 0, true);
    leaf[0] = gw_submit_job(p, &j[0]);
    leaf[1] = gw_submit_job(p, &j[1]);
    gw_wait_started(&j[0]);
    gw_wait_started(&j[1]);
    for (int i = 2; i < N; i++)
        leaf[i] = gw_submit_job(p, &j[i]); /* both workers busy: pending */

    weft_future *g11 = NULL, *g1 = NULL, *g2 = NULL, *outer = NULL;
    weft_future *s11[2] = {leaf[1], leaf[2]};
    ck_assert_int_eq(weft_gather(s11, 2, 0, &g11), 0);
    weft_future *s1[2] = {leaf[0], g11};
    ck_assert_int_eq(weft_gather(s1, 2, 0, &g1), 0);
    ck_assert_int_eq(weft_gather(&leaf[3], 1, 0, &g2), 0);
    weft_future *so[4] = {g1, g2, leaf[4], done};
    ck_assert_int_eq(weft_gather(so, 4, 0, &outer), 0);

    ck_assert_int_eq(weft_future_cancel(outer), 1);
    ck_assert_int_eq(weft_future_state(outer), WEFT_CANCELLED);
    ck_assert_int_eq(weft_future_result(outer, NULL), -ECANCELED);
    /* Pending ones: cancelled at once, unless a worker that l0 or l1 freed (they honour the
     * request at once) started one before the cancel reached it: then it got a request too. */
    for (int i = 2; i < N; i++) {
        weft_state st = weft_future_state(leaf[i]);
        ck_assert_msg(st == WEFT_CANCELLED || st == WEFT_RUNNING, "leaf %d: state %d", i, (int)st);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weft_future_result(leaf[i], NULL), -ECANCELED);
        ck_assert_int_eq(weft_future_state(leaf[i]), WEFT_CANCELLED);
    }
    assert_cancelled_gather(g11, "g11");
    assert_cancelled_gather(g1, "g1");
    assert_cancelled_gather(g2, "g2");
    ck_assert_int_eq(weft_future_state(done), WEFT_DONE);
    ck_assert_int_eq(weft_future_cancel(outer), 0);
    weft_future *gs[4] = {outer, g1, g2, g11};
    gw_release_all(gs, 4);
    tu_pool_free(p);
    for (int i = 2; i < N; i++) /* never ran, or started before the cancel and honoured it */
        ck_assert_msg(atomic_load(&j[i].ran) == 0 || atomic_load(&j[i].cancelled) == 1,
                      "pending leaf %d ran to its end", i);
    ck_assert_int_eq(atomic_load(&j[0].cancelled), 1);
    ck_assert_int_eq(atomic_load(&j[1].cancelled), 1);
    gw_release_all(leaf, N);
    weft_future_release(done);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Cancelling a gather that already FAILED still cancels its stragglers at every depth (no
 * orphans), returns 0 and leaves it FAILED with its first code:
 *   outer = [g1 = [f, l0], g2 = [l1, l2]]; f fails with 13 while l0 runs, l1 and l2 pending. */
START_TEST(test_gather_cancel_after_failed)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job f, l0, l1, l2;
    gw_job_init(&f, NULL, 13, false);
    gw_job_init(&l0, GW_VAL(0), 0, true);
    gw_job_init(&l1, GW_VAL(1), 0, true);
    gw_job_init(&l2, GW_VAL(2), 0, true);
    weft_future *ff = gw_submit_job(p, &f), *f0 = gw_submit_job(p, &l0);
    gw_wait_started(&f);
    gw_wait_started(&l0);
    weft_future *f1 = gw_submit_job(p, &l1), *f2 = gw_submit_job(p, &l2);
    weft_future *g1 = NULL, *g2 = NULL, *outer = NULL;
    weft_future *s1[2] = {ff, f0}, *s2[2] = {f1, f2};
    ck_assert_int_eq(weft_gather(s1, 2, 0, &g1), 0);
    ck_assert_int_eq(weft_gather(s2, 2, 0, &g2), 0);
    weft_future *so[2] = {g1, g2};
    ck_assert_int_eq(weft_gather(so, 2, 0, &outer), 0);

    tu_gate_open(&f.gate);
    ck_assert_int_eq(weft_future_result(outer, NULL), 13);
    ck_assert_int_eq(weft_future_state(outer), WEFT_FAILED);
    ck_assert_int_eq(weft_future_state(g1), WEFT_FAILED);
    /* l0 still runs (the worker f ran on may now have started l1). */
    ck_assert(!weft_future_done(f0));
    ck_assert(!weft_future_done(g2));

    ck_assert_int_eq(weft_future_cancel(outer), 0);
    ck_assert_int_eq(weft_future_state(outer), WEFT_FAILED);
    ck_assert_int_eq(weft_future_result(outer, NULL), 13);
    weft_future *stragglers[3] = {f0, f1, f2};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weft_future_result(stragglers[i], NULL), -ECANCELED);
        ck_assert_int_eq(weft_future_state(stragglers[i]), WEFT_CANCELLED);
    }
    ck_assert_int_eq(weft_future_state(g1), WEFT_FAILED);
    ck_assert_int_eq(weft_future_result(g1, NULL), 13);
    assert_cancelled_gather(g2, "g2");
    ck_assert_int_eq(weft_future_cancel(g1), 0);
    ck_assert_int_eq(weft_future_state(g1), WEFT_FAILED);

    weft_future *all[7] = {outer, g1, g2, ff, f0, f1, f2};
    gw_release_all(all, 7);
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&l0.cancelled), 1);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The same for a single failed gather cancelled directly. */
START_TEST(test_gather_cancel_failed_direct)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job bad, run;
    gw_job_init(&bad, NULL, -EIO, false);
    gw_job_init(&run, GW_VAL(1), 0, true);
    weft_future *fs[2] = {gw_submit_job(p, &bad), gw_submit_job(p, &run)};
    gw_wait_started(&run);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 2, 0, &g), 0);
    tu_gate_open(&bad.gate);
    ck_assert_int_eq(weft_future_result(g, NULL), -EIO);
    ck_assert(!weft_future_done(fs[1]));
    ck_assert_int_eq(weft_future_cancel(g), 0);
    ck_assert_int_eq(weft_future_result(fs[1], NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(fs[1]), WEFT_CANCELLED);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    ck_assert_int_eq(weft_future_result(g, NULL), -EIO);
    weft_future_release(g);
    gw_release_all(fs, 2);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Two pools
 */

START_TEST(test_gather_two_pools)
{
    weft_pool *pa = tu_pool_new(2, "pa");
    weft_pool *pb = tu_pool_new(2, "pb");
    enum { N = 4 };
    gw_job j[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, false);
        fs[i] = gw_submit_job(i % 2 ? pb : pa, &j[i]);
    }
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, N, 0, &g), 0);
    gw_release_all(fs, N);
    for (int i = N - 1; i >= 0; i--)
        tu_gate_open(&j[i].gate);
    void *r = NULL;
    ck_assert_int_eq(weft_future_result(g, &r), 0);
    /* Both pools gone: the gather and its array stay valid. */
    tu_pool_free(pa);
    tu_pool_free(pb);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_eq(((void **)r)[i], GW_VAL(i));
        void *v = NULL;
        ck_assert_int_eq(weft_gather_child(g, (size_t)i, &v), 0);
        ck_assert_ptr_eq(v, GW_VAL(i));
    }
    weft_future_release(g);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_gather_two_pools_cancel)
{
    weft_pool *pa = tu_pool_new(1, "pa");
    weft_pool *pb = tu_pool_new(1, "pb");
    gw_blocker ba, bb;
    gw_blocker_start(&ba, pa);
    gw_blocker_start(&bb, pb);
    gw_job ja, jb;
    gw_job_init(&ja, GW_VAL(0), 0, false);
    gw_job_init(&jb, GW_VAL(1), 0, false);
    weft_future *fs[2] = {gw_submit_job(pa, &ja), gw_submit_job(pb, &jb)};
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 2, 0, &g), 0);
    ck_assert_int_eq(weft_future_cancel(g), 1);
    ck_assert_int_eq(weft_future_state(fs[0]), WEFT_CANCELLED);
    ck_assert_int_eq(weft_future_state(fs[1]), WEFT_CANCELLED);
    gw_blocker_stop(&ba);
    gw_blocker_stop(&bb);
    tu_pool_free(pa);
    tu_pool_free(pb);
    ck_assert_int_eq(atomic_load(&ja.ran), 0);
    ck_assert_int_eq(atomic_load(&jb.ran), 0);
    weft_future_release(g);
    gw_release_all(fs, 2);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * On a worker: gathering helps instead of blocking. Every test here uses a single worker, so a
 * blocking wait would deadlock.
 */

typedef struct rec_arg {
    weft_pool *pool;
    int depth;
    unsigned flags;
} rec_arg;

/* Binary recursion: each level submits two children, gathers them and adds their values. The
 * leaves count 1. */
static int rec_task(void *arg, void **result)
{
    rec_arg *a = arg;
    if (a->depth == 0) {
        *result = (void *)(intptr_t)1;
        return 0;
    }
    rec_arg kids[2] = {{a->pool, a->depth - 1, a->flags}, {a->pool, a->depth - 1, a->flags}};
    weft_future *fs[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        if (!TU_EXPECT(weft_submit(a->pool, rec_task, &kids[i], &fs[i]) == 0))
            return -EIO;
    }
    weft_future *g = NULL;
    if (!TU_EXPECT(weft_gather(fs, 2, a->flags, &g) == 0))
        return -EIO;
    gw_release_all(fs, 2);
    void *r = NULL;
    int rc = weft_future_result(g, &r);
    intptr_t sum = 0;
    if (TU_EXPECT(rc == 0) && TU_EXPECT(r != NULL))
        sum = (intptr_t)((void **)r)[0] + (intptr_t)((void **)r)[1];
    weft_future_release(g);
    *result = (void *)sum;
    return rc;
}

typedef struct helper_arg {
    weft_pool *pool;
    atomic_int ok;
} helper_arg;

/* Submits children that fail or succeed, gathers with RETURN_EXCEPTIONS, waits with
 * weft_future_wait, then a nested gather, all on the worker. */
static int mixed_on_worker(void *arg, void **result)
{
    (void)result;
    helper_arg *h = arg;
    enum { K = 6 };
    weft_future *fs[K];
    for (intptr_t i = 0; i < K; i++) {
        int rc = i % 3 == 1 ? weft_submit(h->pool, gw_task_fail, (void *)(intptr_t)(50 + i), &fs[i])
                            : weft_submit(h->pool, tu_task_identity, GW_VAL(i), &fs[i]);
        if (!TU_EXPECT(rc == 0))
            return -EIO;
    }
    weft_future *g = NULL, *inner = NULL, *outer = NULL;
    TU_EXPECT(weft_gather(fs, K, WEFT_RETURN_EXCEPTIONS, &g) == 0);
    TU_EXPECT(weft_future_wait(g, WEFT_FOREVER) == 0);
    TU_EXPECT(weft_future_state(g) == WEFT_DONE);
    for (intptr_t i = 0; i < K; i++) {
        void *v = NULL;
        int rc = weft_gather_child(g, (size_t)i, &v);
        if (i % 3 == 1)
            TU_EXPECT(rc == 50 + i);
        else
            TU_EXPECT(rc == 0 && v == GW_VAL(i));
    }
    /* A nested gather of fresh children. */
    weft_future *kids[2];
    TU_EXPECT(weft_submit(h->pool, tu_task_identity, GW_VAL(100), &kids[0]) == 0);
    TU_EXPECT(weft_submit(h->pool, tu_task_identity, GW_VAL(101), &kids[1]) == 0);
    TU_EXPECT(weft_gather(kids, 2, 0, &inner) == 0);
    weft_future *so[2] = {inner, g};
    TU_EXPECT(weft_gather(so, 2, 0, &outer) == 0);
    void *r = NULL;
    TU_EXPECT(weft_future_result(outer, &r) == 0);
    if (TU_EXPECT(r != NULL)) {
        void **in = ((void **)r)[0];
        TU_EXPECT(in[0] == GW_VAL(100) && in[1] == GW_VAL(101));
    }
    weft_future_release(outer);
    weft_future_release(inner);
    weft_future_release(g);
    gw_release_all(kids, 2);
    gw_release_all(fs, K);
    atomic_store(&h->ok, 1);
    return 0;
}

START_TEST(test_gather_on_worker_helps)
{
    weft_pool *p = tu_pool_new(1, NULL);
    rec_arg top = {p, 8, 0};
    weft_future *f = gw_submit(p, rec_task, &top);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_int_eq((intptr_t)v, 256);
    weft_future_release(f);

    rec_arg top2 = {p, 6, WEFT_RETURN_EXCEPTIONS | WEFT_CANCEL_ON_ERROR};
    f = gw_submit(p, rec_task, &top2);
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_int_eq((intptr_t)v, 64);
    weft_future_release(f);

    helper_arg h = {.pool = p};
    atomic_init(&h.ok, 0);
    f = gw_submit(p, mixed_on_worker, &h);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(atomic_load(&h.ok), 1);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Wide gathers: cancelling the children of a gather is one pass over them, on a stack whose
 * depth does not grow with their number. Each cancellation fires the gather's node on that
 * child at once, on the cancelling thread; a sweep that swept again from there recursed once
 * per pending child and did O(n^2) work: 80,000 children overflowed the main thread's 8 MiB
 * stack, 20,000 the 1 MiB stack of a worker.
 */

/* A pool of one worker with a 1 MiB stack. Test thread only. */
static weft_pool *small_stack_pool(void)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    cfg.stack_size = (size_t)1 << 20;
    cfg.name = "small-stack";
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    ck_assert_msg(rc == 0, "weft_pool_create(1 MiB stack) = %d (%s)", rc, weft_strerror(rc));
    return p;
}

static size_t wide_n(size_t base)
{
    return base * (size_t)tu_stress_scale();
}

static weft_future **alloc_futures(size_t n)
{
    weft_future **fs = calloc(n, sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    return fs;
}

/* Test thread only: n children of p counting into *ran, pending while p's only worker is
 * busy. */
static void submit_pending(weft_pool *p, weft_future **fs, size_t n, atomic_int *ran)
{
    for (size_t i = 0; i < n; i++)
        fs[i] = gw_submit(p, tu_task_count, ran);
}

/* Test thread only: every one of fs[0..n) is CANCELLED now, without waiting. */
static void assert_all_cancelled(weft_future *const fs[], size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        weft_state st = weft_future_state(fs[i]);
        if (st != WEFT_CANCELLED)
            ck_abort_msg("%s: child %zu of %zu in state %d", what, i, n, (int)st);
    }
}

/* A task that waits for its gate, then cancels `target` (set before the gate opens). */
typedef struct cancel_job {
    tu_gate gate;
    atomic_int started;
    atomic_int rc;
    weft_future *target;
} cancel_job;

static void cancel_job_init(cancel_job *j)
{
    tu_gate_init(&j->gate);
    atomic_init(&j->started, 0);
    atomic_init(&j->rc, -1000);
    j->target = NULL;
}

static int cancel_job_task(void *arg, void **result)
{
    (void)result;
    cancel_job *j = arg;
    atomic_store(&j->started, 1);
    if (TU_EXPECT(tu_gate_wait(&j->gate)))
        atomic_store(&j->rc, weft_future_cancel(j->target));
    return 0;
}

/* Test thread only: starts j on p's only worker, which then stays busy until the gate. */
static weft_future *cancel_job_start(weft_pool *p, cancel_job *j)
{
    cancel_job_init(j);
    weft_future *f = gw_submit(p, cancel_job_task, j);
    ck_assert_msg(tu_wait_atomic_ge(&j->started, 1, TU_PATIENCE_S), "cancel job never started");
    return f;
}

/* Test thread only: makes j cancel target on its worker and waits until it has. */
static void cancel_job_run(cancel_job *j, weft_future *jf, weft_future *target)
{
    j->target = target;
    tu_gate_open(&j->gate);
    ck_assert_int_eq(weft_future_result(jf, NULL), 0);
    weft_future_release(jf);
}

/* Test thread only: a gather (WEFT_CANCEL_ON_ERROR) of n children of p's only worker, which
 * fails the first while the others are pending behind it; the worker cancels them. */
static void fail_one_on_worker(weft_pool *p, size_t n, atomic_int *ran)
{
    gw_job bad;
    gw_job_init(&bad, NULL, -EIO, false);
    weft_future **fs = alloc_futures(n);
    fs[0] = gw_submit_job(p, &bad);
    gw_wait_started(&bad);
    submit_pending(p, fs + 1, n - 1, ran);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, n, WEFT_CANCEL_ON_ERROR, &g), 0);
    tu_gate_open(&bad.gate);
    ck_assert_int_eq(weft_future_result(g, NULL), -EIO);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    /* The worker cancels the others after it failed the gather: wait until it is through. */
    for (size_t i = 1; i < n; i++)
        gw_wait_done(fs[i]);
    assert_all_cancelled(fs + 1, n - 1, "a child failed on a worker");
    ck_assert_int_eq(weft_gather_child(g, 0, NULL), -EIO);
    ck_assert_int_eq(weft_gather_child(g, n - 1, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_result(g, NULL), -EIO); /* the first code stays */
    weft_future_release(g);
    gw_release_all(fs, n);
    free(fs);
}

/* Test thread only: a task on p's only worker cancels a gather (WEFT_CANCEL_ON_ERROR) of n
 * children pending behind it. */
static void cancel_gather_on_worker(weft_pool *p, size_t n, atomic_int *ran)
{
    cancel_job cj;
    weft_future *jf = cancel_job_start(p, &cj);
    weft_future **fs = alloc_futures(n);
    submit_pending(p, fs, n, ran);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, n, WEFT_CANCEL_ON_ERROR, &g), 0);
    cancel_job_run(&cj, jf, g);
    ck_assert_int_eq(atomic_load(&cj.rc), 1);
    ck_assert_int_eq(weft_future_state(g), WEFT_CANCELLED);
    assert_all_cancelled(fs, n, "gather cancelled on a worker");
    ck_assert_int_eq(weft_future_cancel(g), 0);
    weft_future_release(g);
    gw_release_all(fs, n);
    free(fs);
}

/* On the main thread, 80,000 pending children and a running one: cancelling one child
 * (WEFT_CANCEL_ON_ERROR) cancels every other pending one and asks the running one to stop;
 * cancelling the gather itself cancels all of its children. */
START_TEST(test_gather_wide_cancel_on_error_main)
{
    size_t n = wide_n(80000);
    weft_pool *p = tu_pool_new(1, NULL);
    atomic_int ran;
    atomic_init(&ran, 0);
    gw_blocker blk;
    gw_blocker_start(&blk, p);

    /* One child cancelled: [blocker (running), n pending]. */
    weft_future **fs = alloc_futures(n + 1);
    fs[0] = blk.f;
    submit_pending(p, fs + 1, n, &ran);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, n + 1, WEFT_CANCEL_ON_ERROR, &g), 0);
    ck_assert_int_eq(weft_future_cancel(fs[1 + n / 2]), 1);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    ck_assert_int_eq(weft_future_result(g, NULL), -ECANCELED);
    assert_all_cancelled(fs + 1, n, "one child cancelled");
    ck_assert_int_eq(weft_future_state(blk.f), WEFT_RUNNING);

    /* The gather cancelled. */
    weft_future **fs2 = alloc_futures(n);
    submit_pending(p, fs2, n, &ran);
    weft_future *g2 = NULL;
    ck_assert_int_eq(weft_gather(fs2, n, WEFT_CANCEL_ON_ERROR, &g2), 0);
    ck_assert_int_eq(weft_future_cancel(g2), 1);
    ck_assert_int_eq(weft_future_state(g2), WEFT_CANCELLED);
    ck_assert_int_eq(weft_future_result(g2, NULL), -ECANCELED);
    assert_all_cancelled(fs2, n, "gather cancelled");
    ck_assert_int_eq(weft_future_cancel(g2), 0);

    /* The blocker was asked to stop, ignored it and ends DONE. */
    gw_blocker_stop(&blk);
    ck_assert_int_eq(atomic_load(&blk.job.saw_request_after_gate), 1);
    ck_assert_int_eq(weft_gather_child(g, 0, NULL), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
    weft_future_release(g);
    weft_future_release(g2);
    gw_release_all(fs + 1, n); /* fs[0] was the blocker's, released by gw_blocker_stop */
    gw_release_all(fs2, n);
    free(fs);
    free(fs2);
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&ran), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* On a worker with a 1 MiB stack, one child of a gather of 20,000 fails while the others are
 * pending: the worker cancels them all and survives. */
START_TEST(test_gather_wide_fail_on_small_stack)
{
    weft_pool *p = small_stack_pool();
    atomic_int ran;
    atomic_init(&ran, 0);
    fail_one_on_worker(p, wide_n(20000), &ran);
    tu_pool_check_works(p);
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&ran), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* 200,000 children, both ways, on a worker with a 1 MiB stack. A sweep that recursed would
 * overflow that stack; one that restarted its pass for each cancelled child (O(n^2)) would take
 * minutes at this size and run past this test case's timeout, set far above what a linear
 * sweep needs. No timing is measured. */
START_TEST(test_gather_wide_sweep_is_linear)
{
    weft_pool *p = small_stack_pool();
    atomic_int ran;
    atomic_init(&ran, 0);
    size_t n = wide_n(200000);
    fail_one_on_worker(p, n, &ran);
    cancel_gather_on_worker(p, n, &ran);
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&ran), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A gather (WEFT_CANCEL_ON_ERROR) of 4 gathers (WEFT_CANCEL_ON_ERROR) of 20,000 pending leaves
 * each, on a worker with a 1 MiB stack: cancelling the outer one cancels every leaf; then the
 * same shape where a leaf of the first inner gather fails on the worker. */
START_TEST(test_gather_wide_nested_cancel)
{
    enum { K = 4 };
    size_t m = wide_n(20000);
    weft_pool *p = small_stack_pool();
    atomic_int ran;
    atomic_init(&ran, 0);

    /* The outer gather cancelled. */
    cancel_job cj;
    weft_future *jf = cancel_job_start(p, &cj);
    weft_future **leaves = alloc_futures(K * m);
    weft_future *inner[K], *outer = NULL;
    submit_pending(p, leaves, K * m, &ran);
    for (size_t k = 0; k < K; k++)
        ck_assert_int_eq(weft_gather(leaves + k * m, m, WEFT_CANCEL_ON_ERROR, &inner[k]), 0);
    ck_assert_int_eq(weft_gather(inner, K, WEFT_CANCEL_ON_ERROR, &outer), 0);
    cancel_job_run(&cj, jf, outer);
    ck_assert_int_eq(atomic_load(&cj.rc), 1);
    ck_assert_int_eq(weft_future_state(outer), WEFT_CANCELLED);
    for (size_t k = 0; k < K; k++)
        ck_assert_int_eq(weft_future_state(inner[k]), WEFT_CANCELLED);
    assert_all_cancelled(leaves, K * m, "outer gather cancelled");
    weft_future_release(outer);
    gw_release_all(inner, K);
    gw_release_all(leaves, K * m);

    /* A leaf fails: its gather fails, which fails the outer one, which cancels the rest. */
    gw_job bad;
    gw_job_init(&bad, NULL, -EIO, false);
    leaves[0] = gw_submit_job(p, &bad);
    gw_wait_started(&bad);
    submit_pending(p, leaves + 1, K * m - 1, &ran);
    for (size_t k = 0; k < K; k++)
        ck_assert_int_eq(weft_gather(leaves + k * m, m, WEFT_CANCEL_ON_ERROR, &inner[k]), 0);
    ck_assert_int_eq(weft_gather(inner, K, WEFT_CANCEL_ON_ERROR, &outer), 0);
    tu_gate_open(&bad.gate);
    ck_assert_int_eq(weft_future_result(outer, NULL), -EIO);
    for (size_t i = 1; i < K * m; i++)
        gw_wait_done(leaves[i]);
    assert_all_cancelled(leaves + 1, K * m - 1, "a leaf failed");
    ck_assert_int_eq(weft_future_state(outer), WEFT_FAILED);
    ck_assert_int_eq(weft_future_state(inner[0]), WEFT_FAILED);
    ck_assert_int_eq(weft_future_result(inner[0], NULL), -EIO);
    for (size_t k = 1; k < K; k++)
        ck_assert_int_eq(weft_future_state(inner[k]), WEFT_CANCELLED);
    weft_future_release(outer);
    gw_release_all(inner, K);
    gw_release_all(leaves, K * m);
    free(leaves);
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&ran), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A callback on each child cancels the gather: the first one cancels it, and the callbacks its
 * sweep fires cancel it again from inside that sweep; they return at once rather than sweep
 * again (which recursed once per child), on a worker with a 1 MiB stack. */
typedef struct recancel {
    weft_future *g;
    atomic_int calls;
    atomic_int won;
} recancel;

static void recancel_cb(weft_future *f, void *data)
{
    recancel *r = data;
    TU_EXPECT(weft_future_state(f) == WEFT_CANCELLED);
    int rc = weft_future_cancel(r->g);
    TU_EXPECT(rc == 0 || rc == 1);
    atomic_fetch_add(&r->won, rc);
    atomic_fetch_add(&r->calls, 1);
}

START_TEST(test_gather_wide_cancel_from_callbacks)
{
    size_t n = wide_n(20000);
    weft_pool *p = small_stack_pool();
    atomic_int ran;
    atomic_init(&ran, 0);
    cancel_job cj;
    weft_future *jf = cancel_job_start(p, &cj);
    weft_future **fs = alloc_futures(n);
    submit_pending(p, fs, n, &ran);
    recancel r;
    atomic_init(&r.calls, 0);
    atomic_init(&r.won, 0);
    ck_assert_int_eq(weft_gather(fs, n, 0, &r.g), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(weft_future_on_done(fs[i], recancel_cb, &r), 0);
    cancel_job_run(&cj, jf, fs[0]);
    ck_assert_int_eq(atomic_load(&cj.rc), 1);
    ck_assert_int_eq(atomic_load(&r.calls), (int)n);
    ck_assert_int_eq(atomic_load(&r.won), 1);
    ck_assert_int_eq(weft_future_state(r.g), WEFT_CANCELLED);
    assert_all_cancelled(fs, n, "cancelled from callbacks");
    weft_future_release(r.g);
    gw_release_all(fs, n);
    free(fs);
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&ran), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Two threads cancel the same wide gather at once: when either call returns, every child is
 * cancelled, whichever thread did the work. */
typedef struct racer {
    weft_future *g;
    weft_future *const *fs;
    size_t n;
    atomic_int *ready;
    int rc;
} racer;

static void racer_cancel(racer *r)
{
    atomic_fetch_add(r->ready, 1);
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (atomic_load(r->ready) < 2 && tu_now_ns() < deadline) {
    }
    r->rc = weft_future_cancel(r->g);
    for (size_t i = 0; i < r->n; i++) {
        if (!TU_EXPECT(weft_future_state(r->fs[i]) == WEFT_CANCELLED))
            break;
    }
}

static void *racer_main(void *arg)
{
    racer_cancel(arg);
    return NULL;
}

START_TEST(test_gather_wide_cancel_two_threads)
{
    size_t n = wide_n(50000);
    weft_pool *p = tu_pool_new(1, NULL);
    atomic_int ran, ready;
    atomic_init(&ran, 0);
    gw_blocker blk;
    gw_blocker_start(&blk, p);
    for (int round = 0; round < 4; round++) {
        weft_future **fs = alloc_futures(n);
        submit_pending(p, fs, n, &ran);
        weft_future *g = NULL;
        ck_assert_int_eq(weft_gather(fs, n, round % 2 ? WEFT_CANCEL_ON_ERROR : 0, &g), 0);
        atomic_init(&ready, 0);
        racer a = {g, fs, n, &ready, -1000}, b = a;
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, racer_main, &b), 0);
        racer_cancel(&a);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_msg(a.rc + b.rc == 1 && a.rc >= 0 && b.rc >= 0, "cancel gave %d and %d", a.rc,
                      b.rc);
        ck_assert_int_eq(weft_future_state(g), WEFT_CANCELLED);
        weft_future_release(g);
        gw_release_all(fs, n);
        free(fs);
    }
    gw_blocker_stop(&blk);
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&ran), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* weft_gather_failed_child names the child that failed a fail-fast gather. */
START_TEST(test_gather_failed_child_index)
{
    enum { N = 6 };
    weft_future *ps[N], *g = NULL;
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_future_create(&ps[i]), 0);
    ck_assert_int_eq(weft_gather(ps, N, 0, &g), 0);
    size_t idx = 99;
    ck_assert_int_eq(weft_gather_failed_child(g, &idx), -EAGAIN);
    ck_assert_int_eq(weft_gather_failed_child(g, NULL), -EINVAL);
    ck_assert_int_eq(weft_gather_failed_child(ps[0], &idx), -EINVAL);
    ck_assert_int_eq(weft_gather_failed_child(NULL, &idx), -EINVAL);
    ck_assert_int_eq(weft_future_set_result(ps[0], NULL), 0);
    ck_assert_int_eq(weft_future_set_error(ps[4], -EPIPE), 0);
    ck_assert_int_eq(weft_future_set_error(ps[2], -EIO), 0); /* later: not the one */
    ck_assert_int_eq(weft_future_result(g, NULL), -EPIPE);
    ck_assert_int_eq(weft_gather_failed_child(g, &idx), 0);
    ck_assert_uint_eq(idx, 4);
    ck_assert_int_eq(weft_gather_child(g, idx, NULL), -EPIPE);
    weft_future_release(g);
    /* a cancelled child fails it too; DONE and cancelled gathers have no failed child */
    ck_assert_int_eq(weft_gather(ps + 1, 2, 0, &g), 0); /* ps[1] pending, ps[2] failed */
    ck_assert_int_eq(weft_gather_failed_child(g, &idx), 0);
    ck_assert_uint_eq(idx, 1);
    weft_future_release(g);
    ck_assert_int_eq(weft_gather(ps, 1, 0, &g), 0); /* ps[0] DONE */
    ck_assert_int_eq(weft_gather_failed_child(g, &idx), -ENOENT);
    weft_future_release(g);
    ck_assert_int_eq(weft_gather(ps + 1, 1, 0, &g), 0);
    ck_assert_int_eq(weft_future_cancel(g), 1);
    ck_assert_int_eq(weft_gather_failed_child(g, &idx), -ENOENT);
    weft_future_release(g);
    ck_assert_int_eq(weft_gather(ps + 5, 1, 0, &g), 0); /* a cancelled child */
    ck_assert_int_eq(weft_future_cancel(ps[5]), 1);
    ck_assert_int_eq(weft_gather_failed_child(g, &idx), 0);
    ck_assert_uint_eq(idx, 0);
    ck_assert_int_eq(weft_future_result(g, NULL), -ECANCELED);
    weft_future_release(g);
    /* The first gather still watches ps[3], which nobody completes: end it, so that the
     * gather, whose node on ps[3] keeps it, is freed too. */
    for (int i = 0; i < N; i++) {
        weft_future_cancel(ps[i]);
        weft_future_release(ps[i]);
    }
}
END_TEST

/* Two children failing a gather at once, from two threads: the one that loses the claim on the
 * gather returns only once the gather has finished, so each sees it done on return. */
typedef struct fail_racer {
    weft_future *p;
    pthread_barrier_t *go;
    weft_future *g;
    bool done_after;
} fail_racer;

static void *fail_racer_main(void *arg)
{
    fail_racer *r = arg;
    pthread_barrier_wait(r->go);
    ck_assert_int_eq(weft_future_set_error(r->p, -EIO), 0);
    r->done_after = weft_future_done(r->g);
    return NULL;
}

START_TEST(test_gather_two_failures_at_once)
{
    long trials = 2000 * tu_stress_scale();
    for (long t = 0; t < trials; t++) {
        weft_future *p[2], *g = NULL;
        ck_assert_int_eq(weft_future_create(&p[0]), 0);
        ck_assert_int_eq(weft_future_create(&p[1]), 0);
        ck_assert_int_eq(weft_gather(p, 2, 0, &g), 0);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        fail_racer r[2] = {{p[0], &go, g, false}, {p[1], &go, g, false}};
        pthread_t th[2];
        for (int k = 0; k < 2; k++)
            ck_assert_int_eq(pthread_create(&th[k], NULL, fail_racer_main, &r[k]), 0);
        for (int k = 0; k < 2; k++)
            ck_assert_int_eq(pthread_join(th[k], NULL), 0);
        pthread_barrier_destroy(&go);
        ck_assert(r[0].done_after && r[1].done_after);
        ck_assert_int_eq(weft_future_state(g), WEFT_FAILED);
        weft_future_release(g);
        weft_future_release(p[0]);
        weft_future_release(p[1]);
    }
}
END_TEST

static Suite *gather_suite(void)
{
    Suite *s = suite_create("gather");

    TCase *tc = tcase_create("results");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gather_input_order);
    tcase_add_test(tc, test_gather_release_children_early);
    tcase_add_test(tc, test_gather_empty);
    tcase_add_test(tc, test_gather_children_already_finished);
    tcase_add_test(tc, test_gather_same_child_twice);
    tcase_add_test(tc, test_gather_two_pools);
    suite_add_tcase(s, tc);

    tc = tcase_create("arguments");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gather_einval);
    tcase_add_test(tc, test_gather_child_pending);
    suite_add_tcase(s, tc);

    tc = tcase_create("failure");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gather_first_failure);
    tcase_add_test(tc, test_gather_cancelled_child);
    tcase_add_test(tc, test_gather_cancel_on_error);
    tcase_add_test(tc, test_gather_no_cancel_without_flag);
    tcase_add_test(tc, test_gather_return_exceptions);
    tcase_add_test(tc, test_gather_two_failures_at_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gather_cancel);
    tcase_add_test(tc, test_gather_cancel_finished);
    tcase_add_test(tc, test_gather_cancel_failed_direct);
    tcase_add_test(tc, test_gather_two_pools_cancel);
    suite_add_tcase(s, tc);

    tc = tcase_create("nested");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gather_nested_results);
    tcase_add_test(tc, test_gather_cancel_one_group);
    tcase_add_test(tc, test_gather_cancel_outer_deep);
    tcase_add_test(tc, test_gather_cancel_after_failed);
    suite_add_tcase(s, tc);

    tc = tcase_create("wide");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gather_wide_cancel_on_error_main);
    tcase_add_test(tc, test_gather_wide_fail_on_small_stack);
    tcase_add_test(tc, test_gather_wide_nested_cancel);
    tcase_add_test(tc, test_gather_wide_cancel_from_callbacks);
    tcase_add_test(tc, test_gather_wide_cancel_two_threads);
    suite_add_tcase(s, tc);

    /* A linear sweep needs well under a second here; O(n^2) would need minutes. */
    tc = tcase_create("linear");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_gather_wide_sweep_is_linear);
    suite_add_tcase(s, tc);

    tc = tcase_create("helping");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gather_on_worker_helps);
    tcase_add_test(tc, test_gather_failed_child_index);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(gather_suite());
}
