/* SPDX-License-Identifier: MIT */
/*
 * Block caches (lib/cache.c): the per-thread caches that futures, callback nodes and completion
 * entries come from give memory back after a burst, reuse the blocks other threads free, and
 * leave nothing behind when their thread exits with blocks still out.
 *
 * - test_burst_gives_memory_back: a million detached tasks submitted from the test thread to a
 *   pool of two while both workers are held busy, so that all their futures are out at once
 *   (some 150 MB); the workers free them. Once all ran, RSS after malloc_trim is back within
 *   RSS_SLACK_KIB of where it was before the burst, and again after the pool is destroyed.
 *   Every task ran exactly once.
 * - test_remote_frees_come_back: rounds of detached tasks from the test thread, each round
 *   smaller than a cache holds: the blocks the workers free come back to the test thread, which
 *   then makes (almost) no allocation of its own; rounds of submit, result and release keep RSS
 *   flat.
 * - test_exiting_threads_free_everything: threads that exit with blocks of their caches on their
 *   local lists and remote stacks, in futures the test thread holds and in futures of tasks not
 *   run yet that only the pool holds: once every task ran and every future was released, the
 *   process holds as many heap allocations as before the threads started (nothing lost with
 *   the abandoned caches, the caches themselves included).
 *
 * RSS and allocation counts say little under the sanitizers (AddressSanitizer bypasses the
 * caches and quarantines freed memory, ThreadSanitizer keeps its own allocator and shadow), so
 * sanitizer builds skip those assertions but run the same workloads and their exactly-once
 * checks: LeakSanitizer looks for leaks, ThreadSanitizer at the remote frees and the abandonment.
 * Sizes scale with $WEFT_STRESS_SCALE.
 */
#include "testutil.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CT_JUDGE_MEMORY 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CT_JUDGE_MEMORY 0
#endif
#endif
#ifndef CT_JUDGE_MEMORY
#define CT_JUDGE_MEMORY 1
#endif

#define RSS_SLACK_KIB (8L * 1024) /* how far above its start RSS may end after a burst */
/* Detached tasks in the burst, times $WEFT_STRESS_SCALE. A tenth in sanitizer builds, where RSS
 * is not judged: still far more than any cache holds, without a gigabyte of shadow memory. */
#define BURST (CT_JUDGE_MEMORY ? 1000000L : 100000L)

/* ---------------------------------------------------------------------------------------------
 * Measuring memory
 *
 * Plain builds count heap allocations by interposing on glibc's allocator (the library calls it
 * through the PLT): per thread, the allocations made, and for the process, the allocations not
 * yet freed.
 */

#if CT_JUDGE_MEMORY
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static _Thread_local long thread_allocs; /* allocations made by this thread */
static atomic_long live_allocs;          /* allocations not freed, all threads */

static void *counted(void *p)
{
    if (p != NULL) {
        thread_allocs++;
        /* relaxed: a tally, read once the threads that change it are quiet */
        atomic_fetch_add_explicit(&live_allocs, 1, memory_order_relaxed);
    }
    return p;
}

void *malloc(size_t size)
{
    return counted(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
    return counted(__libc_calloc(n, size));
}

void *realloc(void *p, size_t size)
{
    void *q = __libc_realloc(p, size);
    if (p == NULL)
        return counted(q);
    if (size == 0 && q == NULL) /* glibc: freed */
        atomic_fetch_sub_explicit(&live_allocs, 1, memory_order_relaxed);
    return q;
}

void *aligned_alloc(size_t align, size_t size)
{
    return counted(__libc_memalign(align, size));
}

void *memalign(size_t align, size_t size)
{
    return counted(__libc_memalign(align, size));
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = counted(__libc_memalign(align, size));
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub_explicit(&live_allocs, 1, memory_order_relaxed);
    __libc_free(p);
}

static long ct_live_allocs(void)
{
    return atomic_load_explicit(&live_allocs, memory_order_relaxed);
}
#else
static _Thread_local long thread_allocs;
static long ct_live_allocs(void)
{
    return 0;
}
#endif

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), read without allocating (so the
 * counts above stay quiet). */
static long ct_status_kib(const char *field)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "open /proc/self/status: %s", strerror(errno));
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    char key[32];
    snprintf(key, sizeof key, "\n%s:", field);
    const char *line = strstr(buf, key);
    ck_assert_ptr_nonnull(line);
    return strtol(line + strlen(key), NULL, 10);
}

static long ct_rss_kib(void)
{
    return ct_status_kib("VmRSS");
}

/* Trims the heap and measures RSS until it is at most limit_kib or timeout_s passed; returns the
 * last figure. A worker frees a detached task's future just after the task's function returned,
 * so the last blocks come back a moment after the last task counted itself. */
static long ct_settled_rss_kib(long limit_kib, double timeout_s)
{
    int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * 1e9);
    for (;;) {
        malloc_trim(0);
        long rss = ct_rss_kib();
        if (rss <= limit_kib || tu_now_ns() > deadline)
            return rss;
        tu_sleep_ms(10);
    }
}

/* RSS once the heap is trimmed and the workers had a moment to finish what they were doing. */
static long ct_quiet_rss_kib(void)
{
    tu_sleep_ms(100);
    malloc_trim(0);
    return ct_rss_kib();
}

/* Likewise for the count of live allocations: waits until it is at most limit. */
static long ct_settled_live_allocs(long limit, double timeout_s)
{
    int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * 1e9);
    for (;;) {
        long n = ct_live_allocs();
        if (n <= limit || tu_now_ns() > deadline)
            return n;
        tu_sleep_ms(10);
    }
}

/* ---------------------------------------------------------------------------------------------
 * A burst of detached tasks gives its memory back
 */

static atomic_uchar *g_seen; /* one per task of the current burst: times it ran */
static atomic_int g_ran;     /* tasks of the current burst that ran */

static int burst_task(void *arg, void **result)
{
    (void)result;
    /* relaxed: published by the release below */
    atomic_fetch_add_explicit(&g_seen[(uintptr_t)arg], 1, memory_order_relaxed);
    /* release: pairs with the test thread's acquire load in run_burst */
    atomic_fetch_add_explicit(&g_ran, 1, memory_order_release);
    return 0;
}

typedef struct hold {
    tu_gate gate;
    atomic_int started, finished;
} hold;

static int hold_task(void *arg, void **result)
{
    (void)result;
    hold *h = arg;
    atomic_fetch_add(&h->started, 1);
    TU_EXPECT(tu_gate_wait(&h->gate));
    atomic_fetch_add(&h->finished, 1); /* the last use of *h */
    return 0;
}

/* Submits n detached tasks from the calling (test) thread, waits until all ran, and checks that
 * each ran exactly once. g_seen must hold n entries. With held, the pool's workers (there are
 * `held` of them) are kept busy until all n are submitted, so that all are out at once. Returns
 * the heap allocations the submissions made (0 in sanitizer builds). */
static long run_burst(weft_pool *p, long n, int held)
{
    memset((void *)g_seen, 0, (size_t)n);
    atomic_store(&g_ran, 0);
    hold h;
    tu_gate_init(&h.gate);
    atomic_init(&h.started, 0);
    atomic_init(&h.finished, 0);
    for (int i = 0; i < held; i++)
        ck_assert_int_eq(weft_submit(p, hold_task, &h, NULL), 0);
    ck_assert(tu_wait_atomic_ge(&h.started, held, TU_PATIENCE_S));
    /* No ck_assert per task: Check allocates for each one, and would pace the submissions. */
    int rc = 0;
    long allocs = thread_allocs;
    for (long i = 0; i < n && rc == 0; i++)
        rc = weft_submit(p, burst_task, (void *)(uintptr_t)i, NULL);
    allocs = thread_allocs - allocs;
    tu_gate_open(&h.gate);
    ck_assert_msg(rc == 0, "weft_submit = %d (%s)", rc, weft_strerror(rc));
    /* Generous: a million tasks on two workers under ThreadSanitizer on a busy machine. */
    ck_assert_msg(tu_wait_atomic_ge(&g_ran, (int)n, 10 * TU_PATIENCE_S),
                  "only %d of %ld tasks ran in time", tu_ld(&g_ran), n);
    long wrong = 0, first = -1;
    for (long i = 0; i < n; i++) {
        if (atomic_load_explicit(&g_seen[i], memory_order_relaxed) != 1) {
            if (first < 0)
                first = i;
            wrong++;
        }
    }
    ck_assert_msg(wrong == 0,
                  "%ld of %ld tasks did not run exactly once (first: #%ld ran %d times)", wrong, n,
                  first, first < 0 ? 0 : (int)atomic_load(&g_seen[first]));
    ck_assert(tu_wait_atomic_ge(&h.finished, held, TU_PATIENCE_S)); /* h lives on this stack */
    return allocs;
}

START_TEST(test_burst_gives_memory_back)
{
    tu_failures_reset();
    long n = BURST * tu_stress_scale();
    ck_assert_int_le(n, INT_MAX);
    g_seen = malloc((size_t)n);
    ck_assert_ptr_nonnull(g_seen);
    memset((void *)g_seen, 0, (size_t)n); /* resident before the first measurement */

    weft_pool *p = tu_pool_new(2, "cache");
    run_burst(p, n / 100, 0); /* warm up: threads, queues, caches at their working size */
    long before = ct_quiet_rss_kib();

    int64_t t0 = tu_now_ns();
    run_burst(p, n, 2);
    double secs = (double)(tu_now_ns() - t0) / 1e9;
    double settle_s = CT_JUDGE_MEMORY ? 5.0 : 0.0;
    long after = ct_settled_rss_kib(before + RSS_SLACK_KIB, settle_s);
    tu_pool_free(p);
    long destroyed = ct_settled_rss_kib(before + RSS_SLACK_KIB, settle_s);
    fprintf(stderr,
            "test_burst_gives_memory_back: %ld tasks in %.2f s; VmRSS %ld KiB before, "
            "peak %ld KiB, %ld KiB after, %ld KiB after destroy\n",
            n, secs, before, ct_status_kib("VmHWM"), after, destroyed);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(tu_ld(&g_ran), (int)n); /* and nothing ran twice after the check */
    free((void *)g_seen);
    g_seen = NULL;
    if (!CT_JUDGE_MEMORY)
        return;
    ck_assert_msg(after <= before + RSS_SLACK_KIB,
                  "after a burst of %ld detached tasks VmRSS is %ld KiB, %ld KiB above the %ld "
                  "KiB before it (at most %ld allowed)",
                  n, after, after - before, before, RSS_SLACK_KIB);
    ck_assert_msg(destroyed <= before + RSS_SLACK_KIB,
                  "after destroying the pool VmRSS is %ld KiB, %ld KiB above the %ld KiB before "
                  "the burst (at most %ld allowed)",
                  destroyed, destroyed - before, before, RSS_SLACK_KIB);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Blocks freed on other threads come back
 */

#define ROUND 64 /* tasks per round: well below what a cache holds */

START_TEST(test_remote_frees_come_back)
{
    tu_failures_reset();
    long rounds = 2000 * tu_stress_scale();
    g_seen = malloc(ROUND);
    ck_assert_ptr_nonnull(g_seen);
    weft_pool *p = tu_pool_new(2, "cache");

    /* Detached: the workers free every future, onto the test thread's cache. */
    for (int r = 0; r < 20; r++)
        run_burst(p, ROUND, 0);
    long allocs = 0;
    for (long r = 0; r < rounds; r++)
        allocs += run_burst(p, ROUND, 0);
    /* Each round may start before the last few futures of the one before are back. */
    if (CT_JUDGE_MEMORY) {
        fprintf(stderr,
                "test_remote_frees_come_back: %ld heap allocations by the test thread for "
                "%ld detached tasks\n",
                allocs, rounds * ROUND);
        ck_assert_msg(allocs <= rounds * ROUND / 16,
                      "the test thread made %ld heap allocations for %ld detached tasks: "
                      "blocks freed by the workers do not come back",
                      allocs, rounds * ROUND);
    }

    /* With futures, more per round than a cache holds: the test thread or a worker drops the
     * last reference, whichever comes last. */
    enum { BATCH = 1000 };
    weft_future **fs = calloc(BATCH, sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    long start = 0;
    for (long r = 0; r < 20 + rounds / 10; r++) {
        if (r == 20)
            start = ct_quiet_rss_kib();
        for (int i = 0; i < BATCH; i++)
            ck_assert_int_eq(weft_submit(p, tu_task_identity, (void *)(uintptr_t)(i + 1), &fs[i]),
                             0);
        for (int i = 0; i < BATCH; i++) {
            void *v = NULL;
            ck_assert_int_eq(weft_future_result(fs[i], &v), 0);
            ck_assert_ptr_eq(v, (void *)(uintptr_t)(i + 1));
            weft_future_release(fs[i]);
        }
    }
    long end = ct_settled_rss_kib(start + 1024, 1.0);
    fprintf(stderr,
            "test_remote_frees_come_back: VmRSS %ld KiB after warm-up, %ld KiB after %ld "
            "rounds of %d futures\n",
            start, end, rounds / 10, (int)BATCH);
    free(fs);
    tu_pool_free(p);
    free((void *)g_seen);
    g_seen = NULL;
    TU_ASSERT_NO_FAILURES();
    if (CT_JUDGE_MEMORY)
        ck_assert_msg(end <= start + 1024,
                      "VmRSS grew from %ld to %ld KiB over rounds of "
                      "submit, result and release",
                      start, end);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A thread that exits with blocks out frees everything
 */

#define EXIT_DETACHED 1000 /* detached tasks a leaving thread submits and waits for */
#define EXIT_HELD     300  /* futures of finished tasks it holds, and of tasks it leaves behind */

/* A thread that leaves with blocks of its cache everywhere: on its local list and its remote
 * stack (futures of finished tasks, released by itself and by the test thread), held by the test
 * thread (futures of tasks not run yet) and held by the pool only (the same, released). */
typedef struct leaver {
    weft_pool *pool;
    tu_gate ready;                /* the leaver is about to exit and holds `done` */
    tu_gate released;             /* the test thread released the even ones of `done` */
    tu_gate gate;                 /* the `held` tasks wait for it: opened once the leaver exited */
    atomic_int detached_ran;      /* its detached tasks */
    atomic_int held_ran;          /* its gated tasks */
    weft_future *done[EXIT_HELD]; /* finished tasks; even ones released by the test thread */
    weft_future *held[EXIT_HELD]; /* gated tasks; even ones handed to the test thread */
} leaver;

static int leaver_count(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static int leaver_gated(void *arg, void **result)
{
    leaver *l = arg;
    TU_EXPECT(tu_gate_wait(&l->gate));
    atomic_fetch_add(&l->held_ran, 1);
    *result = l;
    return 0;
}

static void *leaver_main(void *arg)
{
    leaver *l = arg;
    /* Futures the workers free while this thread lives: onto its remote stack, more than the
     * stack holds. */
    for (int i = 0; i < EXIT_DETACHED; i++)
        TU_EXPECT(weft_submit(l->pool, leaver_count, &l->detached_ran, NULL) == 0);
    TU_EXPECT(tu_wait_atomic_ge(&l->detached_ran, EXIT_DETACHED, TU_PATIENCE_S));
    for (int i = 0; i < EXIT_HELD; i++) {
        void *v = NULL;
        if (TU_EXPECT(weft_submit(l->pool, tu_task_identity, l, &l->done[i]) == 0))
            TU_EXPECT(weft_future_result(l->done[i], &v) == 0 && v == l);
        else
            l->done[i] = NULL;
    }
    /* Futures still out when it exits: freed afterwards by the test thread (even ones) or by the
     * worker that finishes the task (odd ones). */
    for (int i = 0; i < EXIT_HELD; i++) {
        if (!TU_EXPECT(weft_submit(l->pool, leaver_gated, l, &l->held[i]) == 0)) {
            l->held[i] = NULL;
            continue;
        }
        if (i % 2) {
            weft_future_release(l->held[i]);
            l->held[i] = NULL;
        }
    }
    /* Blocks on its local list (odd ones, freed here) and on its remote stack (even ones, freed
     * by the test thread) when it exits. */
    for (int i = 1; i < EXIT_HELD; i += 2)
        weft_future_release(l->done[i]);
    tu_gate_open(&l->ready);
    TU_EXPECT(tu_gate_wait(&l->released));
    return NULL;
}

/* Runs one leaving thread to the end: every task ran, every future released. */
static void run_leaver(weft_pool *p, leaver *l)
{
    memset(l, 0, sizeof *l);
    l->pool = p;
    tu_gate_init(&l->ready);
    tu_gate_init(&l->released);
    tu_gate_init(&l->gate);
    atomic_init(&l->detached_ran, 0);
    atomic_init(&l->held_ran, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, leaver_main, l), 0);
    bool ready = tu_gate_wait(&l->ready);
    if (ready) {
        for (int i = 0; i < EXIT_HELD; i += 2)
            weft_future_release(l->done[i]);
    }
    tu_gate_open(&l->released);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(ready, "the leaving thread did not get ready in time");
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(tu_ld(&l->held_ran), 0); /* blocks were still out at its exit */
    tu_gate_open(&l->gate);
    for (int i = 0; i < EXIT_HELD; i += 2) {
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(l->held[i], &v), 0);
        ck_assert_ptr_eq(v, l);
        weft_future_release(l->held[i]);
    }
    ck_assert(tu_wait_atomic_ge(&l->held_ran, EXIT_HELD, TU_PATIENCE_S));
    ck_assert_int_eq(tu_ld(&l->detached_ran), EXIT_DETACHED);
    TU_ASSERT_NO_FAILURES();
}

START_TEST(test_exiting_threads_free_everything)
{
    tu_failures_reset();
    int threads = 8 * (int)tu_stress_scale();
    leaver *l = calloc(1, sizeof *l);
    ck_assert_ptr_nonnull(l);
    weft_pool *p = tu_pool_new(2, "cache");

    /* Warm up: the first thread leaves glibc's thread stack cache and the like behind. */
    run_leaver(p, l);
    tu_sleep_ms(100);
    long before = ct_live_allocs();
    for (int k = 0; k < threads; k++)
        run_leaver(p, l);
    /* The odd futures are freed by workers just after their tasks counted themselves. */
    long after = ct_settled_live_allocs(before, CT_JUDGE_MEMORY ? 5.0 : 0.0);
    tu_pool_free(p);
    free(l);
    if (CT_JUDGE_MEMORY) {
        fprintf(stderr,
                "test_exiting_threads_free_everything: %ld live heap allocations before %d "
                "threads came and went, %ld after\n",
                before, threads, after);
        ck_assert_msg(after <= before,
                      "%ld heap allocations more after %d threads exited with blocks out (each "
                      "left %d tasks with futures behind)",
                      after - before, threads, EXIT_HELD);
    }
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("memory");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_burst_gives_memory_back);
    tcase_add_test(tc, test_remote_frees_come_back);
    tcase_add_test(tc, test_exiting_threads_free_everything);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(cache_suite());
}
