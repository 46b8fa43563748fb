/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of weft-scale's arithmetic, parsing and derived numbers (scale_math.h,
 * scale_parse.h, scale_out.c's scale_compute and scale_diagnose), registered as the CTest test
 * tools_scale_math. Prints each failed check and exits 1 if any failed.
 */
#include "scale_math.h"
#include "scale_out.h"
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

static void test_workspan_math(void)
{
    CHECK(scale_span_bound(1, 8) == 1);
    CHECK(scale_span_bound(4, 8) == 4);
    CHECK(scale_span_bound(16, 8) == 8);
    CHECK(near(scale_span_bound(3, 2.5), 2.5));
    CHECK(isnan(scale_span_bound(0, 8)));
    CHECK(isnan(scale_span_bound(4, 0)));
    /* T1 / (T1/p + burdened span): 8 / (8/4 + 2) = 2. */
    CHECK(near(scale_burdened_speedup(4, 8, 2), 2.0));
    CHECK(near(scale_burdened_speedup(1, 8, 0), 1.0));
    CHECK(near(scale_burdened_speedup(256, 8e6, 0), 256.0));
    CHECK(scale_burdened_speedup(256, 8e6, 1e6) < 8.0); /* below work / burdened span */
    CHECK(isnan(scale_burdened_speedup(4, 0, 1)));
    CHECK(isnan(scale_burdened_speedup(4, 8, -1)));
}

static void test_filter(void)
{
    char err[128];
    scale_filter f;
    CHECK(scale_filter_init(&f, " impl=weft variant=default ", err, sizeof(err)) == 0);
    CHECK(f.tokens && f.ntok == 2 && !f.have_re);
    CHECK(scale_filter_match(&f, "bench=x impl=weft variant=default threads=2"));
    CHECK(scale_filter_match(&f, "variant=default,impl=weft;"));
    CHECK(!scale_filter_match(&f, "bench=x impl=weft variant=join"));
    CHECK(!scale_filter_match(&f, "bench=x impl=weft1 variant=default"));
    CHECK(!scale_filter_match(&f, "bench=x my_impl=weft variant=default"));
    CHECK(!scale_filter_match(&f, "impl=weft variant=default_x"));
    char *serial = scale_serial_filter(&f);
    CHECK(serial != NULL && strcmp(serial, "impl=serial variant=default") == 0);
    free(serial);
    scale_filter_free(&f);

    /* Not a list of words: a regular expression. */
    CHECK(scale_filter_init(&f, "^bench=x .*impl=weft", err, sizeof(err)) == 0);
    CHECK(!f.tokens && f.have_re);
    CHECK(scale_filter_match(&f, "bench=x a=1 impl=weft1"));
    CHECK(!scale_filter_match(&f, " bench=x impl=weft"));
    CHECK(scale_serial_filter(&f) == NULL);
    scale_filter_free(&f);
    CHECK(scale_filter_init(&f, "weft", err, sizeof(err)) == 0 && f.have_re);
    scale_filter_free(&f);

    CHECK(scale_filter_init(&f, "impl=serial x=1", err, sizeof(err)) == 0);
    CHECK(scale_serial_filter(&f) == NULL); /* already the serial row */
    scale_filter_free(&f);
    CHECK(scale_filter_init(&f, "variant=default", err, sizeof(err)) == 0);
    CHECK(scale_serial_filter(&f) == NULL); /* no impl= word */
    scale_filter_free(&f);
    CHECK(scale_filter_init(&f, "  ", err, sizeof(err)) == -1);
    CHECK(scale_filter_init(&f, "(", err, sizeof(err)) == -1);
    CHECK(scale_filter_match(NULL, "anything"));
}

static void test_rows(void)
{
    char row[256];
    scale_row("bench=uts case=b impl=weft variant=join threads=2 median_ns=5 x=1.5e3 y=-2", row,
              sizeof(row));
    CHECK(strcmp(row, "bench=uts case=b impl=weft variant=join") == 0);
    scale_row("result t_ns=40", row, sizeof(row));
    CHECK(strcmp(row, "") == 0);
    scale_row("# fib (n=20 cutoff=0)", row, sizeof(row));
    CHECK(strcmp(row, "") == 0);
    scale_row("a=1, b=two; c=3", row, sizeof(row));
    CHECK(strcmp(row, "b=two") == 0);

    char text[] = "bench=x impl=serial variant=default median_ns=1000\n"
                  "bench=x impl=weft variant=default threads=2 median_ns=500\n"
                  "bench=x impl=weft variant=join threads=2 median_ns=600\n"
                  "bench=x impl=serial variant=default median_ns=1100\n";
    char err[64];
    scale_filter weft, def, serial;
    CHECK(scale_filter_init(&weft, "impl=weft", err, sizeof(err)) == 0);
    CHECK(scale_filter_init(&def, "impl=weft variant=default", err, sizeof(err)) == 0);
    CHECK(scale_filter_init(&serial, "impl=serial", err, sizeof(err)) == 0);
    scale_found m;
    scale_scan(text, "median_ns", &weft, (size_t)-1, &m);
    CHECK(m.found && m.ambiguous && m.value == 600);
    CHECK(strcmp(m.other, "bench=x impl=weft variant=default") == 0);
    CHECK(strcmp(m.row, "bench=x impl=weft variant=join") == 0);
    scale_scan(text, "median_ns", &def, (size_t)-1, &m);
    CHECK(m.found && !m.ambiguous && m.value == 500);
    CHECK(m.line_len == strlen("bench=x impl=weft variant=default threads=2 median_ns=500"));
    CHECK(scale_line_count(m.line, m.line_len, "threads") == 2);
    CHECK(scale_line_count(m.line, m.line_len, "reps") == -1);
    /* The serial line before the timed one, else the last anywhere. */
    scale_found b;
    scale_scan(text, "median_ns", &serial, m.offset, &b);
    CHECK(b.found && !b.ambiguous && b.value == 1000);
    scale_scan(text, "median_ns", &serial, 0, &b);
    CHECK(b.found && b.value == 1100);
    scale_scan(text, "median_ns", NULL, (size_t)-1, &m);
    CHECK(m.found && m.ambiguous);
    scale_scan(text, "nothing", NULL, (size_t)-1, &m);
    CHECK(!m.found && !m.ambiguous);
    /* The same row on several lines (every rank of an MPI run) is not ambiguous. */
    char ranks[] = "t_ns=10\nt_ns=12\n";
    scale_scan(ranks, "t_ns", NULL, (size_t)-1, &m);
    CHECK(m.found && !m.ambiguous && m.value == 12);
    scale_filter_free(&weft);
    scale_filter_free(&def);
    scale_filter_free(&serial);
}

static void test_display(void)
{
    const char *out = "WEFT DISPLAY ENVIRONMENT BEGIN\n"
                      "  WEFT_THREADS = '1' (from weft_config.threads)\n"
                      "WEFT DISPLAY ENVIRONMENT END\n"
                      "  WEFT_THREADS = '4' (from $WEFT_THREADS)\n"
                      "  WEFT_THREADS = 'x' (from $WEFT_THREADS)\n";
    scale_pools p;
    scale_display_pools(out, 4, &p);
    CHECK(p.pools == 2 && p.matched == 1 && p.max_workers == 4 && p.from_config);
    scale_display_pools(out, 3, &p);
    CHECK(p.pools == 2 && p.matched == 0);
    scale_display_pools("  WEFT_THREADS = '2' (from cores this process may use)\n", 2, &p);
    CHECK(p.pools == 1 && p.matched == 1 && !p.from_config);
    scale_display_pools("no pools here", 1, &p);
    CHECK(p.pools == 0 && p.max_workers == 0);
}

static void test_workspan_parse(void)
{
    scale_workspan ws;
    CHECK(scale_parse_workspan("{\"work_ns\": 800, \"span_ns\": 100, \"parallelism\": 8.0, "
                               "\"burdened_span_ns\": 150, \"more\": {\"work_ns\": 1}}",
                               &ws));
    CHECK(ws.work_ns == 800 && ws.span_ns == 100 && ws.parallelism == 8 &&
          ws.burdened_span_ns == 150);
    CHECK(scale_parse_workspan("{\n  \"span_ns\" : 50,\n  \"work_ns\":1e3,\n"
                               "  \"burdened_span_ns\": 0\n}",
                               &ws));
    CHECK(ws.work_ns == 1000 && ws.parallelism == 20); /* work / span when not given */
    CHECK(!scale_parse_workspan("{\"work_ns\": 800, \"span_ns\": 100}", &ws));
    CHECK(
        !scale_parse_workspan("{\"work_ns\": 0, \"span_ns\": 100, \"burdened_span_ns\": 1}", &ws));
    CHECK(!scale_parse_workspan("", &ws));
    CHECK(!scale_parse_workspan("{\"work_ns\": \"800\", \"span_ns\": 1, \"burdened_span_ns\": 1}",
                                &ws));
}

/* A result of n points over the given counts, every run taking t[i] ns. */
static void make_result(scale_result *r, scale_point *pts, double *store, const unsigned *ranks,
                        const unsigned *threads, const double *t, size_t n, unsigned cores)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        memset(&pts[i], 0, sizeof(pts[i]));
        pts[i].ranks = ranks != NULL ? ranks[i] : 1;
        pts[i].threads = threads[i];
        pts[i].samples = store + 2 * i;
        pts[i].samples[0] = pts[i].samples[1] = t[i];
        pts[i].nsamples = 2;
        pts[i].reported = -1;
    }
    r->points = pts;
    r->npoints = n;
    r->cores = cores;
    r->runs = 2;
}

static void test_compute(void)
{
    scale_result r;
    scale_point pts[4];
    double store[8], serial[2] = {500, 700};
    const unsigned threads[] = {1, 2, 4, 8};
    const double t[] = {1000, 500, 250, 200};
    make_result(&r, pts, store, NULL, threads, t, 4, 4);
    pts[1].serial = serial;
    pts[1].nserial = 2;
    scale_compute(&r);
    CHECK(r.serial_ns == 600);
    CHECK(pts[0].speedup == 1 && near(pts[1].speedup, 2) && near(pts[3].speedup, 5));
    CHECK(near(pts[1].abs_speedup, 1.2) && near(pts[0].abs_speedup, 0.6));
    CHECK(isnan(pts[0].karp_flatt) && near(pts[2].karp_flatt, 0));
    CHECK(isnan(pts[3].karp_flatt)); /* 8 threads on 4 cores: oversubscribed */
    CHECK(isnan(pts[2].estimate));
    scale_diagnose(&r);
    CHECK(r.nwarnings == 0);

    /* Work and span: the estimate at each count. */
    r.have_ws = true;
    r.ws = (scale_workspan){.work_ns = 8, .span_ns = 1, .parallelism = 8, .burdened_span_ns = 2};
    scale_compute(&r);
    CHECK(near(pts[2].estimate, 2.0) && near(pts[0].estimate, 0.8));

    /* Ranks x threads: speedup against 1 x 1, efficiency per core used. */
    const unsigned ranks[] = {1, 1, 2, 2};
    const unsigned th[] = {1, 2, 1, 2};
    const double tm[] = {800, 400, 400, 250};
    make_result(&r, pts, store, ranks, th, tm, 4, 2);
    r.mpi = true;
    scale_compute(&r);
    CHECK(near(pts[2].speedup, 2) && near(pts[3].speedup, 3.2));
    CHECK(near(pts[3].efficiency, 0.8) && isnan(pts[3].karp_flatt) && isnan(r.serial_ns));
}

static void test_diagnose(void)
{
    scale_result r;
    scale_point pts[3];
    double store[6];
    const unsigned threads[] = {1, 2, 3};
    const double flat[] = {1000, 1010, 990};
    make_result(&r, pts, store, NULL, threads, flat, 3, 4);
    scale_compute(&r);
    scale_diagnose(&r);
    CHECK(r.nwarnings == 1 && strstr(r.warnings[0], "did not change") != NULL);
    scale_free_warnings(&r);
    CHECK(r.nwarnings == 0);

    /* Pools of 4 workers from weft_config.threads at every count. */
    for (size_t i = 0; i < 3; i++) {
        pts[i].runs_with_pools = 2;
        pts[i].runs_matched = 0;
        pts[i].max_workers = 4;
        pts[i].from_config = true;
    }
    scale_diagnose(&r);
    CHECK(r.nwarnings == 1 && strstr(r.warnings[0], "WEFT_THREADS=2,3 ") != NULL &&
          strstr(r.warnings[0], "weft_config.threads") != NULL);
    scale_free_warnings(&r);

    /* Pools of the right size, and a flat time: a serial program, no warning. */
    for (size_t i = 0; i < 3; i++)
        pts[i].runs_matched = 2;
    scale_diagnose(&r);
    CHECK(r.nwarnings == 0);

    /* threads= on the line timed, other than WEFT_THREADS. */
    pts[2].reported = 1;
    scale_diagnose(&r);
    CHECK(r.nwarnings == 1 && strstr(r.warnings[0], "threads=1") != NULL);
    scale_free_warnings(&r);

    /* Times that move: no warning without other signs. */
    const double moving[] = {1000, 500, 340};
    make_result(&r, pts, store, NULL, threads, moving, 3, 4);
    scale_compute(&r);
    scale_diagnose(&r);
    CHECK(r.nwarnings == 0);
}

int main(void)
{
    test_median();
    test_ratios();
    test_karp_flatt();
    test_nice_step();
    test_threads();
    test_metric();
    test_workspan_math();
    test_filter();
    test_rows();
    test_display();
    test_workspan_parse();
    test_compute();
    test_diagnose();
    if (failed != 0) {
        fprintf(stderr, "%d check(s) failed\n", failed);
        return 1;
    }
    printf("scale_test: all checks passed\n");
    return 0;
}
