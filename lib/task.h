/*
 * The unit of scheduling. Deques and injection queues hold pointers to weft__task; what a task
 * does is told by its kind. A submitted task is the head of a weft_future (future.h); later
 * kinds (fork-join frames, loop ranges) live on their owner's stack.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdatomic.h>
#include <stdint.h>

enum weft__task_kind {
    WEFT_TASK_FUTURE = 1, /* a weft_future made by weft_submit */
    WEFT_TASK_GATHER = 2, /* a weft_future made by weft_gather: never queued */
    WEFT_TASK_JOIN = 3,   /* the second half of a weft_join, on its caller's stack (join.c) */
};

struct weft__task {
    _Atomic(struct weft__task *) next; /* injection-queue link (inject.c) */
    uint32_t kind;                     /* enum weft__task_kind */
};

#endif
