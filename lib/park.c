/* SPDX-License-Identifier: MIT */
/*
 * The parking protocol.
 *
 * Each worker sleeps on a futex word of its own, so a wake-up can be aimed at one worker.
 * A bitmap says which workers are parked or about to park (the idle set).
 *
 *   worker (about to sleep)                  waker (after publishing a task)
 *   key = load(word)                         publish the task (release store / mutex)
 *   fetch_or(idle, my bit)                   fence(seq_cst)                      [F2]
 *   fence(seq_cst)                [F1]       v = load(idle)
 *   look for work once more                  if a bit i is set and fetch_and(~bit i) cleared it:
 *   if found: fetch_and(~my bit), run it         word[i] += 1 (release); futex_wake(word[i])
 *   else: futex_wait(word, key)
 *
 * No lost wake-up: F1 and F2 are seq_cst fences, so in their total order either F2 comes first
 * and the worker's re-check sees the published task, or F1 comes first and the waker's load of
 * the idle set sees the worker's bit (store-buffering with fences on both sides is forbidden by
 * C11). A waker that clears bit i owns the wake-up of worker i; the increment of word[i] makes
 * the futex_wait return even if the worker has not reached it yet (the kernel compares the word
 * to the key atomically with going to sleep).
 *
 * The fences order only a store against a load; no plain data is published through them (the
 * task itself is published by the deque's release store of bottom or by the injection queue's
 * mutex), so ThreadSanitizer, which does not model fences, still sees every happens-before edge
 * that protects data.
 *
 * A worker that was chosen by a waker but then does not look for work (a helping wait whose
 * future finished) passes the wake-up on to another idle worker, so none is lost.
 */
#include "park.h"

#include "alloc.h"
#include "platform.h"

#include <errno.h>
#include <limits.h>

void weft__park_destroy(struct weft__parking *p, struct weft__mem *mem)
{
    weft__mem_free(mem, p->idle);
    p->idle = NULL;
    for (unsigned k = 0; k < WEFT_SEGS; k++) {
        weft__mem_free(mem, p->words[k]);
        weft__mem_free(mem, p->woken_at[k]);
        p->words[k] = NULL;
        p->woken_at[k] = NULL;
    }
}

int weft__park_init(struct weft__parking *p, struct weft__mem *mem)
{
    p->mem = mem;
    p->idle = weft__mem_alloc(mem, WEFT_CACHE_LINE, WEFT_PARK_WORDS * sizeof(*p->idle));
    if (p->idle == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < WEFT_PARK_WORDS; i++)
        atomic_init(&p->idle[i], 0);
    atomic_init(&p->nwords, 0);
    atomic_init(&p->nworkers, 0);
    for (unsigned k = 0; k < WEFT_SEGS; k++) {
        p->words[k] = NULL;
        p->woken_at[k] = NULL;
    }
    return 0;
}

int weft__park_register(struct weft__parking *p, unsigned i, _Atomic uint32_t *word)
{
    unsigned k = weft__seg(i);
    if (p->words[k] == NULL) {
        p->words[k] = weft__mem_alloc(p->mem, 0, weft__seg_len(k) * sizeof(*p->words[k]));
        if (p->words[k] == NULL)
            return -ENOMEM;
    }
    if (p->woken_at[k] == NULL) {
        p->woken_at[k] = weft__mem_alloc(p->mem, 0, weft__seg_len(k) * sizeof(*p->woken_at[k]));
        if (p->woken_at[k] == NULL)
            return -ENOMEM;
        for (size_t j = 0; j < weft__seg_len(k); j++)
            atomic_init(&p->woken_at[k][j], 0);
    }
    p->words[k][weft__seg_off(i, k)] = word;
    return 0;
}

void weft__park_publish(struct weft__parking *p, unsigned n)
{
    /* relaxed: see weft__park_nwords; the workers' threads start after this */
    st_relaxed(&p->nwords, (n + 63) / 64);
    /* release: pairs with the acquire in notify_all, which reads the words' table */
    st_release(&p->nworkers, n);
}

/* Worker i's futex word. Plain reads: the table was written before worker i's thread started,
 * and whoever names worker i learnt of it after that (its idle bit, or its index). */
static inline _Atomic uint32_t *word_of(const struct weft__parking *p, unsigned i)
{
    unsigned k = weft__seg(i);
    return p->words[k][weft__seg_off(i, k)];
}

uint32_t weft__park_prepare(struct weft__parking *p, unsigned i)
{
    /* acquire pairs with the release increment in wake(): a worker that reads a new key has
     * seen everything the waker did before waking it. */
    _Atomic uint32_t *word = word_of(p, i);
    uint32_t key = ld_acquire(word);
    or_seq_cst(&p->idle[i / 64], (uint64_t)1 << (i % 64)); /* joins the idle set */
    weft_fence_seq_cst(); /* F1: pairs with F2 in notify_one (see above) */
    return key;
}

/* Leaves the idle set; true if a waker had removed us first (and so owes us a wake-up). */
static bool leave(struct weft__parking *p, unsigned i)
{
    uint64_t bit = (uint64_t)1 << (i % 64);
    /* acq_rel: totally ordered with the waker's fetch_and on the same word; whoever clears the
     * bit owns it. */
    return (and_acq_rel(&p->idle[i / 64], ~bit) & bit) == 0;
}

bool weft__park_cancel(struct weft__parking *p, unsigned i)
{
    return leave(p, i);
}

bool weft__park_commit(struct weft__parking *p, unsigned i, uint32_t key, int64_t deadline)
{
    _Atomic uint32_t *word = word_of(p, i);
    weft__futex_wait(word, key, deadline);
    return leave(p, i);
}

static void wake(struct weft__parking *p, unsigned i)
{
    /* relaxed: a timestamp for worker.c's spinning heuristic, on a path that makes a system
     * call anyway */
    unsigned k = weft__seg(i);
    st_relaxed(&p->woken_at[k][weft__seg_off(i, k)], weft__now_ns());
    /* release pairs with the acquire load of the key in prepare */
    _Atomic uint32_t *word = word_of(p, i);
    add_release(word, 1);
    weft__futex_wake(word, 1);
}

void weft__park_notify_one(struct weft__parking *p)
{
    weft_fence_seq_cst(); /* F2: pairs with F1 in prepare */
    unsigned nw = weft__park_nwords(p);
    for (unsigned w = 0; w < nw; w++) {
        /* relaxed: the fence above orders this load after the publication */
        uint64_t v = ld_relaxed(&p->idle[w]);
        while (v != 0) {
            uint64_t bit = v & -v;
            /* acq_rel: see leave(); clearing the bit claims that worker's wake-up */
            uint64_t old = and_acq_rel(&p->idle[w], ~bit);
            if (old & bit) {
                wake(p, w * 64 + (unsigned)__builtin_ctzll(bit));
                return;
            }
            v = old & ~bit;
        }
    }
}

/* The workers registered. acquire: pairs with the release in weft__park_publish, for the words'
 * table. */
static inline unsigned registered(struct weft__parking *p)
{
    return ld_acquire(&p->nworkers);
}

void weft__park_notify_all(struct weft__parking *p)
{
    weft_fence_seq_cst(); /* F2 as in notify_one, for the shutdown flag */
    unsigned n = registered(p);
    for (unsigned i = 0; i < n; i++) {
        _Atomic uint32_t *word = word_of(p, i);
        add_release(word, 1); /* pairs with the acquire in prepare */
        weft__futex_wake(word, INT_MAX);
    }
}

void weft__park_unpark(struct weft__parking *p, unsigned i)
{
    wake(p, i);
}
