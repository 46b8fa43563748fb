/* SPDX-License-Identifier: MIT */
/*
 * weft_pool_resize: growing and shrinking a pool while it runs.
 *
 * Invariants checked, never timings:
 *  - bad input is refused with -EINVAL (or -ESHUTDOWN after a shutdown) and changes nothing;
 *  - weft_pool_size gives the new size as soon as the call returns, a shrink included, and
 *    whoever reads the new size sees what the resizing thread wrote before the call;
 *  - a shrink returns while every worker is held by a task (it waits for none);
 *  - every task submitted while the pool grows and shrinks runs exactly once, and every future
 *    resolves; joins, scopes, loops and waits inside tasks give their exact results;
 *  - each thread calls on_worker_start and on_worker_stop once, in that order; retired workers'
 *    threads end; the statistics keep the counts of retired workers;
 *  - a retiring worker whose thread is blocked in a wait retires after it, and meanwhile the
 *    idle pool uses no CPU;
 *  - resizes racing a CANCEL shutdown, a DRAIN shutdown and destroy end cleanly.
 * Sizes scale with $WEFT_STRESS_SCALE.
 */
#include "testutil.h"

#include <sched.h>

/* ---------------------------------------------------------------------------------------------
 * Hooks and threads
 */

#define MAX_IDX 64

typedef struct hooks {
    atomic_int starts, stops;
    atomic_int live[MAX_IDX]; /* per index: starts minus stops */
} hooks;

static void hook_start(weft_pool *p, unsigned worker, void *data)
{
    hooks *h = data;
    (void)p;
    TU_EXPECT(worker < MAX_IDX);
    TU_EXPECT(weft_worker_index() >= 0); /* the hook runs as a worker */
    if (worker < MAX_IDX)
        atomic_fetch_add(&h->live[worker], 1);
    atomic_fetch_add(&h->starts, 1);
}

static void hook_stop(weft_pool *p, unsigned worker, void *data)
{
    hooks *h = data;
    (void)p;
    TU_EXPECT(weft_worker_index() >= 0);
    if (worker < MAX_IDX)
        TU_EXPECT(atomic_fetch_sub(&h->live[worker], 1) >= 1); /* a stop follows its start */
    atomic_fetch_add(&h->stops, 1);
}

static weft_pool *pool_with_hooks(unsigned n, hooks *h)
{
    memset(h, 0, sizeof(*h));
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = n;
    cfg.name = "rs";
    cfg.on_worker_start = hook_start;
    cfg.on_worker_stop = hook_stop;
    cfg.hook_data = h;
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    ck_assert_msg(rc == 0, "weft_pool_create = %d (%s)", rc, weft_strerror(rc));
    return p;
}

/* True once the process has `want` threads (an ended thread may linger for a moment). */
static bool threads_become(int want)
{
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    for (;;) {
        int n = tu_thread_count();
        if (n == want || n < 0)
            return true;
        if (tu_now_ns() > deadline)
            return false;
        tu_sleep_ms(1);
    }
}

static int resize_ok(weft_pool *p, unsigned n)
{
    int rc = weft_pool_resize(p, n);
    ck_assert_msg(rc == 0, "weft_pool_resize(%u) = %d (%s)", n, rc, weft_strerror(rc));
    ck_assert_uint_eq(weft_pool_size(p), n);
    return rc;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* ---------------------------------------------------------------------------------------------
 * Input and size
 */

START_TEST(test_bad_input)
{
    hooks h;
    weft_pool *p = pool_with_hooks(2, &h);
    ck_assert_int_eq(weft_pool_resize(NULL, 2), -EINVAL);
    ck_assert_int_eq(weft_pool_resize(p, 0), -EINVAL);
    ck_assert_int_eq(weft_pool_resize(p, WEFT_MAX_THREADS + 1), -EINVAL);
    ck_assert_int_eq(weft_pool_resize(p, UINT32_MAX), -EINVAL);
    ck_assert_uint_eq(weft_pool_size(p), 2);
    ck_assert_int_eq(weft_pool_resize(p, 2), 0); /* the same size: nothing to do */
    ck_assert_uint_eq(weft_pool_size(p), 2);
    ck_assert(tu_wait_atomic_ge(&h.starts, 2, TU_PATIENCE_S));
    ck_assert_int_eq(tu_ld(&h.starts), 2);
    ck_assert_int_eq(tu_ld(&h.stops), 0);
    tu_pool_check_works(p);

    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert_int_eq(weft_pool_resize(p, 4), -ESHUTDOWN);
    ck_assert_int_eq(weft_pool_resize(p, 1), -ESHUTDOWN);
    ck_assert_int_eq(weft_pool_resize(p, 0), -EINVAL); /* bad input first */
    ck_assert_uint_eq(weft_pool_size(p), 2);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&h.starts), 2);
    ck_assert_int_eq(tu_ld(&h.stops), 2);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static int record_index(void *arg, void **result)
{
    (void)arg;
    *result = (void *)(intptr_t)weft_worker_index();
    return 0;
}

START_TEST(test_size_hooks_threads)
{
    hooks h;
    weft_pool *p = pool_with_hooks(2, &h);
    ck_assert(tu_wait_atomic_ge(&h.starts, 2, TU_PATIENCE_S));
    /* counted now: a sanitizer's runtime may start a thread of its own with the first one */
    int base = tu_thread_count() - 2;
    resize_ok(p, 6);
    ck_assert(tu_wait_atomic_ge(&h.starts, 6, TU_PATIENCE_S));
    ck_assert(threads_become(base + 6));
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(tu_ld(&h.live[i]), 1);

    /* An idle pool shrinks at once: the workers above the size retire and their threads end. */
    resize_ok(p, 3);
    ck_assert(tu_wait_atomic_ge(&h.stops, 3, TU_PATIENCE_S));
    ck_assert(threads_become(base + 3));
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(tu_ld(&h.live[i]), i < 3 ? 1 : 0);
    for (int i = 0; i < 50; i++) {
        weft_future *f;
        ck_assert_int_eq(weft_submit(p, record_index, NULL, &f), 0);
        void *v;
        ck_assert_int_eq(weft_future_result(f, &v), 0);
        ck_assert_int_lt((intptr_t)v, 3); /* no retired worker runs tasks */
        ck_assert_int_ge((intptr_t)v, 0);
        weft_future_release(f);
    }

    /* Growing again starts new threads for retired workers, and for new ones. */
    resize_ok(p, 8);
    ck_assert(tu_wait_atomic_ge(&h.starts, 11, TU_PATIENCE_S));
    ck_assert(threads_become(base + 8));
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(tu_ld(&h.live[i]), 1);
    weft_stats s;
    ck_assert_int_eq(weft_pool_stats(p, &s, NULL, 0), 0);
    ck_assert_uint_eq(s.workers, 8);

    resize_ok(p, 1);
    ck_assert(tu_wait_atomic_ge(&h.stops, 10, TU_PATIENCE_S));
    ck_assert(threads_become(base + 1));
    ck_assert_int_eq(weft_pool_stats(p, &s, NULL, 0), 0);
    ck_assert_uint_eq(s.workers, 8); /* retired workers stay counted */
    tu_pool_check_works(p);
    tu_pool_free(p);
    ck_assert(threads_become(base));
    ck_assert_int_eq(tu_ld(&h.starts), 11);
    ck_assert_int_eq(tu_ld(&h.stops), 11);
    for (int i = 0; i < MAX_IDX; i++)
        ck_assert_int_eq(tu_ld(&h.live[i]), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A shrink does not wait for busy workers
 */

typedef struct held {
    tu_gate *gate;
    atomic_int *running;
} held;

static int held_task(void *arg, void **result)
{
    held *hd = arg;
    (void)result;
    atomic_fetch_add(hd->running, 1);
    TU_EXPECT(tu_gate_wait(hd->gate));
    return 0;
}

START_TEST(test_shrink_does_not_block)
{
    hooks h;
    weft_pool *p = pool_with_hooks(4, &h);
    tu_gate gate;
    tu_gate_init(&gate);
    atomic_int running = 0;
    held hd = {&gate, &running};
    weft_future *f[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(weft_submit(p, held_task, &hd, &f[i]), 0);
    ck_assert(tu_wait_atomic_ge(&running, 4, TU_PATIENCE_S)); /* every worker is held */

    /* Returns while the gate is closed: only this thread opens it. */
    ck_assert_int_eq(weft_pool_resize(p, 1), 0);
    ck_assert_uint_eq(weft_pool_size(p), 1);
    ck_assert(!tu_gate_is_open(&gate));
    ck_assert_int_eq(tu_ld(&h.stops), 0); /* nobody could retire yet */
    atomic_int count = 0;
    for (int i = 0; i < 20; i++) /* queued behind the gate: never lost */
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, NULL), 0);

    tu_gate_open(&gate);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(weft_future_result(f[i], NULL), 0);
        weft_future_release(f[i]);
    }
    ck_assert(tu_wait_atomic_ge(&count, 20, TU_PATIENCE_S));
    ck_assert(tu_wait_atomic_ge(&h.stops, 3, TU_PATIENCE_S));
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&count), 20);
    ck_assert_int_eq(tu_ld(&h.starts), tu_ld(&h.stops));
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shrink to one under load, then grow to eight
 */

typedef struct spot {
    atomic_int runs;
    atomic_int on[MAX_IDX]; /* indices it ran on */
} spot;

static int spot_task(void *arg, void **result)
{
    spot *s = arg;
    (void)result;
    atomic_fetch_add(&s->runs, 1);
    int i = weft_worker_index();
    TU_EXPECT(i >= 0 && i < MAX_IDX);
    if (i >= 0 && i < MAX_IDX)
        atomic_fetch_add(&s->on[i], 1);
    for (volatile int k = 0; k < 2000; k++)
        ;
    return 0;
}

typedef struct meet {
    atomic_int arrived;
    atomic_int seen[MAX_IDX];
    int want;
} meet;

/* Waits until `want` tasks run at once, each on a worker of its own: proves that many workers. */
static int meet_task(void *arg, void **result)
{
    meet *m = arg;
    (void)result;
    int i = weft_worker_index();
    TU_EXPECT(i >= 0 && i < MAX_IDX);
    if (i >= 0 && i < MAX_IDX)
        TU_EXPECT(atomic_fetch_add(&m->seen[i], 1) == 0); /* one at a time per worker */
    atomic_fetch_add(&m->arrived, 1);
    TU_EXPECT(tu_wait_atomic_ge(&m->arrived, m->want, TU_PATIENCE_S));
    return 0;
}

START_TEST(test_shrink_to_one_then_grow)
{
    hooks h;
    weft_pool *p = pool_with_hooks(4, &h);
    int n = (int)(3000 * tu_stress_scale());
    spot *s = calloc((size_t)n, sizeof(*s));
    weft_future **f = calloc((size_t)n, sizeof(*f));
    ck_assert(s != NULL && f != NULL);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(weft_submit(p, spot_task, &s[i], &f[i]), 0);
        if (i == n / 3)
            resize_ok(p, 1); /* under load */
    }
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(weft_future_result(f[i], NULL), 0);
        ck_assert_int_eq(tu_ld(&s[i].runs), 1);
        weft_future_release(f[i]);
    }
    ck_assert(tu_wait_atomic_ge(&h.stops, 3, TU_PATIENCE_S));

    /* Only worker 0 is left: everything from now on runs there. */
    for (int i = 0; i < 100; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        ck_assert_int_eq(weft_submit(p, spot_task, &s[i], &f[i]), 0);
    }
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(weft_future_result(f[i], NULL), 0);
        ck_assert_int_eq(tu_ld(&s[i].on[0]), 1);
        weft_future_release(f[i]);
    }

    resize_ok(p, 8);
    meet m;
    memset(&m, 0, sizeof(m));
    m.want = 8;
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(weft_submit(p, meet_task, &m, &f[i]), 0);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(weft_future_result(f[i], NULL), 0);
        weft_future_release(f[i]);
    }
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(tu_ld(&m.seen[i]), 1);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&h.starts), tu_ld(&h.stops));
    ck_assert_int_eq(tu_ld(&h.starts), 4 + 7);
    free(s);
    free(f);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Statistics
 */

START_TEST(test_stats_kept)
{
    weft_pool *p = tu_pool_new(4, "st");
    atomic_int count = 0;
    int n1 = 400, n2 = 300;
    for (int i = 0; i < n1; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, NULL), 0);
    ck_assert(tu_wait_atomic_ge(&count, n1, TU_PATIENCE_S));
    weft_worker_stats per[8];
    weft_stats before;
    /* Quiescent once every count is in: the last task's counter is written before it returns. */
    for (int64_t dl = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);;) {
        ck_assert_int_eq(weft_pool_stats(p, &before, per, 8), 0);
        if (before.total.tasks_run == (uint64_t)n1 || tu_now_ns() > dl)
            break;
        tu_sleep_ms(1);
    }
    ck_assert_uint_eq(before.total.tasks_run, (uint64_t)n1);
    resize_ok(p, 1);
    for (int i = 0; i < n2; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, NULL), 0);
    ck_assert(tu_wait_atomic_ge(&count, n1 + n2, TU_PATIENCE_S));
    weft_stats after;
    weft_worker_stats per2[8];
    for (int64_t dl = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);;) {
        ck_assert_int_eq(weft_pool_stats(p, &after, per2, 8), 0);
        if (after.total.tasks_run == (uint64_t)(n1 + n2) || tu_now_ns() > dl)
            break;
        tu_sleep_ms(1);
    }
    ck_assert_uint_eq(after.workers, 4);
    ck_assert_uint_eq(after.total.tasks_run, (uint64_t)(n1 + n2));
    ck_assert_uint_eq(after.submitted_outside, (uint64_t)(n1 + n2));
    ck_assert_uint_eq(after.submitted_outside + after.total.submitted,
                      after.total.tasks_run + after.total.tasks_skipped + after.cancelled_queued);
    for (int i = 1; i < 4; i++) /* a retired worker's counts do not go back */
        ck_assert_uint_ge(per2[i].tasks_run, per[i].tasks_run);
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Resizes racing submissions from outside
 */

typedef struct rec {
    atomic_int runs;
    weft_future *f;
} rec;

static int rec_task(void *arg, void **result)
{
    rec *r = arg;
    (void)result;
    atomic_fetch_add(&r->runs, 1);
    return 0;
}

typedef struct submitter {
    weft_pool *p;
    rec *recs;
    int n;
    atomic_int *detached_runs;
    int detached;
} submitter;

static void *submit_loop(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < s->n; i++) {
        TU_EXPECT(weft_submit(s->p, rec_task, &s->recs[i], &s->recs[i].f) == 0);
        if (i % 4 == 0) {
            TU_EXPECT(weft_submit(s->p, tu_task_count, s->detached_runs, NULL) == 0);
            s->detached++;
        }
        if (i % 64 == 0)
            sched_yield();
    }
    return NULL;
}

typedef struct resizer {
    weft_pool *p;
    atomic_int stop;
    unsigned max;
    uint64_t rng;
    int resizes;
    bool until_shutdown; /* go on until -ESHUTDOWN rather than until stop */
} resizer;

static void *resize_loop(void *arg)
{
    resizer *r = arg;
    while (r->until_shutdown || !atomic_load(&r->stop)) {
        unsigned n = 1 + (unsigned)(xorshift(&r->rng) % r->max);
        int rc = weft_pool_resize(r->p, n);
        if (rc == -ESHUTDOWN && r->until_shutdown)
            break;
        TU_EXPECT(rc == 0);
        r->resizes++;
        if (xorshift(&r->rng) % 4 == 0)
            tu_sleep_ns(100000);
        else
            sched_yield();
    }
    return NULL;
}

START_TEST(test_resize_racing_submissions)
{
    hooks h;
    weft_pool *p = pool_with_hooks(3, &h);
    int n = (int)(4000 * tu_stress_scale());
    atomic_int detached_runs = 0;
    submitter subs[2];
    pthread_t st[2], rt;
    resizer rz = {.p = p, .max = 8, .rng = 0x1234567};
    atomic_init(&rz.stop, 0);
    ck_assert_int_eq(pthread_create(&rt, NULL, resize_loop, &rz), 0);
    for (int k = 0; k < 2; k++) {
        subs[k] = (submitter){p, calloc((size_t)n, sizeof(rec)), n, &detached_runs, 0};
        ck_assert_ptr_nonnull(subs[k].recs);
        ck_assert_int_eq(pthread_create(&st[k], NULL, submit_loop, &subs[k]), 0);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(st[k], NULL);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < n; i++) {
            rec *r = &subs[k].recs[i];
            ck_assert_ptr_nonnull(r->f);
            ck_assert_int_eq(weft_future_result(r->f, NULL), 0);
            ck_assert_int_eq(tu_ld(&r->runs), 1);
            weft_future_release(r->f);
        }
    }
    int detached = subs[0].detached + subs[1].detached;
    ck_assert(tu_wait_atomic_ge(&detached_runs, detached, TU_PATIENCE_S));
    atomic_store(&rz.stop, 1);
    pthread_join(rt, NULL);
    ck_assert_int_gt(rz.resizes, 0);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&detached_runs), detached);
    ck_assert_int_eq(tu_ld(&h.starts), tu_ld(&h.stops));
    for (int k = 0; k < 2; k++)
        free(subs[k].recs);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Resizes racing joins, scopes, loops and waits inside tasks
 */

typedef struct fib {
    int n;
    long r;
} fib;

static void fib_join(void *arg)
{
    fib *x = arg;
    if (x->n < 2) {
        x->r = x->n;
        return;
    }
    fib a = {x->n - 1, 0}, b = {x->n - 2, 0};
    weft_join(fib_join, &a, fib_join, &b);
    x->r = a.r + b.r;
}

static void fib_offer(void *arg)
{
    fib *x = arg;
    if (x->n < 2) {
        x->r = x->n;
        return;
    }
    fib a = {x->n - 1, 0}, b = {x->n - 2, 0};
    weft_frame fr;
    weft_offer(&fr, fib_offer, &b);
    fib_offer(&a);
    if (weft_reclaim(&fr))
        fib_offer(&b);
    x->r = a.r + b.r;
}

static long fib_serial(int n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static void add_one(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static int scope_task(void *arg, void **result)
{
    (void)arg;
    atomic_int hits = 0;
    weft_scope s;
    weft_spawn slot[16];
    weft_scope_init(&s);
    for (int i = 0; i < 16; i++)
        weft_scope_spawn(&s, &slot[i], add_one, &hits);
    weft_scope_wait(&s);
    *result = (void *)(intptr_t)atomic_load(&hits);
    return 0;
}

static int fib_task(void *arg, void **result)
{
    fib *x = arg;
    (void)result;
    if (x->n % 2 == 0)
        fib_join(x);
    else
        fib_offer(x);
    return 0;
}

typedef struct inner {
    weft_pool *p;
    int depth;
} inner;

/* Submits children from inside and waits on each (weft_future_result on a worker). */
static int nest_task(void *arg, void **result)
{
    inner *in = arg;
    if (in->depth == 0) {
        *result = (void *)(intptr_t)1;
        return 0;
    }
    inner kids[3];
    weft_future *f[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = (inner){in->p, in->depth - 1};
        TU_EXPECT(weft_submit(in->p, nest_task, &kids[i], &f[i]) == 0);
    }
    intptr_t sum = 1;
    for (int i = 0; i < 3; i++) {
        void *v = NULL;
        TU_EXPECT(weft_future_result(f[i], &v) == 0);
        sum += (intptr_t)v;
        weft_future_release(f[i]);
    }
    *result = (void *)sum;
    return 0;
}

typedef struct marks {
    atomic_uchar *hit;
} marks;

static void mark_body(size_t lo, size_t hi, void *ctx)
{
    marks *m = ctx;
    for (size_t i = lo; i < hi; i++)
        atomic_fetch_add(&m->hit[i], 1);
}

START_TEST(test_resize_racing_forkjoin)
{
    hooks h;
    weft_pool *p = pool_with_hooks(2, &h);
    resizer rz = {.p = p, .max = 6, .rng = 0x9abcdef};
    atomic_init(&rz.stop, 0);
    pthread_t rt;
    ck_assert_int_eq(pthread_create(&rt, NULL, resize_loop, &rz), 0);
    int rounds = (int)(6 * tu_stress_scale());
    size_t nloop = 200000;
    marks m = {calloc(nloop, sizeof(atomic_uchar))};
    ck_assert_ptr_nonnull(m.hit);
    for (int r = 0; r < rounds; r++) {
        fib x = {20 + (r % 2), 0};
        ck_assert_int_eq(weft_pool_run(p, fib_task, &x, NULL), 0);
        ck_assert_int_eq(x.r, fib_serial(x.n));

        void *v = NULL;
        ck_assert_int_eq(weft_pool_run(p, scope_task, NULL, &v), 0);
        ck_assert_int_eq((intptr_t)v, 16);

        memset(m.hit, 0, nloop);
        ck_assert_int_eq(weft_parallel_for(p, 0, nloop, 0, mark_body, &m), 0);
        for (size_t i = 0; i < nloop; i++)
            ck_assert_msg(atomic_load(&m.hit[i]) == 1, "index %zu ran %d times", i,
                          (int)atomic_load(&m.hit[i]));

        inner top = {p, 5};
        ck_assert_int_eq(weft_pool_run(p, nest_task, &top, &v), 0);
        ck_assert_int_eq((intptr_t)v, 364); /* 1 + 3 + 9 + ... + 243 */
    }
    atomic_store(&rz.stop, 1);
    pthread_join(rt, NULL);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&h.starts), tu_ld(&h.stops));
    free(m.hit);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Resizing from inside: a task, and a worker blocked in a wait
 */

static int shrink_from_task(void *arg, void **result)
{
    weft_pool *p = arg;
    (void)result;
    TU_EXPECT(weft_pool_resize(p, 1) == 0);
    TU_EXPECT(weft_pool_size(p) == 1);
    TU_EXPECT(weft_pool_resize(p, 3) == 0);
    TU_EXPECT(weft_pool_resize(p, 1) == 0);
    return 0;
}

typedef struct blocked {
    weft_future *promise;
    atomic_int where;   /* the worker index the task waits on, plus 1 */
    atomic_int waiting; /* it is about to wait */
} blocked;

/* On worker 1, waits on the promise (its thread blocks and lends worker 1); elsewhere returns. */
static int block_on_promise(void *arg, void **result)
{
    blocked *b = arg;
    (void)result;
    int i = weft_worker_index();
    if (i != 1)
        return 0;
    atomic_store(&b->where, i + 1);
    atomic_store(&b->waiting, 1);
    TU_EXPECT(weft_future_wait(b->promise, WEFT_FOREVER) == 0);
    return 0;
}

/* On worker 0, holds it (at most 50 ms) until the blocker waits, so that a blocker submitted
 * meanwhile goes to worker 1 rather than to a worker 0 that spins for work; elsewhere returns. */
static int hold_worker0(void *arg, void **result)
{
    blocked *b = arg;
    (void)result;
    int64_t until = tu_now_ns() + TU_MS(50);
    while (weft_worker_index() == 0 && atomic_load(&b->waiting) == 0 && tu_now_ns() < until)
        tu_sleep_ms(1);
    return 0;
}

START_TEST(test_resize_from_inside)
{
    hooks h;
    weft_pool *p = pool_with_hooks(4, &h);
    ck_assert_int_eq(weft_pool_run(p, shrink_from_task, p, NULL), 0);
    ck_assert_uint_eq(weft_pool_size(p), 1);
    ck_assert(tu_wait_atomic_ge(&h.stops, 3, TU_PATIENCE_S));
    tu_pool_check_works(p);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&h.starts), tu_ld(&h.stops));
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A thread that reads the size a resize set sees what the resizer wrote before its call. The
 * note is a plain variable: under ThreadSanitizer a relaxed size would make this a data race. */
struct publish {
    weft_pool *pool;
    unsigned want;
    int note; /* written by the test's thread before each resize, plain */
    int seen; /* what the task read once the size was want */
    atomic_int ready;
};

static int watch_size(void *arg, void **result)
{
    struct publish *pb = arg;
    (void)result;
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    atomic_store(&pb->ready, 1);
    while (weft_pool_size(pb->pool) != pb->want) {
        if (tu_now_ns() > deadline)
            return -ETIMEDOUT;
        sched_yield();
    }
    pb->seen = pb->note;
    return 0;
}

START_TEST(test_size_publishes)
{
    hooks h;
    weft_pool *p = pool_with_hooks(3, &h);
    static const unsigned sizes[] = {1, 3, 2, 4};
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct publish pb = {.pool = p, .want = sizes[i]};
        weft_future *f;
        ck_assert_int_eq(weft_submit(p, watch_size, &pb, &f), 0);
        ck_assert(tu_wait_atomic_ge(&pb.ready, 1, TU_PATIENCE_S)); /* it polls already */
        pb.note = (int)i + 1;
        resize_ok(p, sizes[i]);
        ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
        ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
        weft_future_release(f);
        ck_assert_int_eq(pb.seen, (int)i + 1);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_retire_after_wait)
{
    hooks h;
    weft_pool *p = pool_with_hooks(2, &h);
    blocked b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(weft_future_create(&b.promise), 0);
    weft_future *task = NULL;
    /* Until one lands on worker 1 (the one a shrink to 1 retires). */
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (tu_ld(&b.waiting) == 0) {
        ck_assert(tu_now_ns() < deadline);
        weft_future *f, *hold;
        ck_assert_int_eq(weft_submit(p, hold_worker0, &b, &hold), 0);
        ck_assert_int_eq(weft_submit(p, block_on_promise, &b, &f), 0);
        ck_assert(tu_wait_done(hold, TU_PATIENCE_S));
        weft_future_release(hold);
        ck_assert(tu_wait_done(f, 0.01) || tu_ld(&b.waiting) != 0);
        if (tu_ld(&b.waiting) != 0 && !weft_future_done(f)) {
            task = f;
            break;
        }
        ck_assert(tu_wait_done(f, TU_PATIENCE_S)); /* it ran elsewhere, or is about to wait */
        if (tu_ld(&b.waiting) != 0) {
            task = f;
            break;
        }
        weft_future_release(f);
    }
    ck_assert_ptr_nonnull(task);
    int starts = tu_ld(&h.starts);
    resize_ok(p, 1);

    /* Worker 1 is to retire, but its task waits: its holder parks meanwhile. */
    tu_sleep_ms(20);
    int64_t cpu0 = tu_process_cpu_ns();
    tu_sleep_ms(300);
    int64_t cpu = tu_process_cpu_ns() - cpu0;
    ck_assert_msg(cpu < TU_MS(50), "a shrinking pool waiting for a lender used %.1f ms of CPU",
                  cpu / 1e6);
    ck_assert_int_le(tu_ld(&h.stops), tu_ld(&h.starts) - 2); /* workers 0 and 1 still run */

    ck_assert_int_eq(weft_future_set_result(b.promise, NULL), 0);
    ck_assert_int_eq(weft_future_result(task, NULL), 0);
    weft_future_release(task);
    ck_assert(tu_wait_atomic_ge(&h.stops, 1, TU_PATIENCE_S)); /* worker 1 retired */
    ck_assert_int_eq(tu_ld(&h.live[1]) + tu_ld(&h.live[0]), tu_ld(&h.starts) - tu_ld(&h.stops));
    tu_pool_check_works(p);
    weft_future_release(b.promise);
    tu_pool_free(p);
    ck_assert_int_ge(tu_ld(&h.starts), starts);
    ck_assert_int_eq(tu_ld(&h.starts), tu_ld(&h.stops));
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Resizes racing shutdown and destroy
 */

typedef struct crec {
    atomic_int runs;
    weft_future *f;
} crec;

typedef struct csub {
    weft_pool *p;
    crec *recs;
    int n;
    int accepted;
    int refused_before; /* -ESHUTDOWN is the only refusal */
} csub;

static int crec_task(void *arg, void **result)
{
    crec *r = arg;
    (void)result;
    atomic_fetch_add(&r->runs, 1);
    for (volatile int k = 0; k < 500; k++)
        ;
    return 0;
}

static void *csub_loop(void *arg)
{
    csub *s = arg;
    for (int i = 0; i < s->n; i++) {
        int rc = weft_submit(s->p, crec_task, &s->recs[i], &s->recs[i].f);
        if (rc == -ESHUTDOWN)
            break;
        TU_EXPECT(rc == 0);
        s->accepted++;
    }
    return NULL;
}

START_TEST(test_resize_racing_shutdown)
{
    int rounds = (int)(8 * tu_stress_scale());
    for (int round = 0; round < rounds; round++) {
        hooks h;
        weft_pool *p = pool_with_hooks(1 + (unsigned)(round % 4), &h);
        bool cancel = round % 2 == 0;
        int n = 3000;
        csub s = {p, calloc((size_t)n, sizeof(crec)), n, 0, 0};
        ck_assert_ptr_nonnull(s.recs);
        resizer rz = {.p = p, .max = 6, .rng = 0x51 + (uint64_t)round, .until_shutdown = true};
        atomic_init(&rz.stop, 0);
        pthread_t rt, stt;
        ck_assert_int_eq(pthread_create(&rt, NULL, resize_loop, &rz), 0);
        ck_assert_int_eq(pthread_create(&stt, NULL, csub_loop, &s), 0);
        tu_sleep_ms(2 + round % 5);
        ck_assert_int_eq(weft_pool_shutdown(p, cancel ? WEFT_SHUTDOWN_CANCEL : WEFT_SHUTDOWN_DRAIN),
                         0);
        pthread_join(stt, NULL);
        pthread_join(rt, NULL);
        ck_assert_int_eq(weft_pool_resize(p, 2), -ESHUTDOWN);
        tu_pool_free(p);
        int ran = 0, cancelled = 0;
        for (int i = 0; i < s.accepted; i++) {
            crec *r = &s.recs[i];
            ck_assert(weft_future_done(r->f));
            weft_state st = weft_future_state(r->f);
            if (st == WEFT_DONE) {
                ck_assert_int_eq(tu_ld(&r->runs), 1);
                ran++;
            } else {
                ck_assert_int_eq(st, WEFT_CANCELLED);
                ck_assert(cancel);
                ck_assert_int_eq(tu_ld(&r->runs), 0);
                cancelled++;
            }
            weft_future_release(r->f);
        }
        ck_assert_int_eq(ran + cancelled, s.accepted);
        ck_assert_int_eq(tu_ld(&h.starts), tu_ld(&h.stops));
        free(s.recs);
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A task resizes until the pool refuses: destroy's shutdown ends it. */
static int resize_until_refused(void *arg, void **result)
{
    resizer *r = arg;
    (void)result;
    atomic_store(&r->stop, 1); /* running */
    resize_loop(r);
    return 0;
}

START_TEST(test_resize_racing_destroy)
{
    int rounds = (int)(10 * tu_stress_scale());
    for (int round = 0; round < rounds; round++) {
        hooks h;
        weft_pool *p = pool_with_hooks(2, &h);
        resizer rz = {.p = p, .max = 5, .rng = 0x77 + (uint64_t)round, .until_shutdown = true};
        atomic_init(&rz.stop, 0);
        atomic_int count = 0;
        ck_assert_int_eq(weft_submit(p, resize_until_refused, &rz, NULL), 0);
        for (int i = 0; i < 200; i++)
            ck_assert_int_eq(weft_submit(p, tu_task_count, &count, NULL), 0);
        ck_assert(tu_wait_atomic_ge(&rz.stop, 1, TU_PATIENCE_S));
        tu_sleep_ms(round % 3);
        tu_pool_free(p); /* DRAIN: the resizing task sees -ESHUTDOWN and returns */
        ck_assert_int_eq(tu_ld(&count), 200);
        ck_assert_int_eq(tu_ld(&h.starts), tu_ld(&h.stops));
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Traces and binding
 */

START_TEST(test_trace_tracks)
{
    char dir[] = "/tmp/weft-resize-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/trace.json", dir);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    cfg.trace_path = path;
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    resize_ok(p, 4);
    atomic_int count = 0;
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, NULL), 0);
    ck_assert(tu_wait_atomic_ge(&count, 100, TU_PATIENCE_S));
    resize_ok(p, 2);
    tu_pool_free(p);
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    char *text = tu_read_fd(fileno(fp), NULL);
    fclose(fp);
    ck_assert_ptr_nonnull(text);
    int tracks = 0;
    for (const char *c = text; (c = strstr(c, "\"thread_name\"")) != NULL; c++)
        tracks++;
    ck_assert_int_eq(tracks, 4); /* one per worker that ever ran */
    free(text);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_bound_grow)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    cfg.bind = WEFT_BIND_COMPACT;
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    resize_ok(p, 3);
    meet m;
    memset(&m, 0, sizeof(m));
    m.want = 3;
    weft_future *f[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft_submit(p, meet_task, &m, &f[i]), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weft_future_result(f[i], NULL), 0);
        weft_future_release(f[i]);
    }
    resize_ok(p, 1);
    resize_ok(p, 2);
    tu_pool_check_works(p);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static Suite *resize_suite(void)
{
    Suite *s = suite_create("resize");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_size_hooks_threads);
    tcase_add_test(tc, test_shrink_does_not_block);
    tcase_add_test(tc, test_stats_kept);
    tcase_add_test(tc, test_resize_from_inside);
    tcase_add_test(tc, test_size_publishes);
    tcase_add_test(tc, test_retire_after_wait);
    tcase_add_test(tc, test_trace_tracks);
    tcase_add_test(tc, test_bound_grow);
    suite_add_tcase(s, tc);
    TCase *load = tcase_create("load");
    tcase_set_timeout(load, 240);
    tcase_add_test(load, test_shrink_to_one_then_grow);
    tcase_add_test(load, test_resize_racing_submissions);
    tcase_add_test(load, test_resize_racing_forkjoin);
    tcase_add_test(load, test_resize_racing_shutdown);
    tcase_add_test(load, test_resize_racing_destroy);
    suite_add_tcase(s, load);
    return s;
}

int main(void)
{
    return tu_run_suite(resize_suite());
}
