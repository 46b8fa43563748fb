/* SPDX-License-Identifier: MIT */
/*
 * bench_fib: fine-grained fork-join, the classic work-stealing benchmark (Cilk, Lace): fib(n)
 * computed recursively, forking at every n >= CUTOFF and calling the plain recursive fib below
 * it; a leaf (n < 2) returns n at once in every variant, as in Lace's and Cilk's fib. Almost
 * all the time above the cutoff is scheduling overhead.
 *
 * Every parallel variant forks the same way: fib(n-1), the larger half, is offered to other
 * threads and fib(n-2) runs at once on the forking thread, which then waits for fib(n-1) (and
 * runs it itself if nobody took it).
 *   serial  fib_seq(n), the plain recursion
 *   weft    weft_join(fib(n-2), fib(n-1)) inside a root task, on the 1-worker and N-worker pools;
 *           variant=offer: weft_offer(fib(n-1)), fib(n-2) as a direct call, weft_reclaim (the
 *           inline pair, its not-stolen path a direct call returning the value); variant=scope:
 *           a weft_scope per call with one spawn (the n-ary form, used as a binary one)
 *   omp     #pragma omp task for fib(n-1), taskwait, in a parallel/single region of N threads
 *   tbb     tbb::task_group::run for fib(n-1), wait, in an arena of N threads
 *
 * Cases (see bench_harness.h for the method and the output):
 *   cutoff   fib(N) forking above CUTOFF (-n, -c): a few thousand forks, coarse leaves; with
 *            -c below 2 it forks down to the leaves and is reported as case=leaves instead
 *   leaves   fib(M) forking at every call down to n < 2 (-m): one fork per few ns of work,
 *            the cost of a fork itself
 *   futures  fib(M) as above through weft's task API instead of weft_join (weft only): a
 *            weft_submit from inside the task, a weft_future_result and a release per call,
 *            the cost of a spawned task with its future (-f 0 skips it)
 *
 * Usage: bench_fib [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-c CUTOFF] [-m M] [-f 0|1]
 *   -n  fib argument of the cutoff case (default 36)
 *   -c  fork only for n >= CUTOFF (default 20; 0: down to the leaves)
 *   -m  fib argument of the leaves and futures cases (default 30; 0 skips both)
 *   -f  1 (default): run the futures case, 0: skip it
 * For example: bench_fib -t 2 -r 7; perf record -e cpu-clock -g bench_fib -i weft -m 0
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_fib.h"
#include "bench_harness.h"
#include "weft.h"

BENCH_KERNEL uint64_t fib_seq(unsigned n)
{
    return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2);
}

typedef struct fib_ctx {
    unsigned n, cutoff;
} fib_ctx;

/* --- weft: weft_join --- */

typedef struct fib_frame {
    unsigned n, cutoff;
    uint64_t value;
} fib_frame;

static void fib_join(void *arg)
{
    fib_frame *f = arg;
    if (f->n < 2 || f->n < f->cutoff) {
        f->value = fib_below(f->n);
        return;
    }
    fib_frame x = {f->n - 1, f->cutoff, 0}, y = {f->n - 2, f->cutoff, 0};
    weft_join(fib_join, &y, fib_join, &x); /* x, the larger half, is the one offered */
    f->value = x.value + y.value;
}

static int fib_join_root(void *arg, void **result)
{
    (void)result;
    fib_join(arg);
    return 0;
}

/* --- weft: the inline pair, weft_offer / weft_reclaim --- */

static uint64_t fib_offer(unsigned n, unsigned cutoff);

static void fib_offer_task(void *arg)
{
    fib_frame *f = arg;
    f->value = fib_offer(f->n, f->cutoff);
}

static uint64_t fib_offer(unsigned n, unsigned cutoff)
{
    if (n < 2 || n < cutoff)
        return fib_below(n);
    fib_frame x = {n - 1, cutoff, 0};
    weft_frame fr;
    weft_offer(&fr, fib_offer_task, &x); /* x, the larger half, is the one offered */
    uint64_t y = fib_offer(n - 2, cutoff);
    if (weft_reclaim(&fr))
        x.value = fib_offer(n - 1, cutoff); /* nobody took it: a direct call */
    return x.value + y;
}

static int fib_offer_root(void *arg, void **result)
{
    (void)result;
    fib_frame *f = arg;
    f->value = fib_offer(f->n, f->cutoff);
    return 0;
}

/* --- weft: a scope per call --- */

static void fib_scope(void *arg)
{
    fib_frame *f = arg;
    if (f->n < 2 || f->n < f->cutoff) {
        f->value = fib_below(f->n);
        return;
    }
    fib_frame x = {f->n - 1, f->cutoff, 0}, y = {f->n - 2, f->cutoff, 0};
    weft_scope s;
    weft_spawn slot;
    weft_scope_init(&s);
    weft_scope_spawn(&s, &slot, fib_scope, &x);
    fib_scope(&y);
    weft_scope_wait(&s);
    f->value = x.value + y.value;
}

static int fib_scope_root(void *arg, void **result)
{
    (void)result;
    fib_scope(arg);
    return 0;
}

/* --- weft: a task with a future per call --- */

typedef struct fib_task_arg {
    weft_pool *pool;
    unsigned n, cutoff;
} fib_task_arg;

static int fib_task(void *arg, void **result)
{
    const fib_task_arg *a = arg;
    if (a->n < 2 || a->n < a->cutoff) {
        *result = (void *)(uintptr_t)fib_below(a->n);
        return 0;
    }
    /* x lives on this stack until its future is waited for below. */
    fib_task_arg x = {a->pool, a->n - 1, a->cutoff}, y = {a->pool, a->n - 2, a->cutoff};
    weft_future *fx = NULL;
    int rc = weft_submit(a->pool, fib_task, &x, &fx);
    if (rc != 0)
        return rc;
    void *vy = NULL, *vx = NULL;
    int rc_y = fib_task(&y, &vy);
    rc = weft_future_result(fx, &vx);
    weft_future_release(fx);
    if (rc_y != 0)
        return rc_y;
    if (rc != 0)
        return rc;
    *result = (void *)((uintptr_t)vx + (uintptr_t)vy);
    return 0;
}

/* --- omp --- */

#ifdef _OPENMP
static uint64_t fib_omp_rec(unsigned n, unsigned cutoff)
{
    if (n < 2 || n < cutoff)
        return fib_below(n);
    uint64_t x = 0, y;
#pragma omp task shared(x) firstprivate(n, cutoff)
    x = fib_omp_rec(n - 1, cutoff);
    y = fib_omp_rec(n - 2, cutoff);
#pragma omp taskwait
    return x + y;
}
#endif

/* --- rows --- */

static uint64_t run_serial(const bench_row *row)
{
    const fib_ctx *c = row->ctx;
    return fib_seq(c->n);
}

static uint64_t run_weft(const bench_row *row)
{
    const fib_ctx *c = row->ctx;
    fib_frame f = {c->n, c->cutoff, 0};
    bench_weft_root(row->pool, fib_join_root, &f);
    return f.value;
}

static uint64_t run_weft_offer(const bench_row *row)
{
    const fib_ctx *c = row->ctx;
    fib_frame f = {c->n, c->cutoff, 0};
    bench_weft_root(row->pool, fib_offer_root, &f);
    return f.value;
}

static uint64_t run_weft_scope(const bench_row *row)
{
    const fib_ctx *c = row->ctx;
    fib_frame f = {c->n, c->cutoff, 0};
    bench_weft_root(row->pool, fib_scope_root, &f);
    return f.value;
}

static uint64_t run_weft_futures(const bench_row *row)
{
    const fib_ctx *c = row->ctx;
    fib_task_arg a = {row->pool, c->n, c->cutoff};
    return (uint64_t)(uintptr_t)bench_weft_root(row->pool, fib_task, &a);
}

#ifdef _OPENMP
static uint64_t run_omp(const bench_row *row)
{
    const fib_ctx *c = row->ctx;
    uint64_t v = 0;
#pragma omp parallel num_threads(row->threads)
#pragma omp single
    v = fib_omp_rec(c->n, c->cutoff);
    return v;
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t run_tbb(const bench_row *row)
{
    const fib_ctx *c = row->ctx;
    return fib_tbb(c->n, c->cutoff);
}
#endif

/* Forks one fib(n) run makes with this cutoff. */
static uint64_t fib_forks(unsigned n, unsigned cutoff)
{
    uint64_t forks[FIB_MAX_N + 1] = {0};
    for (unsigned k = 2; k <= n; k++)
        forks[k] = k < cutoff ? 0 : 1 + forks[k - 1] + forks[k - 2];
    return forks[n];
}

static void run_case(bench_env *env, const char *name, unsigned n, unsigned cutoff, bool futures)
{
    fib_ctx ctx = {n, cutoff};
    bench_case c;
    bench_case_init(&c, "fib", name);
    snprintf(c.params, sizeof c.params, "n=%u cutoff=%u forks=%" PRIu64, n, cutoff,
             fib_forks(n, cutoff));
    bench_add(&c, env, BENCH_SERIAL, run_serial, &ctx);
    bench_run_fn weft = futures ? run_weft_futures : run_weft;
    bench_add(&c, env, BENCH_WEFT1, weft, &ctx);
    bench_add(&c, env, BENCH_WEFTN, weft, &ctx);
    if (!futures) {
        bench_add_weft(&c, env, run_weft_offer, &ctx, "offer");
        bench_add_weft(&c, env, run_weft_scope, &ctx, "scope");
#ifdef _OPENMP
        bench_add(&c, env, BENCH_OMP, run_omp, &ctx);
#endif
#ifdef BENCH_HAVE_TBB
        bench_add(&c, env, BENCH_TBB, run_tbb, &ctx);
#endif
    }
    bench_case_run(&c, env);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-c CUTOFF] [-m M] [-f 0|1]\n"
            "%s"
            "  -n N        fib argument of the cutoff case (36)\n"
            "  -c CUTOFF   fork only for n >= CUTOFF (20; 0: down to the leaves)\n"
            "  -m M        fib argument of the leaves and futures cases (30; 0: skip them)\n"
            "  -f 0|1      run the weft futures case (1)\n",
            argv0, BENCH_COMMON_USAGE);
}

int main(int argc, char **argv)
{
    bench_env env;
    bench_env_init(&env);
    unsigned n = 36, cutoff = 20, m = 30;
    bool futures = true;
    int opt;
    while ((opt = getopt(argc, argv, BENCH_COMMON_OPTS "n:c:m:f:h")) != -1) {
        if (bench_env_option(&env, opt, optarg))
            continue;
        switch (opt) {
        case 'n':
            n = (unsigned)bench_parse_num('n', optarg, 0, FIB_MAX_N);
            break;
        case 'c':
            cutoff = (unsigned)bench_parse_num('c', optarg, 0, FIB_MAX_N + 1);
            break;
        case 'm':
            m = (unsigned)bench_parse_num('m', optarg, 0, FIB_MAX_N);
            break;
        case 'f':
            futures = bench_parse_num('f', optarg, 0, 1) != 0;
            break;
        case 'h':
            usage(argv[0]);
            return 0;
        default:
            usage(argv[0]);
            return 2;
        }
    }
    if (optind != argc) {
        usage(argv[0]);
        return 2;
    }

    bench_env_start(&env, "bench_fib");
    run_case(&env, cutoff >= 2 ? "cutoff" : "leaves", n, cutoff, false);
    if (m > 0) {
        if (cutoff >= 2)
            run_case(&env, "leaves", m, 0, false);
        if (futures && (env.impls & (1u << BENCH_WEFT1 | 1u << BENCH_WEFTN)))
            run_case(&env, "futures", m, 0, true);
    }
    bench_env_finish(&env);
    return 0;
}
