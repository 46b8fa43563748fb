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
 * Each walk prints how many sites it injected; main() prints the table and the total.
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

/* Threads of this process, from /proc/self/status; -1 if unreadable. */
static int thread_count(void)
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

/* True once the process is back to `want` threads (a joined thread may linger in /proc for a
 * moment). */
static bool threads_back_to(int want)
{
    int64_t deadline = tu_now_ns() + (int64_t)(TU_PATIENCE_S * 1e9);
    for (;;) {
        int n = thread_count();
        if (n == want || n < 0 || want < 0)
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
    int before = thread_count();
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
    tcase_add_test(tc, test_submit_outside);
    tcase_add_test(tc, test_submit_inside);
    tcase_add_test(tc, test_on_done);
    tcase_add_test(tc, test_gather);
    tcase_add_test(tc, test_wait);
    tcase_add_test(tc, test_completion);
    tcase_add_test(tc, test_loops);
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
