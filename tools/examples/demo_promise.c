/* SPDX-License-Identifier: MIT */
/*
 * weft-demo-promise: libuv callbacks as weft promises, gathered, and a continuation that
 * summarizes them on a weft pool, without the loop thread ever waiting on a future.
 *
 * The story, in three sections, each with fresh promises:
 *
 *   [gather] Three timers (t1 1.5 s, t2 0.5 s, t3 1 s) and two file reads (alpha.txt and
 *            beta.txt, which the demo writes into a temporary directory first), each with a
 *            promise (weft_future_create) that its libuv callback completes with
 *            weft_future_set_result. A weft_gather without flags stands for the five, and
 *            weft_future_then(gather, pool, summarize) runs once it is DONE: on a worker it
 *            reads the results in input order (not in the order the callbacks came) and
 *            computes, in parallel, a digest of each file's contents (FNV-1a over the bytes,
 *            DIGEST_ROUNDS times over) with its lines and words.
 *   [fail]   The same, and a read of missing.txt, which does not exist: its open fails, the
 *            callback calls weft_future_set_error(-ENOENT), and the gather, without flags,
 *            fails at once with that code. The continuation runs all the same (it runs whatever
 *            the outcome) and has nothing to summarize; the timers still fire and complete
 *            their promises, which the failed gather no longer waits for.
 *   [rx]     The same with WEFT_RETURN_EXCEPTIONS, and t4: a 2 s timer raced by a 0.8 s
 *            deadline for the same promise. The deadline wins (set_error -ETIMEDOUT), and
 *            when t4 fires its set_result returns -EALREADY and changes nothing: a promise
 *            completes once. The gather is DONE when all seven have finished, and the
 *            continuation summarizes the five that succeeded and names the codes of the two
 *            that failed (weft_gather_child).
 *
 * How the loop meets the pool. Everything libuv does happens on the loop thread, the main
 * thread: timers, file requests (libuv runs them on its own thread pool and calls back on the
 * loop), completing promises, weft_gather and weft_future_then. None of these waits. The
 * continuation runs on a weft worker; its future goes into one open-ended completion set
 * (weft_completion_add), whose descriptor (weft_completion_fd) the loop watches with a
 * uv_poll_t, exactly as a server watches it for its jobs ("Using weft in a server" in the
 * README). When the descriptor is readable the loop takes every finished future with
 * weft_completion_next(done, 0, &f), whose result (there at once: it has finished) is the
 * report. The alternative, an on_done callback that calls uv_async_send, works too, but needs
 * a queue of its own to carry which futures finished; the completion set is that queue, and
 * its descriptor is level-triggered, so nothing is lost between two polls.
 *
 * Libuv's errors are negative errno values on Unix, as weft's are, so a failed request's
 * result is the promise's failure code as it is.
 *
 * Output: one line per event, through demo_say (demo_util.h). A callback completes its promise
 * and prints the line that says so with the output lock held, so that the continuation, which
 * may start the moment the last promise of a gather completes, can never print before the
 * line of that promise. Timers of one section are started in the same loop iteration, in order
 * of duration, so they fire in that order at any --scale (libuv breaks ties by start order).
 * Everything but the timestamps is the same at every run: tools/examples/check_demos.sh
 * checks these facts (the CTest test demo_promise).
 *
 * Usage: weft-demo-promise [--scale F] [--threads N]
 */
#include <uv.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_util.h"
#include "weft.h"

/* How many times the continuation hashes each file: enough to be work worth a worker. */
#define DIGEST_ROUNDS 256

/* Exits with status 1 after saying which libuv call failed and why. */
#define UV_CHECK(call)                                                                             \
    do {                                                                                           \
        int uv_rc_ = (call);                                                                       \
        if (uv_rc_ < 0) {                                                                          \
            fflush(stdout);                                                                        \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,                   \
                    uv_strerror(uv_rc_));                                                          \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * What the sections are made of
 */

enum { T1, T2, T3, ALPHA, BETA, MISSING, T4, NSOURCES };

typedef enum { SRC_TIMER, SRC_FILE } src_kind;

typedef struct source_spec {
    const char *name;
    src_kind kind;
    unsigned ms;          /* timer: when it fires, unscaled */
    unsigned deadline_ms; /* timer: 0, or when a deadline fails its promise with -ETIMEDOUT */
    unsigned lines;       /* file: "<name> NNNN <text>\n" this many times; 0: never written */
    const char *text;
} source_spec;

static const source_spec specs[NSOURCES] = {
    [T1] = {"t1", SRC_TIMER, 1500, 0, 0, NULL},
    [T2] = {"t2", SRC_TIMER, 500, 0, 0, NULL},
    [T3] = {"t3", SRC_TIMER, 1000, 0, 0, NULL},
    [ALPHA] = {"alpha.txt", SRC_FILE, 0, 0, 300, "the quick brown fox jumps over the lazy dog"},
    [BETA] = {"beta.txt", SRC_FILE, 0, 0, 1000, "pack my box with five dozen liquor jugs"},
    [MISSING] = {"missing.txt", SRC_FILE, 0, 0, 0, NULL},
    [T4] = {"t4", SRC_TIMER, 2000, 800, 0, NULL},
};

typedef struct section_spec {
    const char *tag;
    const char *title;
    unsigned flags; /* weft_gather's */
    size_t n;
    int sources[NSOURCES]; /* in gather (slot) order */
} section_spec;

static const section_spec sections[] = {
    {.tag = "gather",
     .title = "three timers and two file reads, one weft_gather without flags",
     .flags = 0,
     .n = 5,
     .sources = {T1, T2, T3, ALPHA, BETA}},
    {.tag = "fail",
     .title = "the same and a read of missing.txt: the gather fails fast",
     .flags = 0,
     .n = 6,
     .sources = {T1, T2, T3, ALPHA, BETA, MISSING}},
    {.tag = "rx",
     .title = "WEFT_RETURN_EXCEPTIONS, and t4 raced by a deadline",
     .flags = WEFT_RETURN_EXCEPTIONS,
     .n = 7,
     .sources = {T1, T2, T3, ALPHA, BETA, MISSING, T4}},
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* ---------------------------------------------------------------------------------------------
 * State
 */

typedef struct demo demo;

/* One source of a result, with its promise. The loop thread owns everything here; a worker
 * reads spec, buf and got (through the promise's result) only after the promise completed. */
typedef struct source {
    demo *d;
    const source_spec *spec;
    weft_future *promise; /* the reference weft_future_create gave; released at section end */
    uv_timer_t timer;     /* timers: the timer, and the deadline racing it */
    uv_timer_t deadline;
    uv_fs_t req; /* files: open, fstat, read, close, one after the other */
    uv_file fd;
    const char *step; /* the request under way, for the error message */
    int code;         /* files: 0, or the failure of the first request that failed */
    char *buf;
    size_t size, got;
} source;

/* What the continuation found; written on a worker, read by the loop after it took the
 * continuation's future from the completion set. */
typedef struct slot_report {
    const source *src; /* NULL where the child failed (WEFT_RETURN_EXCEPTIONS only) */
    int code;          /* the child's: 0 or its failure code */
    size_t lines, words;
    uint64_t digest;
} slot_report;

typedef struct report {
    weft_state gather_state;
    int gather_code;
    int worker;
    size_t n;
    slot_report slot[NSOURCES];
} report;

struct demo {
    uv_loop_t *loop;
    weft_pool *pool;
    weft_completion *done; /* the continuations' futures, watched through its descriptor */
    uv_poll_t poll;
    double scale;
    char dir[PATH_MAX];
    source src[NSOURCES];
    size_t section;     /* index into sections */
    size_t outstanding; /* callbacks of this section still to come */
    bool reported;      /* the continuation's report has been taken */
    report rep;
};

/* "-ENOENT (no such file or directory)": a failure of libuv's (libuv names every errno value it
 * may return). */
static const char *io_error_text(int code, char *buf, size_t size)
{
    snprintf(buf, size, "-%s (%s)", uv_err_name(code), uv_strerror(code));
    return buf;
}

/* "0", or "-EALREADY (the future has already finished)": what a weft call returned. */
static const char *rc_text(int rc, char *buf, size_t size)
{
    char name[32];
    if (rc == 0)
        snprintf(buf, size, "0");
    else
        snprintf(buf, size, "%s (%s)", demo_code_name(rc, name, sizeof name), weft_strerror(rc));
    return buf;
}

/* ---------------------------------------------------------------------------------------------
 * The continuation: runs on a worker once the gather has finished
 */

/* FNV-1a over the bytes, rounds times over (each round continuing from the last hash), and the
 * lines and words in one pass. */
static void digest_file(void *arg)
{
    slot_report *s = arg;
    const unsigned char *p = (const unsigned char *)s->src->buf;
    size_t n = s->src->got;
    uint64_t h = 0xcbf29ce484222325u;
    for (int r = 0; r < DIGEST_ROUNDS; r++)
        for (size_t i = 0; i < n; i++) {
            h ^= p[i];
            h *= 0x100000001b3u;
        }
    size_t lines = 0, words = 0;
    bool in_word = false;
    for (size_t i = 0; i < n; i++) {
        bool space = p[i] == ' ' || p[i] == '\n' || p[i] == '\t';
        lines += p[i] == '\n';
        words += !space && !in_word;
        in_word = !space;
    }
    s->digest = h;
    s->lines = lines;
    s->words = words;
}

static int summarize(weft_future *gather, void *arg, void **result)
{
    demo *d = arg;
    report *r = &d->rep;
    const section_spec *sec = &sections[d->section];
    char buf[128];

    r->worker = weft_worker_index();
    r->n = sec->n;
    void *v = NULL;
    r->gather_code = weft_future_result(gather, &v); /* finished: returns at once */
    r->gather_state = weft_future_state(gather);
    *result = r;
    if (r->gather_code != 0) {
        /* Failed fast: some children may still be pending, so there is nothing to read. */
        demo_say("continuation on worker %d: gather %s with %s: nothing to summarize", r->worker,
                 weft_state_name(r->gather_state), io_error_text(r->gather_code, buf, sizeof buf));
        return 0;
    }

    /* The values in input order; NULL for a child that failed (WEFT_RETURN_EXCEPTIONS), whose
     * code weft_gather_child gives. */
    void **values = v;
    size_t files = 0;
    for (size_t i = 0; i < r->n; i++) {
        slot_report *s = &r->slot[i];
        s->code = weft_gather_child(gather, i, NULL);
        s->src = values[i];
        files += s->code == 0 && s->src->spec->kind == SRC_FILE;
    }
    demo_say("continuation on worker %d: gather %s, %zu results; digests of %zu files in parallel",
             r->worker, weft_state_name(r->gather_state), r->n, files);

    /* The CPU-bound part, forked: one digest per file, possibly on several workers. */
    weft_scope scope;
    weft_spawn spawn[NSOURCES];
    weft_scope_init(&scope);
    for (size_t i = 0; i < r->n; i++)
        if (r->slot[i].code == 0 && r->slot[i].src->spec->kind == SRC_FILE)
            weft_scope_spawn(&scope, &spawn[i], digest_file, &r->slot[i]);
    weft_scope_wait(&scope);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The loop side
 */

static void start_section(demo *d);

/* Prints the report the continuation left. */
static void print_report(const demo *d, const report *r)
{
    const section_spec *sec = &sections[d->section];
    char buf[128];
    if (r->gather_code != 0) {
        demo_say("loop: report taken: gather %s with %s", weft_state_name(r->gather_state),
                 io_error_text(r->gather_code, buf, sizeof buf));
        return;
    }
    demo_say("loop: report taken: gather %s, %zu slots", weft_state_name(r->gather_state), r->n);
    unsigned timer_ms = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < r->n; i++) {
        const slot_report *s = &r->slot[i];
        if (s->code != 0) {
            demo_say("report slot %zu: %s failed %s", i + 1, specs[sec->sources[i]].name,
                     demo_code_name(s->code, buf, sizeof buf));
        } else if (s->src->spec->kind == SRC_TIMER) {
            demo_say("report slot %zu: %s timer %u ms", i + 1, s->src->spec->name,
                     s->src->spec->ms);
            timer_ms += s->src->spec->ms;
        } else {
            demo_say("report slot %zu: %s %zu bytes, %zu lines, %zu words, digest %016" PRIx64,
                     i + 1, s->src->spec->name, s->src->got, s->lines, s->words, s->digest);
            bytes += s->src->got;
        }
    }
    demo_say("report total: timers %u ms, files %zu bytes", timer_ms, bytes);
}

/* When this section's report has been taken and every callback has come: the final state of
 * each promise, then the next section (or the end). */
static void maybe_end_section(demo *d)
{
    if (!d->reported || d->outstanding > 0)
        return;
    const section_spec *sec = &sections[d->section];
    char list[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < sec->n; i++) {
        source *src = &d->src[sec->sources[i]];
        char buf[128], name[32];
        int code = weft_future_result(src->promise, NULL); /* finished: returns at once */
        if (code == 0)
            snprintf(buf, sizeof buf, "%s DONE", src->spec->name);
        else
            snprintf(buf, sizeof buf, "%s %s %s", src->spec->name,
                     weft_state_name(weft_future_state(src->promise)),
                     demo_code_name(code, name, sizeof name));
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", buf);
        weft_future_release(src->promise);
        src->promise = NULL;
        free(src->buf);
        src->buf = NULL;
    }
    demo_say("promises: %s", list);
    d->section++;
    if (d->section < NSECTIONS) {
        start_section(d);
        return;
    }
    /* The end: with every handle closed, uv_run returns. */
    uv_poll_stop(&d->poll);
    uv_close((uv_handle_t *)&d->poll, NULL);
    for (int k = 0; k < NSOURCES; k++)
        if (specs[k].kind == SRC_TIMER) {
            uv_close((uv_handle_t *)&d->src[k].timer, NULL);
            uv_close((uv_handle_t *)&d->src[k].deadline, NULL);
        }
}

static void callback_done(demo *d)
{
    d->outstanding--;
    maybe_end_section(d);
}

/* The completion set's descriptor is readable: take every finished continuation. */
static void on_reports(uv_poll_t *h, int status, int events)
{
    (void)events;
    demo *d = h->data;
    UV_CHECK(status);
    weft_future *f;
    while (weft_completion_next(d->done, 0, &f) == 0) {
        void *v = NULL;
        int rc = weft_future_result(f, &v); /* finished: returns at once */
        weft_future_release(f);
        DEMO_CHECK(rc); /* summarize never fails, and nothing cancels it */
        print_report(d, v);
        d->reported = true;
        maybe_end_section(d);
    }
}

static void on_timer(uv_timer_t *t)
{
    source *src = t->data;
    char buf[128];
    /* Completing and saying so under the output lock: see the top of the file. */
    demo_lock();
    int rc = weft_future_set_result(src->promise, src);
    demo_say_locked("loop: timer %s fired (%u ms): set_result -> %s%s", src->spec->name,
                    src->spec->ms, rc_text(rc, buf, sizeof buf),
                    rc == -EALREADY ? ", the deadline won" : "");
    demo_unlock();
    callback_done(src->d);
}

static void on_deadline(uv_timer_t *t)
{
    source *src = t->data;
    char buf[128], name[32];
    /* A real program would stop src->timer here (uv_timer_stop); the demo lets it fire, to show
     * that the second completion is refused with -EALREADY and changes nothing. */
    demo_lock();
    int rc = weft_future_set_error(src->promise, -ETIMEDOUT);
    demo_say_locked("loop: deadline of %s (%u ms): set_error %s -> %s", src->spec->name,
                    src->spec->deadline_ms, demo_code_name(-ETIMEDOUT, name, sizeof name),
                    rc_text(rc, buf, sizeof buf));
    demo_unlock();
    callback_done(src->d);
}

/* The end of a file's requests: the promise gets the contents or the first error. */
static void file_finish(source *src)
{
    char buf[128], rcbuf[128];
    demo_lock();
    if (src->code == 0) {
        int rc = weft_future_set_result(src->promise, src);
        demo_say_locked("loop: read %s: %zu bytes: set_result -> %s", src->spec->name, src->got,
                        rc_text(rc, rcbuf, sizeof rcbuf));
    } else {
        int rc = weft_future_set_error(src->promise, src->code);
        demo_say_locked("loop: %s %s failed: %s: set_error -> %s", src->step, src->spec->name,
                        io_error_text(src->code, buf, sizeof buf),
                        rc_text(rc, rcbuf, sizeof rcbuf));
    }
    demo_unlock();
    callback_done(src->d);
}

static void on_close(uv_fs_t *req)
{
    source *src = req->data;
    if (req->result < 0 && src->code == 0) {
        src->step = "close";
        src->code = (int)req->result;
    }
    uv_fs_req_cleanup(req);
    file_finish(src);
}

static void file_close(source *src)
{
    UV_CHECK(uv_fs_close(src->d->loop, &src->req, src->fd, on_close));
}

static void on_read(uv_fs_t *req);

static void file_read_more(source *src)
{
    src->step = "read";
    uv_buf_t b = uv_buf_init(src->buf + src->got, (unsigned)(src->size - src->got));
    UV_CHECK(uv_fs_read(src->d->loop, &src->req, src->fd, &b, 1, (int64_t)src->got, on_read));
}

static void on_read(uv_fs_t *req)
{
    source *src = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    if (n < 0)
        src->code = (int)n;
    else
        src->got += (size_t)n;
    if (n > 0 && src->got < src->size)
        file_read_more(src);
    else
        file_close(src); /* done, failed, or the file shrank (0: end of file) */
}

static void on_fstat(uv_fs_t *req)
{
    source *src = req->data;
    ssize_t rc = req->result;
    size_t size = (size_t)req->statbuf.st_size;
    uv_fs_req_cleanup(req);
    if (rc < 0) {
        src->code = (int)rc;
        file_close(src);
        return;
    }
    src->size = size;
    src->buf = malloc(size > 0 ? size : 1);
    if (src->buf == NULL) {
        src->code = UV_ENOMEM;
        file_close(src);
        return;
    }
    if (size == 0)
        file_close(src);
    else
        file_read_more(src);
}

static void on_open(uv_fs_t *req)
{
    source *src = req->data;
    ssize_t rc = req->result;
    uv_fs_req_cleanup(req);
    if (rc < 0) {
        src->code = (int)rc;
        file_finish(src); /* nothing to close */
        return;
    }
    src->fd = (uv_file)rc;
    src->step = "fstat";
    UV_CHECK(uv_fs_fstat(src->d->loop, &src->req, src->fd, on_fstat));
}

static uint64_t scaled_ms(const demo *d, unsigned ms)
{
    return (uint64_t)llround((double)ms * d->scale);
}

typedef struct timer_start {
    uv_timer_t *t;
    uv_timer_cb cb;
    unsigned ms;
} timer_start;

/* Sets up the promises, the gather and its continuation, then starts the timers and the file
 * reads. Runs on the loop thread and waits for nothing. */
static void start_section(demo *d)
{
    const section_spec *sec = &sections[d->section];
    weft_future *fs[NSOURCES];
    demo_say("== [%s] %s ==", sec->tag, sec->title);

    uv_update_time(d->loop); /* the loop's clock is read once per iteration */
    memset(&d->rep, 0, sizeof d->rep);
    d->reported = false;
    d->outstanding = 0;
    for (size_t i = 0; i < sec->n; i++) {
        source *src = &d->src[sec->sources[i]];
        DEMO_CHECK(weft_future_create(&src->promise));
        fs[i] = src->promise;
        src->code = 0;
        src->got = src->size = 0;
        src->buf = NULL;
        d->outstanding += src->spec->kind == SRC_FILE ? 1 : src->spec->deadline_ms ? 2 : 1;
    }

    weft_future *gather = NULL, *cont = NULL;
    DEMO_CHECK(weft_gather(fs, sec->n, sec->flags, &gather));
    /* Nothing has completed yet, so nothing runs now: the gather's completion will queue
     * summarize on the pool. The continuation holds its own reference to the gather. */
    DEMO_CHECK(weft_future_then(gather, d->pool, summarize, d, &cont));
    weft_future_release(gather);
    DEMO_CHECK(weft_completion_add(d->done, cont)); /* the set takes its own reference */
    weft_future_release(cont);
    demo_say("loop: %zu promises, a gather%s and its continuation set up", sec->n,
             sec->flags & WEFT_RETURN_EXCEPTIONS ? " with WEFT_RETURN_EXCEPTIONS" : "");

    /* Timers in order of their (scaled) time, ties in the order they are started. */
    timer_start ts[2 * NSOURCES];
    size_t nts = 0;
    for (size_t i = 0; i < sec->n; i++) {
        source *src = &d->src[sec->sources[i]];
        if (src->spec->kind != SRC_TIMER)
            continue;
        ts[nts].t = &src->timer;
        ts[nts].cb = on_timer;
        ts[nts++].ms = src->spec->ms;
        if (src->spec->deadline_ms != 0) {
            ts[nts].t = &src->deadline;
            ts[nts].cb = on_deadline;
            ts[nts++].ms = src->spec->deadline_ms;
        }
    }
    for (size_t i = 1; i < nts; i++) /* insertion sort: a handful */
        for (size_t k = i; k > 0 && ts[k - 1].ms > ts[k].ms; k--) {
            timer_start tmp = ts[k];
            ts[k] = ts[k - 1];
            ts[k - 1] = tmp;
        }
    for (size_t i = 0; i < nts; i++)
        UV_CHECK(uv_timer_start(ts[i].t, ts[i].cb, scaled_ms(d, ts[i].ms), 0));

    for (size_t i = 0; i < sec->n; i++) {
        source *src = &d->src[sec->sources[i]];
        if (src->spec->kind != SRC_FILE)
            continue;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", d->dir, src->spec->name);
        src->step = "open";
        UV_CHECK(uv_fs_open(d->loop, &src->req, path, UV_FS_O_RDONLY, 0, on_open));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Set-up: options, the files, the loop, the pool
 */

static char cleanup_dir[PATH_MAX];

/* Removes the files and the directory the demo made, at any exit. */
static void cleanup(void)
{
    if (cleanup_dir[0] == '\0')
        return;
    for (int k = 0; k < NSOURCES; k++)
        if (specs[k].lines > 0) {
            char path[PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/%s", cleanup_dir, specs[k].name);
            unlink(path);
        }
    rmdir(cleanup_dir);
    cleanup_dir[0] = '\0';
}

/* Writes the files the timers' companions read, in a new temporary directory: the same bytes
 * at every run. */
static void write_files(demo *d)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(d->dir, sizeof d->dir, "%s/weft-demo-promise.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(d->dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(cleanup_dir, sizeof cleanup_dir, "%s", d->dir);
    atexit(cleanup);
    for (int k = 0; k < NSOURCES; k++) {
        const source_spec *s = &specs[k];
        if (s->lines == 0)
            continue;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", d->dir, s->name);
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            perror(path);
            exit(1);
        }
        for (unsigned i = 1; i <= s->lines; i++)
            fprintf(f, "%.*s %04u %s\n", (int)strcspn(s->name, "."), s->name, i, s->text);
        if (fclose(f) != 0) {
            perror(path);
            exit(1);
        }
    }
}

static void usage(FILE *to, const char *prog)
{
    fprintf(to,
            "Usage: %s [--scale F] [--threads N]\n"
            "libuv timers and file reads as weft promises, gathered, with a continuation.\n"
            "  -s, --scale F     multiply every timer by F > 0 (default 1.0)\n"
            "  -t, --threads N   pool size, 1-%u (default: weft's, one worker per usable core)\n"
            "  -h, --help        this text\n"
            "Options take their value as the next argument or after '=' (--threads=4).\n",
            prog, WEFT_MAX_THREADS);
}

static void parse(int argc, char **argv, double *scale, unsigned *threads)
{
    static const struct option longopts[] = {
        {"scale", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "s:t:h", longopts, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (opt) {
        case 's': {
            double v = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !isfinite(v) || v <= 0 || v > 1000) {
                fprintf(stderr, "%s: bad value '%s' for --scale\n", argv[0], optarg);
                usage(stderr, argv[0]);
                exit(2);
            }
            *scale = v;
            break;
        }
        case 't': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' || v < 1 ||
                v > WEFT_MAX_THREADS) {
                fprintf(stderr, "%s: bad value '%s' for --threads\n", argv[0], optarg);
                usage(stderr, argv[0]);
                exit(2);
            }
            *threads = (unsigned)v;
            break;
        }
        case 'h':
            usage(stdout, argv[0]);
            exit(0);
        default:
            usage(stderr, argv[0]);
            exit(2);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
        usage(stderr, argv[0]);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    static demo d; /* large (paths), and the callbacks point into it */
    unsigned threads = 0;
    d.scale = 1.0;
    parse(argc, argv, &d.scale, &threads);
    demo_start();
    write_files(&d);

    d.loop = uv_default_loop();
    d.pool = demo_pool(threads);
    DEMO_CHECK(weft_completion_create(&d.done));
    int fd = weft_completion_fd(d.done);
    if (fd < 0)
        DEMO_CHECK(fd);
    UV_CHECK(uv_poll_init(d.loop, &d.poll, fd));
    d.poll.data = &d;
    UV_CHECK(uv_poll_start(&d.poll, UV_READABLE, on_reports));
    for (int k = 0; k < NSOURCES; k++) {
        source *src = &d.src[k];
        src->d = &d;
        src->spec = &specs[k];
        src->req.data = src;
        if (src->spec->kind == SRC_TIMER) {
            UV_CHECK(uv_timer_init(d.loop, &src->timer));
            UV_CHECK(uv_timer_init(d.loop, &src->deadline));
            src->timer.data = src->deadline.data = src;
        }
    }

    unsigned workers = weft_pool_size(d.pool);
    demo_say("weft %s, libuv %s: weft-demo-promise, scale %g, %u thread%s", weft_version(),
             uv_version_string(), d.scale, workers, workers == 1 ? "" : "s");
    start_section(&d);
    uv_run(d.loop, UV_RUN_DEFAULT); /* returns once every handle is closed, after [rx] */

    weft_completion_destroy(d.done);
    DEMO_CHECK(weft_pool_destroy(d.pool));
    UV_CHECK(uv_loop_close(d.loop));
    cleanup();
    demo_say("== end ==");
    return 0;
}
