/* SPDX-License-Identifier: MIT */
/*
 * Task groups: weft_group_create, submit, pending, wait, cancel, destroy.
 *
 *  - A group of detached tasks: wait returns once every one has run, exactly once.
 *  - Tasks that submit more tasks to their own group are waited for too.
 *  - wait with a timeout returns -ETIMEDOUT while a task is held, and 0 once it is released.
 *  - cancel cancels the tasks that have not started (they never run) and returns how many;
 *    the group's wait then returns, and the group can be used again.
 *  - A task of the group that waits for its group gets -EDEADLK; a task that is not a member
 *    waits (helping) even on a pool of one worker.
 *  - Many threads submit to one group while another waits and cancels: every task ran once or
 *    ended CANCELLED, and pending comes back to 0.
 * Sizes scale with $WEFT_STRESS_SCALE.
 */
#include "testutil.h"

#include <pthread.h>

START_TEST(test_group_detached_tasks)
{
    enum { N = 5000 };
    weft_pool *pool = tu_pool_new(2, NULL);
    weft_group *g = NULL;
    ck_assert_int_eq(weft_group_create(pool, &g), 0);
    ck_assert_uint_eq(weft_group_pending(g), 0);
    ck_assert_int_eq(weft_group_wait(g, 0), 0); /* empty: done at once */
    atomic_int ran;
    atomic_init(&ran, 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_group_submit(g, tu_task_count, &ran, NULL), 0);
    ck_assert_int_eq(weft_group_wait(g, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&ran), N);
    ck_assert_uint_eq(weft_group_pending(g), 0);
    /* again, with futures kept by the caller */
    weft_future *f = NULL;
    ck_assert_int_eq(weft_group_submit(g, tu_task_identity, &ran, &f), 0);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, &ran);
    weft_future_release(f);
    ck_assert_int_eq(weft_group_destroy(g), 0);
    tu_pool_free(pool);
}
END_TEST

/* Each task submits two more to its own group, down to a depth. */
typedef struct tree {
    weft_group *g;
    atomic_int ran;
    int depth;
} tree;

typedef struct tree_node {
    tree *t;
    int depth;
} tree_node;

static tree_node tree_nodes[1 << 12];
static atomic_int tree_next;

static int tree_task(void *arg, void **result)
{
    (void)result;
    tree_node *n = arg;
    atomic_fetch_add(&n->t->ran, 1);
    if (n->depth == 0)
        return 0;
    for (int k = 0; k < 2; k++) {
        tree_node *c = &tree_nodes[atomic_fetch_add(&tree_next, 1)];
        *c = (tree_node){n->t, n->depth - 1};
        TU_EXPECT(weft_group_submit(n->t->g, tree_task, c, NULL) == 0);
    }
    return 0;
}

START_TEST(test_group_tasks_submit_to_their_group)
{
    weft_pool *pool = tu_pool_new(2, NULL);
    tree t = {.depth = 10};
    atomic_init(&t.ran, 0);
    atomic_init(&tree_next, 1);
    ck_assert_int_eq(weft_group_create(pool, &t.g), 0);
    tree_nodes[0] = (tree_node){&t, t.depth};
    ck_assert_int_eq(weft_group_submit(t.g, tree_task, &tree_nodes[0], NULL), 0);
    ck_assert_int_eq(weft_group_wait(t.g, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&t.ran), (1 << (t.depth + 1)) - 1);
    ck_assert_int_eq(weft_group_destroy(t.g), 0);
    tu_pool_free(pool);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_group_wait_timeout_and_cancel)
{
    weft_pool *pool = tu_pool_new(1, NULL);
    weft_group *g = NULL;
    ck_assert_int_eq(weft_group_create(pool, &g), 0);
    tu_gate gate;
    tu_gate_init(&gate);
    weft_future *blocker = NULL;
    ck_assert_int_eq(weft_group_submit(g, tu_task_gate, &gate, &blocker), 0);
    while (weft_future_state(blocker) == WEFT_PENDING)
        tu_sleep_ms(1);
    atomic_int ran;
    atomic_init(&ran, 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(weft_group_submit(g, tu_task_count, &ran, NULL), 0);
    ck_assert_uint_eq(weft_group_pending(g), 11);
    ck_assert_int_eq(weft_group_wait(g, TU_MS(20)), -ETIMEDOUT);
    ck_assert_int_eq(weft_group_wait(g, 0), -ETIMEDOUT);
    ck_assert_int_eq(weft_group_cancel(g),
                     10); /* the queued ones; the running one gets a request */
    ck_assert_uint_eq(weft_group_pending(g), 1);
    tu_gate_open(&gate);
    ck_assert_int_eq(weft_group_wait(g, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&ran), 0);
    ck_assert_int_eq(weft_future_result(blocker, NULL), 0);
    weft_future_release(blocker);
    /* usable again */
    ck_assert_int_eq(weft_group_submit(g, tu_task_count, &ran, NULL), 0);
    ck_assert_int_eq(weft_group_destroy(g), 0); /* waits for it */
    ck_assert_int_eq(atomic_load(&ran), 1);
    ck_assert_int_eq(weft_group_cancel(NULL), -EINVAL);
    ck_assert_int_eq(weft_group_wait(NULL, 0), -EINVAL);
    ck_assert_int_eq(weft_group_destroy(NULL), 0);
    ck_assert_uint_eq(weft_group_pending(NULL), 0);
    weft_group *bad = NULL;
    ck_assert_int_eq(weft_group_create(NULL, &bad), -EINVAL);
    ck_assert_int_eq(weft_group_create(pool, NULL), -EINVAL);
    tu_pool_free(pool);
}
END_TEST

/* A member waiting for its own group would wait for itself. */
static int task_waits_for_its_group(void *arg, void **result)
{
    (void)result;
    weft_group *g = arg;
    int rc = weft_group_wait(g, WEFT_FOREVER);
    TU_EXPECT(rc == -EDEADLK);
    TU_EXPECT(weft_group_destroy(g) == -EDEADLK);
    return 0;
}

/* A task outside the group waits for it, helping on the pool's only worker. */
static int task_waits_for_other_group(void *arg, void **result)
{
    (void)result;
    weft_group *g = arg;
    return weft_group_wait(g, WEFT_FOREVER);
}

START_TEST(test_group_waits_inside_the_pool)
{
    weft_pool *pool = tu_pool_new(1, NULL);
    weft_group *g = NULL;
    ck_assert_int_eq(weft_group_create(pool, &g), 0);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_group_submit(g, task_waits_for_its_group, g, &f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);
    ck_assert_int_eq(weft_group_wait(g, WEFT_FOREVER), 0);

    atomic_int ran;
    atomic_init(&ran, 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(weft_group_submit(g, tu_task_count, &ran, NULL), 0);
    ck_assert_int_eq(weft_submit(pool, task_waits_for_other_group, g, &f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(atomic_load(&ran), 100);
    weft_future_release(f);
    ck_assert_int_eq(weft_group_destroy(g), 0);
    tu_pool_free(pool);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A task always finds itself counted in its group: the member is listed before the task can
 * run (it was not, and a task that waited for its group could find it empty and free it). */
typedef struct self_count {
    weft_group *g;
    atomic_int seen_empty;
} self_count;

static int task_counts_itself(void *arg, void **result)
{
    (void)result;
    self_count *c = arg;
    if (weft_group_pending(c->g) == 0)
        atomic_fetch_add(&c->seen_empty, 1);
    return 0;
}

START_TEST(test_group_member_listed_before_it_runs)
{
    weft_pool *pool = tu_pool_new(2, NULL);
    self_count c;
    atomic_init(&c.seen_empty, 0);
    ck_assert_int_eq(weft_group_create(pool, &c.g), 0);
    for (int i = 0; i < 2000; i++) {
        ck_assert_int_eq(weft_group_submit(c.g, task_counts_itself, &c, NULL), 0);
        if (i % 64 == 63)
            ck_assert_int_eq(weft_group_wait(c.g, WEFT_FOREVER), 0);
    }
    ck_assert_int_eq(weft_group_destroy(c.g), 0);
    tu_pool_free(pool);
    ck_assert_int_eq(tu_ld(&c.seen_empty), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Submitters, a waiter and a canceller at once. */
typedef struct stress {
    weft_group *g;
    atomic_int *runs;
    int per_thread;
    int base;
    atomic_int submitted;
} stress;

static int task_mark(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static void *submitter(void *arg)
{
    stress *s = arg;
    for (int i = 0; i < s->per_thread; i++) {
        weft_future *f = NULL;
        int idx = s->base + i;
        if (weft_group_submit(s->g, task_mark, &s->runs[idx], &f) != 0) {
            TU_EXPECT(false);
            continue;
        }
        atomic_fetch_add(&s->submitted, 1);
        weft_future_release(f);
    }
    return NULL;
}

START_TEST(test_group_stress)
{
    enum { THREADS = 4 };
    int per = 2000 * (int)tu_stress_scale();
    int n = per * THREADS;
    atomic_int *runs = calloc((size_t)n, sizeof(*runs));
    ck_assert_ptr_nonnull(runs);
    weft_pool *pool = tu_pool_new(2, NULL);
    weft_group *g = NULL;
    ck_assert_int_eq(weft_group_create(pool, &g), 0);
    stress s[THREADS];
    pthread_t th[THREADS];
    for (int k = 0; k < THREADS; k++) {
        s[k] = (stress){.g = g, .runs = runs, .per_thread = per, .base = k * per};
        atomic_init(&s[k].submitted, 0);
        ck_assert_int_eq(pthread_create(&th[k], NULL, submitter, &s[k]), 0);
    }
    long cancelled = 0;
    for (int round = 0; round < 20; round++) {
        int c = weft_group_cancel(g);
        ck_assert_int_ge(c, 0);
        cancelled += c;
        weft_group_wait(g, TU_MS(1));
    }
    for (int k = 0; k < THREADS; k++)
        ck_assert_int_eq(pthread_join(th[k], NULL), 0);
    ck_assert_int_eq(weft_group_wait(g, WEFT_FOREVER), 0);
    ck_assert_uint_eq(weft_group_pending(g), 0);
    long ran = 0;
    for (int i = 0; i < n; i++) {
        int r = atomic_load(&runs[i]);
        ck_assert_msg(r == 0 || r == 1, "task %d ran %d times", i, r);
        ran += r;
    }
    ck_assert_int_eq(ran + cancelled, n); /* each ran once or was cancelled */
    ck_assert_int_eq(weft_group_destroy(g), 0);
    tu_pool_free(pool);
    free(runs);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("group");
    TCase *tc = tcase_create("group");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_group_detached_tasks);
    tcase_add_test(tc, test_group_tasks_submit_to_their_group);
    tcase_add_test(tc, test_group_wait_timeout_and_cancel);
    tcase_add_test(tc, test_group_waits_inside_the_pool);
    tcase_add_test(tc, test_group_member_listed_before_it_runs);
    tcase_add_test(tc, test_group_stress);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
