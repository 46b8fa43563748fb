/* SPDX-License-Identifier: MIT */
/*
 * Reading statistics: sums of the per-worker counters (which only their worker writes), the
 * spells in progress, and the pool-wide counts, as a struct or as JSON.
 */
#include "worker.h"

#include "alloc.h"

#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* One worker's counters. busy_ns is derived: lifetime minus idle and helping time, where the
 * lifetime adds up every life of a worker that retired and came back (resize.c). */
static void read_worker(const struct weft__worker *w, int64_t now, weft_worker_stats *out)
{
    struct weft__wstats *st = (struct weft__wstats *)&w->st;
    /* relaxed: statistics; each value is one the worker wrote */
#define WEFT_STATS_READ_(name, doc) out->name = ld_relaxed(&st->name);
    WEFT_WORKER_STATS(WEFT_STATS_READ_)
#undef WEFT_STATS_READ_
    int64_t born = ld_relaxed(&st->born_ns);
    int64_t died = ld_relaxed(&st->died_ns);
    int64_t lived = ld_relaxed(&st->lived_ns);
    int64_t idle_since = ld_relaxed(&st->idle_since);
    int64_t wait_since = ld_relaxed(&st->wait_since);
    if (born == 0) {
        out->busy_ns = 0;
        return;
    }
    bool alive = died == 0;
    if (alive && idle_since != 0 && idle_since < now)
        out->idle_ns += (uint64_t)(now - idle_since);
    if (alive && wait_since != 0 && wait_since < now)
        out->helping_ns += (uint64_t)(now - wait_since);
    uint64_t life = lived > 0 ? (uint64_t)lived : 0;
    if (alive && now > born)
        life += (uint64_t)(now - born);
    uint64_t other = out->idle_ns + out->helping_ns;
    out->busy_ns = life > other ? life - other : 0;
}

static void add(weft_worker_stats *sum, const weft_worker_stats *w)
{
#define WEFT_STATS_ADD_(name, doc) sum->name += w->name;
    WEFT_WORKER_STATS(WEFT_STATS_ADD_)
#undef WEFT_STATS_ADD_
}

int weft_pool_stats(const weft_pool *pool, weft_stats *out, weft_worker_stats *per_worker, size_t n)
{
    if (pool == NULL)
        return -EINVAL;
    int64_t now = weft__now_ns();
    weft_stats s;
    memset(&s, 0, sizeof(s));
    /* every worker that ever ran: the counts of retired ones stay in the totals */
    s.workers = weft__pool_slots(pool);
    s.submitted_outside = weft__inject_total(&pool->inject);
    s.cancelled_queued = ld_relaxed(&((weft_pool *)pool)->swept); /* relaxed: a statistic */
    for (unsigned i = 0; i < s.workers; i++) {
        weft_worker_stats w;
        read_worker(weft__worker_at(pool, i), now, &w);
        add(&s.total, &w);
        if (per_worker != NULL && i < n)
            per_worker[i] = w;
    }
    if (out != NULL)
        *out = s;
    return 0;
}

/* --- JSON --- */

struct out {
    int fd;
    int err;
    char buf[4096];
    size_t len;
};

static void flush(struct out *o)
{
    size_t off = 0;
    while (o->err == 0 && off < o->len) {
        ssize_t r = write(o->fd, o->buf + off, o->len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            o->err = r < 0 ? -errno : -EIO;
        else
            off += (size_t)r;
    }
    o->len = 0;
}

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    if (o->len > sizeof(o->buf) - 256)
        flush(o);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < sizeof(o->buf) - o->len ? (size_t)n : sizeof(o->buf) - o->len - 1;
}

static void put_worker(struct out *o, const weft_worker_stats *w)
{
    const char *sep = "";
    put(o, "{");
#define WEFT_STATS_JSON_(name, doc)                                                                \
    put(o, "%s\"" #name "\": %llu", sep, (unsigned long long)w->name);                             \
    sep = ", ";
    WEFT_WORKER_STATS(WEFT_STATS_JSON_)
#undef WEFT_STATS_JSON_
    put(o, "}");
}

int weft_stats_write_json(const weft_pool *pool, int fd)
{
    if (pool == NULL || fd < 0)
        return -EINVAL;
    struct out o = {.fd = fd};
    weft_stats s;
    weft_pool_stats(pool, &s, NULL, 0);
    unsigned n = s.workers; /* as many as the totals cover, should a grow come meanwhile */
    int64_t now = weft__now_ns();
    put(&o,
        "{\"weft_version\": \"%s\", \"workers\": %u, \"submitted_outside\": %llu, "
        "\"cancelled_queued\": %llu, \"total\": ",
        weft_version(), n, (unsigned long long)s.submitted_outside,
        (unsigned long long)s.cancelled_queued);
    put_worker(&o, &s.total);
    put(&o, ", \"per_worker\": [");
    for (unsigned i = 0; i < n; i++) {
        weft_worker_stats w;
        read_worker(weft__worker_at(pool, i), now, &w);
        put(&o, i == 0 ? "\n  " : ",\n  ");
        put_worker(&o, &w);
    }
    put(&o, "]}\n");
    flush(&o);
    return o.err;
}

/* --- files written at destroy: the trace and the statistics --- */

/* A file name from a template: %p becomes the process id, %n the pool's name, %% a '%'; so that
 * several pools of a process (or several processes) each get a file of their own. */
static void expand_path(const char *tmpl, const weft_pool *pool, char *out, size_t len)
{
    size_t k = 0;
    for (const char *c = tmpl; *c != '\0' && k + 1 < len; c++) {
        int w = 0;
        if (c[0] == '%' && c[1] == 'p') {
            w = snprintf(out + k, len - k, "%ld", (long)getpid());
            c++;
        } else if (c[0] == '%' && c[1] == 'n') {
            w = snprintf(out + k, len - k, "%s", pool->name);
            c++;
        } else if (c[0] == '%' && c[1] == '%') {
            out[k] = '%';
            w = 1;
            c++;
        } else {
            out[k] = *c;
            w = 1;
        }
        k = w < 0 || (size_t)w >= len - k ? len - 1 : k + (size_t)w;
    }
    out[k < len ? k : len - 1] = '\0';
}

void weft__pool_write_stats(weft_pool *pool)
{
    char path[4096];
    expand_path(pool->stats_path, pool, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd >= 0 ? weft_stats_write_json(pool, fd) : -errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        weft__debug("could not write the statistics to %s: %s", path, strerror(-rc));
}

/* Writes the trace, with tracks named as the threads are, characters JSON would need escaped
 * replaced. */
void weft__pool_write_trace(weft_pool *pool)
{
    unsigned n = weft__pool_slots(pool); /* every worker that ran: one track each */
    const struct weft__trace **t = weft__calloc(n, sizeof(*t));
    const char **names = weft__calloc(n, sizeof(*names));
    char *store = weft__calloc(n, 32);
    int rc = -ENOMEM;
    if (t != NULL && names != NULL && store != NULL) {
        for (unsigned i = 0; i < n; i++) {
            t[i] = &weft__worker_at(pool, i)->trace;
            char *nm = store + 32 * (size_t)i;
            weft__worker_name(pool, i, nm);
            for (char *c = nm; *c != '\0'; c++) {
                if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
                    *c = '_';
            }
            names[i] = nm;
        }
        char path[4096];
        expand_path(pool->trace_path, pool, path, sizeof(path));
        rc = weft__trace_write(path, t, names, n);
        if (rc != 0)
            weft__debug("could not write the trace to %s: %s", path, strerror(-rc));
    }
    weft__free(t);
    weft__free(names);
    weft__free(store);
}
