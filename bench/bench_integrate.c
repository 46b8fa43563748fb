/* SPDX-License-Identifier: MIT */
/*
 * bench_integrate: adaptive Simpson quadrature of sin(1/x) over [A, B] to a tolerance
 * (bench_integrate.h). Every refined segment forks its two halves: an irregular binary tree
 * (deep near A, shallow near B) of fine-grained nodes, each costing two evaluations of f.
 *   serial  ig_serial, the plain recursion
 *   weft    weft_join of the two halves
 *   omp     #pragma omp task for the right half, the left inline, taskwait
 *   tbb     tbb::task_group::run for the right half, the left inline, wait
 * The result must equal the serial one bit for bit. See bench_harness.h for the method and the
 * output.
 *
 * Usage: bench_integrate [-t THREADS] [-r REPS] [-i IMPLS] [-a A] [-b B] [-e EPS] [-c DEPTH]
 *   -a  left end (default 1e-4)
 *   -b  right end (default 1)
 *   -e  tolerance (default 1e-11: about 1 M segments)
 *   -c  fork only at depth < DEPTH, recurse serially below (default 0: fork at every level)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bench_integrate.h"
#include "weft.h"

/* Estimates s on its two halves. Returns false with the integral over s in *value when the
 * estimate is good enough, true with the halves in *l and *r when they need refining. */
BENCH_KERNEL bool ig_step(const ig_seg *s, ig_seg *l, ig_seg *r, double *value)
{
    double m = (s->a + s->b) / 2, lm = (s->a + m) / 2, rm = (m + s->b) / 2;
    double flm = ig_f(lm), frm = ig_f(rm);
    double left = (m - s->a) / 6 * (s->fa + 4 * flm + s->fm);
    double right = (s->b - m) / 6 * (s->fm + 4 * frm + s->fb);
    double delta = left + right - s->whole;
    if (s->depth >= IG_MAX_DEPTH || fabs(delta) <= 15 * s->eps) {
        *value = left + right + delta / 15;
        return false;
    }
    l->a = s->a, l->b = m, l->fa = s->fa, l->fm = flm, l->fb = s->fm;
    r->a = m, r->b = s->b, r->fa = s->fm, r->fm = frm, r->fb = s->fb;
    l->whole = left, r->whole = right;
    l->eps = r->eps = s->eps / 2;
    l->depth = r->depth = s->depth + 1;
    return true;
}

/* The integral over s, by plain recursion. */
BENCH_KERNEL double ig_serial(const ig_seg *s)
{
    ig_seg l, r;
    double v;
    if (!ig_step(s, &l, &r, &v))
        return v;
    double x = ig_serial(&l);
    return x + ig_serial(&r);
}

typedef struct ig_ctx {
    ig_seg root;
    unsigned cutoff;
} ig_ctx;

static uint64_t ig_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* --- weft --- */

typedef struct ig_task {
    ig_seg s;
    unsigned cutoff;
    double value;
} ig_task;

static void ig_weft(void *arg)
{
    ig_task *t = arg;
    if (t->cutoff != 0 && t->s.depth >= t->cutoff) {
        t->value = ig_serial(&t->s);
        return;
    }
    ig_task l = {.cutoff = t->cutoff}, r = {.cutoff = t->cutoff};
    if (!ig_step(&t->s, &l.s, &r.s, &t->value))
        return;
    weft_join(ig_weft, &l, ig_weft, &r);
    t->value = l.value + r.value;
}

static int ig_weft_root(void *arg, void **result)
{
    (void)result;
    ig_weft(arg);
    return 0;
}

/* --- omp --- */

#ifdef _OPENMP
static double ig_omp(ig_seg s, unsigned cutoff)
{
    if (cutoff != 0 && s.depth >= cutoff)
        return ig_serial(&s);
    ig_seg l, r;
    double v;
    if (!ig_step(&s, &l, &r, &v))
        return v;
    double y = 0;
#pragma omp task shared(y) firstprivate(r, cutoff)
    y = ig_omp(r, cutoff);
    double x = ig_omp(l, cutoff);
#pragma omp taskwait
    return x + y;
}
#endif

/* --- rows --- */

static uint64_t run_serial(const bench_row *row)
{
    const ig_ctx *c = row->ctx;
    return ig_bits(ig_serial(&c->root));
}

static uint64_t run_weft(const bench_row *row)
{
    const ig_ctx *c = row->ctx;
    ig_task t = {c->root, c->cutoff, 0};
    bench_weft_root(row->pool, ig_weft_root, &t);
    return ig_bits(t.value);
}

#ifdef _OPENMP
static uint64_t run_omp(const bench_row *row)
{
    const ig_ctx *c = row->ctx;
    double v = 0;
#pragma omp parallel num_threads(row->threads)
#pragma omp single
    v = ig_omp(c->root, c->cutoff);
    return ig_bits(v);
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t run_tbb(const bench_row *row)
{
    const ig_ctx *c = row->ctx;
    return ig_bits(ig_tbb(&c->root, c->cutoff));
}
#endif

/* Segments the serial recursion visits, and the deepest. */
static void ig_shape(const ig_seg *s, uint64_t *segments, unsigned *depth)
{
    ig_seg l, r;
    double v;
    ++*segments;
    if (s->depth > *depth)
        *depth = s->depth;
    if (ig_step(s, &l, &r, &v)) {
        ig_shape(&l, segments, depth);
        ig_shape(&r, segments, depth);
    }
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-i IMPLS] [-a A] [-b B] [-e EPS] [-c DEPTH]\n"
            "%s"
            "  -a A        left end (1e-4)\n"
            "  -b B        right end (1)\n"
            "  -e EPS      tolerance (1e-11)\n"
            "  -c DEPTH    fork only at depth < DEPTH (0: at every level)\n",
            argv0, BENCH_COMMON_USAGE);
}

int main(int argc, char **argv)
{
    bench_env env;
    bench_env_init(&env);
    double a = 1e-4, b = 1, eps = 1e-11;
    unsigned cutoff = 0;
    int opt;
    while ((opt = getopt(argc, argv, BENCH_COMMON_OPTS "a:b:e:c:h")) != -1) {
        if (bench_env_option(&env, opt, optarg))
            continue;
        switch (opt) {
        case 'a':
            a = bench_parse_positive('a', optarg);
            break;
        case 'b':
            b = bench_parse_positive('b', optarg);
            break;
        case 'e':
            eps = bench_parse_positive('e', optarg);
            break;
        case 'c':
            cutoff = (unsigned)bench_parse_num('c', optarg, 0, IG_MAX_DEPTH + 1);
            break;
        case 'h':
            usage(argv[0]);
            return 0;
        default:
            usage(argv[0]);
            return 2;
        }
    }
    if (optind != argc || !(a < b)) {
        usage(argv[0]);
        return 2;
    }

    bench_env_start(&env, "bench_integrate");
    ig_ctx ctx = {ig_root(a, b, eps), cutoff};
    uint64_t segments = 0;
    unsigned depth = 0;
    ig_shape(&ctx.root, &segments, &depth);
    bench_case c;
    bench_case_init(&c, "integrate", "simpson");
    snprintf(c.params, sizeof c.params,
             "a=%g b=%g eps=%g cutoff=%u segments=%" PRIu64 " depth=%u value=%.15g", a, b, eps,
             cutoff, segments, depth, ig_serial(&ctx.root));
    bench_add(&c, &env, BENCH_SERIAL, run_serial, &ctx);
    bench_add(&c, &env, BENCH_WEFT1, run_weft, &ctx);
    bench_add(&c, &env, BENCH_WEFTN, run_weft, &ctx);
#ifdef _OPENMP
    bench_add(&c, &env, BENCH_OMP, run_omp, &ctx);
#endif
#ifdef BENCH_HAVE_TBB
    bench_add(&c, &env, BENCH_TBB, run_tbb, &ctx);
#endif
    bench_case_run(&c, &env);
    bench_env_finish(&env);
    return 0;
}
