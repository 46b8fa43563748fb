/* SPDX-License-Identifier: MIT */
/*
 * The table, CSV, JSON and SVG that weft-scale writes.
 *
 * Every number goes through "%.15g" (times) or "%.6f" (ratios) with the C locale's decimal
 * point, and every string through one escaper that also replaces bytes which are not valid
 * UTF-8, so that the JSON and the SVG stay well-formed whatever the command line holds.
 */
#include "scale_out.h"

#include "scale_math.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void scale_compute(scale_result *r)
{
    double t1 = NAN;
    for (size_t i = 0; i < r->npoints; i++) {
        scale_point *pt = &r->points[i];
        double *copy = pt->nsamples > 0 ? malloc(pt->nsamples * sizeof(*copy)) : NULL;
        if (copy == NULL) {
            pt->median = pt->min = pt->max = NAN;
        } else {
            memcpy(copy, pt->samples, pt->nsamples * sizeof(*copy));
            pt->median = scale_median(copy, pt->nsamples);
            pt->min = copy[0];
            pt->max = copy[pt->nsamples - 1];
        }
        free(copy);
        if (pt->threads == 1)
            t1 = pt->median;
    }
    for (size_t i = 0; i < r->npoints; i++) {
        scale_point *pt = &r->points[i];
        /* At p = 1 the speedup is 1 by definition, not a quotient that rounding could move. */
        pt->speedup = pt->threads == 1 ? 1.0 : scale_speedup(t1, pt->median);
        pt->speedup_lo = scale_speedup(t1, pt->max);
        pt->speedup_hi = scale_speedup(t1, pt->min);
        pt->efficiency = scale_efficiency(pt->speedup, pt->threads);
        pt->karp_flatt = scale_karp_flatt(pt->speedup, pt->threads);
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

static bool oversubscribed(const scale_result *r, unsigned threads)
{
    return r->cores > 0 && threads > r->cores;
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

void scale_print_table(const scale_result *r, FILE *fp)
{
    bool over = false;
    fprintf(fp, "weft-scale: %s\n", r->title);
    describe_time(r, fp);
    fprintf(fp, "; median of %u run%s per thread count, interleaved; %u usable core%s\n", r->runs,
            r->runs == 1 ? "" : "s", r->cores, r->cores == 1 ? "" : "s");
    double div;
    const char *unit = time_unit(r->npoints > 0 ? r->points[0].median : 0, &div);
    char med[16], lo[16], hi[16];
    snprintf(med, sizeof(med), "median %s", unit);
    snprintf(lo, sizeof(lo), "min %s", unit);
    snprintf(hi, sizeof(hi), "max %s", unit);
    fprintf(fp, "%8s %12s %12s %12s %9s %11s %11s\n", "threads", med, lo, hi, "speedup",
            "efficiency", "karp-flatt");
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        bool o = oversubscribed(r, pt->threads);
        over = over || o;
        fprintf(fp, "%7u%c %12.3f %12.3f %12.3f %9.2f %11.2f", pt->threads, o ? '*' : ' ',
                pt->median / div, pt->min / div, pt->max / div, pt->speedup, pt->efficiency);
        if (isfinite(pt->karp_flatt))
            fprintf(fp, " %11.3f\n", pt->karp_flatt);
        else
            fprintf(fp, " %11s\n", "-");
    }
    if (over)
        fprintf(fp, "* more threads than the %u usable core%s: oversubscribed\n", r->cores,
                r->cores == 1 ? "" : "s");
}

/* --- CSV and JSON --- */

int scale_write_csv(const scale_result *r, const char *path)
{
    int err;
    FILE *fp = open_file(path, &err);
    if (fp == NULL)
        return err;
    fputs("threads,runs,median_ns,min_ns,max_ns,speedup,efficiency,karp_flatt\n", fp);
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        fprintf(fp, "%u,%zu,", pt->threads, pt->nsamples);
        put_num(fp, "%.15g,", pt->median, ",");
        put_num(fp, "%.15g,", pt->min, ",");
        put_num(fp, "%.15g,", pt->max, ",");
        put_num(fp, "%.6f,", pt->speedup, ",");
        put_num(fp, "%.6f,", pt->efficiency, ",");
        put_num(fp, "%.6f", pt->karp_flatt, "");
        fputc('\n', fp);
    }
    return close_file(fp);
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
    fprintf(fp,
            ",\n  \"unit\": \"ns\",\n  \"runs_per_count\": %u,\n  \"order\": \"interleaved\",\n"
            "  \"cores\": %u,\n  \"thread_counts\": [",
            r->runs, r->cores);
    for (size_t i = 0; i < r->npoints; i++)
        fprintf(fp, "%s%u", i > 0 ? ", " : "", r->points[i].threads);
    fputs("],\n  \"results\": [", fp);
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        fprintf(fp, "%s\n    {\"threads\": %u, \"runs\": %zu, \"samples_ns\": [", i > 0 ? "," : "",
                pt->threads, pt->nsamples);
        for (size_t j = 0; j < pt->nsamples; j++) {
            fputs(j > 0 ? ", " : "", fp);
            put_num(fp, "%.15g", pt->samples[j], "null");
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
        fputs(", \"efficiency\": ", fp);
        put_num(fp, "%.6f", pt->efficiency, "null");
        fputs(", \"karp_flatt\": ", fp);
        put_num(fp, "%.6f", pt->karp_flatt, "null");
        fprintf(fp, ", \"oversubscribed\": %s}", oversubscribed(r, pt->threads) ? "true" : "false");
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
    LEGEND_W = 262, /* and its width */
    TITLE_MAX = 56, /* characters of the command shown in the title */
    MATCH_MAX = 60  /* characters of the --match pattern shown under it */
};

#define COLOR_DATA  "#1f5fa8"
#define COLOR_IDEAL "#8a8a8a"
#define COLOR_OVER  "#f4ece0"
#define COLOR_CORES "#b06000"
#define COLOR_GRID  "#e4e4e4"
#define COLOR_AXIS  "#333333"

typedef struct frame {
    double xmax, ymax; /* data range of each axis, from 0 */
    double x0, y0;     /* the plot's bottom-left corner in SVG units */
    double w, h;       /* its size */
} frame;

static double fx(const frame *f, double x)
{
    return f->x0 + x / f->xmax * f->w;
}

static double fy(const frame *f, double y)
{
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

/* A tick label: integers without decimals, others with as few as the step needs. */
static void put_tick(FILE *fp, double v, double step)
{
    if (step >= 1.0)
        fprintf(fp, "%.0f", v);
    else if (step >= 0.1)
        fprintf(fp, "%.1f", v);
    else
        fprintf(fp, "%.2f", v);
}

static void svg_axes(FILE *fp, const frame *f, double xstep, double ystep)
{
    fputs("<g id=\"grid\" stroke=\"" COLOR_GRID "\" stroke-width=\"1\">\n", fp);
    for (double x = xstep; x <= f->xmax + 1e-9; x += xstep)
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fx(f, x), fy(f, 0),
                fx(f, x), fy(f, f->ymax));
    for (double y = ystep; y <= f->ymax + 1e-9; y += ystep)
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fx(f, 0), fy(f, y),
                fx(f, f->xmax), fy(f, y));
    fputs("</g>\n", fp);

    fputs("<g id=\"axes\" stroke=\"" COLOR_AXIS "\" stroke-width=\"1.2\" fill=\"none\">\n", fp);
    fprintf(fp, "<polyline points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n", fx(f, 0), fy(f, f->ymax),
            fx(f, 0), fy(f, 0), fx(f, f->xmax), fy(f, 0));
    for (double x = 0; x <= f->xmax + 1e-9; x += xstep)
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fx(f, x), fy(f, 0),
                fx(f, x), fy(f, 0) + 6);
    for (double y = 0; y <= f->ymax + 1e-9; y += ystep)
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fx(f, 0) - 6,
                fy(f, y), fx(f, 0), fy(f, y));
    fputs("</g>\n", fp);

    fputs("<g id=\"tick-labels\" font-size=\"12\" fill=\"" COLOR_AXIS "\">\n", fp);
    for (double x = 0; x <= f->xmax + 1e-9; x += xstep) {
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", fx(f, x), fy(f, 0) + 20);
        put_tick(fp, x, xstep);
        fputs("</text>\n", fp);
    }
    for (double y = 0; y <= f->ymax + 1e-9; y += ystep) {
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", fx(f, 0) - 10,
                fy(f, y) + 4);
        put_tick(fp, y, ystep);
        fputs("</text>\n", fp);
    }
    fputs("</g>\n", fp);

    fprintf(fp,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" text-anchor=\"middle\" fill=\"" COLOR_AXIS
            "\">threads (WEFT_THREADS)</text>\n",
            f->x0 + f->w / 2, fy(f, 0) + 46);
    fprintf(fp,
            "<text transform=\"translate(%d %.1f) rotate(-90)\" font-size=\"14\" "
            "text-anchor=\"middle\" fill=\"" COLOR_AXIS "\">speedup (T1 / Tp)</text>\n",
            24, f->y0 - f->h / 2);
}

/* The shaded region past the usable cores and the dashed line at them. */
static void svg_cores(FILE *fp, const frame *f, unsigned cores)
{
    if (cores == 0 || (double)cores >= f->xmax)
        return;
    double x = fx(f, cores);
    fprintf(fp,
            "<rect id=\"oversubscribed\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"" COLOR_OVER "\"/>\n",
            x, fy(f, f->ymax), fx(f, f->xmax) - x, f->h);
    fprintf(
        fp,
        "<line id=\"cores\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" COLOR_CORES
        "\" stroke-width=\"1.5\" stroke-dasharray=\"7 4\"/>\n",
        x, fy(f, 0), x, fy(f, f->ymax));
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

static void svg_legend(FILE *fp, const frame *f, unsigned runs, bool any_cores)
{
    double x = f->x0 + LEGEND_X, y = fy(f, f->ymax) + 12;
    double h = any_cores ? 88 : 70;
    fprintf(fp, "<g id=\"legend\" font-size=\"12\" fill=\"" COLOR_AXIS "\">\n");
    fprintf(fp,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"white\" "
            "fill-opacity=\"0.9\" stroke=\"#cccccc\"/>\n",
            x, y, LEGEND_W, h);
    double ly = y + 18;
    fprintf(fp,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" COLOR_DATA
            "\" stroke-width=\"2\"/><circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"" COLOR_DATA
            "\"/>\n",
            x + 10, ly - 4, x + 40, ly - 4, x + 25, ly - 4);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">measured: median of %u run%s</text>\n", x + 50, ly,
            runs, runs == 1 ? "" : "s");
    ly += 18;
    fprintf(fp,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" COLOR_DATA
            "\" stroke-opacity=\"0.55\" stroke-width=\"1.5\"/>\n",
            x + 25, ly - 10, x + 25, ly + 2);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">range: fastest to slowest run</text>\n", x + 50, ly);
    ly += 18;
    fprintf(fp,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" COLOR_IDEAL
            "\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>\n",
            x + 10, ly - 4, x + 40, ly - 4);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">ideal: speedup = threads</text>\n", x + 50, ly);
    if (any_cores) {
        ly += 18;
        fprintf(fp,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"30\" height=\"12\" fill=\"" COLOR_OVER
                "\" stroke=\"" COLOR_CORES "\" stroke-dasharray=\"4 3\"/>\n",
                x + 10, ly - 10);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">more threads than usable cores</text>\n", x + 50,
                ly);
    }
    fputs("</g>\n", fp);
}

int scale_write_svg(const scale_result *r, const char *path)
{
    int err;
    FILE *fp = open_file(path, &err);
    if (fp == NULL)
        return err;

    unsigned maxp = 1;
    double maxs = 1.0;
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        if (pt->threads > maxp)
            maxp = pt->threads;
        if (isfinite(pt->speedup_hi) && pt->speedup_hi > maxs)
            maxs = pt->speedup_hi;
        if (isfinite(pt->speedup) && pt->speedup > maxs)
            maxs = pt->speedup;
    }
    frame f = {.x0 = PLOT_L,
               .y0 = SVG_H - PLOT_B,
               .w = SVG_W - PLOT_L - PLOT_R,
               .h = SVG_H - PLOT_T - PLOT_B};
    double xstep = scale_nice_step(maxp > 1 ? maxp : 2, 12);
    if (xstep < 1)
        xstep = 1;
    f.xmax = ceil((maxp > 1 ? maxp : 2) / xstep) * xstep;
    double yraw = maxs > f.xmax ? maxs : f.xmax;
    double ystep = scale_nice_step(yraw, 8);
    f.ymax = ceil(yraw / ystep - 1e-9) * ystep;
    bool any_cores = r->cores > 0 && (double)r->cores < f.xmax;

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
            "interleaved run%s per thread count; T1 = ",
            r->runs, r->runs == 1 ? "" : "s");
    double t1 = r->npoints > 0 ? r->points[0].median : NAN, div;
    const char *unit = time_unit(t1, &div);
    put_num(fp, "%.3f ", t1 / div, "? ");
    fputs(unit, fp);
    fprintf(fp, "; %u usable core%s; weft ", r->cores, r->cores == 1 ? "" : "s");
    put_escaped(fp, r->version, ESC_XML);
    fputs("</text>\n", fp);

    svg_cores(fp, &f, r->cores);
    svg_axes(fp, &f, xstep, ystep);

    /* The ideal line, y = p, from 1 thread to the end of the axis. */
    fprintf(fp,
            "<polyline id=\"ideal\" points=\"%.1f,%.1f %.1f,%.1f\" fill=\"none\" "
            "stroke=\"" COLOR_IDEAL "\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>\n",
            fx(&f, 1), fy(&f, 1), fx(&f, f.xmax), fy(&f, f.xmax));

    /* The spread of the runs: T1 over the slowest and over the fastest run at each p. */
    fputs("<g id=\"range\" stroke=\"" COLOR_DATA "\" stroke-opacity=\"0.55\" "
          "stroke-width=\"1.5\">\n",
          fp);
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        if (!isfinite(pt->speedup_lo) || !isfinite(pt->speedup_hi))
            continue;
        double x = fx(&f, pt->threads), lo = fy(&f, pt->speedup_lo), hi = fy(&f, pt->speedup_hi);
        fprintf(fp,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                x, lo, x, hi, x - 4, lo, x + 4, lo, x - 4, hi, x + 4, hi);
    }
    fputs("</g>\n", fp);

    fputs("<polyline id=\"speedup\" fill=\"none\" stroke=\"" COLOR_DATA "\" stroke-width=\"2.2\" "
          "stroke-linejoin=\"round\" points=\"",
          fp);
    bool first = true;
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        if (!isfinite(pt->speedup))
            continue;
        fprintf(fp, "%s%.1f,%.1f", first ? "" : " ", fx(&f, pt->threads), fy(&f, pt->speedup));
        first = false;
    }
    fputs("\"/>\n", fp);

    bool labels = r->npoints <= 16;
    fputs("<g id=\"points\" font-size=\"11\" fill=\"" COLOR_DATA "\">\n", fp);
    for (size_t i = 0; i < r->npoints; i++) {
        const scale_point *pt = &r->points[i];
        if (!isfinite(pt->speedup))
            continue;
        double x = fx(&f, pt->threads), y = fy(&f, pt->speedup);
        fprintf(fp,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" stroke=\"white\" "
                "stroke-width=\"1\"><title>%u thread%s: speedup %.2f, median %.3f %s, "
                "efficiency %.2f</title></circle>\n",
                x, y, pt->threads, pt->threads == 1 ? "" : "s", pt->speedup, pt->median / div, unit,
                pt->efficiency);
        if (labels)
            fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"start\">%.2f</text>\n", x + 7,
                    y + 15, pt->speedup);
    }
    fputs("</g>\n", fp);

    svg_legend(fp, &f, r->runs, any_cores);
    fputs("</svg>\n", fp);
    return close_file(fp);
}
