/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the Check suites: gates, deadlines, CPU-time measurement, environment
 * sizing, reading a descriptor to its end and a way for worker threads to record failures.
 *
 * Check's ck_assert*() may only be called from the test's own thread (it longjmps / exits the
 * forked child). Code running on workers, hooks and helper threads uses TU_EXPECT() instead,
 * which records the first failure; the test thread then calls TU_ASSERT_NO_FAILURES().
 *
 * Everything here is static inline so that each test file gets its own copy and unused helpers
 * cost nothing (no -Wunused warnings).
 */
#ifndef WEFT_TESTUTIL_H
#define WEFT_TESTUTIL_H

#include <check.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

/* Upper bound for any wait on a condition that should arrive promptly. Generous because the
 * suites also run under ThreadSanitizer on two cores; a hang is caught long before Check's own
 * timeout kills the test, with a message saying where. */
#define TU_PATIENCE_S 30.0

/* ---------------------------------------------------------------------------------------------
 * Failures recorded off the test thread
 */

typedef struct tu_failures {
    atomic_int count;
    _Atomic(const char *) file;
    atomic_int line;
    _Atomic(const char *) what;
} tu_failures;

static inline tu_failures *tu_failures_get(void)
{
    static tu_failures f;
    return &f;
}

static inline void tu_failures_reset(void)
{
    tu_failures *f = tu_failures_get();
    atomic_store(&f->count, 0);
    atomic_store(&f->file, (const char *)NULL);
    atomic_store(&f->line, 0);
    atomic_store(&f->what, (const char *)NULL);
}

static inline void tu_fail_at(const char *file, int line, const char *what)
{
    tu_failures *f = tu_failures_get();
    if (atomic_fetch_add(&f->count, 1) == 0) {
        atomic_store(&f->file, file);
        atomic_store(&f->line, line);
        atomic_store(&f->what, what);
    }
}

static inline bool tu_expect(bool ok, const char *file, int line, const char *what)
{
    if (!ok)
        tu_fail_at(file, line, what);
    return ok;
}

/* Usable on any thread. Records (only) the first failure; evaluates to the condition. */
#define TU_EXPECT(cond) tu_expect((cond) ? true : false, __FILE__, __LINE__, #cond)

/* On the test thread only. */
#define TU_ASSERT_NO_FAILURES()                                                                    \
    do {                                                                                           \
        tu_failures *tu_f_ = tu_failures_get();                                                    \
        int tu_n_ = atomic_load(&tu_f_->count);                                                    \
        ck_assert_msg(tu_n_ == 0, "%d check(s) failed off the test thread; first at %s:%d: %s",    \
                      tu_n_, atomic_load(&tu_f_->file) ? atomic_load(&tu_f_->file) : "?",          \
                      atomic_load(&tu_f_->line),                                                   \
                      atomic_load(&tu_f_->what) ? atomic_load(&tu_f_->what) : "?");                \
    } while (0)

/* Plain functions rather than atomic_load() inside ck_assert*(), so that a failure message
 * shows the expression as written instead of the expansion of the atomic_load macro. */
static inline int tu_ld(atomic_int *p)
{
    return atomic_load(p);
}

static inline long tu_ldl(atomic_long *p)
{
    return atomic_load(p);
}

/* ---------------------------------------------------------------------------------------------
 * Time
 */

static inline int64_t tu_clock_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t tu_now_ns(void)
{
    return tu_clock_ns(CLOCK_MONOTONIC);
}

/* Threads of this process, from /proc/self/status; -1 if unreadable. */
static inline int tu_thread_count(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    if (fp == NULL)
        return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    }
    fclose(fp);
    return n;
}

/* CPU time of the whole process (all threads). */
static inline int64_t tu_process_cpu_ns(void)
{
    return tu_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* CPU time of the calling thread. */
static inline int64_t tu_thread_cpu_ns(void)
{
    return tu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static inline void tu_sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline void tu_sleep_ms(int64_t ms)
{
    tu_sleep_ns(ms * 1000000);
}

#define TU_MS(x) ((int64_t)(x)*1000000)

/* ---------------------------------------------------------------------------------------------
 * Gates: a flag one thread opens and others wait for with a short sleep loop (never a wait of
 * the library, so a task blocked on a gate really occupies its worker).
 */

typedef struct tu_gate {
    atomic_int open;
} tu_gate;

static inline void tu_gate_init(tu_gate *g)
{
    atomic_init(&g->open, 0);
}

static inline void tu_gate_open(tu_gate *g)
{
    atomic_store(&g->open, 1);
}

static inline bool tu_gate_is_open(tu_gate *g)
{
    return atomic_load(&g->open) != 0;
}

/* Returns false if the gate did not open within timeout_s seconds. */
static inline bool tu_gate_wait_for(tu_gate *g, double timeout_s)
{
    int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * 1e9);
    while (!tu_gate_is_open(g)) {
        if (tu_now_ns() > deadline)
            return false;
        tu_sleep_ns(200000);
    }
    return true;
}

static inline bool tu_gate_wait(tu_gate *g)
{
    return tu_gate_wait_for(g, TU_PATIENCE_S);
}

/* Waits until *v >= target; false on timeout. */
static inline bool tu_wait_atomic_ge(atomic_int *v, int target, double timeout_s)
{
    int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * 1e9);
    while (atomic_load(v) < target) {
        if (tu_now_ns() > deadline)
            return false;
        tu_sleep_ns(200000);
    }
    return true;
}

/* Waits until the future is finished, polling its state only (no library wait); false on
 * timeout. */
static inline bool tu_wait_done(const weft_future *f, double timeout_s)
{
    int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * 1e9);
    while (!weft_future_done(f)) {
        if (tu_now_ns() > deadline)
            return false;
        tu_sleep_ns(200000);
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Environment
 */

/* A positive integer from the environment, or def when unset, empty or unparsable. */
static inline long tu_env_long(const char *name, long def)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return def;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0)
        return def;
    return v;
}

/* $WEFT_STRESS_SCALE: multiplier for stress sizes, default 1. */
static inline long tu_stress_scale(void)
{
    return tu_env_long("WEFT_STRESS_SCALE", 1);
}

/* Saves and restores one environment variable around a test body (tests run in a forked child,
 * but CK_FORK=no runs them in one process). */
typedef struct tu_env_saved {
    const char *name;
    char *value; /* NULL: was unset */
} tu_env_saved;

static inline tu_env_saved tu_env_set(const char *name, const char *value)
{
    tu_env_saved s = {name, NULL};
    const char *old = getenv(name);
    if (old)
        s.value = strdup(old);
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return s;
}

static inline void tu_env_restore(tu_env_saved *s)
{
    if (s->value)
        setenv(s->name, s->value, 1);
    else
        unsetenv(s->name);
    free(s->value);
    s->value = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Descriptors
 */

/* Reads everything from fd (from its current offset) into a NUL-terminated malloc'd buffer;
 * NULL on error. *len (if not NULL) receives the length. */
static inline char *tu_read_fd(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(b);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    b[n] = '\0';
    if (len != NULL)
        *len = n;
    return b;
}

/* ---------------------------------------------------------------------------------------------
 * Pools and tasks
 */

/* Creates a pool with n workers (and an optional name prefix), asserting success. Test thread
 * only. */
static inline weft_pool *tu_pool_new(unsigned n, const char *name)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = n;
    cfg.name = name;
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    ck_assert_msg(rc == 0, "weft_pool_create(threads=%u) = %d (%s)", n, rc, weft_strerror(rc));
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(weft_pool_size(p), n);
    return p;
}

/* A pool of `threads` workers with these limits on outside submissions (0: none). */
static inline weft_pool *tu_pool_limits(unsigned threads, size_t max_pending, size_t max_inflight)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = threads;
    cfg.max_pending = max_pending;
    cfg.max_inflight = max_inflight;
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    ck_assert_msg(rc == 0, "weft_pool_create = %d (%s)", rc, weft_strerror(rc));
    return p;
}

/* weft_submit that must succeed: the future. */
static inline weft_future *tu_submit_ok(weft_pool *p, weft_fn fn, void *arg)
{
    weft_future *f = NULL;
    int rc = weft_submit(p, fn, arg, &f);
    ck_assert_msg(rc == 0, "weft_submit = %d (%s)", rc, weft_strerror(rc));
    ck_assert_ptr_nonnull(f);
    return f;
}

static inline void tu_pool_free(weft_pool *p)
{
    int rc = weft_pool_destroy(p);
    ck_assert_msg(rc == 0, "weft_pool_destroy = %d (%s)", rc, weft_strerror(rc));
}

/* A task that returns its argument as its value. */
static inline int tu_task_identity(void *arg, void **result)
{
    *result = arg;
    return 0;
}

/* A task that increments the atomic_int its argument points to. */
static inline int tu_task_count(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

/* A task that waits for the tu_gate its argument points to (sleep loop, occupies the worker). */
static inline int tu_task_gate(void *arg, void **result)
{
    (void)result;
    TU_EXPECT(tu_gate_wait((tu_gate *)arg));
    return 0;
}

/* A gate whose task says it has started: tu_task_gated marks `started`, waits for the gate
 * (occupying its worker) and returns its argument as its value. */
typedef struct tu_gated {
    tu_gate gate;
    atomic_int started;
} tu_gated;

static inline void tu_gated_init(tu_gated *g)
{
    tu_gate_init(&g->gate);
    atomic_init(&g->started, 0);
}

static inline int tu_task_gated(void *arg, void **result)
{
    tu_gated *g = arg;
    atomic_store(&g->started, 1);
    TU_EXPECT(tu_gate_wait(&g->gate));
    *result = arg;
    return 0;
}

/* A task that sleeps for (intptr_t)arg milliseconds. */
static inline int tu_task_sleep_ms(void *arg, void **result)
{
    (void)result;
    tu_sleep_ms((intptr_t)arg);
    return 0;
}

/* Submits one task and checks it runs, from the test thread. Used to show that a pool still
 * works after something (a failed call, a shutdown attempt) happened to it. */
static inline void tu_pool_check_works(weft_pool *p)
{
    static int marker;
    weft_future *f = NULL;
    int rc = weft_submit(p, tu_task_identity, &marker, &f);
    ck_assert_msg(rc == 0, "weft_submit = %d (%s)", rc, weft_strerror(rc));
    void *v = NULL;
    rc = weft_future_result(f, &v);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_eq(v, &marker);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    weft_future_release(f);
}

/* Runs a suite and returns the process exit status. */
static inline int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* WEFT_TESTUTIL_H */
