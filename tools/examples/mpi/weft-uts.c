/* SPDX-License-Identifier: MIT */
/*
 * weft-uts: the Unbalanced Tree Search over MPI ranks and weft workers, with weft_glb_run
 * (lifeline-based global load balancing, include/weft_mpi.h).
 *
 *   weft-uts --tree T1|T3|T1L|T3L|... [--check] [--chunk N] [--tries W] [--stats]
 *   mpirun -np R env WEFT_THREADS=W weft-uts --tree T1L
 *
 * Run alone it is one rank; under mpirun every rank searches with a pool of $WEFT_THREADS
 * workers (one per core without it). Rank 0 prints one line,
 *
 *   nodes=N leaves=L depth=D time_ns=T ranks=R threads=W
 *
 * where T is the wall time of the search on rank 0 (from a barrier before it to the end of the
 * result's reduction) and W the workers per rank. --check adds "check=ok" when the count is the
 * published one (exit 1 and "check=FAILED" otherwise). --stats prints each rank's balancing
 * counts on stderr.
 *
 * The bag is a stack of nodes. A worker pops and expands the newest node (depth first, as the
 * serial search does); split gives the oldest half (the nodes nearest the root, whose subtrees
 * are largest), at most the steal cap's worth. The result is a struct uts_count, combined by
 * adding nodes and leaves and taking the greater depth.
 *
 * Exit status: 0, 1 (check failed), 2 (bad usage), 3 (the search failed: every rank is then
 * stopped with MPI_Abort after saying why).
 */
#include "uts.h"

#include <mpi.h>
#include <weft.h>
#include <weft_mpi.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A cache line of its own: its worker changes len at every node, and bags allocated one after
 * another would otherwise share a line, which the two workers would then pass to and fro. */
struct bag {
    _Alignas(64) struct uts_node *v;
    size_t len, cap;
};

static int bag_reserve(struct bag *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    struct uts_node *v = realloc(b->v, cap * sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    b->v = v;
    b->cap = cap;
    return 0;
}

static int bag_create(void *ctx, void **out)
{
    (void)ctx;
    struct bag *b = aligned_alloc(_Alignof(struct bag), sizeof *b);
    if (b != NULL)
        memset(b, 0, sizeof *b);
    if (b == NULL || bag_reserve(b, 1024) != 0) {
        free(b);
        return -ENOMEM;
    }
    *out = b;
    return 0;
}

static void bag_destroy(void *bag, void *ctx)
{
    (void)ctx;
    struct bag *b = bag;
    free(b->v);
    free(b);
}

static int seed(void *bag, int rank, int nranks, void *ctx)
{
    (void)nranks;
    if (rank != 0)
        return 0;
    struct bag *b = bag;
    uts_root(ctx, &b->v[0]);
    b->len = 1;
    return 0;
}

/* Expands up to n nodes: the serial search's loop, with the counts in the worker's result. */
static int process(void *bag, size_t n, void *result, void *ctx)
{
    const struct uts_params *p = ctx;
    struct bag *b = bag;
    struct uts_count *c = result;
    for (size_t done = 0; done < n && b->len > 0; done++) {
        struct uts_node node = b->v[--b->len];
        int k = uts_num_children(p, &node);
        c->nodes++;
        if (node.height > c->depth)
            c->depth = node.height;
        if (k == 0) {
            c->leaves++;
            continue;
        }
        if (bag_reserve(b, (size_t)k) != 0)
            return -ENOMEM;
        struct uts_node *slot = b->v + b->len;
        for (int i = 0; i < k; i++)
            uts_child(p, &node, i, &slot[i]);
        b->len += (size_t)k;
    }
    return b->len > 0;
}

static int split(void *bag, void *buf, size_t cap, size_t *len, void *ctx)
{
    (void)ctx;
    struct bag *b = bag;
    *len = 0;
    if (b->len < 2)
        return 0;
    size_t k = b->len / 2;
    if (k > cap / sizeof(struct uts_node))
        k = cap / sizeof(struct uts_node);
    memcpy(buf, b->v, k * sizeof(struct uts_node));
    memmove(b->v, b->v + k, (b->len - k) * sizeof(struct uts_node));
    b->len -= k;
    *len = k * sizeof(struct uts_node);
    return 0;
}

static int merge(void *bag, const void *buf, size_t len, void *ctx)
{
    (void)ctx;
    struct bag *b = bag;
    size_t k = len / sizeof(struct uts_node);
    if (bag_reserve(b, k) != 0)
        return -ENOMEM;
    memcpy(b->v + b->len, buf, k * sizeof(struct uts_node));
    b->len += k;
    return 0;
}

static void combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    struct uts_count *a = acc;
    const struct uts_count *o = other;
    a->nodes += o->nodes;
    a->leaves += o->leaves;
    if (o->depth > a->depth)
        a->depth = o->depth;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int usage(FILE *to)
{
    fprintf(to, "usage: weft-uts --tree NAME [--check] [--chunk N] [--tries W] [--stats]\n"
                "       mpirun -np R env WEFT_THREADS=W weft-uts --tree NAME\n"
                "trees: T1 T3 T1L T3L and the others of uts-serial --list\n");
    return to == stderr ? 2 : 0;
}

static bool parse_size(const char *s, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0)
        return false;
    *out = (size_t)v;
    return true;
}

int main(int argc, char **argv)
{
    const char *tree = NULL;
    bool check = false, stats = false;
    weft_glb_config cfg;
    weft_glb_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        size_t v = 0;
        if (strcmp(argv[i], "--tree") == 0 && i + 1 < argc) {
            tree = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--stats") == 0) {
            stats = true;
        } else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc && parse_size(argv[++i], &v)) {
            cfg.chunk = v;
        } else if (strcmp(argv[i], "--tries") == 0 && i + 1 < argc && parse_size(argv[++i], &v)) {
            cfg.steal_tries = (unsigned)v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return usage(stdout);
        } else {
            fprintf(stderr, "weft-uts: bad argument '%s'\n", argv[i]);
            return usage(stderr);
        }
    }
    struct uts_params params;
    if (tree == NULL || uts_params_by_name(tree, &params) != 0) {
        fprintf(stderr, "weft-uts: %s\n", tree ? "unknown tree" : "--tree is required");
        return usage(stderr);
    }

    /* Only the main thread calls MPI: FUNNELED is all weft_glb_run needs. */
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    int rc = uts_init();
    weft_pool *pool = NULL;
    if (rc == 0)
        rc = weft_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "weft-uts: rank %d: %s\n", rank, strerror(-rc));
        MPI_Abort(MPI_COMM_WORLD, 3);
    }

    const struct uts_count zero = {0, 0, 0};
    weft_glb_ops ops = {.bag_create = bag_create,
                        .bag_destroy = bag_destroy,
                        .seed = seed,
                        .process = process,
                        .split = split,
                        .merge = merge,
                        .combine = combine,
                        .result_size = sizeof(struct uts_count),
                        .identity = &zero};
    struct uts_count count;
    weft_glb_stats st;
    MPI_Barrier(MPI_COMM_WORLD);
    int64_t t0 = now_ns();
    rc = weft_glb_run(pool, MPI_COMM_WORLD, &ops, &cfg, &params, &count, &st);
    int64_t elapsed = now_ns() - t0;
    if (rc != 0) {
        fprintf(stderr, "weft-uts: rank %d: weft_glb_run: %s\n", rank, strerror(-rc));
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    unsigned threads = weft_pool_size(pool);
    weft_pool_destroy(pool);

    if (stats)
        fprintf(stderr,
                "rank %d: local_steals=%llu steals=%llu won=%llu lifelines=%llu pushes=%llu "
                "work_sent=%llu work_received=%llu tokens=%llu\n",
                rank, (unsigned long long)st.local_steals, (unsigned long long)st.steals_sent,
                (unsigned long long)st.steals_won, (unsigned long long)st.lifelines_sent,
                (unsigned long long)st.lifeline_pushes, (unsigned long long)st.work_sent,
                (unsigned long long)st.work_received, (unsigned long long)st.tokens);
    int status = 0;
    if (rank == 0) {
        char line[256];
        uts_format_result(line, sizeof line, &count, (uint64_t)elapsed, nranks, (int)threads);
        printf("%s\n", line);
        if (check) {
            bool ok = params.expect_nodes != 0 && count.nodes == params.expect_nodes &&
                      (params.expect_leaves == 0 || count.leaves == params.expect_leaves) &&
                      (params.expect_depth < 0 || count.depth == params.expect_depth);
            printf("check=%s\n", ok ? "ok" : "FAILED");
            status = ok ? 0 : 1;
        }
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return status;
}
