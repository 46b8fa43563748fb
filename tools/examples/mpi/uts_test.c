/* SPDX-License-Identifier: MIT */
/*
 * The Check suite of the UTS core (uts.h): tree names and parameter checks, the SHA-1 ids
 * against digests computed independently (Python's hashlib), the number of children against
 * the rules worked by hand, the explicit-stack count against a plain recursion, counts from
 * several threads at once, and that hashing a node allocates nothing.
 *
 * The published sizes of T1 and T3 are checked by uts-serial --check (tests uts_T1, uts_T3),
 * and the small trees against an independent count in Python (uts_S1, uts_S3).
 */
#include "uts.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libcrypto's allocations, counted through CRYPTO_set_mem_functions (set in main, before
 * libcrypto allocates anything). Relaxed: a tally read by the thread that made the calls. */
static atomic_ulong crypto_allocs;

static void *count_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    atomic_fetch_add_explicit(&crypto_allocs, 1, memory_order_relaxed);
    return malloc(n);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    atomic_fetch_add_explicit(&crypto_allocs, 1, memory_order_relaxed);
    return realloc(p, n);
}

static void count_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

static int crypto_counted; /* CRYPTO_set_mem_functions took effect */

static void hex_to_id(const char *hex, uint8_t id[20])
{
    for (int i = 0; i < 20; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        id[i] = (uint8_t)v;
    }
}

static struct uts_params tree(const char *name)
{
    struct uts_params p;
    ck_assert_int_eq(uts_params_by_name(name, &p), 0);
    return p;
}

/* A second traversal, recursive, sharing only uts_root/uts_child/uts_num_children with the
 * code under test. */
static void count_recursive(const struct uts_params *p, const struct uts_node *n,
                            struct uts_count *c)
{
    c->nodes++;
    if (n->height > c->depth)
        c->depth = n->height;
    int k = uts_num_children(p, n);
    if (k == 0)
        c->leaves++;
    for (int i = 0; i < k; i++) {
        struct uts_node child;
        uts_child(p, n, i, &child);
        count_recursive(p, &child, c);
    }
}

START_TEST(names_resolve)
{
    const char *name;
    unsigned n = 0;
    for (unsigned i = 0; (name = uts_tree_name(i)) != NULL; i++, n++) {
        struct uts_params p = tree(name);
        ck_assert_str_eq(p.name, name);
        ck_assert_int_eq(uts_params_check(&p), 0);
        ck_assert_uint_gt(p.expect_nodes, 0);
    }
    ck_assert_uint_ge(n, 13);
    for (const char *const *s = (const char *const[]){"T1", "T3", "T1L", "T3L", NULL}; *s; s++)
        tree(*s);

    /* The published parameters, against sample_trees.sh. */
    struct uts_params t1l = tree("t1l"); /* case-insensitive */
    ck_assert_int_eq(t1l.type, UTS_GEO);
    ck_assert_int_eq(t1l.shape, UTS_FIXED);
    ck_assert(t1l.b0 == 4.0 && t1l.gen_mx == 13 && t1l.seed == 29);
    struct uts_params t3l = tree("T3L");
    ck_assert_int_eq(t3l.type, UTS_BIN);
    ck_assert(t3l.b0 == 2000.0 && t3l.q == 0.200014 && t3l.m == 5 && t3l.seed == 7);
    ck_assert_uint_eq(t3l.expect_nodes, 111345631);
}
END_TEST

START_TEST(names_refused)
{
    struct uts_params p;
    memset(&p, 0x5a, sizeof p);
    struct uts_params before = p;
    ck_assert_int_eq(uts_params_by_name("T9", &p), -EINVAL);
    ck_assert_int_eq(uts_params_by_name("", &p), -EINVAL);
    ck_assert_int_eq(uts_params_by_name("T1 ", &p), -EINVAL);
    ck_assert_int_eq(uts_params_by_name(NULL, &p), -EINVAL);
    ck_assert_int_eq(uts_params_by_name("T1", NULL), -EINVAL);
    ck_assert_mem_eq(&p, &before, sizeof p);
}
END_TEST

START_TEST(params_checked)
{
    struct uts_params good = tree("T4"), p;
    ck_assert_int_eq(uts_params_check(NULL), -EINVAL);
#define REFUSED(field, value)                                                                      \
    do {                                                                                           \
        p = good;                                                                                  \
        p.field = value;                                                                           \
        ck_assert_int_eq(uts_params_check(&p), -EINVAL);                                           \
    } while (0)
    REFUSED(b0, -1.0);
    REFUSED(b0, NAN);
    REFUSED(b0, 1e12);
    REFUSED(seed, -1);
    REFUSED(q, 1.5);
    REFUSED(q, NAN);
    REFUSED(m, UTS_MAX_CHILDREN + 1);
    REFUSED(m, -1);
    REFUSED(gen_mx, 0);
    REFUSED(type, (enum uts_tree_type)7);
    REFUSED(shape, (enum uts_geo_shape)9);
    REFUSED(shift_depth, NAN);
#undef REFUSED
    /* Refused parameters count as nothing rather than as a tree. */
    p = good;
    p.b0 = -3.0;
    struct uts_count c = {1, 1, 1};
    uts_count_serial(&p, &c);
    ck_assert_uint_eq(c.nodes, 0);
    ck_assert_uint_eq(c.leaves, 0);
    ck_assert_int_eq(c.depth, 0);
}
END_TEST

START_TEST(ids_match_sha1)
{
    /* SHA-1(16 zero bytes || 00 00 00 13) and SHA-1(that || 00 00 00 03), from hashlib. */
    uint8_t want_root[20], want_child[20];
    hex_to_id("c6988ab70cc9559ae4d6cba254e29a845a85f86b", want_root);
    hex_to_id("4e62c7789552ef31fa428ed5d9023d3f3ec368ef", want_child);
    struct uts_params t1 = tree("T1");
    struct uts_node root, child;
    ck_assert_int_eq(uts_init(), 0);
    uts_root(&t1, &root);
    ck_assert_mem_eq(root.id, want_root, 20);
    ck_assert_int_eq(root.height, 0);
    uts_child(&t1, &root, 3, &child);
    ck_assert_mem_eq(child.id, want_child, 20);
    ck_assert_int_eq(child.height, 1);

    /* In place: the parent's id and height are read before the child is written. */
    struct uts_node same = root;
    uts_child(&t1, &same, 3, &same);
    ck_assert_mem_eq(&same, &child, sizeof same);

    /* T3's root, seed 42. */
    uint8_t want42[20];
    hex_to_id("a11dabbcec7aab309c890ab3dbc256eaeb582782", want42);
    struct uts_params t3 = tree("T3");
    uts_root(&t3, &root);
    ck_assert_mem_eq(root.id, want42, 20);
}
END_TEST

START_TEST(children_by_the_rules)
{
    struct uts_params t1 = tree("T1"), t3 = tree("T3");
    struct uts_node root, n;
    uts_root(&t1, &root);
    /* T1's root: r = 0x5a85f86b, u = 0.70721..., p = 1/5: floor(ln(1 - u) / ln 0.8) = 5. */
    ck_assert_int_eq(uts_num_children(&t1, &root), 5);
    /* FIXED: nothing at gen_mx, whatever the id. */
    n = root;
    n.height = t1.gen_mx;
    ck_assert_int_eq(uts_num_children(&t1, &n), 0);
    /* A binomial root has floor(b0) children, past the cap; below it, m or none by u < q. */
    uts_root(&t3, &root);
    ck_assert_int_eq(uts_num_children(&t3, &root), 2000);
    memset(n.id, 0, sizeof n.id);
    n.height = 1;
    ck_assert_int_eq(uts_num_children(&t3, &n), 8); /* u = 0 */
    memset(n.id, 0xff, sizeof n.id);
    ck_assert_int_eq(uts_num_children(&t3, &n), 0); /* u ~ 1 */
    /* A geometric draw near 1 with a large b0 reaches the cap, never beyond. */
    struct uts_params wide = t1;
    wide.b0 = 1e6;
    ck_assert_int_eq(uts_num_children(&wide, &n), UTS_MAX_CHILDREN);
    /* LINEAR past gen_mx (a NaN inside) is a leaf, as in the reference. */
    struct uts_params lin = tree("T5");
    n.height = lin.gen_mx + 3;
    ck_assert_int_eq(uts_num_children(&lin, &n), 0);
}
END_TEST

START_TEST(stack_matches_recursion)
{
    /* S3 is 67 deep: past the 64 frames the search keeps on the C stack, so it grows onto the
     * heap. T2 cut short tries the cyclic shape. */
    for (const char *const *s = (const char *const[]){"S1", "S3", "T2", NULL}; *s; s++) {
        struct uts_params p = tree(*s);
        if (strcmp(*s, "T2") == 0)
            p.gen_mx = 8; /* a cyclic tree cut short: ~30 k nodes */
        struct uts_count dfs, rec = {0, 0, 0};
        uts_count_serial(&p, &dfs);
        struct uts_node root;
        uts_root(&p, &root);
        count_recursive(&p, &root, &rec);
        ck_assert_uint_eq(dfs.nodes, rec.nodes);
        ck_assert_uint_eq(dfs.leaves, rec.leaves);
        ck_assert_int_eq(dfs.depth, rec.depth);
        if (p.gen_mx == tree(*s).gen_mx) {
            ck_assert_uint_eq(dfs.nodes, p.expect_nodes);
            ck_assert_uint_eq(dfs.leaves, p.expect_leaves);
            ck_assert_int_eq(dfs.depth, p.expect_depth);
        }
    }
}
END_TEST

START_TEST(subtrees_add_up)
{
    /* The root plus the subtrees under its children, counted one by one, make the tree. */
    struct uts_params p = tree("S3");
    struct uts_node root, child;
    uts_root(&p, &root);
    struct uts_count parts = {1, 0, 0};
    int k = uts_num_children(&p, &root);
    for (int i = 0; i < k; i++) {
        uts_child(&p, &root, i, &child);
        ck_assert_int_eq(uts_count_subtree(&p, &child, &parts), 0);
    }
    ck_assert_uint_eq(parts.nodes, p.expect_nodes);
    ck_assert_uint_eq(parts.leaves, p.expect_leaves);
    ck_assert_int_eq(parts.depth, p.expect_depth);
}
END_TEST

struct thread_count {
    const char *tree;
    int init;
    struct uts_count c;
};

static void *count_thread(void *arg)
{
    struct thread_count *t = arg;
    struct uts_params p;
    uts_params_by_name(t->tree, &p);
    if (t->init)
        uts_init();
    uts_count_serial(&p, &t->c);
    return NULL;
}

START_TEST(threads_at_once)
{
    /* Each thread hashes with a context of its own, made on its first hash (with or without
     * uts_init) and freed when it exits: the counts agree and nothing leaks (ASan). */
    enum { N = 4 };
    struct thread_count t[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        t[i] = (struct thread_count){.tree = i % 2 ? "S1" : "S3", .init = i / 2};
        ck_assert_int_eq(pthread_create(&th[i], NULL, count_thread, &t[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        struct uts_params p = tree(t[i].tree);
        ck_assert_uint_eq(t[i].c.nodes, p.expect_nodes);
        ck_assert_uint_eq(t[i].c.leaves, p.expect_leaves);
        ck_assert_int_eq(t[i].c.depth, p.expect_depth);
    }
}
END_TEST

START_TEST(no_allocation_per_node)
{
    if (!crypto_counted)
        return; /* libcrypto allocated before main: cannot count */
    struct uts_params p = tree("S1");
    struct uts_node root, child;
    ck_assert_int_eq(uts_init(), 0);
    uts_root(&p, &root);
    unsigned long before = atomic_load_explicit(&crypto_allocs, memory_order_relaxed);
    for (int i = 0; i < 10000; i++)
        uts_child(&p, &root, i, &child);
    struct uts_count c;
    uts_count_serial(&p, &c);
    unsigned long after = atomic_load_explicit(&crypto_allocs, memory_order_relaxed);
    ck_assert_uint_eq(after - before, 0);
    ck_assert_uint_eq(c.nodes, p.expect_nodes);
}
END_TEST

START_TEST(result_line)
{
    struct uts_count c = {4130071, 3305118, 10};
    char buf[128];
    int n = uts_format_result(buf, sizeof buf, &c, 123456789, 4, 2);
    ck_assert_str_eq(buf, "nodes=4130071 leaves=3305118 depth=10 time_ns=123456789 ranks=4 "
                          "threads=2");
    ck_assert_int_eq(n, (int)strlen(buf));
    /* Truncated, never overrun. */
    char small[8];
    memset(small, 'x', sizeof small);
    ck_assert_int_eq(uts_format_result(small, sizeof small, &c, 123456789, 4, 2), n);
    ck_assert_str_eq(small, "nodes=4");
}
END_TEST

static Suite *uts_suite(void)
{
    Suite *s = suite_create("uts");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, names_resolve);
    tcase_add_test(tc, names_refused);
    tcase_add_test(tc, params_checked);
    tcase_add_test(tc, ids_match_sha1);
    tcase_add_test(tc, children_by_the_rules);
    tcase_add_test(tc, stack_matches_recursion);
    tcase_add_test(tc, subtrees_add_up);
    tcase_add_test(tc, threads_at_once);
    tcase_add_test(tc, no_allocation_per_node);
    tcase_add_test(tc, result_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    crypto_counted = CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free);
    SRunner *sr = srunner_create(uts_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
