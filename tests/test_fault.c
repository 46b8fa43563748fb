/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: every allocation and thread start that a public call sequence reaches is made
 * to fail in turn, and the sequence must cope.
 *
 * This suite links weft_fault, the static build of the library with lib/alloc.c's countdown:
 * weft__fault_arm(n) makes the n-th allocation or thread start from then on fail, and
 * weft__fault_sites() counts the sites reached since the last arm. For each sequence the walk
 * runs n = 1, 2, 3, ...: arm(n), run the sequence, read the sites reached and disarm, then check:
 *  - every call returned 0 or its documented error (-ENOMEM; -EAGAIN also for thread starts in
 *    weft_pool_create), and a call that failed changed nothing (out-parameters untouched, no
 *    callback or loop body run, no set entry added);
 *  - exactly one call reported an error when the fault triggered (a failure is never swallowed
 *    into a lost task), none when it did not. The one exception: a thread's block cache
 *    (lib/cache.c, not in ASan builds) is made on its first block, and when that fails the block
 *    comes straight from malloc, so nothing is reported; with caches the walk allows at most
 *    one error and counts the faults no call reported;
 *  - every task that was accepted ran exactly once, every one refused never ran;
 *  - a pool used by the sequence still works after disarming (submit + result), and is destroyed;
 *  - every future obtained is released (the ASan build's LeakSanitizer checks the rest).
 * The walk stops at the first n that runs reach fewer sites than (tried RETRIES times, since
 * blocks recycled between threads can vary the sites a run reaches): the fault no longer
 * triggers. Each run happens on a fresh thread, so that its block cache starts cold.
 * A sequence that runs on a pool gets a fresh pool (created before arming) for every run, so that
 * state left by one run (a deque that grew) cannot change the sites of the next.
 *
 * The countdown is process-wide: it is armed only while a sequence runs, and worker threads
 * count too (a submission from inside a task may grow the worker's deque).
 *
 * Each walk prints how many sites it injected; main() prints the table and the total. Calls
 * that must never allocate (weft_offer/weft_reclaim) get a walk armed only around them, which
 * must find no site at all.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

/* lib/alloc.h, test builds only (weft_fault is compiled with -DWEFT_FAULT_INJECTION). */
void weft__fault_arm(long n);
long weft__fault_sites(void);

/* No sequence here reaches anywhere near this many sites; a walk that does is broken. */
#define WALK_LIMIT 5000

/* ---------------------------------------------------------------------------------------------
 * The walk
 *
 * Each run of a sequence happens on a thread of its own, made for that run. Futures, callback
 * nodes and completion entries come from per-thread block caches (lib/cache.c) outside ASan
 * builds: a thread whose cache is warm reaches no allocation site at all, so a walk on the test
 * thread would stop after the first run. A fresh thread starts cold every time, as do the
 * workers of the fresh pool each run gets. Failures on that thread are recorded in the run and
 * asserted by the test thread after joining it.
 */

typedef struct run run;
typedef void (*seq_fn)(run *r, void *ctx);

struct run {
    const char *seq; /* the sequence, for messages */
    long n;          /* the site that fails in this run */
    long sites;      /* sites reached while armed */
    int errors;      /* calls that reported an error */
    bool armed;
    int failures;  /* checks that failed */
    char msg[512]; /* the first of them */
    seq_fn fn;
    void *ctx;
};

static void arm(run *r)
{
    r->armed = true;
    weft__fault_arm(r->n);
}

static void disarm(run *r)
{
    if (r->armed) {
        r->sites = weft__fault_sites();
        weft__fault_arm(0);
        r->armed = false;
    }
}

/* Records a failed check of run r (any thread that runs the sequence); returns false. */
__attribute__((format(printf, 3, 4))) static bool wfail(run *r, int line, const char *fmt, ...)
{
    if (r->failures++ == 0) {
        int k = snprintf(r->msg, sizeof(r->msg), "[%s, fault at site %ld] line %d: ", r->seq, r->n,
                         line);
        va_list ap;
        va_start(ap, fmt);
        if (k > 0 && (size_t)k < sizeof(r->msg))
            vsnprintf(r->msg + k, sizeof(r->msg) - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return false;
}

#define WCHECK(r, cond) ((cond) ? true : wfail((r), __LINE__, "check failed: %s", #cond))

/* The code a call made during run r returned: 0, or -ENOMEM, or alt (if not 0). Counts errors;
 * true for success. */
#define ok_or_fail(r, call, rc, alt) ok_or_fail_((r), __LINE__, (call), (rc), (alt))
#define ok_or_oom(r, call, rc)       ok_or_fail_((r), __LINE__, (call), (rc), 0)

static bool ok_or_fail_(run *r, int line, const char *call, int rc, int alt)
{
    if (rc == 0)
        return true;
    r->errors++;
    if (rc != -ENOMEM && (alt == 0 || rc != alt))
        wfail(r, line, "%s = %d (%s); expected 0 or -ENOMEM%s", call, rc, weft_strerror(rc),
              alt == -EAGAIN ? " or -EAGAIN" : "");
    return false;
}

/* Codes reported on worker threads: recorded, then counted by the sequence's thread. */
static bool code_ok(int rc)
{
    return rc == 0 || rc == -ENOMEM;
}

/* ---------------------------------------------------------------------------------------------
 * Whether this build has the block caches: on a fresh thread the first block costs two sites
 * (the thread's cache, then the block) instead of one. A failure to make the cache is absorbed
 * (the block then comes straight from malloc), so with caches a run may see no call fail.
 */

static void *probe_thread(void *arg)
{
    long *sites = arg;
    weft_future *g = NULL;
    weft_completion *c = NULL;
    if (weft_gather(NULL, 0, 0, &g) != 0 || weft_completion_create(&c) != 0) {
        *sites = -1;
    } else {
        weft__fault_arm(WALK_LIMIT);
        int rc = weft_completion_add(c, g); /* one block */
        *sites = weft__fault_sites();
        weft__fault_arm(0);
        if (rc != 0)
            *sites = -1;
    }
    weft_completion_destroy(c);
    weft_future_release(g);
    return NULL;
}

/* Test thread only. */
static bool block_caches(void)
{
    static int known = -1;
    if (known < 0) {
        long sites = 0;
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, probe_thread, &sites), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_msg(sites == 1 || sites == 2, "a first block reached %ld sites", sites);
        known = sites == 2;
    }
    return known != 0;
}

static int g_report_fd = -1; /* main()'s table of sites per sequence (shared with forked tests) */

static void report(const char *seq, long walked, long absorbed)
{
    printf("fault: %-52s %4ld sites injected", seq, walked);
    if (absorbed > 0)
        printf(" (%ld reported by no call)", absorbed);
    printf("\n");
    fflush(stdout);
    if (g_report_fd >= 0) {
        char line[160];
        int len = snprintf(line, sizeof(line), "%s\t%ld\t%ld\n", seq, walked, absorbed);
        if (len > 0 && write(g_report_fd, line, (size_t)len) != len)
            fprintf(stderr, "fault: could not record the sites of %s\n", seq);
    }
}

#define W_MAY_BE_EMPTY 0x1u /* the sequence may reach no site at all */
#define W_SILENT       0x2u /* no call can report a fault there (documented) */
#define W_EXACT        0x4u /* no block allocation: every fault is reported, caches or not */

/* When a run does not reach site n, it is tried again this many times in all before the walk
 * ends: blocks recycled between threads can make the sites reached vary from run to run. */
#define RETRIES 3

static void *run_thread(void *arg)
{
    run *r = arg;
    r->fn(r, r->ctx);
    disarm(r);
    return NULL;
}

/* One run of a sequence with site n failing, on a fresh thread. Test thread only. */
static void run_once(run *r, const char *seq, seq_fn fn, void *ctx, long n)
{
    memset(r, 0, sizeof(*r));
    r->seq = seq;
    r->n = n;
    r->fn = fn;
    r->ctx = ctx;
    tu_failures_reset();
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, run_thread, r), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(r->failures == 0, "%s (%d failed check(s))", r->msg, r->failures);
    tu_failures *f = tu_failures_get();
    ck_assert_msg(tu_ld(&f->count) == 0,
                  "[%s, fault at site %ld] %d check(s) failed on a worker; first at %s:%d: %s", seq,
                  n, tu_ld(&f->count), atomic_load(&f->file) ? atomic_load(&f->file) : "?",
                  atomic_load(&f->line), atomic_load(&f->what) ? atomic_load(&f->what) : "?");
}

/* Walks every site of a sequence; returns how many were injected. Test thread only. */
static long walk(const char *seq, seq_fn fn, void *ctx, unsigned flags)
{
    bool exact = (flags & W_EXACT) || !block_caches();
    long n, absorbed = 0;
    run *r = malloc(sizeof(*r));
    ck_assert_ptr_nonnull(r);
    for (n = 1;; n++) {
        ck_assert_msg(n <= WALK_LIMIT, "[%s] more than %d sites: the walk never ends", seq,
                      WALK_LIMIT);
        for (int tries = 0; tries < RETRIES; tries++) {
            run_once(r, seq, fn, ctx, n);
            if (r->sites >= n)
                break;
            ck_assert_msg(r->errors == 0,
                          "[%s] run %ld reached only %ld sites (no fault), yet %d call(s) failed",
                          seq, n, r->sites, r->errors);
        }
        if (r->sites < n)
            break;
        if (flags & W_SILENT) {
            ck_assert_msg(r->errors == 0, "[%s, fault at site %ld] %d call(s) reported an error",
                          seq, n, r->errors);
            absorbed++;
        } else if (exact) {
            ck_assert_msg(r->errors == 1,
                          "[%s, fault at site %ld of %ld reached] %d call(s) reported an error; "
                          "expected exactly one",
                          seq, n, r->sites, r->errors);
        } else {
            ck_assert_msg(r->errors <= 1,
                          "[%s, fault at site %ld of %ld reached] %d call(s) reported an error; "
                          "expected at most one",
                          seq, n, r->sites, r->errors);
            absorbed += r->errors == 0;
        }
    }
    free(r);
    long walked = n - 1;
    report(seq, walked, absorbed);
    if (!(flags & W_MAY_BE_EMPTY))
        ck_assert_msg(walked >= 1, "[%s] no site reached: the walk proves nothing", seq);
    return walked;
}

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* A pool made before arming; NULL (recorded) if that fails. */
static weft_pool *pool_new(run *r, unsigned n)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = n;
    cfg.name = "fault";
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    if (rc != 0) {
        wfail(r, __LINE__, "weft_pool_create(%u), disarmed = %d", n, rc);
        return NULL;
    }
    return p;
}

/* After a run, disarmed: the pool still works (submit + result), then it goes. */
static void pool_done(run *r, weft_pool *p)
{
    static int marker;
    weft_future *f = NULL;
    void *v = NULL;
    int rc = weft_submit(p, tu_task_identity, &marker, &f);
    if (WCHECK(r, rc == 0)) {
        WCHECK(r, weft_future_result(f, &v) == 0 && v == &marker);
        weft_future_release(f);
    }
    WCHECK(r, weft_pool_destroy(p) == 0);
}

/* True once the process is back to at most `want` threads (a joined thread may linger in /proc
 * for a moment, when `want` was counted as well as now: so fewer than `want` is fine too). */
static bool threads_back_to(int want)
{
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    for (;;) {
        int n = tu_thread_count();
        if (n <= want || n < 0 || want < 0)
            return true;
        if (tu_now_ns() > deadline)
            return false;
        tu_sleep_ms(1);
    }
}

/* A task slot: how often it ran. The task returns the slot as its value. */
typedef struct slot {
    atomic_int runs;
} slot;

static int slot_task(void *arg, void **result)
{
    slot *s = arg;
    atomic_fetch_add(&s->runs, 1);
    *result = s;
    return 0;
}

static int noop_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Pool creation
 */

typedef struct hooks {
    atomic_int starts;
    atomic_int stops;
} hooks;

static void hook_start(weft_pool *pool, unsigned worker, void *data)
{
    (void)pool;
    (void)worker;
    atomic_fetch_add(&((hooks *)data)->starts, 1);
}

static void hook_stop(weft_pool *pool, unsigned worker, void *data)
{
    (void)pool;
    (void)worker;
    atomic_fetch_add(&((hooks *)data)->stops, 1);
}

typedef struct create_ctx {
    unsigned threads;
    weft_bind bind;
    const char *trace; /* trace_path, or NULL */
    int rcs[WALK_LIMIT + 1];
} create_ctx;

static void seq_create(run *r, void *arg)
{
    create_ctx *c = arg;
    hooks h;
    atomic_init(&h.starts, 0);
    atomic_init(&h.stops, 0);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = c->threads;
    cfg.bind = c->bind;
    cfg.name = "fault";
    cfg.trace_path = c->trace;
    cfg.on_worker_start = hook_start;
    cfg.on_worker_stop = hook_stop;
    cfg.hook_data = &h;
    if (c->trace != NULL)
        unlink(c->trace);
    int before = tu_thread_count();
    weft_pool *const sentinel = (weft_pool *)&h;
    weft_pool *p = sentinel;

    arm(r);
    int rc = weft_pool_create(&cfg, &p);
    disarm(r);

    c->rcs[r->n] = rc;
    if (!ok_or_fail(r, "weft_pool_create", rc, -EAGAIN)) {
        WCHECK(r, p == sentinel);           /* *out untouched */
        WCHECK(r, threads_back_to(before)); /* nothing left running */
        WCHECK(r, tu_ld(&h.starts) == tu_ld(&h.stops));
        WCHECK(r, c->trace == NULL || access(c->trace, F_OK) != 0);
        return;
    }
    if (!WCHECK(r, p != sentinel && p != NULL))
        return;
    WCHECK(r, weft_pool_size(p) == c->threads);
    pool_done(r, p);
    WCHECK(r, tu_ld(&h.starts) == (int)c->threads);
    WCHECK(r, tu_ld(&h.stops) == (int)c->threads);
    WCHECK(r, threads_back_to(before));
    if (c->trace != NULL) {
        struct stat st;
        WCHECK(r, stat(c->trace, &st) == 0 && st.st_size > 0);
        unlink(c->trace);
    }
}

/* Walks creation. The thread starts come last (everything is allocated before any thread
 * starts, pool.c): each of them must fail with -EAGAIN, every allocation with -ENOMEM. */
static long walk_create(const char *seq, create_ctx *c)
{
    long walked = walk(seq, seq_create, c, W_EXACT);
    long threads = (long)c->threads;
    ck_assert_msg(walked >= threads, "[%s] %ld sites for %ld thread starts", seq, walked, threads);
    for (long n = 1; n <= walked; n++) {
        int want = n > walked - threads ? -EAGAIN : -ENOMEM;
        ck_assert_msg(c->rcs[n] == want,
                      "[%s, fault at site %ld of %ld] weft_pool_create = %d (%s), expected %d (%s)",
                      seq, n, walked, c->rcs[n], weft_strerror(c->rcs[n]), want,
                      weft_strerror(want));
    }
    return walked;
}

static create_ctx *create_ctx_new(unsigned threads, weft_bind bind, const char *trace)
{
    create_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->threads = threads;
    c->bind = bind;
    c->trace = trace;
    return c;
}

START_TEST(test_create_destroy)
{
    static const unsigned sizes[] = {1, 2, 4};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char seq[64];
        snprintf(seq, sizeof(seq), "pool create/destroy, %u thread%s", sizes[i],
                 sizes[i] == 1 ? "" : "s");
        create_ctx *c = create_ctx_new(sizes[i], WEFT_BIND_NONE, NULL);
        walk_create(seq, c);
        free(c);
    }
}
END_TEST

/* A resize that grows: records, bind sets and thread records are allocated first, thread
 * starts come last. A failure changes nothing: same size, no hook called, no thread left. A
 * pool of 2, grown to 5 (two new segments), shrunk to 1 and grown to 3 again (new threads for
 * retired workers), with hooks and binding. */
typedef struct resize_ctx {
    weft_bind bind;
    bool traced;
} resize_ctx;

/* Waits (bounded) until the pool's threads are those of its size: started, or retired. */
static bool settle(hooks *h, unsigned size)
{
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    while (tu_ld(&h->starts) - tu_ld(&h->stops) != (int)size) {
        if (tu_now_ns() > deadline)
            return false;
        tu_sleep_ms(1);
    }
    return true;
}

static void seq_resize(run *r, void *arg)
{
    resize_ctx *c = arg;
    hooks h;
    atomic_init(&h.starts, 0);
    atomic_init(&h.stops, 0);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 2;
    cfg.bind = c->bind;
    cfg.name = "fault";
    cfg.trace_path = c->traced ? "/dev/null" : NULL;
    cfg.on_worker_start = hook_start;
    cfg.on_worker_stop = hook_stop;
    cfg.hook_data = &h;
    weft_pool *p = NULL;
    if (!WCHECK(r, weft_pool_create(&cfg, &p) == 0))
        return;
    while (tu_ld(&h.starts) < 2)
        tu_sleep_ms(1);
    static const unsigned sizes[] = {5, 1, 3};
    unsigned size = 2;
    arm(r); /* one site fails, in whichever grow reaches it */
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (sizes[i] < size) { /* a shrink allocates nothing */
            WCHECK(r, weft_pool_resize(p, sizes[i]) == 0);
            size = sizes[i];
            WCHECK(r, settle(&h, size));
            continue;
        }
        int threads = tu_thread_count(), starts = tu_ld(&h.starts);
        int rc = weft_pool_resize(p, sizes[i]);
        if (ok_or_fail(r, "weft_pool_resize", rc, -EAGAIN)) {
            size = sizes[i];
            WCHECK(r, weft_pool_size(p) == size);
            WCHECK(r, settle(&h, size));
            continue;
        }
        WCHECK(r, weft_pool_size(p) == size); /* nothing changed */
        WCHECK(r, tu_ld(&h.starts) == starts);
        WCHECK(r, threads_back_to(threads));
    }
    disarm(r);
    pool_done(r, p);
    WCHECK(r, tu_ld(&h.starts) == tu_ld(&h.stops));
}

START_TEST(test_resize)
{
    resize_ctx plain = {WEFT_BIND_NONE, false}, bound = {WEFT_BIND_COMPACT, true};
    walk("weft_pool_resize 2 -> 5 -> 1 -> 3", seq_resize, &plain, W_EXACT);
    walk("weft_pool_resize, bound and traced", seq_resize, &bound, W_EXACT);
}
END_TEST

/* A private directory for trace files. */
typedef struct tmpdir {
    char dir[64];
    char file[96];
} tmpdir;

static void tmpdir_make(tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/weft-fault-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->file, sizeof(t->file), "%s/trace.json", t->dir);
}

static void tmpdir_remove(tmpdir *t)
{
    unlink(t->file);
    rmdir(t->dir);
}

/* Destroying a traced pool writes the trace, which allocates; a failure there loses the trace
 * (reported only with $WEFT_DEBUG), since destroy has no error to return for it. */
static void seq_destroy_traced(run *r, void *arg)
{
    tmpdir *t = arg;
    unlink(t->file);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 2;
    cfg.trace_path = t->file;
    weft_pool *p = NULL;
    if (!WCHECK(r, weft_pool_create(&cfg, &p) == 0))
        return;
    for (int i = 0; i < 10; i++)
        WCHECK(r, weft_submit(p, noop_task, NULL, NULL) == 0);

    arm(r);
    int rc = weft_pool_destroy(p);
    disarm(r);

    WCHECK(r, rc == 0);
    if (r->sites < r->n) {
        struct stat st;
        WCHECK(r, stat(t->file, &st) == 0 && st.st_size > 0);
    }
    unlink(t->file);
}

START_TEST(test_create_traced)
{
    tmpdir t;
    tmpdir_make(&t);
    create_ctx *c = create_ctx_new(2, WEFT_BIND_NONE, t.file);
    walk_create("pool create with trace_path, 2 threads", c);
    free(c);
    walk("pool destroy writing the trace", seq_destroy_traced, &t, W_SILENT);
    tmpdir_remove(&t);
}
END_TEST

/* weft_bind_plan: one array of CPU sets (and hwloc_distrib's parts for SPREAD). */
static void seq_bind_plan(run *r, void *arg)
{
    weft_bind bind = *(weft_bind *)arg;
    int cpus[4] = {-7, -7, -7, -7};
    arm(r);
    int rc = weft_bind_plan(bind, 4, cpus);
    disarm(r);
    if (!ok_or_oom(r, "weft_bind_plan", rc)) {
        for (int i = 0; i < 4; i++)
            WCHECK(r, cpus[i] == -7); /* nothing changed */
        return;
    }
    for (int i = 0; i < 4; i++)
        WCHECK(r, cpus[i] >= 0);
}

START_TEST(test_bind)
{
    weft_bind compact = WEFT_BIND_COMPACT, spread = WEFT_BIND_SPREAD;
    walk("weft_bind_plan COMPACT", seq_bind_plan, &compact, W_EXACT);
    walk("weft_bind_plan SPREAD", seq_bind_plan, &spread, W_EXACT);
    create_ctx *c = create_ctx_new(2, WEFT_BIND_COMPACT, NULL);
    walk_create("pool create, BIND_COMPACT, 2 threads", c);
    free(c);
    c = create_ctx_new(2, WEFT_BIND_SPREAD, NULL);
    walk_create("pool create, BIND_SPREAD, 2 threads", c);
    free(c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Submission
 */

static void seq_submit_one(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    slot s;
    atomic_init(&s.runs, 0);
    weft_future *const sentinel = (weft_future *)&s;
    weft_future *f = sentinel;

    arm(r);
    int rc = weft_submit(p, slot_task, &s, &f);
    void *v = NULL;
    int res = 0;
    if (rc == 0)
        res = weft_future_result(f, &v);
    disarm(r);

    if (ok_or_oom(r, "weft_submit", rc)) {
        WCHECK(r, res == 0 && v == &s);
        weft_future_release(f);
    } else {
        WCHECK(r, f == sentinel);
    }
    pool_done(r, p);
    WCHECK(r, tu_ld(&s.runs) == (rc == 0 ? 1 : 0));
}

#define SEVERAL  10
#define DETACHED 5

static void seq_submit_several(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    slot s[SEVERAL + DETACHED];
    weft_future *f[SEVERAL];
    int rc[SEVERAL + DETACHED];
    for (int i = 0; i < SEVERAL + DETACHED; i++)
        atomic_init(&s[i].runs, 0);

    arm(r);
    for (int i = 0; i < SEVERAL + DETACHED; i++)
        rc[i] = weft_submit(p, slot_task, &s[i], i < SEVERAL ? &f[i] : NULL);
    int res[SEVERAL];
    void *v[SEVERAL];
    for (int i = 0; i < SEVERAL; i++) {
        v[i] = NULL;
        res[i] = rc[i] == 0 ? weft_future_result(f[i], &v[i]) : 0;
    }
    disarm(r);

    for (int i = 0; i < SEVERAL + DETACHED; i++)
        ok_or_oom(r, "weft_submit", rc[i]);
    for (int i = 0; i < SEVERAL; i++) {
        if (rc[i] == 0) {
            WCHECK(r, res[i] == 0 && v[i] == &s[i]);
            weft_future_release(f[i]);
        }
    }
    pool_done(r, p); /* waits for the detached ones */
    for (int i = 0; i < SEVERAL + DETACHED; i++)
        WCHECK(r, tu_ld(&s[i].runs) == (rc[i] == 0 ? 1 : 0));
}

START_TEST(test_submit_outside)
{
    walk("submit from outside + result", seq_submit_one, NULL, 0);
    walk("submit from outside, 15 (5 detached)", seq_submit_several, NULL, 0);
}
END_TEST

/* From inside a task: more submissions than the deque's initial 256 slots, without waiting, so
 * that the worker's deque must grow (a site reached on the worker thread). */
#define INSIDE_FUT 300
#define INSIDE_DET 20
#define INSIDE_ALL (INSIDE_FUT + INSIDE_DET)

typedef struct inside_ctx {
    weft_pool *pool;
    unsigned threads;
    slot s[INSIDE_ALL];
    weft_future *f[INSIDE_FUT];
    int codes[INSIDE_ALL];
} inside_ctx;

static int spawner_task(void *arg, void **result)
{
    (void)result;
    inside_ctx *c = arg;
    for (int i = 0; i < INSIDE_ALL; i++) {
        weft_future **out = i < INSIDE_FUT ? &c->f[i] : NULL;
        c->codes[i] = weft_submit(c->pool, slot_task, &c->s[i], out);
        TU_EXPECT(code_ok(c->codes[i]));
        if (c->codes[i] != 0 && out != NULL)
            *out = NULL;
    }
    return 0;
}

static void seq_submit_inside(run *r, void *arg)
{
    inside_ctx *c = arg;
    c->pool = pool_new(r, c->threads);
    if (c->pool == NULL)
        return;
    for (int i = 0; i < INSIDE_ALL; i++) {
        atomic_init(&c->s[i].runs, 0);
        c->codes[i] = 1; /* not submitted */
    }
    for (int i = 0; i < INSIDE_FUT; i++)
        c->f[i] = NULL;

    arm(r);
    weft_future *parent = NULL;
    int rc = weft_submit(c->pool, spawner_task, c, &parent);
    int res = rc == 0 ? weft_future_result(parent, NULL) : 0;
    int cres[INSIDE_FUT];
    void *cv[INSIDE_FUT];
    for (int i = 0; i < INSIDE_FUT; i++) {
        cv[i] = NULL;
        cres[i] = c->f[i] != NULL ? weft_future_result(c->f[i], &cv[i]) : 0;
    }
    disarm(r);

    if (ok_or_oom(r, "weft_submit (the spawner, from outside)", rc)) {
        WCHECK(r, res == 0);
        weft_future_release(parent);
        for (int i = 0; i < INSIDE_ALL; i++) {
            WCHECK(r, c->codes[i] != 1);
            if (c->codes[i] != 0)
                r->errors++; /* -ENOMEM, checked on the worker */
        }
    } else {
        for (int i = 0; i < INSIDE_ALL; i++)
            WCHECK(r, c->codes[i] == 1);
    }
    for (int i = 0; i < INSIDE_FUT; i++) {
        if (c->f[i] != NULL) {
            WCHECK(r, cres[i] == 0 && cv[i] == &c->s[i]);
            weft_future_release(c->f[i]);
        }
    }
    pool_done(r, c->pool); /* waits for the detached ones */
    c->pool = NULL;
    for (int i = 0; i < INSIDE_ALL; i++)
        WCHECK(r, tu_ld(&c->s[i].runs) == (c->codes[i] == 0 ? 1 : 0));
}

START_TEST(test_submit_inside)
{
    inside_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->threads = 1; /* no thief: the deque grows at the 257th push, deterministically */
    long walked =
        walk("submit from inside, 320 tasks, 1 worker (deque growth)", seq_submit_inside, c, 0);
    ck_assert_msg(walked >= 1 + INSIDE_ALL + 1, "only %ld sites: the deque did not grow?", walked);
    c->threads = 2; /* a thief may keep the deque from growing, or not */
    walk("submit from inside, 320 tasks, 2 workers", seq_submit_inside, c, 0);
    free(c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Callbacks
 */

#define CALLBACKS 3

typedef struct cb_ctx {
    atomic_int calls[CALLBACKS + 1];
    _Atomic(weft_future *) seen[CALLBACKS + 1];
} cb_ctx;

typedef struct cb_arg {
    cb_ctx *c;
    int i;
} cb_arg;

static void on_done_cb(weft_future *f, void *data)
{
    cb_arg *a = data;
    TU_EXPECT(weft_future_done(f));
    atomic_store(&a->c->seen[a->i], f);
    atomic_fetch_add(&a->c->calls[a->i], 1);
}

static void seq_on_done(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 1);
    if (p == NULL)
        return;
    cb_ctx c;
    cb_arg a[CALLBACKS + 1];
    int rc[CALLBACKS + 1];
    for (int i = 0; i <= CALLBACKS; i++) {
        atomic_init(&c.calls[i], 0);
        atomic_init(&c.seen[i], NULL);
        a[i] = (cb_arg){&c, i};
        rc[i] = 1; /* not called */
    }
    tu_gate gate;
    tu_gate_init(&gate);

    arm(r);
    weft_future *f = NULL;
    int src = weft_submit(p, tu_task_gate, &gate, &f);
    int res = 0;
    if (src == 0) {
        /* The gate holds the task: every callback is registered before completion. */
        for (int i = 0; i < CALLBACKS; i++)
            rc[i] = weft_future_on_done(f, on_done_cb, &a[i]);
        tu_gate_open(&gate);
        res = weft_future_result(f, NULL);
        /* After completion: runs at once, allocates nothing. */
        rc[CALLBACKS] = weft_future_on_done(f, on_done_cb, &a[CALLBACKS]);
    }
    disarm(r);

    if (ok_or_oom(r, "weft_submit", src)) {
        WCHECK(r, res == 0);
        for (int i = 0; i < CALLBACKS; i++)
            ok_or_oom(r, "weft_future_on_done (pending)", rc[i]);
        WCHECK(r, rc[CALLBACKS] == 0);
        WCHECK(r, tu_ld(&c.calls[CALLBACKS]) == 1); /* at once, in this thread */
    }
    pool_done(r, p);
    /* The finisher fires the callbacks after it wakes the waiter: give it a moment. */
    for (int i = 0; i < CALLBACKS; i++) {
        if (rc[i] == 0)
            WCHECK(r, tu_wait_atomic_ge(&c.calls[i], 1, TU_PATIENCE_S));
    }
    for (int i = 0; i <= CALLBACKS; i++) {
        WCHECK(r, tu_ld(&c.calls[i]) == (rc[i] == 0 ? 1 : 0)); /* once, or never */
        if (rc[i] == 0)
            WCHECK(r, atomic_load(&c.seen[i]) == f);
    }
    weft_future_release(f);
}

START_TEST(test_on_done)
{
    walk("weft_future_on_done before completion", seq_on_done, NULL, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * gather
 */

#define GCHILDREN 4

static void seq_gather(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    slot s[GCHILDREN];
    weft_future *t[GCHILDREN];
    int trc[GCHILDREN];
    weft_future *const sentinel = (weft_future *)&s[0];
    weft_future *inner = sentinel, *outer = sentinel, *flat = sentinel;
    for (int i = 0; i < GCHILDREN; i++)
        atomic_init(&s[i].runs, 0);

    arm(r);
    for (int i = 0; i < GCHILDREN; i++) {
        t[i] = NULL;
        trc[i] = weft_submit(p, slot_task, &s[i], &t[i]);
    }
    /* inner = gather(t0, t1); outer = gather(inner, t2, t3); flat = gather(t0..t3,
     * RETURN_EXCEPTIONS): each over the children that exist. */
    weft_future *in_fs[2];
    size_t in_n = 0;
    for (int i = 0; i < 2; i++) {
        if (trc[i] == 0)
            in_fs[in_n++] = t[i];
    }
    int irc = weft_gather(in_fs, in_n, 0, &inner);
    weft_future *out_fs[3];
    size_t out_n = 0;
    if (irc == 0)
        out_fs[out_n++] = inner;
    for (int i = 2; i < GCHILDREN; i++) {
        if (trc[i] == 0)
            out_fs[out_n++] = t[i];
    }
    int orc = weft_gather(out_fs, out_n, 0, &outer);
    weft_future *flat_fs[GCHILDREN];
    size_t flat_n = 0;
    for (int i = 0; i < GCHILDREN; i++) {
        if (trc[i] == 0)
            flat_fs[flat_n++] = t[i];
    }
    int frc = weft_gather(flat_fs, flat_n, WEFT_RETURN_EXCEPTIONS, &flat);
    void *ov = NULL, *fv = NULL;
    int ores = orc == 0 ? weft_future_result(outer, &ov) : 0;
    int fres = frc == 0 ? weft_future_result(flat, &fv) : 0;
    disarm(r);

    for (int i = 0; i < GCHILDREN; i++)
        ok_or_oom(r, "weft_submit", trc[i]);
    if (!ok_or_oom(r, "weft_gather (inner)", irc))
        WCHECK(r, inner == sentinel);
    if (!ok_or_oom(r, "weft_gather (outer)", orc))
        WCHECK(r, outer == sentinel);
    if (!ok_or_oom(r, "weft_gather (flat)", frc))
        WCHECK(r, flat == sentinel);
    if (orc == 0) {
        if (WCHECK(r, ores == 0 && ov != NULL)) {
            void **res = ov;
            size_t k = 0;
            if (irc == 0) {
                void **ir = res[k++];
                size_t j = 0;
                if (WCHECK(r, ir != NULL)) {
                    for (int i = 0; i < 2; i++) {
                        if (trc[i] == 0)
                            WCHECK(r, ir[j++] == &s[i]);
                    }
                }
            }
            for (int i = 2; i < GCHILDREN; i++) {
                if (trc[i] == 0)
                    WCHECK(r, res[k++] == &s[i]);
            }
        }
        weft_future_release(outer);
    }
    if (frc == 0) {
        if (WCHECK(r, fres == 0 && fv != NULL)) {
            void **res = fv;
            size_t k = 0;
            for (int i = 0; i < GCHILDREN; i++) {
                if (trc[i] != 0)
                    continue;
                void *cv = NULL;
                WCHECK(r, weft_gather_child(flat, k, &cv) == 0 && cv == &s[i]);
                WCHECK(r, res[k++] == &s[i]);
            }
        }
        weft_future_release(flat);
    }
    if (irc == 0)
        weft_future_release(inner);
    for (int i = 0; i < GCHILDREN; i++) {
        if (trc[i] == 0)
            weft_future_release(t[i]);
    }
    pool_done(r, p);
    for (int i = 0; i < GCHILDREN; i++)
        WCHECK(r, tu_ld(&s[i].runs) == (trc[i] == 0 ? 1 : 0));
}

START_TEST(test_gather)
{
    walk("weft_gather nested + result", seq_gather, NULL, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * wait
 */

typedef struct wait_ctx {
    size_t n;
    bool gated; /* the last task waits for a gate: a timed wait returns with it pending */
} wait_ctx;

#define WAIT_MAX 100

static void seq_wait(run *r, void *arg)
{
    wait_ctx *c = arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    slot s[WAIT_MAX];
    weft_future *fs[WAIT_MAX], *out[WAIT_MAX];
    int rc[WAIT_MAX];
    tu_gate gate;
    tu_gate_init(&gate);
    weft_future *const sentinel = (weft_future *)&gate;
    for (size_t i = 0; i < c->n; i++) {
        atomic_init(&s[i].runs, 0);
        out[i] = sentinel;
    }
    size_t ndone = 12345;

    arm(r);
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        bool gated = c->gated && i == c->n - 1;
        rc[i] = gated ? weft_submit(p, tu_task_gate, &gate, &fs[n])
                      : weft_submit(p, slot_task, &s[i], &fs[n]);
        if (rc[i] == 0)
            n++;
    }
    int wrc = weft_wait(fs, n, WEFT_ALL_COMPLETED, c->gated ? TU_MS(5) : WEFT_FOREVER, out, &ndone);
    disarm(r);
    tu_gate_open(&gate);

    for (size_t i = 0; i < c->n; i++)
        ok_or_oom(r, "weft_submit", rc[i]);
    if (ok_or_oom(r, "weft_wait", wrc)) {
        WCHECK(r, ndone <= n);
        if (!c->gated)
            WCHECK(r, ndone == n);
        if (c->gated && rc[c->n - 1] == 0)
            WCHECK(r, ndone < n); /* the gated one was pending at the timeout */
        for (size_t i = 0; i < ndone && i < n; i++)
            WCHECK(r, weft_future_done(out[i]));
        /* A stable partition of fs: done ones first, each part in input order. */
        size_t a = 0, b = ndone;
        for (size_t i = 0; i < n && ndone <= n; i++) {
            if (a < ndone && out[a] == fs[i])
                a++;
            else
                WCHECK(r, b < n && out[b++] == fs[i]);
        }
        WCHECK(r, a == ndone && b == n);
    } else {
        WCHECK(r, ndone == 12345); /* nothing changed */
        for (size_t i = 0; i < c->n; i++)
            WCHECK(r, out[i] == sentinel);
    }
    for (size_t i = 0; i < n; i++) {
        WCHECK(r, weft_future_result(fs[i], NULL) == 0);
        weft_future_release(fs[i]);
    }
    pool_done(r, p);
    for (size_t i = 0; i < c->n; i++) {
        if (!(c->gated && i == c->n - 1))
            WCHECK(r, tu_ld(&s[i].runs) == (rc[i] == 0 ? 1 : 0));
    }
}

/* weft_wait over more than 64 futures from inside a task, on a worker (the helping path). */
#define IWAIT 80

typedef struct iwait_ctx {
    weft_pool *pool;
    slot s[IWAIT];
    weft_future *f[IWAIT];
    int codes[IWAIT];
    int wrc;
    size_t ndone;
} iwait_ctx;

static int iwait_task(void *arg, void **result)
{
    (void)result;
    iwait_ctx *c = arg;
    weft_future *fs[IWAIT], *out[IWAIT];
    size_t n = 0;
    for (int i = 0; i < IWAIT; i++) {
        c->codes[i] = weft_submit(c->pool, slot_task, &c->s[i], &c->f[i]);
        TU_EXPECT(code_ok(c->codes[i]));
        if (c->codes[i] == 0)
            fs[n++] = c->f[i];
        else
            c->f[i] = NULL;
    }
    c->ndone = 12345;
    c->wrc = weft_wait(fs, n, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &c->ndone);
    TU_EXPECT(code_ok(c->wrc));
    if (c->wrc == 0)
        TU_EXPECT(c->ndone == n);
    else
        TU_EXPECT(c->ndone == 12345);
    return 0;
}

static void seq_wait_inside(run *r, void *arg)
{
    iwait_ctx *c = arg;
    c->pool = pool_new(r, 2);
    if (c->pool == NULL)
        return;
    for (int i = 0; i < IWAIT; i++) {
        atomic_init(&c->s[i].runs, 0);
        c->codes[i] = 1;
        c->f[i] = NULL;
    }
    c->wrc = 0;

    arm(r);
    weft_future *t = NULL;
    int rc = weft_submit(c->pool, iwait_task, c, &t);
    int res = rc == 0 ? weft_future_result(t, NULL) : 0;
    disarm(r);

    if (ok_or_oom(r, "weft_submit (outside)", rc)) {
        WCHECK(r, res == 0);
        weft_future_release(t);
        for (int i = 0; i < IWAIT; i++) {
            if (c->codes[i] != 0)
                r->errors++; /* -ENOMEM, checked on the worker */
        }
        if (c->wrc != 0)
            r->errors++;
    }
    for (int i = 0; i < IWAIT; i++) {
        if (c->f[i] != NULL) {
            WCHECK(r, weft_future_result(c->f[i], NULL) == 0);
            weft_future_release(c->f[i]);
        }
    }
    pool_done(r, c->pool);
    for (int i = 0; i < IWAIT; i++)
        WCHECK(r, tu_ld(&c->s[i].runs) == (c->codes[i] == 0 ? 1 : 0));
}

START_TEST(test_wait)
{
    wait_ctx small = {10, false}, large = {WAIT_MAX, false}, timed = {WAIT_MAX, true};
    walk("weft_wait, 10 futures", seq_wait, &small, 0);
    walk("weft_wait, 100 futures (heap block)", seq_wait, &large, 0);
    walk("weft_wait, 100 futures, timeout, one pending", seq_wait, &timed, 0);
    iwait_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    walk("weft_wait, 80 futures, inside a task", seq_wait_inside, c, 0);
    free(c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Completion sets
 */

#define AC_N 8

static void seq_as_completed(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    slot s[AC_N];
    weft_future *fs[AC_N];
    int rc[AC_N];
    weft_completion *const sentinel = (weft_completion *)&s[0];
    weft_completion *c = sentinel;
    weft_future *got[AC_N];
    int nrc = 0;
    for (int i = 0; i < AC_N; i++) {
        atomic_init(&s[i].runs, 0);
        got[i] = NULL;
    }

    arm(r);
    size_t n = 0;
    for (int i = 0; i < AC_N; i++) {
        rc[i] = weft_submit(p, slot_task, &s[i], &fs[n]);
        if (rc[i] == 0)
            n++;
    }
    int crc = weft_as_completed(fs, n, &c);
    size_t taken = 0;
    if (crc == 0) {
        /* Take a little more than half, leave the rest to destroy. */
        while (taken < n / 2 + 1) {
            nrc = weft_completion_next(c, WEFT_FOREVER, &got[taken]);
            if (nrc != 0)
                break;
            taken++;
        }
        weft_completion_destroy(c);
    }
    disarm(r);

    for (int i = 0; i < AC_N; i++)
        ok_or_oom(r, "weft_submit", rc[i]);
    if (ok_or_oom(r, "weft_as_completed", crc)) {
        WCHECK(r, nrc == 0 && taken == n / 2 + 1);
        for (size_t k = 0; k < taken; k++) {
            bool member = false;
            for (size_t j = 0; j < n; j++)
                member = member || got[k] == fs[j];
            WCHECK(r, member);
            for (size_t j = 0; j < k; j++)
                WCHECK(r, got[j] != got[k]);
            WCHECK(r, weft_future_done(got[k]));
            weft_future_release(got[k]); /* the set's reference, handed out */
        }
    } else {
        WCHECK(r, c == sentinel);
    }
    for (size_t i = 0; i < n; i++) {
        WCHECK(r, weft_future_result(fs[i], NULL) == 0);
        weft_future_release(fs[i]);
    }
    pool_done(r, p);
    for (int i = 0; i < AC_N; i++)
        WCHECK(r, tu_ld(&s[i].runs) == (rc[i] == 0 ? 1 : 0));
}

#define CS_N 6

static void seq_completion(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    slot s[CS_N];
    weft_future *fs[CS_N];
    int rc[CS_N], arc[CS_N];
    weft_completion *const sentinel = (weft_completion *)&s[0];
    weft_completion *c = sentinel;
    weft_future *got[CS_N];
    for (int i = 0; i < CS_N; i++) {
        atomic_init(&s[i].runs, 0);
        fs[i] = NULL;
        arc[i] = 1; /* not called */
    }

    arm(r);
    int crc = weft_completion_create(&c);
    size_t added = 0, taken = 0;
    int last = 0;
    for (int i = 0; i < CS_N; i++) {
        rc[i] = weft_submit(p, slot_task, &s[i], &fs[i]);
        if (rc[i] != 0) {
            fs[i] = NULL;
            continue;
        }
        if (i == CS_N - 1)
            weft_future_wait(fs[i], WEFT_FOREVER); /* one added after it finished */
        if (crc == 0) {
            arc[i] = weft_completion_add(c, fs[i]);
            if (arc[i] == 0)
                added++;
        }
    }
    if (crc == 0) {
        for (;;) {
            weft_future *f = NULL;
            last = weft_completion_next(c, WEFT_FOREVER, &f);
            if (last != 0)
                break;
            if (taken < CS_N)
                got[taken] = f;
            else
                weft_future_release(f); /* (a bug: more than were added) */
            taken++;
        }
        weft_completion_destroy(c);
    }
    disarm(r);

    if (ok_or_oom(r, "weft_completion_create", crc)) {
        WCHECK(r, last == -ENOENT);
        WCHECK(r, taken == added);
        for (size_t k = 0; k < taken && k < CS_N; k++) {
            bool member = false;
            for (int i = 0; i < CS_N; i++)
                member = member || (arc[i] == 0 && got[k] == fs[i]);
            WCHECK(r, member);
            for (size_t j = 0; j < k; j++)
                WCHECK(r, got[j] != got[k]);
            weft_future_release(got[k]);
        }
    } else {
        WCHECK(r, c == sentinel);
    }
    for (int i = 0; i < CS_N; i++) {
        ok_or_oom(r, "weft_submit", rc[i]);
        if (arc[i] != 1)
            ok_or_oom(r, "weft_completion_add", arc[i]);
        if (fs[i] != NULL) {
            WCHECK(r, weft_future_result(fs[i], NULL) == 0);
            weft_future_release(fs[i]);
        }
    }
    pool_done(r, p);
    for (int i = 0; i < CS_N; i++)
        WCHECK(r, tu_ld(&s[i].runs) == (rc[i] == 0 ? 1 : 0));
}

START_TEST(test_completion)
{
    walk("weft_as_completed + next + destroy", seq_as_completed, NULL, 0);
    walk("weft_completion_create/add/next/destroy", seq_completion, NULL, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Loops
 */

#define LOOP_N   10000
#define LOOP_SUM ((long)LOOP_N * (LOOP_N - 1) / 2)

typedef struct loop_ctx {
    atomic_long sum;
    atomic_long calls;
} loop_ctx;

static void loop_ctx_init(loop_ctx *c)
{
    atomic_init(&c->sum, 0);
    atomic_init(&c->calls, 0);
}

static void sum_body(size_t lo, size_t hi, void *ctx)
{
    loop_ctx *c = ctx;
    long s = 0;
    for (size_t i = lo; i < hi; i++)
        s += (long)i;
    atomic_fetch_add(&c->sum, s);
    atomic_fetch_add(&c->calls, 1);
}

static void reduce_body(size_t lo, size_t hi, void *acc, void *ctx)
{
    loop_ctx *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    for (size_t i = lo; i < hi; i++)
        *(long *)acc += (long)i;
}

static void reduce_combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    *(long *)acc += *(const long *)other;
}

typedef struct inner_loops {
    loop_ctx pf, pr;
    int pfrc, prrc;
    long reduced;
} inner_loops;

static int loops_task(void *arg, void **result)
{
    (void)result;
    inner_loops *l = arg;
    long zero = 0;
    l->pfrc = weft_parallel_for(NULL, 0, LOOP_N, 0, sum_body, &l->pf);
    l->prrc = weft_parallel_reduce(NULL, 0, LOOP_N, 0, sizeof(long), &zero, reduce_body,
                                   reduce_combine, &l->pr, &l->reduced);
    return 0;
}

static void seq_loops(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    loop_ctx pf, pr;
    loop_ctx_init(&pf);
    loop_ctx_init(&pr);
    inner_loops in = {.pfrc = 1, .prrc = 1, .reduced = -1};
    loop_ctx_init(&in.pf);
    loop_ctx_init(&in.pr);
    long zero = 0, reduced = -1;

    arm(r);
    int pfrc = weft_parallel_for(p, 0, LOOP_N, 0, sum_body, &pf);
    int prrc = weft_parallel_reduce(p, 0, LOOP_N, 0, sizeof(long), &zero, reduce_body,
                                    reduce_combine, &pr, &reduced);
    weft_future *t = NULL;
    int trc = weft_submit(p, loops_task, &in, &t);
    int tres = trc == 0 ? weft_future_result(t, NULL) : 0;
    disarm(r);

    if (ok_or_oom(r, "weft_parallel_for (outside)", pfrc))
        WCHECK(r, tu_ldl(&pf.sum) == LOOP_SUM);
    else
        WCHECK(r, tu_ldl(&pf.calls) == 0); /* nothing called */
    if (ok_or_oom(r, "weft_parallel_reduce (outside)", prrc))
        WCHECK(r, reduced == LOOP_SUM);
    else
        WCHECK(r, reduced == -1 && tu_ldl(&pr.calls) == 0); /* nothing changed */
    if (ok_or_oom(r, "weft_submit", trc)) {
        WCHECK(r, tres == 0);
        /* Inside a task the loops allocate nothing, so they cannot fail. */
        WCHECK(r, in.pfrc == 0 && tu_ldl(&in.pf.sum) == LOOP_SUM);
        WCHECK(r, in.prrc == 0 && in.reduced == LOOP_SUM);
        weft_future_release(t);
    }
    pool_done(r, p);
}

START_TEST(test_loops)
{
    walk("weft_parallel_for/reduce, outside and inside", seq_loops, NULL, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Promises: weft_future_create, weft_future_set_result, weft_future_set_error
 */

static int marks[8]; /* values that promises and continuations are set to */

static void count_cb(weft_future *f, void *data)
{
    TU_EXPECT(weft_future_done(f));
    atomic_fetch_add((atomic_int *)data, 1);
}

/* Waits for the future its argument is (on a worker: the helping path) and ends as it did. */
static int await_task(void *arg, void **result)
{
    return weft_future_result(arg, result);
}

/* a: created, set while a worker waits for it, read, sets refused; b: a callback while pending,
 * then failed; c: cancelled, then a set refused. Only weft_future_create, weft_submit and
 * weft_future_on_done allocate; every set, cancel and result runs whatever failed before. */
static void seq_promise(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    weft_future *const sentinel = (weft_future *)&marks[7];
    weft_future *a = sentinel, *b = sentinel, *c = sentinel, *w = sentinel;
    atomic_int calls;
    atomic_init(&calls, 0);
    int wrc = 1, aset = 1, ares = 1, aagain = 0, aerr = 0, wres = 1;
    int orc = 1, bset = 1, bres = 0, ccancel = -1, cset = 0, cres = 0;
    void *av = NULL, *wv = NULL;

    arm(r);
    int arc = weft_future_create(&a);
    if (arc == 0) {
        wrc = weft_submit(p, await_task, a, &w);
        aset = weft_future_set_result(a, &marks[0]);
        ares = weft_future_result(a, &av);
        aagain = weft_future_set_result(a, &marks[1]);
        aerr = weft_future_set_error(a, -EIO);
        if (wrc == 0)
            wres = weft_future_result(w, &wv);
    }
    int brc = weft_future_create(&b);
    if (brc == 0) {
        orc = weft_future_on_done(b, count_cb, &calls);
        bset = weft_future_set_error(b, -EIO);
        bres = weft_future_result(b, NULL);
    }
    int crc = weft_future_create(&c);
    if (crc == 0) {
        ccancel = weft_future_cancel(c);
        cset = weft_future_set_result(c, &marks[2]);
        cres = weft_future_result(c, NULL);
    }
    disarm(r);

    if (ok_or_oom(r, "weft_future_create (a)", arc)) {
        WCHECK(r, aset == 0 && ares == 0 && av == &marks[0]);
        WCHECK(r, aagain == -EALREADY && aerr == -EALREADY);
        WCHECK(r, weft_future_state(a) == WEFT_DONE);
        if (ok_or_oom(r, "weft_submit (a waiter)", wrc)) {
            WCHECK(r, wres == 0 && wv == &marks[0]);
            weft_future_release(w);
        } else {
            WCHECK(r, w == sentinel);
        }
        weft_future_release(a);
    } else {
        WCHECK(r, a == sentinel);
    }
    if (ok_or_oom(r, "weft_future_create (b)", brc)) {
        WCHECK(r, bset == 0 && bres == -EIO && weft_future_state(b) == WEFT_FAILED);
        /* the setter fires the callbacks before it returns */
        if (ok_or_oom(r, "weft_future_on_done (pending promise)", orc))
            WCHECK(r, tu_ld(&calls) == 1);
        else
            WCHECK(r, tu_ld(&calls) == 0);
        weft_future_release(b);
    } else {
        WCHECK(r, b == sentinel);
    }
    if (ok_or_oom(r, "weft_future_create (c)", crc)) {
        WCHECK(r, ccancel == 1 && cset == -EALREADY && cres == -ECANCELED);
        WCHECK(r, weft_future_state(c) == WEFT_CANCELLED);
        weft_future_release(c);
    } else {
        WCHECK(r, c == sentinel);
    }
    pool_done(r, p);
}

/* ---------------------------------------------------------------------------------------------
 * Continuations: weft_future_then
 */

typedef struct then_link {
    atomic_int runs;
    weft_future *prev; /* the predecessor fn must be given (set before the call) */
    atomic_int seen;   /* prev's state as fn saw it; -1 before */
} then_link;

static void then_link_init(then_link *l)
{
    atomic_init(&l->runs, 0);
    l->prev = NULL;
    atomic_init(&l->seen, -1);
}

/* A continuation: DONE with its predecessor's value plus one (a chain counts its links), or with
 * &marks[5] when the predecessor did not end DONE. */
static int link_fn(weft_future *prev, void *arg, void **result)
{
    then_link *l = arg;
    atomic_fetch_add(&l->runs, 1);
    TU_EXPECT(prev == l->prev);
    TU_EXPECT(weft_future_done(prev));
    atomic_store(&l->seen, (int)weft_future_state(prev));
    void *v = NULL;
    if (weft_future_result(prev, &v) == 0) /* finished: returns at once */
        *result = (void *)((uintptr_t)v + 1);
    else
        *result = &marks[5];
    return 0;
}

#define CHAIN       4
#define NOT_CALLED  1 /* a code no call below returns */
#define CHAIN_START ((uintptr_t)1000)

/* What then_program did, for then_verify. */
typedef struct then_rec {
    weft_future *sentinel; /* what *out holds before each call */
    slot s;
    /* 1. prev finished already: a task waited for */
    weft_future *t, *n1;
    int trc, n1rc, n1res;
    void *n1v;
    then_link l1;
    /* 2. prev an unfinished promise, with a chain of CHAIN links after it */
    weft_future *q, *ch[CHAIN];
    int qrc, qset, chrc[CHAIN], lastres;
    void *lastv;
    then_link cl[CHAIN];
    /* 3. a continuation cancelled before its predecessor finishes: fn never runs */
    weft_future *x, *nx;
    int xrc, nxrc, nxcancel, xset, nxres;
    then_link lx;
    /* 4. the predecessor cancelled: fn runs all the same */
    weft_future *y, *ny;
    int yrc, nyrc, ycancel, nyres;
    void *nyv;
    then_link ly;
} then_rec;

static void then_rec_init(then_rec *t)
{
    memset(t, 0, sizeof(*t));
    t->sentinel = (weft_future *)&t->sentinel;
    atomic_init(&t->s.runs, 0);
    t->t = t->n1 = t->q = t->x = t->nx = t->y = t->ny = t->sentinel;
    t->trc = t->n1rc = t->n1res = NOT_CALLED;
    t->qrc = t->qset = t->lastres = NOT_CALLED;
    t->xrc = t->nxrc = t->xset = t->nxres = NOT_CALLED;
    t->yrc = t->nyrc = t->nyres = NOT_CALLED;
    t->nxcancel = t->ycancel = -1;
    then_link_init(&t->l1);
    then_link_init(&t->lx);
    then_link_init(&t->ly);
    for (int k = 0; k < CHAIN; k++) {
        t->ch[k] = t->sentinel;
        t->chrc[k] = NOT_CALLED;
        then_link_init(&t->cl[k]);
    }
}

/* The calls, from outside the pool or inside one of its tasks. */
static void then_program(weft_pool *p, then_rec *t)
{
    /* 1 */
    t->trc = weft_submit(p, slot_task, &t->s, &t->t);
    if (t->trc == 0) {
        weft_future_wait(t->t, WEFT_FOREVER);
        t->l1.prev = t->t;
        t->n1rc = weft_future_then(t->t, p, link_fn, &t->l1, &t->n1);
        if (t->n1rc == 0)
            t->n1res = weft_future_result(t->n1, &t->n1v);
    }
    /* 2: a link that could not be made is skipped, the next one follows the one before */
    t->qrc = weft_future_create(&t->q);
    weft_future *last = t->qrc == 0 ? t->q : NULL;
    for (int k = 0; k < CHAIN && last != NULL; k++) {
        t->cl[k].prev = last;
        t->chrc[k] = weft_future_then(last, p, link_fn, &t->cl[k], &t->ch[k]);
        if (t->chrc[k] == 0)
            last = t->ch[k];
    }
    /* 3 */
    t->xrc = weft_future_create(&t->x);
    if (t->xrc == 0) {
        t->lx.prev = t->x;
        t->nxrc = weft_future_then(t->x, p, link_fn, &t->lx, &t->nx);
        if (t->nxrc == 0)
            t->nxcancel = weft_future_cancel(t->nx);
    }
    /* 4 */
    t->yrc = weft_future_create(&t->y);
    if (t->yrc == 0) {
        t->ly.prev = t->y;
        t->nyrc = weft_future_then(t->y, p, link_fn, &t->ly, &t->ny);
        t->ycancel = weft_future_cancel(t->y);
    }
    /* complete the predecessors, and wait */
    if (t->qrc == 0) {
        t->qset = weft_future_set_result(t->q, (void *)CHAIN_START);
        t->lastres = weft_future_result(last, &t->lastv);
    }
    if (t->xrc == 0) {
        t->xset = weft_future_set_error(t->x, -EIO);
        if (t->nxrc == 0)
            t->nxres = weft_future_result(t->nx, NULL);
    }
    if (t->yrc == 0 && t->nyrc == 0)
        t->nyres = weft_future_result(t->ny, &t->nyv);
}

/* A weft_future_then that failed changed nothing: *out untouched, fn never runs. */
static void then_refused(run *r, then_rec *t, weft_future *out, then_link *l)
{
    WCHECK(r, out == t->sentinel);
    WCHECK(r, tu_ld(&l->runs) == 0);
}

/* Checks what then_program did, disarmed, and releases every future it made. */
static void then_verify(run *r, then_rec *t)
{
    if (t->trc != NOT_CALLED && ok_or_oom(r, "weft_submit (then 1)", t->trc)) {
        if (ok_or_oom(r, "weft_future_then (finished prev)", t->n1rc)) {
            WCHECK(r, t->n1res == 0 && t->n1v == (void *)((uintptr_t)&t->s + 1));
            WCHECK(r, tu_ld(&t->l1.seen) == WEFT_DONE);
            weft_future_release(t->n1);
        } else {
            then_refused(r, t, t->n1, &t->l1);
        }
        WCHECK(r, weft_future_state(t->t) == WEFT_DONE);
        weft_future_release(t->t);
    }
    if (t->qrc != NOT_CALLED && ok_or_oom(r, "weft_future_create (then 2)", t->qrc)) {
        uintptr_t made = 0;
        for (int k = 0; k < CHAIN; k++) {
            if (!ok_or_oom(r, "weft_future_then (chain)", t->chrc[k])) {
                then_refused(r, t, t->ch[k], &t->cl[k]);
                continue;
            }
            made++;
            WCHECK(r, weft_future_state(t->ch[k]) == WEFT_DONE);
            void *v = NULL;
            WCHECK(r, weft_future_result(t->ch[k], &v) == 0 && v == (void *)(CHAIN_START + made));
            WCHECK(r, tu_ld(&t->cl[k].seen) == WEFT_DONE);
        }
        WCHECK(r, t->qset == 0 && weft_future_state(t->q) == WEFT_DONE);
        WCHECK(r, t->lastres == 0 && t->lastv == (void *)(CHAIN_START + made));
        for (int k = CHAIN - 1; k >= 0; k--) {
            if (t->chrc[k] == 0)
                weft_future_release(t->ch[k]);
        }
        weft_future_release(t->q);
    }
    if (t->xrc != NOT_CALLED && ok_or_oom(r, "weft_future_create (then 3)", t->xrc)) {
        if (ok_or_oom(r, "weft_future_then (cancelled before prev)", t->nxrc)) {
            WCHECK(r, t->nxcancel == 1 && t->nxres == -ECANCELED);
            WCHECK(r, weft_future_state(t->nx) == WEFT_CANCELLED);
            weft_future_release(t->nx);
        } else {
            then_refused(r, t, t->nx, &t->lx);
        }
        /* cancelling the continuation does not cancel its predecessor */
        WCHECK(r, t->xset == 0 && weft_future_state(t->x) == WEFT_FAILED);
        weft_future_release(t->x);
    }
    if (t->yrc != NOT_CALLED && ok_or_oom(r, "weft_future_create (then 4)", t->yrc)) {
        WCHECK(r, t->ycancel == 1 && weft_future_state(t->y) == WEFT_CANCELLED);
        if (ok_or_oom(r, "weft_future_then (prev cancelled)", t->nyrc)) {
            WCHECK(r, t->nyres == 0 && t->nyv == &marks[5]);
            WCHECK(r, tu_ld(&t->ly.seen) == WEFT_CANCELLED);
            weft_future_release(t->ny);
        } else {
            then_refused(r, t, t->ny, &t->ly);
        }
        weft_future_release(t->y);
    }
}

/* After the pool is destroyed: each continuation made ran exactly once (but the one cancelled),
 * each one refused never. */
static void then_verify_runs(run *r, then_rec *t)
{
    WCHECK(r, tu_ld(&t->s.runs) == (t->trc == 0 ? 1 : 0));
    WCHECK(r, tu_ld(&t->l1.runs) == (t->n1rc == 0 ? 1 : 0));
    for (int k = 0; k < CHAIN; k++)
        WCHECK(r, tu_ld(&t->cl[k].runs) == (t->chrc[k] == 0 ? 1 : 0));
    WCHECK(r, tu_ld(&t->lx.runs) == 0);
    WCHECK(r, tu_ld(&t->ly.runs) == (t->nyrc == 0 ? 1 : 0));
}

#define BUDGET 32 /* the pools' max_pending here: continuations from outside count against it */

static weft_pool *pool_new_budget(run *r, unsigned n, size_t max_pending)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = n;
    cfg.name = "fault";
    cfg.max_pending = max_pending;
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    if (rc != 0) {
        wfail(r, __LINE__, "weft_pool_create(%u, max_pending %zu), disarmed = %d", n, max_pending,
              rc);
        return NULL;
    }
    return p;
}

typedef struct hold {
    tu_gate gate;
    atomic_int started;
} hold;

static int hold_task(void *arg, void **result)
{
    (void)result;
    hold *h = arg;
    atomic_fetch_add(&h->started, 1);
    TU_EXPECT(tu_gate_wait(&h->gate));
    return 0;
}

/* After a run, disarmed: the pool's whole max_pending budget is back (nothing the run left
 * behind still counts against it). With each of its `threads` workers held by a task (which no
 * longer counts once started), exactly `budget` more submissions from outside are accepted. */
static void budget_intact(run *r, weft_pool *p, unsigned threads, size_t budget)
{
    hold h;
    tu_gate_init(&h.gate);
    atomic_init(&h.started, 0);
    weft_future *held[4];
    unsigned n = 0;
    for (; n < threads && n < 4; n++) {
        if (!WCHECK(r, weft_submit(p, hold_task, &h, &held[n]) == 0))
            break;
    }
    WCHECK(r, tu_wait_atomic_ge(&h.started, (int)n, TU_PATIENCE_S));
    weft_future *queued[BUDGET + 1];
    size_t accepted = 0;
    for (size_t i = 0; i <= budget && i <= BUDGET; i++) {
        if (weft_submit(p, noop_task, NULL, &queued[accepted]) == 0)
            accepted++;
    }
    WCHECK(r, accepted == budget);
    tu_gate_open(&h.gate);
    for (unsigned i = 0; i < n; i++) {
        WCHECK(r, weft_future_result(held[i], NULL) == 0);
        weft_future_release(held[i]);
    }
    /* started, all of them: the budget is free again for what follows */
    for (size_t i = 0; i < accepted; i++) {
        WCHECK(r, weft_future_result(queued[i], NULL) == 0);
        weft_future_release(queued[i]);
    }
}

static void seq_then_outside(run *r, void *arg)
{
    then_rec *t = arg;
    then_rec_init(t);
    weft_pool *p = pool_new_budget(r, 2, BUDGET);
    if (p == NULL)
        return;

    arm(r);
    then_program(p, t);
    disarm(r);

    then_verify(r, t);
    budget_intact(r, p, 2, BUDGET);
    pool_done(r, p);
    then_verify_runs(r, t);
}

typedef struct ithen_ctx {
    weft_pool *pool;
    then_rec t;
} ithen_ctx;

static int then_task(void *arg, void **result)
{
    (void)result;
    ithen_ctx *c = arg;
    then_program(c->pool, &c->t);
    return 0;
}

static void seq_then_inside(run *r, void *arg)
{
    ithen_ctx *c = arg;
    then_rec_init(&c->t);
    c->pool = pool_new_budget(r, 2, BUDGET);
    if (c->pool == NULL)
        return;
    weft_future *const sentinel = c->t.sentinel;
    weft_future *f = sentinel;

    arm(r);
    int rc = weft_submit(c->pool, then_task, c, &f);
    int res = rc == 0 ? weft_future_result(f, NULL) : 0;
    disarm(r);

    if (ok_or_oom(r, "weft_submit (then_task, from outside)", rc)) {
        WCHECK(r, res == 0);
        weft_future_release(f);
        WCHECK(r, c->t.trc != NOT_CALLED && c->t.qrc != NOT_CALLED);
    } else {
        WCHECK(r, f == sentinel);
        WCHECK(r, c->t.trc == NOT_CALLED && c->t.qrc == NOT_CALLED);
    }
    then_verify(r, &c->t); /* the calls made inside: their errors count here */
    budget_intact(r, c->pool, 2, BUDGET);
    pool_done(r, c->pool);
    then_verify_runs(r, &c->t);
}

START_TEST(test_promise)
{
    walk("promise create/set/result/cancel, a worker waiting", seq_promise, NULL, 0);
}
END_TEST

START_TEST(test_then)
{
    ithen_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    walk("weft_future_then, outside: done/pending prev, chain of 4", seq_then_outside, &c->t, 0);
    walk("weft_future_then, inside a task: likewise", seq_then_inside, c, 0);
    free(c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Promises in gathers, waits and completion sets
 */

#define PG_PROM 4
#define PG_TASK 2
#define PG_ALL  (PG_PROM + PG_TASK)

/* Completes the promise its argument is, from a worker. */
static int setter_task(void *arg, void **result)
{
    (void)result;
    TU_EXPECT(weft_future_set_result(arg, &marks[3]) == 0);
    return 0;
}

/* Drains completion set c: got[] receives what it hands out (at most max); returns the code
 * that ended it and sets *n to how many it handed out. */
static int drain(weft_completion *c, weft_future **got, size_t max, size_t *n)
{
    *n = 0;
    for (;;) {
        weft_future *f = NULL;
        int rc = weft_completion_next(c, WEFT_FOREVER, &f);
        if (rc != 0)
            return rc;
        if (*n < max)
            got[*n] = f;
        else
            weft_future_release(f); /* (a bug: more than were added) */
        (*n)++;
    }
}

/* Each of got[0..n) is one of fs[0..m) with ok[i], each at most once; releases them. */
static void check_handed_out(run *r, weft_future **got, size_t n, weft_future *const *fs,
                             const bool *ok, size_t m)
{
    for (size_t k = 0; k < n; k++) {
        bool member = false;
        for (size_t i = 0; i < m; i++)
            member = member || (ok[i] && got[k] == fs[i]);
        WCHECK(r, member);
        for (size_t j = 0; j < k; j++)
            WCHECK(r, got[j] != got[k]);
        WCHECK(r, weft_future_done(got[k]));
        weft_future_release(got[k]);
    }
}

static void seq_promise_sets(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    slot s[PG_TASK];
    weft_future *const sentinel = (weft_future *)&marks[6];
    weft_completion *const csentinel = (weft_completion *)&marks[6];
    weft_future *pr[PG_PROM], *t[PG_TASK];
    int prc[PG_PROM], trc[PG_TASK];
    weft_future *all[PG_ALL], *pfs[PG_PROM];
    size_t n = 0, np = 0;
    weft_future *g = sentinel, *gx = sentinel, *ng = sentinel, *setter = sentinel;
    weft_completion *c = csentinel, *ac = csentinel;
    int arc[PG_ALL];
    bool added[PG_ALL];
    then_link lg;
    then_link_init(&lg);
    for (int i = 0; i < PG_PROM; i++)
        pr[i] = sentinel;
    for (int i = 0; i < PG_TASK; i++) {
        atomic_init(&s[i].runs, 0);
        t[i] = sentinel;
    }
    for (int i = 0; i < PG_ALL; i++) {
        arc[i] = NOT_CALLED;
        added[i] = false;
    }
    int set0 = NOT_CALLED, set1 = NOT_CALLED, can2 = -1, set3 = NOT_CALLED, src = NOT_CALLED;
    int setres = NOT_CALLED, ngrc = NOT_CALLED, ngres = NOT_CALLED;
    int gres = NOT_CALLED, gxres = NOT_CALLED, clast = NOT_CALLED, aclast = NOT_CALLED;
    void *gv = NULL, *gxv = NULL, *ngv = NULL;
    weft_future *got[PG_ALL + 1], *agot[PG_PROM + 1];
    size_t ngot = 0, nagot = 0;
    size_t ndone = 12345;
    weft_future *wout[PG_ALL];

    arm(r);
    for (int i = 0; i < PG_PROM; i++) {
        prc[i] = weft_future_create(&pr[i]);
        if (prc[i] == 0)
            all[n++] = pfs[np++] = pr[i];
    }
    for (int i = 0; i < PG_TASK; i++) {
        trc[i] = weft_submit(p, slot_task, &s[i], &t[i]);
        if (trc[i] == 0)
            all[n++] = t[i];
    }
    int grc = weft_gather(all, n, 0, &g);
    int gxrc = weft_gather(all, n, WEFT_RETURN_EXCEPTIONS, &gx);
    if (gxrc == 0) {
        lg.prev = gx;
        ngrc = weft_future_then(gx, p, link_fn, &lg, &ng); /* on a gather, unfinished */
    }
    int crc = weft_completion_create(&c);
    for (size_t k = 0; crc == 0 && k < n; k++) {
        arc[k] = weft_completion_add(c, all[k]);
        added[k] = arc[k] == 0;
    }
    int acrc = weft_as_completed(pfs, np, &ac);
    /* 0 DONE from here, 1 FAILED, 2 CANCELLED, 3 DONE from a worker */
    if (prc[0] == 0)
        set0 = weft_future_set_result(pr[0], &marks[0]);
    if (prc[1] == 0)
        set1 = weft_future_set_error(pr[1], -EIO);
    if (prc[2] == 0)
        can2 = weft_future_cancel(pr[2]);
    if (prc[3] == 0) {
        src = weft_submit(p, setter_task, pr[3], &setter);
        if (src == 0)
            setres = weft_future_result(setter, NULL);
        else
            set3 = weft_future_set_result(pr[3], &marks[3]);
    }
    int wrc = weft_wait(all, n, WEFT_ALL_COMPLETED, WEFT_FOREVER, wout, &ndone);
    if (grc == 0)
        gres = weft_future_result(g, &gv);
    if (gxrc == 0)
        gxres = weft_future_result(gx, &gxv);
    if (ngrc == 0)
        ngres = weft_future_result(ng, &ngv);
    if (crc == 0) {
        clast = drain(c, got, PG_ALL + 1, &ngot);
        weft_completion_destroy(c);
    }
    if (acrc == 0) {
        aclast = drain(ac, agot, PG_PROM + 1, &nagot);
        weft_completion_destroy(ac);
    }
    disarm(r);

    for (int i = 0; i < PG_PROM; i++) {
        if (!ok_or_oom(r, "weft_future_create", prc[i]))
            WCHECK(r, pr[i] == sentinel);
    }
    for (int i = 0; i < PG_TASK; i++) {
        if (!ok_or_oom(r, "weft_submit", trc[i]))
            WCHECK(r, t[i] == sentinel);
    }
    /* the promises ended as set, none left PENDING */
    if (prc[0] == 0) {
        void *v = NULL;
        WCHECK(r, set0 == 0 && weft_future_result(pr[0], &v) == 0 && v == &marks[0]);
    }
    if (prc[1] == 0)
        WCHECK(r, set1 == 0 && weft_future_result(pr[1], NULL) == -EIO);
    if (prc[2] == 0)
        WCHECK(r, can2 == 1 && weft_future_state(pr[2]) == WEFT_CANCELLED);
    if (prc[3] == 0) {
        if (ok_or_oom(r, "weft_submit (setter)", src)) {
            WCHECK(r, setres == 0);
            weft_future_release(setter);
        } else {
            WCHECK(r, setter == sentinel && set3 == 0);
        }
        void *v = NULL;
        WCHECK(r, weft_future_result(pr[3], &v) == 0 && v == &marks[3]);
    }
    WCHECK(r, wrc == 0 && ndone == n); /* up to 64 futures: no allocation */
    /* gather without RETURN_EXCEPTIONS: fails with the first child to fail, pr[1] then pr[2] */
    if (ok_or_oom(r, "weft_gather", grc)) {
        if (prc[1] == 0) {
            WCHECK(r, gres == -EIO);
        } else if (prc[2] == 0) {
            WCHECK(r, gres == -ECANCELED);
        } else {
            WCHECK(r, gres == 0 && gv != NULL);
            for (size_t k = 0; gres == 0 && k < n; k++) {
                void *kv = NULL;
                WCHECK(r, weft_future_result(all[k], &kv) == 0 && ((void **)gv)[k] == kv);
            }
        }
        weft_future_release(g);
    } else {
        WCHECK(r, g == sentinel);
    }
    if (ok_or_oom(r, "weft_gather (RETURN_EXCEPTIONS)", gxrc)) {
        WCHECK(r, gxres == 0 && gxv != NULL);
        for (size_t k = 0; gxres == 0 && k < n; k++) {
            void *kv = NULL, *cv = NULL;
            int krc = weft_future_result(all[k], &kv);
            WCHECK(r, weft_gather_child(gx, k, &cv) == krc);
            WCHECK(r, ((void **)gxv)[k] == (krc == 0 ? kv : NULL));
            if (krc == 0)
                WCHECK(r, cv == kv);
        }
        if (ok_or_oom(r, "weft_future_then (on a gather)", ngrc)) {
            WCHECK(r, ngres == 0 && ngv == (void *)((uintptr_t)gxv + 1));
            WCHECK(r, tu_ld(&lg.seen) == WEFT_DONE);
            weft_future_release(ng);
        } else {
            WCHECK(r, ng == sentinel);
        }
        weft_future_release(gx);
    } else {
        WCHECK(r, gx == sentinel);
    }
    if (ok_or_oom(r, "weft_completion_create", crc)) {
        size_t nadded = 0;
        for (size_t k = 0; k < n; k++) {
            ok_or_oom(r, "weft_completion_add", arc[k]);
            nadded += added[k];
        }
        WCHECK(r, clast == -ENOENT && ngot == nadded);
        check_handed_out(r, got, ngot < PG_ALL + 1 ? ngot : PG_ALL + 1, all, added, n);
    } else {
        WCHECK(r, c == csentinel);
    }
    if (ok_or_oom(r, "weft_as_completed (promises)", acrc)) {
        bool every[PG_PROM] = {true, true, true, true};
        WCHECK(r, aclast == -ENOENT && nagot == np);
        check_handed_out(r, agot, nagot < PG_PROM + 1 ? nagot : PG_PROM + 1, pfs, every, np);
    } else {
        WCHECK(r, ac == csentinel);
    }
    for (int i = 0; i < PG_PROM; i++) {
        if (prc[i] == 0) {
            WCHECK(r, weft_future_done(pr[i]));
            weft_future_release(pr[i]);
        }
    }
    for (int i = 0; i < PG_TASK; i++) {
        if (trc[i] == 0) {
            void *v = NULL;
            WCHECK(r, weft_future_result(t[i], &v) == 0 && v == &s[i]);
            weft_future_release(t[i]);
        }
    }
    pool_done(r, p);
    for (int i = 0; i < PG_TASK; i++)
        WCHECK(r, tu_ld(&s[i].runs) == (trc[i] == 0 ? 1 : 0));
    WCHECK(r, tu_ld(&lg.runs) == (ngrc == 0 ? 1 : 0));
}

START_TEST(test_promise_sets)
{
    walk("promises + tasks in gathers, wait, completion sets, then", seq_promise_sets, NULL, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Inline fork-join: weft_offer / weft_reclaim never allocate
 */

#define FIB_N  18
#define FIB_V  2584 /* fib(18) */
#define DEEP_N 320  /* more nested offers than a worker's deque has slots (256) */

typedef struct fib_arg {
    unsigned n;
    unsigned long v;
} fib_arg;

static void fib_offer(void *arg)
{
    fib_arg *a = arg;
    if (a->n < 2) {
        a->v = a->n;
        return;
    }
    fib_arg x = {a->n - 1, 0}, y = {a->n - 2, 0};
    weft_frame fr;
    weft_offer(&fr, fib_offer, &y);
    fib_offer(&x);
    if (weft_reclaim(&fr))
        fib_offer(&y);
    a->v = x.v + y.v;
}

typedef struct offer_ctx {
    unsigned threads;
    bool gated; /* the task waits for the gate: the run arms only around the offers */
    tu_gate gate;
    fib_arg fib;
    atomic_int deep[DEEP_N];
    long sites; /* sites reached, process-wide, while the task offered and reclaimed */
} offer_ctx;

static void deep_leaf(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void deep_offer(offer_ctx *c, unsigned k)
{
    if (k == DEEP_N)
        return;
    weft_frame fr;
    weft_offer(&fr, deep_leaf, &c->deep[k]);
    deep_offer(c, k + 1);
    if (weft_reclaim(&fr))
        deep_leaf(&c->deep[k]);
}

static int offer_task(void *arg, void **result)
{
    (void)result;
    offer_ctx *c = arg;
    if (c->gated)
        TU_EXPECT(tu_gate_wait(&c->gate));
    long before = weft__fault_sites();
    fib_offer(&c->fib);
    deep_offer(c, 0);
    c->sites = weft__fault_sites() - before;
    return 0;
}

static void seq_offer(run *r, void *arg)
{
    offer_ctx *c = arg;
    weft_pool *p = pool_new(r, c->threads);
    if (p == NULL)
        return;
    c->fib = (fib_arg){FIB_N, 0};
    for (int k = 0; k < DEEP_N; k++)
        atomic_init(&c->deep[k], 0);
    c->sites = -1;
    tu_gate_init(&c->gate);
    weft_future *const sentinel = (weft_future *)&c->gate;
    weft_future *f = sentinel;
    int rc = 0;
    if (c->gated)
        rc = weft_submit(p, offer_task, c, &f); /* before arming: only the offers are armed */

    arm(r);
    if (!c->gated)
        rc = weft_submit(p, offer_task, c, &f);
    else
        tu_gate_open(&c->gate);
    int res = rc == 0 ? weft_future_result(f, NULL) : 0;
    disarm(r);

    if (c->gated ? WCHECK(r, rc == 0) : ok_or_oom(r, "weft_submit (offer_task)", rc)) {
        WCHECK(r, res == 0);
        weft_future_release(f);
        WCHECK(r, c->sites == 0); /* neither weft_offer nor weft_reclaim allocates */
        WCHECK(r, c->fib.v == FIB_V);
        for (int k = 0; k < DEEP_N; k++)
            WCHECK(r, tu_ld(&c->deep[k]) == 1);
    } else {
        WCHECK(r, f == sentinel && c->sites == -1);
    }
    pool_done(r, p);
}

START_TEST(test_offer)
{
    offer_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->threads = 1; /* no thief: the deque fills, later offers stay private */
    walk("weft_offer/reclaim in a task, 1 worker (submit armed)", seq_offer, c, 0);
    c->threads = 2;
    walk("weft_offer/reclaim in a task, 2 workers (submit armed)", seq_offer, c, 0);
    /* Armed only while the task offers and reclaims: not one site. */
    c->gated = true;
    for (unsigned threads = 1; threads <= 2; threads++) {
        c->threads = threads;
        long walked = walk(threads == 1 ? "weft_offer/reclaim alone, 1 worker (0 sites)"
                                        : "weft_offer/reclaim alone, 2 workers (0 sites)",
                           seq_offer, c, W_MAY_BE_EMPTY | W_EXACT);
        ck_assert_msg(walked == 0, "weft_offer/reclaim reached %ld allocation sites", walked);
    }
    free(c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Statistics, shutdown
 */

static void seq_stats(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 2);
    if (p == NULL)
        return;
    for (int i = 0; i < 10; i++)
        WCHECK(r, weft_submit(p, noop_task, NULL, NULL) == 0);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    WCHECK(r, fd >= 0);
    weft_stats st;
    weft_worker_stats per[2];

    arm(r);
    int jrc = weft_stats_write_json(p, fd);
    int src = weft_pool_stats(p, &st, per, 2);
    disarm(r);

    close(fd);
    ok_or_oom(r, "weft_stats_write_json", jrc);
    WCHECK(r, src == 0);
    WCHECK(r, src != 0 || st.workers == 2);
    pool_done(r, p);
}

#define SD_N 6

static void seq_shutdown(run *r, void *arg)
{
    (void)arg;
    weft_pool *p = pool_new(r, 1);
    if (p == NULL)
        return;
    slot s[SD_N];
    weft_future *fs[SD_N];
    int rc[SD_N];
    tu_gate gate;
    tu_gate_init(&gate);
    for (int i = 0; i < SD_N; i++) {
        atomic_init(&s[i].runs, 0);
        fs[i] = NULL;
    }

    arm(r);
    weft_future *g = NULL;
    int grc = weft_submit(p, tu_task_gate, &gate, &g);
    for (int i = 0; i < SD_N; i++)
        rc[i] = weft_submit(p, slot_task, &s[i], &fs[i]);
    int shrc = weft_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL);
    int late = weft_submit(p, noop_task, NULL, NULL);
    tu_gate_open(&gate);
    int drc = weft_pool_destroy(p);
    disarm(r);

    ok_or_oom(r, "weft_submit (gate)", grc);
    WCHECK(r, shrc == 0 && late == -ESHUTDOWN && drc == 0);
    for (int i = 0; i < SD_N; i++) {
        if (!ok_or_oom(r, "weft_submit", rc[i])) {
            WCHECK(r, tu_ld(&s[i].runs) == 0);
            continue;
        }
        weft_state st = weft_future_state(fs[i]);
        WCHECK(r, st == WEFT_DONE || st == WEFT_CANCELLED);
        WCHECK(r, tu_ld(&s[i].runs) == (st == WEFT_DONE ? 1 : 0));
        weft_future_release(fs[i]);
    }
    if (grc == 0) {
        weft_state st = weft_future_state(g); /* cancelled if it had not started */
        WCHECK(r, st == WEFT_DONE || st == WEFT_CANCELLED);
        weft_future_release(g);
    }
}

START_TEST(test_stats_shutdown)
{
    walk("weft_stats_write_json + weft_pool_stats", seq_stats, NULL, W_MAY_BE_EMPTY);
    walk("submit, shutdown CANCEL, destroy", seq_shutdown, NULL, 0);
}
END_TEST

/* The countdown itself: the first site fails, and a disarmed countdown fails nothing. */
START_TEST(test_countdown_works)
{
    weft_future *g = NULL;
    weft__fault_arm(1);
    int rc = weft_gather(NULL, 0, 0, &g); /* one allocation, not from a block cache */
    long sites = weft__fault_sites();
    weft__fault_arm(0);
    ck_assert_int_eq(rc, -ENOMEM);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(sites, 1);
    ck_assert_int_eq(weft_gather(NULL, 0, 0, &g), 0);
    ck_assert_int_eq(weft_future_state(g), WEFT_DONE);
    weft_future_release(g);
    printf("fault: block caches %s\n", block_caches() ? "on" : "off (ASan build)");
}
END_TEST

static Suite *fault_suite(void)
{
    Suite *s = suite_create("fault");
    TCase *tc = tcase_create("walks");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_countdown_works);
    tcase_add_test(tc, test_create_destroy);
    tcase_add_test(tc, test_create_traced);
    tcase_add_test(tc, test_bind);
    tcase_add_test(tc, test_resize);
    tcase_add_test(tc, test_submit_outside);
    tcase_add_test(tc, test_submit_inside);
    tcase_add_test(tc, test_on_done);
    tcase_add_test(tc, test_gather);
    tcase_add_test(tc, test_wait);
    tcase_add_test(tc, test_completion);
    tcase_add_test(tc, test_loops);
    tcase_add_test(tc, test_promise);
    tcase_add_test(tc, test_then);
    tcase_add_test(tc, test_promise_sets);
    tcase_add_test(tc, test_offer);
    tcase_add_test(tc, test_stats_shutdown);
    suite_add_tcase(s, tc);
    return s;
}

/* The table of sites injected per sequence, from the lines the walks wrote. */
static void print_table(void)
{
    if (g_report_fd < 0 || lseek(g_report_fd, 0, SEEK_SET) != 0)
        return;
    FILE *fp = fdopen(g_report_fd, "r");
    if (fp == NULL)
        return;
    char line[256];
    long total = 0, absorbed = 0;
    int seqs = 0;
    printf("fault: sites injected per sequence\n");
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *tab = strchr(line, '\t');
        if (tab == NULL)
            continue;
        *tab = '\0';
        char *end = NULL;
        long n = strtol(tab + 1, &end, 10);
        long a = end != NULL ? strtol(end, NULL, 10) : 0;
        printf("  %-56s %5ld\n", line, n);
        total += n;
        absorbed += a;
        seqs++;
    }
    printf("fault: %ld sites injected over %d sequences (%ld reported by no call)\n", total, seqs,
           absorbed);
    fclose(fp);
    g_report_fd = -1;
}

int main(void)
{
    char path[] = "/tmp/weft-fault-report-XXXXXX";
    g_report_fd = mkstemp(path);
    if (g_report_fd >= 0)
        unlink(path);
    int rc = tu_run_suite(fault_suite());
    print_table();
    return rc;
}
