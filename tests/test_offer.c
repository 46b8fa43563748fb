/* SPDX-License-Identifier: MIT */
/*
 * Inline fork-join: weft_frame, weft_offer, weft_reclaim.
 *
 *  - fib and n-ary recursion with an offer per call give the serial answers on pools of 1, 2
 *    and 4 workers and outside any pool; every offered function runs exactly once, either by a
 *    thief (weft_reclaim false) or by the caller after weft_reclaim returned true.
 *  - A stolen frame: weft_reclaim returns false only after fn(arg) has returned, with its effects
 *    visible; while it waits, nothing it offered later is lost.
 *  - Offers beyond the deque's capacity stay private and are reclaimed with true.
 *  - Inside fn, weft_cancel_requested() answers for the task that offered.
 *  - Offers allocate nothing (the join suite's allocation check covers the frames' path).
 *  - Offers nested 20,000 deep (far beyond the deque's capacity: the deeper ones stay private).
 *  - Offers mixed with weft_join, scopes, parallel_for, submitted tasks and promises waited for
 *    inside offered work: every leaf runs exactly once, on pools of 1..8 workers.
 *  - A task that offers and then waits for what only its offered work does makes progress: the
 *    wait shares the private frames (on one worker, a spare thread runs them).
 * Sizes scale with $WEFT_STRESS_SCALE.
 */
#include "joinutil.h"

#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * fib, every call offered
 */

typedef struct pfib {
    int n;
    long r;
} pfib;

static int marker_unused;

static atomic_long stolen_runs;  /* frames run by a thief */
static atomic_long inline_runs;  /* frames run by their caller after a true reclaim */
static atomic_long thief_misses; /* reclaim said false but fn had not run */

static void pfib_fn(void *p);

static void pfib_stolen(void *p)
{
    atomic_fetch_add(&stolen_runs, 1);
    pfib_fn(p);
}

static void pfib_fn(void *p)
{
    pfib *x = p;
    if (x->n < 2) {
        x->r = x->n;
        return;
    }
    pfib a = {x->n - 1, -1}, b = {x->n - 2, -1};
    weft_frame fr;
    weft_offer(&fr, pfib_stolen, &b);
    pfib_fn(&a);
    if (weft_reclaim(&fr)) {
        atomic_fetch_add(&inline_runs, 1);
        pfib_fn(&b);
    } else if (b.r < 0) {
        atomic_fetch_add(&thief_misses, 1);
    }
    x->r = a.r + b.r;
}

static long fib_serial(int n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* Offers made by fib(n): one per call with n >= 2. */
static long fib_offers(int n)
{
    return n < 2 ? 0 : 1 + fib_offers(n - 1) + fib_offers(n - 2);
}

static void pfib_root(void *arg)
{
    pfib_fn(arg);
}

START_TEST(test_offer_fib_every_pool_size)
{
    int n = 22 + (tu_stress_scale() > 1 ? 2 : 0);
    long want = fib_serial(n), offers = fib_offers(n);
    unsigned sizes[] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        atomic_store(&stolen_runs, 0);
        atomic_store(&inline_runs, 0);
        atomic_store(&thief_misses, 0);
        weft_pool *p = jt_pool_new(sizes[k]);
        pfib x = {n, -1};
        jt_run(p, pfib_root, &x);
        ck_assert_int_eq(x.r, want);
        /* every offer ran once: by a thief or by its caller */
        ck_assert_int_eq(atomic_load(&stolen_runs) + atomic_load(&inline_runs), offers);
        ck_assert_int_eq(atomic_load(&thief_misses), 0);
        if (sizes[k] == 1)
            ck_assert_int_eq(atomic_load(&stolen_runs), 0);
        tu_pool_free(p);
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_offer_outside_pool)
{
    atomic_store(&stolen_runs, 0);
    atomic_store(&inline_runs, 0);
    pfib x = {18, -1};
    pfib_fn(&x); /* the test thread is no worker: offers only record */
    ck_assert_int_eq(x.r, fib_serial(18));
    ck_assert_int_eq(atomic_load(&stolen_runs), 0);
    ck_assert_int_eq(atomic_load(&inline_runs), fib_offers(18));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A frame that is surely stolen: the offering task keeps its worker busy until another worker
 * has started the frame.
 */

typedef struct steal_ctx {
    atomic_int started; /* fn began, on a thief */
    atomic_int thief;   /* the worker index fn ran on, + 1 */
    long payload;       /* written by fn, read by the offerer after reclaim */
    bool reclaimed;     /* what weft_reclaim answered */
    int offerer;
} steal_ctx;

static void steal_fn(void *arg)
{
    steal_ctx *c = arg;
    atomic_store(&c->thief, weft_worker_index() + 1);
    atomic_store(&c->started, 1);
    tu_sleep_ms(20);     /* the offerer reaches weft_reclaim while this runs */
    c->payload = 424242; /* plain write: reclaim's false answer must make it visible */
}

static void steal_root(void *arg)
{
    steal_ctx *c = arg;
    c->offerer = weft_worker_index();
    weft_frame fr;
    weft_offer(&fr, steal_fn, c);
    TU_EXPECT(jt_spin_until(&c->started, TU_PATIENCE_S)); /* only a thief can start it */
    c->reclaimed = weft_reclaim(&fr);
    if (!c->reclaimed)
        TU_EXPECT(c->payload == 424242);
}

START_TEST(test_offer_stolen_frame_reclaims_false)
{
    weft_pool *p = jt_pool_new(2);
    for (int round = 0; round < 5; round++) {
        steal_ctx c = {.payload = 0};
        atomic_init(&c.started, 0);
        atomic_init(&c.thief, 0);
        jt_run(p, steal_root, &c);
        ck_assert(!c.reclaimed);
        ck_assert_int_eq(c.payload, 424242);
        ck_assert_int_ne(atomic_load(&c.thief) - 1, c.offerer);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Many frames at once, reclaimed in reverse order; more than a deque holds
 */

enum { MANY = 3000 };

typedef struct many_ctx {
    atomic_int runs[MANY];
    weft_frame frames[MANY];
    long true_answers;
} many_ctx;

typedef struct many_arg {
    many_ctx *c;
    int i;
} many_arg;

static many_arg many_args[MANY];

static void many_fn(void *arg)
{
    many_arg *a = arg;
    jt_work((uint64_t)a->i, 200);
    atomic_fetch_add(&a->c->runs[a->i], 1);
}

static void many_root(void *arg)
{
    many_ctx *c = arg;
    for (int i = 0; i < MANY; i++) {
        many_args[i] = (many_arg){c, i};
        weft_offer(&c->frames[i], many_fn, &many_args[i]);
    }
    for (int i = MANY - 1; i >= 0; i--) {
        if (weft_reclaim(&c->frames[i])) {
            c->true_answers++;
            many_fn(&many_args[i]);
        }
    }
}

START_TEST(test_offer_many_frames_each_once)
{
    static many_ctx c;
    unsigned sizes[] = {1, 2, 4};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        for (int i = 0; i < MANY; i++)
            atomic_init(&c.runs[i], 0);
        c.true_answers = 0;
        weft_pool *p = jt_pool_new(sizes[k]);
        jt_run(p, many_root, &c);
        for (int i = 0; i < MANY; i++)
            ck_assert_msg(atomic_load(&c.runs[i]) == 1, "frame %d ran %d times", i,
                          atomic_load(&c.runs[i]));
        if (sizes[k] == 1) /* nobody to steal: every frame, pushed or private, comes back */
            ck_assert_int_eq(c.true_answers, MANY);
        tu_pool_free(p);
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * weft_cancel_requested() inside fn answers for the offering task
 */

typedef struct cancel_ctx {
    atomic_int in_task; /* the offering task is running */
    atomic_int go;      /* the test thread has requested the cancel */
    atomic_int seen;    /* fn saw the request, +1 */
    atomic_int stolen;  /* fn ran on a thief */
    int offerer;
} cancel_ctx;

static void cancel_fn(void *arg)
{
    cancel_ctx *c = arg;
    if (weft_worker_index() != c->offerer)
        atomic_store(&c->stolen, 1);
    atomic_store(&c->seen, weft_cancel_requested() ? 2 : 1);
}

static int cancel_task(void *arg, void **result)
{
    (void)result;
    cancel_ctx *c = arg;
    c->offerer = weft_worker_index();
    atomic_store(&c->in_task, 1);
    TU_EXPECT(jt_spin_until(&c->go, TU_PATIENCE_S));
    weft_frame fr;
    weft_offer(&fr, cancel_fn, c);
    if (weft_reclaim(&fr))
        cancel_fn(c);
    return weft_cancel_requested() ? -ECANCELED : 0;
}

START_TEST(test_offer_cancel_requested_answers_for_the_offerer)
{
    weft_pool *p = jt_pool_new(2);
    for (int round = 0; round < 20; round++) {
        cancel_ctx c;
        atomic_init(&c.in_task, 0);
        atomic_init(&c.go, 0);
        atomic_init(&c.seen, 0);
        atomic_init(&c.stolen, 0);
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, cancel_task, &c, &f), 0);
        ck_assert(jt_spin_until(&c.in_task, TU_PATIENCE_S));
        ck_assert_int_eq(weft_future_cancel(f), 0); /* running: a request */
        atomic_store(&c.go, 1);
        ck_assert_int_eq(weft_future_result(f, NULL), -ECANCELED);
        ck_assert_int_eq(atomic_load(&c.seen), 2);
        weft_future_release(f);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Offers nested 20,000 deep
 */

enum { DEEP = 20000 };

typedef struct deep_arg {
    int depth;
    long *count; /* leaves seen, +1 per offered function that ran */
} deep_arg;

static void deep_fn(void *p);

static void deep_leaf(void *p)
{
    deep_arg *a = p;
    __atomic_fetch_add(a->count, 1, __ATOMIC_RELAXED); /* a thief may run it */
}

/* Offers a leaf, then goes one level deeper before reclaiming it: DEEP frames outstanding. */
static void deep_fn(void *p)
{
    deep_arg *a = p;
    if (a->depth == 0)
        return;
    weft_frame fr;
    deep_arg leaf = {0, a->count};
    weft_offer(&fr, deep_leaf, &leaf);
    deep_arg next = {a->depth - 1, a->count};
    deep_fn(&next);
    if (weft_reclaim(&fr))
        deep_leaf(&leaf);
}

static int deep_task(void *arg, void **result)
{
    (void)result;
    deep_fn(arg);
    return 0;
}

START_TEST(test_offer_nested_20000_deep)
{
    unsigned sizes[] = {1, 2};
    for (size_t k = 0; k < 2; k++) {
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.threads = sizes[k];
        cfg.stack_size = (size_t)64 << 20; /* 20,000 frames of recursion */
        weft_pool *p = NULL;
        ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
        long count = 0;
        deep_arg a = {DEEP, &count};
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, deep_task, &a, &f), 0);
        ck_assert_int_eq(weft_future_result(f, NULL), 0);
        weft_future_release(f);
        ck_assert_int_eq(__atomic_load_n(&count, __ATOMIC_RELAXED), DEEP);
        tu_pool_free(p);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Offers mixed with the other ways to fork, and with waits inside offered work
 */

typedef struct mix_ctx {
    weft_pool *pool;
    atomic_long leaves; /* leaves run */
    atomic_long extra;  /* runs of anything beyond its first: must stay 0 */
} mix_ctx;

typedef struct mix_arg {
    mix_ctx *c;
    int depth;
    unsigned seed;
    atomic_int ran; /* this node's body ran, 0 or 1 */
} mix_arg;

static void mix_node(void *p);

/* Offered by a node: runs its child, then completes the promise the node waits for. */
static void mix_then_set(void *p)
{
    struct {
        mix_arg *kid;
        weft_future *pr;
    } *x = p;
    mix_node(x->kid);
    TU_EXPECT(weft_future_set_result(x->pr, NULL) == 0);
}

static void mix_once(mix_arg *a)
{
    if (atomic_fetch_add(&a->ran, 1) != 0)
        atomic_fetch_add(&a->c->extra, 1);
}

static int mix_task(void *arg, void **result)
{
    (void)result;
    mix_node(arg);
    return 0;
}

typedef struct mix_loop {
    mix_arg *kids;
} mix_loop;

static void mix_body(size_t lo, size_t hi, void *ctx)
{
    mix_loop *l = ctx;
    for (size_t i = lo; i < hi; i++)
        mix_node(&l->kids[i]);
}

/* A node forks its children one way, chosen by its seed: an offer, weft_join, a scope, a
 * parallel_for, a submitted task waited for, or a promise completed by offered work and waited
 * for before the reclaim. Leaves count. */
static void mix_node(void *p)
{
    mix_arg *a = p;
    mix_once(a);
    mix_ctx *c = a->c;
    if (a->depth == 0) {
        jt_work(a->seed, 50);
        atomic_fetch_add(&c->leaves, 1);
        return;
    }
    unsigned s = a->seed * 1103515245u + 12345u;
    mix_arg kid[3];
    for (int i = 0; i < 3; i++) {
        kid[i].c = c;
        kid[i].depth = a->depth - 1;
        kid[i].seed = s + (unsigned)i * 7919u;
        atomic_init(&kid[i].ran, 0);
    }
    switch ((s >> 16) % 6) {
    case 0: { /* offers, reclaimed in reverse order */
        weft_frame fr[2];
        weft_offer(&fr[0], mix_node, &kid[0]);
        weft_offer(&fr[1], mix_node, &kid[1]);
        mix_node(&kid[2]);
        if (weft_reclaim(&fr[1]))
            mix_node(&kid[1]);
        if (weft_reclaim(&fr[0]))
            mix_node(&kid[0]);
        break;
    }
    case 1: { /* an offer around a weft_join */
        weft_frame fr;
        weft_offer(&fr, mix_node, &kid[0]);
        weft_join(mix_node, &kid[1], mix_node, &kid[2]);
        if (weft_reclaim(&fr))
            mix_node(&kid[0]);
        break;
    }
    case 2: { /* an offer around a scope */
        weft_frame fr;
        weft_offer(&fr, mix_node, &kid[0]);
        weft_scope sc;
        weft_spawn slot[2];
        weft_scope_init(&sc);
        weft_scope_spawn(&sc, &slot[0], mix_node, &kid[1]);
        weft_scope_spawn(&sc, &slot[1], mix_node, &kid[2]);
        weft_scope_wait(&sc);
        if (weft_reclaim(&fr))
            mix_node(&kid[0]);
        break;
    }
    case 3: { /* an offer around a parallel_for */
        weft_frame fr;
        weft_offer(&fr, mix_node, &kid[0]);
        mix_loop l = {&kid[1]};
        TU_EXPECT(weft_parallel_for(NULL, 0, 2, 1, mix_body, &l) == 0);
        if (weft_reclaim(&fr))
            mix_node(&kid[0]);
        break;
    }
    case 4: { /* an offer around a submitted task, waited for */
        weft_frame fr;
        weft_offer(&fr, mix_node, &kid[0]);
        weft_future *f = NULL;
        TU_EXPECT(weft_submit(c->pool, mix_task, &kid[1], &f) == 0);
        mix_node(&kid[2]);
        TU_EXPECT(f != NULL && weft_future_result(f, NULL) == 0);
        weft_future_release(f);
        if (weft_reclaim(&fr))
            mix_node(&kid[0]);
        break;
    }
    default: { /* the offered work completes a promise the offerer waits for before reclaiming */
        weft_future *pr = NULL;
        TU_EXPECT(weft_future_create(&pr) == 0);
        struct {
            mix_arg *kid;
            weft_future *pr;
        } x = {&kid[0], pr};
        weft_frame fr;
        weft_offer(&fr, mix_then_set, &x);
        mix_node(&kid[1]);
        mix_node(&kid[2]);
        TU_EXPECT(weft_future_result(pr, NULL) == 0); /* runs only if the frame can be run */
        if (weft_reclaim(&fr))
            TU_EXPECT(!"reclaimed a frame whose work has already run");
        weft_future_release(pr);
        break;
    }
    }
}

START_TEST(test_offer_mixed_with_every_fork)
{
    int depth = 8 + (tu_stress_scale() > 1 ? 1 : 0);
    long want = 1;
    for (int i = 0; i < depth; i++)
        want *= 3;
    for (unsigned n = 1; n <= 8; n++) {
        static mix_ctx c;
        c.pool = jt_pool_new(n);
        atomic_store(&c.leaves, 0);
        atomic_store(&c.extra, 0);
        for (unsigned round = 0; round < 3; round++) {
            atomic_store(&c.leaves, 0);
            mix_arg root = {&c, depth, 17u * n + round, 0};
            weft_future *f = NULL;
            ck_assert_int_eq(weft_submit(c.pool, mix_task, &root, &f), 0);
            ck_assert_int_eq(weft_future_result(f, NULL), 0);
            weft_future_release(f);
            ck_assert_int_eq(atomic_load(&c.leaves), want);
            ck_assert_int_eq(atomic_load(&c.extra), 0);
        }
        tu_pool_free(c.pool);
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A wait inside the offering task shares its private frames
 */

typedef struct gate_ctx {
    weft_future *pr;
    atomic_int ran;
} gate_ctx;

static void gate_open(void *arg)
{
    gate_ctx *g = arg;
    atomic_fetch_add(&g->ran, 1);
    TU_EXPECT(weft_future_set_result(g->pr, g) == 0);
}

static void gate_noop(void *arg)
{
    atomic_fetch_add(&((gate_ctx *)arg)->ran, 1);
}

static int gate_task(void *arg, void **result)
{
    (void)result;
    gate_ctx *g = arg;
    weft_frame a, b;
    weft_offer(&a, gate_noop, g); /* shared: the shared part was empty */
    weft_offer(&b, gate_open, g); /* private */
    void *v = NULL;
    /* Only gate_open completes it: the wait must let someone run frame b. */
    TU_EXPECT(weft_future_result(g->pr, &v) == 0 && v == g);
    TU_EXPECT(!weft_reclaim(&b)); /* it ran, elsewhere or while waiting */
    if (weft_reclaim(&a))
        gate_noop(g);
    return 0;
}

START_TEST(test_offer_wait_shares_private_frames)
{
    for (unsigned n = 1; n <= 3; n++) {
        weft_pool *p = jt_pool_new(n);
        for (int round = 0; round < 20; round++) {
            gate_ctx g;
            atomic_init(&g.ran, 0);
            ck_assert_int_eq(weft_future_create(&g.pr), 0);
            weft_future *f = NULL;
            ck_assert_int_eq(weft_submit(p, gate_task, &g, &f), 0);
            ck_assert_int_eq(weft_future_result(f, NULL), 0);
            weft_future_release(f);
            ck_assert_int_eq(atomic_load(&g.ran), 2);
            weft_future_release(g.pr);
        }
        tu_pool_free(p);
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * weft_pool_run: the way into a pool for fork-join code
 */

typedef struct run_probe {
    pfib x;
    int index; /* weft_worker_index() inside */
} run_probe;

static int run_pfib(void *arg, void **result)
{
    run_probe *p = arg;
    p->index = weft_worker_index();
    pfib_fn(&p->x);
    *result = &p->x;
    return p->x.r == fib_serial(p->x.n) ? 0 : -EDOM;
}

static int run_fails(void *arg, void **result)
{
    (void)arg;
    *result = &marker_unused;
    return -EPROTO;
}

static int run_nested(void *arg, void **result)
{
    weft_pool *pool = arg;
    int outer = weft_worker_index();
    run_probe p = {{16, -1}, -2};
    int rc = weft_pool_run(pool, run_pfib, &p, result); /* on a worker: called at once */
    return rc == 0 && p.index == outer ? 0 : -EDOM;
}

START_TEST(test_pool_run)
{
    weft_pool *pool = jt_pool_new(2);
    run_probe p = {{22, -1}, -2};
    void *v = NULL;
    ck_assert_int_eq(weft_pool_run(pool, run_pfib, &p, &v), 0);
    ck_assert_ptr_eq(v, &p.x);
    ck_assert_int_ge(p.index, 0); /* ran on a worker: the joins were real */
    ck_assert_int_eq(p.x.r, fib_serial(22));
    v = NULL;
    ck_assert_int_eq(weft_pool_run(pool, run_fails, NULL, &v), -EPROTO); /* fn's own code */
    ck_assert_ptr_null(v);                                               /* untouched */
    ck_assert_int_eq(weft_pool_run(pool, run_nested, pool, NULL), 0);
    ck_assert_int_eq(weft_pool_run(NULL, run_fails, NULL, NULL), -EINVAL);
    ck_assert_int_eq(weft_pool_run(pool, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(weft_pool_shutdown(pool, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert_int_eq(weft_pool_run(pool, run_pfib, &p, NULL), -ESHUTDOWN);
    tu_pool_free(pool);
}
END_TEST

/* Under $WEFT_DEBUG, fork-join outside any pool says once per thread that it runs serially. */
START_TEST(test_outside_pool_is_reported_once)
{
    tu_env_saved e = tu_env_set("WEFT_DEBUG", "1");
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fds[1], STDERR_FILENO), 0);
    pfib x = {12, -1};
    pfib_fn(&x); /* many offers outside any pool */
    pfib_fn(&x);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    size_t len = 0;
    char *text = tu_read_fd(fds[0], &len);
    close(fds[0]);
    tu_env_restore(&e);
    ck_assert_ptr_nonnull(text);
    const char *said = "weft_offer called outside any pool runs serially";
    const char *first = strstr(text, said);
    ck_assert_msg(first != NULL, "stderr: %s", text);
    ck_assert_msg(strstr(first + strlen(said), "called outside any pool") == NULL,
                  "said more than once: %s", text);
    ck_assert_ptr_nonnull(strstr(text, "weft_pool_run"));
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("offer");
    TCase *tc = tcase_create("offer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_offer_fib_every_pool_size);
    tcase_add_test(tc, test_offer_outside_pool);
    tcase_add_test(tc, test_offer_stolen_frame_reclaims_false);
    tcase_add_test(tc, test_offer_many_frames_each_once);
    tcase_add_test(tc, test_offer_cancel_requested_answers_for_the_offerer);
    tcase_add_test(tc, test_offer_nested_20000_deep);
    tcase_add_test(tc, test_offer_mixed_with_every_fork);
    tcase_add_test(tc, test_offer_wait_shares_private_frames);
    tcase_add_test(tc, test_pool_run);
    tcase_add_test(tc, test_outside_pool_is_reported_once);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
