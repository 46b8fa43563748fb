/*
 * bench_fib: fine-grained fork-join, the classic work-stealing benchmark (Cilk, Lace). Computes
 * fib(n) where every task for n >= 2 submits fib(n-1) as a child task with weft_submit() from
 * inside the task (so it goes to the worker's own deque, where thieves find it), computes
 * fib(n-2) inline (recursively, spawning the same way), then waits for the child with
 * weft_future_result() (which runs other tasks while waiting) and releases it. Below the cutoff
 * (-c) a task computes serially. Almost all the time is scheduling overhead: the figures measure
 * spawn + steal + wait + future management per task.
 *
 * Measured, in this order, in one process:
 *   serial   the plain recursive fib(n), the baseline (noinline, n read through a volatile, the
 *            result written to one, so the compiler can neither fold nor hoist it)
 *   weft     the task version on a pool of 1 worker, then on a pool of the default number of
 *            workers (or -t), each root task submitted from the main thread
 * Each reports median and min over -r repetitions, after one untimed warm-up run. The weft
 * lines give ratio_serial (weft time / serial time: the overhead factor; below 1 is a parallel
 * gain) and the all-workers line gives speedup_vs_1 (1-worker time / all-workers time). Every
 * result is checked against the serial one; a mismatch or a failing weft call exits with 1.
 *
 * Usage: bench_fib [-t THREADS] [-r REPS] [-n N] [-c CUTOFF] [-s]
 *   -t  workers of the second pool, 0 (default) = the library's default ($WEFT_THREADS or one
 *       per usable core)
 *   -r  repetitions (default 5)
 *   -n  which fib (default 30: 1,346,269 tasks without cutoff)
 *   -c  tasks only for n >= CUTOFF, serial below (default 0: tasks all the way down to n < 2)
 *   -s  also count the tasks each worker starts (tasks_per_worker=, mean per repetition): shows
 *       whether work is stolen at all; adds a little per task, so leave it off for timings
 * Every weft line also gives cpus_used: process CPU time over wall time during the timed
 * repetitions, i.e. how many cores the run really had (on a shared machine a flat speedup with
 * cpus_used near 1 means the second core was busy elsewhere, not that weft failed to use it).
 * Output: lines bench=fib_serial and bench=fib_weft (one per pool) of key=value pairs, times in
 * ns, then one human-readable "# " summary line. For example: bench_fib -n 32 -c 12 -r 7
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_util.h"
#include "weft.h"

/* The largest n whose fib fits the uintptr_t that carries a task's result: fib(92) is the last
 * that fits 64 bits, fib(46) the last that fits 32. */
#define FIB_LIMIT 92u
#define FIB_MAX_N (sizeof(uintptr_t) >= 8 ? FIB_LIMIT : 46u)

/* Everything a task needs, without allocating per task: the argument of the task for fib(k) is
 * &run->args[k], from which it finds the pool, the cutoff, and its children's arguments. */
typedef struct fib_run fib_run;
typedef struct fib_arg {
    const fib_run *run;
    unsigned n;
} fib_arg;
/* With -s, tasks started by each worker, one cache line each so that counting adds no sharing. */
typedef struct fib_slot {
    _Alignas(64) atomic_uint_fast64_t tasks;
} fib_slot;
struct fib_run {
    weft_pool *pool;
    unsigned cutoff;
    fib_slot *slots; /* NULL unless -s */
    fib_arg args[FIB_LIMIT + 1];
};

static volatile unsigned fib_input;
static volatile uint64_t fib_sink;

__attribute__((noinline)) static uint64_t fib_serial(unsigned n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static int fib_task(void *arg, void **result);

/* fib(a->n) into *out, spawning fib(n-1) and recursing into fib(n-2). Returns 0 or the first
 * error of a weft call in the subtree; the child is always waited for and released. */
static int fib_spawn(const fib_arg *a, uint64_t *out)
{
    unsigned n = a->n;
    if (n < 2) {
        *out = n;
        return 0;
    }
    if (n < a->run->cutoff) {
        *out = fib_serial(n);
        return 0;
    }
    weft_future *child = NULL;
    int rc = weft_submit(a->run->pool, fib_task, (void *)(a - 1), &child);
    if (rc != 0)
        return rc;
    uint64_t y = 0;
    int rc_inline = fib_spawn(a - 2, &y);
    void *x = NULL;
    rc = weft_future_result(child, &x);
    weft_future_release(child);
    if (rc_inline != 0)
        return rc_inline;
    if (rc != 0)
        return rc;
    *out = (uint64_t)(uintptr_t)x + y;
    return 0;
}

static int fib_task(void *arg, void **result)
{
    const fib_arg *a = arg;
    if (a->run->slots != NULL) {
        int self = weft_worker_index();
        /* relaxed: read only after the root's future completes, which orders it. */
        if (self >= 0)
            atomic_fetch_add_explicit(&a->run->slots[self].tasks, 1, memory_order_relaxed);
    }
    uint64_t v = 0;
    int rc = fib_spawn(arg, &v);
    if (rc == 0)
        *result = (void *)(uintptr_t)v;
    return rc;
}

/* Tasks one fib(n) run creates: the root plus one child per spawning call. */
static uint64_t fib_task_count(unsigned n, unsigned cutoff)
{
    uint64_t spawns[FIB_LIMIT + 1] = {0};
    for (unsigned k = 2; k <= n; k++)
        spawns[k] = k < cutoff ? 0 : 1 + spawns[k - 1] + spawns[k - 2];
    return 1 + spawns[n];
}

static uint64_t time_serial(uint64_t *value)
{
    uint64_t t0 = bench_now_ns();
    fib_sink = fib_serial(fib_input);
    uint64_t t1 = bench_now_ns();
    *value = fib_sink;
    return t1 - t0;
}

static uint64_t time_weft(fib_run *run, unsigned n, uint64_t expect)
{
    uint64_t t0 = bench_now_ns();
    weft_future *root = NULL;
    void *x = NULL;
    BENCH_CHECK(weft_submit(run->pool, fib_task, &run->args[n], &root));
    BENCH_CHECK(weft_future_result(root, &x));
    weft_future_release(root);
    uint64_t t1 = bench_now_ns();
    if ((uint64_t)(uintptr_t)x != expect) {
        fprintf(stderr, "fib(%u) on %u workers gave %" PRIu64 ", serial gave %" PRIu64 "\n", n,
                weft_pool_size(run->pool), (uint64_t)(uintptr_t)x, expect);
        exit(1);
    }
    return t1 - t0;
}

/* Runs the weft version on a new pool of `threads` workers (0: default) and prints its line. */
static bench_stats bench_pool(unsigned threads, unsigned n, unsigned cutoff, bool per_worker,
                              size_t reps, uint64_t expect, bench_stats serial,
                              const bench_stats *one, uint64_t *samples, unsigned *nworkers)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = threads;
    fib_run run = {.cutoff = cutoff};
    for (unsigned k = 0; k <= n; k++)
        run.args[k] = (fib_arg){.run = &run, .n = k};
    BENCH_CHECK(weft_pool_create(&cfg, &run.pool));
    *nworkers = weft_pool_size(run.pool);
    if (per_worker) {
        run.slots = aligned_alloc(_Alignof(fib_slot), *nworkers * sizeof *run.slots);
        if (run.slots == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        for (unsigned i = 0; i < *nworkers; i++)
            atomic_init(&run.slots[i].tasks, 0);
    }

    time_weft(&run, n, expect);
    for (unsigned i = 0; per_worker && i < *nworkers; i++)
        atomic_store_explicit(&run.slots[i].tasks, 0, memory_order_relaxed);
    uint64_t wall0 = bench_now_ns(), cpu0 = bench_cpu_ns();
    for (size_t r = 0; r < reps; r++)
        samples[r] = time_weft(&run, n, expect);
    uint64_t cpu = bench_cpu_ns() - cpu0, wall = bench_now_ns() - wall0;
    BENCH_CHECK(weft_pool_destroy(run.pool));

    bench_stats s = bench_summarize(samples, reps);
    uint64_t tasks = fib_task_count(n, cutoff);
    printf("bench=fib_weft n=%u cutoff=%u threads=%u tasks=%" PRIu64 " reps=%zu result=%" PRIu64
           " median_ns=%" PRIu64 " min_ns=%" PRIu64 " ns_per_task_median=%.1f"
           " ratio_serial_median=%.2f ratio_serial_best=%.2f",
           n, cutoff, *nworkers, tasks, reps, expect, s.median_ns, s.min_ns,
           (double)s.median_ns / (double)tasks, (double)s.median_ns / (double)serial.median_ns,
           (double)s.min_ns / (double)serial.min_ns);
    printf(" cpus_used=%.2f", (double)cpu / (double)wall);
    if (one != NULL)
        printf(" speedup_vs_1_median=%.2f speedup_vs_1_best=%.2f",
               (double)one->median_ns / (double)s.median_ns,
               (double)one->min_ns / (double)s.min_ns);
    for (unsigned i = 0; per_worker && i < *nworkers; i++)
        printf("%s%.0f", i == 0 ? " tasks_per_worker=" : ",",
               (double)atomic_load_explicit(&run.slots[i].tasks, memory_order_relaxed) /
                   (double)reps);
    printf("\n");
    free(run.slots);
    return s;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-n N] [-c CUTOFF] [-s]\n"
            "  -t workers of the second pool (0 = default)   -r repetitions (5)\n"
            "  -n fib argument (30)   -c serial below this n (0 = tasks down to n < 2)\n"
            "  -s count the tasks each worker starts (costs a little per task)\n",
            argv0);
}

int main(int argc, char **argv)
{
    unsigned threads = 0, n = 30, cutoff = 0;
    size_t reps = 5;
    bool per_worker = false;
    int opt;
    while ((opt = getopt(argc, argv, "t:r:n:c:sh")) != -1) {
        switch (opt) {
        case 't':
            threads = (unsigned)bench_parse_num('t', optarg, 0, WEFT_MAX_THREADS);
            break;
        case 'r':
            reps = (size_t)bench_parse_num('r', optarg, 1, 1000);
            break;
        case 'n':
            n = (unsigned)bench_parse_num('n', optarg, 0, FIB_MAX_N);
            break;
        case 'c':
            cutoff = (unsigned)bench_parse_num('c', optarg, 0, FIB_MAX_N + 1);
            break;
        case 's':
            per_worker = true;
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

    uint64_t *samples = bench_xcalloc(reps, sizeof *samples);

    fib_input = n;
    uint64_t expect = 0, v = 0;
    time_serial(&expect);
    for (size_t r = 0; r < reps; r++) {
        samples[r] = time_serial(&v);
        if (v != expect) {
            fprintf(stderr, "serial fib(%u) gave %" PRIu64 " then %" PRIu64 "\n", n, expect, v);
            return 1;
        }
    }
    bench_stats serial = bench_summarize(samples, reps);
    printf("bench=fib_serial n=%u reps=%zu result=%" PRIu64 " median_ns=%" PRIu64 " min_ns=%" PRIu64
           "\n",
           n, reps, expect, serial.median_ns, serial.min_ns);

    unsigned w1 = 0, wn = 0;
    bench_stats one =
        bench_pool(1, n, cutoff, per_worker, reps, expect, serial, NULL, samples, &w1);
    bench_stats all =
        bench_pool(threads, n, cutoff, per_worker, reps, expect, serial, &one, samples, &wn);

    printf("# weft %s fib(%u) = %" PRIu64 ", cutoff %u, %" PRIu64 " tasks: serial %.2f ms;"
           " %u worker%s %.2f ms (%.1fx serial); %u worker%s %.2f ms (%.1fx serial,"
           " speedup %.2f over 1 worker) (medians of %zu)\n",
           weft_version(), n, expect, cutoff, fib_task_count(n, cutoff),
           (double)serial.median_ns / 1e6, w1, w1 == 1 ? "" : "s", (double)one.median_ns / 1e6,
           (double)one.median_ns / (double)serial.median_ns, wn, wn == 1 ? "" : "s",
           (double)all.median_ns / 1e6, (double)all.median_ns / (double)serial.median_ns,
           (double)one.median_ns / (double)all.median_ns, reps);

    free(samples);
    return 0;
}
