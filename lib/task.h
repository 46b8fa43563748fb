/* SPDX-License-Identifier: MIT */
/*
 * The unit of scheduling. Deques and injection queues hold pointers to weft__task, and a task
 * carries its own behaviour: the scheduler calls t->run and knows nothing of what the task is.
 * A submitted task is the head of a weft_future (future.h); the other tasks are work that a
 * running task spread (fork-join frames, loop ranges), living on their owner's stack (join.c).
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdatomic.h>
#include <stdint.h>

struct weft__worker;

/* t->flags */
#define WEFT_TASK_SUBMITTED                                                                        \
    0x1u /* a weft_future from weft_submit: a CANCEL shutdown cancels it                           \
            if it has not started; other tasks are spread work, which                              \
            shutdown never refuses or cancels */

struct weft__task {
    _Atomic(struct weft__task *) next; /* injection-queue link (inject.c) */
    /* Runs the task on worker w. For a submitted task, the worker has started its future
     * first (worker.c, decide). */
    void (*run)(struct weft__worker *w, struct weft__task *t);
    uint32_t flags;
};

#endif
