/* SPDX-License-Identifier: MIT */
/*
 * bench_loops: data-parallel loops, where the peers are at their most idiomatic. The bodies are
 * in bench_loops.h.
 *   parallel_for/uniform   out[i] = work(i) for n indices of equal cost (about 50 ns each)
 *   parallel_for/skewed    the same with index i costing 1 + 2 k i / n steps: a static split
 *                          in equal index ranges gives the last thread most of the work
 *   parallel_reduce/uniform   the sum of n cheap work(i) (a few ns each)
 * Rows of every case:
 *   serial  the plain loop
 *   weft    weft_parallel_for (or weft_parallel_reduce) with grain 0, called from outside the
 *           pool
 *   omp     #pragma omp parallel for schedule(static), and schedule(dynamic, CHUNK) (variants
 *           static and dynamic), with reduction(+:sum) for the reduction
 *   tbb     tbb::parallel_for / tbb::parallel_reduce, blocked_range, auto_partitioner
 * See bench_harness.h for the method and the output.
 *
 * Usage: bench_loops [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-k STEPS] [-N N] [-K STEPS]
 *                    [-d CHUNK] [-w CASES]
 *   -n  indices of the parallel_for cases (default 1048576)
 *   -k  steps per index, uniform; mean steps - 1, skewed (default 32)
 *   -N  indices of the reduction (default 8388608)
 *   -K  steps per index of the reduction (default 4)
 *   -d  chunk of the OpenMP dynamic schedule (default 1, OpenMP's own default)
 *   -w  comma-separated subset of uniform,skewed,reduce (default all)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bench_loops.h"
#include "weft.h"

BENCH_KERNEL uint64_t lp_work(uint64_t i, unsigned steps)
{
    uint64_t x = i;
    for (unsigned s = 0; s < steps; s++)
        x = (x ^ (x >> 32)) * 0xd6e8feb86659fd93u + 1;
    return x;
}

typedef struct lp_ctx {
    size_t n;
    unsigned k;
    long chunk;
    uint64_t *out;
    const uint64_t *expect;
} lp_ctx;

static void prepare(const bench_row *row)
{
    lp_ctx *c = row->ctx;
    memset(c->out, 0, c->n * sizeof *c->out);
}

static bool verify(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    return memcmp(c->out, c->expect, c->n * sizeof *c->out) == 0;
}

/* --- uniform --- */

static void weft_uniform_body(size_t lo, size_t hi, void *ctx)
{
    const lp_ctx *c = ctx;
    lp_uniform(c->out, lo, hi, c->k);
}

static uint64_t serial_uniform(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    lp_uniform(c->out, 0, c->n, c->k);
    return 0;
}

static uint64_t weft_uniform(const bench_row *row)
{
    BENCH_CHECK(weft_parallel_for(row->pool, 0, ((const lp_ctx *)row->ctx)->n, 0, weft_uniform_body,
                                  row->ctx));
    return 0;
}

#ifdef _OPENMP
static uint64_t omp_uniform_static(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    uint64_t *out = c->out;
    long n = (long)c->n;
    unsigned k = c->k;
#pragma omp parallel for schedule(static) num_threads(row->threads)
    for (long i = 0; i < n; i++)
        out[i] = lp_work((uint64_t)i, k);
    return 0;
}

static uint64_t omp_uniform_dynamic(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    uint64_t *out = c->out;
    long n = (long)c->n;
    unsigned k = c->k;
#pragma omp parallel for schedule(dynamic, c->chunk) num_threads(row->threads)
    for (long i = 0; i < n; i++)
        out[i] = lp_work((uint64_t)i, k);
    return 0;
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t tbb_uniform(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    lp_tbb_uniform(c->out, c->n, c->k);
    return 0;
}
#endif

/* --- skewed --- */

static void weft_skewed_body(size_t lo, size_t hi, void *ctx)
{
    const lp_ctx *c = ctx;
    lp_skewed(c->out, lo, hi, c->n, c->k);
}

static uint64_t serial_skewed(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    lp_skewed(c->out, 0, c->n, c->n, c->k);
    return 0;
}

static uint64_t weft_skewed(const bench_row *row)
{
    BENCH_CHECK(weft_parallel_for(row->pool, 0, ((const lp_ctx *)row->ctx)->n, 0, weft_skewed_body,
                                  row->ctx));
    return 0;
}

#ifdef _OPENMP
static uint64_t omp_skewed_static(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    uint64_t *out = c->out;
    long n = (long)c->n;
    unsigned k = c->k;
#pragma omp parallel for schedule(static) num_threads(row->threads)
    for (long i = 0; i < n; i++)
        out[i] = lp_work((uint64_t)i, lp_skew_steps((size_t)i, (size_t)n, k));
    return 0;
}

static uint64_t omp_skewed_dynamic(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    uint64_t *out = c->out;
    long n = (long)c->n;
    unsigned k = c->k;
#pragma omp parallel for schedule(dynamic, c->chunk) num_threads(row->threads)
    for (long i = 0; i < n; i++)
        out[i] = lp_work((uint64_t)i, lp_skew_steps((size_t)i, (size_t)n, k));
    return 0;
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t tbb_skewed(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    lp_tbb_skewed(c->out, c->n, c->k);
    return 0;
}
#endif

/* --- reduce --- */

static void weft_sum_body(size_t lo, size_t hi, void *acc, void *ctx)
{
    const lp_ctx *c = ctx;
    *(uint64_t *)acc += lp_sum(lo, hi, c->k);
}

static void weft_sum_combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc += *(const uint64_t *)other;
}

static uint64_t serial_sum(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    return lp_sum(0, c->n, c->k);
}

static uint64_t weft_sum(const bench_row *row)
{
    const uint64_t zero = 0;
    uint64_t sum = 0;
    BENCH_CHECK(weft_parallel_reduce(row->pool, 0, ((const lp_ctx *)row->ctx)->n, 0, sizeof sum,
                                     &zero, weft_sum_body, weft_sum_combine, row->ctx, &sum));
    return sum;
}

#ifdef _OPENMP
static uint64_t omp_sum_static(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    long n = (long)c->n;
    unsigned k = c->k;
    uint64_t sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum) num_threads(row->threads)
    for (long i = 0; i < n; i++)
        sum += lp_work((uint64_t)i, k);
    return sum;
}

static uint64_t omp_sum_dynamic(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    long n = (long)c->n;
    unsigned k = c->k;
    uint64_t sum = 0;
#pragma omp parallel for schedule(dynamic, c->chunk) reduction(+ : sum) num_threads(row->threads)
    for (long i = 0; i < n; i++)
        sum += lp_work((uint64_t)i, k);
    return sum;
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t tbb_sum(const bench_row *row)
{
    const lp_ctx *c = row->ctx;
    return lp_tbb_sum(c->n, c->k);
}
#endif

/* --- cases --- */

typedef struct lp_impls {
    bench_run_fn serial, weft, omp_static, omp_dynamic, tbb;
} lp_impls;

static void run_case(bench_env *env, const char *bench, const char *name, lp_ctx *ctx,
                     const lp_impls *f, bool array)
{
    bench_case c;
    bench_case_init(&c, bench, name);
    snprintf(c.params, sizeof c.params, "n=%zu steps=%u chunk=%ld", ctx->n, ctx->k, ctx->chunk);
    bench_add(&c, env, BENCH_SERIAL, f->serial, ctx);
    bench_add(&c, env, BENCH_WEFT1, f->weft, ctx);
    bench_add(&c, env, BENCH_WEFTN, f->weft, ctx);
    bench_row *row;
    if ((row = bench_add(&c, env, BENCH_OMP, f->omp_static, ctx)) != NULL)
        row->variant = "static";
    if ((row = bench_add(&c, env, BENCH_OMP, f->omp_dynamic, ctx)) != NULL)
        row->variant = "dynamic";
    bench_add(&c, env, BENCH_TBB, f->tbb, ctx);
    if (array) {
        uint64_t *expect = bench_xcalloc(ctx->n, sizeof *expect);
        ctx->out = expect;
        f->serial(&c.rows[0]);
        ctx->expect = expect;
        ctx->out = bench_xcalloc(ctx->n, sizeof *ctx->out);
        bench_case_io(&c, prepare, verify);
    }
    bench_case_run(&c, env);
    free(ctx->out);
    free((void *)ctx->expect);
    ctx->out = NULL;
    ctx->expect = NULL;
}

#ifdef _OPENMP
#define LP_OMP(fn) fn
#else
#define LP_OMP(fn) NULL
#endif
#ifdef BENCH_HAVE_TBB
#define LP_TBB(fn) fn
#else
#define LP_TBB(fn) NULL
#endif

enum { W_UNIFORM = 1, W_SKEWED = 2, W_REDUCE = 4 };

static unsigned parse_cases(const char *s)
{
    unsigned mask = 0;
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        if (len == 7 && strncmp(s, "uniform", len) == 0)
            mask |= W_UNIFORM;
        else if (len == 6 && strncmp(s, "skewed", len) == 0)
            mask |= W_SKEWED;
        else if (len == 6 && strncmp(s, "reduce", len) == 0)
            mask |= W_REDUCE;
        else {
            fprintf(stderr, "-w: unknown case '%.*s' (uniform, skewed, reduce)\n", (int)len, s);
            exit(2);
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return mask;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-k STEPS] [-N N] [-K STEPS]\n"
            "          [-d CHUNK] [-w CASES]\n"
            "%s"
            "  -n N        indices of the parallel_for cases (1048576)\n"
            "  -k STEPS    steps per index, uniform; mean steps - 1, skewed (32)\n"
            "  -N N        indices of the reduction (8388608)\n"
            "  -K STEPS    steps per index of the reduction (4)\n"
            "  -d CHUNK    chunk of the OpenMP dynamic schedule (1)\n"
            "  -w CASES    comma-separated subset of uniform,skewed,reduce (all)\n",
            argv0, BENCH_COMMON_USAGE);
}

int main(int argc, char **argv)
{
    bench_env env;
    bench_env_init(&env);
    size_t n = (size_t)1 << 20, nr = (size_t)1 << 23;
    unsigned k = 32, kr = 4, which = W_UNIFORM | W_SKEWED | W_REDUCE;
    long chunk = 1;
    int opt;
    while ((opt = getopt(argc, argv, BENCH_COMMON_OPTS "n:k:N:K:d:w:h")) != -1) {
        if (bench_env_option(&env, opt, optarg))
            continue;
        switch (opt) {
        case 'n':
            n = (size_t)bench_parse_num('n', optarg, 1, (unsigned long long)1 << 34);
            break;
        case 'k':
            k = (unsigned)bench_parse_num('k', optarg, 0, 1000000);
            break;
        case 'N':
            nr = (size_t)bench_parse_num('N', optarg, 1, (unsigned long long)1 << 40);
            break;
        case 'K':
            kr = (unsigned)bench_parse_num('K', optarg, 0, 1000000);
            break;
        case 'd':
            chunk = (long)bench_parse_num('d', optarg, 1, (unsigned long long)1 << 40);
            break;
        case 'w':
            which = parse_cases(optarg);
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

    bench_env_start(&env, "bench_loops");
    if (which & W_UNIFORM) {
        lp_ctx ctx = {n, k, chunk, NULL, NULL};
        lp_impls f = {serial_uniform, weft_uniform, LP_OMP(omp_uniform_static),
                      LP_OMP(omp_uniform_dynamic), LP_TBB(tbb_uniform)};
        run_case(&env, "parallel_for", "uniform", &ctx, &f, true);
    }
    if (which & W_SKEWED) {
        lp_ctx ctx = {n, k, chunk, NULL, NULL};
        lp_impls f = {serial_skewed, weft_skewed, LP_OMP(omp_skewed_static),
                      LP_OMP(omp_skewed_dynamic), LP_TBB(tbb_skewed)};
        run_case(&env, "parallel_for", "skewed", &ctx, &f, true);
    }
    if (which & W_REDUCE) {
        lp_ctx ctx = {nr, kr, chunk, NULL, NULL};
        lp_impls f = {serial_sum, weft_sum, LP_OMP(omp_sum_static), LP_OMP(omp_sum_dynamic),
                      LP_TBB(tbb_sum)};
        run_case(&env, "parallel_reduce", "uniform", &ctx, &f, false);
    }
    bench_env_finish(&env);
    return 0;
}
