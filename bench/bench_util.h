/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h: helpers shared by the benchmark programs in bench/ (header-only, not part of
 * the library): timing, argument parsing, statistics over repetitions, and the error check that
 * every weft call in a benchmark goes through.
 *
 * Output convention of every benchmark: one machine-readable line per measurement, made of
 * space-separated key=value pairs and starting with bench=<name>; human-readable lines start
 * with "# " so that a parser can skip them. Times are integers in nanoseconds; rates are per
 * second. Over -r repetitions each measurement reports the median and the minimum time, and the
 * rates derived from both (*_median from the median time, *_best from the minimum).
 */
#ifndef WEFT_BENCH_UTIL_H
#define WEFT_BENCH_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft.h"

/* Exits with status 1 after printing where and why when a weft call returns anything but 0 (a
 * negative errno, or a task's own failure code from weft_future_result). A benchmark has nothing
 * sensible to do with a failing call but to report it. */
#define BENCH_CHECK(call)                                                                          \
    do {                                                                                           \
        int bench_rc_ = (call);                                                                    \
        if (bench_rc_ != 0)                                                                        \
            bench_fail(__FILE__, __LINE__, #call, bench_rc_);                                      \
    } while (0)

static inline void bench_fail(const char *file, int line, const char *what, int rc)
{
    fprintf(stderr, "%s:%d: %s failed: %d (%s)\n", file, line, what, rc, weft_strerror(rc));
    fflush(stdout);
    exit(1);
}

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("clock_gettime");
        exit(1);
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time consumed so far by all threads of the process. Over a timed run, CPU time divided by
 * wall time tells how many cores the run actually kept busy: on a shared machine, a speedup
 * that stays at 1 with a ratio near 1 means the second core was not there to be had. */
static inline uint64_t bench_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) {
        perror("clock_gettime");
        exit(1);
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Parses a whole decimal number in [min, max] for option opt, or exits with a usage error. */
static inline unsigned long long bench_parse_num(char opt, const char *s, unsigned long long min,
                                                 unsigned long long max)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "-%c: expected a number in [%llu, %llu], got '%s'\n", opt, min, max, s);
        exit(2);
    }
    return v;
}

/* Parses a whole finite number, greater than 0, for option opt, or exits with a usage error. */
static inline double bench_parse_positive(char opt, const char *s)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 1e300) {
        fprintf(stderr, "-%c: expected a number greater than 0, got '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Median and minimum of the n > 0 samples in v (sorted in place). An even count gives the mean
 * of the two middle samples. */
typedef struct bench_stats {
    uint64_t median_ns;
    uint64_t min_ns;
} bench_stats;

static inline bench_stats bench_summarize(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_u64);
    bench_stats s;
    s.min_ns = v[0];
    s.median_ns = n % 2 ? v[n / 2] : v[n / 2 - 1] + (v[n / 2] - v[n / 2 - 1]) / 2;
    return s;
}

/* Operations per second when count operations took ns nanoseconds. */
static inline double bench_rate(uint64_t count, uint64_t ns)
{
    return ns ? (double)count * 1e9 / (double)ns : 0.0;
}

static inline void *bench_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "out of memory (%zu x %zu bytes)\n", n, size);
        exit(1);
    }
    return p;
}

/* Appends printf-style text to the string buf of capacity cap, truncating rather than
 * overflowing. */
__attribute__((format(printf, 3, 4))) static inline void bench_append(char *buf, size_t cap,
                                                                      const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

#endif /* WEFT_BENCH_UTIL_H */
