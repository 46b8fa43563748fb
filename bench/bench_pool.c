/* SPDX-License-Identifier: MIT */
/*
 * bench_pool: what a pool costs an embedding library (zstd makes three per run of its CLI).
 *
 *   bench_pool [-r REPS] [-n CYCLES] [-t THREADS,...] [-s STACK_KIB]
 *
 * For each thread count, one cycle is weft_pool_create + one task submitted and waited for +
 * weft_pool_destroy, timed over CYCLES cycles, REPS times interleaved with the baseline: a
 * minimal pthread pool made the same way (N threads started, one job handed over through a
 * mutex and condition variable, every thread joined), which is what zstd's POOL_create costs
 * and the floor for any pool that starts its threads. Prints, per row, one key=value line with
 * the median and best microseconds per cycle, CPU time per cycle, heap calls and bytes per
 * cycle (malloc, calloc, realloc and aligned allocations, interposed in this program), and
 * the ratio of weft's median to the baseline's. weft's pools here read no environment
 * (WEFT_CONFIG_NO_ENV) and bind no thread.
 *
 * Then the pattern of an embedded pool between jobs (zstd's: hand a job over, work, wait for
 * it, work again): one worker, ITER rounds of submit a job of 10 us of busy work, wait for it,
 * then busy-work GAP us on the calling thread, for GAP in 0, 5, 20, 100 us. Per row the wall
 * time and the process CPU time per round, for weft and the pthread baseline (whose worker
 * sleeps on its condition variable at once): CPU above wall time is what idle spinning costs.
 */
#include <weft.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --- heap calls, counted for the whole process --- */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);

static atomic_ulong heap_calls, heap_bytes;

static void counted(size_t bytes)
{
    /* relaxed: tallies read after the threads that made them were joined */
    atomic_fetch_add_explicit(&heap_calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&heap_bytes, bytes, memory_order_relaxed);
}

void *malloc(size_t size)
{
    counted(size);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    counted(n * size);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    counted(size);
    return __libc_realloc(p, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    counted(size);
    return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    counted(size);
    void *p = __libc_memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

/* --- time --- */

static int64_t clock_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "bench_pool: %s = %d (%s)\n", #call, rc_, weft_strerror(rc_));         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* --- the baseline: a minimal pthread pool --- */

struct mini {
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    int job, done, stop;
    pthread_t *threads;
    unsigned n;
};

static void *mini_main(void *arg)
{
    struct mini *m = arg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        while (m->job == 0 && !m->stop)
            pthread_cond_wait(&m->cv, &m->mu);
        if (m->job > 0) {
            m->job--;
            m->done++;
            pthread_cond_signal(&m->done_cv);
            continue;
        }
        break;
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void mini_cycle(unsigned n)
{
    struct mini *m = calloc(1, sizeof(*m));
    m->threads = calloc(n, sizeof(pthread_t));
    m->n = n;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    pthread_cond_init(&m->done_cv, NULL);
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&m->threads[i], NULL, mini_main, m) != 0) {
            fprintf(stderr, "bench_pool: pthread_create failed\n");
            exit(1);
        }
    }
    pthread_mutex_lock(&m->mu);
    m->job = 1;
    pthread_cond_signal(&m->cv);
    while (m->done == 0)
        pthread_cond_wait(&m->done_cv, &m->mu);
    m->stop = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(m->threads[i], NULL);
    pthread_cond_destroy(&m->cv);
    pthread_cond_destroy(&m->done_cv);
    pthread_mutex_destroy(&m->mu);
    free(m->threads);
    free(m);
}

/* --- weft --- */

static int job(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static size_t stack_size; /* -s: weft_config.stack_size (0: the default) */

static void weft_cycle(unsigned n)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = n;
    cfg.stack_size = stack_size;
    cfg.flags = WEFT_CONFIG_NO_ENV;
    weft_pool *pool;
    CHECK(weft_pool_create(&cfg, &pool));
    weft_future *f;
    CHECK(weft_submit(pool, job, NULL, &f));
    CHECK(weft_future_wait(f, WEFT_FOREVER));
    weft_future_release(f);
    CHECK(weft_pool_destroy(pool));
}

static double median(double *v, int n);

/* --- hand a job over, work, wait --- */

static void busy_us(int us)
{
    int64_t end = clock_ns(CLOCK_MONOTONIC) + (int64_t)us * 1000;
    while (clock_ns(CLOCK_MONOTONIC) < end)
        ;
}

static int job_busy(void *arg, void **result)
{
    busy_us((int)(intptr_t)arg);
    *result = arg;
    return 0;
}

struct pingpong {
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    int job, done, stop;
};

static void *pp_main(void *arg)
{
    struct pingpong *m = arg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        while (m->job == 0 && !m->stop)
            pthread_cond_wait(&m->cv, &m->mu);
        if (m->job == 0)
            break;
        m->job = 0;
        pthread_mutex_unlock(&m->mu);
        busy_us(10);
        pthread_mutex_lock(&m->mu);
        m->done = 1;
        pthread_cond_signal(&m->done_cv);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void pingpong_rows(int iters, int reps)
{
    static const int gaps[] = {0, 5, 20, 100};
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    cfg.flags = WEFT_CONFIG_NO_ENV;
    weft_pool *pool;
    CHECK(weft_pool_create(&cfg, &pool));
    struct pingpong pp = {.job = 0};
    pthread_mutex_init(&pp.mu, NULL);
    pthread_cond_init(&pp.cv, NULL);
    pthread_cond_init(&pp.done_cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, pp_main, &pp) != 0)
        exit(1);
    printf("# one worker: submit 10 us of work, wait, then GAP us on the caller; per round\n");
    for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
        double ww[64], wc[64], pw[64], pc[64];
        for (int r = 0; r < reps; r++) {
            for (int side = 0; side < 2; side++) {
                bool weft = (side + r) % 2 == 0;
                int64_t w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
                for (int i = 0; i < iters; i++) {
                    if (weft) {
                        weft_future *f;
                        CHECK(weft_submit(pool, job_busy, (void *)(intptr_t)10, &f));
                        CHECK(weft_future_wait(f, WEFT_FOREVER));
                        weft_future_release(f);
                    } else {
                        pthread_mutex_lock(&pp.mu);
                        pp.job = 1;
                        pp.done = 0;
                        pthread_cond_signal(&pp.cv);
                        while (!pp.done)
                            pthread_cond_wait(&pp.done_cv, &pp.mu);
                        pthread_mutex_unlock(&pp.mu);
                    }
                    busy_us(gaps[g]);
                }
                double wall = (double)(clock_ns(CLOCK_MONOTONIC) - w0) / 1e3 / iters;
                double cpu = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1e3 / iters;
                if (weft) {
                    ww[r] = wall;
                    wc[r] = cpu;
                } else {
                    pw[r] = wall;
                    pc[r] = cpu;
                }
            }
        }
        double a = median(ww, reps), b = median(wc, reps), c = median(pw, reps),
               d = median(pc, reps);
        printf("bench=pingpong impl=weft gap_us=%d wall_us=%.1f cpu_us=%.1f cpu_vs_wall=%.2f "
               "wall_vs_baseline=%.2f cpu_vs_baseline=%.2f\n",
               gaps[g], a, b, b / a, a / c, b / d);
        printf("bench=pingpong impl=pthread gap_us=%d wall_us=%.1f cpu_us=%.1f cpu_vs_wall=%.2f\n",
               gaps[g], c, d, d / c);
    }
    pthread_mutex_lock(&pp.mu);
    pp.stop = 1;
    pthread_cond_signal(&pp.cv);
    pthread_mutex_unlock(&pp.mu);
    pthread_join(th, NULL);
    CHECK(weft_pool_destroy(pool));
}

struct sample {
    double wall_us, cpu_us, calls, bytes;
};

static struct sample measure(void (*cycle)(unsigned), unsigned n, int cycles)
{
    unsigned long c0 = atomic_load(&heap_calls), b0 = atomic_load(&heap_bytes);
    int64_t w0 = clock_ns(CLOCK_MONOTONIC), u0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < cycles; i++)
        cycle(n);
    int64_t w1 = clock_ns(CLOCK_MONOTONIC), u1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    unsigned long c1 = atomic_load(&heap_calls), b1 = atomic_load(&heap_bytes);
    return (struct sample){(double)(w1 - w0) / 1e3 / cycles, (double)(u1 - u0) / 1e3 / cycles,
                           (double)(c1 - c0) / cycles, (double)(b1 - b0) / cycles};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int reps = 5, cycles = 200;
    unsigned counts[16] = {1, 2};
    int ncounts = 2;
    int opt;
    while ((opt = getopt(argc, argv, "r:n:t:s:h")) != -1) {
        switch (opt) {
        case 's':
            stack_size = (size_t)strtoull(optarg, NULL, 10) << 10; /* KiB */
            break;
        case 'r':
            reps = atoi(optarg);
            break;
        case 'n':
            cycles = atoi(optarg);
            break;
        case 't': {
            ncounts = 0;
            for (char *tok = strtok(optarg, ","); tok != NULL && ncounts < 16;
                 tok = strtok(NULL, ","))
                counts[ncounts++] = (unsigned)atoi(tok);
            break;
        }
        default:
            fprintf(opt == 'h' ? stdout : stderr,
                    "usage: %s [-r REPS] [-n CYCLES] [-t THREADS,...] [-s STACK_KIB]\n", argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (reps < 1 || reps > 64 || cycles < 1 || ncounts == 0) {
        fprintf(stderr, "bench_pool: bad -r, -n or -t\n");
        return 2;
    }
    printf("# create + one task + destroy, per cycle; %d reps of %d cycles, interleaved\n", reps,
           cycles);
    for (int k = 0; k < ncounts; k++) {
        unsigned n = counts[k];
        double ww[64], wc[64], mw[64], mc[64];
        struct sample ws = {0}, ms = {0};
        measure(weft_cycle, n, cycles / 10 + 1); /* warm-up: caches, hwloc's topology */
        measure(mini_cycle, n, cycles / 10 + 1);
        for (int r = 0; r < reps; r++) {
            struct sample a, b;
            if (r % 2) {
                a = measure(weft_cycle, n, cycles);
                b = measure(mini_cycle, n, cycles);
            } else {
                b = measure(mini_cycle, n, cycles);
                a = measure(weft_cycle, n, cycles);
            }
            ww[r] = a.wall_us;
            wc[r] = a.cpu_us;
            mw[r] = b.wall_us;
            mc[r] = b.cpu_us;
            ws = a;
            ms = b;
        }
        double wbest = ww[0], mbest = mw[0];
        for (int r = 1; r < reps; r++) {
            wbest = ww[r] < wbest ? ww[r] : wbest;
            mbest = mw[r] < mbest ? mw[r] : mbest;
        }
        double wmed = median(ww, reps), mmed = median(mw, reps);
        printf("bench=pool impl=weft threads=%u median_us=%.1f best_us=%.1f cpu_us=%.1f "
               "heap_calls=%.1f heap_bytes=%.0f ratio_vs_baseline=%.2f\n",
               n, wmed, wbest, median(wc, reps), ws.calls, ws.bytes, wmed / mmed);
        printf("bench=pool impl=pthread threads=%u median_us=%.1f best_us=%.1f cpu_us=%.1f "
               "heap_calls=%.1f heap_bytes=%.0f\n",
               n, mmed, mbest, median(mc, reps), ms.calls, ms.bytes);
    }
    pingpong_rows(cycles * 10, reps);
    return 0;
}
