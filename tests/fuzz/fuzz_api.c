/* SPDX-License-Identifier: MIT */
/*
 * fuzz_api: a libFuzzer harness that reads its input as a program of weft API calls.
 *
 * The input is a sequence of operations. Each starts with one opcode byte (taken modulo
 * OP_COUNT) followed by the argument bytes that operation reads; a missing byte reads as 0, so
 * every input is a valid program. At most MAX_OPS operations run per input. The harness keeps a
 * small table of live objects: up to MAX_POOLS pools (1 to 4 workers), MAX_SLOTS futures (tasks,
 * gathers, promises and continuations, each with the references the harness holds) and MAX_SETS
 * completion sets. An argument naming a future picks among the live slots (byte modulo their
 * number).
 *
 * Every call's return code is checked against the documented ones and every contract rule the
 * harness can observe is checked as it goes (see the CHECK()s): state transitions only move
 * forward; cancel returning 1 means the function never runs; results, codes and gather arrays
 * match what the tasks returned; weft_wait partitions its input in order; completion sets hand
 * each future out exactly once; on_done callbacks run exactly once; after a pool is destroyed
 * each of its futures is finished and each task it accepted ran at most once (exactly once when
 * nothing could cancel it), and the pool's statistics add up. A violation prints what failed and
 * aborts, which libFuzzer reports as a crash. At the end of an input everything is destroyed and
 * every reference released, so LeakSanitizer sees real leaks only.
 *
 * Promises (weft_future_create) are completed with set_result, set_error or cancel by the harness
 * thread and by helper threads (op 34), often racing: of all the calls on one promise exactly one
 * succeeds (the others get -EALREADY, or 0 from cancel), the promise is never RUNNING, its outcome
 * is the winner's (each promise has one value and one failure code, so any winner's outcome is
 * known), set_error(f, 0) and a set on a future that is not a promise are -EINVAL. The harness
 * keeps a hidden reference to each promise and completes every one still PENDING when the input
 * ends, so that every future resolves; before any wait without limit it completes the promises
 * the awaited futures depend on (through gathers and continuations), so a hang is still a library
 * bug. Continuations (weft_future_then, op 32) take any future as predecessor, promises and
 * gathers included, and run a task of any kind; their function checks that it runs once, after
 * its predecessor finished, and is given it. A continuation cancelled (cancel returned 1) never
 * runs; one refused leaves *out untouched and never runs; one whose pool was shut down before its
 * predecessor finished ends CANCELLED. Tasks of kind TK_PROMISE make promises and continuations
 * from inside the pool.
 *
 * Tasks never wait for anything but their own children, and every sleep, spin and gate has a
 * deadline of at most a few milliseconds, so a hang is a library bug.
 *
 * Operations (arguments in order; "fut" is one byte choosing a live future, "tmo" one byte
 * choosing a timeout: 0 poll, 1 WEFT_FOREVER, 2-5 1 us to 1 ms, 6-7 invalid negatives):
 *   0 pool_create    slot threads bind flags name max_pending stack
 *   1 submit         pool kind p1 p2 p3 flags
 *   2 submit_detach  pool kind p1 p2 p3
 *   3 cancel         fut
 *   4 wait           fut tmo
 *   5 result         fut flags
 *   6 on_done        fut flags
 *   7 retain         fut
 *   8 release        fut
 *   9 gather         n flags fut*n
 *  10 gather_child   fut index
 *  11 wait_many      n when tmo mode fut*n [tmo2]  (mode 1: out = fs; 2: then wait again on the
 *                    pending part with when = mode >> 2 and tmo2; 0x81: then poll the pending
 *                    part with timeout 0 until it is empty, for up to 2 ms)
 *  12 as_completed   set n fut*n
 *  13 compl_create   set
 *  14 compl_add      set fut
 *  15 compl_next     set tmo
 *  16 compl_fd       set flags
 *  17 compl_destroy  set
 *  18 shutdown       pool mode
 *  19 destroy        pool
 *  20 bad_args       which fut pool
 *  21 gate           x (0 opens the gate, otherwise closes it for up to 2 ms)
 *  22 loop           pool p1 p2 p3  (parallel_for and parallel_reduce from outside the pool)
 *  23 stats          pool n
 *  24 check_all
 *  25 sleep          x
 *  26 fault          x (fault-injection builds only: the x-th allocation from now fails)
 *  27 helper         pool k kind mode  (another thread submits k tasks to the pool and waits)
 *  28 burst          pool k kind p1  (1 + k % 32 submissions at once; k & 0x80: every other
 *                    one detached)
 *  29 sweep          (releases every reference to the futures that have settled)
 *  30 prom_create    code  (a promise; code & 7 picks the code set_error gives it)
 *  31 prom_set       fut how  (how % 4: set_result, set_error, cancel, set_error with code 0; on
 *                    a future that is not a promise both sets are -EINVAL; how & 4: set again)
 *  32 then           fut pool kind p1 p2 p3 flags  (a continuation of fut on pool running a task
 *                    of that kind; flags as submit's)
 *  33 abandon        flags  (a promise released unfinished: flags 1 with an on_done callback,
 *                    2 a wait with timeout, 4 in a completion set destroyed; 8: a polled weft_wait)
 *  34 helper_set     pool k kind mode n how fut*n  (a helper as op 27, which also completes up to
 *                    4 of the chosen futures: set_result/set_error/cancel by how, before or after
 *                    its submissions; on a future that is not a promise a set is -EINVAL)
 *  35 resize         pool n  (weft_pool_resize to 1 + n % 6 workers, while tasks run; n % 16
 *                    == 15: a bad size, 0 or above WEFT_MAX_THREADS, which is -EINVAL)
 * Task kinds (kind byte % 32): see kind_table; TK_PROMISE (kind 16) makes a promise inside the
 * pool, continuations of it, of a gather over it and of a child task, completes it and checks.
 * tests/fuzz/gen_corpus.py writes the seed corpus with this encoding.
 *
 * Environment: WEFT_FUZZ_TRACE=1 prints each operation on stderr; WEFT_FUZZ_ALLOW=name,...
 * tolerates the named known deviations (the names in the CHECK_DEV()s below) so that fuzzing
 * can go past a bug already reported; WEFT_FUZZ_WATCHDOG=seconds prints every thread's stack
 * and aborts when one input runs that long (a hang). Two names kept the harness away from
 * library bugs it could not check as an invariant (they crashed or leaked), both fixed since,
 * with their reproducers in the corpus (regress-then-after-destroy,
 * regress-abandon-callback-leak): then-after-destroy (a continuation whose pool is destroyed
 * before its predecessor finishes) and abandon-callback-leak (a promise released unfinished
 * with on_done callbacks on it). Without them the harness exercises both.
 */
#include <weft.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#ifdef WEFT_FAULT_INJECTION
void weft__fault_arm(long n);
#endif

#define MAX_OPS         200
#define MAX_POOLS       3
#define MAX_POOL_INFOS  32
#define MAX_SLOTS       64
#define MAX_FINFOS      2048
#define MAX_KIDS        2048
#define MAX_RECS        4096
#define MAX_CBS         1024
#define MAX_SETS        4
#define MAX_SET_ENTRIES 256
#define MAX_SUBMITS     1024
#define MAX_GATE_CLOSES 4
#define MAX_WAIT_N      80
#define MAX_REFS        8
#define MAX_PROMS       512

/* ---------------------------------------------------------------------------------------------
 * Failing
 */

static int trace_ops;
static char allow_list[256];

static void fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "\nfuzz_api: invariant violated at %s:%d: %s\n", file, line, what);
    abort();
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(__FILE__, __LINE__, #cond);                                                       \
    } while (0)

/* CHECK that also prints a return code. */
#define CHECK_RC(rc, cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "\nfuzz_api: code %d (%s)", (int)(rc), weft_strerror((int)(rc)));      \
            fail(__FILE__, __LINE__, #cond);                                                       \
        }                                                                                          \
    } while (0)

/* Known deviations that WEFT_FUZZ_ALLOW may tolerate by name. */
static bool allowed(const char *name)
{
    size_t n = strlen(name);
    for (const char *p = allow_list; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == allow_list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    }
    return false;
}

/* A deviation check: fails unless the named deviation is allowed. */
#define CHECK_DEV(cond, name)                                                                      \
    do {                                                                                           \
        if (!(cond) && !allowed(name))                                                             \
            fail(__FILE__, __LINE__, #cond " [" name "]");                                         \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * Time
 */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

#define TMO_BAD INT64_MIN /* marks a timeout that must give -EINVAL */

/* The timeout a byte chooses; *bad is set for the invalid ones. */
static int64_t decode_timeout(uint8_t b, bool *bad)
{
    static const int64_t t[8] = {0, WEFT_FOREVER, 1000, 10000, 100000, 1000000, -2, INT64_MIN};
    *bad = (b & 7) >= 6;
    return t[b & 7];
}

/* ---------------------------------------------------------------------------------------------
 * Input
 */

struct input {
    const uint8_t *p;
    size_t n, i;
};

static uint8_t u8(struct input *in)
{
    return in->i < in->n ? in->p[in->i++] : 0;
}

/* ---------------------------------------------------------------------------------------------
 * What the harness knows. Everything lives in static arenas reset for each input; workers only
 * touch records (recs), callback records (cbs) and pool infos, through atomics or after a
 * happens-before edge made by the library (submission, the final state, joining the workers).
 */

struct pinfo {
    weft_pool *p; /* written before any task of the pool can run */
    /* The most workers it may have had: a bound on worker indices and on the statistics'
     * workers. Raised before a resize that grows, since tasks and hooks read it meanwhile. */
    _Atomic unsigned threads;
    unsigned size;       /* its size (weft_pool_size), harness only */
    unsigned slots;      /* the most workers it has had (weft_stats.workers), harness only */
    atomic_bool resized; /* weft_pool_resize was called: sizes and hooks move (op_resize) */
    size_t max_pending;
    bool hooks;
    bool hooks_expected; /* set before the create, which starts the hooks */
    bool harness_closed; /* the harness shut it down */
    bool destroyed;
    atomic_int maybe_closed; /* someone is shutting it down or did: set before the call */
    atomic_int maybe_cancel; /* likewise for a CANCEL shutdown */
    atomic_uint started, stopped;
    atomic_uint outside_loops; /* loops run from outside, each one submitted task */
    uint64_t last_tasks_run;
};

enum tkind {
    TK_VALUE,
    TK_FAIL,
    TK_SPIN,    /* polls weft_cancel_requested for a while */
    TK_CHILD,   /* submits a child and waits for it */
    TK_JOIN,    /* weft_join, parallel_for, parallel_reduce, scope */
    TK_SLEEP,   /* a few microseconds */
    TK_GATE,    /* waits for the gate (bounded) */
    TK_SELF,    /* destroy and wait on itself: -EDEADLK */
    TK_MULTI,   /* children and weft_wait / as_completed / gather / completion set on them */
    TK_DETACH,  /* submits a detached child */
    TK_SHUT,    /* shuts its own pool down */
    TK_PROMISE, /* a promise, continuations and a gather on it, made and completed inside */
};

/* Indexed by the kind byte % 32; the first 16 as before continuations and promises existed. */
#define KINDS 32
static const enum tkind kind_table[KINDS] = {
    TK_VALUE,   TK_VALUE, TK_FAIL, TK_FAIL,    TK_SPIN,   TK_CHILD, TK_CHILD, TK_JOIN,
    TK_SLEEP,   TK_GATE,  TK_SELF, TK_MULTI,   TK_DETACH, TK_VALUE, TK_SPIN,  TK_SHUT,
    TK_PROMISE, TK_VALUE, TK_FAIL, TK_PROMISE, TK_SPIN,   TK_CHILD, TK_MULTI, TK_JOIN,
    TK_SLEEP,   TK_GATE,  TK_SELF, TK_PROMISE, TK_DETACH, TK_VALUE, TK_FAIL,  TK_VALUE};

static const int fail_codes[8] = {1, -1, -EINVAL, -ECANCELED, -ETIMEDOUT, INT_MIN, INT_MAX, 7};

/* One submitted (or attempted) task. */
struct rec {
    atomic_int ready; /* 1 once the fields below are set (release) */
    struct pinfo *pool;
    enum tkind kind;
    int depth;
    uint8_t p1, p2, p3;
    void *value;           /* what it sets *result to */
    atomic_int submitted;  /* weft_submit accepted it */
    atomic_int ran;        /* times its function began */
    atomic_int finished;   /* its function returned; ret is set */
    int ret;               /* what it returned */
    atomic_int saw_cancel; /* weft_cancel_requested() was true inside it */
    atomic_int exposed;    /* a cancel may reach it: set before any such call */
    atomic_int cancelled1; /* weft_future_cancel returned 1 for it */
    _Atomic(weft_future *) self;
    atomic_int audit; /* 0, or 1 + the state its audit callback saw */
    atomic_int audited;
    /* Continuations: the predecessor the function must be given (set before weft_future_then),
     * and 1 + the state the function saw it in (0 before it ran). */
    weft_future *then_prev;
    atomic_int prev_seen;
};

static struct rec recs[MAX_RECS];
static atomic_int nrecs;

/* A promise. The harness keeps one hidden reference (f) until the end of the input. Counters are
 * bumped by whoever completed it, after the call returned: harness and helper threads. */
struct prom {
    weft_future *f;
    void *value;                          /* what set_result sets */
    int code;                             /* what set_error sets */
    atomic_int set_ok, err_ok, cancel_ok; /* calls that won: set_result, set_error, cancel */
    atomic_int calls;                     /* completion calls made on it */
    atomic_int inflight;                  /* helpers holding it to complete it */
    bool exposed;                         /* a gather's cancel may reach it */
    bool async; /* ...on another thread (a CANCEL_ON_ERROR gather's failing child) */
};

static struct prom proms[MAX_PROMS];
static int nproms;

enum fkind { FI_TASK, FI_GATHER, FI_PROMISE };

/* One future the harness made: a task, a continuation (a task whose rec has then_prev), a gather
 * or a promise. Stays in the arena after its last release. */
struct finfo {
    weft_future *f; /* valid while the harness, a live gather or a live set holds it */
    enum fkind kind;
    struct rec *rec;    /* tasks and continuations */
    struct prom *prom;  /* promises */
    struct finfo *prev; /* continuations: the predecessor */
    bool hidden;        /* continuations: the harness holds a hidden reference (see the top) */
    size_t n;           /* gathers: children */
    unsigned flags;
    struct finfo **kids;
    int last;           /* last state seen, -1 none */
    bool cancelled1;    /* weft_future_cancel returned 1 */
    bool exposed;       /* gathers: a cancel may have reached it */
    bool late;          /* still PENDING when a CANCEL shutdown of its pool returned */
    bool exposed_async; /* gathers: a cancel from another thread may reach it */
    /* Gathers share children, so walks over them remember where they have been (per walk):
     * without that, gathers of gathers of the same children cost exponential time. */
    unsigned walk_check, walk_settled, walk_pending, walk_resolve;
    bool settled_val;
    int refs; /* references the harness holds (slots) */
};

static struct finfo finfos[MAX_FINFOS];
static int nfinfos;
static struct finfo *kid_store[MAX_KIDS];
static int nkids;
static struct finfo *slots[MAX_SLOTS];

/* One on_done registration. */
struct cbrec {
    atomic_int count;
    atomic_int expected; /* the registration succeeded (or is being made) */
    weft_future *f;
    struct rec *audit; /* audit callbacks: the record to store the final state in */
    bool release;      /* the callback owns one reference to f */
    bool nested;       /* registers another callback from inside */
    atomic_int on_harness_thread;
};

static struct cbrec cbs[MAX_CBS];
static atomic_int ncbs;

struct centry {
    struct finfo *fi;
    weft_future *f;
    bool known_ready; /* finished before it was added */
};

struct cset {
    weft_completion *c;
    struct centry e[MAX_SET_ENTRIES];
    int n;
    int fd;
};

static struct cset sets[MAX_SETS];

/* A thread other than the harness's that submits to a pool and waits, concurrently. */
struct helper {
    pthread_t thread;
    bool running;
    struct pinfo *pool; /* NULL: it only completes futures */
    uint8_t k, kind, mode;
    /* op helper_set: futures to complete, one reference each (the helper's), and their
     * promises (NULL: not a promise, a set must be refused) */
    int nset;
    weft_future *sf[4];
    struct prom *sp[4];
    uint8_t how;
    bool set_first; /* before its submissions, else after them */
};

#define MAX_HELPERS 2
static struct helper helpers[MAX_HELPERS];
static void join_helpers(struct pinfo *pi);
static bool check_size(struct pinfo *pi, unsigned size);
static struct pinfo pinfos[MAX_POOL_INFOS];
static int npinfos;
static struct pinfo *pools[MAX_POOLS];
static int nsubmits, ngate_closes;
static _Atomic int64_t gate_until; /* gated tasks wait while now < gate_until */
static int devnull = -1;
static _Thread_local bool harness_thread;
static atomic_int input_ending; /* finish() has begun */

/* No pool left and no helper running: nothing but the harness thread touches futures. */
static bool all_pools_gone(void)
{
    for (int i = 0; i < MAX_POOLS; i++) {
        if (pools[i] != NULL)
            return false;
    }
    for (int i = 0; i < MAX_HELPERS; i++) {
        if (helpers[i].running)
            return false;
    }
    return true;
}

static bool final_state(int s)
{
    return s == WEFT_DONE || s == WEFT_FAILED || s == WEFT_CANCELLED;
}

static struct rec *rec_new(struct pinfo *pool, enum tkind kind, int depth, uint8_t p1, uint8_t p2,
                           uint8_t p3)
{
    int i = atomic_fetch_add(&nrecs, 1);
    if (i >= MAX_RECS)
        return NULL;
    struct rec *r = &recs[i];
    r->pool = pool;
    r->kind = kind;
    r->depth = depth;
    r->p1 = p1;
    r->p2 = p2;
    r->p3 = p3;
    r->value = (void *)(uintptr_t)(0x10000 + 16 * (unsigned)i);
    atomic_store_explicit(&r->ready, 1, memory_order_release);
    return r;
}

static struct cbrec *cb_new(weft_future *f)
{
    int i = atomic_fetch_add(&ncbs, 1);
    if (i >= MAX_CBS)
        return NULL;
    cbs[i].f = f;
    return &cbs[i];
}

/* ---------------------------------------------------------------------------------------------
 * Outcomes
 */

/* The future of task record r is in final state st; rc and v are what weft_future_result
 * gave. Checks them against what the function did. */
static void check_outcome(struct rec *r, weft_state st, int rc, void *v)
{
    int ran = atomic_load(&r->ran);
    CHECK(ran <= 1);
    switch (st) {
    case WEFT_DONE:
        CHECK(ran == 1 && atomic_load(&r->finished));
        CHECK(r->ret == 0);
        CHECK(rc == 0);
        CHECK(v == r->value);
        break;
    case WEFT_FAILED:
        CHECK(ran == 1 && atomic_load(&r->finished));
        CHECK(r->ret != 0);
        CHECK(rc == r->ret);
        /* -ECANCELED after seeing a request must end CANCELLED */
        CHECK(!(r->ret == -ECANCELED && atomic_load(&r->saw_cancel)));
        break;
    case WEFT_CANCELLED:
        CHECK(rc == -ECANCELED);
        if (ran) {
            CHECK(atomic_load(&r->finished) && r->ret == -ECANCELED);
            CHECK(atomic_load(&r->exposed));
        } else {
            /* a continuation whose pool was shut down before its predecessor finished ends
             * CANCELLED, whatever the mode */
            CHECK(atomic_load(&r->exposed) || atomic_load(&r->pool->maybe_cancel) ||
                  (r->then_prev != NULL && atomic_load(&r->pool->maybe_closed)));
        }
        break;
    default:
        CHECK(!"not a final state");
    }
    if (ran && r->then_prev != NULL)
        CHECK(atomic_load(&r->prev_seen) != 0); /* its function checked its predecessor */
}

/* Reads the state of a future the harness knows, checking that it only moved forward. */
static weft_state observe(struct finfo *fi)
{
    int ran = fi->kind == FI_TASK ? atomic_load(&fi->rec->ran) : 0;
    weft_state s = weft_future_state(fi->f);
    CHECK((unsigned)s <= WEFT_CANCELLED);
    if (final_state(s))
        CHECK(weft_future_done(fi->f));
    if (fi->last == WEFT_RUNNING)
        CHECK(s != WEFT_PENDING);
    if (fi->last >= 0 && final_state(fi->last))
        CHECK((int)s == fi->last);
    if (ran > 0) /* the function begins after the start */
        CHECK(s != WEFT_PENDING);
    if (fi->cancelled1) {
        CHECK(s == WEFT_CANCELLED);
        CHECK(ran == 0);
    }
    if (fi->kind == FI_PROMISE)
        CHECK(s != WEFT_RUNNING);    /* nothing runs a promise */
    if (fi->prev != NULL && ran > 0) /* a continuation runs once its predecessor finished */
        CHECK(weft_future_done(fi->prev->f));
    fi->last = (int)s;
    return s;
}

static bool all_pools_gone(void);

/* No completion of promise p can be under way: no helper holds it and no cancel from another
 * thread can reach it while a pool or helper exists. */
static bool prom_quiet(struct prom *p)
{
    return atomic_load(&p->inflight) == 0 && (!p->async || all_pools_gone());
}

/* The current walks over futures, one counter per kind of walk (see struct finfo). */
static unsigned walk, walk_s, walk_p, walk_r;

static bool settled_walk(struct finfo *fi)
{
    if (fi->walk_settled == walk_s)
        return fi->settled_val;
    fi->walk_settled = walk_s;
    bool v = final_state(weft_future_state(fi->f));
    if (v && !fi->cancelled1) {
        if (fi->kind == FI_TASK) {
            v = fi->rec->pool->destroyed;
            /* a continuation may also be finished (cancelled) by its predecessor's finisher */
            if (v && fi->prev != NULL)
                v = settled_walk(fi->prev);
        } else if (fi->kind == FI_PROMISE) {
            v = prom_quiet(fi->prom);
        } else {
            for (size_t i = 0; v && i < fi->n; i++)
                v = settled_walk(fi->kids[i]);
        }
    }
    fi->settled_val = v;
    return v;
}

/* Finished, and whoever finished it has returned (so its callbacks and nodes have fired). */
static bool settled(struct finfo *fi)
{
    walk_s++;
    return settled_walk(fi);
}

static void check_walk(struct finfo *fi);

static void check_task(struct finfo *fi)
{
    /* before the state: a helper thread may complete a promise predecessor meanwhile */
    bool prev_settled = fi->prev != NULL && settled(fi->prev);
    weft_state st = observe(fi);
    if (!final_state(st)) {
        /* a destroyed pool ran or cancelled everything; a continuation waits for its
         * predecessor even so (and ends CANCELLED once it finished) */
        if (fi->prev == NULL)
            CHECK(!fi->rec->pool->destroyed);
        else if (fi->rec->pool->destroyed)
            CHECK(!prev_settled);
        return;
    }
    void *v = NULL;
    int rc = weft_future_result(fi->f, &v);
    check_outcome(fi->rec, st, rc, v);
    CHECK(weft_future_wait(fi->f, 0) == 0);
    CHECK(weft_gather_child(fi->f, 0, NULL) == -EINVAL);
    int rrc = weft_future_set_result(fi->f, NULL); /* not a promise */
    CHECK_RC(rrc, rrc == -EINVAL);
    CHECK(weft_future_set_error(fi->f, 5) == -EINVAL);
    if (fi->prev != NULL) {
        /* the function saw its predecessor finished, in the state it kept */
        int seen = atomic_load(&fi->rec->prev_seen);
        if (seen != 0) {
            weft_state ps = weft_future_state(fi->prev->f);
            CHECK(final_state(ps) && seen == 1 + (int)ps);
        }
    }
}

/* A promise: never RUNNING; its outcome is that of the one completion that won. */
static void check_promise(struct finfo *fi)
{
    struct prom *p = fi->prom;
    /* A winner bumps its counter after its call returned, when the promise had finished: read
     * the counters first, the state after. */
    int s = atomic_load(&p->set_ok), e = atomic_load(&p->err_ok), c = atomic_load(&p->cancel_ok);
    CHECK(s + e + c <= 1);
    /* Before the state too: a helper thread may finish a completion meanwhile. Quiet then, and
     * not finished, only a gather can finish it before this thread starts a helper that does:
     * the child of a CANCEL_ON_ERROR gather (exposed) is cancelled by the thread that fails a
     * sibling, a worker's or a helper's. */
    bool idle = prom_quiet(p);
    weft_state st = observe(fi);
    CHECK(weft_gather_child(fi->f, 0, NULL) == -EINVAL);
    if (!final_state(st)) {
        CHECK(s + e + c == 0);
        int rc = weft_future_wait(fi->f, 0);
        CHECK(rc == -ETIMEDOUT || (rc == 0 && (!idle || p->exposed)));
        return;
    }
    bool quiet = prom_quiet(p);
    if (quiet) { /* every completion has returned and counted */
        s = atomic_load(&p->set_ok);
        e = atomic_load(&p->err_ok);
        c = atomic_load(&p->cancel_ok);
    }
    void *v = (void *)&v;
    int rc = weft_future_result(fi->f, &v);
    switch (st) {
    case WEFT_DONE:
        CHECK(rc == 0 && v == p->value);
        CHECK(e == 0 && c == 0 && (s == 1 || !quiet));
        break;
    case WEFT_FAILED:
        CHECK_RC(rc, rc == p->code);
        CHECK(v == (void *)&v); /* untouched */
        CHECK(s == 0 && c == 0 && (e == 1 || !quiet));
        break;
    case WEFT_CANCELLED:
        CHECK(rc == -ECANCELED);
        CHECK(s == 0 && e == 0);
        if (c == 0 && quiet)
            CHECK(p->exposed); /* cancelled by a gather */
        break;
    default:
        CHECK(!"not a final state");
    }
    CHECK(weft_future_wait(fi->f, 0) == 0);
    CHECK(weft_future_wait(fi->f, WEFT_FOREVER) == 0);
}

static void check_gather(struct finfo *fi)
{
    weft_future *g = fi->f;
    bool retexc = (fi->flags & WEFT_RETURN_EXCEPTIONS) != 0;
    bool kid_done[8], kid_settled[8];
    /* The children before the gather: a helper thread may complete a promise child meanwhile,
     * and only a child that had settled before the gather's state was read must have counted */
    for (size_t i = 0; i < fi->n; i++) {
        kid_settled[i] = settled(fi->kids[i]);
        kid_done[i] = final_state(observe(fi->kids[i]));
    }
    weft_state st = observe(fi);
    CHECK(weft_gather_child(g, fi->n, NULL) == -EINVAL);
    CHECK(weft_gather_child(g, SIZE_MAX, NULL) == -EINVAL);
    if (!final_state(st)) {
        bool all = true;
        for (size_t i = 0; i < fi->n; i++) {
            struct finfo *k = fi->kids[i];
            if (!kid_settled[i]) {
                all = false;
                continue;
            }
            /* a settled child has reported: a failure fails the gather at once */
            if (!retexc)
                CHECK(weft_future_state(k->f) == WEFT_DONE);
        }
        CHECK(!all); /* every child reported: the gather has finished */
        for (size_t i = 0; i < fi->n; i++) {
            int rc = weft_gather_child(g, i, NULL);
            if (kid_done[i])
                CHECK(rc != -EAGAIN);
            if (rc != -EAGAIN)
                CHECK(weft_future_done(fi->kids[i]->f));
        }
        return;
    }
    void *r = (void *)&r;
    int rc = weft_future_result(g, &r);
    switch (st) {
    case WEFT_DONE: {
        CHECK(rc == 0);
        CHECK(fi->n == 0 || r != NULL);
        void **arr = r;
        for (size_t i = 0; i < fi->n; i++) {
            struct finfo *k = fi->kids[i];
            weft_state ks = observe(k);
            CHECK(final_state(ks));
            if (!retexc)
                CHECK(ks == WEFT_DONE);
            void *kv = NULL;
            int krc = weft_future_result(k->f, &kv);
            CHECK(arr[i] == (ks == WEFT_DONE ? kv : NULL));
            void *gv = NULL;
            CHECK(weft_gather_child(g, i, &gv) == krc);
            if (ks == WEFT_DONE)
                CHECK(gv == kv);
        }
        void *r2 = NULL;
        CHECK(weft_future_result(g, &r2) == 0 && r2 == r);
        break;
    }
    case WEFT_FAILED: {
        CHECK(!retexc);
        CHECK(rc != 0);
        bool found = false;
        for (size_t i = 0; i < fi->n; i++) {
            struct finfo *k = fi->kids[i];
            weft_state ks = observe(k);
            if (final_state(ks) && ks != WEFT_DONE && weft_future_result(k->f, NULL) == rc)
                found = true;
        }
        CHECK(found); /* the code is that of a child that failed or was cancelled */
        break;
    }
    case WEFT_CANCELLED:
        CHECK(rc == -ECANCELED);
        CHECK(fi->exposed);
        break;
    default:
        CHECK(!"not a final state");
    }
    for (size_t i = 0; i < fi->n; i++)
        check_walk(fi->kids[i]);
}

static void check_walk(struct finfo *fi)
{
    if (fi->walk_check == walk)
        return;
    fi->walk_check = walk;
    if (fi->kind == FI_TASK) {
        check_task(fi);
        if (fi->prev != NULL)
            check_walk(fi->prev);
    } else if (fi->kind == FI_PROMISE) {
        check_promise(fi);
    } else {
        check_gather(fi);
    }
}

/* Checks everything the harness can about fi and, for a gather, its descendants. */
static void check_fut(struct finfo *fi)
{
    walk++;
    check_walk(fi);
}

/* Marks everything a cancel of fi may reach, before the cancel; async: a cancel that may run on
 * another thread than the harness's. (A continuation's cancel does not reach its predecessor.) */
static void expose_(struct finfo *fi, bool async)
{
    if (fi->kind == FI_TASK) {
        atomic_store(&fi->rec->exposed, 1);
        return;
    }
    if (fi->kind == FI_PROMISE) {
        fi->prom->exposed = true;
        if (async)
            fi->prom->async = true;
        return;
    }
    if (async ? fi->exposed_async : fi->exposed)
        return; /* and so are its descendants */
    fi->exposed = true;
    if (async)
        fi->exposed_async = true;
    for (size_t i = 0; i < fi->n; i++)
        expose_(fi->kids[i], async);
}

static void expose(struct finfo *fi)
{
    expose_(fi, false);
}

static void no_pending_walk(struct finfo *fi)
{
    for (size_t i = 0; i < fi->n; i++) {
        struct finfo *k = fi->kids[i];
        if (k->walk_pending == walk_p)
            continue;
        k->walk_pending = walk_p;
        /* a promise that a helper is setting may still read PENDING for a moment: the cancel
         * lost to the setter, which finishes it */
        if (observe(k) == WEFT_PENDING)
            CHECK(k->kind == FI_PROMISE && atomic_load(&k->prom->inflight) > 0);
        no_pending_walk(k);
    }
}

/* After cancelling a gather: no descendant may still be PENDING. */
static void check_no_pending(struct finfo *fi)
{
    walk_p++;
    no_pending_walk(fi);
}

/* ---------------------------------------------------------------------------------------------
 * Callbacks
 */

static void cb_fn(weft_future *f, void *data)
{
    struct cbrec *c = data;
    CHECK(f == c->f);
    CHECK(weft_future_done(f));
    CHECK(atomic_load(&c->expected));
    if (harness_thread)
        atomic_store(&c->on_harness_thread, 1);
    if (c->audit != NULL) {
        weft_state s = weft_future_state(f);
        CHECK(final_state(s));
        atomic_store(&c->audit->audit, 1 + (int)s);
    }
    if (c->nested) {
        /* f has finished: a callback registered now runs at once, here */
        struct cbrec *n = cb_new(f);
        if (n != NULL) {
            atomic_store(&n->expected, 1);
            int rc = weft_future_on_done(f, cb_fn, n);
            CHECK(rc == 0);
            CHECK(atomic_load(&n->count) == 1);
        }
    }
    CHECK(atomic_fetch_add(&c->count, 1) == 0);
    if (c->release)
        weft_future_release(f);
}

/* Registers a callback on f; flags: 1 it owns a reference, 2 nested, 4 audit record r. */
static void register_cb(weft_future *f, unsigned flags, struct rec *r)
{
    struct cbrec *c = cb_new(f);
    if (c == NULL)
        return;
    c->release = flags & 1;
    c->nested = (flags & 2) != 0;
    if ((flags & 4) && r != NULL) {
        c->audit = r;
        atomic_store(&r->audited, 1);
    }
    bool was_done = weft_future_done(f);
    if (c->release)
        weft_future_retain(f);
    atomic_store(&c->expected, 1);
    int rc = weft_future_on_done(f, cb_fn, c);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0) {
        CHECK(atomic_load(&c->count) == 0);
        atomic_store(&c->expected, 0);
        if (c->audit != NULL)
            atomic_store(&r->audited, 0);
        if (c->release)
            weft_future_release(f);
        return;
    }
    if (was_done) { /* at once, in the calling thread */
        CHECK(atomic_load(&c->count) == 1);
        if (harness_thread)
            CHECK(atomic_load(&c->on_harness_thread));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Tasks
 */

static int task_fn(void *arg, void **result);

static bool gate_closed(void)
{
    return now_ns() < atomic_load(&gate_until);
}

/* Submits a task for record r from inside a task of r's pool; out NULL: detached. */
static int child_submit(struct rec *r, weft_future **out)
{
    weft_future *f = (weft_future *)&f;
    int rc = weft_submit(r->pool->p, task_fn, r, out != NULL ? &f : NULL);
    /* from a worker of the pool: never -EAGAIN */
    CHECK_RC(rc,
             rc == 0 || rc == -ENOMEM || (rc == -ESHUTDOWN && atomic_load(&r->pool->maybe_closed)));
    if (rc != 0) {
        CHECK(out == NULL || f == (weft_future *)&f);
        return rc;
    }
    atomic_store(&r->submitted, 1);
    if (out != NULL) {
        atomic_store(&r->self, f);
        *out = f;
    }
    return 0;
}

static enum tkind child_kind(uint8_t b, int depth)
{
    static const enum tkind k[8] = {TK_VALUE, TK_FAIL,  TK_SLEEP, TK_SPIN,
                                    TK_CHILD, TK_VALUE, TK_FAIL,  TK_MULTI};
    enum tkind t = k[b & 7];
    if (depth >= 2 && (t == TK_CHILD || t == TK_MULTI))
        t = TK_VALUE;
    return t;
}

/* Child of a task whose outcome the task checks: result rc/v, state final. */
static void check_child(struct rec *c, weft_future *f, int rc, void *v)
{
    weft_state st = weft_future_state(f);
    CHECK(final_state(st));
    check_outcome(c, st, rc, v);
}

static int spin_until(struct rec *r, int64_t end, bool cancellable, bool gate)
{
    for (;;) {
        if (gate ? !gate_closed() : now_ns() >= end)
            return 0;
        if (gate && now_ns() >= end)
            return 0;
        if (weft_cancel_requested()) {
            atomic_store(&r->saw_cancel, 1);
            if (cancellable)
                return -ECANCELED;
        }
        sleep_ns(5000);
    }
}

/* --- TK_JOIN --- */

struct jhalf {
    int depth;
    atomic_int *leaves;
    struct rec *r;
    bool detach;
    bool slow; /* leaves sleep, so that frames stay in the deque a while */
};

static void join_half(void *arg)
{
    struct jhalf *h = arg;
    if (weft_cancel_requested())
        atomic_store(&h->r->saw_cancel, 1);
    if (h->depth == 0) {
        atomic_fetch_add(h->leaves, 1);
        if (h->slow)
            sleep_ns(20000);
        if (h->detach) {
            struct rec *c = rec_new(h->r->pool, TK_VALUE, h->r->depth + 1, 0, 0, 0);
            if (c != NULL)
                child_submit(c, NULL);
        }
        return;
    }
    struct jhalf a = {h->depth - 1, h->leaves, h->r, h->detach, h->slow};
    struct jhalf b = {h->depth - 1, h->leaves, h->r, false, h->slow};
    weft_join(join_half, &a, join_half, &b);
}

struct loopctx {
    size_t n, grain;
    atomic_int hits[64];
    atomic_int bad;
};

static void loop_body(size_t lo, size_t hi, void *ctx)
{
    struct loopctx *l = ctx;
    CHECK(lo < hi && hi <= l->n);
    if (l->grain != 0)
        CHECK(hi - lo <= l->grain);
    for (size_t i = lo; i < hi; i++)
        atomic_fetch_add(&l->hits[i], 1);
}

static void loop_check(struct loopctx *l)
{
    for (size_t i = 0; i < l->n; i++)
        CHECK(atomic_load(&l->hits[i]) == 1);
}

/* A reduction whose operator is associative but does not commute: the accumulator is a range
 * [lo, hi), and folding checks that the ranges come in left-to-right order. */
struct racc {
    size_t lo, hi;
    int empty;
};

static void reduce_body(size_t lo, size_t hi, void *acc, void *ctx)
{
    struct racc *a = acc;
    size_t n = *(size_t *)ctx;
    CHECK(lo < hi && hi <= n);
    if (a->empty) {
        a->lo = lo;
        a->empty = 0;
    } else {
        CHECK(a->hi == lo);
    }
    a->hi = hi;
}

static void reduce_combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    struct racc *a = acc;
    const struct racc *b = other;
    if (b->empty)
        return;
    if (a->empty) {
        *a = *b;
        return;
    }
    CHECK(a->hi == b->lo);
    a->hi = b->hi;
}

static void scope_fn(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void do_loops(weft_pool *pool, bool inside, struct pinfo *pi, uint8_t p1, uint8_t p2,
                     uint8_t p3)
{
    struct loopctx l;
    memset(&l, 0, sizeof(l));
    l.n = p2 % 65;
    l.grain = p3 % 9;
    int rc = weft_parallel_for(pool, 0, l.n, l.grain, loop_body, &l);
    if (trace_ops && !inside)
        fprintf(stderr, "fuzz_api: parallel_for over %zu: %d\n", l.n, rc);
    if (inside) {
        CHECK(rc == 0 || rc == -ENOMEM);
    } else {
        /* -ESHUTDOWN also when a CANCEL shutdown swept the loop's task before it started */
        CHECK_RC(rc, rc == 0 || rc == -ENOMEM || rc == -ESHUTDOWN ||
                         (rc == -EAGAIN && pi->max_pending != 0));
        if (rc == -ESHUTDOWN)
            CHECK(atomic_load(&pi->maybe_closed));
        if (pi->harness_closed)
            CHECK(rc == -ESHUTDOWN);
        if (rc == 0 && l.n > 0)
            atomic_fetch_add(&pi->outside_loops, 1);
    }
    if (rc == 0)
        loop_check(&l);
    else
        for (size_t i = 0; i < l.n; i++)
            CHECK(atomic_load(&l.hits[i]) == 0);

    size_t n = (size_t)(p1 % 70);
    struct racc id = {0, 0, 1}, res = {7, 7, 7};
    rc = weft_parallel_reduce(pool, 0, n, p3 % 5, sizeof(struct racc), &id, reduce_body,
                              reduce_combine, &n, &res);
    if (inside) {
        CHECK(rc == 0 || rc == -ENOMEM);
    } else {
        CHECK_RC(rc, rc == 0 || rc == -ENOMEM || rc == -ESHUTDOWN ||
                         (rc == -EAGAIN && pi->max_pending != 0));
        if (rc == -ESHUTDOWN)
            CHECK(atomic_load(&pi->maybe_closed));
        if (pi->harness_closed)
            CHECK(rc == -ESHUTDOWN);
        if (rc == 0 && n > 0)
            atomic_fetch_add(&pi->outside_loops, 1);
    }
    if (rc == 0) {
        if (n == 0)
            CHECK(res.empty == 1);
        else
            CHECK(!res.empty && res.lo == 0 && res.hi == n);
    } else {
        CHECK(res.lo == 7 && res.hi == 7 && res.empty == 7);
    }
}

/* Inline fork-join: the same tree with weft_offer / weft_reclaim. */
struct ohalf {
    int depth;
    atomic_int *leaves;
    struct rec *r;
};

static void offer_half(void *arg)
{
    struct ohalf *h = arg;
    if (weft_cancel_requested())
        atomic_store(&h->r->saw_cancel, 1);
    if (h->depth == 0) {
        atomic_fetch_add(h->leaves, 1);
        return;
    }
    struct ohalf a = {h->depth - 1, h->leaves, h->r}, b = {h->depth - 1, h->leaves, h->r};
    weft_frame fr;
    weft_offer(&fr, offer_half, &b);
    offer_half(&a);
    if (weft_reclaim(&fr))
        offer_half(&b); /* nobody took it */
}

static void task_join(struct rec *r)
{
    atomic_int leaves = 0;
    struct jhalf top = {r->p1 % 5, &leaves, r, (r->p2 & 1) != 0, (r->p3 & 0x20) != 0};
    join_half(&top);
    CHECK(atomic_load(&leaves) == 1 << (r->p1 % 5));

    do_loops((r->p3 & 0x10) ? r->pool->p : NULL, true, r->pool, r->p1, r->p2, r->p3);

    weft_scope s;
    weft_spawn slot[6];
    atomic_int count = 0;
    int k = r->p1 % 7;
    weft_scope_init(&s);
    for (int i = 0; i < k; i++)
        weft_scope_spawn(&s, &slot[i], scope_fn, &count);
    weft_scope_wait(&s);
    CHECK(atomic_load(&count) == k);

    atomic_int oleaves = 0;
    struct ohalf otop = {r->p2 % 6, &oleaves, r};
    offer_half(&otop);
    CHECK(atomic_load(&oleaves) == 1 << (r->p2 % 6)); /* every leaf once */
}

/* --- TK_MULTI: several children and one multi-future wait on them --- */

static void check_partition(weft_future *const orig[], weft_future *const res[], size_t n,
                            size_t nd, const bool pre[]);
static bool cond_holds(weft_future *const res[], size_t n, size_t nd, weft_return_when when);

static void task_multi(struct rec *r)
{
    size_t k = 1 + r->p1 % 4;
    weft_future *cs[4];
    struct rec *cr[4];
    size_t m = 0;
    int variant = r->p2 % 4;
    unsigned gflags = r->p3 & 3;
    for (size_t i = 0; i < k; i++) {
        enum tkind ck = child_kind((uint8_t)(r->p3 >> 2) + (uint8_t)i, 2);
        struct rec *c =
            rec_new(r->pool, ck, r->depth + 1, (uint8_t)(r->p1 + i), r->p2, (uint8_t)(r->p3 + i));
        if (c == NULL)
            break;
        if (variant == 2 && (gflags & WEFT_CANCEL_ON_ERROR))
            atomic_store(&c->exposed, 1);
        if (child_submit(c, &cs[m]) != 0)
            break;
        cr[m++] = c;
    }
    if (m == 0)
        return;
    switch (variant) {
    case 0: {
        weft_return_when when = (weft_return_when)(r->p3 % 3);
        weft_future *out[4];
        bool pre[4];
        for (size_t i = 0; i < m; i++)
            pre[i] = weft_future_done(cs[i]);
        size_t nd = 99;
        int rc = weft_wait(cs, m, when, WEFT_FOREVER, out, &nd);
        CHECK(rc == 0);
        check_partition(cs, out, m, nd, pre);
        CHECK(cond_holds(out, m, nd, when));
        break;
    }
    case 1:
    case 3: {
        weft_completion *c = NULL;
        int rc;
        if (variant == 1) {
            rc = weft_as_completed(cs, m, &c);
        } else {
            rc = weft_completion_create(&c);
            for (size_t i = 0; rc == 0 && i < m; i++) {
                rc = weft_completion_add(c, cs[i]);
                CHECK(rc == 0 || rc == -ENOMEM);
                if (rc != 0) {
                    weft_completion_destroy(c);
                    c = NULL;
                }
            }
        }
        CHECK(rc == 0 || rc == -ENOMEM);
        if (rc != 0)
            break;
        if (variant == 3) {
            int fd = weft_completion_fd(c);
            CHECK(fd >= 0 || fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM);
        }
        bool seen[4] = {false, false, false, false};
        for (size_t i = 0; i < m; i++) {
            weft_future *f = NULL;
            rc = weft_completion_next(c, WEFT_FOREVER, &f);
            CHECK(rc == 0);
            CHECK(weft_future_done(f));
            size_t j = 0;
            while (j < m && (cs[j] != f || seen[j]))
                j++;
            CHECK(j < m);
            seen[j] = true;
            weft_future_release(f);
        }
        weft_future *f = NULL;
        CHECK(weft_completion_next(c, WEFT_FOREVER, &f) == -ENOENT);
        CHECK(weft_completion_next(c, 0, &f) == -ENOENT);
        weft_completion_destroy(c);
        break;
    }
    case 2: {
        weft_future *g = NULL;
        int rc = weft_gather(cs, m, gflags, &g);
        CHECK(rc == 0 || rc == -ENOMEM);
        if (rc != 0)
            break;
        void *v = NULL;
        rc = weft_future_result(g, &v);
        weft_state st = weft_future_state(g);
        CHECK(final_state(st));
        if (st == WEFT_DONE) {
            CHECK(rc == 0);
            void **arr = v;
            for (size_t i = 0; i < m; i++) {
                weft_state ks = weft_future_state(cs[i]);
                CHECK(final_state(ks));
                if (!(gflags & WEFT_RETURN_EXCEPTIONS))
                    CHECK(ks == WEFT_DONE);
                CHECK(arr[i] == (ks == WEFT_DONE ? cr[i]->value : NULL));
            }
        } else {
            CHECK(st == WEFT_FAILED && rc != 0 && !(gflags & WEFT_RETURN_EXCEPTIONS));
        }
        weft_future_release(g);
        break;
    }
    }
    for (size_t i = 0; i < m; i++) {
        void *v = NULL;
        int rc = weft_future_result(cs[i], &v);
        check_child(cr[i], cs[i], rc, v);
        weft_future_release(cs[i]);
    }
}

/* --- promises and continuations --- */

/* One completion call on promise p, from any thread: how % 4 is set_result, set_error, cancel,
 * set_error with code 0 (always -EINVAL). Checks the code and what a win leaves; returns the
 * code. The counters are bumped after the call returned (see check_promise). */
static int prom_complete(struct prom *p, unsigned how)
{
    int rc;
    atomic_fetch_add(&p->calls, 1);
    switch (how % 4) {
    case 0:
        rc = weft_future_set_result(p->f, p->value);
        CHECK_RC(rc, rc == 0 || rc == -EALREADY);
        if (rc == 0) {
            void *v = NULL;
            CHECK(weft_future_state(p->f) == WEFT_DONE); /* finished before the call returned */
            CHECK(weft_future_result(p->f, &v) == 0 && v == p->value);
            CHECK(atomic_fetch_add(&p->set_ok, 1) == 0);
        }
        break;
    case 1:
        rc = weft_future_set_error(p->f, p->code);
        CHECK_RC(rc, rc == 0 || rc == -EALREADY);
        if (rc == 0) {
            CHECK(weft_future_state(p->f) == WEFT_FAILED);
            CHECK(weft_future_result(p->f, NULL) == p->code);
            CHECK(atomic_fetch_add(&p->err_ok, 1) == 0);
        }
        break;
    case 2:
        rc = weft_future_cancel(p->f);
        CHECK_RC(rc, rc == 0 || rc == 1);
        if (rc == 1) {
            CHECK(weft_future_state(p->f) == WEFT_CANCELLED);
            CHECK(atomic_fetch_add(&p->cancel_ok, 1) == 0);
        } else {
            /* 0: it had finished (a promise never runs) */
            CHECK_DEV(weft_future_done(p->f), "promise-setting-pending");
        }
        break;
    default:
        rc = weft_future_set_error(p->f, 0);
        CHECK_RC(rc, rc == -EINVAL);
        return rc;
    }
    if (rc == -EALREADY) /* it had finished, cancelled included */
        CHECK_DEV(weft_future_done(p->f), "promise-setting-pending");
    /* exactly one completion wins */
    CHECK(atomic_load(&p->set_ok) + atomic_load(&p->err_ok) + atomic_load(&p->cancel_ok) <= 1);
    return rc;
}

/* A continuation's function: given its predecessor, finished; then the task of its record. */
static int then_fn(weft_future *prev, void *arg, void **result)
{
    struct rec *r = arg;
    CHECK(prev == r->then_prev);
    CHECK(weft_future_done(prev));
    weft_state ps = weft_future_state(prev);
    CHECK(final_state(ps));
    void *v = (void *)&v;
    int rc = weft_future_result(prev, &v); /* finished: returns at once */
    if (ps == WEFT_DONE)
        CHECK(rc == 0);
    else if (ps == WEFT_CANCELLED)
        CHECK(rc == -ECANCELED);
    else
        CHECK(rc != 0 && v == (void *)&v);
    CHECK(atomic_exchange(&r->prev_seen, 1 + (int)ps) == 0); /* once */
    return task_fn(arg, result);
}

/* A continuation of prev on r's pool, from inside r's task; its record is *cr. NULL if refused. */
static weft_future *then_inside(struct rec *r, weft_future *prev, uint8_t b, struct rec **cr)
{
    struct rec *c = rec_new(r->pool, child_kind(b, 2), r->depth + 1, b, r->p2, r->p3);
    if (c == NULL)
        return NULL;
    c->then_prev = prev;
    weft_future *f = (weft_future *)&f;
    int rc = weft_future_then(prev, r->pool->p, then_fn, c, &f);
    /* from a worker of the pool: never -EAGAIN */
    CHECK_RC(rc,
             rc == 0 || rc == -ENOMEM || (rc == -ESHUTDOWN && atomic_load(&r->pool->maybe_closed)));
    if (rc != 0) {
        CHECK(f == (weft_future *)&f);
        return NULL;
    }
    atomic_store(&c->submitted, 1);
    atomic_store(&c->self, f);
    *cr = c;
    return f;
}

/* TK_PROMISE: a promise q made inside the pool; continuations of q, of that continuation, of a
 * gather over q and a child task, and of the child once finished; q completed here. */
static void task_promise(struct rec *r)
{
    weft_future *q = (weft_future *)&q;
    int rc = weft_future_create(&q);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0) {
        CHECK(q == (weft_future *)&q);
        return;
    }
    CHECK(weft_future_state(q) == WEFT_PENDING && !weft_future_done(q));
    CHECK(weft_future_wait(q, 0) == -ETIMEDOUT);
    struct rec *kr = rec_new(r->pool, child_kind(r->p2, 2), r->depth + 1, r->p3, r->p2, 0);
    weft_future *kf = NULL;
    if (kr != NULL && child_submit(kr, &kf) != 0)
        kf = NULL;
    weft_future *fs[2] = {q, kf};
    unsigned gflags = (r->p2 & 1) ? WEFT_RETURN_EXCEPTIONS : 0;
    weft_future *g = NULL;
    rc = weft_gather(fs, kf != NULL ? 2 : 1, gflags, &g);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0)
        g = NULL;
    weft_future *cf[4] = {NULL, NULL, NULL, NULL}, *cp[4] = {q, NULL, g, kf};
    struct rec *cr[4] = {NULL, NULL, NULL, NULL};
    cf[0] = then_inside(r, q, r->p1, &cr[0]);
    cp[1] = cf[0];
    if (cf[0] != NULL)
        cf[1] = then_inside(r, cf[0], (uint8_t)(r->p1 >> 3), &cr[1]);
    if (g != NULL)
        cf[2] = then_inside(r, g, (uint8_t)(r->p1 + 1), &cr[2]);
    if (kf != NULL) {
        CHECK(weft_future_wait(kf, WEFT_FOREVER) == 0);
        cf[3] = then_inside(r, kf, (uint8_t)(r->p1 + 2), &cr[3]); /* finished: queued at once */
        CHECK(weft_future_set_result(kf, NULL) == -EINVAL);       /* not a promise */
    }
    /* complete q: DONE or FAILED; then every other completion is refused */
    void *qv = (void *)((uintptr_t)r->value + 8);
    int qcode = fail_codes[(r->p1 >> 1) & 7];
    rc = (r->p1 & 1) ? weft_future_set_error(q, qcode) : weft_future_set_result(q, qv);
    CHECK(rc == 0);
    CHECK(weft_future_state(q) == ((r->p1 & 1) ? WEFT_FAILED : WEFT_DONE));
    CHECK(weft_future_set_result(q, NULL) == -EALREADY);
    CHECK(weft_future_set_error(q, 3) == -EALREADY);
    CHECK(weft_future_set_error(q, 0) == -EINVAL);
    CHECK(weft_future_cancel(q) == 0);
    void *v = NULL;
    rc = weft_future_result(q, &v);
    CHECK((r->p1 & 1) ? rc == qcode : (rc == 0 && v == qv));
    for (int i = 0; i < 4; i++) {
        if (cf[i] == NULL)
            continue;
        v = NULL;
        rc = weft_future_result(cf[i], &v);
        check_child(cr[i], cf[i], rc, v);
        int seen = atomic_load(&cr[i]->prev_seen);
        if (seen != 0)
            CHECK(seen == 1 + (int)weft_future_state(cp[i]));
    }
    if (g != NULL) {
        v = NULL;
        rc = weft_future_result(g, &v);
        weft_state st = weft_future_state(g);
        if (st == WEFT_DONE) {
            CHECK(rc == 0 && ((void **)v)[0] == ((r->p1 & 1) ? NULL : qv));
            if (!gflags)
                CHECK(!(r->p1 & 1));
        } else {
            CHECK(st == WEFT_FAILED && rc != 0 && !gflags);
        }
    }
    for (int i = 3; i >= 0; i--)
        weft_future_release(cf[i]);
    weft_future_release(g);
    if (kf != NULL) {
        v = NULL;
        rc = weft_future_result(kf, &v);
        check_child(kr, kf, rc, v);
        weft_future_release(kf);
    }
    weft_future_release(q);
}

static int task_fn(void *arg, void **result)
{
    struct rec *r = arg;
    CHECK(atomic_fetch_add(&r->ran, 1) == 0); /* at most once */
    CHECK(atomic_load(&r->cancelled1) == 0);  /* never after cancel returned 1 */
    int wi = weft_worker_index();
    CHECK(wi >= 0 && (unsigned)wi < r->pool->threads);
    if (trace_ops)
        fprintf(stderr, "fuzz_api: task %d (kind %d) starts on worker %d\n", (int)(r - recs),
                (int)r->kind, wi);
    int ret = 0;
    switch (r->kind) {
    case TK_VALUE:
        break;
    case TK_FAIL:
        ret = fail_codes[r->p1 & 7];
        break;
    case TK_SPIN:
        ret = spin_until(r, now_ns() + (r->p1 % 32) * 10000, true, false);
        if (ret == 0 && (r->p2 & 1))
            ret = fail_codes[(r->p2 >> 1) & 7];
        break;
    case TK_SLEEP:
        sleep_ns(1000 + (r->p1 % 32) * 1000);
        break;
    case TK_GATE:
        ret = spin_until(r, now_ns() + 3000000, r->p1 & 1, true);
        break;
    case TK_CHILD:
        if (r->depth < 3) {
            struct rec *c = rec_new(r->pool, child_kind(r->p1, r->depth + 1), r->depth + 1, r->p2,
                                    r->p3, (uint8_t)(r->p1 ^ r->p2));
            weft_future *cf = NULL;
            if (c != NULL && child_submit(c, &cf) == 0) {
                if (r->p3 & 2)
                    register_cb(cf, r->p3 & 2, NULL);
                if (r->p3 & 4) {
                    int rc = weft_future_wait(cf, 1000 * (r->p3 >> 4));
                    CHECK(rc == 0 || rc == -ETIMEDOUT);
                }
                void *v = NULL;
                int rc = weft_future_result(cf, &v);
                check_child(c, cf, rc, v);
                weft_future_release(cf);
            }
        }
        break;
    case TK_JOIN:
        task_join(r);
        break;
    case TK_SELF: {
        CHECK(weft_pool_destroy(r->pool->p) == -EDEADLK);
        CHECK(weft_pool_destroy(NULL) == 0);
        check_size(r->pool, weft_pool_size(r->pool->p));
        weft_future *self = atomic_load(&r->self);
        if (self != NULL) {
            CHECK(weft_future_state(self) == WEFT_RUNNING);
            CHECK(!weft_future_done(self));
            CHECK(weft_future_wait(self, 0) == -EDEADLK);
            CHECK(weft_future_wait(self, 1000) == -EDEADLK);
            CHECK(weft_future_wait(self, WEFT_FOREVER) == -EDEADLK);
            CHECK(weft_future_result(self, NULL) == -EDEADLK);
        }
        break;
    }
    case TK_MULTI:
        if (r->depth < 3)
            task_multi(r);
        break;
    case TK_PROMISE:
        if (r->depth < 3)
            task_promise(r);
        break;
    case TK_DETACH: {
        struct rec *c = rec_new(r->pool, child_kind(r->p1, 2), r->depth + 1, r->p2, r->p3, 0);
        if (c != NULL)
            child_submit(c, NULL);
        break;
    }
    case TK_SHUT: {
        bool cancel = r->p1 & 1;
        atomic_store(&r->pool->maybe_closed, 1);
        if (cancel)
            atomic_store(&r->pool->maybe_cancel, 1);
        CHECK(weft_pool_shutdown(r->pool->p, cancel ? WEFT_SHUTDOWN_CANCEL : WEFT_SHUTDOWN_DRAIN) ==
              0);
        struct rec *c = rec_new(r->pool, TK_VALUE, r->depth + 1, 0, 0, 0);
        if (c != NULL) {
            weft_future *f = NULL;
            CHECK(weft_submit(r->pool->p, task_fn, c, &f) == -ESHUTDOWN && f == NULL);
        }
        break;
    }
    }
    if (weft_cancel_requested())
        atomic_store(&r->saw_cancel, 1);
    if (atomic_load(&r->saw_cancel))
        CHECK(atomic_load(&r->exposed)); /* only a cancel call makes a request */
    r->ret = ret;
    atomic_store(&r->finished, 1);
    *result = r->value; /* also when failing: a failed child's slot must still read NULL */
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * weft_wait checks
 */

static bool cond_holds(weft_future *const res[], size_t n, size_t nd, weft_return_when when)
{
    switch (when) {
    case WEFT_FIRST_COMPLETED:
        return nd >= 1;
    case WEFT_ALL_COMPLETED:
        return nd == n;
    default:
        if (nd == n)
            return true;
        for (size_t i = 0; i < nd; i++) {
            if (weft_future_state(res[i]) == WEFT_FAILED)
                return true;
        }
        return false;
    }
}

static bool in_part(weft_future *const res[], size_t lo, size_t hi, const weft_future *f)
{
    for (size_t i = lo; i < hi; i++) {
        if (res[i] == f)
            return true;
    }
    return false;
}

/* res[0..nd) and res[nd..n) are orig split stably by doneness; pre[i]: orig[i] was done
 * before the call. */
static void check_partition(weft_future *const orig[], weft_future *const res[], size_t n,
                            size_t nd, const bool pre[])
{
    CHECK(nd <= n);
    size_t d = 0, p = nd;
    for (size_t i = 0; i < n; i++) {
        bool done = in_part(res, 0, nd, orig[i]);
        /* copies of one future: one part */
        CHECK_DEV(!(done && in_part(res, nd, n, orig[i])), "wait-duplicate-split");
        if (done && in_part(res, nd, n, orig[i]))
            return; /* tolerated: the checks below assume one part per future */
        if (done) {
            CHECK(d < nd && res[d] == orig[i]);
            d++;
        } else {
            CHECK(p < n && res[p] == orig[i]);
            p++;
            CHECK(!pre[i]); /* finished before the call: must be in the done part */
        }
    }
    CHECK(d == nd && p == n);
    for (size_t i = 0; i < nd; i++)
        CHECK(weft_future_done(res[i]));
}

/* ---------------------------------------------------------------------------------------------
 * Harness operations
 */

enum op {
    OP_POOL_CREATE,
    OP_SUBMIT,
    OP_SUBMIT_DETACHED,
    OP_CANCEL,
    OP_WAIT,
    OP_RESULT,
    OP_ON_DONE,
    OP_RETAIN,
    OP_RELEASE,
    OP_GATHER,
    OP_GATHER_CHILD,
    OP_WAIT_MANY,
    OP_AS_COMPLETED,
    OP_COMPL_CREATE,
    OP_COMPL_ADD,
    OP_COMPL_NEXT,
    OP_COMPL_FD,
    OP_COMPL_DESTROY,
    OP_SHUTDOWN,
    OP_DESTROY,
    OP_BAD_ARGS,
    OP_GATE,
    OP_LOOP,
    OP_STATS,
    OP_CHECK_ALL,
    OP_SLEEP,
    OP_FAULT,
    OP_HELPER,
    OP_BURST,
    OP_SWEEP,
    OP_PROM_CREATE,
    OP_PROM_SET,
    OP_THEN,
    OP_ABANDON,
    OP_HELPER_SET,
    OP_RESIZE,
    OP_COUNT
};

static int nlive(void)
{
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        n += slots[i] != NULL;
    return n;
}

/* The live slot a byte chooses, or -1 when there is none. */
static int pick_slot(uint8_t b)
{
    int n = nlive();
    if (n == 0)
        return -1;
    int k = b % n;
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (slots[i] != NULL && k-- == 0)
            return i;
    }
    return -1;
}

static struct finfo *pick(uint8_t b)
{
    int s = pick_slot(b);
    return s >= 0 ? slots[s] : NULL;
}

static struct pinfo *pick_pool(uint8_t b)
{
    return pools[b % MAX_POOLS];
}

static struct finfo *finfo_new(weft_future *f, enum fkind kind)
{
    if (nfinfos >= MAX_FINFOS)
        return NULL;
    struct finfo *fi = &finfos[nfinfos++];
    memset(fi, 0, sizeof(*fi));
    fi->f = f;
    fi->kind = kind;
    fi->last = -1;
    fi->refs = 1;
    return fi;
}

/* Keeps the harness's reference to fi in a free slot, or gives it back when there is none. */
static void keep(struct finfo *fi)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (slots[i] == NULL) {
            slots[i] = fi;
            return;
        }
    }
    check_fut(fi);
    weft_future_release(fi->f);
}

static void drop_ref(int s)
{
    struct finfo *fi = slots[s];
    check_fut(fi);
    weft_future_release(fi->f);
    if (--fi->refs == 0)
        slots[s] = NULL;
}

/* --- pools --- */

/* Whether size, just read with weft_pool_size, agrees with what the harness knows, from a
 * worker (a start hook may run late, a task any time) while the harness may resize: it sets
 * resized, raises threads if it grows, then calls weft_pool_resize. Read in the other order
 * (size, threads, then the flag), a clear flag means none of the three had happened when the
 * size was read: weft_pool_size acquires what the resize released, and the two fields are
 * seq_cst. Returns whether the pool was resized. */
static bool check_size(struct pinfo *pi, unsigned size)
{
    unsigned threads = pi->threads;
    if (atomic_load(&pi->resized)) {
        CHECK(size >= 1 && size <= pi->threads);
        return true;
    }
    CHECK(size == threads);
    return false;
}

static void hook_start(weft_pool *pool, unsigned worker, void *data)
{
    struct pinfo *pi = data;
    CHECK(worker < pi->threads);
    if (check_size(pi, weft_pool_size(pool))) {
        /* a thread that retires a worker and is revived may hold another than its first */
        CHECK(weft_worker_index() >= 0 && (unsigned)weft_worker_index() < pi->threads);
    } else {
        CHECK(weft_worker_index() == (int)worker);
    }
    CHECK(!weft_cancel_requested());
    atomic_fetch_add(&pi->started, 1);
}

/* Runs once every worker has left its loop: the pool is quiescent, so its statistics add up and
 * count exactly the tasks that ran. After a resize it also runs when a worker retires, while
 * the pool works: only what holds then is checked. */
static void hook_stop(weft_pool *pool, unsigned worker, void *data)
{
    struct pinfo *pi = data;
    CHECK(worker < pi->threads);
    if (atomic_load(&pi->resized)) {
        CHECK(weft_worker_index() >= 0 && (unsigned)weft_worker_index() < pi->threads);
        weft_stats s;
        CHECK(weft_pool_stats(pool, &s, NULL, 0) == 0);
        CHECK(s.workers >= 1 && s.workers <= pi->threads);
        atomic_fetch_add(&pi->stopped, 1);
        return;
    }
    CHECK(weft_worker_index() == (int)worker);
    weft_stats s;
    weft_worker_stats per[4];
    CHECK(weft_pool_stats(pool, &s, per, 4) == 0);
    CHECK(s.workers == pi->threads);
    if (s.submitted_outside + s.total.submitted !=
        s.total.tasks_run + s.total.tasks_skipped + s.cancelled_queued)
        fprintf(stderr,
                "fuzz_api: stats: submitted_outside %llu + submitted %llu != tasks_run %llu + "
                "tasks_skipped %llu + cancelled_queued %llu (joins %llu, joins_stolen %llu)\n",
                (unsigned long long)s.submitted_outside, (unsigned long long)s.total.submitted,
                (unsigned long long)s.total.tasks_run, (unsigned long long)s.total.tasks_skipped,
                (unsigned long long)s.cancelled_queued, (unsigned long long)s.total.joins,
                (unsigned long long)s.total.joins_stolen);
    CHECK_DEV(s.submitted_outside + s.total.submitted ==
                  s.total.tasks_run + s.total.tasks_skipped + s.cancelled_queued,
              "stats-identity");
    uint64_t ran = atomic_load(&pi->outside_loops);
    int n = atomic_load(&nrecs);
    for (int i = 0; i < n && i < MAX_RECS; i++) {
        struct rec *r = &recs[i];
        if (atomic_load_explicit(&r->ready, memory_order_acquire) && r->pool == pi)
            ran += (uint64_t)atomic_load(&r->ran);
    }
    CHECK(s.total.tasks_run == ran);
    atomic_fetch_add(&pi->stopped, 1);
}

static void op_pool_create(struct input *in)
{
    int slot = u8(in) % MAX_POOLS;
    uint8_t tb = u8(in), bb = u8(in), flags = u8(in), nb = u8(in), mb = u8(in), sb = u8(in);
    if (pools[slot] != NULL || npinfos >= MAX_POOL_INFOS)
        return;
    struct pinfo *pi = &pinfos[npinfos];
    weft_config cfg;
    weft_config_init(&cfg);
    bool bad = false;
    switch (tb % 16) {
    case 12:
        cfg.threads = 0; /* one per core: 2 on the machines this runs on, capped below */
        break;
    case 13:
        cfg.threads = WEFT_MAX_THREADS + 1;
        bad = true;
        break;
    case 14:
        cfg.threads = UINT_MAX;
        bad = true;
        break;
    default:
        cfg.threads = 1 + tb % 4;
    }
    switch (bb % 8) {
    case 1:
        cfg.bind = WEFT_BIND_COMPACT;
        break;
    case 2:
        cfg.bind = WEFT_BIND_SPREAD;
        break;
    case 3:
        cfg.bind = (weft_bind)3;
        bad = true;
        break;
    case 4:
        cfg.bind = (weft_bind)-1;
        bad = true;
        break;
    default:
        cfg.bind = WEFT_BIND_NONE;
    }
    static const char *const names[5] = {NULL, "", "fz", "a-rather-long-thread-name-prefix",
                                         "q\"\\\n"};
    cfg.name = names[nb % 5];
    if (flags & 1) {
        cfg.on_worker_start = hook_start;
        cfg.on_worker_stop = hook_stop;
        cfg.hook_data = pi;
    }
    if ((flags & 2) && (mb & 0x80))
        cfg.max_inflight = 1 + mb % 4; /* queued or running */
    else if (flags & 2)
        cfg.max_pending = 1 + mb % 4;
    if ((flags & 0x18) == 0x18)
        cfg.trace_path = "/dev/null";
    switch (sb % 8) {
    case 4:
        cfg.stack_size = (size_t)2 << 20;
        break;
    case 5:
        cfg.stack_size = (size_t)4 << 20;
        break;
    case 6:
        cfg.stack_size = 1;
        bad = true;
        break;
    case 7:
        cfg.stack_size = (size_t)PTHREAD_STACK_MIN - 1;
        bad = true;
        break;
    default:
        break;
    }
    unsigned expect = cfg.threads;
    if (cfg.threads == 0 || (flags & 0x40)) {
        weft_machine_info mi;
        CHECK(weft_machine_query(&mi) == 0);
        if (mi.default_threads > 4 || getenv("WEFT_THREADS") != NULL) {
            cfg.threads = 2; /* keep pools small; and a NULL config would not be */
            flags &= (uint8_t)~0x40;
        }
        /* what the hooks will see: the size capped above, or one per core */
        expect = cfg.threads != 0 ? cfg.threads : mi.default_threads;
    }
    bool null_out = (flags & 0x20) != 0;
    bool null_cfg = (flags & 0x40) && !bad && !(flags & 1);
    memset(pi, 0, sizeof(*pi)); /* before the hooks can run */
    pi->threads = expect;
    pi->hooks_expected = !null_cfg && (flags & 1);
    weft_pool *p = (weft_pool *)&p;
    int rc = weft_pool_create(null_cfg ? NULL : &cfg, null_out ? NULL : &p);
    if (bad || null_out) {
        CHECK(rc == -EINVAL);
        CHECK(p == (weft_pool *)&p);
        return;
    }
    CHECK(rc == 0 || rc == -ENOMEM || rc == -EAGAIN);
    if (rc != 0) {
        CHECK(p == (weft_pool *)&p);
        return;
    }
    pi->p = p;
    unsigned size = weft_pool_size(p);
    CHECK(size >= 1 && size <= WEFT_MAX_THREADS);
    if (!null_cfg && cfg.threads != 0)
        CHECK(size == cfg.threads);
    if (pi->hooks_expected)
        CHECK(size == pi->threads); /* the hooks read it: written only before the create */
    else
        pi->threads = size;
    pi->size = pi->slots = size;
    /* any limit: what the checks of -EAGAIN need to know */
    pi->max_pending = null_cfg ? 0 : cfg.max_pending + cfg.max_inflight;
    pi->hooks = !null_cfg && (flags & 1);
    npinfos++;
    pools[slot] = pi;
}

/* Waits (bounded) until a pool's workers have all run their start hooks. */
static void check_pool_gone(struct pinfo *pi)
{
    if (pi->hooks) {
        /* every worker's thread, and every spare that stood in for one (lend.c) */
        CHECK(atomic_load(&pi->started) >= pi->slots);
        CHECK(atomic_load(&pi->stopped) == atomic_load(&pi->started));
    }
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct finfo *fi = slots[i];
        if (fi != NULL && fi->kind == FI_TASK && fi->rec->pool == pi) {
            /* a continuation whose predecessor has not finished is still PENDING (and ends
             * CANCELLED when it does) */
            if (fi->prev != NULL && !settled(fi->prev))
                continue;
            CHECK(final_state(observe(fi)));
            check_fut(fi);
            /* not started when the CANCEL shutdown returned: it must never run */
            if (fi->late)
                CHECK_DEV(atomic_load(&fi->rec->ran) == 0, "cancel-shutdown-ran");
        }
    }
    int n = atomic_load(&nrecs);
    for (int i = 0; i < n && i < MAX_RECS; i++) {
        struct rec *r = &recs[i];
        /* acquire: pairs with rec_new's release (helpers may be filling other records) */
        if (!atomic_load_explicit(&r->ready, memory_order_acquire) || r->pool != pi)
            continue;
        CHECK(atomic_load(&r->ran) <= 1);
        if (!atomic_load(&r->submitted))
            CHECK(atomic_load(&r->ran) == 0);
        else if (!atomic_load(&r->exposed) && !atomic_load(&pi->maybe_cancel) &&
                 r->then_prev == NULL)        /* (continuations: see finish) */
            CHECK(atomic_load(&r->ran) == 1); /* nothing could cancel it: it ran */
    }
}

static void resolve(struct finfo *fi, unsigned how);

/* Whether continuation fi waits for its predecessor still (then-after-destroy allowed only). */
static bool then_waiting(struct finfo *fi)
{
    return fi->hidden && !weft_future_done(fi->f);
}

static void destroy_pool(int slot)
{
    struct pinfo *pi = pools[slot];
    join_helpers(pi); /* never destroy a pool another thread of ours still uses */
    if (allowed("then-after-destroy")) {
        /* Steer clear of the known bug (see the top): finish the pool's continuations first,
         * their predecessors with them. Mid-input, where they could wait for anything, a pool
         * with a continuation not finished is not destroyed; at the end every promise has been
         * completed, so they all finish. */
        bool at_end = atomic_load(&input_ending) != 0;
        for (int i = 0; i < nfinfos; i++) {
            struct finfo *fi = &finfos[i];
            if (fi->prev == NULL || fi->rec->pool != pi || !then_waiting(fi))
                continue;
            if (!at_end)
                return;
            resolve(fi, (unsigned)i);
            CHECK(weft_future_wait(fi->f, WEFT_FOREVER) == 0);
        }
    }
    atomic_store(&pi->maybe_closed, 1); /* destroy shuts down first */
    int rc = weft_pool_destroy(pi->p);
    CHECK(rc == 0);
    pi->destroyed = true;
    pools[slot] = NULL;
    check_pool_gone(pi);
}

static void op_shutdown(struct input *in)
{
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t m = u8(in);
    if (pi == NULL)
        return;
    if (m % 4 >= 2) {
        int rc =
            weft_pool_shutdown(pi->p, m % 4 == 2 ? (weft_shutdown_mode)2 : (weft_shutdown_mode)-1);
        CHECK(rc == -EINVAL);
        return;
    }
    bool cancel = m % 4 == 1;
    atomic_store(&pi->maybe_closed, 1);
    if (cancel)
        atomic_store(&pi->maybe_cancel, 1);
    int rc = weft_pool_shutdown(pi->p, cancel ? WEFT_SHUTDOWN_CANCEL : WEFT_SHUTDOWN_DRAIN);
    CHECK(rc == 0);
    pi->harness_closed = true;
    if (!cancel)
        return;
    /* Every task that had not started is CANCELLED before shutdown returns. */
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct finfo *fi = slots[i];
        if (fi == NULL || fi->kind != FI_TASK || fi->rec->pool != pi)
            continue;
        /* before the state: a helper thread may complete a promise predecessor meanwhile */
        bool prev_settled = fi->prev == NULL || settled(fi->prev);
        if (observe(fi) == WEFT_PENDING) {
            /* a continuation is queued only once its predecessor finished (and ends CANCELLED
             * when that happens now) */
            if (!prev_settled)
                continue;
            fi->late = true;
            CHECK_DEV(false, "cancel-shutdown-pending");
        }
    }
}

/* --- submitting --- */

static void submit_one(struct pinfo *pi, uint8_t kb, uint8_t p1, uint8_t p2, uint8_t p3,
                       uint8_t flags, bool detached)
{
    if (pi == NULL || nsubmits >= MAX_SUBMITS)
        return;
    nsubmits++;
    enum tkind kind = kind_table[kb % KINDS];
    if (kind == TK_SHUT && !(p3 & 0x80))
        kind = TK_VALUE; /* rarer than the others */
    struct rec *r = rec_new(pi, kind, 0, p1, p2, p3);
    if (r == NULL)
        return;
    weft_future *f = (weft_future *)&f;
    int rc;
    if (flags & 0x40) {
        /* waits for room at most 1 ms: tasks here may wait for gates this thread opens */
        rc = weft_submit_timed(pi->p, task_fn, r, (flags & 0x20) ? 1000000 : 0,
                               detached ? NULL : &f);
        CHECK(rc != -EAGAIN);
        if (rc == -ETIMEDOUT)
            rc = -EAGAIN; /* the same refusal, checked below */
    } else {
        rc = weft_submit(pi->p, task_fn, r, detached ? NULL : &f);
    }
    CHECK(rc == 0 || rc == -ESHUTDOWN || rc == -EAGAIN || rc == -ENOMEM);
    if (rc == -ESHUTDOWN)
        CHECK(atomic_load(&pi->maybe_closed));
    if (pi->harness_closed)
        CHECK(rc == -ESHUTDOWN);
    if (rc == -EAGAIN)
        CHECK(pi->max_pending != 0);
    if (rc != 0) {
        CHECK(f == (weft_future *)&f);
        return;
    }
    atomic_store(&r->submitted, 1);
    if (detached)
        return;
    CHECK(f != NULL);
    atomic_store(&r->self, f);
    struct finfo *fi = finfo_new(f, FI_TASK);
    if (fi == NULL) {
        weft_future_release(f);
        return;
    }
    fi->rec = r;
    if (flags & 1)
        register_cb(f, 4 | ((flags >> 1) & 2), r);
    observe(fi);
    keep(fi);
}

static void op_submit(struct input *in, bool detached)
{
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t kb = u8(in), p1 = u8(in), p2 = u8(in), p3 = u8(in);
    uint8_t flags = detached ? 0 : u8(in);
    submit_one(pi, kb, p1, p2, p3, flags, detached);
}

/* Many submissions at once: deep queues for shutdown, cancel and stealing to work on. */
static void op_burst(struct input *in)
{
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t k = u8(in), kb = u8(in), p1 = u8(in);
    for (int i = 0; i <= k % 32; i++)
        submit_one(pi, kb, (uint8_t)(p1 + i), (uint8_t)i, 0, 0, (k & 0x80) && (i & 1));
}

/* Gives back every reference to the futures that have settled. */
static void op_sweep(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        while (slots[i] != NULL && settled(slots[i]))
            drop_ref(i);
    }
}

/* --- promises and continuations --- */

/* Before a wait without limit: completes, from this thread, every promise still PENDING that
 * fi's outcome waits for (fi itself, a gather's children, a continuation's predecessor, and so
 * on), so that the wait ends. how picks set_result, set_error or cancel. */
static void resolve_walk(struct finfo *fi, unsigned how)
{
    if (fi->walk_resolve == walk_r)
        return;
    fi->walk_resolve = walk_r;
    switch (fi->kind) {
    case FI_PROMISE:
        if (!weft_future_done(fi->f))
            prom_complete(fi->prom, how % 3);
        break;
    case FI_GATHER:
        for (size_t i = 0; i < fi->n; i++)
            resolve_walk(fi->kids[i], how + (unsigned)i);
        break;
    case FI_TASK:
        if (fi->prev != NULL)
            resolve_walk(fi->prev, how);
        break;
    }
}

static void resolve(struct finfo *fi, unsigned how)
{
    walk_r++;
    resolve_walk(fi, how);
}

static void resolve_all(struct finfo *const fis[], size_t n, unsigned how)
{
    walk_r++;
    for (size_t i = 0; i < n; i++)
        resolve_walk(fis[i], how + (unsigned)i);
}

static void op_prom_create(struct input *in)
{
    uint8_t b = u8(in);
    if (nproms >= MAX_PROMS)
        return;
    weft_future *f = (weft_future *)&f;
    int rc = weft_future_create(&f);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0) {
        CHECK(f == (weft_future *)&f);
        return;
    }
    CHECK(f != NULL && weft_future_state(f) == WEFT_PENDING && !weft_future_done(f));
    struct prom *p = &proms[nproms];
    memset(p, 0, sizeof(*p));
    p->f = f; /* the hidden reference */
    p->value = (void *)(uintptr_t)(0x800000 + 16 * (unsigned)nproms);
    p->code = fail_codes[b & 7];
    nproms++;
    struct finfo *fi = finfo_new(f, FI_PROMISE);
    if (fi == NULL)
        return; /* completed and released at the end all the same */
    fi->prom = p;
    weft_future_retain(f); /* the slot's */
    observe(fi);
    keep(fi);
}

static void op_prom_set(struct input *in)
{
    struct finfo *fi = pick(u8(in));
    uint8_t how = u8(in);
    if (fi == NULL)
        return;
    if (fi->kind != FI_PROMISE) {
        /* not a promise: refused, nothing changes */
        weft_state before = observe(fi);
        int rc = (how & 1) ? weft_future_set_error(fi->f, fail_codes[how >> 5])
                           : weft_future_set_result(fi->f, NULL);
        if (trace_ops)
            fprintf(stderr, "fuzz_api: set on a %s: %d\n",
                    fi->kind == FI_GATHER ? "gather" : "task", rc);
        CHECK_RC(rc, rc == -EINVAL);
        if (final_state(before))
            CHECK(observe(fi) == before);
        check_fut(fi);
        return;
    }
    struct prom *p = fi->prom;
    bool quiet = prom_quiet(p); /* nothing else completes it meanwhile */
    bool was_done = weft_future_done(fi->f);
    unsigned h = how % 4;
    int rc = prom_complete(p, h);
    if (trace_ops)
        fprintf(stderr, "fuzz_api: promise %d, completion %u: %d\n", (int)(p - proms), h, rc);
    if (quiet && h != 3) {
        if (h == 2)
            CHECK(rc == (was_done ? 0 : 1));
        else
            CHECK(rc == (was_done ? -EALREADY : 0));
    }
    if (h == 2 && rc == 1)
        fi->cancelled1 = true;
    if (how & 4) {
        /* and again: refused once it has finished, whoever won */
        unsigned h2 = (how >> 3) % 4;
        bool done_now = weft_future_done(fi->f);
        rc = prom_complete(p, h2);
        if (quiet && h2 == 2)
            CHECK(rc == (done_now ? 0 : 1));
        else if (quiet && h2 != 3)
            CHECK(rc == (done_now ? -EALREADY : 0));
        if (h2 == 2 && rc == 1)
            fi->cancelled1 = true;
    }
    check_fut(fi);
}

static void op_then(struct input *in)
{
    struct finfo *prev = pick(u8(in));
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t kb = u8(in), p1 = u8(in), p2 = u8(in), p3 = u8(in), flags = u8(in);
    if (prev == NULL || pi == NULL || nsubmits >= MAX_SUBMITS || nfinfos >= MAX_FINFOS)
        return;
    nsubmits++;
    enum tkind kind = kind_table[kb % KINDS];
    if (kind == TK_SHUT && !(p3 & 0x80))
        kind = TK_VALUE; /* rarer than the others */
    struct rec *r = rec_new(pi, kind, 0, p1, p2, p3);
    if (r == NULL)
        return;
    r->then_prev = prev->f;
    bool prev_done = weft_future_done(prev->f);
    weft_future *f = (weft_future *)&f;
    int rc = weft_future_then(prev->f, pi->p, then_fn, r, &f);
    if (trace_ops)
        fprintf(stderr, "fuzz_api: then of a %s (%s), kind %d: %d\n",
                prev->kind == FI_PROMISE  ? "promise"
                : prev->kind == FI_GATHER ? "gather"
                : prev->prev != NULL      ? "continuation"
                                          : "task",
                prev_done ? "finished" : "unfinished", (int)kind, rc);
    CHECK_RC(rc, rc == 0 || rc == -ESHUTDOWN || rc == -EAGAIN || rc == -ENOMEM);
    if (rc == -ESHUTDOWN)
        CHECK(atomic_load(&pi->maybe_closed));
    if (pi->harness_closed)
        CHECK(rc == -ESHUTDOWN);
    if (rc == -EAGAIN)
        CHECK(pi->max_pending != 0);
    if (rc != 0) {
        CHECK(f == (weft_future *)&f); /* untouched; the function never runs (see finish) */
        return;
    }
    CHECK(f != NULL && f != prev->f);
    atomic_store(&r->submitted, 1);
    atomic_store(&r->self, f);
    struct finfo *fi = finfo_new(f, FI_TASK);
    CHECK(fi != NULL); /* room checked above */
    fi->rec = r;
    fi->prev = prev;
    if (allowed("then-after-destroy")) {
        weft_future_retain(f);
        fi->hidden = true;
    }
    if (flags & 1)
        register_cb(f, 4 | ((flags >> 1) & 2), r);
    weft_state st = observe(fi);
    if (!prev_done && !weft_future_done(prev->f))
        CHECK(st == WEFT_PENDING); /* nothing starts it before its predecessor finished */
    keep(fi);
}

static void abandon_cb(weft_future *f, void *data)
{
    (void)f;
    (void)data;
    CHECK(!"a callback on a promise released unfinished ran");
}

/* A promise released unfinished, with what else refers to it gone or going: freed, nothing
 * runs (LeakSanitizer checks the freeing). */
static void op_abandon(struct input *in)
{
    uint8_t flags = u8(in);
    weft_future *f = NULL;
    int rc = weft_future_create(&f);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0)
        return;
    if ((flags & 1) && !allowed("abandon-callback-leak")) {
        rc = weft_future_on_done(f, abandon_cb, NULL);
        CHECK(rc == 0 || rc == -ENOMEM);
    }
    if (flags & 2)
        CHECK(weft_future_wait(f, 1000) == -ETIMEDOUT);
    if (flags & 4) {
        weft_completion *c = NULL;
        rc = weft_as_completed(&f, 1, &c);
        CHECK(rc == 0 || rc == -ENOMEM);
        if (rc == 0) {
            weft_future *o = (weft_future *)&o;
            CHECK(weft_completion_next(c, 0, &o) == -ETIMEDOUT && o == (weft_future *)&o);
            weft_completion_destroy(c);
        }
    }
    if (flags & 8) {
        weft_future *out[1] = {NULL};
        size_t nd = 9;
        CHECK(weft_wait(&f, 1, WEFT_FIRST_COMPLETED, 0, out, &nd) == 0 && nd == 0 && out[0] == f);
    }
    CHECK(weft_future_state(f) == WEFT_PENDING);
    weft_future_release(f);
}

/* --- single futures --- */

static void op_cancel(struct input *in)
{
    struct finfo *fi = pick(u8(in));
    if (fi == NULL)
        return;
    weft_state before = observe(fi);
    bool promise = fi->kind == FI_PROMISE;
    bool quiet = !promise || prom_quiet(fi->prom); /* no helper may be setting it */
    if (!promise)
        expose(fi); /* a promise's own cancel is counted instead */
    int rc = weft_future_cancel(fi->f);
    CHECK(rc == 0 || rc == 1);
    if (final_state(before))
        CHECK(rc == 0);
    if (rc == 1) {
        CHECK(weft_future_state(fi->f) == WEFT_CANCELLED);
        CHECK(before == WEFT_PENDING);
        fi->cancelled1 = true;
        if (fi->kind == FI_TASK) {
            atomic_store(&fi->rec->cancelled1, 1);
            CHECK(atomic_load(&fi->rec->ran) == 0);
        }
        if (promise)
            CHECK(atomic_fetch_add(&fi->prom->cancel_ok, 1) == 0);
    } else if (quiet) {
        CHECK(observe(fi) != WEFT_PENDING);
    } else {
        /* a helper's set claimed it first: 0, and it finishes a moment later */
        CHECK_DEV(observe(fi) != WEFT_PENDING, "promise-setting-pending");
    }
    if (fi->kind == FI_GATHER)
        check_no_pending(fi);
    check_fut(fi);
}

static void op_wait(struct input *in)
{
    struct finfo *fi = pick(u8(in));
    bool bad;
    int64_t t = decode_timeout(u8(in), &bad);
    if (fi == NULL)
        return;
    if (t == WEFT_FOREVER)
        resolve(fi, 0);
    bool was_done = weft_future_done(fi->f); /* before: helpers finish some meanwhile */
    int rc = weft_future_wait(fi->f, t);
    if (bad) {
        CHECK(rc == -EINVAL);
        return;
    }
    CHECK(rc == 0 || (rc == -ETIMEDOUT && t != WEFT_FOREVER));
    if (rc == 0)
        CHECK(weft_future_done(fi->f));
    if (was_done)
        CHECK(rc == 0);
    check_fut(fi);
}

static void op_result(struct input *in)
{
    struct finfo *fi = pick(u8(in));
    uint8_t flags = u8(in);
    if (fi == NULL)
        return;
    resolve(fi, (unsigned)flags >> 1); /* it waits without limit */
    void *v = NULL;
    int rc = weft_future_result(fi->f, (flags & 1) ? NULL : &v);
    weft_state st = observe(fi);
    CHECK(final_state(st));
    if (st == WEFT_DONE)
        CHECK(rc == 0);
    else if (st == WEFT_CANCELLED)
        CHECK(rc == -ECANCELED);
    else
        CHECK(rc != 0);
    check_fut(fi);
}

static void op_on_done(struct input *in)
{
    struct finfo *fi = pick(u8(in));
    uint8_t flags = u8(in);
    if (fi == NULL)
        return;
    register_cb(fi->f, flags & 3, NULL);
}

static void op_retain(struct input *in)
{
    int s = pick_slot(u8(in));
    if (s < 0 || slots[s]->refs >= MAX_REFS)
        return;
    weft_future_retain(slots[s]->f);
    slots[s]->refs++;
}

static void op_release(struct input *in)
{
    int s = pick_slot(u8(in));
    if (s >= 0)
        drop_ref(s);
}

/* --- gather --- */

static void op_gather(struct input *in)
{
    size_t n = u8(in) % 6;
    uint8_t fb = u8(in);
    struct finfo *kids[5];
    weft_future *fs[5];
    for (size_t i = 0; i < n; i++) {
        kids[i] = pick(u8(in));
        if (kids[i] == NULL)
            return;
        fs[i] = kids[i]->f;
    }
    unsigned flags = fb & 3;
    bool bad = false;
    if ((fb & 0x1c) == 0x1c) {
        flags |= (fb & 0x20) ? 0x80000000u : 4u;
        bad = true;
    }
    if (nkids + (int)n > MAX_KIDS)
        return;
    weft_future *g = (weft_future *)&g;
    bool null_fs = (fb & 0xc0) == 0xc0 && n > 0;
    if ((flags & WEFT_CANCEL_ON_ERROR) && !bad && !null_fs) {
        for (size_t i = 0; i < n; i++)
            expose(kids[i]); /* a failed child may cancel the others during the call */
    }
    int rc = weft_gather(null_fs ? NULL : fs, n, flags, &g);
    if (bad || null_fs) {
        CHECK(rc == -EINVAL && g == (weft_future *)&g);
        return;
    }
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0) {
        CHECK(g == (weft_future *)&g);
        return;
    }
    CHECK(g != NULL);
    if (n == 0)
        CHECK(weft_future_state(g) == WEFT_DONE);
    struct finfo *fi = finfo_new(g, FI_GATHER);
    if (fi == NULL) {
        weft_future_release(g);
        return;
    }
    fi->n = n;
    fi->flags = flags;
    fi->kids = &kid_store[nkids];
    nkids += (int)n;
    for (size_t i = 0; i < n; i++)
        fi->kids[i] = kids[i];
    check_fut(fi);
    keep(fi);
}

static void op_gather_child(struct input *in)
{
    struct finfo *fi = pick(u8(in));
    uint8_t ib = u8(in);
    if (fi == NULL)
        return;
    void *v = (void *)&v;
    if (fi->kind != FI_GATHER) {
        CHECK(weft_gather_child(fi->f, ib, &v) == -EINVAL && v == (void *)&v);
        return;
    }
    size_t i = ib % (fi->n + 2);
    if (ib & 0x80)
        i = SIZE_MAX - ib % 3;
    if (i >= fi->n) {
        CHECK(weft_gather_child(fi->f, i, &v) == -EINVAL && v == (void *)&v);
        return;
    }
    struct finfo *k = fi->kids[i];
    bool was_done = weft_future_done(k->f);
    int rc = weft_gather_child(fi->f, i, &v);
    if (rc == -EAGAIN) {
        CHECK(!was_done);
        CHECK(v == (void *)&v);
        return;
    }
    weft_state ks = observe(k);
    CHECK(final_state(ks));
    void *kv = NULL;
    int krc = weft_future_result(k->f, &kv);
    CHECK(rc == krc);
    if (ks == WEFT_DONE)
        CHECK(v == kv);
}

/* --- weft_wait --- */

/* One weft_wait over arr[0..n); returns the number done (n + 1 for an expected -EINVAL). */
static size_t wait_once(weft_future *arr[], size_t n, uint8_t wb, uint8_t tb, bool inplace)
{
    weft_future *orig[MAX_WAIT_N], *out[MAX_WAIT_N];
    bool pre[MAX_WAIT_N];
    memcpy(orig, arr, n * sizeof(*arr));
    bool bad;
    int64_t t = decode_timeout(tb, &bad);
    weft_return_when when;
    switch (wb % 5) {
    case 3:
        when = (weft_return_when)3;
        bad = true;
        break;
    case 4:
        when = (weft_return_when)-1;
        bad = true;
        break;
    default:
        when = (weft_return_when)(wb % 5);
    }
    bool pre_cond = false;
    size_t npre = 0;
    for (size_t i = 0; i < n; i++) {
        pre[i] = weft_future_done(arr[i]);
        if (pre[i]) {
            npre++;
            if (when == WEFT_FIRST_EXCEPTION && weft_future_state(arr[i]) == WEFT_FAILED)
                pre_cond = true;
        }
    }
    if (when == WEFT_FIRST_COMPLETED)
        pre_cond = npre > 0;
    else
        pre_cond = pre_cond || npre == n;
    weft_future **res = inplace ? arr : out;
    size_t nd = SIZE_MAX;
    int rc = weft_wait(arr, n, when, t, res, &nd);
    if (bad) {
        CHECK(rc == -EINVAL && nd == SIZE_MAX);
        CHECK(memcmp(orig, arr, n * sizeof(*arr)) == 0);
        return n + 1;
    }
    CHECK(rc == 0 || (rc == -ENOMEM && n > 64));
    if (rc != 0) {
        CHECK(nd == SIZE_MAX && memcmp(orig, arr, n * sizeof(*arr)) == 0);
        return n + 1;
    }
    check_partition(orig, res, n, nd, pre);
    if (t == WEFT_FOREVER || pre_cond)
        CHECK(cond_holds(res, n, nd, when));
    return nd;
}

static void op_wait_many(struct input *in)
{
    uint8_t nb = u8(in), wb = u8(in), tb = u8(in), mode = u8(in);
    size_t n = (nb & 0x80) ? 65 + nb % 16 : 1 + nb % 8;
    weft_future *arr[MAX_WAIT_N];
    struct finfo *fis[MAX_WAIT_N];
    for (size_t i = 0; i < n; i++) {
        struct finfo *fi = pick(u8(in));
        if (fi == NULL)
            return;
        arr[i] = fi->f;
        fis[i] = fi;
    }
    bool inplace = mode & 1;
    bool bad;
    if (decode_timeout(tb, &bad) == WEFT_FOREVER)
        resolve_all(fis, n, wb);
    size_t nd = wait_once(arr, n, wb, tb, inplace);
    if (nd >= n || !inplace)
        return;
    if (mode & 0x80) {
        /* Poll the pending part (timeout 0) until it is empty, for at most 2 ms, as an event
         * loop would: many snapshots taken while futures finish. */
        int64_t end = now_ns() + 2000000;
        while (nd < n && now_ns() < end) {
            size_t k = wait_once(arr + nd, n - nd, wb, 0, true);
            if (k > n - nd)
                return;
            nd += k;
        }
        return;
    }
    if (!(mode & 2))
        return;
    /* Waiting again on the pending part continues with the rest. */
    uint8_t tb2 = u8(in);
    if (decode_timeout(tb2, &bad) == WEFT_FOREVER)
        resolve_all(fis, n, mode);
    wait_once(arr + nd, n - nd, (uint8_t)(mode >> 2), tb2, true);
}

/* --- completion sets --- */

static bool set_has_ready(struct cset *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->e[i].known_ready || settled(s->e[i].fi))
            return true;
    }
    return false;
}

static void set_add_entry(struct cset *s, struct finfo *fi, bool known_ready)
{
    CHECK(s->n < MAX_SET_ENTRIES);
    s->e[s->n++] = (struct centry){fi, fi->f, known_ready};
}

static void op_as_completed(struct input *in)
{
    struct cset *s = &sets[u8(in) % MAX_SETS];
    size_t n = u8(in) % 6;
    struct finfo *fis[5];
    weft_future *fs[5];
    bool pre[5];
    for (size_t i = 0; i < n; i++) {
        fis[i] = pick(u8(in));
        if (fis[i] == NULL)
            return;
        fs[i] = fis[i]->f;
    }
    if (s->c != NULL)
        return;
    for (size_t i = 0; i < n; i++)
        pre[i] = weft_future_done(fs[i]);
    weft_completion *c = (weft_completion *)&c;
    int rc = weft_as_completed(n > 0 ? fs : NULL, n, &c);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0) {
        CHECK(c == (weft_completion *)&c);
        return;
    }
    s->c = c;
    s->n = 0;
    s->fd = -1;
    for (size_t i = 0; i < n; i++)
        set_add_entry(s, fis[i], pre[i]);
}

static void op_compl_create(struct input *in)
{
    struct cset *s = &sets[u8(in) % MAX_SETS];
    if (s->c != NULL)
        return;
    weft_completion *c = (weft_completion *)&c;
    int rc = weft_completion_create(&c);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0) {
        CHECK(c == (weft_completion *)&c);
        return;
    }
    s->c = c;
    s->n = 0;
    s->fd = -1;
}

static void op_compl_add(struct input *in)
{
    struct cset *s = &sets[u8(in) % MAX_SETS];
    struct finfo *fi = pick(u8(in));
    if (s->c == NULL || fi == NULL || s->n >= MAX_SET_ENTRIES)
        return;
    bool pre = weft_future_done(fi->f);
    int rc = weft_completion_add(s->c, fi->f);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc == 0)
        set_add_entry(s, fi, pre);
}

/* One weft_completion_next on s, checked; returns its code. */
static int set_next(struct cset *s, int64_t t, bool bad)
{
    int rem = s->n;
    bool ready = set_has_ready(s);
    weft_future *f = (weft_future *)&f;
    int rc = weft_completion_next(s->c, t, &f);
    if (bad) {
        CHECK(rc == -EINVAL && f == (weft_future *)&f);
        return rc;
    }
    CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -ENOENT);
    if (rem == 0)
        CHECK(rc == -ENOENT);
    if (rc == -ENOENT)
        CHECK(rem == 0);
    if (rc == -ETIMEDOUT) {
        CHECK(t != WEFT_FOREVER);
        CHECK(!ready); /* a future that has finished and reported is handed out */
    }
    if (rc != 0) {
        CHECK(f == (weft_future *)&f);
        return rc;
    }
    int j = 0;
    while (j < s->n && s->e[j].f != f)
        j++;
    CHECK(j < s->n); /* each future added is handed out once */
    struct finfo *fi = s->e[j].fi;
    s->e[j] = s->e[--s->n];
    CHECK(weft_future_done(f));
    observe(fi);
    weft_future_release(f);
    return 0;
}

static void op_compl_next(struct input *in)
{
    struct cset *s = &sets[u8(in) % MAX_SETS];
    bool bad;
    int64_t t = decode_timeout(u8(in), &bad);
    if (s->c == NULL)
        return;
    if (t == WEFT_FOREVER) {
        /* some entry must finish: complete the promises the entries wait for */
        walk_r++;
        for (int i = 0; i < s->n; i++)
            resolve_walk(s->e[i].fi, (unsigned)i);
    }
    set_next(s, t, bad);
}

static bool fd_readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 0);
    CHECK(r >= 0);
    return r > 0 && (p.revents & POLLIN);
}

static void op_compl_fd(struct input *in)
{
    struct cset *s = &sets[u8(in) % MAX_SETS];
    uint8_t flags = u8(in);
    if (s->c == NULL)
        return;
    int fd = weft_completion_fd(s->c);
    CHECK(fd >= 0 || fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM);
    if (fd < 0)
        return;
    if (s->fd >= 0)
        CHECK(fd == s->fd);
    s->fd = fd;
    bool ready = set_has_ready(s);
    bool readable = fd_readable(fd);
    if (ready)
        CHECK(readable);
    if (s->n == 0)
        CHECK(!readable);
    if (readable && (flags & 1))
        CHECK(set_next(s, 0, false) == 0); /* readable exactly while next(0) gives a future */
}

static void set_destroy(struct cset *s)
{
    weft_completion_destroy(s->c);
    s->c = NULL;
    s->n = 0;
    s->fd = -1;
}

static void op_compl_destroy(struct input *in)
{
    struct cset *s = &sets[u8(in) % MAX_SETS];
    if (s->c != NULL)
        set_destroy(s);
}

/* --- bad arguments: each call fails with -EINVAL (or is a documented no-op) --- */

static int dummy_fn(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(!"a task submitted with bad arguments ran");
    return 0;
}

static void dummy_cb(weft_future *f, void *data)
{
    (void)f;
    (void)data;
    CHECK(!"a callback registered with bad arguments ran");
}

static void dummy_body(size_t lo, size_t hi, void *ctx)
{
    (void)lo;
    (void)hi;
    (void)ctx;
    CHECK(!"a loop body ran after bad arguments");
}

static void dummy_rbody(size_t lo, size_t hi, void *acc, void *ctx)
{
    (void)lo;
    (void)hi;
    (void)acc;
    (void)ctx;
    CHECK(!"a reduce body ran after bad arguments");
}

static void dummy_combine(void *acc, const void *other, void *ctx)
{
    (void)acc;
    (void)other;
    (void)ctx;
}

static int dummy_then(weft_future *prev, void *arg, void **result)
{
    (void)prev;
    (void)arg;
    (void)result;
    CHECK(!"a continuation made with bad arguments ran");
    return 0;
}

static void op_bad_args(struct input *in)
{
    uint8_t which = u8(in);
    struct finfo *fi = pick(u8(in));
    struct pinfo *pi = pick_pool(u8(in));
    weft_future *f = fi != NULL ? fi->f : NULL;
    weft_future *sent = (weft_future *)&sent, *o = sent;
    size_t nd = 12345;
    switch (which % 20) {
    case 0:
        CHECK(weft_pool_create(NULL, NULL) == -EINVAL);
        break;
    case 1:
        CHECK(weft_submit(NULL, dummy_fn, NULL, &o) == -EINVAL && o == sent);
        if (pi != NULL)
            CHECK(weft_submit(pi->p, NULL, NULL, &o) == -EINVAL && o == sent);
        break;
    case 2:
        CHECK(weft_future_wait(NULL, 0) == -EINVAL);
        CHECK(weft_future_wait(NULL, WEFT_FOREVER) == -EINVAL);
        if (f != NULL) {
            CHECK(weft_future_wait(f, -2) == -EINVAL);
            CHECK(weft_future_wait(f, INT64_MIN) == -EINVAL);
        }
        break;
    case 3:
        CHECK(weft_future_result(NULL, NULL) == -EINVAL);
        CHECK(weft_future_cancel(NULL) == -EINVAL);
        break;
    case 4:
        CHECK(weft_future_on_done(NULL, dummy_cb, NULL) == -EINVAL);
        if (f != NULL)
            CHECK(weft_future_on_done(f, NULL, NULL) == -EINVAL);
        break;
    case 5: {
        weft_future *fs[2] = {f, NULL};
        CHECK(weft_gather(NULL, 1, 0, &o) == -EINVAL && o == sent);
        CHECK(weft_gather(fs, 2, 0, &o) == -EINVAL && o == sent);
        CHECK(weft_gather(NULL, 0, 0, NULL) == -EINVAL);
        CHECK(weft_gather(NULL, 0, 4, &o) == -EINVAL && o == sent);
        if (f != NULL) {
            CHECK(weft_gather(fs, 1, 0, NULL) == -EINVAL);
            CHECK(weft_gather(fs, 1, ~0u, &o) == -EINVAL && o == sent);
        }
        break;
    }
    case 6:
        CHECK(weft_gather_child(NULL, 0, NULL) == -EINVAL);
        break;
    case 7: {
        weft_future *fs[2] = {f, NULL}, *out[2] = {sent, sent};
        CHECK(weft_wait(fs, 0, WEFT_ALL_COMPLETED, 0, out, &nd) == -EINVAL);
        CHECK(weft_wait(NULL, 1, WEFT_ALL_COMPLETED, 0, out, &nd) == -EINVAL);
        CHECK(weft_wait(fs, 2, WEFT_ALL_COMPLETED, 0, out, &nd) == -EINVAL);
        if (f != NULL) {
            CHECK(weft_wait(fs, 1, WEFT_ALL_COMPLETED, 0, NULL, &nd) == -EINVAL);
            CHECK(weft_wait(fs, 1, WEFT_ALL_COMPLETED, 0, out, NULL) == -EINVAL);
            CHECK(weft_wait(fs, 1, (weft_return_when)7, 0, out, &nd) == -EINVAL);
            CHECK(weft_wait(fs, 1, WEFT_ALL_COMPLETED, -3, out, &nd) == -EINVAL);
        }
        CHECK(nd == 12345 && out[0] == sent && out[1] == sent);
        break;
    }
    case 8: {
        weft_future *fs[2] = {f, NULL};
        weft_completion *c = (weft_completion *)&c;
        CHECK(weft_as_completed(NULL, 1, &c) == -EINVAL);
        CHECK(weft_as_completed(fs, 2, &c) == -EINVAL);
        CHECK(weft_as_completed(fs, 0, NULL) == -EINVAL);
        CHECK(c == (weft_completion *)&c);
        break;
    }
    case 9: {
        struct cset *s = &sets[which % MAX_SETS];
        CHECK(weft_completion_create(NULL) == -EINVAL);
        CHECK(weft_completion_add(NULL, f) == -EINVAL);
        CHECK(weft_completion_next(NULL, 0, &o) == -EINVAL && o == sent);
        CHECK(weft_completion_fd(NULL) == -EINVAL);
        if (s->c != NULL) {
            CHECK(weft_completion_add(s->c, NULL) == -EINVAL);
            CHECK(weft_completion_next(s->c, 0, NULL) == -EINVAL);
            CHECK(weft_completion_next(s->c, -7, &o) == -EINVAL && o == sent);
        }
        break;
    }
    case 10:
        CHECK(weft_pool_shutdown(NULL, WEFT_SHUTDOWN_DRAIN) == -EINVAL);
        CHECK(weft_pool_shutdown(NULL, WEFT_SHUTDOWN_CANCEL) == -EINVAL);
        CHECK(weft_pool_destroy(NULL) == 0);
        break;
    case 11: {
        /* A bad shutdown mode changes nothing: the pool still takes work. */
        if (pi == NULL)
            break;
        CHECK(weft_pool_shutdown(pi->p, (weft_shutdown_mode)5) == -EINVAL);
        if (!atomic_load(&pi->maybe_closed) && pi->max_pending == 0 && nsubmits < MAX_SUBMITS) {
            struct rec *r = rec_new(pi, TK_VALUE, 0, 0, 0, 0);
            if (r != NULL) {
                nsubmits++;
                int rc = weft_submit(pi->p, task_fn, r, NULL);
                CHECK(rc == 0 || rc == -ENOMEM ||
                      (rc == -ESHUTDOWN && atomic_load(&pi->maybe_closed)));
                if (rc == 0)
                    atomic_store(&r->submitted, 1);
            }
        }
        break;
    }
    case 12: {
        struct loopctx l;
        memset(&l, 0, sizeof(l));
        struct racc id = {0, 0, 1}, res = {0, 0, 0};
        CHECK(weft_parallel_for(NULL, 0, 4, 1, loop_body, &l) == -EINVAL);
        CHECK(weft_parallel_reduce(NULL, 0, 4, 1, sizeof(id), &id, reduce_body, reduce_combine,
                                   &l.n, &res) == -EINVAL);
        if (pi == NULL)
            break;
        CHECK(weft_parallel_for(pi->p, 5, 2, 1, dummy_body, NULL) == -EINVAL);
        CHECK(weft_parallel_for(pi->p, 0, 2, 1, NULL, NULL) == -EINVAL);
        CHECK(weft_parallel_reduce(pi->p, 5, 2, 1, sizeof(id), &id, dummy_rbody, dummy_combine,
                                   NULL, &res) == -EINVAL);
        CHECK(weft_parallel_reduce(pi->p, 0, 2, 1, 0, &id, dummy_rbody, dummy_combine, NULL,
                                   &res) == -EINVAL);
        CHECK(weft_parallel_reduce(pi->p, 0, 2, 1, WEFT_REDUCE_MAX_ACC + 1, &id, dummy_rbody,
                                   dummy_combine, NULL, &res) == -EINVAL);
        CHECK(weft_parallel_reduce(pi->p, 0, 2, 1, sizeof(id), NULL, dummy_rbody, dummy_combine,
                                   NULL, &res) == -EINVAL);
        CHECK(weft_parallel_reduce(pi->p, 0, 2, 1, sizeof(id), &id, NULL, dummy_combine, NULL,
                                   &res) == -EINVAL);
        CHECK(weft_parallel_reduce(pi->p, 0, 2, 1, sizeof(id), &id, dummy_rbody, NULL, NULL,
                                   &res) == -EINVAL);
        CHECK(weft_parallel_reduce(pi->p, 0, 2, 1, sizeof(id), &id, dummy_rbody, dummy_combine,
                                   NULL, NULL) == -EINVAL);
        break;
    }
    case 13: {
        int cpus[4];
        CHECK(weft_machine_query(NULL) == -EINVAL);
        CHECK(weft_bind_plan((weft_bind)3, 1, cpus) == -EINVAL);
        CHECK(weft_bind_plan(WEFT_BIND_NONE, 0, cpus) == -EINVAL);
        CHECK(weft_bind_plan(WEFT_BIND_NONE, WEFT_MAX_THREADS + 1, cpus) == -EINVAL);
        CHECK(weft_bind_plan(WEFT_BIND_NONE, 1, NULL) == -EINVAL);
        int rc = weft_bind_plan((weft_bind)(which % 3), 4, cpus);
        CHECK(rc == 0 || rc == -ENOMEM);
        break;
    }
    case 14:
        /* NULL-tolerant calls */
        weft_future_release(NULL);
        weft_future_retain(NULL);
        weft_completion_destroy(NULL);
        CHECK(weft_pool_size(NULL) == 0);
        CHECK(!weft_future_done(NULL));
        CHECK(weft_future_state(NULL) == WEFT_CANCELLED);
        CHECK(!weft_cancel_requested());
        CHECK(weft_worker_index() == -1);
        break;
    case 15: {
        static const int codes[] = {0,          -EINVAL, -ENOMEM,  -ETIMEDOUT, -ECANCELED,
                                    -ESHUTDOWN, -EAGAIN, -EDEADLK, -ENOENT,    1,
                                    -1,         INT_MIN, INT_MAX,  -EMFILE,    -99999};
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
            const char *s = weft_strerror(codes[i]);
            CHECK(s != NULL);
            CHECK(strlen(s) < 4096);
        }
        const char *v = weft_version();
        CHECK(v != NULL);
        char want[32];
        snprintf(want, sizeof(want), "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
                 WEFT_VERSION_PATCH);
        CHECK(strncmp(v, want, strlen(want)) == 0);
        break;
    }
    case 16:
        CHECK(weft_pool_stats(NULL, NULL, NULL, 0) == -EINVAL);
        CHECK(weft_stats_write_json(NULL, devnull) == -EINVAL);
        if (pi != NULL)
            CHECK(weft_stats_write_json(pi->p, -1) == -EINVAL);
        break;
    case 17: {
        /* outside any task, a join runs a then b, a scope runs each spawn at once */
        atomic_int leaves = 0;
        struct rec dummy;
        memset(&dummy, 0, sizeof(dummy));
        dummy.exposed = 1;
        struct jhalf top = {which % 4, &leaves, &dummy, false, false};
        join_half(&top);
        CHECK(atomic_load(&leaves) == 1 << (which % 4));
        weft_scope s;
        weft_spawn slot[3];
        atomic_int count = 0;
        weft_scope_init(&s);
        for (int i = 0; i < 3; i++) {
            weft_scope_spawn(&s, &slot[i], scope_fn, &count);
            CHECK(atomic_load(&count) == i + 1);
        }
        weft_scope_wait(&s);
        CHECK(atomic_load(&dummy.saw_cancel) == 0);
        /* outside any pool an offer only records, and the caller runs the function */
        weft_frame fr;
        atomic_int ran = 0;
        weft_offer(&fr, scope_fn, &ran);
        CHECK(weft_reclaim(&fr) && atomic_load(&ran) == 0);
        break;
    }
    case 18: {
        /* promises: NULL, code 0, not a promise; nothing changes */
        CHECK(weft_future_create(NULL) == -EINVAL);
        CHECK(weft_future_set_result(NULL, NULL) == -EINVAL);
        CHECK(weft_future_set_error(NULL, 5) == -EINVAL);
        CHECK(weft_future_set_error(NULL, 0) == -EINVAL);
        if (f == NULL)
            break;
        weft_state before = weft_future_state(f);
        CHECK(weft_future_set_error(f, 0) == -EINVAL);
        if (fi->kind != FI_PROMISE) {
            CHECK(weft_future_set_result(f, NULL) == -EINVAL);
            CHECK(weft_future_set_error(f, -EIO) == -EINVAL);
        }
        if (final_state(before))
            CHECK(weft_future_state(f) == before);
        break;
    }
    case 19: {
        /* weft_future_then: a NULL argument; *out untouched, nothing runs */
        weft_pool *p = pi != NULL ? pi->p : NULL;
        CHECK(weft_future_then(NULL, p, dummy_then, NULL, &o) == -EINVAL && o == sent);
        if (f != NULL) {
            CHECK(weft_future_then(f, NULL, dummy_then, NULL, &o) == -EINVAL && o == sent);
            if (p != NULL) {
                CHECK(weft_future_then(f, p, NULL, NULL, &o) == -EINVAL && o == sent);
                CHECK(weft_future_then(f, p, dummy_then, NULL, NULL) == -EINVAL);
            }
        }
        break;
    }
    }
}

/* --- the rest --- */

static void op_gate(struct input *in)
{
    uint8_t x = u8(in);
    if (x == 0) {
        atomic_store(&gate_until, 0);
        return;
    }
    if (ngate_closes >= MAX_GATE_CLOSES)
        return;
    ngate_closes++;
    atomic_store(&gate_until, now_ns() + (x % 8 + 1) * 250000);
}

static void op_loop(struct input *in)
{
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t p1 = u8(in), p2 = u8(in), p3 = u8(in);
    if (pi != NULL)
        do_loops(pi->p, false, pi, p1, p2, p3);
}

static void op_stats(struct input *in)
{
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t n = u8(in);
    if (pi == NULL)
        return;
    weft_stats s;
    weft_worker_stats per[5];
    memset(per, 0xa5, sizeof(per));
    CHECK(weft_pool_stats(pi->p, &s, per, n % 5) == 0);
    CHECK(s.workers == pi->slots);
    CHECK(weft_pool_size(pi->p) == pi->size);
    CHECK(s.total.tasks_run >= pi->last_tasks_run); /* monotonic */
    pi->last_tasks_run = s.total.tasks_run;
    for (size_t i = n % 5; i < 5; i++) {
        const unsigned char *b = (const unsigned char *)&per[i];
        for (size_t j = 0; j < sizeof(per[i]); j++)
            CHECK(b[j] == 0xa5); /* only min(n, workers) entries written */
    }
    CHECK(weft_pool_stats(pi->p, NULL, NULL, 0) == 0);
    if (n & 0x80) {
        int rc = weft_stats_write_json(pi->p, devnull);
        CHECK(rc == 0);
    }
}

static void op_resize(struct input *in)
{
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t nb = u8(in);
    if (pi == NULL)
        return;
    if (nb % 16 == 15) {
        CHECK(weft_pool_resize(pi->p, (nb & 0x10) ? 0 : WEFT_MAX_THREADS + 1) == -EINVAL);
        CHECK(weft_pool_size(pi->p) == pi->size);
        return;
    }
    unsigned n = 1 + nb % 6;
    atomic_store(&pi->resized, true);
    if (n > pi->threads)
        pi->threads = n; /* before: the new workers' tasks and hooks read it */
    int rc = weft_pool_resize(pi->p, n);
    CHECK_RC(rc, rc == 0 || rc == -ENOMEM || rc == -EAGAIN ||
                     (rc == -ESHUTDOWN && atomic_load(&pi->maybe_closed)));
    if (rc == 0) {
        pi->size = n;
        if (n > pi->slots)
            pi->slots = n;
    }
    CHECK(weft_pool_size(pi->p) == pi->size); /* a failed resize changes nothing */
}

static void op_check_all(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (slots[i] != NULL)
            check_fut(slots[i]);
    }
}

static void op_fault(struct input *in)
{
    uint8_t x = u8(in);
#ifdef WEFT_FAULT_INJECTION
    weft__fault_arm(x == 0 ? 0 : 1 + x % 24);
#else
    (void)x;
#endif
}

/* --- helper threads --- */

/* The helper's completions: 2 bits of how each (set_result, set_error, cancel, set_error 0). */
static void helper_sets(struct helper *h)
{
    for (int i = 0; i < h->nset; i++) {
        unsigned how = (unsigned)(h->how >> (2 * i)) & 3;
        if (h->sp[i] != NULL) {
            prom_complete(h->sp[i], how);
            atomic_fetch_sub(&h->sp[i]->inflight, 1); /* after its counters */
        } else {
            int rc = (how & 1) ? weft_future_set_error(h->sf[i], 7)
                               : weft_future_set_result(h->sf[i], NULL);
            CHECK_RC(rc, rc == -EINVAL);
        }
        weft_future_release(h->sf[i]);
    }
    h->nset = 0;
}

static void *helper_main(void *arg)
{
    struct helper *h = arg;
    struct pinfo *pi = h->pool;
    if (h->set_first || pi == NULL)
        helper_sets(h);
    if (pi == NULL)
        return NULL;
    weft_future *fs[8];
    struct rec *rs[8];
    size_t m = 0, k = 1 + h->k % 8;
    for (size_t i = 0; i < k; i++) {
        struct rec *r = rec_new(pi, child_kind((uint8_t)(h->kind + i), 2), 1,
                                (uint8_t)(h->kind + i), h->mode, (uint8_t)i);
        if (r == NULL)
            break;
        weft_future *f = NULL;
        int rc = weft_submit(pi->p, task_fn, r, &f);
        CHECK_RC(rc, rc == 0 || rc == -ENOMEM || (rc == -EAGAIN && pi->max_pending != 0) ||
                         (rc == -ESHUTDOWN && atomic_load(&pi->maybe_closed)));
        if (rc != 0)
            continue;
        atomic_store(&r->submitted, 1);
        atomic_store(&r->self, f);
        fs[m] = f;
        rs[m++] = r;
    }
    weft_stats st;
    CHECK(weft_pool_stats(pi->p, &st, NULL, 0) == 0 && st.workers >= 1 &&
          st.workers <= pi->threads);
    helper_sets(h); /* (none left if done first) */
    if (m > 0 && h->mode % 3 == 0) {
        weft_future *out[8];
        bool pre[8];
        for (size_t i = 0; i < m; i++)
            pre[i] = weft_future_done(fs[i]);
        size_t nd = SIZE_MAX;
        CHECK(weft_wait(fs, m, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &nd) == 0);
        check_partition(fs, out, m, nd, pre);
        CHECK(nd == m);
    } else if (m > 0 && h->mode % 3 == 1) {
        weft_completion *c = NULL;
        int rc = weft_as_completed(fs, m, &c);
        CHECK(rc == 0 || rc == -ENOMEM);
        if (rc == 0) {
            bool seen[8] = {false};
            for (size_t i = 0; i < m; i++) {
                weft_future *f = NULL;
                CHECK(weft_completion_next(c, WEFT_FOREVER, &f) == 0);
                size_t j = 0;
                while (j < m && (fs[j] != f || seen[j]))
                    j++;
                CHECK(j < m);
                seen[j] = true;
                weft_future_release(f);
            }
            weft_future *f = NULL;
            CHECK(weft_completion_next(c, 0, &f) == -ENOENT);
            weft_completion_destroy(c);
        }
    }
    for (size_t i = 0; i < m; i++) {
        void *v = NULL;
        int rc = weft_future_result(fs[i], &v);
        check_child(rs[i], fs[i], rc, v);
        weft_future_release(fs[i]);
    }
    return NULL;
}

static void join_helper(struct helper *h)
{
    if (h->running) {
        CHECK(pthread_join(h->thread, NULL) == 0);
        h->running = false;
    }
}

/* Joins the helpers using pool pi, or all of them for NULL. */
static void join_helpers(struct pinfo *pi)
{
    for (int i = 0; i < MAX_HELPERS; i++) {
        if (pi == NULL || helpers[i].pool == pi)
            join_helper(&helpers[i]);
    }
}

static void op_helper(struct input *in)
{
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t k = u8(in), kind = u8(in), mode = u8(in);
    if (pi == NULL)
        return;
    struct helper *h = &helpers[mode % MAX_HELPERS];
    join_helper(h);
    h->pool = pi;
    h->k = k;
    h->kind = kind;
    h->mode = (uint8_t)(mode >> 1);
    h->nset = 0;
    h->running = pthread_create(&h->thread, NULL, helper_main, h) == 0;
}

/* A helper that also completes futures (promises, or a refused set on others), racing the
 * harness thread and the other helper. */
static void op_helper_set(struct input *in)
{
    struct pinfo *pi = pick_pool(u8(in));
    uint8_t k = u8(in), kind = u8(in), mode = u8(in), nb = u8(in), how = u8(in);
    int n = 1 + nb % 4;
    struct finfo *fis[4];
    for (int i = 0; i < n; i++) {
        fis[i] = pick(u8(in));
        if (fis[i] == NULL)
            return;
    }
    struct helper *h = &helpers[mode % MAX_HELPERS];
    join_helper(h);
    h->pool = pi;
    h->k = k;
    h->kind = kind;
    h->mode = (uint8_t)(mode >> 1);
    h->how = how;
    h->set_first = (nb & 0x80) != 0;
    h->nset = n;
    for (int i = 0; i < n; i++) {
        h->sf[i] = fis[i]->f;
        weft_future_retain(fis[i]->f); /* the helper's */
        h->sp[i] = fis[i]->kind == FI_PROMISE ? fis[i]->prom : NULL;
        if (h->sp[i] != NULL)
            atomic_fetch_add(&h->sp[i]->inflight, 1); /* before the thread can complete it */
    }
    h->running = pthread_create(&h->thread, NULL, helper_main, h) == 0;
    if (!h->running) {
        /* no thread: undo */
        for (int i = 0; i < n; i++) {
            if (h->sp[i] != NULL)
                atomic_fetch_sub(&h->sp[i]->inflight, 1);
            weft_future_release(h->sf[i]);
        }
        h->nset = 0;
    }
}

static const char *const op_names[] = {
    "pool_create",  "submit",       "submit_detach", "cancel",     "wait",       "result",
    "on_done",      "retain",       "release",       "gather",     "gchild",     "wait_many",
    "as_completed", "compl_create", "compl_add",     "compl_next", "compl_fd",   "compl_destroy",
    "shutdown",     "destroy",      "bad_args",      "gate",       "loop",       "stats",
    "check_all",    "sleep",        "fault",         "helper",     "burst",      "sweep",
    "prom_create",  "prom_set",     "then",          "abandon",    "helper_set", "resize"};
_Static_assert(sizeof(op_names) / sizeof(op_names[0]) == OP_COUNT, "a name for every operation");

static void run_op(struct input *in)
{
    enum op op = (enum op)(u8(in) % OP_COUNT);
    if (trace_ops)
        fprintf(stderr, "fuzz_api: op %s at byte %zu\n", op_names[op], in->i - 1);
    switch (op) {
    case OP_POOL_CREATE:
        op_pool_create(in);
        break;
    case OP_SUBMIT:
        op_submit(in, false);
        break;
    case OP_SUBMIT_DETACHED:
        op_submit(in, true);
        break;
    case OP_CANCEL:
        op_cancel(in);
        break;
    case OP_WAIT:
        op_wait(in);
        break;
    case OP_RESULT:
        op_result(in);
        break;
    case OP_ON_DONE:
        op_on_done(in);
        break;
    case OP_RETAIN:
        op_retain(in);
        break;
    case OP_RELEASE:
        op_release(in);
        break;
    case OP_GATHER:
        op_gather(in);
        break;
    case OP_GATHER_CHILD:
        op_gather_child(in);
        break;
    case OP_WAIT_MANY:
        op_wait_many(in);
        break;
    case OP_AS_COMPLETED:
        op_as_completed(in);
        break;
    case OP_COMPL_CREATE:
        op_compl_create(in);
        break;
    case OP_COMPL_ADD:
        op_compl_add(in);
        break;
    case OP_COMPL_NEXT:
        op_compl_next(in);
        break;
    case OP_COMPL_FD:
        op_compl_fd(in);
        break;
    case OP_COMPL_DESTROY:
        op_compl_destroy(in);
        break;
    case OP_SHUTDOWN:
        op_shutdown(in);
        break;
    case OP_DESTROY: {
        int slot = u8(in) % MAX_POOLS;
        if (pools[slot] != NULL)
            destroy_pool(slot);
        break;
    }
    case OP_BAD_ARGS:
        op_bad_args(in);
        break;
    case OP_GATE:
        op_gate(in);
        break;
    case OP_LOOP:
        op_loop(in);
        break;
    case OP_STATS:
        op_stats(in);
        break;
    case OP_CHECK_ALL:
        op_check_all();
        break;
    case OP_SLEEP:
        sleep_ns(1000 * (int64_t)(u8(in) % 64));
        break;
    case OP_FAULT:
        op_fault(in);
        break;
    case OP_HELPER:
        op_helper(in);
        break;
    case OP_BURST:
        op_burst(in);
        break;
    case OP_SWEEP:
        op_sweep();
        break;
    case OP_PROM_CREATE:
        op_prom_create(in);
        break;
    case OP_PROM_SET:
        op_prom_set(in);
        break;
    case OP_THEN:
        op_then(in);
        break;
    case OP_ABANDON:
        op_abandon(in);
        break;
    case OP_RESIZE:
        op_resize(in);
        break;
    case OP_HELPER_SET:
        op_helper_set(in);
        break;
    case OP_COUNT:
        break;
    }
}

/* ---------------------------------------------------------------------------------------------
 * One input
 */

static void reset(void)
{
    int n = atomic_load(&nrecs);
    memset(recs, 0, (size_t)(n < MAX_RECS ? n : MAX_RECS) * sizeof(recs[0]));
    atomic_store(&nrecs, 0);
    n = atomic_load(&ncbs);
    memset(cbs, 0, (size_t)(n < MAX_CBS ? n : MAX_CBS) * sizeof(cbs[0]));
    atomic_store(&ncbs, 0);
    nfinfos = 0;
    nkids = 0;
    nproms = 0;
    atomic_store(&input_ending, 0);
    npinfos = 0;
    nsubmits = 0;
    ngate_closes = 0;
    atomic_store(&gate_until, 0);
    memset(slots, 0, sizeof(slots));
    memset(pools, 0, sizeof(pools));
    for (int i = 0; i < MAX_HELPERS; i++)
        helpers[i] = (struct helper){.running = false};
    for (int i = 0; i < MAX_SETS; i++) {
        sets[i].c = NULL;
        sets[i].n = 0;
        sets[i].fd = -1;
    }
}

/* Destroys everything, checking what must hold once every pool is gone. */
static void finish(unsigned parity)
{
#ifdef WEFT_FAULT_INJECTION
    weft__fault_arm(0);
#endif
    atomic_store(&gate_until, 0);
    join_helpers(NULL);
    atomic_store(&input_ending, 1);
    /* Every promise still PENDING is completed now, so that every future resolves. Only one
     * other thing may complete one meanwhile: a gather with WEFT_CANCEL_ON_ERROR whose task
     * child fails on a worker cancels its sibling promises there. Then this call loses
     * (-EALREADY), and the promise must read finished when it returns. */
    for (int i = 0; i < nproms; i++) {
        if (!weft_future_done(proms[i].f)) {
            int rc = prom_complete(&proms[i], (parity + (unsigned)i) % 3);
            CHECK_RC(rc, rc == 0 || rc == 1 || (rc == -EALREADY && weft_future_done(proms[i].f)));
        }
    }
    /* The continuations the harness holds start while their pools exist; one whose pool was
     * never shut down ran (unless a cancel reached it). */
    for (int i = 0; i < MAX_SLOTS + nfinfos; i++) {
        struct finfo *fi = i < MAX_SLOTS ? slots[i] : &finfos[i - MAX_SLOTS];
        if (fi == NULL || fi->prev == NULL || (i >= MAX_SLOTS && !fi->hidden))
            continue;
        CHECK(weft_future_wait(fi->f, WEFT_FOREVER) == 0);
        if (!atomic_load(&fi->rec->pool->maybe_closed) && !atomic_load(&fi->rec->exposed))
            CHECK(weft_future_state(fi->f) != WEFT_CANCELLED && atomic_load(&fi->rec->ran) == 1);
    }
    for (int i = 0; i < MAX_POOLS; i++) {
        if (pools[i] != NULL)
            destroy_pool(i);
    }
    /* Every future has finished, and everyone who finished one has returned. */
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (slots[i] != NULL) {
            CHECK(settled(slots[i]));
            check_fut(slots[i]);
        }
    }
    for (int i = 0; i < MAX_SETS; i++) {
        struct cset *s = &sets[i];
        if (s->c == NULL)
            continue;
        if ((parity + (unsigned)i) & 1) {
            if (s->fd >= 0)
                CHECK(fd_readable(s->fd) == (s->n > 0));
            while (s->n > 0)
                CHECK(set_next(s, 0, false) == 0);
            CHECK(set_next(s, 0, false) == -ENOENT);
            if (s->fd >= 0)
                CHECK(!fd_readable(s->fd));
        }
        set_destroy(s);
    }
    int n = atomic_load(&nrecs);
    for (int i = 0; i < n && i < MAX_RECS; i++) {
        struct rec *r = &recs[i];
        int ran = atomic_load(&r->ran);
        CHECK(ran <= 1);
        if (ran)
            CHECK(atomic_load(&r->finished));
        if (!atomic_load(&r->submitted))
            CHECK(ran == 0); /* refused: never runs */
        else if (!atomic_load(&r->exposed) && !atomic_load(&r->pool->maybe_cancel) &&
                 r->then_prev == NULL)
            CHECK(ran == 1);
        if (r->then_prev != NULL && ran)
            CHECK(atomic_load(&r->prev_seen) != 0);
        if (atomic_load(&r->cancelled1))
            CHECK(ran == 0);
        if (atomic_load(&r->audited)) {
            int a = atomic_load(&r->audit);
            CHECK(a != 0);
            weft_state st = (weft_state)(a - 1);
            if (st == WEFT_DONE)
                CHECK(ran == 1 && r->ret == 0);
            else if (st == WEFT_FAILED)
                CHECK(ran == 1 && r->ret != 0);
            else
                CHECK(st == WEFT_CANCELLED && (ran == 0 || r->ret == -ECANCELED));
        }
    }
    n = atomic_load(&ncbs);
    for (int i = 0; i < n && i < MAX_CBS; i++) {
        if (atomic_load(&cbs[i].expected))
            CHECK(atomic_load(&cbs[i].count) == 1); /* exactly once per registration */
        else
            CHECK(atomic_load(&cbs[i].count) == 0);
    }
    for (int i = 0; i < MAX_SLOTS; i++) {
        while (slots[i] != NULL)
            drop_ref(i);
    }
    for (int i = 0; i < nfinfos; i++) {
        if (finfos[i].hidden) {
            finfos[i].hidden = false;
            weft_future_release(finfos[i].f);
        }
    }
    for (int i = 0; i < nproms; i++) {
        struct prom *p = &proms[i];
        /* each completion call that returned 0 or 1 was the only winner */
        CHECK(atomic_load(&p->set_ok) + atomic_load(&p->err_ok) + atomic_load(&p->cancel_ok) <= 1);
        weft_future_release(p->f); /* the hidden reference */
    }
}

/* The watchdog ($WEFT_FUZZ_WATCHDOG=seconds): when one input has run that long, which means a
 * hang since inputs take milliseconds, it prints every thread's stack (with gdb, if there is
 * one) and aborts, so the report shows where the workers are stuck, not only the main thread. */
static _Atomic int64_t input_started; /* 0 between inputs */
static int64_t watchdog_ns;

static void *watchdog_main(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        int64_t t = atomic_load(&input_started);
        if (t == 0 || now_ns() - t < watchdog_ns)
            continue;
        fprintf(stderr, "\nfuzz_api: one input has run for %lld s: a hang; every thread:\n",
                (long long)(watchdog_ns / 1000000000));
        prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "gdb -p %d -batch -ex 'thread apply all bt' 1>&2 2>/dev/null",
                 (int)getpid());
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz_api: (no gdb to print the stacks)\n");
        fail(__FILE__, __LINE__, "hang: an input did not finish");
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *t = getenv("WEFT_FUZZ_TRACE");
    trace_ops = t != NULL && t[0] != '\0' && t[0] != '0';
    const char *a = getenv("WEFT_FUZZ_ALLOW");
    if (a != NULL)
        snprintf(allow_list, sizeof(allow_list), "%s", a);
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    const char *w = getenv("WEFT_FUZZ_WATCHDOG");
    if (w != NULL && atoi(w) > 0) {
        watchdog_ns = (int64_t)atoi(w) * 1000000000;
        pthread_t t;
        if (pthread_create(&t, NULL, watchdog_main, NULL) == 0)
            pthread_detach(t);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    harness_thread = true;
    atomic_store(&input_started, now_ns());
    reset();
    struct input in = {data, size, 0};
    unsigned parity = 0;
    for (size_t i = 0; i < size; i++)
        parity += data[i];
    for (int op = 0; op < MAX_OPS && in.i < in.n; op++)
        run_op(&in);
    finish(parity);
    atomic_store(&input_started, 0);
    return 0;
}
