/* SPDX-License-Identifier: MIT */
/*
 * scale_out.h: weft-scale's results and the files it writes from them: a text table, CSV, JSON
 * and an SVG plot of speedup against threads.
 */
#ifndef WEFT_SCALE_OUT_H
#define WEFT_SCALE_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One thread count. Times are nanoseconds; the derived values are NAN where undefined. */
typedef struct scale_point {
    unsigned threads;
    size_t nsamples;
    double *samples; /* in run order */
    double median, min, max;
    double speedup;    /* T1 / Tp, medians */
    double speedup_lo; /* T1 / the slowest run at p: the bottom of the range drawn */
    double speedup_hi; /* T1 / the fastest run at p */
    double efficiency; /* speedup / p */
    double karp_flatt; /* serial fraction; NAN at p = 1 */
} scale_point;

typedef struct scale_result {
    char *const *argv;       /* the command, NULL-terminated */
    const char *title;       /* for the table and the plot */
    const char *metric;      /* KEY read from the output; NULL: wall time */
    const char *match;       /* the line filter of the metric; NULL: every line */
    const char *metric_line; /* the line the last run's value came from; NULL with wall time */
    const char *version;     /* weft's */
    unsigned runs;           /* runs per thread count */
    unsigned cores;          /* usable cores: weft's default thread count */
    size_t npoints;
    scale_point *points; /* sorted by threads; points[0].threads == 1 */
} scale_result;

/* Fills the derived fields of every point from its samples (sorting a copy of them). */
void scale_compute(scale_result *r);

/* The table, as weft-scale prints it. */
void scale_print_table(const scale_result *r, FILE *fp);

/* Each writes one file; 0 or a negative errno. */
int scale_write_csv(const scale_result *r, const char *path);
int scale_write_json(const scale_result *r, const char *path);
int scale_write_svg(const scale_result *r, const char *path);

#endif /* WEFT_SCALE_OUT_H */
