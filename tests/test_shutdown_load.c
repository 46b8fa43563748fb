/* SPDX-License-Identifier: MIT */
/*
 * Shutdown under load: pools shut down and destroyed while tasks submit, cancel and wait, from
 * inside the pool and from outside.
 *
 * Each round makes a pool, starts outside threads that loop submit / cancel / wait(timeout) /
 * result / gather / weft_wait / as_completed / release on it, and submits tasks that submit
 * children (recursively, from inside) and wait on them every way the API offers. Then the test
 * thread shuts the pool down (DRAIN, CANCEL, DRAIN then CANCEL, or from inside a task) or just
 * destroys it. Outside threads follow the documented safe pattern: they stop using the pool once
 * their submit returns -ESHUTDOWN (or once told to, for a plain destroy), and the test thread joins
 * them before weft_pool_destroy.
 *
 * Every accepted task has a record holding one reference to its future. After destroy:
 *  - every future has resolved (weft_future_done), DONE or CANCELLED (tasks never fail here);
 *  - a DONE task ran exactly once, a CANCELLED one never ran;
 *  - its on_done callback ran exactly once;
 *  - accepted == ran + cancelled; after DRAIN only explicit cancels (weft_future_cancel
 *    returning 1) cancelled anything, and every detached task ran;
 *  - submissions failed only with -ESHUTDOWN, and only after the shutdown began.
 * LeakSanitizer (ASan build) checks that nothing leaks. Sizes scale with $WEFT_STRESS_SCALE.
 */
#include "testutil.h"

#include <sched.h>

/* ---------------------------------------------------------------------------------------------
 * Records and the world of one round
 */

enum kind {
    K_LEAF,
    K_WAIT_EACH, /* children waited one by one: result, wait with timeout, cancel */
    K_GATHER,    /* children gathered (nested gathers at times) */
    K_WAIT_ALL,  /* weft_wait over the children */
    K_COMPLETED, /* as_completed over the children */
    K_DETACHED,  /* detached children (no future) */
    K_LOOP,      /* parallel_for inside: never refused */
    K_SHUTDOWN,  /* calls weft_pool_shutdown itself (the "inside" mode) */
    K_COUNT
};

typedef struct world world;

typedef struct rec {
    struct rec *next; /* the world's list */
    world *w;
    weft_future *f; /* the record's reference */
    enum kind kind;
    int depth;
    uint64_t rng;
    atomic_int runs;
    atomic_int callbacks;
} rec;

typedef enum {
    M_DRAIN,
    M_CANCEL,
    M_DRAIN_THEN_CANCEL,
    M_INSIDE,  /* a task shuts the pool down (CANCEL) */
    M_DESTROY, /* no shutdown call: outside threads stop, then destroy while tasks spawn */
} mode;

struct world {
    weft_pool *pool;
    mode mode;
    int max_depth;
    _Atomic(rec *) recs;
    atomic_long accepted;
    atomic_long cancel_wins; /* weft_future_cancel returned 1 */
    atomic_long det_accepted;
    atomic_long det_ran;
    atomic_long shut_refusals;
    atomic_int shutdown_called; /* set before any shutdown begins */
    atomic_int stop_outside;    /* M_DESTROY: outside threads stop on this */
    atomic_int inside_shutdowns;
};

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void spin_a_little(unsigned n)
{
    static atomic_uint sink;
    unsigned x = n;
    for (unsigned i = 0; i < n; i++)
        x = x * 1103515245u + 12345u;
    atomic_fetch_add_explicit(&sink, x, memory_order_relaxed);
}

static void rec_push(world *w, rec *r)
{
    rec *head = atomic_load_explicit(&w->recs, memory_order_relaxed);
    do {
        r->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&w->recs, &head, r, memory_order_release,
                                                    memory_order_relaxed));
}

static void rec_callback(weft_future *f, void *data)
{
    rec *r = data;
    TU_EXPECT(weft_future_done(f));
    atomic_fetch_add(&r->callbacks, 1);
}

/* A submission refused: only ever -ESHUTDOWN, and only once a shutdown has begun. */
static void refused(world *w, int rc)
{
    TU_EXPECT(rc == -ESHUTDOWN);
    TU_EXPECT(atomic_load(&w->shutdown_called) != 0);
    atomic_fetch_add(&w->shut_refusals, 1);
}

static int task_main(void *arg, void **result);

/* Submits a task of the given kind; on success *out (if not NULL) receives a reference of the
 * caller's own. Returns the submit code. Any thread. */
static int submit_rec(world *w, enum kind kind, int depth, uint64_t seed, weft_future **out)
{
    rec *r = calloc(1, sizeof(*r));
    if (!TU_EXPECT(r != NULL))
        return -ENOMEM;
    r->w = w;
    r->kind = kind;
    r->depth = depth;
    r->rng = seed | 1;
    atomic_init(&r->runs, 0);
    atomic_init(&r->callbacks, 0);
    weft_future *f = NULL;
    int rc = weft_submit(w->pool, task_main, r, &f);
    if (rc != 0) {
        refused(w, rc);
        free(r);
        return rc;
    }
    atomic_fetch_add(&w->accepted, 1);
    r->f = f;
    TU_EXPECT(weft_future_on_done(f, rec_callback, r) == 0);
    if (out != NULL) {
        weft_future_retain(f);
        *out = f;
    }
    rec_push(w, r);
    return 0;
}

static int detached_leaf(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    atomic_fetch_add(&w->det_ran, 1);
    return 0;
}

/* A child's result: DONE (0) or cancelled. */
static void expect_child_result(int rc)
{
    TU_EXPECT(rc == 0 || rc == -ECANCELED);
}

static void cancel_counted(world *w, weft_future *f)
{
    int c = weft_future_cancel(f);
    TU_EXPECT(c == 0 || c == 1);
    if (c == 1)
        atomic_fetch_add(&w->cancel_wins, 1);
}

static enum kind random_kind(world *w, uint64_t *rng, int depth)
{
    if (depth >= w->max_depth)
        return K_LEAF;
    unsigned k = (unsigned)(next_rand(rng) % 12);
    if (k < 5)
        return K_LEAF;
    return (enum kind)(1 + k % (K_SHUTDOWN - 1)); /* K_WAIT_EACH .. K_LOOP */
}

#define MAX_CHILDREN 6

/* Submits up to n children of r; returns how many were accepted, their futures in fs. */
static size_t spawn_children(rec *r, weft_future **fs, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        enum kind kind = random_kind(r->w, &r->rng, r->depth + 1);
        if (submit_rec(r->w, kind, r->depth + 1, next_rand(&r->rng), &fs[k]) == 0)
            k++;
    }
    return k;
}

typedef struct loop_cover {
    atomic_uchar hit[512];
    atomic_int bad;
} loop_cover;

static void cover_body(size_t lo, size_t hi, void *ctx)
{
    loop_cover *c = ctx;
    for (size_t i = lo; i < hi; i++) {
        if (atomic_fetch_add(&c->hit[i], 1) != 0)
            atomic_fetch_add(&c->bad, 1);
    }
}

static int task_main(void *arg, void **result)
{
    rec *r = arg;
    world *w = r->w;
    TU_EXPECT(atomic_fetch_add(&r->runs, 1) == 0);
    *result = r;
    weft_future *fs[MAX_CHILDREN];
    size_t n = 1 + (size_t)(next_rand(&r->rng) % MAX_CHILDREN);
    switch (r->kind) {
    case K_LEAF:
        if (next_rand(&r->rng) % 8 == 0)
            tu_sleep_ns(100000); /* keeps parents waiting across the shutdown at times */
        else
            spin_a_little((unsigned)(next_rand(&r->rng) % 2000));
        break;
    case K_WAIT_EACH: {
        size_t k = spawn_children(r, fs, n);
        for (size_t i = 0; i < k; i++) {
            switch (next_rand(&r->rng) % 4) {
            case 0:
                cancel_counted(w, fs[i]);
                break;
            case 1: {
                int rc = weft_future_wait(fs[i], (int64_t)(next_rand(&r->rng) % 200000));
                TU_EXPECT(rc == 0 || rc == -ETIMEDOUT);
                if (rc == -ETIMEDOUT)
                    cancel_counted(w, fs[i]);
                break;
            }
            default:
                break;
            }
        }
        for (size_t i = 0; i < k; i++) {
            void *v = NULL;
            int rc = weft_future_result(fs[i], &v);
            expect_child_result(rc);
            if (rc == 0)
                TU_EXPECT(v != NULL);
            weft_future_release(fs[i]);
        }
        break;
    }
    case K_GATHER: {
        size_t k = spawn_children(r, fs, n);
        unsigned flags = next_rand(&r->rng) % 2 ? WEFT_RETURN_EXCEPTIONS : 0;
        weft_future *g = NULL;
        TU_EXPECT(weft_gather(fs, k, flags, &g) == 0);
        /* At times a nested gather: the first half again, around the whole. */
        weft_future *outer = NULL;
        if (g != NULL && k >= 2 && next_rand(&r->rng) % 2) {
            weft_future *two[2] = {g, fs[0]};
            TU_EXPECT(weft_gather(two, 2, flags, &outer) == 0);
        }
        for (size_t i = 0; i < k; i++)
            weft_future_release(fs[i]); /* the gathers keep their own references */
        if (outer != NULL) {
            expect_child_result(weft_future_result(outer, NULL));
            weft_future_release(outer);
        }
        if (g != NULL) {
            void *v = NULL;
            int rc = weft_future_result(g, &v);
            expect_child_result(rc);
            if (flags & WEFT_RETURN_EXCEPTIONS) {
                TU_EXPECT(rc == 0);
                for (size_t i = 0; i < k; i++) {
                    int c = weft_gather_child(g, i, NULL);
                    TU_EXPECT(c == 0 || c == -ECANCELED);
                }
            }
            weft_future_release(g);
        }
        break;
    }
    case K_WAIT_ALL: {
        size_t k = spawn_children(r, fs, n);
        if (k > 0) {
            weft_future *out[MAX_CHILDREN];
            size_t ndone = 0;
            int rc = weft_wait(fs, k, WEFT_FIRST_COMPLETED, (int64_t)(next_rand(&r->rng) % 500000),
                               out, &ndone);
            TU_EXPECT(rc == 0 && ndone <= k);
            for (size_t i = ndone; i < k && next_rand(&r->rng) % 2; i++)
                cancel_counted(w, out[i]);
            if (ndone < k) {
                size_t rest = k - ndone, more = 0;
                rc = weft_wait(out + ndone, rest, WEFT_ALL_COMPLETED, WEFT_FOREVER, out + ndone,
                               &more);
                TU_EXPECT(rc == 0 && more == rest);
            }
            for (size_t i = 0; i < k; i++) {
                TU_EXPECT(weft_future_done(fs[i]));
                weft_future_release(fs[i]);
            }
        }
        break;
    }
    case K_COMPLETED: {
        size_t k = spawn_children(r, fs, n);
        weft_completion *c = NULL;
        TU_EXPECT(weft_as_completed(fs, k, &c) == 0);
        for (size_t i = 0; i < k; i++)
            weft_future_release(fs[i]);
        if (c != NULL) {
            size_t got = 0;
            size_t take = (size_t)(next_rand(&r->rng) % (k + 1));
            for (;;) {
                weft_future *f = NULL;
                int rc = weft_completion_next(c, got < take ? WEFT_FOREVER : 0, &f);
                if (rc == -ENOENT || (got >= take && rc == -ETIMEDOUT))
                    break;
                if (!TU_EXPECT(rc == 0))
                    break;
                TU_EXPECT(weft_future_done(f));
                weft_future_release(f);
                got++;
            }
            TU_EXPECT(got <= k);
            weft_completion_destroy(c); /* releases what was not handed out */
        }
        break;
    }
    case K_DETACHED:
        for (size_t i = 0; i < n; i++) {
            int rc = weft_submit(w->pool, detached_leaf, w, NULL);
            if (rc == 0)
                atomic_fetch_add(&w->det_accepted, 1);
            else
                refused(w, rc);
        }
        break;
    case K_LOOP: {
        loop_cover *c = calloc(1, sizeof(*c));
        if (!TU_EXPECT(c != NULL))
            break;
        size_t end = 64 + (size_t)(next_rand(&r->rng) % 448);
        TU_EXPECT(weft_parallel_for(NULL, 0, end, 1 + next_rand(&r->rng) % 8, cover_body, c) == 0);
        for (size_t i = 0; i < end; i++)
            TU_EXPECT(atomic_load(&c->hit[i]) == 1);
        TU_EXPECT(atomic_load(&c->bad) == 0);
        free(c);
        break;
    }
    case K_SHUTDOWN:
        atomic_store(&w->shutdown_called, 1);
        TU_EXPECT(weft_pool_shutdown(w->pool, WEFT_SHUTDOWN_CANCEL) == 0);
        TU_EXPECT(weft_pool_destroy(w->pool) == -EDEADLK); /* never from its own worker */
        atomic_fetch_add(&w->inside_shutdowns, 1);
        break;
    default:
        TU_EXPECT(!"unknown kind");
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Outside threads
 */

#define BATCH 16

typedef struct outside {
    world *w;
    uint64_t rng;
    long iterations;
    long cap; /* past this many iterations, only trickle until told to stop */
} outside;

/* Waits on a batch of futures in one of the many ways, then releases them. */
static void drain_batch(outside *o, weft_future **b, size_t n)
{
    switch (next_rand(&o->rng) % 3) {
    case 0: {
        weft_future *g = NULL;
        unsigned flags = next_rand(&o->rng) % 2 ? WEFT_RETURN_EXCEPTIONS : 0;
        if (TU_EXPECT(weft_gather(b, n, flags, &g) == 0)) {
            int rc = weft_future_result(g, NULL);
            expect_child_result(rc);
            weft_future_release(g);
        }
        break;
    }
    case 1: {
        weft_future *out[BATCH];
        size_t ndone = 0;
        TU_EXPECT(weft_wait(b, n, WEFT_FIRST_EXCEPTION, (int64_t)(next_rand(&o->rng) % 1000000),
                            out, &ndone) == 0);
        TU_EXPECT(weft_wait(b, n, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &ndone) == 0);
        TU_EXPECT(ndone == n);
        break;
    }
    default: {
        weft_completion *c = NULL;
        if (TU_EXPECT(weft_as_completed(b, n, &c) == 0)) {
            size_t got = 0;
            weft_future *f = NULL;
            while (weft_completion_next(c, WEFT_FOREVER, &f) == 0) {
                weft_future_release(f);
                got++;
            }
            TU_EXPECT(got == n);
            weft_completion_destroy(c);
        }
        break;
    }
    }
    for (size_t i = 0; i < n; i++)
        weft_future_release(b[i]);
}

static void *outside_main(void *arg)
{
    outside *o = arg;
    world *w = o->w;
    weft_future *batch[BATCH];
    size_t nb = 0;
    for (;;) {
        if (w->mode == M_DESTROY && atomic_load(&w->stop_outside))
            break;
        bool trickle = o->iterations >= o->cap;
        if (trickle)
            tu_sleep_ms(1);
        o->iterations++;
        enum kind kind = trickle ? K_LEAF : random_kind(w, &o->rng, 0);
        weft_future *f = NULL;
        int rc = submit_rec(w, kind, 0, next_rand(&o->rng), &f);
        if (rc == -ESHUTDOWN)
            break; /* the documented signal: stop using the pool */
        if (rc != 0)
            break;
        switch (next_rand(&o->rng) % 6) {
        case 0:
            cancel_counted(w, f);
            weft_future_release(f);
            break;
        case 1: {
            int wr = weft_future_wait(f, next_rand(&o->rng) % 2 ? 0 : TU_MS(1));
            TU_EXPECT(wr == 0 || wr == -ETIMEDOUT);
            if (wr == -ETIMEDOUT && next_rand(&o->rng) % 2)
                cancel_counted(w, f);
            weft_future_release(f);
            break;
        }
        case 2: {
            void *v = NULL;
            int res = weft_future_result(f, &v);
            expect_child_result(res);
            weft_future_release(f);
            break;
        }
        case 3:
            weft_future_release(f); /* fire and forget */
            break;
        default:
            batch[nb++] = f;
            if (nb == BATCH) {
                drain_batch(o, batch, nb);
                nb = 0;
            }
            break;
        }
    }
    if (w->mode == M_DESTROY) {
        /* Leave at once, so that destroy meets tasks still spawning. */
        for (size_t i = 0; i < nb; i++)
            weft_future_release(batch[i]);
    } else if (nb > 0) {
        drain_batch(o, batch, nb); /* waits only: the pool is not touched */
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * A round
 */

#define OUTSIDE 4

typedef struct round_cfg {
    mode mode;
    unsigned workers;
    int max_depth;
    int delay_ms; /* load before the shutdown */
    uint64_t seed;
} round_cfg;

static const char *mode_name(mode m)
{
    static const char *const names[] = {"DRAIN", "CANCEL", "DRAIN then CANCEL", "inside",
                                        "destroy"};
    return names[m];
}

/* Test thread only. */
static void run_round(const round_cfg *rc)
{
    world *w = calloc(1, sizeof(*w));
    ck_assert_ptr_nonnull(w);
    w->mode = rc->mode;
    w->max_depth = rc->max_depth;
    atomic_init(&w->recs, NULL);
    tu_failures_reset();
    w->pool = tu_pool_new(rc->workers, "shload");

    outside o[OUTSIDE];
    pthread_t th[OUTSIDE];
    for (int i = 0; i < OUTSIDE; i++) {
        o[i] = (outside){.w = w,
                         .rng = (rc->seed + 1) * 0x9e3779b97f4a7c15u + (uint64_t)i * 7919 + 1,
                         .cap = 3000 * tu_stress_scale()};
        ck_assert_int_eq(pthread_create(&th[i], NULL, outside_main, &o[i]), 0);
    }
    /* Load first (the machine may be busy: do not count on the threads starting promptly). */
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (atomic_load(&w->accepted) < 64 && tu_now_ns() < deadline)
        tu_sleep_ms(1);
    tu_sleep_ms(rc->delay_ms);

    switch (rc->mode) {
    case M_DRAIN:
    case M_CANCEL:
        atomic_store(&w->shutdown_called, 1);
        ck_assert_int_eq(weft_pool_shutdown(w->pool, rc->mode == M_DRAIN ? WEFT_SHUTDOWN_DRAIN
                                                                         : WEFT_SHUTDOWN_CANCEL),
                         0);
        break;
    case M_DRAIN_THEN_CANCEL:
        atomic_store(&w->shutdown_called, 1);
        ck_assert_int_eq(weft_pool_shutdown(w->pool, WEFT_SHUTDOWN_DRAIN), 0);
        tu_sleep_ms(rc->delay_ms / 4 + 1);
        ck_assert_int_eq(weft_pool_shutdown(w->pool, WEFT_SHUTDOWN_CANCEL), 0);
        break;
    case M_INSIDE: {
        weft_future *f = NULL;
        int src = submit_rec(w, K_SHUTDOWN, 0, rc->seed + 17, &f);
        ck_assert_int_eq(src, 0);
        /* Run at once or cancelled by a shutdown it did not make: no other shutdown here. */
        ck_assert_int_eq(weft_future_result(f, NULL), 0);
        weft_future_release(f);
        ck_assert_int_eq(tu_ld(&w->inside_shutdowns), 1);
        break;
    }
    case M_DESTROY:
        atomic_store(&w->stop_outside, 1);
        break;
    }
    for (int i = 0; i < OUTSIDE; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    if (rc->mode == M_DESTROY)
        atomic_store(&w->shutdown_called, 1); /* destroy shuts down: tasks may be refused now */
    tu_pool_free(w->pool);
    w->pool = NULL;
    TU_ASSERT_NO_FAILURES();

    /* Every record: resolved, DONE having run once or CANCELLED having never run. */
    long records = 0, done = 0, cancelled = 0;
    for (rec *r = atomic_load(&w->recs); r != NULL;) {
        rec *next = r->next;
        records++;
        ck_assert_ptr_nonnull(r->f);
        ck_assert_msg(weft_future_done(r->f), "[%s, seed %llu] a future never resolved (kind %d)",
                      mode_name(rc->mode), (unsigned long long)rc->seed, (int)r->kind);
        weft_state st = weft_future_state(r->f);
        int runs = tu_ld(&r->runs);
        ck_assert_msg(st == WEFT_DONE || st == WEFT_CANCELLED,
                      "[%s, seed %llu] final state %d (kind %d)", mode_name(rc->mode),
                      (unsigned long long)rc->seed, (int)st, (int)r->kind);
        if (st == WEFT_DONE) {
            ck_assert_msg(runs == 1, "[%s, seed %llu] a DONE task ran %d times",
                          mode_name(rc->mode), (unsigned long long)rc->seed, runs);
            done++;
        } else {
            ck_assert_msg(runs == 0, "[%s, seed %llu] a CANCELLED task ran %d times",
                          mode_name(rc->mode), (unsigned long long)rc->seed, runs);
            cancelled++;
        }
        ck_assert_msg(tu_ld(&r->callbacks) == 1, "[%s, seed %llu] on_done ran %d times",
                      mode_name(rc->mode), (unsigned long long)rc->seed, tu_ld(&r->callbacks));
        weft_future_release(r->f);
        free(r);
        r = next;
    }
    long accepted = atomic_load(&w->accepted);
    ck_assert_int_eq(records, accepted);
    ck_assert_int_eq(done + cancelled, accepted);
    long wins = atomic_load(&w->cancel_wins);
    long det_acc = atomic_load(&w->det_accepted), det_ran = atomic_load(&w->det_ran);
    if (rc->mode == M_DRAIN || rc->mode == M_DESTROY) {
        /* Nothing but explicit cancels cancels under DRAIN. */
        ck_assert_int_eq(cancelled, wins);
        ck_assert_int_eq(det_ran, det_acc);
    } else {
        ck_assert_int_ge(cancelled, wins);
        ck_assert_int_le(det_ran, det_acc);
    }
    ck_assert_int_gt(accepted, 0);
    if (rc->mode != M_DESTROY)
        ck_assert_int_gt(tu_ldl(&w->shut_refusals), 0); /* the outside threads saw it */
    printf("shutdown_load: %-17s workers %u seed %3llu: %6ld accepted, %6ld ran, %5ld cancelled "
           "(%ld by cancel), %ld detached ran of %ld, %ld refused\n",
           mode_name(rc->mode), rc->workers, (unsigned long long)rc->seed, accepted, done,
           cancelled, wins, det_ran, det_acc, tu_ldl(&w->shut_refusals));
    fflush(stdout);
    free(w);
}

static void run_rounds(mode m, int per_scale)
{
    static const unsigned workers[] = {1, 2, 3, 4, 8};
    long rounds = per_scale * tu_stress_scale();
    for (long i = 0; i < rounds; i++) {
        uint64_t seed = (uint64_t)i * 31 + (uint64_t)m;
        round_cfg rc = {.mode = m,
                        .workers = workers[i % 5],
                        .max_depth = 1 + (int)(i % 3),
                        .delay_ms = 2 + (int)((seed * 2654435761u) % 25),
                        .seed = seed};
        run_round(&rc);
    }
}

START_TEST(test_shutdown_drain_under_load)
{
    run_rounds(M_DRAIN, 10);
}
END_TEST

START_TEST(test_shutdown_cancel_under_load)
{
    run_rounds(M_CANCEL, 10);
}
END_TEST

START_TEST(test_shutdown_drain_then_cancel_under_load)
{
    run_rounds(M_DRAIN_THEN_CANCEL, 10);
}
END_TEST

START_TEST(test_shutdown_from_inside_under_load)
{
    run_rounds(M_INSIDE, 10);
}
END_TEST

START_TEST(test_destroy_while_tasks_spawn)
{
    run_rounds(M_DESTROY, 10);
}
END_TEST

static Suite *shutdown_load_suite(void)
{
    Suite *s = suite_create("shutdown_load");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_shutdown_drain_under_load);
    tcase_add_test(tc, test_shutdown_cancel_under_load);
    tcase_add_test(tc, test_shutdown_drain_then_cancel_under_load);
    tcase_add_test(tc, test_shutdown_from_inside_under_load);
    tcase_add_test(tc, test_destroy_while_tasks_spawn);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(shutdown_load_suite());
}
