/*
 * The injection queue: how tasks submitted from threads outside the pool reach the workers.
 *
 * It is sharded: one FIFO per worker, each behind its own mutex, so submitters on different
 * threads and workers draining different shards do not meet on one lock. A submitting thread
 * always uses the same shard (hashed from its identity), which keeps its tasks in order.
 * Workers drain their own shard first, then the others, taking a batch at a time.
 */
#ifndef WEFT_INJECT_H
#define WEFT_INJECT_H

#include "atomic.h"
#include "task.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct weft__inject_shard {
    WEFT_ALIGNED pthread_mutex_t lock;
    struct weft__task *head, *tail; /* under lock */
    bool closed;                    /* under lock: no more pushes from outside */
    _Atomic size_t count;           /* written under lock; read without it as a hint */
};

struct weft__inject {
    struct weft__inject_shard *shard;
    unsigned nshards;
};

int weft__inject_init(struct weft__inject *q, unsigned nshards);
void weft__inject_destroy(struct weft__inject *q);

/* The shard the calling thread submits to. */
unsigned weft__inject_home(const struct weft__inject *q);

/* Appends t to shard s. Returns 0, or -ESHUTDOWN if the shard is closed (unless force). */
int weft__inject_push(struct weft__inject *q, unsigned s, struct weft__task *t, bool force);

/* Removes up to max tasks from the front of shard s into a NULL-terminated list, oldest first.
 * Returns the list (NULL when empty or the lock is busy and !wait). */
struct weft__task *weft__inject_pop(struct weft__inject *q, unsigned s, size_t max, bool wait);

/* Closes every shard: weft__inject_push without force fails from then on. */
void weft__inject_close(struct weft__inject *q);

/* Whether any shard may hold a task (acquire: a task pushed before a synchronizing event is
 * seen). */
bool weft__inject_maybe_nonempty(struct weft__inject *q);

#endif
