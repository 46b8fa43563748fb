/* SPDX-License-Identifier: MIT */
/*
 * Tasks and futures: values and failure codes, the state machine, cancellation, timed waits,
 * waits inside the future's own task, completion callbacks, reference counting and detached
 * tasks.
 */
#include "testutil.h"

/* ---------------------------------------------------------------------------------------------
 * Values and failure codes
 */

static int result_was_null(void *arg, void **result)
{
    TU_EXPECT(*result == NULL);
    *result = arg;
    return 0;
}

static int fail_with(void *arg, void **result)
{
    (void)result;
    return (int)(intptr_t)arg;
}

static int return_malloced(void *arg, void **result)
{
    int *v = malloc(sizeof *v);
    if (!v)
        return -ENOMEM;
    *v = (int)(intptr_t)arg;
    *result = v;
    return 0;
}

START_TEST(test_submit_result)
{
    static int value;
    weft_pool *p = tu_pool_new(2, NULL);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, result_was_null, &value, &f), 0);
    ck_assert_ptr_nonnull(f);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, &value);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    ck_assert(weft_future_done(f));
    /* Asking again gives the same; a NULL result pointer is fine. */
    v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, &value);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);

    /* A NULL value is a value. */
    ck_assert_int_eq(weft_submit(p, result_was_null, NULL, &f), 0);
    v = &v;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_null(v);
    weft_future_release(f);

    /* The value belongs to the user: weft never frees it (ASan would see a double free). */
    ck_assert_int_eq(weft_submit(p, return_malloced, (void *)(intptr_t)77, &f), 0);
    v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(*(int *)v, 77);
    weft_future_release(f);
    ck_assert_int_eq(*(int *)v, 77);
    free(v);

    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_many_values)
{
    enum { N = 2000 };
    weft_pool *p = tu_pool_new(3, NULL);
    static weft_future *fs[N];
    for (intptr_t i = 0; i < N; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_identity, (void *)(i * 7 + 1), &fs[i]), 0);
    for (intptr_t i = N - 1; i >= 0; i--) {
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(fs[i], &v), 0);
        ck_assert_int_eq((intptr_t)v, i * 7 + 1);
        weft_future_release(fs[i]);
    }
    tu_pool_free(p);
}
END_TEST

START_TEST(test_failure_codes)
{
    static const int codes[] = {7, 1, -1, -EIO, -ENOMEM, 12345, -ETIMEDOUT};
    weft_pool *p = tu_pool_new(2, NULL);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, fail_with, (void *)(intptr_t)codes[i], &f), 0);
        ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
        ck_assert_int_eq(weft_future_state(f), WEFT_FAILED);
        ck_assert(weft_future_done(f));
        ck_assert_int_eq(weft_future_result(f, NULL), codes[i]);
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(f, &v), codes[i]);
        weft_future_release(f);
    }
    /* -ECANCELED without a cancellation request is an ordinary failure. */
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, fail_with, (void *)(intptr_t)-ECANCELED, &f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(f), WEFT_FAILED);
    weft_future_release(f);
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * States
 */

typedef struct probe {
    tu_gate gate;
    atomic_int started;
    atomic_int ran;
    _Atomic(weft_future *) self;
    atomic_int state_inside;
    atomic_int ret;
} probe;

static void probe_init(probe *pr, int ret)
{
    tu_gate_init(&pr->gate);
    atomic_init(&pr->started, 0);
    atomic_init(&pr->ran, 0);
    atomic_init(&pr->self, NULL);
    atomic_init(&pr->state_inside, -1);
    atomic_init(&pr->ret, ret);
}

/* Marks itself started, waits for the gate, reads its own state, returns pr->ret. */
static int probe_task(void *arg, void **result)
{
    probe *pr = arg;
    atomic_fetch_add(&pr->ran, 1);
    atomic_store(&pr->started, 1);
    TU_EXPECT(tu_gate_wait(&pr->gate));
    weft_future *self = atomic_load(&pr->self);
    if (self)
        atomic_store(&pr->state_inside, (int)weft_future_state(self));
    *result = pr;
    return atomic_load(&pr->ret);
}

START_TEST(test_states)
{
    weft_pool *p = tu_pool_new(1, NULL);
    probe gate_pr, ok_pr, bad_pr, cancel_pr;
    probe_init(&gate_pr, 0);
    probe_init(&ok_pr, 0);
    probe_init(&bad_pr, 9);
    probe_init(&cancel_pr, 0);
    tu_gate_open(&ok_pr.gate);
    tu_gate_open(&bad_pr.gate);
    tu_gate_open(&cancel_pr.gate);

    weft_future *g = NULL, *ok = NULL, *bad = NULL, *can = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &gate_pr, &g), 0);
    atomic_store(&gate_pr.self, g);
    ck_assert(tu_wait_atomic_ge(&gate_pr.started, 1, TU_PATIENCE_S));
    ck_assert_int_eq(weft_future_state(g), WEFT_RUNNING);
    ck_assert(!weft_future_done(g));

    ck_assert_int_eq(weft_submit(p, probe_task, &ok_pr, &ok), 0);
    atomic_store(&ok_pr.self, ok);
    ck_assert_int_eq(weft_submit(p, probe_task, &bad_pr, &bad), 0);
    ck_assert_int_eq(weft_submit(p, probe_task, &cancel_pr, &can), 0);
    tu_sleep_ms(20);
    ck_assert_int_eq(weft_future_state(ok), WEFT_PENDING);
    ck_assert_int_eq(weft_future_state(bad), WEFT_PENDING);
    ck_assert_int_eq(weft_future_state(can), WEFT_PENDING);
    ck_assert(!weft_future_done(ok));
    ck_assert_int_eq(weft_future_wait(ok, 0), -ETIMEDOUT);
    ck_assert_int_eq(weft_future_state(g), WEFT_RUNNING);

    ck_assert_int_eq(weft_future_cancel(can), 1);
    ck_assert_int_eq(weft_future_state(can), WEFT_CANCELLED);
    ck_assert(weft_future_done(can));

    tu_gate_open(&gate_pr.gate);
    ck_assert_int_eq(weft_future_result(g, NULL), 0);
    ck_assert_int_eq(weft_future_result(ok, NULL), 0);
    ck_assert_int_eq(weft_future_result(bad, NULL), 9);
    ck_assert_int_eq(weft_future_result(can, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    ck_assert_int_eq(weft_future_state(ok), WEFT_DONE);
    ck_assert_int_eq(weft_future_state(bad), WEFT_FAILED);
    ck_assert_int_eq(weft_future_state(can), WEFT_CANCELLED);
    /* Inside, a task sees its own future RUNNING. */
    ck_assert_int_eq(tu_ld(&gate_pr.state_inside), WEFT_RUNNING);
    ck_assert_int_eq(tu_ld(&ok_pr.state_inside), WEFT_RUNNING);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(tu_ld(&cancel_pr.ran), 0);
    ck_assert_int_eq(tu_ld(&ok_pr.ran), 1);
    ck_assert_int_eq(tu_ld(&bad_pr.ran), 1);
    weft_future_release(g);
    weft_future_release(ok);
    weft_future_release(bad);
    weft_future_release(can);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Cancellation
 */

START_TEST(test_cancel_pending)
{
    enum { N = 50 };
    weft_pool *p = tu_pool_new(1, NULL);
    probe gate_pr;
    probe_init(&gate_pr, 0);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &gate_pr, &g), 0);
    ck_assert(tu_wait_atomic_ge(&gate_pr.started, 1, TU_PATIENCE_S));

    static atomic_int counts[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        atomic_store(&counts[i], 0);
        ck_assert_int_eq(weft_submit(p, tu_task_count, &counts[i], &fs[i]), 0);
    }
    /* Cancel every other one. */
    for (int i = 0; i < N; i += 2) {
        ck_assert_int_eq(weft_future_cancel(fs[i]), 1);
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_CANCELLED);
        /* Cancelled is finished: a second cancel is 0. */
        ck_assert_int_eq(weft_future_cancel(fs[i]), 0);
        ck_assert_int_eq(weft_future_wait(fs[i], 0), 0);
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(fs[i], &v), -ECANCELED);
    }
    tu_gate_open(&gate_pr.gate);
    for (int i = 0; i < N; i++) {
        int rc = weft_future_result(fs[i], NULL);
        ck_assert_int_eq(rc, i % 2 ? 0 : -ECANCELED);
        ck_assert_int_eq(weft_future_state(fs[i]), i % 2 ? WEFT_DONE : WEFT_CANCELLED);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    for (int i = 0; i < N; i++) {
        ck_assert_msg(tu_ld(&counts[i]) == i % 2, "task %d ran %d times", i,
                      atomic_load(&counts[i]));
        weft_future_release(fs[i]);
    }
    weft_future_release(g);
}
END_TEST

typedef struct poller {
    atomic_int started;
    atomic_int requested_before; /* weft_cancel_requested() at start */
    atomic_int saw_request;
    int ret;
} poller;

static int poll_cancel_task(void *arg, void **result)
{
    poller *po = arg;
    atomic_store(&po->requested_before, weft_cancel_requested());
    atomic_store(&po->started, 1);
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (!weft_cancel_requested()) {
        if (tu_now_ns() > deadline) {
            TU_EXPECT(!"weft_cancel_requested() never became true");
            return 0;
        }
        tu_sleep_ns(100000);
    }
    atomic_store(&po->saw_request, 1);
    *result = po;
    return po->ret;
}

static weft_future *start_poller(weft_pool *p, poller *po, int ret)
{
    atomic_init(&po->started, 0);
    atomic_init(&po->requested_before, -1);
    atomic_init(&po->saw_request, 0);
    po->ret = ret;
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, poll_cancel_task, po, &f), 0);
    ck_assert(tu_wait_atomic_ge(&po->started, 1, TU_PATIENCE_S));
    ck_assert_int_eq(weft_future_state(f), WEFT_RUNNING);
    ck_assert_int_eq(tu_ld(&po->requested_before), 0);
    ck_assert_int_eq(weft_future_cancel(f), 0); /* running: not cancelled (yet) */
    return f;
}

START_TEST(test_cancel_running_ecanceled)
{
    weft_pool *p = tu_pool_new(2, NULL);
    poller po;
    weft_future *f = start_poller(p, &po, -ECANCELED);
    ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(f), WEFT_CANCELLED);
    ck_assert_int_eq(tu_ld(&po.saw_request), 1);
    ck_assert_int_eq(weft_future_cancel(f), 0);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_cancel_running_completes)
{
    weft_pool *p = tu_pool_new(2, NULL);
    poller po;
    weft_future *f = start_poller(p, &po, 0);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, &po);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    ck_assert_int_eq(tu_ld(&po.saw_request), 1);
    weft_future_release(f);

    /* Another code after a request is a failure with that code. */
    f = start_poller(p, &po, 7);
    ck_assert_int_eq(weft_future_result(f, NULL), 7);
    ck_assert_int_eq(weft_future_state(f), WEFT_FAILED);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_cancel_running_twice)
{
    /* Repeated requests on a running task are all 0 and it still ends as it chooses. */
    weft_pool *p = tu_pool_new(1, NULL);
    poller po;
    weft_future *f = start_poller(p, &po, -ECANCELED);
    ck_assert_int_eq(weft_future_cancel(f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
    ck_assert_int_eq(weft_future_state(f), WEFT_CANCELLED);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_cancel_finished)
{
    weft_pool *p = tu_pool_new(2, NULL);
    static int value;
    weft_future *ok = NULL, *bad = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_identity, &value, &ok), 0);
    ck_assert_int_eq(weft_submit(p, fail_with, (void *)(intptr_t)5, &bad), 0);
    ck_assert_int_eq(weft_future_wait(ok, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_wait(bad, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_cancel(ok), 0);
    ck_assert_int_eq(weft_future_cancel(bad), 0);
    ck_assert_int_eq(weft_future_state(ok), WEFT_DONE);
    ck_assert_int_eq(weft_future_state(bad), WEFT_FAILED);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(ok, &v), 0);
    ck_assert_ptr_eq(v, &value);
    ck_assert_int_eq(weft_future_result(bad, NULL), 5);
    weft_future_release(ok);
    weft_future_release(bad);
    tu_pool_free(p);
}
END_TEST

static int report_cancel_requested(void *arg, void **result)
{
    (void)arg;
    *result = (void *)(intptr_t)(weft_cancel_requested() ? 1 : 2);
    return 0;
}

START_TEST(test_cancel_requested_scope)
{
    ck_assert(!weft_cancel_requested());
    weft_pool *p = tu_pool_new(1, NULL);
    ck_assert(!weft_cancel_requested());
    /* Not cancelled: false inside. */
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, report_cancel_requested, NULL, &f), 0);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_int_eq((intptr_t)v, 2);
    weft_future_release(f);

    /* After a cancelled task on the same (only) worker, the next task is not "cancelled". */
    poller po;
    f = start_poller(p, &po, -ECANCELED);
    ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
    weft_future_release(f);
    ck_assert_int_eq(weft_submit(p, report_cancel_requested, NULL, &f), 0);
    v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_int_eq((intptr_t)v, 2);
    weft_future_release(f);
    ck_assert(!weft_cancel_requested());
    tu_pool_free(p);
    ck_assert(!weft_cancel_requested());
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Timed waits
 */

START_TEST(test_wait_timeouts)
{
    weft_pool *p = tu_pool_new(1, NULL);
    probe pr;
    probe_init(&pr, 0);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &pr, &f), 0);

    int64_t t0 = tu_now_ns();
    ck_assert_int_eq(weft_future_wait(f, 0), -ETIMEDOUT);
    ck_assert_int_eq(weft_future_wait(f, 1), -ETIMEDOUT);
    ck_assert_int_eq(weft_future_wait(f, TU_MS(1)), -ETIMEDOUT);
    t0 = tu_now_ns();
    ck_assert_int_eq(weft_future_wait(f, TU_MS(30)), -ETIMEDOUT);
    int64_t waited = tu_now_ns() - t0;
    ck_assert_msg(waited >= TU_MS(29), "a 30 ms wait returned after %.2f ms", waited / 1e6);
    ck_assert(!weft_future_done(f));

    tu_gate_open(&pr.gate);
    t0 = tu_now_ns();
    ck_assert_int_eq(weft_future_wait(f, (int64_t)60 * 1000000000), 0);
    ck_assert_int_eq(weft_future_wait(f, 0), 0);
    ck_assert_int_eq(weft_future_wait(f, TU_MS(5)), 0);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    weft_future_release(f);

    /* A long timeout returns as soon as the task finishes. */
    ck_assert_int_eq(weft_submit(p, tu_task_sleep_ms, (void *)(intptr_t)50, &f), 0);
    t0 = tu_now_ns();
    ck_assert_int_eq(weft_future_wait(f, (int64_t)60 * 1000000000), 0);
    waited = tu_now_ns() - t0;
    ck_assert_msg(waited < (int64_t)20 * 1000000000, "wait took %.0f ms", waited / 1e6);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Waiting inside the future's own task
 */

typedef struct self_wait {
    tu_gate gate;
    _Atomic(weft_future *) self;
    atomic_int rc_forever, rc_zero, rc_timed, rc_result, rc_result_null;
} self_wait;

static int self_wait_task(void *arg, void **result)
{
    self_wait *sw = arg;
    TU_EXPECT(tu_gate_wait(&sw->gate));
    weft_future *self = atomic_load(&sw->self);
    void *v = &v;
    atomic_store(&sw->rc_forever, weft_future_wait(self, WEFT_FOREVER));
    atomic_store(&sw->rc_zero, weft_future_wait(self, 0));
    atomic_store(&sw->rc_timed, weft_future_wait(self, TU_MS(10)));
    atomic_store(&sw->rc_result, weft_future_result(self, &v));
    atomic_store(&sw->rc_result_null, weft_future_result(self, NULL));
    TU_EXPECT(v == &v);
    *result = sw;
    return 0;
}

START_TEST(test_wait_on_self_edeadlk)
{
    for (unsigned n = 1; n <= 3; n += 2) {
        weft_pool *p = tu_pool_new(n, NULL);
        self_wait sw;
        tu_gate_init(&sw.gate);
        atomic_init(&sw.self, NULL);
        atomic_init(&sw.rc_forever, 1);
        atomic_init(&sw.rc_zero, 1);
        atomic_init(&sw.rc_timed, 1);
        atomic_init(&sw.rc_result, 1);
        atomic_init(&sw.rc_result_null, 1);
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, self_wait_task, &sw, &f), 0);
        atomic_store(&sw.self, f); /* published before the gate opens */
        tu_gate_open(&sw.gate);
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(f, &v), 0);
        ck_assert_ptr_eq(v, &sw);
        ck_assert_int_eq(tu_ld(&sw.rc_forever), -EDEADLK);
        ck_assert_int_eq(tu_ld(&sw.rc_zero), -EDEADLK);
        ck_assert_int_eq(tu_ld(&sw.rc_timed), -EDEADLK);
        ck_assert_int_eq(tu_ld(&sw.rc_result), -EDEADLK);
        ck_assert_int_eq(tu_ld(&sw.rc_result_null), -EDEADLK);
        ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
        weft_future_release(f);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Completion callbacks
 */

typedef struct cb_rec {
    atomic_int count;
    atomic_int worker;  /* weft_worker_index() in the callback */
    atomic_int state;   /* state of f in the callback */
    atomic_int on_test; /* ran on the test thread */
    pthread_t test_thread;
    weft_future *expect_f;
} cb_rec;

static void cb_rec_init(cb_rec *r)
{
    atomic_init(&r->count, 0);
    atomic_init(&r->worker, -2);
    atomic_init(&r->state, -1);
    atomic_init(&r->on_test, 0);
    r->test_thread = pthread_self();
    r->expect_f = NULL;
}

static void record_cb(weft_future *f, void *data)
{
    cb_rec *r = data;
    TU_EXPECT(f == r->expect_f);
    TU_EXPECT(weft_future_done(f));
    atomic_store(&r->state, (int)weft_future_state(f));
    atomic_store(&r->worker, weft_worker_index());
    atomic_store(&r->on_test, pthread_equal(pthread_self(), r->test_thread) ? 1 : 0);
    atomic_fetch_add(&r->count, 1);
}

START_TEST(test_on_done_already_done)
{
    weft_pool *p = tu_pool_new(2, NULL);
    weft_future *ok = NULL, *bad = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &ok), 0);
    ck_assert_int_eq(weft_submit(p, fail_with, (void *)(intptr_t)3, &bad), 0);
    ck_assert_int_eq(weft_future_wait(ok, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_wait(bad, WEFT_FOREVER), 0);

    cb_rec r;
    cb_rec_init(&r);
    r.expect_f = ok;
    ck_assert_int_eq(weft_future_on_done(ok, record_cb, &r), 0);
    /* At once, in this thread. */
    ck_assert_int_eq(tu_ld(&r.count), 1);
    ck_assert_int_eq(tu_ld(&r.on_test), 1);
    ck_assert_int_eq(tu_ld(&r.worker), -1);
    ck_assert_int_eq(tu_ld(&r.state), WEFT_DONE);

    cb_rec_init(&r);
    r.expect_f = bad;
    ck_assert_int_eq(weft_future_on_done(bad, record_cb, &r), 0);
    ck_assert_int_eq(tu_ld(&r.count), 1);
    ck_assert_int_eq(tu_ld(&r.on_test), 1);
    ck_assert_int_eq(tu_ld(&r.state), WEFT_FAILED);

    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&r.count), 1);
    weft_future_release(ok);
    weft_future_release(bad);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_on_done_on_completion)
{
    weft_pool *p = tu_pool_new(1, NULL);
    probe pr;
    probe_init(&pr, 0);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &pr, &f), 0);
    cb_rec r;
    cb_rec_init(&r);
    r.expect_f = f;
    ck_assert_int_eq(weft_future_on_done(f, record_cb, &r), 0);
    tu_sleep_ms(20);
    ck_assert_int_eq(tu_ld(&r.count), 0);
    tu_gate_open(&pr.gate);
    ck_assert(tu_wait_atomic_ge(&r.count, 1, TU_PATIENCE_S));
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&r.count), 1);
    ck_assert_int_eq(tu_ld(&r.state), WEFT_DONE);
    /* On the thread that finished it: the worker. */
    ck_assert_int_eq(tu_ld(&r.worker), 0);
    ck_assert_int_eq(tu_ld(&r.on_test), 0);
    weft_future_release(f);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_on_done_cancelled)
{
    weft_pool *p = tu_pool_new(1, NULL);
    probe gate_pr;
    probe_init(&gate_pr, 0);
    weft_future *g = NULL, *f = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &gate_pr, &g), 0);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &f), 0);

    /* Registered while pending, then cancelled by this thread: runs here, once. */
    cb_rec r;
    cb_rec_init(&r);
    r.expect_f = f;
    ck_assert_int_eq(weft_future_on_done(f, record_cb, &r), 0);
    ck_assert_int_eq(tu_ld(&r.count), 0);
    ck_assert_int_eq(weft_future_cancel(f), 1);
    ck_assert_int_eq(tu_ld(&r.count), 1);
    ck_assert_int_eq(tu_ld(&r.on_test), 1);
    ck_assert_int_eq(tu_ld(&r.state), WEFT_CANCELLED);

    /* Registered after the cancellation: at once. */
    cb_rec r2;
    cb_rec_init(&r2);
    r2.expect_f = f;
    ck_assert_int_eq(weft_future_on_done(f, record_cb, &r2), 0);
    ck_assert_int_eq(tu_ld(&r2.count), 1);
    ck_assert_int_eq(tu_ld(&r2.state), WEFT_CANCELLED);

    /* Cancelled by a running task's own -ECANCELED: runs too. */
    poller po;
    tu_gate_open(&gate_pr.gate);
    weft_future *pf = start_poller(p, &po, -ECANCELED);
    cb_rec r3;
    cb_rec_init(&r3);
    r3.expect_f = pf;
    ck_assert_int_eq(weft_future_on_done(pf, record_cb, &r3), 0);
    ck_assert_int_eq(weft_future_result(pf, NULL), -ECANCELED);
    ck_assert(tu_wait_atomic_ge(&r3.count, 1, TU_PATIENCE_S));

    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&r.count), 1);
    ck_assert_int_eq(tu_ld(&r2.count), 1);
    ck_assert_int_eq(tu_ld(&r3.count), 1);
    ck_assert_int_eq(tu_ld(&r3.state), WEFT_CANCELLED);
    weft_future_release(pf);
    weft_future_release(f);
    weft_future_release(g);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_on_done_shutdown_cancel)
{
    /* Futures cancelled by shutdown(CANCEL) run their callbacks too. */
    enum { N = 20 };
    weft_pool *p = tu_pool_new(1, NULL);
    probe gate_pr;
    probe_init(&gate_pr, 0);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &gate_pr, &g), 0);
    ck_assert(tu_wait_atomic_ge(&gate_pr.started, 1, TU_PATIENCE_S));
    weft_future *fs[N];
    cb_rec rs[N];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &fs[i]), 0);
        cb_rec_init(&rs[i]);
        rs[i].expect_f = fs[i];
        ck_assert_int_eq(weft_future_on_done(fs[i], record_cb, &rs[i]), 0);
    }
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    tu_gate_open(&gate_pr.gate);
    tu_pool_free(p);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tu_ld(&rs[i].count), 1);
        ck_assert_int_eq(tu_ld(&rs[i].state), WEFT_CANCELLED);
        weft_future_release(fs[i]);
    }
    weft_future_release(g);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static void count_cb(weft_future *f, void *data)
{
    TU_EXPECT(weft_future_done(f));
    atomic_fetch_add((atomic_int *)data, 1);
}

START_TEST(test_on_done_many_callbacks)
{
    enum { N = 200 };
    weft_pool *p = tu_pool_new(1, NULL);
    probe pr;
    probe_init(&pr, 0);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &pr, &f), 0);
    static atomic_int counts[2 * N];
    for (int i = 0; i < 2 * N; i++)
        atomic_store(&counts[i], 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_future_on_done(f, count_cb, &counts[i]), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(tu_ld(&counts[i]), 0);
    tu_gate_open(&pr.gate);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
    for (int i = N; i < 2 * N; i++) {
        ck_assert_int_eq(weft_future_on_done(f, count_cb, &counts[i]), 0);
        ck_assert_int_eq(tu_ld(&counts[i]), 1);
    }
    tu_pool_free(p);
    for (int i = 0; i < 2 * N; i++)
        ck_assert_msg(tu_ld(&counts[i]) == 1, "callback %d ran %d times", i,
                      atomic_load(&counts[i]));
    /* The same callback and data registered twice runs twice. */
    atomic_store(&counts[0], 0);
    ck_assert_int_eq(weft_future_on_done(f, count_cb, &counts[0]), 0);
    ck_assert_int_eq(weft_future_on_done(f, count_cb, &counts[0]), 0);
    ck_assert_int_eq(tu_ld(&counts[0]), 2);
    weft_future_release(f);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static void release_cb(weft_future *f, void *data)
{
    TU_EXPECT(weft_future_done(f));
    weft_future_release(f);
    atomic_fetch_add((atomic_int *)data, 1);
}

START_TEST(test_on_done_releases_last_reference)
{
    weft_pool *p = tu_pool_new(1, NULL);
    static atomic_int released;
    atomic_store(&released, 0);

    /* Pending: the test hands its only reference to the callback. */
    probe pr;
    probe_init(&pr, 0);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &pr, &f), 0);
    ck_assert_int_eq(weft_future_on_done(f, release_cb, &released), 0);
    f = NULL;
    tu_gate_open(&pr.gate);
    ck_assert(tu_wait_atomic_ge(&released, 1, TU_PATIENCE_S));

    /* Already done: the callback runs inside on_done and frees the future there. */
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &f), 0);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_on_done(f, release_cb, &released), 0);
    ck_assert_int_eq(tu_ld(&released), 2);
    f = NULL;

    /* Pending, then cancelled: the callback frees it inside weft_future_cancel. */
    probe gate_pr;
    probe_init(&gate_pr, 0);
    weft_future *g = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &gate_pr, &g), 0);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &f), 0);
    ck_assert_int_eq(weft_future_on_done(f, release_cb, &released), 0);
    ck_assert_int_eq(weft_future_cancel(f), 1);
    ck_assert_int_eq(tu_ld(&released), 3);
    f = NULL;

    /* Detached-like: released by the test before completion, then by the callback. */
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &f), 0);
    weft_future_retain(f);
    ck_assert_int_eq(weft_future_on_done(f, release_cb, &released), 0);
    weft_future_release(f);
    f = NULL;
    tu_gate_open(&gate_pr.gate);
    ck_assert(tu_wait_atomic_ge(&released, 4, TU_PATIENCE_S));
    ck_assert_int_eq(weft_future_result(g, NULL), 0);
    weft_future_release(g);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&released), 4);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * References
 */

typedef struct ref_race {
    weft_future *f;
    tu_gate go;
    int rounds;
} ref_race;

static void *ref_thread(void *arg)
{
    ref_race *rr = arg;
    TU_EXPECT(tu_gate_wait(&rr->go));
    for (int i = 0; i < rr->rounds; i++) {
        weft_future_retain(rr->f);
        weft_state s = weft_future_state(rr->f);
        TU_EXPECT(s == WEFT_PENDING || s == WEFT_RUNNING || s == WEFT_DONE);
        if (i % 64 == 0) {
            weft_future_retain(rr->f);
            weft_future_retain(rr->f);
            weft_future_release(rr->f);
            weft_future_release(rr->f);
        }
        weft_future_release(rr->f);
    }
    /* Each thread was handed one reference of its own and gives it back. */
    weft_future_release(rr->f);
    return NULL;
}

START_TEST(test_retain_release_threads)
{
    enum { T = 8 };
    weft_pool *p = tu_pool_new(2, NULL);
    probe pr;
    probe_init(&pr, 0);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, probe_task, &pr, &f), 0);
    ref_race rr = {.f = f, .rounds = 20000};
    tu_gate_init(&rr.go);
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        weft_future_retain(f);
        ck_assert_int_eq(pthread_create(&th[i], NULL, ref_thread, &rr), 0);
    }
    tu_gate_open(&rr.go);
    tu_sleep_ms(5);
    tu_gate_open(&pr.gate); /* the task finishes while references come and go */
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, &pr);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_release_before_completion)
{
    /* A future released at once still runs its task; the last reference goes with the task. */
    enum { N = 1000 };
    weft_pool *p = tu_pool_new(2, NULL);
    static atomic_int count;
    atomic_store(&count, 0);
    for (int i = 0; i < N; i++) {
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, &f), 0);
        weft_future_release(f);
    }
    /* A retained copy keeps it alive past the submitter's release. */
    weft_future *f = NULL, *copy;
    ck_assert_int_eq(weft_submit(p, tu_task_identity, &count, &f), 0);
    copy = f;
    weft_future_retain(copy);
    weft_future_release(f);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(copy, &v), 0);
    ck_assert_ptr_eq(v, &count);
    weft_future_release(copy);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&count), N);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Detached tasks
 */

START_TEST(test_detached)
{
    enum { N = 2000 };
    static atomic_int counts[N];
    for (int i = 0; i < N; i++)
        atomic_store(&counts[i], 0);
    weft_pool *p = tu_pool_new(3, NULL);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &counts[i], NULL), 0);
    /* Detached failures are fine too. */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(weft_submit(p, fail_with, (void *)(intptr_t)4, NULL), 0);
    tu_pool_free(p);
    for (int i = 0; i < N; i++)
        ck_assert_msg(tu_ld(&counts[i]) == 1, "detached task %d ran %d times", i,
                      atomic_load(&counts[i]));
}
END_TEST

static Suite *future_suite(void)
{
    Suite *s = suite_create("future");

    TCase *tc = tcase_create("results");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_submit_result);
    tcase_add_test(tc, test_many_values);
    tcase_add_test(tc, test_failure_codes);
    tcase_add_test(tc, test_states);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cancel_pending);
    tcase_add_test(tc, test_cancel_running_ecanceled);
    tcase_add_test(tc, test_cancel_running_completes);
    tcase_add_test(tc, test_cancel_running_twice);
    tcase_add_test(tc, test_cancel_finished);
    tcase_add_test(tc, test_cancel_requested_scope);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_timeouts);
    tcase_add_test(tc, test_wait_on_self_edeadlk);
    suite_add_tcase(s, tc);

    tc = tcase_create("on_done");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_on_done_already_done);
    tcase_add_test(tc, test_on_done_on_completion);
    tcase_add_test(tc, test_on_done_cancelled);
    tcase_add_test(tc, test_on_done_shutdown_cancel);
    tcase_add_test(tc, test_on_done_many_callbacks);
    tcase_add_test(tc, test_on_done_releases_last_reference);
    suite_add_tcase(s, tc);

    tc = tcase_create("references");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_retain_release_threads);
    tcase_add_test(tc, test_release_before_completion);
    tcase_add_test(tc, test_detached);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(future_suite());
}
