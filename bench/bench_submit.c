/* SPDX-License-Identifier: MIT */
/*
 * bench_submit: cost of external submission, i.e. weft_submit() from a thread that is not one of
 * the pool's workers (here the main thread), and of getting the result back.
 *
 * Workloads (all run by default; -w picks some, comma-separated):
 *   batched   submit N tasks in batches of B futures, then weft_future_result() and release each
 *             future of the batch before the next batch; the task body returns its argument as
 *             its result, which is checked. Reports tasks/s against a goal of 5 M tasks/s
 *             (goal=, met= on the median rate).
 *   single    one task at a time: submit, weft_future_result(), release, M times. Reports round
 *             trips/s and the mean ns per round trip: the latency of handing one task to a
 *             worker and back, short while a worker is still spinning for work, microseconds
 *             when a parked worker or the sleeping submitter must be woken (or when the two
 *             share one core because the machine is busy).
 *   detached  submit N detached tasks (out NULL) that each increment an atomic counter; the
 *             main thread then polls the counter (with sched_yield) until it reaches N. Reports
 *             tasks/s with no future for the caller to wait on or release.
 * There is no serial baseline: a plain function call costs nothing next to a submission, so
 * the figures stand alone.
 *
 * Usage: bench_submit [-t THREADS] [-r REPS] [-n N] [-b BATCH] [-m M] [-w WORKLOADS]
 *   -t  workers, 0 (default) = the library's default ($WEFT_THREADS or one per usable core)
 *   -r  repetitions of each workload (default 5); median and min are reported
 *   -n  tasks for batched and detached (default 1000000)
 *   -b  futures per batch (default 4096)
 *   -m  round trips for single (default 100000)
 *   -w  batched,single,detached (default all)
 * Each workload first runs once untimed at a tenth of its size to warm the pool up.
 *
 * Output: one line per workload, bench=submit_<workload> followed by key=value pairs (times in
 * ns), then one human-readable "# " summary line. cpus_used is the process CPU time over the wall
 * time of the timed repetitions, main thread included: how many cores the run really kept busy
 * (spinning and polling count; parked workers do not). For example:
 *   bench_submit -t 2 -r 5
 *   perf stat -e task-clock,context-switches,cpu-migrations,instructions,cycles \
 *       bench_submit -w batched
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "weft.h"

#define GOAL_TASKS_PER_S 5000000.0

enum { W_BATCHED = 1, W_SINGLE = 2, W_DETACHED = 4 };

static int echo_task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static int count_task(void *arg, void **result)
{
    (void)result;
    /* relaxed: the counter only counts; the main thread reads nothing else the tasks wrote. */
    atomic_fetch_add_explicit((atomic_size_t *)arg, 1, memory_order_relaxed);
    return 0;
}

/* Submits n tasks batch by batch and collects every result; returns the elapsed ns. */
static uint64_t run_batched(weft_pool *pool, size_t n, size_t batch, weft_future **fs)
{
    uint64_t t0 = bench_now_ns();
    for (size_t base = 0; base < n; base += batch) {
        size_t k = n - base < batch ? n - base : batch;
        for (size_t i = 0; i < k; i++)
            BENCH_CHECK(weft_submit(pool, echo_task, (void *)(uintptr_t)(base + i + 1), &fs[i]));
        for (size_t i = 0; i < k; i++) {
            void *r = NULL;
            BENCH_CHECK(weft_future_result(fs[i], &r));
            if ((uintptr_t)r != base + i + 1) {
                fprintf(stderr, "batched: task %zu returned %p\n", base + i + 1, r);
                exit(1);
            }
            weft_future_release(fs[i]);
        }
    }
    return bench_now_ns() - t0;
}

static uint64_t run_single(weft_pool *pool, size_t m)
{
    uint64_t t0 = bench_now_ns();
    for (size_t i = 1; i <= m; i++) {
        weft_future *f = NULL;
        void *r = NULL;
        BENCH_CHECK(weft_submit(pool, echo_task, (void *)(uintptr_t)i, &f));
        BENCH_CHECK(weft_future_result(f, &r));
        if ((uintptr_t)r != i) {
            fprintf(stderr, "single: task %zu returned %p\n", i, r);
            exit(1);
        }
        weft_future_release(f);
    }
    return bench_now_ns() - t0;
}

static uint64_t run_detached(weft_pool *pool, size_t n, atomic_size_t *counter)
{
    atomic_store_explicit(counter, 0, memory_order_relaxed);
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++)
        BENCH_CHECK(weft_submit(pool, count_task, counter, NULL));
    /* Polling is acceptable in a benchmark: there is no future to wait on by design. */
    while (atomic_load_explicit(counter, memory_order_relaxed) < n)
        sched_yield();
    return bench_now_ns() - t0;
}

static unsigned parse_workloads(const char *s)
{
    unsigned mask = 0;
    char *copy = strdup(s);
    if (copy == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "batched") == 0)
            mask |= W_BATCHED;
        else if (strcmp(tok, "single") == 0)
            mask |= W_SINGLE;
        else if (strcmp(tok, "detached") == 0)
            mask |= W_DETACHED;
        else if (strcmp(tok, "all") == 0)
            mask |= W_BATCHED | W_SINGLE | W_DETACHED;
        else {
            fprintf(stderr, "-w: unknown workload '%s' (batched, single, detached, all)\n", tok);
            exit(2);
        }
    }
    free(copy);
    return mask;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-n N] [-b BATCH] [-m M] [-w WORKLOADS]\n"
            "  -t workers (0 = default)   -r repetitions (5)\n"
            "  -n tasks for batched/detached (1000000)   -b futures per batch (4096)\n"
            "  -m round trips for single (100000)   -w batched,single,detached (all)\n",
            argv0);
}

int main(int argc, char **argv)
{
    unsigned threads = 0;
    size_t reps = 5, n = 1000000, batch = 4096, m = 100000;
    unsigned which = W_BATCHED | W_SINGLE | W_DETACHED;
    int opt;
    while ((opt = getopt(argc, argv, "t:r:n:b:m:w:h")) != -1) {
        switch (opt) {
        case 't':
            threads = (unsigned)bench_parse_num('t', optarg, 0, WEFT_MAX_THREADS);
            break;
        case 'r':
            reps = (size_t)bench_parse_num('r', optarg, 1, 1000);
            break;
        case 'n':
            n = (size_t)bench_parse_num('n', optarg, 1, (unsigned long long)1 << 40);
            break;
        case 'b':
            batch = (size_t)bench_parse_num('b', optarg, 1, (unsigned long long)1 << 24);
            break;
        case 'm':
            m = (size_t)bench_parse_num('m', optarg, 1, (unsigned long long)1 << 40);
            break;
        case 'w':
            which = parse_workloads(optarg);
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

    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = threads;
    weft_pool *pool = NULL;
    BENCH_CHECK(weft_pool_create(&cfg, &pool));
    unsigned nworkers = weft_pool_size(pool);

    uint64_t *samples = bench_xcalloc(reps, sizeof *samples);
    weft_future **fs = bench_xcalloc(batch, sizeof *fs);
    atomic_size_t counter;
    atomic_init(&counter, 0);

    char summary[512];
    summary[0] = '\0';
    bench_append(summary, sizeof summary, "# weft %s submit, %u worker%s:", weft_version(),
                 nworkers, nworkers == 1 ? "" : "s");

    if (which & W_BATCHED) {
        run_batched(pool, n / 10 ? n / 10 : 1, batch, fs);
        uint64_t wall0 = bench_now_ns(), cpu0 = bench_cpu_ns();
        for (size_t r = 0; r < reps; r++)
            samples[r] = run_batched(pool, n, batch, fs);
        double cpus = (double)(bench_cpu_ns() - cpu0) / (double)(bench_now_ns() - wall0);
        bench_stats s = bench_summarize(samples, reps);
        double rate = bench_rate(n, s.median_ns);
        bool met = rate >= GOAL_TASKS_PER_S;
        printf("bench=submit_batched impl=weft threads=%u n=%zu batch=%zu reps=%zu"
               " median_ns=%" PRIu64 " min_ns=%" PRIu64
               " tasks_per_s_median=%.0f tasks_per_s_best=%.0f"
               " ns_per_task_median=%.1f cpus_used=%.2f goal=%.0f met=%s\n",
               nworkers, n, batch, reps, s.median_ns, s.min_ns, rate, bench_rate(n, s.min_ns),
               (double)s.median_ns / (double)n, cpus, GOAL_TASKS_PER_S, met ? "yes" : "no");
        bench_append(summary, sizeof summary, " batched %.2f M tasks/s (goal 5 M/s %s);",
                     rate / 1e6, met ? "met" : "NOT met");
    }

    if (which & W_SINGLE) {
        run_single(pool, m / 10 ? m / 10 : 1);
        uint64_t wall0 = bench_now_ns(), cpu0 = bench_cpu_ns();
        for (size_t r = 0; r < reps; r++)
            samples[r] = run_single(pool, m);
        double cpus = (double)(bench_cpu_ns() - cpu0) / (double)(bench_now_ns() - wall0);
        bench_stats s = bench_summarize(samples, reps);
        double mean_ns = (double)s.median_ns / (double)m;
        printf("bench=submit_single impl=weft threads=%u m=%zu reps=%zu median_ns=%" PRIu64
               " min_ns=%" PRIu64 " round_trips_per_s_median=%.0f round_trips_per_s_best=%.0f"
               " ns_per_round_trip_median=%.1f ns_per_round_trip_best=%.1f cpus_used=%.2f\n",
               nworkers, m, reps, s.median_ns, s.min_ns, bench_rate(m, s.median_ns),
               bench_rate(m, s.min_ns), mean_ns, (double)s.min_ns / (double)m, cpus);
        bench_append(summary, sizeof summary, " one-at-a-time %.0f round trips/s (%.2f us each);",
                     bench_rate(m, s.median_ns), mean_ns / 1e3);
    }

    if (which & W_DETACHED) {
        run_detached(pool, n / 10 ? n / 10 : 1, &counter);
        uint64_t wall0 = bench_now_ns(), cpu0 = bench_cpu_ns();
        for (size_t r = 0; r < reps; r++)
            samples[r] = run_detached(pool, n, &counter);
        double cpus = (double)(bench_cpu_ns() - cpu0) / (double)(bench_now_ns() - wall0);
        bench_stats s = bench_summarize(samples, reps);
        printf("bench=submit_detached impl=weft threads=%u n=%zu reps=%zu median_ns=%" PRIu64
               " min_ns=%" PRIu64 " tasks_per_s_median=%.0f tasks_per_s_best=%.0f"
               " ns_per_task_median=%.1f cpus_used=%.2f\n",
               nworkers, n, reps, s.median_ns, s.min_ns, bench_rate(n, s.median_ns),
               bench_rate(n, s.min_ns), (double)s.median_ns / (double)n, cpus);
        bench_append(summary, sizeof summary, " detached %.2f M tasks/s;",
                     bench_rate(n, s.median_ns) / 1e6);
    }

    size_t len = strlen(summary);
    if (len > 0 && summary[len - 1] == ';')
        summary[len - 1] = '\0';
    printf("%s (medians of %zu)\n", summary, reps);

    free(fs);
    free(samples);
    BENCH_CHECK(weft_pool_destroy(pool));
    return 0;
}
