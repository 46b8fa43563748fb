/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of weft-scale's arithmetic and parsing (scale_math.h, scale_parse.h), registered
 * as the CTest test tools_scale_math. Prints each failed check and exits 1 if any failed.
 */
#include "scale_math.h"
#include "scale_parse.h"

#include <math.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            failed++;                                                                              \
        }                                                                                          \
    } while (0)

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (fabs(a) + fabs(b) + 1.0);
}

static void test_median(void)
{
    double one[] = {7};
    CHECK(scale_median(one, 1) == 7);
    double odd[] = {5, 1, 9, 3, 7};
    CHECK(scale_median(odd, 5) == 5);
    CHECK(odd[0] == 1 && odd[4] == 9); /* sorted in place: min and max at the ends */
    double even[] = {4, 1, 3, 2};
    CHECK(scale_median(even, 4) == 2.5);
    double same[] = {2, 2, 2};
    CHECK(scale_median(same, 3) == 2);
    CHECK(isnan(scale_median(NULL, 0)));
}

static void test_ratios(void)
{
    CHECK(scale_speedup(100, 100) == 1.0);
    CHECK(scale_speedup(100, 25) == 4.0);
    CHECK(isnan(scale_speedup(100, 0)));
    CHECK(isnan(scale_speedup(0, 10)));
    CHECK(scale_efficiency(3.0, 4) == 0.75);
    CHECK(isnan(scale_efficiency(1.0, 0)));
}

static void test_karp_flatt(void)
{
    /* Undefined at one thread, and for nonsense speedups. */
    CHECK(isnan(scale_karp_flatt(1.0, 1)));
    CHECK(isnan(scale_karp_flatt(0.0, 4)));
    CHECK(isnan(scale_karp_flatt(NAN, 4)));
    /* Linear speedup: no serial part. No speedup at all: everything serial. */
    CHECK(near(scale_karp_flatt(2.0, 2), 0.0));
    CHECK(near(scale_karp_flatt(8.0, 8), 0.0));
    CHECK(near(scale_karp_flatt(1.0, 2), 1.0));
    CHECK(near(scale_karp_flatt(1.0, 16), 1.0));
    /* Amdahl's law with serial fraction f gives back f at every p. */
    const double f = 0.1;
    for (unsigned p = 2; p <= 64; p *= 2) {
        double s = 1.0 / (f + (1.0 - f) / p);
        CHECK(near(scale_karp_flatt(s, p), f));
    }
    /* A worked case: S = 1.6 at p = 2 gives (1/1.6 - 1/2) / (1 - 1/2) = 0.25. */
    CHECK(near(scale_karp_flatt(1.6, 2), 0.25));
    /* Superlinear speedup gives a negative fraction, as the formula says. */
    CHECK(scale_karp_flatt(2.5, 2) < 0);
}

static void test_nice_step(void)
{
    CHECK(near(scale_nice_step(10, 10), 1));
    CHECK(near(scale_nice_step(10, 8), 2));
    CHECK(near(scale_nice_step(100, 10), 10));
    CHECK(near(scale_nice_step(4, 12), 0.5));
    CHECK(near(scale_nice_step(30, 8), 5));
    CHECK(near(scale_nice_step(0, 8), 1));
}

static void test_threads(void)
{
    unsigned t[8];
    CHECK(scale_parse_threads("1,2,4,8", t, 8, 1024) == 4);
    CHECK(t[0] == 1 && t[1] == 2 && t[2] == 4 && t[3] == 8);
    CHECK(scale_parse_threads("3", t, 8, 1024) == 1 && t[0] == 3);
    CHECK(scale_parse_threads("4,1", t, 8, 1024) == 2 && t[0] == 4 && t[1] == 1);
    CHECK(scale_parse_threads("", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("0", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("1,1", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("1,,2", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("1,2,", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("1025", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("-1", t, 8, 1024) == -1);
    CHECK(scale_parse_threads(" 1", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("1 ", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("2x", t, 8, 1024) == -1);
    CHECK(scale_parse_threads("1,2,3", t, 2, 1024) == -1);
}

static void test_metric(void)
{
    char text[] = "# median_ns=1 in a comment counts too\n"
                  "bench=a median_ns=10 min_ns=9\n"
                  "bench=b median_ns=20 x_median_ns=99 median_ns=21\n"
                  "bench=c median_ns=30ms median_ns= median_nsx=5\n"
                  "trailing text without key";
    char copy[sizeof(text)];
    memcpy(copy, text, sizeof(text));
    double v = 0;
    const char *line = NULL;
    size_t len = 0;

    /* The last occurrence wins, whole keys only, numbers only. */
    CHECK(scale_find_metric(text, "median_ns", NULL, &v, &line, &len));
    CHECK(v == 21);
    CHECK(line != NULL && strncmp(line, "bench=b ", 8) == 0);
    CHECK(len == strlen("bench=b median_ns=20 x_median_ns=99 median_ns=21"));
    CHECK(memcmp(text, copy, sizeof(text)) == 0); /* restored */
    CHECK(scale_find_metric(text, "min_ns", NULL, &v, NULL, NULL) && v == 9);
    CHECK(!scale_find_metric(text, "max_ns", NULL, &v, NULL, NULL));
    CHECK(!scale_find_metric(text, "", NULL, &v, NULL, NULL));

    /* Only matching lines count. */
    regex_t re;
    CHECK(regcomp(&re, "^bench=a ", REG_EXTENDED | REG_NOSUB) == 0);
    CHECK(scale_find_metric(text, "median_ns", &re, &v, NULL, NULL) && v == 10);
    regfree(&re);
    CHECK(regcomp(&re, "^bench=z", REG_EXTENDED | REG_NOSUB) == 0);
    CHECK(!scale_find_metric(text, "median_ns", &re, &v, NULL, NULL));
    regfree(&re);

    /* Values in the forms a program may print, on a last line without a newline. */
    char sci[] = "x=1\nwork_ns=1.5e6";
    CHECK(scale_find_metric(sci, "work_ns", NULL, &v, NULL, NULL) && v == 1.5e6);
    char comma[] = "t_ns=42, other=1\n";
    CHECK(scale_find_metric(comma, "t_ns", NULL, &v, NULL, NULL) && v == 42);
    char empty[] = "";
    CHECK(!scale_find_metric(empty, "t_ns", NULL, &v, NULL, NULL));
}

int main(void)
{
    test_median();
    test_ratios();
    test_karp_flatt();
    test_nice_step();
    test_threads();
    test_metric();
    if (failed != 0) {
        fprintf(stderr, "%d check(s) failed\n", failed);
        return 1;
    }
    printf("scale_test: all checks passed\n");
    return 0;
}
