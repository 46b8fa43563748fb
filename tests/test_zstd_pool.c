/* SPDX-License-Identifier: MIT */
/*
 * zstd's thread pool (lib/common/pool.c: POOL_create, POOL_add, POOL_tryAdd, POOL_joinJobs,
 * POOL_resize, POOL_free), written on weft the way an embedding library would, with the checks of
 * zstd's own tests/poolTests.c retold:
 *
 *  - order: a one-thread pool runs jobs in the order they were added;
 *  - POOL_joinJobs waits for every job added so far, with no future kept;
 *  - queue size 0 (max_inflight = threads): POOL_tryAdd fails while every thread is busy and
 *    succeeds once one is free; POOL_add waits for that;
 *  - queue size K (max_pending = K): at most K jobs wait, POOL_add blocks past them;
 *  - many adders at once: every job runs exactly once, never more than threads + K in flight;
 *  - POOL_resize while adders add: every job runs once, on no more threads than the largest size;
 *  - the pool ignores the environment (WEFT_CONFIG_NO_ENV) and takes the caller's allocator.
 */
#include "testutil.h"

#include <poll.h>

/* --- the shim, as a library would write it --- */

typedef void (*POOL_function)(void *);

typedef struct POOL_ctx {
    weft_pool *pool;
    weft_group *jobs;
    int room; /* weft_pool_room_fd */
} POOL_ctx;

typedef struct job {
    POOL_function fn;
    void *opaque;
} job;

static atomic_long shim_allocs, shim_frees;

static void *shim_alloc(void *opaque, size_t size)
{
    (void)opaque;
    atomic_fetch_add(&shim_allocs, 1);
    return malloc(size);
}

static void shim_free(void *opaque, void *p)
{
    (void)opaque;
    atomic_fetch_add(&shim_frees, 1);
    free(p);
}

static POOL_ctx *POOL_create(size_t threads, size_t queue_size)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = (unsigned)threads;
    cfg.flags = WEFT_CONFIG_NO_ENV;
    if (queue_size == 0)
        cfg.max_inflight = threads; /* a job only while a thread is free */
    else
        cfg.max_pending = queue_size;
    cfg.mem_alloc = shim_alloc;
    cfg.mem_free = shim_free;
    POOL_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return NULL;
    if (weft_pool_create(&cfg, &ctx->pool) != 0) {
        free(ctx);
        return NULL;
    }
    ctx->room = weft_pool_room_fd(ctx->pool);
    if (ctx->room < 0 || weft_group_create(ctx->pool, &ctx->jobs) != 0) {
        weft_pool_destroy(ctx->pool);
        free(ctx);
        return NULL;
    }
    return ctx;
}

static int run_job(void *arg, void **result)
{
    (void)result;
    job j = *(job *)arg;
    free(arg);
    j.fn(j.opaque);
    return 0;
}

/* 1 when taken, 0 when the queue is full. */
static int POOL_tryAdd(POOL_ctx *ctx, POOL_function fn, void *opaque)
{
    job *j = malloc(sizeof(*j));
    if (j == NULL)
        return 0;
    *j = (job){fn, opaque};
    int rc = weft_group_submit(ctx->jobs, run_job, j, NULL);
    if (rc != 0)
        free(j);
    TU_EXPECT(rc == 0 || rc == -EAGAIN);
    return rc == 0;
}

/* Waits for room, as zstd's POOL_add does. */
static void POOL_add(POOL_ctx *ctx, POOL_function fn, void *opaque)
{
    while (!POOL_tryAdd(ctx, fn, opaque)) {
        struct pollfd p = {.fd = ctx->room, .events = POLLIN};
        TU_EXPECT(poll(&p, 1, -1) == 1);
    }
}

/* As zstd's: 0, or 1 when the pool could not be resized (it is then unchanged). The queue
 * bound stays as created: with queue size 0 it is the thread count at creation (max_inflight),
 * which a resize does not change. */
static int POOL_resize(POOL_ctx *ctx, size_t threads)
{
    return weft_pool_resize(ctx->pool, (unsigned)threads) == 0 ? 0 : 1;
}

static void POOL_joinJobs(POOL_ctx *ctx)
{
    TU_EXPECT(weft_group_wait(ctx->jobs, WEFT_FOREVER) == 0);
}

static void POOL_free(POOL_ctx *ctx)
{
    if (ctx == NULL)
        return;
    TU_EXPECT(weft_group_destroy(ctx->jobs) == 0);
    TU_EXPECT(weft_pool_destroy(ctx->pool) == 0);
    free(ctx);
}

/* --- jobs --- */

typedef struct order_data {
    pthread_mutex_t mu;
    int values[64];
    int n;
} order_data;

typedef struct order_job {
    order_data *d;
    int value;
} order_job;

static void append(void *arg)
{
    order_job *j = arg;
    pthread_mutex_lock(&j->d->mu);
    j->d->values[j->d->n++] = j->value;
    pthread_mutex_unlock(&j->d->mu);
}

START_TEST(test_order)
{
    /* _i: queue size 0, 1, 4 */
    static const size_t queues[] = {0, 1, 4};
    POOL_ctx *ctx = POOL_create(1, queues[_i]);
    ck_assert_ptr_nonnull(ctx);
    order_data d = {.n = 0};
    pthread_mutex_init(&d.mu, NULL);
    order_job jobs[64];
    for (int i = 0; i < 64; i++) {
        jobs[i] = (order_job){&d, i};
        POOL_add(ctx, append, &jobs[i]);
    }
    POOL_joinJobs(ctx);
    ck_assert_int_eq(d.n, 64);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(d.values[i], i);
    POOL_free(ctx);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static void add_one(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

START_TEST(test_join_jobs)
{
    POOL_ctx *ctx = POOL_create(4, 8);
    ck_assert_ptr_nonnull(ctx);
    atomic_int n;
    atomic_init(&n, 0);
    for (int round = 1; round <= 20; round++) {
        for (int i = 0; i < 50; i++)
            POOL_add(ctx, add_one, &n);
        POOL_joinJobs(ctx);
        ck_assert_int_eq(tu_ld(&n), 50 * round); /* all of them, before join returns */
    }
    POOL_free(ctx);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

typedef struct gate_job {
    tu_gate gate;
    atomic_int started;
} gate_job;

static void wait_gate(void *arg)
{
    gate_job *g = arg;
    atomic_fetch_add(&g->started, 1);
    TU_EXPECT(tu_gate_wait(&g->gate));
}

/* Queue size 0: a job only while a thread is free. */
START_TEST(test_queue_size_zero)
{
    enum { T = 2 };
    POOL_ctx *ctx = POOL_create(T, 0);
    ck_assert_ptr_nonnull(ctx);
    gate_job g;
    tu_gate_init(&g.gate);
    atomic_init(&g.started, 0);
    for (int i = 0; i < T; i++)
        ck_assert(POOL_tryAdd(ctx, wait_gate, &g));
    ck_assert(tu_wait_atomic_ge(&g.started, T, TU_PATIENCE_S));
    atomic_int n;
    atomic_init(&n, 0);
    for (int i = 0; i < 10; i++)
        ck_assert(!POOL_tryAdd(ctx, add_one, &n)); /* every thread busy */
    tu_gate_open(&g.gate);
    POOL_add(ctx, add_one, &n); /* waits for a free thread */
    POOL_joinJobs(ctx);
    ck_assert_int_eq(tu_ld(&n), 1);
    POOL_free(ctx);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Queue size K: K jobs wait, no more. */
START_TEST(test_queue_size_k)
{
    enum { K = 3 };
    POOL_ctx *ctx = POOL_create(1, K);
    ck_assert_ptr_nonnull(ctx);
    gate_job g;
    tu_gate_init(&g.gate);
    atomic_init(&g.started, 0);
    ck_assert(POOL_tryAdd(ctx, wait_gate, &g));
    ck_assert(tu_wait_atomic_ge(&g.started, 1, TU_PATIENCE_S));
    atomic_int n;
    atomic_init(&n, 0);
    for (int i = 0; i < K; i++)
        ck_assert(POOL_tryAdd(ctx, add_one, &n));
    ck_assert(!POOL_tryAdd(ctx, add_one, &n));
    ck_assert_uint_eq(weft_group_pending(ctx->jobs), K + 1);
    tu_gate_open(&g.gate);
    POOL_joinJobs(ctx);
    ck_assert_int_eq(tu_ld(&n), K);
    POOL_free(ctx);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Many adders at once; jobs count themselves in flight. */
typedef struct load {
    POOL_ctx *ctx;
    atomic_int in_flight, most, ran;
    int per_adder;
} load;

static void counted_job(void *arg)
{
    load *l = arg;
    int now = atomic_fetch_add(&l->in_flight, 1) + 1;
    int seen = atomic_load(&l->most);
    while (now > seen && !atomic_compare_exchange_weak(&l->most, &seen, now))
        ;
    for (volatile int i = 0; i < 1000; i++)
        ;
    atomic_fetch_add(&l->ran, 1);
    atomic_fetch_sub(&l->in_flight, 1);
}

static void *adder(void *arg)
{
    load *l = arg;
    for (int i = 0; i < l->per_adder; i++)
        POOL_add(l->ctx, counted_job, l);
    return NULL;
}

START_TEST(test_many_adders)
{
    /* _i: queue size 0 and 2 */
    enum { T = 3, ADDERS = 4 };
    size_t q = _i == 0 ? 0 : 2;
    load l = {.ctx = POOL_create(T, q), .per_adder = (int)(1000 * tu_stress_scale())};
    ck_assert_ptr_nonnull(l.ctx);
    atomic_init(&l.in_flight, 0);
    atomic_init(&l.most, 0);
    atomic_init(&l.ran, 0);
    pthread_t th[ADDERS];
    for (int i = 0; i < ADDERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, adder, &l), 0);
    for (int i = 0; i < ADDERS; i++)
        pthread_join(th[i], NULL);
    POOL_joinJobs(l.ctx);
    ck_assert_int_eq(tu_ld(&l.ran), ADDERS * l.per_adder);
    ck_assert_int_le(tu_ld(&l.most), T); /* jobs run on the T threads only */
    POOL_free(l.ctx);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* POOL_resize while four adders add: nothing is lost, and the pool ends at the last size. */
typedef struct resizer {
    POOL_ctx *ctx;
    atomic_int stop;
} resizer;

static void *resize_loop(void *arg)
{
    resizer *r = arg;
    static const size_t sizes[] = {1, 4, 2, 8, 3};
    for (int i = 0; !atomic_load(&r->stop); i++) {
        TU_EXPECT(POOL_resize(r->ctx, sizes[i % 5]) == 0);
        tu_sleep_ms(1);
    }
    return NULL;
}

START_TEST(test_resize_under_load)
{
    enum { ADDERS = 4 };
    load l = {.ctx = POOL_create(2, 4), .per_adder = (int)(1000 * tu_stress_scale())};
    ck_assert_ptr_nonnull(l.ctx);
    atomic_init(&l.in_flight, 0);
    atomic_init(&l.most, 0);
    atomic_init(&l.ran, 0);
    resizer r = {.ctx = l.ctx};
    atomic_init(&r.stop, 0);
    pthread_t rt, th[ADDERS];
    ck_assert_int_eq(pthread_create(&rt, NULL, resize_loop, &r), 0);
    for (int i = 0; i < ADDERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, adder, &l), 0);
    for (int i = 0; i < ADDERS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&r.stop, 1);
    pthread_join(rt, NULL);
    ck_assert_int_eq(POOL_resize(l.ctx, 3), 0);
    POOL_joinJobs(l.ctx);
    ck_assert_int_eq(tu_ld(&l.ran), ADDERS * l.per_adder);
    ck_assert_uint_eq(weft_pool_size(l.ctx->pool), 3);
    ck_assert_int_le(tu_ld(&l.most), 8); /* never more workers than the largest size */
    POOL_free(l.ctx);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The user's environment does not reach the library's pool; its allocator gets it all back. */
START_TEST(test_environment_and_allocator)
{
    tu_env_saved t = tu_env_set("WEFT_THREADS", "7");
    tu_env_saved b = tu_env_set("WEFT_BIND", "nonsense");
    long a0 = atomic_load(&shim_allocs), f0 = atomic_load(&shim_frees);
    POOL_ctx *ctx = POOL_create(2, 0);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_uint_eq(weft_pool_size(ctx->pool), 2);
    ck_assert_int_gt(atomic_load(&shim_allocs), a0);
    atomic_int n;
    atomic_init(&n, 0);
    POOL_add(ctx, add_one, &n);
    POOL_joinJobs(ctx);
    POOL_free(ctx);
    ck_assert_int_eq(atomic_load(&shim_allocs) - a0, atomic_load(&shim_frees) - f0);
    tu_env_restore(&b);
    tu_env_restore(&t);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("zstd_pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_order, 0, 3);
    tcase_add_test(tc, test_join_jobs);
    tcase_add_test(tc, test_queue_size_zero);
    tcase_add_test(tc, test_queue_size_k);
    tcase_add_loop_test(tc, test_many_adders, 0, 2);
    tcase_add_test(tc, test_resize_under_load);
    tcase_add_test(tc, test_environment_and_allocator);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
