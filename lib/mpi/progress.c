/* SPDX-License-Identifier: MIT */
/*
 * MPI requests as weft futures: the progress engine behind weft_mpi_future.
 *
 * Design. A request becomes a promise (weft_future_create) that one progress thread completes.
 * The thread owns two parallel arrays, the requests and their entries, and calls MPI_Testsome
 * over all of them at once: one call per round whatever the number of requests, and MPI's own
 * progress engine is driven by that same call. Nobody ever blocks inside MPI (Open MPI's
 * blocking waits spin on a core anyway).
 *
 * Why a thread and not a task that requeues itself on the pool: a task that tests and
 * resubmits itself keeps one worker busy for as long as anything is pending (it cannot sleep
 * without taking the worker with it), starves behind long tasks on a busy pool, and stops
 * when the pool is shut down, stranding requests. A thread of its own sleeps for free, answers
 * within its backoff bound whatever the pool does, and survives the pool. The price is one
 * thread per process and a context switch per completion when the cores are all busy.
 *
 * Backoff. After a round that completed something, the thread tests back to back for
 * SPIN_ROUNDS rounds (about 20 us: a reply to a message just sent often arrives that fast),
 * then sleeps between rounds, 1 us doubling up to poll_max_ns ($WEFT_MPI_POLL_US, default 500
 * us). The sleeps are condition-variable timed waits, so a new request cuts them short. With no
 * request at all the thread waits on the condition variable without a timeout: 0 % CPU.
 *
 * Ownership. Each entry holds one reference to its future. The submitter hands the entry to
 * the thread through the incoming list under the engine's mutex; from then on only the thread
 * touches the entry. Cancellation needs no message: the thread reads each future's state every
 * round, and a CANCELLED future's request gets MPI_Cancel once. The future itself became
 * CANCELLED at once, in weft_future_cancel (a promise needs no help for that); the request is
 * kept and tested until MPI completes it (cancelled or not) and frees it, since the user's
 * buffer belongs to MPI until then.
 *
 * Statuses. A completed request's status is copied into a heap record that the future owns
 * (weft_future_set_result_owned with free): readers get a MPI_Status * that lives exactly as
 * long as the future, through gathers and completion sets that hold it.
 *
 * Global state. The engine is one per process, behind a static pointer and mutex, because MPI
 * is one per process: MPI_Init and MPI_Finalize happen once, and the finalize hook
 * (MPI_COMM_SELF's delete callback) must find the engine without a handle.
 */
#include "weft_mpi.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define SPIN_ROUNDS          64
#define DEFAULT_POLL_MAX_NS  500000
#define FINALIZE_PATIENCE_NS 100000000 /* how long MPI_Finalize lets cancelled requests end */

struct entry {
    weft_future *f; /* one reference, given back when the request is done */
    MPI_Request req;
    bool cancel_sent;
    struct entry *next; /* the incoming list */
};

struct engine {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* the thread sleeps on it; submissions and stop wake it */
    struct entry *incoming;
    size_t nincoming;
    bool stop;
    bool sleeping; /* the thread waits on cond (only then does a submission signal) */
    pthread_t thread;
    int64_t poll_max_ns;

    /* The thread's own, no lock: the requests it tests. */
    size_t n, cap;
    MPI_Request *reqs;
    struct entry **ents;
    int *indices;
    MPI_Status *statuses;

    size_t held; /* requests held, incoming and tested; under lock */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct engine *g_engine; /* under g_lock */
static bool g_finalized;        /* under g_lock: the finalize hook ran */

/* --- the statuses the futures own --- */

static void status_free(void *p)
{
    free(p);
}

/* Completes x's future from its completed request and gives back the entry's reference. A
 * request MPI reports cancelled was cancelled by the user (whose future is CANCELLED already:
 * set_error then changes nothing) or by the finalize hook (whose future fails). */
static void finish_entry(struct entry *x, const MPI_Status *st)
{
    int cancelled = 0;
    MPI_Test_cancelled(st, &cancelled);
    if (cancelled) {
        weft_future_set_error(x->f, -ESHUTDOWN);
    } else {
        MPI_Status *copy = malloc(sizeof *copy);
        if (copy == NULL) {
            weft_future_set_error(x->f, -ENOMEM);
        } else {
            *copy = *st;
            if (weft_future_set_result_owned(x->f, copy, status_free) != 0)
                free(copy); /* cancelled by the user after MPI had completed it */
        }
    }
    weft_future_release(x->f);
    free(x);
}

/* --- the progress thread --- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Moves incoming entries into the tested arrays, as many as fit. Under the lock. False when
 * growing the arrays failed (the rest stays incoming; the next round tries again). */
static bool take_incoming(struct engine *e)
{
    size_t want = e->n + e->nincoming;
    if (want > e->cap) {
        size_t cap = e->cap ? e->cap : 16;
        while (cap < want)
            cap *= 2;
        MPI_Request *reqs = realloc(e->reqs, cap * sizeof *reqs);
        if (reqs != NULL)
            e->reqs = reqs;
        struct entry **ents = realloc(e->ents, cap * sizeof *ents);
        if (ents != NULL)
            e->ents = ents;
        int *indices = realloc(e->indices, cap * sizeof *indices);
        if (indices != NULL)
            e->indices = indices;
        MPI_Status *statuses = realloc(e->statuses, cap * sizeof *statuses);
        if (statuses != NULL)
            e->statuses = statuses;
        if (reqs == NULL || ents == NULL || indices == NULL || statuses == NULL)
            return false;
        e->cap = cap;
    }
    while (e->incoming != NULL) {
        struct entry *x = e->incoming;
        e->incoming = x->next;
        e->nincoming--;
        e->reqs[e->n] = x->req;
        e->ents[e->n] = x;
        e->n++;
    }
    return true;
}

/* One MPI_Testsome over everything; completes what finished. Returns how many did. */
static int test_round(struct engine *e)
{
    for (size_t i = 0; i < e->n; i++) {
        struct entry *x = e->ents[i];
        if (!x->cancel_sent && weft_future_state(x->f) == WEFT_CANCELLED) {
            MPI_Cancel(&e->reqs[i]);
            x->cancel_sent = true;
        }
    }
    int outcount = 0;
    MPI_Testsome((int)e->n, e->reqs, &outcount, e->indices, e->statuses);
    if (outcount == MPI_UNDEFINED || outcount <= 0)
        return 0;
    for (int k = 0; k < outcount; k++) {
        int i = e->indices[k];
        struct entry *x = e->ents[i];
        /* A persistent request stays allocated (inactive) after completing: it is ours. */
        if (e->reqs[i] != MPI_REQUEST_NULL)
            MPI_Request_free(&e->reqs[i]);
        finish_entry(x, &e->statuses[k]);
        e->ents[i] = NULL;
    }
    /* Compact, keeping the order of the rest. */
    size_t j = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (e->ents[i] != NULL) {
            e->ents[j] = e->ents[i];
            e->reqs[j] = e->reqs[i];
            j++;
        }
    }
    e->n = j;
    pthread_mutex_lock(&e->lock);
    e->held -= (size_t)outcount;
    pthread_mutex_unlock(&e->lock);
    return outcount;
}

static void *progress_main(void *arg)
{
    struct engine *e = arg;
    /* Timed waits of a few microseconds mean nothing with the default 50 us timer slack. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    int spins = 0;
    int64_t sleep_ns = 0;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        if (e->stop)
            break;
        if (e->incoming != NULL)
            take_incoming(e);
        if (e->n == 0) {
            e->sleeping = true;
            pthread_cond_wait(&e->cond, &e->lock);
            e->sleeping = false;
            spins = 0;
            sleep_ns = 0;
            continue;
        }
        pthread_mutex_unlock(&e->lock);
        int done = test_round(e);
        pthread_mutex_lock(&e->lock);
        if (done > 0) {
            spins = 0;
            sleep_ns = 0;
            continue;
        }
        if (spins < SPIN_ROUNDS) {
            spins++;
            continue;
        }
        sleep_ns = sleep_ns == 0 ? 1000 : sleep_ns * 2;
        if (sleep_ns > e->poll_max_ns)
            sleep_ns = e->poll_max_ns;
        if (e->incoming == NULL && !e->stop) {
            int64_t t = now_ns() + sleep_ns;
            struct timespec ts = {.tv_sec = (time_t)(t / 1000000000), .tv_nsec = t % 1000000000};
            e->sleeping = true;
            pthread_cond_timedwait(&e->cond, &e->lock, &ts);
            e->sleeping = false;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* --- MPI_Finalize --- */

/* Settles every request still held, once the thread has stopped: MPI_Cancel, tests for up to
 * FINALIZE_PATIENCE_NS, then frees what MPI still holds. */
static void settle_all(struct engine *e)
{
    take_incoming(e); /* the thread has stopped: the lock is not needed, nor taken */
    for (size_t i = 0; i < e->n; i++) {
        if (!e->ents[i]->cancel_sent)
            MPI_Cancel(&e->reqs[i]);
        e->ents[i]->cancel_sent = true;
    }
    int64_t deadline = now_ns() + FINALIZE_PATIENCE_NS;
    while (e->n > 0 && now_ns() < deadline) {
        int outcount = 0;
        MPI_Testsome((int)e->n, e->reqs, &outcount, e->indices, e->statuses);
        if (outcount == MPI_UNDEFINED || outcount <= 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
            continue;
        }
        for (int k = 0; k < outcount; k++) {
            int i = e->indices[k];
            if (e->reqs[i] != MPI_REQUEST_NULL)
                MPI_Request_free(&e->reqs[i]);
            finish_entry(e->ents[i], &e->statuses[k]);
            e->ents[i] = NULL;
        }
        size_t j = 0;
        for (size_t i = 0; i < e->n; i++) {
            if (e->ents[i] != NULL) {
                e->ents[j] = e->ents[i];
                e->reqs[j] = e->reqs[i];
                j++;
            }
        }
        e->n = j;
    }
    for (size_t i = 0; i < e->n; i++) {
        MPI_Request_free(&e->reqs[i]);
        weft_future_set_error(e->ents[i]->f, -ESHUTDOWN);
        weft_future_release(e->ents[i]->f);
        free(e->ents[i]);
    }
    e->n = 0;
    e->held = 0;
}

static void engine_free(struct engine *e)
{
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e->reqs);
    free(e->ents);
    free(e->indices);
    free(e->statuses);
    free(e);
}

static int finalize_hook(MPI_Comm comm, int keyval, void *value, void *extra)
{
    (void)comm;
    (void)value;
    (void)extra;
    pthread_mutex_lock(&g_lock);
    struct engine *e = g_engine;
    g_engine = NULL;
    g_finalized = true;
    pthread_mutex_unlock(&g_lock);
    if (e != NULL) {
        pthread_mutex_lock(&e->lock);
        e->stop = true;
        pthread_cond_signal(&e->cond);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->thread, NULL);
        settle_all(e);
        engine_free(e);
    }
    int kv = keyval;
    MPI_Comm_free_keyval(&kv);
    return MPI_SUCCESS;
}

static int64_t poll_max_from_env(void)
{
    const char *s = getenv("WEFT_MPI_POLL_US");
    if (s == NULL || *s == '\0')
        return DEFAULT_POLL_MAX_NS;
    char *end = NULL;
    long us = strtol(s, &end, 10);
    if (*end != '\0' || us < 1 || us > 1000000)
        return DEFAULT_POLL_MAX_NS;
    return (int64_t)us * 1000;
}

/* The engine, started on first use. Under g_lock. */
static int engine_get(struct engine **out)
{
    if (g_engine != NULL) {
        *out = g_engine;
        return 0;
    }
    struct engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    e->poll_max_ns = poll_max_from_env();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&e->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        free(e);
        return -ENOMEM;
    }
    pthread_mutex_init(&e->lock, NULL);

    int keyval = MPI_KEYVAL_INVALID;
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, finalize_hook, &keyval, NULL) !=
        MPI_SUCCESS) {
        engine_free(e);
        return -ENOMEM;
    }
    /* Worker-like: block the asynchronous signals, so that they reach the application. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&e->thread, NULL, progress_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        MPI_Comm_free_keyval(&keyval);
        engine_free(e);
        return -EAGAIN;
    }
    pthread_setname_np(e->thread, "weft-mpi");
    if (MPI_Comm_set_attr(MPI_COMM_SELF, keyval, e) != MPI_SUCCESS) {
        pthread_mutex_lock(&e->lock);
        e->stop = true;
        pthread_cond_signal(&e->cond);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->thread, NULL);
        MPI_Comm_free_keyval(&keyval);
        engine_free(e);
        return -ENOMEM;
    }
    g_engine = e;
    *out = e;
    return 0;
}

/* --- the API --- */

static bool thread_multiple(void)
{
    int inited = 0, finalized = 0, provided = MPI_THREAD_SINGLE;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return false;
    MPI_Query_thread(&provided);
    return provided == MPI_THREAD_MULTIPLE;
}

int weft_mpi_future(weft_pool *pool, MPI_Request *req, weft_future **out)
{
    if (pool == NULL || req == NULL || out == NULL || *req == MPI_REQUEST_NULL)
        return -EINVAL;
    if (!thread_multiple())
        return -ENOTSUP;
    if (weft_pool_is_shutdown(pool))
        return -ESHUTDOWN;

    struct entry *x = calloc(1, sizeof *x);
    if (x == NULL)
        return -ENOMEM;
    weft_future *f = NULL;
    int rc = weft_future_create(&f);
    if (rc != 0) {
        free(x);
        return rc;
    }

    pthread_mutex_lock(&g_lock);
    struct engine *e = NULL;
    rc = g_finalized ? -ENOTSUP : engine_get(&e);
    if (rc != 0) {
        pthread_mutex_unlock(&g_lock);
        weft_future_release(f);
        free(x);
        return rc;
    }
    weft_future_retain(f); /* the entry's reference */
    x->f = f;
    x->req = *req;
    pthread_mutex_lock(&e->lock);
    x->next = e->incoming;
    e->incoming = x;
    e->nincoming++;
    e->held++;
    if (e->sleeping)
        pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
    /* Under g_lock, so that the finalize hook, which takes the engine away under g_lock, either
     * sees this entry or ran before and made this call fail. */
    pthread_mutex_unlock(&g_lock);

    *req = MPI_REQUEST_NULL;
    *out = f;
    return 0;
}

size_t weft_mpi_pending(void)
{
    size_t n = 0;
    pthread_mutex_lock(&g_lock);
    if (g_engine != NULL) {
        pthread_mutex_lock(&g_engine->lock);
        n = g_engine->held;
        pthread_mutex_unlock(&g_engine->lock);
    }
    pthread_mutex_unlock(&g_lock);
    return n;
}
