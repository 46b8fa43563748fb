/* SPDX-License-Identifier: MIT */
/*
 * Lending workers: how a wait on a worker keeps the pool's parallelism without running
 * unrelated tasks on the waiting stack.
 *
 * A worker (an index, a deque, statistics) is held by one thread at a time. A task that must
 * block in a wait (worker.c, weft__help) first runs only what its wait depends on. If it still
 * has to block, its thread lends the worker: it gives it to a thread that lent it earlier and
 * whose wait is over, else to an idle spare thread, else to a new spare (at most
 * WEFT_MAX_SPARES per pool), and then sleeps on its own futex word. The thread holding the
 * worker runs the pool's work as usual. When the wait is over, the lender asks for its worker
 * back (want_back) and unparks it; the holder hands it back at its next task boundary, when
 * nothing of its own is on its stack, and becomes an idle spare. So a task always resumes on
 * its own thread and with its own worker index, and two threads never run tasks under one
 * index at once.
 *
 * Why this cannot deadlock where helping could: a blocked thread holds no worker, so the work
 * its wait depends on can always run somewhere; and the only tasks run on a waiting stack are
 * those its wait depends on (the awaited task itself, or frames of a stolen join's subtree),
 * which cannot wait for anything below them on that stack without a cycle of waits.
 *
 * Past WEFT_MAX_SPARES, or if a thread cannot start, the wait keeps its worker and blocks: the
 * pool runs with one worker fewer until it returns.
 *
 * Everything here is under pool->lend.mu, a slow path taken only by waits that block. The
 * futex words only wake: every sleeper re-checks its condition under the mutex or through the
 * wait's own ready().
 */
#include "worker.h"

#include "alloc.h"
#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

WEFT_TLS struct weft__thread *weft__thr;

int weft__lend_init(weft_pool *pool)
{
    if (pthread_mutex_init(&pool->lend.mu, NULL) != 0)
        return -ENOMEM;
    weft__list_init(&pool->lend.idle);
    pool->lend.extra = NULL;
    pool->lend.nextra = 0;
    pool->lend.closing = false;
    return 0;
}

/* Frees a thread record, a worker's own or a spare's: both come from the pool's allocator. */
static void free_thread(struct weft__thread *t)
{
    weft__mem_free(&t->pool->mem, t);
}

void weft__lend_destroy(weft_pool *pool, bool forked)
{
    struct weft__thread *t = pool->lend.extra;
    while (t != NULL) {
        struct weft__thread *next = t->extra;
        if (!forked && !t->joining)
            pthread_join(t->thread, NULL);
        free_thread(t);
        t = next;
    }
    pool->lend.extra = NULL;
    if (!forked) /* in a fork() child, a vanished thread may have held it */
        pthread_mutex_destroy(&pool->lend.mu);
}

/* Under mu: takes t off the list of the pool's threads. */
static void unlink_thread(weft_pool *pool, struct weft__thread *t)
{
    for (struct weft__thread **p = &pool->lend.extra; *p != NULL; p = &(*p)->extra) {
        if (*p == t) {
            *p = t->extra;
            break;
        }
    }
    if (!t->own)
        pool->lend.nextra--;
}

void weft__lend_join(weft_pool *pool)
{
    /* Threads are added at the head while tasks still run (spares): claim one at a time. A
     * record claimed by a reap is joined by it (resize.c; a resize from a task that runs now). */
    for (;;) {
        struct weft__thread *t;
        pthread_mutex_lock(&pool->lend.mu);
        for (t = pool->lend.extra; t != NULL && t->joining; t = t->extra)
            ;
        if (t != NULL)
            t->joining = true;
        pthread_mutex_unlock(&pool->lend.mu);
        if (t == NULL)
            return;
        pthread_join(t->thread, NULL);
    }
}

void weft__lend_reap(weft_pool *pool)
{
    struct weft__thread *gone = NULL;
    pthread_mutex_lock(&pool->lend.mu);
    for (struct weft__thread *t = pool->lend.extra, *next; t != NULL; t = next) {
        next = t->extra;
        /* acquire: pairs with the release in weft__thread_main, after which the thread touches
         * nothing of the pool */
        if (!t->joining && ld_acquire(&t->dead) != 0) {
            unlink_thread(pool, t);
            t->joining = true;
            t->extra = gone;
            gone = t;
        }
    }
    pthread_mutex_unlock(&pool->lend.mu);
    while (gone != NULL) {
        struct weft__thread *next = gone->extra;
        pthread_join(gone->thread, NULL);
        free_thread(gone);
        gone = next;
    }
}

void weft__thread_wake(struct weft__thread *t)
{
    /* release: pairs with the acquire load of the word before the sleeper re-checks */
    add_release(&t->wake, 1);
    weft__futex_wake(&t->wake, 1);
}

/* Under mu: t is to hold w. */
static void grant(struct weft__thread *t, struct weft__worker *w)
{
    t->slot = w;
    t->granted = true;
    if (w != NULL)
        w->holder = t;
    weft__thread_wake(t);
}

void weft__lend_admit(weft_pool *pool, struct weft__thread *fresh, bool go)
{
    pthread_mutex_lock(&pool->lend.mu);
    while (fresh != NULL) {
        struct weft__thread *t = fresh;
        fresh = t->extra;
        if (go) {
            t->extra = pool->lend.extra;
            pool->lend.extra = t;
        }
        grant(t, go ? weft__worker_at(pool, t->first) : NULL);
    }
    pthread_mutex_unlock(&pool->lend.mu);
}

void weft__lend_release(struct weft__worker *w)
{
    pthread_mutex_lock(&w->pool->lend.mu);
    WEFT_ASSERT(weft__list_empty(&w->lenders));
    w->holder = NULL;
    pthread_mutex_unlock(&w->pool->lend.mu);
}

struct weft__worker *weft__lend_await(struct weft__thread *me)
{
    weft_pool *pool = me->pool;
    for (;;) {
        uint32_t key = ld_acquire(&me->wake); /* acquire: pairs with weft__thread_wake */
        pthread_mutex_lock(&pool->lend.mu);
        if (me->granted) {
            me->granted = false;
            struct weft__worker *w = me->slot;
            pthread_mutex_unlock(&pool->lend.mu);
            return w;
        }
        pthread_mutex_unlock(&pool->lend.mu);
        weft__futex_wait(&me->wake, key, -1);
    }
}

/* Starts spare thread t, which waits for its grant (weft__thread_main). A spare is best
 * effort: if one cannot be made, a wait keeps its worker (see the top of the file), and no
 * caller is told. So its record and thread bypass alloc.c's wrappers, whose fault injection
 * expects every failure to reach a caller (tests/test_fault.c). */
static int start_spare(weft_pool *pool, struct weft__thread *t)
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    int rc = pthread_attr_setstacksize(&attr, pool->stack_size) == 0 ? 0 : -EINVAL;
    /* The caller is a worker thread: the new one inherits its mask, every asynchronous signal
     * blocked (pool.c, start_workers). */
    if (rc == 0)
        rc = pthread_create(&t->thread, &attr, weft__thread_main, t) == 0 ? 0 : -EAGAIN;
    pthread_attr_destroy(&attr);
    return rc;
}

void weft__lend_reserve(weft_pool *pool)
{
    pthread_mutex_lock(&pool->lend.mu);
    bool want = weft__list_empty(&pool->lend.idle) && !pool->lend.closing &&
                pool->lend.nextra < WEFT_MAX_SPARES;
    struct weft__thread *t =
        want ? weft__mem_alloc_quiet(&pool->mem, 0, sizeof(*t)) : NULL; /* see start_spare */
    if (t != NULL) {
        t->pool = pool;
        t->reserve = true;
        weft__list_init(&t->link);
        t->extra = pool->lend.extra;
        pool->lend.extra = t;
        pool->lend.nextra++;
    }
    pthread_mutex_unlock(&pool->lend.mu);
    if (t == NULL)
        return;
    if (start_spare(pool, t) == 0) {
        /* Wait until it is idle: called before a task runs, this keeps a thread that is still
         * starting out of that task's way (a fork() in the task would copy a half-made thread's
         * locks into the child, a sanitizer's included). acquire: pairs with the release in
         * weft__lend_enlist. */
        while (ld_acquire(&t->enlisted) == 0)
            weft__futex_wait(&t->enlisted, 0, -1);
        return;
    }
    pthread_mutex_lock(&pool->lend.mu);
    unlink_thread(pool, t); /* others may have been added at the head since */
    pthread_mutex_unlock(&pool->lend.mu);
    weft__mem_free(&pool->mem, t);
}

bool weft__lend_enlist(struct weft__thread *me)
{
    weft_pool *pool = me->pool;
    pthread_mutex_lock(&pool->lend.mu);
    bool closing = pool->lend.closing;
    if (!closing)
        weft__list_push_head(&pool->lend.idle, &me->link);
    pthread_mutex_unlock(&pool->lend.mu);
    st_release(&me->enlisted, 1); /* release: pairs with the acquire in weft__lend_reserve */
    weft__futex_wake(&me->enlisted, 1);
    return !closing;
}

/* Under mu: the first lender of w that waits to get it back, taken off the list, or NULL. */
static struct weft__thread *take_returning(struct weft__worker *w)
{
    for (struct weft__list *l = w->lenders.next; l != &w->lenders; l = l->next) {
        struct weft__thread *t = weft__container_of(l, struct weft__thread, link);
        if (t->back) {
            weft__list_remove(l);
            t->back = false;
            /* release: see weft__lend_reclaim; the count is only written under mu */
            st_release(&w->want_back, ld_relaxed(&w->want_back) - 1);
            return t;
        }
    }
    return NULL;
}

bool weft__lend(struct weft__worker *w, struct weft__thread *me)
{
    weft_pool *pool = w->pool;
    struct weft__thread *to = NULL, *fresh = NULL;
    pthread_mutex_lock(&pool->lend.mu);
    WEFT_ASSERT(w->holder == me);
    to = take_returning(w);
    if (to == NULL) {
        struct weft__list *l = weft__list_first(&pool->lend.idle);
        if (l != NULL) {
            weft__list_remove(l);
            to = weft__container_of(l, struct weft__thread, link);
        }
    }
    if (to == NULL && !pool->lend.closing && pool->lend.nextra < WEFT_MAX_SPARES) {
        fresh = weft__mem_alloc_quiet(&pool->mem, 0, sizeof(*fresh)); /* see start_spare */
        if (fresh != NULL) {
            fresh->pool = pool;
            fresh->first = w->index;
            weft__list_init(&fresh->link);
            fresh->extra = pool->lend.extra;
            pool->lend.extra = fresh;
            pool->lend.nextra++;
            to = fresh;
        }
    }
    if (to == NULL) {
        pthread_mutex_unlock(&pool->lend.mu);
        return false;
    }
    me->back = false;
    weft__list_push_head(&w->lenders, &me->link);
    /* release: a thread that steals from w's deque and then reads the epoch (join.c) sees it
     * bumped if it took anything the next holder pushed; that holder acquires w through mu */
    add_release(&w->epoch, 1);
    WEFT_COUNT(w, lent, 1);
    grant(to, w);
    pthread_mutex_unlock(&pool->lend.mu);
    if (fresh == NULL || start_spare(pool, fresh) == 0)
        return true;
    /* The spare could not start: take w back. Nobody else knows of the record, but other
     * threads may have been added at the head of the list since. */
    pthread_mutex_lock(&pool->lend.mu);
    unlink_thread(pool, fresh);
    weft__list_remove(&me->link);
    w->holder = me;
    pthread_mutex_unlock(&pool->lend.mu);
    weft__mem_free(&pool->mem, fresh);
    return false;
}

void weft__lend_reclaim(struct weft__worker *w, struct weft__thread *me)
{
    weft_pool *pool = w->pool;
    pthread_mutex_lock(&pool->lend.mu);
    if (!me->granted) {
        me->back = true;
        /* release: pairs with the acquire in weft__lend_wanted; under mu, so a plain
         * read-modify-write */
        st_release(&w->want_back, ld_relaxed(&w->want_back) + 1);
    }
    pthread_mutex_unlock(&pool->lend.mu);
    /* The holder may be parked with nothing to do: make it look (worker.c, run_worker). */
    weft__park_unpark(&pool->park, w->index);
    struct weft__worker *back = weft__lend_await(me);
    WEFT_ASSERT(back == w);
    (void)back;
}

bool weft__lend_hand_back(struct weft__worker *w, struct weft__thread *me)
{
    weft_pool *pool = w->pool;
    pthread_mutex_lock(&pool->lend.mu);
    WEFT_ASSERT(w->holder == me);
    struct weft__thread *to = take_returning(w);
    if (to != NULL) {
        weft__list_push_head(&pool->lend.idle, &me->link);
        grant(to, w);
    }
    pthread_mutex_unlock(&pool->lend.mu);
    return to != NULL;
}

void weft__lend_close(weft_pool *pool)
{
    pthread_mutex_lock(&pool->lend.mu);
    pool->lend.closing = true;
    struct weft__list *l;
    while ((l = weft__list_first(&pool->lend.idle)) != NULL) {
        weft__list_remove(l);
        grant(weft__container_of(l, struct weft__thread, link), NULL);
    }
    pthread_mutex_unlock(&pool->lend.mu);
}
