/* SPDX-License-Identifier: MIT */
/*
 * weft_glb_run under mpirun on 1, 2 and 4 ranks, with the pool's WEFT_THREADS workers.
 *
 * The work is counting a deterministic random tree: a node's children follow from a hash of
 * its id, so a serial walk on every rank gives the answer the balanced run must find, whatever
 * the schedule. Variants add random sleeps to the callbacks (processing, and split, which
 * delays steal replies) to shake the termination detection, and run a tree nobody seeds.
 *
 * With an argument the program is not a suite but a failure scenario (run_mpi.sh
 * --expect-fail): "fail" makes one rank's callback fail and then aborts the job as a program
 * should, printing why; "fail-return" checks that every rank returns an error (no rank hangs),
 * the failing rank its callback's code, the others -ECANCELED.
 */
#include "mpiutil.h"

#include <sys/resource.h>

/* --- the tree --- */

struct node {
    uint64_t id;
    uint32_t depth;
    uint32_t pad;
};

struct tree {
    unsigned root_children; /* the root's fan-out */
    unsigned m;             /* an inner node's children */
    unsigned q_permille;    /* the chance, in 1/1000, that a node is inner */
    unsigned max_depth;
};

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static unsigned num_children(const struct tree *t, const struct node *n)
{
    if (n->depth == 0)
        return t->root_children;
    if (n->depth >= t->max_depth)
        return 0;
    return mix(n->id) % 1000 < t->q_permille ? t->m : 0;
}

static struct node child(const struct node *n, unsigned i)
{
    return (struct node){.id = mix(n->id * 31 + i + 1), .depth = n->depth + 1};
}

struct count {
    uint64_t nodes, leaves, depth;
};

static struct count serial_count(const struct tree *t)
{
    struct count c = {0, 0, 0};
    size_t cap = 1024, len = 1;
    struct node *stack = malloc(cap * sizeof *stack);
    stack[0] = (struct node){.id = 1, .depth = 0};
    while (len > 0) {
        struct node n = stack[--len];
        unsigned k = num_children(t, &n);
        c.nodes++;
        if (k == 0)
            c.leaves++;
        if (n.depth > c.depth)
            c.depth = n.depth;
        if (len + k > cap) {
            cap = 2 * (len + k);
            stack = realloc(stack, cap * sizeof *stack);
        }
        for (unsigned i = 0; i < k; i++)
            stack[len++] = child(&n, i);
    }
    free(stack);
    return c;
}

/* --- the bag: a stack of nodes --- */

struct bag {
    struct node *v;
    size_t len, cap;
};

struct ctx {
    struct tree tree;
    int seed_ranks;               /* how many ranks seed a root: 0 none, 1 rank 0, -1 all */
    int64_t process_sleep_max_ns; /* random sleeps in process */
    int64_t split_sleep_max_ns;   /* and in split (delays steal replies) and merge */
    bool never_share;             /* split gives nothing */
    int64_t process_min_ns;       /* each process call lasts at least this (sleeping) */
    int fail_rank;                /* the rank whose process fails, or -1 */
    long fail_after;              /* after this many calls there */
    atomic_long calls;
    int rank;
};

static void random_sleep(int64_t max_ns, uint64_t salt)
{
    if (max_ns <= 0)
        return;
    uint64_t r = mix(salt ^ (uint64_t)tu_now_ns());
    if (r % 4 == 0) /* one call in four */
        tu_sleep_ns((int64_t)(r % (uint64_t)max_ns));
}

static int bag_create(void *ctx, void **out)
{
    (void)ctx;
    struct bag *b = calloc(1, sizeof *b);
    if (b == NULL)
        return -ENOMEM;
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

static int bag_push(struct bag *b, const struct node *n, size_t k)
{
    if (b->len + k > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + k)
            cap *= 2;
        struct node *v = realloc(b->v, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    memcpy(b->v + b->len, n, k * sizeof *n);
    b->len += k;
    return 0;
}

static int seed(void *bag, int rank, int nranks, void *ctxp)
{
    (void)nranks;
    struct ctx *x = ctxp;
    if (x->seed_ranks == 0 || (x->seed_ranks == 1 && rank != 0))
        return 0;
    struct node root = {.id = 1, .depth = 0};
    return bag_push(bag, &root, 1);
}

static int process(void *bag, size_t n, void *result, void *ctxp)
{
    struct ctx *x = ctxp;
    struct bag *b = bag;
    struct count *c = result;
    int64_t t0 = x->process_min_ns ? tu_now_ns() : 0;
    if (x->fail_rank == x->rank && atomic_fetch_add(&x->calls, 1) >= x->fail_after)
        return -EIO;
    random_sleep(x->process_sleep_max_ns, (uint64_t)(uintptr_t)b + b->len);
    for (size_t i = 0; i < n && b->len > 0; i++) {
        struct node nd = b->v[--b->len];
        unsigned k = num_children(&x->tree, &nd);
        c->nodes++;
        if (k == 0)
            c->leaves++;
        if (nd.depth > c->depth)
            c->depth = nd.depth;
        for (unsigned j = 0; j < k; j++) {
            struct node ch = child(&nd, j);
            int rc = bag_push(b, &ch, 1);
            if (rc != 0)
                return rc;
        }
    }
    if (x->process_min_ns) {
        int64_t left = x->process_min_ns - (tu_now_ns() - t0);
        if (left > 0)
            tu_sleep_ns(left);
    }
    return b->len > 0 ? 1 : 0;
}

/* Gives the bottom half (the oldest nodes, nearest the root: the biggest subtrees). */
static int split(void *bag, void *buf, size_t cap, size_t *len, void *ctxp)
{
    struct ctx *x = ctxp;
    struct bag *b = bag;
    random_sleep(x->split_sleep_max_ns, (uint64_t)(uintptr_t)buf);
    *len = 0;
    if (x->never_share || b->len < 2)
        return 0;
    size_t k = b->len / 2;
    if (k > cap / sizeof(struct node))
        k = cap / sizeof(struct node);
    memcpy(buf, b->v, k * sizeof(struct node));
    memmove(b->v, b->v + k, (b->len - k) * sizeof(struct node));
    b->len -= k;
    *len = k * sizeof(struct node);
    return 0;
}

static int merge(void *bag, const void *buf, size_t len, void *ctxp)
{
    struct ctx *x = ctxp;
    random_sleep(x->split_sleep_max_ns, (uint64_t)len);
    return bag_push(bag, buf, len / sizeof(struct node));
}

static void combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    struct count *a = acc;
    const struct count *o = other;
    a->nodes += o->nodes;
    a->leaves += o->leaves;
    if (o->depth > a->depth)
        a->depth = o->depth;
}

static const struct count zero_count = {0, 0, 0};

static weft_glb_ops tree_ops(void)
{
    return (weft_glb_ops){.bag_create = bag_create,
                          .bag_destroy = bag_destroy,
                          .seed = seed,
                          .process = process,
                          .split = split,
                          .merge = merge,
                          .combine = combine,
                          .result_size = sizeof(struct count),
                          .identity = &zero_count};
}

static struct ctx base_ctx(void)
{
    struct ctx x;
    memset(&x, 0, sizeof x);
    x.tree = (struct tree){.root_children = 2000, .m = 4, .q_permille = 230, .max_depth = 60};
    x.seed_ranks = 1;
    x.fail_rank = -1;
    x.rank = mu_rank();
    atomic_init(&x.calls, 0);
    return x;
}

/* Runs the tree on pool and checks the count against the serial walk and the message counts
 * across ranks. */
static void run_and_check(weft_pool *pool, struct ctx *x, const weft_glb_config *cfg, int roots)
{
    weft_glb_ops ops = tree_ops();
    struct count got = {7, 7, 7};
    weft_glb_stats st;
    int rc = weft_glb_run(pool, MPI_COMM_WORLD, &ops, cfg, x, &got, &st);
    ck_assert_msg(rc == 0, "weft_glb_run: %s", weft_strerror(rc));
    struct count want = serial_count(&x->tree);
    ck_assert_uint_eq(got.nodes, want.nodes * (uint64_t)roots);
    ck_assert_uint_eq(got.leaves, want.leaves * (uint64_t)roots);
    ck_assert_uint_eq(got.depth, roots > 0 ? want.depth : 0);
    /* Every work message sent was received, and steal answers never exceed requests. */
    uint64_t mine[2] = {st.work_sent, st.work_received}, sum[2];
    MPI_Allreduce(mine, sum, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    ck_assert_uint_eq(sum[0], sum[1]);
    ck_assert_uint_le(st.steals_won, st.steals_sent);
    ck_assert_int_gt(st.time_ns, 0);
    if (getenv("TEST_GLB_VERBOSE") != NULL)
        printf("rank %d: %.2f ms, local %llu, steals %llu won %llu, lifelines %llu pushes %llu, "
               "work sent %llu received %llu, tokens %llu\n",
               mu_rank(), (double)st.time_ns / 1e6, (unsigned long long)st.local_steals,
               (unsigned long long)st.steals_sent, (unsigned long long)st.steals_won,
               (unsigned long long)st.lifelines_sent, (unsigned long long)st.lifeline_pushes,
               (unsigned long long)st.work_sent, (unsigned long long)st.work_received,
               (unsigned long long)st.tokens);
}

START_TEST(test_glb_counts_the_tree)
{
    struct ctx x = base_ctx();
    weft_pool *pool = mu_pool_env();
    run_and_check(pool, &x, NULL, 1);
    /* Again on the same pool with a tiny chunk and a small steal cap: many more steals. */
    weft_glb_config cfg;
    weft_glb_config_init(&cfg);
    cfg.chunk = 4;
    cfg.max_steal_bytes = 10 * sizeof(struct node);
    cfg.steal_tries = 2;
    run_and_check(pool, &x, &cfg, 1);
    tu_pool_free(pool);

    pool = tu_pool_new(1, NULL);
    run_and_check(pool, &x, NULL, 1);
    tu_pool_free(pool);
}
END_TEST

START_TEST(test_glb_every_rank_seeds)
{
    struct ctx x = base_ctx();
    x.seed_ranks = -1;
    weft_pool *pool = mu_pool_env();
    run_and_check(pool, &x, NULL, mu_size());
    tu_pool_free(pool);
}
END_TEST

START_TEST(test_glb_no_work_at_all)
{
    struct ctx x = base_ctx();
    x.seed_ranks = 0;
    weft_pool *pool = mu_pool_env();
    run_and_check(pool, &x, NULL, 0);
    tu_pool_free(pool);
}
END_TEST

START_TEST(test_glb_random_delays)
{
    struct ctx x = base_ctx();
    x.tree.root_children = 300;
    x.process_sleep_max_ns = TU_MS(1);
    x.split_sleep_max_ns = TU_MS(2);
    weft_glb_config cfg;
    weft_glb_config_init(&cfg);
    cfg.chunk = 8;
    cfg.max_steal_bytes = 40 * sizeof(struct node);
    weft_pool *pool = mu_pool_env();
    long rounds = 3 * tu_stress_scale();
    for (long i = 0; i < rounds; i++)
        run_and_check(pool, &x, &cfg, 1);
    tu_pool_free(pool);
}
END_TEST

/* Ranks waiting for work or for the end sleep: rank 0 keeps all the work for about a second
 * (split never shares, each process call sleeps), the others have nothing to do. No rank may
 * spin on a core meanwhile. */
START_TEST(test_glb_waiting_ranks_sleep)
{
    struct ctx x = base_ctx();
    x.tree.root_children = 200;
    x.tree.q_permille = 0;
    x.never_share = true;
    x.process_min_ns = TU_MS(5);
    weft_glb_config cfg;
    weft_glb_config_init(&cfg);
    cfg.chunk = 1;
    weft_pool *pool = mu_pool_env();
    MPI_Barrier(MPI_COMM_WORLD);
    int64_t c0 = tu_process_cpu_ns(), t0 = tu_now_ns();
    run_and_check(pool, &x, &cfg, 1);
    int64_t cpu = tu_process_cpu_ns() - c0, wall = tu_now_ns() - t0;
    tu_pool_free(pool);
    printf("rank %d: %.1f ms of CPU over %.1f ms waiting in weft_glb_run\n", mu_rank(),
           (double)cpu / 1e6, (double)wall / 1e6);
    ck_assert_int_ge(wall, TU_MS(900));
    ck_assert_msg(cpu < wall / 4, "rank %d: %lld ns of CPU over %lld ns", mu_rank(), (long long)cpu,
                  (long long)wall);
}
END_TEST

/* Argument checks are local and happen before any communication. */
static int glb_from_worker(void *arg, void **result)
{
    (void)result;
    weft_glb_ops ops = tree_ops();
    struct ctx x = base_ctx();
    struct count got;
    return weft_glb_run(arg, MPI_COMM_WORLD, &ops, NULL, &x, &got, NULL);
}

/* --- a busy owner's bag is split: the hand-over between chunks --- */

/* Worker 0 holds the only work and keeps it: its process consumes nothing until a thief has
 * split its bag (or a minute has passed, which the test reports as a failure). The owner
 * retakes its bag's mutex right after every chunk, so this checks that a waiting thief gets it
 * between chunks rather than finding it taken again, chunk after chunk, for ever. */
struct hold {
    atomic_bool split_seen;
    int64_t deadline_ns;
    atomic_bool starved;
};

struct units {
    uint64_t n;
};

static int hold_bag_create(void *ctx, void **out)
{
    (void)ctx;
    *out = calloc(1, sizeof(struct units));
    return *out != NULL ? 0 : -ENOMEM;
}

static void hold_bag_destroy(void *bag, void *ctx)
{
    (void)ctx;
    free(bag);
}

static int hold_seed(void *bag, int rank, int nranks, void *ctx)
{
    (void)rank;
    (void)nranks;
    (void)ctx;
    ((struct units *)bag)->n = 1000;
    return 0;
}

static int hold_process(void *bag, size_t n, void *result, void *ctx)
{
    struct hold *h = ctx;
    struct units *b = bag;
    if (b->n == 0)
        return 0;
    /* acquire: pairs with the release store in hold_split */
    if (!atomic_load_explicit(&h->split_seen, memory_order_acquire)) {
        if (tu_now_ns() < h->deadline_ns) {
            /* A chunk's worth of work that makes no progress, on the CPU as real work is
             * (a sleep would give a blocked thief time to take the mutex). */
            int64_t until = tu_now_ns() + 20000;
            while (tu_now_ns() < until)
                ;
            return 1;
        }
        atomic_store_explicit(&h->starved, true, memory_order_relaxed); /* read after the run */
    }
    uint64_t k = b->n < n ? b->n : n;
    b->n -= k;
    ((struct units *)result)->n += k;
    return b->n > 0;
}

static int hold_split(void *bag, void *buf, size_t cap, size_t *len, void *ctx)
{
    struct hold *h = ctx;
    struct units *b = bag;
    *len = 0;
    if (b->n < 2 || cap < sizeof(uint64_t))
        return 0;
    uint64_t k = b->n / 2;
    b->n -= k;
    memcpy(buf, &k, sizeof k);
    *len = sizeof k;
    /* release: pairs with the acquire load in hold_process */
    atomic_store_explicit(&h->split_seen, true, memory_order_release);
    return 0;
}

static int hold_merge(void *bag, const void *buf, size_t len, void *ctx)
{
    (void)ctx;
    uint64_t k = 0;
    if (len != sizeof k)
        return -EINVAL;
    memcpy(&k, buf, sizeof k);
    ((struct units *)bag)->n += k;
    return 0;
}

static void hold_combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    ((struct units *)acc)->n += ((const struct units *)other)->n;
}

START_TEST(test_glb_busy_bag_is_split)
{
    struct hold h = {.deadline_ns = tu_now_ns() + TU_MS(60000)};
    atomic_init(&h.split_seen, false);
    atomic_init(&h.starved, false);
    const struct units zero = {0};
    weft_glb_ops ops = {.bag_create = hold_bag_create,
                        .bag_destroy = hold_bag_destroy,
                        .seed = hold_seed,
                        .process = hold_process,
                        .split = hold_split,
                        .merge = hold_merge,
                        .combine = hold_combine,
                        .result_size = sizeof(struct units),
                        .identity = &zero};
    weft_glb_config cfg;
    weft_glb_config_init(&cfg);
    cfg.chunk = 1;
    weft_pool *pool = tu_pool_new(2, NULL);
    struct units got = {0};
    weft_glb_stats st;
    /* Every rank alone: the hand-over is inside a rank. */
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_SELF, &ops, &cfg, &h, &got, &st), 0);
    tu_pool_free(pool);
    ck_assert_uint_eq(got.n, 1000);
    ck_assert(!atomic_load_explicit(&h.starved, memory_order_relaxed));
    ck_assert_uint_ge(st.local_steals, 1);
}
END_TEST

START_TEST(test_glb_bad_input)
{
    struct ctx x = base_ctx();
    weft_glb_ops ops = tree_ops();
    struct count got;
    weft_pool *pool = tu_pool_new(1, NULL);
    ck_assert_int_eq(weft_glb_run(NULL, MPI_COMM_WORLD, &ops, NULL, &x, &got, NULL), -EINVAL);
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_WORLD, NULL, NULL, &x, &got, NULL), -EINVAL);
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_WORLD, &ops, NULL, &x, NULL, NULL), -EINVAL);
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_NULL, &ops, NULL, &x, &got, NULL), -EINVAL);
    weft_glb_ops bad = ops;
    bad.split = NULL;
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_WORLD, &bad, NULL, &x, &got, NULL), -EINVAL);
    bad = ops;
    bad.result_size = 0;
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_WORLD, &bad, NULL, &x, &got, NULL), -EINVAL);
    bad.result_size = WEFT_GLB_MAX_RESULT + 1;
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_WORLD, &bad, NULL, &x, &got, NULL), -EINVAL);
    weft_glb_config cfg;
    weft_glb_config_init(&cfg);
    cfg.poll_max_ns = -1;
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_WORLD, &ops, &cfg, &x, &got, NULL), -EINVAL);

    /* From a worker: refused before anything happens. */
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(pool, glb_from_worker, pool, &f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), -EDEADLK);
    weft_future_release(f);

    /* A shut-down pool, on every rank: every rank says so (collectively). */
    ck_assert_int_eq(weft_pool_shutdown(pool, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert_int_eq(weft_glb_run(pool, MPI_COMM_WORLD, &ops, NULL, &x, &got, NULL), -ESHUTDOWN);
    tu_pool_free(pool);
}
END_TEST

/* --- failure scenarios --- */

static int failure_scenario(bool abort_job)
{
    int rank = mu_rank(), size = mu_size();
    struct ctx x = base_ctx();
    x.fail_rank = size - 1;
    x.fail_after = 20;
    x.tree.root_children = 20000; /* plenty of work: the failure comes mid-run */
    x.seed_ranks = -1;            /* and the failing rank surely has some */
    weft_glb_config cfg;
    weft_glb_config_init(&cfg);
    cfg.chunk = 16;
    weft_pool *pool = NULL;
    int rc = weft_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "rank %d: weft_pool_create: %s\n", rank, weft_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    weft_glb_ops ops = tree_ops();
    struct count got;
    rc = weft_glb_run(pool, MPI_COMM_WORLD, &ops, &cfg, &x, &got, NULL);
    weft_pool_destroy(pool);
    if (rc != 0) {
        fprintf(stderr, "rank %d: weft_glb_run failed: %s (%d)\n", rank, strerror(-rc), rc);
        if (abort_job)
            MPI_Abort(MPI_COMM_WORLD, 3);
    }
    /* Without the abort: every rank must have come back, with the right code. */
    int expected = rank == x.fail_rank ? -EIO : -ECANCELED;
    int ok = rc == expected, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (rank == 0)
        printf("every rank returned: %s\n", all_ok ? "with the expected codes" : "WRONG CODES");
    MPI_Finalize();
    return all_ok ? 4 : 0; /* non-zero either way: the run failed; 0 flags wrong codes */
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    if (argc > 1 && strcmp(argv[1], "fail") == 0)
        return failure_scenario(true);
    if (argc > 1 && strcmp(argv[1], "fail-return") == 0)
        return failure_scenario(false);

    Suite *s = suite_create("glb");
    TCase *tc = tcase_create("glb");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_glb_bad_input);
    tcase_add_test(tc, test_glb_counts_the_tree);
    tcase_add_test(tc, test_glb_every_rank_seeds);
    tcase_add_test(tc, test_glb_no_work_at_all);
    tcase_add_test(tc, test_glb_random_delays);
    tcase_add_test(tc, test_glb_waiting_ranks_sleep);
    tcase_add_test(tc, test_glb_busy_bag_is_split);
    suite_add_tcase(s, tc);
    int failed = mu_run_suite(s);
    MPI_Finalize();
    return failed == 0 ? 0 : 1;
}
