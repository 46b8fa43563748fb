/* SPDX-License-Identifier: MIT */
/*
 * bench_sort.h: the kernels every merge sort variant shares (defined in bench_sort.c, called by
 * bench_sort_tbb.cpp too; one out-of-line copy each, see BENCH_KERNEL): the serial merge sort
 * the parallel ones call below their cutoff, the serial merge, and the split that lets a
 * parallel merge cut a merge in two independent halves.
 *
 * The sort ping-pongs between the array and a scratch array of the same size: sorting into the
 * scratch array sorts both halves into the array, then merges them across, and the other way
 * round, so no level copies.
 */
#ifndef WEFT_BENCH_SORT_H
#define WEFT_BENCH_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS_SMALL 32 /* insertion sort at or below this many elements */

typedef struct ms_params {
    size_t sort_cutoff;  /* sort serially at or below this many elements */
    size_t merge_cutoff; /* merge serially at or below this many elements */
} ms_params;

/* Merges the sorted x[0, nx) and y[0, ny) into out. */
void ms_merge(const int *x, size_t nx, const int *y, size_t ny, int *out);

/* Sorts a[0, n); the result lands in b when to_b, else in a. b is scratch of n elements. */
void ms_sort_seq(int *a, int *b, size_t n, bool to_b);

/* A merge of x[0, nx) and y[0, ny) into out. */
typedef struct ms_merge_job {
    const int *x, *y;
    size_t nx, ny;
    int *out;
} ms_merge_job;

/* Cuts a merge in two that can run in parallel: the middle of the longer input, and where it
 * falls in the shorter one (lower bound). */
static inline void ms_split(const ms_merge_job *m, ms_merge_job *lo, ms_merge_job *hi)
{
    const int *x = m->x, *y = m->y;
    size_t nx = m->nx, ny = m->ny;
    if (nx < ny) {
        const int *t = x;
        x = y;
        y = t;
        size_t tn = nx;
        nx = ny;
        ny = tn;
    }
    size_t mx = nx / 2, l = 0, r = ny;
    int v = x[mx];
    while (l < r) {
        size_t mid = l + (r - l) / 2;
        if (y[mid] < v)
            l = mid + 1;
        else
            r = mid;
    }
    lo->x = x, lo->nx = mx, lo->y = y, lo->ny = l, lo->out = m->out;
    hi->x = x + mx, hi->nx = nx - mx, hi->y = y + l, hi->ny = ny - l, hi->out = m->out + mx + l;
}

/* Sorts a[0, n) in place (b scratch) with task_groups, in the benchmarks' arena. */
void ms_tbb(int *a, int *b, size_t n, const ms_params *p);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_SORT_H */
