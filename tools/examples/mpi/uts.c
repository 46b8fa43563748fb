/* SPDX-License-Identifier: MIT */
/*
 * The Unbalanced Tree Search trees: see uts.h for the rules a tree follows.
 *
 * The arithmetic that decides a node's number of children is the reference's, operation for
 * operation (the same doubles, libm's log, pow and sin, the same truncations), because the
 * published tree sizes depend on every floor() landing where it landed there.
 */
#include "uts.h"

#include <errno.h>
#include <math.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

_Static_assert(sizeof(struct uts_node) == 24, "uts_node is sent as 24 bytes: no padding");

/* ---------------------------------------------------------------------------------------------
 * The trees
 */

/* The reference's defaults for the parameters a tree does not set, so that a tree's unused
 * fields hold what the reference would have held. */
#define DEFAULT_GEN_MX 6
#define DEFAULT_Q      (15.0 / 64.0)
#define DEFAULT_M      4
#define DEFAULT_SHIFT  0.5

#define GEO_TREE(nm, shp, b, d, r, n, l, dep)                                                      \
    {                                                                                              \
        .name = nm, .type = UTS_GEO, .shape = shp, .b0 = b, .seed = r, .gen_mx = d,                \
        .q = DEFAULT_Q, .m = DEFAULT_M, .shift_depth = DEFAULT_SHIFT, .expect_nodes = n,           \
        .expect_leaves = l, .expect_depth = dep                                                    \
    }
#define BIN_TREE(nm, b, qq, mm, r, n, l, dep)                                                      \
    {                                                                                              \
        .name = nm, .type = UTS_BIN, .shape = UTS_LINEAR, .b0 = b, .seed = r,                      \
        .gen_mx = DEFAULT_GEN_MX, .q = qq, .m = mm, .shift_depth = DEFAULT_SHIFT,                  \
        .expect_nodes = n, .expect_leaves = l, .expect_depth = dep                                 \
    }

/* The published trees: the reference's sample_trees.sh, with the size, leaf count and depth
 * published beside each (0 and -1 where none was). S1 and S3 are ours: their sizes are what
 * uts_count_serial finds, which uts_check.py (Python's hashlib, breadth first) confirms. */
static const struct uts_params trees[] = {
    GEO_TREE("T1", UTS_FIXED, 4.0, 10, 19, 4130071, 3305118, 10),
    GEO_TREE("T2", UTS_CYCLIC, 6.0, 16, 502, 4117769, 2342762, 81),
    BIN_TREE("T3", 2000.0, 0.124875, 8, 42, 4112897, 3599034, 1572),
    {.name = "T4",
     .type = UTS_HYBRID,
     .shape = UTS_LINEAR,
     .b0 = 6.0,
     .seed = 1,
     .gen_mx = 16,
     .q = 0.234375,
     .m = 4,
     .shift_depth = DEFAULT_SHIFT,
     .expect_nodes = 4132453,
     .expect_leaves = 3108986,
     .expect_depth = 134},
    GEO_TREE("T5", UTS_LINEAR, 4.0, 20, 34, 4147582, 2181318, 20),
    GEO_TREE("T1L", UTS_FIXED, 4.0, 13, 29, 102181082, 81746377, 13),
    GEO_TREE("T2L", UTS_CYCLIC, 7.0, 23, 220, 96793510, 53791152, 67),
    BIN_TREE("T3L", 2000.0, 0.200014, 5, 7, 111345631, 89076904, 17844),
    GEO_TREE("T1XL", UTS_FIXED, 4.0, 15, 29, 1635119272, 1308100063, 15),
    GEO_TREE("T1XXL", UTS_FIXED, 4.0, 15, 19, 4230646601, 0, 15),
    BIN_TREE("T3XXL", 2000.0, 0.499995, 2, 316, 2793220501, 0, -1),
    GEO_TREE("S1", UTS_FIXED, 4.0, 6, 19, 16000, 12839, 6),
    BIN_TREE("S3", 20.0, 0.124875, 8, 42, 6213, 5438, 67),
};

int uts_params_by_name(const char *name, struct uts_params *out)
{
    if (name == NULL || out == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++) {
        if (strcasecmp(name, trees[i].name) == 0) {
            *out = trees[i];
            return 0;
        }
    }
    return -EINVAL;
}

const char *uts_tree_name(unsigned i)
{
    return i < sizeof trees / sizeof trees[0] ? trees[i].name : NULL;
}

int uts_params_check(const struct uts_params *p)
{
    if (p == NULL)
        return -EINVAL;
    /* Written as !(in range) so that a NaN fails too. */
    if (!(p->b0 >= 0.0 && p->b0 <= 2147483647.0) || p->seed < 0)
        return -EINVAL;
    switch (p->type) {
    case UTS_BIN:
    case UTS_GEO:
    case UTS_HYBRID:
        break;
    default:
        return -EINVAL;
    }
    if (p->type != UTS_GEO &&
        (!(p->q >= 0.0 && p->q <= 1.0) || p->m < 0 || p->m > UTS_MAX_CHILDREN))
        return -EINVAL;
    if (p->type != UTS_BIN) {
        switch (p->shape) {
        case UTS_LINEAR:
        case UTS_EXPDEC:
        case UTS_CYCLIC:
        case UTS_FIXED:
            break;
        default:
            return -EINVAL;
        }
        if (p->gen_mx < 1)
            return -EINVAL;
    }
    if (p->type == UTS_HYBRID && !(p->shift_depth >= 0.0 && p->shift_depth <= 1e9))
        return -EINVAL;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * SHA-1 through libcrypto
 *
 * The digest is fetched once per process (EVP_MD_fetch is a provider lookup under a lock). A
 * digest context cannot be shared, so each thread has its own, kept in a thread-local for speed
 * and registered under a pthread key whose destructor frees it when the thread exits.
 *
 * How a node is hashed. OpenSSL 3.0's EVP_DigestFinal_ex frees the context's algorithm state
 * and the next EVP_DigestInit_ex2 allocates it again: one malloc and free per node, whatever
 * flags the context has. So, when it can, this file asks the provider that implements the
 * fetched SHA-1 for its digest functions (OSSL_PROVIDER_query_operation, the provider-digest(7)
 * dispatch table) and drives one algorithm context per thread through init, update and final
 * itself: what EVP does, without the free, and about a quarter faster here. When the provider
 * does not list the functions (none known), or with UTS_SHA1_EVP=1 in the environment, it
 * uses EVP, allocating per node.
 */

struct sha1_impl {
    EVP_MD *md; /* holds the provider, and with it the functions below, for the process */
    void *provctx;
    OSSL_FUNC_digest_newctx_fn *newctx;
    OSSL_FUNC_digest_init_fn *init;
    OSSL_FUNC_digest_update_fn *update;
    OSSL_FUNC_digest_final_fn *final;
    OSSL_FUNC_digest_freectx_fn *freectx;
    bool direct; /* all five found: drive the provider directly */
};

/* A thread's hashing context: the provider's algorithm context, or an EVP one. */
struct sha1_ctx {
    void *algctx;
    EVP_MD_CTX *evp;
};

static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;
static struct sha1_impl sha1_impl; /* written once under sha1_once; pthread_once orders it */
static int sha1_error;             /* likewise: 0, -ENOTSUP or -ENOMEM */
static pthread_key_t ctx_key;
static _Thread_local struct sha1_ctx *thread_ctx;

static void free_ctx(void *arg)
{
    struct sha1_ctx *ctx = arg;
    if (ctx->algctx != NULL)
        sha1_impl.freectx(ctx->algctx);
    EVP_MD_CTX_free(ctx->evp);
    free(ctx);
}

/* Whether the ':'-separated name list holds `name`. */
static bool names_hold(const char *names, const char *name)
{
    size_t len = strlen(name);
    for (const char *s = names; s != NULL && *s != '\0';) {
        const char *end = strchr(s, ':');
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        if (n == len && strncasecmp(s, name, len) == 0)
            return true;
        s = end != NULL ? end + 1 : NULL;
    }
    return false;
}

/* Finds the digest functions of the provider behind sha1_impl.md. */
static void find_dispatch(void)
{
    struct sha1_impl *im = &sha1_impl;
    const OSSL_PROVIDER *prov = EVP_MD_get0_provider(im->md);
    int no_cache = 0;
    const OSSL_ALGORITHM *algs =
        prov != NULL ? OSSL_PROVIDER_query_operation(prov, OSSL_OP_DIGEST, &no_cache) : NULL;
    if (algs == NULL)
        return;
    for (const OSSL_ALGORITHM *a = algs; a->algorithm_names != NULL; a++) {
        if (!names_hold(a->algorithm_names, "SHA1"))
            continue;
        for (const OSSL_DISPATCH *d = a->implementation; d->function_id != 0; d++) {
            switch (d->function_id) {
            case OSSL_FUNC_DIGEST_NEWCTX:
                im->newctx = OSSL_FUNC_digest_newctx(d);
                break;
            case OSSL_FUNC_DIGEST_INIT:
                im->init = OSSL_FUNC_digest_init(d);
                break;
            case OSSL_FUNC_DIGEST_UPDATE:
                im->update = OSSL_FUNC_digest_update(d);
                break;
            case OSSL_FUNC_DIGEST_FINAL:
                im->final = OSSL_FUNC_digest_final(d);
                break;
            case OSSL_FUNC_DIGEST_FREECTX:
                im->freectx = OSSL_FUNC_digest_freectx(d);
                break;
            default:
                break;
            }
        }
        break;
    }
    OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_DIGEST, algs);
    im->provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
    im->direct = im->newctx != NULL && im->init != NULL && im->update != NULL &&
                 im->final != NULL && im->freectx != NULL;
}

static void sha1_fetch(void)
{
    if (pthread_key_create(&ctx_key, free_ctx) != 0) {
        sha1_error = -ENOMEM;
        return;
    }
    sha1_impl.md = EVP_MD_fetch(NULL, "SHA1", NULL);
    if (sha1_impl.md == NULL) {
        sha1_error = -ENOTSUP;
        return;
    }
    /* UTS_SHA1_EVP=1 keeps to EVP: to measure the difference, and to test that path. */
    const char *evp = getenv("UTS_SHA1_EVP");
    if (evp == NULL || strcmp(evp, "1") != 0)
        find_dispatch();
}

const char *uts_sha1_path(void)
{
    if (uts_init() != 0)
        return "none";
    return sha1_impl.direct ? "provider" : "evp";
}

int uts_init(void)
{
    pthread_once(&sha1_once, sha1_fetch);
    if (sha1_error != 0)
        return sha1_error;
    if (thread_ctx != NULL)
        return 0;
    struct sha1_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return -ENOMEM;
    if (sha1_impl.direct)
        ctx->algctx = sha1_impl.newctx(sha1_impl.provctx);
    else
        ctx->evp = EVP_MD_CTX_new();
    if ((ctx->algctx == NULL && ctx->evp == NULL) || pthread_setspecific(ctx_key, ctx) != 0) {
        free_ctx(ctx);
        return -ENOMEM;
    }
    thread_ctx = ctx;
    return 0;
}

static void die(const char *what, int err)
{
    /* Only reached when uts_init would have failed: the void interface of the tree functions
     * leaves no other way out, and a wrong id would silently change the tree. */
    fprintf(stderr, "uts: %s: %s\n", what, strerror(-err));
    abort();
}

/* out = SHA-1(in[0..len)). */
static void sha1(const uint8_t *in, size_t len, uint8_t out[20])
{
    if (thread_ctx == NULL) {
        int err = uts_init();
        if (err != 0)
            die("libcrypto SHA-1 unavailable", err);
    }
    struct sha1_ctx *ctx = thread_ctx;
    bool ok;
    if (ctx->algctx != NULL) {
        size_t outlen;
        ok = sha1_impl.init(ctx->algctx, NULL) == 1 &&
             sha1_impl.update(ctx->algctx, in, len) == 1 &&
             sha1_impl.final(ctx->algctx, out, &outlen, 20) == 1 && outlen == 20;
    } else {
        unsigned int outlen;
        ok = EVP_DigestInit_ex2(ctx->evp, sha1_impl.md, NULL) == 1 &&
             EVP_DigestUpdate(ctx->evp, in, len) == 1 &&
             EVP_DigestFinal_ex(ctx->evp, out, &outlen) == 1 && outlen == 20;
    }
    if (!ok)
        die("libcrypto SHA-1 failed", -EIO);
}

static void put_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

void uts_root(const struct uts_params *p, struct uts_node *root)
{
    uint8_t msg[20] = {0};
    put_be32(msg + 16, (uint32_t)p->seed);
    sha1(msg, sizeof msg, root->id);
    root->height = 0;
}

void uts_child(const struct uts_params *p, const struct uts_node *parent, int i,
               struct uts_node *child)
{
    (void)p; /* a child's id depends only on its parent's and its index */
    uint8_t msg[24];
    memcpy(msg, parent->id, 20);
    put_be32(msg + 20, (uint32_t)i);
    int32_t height = parent->height + 1; /* read before writing: parent may be child */
    sha1(msg, sizeof msg, child->id);
    child->height = height;
}

/* ---------------------------------------------------------------------------------------------
 * Number of children
 */

/* The node's uniform draw on [0, 1): the id's last four bytes, big-endian, top bit cleared,
 * over 2^31 (the reference's rng_rand and rng_toProb). */
static double node_prob(const struct uts_node *n)
{
    uint32_t r = (uint32_t)n->id[16] << 24 | (uint32_t)n->id[17] << 16 | (uint32_t)n->id[18] << 8 |
                 (uint32_t)n->id[19];
    return (double)(r & 0x7fffffffu) / 2147483648.0;
}

static int children_bin(const struct uts_params *p, const struct uts_node *n)
{
    return node_prob(n) < p->q ? p->m : 0;
}

static int children_geo(const struct uts_params *p, const struct uts_node *n)
{
    double b = p->b0;
    int depth = n->height;
    if (depth > 0) {
        switch (p->shape) {
        case UTS_EXPDEC:
            b = p->b0 * pow((double)depth, -log(p->b0) / log((double)p->gen_mx));
            break;
        case UTS_CYCLIC:
            if (depth > 5 * p->gen_mx)
                b = 0.0;
            else
                b = pow(p->b0, sin(2.0 * 3.141592653589793 * (double)depth / (double)p->gen_mx));
            break;
        case UTS_FIXED:
            b = depth < p->gen_mx ? p->b0 : 0.0;
            break;
        case UTS_LINEAR:
        default:
            b = p->b0 * (1.0 - (double)depth / (double)p->gen_mx);
            break;
        }
    }
    /* The inverse of the geometric distribution's CDF with mean b: with b = 0, log(1 - p) is
     * -inf and the quotient 0. */
    double prob = 1.0 / (1.0 + b);
    double k = floor(log(1.0 - node_prob(n)) / log(1.0 - prob));
    /* The reference converts to int unguarded; a NaN (a LINEAR shape past gen_mx) became
     * INT_MIN there, a leaf, and a huge value is capped below anyway. */
    if (!(k >= 0.0))
        return 0;
    return k > UTS_MAX_CHILDREN ? UTS_MAX_CHILDREN : (int)k;
}

int uts_num_children(const struct uts_params *p, const struct uts_node *n)
{
    int k;
    switch (p->type) {
    case UTS_BIN:
        if (n->height == 0)
            return (int)floor(p->b0); /* the root: exempt from the cap */
        k = children_bin(p, n);
        break;
    case UTS_HYBRID:
        if ((double)n->height < p->shift_depth * (double)p->gen_mx)
            k = children_geo(p, n);
        else
            k = children_bin(p, n);
        break;
    case UTS_GEO:
    default:
        k = children_geo(p, n);
        break;
    }
    return k > UTS_MAX_CHILDREN ? UTS_MAX_CHILDREN : k;
}

/* ---------------------------------------------------------------------------------------------
 * The serial search
 */

/* A node on the path from the search's start, with the children it still has to give. */
struct frame {
    struct uts_node node;
    int32_t children;
    int32_t next;
};

int uts_count_subtree(const struct uts_params *p, const struct uts_node *n, struct uts_count *acc)
{
    /* One frame per level of the current path: T3L needs 17,845. The first 64 live here, so
     * that the small subtrees a parallel search hands out never touch the heap. */
    struct frame local[64];
    struct frame *stack = local;
    size_t cap = sizeof local / sizeof local[0];
    size_t sp = 0;
    uint64_t nodes = 1, leaves = 0;
    int32_t depth = n->height;
    int err = 0;

    int k = uts_num_children(p, n);
    if (k == 0)
        leaves++;
    else
        stack[sp++] = (struct frame){.node = *n, .children = k, .next = 0};

    while (sp > 0) {
        struct frame *top = &stack[sp - 1];
        if (top->next == top->children) {
            sp--;
            continue;
        }
        struct uts_node child;
        uts_child(p, &top->node, top->next++, &child);
        nodes++;
        if (child.height > depth)
            depth = child.height;
        k = uts_num_children(p, &child);
        if (k == 0) {
            leaves++;
            continue;
        }
        if (sp == cap) {
            size_t ncap = cap * 2;
            struct frame *grown = stack == local ? malloc(ncap * sizeof *grown)
                                                 : realloc(stack, ncap * sizeof *grown);
            if (grown == NULL) {
                err = -ENOMEM;
                break;
            }
            if (stack == local)
                memcpy(grown, local, sizeof local);
            stack = grown;
            cap = ncap;
        }
        stack[sp++] = (struct frame){.node = child, .children = k, .next = 0};
    }

    if (stack != local)
        free(stack);
    acc->nodes += nodes;
    acc->leaves += leaves;
    if (depth > acc->depth)
        acc->depth = depth;
    return err;
}

void uts_count_serial(const struct uts_params *p, struct uts_count *out)
{
    struct uts_count c = {0, 0, 0};
    struct uts_node root;
    if (uts_params_check(p) != 0) {
        *out = c;
        return;
    }
    uts_root(p, &root);
    if (uts_count_subtree(p, &root, &c) != 0)
        c = (struct uts_count){0, 0, 0};
    *out = c;
}

int uts_format_result(char *buf, size_t len, const struct uts_count *c, uint64_t time_ns, int ranks,
                      int threads)
{
    return snprintf(buf, len, "nodes=%llu leaves=%llu depth=%ld time_ns=%llu ranks=%d threads=%d",
                    (unsigned long long)c->nodes, (unsigned long long)c->leaves, (long)c->depth,
                    (unsigned long long)time_ns, ranks, threads);
}
