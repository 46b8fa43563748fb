/* SPDX-License-Identifier: MIT */
/*
 * Waits inside tasks never deadlock, nor fail, because of where the library ran other tasks
 * ("Waiting inside a worker" in the contract): any set of waits without a cycle finishes, on
 * any pool size, one worker included. Each test builds a graph of waits that helping with
 * unrelated tasks would deadlock or fail with -EDEADLK, and asserts that every task ran exactly
 * once and every future resolved with the expected value.
 */
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

enum wait_kind { BY_RESULT, BY_WAIT, BY_COMPLETION };

/* A task that waits on *target (once it is published), then answers its own value. */
typedef struct node {
    weft_future *_Atomic target; /* the future it waits on; NULL: none */
    enum wait_kind how;
    atomic_int runs;
    intptr_t value;
    int wait_rc;
} node;

static int node_task(void *arg, void **result)
{
    node *n = arg;
    atomic_fetch_add(&n->runs, 1);
    weft_future *t;
    while ((t = atomic_load(&n->target)) == NULL)
        tu_sleep_ns(100000);              /* published right after the submissions */
    if (t != (weft_future *)&n->target) { /* the sentinel: waits on nothing */
        void *v = NULL;
        switch (n->how) {
        case BY_RESULT:
            n->wait_rc = weft_future_result(t, &v);
            break;
        case BY_WAIT: {
            weft_future *out[1];
            size_t nd = 0;
            n->wait_rc = weft_wait(&t, 1, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &nd);
            if (n->wait_rc == 0 && nd != 1)
                n->wait_rc = -EPROTO;
            break;
        }
        default: {
            weft_completion *c = NULL;
            n->wait_rc = weft_completion_create(&c);
            if (n->wait_rc == 0)
                n->wait_rc = weft_completion_add(c, t);
            weft_future *got = NULL;
            if (n->wait_rc == 0)
                n->wait_rc = weft_completion_next(c, WEFT_FOREVER, &got);
            if (n->wait_rc == 0) {
                if (got != t)
                    n->wait_rc = -EPROTO;
                weft_future_release(got);
            }
            weft_completion_destroy(c);
            break;
        }
        }
    }
    *result = (void *)n->value;
    return n->wait_rc;
}

/* The contract's example: A waits on X, B on Z, Z on A, all submitted to one pool in the order
 * A, B, Z, X. */
static void run_abzx(unsigned workers, enum wait_kind how)
{
    weft_pool *p = tu_pool_new(workers, "wg");
    node a = {.how = how, .value = 1}, b = {.how = how, .value = 2}, z = {.how = how, .value = 3},
         x = {.how = how, .value = 4};
    node *all[] = {&a, &b, &z, &x};
    weft_future *f[4];
    for (int i = 0; i < 4; i++) {
        atomic_init(&all[i]->runs, 0);
        atomic_init(&all[i]->target, NULL);
        ck_assert_int_eq(weft_submit(p, node_task, all[i], &f[i]), 0);
    }
    atomic_store(&x.target, (weft_future *)&x.target); /* X waits on nothing */
    atomic_store(&a.target, f[3]);                     /* A on X */
    atomic_store(&z.target, f[0]);                     /* Z on A */
    atomic_store(&b.target, f[2]);                     /* B on Z */
    for (int i = 0; i < 4; i++) {
        void *v = NULL;
        ck_assert_msg(tu_wait_done(f[i], TU_PATIENCE_S), "workers %u, kind %d: task %d hangs",
                      workers, (int)how, i);
        ck_assert_int_eq(weft_future_result(f[i], &v), 0);
        ck_assert_int_eq((intptr_t)v, all[i]->value);
        ck_assert_int_eq(atomic_load(&all[i]->runs), 1);
        ck_assert_int_eq(all[i]->wait_rc, 0);
    }
    for (int i = 0; i < 4; i++) /* only now: a task may still be returning from its wait on one */
        weft_future_release(f[i]);
    tu_pool_free(p);
}

START_TEST(test_wait_graph_result)
{
    for (unsigned nw = 1; nw <= 3; nw++)
        run_abzx(nw, BY_RESULT);
}
END_TEST

START_TEST(test_wait_graph_wait)
{
    for (unsigned nw = 1; nw <= 3; nw++)
        run_abzx(nw, BY_WAIT);
}
END_TEST

START_TEST(test_wait_graph_completion)
{
    for (unsigned nw = 1; nw <= 3; nw++)
        run_abzx(nw, BY_COMPLETION);
}
END_TEST

/* A task waits on a promise that a task queued behind it sets: on one worker, the setter can
 * only run if the waiter lets another thread hold the worker. */
typedef struct promise_pair {
    weft_future *promise;
    atomic_int setter_runs;
} promise_pair;

static int promise_waiter(void *arg, void **result)
{
    promise_pair *pp = arg;
    return weft_future_result(pp->promise, result);
}

static int promise_setter(void *arg, void **result)
{
    (void)result;
    promise_pair *pp = arg;
    atomic_fetch_add(&pp->setter_runs, 1);
    return weft_future_set_result(pp->promise, (void *)(intptr_t)42);
}

START_TEST(test_wait_graph_promise_set_by_a_later_task)
{
    for (unsigned nw = 1; nw <= 2; nw++) {
        weft_pool *p = tu_pool_new(nw, "wg");
        for (int round = 0; round < 50; round++) {
            promise_pair pp;
            atomic_init(&pp.setter_runs, 0);
            ck_assert_int_eq(weft_future_create(&pp.promise), 0);
            weft_future *w[4], *s = NULL;
            for (unsigned i = 0; i < nw + 1; i++)
                ck_assert_int_eq(weft_submit(p, promise_waiter, &pp, &w[i]), 0);
            ck_assert_int_eq(weft_submit(p, promise_setter, &pp, &s), 0);
            for (unsigned i = 0; i < nw + 1; i++) {
                void *v = NULL;
                ck_assert(tu_wait_done(w[i], TU_PATIENCE_S));
                ck_assert_int_eq(weft_future_result(w[i], &v), 0);
                ck_assert_int_eq((intptr_t)v, 42);
                weft_future_release(w[i]);
            }
            ck_assert_int_eq(weft_future_result(s, NULL), 0);
            ck_assert_int_eq(atomic_load(&pp.setter_runs), 1);
            weft_future_release(s);
            weft_future_release(pp.promise);
        }
        tu_pool_free(p);
    }
}
END_TEST

/* The worker index a task sees is its own before and after a wait that blocked, and no two
 * running tasks share an index at any time. */
#define IDX_TASKS 64
typedef struct idx_ctx {
    weft_future *gate;
    atomic_int busy[4];
    atomic_int bad;
} idx_ctx;

static int idx_task(void *arg, void **result)
{
    (void)result;
    idx_ctx *c = arg;
    int before = weft_worker_index();
    if (before < 0 || before >= 4 || atomic_fetch_add(&c->busy[before], 1) != 0)
        atomic_fetch_add(&c->bad, 1);
    if (before >= 0 && before < 4)
        atomic_fetch_sub(&c->busy[before], 1);
    int rc = weft_future_wait(c->gate, WEFT_FOREVER); /* blocks: nothing to run for it */
    int after = weft_worker_index();
    if (after != before || atomic_fetch_add(&c->busy[after], 1) != 0)
        atomic_fetch_add(&c->bad, 1);
    tu_sleep_ns(20000);
    atomic_fetch_sub(&c->busy[after], 1);
    return rc;
}

START_TEST(test_wait_graph_index_kept_across_a_blocked_wait)
{
    weft_pool *p = tu_pool_new(2, "wg");
    idx_ctx c;
    ck_assert_int_eq(weft_future_create(&c.gate), 0);
    for (int i = 0; i < 4; i++)
        atomic_init(&c.busy[i], 0);
    atomic_init(&c.bad, 0);
    weft_future *f[IDX_TASKS];
    for (int i = 0; i < IDX_TASKS; i++)
        ck_assert_int_eq(weft_submit(p, idx_task, &c, &f[i]), 0);
    tu_sleep_ns(50000000); /* let them all block */
    ck_assert_int_eq(weft_future_set_result(c.gate, NULL), 0);
    for (int i = 0; i < IDX_TASKS; i++) {
        ck_assert_int_eq(weft_future_result(f[i], NULL), 0);
        weft_future_release(f[i]);
    }
    ck_assert_int_eq(atomic_load(&c.bad), 0);
    weft_future_release(c.gate);
    tu_pool_free(p);
}
END_TEST

static Suite *wait_graph_suite(void)
{
    Suite *s = suite_create("wait_graph");
    TCase *tc = tcase_create("graphs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_graph_result);
    tcase_add_test(tc, test_wait_graph_wait);
    tcase_add_test(tc, test_wait_graph_completion);
    tcase_add_test(tc, test_wait_graph_promise_set_by_a_later_task);
    tcase_add_test(tc, test_wait_graph_index_kept_across_a_blocked_wait);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(wait_graph_suite());
}
