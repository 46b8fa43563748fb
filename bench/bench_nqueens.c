/* SPDX-License-Identifier: MIT */
/*
 * bench_nqueens: counts the solutions of the n-queens problem. Above the cutoff depth every
 * variant forks one task per free column of the next row (n-ary fork-join, irregular: the
 * subtrees differ a lot in size), below it runs the plain bitmask search.
 *   serial  nq_count, the plain recursion
 *   weft    a weft_scope per position: weft_scope_spawn per free column, weft_scope_wait;
 *           variant=offer: weft_offer per free column but the last, which runs at once, then
 *           weft_reclaim newest first, running at once what nobody took (the inline pair)
 *   omp     #pragma omp task per free column, taskwait
 *   tbb     tbb::task_group::run per free column, wait
 * A second case, with -a, is the classic search of Cilk's, BOTS' and Lace's nqueens: a board is
 * an array of the columns placed so far, copied for every candidate (alloca) and checked against
 * every queen placed; every valid placement is a task (no cutoff). Serial, weft (scope, offers)
 * and omp rows; it is the workload Lace's published nqueens figures use.
 * See bench_harness.h for the method and the output.
 *
 * Usage: bench_nqueens [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-c DEPTH] [-a N]
 *   -n  board size (default 13)
 *   -c  fork on the first DEPTH rows, search serially below (default 4)
 *   -a  also run the array search on an N x N board, every placement a task (0: skip, default)
 */
#include <alloca.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bench_nqueens.h"
#include "weft.h"

BENCH_KERNEL uint64_t nq_count(uint32_t all, uint32_t cols, uint32_t d1, uint32_t d2)
{
    if (cols == all)
        return 1;
    uint64_t n = 0;
    for (uint32_t avail = all & ~(cols | d1 | d2); avail != 0; avail &= avail - 1) {
        uint32_t bit = avail & (0u - avail);
        n += nq_count(all, cols | bit, (d1 | bit) << 1, (d2 | bit) >> 1);
    }
    return n;
}

typedef struct nq_ctx {
    unsigned n, cutoff;
} nq_ctx;

static nq_pos nq_root(unsigned n)
{
    nq_pos p = {(uint32_t)((1ull << n) - 1), 0, 0, 0, 0};
    return p;
}

/* --- weft --- */

typedef struct nq_task {
    nq_pos pos;
    unsigned cutoff;
    uint64_t count;
} nq_task;

static void nq_weft(void *arg)
{
    nq_task *t = arg;
    if (t->pos.depth >= t->cutoff) {
        t->count = nq_count_pos(&t->pos);
        return;
    }
    if (t->pos.cols == t->pos.all) {
        t->count = 1;
        return;
    }
    nq_task kids[NQ_MAX_N];
    weft_spawn slots[NQ_MAX_N];
    weft_scope scope;
    unsigned k = 0;
    weft_scope_init(&scope);
    for (uint32_t avail = nq_free(&t->pos); avail != 0; avail &= avail - 1, k++) {
        kids[k].pos = nq_place(&t->pos, avail & (0u - avail));
        kids[k].cutoff = t->cutoff;
        kids[k].count = 0;
        weft_scope_spawn(&scope, &slots[k], nq_weft, &kids[k]);
    }
    weft_scope_wait(&scope);
    uint64_t n = 0;
    for (unsigned i = 0; i < k; i++)
        n += kids[i].count;
    t->count = n;
}

static int nq_weft_root(void *arg, void **result)
{
    (void)result;
    nq_weft(arg);
    return 0;
}

/* --- weft: the inline pair, an offer per free column --- */

static uint64_t nq_offer(const nq_pos *p, unsigned cutoff);

typedef struct nq_offered {
    nq_pos pos;
    unsigned cutoff;
    uint64_t count;
} nq_offered;

static void nq_offer_task(void *arg)
{
    nq_offered *o = arg;
    o->count = nq_offer(&o->pos, o->cutoff);
}

static uint64_t nq_offer(const nq_pos *p, unsigned cutoff)
{
    if (p->depth >= cutoff)
        return nq_count_pos(p);
    uint32_t avail = nq_free(p);
    if (p->cols == p->all)
        return 1;
    if (avail == 0)
        return 0;
    nq_offered kids[NQ_MAX_N];
    weft_frame frames[NQ_MAX_N];
    unsigned k = 0;
    /* every free column but the highest is offered; that one runs here at once */
    for (; (avail & (avail - 1)) != 0; avail &= avail - 1, k++) {
        kids[k].pos = nq_place(p, avail & (0u - avail));
        kids[k].cutoff = cutoff;
        kids[k].count = 0;
        weft_offer(&frames[k], nq_offer_task, &kids[k]);
    }
    nq_pos last = nq_place(p, avail);
    uint64_t n = nq_offer(&last, cutoff);
    while (k-- > 0) {
        if (weft_reclaim(&frames[k]))
            kids[k].count = nq_offer(&kids[k].pos, cutoff);
        n += kids[k].count;
    }
    return n;
}

static int nq_offer_root(void *arg, void **result)
{
    (void)result;
    nq_task *t = arg;
    t->count = nq_offer(&t->pos, t->cutoff);
    return 0;
}

/* --- omp --- */

#ifdef _OPENMP
static uint64_t nq_omp(nq_pos p, unsigned cutoff)
{
    if (p.depth >= cutoff)
        return nq_count_pos(&p);
    if (p.cols == p.all)
        return 1;
    uint64_t counts[NQ_MAX_N];
    unsigned k = 0;
    for (uint32_t avail = nq_free(&p); avail != 0; avail &= avail - 1, k++) {
        nq_pos child = nq_place(&p, avail & (0u - avail));
#pragma omp task shared(counts) firstprivate(child, k, cutoff)
        counts[k] = nq_omp(child, cutoff);
    }
#pragma omp taskwait
    uint64_t n = 0;
    for (unsigned i = 0; i < k; i++)
        n += counts[i];
    return n;
}
#endif

/* --- rows --- */

static uint64_t run_serial(const bench_row *row)
{
    const nq_ctx *c = row->ctx;
    nq_pos p = nq_root(c->n);
    return nq_count_pos(&p);
}

static uint64_t run_weft(const bench_row *row)
{
    const nq_ctx *c = row->ctx;
    nq_task t = {nq_root(c->n), c->cutoff, 0};
    bench_weft_root(row->pool, nq_weft_root, &t);
    return t.count;
}

static uint64_t run_weft_offer(const bench_row *row)
{
    const nq_ctx *c = row->ctx;
    nq_task t = {nq_root(c->n), c->cutoff, 0};
    bench_weft_root(row->pool, nq_offer_root, &t);
    return t.count;
}

#ifdef _OPENMP
static uint64_t run_omp(const bench_row *row)
{
    const nq_ctx *c = row->ctx;
    uint64_t v = 0;
#pragma omp parallel num_threads(row->threads)
#pragma omp single
    v = nq_omp(nq_root(c->n), c->cutoff);
    return v;
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t run_tbb(const bench_row *row)
{
    const nq_ctx *c = row->ctx;
    nq_pos p = nq_root(c->n);
    return nq_tbb(&p, c->cutoff);
}
#endif

/* Tasks one run forks: the positions of depth 1..cutoff. */
static uint64_t nq_forks(const nq_pos *p, unsigned cutoff)
{
    if (p->depth >= cutoff)
        return 0;
    uint64_t n = 0;
    for (uint32_t avail = nq_free(p); avail != 0; avail &= avail - 1) {
        nq_pos q = nq_place(p, avail & (0u - avail));
        n += 1 + nq_forks(&q, cutoff);
    }
    return n;
}

/* --- the array search of Cilk, BOTS and Lace, every placement a task --- */

typedef struct nqa_ctx {
    int n;
} nqa_ctx;

/* Whether the queen in row n-1 of a is attacked by none above it. */
static int nqa_ok(int n, const char *a)
{
    for (int i = 0; i < n; i++) {
        char p = a[i];
        for (int j = i + 1; j < n; j++) {
            char q = a[j];
            if (q == p || q == p - (j - i) || q == p + (j - i))
                return 0;
        }
    }
    return 1;
}

BENCH_KERNEL uint64_t nqa_serial(int n, int j, const char *a)
{
    if (n == j)
        return 1;
    uint64_t r = 0;
    for (int i = 0; i < n; i++) {
        char *b = alloca((size_t)j + 1);
        memcpy(b, a, (size_t)j);
        b[j] = (char)i;
        if (nqa_ok(j + 1, b))
            r += nqa_serial(n, j + 1, b);
    }
    return r;
}

typedef struct nqa_task {
    int n, j;
    char *a;
    uint64_t count;
} nqa_task;

static uint64_t nqa_offer(int n, int j, char *a);

static void nqa_offer_task(void *arg)
{
    nqa_task *t = arg;
    t->count = nqa_offer(t->n, t->j, t->a);
}

static uint64_t nqa_offer(int n, int j, char *a)
{
    if (n == j)
        return 1;
    nqa_task kids[NQ_MAX_N];
    weft_frame frames[NQ_MAX_N];
    int k = 0;
    for (int i = 0; i < n; i++) {
        char *b = alloca((size_t)j + 1);
        memcpy(b, a, (size_t)j);
        b[j] = (char)i;
        if (nqa_ok(j + 1, b)) {
            kids[k] = (nqa_task){n, j + 1, b, 0};
            weft_offer(&frames[k], nqa_offer_task, &kids[k]);
            k++;
        }
    }
    uint64_t r = 0;
    while (k-- > 0) {
        if (weft_reclaim(&frames[k]))
            kids[k].count = nqa_offer(n, j + 1, kids[k].a);
        r += kids[k].count;
    }
    return r;
}

static void nqa_scope(void *arg)
{
    nqa_task *t = arg;
    if (t->n == t->j) {
        t->count = 1;
        return;
    }
    nqa_task kids[NQ_MAX_N];
    weft_spawn slots[NQ_MAX_N];
    weft_scope scope;
    weft_scope_init(&scope);
    int k = 0;
    for (int i = 0; i < t->n; i++) {
        char *b = alloca((size_t)t->j + 1);
        memcpy(b, t->a, (size_t)t->j);
        b[t->j] = (char)i;
        if (nqa_ok(t->j + 1, b)) {
            kids[k] = (nqa_task){t->n, t->j + 1, b, 0};
            weft_scope_spawn(&scope, &slots[k], nqa_scope, &kids[k]);
            k++;
        }
    }
    weft_scope_wait(&scope);
    uint64_t r = 0;
    for (int i = 0; i < k; i++)
        r += kids[i].count;
    t->count = r;
}

static int nqa_offer_root(void *arg, void **result)
{
    (void)result;
    nqa_task *t = arg;
    t->count = nqa_offer(t->n, 0, t->a);
    return 0;
}

static int nqa_scope_root(void *arg, void **result)
{
    (void)result;
    nqa_scope(arg);
    return 0;
}

static uint64_t run_nqa_serial(const bench_row *row)
{
    const nqa_ctx *c = row->ctx;
    char a[NQ_MAX_N] = {0};
    return nqa_serial(c->n, 0, a);
}

static uint64_t run_nqa_offer(const bench_row *row)
{
    const nqa_ctx *c = row->ctx;
    char a[NQ_MAX_N] = {0};
    nqa_task t = {c->n, 0, a, 0};
    bench_weft_root(row->pool, nqa_offer_root, &t);
    return t.count;
}

static uint64_t run_nqa_scope(const bench_row *row)
{
    const nqa_ctx *c = row->ctx;
    char a[NQ_MAX_N] = {0};
    nqa_task t = {c->n, 0, a, 0};
    bench_weft_root(row->pool, nqa_scope_root, &t);
    return t.count;
}

#ifdef _OPENMP
static uint64_t nqa_omp(int n, int j, char *a)
{
    if (n == j)
        return 1;
    uint64_t counts[NQ_MAX_N];
    int k = 0;
    for (int i = 0; i < n; i++) {
        char *b = alloca((size_t)j + 1);
        memcpy(b, a, (size_t)j);
        b[j] = (char)i;
        if (nqa_ok(j + 1, b)) {
#pragma omp task shared(counts) firstprivate(b, k, n, j)
            counts[k] = nqa_omp(n, j + 1, b);
            k++;
        }
    }
#pragma omp taskwait
    uint64_t r = 0;
    for (int i = 0; i < k; i++)
        r += counts[i];
    return r;
}

static uint64_t run_nqa_omp(const bench_row *row)
{
    const nqa_ctx *c = row->ctx;
    char a[NQ_MAX_N] = {0};
    uint64_t v = 0;
#pragma omp parallel num_threads(row->threads)
#pragma omp single
    v = nqa_omp(c->n, 0, a);
    return v;
}
#endif

static void run_array_case(bench_env *env, int n)
{
    nqa_ctx ctx = {n};
    bench_case c;
    bench_case_init(&c, "nqueens", "array");
    snprintf(c.params, sizeof c.params, "n=%d cutoff=none", n);
    bench_add(&c, env, BENCH_SERIAL, run_nqa_serial, &ctx);
    bench_add_weft(&c, env, run_nqa_scope, &ctx, "default");
    bench_add_weft(&c, env, run_nqa_offer, &ctx, "offer");
#ifdef _OPENMP
    bench_add(&c, env, BENCH_OMP, run_nqa_omp, &ctx);
#endif
    bench_case_run(&c, env);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-c DEPTH] [-a N]\n"
            "%s"
            "  -n N        board size (13)\n"
            "  -c DEPTH    fork on the first DEPTH rows (4)\n"
            "  -a N        also the array search (Cilk's, Lace's) on N x N, no cutoff (0: skip)\n",
            argv0, BENCH_COMMON_USAGE);
}

int main(int argc, char **argv)
{
    bench_env env;
    bench_env_init(&env);
    nq_ctx ctx = {13, 4};
    int array_n = 0;
    int opt;
    while ((opt = getopt(argc, argv, BENCH_COMMON_OPTS "n:c:a:h")) != -1) {
        if (bench_env_option(&env, opt, optarg))
            continue;
        switch (opt) {
        case 'n':
            ctx.n = (unsigned)bench_parse_num('n', optarg, 1, NQ_MAX_N);
            break;
        case 'c':
            ctx.cutoff = (unsigned)bench_parse_num('c', optarg, 0, NQ_MAX_N);
            break;
        case 'a':
            array_n = (int)bench_parse_num('a', optarg, 0, NQ_MAX_N);
            break;
        case 'h':
            usage(argv[0]);
            return 0;
        default:
            usage(argv[0]);
            return 2;
        }
    }
    if (optind != argc) {
        usage(argv[0]);
        return 2;
    }

    bench_env_start(&env, "bench_nqueens");
    bench_case c;
    bench_case_init(&c, "nqueens", "default");
    nq_pos root = nq_root(ctx.n);
    snprintf(c.params, sizeof c.params, "n=%u cutoff=%u forks=%" PRIu64, ctx.n, ctx.cutoff,
             nq_forks(&root, ctx.cutoff));
    bench_add(&c, &env, BENCH_SERIAL, run_serial, &ctx);
    bench_add(&c, &env, BENCH_WEFT1, run_weft, &ctx);
    bench_add(&c, &env, BENCH_WEFTN, run_weft, &ctx);
    bench_add_weft(&c, &env, run_weft_offer, &ctx, "offer");
#ifdef _OPENMP
    bench_add(&c, &env, BENCH_OMP, run_omp, &ctx);
#endif
#ifdef BENCH_HAVE_TBB
    bench_add(&c, &env, BENCH_TBB, run_tbb, &ctx);
#endif
    bench_case_run(&c, &env);
    if (array_n > 0)
        run_array_case(&env, array_n);
    bench_env_finish(&env);
    return 0;
}
