/* SPDX-License-Identifier: MIT */
/*
 * scale_out.h: weft-scale's results and the files it writes from them: a text table, CSV, JSON
 * and an SVG plot of speedup against threads (or against cores, ranks times threads, with
 * --mpi; or on logarithmic axes beside the work-span bounds, with --workspan).
 */
#ifndef WEFT_SCALE_OUT_H
#define WEFT_SCALE_OUT_H

#include "scale_parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One configuration: a thread count (times a rank count with --mpi). Times are nanoseconds;
 * the derived values are NAN where undefined. */
typedef struct scale_point {
    unsigned ranks; /* MPI ranks; 1 without --mpi */
    unsigned threads;
    size_t nsamples;
    double *samples; /* in run order */
    size_t nserial;
    double *serial; /* the serial baseline each run reported, when it did */
    double median, min, max;
    double speedup;     /* T(1 rank, 1 thread) / T, medians */
    double speedup_lo;  /* over the slowest run: the bottom of the range drawn */
    double speedup_hi;  /* over the fastest run */
    double abs_speedup; /* the serial baseline's median over T: the overhead shows */
    double efficiency;  /* speedup / (ranks * threads) */
    double karp_flatt;  /* serial fraction; NAN at 1 and when oversubscribed */
    double estimate;    /* the burdened work-span estimate at ranks * threads (--workspan) */
    /* What the program said of its threads (WEFT_DISPLAY_ENV, threads= on the metric line): */
    unsigned runs_with_pools; /* runs that printed weft's settings */
    unsigned runs_matched;    /* runs with a pool of `threads` workers */
    unsigned max_workers;     /* the most workers of one pool */
    bool from_config;         /* a pool took its count from weft_config.threads */
    long reported;            /* threads=N on the metric line of the last run; -1 none */
} scale_point;

typedef struct scale_result {
    char *const *argv;       /* the command, NULL-terminated */
    const char *title;       /* for the table and the plot */
    const char *metric;      /* KEY read from the output; NULL: wall time */
    const char *match;       /* the line filter of the metric; NULL: every line */
    const char *baseline;    /* the filter of the serial baseline's lines; NULL: none */
    const char *metric_line; /* the line the last run's value came from; NULL with wall time */
    const char *version;     /* weft's */
    unsigned runs;           /* runs per configuration */
    unsigned cores;          /* usable cores: weft's default thread count */
    bool mpi;                /* ranks x threads */
    size_t npoints;
    scale_point *points; /* sorted by ranks, then threads; points[0] is 1 rank, 1 thread */
    double serial_ns;    /* median of every serial time the runs reported; NAN without */
    bool have_ws;        /* --workspan gave figures */
    scale_workspan ws;
    unsigned ws_threads; /* WEFT_THREADS of the work-span run */
    size_t nwarnings;
    char *warnings[8]; /* what the reader must know to trust the numbers, allocated */
} scale_result;

/* The usable cores a configuration asks for: ranks * threads. */
static inline unsigned scale_cores_used(const scale_point *pt)
{
    return pt->ranks * pt->threads;
}

/* Fills the derived fields of every point from its samples (sorting copies of them). */
void scale_compute(scale_result *r);

/* Adds to r->warnings what the runs say about the measurement itself: a program that set its
 * own thread count or reported another one than WEFT_THREADS, or times that did not move at
 * all while WEFT_THREADS did. Call after scale_compute. */
void scale_diagnose(scale_result *r);

/* Frees r->warnings. */
void scale_free_warnings(scale_result *r);

/* The table, as weft-scale prints it. */
void scale_print_table(const scale_result *r, FILE *fp);

/* Each writes one file; 0 or a negative errno. */
int scale_write_csv(const scale_result *r, const char *path);
int scale_write_json(const scale_result *r, const char *path);
int scale_write_svg(const scale_result *r, const char *path);

#endif /* WEFT_SCALE_OUT_H */
