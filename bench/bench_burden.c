/* SPDX-License-Identifier: MIT */
/*
 * bench_burden: what a steal and a sync cost in weft on this machine, the figures the burden of
 * the burdened span stands for (lib/workspan.h, WEFT_WS_BURDEN_NS; docs/workspan.md).
 *
 * On a pool of two workers, each case forces the event it measures and times it from the
 * clock reads of the two threads involved (the same CLOCK_MONOTONIC), over many repetitions:
 *   steal        a weft_join whose first half spins until the second has started elsewhere:
 *                from the offer to the thief starting the frame (the thief was looking for
 *                work: the joins follow one another)
 *   sync_spin    a stolen half that ends while its owner still spins in its wait: from the
 *                half's end to the owner's weft_join returning
 *   sync_parked  the same, the half lasting 200 us, so that the owner has blocked (and lent its
 *                worker) before it ends: the wake-up of a blocked joiner
 *   future_wait  a task that waits on a future another worker is running (200 us): from the
 *                task's end to the waiter going on
 * Output: one line per case, bench=burden case=<case> reps=<n> median_ns=<m> p90_ns=<p>.
 * Usage: bench_burden [-r REPS] (default 2000; the parked cases run REPS/10)
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_util.h"
#include "weft.h"

static int64_t now_ns(void)
{
    return (int64_t)bench_now_ns();
}

static void spin_ns(int64_t ns)
{
    int64_t end = now_ns() + ns;
    while (now_ns() < end) {
    }
}

typedef struct probe {
    atomic_llong started; /* when the other half began; 0 before */
    atomic_llong ended;   /* when it ended */
    int64_t half_ns;      /* how long the stolen half runs */
    int main_worker;
} probe;

static void first_half(void *arg)
{
    probe *p = arg;
    /* Wait (bounded) for the second half to be stolen, so that the join is a stolen one. */
    int64_t limit = now_ns() + 2000000;
    while (atomic_load(&p->started) == 0 && now_ns() < limit) {
    }
}

static void second_half(void *arg)
{
    probe *p = arg;
    atomic_store(&p->started, now_ns());
    if (p->half_ns > 0)
        spin_ns(p->half_ns);
    atomic_store(&p->ended, now_ns());
}

typedef struct run {
    weft_pool *pool;
    int reps;
    int64_t half_ns;
    int64_t *steal, *sync;
    int n;
} run;

static int joins(void *arg, void **result)
{
    (void)result;
    run *r = arg;
    for (int i = 0; i < r->reps; i++) {
        probe p = {0};
        p.half_ns = r->half_ns;
        int64_t t0 = now_ns();
        weft_join(first_half, &p, second_half, &p);
        int64_t t1 = now_ns();
        int64_t started = atomic_load(&p.started);
        if (weft_worker_index() < 0 || started == 0)
            continue;
        /* only joins whose second half another worker ran */
        r->steal[r->n] = started - t0;
        r->sync[r->n] = t1 - atomic_load(&p.ended);
        r->n++;
    }
    return 0;
}

typedef struct waited {
    atomic_llong started, ended;
} waited;

static int long_task(void *arg, void **result)
{
    (void)result;
    waited *w = arg;
    atomic_store(&w->started, now_ns());
    spin_ns(200000);
    atomic_store(&w->ended, now_ns());
    return 0;
}

static int future_waits(void *arg, void **result)
{
    (void)result;
    run *r = arg;
    for (int i = 0; i < r->reps; i++) {
        waited w = {0};
        weft_future *f;
        BENCH_CHECK(weft_submit(r->pool, long_task, &w, &f));
        int64_t limit = now_ns() + 2000000;
        while (atomic_load(&w.started) == 0 && now_ns() < limit) {
        }
        if (atomic_load(&w.started) == 0) { /* nobody took it: this wait would run it itself */
            BENCH_CHECK(weft_future_wait(f, WEFT_FOREVER));
            weft_future_release(f);
            continue;
        }
        BENCH_CHECK(weft_future_wait(f, WEFT_FOREVER));
        int64_t t1 = now_ns();
        r->sync[r->n++] = t1 - atomic_load(&w.ended);
        weft_future_release(f);
    }
    return 0;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, int64_t *v, int n)
{
    if (n == 0) {
        printf("bench=burden case=%s reps=0\n", name);
        return;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp);
    printf("bench=burden case=%s reps=%d median_ns=%lld p90_ns=%lld\n", name, n,
           (long long)v[n / 2], (long long)v[n * 9 / 10]);
}

int main(int argc, char **argv)
{
    int reps = 2000, opt;
    while ((opt = getopt(argc, argv, "r:h")) != -1) {
        if (opt == 'r') {
            reps = (int)bench_parse_num('r', optarg, 10, 1000000);
        } else {
            fprintf(stderr, "usage: %s [-r REPS]\n", argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 2;
    weft_pool *pool;
    BENCH_CHECK(weft_pool_create(&cfg, &pool));
    int64_t *a = calloc((size_t)reps + 2, sizeof(int64_t));
    int64_t *b = calloc((size_t)reps + 2, sizeof(int64_t));
    if (a == NULL || b == NULL)
        return 1;

    run r = {pool, reps, 0, a, b, 0};
    BENCH_CHECK(weft_pool_run(pool, joins, &r, NULL));
    report("steal", a, r.n);
    r = (run){pool, reps, 5000, a, b, 0};
    BENCH_CHECK(weft_pool_run(pool, joins, &r, NULL));
    report("sync_spin", b, r.n);
    r = (run){pool, reps / 10, 200000, a, b, 0};
    BENCH_CHECK(weft_pool_run(pool, joins, &r, NULL));
    report("sync_parked", b, r.n);
    r = (run){pool, reps / 10, 0, a, b, 0};
    BENCH_CHECK(weft_pool_run(pool, future_waits, &r, NULL));
    report("future_wait", b, r.n);

    free(a);
    free(b);
    BENCH_CHECK(weft_pool_destroy(pool));
    return 0;
}
