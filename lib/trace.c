/* SPDX-License-Identifier: MIT */
/*
 * Chrome trace-event output.
 *
 * Each worker records fixed-size events into a ring of its own (no locks, no allocation while
 * running); when the ring is full the oldest events are overwritten and counted as dropped, so
 * memory stays bounded however long the pool runs. At destruction, after every worker has been
 * joined, the rings are written as one JSON object in the Trace Event Format: a "X" (complete)
 * event per slice with its duration, an "i" (instant) event per steal, one track (tid) per
 * worker named after its thread, and the number of dropped events under "otherData".
 */
#include "trace.h"

#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint32_t weft__trace_capacity(uint32_t events)
{
    uint32_t cap = 16;
    while (cap < events)
        cap <<= 1;
    return cap;
}

int weft__trace_init(struct weft__trace *t, uint32_t cap, struct weft__mem *mem)
{
    t->ev = weft__mem_alloc(mem, 0, (size_t)cap * sizeof(*t->ev));
    if (t->ev == NULL)
        return -ENOMEM;
    t->cap = cap;
    t->depth = 0;
    t->count = 0;
    return 0;
}

void weft__trace_free(struct weft__trace *t, struct weft__mem *mem)
{
    weft__mem_free(mem, t->ev);
    t->ev = NULL;
}

static const char *const kind_name[] = {"task", "join", "park", "steal"};

struct writer {
    FILE *fp;
    const char *sep;
};

static void event(struct writer *w, const char *fmt_json)
{
    fputs(w->sep, w->fp);
    fputs(fmt_json, w->fp);
    w->sep = ",\n";
}

int weft__trace_write(const char *path, const struct weft__trace *const *traces,
                      const char *const *names, unsigned n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    FILE *fp = fdopen(fd, "w");
    if (fp == NULL) {
        int err = -errno;
        close(fd);
        return err;
    }
    /* Timestamps relative to the earliest kept event, in microseconds as the format wants. */
    int64_t t0 = INT64_MAX;
    uint64_t dropped = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct weft__trace *t = traces[i];
        uint64_t kept = t->count < t->cap ? t->count : t->cap;
        dropped += t->count - kept;
        for (uint64_t k = t->count - kept; k < t->count; k++) {
            int64_t ts = t->ev[k & (t->cap - 1)].ts;
            if (ts < t0)
                t0 = ts;
        }
    }
    if (t0 == INT64_MAX)
        t0 = 0;
    struct writer w = {fp, "\n"};
    char buf[256];
    fputs("{\"traceEvents\": [", fp);
    snprintf(buf, sizeof(buf),
             "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"args\": {\"name\": "
             "\"weft pool\"}}");
    event(&w, buf);
    for (unsigned i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf),
                 "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": %u, \"args\": "
                 "{\"name\": \"%s\"}}",
                 i, names[i]);
        event(&w, buf);
        const struct weft__trace *t = traces[i];
        uint64_t kept = t->count < t->cap ? t->count : t->cap;
        for (uint64_t k = t->count - kept; k < t->count; k++) {
            const struct weft__trace_ev *e = &t->ev[k & (t->cap - 1)];
            double ts = (double)(e->ts - t0) / 1000.0;
            if (e->kind == WEFT_EV_STEAL)
                snprintf(buf, sizeof(buf),
                         "{\"name\": \"steal\", \"ph\": \"i\", \"s\": \"t\", \"pid\": 1, "
                         "\"tid\": %u, \"ts\": %.3f}",
                         i, ts);
            else
                snprintf(buf, sizeof(buf),
                         "{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": 1, "
                         "\"tid\": %u, \"ts\": %.3f, \"dur\": %.3f, \"args\": {\"depth\": %u}}",
                         kind_name[e->kind], kind_name[e->kind], i, ts, (double)e->dur / 1000.0,
                         e->depth);
            event(&w, buf);
        }
    }
    fprintf(fp,
            "\n], \"displayTimeUnit\": \"ns\", \"otherData\": {\"producer\": \"weft\", "
            "\"dropped_events\": %llu}}\n",
            (unsigned long long)dropped);
    int err = ferror(fp) ? -EIO : 0;
    if (fclose(fp) != 0 && err == 0)
        err = -errno;
    return err;
}
