/* SPDX-License-Identifier: MIT */
/*
 * weft_mpi_future: MPI requests as futures, under mpirun on 1, 2 and 4 ranks (run_mpi.sh).
 *
 * Each rank talks to a partner, rank ^ 1, or itself when it has none (1 rank, the last of an
 * odd count). Every test uses tags of its own, so that no message leaks into another test.
 */
#include "mpiutil.h"

static int g_rank, g_size;

static int partner(void)
{
    int p = g_rank ^ 1;
    return p < g_size ? p : g_rank;
}

static int task_value(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static void irecv(int *buf, int n, int src, int tag, MPI_Request *r)
{
    ck_assert_int_eq(MPI_Irecv(buf, n, MPI_INT, src, tag, MPI_COMM_WORLD, r), MPI_SUCCESS);
}

static void isend(const int *buf, int n, int dst, int tag, MPI_Request *r)
{
    ck_assert_int_eq(MPI_Isend(buf, n, MPI_INT, dst, tag, MPI_COMM_WORLD, r), MPI_SUCCESS);
}

static weft_future *future_of(weft_pool *p, MPI_Request *r)
{
    weft_future *f = NULL;
    ck_assert_int_eq(weft_mpi_future(p, r, &f), 0);
    ck_assert(*r == MPI_REQUEST_NULL);
    ck_assert_ptr_nonnull(f);
    return f;
}

static const MPI_Status *status_of(weft_future *f)
{
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* --- bad input --- */

START_TEST(test_bad_input_leaves_request)
{
    weft_pool *p = tu_pool_new(2, NULL);
    int buf = 0;
    MPI_Request r = MPI_REQUEST_NULL;
    irecv(&buf, 1, g_rank, 100, &r);
    MPI_Request kept = r;
    weft_future *sentinel = (weft_future *)&buf, *f = sentinel;

    ck_assert_int_eq(weft_mpi_future(NULL, &r, &f), -EINVAL);
    ck_assert(r == kept);
    ck_assert_int_eq(weft_mpi_future(p, NULL, &f), -EINVAL);
    ck_assert_int_eq(weft_mpi_future(p, &r, NULL), -EINVAL);
    ck_assert(r == kept);
    MPI_Request null_req = MPI_REQUEST_NULL;
    ck_assert_int_eq(weft_mpi_future(p, &null_req, &f), -EINVAL);
    ck_assert(null_req == MPI_REQUEST_NULL);
    ck_assert_ptr_eq(f, sentinel);

    /* A shut-down pool refuses, and the request stays the caller's. */
    weft_pool *q = tu_pool_new(1, NULL);
    ck_assert_int_eq(weft_pool_shutdown(q, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert_int_eq(weft_mpi_future(q, &r, &f), -ESHUTDOWN);
    ck_assert(r == kept);
    ck_assert_ptr_eq(f, sentinel);
    tu_pool_free(q);

    /* Still a live request of ours: cancel and complete it by hand. */
    MPI_Status st;
    ck_assert_int_eq(MPI_Cancel(&r), MPI_SUCCESS);
    ck_assert_int_eq(MPI_Wait(&r, &st), MPI_SUCCESS);
    int cancelled = 0;
    MPI_Test_cancelled(&st, &cancelled);
    ck_assert(cancelled);
    tu_pool_free(p);
}
END_TEST

/* --- point to point, mixed with local futures --- */

enum { NMSG = 8 };

START_TEST(test_pingpong_gathered_with_local)
{
    weft_pool *p = tu_pool_new(2, NULL);
    int peer = partner();
    int out[NMSG], in[NMSG];
    weft_future *fs[2 * NMSG + 3];
    static int local_marks[3];
    for (int i = 0; i < NMSG; i++) {
        MPI_Request r;
        in[i] = -1;
        irecv(&in[i], 1, peer, 200 + i, &r);
        fs[i] = future_of(p, &r);
    }
    MPI_Barrier(MPI_COMM_WORLD); /* every receive is posted: the sends match them */
    for (int i = 0; i < NMSG; i++) {
        MPI_Request r;
        out[i] = peer * 1000 + i;
        isend(&out[i], 1, peer, 200 + i, &r);
        fs[NMSG + i] = future_of(p, &r);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft_submit(p, task_value, &local_marks[i], &fs[2 * NMSG + i]), 0);

    weft_future *g = NULL;
    ck_assert_int_eq(weft_gather(fs, 2 * NMSG + 3, 0, &g), 0);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(g, &v), 0);
    void **res = v;
    for (int i = 0; i < NMSG; i++) {
        const MPI_Status *st = res[i];
        ck_assert_int_eq(st->MPI_SOURCE, peer);
        ck_assert_int_eq(st->MPI_TAG, 200 + i);
        int count = -1;
        MPI_Get_count(st, MPI_INT, &count);
        ck_assert_int_eq(count, 1);
        ck_assert_int_eq(in[i], g_rank * 1000 + i);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(res[2 * NMSG + i], &local_marks[i]);
    /* The gather holds the children: the statuses outlive the caller's references. */
    for (int i = 0; i < 2 * NMSG + 3; i++)
        weft_future_release(fs[i]);
    const MPI_Status *st0 = res[0];
    ck_assert_int_eq(st0->MPI_TAG, 200);
    weft_future_release(g);
    ck_assert(mu_wait_no_pending(TU_PATIENCE_S));
    tu_pool_free(p);
}
END_TEST

/* weft_wait and a completion set with a request that is still pending beside local futures. */
START_TEST(test_wait_and_completion_set)
{
    weft_pool *p = tu_pool_new(2, NULL);
    int peer = partner();
    int in = -1, out = 7;
    MPI_Request r;
    irecv(&in, 1, peer, 300, &r);
    weft_future *recv_f = future_of(p, &r);
    weft_future *local = NULL;
    ck_assert_int_eq(weft_submit(p, task_value, NULL, &local), 0);

    /* The peer has not sent yet (it waits for the barrier below): the local future comes first. */
    weft_future *fs[2] = {recv_f, local}, *outs[2];
    size_t ndone = 0;
    ck_assert_int_eq(weft_wait(fs, 2, WEFT_FIRST_COMPLETED, WEFT_FOREVER, outs, &ndone), 0);
    ck_assert_uint_eq(ndone, 1);
    ck_assert_ptr_eq(outs[0], local);
    ck_assert_int_eq(weft_future_state(recv_f), WEFT_PENDING);

    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    ck_assert_int_eq(weft_completion_add(c, recv_f), 0);
    ck_assert_int_eq(weft_completion_add(c, local), 0);

    MPI_Barrier(MPI_COMM_WORLD);
    isend(&out, 1, peer, 300, &r);
    weft_future *send_f = future_of(p, &r);
    ck_assert_int_eq(weft_completion_add(c, send_f), 0);

    int seen = 0;
    bool saw_recv = false;
    weft_future *f = NULL;
    while (weft_completion_next(c, TU_MS(30000), &f) == 0) {
        if (f == recv_f)
            saw_recv = true;
        ck_assert(weft_future_done(f));
        weft_future_release(f);
        seen++;
    }
    ck_assert_int_eq(seen, 3);
    ck_assert(saw_recv);
    ck_assert_int_eq(in, 7);
    ck_assert_int_eq(status_of(recv_f)->MPI_SOURCE, peer);
    weft_completion_destroy(c);
    weft_future_release(recv_f);
    weft_future_release(send_f);
    weft_future_release(local);
    ck_assert(mu_wait_no_pending(TU_PATIENCE_S));
    tu_pool_free(p);
}
END_TEST

/* Many requests at once, handed out by as_completed exactly once each. */
START_TEST(test_many_requests_as_completed)
{
    enum { N = 1000 };
    weft_pool *p = tu_pool_new(2, NULL);
    int peer = partner();
    static int in[N], out[N];
    static weft_future *fs[2 * N];
    for (int i = 0; i < N; i++) {
        MPI_Request r;
        in[i] = -1;
        irecv(&in[i], 1, peer, 400, &r);
        fs[i] = future_of(p, &r);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < N; i++) {
        MPI_Request r;
        out[i] = i;
        isend(&out[i], 1, peer, 400, &r);
        fs[N + i] = future_of(p, &r);
    }
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(fs, 2 * N, &c), 0);
    int seen = 0;
    weft_future *f = NULL;
    while (weft_completion_next(c, TU_MS(30000), &f) == 0) {
        ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
        weft_future_release(f);
        seen++;
    }
    ck_assert_int_eq(seen, 2 * N);
    weft_completion_destroy(c);
    /* Messages between one pair with one tag arrive in order: receive i got send i. */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(in[i], i);
    for (int i = 0; i < 2 * N; i++)
        weft_future_release(fs[i]);
    ck_assert(mu_wait_no_pending(TU_PATIENCE_S));
    tu_pool_free(p);
}
END_TEST

/* --- cancel --- */

START_TEST(test_cancel_pending_irecv)
{
    weft_pool *p = tu_pool_new(1, NULL);
    int buf = 0;
    MPI_Request r;
    irecv(&buf, 1, MPI_ANY_SOURCE, 500, &r); /* nobody ever sends tag 500 */
    weft_future *f = future_of(p, &r);
    ck_assert_int_eq(weft_future_state(f), WEFT_PENDING);
    ck_assert_uint_ge(weft_mpi_pending(), 1);
    ck_assert_int_eq(weft_future_cancel(f), 1);
    ck_assert_int_eq(weft_future_state(f), WEFT_CANCELLED); /* at once */
    ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_cancel(f), 0);
    /* The library cancels the request in MPI, tests it until MPI is done, and frees it. */
    ck_assert(mu_wait_no_pending(TU_PATIENCE_S));
    ck_assert_int_eq(weft_future_state(f), WEFT_CANCELLED);
    weft_future_release(f);

    /* A finished future is not cancelled. */
    int x = 1, y = 0;
    MPI_Request rs, rr;
    irecv(&y, 1, g_rank, 501, &rr);
    isend(&x, 1, g_rank, 501, &rs);
    weft_future *fr = future_of(p, &rr), *fsend = future_of(p, &rs);
    ck_assert_int_eq(weft_future_wait(fr, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_cancel(fr), 0);
    ck_assert_int_eq(weft_future_state(fr), WEFT_DONE);
    ck_assert_int_eq(y, 1);
    ck_assert_int_eq(weft_future_wait(fsend, WEFT_FOREVER), 0);
    weft_future_release(fr);
    weft_future_release(fsend);
    tu_pool_free(p);
}
END_TEST

/* --- continuations, pool lifetime, persistent requests --- */

static int tag_of(weft_future *prev, void *arg, void **result)
{
    (void)arg;
    void *v = NULL;
    int rc = weft_future_result(prev, &v);
    if (rc != 0)
        return rc;
    *result = (void *)(intptr_t)((const MPI_Status *)v)->MPI_TAG;
    return 0;
}

START_TEST(test_then_on_a_request)
{
    weft_pool *p = tu_pool_new(2, NULL);
    int x = 3, y = 0;
    MPI_Request rs, rr;
    irecv(&y, 1, g_rank, 600, &rr);
    weft_future *fr = future_of(p, &rr);
    weft_future *t = NULL;
    ck_assert_int_eq(weft_future_then(fr, p, tag_of, NULL, &t), 0);
    weft_future_release(fr); /* the continuation holds its own */
    isend(&x, 1, g_rank, 600, &rs);
    weft_future *fsend = future_of(p, &rs);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(t, &v), 0);
    ck_assert_int_eq((int)(intptr_t)v, 600);
    ck_assert_int_eq(y, 3);
    weft_future_release(t);
    ck_assert_int_eq(weft_future_wait(fsend, WEFT_FOREVER), 0);
    weft_future_release(fsend);
    tu_pool_free(p);
}
END_TEST

START_TEST(test_future_outlives_its_pool)
{
    weft_pool *p = tu_pool_new(1, NULL);
    int x = 5, y = 0;
    MPI_Request rs, rr;
    irecv(&y, 1, g_rank, 700, &rr);
    weft_future *fr = future_of(p, &rr);
    ck_assert_int_eq(weft_pool_destroy(p), 0); /* neither waits for nor cancels the request */
    ck_assert_int_eq(weft_future_state(fr), WEFT_PENDING);
    isend(&x, 1, g_rank, 700, &rs);
    ck_assert_int_eq(MPI_Wait(&rs, MPI_STATUS_IGNORE), MPI_SUCCESS);
    ck_assert_int_eq(weft_future_wait(fr, TU_MS(30000)), 0);
    ck_assert_int_eq(status_of(fr)->MPI_TAG, 700);
    ck_assert_int_eq(y, 5);
    weft_future_release(fr);
}
END_TEST

START_TEST(test_persistent_request)
{
    weft_pool *p = tu_pool_new(1, NULL);
    int x = 9, y = 0;
    MPI_Request rr, rs;
    ck_assert_int_eq(MPI_Recv_init(&y, 1, MPI_INT, g_rank, 800, MPI_COMM_WORLD, &rr), 0);
    ck_assert_int_eq(MPI_Start(&rr), MPI_SUCCESS);
    weft_future *fr = future_of(p, &rr);
    isend(&x, 1, g_rank, 800, &rs);
    ck_assert_int_eq(MPI_Wait(&rs, MPI_STATUS_IGNORE), MPI_SUCCESS);
    ck_assert_int_eq(status_of(fr)->MPI_TAG, 800);
    ck_assert_int_eq(y, 9);
    weft_future_release(fr);
    ck_assert(mu_wait_no_pending(TU_PATIENCE_S)); /* and freed, not left inactive */
    tu_pool_free(p);
}
END_TEST

/* --- cost --- */

START_TEST(test_idle_costs_no_cpu)
{
    weft_pool *p = tu_pool_new(2, NULL);
    ck_assert(mu_wait_no_pending(TU_PATIENCE_S));
    tu_sleep_ms(50);
    int64_t c0 = tu_process_cpu_ns(), t0 = tu_now_ns();
    tu_sleep_ms(1000);
    int64_t idle = tu_process_cpu_ns() - c0, wall = tu_now_ns() - t0;

    /* One request pending for a second: the progress thread wakes once per backoff bound. */
    int buf = 0;
    MPI_Request r;
    irecv(&buf, 1, MPI_ANY_SOURCE, 900, &r);
    weft_future *f = future_of(p, &r);
    tu_sleep_ms(50);
    c0 = tu_process_cpu_ns();
    tu_sleep_ms(1000);
    int64_t pending = tu_process_cpu_ns() - c0;
    ck_assert_int_eq(weft_future_cancel(f), 1);
    weft_future_release(f);
    ck_assert(mu_wait_no_pending(TU_PATIENCE_S));
    tu_pool_free(p);

    printf("rank %d: CPU over %.2f s: %.2f ms idle, %.2f ms with one request pending\n", g_rank,
           (double)wall / 1e9, (double)idle / 1e6, (double)pending / 1e6);
    ck_assert_msg(idle < wall / 50, "idle CPU %lld ns over %lld ns", (long long)idle,
                  (long long)wall);
    /* A spinning thread would take a whole second; the backoff takes a few percent. */
    ck_assert_msg(pending < wall / 4, "CPU with one request pending: %lld ns", (long long)pending);
}
END_TEST

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    if (provided != MPI_THREAD_MULTIPLE) {
        fprintf(stderr, "this MPI does not provide MPI_THREAD_MULTIPLE\n");
        MPI_Finalize();
        return 1;
    }
    g_rank = mu_rank();
    g_size = mu_size();
    Suite *s = suite_create("mpi_future");
    TCase *tc = tcase_create("mpi_future");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bad_input_leaves_request);
    tcase_add_test(tc, test_pingpong_gathered_with_local);
    tcase_add_test(tc, test_wait_and_completion_set);
    tcase_add_test(tc, test_many_requests_as_completed);
    tcase_add_test(tc, test_cancel_pending_irecv);
    tcase_add_test(tc, test_then_on_a_request);
    tcase_add_test(tc, test_future_outlives_its_pool);
    tcase_add_test(tc, test_persistent_request);
    tcase_add_test(tc, test_idle_costs_no_cpu);
    suite_add_tcase(s, tc);
    int failed = mu_run_suite(s);
    MPI_Finalize();
    return failed == 0 ? 0 : 1;
}
