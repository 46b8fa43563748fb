/* SPDX-License-Identifier: MIT */
/*
 * Cancellation against everything that runs at the same time: weft_future_cancel racing the
 * pool's destruction, weft_pool_shutdown(CANCEL) called from callbacks, and CANCEL shutdowns
 * racing submissions made from inside the pool.
 *
 *  - A cancel racing weft_pool_destroy touches only the future and what outlives the pool
 *    (AddressSanitizer reports any use of the freed pool); a cancelled task never runs, every
 *    other one runs once, and the max_pending budget comes back with every cancel.
 *  - weft_pool_shutdown(CANCEL) from an on_done callback (on the test thread, on a worker, and
 *    nested inside another shutdown's callbacks) returns at once; every callback runs once.
 *  - When weft_pool_shutdown(CANCEL) returns, no future submitted before it is PENDING:
 *    submissions from inside the pool (onto a worker's own deque) and futures that a weft_join
 *    half left above its frame included.
 * Sizes scale with $WEFT_STRESS_SCALE.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

static weft_pool *pool_with(unsigned threads, size_t max_pending)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = threads;
    cfg.max_pending = max_pending;
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    ck_assert_msg(rc == 0, "weft_pool_create = %d (%s)", rc, weft_strerror(rc));
    return p;
}

/* ---------------------------------------------------------------------------------------------
 * weft_future_cancel racing weft_pool_destroy
 */

enum { RACE_TASKS = 64 };

typedef struct race {
    weft_future *fs[RACE_TASKS];
    atomic_int runs[RACE_TASKS];
    atomic_int cancels;
    tu_gate go;
} race;

typedef struct race_arg {
    race *r;
    int i;
} race_arg;

static int task_race(void *arg, void **result)
{
    (void)result;
    race_arg *a = arg;
    atomic_fetch_add(&a->r->runs[a->i], 1);
    return 0;
}

static _Thread_local bool on_canceller;

/* Runs where the future finished. On the cancelling thread it stalls the cancel after its CAS,
 * long enough for the pool to be destroyed meanwhile. */
static void cb_stall_canceller(weft_future *f, void *data)
{
    (void)f;
    (void)data;
    if (on_canceller)
        tu_sleep_ms(1);
}

static void *canceller(void *arg)
{
    race *r = arg;
    on_canceller = true;
    TU_EXPECT(tu_gate_wait(&r->go));
    for (int i = RACE_TASKS - 1; i >= 0; i--) {
        int rc = weft_future_cancel(r->fs[i]);
        TU_EXPECT(rc == 0 || rc == 1);
        if (rc == 1)
            atomic_fetch_add(&r->cancels, 1);
    }
    return NULL;
}

START_TEST(test_cancel_races_destroy)
{
    long trials = 100 * tu_stress_scale();
    race_arg args[RACE_TASKS];
    for (long t = 0; t < trials; t++) {
        race r;
        atomic_init(&r.cancels, 0);
        tu_gate_init(&r.go);
        /* max_pending set: the futures count against a budget the cancel gives back */
        weft_pool *p = pool_with(1 + (unsigned)(t % 2), 4 * RACE_TASKS);
        for (int i = 0; i < RACE_TASKS; i++) {
            atomic_init(&r.runs[i], 0);
            args[i] = (race_arg){&r, i};
            ck_assert_int_eq(weft_submit(p, task_race, &args[i], &r.fs[i]), 0);
            if (i % 16 == 0)
                ck_assert_int_eq(weft_future_on_done(r.fs[i], cb_stall_canceller, NULL), 0);
        }
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, canceller, &r), 0);
        tu_gate_open(&r.go);
        ck_assert_int_eq(weft_pool_destroy(p), 0); /* while the cancels go on */
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        int ran = 0;
        for (int i = 0; i < RACE_TASKS; i++) {
            weft_state st = weft_future_state(r.fs[i]);
            int runs = atomic_load(&r.runs[i]);
            ck_assert_msg(st == WEFT_DONE || st == WEFT_CANCELLED, "task %d ended %d", i, st);
            ck_assert_int_eq(runs, st == WEFT_DONE ? 1 : 0);
            ran += runs;
            weft_future_release(r.fs[i]);
        }
        ck_assert_int_eq(ran + atomic_load(&r.cancels), RACE_TASKS);
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Cancelling a queued task gives its place under max_pending back at once. */
START_TEST(test_cancel_gives_budget_back)
{
    enum { K = 4 };
    weft_pool *p = pool_with(1, K);
    tu_gate gate;
    tu_gate_init(&gate);
    weft_future *blocker = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_gate, &gate, &blocker), 0);
    while (weft_future_state(blocker) == WEFT_PENDING)
        tu_sleep_ms(1);
    weft_future *q[K];
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &q[i]), 0);
    weft_future *extra = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &extra), -EAGAIN);
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(weft_future_cancel(q[round]), 1);
        ck_assert_int_eq(weft_future_cancel(q[round]), 0); /* once only */
        weft_future_release(q[round]);
        ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &q[round]), 0);
        ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &extra), -EAGAIN);
    }
    tu_gate_open(&gate);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(weft_future_result(q[i], NULL), 0);
        weft_future_release(q[i]);
    }
    ck_assert_int_eq(weft_future_result(blocker, NULL), 0);
    weft_future_release(blocker);
    /* All started: the whole budget is free again. */
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &q[i]), 0);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(weft_future_result(q[i], NULL), 0);
        weft_future_release(q[i]);
    }
    ck_assert_int_eq(weft_pool_destroy(p), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The statistics add up when a CANCEL shutdown sweeps a task its owner had cancelled:
 * submitted = run + skipped + taken by the sweep. */
START_TEST(test_stats_add_up_after_sweeping_cancelled)
{
    weft_pool *p = pool_with(1, 0);
    tu_gate gate;
    tu_gate_init(&gate);
    weft_future *blocker = NULL, *f = NULL, *g = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_gate, &gate, &blocker), 0);
    while (weft_future_state(blocker) == WEFT_PENDING)
        tu_sleep_ms(1);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &f), 0);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &g), 0);
    ck_assert_int_eq(weft_future_cancel(f), 1); /* by its owner, still queued */
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0); /* sweeps f and g */
    tu_gate_open(&gate);
    ck_assert_int_eq(weft_future_result(blocker, NULL), 0);
    ck_assert_int_eq(weft_future_result(g, NULL), -ECANCELED);
    weft_stats st;
    ck_assert_int_eq(weft_pool_stats(p, &st, NULL, 0), 0);
    ck_assert_uint_eq(st.submitted_outside + st.total.submitted, 3);
    ck_assert_uint_eq(st.total.tasks_run + st.total.tasks_skipped + st.cancelled_queued, 3);
    ck_assert_uint_eq(st.cancelled_queued, 2);
    ck_assert_int_eq(weft_pool_destroy(p), 0);
    weft_future_release(blocker);
    weft_future_release(f);
    weft_future_release(g);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown from callbacks
 */

typedef struct cb_world {
    weft_pool *pool;
    atomic_int calls;
    atomic_int bad_rc;
} cb_world;

static void cb_shutdown_cancel(weft_future *f, void *data)
{
    (void)f;
    cb_world *w = data;
    if (weft_pool_shutdown(w->pool, WEFT_SHUTDOWN_CANCEL) != 0)
        atomic_fetch_add(&w->bad_rc, 1);
    if (weft_pool_shutdown(w->pool, WEFT_SHUTDOWN_DRAIN) != 0)
        atomic_fetch_add(&w->bad_rc, 1);
    atomic_fetch_add(&w->calls, 1);
}

enum { CB_QUEUED = 8 };

/* A gate task holds the one worker; queued futures carry callbacks that shut down again. */
static void check_shutdown_from_callbacks(bool from_worker)
{
    cb_world w = {.pool = pool_with(1, 0)};
    atomic_init(&w.calls, 0);
    atomic_init(&w.bad_rc, 0);
    tu_gate gate;
    tu_gate_init(&gate);
    weft_future *blocker = NULL;
    ck_assert_int_eq(weft_submit(w.pool, tu_task_gate, &gate, &blocker), 0);
    while (weft_future_state(blocker) == WEFT_PENDING)
        tu_sleep_ms(1);
    weft_future *q[CB_QUEUED];
    for (int i = 0; i < CB_QUEUED; i++) {
        ck_assert_int_eq(weft_submit(w.pool, tu_task_identity, NULL, &q[i]), 0);
        ck_assert_int_eq(weft_future_on_done(q[i], cb_shutdown_cancel, &w), 0);
    }
    if (from_worker) {
        /* The blocker's own callback shuts down, on the worker, when the blocker finishes. */
        ck_assert_int_eq(weft_future_on_done(blocker, cb_shutdown_cancel, &w), 0);
        tu_gate_open(&gate);
    } else {
        ck_assert_int_eq(weft_pool_shutdown(w.pool, WEFT_SHUTDOWN_CANCEL), 0);
        /* Returned: nothing queued is PENDING, and every callback of the sweep has run. */
        for (int i = 0; i < CB_QUEUED; i++)
            ck_assert_int_eq(weft_future_state(q[i]), WEFT_CANCELLED);
        ck_assert_int_eq(atomic_load(&w.calls), CB_QUEUED);
        tu_gate_open(&gate);
    }
    for (int i = 0; i < CB_QUEUED; i++) {
        ck_assert_int_eq(weft_future_result(q[i], NULL), -ECANCELED);
        weft_future_release(q[i]);
    }
    ck_assert_int_eq(weft_future_result(blocker, NULL), 0);
    weft_future_release(blocker);
    ck_assert_int_eq(weft_submit(w.pool, tu_task_identity, NULL, NULL), -ESHUTDOWN);
    ck_assert_int_eq(weft_pool_destroy(w.pool), 0);
    ck_assert_int_eq(atomic_load(&w.calls), CB_QUEUED + (from_worker ? 1 : 0));
    ck_assert_int_eq(atomic_load(&w.bad_rc), 0);
    TU_ASSERT_NO_FAILURES();
}

START_TEST(test_shutdown_from_callback_main)
{
    check_shutdown_from_callbacks(false);
}
END_TEST

START_TEST(test_shutdown_from_callback_worker)
{
    check_shutdown_from_callbacks(true);
}
END_TEST

/* Busy pools: callbacks run on workers (a task finished, or a worker cancelled what it took
 * after the cancel bit was set), on the test thread and inside the sweep, each shutting down
 * again. */
START_TEST(test_shutdown_from_callback_many_pools)
{
    long trials = 50 * tu_stress_scale();
    for (long t = 0; t < trials; t++) {
        cb_world w = {.pool = pool_with(2, 0)};
        atomic_init(&w.calls, 0);
        atomic_init(&w.bad_rc, 0);
        enum { N = 64 };
        weft_future *q[N];
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(weft_submit(w.pool, tu_task_identity, NULL, &q[i]), 0);
        /* the workers finish some meanwhile: their callbacks shut down from a worker or, added
         * late, from here; the sweep cancels the rest and runs their callbacks */
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(weft_future_on_done(q[i], cb_shutdown_cancel, &w), 0);
        ck_assert_int_eq(weft_pool_shutdown(w.pool, WEFT_SHUTDOWN_CANCEL), 0);
        for (int i = 0; i < N; i++) {
            weft_state st = weft_future_state(q[i]);
            ck_assert_msg(st != WEFT_PENDING, "future %d PENDING after shutdown(CANCEL)", i);
        }
        ck_assert_int_eq(weft_pool_destroy(w.pool), 0);
        for (int i = 0; i < N; i++) {
            ck_assert(weft_future_done(q[i]));
            weft_future_release(q[i]);
        }
        ck_assert_int_eq(atomic_load(&w.calls), N);
        ck_assert_int_eq(atomic_load(&w.bad_rc), 0);
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * CANCEL shutdown racing submissions from inside the pool
 */

enum { INSIDE_MAX = 8192 };

typedef struct inside {
    weft_future *fs[INSIDE_MAX];
    atomic_int n;            /* fs[0..n) are published */
    atomic_int shut_done;    /* the shutdown call has returned */
    atomic_int late_pending; /* a future seen PENDING after the shutdown returned */
    atomic_int refused;
    bool use_join;
} inside;

static int task_leaf(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static weft_pool *inside_pool; /* the pool of the current trial (the test thread sets it) */

static bool push_child(inside *in)
{
    int k = atomic_load(&in->n);
    if (k >= INSIDE_MAX)
        return false;
    weft_future *f = NULL;
    int rc = weft_submit(inside_pool, task_leaf, NULL, &f);
    if (rc != 0) {
        TU_EXPECT(rc == -ESHUTDOWN);
        atomic_fetch_add(&in->refused, 1);
        return false;
    }
    /* A submission that succeeded came before the sweep: once the shutdown has returned, the
     * future must have left PENDING. seq_cst: ordered after the submit's own accesses. */
    if (atomic_load(&in->shut_done) && weft_future_state(f) == WEFT_PENDING)
        atomic_fetch_add(&in->late_pending, 1);
    in->fs[k] = f;
    atomic_store(&in->n, k + 1); /* publishes fs[k] to the test thread */
    /* A pause, so that the test thread catches the submitter well before INSIDE_MAX even on a
     * loaded machine. */
    for (volatile int spin = 0; spin < 1000; spin = spin + 1) {
    }
    return true;
}

static void half_submit(void *arg)
{
    inside *in = arg;
    for (int i = 0; i < 4; i++) {
        if (!push_child(in))
            return;
    }
}

static void half_noop(void *arg)
{
    (void)arg;
}

static int task_submitter(void *arg, void **result)
{
    (void)result;
    inside *in = arg;
    for (;;) {
        if (in->use_join) {
            /* the first half leaves its submissions above the join's frame */
            int before = atomic_load(&in->n);
            weft_join(half_submit, in, half_noop, NULL);
            if (atomic_load(&in->n) - before < 4)
                return 0;
        } else if (!push_child(in)) {
            return 0;
        }
    }
}

static void check_inside_races(bool use_join)
{
    long trials = 300 * tu_stress_scale();
    static inside in;
    long late = 0, refused = 0;
    for (long t = 0; t < trials; t++) {
        memset(&in, 0, sizeof(in));
        in.use_join = use_join;
        atomic_init(&in.n, 0);
        atomic_init(&in.shut_done, 0);
        atomic_init(&in.late_pending, 0);
        atomic_init(&in.refused, 0);
        inside_pool = pool_with(2, 0);
        weft_future *s = NULL;
        ck_assert_int_eq(weft_submit(inside_pool, task_submitter, &in, &s), 0);
        /* let it get going, a little longer each trial */
        while (atomic_load(&in.n) < 1 + (int)(t % 64))
            sched_yield();
        ck_assert_int_eq(weft_pool_shutdown(inside_pool, WEFT_SHUTDOWN_CANCEL), 0);
        int n = atomic_load(&in.n);
        atomic_store(&in.shut_done, 1);
        for (int i = 0; i < n; i++) {
            if (weft_future_state(in.fs[i]) == WEFT_PENDING)
                late++;
        }
        ck_assert_int_eq(weft_future_result(s, NULL), 0);
        weft_future_release(s);
        ck_assert_int_eq(weft_pool_destroy(inside_pool), 0);
        late += atomic_load(&in.late_pending);
        n = atomic_load(&in.n);
        for (int i = 0; i < n; i++) {
            weft_state st = weft_future_state(in.fs[i]);
            ck_assert(st == WEFT_DONE || st == WEFT_CANCELLED);
            weft_future_release(in.fs[i]);
        }
        refused += atomic_load(&in.refused) > 0;
    }
    ck_assert_msg(refused > 0, "the submitter was never refused: no race was tried");
    ck_assert_msg(late == 0, "%ld futures were still PENDING after shutdown(CANCEL) returned",
                  late);
    TU_ASSERT_NO_FAILURES();
}

START_TEST(test_shutdown_cancel_inside_submissions)
{
    check_inside_races(false);
}
END_TEST

START_TEST(test_shutdown_cancel_join_leftovers)
{
    check_inside_races(true);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cancel_shutdown");
    TCase *tc = tcase_create("cancel");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cancel_races_destroy);
    tcase_add_test(tc, test_cancel_gives_budget_back);
    tcase_add_test(tc, test_stats_add_up_after_sweeping_cancelled);
    suite_add_tcase(s, tc);
    tc = tcase_create("callbacks");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shutdown_from_callback_main);
    tcase_add_test(tc, test_shutdown_from_callback_worker);
    tcase_add_test(tc, test_shutdown_from_callback_many_pools);
    suite_add_tcase(s, tc);
    tc = tcase_create("inside");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shutdown_cancel_inside_submissions);
    tcase_add_test(tc, test_shutdown_cancel_join_leftovers);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
