/* SPDX-License-Identifier: MIT */
/*
 * Chrome trace-event output.
 *
 * Each worker records fixed-size events into a ring of its own (no locks, no allocation while
 * running); when the ring is full the oldest events are overwritten and counted as dropped, so
 * memory stays bounded however long the pool runs. At destruction, after every worker has been
 * joined, the rings are written as one JSON object in the Trace Event Format: a "X" (complete)
 * event per slice with its duration, named by the label its task gave (weft_trace_label) or
 * else by its kind, an "i" (instant) event per steal, one track (tid) per worker named after its
 * thread, and under "otherData" the number of dropped events and the writing process.
 */
#include "trace.h"

#include "alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t weft__trace_capacity(uint32_t events)
{
    uint32_t cap = 16;
    while (cap < events)
        cap <<= 1;
    return cap;
}

int weft__trace_init(struct weft__trace *t, uint32_t cap, struct weft__mem *mem)
{
    memset(t, 0, sizeof(*t));
    t->mem = mem;
    t->ev = weft__mem_alloc(mem, 0, (size_t)cap * sizeof(*t->ev));
    if (t->ev == NULL)
        return -ENOMEM;
    t->cap = cap;
    return 0;
}

void weft__trace_free(struct weft__trace *t, struct weft__mem *mem)
{
    weft__mem_free(mem, t->ev);
    t->ev = NULL;
    for (uint32_t i = 0; i < t->nlabels; i++)
        weft__mem_free(mem, t->labels[i]);
    weft__mem_free(mem, t->labels);
    weft__mem_free(mem, t->slots);
    t->labels = NULL;
    t->slots = NULL;
    t->nlabels = t->nslots = 0;
}

/* FNV-1a over the first len bytes. */
static uint32_t label_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Doubles the slot table (or makes its first one) and rehashes the labels into it. */
static int grow_slots(struct weft__trace *t)
{
    uint32_t n = t->nslots != 0 ? 2 * t->nslots : 64;
    uint32_t *slots = weft__mem_alloc(t->mem, 0, (size_t)n * sizeof(*slots));
    char **labels = weft__mem_alloc(t->mem, 0, (size_t)(n / 2) * sizeof(*labels));
    if (slots == NULL || labels == NULL) {
        weft__mem_free(t->mem, slots);
        weft__mem_free(t->mem, labels);
        return -ENOMEM;
    }
    if (t->nlabels != 0)
        memcpy(labels, t->labels, t->nlabels * sizeof(*labels));
    for (uint32_t i = 0; i < t->nlabels; i++) {
        uint32_t k = label_hash(labels[i], strlen(labels[i])) & (n - 1);
        while (slots[k] != 0)
            k = (k + 1) & (n - 1);
        slots[k] = i + 1;
    }
    weft__mem_free(t->mem, t->slots);
    weft__mem_free(t->mem, t->labels);
    t->slots = slots;
    t->labels = labels;
    t->nslots = n;
    return 0;
}

int weft__trace_intern(struct weft__trace *t, const char *s)
{
    size_t len = strnlen(s, WEFT_TRACE_LABEL_LEN);
    uint32_t h = label_hash(s, len);
    if (t->nslots != 0) {
        /* Linear probing in a table at most half full: ends at an empty slot. */
        for (uint32_t k = h & (t->nslots - 1); t->slots[k] != 0; k = (k + 1) & (t->nslots - 1)) {
            const char *l = t->labels[t->slots[k] - 1];
            if (strncmp(l, s, len) == 0 && l[len] == '\0')
                return (int)t->slots[k];
        }
    }
    if (t->nlabels >= WEFT_TRACE_LABELS_MAX)
        return -ENOSPC;
    if (2 * (t->nlabels + 1) > t->nslots) {
        int rc = grow_slots(t);
        if (rc != 0)
            return rc;
    }
    char *copy = weft__mem_alloc(t->mem, 0, len + 1);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    uint32_t k = h & (t->nslots - 1);
    while (t->slots[k] != 0)
        k = (k + 1) & (t->nslots - 1);
    t->labels[t->nlabels++] = copy;
    t->slots[k] = t->nlabels;
    return (int)t->nlabels;
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

/* s as a JSON string: quotes, backslashes and control characters escaped. A label cut in the
 * middle of a UTF-8 sequence stays invalid UTF-8: its bytes from 0x80 up that do not form a
 * sequence are replaced, so that the file is always valid JSON. */
static void put_string(FILE *fp, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', fp);
    while (*p != '\0') {
        size_t n = 1;
        if (*p >= 0x80) {
            /* The length of a well-formed sequence (RFC 3629), 0 if it is not one. */
            n = (*p >= 0xC2 && *p <= 0xDF)   ? 2
                : (*p >= 0xE0 && *p <= 0xEF) ? 3
                : (*p >= 0xF0 && *p <= 0xF4) ? 4
                                             : 0;
            for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xC0) != 0x80) {
                    n = 0; /* also at the terminating NUL: nothing past it is read */
                    break;
                }
            }
            if (n >= 3) {
                unsigned b1 = p[1];
                if ((p[0] == 0xE0 && b1 < 0xA0) || (p[0] == 0xED && b1 > 0x9F) ||
                    (p[0] == 0xF0 && b1 < 0x90) || (p[0] == 0xF4 && b1 > 0x8F))
                    n = 0; /* overlong, a surrogate, or above U+10FFFF */
            }
            if (n == 0) {
                fputc('?', fp);
                p++;
                continue;
            }
            fwrite(p, 1, n, fp);
        } else if (*p == '"' || *p == '\\') {
            fprintf(fp, "\\%c", *p);
        } else if (*p < 0x20) {
            fprintf(fp, "\\u%04x", *p);
        } else {
            fputc(*p, fp);
        }
        p += n;
    }
    fputc('"', fp);
}

int weft__trace_write(FILE *fp, const char *writer, const char *pool,
                      const struct weft__trace *const *traces, const char *const *names, unsigned n)
{
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
    /* otherData first: it says which process wrote the file (stats.c reads it back to tell a
     * file of its own process from one an earlier run left). */
    fprintf(fp,
            "{\"otherData\": {\"producer\": \"weft\", \"writer\": \"%s\", \"pool\": \"%s\", "
            "\"dropped_events\": %llu},\n\"traceEvents\": [",
            writer, pool, (unsigned long long)dropped);
    struct writer w = {fp, "\n"};
    char buf[256];
    snprintf(buf, sizeof(buf),
             "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"args\": {\"name\": "
             "\"weft pool %s\"}}",
             pool);
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
            if (e->kind == WEFT_EV_STEAL) {
                snprintf(buf, sizeof(buf),
                         "{\"name\": \"steal\", \"ph\": \"i\", \"s\": \"t\", \"pid\": 1, "
                         "\"tid\": %u, \"ts\": %.3f}",
                         i, ts);
                event(&w, buf);
                continue;
            }
            /* A slice: named by its label when the task gave one, else by its kind, which
             * "cat" always holds. */
            fputs(w.sep, fp);
            fputs("{\"name\": ", fp);
            if (e->label != 0 && e->label <= t->nlabels)
                put_string(fp, t->labels[e->label - 1]);
            else
                fprintf(fp, "\"%s\"", kind_name[e->kind]);
            fprintf(fp,
                    ", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": 1, \"tid\": %u, \"ts\": %.3f, "
                    "\"dur\": %.3f, \"args\": {\"depth\": %u}}",
                    kind_name[e->kind], i, ts, (double)e->dur / 1000.0, e->depth);
        }
    }
    fputs("\n], \"displayTimeUnit\": \"ns\"}\n", fp);
    return ferror(fp) ? -EIO : 0;
}
