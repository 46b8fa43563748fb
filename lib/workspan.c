/* SPDX-License-Identifier: MIT */
/*
 * Work and span ($WEFT_WORKSPAN), measured as Cilkscale (and Cilkview before it) does, from one
 * run, so that the parallelism work/span bounds the speedup on any number of cores.
 *
 * The model. A pool's execution is a graph of strands: stretches of the pool's code with no
 * fork, join, submit or wait inside. Each strand keeps a point (struct weft__wsp): the work that
 * flowed into it, and the span (longest chain of time) and burdened span ending at it. A
 * segment of a strand adds its time to all three. The series-parallel rules:
 *   - a fork (weft_join, weft_offer, weft_scope_spawn, a submission) starts the child at the
 *     parent's span, with work 0; the parent's continuation goes on from the same span;
 *   - a join (weft_join's end, weft_reclaim, weft_scope_wait, a wait on a future) takes the
 *     larger span of the two sides and the sum of their work;
 *   - the burdened span charges WEFT_WS_BURDEN_NS per spawn on the continuation and per sync on
 *     the child's side before the larger is taken (Cilkscale's rule), so that a chain of many
 *     small forks shows the cost of scheduling them.
 * The pool's work is the time of all segments (summed per worker, so that a task nobody waits
 * for counts too), its span the largest span at which a task ended.
 *
 * Where the points live. The running strand's point is thread-local (weft__strand): forks and
 * joins on one thread touch no shared memory. A branch that may run on another thread carries
 * its start and end in its frame (join.c: the thief writes the end before it marks the frame
 * done, with the release the owner's acquire pairs with), and a task in its future (ws_span and
 * ws_bspan hold the start from submission to start, then the end; ws_work its work; all written
 * before the final state's release CAS). A wait on a worker (worker.c, weft__help) closes the
 * waiting strand's segment before it runs anything else on its stack, and takes up again at
 * the end: waiting is not work.
 *
 * Loops. weft_parallel_for and weft_parallel_reduce run, when measured, along the full binary
 * split of their range down to the grain: each node either forks its halves (when the worker's
 * deque is empty, as the lazy split does) or runs them one after the other, but its span is
 * always the larger of its halves' (join.c, measured_node). So the span is the logical one
 * whatever the schedule, on one worker as on many.
 *
 * Threads that are not the pool's. A thread outside the pool does no work of the pool, but it
 * orders what it submits after what it waited for: it keeps a clock per pool (thread-local, a
 * few entries), advanced by its waits, from which its submissions start. A promise completed
 * by such a thread, or a task of another pool, is a source: waiting on it adds nothing to the
 * span. Its completion time is the outside world's latency, which more cores would not shorten,
 * and which the work does not count either; so parallelism stays a property of the pool's own
 * computation. A promise completed by a measured task carries that task's point.
 *
 * Reclaimed frames. weft_reclaim returns true when nobody took the frame, and the caller then
 * calls fn itself, where weft cannot see fn end. fn is a branch of the offer's fork point all
 * the same: the reclaim closes the continuation at j, rewinds the strand to the fork point, and
 * leaves the join of j with the strand pending, to be made when fn has certainly returned. Each
 * thread's offers and reclaims are strictly nested, as are its join halves, branches, strands
 * and regions: each opens a level (weft__ws_open) and closes it (weft__ws_close). A reclaim
 * leaves its join at the level it closes to, L; fn runs inside L, and everything it opens is
 * above L, so nothing in fn closes L: the first close of L after the reclaim comes after fn
 * returned (the reclaim of an earlier offer, the end of the half, branch, strand or region the
 * caller is in), and applies the join there. Joins left at one level merge into one entry (the
 * composition of joins is again a join, with one burden per sync on the strand's side), so the
 * stack of pending joins, levels strictly increasing, is never deeper than the levels open; it
 * grows from the pool's allocator, and out of memory the join is made at once (fn then counts
 * in series after the continuation: an over-estimate of the span, never an under-estimate).
 * Nothing else applies pending joins: a wait's join into the strand commutes with them, and a
 * fork (an offer, a join, a spawn, a loop, a submission) may be inside fn, where applying them
 * would serialise fn after the continuation. What this cannot see: the caller's code between
 * fn's return and the close of L counts as part of fn's branch, beside the continuation instead
 * of after both; that includes forks made there, which start from fn's end only (a fork reads
 * the clock while a join is pending at its level, since all of fn may lie in the segment in
 * progress). One case is recognised: an offer of the frame whose reclaim began the newest
 * pending join, at the same level, is the caller past fn (a loop reusing one frame), and
 * applies the join first (weft__ws_offering).
 *
 * Cost. Off: one test of a pointer (per worker or per pool) on each path. On: two reads of
 * CLOCK_MONOTONIC (vDSO, about 25 ns each on the development machine) per join, per task and
 * per wait, and no shared atomic; closing a region takes the pool's mutex. A fork reads no
 * clock: its child starts at the strand's last mark (weft__ws_point), which leaves out of the
 * child's span the few nanoseconds of code since that mark.
 */
#include "workspan.h"

#include "alloc.h"
#include "platform.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

WEFT_TLS struct weft__strand weft__strand;

/* --- strands --- */

struct weft__wsp weft__ws_mark(void)
{
    struct weft__strand *s = &weft__strand;
    int64_t now = weft__now_ns();
    int64_t dt = now - s->t0;
    s->t0 = now;
    s->at.work += dt;
    s->at.span += dt;
    s->at.bspan += dt;
    if (s->acc != NULL)
        s->acc->work += dt;
    return s->at;
}

void weft__ws_set(const struct weft__wsp *p)
{
    weft__strand.at = *p;
}

uint32_t weft__ws_begin(struct weft__worker *w, int64_t span, int64_t bspan)
{
    struct weft__strand *s = &weft__strand;
    s->acc = w->ws;
    s->pool = w->pool;
    s->t0 = weft__now_ns();
    s->at = (struct weft__wsp){0, span, bspan};
    return weft__ws_open();
}

/* --- pending joins --- */

/* The strand, at the end of the branch, joins the continuation(s) e: with one burden on the
 * branch's side for each join merged into e. */
static void apply(struct weft__strand *s, const struct weft__ws_pend *e)
{
    struct weft__wsp j = e->j;
    j.work += s->at.work;
    if (s->at.span > j.span)
        j.span = s->at.span;
    int64_t b = s->at.bspan + (int64_t)e->syncs * WEFT_WS_BURDEN_NS;
    if (b > j.bspan)
        j.bspan = b;
    s->at = j;
}

struct weft__wsp weft__ws_close(uint32_t base)
{
    struct weft__strand *s = &weft__strand;
    weft__ws_mark(); /* the segment in progress ends the branch: it runs before the joins */
    while (s->npend > 0 && s->pend[s->npend - 1].level > base)
        apply(s, &s->pend[--s->npend]);
    if (s->level > base)
        s->level = base;
    return s->at;
}

void weft__ws_rejoin(void)
{
    struct weft__strand *s = &weft__strand;
    weft__ws_mark();
    apply(s, &s->pend[--s->npend]);
}

/* Room for one more pending join; false when out of memory. */
static bool pend_grow(struct weft__strand *s)
{
    if (s->mem == NULL)
        s->mem = &s->pool->mem; /* a thread belongs to one pool for its life */
    uint32_t cap = s->cap != 0 ? 2 * s->cap : 64;
    struct weft__ws_pend *a = weft__mem_alloc_quiet(s->mem, 0, cap * sizeof(*a));
    if (a == NULL)
        return false;
    if (s->npend > 0)
        memcpy(a, s->pend, s->npend * sizeof(*a));
    weft__mem_free(s->mem, s->pend);
    s->pend = a;
    s->cap = cap;
    return true;
}

void weft__ws_defer(const struct weft__wsp *j, const struct weft__wsp *fork, const void *frame)
{
    struct weft__strand *s = &weft__strand;
    struct weft__ws_pend *top = s->npend > 0 ? &s->pend[s->npend - 1] : NULL;
    if (top != NULL && top->level == s->level) {
        /* A second join at this level: j lies on the branch of the one below, so applying both
         * to the strand b gives top.j joined with (j joined with b), which is one join again. */
        top->j.work += j->work;
        if (j->span > top->j.span)
            top->j.span = j->span;
        int64_t b = j->bspan + (int64_t)top->syncs * WEFT_WS_BURDEN_NS;
        if (b > top->j.bspan)
            top->j.bspan = b;
        top->syncs++;
    } else if (s->npend < s->cap || pend_grow(s)) {
        s->pend[s->npend++] = (struct weft__ws_pend){*j, s->level, 1, frame};
    } else {
        return; /* the strand stays at j: the branch runs after the continuation */
    }
    weft__ws_branch(fork);
}

void weft__ws_thread_end(void)
{
    struct weft__strand *s = &weft__strand;
    if (s->pend != NULL)
        weft__mem_free(s->mem, s->pend);
    s->pend = NULL;
    s->npend = s->cap = 0;
    s->level = 0;
}

void weft__ws_spawned(void)
{
    weft__strand.at.bspan += WEFT_WS_BURDEN_NS;
}

void weft__ws_pause(struct weft__wsp *saved)
{
    *saved = weft__ws_mark();
}

void weft__ws_resume(struct weft__wsp *saved)
{
    weft__strand.at = *saved;
    weft__strand.t0 = weft__now_ns(); /* the time spent waiting is nobody's work */
}

/* --- clocks of threads outside the pool --- */

#define OUTSIDE_CLOCKS 4

struct clock {
    const weft_pool *pool; /* NULL: free */
    uint64_t id;           /* the measurement it belongs to; 0: not known yet */
    struct weft__wsp at;
};

/* Not hot, so not initial-exec: leaves the static TLS block small for a dlopen'ed library. */
static _Thread_local struct clock outside[OUTSIDE_CLOCKS];
static _Thread_local unsigned outside_next;

static struct clock *clock_new(const weft_pool *pool, uint64_t id)
{
    struct clock *c = NULL;
    for (unsigned i = 0; i < OUTSIDE_CLOCKS && c == NULL; i++) {
        if (outside[i].pool == NULL)
            c = &outside[i];
    }
    if (c == NULL)
        c = &outside[outside_next++ % OUTSIDE_CLOCKS]; /* forgets the oldest */
    *c = (struct clock){pool, id, {0, 0, 0}};
    return c;
}

/* The calling thread's clock for pool, which exists. */
static struct clock *clock_of(weft_pool *pool)
{
    uint64_t id = pool->ws->id;
    for (unsigned i = 0; i < OUTSIDE_CLOCKS; i++) {
        struct clock *c = &outside[i];
        if (c->pool == pool && (c->id == id || c->id == 0)) {
            c->id = id;
            return c;
        }
        if (c->pool == pool) /* an earlier pool at the same address */
            return clock_new(pool, id);
    }
    return clock_new(pool, id);
}

/* The clock for a pool that may be gone (a wait on one of its futures): found by address. */
static struct clock *clock_by_address(const weft_pool *pool)
{
    for (unsigned i = 0; i < OUTSIDE_CLOCKS; i++) {
        if (outside[i].pool == pool)
            return &outside[i];
    }
    return clock_new(pool, 0);
}

/* Whether the calling thread runs a measured strand of pool. */
static bool on_strand_of(const weft_pool *pool)
{
    return weft__strand.acc != NULL && weft__strand.pool == pool;
}

/* --- tasks and futures --- */

void weft__ws_submitted(weft_pool *pool, weft_future *f)
{
    struct weft__strand *s = &weft__strand;
    if (on_strand_of(pool)) {
        struct weft__wsp p = weft__ws_point(); /* as a fork */
        f->ws_span = p.span;
        f->ws_bspan = p.bspan;
        s->at.bspan += WEFT_WS_BURDEN_NS; /* the continuation of a spawn */
    } else {
        struct clock *c = clock_of(pool);
        f->ws_span = c->at.span;
        f->ws_bspan = c->at.bspan;
        c->at.bspan += WEFT_WS_BURDEN_NS;
    }
}

uint32_t weft__ws_task_begin(struct weft__worker *w, weft_future *f)
{
    return weft__ws_begin(w, f->ws_span, f->ws_bspan);
}

void weft__ws_task_end(struct weft__worker *w, weft_future *f, uint32_t base)
{
    struct weft__wsp e = weft__ws_close(base);
    struct weft__ws_worker *acc = w->ws;
    f->ws_work = e.work; /* f->fn has returned: the slot is free */
    f->ws_span = e.span;
    f->ws_bspan = e.bspan;
    /* relaxed: published with the stamp by the release CAS of the final state */
    st_relaxed(&f->ws_flags, WEFT_WS_ENDED);
    if (e.span > acc->span)
        acc->span = e.span;
    if (e.bspan > acc->bspan)
        acc->bspan = e.bspan;
    acc->tasks++;
}

void weft__ws_promise(weft_future *f)
{
    struct weft__strand *s = &weft__strand;
    int64_t d = weft__now_ns() - s->t0;
    f->ws_source = s->pool;
    f->ws_span = s->at.span + d;
    f->ws_bspan = s->at.bspan + d;
    /* relaxed: published by the release CAS of the final state, as for a task */
    st_relaxed(&f->ws_flags, WEFT_WS_ENDED | WEFT_WS_PROMISE);
}

void weft__ws_waited(weft_future *f)
{
    /* relaxed: the caller's acquire load of the final state ordered the stamp before this */
    uint32_t fl = ld_relaxed(&f->ws_flags);
    if (!(fl & WEFT_WS_ENDED))
        return;
    const weft_pool *src = (fl & WEFT_WS_PROMISE) ? f->ws_source : f->pool;
    struct weft__wsp dep = {0, f->ws_span, f->ws_bspan};
    /* A task's work goes to the first strand that waits for it, so that a region counts it
     * once. acq_rel: only its atomicity matters here (the stamp was published by the final
     * state); the waiters that lose read nothing through it. */
    if (!(fl & WEFT_WS_PROMISE) && !(or_acq_rel(&f->ws_flags, WEFT_WS_TAKEN) & WEFT_WS_TAKEN))
        dep.work = f->ws_work;
    if (on_strand_of(src)) {
        struct weft__wsp j = weft__ws_mark();
        weft__ws_join(&j, &dep);
        weft__ws_set(&j);
    } else {
        weft__ws_join(&clock_by_address(src)->at, &dep);
    }
}

/* --- regions --- */

#define REGION_OPEN 0x77736f70u /* "wsop" */
#define REGION_OFF  0x77736f66u /* "wsof": begun on a pool that does not measure */
#define NO_LEVEL    UINT32_MAX  /* opened outside the pool's strands: on a clock */

struct region {
    uint32_t magic;
    uint32_t level; /* the level it opened on its strand, to close to at its end */
    weft_pool *pool;
    const char *name;
    const void *thread; /* the opening thread: the address of its strand */
    const void *task;   /* the opening task's run frame (worker.h), NULL outside tasks */
    struct weft__wsp start;
};
_Static_assert(sizeof(struct region) <= sizeof(weft_region), "weft_region too small: grow it");

/* Closed regions, added up per name, for the JSON file. */
struct weft__ws_region {
    char *name;
    uint64_t count;
    int64_t work, span, bspan;
};

static struct weft__wsp point_of(weft_pool *pool)
{
    if (on_strand_of(pool))
        return weft__ws_mark();
    return clock_of(pool)->at;
}

int weft_region_begin(weft_region *r, weft_pool *pool, const char *name)
{
    if (r == NULL || pool == NULL || name == NULL)
        return -EINVAL;
    struct region *g = (struct region *)r;
    if (pool->ws == NULL) {
        g->magic = REGION_OFF;
        return -ENOTSUP;
    }
    uint32_t level = NO_LEVEL;
    struct weft__wsp start;
    if (on_strand_of(pool)) {
        /* A level of its own, so that its end applies the joins left pending inside it and
         * only those (workspan.c, "Reclaimed frames"). */
        start = weft__ws_mark();
        level = weft__ws_open();
    } else {
        start = clock_of(pool)->at;
    }
    *g = (struct region){REGION_OPEN, level, pool, name, &weft__strand, weft__current, start};
    return 0;
}

static int record(struct weft__ws *ws, const char *name, const struct weft__wsp *d)
{
    int rc = 0;
    pthread_mutex_lock(&ws->mu);
    size_t i = 0;
    while (i < ws->nregions && strcmp(ws->regions[i].name, name) != 0)
        i++;
    if (i == ws->nregions) {
        if (ws->nregions == ws->cap) {
            size_t cap = ws->cap != 0 ? 2 * ws->cap : 8;
            struct weft__ws_region *a = weft__mem_alloc(ws->mem, 0, cap * sizeof(*a));
            if (a == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            if (ws->nregions > 0)
                memcpy(a, ws->regions, ws->nregions * sizeof(*a));
            weft__mem_free(ws->mem, ws->regions);
            ws->regions = a;
            ws->cap = cap;
        }
        char *copy = weft__mem_alloc(ws->mem, 0, strlen(name) + 1);
        if (copy == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        strcpy(copy, name);
        ws->regions[i] = (struct weft__ws_region){copy, 0, 0, 0, 0};
        ws->nregions++;
    }
    ws->regions[i].count++;
    ws->regions[i].work += d->work;
    ws->regions[i].span += d->span;
    ws->regions[i].bspan += d->bspan;
out:
    pthread_mutex_unlock(&ws->mu);
    return rc;
}

static double ratio(int64_t a, int64_t b)
{
    return b > 0 ? (double)a / (double)b : 0.0;
}

int weft_region_end(weft_region *r, weft_workspan *out)
{
    if (r == NULL)
        return -EINVAL;
    struct region *g = (struct region *)r;
    if (g->magic == REGION_OFF)
        return -ENOTSUP;
    if (g->magic != REGION_OPEN || g->thread != (const void *)&weft__strand ||
        g->task != (const void *)weft__current)
        return -EINVAL;
    bool leveled = g->level != NO_LEVEL && on_strand_of(g->pool);
    struct weft__wsp e = leveled ? weft__ws_close(g->level) : point_of(g->pool);
    struct weft__wsp d = {e.work - g->start.work, e.span - g->start.span, e.bspan - g->start.bspan};
    d.work = d.work > 0 ? d.work : 0;
    d.span = d.span > 0 ? d.span : 0;
    d.bspan = d.bspan > 0 ? d.bspan : 0;
    int rc = record(g->pool->ws, g->name, &d);
    if (rc != 0) {
        if (leveled)
            weft__strand.level = g->level + 1; /* r stays open (its joins are made: no harm) */
        return rc;
    }
    g->magic = 0;
    if (out != NULL)
        *out = (weft_workspan){(uint64_t)d.work, (uint64_t)d.span, (uint64_t)d.bspan,
                               ratio(d.work, d.span), ratio(d.work, d.bspan)};
    return 0;
}

/* --- the pool's measurement --- */

int weft__ws_create(weft_pool *pool, const char *path)
{
    struct weft__ws *ws = weft__mem_alloc(&pool->mem, 0, sizeof(*ws));
    if (ws == NULL)
        return -ENOMEM;
    ws->mem = &pool->mem;
    ws->path = weft__mem_alloc(ws->mem, 0, strlen(path) + 1);
    /* One accumulator per worker the pool may ever have (it may grow: resize.c); zeroed */
    ws->workers = weft__mem_alloc(ws->mem, WEFT_CACHE_LINE,
                                  WEFT_MAX_THREADS * sizeof(struct weft__ws_worker));
    if (ws->path == NULL || ws->workers == NULL || pthread_mutex_init(&ws->mu, NULL) != 0) {
        weft__mem_free(ws->mem, ws->path);
        weft__mem_free(ws->mem, ws->workers);
        weft__mem_free(ws->mem, ws);
        return -ENOMEM;
    }
    strcpy(ws->path, path);
    /* Unique among the pools this process makes in practice: a pool made later at the same
     * address is another measurement, whose clocks start afresh (clock_of). */
    ws->id = ((uint64_t)weft__now_ns() << 1 | 1) ^ (uint64_t)(uintptr_t)pool;
    pool->ws = ws; /* the workers take theirs as they are made (weft__ws_worker) */
    return 0;
}

int weft__ws_worker(weft_pool *pool, struct weft__worker *w)
{
    w->ws = &pool->ws->workers[w->index];
    return 0;
}

const char *weft__ws_path(const weft_pool *pool)
{
    return pool->ws->path;
}

void weft__ws_free(weft_pool *pool, bool forked)
{
    struct weft__ws *ws = pool->ws;
    if (ws == NULL)
        return;
    for (size_t i = 0; i < ws->nregions; i++)
        weft__mem_free(ws->mem, ws->regions[i].name);
    weft__mem_free(ws->mem, ws->regions);
    if (!forked) /* in a fork() child, a vanished thread may have held it */
        pthread_mutex_destroy(&ws->mu);
    weft__mem_free(ws->mem, ws->workers);
    weft__mem_free(ws->mem, ws->path);
    weft__mem_free(ws->mem, ws);
    pool->ws = NULL;
}

/* A region's name as a JSON string: quotes, backslashes and control characters escaped, and any
 * byte that does not belong to well-formed UTF-8 replaced by '?', so the file always parses. */
static void put_name(FILE *o, const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    fputc('"', o);
    while (*p != '\0') {
        unsigned c = *p;
        size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
        bool ok = len > 0;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[k] & 0xc0) == 0x80;
        if (ok && len > 1) {
            /* no overlong forms, no surrogates, nothing past U+10FFFF */
            uint32_t cp = c & (0x7f >> len);
            for (size_t k = 1; k < len; k++)
                cp = cp << 6 | (p[k] & 0x3f);
            ok = cp >= (len == 2   ? 0x80u
                        : len == 3 ? 0x800u
                                   : 0x10000u) &&
                 cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (!ok) {
            fputc('?', o);
            p++;
        } else if (c == '"' || c == '\\') {
            fprintf(o, "\\%c", (char)c);
            p++;
        } else if (c < 0x20) {
            fprintf(o, "\\u%04x", c);
            p++;
        } else {
            fwrite(p, 1, len, o);
            p += len;
        }
    }
    fputc('"', o);
}

static void put_numbers(FILE *o, int64_t work, int64_t span, int64_t bspan)
{
    fprintf(o,
            "\"work_ns\": %lld, \"span_ns\": %lld, \"parallelism\": %.6f, "
            "\"burdened_span_ns\": %lld, \"burdened_parallelism\": %.6f",
            (long long)work, (long long)span, ratio(work, span), (long long)bspan,
            ratio(work, bspan));
}

void weft__ws_write(weft_pool *pool)
{
    struct weft__ws *ws = pool->ws;
    int64_t work = 0, span = 0, bspan = 0;
    uint64_t tasks = 0, stolen = 0;
    unsigned n = weft__pool_slots(pool); /* every worker that ran */
    for (unsigned i = 0; i < n; i++) {
        const struct weft__ws_worker *a = &ws->workers[i];
        work += a->work;
        span = a->span > span ? a->span : span;
        bspan = a->bspan > bspan ? a->bspan : bspan;
        tasks += a->tasks;
        stolen += a->stolen;
    }
    char path[4096];
    weft__expand_path(ws->path, pool, path, sizeof(path));
    FILE *o = fopen(path, "we");
    if (o == NULL) {
        weft__debug("could not write work and span to %s: %s", path, strerror(errno));
        return;
    }
    fprintf(o, "{\"weft_version\": \"%s\", \"workers\": %u, \"clock\": \"CLOCK_MONOTONIC\", ",
            weft_version(), n);
    put_numbers(o, work, span, bspan);
    fprintf(o, ", \"burden_ns\": %d, \"tasks\": %llu, \"frames_stolen\": %llu, \"regions\": [",
            WEFT_WS_BURDEN_NS, (unsigned long long)tasks, (unsigned long long)stolen);
    for (size_t i = 0; i < ws->nregions; i++) {
        const struct weft__ws_region *g = &ws->regions[i];
        fputs(i == 0 ? "\n  {\"name\": " : ",\n  {\"name\": ", o);
        put_name(o, g->name);
        fprintf(o, ", \"count\": %llu, ", (unsigned long long)g->count);
        put_numbers(o, g->work, g->span, g->bspan);
        fputc('}', o);
    }
    fputs("]}\n", o);
    bool bad = ferror(o) != 0;
    if (fclose(o) != 0 || bad)
        weft__debug("could not write work and span to %s: %s", path, strerror(errno));
}
