/* SPDX-License-Identifier: MIT */
/*
 * bench_gather: what gather and wait cost.
 *
 *   gather_ready    weft_gather over n futures that have all finished, then its result and
 *                   release: ns per child.
 *   gather_pending  weft_gather over n futures still queued behind a gate (a task holding the
 *                   only worker of the pool), then opening the gate and taking the result: the
 *                   creation's ns per child, and the whole round's ns per child.
 *   wake_outside    latency from the moment the last child finishes (timestamp taken by the child
 *                   just before it returns) to the moment weft_wait(ALL_COMPLETED) returns on a
 *                   thread outside any pool: median and p99 over many rounds.
 *   wake_inside     the same for a waiter that is a task on a worker (of another one-worker
 *                   pool, so that the worker helps, finds nothing and parks): the path of a
 *                   task waiting on work running elsewhere.
 *
 * Usage: bench_gather [-r ROUNDS] [-n SIZES]   (default 2000 rounds; sizes 10,100,1000,10000)
 * Output: bench=gather_* lines with key=value pairs (ns), and "# " summary lines.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "weft.h"

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench_gather: %s: %d (%s)\n", what, rc, weft_strerror(rc));
        exit(1);
    }
}

static int value(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static _Atomic int gate;

static int hold(void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (!atomic_load_explicit(&gate, memory_order_acquire))
        ;
    return 0;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), bench_cmp_u64);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static void gather_ready(weft_pool *pool, size_t n, int rounds)
{
    weft_future **fs = calloc(n, sizeof(*fs));
    int reps = (int)(rounds * 100 / (n < 100 ? 100 : n)) + 5;
    uint64_t *t = calloc((size_t)reps, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        check(weft_submit(pool, value, (void *)(uintptr_t)i, &fs[i]), "submit");
        check(weft_future_wait(fs[i], WEFT_FOREVER), "wait");
    }
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = bench_now_ns();
        weft_future *g;
        void *res;
        check(weft_gather(fs, n, 0, &g), "gather");
        check(weft_future_result(g, &res), "result");
        int ordered = ((void **)res)[n - 1] == (void *)(uintptr_t)(n - 1); /* owned by g */
        weft_future_release(g);
        t[r] = bench_now_ns() - t0;
        if (!ordered) {
            fprintf(stderr, "bench_gather: wrong result order\n");
            exit(1);
        }
    }
    uint64_t med = pct(t, (size_t)reps, 0.5);
    printf("bench=gather_ready n=%zu reps=%d median_ns=%llu ns_per_child=%.1f\n", n, reps,
           (unsigned long long)med, (double)med / (double)n);
    for (size_t i = 0; i < n; i++)
        weft_future_release(fs[i]);
    free(fs);
    free(t);
}

static void gather_pending(size_t n, int rounds)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    weft_pool *pool;
    check(weft_pool_create(&cfg, &pool), "pool");
    weft_future **fs = calloc(n, sizeof(*fs));
    int reps = (int)(rounds * 10 / (n < 10 ? 10 : n)) + 5;
    uint64_t *tc = calloc((size_t)reps, sizeof(*tc)), *tr = calloc((size_t)reps, sizeof(*tr));
    for (int r = 0; r < reps; r++) {
        weft_future *blocker, *g;
        atomic_store(&gate, 0);
        check(weft_submit(pool, hold, NULL, &blocker), "submit");
        for (size_t i = 0; i < n; i++)
            check(weft_submit(pool, value, (void *)(uintptr_t)i, &fs[i]), "submit");
        uint64_t t0 = bench_now_ns();
        check(weft_gather(fs, n, 0, &g), "gather");
        uint64_t t1 = bench_now_ns();
        for (size_t i = 0; i < n; i++)
            weft_future_release(fs[i]); /* the gather holds its own */
        atomic_store_explicit(&gate, 1, memory_order_release);
        check(weft_future_result(g, NULL), "result");
        uint64_t t2 = bench_now_ns();
        tc[r] = t1 - t0;
        tr[r] = t2 - t0;
        weft_future_release(g);
        weft_future_release(blocker);
    }
    uint64_t mc = pct(tc, (size_t)reps, 0.5), mr = pct(tr, (size_t)reps, 0.5);
    printf("bench=gather_pending n=%zu reps=%d create_median_ns=%llu create_ns_per_child=%.1f "
           "round_median_ns=%llu round_ns_per_child=%.1f\n",
           n, reps, (unsigned long long)mc, (double)mc / (double)n, (unsigned long long)mr,
           (double)mr / (double)n);
    free(fs);
    free(tc);
    free(tr);
    weft_pool_destroy(pool);
}

/* --- wake-up latency --- */

static _Atomic uint64_t finished_at;

static int last_child(void *arg, void **result)
{
    (void)result;
    uint64_t spin_until = bench_now_ns() + (uint64_t)(uintptr_t)arg;
    while (bench_now_ns() < spin_until) /* long enough for the waiter to fall asleep */
        ;
    atomic_store_explicit(&finished_at, bench_now_ns(), memory_order_release);
    return 0;
}

struct inside {
    weft_pool *child_pool;
    uint64_t *lat;
    int rounds;
};

static void one_wake(weft_pool *child_pool, uint64_t *lat)
{
    weft_future *f, *done;
    size_t ndone;
    check(weft_submit(child_pool, last_child, (void *)(uintptr_t)200000, &f), "submit");
    check(weft_wait(&f, 1, WEFT_ALL_COMPLETED, WEFT_FOREVER, &done, &ndone), "wait");
    uint64_t woke = bench_now_ns();
    *lat = woke - atomic_load_explicit(&finished_at, memory_order_acquire);
    weft_future_release(f);
}

static int inside_task(void *arg, void **result)
{
    (void)result;
    struct inside *in = arg;
    for (int r = 0; r < in->rounds; r++)
        one_wake(in->child_pool, &in->lat[r]);
    return 0;
}

static void wake(int rounds)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    weft_pool *child_pool, *waiter_pool;
    check(weft_pool_create(&cfg, &child_pool), "pool");
    check(weft_pool_create(&cfg, &waiter_pool), "pool");
    uint64_t *lat = calloc((size_t)rounds, sizeof(*lat));

    for (int r = 0; r < rounds; r++)
        one_wake(child_pool, &lat[r]);
    uint64_t o50 = pct(lat, (size_t)rounds, 0.5), o99 = pct(lat, (size_t)rounds, 0.99);
    printf("bench=gather_wake_outside rounds=%d median_ns=%llu p99_ns=%llu\n", rounds,
           (unsigned long long)o50, (unsigned long long)o99);

    struct inside in = {child_pool, lat, rounds};
    weft_future *f;
    check(weft_submit(waiter_pool, inside_task, &in, &f), "submit");
    check(weft_future_result(f, NULL), "result");
    weft_future_release(f);
    uint64_t i50 = pct(lat, (size_t)rounds, 0.5), i99 = pct(lat, (size_t)rounds, 0.99);
    printf("bench=gather_wake_inside rounds=%d median_ns=%llu p99_ns=%llu\n", rounds,
           (unsigned long long)i50, (unsigned long long)i99);
    printf("# wake-up from the last child's completion to weft_wait's return: outside a pool "
           "median %.1f us p99 %.1f us; on a worker median %.1f us p99 %.1f us\n",
           (double)o50 / 1e3, (double)o99 / 1e3, (double)i50 / 1e3, (double)i99 / 1e3);
    free(lat);
    weft_pool_destroy(waiter_pool);
    weft_pool_destroy(child_pool);
}

int main(int argc, char **argv)
{
    int rounds = 2000, opt;
    char sizes[128] = "10,100,1000,10000";
    while ((opt = getopt(argc, argv, "r:n:")) != -1) {
        if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 'n')
            snprintf(sizes, sizeof(sizes), "%s", optarg);
        else {
            fprintf(stderr, "usage: %s [-r ROUNDS] [-n SIZES]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 10)
        rounds = 10;
    weft_config cfg;
    weft_config_init(&cfg);
    weft_pool *pool;
    check(weft_pool_create(&cfg, &pool), "pool");
    for (char *s = strtok(sizes, ","); s != NULL; s = strtok(NULL, ",")) {
        size_t n = strtoul(s, NULL, 10);
        if (n == 0)
            continue;
        gather_ready(pool, n, rounds);
        gather_pending(n, rounds);
    }
    weft_pool_destroy(pool);
    wake(rounds);
    return 0;
}
