/*
 * Pool lifecycle and submission.
 *
 * Creation validates everything before it allocates, then allocates everything before it starts
 * a thread, and unwinds through one path (teardown) whatever step fails. Shutdown sets the
 * closed bit that every push to the injection queue checks after announcing itself (inject.c),
 * so no outside submission slips in unnoticed; workers' own submissions check the same word, and
 * a task that still gets through is cancelled when popped if the pool is cancelling.
 */
#include "pool.h"

#include "alloc.h"
#include "cache.h"
#include "platform.h"
#include "topology.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void weft_config_init(weft_config *cfg)
{
    if (cfg != NULL)
        memset(cfg, 0, sizeof(*cfg));
}

unsigned weft_pool_size(const weft_pool *pool)
{
    return pool != NULL ? pool->nworkers : 0;
}

/* --- configuration from the environment --- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int env_threads(unsigned *out)
{
    const char *v = env("WEFT_THREADS");
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > (long)WEFT_MAX_THREADS)
        return -EINVAL;
    *out = (unsigned)n;
    return 0;
}

static int env_bind(weft_bind *out)
{
    const char *v = env("WEFT_BIND");
    if (v == NULL)
        return 0;
    if (strcasecmp(v, "none") == 0)
        *out = WEFT_BIND_NONE;
    else if (strcasecmp(v, "compact") == 0)
        *out = WEFT_BIND_COMPACT;
    else if (strcasecmp(v, "spread") == 0)
        *out = WEFT_BIND_SPREAD;
    else
        return -EINVAL;
    return 0;
}

static int env_stack(size_t *out)
{
    const char *v = env("WEFT_STACK_SIZE");
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n > (SIZE_MAX >> shift))
        return -EINVAL;
    *out = (size_t)n << shift;
    return 0;
}

/* $WEFT_DISPLAY_ENV=1: the settings in effect, on stderr, as OMP_DISPLAY_ENV does for OpenMP.
 * The one place the library prints without $WEFT_DEBUG, because the user asked for exactly
 * this. */
static void display_env(const weft_pool *pool, const weft_config *cfg)
{
    const char *v = env("WEFT_DISPLAY_ENV");
    if (v == NULL || strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0)
        return;
    static const char *const binds[] = {"none", "compact", "spread"};
    const char *src = cfg->threads != 0             ? "weft_config.threads"
                      : env("WEFT_THREADS") != NULL ? "$WEFT_THREADS"
                                                    : "cores this process may use";
    fprintf(stderr,
            "WEFT DISPLAY ENVIRONMENT BEGIN\n"
            "  _WEFT_VERSION = '%s'\n"
            "  WEFT_THREADS = '%u' (from %s)\n"
            "  WEFT_BIND = '%s'\n"
            "  WEFT_STACK_SIZE = '%zu'\n"
            "  WEFT_MAX_PENDING = '%zu'\n"
            "  WEFT_NAME = '%s'\n"
            "  WEFT_TRACE = '%s'\n"
            "WEFT DISPLAY ENVIRONMENT END\n",
            weft_version(), pool->nworkers, src, binds[pool->bind], pool->stack_size,
            pool->max_pending, pool->name, pool->trace_path != NULL ? pool->trace_path : "");
}

/* --- creation and teardown --- */

/* Writes the trace, with tracks named as the threads are, characters JSON would need escaped
 * replaced. */
static void write_trace(weft_pool *pool)
{
    unsigned n = pool->nworkers;
    const struct weft__trace **t = weft__calloc(n, sizeof(*t));
    const char **names = weft__calloc(n, sizeof(*names));
    char *store = weft__calloc(n, 32);
    int rc = -ENOMEM;
    if (t != NULL && names != NULL && store != NULL) {
        for (unsigned i = 0; i < n; i++) {
            t[i] = &pool->traces[i];
            char *nm = store + 32 * (size_t)i;
            weft__worker_name(pool, i, nm);
            for (char *c = nm; *c != '\0'; c++) {
                if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
                    *c = '_';
            }
            names[i] = nm;
        }
        rc = weft__trace_write(pool->trace_path, t, names, n);
    }
    if (rc != 0)
        weft__debug("could not write the trace to %s: %s", pool->trace_path, strerror(-rc));
    weft__free(t);
    weft__free(names);
    weft__free(store);
}

static void free_pool(weft_pool *pool, bool forked);

static void teardown(weft_pool *pool, unsigned started)
{
    st_relaxed(&pool->nthreads, started); /* published by the release below */
    /* seq_cst: pairs with the workers' seq_cst load before they leave (worker.c), which with
     * weft__inject_drained's seq_cst loads must not miss a task accepted before the close */
    or_seq_cst(&pool->shutdown, WEFT_SHUT_CLOSED | WEFT_SHUT_EXIT);
    weft__park_notify_all(&pool->park);
    for (unsigned i = 0; i < started; i++)
        pthread_join(pool->workers[i].thread, NULL);
    if (pool->trace_path != NULL && started == pool->nworkers)
        write_trace(pool);
    free_pool(pool, false);
}

/* Frees everything a pool owns. forked: in a child after fork(), where a vanished worker may
 * have held the injection queue's mutexes, so they are freed without being destroyed. */
static void free_pool(weft_pool *pool, bool forked)
{
    for (unsigned i = 0; i < pool->nworkers; i++)
        weft__deque_destroy(&pool->workers[i].deque);
    if (pool->trace_path != NULL) {
        for (unsigned i = 0; i < pool->nworkers; i++)
            weft__trace_free(&pool->traces[i]);
        weft__free(pool->traces);
        weft__free(pool->trace_path);
    }
    weft__park_destroy(&pool->park);
    if (forked)
        weft__free(pool->inject.shard);
    else
        weft__inject_destroy(&pool->inject);
    weft__free(pool->workers);
    if (forked)
        weft__unmap_fork_page(pool->guard); /* nothing in a child touches the budget (pool.h) */
    else
        weft__page_put(pool->guard, WEFT_PAGE_HOLD); /* futures may still hold counts */
    weft__free(pool);
}

void weft__page_put(struct weft__fork_guard *g, size_t n)
{
    /* acq_rel: every holder's last use of the page comes before the unmapping, which the last
     * one does; pairs with the other holders' decrements */
    if (sub_acq_rel(&g->holds, n) == n)
        weft__unmap_fork_page(g);
}

static int start_workers(weft_pool *pool, unsigned *started)
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    int rc = pthread_attr_setstacksize(&attr, pool->stack_size) == 0 ? 0 : -EINVAL;

    /* Workers block every asynchronous signal, so that signals sent to the process reach the
     * application's own threads. A new thread inherits the creator's mask. */
    sigset_t all, old;
    sigfillset(&all);
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT};
    for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; rc == 0 && i < pool->nworkers; i++) {
        rc = weft__thread_start(&pool->workers[i].thread, &attr, weft__worker_main,
                                &pool->workers[i]);
        if (rc == 0)
            *started = i + 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

int weft_pool_create(const weft_config *cfg, weft_pool **out)
{
    weft_config defaults;
    if (out == NULL)
        return -EINVAL;
    if (cfg == NULL) {
        weft_config_init(&defaults);
        cfg = &defaults;
    }
    if ((unsigned)cfg->bind > WEFT_BIND_SPREAD || cfg->threads > WEFT_MAX_THREADS)
        return -EINVAL;
    if (cfg->stack_size != 0 && cfg->stack_size < (size_t)PTHREAD_STACK_MIN)
        return -EINVAL;

    unsigned threads = cfg->threads;
    weft_bind bind = cfg->bind;
    size_t stack = cfg->stack_size;
    int rc;
    if (threads == 0 && (rc = env_threads(&threads)) != 0)
        return rc;
    if (bind == WEFT_BIND_NONE && (rc = env_bind(&bind)) != 0)
        return rc;
    if (stack == 0) {
        if ((rc = env_stack(&stack)) != 0)
            return rc;
        if (stack != 0 && stack < (size_t)PTHREAD_STACK_MIN)
            return -EINVAL;
        if (stack == 0)
            stack = WEFT_DEFAULT_STACK_SIZE;
    }
    if (threads == 0)
        threads = weft__default_threads();

    weft_pool *pool = weft__aligned_alloc(WEFT_CACHE_LINE, sizeof(*pool));
    if (pool == NULL)
        return -ENOMEM;
    memset(pool, 0, sizeof(*pool));
    pool->nworkers = threads;
    pool->bind = bind;
    pool->stack_size = stack;
    pool->max_pending = cfg->max_pending;
    pool->on_worker_start = cfg->on_worker_start;
    pool->on_worker_stop = cfg->on_worker_stop;
    pool->hook_data = cfg->hook_data;
    snprintf(pool->name, sizeof(pool->name), "%s", cfg->name != NULL ? cfg->name : "weft");
    atomic_init(&pool->shutdown, 0);
    atomic_init(&pool->swept, 0);
    atomic_init(&pool->nthreads, 0);
    atomic_init(&pool->exited, 0);

    bool wipes = false;
    pool->guard = weft__map_fork_page(&wipes);
    if (pool->guard == NULL) {
        weft__free(pool);
        return -ENOMEM;
    }
    atomic_init(&pool->guard->alive, 1);
    pool->guard->wipes = wipes;
    pool->guard->pid = getpid();
    atomic_init(&pool->guard->holds, WEFT_PAGE_HOLD);
    pool->workers = weft__aligned_alloc(WEFT_CACHE_LINE, threads * sizeof(*pool->workers));
    if (pool->workers == NULL) {
        weft__unmap_fork_page(pool->guard);
        weft__free(pool);
        return -ENOMEM;
    }
    memset(pool->workers, 0, threads * sizeof(*pool->workers));
    if (weft__inject_init(&pool->inject, threads) != 0) {
        weft__free(pool->workers);
        weft__unmap_fork_page(pool->guard);
        weft__free(pool);
        return -ENOMEM;
    }
    if (weft__park_init(&pool->park, threads) != 0) {
        weft__inject_destroy(&pool->inject);
        weft__free(pool->workers);
        weft__unmap_fork_page(pool->guard);
        weft__free(pool);
        return -ENOMEM;
    }
    /* From here on, teardown() undoes everything; a deque not yet initialised has a NULL buf,
     * which weft__deque_destroy accepts. */
    rc = 0;
    for (unsigned i = 0; i < threads; i++) {
        struct weft__worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        w->inject_home = i % pool->inject.nshards;
        w->rng = 0x9e3779b97f4a7c15u * (i + 1) + (uintptr_t)pool;
        atomic_init(&w->wake, 0);
        atomic_init(&w->taking, 0);
        weft__park_register(&pool->park, i, &w->wake);
        if (rc == 0)
            rc = weft__deque_init(&w->deque, 256);
    }
    const char *trace = cfg->trace_path != NULL ? cfg->trace_path : env("WEFT_TRACE");
    if (rc == 0 && trace != NULL) {
        uint32_t cap = weft__trace_capacity();
        pool->trace_path = weft__malloc(strlen(trace) + 1);
        pool->traces = weft__calloc(threads, sizeof(*pool->traces));
        if (pool->trace_path == NULL || pool->traces == NULL) {
            weft__free(pool->trace_path);
            weft__free(pool->traces);
            pool->trace_path = NULL;
            pool->traces = NULL;
            rc = -ENOMEM;
        } else {
            strcpy(pool->trace_path, trace);
            for (unsigned i = 0; rc == 0 && i < threads; i++) {
                rc = weft__trace_init(&pool->traces[i], cap);
                pool->workers[i].tr = &pool->traces[i];
            }
        }
    }
    if (rc == 0 && bind != WEFT_BIND_NONE) {
        cpu_set_t *sets = weft__calloc(threads, sizeof(*sets));
        rc = sets != NULL ? weft__bind_sets(bind, threads, sets) : -ENOMEM;
        for (unsigned i = 0; rc == 0 && i < threads; i++) {
            pool->workers[i].cpus = sets[i];
            pool->workers[i].bound = true;
        }
        weft__free(sets);
    }
    unsigned started = 0;
    if (rc == 0)
        rc = start_workers(pool, &started);
    if (rc != 0) {
        teardown(pool, started);
        return rc;
    }
    weft__debug("pool %p: %u workers, bind %d, stack %zu bytes, max_pending %zu", (void *)pool,
                threads, (int)bind, stack, pool->max_pending);
    display_env(pool, cfg);
    *out = pool;
    return 0;
}

/* --- shutdown and destruction --- */

/* The CANCEL sweep: cancels every submitted task still queued, and returns only when none is
 * left PENDING anywhere a worker could start it.
 *
 * 1. The cancel bit is set (seq_cst) before the sweep. A worker pushing a submission onto its
 *    own deque, or taking a task, does so with `taking` up (seq_cst store, then a seq_cst load
 *    of the bits): either it sees the bit, or the sweep sees `taking` up and waits for it to
 *    fall. So after the first wait, every push has landed and every later take sees the bit.
 * 2. Everything queued is taken off the injection shards and the deques. Submitted tasks move
 *    to CANCELLED at once, but quietly: no waiter is woken and no callback runs yet.
 *    Work spread by running tasks (join frames) is kept aside: shutdown never cancels it.
 * 3. A second wait for `taking` covers the workers that took a task after the bit was set:
 *    they cancel it themselves, before `taking` falls (worker.c, decide).
 * 4. The kept frames go back on the injection queue, past the closed bit, for any worker.
 * 5. Only now, with nothing of the sweep's in flight, the cancelled tasks are announced: their
 *    waiters wake and their callbacks run. A callback that calls weft_pool_shutdown again
 *    finds nothing left to wait for, and returns at once.
 *
 * None of the waits spins without bound: they back off to sleeping (weft__backoff), because the
 * thread they wait for may have a lower priority than the one that shuts down. */

static void wait_takers(weft_pool *pool)
{
    for (unsigned i = 0; i < pool->nworkers; i++) {
        unsigned round = 0;
        /* seq_cst: pairs with the seq_cst store of taking (worker.c and weft_submit); its
         * acquire side also pairs with the release that drops taking, so what the worker did
         * (a push, a cancel) is visible here */
        while (ld_seq_cst(&pool->workers[i].taking) != 0)
            weft__backoff(&round);
    }
}

struct sweep {
    struct weft__task *cancelled; /* futures this sweep moved to CANCELLED, linked by next */
    struct weft__task *keep;      /* join frames to put back */
};

static void sweep_one(weft_pool *pool, struct weft__task *t, struct sweep *sw)
{
    if (t->kind == WEFT_TASK_FUTURE) {
        weft_future *f = (weft_future *)t;
        if (weft__future_cancel_quiet(f)) {
            add_relaxed(&pool->swept, 1);        /* relaxed: a statistic */
            st_relaxed(&t->next, sw->cancelled); /* relaxed: the task is ours now */
            sw->cancelled = t;
        } else {
            weft_future_release(f); /* cancelled by its owner meanwhile: the queue's reference */
        }
    } else {
        st_relaxed(&t->next, sw->keep); /* relaxed: the task is ours until pushed back */
        sw->keep = t;
    }
}

static void cancel_everything_queued(weft_pool *pool)
{
    struct sweep sw = {NULL, NULL};
    struct weft__task *batch[64];
    wait_takers(pool);
    for (unsigned s = 0; s < pool->inject.nshards; s++) {
        struct weft__inject_shard *sh = &pool->inject.shard[s];
        unsigned round = 0;
        /* seq_cst: after the seq_cst set of the closed bit, a push in flight is counted here or
         * backs out (inject.c); wait for those that got in. */
        while (ld_seq_cst(&sh->count) != 0) {
            size_t n = weft__inject_pop(&pool->inject, s, batch, 64, true);
            for (size_t i = 0; i < n; i++)
                sweep_one(pool, batch[i], &sw);
            weft__inject_taken(&pool->inject, s, n);
            if (n == 0)
                weft__backoff(&round); /* a producer between its two steps, or a worker
                                          placing a batch it popped */
        }
    }
    for (unsigned i = 0; i < pool->nworkers; i++) {
        void *x;
        while ((x = weft__deque_steal(&pool->workers[i].deque)) != WEFT_STEAL_EMPTY) {
            if (x != WEFT_STEAL_ABORT)
                sweep_one(pool, x, &sw);
        }
    }
    wait_takers(pool);
    while (sw.keep != NULL) {
        struct weft__task *next = ld_relaxed(&sw.keep->next);
        weft__inject_push(&pool->inject, 0, sw.keep, NULL, 0);
        sw.keep = next;
    }
    weft__park_notify_one(&pool->park);
    while (sw.cancelled != NULL) {
        weft_future *f = (weft_future *)sw.cancelled;
        sw.cancelled = ld_relaxed(&sw.cancelled->next);
        weft__uncount(f);
        weft__future_announce(f);
        weft_future_release(f); /* the queue's reference */
    }
}

int weft_pool_shutdown(weft_pool *pool, weft_shutdown_mode mode)
{
    if (pool == NULL || (mode != WEFT_SHUTDOWN_DRAIN && mode != WEFT_SHUTDOWN_CANCEL))
        return -EINVAL;
    uint32_t bits = WEFT_SHUT_CLOSED | (mode == WEFT_SHUTDOWN_CANCEL ? WEFT_SHUT_CANCEL : 0);
    /* seq_cst: pairs with the seq_cst check in weft__inject_push (inject.c) and releases to the
     * acquire loads in submit and run_future */
    or_seq_cst(&pool->shutdown, bits);
    if (mode == WEFT_SHUTDOWN_CANCEL && !weft__pool_forked(pool))
        cancel_everything_queued(pool);
    return 0;
}

int weft_pool_destroy(weft_pool *pool)
{
    if (pool == NULL)
        return 0;
    struct weft__worker *self = weft__me();
    if (self != NULL && self->pool == pool)
        return -EDEADLK;
    if (weft__pool_forked(pool)) {
        /* In a child after fork(): the workers do not exist, so free the memory and touch
         * nothing else. Tasks still queued are dropped, their futures never finishing here. */
        free_pool(pool, true);
        return 0;
    }
    weft_pool_shutdown(pool, WEFT_SHUTDOWN_DRAIN);
    teardown(pool, pool->nworkers);
    return 0;
}

/* --- submission --- */

int weft_submit(weft_pool *pool, weft_fn fn, void *arg, weft_future **out)
{
    if (pool == NULL || fn == NULL)
        return -EINVAL;
    struct weft__worker *self = weft__me();
    bool inside = self != NULL && self->pool == pool;
    /* acquire: pairs with the release in weft_pool_shutdown; a fast refusal only, the checks
     * that decide are below */
    if ((ld_acquire(&pool->shutdown) & WEFT_SHUT_CLOSED) || weft__pool_forked(pool))
        return -ESHUTDOWN;
    weft_future *f = weft__future_new(pool, fn, arg, out != NULL ? 2 : 1);
    if (f == NULL)
        return -ENOMEM;
    struct weft__fork_guard *page = pool->guard;
    f->pid = page->pid;
    if (!inside && pool->max_pending != 0) {
        /* relaxed: a budget, not a publication; the injection queue publishes the task. The
         * pool's own hold keeps this from reaching zero. */
        if ((add_relaxed(&page->holds, 1) & ~WEFT_PAGE_HOLD) >= pool->max_pending) {
            sub_relaxed(&page->holds, 1);
            weft__block_free(f);
            return -EAGAIN;
        }
        f->counted_in = page;
    }
    int rc;
    if (inside) {
        /* The push is made with taking up, like a take, so that a CANCEL shutdown's sweep
         * cannot miss it (cancel_everything_queued). seq_cst store then seq_cst load: pairs
         * with the shutdown's seq_cst set of the bits then load of taking. */
        st_seq_cst(&self->taking, 1);
        if (ld_seq_cst(&pool->shutdown) & WEFT_SHUT_CLOSED)
            rc = -ESHUTDOWN;
        else
            rc = weft__deque_push(&self->deque, &f->task);
        st_release(&self->taking, 0); /* release: the push is visible to the sweep */
        if (rc == 0)
            WEFT_COUNT(self, submitted, 1);
    } else {
        rc = weft__inject_push(&pool->inject, weft__inject_home(&pool->inject), &f->task,
                               &pool->shutdown, WEFT_SHUT_CLOSED);
    }
    if (rc != 0) {
        if (f->counted_in != NULL)
            sub_relaxed(&page->holds, 1); /* relaxed: as above */
        weft__block_free(f);
        return rc;
    }
    if (!inside || pool->nworkers > 1) /* a lone worker has nobody to wake but itself */
        weft__park_notify_one(&pool->park);
    if (out != NULL)
        *out = f;
    return 0;
}
