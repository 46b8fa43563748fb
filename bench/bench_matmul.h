/* SPDX-License-Identifier: MIT */
/*
 * bench_matmul.h: the kernel every matmul variant shares (defined in bench_matmul.c, called by
 * bench_matmul_tbb.cpp too). C = A * B for n x n row-major doubles, cut into tiles of bs x bs
 * elements of C; a tile is computed whole by one call, k-block by k-block in order, so every
 * element of C sums its products in the same order in every variant and all variants agree to
 * the last bit.
 */
#ifndef WEFT_BENCH_MATMUL_H
#define WEFT_BENCH_MATMUL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_problem {
    size_t n, bs, tiles_per_side; /* tiles_per_side = ceil(n / bs) */
    const double *a, *b;
    double *c; /* zeroed before each run */
} mm_problem;

/* Adds A * B into tile `tile` of C (row-major numbering of the tiles). Defined in
 * bench_matmul.c (one out-of-line copy, see BENCH_KERNEL). */
void mm_tile(const mm_problem *p, size_t tile);

/* Tiles [lo, hi). */
static inline void mm_tiles(const mm_problem *p, size_t lo, size_t hi)
{
    for (size_t t = lo; t < hi; t++)
        mm_tile(p, t);
}

/* All tiles with tbb::parallel_for (auto_partitioner, grain 1), in the benchmarks' arena. */
void mm_tbb(const mm_problem *p);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_MATMUL_H */
