/* SPDX-License-Identifier: MIT */
/*
 * uts-serial: the serial baseline of the UTS examples. One thread, one depth-first search with
 * an explicit stack, no weft and no MPI: what weft-uts is measured against.
 *
 *   uts-serial --tree NAME [--check] [--ns-per-node]
 *
 * Prints the line every UTS program here prints,
 *   nodes=N leaves=L depth=D time_ns=T ranks=1 threads=0
 * with T the search's wall time (the root's hash included, the process's start not).
 *
 *   --check        also compare with the published size (exit status 1 if it differs; trees
 *                  without one are not compared)
 *   --ns-per-node  also print the cost of one SHA-1 step (uts_child) on this machine, in CPU
 *                  time of the thread over 2^20 children of the root, and how libcrypto is driven
 * (uts_sha1_path), as "sha1_ns_per_node=X sha1_path=provider|evp"
 *   --list         print the known trees with their parameters and published sizes
 *
 * Exit status: 0, 1 for a size that differs from the published one, 2 for bad usage, 3 if
 * libcrypto has no SHA-1 or memory ran out.
 */
#include "uts.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int usage(FILE *to)
{
    fprintf(to, "usage: uts-serial --tree NAME [--check] [--ns-per-node]\n"
                "       uts-serial --list\n");
    return 2;
}

static void list_trees(void)
{
    static const char *const types[] = {"binomial", "geometric", "hybrid"};
    static const char *const shapes[] = {"linear", "expdec", "cyclic", "fixed"};
    const char *name;
    for (unsigned i = 0; (name = uts_tree_name(i)) != NULL; i++) {
        struct uts_params p;
        uts_params_by_name(name, &p);
        printf("%-6s %-9s b0=%g seed=%d", p.name, types[p.type], p.b0, (int)p.seed);
        if (p.type != UTS_BIN)
            printf(" shape=%s gen_mx=%d", shapes[p.shape], (int)p.gen_mx);
        if (p.type != UTS_GEO)
            printf(" q=%g m=%d", p.q, (int)p.m);
        if (p.expect_nodes != 0)
            printf("  expected: nodes=%llu", (unsigned long long)p.expect_nodes);
        if (p.expect_leaves != 0)
            printf(" leaves=%llu", (unsigned long long)p.expect_leaves);
        if (p.expect_depth >= 0)
            printf(" depth=%d", (int)p.expect_depth);
        printf("\n");
    }
}

/* The cost of one SHA-1 step: 2^20 children of the root, each hashed from the root's id. */
static double ns_per_node(const struct uts_params *p)
{
    enum { N = 1 << 20 };
    struct uts_node root, child;
    uint8_t sink = 0;
    uts_root(p, &root);
    /* The thread's CPU time, not the wall clock: on a shared machine the wall clock also
     * counts the time other processes held the core. */
    uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < N; i++) {
        uts_child(p, &root, i, &child);
        sink ^= child.id[0]; /* keeps the loop from being optimised away */
    }
    uint64_t t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (sink == 0xff && child.height < 0)
        printf("#\n");
    return (double)(t1 - t0) / N;
}

int main(int argc, char **argv)
{
    const char *tree = NULL;
    bool check = false, cost = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tree") == 0 && i + 1 < argc) {
            tree = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--ns-per-node") == 0) {
            cost = true;
        } else if (strcmp(argv[i], "--list") == 0) {
            list_trees();
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "uts-serial: unknown argument '%s'\n", argv[i]);
            return usage(stderr);
        }
    }
    if (tree == NULL)
        return usage(stderr);

    struct uts_params p;
    if (uts_params_by_name(tree, &p) != 0) {
        fprintf(stderr, "uts-serial: unknown tree '%s' (--list shows them)\n", tree);
        return 2;
    }
    int err = uts_init();
    if (err != 0) {
        fprintf(stderr, "uts-serial: libcrypto SHA-1: %s\n", strerror(-err));
        return 3;
    }

    struct uts_count c;
    uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
    uts_count_serial(&p, &c);
    uint64_t t1 = clock_ns(CLOCK_MONOTONIC);
    if (c.nodes == 0) {
        fprintf(stderr, "uts-serial: out of memory\n");
        return 3;
    }

    char line[256];
    uts_format_result(line, sizeof line, &c, t1 - t0, 1, 0);
    printf("%s\n", line);
    if (cost)
        printf("sha1_ns_per_node=%.1f sha1_path=%s\n", ns_per_node(&p), uts_sha1_path());

    if (check && p.expect_nodes != 0) {
        bool ok = c.nodes == p.expect_nodes &&
                  (p.expect_leaves == 0 || c.leaves == p.expect_leaves) &&
                  (p.expect_depth < 0 || c.depth == p.expect_depth);
        if (!ok) {
            fprintf(stderr,
                    "uts-serial: %s differs from the published size: nodes=%llu leaves=%llu "
                    "depth=%d\n",
                    p.name, (unsigned long long)p.expect_nodes, (unsigned long long)p.expect_leaves,
                    (int)p.expect_depth);
            return 1;
        }
        printf("check=ok\n");
    }
    return 0;
}
