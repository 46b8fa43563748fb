/* SPDX-License-Identifier: MIT */
/*
 * Lifeline-based global load balancing over MPI and a weft pool: weft_glb_run.
 *
 * Source: V. Saraswat, P. Kambadur, S. Kodali, D. Grove, S. Krishnamoorthy, "Lifeline-based
 * global load balancing", PPoPP 2011, and the design of X10's GLB library; termination by
 * Safra's algorithm as Dijkstra wrote it up (EWD998, "Shmuel Safra's version of termination
 * detection").
 *
 * Two levels.
 *
 * Inside a rank, each of the pool's W workers runs one long task holding its own bag. It calls
 * process(bag, chunk) under the bag's mutex, so that thieves, who take the same mutex to split
 * the bag, see it only between chunks; the mutex is uncontended but for steals, one lock per
 * chunk. A worker whose bag is empty steals half of another worker's bag (split into its
 * scratch buffer, then merge into its own). When that fails too it marks itself idle and sleeps
 * on its own condition variable. A worker that finishes a chunk with work left and sees
 * sleepers wakes one, marking it busy on its behalf (below, why the waker and not the sleeper).
 *
 * A chunk boundary is a moment, not a wait: the owner unlocks and locks again at once, and a
 * mutex is not fair, so a thief blocked on it is woken only to find it taken again, chunk after
 * chunk (a thief could wait for milliseconds, thousands of chunks, while its own core idled:
 * that is how one rank of two workers used to run no faster than one). So a thread that wants
 * another worker's bag (a thief, or the communicator splitting for another rank or merging
 * work in) first counts itself in the bag's waiters, and the owner, before it locks for the next
 * chunk, yields while there are any. Waiters hold the lock for one split or merge and never
 * wait for the owner meanwhile, so the owner's wait is short, and a thief gets the bag within
 * one chunk. Each worker's record and result start on cache lines of their own, since the
 * owner writes them at every chunk or unit (the bag is the user's: see weft_mpi.h).
 *
 * Between ranks, all MPI traffic goes through the thread that called weft_glb_run, the
 * communicator. It answers steal requests of other ranks by splitting a busy worker's bag, and
 * steals for its rank only when all W workers are idle: the rank is then "passive". A passive
 * rank sends a random steal request to one random rank at a time, up to steal_tries of them;
 * if all say no, it sends a lifeline request to each of its lifeline buddies it has not already
 * asked and goes dormant. A rank asked through a lifeline gives work at once if it has some,
 * or else remembers the thief and pushes work to it as soon as it has some again. Lifelines
 * form a hypercube: rank h's buddies are h with one bit flipped, when below the rank count,
 * about log2(R) of them. The graph is strongly connected for any R (clear the bits of h one
 * by one, highest first, to reach 0; set them from 0, lowest first, to reach h: every step stays
 * below R), so work reaches every dormant rank through lifelines alone, however the random
 * steals fare. As in X10's GLB, ranks 3h+1..3h+3 count at the start as lifeline thieves of h,
 * which spreads the initial work down a ternary tree without waiting for requests.
 *
 * Counting busy workers. The communicator must never see "all W idle" while work exists in the
 * rank. Work moves between workers only from a busy one to one that is about to take it, so
 * the invariant is: a worker that takes work is counted busy before it takes it. A woken
 * sleeper is counted busy by the worker that woke it (which is busy itself at that moment), and
 * a worker given work by the communicator is counted busy by the communicator before it lets
 * go of the rank's mutex. When no worker is idle, the communicator merges into a busy worker's
 * bag and flags it "fed": that worker may have just found its bag empty, and before it counts
 * itself idle (under the same mutex) it looks again. Then nidle == W means every bag is empty and
 * no worker holds stolen work, and the rank can leave that state only through the communicator,
 * which receives work.
 *
 * Termination: Safra's algorithm. Messages that carry work are the "basic" messages: they are
 * the only ones that can make a passive rank busy (steal requests, refusals and tokens never
 * do). Each rank counts c = work messages sent - work messages received, and turns black when
 * it receives one. Rank 0, when passive, sends a white token with q = 0 around the ring
 * 0 -> 1 -> ... -> R-1 -> 0. A rank forwards the token only while passive, adding its c to q,
 * blackening the token if it is black, and turning white. When the token is back at rank 0,
 * rank 0 is passive, the token and rank 0 are white and q + c0 == 0, every rank has been
 * passive since the token passed it (a rank that became busy again must have received work,
 * which turned it black, or the sender's count would show it in flight), and no work is in
 * flight: terminated (Dijkstra's proof, EWD998). Otherwise rank 0 starts another round. The
 * token waits at busy ranks, so it does not circulate while work remains, and at most two
 * rounds follow the real end. Rank 0 then sends DONE to every rank.
 *
 * After DONE, control messages (steal requests, refusals) may still be in flight. Every rank
 * counts what it sent to and received from each peer; an MPI_Alltoall of the sent counts tells
 * each rank how many messages to expect, which it receives and drops, so that the duplicate
 * communicator is empty when it is freed. Then the workers' results are folded in worker order,
 * MPI_Allgather brings every rank's, and every rank folds them in rank order.
 *
 * Failure. A callback that fails stops its worker, which records the code and wakes the
 * communicator; it sends ABORT to every rank and stops its workers. A rank that receives ABORT
 * stops its own (they check between chunks) and returns -ECANCELED. No rank can be waiting in
 * a collective then: the failed rank is never passive, so DONE is never sent. Buffers of sends
 * MPI could not finish within a second are then left to MPI (leaked rather than freed under
 * it); the program is expected to end with MPI_Abort.
 *
 * Not burning CPU. Sleeping workers wait on condition variables. The communicator polls MPI
 * (MPI_Iprobe, then MPI_Recv) and sleeps between polls on a condition variable with a timeout
 * that grows from 8 us to poll_max_ns while nothing happens, and restarts after each message;
 * a worker that leaves the rank passive or fails signals it, so that a rank runs out of work
 * and starts stealing without waiting for the timeout. A dormant rank thus costs one wake-up per
 * poll_max_ns, and answers a steal request within that bound.
 */
#include "weft_mpi.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_CHUNK       256
#define DEFAULT_STEAL_BYTES ((size_t)64 << 10)
#define DEFAULT_POLL_MAX_NS 500000
#define FIRST_SLEEP_NS      8000
#define SPIN_POLLS          16
#define ABORT_PATIENCE_NS   1000000000
#define CACHE_LINE          64

enum { TAG_STEAL = 1, TAG_WORK, TAG_NOWORK, TAG_TOKEN, TAG_DONE, TAG_ABORT };
enum { STEAL_RANDOM = 0, STEAL_LIFELINE = 1 };
enum { RUN_GOING = 0, RUN_DONE = 1, RUN_ABORT = 2 };

/* Every message starts with this header; WORK carries the split bytes after it. */
struct msg {
    int32_t kind;  /* STEAL and WORK: STEAL_RANDOM or STEAL_LIFELINE; ABORT: the code */
    int32_t black; /* TOKEN */
    int64_t q;     /* TOKEN */
};

/* One cache line or more each: the owner locks its bag and writes its result at every chunk or
 * unit, and must not drag a neighbour's line with it. */
struct worker {
    _Alignas(CACHE_LINE) pthread_mutex_t lock; /* the bag's: process, split and merge under it */
    atomic_uint waiters; /* threads about to take lock for a split or a merge; the owner yields */
    pthread_cond_t cv;   /* the worker sleeps on it, under run.m */
    void *bag;
    unsigned char *buf; /* scratch for local steals */
    unsigned char *result;
    bool idle;     /* under run.m */
    bool fed;      /* the communicator merged work in while the worker was busy; under run.m */
    unsigned hint; /* who woke it: the first victim to try; under run.m */
    uint64_t rng;
    uint64_t local_steals;
    weft_future *task;
    struct run *run;
    unsigned index;
};

struct run {
    const weft_glb_ops *ops;
    void *ctx;
    size_t chunk, cap;
    unsigned nw;
    struct worker *w;

    pthread_mutex_t m;      /* idle bookkeeping, the error, and the communicator's sleep */
    pthread_cond_t comm;    /* the communicator sleeps on it; workers signal it */
    unsigned nidle;         /* under m */
    atomic_uint nidle_hint; /* a copy of nidle for workers' unlocked peeks */
    atomic_int state;       /* RUN_*: workers leave their loop when it is not RUN_GOING */
    int error;              /* the first local failure, under m */
};

struct send {
    MPI_Request req;
    void *buf;
};

struct comm {
    MPI_Comm comm;
    int rank, n;
    int *lifelines;
    int nlifelines;
    bool *asked; /* [n]: a lifeline request to that rank is outstanding */
    bool *thief; /* [n]: that rank asked us through a lifeline and waits */
    int nthieves;
    bool awaiting;  /* a random steal request is outstanding */
    unsigned tries; /* random steals of this passive period */
    bool dormant;   /* lifeline requests sent for this passive period */
    unsigned steal_tries;
    int64_t count; /* Safra's c */
    bool black;
    bool token_here, token_out, token_black;
    int64_t token_q;
    bool done, aborted;
    int abort_code;
    uint64_t *sent_to, *recv_from;
    struct send *sends;
    size_t nsends, capsends;
    unsigned char *rbuf;
    size_t rcap;
    unsigned next_victim_worker;
    uint64_t rng;
    int64_t poll_max_ns;
    weft_glb_stats st;
};

/* --- small helpers --- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: enough to pick victims */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec deadline_in(int64_t ns)
{
    int64_t t = now_ns() + ns;
    return (struct timespec){.tv_sec = (time_t)(t / 1000000000), .tv_nsec = t % 1000000000};
}

static int cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

/* Records the first local failure and stops the rank's workers. */
static void fail(struct run *r, int code)
{
    pthread_mutex_lock(&r->m);
    if (r->error == 0)
        r->error = code;
    /* release: pairs with the acquire loads of workers between chunks; the error itself is
     * read under m */
    atomic_store_explicit(&r->state, RUN_ABORT, memory_order_release);
    pthread_cond_signal(&r->comm);
    pthread_mutex_unlock(&r->m);
}

static bool going(struct run *r)
{
    /* acquire: pairs with the release stores in fail() and stop_workers() */
    return atomic_load_explicit(&r->state, memory_order_acquire) == RUN_GOING;
}

/* --- workers --- */

/* Takes v's bag lock on behalf of another thread (a thief that splits, the communicator that
 * splits or merges). The owner takes the lock again right after each chunk, so a thread merely
 * blocked on it would seldom get it: the woken waiter finds it taken once more and sleeps for
 * another chunk, again and again. So the waiter says it waits, and the owner lets it in first. */
static void lock_for_other(struct worker *v)
{
    /* relaxed: only tells the owner to yield; the mutex orders the bag itself. Partner: the
     * acquire load in let_others_in. */
    atomic_fetch_add_explicit(&v->waiters, 1, memory_order_relaxed);
    pthread_mutex_lock(&v->lock);
}

static void unlock_for_other(struct worker *v)
{
    pthread_mutex_unlock(&v->lock);
    /* release: pairs with the acquire load in let_others_in, after which the owner locks */
    atomic_fetch_sub_explicit(&v->waiters, 1, memory_order_release);
}

/* The owner, between chunks with its bag lock free: yields while other threads wait for it.
 * They hold it only for one split or merge, and a waiter is never itself waiting for this
 * worker, so the wait is short. */
static void let_others_in(struct worker *me)
{
    /* acquire: pairs with the release decrement in unlock_for_other */
    while (atomic_load_explicit(&me->waiters, memory_order_acquire) > 0)
        sched_yield();
}

/* Takes half of another worker's bag into me's. 1 when it got work, 0 when nobody had any to
 * share, or a callback's negative code. */
static int local_steal(struct run *r, struct worker *me)
{
    const weft_glb_ops *ops = r->ops;
    unsigned start = me->hint < r->nw && me->hint != me->index
                         ? me->hint
                         : (unsigned)(rng_next(&me->rng) % r->nw);
    for (unsigned k = 0; k < r->nw; k++) {
        struct worker *v = &r->w[(start + k) % r->nw];
        if (v == me)
            continue;
        size_t len = 0;
        lock_for_other(v);
        int rc = ops->split(v->bag, me->buf, r->cap, &len, r->ctx);
        unlock_for_other(v);
        if (rc < 0)
            return rc;
        if (len == 0)
            continue;
        pthread_mutex_lock(&me->lock);
        rc = ops->merge(me->bag, me->buf, len, r->ctx);
        pthread_mutex_unlock(&me->lock);
        if (rc < 0)
            return rc;
        me->local_steals++;
        return 1;
    }
    return 0;
}

/* Wakes one sleeping worker, counting it busy now: the caller is busy, so the rank cannot look
 * passive between the wake and the sleeper's steal. */
static void wake_one(struct run *r, struct worker *me)
{
    pthread_mutex_lock(&r->m);
    for (unsigned k = 1; k < r->nw; k++) {
        struct worker *s = &r->w[(me->index + k) % r->nw];
        if (s->idle) {
            s->idle = false;
            s->hint = me->index;
            r->nidle--;
            atomic_store_explicit(&r->nidle_hint, r->nidle, memory_order_relaxed); /* a hint */
            pthread_cond_signal(&s->cv);
            break;
        }
    }
    pthread_mutex_unlock(&r->m);
}

static int worker_main(void *arg, void **result)
{
    (void)result;
    struct worker *me = arg;
    struct run *r = me->run;
    const weft_glb_ops *ops = r->ops;
    while (going(r)) {
        let_others_in(me);
        pthread_mutex_lock(&me->lock);
        int rc = ops->process(me->bag, r->chunk, me->result, r->ctx);
        pthread_mutex_unlock(&me->lock);
        if (rc < 0) {
            fail(r, rc);
            break;
        }
        if (rc > 0) {
            /* relaxed: a hint; wake_one decides under the mutex */
            if (atomic_load_explicit(&r->nidle_hint, memory_order_relaxed) > 0)
                wake_one(r, me);
            continue;
        }
        rc = local_steal(r, me);
        if (rc < 0) {
            fail(r, rc);
            break;
        }
        if (rc > 0)
            continue;
        pthread_mutex_lock(&r->m);
        if (me->fed) {
            /* Work arrived from another rank after process() found the bag empty: going idle
             * now would leave it in a bag the rank counts as empty. */
            me->fed = false;
            pthread_mutex_unlock(&r->m);
            continue;
        }
        me->idle = true;
        r->nidle++;
        atomic_store_explicit(&r->nidle_hint, r->nidle, memory_order_relaxed); /* a hint */
        if (r->nidle == r->nw)
            pthread_cond_signal(&r->comm); /* the rank is passive: time to steal remotely */
        while (me->idle && going(r))
            pthread_cond_wait(&me->cv, &r->m);
        pthread_mutex_unlock(&r->m);
    }
    return 0;
}

/* Sets the final state and wakes every sleeper. */
static void stop_workers(struct run *r, int state)
{
    pthread_mutex_lock(&r->m);
    /* release: pairs with the acquire in going() */
    atomic_store_explicit(&r->state, state, memory_order_release);
    for (unsigned k = 0; k < r->nw; k++)
        pthread_cond_signal(&r->w[k].cv);
    pthread_mutex_unlock(&r->m);
}

static bool rank_passive(struct run *r)
{
    pthread_mutex_lock(&r->m);
    bool p = r->nidle == r->nw;
    pthread_mutex_unlock(&r->m);
    return p;
}

/* --- the communicator: sending --- */

static int post(struct comm *c, int dest, int tag, void *buf, size_t len)
{
    if (c->nsends == c->capsends) {
        size_t cap = c->capsends ? 2 * c->capsends : 16;
        struct send *s = realloc(c->sends, cap * sizeof *s);
        if (s == NULL) {
            free(buf);
            return -ENOMEM;
        }
        c->sends = s;
        c->capsends = cap;
    }
    struct send *s = &c->sends[c->nsends];
    s->buf = buf;
    MPI_Isend(buf, (int)len, MPI_BYTE, dest, tag, c->comm, &s->req);
    c->nsends++;
    c->sent_to[dest]++;
    return 0;
}

static int post_msg(struct comm *c, int dest, int tag, struct msg m)
{
    struct msg *b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    *b = m;
    return post(c, dest, tag, b, sizeof *b);
}

/* Frees the buffers of completed sends. */
static void reap_sends(struct comm *c)
{
    size_t j = 0;
    for (size_t i = 0; i < c->nsends; i++) {
        int flag = 0;
        MPI_Test(&c->sends[i].req, &flag, MPI_STATUS_IGNORE);
        if (flag)
            free(c->sends[i].buf);
        else
            c->sends[j++] = c->sends[i];
    }
    c->nsends = j;
}

/* Splits work out of the rank's busy workers for rank dest and sends it. 1 when sent, 0 when
 * nobody had work to share, or a negative code. */
static int give(struct run *r, struct comm *c, int dest, int kind)
{
    /* relaxed: a hint; a rank with every worker idle has nothing to split */
    if (atomic_load_explicit(&r->nidle_hint, memory_order_relaxed) == r->nw)
        return 0;
    unsigned char *buf = malloc(sizeof(struct msg) + r->cap);
    if (buf == NULL)
        return -ENOMEM;
    for (unsigned k = 0; k < r->nw; k++) {
        struct worker *v = &r->w[(c->next_victim_worker + k) % r->nw];
        size_t len = 0;
        lock_for_other(v);
        int rc = r->ops->split(v->bag, buf + sizeof(struct msg), r->cap, &len, r->ctx);
        unlock_for_other(v);
        if (rc < 0) {
            free(buf);
            return rc;
        }
        if (len == 0)
            continue;
        c->next_victim_worker = (c->next_victim_worker + k + 1) % r->nw;
        struct msg h = {.kind = kind};
        memcpy(buf, &h, sizeof h);
        c->count++; /* Safra: a basic message sent */
        c->st.work_sent++;
        if (kind == STEAL_LIFELINE)
            c->st.lifeline_pushes++;
        return post(c, dest, TAG_WORK, buf, sizeof(struct msg) + len) == 0 ? 1 : -ENOMEM;
    }
    free(buf);
    return 0;
}

/* --- the communicator: receiving --- */

/* Puts received work in an idle worker's bag (any worker's if none is idle), counting that
 * worker busy before the rank's mutex is let go (the invariant of the essay above). */
static int take_work(struct run *r, const void *bytes, size_t len)
{
    pthread_mutex_lock(&r->m);
    unsigned k = 0;
    while (k < r->nw && !r->w[k].idle)
        k++;
    if (k == r->nw)
        k = 0;
    struct worker *t = &r->w[k];
    /* Merging under m as well: t cannot start, steal or be woken meanwhile. t's bag lock is
     * free when t sleeps; when t is busy, it holds it at most one chunk. */
    lock_for_other(t);
    int rc = r->ops->merge(t->bag, bytes, len, r->ctx);
    unlock_for_other(t);
    if (rc == 0 && !t->idle) {
        t->fed = true; /* t may have found its bag empty already: it must look again */
    } else if (rc == 0) {
        t->idle = false;
        t->hint = k;
        r->nidle--;
        atomic_store_explicit(&r->nidle_hint, r->nidle, memory_order_relaxed); /* a hint */
        pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&r->m);
    return rc;
}

static int handle(struct run *r, struct comm *c, int src, int tag, size_t len)
{
    struct msg h;
    memcpy(&h, c->rbuf, sizeof h);
    c->recv_from[src]++;
    switch (tag) {
    case TAG_STEAL: {
        int rc = give(r, c, src, h.kind);
        if (rc < 0)
            return rc;
        if (rc > 0)
            return 0;
        if (h.kind == STEAL_RANDOM)
            return post_msg(c, src, TAG_NOWORK, (struct msg){0});
        if (!c->thief[src]) {
            c->thief[src] = true;
            c->nthieves++;
        }
        return 0;
    }
    case TAG_WORK:
        c->count--;      /* Safra: a basic message received, */
        c->black = true; /* which blackens the receiver */
        c->st.work_received++;
        if (h.kind == STEAL_LIFELINE) {
            c->asked[src] = false;
        } else {
            c->awaiting = false;
            c->st.steals_won++;
        }
        c->tries = 0;
        c->dormant = false;
        return take_work(r, c->rbuf + sizeof h, len - sizeof h);
    case TAG_NOWORK:
        c->awaiting = false;
        return 0;
    case TAG_TOKEN:
        c->token_here = true;
        c->token_q = h.q;
        c->token_black = h.black != 0;
        return 0;
    case TAG_DONE:
        c->done = true;
        return 0;
    case TAG_ABORT:
        c->aborted = true;
        c->abort_code = h.kind;
        return 0;
    }
    return 0;
}

/* Receives every message that has arrived. Returns how many, or a negative code. */
static int poll_messages(struct run *r, struct comm *c)
{
    int handled = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->comm, &flag, &st);
        if (!flag)
            return handled;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        MPI_Recv(c->rbuf, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, c->comm, MPI_STATUS_IGNORE);
        int rc = handle(r, c, st.MPI_SOURCE, st.MPI_TAG, (size_t)count);
        if (rc < 0)
            return rc;
        handled++;
        if (c->done || c->aborted)
            return handled;
    }
}

/* --- the communicator: stealing and termination --- */

static int random_victim(struct comm *c)
{
    int v = (int)(rng_next(&c->rng) % (uint64_t)(c->n - 1));
    return v >= c->rank ? v + 1 : v;
}

/* One step of a passive rank: a random steal, or the lifelines, or nothing (dormant). */
static int steal_step(struct comm *c)
{
    if (c->awaiting || c->dormant)
        return 0;
    if (c->tries < c->steal_tries) {
        c->tries++;
        c->awaiting = true;
        c->st.steals_sent++;
        return post_msg(c, random_victim(c), TAG_STEAL, (struct msg){.kind = STEAL_RANDOM});
    }
    c->dormant = true;
    for (int i = 0; i < c->nlifelines; i++) {
        int b = c->lifelines[i];
        if (c->asked[b])
            continue;
        c->asked[b] = true;
        c->st.lifelines_sent++;
        int rc = post_msg(c, b, TAG_STEAL, (struct msg){.kind = STEAL_LIFELINE});
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Safra's token, at a passive rank. Returns 1 when it did something. */
static int token_step(struct comm *c)
{
    if (c->rank != 0) {
        if (!c->token_here)
            return 0;
        c->token_here = false;
        c->st.tokens++;
        struct msg t = {.q = c->token_q + c->count, .black = c->token_black || c->black};
        c->black = false;
        int rc = post_msg(c, (c->rank + 1) % c->n, TAG_TOKEN, t);
        return rc < 0 ? rc : 1;
    }
    if (c->token_here) {
        c->token_here = false;
        c->token_out = false;
        c->st.tokens++;
        if (!c->token_black && !c->black && c->token_q + c->count == 0) {
            for (int i = 1; i < c->n; i++) {
                int rc = post_msg(c, i, TAG_DONE, (struct msg){0});
                if (rc < 0)
                    return rc;
            }
            c->done = true;
            return 1;
        }
    }
    if (!c->token_out) {
        c->token_out = true;
        c->black = false;
        int rc = post_msg(c, 1, TAG_TOKEN, (struct msg){0});
        return rc < 0 ? rc : 1;
    }
    return 0;
}

/* Pushes work to the ranks that asked through a lifeline, while there is some to give. */
static int serve_thieves(struct run *r, struct comm *c)
{
    for (int t = 0; t < c->n && c->nthieves > 0; t++) {
        if (!c->thief[t])
            continue;
        int rc = give(r, c, t, STEAL_LIFELINE);
        if (rc <= 0)
            return rc;
        c->thief[t] = false;
        c->nthieves--;
    }
    return 0;
}

/* The communicator's loop: returns 0 on termination, or a negative code (local failure, or
 * -ECANCELED when another rank failed). */
static int communicate(struct run *r, struct comm *c)
{
    int spins = 0;
    int64_t sleep_ns = 0;
    for (;;) {
        int progress = 0;
        if (c->n > 1) {
            int rc = poll_messages(r, c);
            if (rc < 0)
                return rc;
            progress += rc;
        }
        if (c->aborted)
            return -ECANCELED;
        if (c->done)
            return 0;
        if (!going(r))
            return -ECANCELED; /* a worker failed: fail() set RUN_ABORT and the error */

        bool passive = rank_passive(r);
        if (!passive) {
            int rc = serve_thieves(r, c);
            if (rc < 0)
                return rc;
        } else {
            if (c->n == 1)
                return 0; /* alone, passive means finished */
            int rc = steal_step(c);
            if (rc < 0)
                return rc;
            rc = token_step(c);
            if (rc < 0)
                return rc;
            progress += rc;
            if (c->done)
                return 0;
        }
        reap_sends(c);

        if (progress > 0) {
            spins = 0;
            sleep_ns = 0;
            continue;
        }
        if (spins < SPIN_POLLS) {
            spins++;
            continue;
        }
        sleep_ns = sleep_ns == 0 ? FIRST_SLEEP_NS : 2 * sleep_ns;
        if (sleep_ns > c->poll_max_ns)
            sleep_ns = c->poll_max_ns;
        struct timespec ts = deadline_in(sleep_ns);
        pthread_mutex_lock(&r->m);
        /* Busy: the worker that goes idle last, or fails, signals; if that happened since the
         * check above, do not wait for a signal already sent. Passive: only messages can
         * change anything, and the timeout is when to look for them. */
        if (going(r) && (passive || r->nidle != r->nw))
            pthread_cond_timedwait(&r->comm, &r->m, &ts);
        pthread_mutex_unlock(&r->m);
    }
}

/* --- set-up and tear-down --- */

/* Rank h's lifeline buddies: h with one bit flipped, when below n. */
static int lifelines_of(int h, int n, int *out)
{
    int k = 0;
    for (int bit = 1; bit < n; bit <<= 1) {
        int b = h ^ bit;
        if (b < n)
            out[k++] = b;
    }
    return k;
}

static void comm_free(struct comm *c)
{
    free(c->lifelines);
    free(c->asked);
    free(c->thief);
    free(c->sent_to);
    free(c->recv_from);
    free(c->sends);
    free(c->rbuf);
}

/* The communicator's state, all but the duplicate communicator (set once everyone agreed). */
static int comm_init(struct comm *c, const struct run *r, int rank, int nranks,
                     const weft_glb_config *cfg)
{
    memset(c, 0, sizeof *c);
    c->comm = MPI_COMM_NULL;
    c->rank = rank;
    c->n = nranks;
    size_t n = (size_t)c->n;
    c->lifelines = calloc(64, sizeof *c->lifelines);
    c->asked = calloc(n, sizeof *c->asked);
    c->thief = calloc(n, sizeof *c->thief);
    c->sent_to = calloc(n, sizeof *c->sent_to);
    c->recv_from = calloc(n, sizeof *c->recv_from);
    c->rcap = sizeof(struct msg) + r->cap;
    c->rbuf = malloc(c->rcap);
    if (c->lifelines == NULL || c->asked == NULL || c->thief == NULL || c->sent_to == NULL ||
        c->recv_from == NULL || c->rbuf == NULL) {
        comm_free(c);
        return -ENOMEM;
    }
    c->nlifelines = lifelines_of(c->rank, c->n, c->lifelines);
    c->steal_tries = cfg->steal_tries ? cfg->steal_tries : 1;
    c->poll_max_ns = cfg->poll_max_ns > 0 ? cfg->poll_max_ns : DEFAULT_POLL_MAX_NS;
    c->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(c->rank + 1) | 1;
    /* The initial spread, as X10's GLB: 3h+1..3h+3 wait on h as if they had asked it. */
    for (int t = 3 * c->rank + 1; t <= 3 * c->rank + 3 && t < c->n; t++) {
        c->thief[t] = true;
        c->nthieves++;
    }
    if (c->rank > 0)
        c->asked[(c->rank - 1) / 3] = true;
    return 0;
}

static void run_free(struct run *r)
{
    if (r->w != NULL) {
        for (unsigned k = 0; k < r->nw; k++) {
            struct worker *w = &r->w[k];
            if (w->bag != NULL)
                r->ops->bag_destroy(w->bag, r->ctx);
            free(w->buf);
            free(w->result);
            pthread_mutex_destroy(&w->lock);
            pthread_cond_destroy(&w->cv);
        }
        free(r->w);
    }
    pthread_cond_destroy(&r->comm);
    pthread_mutex_destroy(&r->m);
}

/* Everything local: workers' bags, buffers and results, and the seed. */
static int run_init(struct run *r, weft_pool *pool, const weft_glb_ops *ops,
                    const weft_glb_config *cfg, void *ctx, int rank, int nranks)
{
    memset(r, 0, sizeof *r);
    r->ops = ops;
    r->ctx = ctx;
    r->chunk = cfg->chunk ? cfg->chunk : DEFAULT_CHUNK;
    r->cap = cfg->max_steal_bytes ? cfg->max_steal_bytes : DEFAULT_STEAL_BYTES;
    r->nw = weft_pool_size(pool);
    atomic_init(&r->state, RUN_GOING);
    atomic_init(&r->nidle_hint, 0);
    pthread_mutex_init(&r->m, NULL);
    if (cond_init_monotonic(&r->comm) != 0) {
        pthread_mutex_destroy(&r->m);
        return -ENOMEM;
    }
    r->w = aligned_alloc(_Alignof(struct worker), r->nw * sizeof *r->w);
    if (r->w == NULL) {
        run_free(r);
        return -ENOMEM;
    }
    memset(r->w, 0, r->nw * sizeof *r->w);
    size_t result_bytes = (ops->result_size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    int rc = 0;
    for (unsigned k = 0; k < r->nw; k++) {
        struct worker *w = &r->w[k];
        pthread_mutex_init(&w->lock, NULL);
        atomic_init(&w->waiters, 0);
        pthread_cond_init(&w->cv, NULL);
        w->run = r;
        w->index = k;
        w->hint = k;
        w->rng = (0x9e3779b97f4a7c15ULL * (uint64_t)(rank + 1)) ^ (0xbf58476d1ce4e5b9ULL * (k + 1));
        w->rng |= 1;
        w->buf = malloc(r->cap);
        /* Whole lines: process writes it at every unit, beside another worker's. */
        w->result = aligned_alloc(CACHE_LINE, result_bytes);
        if (rc == 0 && (w->buf == NULL || w->result == NULL))
            rc = -ENOMEM;
        if (w->result != NULL)
            memcpy(w->result, ops->identity, ops->result_size);
        if (rc == 0)
            rc = ops->bag_create(ctx, &w->bag);
        if (rc > 0)
            rc = -EINVAL;
    }
    if (rc == 0)
        rc = ops->seed(r->w[0].bag, rank, nranks, ctx);
    if (rc > 0)
        rc = -EINVAL;
    if (rc != 0)
        run_free(r);
    return rc;
}

/* The level this run needs: only the calling thread calls MPI during it. */
static bool thread_level_ok(void)
{
    int inited = 0, finalized = 0, provided = MPI_THREAD_SINGLE;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return false;
    MPI_Query_thread(&provided);
    if (provided >= MPI_THREAD_SERIALIZED)
        return true;
    int main_thread = 0;
    MPI_Is_thread_main(&main_thread);
    return provided == MPI_THREAD_FUNNELED && main_thread;
}

/* Receives and drops what peers sent that was not received yet (control messages in flight
 * at DONE), so that the duplicate communicator is left empty. */
static void drain(struct comm *c)
{
    uint64_t *expect = calloc((size_t)c->n, sizeof *expect);
    if (expect == NULL)
        return; /* leaves messages in a communicator about to be freed: harmless, if untidy */
    MPI_Alltoall(c->sent_to, 1, MPI_UINT64_T, expect, 1, MPI_UINT64_T, c->comm);
    for (int s = 0; s < c->n; s++) {
        while (c->recv_from[s] < expect[s]) {
            MPI_Status st;
            MPI_Probe(s, MPI_ANY_TAG, c->comm, &st);
            int count = 0;
            MPI_Get_count(&st, MPI_BYTE, &count);
            MPI_Recv(c->rbuf, count, MPI_BYTE, s, st.MPI_TAG, c->comm, MPI_STATUS_IGNORE);
            c->recv_from[s]++;
        }
    }
    free(expect);
    for (size_t i = 0; i < c->nsends; i++) {
        MPI_Wait(&c->sends[i].req, MPI_STATUS_IGNORE);
        free(c->sends[i].buf);
    }
    c->nsends = 0;
}

/* After a failure: tries for a while to finish the sends, dropping what arrives meanwhile so
 * that peers' sends to this rank can finish too; what MPI still holds after that is left to it. */
static void abandon(struct comm *c)
{
    int64_t deadline = now_ns() + ABORT_PATIENCE_NS;
    while (c->nsends > 0 && now_ns() < deadline) {
        for (;;) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->comm, &flag, &st);
            if (!flag)
                break;
            int count = 0;
            MPI_Get_count(&st, MPI_BYTE, &count);
            MPI_Recv(c->rbuf, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, c->comm,
                     MPI_STATUS_IGNORE);
        }
        reap_sends(c);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < c->nsends; i++)
        MPI_Request_free(&c->sends[i].req); /* the buffer stays: MPI may still read it */
    c->nsends = 0;
}

static void wait_workers(struct run *r)
{
    for (unsigned k = 0; k < r->nw; k++) {
        if (r->w[k].task == NULL)
            continue;
        weft_future_wait(r->w[k].task, WEFT_FOREVER);
        weft_future_release(r->w[k].task);
        r->w[k].task = NULL;
    }
}

/* Folds the workers' results, then every rank's, into out. */
static int reduce(struct run *r, struct comm *c, void *out)
{
    size_t size = r->ops->result_size;
    unsigned char *all = malloc(size * (size_t)c->n);
    unsigned char *mine = malloc(size);
    int ok = all != NULL && mine != NULL;
    int all_ok = 0;
    /* Every rank must enter the collective below, so agree first on whether all can. */
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, c->comm);
    if (!all_ok) {
        free(all);
        free(mine);
        return ok ? -ECANCELED : -ENOMEM;
    }
    memcpy(mine, r->w[0].result, size);
    for (unsigned k = 1; k < r->nw; k++)
        r->ops->combine(mine, r->w[k].result, r->ctx);
    MPI_Allgather(mine, (int)size, MPI_BYTE, all, (int)size, MPI_BYTE, c->comm);
    memcpy(out, all, size);
    for (int i = 1; i < c->n; i++)
        r->ops->combine(out, all + (size_t)i * size, r->ctx);
    free(all);
    free(mine);
    return 0;
}

/* --- the API --- */

void weft_glb_config_init(weft_glb_config *cfg)
{
    if (cfg != NULL)
        memset(cfg, 0, sizeof *cfg);
}

static bool ops_ok(const weft_glb_ops *ops)
{
    return ops != NULL && ops->bag_create != NULL && ops->bag_destroy != NULL &&
           ops->seed != NULL && ops->process != NULL && ops->split != NULL && ops->merge != NULL &&
           ops->combine != NULL && ops->identity != NULL && ops->result_size > 0 &&
           ops->result_size <= WEFT_GLB_MAX_RESULT;
}

int weft_glb_run(weft_pool *pool, MPI_Comm comm, const weft_glb_ops *ops,
                 const weft_glb_config *cfg, void *ctx, void *result, weft_glb_stats *stats)
{
    if (pool == NULL || !ops_ok(ops) || result == NULL || comm == MPI_COMM_NULL)
        return -EINVAL;
    if (cfg != NULL && cfg->poll_max_ns < 0)
        return -EINVAL;
    if (!thread_level_ok())
        return -ENOTSUP;
    if (weft_worker_index() >= 0)
        return -EDEADLK;
    weft_glb_config defaults;
    weft_glb_config_init(&defaults);
    if (cfg == NULL)
        cfg = &defaults;

    int rank = 0, nranks = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    int64_t t0 = now_ns();

    /* Local set-up, then agreement: a rank that failed must not leave the others waiting in
     * the collectives that follow. */
    struct run r;
    struct comm c;
    int rc =
        weft_pool_is_shutdown(pool) ? -ESHUTDOWN : run_init(&r, pool, ops, cfg, ctx, rank, nranks);
    if (rc == 0) {
        rc = comm_init(&c, &r, rank, nranks, cfg);
        if (rc != 0)
            run_free(&r);
    }
    int worst = 0;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, comm);
    if (rc != 0)
        return rc;
    if (worst != 0) {
        comm_free(&c);
        run_free(&r);
        return -ECANCELED;
    }

    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Comm_dup(comm, &dup);
    c.comm = dup;
    for (unsigned k = 0; k < r.nw && rc == 0; k++)
        rc = weft_submit(pool, worker_main, &r.w[k], &r.w[k].task);
    if (rc != 0)
        fail(&r, rc); /* from here on, a failure goes through the abort protocol */
    rc = communicate(&r, &c);

    if (rc == 0) {
        stop_workers(&r, RUN_DONE);
        wait_workers(&r);
        drain(&c);
        rc = reduce(&r, &c, result);
        MPI_Comm_free(&dup);
    } else {
        pthread_mutex_lock(&r.m);
        int local = r.error;
        pthread_mutex_unlock(&r.m);
        if (local != 0)
            rc = local;
        stop_workers(&r, RUN_ABORT);
        wait_workers(&r);
        if (!c.aborted) {
            for (int i = 0; i < c.n; i++) {
                if (i != c.rank)
                    post_msg(&c, i, TAG_ABORT, (struct msg){.kind = rc});
            }
        }
        abandon(&c);
        /* dup is not freed: peers may still be sending to it. */
    }

    if (stats != NULL) {
        *stats = c.st;
        for (unsigned k = 0; k < r.nw; k++)
            stats->local_steals += r.w[k].local_steals;
        stats->time_ns = now_ns() - t0;
    }
    comm_free(&c);
    run_free(&r);
    return rc;
}
