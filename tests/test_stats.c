/* SPDX-License-Identifier: MIT */
/*
 * Statistics, machine queries and bind plans.
 *
 * Only invariants, never timings: once a pool is quiescent (every future waited for) the counts
 * are exact, so they are compared with what the test itself did. External submissions from
 * several threads and submissions from inside tasks; the header's equation
 *     submitted_outside + total.submitted == total.tasks_run + total.tasks_skipped
 *                                            + cancelled_queued
 * with nothing cancelled, with pending futures cancelled and with a CANCEL shutdown's sweep;
 * joins and scope spawns counted by the test; steals <= steal_attempts, joins_stolen <= joins;
 * inject_taken == submitted_outside; the per-worker array sums to the total and is filled only
 * up to n; busy + helping + idle roughly a worker's lifetime (a sanity check with wide slack,
 * against wall time the test measures); NULL arguments.
 *
 * weft_stats_write_json: the output is one RFC 8259 JSON text (parsed strictly with jansson,
 * tests/jsoncheck.h) without NUL bytes and ending with a newline, with the header's keys, each
 * once, `workers` per-worker objects and in each object exactly the fields of WEFT_WORKER_STATS
 * (the expected names come from the X-macro itself), values equal to weft_pool_stats; bad and
 * unwritable descriptors. weft_stats_write_json_file: the JSON in order with the stream's other
 * output. $WEFT_STATS: a file per pool (%n, %p, or numbered when the process already wrote one).
 *
 * weft_machine_query and weft_bind_plan: sane values, CPUs inside the affinity mask, -EINVAL.
 *
 * Tasks and helper threads record failures with TU_EXPECT; the test thread asserts.
 */
#include "jsoncheck.h"
#include "testutil.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * The field table, seen from the test
 */

#define ST_NAME_(name, doc) #name,
static const char *const st_fields[] = {WEFT_WORKER_STATS(ST_NAME_)};
#undef ST_NAME_
#define ST_NFIELDS (sizeof(st_fields) / sizeof(st_fields[0]))

_Static_assert(sizeof(weft_worker_stats) == ST_NFIELDS * sizeof(uint64_t),
               "weft_worker_stats holds exactly the fields of WEFT_WORKER_STATS");

/* Field i of w, in table order. */
static uint64_t st_get(const weft_worker_stats *w, size_t i)
{
    size_t k = 0;
#define ST_GET_(name, doc)                                                                         \
    if (k++ == i)                                                                                  \
        return w->name;
    WEFT_WORKER_STATS(ST_GET_)
#undef ST_GET_
    return UINT64_MAX;
}

/* Sets field i of w, in table order. */
static void st_set(weft_worker_stats *w, size_t i, uint64_t v)
{
    size_t k = 0;
#define ST_SET_(name, doc)                                                                         \
    if (k++ == i)                                                                                  \
        w->name = v;
    WEFT_WORKER_STATS(ST_SET_)
#undef ST_SET_
}

static bool st_is_time(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, "_ns") == 0;
}

/* Fields that keep changing on a quiescent pool: times, and what idle workers do while they
 * look for work before sleeping: their attempts, their parks, and the steals of queue entries
 * left behind by tasks that a wait claimed and ran (weft__claim), which a thief takes and
 * drops later (counted as a steal, neither run nor skipped). Every other count is exact once
 * the pool is quiescent. */
static bool st_is_settled(const char *name)
{
    return !st_is_time(name) && strcmp(name, "steal_attempts") != 0 && strcmp(name, "parks") != 0 &&
           strcmp(name, "steals") != 0;
}

/* Reads the statistics of p (test thread only): out, and per[0..workers). */
static void st_read(weft_pool *p, weft_stats *out, weft_worker_stats *per, size_t n)
{
    int rc = weft_pool_stats(p, out, per, n);
    ck_assert_msg(rc == 0, "weft_pool_stats = %d (%s)", rc, weft_strerror(rc));
}

/* The header's equation, with the numbers in the message. */
static void st_assert_equation(const weft_stats *s)
{
    uint64_t in = s->submitted_outside + s->total.submitted;
    uint64_t out = s->total.tasks_run + s->total.tasks_skipped + s->cancelled_queued;
    ck_assert_msg(in == out,
                  "submitted_outside %llu + submitted %llu != tasks_run %llu + tasks_skipped %llu "
                  "+ cancelled_queued %llu",
                  (unsigned long long)s->submitted_outside, (unsigned long long)s->total.submitted,
                  (unsigned long long)s->total.tasks_run,
                  (unsigned long long)s->total.tasks_skipped,
                  (unsigned long long)s->cancelled_queued);
}

/* per[0..n) sums field by field to total; steals <= steal_attempts and joins_stolen <= joins
 * everywhere. */
static void st_assert_sums(const weft_stats *s, const weft_worker_stats *per, unsigned n)
{
    for (size_t f = 0; f < ST_NFIELDS; f++) {
        uint64_t sum = 0;
        for (unsigned i = 0; i < n; i++)
            sum += st_get(&per[i], f);
        ck_assert_msg(sum == st_get(&s->total, f), "sum of per_worker[].%s = %llu, total %llu",
                      st_fields[f], (unsigned long long)sum,
                      (unsigned long long)st_get(&s->total, f));
    }
    for (unsigned i = 0; i < n; i++) {
        ck_assert_msg(per[i].steals <= per[i].steal_attempts,
                      "worker %u: steals %llu > steal_attempts %llu", i,
                      (unsigned long long)per[i].steals, (unsigned long long)per[i].steal_attempts);
    }
    ck_assert_uint_le(s->total.steals, s->total.steal_attempts);
    ck_assert_uint_le(s->total.joins_stolen, s->total.joins);
}

/* Settled fields of a and b are equal (two reads of a quiescent pool). */
static void st_assert_settled_equal(const weft_worker_stats *a, const weft_worker_stats *b,
                                    const char *what)
{
    for (size_t f = 0; f < ST_NFIELDS; f++) {
        if (!st_is_settled(st_fields[f]))
            continue;
        ck_assert_msg(st_get(a, f) == st_get(b, f), "%s.%s: %llu then %llu", what, st_fields[f],
                      (unsigned long long)st_get(a, f), (unsigned long long)st_get(b, f));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Tasks
 */

typedef struct outer_arg {
    weft_pool *pool;
    int inner; /* tasks it submits from inside and waits for */
    atomic_int *ran;
} outer_arg;

static int outer_task(void *arg, void **result)
{
    (void)result;
    outer_arg *o = arg;
    weft_future *fs[8] = {NULL};
    TU_EXPECT(o->inner <= 8);
    for (int i = 0; i < o->inner && i < 8; i++)
        TU_EXPECT(weft_submit(o->pool, tu_task_count, o->ran, &fs[i]) == 0);
    for (int i = 0; i < o->inner && i < 8; i++) {
        if (fs[i] != NULL) {
            TU_EXPECT(weft_future_result(fs[i], NULL) == 0);
            weft_future_release(fs[i]);
        }
    }
    atomic_fetch_add(o->ran, 1);
    return 0;
}

#define EXT_THREADS    4
#define EXT_PER_THREAD 48

typedef struct submitter {
    weft_pool *pool;
    int index;
    atomic_int *ran;
    outer_arg args[EXT_PER_THREAD];
    weft_future *fs[EXT_PER_THREAD];
} submitter;

static int inner_count(int thread, int i)
{
    return (thread + i) % 4;
}

/* Helper thread: submits EXT_PER_THREAD outer tasks, then waits for all of them. */
static void *submitter_main(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < EXT_PER_THREAD; i++) {
        s->args[i] = (outer_arg){s->pool, inner_count(s->index, i), s->ran};
        s->fs[i] = NULL;
        TU_EXPECT(weft_submit(s->pool, outer_task, &s->args[i], &s->fs[i]) == 0);
    }
    for (int i = 0; i < EXT_PER_THREAD; i++) {
        if (s->fs[i] != NULL) {
            TU_EXPECT(weft_future_result(s->fs[i], NULL) == 0);
            weft_future_release(s->fs[i]);
        }
    }
    return NULL;
}

/* A gate task that says when it has started. */
typedef struct gate_arg {
    tu_gate gate;
    atomic_int started;
    weft_pool *pool;
    int detached; /* tasks it submits from inside, detached, before it waits */
} gate_arg;

static void gate_arg_init(gate_arg *g, weft_pool *pool, int detached)
{
    tu_gate_init(&g->gate);
    atomic_init(&g->started, 0);
    g->pool = pool;
    g->detached = detached;
}

static int noop_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static int gate_task(void *arg, void **result)
{
    (void)result;
    gate_arg *g = arg;
    for (int i = 0; i < g->detached; i++)
        TU_EXPECT(weft_submit(g->pool, noop_task, NULL, NULL) == 0);
    atomic_store(&g->started, 1);
    TU_EXPECT(tu_gate_wait(&g->gate));
    return 0;
}

/* Test thread only: submits a gate task and waits until a worker runs it. */
static weft_future *start_gate(weft_pool *p, gate_arg *g)
{
    weft_future *f = NULL;
    int rc = weft_submit(p, gate_task, g, &f);
    ck_assert_msg(rc == 0, "weft_submit = %d (%s)", rc, weft_strerror(rc));
    ck_assert_msg(tu_wait_atomic_ge(&g->started, 1, TU_PATIENCE_S), "the gate task never started");
    return f;
}

/* Test thread only: polls until the equation holds with tasks_skipped == skipped (queued
 * cancelled tasks are counted when a worker pops them, after their futures have finished). */
static void wait_skipped(weft_pool *p, uint64_t skipped, weft_stats *s)
{
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    for (;;) {
        st_read(p, s, NULL, 0);
        if (s->total.tasks_skipped >= skipped &&
            s->submitted_outside + s->total.submitted ==
                s->total.tasks_run + s->total.tasks_skipped + s->cancelled_queued)
            return;
        ck_assert_msg(tu_now_ns() < deadline,
                      "tasks_skipped stayed at %llu (want %llu), tasks_run %llu",
                      (unsigned long long)s->total.tasks_skipped, (unsigned long long)skipped,
                      (unsigned long long)s->total.tasks_run);
        tu_sleep_ms(1);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Fork-join with counted joins and one join whose second half is certainly stolen
 */

typedef struct fj_ctx {
    weft_pool *pool;
    atomic_long joins; /* weft_join calls and scope spawns made on a worker */
    atomic_int b_started;
    atomic_int b_worker;
    int a_worker;
    int kicks;         /* tasks submitted from inside (to wake a thief) */
    atomic_int kicked; /* of those, how many ran */
} fj_ctx;

typedef struct fj_node {
    fj_ctx *c;
    int n;
    long result;
} fj_node;

static void fj_fib(void *arg)
{
    fj_node *nd = arg;
    if (nd->n < 2) {
        nd->result = nd->n;
        return;
    }
    fj_node a = {nd->c, nd->n - 1, 0}, b = {nd->c, nd->n - 2, 0};
    TU_EXPECT(weft_worker_index() >= 0);
    atomic_fetch_add(&nd->c->joins, 1);
    weft_join(fj_fib, &a, fj_fib, &b);
    nd->result = a.result + b.result;
}

/* First half: keeps its worker busy until the second half has started elsewhere. The task it
 * submits lands on this worker's deque above the frame and wakes an idle worker for sure (a
 * join's own wake-up may be skipped); that thief takes the frame, the oldest entry, first. */
static void steal_a(void *arg)
{
    fj_ctx *c = arg;
    c->a_worker = weft_worker_index();
    TU_EXPECT(weft_submit(c->pool, tu_task_count, &c->kicked, NULL) == 0);
    c->kicks++;
    TU_EXPECT(tu_wait_atomic_ge(&c->b_started, 1, TU_PATIENCE_S));
}

static void steal_b(void *arg)
{
    fj_ctx *c = arg;
    atomic_store(&c->b_worker, weft_worker_index());
    atomic_store(&c->b_started, 1);
}

static void spawn_fib(void *arg)
{
    fj_fib(arg);
}

#define FJ_FIB    16
#define FJ_SPAWNS 6

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

/* The root task: a fib with a join at every level, a scope of FJ_SPAWNS spawns each computing a
 * smaller fib, and (with 2+ workers) one join whose second half must be stolen. */
static int fj_root(void *arg, void **result)
{
    (void)result;
    fj_ctx *c = arg;
    fj_node root = {c, FJ_FIB, 0};
    fj_fib(&root);
    TU_EXPECT(root.result == fib_serial(FJ_FIB));

    weft_scope s;
    weft_spawn slot[FJ_SPAWNS];
    fj_node nodes[FJ_SPAWNS];
    weft_scope_init(&s);
    for (int i = 0; i < FJ_SPAWNS; i++) {
        nodes[i] = (fj_node){c, 8 + i, 0};
        atomic_fetch_add(&c->joins, 1);
        weft_scope_spawn(&s, &slot[i], spawn_fib, &nodes[i]);
    }
    weft_scope_wait(&s);
    for (int i = 0; i < FJ_SPAWNS; i++)
        TU_EXPECT(nodes[i].result == fib_serial(8 + i));

    if (weft_pool_size(c->pool) > 1) {
        atomic_fetch_add(&c->joins, 1);
        weft_join(steal_a, c, steal_b, c);
        TU_EXPECT(atomic_load(&c->b_worker) != c->a_worker);
    }
    return 0;
}

static void fj_ctx_init(fj_ctx *c, weft_pool *p)
{
    c->pool = p;
    atomic_init(&c->joins, 0);
    atomic_init(&c->b_started, 0);
    atomic_init(&c->b_worker, -1);
    c->a_worker = -1;
    c->kicks = 0;
    atomic_init(&c->kicked, 0);
}

/* Test thread only: runs fj_root as a task and waits for it. */
static void fj_run(weft_pool *p, fj_ctx *c)
{
    weft_future *f = NULL;
    int rc = weft_submit(p, fj_root, c, &f);
    ck_assert_msg(rc == 0, "weft_submit = %d (%s)", rc, weft_strerror(rc));
    rc = weft_future_result(f, NULL);
    ck_assert_msg(rc == 0, "fork-join task = %d (%s)", rc, weft_strerror(rc));
    weft_future_release(f);
    /* The task steal_a submitted may still be queued when the root returns (a thief can take
     * it after the frame): the counts settle once it ran. */
    ck_assert(tu_wait_atomic_ge(&c->kicked, c->kicks, TU_PATIENCE_S));
}

/* ---------------------------------------------------------------------------------------------
 * Counts on a quiescent pool
 */

START_TEST(test_stats_fresh_pool)
{
    weft_pool *p = tu_pool_new(3, "st");
    weft_stats s;
    weft_worker_stats per[3];
    st_read(p, &s, per, 3);
    ck_assert_uint_eq(s.workers, 3);
    ck_assert_uint_eq(s.submitted_outside, 0);
    ck_assert_uint_eq(s.cancelled_queued, 0);
    for (size_t f = 0; f < ST_NFIELDS; f++) {
        if (st_is_settled(st_fields[f]))
            ck_assert_msg(st_get(&s.total, f) == 0, "total.%s = %llu on a fresh pool", st_fields[f],
                          (unsigned long long)st_get(&s.total, f));
    }
    st_assert_equation(&s);
    st_assert_sums(&s, per, 3);
    tu_pool_free(p);
}
END_TEST

START_TEST(test_stats_counts_submissions)
{
    tu_failures_reset();
    static const unsigned sizes[] = {1, 2, 4};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        unsigned nw = sizes[k];
        weft_pool *p = tu_pool_new(nw, "st");
        atomic_int ran;
        atomic_init(&ran, 0);
        submitter *subs = calloc(EXT_THREADS, sizeof(*subs));
        ck_assert_ptr_nonnull(subs);
        pthread_t th[EXT_THREADS];
        uint64_t n_outside = 0, m_inside = 0;
        for (int t = 0; t < EXT_THREADS; t++) {
            subs[t].pool = p;
            subs[t].index = t;
            subs[t].ran = &ran;
            for (int i = 0; i < EXT_PER_THREAD; i++) {
                n_outside++;
                m_inside += (uint64_t)inner_count(t, i);
            }
            ck_assert_int_eq(pthread_create(&th[t], NULL, submitter_main, &subs[t]), 0);
        }
        for (int t = 0; t < EXT_THREADS; t++)
            ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        TU_ASSERT_NO_FAILURES();
        ck_assert_int_eq(tu_ld(&ran), (int)(n_outside + m_inside));

        /* every future has been waited for: the pool is quiescent */
        weft_stats s, s2;
        weft_worker_stats per[4], per2[4];
        st_read(p, &s, per, nw);
        ck_assert_uint_eq(s.workers, nw);
        ck_assert_uint_eq(s.submitted_outside, n_outside);
        ck_assert_uint_eq(s.total.submitted, m_inside);
        ck_assert_uint_eq(s.total.tasks_run, n_outside + m_inside);
        ck_assert_uint_eq(s.total.tasks_skipped, 0);
        ck_assert_uint_eq(s.cancelled_queued, 0);
        ck_assert_uint_eq(s.total.inject_taken, s.submitted_outside);
        ck_assert_uint_eq(s.total.joins, 0);
        ck_assert_uint_eq(s.total.joins_stolen, 0);
        if (nw == 1) {
            ck_assert_uint_eq(s.total.steals, 0);
            ck_assert_uint_eq(s.total.steal_attempts, 0);
        }
        st_assert_equation(&s);
        st_assert_sums(&s, per, nw);

        /* exact means stable: a second read gives the same counts */
        tu_sleep_ms(20);
        st_read(p, &s2, per2, nw);
        ck_assert_uint_eq(s2.submitted_outside, s.submitted_outside);
        ck_assert_uint_eq(s2.cancelled_queued, s.cancelled_queued);
        st_assert_settled_equal(&s.total, &s2.total, "total");
        for (unsigned i = 0; i < nw; i++)
            st_assert_settled_equal(&per[i], &per2[i], "per_worker[i]");
        st_assert_sums(&s2, per2, nw);

        free(subs);
        tu_pool_free(p);
    }
}
END_TEST

START_TEST(test_stats_cancelled_pending)
{
    tu_failures_reset();
    enum { NTASKS = 40 };
    weft_pool *p = tu_pool_new(1, "st");
    gate_arg g;
    gate_arg_init(&g, p, 0);
    weft_future *gf = start_gate(p, &g);

    /* the only worker is held by the gate: these all stay queued */
    atomic_int ran;
    atomic_init(&ran, 0);
    weft_future *fs[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, &fs[i]), 0);
    int cancelled = 0;
    for (int i = 0; i < NTASKS; i += 3) {
        ck_assert_int_eq(weft_future_cancel(fs[i]), 1);
        cancelled++;
    }
    tu_gate_open(&g.gate);
    ck_assert_int_eq(weft_future_result(gf, NULL), 0);
    for (int i = 0; i < NTASKS; i++) {
        int rc = weft_future_result(fs[i], NULL);
        ck_assert_int_eq(rc, i % 3 == 0 ? -ECANCELED : 0);
    }
    ck_assert_int_eq(tu_ld(&ran), NTASKS - cancelled);

    weft_stats s;
    weft_worker_stats per[1];
    wait_skipped(p, (uint64_t)cancelled, &s);
    st_read(p, &s, per, 1);
    ck_assert_uint_eq(s.submitted_outside, NTASKS + 1);
    ck_assert_uint_eq(s.total.tasks_skipped, cancelled);
    ck_assert_uint_eq(s.total.tasks_run, NTASKS + 1 - cancelled);
    ck_assert_uint_eq(s.cancelled_queued, 0);
    ck_assert_uint_eq(s.total.inject_taken, s.submitted_outside);
    st_assert_equation(&s);
    st_assert_sums(&s, per, 1);
    TU_ASSERT_NO_FAILURES();

    weft_future_release(gf);
    for (int i = 0; i < NTASKS; i++)
        weft_future_release(fs[i]);
    tu_pool_free(p);
}
END_TEST

START_TEST(test_stats_shutdown_cancel_sweep)
{
    tu_failures_reset();
    enum { NOUT = 30, NIN = 7 };
    weft_pool *p = tu_pool_new(1, "st");
    gate_arg g;
    /* the gate task leaves NIN detached tasks on its worker's deque, then blocks the worker */
    gate_arg_init(&g, p, NIN);
    weft_future *gf = start_gate(p, &g);
    atomic_int ran;
    atomic_init(&ran, 0);
    weft_future *fs[NOUT];
    for (int i = 0; i < NOUT; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, &fs[i]), 0);

    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    for (int i = 0; i < NOUT; i++)
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_CANCELLED);

    weft_stats s;
    weft_worker_stats per[1];
    st_read(p, &s, per, 1);
    ck_assert_uint_eq(s.submitted_outside, NOUT + 1);
    ck_assert_uint_eq(s.total.submitted, NIN);
    ck_assert_uint_eq(s.cancelled_queued, NOUT + NIN);
    ck_assert_uint_eq(s.total.tasks_run, 1);
    ck_assert_uint_eq(s.total.tasks_skipped, 0);
    ck_assert_uint_eq(s.total.inject_taken, 1);
    st_assert_equation(&s);
    st_assert_sums(&s, per, 1);

    tu_gate_open(&g.gate);
    ck_assert_int_eq(weft_future_result(gf, NULL), 0);
    st_read(p, &s, per, 1);
    ck_assert_uint_eq(s.cancelled_queued, NOUT + NIN);
    ck_assert_uint_eq(s.total.tasks_run, 1);
    st_assert_equation(&s);
    st_assert_sums(&s, per, 1);
    ck_assert_int_eq(tu_ld(&ran), 0);
    TU_ASSERT_NO_FAILURES();

    weft_future_release(gf);
    for (int i = 0; i < NOUT; i++)
        weft_future_release(fs[i]);
    tu_pool_free(p);
}
END_TEST

START_TEST(test_stats_joins)
{
    tu_failures_reset();
    static const unsigned sizes[] = {1, 2, 3};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        unsigned nw = sizes[k];
        weft_pool *p = tu_pool_new(nw, "st");
        fj_ctx c;
        fj_ctx_init(&c, p);
        fj_run(p, &c);
        TU_ASSERT_NO_FAILURES();

        weft_stats s;
        weft_worker_stats per[3];
        st_read(p, &s, per, nw);
        long j = atomic_load(&c.joins);
        ck_assert_msg(s.total.joins == (uint64_t)j,
                      "pool of %u: total.joins = %llu, the test made %ld", nw,
                      (unsigned long long)s.total.joins, j);
        ck_assert_uint_le(s.total.joins_stolen, s.total.joins);
        ck_assert_uint_le(s.total.steals, s.total.steal_attempts);
        ck_assert_uint_eq(s.submitted_outside, 1);
        ck_assert_uint_eq(s.total.submitted, (uint64_t)c.kicks);
        ck_assert_uint_eq(s.total.tasks_run, 1 + (uint64_t)c.kicks);
        /* the root; and the task steal_a submitted, if the join moved it off the deque (a
         * submission left above a frame goes to the injection queue) */
        ck_assert_uint_ge(s.total.inject_taken, 1);
        ck_assert_uint_le(s.total.inject_taken, 1 + (uint64_t)c.kicks);
        if (nw == 1) {
            ck_assert_uint_eq(s.total.joins_stolen, 0);
            ck_assert_uint_eq(s.total.steals, 0);
        } else {
            /* the join in fj_root had its second half run by another worker */
            ck_assert_uint_ge(s.total.joins_stolen, 1);
            ck_assert_uint_ge(s.total.steals, 1);
        }
        st_assert_equation(&s);
        st_assert_sums(&s, per, nw);
        tu_pool_free(p);
    }
}
END_TEST

START_TEST(test_stats_per_worker_partial)
{
    tu_failures_reset();
    enum { NW = 4 };
    weft_pool *p = tu_pool_new(NW, "st");
    fj_ctx c;
    fj_ctx_init(&c, p);
    fj_run(p, &c);
    TU_ASSERT_NO_FAILURES();

    weft_stats all;
    weft_worker_stats full[NW];
    st_read(p, &all, full, NW);

    /* n smaller than workers: only per[0..n) is written */
    for (size_t n = 0; n <= NW + 1; n++) {
        weft_worker_stats per[NW + 2];
        memset(per, 0xA5, sizeof(per));
        weft_stats s;
        st_read(p, &s, per, n);
        size_t filled = n < NW ? n : NW;
        for (size_t i = 0; i < NW + 2; i++) {
            if (i < filled) {
                st_assert_settled_equal(&full[i], &per[i], "per_worker[i]");
            } else {
                const unsigned char *b = (const unsigned char *)&per[i];
                for (size_t k = 0; k < sizeof(per[i]); k++)
                    ck_assert_msg(b[k] == 0xA5, "n = %zu: per_worker[%zu] was written", n, i);
            }
        }
        st_assert_settled_equal(&all.total, &s.total, "total");
    }

    /* out NULL, per_worker NULL, both NULL: accepted */
    weft_worker_stats per[NW];
    ck_assert_int_eq(weft_pool_stats(p, NULL, per, NW), 0);
    for (unsigned i = 0; i < NW; i++)
        st_assert_settled_equal(&full[i], &per[i], "per_worker[i]");
    weft_stats s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(weft_pool_stats(p, &s, NULL, NW), 0);
    ck_assert_uint_eq(s.workers, NW);
    st_assert_settled_equal(&all.total, &s.total, "total");
    ck_assert_int_eq(weft_pool_stats(p, NULL, NULL, 0), 0);
    ck_assert_int_eq(weft_pool_stats(p, NULL, NULL, NW), 0);

    tu_pool_free(p);
}
END_TEST

START_TEST(test_stats_einval)
{
    weft_stats s;
    weft_worker_stats per[2];
    memset(&s, 0x5A, sizeof(s));
    ck_assert_int_eq(weft_pool_stats(NULL, &s, per, 2), -EINVAL);
    ck_assert_int_eq(weft_pool_stats(NULL, NULL, NULL, 0), -EINVAL);
    /* a call that fails changes nothing */
    const unsigned char *b = (const unsigned char *)&s;
    for (size_t k = 0; k < sizeof(s); k++)
        ck_assert_uint_eq(b[k], 0x5A);
    ck_assert_int_eq(weft_stats_write_json(NULL, 1), -EINVAL);

    weft_pool *p = tu_pool_new(1, "st");
    ck_assert_int_eq(weft_stats_write_json(p, -1), -EINVAL);
    ck_assert_int_eq(weft_stats_write_json(p, -100), -EINVAL);
    tu_pool_free(p);
}
END_TEST

/* A sanity check, not a timing assertion: each worker's busy + helping + idle is its lifetime,
 * which lies within the wall time the test measured around the pool's whole life so far. The
 * bounds are very wide on purpose. */
START_TEST(test_stats_times_cover_lifetime)
{
    tu_failures_reset();
    enum { NW = 2 };
    int64_t t0 = tu_now_ns();
    weft_pool *p = tu_pool_new(NW, "st");
    weft_future *fs[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_sleep_ms, (void *)(intptr_t)20, &fs[i]), 0);
    fj_ctx c;
    fj_ctx_init(&c, p);
    fj_run(p, &c);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        weft_future_release(fs[i]);
    }
    tu_sleep_ms(200);
    weft_stats s;
    weft_worker_stats per[NW];
    st_read(p, &s, per, NW);
    int64_t wall = tu_now_ns() - t0;
    TU_ASSERT_NO_FAILURES();
    uint64_t sum_all = 0;
    for (unsigned i = 0; i < NW; i++) {
        uint64_t life = per[i].busy_ns + per[i].helping_ns + per[i].idle_ns;
        sum_all += life;
        ck_assert_msg((double)life >= 0.5 * (double)wall && (double)life <= 1.5 * (double)wall,
                      "worker %u: busy %llu + helping %llu + idle %llu = %llu ns, wall time %lld "
                      "ns",
                      i, (unsigned long long)per[i].busy_ns, (unsigned long long)per[i].helping_ns,
                      (unsigned long long)per[i].idle_ns, (unsigned long long)life,
                      (long long)wall);
    }
    ck_assert_uint_eq(s.total.busy_ns + s.total.helping_ns + s.total.idle_ns, sum_all);
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * JSON
 */

/* Writes p's statistics through weft_stats_write_json into a temporary file; returns the text. */
static char *json_via_tmpfile(weft_pool *p, size_t *len)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    int fd = fileno(tmp);
    int rc = weft_stats_write_json(p, fd);
    ck_assert_msg(rc == 0, "weft_stats_write_json = %d (%s)", rc, weft_strerror(rc));
    ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
    char *text = tu_read_fd(fd, len);
    ck_assert_ptr_nonnull(text);
    fclose(tmp);
    return text;
}

/* The same through a pipe (the output of a small pool fits the pipe's buffer). */
static char *json_via_pipe(weft_pool *p, size_t *len)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    int rc = weft_stats_write_json(p, fds[1]);
    ck_assert_msg(rc == 0, "weft_stats_write_json = %d (%s)", rc, weft_strerror(rc));
    close(fds[1]);
    char *text = tu_read_fd(fds[0], len);
    ck_assert_ptr_nonnull(text);
    close(fds[0]);
    return text;
}

static json_t *json_parse_or_fail(const char *text, size_t len)
{
    json_error_t err;
    json_t *v = jc_parse(text, len, &err);
    ck_assert_msg(v != NULL, "not valid JSON (line %d, column %d: %s):\n%.2000s", err.line,
                  err.column, err.text, text);
    return v;
}

/* The member key of obj, present (and, as jc_parse rejects duplicate names, present once) and a
 * non-negative integer. */
static uint64_t json_u64(const json_t *obj, const char *key, const char *where)
{
    uint64_t x = 0;
    ck_assert_msg(json_object_get(obj, key) != NULL, "%s: no \"%s\"", where, key);
    ck_assert_msg(jc_u64(json_object_get(obj, key), &x), "%s: \"%s\" is not a non-negative integer",
                  where, key);
    return x;
}

/* A worker object: exactly the fields of the table, each an integer between lo's and hi's value
 * (lo == hi for counts that are settled), and parsed into *out. */
static void json_check_worker(const json_t *o, const weft_worker_stats *lo,
                              const weft_worker_stats *hi, weft_worker_stats *out,
                              const char *where)
{
    ck_assert_msg(json_is_object(o), "%s is not an object", where);
    ck_assert_msg(json_object_size(o) == ST_NFIELDS,
                  "%s has %zu members, WEFT_WORKER_STATS has %zu fields", where,
                  json_object_size(o), ST_NFIELDS);
    for (size_t f = 0; f < ST_NFIELDS; f++) {
        uint64_t x = json_u64(o, st_fields[f], where);
        st_set(out, f, x);
        if (st_is_time(st_fields[f]))
            continue; /* derived from clocks read at different moments */
        ck_assert_msg(st_get(lo, f) <= x && x <= st_get(hi, f),
                      "%s.%s = %llu, weft_pool_stats before %llu and after %llu", where,
                      st_fields[f], (unsigned long long)x, (unsigned long long)st_get(lo, f),
                      (unsigned long long)st_get(hi, f));
    }
}

/* Test thread only: checks the JSON text against two reads of the statistics taken before and
 * after it was written. */
static void json_check(const char *text, size_t len, const weft_stats *before,
                       const weft_worker_stats *pb, const weft_stats *after,
                       const weft_worker_stats *pa)
{
    json_t *root = json_parse_or_fail(text, len);
    ck_assert_msg(json_is_object(root), "the top level is not an object");
    static const char *const keys[] = {"weft_version",     "workers", "submitted_outside",
                                       "cancelled_queued", "total",   "per_worker"};
    /* Each once: present here, and jc_parse rejected the text if any name appeared twice. */
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_msg(json_object_get(root, keys[i]) != NULL, "no \"%s\"", keys[i]);
    const char *version = json_string_value(json_object_get(root, "weft_version"));
    ck_assert_ptr_nonnull(version);
    ck_assert_str_eq(version, weft_version());

    uint64_t workers = json_u64(root, "workers", "top level");
    ck_assert_uint_eq(workers, before->workers);
    ck_assert_uint_eq(json_u64(root, "submitted_outside", "top level"), before->submitted_outside);
    ck_assert_uint_eq(json_u64(root, "cancelled_queued", "top level"), before->cancelled_queued);

    weft_worker_stats total, sum;
    memset(&sum, 0, sizeof(sum));
    json_check_worker(json_object_get(root, "total"), &before->total, &after->total, &total,
                      "total");

    const json_t *arr = json_object_get(root, "per_worker");
    ck_assert_msg(json_is_array(arr), "per_worker is not an array");
    ck_assert_msg(json_array_size(arr) == workers, "per_worker has %zu entries, workers is %llu",
                  json_array_size(arr), (unsigned long long)workers);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char where[48];
        snprintf(where, sizeof(where), "per_worker[%zu]", i);
        weft_worker_stats w;
        json_check_worker(json_array_get(arr, i), &pb[i], &pa[i], &w, where);
        for (size_t f = 0; f < ST_NFIELDS; f++)
            st_set(&sum, f, st_get(&sum, f) + st_get(&w, f));
    }
    for (size_t f = 0; f < ST_NFIELDS; f++) {
        if (st_is_settled(st_fields[f]))
            ck_assert_msg(st_get(&sum, f) == st_get(&total, f),
                          "JSON: sum of per_worker[].%s = %llu, total %llu", st_fields[f],
                          (unsigned long long)st_get(&sum, f),
                          (unsigned long long)st_get(&total, f));
    }
    json_decref(root);
}

static void json_round(weft_pool *p, unsigned nw, bool use_pipe)
{
    weft_stats before, after;
    weft_worker_stats *pb = calloc(nw, sizeof(*pb)), *pa = calloc(nw, sizeof(*pa));
    ck_assert_ptr_nonnull(pb);
    ck_assert_ptr_nonnull(pa);
    st_read(p, &before, pb, nw);
    size_t len = 0;
    char *text = use_pipe ? json_via_pipe(p, &len) : json_via_tmpfile(p, &len);
    st_read(p, &after, pa, nw);
    ck_assert_uint_eq(strlen(text), len);
    ck_assert_msg(len > 0 && text[len - 1] == '\n', "the JSON text does not end with a newline");
    json_check(text, len, &before, pb, &after, pa);
    free(text);
    free(pb);
    free(pa);
}

START_TEST(test_stats_json_matches_stats)
{
    tu_failures_reset();
    enum { NW = 3 };
    weft_pool *p = tu_pool_new(NW, "st");
    json_round(p, NW, false); /* fresh */

    fj_ctx c;
    fj_ctx_init(&c, p);
    fj_run(p, &c);
    weft_future *fs[20];
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(weft_submit(p, noop_task, NULL, &fs[i]), 0);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        weft_future_release(fs[i]);
    }
    TU_ASSERT_NO_FAILURES();
    json_round(p, NW, false);
    json_round(p, NW, true);
    tu_pool_free(p);
}
END_TEST

/* Enough workers that the text is larger than any small internal buffer. */
START_TEST(test_stats_json_many_workers)
{
    enum { NW = 40 };
    weft_pool *p = tu_pool_new(NW, "st");
    weft_future *fs[NW];
    for (int i = 0; i < NW; i++)
        ck_assert_int_eq(weft_submit(p, noop_task, NULL, &fs[i]), 0);
    for (int i = 0; i < NW; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        weft_future_release(fs[i]);
    }
    json_round(p, NW, false);
    tu_pool_free(p);
}
END_TEST

START_TEST(test_stats_json_bad_fd)
{
    weft_pool *p = tu_pool_new(2, "st");

    /* open for reading only */
    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(ro, 0);
    int rc = weft_stats_write_json(p, ro);
    ck_assert_msg(rc < 0, "write_json to a read-only fd = %d", rc);
    ck_assert_int_eq(rc, -EBADF);
    close(ro);

    /* a descriptor just closed (nothing in this test opens one meanwhile) */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[0]);
    close(fds[1]);
    rc = weft_stats_write_json(p, fds[1]);
    ck_assert_msg(rc < 0, "write_json to a closed fd = %d", rc);
    ck_assert_int_eq(rc, -EBADF);

    /* a pipe nobody reads any more: EPIPE (with SIGPIPE ignored, as servers do) */
    struct sigaction ign, old;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    ck_assert_int_eq(sigaction(SIGPIPE, &ign, &old), 0);
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[0]);
    rc = weft_stats_write_json(p, fds[1]);
    close(fds[1]);
    sigaction(SIGPIPE, &old, NULL);
    ck_assert_int_eq(rc, -EPIPE);

    /* the pool is unaffected */
    tu_pool_check_works(p);
    size_t len;
    char *text = json_via_tmpfile(p, &len);
    json_t *v = json_parse_or_fail(text, len);
    json_decref(v);
    free(text);
    tu_pool_free(p);
}
END_TEST

/* The validator itself (jansson with jsoncheck.h's flags): it must reject what RFC 8259 rejects,
 * or the tests above prove nothing. */
START_TEST(test_json_validator)
{
    static const char *const good[] = {
        "{}",
        "[]",
        " \t\r\n{\"a\": [1, -0, 0.5, -1.25e+10, 2E-3, 1e5, true, false, null, \"x\"]} \n",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "0",
        "9223372036854775807",
        "[[[[[]]]]]",
        "{\"a\":{\"b\":{\"c\":[{}]}}}",
    };
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "[1, 2",
        "[1, 2,]",
        "{\"a\": 1,}",
        "{a: 1}",
        "{'a': 1}",
        "{\"a\" 1}",
        "[01]",
        "[1.]",
        "[.5]",
        "[+1]",
        "[1e]",
        "[-]",
        "[0x10]",
        "[NaN]",
        "[Infinity]",
        "[tru]",
        "[True]",
        "[nul]",
        "\"abc",
        "\"a\tb\"",
        "\"\\x41\"",
        "\"\\u12G4\"",
        "\"\\u12\"",
        "\"\xc3\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xff\"",
        "{} {}",
        "[1] x",
        "[1]\f",
        "// comment\n{}",
        /* Valid RFC 8259, refused by the flags: a member name twice. */
        "{\"a\": 1, \"a\": 2}",
        "[{\"b\": {\"a\": 1, \"a\": 2}}]",
        /* Valid RFC 8259, refused by jansson and never written by weft (jsoncheck.h). */
        "\"\\u0000\"",
        "\"\\uD800\"",
        "18446744073709551615",
        "1E400",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        json_error_t err;
        json_t *v = jc_parse(good[i], strlen(good[i]), &err);
        ck_assert_msg(v != NULL, "valid JSON rejected (%s): %s", err.text, good[i]);
        json_decref(v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *v = jc_parse(bad[i], strlen(bad[i]), NULL);
        ck_assert_msg(v == NULL, "invalid JSON accepted: %s", bad[i]);
    }
    /* a NUL byte, raw or in a string */
    ck_assert_ptr_null(jc_parse("[1]\0", 4, NULL));
    ck_assert_ptr_null(jc_parse("\"a\0b\"", 5, NULL));
    /* deep nesting is refused, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    ck_assert_ptr_nonnull(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    ck_assert_ptr_null(jc_parse(deep, 2 * depth, NULL));
    free(deep);

    /* queries */
    const char *t = "{\"s\": \"\\u00e9\", \"n\": 42, \"f\": 1.5, \"e\": 1e5, \"neg\": -3, "
                    "\"a\": [1, 2]}";
    json_t *v = jc_parse(t, strlen(t), NULL);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(json_string_value(json_object_get(v, "s")), "\xc3\xa9");
    uint64_t u;
    ck_assert(jc_u64(json_object_get(v, "n"), &u));
    ck_assert_uint_eq(u, 42);
    ck_assert(!jc_u64(json_object_get(v, "f"), &u));
    ck_assert(!jc_u64(json_object_get(v, "e"), &u));
    ck_assert(!jc_u64(json_object_get(v, "neg"), &u));
    ck_assert(!jc_u64(json_object_get(v, "s"), &u));
    ck_assert(!jc_u64(json_object_get(v, "missing"), &u));
    double d;
    ck_assert(jc_num(json_object_get(v, "f"), &d));
    ck_assert(d == 1.5);
    ck_assert(jc_num(json_object_get(v, "n"), &d));
    ck_assert(d == 42);
    ck_assert(!jc_num(json_object_get(v, "s"), &d));
    ck_assert_uint_eq(json_array_size(json_object_get(v, "a")), 2);
    ck_assert_ptr_null(json_object_get(v, "missing"));
    json_decref(v);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Machine queries and bind plans
 */

static unsigned affinity_count(cpu_set_t *mask)
{
    CPU_ZERO(mask);
    ck_assert_int_eq(sched_getaffinity(0, sizeof(*mask), mask), 0);
    return (unsigned)CPU_COUNT(mask);
}

START_TEST(test_machine_query)
{
    ck_assert_int_eq(weft_machine_query(NULL), -EINVAL);
    cpu_set_t mask;
    unsigned ncpu = affinity_count(&mask);

    weft_machine_info mi;
    memset(&mi, 0xEE, sizeof(mi));
    ck_assert_int_eq(weft_machine_query(&mi), 0);
    ck_assert_uint_ge(mi.default_threads, 1);
    ck_assert_uint_le(mi.default_threads, WEFT_MAX_THREADS);
    ck_assert_uint_ge(mi.affinity_cpus, 1);
    ck_assert_uint_eq(mi.affinity_cpus, ncpu);
    /* one per core this process may use, affinity mask and cgroup quota respected */
    ck_assert_uint_le(mi.default_threads, mi.affinity_cpus);
    if (mi.cgroup_cpus > 0)
        ck_assert_uint_le(mi.default_threads, mi.cgroup_cpus);
    if (mi.hwloc) {
        ck_assert_uint_ge(mi.cores, 1);
        ck_assert_uint_ge(mi.pus, mi.cores);
        ck_assert_uint_le(mi.default_threads, mi.cores);
    } else {
        ck_assert_uint_eq(mi.cores, 0);
    }

    /* default_threads ignores $WEFT_THREADS */
    tu_env_saved e = tu_env_set("WEFT_THREADS", "7");
    weft_machine_info mi2;
    ck_assert_int_eq(weft_machine_query(&mi2), 0);
    tu_env_restore(&e);
    ck_assert_uint_eq(mi2.default_threads, mi.default_threads);

    /* a pool with threads = 0 and no $WEFT_THREADS gets default_threads workers */
    e = tu_env_set("WEFT_THREADS", NULL);
    weft_pool *p = NULL;
    int rc = weft_pool_create(NULL, &p);
    tu_env_restore(&e);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(weft_pool_size(p), mi.default_threads);
    tu_pool_free(p);
}
END_TEST

START_TEST(test_bind_plan)
{
    cpu_set_t mask;
    unsigned ncpu = affinity_count(&mask);
    unsigned counts[] = {1, 2, 3, ncpu, 2 * ncpu + 1, 64};
    int *cpus = malloc(sizeof(int) * (WEFT_MAX_THREADS + 1));
    ck_assert_ptr_nonnull(cpus);

    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        unsigned n = counts[k];
        for (unsigned i = 0; i < n; i++)
            cpus[i] = 12345;
        ck_assert_int_eq(weft_bind_plan(WEFT_BIND_NONE, n, cpus), 0);
        for (unsigned i = 0; i < n; i++)
            ck_assert_int_eq(cpus[i], -1);

        static const weft_bind pinned[] = {WEFT_BIND_COMPACT, WEFT_BIND_SPREAD};
        for (size_t b = 0; b < 2; b++) {
            for (unsigned i = 0; i <= n; i++)
                cpus[i] = -12345;
            int rc = weft_bind_plan(pinned[b], n, cpus);
            ck_assert_msg(rc == 0, "weft_bind_plan(%d, %u) = %d (%s)", (int)pinned[b], n, rc,
                          weft_strerror(rc));
            for (unsigned i = 0; i < n; i++) {
                ck_assert_msg(cpus[i] >= 0 && cpus[i] < CPU_SETSIZE && CPU_ISSET(cpus[i], &mask),
                              "bind %d, %u workers: worker %u on CPU %d, not in the affinity mask",
                              (int)pinned[b], n, i, cpus[i]);
            }
            ck_assert_int_eq(cpus[n], -12345); /* nothing past n */
            /* as many distinct CPUs as workers while there are enough */
            if (n <= ncpu) {
                for (unsigned i = 0; i < n; i++)
                    for (unsigned j = i + 1; j < n; j++)
                        ck_assert_msg(cpus[i] != cpus[j],
                                      "bind %d, %u workers on %u CPUs: workers %u and %u share "
                                      "CPU %d",
                                      (int)pinned[b], n, ncpu, i, j, cpus[i]);
            }
        }
    }
    ck_assert_int_eq(weft_bind_plan(WEFT_BIND_COMPACT, WEFT_MAX_THREADS, cpus), 0);
    for (unsigned i = 0; i < WEFT_MAX_THREADS; i++)
        ck_assert(cpus[i] >= 0 && CPU_ISSET(cpus[i], &mask));

    /* bad arguments: -EINVAL, nothing written */
    for (unsigned i = 0; i < 4; i++)
        cpus[i] = 777;
    ck_assert_int_eq(weft_bind_plan((weft_bind)3, 4, cpus), -EINVAL);
    ck_assert_int_eq(weft_bind_plan((weft_bind)-1, 4, cpus), -EINVAL);
    ck_assert_int_eq(weft_bind_plan(WEFT_BIND_COMPACT, 0, cpus), -EINVAL);
    ck_assert_int_eq(weft_bind_plan(WEFT_BIND_NONE, 0, cpus), -EINVAL);
    ck_assert_int_eq(weft_bind_plan(WEFT_BIND_SPREAD, WEFT_MAX_THREADS + 1, cpus), -EINVAL);
    ck_assert_int_eq(weft_bind_plan(WEFT_BIND_NONE, 4, NULL), -EINVAL);
    ck_assert_int_eq(weft_bind_plan(WEFT_BIND_SPREAD, 4, NULL), -EINVAL);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_int_eq(cpus[i], 777);
    free(cpus);
}
END_TEST

/* Pools really bound as planned: each worker's affinity is the planned CPU. */
typedef struct bound_check {
    int plan[4];
    atomic_int ok[4];
} bound_check;

static void on_start_check_bind(weft_pool *pool, unsigned worker, void *data)
{
    (void)pool;
    bound_check *b = data;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (worker < 4 && sched_getaffinity(0, sizeof(set), &set) == 0 &&
        CPU_ISSET(b->plan[worker], &set))
        atomic_store(&b->ok[worker], 1);
}

START_TEST(test_bind_plan_matches_pool)
{
    static const weft_bind pinned[] = {WEFT_BIND_COMPACT, WEFT_BIND_SPREAD};
    for (size_t k = 0; k < 2; k++) {
        bound_check b;
        ck_assert_int_eq(weft_bind_plan(pinned[k], 4, b.plan), 0);
        for (int i = 0; i < 4; i++)
            atomic_init(&b.ok[i], 0);
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.threads = 4;
        cfg.bind = pinned[k];
        cfg.on_worker_start = on_start_check_bind;
        cfg.hook_data = &b;
        weft_pool *p = NULL;
        ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
        tu_pool_free(p); /* joins the workers: every start hook has run */
        for (int i = 0; i < 4; i++)
            ck_assert_msg(tu_ld(&b.ok[i]) == 1, "bind %d: worker %d not on planned CPU %d",
                          (int)pinned[k], i, b.plan[i]);
    }
}
END_TEST

/* $WEFT_STATS: each pool writes its statistics at destroy, to a file of its own when the path
 * holds %n (the pool's name) and %p (the process id). */
START_TEST(test_stats_file_at_destroy)
{
    char dir[] = "/tmp/weft-stats-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "%s/st-%%n-%%p.json", dir);
    tu_env_saved e = tu_env_set("WEFT_STATS", tmpl);
    const char *names[2] = {"alpha", "beta"};
    for (int k = 0; k < 2; k++) {
        weft_pool *p = tu_pool_new(2, names[k]);
        atomic_int ran;
        atomic_init(&ran, 0);
        for (int i = 0; i < 100 * (k + 1); i++)
            ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, NULL), 0);
        tu_pool_free(p);
        ck_assert_int_eq(atomic_load(&ran), 100 * (k + 1));
    }
    tu_env_restore(&e);
    for (int k = 0; k < 2; k++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/st-%s-%ld.json", dir, names[k], (long)getpid());
        int fd = open(path, O_RDONLY);
        ck_assert_msg(fd >= 0, "no statistics file %s", path);
        size_t len = 0;
        char *text = tu_read_fd(fd, &len);
        close(fd);
        ck_assert_ptr_nonnull(text);
        json_error_t err;
        json_t *doc = jc_parse(text, len, &err);
        ck_assert_msg(doc != NULL, "%s: %s", path, err.text);
        json_t *total = json_object_get(doc, "total");
        ck_assert_ptr_nonnull(total);
        ck_assert_int_eq(json_integer_value(json_object_get(total, "tasks_run")), 100 * (k + 1));
        ck_assert_int_eq(json_integer_value(json_object_get(doc, "workers")), 2);
        json_decref(doc);
        free(text);
        unlink(path);
    }
    rmdir(dir);
}
END_TEST

/* Reads the statistics file at path: one JSON text with the pool's name and workers, the writing
 * process, and tasks_run in total. Test thread only; the caller releases the tree. */
static json_t *st_load_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "no statistics file %s", path);
    size_t len = 0;
    char *text = tu_read_fd(fd, &len);
    close(fd);
    ck_assert_ptr_nonnull(text);
    json_error_t err;
    json_t *doc = jc_parse(text, len, &err);
    ck_assert_msg(doc != NULL, "%s: %s", path, err.text);
    free(text);
    ck_assert(json_is_object(doc));
    return doc;
}

/* $WEFT_STATS without %n or %p: the second pool of the process writes st.1.json instead of
 * overwriting the first's st.json; a file another process left is overwritten. */
START_TEST(test_stats_numbered_files)
{
    char dir[] = "/tmp/weft-stats-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char tmpl[256], f[3][256];
    snprintf(tmpl, sizeof(tmpl), "%s/st.json", dir);
    snprintf(f[0], sizeof(f[0]), "%s/st.json", dir);
    snprintf(f[1], sizeof(f[1]), "%s/st.1.json", dir);
    snprintf(f[2], sizeof(f[2]), "%s/st.2.json", dir);
    FILE *old = fopen(f[0], "w");
    ck_assert_ptr_nonnull(old);
    fputs("{\"writer\": \"1.1\", \"pool\": \"old\"}\n", old); /* an earlier run's */
    fclose(old);
    tu_env_saved e = tu_env_set("WEFT_STATS", tmpl);
    const char *names[2] = {"alpha", "beta"};
    for (int k = 0; k < 2; k++) {
        weft_pool *p = tu_pool_new((unsigned)k + 1, names[k]);
        atomic_int ran;
        atomic_init(&ran, 0);
        for (int i = 0; i < 100 * (k + 1); i++)
            ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, NULL), 0);
        tu_pool_free(p);
        ck_assert_int_eq(atomic_load(&ran), 100 * (k + 1));
    }
    tu_env_restore(&e);
    char writer[64] = "";
    for (int k = 0; k < 2; k++) {
        json_t *doc = st_load_file(f[k]);
        ck_assert_str_eq(json_string_value(json_object_get(doc, "pool")), names[k]);
        const char *w = json_string_value(json_object_get(doc, "writer"));
        ck_assert_ptr_nonnull(w);
        if (k == 0)
            snprintf(writer, sizeof(writer), "%s", w);
        ck_assert_str_eq(w, writer);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, "workers")), k + 1);
        json_t *total = json_object_get(doc, "total");
        ck_assert_int_eq(json_integer_value(json_object_get(total, "tasks_run")), 100 * (k + 1));
        json_decref(doc);
        unlink(f[k]);
    }
    ck_assert_int_ne(access(f[2], F_OK), 0);
    rmdir(dir);
}
END_TEST

/* weft_stats_write_json_file: the JSON lands in the stream between what was written before and
 * after it (weft_stats_write_json on the stream's descriptor would come before the buffered
 * "before"); bad arguments; a stream that cannot be written. */
START_TEST(test_stats_write_json_file)
{
    weft_pool *p = tu_pool_new(2, "stf");
    atomic_int ran;
    atomic_init(&ran, 0);
    weft_future *fs[50];
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, &fs[i]), 0);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        weft_future_release(fs[i]);
    }
    ck_assert_int_eq(atomic_load(&ran), 50);

    FILE *fp = tmpfile();
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(setvbuf(fp, NULL, _IOFBF, 1 << 16), 0); /* all of it stays buffered */
    fputs("before\n", fp);
    ck_assert_int_eq(weft_stats_write_json_file(p, fp), 0);
    fputs("after\n", fp);
    ck_assert_int_eq(fflush(fp), 0);
    size_t len = 0;
    ck_assert_int_eq((int)lseek(fileno(fp), 0, SEEK_SET), 0);
    char *text = tu_read_fd(fileno(fp), &len);
    fclose(fp);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(len > 13 && strncmp(text, "before\n", 7) == 0 &&
                      strcmp(text + len - 6, "after\n") == 0,
                  "out of order:\n%s", text);
    json_error_t err;
    json_t *doc = jc_parse(text + 7, len - 13, &err);
    ck_assert_msg(doc != NULL, "%s:\n%s", err.text, text);
    json_t *total = json_object_get(doc, "total");
    ck_assert_int_eq(json_integer_value(json_object_get(total, "tasks_run")), 50);
    ck_assert_int_eq(json_integer_value(json_object_get(doc, "workers")), 2);
    ck_assert_ptr_null(json_object_get(doc, "writer")); /* only files written at destroy */
    json_decref(doc);
    free(text);

    ck_assert_int_eq(weft_stats_write_json_file(NULL, stdout), -EINVAL);
    ck_assert_int_eq(weft_stats_write_json_file(p, NULL), -EINVAL);
    FILE *ro = fopen("/dev/null", "r"); /* writes fail: the error indicator is set */
    ck_assert_ptr_nonnull(ro);
    ck_assert_int_eq(weft_stats_write_json_file(p, ro), -EIO);
    fclose(ro);
    tu_pool_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stats");

    TCase *tc = tcase_create("counts");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_stats_fresh_pool);
    tcase_add_test(tc, test_stats_counts_submissions);
    tcase_add_test(tc, test_stats_cancelled_pending);
    tcase_add_test(tc, test_stats_shutdown_cancel_sweep);
    tcase_add_test(tc, test_stats_joins);
    tcase_add_test(tc, test_stats_per_worker_partial);
    tcase_add_test(tc, test_stats_einval);
    tcase_add_test(tc, test_stats_times_cover_lifetime);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_json_validator);
    tcase_add_test(tc, test_stats_json_matches_stats);
    tcase_add_test(tc, test_stats_json_many_workers);
    tcase_add_test(tc, test_stats_json_bad_fd);
    suite_add_tcase(s, tc);

    tc = tcase_create("machine");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_machine_query);
    tcase_add_test(tc, test_bind_plan);
    tcase_add_test(tc, test_bind_plan_matches_pool);
    tcase_add_test(tc, test_stats_file_at_destroy);
    tcase_add_test(tc, test_stats_numbered_files);
    tcase_add_test(tc, test_stats_write_json_file);
    suite_add_tcase(s, tc);

    return tu_run_suite(s);
}
