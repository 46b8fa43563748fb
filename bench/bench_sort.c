/* SPDX-License-Identifier: MIT */
/*
 * bench_sort: parallel merge sort of n random ints. Above the sort cutoff a variant sorts the
 * two halves in parallel, then merges them with a parallel merge (split at the middle of the
 * longer input and the matching point of the other, both halves in parallel) down to the merge
 * cutoff; below the cutoffs it runs the serial kernels of bench_sort.h, the same in every
 * variant. Memory-bound at the top levels, so two cores do not give two times.
 *   serial  ms_sort_seq, the same merge sort without forks
 *   weft    weft_join for the two halves of each sort and of each merge
 *   omp     #pragma omp task for one half, the other inline, taskwait
 *   tbb     tbb::task_group::run for one half, the other inline, wait
 * Every output is compared with the output of qsort on the same input (qsort's own time is
 * printed once, for the record). See bench_harness.h for the method and the output.
 *
 * Usage: bench_sort [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-c CUTOFF] [-M CUTOFF]
 *   -n  elements (default 4194304)
 *   -c  sort serially at or below this many elements (default 16384)
 *   -M  merge serially at or below this many elements (default 16384)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bench_sort.h"
#include "weft.h"

static void ms_insertion(int *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int v = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

BENCH_KERNEL void ms_merge(const int *x, size_t nx, const int *y, size_t ny, int *out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < nx && j < ny) {
        /* branch-free: random keys would mispredict a branch half the time */
        int a = x[i], b = y[j];
        bool take_y = b < a;
        out[k++] = take_y ? b : a;
        j += take_y;
        i += !take_y;
    }
    memcpy(out + k, x + i, (nx - i) * sizeof *x);
    memcpy(out + k + (nx - i), y + j, (ny - j) * sizeof *y);
}

BENCH_KERNEL void ms_sort_seq(int *a, int *b, size_t n, bool to_b)
{
    if (n <= MS_SMALL) {
        ms_insertion(a, n);
        if (to_b)
            memcpy(b, a, n * sizeof *a);
        return;
    }
    size_t h = n / 2;
    ms_sort_seq(a, b, h, !to_b);
    ms_sort_seq(a + h, b + h, n - h, !to_b);
    if (to_b)
        ms_merge(a, h, a + h, n - h, b);
    else
        ms_merge(b, h, b + h, n - h, a);
}

typedef struct sort_ctx {
    size_t n;
    ms_params p;
    const int *input, *expect;
    int *a, *b;
} sort_ctx;

/* --- weft --- */

typedef struct merge_task {
    ms_merge_job m;
    size_t cutoff;
} merge_task;

static void merge_weft(void *arg)
{
    merge_task *t = arg;
    if (t->m.nx + t->m.ny <= t->cutoff) {
        ms_merge(t->m.x, t->m.nx, t->m.y, t->m.ny, t->m.out);
        return;
    }
    merge_task lo = {.cutoff = t->cutoff}, hi = {.cutoff = t->cutoff};
    ms_split(&t->m, &lo.m, &hi.m);
    weft_join(merge_weft, &lo, merge_weft, &hi);
}

typedef struct sort_task {
    int *a, *b;
    size_t n;
    bool to_b;
    const ms_params *p;
} sort_task;

static void sort_weft(void *arg)
{
    const sort_task *t = arg;
    if (t->n <= t->p->sort_cutoff) {
        ms_sort_seq(t->a, t->b, t->n, t->to_b);
        return;
    }
    size_t h = t->n / 2;
    sort_task lo = {t->a, t->b, h, !t->to_b, t->p};
    sort_task hi = {t->a + h, t->b + h, t->n - h, !t->to_b, t->p};
    weft_join(sort_weft, &lo, sort_weft, &hi);
    int *src = t->to_b ? t->a : t->b, *dst = t->to_b ? t->b : t->a;
    merge_task m = {{src, src + h, h, t->n - h, dst}, t->p->merge_cutoff};
    merge_weft(&m);
}

static int sort_weft_root(void *arg, void **result)
{
    (void)result;
    sort_weft(arg);
    return 0;
}

/* --- omp --- */

#ifdef _OPENMP
static void merge_omp(ms_merge_job m, size_t cutoff)
{
    if (m.nx + m.ny <= cutoff) {
        ms_merge(m.x, m.nx, m.y, m.ny, m.out);
        return;
    }
    ms_merge_job lo, hi;
    ms_split(&m, &lo, &hi);
#pragma omp task firstprivate(hi, cutoff)
    merge_omp(hi, cutoff);
    merge_omp(lo, cutoff);
#pragma omp taskwait
}

static void sort_omp(int *a, int *b, size_t n, bool to_b, const ms_params *p)
{
    if (n <= p->sort_cutoff) {
        ms_sort_seq(a, b, n, to_b);
        return;
    }
    size_t h = n / 2;
#pragma omp task firstprivate(a, b, h, n, to_b, p)
    sort_omp(a + h, b + h, n - h, !to_b, p);
    sort_omp(a, b, h, !to_b, p);
#pragma omp taskwait
    int *src = to_b ? a : b, *dst = to_b ? b : a;
    ms_merge_job m = {src, src + h, h, n - h, dst};
    merge_omp(m, p->merge_cutoff);
}
#endif

/* --- rows --- */

static void prepare(const bench_row *row)
{
    sort_ctx *c = row->ctx;
    memcpy(c->a, c->input, c->n * sizeof *c->a);
}

static bool verify(const bench_row *row)
{
    const sort_ctx *c = row->ctx;
    return memcmp(c->a, c->expect, c->n * sizeof *c->a) == 0;
}

static uint64_t run_serial(const bench_row *row)
{
    sort_ctx *c = row->ctx;
    ms_sort_seq(c->a, c->b, c->n, false);
    return 0;
}

static uint64_t run_weft(const bench_row *row)
{
    sort_ctx *c = row->ctx;
    sort_task t = {c->a, c->b, c->n, false, &c->p};
    bench_weft_root(row->pool, sort_weft_root, &t);
    return 0;
}

#ifdef _OPENMP
static uint64_t run_omp(const bench_row *row)
{
    sort_ctx *c = row->ctx;
#pragma omp parallel num_threads(row->threads)
#pragma omp single
    sort_omp(c->a, c->b, c->n, false, &c->p);
    return 0;
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t run_tbb(const bench_row *row)
{
    sort_ctx *c = row->ctx;
    ms_tbb(c->a, c->b, c->n, &c->p);
    return 0;
}
#endif

static int cmp_int(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-c CUTOFF] [-M CUTOFF]\n"
            "%s"
            "  -n N        elements (4194304)\n"
            "  -c CUTOFF   sort serially at or below CUTOFF elements (16384)\n"
            "  -M CUTOFF   merge serially at or below CUTOFF elements (16384)\n",
            argv0, BENCH_COMMON_USAGE);
}

int main(int argc, char **argv)
{
    bench_env env;
    bench_env_init(&env);
    sort_ctx ctx = {.n = (size_t)1 << 22, .p = {16384, 16384}};
    int opt;
    while ((opt = getopt(argc, argv, BENCH_COMMON_OPTS "n:c:M:h")) != -1) {
        if (bench_env_option(&env, opt, optarg))
            continue;
        switch (opt) {
        case 'n':
            ctx.n = (size_t)bench_parse_num('n', optarg, 1, (unsigned long long)1 << 32);
            break;
        case 'c':
            ctx.p.sort_cutoff = (size_t)bench_parse_num('c', optarg, 1, SIZE_MAX);
            break;
        case 'M':
            ctx.p.merge_cutoff = (size_t)bench_parse_num('M', optarg, 1, SIZE_MAX);
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

    bench_env_start(&env, "bench_sort");
    int *input = bench_xcalloc(ctx.n, sizeof *input);
    int *expect = bench_xcalloc(ctx.n, sizeof *expect);
    uint64_t x = 88172645463325252u;
    for (size_t i = 0; i < ctx.n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        input[i] = (int)(uint32_t)(x >> 32);
    }
    memcpy(expect, input, ctx.n * sizeof *expect);
    uint64_t t0 = bench_now_ns();
    qsort(expect, ctx.n, sizeof *expect, cmp_int);
    printf("# qsort of the input, the reference: %.3f ms\n", (double)(bench_now_ns() - t0) / 1e6);
    ctx.input = input;
    ctx.expect = expect;
    ctx.a = bench_xcalloc(ctx.n, sizeof *ctx.a);
    ctx.b = bench_xcalloc(ctx.n, sizeof *ctx.b);

    bench_case c;
    bench_case_init(&c, "sort", "merge");
    snprintf(c.params, sizeof c.params, "n=%zu sort_cutoff=%zu merge_cutoff=%zu", ctx.n,
             ctx.p.sort_cutoff, ctx.p.merge_cutoff);
    bench_add(&c, &env, BENCH_SERIAL, run_serial, &ctx);
    bench_add(&c, &env, BENCH_WEFT1, run_weft, &ctx);
    bench_add(&c, &env, BENCH_WEFTN, run_weft, &ctx);
#ifdef _OPENMP
    bench_add(&c, &env, BENCH_OMP, run_omp, &ctx);
#endif
#ifdef BENCH_HAVE_TBB
    bench_add(&c, &env, BENCH_TBB, run_tbb, &ctx);
#endif
    bench_case_io(&c, prepare, verify);
    bench_case_run(&c, &env);
    bench_env_finish(&env);
    free(input);
    free(expect);
    free(ctx.a);
    free(ctx.b);
    return 0;
}
