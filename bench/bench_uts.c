/* SPDX-License-Identifier: MIT */
/*
 * bench_uts: Unbalanced Tree Search, counting the nodes of a binomial tree (bench_uts.h says
 * which tree). Every node forks one task per child: no cutoff, since nobody knows in advance
 * which subtrees are large.
 *   serial  uts_count, the plain recursion
 *   weft    a weft_scope per node: weft_scope_spawn per child, weft_scope_wait (variant
 *           default), weft_join in a binary split over each node's children (variant join),
 *           and the inline pair (variant offer): weft_offer per child but the first, which runs
 *           at once, then weft_reclaim newest first, running at once what nobody took
 *   omp     #pragma omp task per child, taskwait
 *   tbb     tbb::task_group::run per child, wait
 * Every variant computes a child's state and child count in the child's task. See
 * bench_harness.h for the method and the output.
 *
 * Usage: bench_uts [-t THREADS] [-r REPS] [-i IMPLS] [-b B0] [-m M] [-q Q] [-s SEED] [-g ROUNDS]
 *   -b  children of the root (default 2000)
 *   -m  children of a non-leaf node (default 8)
 *   -q  probability that a node has children, in millionths (default 124875: q * m = 0.999)
 *   -s  seed, the root's state (default 30: 2.1 M nodes, height 793, with the defaults)
 *   -g  splitmix64 rounds per node deciding its child count (default 8)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bench_uts.h"
#include "weft.h"

#define UTS_SMALL 16 /* children whose frames fit on the stack */

BENCH_KERNEL unsigned uts_kids(const uts_tree *t, uint64_t s)
{
    uint64_t h = s;
    for (unsigned r = 0; r < t->rounds; r++)
        h = uts_mix(h + 0x9e3779b97f4a7c15u);
    return h < t->q_limit ? t->m : 0;
}

/* Nodes in the subtree of the node in state s, which has k children, by plain recursion. */
static uint64_t uts_count(const uts_tree *t, uint64_t s, unsigned k)
{
    uint64_t n = 1;
    for (unsigned i = 0; i < k; i++) {
        uint64_t c = uts_child(s, i);
        n += uts_count(t, c, uts_kids(t, c));
    }
    return n;
}

/* --- weft: scope --- */

typedef struct uts_task {
    const uts_tree *t;
    uint64_t parent;
    unsigned index;
    uint64_t count;
} uts_task;

static uint64_t uts_scope_node(const uts_tree *t, uint64_t s, unsigned k);

static void uts_scope_child(void *arg)
{
    uts_task *c = arg;
    uint64_t s = uts_child(c->parent, c->index);
    c->count = uts_scope_node(c->t, s, uts_kids(c->t, s));
}

static uint64_t uts_scope_node(const uts_tree *t, uint64_t s, unsigned k)
{
    if (k == 0)
        return 1;
    uts_task small_kids[UTS_SMALL];
    weft_spawn small_slots[UTS_SMALL];
    uts_task *kids = small_kids;
    weft_spawn *slots = small_slots;
    if (k > UTS_SMALL) {
        kids = bench_xcalloc(k, sizeof *kids);
        slots = bench_xcalloc(k, sizeof *slots);
    }
    weft_scope scope;
    weft_scope_init(&scope);
    for (unsigned i = 0; i < k; i++) {
        kids[i] = (uts_task){t, s, i, 0};
        weft_scope_spawn(&scope, &slots[i], uts_scope_child, &kids[i]);
    }
    weft_scope_wait(&scope);
    uint64_t n = 1;
    for (unsigned i = 0; i < k; i++)
        n += kids[i].count;
    if (k > UTS_SMALL) {
        free(kids);
        free(slots);
    }
    return n;
}

static int uts_scope_root(void *arg, void **result)
{
    const uts_tree *t = arg;
    *result = (void *)(uintptr_t)uts_scope_node(t, t->seed, t->b0);
    return 0;
}

/* --- weft: the inline pair, an offer per child --- */

static inline uint64_t uts_offer_node(const uts_tree *t, uint64_t s, unsigned k);

static void uts_offer_child(void *arg)
{
    uts_task *c = arg;
    uint64_t s = uts_child(c->parent, c->index);
    c->count = uts_offer_node(c->t, s, uts_kids(c->t, s));
}

static uint64_t uts_offer_fork(const uts_tree *t, uint64_t s, unsigned k);

/* A leaf returns before anything is reserved on the stack for children's frames. */
static inline uint64_t uts_offer_node(const uts_tree *t, uint64_t s, unsigned k)
{
    return k == 0 ? 1 : uts_offer_fork(t, s, k);
}

__attribute__((noinline)) static uint64_t uts_offer_fork(const uts_tree *t, uint64_t s, unsigned k)
{
    uts_task small_kids[UTS_SMALL];
    weft_frame small_frames[UTS_SMALL];
    uts_task *kids = small_kids;
    weft_frame *frames = small_frames;
    if (k > UTS_SMALL) {
        kids = bench_xcalloc(k, sizeof *kids);
        frames = bench_xcalloc(k, sizeof *frames);
    }
    for (unsigned i = 1; i < k; i++) {
        kids[i] = (uts_task){t, s, i, 0};
        weft_offer(&frames[i], uts_offer_child, &kids[i]);
    }
    uint64_t c0 = uts_child(s, 0);
    uint64_t n = 1 + uts_offer_node(t, c0, uts_kids(t, c0));
    for (unsigned i = k - 1; i >= 1; i--) {
        if (weft_reclaim(&frames[i])) { /* nobody took it: the child, as a direct call */
            uint64_t c = uts_child(s, i);
            n += uts_offer_node(t, c, uts_kids(t, c));
        } else {
            n += kids[i].count;
        }
    }
    if (k > UTS_SMALL) {
        free(kids);
        free(frames);
    }
    return n;
}

static int uts_offer_root(void *arg, void **result)
{
    const uts_tree *t = arg;
    *result = (void *)(uintptr_t)uts_offer_node(t, t->seed, t->b0);
    return 0;
}

/* --- weft: binary joins over the children --- */

typedef struct uts_range {
    const uts_tree *t;
    uint64_t s;
    unsigned lo, hi;
    uint64_t count;
} uts_range;

static void uts_join_range(void *arg);

static uint64_t uts_join_node(const uts_tree *t, uint64_t s, unsigned k)
{
    if (k == 0)
        return 1;
    uts_range r = {t, s, 0, k, 0};
    uts_join_range(&r);
    return 1 + r.count;
}

static void uts_join_range(void *arg)
{
    uts_range *r = arg;
    if (r->hi - r->lo == 1) {
        uint64_t c = uts_child(r->s, r->lo);
        r->count = uts_join_node(r->t, c, uts_kids(r->t, c));
        return;
    }
    unsigned mid = r->lo + (r->hi - r->lo) / 2;
    uts_range a = {r->t, r->s, r->lo, mid, 0}, b = {r->t, r->s, mid, r->hi, 0};
    weft_join(uts_join_range, &a, uts_join_range, &b);
    r->count = a.count + b.count;
}

static int uts_join_root(void *arg, void **result)
{
    const uts_tree *t = arg;
    *result = (void *)(uintptr_t)uts_join_node(t, t->seed, t->b0);
    return 0;
}

/* --- omp --- */

#ifdef _OPENMP
static uint64_t uts_omp(const uts_tree *t, uint64_t s, unsigned k)
{
    if (k == 0)
        return 1;
    uint64_t small[UTS_SMALL];
    uint64_t *counts = k > UTS_SMALL ? bench_xcalloc(k, sizeof *counts) : small;
    for (unsigned i = 0; i < k; i++) {
#pragma omp task shared(counts) firstprivate(t, s, i)
        {
            uint64_t c = uts_child(s, i);
            counts[i] = uts_omp(t, c, uts_kids(t, c));
        }
    }
#pragma omp taskwait
    uint64_t n = 1;
    for (unsigned i = 0; i < k; i++)
        n += counts[i];
    if (counts != small)
        free(counts);
    return n;
}
#endif

/* --- rows --- */

static uint64_t run_serial(const bench_row *row)
{
    const uts_tree *t = row->ctx;
    return uts_count(t, t->seed, t->b0);
}

static uint64_t run_weft(const bench_row *row)
{
    return (uint64_t)(uintptr_t)bench_weft_root(row->pool, uts_scope_root, row->ctx);
}

static uint64_t run_weft_join(const bench_row *row)
{
    return (uint64_t)(uintptr_t)bench_weft_root(row->pool, uts_join_root, row->ctx);
}

static uint64_t run_weft_offer(const bench_row *row)
{
    return (uint64_t)(uintptr_t)bench_weft_root(row->pool, uts_offer_root, row->ctx);
}

#ifdef _OPENMP
static uint64_t run_omp(const bench_row *row)
{
    const uts_tree *t = row->ctx;
    uint64_t v = 0;
#pragma omp parallel num_threads(row->threads)
#pragma omp single
    v = uts_omp(t, t->seed, t->b0);
    return v;
}
#endif

#ifdef BENCH_HAVE_TBB
static uint64_t run_tbb(const bench_row *row)
{
    return uts_tbb(row->ctx);
}
#endif

/* Leaves and height of the tree, for the record. */
static void uts_shape(const uts_tree *t, uint64_t s, unsigned k, unsigned depth, uint64_t *leaves,
                      unsigned *height)
{
    if (depth > *height)
        *height = depth;
    if (k == 0)
        ++*leaves;
    for (unsigned i = 0; i < k; i++) {
        uint64_t c = uts_child(s, i);
        uts_shape(t, c, uts_kids(t, c), depth + 1, leaves, height);
    }
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-t THREADS] [-r REPS] [-i IMPLS] [-b B0] [-m M] [-q Q] [-s SEED]"
            " [-g ROUNDS]\n"
            "%s"
            "  -b B0       children of the root (2000)\n"
            "  -m M        children of a non-leaf node (8)\n"
            "  -q Q        probability of having children, in millionths (124875)\n"
            "  -s SEED     the root's state (30)\n"
            "  -g ROUNDS   splitmix64 rounds per node (8)\n",
            argv0, BENCH_COMMON_USAGE);
}

int main(int argc, char **argv)
{
    bench_env env;
    bench_env_init(&env);
    unsigned long long q = 124875;
    uts_tree tree = {30, 0, 2000, 8, 8};
    int opt;
    while ((opt = getopt(argc, argv, BENCH_COMMON_OPTS "b:m:q:s:g:h")) != -1) {
        if (bench_env_option(&env, opt, optarg))
            continue;
        switch (opt) {
        case 'b':
            tree.b0 = (unsigned)bench_parse_num('b', optarg, 0, 1000000);
            break;
        case 'm':
            tree.m = (unsigned)bench_parse_num('m', optarg, 1, 1000);
            break;
        case 'q':
            q = bench_parse_num('q', optarg, 0, 999999);
            break;
        case 's':
            tree.seed = bench_parse_num('s', optarg, 0, UINT64_MAX);
            break;
        case 'g':
            tree.rounds = (unsigned)bench_parse_num('g', optarg, 0, 100000);
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
    /* q * 2^64, exactly for q in millionths. */
    tree.q_limit = (uint64_t)(((unsigned __int128)q << 64) / 1000000u);

    bench_env_start(&env, "bench_uts");
    uint64_t leaves = 0;
    unsigned height = 0;
    uts_shape(&tree, tree.seed, tree.b0, 0, &leaves, &height);
    bench_case c;
    bench_case_init(&c, "uts", "binomial");
    snprintf(c.params, sizeof c.params,
             "b0=%u m=%u q=0.%06llu seed=%" PRIu64 " rounds=%u nodes=%" PRIu64 " leaves=%" PRIu64
             " height=%u",
             tree.b0, tree.m, q, tree.seed, tree.rounds, uts_count(&tree, tree.seed, tree.b0),
             leaves, height);
    bench_add(&c, &env, BENCH_SERIAL, run_serial, &tree);
    bench_add(&c, &env, BENCH_WEFT1, run_weft, &tree);
    bench_add(&c, &env, BENCH_WEFTN, run_weft, &tree);
    bench_add_weft(&c, &env, run_weft_offer, &tree, "offer");
    bench_row *join = bench_add(&c, &env, BENCH_WEFTN, run_weft_join, &tree);
    if (join != NULL)
        join->variant = "join";
#ifdef _OPENMP
    bench_add(&c, &env, BENCH_OMP, run_omp, &tree);
#endif
#ifdef BENCH_HAVE_TBB
    bench_add(&c, &env, BENCH_TBB, run_tbb, &tree);
#endif
    bench_case_run(&c, &env);
    bench_env_finish(&env);
    return 0;
}
