/* SPDX-License-Identifier: MIT */
/*
 * Parallel loops: weft_parallel_for and weft_parallel_reduce.
 *
 * Every index of [begin, end) exactly once, on ranges that are non-empty, inside the loop and
 * at most grain long, on every pool size, called from the test thread, from inside a task (with
 * the pool and with NULL for the caller's pool) and from a worker of another pool; empty ranges,
 * every -EINVAL, -ESHUTDOWN from outside a shut-down pool, loops that keep going through a
 * shutdown, ranges that end at SIZE_MAX, skewed and nested loops, weft_cancel_requested() in
 * bodies. Reductions: the closed-form sum, non-commutative operators (2x2 matrices modulo a
 * prime, string concatenation in a 256-byte accumulator) equal to the serial fold, the identity
 * for empty ranges, and every -EINVAL with the result left untouched.
 *
 * Bodies run on workers: they record failures in atomics or with TU_EXPECT, and the test thread
 * asserts.
 */
#include "joinutil.h"

static size_t loop_n(void)
{
    return (size_t)(10000 * tu_stress_scale());
}

/* ---------------------------------------------------------------------------------------------
 * A body that checks its ranges and counts visits per index
 */

typedef struct pf_ctx {
    size_t begin, end;
    size_t grain;     /* 0: range lengths not checked */
    atomic_int *hits; /* end - begin counters; NULL: indices not counted */
    atomic_long calls;
    atomic_int empty, outside, too_long, wrong_pool, wrong_cancel;
    weft_pool *pool;   /* bodies must run on its workers (NULL: not checked) */
    int expect_cancel; /* -1: not checked; else what weft_cancel_requested() must answer */
    uint64_t skew;     /* extra work per index: (i - begin) * skew steps */
    atomic_ullong sink;
    /* optional gating: the first body opens `started`, every body waits for `resume` */
    tu_gate *started, *resume;
    atomic_int first;
} pf_ctx;

static void pf_init(pf_ctx *c, size_t begin, size_t end, size_t grain, weft_pool *pool, bool count)
{
    memset(c, 0, sizeof(*c));
    c->begin = begin;
    c->end = end;
    c->grain = grain;
    c->pool = pool;
    c->expect_cancel = -1;
    if (count && end > begin) {
        c->hits = calloc(end - begin, sizeof(*c->hits));
        ck_assert_ptr_nonnull(c->hits);
    }
}

/* Checks and counts lo..hi-1; false if the range itself is bad (then nothing is counted). */
static bool pf_visit(pf_ctx *c, size_t lo, size_t hi)
{
    atomic_fetch_add(&c->calls, 1);
    if (lo >= hi) {
        atomic_fetch_add(&c->empty, 1);
        return false;
    }
    if (lo < c->begin || hi > c->end) {
        atomic_fetch_add(&c->outside, 1);
        return false;
    }
    if (c->grain != 0 && hi - lo > c->grain)
        atomic_fetch_add(&c->too_long, 1);
    if (c->pool != NULL && jt_current_pool() != c->pool)
        atomic_fetch_add(&c->wrong_pool, 1);
    if (c->expect_cancel >= 0 && weft_cancel_requested() != (c->expect_cancel != 0))
        atomic_fetch_add(&c->wrong_cancel, 1);
    if (c->resume != NULL) {
        if (atomic_exchange(&c->first, 1) == 0)
            tu_gate_open(c->started);
        TU_EXPECT(tu_gate_wait(c->resume));
    }
    uint64_t x = 0;
    for (size_t i = lo; i < hi; i++) {
        if (c->skew != 0)
            x ^= jt_work(i, (uint64_t)(i - c->begin) * c->skew);
        if (c->hits != NULL)
            atomic_fetch_add(&c->hits[i - c->begin], 1);
    }
    if (x != 0)
        atomic_fetch_xor(&c->sink, x);
    return true;
}

static void pf_body(size_t lo, size_t hi, void *arg)
{
    pf_visit(arg, lo, hi);
}

/* Test thread only: asserts what the bodies saw, and frees the counters. */
static void pf_check(pf_ctx *c, const char *what)
{
    ck_assert_msg(atomic_load(&c->empty) == 0, "%s: %d empty ranges", what, atomic_load(&c->empty));
    ck_assert_msg(atomic_load(&c->outside) == 0, "%s: %d ranges outside [begin, end)", what,
                  atomic_load(&c->outside));
    ck_assert_msg(atomic_load(&c->too_long) == 0, "%s: %d ranges longer than grain %zu", what,
                  atomic_load(&c->too_long), c->grain);
    ck_assert_msg(atomic_load(&c->wrong_pool) == 0, "%s: %d bodies ran off the loop's pool", what,
                  atomic_load(&c->wrong_pool));
    ck_assert_msg(atomic_load(&c->wrong_cancel) == 0,
                  "%s: %d bodies got the wrong weft_cancel_requested() (want %d)", what,
                  atomic_load(&c->wrong_cancel), c->expect_cancel);
    if (c->hits != NULL) {
        for (size_t i = 0; i < c->end - c->begin; i++) {
            int h = atomic_load(&c->hits[i]);
            ck_assert_msg(h == 1, "%s: index begin + %zu visited %d times", what, i, h);
        }
    }
    free(c->hits);
    c->hits = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Calling the loops from the different places
 */

enum via {
    VIA_OUTSIDE,     /* the test thread */
    VIA_INSIDE,      /* a task of the pool, passing the pool */
    VIA_INSIDE_NULL, /* a task of the pool, passing NULL */
    VIA_OTHER_POOL,  /* a task of another pool, passing the pool */
    VIA_COUNT
};

static const char *via_name(enum via v)
{
    static const char *names[] = {"outside", "inside", "inside (NULL)", "other pool"};
    return names[v];
}

typedef struct loop_call {
    weft_pool *pool; /* what to pass */
    size_t begin, end, grain;
    void (*body)(size_t, size_t, void *);
    void *ctx;
    bool reduce; /* weft_parallel_reduce with the fields below, else weft_parallel_for */
    void (*rbody)(size_t, size_t, void *, void *);
    void (*combine)(void *, const void *, void *);
    size_t acc_size;
    const void *identity;
    void *result;
    int rc;
} loop_call;

static void loop_call_run(void *arg)
{
    loop_call *l = arg;
    if (l->reduce)
        l->rc = weft_parallel_reduce(l->pool, l->begin, l->end, l->grain, l->acc_size, l->identity,
                                     l->rbody, l->combine, l->ctx, l->result);
    else
        l->rc = weft_parallel_for(l->pool, l->begin, l->end, l->grain, l->body, l->ctx);
}

/* Test thread only: makes the call *l on `pool` from where `via` says (`other` is a pool of
 * which the test thread is not a worker) and returns its code. */
static int loop_via(enum via via, weft_pool *pool, weft_pool *other, loop_call *l)
{
    switch (via) {
    case VIA_OUTSIDE:
        l->pool = pool;
        loop_call_run(l);
        break;
    case VIA_INSIDE:
        l->pool = pool;
        jt_run(pool, loop_call_run, l);
        break;
    case VIA_INSIDE_NULL:
        l->pool = NULL;
        jt_run(pool, loop_call_run, l);
        break;
    default:
        l->pool = pool;
        jt_run(other, loop_call_run, l);
        break;
    }
    return l->rc;
}

static int pf_via(enum via via, weft_pool *pool, weft_pool *other, pf_ctx *c)
{
    loop_call l = {.begin = c->begin, .end = c->end, .grain = c->grain, .body = pf_body, .ctx = c};
    return loop_via(via, pool, other, &l);
}

/* ---------------------------------------------------------------------------------------------
 * parallel_for: every index once, on every pool size, from everywhere
 */

START_TEST(test_pf_every_pool_size)
{
    tu_failures_reset();
    size_t n = loop_n();
    const size_t grains[] = {0, 1, 7, 1000, n + 1, SIZE_MAX};
    weft_pool *other = jt_pool_new(2);
    for (unsigned nw = 1; nw <= 8; nw++) {
        weft_pool *p = jt_pool_new(nw);
        for (int v = 0; v < VIA_COUNT; v++) {
            for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
                char what[96];
                snprintf(what, sizeof(what), "pool %u, %s, grain %zu", nw, via_name(v), grains[g]);
                pf_ctx c;
                pf_init(&c, 3, 3 + n, grains[g], p, true);
                int rc = pf_via(v, p, other, &c);
                ck_assert_msg(rc == 0, "%s: rc %d", what, rc);
                pf_check(&c, what);
            }
        }
        tu_pool_free(p);
    }
    tu_pool_free(other);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_pf_empty_range_calls_nothing)
{
    tu_failures_reset();
    const size_t at[] = {0, 5, SIZE_MAX};
    weft_pool *other = jt_pool_new(1);
    weft_pool *p = jt_pool_new(3);
    for (int v = 0; v < VIA_COUNT; v++) {
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
            for (size_t grain = 0; grain <= 7; grain += 7) {
                pf_ctx c;
                pf_init(&c, at[k], at[k], grain, p, false);
                ck_assert_int_eq(pf_via(v, p, other, &c), 0);
                ck_assert_msg(atomic_load(&c.calls) == 0, "%s, [%zu, %zu): %ld body calls",
                              via_name(v), at[k], at[k], atomic_load(&c.calls));
            }
        }
    }
    tu_pool_free(p);
    tu_pool_free(other);
}
END_TEST

START_TEST(test_pf_einval)
{
    tu_failures_reset();
    weft_pool *other = jt_pool_new(1);
    weft_pool *p = jt_pool_new(2);
    for (int v = 0; v < VIA_COUNT; v++) {
        pf_ctx c;
        pf_init(&c, 0, 100, 0, p, false);
        /* begin > end */
        loop_call l = {.begin = 10, .end = 9, .body = pf_body, .ctx = &c};
        ck_assert_int_eq(loop_via(v, p, other, &l), -EINVAL);
        l = (loop_call){.begin = SIZE_MAX, .end = 0, .grain = 1, .body = pf_body, .ctx = &c};
        ck_assert_int_eq(loop_via(v, p, other, &l), -EINVAL);
        /* body NULL, on a non-empty and an empty range */
        l = (loop_call){.begin = 0, .end = 100, .body = NULL, .ctx = &c};
        ck_assert_int_eq(loop_via(v, p, other, &l), -EINVAL);
        l = (loop_call){.begin = 4, .end = 4, .body = NULL, .ctx = &c};
        ck_assert_int_eq(loop_via(v, p, other, &l), -EINVAL);
        JT_ASSERT_ATOMIC_EQ(&c.calls, 0);
    }
    /* pool NULL outside any pool */
    pf_ctx c;
    pf_init(&c, 0, 100, 0, NULL, false);
    ck_assert_int_eq(weft_parallel_for(NULL, 0, 100, 0, pf_body, &c), -EINVAL);
    ck_assert_int_eq(weft_parallel_for(NULL, 0, 100, 7, pf_body, &c), -EINVAL);
    JT_ASSERT_ATOMIC_EQ(&c.calls, 0);
    /* the pools still work */
    pf_init(&c, 0, 100, 0, p, true);
    ck_assert_int_eq(weft_parallel_for(p, 0, 100, 0, pf_body, &c), 0);
    pf_check(&c, "after the errors");
    tu_pool_free(p);
    tu_pool_free(other);
}
END_TEST

static void *pf_null_pool_thread(void *arg)
{
    pf_ctx *c = arg;
    TU_EXPECT(weft_parallel_for(NULL, 0, 100, 0, pf_body, c) == -EINVAL);
    return NULL;
}

START_TEST(test_pf_null_pool_on_plain_thread)
{
    tu_failures_reset();
    weft_pool *p = jt_pool_new(2); /* a pool exists, but the thread is none of its workers */
    pf_ctx c;
    pf_init(&c, 0, 100, 0, NULL, false);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, pf_null_pool_thread, &c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    TU_ASSERT_NO_FAILURES();
    JT_ASSERT_ATOMIC_EQ(&c.calls, 0);
    tu_pool_free(p);
}
END_TEST

/* Inside a task, NULL is the calling worker's pool even when other pools exist; an explicit
 * other pool runs the bodies there, never on the caller's thread. */
START_TEST(test_pf_pool_null_is_the_callers_pool)
{
    tu_failures_reset();
    weft_pool *a = jt_pool_new(3);
    weft_pool *b = jt_pool_new(2);
    size_t n = 5000;
    pf_ctx c;
    pf_init(&c, 0, n, 1, a, true);
    ck_assert_int_eq(pf_via(VIA_INSIDE_NULL, a, b, &c), 0);
    pf_check(&c, "NULL inside a");
    pf_init(&c, 0, n, 1, b, true);
    ck_assert_int_eq(pf_via(VIA_INSIDE_NULL, b, a, &c), 0);
    pf_check(&c, "NULL inside b");
    pf_init(&c, 0, n, 1, b, true);
    ck_assert_int_eq(pf_via(VIA_OTHER_POOL, b, a, &c), 0);
    pf_check(&c, "b from a task of a");
    pf_init(&c, 0, n, 1, a, true);
    ck_assert_int_eq(pf_via(VIA_OUTSIDE, a, b, &c), 0);
    pf_check(&c, "a from the test thread");
    tu_pool_free(a);
    tu_pool_free(b);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Called on another pool's worker, parallel_for waits by helping: a task queued on the caller's
 * single worker runs while the loop's bodies wait for it. */
typedef struct help_ctx {
    weft_pool *target;
    atomic_int helped;
    pf_ctx pf;
    int rc;
} help_ctx;

static void help_body(size_t lo, size_t hi, void *arg)
{
    help_ctx *h = arg;
    if (lo == 0)
        TU_EXPECT(tu_wait_atomic_ge(&h->helped, 1, TU_PATIENCE_S));
    pf_visit(&h->pf, lo, hi);
}

static void help_run(void *arg)
{
    help_ctx *h = arg;
    weft_pool *mine = jt_current_pool();
    int rc = weft_submit(mine, tu_task_count, &h->helped, NULL); /* onto this worker's deque */
    TU_EXPECT(rc == 0);
    h->rc = weft_parallel_for(h->target, 0, h->pf.end, 0, help_body, h);
}

START_TEST(test_pf_from_other_pool_helps)
{
    tu_failures_reset();
    weft_pool *a = jt_pool_new(1);
    weft_pool *b = jt_pool_new(2);
    help_ctx *h = calloc(1, sizeof(*h));
    ck_assert_ptr_nonnull(h);
    h->target = b;
    atomic_init(&h->helped, 0);
    pf_init(&h->pf, 0, 1000, 0, b, true);
    jt_run(a, help_run, h);
    ck_assert_int_eq(h->rc, 0);
    JT_ASSERT_ATOMIC_EQ(&h->helped, 1);
    pf_check(&h->pf, "b from a's only worker");
    tu_pool_free(a);
    tu_pool_free(b);
    TU_ASSERT_NO_FAILURES();
    free(h);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Ranges that end at SIZE_MAX
 */

START_TEST(test_pf_near_size_max)
{
    tu_failures_reset();
    const size_t grains[] = {0, 1, 7, 1000, 5000, SIZE_MAX};
    const size_t begins[] = {SIZE_MAX - 1000, SIZE_MAX - 1, SIZE_MAX - 4097};
    for (unsigned nw = 1; nw <= 8; nw *= 2) {
        weft_pool *p = jt_pool_new(nw);
        for (int v = 0; v < VIA_INSIDE_NULL; v++) {
            for (size_t b = 0; b < sizeof(begins) / sizeof(begins[0]); b++) {
                for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
                    char what[128];
                    snprintf(what, sizeof(what),
                             "pool %u, %s, [SIZE_MAX - %zu, SIZE_MAX) grain %zu", nw, via_name(v),
                             SIZE_MAX - begins[b], grains[g]);
                    pf_ctx c;
                    pf_init(&c, begins[b], SIZE_MAX, grains[g], p, true);
                    ck_assert_msg(pf_via(v, p, NULL, &c) == 0, "%s", what);
                    pf_check(&c, what);
                }
            }
        }
        tu_pool_free(p);
    }
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* Huge ranges, up to all of [0, SIZE_MAX), with big grains: the ranges the bodies get are
 * recorded, and must tile the loop exactly. */
#define TILE_CAP 8192

typedef struct tile_ctx {
    size_t begin, end, grain;
    atomic_int n;
    atomic_int overflow, bad;
    size_t lo[TILE_CAP], hi[TILE_CAP];
} tile_ctx;

static void tile_body(size_t lo, size_t hi, void *arg)
{
    tile_ctx *t = arg;
    if (lo >= hi || lo < t->begin || hi > t->end || (t->grain != 0 && hi - lo > t->grain))
        atomic_fetch_add(&t->bad, 1);
    int i = atomic_fetch_add(&t->n, 1);
    if (i >= TILE_CAP) {
        atomic_fetch_add(&t->overflow, 1);
        return;
    }
    t->lo[i] = lo;
    t->hi[i] = hi;
}

static int tile_cmp(const void *x, const void *y)
{
    const size_t *a = x, *b = y;
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

/* Test thread only. Returns the number of ranges. */
static int tile_check(tile_ctx *t, const char *what)
{
    ck_assert_msg(atomic_load(&t->bad) == 0, "%s: %d bad ranges", what, atomic_load(&t->bad));
    ck_assert_msg(atomic_load(&t->overflow) == 0, "%s: more than %d ranges", what, TILE_CAP);
    int n = atomic_load(&t->n);
    size_t(*r)[2] = malloc(sizeof(*r) * (size_t)(n > 0 ? n : 1));
    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < n; i++) {
        r[i][0] = t->lo[i];
        r[i][1] = t->hi[i];
    }
    qsort(r, (size_t)n, sizeof(*r), tile_cmp);
    ck_assert_msg(n >= 1, "%s: no range", what);
    ck_assert_msg(r[0][0] == t->begin, "%s: first range starts at %zu", what, r[0][0]);
    for (int i = 1; i < n; i++)
        ck_assert_msg(r[i][0] == r[i - 1][1], "%s: range %d starts at %zu, previous ends at %zu",
                      what, i, r[i][0], r[i - 1][1]);
    ck_assert_msg(r[n - 1][1] == t->end, "%s: last range ends at %zu", what, r[n - 1][1]);
    free(r);
    return n;
}

START_TEST(test_pf_huge_ranges_tile)
{
    tu_failures_reset();
    const size_t begins[] = {0, 1, SIZE_MAX / 3, SIZE_MAX - 100000};
    const size_t grains[] = {0, SIZE_MAX / 8 + 1, SIZE_MAX / 1000, SIZE_MAX};
    tile_ctx *t = malloc(sizeof(*t));
    ck_assert_ptr_nonnull(t);
    for (unsigned nw = 1; nw <= 8; nw *= 2) {
        weft_pool *p = jt_pool_new(nw);
        for (size_t b = 0; b < sizeof(begins) / sizeof(begins[0]); b++) {
            for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
                char what[128];
                snprintf(what, sizeof(what), "pool %u, [%zu, SIZE_MAX), grain %zu", nw, begins[b],
                         grains[g]);
                t->begin = begins[b];
                t->end = SIZE_MAX;
                t->grain = grains[g];
                atomic_init(&t->n, 0);
                atomic_init(&t->overflow, 0);
                atomic_init(&t->bad, 0);
                ck_assert_msg(weft_parallel_for(p, t->begin, t->end, t->grain, tile_body, t) == 0,
                              "%s", what);
                int n = tile_check(t, what);
                if (grains[g] == 0) {
                    /* "about 16 ranges per worker at most", with room for splitting remnants */
                    ck_assert_msg(n <= 64 * (int)nw + 64, "%s: %d ranges with grain 0", what, n);
                }
            }
        }
        tu_pool_free(p);
    }
    free(t);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Skewed and nested loops
 */

START_TEST(test_pf_skewed)
{
    tu_failures_reset();
    size_t n = 2000;
    const size_t grains[] = {0, 1, 16};
    for (unsigned nw = 1; nw <= 8; nw++) {
        weft_pool *p = jt_pool_new(nw);
        for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
            char what[64];
            snprintf(what, sizeof(what), "pool %u, skewed, grain %zu", nw, grains[g]);
            pf_ctx c;
            pf_init(&c, 0, n, grains[g], p, true);
            c.skew = 20;
            ck_assert_msg(pf_via(g == 1 ? VIA_INSIDE : VIA_OUTSIDE, p, NULL, &c) == 0, "%s", what);
            pf_check(&c, what);
        }
        tu_pool_free(p);
    }
}
END_TEST

#define NEST_OUTER 24
#define NEST_INNER 200

typedef struct nest_ctx {
    weft_pool *pool;
    bool inner_null; /* pass NULL for the inner loops */
    size_t inner_grain;
    pf_ctx outer;
    pf_ctx inner[NEST_OUTER];
    atomic_int inner_rc_bad;
} nest_ctx;

static void nest_body(size_t lo, size_t hi, void *arg)
{
    nest_ctx *c = arg;
    if (!pf_visit(&c->outer, lo, hi))
        return;
    for (size_t i = lo; i < hi; i++) {
        int rc = weft_parallel_for(c->inner_null ? NULL : c->pool, 0, NEST_INNER, c->inner_grain,
                                   pf_body, &c->inner[i]);
        if (rc != 0)
            atomic_fetch_add(&c->inner_rc_bad, 1);
    }
}

START_TEST(test_pf_nested)
{
    tu_failures_reset();
    nest_ctx *c = malloc(sizeof(*c));
    ck_assert_ptr_nonnull(c);
    for (unsigned nw = 1; nw <= 8; nw *= 2) {
        weft_pool *p = jt_pool_new(nw);
        for (int k = 0; k < 4; k++) {
            enum via via = k % 2 == 0 ? VIA_OUTSIDE : VIA_INSIDE;
            c->pool = p;
            c->inner_null = k >= 2;
            c->inner_grain = k == 1 ? 7 : 0;
            atomic_init(&c->inner_rc_bad, 0);
            pf_init(&c->outer, 0, NEST_OUTER, 1, p, true);
            for (int i = 0; i < NEST_OUTER; i++)
                pf_init(&c->inner[i], 0, NEST_INNER, c->inner_grain, p, true);
            loop_call l = {.begin = 0, .end = NEST_OUTER, .grain = 1, .body = nest_body, .ctx = c};
            ck_assert_int_eq(loop_via(via, p, NULL, &l), 0);
            JT_ASSERT_ATOMIC_EQ(&c->inner_rc_bad, 0);
            char what[64];
            snprintf(what, sizeof(what), "pool %u, nested case %d", nw, k);
            pf_check(&c->outer, what);
            for (int i = 0; i < NEST_OUTER; i++)
                pf_check(&c->inner[i], what);
        }
        tu_pool_free(p);
    }
    free(c);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * weft_cancel_requested() in loop bodies answers for the task that called the loop
 *
 * The first body on the caller's worker keeps it busy until a body ran on another worker, so
 * that some ranges surely run elsewhere.
 */

typedef struct lc_ctx {
    weft_pool *pool;
    tu_gate started, go;
    int caller;
    bool spin; /* the caller's first body waits for a body elsewhere (pools of 2+) */
    atomic_int elsewhere, spun;
    pf_ctx pf;
    int rc;
} lc_ctx;

static void lc_body(size_t lo, size_t hi, void *arg)
{
    lc_ctx *c = arg;
    if (weft_worker_index() != c->caller)
        atomic_store(&c->elsewhere, 1);
    else if (c->spin && atomic_exchange(&c->spun, 1) == 0)
        (void)jt_spin_until(&c->elsewhere, 2.0);
    pf_visit(&c->pf, lo, hi);
}

static int lc_task(void *arg, void **result)
{
    (void)result;
    lc_ctx *c = arg;
    tu_gate_open(&c->started);
    TU_EXPECT(tu_gate_wait(&c->go));
    c->caller = weft_worker_index();
    c->rc = weft_parallel_for(NULL, c->pf.begin, c->pf.end, c->pf.grain, lc_body, c);
    return 0;
}

static void lc_run(unsigned nw, bool cancel)
{
    lc_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    weft_pool *p = jt_pool_new(nw);
    tu_gate_init(&c->started);
    tu_gate_init(&c->go);
    pf_init(&c->pf, 0, 4000, 0, p, true);
    c->spin = nw > 1;
    c->pf.expect_cancel = cancel ? 1 : 0;
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, lc_task, c, &f), 0);
    ck_assert(tu_gate_wait(&c->started));
    if (cancel)
        ck_assert_int_eq(weft_future_cancel(f), 0);
    tu_gate_open(&c->go);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(c->rc, 0);
    if (nw > 1)
        ck_assert_msg(atomic_load(&c->elsewhere), "pool of %u: every body ran on the caller", nw);
    pf_check(&c->pf, cancel ? "cancelled task" : "task not cancelled");
    free(c);
}

START_TEST(test_pf_cancel_requested_in_bodies)
{
    tu_failures_reset();
    for (unsigned nw = 1; nw <= 4; nw++) {
        lc_run(nw, true);
        lc_run(nw, false);
    }
    /* from the test thread there is no task of the caller's: bodies see no request */
    weft_pool *p = jt_pool_new(2);
    pf_ctx c;
    pf_init(&c, 0, 1000, 3, p, true);
    c.expect_cancel = 0;
    ck_assert_int_eq(weft_parallel_for(p, 0, 1000, 3, pf_body, &c), 0);
    pf_check(&c, "from the test thread");
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown
 */

static void sum_body(size_t lo, size_t hi, void *acc, void *ctx);
static void sum_combine(void *acc, const void *other, void *ctx);

START_TEST(test_pf_shut_down_pool_from_outside)
{
    tu_failures_reset();
    for (int mode = WEFT_SHUTDOWN_DRAIN; mode <= WEFT_SHUTDOWN_CANCEL; mode++) {
        weft_pool *p = jt_pool_new(2);
        weft_pool *other = jt_pool_new(1);
        ck_assert_int_eq(weft_pool_shutdown(p, (weft_shutdown_mode)mode), 0);
        pf_ctx c;
        pf_init(&c, 0, 1000, 0, p, false);
        ck_assert_int_eq(pf_via(VIA_OUTSIDE, p, other, &c), -ESHUTDOWN);
        ck_assert_int_eq(pf_via(VIA_OTHER_POOL, p, other, &c), -ESHUTDOWN);
        uint64_t id = 0, res = 12345;
        loop_call l = {.begin = 0,
                       .end = 1000,
                       .reduce = true,
                       .rbody = sum_body,
                       .combine = sum_combine,
                       .acc_size = sizeof(uint64_t),
                       .identity = &id,
                       .result = &res,
                       .ctx = &c};
        ck_assert_int_eq(loop_via(VIA_OUTSIDE, p, other, &l), -ESHUTDOWN);
        ck_assert_int_eq(loop_via(VIA_OTHER_POOL, p, other, &l), -ESHUTDOWN);
        ck_assert_uint_eq(res, 12345);
        JT_ASSERT_ATOMIC_EQ(&c.calls, 0);
        tu_pool_free(p);
        tu_pool_free(other);
    }
}
END_TEST

/* A task that started before the shutdown still runs loops on its pool (passed or NULL). */
typedef struct sdi_ctx {
    weft_pool *pool;
    tu_gate started, go;
    pf_ctx a, b, r;
    int rc_a, rc_b, rc_r;
    uint64_t sum;
} sdi_ctx;

static int sdi_task(void *arg, void **result)
{
    (void)result;
    sdi_ctx *c = arg;
    tu_gate_open(&c->started);
    TU_EXPECT(tu_gate_wait(&c->go));
    c->rc_a = weft_parallel_for(c->pool, 0, c->a.end, 1, pf_body, &c->a);
    c->rc_b = weft_parallel_for(NULL, 0, c->b.end, 0, pf_body, &c->b);
    uint64_t id = 0;
    c->rc_r = weft_parallel_reduce(NULL, 0, c->r.end, 5, sizeof(uint64_t), &id, sum_body,
                                   sum_combine, &c->r, &c->sum);
    return 0;
}

START_TEST(test_pf_inside_shut_down_pool)
{
    tu_failures_reset();
    for (unsigned nw = 1; nw <= 4; nw++) {
        sdi_ctx *c = calloc(1, sizeof(*c));
        ck_assert_ptr_nonnull(c);
        weft_pool *p = jt_pool_new(nw);
        c->pool = p;
        tu_gate_init(&c->started);
        tu_gate_init(&c->go);
        pf_init(&c->a, 0, 3000, 1, p, true);
        pf_init(&c->b, 0, 3000, 0, p, true);
        pf_init(&c->r, 0, 3000, 5, p, true);
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, sdi_task, c, &f), 0);
        ck_assert(tu_gate_wait(&c->started));
        ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
        tu_gate_open(&c->go);
        ck_assert_int_eq(weft_future_result(f, NULL), 0);
        ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
        weft_future_release(f);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
        ck_assert_int_eq(c->rc_a, 0);
        ck_assert_int_eq(c->rc_b, 0);
        ck_assert_int_eq(c->rc_r, 0);
        ck_assert_uint_eq(c->sum, 3000u * 2999u / 2);
        pf_check(&c->a, "inside, pool passed");
        pf_check(&c->b, "inside, NULL");
        pf_check(&c->r, "inside, reduce");
        free(c);
    }
}
END_TEST

/* A loop in progress when the pool is shut down with CANCEL: every body waits until the test
 * thread has shut the pool down (so the deques hold the split halves), then the loop must still
 * visit every index once. The loop is called from inside a task, from a plain thread, or from a
 * worker of another pool. */
enum sdl_from { SDL_TASK, SDL_THREAD, SDL_OTHER_POOL };

typedef struct sdl_ctx {
    weft_pool *pool;
    tu_gate started, resume;
    pf_ctx pf;
    bool reduce;
    uint64_t sum;
    int rc;
} sdl_ctx;

static void sdl_call(void *arg)
{
    sdl_ctx *c = arg;
    if (c->reduce) {
        uint64_t id = 0;
        c->rc = weft_parallel_reduce(c->pool, c->pf.begin, c->pf.end, c->pf.grain, sizeof(uint64_t),
                                     &id, sum_body, sum_combine, &c->pf, &c->sum);
    } else {
        c->rc = weft_parallel_for(c->pool, c->pf.begin, c->pf.end, c->pf.grain, pf_body, &c->pf);
    }
}

static int sdl_task(void *arg, void **result)
{
    (void)result;
    sdl_call(arg);
    return 0;
}

static void *sdl_thread(void *arg)
{
    sdl_call(arg);
    return NULL;
}

static void sdl_case(unsigned nw, enum sdl_from from, bool reduce)
{
    size_t n = 2000;
    sdl_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    weft_pool *p = jt_pool_new(nw);
    weft_pool *other = from == SDL_OTHER_POOL ? jt_pool_new(1) : NULL;
    c->pool = p;
    c->reduce = reduce;
    c->rc = 1;
    tu_gate_init(&c->started);
    tu_gate_init(&c->resume);
    pf_init(&c->pf, 0, n, 1, p, true);
    c->pf.started = &c->started;
    c->pf.resume = &c->resume;
    weft_future *f = NULL;
    pthread_t th;
    if (from == SDL_THREAD)
        ck_assert_int_eq(pthread_create(&th, NULL, sdl_thread, c), 0);
    else
        ck_assert_int_eq(weft_submit(from == SDL_TASK ? p : other, sdl_task, c, &f), 0);
    ck_assert(tu_gate_wait(&c->started));
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    tu_gate_open(&c->resume);
    if (from == SDL_THREAD) {
        ck_assert_int_eq(pthread_join(th, NULL), 0);
    } else {
        ck_assert_int_eq(weft_future_result(f, NULL), 0);
        ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
        weft_future_release(f);
    }
    tu_pool_free(p);
    tu_pool_free(other);
    TU_ASSERT_NO_FAILURES();
    ck_assert_msg(c->rc == 0, "pool %u, from %d, %s: rc %d (%s)", nw, (int)from,
                  reduce ? "reduce" : "for", c->rc, weft_strerror(c->rc));
    if (reduce)
        ck_assert_uint_eq(c->sum, (uint64_t)n * (n - 1) / 2);
    pf_check(&c->pf, "loop through a shutdown");
    free(c);
}

START_TEST(test_pf_shutdown_during_loop)
{
    tu_failures_reset();
    for (unsigned nw = 1; nw <= 4; nw++) {
        sdl_case(nw, SDL_TASK, false);
        sdl_case(nw, SDL_THREAD, false);
        sdl_case(nw, SDL_OTHER_POOL, false);
        sdl_case(nw, SDL_TASK, true);
        sdl_case(nw, SDL_THREAD, true);
    }
}
END_TEST

/* A loop called from outside whose work has not started yet when the pool is shut down with
 * CANCEL: it either runs completely (0) or calls nothing and fails with -ESHUTDOWN, the one
 * shutdown error weft_parallel_for documents. */
typedef struct pend_ctx {
    weft_pool *pool;
    pf_ctx pf;
    atomic_int entered;
    int rc;
} pend_ctx;

static void *pend_thread(void *arg)
{
    pend_ctx *c = arg;
    atomic_store(&c->entered, 1);
    c->rc = weft_parallel_for(c->pool, 0, c->pf.end, 0, pf_body, &c->pf);
    return NULL;
}

START_TEST(test_pf_outside_pending_at_shutdown)
{
    tu_failures_reset();
    weft_pool *p = jt_pool_new(1);
    tu_gate busy;
    tu_gate_init(&busy);
    weft_future *blocker = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_gate, &busy, &blocker), 0);
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (weft_future_state(blocker) != WEFT_RUNNING && tu_now_ns() < deadline)
        tu_sleep_ms(1);
    ck_assert_int_eq(weft_future_state(blocker), WEFT_RUNNING);
    pend_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->pool = p;
    c->rc = 1;
    pf_init(&c->pf, 0, 500, 0, p, true);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, pend_thread, c), 0);
    ck_assert(tu_wait_atomic_ge(&c->entered, 1, TU_PATIENCE_S));
    tu_sleep_ms(100); /* the loop's work is queued behind the blocker by now */
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    tu_gate_open(&busy);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    weft_future_release(blocker);
    tu_pool_free(p);
    long calls = atomic_load(&c->pf.calls);
    ck_assert_msg(c->rc == 0 || (c->rc == -ESHUTDOWN && calls == 0),
                  "weft_parallel_for = %d (%s) with %ld body calls; want 0 (all done) or "
                  "-ESHUTDOWN (nothing called)",
                  c->rc, weft_strerror(c->rc), calls);
    if (c->rc == 0)
        pf_check(&c->pf, "pending loop");
    free(c->pf.hits);
    free(c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * parallel_reduce: sums
 */

static void sum_body(size_t lo, size_t hi, void *acc, void *ctx)
{
    if (!pf_visit(ctx, lo, hi))
        return;
    uint64_t s = 0;
    for (size_t i = lo; i < hi; i++)
        s += (uint64_t)i;
    *(uint64_t *)acc += s;
}

static void sum_combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc += *(const uint64_t *)other;
}

START_TEST(test_reduce_sum_every_pool_size)
{
    tu_failures_reset();
    size_t n = 2 * loop_n();
    const size_t grains[] = {0, 1, 7, 1000, n + 1};
    weft_pool *other = jt_pool_new(2);
    for (unsigned nw = 1; nw <= 8; nw++) {
        weft_pool *p = jt_pool_new(nw);
        for (int v = 0; v < VIA_COUNT; v++) {
            for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
                char what[96];
                snprintf(what, sizeof(what), "pool %u, %s, grain %zu", nw, via_name(v), grains[g]);
                pf_ctx c;
                pf_init(&c, 0, n, grains[g], p, true);
                uint64_t id = 0, res = 1;
                loop_call l = {.begin = 0,
                               .end = n,
                               .grain = grains[g],
                               .reduce = true,
                               .rbody = sum_body,
                               .combine = sum_combine,
                               .acc_size = sizeof(uint64_t),
                               .identity = &id,
                               .result = &res,
                               .ctx = &c};
                ck_assert_msg(loop_via(v, p, other, &l) == 0, "%s", what);
                ck_assert_msg(res == (uint64_t)n * (n - 1) / 2, "%s: sum %llu, want %llu", what,
                              (unsigned long long)res,
                              (unsigned long long)((uint64_t)n * (n - 1) / 2));
                pf_check(&c, what);
            }
        }
        tu_pool_free(p);
    }
    tu_pool_free(other);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * parallel_reduce: non-commutative operators
 */

#define MAT_P 1000003u

typedef struct mat {
    uint64_t a, b, c, d; /* [[a, b], [c, d]] modulo MAT_P */
} mat;

static mat mat_mul(mat x, mat y)
{
    mat r = {(x.a * y.a + x.b * y.c) % MAT_P, (x.a * y.b + x.b * y.d) % MAT_P,
             (x.c * y.a + x.d * y.c) % MAT_P, (x.c * y.b + x.d * y.d) % MAT_P};
    return r;
}

static mat mat_of(size_t i)
{
    uint64_t k = (uint64_t)(i % MAT_P);
    mat m = {(k % 7) + 1, k, (k * 31 + 1) % MAT_P, (k * k + 3) % MAT_P};
    return m;
}

static void mat_body(size_t lo, size_t hi, void *acc, void *ctx)
{
    if (!pf_visit(ctx, lo, hi))
        return;
    mat *m = acc;
    for (size_t i = lo; i < hi; i++)
        *m = mat_mul(*m, mat_of(i));
}

static void mat_combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    mat *m = acc;
    *m = mat_mul(*m, *(const mat *)other);
}

static bool mat_eq(mat x, mat y)
{
    return x.a == y.a && x.b == y.b && x.c == y.c && x.d == y.d;
}

START_TEST(test_reduce_matrix_product_is_serial_fold)
{
    tu_failures_reset();
    const size_t begins[] = {0, SIZE_MAX - 3000};
    const size_t grains[] = {0, 1, 7, 64};
    const mat id = {1, 0, 0, 1};
    weft_pool *other = jt_pool_new(2);
    for (size_t b = 0; b < sizeof(begins) / sizeof(begins[0]); b++) {
        size_t begin = begins[b], end = begin + 3000;
        mat serial = id, reversed = id;
        for (size_t i = begin; i < end; i++) {
            serial = mat_mul(serial, mat_of(i));
            reversed = mat_mul(mat_of(i), reversed);
        }
        ck_assert_msg(!mat_eq(serial, reversed), "the test's operator should not commute");
        for (unsigned nw = 1; nw <= 8; nw++) {
            weft_pool *p = jt_pool_new(nw);
            for (int v = 0; v < VIA_COUNT; v++) {
                for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
                    char what[96];
                    snprintf(what, sizeof(what), "pool %u, %s, begin %zu, grain %zu", nw,
                             via_name(v), begin, grains[g]);
                    pf_ctx c;
                    pf_init(&c, begin, end, grains[g], p, true);
                    mat res = {0, 0, 0, 0};
                    loop_call l = {.begin = begin,
                                   .end = end,
                                   .grain = grains[g],
                                   .reduce = true,
                                   .rbody = mat_body,
                                   .combine = mat_combine,
                                   .acc_size = sizeof(mat),
                                   .identity = &id,
                                   .result = &res,
                                   .ctx = &c};
                    ck_assert_msg(loop_via(v, p, other, &l) == 0, "%s", what);
                    ck_assert_msg(mat_eq(res, serial),
                                  "%s: [[%llu, %llu], [%llu, %llu]], want [[%llu, %llu], [%llu, "
                                  "%llu]]",
                                  what, (unsigned long long)res.a, (unsigned long long)res.b,
                                  (unsigned long long)res.c, (unsigned long long)res.d,
                                  (unsigned long long)serial.a, (unsigned long long)serial.b,
                                  (unsigned long long)serial.c, (unsigned long long)serial.d);
                    pf_check(&c, what);
                }
            }
            tu_pool_free(p);
        }
    }
    tu_pool_free(other);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* String concatenation in an accumulator of exactly WEFT_REDUCE_MAX_ACC bytes. */
typedef struct str_acc {
    uint32_t len;
    char s[WEFT_REDUCE_MAX_ACC - sizeof(uint32_t)];
} str_acc;

_Static_assert(sizeof(str_acc) == WEFT_REDUCE_MAX_ACC, "str_acc must fill the accumulator");

static char str_char(size_t i)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    return digits[i % 36];
}

typedef struct str_ctx {
    pf_ctx pf;
    atomic_int overflow;
} str_ctx;

static void str_body(size_t lo, size_t hi, void *acc, void *ctx)
{
    str_ctx *c = ctx;
    if (!pf_visit(&c->pf, lo, hi))
        return;
    str_acc *a = acc;
    for (size_t i = lo; i < hi; i++) {
        if (a->len >= sizeof(a->s) - 1) {
            atomic_fetch_add(&c->overflow, 1);
            return;
        }
        a->s[a->len++] = str_char(i);
        a->s[a->len] = '\0';
    }
}

static void str_combine(void *acc, const void *other, void *ctx)
{
    str_ctx *c = ctx;
    str_acc *a = acc;
    const str_acc *o = other;
    if (a->len + o->len >= sizeof(a->s)) {
        atomic_fetch_add(&c->overflow, 1);
        return;
    }
    memcpy(a->s + a->len, o->s, o->len);
    a->len += o->len;
    a->s[a->len] = '\0';
}

START_TEST(test_reduce_string_concat_is_serial_fold)
{
    tu_failures_reset();
    const size_t n = 240;
    const size_t begins[] = {0, 1000, SIZE_MAX - 240};
    const size_t grains[] = {0, 1, 3, 7, 1000};
    str_acc id;
    memset(&id, 0, sizeof(id));
    str_ctx *c = malloc(sizeof(*c));
    ck_assert_ptr_nonnull(c);
    for (size_t b = 0; b < sizeof(begins) / sizeof(begins[0]); b++) {
        char want[WEFT_REDUCE_MAX_ACC];
        for (size_t i = 0; i < n; i++)
            want[i] = str_char(begins[b] + i);
        want[n] = '\0';
        for (unsigned nw = 1; nw <= 8; nw++) {
            weft_pool *p = jt_pool_new(nw);
            for (int v = 0; v < VIA_OTHER_POOL; v++) {
                for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
                    char what[96];
                    snprintf(what, sizeof(what), "pool %u, %s, begin %zu, grain %zu", nw,
                             via_name(v), begins[b], grains[g]);
                    pf_init(&c->pf, begins[b], begins[b] + n, grains[g], p, true);
                    atomic_init(&c->overflow, 0);
                    str_acc res;
                    memset(&res, 0x5a, sizeof(res));
                    loop_call l = {.begin = begins[b],
                                   .end = begins[b] + n,
                                   .grain = grains[g],
                                   .reduce = true,
                                   .rbody = str_body,
                                   .combine = str_combine,
                                   .acc_size = sizeof(str_acc),
                                   .identity = &id,
                                   .result = &res,
                                   .ctx = c};
                    ck_assert_msg(loop_via(v, p, NULL, &l) == 0, "%s", what);
                    JT_ASSERT_ATOMIC_EQ(&c->overflow, 0);
                    ck_assert_msg(res.len == n, "%s: length %u", what, res.len);
                    ck_assert_msg(strcmp(res.s, want) == 0, "%s: \"%s\", want \"%s\"", what, res.s,
                                  want);
                    pf_check(&c->pf, what);
                }
            }
            tu_pool_free(p);
        }
    }
    free(c);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * parallel_reduce: empty ranges and bad arguments
 */

static atomic_int combine_calls;

static void counting_combine(void *acc, const void *other, void *ctx)
{
    atomic_fetch_add(&combine_calls, 1);
    sum_combine(acc, other, ctx);
}

START_TEST(test_reduce_empty_gives_identity)
{
    tu_failures_reset();
    const size_t at[] = {0, 7, SIZE_MAX};
    weft_pool *other = jt_pool_new(1);
    weft_pool *p = jt_pool_new(3);
    for (int v = 0; v < VIA_COUNT; v++) {
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
            pf_ctx c;
            pf_init(&c, at[k], at[k], 0, p, false);
            uint64_t id = 0x0123456789abcdefu, res = 42;
            loop_call l = {.begin = at[k],
                           .end = at[k],
                           .reduce = true,
                           .rbody = sum_body,
                           .combine = counting_combine,
                           .acc_size = sizeof(uint64_t),
                           .identity = &id,
                           .result = &res,
                           .ctx = &c};
            ck_assert_int_eq(loop_via(v, p, other, &l), 0);
            ck_assert_msg(res == id, "%s, empty at %zu: result %llx", via_name(v), at[k],
                          (unsigned long long)res);
            JT_ASSERT_ATOMIC_EQ(&c.calls, 0);
        }
    }
    /* the largest accumulator, empty range */
    unsigned char big_id[WEFT_REDUCE_MAX_ACC], big_res[WEFT_REDUCE_MAX_ACC];
    for (size_t i = 0; i < sizeof(big_id); i++) {
        big_id[i] = (unsigned char)(i * 7 + 1);
        big_res[i] = 0;
    }
    pf_ctx c;
    pf_init(&c, 5, 5, 0, p, false);
    ck_assert_int_eq(weft_parallel_reduce(p, 5, 5, 0, sizeof(big_id), big_id, sum_body,
                                          counting_combine, &c, big_res),
                     0);
    ck_assert_mem_eq(big_res, big_id, sizeof(big_id));
    tu_pool_free(p);
    tu_pool_free(other);
}
END_TEST

/* Each case: a call with one bad argument must return -EINVAL, call nothing and leave the result
 * untouched. */
typedef struct einval_case {
    const char *what;
    loop_call l;
} einval_case;

START_TEST(test_reduce_einval)
{
    tu_failures_reset();
    weft_pool *other = jt_pool_new(1);
    weft_pool *p = jt_pool_new(2);
    pf_ctx c;
    pf_init(&c, 0, 100, 0, p, false);
    uint64_t id = 0;
    unsigned char res[WEFT_REDUCE_MAX_ACC + 8];
    loop_call good = {.begin = 0,
                      .end = 100,
                      .reduce = true,
                      .rbody = sum_body,
                      .combine = counting_combine,
                      .acc_size = sizeof(uint64_t),
                      .identity = &id,
                      .result = res,
                      .ctx = &c};
    einval_case cases[9];
    for (int i = 0; i < 9; i++)
        cases[i].l = good;
    cases[0].what = "body NULL";
    cases[0].l.rbody = NULL;
    cases[1].what = "combine NULL";
    cases[1].l.combine = NULL;
    cases[2].what = "identity NULL";
    cases[2].l.identity = NULL;
    cases[3].what = "result NULL";
    cases[3].l.result = NULL;
    cases[4].what = "acc_size 0";
    cases[4].l.acc_size = 0;
    cases[5].what = "acc_size WEFT_REDUCE_MAX_ACC + 1";
    cases[5].l.acc_size = WEFT_REDUCE_MAX_ACC + 1;
    cases[6].what = "acc_size SIZE_MAX";
    cases[6].l.acc_size = SIZE_MAX;
    cases[7].what = "begin > end";
    cases[7].l.begin = 101;
    cases[8].what = "begin > end, empty-looking";
    cases[8].l.begin = SIZE_MAX;
    cases[8].l.end = 0;
    atomic_store(&combine_calls, 0);
    for (int v = 0; v < VIA_COUNT; v++) {
        for (int i = 0; i < 9; i++) {
            memset(res, 0xa5, sizeof(res));
            loop_call l = cases[i].l;
            int rc = loop_via(v, p, other, &l);
            ck_assert_msg(rc == -EINVAL, "%s, %s: rc %d", via_name(v), cases[i].what, rc);
            for (size_t k = 0; k < sizeof(res); k++)
                ck_assert_msg(res[k] == 0xa5, "%s, %s: result byte %zu changed", via_name(v),
                              cases[i].what, k);
        }
    }
    /* pool NULL outside any pool */
    memset(res, 0xa5, sizeof(res));
    ck_assert_int_eq(weft_parallel_reduce(NULL, 0, 100, 0, sizeof(uint64_t), &id, sum_body,
                                          counting_combine, &c, res),
                     -EINVAL);
    for (size_t k = 0; k < sizeof(res); k++)
        ck_assert_int_eq(res[k], 0xa5);
    JT_ASSERT_ATOMIC_EQ(&c.calls, 0);
    JT_ASSERT_ATOMIC_EQ(&combine_calls, 0);
    /* and the largest accumulator is accepted */
    unsigned char big_id[WEFT_REDUCE_MAX_ACC];
    memset(big_id, 0, sizeof(big_id));
    pf_init(&c, 0, 100, 0, p, true);
    ck_assert_int_eq(weft_parallel_reduce(p, 0, 100, 0, sizeof(big_id), big_id, sum_body,
                                          counting_combine, &c, res),
                     0);
    uint64_t sum;
    memcpy(&sum, res, sizeof(sum));
    ck_assert_uint_eq(sum, 4950);
    pf_check(&c, "largest accumulator");
    tu_pool_free(p);
    tu_pool_free(other);
}
END_TEST

static Suite *loops_suite(void)
{
    Suite *s = suite_create("loops");

    TCase *tc = tcase_create("parallel_for");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pf_every_pool_size);
    tcase_add_test(tc, test_pf_empty_range_calls_nothing);
    tcase_add_test(tc, test_pf_einval);
    tcase_add_test(tc, test_pf_null_pool_on_plain_thread);
    tcase_add_test(tc, test_pf_pool_null_is_the_callers_pool);
    tcase_add_test(tc, test_pf_from_other_pool_helps);
    tcase_add_test(tc, test_pf_near_size_max);
    tcase_add_test(tc, test_pf_huge_ranges_tile);
    tcase_add_test(tc, test_pf_skewed);
    tcase_add_test(tc, test_pf_nested);
    tcase_add_test(tc, test_pf_cancel_requested_in_bodies);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pf_shut_down_pool_from_outside);
    tcase_add_test(tc, test_pf_inside_shut_down_pool);
    tcase_add_test(tc, test_pf_shutdown_during_loop);
    tcase_add_test(tc, test_pf_outside_pending_at_shutdown);
    suite_add_tcase(s, tc);

    tc = tcase_create("parallel_reduce");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_reduce_sum_every_pool_size);
    tcase_add_test(tc, test_reduce_matrix_product_is_serial_fold);
    tcase_add_test(tc, test_reduce_string_concat_is_serial_fold);
    tcase_add_test(tc, test_reduce_empty_gives_identity);
    tcase_add_test(tc, test_reduce_einval);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(loops_suite());
}
