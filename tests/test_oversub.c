/* SPDX-License-Identifier: MIT */
/*
 * Oversubscription: 64 workers on a machine with far fewer cores (two, in CI).
 *
 * The main scenarios of the other suites, run on a 64-worker pool, with exact results:
 * outside submissions, recursive submit+wait trees, fork-join (weft_join, scopes,
 * parallel_for, parallel_reduce), gather / wait / as_completed over hundreds of futures, a
 * CANCEL shutdown with queued work, an idle pool's CPU use, and default pools sized by
 * $WEFT_THREADS=64. With many more workers than cores, a worker is usually descheduled in the
 * middle of whatever it does, which is where lost wake-ups and missed steals show up.
 * Sizes scale with $WEFT_STRESS_SCALE.
 */
#include "testutil.h"

#define WORKERS 64

static long scale(void)
{
    return tu_stress_scale();
}

static weft_pool *g_pool; /* the pool of the running test (tests run one at a time) */

static weft_pool *over_new(void)
{
    g_pool = tu_pool_new(WORKERS, "over");
    return g_pool;
}

static void over_free(weft_pool *p)
{
    tu_pool_free(p);
    g_pool = NULL;
    TU_ASSERT_NO_FAILURES();
}

/* Runs fn(arg) as a task on p from the test thread and checks it ended DONE. */
static void run_in_pool(weft_pool *p, weft_fn fn, void *arg)
{
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, fn, arg, &f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    weft_future_release(f);
}

/* ---------------------------------------------------------------------------------------------
 * Outside submissions
 */

#define SUBMITTERS 4

typedef struct sub_ctx {
    weft_pool *pool;
    long per_thread;
    atomic_int *runs;
    tu_gate go;
} sub_ctx;

typedef struct sub_arg {
    sub_ctx *c;
    long t;
} sub_arg;

static atomic_int *g_runs;

static int index_task(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    atomic_fetch_add(&g_runs[i], 1);
    *result = (void *)(i + 1);
    return 0;
}

static void *submitter(void *arg)
{
    sub_arg *a = arg;
    sub_ctx *c = a->c;
    TU_EXPECT(tu_gate_wait(&c->go));
    long base = a->t * c->per_thread;
    weft_future *window[32];
    int nw = 0;
    for (long k = 0; k < c->per_thread; k++) {
        intptr_t i = base + k;
        if (k % 5 == 4) { /* detached now and then */
            TU_EXPECT(weft_submit(c->pool, index_task, (void *)i, NULL) == 0);
            continue;
        }
        weft_future *f = NULL;
        if (!TU_EXPECT(weft_submit(c->pool, index_task, (void *)i, &f) == 0))
            continue;
        window[nw++] = f;
        if (nw == 32) {
            for (int j = 0; j < nw; j++) {
                void *v = NULL;
                TU_EXPECT(weft_future_result(window[j], &v) == 0);
                TU_EXPECT(v != NULL);
                weft_future_release(window[j]);
            }
            nw = 0;
        }
    }
    for (int j = 0; j < nw; j++) {
        TU_EXPECT(weft_future_result(window[j], NULL) == 0);
        weft_future_release(window[j]);
    }
    return NULL;
}

START_TEST(test_outside_submissions)
{
    tu_failures_reset();
    weft_pool *p = over_new();
    sub_ctx c = {.pool = p, .per_thread = 5000 * scale()};
    long n = c.per_thread * SUBMITTERS;
    c.runs = calloc((size_t)n, sizeof(*c.runs));
    ck_assert_ptr_nonnull(c.runs);
    g_runs = c.runs;
    tu_gate_init(&c.go);
    pthread_t th[SUBMITTERS];
    sub_arg args[SUBMITTERS];
    for (long t = 0; t < SUBMITTERS; t++) {
        args[t] = (sub_arg){&c, t};
        ck_assert_int_eq(pthread_create(&th[t], NULL, submitter, &args[t]), 0);
    }
    tu_gate_open(&c.go);
    for (int t = 0; t < SUBMITTERS; t++)
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
    over_free(p); /* waits for the detached ones */
    for (long i = 0; i < n; i++)
        ck_assert_msg(tu_ld(&c.runs[i]) == 1, "task %ld ran %d times", i, tu_ld(&c.runs[i]));
    free(c.runs);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Recursive submit + wait
 */

static int fib_submit(void *arg, void **result)
{
    intptr_t n = (intptr_t)arg;
    if (n < 2) {
        *result = (void *)n;
        return 0;
    }
    weft_future *a = NULL, *b = NULL;
    if (!TU_EXPECT(weft_submit(g_pool, fib_submit, (void *)(n - 1), &a) == 0))
        return -EIO;
    if (!TU_EXPECT(weft_submit(g_pool, fib_submit, (void *)(n - 2), &b) == 0)) {
        weft_future_result(a, NULL);
        weft_future_release(a);
        return -EIO;
    }
    void *ra = NULL, *rb = NULL;
    /* Wait on the later one first at times: the helping wait then runs the other. */
    if (n % 2) {
        TU_EXPECT(weft_future_result(b, &rb) == 0);
        TU_EXPECT(weft_future_result(a, &ra) == 0);
    } else {
        TU_EXPECT(weft_future_result(a, &ra) == 0);
        TU_EXPECT(weft_future_result(b, &rb) == 0);
    }
    weft_future_release(a);
    weft_future_release(b);
    *result = (void *)((intptr_t)ra + (intptr_t)rb);
    return 0;
}

static intptr_t fib_serial(intptr_t n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* A chain: each task submits the next and waits on it. */
static int chain_task(void *arg, void **result)
{
    intptr_t depth = (intptr_t)arg;
    if (depth == 0) {
        *result = (void *)1;
        return 0;
    }
    weft_future *f = NULL;
    if (!TU_EXPECT(weft_submit(g_pool, chain_task, (void *)(depth - 1), &f) == 0))
        return -EIO;
    void *v = NULL;
    TU_EXPECT(weft_future_result(f, &v) == 0);
    weft_future_release(f);
    *result = (void *)((intptr_t)v + 1);
    return 0;
}

START_TEST(test_recursive_trees)
{
    tu_failures_reset();
    weft_pool *p = over_new();
    for (intptr_t n = 10; n <= 18 + (scale() > 1 ? 2 : 0); n += 4) {
        /* Several roots at once, from outside. */
        weft_future *f[4];
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(weft_submit(p, fib_submit, (void *)n, &f[i]), 0);
        for (int i = 0; i < 4; i++) {
            void *v = NULL;
            ck_assert_int_eq(weft_future_result(f[i], &v), 0);
            ck_assert_int_eq((intptr_t)v, fib_serial(n));
            weft_future_release(f[i]);
        }
    }
    intptr_t depth = 2000 * scale();
    weft_future *c = NULL;
    ck_assert_int_eq(weft_submit(p, chain_task, (void *)depth, &c), 0);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(c, &v), 0);
    ck_assert_int_eq((intptr_t)v, depth + 1);
    weft_future_release(c);
    over_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Fork-join: weft_join, scopes, loops
 */

typedef struct fj {
    int n;
    long r;
} fj;

static void fj_fib(void *arg)
{
    fj *f = arg;
    if (f->n < 2) {
        f->r = f->n;
        return;
    }
    fj a = {f->n - 1, 0}, b = {f->n - 2, 0};
    weft_join(fj_fib, &a, fj_fib, &b);
    f->r = a.r + b.r;
}

#define FANOUT 4

typedef struct tree {
    int depth;
    long leaves;
} tree;

static void scope_tree(void *arg)
{
    tree *t = arg;
    if (t->depth == 0) {
        t->leaves = 1;
        return;
    }
    tree kids[FANOUT];
    weft_spawn slot[FANOUT];
    weft_scope s;
    weft_scope_init(&s);
    for (int i = 0; i < FANOUT; i++) {
        kids[i] = (tree){t->depth - 1, 0};
        weft_scope_spawn(&s, &slot[i], scope_tree, &kids[i]);
    }
    weft_scope_wait(&s);
    t->leaves = 0;
    for (int i = 0; i < FANOUT; i++)
        t->leaves += kids[i].leaves;
}

typedef struct cover {
    size_t n;
    atomic_uchar *hit;
    atomic_long bad; /* ranges out of bounds, empty or longer than grain */
    size_t grain;
} cover;

static void cover_body(size_t lo, size_t hi, void *ctx)
{
    cover *c = ctx;
    if (lo >= hi || hi > c->n || (c->grain != 0 && hi - lo > c->grain))
        atomic_fetch_add(&c->bad, 1);
    for (size_t i = lo; i < hi && i < c->n; i++)
        atomic_fetch_add_explicit(&c->hit[i], 1, memory_order_relaxed);
}

/* An accumulator that notices any combination out of order. */
typedef struct span {
    uint64_t lo, hi, sum, bad;
    bool empty;
} span;

static void span_body(size_t lo, size_t hi, void *acc, void *ctx)
{
    (void)ctx;
    span *s = acc;
    if (s->empty) {
        s->lo = lo;
        s->empty = false;
    } else if (s->hi != lo) {
        s->bad++;
    }
    s->hi = hi;
    for (size_t i = lo; i < hi; i++)
        s->sum += i;
}

static void span_combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    span *a = acc;
    const span *b = other;
    if (b->empty)
        return;
    if (a->empty) {
        *a = *b;
        return;
    }
    if (a->hi != b->lo)
        a->bad++;
    a->hi = b->hi;
    a->sum += b->sum;
    a->bad += b->bad;
}

static void check_cover(cover *c)
{
    ck_assert_int_eq(tu_ldl(&c->bad), 0);
    for (size_t i = 0; i < c->n; i++)
        ck_assert_msg(atomic_load(&c->hit[i]) == 1, "index %zu covered %d times", i,
                      (int)atomic_load(&c->hit[i]));
}

static void cover_init(cover *c, size_t n, size_t grain)
{
    c->n = n;
    c->grain = grain;
    c->hit = calloc(n, 1);
    ck_assert_ptr_nonnull(c->hit);
    atomic_init(&c->bad, 0);
}

typedef struct fj_ctx {
    fj fib;
    tree tree;
    cover loop;
    span reduced;
    int loop_rc, reduce_rc;
} fj_ctx;

static int fork_join_task(void *arg, void **result)
{
    (void)result;
    fj_ctx *c = arg;
    fj_fib(&c->fib);
    scope_tree(&c->tree);
    c->loop_rc = weft_parallel_for(NULL, 0, c->loop.n, c->loop.grain, cover_body, &c->loop);
    span id = {.empty = true};
    c->reduce_rc = weft_parallel_reduce(NULL, 0, c->loop.n, 0, sizeof(span), &id, span_body,
                                        span_combine, NULL, &c->reduced);
    return 0;
}

static void check_span(const span *s, size_t n)
{
    ck_assert(!s->empty);
    ck_assert_uint_eq(s->lo, 0);
    ck_assert_uint_eq(s->hi, n);
    ck_assert_uint_eq(s->bad, 0);
    ck_assert_uint_eq(s->sum, (uint64_t)n * (n - 1) / 2);
}

START_TEST(test_fork_join)
{
    tu_failures_reset();
    weft_pool *p = over_new();

    /* Inside a task: join, scope, loops with pool NULL. */
    fj_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->fib.n = 22 + (scale() > 1 ? 3 : 0);
    c->tree.depth = 6; /* 4096 leaves */
    cover_init(&c->loop, (size_t)100000 * (size_t)scale(), 0);
    run_in_pool(p, fork_join_task, c);
    ck_assert_int_eq(c->fib.r, fib_serial(c->fib.n));
    ck_assert_int_eq(c->tree.leaves, 4096);
    ck_assert_int_eq(c->loop_rc, 0);
    check_cover(&c->loop);
    ck_assert_int_eq(c->reduce_rc, 0);
    check_span(&c->reduced, c->loop.n);
    free(c->loop.hit);
    free(c);

    /* From outside, with automatic and tiny grains. */
    static const size_t grains[] = {0, 1, 7, 1000};
    for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
        cover cv;
        cover_init(&cv, grains[g] == 1 ? 20000 : 300000, grains[g]);
        ck_assert_int_eq(weft_parallel_for(p, 0, cv.n, cv.grain, cover_body, &cv), 0);
        check_cover(&cv);
        span id = {.empty = true}, out = {.bad = 99};
        ck_assert_int_eq(weft_parallel_reduce(p, 0, cv.n, grains[g], sizeof(span), &id, span_body,
                                              span_combine, NULL, &out),
                         0);
        check_span(&out, cv.n);
        free(cv.hit);
    }
    over_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * gather, wait, as_completed over hundreds of futures
 */

#define MANY 500

static int value_task(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    if (i % 97 == 0)
        tu_sleep_ns(200000);
    *result = (void *)(i + 1);
    return 0;
}

START_TEST(test_many_futures)
{
    tu_failures_reset();
    weft_pool *p = over_new();
    for (long round = 0; round < 3 * scale(); round++) {
        weft_future *fs[MANY];
        for (intptr_t i = 0; i < MANY; i++)
            ck_assert_int_eq(weft_submit(p, value_task, (void *)i, &fs[i]), 0);

        /* gather: results in input order; nested over two halves as well. */
        weft_future *g = NULL, *halves[2], *nested = NULL;
        ck_assert_int_eq(weft_gather(fs, MANY, 0, &g), 0);
        ck_assert_int_eq(weft_gather(fs, MANY / 2, 0, &halves[0]), 0);
        ck_assert_int_eq(weft_gather(fs + MANY / 2, MANY - MANY / 2, 0, &halves[1]), 0);
        ck_assert_int_eq(weft_gather(halves, 2, 0, &nested), 0);

        /* wait: first completed, then all. */
        weft_future *out[MANY];
        size_t ndone = 0;
        ck_assert_int_eq(weft_wait(fs, MANY, WEFT_FIRST_COMPLETED, WEFT_FOREVER, out, &ndone), 0);
        ck_assert_uint_ge(ndone, 1);
        ck_assert_int_eq(weft_wait(fs, MANY, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &ndone), 0);
        ck_assert_uint_eq(ndone, MANY);
        for (size_t i = 0; i < MANY; i++)
            ck_assert_ptr_eq(out[i], fs[i]); /* all done: input order */

        void *v = NULL;
        ck_assert_int_eq(weft_future_result(g, &v), 0);
        void **r = v;
        for (intptr_t i = 0; i < MANY; i++)
            ck_assert_int_eq((intptr_t)r[i], i + 1);
        ck_assert_int_eq(weft_future_result(nested, &v), 0);
        void **h = v;
        void **h0 = h[0], **h1 = h[1];
        for (intptr_t i = 0; i < MANY / 2; i++)
            ck_assert_int_eq((intptr_t)h0[i], i + 1);
        for (intptr_t i = MANY / 2; i < MANY; i++)
            ck_assert_int_eq((intptr_t)h1[i - MANY / 2], i + 1);
        weft_future_release(g);
        weft_future_release(nested);
        weft_future_release(halves[0]);
        weft_future_release(halves[1]);
        for (int i = 0; i < MANY; i++)
            weft_future_release(fs[i]);

        /* as_completed over fresh ones, taken while they run. */
        for (intptr_t i = 0; i < MANY; i++)
            ck_assert_int_eq(weft_submit(p, value_task, (void *)i, &fs[i]), 0);
        weft_completion *c = NULL;
        ck_assert_int_eq(weft_as_completed(fs, MANY, &c), 0);
        static unsigned char seen[MANY];
        memset(seen, 0, sizeof(seen));
        for (int k = 0; k < MANY; k++) {
            weft_future *f = NULL;
            ck_assert_int_eq(weft_completion_next(c, WEFT_FOREVER, &f), 0);
            ck_assert(weft_future_done(f));
            ck_assert_int_eq(weft_future_result(f, &v), 0);
            intptr_t i = (intptr_t)v - 1;
            ck_assert(i >= 0 && i < MANY);
            ck_assert_int_eq(seen[i], 0);
            seen[i] = 1;
            weft_future_release(f);
        }
        weft_future *f = NULL;
        ck_assert_int_eq(weft_completion_next(c, 0, &f), -ENOENT);
        weft_completion_destroy(c);
        for (int i = 0; i < MANY; i++)
            weft_future_release(fs[i]);
    }
    over_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown CANCEL with queued work
 */

typedef struct blocker {
    atomic_int started;
    tu_gate gate;
} blocker;

static int block_task(void *arg, void **result)
{
    (void)result;
    blocker *b = arg;
    atomic_fetch_add(&b->started, 1);
    TU_EXPECT(tu_gate_wait(&b->gate));
    return 0;
}

#define QUEUED 1000

START_TEST(test_shutdown_cancel_queued)
{
    tu_failures_reset();
    weft_pool *p = over_new();
    blocker b;
    atomic_init(&b.started, 0);
    tu_gate_init(&b.gate);
    weft_future *blockers[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        ck_assert_int_eq(weft_submit(p, block_task, &b, &blockers[i]), 0);
    /* Every worker holds one: whatever is submitted now stays queued. */
    ck_assert_msg(tu_wait_atomic_ge(&b.started, WORKERS, TU_PATIENCE_S),
                  "only %d of %d workers started a blocking task", tu_ld(&b.started), WORKERS);

    static atomic_int runs[QUEUED];
    g_runs = runs;
    weft_future **fs = calloc(QUEUED, sizeof(*fs));
    ck_assert_ptr_nonnull(fs);
    for (intptr_t i = 0; i < QUEUED; i++) {
        atomic_init(&runs[i], 0);
        ck_assert_int_eq(weft_submit(p, index_task, (void *)i, i % 3 ? &fs[i] : NULL), 0);
    }
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    /* Cancelled before shutdown returned. */
    for (int i = 0; i < QUEUED; i++) {
        if (fs[i] != NULL)
            ck_assert_int_eq(weft_future_state(fs[i]), WEFT_CANCELLED);
    }
    ck_assert_int_eq(weft_submit(p, index_task, (void *)0, NULL), -ESHUTDOWN);
    weft_stats st;
    ck_assert_int_eq(weft_pool_stats(p, &st, NULL, 0), 0);
    ck_assert_uint_eq(st.cancelled_queued, QUEUED);
    tu_gate_open(&b.gate);
    over_free(p);
    for (int i = 0; i < QUEUED; i++) {
        ck_assert_int_eq(tu_ld(&runs[i]), 0);
        if (fs[i] != NULL) {
            ck_assert_int_eq(weft_future_result(fs[i], NULL), -ECANCELED);
            weft_future_release(fs[i]);
        }
    }
    for (int i = 0; i < WORKERS; i++) {
        ck_assert_int_eq(weft_future_state(blockers[i]), WEFT_DONE);
        weft_future_release(blockers[i]);
    }
    free(fs);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Idle CPU
 */

static int burst_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    fj f = {16, 0};
    fj_fib(&f);
    TU_EXPECT(f.r == 987);
    return 0;
}

START_TEST(test_idle_cpu)
{
    tu_failures_reset();
    weft_pool *p = over_new();
    /* Wake everyone up first, so that every worker goes through spinning and parking. */
    weft_future *fs[WORKERS * 2];
    for (int i = 0; i < WORKERS * 2; i++)
        ck_assert_int_eq(weft_submit(p, burst_task, NULL, &fs[i]), 0);
    for (int i = 0; i < WORKERS * 2; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        weft_future_release(fs[i]);
    }
    tu_sleep_ms(200); /* past every spin */
    int64_t cpu0 = tu_process_cpu_ns(), t0 = tu_now_ns();
    tu_sleep_ms(1000);
    int64_t cpu = tu_process_cpu_ns() - cpu0, wall = tu_now_ns() - t0;
    printf("oversub: idle %d-worker pool: %.1f ms of CPU over %.0f ms\n", WORKERS, cpu / 1e6,
           wall / 1e6);
    ck_assert_msg(cpu < TU_MS(200), "an idle %d-worker pool used %.1f ms of CPU in %.0f ms",
                  WORKERS, cpu / 1e6, wall / 1e6);
    /* And it still works. */
    tu_pool_check_works(p);
    over_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * $WEFT_THREADS=64 and default pools
 */

START_TEST(test_env_threads_64)
{
    tu_failures_reset();
    tu_env_saved saved = tu_env_set("WEFT_THREADS", "64");
    weft_pool *a = NULL, *b = NULL;
    ck_assert_int_eq(weft_pool_create(NULL, &a), 0);
    ck_assert_uint_eq(weft_pool_size(a), 64);
    weft_config cfg;
    weft_config_init(&cfg);
    ck_assert_int_eq(weft_pool_create(&cfg, &b), 0);
    ck_assert_uint_eq(weft_pool_size(b), 64);
    tu_env_restore(&saved);

    /* Both at work at once: recursive submits on one, loops on the other. */
    g_pool = a;
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(a, fib_submit, (void *)15, &f), 0);
    cover cv;
    cover_init(&cv, 200000, 0);
    ck_assert_int_eq(weft_parallel_for(b, 0, cv.n, 0, cover_body, &cv), 0);
    check_cover(&cv);
    free(cv.hit);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_int_eq((intptr_t)v, fib_serial(15));
    weft_future_release(f);
    g_pool = NULL;
    tu_pool_check_works(a);
    tu_pool_check_works(b);
    tu_pool_free(a);
    tu_pool_free(b);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static Suite *oversub_suite(void)
{
    Suite *s = suite_create("oversub");
    TCase *tc = tcase_create("64 workers");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_outside_submissions);
    tcase_add_test(tc, test_recursive_trees);
    tcase_add_test(tc, test_fork_join);
    tcase_add_test(tc, test_many_futures);
    tcase_add_test(tc, test_shutdown_cancel_queued);
    tcase_add_test(tc, test_idle_cpu);
    tcase_add_test(tc, test_env_threads_64);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(oversub_suite());
}
