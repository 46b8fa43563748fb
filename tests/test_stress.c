/* SPDX-License-Identifier: MIT */
/*
 * Stress: many threads at once, checking invariants rather than timings. Sizes are multiplied
 * by $WEFT_STRESS_SCALE (default 1).
 *
 * Invariants checked: every accepted task runs exactly once unless it ends CANCELLED, in which
 * case it never ran; every future ends in exactly one final state, matching what its function
 * did; each completion callback runs exactly once; submissions only ever fail with -ESHUTDOWN
 * after a shutdown; reference counting survives concurrent retain/release (ASan/TSan builds).
 */
#include "testutil.h"

static long scale(void)
{
    return tu_stress_scale();
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A little work, so that tasks overlap with what other threads do to their futures. */
static void spin_a_little(unsigned n)
{
    static atomic_uint sink;
    unsigned x = n;
    for (unsigned i = 0; i < n; i++)
        x = x * 1103515245u + 12345u;
    atomic_fetch_add_explicit(&sink, x, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * External submitters
 */

typedef struct ext {
    weft_pool *pool;
    long per_thread;
    atomic_int *runs;
    weft_future **fs;
    tu_gate go;
} ext;

typedef struct ext_arg {
    ext *e;
    long t;
} ext_arg;

static atomic_int *g_runs; /* the counters of the current test */

static int count_index(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    atomic_fetch_add(&g_runs[i], 1);
    *result = (void *)(i + 1);
    return 0;
}

static void *ext_submitter(void *arg)
{
    ext_arg *a = arg;
    ext *e = a->e;
    TU_EXPECT(tu_gate_wait(&e->go));
    long base = a->t * e->per_thread;
    for (long k = 0; k < e->per_thread; k++) {
        intptr_t i = base + k;
        int rc = weft_submit(e->pool, count_index, (void *)i, &e->fs[i]);
        if (!TU_EXPECT(rc == 0)) {
            e->fs[i] = NULL;
            continue;
        }
        /* Now and then wait on one's own task from outside. */
        if (k % 1000 == 999) {
            void *v = NULL;
            TU_EXPECT(weft_future_result(e->fs[i], &v) == 0);
            TU_EXPECT((intptr_t)v == i + 1);
        }
    }
    return NULL;
}

START_TEST(test_external_submitters)
{
    enum { T = 4 };
    static const unsigned sizes[] = {2, 5, 8};
    long per = 20000 * scale();
    long total = per * T;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        ext e = {.pool = tu_pool_new(sizes[s], NULL), .per_thread = per};
        e.runs = xcalloc((size_t)total, sizeof *e.runs);
        e.fs = xcalloc((size_t)total, sizeof *e.fs);
        g_runs = e.runs;
        tu_gate_init(&e.go);
        pthread_t th[T];
        ext_arg args[T];
        for (int t = 0; t < T; t++) {
            args[t] = (ext_arg){&e, t};
            ck_assert_int_eq(pthread_create(&th[t], NULL, ext_submitter, &args[t]), 0);
        }
        tu_gate_open(&e.go);
        for (int t = 0; t < T; t++)
            ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        TU_ASSERT_NO_FAILURES();
        for (long i = 0; i < total; i++) {
            void *v = NULL;
            ck_assert_int_eq(weft_future_result(e.fs[i], &v), 0);
            ck_assert_int_eq(weft_future_state(e.fs[i]), WEFT_DONE);
            ck_assert_int_eq((intptr_t)v, i + 1);
            weft_future_release(e.fs[i]);
        }
        tu_pool_free(e.pool);
        for (long i = 0; i < total; i++)
            ck_assert_msg(tu_ld(&e.runs[i]) == 1, "%u workers: task %ld ran %d times", sizes[s], i,
                          atomic_load(&e.runs[i]));
        free(e.runs);
        free(e.fs);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Fan-out trees: tasks submitting subtasks, some detached, some waited on
 */

typedef struct tree {
    weft_pool *pool;
    int branching, depth;
    atomic_long ran;
    atomic_long submit_failures;
    atomic_int last_failure;
} tree;

static tree *g_tree;

/* Value: the number of nodes in this node's attached subtree. */
static int tree_node(void *arg, void **result)
{
    tree *t = g_tree;
    int depth = (int)(intptr_t)arg;
    atomic_fetch_add(&t->ran, 1);
    if (depth == t->depth) {
        *result = (void *)(intptr_t)1;
        return 0;
    }
    weft_future *kids[16];
    int nk = 0;
    for (int k = 0; k < t->branching; k++) {
        void *child = (void *)(intptr_t)(depth + 1);
        int rc;
        if (k % 2)
            rc = weft_submit(t->pool, tree_node, child, NULL);
        else
            rc = weft_submit(t->pool, tree_node, child, &kids[nk++]);
        if (rc) {
            atomic_fetch_add(&t->submit_failures, 1);
            atomic_store(&t->last_failure, rc);
            if (!(k % 2))
                nk--;
        }
    }
    intptr_t sum = 1;
    int rc = 0;
    for (int k = 0; k < nk; k++) {
        void *v = NULL;
        int r = weft_future_result(kids[k], &v);
        weft_future_release(kids[k]);
        if (r)
            rc = r;
        sum += (intptr_t)v;
    }
    *result = (void *)sum;
    return rc;
}

static long tree_total(int b, int d) /* all nodes */
{
    long n = 1, level = 1;
    for (int i = 0; i < d; i++) {
        level *= b;
        n += level;
    }
    return n;
}

static long tree_attached(int b, int d) /* nodes reachable through waited-on edges */
{
    return tree_total((b + 1) / 2, d);
}

static void run_trees(unsigned workers, int roots, int b, int d)
{
    tree t = {.pool = tu_pool_new(workers, NULL), .branching = b, .depth = d};
    atomic_init(&t.last_failure, 0);
    atomic_init(&t.ran, 0);
    atomic_init(&t.submit_failures, 0);
    g_tree = &t;
    weft_future **fs = xcalloc((size_t)roots, sizeof *fs);
    for (int r = 0; r < roots; r++)
        ck_assert_int_eq(weft_submit(t.pool, tree_node, (void *)(intptr_t)0, &fs[r]), 0);
    for (int r = 0; r < roots; r++) {
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(fs[r], &v), 0);
        ck_assert_int_eq((intptr_t)v, tree_attached(b, d));
        weft_future_release(fs[r]);
    }
    /* Detached subtrees may still be growing: let them finish before destroying the pool,
     * whose shutdown would (rightly) refuse their submissions. */
    long expect = roots * tree_total(b, d);
    int64_t deadline = tu_now_ns() + (int64_t)(4 * TU_PATIENCE_S * 1e9);
    while (atomic_load(&t.ran) < expect && atomic_load(&t.submit_failures) == 0 &&
           tu_now_ns() < deadline)
        tu_sleep_ms(1);
    tu_pool_free(t.pool);
    ck_assert_msg(tu_ldl(&t.submit_failures) == 0, "%ld submits from tasks failed, last %d",
                  atomic_load(&t.submit_failures), atomic_load(&t.last_failure));
    ck_assert_int_eq(tu_ldl(&t.ran), expect);
    free(fs);
    g_tree = NULL;
}

START_TEST(test_fanout_trees)
{
    run_trees(4, (int)(8 * scale()), 4, 6);
    run_trees(2, (int)(2 * scale()), 3, 8);
}
END_TEST

START_TEST(test_oversubscribed_pool)
{
    weft_pool *p = tu_pool_new(64, "over");
    tu_pool_free(p);
    run_trees(64, (int)(8 * scale()), 4, 6);

    /* And plain external work on 64 workers. */
    p = tu_pool_new(64, "over");
    long n = 20000 * scale();
    atomic_int *runs = xcalloc((size_t)n, sizeof *runs);
    g_runs = runs;
    for (long i = 0; i < n; i++)
        ck_assert_int_eq(weft_submit(p, count_index, (void *)(intptr_t)i, NULL), 0);
    tu_pool_free(p);
    for (long i = 0; i < n; i++)
        ck_assert_int_eq(tu_ld(&runs[i]), 1);
    free(runs);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Cancel racing with run
 */

typedef struct race {
    weft_pool *pool;
    long n;
    _Atomic(weft_future *) *fs; /* published with release stores */
    atomic_long published;
    atomic_int *runs;
    atomic_int *cancelled_by; /* cancels that returned 1 */
    atomic_int *cb_a, *cb_b;  /* callbacks run */
    atomic_int *bad_rc;
    bool use_go; /* the racing threads wait for `go` */
    tu_gate go;
} race;

static int race_task(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    atomic_fetch_add(&g_runs[i], 1);
    spin_a_little((unsigned)(i % 7) * 50);
    *result = (void *)(i + 1);
    return 0;
}

static void race_submit_all(race *r)
{
    for (long i = 0; i < r->n; i++) {
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(r->pool, race_task, (void *)(intptr_t)i, &f), 0);
        atomic_store_explicit(&r->fs[i], f, memory_order_release);
        atomic_store(&r->published, i + 1);
    }
}

static weft_future *race_get(race *r, long i)
{
    while (atomic_load(&r->published) <= i)
        sched_yield();
    return atomic_load_explicit(&r->fs[i], memory_order_acquire);
}

typedef struct race_worker {
    race *r;
    int backwards;
} race_worker;

static void *canceller(void *arg)
{
    race_worker *w = arg;
    race *r = w->r;
    if (r->use_go)
        TU_EXPECT(tu_gate_wait(&r->go));
    for (long k = 0; k < r->n; k++) {
        /* Forwards follows the submitter closely; backwards waits for all and races the
         * workers from the other end. Every third is left alone. */
        long i = w->backwards ? r->n - 1 - k : k;
        if (i % 3 == 2)
            continue;
        int rc = weft_future_cancel(race_get(r, i));
        if (rc == 1)
            atomic_fetch_add(&r->cancelled_by[i], 1);
        else if (rc != 0)
            atomic_fetch_add(&r->bad_rc[i], 1);
    }
    return NULL;
}

static race *race_new(unsigned workers, long n)
{
    race *r = xcalloc(1, sizeof *r);
    r->pool = tu_pool_new(workers, NULL);
    r->n = n;
    r->fs = xcalloc((size_t)n, sizeof *r->fs);
    r->runs = xcalloc((size_t)n, sizeof *r->runs);
    r->cancelled_by = xcalloc((size_t)n, sizeof *r->cancelled_by);
    r->cb_a = xcalloc((size_t)n, sizeof *r->cb_a);
    r->cb_b = xcalloc((size_t)n, sizeof *r->cb_b);
    r->bad_rc = xcalloc((size_t)n, sizeof *r->bad_rc);
    atomic_init(&r->published, 0);
    tu_gate_init(&r->go);
    g_runs = r->runs;
    return r;
}

static void race_free(race *r)
{
    for (long i = 0; i < r->n; i++)
        weft_future_release(atomic_load(&r->fs[i]));
    free(r->fs);
    free(r->runs);
    free(r->cancelled_by);
    free(r->cb_a);
    free(r->cb_b);
    free(r->bad_rc);
    free(r);
}

/* After the pool is destroyed: every future is DONE and ran once with no successful cancel,
 * or CANCELLED, never ran, and exactly one cancel returned 1. */
static void race_check_cancel(race *r)
{
    long n = r->n;
    long done = 0, cancelled = 0;
    for (long i = 0; i < n; i++) {
        weft_future *f = atomic_load(&r->fs[i]);
        weft_state s = weft_future_state(f);
        int runs = atomic_load(&r->runs[i]), by = atomic_load(&r->cancelled_by[i]);
        ck_assert_int_eq(tu_ld(&r->bad_rc[i]), 0);
        if (s == WEFT_DONE) {
            done++;
            ck_assert_msg(runs == 1 && by == 0, "DONE task %ld ran %d times, cancel=1 %d times", i,
                          runs, by);
            void *v = NULL;
            ck_assert_int_eq(weft_future_result(f, &v), 0);
            ck_assert_int_eq((intptr_t)v, i + 1);
        } else {
            cancelled++;
            ck_assert_msg(s == WEFT_CANCELLED, "task %ld ended in state %d", i, (int)s);
            ck_assert_msg(runs == 0 && by == 1,
                          "CANCELLED task %ld ran %d times, cancel=1 %d times", i, runs, by);
            ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
        }
        if (i % 3 == 2)
            ck_assert_int_eq(s, WEFT_DONE);
    }
    ck_assert_int_eq(done + cancelled, n);
}

START_TEST(test_cancel_races_run)
{
    /* Cancellers follow the submitter while the workers run what it submits. */
    long n = 20000 * scale();
    race *r = race_new(3, n);
    race_worker fw = {r, 0}, bw = {r, 1};
    pthread_t t1, t2;
    ck_assert_int_eq(pthread_create(&t1, NULL, canceller, &fw), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, canceller, &bw), 0);
    race_submit_all(r);
    ck_assert_int_eq(pthread_join(t1, NULL), 0);
    ck_assert_int_eq(pthread_join(t2, NULL), 0);
    tu_pool_free(r->pool);
    TU_ASSERT_NO_FAILURES();
    race_check_cancel(r);
    race_free(r);
}
END_TEST

typedef struct holder {
    tu_gate *gate;
    atomic_int *started;
} holder;

static int hold_worker(void *arg, void **result)
{
    holder *h = arg;
    (void)result;
    atomic_fetch_add(h->started, 1);
    TU_EXPECT(tu_gate_wait(h->gate));
    return 0;
}

START_TEST(test_cancel_races_start)
{
    /* Everything is queued while the workers are held; then workers and cancellers are let go
     * at once and meet over the same pending tasks, many times. */
    enum { W = 3, ROUNDS = 16 };
    long n = 4000 * scale();
    for (int round = 0; round < ROUNDS; round++) {
        race *r = race_new(W, n);
        r->use_go = true;
        atomic_int started;
        atomic_init(&started, 0);
        holder h = {&r->go, &started};
        weft_future *holds[W];
        for (int w = 0; w < W; w++)
            ck_assert_int_eq(weft_submit(r->pool, hold_worker, &h, &holds[w]), 0);
        ck_assert(tu_wait_atomic_ge(&started, W, TU_PATIENCE_S));
        race_submit_all(r);
        race_worker fw = {r, 0}, bw = {r, 1};
        pthread_t t1, t2;
        ck_assert_int_eq(pthread_create(&t1, NULL, canceller, &fw), 0);
        ck_assert_int_eq(pthread_create(&t2, NULL, canceller, &bw), 0);
        tu_gate_open(&r->go);
        ck_assert_int_eq(pthread_join(t1, NULL), 0);
        ck_assert_int_eq(pthread_join(t2, NULL), 0);
        tu_pool_free(r->pool);
        TU_ASSERT_NO_FAILURES();
        for (int w = 0; w < W; w++) {
            ck_assert_int_eq(weft_future_state(holds[w]), WEFT_DONE);
            weft_future_release(holds[w]);
        }
        race_check_cancel(r);
        race_free(r);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * on_done registration racing with completion
 */

static void race_cb(weft_future *f, void *data)
{
    weft_state s = weft_future_state(f);
    TU_EXPECT(weft_future_done(f));
    TU_EXPECT(s == WEFT_DONE || s == WEFT_CANCELLED);
    atomic_fetch_add((atomic_int *)data, 1);
}

static void *registrar(void *arg)
{
    race_worker *w = arg;
    race *r = w->r;
    for (long k = 0; k < r->n; k++) {
        long i = w->backwards ? r->n - 1 - k : k;
        atomic_int *slot = w->backwards ? &r->cb_b[i] : &r->cb_a[i];
        TU_EXPECT(weft_future_on_done(race_get(r, i), race_cb, slot) == 0);
    }
    return NULL;
}

START_TEST(test_on_done_races_completion)
{
    long n = 20000 * scale();
    race *r = race_new(3, n);
    race_worker fw = {r, 0}, bw = {r, 1};
    pthread_t t1, t2;
    ck_assert_int_eq(pthread_create(&t1, NULL, registrar, &fw), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, registrar, &bw), 0);
    race_submit_all(r);
    ck_assert_int_eq(pthread_join(t1, NULL), 0);
    ck_assert_int_eq(pthread_join(t2, NULL), 0);
    tu_pool_free(r->pool); /* joins the workers that ran the late callbacks */
    TU_ASSERT_NO_FAILURES();
    for (long i = 0; i < n; i++) {
        ck_assert_int_eq(weft_future_state(atomic_load(&r->fs[i])), WEFT_DONE);
        ck_assert_msg(tu_ld(&r->cb_a[i]) == 1 && tu_ld(&r->cb_b[i]) == 1,
                      "future %ld: callbacks ran %d and %d times", i, atomic_load(&r->cb_a[i]),
                      atomic_load(&r->cb_b[i]));
        ck_assert_int_eq(tu_ld(&r->runs[i]), 1);
    }
    race_free(r);
}
END_TEST

/* Cancel, on_done and completion all racing. */
START_TEST(test_cancel_and_on_done_race)
{
    long n = 10000 * scale();
    race *r = race_new(2, n);
    race_worker cw = {r, 1}, rw = {r, 0};
    pthread_t t1, t2;
    ck_assert_int_eq(pthread_create(&t1, NULL, canceller, &cw), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, registrar, &rw), 0);
    race_submit_all(r);
    ck_assert_int_eq(pthread_join(t1, NULL), 0);
    ck_assert_int_eq(pthread_join(t2, NULL), 0);
    tu_pool_free(r->pool);
    for (long i = 0; i < n; i++) {
        weft_state s = weft_future_state(atomic_load(&r->fs[i]));
        ck_assert(s == WEFT_DONE || s == WEFT_CANCELLED);
        ck_assert_int_eq(tu_ld(&r->runs[i]), s == WEFT_DONE ? 1 : 0);
        ck_assert_int_eq(tu_ld(&r->cancelled_by[i]), s == WEFT_DONE ? 0 : 1);
        ck_assert_int_eq(tu_ld(&r->cb_a[i]), 1);
    }
    TU_ASSERT_NO_FAILURES();
    race_free(r);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown racing with external submitters
 */

typedef struct sd_race {
    weft_pool *pool;
    long cap; /* per thread */
    atomic_long submitted;
    tu_gate go;
    /* Destroy mode: submitters stop at their first refusal and count themselves out; a task
     * holds the pool open until all have, so none can call into a freed pool. */
    bool destroy;
    atomic_int stopped;
} sd_race;

typedef struct sd_thread {
    sd_race *s;
    long t;
    weft_future **fs; /* cap entries; NULL for detached or refused */
    atomic_int *runs; /* cap entries */
    long accepted;
    long refused;
    long after_refusal_accepted;
    long other_rc;
} sd_thread;

static int sd_task(void *arg, void **result)
{
    atomic_int *run = arg;
    atomic_fetch_add(run, 1);
    spin_a_little(200);
    *result = arg;
    return 0;
}

static void *sd_submitter(void *arg)
{
    sd_thread *st = arg;
    sd_race *s = st->s;
    TU_EXPECT(tu_gate_wait(&s->go));
    for (long i = 0; i < s->cap; i++) {
        weft_future **out = i % 4 == 3 ? NULL : &st->fs[i];
        int rc = weft_submit(s->pool, sd_task, &st->runs[i], out);
        if (rc == 0) {
            st->accepted++;
            if (st->refused)
                st->after_refusal_accepted++;
            atomic_fetch_add(&s->submitted, 1);
        } else if (rc == -ESHUTDOWN) {
            st->fs[i] = NULL;
            /* Refusals are final: keep trying a little to see that none is accepted. */
            if (++st->refused >= (s->destroy ? 1 : 50))
                break;
        } else {
            st->fs[i] = NULL;
            st->other_rc++;
        }
    }
    atomic_fetch_add(&s->stopped, 1); /* the last weft call of this thread is behind us */
    return NULL;
}

static int sd_hold_open(void *arg, void **result)
{
    sd_race *s = arg;
    (void)result;
    int64_t deadline = tu_now_ns() + (int64_t)(4 * TU_PATIENCE_S * 1e9);
    while (atomic_load(&s->stopped) < 4) {
        if (!TU_EXPECT(tu_now_ns() < deadline))
            break;
        tu_sleep_ns(100000);
    }
    return 0;
}

static void run_shutdown_race(weft_shutdown_mode mode, bool destroy)
{
    enum { T = 4 }; /* sd_hold_open knows */
    sd_race s = {.pool = tu_pool_new(4, NULL), .cap = 50000 * scale(), .destroy = destroy};
    atomic_init(&s.submitted, 0);
    atomic_init(&s.stopped, 0);
    tu_gate_init(&s.go);
    weft_future *hold = NULL;
    if (destroy)
        ck_assert_int_eq(weft_submit(s.pool, sd_hold_open, &s, &hold), 0);
    sd_thread st[T];
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        st[t] = (sd_thread){.s = &s, .t = t};
        st[t].fs = xcalloc((size_t)s.cap, sizeof *st[t].fs);
        st[t].runs = xcalloc((size_t)s.cap, sizeof *st[t].runs);
        ck_assert_int_eq(pthread_create(&th[t], NULL, sd_submitter, &st[t]), 0);
    }
    tu_gate_open(&s.go);
    /* Shut down in the thick of it. */
    while (atomic_load(&s.submitted) < 4000 && atomic_load(&s.submitted) < s.cap * T / 2)
        tu_sleep_ns(100000);
    if (destroy) {
        /* Destroy while they submit: it shuts down (DRAIN) and waits for all it accepted. */
        tu_pool_free(s.pool);
        for (int t = 0; t < T; t++)
            ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        ck_assert_int_eq(weft_future_state(hold), WEFT_DONE);
        weft_future_release(hold);
    } else {
        ck_assert_int_eq(weft_pool_shutdown(s.pool, mode), 0);
        for (int t = 0; t < T; t++)
            ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        /* Submissions after the shutdown returned are refused. */
        ck_assert_int_eq(weft_submit(s.pool, sd_task, &st[0].runs[0], NULL), -ESHUTDOWN);
        tu_pool_free(s.pool);
    }
    TU_ASSERT_NO_FAILURES();

    long ran = 0, cancelled = 0;
    for (int t = 0; t < T; t++) {
        ck_assert_int_eq(st[t].other_rc, 0);
        ck_assert_int_eq(st[t].after_refusal_accepted, 0);
        for (long i = 0; i < s.cap; i++) {
            int runs = atomic_load(&st[t].runs[i]);
            weft_future *f = st[t].fs[i];
            ck_assert_int_le(runs, 1);
            if (f) {
                weft_state state = weft_future_state(f);
                if (mode == WEFT_SHUTDOWN_DRAIN)
                    ck_assert_msg(state == WEFT_DONE, "thread %d task %ld: state %d after DRAIN", t,
                                  i, (int)state);
                if (state == WEFT_DONE) {
                    ck_assert_msg(runs == 1, "DONE task ran %d times", runs);
                    void *v = NULL;
                    ck_assert_int_eq(weft_future_result(f, &v), 0);
                    ck_assert_ptr_eq(v, &st[t].runs[i]);
                } else {
                    ck_assert_msg(state == WEFT_CANCELLED, "task in state %d", (int)state);
                    ck_assert_msg(runs == 0, "CANCELLED task ran %d times", runs);
                    cancelled++;
                }
                weft_future_release(f);
            }
            ran += runs;
        }
        free(st[t].fs);
        free(st[t].runs);
    }
    long accepted = 0;
    for (int t = 0; t < T; t++)
        accepted += st[t].accepted;
    if (mode == WEFT_SHUTDOWN_DRAIN)
        ck_assert_int_eq(ran, accepted);
    else
        ck_assert_int_le(ran + cancelled, accepted);
}

START_TEST(test_shutdown_drain_races_submitters)
{
    run_shutdown_race(WEFT_SHUTDOWN_DRAIN, false);
}
END_TEST

START_TEST(test_shutdown_cancel_races_submitters)
{
    run_shutdown_race(WEFT_SHUTDOWN_CANCEL, false);
}
END_TEST

START_TEST(test_destroy_races_submitters)
{
    run_shutdown_race(WEFT_SHUTDOWN_DRAIN, true);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Destroy while tasks keep submitting
 */

typedef struct spawn {
    weft_pool *pool;
    long cap;
    atomic_long next;
    _Atomic(weft_future *) *fs; /* cap entries */
    atomic_int *runs;           /* cap entries */
    atomic_long refused, other_rc;
} spawn;

static spawn *g_spawn;

/* Runs once, then submits its successor (until refused or out of room). */
static int spawn_task(void *arg, void **result)
{
    spawn *s = g_spawn;
    long me = (long)(intptr_t)arg;
    atomic_fetch_add(&s->runs[me], 1);
    *result = arg;
    tu_sleep_ns(20000);
    long next = atomic_fetch_add(&s->next, 1);
    if (next >= s->cap)
        return 0;
    weft_future *f = NULL;
    int rc = weft_submit(s->pool, spawn_task, (void *)(intptr_t)next, &f);
    if (rc == 0)
        atomic_store_explicit(&s->fs[next], f, memory_order_release);
    else if (rc == -ESHUTDOWN)
        atomic_fetch_add(&s->refused, 1);
    else
        atomic_fetch_add(&s->other_rc, 1);
    return 0;
}

START_TEST(test_destroy_while_tasks_submit)
{
    enum { CHAINS = 8 };
    spawn s = {.pool = tu_pool_new(4, NULL), .cap = 400000 * scale()};
    s.fs = xcalloc((size_t)s.cap, sizeof *s.fs);
    s.runs = xcalloc((size_t)s.cap, sizeof *s.runs);
    atomic_init(&s.next, CHAINS);
    atomic_init(&s.refused, 0);
    atomic_init(&s.other_rc, 0);
    g_spawn = &s;
    for (long i = 0; i < CHAINS; i++) {
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(s.pool, spawn_task, (void *)(intptr_t)i, &f), 0);
        atomic_store(&s.fs[i], f);
    }
    tu_sleep_ms(100);
    /* Destroy waits for everything accepted, including what is accepted while it drains. */
    tu_pool_free(s.pool);
    ck_assert_int_eq(tu_ldl(&s.other_rc), 0);
    long last = atomic_load(&s.next);
    if (last > s.cap)
        last = s.cap;
    long accepted = 0;
    for (long i = 0; i < last; i++) {
        weft_future *f = atomic_load(&s.fs[i]);
        if (!f) {
            ck_assert_int_eq(tu_ld(&s.runs[i]), 0);
            continue;
        }
        accepted++;
        ck_assert_msg(weft_future_state(f) == WEFT_DONE, "task %ld: state %d after destroy", i,
                      (int)weft_future_state(f));
        ck_assert_int_eq(tu_ld(&s.runs[i]), 1);
        weft_future_release(f);
    }
    /* Every chain ended with exactly one refusal, or by running out of room. */
    long out_of_room = atomic_load(&s.next) > s.cap ? atomic_load(&s.next) - s.cap : 0;
    ck_assert_int_eq(tu_ldl(&s.refused) + out_of_room, CHAINS);
    ck_assert_int_ge(accepted, CHAINS);
    free(s.fs);
    free(s.runs);
    g_spawn = NULL;
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Reference counting races
 */

typedef struct refs {
    long n;
    weft_future **fs;
    atomic_int released_by_cb;
    tu_gate go;
} refs;

static void release_in_cb(weft_future *f, void *data)
{
    weft_future_release(f);
    atomic_fetch_add(&((refs *)data)->released_by_cb, 1);
}

typedef struct ref_thread_arg {
    refs *r;
    int t;
} ref_thread_arg;

static void *ref_thread(void *arg)
{
    ref_thread_arg *a = arg;
    refs *r = a->r;
    TU_EXPECT(tu_gate_wait(&r->go));
    /* Each thread owns one reference to every future. */
    for (int round = 0; round < 3; round++) {
        for (long i = 0; i < r->n; i++) {
            long j = (i * 7919 + a->t * 104729) % r->n;
            weft_future *f = r->fs[j];
            weft_future_retain(f);
            weft_future_retain(f);
            weft_state s = weft_future_state(f);
            TU_EXPECT(s == WEFT_PENDING || s == WEFT_RUNNING || s == WEFT_DONE);
            weft_future_release(f);
            weft_future_release(f);
        }
    }
    for (long i = 0; i < r->n; i++) {
        if ((i + a->t) % 2)
            weft_future_release(r->fs[i]);
        else
            TU_EXPECT(weft_future_on_done(r->fs[i], release_in_cb, r) == 0);
    }
    return NULL;
}

START_TEST(test_retain_release_races)
{
    enum { T = 4 };
    weft_pool *p = tu_pool_new(2, NULL);
    refs r = {.n = 5000 * scale()};
    atomic_init(&r.released_by_cb, 0);
    tu_gate_init(&r.go);
    r.fs = xcalloc((size_t)r.n, sizeof *r.fs);
    atomic_int *runs = xcalloc((size_t)r.n, sizeof *runs);
    g_runs = runs;
    for (long i = 0; i < r.n; i++) {
        ck_assert_int_eq(weft_submit(p, race_task, (void *)(intptr_t)i, &r.fs[i]), 0);
        for (int t = 0; t < T; t++)
            weft_future_retain(r.fs[i]);
    }
    /* Tasks are still running while the threads start. */
    pthread_t th[T];
    ref_thread_arg args[T];
    for (int t = 0; t < T; t++) {
        args[t] = (ref_thread_arg){&r, t};
        ck_assert_int_eq(pthread_create(&th[t], NULL, ref_thread, &args[t]), 0);
    }
    tu_gate_open(&r.go);
    /* The test keeps its own reference until everything is over, so that the threads' fs[]
     * reads stay valid; the callbacks may drop what is left of the rest. */
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(tu_ld(&r.released_by_cb), (int)(r.n * T / 2));
    for (long i = 0; i < r.n; i++) {
        ck_assert_int_eq(weft_future_state(r.fs[i]), WEFT_DONE);
        ck_assert_int_eq(tu_ld(&runs[i]), 1);
        weft_future_release(r.fs[i]);
    }
    free(r.fs);
    free(runs);
}
END_TEST

START_TEST(test_last_reference_races_completion)
{
    /* The submitter drops its reference while the task may be finishing: whichever of the two
     * goes last frees the future. A callback may also hold the last one. */
    long n = 20000 * scale();
    weft_pool *p = tu_pool_new(3, NULL);
    atomic_int *runs = xcalloc((size_t)n, sizeof *runs);
    g_runs = runs;
    refs r = {.n = n};
    atomic_init(&r.released_by_cb, 0);
    long with_cb = 0;
    for (long i = 0; i < n; i++) {
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, race_task, (void *)(intptr_t)i, &f), 0);
        if (i % 3 == 0) {
            weft_future_retain(f);
            ck_assert_int_eq(weft_future_on_done(f, release_in_cb, &r), 0);
            with_cb++;
        }
        if (i % 5 == 0)
            spin_a_little(300);
        weft_future_release(f);
    }
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&r.released_by_cb), (int)with_cb);
    for (long i = 0; i < n; i++)
        ck_assert_int_eq(tu_ld(&runs[i]), 1);
    free(runs);
}
END_TEST

static Suite *stress_suite(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("submit");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_external_submitters);
    tcase_add_test(tc, test_fanout_trees);
    tcase_add_test(tc, test_oversubscribed_pool);
    suite_add_tcase(s, tc);

    tc = tcase_create("races");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_cancel_races_run);
    tcase_add_test(tc, test_cancel_races_start);
    tcase_add_test(tc, test_on_done_races_completion);
    tcase_add_test(tc, test_cancel_and_on_done_race);
    tcase_add_test(tc, test_retain_release_races);
    tcase_add_test(tc, test_last_reference_races_completion);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_shutdown_drain_races_submitters);
    tcase_add_test(tc, test_shutdown_cancel_races_submitters);
    tcase_add_test(tc, test_destroy_races_submitters);
    tcase_add_test(tc, test_destroy_while_tasks_submit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(stress_suite());
}
