/* SPDX-License-Identifier: MIT */
/*
 * The Unbalanced Tree Search benchmark's trees (Olivier, Huan, Liu, Prins, Dinan, Sadayappan,
 * Tseng, "UTS: An Unbalanced Tree Search Benchmark", LCPC 2006).
 *
 * A tree is never stored: each node carries a 20-byte id, and everything about the node (how
 * many children it has, and their ids) is computed from that id alone. So any node can be
 * expanded by any thread on any machine, in any order, and every traversal of a tree finds the
 * same nodes. That is what makes UTS a test of load balancing: the work is known only as it is
 * discovered, and its shape is as lopsided as the parameters make it.
 *
 * The ids follow the reference implementation's SHA-1 splittable random number generator:
 *
 *   root id    = SHA-1(16 zero bytes || seed as 4 bytes, big-endian)
 *   child i id = SHA-1(parent id || i as 4 bytes, big-endian)
 *   the node's random value r = bytes 16..19 of its id, big-endian, top bit cleared;
 *   its probability u = r / 2^31, in [0, 1)
 *
 * and the number of children follows the tree's type:
 *
 *   binomial (BIN)   the root has floor(b0) children; any other node has m children with
 *                    probability q (u < q), else none
 *   geometric (GEO)  a node at depth d has floor(log(1 - u) / log(1 - p)) children, p = 1 / (1 +
 *                    b_d), where the shape gives the expected branching factor b_d: FIXED b0
 *                    above depth gen_mx and 0 from there; LINEAR b0 (1 - d / gen_mx); EXPDEC
 *                    b0 d^(-ln b0 / ln gen_mx); CYCLIC b0^sin(2 pi d / gen_mx), 0 past 5 gen_mx
 *   hybrid (HYBRID)  geometric above depth shift_depth * gen_mx, binomial from there
 *
 * Every node but a binomial root has at most UTS_MAX_CHILDREN children.
 *
 * The SHA-1 is libcrypto's (OpenSSL 3): the digest is fetched once per process (EVP_MD_fetch),
 * and each thread hashes with a context of its own, made on the thread's first hash and freed
 * when the thread exits. A node costs one SHA-1 compression and no allocation: the context is
 * driven through the functions of the provider behind the fetched digest, because OpenSSL
 * 3.0's EVP_DigestFinal_ex frees what the next EVP_DigestInit_ex2 must allocate again (uts.c
 * says more).
 *
 * Thread safety: every function may be called from any thread at once; nothing here has state
 * but the fetched digest and the per-thread contexts.
 */
#ifndef WEFT_EXAMPLES_UTS_H
#define WEFT_EXAMPLES_UTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Cap on a node's children (the reference's MAXNUMCHILDREN); a binomial root is exempt. */
#define UTS_MAX_CHILDREN 100

/* The longest tree name, with its terminating NUL. */
#define UTS_NAME_MAX 8

/* The reference's tree types (its -t values). */
enum uts_tree_type {
    UTS_BIN = 0,
    UTS_GEO = 1,
    UTS_HYBRID = 2,
};

/* The reference's geometric shape functions (its -a values). */
enum uts_geo_shape {
    UTS_LINEAR = 0,
    UTS_EXPDEC = 1,
    UTS_CYCLIC = 2,
    UTS_FIXED = 3,
};

/*
 * A tree: its generation parameters and, for the published trees, the published size.
 *
 * Plain data with no pointers, so it can be copied and sent between processes as bytes (between
 * machines of one byte order and floating-point format).
 */
struct uts_params {
    char name[UTS_NAME_MAX]; /* "T1", "T3L", ... ("" for a tree made by hand) */
    enum uts_tree_type type;
    enum uts_geo_shape shape; /* GEO and HYBRID */
    double b0;                /* branching factor at the root (-b) */
    int32_t seed;             /* root seed (-r), >= 0 */
    int32_t gen_mx;           /* GEO and HYBRID: the depth the shape is drawn against (-d) */
    double q;                 /* BIN and HYBRID: probability that a node has children (-q) */
    int32_t m;                /* BIN and HYBRID: how many children such a node has (-m) */
    double shift_depth;       /* HYBRID: GEO above depth shift_depth * gen_mx (-f) */
    /* The published size, or 0 where none was published (the small trees: the size that
     * uts_count_serial found, cross-checked by an independent traversal). */
    uint64_t expect_nodes;
    uint64_t expect_leaves;
    int32_t expect_depth; /* -1: not published */
};

/*
 * Fills *out with the parameters of the tree called `name` (case-insensitive):
 *
 *   T1 T2 T3 T4 T5    the ~4 million node trees of the reference's sample_trees.sh
 *   T1L T2L T3L       the ~100 million node trees
 *   T1XL T1XXL T3XXL  1.6, 4.2 and 2.8 billion nodes
 *   S1 S3             small trees for fast tests: T1 to depth 6 (geometric) and T3 with a
 *                     root of 20 children (binomial)
 *
 * Returns 0, or -EINVAL if `name` or `out` is NULL or the name is unknown (*out unchanged).
 */
int uts_params_by_name(const char *name, struct uts_params *out);

/*
 * The known tree names in the order above, or NULL past the last: `i` from 0 up.
 */
const char *uts_tree_name(unsigned i);

/*
 * Checks parameters made by hand: 0, or -EINVAL if a value is out of its range (b0 below 0 or
 * above 2^31, seed below 0, q outside [0, 1], m outside [0, UTS_MAX_CHILDREN], gen_mx below 1
 * for a GEO or HYBRID tree, an unknown type or shape, a NaN).
 */
int uts_params_check(const struct uts_params *p);

/* A node: its id and its depth (the root's is 0). 24 bytes, no padding. */
struct uts_node {
    uint8_t id[20];
    int32_t height;
};

/*
 * Makes libcrypto's SHA-1 ready for this process and this thread. Optional: the functions
 * below do it on first use, but they cannot report failure. Returns 0, -ENOTSUP if libcrypto
 * offers no SHA-1 (a provider configuration without it), or -ENOMEM.
 */
int uts_init(void);

/*
 * How this process hashes: "provider" (the provider's digest functions, no allocation per
 * node), "evp" (EVP_Digest*, one allocation per node under OpenSSL 3.0; chosen by
 * UTS_SHA1_EVP=1 in the environment, or when the provider does not list its functions) or
 * "none" (uts_init fails).
 */
const char *uts_sha1_path(void);

/*
 * The root of tree *p. Like uts_child, it aborts the process with a message on stderr if
 * libcrypto fails (no SHA-1, or no memory for this thread's context: call uts_init first on
 * each thread to get that as an error instead).
 */
void uts_root(const struct uts_params *p, struct uts_node *root);

/* How many children node *n of tree *p has: from 0 to UTS_MAX_CHILDREN (or floor(b0) for a
 * binomial root). Pure arithmetic on the id: no hashing. */
int uts_num_children(const struct uts_params *p, const struct uts_node *n);

/* Child i (0 <= i < uts_num_children(p, parent)) of *parent; one SHA-1. `parent` and `child`
 * may be the same node. */
void uts_child(const struct uts_params *p, const struct uts_node *parent, int i,
               struct uts_node *child);

/* The size of a tree (or of the part of it a process searched). */
struct uts_count {
    uint64_t nodes;  /* every node, the root included */
    uint64_t leaves; /* nodes with no children */
    int32_t depth;   /* the greatest height: 0 for a lone root */
};

/*
 * Counts tree *p by a depth-first search on one thread, with an explicit stack (T3L is 17,844
 * deep). The serial baseline. On failure (no memory for the stack, parameters that
 * uts_params_check refuses) *out is all zero: a tree always has at least its root.
 */
void uts_count_serial(const struct uts_params *p, struct uts_count *out);

/*
 * The same search from any node: adds the nodes of the subtree under *n (n included) to *acc,
 * and raises acc->depth to the subtree's greatest height. Returns 0, or -ENOMEM (*acc then
 * holds a partial count).
 */
int uts_count_subtree(const struct uts_params *p, const struct uts_node *n, struct uts_count *acc);

/*
 * Writes the line every UTS program here prints:
 *   nodes=N leaves=L depth=D time_ns=T ranks=R threads=W
 * into buf (at most len bytes, NUL-terminated). Returns what snprintf returns.
 */
int uts_format_result(char *buf, size_t len, const struct uts_count *c, uint64_t time_ns, int ranks,
                      int threads);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_EXAMPLES_UTS_H */
