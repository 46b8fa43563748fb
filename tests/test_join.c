/* SPDX-License-Identifier: MIT */
/*
 * Fork-join: weft_join and weft_scope.
 *
 * weft_join on every pool size (recursive fib with a join at every level against the serial
 * value), each half exactly once, halves really running in parallel, in order on the calling
 * thread outside any pool, a 10,000-deep chain of nested joins on one worker, halves that leave
 * detached submissions behind, weft_cancel_requested() in halves (stolen ones included), joins
 * and scopes nested in each other, joins in two pools at once. Scopes: 0, 1, 5 and 1000 spawns,
 * a 5-ary tree of nested scopes, reuse after wait, spawns outside any pool, stolen spawns all
 * finished when wait returns. Shutdown(CANCEL) while a task is deep in a join or scope
 * computation: the computation completes, every half and spawn exactly once.
 *
 * Halves and spawned functions run on workers: they record failures with TU_EXPECT, and the
 * test thread asserts with TU_ASSERT_NO_FAILURES.
 */
#include "joinutil.h"

static int fib_n(void)
{
    return tu_stress_scale() > 1 ? 25 : 22;
}

static long fib_serial(int n)
{
    long a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        long t = a + b;
        a = b;
        b = t;
    }
    return a;
}

/* Number of joins in fib_join(n): J(n) = J(n-1) + J(n-2) + 1, J(0) = J(1) = 0. */
static long fib_joins(int n)
{
    return fib_serial(n + 1) - 1;
}

/* ---------------------------------------------------------------------------------------------
 * Recursive fib with a join at every level
 */

typedef struct fib_ctx {
    atomic_long a_runs, b_runs;
    atomic_long stolen; /* b halves that ran on another worker than their joiner */
    weft_pool *pool;    /* halves must run on this pool's workers (NULL: not checked) */
    int expect_cancel;  /* -1: not checked; else what weft_cancel_requested() must answer */
} fib_ctx;

typedef struct fib_node {
    fib_ctx *c;
    int n;
    int joiner; /* worker index of the thread that called weft_join */
    long result;
} fib_node;

static void fib_ctx_init(fib_ctx *c, weft_pool *pool, int expect_cancel)
{
    atomic_init(&c->a_runs, 0);
    atomic_init(&c->b_runs, 0);
    atomic_init(&c->stolen, 0);
    c->pool = pool;
    c->expect_cancel = expect_cancel;
}

static void fib_join(fib_node *nd);

static void fib_check_half(fib_ctx *c)
{
    if (c->pool != NULL)
        TU_EXPECT(jt_current_pool() == c->pool);
    if (c->expect_cancel >= 0)
        TU_EXPECT(weft_cancel_requested() == (c->expect_cancel != 0));
}

static void fib_a(void *arg)
{
    fib_node *nd = arg;
    atomic_fetch_add(&nd->c->a_runs, 1);
    fib_check_half(nd->c);
    fib_join(nd);
}

static void fib_b(void *arg)
{
    fib_node *nd = arg;
    atomic_fetch_add(&nd->c->b_runs, 1);
    if (weft_worker_index() != nd->joiner)
        atomic_fetch_add(&nd->c->stolen, 1);
    fib_check_half(nd->c);
    fib_join(nd);
}

static void fib_join(fib_node *nd)
{
    if (nd->n < 2) {
        nd->result = nd->n;
        return;
    }
    int me = weft_worker_index();
    fib_node l = {nd->c, nd->n - 1, me, -1}, r = {nd->c, nd->n - 2, me, -1};
    weft_join(fib_a, &l, fib_b, &r);
    nd->result = l.result + r.result;
}

static void fib_root(void *arg)
{
    fib_node *nd = arg;
    fib_check_half(nd->c);
    fib_join(nd);
}

static void fib_expect(fib_ctx *c, fib_node *root, int n)
{
    long a = atomic_load(&c->a_runs), b = atomic_load(&c->b_runs);
    ck_assert_msg(root->result == fib_serial(n), "fib(%d) = %ld, want %ld", n, root->result,
                  fib_serial(n));
    ck_assert_msg(a == fib_joins(n) && b == fib_joins(n),
                  "fib(%d): a halves ran %ld times, b halves %ld, want %ld each", n, a, b,
                  fib_joins(n));
}

START_TEST(test_join_fib_every_pool_size)
{
    tu_failures_reset();
    int n = fib_n();
    for (unsigned nw = 1; nw <= 8; nw++) {
        weft_pool *p = jt_pool_new(nw);
        fib_ctx c;
        fib_ctx_init(&c, p, 0);
        fib_node root = {&c, n, -1, -1};
        jt_run(p, fib_root, &root);
        fib_expect(&c, &root, n);
        if (nw == 1)
            JT_ASSERT_ATOMIC_EQ(&c.stolen, 0);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
    }
}
END_TEST

/* Many joins from one task, each with its own pair of counters: each half exactly once. */
typedef struct site {
    atomic_int ran[2];
    atomic_int worker[2];
} site;

typedef struct sites_ctx {
    site *s;
    int n;
    weft_pool *pool;
} sites_ctx;

typedef struct site_arg {
    sites_ctx *c;
    int i, half;
} site_arg;

static void site_half(void *arg)
{
    site_arg *a = arg;
    site *s = &a->c->s[a->i];
    TU_EXPECT(jt_current_pool() == a->c->pool);
    atomic_store(&s->worker[a->half], weft_worker_index());
    (void)jt_work((uint64_t)a->i, 300);
    atomic_fetch_add(&s->ran[a->half], 1);
}

static void sites_run(void *arg)
{
    sites_ctx *c = arg;
    for (int i = 0; i < c->n; i++) {
        site_arg a = {c, i, 0}, b = {c, i, 1};
        weft_join(site_half, &a, site_half, &b);
        /* both halves have finished when weft_join returns */
        TU_EXPECT(atomic_load(&c->s[i].ran[0]) == 1);
        TU_EXPECT(atomic_load(&c->s[i].ran[1]) == 1);
    }
}

START_TEST(test_join_each_half_exactly_once)
{
    tu_failures_reset();
    int n = 2000 * (int)tu_stress_scale();
    site *s = calloc((size_t)n, sizeof(*s));
    ck_assert_ptr_nonnull(s);
    for (unsigned nw = 1; nw <= 8; nw *= 2) {
        for (int i = 0; i < n; i++) {
            atomic_init(&s[i].ran[0], 0);
            atomic_init(&s[i].ran[1], 0);
            atomic_init(&s[i].worker[0], -2);
            atomic_init(&s[i].worker[1], -2);
        }
        weft_pool *p = jt_pool_new(nw);
        sites_ctx c = {s, n, p};
        jt_run(p, sites_run, &c);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
        for (int i = 0; i < n; i++) {
            ck_assert_msg(atomic_load(&s[i].ran[0]) == 1 && atomic_load(&s[i].ran[1]) == 1,
                          "pool %u, join %d: a ran %d times, b %d times", nw, i,
                          atomic_load(&s[i].ran[0]), atomic_load(&s[i].ran[1]));
            ck_assert_int_ge(atomic_load(&s[i].worker[0]), 0);
            ck_assert_int_lt(atomic_load(&s[i].worker[0]), (int)nw);
            ck_assert_int_ge(atomic_load(&s[i].worker[1]), 0);
            ck_assert_int_lt(atomic_load(&s[i].worker[1]), (int)nw);
        }
    }
    free(s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Halves in parallel, and weft_cancel_requested() inside them
 *
 * In each round the a half spins (keeping its worker busy) until the b half has started, which
 * can only happen if another worker stole b. b records its worker and what
 * weft_cancel_requested() says, and runs a nested join whose halves check it too.
 */

#define PAR_MAX_ROUNDS  20
#define PAR_WANT_STOLEN 3

typedef struct par_round {
    int joiner;
    bool spin; /* a waits for b (pools of 2+ workers) */
    atomic_int b_started;
    atomic_int a_saw_b; /* a observed b running while a itself still ran */
    atomic_int a_cancel, b_cancel;
    atomic_int b_worker;
    atomic_int inner_runs;
    atomic_int inner_cancel_true;
} par_round;

static void par_inner(void *arg)
{
    par_round *r = arg;
    atomic_fetch_add(&r->inner_runs, 1);
    if (weft_cancel_requested())
        atomic_fetch_add(&r->inner_cancel_true, 1);
}

static void par_a(void *arg)
{
    par_round *r = arg;
    atomic_store(&r->a_cancel, weft_cancel_requested() ? 1 : 0);
    if (r->spin && jt_spin_until(&r->b_started, 2.0))
        atomic_store(&r->a_saw_b, 1);
}

static void par_b(void *arg)
{
    par_round *r = arg;
    atomic_store(&r->b_worker, weft_worker_index());
    atomic_store(&r->b_cancel, weft_cancel_requested() ? 1 : 0);
    atomic_store(&r->b_started, 1);
    weft_join(par_inner, r, par_inner, r);
}

typedef struct par_ctx {
    tu_gate started, go;
    bool spin;
    atomic_int saw_cancel; /* what the outer task itself saw */
    int nrounds;
    int stolen;
    par_round rounds[PAR_MAX_ROUNDS];
} par_ctx;

static void par_ctx_init(par_ctx *c, bool spin)
{
    memset(c, 0, sizeof(*c));
    tu_gate_init(&c->started);
    tu_gate_init(&c->go);
    c->spin = spin;
    atomic_init(&c->saw_cancel, -1);
}

static int par_task(void *arg, void **result)
{
    (void)result;
    par_ctx *c = arg;
    tu_gate_open(&c->started);
    TU_EXPECT(tu_gate_wait(&c->go));
    atomic_store(&c->saw_cancel, weft_cancel_requested() ? 1 : 0);
    for (int i = 0; i < PAR_MAX_ROUNDS && c->stolen < PAR_WANT_STOLEN; i++) {
        par_round *r = &c->rounds[i];
        r->joiner = weft_worker_index();
        r->spin = c->spin;
        weft_join(par_a, r, par_b, r);
        /* everything both halves did is visible once weft_join returns */
        TU_EXPECT(atomic_load(&r->b_started) == 1);
        TU_EXPECT(atomic_load(&r->inner_runs) == 2);
        if (atomic_load(&r->b_worker) != r->joiner)
            c->stolen++;
        c->nrounds++;
    }
    return 0;
}

/* Runs par_task on a pool of nw workers; cancels it while it runs if `cancel`. */
static void par_run(unsigned nw, bool cancel, par_ctx *c)
{
    weft_pool *p = jt_pool_new(nw);
    par_ctx_init(c, nw > 1);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, par_task, c, &f), 0);
    ck_assert(tu_gate_wait(&c->started));
    if (cancel)
        ck_assert_int_eq(weft_future_cancel(f), 0); /* running: a request only */
    tu_gate_open(&c->go);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    JT_ASSERT_ATOMIC_EQ(&c->saw_cancel, cancel ? 1 : 0);
    ck_assert_int_ge(c->nrounds, 1);
    for (int i = 0; i < c->nrounds; i++) {
        par_round *r = &c->rounds[i];
        bool stolen = atomic_load(&r->b_worker) != r->joiner;
        ck_assert_msg(atomic_load(&r->a_cancel) == (cancel ? 1 : 0),
                      "round %d: weft_cancel_requested() in a = %d, want %d", i,
                      atomic_load(&r->a_cancel), cancel);
        ck_assert_msg(atomic_load(&r->b_cancel) == (cancel ? 1 : 0),
                      "round %d (b %s): weft_cancel_requested() in b = %d, want %d", i,
                      stolen ? "stolen" : "inline", atomic_load(&r->b_cancel), cancel);
        ck_assert_msg(atomic_load(&r->inner_cancel_true) == (cancel ? 2 : 0),
                      "round %d (b %s): nested join halves saw cancel %d times of 2, want %d", i,
                      stolen ? "stolen" : "inline", atomic_load(&r->inner_cancel_true),
                      cancel ? 2 : 0);
    }
}

START_TEST(test_join_halves_run_in_parallel)
{
    tu_failures_reset();
    for (unsigned nw = 2; nw <= 4; nw += 2) {
        par_ctx *c = malloc(sizeof(*c));
        ck_assert_ptr_nonnull(c);
        par_run(nw, false, c);
        int parallel = 0;
        for (int i = 0; i < c->nrounds; i++) {
            if (atomic_load(&c->rounds[i].a_saw_b)) {
                parallel++;
                ck_assert_int_ne(atomic_load(&c->rounds[i].b_worker), c->rounds[i].joiner);
            }
        }
        ck_assert_msg(parallel >= 1,
                      "pool of %u: in %d joins b never started while a ran (an idle worker "
                      "should steal it)",
                      nw, c->nrounds);
        free(c);
    }
}
END_TEST

START_TEST(test_join_cancel_requested_in_halves)
{
    tu_failures_reset();
    for (unsigned nw = 1; nw <= 4; nw++) {
        par_ctx *c = malloc(sizeof(*c));
        ck_assert_ptr_nonnull(c);
        par_run(nw, true, c);
        if (nw > 1)
            ck_assert_msg(c->stolen >= 1, "pool of %u: no b half was stolen in %d joins", nw,
                          c->nrounds);
        free(c);
    }
}
END_TEST

START_TEST(test_join_no_cancel_requested_in_halves)
{
    tu_failures_reset();
    par_ctx *c = malloc(sizeof(*c));
    ck_assert_ptr_nonnull(c);
    par_run(2, false, c);
    free(c);
}
END_TEST

/* A cancelled and an uncancelled task run join trees side by side: their halves get stolen back
 * and forth by workers that are helping inside the other task's joins, and each half must still
 * answer for the task that spread it. */
typedef struct mix_task_arg {
    fib_node root;
    atomic_int *arrived;
    tu_gate *go;
} mix_task_arg;

static int mix_task(void *arg, void **result)
{
    (void)result;
    mix_task_arg *m = arg;
    atomic_fetch_add(m->arrived, 1);
    TU_EXPECT(tu_gate_wait(m->go));
    fib_root(&m->root);
    return 0;
}

START_TEST(test_join_cancel_answers_for_the_joining_task)
{
    tu_failures_reset();
    int n = 18;
    for (unsigned nw = 2; nw <= 3; nw++) {
        weft_pool *p = jt_pool_new(nw);
        fib_ctx cc, nc;
        fib_ctx_init(&cc, p, 1);
        fib_ctx_init(&nc, p, 0);
        atomic_int arrived;
        atomic_init(&arrived, 0);
        tu_gate go;
        tu_gate_init(&go);
        mix_task_arg cm = {{&cc, n, -1, -1}, &arrived, &go};
        mix_task_arg nm = {{&nc, n, -1, -1}, &arrived, &go};
        weft_future *cf = NULL, *nf = NULL;
        ck_assert_int_eq(weft_submit(p, mix_task, &cm, &cf), 0);
        ck_assert_int_eq(weft_submit(p, mix_task, &nm, &nf), 0);
        ck_assert(tu_wait_atomic_ge(&arrived, 2, TU_PATIENCE_S));
        ck_assert_int_eq(weft_future_cancel(cf), 0);
        tu_gate_open(&go);
        ck_assert_int_eq(weft_future_result(cf, NULL), 0);
        ck_assert_int_eq(weft_future_result(nf, NULL), 0);
        weft_future_release(cf);
        weft_future_release(nf);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
        fib_expect(&cc, &cm.root, n);
        fib_expect(&nc, &nm.root, n);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Outside any pool: a then b, in order, on the calling thread
 */

typedef struct order_ctx {
    char seq[8];
    atomic_int len;
    pthread_t caller;
    atomic_int wrong_thread;
    atomic_int bad_index;
    atomic_int saw_cancel;
} order_ctx;

typedef struct order_arg {
    order_ctx *c;
    char tag;
    bool nest; /* run a nested join of 'c' and 'd' first */
} order_arg;

static void order_half(void *arg)
{
    order_arg *a = arg;
    order_ctx *c = a->c;
    if (!pthread_equal(pthread_self(), c->caller))
        atomic_store(&c->wrong_thread, 1);
    if (weft_worker_index() != -1)
        atomic_store(&c->bad_index, 1);
    if (weft_cancel_requested())
        atomic_store(&c->saw_cancel, 1);
    int i = atomic_fetch_add(&c->len, 1);
    if (i < (int)sizeof(c->seq) - 1)
        c->seq[i] = a->tag;
    if (a->nest) {
        order_arg x = {c, 'c', false}, y = {c, 'd', false};
        weft_join(order_half, &x, order_half, &y);
    }
}

static void order_run(order_ctx *c)
{
    memset(c, 0, sizeof(*c));
    c->caller = pthread_self();
    order_arg a = {c, 'a', true}, b = {c, 'b', false};
    weft_join(order_half, &a, order_half, &b);
}

static void order_check(order_ctx *c)
{
    ck_assert_str_eq(c->seq, "acdb");
    JT_ASSERT_ATOMIC_EQ(&c->wrong_thread, 0);
    JT_ASSERT_ATOMIC_EQ(&c->bad_index, 0);
    JT_ASSERT_ATOMIC_EQ(&c->saw_cancel, 0);
}

static void *order_thread(void *arg)
{
    order_run(arg);
    return NULL;
}

START_TEST(test_join_outside_pool_runs_in_order)
{
    tu_failures_reset();
    order_ctx c;
    order_run(&c);
    order_check(&c);

    /* the same with a pool alive (the test thread is still not one of its workers) */
    weft_pool *p = jt_pool_new(2);
    order_run(&c);
    order_check(&c);

    /* and on a thread of its own */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, order_thread, &c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    order_check(&c);
    tu_pool_free(p);

    /* a whole join tree on the test thread */
    fib_ctx fc;
    fib_ctx_init(&fc, NULL, 0);
    fib_node root = {&fc, 16, -1, -1};
    fib_root(&root);
    TU_ASSERT_NO_FAILURES();
    fib_expect(&fc, &root, 16);
    JT_ASSERT_ATOMIC_EQ(&fc.stolen, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A deep chain of nested joins on one worker
 */

static long chain_depth(void)
{
    return tu_env_long("WEFT_TEST_DEPTH", 10000);
}

typedef struct chain_ctx {
    long depth;
    bool one_worker;
    atomic_long a_runs, b_runs, deepest;
} chain_ctx;

typedef struct chain_node {
    chain_ctx *c;
    long level;
    bool via_b; /* recurse in the b half (else in a) */
} chain_node;

static void chain_step(chain_node *nd);

static void chain_a(void *arg)
{
    chain_node *nd = arg;
    atomic_fetch_add(&nd->c->a_runs, 1);
    if (nd->c->one_worker)
        TU_EXPECT(weft_worker_index() == 0);
    if (!nd->via_b)
        chain_step(nd);
}

static void chain_b(void *arg)
{
    chain_node *nd = arg;
    atomic_fetch_add(&nd->c->b_runs, 1);
    if (nd->c->one_worker)
        TU_EXPECT(weft_worker_index() == 0);
    if (nd->via_b)
        chain_step(nd);
}

static void chain_step(chain_node *nd)
{
    jt_atomic_max(&nd->c->deepest, nd->level);
    if (nd->level == nd->c->depth)
        return;
    chain_node next = {nd->c, nd->level + 1, nd->via_b};
    weft_join(chain_a, &next, chain_b, &next);
}

static void chain_root(void *arg)
{
    chain_step(arg);
}

static void chain_run(unsigned nw, bool via_b)
{
    long depth = chain_depth();
    weft_pool *p = jt_pool_new(nw);
    chain_ctx c = {.depth = depth, .one_worker = nw == 1};
    atomic_init(&c.a_runs, 0);
    atomic_init(&c.b_runs, 0);
    atomic_init(&c.deepest, -1);
    chain_node root = {&c, 0, via_b};
    jt_run(p, chain_root, &root);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    JT_ASSERT_ATOMIC_EQ(&c.deepest, depth);
    JT_ASSERT_ATOMIC_EQ(&c.a_runs, depth);
    JT_ASSERT_ATOMIC_EQ(&c.b_runs, depth);
}

START_TEST(test_join_deep_chain_one_worker)
{
    tu_failures_reset();
    chain_run(1, false); /* every b frame waits on the deque below the recursion */
    chain_run(1, true);  /* recursion inside b, after its frame came back */
}
END_TEST

START_TEST(test_join_deep_chain_two_workers)
{
    tu_failures_reset();
    chain_run(2, false);
    chain_run(2, true);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * weft_join and weft_scope_spawn allocate nothing on the heap
 *
 * The test binary counts, per thread, the allocations made through malloc, calloc, realloc and
 * aligned_alloc, which it interposes on glibc's (the library calls them through the PLT). The
 * sanitizers bring allocators of their own, so sanitizer builds skip this test. A join chain and
 * a scope with more spawns than any deque holds at first must not allocate on the caller's
 * thread: a spawn or frame that does not fit runs at once instead.
 */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define JT_COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define JT_COUNT_ALLOCS 0
#endif
#endif
#ifndef JT_COUNT_ALLOCS
#define JT_COUNT_ALLOCS 1
#endif

#if JT_COUNT_ALLOCS
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);

static _Thread_local long thread_allocs; /* allocations made by this thread */

void *malloc(size_t size)
{
    thread_allocs++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    thread_allocs++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    thread_allocs++;
    return __libc_realloc(p, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    thread_allocs++;
    return __libc_memalign(align, size);
}
#else
static _Thread_local long thread_allocs;
#endif

#define ALLOC_SPAWNS 1000

typedef struct alloc_ctx {
    weft_pool *pool;
    long submit_allocs; /* allocations by weft_submit: shows the counting works */
    long spawn_allocs;  /* by ALLOC_SPAWNS spawns */
    long wait_allocs;   /* by the wait that runs them */
    long join_allocs;   /* by a chain of nested joins */
    long chain_depth;
    atomic_int spawned_ran;
    chain_ctx chain;
} alloc_ctx;

static void alloc_spawned(void *arg)
{
    alloc_ctx *c = arg;
    atomic_fetch_add(&c->spawned_ran, 1);
}

static void alloc_run(void *arg)
{
    alloc_ctx *c = arg;
    long before = thread_allocs;
    int rc = weft_submit(c->pool, tu_task_count, &c->spawned_ran, NULL);
    TU_EXPECT(rc == 0);
    c->submit_allocs = thread_allocs - before;

    weft_spawn *slot = malloc(sizeof(*slot) * ALLOC_SPAWNS);
    if (!TU_EXPECT(slot != NULL))
        return;
    weft_scope s;
    weft_scope_init(&s);
    before = thread_allocs;
    for (int i = 0; i < ALLOC_SPAWNS; i++)
        weft_scope_spawn(&s, &slot[i], alloc_spawned, c);
    c->spawn_allocs = thread_allocs - before;
    before = thread_allocs;
    weft_scope_wait(&s);
    c->wait_allocs = thread_allocs - before;
    free(slot);

    chain_node root = {&c->chain, 0, false}; /* frames pile up on the deque */
    before = thread_allocs;
    chain_step(&root);
    c->join_allocs = thread_allocs - before;
}

START_TEST(test_join_and_spawn_allocate_nothing)
{
    tu_failures_reset();
    if (!JT_COUNT_ALLOCS)
        return; /* sanitizer build: allocations cannot be counted here */
    for (unsigned nw = 1; nw <= 2; nw++) {
        weft_pool *p = jt_pool_new(nw);
        alloc_ctx c = {.pool = p};
        atomic_init(&c.spawned_ran, 0);
        c.chain.depth = 2000;
        c.chain.one_worker = nw == 1;
        atomic_init(&c.chain.a_runs, 0);
        atomic_init(&c.chain.b_runs, 0);
        atomic_init(&c.chain.deepest, -1);
        jt_run(p, alloc_run, &c);
        ck_assert(tu_wait_atomic_ge(&c.spawned_ran, ALLOC_SPAWNS + 1, TU_PATIENCE_S));
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
        ck_assert_msg(c.submit_allocs >= 1,
                      "the allocation counter saw nothing of weft_submit: not interposed?");
        ck_assert_msg(c.spawn_allocs == 0, "pool of %u: %d spawns made %ld heap allocations", nw,
                      ALLOC_SPAWNS, c.spawn_allocs);
        ck_assert_msg(c.wait_allocs == 0, "pool of %u: weft_scope_wait made %ld heap allocations",
                      nw, c.wait_allocs);
        ck_assert_msg(c.join_allocs == 0,
                      "pool of %u: a chain of %ld nested joins made %ld heap allocations", nw,
                      c.chain.depth, c.join_allocs);
        JT_ASSERT_ATOMIC_EQ(&c.chain.a_runs, c.chain.depth);
        JT_ASSERT_ATOMIC_EQ(&c.chain.b_runs, c.chain.depth);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Halves that leave detached submissions behind
 */

typedef struct det_ctx {
    weft_pool *pool;
    int joins, per_half;
    struct det_task_arg *targs; /* joins * 2 * per_half, owned by the test thread */
    atomic_int *ran;            /* one per detached task */
    atomic_int total;
} det_ctx;

typedef struct det_task_arg {
    det_ctx *c;
    int i;
} det_task_arg;

typedef struct det_half_arg {
    det_ctx *c;
    int first; /* index of its first detached task */
} det_half_arg;

static int det_task(void *arg, void **result)
{
    (void)result;
    det_task_arg *t = arg;
    TU_EXPECT(jt_current_pool() == t->c->pool);
    /* a small join of its own */
    fib_ctx fc;
    fib_ctx_init(&fc, t->c->pool, 0);
    fib_node nd = {&fc, 6, -1, -1};
    fib_join(&nd);
    TU_EXPECT(nd.result == 8);
    atomic_fetch_add(&t->c->ran[t->i], 1);
    atomic_fetch_add(&t->c->total, 1);
    return 0;
}

static void det_half(void *arg)
{
    det_half_arg *h = arg;
    for (int k = 0; k < h->c->per_half; k++) {
        int rc = weft_submit(h->c->pool, det_task, &h->c->targs[h->first + k], NULL);
        TU_EXPECT(rc == 0);
    }
}

static void det_root(void *arg)
{
    det_ctx *c = arg;
    for (int j = 0; j < c->joins; j++) {
        det_half_arg a = {c, (2 * j) * c->per_half};
        det_half_arg b = {c, (2 * j + 1) * c->per_half};
        weft_join(det_half, &a, det_half, &b);
    }
}

START_TEST(test_join_half_with_detached_submissions)
{
    tu_failures_reset();
    /* per_half above the deque's initial 256 slots: the detached tasks pile up over the frame */
    static const int per_half[] = {1, 40, 300};
    for (unsigned nw = 1; nw <= 4; nw *= 2) {
        for (size_t k = 0; k < sizeof(per_half) / sizeof(per_half[0]); k++) {
            weft_pool *p = jt_pool_new(nw);
            det_ctx c = {.pool = p, .joins = 10, .per_half = per_half[k]};
            int n = c.joins * 2 * c.per_half;
            c.targs = calloc((size_t)n, sizeof(*c.targs));
            c.ran = calloc((size_t)n, sizeof(*c.ran));
            ck_assert_ptr_nonnull(c.targs);
            ck_assert_ptr_nonnull(c.ran);
            for (int i = 0; i < n; i++) {
                c.targs[i] = (det_task_arg){&c, i};
                atomic_init(&c.ran[i], 0);
            }
            atomic_init(&c.total, 0);
            jt_run(p, det_root, &c); /* every join returned */
            ck_assert_msg(tu_wait_atomic_ge(&c.total, n, TU_PATIENCE_S),
                          "pool %u: %d of %d detached tasks ran", nw, atomic_load(&c.total), n);
            tu_pool_free(p);
            TU_ASSERT_NO_FAILURES();
            JT_ASSERT_ATOMIC_EQ(&c.total, n);
            for (int i = 0; i < n; i++)
                ck_assert_msg(atomic_load(&c.ran[i]) == 1, "detached task %d ran %d times", i,
                              atomic_load(&c.ran[i]));
            free(c.targs);
            free(c.ran);
        }
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Joins and scopes nested in each other
 *
 * Levels alternate: odd levels open a scope of three spawns, even levels join two halves. Every
 * node checks, right after its join or wait, that all of its children finished.
 */

typedef struct mixed_ctx {
    weft_pool *pool;
    atomic_long nodes, leaves;
} mixed_ctx;

typedef struct mixed_node {
    mixed_ctx *c;
    int level;
    atomic_int done;
} mixed_node;

static void mixed_run(void *arg)
{
    mixed_node *nd = arg;
    mixed_ctx *c = nd->c;
    atomic_fetch_add(&c->nodes, 1);
    TU_EXPECT(jt_current_pool() == c->pool);
    if (nd->level == 0) {
        atomic_fetch_add(&c->leaves, 1);
    } else if (nd->level % 2 == 1) {
        mixed_node kid[3];
        weft_spawn slot[3];
        weft_scope s;
        weft_scope_init(&s);
        for (int i = 0; i < 3; i++) {
            kid[i].c = c;
            kid[i].level = nd->level - 1;
            atomic_init(&kid[i].done, 0);
            weft_scope_spawn(&s, &slot[i], mixed_run, &kid[i]);
        }
        weft_scope_wait(&s);
        for (int i = 0; i < 3; i++)
            TU_EXPECT(atomic_load(&kid[i].done) == 1);
    } else {
        mixed_node kid[2];
        for (int i = 0; i < 2; i++) {
            kid[i].c = c;
            kid[i].level = nd->level - 1;
            atomic_init(&kid[i].done, 0);
        }
        weft_join(mixed_run, &kid[0], mixed_run, &kid[1]);
        for (int i = 0; i < 2; i++)
            TU_EXPECT(atomic_load(&kid[i].done) == 1);
    }
    atomic_fetch_add(&nd->done, 1);
}

START_TEST(test_join_and_scope_nested)
{
    tu_failures_reset();
    const int levels = 10; /* 2^5 * 3^5 leaves */
    long leaves = 1, nodes = 1, width = 1;
    for (int l = levels; l > 0; l--) {
        width *= l % 2 == 1 ? 3 : 2;
        nodes += width;
    }
    leaves = width;
    for (unsigned nw = 1; nw <= 8; nw *= 2) {
        weft_pool *p = jt_pool_new(nw);
        mixed_ctx c = {.pool = p};
        atomic_init(&c.nodes, 0);
        atomic_init(&c.leaves, 0);
        mixed_node root = {.c = &c, .level = levels};
        atomic_init(&root.done, 0);
        jt_run(p, mixed_run, &root);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
        JT_ASSERT_ATOMIC_EQ(&root.done, 1);
        JT_ASSERT_ATOMIC_EQ(&c.leaves, leaves);
        JT_ASSERT_ATOMIC_EQ(&c.nodes, nodes);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Joins in two pools at once
 */

typedef struct two_arg {
    fib_node root;
    atomic_int *arrived;
    weft_pool *other; /* the b half of the top join also runs a fib task on this pool */
    long other_result;
} two_arg;

static int two_other_task(void *arg, void **result)
{
    fib_node *nd = arg;
    fib_root(nd);
    *result = (void *)(intptr_t)nd->result;
    return 0;
}

/* A half that runs a fib computation as a task on the other pool and waits for it. */
typedef struct two_side {
    weft_pool *other;
    fib_ctx oc;
    fib_node on;
    long result;
} two_side;

static void two_side_half(void *arg)
{
    two_side *sd = arg;
    fib_ctx_init(&sd->oc, sd->other, 0);
    sd->on = (fib_node){&sd->oc, 15, -1, -1};
    weft_future *f = NULL;
    int rc = weft_submit(sd->other, two_other_task, &sd->on, &f);
    if (!TU_EXPECT(rc == 0))
        return;
    void *v = NULL;
    TU_EXPECT(weft_future_result(f, &v) == 0);
    weft_future_release(f);
    sd->result = (long)(intptr_t)v;
}

static int two_task(void *arg, void **result)
{
    (void)result;
    two_arg *t = arg;
    /* both pools' tasks are running before either starts joining */
    atomic_fetch_add(t->arrived, 1);
    TU_EXPECT(tu_wait_atomic_ge(t->arrived, 2, TU_PATIENCE_S));
    fib_root(&t->root);
    /* and a join whose halves each wait on a join computation in the other pool */
    two_side x = {.other = t->other, .result = -1}, y = {.other = t->other, .result = -1};
    weft_join(two_side_half, &x, two_side_half, &y);
    TU_EXPECT(x.result == fib_serial(15));
    TU_EXPECT(y.result == fib_serial(15));
    TU_EXPECT(atomic_load(&x.oc.a_runs) == fib_joins(15));
    TU_EXPECT(atomic_load(&y.oc.b_runs) == fib_joins(15));
    t->other_result = x.result + y.result;
    return 0;
}

START_TEST(test_join_in_two_pools_at_once)
{
    tu_failures_reset();
    int n = fib_n() - 2;
    weft_pool *pa = jt_pool_new(2);
    weft_pool *pb = jt_pool_new(3);
    fib_ctx ca, cb;
    fib_ctx_init(&ca, pa, 0);
    fib_ctx_init(&cb, pb, 0);
    atomic_int arrived;
    atomic_init(&arrived, 0);
    two_arg ta = {{&ca, n, -1, -1}, &arrived, pb, -1};
    two_arg tb = {{&cb, n, -1, -1}, &arrived, pa, -1};
    weft_future *fa = NULL, *fb = NULL;
    ck_assert_int_eq(weft_submit(pa, two_task, &ta, &fa), 0);
    ck_assert_int_eq(weft_submit(pb, two_task, &tb, &fb), 0);
    ck_assert_int_eq(weft_future_result(fa, NULL), 0);
    ck_assert_int_eq(weft_future_result(fb, NULL), 0);
    weft_future_release(fa);
    weft_future_release(fb);
    tu_pool_free(pa);
    tu_pool_free(pb);
    TU_ASSERT_NO_FAILURES();
    fib_expect(&ca, &ta.root, n);
    fib_expect(&cb, &tb.root, n);
    ck_assert_int_eq(ta.other_result, 2 * fib_serial(15));
    ck_assert_int_eq(tb.other_result, 2 * fib_serial(15));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Scopes: N spawns, each exactly once
 */

#define SCOPE_MAX_SPAWNS 1000

typedef struct spawn_ctx {
    weft_pool *pool;
    int n;
    atomic_int ran[SCOPE_MAX_SPAWNS];
    atomic_int done[SCOPE_MAX_SPAWNS];
} spawn_ctx;

typedef struct spawn_arg {
    spawn_ctx *c;
    int i;
} spawn_arg;

static void spawn_fn(void *arg)
{
    spawn_arg *a = arg;
    spawn_ctx *c = a->c;
    if (c->pool != NULL)
        TU_EXPECT(jt_current_pool() == c->pool);
    TU_EXPECT(!weft_cancel_requested());
    atomic_fetch_add(&c->ran[a->i], 1);
    (void)jt_work((uint64_t)a->i, 200);
    atomic_store(&c->done[a->i], 1);
}

static void spawn_many(void *arg)
{
    spawn_ctx *c = arg;
    weft_spawn slot[SCOPE_MAX_SPAWNS];
    spawn_arg args[SCOPE_MAX_SPAWNS];
    weft_scope s;
    weft_scope_init(&s);
    for (int i = 0; i < c->n; i++) {
        args[i] = (spawn_arg){c, i};
        weft_scope_spawn(&s, &slot[i], spawn_fn, &args[i]);
    }
    weft_scope_wait(&s);
    for (int i = 0; i < c->n; i++)
        TU_EXPECT(atomic_load(&c->done[i]) == 1);
}

static void spawn_ctx_reset(spawn_ctx *c, weft_pool *pool, int n)
{
    c->pool = pool;
    c->n = n;
    for (int i = 0; i < SCOPE_MAX_SPAWNS; i++) {
        atomic_init(&c->ran[i], 0);
        atomic_init(&c->done[i], 0);
    }
}

static void spawn_ctx_check(spawn_ctx *c)
{
    for (int i = 0; i < SCOPE_MAX_SPAWNS; i++) {
        int want = i < c->n ? 1 : 0;
        ck_assert_msg(atomic_load(&c->ran[i]) == want, "n = %d: spawn %d ran %d times", c->n, i,
                      atomic_load(&c->ran[i]));
    }
}

START_TEST(test_scope_spawn_counts)
{
    tu_failures_reset();
    static const int ns[] = {0, 1, 5, SCOPE_MAX_SPAWNS};
    spawn_ctx *c = malloc(sizeof(*c));
    ck_assert_ptr_nonnull(c);
    for (unsigned nw = 1; nw <= 8; nw++) {
        weft_pool *p = jt_pool_new(nw);
        for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
            spawn_ctx_reset(c, p, ns[k]);
            jt_run(p, spawn_many, c);
            TU_ASSERT_NO_FAILURES();
            spawn_ctx_check(c);
        }
        tu_pool_free(p);
    }
    free(c);
}
END_TEST

/* From the task that ran the scope: every one of the c->n spawns ran once and was done. */
static void spawn_ctx_expect_all(spawn_ctx *c)
{
    for (int i = 0; i < c->n; i++) {
        TU_EXPECT(atomic_load(&c->ran[i]) == 1);
        TU_EXPECT(atomic_load(&c->done[i]) == 1);
    }
}

/* Runs fn(c) rounds times as a task of pools of 1 to 4 workers, c reset for each pool, then
 * check(c) if given. */
static void spawn_on_pools(void (*fn)(void *), int rounds, void (*check)(spawn_ctx *c))
{
    tu_failures_reset();
    spawn_ctx *c = malloc(sizeof(*c));
    ck_assert_ptr_nonnull(c);
    for (unsigned nw = 1; nw <= 4; nw++) {
        weft_pool *p = jt_pool_new(nw);
        spawn_ctx_reset(c, p, 0);
        for (int r = 0; r < rounds; r++)
            jt_run(p, fn, c);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
        if (check != NULL)
            check(c);
    }
    free(c);
}

/* The exported functions, named in parentheses, and weft.h's inline ones are one scope: any mix
 * on one scope runs every spawn exactly once, done when the wait returns. Bit k of the round
 * picks, for spawn k, the exported weft_scope_spawn; bits 16 and 17 the exported init and wait. */
static void spawn_mixed(void *arg)
{
    spawn_ctx *c = arg;
    weft_spawn slot[SCOPE_MAX_SPAWNS];
    spawn_arg args[SCOPE_MAX_SPAWNS];
    void (*init_fn)(weft_scope *) = weft_scope_init;
    void (*spawn_fn_x)(weft_scope *, weft_spawn *, void (*)(void *), void *) = weft_scope_spawn;
    void (*wait_fn)(weft_scope *) = weft_scope_wait;
    for (unsigned round = 0; round < 64; round++) {
        unsigned mix = round * 0x9e3779b9u;
        spawn_ctx_reset(c, c->pool, 16);
        weft_scope s;
        if (mix & (1u << 16))
            init_fn(&s);
        else
            weft_scope_init(&s);
        for (int i = 0; i < c->n; i++) {
            args[i] = (spawn_arg){c, i};
            if (mix & (1u << i))
                spawn_fn_x(&s, &slot[i], spawn_fn, &args[i]);
            else
                weft_scope_spawn(&s, &slot[i], spawn_fn, &args[i]);
        }
        if (mix & (1u << 17))
            wait_fn(&s);
        else
            weft_scope_wait(&s);
        spawn_ctx_expect_all(c);
    }
}

START_TEST(test_scope_exported_and_inline_mixed)
{
    spawn_on_pools(spawn_mixed, 1, NULL);
}
END_TEST

/* Spawned functions that spawn into their own scope again (a work list): run by the wait on the
 * scope's thread, their spawns go on the scope; run by a thief, they run at once there. Each of
 * the 2^(depth+1) - 1 nodes runs once, all before the wait returns. */
typedef struct regrow {
    weft_scope s;
    spawn_ctx *c;
    atomic_int next; /* the next free slot and record */
    weft_spawn slot[SCOPE_MAX_SPAWNS];
    spawn_arg args[SCOPE_MAX_SPAWNS];
    int depth[SCOPE_MAX_SPAWNS];
} regrow;

static regrow *regrow_of; /* the one in use: tests run one at a time */

static void regrow_node(void *arg)
{
    spawn_arg *a = arg;
    regrow *g = regrow_of;
    spawn_fn(a);
    if (g->depth[a->i] == 0)
        return;
    for (int k = 0; k < 2; k++) {
        int j = atomic_fetch_add(&g->next, 1);
        TU_EXPECT(j < SCOPE_MAX_SPAWNS);
        if (j >= SCOPE_MAX_SPAWNS)
            return;
        g->depth[j] = g->depth[a->i] - 1;
        g->args[j] = (spawn_arg){a->c, j};
        weft_scope_spawn(&g->s, &g->slot[j], regrow_node, &g->args[j]);
    }
}

static void scope_regrow(void *arg)
{
    spawn_ctx *c = arg;
    regrow *g = regrow_of;
    enum { ROOTS = 3, DEPTH = 6 };
    spawn_ctx_reset(c, c->pool, 0);
    g->c = c;
    atomic_init(&g->next, ROOTS);
    weft_scope_init(&g->s);
    for (int i = 0; i < ROOTS; i++) {
        g->depth[i] = DEPTH;
        g->args[i] = (spawn_arg){c, i};
        weft_scope_spawn(&g->s, &g->slot[i], regrow_node, &g->args[i]);
    }
    weft_scope_wait(&g->s);
    c->n = atomic_load(&g->next);
    TU_EXPECT(c->n == ROOTS * ((2 << DEPTH) - 1));
    spawn_ctx_expect_all(c);
}

START_TEST(test_scope_spawns_from_its_spawns)
{
    regrow_of = malloc(sizeof(*regrow_of));
    ck_assert_ptr_nonnull(regrow_of);
    spawn_on_pools(scope_regrow, 10, NULL);
    free(regrow_of);
    regrow_of = NULL;
}
END_TEST

/* Two scopes open at once, the older waited for first: its wait takes its frames from under the
 * younger scope's, which that scope's wait then finds run by others or runs itself. */
static void scopes_crossed(void *arg)
{
    spawn_ctx *c = arg;
    enum { N = 8 };
    weft_spawn slot_a[N], slot_b[N];
    spawn_arg args[2 * N];
    spawn_ctx_reset(c, c->pool, 2 * N);
    weft_scope a, b;
    weft_scope_init(&a);
    weft_scope_init(&b);
    for (int i = 0; i < N; i++) {
        args[2 * i] = (spawn_arg){c, 2 * i};
        weft_scope_spawn(&a, &slot_a[i], spawn_fn, &args[2 * i]);
        args[2 * i + 1] = (spawn_arg){c, 2 * i + 1};
        weft_scope_spawn(&b, &slot_b[i], spawn_fn, &args[2 * i + 1]);
    }
    weft_scope_wait(&a);
    for (int i = 0; i < N; i++)
        TU_EXPECT(atomic_load(&c->done[2 * i]) == 1);
    weft_scope_wait(&b);
    spawn_ctx_expect_all(c);
}

START_TEST(test_scopes_waited_out_of_order)
{
    spawn_on_pools(scopes_crossed, 20, NULL);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Nested scopes: a 5-ary tree
 */

typedef struct tree_ctx {
    weft_pool *pool;
    atomic_long nodes;
} tree_ctx;

typedef struct tree_node {
    tree_ctx *c;
    int depth;
    atomic_int done;
} tree_node;

static void tree_run(void *arg)
{
    tree_node *nd = arg;
    atomic_fetch_add(&nd->c->nodes, 1);
    if (nd->depth > 0) {
        tree_node kid[5];
        weft_spawn slot[5];
        weft_scope s;
        weft_scope_init(&s);
        for (int i = 0; i < 5; i++) {
            kid[i].c = nd->c;
            kid[i].depth = nd->depth - 1;
            atomic_init(&kid[i].done, 0);
            weft_scope_spawn(&s, &slot[i], tree_run, &kid[i]);
        }
        weft_scope_wait(&s);
        for (int i = 0; i < 5; i++)
            TU_EXPECT(atomic_load(&kid[i].done) == 1);
    }
    atomic_store(&nd->done, 1);
}

START_TEST(test_scope_nested_tree)
{
    tu_failures_reset();
    int depth = tu_stress_scale() > 1 ? 7 : 6;
    long nodes = 0, width = 1;
    for (int d = 0; d <= depth; d++) {
        nodes += width;
        width *= 5;
    }
    for (unsigned nw = 1; nw <= 8; nw *= 2) {
        weft_pool *p = jt_pool_new(nw);
        tree_ctx c = {.pool = p};
        atomic_init(&c.nodes, 0);
        tree_node root = {.c = &c, .depth = depth};
        atomic_init(&root.done, 0);
        jt_run(p, tree_run, &root);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
        JT_ASSERT_ATOMIC_EQ(&root.done, 1);
        JT_ASSERT_ATOMIC_EQ(&c.nodes, nodes);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Reusing a scope after wait
 */

static void scope_reuse_run(void *arg)
{
    spawn_ctx *c = arg;
    /* rounds of different sizes on one scope; 300 is past the deque's initial 256 slots */
    static const int rounds[] = {10, 300, 0, 5, 1, 64};
    weft_spawn slot[300];
    spawn_arg args[300];
    weft_scope s;
    weft_scope_init(&s);
    int base = 0;
    for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]); r++) {
        for (int i = 0; i < rounds[r]; i++) {
            args[i] = (spawn_arg){c, base + i};
            weft_scope_spawn(&s, &slot[i], spawn_fn, &args[i]);
        }
        weft_scope_wait(&s);
        for (int i = 0; i < base + rounds[r]; i++)
            TU_EXPECT(atomic_load(&c->ran[i]) == 1);
        base += rounds[r];
    }
    c->n = base;
}

static void scope_reuse_check(spawn_ctx *c)
{
    ck_assert_int_eq(c->n, 380);
    spawn_ctx_check(c);
}

START_TEST(test_scope_reuse_after_wait)
{
    spawn_on_pools(scope_reuse_run, 1, scope_reuse_check);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Spawns outside any pool run at once, on the calling thread
 */

typedef struct now_ctx {
    pthread_t caller;
    atomic_int ran;
    atomic_int wrong_thread;
} now_ctx;

static void now_fn(void *arg)
{
    now_ctx *c = arg;
    if (!pthread_equal(pthread_self(), c->caller) || weft_worker_index() != -1 ||
        weft_cancel_requested())
        atomic_store(&c->wrong_thread, 1);
    atomic_fetch_add(&c->ran, 1);
}

/* Returns the number of spawns that had not run by the time their spawn returned. */
static int now_run(now_ctx *c)
{
    int late = 0;
    c->caller = pthread_self();
    atomic_init(&c->ran, 0);
    atomic_init(&c->wrong_thread, 0);
    weft_spawn slot[3];
    weft_scope s;
    weft_scope_init(&s);
    for (int round = 0; round < 2; round++) { /* and reuse */
        for (int i = 0; i < 3; i++) {
            weft_scope_spawn(&s, &slot[i], now_fn, c);
            if (atomic_load(&c->ran) != round * 3 + i + 1)
                late++;
        }
        weft_scope_wait(&s);
    }
    weft_scope_wait(&s); /* waiting on an empty scope returns */
    return late;
}

static void *now_thread(void *arg)
{
    now_ctx *c = arg;
    TU_EXPECT(now_run(c) == 0);
    return NULL;
}

START_TEST(test_scope_outside_pool_runs_at_once)
{
    tu_failures_reset();
    now_ctx c;
    ck_assert_int_eq(now_run(&c), 0);
    JT_ASSERT_ATOMIC_EQ(&c.ran, 6);
    JT_ASSERT_ATOMIC_EQ(&c.wrong_thread, 0);

    weft_pool *p = jt_pool_new(2); /* a pool alive changes nothing for this thread */
    ck_assert_int_eq(now_run(&c), 0);
    JT_ASSERT_ATOMIC_EQ(&c.ran, 6);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, now_thread, &c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    JT_ASSERT_ATOMIC_EQ(&c.ran, 6);
    JT_ASSERT_ATOMIC_EQ(&c.wrong_thread, 0);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A spawn made on another thread than the scope's runs at once, on that thread
 *
 * The scope is set up by a task. One spawn comes from a plain thread that the task starts; in
 * rounds, another comes from the b half of a join, which an idle worker steals while a keeps its
 * own worker busy. Spawns from the task's own thread are queued as usual and run by the wait.
 */

typedef struct xs_item {
    weft_scope *s;
    weft_spawn *slot;
    atomic_int ran;
    pthread_t ran_on;
    int ran_at_once; /* ran already when its spawn returned */
    pthread_t spawned_on;
} xs_item;

static void xs_fn(void *arg)
{
    xs_item *it = arg;
    it->ran_on = pthread_self();
    atomic_fetch_add(&it->ran, 1);
}

static void xs_spawn(xs_item *it)
{
    it->spawned_on = pthread_self();
    weft_scope_spawn(it->s, it->slot, xs_fn, it);
    it->ran_at_once = atomic_load(&it->ran);
}

static void *xs_thread(void *arg)
{
    xs_spawn(arg);
    return NULL;
}

#define XS_ROUNDS 20

typedef struct xs_round {
    xs_item own, other;
    int joiner;
    atomic_int b_started;
    int b_worker;
} xs_round;

static void xs_a(void *arg)
{
    xs_round *r = arg;
    (void)jt_spin_until(&r->b_started, 2.0);
}

static void xs_b(void *arg)
{
    xs_round *r = arg;
    r->b_worker = weft_worker_index();
    if (r->b_worker != r->joiner)
        xs_spawn(&r->other);
    atomic_store(&r->b_started, 1);
}

typedef struct xs_ctx {
    xs_item thread_item;
    int nrounds, stolen;
    xs_round rounds[XS_ROUNDS];
} xs_ctx;

static void xs_item_init(xs_item *it, weft_scope *s, weft_spawn *slot)
{
    memset(it, 0, sizeof(*it));
    it->s = s;
    it->slot = slot;
    atomic_init(&it->ran, 0);
}

static void xs_run(void *arg)
{
    xs_ctx *c = arg;
    weft_scope s;
    weft_spawn slot[2];
    weft_scope_init(&s);

    /* from a plain thread */
    xs_item own;
    xs_item_init(&own, &s, &slot[0]);
    xs_item_init(&c->thread_item, &s, &slot[1]);
    xs_spawn(&own);
    pthread_t th;
    if (TU_EXPECT(pthread_create(&th, NULL, xs_thread, &c->thread_item) == 0))
        TU_EXPECT(pthread_join(th, NULL) == 0);
    weft_scope_wait(&s);
    TU_EXPECT(atomic_load(&own.ran) == 1);

    /* from a stolen join half (the scope is reused) */
    for (int i = 0; i < XS_ROUNDS && c->stolen == 0; i++) {
        xs_round *r = &c->rounds[i];
        r->joiner = weft_worker_index();
        atomic_init(&r->b_started, 0);
        xs_item_init(&r->own, &s, &slot[0]);
        xs_item_init(&r->other, &s, &slot[1]);
        xs_spawn(&r->own);
        weft_join(xs_a, r, xs_b, r);
        weft_scope_wait(&s);
        TU_EXPECT(atomic_load(&r->own.ran) == 1);
        if (r->b_worker != r->joiner)
            c->stolen++;
        c->nrounds++;
    }
}

START_TEST(test_scope_spawn_from_other_thread_runs_at_once)
{
    tu_failures_reset();
    xs_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    weft_pool *p = jt_pool_new(2);
    jt_run(p, xs_run, c);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    xs_item *t = &c->thread_item;
    JT_ASSERT_ATOMIC_EQ(&t->ran, 1);
    ck_assert_msg(t->ran_at_once, "a spawn from a plain thread had not run when spawn returned");
    ck_assert(pthread_equal(t->ran_on, t->spawned_on));
    ck_assert_msg(c->stolen >= 1, "no b half was stolen in %d joins", c->nrounds);
    for (int i = 0; i < c->nrounds; i++) {
        xs_round *r = &c->rounds[i];
        JT_ASSERT_ATOMIC_EQ(&r->own.ran, 1);
        if (r->b_worker == r->joiner)
            continue;
        JT_ASSERT_ATOMIC_EQ(&r->other.ran, 1);
        ck_assert_msg(r->other.ran_at_once,
                      "round %d: a spawn from another worker had not run when spawn returned", i);
        ck_assert(pthread_equal(r->other.ran_on, r->other.spawned_on));
    }
    free(c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Stolen spawns have all finished when wait returns
 *
 * The spawner's own worker, when it runs a spawned function, keeps busy until some spawn has
 * started on another worker; stolen spawns take a while (20 ms) before they set their flag, so
 * a wait that returned early would see a flag unset. The check is made in the task that waited.
 */

#define STEAL_KIDS 32

typedef struct steal_round {
    int spawner;
    atomic_int elsewhere;          /* a spawn started on another worker */
    atomic_int spun;               /* the spawner's worker already waited for that */
    atomic_int done[STEAL_KIDS];   /* set last by each spawn */
    atomic_int ran[STEAL_KIDS];    /* runs of each spawn */
    atomic_int cancel[STEAL_KIDS]; /* what weft_cancel_requested() said */
    atomic_int stolen[STEAL_KIDS]; /* ran on another worker */
    int missing_after_wait;        /* flags unset when wait returned */
} steal_round;

typedef struct steal_arg {
    steal_round *r;
    int i;
} steal_arg;

static void steal_fn(void *arg)
{
    steal_arg *a = arg;
    steal_round *r = a->r;
    atomic_fetch_add(&r->ran[a->i], 1);
    atomic_store(&r->cancel[a->i], weft_cancel_requested() ? 1 : 0);
    if (weft_worker_index() != r->spawner) {
        atomic_store(&r->stolen[a->i], 1);
        atomic_store(&r->elsewhere, 1);
        int64_t until = tu_now_ns() + TU_MS(20);
        while (tu_now_ns() < until) {
        }
    } else if (atomic_exchange(&r->spun, 1) == 0) {
        (void)jt_spin_until(&r->elsewhere, 2.0); /* once per round */
    }
    atomic_store(&r->done[a->i], 1);
}

#define STEAL_MAX_ROUNDS 10

typedef struct steal_ctx {
    tu_gate started, go;
    int nrounds, stolen_rounds;
    steal_round rounds[STEAL_MAX_ROUNDS];
} steal_ctx;

static int steal_task(void *arg, void **result)
{
    (void)result;
    steal_ctx *c = arg;
    tu_gate_open(&c->started);
    TU_EXPECT(tu_gate_wait(&c->go));
    for (int k = 0; k < STEAL_MAX_ROUNDS && c->stolen_rounds < 2; k++) {
        steal_round *r = &c->rounds[k];
        r->spawner = weft_worker_index();
        weft_spawn slot[STEAL_KIDS];
        steal_arg args[STEAL_KIDS];
        weft_scope s;
        weft_scope_init(&s);
        for (int i = 0; i < STEAL_KIDS; i++) {
            args[i] = (steal_arg){r, i};
            weft_scope_spawn(&s, &slot[i], steal_fn, &args[i]);
        }
        weft_scope_wait(&s);
        for (int i = 0; i < STEAL_KIDS; i++) {
            if (atomic_load(&r->done[i]) != 1)
                r->missing_after_wait++;
        }
        TU_EXPECT(r->missing_after_wait == 0);
        if (atomic_load(&r->elsewhere))
            c->stolen_rounds++;
        c->nrounds++;
    }
    return 0;
}

static void steal_run(unsigned nw, bool cancel)
{
    steal_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    tu_gate_init(&c->started);
    tu_gate_init(&c->go);
    weft_pool *p = jt_pool_new(nw);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, steal_task, c, &f), 0);
    ck_assert(tu_gate_wait(&c->started));
    if (cancel)
        ck_assert_int_eq(weft_future_cancel(f), 0);
    tu_gate_open(&c->go);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_msg(c->stolen_rounds >= 1, "pool of %u: no spawn was stolen in %d rounds", nw,
                  c->nrounds);
    for (int k = 0; k < c->nrounds; k++) {
        steal_round *r = &c->rounds[k];
        ck_assert_msg(r->missing_after_wait == 0,
                      "round %d: %d spawns not finished when weft_scope_wait returned", k,
                      r->missing_after_wait);
        for (int i = 0; i < STEAL_KIDS; i++) {
            JT_ASSERT_ATOMIC_EQ(&r->ran[i], 1);
            ck_assert_msg(atomic_load(&r->cancel[i]) == (cancel ? 1 : 0),
                          "round %d, spawn %d (%s): weft_cancel_requested() = %d, want %d", k, i,
                          atomic_load(&r->stolen[i]) ? "stolen" : "on the spawner",
                          atomic_load(&r->cancel[i]), cancel);
        }
    }
    free(c);
}

START_TEST(test_scope_stolen_spawns_done_at_wait)
{
    tu_failures_reset();
    for (unsigned nw = 2; nw <= 4; nw++)
        steal_run(nw, false);
}
END_TEST

START_TEST(test_scope_cancel_requested_in_spawns)
{
    tu_failures_reset();
    for (unsigned nw = 2; nw <= 4; nw += 2)
        steal_run(nw, true);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown(CANCEL) while a task is deep in a join or scope computation
 *
 * Every leaf of the computation waits (a sleep loop: its worker stays busy and its deque keeps
 * the frames spread above it) until the test thread has shut the pool down; the first leaf
 * tells the test thread it got there. Shutdown's sweep thus finds frames on the deques. The
 * computation must still complete, every half and spawn exactly once, and the task end DONE.
 * Submissions from inside are refused from then on.
 */

enum sd_shape { SD_JOIN, SD_SCOPE, SD_MIXED };

typedef struct sd_ctx {
    weft_pool *pool;
    enum sd_shape shape;
    tu_gate started, resume;
    atomic_int first;
    atomic_long leaves, halves, spawns;
    atomic_int submit_rc;
    atomic_int detached_ran;
} sd_ctx;

typedef struct sd_node {
    sd_ctx *c;
    int depth;
} sd_node;

static void sd_run(void *arg);

static void sd_half(void *arg)
{
    sd_node *nd = arg;
    atomic_fetch_add(&nd->c->halves, 1);
    sd_run(nd);
}

static void sd_spawned(void *arg)
{
    sd_node *nd = arg;
    atomic_fetch_add(&nd->c->spawns, 1);
    sd_run(nd);
}

static void sd_run(void *arg)
{
    sd_node *nd = arg;
    sd_ctx *c = nd->c;
    TU_EXPECT(jt_current_pool() == c->pool);
    if (nd->depth == 0) {
        if (atomic_exchange(&c->first, 1) == 0)
            tu_gate_open(&c->started);
        TU_EXPECT(tu_gate_wait(&c->resume));
        if (atomic_load(&c->leaves) == 0) {
            int rc = weft_submit(c->pool, tu_task_count, &c->detached_ran, NULL);
            atomic_store(&c->submit_rc, rc);
        }
        atomic_fetch_add(&c->leaves, 1);
        return;
    }
    sd_node kid[4];
    for (int i = 0; i < 4; i++)
        kid[i] = (sd_node){c, nd->depth - 1};
    bool scope = c->shape == SD_SCOPE || (c->shape == SD_MIXED && nd->depth % 2 == 1);
    if (scope) {
        weft_spawn slot[4];
        weft_scope s;
        weft_scope_init(&s);
        for (int i = 0; i < 4; i++)
            weft_scope_spawn(&s, &slot[i], sd_spawned, &kid[i]);
        weft_scope_wait(&s);
    } else {
        weft_join(sd_half, &kid[0], sd_half, &kid[1]);
    }
}

static int sd_task(void *arg, void **result)
{
    (void)result;
    sd_node *root = arg;
    sd_run(root);
    return 0;
}

static void sd_case(unsigned nw, enum sd_shape shape, weft_shutdown_mode mode)
{
    int depth = shape == SD_JOIN ? 14 : shape == SD_SCOPE ? 7 : 10;
    long leaves = 1, halves = 0, spawns = 0;
    for (int d = depth; d > 0; d--) {
        bool scope = shape == SD_SCOPE || (shape == SD_MIXED && d % 2 == 1);
        if (scope) {
            spawns += leaves * 4;
            leaves *= 4;
        } else {
            halves += leaves * 2;
            leaves *= 2;
        }
    }
    weft_pool *p = jt_pool_new(nw);
    sd_ctx c = {.pool = p, .shape = shape};
    tu_gate_init(&c.started);
    tu_gate_init(&c.resume);
    atomic_init(&c.first, 0);
    atomic_init(&c.leaves, 0);
    atomic_init(&c.halves, 0);
    atomic_init(&c.spawns, 0);
    atomic_init(&c.submit_rc, 1);
    atomic_init(&c.detached_ran, 0);
    sd_node root = {&c, depth};
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, sd_task, &root, &f), 0);
    ck_assert(tu_gate_wait(&c.started));
    ck_assert_int_eq(weft_pool_shutdown(p, mode), 0);
    ck_assert_int_eq(weft_submit(p, tu_task_count, &c.detached_ran, NULL), -ESHUTDOWN);
    tu_gate_open(&c.resume);
    ck_assert_msg(tu_wait_done(f, 60.0), "pool %u, shape %d: the computation never finished", nw,
                  (int)shape);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    JT_ASSERT_ATOMIC_EQ(&c.leaves, leaves);
    JT_ASSERT_ATOMIC_EQ(&c.halves, halves);
    JT_ASSERT_ATOMIC_EQ(&c.spawns, spawns);
    JT_ASSERT_ATOMIC_EQ(&c.submit_rc, -ESHUTDOWN);
    JT_ASSERT_ATOMIC_EQ(&c.detached_ran, 0);
}

START_TEST(test_shutdown_cancel_during_joins)
{
    tu_failures_reset();
    for (unsigned nw = 1; nw <= 4; nw++)
        sd_case(nw, SD_JOIN, WEFT_SHUTDOWN_CANCEL);
}
END_TEST

START_TEST(test_shutdown_cancel_during_scopes)
{
    tu_failures_reset();
    for (unsigned nw = 1; nw <= 4; nw++)
        sd_case(nw, SD_SCOPE, WEFT_SHUTDOWN_CANCEL);
}
END_TEST

START_TEST(test_shutdown_during_mixed)
{
    tu_failures_reset();
    for (unsigned nw = 1; nw <= 4; nw++) {
        sd_case(nw, SD_MIXED, WEFT_SHUTDOWN_CANCEL);
        sd_case(nw, SD_MIXED, WEFT_SHUTDOWN_DRAIN);
    }
}
END_TEST

static Suite *join_suite(void)
{
    Suite *s = suite_create("join");

    TCase *tc = tcase_create("join");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_join_fib_every_pool_size);
    tcase_add_test(tc, test_join_each_half_exactly_once);
    tcase_add_test(tc, test_join_halves_run_in_parallel);
    tcase_add_test(tc, test_join_outside_pool_runs_in_order);
    tcase_add_test(tc, test_join_deep_chain_one_worker);
    tcase_add_test(tc, test_join_deep_chain_two_workers);
    tcase_add_test(tc, test_join_and_spawn_allocate_nothing);
    tcase_add_test(tc, test_join_half_with_detached_submissions);
    tcase_add_test(tc, test_join_and_scope_nested);
    tcase_add_test(tc, test_join_in_two_pools_at_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("scope");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_scope_spawn_counts);
    tcase_add_test(tc, test_scope_exported_and_inline_mixed);
    tcase_add_test(tc, test_scopes_waited_out_of_order);
    tcase_add_test(tc, test_scope_spawns_from_its_spawns);
    tcase_add_test(tc, test_scope_nested_tree);
    tcase_add_test(tc, test_scope_reuse_after_wait);
    tcase_add_test(tc, test_scope_outside_pool_runs_at_once);
    tcase_add_test(tc, test_scope_spawn_from_other_thread_runs_at_once);
    tcase_add_test(tc, test_scope_stolen_spawns_done_at_wait);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_join_cancel_requested_in_halves);
    tcase_add_test(tc, test_join_no_cancel_requested_in_halves);
    tcase_add_test(tc, test_join_cancel_answers_for_the_joining_task);
    tcase_add_test(tc, test_scope_cancel_requested_in_spawns);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shutdown_cancel_during_joins);
    tcase_add_test(tc, test_shutdown_cancel_during_scopes);
    tcase_add_test(tc, test_shutdown_during_mixed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(join_suite());
}
