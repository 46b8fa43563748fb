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
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
    /* relaxed: as above; the frames weft_offer pushed inline, counted in the deque (weft.h) */
    out->joins += ld_relaxed(&((struct weft__worker *)w)->deque.forks);
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

/* Where the JSON goes: a descriptor, through a buffer of our own, or a stdio stream, through
 * its buffer (so that it lands in order with the caller's other output on that stream). */
struct out {
    int fd;
    FILE *fp;
    int err;
    char buf[4096];
    size_t len;
};

static void flush(struct out *o)
{
    size_t off = 0;
    while (o->fp == NULL && o->err == 0 && off < o->len) {
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
    va_list ap;
    va_start(ap, fmt);
    if (o->fp != NULL) {
        vfprintf(o->fp, fmt, ap);
        va_end(ap);
        return;
    }
    if (o->len > sizeof(o->buf) - 256)
        flush(o);
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

/* The object of weft_stats_write_json; a file written at destroy has two more members first,
 * the writing process and the pool's name (head, already JSON). */
static void put_stats(const weft_pool *pool, struct out *o, const char *head)
{
    weft_stats s;
    weft_pool_stats(pool, &s, NULL, 0);
    unsigned n = s.workers; /* as many as the totals cover, should a grow come meanwhile */
    int64_t now = weft__now_ns();
    put(o,
        "{%s\"weft_version\": \"%s\", \"workers\": %u, \"submitted_outside\": %llu, "
        "\"cancelled_queued\": %llu, \"total\": ",
        head, weft_version(), n, (unsigned long long)s.submitted_outside,
        (unsigned long long)s.cancelled_queued);
    put_worker(o, &s.total);
    put(o, ", \"per_worker\": [");
    for (unsigned i = 0; i < n; i++) {
        weft_worker_stats w;
        read_worker(weft__worker_at(pool, i), now, &w);
        put(o, i == 0 ? "\n  " : ",\n  ");
        put_worker(o, &w);
    }
    put(o, "]}\n");
}

int weft_stats_write_json(const weft_pool *pool, int fd)
{
    if (pool == NULL || fd < 0)
        return -EINVAL;
    struct out o = {.fd = fd};
    put_stats(pool, &o, "");
    flush(&o);
    return o.err;
}

int weft_stats_write_json_file(const weft_pool *pool, FILE *fp)
{
    if (pool == NULL || fp == NULL)
        return -EINVAL;
    struct out o = {.fd = -1, .fp = fp};
    put_stats(pool, &o, "");
    return ferror(fp) ? -EIO : 0;
}

/* --- labels of trace slices --- */

int weft_trace_label(const char *label)
{
    if (label == NULL)
        return -EINVAL;
    struct weft__worker *w = weft__me();
    /* The ring belongs to whichever thread holds the worker, which is the caller. */
    if (w == NULL || w->tr == NULL || w->tr->depth == 0)
        return 0;
    int id = weft__trace_intern(w->tr, label);
    if (id < 0)
        return id;
    w->tr->label = (uint32_t)id;
    return 1;
}

/* --- files written at destroy: the trace and the statistics --- */

/* A file name from a template: %p becomes the process id, %n the pool's name, %% a '%'; so that
 * several pools of a process (or several processes) each get a file of their own. */
void weft__expand_path(const char *tmpl, const weft_pool *pool, char *out, size_t len)
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

/* Which process writes: "<pid>.<start>", its start time (field 22 of /proc/self/stat, clock
 * ticks after boot) telling it from an earlier process that had the same id (in a container,
 * each run may well get the same pid). Read when a file is written, so that no state is kept. */
static void writer_id(char *buf, size_t len)
{
    unsigned long long start = 0;
    FILE *fp = fopen("/proc/self/stat", "re");
    if (fp != NULL) {
        char line[1024];
        if (fgets(line, sizeof(line), fp) != NULL) {
            /* The command name (field 2) may hold spaces and parentheses: count from the last
             * ')'. Field 3 follows it; the start time is field 22. */
            char *p = strrchr(line, ')');
            for (int field = 3; p != NULL && field <= 22; field++) {
                p = strchr(p + 1, ' ');
                if (p != NULL && field == 22)
                    start = strtoull(p + 1, NULL, 10);
            }
        }
        fclose(fp);
    }
    snprintf(buf, len, "%ld.%llu", (long)getpid(), start);
}

/* path with ".k" before its extension: trace.json -> trace.1.json, trace -> trace.1 (the
 * extension is the last '.' of the last component, unless it starts that component). */
static void numbered(const char *path, unsigned k, char *out, size_t len)
{
    if (k == 0) {
        snprintf(out, len, "%s", path);
        return;
    }
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot == NULL || dot == base)
        dot = base + strlen(base);
    snprintf(out, len, "%.*s.%u%s", (int)(dot - path), path, k, dot);
}

/* Opens the file a pool of this process writes for the template path: the expanded path, or,
 * if this very process already wrote a file of that name (another pool did), the first of
 * path.1, path.2, ... (before the extension) that it did not write. A file an earlier run left
 * is overwritten, as perf and LLVM's profiles overwrite theirs. The file stays locked (flock)
 * until it is closed, so that pools destroyed at the same time, in this process or another,
 * take names one after the other. *used receives the name. */
static int open_own_file(const char *path, const char *writer, FILE **out, char *used, size_t len)
{
    char mark[96];
    snprintf(mark, sizeof(mark), "\"writer\": \"%s\"", writer);
    for (unsigned k = 0; k < 1000; k++) {
        numbered(path, k, used, len);
        int fd = open(used, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -errno;
        /* A file system without locks (ENOLCK) still gets its file, unordered. */
        while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
            ;
        char head[512];
        ssize_t got = pread(fd, head, sizeof(head) - 1, 0);
        head[got > 0 ? got : 0] = '\0';
        if (strstr(head, mark) != NULL) {
            close(fd); /* this process's own file: try the next name */
            continue;
        }
        FILE *fp = ftruncate(fd, 0) == 0 ? fdopen(fd, "w") : NULL;
        if (fp == NULL) {
            int err = -errno;
            close(fd);
            return err;
        }
        *out = fp;
        return 0;
    }
    return -EEXIST;
}

static int close_file(FILE *fp, int rc)
{
    if (ferror(fp) && rc == 0)
        rc = -EIO;
    if (fclose(fp) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* The pool's name with the characters JSON would need escaped replaced: tracks and files say
 * which pool they are. */
static void json_safe(char *s)
{
    for (char *c = s; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 || (unsigned char)*c >= 0x80)
            *c = '_';
    }
}

void weft__pool_write_stats(weft_pool *pool)
{
    char tmpl[4096], path[4096], writer[64], name[sizeof(pool->name)], head[160];
    weft__expand_path(pool->stats_path, pool, tmpl, sizeof(tmpl));
    writer_id(writer, sizeof(writer));
    memcpy(name, pool->name, sizeof(name));
    json_safe(name);
    snprintf(head, sizeof(head), "\"writer\": \"%s\", \"pool\": \"%s\", ", writer, name);
    FILE *fp = NULL;
    int rc = open_own_file(tmpl, writer, &fp, path, sizeof(path));
    if (rc == 0) {
        struct out o = {.fd = -1, .fp = fp};
        put_stats(pool, &o, head);
        rc = close_file(fp, 0);
    }
    if (rc != 0)
        weft__debug("could not write the statistics to %s: %s", path, strerror(-rc));
}

/* Writes the trace, with tracks named as the threads are. */
void weft__pool_write_trace(weft_pool *pool)
{
    unsigned n = weft__pool_slots(pool); /* every worker that ran: one track each */
    const struct weft__trace **t = weft__mem_alloc(&pool->mem, 0, n * sizeof(*t));
    const char **names = weft__mem_alloc(&pool->mem, 0, n * sizeof(*names));
    char *store = weft__mem_alloc(&pool->mem, 0, (size_t)n * 32);
    char tmpl[4096], path[4096], writer[64], name[sizeof(pool->name)];
    weft__expand_path(pool->trace_path, pool, tmpl, sizeof(tmpl));
    snprintf(path, sizeof(path), "%s", tmpl);
    int rc = -ENOMEM;
    if (t != NULL && names != NULL && store != NULL) {
        for (unsigned i = 0; i < n; i++) {
            t[i] = &weft__worker_at(pool, i)->trace;
            char *nm = store + 32 * (size_t)i;
            weft__worker_name(pool, i, nm);
            json_safe(nm);
            names[i] = nm;
        }
        writer_id(writer, sizeof(writer));
        memcpy(name, pool->name, sizeof(name));
        json_safe(name);
        FILE *fp = NULL;
        rc = open_own_file(tmpl, writer, &fp, path, sizeof(path));
        if (rc == 0)
            rc = close_file(fp, weft__trace_write(fp, writer, name, t, names, n));
    }
    if (rc != 0)
        weft__debug("could not write the trace to %s: %s", path, strerror(-rc));
    weft__mem_free(&pool->mem, t);
    weft__mem_free(&pool->mem, names);
    weft__mem_free(&pool->mem, store);
}
