/* SPDX-License-Identifier: MIT */
/*
 * Completion sets: as_completed and open-ended sets with a pollable descriptor.
 *
 * Each future added gets an entry with a node on the future. While the future runs, its entry
 * is on the `pending` list; its node, on firing, moves it to the tail of the `ready` FIFO under
 * the set's mutex, so futures are handed out in the order they finished. The set holds one
 * reference per entry; weft_completion_next passes it to the caller with the future.
 *
 * Wake-ups: threads outside any pool sleep on the condition variable; helping workers put a
 * small record on the `helpers` list before they park, and every arrival unparks them.
 *
 * The descriptor is an eventfd used as a flag: its counter is 1 while futures are ready, else
 * 0. It changes only when `ready` goes between empty and non-empty, so a loop that takes a
 * batch of futures pays two system calls for the batch, not two per future:
 *  - The arrival that makes `ready` non-empty sets `fd_set` under the mutex, counts itself in
 *    `writing`, and writes 1 after unlocking. Not under the mutex: the write wakes the loop
 *    thread, which often preempts the writer on its core and would then block on the mutex
 *    the writer still held (two more context switches per batch).
 *  - The hand-out that empties `ready` reads the counter back to 0, under the mutex. If the
 *    arrival's write has not landed yet (the read finds 0), it waits for it with poll and
 *    reads then, so the descriptor never stays readable with nothing ready.
 *  - Before next returns with futures still ready, it makes sure the write has landed (a poll
 *    only while `writing` says one may be in flight): a caller that polls after next sees the
 *    futures it left behind.
 * So the descriptor is readable exactly while `ready` is non-empty, an arrival counting from
 * the moment its write lands (one system call after its future finished), as it counted
 * before from the moment its writer released the mutex. At most one write is in flight:
 * `fd_set` stays up until the hand-out that empties `ready` has read that write back.
 * Destruction waits for `writing` to reach 0, since a writer touches c after the mutex.
 *
 * Destruction takes the pending entries off their futures. An entry whose node the finisher has
 * already detached is firing: its fire() sees `closing`, leaves the entry alone and sets `fired`
 * before unlocking, and destroy waits for that, then takes the mutex once more so that no
 * fire() is still inside it when it is destroyed.
 */
#include "worker.h"

#include "alloc.h"
#include "cache.h"
#include "platform.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct centry {
    struct weft__fnode node;
    weft_future *f;
    weft_completion *c;
    struct weft__list link; /* on the set's pending list, then on its ready FIFO */
};

struct helper {
    struct weft__thread *t;
    struct weft__list link; /* on the set's helpers list */
};

struct weft_completion {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct weft__list pending; /* entries whose future runs; under mu */
    struct weft__list ready;   /* entries whose future finished, oldest first; under mu */
    _Atomic size_t npending;   /* written under mu; read without it by helpers */
    _Atomic size_t nready;     /* likewise */
    struct weft__list helpers; /* helping workers about to park; under mu */
    unsigned sleepers;         /* threads in cond_wait; under mu */
    bool closing;              /* under mu */
    bool fd_set;               /* the descriptor is, or is about to be, readable; under mu */
    int efd;                   /* -1 until asked for; under mu */
    _Atomic unsigned writing;  /* arrivals between deciding to write efd and having written */
};

/* Under mu: e's future has finished; move it from pending to ready. Returns the descriptor
 * the caller must signal with signal_ready once it has released the mutex, or -1. */
static int make_ready(weft_completion *c, struct centry *e)
{
    int signal = -1;
    if (c->efd >= 0 && !c->fd_set) {
        c->fd_set = true;
        signal = c->efd;
        /* relaxed: under mu, which next and destroy hold when they read it; the decrement in
         * signal_ready is the release that matters */
        add_relaxed(&c->writing, 1);
    }
    weft__list_remove(&e->link);
    weft__list_push_tail(&c->ready, &e->link);
    /* release: pairs with the acquire in ready_or_empty (helpers poll without the mutex) */
    st_release(&c->nready, ld_relaxed(&c->nready) + 1);
    st_release(&c->npending, ld_relaxed(&c->npending) - 1);
    if (c->sleepers > 0)
        pthread_cond_broadcast(&c->cv);
    for (struct weft__list *l = c->helpers.next; l != &c->helpers; l = l->next)
        weft__thread_wake(weft__container_of(l, struct helper, link)->t);
    return signal;
}

/* After make_ready, outside the mutex: makes the descriptor readable. The last touch of c. */
static void signal_ready(weft_completion *c, int fd)
{
    if (fd < 0)
        return;
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof(one));
    (void)r; /* cannot fail: the counter goes from 0 to 1 */
    /* release: pairs with the acquire loads in fd_landed and destroy, which then know the
     * write has been done */
    sub_release(&c->writing, 1);
}

/* Waits, under mu, until the descriptor is readable: fd_set is up, so its write is done or
 * under way. Called only while `writing` is not 0, which is rare: the writer is between its
 * unlock and its write, or has just written and not yet counted down. */
static void fd_wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
}

/* Under mu, with fd_set up: whether its write is done. */
static bool fd_landed(weft_completion *c)
{
    /* acquire: pairs with the release in signal_ready */
    if (ld_acquire(&c->writing) == 0)
        return true;
    struct pollfd p = {.fd = c->efd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* Under mu, after a hand-out: brings the descriptor in line with `ready`. */
static void fd_sync(weft_completion *c)
{
    if (c->efd < 0 || !c->fd_set)
        return;
    if (!weft__list_empty(&c->ready)) {
        if (!fd_landed(c))
            fd_wait_readable(c->efd);
        return;
    }
    uint64_t v;
    while (read(c->efd, &v, sizeof(v)) < 0) /* resets the counter to 0 */
        fd_wait_readable(c->efd);           /* EAGAIN: the arrival's write is still to come */
    c->fd_set = false;
}

static void entry_fire(struct weft__fnode *n, weft_future *f)
{
    (void)f;
    struct centry *e = weft__container_of(n, struct centry, node);
    weft_completion *c = e->c;
    int fd = -1;
    pthread_mutex_lock(&c->mu);
    if (c->closing)
        weft__fnode_fired(n); /* destroy owns e from here on */
    else
        fd = make_ready(c, e);
    pthread_mutex_unlock(&c->mu);
    signal_ready(c, fd); /* destroy waits for it: see there */
}

int weft_completion_create(weft_completion **out)
{
    if (out == NULL)
        return -EINVAL;
    weft_completion *c = weft__malloc(sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    weft__cond_init_monotonic(&c->cv);
    pthread_mutex_init(&c->mu, NULL);
    weft__list_init(&c->pending);
    weft__list_init(&c->ready);
    atomic_init(&c->npending, 0);
    atomic_init(&c->nready, 0);
    weft__list_init(&c->helpers);
    c->sleepers = 0;
    c->closing = false;
    c->fd_set = false;
    c->efd = -1;
    atomic_init(&c->writing, 0);
    *out = c;
    return 0;
}

/* Puts f on c with entry e; f's reference for the set is already counted. */
static void add_entry(weft_completion *c, struct centry *e, weft_future *f)
{
    e->f = f;
    e->c = c;
    e->node.fire = entry_fire;
    pthread_mutex_lock(&c->mu);
    weft__list_push_head(&c->pending, &e->link);
    st_release(&c->npending, ld_relaxed(&c->npending) + 1); /* see make_ready */
    pthread_mutex_unlock(&c->mu);
    if (!weft__future_add_node(f, &e->node)) {
        pthread_mutex_lock(&c->mu);
        int fd = make_ready(c, e);
        pthread_mutex_unlock(&c->mu);
        signal_ready(c, fd);
    }
}

int weft_completion_add(weft_completion *c, weft_future *f)
{
    if (c == NULL || f == NULL)
        return -EINVAL;
    _Static_assert(sizeof(struct centry) <= WEFT_BLOCK_SIZE, "completion entry too big");
    struct centry *e = weft__block_alloc();
    if (e == NULL)
        return -ENOMEM;
    weft_future_retain(f);
    add_entry(c, e, f);
    return 0;
}

int weft_completion_submit(weft_completion *c, weft_pool *pool, weft_fn fn, void *arg)
{
    if (c == NULL || pool == NULL || fn == NULL)
        return -EINVAL;
    struct centry *e = weft__block_alloc(); /* first: once submitted, nothing may fail */
    if (e == NULL)
        return -ENOMEM;
    weft_future *f;
    int rc = weft_submit(pool, fn, arg, &f);
    if (rc != 0) {
        weft__block_free(e);
        return rc;
    }
    add_entry(c, e, f); /* the set takes the caller's reference from weft_submit */
    return 0;
}

int weft_completion_submit_group(weft_completion *c, weft_group *g, weft_fn fn, void *arg)
{
    if (c == NULL || g == NULL || fn == NULL)
        return -EINVAL;
    struct centry *e = weft__block_alloc(); /* first, as in weft_completion_submit */
    if (e == NULL)
        return -ENOMEM;
    weft_future *f;
    int rc = weft_group_submit(g, fn, arg, &f);
    if (rc != 0) {
        weft__block_free(e);
        return rc;
    }
    add_entry(c, e, f); /* the set takes the reference weft_group_submit gave */
    return 0;
}

int weft_as_completed(weft_future *const fs[], size_t n, weft_completion **out)
{
    if (out == NULL || (n > 0 && fs == NULL) || weft__any_null(fs, n))
        return -EINVAL;
    weft_completion *c;
    int rc = weft_completion_create(&c);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = weft_completion_add(c, fs[i]);
        if (rc != 0)
            weft_completion_destroy(c);
    }
    if (rc == 0)
        *out = c;
    return rc;
}

/* --- taking futures out --- */

static bool ready_or_empty(void *ctx)
{
    weft_completion *c = ctx;
    /* acquire: pairs with the release stores in make_ready and add */
    return ld_acquire(&c->nready) > 0 || ld_acquire(&c->npending) == 0;
}

struct help_ctx {
    weft_completion *c;
    struct helper h;
    bool scanned; /* find() has looked at the pending entries */
};

static bool help_ready(void *ctx)
{
    return ready_or_empty(((struct help_ctx *)ctx)->c);
}

/* A pending entry's task that has not started, oldest first, run here. The candidate is
 * chosen under the set's mutex and claimed after it: a claim may cancel the task (a CANCEL
 * shutdown has begun) and so fire its nodes, this set's among them, which take the mutex. */
static struct weft__task *help_find(void *ctx, struct weft__worker *w)
{
    struct help_ctx *hc = ctx;
    if (hc->scanned)
        return NULL;
    hc->scanned = true;
    weft_completion *c = hc->c;
    weft_future *f = NULL;
    pthread_mutex_lock(&c->mu);
    for (struct weft__list *l = c->pending.prev; l != &c->pending; l = l->prev) {
        weft_future *g = weft__container_of(l, struct centry, link)->f;
        /* relaxed: a hint; weft__claim decides */
        if (weft__future_is_task(g) && g->pool == w->pool &&
            (ld_relaxed(&g->state) & WEFT_FS_STATE_MASK) == WEFT_PENDING) {
            f = g;
            weft_future_retain(f); /* the entry may go once the mutex is released */
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (f == NULL)
        return NULL;
    struct weft__task *t = weft__claim(w, f);
    if (t != NULL)
        hc->scanned = false; /* more may follow once this one has run */
    weft_future_release(f);  /* the claim holds its own reference, or the queue's */
    return t;
}

static bool help_arm(void *ctx, struct weft__thread *t)
{
    struct help_ctx *hc = ctx;
    weft_completion *c = hc->c;
    pthread_mutex_lock(&c->mu);
    bool sleep = !ready_or_empty(c);
    if (sleep) {
        hc->h.t = t;
        weft__list_push_head(&c->helpers, &hc->h.link);
    }
    pthread_mutex_unlock(&c->mu);
    return sleep;
}

static void help_disarm(void *ctx, struct weft__thread *t)
{
    (void)t;
    struct help_ctx *hc = ctx;
    weft_completion *c = hc->c;
    pthread_mutex_lock(&c->mu);
    if (!weft__list_empty(&hc->h.link)) /* armed: on the list */
        weft__list_remove(&hc->h.link);
    pthread_mutex_unlock(&c->mu);
}

static const struct weft__help_ops help_ops = {help_ready, help_find, help_arm, help_disarm};

int weft_completion_next(weft_completion *c, int64_t timeout_ns, weft_future **f)
{
    if (c == NULL || f == NULL || !weft__timeout_ok(timeout_ns))
        return -EINVAL;
    int64_t deadline = weft__deadline(timeout_ns);
    struct timespec ts = weft__timespec(deadline >= 0 ? deadline : 0);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        struct weft__list *first = weft__list_first(&c->ready);
        if (first != NULL) {
            struct centry *e = weft__container_of(first, struct centry, link);
            weft__list_remove(first);
            st_release(&c->nready, ld_relaxed(&c->nready) - 1); /* see make_ready */
            fd_sync(c);
            pthread_mutex_unlock(&c->mu);
            *f = e->f;
            weft__block_free(e);
            weft__ws_after_wait(*f); /* work and span: the caller goes on after it */
            return 0;
        }
        if (ld_relaxed(&c->npending) == 0) { /* relaxed: under mu */
            pthread_mutex_unlock(&c->mu);
            return -ENOENT;
        }
        if (timeout_ns == 0 || (deadline >= 0 && weft__now_ns() >= deadline)) {
            pthread_mutex_unlock(&c->mu);
            return -ETIMEDOUT;
        }
        struct weft__worker *w = weft__me();
        if (w != NULL) {
            pthread_mutex_unlock(&c->mu);
            struct help_ctx hc = {.c = c};
            weft__list_init(&hc.h.link);
            int r = weft__help(w, &help_ops, &hc, deadline);
            pthread_mutex_lock(&c->mu);
            if (r == -ETIMEDOUT && weft__list_empty(&c->ready)) {
                pthread_mutex_unlock(&c->mu);
                return -ETIMEDOUT;
            }
            continue;
        }
        c->sleepers++;
        int r = deadline < 0 ? pthread_cond_wait(&c->cv, &c->mu)
                             : pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        c->sleepers--;
        (void)r; /* the loop re-checks, including the deadline */
    }
}

int weft_completion_fd(const weft_completion *cc)
{
    if (cc == NULL)
        return -EINVAL;
    weft_completion *c = (weft_completion *)cc; /* the descriptor is made on first request */
    pthread_mutex_lock(&c->mu);
    if (c->efd < 0) {
        bool ready = !weft__list_empty(&c->ready);
        c->efd = eventfd(ready ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
        c->fd_set = ready && c->efd >= 0;
        if (c->efd < 0) {
            int err = -errno;
            pthread_mutex_unlock(&c->mu);
            return err;
        }
    }
    int fd = c->efd;
    pthread_mutex_unlock(&c->mu);
    return fd;
}

void weft_completion_destroy(weft_completion *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    struct weft__list pending; /* a firing entry sees `closing` and leaves its link alone */
    weft__list_move_all(&c->pending, &pending);
    pthread_mutex_unlock(&c->mu);
    for (struct weft__list *l = pending.next; l != &pending;) {
        struct weft__list *next = l->next;
        struct centry *e = weft__container_of(l, struct centry, link);
        weft__future_remove_node(e->f, &e->node); /* waits for a firing node */
        weft_future_release(e->f);
        weft__block_free(e);
        l = next;
    }
    pthread_mutex_lock(&c->mu); /* no fire() is inside the mutex after this */
    pthread_mutex_unlock(&c->mu);
    /* ...but one may still be writing the descriptor, after the mutex. acquire: pairs with
     * the release in signal_ready, the writer's last touch of c. */
    for (unsigned round = 0; ld_acquire(&c->writing) != 0;)
        weft__backoff(&round);
    for (struct weft__list *l = c->ready.next; l != &c->ready;) {
        struct weft__list *next = l->next;
        struct centry *e = weft__container_of(l, struct centry, link);
        weft_future_release(e->f);
        weft__block_free(e);
        l = next;
    }
    if (c->efd >= 0)
        close(c->efd);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    weft__free(c);
}
