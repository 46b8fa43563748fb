/* SPDX-License-Identifier: MIT */
/*
 * Execution traces: per-worker ring buffers of events, written as a Chrome trace-event file
 * (loadable in Perfetto and chrome://tracing) when the pool is destroyed. See trace.c.
 */
#ifndef WEFT_TRACE_H
#define WEFT_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    uint32_t label; /* 0, or 1 + the index of the slice's label in the ring's labels */
    uint32_t pad_;
};

/* One worker's ring. Only the thread holding the worker writes it (its own thread, or a spare
 * standing in for it); it is read after the worker has been joined. */
struct weft__trace {
    struct weft__trace_ev *ev;
    uint32_t cap;   /* a power of two */
    uint32_t depth; /* slices open right now */
    uint64_t count; /* events ever recorded; those beyond cap overwrote the oldest */
    /* weft_trace_label: the label of the innermost open slice (0: none, else 1 + an index into
     * labels), and the labels seen so far, each copied once (a label is often a formatted
     * buffer the task reuses), found by hash (slots: 1 + index, 0 empty). */
    uint32_t label;
    uint32_t nlabels;
    char **labels;
    uint32_t *slots;
    uint32_t nslots;       /* 0 or a power of two, at least twice nlabels */
    struct weft__mem *mem; /* where the ring and the labels come from: the pool's allocator */
};

#define WEFT_TRACE_EVENTS_DEFAULT 65536u     /* events per worker without $WEFT_TRACE_EVENTS */
#define WEFT_TRACE_EVENTS_MAX     (1u << 26) /* the most $WEFT_TRACE_EVENTS may ask for */
#define WEFT_TRACE_LABELS_MAX     4096u      /* distinct labels a worker's ring keeps */
#define WEFT_TRACE_LABEL_LEN      127u       /* bytes of a label kept; the rest is cut */

/* The ring capacity for a requested number of events: the power of two at or above it. */
uint32_t weft__trace_capacity(uint32_t events);

struct weft__mem;
int weft__trace_init(struct weft__trace *t, uint32_t cap, struct weft__mem *mem);
void weft__trace_free(struct weft__trace *t, struct weft__mem *mem);

/* Records a slice (or an instant, dur 0) with a label (0: none). */
static inline void weft__trace_slice(struct weft__trace *t, uint32_t kind, int64_t ts, int64_t dur,
                                     uint32_t label)
{
    struct weft__trace_ev *e = &t->ev[t->count & (t->cap - 1)];
    e->ts = ts;
    e->dur = dur;
    e->kind = kind;
    e->depth = t->depth;
    e->label = label;
    t->count++;
}

static inline void weft__trace_add(struct weft__trace *t, uint32_t kind, int64_t ts, int64_t dur)
{
    weft__trace_slice(t, kind, ts, dur, 0);
}

/* The label id (1 + index) of s, copied into t's labels the first time it is seen, its first
 * WEFT_TRACE_LABEL_LEN bytes only. -ENOSPC past WEFT_TRACE_LABELS_MAX labels, -ENOMEM. */
int weft__trace_intern(struct weft__trace *t, const char *s);

/* Writes the traces of n workers to fp as one JSON object; names[i] is worker i's thread name,
 * writer and pool (both free of characters JSON escapes) identify the process and the pool in
 * "otherData". 0 or -EIO; fp stays open. */
int weft__trace_write(FILE *fp, const char *writer, const char *pool,
                      const struct weft__trace *const *traces, const char *const *names,
                      unsigned n);

#endif
