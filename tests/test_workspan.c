/* SPDX-License-Identifier: MIT */
/*
 * Work and span ($WEFT_WORKSPAN, weft_region_begin/end): known answers.
 *
 * The measurement reads a monotonic clock, so these tests assert timings, which the rest of the
 * suites never do; they are made to hold on a shared, noisy machine all the same:
 *  - the work comes from sleeps of a few milliseconds (a sleeping thread is not preempted in
 *    the middle of its work, as a busy one is on a loaded machine), or, for fib, from many
 *    forks; every bound has a wide margin (parallelism 1 within 20 %, at least 40 of 64, ...);
 *  - noise only ever lengthens a strand (a preempted one looks longer, and the span takes the
 *    longest path, so one preemption anywhere shows), so a lower bound on the parallelism is
 *    asserted on the best of attempts, each a region, made until one is good or BUDGET_NS has
 *    passed; on a quiet machine the first one is;
 *  - sums of regions taken on the test's own thread are exact: that thread does no work, and
 *    its clock moves only by what it waits for.
 * Each test sets $WEFT_WORKSPAN in its own forked child, creates its pools, and reads the JSON
 * file written at destroy with jansson (jsoncheck.h).
 */
#include "jsoncheck.h"
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define TW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define TW_SANITIZED 1
#endif
#endif
#ifndef TW_SANITIZED
#define TW_SANITIZED 0
#endif

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* ms milliseconds of work as the clock sees it. */
static void busy_ms(double ms)
{
    tu_sleep_ns((int64_t)(ms * 1e6));
}

/* Attempts at a noise-sensitive measurement go on until one is good, for at most this long. */
#define BUDGET_NS (TW_SANITIZED ? TU_MS(30000) : TU_MS(15000))

static bool keep_trying(int64_t start)
{
    return tu_now_ns() - start < BUDGET_NS;
}
#define TW_BURDEN_NS 5000 /* WEFT_WS_BURDEN_NS, as the file says in burden_ns */

/* Between two attempts: a moment, so that they sample different moments of the machine's load. */
static void next_attempt(void)
{
    tu_sleep_ms(20);
}

/* A fresh file path in a fresh directory; the test sets $WEFT_WORKSPAN to it. */
typedef struct tw_file {
    char dir[64];
    char path[128];
} tw_file;

static void tw_file_init(tw_file *f, const char *name)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/weft-ws-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
}

static void tw_file_done(tw_file *f)
{
    unlink(f->path);
    rmdir(f->dir);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static double num(json_t *o, const char *key)
{
    double v = -1;
    ck_assert_msg(jc_num(json_object_get(o, key), &v), "no number %s", key);
    return v;
}

/* The JSON object written at destroy, checked for the contract's fields. */
static json_t *read_ws(const char *path)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "no work-and-span file %s", path);
    size_t len = 0;
    char *text = tu_read_fd(fd, &len);
    close(fd);
    ck_assert_ptr_nonnull(text);
    json_error_t err;
    json_t *doc = jc_parse(text, len, &err);
    ck_assert_msg(doc != NULL, "%s is not JSON: %s\n%s", path, err.text, text);
    free(text);
    ck_assert_msg(json_is_object(doc), "%s: not an object", path);
    uint64_t work, span, bspan;
    double par;
    ck_assert(jc_u64(json_object_get(doc, "work_ns"), &work));
    ck_assert(jc_u64(json_object_get(doc, "span_ns"), &span));
    ck_assert(jc_u64(json_object_get(doc, "burdened_span_ns"), &bspan));
    ck_assert(jc_num(json_object_get(doc, "parallelism"), &par));
    ck_assert_msg(span <= work || work == 0, "span %llu above work %llu", (unsigned long long)span,
                  (unsigned long long)work);
    ck_assert_msg(bspan >= span, "burdened span %llu below span %llu", (unsigned long long)bspan,
                  (unsigned long long)span);
    if (span > 0)
        ck_assert_msg(fabs(par - (double)work / (double)span) <= 1e-3 * par + 1e-6,
                      "parallelism %f is not work/span %f", par, (double)work / (double)span);
    ck_assert(json_is_array(json_object_get(doc, "regions")));
    ck_assert_int_eq(num(doc, "burden_ns"), TW_BURDEN_NS);
    return doc;
}

/* The region of that name in the file's array, NULL if none. */
static json_t *region(json_t *doc, const char *name)
{
    json_t *a = json_object_get(doc, "regions");
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *r = json_array_get(a, i);
        if (strcmp(json_string_value(json_object_get(r, "name")), name) == 0)
            return r;
    }
    return NULL;
}

/* A measuring pool of n workers writing to path. */
static weft_pool *ws_pool(unsigned n, const char *path, tu_env_saved *saved)
{
    *saved = tu_env_set("WEFT_WORKSPAN", path);
    return tu_pool_new(n, "ws");
}

static void ws_pool_end(weft_pool *p, tu_env_saved *saved)
{
    tu_pool_free(p);
    tu_env_restore(saved);
}

static const unsigned sizes[] = {1, 2, 8};

/* ---------------------------------------------------------------------------------------------
 * A chain of tasks, each waiting on the one before: no parallelism at all
 */

#define CHAIN 100

typedef struct chain {
    weft_future *f[CHAIN];
} chain;

typedef struct chain_link {
    chain *c;
    int i;
} chain_link;

static int chain_task(void *arg, void **result)
{
    (void)result;
    chain_link *l = arg;
    if (l->i > 0)
        TU_EXPECT(weft_future_wait(l->c->f[l->i - 1], WEFT_FOREVER) == 0);
    busy_ms(1);
    return 0;
}

START_TEST(test_chain_has_no_parallelism)
{
    unsigned n = sizes[_i];
    tu_failures_reset();
    tw_file file;
    tw_file_init(&file, "chain.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    static chain c;
    static chain_link links[CHAIN];
    /* Submitted all at once, so that a later task may well start first and wait. */
    for (int i = 0; i < CHAIN; i++) {
        links[i] = (chain_link){&c, i};
        ck_assert_int_eq(weft_submit(p, chain_task, &links[i], &c.f[i]), 0);
    }
    ck_assert_int_eq(weft_future_wait(c.f[CHAIN - 1], WEFT_FOREVER), 0);
    for (int i = 0; i < CHAIN; i++)
        weft_future_release(c.f[i]);
    ws_pool_end(p, &e);
    TU_ASSERT_NO_FAILURES();
    json_t *doc = read_ws(file.path);
    double par = num(doc, "parallelism");
    ck_assert_msg(par >= 0.8 && par <= 1.2, "%u workers: chain parallelism %f, not 1", n, par);
    ck_assert_msg(num(doc, "work_ns") >= CHAIN * 1e6, "work %f below the 100 ms of busy loops",
                  num(doc, "work_ns"));
    ck_assert_int_eq(num(doc, "tasks"), CHAIN);
    json_decref(doc);
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A loop of 64 bodies of 1 ms: the logical split, however it ran
 */

static void body_1ms(size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    for (size_t i = lo; i < hi; i++)
        busy_ms(1);
}

START_TEST(test_loop_parallelism_on_any_pool)
{
    unsigned n = sizes[_i];
    tw_file file;
    tw_file_init(&file, "loop.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    weft_workspan best = {0};
    for (int64_t t0 = tu_now_ns(); best.parallelism < 40 && keep_trying(t0);) {
        weft_region r;
        weft_workspan ws;
        ck_assert_int_eq(weft_region_begin(&r, p, "loop"), 0);
        ck_assert_int_eq(weft_parallel_for(p, 0, 64, 1, body_1ms, NULL), 0);
        ck_assert_int_eq(weft_region_end(&r, &ws), 0);
        ck_assert_msg(ws.parallelism <= 64.5, "%u workers: parallelism %f above 64", n,
                      ws.parallelism);
        /* six levels of splits on the way to a leaf, each a spawn and a sync */
        ck_assert_msg(ws.burdened_span_ns >= ws.span_ns + 6 * TW_BURDEN_NS,
                      "%u: burden %llu missing", n,
                      (unsigned long long)(ws.burdened_span_ns - ws.span_ns));
        if (ws.parallelism > best.parallelism)
            best = ws;
        next_attempt();
    }
    ws_pool_end(p, &e);
    ck_assert_msg(best.parallelism >= 40, "%u workers: parallelism %f, not about 64", n,
                  best.parallelism);
    json_t *doc = read_ws(file.path);
    json_decref(doc);
    tw_file_done(&file);
}
END_TEST

typedef struct sum_ctx {
    atomic_int calls;
} sum_ctx;

static void sum_body(size_t lo, size_t hi, void *acc, void *ctx)
{
    atomic_fetch_add(&((sum_ctx *)ctx)->calls, 1);
    for (size_t i = lo; i < hi; i++) {
        busy_ms(1);
        *(uint64_t *)acc += i;
    }
}

static void sum_combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc += *(const uint64_t *)other;
}

/* weft_parallel_reduce likewise, with its result exact whatever the split. */
START_TEST(test_reduce_parallelism)
{
    unsigned n = sizes[_i];
    tw_file file;
    tw_file_init(&file, "reduce.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    double best = 0;
    for (int64_t t0 = tu_now_ns(); best < 10 && keep_trying(t0);) {
        sum_ctx ctx;
        atomic_init(&ctx.calls, 0);
        uint64_t zero = 0, sum = 0;
        weft_region r;
        weft_workspan ws;
        ck_assert_int_eq(weft_region_begin(&r, p, "reduce"), 0);
        ck_assert_int_eq(weft_parallel_reduce(p, 0, 32, 2, sizeof(uint64_t), &zero, sum_body,
                                              sum_combine, &ctx, &sum),
                         0);
        ck_assert_int_eq(weft_region_end(&r, &ws), 0);
        ck_assert_uint_eq(sum, 31 * 32 / 2);
        ck_assert_int_eq(atomic_load(&ctx.calls), 16); /* the logical leaves, 2 long each */
        ck_assert_msg(ws.parallelism <= 16.5, "%u workers: parallelism %f", n, ws.parallelism);
        best = ws.parallelism > best ? ws.parallelism : best;
        next_attempt();
    }
    ws_pool_end(p, &e);
    ck_assert_msg(best >= 10, "%u workers: parallelism %f, not about 16", n, best);
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * fib with weft_join: span far below work, and work close to the serial time
 */

typedef struct fib_arg {
    unsigned n;
    uint64_t r;
} fib_arg;

#define FIB_N      25
#define FIB_CUTOFF 12 /* leaves of about a microsecond */

static __attribute__((noinline)) uint64_t fib_seq(unsigned n)
{
    return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2);
}

/* The serial time: the plain recursion, best of a few. n is read from a volatile after the
 * first clock read and the result stored to one before the second, so that no compiler moves
 * the call out of the timed stretch (fib_seq reads no memory, and clang would). */
static int64_t fib_serial_ns(void)
{
    volatile unsigned n = FIB_N;
    int64_t best = INT64_MAX;
    for (int k = 0; k < 5; k++) {
        int64_t t0 = tu_now_ns();
        volatile uint64_t v = fib_seq(n);
        (void)v;
        int64_t t = tu_now_ns() - t0;
        best = t < best ? t : best;
    }
    return best;
}

static void fib_join(void *arg)
{
    fib_arg *f = arg;
    if (f->n < FIB_CUTOFF) {
        f->r = fib_seq(f->n);
        return;
    }
    fib_arg x = {f->n - 1, 0}, y = {f->n - 2, 0};
    weft_join(fib_join, &y, fib_join, &x);
    f->r = x.r + y.r;
}

static int fib_root(void *arg, void **result)
{
    (void)result;
    fib_join(arg);
    return 0;
}

START_TEST(test_fib_join)
{
    unsigned n = sizes[_i];
    int64_t serial = fib_serial_ns();
    tw_file file;
    tw_file_init(&file, "fib.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    double best_par = 0, best_work = 1e30;
    double bound = TW_SANITIZED ? 1e30 : 2.0 * (double)serial;
    for (int64_t t0 = tu_now_ns(); (best_par <= 100 || best_work >= bound) && keep_trying(t0);) {
        weft_region r;
        ck_assert_int_eq(weft_region_begin(&r, p, "fib"), 0);
        fib_arg f = {FIB_N, 0};
        ck_assert_int_eq(weft_pool_run(p, fib_root, &f, NULL), 0);
        weft_workspan ws;
        ck_assert_int_eq(weft_region_end(&r, &ws), 0);
        ck_assert_uint_eq(f.r, 75025);
        best_par = ws.parallelism > best_par ? ws.parallelism : best_par;
        best_work = (double)ws.work_ns < best_work ? (double)ws.work_ns : best_work;
    }
    ws_pool_end(p, &e);
    ck_assert_msg(best_par > 100, "%u workers: fib(%d) parallelism %f, not above 100", n, FIB_N,
                  best_par);
    /* Under a sanitizer the two are instrumented differently: no bound. */
    if (!TW_SANITIZED)
        ck_assert_msg(best_work < bound,
                      "%u workers: work %.0f ns, more than twice the serial %lld ns", n, best_work,
                      (long long)serial);
    if (!TW_SANITIZED)
        ck_assert_msg(best_work > 0.5 * (double)serial,
                      "work %.0f ns below half the serial %lld ns", best_work, (long long)serial);
    json_t *doc = read_ws(file.path);
    json_t *g = region(doc, "fib");
    ck_assert_ptr_nonnull(g);
    ck_assert_msg(num(doc, "parallelism") > 1, "whole pool: parallelism %f",
                  num(doc, "parallelism"));
    json_decref(doc);
    tw_file_done(&file);
}
END_TEST

/* The same with the contract's pfib, every call an offer: weft_reclaim keeps its contract in a
 * measuring pool (true whenever no thief took the frame, and the caller then runs fn), and fn
 * still counts as the branch it is. */
static atomic_long reclaims_true, reclaims_false;

static void count_reclaim(bool r)
{
    atomic_fetch_add(r ? &reclaims_true : &reclaims_false, 1);
}

static void pfib(void *arg)
{
    fib_arg *f = arg;
    if (f->n < FIB_CUTOFF) {
        f->r = fib_seq(f->n);
        return;
    }
    fib_arg a = {f->n - 1, 0}, b = {f->n - 2, 0};
    weft_frame fr;
    weft_offer(&fr, pfib, &b);
    pfib(&a);
    bool r = weft_reclaim(&fr);
    count_reclaim(r);
    if (r)
        pfib(&b);
    f->r = a.r + b.r;
}

static int pfib_root(void *arg, void **result)
{
    (void)result;
    pfib(arg);
    return 0;
}

/* The calls of pfib(n) that offer. */
static long pfib_offers(unsigned n)
{
    return n < FIB_CUTOFF ? 0 : 1 + pfib_offers(n - 1) + pfib_offers(n - 2);
}

START_TEST(test_fib_offer)
{
    unsigned n = sizes[_i];
    int64_t serial = fib_serial_ns();
    tw_file file;
    tw_file_init(&file, "pfib.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    double best_par = 0, best_work = 1e30;
    double bound = TW_SANITIZED ? 1e30 : 2.0 * (double)serial;
    long offers = pfib_offers(FIB_N);
    for (int64_t t0 = tu_now_ns(); (best_par <= 100 || best_work >= bound) && keep_trying(t0);) {
        atomic_store(&reclaims_true, 0);
        atomic_store(&reclaims_false, 0);
        weft_region r;
        ck_assert_int_eq(weft_region_begin(&r, p, "pfib"), 0);
        fib_arg f = {FIB_N, 0};
        ck_assert_int_eq(weft_pool_run(p, pfib_root, &f, NULL), 0);
        weft_workspan ws;
        ck_assert_int_eq(weft_region_end(&r, &ws), 0);
        ck_assert_uint_eq(f.r, 75025);
        long t = atomic_load(&reclaims_true), fl = atomic_load(&reclaims_false);
        ck_assert_int_eq(t + fl, offers);
        if (n == 1) /* nobody to steal: every reclaim says the caller runs fn */
            ck_assert_msg(t == offers, "1 worker: %ld of %ld reclaims true", t, offers);
        best_par = ws.parallelism > best_par ? ws.parallelism : best_par;
        best_work = (double)ws.work_ns < best_work ? (double)ws.work_ns : best_work;
    }
    ws_pool_end(p, &e);
    ck_assert_msg(best_par > 100, "%u workers: parallelism %f, not above 100", n, best_par);
    if (!TW_SANITIZED) {
        ck_assert_msg(best_work < bound,
                      "%u workers: work %.0f ns, more than twice the serial %lld ns", n, best_work,
                      (long long)serial);
        ck_assert_msg(best_work > 0.5 * (double)serial,
                      "work %.0f ns below half the serial %lld ns", best_work, (long long)serial);
    }
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Offers in the nqueens pattern (several, then reclaims in reverse) measure as a scope does
 */

#define TREE_FAN   4
#define TREE_DEPTH 3 /* 64 leaves */

enum tree_kind { TREE_SCOPE, TREE_OFFERS, TREE_OFFERS_SUBMIT };

typedef struct tree_arg {
    weft_pool *p;
    int depth;
    enum tree_kind kind;
} tree_arg;

static int leaf_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    busy_ms(0.5);
    return 0;
}

static void tree_node(void *arg)
{
    tree_arg *t = arg;
    if (t->depth == 0) {
        if (t->kind == TREE_OFFERS_SUBMIT) {
            /* a submission and a wait inside an offered frame: the wait runs the task on this
             * stack, a strand nested in the frame's */
            weft_future *f;
            TU_EXPECT(weft_submit(t->p, leaf_task, NULL, &f) == 0);
            TU_EXPECT(weft_future_wait(f, WEFT_FOREVER) == 0);
            weft_future_release(f);
        } else {
            busy_ms(0.5);
        }
        return;
    }
    tree_arg kids[TREE_FAN];
    for (int i = 0; i < TREE_FAN; i++)
        kids[i] = (tree_arg){t->p, t->depth - 1, t->kind};
    if (t->kind == TREE_SCOPE) {
        weft_scope s;
        weft_spawn slot[TREE_FAN];
        weft_scope_init(&s);
        for (int i = 0; i < TREE_FAN; i++)
            weft_scope_spawn(&s, &slot[i], tree_node, &kids[i]);
        weft_scope_wait(&s);
        return;
    }
    weft_frame fr[TREE_FAN];
    for (int i = 0; i < TREE_FAN; i++)
        weft_offer(&fr[i], tree_node, &kids[i]);
    for (int i = TREE_FAN - 1; i >= 0; i--) {
        bool r = weft_reclaim(&fr[i]);
        count_reclaim(r);
        if (r)
            tree_node(&kids[i]);
    }
}

static int tree_root(void *arg, void **result)
{
    (void)result;
    tree_node(arg);
    return 0;
}

/* The scope's parallelism is about 64, and the offers' within 20 % of it. */
static bool tree_agree(const double best[3])
{
    return best[0] >= 40 && fabs(best[1] - best[0]) <= 0.2 * best[0] &&
           fabs(best[2] - best[0]) <= 0.2 * best[0];
}

START_TEST(test_offer_tree_like_scope)
{
    unsigned n = sizes[_i];
    tu_failures_reset();
    tw_file file;
    tw_file_init(&file, "tree.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    const long offers = TREE_FAN * (1 + TREE_FAN + TREE_FAN * TREE_FAN);
    double best[3] = {0, 0, 0};
    /* Noise only lowers a parallelism: the best of each comes near its true value, and the
     * attempts go on until the three are good and agree (or the time is up). */
    for (int64_t t0 = tu_now_ns(); !tree_agree(best) && keep_trying(t0);) {
        for (int k = TREE_SCOPE; k <= TREE_OFFERS_SUBMIT; k++) {
            atomic_store(&reclaims_true, 0);
            atomic_store(&reclaims_false, 0);
            weft_region r;
            weft_workspan ws;
            tree_arg root = {p, TREE_DEPTH, (enum tree_kind)k};
            ck_assert_int_eq(weft_region_begin(&r, p, "tree"), 0);
            ck_assert_int_eq(weft_pool_run(p, tree_root, &root, NULL), 0);
            ck_assert_int_eq(weft_region_end(&r, &ws), 0);
            ck_assert_msg(ws.parallelism <= 64.5, "%u workers, kind %d: parallelism %f above 64", n,
                          k, ws.parallelism);
            ck_assert_msg(ws.work_ns >= 32000000, "kind %d: work %llu below 64 x 0.5 ms", k,
                          (unsigned long long)ws.work_ns);
            if (k != TREE_SCOPE) {
                long t = atomic_load(&reclaims_true), fl = atomic_load(&reclaims_false);
                ck_assert_int_eq(t + fl, offers);
                if (n == 1)
                    ck_assert_int_eq(t, offers);
            }
            best[k] = ws.parallelism > best[k] ? ws.parallelism : best[k];
        }
        next_attempt();
    }
    ws_pool_end(p, &e);
    TU_ASSERT_NO_FAILURES();
    ck_assert_msg(best[0] >= 40, "%u workers: scope parallelism %f, not about 64", n, best[0]);
    for (int k = TREE_OFFERS; k <= TREE_OFFERS_SUBMIT; k++)
        ck_assert_msg(fabs(best[k] - best[0]) <= 0.2 * best[0],
                      "%u workers: offers (kind %d) parallelism %f, scope %f", n, k, best[k],
                      best[0]);
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A loop that offers and reclaims one frame in turn: iterations in series, each a fork-join
 */

static void sleep_1ms(void *arg)
{
    (void)arg;
    busy_ms(1);
}

static int reuse_loop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 16; i++) {
        weft_frame fr;
        weft_offer(&fr, sleep_1ms, NULL);
        busy_ms(2); /* the caller's own part, longer than the frame's */
        if (weft_reclaim(&fr))
            sleep_1ms(NULL);
    }
    return 0;
}

START_TEST(test_offer_loop_in_series)
{
    unsigned n = sizes[_i];
    tw_file file;
    tw_file_init(&file, "reuse.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    /* 48 ms of work over a span of 16 x 2 ms: parallelism 1.5. Had the joins been missed (each
     * frame's branch taken to end where the next iteration starts), the span would be about
     * 17 ms and the parallelism 2.8. */
    double best = 0;
    for (int64_t t0 = tu_now_ns(); best < 1.3 && keep_trying(t0);) {
        weft_region r;
        weft_workspan ws;
        ck_assert_int_eq(weft_region_begin(&r, p, "loop"), 0);
        ck_assert_int_eq(weft_pool_run(p, reuse_loop, NULL, NULL), 0);
        ck_assert_int_eq(weft_region_end(&r, &ws), 0);
        ck_assert_msg(ws.parallelism < 1.7, "%u workers: parallelism %f, not 1.5", n,
                      ws.parallelism);
        best = ws.parallelism > best ? ws.parallelism : best;
        next_attempt();
    }
    ws_pool_end(p, &e);
    ck_assert_msg(best >= 1.3, "%u workers: parallelism %f, not 1.5", n, best);
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Offers nested 20,000 deep on one worker: most of them beyond the deque (private frames), and
 * as many joins pending at once, each at a level of its own
 */

#define DEEP 20000

typedef struct deep_ctx {
    atomic_int runs[DEEP];
    long trues;
    bool chain_in_branch; /* recurse in an offered frame's branch (else in the continuation) */
} deep_ctx;

typedef struct deep_arg {
    deep_ctx *c;
    int k;
} deep_arg;

static void deep_leaf(void *arg)
{
    deep_arg *d = arg;
    volatile uint64_t v = fib_seq(14); /* a few microseconds */
    (void)v;
    atomic_fetch_add(&d->c->runs[d->k], 1);
}

static void deep_step(void *arg)
{
    deep_arg *d = arg;
    if (d->k == DEEP)
        return;
    deep_arg next = {d->c, d->k + 1};
    weft_frame leaf, rest;
    weft_offer(&leaf, deep_leaf, d);
    if (d->c->chain_in_branch) {
        /* the recursion runs after its frame came back: its join waits at this level while
         * everything deeper opens levels above it */
        weft_offer(&rest, deep_step, &next);
        if (weft_reclaim(&rest)) {
            d->c->trues++;
            deep_step(&next);
        }
    } else {
        deep_step(&next); /* inside the continuation: every leaf's offer stays open */
    }
    if (weft_reclaim(&leaf)) {
        d->c->trues++;
        deep_leaf(d);
    }
}

static int deep_root(void *arg, void **result)
{
    (void)result;
    deep_arg d = {arg, 0};
    deep_step(&d);
    return 0;
}

START_TEST(test_offer_deep_nesting)
{
    static deep_ctx c;
    tw_file file;
    tw_file_init(&file, "deep.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(1, file.path, &e);
    for (int v = 0; v < 2; v++) {
        c.chain_in_branch = v == 1;
        double best = 0;
        for (int64_t t0 = tu_now_ns(); best < 3 && keep_trying(t0);) {
            for (int i = 0; i < DEEP; i++)
                atomic_init(&c.runs[i], 0);
            c.trues = 0;
            weft_region r;
            weft_workspan ws;
            ck_assert_int_eq(weft_region_begin(&r, p, "deep"), 0);
            ck_assert_int_eq(weft_pool_run(p, deep_root, &c, NULL), 0);
            ck_assert_int_eq(weft_region_end(&r, &ws), 0);
            for (int i = 0; i < DEEP; i++)
                ck_assert_msg(atomic_load(&c.runs[i]) == 1, "leaf %d ran %d times", i,
                              atomic_load(&c.runs[i]));
            ck_assert_int_eq(c.trues, c.chain_in_branch ? 2 * DEEP : DEEP);
            ck_assert_msg(ws.span_ns <= ws.work_ns, "span %llu above work %llu",
                          (unsigned long long)ws.span_ns, (unsigned long long)ws.work_ns);
            best = ws.parallelism > best ? ws.parallelism : best;
        }
        /* Every leaf is a branch of its own fork point, and the forks follow one another by a
         * few hundred nanoseconds: the leaves' microseconds run side by side. In series, the
         * parallelism would be 1. */
        ck_assert_msg(best >= 3, "chain in branch %d: parallelism %f", v, best);
    }
    ws_pool_end(p, &e);
    json_decref(read_ws(file.path));
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Scopes and futures: the graph, not the schedule
 */

static void spawned_2ms(void *arg)
{
    (void)arg;
    busy_ms(2);
}

static int scope_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    weft_scope s;
    weft_spawn slot[16];
    weft_scope_init(&s);
    for (int i = 0; i < 16; i++)
        weft_scope_spawn(&s, &slot[i], spawned_2ms, NULL);
    weft_scope_wait(&s);
    return 0;
}

static int child_2ms(void *arg, void **result)
{
    (void)arg;
    (void)result;
    busy_ms(2);
    return 0;
}

static int futures_task(void *arg, void **result)
{
    (void)result;
    weft_pool *p = arg;
    weft_future *f[16];
    for (int i = 0; i < 16; i++)
        TU_EXPECT(weft_submit(p, child_2ms, NULL, &f[i]) == 0);
    for (int i = 0; i < 16; i++) {
        TU_EXPECT(weft_future_wait(f[i], WEFT_FOREVER) == 0);
        weft_future_release(f[i]);
    }
    return 0;
}

START_TEST(test_scope_and_futures)
{
    unsigned n = sizes[_i];
    tu_failures_reset();
    tw_file file;
    tw_file_init(&file, "scope.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    weft_region r;
    weft_workspan a = {0}, b = {0};
    for (int64_t t0 = tu_now_ns(); (a.parallelism < 10 || b.parallelism < 10) && keep_trying(t0);) {
        weft_workspan x, y;
        ck_assert_int_eq(weft_region_begin(&r, p, "scope"), 0);
        ck_assert_int_eq(weft_pool_run(p, scope_task, NULL, NULL), 0);
        ck_assert_int_eq(weft_region_end(&r, &x), 0);
        ck_assert_int_eq(weft_region_begin(&r, p, "futures"), 0);
        ck_assert_int_eq(weft_pool_run(p, futures_task, p, NULL), 0);
        ck_assert_int_eq(weft_region_end(&r, &y), 0);
        a = x.parallelism > a.parallelism ? x : a;
        b = y.parallelism > b.parallelism ? y : b;
        next_attempt();
    }
    ws_pool_end(p, &e);
    TU_ASSERT_NO_FAILURES();
    /* 16 branches of 2 ms: 32 ms of work over a span of about 2 */
    ck_assert_msg(a.parallelism >= 10 && a.parallelism <= 16.5, "%u: scope parallelism %f", n,
                  a.parallelism);
    ck_assert_msg(a.work_ns >= 32000000, "scope work %llu", (unsigned long long)a.work_ns);
    ck_assert_msg(b.parallelism >= 10 && b.parallelism <= 16.5, "%u: futures parallelism %f", n,
                  b.parallelism);
    ck_assert_msg(b.work_ns >= 32000000, "futures work %llu", (unsigned long long)b.work_ns);
    /* every path pays a sync; the last child's path also the 16 spawns before it */
    ck_assert_msg(b.burdened_span_ns >= b.span_ns + TW_BURDEN_NS &&
                      b.burdened_span_ns >= 2000000 + 16 * TW_BURDEN_NS,
                  "%u: burdened span %llu, span %llu", n, (unsigned long long)b.burdened_span_ns,
                  (unsigned long long)b.span_ns);
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Promises: one completed by a task carries its span; one completed from outside adds nothing
 */

typedef struct prom {
    weft_future *pr;
} prom;

static int set_after_5ms(void *arg, void **result)
{
    (void)result;
    busy_ms(5);
    TU_EXPECT(weft_future_set_result(((prom *)arg)->pr, NULL) == 0);
    return 0;
}

static int wait_then_5ms(void *arg, void **result)
{
    (void)result;
    TU_EXPECT(weft_future_wait(((prom *)arg)->pr, WEFT_FOREVER) == 0);
    busy_ms(5);
    return 0;
}

START_TEST(test_promises)
{
    unsigned n = sizes[_i];
    tu_failures_reset();
    tw_file file;
    tw_file_init(&file, "promise.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    weft_region r;
    weft_workspan inside, outside;
    prom pm;

    /* set by a task: the waiter's 5 ms come after the setter's */
    ck_assert_int_eq(weft_future_create(&pm.pr), 0);
    ck_assert_int_eq(weft_region_begin(&r, p, "by a task"), 0);
    weft_future *w, *s;
    ck_assert_int_eq(weft_submit(p, wait_then_5ms, &pm, &w), 0);
    ck_assert_int_eq(weft_submit(p, set_after_5ms, &pm, &s), 0);
    ck_assert_int_eq(weft_future_wait(w, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_wait(s, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_region_end(&r, &inside), 0);
    weft_future_release(w);
    weft_future_release(s);
    weft_future_release(pm.pr);

    /* set from this thread after 50 ms: a source, the wait adds nothing */
    ck_assert_int_eq(weft_future_create(&pm.pr), 0);
    ck_assert_int_eq(weft_region_begin(&r, p, "from outside"), 0);
    ck_assert_int_eq(weft_submit(p, wait_then_5ms, &pm, &w), 0);
    tu_sleep_ms(50);
    ck_assert_int_eq(weft_future_set_result(pm.pr, NULL), 0);
    ck_assert_int_eq(weft_future_wait(w, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_region_end(&r, &outside), 0);
    weft_future_release(w);
    weft_future_release(pm.pr);
    ws_pool_end(p, &e);
    TU_ASSERT_NO_FAILURES();

    ck_assert_msg(inside.span_ns >= 10000000, "%u: span %llu below the 10 ms chain", n,
                  (unsigned long long)inside.span_ns);
    /* the work of the setter was never waited for by the region's thread: only the waiter's */
    ck_assert_msg(outside.span_ns >= 5000000 && outside.span_ns < 40000000,
                  "%u: span %llu counts the outside wait", n, (unsigned long long)outside.span_ns);
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Regions: nested ones add up
 */

typedef struct phases {
    weft_pool *p;
    weft_workspan loop, scope;
} phases;

static int phases_task(void *arg, void **result)
{
    (void)result;
    phases *ph = arg;
    weft_region r;
    TU_EXPECT(weft_region_begin(&r, ph->p, "in-task loop") == 0);
    TU_EXPECT(weft_parallel_for(NULL, 0, 8, 1, body_1ms, NULL) == 0);
    TU_EXPECT(weft_region_end(&r, &ph->loop) == 0);
    TU_EXPECT(weft_region_begin(&r, ph->p, "in-task scope") == 0);
    TU_EXPECT(scope_task(NULL, NULL) == 0);
    TU_EXPECT(weft_region_end(&r, &ph->scope) == 0);
    return 0;
}

START_TEST(test_nested_regions_add_up)
{
    unsigned n = sizes[_i];
    tu_failures_reset();
    tw_file file;
    tw_file_init(&file, "regions.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(n, file.path, &e);
    weft_region all, a, b;
    weft_workspan wall, wa, wb;
    phases ph = {p, {0}, {0}};
    double gap = 1;
    ck_assert_int_eq(weft_region_begin(&all, p, "all"), 0);
    /* the task's own code between its two regions is short: best of a few, in case a
     * preemption lands there */
    for (int64_t t0 = tu_now_ns(); gap > 0.1 && keep_trying(t0);) {
        ck_assert_int_eq(weft_region_begin(&a, p, "loop"), 0);
        ck_assert_int_eq(weft_parallel_for(p, 0, 32, 1, body_1ms, NULL), 0);
        ck_assert_int_eq(weft_region_end(&a, &wa), 0);
        ck_assert_int_eq(weft_region_begin(&b, p, "phases"), 0);
        ck_assert_int_eq(weft_pool_run(p, phases_task, &ph, NULL), 0);
        ck_assert_int_eq(weft_region_end(&b, &wb), 0);
        /* inside the task: the two inner regions make up the phases, but for the code between */
        double inner = (double)(ph.loop.work_ns + ph.scope.work_ns), outer = (double)wb.work_ns;
        ck_assert_msg(inner <= outer, "inner work %f above outer %f", inner, outer);
        double inner_span = (double)(ph.loop.span_ns + ph.scope.span_ns);
        ck_assert_msg(inner_span <= (double)wb.span_ns, "inner span %f above outer %llu",
                      inner_span, (unsigned long long)wb.span_ns);
        double g1 = (outer - inner) / outer, g2 = ((double)wb.span_ns - inner_span) / inner_span;
        gap = g1 > g2 ? g1 : g2;
        ck_assert_msg(wa.work_ns >= 32000000 && wb.work_ns >= 40000000, "work too small");
    }
    ck_assert_int_eq(weft_region_end(&all, &wall), 0);
    ws_pool_end(p, &e);
    TU_ASSERT_NO_FAILURES();
    ck_assert_msg(gap <= 0.1, "%u: the inner regions miss %f of the outer one", n, gap);

    json_t *doc = read_ws(file.path);
    json_t *ga = region(doc, "all"), *gl = region(doc, "loop"), *gp = region(doc, "phases");
    ck_assert(ga != NULL && gl != NULL && gp != NULL);
    ck_assert_int_eq(num(ga, "count"), 1);
    ck_assert_int_eq(num(ga, "work_ns"), (double)wall.work_ns);
    ck_assert_int_eq(num(ga, "span_ns"), (double)wall.span_ns);
    /* on this thread, one region after the other: the sums are exact */
    ck_assert_int_eq(num(gl, "work_ns") + num(gp, "work_ns"), (double)wall.work_ns);
    ck_assert_int_eq(num(gl, "span_ns") + num(gp, "span_ns"), (double)wall.span_ns);
    ck_assert_int_eq(num(gl, "count"), num(gp, "count"));
    /* and everything the pool ran is inside "all", but for a few scheduling instructions */
    double total = num(doc, "work_ns"), w = (double)wall.work_ns;
    ck_assert_msg(total >= w && total - w <= 0.02 * total, "total work %f, region all %f", total,
                  w);
    json_decref(doc);
    tw_file_done(&file);
}
END_TEST

/* One name closed many times adds up; names are written as valid JSON whatever their bytes. */
START_TEST(test_region_names_and_counts)
{
    tw_file file;
    tw_file_init(&file, "names.json");
    tu_env_saved e;
    weft_pool *p = ws_pool(2, file.path, &e);
    static const char odd[] = "quote\" back\\ tab\t nl\n bad\xff\xc0 utf8 \xc3\xa9";
    for (int i = 0; i < 3; i++) {
        weft_region r;
        ck_assert_int_eq(weft_region_begin(&r, p, "step"), 0);
        ck_assert_int_eq(weft_parallel_for(p, 0, 4, 1, body_1ms, NULL), 0);
        ck_assert_int_eq(weft_region_end(&r, NULL), 0);
        ck_assert_int_eq(weft_region_begin(&r, p, odd), 0);
        ck_assert_int_eq(weft_region_end(&r, NULL), 0);
    }
    ws_pool_end(p, &e);
    json_t *doc = read_ws(file.path);
    json_t *g = region(doc, "step");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(num(g, "count"), 3);
    ck_assert_msg(num(g, "work_ns") >= 12e6, "3 x 4 ms: %f", num(g, "work_ns"));
    ck_assert_int_eq(json_array_size(json_object_get(doc, "regions")), 2);
    json_t *o = region(doc, "quote\" back\\ tab\t nl\n bad?? utf8 \xc3\xa9");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(num(o, "count"), 3);
    json_decref(doc);
    tw_file_done(&file);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The API's errors, and the variable's bad values
 */

static void *end_elsewhere(void *arg)
{
    return (void *)(intptr_t)weft_region_end(arg, NULL);
}

START_TEST(test_region_errors)
{
    weft_workspan out;
    weft_region r;
    /* a pool that does not measure */
    tu_env_saved e = tu_env_set("WEFT_WORKSPAN", NULL);
    weft_pool *off = tu_pool_new(2, "off");
    ck_assert_int_eq(weft_region_begin(&r, off, "x"), -ENOTSUP);
    ck_assert_int_eq(weft_region_end(&r, &out), -ENOTSUP);
    ck_assert_int_eq(weft_region_end(&r, &out), -ENOTSUP);
    ck_assert_str_ne(weft_strerror(-ENOTSUP), "unknown error code");
    tu_pool_free(off);
    tu_env_restore(&e);

    tw_file file;
    tw_file_init(&file, "errors.json");
    weft_pool *p = ws_pool(2, file.path, &e);
    ck_assert_int_eq(weft_region_begin(NULL, p, "x"), -EINVAL);
    ck_assert_int_eq(weft_region_begin(&r, NULL, "x"), -EINVAL);
    ck_assert_int_eq(weft_region_begin(&r, p, NULL), -EINVAL);
    ck_assert_int_eq(weft_region_end(NULL, &out), -EINVAL);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(weft_region_end(&r, &out), -EINVAL); /* never begun */
    ck_assert_int_eq(weft_region_begin(&r, p, "x"), 0);
    pthread_t t;
    void *rc;
    ck_assert_int_eq(pthread_create(&t, NULL, end_elsewhere, &r), 0);
    pthread_join(t, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, -EINVAL); /* another thread: nothing changed */
    ck_assert_int_eq(weft_region_end(&r, &out), 0);
    ck_assert_int_eq(weft_region_end(&r, &out), -EINVAL); /* already closed */
    ws_pool_end(p, &e);
    json_t *doc = read_ws(file.path);
    json_t *g = region(doc, "x");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(num(g, "count"), 1);
    json_decref(doc);
    tw_file_done(&file);
}
END_TEST

/* As $WEFT_STATS and $WEFT_TRACE: empty is unset; a file that cannot be written is skipped and
 * the pool works and is destroyed all the same. */
START_TEST(test_bad_values)
{
    char dir[] = "/tmp/weft-ws-bad-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/ws.json", dir);
    const char *paths[] = {"", missing, dir};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        tu_env_saved e = tu_env_set("WEFT_WORKSPAN", paths[i]);
        weft_pool *p = tu_pool_new(2, "bad");
        weft_region r;
        int rc = weft_region_begin(&r, p, "x");
        ck_assert_int_eq(rc, paths[i][0] == '\0' ? -ENOTSUP : 0);
        ck_assert_int_eq(weft_parallel_for(p, 0, 4, 1, body_1ms, NULL), 0);
        ck_assert_int_eq(weft_region_end(&r, NULL), rc);
        tu_pool_check_works(p);
        tu_pool_free(p);
        tu_env_restore(&e);
    }
    ck_assert(!file_exists(missing));
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    rmdir(dir);

    /* %n and %p: a file per pool */
    tw_file file;
    tw_file_init(&file, "ws-%n-%p.json");
    tu_env_saved e = tu_env_set("WEFT_WORKSPAN", file.path);
    weft_pool *a = tu_pool_new(1, "alpha");
    weft_pool *b = tu_pool_new(1, "beta");
    tu_pool_check_works(a);
    tu_pool_free(a);
    tu_pool_free(b);
    tu_env_restore(&e);
    const char *names[] = {"alpha", "beta"};
    for (int k = 0; k < 2; k++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/ws-%s-%ld.json", file.dir, names[k], (long)getpid());
        json_t *doc = read_ws(path);
        ck_assert_int_eq(num(doc, "tasks"), k == 0 ? 1 : 0);
        ck_assert_int_eq(num(doc, "workers"), 1);
        json_decref(doc);
        unlink(path);
    }
    rmdir(file.dir);
}
END_TEST

/* Without the variable a pool writes nothing, and a pool created before it is set ignores it. */
START_TEST(test_off_writes_nothing)
{
    tw_file file;
    tw_file_init(&file, "off.json");
    tu_env_saved e = tu_env_set("WEFT_WORKSPAN", NULL);
    weft_pool *p = tu_pool_new(2, "off");
    tu_env_saved e2 = tu_env_set("WEFT_WORKSPAN", file.path);
    ck_assert_int_eq(weft_parallel_for(p, 0, 4, 1, body_1ms, NULL), 0);
    tu_pool_free(p);
    tu_env_restore(&e2);
    tu_env_restore(&e);
    ck_assert(!file_exists(file.path));
    tw_file_done(&file);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("workspan");
    TCase *tc = tcase_create("graph");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_chain_has_no_parallelism, 0, 3);
    tcase_add_loop_test(tc, test_loop_parallelism_on_any_pool, 0, 3);
    tcase_add_loop_test(tc, test_reduce_parallelism, 0, 3);
    tcase_add_loop_test(tc, test_fib_join, 0, 3);
    tcase_add_loop_test(tc, test_fib_offer, 0, 3);
    tcase_add_loop_test(tc, test_offer_tree_like_scope, 0, 3);
    tcase_add_loop_test(tc, test_offer_loop_in_series, 0, 3);
    tcase_add_test(tc, test_offer_deep_nesting);
    tcase_add_loop_test(tc, test_scope_and_futures, 0, 3);
    tcase_add_loop_test(tc, test_promises, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("regions");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_nested_regions_add_up, 0, 3);
    tcase_add_test(tc, test_region_names_and_counts);
    tcase_add_test(tc, test_region_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_off_writes_nothing);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
