/* SPDX-License-Identifier: MIT */
/*
 * scale_math.h: the arithmetic of weft-scale (header-only, so that its unit test includes the
 * very code the tool runs).
 *
 * Speedup at p threads is S = T1 / Tp, both medians; efficiency is S / p; the Karp-Flatt metric
 * is the experimentally determined serial fraction
 *
 *     e = (1/S - 1/p) / (1 - 1/p)
 *
 * (A. H. Karp and H. P. Flatt, "Measuring parallel processor performance", CACM 33(5), 1990).
 * Amdahl's law with serial fraction f gives S = 1 / (f + (1 - f) / p), and then e = f for every
 * p: a constant e means the loss is a fixed serial part, an e that grows with p means overhead
 * that grows with the thread count (scheduling, contention, oversubscription). It is undefined
 * at p = 1, where both numerator and denominator vanish; the functions return NAN there, and
 * the writers print that as "-" or an empty field. It is not reported for more threads than
 * cores either: there the loss is the oversubscription itself, not a property of the program.
 *
 * Work and span (WEFT_WORKSPAN, as Cilkscale reports them): with work T1 and span Tinf, no
 * schedule beats min(P, T1 / Tinf) on P processors (the work and span laws), and a greedy
 * work-stealing scheduler whose steals and waits cost what the burdened span counts takes about
 * T1 / P + burdened span, so its speedup is about T1 / (T1 / P + burdened span).
 */
#ifndef WEFT_SCALE_MATH_H
#define WEFT_SCALE_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

static inline int scale_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n): the middle value, or the mean of the two middle ones for even n.
 * Sorts v in place. NAN for n == 0. */
static inline double scale_median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof(*v), scale_cmp_double);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* T1 / Tp; NAN unless both are positive. */
static inline double scale_speedup(double t1, double tp)
{
    return t1 > 0 && tp > 0 ? t1 / tp : NAN;
}

/* S / p; NAN for p == 0. */
static inline double scale_efficiency(double speedup, unsigned p)
{
    return p > 0 ? speedup / (double)p : NAN;
}

/* The Karp-Flatt serial fraction; NAN for p <= 1 or a speedup that is not positive. */
static inline double scale_karp_flatt(double speedup, unsigned p)
{
    if (p <= 1 || !(speedup > 0))
        return NAN;
    double inv_p = 1.0 / (double)p;
    return (1.0 / speedup - inv_p) / (1.0 - inv_p);
}

/* The work-span bound on the speedup at p processors: min(p, parallelism). NAN unless both are
 * positive. */
static inline double scale_span_bound(unsigned p, double parallelism)
{
    if (p == 0 || !(parallelism > 0))
        return NAN;
    return (double)p < parallelism ? (double)p : parallelism;
}

/* The burdened estimate of the speedup at p processors: work / (work / p + burdened_span).
 * NAN unless work is positive and the burdened span is not negative. */
static inline double scale_burdened_speedup(unsigned p, double work, double burdened_span)
{
    if (p == 0 || !(work > 0) || !(burdened_span >= 0))
        return NAN;
    return work / (work / (double)p + burdened_span);
}

/* The smallest step of the form 1, 2 or 5 times a power of ten that covers [0, range] in at
 * most max_ticks steps: axis ticks a reader can add up. 1 for a range that is not positive. */
static inline double scale_nice_step(double range, int max_ticks)
{
    if (!(range > 0) || max_ticks < 1)
        return 1.0;
    double raw = range / (double)max_ticks;
    double mag = pow(10.0, floor(log10(raw)));
    static const double mult[] = {1.0, 2.0, 5.0, 10.0};
    for (size_t i = 0; i < sizeof(mult) / sizeof(mult[0]); i++) {
        if (mult[i] * mag >= raw * (1.0 - 1e-9))
            return mult[i] * mag;
    }
    return 10.0 * mag;
}

#endif /* WEFT_SCALE_MATH_H */
