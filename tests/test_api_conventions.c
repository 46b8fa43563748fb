/* SPDX-License-Identifier: MIT */
/*
 * API conventions: version, weft_strerror, NULL-tolerant functions, and every -EINVAL path of the
 * pool and future API, each followed by a check that the failed call changed nothing.
 */
#include "testutil.h"

#include <limits.h>

/* ---------------------------------------------------------------------------------------------
 * Version
 */

START_TEST(test_version_format)
{
    const char *v = weft_version();
    ck_assert_ptr_nonnull(v);
    int major = -1, minor = -1, patch = -1, n = 0;
    ck_assert_int_eq(sscanf(v, "%d.%d.%d%n", &major, &minor, &patch, &n), 3);
    ck_assert_int_eq(major, WEFT_VERSION_MAJOR);
    ck_assert_int_eq(minor, WEFT_VERSION_MINOR);
    ck_assert_int_eq(patch, WEFT_VERSION_PATCH);
    /* The three numbers come first, written plainly (no sign, no spaces, no leading zeros). */
    char expect[64];
    snprintf(expect, sizeof expect, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
             WEFT_VERSION_PATCH);
    ck_assert_int_eq(strncmp(v, expect, strlen(expect)), 0);
    ck_assert_int_eq(n, (int)strlen(expect));
    /* Whatever follows is a suffix, not another number component. */
    ck_assert(v[n] == '\0' || (v[n] != '.' && (v[n] < '0' || v[n] > '9')));
    /* Stable across calls. */
    ck_assert_str_eq(weft_version(), v);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * weft_strerror
 */

static const int listed_codes[] = {0,          -EINVAL, -ENOMEM,  -ETIMEDOUT, -ECANCELED,
                                   -ESHUTDOWN, -EAGAIN, -EDEADLK, -ENOENT};
#define N_LISTED ((int)(sizeof listed_codes / sizeof listed_codes[0]))

START_TEST(test_strerror_listed_codes)
{
    for (int i = 0; i < N_LISTED; i++) {
        const char *s = weft_strerror(listed_codes[i]);
        ck_assert_msg(s != NULL, "weft_strerror(%d) is NULL", listed_codes[i]);
        ck_assert_msg(s[0] != '\0', "weft_strerror(%d) is empty", listed_codes[i]);
        /* Static: the same text every time. */
        ck_assert_str_eq(weft_strerror(listed_codes[i]), s);
    }
    for (int i = 0; i < N_LISTED; i++)
        for (int j = i + 1; j < N_LISTED; j++)
            ck_assert_msg(strcmp(weft_strerror(listed_codes[i]), weft_strerror(listed_codes[j])),
                          "weft_strerror(%d) and weft_strerror(%d) are both \"%s\"",
                          listed_codes[i], listed_codes[j], weft_strerror(listed_codes[i]));
}
END_TEST

START_TEST(test_strerror_other_codes)
{
    static const int others[] = {1,      7,    42,    EINVAL, INT_MAX, -1,     -EIO,
                                 -EPERM, -999, -4095, -99999, INT_MIN, -ENOSYS};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        const char *s = weft_strerror(others[i]);
        ck_assert_msg(s != NULL, "weft_strerror(%d) is NULL", others[i]);
        ck_assert_msg(s[0] != '\0', "weft_strerror(%d) is empty", others[i]);
    }
    /* A task's own failure code is not "success". */
    ck_assert_str_ne(weft_strerror(7), weft_strerror(0));
    ck_assert_str_ne(weft_strerror(-99999), weft_strerror(0));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * NULL-tolerant functions
 */

START_TEST(test_null_tolerant)
{
    weft_future_release(NULL);
    weft_future_retain(NULL);
    ck_assert_uint_eq(weft_pool_size(NULL), 0);
    ck_assert(!weft_future_done(NULL));
    ck_assert_int_eq(weft_future_state(NULL), WEFT_CANCELLED);
    ck_assert_int_eq(weft_pool_destroy(NULL), 0);
}
END_TEST

START_TEST(test_config_init_defaults)
{
    weft_config cfg;
    memset(&cfg, 0xA5, sizeof cfg);
    weft_config_init(&cfg);
    ck_assert_uint_eq(cfg.threads, 0);
    ck_assert_int_eq(cfg.bind, WEFT_BIND_NONE);
    ck_assert_ptr_null(cfg.name);
    ck_assert(cfg.on_worker_start == NULL);
    ck_assert(cfg.on_worker_stop == NULL);
    ck_assert_ptr_null(cfg.hook_data);
    ck_assert_uint_eq(cfg.max_pending, 0);
    ck_assert_uint_eq(cfg.stack_size, 0);
}
END_TEST

START_TEST(test_worker_index_outside)
{
    ck_assert_int_eq(weft_worker_index(), -1);
    ck_assert(!weft_cancel_requested());
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * weft_pool_create
 */

#define SENTINEL ((weft_pool *)(uintptr_t)0xDEADBEEF)

START_TEST(test_create_null_cfg)
{
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(NULL, &p), 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(weft_pool_size(p), 1);
    tu_pool_check_works(p);
    tu_pool_free(p);
}
END_TEST

START_TEST(test_create_out_null)
{
    ck_assert_int_eq(weft_pool_create(NULL, NULL), -EINVAL);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 2;
    ck_assert_int_eq(weft_pool_create(&cfg, NULL), -EINVAL);
}
END_TEST

static void check_create_einval(const weft_config *cfg, const char *what)
{
    weft_pool *p = SENTINEL;
    int rc = weft_pool_create(cfg, &p);
    ck_assert_msg(rc == -EINVAL, "%s: weft_pool_create = %d (%s), expected -EINVAL", what, rc,
                  weft_strerror(rc));
    ck_assert_msg(p == SENTINEL, "%s: *out was written on failure", what);
}

START_TEST(test_create_bad_bind)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 2;
    cfg.bind = (weft_bind)3;
    check_create_einval(&cfg, "bind=3");
    cfg.bind = (weft_bind)-1;
    check_create_einval(&cfg, "bind=-1");
    cfg.bind = (weft_bind)1000;
    check_create_einval(&cfg, "bind=1000");
}
END_TEST

START_TEST(test_create_too_many_threads)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = WEFT_MAX_THREADS + 1;
    check_create_einval(&cfg, "threads=WEFT_MAX_THREADS+1");
    cfg.threads = UINT_MAX;
    check_create_einval(&cfg, "threads=UINT_MAX");
}
END_TEST

START_TEST(test_create_small_stack)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    cfg.stack_size = 1;
    check_create_einval(&cfg, "stack_size=1");
    cfg.stack_size = 1024;
    check_create_einval(&cfg, "stack_size=1024");
}
END_TEST

START_TEST(test_create_bad_env_threads)
{
    static const char *bad[] = {"abc", "4x", "x4", "-3", "1.5", "two", "0x"};
    weft_config cfg;
    weft_config_init(&cfg); /* threads 0: the environment decides */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_env_saved s = tu_env_set("WEFT_THREADS", bad[i]);
        char what[64];
        snprintf(what, sizeof what, "WEFT_THREADS=\"%s\"", bad[i]);
        check_create_einval(&cfg, what);
        check_create_einval(NULL, what);
        tu_env_restore(&s);
    }
    /* The environment fixed, creation works again: nothing was left behind. */
    tu_env_saved s = tu_env_set("WEFT_THREADS", "2");
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), 2);
    tu_pool_check_works(p);
    tu_pool_free(p);
    tu_env_restore(&s);
}
END_TEST

START_TEST(test_create_bad_env_bind)
{
    static const char *bad[] = {"bogus", "compactx", "spread2", "nonee", "fast", "1x"};
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 2; /* bind NONE: the environment decides */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_env_saved s = tu_env_set("WEFT_BIND", bad[i]);
        char what[64];
        snprintf(what, sizeof what, "WEFT_BIND=\"%s\"", bad[i]);
        check_create_einval(&cfg, what);
        tu_env_restore(&s);
    }
    static const char *good[] = {"none", "compact", "spread"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tu_env_saved s = tu_env_set("WEFT_BIND", good[i]);
        weft_pool *p = NULL;
        int rc = weft_pool_create(&cfg, &p);
        ck_assert_msg(rc == 0, "WEFT_BIND=%s: weft_pool_create = %d", good[i], rc);
        tu_pool_check_works(p);
        tu_pool_free(p);
        tu_env_restore(&s);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * weft_submit
 */

static int never_called(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

START_TEST(test_submit_einval)
{
    static atomic_int calls;
    atomic_store(&calls, 0);
    weft_pool *p = tu_pool_new(2, NULL);
    weft_future *f = (weft_future *)SENTINEL;

    ck_assert_int_eq(weft_submit(NULL, never_called, &calls, &f), -EINVAL);
    ck_assert_ptr_eq(f, (weft_future *)SENTINEL);
    ck_assert_int_eq(weft_submit(NULL, never_called, &calls, NULL), -EINVAL);
    ck_assert_int_eq(weft_submit(p, NULL, &calls, &f), -EINVAL);
    ck_assert_ptr_eq(f, (weft_future *)SENTINEL);
    ck_assert_int_eq(weft_submit(p, NULL, NULL, NULL), -EINVAL);

    /* The failed submits changed nothing: the pool still works and nothing extra ran. */
    tu_pool_check_works(p);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&calls), 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Futures
 */

START_TEST(test_wait_einval)
{
    ck_assert_int_eq(weft_future_wait(NULL, 0), -EINVAL);
    ck_assert_int_eq(weft_future_wait(NULL, WEFT_FOREVER), -EINVAL);
    ck_assert_int_eq(weft_future_wait(NULL, 1000), -EINVAL);

    weft_pool *p = tu_pool_new(1, NULL);
    tu_gate gate;
    tu_gate_init(&gate);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_gate, &gate, &f), 0);

    /* Bad timeouts on an unfinished future: -EINVAL at once, not a wait. */
    static const int64_t bad[] = {-2, -3, -1000, -1000000000, INT64_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = weft_future_wait(f, bad[i]);
        ck_assert_msg(rc == -EINVAL, "wait(timeout=%lld) = %d", (long long)bad[i], rc);
    }
    ck_assert(!weft_future_done(f));
    tu_gate_open(&gate);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);

    /* And on a finished one. */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(weft_future_wait(f, bad[i]), -EINVAL);
    ck_assert_int_eq(weft_future_state(f), WEFT_DONE);
    ck_assert_int_eq(weft_future_wait(f, 0), 0);

    weft_future_release(f);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_result_cancel_einval)
{
    void *v = &v;
    ck_assert_int_eq(weft_future_result(NULL, &v), -EINVAL);
    ck_assert_ptr_eq(v, &v);
    ck_assert_int_eq(weft_future_result(NULL, NULL), -EINVAL);
    ck_assert_int_eq(weft_future_cancel(NULL), -EINVAL);
}
END_TEST

static atomic_int on_done_calls;

static void count_cb(weft_future *f, void *data)
{
    (void)f;
    (void)data;
    atomic_fetch_add(&on_done_calls, 1);
}

START_TEST(test_on_done_einval)
{
    atomic_store(&on_done_calls, 0);
    ck_assert_int_eq(weft_future_on_done(NULL, count_cb, NULL), -EINVAL);
    ck_assert_int_eq(tu_ld(&on_done_calls), 0);

    weft_pool *p = tu_pool_new(1, NULL);
    tu_gate gate;
    tu_gate_init(&gate);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_gate, &gate, &f), 0);
    ck_assert_int_eq(weft_future_on_done(f, NULL, NULL), -EINVAL);
    ck_assert_int_eq(weft_future_on_done(f, NULL, &gate), -EINVAL);
    /* A valid registration still works after the failed ones, and only it runs. */
    ck_assert_int_eq(weft_future_on_done(f, count_cb, NULL), 0);
    tu_gate_open(&gate);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    tu_pool_free(p); /* the finishing worker has run the callback once joined */
    ck_assert_int_eq(tu_ld(&on_done_calls), 1);

    /* Already finished: NULL cb is still -EINVAL, not a call. */
    ck_assert_int_eq(weft_future_on_done(f, NULL, NULL), -EINVAL);
    ck_assert_int_eq(tu_ld(&on_done_calls), 1);
    weft_future_release(f);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * weft_pool_shutdown
 */

START_TEST(test_shutdown_einval)
{
    ck_assert_int_eq(weft_pool_shutdown(NULL, WEFT_SHUTDOWN_DRAIN), -EINVAL);
    ck_assert_int_eq(weft_pool_shutdown(NULL, WEFT_SHUTDOWN_CANCEL), -EINVAL);

    weft_pool *p = tu_pool_new(2, NULL);
    ck_assert_int_eq(weft_pool_shutdown(p, (weft_shutdown_mode)2), -EINVAL);
    ck_assert_int_eq(weft_pool_shutdown(p, (weft_shutdown_mode)-1), -EINVAL);
    ck_assert_int_eq(weft_pool_shutdown(p, (weft_shutdown_mode)12345), -EINVAL);
    /* The failed shutdowns did not shut the pool down. */
    tu_pool_check_works(p);
    tu_pool_check_works(p);
    tu_pool_free(p);
}
END_TEST

/* A failed call in the middle of real work changes nothing: tasks submitted before and after
 * run, futures keep their states. */
START_TEST(test_failures_change_nothing)
{
    weft_pool *p = tu_pool_new(2, NULL);
    static atomic_int count;
    atomic_store(&count, 0);
    weft_future *fs[20];
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, &fs[i]), 0);
    weft_future *bad = (weft_future *)SENTINEL;
    ck_assert_int_eq(weft_submit(p, NULL, &count, &bad), -EINVAL);
    ck_assert_int_eq(weft_pool_shutdown(p, (weft_shutdown_mode)7), -EINVAL);
    ck_assert_int_eq(weft_future_wait(fs[0], -5), -EINVAL);
    ck_assert_int_eq(weft_future_on_done(fs[1], NULL, NULL), -EINVAL);
    for (int i = 10; i < 20; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, &fs[i]), 0);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_DONE);
        weft_future_release(fs[i]);
    }
    ck_assert_int_eq(tu_ld(&count), 20);
    ck_assert_ptr_eq(bad, (weft_future *)SENTINEL);
    tu_pool_free(p);
}
END_TEST

static Suite *api_conventions_suite(void)
{
    Suite *s = suite_create("api_conventions");

    TCase *tc = tcase_create("version_strerror");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_version_format);
    tcase_add_test(tc, test_strerror_listed_codes);
    tcase_add_test(tc, test_strerror_other_codes);
    tcase_add_test(tc, test_null_tolerant);
    tcase_add_test(tc, test_config_init_defaults);
    tcase_add_test(tc, test_worker_index_outside);
    suite_add_tcase(s, tc);

    tc = tcase_create("einval");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_null_cfg);
    tcase_add_test(tc, test_create_out_null);
    tcase_add_test(tc, test_create_bad_bind);
    tcase_add_test(tc, test_create_too_many_threads);
    tcase_add_test(tc, test_create_small_stack);
    tcase_add_test(tc, test_create_bad_env_threads);
    tcase_add_test(tc, test_create_bad_env_bind);
    tcase_add_test(tc, test_submit_einval);
    tcase_add_test(tc, test_wait_einval);
    tcase_add_test(tc, test_result_cancel_einval);
    tcase_add_test(tc, test_on_done_einval);
    tcase_add_test(tc, test_shutdown_einval);
    tcase_add_test(tc, test_failures_change_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(api_conventions_suite());
}
