/* SPDX-License-Identifier: MIT */
/*
 * bench_loops.h: the loop bodies every bench_loops variant shares (bench_loops.c,
 * bench_loops_tbb.cpp). Index i costs a call of lp_work: `steps` rounds of a multiply-xorshift
 * chain (a dependent chain the compiler cannot vectorise or shorten), whose result goes to
 * out[i] or into a sum.
 */
#ifndef WEFT_BENCH_LOOPS_H
#define WEFT_BENCH_LOOPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The work of index i (bench_loops.c; one out-of-line copy that every variant's loop calls,
 * see BENCH_KERNEL). */
uint64_t lp_work(uint64_t i, unsigned steps);

/* Skewed cost: index i of n costs 1 + 2 k i / n steps, growing linearly from 1 to 2k + 1
 * (k + 1 on average), so the last quarter of the range holds 7/16 of the work. */
static inline unsigned lp_skew_steps(size_t i, size_t n, unsigned k)
{
    return 1 + (unsigned)((uint64_t)2 * k * i / n);
}

static inline void lp_uniform(uint64_t *out, size_t lo, size_t hi, unsigned k)
{
    for (size_t i = lo; i < hi; i++)
        out[i] = lp_work(i, k);
}

static inline void lp_skewed(uint64_t *out, size_t lo, size_t hi, size_t n, unsigned k)
{
    for (size_t i = lo; i < hi; i++)
        out[i] = lp_work(i, lp_skew_steps(i, n, k));
}

static inline uint64_t lp_sum(size_t lo, size_t hi, unsigned k)
{
    uint64_t sum = 0;
    for (size_t i = lo; i < hi; i++)
        sum += lp_work(i, k);
    return sum;
}

/* tbb::parallel_for (auto_partitioner) over [0, n), and tbb::parallel_reduce of lp_sum. */
void lp_tbb_uniform(uint64_t *out, size_t n, unsigned k);
void lp_tbb_skewed(uint64_t *out, size_t n, unsigned k);
uint64_t lp_tbb_sum(size_t n, unsigned k);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_LOOPS_H */
