/* SPDX-License-Identifier: MIT */
/*
 * Waiting inside a worker: a wait called on a worker runs other tasks of its pool instead of
 * blocking the thread (deep chains of tasks waiting on children on a single worker, waits on
 * tasks that other workers submitted, waits across pools); a wait on any other thread sleeps
 * without spinning.
 */
#include "testutil.h"

#include <sched.h>

/* ---------------------------------------------------------------------------------------------
 * Deep chains: each task submits a child and waits on it
 */

enum chain_mode { CHAIN_RESULT, CHAIN_WAIT, CHAIN_TIMED_WAIT };

typedef struct chain {
    weft_pool *pool;
    long max;
    enum chain_mode mode;
    int leaf_code; /* 0: the leaf succeeds; else it fails with this code */
    int one_worker;
    atomic_long deepest;
    atomic_long ran;
} chain;

typedef struct chain_node {
    chain *c;
    long depth;
} chain_node;

static long chain_depth(void)
{
    return tu_env_long("WEFT_TEST_DEPTH", 10000);
}

static int chain_task(void *arg, void **result)
{
    chain_node *n = arg;
    chain *c = n->c;
    atomic_fetch_add(&c->ran, 1);
    if (c->one_worker)
        TU_EXPECT(weft_worker_index() == 0);
    long d = atomic_load(&c->deepest);
    while (n->depth > d && !atomic_compare_exchange_weak(&c->deepest, &d, n->depth)) {
    }
    if (n->depth == c->max) {
        if (c->leaf_code)
            return c->leaf_code;
        *result = NULL;
        return 0;
    }
    weft_future *child = NULL;
    int rc = weft_submit(c->pool, chain_task, n + 1, &child);
    if (!TU_EXPECT(rc == 0))
        return rc;
    if (c->mode == CHAIN_WAIT) {
        rc = weft_future_wait(child, WEFT_FOREVER);
        TU_EXPECT(rc == 0);
        TU_EXPECT(weft_future_done(child));
    } else if (c->mode == CHAIN_TIMED_WAIT) {
        do {
            rc = weft_future_wait(child, TU_MS(1000));
        } while (rc == -ETIMEDOUT);
        TU_EXPECT(rc == 0);
        TU_EXPECT(weft_future_done(child));
    }
    void *v = NULL;
    rc = weft_future_result(child, &v);
    weft_future_release(child);
    if (rc)
        return rc; /* propagate the failure */
    *result = (void *)((intptr_t)v + 1);
    return 0;
}

/* Runs a chain of depth max on a pool of `workers`, returns the root's result code and sets
 * *value. */
static int run_chain(unsigned workers, long max, enum chain_mode mode, int leaf_code,
                     intptr_t *value, weft_state *state)
{
    weft_pool *p = tu_pool_new(workers, NULL);
    chain c = {
        .pool = p, .max = max, .mode = mode, .leaf_code = leaf_code, .one_worker = workers == 1};
    atomic_init(&c.deepest, -1);
    atomic_init(&c.ran, 0);
    chain_node *nodes = calloc((size_t)max + 1, sizeof *nodes);
    ck_assert_ptr_nonnull(nodes);
    for (long i = 0; i <= max; i++)
        nodes[i] = (chain_node){&c, i};
    weft_future *root = NULL;
    ck_assert_int_eq(weft_submit(p, chain_task, &nodes[0], &root), 0);
    void *v = NULL;
    int rc = weft_future_result(root, &v);
    *value = (intptr_t)v;
    *state = weft_future_state(root);
    weft_future_release(root);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ldl(&c.deepest), max);
    ck_assert_int_eq(tu_ldl(&c.ran), max + 1);
    free(nodes);
    TU_ASSERT_NO_FAILURES();
    return rc;
}

START_TEST(test_chain_result_one_worker)
{
    long max = chain_depth();
    intptr_t v = -1;
    weft_state st;
    ck_assert_int_eq(run_chain(1, max, CHAIN_RESULT, 0, &v, &st), 0);
    ck_assert_int_eq(st, WEFT_DONE);
    ck_assert_int_eq(v, max);
}
END_TEST

START_TEST(test_chain_wait_one_worker)
{
    long max = chain_depth();
    intptr_t v = -1;
    weft_state st;
    ck_assert_int_eq(run_chain(1, max, CHAIN_WAIT, 0, &v, &st), 0);
    ck_assert_int_eq(st, WEFT_DONE);
    ck_assert_int_eq(v, max);
}
END_TEST

START_TEST(test_chain_timed_wait_one_worker)
{
    long max = chain_depth() / 10 + 1;
    intptr_t v = -1;
    weft_state st;
    ck_assert_int_eq(run_chain(1, max, CHAIN_TIMED_WAIT, 0, &v, &st), 0);
    ck_assert_int_eq(st, WEFT_DONE);
    ck_assert_int_eq(v, max);
}
END_TEST

START_TEST(test_chain_failure_propagates)
{
    long max = chain_depth();
    intptr_t v = -1;
    weft_state st;
    ck_assert_int_eq(run_chain(1, max, CHAIN_RESULT, 5, &v, &st), 5);
    ck_assert_int_eq(st, WEFT_FAILED);
}
END_TEST

START_TEST(test_chain_two_workers)
{
    long max = chain_depth();
    intptr_t v = -1;
    weft_state st;
    ck_assert_int_eq(run_chain(2, max, CHAIN_RESULT, 0, &v, &st), 0);
    ck_assert_int_eq(st, WEFT_DONE);
    ck_assert_int_eq(v, max);
    ck_assert_int_eq(run_chain(2, max, CHAIN_WAIT, 0, &v, &st), 0);
    ck_assert_int_eq(v, max);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Two workers waiting on each other's children
 */

typedef struct xpair {
    weft_pool *pool;
    atomic_int arrived;
    _Atomic(weft_future *) child[2];
    atomic_int side_worker[2];
    atomic_int child_worker[2];
} xpair;

typedef struct xside {
    xpair *x;
    int i;
} xside;

static int xchild(void *arg, void **result)
{
    xside *s = arg;
    atomic_store(&s->x->child_worker[s->i], weft_worker_index());
    *result = (void *)(intptr_t)(100 + s->i);
    return 0;
}

static int xside_task(void *arg, void **result)
{
    xside *s = arg;
    xpair *x = s->x;
    (void)result;
    atomic_store(&x->side_worker[s->i], weft_worker_index());
    weft_future *mine = NULL;
    int rc = weft_submit(x->pool, xchild, s, &mine); /* into this worker's own deque */
    if (!TU_EXPECT(rc == 0))
        return rc;
    atomic_store(&x->child[s->i], mine);
    /* Rendezvous (without any weft wait): both sides are running, on different workers. */
    atomic_fetch_add(&x->arrived, 1);
    if (!TU_EXPECT(tu_wait_atomic_ge(&x->arrived, 2, TU_PATIENCE_S)))
        return -ETIMEDOUT;
    weft_future *other = atomic_load(&x->child[1 - s->i]);
    void *v = NULL;
    rc = weft_future_result(other, &v);
    TU_EXPECT(rc == 0);
    TU_EXPECT((intptr_t)v == 100 + (1 - s->i));
    return rc;
}

START_TEST(test_wait_on_other_workers_children)
{
    enum { ROUNDS = 200 };
    weft_pool *p = tu_pool_new(2, NULL);
    for (int r = 0; r < ROUNDS; r++) {
        xpair x = {.pool = p};
        atomic_init(&x.arrived, 0);
        xside s0 = {&x, 0}, s1 = {&x, 1};
        weft_future *f0 = NULL, *f1 = NULL;
        ck_assert_int_eq(weft_submit(p, xside_task, &s0, &f0), 0);
        ck_assert_int_eq(weft_submit(p, xside_task, &s1, &f1), 0);
        ck_assert_int_eq(weft_future_result(f0, NULL), 0);
        ck_assert_int_eq(weft_future_result(f1, NULL), 0);
        ck_assert_int_ne(tu_ld(&x.side_worker[0]), tu_ld(&x.side_worker[1]));
        for (int i = 0; i < 2; i++) {
            weft_future *c = atomic_load(&x.child[i]);
            ck_assert_int_eq(weft_future_state(c), WEFT_DONE);
            weft_future_release(c);
        }
        weft_future_release(f0);
        weft_future_release(f1);
        TU_ASSERT_NO_FAILURES();
    }
    tu_pool_free(p);
}
END_TEST

/* Many tasks on two workers, each submitting a child and then waiting on a child that some
 * earlier task (possibly on the other worker) published. */

enum { MESH_N = 2000 };

typedef struct mesh {
    weft_pool *pool;
    atomic_int published;
    _Atomic(weft_future *) slot[MESH_N];
    atomic_int slot_owner[MESH_N];
    atomic_int waited;
} mesh;

typedef struct mesh_task {
    mesh *m;
    int id;
} mesh_task;

static int mesh_child(void *arg, void **result)
{
    mesh_task *t = arg;
    *result = (void *)(intptr_t)(t->id * 3 + 1);
    return 0;
}

static int mesh_node(void *arg, void **result)
{
    mesh_task *t = arg;
    mesh *m = t->m;
    (void)result;
    weft_future *c = NULL;
    int rc = weft_submit(m->pool, mesh_child, t, &c);
    if (!TU_EXPECT(rc == 0))
        return rc;
    /* No weft call between taking a position and filling it: a waiter never waits long. */
    int pos = atomic_fetch_add(&m->published, 1);
    atomic_store(&m->slot_owner[pos], t->id);
    atomic_store(&m->slot[pos], c);
    if (pos == 0)
        return 0;
    int q = (int)(((unsigned)t->id * 2654435761u) % (unsigned)pos);
    weft_future *other;
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while ((other = atomic_load(&m->slot[q])) == NULL) {
        if (!TU_EXPECT(tu_now_ns() < deadline))
            return -ETIMEDOUT;
    }
    void *v = NULL;
    rc = weft_future_result(other, &v);
    TU_EXPECT(rc == 0);
    TU_EXPECT((intptr_t)v == atomic_load(&m->slot_owner[q]) * 3 + 1);
    atomic_fetch_add(&m->waited, 1);
    return rc;
}

static int mesh_root(void *arg, void **result)
{
    mesh_task *ts = arg;
    mesh *m = ts[0].m;
    (void)result;
    static weft_future *fs[MESH_N];
    int rc = 0;
    for (int i = 0; i < MESH_N; i++) {
        int r = weft_submit(m->pool, mesh_node, &ts[i], &fs[i]);
        if (!TU_EXPECT(r == 0)) {
            fs[i] = NULL;
            rc = r;
        }
    }
    for (int i = 0; i < MESH_N; i++) {
        if (!fs[i])
            continue;
        int r = weft_future_result(fs[i], NULL);
        TU_EXPECT(r == 0);
        if (r)
            rc = r;
        weft_future_release(fs[i]);
    }
    return rc;
}

START_TEST(test_wait_mesh_two_workers)
{
    weft_pool *p = tu_pool_new(2, NULL);
    mesh *m = calloc(1, sizeof *m);
    mesh_task *ts = calloc(MESH_N, sizeof *ts);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(ts);
    m->pool = p;
    for (int i = 0; i < MESH_N; i++)
        ts[i] = (mesh_task){m, i};
    weft_future *root = NULL;
    ck_assert_int_eq(weft_submit(p, mesh_root, ts, &root), 0);
    ck_assert_int_eq(weft_future_result(root, NULL), 0);
    weft_future_release(root);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(tu_ld(&m->published), MESH_N);
    ck_assert_int_eq(tu_ld(&m->waited), MESH_N - 1);
    for (int i = 0; i < MESH_N; i++) {
        weft_future *c = atomic_load(&m->slot[i]);
        ck_assert_int_eq(weft_future_state(c), WEFT_DONE);
        weft_future_release(c);
    }
    free(ts);
    free(m);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Across pools
 */

typedef struct cross {
    weft_pool *a, *b;
    atomic_int a_count;
} cross;

static int b_value(void *arg, void **result)
{
    *result = (void *)((intptr_t)arg + 1000);
    return 0;
}

static int a_waits_on_b(void *arg, void **result)
{
    cross *x = arg;
    static atomic_int seq;
    intptr_t k = atomic_fetch_add(&seq, 1);
    weft_future *f = NULL;
    int rc = weft_submit(x->b, b_value, (void *)k, &f);
    if (!TU_EXPECT(rc == 0))
        return rc;
    void *v = NULL;
    rc = weft_future_result(f, &v);
    weft_future_release(f);
    TU_EXPECT(rc == 0);
    TU_EXPECT((intptr_t)v == k + 1000);
    *result = v;
    return rc;
}

START_TEST(test_wait_on_other_pool_busy)
{
    enum { N = 20 };
    cross x = {.a = tu_pool_new(2, "a"), .b = tu_pool_new(1, "b")};
    atomic_init(&x.a_count, 0);
    weft_future *busy = NULL;
    ck_assert_int_eq(weft_submit(x.b, tu_task_sleep_ms, (void *)(intptr_t)150, &busy), 0);
    weft_future *fs[N];
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_submit(x.a, a_waits_on_b, &x, &fs[i]), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(weft_submit(x.a, tu_task_count, &x.a_count, NULL), 0);
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(fs[i], &v), 0);
        ck_assert_int_ge((intptr_t)v, 1000);
        weft_future_release(fs[i]);
    }
    ck_assert_int_eq(weft_future_result(busy, NULL), 0);
    weft_future_release(busy);
    tu_pool_free(x.a);
    tu_pool_free(x.b);
    ck_assert_int_eq(tu_ld(&x.a_count), 100);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Pool A has one worker. Its task waits on a task of pool B that is held back by a gate; while
 * it waits, A's only worker must run the other tasks submitted to A. */
typedef struct helper_probe {
    weft_pool *b;
    tu_gate *b_gate;
    atomic_int waiting;
} helper_probe;

static int a_waits_on_gated_b(void *arg, void **result)
{
    helper_probe *hp = arg;
    weft_future *g = NULL, *f = NULL;
    int rc = weft_submit(hp->b, tu_task_gate, hp->b_gate, &g);
    if (!TU_EXPECT(rc == 0))
        return rc;
    rc = weft_submit(hp->b, tu_task_identity, hp, &f);
    if (!TU_EXPECT(rc == 0)) {
        weft_future_release(g);
        return rc;
    }
    atomic_store(&hp->waiting, 1);
    void *v = NULL;
    rc = weft_future_result(f, &v);
    TU_EXPECT(rc == 0);
    TU_EXPECT(v == hp);
    TU_EXPECT(weft_future_result(g, NULL) == 0);
    weft_future_release(f);
    weft_future_release(g);
    *result = v;
    return rc;
}

START_TEST(test_waiting_worker_runs_other_tasks)
{
    enum { N = 50 };
    weft_pool *a = tu_pool_new(1, "a");
    weft_pool *b = tu_pool_new(1, "b");
    tu_gate b_gate;
    tu_gate_init(&b_gate);
    helper_probe hp = {.b = b, .b_gate = &b_gate};
    atomic_init(&hp.waiting, 0);
    weft_future *x = NULL;
    ck_assert_int_eq(weft_submit(a, a_waits_on_gated_b, &hp, &x), 0);
    ck_assert(tu_wait_atomic_ge(&hp.waiting, 1, TU_PATIENCE_S));
    static atomic_int count;
    atomic_store(&count, 0);
    weft_future *fs[N];
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_submit(a, tu_task_count, &count, &fs[i]), 0);
    /* Watched without a weft wait: A's worker is inside x's wait, B is still gated. */
    bool ran = tu_wait_atomic_ge(&count, N, 10.0);
    int seen = tu_ld(&count);
    ck_assert_int_eq(weft_future_state(x), WEFT_RUNNING);
    tu_gate_open(&b_gate);
    ck_assert_int_eq(weft_future_result(x, NULL), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        weft_future_release(fs[i]);
    }
    weft_future_release(x);
    tu_pool_free(a);
    tu_pool_free(b);
    ck_assert_msg(ran, "while its only worker waited on another pool, pool A ran %d of %d tasks",
                  seen, N);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Ping-pong between two one-worker pools: a task of A waits on a task of B that waits on a
 * task of A, and so on. Each wait must run the other pool's submissions to its own pool. */
typedef struct pingpong {
    weft_pool *pools[2];
    int max;
    atomic_int deepest;
} pingpong;

typedef struct pp_node {
    pingpong *pp;
    int depth;
} pp_node;

static int pp_task(void *arg, void **result)
{
    pp_node *n = arg;
    pingpong *pp = n->pp;
    TU_EXPECT(weft_worker_index() == 0);
    int d = atomic_load(&pp->deepest);
    while (n->depth > d && !atomic_compare_exchange_weak(&pp->deepest, &d, n->depth)) {
    }
    if (n->depth == pp->max) {
        *result = (void *)(intptr_t)0;
        return 0;
    }
    weft_future *f = NULL;
    int rc = weft_submit(pp->pools[(n->depth + 1) % 2], pp_task, n + 1, &f);
    if (!TU_EXPECT(rc == 0))
        return rc;
    void *v = NULL;
    rc = weft_future_result(f, &v);
    weft_future_release(f);
    if (rc)
        return rc;
    *result = (void *)((intptr_t)v + 1);
    return 0;
}

START_TEST(test_ping_pong_between_pools)
{
    enum { MAX = 200 };
    pingpong pp = {.pools = {tu_pool_new(1, "ping"), tu_pool_new(1, "pong")}, .max = MAX};
    atomic_init(&pp.deepest, -1);
    pp_node nodes[MAX + 1];
    for (int i = 0; i <= MAX; i++)
        nodes[i] = (pp_node){&pp, i};
    weft_future *root = NULL;
    ck_assert_int_eq(weft_submit(pp.pools[0], pp_task, &nodes[0], &root), 0);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(root, &v), 0);
    ck_assert_int_eq((intptr_t)v, MAX);
    ck_assert_int_eq(tu_ld(&pp.deepest), MAX);
    weft_future_release(root);
    tu_pool_free(pp.pools[0]);
    tu_pool_free(pp.pools[1]);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Waiting outside a pool does not spin
 */

static void check_blocked_wait_cpu(int how)
{
    weft_pool *p = tu_pool_new(2, NULL);
    weft_future *f = NULL;
    intptr_t ms = how == 2 ? 2000 : 300;
    ck_assert_int_eq(weft_submit(p, tu_task_sleep_ms, (void *)ms, &f), 0);
    int64_t cpu0 = tu_thread_cpu_ns(), t0 = tu_now_ns();
    int rc;
    if (how == 0)
        rc = weft_future_result(f, NULL);
    else if (how == 1)
        rc = weft_future_wait(f, WEFT_FOREVER);
    else
        rc = weft_future_wait(f, TU_MS(300));
    int64_t cpu = tu_thread_cpu_ns() - cpu0, wall = tu_now_ns() - t0;
    ck_assert_int_eq(rc, how == 2 ? -ETIMEDOUT : 0);
    ck_assert_msg(wall >= TU_MS(250), "the wait returned after %.1f ms", wall / 1e6);
    ck_assert_msg(cpu < TU_MS(30), "waiting %.0f ms for a task used %.1f ms of CPU (how=%d)",
                  wall / 1e6, cpu / 1e6, how);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);
    tu_pool_free(p);
}

START_TEST(test_outside_result_does_not_spin)
{
    check_blocked_wait_cpu(0);
}
END_TEST

START_TEST(test_outside_wait_does_not_spin)
{
    check_blocked_wait_cpu(1);
}
END_TEST

START_TEST(test_outside_timed_wait_does_not_spin)
{
    check_blocked_wait_cpu(2);
}
END_TEST

typedef struct waiter_thread {
    weft_future *f;
    int rc;
    int64_t cpu;
} waiter_thread;

static void *waiter_main(void *arg)
{
    waiter_thread *w = arg;
    int64_t cpu0 = tu_thread_cpu_ns();
    w->rc = weft_future_result(w->f, NULL);
    w->cpu = tu_thread_cpu_ns() - cpu0;
    return NULL;
}

START_TEST(test_many_outside_waiters_do_not_spin)
{
    enum { T = 4 };
    weft_pool *p = tu_pool_new(1, NULL);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_sleep_ms, (void *)(intptr_t)300, &f), 0);
    waiter_thread w[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        w[i] = (waiter_thread){.f = f, .rc = 1};
        ck_assert_int_eq(pthread_create(&th[i], NULL, waiter_main, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(w[i].rc, 0);
        ck_assert_msg(w[i].cpu < TU_MS(30), "waiter %d used %.1f ms of CPU", i, w[i].cpu / 1e6);
    }
    weft_future_release(f);
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Timeouts on a worker: helping stops taking tasks once the deadline has passed, so a wait
 * overruns its timeout by at most the one task that was running then.
 */

enum { TIMEOUT_QUEUED = 1000 };
enum timed_kind { TIMED_FUTURE_WAIT, TIMED_WEFT_WAIT, TIMED_COMPLETION_NEXT };

typedef struct timed {
    weft_future *never; /* a future of another pool, held by a gate */
    enum timed_kind kind;
    atomic_int ran;      /* queued 1 ms tasks that ran */
    int ran_during_wait; /* of those, how many before the timed wait returned */
    int rc;
} timed;

static int task_one_ms(void *arg, void **result)
{
    (void)result;
    tu_sleep_ms(1);
    atomic_fetch_add(&((timed *)arg)->ran, 1);
    return 0;
}

static weft_pool *timed_pool;

static int task_timed_wait_on(void *arg, void **result)
{
    (void)result;
    timed *t = arg;
    for (int i = 0; i < TIMEOUT_QUEUED; i++)
        TU_EXPECT(weft_submit(timed_pool, task_one_ms, t, NULL) == 0);
    switch (t->kind) {
    case TIMED_FUTURE_WAIT:
        t->rc = weft_future_wait(t->never, TU_MS(1));
        break;
    case TIMED_WEFT_WAIT: {
        weft_future *out[1];
        size_t ndone = 9;
        t->rc = weft_wait(&t->never, 1, WEFT_ALL_COMPLETED, TU_MS(1), out, &ndone);
        if (t->rc == 0 && ndone == 0)
            t->rc = -ETIMEDOUT;
        break;
    }
    case TIMED_COMPLETION_NEXT: {
        weft_completion *c = NULL;
        weft_future *f = NULL;
        TU_EXPECT(weft_as_completed(&t->never, 1, &c) == 0);
        t->rc = weft_completion_next(c, TU_MS(1), &f);
        weft_completion_destroy(c);
        break;
    }
    }
    t->ran_during_wait = atomic_load(&t->ran);
    return 0;
}

static void check_timed_wait(enum timed_kind kind)
{
    weft_pool *other = tu_pool_new(1, "other");
    tu_gate gate;
    tu_gate_init(&gate);
    timed t = {.kind = kind, .rc = 1};
    atomic_init(&t.ran, 0);
    ck_assert_int_eq(weft_submit(other, tu_task_gate, &gate, &t.never), 0);
    timed_pool = tu_pool_new(1, "timed");
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(timed_pool, task_timed_wait_on, &t, &f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);
    ck_assert_int_eq(t.rc, -ETIMEDOUT);
    /* Each queued task lasts 1 ms, as long as the timeout: once one has run, the deadline has
     * passed. A second may have been taken in the instant before it did. */
    ck_assert_msg(t.ran_during_wait <= 2, "the 1 ms wait ran %d tasks of 1 ms", t.ran_during_wait);
    tu_pool_free(timed_pool);
    ck_assert_int_eq(atomic_load(&t.ran), TIMEOUT_QUEUED); /* the rest ran after, each once */
    tu_gate_open(&gate);
    weft_future_release(t.never);
    tu_pool_free(other);
    TU_ASSERT_NO_FAILURES();
}

START_TEST(test_timed_future_wait_on_worker_holds)
{
    check_timed_wait(TIMED_FUTURE_WAIT);
}
END_TEST

START_TEST(test_timed_weft_wait_on_worker_holds)
{
    check_timed_wait(TIMED_WEFT_WAIT);
}
END_TEST

START_TEST(test_timed_completion_next_on_worker_holds)
{
    check_timed_wait(TIMED_COMPLETION_NEXT);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Priority inversion: a real-time waiter on the CPU of the worker that finishes its future must
 * not spin while that worker is a few instructions away from releasing it (SCHED_FIFO; skipped
 * where the process may not use it).
 */

static void pin_to_cpu0(weft_pool *pool, unsigned worker, void *data)
{
    (void)pool;
    (void)worker;
    (void)data;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static _Atomic int64_t task_end_ns;

static int task_sleep_then_stamp(void *arg, void **result)
{
    (void)arg;
    (void)result;
    tu_sleep_ms(2);
    atomic_store(&task_end_ns, tu_now_ns());
    return 0;
}

START_TEST(test_realtime_waiter_is_not_starved)
{
    cpu_set_t set, old_set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    ck_assert_int_eq(pthread_getaffinity_np(pthread_self(), sizeof(old_set), &old_set), 0);
    if (!CPU_ISSET(0, &old_set))
        return; /* CPU 0 is not ours: nothing to pin to */
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    cfg.on_worker_start = pin_to_cpu0;
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_int_eq(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
    struct sched_param prio = {.sched_priority = 1}, old_prio;
    int old_policy;
    ck_assert_int_eq(pthread_getschedparam(pthread_self(), &old_policy, &old_prio), 0);
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &prio) != 0) {
        pthread_setaffinity_np(pthread_self(), sizeof(old_set), &old_set);
        tu_pool_free(p);
        return; /* no real-time scheduling here: nothing to test */
    }
    int64_t worst = 0;
    for (int round = 0; round < 20; round++) {
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, task_sleep_then_stamp, NULL, &f), 0);
        weft_future *out[1];
        size_t ndone = 0;
        int rc = weft_wait(&f, 1, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &ndone);
        int64_t late = tu_now_ns() - atomic_load(&task_end_ns);
        if (late > worst)
            worst = late;
        weft_future_release(f);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(ndone, 1);
    }
    pthread_setschedparam(pthread_self(), old_policy, &old_prio);
    pthread_setaffinity_np(pthread_self(), sizeof(old_set), &old_set);
    tu_pool_free(p);
    /* Not a timing goal: a waiter that spins here is held until the kernel's real-time
     * throttling lets the worker run (about 0.95 s), or forever without throttling. */
    ck_assert_msg(worst < TU_MS(300), "the real-time waiter returned %.1f ms after the task ended",
                  worst / 1e6);
}
END_TEST

static Suite *helping_suite(void)
{
    Suite *s = suite_create("helping");

    TCase *tc = tcase_create("chains");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_chain_result_one_worker);
    tcase_add_test(tc, test_chain_wait_one_worker);
    tcase_add_test(tc, test_chain_timed_wait_one_worker);
    tcase_add_test(tc, test_chain_failure_propagates);
    tcase_add_test(tc, test_chain_two_workers);
    suite_add_tcase(s, tc);

    tc = tcase_create("workers");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_on_other_workers_children);
    tcase_add_test(tc, test_wait_mesh_two_workers);
    suite_add_tcase(s, tc);

    tc = tcase_create("pools");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_wait_on_other_pool_busy);
    tcase_add_test(tc, test_waiting_worker_runs_other_tasks);
    tcase_add_test(tc, test_ping_pong_between_pools);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeouts");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_timed_future_wait_on_worker_holds);
    tcase_add_test(tc, test_timed_weft_wait_on_worker_holds);
    tcase_add_test(tc, test_timed_completion_next_on_worker_holds);
    tcase_add_test(tc, test_realtime_waiter_is_not_starved);
    suite_add_tcase(s, tc);

    tc = tcase_create("outside");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_outside_result_does_not_spin);
    tcase_add_test(tc, test_outside_wait_does_not_spin);
    tcase_add_test(tc, test_outside_timed_wait_does_not_spin);
    tcase_add_test(tc, test_many_outside_waiters_do_not_spin);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(helping_suite());
}
