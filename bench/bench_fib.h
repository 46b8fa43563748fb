/* SPDX-License-Identifier: MIT */
/*
 * bench_fib.h: the kernel every fib variant shares (defined in bench_fib.c, called by
 * bench_fib_tbb.cpp too), so that all of them run the same code below the cutoff.
 */
#ifndef WEFT_BENCH_FIB_H
#define WEFT_BENCH_FIB_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest n whose fib fits 64 bits. */
#define FIB_MAX_N 92u

/* Plain recursive fib (bench_fib.c; one out-of-line copy, see BENCH_KERNEL). */
uint64_t fib_seq(unsigned n);

/* What every parallel variant computes where it stops forking: a leaf (n < 2) returns n at
 * once, as in Lace's and Cilk's fib; below the cutoff, the one out-of-line fib_seq. */
static inline uint64_t fib_below(unsigned n)
{
    return n < 2 ? n : fib_seq(n);
}

/* fib(n) with a task_group at every n >= cutoff (fib_below below), in the benchmarks' arena. */
uint64_t fib_tbb(unsigned n, unsigned cutoff);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_FIB_H */
