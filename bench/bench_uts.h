/* SPDX-License-Identifier: MIT */
/*
 * bench_uts.h: the tree every UTS variant walks (bench_uts.c, bench_uts_tbb.cpp); uts_kids is
 * defined in bench_uts.c.
 *
 * Unbalanced Tree Search (Olivier et al., LCPC 2006), binomial trees as in its T3 family: the
 * root has b0 children; every other node has m children with probability q and none otherwise.
 * With q * m just below 1 the process is nearly critical: most subtrees die at once, a few grow
 * very large and deep, and nobody can tell which in advance, so the work has to be balanced
 * dynamically. UTS derives each node's random state from its parent's with SHA-1; here a
 * splitmix64 step does it (much cheaper per node, so the tree is finer-grained than T3), and a
 * node's child count comes from `rounds` further splitmix64 steps (the per-node work knob).
 */
#ifndef WEFT_BENCH_UTS_H
#define WEFT_BENCH_UTS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uts_tree {
    uint64_t seed;    /* the root's state */
    uint64_t q_limit; /* a node has m children when its hash is below q * 2^64 */
    unsigned b0, m, rounds;
} uts_tree;

/* splitmix64's finaliser (Steele, Lea, Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014). */
static inline uint64_t uts_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The state of child i of the node in state s. */
static inline uint64_t uts_child(uint64_t s, unsigned i)
{
    return uts_mix(s + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15u);
}

/* The number of children of a non-root node in state s: the per-node work (bench_uts.c; one
 * out-of-line copy, see BENCH_KERNEL). */
unsigned uts_kids(const uts_tree *t, uint64_t s);

/* The same count with a task_group run per child, in the benchmarks' arena. */
uint64_t uts_tbb(const uts_tree *t);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_UTS_H */
