/* SPDX-License-Identifier: MIT */
/*
 * weft-httpd: a small HTTP/1.1 server on libuv whose endpoints do CPU-bound work sized by the
 * request, run on a weft pool (or, with --backend uv, on libuv's own thread pool, the baseline).
 *
 *   GET /nqueens?n=N       the number of solutions of the N-queens problem, N in 1..13
 *   GET /hash?rounds=R     R rounds of FNV-1a over a 32-byte buffer (see hash_rounds), R in
 *                          1..10^7; the final 64-bit hash in hex
 *   GET /health            "ok inflight=K parked=P" (jobs in the pool, requests waiting for
 *                          room), answered on the loop thread at once
 *
 * Usage: weft-httpd [--port P] [--threads N] [--max-pending N] [--max-inflight N]
 *                   [--backend weft|uv]
 *
 * How the loop meets the pool (backend weft): each request becomes a job, submitted with
 * weft_completion_submit_group straight into ONE open-ended completion set and into the
 * server's task group. The loop watches the set's descriptor (weft_completion_fd) with a
 * uv_poll_t; when it is readable the loop takes every finished future with
 * weft_completion_next(c, 0, &f), whose result is the job, and writes the response. The
 * descriptor is level-triggered: readable exactly while a future is waiting to be taken.
 * While every worker has several jobs queued behind the one it runs, the loop yields its core
 * once before it drains (see on_completions), so that it takes completions in batches.
 *
 * Back-pressure: the pool has max_pending (jobs waiting to start) and max_inflight (jobs
 * queued or running) set, so a submission past either returns -EAGAIN. The request is then
 * parked: it stays unparsed in its connection's buffer, the connection stops reading (TCP
 * pushes back on the client), and the connection joins a FIFO of parked ones. The loop polls
 * the pool's room descriptor (weft_pool_room_fd), readable while a submission would find room,
 * and when it turns readable submits the parked requests in order until one finds no room
 * again. New requests queue behind parked ones. No request is refused for load: each waits its
 * turn. The uv backend counts its work items itself against the same limits and retries its
 * parked requests whenever a job comes back.
 *
 * Connections: HTTP/1.1 keep-alive (HTTP/1.0 with "Connection: keep-alive"), one request at a
 * time per connection (pipelined requests wait in the buffer), Content-Length responses. A
 * request head is at most 8 KiB. Bad requests get 400 (malformed, bad parameter, body on a
 * GET), 404 (unknown path), 405 (not GET), 414/431 (request line or head too long), 505 (not
 * HTTP/1.x), and the connection is closed after the answer. A client that goes away while its
 * job runs only loses the answer: the job's result is dropped when it completes.
 *
 * Shutdown: on SIGINT or SIGTERM the server stops accepting, closes idle connections, answers
 * new requests on open ones with 503, and serves what it has accepted: every job in flight and
 * every parked request gets its response (with "Connection: close"). Then it waits for its task
 * group (weft_group_destroy: every task it submitted has finished, results dropped for clients
 * that left included), destroys the pool, logs "shutdown: N in flight drained" and exits 0.
 *
 * Threads: everything but the jobs' computation runs on the loop thread. Workers only read the
 * job's parameters and write its result; the completion set (or libuv's work queue) carries the
 * result back to the loop with the synchronization that makes it visible.
 */
#include <uv.h>
#include <weft.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEAD_MAX      8192 /* bytes of a request head, request line and blank line included */
#define OUT_MAX       512  /* bytes of a response: every body here is short */
#define BACKLOG       1024
#define JOB_CACHE_MAX 4096 /* finished jobs kept for reuse, so steady state does no malloc */
#define LINGER_MS     2000 /* how long a rejected client may go on sending before we close */
#define LINGER_BYTES  (1 << 20)
#define BUSY_QUEUE    4 /* jobs in flight per worker past which the loop yields on a wake-up */

#define NQUEENS_MAX 13
#define ROUNDS_MAX  10000000u

/* ---------------------------------------------------------------------------------------------
 * The work
 */

static uint64_t queens(uint32_t all, uint32_t cols, uint32_t d1, uint32_t d2)
{
    if (cols == all)
        return 1;
    uint64_t count = 0;
    uint32_t avail = all & ~(cols | d1 | d2);
    while (avail != 0) {
        uint32_t bit = avail & (0u - avail);
        avail ^= bit;
        count += queens(all, cols | bit, ((d1 | bit) << 1) & all, (d2 | bit) >> 1);
    }
    return count;
}

static uint64_t nqueens(unsigned n)
{
    return queens((1u << n) - 1, 0, 0, 0);
}

/* buf[i] = i for 32 bytes; h = the FNV-1a offset basis. Each round folds the 32 bytes into h
 * (h ^= byte; h *= FNV prime) and then stores h, little-endian, over bytes 8*(r % 4) .. +8.
 * The multiply chain is serial, so a round costs the same on any machine's cores. */
static uint64_t hash_rounds(uint64_t rounds)
{
    unsigned char buf[32];
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)i;
    uint64_t h = 0xcbf29ce484222325u;
    for (uint64_t r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < sizeof buf; i++) {
            h ^= buf[i];
            h *= 0x100000001b3u;
        }
        for (unsigned k = 0; k < 8; k++)
            buf[8 * (r % 4) + k] = (unsigned char)(h >> (8 * k));
    }
    return h;
}

/* ---------------------------------------------------------------------------------------------
 * Types
 */

typedef enum { BACKEND_WEFT, BACKEND_UV } backend_kind;
typedef enum { JOB_NQUEENS, JOB_HASH } job_kind;

typedef struct server server;
typedef struct conn conn;
typedef struct job job;

struct job {
    uv_work_t work; /* backend uv */
    server *srv;
    conn *conn; /* loop thread only; NULL once the client has gone */
    job *next;  /* in the cache of free jobs */
    job_kind kind;
    uint64_t param;
    uint64_t result; /* written by the worker, read by the loop after the completion */
};

struct conn {
    uv_tcp_t tcp;
    server *srv;
    conn *prev, *next; /* the server's list of open connections */
    job *job;          /* the request in flight, or NULL */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    bool reading;
    bool writing;
    bool close_after; /* close once the response being written is out */
    bool closing;
    bool linger;    /* the response rejects the request: close gracefully (see linger_start) */
    bool lingering; /* write side shut, discarding what the client still sends */
    bool parked;    /* its next request waits for room in the pool (server's park FIFO) */
    conn *park_next;
    uint64_t linger_deadline; /* uv_now() */
    size_t discarded;
    size_t len; /* bytes in `in` */
    char in[HEAD_MAX];
    char out[OUT_MAX];
};

struct server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    uv_poll_t poll;   /* backend weft: watches the completion set's descriptor */
    uv_poll_t room;   /* backend weft: watches the pool's room descriptor while some park */
    uv_timer_t sweep; /* closes lingering connections past their deadline */
    backend_kind backend;
    weft_pool *pool;
    weft_completion *done;
    weft_group *group; /* backend weft: every job, for the wait at shutdown */
    unsigned threads;
    size_t max_pending;
    size_t max_inflight;
    atomic_size_t uv_queued;     /* backend uv: work items queued, not started */
    size_t inflight;             /* jobs submitted, not yet taken back by the loop */
    conn *park_head, *park_tail; /* connections whose request waits for room, oldest first */
    bool room_polling;
    bool resuming;  /* on_room is resubmitting a parked request: a refusal parks it first */
    size_t drained; /* inflight when the shutdown began */
    conn *conns;
    size_t nconns;
    job *free_jobs;
    size_t nfree_jobs;
    bool draining;
    bool finished;
    uint64_t ok, rejected, bad, orphaned, parks;
};

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "weft-httpd: %s\n", line);
}

/* ---------------------------------------------------------------------------------------------
 * HTTP request heads
 */

typedef struct http_request {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    bool keep_alive;
    size_t size; /* bytes of the head, blank line included */
} http_request;

static bool is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_tchar((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

/* The next line of buf[*pos..len) without its line end (LF or CRLF); false when the line end
 * has not arrived yet. */
static bool next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *n)
{
    const char *start = buf + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    if (nl == NULL)
        return false;
    *line = start;
    *n = (size_t)(nl - start);
    if (*n > 0 && start[*n - 1] == '\r')
        (*n)--;
    *pos = (size_t)(nl - buf) + 1;
    return true;
}

/* Comma-separated tokens of a Connection header. */
static void connection_tokens(const char *v, size_t n, bool *close, bool *keep_alive)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (name_is(v + start, i - start, "close"))
            *close = true;
        else if (name_is(v + start, i - start, "keep-alive"))
            *keep_alive = true;
    }
}

/* Parses the head at the start of buf[0..len). Returns 0 with *r filled when a whole head is
 * there, 1 when more bytes are needed, or the HTTP status to answer a bad request with. */
static int http_parse(const char *buf, size_t len, http_request *r)
{
    size_t pos = 0;
    const char *line;
    size_t n;
    /* Empty lines before a request line are ignored (RFC 9112, 2.2). */
    do {
        if (!next_line(buf, len, &pos, &line, &n))
            return 1;
    } while (n == 0 && pos < 64);
    if (n == 0)
        return 400;

    /* request-line = method SP request-target SP HTTP-version */
    const char *sp1 = memchr(line, ' ', n);
    if (sp1 == NULL)
        return 400;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(line + n - target));
    if (sp2 == NULL)
        return 400;
    r->method = line;
    r->method_len = (size_t)(sp1 - line);
    r->target = target;
    r->target_len = (size_t)(sp2 - target);
    const char *version = sp2 + 1;
    size_t version_len = (size_t)(line + n - version);
    if (!is_token(r->method, r->method_len) || r->target_len == 0)
        return 400;
    for (size_t i = 0; i < r->target_len; i++) {
        unsigned char ch = (unsigned char)target[i];
        if (ch <= ' ' || ch >= 0x7f)
            return 400;
    }
    if (version_len != 8 || memcmp(version, "HTTP/", 5) != 0 || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
        return 400;
    if (version[5] != '1')
        return 505;
    bool http11 = version[7] != '0';

    bool host = false, has_body = false, close = false, keep_alive = false;
    int64_t content_length = -1;
    for (;;) {
        if (!next_line(buf, len, &pos, &line, &n))
            return 1;
        if (n == 0)
            break;
        if (line[0] == ' ' || line[0] == '\t')
            return 400; /* obsolete line folding */
        const char *colon = memchr(line, ':', n);
        if (colon == NULL || !is_token(line, (size_t)(colon - line)))
            return 400;
        size_t name_len = (size_t)(colon - line);
        const char *v = colon + 1;
        const char *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t vlen = (size_t)(end - v);
        for (size_t i = 0; i < vlen; i++) {
            unsigned char ch = (unsigned char)v[i];
            if ((ch < ' ' && ch != '\t') || ch == 0x7f)
                return 400;
        }
        if (name_is(line, name_len, "host")) {
            if (host)
                return 400;
            host = true;
        } else if (name_is(line, name_len, "content-length")) {
            if (vlen == 0 || vlen > 18)
                return 400;
            int64_t cl = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return 400;
                cl = cl * 10 + (v[i] - '0');
            }
            if (content_length >= 0 && content_length != cl)
                return 400;
            content_length = cl;
            has_body = has_body || cl > 0;
        } else if (name_is(line, name_len, "transfer-encoding")) {
            has_body = true;
        } else if (name_is(line, name_len, "connection")) {
            connection_tokens(v, vlen, &close, &keep_alive);
        }
    }
    r->size = pos;
    if (http11 && !host)
        return 400;
    if (r->method_len != 3 || memcmp(r->method, "GET", 3) != 0)
        return 405; /* methods are case-sensitive */
    if (has_body)
        return 400; /* a GET has no body here; not reading it, the connection closes */
    r->keep_alive = http11 ? !close : keep_alive && !close;
    return 0;
}

/* The value of the one parameter `name` of query q[0..n) ("name=digits"), in lo..hi. Any other
 * parameter, a repeated one, a missing one or a value that is not a decimal number in range is
 * an error (false). */
static bool query_param(const char *q, size_t n, const char *name, uint64_t lo, uint64_t hi,
                        uint64_t *out)
{
    bool found = false;
    uint64_t value = 0;
    size_t i = 0;
    if (q == NULL)
        return false;
    for (;;) {
        const char *amp = memchr(q + i, '&', n - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : n;
        const char *eq = memchr(q + i, '=', end - i);
        if (eq == NULL || found)
            return false;
        size_t klen = (size_t)(eq - (q + i));
        if (klen != strlen(name) || memcmp(q + i, name, klen) != 0)
            return false;
        const char *d = eq + 1;
        size_t dlen = (size_t)(q + end - d);
        if (dlen == 0 || dlen > 10)
            return false;
        for (size_t k = 0; k < dlen; k++) {
            if (d[k] < '0' || d[k] > '9')
                return false;
            value = value * 10 + (uint64_t)(d[k] - '0');
        }
        found = true;
        if (amp == NULL)
            break;
        i = end + 1;
    }
    if (value < lo || value > hi)
        return false;
    *out = value;
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Connections and responses
 */

static void process(conn *c);
static void maybe_finish(server *s);
static void unpark(conn *c);

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

static void on_close(uv_handle_t *h)
{
    conn *c = h->data;
    server *s = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    free(c);
    maybe_finish(s);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->parked)
        unpark(c); /* its request was never submitted: nothing runs for it */
    if (c->job != NULL) {
        c->job->conn = NULL; /* the job runs on; its result is dropped when it completes */
        c->srv->orphaned++;
        c->job = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void read_stop(conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void read_start(conn *c);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (status < 0 || c->closing || c->srv->draining) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    c->linger_deadline = uv_now(c->srv->loop) + LINGER_MS;
    c->len = 0;
    read_start(c);
}

/* After a response that rejects a request, the client may still be sending (the rest of an
 * oversized head, a body). Closing a socket with unread data makes the kernel send a reset,
 * which can destroy the response before the client reads it. So shut down the write side
 * (the client sees the end of the response) and discard what arrives until the client closes,
 * LINGER_BYTES have come, or LINGER_MS have passed. */
static void linger_start(conn *c)
{
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

/* A response is out: close, linger, or stay open for the next request (the caller then calls
 * process, unless it is process itself). */
static void write_done(conn *c)
{
    if ((c->close_after && !c->linger) || c->srv->draining)
        conn_close(c);
    else if (c->close_after)
        linger_start(c);
}

static void on_write(uv_write_t *req, int status)
{
    conn *c = req->data;
    c->writing = false;
    if (status < 0) {
        conn_close(c);
        return;
    }
    write_done(c);
    process(c);
}

/* Sends one response; with keep_alive false the connection closes once it is written. */
static void respond(conn *c, int status, bool keep_alive, const char *body)
{
    server *s = c->srv;
    if (s->draining)
        keep_alive = false;
    int n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.1 %d %s\r\nServer: weft-httpd\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n%sConnection: %s\r\n\r\n%s",
                     status, status_text(status), strlen(body),
                     status == 503 ? "Retry-After: 1\r\n" : "", keep_alive ? "keep-alive" : "close",
                     body);
    if (n < 0 || (size_t)n >= sizeof c->out) {
        conn_close(c); /* cannot happen: every body here is short */
        return;
    }
    if (status >= 200 && status < 300)
        s->ok++;
    else if (status == 503)
        s->rejected++;
    else
        s->bad++;
    if (!keep_alive) {
        c->close_after = true;
        read_stop(c);
    }
    /* Try the write at once: a response this small nearly always fits the socket buffer, and
     * then there is no write request, no callback and no change to the epoll set. */
    uv_buf_t buf = uv_buf_init(c->out, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (w == n) {
        write_done(c);
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    if (w > 0) {
        buf.base += w;
        buf.len -= (unsigned)w;
    }
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc < 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
}

static void respond_error(conn *c, int status)
{
    char body[64];
    snprintf(body, sizeof body, "%d %s\n", status, status_text(status));
    c->linger = true;
    respond(c, status, false, body);
}

static void respond_job(conn *c, const job *j)
{
    char body[32];
    if (j->kind == JOB_NQUEENS)
        snprintf(body, sizeof body, "%" PRIu64 "\n", j->result);
    else
        snprintf(body, sizeof body, "%016" PRIx64 "\n", j->result);
    respond(c, 200, !c->close_after, body); /* close_after: the request said close, or EOF */
}

/* ---------------------------------------------------------------------------------------------
 * Jobs: submission and completion
 */

static job *job_get(server *s)
{
    job *j = s->free_jobs;
    if (j != NULL) {
        s->free_jobs = j->next;
        s->nfree_jobs--;
        return j;
    }
    return malloc(sizeof(job));
}

static void job_put(server *s, job *j)
{
    if (s->nfree_jobs >= JOB_CACHE_MAX) {
        free(j);
        return;
    }
    j->next = s->free_jobs;
    s->free_jobs = j;
    s->nfree_jobs++;
}

static void job_run(job *j)
{
    if (j->kind == JOB_NQUEENS)
        j->result = nqueens((unsigned)j->param);
    else
        j->result = hash_rounds(j->param);
}

/* The weft task: computes the job and hands it back as the future's value. */
static int job_task(void *arg, void **result)
{
    job_run(arg);
    *result = arg;
    return 0;
}

/* libuv thread pool, backend uv. */
static void job_work(uv_work_t *w)
{
    job *j = w->data;
    /* relaxed: a budget, like weft's max_pending; the work queue's mutex publishes the job */
    atomic_fetch_sub_explicit(&j->srv->uv_queued, 1, memory_order_relaxed);
    job_run(j);
}

static void resume_parked(server *s);

/* On the loop: a job came back; answer its client, if still there. */
static void job_done(server *s, job *j)
{
    s->inflight--;
    conn *c = j->conn;
    if (c != NULL) {
        c->job = NULL;
        respond_job(c, j);
        process(c); /* a pipelined request, or read the next one */
    }
    job_put(s, j);
    /* The uv backend has no room descriptor: a job that comes back is its room. */
    if (s->backend == BACKEND_UV && s->park_head != NULL)
        resume_parked(s);
    maybe_finish(s);
}

static void job_after_work(uv_work_t *w, int status)
{
    (void)status; /* never cancelled: nothing calls uv_cancel */
    job *j = w->data;
    job_done(j->srv, j);
}

/* Drains the completion set: every future that has finished, until next says none is ready.
 *
 * When the pool is busy (more than BUSY_QUEUE jobs in flight per worker), the loop first
 * yields its core once. Every worker is busy then, so the loop, woken by the first future to
 * finish, has preempted one of them; answering that one future at once and going back to
 * sleep would cost two context switches per request, and the client, answered one response
 * at a time, would wake once per response too. After the yield the preempted worker goes on
 * with its queue, futures gather in the set (its descriptor is written once until drained),
 * and the loop answers them in one batch. A worker has several jobs behind the one it runs,
 * so it keeps busy meanwhile. With fewer jobs in flight the loop answers at once: a worker
 * would otherwise wait for the next request. libuv 1.44's work queue behaves alike: its loop,
 * woken while the worker that woke it is still inside uv_async_send, yields to it. */
static void on_completions(uv_poll_t *h, int status, int events)
{
    (void)events;
    server *s = h->data;
    if (status < 0) {
        log_line("poll on the completion descriptor: %s", uv_strerror(status));
        return;
    }
    if (s->inflight > (size_t)BUSY_QUEUE * s->threads)
        sched_yield();
    weft_future *f;
    while (weft_completion_next(s->done, 0, &f) == 0) {
        void *v = NULL;
        int rc = weft_future_result(f, &v); /* finished: does not wait */
        weft_future_release(f);
        if (rc != 0) {
            log_line("a job's future ended with %d (%s)", rc, weft_strerror(rc));
            continue; /* cannot happen: job_task never fails and nothing cancels */
        }
        job_done(s, v);
    }
}

/* 0, or -EAGAIN (no room under max_pending or max_inflight), -ESHUTDOWN, -ENOMEM. */
static int job_submit(server *s, job *j)
{
    if (s->backend == BACKEND_UV) {
        /* relaxed: only this thread adds, so the count never passes the limit */
        if ((s->max_pending != 0 &&
             atomic_load_explicit(&s->uv_queued, memory_order_relaxed) >= s->max_pending) ||
            (s->max_inflight != 0 && s->inflight >= s->max_inflight))
            return -EAGAIN;
        atomic_fetch_add_explicit(&s->uv_queued, 1, memory_order_relaxed);
        j->work.data = j;
        int rc = uv_queue_work(s->loop, &j->work, job_work, job_after_work);
        if (rc < 0) {
            atomic_fetch_sub_explicit(&s->uv_queued, 1, memory_order_relaxed);
            return -ENOMEM;
        }
        return 0;
    }
    /* Into the set (its future comes back on the descriptor) and the group, all or nothing. */
    return weft_completion_submit_group(s->done, s->group, job_task, j);
}

/* ---------------------------------------------------------------------------------------------
 * Back-pressure: requests parked until the pool has room
 */

static void on_room(uv_poll_t *h, int status, int events);

/* Polls the room descriptor while requests are parked (backend weft), and only then: it is
 * readable whenever there is room, so a poll left running would spin the loop. */
static void room_watch(server *s, bool on)
{
    if (s->backend != BACKEND_WEFT || s->room_polling == on)
        return;
    int rc = on ? uv_poll_start(&s->room, UV_READABLE, on_room) : uv_poll_stop(&s->room);
    if (rc == 0)
        s->room_polling = on;
    else
        log_line("room descriptor: %s", uv_strerror(rc));
}

/* c's next request, still unparsed at the head of its buffer, waits for room. The connection
 * stops reading, so the client's further bytes wait in the kernel: TCP pushes back. */
static void park(conn *c, bool at_head)
{
    server *s = c->srv;
    c->parked = true;
    read_stop(c);
    if (at_head) {
        c->park_next = s->park_head;
        s->park_head = c;
        if (s->park_tail == NULL)
            s->park_tail = c;
    } else {
        c->park_next = NULL;
        if (s->park_tail != NULL)
            s->park_tail->park_next = c;
        else
            s->park_head = c;
        s->park_tail = c;
    }
    if (!at_head)
        s->parks++; /* once per request: a resumed one that finds no room again is not new */
    room_watch(s, true);
}

/* Takes c off the park FIFO (the head, in the common case; any place when it closes). */
static void unpark(conn *c)
{
    server *s = c->srv;
    conn **pp = &s->park_head, *prev = NULL;
    while (*pp != c) {
        prev = *pp;
        pp = &(*pp)->park_next;
    }
    *pp = c->park_next;
    if (s->park_tail == c)
        s->park_tail = prev;
    c->park_next = NULL;
    c->parked = false;
    if (s->park_head == NULL)
        room_watch(s, false);
}

/* Submits parked requests, oldest first, until one finds no room again (it goes back to the
 * head of the FIFO and the room descriptor is watched on). */
static void resume_parked(server *s)
{
    while (s->park_head != NULL) {
        conn *c = s->park_head;
        unpark(c);
        s->resuming = true;
        process(c);
        s->resuming = false;
        if (c->parked)
            break;
    }
}

static void on_room(uv_poll_t *h, int status, int events)
{
    (void)events;
    server *s = h->data;
    if (status < 0) {
        log_line("poll on the room descriptor: %s", uv_strerror(status));
        return;
    }
    resume_parked(s);
}

/* ---------------------------------------------------------------------------------------------
 * Requests
 */

/* Answers or submits the request; false when it was parked instead (not consumed). */
static bool handle(conn *c, const http_request *r)
{
    server *s = c->srv;
    const char *q = memchr(r->target, '?', r->target_len);
    size_t path_len = q != NULL ? (size_t)(q - r->target) : r->target_len;
    size_t qlen = q != NULL ? r->target_len - path_len - 1 : 0;
    if (q != NULL)
        q++;

    job_kind kind;
    uint64_t param;
    if (path_len == 7 && memcmp(r->target, "/health", 7) == 0) {
        size_t parked = 0;
        for (const conn *p = s->park_head; p != NULL; p = p->park_next)
            parked++;
        char body[80];
        snprintf(body, sizeof body, "ok inflight=%zu parked=%zu\n", s->inflight, parked);
        respond(c, 200, r->keep_alive, body);
        return true;
    } else if (path_len == 8 && memcmp(r->target, "/nqueens", 8) == 0) {
        kind = JOB_NQUEENS;
        if (!query_param(q, qlen, "n", 1, NQUEENS_MAX, &param)) {
            respond_error(c, 400);
            return true;
        }
    } else if (path_len == 5 && memcmp(r->target, "/hash", 5) == 0) {
        kind = JOB_HASH;
        if (!query_param(q, qlen, "rounds", 1, ROUNDS_MAX, &param)) {
            respond_error(c, 400);
            return true;
        }
    } else {
        respond_error(c, 404);
        return true;
    }

    if (s->park_head != NULL && !s->resuming) {
        park(c, false); /* first come, first served: behind those already waiting */
        return false;
    }
    job *j = job_get(s);
    if (j == NULL) {
        respond_error(c, 500);
        return true;
    }
    j->srv = s;
    j->conn = c;
    j->kind = kind;
    j->param = param;
    j->result = 0;
    int rc = job_submit(s, j);
    if (rc != 0) {
        job_put(s, j);
        if (rc == -EAGAIN) {
            park(c, s->resuming); /* a resumed one keeps its place at the head */
            return false;
        }
        if (rc == -ESHUTDOWN)
            respond(c, 503, false, "shutting down\n");
        else
            respond_error(c, 500);
        return true;
    }
    c->job = j;
    s->inflight++;
    if (!r->keep_alive) {
        c->close_after = true;
        read_stop(c);
    }
    return true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    *buf = uv_buf_init(c->in + c->len, (unsigned)(sizeof c->in - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn *c = stream->data;
    if (c->lingering) {
        if (nread < 0 || (c->discarded += (size_t)nread) > LINGER_BYTES)
            conn_close(c);
        c->len = 0;
    } else if (nread > 0) {
        c->len += (size_t)nread;
        process(c);
    } else if (nread == UV_ENOBUFS) {
        read_stop(c); /* buffer full behind a request in flight; process() restarts reading */
    } else if (nread == UV_EOF) {
        /* The client sent all it will: answer what is in flight, then close. */
        read_stop(c);
        if (c->job != NULL || c->writing)
            c->close_after = true;
        else
            conn_close(c);
    } else if (nread < 0) {
        conn_close(c); /* reset: a job in flight is orphaned */
    }
}

static void read_start(conn *c)
{
    if (c->reading || c->closing || c->parked || (c->close_after && !c->lingering))
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
    else
        conn_close(c);
}

/* Takes the requests in the buffer, one at a time, while the connection is free for one:
 * answers written at once (most are) let the next pipelined request through in this loop. */
static void process(conn *c)
{
    server *s = c->srv;
    while (!c->closing && !c->close_after && c->job == NULL && !c->writing && !c->parked) {
        http_request r;
        int st = http_parse(c->in, c->len, &r);
        if (st == 1) {
            if (c->len == sizeof c->in)
                respond_error(c, memchr(c->in, '\n', c->len) == NULL ? 414 : 431);
            else
                read_start(c);
            return;
        }
        if (st != 0) {
            respond_error(c, st);
            return;
        }
        if (s->draining && !s->resuming) {
            respond(c, 503, false, "shutting down\n"); /* parked ones were accepted: served */
            return;
        }
        if (!handle(c, &r))
            return; /* parked, the request still at the head of the buffer */
        /* Consumed: keep what follows (a pipelined request) for later. */
        memmove(c->in, c->in + r.size, c->len - r.size);
        c->len -= r.size;
    }
    read_start(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    server *s = listener->data;
    if (status < 0) {
        log_line("accept: %s", uv_strerror(status));
        return;
    }
    conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_line("accept: out of memory");
        return;
    }
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    read_start(c);
}

/* ---------------------------------------------------------------------------------------------
 * Shutdown
 */

static void on_sweep(uv_timer_t *t)
{
    server *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->lingering && now >= c->linger_deadline)
            conn_close(c);
    }
}

static void maybe_finish(server *s)
{
    if (!s->draining || s->finished || s->inflight > 0 || s->nconns > 0)
        return;
    s->finished = true;
    uv_close((uv_handle_t *)&s->sweep, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    if (s->backend == BACKEND_WEFT) {
        uv_close((uv_handle_t *)&s->poll, NULL);
        uv_close((uv_handle_t *)&s->room, NULL);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    server *s = h->data;
    if (s->draining) {
        log_line("signal %d: already draining, %zu in flight", signum, s->inflight);
        return;
    }
    s->draining = true;
    s->drained = s->inflight;
    uv_close((uv_handle_t *)&s->listener, NULL); /* closes the socket now: connects are refused */
    log_line("signal %d: stopping; %zu in flight, %zu connections", signum, s->inflight, s->nconns);
    /* The pool stays open: parked requests were accepted and still need it. */
    for (conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->parked) {
            continue; /* served when room comes; the answer closes the connection */
        } else if (c->job == NULL && !c->writing) {
            conn_close(c); /* idle, lingering, or partway through a request not taken */
        } else {
            c->close_after = true;
            read_stop(c);
        }
    }
    maybe_finish(s);
}

/* ---------------------------------------------------------------------------------------------
 * Main
 */

static void usage(FILE *to)
{
    fputs("usage: weft-httpd [--port P] [--threads N] [--max-pending N] [--max-inflight N]\n"
          "                  [--backend weft|uv]\n"
          "  -p, --port P          TCP port on 127.0.0.1; 0 (default) picks a free one\n"
          "  -t, --threads N       workers (weft) or libuv thread-pool threads (uv); default: one\n"
          "                        per core\n"
          "  -m, --max-pending N   submitted jobs that may wait to start; past it requests wait\n"
          "                        unread for room (0: no limit; default 64 x threads)\n"
          "  -i, --max-inflight N  submitted jobs that may be queued or running; past it requests\n"
          "                        wait unread for room (0, the default: no limit)\n"
          "  -b, --backend B       weft (default) or uv, libuv's thread pool as the baseline\n"
          "  -h, --help            this text\n"
          "Options take their value as the next argument or after '=' (--threads=4).\n"
          "Endpoints: GET /nqueens?n=1..13, GET /hash?rounds=1..10000000, GET /health\n",
          to);
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = v;
    return true;
}

#define CHECK_UV(call)                                                                             \
    do {                                                                                           \
        int uv_rc_ = (call);                                                                       \
        if (uv_rc_ < 0) {                                                                          \
            log_line("%s: %s", #call, uv_strerror(uv_rc_));                                        \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    unsigned long port = 0, threads = 0, max_pending = 0, max_inflight = 0;
    bool have_max_pending = false;
    server s;
    memset(&s, 0, sizeof s);
    atomic_init(&s.uv_queued, 0);
    s.backend = BACKEND_WEFT;

    /* getopt_long, as the demos: "--opt value", "--opt=value", "-t 4", "-t4". */
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"max-pending", required_argument, NULL, 'm'},
        {"max-inflight", required_argument, NULL, 'i'},
        {"backend", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt, index = -1;
    while ((opt = getopt_long(argc, argv, "p:t:m:i:b:h", longopts, &index)) != -1) {
        bool ok;
        switch (opt) {
        case 'p':
            ok = parse_ulong(optarg, 65535, &port);
            break;
        case 't':
            ok = parse_ulong(optarg, WEFT_MAX_THREADS, &threads);
            break;
        case 'm':
            ok = parse_ulong(optarg, SIZE_MAX / 2, &max_pending);
            have_max_pending = true;
            break;
        case 'i':
            ok = parse_ulong(optarg, SIZE_MAX / 2, &max_inflight);
            break;
        case 'b':
            ok = strcmp(optarg, "weft") == 0 || strcmp(optarg, "uv") == 0;
            if (ok)
                s.backend = strcmp(optarg, "uv") == 0 ? BACKEND_UV : BACKEND_WEFT;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default: /* getopt_long said what was wrong */
            usage(stderr);
            return 2;
        }
        if (!ok) {
            const char *name = opt == 'p'   ? "--port"
                               : opt == 't' ? "--threads"
                               : opt == 'm' ? "--max-pending"
                               : opt == 'i' ? "--max-inflight"
                                            : "--backend";
            fprintf(stderr, "weft-httpd: bad value '%s' for %s\n", optarg, name);
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "weft-httpd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    if (threads == 0) {
        weft_machine_info mi;
        threads = weft_machine_query(&mi) == 0 && mi.default_threads > 0 ? mi.default_threads : 1;
    }
    s.threads = (unsigned)threads;
    s.max_pending = have_max_pending ? (size_t)max_pending : (size_t)64 * s.threads;
    s.max_inflight = (size_t)max_inflight;

    /* The loop thread writes to sockets whose peer may be gone: EPIPE, not a signal. */
    signal(SIGPIPE, SIG_IGN);

    s.loop = uv_default_loop();
    if (s.backend == BACKEND_WEFT) {
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.threads = s.threads;
        cfg.max_pending = s.max_pending;
        cfg.max_inflight = s.max_inflight;
        cfg.name = "httpd";
        int rc = weft_pool_create(&cfg, &s.pool);
        if (rc == 0)
            rc = weft_completion_create(&s.done);
        if (rc == 0)
            rc = weft_group_create(s.pool, &s.group);
        int fd = rc == 0 ? weft_completion_fd(s.done) : rc;
        int room_fd = fd >= 0 ? weft_pool_room_fd(s.pool) : fd;
        if (room_fd < 0) {
            log_line("cannot set up the pool: %s", weft_strerror(room_fd));
            weft_group_destroy(s.group);
            weft_completion_destroy(s.done);
            weft_pool_destroy(s.pool);
            return 1;
        }
        CHECK_UV(uv_poll_init(s.loop, &s.poll, fd));
        s.poll.data = &s;
        CHECK_UV(uv_poll_start(&s.poll, UV_READABLE, on_completions));
        CHECK_UV(uv_poll_init(s.loop, &s.room, room_fd)); /* started while requests are parked */
        s.room.data = &s;
    } else {
        /* Read by libuv when its thread pool starts, at the first uv_queue_work. */
        char n[16];
        snprintf(n, sizeof n, "%u", s.threads);
        setenv("UV_THREADPOOL_SIZE", n, 1);
    }

    struct sockaddr_in addr;
    CHECK_UV(uv_ip4_addr("127.0.0.1", (int)port, &addr));
    CHECK_UV(uv_tcp_init(s.loop, &s.listener));
    s.listener.data = &s;
    CHECK_UV(uv_tcp_bind(&s.listener, (const struct sockaddr *)&addr, 0));
    CHECK_UV(uv_listen((uv_stream_t *)&s.listener, BACKLOG, on_connection));
    struct sockaddr_storage bound;
    int blen = (int)sizeof bound;
    CHECK_UV(uv_tcp_getsockname(&s.listener, (struct sockaddr *)&bound, &blen));
    unsigned bound_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    CHECK_UV(uv_timer_init(s.loop, &s.sweep));
    s.sweep.data = &s;
    CHECK_UV(uv_timer_start(&s.sweep, on_sweep, LINGER_MS / 4, LINGER_MS / 4));
    uv_unref((uv_handle_t *)&s.sweep); /* the sweeper alone does not keep the loop running */
    CHECK_UV(uv_signal_init(s.loop, &s.sigint));
    CHECK_UV(uv_signal_init(s.loop, &s.sigterm));
    s.sigint.data = s.sigterm.data = &s;
    CHECK_UV(uv_signal_start(&s.sigint, on_signal, SIGINT));
    CHECK_UV(uv_signal_start(&s.sigterm, on_signal, SIGTERM));

    log_line("backend %s, %u threads, max-pending %zu, max-inflight %zu (0: no limit; weft %s, "
             "libuv %s)",
             s.backend == BACKEND_WEFT ? "weft" : "uv", s.threads, s.max_pending, s.max_inflight,
             weft_version(), uv_version_string());
    printf("listening on 127.0.0.1:%u\n", bound_port);
    fflush(stdout);

    uv_run(s.loop, UV_RUN_DEFAULT);

    int rc = 0;
    if (s.backend == BACKEND_WEFT) {
        /* Every job was taken back, so the group is empty: this only confirms it (and would
         * wait for any task still running). */
        rc = weft_group_destroy(s.group);
        int prc = weft_pool_destroy(s.pool);
        rc = rc != 0 ? rc : prc;
        weft_completion_destroy(s.done);
    }
    while (s.free_jobs != NULL) {
        job *j = s.free_jobs;
        s.free_jobs = j->next;
        free(j);
    }
    if (uv_loop_close(s.loop) != 0)
        log_line("the loop still had handles at exit");
    log_line("served %" PRIu64 " ok, %" PRIu64 " rejected (503), %" PRIu64 " bad requests, %" PRIu64
             " answers dropped (client gone); %" PRIu64 " requests waited for room",
             s.ok, s.rejected, s.bad, s.orphaned, s.parks);
    log_line("shutdown: %zu in flight drained", s.drained);
    return rc == 0 ? 0 : 1;
}
