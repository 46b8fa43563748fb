/* SPDX-License-Identifier: MIT */
/*
 * bench_matmul: blocked dense matrix product C = A * B (n x n doubles), parallel over the
 * bs x bs tiles of C: a coarse-grained, regular loop whose cost is the arithmetic and the
 * memory traffic, not the scheduling. Every variant calls the same tile kernel
 * (bench_matmul.h) on the same tiles, so every C must equal the serial one bit for bit.
 *   serial  all tiles in order
 *   weft    weft_parallel_for over the tiles, grain 1
 *   omp     #pragma omp parallel for schedule(static) over the tiles
 *   tbb     tbb::parallel_for over the tiles (auto_partitioner, grain 1)
 * See bench_harness.h for the method and the output.
 *
 * Usage: bench_matmul [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-b BS]
 *   -n  matrix order (default 640)
 *   -b  tile side (default 64)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bench_matmul.h"
#include "weft.h"

BENCH_KERNEL void mm_tile(const mm_problem *p, size_t tile)
{
    size_t n = p->n, bs = p->bs;
    size_t i0 = tile / p->tiles_per_side * bs, j0 = tile % p->tiles_per_side * bs;
    size_t i1 = i0 + bs < n ? i0 + bs : n, j1 = j0 + bs < n ? j0 + bs : n;
    for (size_t k0 = 0; k0 < n; k0 += bs) {
        size_t k1 = k0 + bs < n ? k0 + bs : n;
        for (size_t i = i0; i < i1; i++) {
            double *c = p->c + i * n;
            for (size_t k = k0; k < k1; k++) {
                double a = p->a[i * n + k];
                const double *b = p->b + k * n;
                for (size_t j = j0; j < j1; j++)
                    c[j] += a * b[j];
            }
        }
    }
}

typedef struct mm_ctx {
    mm_problem p;
    const double *expect; /* the serial C */
} mm_ctx;

static size_t mm_tile_count(const mm_problem *p)
{
    return p->tiles_per_side * p->tiles_per_side;
}

static void mm_body(size_t lo, size_t hi, void *ctx)
{
    mm_tiles(ctx, lo, hi);
}

static void prepare(const bench_row *row)
{
    mm_ctx *c = row->ctx;
    memset(c->p.c, 0, c->p.n * c->p.n * sizeof *c->p.c);
}

static bool verify(const bench_row *row)
{
    const mm_ctx *c = row->ctx;
    return memcmp(c->p.c, c->expect, c->p.n * c->p.n * sizeof *c->p.c) == 0;
}

static uint64_t run_serial(const bench_row *row)
{
    mm_ctx *c = row->ctx;
    mm_tiles(&c->p, 0, mm_tile_count(&c->p));
    return 0;
}

static uint64_t run_weft(const bench_row *row)
{
    mm_ctx *c = row->ctx;
    BENCH_CHECK(weft_parallel_for(row->pool, 0, mm_tile_count(&c->p), 1, mm_body, &c->p));
    return 0;
}

#ifdef _OPENMP
static uint64_t run_omp(const bench_row *row)
{
    mm_ctx *c = row->ctx;
    long tiles = (long)mm_tile_count(&c->p);
#pragma omp parallel for schedule(static) num_threads(row->threads)
    for (long t = 0; t < tiles; t++)
        mm_tile(&c->p, (size_t)t);
    return 0;
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t run_tbb(const bench_row *row)
{
    mm_ctx *c = row->ctx;
    mm_tbb(&c->p);
    return 0;
}
#endif

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-b BS]\n"
            "%s"
            "  -n N        matrix order (640)\n"
            "  -b BS       tile side (64)\n",
            argv0, BENCH_COMMON_USAGE);
}

int main(int argc, char **argv)
{
    bench_env env;
    bench_env_init(&env);
    size_t n = 640, bs = 64;
    int opt;
    while ((opt = getopt(argc, argv, BENCH_COMMON_OPTS "n:b:h")) != -1) {
        if (bench_env_option(&env, opt, optarg))
            continue;
        switch (opt) {
        case 'n':
            n = (size_t)bench_parse_num('n', optarg, 1, 16384);
            break;
        case 'b':
            bs = (size_t)bench_parse_num('b', optarg, 1, 16384);
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

    bench_env_start(&env, "bench_matmul");
    double *a = bench_xcalloc(n * n, sizeof *a);
    double *b = bench_xcalloc(n * n, sizeof *b);
    double *cm = bench_xcalloc(n * n, sizeof *cm);
    double *expect = bench_xcalloc(n * n, sizeof *expect);
    uint64_t x = 1;
    for (size_t i = 0; i < n * n; i++) {
        /* xorshift64: values in [-1, 1) with all mantissa bits in play */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        a[i] = (double)(x >> 11) * 0x1p-52 - 1.0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (double)(x >> 11) * 0x1p-52 - 1.0;
    }
    mm_ctx ctx = {{n, bs, (n + bs - 1) / bs, a, b, expect}, expect};
    mm_tiles(&ctx.p, 0, mm_tile_count(&ctx.p)); /* the reference */
    ctx.p.c = cm;

    bench_case c;
    bench_case_init(&c, "matmul", "blocked");
    snprintf(c.params, sizeof c.params, "n=%zu bs=%zu tiles=%zu", n, bs, mm_tile_count(&ctx.p));
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
    free(a);
    free(b);
    free(cm);
    free(expect);
    return 0;
}
