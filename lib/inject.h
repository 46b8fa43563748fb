/* SPDX-License-Identifier: MIT */
/*
 * The injection queue: how tasks submitted from threads outside the pool reach the workers.
 * See inject.c for the algorithm.
 */
#ifndef WEFT_INJECT_H
#define WEFT_INJECT_H

#include "alloc.h"
#include "atomic.h"
#include "task.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct weft__inject_shard {
    /* Producers' line: every push does two RMWs here and nothing else. */
    WEFT_ALIGNED _Atomic(struct weft__task *) tail;
    _Atomic size_t count;   /* tasks pushed or being pushed, not yet popped */
    _Atomic uint64_t total; /* tasks ever pushed (statistics) */
    /* Consumers' line. */
    WEFT_ALIGNED pthread_mutex_t consumer; /* one consumer at a time */
    struct weft__task *head;               /* under consumer */
    struct weft__task stub;
};

struct weft__inject {
    struct weft__inject_shard *shard;
    unsigned nshards;
};

int weft__inject_init(struct weft__inject *q, unsigned nshards, struct weft__mem *mem);
void weft__inject_destroy(struct weft__inject *q, struct weft__mem *mem);

/* The shard the calling thread submits to. */
unsigned weft__inject_home(const struct weft__inject *q);

/* Appends t to shard s unless *closed has a bit of closed_mask set (then -ESHUTDOWN and nothing
 * changes). Lock-free. Any thread. */
int weft__inject_push(struct weft__inject *q, unsigned s, struct weft__task *t,
                      _Atomic uint32_t *closed, uint32_t closed_mask);

/* Removes up to max tasks from shard s, oldest first, into out[]. Returns how many. With !wait
 * it gives up at once when another consumer is at the shard. Any thread. The shard's count stays
 * up until the caller calls weft__inject_taken, once the tasks are somewhere a CANCEL shutdown's
 * sweep can find them (a deque, or started). */
size_t weft__inject_pop(struct weft__inject *q, unsigned s, struct weft__task **out, size_t max,
                        bool wait);

/* n tasks popped from shard s have been placed: see weft__inject_pop. */
void weft__inject_taken(struct weft__inject *q, unsigned s, size_t n);

/* Whether any shard may hold a task or a push in progress. Never false while a task pushed
 * before a synchronizing event is queued. */
bool weft__inject_maybe_nonempty(struct weft__inject *q);

/* Tasks ever pushed to any shard. */
uint64_t weft__inject_total(const struct weft__inject *q);

/* True when no shard holds a task or a push in flight, with seq_cst loads: after the closed bit
 * was set (seq_cst), no accepted task can be missed. */
bool weft__inject_drained(struct weft__inject *q);

#endif
