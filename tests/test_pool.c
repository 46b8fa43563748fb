/* SPDX-License-Identifier: MIT */
/*
 * Pool: creation and sizing, the environment, worker names and hooks, idleness, shutdown and
 * destroy, several pools side by side, binding, and the signal mask of workers.
 */
#include "testutil.h"

#include <string.h>

#include <sched.h>
#include <signal.h>

#define MAX_W 64

/* ---------------------------------------------------------------------------------------------
 * Creation and size
 */

static int record_index(void *arg, void **result)
{
    int idx = weft_worker_index();
    *result = (void *)(intptr_t)idx;
    (void)arg;
    return 0;
}

/* Submits n tasks and checks that each runs on a worker with a valid index. */
static void check_runs_on_workers(weft_pool *p, int n)
{
    unsigned size = weft_pool_size(p);
    weft_future **fs = calloc((size_t)n, sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(weft_submit(p, record_index, NULL, &fs[i]), 0);
    for (int i = 0; i < n; i++) {
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(fs[i], &v), 0);
        intptr_t idx = (intptr_t)v;
        ck_assert_msg(idx >= 0 && idx < (intptr_t)size, "task ran with worker index %ld",
                      (long)idx);
        weft_future_release(fs[i]);
    }
    free(fs);
}

static int allowed_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

START_TEST(test_create_default)
{
    tu_env_saved t = tu_env_set("WEFT_THREADS", NULL);
    tu_env_saved b = tu_env_set("WEFT_BIND", NULL);
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(NULL, &p), 0);
    ck_assert_ptr_nonnull(p);
    unsigned n = weft_pool_size(p);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(n, (unsigned)allowed_cpus());
    check_runs_on_workers(p, 100);
    tu_pool_free(p);

    /* A zeroed config and an initialised one are the same as NULL. */
    weft_config cfg;
    memset(&cfg, 0, sizeof cfg);
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), n);
    tu_pool_free(p);
    weft_config_init(&cfg);
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), n);
    tu_pool_free(p);
    tu_env_restore(&b);
    tu_env_restore(&t);
}
END_TEST

START_TEST(test_create_sizes)
{
    for (unsigned n = 1; n <= 8; n++) {
        weft_pool *p = tu_pool_new(n, NULL);
        check_runs_on_workers(p, 4 * (int)n);
        tu_pool_free(p);
    }
}
END_TEST

START_TEST(test_create_destroy_repeatedly)
{
    for (int i = 0; i < 50; i++) {
        weft_pool *p = tu_pool_new(1 + (unsigned)(i % 4), NULL);
        if (i % 2)
            tu_pool_check_works(p);
        tu_pool_free(p);
    }
}
END_TEST

START_TEST(test_env_threads)
{
    tu_env_saved s = tu_env_set("WEFT_THREADS", "3");
    weft_pool *p = NULL;
    weft_config cfg;
    weft_config_init(&cfg);
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), 3);
    check_runs_on_workers(p, 30);
    tu_pool_free(p);

    ck_assert_int_eq(weft_pool_create(NULL, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), 3);
    tu_pool_free(p);

    /* An explicit count wins over the environment. */
    cfg.threads = 2;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), 2);
    tu_pool_free(p);
    tu_env_restore(&s);

    s = tu_env_set("WEFT_THREADS", "5");
    cfg.threads = 0;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), 5);
    check_runs_on_workers(p, 50);
    tu_pool_free(p);
    tu_env_restore(&s);
}
END_TEST

/* WEFT_CONFIG_NO_ENV: the environment, even a bad one, changes nothing. */
START_TEST(test_no_env)
{
    tu_env_saved t = tu_env_set("WEFT_THREADS", "abc");
    tu_env_saved b = tu_env_set("WEFT_BIND", "close");
    tu_env_saved k = tu_env_set("WEFT_STACK_SIZE", "1");
    tu_env_saved r = tu_env_set("WEFT_TRACE", "/nonexistent-dir/trace.json");
    weft_config cfg;
    weft_config_init(&cfg);
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), -EINVAL); /* the environment is read */
    ck_assert_ptr_null(p);
    cfg.flags = WEFT_CONFIG_NO_ENV;
    char why[200];
    ck_assert_int_eq(weft_config_check(&cfg, why, sizeof(why)), 0);
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    weft_machine_info mi;
    ck_assert_int_eq(weft_machine_query(&mi), 0);
    ck_assert_uint_eq(weft_pool_size(p), mi.default_threads);
    check_runs_on_workers(p, 20);
    tu_pool_free(p);
    tu_env_restore(&r);
    tu_env_restore(&k);
    tu_env_restore(&b);

    tu_env_restore(&t);
    t = tu_env_set("WEFT_THREADS", "3");
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), mi.default_threads); /* not 3 */
    tu_pool_free(p);
    tu_env_restore(&t);

    /* Unknown flag bits are refused, with a sentence, and nothing is made. */
    cfg.flags = 0x80u;
    ck_assert_int_eq(weft_config_check(&cfg, why, sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "flags"));
    p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), -EINVAL);
    ck_assert_ptr_null(p);
}
END_TEST

/* weft_config.mem_alloc/mem_free: everything the pool owns comes from them and goes back. */
typedef struct counting_mem {
    atomic_long allocs, frees;
    atomic_long bytes;
} counting_mem;

static void *cm_alloc(void *opaque, size_t size)
{
    counting_mem *m = opaque;
    atomic_fetch_add(&m->allocs, 1);
    atomic_fetch_add(&m->bytes, (long)size);
    return malloc(size);
}

static void cm_free(void *opaque, void *p)
{
    atomic_fetch_add(&((counting_mem *)opaque)->frees, 1);
    free(p);
}

static int task_fan_out(void *arg, void **result)
{
    (void)result;
    weft_pool *p = arg;
    enum { N = 5000 }; /* past the deque's first buffer: it grows, on this worker */
    static weft_future *fs[N];
    for (int i = 0; i < N; i++)
        TU_EXPECT(weft_submit(p, tu_task_identity, NULL, &fs[i]) == 0);
    for (int i = 0; i < N; i++) {
        TU_EXPECT(weft_future_wait(fs[i], WEFT_FOREVER) == 0);
        weft_future_release(fs[i]);
    }
    return 0;
}

START_TEST(test_allocator_hooks)
{
    counting_mem m;
    atomic_init(&m.allocs, 0);
    atomic_init(&m.frees, 0);
    atomic_init(&m.bytes, 0);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1; /* no thief: the fan-out below surely grows the deque */
    cfg.flags = WEFT_CONFIG_NO_ENV;
    cfg.mem_alloc = cm_alloc;
    cfg.mem_opaque = &m;
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), -EINVAL); /* one without the other */
    ck_assert_ptr_null(p);
    ck_assert_int_eq(atomic_load(&m.allocs), 0);
    cfg.mem_free = cm_free;
    char path[] = "/tmp/weft-test-alloc-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    cfg.trace_path = path; /* trace rings too */
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    long made = atomic_load(&m.allocs);
    ck_assert_int_gt(made, 5); /* the pool, workers, deques, shards, parking, rings, ... */
    size_t before = weft_pool_memory(p);
    ck_assert_uint_ge(before, (size_t)atomic_load(&m.bytes));

    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, task_fan_out, p, &f), 0);
    ck_assert_int_eq(weft_future_wait(f, WEFT_FOREVER), 0);
    weft_future_release(f);
    ck_assert_int_gt(atomic_load(&m.allocs), made); /* a deque grew, through the hooks */
    ck_assert_uint_gt(weft_pool_memory(p), before);

    weft_group *g = NULL;
    long with_group = atomic_load(&m.allocs);
    ck_assert_int_eq(weft_group_create(p, &g), 0);
    ck_assert_int_eq(atomic_load(&m.allocs), with_group + 1);
    ck_assert_int_eq(weft_group_destroy(g), 0);

    tu_pool_free(p);
    unlink(path);
    ck_assert_int_eq(atomic_load(&m.frees), atomic_load(&m.allocs)); /* every byte back */
    ck_assert_uint_eq(weft_pool_memory(NULL), 0);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

START_TEST(test_stack_size)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 2;
    cfg.stack_size = (size_t)1 << 20;
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    check_runs_on_workers(p, 20);
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Worker index
 */

static void *index_in_thread(void *arg)
{
    *(int *)arg = weft_worker_index();
    return NULL;
}

START_TEST(test_worker_index)
{
    ck_assert_int_eq(weft_worker_index(), -1);
    weft_pool *p = tu_pool_new(3, NULL);
    ck_assert_int_eq(weft_worker_index(), -1);
    check_runs_on_workers(p, 60);

    int other = 12345;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, index_in_thread, &other), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(other, -1);
    tu_pool_free(p);
    ck_assert_int_eq(weft_worker_index(), -1);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Names and hooks
 */

typedef struct hook_state {
    unsigned n;
    pthread_t test_thread;
    _Atomic(weft_pool *) pool;              /* set by the test once create returned */
    _Atomic(weft_pool *) start_pool[MAX_W]; /* what the start hook was given */
    atomic_int started[MAX_W];
    atomic_int stopped[MAX_W];
    atomic_int stop_saw_done[MAX_W];
    atomic_int tasks_done;
    atomic_int tasks_ran;
    char names[MAX_W][16];
    atomic_int named[MAX_W];
    pthread_t threads[MAX_W];
} hook_state;

static void on_start(weft_pool *pool, unsigned worker, void *data)
{
    hook_state *h = data;
    if (!TU_EXPECT(worker < h->n))
        return;
    TU_EXPECT(weft_worker_index() == (int)worker);
    TU_EXPECT(!pthread_equal(pthread_self(), h->test_thread));
    TU_EXPECT(atomic_load(&h->stopped[worker]) == 0);
    TU_EXPECT(pool != NULL);
    TU_EXPECT(weft_pool_size(pool) == h->n); /* hooks may call weft functions */
    atomic_store(&h->start_pool[worker], pool);
    h->threads[worker] = pthread_self();
    TU_EXPECT(pthread_getname_np(pthread_self(), h->names[worker], 16) == 0);
    atomic_store(&h->named[worker], 1);
    atomic_fetch_add(&h->started[worker], 1);
}

static void on_stop(weft_pool *pool, unsigned worker, void *data)
{
    hook_state *h = data;
    if (!TU_EXPECT(worker < h->n))
        return;
    TU_EXPECT(weft_worker_index() == (int)worker);
    TU_EXPECT(pthread_equal(pthread_self(), h->threads[worker]));
    TU_EXPECT(pool == atomic_load(&h->pool));
    TU_EXPECT(atomic_load(&h->started[worker]) == 1);
    atomic_store(&h->stop_saw_done[worker], atomic_load(&h->tasks_done));
    atomic_fetch_add(&h->stopped[worker], 1);
}

static hook_state *hook_state_new(unsigned n)
{
    hook_state *h = calloc(1, sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->n = n;
    h->test_thread = pthread_self();
    for (int i = 0; i < MAX_W; i++)
        atomic_store(&h->stop_saw_done[i], -1);
    return h;
}

static weft_pool *hook_pool_new(hook_state *h, const char *name)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = h->n;
    cfg.name = name;
    cfg.on_worker_start = on_start;
    cfg.on_worker_stop = on_stop;
    cfg.hook_data = h;
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    ck_assert_uint_eq(weft_pool_size(p), h->n);
    atomic_store(&h->pool, p);
    return p;
}

static int hooked_task(void *arg, void **result)
{
    hook_state *h = arg;
    int w = weft_worker_index();
    (void)result;
    if (!TU_EXPECT(w >= 0 && w < (int)h->n))
        return -EINVAL;
    /* The start hook of this worker ran before any of its tasks, the stop hook not yet. */
    TU_EXPECT(atomic_load(&h->started[w]) == 1);
    TU_EXPECT(atomic_load(&h->stopped[w]) == 0);
    int k = atomic_fetch_add(&h->tasks_ran, 1);
    if (k % 16 == 0)
        tu_sleep_ms(1);
    atomic_fetch_add(&h->tasks_done, 1);
    return 0;
}

START_TEST(test_hooks_once_per_worker)
{
    enum { W = 4, TASKS = 400 };
    hook_state *h = hook_state_new(W);
    weft_pool *p = hook_pool_new(h, NULL);
    /* Some detached, some with futures, then destroy at once: stop hooks come after all. */
    weft_future *fs[TASKS / 2];
    for (int i = 0; i < TASKS; i++) {
        if (i % 2)
            ck_assert_int_eq(weft_submit(p, hooked_task, h, NULL), 0);
        else
            ck_assert_int_eq(weft_submit(p, hooked_task, h, &fs[i / 2]), 0);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(tu_ld(&h->tasks_done), TASKS);
    for (int w = 0; w < W; w++) {
        ck_assert_int_eq(tu_ld(&h->started[w]), 1);
        ck_assert_int_eq(tu_ld(&h->stopped[w]), 1);
        ck_assert_ptr_eq(atomic_load(&h->start_pool[w]), p);
        ck_assert_int_eq(tu_ld(&h->stop_saw_done[w]), TASKS);
        for (int v = 0; v < w; v++)
            ck_assert(!pthread_equal(h->threads[v], h->threads[w]));
    }
    for (int i = 0; i < TASKS / 2; i++) {
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_DONE);
        weft_future_release(fs[i]);
    }
    free(h);
}
END_TEST

START_TEST(test_hooks_idle_pool)
{
    /* Hooks run even when the pool never gets work. */
    hook_state *h = hook_state_new(3);
    weft_pool *p = hook_pool_new(h, "idle");
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    for (int w = 0; w < 3; w++) {
        ck_assert_int_eq(tu_ld(&h->started[w]), 1);
        ck_assert_int_eq(tu_ld(&h->stopped[w]), 1);
        ck_assert_int_eq(tu_ld(&h->stop_saw_done[w]), 0);
    }
    free(h);
}
END_TEST

typedef struct name_probe {
    char prefix[32];
    atomic_int bad;
} name_probe;

static int name_task(void *arg, void **result)
{
    name_probe *np = arg;
    (void)result;
    char got[16] = {0}, want[64];
    TU_EXPECT(pthread_getname_np(pthread_self(), got, sizeof got) == 0);
    snprintf(want, sizeof want, "%s-%d", np->prefix, weft_worker_index());
    if (!TU_EXPECT(strcmp(got, want) == 0))
        atomic_fetch_add(&np->bad, 1);
    return 0;
}

static void check_names_from_tasks(weft_pool *p, name_probe *np, int n)
{
    weft_future **fs = calloc((size_t)n, sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(weft_submit(p, name_task, np, &fs[i]), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        weft_future_release(fs[i]);
    }
    free(fs);
}

START_TEST(test_names_default)
{
    hook_state *h = hook_state_new(3);
    weft_pool *p = hook_pool_new(h, NULL);
    ck_assert(tu_wait_atomic_ge(&h->named[2], 1, TU_PATIENCE_S));
    name_probe np = {.prefix = "weft"};
    check_names_from_tasks(p, &np, 30);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    for (unsigned w = 0; w < 3; w++) {
        char want[16];
        snprintf(want, sizeof want, "weft-%u", w);
        ck_assert_str_eq(h->names[w], want);
    }
    free(h);
}
END_TEST

START_TEST(test_names_custom_and_copied)
{
    char name[16] = "io";
    hook_state *h = hook_state_new(4);
    weft_pool *p = hook_pool_new(h, name);
    /* The prefix was copied at creation. */
    strcpy(name, "XXXXXXXX");
    name_probe np = {.prefix = "io"};
    check_names_from_tasks(p, &np, 40);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    for (unsigned w = 0; w < 4; w++) {
        char want[16];
        snprintf(want, sizeof want, "io-%u", w);
        ck_assert_str_eq(h->names[w], want);
    }
    free(h);
}
END_TEST

START_TEST(test_names_long_prefix)
{
    static const char *prefix = "averyveryverylongprefix";
    enum { W = 12 };
    hook_state *h = hook_state_new(W);
    weft_pool *p = hook_pool_new(h, prefix);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    for (unsigned w = 0; w < W; w++) {
        const char *got = h->names[w];
        size_t len = strlen(got);
        ck_assert_msg(len > 0 && len <= 15, "worker %u name \"%s\"", w, got);
        const char *dash = strrchr(got, '-');
        ck_assert_msg(dash != NULL, "worker %u name \"%s\" has no '-'", w, got);
        char idx[8];
        snprintf(idx, sizeof idx, "%u", w);
        ck_assert_msg(strcmp(dash + 1, idx) == 0, "worker %u name \"%s\"", w, got);
        size_t plen = (size_t)(dash - got);
        ck_assert_msg(plen > 0, "worker %u name \"%s\": empty prefix", w, got);
        ck_assert_msg(strncmp(got, prefix, plen) == 0, "worker %u name \"%s\" vs prefix %s", w, got,
                      prefix);
        for (unsigned v = 0; v < w; v++)
            ck_assert_str_ne(h->names[v], got);
    }
    /* A prefix that fits is kept whole. */
    free(h);
    h = hook_state_new(2);
    p = hook_pool_new(h, "abcdefghijkl"); /* 12 + "-1" = 14 */
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_str_eq(h->names[0], "abcdefghijkl-0");
    ck_assert_str_eq(h->names[1], "abcdefghijkl-1");
    free(h);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Idleness
 */

START_TEST(test_idle_pool_uses_no_cpu)
{
    weft_pool *p = tu_pool_new(2, NULL);
    check_runs_on_workers(p, 100); /* wake the workers up once */
    tu_sleep_ms(300);              /* let them park */
    int64_t cpu0 = tu_process_cpu_ns();
    int64_t t0 = tu_now_ns();
    tu_sleep_ms(1000);
    int64_t cpu = tu_process_cpu_ns() - cpu0;
    int64_t wall = tu_now_ns() - t0;
    ck_assert_msg(cpu < TU_MS(50), "an idle 2-worker pool used %.1f ms of CPU in %.0f ms",
                  cpu / 1e6, wall / 1e6);

    /* Still idle after a second burst of work. */
    check_runs_on_workers(p, 1000);
    tu_sleep_ms(300);
    cpu0 = tu_process_cpu_ns();
    tu_sleep_ms(1000);
    cpu = tu_process_cpu_ns() - cpu0;
    ck_assert_msg(cpu < TU_MS(50), "after work, an idle pool used %.1f ms of CPU in 1 s",
                  cpu / 1e6);
    tu_pool_check_works(p);
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown
 */

typedef struct blocker {
    tu_gate gate;
    atomic_int started;
    weft_pool *pool;
    atomic_int submit_rc; /* weft_submit from inside, after shutdown */
} blocker;

static int blocker_task(void *arg, void **result)
{
    blocker *b = arg;
    (void)result;
    atomic_store(&b->started, 1);
    TU_EXPECT(tu_gate_wait(&b->gate));
    if (b->pool) {
        weft_future *f = NULL;
        atomic_store(&b->submit_rc, weft_submit(b->pool, tu_task_identity, NULL, &f));
        weft_future_release(f); /* NULL when refused */
    }
    return 0;
}

static void blocker_init(blocker *b, weft_pool *p)
{
    tu_gate_init(&b->gate);
    atomic_init(&b->started, 0);
    atomic_init(&b->submit_rc, 1);
    b->pool = p;
}

/* Submits the blocker and waits until it runs. */
static weft_future *blocker_start(weft_pool *p, blocker *b)
{
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, blocker_task, b, &f), 0);
    ck_assert(tu_wait_atomic_ge(&b->started, 1, TU_PATIENCE_S));
    ck_assert_int_eq(weft_future_state(f), WEFT_RUNNING);
    return f;
}

START_TEST(test_shutdown_drain)
{
    enum { N = 100 };
    weft_pool *p = tu_pool_new(1, NULL);
    blocker b;
    blocker_init(&b, p);
    weft_future *fb = blocker_start(p, &b);
    static atomic_int counts[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        atomic_store(&counts[i], 0);
        ck_assert_int_eq(weft_submit(p, tu_task_count, &counts[i], &fs[i]), 0);
    }
    /* Returns at once although the only worker is blocked. */
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert_int_eq(weft_future_state(fb), WEFT_RUNNING);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_PENDING);

    weft_future *late = (weft_future *)(uintptr_t)0x1;
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, &late), -ESHUTDOWN);
    ck_assert_ptr_eq(late, (weft_future *)(uintptr_t)0x1);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -ESHUTDOWN);

    tu_gate_open(&b.gate);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_DONE);
    }
    ck_assert_int_eq(weft_future_result(fb, NULL), 0);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    /* A task's own submit after shutdown is refused too. */
    ck_assert_int_eq(tu_ld(&b.submit_rc), -ESHUTDOWN);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tu_ld(&counts[i]), 1);
        weft_future_release(fs[i]);
    }
    weft_future_release(fb);
}
END_TEST

START_TEST(test_shutdown_drain_then_destroy)
{
    /* destroy right after DRAIN runs everything (nothing is gated here). */
    enum { N = 1000 };
    weft_pool *p = tu_pool_new(2, NULL);
    static atomic_int count;
    atomic_store(&count, 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, NULL), 0);
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&count), N);
}
END_TEST

START_TEST(test_shutdown_cancel)
{
    enum { N = 100 };
    weft_pool *p = tu_pool_new(1, NULL);
    blocker b;
    blocker_init(&b, p);
    weft_future *fb = blocker_start(p, &b);
    static atomic_int counts[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        atomic_store(&counts[i], 0);
        ck_assert_int_eq(weft_submit(p, tu_task_count, &counts[i], &fs[i]), 0);
    }
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    /* Immediately: every pending task is CANCELLED, the running one is not. */
    for (int i = 0; i < N; i++) {
        ck_assert_msg(weft_future_state(fs[i]) == WEFT_CANCELLED,
                      "task %d is in state %d right after shutdown(CANCEL)", i,
                      (int)weft_future_state(fs[i]));
        ck_assert(weft_future_done(fs[i]));
        void *v = &v;
        ck_assert_int_eq(weft_future_result(fs[i], &v), -ECANCELED);
        ck_assert_int_eq(weft_future_wait(fs[i], 0), 0);
    }
    ck_assert_int_eq(weft_future_state(fb), WEFT_RUNNING);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -ESHUTDOWN);

    tu_gate_open(&b.gate);
    ck_assert_int_eq(weft_future_result(fb, NULL), 0);
    ck_assert_int_eq(weft_future_state(fb), WEFT_DONE);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(tu_ld(&b.submit_rc), -ESHUTDOWN);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tu_ld(&counts[i]), 0);
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_CANCELLED);
        weft_future_release(fs[i]);
    }
    weft_future_release(fb);
}
END_TEST

START_TEST(test_shutdown_twice)
{
    /* DRAIN twice, then CANCEL: the CANCEL still cancels what has not started. */
    enum { N = 10 };
    weft_pool *p = tu_pool_new(1, NULL);
    blocker b;
    blocker_init(&b, NULL);
    weft_future *fb = blocker_start(p, &b);
    static atomic_int counts[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        atomic_store(&counts[i], 0);
        ck_assert_int_eq(weft_submit(p, tu_task_count, &counts[i], &fs[i]), 0);
    }
    ck_assert(!weft_pool_is_shutdown(p));
    ck_assert(!weft_pool_is_shutdown(NULL));
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert(weft_pool_is_shutdown(p));
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_PENDING);
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_CANCELLED);
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_DRAIN), 0);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -ESHUTDOWN);
    tu_gate_open(&b.gate);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(weft_future_state(fb), WEFT_DONE);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tu_ld(&counts[i]), 0);
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_CANCELLED);
        weft_future_release(fs[i]);
    }
    weft_future_release(fb);
}
END_TEST

START_TEST(test_shutdown_idle_then_destroy)
{
    weft_pool *p = tu_pool_new(2, NULL);
    ck_assert_int_eq(weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL), 0);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -ESHUTDOWN);
    tu_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Destroy
 */

typedef struct self_destroy {
    weft_pool *pool;
    atomic_int rc;
    atomic_int child_rc;
} self_destroy;

static int self_destroy_task(void *arg, void **result)
{
    self_destroy *sd = arg;
    (void)result;
    atomic_store(&sd->rc, weft_pool_destroy(sd->pool));
    /* The pool still works from inside too. */
    weft_future *f = NULL;
    int rc = weft_submit(sd->pool, tu_task_identity, sd, &f);
    if (TU_EXPECT(rc == 0)) {
        void *v = NULL;
        atomic_store(&sd->child_rc, weft_future_result(f, &v));
        TU_EXPECT(v == sd);
        weft_future_release(f);
    }
    return 0;
}

START_TEST(test_destroy_from_own_worker)
{
    for (unsigned n = 1; n <= 2; n++) {
        weft_pool *p = tu_pool_new(n, NULL);
        self_destroy sd = {.pool = p};
        atomic_init(&sd.rc, 1);
        atomic_init(&sd.child_rc, 1);
        weft_future *f = NULL;
        ck_assert_int_eq(weft_submit(p, self_destroy_task, &sd, &f), 0);
        ck_assert_int_eq(weft_future_result(f, NULL), 0);
        ck_assert_int_eq(tu_ld(&sd.rc), -EDEADLK);
        ck_assert_int_eq(tu_ld(&sd.child_rc), 0);
        weft_future_release(f);
        /* Nothing was done: the pool still takes work. */
        tu_pool_check_works(p);
        check_runs_on_workers(p, 20);
        tu_pool_free(p);
        TU_ASSERT_NO_FAILURES();
    }
}
END_TEST

START_TEST(test_destroy_waits_for_running)
{
    /* destroy waits for running and queued tasks. */
    weft_pool *p = tu_pool_new(2, NULL);
    static atomic_int count;
    atomic_store(&count, 0);
    weft_future *slow = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_sleep_ms, (void *)(intptr_t)200, &slow), 0);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &count, NULL), 0);
    tu_pool_free(p);
    ck_assert_int_eq(weft_future_state(slow), WEFT_DONE);
    ck_assert_int_eq(tu_ld(&count), 50);
    weft_future_release(slow);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Several pools
 */

typedef struct two_pools {
    weft_pool *a, *b;
} two_pools;

static int in_b(void *arg, void **result)
{
    char name[16] = {0};
    TU_EXPECT(pthread_getname_np(pthread_self(), name, sizeof name) == 0);
    TU_EXPECT(strncmp(name, "pb-", 3) == 0);
    int w = weft_worker_index();
    TU_EXPECT(w >= 0 && w < 2);
    *result = (void *)((intptr_t)arg * 3);
    return 0;
}

static int in_a(void *arg, void **result)
{
    two_pools *tp = arg;
    char name[16] = {0};
    TU_EXPECT(pthread_getname_np(pthread_self(), name, sizeof name) == 0);
    TU_EXPECT(strncmp(name, "pa-", 3) == 0);
    intptr_t x = (intptr_t)*result; /* NULL */
    TU_EXPECT(x == 0);
    static atomic_int seq;
    intptr_t k = atomic_fetch_add(&seq, 1) + 1;
    weft_future *f = NULL;
    int rc = weft_submit(tp->b, in_b, (void *)k, &f);
    if (!TU_EXPECT(rc == 0))
        return rc;
    void *v = NULL;
    rc = weft_future_result(f, &v);
    weft_future_release(f);
    TU_EXPECT(rc == 0);
    TU_EXPECT((intptr_t)v == 3 * k);
    /* Back on our own pool's worker. */
    TU_EXPECT(weft_worker_index() >= 0 && weft_worker_index() < 3);
    *result = v;
    return rc;
}

START_TEST(test_pools_side_by_side)
{
    enum { N = 200 };
    two_pools tp = {tu_pool_new(3, "pa"), tu_pool_new(2, "pb")};
    weft_future *fs[N];
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weft_submit(tp.a, in_a, &tp, &fs[i]), 0);
    intptr_t sum = 0;
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(fs[i], &v), 0);
        sum += (intptr_t)v;
        weft_future_release(fs[i]);
    }
    ck_assert_int_eq(sum, 3 * (intptr_t)N * (N + 1) / 2);
    TU_ASSERT_NO_FAILURES();

    /* Shutting one pool down does not affect the other. */
    ck_assert_int_eq(weft_pool_shutdown(tp.b, WEFT_SHUTDOWN_DRAIN), 0);
    tu_pool_check_works(tp.a);
    tu_pool_free(tp.b);
    tu_pool_check_works(tp.a);
    tu_pool_free(tp.a);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Futures outlive their pool
 */

static atomic_int late_cb;

static void late_cb_fn(weft_future *f, void *data)
{
    (void)data;
    TU_EXPECT(weft_future_state(f) == WEFT_DONE);
    atomic_fetch_add(&late_cb, 1);
}

START_TEST(test_future_outlives_pool)
{
    static int value;
    weft_pool *p = tu_pool_new(2, NULL);
    weft_future *waited = NULL, *unwaited = NULL, *slow = NULL;
    ck_assert_int_eq(weft_submit(p, tu_task_identity, &value, &waited), 0);
    ck_assert_int_eq(weft_future_wait(waited, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, &value, &unwaited), 0);
    ck_assert_int_eq(weft_submit(p, tu_task_sleep_ms, (void *)(intptr_t)100, &slow), 0);
    tu_pool_free(p);

    weft_future *fs[3] = {waited, unwaited, slow};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_DONE);
        ck_assert(weft_future_done(fs[i]));
        ck_assert_int_eq(weft_future_wait(fs[i], 0), 0);
        ck_assert_int_eq(weft_future_wait(fs[i], WEFT_FOREVER), 0);
        ck_assert_int_eq(weft_future_cancel(fs[i]), 0);
    }
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(waited, &v), 0);
    ck_assert_ptr_eq(v, &value);
    v = NULL;
    ck_assert_int_eq(weft_future_result(unwaited, &v), 0);
    ck_assert_ptr_eq(v, &value);

    atomic_store(&late_cb, 0);
    ck_assert_int_eq(weft_future_on_done(unwaited, late_cb_fn, NULL), 0);
    ck_assert_int_eq(tu_ld(&late_cb), 1);

    weft_future_retain(slow);
    weft_future_release(slow);
    for (int i = 0; i < 3; i++)
        weft_future_release(fs[i]);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Binding
 */

typedef struct bind_probe {
    cpu_set_t allowed;
    atomic_int bad;
} bind_probe;

static int bind_task(void *arg, void **result)
{
    bind_probe *bp = arg;
    cpu_set_t mine, both;
    CPU_ZERO(&mine);
    TU_EXPECT(sched_getaffinity(0, sizeof mine, &mine) == 0);
    CPU_AND(&both, &mine, &bp->allowed);
    /* Pinned or not, a worker only runs where the process may run, and somewhere. */
    TU_EXPECT(CPU_COUNT(&mine) > 0);
    TU_EXPECT(CPU_EQUAL(&both, &mine));
    *result = (void *)(intptr_t)(weft_worker_index() + 1);
    return 0;
}

static void check_bind(weft_bind bind, unsigned threads)
{
    bind_probe bp;
    CPU_ZERO(&bp.allowed);
    ck_assert_int_eq(sched_getaffinity(0, sizeof bp.allowed, &bp.allowed), 0);
    atomic_init(&bp.bad, 0);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = threads;
    cfg.bind = bind;
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    ck_assert_msg(rc == 0, "bind %d threads %u: create = %d", (int)bind, threads, rc);
    unsigned n = weft_pool_size(p);
    ck_assert_uint_ge(n, 1);
    if (threads)
        ck_assert_uint_eq(n, threads);
    enum { T = 200 };
    weft_future *fs[T];
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(weft_submit(p, bind_task, &bp, &fs[i]), 0);
    for (int i = 0; i < T; i++) {
        void *v = NULL;
        ck_assert_int_eq(weft_future_result(fs[i], &v), 0);
        ck_assert((intptr_t)v >= 1 && (intptr_t)v <= (intptr_t)n);
        weft_future_release(fs[i]);
    }
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    /* The test thread was not pinned by creating the pool. */
    cpu_set_t after;
    CPU_ZERO(&after);
    ck_assert_int_eq(sched_getaffinity(0, sizeof after, &after), 0);
    ck_assert(CPU_EQUAL(&after, &bp.allowed));
}

START_TEST(test_bind_policies)
{
    tu_env_saved b = tu_env_set("WEFT_BIND", NULL);
    static const weft_bind binds[] = {WEFT_BIND_NONE, WEFT_BIND_COMPACT, WEFT_BIND_SPREAD};
    for (int i = 0; i < 3; i++) {
        check_bind(binds[i], 0);
        check_bind(binds[i], 1);
        check_bind(binds[i], 2);
        check_bind(binds[i], 5); /* more workers than processing units */
    }
    tu_env_restore(&b);
}
END_TEST

START_TEST(test_bind_from_env)
{
    static const char *names[] = {"none", "compact", "spread"};
    for (int i = 0; i < 3; i++) {
        tu_env_saved b = tu_env_set("WEFT_BIND", names[i]);
        check_bind(WEFT_BIND_NONE, 2);
        check_bind(WEFT_BIND_NONE, 3);
        tu_env_restore(&b);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Signals
 */

static const int async_signals[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE, SIGHUP};
#define N_SIGS ((int)(sizeof async_signals / sizeof async_signals[0]))

static bool all_signals_blocked(void)
{
    sigset_t set;
    sigemptyset(&set);
    if (pthread_sigmask(SIG_BLOCK, NULL, &set) != 0)
        return false;
    for (int i = 0; i < N_SIGS; i++)
        if (sigismember(&set, async_signals[i]) != 1)
            return false;
    return true;
}

static atomic_int hook_mask_ok, hook_mask_calls;

static void sig_start_hook(weft_pool *pool, unsigned worker, void *data)
{
    (void)pool;
    (void)worker;
    (void)data;
    atomic_fetch_add(&hook_mask_calls, 1);
    if (all_signals_blocked())
        atomic_fetch_add(&hook_mask_ok, 1);
}

static int sig_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return all_signals_blocked() ? 0 : 1;
}

/* weft_config_check and weft_pool_create name what is wrong and what is accepted. */
static void expect_check(const char *var, const char *value, const char *needle)
{
    tu_env_saved e = tu_env_set(var, value);
    tu_env_saved t =
        tu_env_set("WEFT_TRACE", strcmp(var, "WEFT_TRACE_EVENTS") == 0 ? "/dev/null" : NULL);
    char why[256];
    int rc = weft_config_check(NULL, why, sizeof(why));
    weft_pool *p = NULL;
    int create = weft_pool_create(NULL, &p);
    tu_env_restore(&t);
    tu_env_restore(&e);
    if (needle == NULL) {
        ck_assert_msg(rc == 0, "%s=%s: %s", var, value, why);
        ck_assert_str_eq(why, "ok");
        ck_assert_int_eq(create, 0);
        tu_pool_free(p);
        return;
    }
    ck_assert_msg(rc == -EINVAL, "%s=%s accepted", var, value);
    ck_assert_int_eq(create, -EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(why, var) != NULL && strstr(why, needle) != NULL, "%s=%s: \"%s\"", var,
                  value, why);
}

START_TEST(test_config_check_explains)
{
    expect_check("WEFT_THREADS", "abc", "1 to 1024");
    expect_check("WEFT_THREADS", "0", "1 to 1024");
    expect_check("WEFT_THREADS", "2", NULL);
    expect_check("WEFT_BIND", "close", "none, compact or spread");
    expect_check("WEFT_BIND", "Compact", NULL);
    expect_check("WEFT_STACK_SIZE", "12Q", "K, M or G");
    expect_check("WEFT_STACK_SIZE", "-5", "K, M or G");
    expect_check("WEFT_STACK_SIZE", "8M", NULL);
    expect_check("WEFT_TRACE_EVENTS", "abc", "16 to");
    expect_check("WEFT_TRACE_EVENTS", "2", "16 to");
    expect_check("WEFT_TRACE_EVENTS", "-5", "16 to");
    expect_check("WEFT_TRACE_EVENTS", "128M", "16 to");
    expect_check("WEFT_TRACE_EVENTS", "4K", NULL);
    /* fields of weft_config too; buf may be NULL, and a short buffer is cut, terminated */
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = WEFT_MAX_THREADS + 1;
    char why[256], tiny[8];
    ck_assert_int_eq(weft_config_check(&cfg, why, sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "weft_config.threads"));
    ck_assert_int_eq(weft_config_check(&cfg, NULL, 0), -EINVAL);
    ck_assert_int_eq(weft_config_check(&cfg, tiny, sizeof(tiny)), -EINVAL);
    ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
    cfg.threads = 0;
    cfg.bind = (weft_bind)7;
    ck_assert_int_eq(weft_config_check(&cfg, why, sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "weft_config.bind"));
}
END_TEST

START_TEST(test_state_names)
{
    ck_assert_str_eq(weft_state_name(WEFT_PENDING), "PENDING");
    ck_assert_str_eq(weft_state_name(WEFT_RUNNING), "RUNNING");
    ck_assert_str_eq(weft_state_name(WEFT_DONE), "DONE");
    ck_assert_str_eq(weft_state_name(WEFT_FAILED), "FAILED");
    ck_assert_str_eq(weft_state_name(WEFT_CANCELLED), "CANCELLED");
    ck_assert_str_eq(weft_state_name((weft_state)42), "unknown");
}
END_TEST

/* A pool of one worker runs one outside thread's submissions in submission order, across the
 * batches its worker takes from the injection queue and while it is busy. */
typedef struct fifo_log {
    atomic_int next;
    int *order;
} fifo_log;

typedef struct fifo_arg {
    fifo_log *log;
    int i;
} fifo_arg;

static int fifo_task(void *arg, void **result)
{
    (void)result;
    fifo_arg *a = arg;
    int slot = atomic_fetch_add(&a->log->next, 1);
    a->log->order[slot] = a->i;
    if (a->i % 997 == 0)
        tu_sleep_ms(1); /* let submissions pile up now and then */
    return 0;
}

START_TEST(test_one_worker_runs_outside_submissions_in_order)
{
    enum { N = 20000 };
    static fifo_arg args[N];
    static int order[N];
    fifo_log log = {.order = order};
    atomic_init(&log.next, 0);
    weft_pool *p = tu_pool_new(1, NULL);
    for (int i = 0; i < N; i++) {
        args[i] = (fifo_arg){&log, i};
        ck_assert_int_eq(weft_submit(p, fifo_task, &args[i], NULL), 0);
        if (i % 4096 == 0)
            tu_sleep_ms(1); /* the worker catches up, parks, and is woken again */
    }
    tu_pool_free(p);
    ck_assert_int_eq(atomic_load(&log.next), N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(order[i] == i, "position %d ran task %d", i, order[i]);
}
END_TEST

START_TEST(test_workers_block_signals)
{
    /* The test thread starts with these signals unblocked. */
    sigset_t none, before;
    sigemptyset(&none);
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);

    atomic_store(&hook_mask_ok, 0);
    atomic_store(&hook_mask_calls, 0);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 3;
    cfg.on_worker_start = sig_start_hook;
    weft_pool *p = NULL;
    ck_assert_int_eq(weft_pool_create(&cfg, &p), 0);
    enum { T = 100 };
    weft_future *fs[T];
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(weft_submit(p, sig_task, NULL, &fs[i]), 0);
    for (int i = 0; i < T; i++) {
        ck_assert_msg(weft_future_result(fs[i], NULL) == 0,
                      "a task found an asynchronous signal unblocked on its worker");
        weft_future_release(fs[i]);
    }
    /* Creating the pool did not change the caller's mask. */
    sigemptyset(&before);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);
    for (int i = 0; i < N_SIGS; i++)
        ck_assert_int_eq(sigismember(&before, async_signals[i]), 0);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&hook_mask_calls), 3);
    ck_assert_int_eq(tu_ld(&hook_mask_ok), 3);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");

    TCase *tc = tcase_create("create");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_create_default);
    tcase_add_test(tc, test_create_sizes);
    tcase_add_test(tc, test_create_destroy_repeatedly);
    tcase_add_test(tc, test_env_threads);
    tcase_add_test(tc, test_no_env);
    tcase_add_test(tc, test_allocator_hooks);
    tcase_add_test(tc, test_stack_size);
    tcase_add_test(tc, test_worker_index);
    suite_add_tcase(s, tc);

    tc = tcase_create("hooks_names");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_hooks_once_per_worker);
    tcase_add_test(tc, test_hooks_idle_pool);
    tcase_add_test(tc, test_names_default);
    tcase_add_test(tc, test_names_custom_and_copied);
    tcase_add_test(tc, test_names_long_prefix);
    suite_add_tcase(s, tc);

    tc = tcase_create("idle");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idle_pool_uses_no_cpu);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown_destroy");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shutdown_drain);
    tcase_add_test(tc, test_shutdown_drain_then_destroy);
    tcase_add_test(tc, test_shutdown_cancel);
    tcase_add_test(tc, test_shutdown_twice);
    tcase_add_test(tc, test_shutdown_idle_then_destroy);
    tcase_add_test(tc, test_destroy_from_own_worker);
    tcase_add_test(tc, test_destroy_waits_for_running);
    suite_add_tcase(s, tc);

    tc = tcase_create("pools");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pools_side_by_side);
    tcase_add_test(tc, test_future_outlives_pool);
    tcase_add_test(tc, test_bind_policies);
    tcase_add_test(tc, test_bind_from_env);
    tcase_add_test(tc, test_workers_block_signals);
    tcase_add_test(tc, test_config_check_explains);
    tcase_add_test(tc, test_state_names);
    tcase_add_test(tc, test_one_worker_runs_outside_submissions_in_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(pool_suite());
}
