/* SPDX-License-Identifier: MIT */
/*
 * Stress for gather, wait and completion sets: invariants under races, sized by
 * $WEFT_STRESS_SCALE (default 1).
 *
 *  - child completion racing gather creation: results in input order, codes right;
 *  - gather cancel racing child completion (flat and nested): every child ends DONE or
 *    CANCELLED exactly once, cancel returns 1 exactly when the gather ends CANCELLED, a DONE
 *    gather has every child DONE and a complete result array, every future resolves;
 *  - weft_wait with short timeouts racing completion: the partition is always consistent;
 *  - the last reference released from an on_done callback and from another thread while a
 *    gather and a completion set still watch, and sets destroyed while their futures finish;
 *  - many threads (and a worker) taking from one set while producers add: every future
 *    handed out exactly once overall.
 *
 * Failures off the test thread go through TU_EXPECT; the sanitizer builds run these too.
 */
#include "gather_wait_util.h"

static long scaled(long base)
{
    return base * tu_stress_scale();
}

/* A leaf: spins a while, then returns its value, or fails with its code, or (if it honours
 * cancellation and a request came) returns -ECANCELED. Counts its runs and on_done callbacks. */
typedef struct st_job {
    unsigned spin;
    int ret;     /* 0 or a failure code */
    bool honour; /* -ECANCELED when a cancellation was requested by the end */
    atomic_int ran;
    atomic_int on_done; /* on_done callbacks seen */
    void *value;
} st_job;

static int st_task(void *arg, void **result)
{
    st_job *j = arg;
    atomic_fetch_add(&j->ran, 1);
    gw_spin(j->spin);
    if (j->honour && weft_cancel_requested())
        return -ECANCELED;
    *result = j->value;
    return j->ret;
}

static void st_count_cb(weft_future *f, void *data)
{
    (void)f;
    atomic_fetch_add(&((st_job *)data)->on_done, 1);
}

/* on_done callback counting finished futures in an atomic_int. */
static void st_finished_cb(weft_future *f, void *data)
{
    (void)f;
    atomic_fetch_add((atomic_int *)data, 1);
}

static void st_job_init(st_job *j, unsigned spin, int ret, bool honour, void *value)
{
    j->spin = spin;
    j->ret = ret;
    j->honour = honour;
    atomic_init(&j->ran, 0);
    atomic_init(&j->on_done, 0);
    j->value = value;
}

/* ---------------------------------------------------------------------------------------------
 * Child completion racing gather creation
 */

enum { MAXK = 8 };

START_TEST(stress_gather_vs_completion)
{
    weft_pool *p = tu_pool_new(2, NULL);
    long iters = scaled(3000);
    uint64_t rng = 0x1234;
    for (long it = 0; it < iters; it++) {
        size_t k = 1 + gw_rand(&rng) % MAXK;
        unsigned flags = (unsigned)(gw_rand(&rng) % 3); /* 0, RETURN_EXCEPTIONS, CANCEL_ON_ERR */
        bool with_failures = gw_rand(&rng) % 3 == 0;
        bool keep = it % 2 == 0;
        st_job jobs[MAXK];
        weft_future *fs[MAXK];
        bool fails[MAXK];
        atomic_int finished;
        atomic_init(&finished, 0);
        bool any_fail = false;
        for (size_t i = 0; i < k; i++) {
            fails[i] = with_failures && gw_rand(&rng) % 3 == 0;
            any_fail |= fails[i];
            st_job_init(&jobs[i], (unsigned)(gw_rand(&rng) % 2000), fails[i] ? 100 + (int)i : 0,
                        false, GW_VAL(i));
            ck_assert_int_eq(weft_submit(p, st_task, &jobs[i], &fs[i]), 0);
            ck_assert_int_eq(weft_future_on_done(fs[i], st_finished_cb, &finished), 0);
        }
        gw_spin((unsigned)(gw_rand(&rng) % 3000));
        weft_future *g = NULL;
        ck_assert_int_eq(weft_gather(fs, k, flags, &g), 0);
        if (!keep)
            gw_release_all(fs, k);
        void *r = NULL;
        int rc = weft_future_result(g, &r);
        weft_state st = weft_future_state(g);
        if (!any_fail || (flags & WEFT_RETURN_EXCEPTIONS)) {
            ck_assert_msg(rc == 0 && st == WEFT_DONE, "iteration %ld: rc %d state %d", it, rc,
                          (int)st);
            ck_assert_ptr_nonnull(r);
            for (size_t i = 0; i < k; i++) {
                void *v = &v;
                int crc = weft_gather_child(g, i, &v);
                if (fails[i]) {
                    ck_assert_ptr_null(((void **)r)[i]);
                    ck_assert_int_eq(crc, 100 + (int)i);
                } else {
                    ck_assert_ptr_eq(((void **)r)[i], GW_VAL(i));
                    ck_assert_int_eq(crc, 0);
                    ck_assert_ptr_eq(v, GW_VAL(i));
                }
            }
        } else {
            ck_assert_int_eq(st, WEFT_FAILED);
            ck_assert_msg(rc >= 100 && rc < 100 + (int)k && fails[rc - 100],
                          "iteration %ld: gather code %d is no failing child's", it, rc);
            if (keep) {
                for (size_t i = 0; i < k; i++) {
                    /* With CANCEL_ON_ERROR a sibling, failing or not, may have been
                     * cancelled before it started (these tasks ignore requests). */
                    int crc = weft_future_result(fs[i], NULL);
                    int own = fails[i] ? 100 + (int)i : 0;
                    if (flags & WEFT_CANCEL_ON_ERROR)
                        ck_assert_msg(crc == own ||
                                          (crc == -ECANCELED && atomic_load(&jobs[i].ran) == 0),
                                      "iteration %ld: child %zu rc %d ran %d", it, i, crc,
                                      atomic_load(&jobs[i].ran));
                    else
                        ck_assert_int_eq(crc, own);
                }
                /* Failure code stays the first one. */
                ck_assert_int_eq(weft_future_result(g, NULL), rc);
            }
        }
        weft_future_release(g);
        if (keep)
            gw_release_all(fs, k);
        /* A failed gather returns before its other children finish: they use jobs[]. */
        ck_assert(tu_wait_atomic_ge(&finished, (int)k, TU_PATIENCE_S));
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Gather cancel racing child completion
 */

/* Checks a finished gather over leaves jobs[lo..hi) (futures fs) after everything finished. */
static void check_gather_after_cancel(weft_future *g, weft_future *const fs[], size_t n, long it,
                                      const char *name)
{
    weft_state st = weft_future_state(g);
    void *r = NULL;
    int rc = weft_future_result(g, &r);
    if (st == WEFT_DONE) {
        ck_assert_msg(rc == 0 && r != NULL, "iteration %ld: %s DONE with rc %d, array %p", it, name,
                      rc, r);
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(weft_future_state(fs[i]) == WEFT_DONE,
                          "iteration %ld: %s DONE but child %zu is %d", it, name, i,
                          (int)weft_future_state(fs[i]));
        }
    } else {
        ck_assert_msg((st == WEFT_CANCELLED || st == WEFT_FAILED) && rc == -ECANCELED,
                      "iteration %ld: %s state %d rc %d", it, name, (int)st, rc);
    }
}

START_TEST(stress_gather_cancel_race)
{
    weft_pool *p = tu_pool_new(2, NULL);
    long iters = scaled(2000);
    uint64_t rng = 0x5678;
    for (long it = 0; it < iters; it++) {
        size_t k = 2 + gw_rand(&rng) % (MAXK - 1);
        bool nested = it % 2 == 1;
        st_job jobs[MAXK];
        weft_future *fs[MAXK];
        for (size_t i = 0; i < k; i++) {
            st_job_init(&jobs[i], (unsigned)(gw_rand(&rng) % 4000), 0, gw_rand(&rng) % 2 == 0,
                        GW_VAL(i));
            ck_assert_int_eq(weft_submit(p, st_task, &jobs[i], &fs[i]), 0);
            ck_assert_int_eq(weft_future_on_done(fs[i], st_count_cb, &jobs[i]), 0);
        }
        weft_future *outer = NULL, *inner[2] = {NULL, NULL};
        size_t half = k / 2;
        if (nested) {
            ck_assert_int_eq(weft_gather(fs, half, 0, &inner[0]), 0);
            ck_assert_int_eq(weft_gather(fs + half, k - half, 0, &inner[1]), 0);
            ck_assert_int_eq(weft_gather(inner, 2, 0, &outer), 0);
        } else {
            ck_assert_int_eq(weft_gather(fs, k, 0, &outer), 0);
        }
        gw_spin((unsigned)(gw_rand(&rng) % 6000));
        int won = weft_future_cancel(outer);
        ck_assert(won == 0 || won == 1);

        /* Every future resolves. */
        for (size_t i = 0; i < k; i++) {
            int rc = weft_future_result(fs[i], NULL);
            weft_state st = weft_future_state(fs[i]);
            ck_assert_msg((st == WEFT_DONE && rc == 0) ||
                              (st == WEFT_CANCELLED && rc == -ECANCELED),
                          "iteration %ld: child %zu state %d rc %d", it, i, (int)st, rc);
            int ran = atomic_load(&jobs[i].ran);
            ck_assert_msg(ran <= 1, "child %zu ran %d times", i, ran);
            if (st == WEFT_DONE)
                ck_assert_int_eq(ran, 1);
            if (!jobs[i].honour && ran == 1)
                ck_assert_msg(st == WEFT_DONE,
                              "iteration %ld: child %zu ignores cancellation and its function "
                              "ran, yet it ended in state %d",
                              it, i, (int)st);
        }
        ck_assert_int_eq(weft_future_wait(outer, WEFT_FOREVER), 0);
        weft_state ost = weft_future_state(outer);
        ck_assert_msg((won == 1) == (ost == WEFT_CANCELLED),
                      "iteration %ld: cancel returned %d, gather state %d", it, won, (int)ost);
        if (won == 0) {
            /* It had finished, and nothing fails or is cancelled without this cancel. */
            ck_assert_msg(ost == WEFT_DONE, "iteration %ld: state %d", it, (int)ost);
        }
        if (nested) {
            ck_assert_int_eq(weft_future_wait(inner[0], WEFT_FOREVER), 0);
            ck_assert_int_eq(weft_future_wait(inner[1], WEFT_FOREVER), 0);
            check_gather_after_cancel(inner[0], fs, half, it, "inner[0]");
            check_gather_after_cancel(inner[1], fs + half, k - half, it, "inner[1]");
            if (ost == WEFT_DONE) {
                void *r = NULL;
                ck_assert_int_eq(weft_future_result(outer, &r), 0);
                ck_assert_ptr_nonnull(r);
                void **a0 = ((void **)r)[0], **a1 = ((void **)r)[1];
                ck_assert_ptr_nonnull(a0);
                ck_assert_ptr_nonnull(a1);
                for (size_t i = 0; i < half; i++)
                    ck_assert_ptr_eq(a0[i], GW_VAL(i));
                for (size_t i = half; i < k; i++)
                    ck_assert_ptr_eq(a1[i - half], GW_VAL(i));
            }
        } else {
            check_gather_after_cancel(outer, fs, k, it, "outer");
            if (ost == WEFT_DONE) {
                void *r = NULL;
                ck_assert_int_eq(weft_future_result(outer, &r), 0);
                for (size_t i = 0; i < k; i++)
                    ck_assert_ptr_eq(((void **)r)[i], GW_VAL(i));
            }
        }
        weft_future_release(outer);
        weft_future_release(inner[0]);
        weft_future_release(inner[1]);
        gw_release_all(fs, k);
        /* Callbacks run after the final state is visible: wait for them (they use jobs[]),
         * then each must have run exactly once. */
        for (size_t i = 0; i < k; i++) {
            ck_assert(tu_wait_atomic_ge(&jobs[i].on_done, 1, TU_PATIENCE_S));
            ck_assert_int_eq(atomic_load(&jobs[i].on_done), 1);
        }
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* The smallest race, many times: a gather of one child that ignores cancellation, cancelled
 * at a random moment around the child's start and finish. Whatever the timing:
 *  - the child's function ran at most once, and if it ran the child is DONE (it never returns
 *    -ECANCELED, so only a cancel before its start can make it CANCELLED);
 *  - cancel returned 1 exactly when the gather is CANCELLED;
 *  - a DONE gather has its result array (the child's value in slot 0). */
START_TEST(stress_gather_cancel_single)
{
    weft_pool *p = tu_pool_new(2, NULL);
    long iters = scaled(150000);
    uint64_t rng = 0x4242;
    long ran_but_cancelled = 0, done_without_array = 0, mismatch = 0, first_it = -1;
    for (long it = 0; it < iters; it++) {
        st_job j;
        st_job_init(&j, (unsigned)(gw_rand(&rng) % 200), 0, false, GW_VAL(it % 7));
        weft_future *f = NULL, *g = NULL;
        ck_assert_int_eq(weft_submit(p, st_task, &j, &f), 0);
        ck_assert_int_eq(weft_gather(&f, 1, 0, &g), 0);
        gw_spin((unsigned)(gw_rand(&rng) % 2000));
        int won = weft_future_cancel(g);
        ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
        ck_assert_int_eq(weft_future_wait(g, WEFT_FOREVER), 0);
        int ran = atomic_load(&j.ran);
        weft_state fst = weft_future_state(f), gst = weft_future_state(g);
        void *r = NULL;
        int grc = weft_future_result(g, &r);
        bool bad = false;
        ck_assert_int_le(ran, 1);
        if (ran == 1 && fst != WEFT_DONE) {
            ran_but_cancelled++;
            bad = true;
        }
        if (gst == WEFT_DONE && (grc != 0 || r == NULL || ((void **)r)[0] != GW_VAL(it % 7))) {
            done_without_array++;
            bad = true;
        }
        if ((won == 1) != (gst == WEFT_CANCELLED)) {
            mismatch++;
            bad = true;
        }
        if (bad && first_it < 0)
            first_it = it;
        weft_future_release(g);
        weft_future_release(f);
    }
    tu_pool_free(p);
    ck_assert_msg(ran_but_cancelled == 0 && done_without_array == 0 && mismatch == 0,
                  "of %ld iterations (first at %ld): %ld children ran yet ended CANCELLED, %ld "
                  "gathers DONE without their result array, %ld cancel results not matching "
                  "the gather's state",
                  iters, first_it, ran_but_cancelled, done_without_array, mismatch);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * wait with short timeouts racing completion
 */

enum { WMAX = 80 };

START_TEST(stress_wait_timeouts)
{
    weft_pool *p = tu_pool_new(2, NULL);
    long iters = scaled(1500);
    uint64_t rng = 0x9abc;
    static st_job jobs[WMAX];
    static weft_future *fs[WMAX], *out[WMAX], *copy[WMAX];
    for (long it = 0; it < iters; it++) {
        size_t n = it % 50 == 49 ? WMAX : 1 + gw_rand(&rng) % 12;
        for (size_t i = 0; i < n; i++) {
            bool fail = gw_rand(&rng) % 5 == 0;
            st_job_init(&jobs[i], (unsigned)(gw_rand(&rng) % 3000), fail ? 7 : 0, false, GW_VAL(i));
            ck_assert_int_eq(weft_submit(p, st_task, &jobs[i], &fs[i]), 0);
        }
        memcpy(copy, fs, n * sizeof *fs);
        weft_future **pend = copy;
        size_t npend = n, total = 0;
        while (npend > 0) {
            weft_return_when when = (weft_return_when)(gw_rand(&rng) % 3);
            int64_t timeout = (int64_t)(gw_rand(&rng) % 50000); /* up to 50 us */
            if (gw_rand(&rng) % 10 == 0)
                timeout = WEFT_FOREVER;
            bool alias = gw_rand(&rng) % 2 == 0;
            weft_future **dst = alias ? pend : out;
            weft_future *before[WMAX];
            memcpy(before, pend, npend * sizeof *pend);
            size_t nd = SIZE_MAX;
            ck_assert_int_eq(weft_wait(pend, npend, when, timeout, dst, &nd), 0);
            ck_assert_uint_le(nd, npend);
            /* The partition: a permutation, done part finished, both parts in input order. */
            size_t last = 0;
            bool any_failed = false;
            for (size_t q = 0; q < npend; q++) {
                size_t i = 0;
                while (i < npend && before[i] != dst[q])
                    i++;
                ck_assert_msg(i < npend, "iteration %ld: out[%zu] not from the input", it, q);
                if (q > 0 && q != nd)
                    ck_assert_msg(i > last, "iteration %ld: out[%zu] out of order", it, q);
                last = i;
                if (q < nd) {
                    ck_assert_msg(weft_future_done(dst[q]), "iteration %ld: done one not done", it);
                    any_failed |= weft_future_state(dst[q]) == WEFT_FAILED;
                }
            }
            for (size_t q = 0; q < npend; q++) {
                for (size_t r = q + 1; r < npend; r++)
                    ck_assert_ptr_ne(dst[q], dst[r]);
            }
            if (timeout == WEFT_FOREVER) {
                if (when == WEFT_FIRST_COMPLETED)
                    ck_assert_uint_ge(nd, 1);
                else if (when == WEFT_ALL_COMPLETED)
                    ck_assert_uint_eq(nd, npend);
                else
                    ck_assert(any_failed || nd == npend);
            }
            if (!alias)
                memcpy(pend, dst, npend * sizeof *pend);
            pend += nd;
            npend -= nd;
            total += nd;
        }
        ck_assert_uint_eq(total, n);
        gw_release_all(fs, n);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Last references released while a gather and a completion set still watch
 */

static void release_cb(weft_future *f, void *data)
{
    (void)data;
    weft_future_release(f);
}

typedef struct rel_batch {
    weft_future **fs;
    size_t n;
    weft_future *g;
    tu_gate go;
} rel_batch;

static void *releaser_main(void *arg)
{
    rel_batch *b = arg;
    TU_EXPECT(tu_gate_wait(&b->go));
    for (size_t i = 0; i < b->n; i++)
        weft_future_release(b->fs[i]);
    weft_future_release(b->g);
    return NULL;
}

START_TEST(stress_release_while_watched)
{
    weft_pool *p = tu_pool_new(2, NULL);
    long iters = scaled(2000);
    uint64_t rng = 0xdef0;
    enum { B = 8 };
    static st_job jobs[B];
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    long handed = 0, added = 0;
    for (long it = 0; it < iters; it++) {
        weft_future *fs[B];
        for (size_t i = 0; i < B; i++) {
            st_job_init(&jobs[i], (unsigned)(gw_rand(&rng) % 3000), i % 5 == 4 ? 3 : 0, false,
                        GW_VAL(i));
            ck_assert_int_eq(weft_submit(p, st_task, &jobs[i], &fs[i]), 0);
        }
        weft_future *g = NULL;
        ck_assert_int_eq(weft_gather(fs, B, it % 2 ? WEFT_RETURN_EXCEPTIONS : 0, &g), 0);
        for (size_t i = 0; i < B; i++) {
            ck_assert_int_eq(weft_completion_add(c, fs[i]), 0);
            added++;
        }
        /* A second set that is destroyed while its futures finish. */
        weft_completion *doomed = NULL;
        ck_assert_int_eq(weft_as_completed(fs, B, &doomed), 0);

        if (it % 2 == 0) {
            /* The user's last references go from on_done callbacks, on whichever thread
             * finishes each future (or here, if it already has). */
            for (size_t i = 0; i < B; i++)
                ck_assert_int_eq(weft_future_on_done(fs[i], release_cb, NULL), 0);
            ck_assert_int_eq(weft_future_on_done(g, release_cb, NULL), 0);
            gw_spin((unsigned)(gw_rand(&rng) % 3000));
            weft_completion_destroy(doomed);
        } else {
            /* ... or from another thread, racing the finishing and this thread's takes. */
            rel_batch b = {.fs = fs, .n = B, .g = g};
            tu_gate_init(&b.go);
            pthread_t th;
            ck_assert_int_eq(pthread_create(&th, NULL, releaser_main, &b), 0);
            tu_gate_open(&b.go);
            weft_completion_destroy(doomed);
            for (int t = 0; t < 3; t++) {
                weft_future *f = NULL;
                int rc = weft_completion_next(c, 0, &f);
                if (rc == 0) {
                    handed++;
                    weft_future_release(f);
                } else {
                    ck_assert_int_eq(rc, -ETIMEDOUT);
                }
            }
            ck_assert_int_eq(pthread_join(th, NULL), 0);
        }
        /* Take what the set has; its references are the last ones now. */
        for (;;) {
            weft_future *f = NULL;
            int rc = weft_completion_next(c, WEFT_FOREVER, &f);
            if (rc == -ENOENT)
                break;
            ck_assert_int_eq(rc, 0);
            ck_assert(weft_future_done(f));
            handed++;
            weft_future_release(f);
        }
    }
    ck_assert_int_eq(handed, added);
    weft_completion_destroy(c);
    tu_pool_free(p); /* gathers whose user references are gone finish and free here at latest */
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Many consumers on one set while producers add
 */

enum { MP_PRODUCERS = 2, MP_THREAD_CONSUMERS = 3 };

typedef struct mp_shared {
    weft_pool *pool;
    weft_completion *c;
    int fd;
    long total;
    atomic_int *seen;
    atomic_long taken;
    atomic_long produced;
} mp_shared;

typedef struct mp_arg {
    mp_shared *sh;
    int index;
} mp_arg;

static int mp_value(void *arg, void **result)
{
    gw_spin((unsigned)((uintptr_t)arg * 2654435761u % 1500));
    *result = arg;
    return 0;
}

static void *mp_producer(void *arg)
{
    mp_arg *a = arg;
    mp_shared *sh = a->sh;
    long per = sh->total / MP_PRODUCERS;
    long lo = a->index * per, hi = a->index == MP_PRODUCERS - 1 ? sh->total : lo + per;
    for (long id = lo; id < hi; id++) {
        weft_future *f = NULL;
        int rc;
        while ((rc = weft_submit(sh->pool, mp_value, (void *)(intptr_t)id, &f)) == -EAGAIN)
            tu_sleep_ns(10000);
        if (!TU_EXPECT(rc == 0))
            return NULL;
        TU_EXPECT(weft_completion_add(sh->c, f) == 0);
        atomic_fetch_add(&sh->produced, 1);
        weft_future_release(f);
    }
    return NULL;
}

static bool mp_take(mp_shared *sh, weft_future *f)
{
    void *v = NULL;
    TU_EXPECT(weft_future_done(f));
    TU_EXPECT(weft_future_result(f, &v) == 0);
    intptr_t id = (intptr_t)v;
    if (TU_EXPECT(id >= 0 && id < sh->total))
        TU_EXPECT(atomic_fetch_add(&sh->seen[id], 1) == 0);
    weft_future_release(f);
    return atomic_fetch_add(&sh->taken, 1) + 1 >= sh->total;
}

/* Consumer kinds: 0 timed next, 1 blocking next (may see -ENOENT between adds), 2 poll on the
 * descriptor then next(0). */
static void mp_consume(mp_shared *sh, int kind)
{
    int64_t deadline = tu_now_ns() + (int64_t)(10 * TU_PATIENCE_S * 1e9);
    while (atomic_load(&sh->taken) < sh->total) {
        if (!TU_EXPECT(tu_now_ns() < deadline))
            return;
        weft_future *f = NULL;
        int rc;
        if (kind == 2) {
            struct pollfd pfd = {.fd = sh->fd, .events = POLLIN};
            rc = poll(&pfd, 1, 1);
            TU_EXPECT(rc >= 0);
            rc = weft_completion_next(sh->c, 0, &f);
        } else {
            rc = weft_completion_next(sh->c, kind == 0 ? TU_MS(1) : WEFT_FOREVER, &f);
        }
        if (rc == 0) {
            if (mp_take(sh, f))
                return;
        } else if (rc == -ENOENT) {
            tu_sleep_ns(20000); /* everything added so far was taken: producers are behind */
        } else {
            TU_EXPECT(rc == -ETIMEDOUT);
        }
    }
}

static void *mp_consumer(void *arg)
{
    mp_arg *a = arg;
    mp_consume(a->sh, a->index % 3);
    return NULL;
}

/* A consumer that is a task: its next helps on the worker. */
static int mp_consumer_task(void *arg, void **result)
{
    (void)result;
    mp_consume(arg, 0);
    return 0;
}

START_TEST(stress_completion_many_consumers)
{
    mp_shared *sh = calloc(1, sizeof *sh);
    ck_assert_ptr_nonnull(sh);
    sh->total = scaled(50000);
    sh->seen = calloc((size_t)sh->total, sizeof *sh->seen);
    ck_assert_ptr_nonnull(sh->seen);
    sh->pool = tu_pool_new(2, NULL);
    ck_assert_int_eq(weft_completion_create(&sh->c), 0);
    sh->fd = weft_completion_fd(sh->c);
    ck_assert_int_ge(sh->fd, 0);

    weft_future *task = NULL;
    ck_assert_int_eq(weft_submit(sh->pool, mp_consumer_task, sh, &task), 0);
    pthread_t prod[MP_PRODUCERS], cons[MP_THREAD_CONSUMERS];
    mp_arg pa[MP_PRODUCERS], ca[MP_THREAD_CONSUMERS];
    for (int i = 0; i < MP_THREAD_CONSUMERS; i++) {
        ca[i] = (mp_arg){sh, i};
        ck_assert_int_eq(pthread_create(&cons[i], NULL, mp_consumer, &ca[i]), 0);
    }
    for (int i = 0; i < MP_PRODUCERS; i++) {
        pa[i] = (mp_arg){sh, i};
        ck_assert_int_eq(pthread_create(&prod[i], NULL, mp_producer, &pa[i]), 0);
    }
    for (int i = 0; i < MP_PRODUCERS; i++)
        ck_assert_int_eq(pthread_join(prod[i], NULL), 0);
    for (int i = 0; i < MP_THREAD_CONSUMERS; i++)
        ck_assert_int_eq(pthread_join(cons[i], NULL), 0);
    ck_assert_int_eq(weft_future_result(task, NULL), 0);
    weft_future_release(task);
    TU_ASSERT_NO_FAILURES();

    ck_assert_int_eq(atomic_load(&sh->produced), sh->total);
    ck_assert_int_eq(atomic_load(&sh->taken), sh->total);
    for (long i = 0; i < sh->total; i++)
        ck_assert_msg(atomic_load(&sh->seen[i]) == 1, "future %ld handed out %d times", i,
                      atomic_load(&sh->seen[i]));
    weft_future *f = NULL;
    ck_assert_int_eq(weft_completion_next(sh->c, 0, &f), -ENOENT);
    ck_assert(!gw_readable(sh->fd, 0));
    weft_completion_destroy(sh->c);
    tu_pool_free(sh->pool);
    free(sh->seen);
    free(sh);
}
END_TEST

static Suite *gather_wait_completion_stress_suite(void)
{
    Suite *s = suite_create("gather_wait_completion_stress");
    TCase *tc = tcase_create("gather");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stress_gather_vs_completion);
    tcase_add_test(tc, stress_gather_cancel_race);
    tcase_add_test(tc, stress_gather_cancel_single);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stress_wait_timeouts);
    suite_add_tcase(s, tc);

    tc = tcase_create("references");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stress_release_while_watched);
    suite_add_tcase(s, tc);

    tc = tcase_create("completion");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stress_completion_many_consumers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(gather_wait_completion_stress_suite());
}
