/* SPDX-License-Identifier: MIT */
/*
 * The API a server builds on (the API contract's "Servers: event loops, back-pressure, fork and
 * signals"), tested as an event loop uses it:
 *
 *  - readiness: the descriptor of an open-ended completion set is readable (POLLIN, EPOLLIN
 *    level-triggered) exactly while weft_completion_next(c, 0, &f) would hand out a future; the
 *    same facts checked through poll and through epoll. Edge-triggered epoll is not promised and
 *    not tested.
 *  - back-pressure: with max_pending = K, outside submissions succeed K times, then return
 *    -EAGAIN and change nothing, and succeed again once queued tasks start; submissions from the
 *    pool's own workers are never refused, not even while outside ones are.
 *  - a small event loop: submit with retry on -EAGAIN, wait on the descriptor, drain with
 *    timeout 0; every result arrives exactly once.
 *  - signals: workers block the asynchronous signals; a signal sent to the process from a task
 *    runs its handler on an application thread (the main thread, or the one thread that leaves
 *    it unblocked).
 *  - fork: in the child an inherited pool refuses work with -ESHUTDOWN, futures finished before
 *    the fork read as they were and can be released, unfinished ones never finish, destroy frees
 *    the pool at once, and a new pool works; the parent goes on unaffected. Children report
 *    through their exit status, under an alarm.
 */
#include "testutil.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ThreadSanitizer cannot follow threads started in the child of a multi-threaded process (it
 * dies with "dup thread with used id"), so its builds skip the new pool in the fork test's child;
 * everything else there still runs. */
#if defined(__SANITIZE_THREAD__)
#define SA_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SA_TSAN 1
#endif
#endif
#ifndef SA_TSAN
#define SA_TSAN 0
#endif

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* A task that waits for the gate its argument points to, then returns the gate as its value. */
static int task_gate_value(void *arg, void **result)
{
    TU_EXPECT(tu_gate_wait((tu_gate *)arg));
    *result = arg;
    return 0;
}

/* Readiness of a completion descriptor through poll or through a level-triggered epoll set. */
typedef enum { VIA_POLL, VIA_EPOLL } via;

typedef struct watcher {
    via how;
    int fd; /* the completion descriptor */
    int ep; /* the epoll set (VIA_EPOLL) */
} watcher;

static void watcher_open(watcher *w, via how, int fd)
{
    w->how = how;
    w->fd = fd;
    w->ep = -1;
    if (how == VIA_EPOLL) {
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(w->ep, 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd}; /* level-triggered */
        ck_assert_int_eq(epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev), 0);
    }
}

static void watcher_close(watcher *w)
{
    if (w->ep >= 0)
        close(w->ep);
}

/* Test thread only: whether the descriptor is readable within timeout_ms (0: right now). */
static bool readable(const watcher *w, int timeout_ms)
{
    int r;
    if (w->how == VIA_POLL) {
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        do {
            r = poll(&pfd, 1, timeout_ms);
        } while (r < 0 && errno == EINTR);
        ck_assert_msg(r >= 0, "poll: %s", strerror(errno));
        ck_assert_msg((pfd.revents & (POLLERR | POLLNVAL | POLLHUP)) == 0, "revents %#x",
                      (unsigned)pfd.revents);
        return r == 1 && (pfd.revents & POLLIN) != 0;
    }
    struct epoll_event ev[2];
    do {
        r = epoll_wait(w->ep, ev, 2, timeout_ms);
    } while (r < 0 && errno == EINTR);
    ck_assert_msg(r >= 0, "epoll_wait: %s", strerror(errno));
    ck_assert_int_le(r, 1);
    if (r == 1) {
        ck_assert_int_eq(ev[0].data.fd, w->fd);
        ck_assert_msg((ev[0].events & EPOLLERR) == 0, "events %#x", (unsigned)ev[0].events);
        return (ev[0].events & EPOLLIN) != 0;
    }
    return false;
}

/* Test thread only: next(c, 0) hands out a future; returns it (the caller releases it). */
static weft_future *take(weft_completion *c)
{
    weft_future *f = NULL;
    int rc = weft_completion_next(c, 0, &f);
    ck_assert_msg(rc == 0, "weft_completion_next(c, 0) = %d (%s)", rc, weft_strerror(rc));
    ck_assert_ptr_nonnull(f);
    ck_assert(weft_future_done(f));
    return f;
}

static int next_rc(weft_completion *c)
{
    weft_future *f = NULL;
    int rc = weft_completion_next(c, 0, &f);
    if (rc == 0)
        weft_future_release(f);
    return rc;
}

/* Opens a gate from another thread after a delay, so that a blocking poll has to wake. */
typedef struct opener {
    pthread_t thread;
    tu_gate *gate;
    int64_t delay_ns;
} opener;

static void *opener_main(void *arg)
{
    opener *o = arg;
    tu_sleep_ns(o->delay_ns);
    tu_gate_open(o->gate);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Readiness of the completion descriptor
 */

START_TEST(test_fd_readiness)
{
    via how = _i == 0 ? VIA_POLL : VIA_EPOLL;
    weft_pool *p = tu_pool_new(2, NULL);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_completion_fd(c), fd); /* one descriptor per set */
    watcher w;
    watcher_open(&w, how, fd);

    /* Empty: not readable, nothing to hand out. */
    ck_assert(!readable(&w, 0));
    ck_assert_int_eq(next_rc(c), -ENOENT);
    ck_assert(!readable(&w, 20));

    /* Two futures running: not readable, next times out. */
    tu_gate g1, g2;
    tu_gate_init(&g1);
    tu_gate_init(&g2);
    weft_future *f1 = tu_submit_ok(p, task_gate_value, &g1);
    weft_future *f2 = tu_submit_ok(p, task_gate_value, &g2);
    ck_assert_int_eq(weft_completion_add(c, f1), 0);
    ck_assert_int_eq(weft_completion_add(c, f2), 0);
    ck_assert(!readable(&w, 0));
    ck_assert_int_eq(next_rc(c), -ETIMEDOUT);
    ck_assert(!readable(&w, 0));

    /* f1 finishes while the loop sleeps in poll/epoll_wait: it wakes, readable. */
    opener o = {.gate = &g1, .delay_ns = TU_MS(20)};
    ck_assert_int_eq(pthread_create(&o.thread, NULL, opener_main, &o), 0);
    ck_assert(readable(&w, 30000));
    ck_assert_int_eq(pthread_join(o.thread, NULL), 0);
    /* Level-triggered: reported again and again until taken. */
    ck_assert(readable(&w, 0));
    ck_assert(readable(&w, 0));
    weft_future *f = take(c);
    ck_assert_ptr_eq(f, f1);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, &g1);
    weft_future_release(f);
    /* Taken, f2 still running: not readable. */
    ck_assert(!readable(&w, 0));
    ck_assert_int_eq(next_rc(c), -ETIMEDOUT);

    /* f2 finishes; readable until taken, then the set is empty again. */
    tu_gate_open(&g2);
    ck_assert(readable(&w, 30000));
    f = take(c);
    ck_assert_ptr_eq(f, f2);
    weft_future_release(f);
    ck_assert(!readable(&w, 0));
    ck_assert_int_eq(next_rc(c), -ENOENT);

    /* Two ready at once (added after they finished, so both are in the set on return from
     * add): readable; one taken, still readable; both taken, not readable. */
    weft_future *d1 = tu_submit_ok(p, tu_task_identity, &g1);
    weft_future *d2 = tu_submit_ok(p, tu_task_identity, &g2);
    ck_assert_int_eq(weft_future_wait(d1, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_wait(d2, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_completion_add(c, d1), 0);
    ck_assert(readable(&w, 0));
    ck_assert_int_eq(weft_completion_add(c, d2), 0);
    ck_assert(readable(&w, 0));
    weft_future *t1 = take(c);
    ck_assert(readable(&w, 0));
    ck_assert(readable(&w, 0));
    weft_future *t2 = take(c);
    ck_assert(!readable(&w, 0));
    ck_assert_int_eq(next_rc(c), -ENOENT);
    ck_assert_ptr_eq(t1, d1); /* in the order they were added (both finished already) */
    ck_assert_ptr_eq(t2, d2);
    weft_future_release(t1);
    weft_future_release(t2);
    weft_future_release(d1);
    weft_future_release(d2);

    /* The set's reference outlives the caller's: release at once after add. */
    tu_gate g3;
    tu_gate_init(&g3);
    weft_future *f3 = tu_submit_ok(p, task_gate_value, &g3);
    ck_assert_int_eq(weft_completion_add(c, f3), 0);
    weft_future_release(f3);
    ck_assert(!readable(&w, 0));
    tu_gate_open(&g3);
    ck_assert(readable(&w, 30000));
    f = take(c);
    ck_assert_int_eq(weft_future_result(f, &v), 0);
    ck_assert_ptr_eq(v, &g3);
    weft_future_release(f);
    ck_assert(!readable(&w, 0));

    weft_future_release(f1);
    weft_future_release(f2);
    watcher_close(&w);
    weft_completion_destroy(c);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A descriptor asked for after futures are ready reports them at once; one asked for on a set
 * made by weft_as_completed works the same way. */
START_TEST(test_fd_late_and_as_completed)
{
    via how = _i == 0 ? VIA_POLL : VIA_EPOLL;
    weft_pool *p = tu_pool_new(1, NULL);
    static int a, b;
    weft_future *fs[2] = {tu_submit_ok(p, tu_task_identity, &a),
                          tu_submit_ok(p, tu_task_identity, &b)};
    ck_assert_int_eq(weft_future_wait(fs[0], WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_wait(fs[1], WEFT_FOREVER), 0);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_as_completed(fs, 2, &c), 0);
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    watcher w;
    watcher_open(&w, how, fd);
    ck_assert(readable(&w, 0));
    weft_future *f = take(c);
    weft_future_release(f);
    ck_assert(readable(&w, 0));
    f = take(c);
    weft_future_release(f);
    ck_assert(!readable(&w, 0));
    ck_assert_int_eq(next_rc(c), -ENOENT);

    /* weft_completion_add works on an as_completed set too. */
    tu_gate g;
    tu_gate_init(&g);
    weft_future *fg = tu_submit_ok(p, task_gate_value, &g);
    ck_assert_int_eq(weft_completion_add(c, fg), 0);
    ck_assert_int_eq(next_rc(c), -ETIMEDOUT);
    ck_assert(!readable(&w, 0));
    tu_gate_open(&g);
    ck_assert(readable(&w, 30000));
    f = take(c);
    ck_assert_ptr_eq(f, fg);
    weft_future_release(f);
    ck_assert(!readable(&w, 0));

    weft_future_release(fg);
    weft_future_release(fs[0]);
    weft_future_release(fs[1]);
    watcher_close(&w);
    weft_completion_destroy(c);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Back-pressure
 */

START_TEST(test_max_pending_outside)
{
    enum { K = 4 };
    weft_pool *p = tu_pool_limits(1, K, 0);
    /* The one worker is held by a gated task; it has started, so it no longer counts. */
    tu_gated hold;
    tu_gated_init(&hold);
    weft_future *fh = tu_submit_ok(p, tu_task_gated, &hold);
    ck_assert(tu_wait_atomic_ge(&hold.started, 1, TU_PATIENCE_S));

    atomic_int ran;
    atomic_init(&ran, 0);
    weft_future *fs[K];
    for (int i = 0; i < K; i++)
        fs[i] = tu_submit_ok(p, tu_task_count, &ran);
    weft_stats before;
    ck_assert_int_eq(weft_pool_stats(p, &before, NULL, 0), 0);

    /* Full: refused, with nothing returned and nothing changed, however often. */
    for (int i = 0; i < 3; i++) {
        weft_future *sentinel = (weft_future *)&ran;
        weft_future *f = sentinel;
        ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, &f), -EAGAIN);
        ck_assert_ptr_eq(f, sentinel);
        ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, NULL), -EAGAIN); /* detached */
    }
    weft_stats after;
    ck_assert_int_eq(weft_pool_stats(p, &after, NULL, 0), 0);
    ck_assert_uint_eq(after.submitted_outside, before.submitted_outside);
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(weft_future_state(fs[i]), WEFT_PENDING);
    ck_assert_int_eq(tu_ld(&ran), 0);

    /* Once the queued tasks start, outside submissions are taken again. */
    tu_gate_open(&hold.gate);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(weft_future_wait(fs[i], WEFT_FOREVER), 0);
        weft_future_release(fs[i]);
    }
    ck_assert_int_eq(tu_ld(&ran), K);
    for (int i = 0; i < K; i++)
        fs[i] = tu_submit_ok(p, tu_task_count, &ran);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(weft_future_wait(fs[i], WEFT_FOREVER), 0);
        weft_future_release(fs[i]);
    }
    ck_assert_int_eq(tu_ld(&ran), 2 * K);
    ck_assert_int_eq(weft_future_wait(fh, WEFT_FOREVER), 0);
    weft_future_release(fh);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A slot frees as soon as a queued task starts, before it finishes. */
START_TEST(test_max_pending_frees_on_start)
{
    weft_pool *p = tu_pool_limits(1, 1, 0);
    tu_gated a, b;
    tu_gated_init(&a);
    tu_gated_init(&b);
    weft_future *fa = tu_submit_ok(p, tu_task_gated, &a);
    ck_assert(tu_wait_atomic_ge(&a.started, 1, TU_PATIENCE_S));
    weft_future *fb = tu_submit_ok(p, tu_task_gated, &b); /* queued: the one slot */
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -EAGAIN);
    tu_gate_open(&a.gate);
    ck_assert(tu_wait_atomic_ge(&b.started, 1, TU_PATIENCE_S)); /* b runs, blocked on its gate */
    weft_future *fc = tu_submit_ok(p, tu_task_identity, &b);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -EAGAIN);
    tu_gate_open(&b.gate);
    ck_assert_int_eq(weft_future_wait(fc, WEFT_FOREVER), 0);
    weft_future_release(fa);
    weft_future_release(fb);
    weft_future_release(fc);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

enum { INSIDE_N = 200 };

typedef struct inside_ctx {
    weft_pool *pool;
    tu_gate go;          /* opened by the test thread once outside submissions are refused */
    atomic_int started;  /* the parent task is running */
    atomic_int refused;  /* inside submissions that failed */
    atomic_int children; /* children that ran */
} inside_ctx;

static int task_child(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add(&((inside_ctx *)arg)->children, 1);
    return 0;
}

static int task_parent(void *arg, void **result)
{
    (void)result;
    inside_ctx *x = arg;
    atomic_store(&x->started, 1);
    TU_EXPECT(tu_gate_wait(&x->go));
    weft_future *fs[INSIDE_N];
    int n = 0;
    for (int i = 0; i < INSIDE_N; i++) {
        int rc = weft_submit(x->pool, task_child, x, i % 2 ? &fs[n] : NULL);
        if (rc != 0)
            atomic_fetch_add(&x->refused, 1);
        else if (i % 2)
            n++;
    }
    for (int i = 0; i < n; i++) {
        TU_EXPECT(weft_future_wait(fs[i], WEFT_FOREVER) == 0);
        weft_future_release(fs[i]);
    }
    return 0;
}

START_TEST(test_max_pending_inside_never_refused)
{
    weft_pool *p = tu_pool_limits(1, 1, 0);
    inside_ctx x = {.pool = p};
    tu_gate_init(&x.go);
    atomic_init(&x.started, 0);
    atomic_init(&x.refused, 0);
    atomic_init(&x.children, 0);
    weft_future *fp = tu_submit_ok(p, task_parent, &x);
    ck_assert(tu_wait_atomic_ge(&x.started, 1, TU_PATIENCE_S));
    /* Outside: one slot, then refused. */
    weft_future *fo = tu_submit_ok(p, tu_task_identity, &x);
    ck_assert_int_eq(weft_submit(p, tu_task_identity, NULL, NULL), -EAGAIN);
    /* Inside, while outside submissions are refused: INSIDE_N submissions, all taken. */
    tu_gate_open(&x.go);
    ck_assert_int_eq(weft_future_wait(fp, WEFT_FOREVER), 0);
    ck_assert_int_eq(tu_ld(&x.refused), 0);
    ck_assert(tu_wait_atomic_ge(&x.children, INSIDE_N, TU_PATIENCE_S));
    ck_assert_int_eq(weft_future_wait(fo, WEFT_FOREVER), 0);
    weft_future_release(fp);
    weft_future_release(fo);
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&x.children), INSIDE_N);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * An event loop: submit with retry on -EAGAIN, wait on the descriptor, drain with timeout 0
 */

static int task_square(void *arg, void **result)
{
    uintptr_t i = (uintptr_t)arg;
    for (volatile int spin = 0; spin < 2000; spin = spin + 1) {
    }
    *result = (void *)(i * i);
    return 0;
}

START_TEST(test_event_loop)
{
    enum { N = 3000, K = 8 };
    weft_pool *p = tu_pool_limits(2, K, 0);
    weft_completion *c = NULL;
    ck_assert_int_eq(weft_completion_create(&c), 0);
    int fd = weft_completion_fd(c);
    ck_assert_int_ge(fd, 0);
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    size_t next = 0, received = 0, refusals = 0, inflight = 0;
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (received < N) {
        ck_assert_msg(tu_now_ns() < deadline, "event loop stuck: %zu of %d back", received, N);
        /* Submit until refused. */
        while (next < N) {
            weft_future *f = NULL;
            int rc = weft_submit(p, task_square, (void *)(uintptr_t)next, &f);
            if (rc == -EAGAIN) {
                refusals++;
                break;
            }
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(weft_completion_add(c, f), 0);
            weft_future_release(f);
            next++;
            inflight++;
        }
        /* Wait for the descriptor, then take everything ready. */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, inflight > 0 ? 30000 : 0);
        ck_assert_int_ge(r, 0);
        if (inflight > 0)
            ck_assert_msg(r == 1, "nothing arrived in 30 s with %zu in flight", inflight);
        weft_future *f;
        int rc;
        while ((rc = weft_completion_next(c, 0, &f)) == 0) {
            void *v = NULL;
            ck_assert_int_eq(weft_future_result(f, &v), 0);
            weft_future_release(f);
            uintptr_t sq = (uintptr_t)v;
            uintptr_t i = 0;
            while (i * i < sq)
                i++;
            ck_assert_msg(i < N && i * i == sq, "bad result %ju", (uintmax_t)sq);
            ck_assert_msg(seen[i] == 0, "result %ju handed out twice", (uintmax_t)i);
            seen[i] = 1;
            received++;
            inflight--;
        }
        /* -ETIMEDOUT: some still running; -ENOENT: none left, and then nothing to report. */
        ck_assert(rc == -ETIMEDOUT || rc == -ENOENT);
        ck_assert(rc == -ENOENT || inflight > 0);
        if (rc == -ENOENT) {
            struct pollfd again = {.fd = fd, .events = POLLIN};
            ck_assert_int_eq(poll(&again, 1, 0), 0);
        }
    }
    ck_assert_int_eq(next_rc(c), -ENOENT);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    weft_completion_destroy(c);
    tu_pool_free(p);
    (void)refusals; /* how many depends on timing; zero is possible on a fast pool */
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Signals
 */

static const int app_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGCHLD, SIGPIPE};
#define N_APP_SIGNALS ((int)(sizeof app_signals / sizeof app_signals[0]))

static pid_t gettid_(void)
{
    return (pid_t)syscall(SYS_gettid);
}

typedef struct mask_ctx {
    atomic_int arrived; /* tasks running at once */
    atomic_int ok;      /* tasks that found every signal blocked */
    atomic_int worker_bits;
} mask_ctx;

static int task_check_mask(void *arg, void **result)
{
    (void)result;
    mask_ctx *m = arg;
    sigset_t set;
    sigemptyset(&set);
    bool ok = pthread_sigmask(SIG_BLOCK, NULL, &set) == 0;
    for (int i = 0; ok && i < N_APP_SIGNALS; i++)
        ok = sigismember(&set, app_signals[i]) == 1;
    if (ok)
        atomic_fetch_add(&m->ok, 1);
    atomic_fetch_or(&m->worker_bits, 1 << weft_worker_index());
    /* Hold the worker until the other task runs too, so that both workers are checked. */
    atomic_fetch_add(&m->arrived, 1);
    TU_EXPECT(tu_wait_atomic_ge(&m->arrived, 2, TU_PATIENCE_S));
    return 0;
}

START_TEST(test_workers_block_signals)
{
    sigset_t none;
    sigemptyset(&none);
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);
    weft_pool *p = tu_pool_new(2, NULL);
    mask_ctx m;
    atomic_init(&m.arrived, 0);
    atomic_init(&m.ok, 0);
    atomic_init(&m.worker_bits, 0);
    weft_future *f1 = tu_submit_ok(p, task_check_mask, &m);
    weft_future *f2 = tu_submit_ok(p, task_check_mask, &m);
    ck_assert_int_eq(weft_future_wait(f1, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_future_wait(f2, WEFT_FOREVER), 0);
    weft_future_release(f1);
    weft_future_release(f2);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
    ck_assert_int_eq(tu_ld(&m.worker_bits), 3);
    ck_assert_int_eq(tu_ld(&m.ok), 2);
    /* The pool left the creating thread's mask alone. */
    sigset_t now;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    for (int i = 0; i < N_APP_SIGNALS; i++)
        ck_assert_int_eq(sigismember(&now, app_signals[i]), 0);
}
END_TEST

static atomic_int usr1_count;
static atomic_int usr1_tid;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_store(&usr1_tid, (int)gettid_());
    atomic_fetch_add(&usr1_count, 1);
}

static int task_kill_usr1(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return kill(getpid(), SIGUSR1) == 0 ? 0 : errno;
}

/* A task that spins (on the CPU, not asleep) until its gate opens. */
static int task_busy_gate(void *arg, void **result)
{
    (void)result;
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (!tu_gate_is_open(arg) && tu_now_ns() < deadline) {
    }
    return 0;
}

static void install_usr1(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, old), 0);
    atomic_store(&usr1_count, 0);
    atomic_store(&usr1_tid, 0);
}

/* The main thread leaves SIGUSR1 unblocked; a task sends it to the process while every worker
 * is busy; the handler runs on the main thread. */
START_TEST(test_signal_reaches_main_thread)
{
    struct sigaction old;
    install_usr1(&old);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);
    pid_t main_tid = gettid_();

    weft_pool *p = tu_pool_new(2, NULL);
    tu_gate busy;
    tu_gate_init(&busy);
    weft_future *fb = tu_submit_ok(p, task_busy_gate, &busy);
    weft_future *fk = tu_submit_ok(p, task_kill_usr1, NULL);
    ck_assert_int_eq(weft_future_result(fk, NULL), 0);
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (tu_ld(&usr1_count) == 0 && tu_now_ns() < deadline)
        tu_sleep_ms(1);
    tu_gate_open(&busy);
    ck_assert_int_eq(weft_future_wait(fb, WEFT_FOREVER), 0);
    weft_future_release(fb);
    weft_future_release(fk);
    tu_pool_free(p);
    ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
    ck_assert_int_eq(tu_ld(&usr1_count), 1);
    ck_assert_int_eq(tu_ld(&usr1_tid), (int)main_tid);
}
END_TEST

/* Stronger: the main thread blocks SIGUSR1 and one application thread waits for it unblocked.
 * The kernel may pick any thread that does not block a process-directed signal, so the
 * handler's running on that thread shows that no worker left it unblocked. */
typedef struct app_thread {
    pthread_t thread;
    atomic_int tid;
    atomic_int ready;
} app_thread;

static void *app_thread_main(void *arg)
{
    app_thread *a = arg;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    atomic_store(&a->tid, (int)gettid_());
    atomic_store(&a->ready, 1);
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (atomic_load(&usr1_count) == 0 && tu_now_ns() < deadline)
        tu_sleep_ms(1);
    return NULL;
}

START_TEST(test_signal_reaches_application_thread)
{
    struct sigaction old;
    install_usr1(&old);
    sigset_t usr1, saved;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &usr1, &saved), 0);

    weft_pool *p = tu_pool_new(3, NULL); /* created with SIGUSR1 blocked, like any new thread */
    app_thread a;
    atomic_init(&a.tid, 0);
    atomic_init(&a.ready, 0);
    for (int round = 0; round < 5; round++) {
        atomic_store(&a.ready, 0);
        atomic_store(&usr1_count, 0);
        ck_assert_int_eq(pthread_create(&a.thread, NULL, app_thread_main, &a), 0);
        ck_assert(tu_wait_atomic_ge(&a.ready, 1, TU_PATIENCE_S));
        weft_future *fk = tu_submit_ok(p, task_kill_usr1, NULL);
        ck_assert_int_eq(weft_future_result(fk, NULL), 0);
        weft_future_release(fk);
        ck_assert_int_eq(pthread_join(a.thread, NULL), 0); /* it leaves once the handler ran */
        ck_assert_int_eq(tu_ld(&usr1_count), 1);
        ck_assert_int_eq(tu_ld(&usr1_tid), tu_ld(&a.tid));
    }
    tu_pool_free(p);
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &saved, NULL), 0);
    ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Fork
 */

/* What the child checks, in order; it exits with the number of the first that fails. */
enum {
    CHILD_OK = 0,
    CHILD_SUBMIT_NOT_SHUTDOWN = 10,
    CHILD_SUBMIT_WROTE_OUT,
    CHILD_SUBMIT_DETACHED,
    CHILD_DONE_STATE,
    CHILD_DONE_RESULT,
    CHILD_RUNNING_STATE,
    CHILD_RUNNING_WAIT,
    CHILD_PENDING_STATE,
    CHILD_PENDING_WAIT,
    CHILD_PENDING_WAIT_LONGER,
    CHILD_DESTROY_RC,
    CHILD_DESTROY_SLOW,
    CHILD_STILL_PENDING,
    CHILD_NEW_POOL,
    CHILD_NEW_POOL_SUBMIT,
    CHILD_NEW_POOL_RESULT,
    CHILD_NEW_POOL_DESTROY,
    CHILD_NEW_COMPLETION,
    CHILD_CANCEL_FINISHED,
    CHILD_CANCEL_AFTER_DESTROY,
    CHILD_TASK_INDEX,
    CHILD_TASK_DESTROY,
    CHILD_TASK_NEW_POOL,
    CHILD_TASK_RAN_QUEUED,
};

static const char *child_what(int code)
{
    switch (code) {
    case CHILD_SUBMIT_NOT_SHUTDOWN:
        return "weft_submit on the inherited pool did not return -ESHUTDOWN";
    case CHILD_SUBMIT_WROTE_OUT:
        return "the refused weft_submit wrote *out";
    case CHILD_SUBMIT_DETACHED:
        return "a detached weft_submit on the inherited pool did not return -ESHUTDOWN";
    case CHILD_DONE_STATE:
        return "a future finished before the fork does not read DONE";
    case CHILD_DONE_RESULT:
        return "a future finished before the fork lost its value";
    case CHILD_RUNNING_STATE:
        return "the future running at the fork does not read RUNNING";
    case CHILD_RUNNING_WAIT:
        return "waiting 0 on the running future did not time out";
    case CHILD_PENDING_STATE:
        return "the future queued at the fork does not read PENDING";
    case CHILD_PENDING_WAIT:
        return "waiting 0 on the queued future did not time out";
    case CHILD_PENDING_WAIT_LONGER:
        return "waiting 50 ms on the queued future did not time out";
    case CHILD_DESTROY_RC:
        return "weft_pool_destroy on the inherited pool did not return 0";
    case CHILD_DESTROY_SLOW:
        return "weft_pool_destroy on the inherited pool took more than 2 s";
    case CHILD_STILL_PENDING:
        return "the queued future changed state after destroy";
    case CHILD_NEW_POOL:
        return "weft_pool_create in the child failed";
    case CHILD_NEW_POOL_SUBMIT:
        return "weft_submit on the child's own pool failed";
    case CHILD_NEW_POOL_RESULT:
        return "a task on the child's own pool gave a wrong result";
    case CHILD_NEW_POOL_DESTROY:
        return "weft_pool_destroy of the child's own pool failed";
    case CHILD_NEW_COMPLETION:
        return "a completion set in the child did not hand out its future";
    case CHILD_CANCEL_FINISHED:
        return "weft_future_cancel finished a future inherited through fork";
    case CHILD_CANCEL_AFTER_DESTROY:
        return "weft_future_cancel of an inherited future after destroy did not return 0";
    case CHILD_TASK_INDEX:
        return "weft_worker_index() in a task's fork child is not -1";
    case CHILD_TASK_DESTROY:
        return "weft_pool_destroy of the old pool in a task's fork child failed";
    case CHILD_TASK_NEW_POOL:
        return "a new pool in a task's fork child did not run a task";
    case CHILD_TASK_RAN_QUEUED:
        return "a task queued before the fork ran in the child";
    default:
        return "unknown";
    }
}

static int fork_marker;

static int child_checks(weft_pool *p, weft_future *fdone, weft_future *frun, weft_future *fq)
{
    weft_future *sentinel = (weft_future *)&fork_marker;
    weft_future *f = sentinel;
    if (weft_submit(p, tu_task_identity, &fork_marker, &f) != -ESHUTDOWN)
        return CHILD_SUBMIT_NOT_SHUTDOWN;
    if (f != sentinel)
        return CHILD_SUBMIT_WROTE_OUT;
    if (weft_submit(p, tu_task_identity, &fork_marker, NULL) != -ESHUTDOWN)
        return CHILD_SUBMIT_DETACHED;

    if (weft_future_state(fdone) != WEFT_DONE)
        return CHILD_DONE_STATE;
    void *v = NULL;
    if (weft_future_result(fdone, &v) != 0 || v != &fork_marker)
        return CHILD_DONE_RESULT;
    weft_future_release(fdone);

    if (weft_future_state(frun) != WEFT_RUNNING)
        return CHILD_RUNNING_STATE;
    if (weft_future_wait(frun, 0) != -ETIMEDOUT)
        return CHILD_RUNNING_WAIT;
    if (weft_future_state(fq) != WEFT_PENDING)
        return CHILD_PENDING_STATE;
    if (weft_future_wait(fq, 0) != -ETIMEDOUT)
        return CHILD_PENDING_WAIT;
    if (weft_future_wait(fq, TU_MS(50)) != -ETIMEDOUT)
        return CHILD_PENDING_WAIT_LONGER;
    /* It never finishes here, not even by a cancel. */
    if (weft_future_cancel(fq) != 0 || weft_future_state(fq) != WEFT_PENDING)
        return CHILD_CANCEL_FINISHED;

    int64_t t0 = tu_now_ns();
    if (weft_pool_destroy(p) != 0)
        return CHILD_DESTROY_RC;
    if (tu_now_ns() - t0 > TU_MS(2000))
        return CHILD_DESTROY_SLOW;
    if (weft_future_state(fq) != WEFT_PENDING || weft_future_wait(fq, 0) != -ETIMEDOUT)
        return CHILD_STILL_PENDING;
    /* The pool is freed now: a cancel must not touch it. */
    if (weft_future_cancel(fq) != 0 || weft_future_state(fq) != WEFT_PENDING)
        return CHILD_CANCEL_AFTER_DESTROY;
    weft_future_release(frun);
    weft_future_release(fq);

    /* A pool of the child's own, used the way a server would. */
    if (SA_TSAN)
        return CHILD_OK;
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 2;
    cfg.max_pending = 4;
    weft_pool *q = NULL;
    if (weft_pool_create(&cfg, &q) != 0)
        return CHILD_NEW_POOL;
    weft_future *g = NULL;
    if (weft_submit(q, tu_task_identity, &fork_marker, &g) != 0)
        return CHILD_NEW_POOL_SUBMIT;
    v = NULL;
    if (weft_future_result(g, &v) != 0 || v != &fork_marker)
        return CHILD_NEW_POOL_RESULT;
    weft_completion *c = NULL;
    if (weft_completion_create(&c) != 0 || weft_completion_add(c, g) != 0)
        return CHILD_NEW_COMPLETION;
    weft_future_release(g);
    int fd = weft_completion_fd(c);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (fd < 0 || poll(&pfd, 1, 10000) != 1 || weft_completion_next(c, 0, &g) != 0)
        return CHILD_NEW_COMPLETION;
    weft_future_release(g);
    weft_completion_destroy(c);
    if (weft_pool_destroy(q) != 0)
        return CHILD_NEW_POOL_DESTROY;
    return CHILD_OK;
}

START_TEST(test_fork)
{
    weft_pool *p = tu_pool_limits(1, 0, 0);
    weft_future *fdone = tu_submit_ok(p, tu_task_identity, &fork_marker);
    ck_assert_int_eq(weft_future_wait(fdone, WEFT_FOREVER), 0);
    tu_gated hold;
    tu_gated_init(&hold);
    weft_future *frun = tu_submit_ok(p, tu_task_gated, &hold);
    ck_assert(tu_wait_atomic_ge(&hold.started, 1, TU_PATIENCE_S));
    weft_future *fq = tu_submit_ok(p, tu_task_identity, &hold); /* queued behind frun */
    ck_assert_int_eq(weft_future_state(fq), WEFT_PENDING);

    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(20); /* a hang in the child ends it with SIGALRM */
        _exit(child_checks(p, fdone, frun, fq));
    }

    /* Meanwhile the parent's pool goes on: the running and the queued futures finish here. */
    ck_assert_int_eq(weft_future_wait(fq, 0), -ETIMEDOUT);
    tu_gate_open(&hold.gate);
    void *v = NULL;
    ck_assert_int_eq(weft_future_result(frun, &v), 0);
    ck_assert_ptr_eq(v, &hold);
    ck_assert_int_eq(weft_future_result(fq, &v), 0);
    ck_assert_ptr_eq(v, &hold);
    tu_pool_check_works(p);

    int status = 0;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    ck_assert_int_eq(w, pid);
    ck_assert_msg(!WIFSIGNALED(status), "the child died of signal %d%s", WTERMSIG(status),
                  WTERMSIG(status) == SIGALRM ? " (alarm: it hung)" : "");
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == CHILD_OK, "in the child: %s (exit %d)",
                  child_what(WEXITSTATUS(status)), WEXITSTATUS(status));

    weft_future_release(fdone);
    weft_future_release(frun);
    weft_future_release(fq);
    tu_pool_free(p);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* fork() inside a task: the child's thread is no worker any more. It answers -1 for its index,
 * may destroy the old pool, waits on a new pool's futures by blocking (not by running the dead
 * pool's work), and never runs a task that was queued before the fork. */
typedef struct fork_in_task {
    weft_pool *pool;
    atomic_int queued_ran; /* the task queued behind the forking one */
    int child_status;
    pid_t parent;
    bool forked;
} fork_in_task;

static int task_mark_queued(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add(&((fork_in_task *)arg)->queued_ran, 1);
    return 0;
}

static int fork_child_in_task(fork_in_task *ft)
{
    if (weft_worker_index() != -1)
        return CHILD_TASK_INDEX;
    if (weft_pool_destroy(ft->pool) != 0)
        return CHILD_TASK_DESTROY;
    if (!SA_TSAN) {
        weft_pool *q = tu_pool_new(1, "child");
        weft_future *g = NULL;
        void *v = NULL;
        if (q == NULL || weft_submit(q, tu_task_identity, &fork_marker, &g) != 0 ||
            weft_future_result(g, &v) != 0 || v != &fork_marker)
            return CHILD_TASK_NEW_POOL;
        weft_future_release(g);
        if (weft_pool_destroy(q) != 0)
            return CHILD_TASK_NEW_POOL;
    }
    if (atomic_load(&ft->queued_ran) != 0)
        return CHILD_TASK_RAN_QUEUED;
    return CHILD_OK;
}

static int task_forks(void *arg, void **result)
{
    (void)result;
    fork_in_task *ft = arg;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        alarm(20);
        _exit(fork_child_in_task(ft));
    }
    int status = 0;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    ft->child_status = w == pid ? status : -1;
    ft->forked = true;
    return 0;
}

START_TEST(test_fork_in_task)
{
    fork_in_task ft = {.pool = tu_pool_limits(1, 0, 0)};
    atomic_init(&ft.queued_ran, 0);
    weft_future *f = tu_submit_ok(ft.pool, task_forks, &ft);
    weft_future *q =
        tu_submit_ok(ft.pool, task_mark_queued, &ft); /* queued behind it: one worker */
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(weft_future_result(q, NULL), 0);
    ck_assert(ft.forked);
    int status = ft.child_status;
    ck_assert_msg(status != -1, "waitpid failed");
    ck_assert_msg(!WIFSIGNALED(status), "the child died of signal %d%s", WTERMSIG(status),
                  WTERMSIG(status) == SIGALRM ? " (alarm: it hung)" : "");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OK, "in the child: %s (%d)",
                  child_what(WEXITSTATUS(status)), WEXITSTATUS(status));
    ck_assert_int_eq(atomic_load(&ft.queued_ran), 1); /* once, in the parent */
    weft_future_release(f);
    weft_future_release(q);
    tu_pool_free(ft.pool);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

static void exit_at_once(void)
{
    _exit(0);
}

/* A child that returns from the task it forked in: its thread ends, without finishing the
 * task's future in the child or running the work queued behind it. */
static int task_forks_and_returns(void *arg, void **result)
{
    (void)result;
    fork_in_task *ft = arg;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        alarm(20);
        atexit(exit_at_once); /* the child's end skips LeakSanitizer: it abandons the pool */
        return 0;             /* the child goes back into the library */
    }
    int status = 0;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    ft->child_status = w == pid ? status : -1;
    ft->forked = true;
    return 0;
}

static int task_exit_if_child(void *arg, void **result)
{
    (void)result;
    fork_in_task *ft = arg;
    if (getpid() != ft->parent)
        _exit(CHILD_TASK_RAN_QUEUED);
    atomic_fetch_add(&ft->queued_ran, 1);
    return 0;
}

START_TEST(test_fork_in_task_child_returns)
{
    fork_in_task ft = {.pool = tu_pool_limits(1, 0, 0), .parent = getpid()};
    atomic_init(&ft.queued_ran, 0);
    weft_future *f = tu_submit_ok(ft.pool, task_forks_and_returns, &ft);
    weft_future *q = tu_submit_ok(ft.pool, task_exit_if_child, &ft);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    ck_assert_int_eq(weft_future_result(q, NULL), 0);
    ck_assert(ft.forked);
    int status = ft.child_status;
    ck_assert_msg(status != -1, "waitpid failed");
    ck_assert_msg(!WIFSIGNALED(status), "the child died of signal %d%s", WTERMSIG(status),
                  WTERMSIG(status) == SIGALRM ? " (alarm: it hung)" : "");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: %s (%d)",
                  child_what(WEXITSTATUS(status)), WEXITSTATUS(status));
    ck_assert_int_eq(atomic_load(&ft.queued_ran), 1);
    weft_future_release(f);
    weft_future_release(q);
    tu_pool_free(ft.pool);
    TU_ASSERT_NO_FAILURES();
}
END_TEST

/* A pool forked while busy (tasks queued, workers running) many times: every child frees it at
 * once and the parent drains it normally. */
static int task_spin_short(void *arg, void **result)
{
    (void)result;
    for (volatile int spin = 0; spin < 20000; spin = spin + 1) {
    }
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

START_TEST(test_fork_busy_pool)
{
    enum { TASKS = 2000, FORKS = 8 };
    weft_pool *p = tu_pool_limits(2, 0, 0);
    atomic_int ran;
    atomic_init(&ran, 0);
    for (int i = 0; i < TASKS; i++)
        ck_assert_int_eq(weft_submit(p, task_spin_short, &ran, NULL), 0);
    for (int k = 0; k < FORKS; k++) {
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            alarm(20);
            int rc = weft_submit(p, task_spin_short, &ran, NULL) == -ESHUTDOWN ? 0 : 1;
            if (rc == 0 && weft_pool_destroy(p) != 0)
                rc = 2;
            _exit(rc);
        }
        int status = 0;
        pid_t w;
        do {
            w = waitpid(pid, &status, 0);
        } while (w < 0 && errno == EINTR);
        ck_assert_int_eq(w, pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child %d: status %#x (1: submit not refused, 2: destroy failed)", k,
                      (unsigned)status);
    }
    tu_pool_free(p);
    ck_assert_int_eq(tu_ld(&ran), TASKS);
}
END_TEST

static Suite *server_api_suite(void)
{
    Suite *s = suite_create("server_api");

    TCase *tc = tcase_create("readiness");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fd_readiness, 0, 2);
    tcase_add_loop_test(tc, test_fd_late_and_as_completed, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("back_pressure");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_max_pending_outside);
    tcase_add_test(tc, test_max_pending_frees_on_start);
    tcase_add_test(tc, test_max_pending_inside_never_refused);
    tcase_add_test(tc, test_event_loop);
    suite_add_tcase(s, tc);

    tc = tcase_create("signals");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_workers_block_signals);
    tcase_add_test(tc, test_signal_reaches_main_thread);
    tcase_add_test(tc, test_signal_reaches_application_thread);
    suite_add_tcase(s, tc);

    tc = tcase_create("fork");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fork);
    tcase_add_test(tc, test_fork_busy_pool);
    tcase_add_test(tc, test_fork_in_task);
    tcase_add_test(tc, test_fork_in_task_child_returns);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(server_api_suite());
}
