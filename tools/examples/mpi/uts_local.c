/* SPDX-License-Identifier: MIT */
/*
 * weft-uts-local: the UTS search on one weft pool, no MPI. What weft's fork-join does with a
 * tree whose shape nobody knows in advance, beside uts-serial on the same tree.
 *
 *   weft-uts-local --tree NAME [--threads N] [--check]
 *
 * Each node makes its children and counts the leaves among them at once; over the others (the
 * inner children) it splits the range in halves with weft_join until one is left. So an inner
 * node costs about one join and a leaf none; a join allocates nothing, and idle workers steal
 * the halves still waiting. Counts travel up the recursion in the ranges, so no two workers
 * ever write the same counter. Prints
 *   nodes=N leaves=L depth=D time_ns=T ranks=1 threads=W
 * with W the pool's size and T the search's wall time (the pool already running).
 *
 *   --threads N  workers (default 0: weft's default, $WEFT_THREADS or one per core)
 *   --check      compare with the tree's published size (exit status 1 if it differs)
 *
 * Exit status: 0, 1 for a size that differs, 2 for bad usage, 3 if the pool or libcrypto
 * could not be set up.
 */
#include "uts.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft.h>

struct search {
    const struct uts_params *p;
    struct uts_count count;
};

/* An inner node (one with children) and how many it has. */
struct inner {
    struct uts_node node;
    int children;
};

/* The most children a node looks at before forking; a node with more forks over all of them,
 * one join per child. Most nodes have fewer (T1's mean is 4, T3's inner nodes have 8), and the
 * array stays small on the stack, which matters in T3L, 17,844 levels deep. */
#define EXPAND_MAX 16

/* A range of work to count: inner nodes lo..hi-1 of `inner`, or, with `inner` NULL, children
 * lo..hi-1 of `parent`. */
struct range {
    const struct uts_params *p;
    const struct inner *inner;
    const struct uts_node *parent;
    int lo, hi;
    struct uts_count count;
};

static void add_count(struct uts_count *to, const struct uts_count *from)
{
    to->nodes += from->nodes;
    to->leaves += from->leaves;
    if (from->depth > to->depth)
        to->depth = from->depth;
}

static void expand(const struct uts_params *p, const struct uts_node *n, int k,
                   struct uts_count *c);

static void visit_range(void *arg)
{
    struct range *r = arg;
    if (r->hi - r->lo == 1) {
        if (r->inner != NULL) {
            expand(r->p, &r->inner[r->lo].node, r->inner[r->lo].children, &r->count);
        } else {
            struct uts_node child;
            uts_child(r->p, r->parent, r->lo, &child);
            r->count.nodes++;
            if (child.height > r->count.depth)
                r->count.depth = child.height;
            int k = uts_num_children(r->p, &child);
            if (k == 0)
                r->count.leaves++;
            else
                expand(r->p, &child, k, &r->count);
        }
        return;
    }
    int mid = r->lo + (r->hi - r->lo) / 2;
    struct range a = {.p = r->p, .inner = r->inner, .parent = r->parent, .lo = r->lo, .hi = mid};
    struct range b = {.p = r->p, .inner = r->inner, .parent = r->parent, .lo = mid, .hi = r->hi};
    weft_join(visit_range, &a, visit_range, &b);
    add_count(&r->count, &a.count);
    add_count(&r->count, &b.count);
}

/*
 * Counts the subtrees under n's k children into c (n itself is counted by its caller). The
 * children are made and looked at first: leaves (most nodes of every UTS tree) are counted on
 * the spot, and only the inner children are forked over, so the joins come to about one per
 * inner node rather than one per node.
 */
static void expand(const struct uts_params *p, const struct uts_node *n, int k, struct uts_count *c)
{
    if (k > EXPAND_MAX) {
        struct range r = {.p = p, .parent = n, .lo = 0, .hi = k};
        visit_range(&r);
        add_count(c, &r.count);
        return;
    }
    struct inner inner[EXPAND_MAX];
    int m = 0;
    c->nodes += (uint64_t)k;
    if (n->height + 1 > c->depth)
        c->depth = n->height + 1;
    for (int i = 0; i < k; i++) {
        uts_child(p, n, i, &inner[m].node);
        int kc = uts_num_children(p, &inner[m].node);
        if (kc == 0) {
            c->leaves++;
        } else {
            inner[m].children = kc;
            m++;
        }
    }
    if (m == 0)
        return;
    struct range r = {.p = p, .inner = inner, .lo = 0, .hi = m};
    visit_range(&r);
    add_count(c, &r.count);
}

static int search_task(void *arg, void **result)
{
    (void)result;
    struct search *s = arg;
    struct uts_node root;
    uts_root(s->p, &root);
    s->count = (struct uts_count){.nodes = 1, .leaves = 0, .depth = 0};
    int k = uts_num_children(s->p, &root);
    if (k == 0)
        s->count.leaves = 1;
    else
        expand(s->p, &root, k, &s->count);
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_worker_start(weft_pool *pool, unsigned worker, void *data)
{
    (void)pool;
    (void)worker;
    /* Each worker's hashing context, made before the search starts, so that a failure is
     * reported instead of aborting in the middle of the search. */
    if (uts_init() != 0) /* relaxed: read after weft_pool_destroy has joined the workers */
        atomic_store_explicit((atomic_int *)data, 1, memory_order_relaxed);
}

static int usage(FILE *to)
{
    fprintf(to, "usage: weft-uts-local --tree NAME [--threads N] [--check]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *tree = NULL;
    unsigned threads = 0;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--tree") == 0 && i + 1 < argc) {
            tree = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*argv[i] == '\0' || *end != '\0' || v > WEFT_MAX_THREADS) {
                fprintf(stderr, "weft-uts-local: --threads wants 0..%u, not '%s'\n",
                        WEFT_MAX_THREADS, argv[i]);
                return 2;
            }
            threads = (unsigned)v;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "weft-uts-local: unknown argument '%s'\n", argv[i]);
            return usage(stderr);
        }
    }
    if (tree == NULL)
        return usage(stderr);
    struct uts_params p;
    if (uts_params_by_name(tree, &p) != 0) {
        fprintf(stderr, "weft-uts-local: unknown tree '%s' (uts-serial --list shows them)\n", tree);
        return 2;
    }
    int err = uts_init();
    if (err != 0) {
        fprintf(stderr, "weft-uts-local: libcrypto SHA-1: %s\n", strerror(-err));
        return 3;
    }

    atomic_int worker_failed = 0;
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = threads;
    cfg.name = "uts";
    cfg.on_worker_start = on_worker_start;
    cfg.hook_data = &worker_failed;
    weft_pool *pool;
    err = weft_pool_create(&cfg, &pool);
    if (err != 0) {
        fprintf(stderr, "weft-uts-local: weft_pool_create: %s\n", weft_strerror(err));
        return 3;
    }

    struct search s = {.p = &p};
    uint64_t t0 = now_ns();
    err = weft_pool_run(pool, search_task, &s, NULL);
    uint64_t t1 = now_ns();
    unsigned size = weft_pool_size(pool);
    weft_pool_destroy(pool);
    if (err != 0 || atomic_load_explicit(&worker_failed, memory_order_relaxed)) {
        fprintf(stderr, "weft-uts-local: search failed: %s\n",
                err != 0 ? weft_strerror(err) : "a worker could not set up libcrypto");
        return 3;
    }

    char line[256];
    uts_format_result(line, sizeof line, &s.count, t1 - t0, 1, (int)size);
    printf("%s\n", line);
    if (check && p.expect_nodes != 0) {
        if (s.count.nodes != p.expect_nodes ||
            (p.expect_leaves != 0 && s.count.leaves != p.expect_leaves) ||
            (p.expect_depth >= 0 && s.count.depth != p.expect_depth)) {
            fprintf(stderr, "weft-uts-local: %s differs from the published size\n", p.name);
            return 1;
        }
        printf("check=ok\n");
    }
    return 0;
}
