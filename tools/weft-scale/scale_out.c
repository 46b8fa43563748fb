/* SPDX-License-Identifier: MIT */
/*
 * The table, CSV, JSON and SVG that weft-scale writes, and the derived numbers they show.
 *
 * Every number goes through "%.15g" (times) or "%.6f" (ratios) with the C locale's decimal
 * point, and every string through one escaper that also replaces bytes which are not valid
 * UTF-8, so that the JSON and the SVG stay well-formed whatever the command line holds.
 */
#include "scale_out.h"

#include "scale_math.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The median, minimum and maximum of v[0..n), from a sorted copy; NAN for n == 0. */
static void summarize(const double *v, size_t n, double *median, double *min, double *max)
{
    double *copy = n > 0 ? malloc(n * sizeof(*copy)) : NULL;
    if (copy == NULL) {
        *median = *min = *max = NAN;
        return;
    }
    memcpy(copy, v, n * sizeof(*copy));
    *median = scale_median(copy, n);
    *min = copy[0];
    *max = copy[n - 1];
    free(copy);
}

static bool oversubscribed(const scale_result *r, const scale_point *pt)
{
    return r->cores > 0 && scale_cores_used(pt) > r->cores;
}

void scale_compute(scale_result *r)
{
    double t1 = NAN;
    size_t nserial = 0;
    for (size_t i = 0; i < r->npoints; i++) {
        scale_point *pt = &r->points[i];
        summarize(pt->samples, pt->nsamples, &pt->median, &pt->min, &pt->max);
        if (scale_cores_used(pt) == 1)
            t1 = pt->median;
        nserial += pt->nserial;
    }
    /* The serial baseline does not depend on the thread count: every run's value counts. */
    r->serial_ns = NAN;
    double *all = nserial > 0 ? malloc(nserial * sizeof(*all)) : NULL;
    if (all != NULL) {
        size_t k = 0;
        for (size_t i = 0; i < r->npoints; i++) {
            if (r->points[i].nserial == 0)
                continue; /* serial may be NULL then */
            memcpy(all + k, r->points[i].serial, r->points[i].nserial * sizeof(*all));
            k += r->points[i].nserial;
        }
        r->serial_ns = scale_median(all, k);
        free(all);
    }
    for (size_t i = 0; i < r->npoints; i++) {
        scale_point *pt = &r->points[i];
        unsigned p = scale_cores_used(pt);
        /* At p = 1 the speedup is 1 by definition, not a quotient that rounding could move. */
        pt->speedup = p == 1 ? 1.0 : scale_speedup(t1, pt->median);
        pt->speedup_lo = scale_speedup(t1, pt->max);
        pt->speedup_hi = scale_speedup(t1, pt->min);
        pt->abs_speedup = scale_speedup(r->serial_ns, pt->median);
        pt->efficiency = scale_efficiency(pt->speedup, p);
        pt->karp_flatt = oversubscribed(r, pt) ? NAN : scale_karp_flatt(pt->speedup, p);
        pt->estimate =
            r->have_ws ? scale_burdened_speedup(p, r->ws.work_ns, r->ws.burdened_span_ns) : NAN;
    }
}

__attribute__((format(printf, 2, 3))) static void warn(scale_result *r, const char *fmt, ...)
{
    if (r->nwarnings == sizeof(r->warnings) / sizeof(r->warnings[0]))
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *copy = strdup(buf);
    if (copy != NULL)
        r->warnings[r->nwarnings++] = copy;
}

void scale_free_warnings(scale_result *r)
{
    for (size_t i = 0; i < r->nwarnings; i++)
        free(r->warnings[i]);
    r->nwarnings = 0;
}

/* Appends " N" to a list of counts kept in buf (for messages). */
static void list_add(char *buf, size_t len, unsigned n)
{
    size_t k = strlen(buf);
    if (k + 16 < len)
        snprintf(buf + k, len - k, "%s%u", k > 0 ? "," : "", n);
}

void scale_diagnose(scale_result *r)
{
    char unmatched[128] = "", reported[128] = "";
    unsigned checked = 0, runs_with_pools = 0, max_workers = 0;
    bool from_config = false;
    long other = -1;
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        runs_with_pools += pt->runs_with_pools;
        if (pt->threads < 2)
            continue;
        checked++;
        /* The settings weft printed: no pool of the size WEFT_THREADS asked for. */
        if (pt->runs_with_pools > 0 && pt->runs_matched == 0) {
            list_add(unmatched, sizeof(unmatched), pt->threads);
            from_config = from_config || pt->from_config;
            max_workers = pt->max_workers > max_workers ? pt->max_workers : max_workers;
        }
        /* The program's own threads= on the line timed. */
        if (pt->reported >= 0 && pt->reported != (long)pt->threads) {
            list_add(reported, sizeof(reported), pt->threads);
            other = pt->reported;
        }
    }
    if (unmatched[0] != '\0')
        warn(r,
             "at WEFT_THREADS=%s no pool of the program had that many workers (the largest had "
             "%u%s): the program sets its own thread count, so these speedups do not measure "
             "scaling",
             unmatched, max_workers, from_config ? ", set by weft_config.threads" : "");
    if (reported[0] != '\0')
        warn(r,
             "at WEFT_THREADS=%s the line timed reports another thread count (threads=%ld): "
             "it does not follow WEFT_THREADS",
             reported, other);
    /* Nothing to go by but the times: flat within 10% at every count up to the cores. */
    if (checked > 0 && runs_with_pools == 0 && unmatched[0] == '\0' && reported[0] == '\0') {
        bool flat = true;
        unsigned within = 0;
        for (size_t i = 0; i < r->npoints; i++) {
            const scale_point *pt = &r->points[i];
            if (pt->threads < 2 || oversubscribed(r, pt))
                continue;
            within++;
            flat = flat && isfinite(pt->speedup) && fabs(pt->speedup - 1.0) < 0.1;
        }
        if (within > 0 && flat)
            warn(r, "the time did not change with WEFT_THREADS (speedup within 10%% of 1 up to the "
                    "cores) and no weft pool printed its settings: does the program fix its own "
                    "thread count, or not use weft at all?");
    }
}

/* --- strings --- */

/* The length of the valid UTF-8 sequence at s (at most n bytes), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = s[0] & 0x1Fu;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = s[0] & 0x0Fu;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

enum esc { ESC_JSON, ESC_XML };

/* Writes s escaped for a JSON string (without the quotes) or XML text and attributes. Bytes
 * that are not valid UTF-8 become '?', as do control characters in XML, which cannot hold
 * them. */
static void put_escaped(FILE *fp, const char *s, enum esc mode)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t len = utf8_len(p, n);
        if (len == 0) {
            fputc('?', fp);
            p++;
            n--;
            continue;
        }
        if (len > 1) {
            fwrite(p, 1, len, fp);
        } else if (mode == ESC_JSON) {
            if (*p == '"' || *p == '\\')
                fprintf(fp, "\\%c", *p);
            else if (*p < 0x20)
                fprintf(fp, "\\u%04x", *p);
            else
                fputc(*p, fp);
        } else {
            switch (*p) {
            case '&':
                fputs("&amp;", fp);
                break;
            case '<':
                fputs("&lt;", fp);
                break;
            case '>':
                fputs("&gt;", fp);
                break;
            case '"':
                fputs("&quot;", fp);
                break;
            case '\'':
                fputs("&apos;", fp);
                break;
            default:
                fputc(*p < 0x20 ? '?' : *p, fp);
                break;
            }
        }
        p += len;
        n -= len;
    }
}

static void put_json_string(FILE *fp, const char *s)
{
    if (s == NULL) {
        fputs("null", fp);
        return;
    }
    fputc('"', fp);
    put_escaped(fp, s, ESC_JSON);
    fputc('"', fp);
}

/* A number, or null (JSON) / nothing (CSV) when it is not finite. */
static void put_num(FILE *fp, const char *fmt, double v, const char *none)
{
    if (isfinite(v))
        fprintf(fp, fmt, v);
    else
        fputs(none, fp);
}

/* Opens path for writing; the writers report errors through close_file. */
static FILE *open_file(const char *path, int *err)
{
    FILE *fp = fopen(path, "w");
    *err = fp == NULL ? -errno : 0;
    return fp;
}

static int close_file(FILE *fp)
{
    int err = ferror(fp) ? -EIO : 0;
    if (fclose(fp) != 0 && err == 0)
        err = errno != 0 ? -errno : -EIO;
    return err;
}

/* --- table --- */

/* A unit for times around ns: the one that gives T1 a few digits before the point. */
static const char *time_unit(double ns, double *div)
{
    if (ns < 1e5) {
        *div = 1e3;
        return "us";
    }
    if (ns < 1e10) {
        *div = 1e6;
        return "ms";
    }
    *div = 1e9;
    return "s";
}

static void describe_time(const scale_result *r, FILE *fp)
{
    if (r->metric == NULL) {
        fputs("time: wall clock of each run (fork to exit)", fp);
        return;
    }
    fprintf(fp, "time: the last %s= in each run's output", r->metric);
    if (r->match != NULL)
        fprintf(fp, " on a line matching '%s'", r->match);
}

/* A space, then a ratio right-aligned in w characters, or "-" there. */
static void put_col(FILE *fp, int w, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(fp, fmt, w, v);
    else
        fprintf(fp, " %*s", w, "-");
}

/* The thread (or core) counts of the work-span table: powers of two up to 256 and every count
 * measured, in order, each once. Returns how many were written to out (room for 300). */
static size_t ws_counts(const scale_result *r, unsigned *out)
{
    size_t n = 0;
    for (unsigned p = 1; p <= 256; p *= 2)
        out[n++] = p;
    for (size_t i = 0; i < r->npoints && n < 300; i++) {
        unsigned p = scale_cores_used(&r->points[i]);
        bool seen = false;
        for (size_t k = 0; k < n; k++)
            seen = seen || out[k] == p;
        if (!seen)
            out[n++] = p;
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: a few dozen entries */
        unsigned v = out[i];
        size_t k = i;
        while (k > 0 && out[k - 1] > v) {
            out[k] = out[k - 1];
            k--;
        }
        out[k] = v;
    }
    return n;
}

/* The measured speedup at p cores used: the median of the points there (several with --mpi),
 * the one with 1 rank first. NAN when none was measured. */
static double measured_at(const scale_result *r, unsigned p)
{
    for (size_t i = 0; i < r->npoints; i++) {
        if (scale_cores_used(&r->points[i]) == p && r->points[i].ranks == 1)
            return r->points[i].speedup;
    }
    for (size_t i = 0; i < r->npoints; i++) {
        if (scale_cores_used(&r->points[i]) == p)
            return r->points[i].speedup;
    }
    return NAN;
}

static void print_workspan(const scale_result *r, FILE *fp)
{
    double div;
    const char *unit = time_unit(r->ws.work_ns, &div);
    fprintf(fp,
            "work-span (one run with WEFT_WORKSPAN at WEFT_THREADS=%u): work %.3f %s, span %.3f "
            "%s, parallelism %.1f, burdened span %.3f %s\n",
            r->ws_threads, r->ws.work_ns / div, unit, r->ws.span_ns / div, unit, r->ws.parallelism,
            r->ws.burdened_span_ns / div, unit);
    fprintf(fp, "%8s %9s %9s %9s %18s\n", r->mpi ? "cores" : "threads", "bound", "burdened",
            "measured", "measured/burdened");
    unsigned counts[300];
    size_t n = ws_counts(r, counts);
    for (size_t i = 0; i < n; i++) {
        unsigned p = counts[i];
        double est = scale_burdened_speedup(p, r->ws.work_ns, r->ws.burdened_span_ns);
        double m = measured_at(r, p);
        fprintf(fp, "%8u", p);
        put_col(fp, 9, " %*.2f", scale_span_bound(p, r->ws.parallelism));
        put_col(fp, 9, " %*.2f", est);
        if (isfinite(m)) {
            put_col(fp, 9, " %*.2f", m);
            put_col(fp, 18, " %*.2f", m / est);
        }
        fputc('\n', fp);
    }
    fputs("bound: min(P, parallelism); burdened: work / (work/P + burdened span); "
          "measured/burdened near 1 means the estimate holds where it can be checked\n",
          fp);
}

void scale_print_table(const scale_result *r, FILE *fp)
{
    bool over = false, abs = isfinite(r->serial_ns);
    fprintf(fp, "weft-scale: %s\n", r->title);
    describe_time(r, fp);
    fprintf(fp, "; median of %u run%s per %s, interleaved; %u usable core%s\n", r->runs,
            r->runs == 1 ? "" : "s", r->mpi ? "configuration" : "thread count", r->cores,
            r->cores == 1 ? "" : "s");
    double div;
    const char *unit = time_unit(r->npoints > 0 ? r->points[0].median : 0, &div);
    if (abs)
        fprintf(fp, "serial baseline (lines matching '%s'): %.3f %s\n", r->baseline,
                r->serial_ns / div, unit);
    char med[16], lo[16], hi[16];
    snprintf(med, sizeof(med), "median %s", unit);
    snprintf(lo, sizeof(lo), "min %s", unit);
    snprintf(hi, sizeof(hi), "max %s", unit);
    if (r->mpi)
        fprintf(fp, "%6s ", "ranks");
    fprintf(fp, "%8s %12s %12s %12s %9s", "threads", med, lo, hi, "speedup");
    if (abs)
        fprintf(fp, " %9s", "vs serial");
    fprintf(fp, " %11s %11s\n", "efficiency", "karp-flatt");
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        bool o = oversubscribed(r, pt);
        over = over || o;
        if (r->mpi)
            fprintf(fp, "%6u ", pt->ranks);
        fprintf(fp, "%7u%c %12.3f %12.3f %12.3f %9.2f", pt->threads, o ? '*' : ' ',
                pt->median / div, pt->min / div, pt->max / div, pt->speedup);
        if (abs)
            put_col(fp, 9, " %*.2f", pt->abs_speedup);
        fprintf(fp, " %11.2f", pt->efficiency);
        put_col(fp, 11, " %*.3f", pt->karp_flatt);
        fputc('\n', fp);
    }
    if (over)
        fprintf(fp, "* more %s than the %u usable core%s: oversubscribed (no Karp-Flatt value)\n",
                r->mpi ? "ranks x threads" : "threads", r->cores, r->cores == 1 ? "" : "s");
    if (r->mpi)
        fputs("speedup: against 1 rank x 1 thread; efficiency: speedup / (ranks x threads)\n", fp);
    if (abs)
        fputs("vs serial: the serial baseline over the time: what speedup costs in overhead\n", fp);
    if (r->have_ws)
        print_workspan(r, fp);
    for (size_t i = 0; i < r->nwarnings; i++)
        fprintf(fp, "warning: %s\n", r->warnings[i]);
}

/* --- CSV and JSON --- */

int scale_write_csv(const scale_result *r, const char *path)
{
    int err;
    FILE *fp = open_file(path, &err);
    if (fp == NULL)
        return err;
    /* The first eight columns never move (bench/run_all.sh reads them by position). */
    fputs("threads,runs,median_ns,min_ns,max_ns,speedup,efficiency,karp_flatt,abs_speedup,ranks,"
          "oversubscribed,estimate\n",
          fp);
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        fprintf(fp, "%u,%zu,", pt->threads, pt->nsamples);
        put_num(fp, "%.15g,", pt->median, ",");
        put_num(fp, "%.15g,", pt->min, ",");
        put_num(fp, "%.15g,", pt->max, ",");
        put_num(fp, "%.6f,", pt->speedup, ",");
        put_num(fp, "%.6f,", pt->efficiency, ",");
        put_num(fp, "%.6f,", pt->karp_flatt, ",");
        put_num(fp, "%.6f,", pt->abs_speedup, ",");
        fprintf(fp, "%u,%d,", pt->ranks, oversubscribed(r, pt) ? 1 : 0);
        put_num(fp, "%.6f", pt->estimate, "");
        fputc('\n', fp);
    }
    return close_file(fp);
}

static void put_workspan_json(const scale_result *r, FILE *fp)
{
    fputs(",\n  \"workspan\": ", fp);
    if (!r->have_ws) {
        fputs("null", fp);
        return;
    }
    fprintf(fp,
            "{\"threads\": %u, \"work_ns\": %.15g, \"span_ns\": %.15g, \"parallelism\": %.6f, "
            "\"burdened_span_ns\": %.15g,\n    \"bounds\": [",
            r->ws_threads, r->ws.work_ns, r->ws.span_ns, r->ws.parallelism, r->ws.burdened_span_ns);
    unsigned counts[300];
    size_t n = ws_counts(r, counts);
    for (size_t i = 0; i < n; i++) {
        unsigned p = counts[i];
        double est = scale_burdened_speedup(p, r->ws.work_ns, r->ws.burdened_span_ns);
        double m = measured_at(r, p);
        fprintf(fp, "%s\n      {\"p\": %u, \"bound\": ", i > 0 ? "," : "", p);
        put_num(fp, "%.6f", scale_span_bound(p, r->ws.parallelism), "null");
        fputs(", \"burdened\": ", fp);
        put_num(fp, "%.6f", est, "null");
        fputs(", \"measured\": ", fp);
        put_num(fp, "%.6f", m, "null");
        fputs(", \"ratio\": ", fp);
        put_num(fp, "%.6f", m / est, "null");
        fputc('}', fp);
    }
    fputs("]}", fp);
}

int scale_write_json(const scale_result *r, const char *path)
{
    int err;
    FILE *fp = open_file(path, &err);
    if (fp == NULL)
        return err;
    fputs("{\n  \"tool\": \"weft-scale\",\n  \"weft_version\": ", fp);
    put_json_string(fp, r->version);
    fputs(",\n  \"command\": [", fp);
    for (size_t i = 0; r->argv[i] != NULL; i++) {
        fputs(i > 0 ? ", " : "", fp);
        put_json_string(fp, r->argv[i]);
    }
    fputs("],\n  \"title\": ", fp);
    put_json_string(fp, r->title);
    fputs(",\n  \"metric\": ", fp);
    put_json_string(fp, r->metric);
    fputs(",\n  \"match\": ", fp);
    put_json_string(fp, r->match);
    fputs(",\n  \"metric_line\": ", fp);
    put_json_string(fp, r->metric_line);
    fputs(",\n  \"baseline\": ", fp);
    put_json_string(fp, r->baseline);
    fputs(",\n  \"serial_ns\": ", fp);
    put_num(fp, "%.15g", r->serial_ns, "null");
    fprintf(fp,
            ",\n  \"unit\": \"ns\",\n  \"runs_per_count\": %u,\n  \"order\": \"interleaved\",\n"
            "  \"cores\": %u,\n  \"mpi\": %s,\n  \"thread_counts\": [",
            r->runs, r->cores, r->mpi ? "true" : "false");
    for (size_t i = 0, n = 0; i < r->npoints; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen = seen || r->points[k].threads == r->points[i].threads;
        if (!seen)
            fprintf(fp, "%s%u", n++ > 0 ? ", " : "", r->points[i].threads);
    }
    fputs("],\n  \"warnings\": [", fp);
    for (size_t i = 0; i < r->nwarnings; i++) {
        fputs(i > 0 ? ", " : "", fp);
        put_json_string(fp, r->warnings[i]);
    }
    fputs("]", fp);
    put_workspan_json(r, fp);
    fputs(",\n  \"results\": [", fp);
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        fprintf(fp, "%s\n    {\"ranks\": %u, \"threads\": %u, \"runs\": %zu, \"samples_ns\": [",
                i > 0 ? "," : "", pt->ranks, pt->threads, pt->nsamples);
        for (size_t j = 0; j < pt->nsamples; j++) {
            fputs(j > 0 ? ", " : "", fp);
            put_num(fp, "%.15g", pt->samples[j], "null");
        }
        fputs("],\n     \"serial_ns\": [", fp);
        for (size_t j = 0; j < pt->nserial; j++) {
            fputs(j > 0 ? ", " : "", fp);
            put_num(fp, "%.15g", pt->serial[j], "null");
        }
        fputs("],\n     \"median_ns\": ", fp);
        put_num(fp, "%.15g", pt->median, "null");
        fputs(", \"min_ns\": ", fp);
        put_num(fp, "%.15g", pt->min, "null");
        fputs(", \"max_ns\": ", fp);
        put_num(fp, "%.15g", pt->max, "null");
        fputs(",\n     \"speedup\": ", fp);
        put_num(fp, "%.6f", pt->speedup, "null");
        fputs(", \"speedup_min\": ", fp);
        put_num(fp, "%.6f", pt->speedup_lo, "null");
        fputs(", \"speedup_max\": ", fp);
        put_num(fp, "%.6f", pt->speedup_hi, "null");
        fputs(", \"abs_speedup\": ", fp);
        put_num(fp, "%.6f", pt->abs_speedup, "null");
        fputs(", \"efficiency\": ", fp);
        put_num(fp, "%.6f", pt->efficiency, "null");
        fputs(", \"karp_flatt\": ", fp);
        put_num(fp, "%.6f", pt->karp_flatt, "null");
        fputs(", \"estimate\": ", fp);
        put_num(fp, "%.6f", pt->estimate, "null");
        fprintf(fp,
                ",\n     \"oversubscribed\": %s, \"pools_seen_runs\": %u, \"reported_threads\": ",
                oversubscribed(r, pt) ? "true" : "false", pt->runs_with_pools);
        if (pt->reported >= 0)
            fprintf(fp, "%ld}", pt->reported);
        else
            fputs("null}", fp);
    }
    fputs("\n  ]\n}\n", fp);
    return close_file(fp);
}

/* --- SVG --- */

enum {
    SVG_W = 800,
    SVG_H = 540,
    PLOT_L = 80,    /* left margin: y tick labels and the axis title */
    PLOT_R = 50,    /* right margin: room for the last point's label */
    PLOT_T = 84,    /* top margin: title and subtitle */
    PLOT_B = 64,    /* bottom margin: x tick labels and the axis title */
    LEGEND_X = 14,  /* the legend's offset from the left axis */
    LEGEND_W = 312, /* and its width */
    TITLE_MAX = 56, /* characters of the command shown in the title */
    MATCH_MAX = 60  /* characters of the --match pattern shown under it */
};

#define COLOR_DATA     "#1f5fa8"
#define COLOR_ABS      "#2a8a4a"
#define COLOR_IDEAL    "#8a8a8a"
#define COLOR_BOUND    "#555555"
#define COLOR_BURDENED "#b03060"
#define COLOR_OVER     "#f4ece0"
#define COLOR_CORES    "#b06000"
#define COLOR_GRID     "#e4e4e4"
#define COLOR_AXIS     "#333333"

/* One color per rank count with --mpi. */
static const char *const rank_colors[] = {"#1f5fa8", "#c0392b", "#2a8a4a",
                                          "#8e44ad", "#d35400", "#16a085"};

/* The plot's frame. Linear axes run from 0 to max; logarithmic ones (base 2, with --workspan,
 * whose bounds span 1 to 256 threads) from min to max. */
typedef struct frame {
    bool log;
    double xmin, xmax, ymin, ymax;
    double x0, y0; /* the plot's bottom-left corner in SVG units */
    double w, h;   /* its size */
} frame;

static double fx(const frame *f, double x)
{
    if (f->log)
        return f->x0 + (log2(x) - log2(f->xmin)) / (log2(f->xmax) - log2(f->xmin)) * f->w;
    return f->x0 + x / f->xmax * f->w;
}

static double fy(const frame *f, double y)
{
    if (f->log)
        return f->y0 - (log2(y) - log2(f->ymin)) / (log2(f->ymax) - log2(f->ymin)) * f->h;
    return f->y0 - y / f->ymax * f->h;
}

/* s escaped for XML, cut to max characters (at a UTF-8 boundary) with an ellipsis: long
 * commands and patterns must not run off the image. */
static void put_cut(FILE *fp, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) {
        put_escaped(fp, s, ESC_XML);
        return;
    }
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    char *head = malloc(cut + 1);
    if (head == NULL)
        return;
    memcpy(head, s, cut);
    head[cut] = '\0';
    put_escaped(fp, head, ESC_XML);
    fputs("…", fp);
    free(head);
}

/* A tick label: integers without decimals, others with as few as needed. */
static void put_tick(FILE *fp, double v, double step)
{
    if (step >= 1.0 && v == floor(v))
        fprintf(fp, "%.0f", v);
    else if (step >= 0.1 && fabs(v * 10 - floor(v * 10 + 0.5)) < 1e-9)
        fprintf(fp, "%.1f", v);
    else
        fprintf(fp, "%.2f", v);
}

/* The tick values of one axis: multiples of step from 0 (linear), or powers of two from min
 * (logarithmic). Returns how many (at most 64). */
static size_t ticks(bool log, double min, double max, double step, double *out)
{
    size_t n = 0;
    if (log) {
        for (double v = min; v <= max * (1 + 1e-9) && n < 64; v *= 2)
            out[n++] = v;
    } else {
        for (double v = 0; v <= max + 1e-9 && n < 64; v += step)
            out[n++] = v;
    }
    return n;
}

static void svg_axes(FILE *fp, const frame *f, double xstep, double ystep, const char *xtitle,
                     const char *ytitle)
{
    double xt[64], yt[64];
    size_t nx = ticks(f->log, f->xmin, f->xmax, xstep, xt);
    size_t ny = ticks(f->log, f->ymin, f->ymax, ystep, yt);
    double left = f->log ? f->xmin : 0, bottom = f->log ? f->ymin : 0;

    fputs("<g id=\"grid\" stroke=\"" COLOR_GRID "\" stroke-width=\"1\">\n", fp);
    for (size_t i = 1; i < nx; i++)
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fx(f, xt[i]),
                fy(f, bottom), fx(f, xt[i]), fy(f, f->ymax));
    for (size_t i = 1; i < ny; i++)
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fx(f, left),
                fy(f, yt[i]), fx(f, f->xmax), fy(f, yt[i]));
    fputs("</g>\n", fp);

    fputs("<g id=\"axes\" stroke=\"" COLOR_AXIS "\" stroke-width=\"1.2\" fill=\"none\">\n", fp);
    fprintf(fp, "<polyline points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n", fx(f, left),
            fy(f, f->ymax), fx(f, left), fy(f, bottom), fx(f, f->xmax), fy(f, bottom));
    for (size_t i = 0; i < nx; i++)
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fx(f, xt[i]),
                fy(f, bottom), fx(f, xt[i]), fy(f, bottom) + 6);
    for (size_t i = 0; i < ny; i++)
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fx(f, left) - 6,
                fy(f, yt[i]), fx(f, left), fy(f, yt[i]));
    fputs("</g>\n", fp);

    fputs("<g id=\"tick-labels\" font-size=\"12\" fill=\"" COLOR_AXIS "\">\n", fp);
    for (size_t i = 0; i < nx; i++) {
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", fx(f, xt[i]),
                fy(f, bottom) + 20);
        put_tick(fp, xt[i], f->log ? 1 : xstep);
        fputs("</text>\n", fp);
    }
    for (size_t i = 0; i < ny; i++) {
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", fx(f, left) - 10,
                fy(f, yt[i]) + 4);
        put_tick(fp, yt[i], f->log ? (yt[i] < 1 ? 0.01 : 1) : ystep);
        fputs("</text>\n", fp);
    }
    fputs("</g>\n", fp);

    fprintf(fp,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" text-anchor=\"middle\" fill=\"" COLOR_AXIS
            "\">%s</text>\n",
            f->x0 + f->w / 2, fy(f, bottom) + 46, xtitle);
    fprintf(fp,
            "<text transform=\"translate(%d %.1f) rotate(-90)\" font-size=\"14\" "
            "text-anchor=\"middle\" fill=\"" COLOR_AXIS "\">%s</text>\n",
            24, f->y0 - f->h / 2, ytitle);
}

/* The shaded region past the usable cores and the dashed line at them. */
static void svg_cores(FILE *fp, const frame *f, unsigned cores)
{
    if (cores == 0 || (double)cores >= f->xmax)
        return;
    double x = fx(f, cores), bottom = f->log ? f->ymin : 0;
    fprintf(fp,
            "<rect id=\"oversubscribed\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"" COLOR_OVER "\"/>\n",
            x, fy(f, f->ymax), fx(f, f->xmax) - x, f->h);
    fprintf(
        fp,
        "<line id=\"cores\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" COLOR_CORES
        "\" stroke-width=\"1.5\" stroke-dasharray=\"7 4\"/>\n",
        x, fy(f, bottom), x, fy(f, f->ymax));
    /* The label goes right of the line, and right of the legend when the line runs behind
     * it. */
    double lx = x + 6;
    if (lx < f->x0 + LEGEND_X + LEGEND_W + 8)
        lx = f->x0 + LEGEND_X + LEGEND_W + 8;
    fprintf(fp,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"" COLOR_CORES "\">%u usable "
            "core%s</text>\n",
            lx, fy(f, f->ymax) + 16, cores, cores == 1 ? "" : "s");
    fprintf(fp,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"" COLOR_CORES
            "\">oversubscribed →</text>\n",
            lx, fy(f, f->ymax) + 32);
}

/* A legend entry: a sample of the line's style, then its text. */
typedef struct legend_entry {
    const char *color;
    const char *dash; /* NULL: solid */
    bool dot;         /* a point marker on the sample */
    bool shade;       /* a shaded box instead of a line */
    char text[96];
} legend_entry;

static void svg_legend(FILE *fp, const frame *f, const legend_entry *e, size_t n)
{
    double x = f->x0 + LEGEND_X, y = fy(f, f->ymax) + 12;
    fprintf(fp, "<g id=\"legend\" font-size=\"12\" fill=\"" COLOR_AXIS "\">\n");
    fprintf(fp,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"white\" "
            "fill-opacity=\"0.9\" stroke=\"#cccccc\"/>\n",
            x, y, LEGEND_W, 16.0 + 18.0 * (double)n);
    double ly = y + 18;
    for (size_t i = 0; i < n; i++, ly += 18) {
        if (e[i].shade)
            fprintf(fp,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"30\" height=\"12\" fill=\"" COLOR_OVER
                    "\" stroke=\"%s\" stroke-dasharray=\"4 3\"/>\n",
                    x + 10, ly - 10, e[i].color);
        else
            fprintf(fp,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"2\"%s%s%s/>\n",
                    x + 10, ly - 4, x + 40, ly - 4, e[i].color,
                    e[i].dash != NULL ? " stroke-dasharray=\"" : "",
                    e[i].dash != NULL ? e[i].dash : "", e[i].dash != NULL ? "\"" : "");
        if (e[i].dot)
            fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x + 25, ly - 4,
                    e[i].color);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">", x + 50, ly);
        put_escaped(fp, e[i].text, ESC_XML);
        fputs("</text>\n", fp);
    }
    fputs("</g>\n", fp);
}

/* A polyline through (x, y) pairs of the points of one series, skipping undefined values. */
static void svg_line(FILE *fp, const frame *f, const char *id, const char *color, const char *dash,
                     const double *x, const double *y, size_t n)
{
    fprintf(fp,
            "<polyline id=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" "
            "stroke-linejoin=\"round\"%s%s%s points=\"",
            id, color, dash != NULL ? " stroke-dasharray=\"" : "", dash != NULL ? dash : "",
            dash != NULL ? "\"" : "");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]) || !isfinite(x[i]) || (f->log && (y[i] <= 0 || x[i] <= 0)))
            continue;
        fprintf(fp, "%s%.1f,%.1f", first ? "" : " ", fx(f, x[i]), fy(f, y[i]));
        first = false;
    }
    fputs("\"/>\n", fp);
}

/* Points with a tooltip and, when few, their value beside them. */
static void svg_points(FILE *fp, const frame *f, const scale_result *r, const char *id,
                       const char *color, unsigned ranks, double div, const char *unit)
{
    size_t count = 0;
    for (size_t i = 0; i < r->npoints; i++)
        count += r->points[i].ranks == ranks;
    bool labels = count <= 16;
    fprintf(fp, "<g id=\"%s\" font-size=\"11\" fill=\"%s\">\n", id, color);
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        if (pt->ranks != ranks || !isfinite(pt->speedup) || (f->log && !(pt->speedup > 0)))
            continue;
        double x = fx(f, scale_cores_used(pt)), y = fy(f, pt->speedup);
        fprintf(fp,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" stroke=\"white\" "
                "stroke-width=\"1\"><title>%u rank%s x %u thread%s: speedup %.2f, median %.3f "
                "%s, efficiency %.2f</title></circle>\n",
                x, y, pt->ranks, pt->ranks == 1 ? "" : "s", pt->threads,
                pt->threads == 1 ? "" : "s", pt->speedup, pt->median / div, unit, pt->efficiency);
        if (labels)
            fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"start\">%.2f</text>\n", x + 7,
                    y + 15, pt->speedup);
    }
    fputs("</g>\n", fp);
}

/* The spread of the runs: T1 over the slowest and over the fastest run at each count. */
static void svg_ranges(FILE *fp, const frame *f, const scale_result *r)
{
    fputs("<g id=\"range\" stroke=\"" COLOR_DATA "\" stroke-opacity=\"0.55\" "
          "stroke-width=\"1.5\">\n",
          fp);
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        if (pt->ranks != 1 || !isfinite(pt->speedup_lo) || !isfinite(pt->speedup_hi) ||
            (f->log && !(pt->speedup_lo > 0)))
            continue;
        double x = fx(f, pt->threads), lo = fy(f, pt->speedup_lo), hi = fy(f, pt->speedup_hi);
        fprintf(fp,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                x, lo, x, hi, x - 4, lo, x + 4, lo, x - 4, hi, x + 4, hi);
    }
    fputs("</g>\n", fp);
}

/* The rank counts of r, in order, each once; returns how many (at most max). */
static size_t rank_counts(const scale_result *r, unsigned *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < r->npoints; i++) {
        if (n == 0 || out[n - 1] != r->points[i].ranks) {
            if (n == max)
                break;
            out[n++] = r->points[i].ranks;
        }
    }
    return n;
}

int scale_write_svg(const scale_result *r, const char *path)
{
    int err;
    FILE *fp = open_file(path, &err);
    if (fp == NULL)
        return err;

    unsigned maxp = 1;
    double maxs = 1.0, mins = 1.0;
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        double v[] = {pt->speedup, pt->speedup_hi, pt->speedup_lo, pt->abs_speedup};
        if (scale_cores_used(pt) > maxp)
            maxp = scale_cores_used(pt);
        for (size_t k = 0; k < 4; k++) {
            if (isfinite(v[k]) && v[k] > maxs)
                maxs = v[k];
            if (isfinite(v[k]) && v[k] > 0 && v[k] < mins)
                mins = v[k];
        }
    }
    frame f = {.log = r->have_ws,
               .x0 = PLOT_L,
               .y0 = SVG_H - PLOT_B,
               .w = SVG_W - PLOT_L - PLOT_R,
               .h = SVG_H - PLOT_T - PLOT_B};
    double xstep = 1, ystep = 1;
    if (f.log) {
        /* 1 to 256 threads (or more, when measured), speedups from the lowest to 256. */
        f.xmin = 1;
        f.xmax = 256;
        while (f.xmax < maxp)
            f.xmax *= 2;
        f.ymin = 1;
        while (f.ymin > mins)
            f.ymin /= 2;
        f.ymax = f.xmax;
    } else {
        xstep = scale_nice_step(maxp > 1 ? maxp : 2, 12);
        if (xstep < 1)
            xstep = 1;
        f.xmax = ceil((maxp > 1 ? maxp : 2) / xstep) * xstep;
        double yraw = maxs > f.xmax ? maxs : f.xmax;
        ystep = scale_nice_step(yraw, 8);
        f.ymax = ceil(yraw / ystep - 1e-9) * ystep;
    }
    bool any_cores = r->cores > 0 && (double)r->cores < f.xmax;
    bool abs = isfinite(r->serial_ns);

    fprintf(fp,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    fputs("<title>Speedup of ", fp);
    put_escaped(fp, r->title, ESC_XML);
    fputs("</title>\n", fp);
    fprintf(fp, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", SVG_W, SVG_H);

    fputs("<text x=\"20\" y=\"30\" font-size=\"16\" font-weight=\"bold\" fill=\"#111111\">"
          "Speedup of ",
          fp);
    put_cut(fp, r->title, TITLE_MAX);
    fputs("</text>\n<text x=\"20\" y=\"52\" font-size=\"12\" fill=\"#555555\">", fp);
    if (r->metric == NULL) {
        fputs("wall time of each run", fp);
    } else {
        fputs("time: ", fp);
        put_escaped(fp, r->metric, ESC_XML);
        fputs("= in the output", fp);
        if (r->match != NULL) {
            fputs(" (lines matching '", fp);
            put_cut(fp, r->match, MATCH_MAX);
            fputs("')", fp);
        }
    }
    fprintf(fp,
            "</text>\n<text x=\"20\" y=\"70\" font-size=\"12\" fill=\"#555555\">median of %u "
            "interleaved run%s each; T1 = ",
            r->runs, r->runs == 1 ? "" : "s");
    double t1 = r->npoints > 0 ? r->points[0].median : NAN, div;
    const char *unit = time_unit(t1, &div);
    put_num(fp, "%.3f ", t1 / div, "? ");
    fputs(unit, fp);
    if (abs) {
        fputs(", serial ", fp);
        put_num(fp, "%.3f ", r->serial_ns / div, "? ");
        fputs(unit, fp);
    }
    fprintf(fp, "; %u usable core%s; weft ", r->cores, r->cores == 1 ? "" : "s");
    put_escaped(fp, r->version, ESC_XML);
    fputs("</text>\n", fp);

    svg_cores(fp, &f, r->cores);
    svg_axes(fp, &f, xstep, ystep,
             r->mpi ? "cores used (ranks × WEFT_THREADS)" : "threads (WEFT_THREADS)",
             r->mpi ? "speedup (T(1×1) / T)" : "speedup (T1 / Tp)");

    legend_entry leg[16];
    size_t nleg = 0;
    /* The ideal line, y = p, from 1 to the end of the axis. */
    double ix[2] = {1, f.xmax}, iy[2] = {1, f.xmax};
    svg_line(fp, &f, "ideal", COLOR_IDEAL, "5 4", ix, iy, 2);

    size_t n = r->npoints;
    double *xs = calloc(n > 0 ? n : 1, sizeof(*xs)), *ys = calloc(n > 0 ? n : 1, sizeof(*ys));
    if (xs == NULL || ys == NULL) {
        free(xs);
        free(ys);
        fclose(fp);
        return -ENOMEM;
    }
    if (r->have_ws) {
        /* The bounds from 1 to the end of the axis, a point per power of two and per count
         * measured, so that the bend at the parallelism shows. */
        unsigned counts[300];
        size_t nc = ws_counts(r, counts);
        double bx[300], bound[300], burd[300];
        for (size_t i = 0; i < nc; i++) {
            bx[i] = counts[i];
            bound[i] = scale_span_bound(counts[i], r->ws.parallelism);
            burd[i] = scale_burdened_speedup(counts[i], r->ws.work_ns, r->ws.burdened_span_ns);
        }
        svg_line(fp, &f, "span-bound", COLOR_BOUND, "2 3", bx, bound, nc);
        svg_line(fp, &f, "burdened", COLOR_BURDENED, "8 3 2 3", bx, burd, nc);
    }
    if (!r->mpi)
        svg_ranges(fp, &f, r);
    if (abs) {
        for (size_t i = 0; i < n; i++) {
            xs[i] = r->points[i].ranks == 1 ? scale_cores_used(&r->points[i]) : NAN;
            ys[i] = r->points[i].abs_speedup;
        }
        svg_line(fp, &f, "abs-speedup", COLOR_ABS, "6 3", xs, ys, n);
    }
    unsigned ranks[6];
    size_t nranks = r->mpi ? rank_counts(r, ranks, 6) : 1;
    if (!r->mpi)
        ranks[0] = 1;
    for (size_t k = 0; k < nranks; k++) {
        char id[32];
        const char *color = r->mpi ? rank_colors[k] : COLOR_DATA;
        size_t m = 0;
        unsigned most = 0;
        for (size_t i = 0; i < n; i++) {
            if (r->points[i].ranks != ranks[k])
                continue;
            xs[m] = scale_cores_used(&r->points[i]);
            ys[m++] = r->points[i].speedup;
            most = r->points[i].threads > most ? r->points[i].threads : most;
        }
        snprintf(id, sizeof(id), r->mpi ? "speedup-r%u" : "speedup", ranks[k]);
        svg_line(fp, &f, id, color, NULL, xs, ys, m);
        snprintf(id, sizeof(id), r->mpi ? "points-r%u" : "points", ranks[k]);
        svg_points(fp, &f, r, id, color, ranks[k], div, unit);
        legend_entry *e = &leg[nleg++];
        *e = (legend_entry){.color = color, .dot = true};
        if (r->mpi)
            snprintf(e->text, sizeof(e->text), "%u rank%s × 1 to %u threads", ranks[k],
                     ranks[k] == 1 ? "" : "s", most);
        else
            snprintf(e->text, sizeof(e->text), "measured: median of %u run%s", r->runs,
                     r->runs == 1 ? "" : "s");
    }
    free(xs);
    free(ys);
    if (!r->mpi) {
        leg[nleg] = (legend_entry){.color = COLOR_DATA, .dash = NULL};
        snprintf(leg[nleg++].text, sizeof(leg[0].text), "range: fastest to slowest run");
    }
    if (abs) {
        leg[nleg] = (legend_entry){.color = COLOR_ABS, .dash = "6 3"};
        snprintf(leg[nleg++].text, sizeof(leg[0].text), "against the serial baseline");
    }
    leg[nleg] = (legend_entry){.color = COLOR_IDEAL, .dash = "5 4"};
    snprintf(leg[nleg++].text, sizeof(leg[0].text), "ideal: speedup = %s",
             r->mpi ? "cores used" : "threads");
    if (r->have_ws) {
        leg[nleg] = (legend_entry){.color = COLOR_BOUND, .dash = "2 3"};
        snprintf(leg[nleg++].text, sizeof(leg[0].text), "bound: min(P, parallelism %.1f)",
                 r->ws.parallelism);
        leg[nleg] = (legend_entry){.color = COLOR_BURDENED, .dash = "8 3 2 3"};
        snprintf(leg[nleg++].text, sizeof(leg[0].text), "burdened: T1 / (T1/P + burdened span)");
    }
    if (any_cores) {
        leg[nleg] = (legend_entry){.color = COLOR_CORES, .shade = true};
        snprintf(leg[nleg++].text, sizeof(leg[0].text), "more %s than usable cores",
                 r->mpi ? "ranks × threads" : "threads");
    }
    svg_legend(fp, &f, leg, nleg);
    fputs("</svg>\n", fp);
    return close_file(fp);
}
