/* SPDX-License-Identifier: MIT */
/*
 * bench_integrate.h: the kernel every adaptive-integration variant shares (defined in
 * bench_integrate.c, called by bench_integrate_tbb.cpp too; one out-of-line copy, see
 * BENCH_KERNEL): one step of adaptive Simpson quadrature (Kuncir 1962, with
 * Lyness's Richardson correction) of f(x) = sin(1/x), which oscillates ever faster towards 0,
 * so the recursion is shallow on the right and deep near the left end: an irregular tree. The
 * variants differ only in how they run the two halves of a refined segment; they add the
 * halves in the same order, so every variant's result equals the serial one bit for bit.
 */
#ifndef WEFT_BENCH_INTEGRATE_H
#define WEFT_BENCH_INTEGRATE_H

#include <math.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IG_MAX_DEPTH 60u

static inline double ig_f(double x)
{
    return sin(1.0 / x);
}

/* A segment [a, b] with f at a, at the middle and at b, its Simpson estimate, its tolerance. */
typedef struct ig_seg {
    double a, b, fa, fm, fb, whole, eps;
    unsigned depth;
} ig_seg;

static inline ig_seg ig_root(double a, double b, double eps)
{
    ig_seg s;
    s.a = a;
    s.b = b;
    s.fa = ig_f(a);
    s.fm = ig_f((a + b) / 2);
    s.fb = ig_f(b);
    s.whole = (b - a) / 6 * (s.fa + 4 * s.fm + s.fb);
    s.eps = eps;
    s.depth = 0;
    return s;
}

/* Estimates s on its two halves. Returns false with the integral over s in *value when the
 * estimate is good enough, true with the halves in *l and *r when they need refining. */
bool ig_step(const ig_seg *s, ig_seg *l, ig_seg *r, double *value);

/* The integral over s, by plain recursion. */
double ig_serial(const ig_seg *s);

/* The integral over s with a task_group per refined segment at depth < cutoff (0: all). */
double ig_tbb(const ig_seg *s, unsigned cutoff);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_INTEGRATE_H */
