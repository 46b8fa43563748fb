/* SPDX-License-Identifier: MIT */
/*
 * Execution traces: per-worker ring buffers of events, written as a Chrome trace-event file
 * (loadable in Perfetto and chrome://tracing) when the pool is destroyed. See trace.c.
 */
#ifndef WEFT_TRACE_H
#define WEFT_TRACE_H

#include <stddef.h>
#include <stdint.h>

enum weft__trace_kind {
    WEFT_EV_TASK,  /* a submitted task ran: a slice */
    WEFT_EV_JOIN,  /* a stolen join half or spawn ran: a slice */
    WEFT_EV_PARK,  /* the worker slept: a slice */
    WEFT_EV_STEAL, /* a steal succeeded: an instant */
};

struct weft__trace_ev {
    int64_t ts;  /* CLOCK_MONOTONIC ns */
    int64_t dur; /* ns; 0 for instants */
    uint32_t kind;
    uint32_t depth; /* nesting depth of slices on this worker (waits run tasks inside tasks) */
};

/* One worker's ring. Only its worker writes it; it is read after the worker has been joined. */
struct weft__trace {
    struct weft__trace_ev *ev;
    uint32_t cap;   /* a power of two */
    uint32_t depth; /* slices open right now */
    uint64_t count; /* events ever recorded; those beyond cap overwrote the oldest */
};

#define WEFT_TRACE_EVENTS_DEFAULT 65536u     /* events per worker without $WEFT_TRACE_EVENTS */
#define WEFT_TRACE_EVENTS_MAX     (1u << 26) /* the most $WEFT_TRACE_EVENTS may ask for */

/* The ring capacity for a requested number of events: the power of two at or above it. */
uint32_t weft__trace_capacity(uint32_t events);

struct weft__mem;
int weft__trace_init(struct weft__trace *t, uint32_t cap, struct weft__mem *mem);
void weft__trace_free(struct weft__trace *t, struct weft__mem *mem);

static inline void weft__trace_add(struct weft__trace *t, uint32_t kind, int64_t ts, int64_t dur)
{
    struct weft__trace_ev *e = &t->ev[t->count & (t->cap - 1)];
    e->ts = ts;
    e->dur = dur;
    e->kind = kind;
    e->depth = t->depth;
    t->count++;
}

/* Writes the traces of n workers to path; names[i] is worker i's thread name. 0 or -errno. */
int weft__trace_write(const char *path, const struct weft__trace *const *traces,
                      const char *const *names, unsigned n);

#endif
