/* SPDX-License-Identifier: MIT */
/*
 * weft_wait (asyncio.wait): FIRST_COMPLETED, FIRST_EXCEPTION and ALL_COMPLETED; conditions
 * already true on entry; timeouts (not errors, cancelling nothing) and polls; the done/pending
 * partition in input order, out aliasing fs, and the "wait again on the pending ones" loop;
 * large sets; argument errors; no references taken; helping on a worker.
 *
 * Pending futures are kept pending by gates (gather_wait_util.h). The only timing assertions are
 * lower bounds on waits whose timeout is the behaviour under test.
 */
#include "gather_wait_util.h"

/* Checks that out[0..nd) are finished, out[nd..n) are the rest, both parts in the input order
 * of fs, and out is a permutation of fs. Test thread only. */
static void assert_partition(weft_future *const fs[], weft_future *const out[], size_t n, size_t nd)
{
    ck_assert_uint_le(nd, n);
    size_t pos[256];
    ck_assert_uint_le(n, 256);
    for (size_t k = 0; k < n; k++) {
        size_t i = 0;
        while (i < n && fs[i] != out[k])
            i++;
        ck_assert_msg(i < n, "out[%zu] is not in fs", k);
        pos[k] = i;
        if (k < nd)
            ck_assert_msg(weft_future_done(out[k]), "out[%zu] in the done part is not done", k);
        if (k > 0 && k != nd)
            ck_assert_msg(pos[k - 1] < pos[k], "out[%zu] out of input order", k);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Conditions
 */

START_TEST(test_wait_first_completed)
{
    enum { N = 3 };
    weft_pool *p = tu_pool_new(N, NULL);
    gw_job j[N];
    weft_future *fs[N], *out[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, false);
        fs[i] = gw_submit_job(p, &j[i]);
    }
    /* j[1] opens while the test thread is (most likely) blocked in the wait. */
    gw_opener op;
    tu_gate *g1 = &j[1].gate;
    gw_opener_start(&op, &g1, NULL, 1, TU_MS(20));
    size_t nd = 99;
    ck_assert_int_eq(weft_wait(fs, N, WEFT_FIRST_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    gw_opener_join(&op);
    ck_assert_uint_eq(nd, 1);
    ck_assert_ptr_eq(out[0], fs[1]);
    ck_assert_ptr_eq(out[1], fs[0]);
    ck_assert_ptr_eq(out[2], fs[2]);
    ck_assert_int_eq(weft_future_state(fs[1]), WEFT_DONE);
    assert_partition(fs, out, N, nd);

    /* A failure completes too. */
    j[2].ret = 3;
    tu_gate *g2 = &j[2].gate;
    gw_opener_start(&op, &g2, NULL, 1, TU_MS(20));
    ck_assert_int_eq(weft_wait(out + 1, 2, WEFT_FIRST_COMPLETED, WEFT_FOREVER, out + 1, &nd), 0);
    gw_opener_join(&op);
    ck_assert_uint_eq(nd, 1);
    ck_assert_ptr_eq(out[1], fs[2]);
    ck_assert_ptr_eq(out[2], fs[0]);

    tu_gate_open(&j[0].gate);
    gw_release_all(fs, N);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_wait_all_completed)
{
    enum { N = 5 };
    weft_pool *p = tu_pool_new(N, NULL);
    gw_job j[N];
    weft_future *fs[N], *out[N];
    tu_gate *gates[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), i == 2 ? 8 : 0, false);
        fs[i] = gw_submit_job(p, &j[i]);
    }
    static const int order[N] = {3, 0, 4, 2, 1};
    weft_future *order_f[N];
    for (int k = 0; k < N; k++) {
        gates[k] = &j[order[k]].gate;
        order_f[k] = fs[order[k]];
    }
    gw_opener op;
    gw_opener_start(&op, gates, order_f, N, TU_MS(5));
    size_t nd = 0;
    ck_assert_int_eq(weft_wait(fs, N, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_eq(nd, N);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_eq(out[i], fs[i]);
        ck_assert(weft_future_done(fs[i]));
    }
    gw_opener_join(&op);
    gw_release_all(fs, N);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_wait_first_exception)
{
    weft_pool *p = tu_pool_new(3, NULL);
    weft_pool *one = tu_pool_new(1, NULL);
    gw_blocker blk;
    gw_blocker_start(&blk, one);
    gw_job cj, fj, dj;
    gw_job_init(&cj, NULL, 0, false);
    gw_job_init(&fj, NULL, 21, false);
    gw_job_init(&dj, GW_VAL(3), 0, false);
    enum { N = 4 };
    weft_future *fs[N], *out[N];
    fs[0] = gw_done_future(p, GW_VAL(0));
    fs[1] = gw_submit_job(one, &cj); /* pending behind the blocker, then cancelled */
    fs[2] = gw_submit_job(p, &fj);
    fs[3] = gw_submit_job(p, &dj);
    ck_assert_int_eq(weft_future_cancel(fs[1]), 1);

    /* Done + cancelled, no failure: the condition does not hold; the timeout ends the wait. */
    size_t nd = 99;
    int64_t t0 = tu_now_ns();
    ck_assert_int_eq(weft_wait(fs, N, WEFT_FIRST_EXCEPTION, TU_MS(50), out, &nd), 0);
    int64_t took = tu_now_ns() - t0;
    ck_assert_msg(took >= TU_MS(50), "returned after %lld ns, before its timeout", (long long)took);
    ck_assert_uint_eq(nd, 2);
    ck_assert_ptr_eq(out[0], fs[0]);
    ck_assert_ptr_eq(out[1], fs[1]);
    ck_assert_ptr_eq(out[2], fs[2]);
    ck_assert_ptr_eq(out[3], fs[3]);

    /* A failure ends it, the other one still pending. */
    gw_opener op;
    tu_gate *gf = &fj.gate;
    gw_opener_start(&op, &gf, NULL, 1, TU_MS(20));
    ck_assert_int_eq(weft_wait(fs, N, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, out, &nd), 0);
    gw_opener_join(&op);
    ck_assert_uint_eq(nd, 3);
    ck_assert_ptr_eq(out[0], fs[0]);
    ck_assert_ptr_eq(out[1], fs[1]);
    ck_assert_ptr_eq(out[2], fs[2]);
    ck_assert_ptr_eq(out[3], fs[3]);
    ck_assert_int_eq(weft_future_state(fs[2]), WEFT_FAILED);
    ck_assert(!weft_future_done(fs[3]));

    /* Without any failure, all finished ends it: {done, cancelled, dj}. */
    weft_future *nofail[3] = {fs[0], fs[1], fs[3]};
    tu_gate *gd = &dj.gate;
    gw_opener_start(&op, &gd, NULL, 1, TU_MS(20));
    ck_assert_int_eq(weft_wait(nofail, 3, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, out, &nd), 0);
    gw_opener_join(&op);
    ck_assert_uint_eq(nd, 3);
    ck_assert_ptr_eq(out[2], fs[3]);

    /* Only a cancelled one: all finished, returns. */
    ck_assert_int_eq(weft_wait(&fs[1], 1, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_eq(nd, 1);

    gw_blocker_stop(&blk);
    gw_release_all(fs, N);
    tu_pool_free(p);
    tu_pool_free(one);
    ck_assert_int_eq(atomic_load(&cj.ran), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A cancelled running task (RUNNING -> CANCELLED) does not count as an exception either. */
START_TEST(test_wait_first_exception_running_cancel)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job a, b;
    gw_job_init(&a, NULL, 0, true);
    gw_job_init(&b, NULL, 0, false);
    weft_future *fs[2] = {gw_submit_job(p, &a), gw_submit_job(p, &b)}, *out[2];
    gw_wait_started(&a);
    ck_assert_int_eq(weft_future_cancel(fs[0]), 0);
    gw_wait_done(fs[0]);
    ck_assert_int_eq(weft_future_state(fs[0]), WEFT_CANCELLED);
    size_t nd = 99;
    ck_assert_int_eq(weft_wait(fs, 2, WEFT_FIRST_EXCEPTION, TU_MS(30), out, &nd), 0);
    ck_assert_uint_eq(nd, 1);
    ck_assert_ptr_eq(out[0], fs[0]);
    ck_assert(!weft_future_done(fs[1]));
    tu_gate_open(&b.gate);
    gw_release_all(fs, 2);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The condition already holds on entry: return at once, even with WEFT_FOREVER (otherwise the
 * gated futures would hold the wait until Check's timeout). */
START_TEST(test_wait_condition_on_entry)
{
    weft_pool *p = tu_pool_new(3, NULL);
    gw_job g0, g1;
    gw_job_init(&g0, NULL, 0, false);
    gw_job_init(&g1, NULL, 0, false);
    weft_future *d = gw_done_future(p, GW_VAL(0));
    weft_future *x = gw_failed_future(p, 4);
    weft_future *pend0 = gw_submit_job(p, &g0), *pend1 = gw_submit_job(p, &g1);
    weft_future *out[4];
    size_t nd = 99;

    weft_future *s1[3] = {pend0, d, pend1};
    ck_assert_int_eq(weft_wait(s1, 3, WEFT_FIRST_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_eq(nd, 1);
    ck_assert_ptr_eq(out[0], d);
    ck_assert_ptr_eq(out[1], pend0);
    ck_assert_ptr_eq(out[2], pend1);

    weft_future *s2[4] = {pend0, d, pend1, x};
    ck_assert_int_eq(weft_wait(s2, 4, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_eq(nd, 2);
    ck_assert_ptr_eq(out[0], d);
    ck_assert_ptr_eq(out[1], x);
    ck_assert_ptr_eq(out[2], pend0);
    ck_assert_ptr_eq(out[3], pend1);

    weft_future *s3[2] = {x, d};
    for (int when = WEFT_FIRST_COMPLETED; when <= WEFT_ALL_COMPLETED; when++) {
        ck_assert_int_eq(weft_wait(s3, 2, (weft_return_when)when, WEFT_FOREVER, out, &nd), 0);
        ck_assert_uint_eq(nd, 2);
        ck_assert_ptr_eq(out[0], x);
        ck_assert_ptr_eq(out[1], d);
    }
    tu_gate_open(&g0.gate);
    tu_gate_open(&g1.gate);
    weft_future *all[4] = {d, x, pend0, pend1};
    gw_release_all(all, 4);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Timeouts and polls
 */

START_TEST(test_wait_timeout)
{
    enum { N = 4 };
    weft_pool *p = tu_pool_new(3, NULL);
    gw_job j[3];
    weft_future *fs[N], *out[N];
    fs[2] = gw_done_future(p, GW_VAL(2));
    for (int i = 0; i < 3; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, true);
        fs[i == 2 ? 3 : i] = gw_submit_job(p, &j[i]);
    }
    for (int i = 0; i < 3; i++)
        gw_wait_started(&j[i]);

    for (int when = WEFT_FIRST_EXCEPTION; when <= WEFT_ALL_COMPLETED; when++) {
        size_t nd = 99;
        int64_t t0 = tu_now_ns();
        ck_assert_int_eq(weft_wait(fs, N, (weft_return_when)when, TU_MS(50), out, &nd), 0);
        int64_t took = tu_now_ns() - t0;
        ck_assert_msg(took >= TU_MS(50), "returned after %lld ns", (long long)took);
        ck_assert_uint_eq(nd, 1);
        ck_assert_ptr_eq(out[0], fs[2]);
        ck_assert_ptr_eq(out[1], fs[0]);
        ck_assert_ptr_eq(out[2], fs[1]);
        ck_assert_ptr_eq(out[3], fs[3]);
    }
    /* FIRST_COMPLETED over the gated ones only: nothing done. */
    weft_future *gated[3] = {fs[0], fs[1], fs[3]};
    size_t nd = 99;
    ck_assert_int_eq(weft_wait(gated, 3, WEFT_FIRST_COMPLETED, TU_MS(50), out, &nd), 0);
    ck_assert_uint_eq(nd, 0);
    ck_assert_ptr_eq(out[0], fs[0]);
    ck_assert_ptr_eq(out[1], fs[1]);
    ck_assert_ptr_eq(out[2], fs[3]);

    /* The timeout cancelled nothing: still running, no request seen. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft_future_state(gated[i]), WEFT_RUNNING);
    for (int i = 0; i < 3; i++)
        gw_finish(&j[i], gated[i]);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weft_future_state(gated[i]), WEFT_DONE);
        ck_assert_int_eq(atomic_load(&j[i].saw_request_after_gate), 0);
        ck_assert_int_eq(atomic_load(&j[i].cancelled), 0);
    }
    gw_release_all(fs, N);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_wait_poll)
{
    weft_pool *p = tu_pool_new(2, NULL);
    gw_job g;
    gw_job_init(&g, NULL, 0, false);
    weft_future *fs[3], *out[3];
    fs[0] = gw_submit_job(p, &g);
    fs[1] = gw_done_future(p, GW_VAL(1));
    fs[2] = gw_failed_future(p, 2);
    for (int when = WEFT_FIRST_COMPLETED; when <= WEFT_ALL_COMPLETED; when++) {
        size_t nd = 99;
        ck_assert_int_eq(weft_wait(fs, 3, (weft_return_when)when, 0, out, &nd), 0);
        ck_assert_uint_eq(nd, 2);
        ck_assert_ptr_eq(out[0], fs[1]);
        ck_assert_ptr_eq(out[1], fs[2]);
        ck_assert_ptr_eq(out[2], fs[0]);
        nd = 99;
        ck_assert_int_eq(weft_wait(fs, 1, (weft_return_when)when, 0, out, &nd), 0);
        ck_assert_uint_eq(nd, 0);
        ck_assert_ptr_eq(out[0], fs[0]);
    }
    gw_finish(&g, fs[0]);
    size_t nd = 0;
    ck_assert_int_eq(weft_wait(fs, 3, WEFT_ALL_COMPLETED, 0, out, &nd), 0);
    ck_assert_uint_eq(nd, 3);
    gw_release_all(fs, 3);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Partition
 */

START_TEST(test_wait_out_is_fs)
{
    enum { N = 6 };
    weft_pool *p = tu_pool_new(N, NULL);
    gw_job j[N];
    weft_future *orig[N], *fs[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, false);
        orig[i] = fs[i] = gw_submit_job(p, &j[i]);
    }
    gw_finish(&j[4], orig[4]);
    gw_finish(&j[1], orig[1]);
    gw_finish(&j[3], orig[3]);
    size_t nd = 0;
    ck_assert_int_eq(weft_wait(fs, N, WEFT_FIRST_COMPLETED, WEFT_FOREVER, fs, &nd), 0);
    ck_assert_uint_eq(nd, 3);
    static const int expect[N] = {1, 3, 4, 0, 2, 5};
    for (int k = 0; k < N; k++)
        ck_assert_msg(fs[k] == orig[expect[k]], "fs[%d] is not future %d", k, expect[k]);

    /* Continue on the pending part in place. */
    gw_finish(&j[5], orig[5]);
    ck_assert_int_eq(weft_wait(fs + nd, N - nd, WEFT_FIRST_COMPLETED, WEFT_FOREVER, fs + nd, &nd),
                     0);
    ck_assert_uint_eq(nd, 1);
    ck_assert_ptr_eq(fs[3], orig[5]);
    ck_assert_ptr_eq(fs[4], orig[0]);
    ck_assert_ptr_eq(fs[5], orig[2]);
    tu_gate_open(&j[0].gate);
    tu_gate_open(&j[2].gate);
    gw_release_all(orig, N);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The asyncio loop: `while pending: done, pending = wait(pending, FIRST_COMPLETED)`. Gates open
 * in a shuffled order from another thread; every future comes out done exactly once. */
START_TEST(test_wait_pending_loop)
{
    enum { N = 12 };
    weft_pool *p = tu_pool_new(N, NULL);
    gw_job j[N];
    weft_future *orig[N], *pend[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), i % 4 == 3 ? 11 : 0, false);
        orig[i] = pend[i] = gw_submit_job(p, &j[i]);
    }
    static const int order[N] = {7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4};
    tu_gate *gates[N];
    for (int k = 0; k < N; k++)
        gates[k] = &j[order[k]].gate;
    gw_opener op;
    gw_opener_start(&op, gates, NULL, N, TU_MS(3));

    int seen[N] = {0};
    size_t npend = N, rounds = 0;
    weft_future **rest = pend;
    while (npend > 0) {
        size_t nd = 0;
        weft_future *before[N];
        memcpy(before, rest, npend * sizeof *rest);
        ck_assert_int_eq(weft_wait(rest, npend, WEFT_FIRST_COMPLETED, WEFT_FOREVER, rest, &nd), 0);
        ck_assert_uint_ge(nd, 1);
        assert_partition(before, rest, npend, nd);
        for (size_t k = 0; k < nd; k++) {
            int i = 0;
            while (orig[i] != rest[k])
                i++;
            seen[i]++;
        }
        rest += nd;
        npend -= nd;
        rounds++;
    }
    gw_opener_join(&op);
    for (int i = 0; i < N; i++)
        ck_assert_msg(seen[i] == 1, "future %d came out %d times", i, seen[i]);
    ck_assert_uint_le(rounds, N);

    /* The same with a short timeout: rounds may end with nothing done. */
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, false);
        weft_future_release(orig[i]);
        orig[i] = pend[i] = gw_submit_job(p, &j[i]);
        seen[i] = 0;
    }
    gw_opener_start(&op, gates, NULL, N, TU_MS(2));
    rest = pend;
    npend = N;
    while (npend > 0) {
        size_t nd = 0;
        ck_assert_int_eq(weft_wait(rest, npend, WEFT_ALL_COMPLETED, TU_MS(1), rest, &nd), 0);
        for (size_t k = 0; k < nd; k++) {
            int i = 0;
            while (orig[i] != rest[k])
                i++;
            seen[i]++;
        }
        rest += nd;
        npend -= nd;
    }
    gw_opener_join(&op);
    for (int i = 0; i < N; i++)
        ck_assert_msg(seen[i] == 1, "future %d came out %d times", i, seen[i]);
    gw_release_all(orig, N);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* More than 64 futures (the allocating path). */
START_TEST(test_wait_large)
{
    enum { N = 200 };
    weft_pool *p = tu_pool_new(2, NULL);
    gw_blocker blk[2];
    gw_blocker_start(&blk[0], p);
    gw_blocker_start(&blk[1], p);
    static weft_future *fs[N], *out[N];
    for (int i = 0; i < N; i++)
        fs[i] = gw_submit(p, tu_task_identity, GW_VAL(i));
    size_t nd = 99;
    ck_assert_int_eq(weft_wait(fs, N, WEFT_FIRST_COMPLETED, 0, out, &nd), 0);
    ck_assert_uint_eq(nd, 0);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(out[i], fs[i]);
    ck_assert_int_eq(weft_wait(fs, N, WEFT_FIRST_COMPLETED, TU_MS(10), out, &nd), 0);
    ck_assert_uint_eq(nd, 0);
    gw_blocker_stop(&blk[0]);
    gw_blocker_stop(&blk[1]);
    ck_assert_int_eq(weft_wait(fs, N, WEFT_FIRST_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_ge(nd, 1);
    ck_assert_int_eq(weft_wait(fs, N, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_eq(nd, N);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(out[i], fs[i]);
    gw_release_all(fs, N);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Futures of two pools and gathers mixed in one wait. */
START_TEST(test_wait_mixed_sources)
{
    weft_pool *pa = tu_pool_new(1, "pa"), *pb = tu_pool_new(1, "pb");
    gw_job ja, jb;
    gw_job_init(&ja, NULL, 0, false);
    gw_job_init(&jb, NULL, 0, false);
    weft_future *fa = gw_submit_job(pa, &ja), *fb = gw_submit_job(pb, &jb);
    weft_future *g = NULL;
    weft_future *both[2] = {fa, fb};
    ck_assert_int_eq(weft_gather(both, 2, 0, &g), 0);
    weft_future *fs[3] = {g, fb, fa}, *out[3];
    size_t nd = 99;
    gw_finish(&jb, fb);
    ck_assert_int_eq(weft_wait(fs, 3, WEFT_FIRST_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_eq(nd, 1);
    ck_assert_ptr_eq(out[0], fb);
    tu_gate_open(&ja.gate);
    ck_assert_int_eq(weft_wait(fs, 3, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_eq(nd, 3);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    weft_future_release(g);
    weft_future_release(fa);
    weft_future_release(fb);
    tu_pool_free(pa);
    tu_pool_free(pb);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Arguments and references
 */

START_TEST(test_wait_einval)
{
    weft_pool *p = tu_pool_new(1, NULL);
    weft_future *a = gw_done_future(p, GW_VAL(0));
    weft_future *fs[2] = {a, a};
    weft_future *sentinel = (weft_future *)&sentinel;
    weft_future *out[3] = {sentinel, sentinel, sentinel};
    size_t nd = 77;

    ck_assert_int_eq(weft_wait(fs, 0, WEFT_ALL_COMPLETED, 0, out, &nd), -EINVAL);
    ck_assert_int_eq(weft_wait(NULL, 0, WEFT_ALL_COMPLETED, 0, out, &nd), -EINVAL);
    ck_assert_int_eq(weft_wait(NULL, 2, WEFT_ALL_COMPLETED, 0, out, &nd), -EINVAL);
    ck_assert_int_eq(weft_wait(fs, 2, WEFT_ALL_COMPLETED, 0, NULL, &nd), -EINVAL);
    ck_assert_int_eq(weft_wait(fs, 2, WEFT_ALL_COMPLETED, 0, out, NULL), -EINVAL);
    weft_future *with_null[3] = {a, NULL, a};
    ck_assert_int_eq(weft_wait(with_null, 3, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &nd), -EINVAL);
    ck_assert_int_eq(weft_wait(fs, 2, (weft_return_when)3, 0, out, &nd), -EINVAL);
    ck_assert_int_eq(weft_wait(fs, 2, (weft_return_when)-1, 0, out, &nd), -EINVAL);
    ck_assert_int_eq(weft_wait(fs, 2, (weft_return_when)1000, WEFT_FOREVER, out, &nd), -EINVAL);
    static const int64_t bad_timeouts[] = {-2, -1000, INT64_MIN};
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof bad_timeouts[0]; i++)
        ck_assert_int_eq(weft_wait(fs, 2, WEFT_ALL_COMPLETED, bad_timeouts[i], out, &nd), -EINVAL);
    /* Nothing was written. */
    ck_assert_uint_eq(nd, 77);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(out[i], sentinel);
    /* Sanity: the same call with good arguments works, a huge timeout too. */
    ck_assert_int_eq(weft_wait(fs, 2, WEFT_ALL_COMPLETED, INT64_MAX, out, &nd), 0);
    ck_assert_uint_eq(nd, 2);
    weft_future_release(a);
    tu_pool_free(p);
}
END_TEST

/* weft_wait takes no references: after many waits, one release per reference we hold frees
 * every future (ASan reports a leak otherwise, or a use after free had it released any). */
START_TEST(test_wait_takes_no_references)
{
    enum { N = 70 };
    weft_pool *p = tu_pool_new(2, NULL);
    static weft_future *fs[N], *out[N];
    static gw_job j[N];
    for (int i = 0; i < N; i++) {
        gw_job_init(&j[i], GW_VAL(i), 0, false);
        fs[i] = gw_submit_job(p, &j[i]);
    }
    size_t nd;
    for (int r = 0; r < 5; r++) {
        ck_assert_int_eq(weft_wait(fs, N, WEFT_ALL_COMPLETED, TU_MS(1), out, &nd), 0);
        ck_assert_int_eq(weft_wait(fs, 3, WEFT_FIRST_EXCEPTION, 0, out, &nd), 0);
    }
    for (int i = 0; i < N; i++)
        tu_gate_open(&j[i].gate);
    ck_assert_int_eq(weft_wait(fs, N, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    ck_assert_uint_eq(nd, N);
    for (int r = 0; r < 5; r++)
        ck_assert_int_eq(weft_wait(fs, N, WEFT_FIRST_COMPLETED, WEFT_FOREVER, out, &nd), 0);
    /* Each future still has exactly our reference (ASan: a use after free below had a wait
     * released one, a leak at exit had a wait kept one). */
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_DONE);
        weft_future_release(fs[i]);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * On a worker: waits help instead of blocking (one worker, so blocking would deadlock).
 */

typedef struct wtask_arg {
    weft_pool *pool;
    atomic_int ok;
} wtask_arg;

static int slow_value(void *arg, void **result)
{
    tu_sleep_ns(200000);
    *result = arg;
    return 0;
}

static int wait_on_worker(void *arg, void **result)
{
    (void)result;
    wtask_arg *a = arg;
    enum { K = 8 };
    weft_future *fs[K], *out[K];
    for (intptr_t i = 0; i < K; i++) {
        int rc = i == 5 ? weft_submit(a->pool, gw_task_fail, (void *)(intptr_t)31, &fs[i])
                        : weft_submit(a->pool, slow_value, GW_VAL(i), &fs[i]);
        if (!TU_EXPECT(rc == 0))
            return -EIO;
    }
    /* FIRST_COMPLETED loop until all done. */
    weft_future *pend[K];
    memcpy(pend, fs, sizeof fs);
    size_t npend = K, total = 0;
    weft_future **rest = pend;
    while (npend > 0) {
        size_t nd = 0;
        if (!TU_EXPECT(weft_wait(rest, npend, WEFT_FIRST_COMPLETED, WEFT_FOREVER, rest, &nd) == 0))
            break;
        TU_EXPECT(nd >= 1);
        for (size_t k = 0; k < nd; k++)
            TU_EXPECT(weft_future_done(rest[k]));
        total += nd;
        rest += nd;
        npend -= nd;
    }
    TU_EXPECT(total == K);
    gw_release_all(fs, K);

    /* FIRST_EXCEPTION and ALL_COMPLETED on fresh children. */
    for (intptr_t i = 0; i < K; i++)
        TU_EXPECT(weft_submit(a->pool, i == 2 ? gw_task_fail : slow_value,
                              i == 2 ? (void *)(intptr_t)32 : GW_VAL(i), &fs[i]) == 0);
    size_t nd = 0;
    TU_EXPECT(weft_wait(fs, K, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, out, &nd) == 0);
    bool failed = false;
    for (size_t k = 0; k < nd; k++)
        failed |= weft_future_state(out[k]) == WEFT_FAILED;
    TU_EXPECT(failed || nd == K);
    TU_EXPECT(weft_wait(fs, K, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &nd) == 0);
    TU_EXPECT(nd == K);
    /* A timed wait on a worker too. */
    TU_EXPECT(weft_wait(fs, K, WEFT_ALL_COMPLETED, TU_MS(5), out, &nd) == 0 && nd == K);
    gw_release_all(fs, K);
    atomic_store(&a->ok, 1);
    return 0;
}

START_TEST(test_wait_on_worker_helps)
{
    weft_pool *p = tu_pool_new(1, NULL);
    wtask_arg a = {.pool = p};
    atomic_init(&a.ok, 0);
    weft_future *f = gw_submit(p, wait_on_worker, &a);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(atomic_load(&a.ok), 1);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* On a worker, a wait whose futures are held up elsewhere times out and returns. */
static int timed_wait_on_worker(void *arg, void **result)
{
    (void)result;
    weft_future *f = arg;
    weft_future *out[1];
    size_t nd = 99;
    TU_EXPECT(weft_wait(&f, 1, WEFT_FIRST_COMPLETED, TU_MS(20), out, &nd) == 0);
    TU_EXPECT(nd == 0);
    TU_EXPECT(weft_wait(&f, 1, WEFT_ALL_COMPLETED, 0, out, &nd) == 0);
    TU_EXPECT(nd == 0);
    return 0;
}

START_TEST(test_wait_on_worker_timeout)
{
    weft_pool *p = tu_pool_new(1, NULL);
    weft_pool *other = tu_pool_new(1, NULL);
    gw_job g;
    gw_job_init(&g, NULL, 0, false);
    weft_future *held = gw_submit_job(other, &g);
    weft_future *f = gw_submit(p, timed_wait_on_worker, held);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    tu_gate_open(&g.gate);
    weft_future_release(f);
    weft_future_release(held);
    tu_pool_free(p);
    tu_pool_free(other);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static Suite *wait_suite(void)
{
    Suite *s = suite_create("wait");

    TCase *tc = tcase_create("conditions");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_first_completed);
    tcase_add_test(tc, test_wait_all_completed);
    tcase_add_test(tc, test_wait_first_exception);
    tcase_add_test(tc, test_wait_first_exception_running_cancel);
    tcase_add_test(tc, test_wait_condition_on_entry);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeouts");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_timeout);
    tcase_add_test(tc, test_wait_poll);
    suite_add_tcase(s, tc);

    tc = tcase_create("partition");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_out_is_fs);
    tcase_add_test(tc, test_wait_pending_loop);
    tcase_add_test(tc, test_wait_large);
    tcase_add_test(tc, test_wait_mixed_sources);
    suite_add_tcase(s, tc);

    tc = tcase_create("arguments");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_einval);
    tcase_add_test(tc, test_wait_takes_no_references);
    suite_add_tcase(s, tc);

    tc = tcase_create("helping");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_on_worker_helps);
    tcase_add_test(tc, test_wait_on_worker_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(wait_suite());
}
