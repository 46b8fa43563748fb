/* SPDX-License-Identifier: MIT */
/*
 * Execution traces (weft_config.trace_path, $WEFT_TRACE, $WEFT_TRACE_EVENTS) and
 * $WEFT_DISPLAY_ENV.
 *
 * A pool traced to a file in a temporary directory runs submitted tasks and a fork-join computation
 * with a join whose second half is certainly stolen, and is destroyed; the file is then one
 * RFC 8259 JSON text (parsed strictly with jansson, tests/jsoncheck.h: no member name twice in any
 * object) in the Trace Event Format: a thread_name metadata event per worker, "X" slices of
 * category task, join or park with non-negative ts and dur, named by their category or by the
 * label their task gave (weft_trace_label), "i" steal instants, and otherData (dropped_events,
 * the pool, the writing process). With a ring big enough nothing is dropped and the events match
 * the statistics read before destruction: one task slice per task run or skipped, one join slice
 * per stolen join half, one instant per steal. With $WEFT_TRACE_EVENTS=16 and many tasks events are
 * dropped and each worker keeps at most 16. $WEFT_TRACE applies when trace_path is NULL (and
 * trace_path wins over it); the path is copied at creation; a path that cannot be written does not
 * make destroy fail.
 *
 * Files per pool: %n and %p in the path, and without them a numbered name (t.1.json, ...) for
 * each pool after the first of the process, while files an earlier process left are
 * overwritten. Labels: copied, escaped, cut at 127 bytes, the last one wins, a nested task's
 * label does not leak into its parent's slice, a stolen join half gets its own, 4096 per worker.
 *
 * $WEFT_DISPLAY_ENV=1 prints the settings block on stderr at creation (captured by pointing
 * fd 2 at a temporary file), and nothing is printed without it.
 *
 * Environment changes are made inside the tests (forked children) and undone at their end.
 */
#include "jsoncheck.h"
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Temporary directories
 */

typedef struct tmpdir {
    char path[64];
} tmpdir;

static void tmpdir_make(tmpdir *d)
{
    snprintf(d->path, sizeof(d->path), "/tmp/weft-trace-XXXXXX");
    ck_assert_msg(mkdtemp(d->path) != NULL, "mkdtemp: %s", strerror(errno));
}

/* Writes the path of name inside d into buf and returns buf. */
static const char *tmpdir_file(const tmpdir *d, char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", d->path, name);
    ck_assert(n > 0 && (size_t)n < size);
    return buf;
}

/* Removes d and what the tests put in it (files, and empty directories one level down). */
static void tmpdir_remove(tmpdir *d)
{
    DIR *dir = opendir(d->path);
    if (dir != NULL) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[PATH_MAX];
            snprintf(p, sizeof(p), "%s/%s", d->path, e->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
        closedir(dir);
    }
    rmdir(d->path);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Reading a trace
 */

#define TR_MAXW 8

typedef struct tr_summary {
    size_t process_names;
    size_t thread_names[TR_MAXW];
    char names[TR_MAXW][64];
    size_t tasks, joins, parks, steals; /* X task / join / park slices, i steal instants */
    size_t kept[TR_MAXW];               /* X and i events per worker */
    size_t tasks_per[TR_MAXW];
    uint64_t dropped;
    char pool[32];   /* otherData.pool */
    char writer[64]; /* otherData.writer */
    /* Slices named otherwise than their kind: by weft_trace_label. */
    size_t nlabels;
    char labels[16][160];
    size_t label_count[16];
    char label_cat[16][8];
    unsigned label_depth[16]; /* the depth of the last slice of each label */
} tr_summary;

/* Counts a labelled slice of category cat in s. */
static void tr_label(tr_summary *s, const char *name, const char *cat, unsigned depth)
{
    size_t k = 0;
    while (k < s->nlabels && strcmp(s->labels[k], name) != 0)
        k++;
    ck_assert_msg(k < 16, "more than 16 distinct labels");
    if (k == s->nlabels) {
        ck_assert_msg(strlen(name) < sizeof(s->labels[k]), "label of %zu bytes", strlen(name));
        strcpy(s->labels[k], name);
        snprintf(s->label_cat[k], sizeof(s->label_cat[k]), "%s", cat);
        s->nlabels++;
    }
    ck_assert_str_eq(s->label_cat[k], cat);
    s->label_count[k]++;
    s->label_depth[k] = depth;
}

/* How many slices were named label (0 if none). */
static size_t tr_count(const tr_summary *s, const char *label)
{
    for (size_t k = 0; k < s->nlabels; k++) {
        if (strcmp(s->labels[k], label) == 0)
            return s->label_count[k];
    }
    return 0;
}

static double tr_number(const json_t *ev, const char *key, size_t i)
{
    double x = -1;
    ck_assert_msg(jc_num(json_object_get(ev, key), &x), "event %zu: \"%s\" missing or not a number",
                  i, key);
    return x;
}

static unsigned tr_tid(const json_t *ev, unsigned workers, size_t i)
{
    uint64_t tid = UINT64_MAX;
    ck_assert_msg(jc_u64(json_object_get(ev, "tid"), &tid), "event %zu: no integer tid", i);
    ck_assert_msg(tid < workers, "event %zu: tid %llu, the pool has %u workers", i,
                  (unsigned long long)tid, workers);
    return (unsigned)tid;
}

/* Test thread only: reads the trace at path, checks its structure and every event, and counts
 * them into *s. */
static void tr_load(const char *path, unsigned workers, tr_summary *s)
{
    ck_assert_uint_le(workers, TR_MAXW);
    memset(s, 0, sizeof(*s));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "cannot open the trace %s: %s", path, strerror(errno));
    size_t len = 0;
    char *text = tu_read_fd(fd, &len);
    close(fd);
    ck_assert_ptr_nonnull(text);
    json_error_t err;
    json_t *root = jc_parse(text, len, &err);
    ck_assert_msg(root != NULL, "the trace is not valid JSON (line %d, column %d: %s):\n%.1000s",
                  err.line, err.column, err.text, text);
    free(text);

    ck_assert_msg(json_is_object(root), "the top level of the trace is not an object");
    const json_t *evs = json_object_get(root, "traceEvents");
    ck_assert_msg(json_is_array(evs), "no traceEvents array");
    const json_t *other = json_object_get(root, "otherData");
    ck_assert_msg(json_is_object(other), "no otherData object");
    ck_assert_msg(jc_u64(json_object_get(other, "dropped_events"), &s->dropped),
                  "otherData.dropped_events missing or not a non-negative integer");
    const char *pool = json_string_value(json_object_get(other, "pool"));
    const char *writer = json_string_value(json_object_get(other, "writer"));
    ck_assert_msg(pool != NULL && writer != NULL, "otherData.pool or .writer missing");
    snprintf(s->pool, sizeof(s->pool), "%s", pool);
    snprintf(s->writer, sizeof(s->writer), "%s", writer);

    for (size_t i = 0; i < json_array_size(evs); i++) {
        const json_t *ev = json_array_get(evs, i);
        ck_assert_msg(json_is_object(ev), "event %zu is not an object", i);
        const char *ph = json_string_value(json_object_get(ev, "ph"));
        const char *name = json_string_value(json_object_get(ev, "name"));
        ck_assert_msg(ph != NULL && name != NULL, "event %zu: no ph or name", i);
        ck_assert_msg(json_object_get(ev, "pid") != NULL, "event %zu: no pid", i);
        if (strcmp(ph, "M") == 0) {
            const char *arg =
                json_string_value(json_object_get(json_object_get(ev, "args"), "name"));
            ck_assert_msg(arg != NULL, "metadata event %zu: no args.name", i);
            if (strcmp(name, "process_name") == 0) {
                s->process_names++;
            } else {
                ck_assert_msg(strcmp(name, "thread_name") == 0, "metadata event %zu: %s", i, name);
                unsigned tid = tr_tid(ev, workers, i);
                s->thread_names[tid]++;
                snprintf(s->names[tid], sizeof(s->names[tid]), "%s", arg);
            }
        } else if (strcmp(ph, "X") == 0) {
            unsigned tid = tr_tid(ev, workers, i);
            double ts = tr_number(ev, "ts", i), dur = tr_number(ev, "dur", i);
            ck_assert_msg(ts >= 0 && dur >= 0, "slice %zu (%s): ts %f, dur %f", i, name, ts, dur);
            /* The kind is the category; the name is the kind or the task's label. */
            const char *cat = json_string_value(json_object_get(ev, "cat"));
            ck_assert_msg(cat != NULL, "slice %zu (%s): no cat", i, name);
            if (strcmp(cat, "task") == 0) {
                s->tasks++;
                s->tasks_per[tid]++;
            } else if (strcmp(cat, "join") == 0) {
                s->joins++;
            } else {
                ck_assert_msg(strcmp(cat, "park") == 0, "slice %zu of category \"%s\"", i, cat);
                ck_assert_msg(strcmp(name, "park") == 0, "park slice %zu named \"%s\"", i, name);
                s->parks++;
            }
            if (strcmp(name, cat) != 0) {
                uint64_t depth = 0;
                ck_assert(jc_u64(json_object_get(json_object_get(ev, "args"), "depth"), &depth));
                tr_label(s, name, cat, (unsigned)depth);
            }
            s->kept[tid]++;
        } else {
            ck_assert_msg(strcmp(ph, "i") == 0, "event %zu has ph \"%s\"", i, ph);
            ck_assert_msg(strcmp(name, "steal") == 0, "instant %zu named \"%s\"", i, name);
            unsigned tid = tr_tid(ev, workers, i);
            ck_assert_msg(tr_number(ev, "ts", i) >= 0, "instant %zu: negative ts", i);
            s->steals++;
            s->kept[tid]++;
        }
    }
    json_decref(root);
    ck_assert_uint_eq(s->process_names, 1);
    for (unsigned t = 0; t < workers; t++)
        ck_assert_msg(s->thread_names[t] == 1, "worker %u has %zu thread_name events", t,
                      s->thread_names[t]);
}

/* ---------------------------------------------------------------------------------------------
 * Pools and work
 */

/* Worker thread names as the OS has them, recorded by the start hook on each worker's own
 * thread (the first to start under its index; a spare standing in for it comes later). */
typedef struct names_seen {
    char name[TR_MAXW][16];
    atomic_bool set[TR_MAXW];
} names_seen;

static void record_name(weft_pool *pool, unsigned worker, void *data)
{
    (void)pool;
    names_seen *n = data;
    if (TU_EXPECT(worker < TR_MAXW) && !atomic_exchange(&n->set[worker], true))
        TU_EXPECT(pthread_getname_np(pthread_self(), n->name[worker], 16) == 0);
}

/* Test thread only. */
static weft_pool *traced_pool(unsigned n, const char *name, const char *trace_path,
                              names_seen *seen)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = n;
    cfg.name = name;
    cfg.trace_path = trace_path;
    if (seen != NULL) {
        memset(seen, 0, sizeof(*seen));
        cfg.on_worker_start = record_name;
        cfg.hook_data = seen;
    }
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    ck_assert_msg(rc == 0, "weft_pool_create = %d (%s)", rc, weft_strerror(rc));
    return p;
}

static int noop_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

/* Test thread only: n tasks submitted from outside, each waited for. */
static void run_tasks(weft_pool *p, int n)
{
    atomic_int ran;
    atomic_init(&ran, 0);
    weft_future **fs = calloc((size_t)n, sizeof(*fs));
    ck_assert_ptr_nonnull(fs);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, &fs[i]), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(weft_future_result(fs[i], NULL), 0);
        weft_future_release(fs[i]);
    }
    ck_assert_int_eq(tu_ld(&ran), n);
    free(fs);
}

/* Fork-join: fib with a join at every level, then one join whose second half must be stolen. */
typedef struct fj_ctx {
    weft_pool *pool;
    atomic_int b_started;
    int kicks; /* tasks submitted from inside */
} fj_ctx;

typedef struct fj_node {
    int n;
    long result;
} fj_node;

static void fj_fib(void *arg)
{
    fj_node *nd = arg;
    if (nd->n < 2) {
        nd->result = nd->n;
        return;
    }
    fj_node a = {nd->n - 1, 0}, b = {nd->n - 2, 0};
    weft_join(fj_fib, &a, fj_fib, &b);
    nd->result = a.result + b.result;
}

/* Keeps its worker busy until the second half started elsewhere. The task it submits lands
 * above the frame and wakes an idle worker for sure; that thief takes the frame (the oldest
 * entry) first. */
static void steal_a(void *arg)
{
    fj_ctx *c = arg;
    TU_EXPECT(weft_submit(c->pool, noop_task, NULL, NULL) == 0);
    c->kicks++;
    TU_EXPECT(tu_wait_atomic_ge(&c->b_started, 1, TU_PATIENCE_S));
}

static void steal_b(void *arg)
{
    fj_ctx *c = arg;
    atomic_store(&c->b_started, 1);
}

static int fj_root(void *arg, void **result)
{
    (void)result;
    fj_ctx *c = arg;
    fj_node root = {18, 0};
    fj_fib(&root);
    TU_EXPECT(root.result == 2584);
    weft_join(steal_a, c, steal_b, c);
    return 0;
}

/* Test thread only: runs the fork-join root task; returns the tasks submitted from inside. */
static int run_fork_join(weft_pool *p)
{
    fj_ctx c = {.pool = p, .kicks = 0};
    atomic_init(&c.b_started, 0);
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, fj_root, &c, &f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);
    TU_ASSERT_NO_FAILURES();
    return c.kicks;
}

/* ---------------------------------------------------------------------------------------------
 * Trace files
 */

START_TEST(test_trace_file_contents)
{
    tu_failures_reset();
    tu_env_saved ev = tu_env_set("WEFT_TRACE_EVENTS", NULL); /* the default ring */
    enum { NW = 2, NTASKS = 100 };
    tmpdir d;
    tmpdir_make(&d);
    char path[PATH_MAX];
    tmpdir_file(&d, path, sizeof(path), "trace.json");

    names_seen seen;
    memset(&seen, 0, sizeof(seen));
    weft_pool *p = traced_pool(NW, "trc", path, &seen);
    run_tasks(p, NTASKS);
    int kicks = run_fork_join(p);
    run_tasks(p, NTASKS);

    /* quiescent: the counts are final, and what the trace must match */
    weft_stats s;
    ck_assert_int_eq(weft_pool_stats(p, &s, NULL, 0), 0);
    ck_assert_int_eq(weft_pool_destroy(p), 0);
    TU_ASSERT_NO_FAILURES();

    tr_summary t;
    tr_load(path, NW, &t);
    ck_assert_uint_eq(t.dropped, 0);
    uint64_t ntasks = 2 * NTASKS + 1 + (uint64_t)kicks;
    ck_assert_uint_eq(s.total.tasks_run + s.total.tasks_skipped, ntasks);
    ck_assert_msg(t.tasks == ntasks, "%zu task slices for %llu tasks", t.tasks,
                  (unsigned long long)ntasks);
    ck_assert_msg(t.joins >= 1, "no join slice although a join half was stolen");
    ck_assert_uint_eq(t.joins, s.total.joins_stolen);
    ck_assert_msg(t.steals >= 1, "no steal instant although a join half was stolen");
    ck_assert_uint_eq(t.steals, s.total.steals);
    for (unsigned i = 0; i < NW; i++) {
        char want[32];
        snprintf(want, sizeof(want), "trc-%u", i);
        ck_assert_str_eq(t.names[i], want);
        ck_assert_str_eq(t.names[i], seen.name[i]);
    }
    tmpdir_remove(&d);
    tu_env_restore(&ev);
}
END_TEST

/* Tracks are named after the worker threads, whatever the prefix: a long one (shortened by the
 * OS's 15-character limit) and one with characters JSON must escape. */
START_TEST(test_trace_thread_names)
{
    tu_failures_reset();
    static const char *const prefixes[] = {"q\"uo\\te", "a-rather-long-pool-name"};
    tmpdir d;
    tmpdir_make(&d);
    names_seen seen;
    memset(&seen, 0, sizeof(seen));
    tr_summary t;
    for (size_t k = 0; k < 2; k++) {
        char path[PATH_MAX];
        char file[32];
        snprintf(file, sizeof(file), "names%zu.json", k);
        tmpdir_file(&d, path, sizeof(path), file);
        weft_pool *p = traced_pool(2, prefixes[k], path, &seen);
        run_tasks(p, 4);
        ck_assert_int_eq(weft_pool_destroy(p), 0);
        TU_ASSERT_NO_FAILURES();
        tr_load(path, 2, &t); /* valid JSON, one thread_name per worker */
        unlink(path);
        ck_assert_uint_eq(t.tasks, 4);
    }
    tmpdir_remove(&d);
    /* the long prefix, last: tracks and threads have the same names */
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_uint_le(strlen(seen.name[i]), 15);
        ck_assert_msg(strcmp(t.names[i], seen.name[i]) == 0,
                      "worker %u: track named \"%s\", the thread is \"%s\"", i, t.names[i],
                      seen.name[i]);
    }
}
END_TEST

START_TEST(test_trace_ring_is_bounded)
{
    tu_failures_reset();
    tu_env_saved ev = tu_env_set("WEFT_TRACE_EVENTS", "16");
    enum { NW = 2, NTASKS = 3000 };
    tmpdir d;
    tmpdir_make(&d);
    char path[PATH_MAX];
    tmpdir_file(&d, path, sizeof(path), "small.json");
    weft_pool *p = traced_pool(NW, "ring", path, NULL);
    atomic_int ran;
    atomic_init(&ran, 0);
    for (int i = 0; i < NTASKS; i++)
        ck_assert_int_eq(weft_submit(p, tu_task_count, &ran, NULL), 0);
    int kicks = run_fork_join(p);
    ck_assert(tu_wait_atomic_ge(&ran, NTASKS, TU_PATIENCE_S));
    ck_assert_int_eq(weft_pool_destroy(p), 0);
    TU_ASSERT_NO_FAILURES();

    tr_summary t;
    tr_load(path, NW, &t);
    ck_assert_msg(t.dropped > 0, "%d tasks in rings of 16 events and nothing dropped", NTASKS);
    size_t kept = 0;
    for (unsigned i = 0; i < NW; i++) {
        ck_assert_msg(t.kept[i] <= 16, "worker %u kept %zu events with WEFT_TRACE_EVENTS=16", i,
                      t.kept[i]);
        kept += t.kept[i];
    }
    /* at least one slice per task was recorded: kept + dropped accounts for all of them */
    uint64_t ntasks = NTASKS + 1 + (uint64_t)kicks;
    ck_assert_msg(kept + t.dropped >= ntasks, "kept %zu + dropped %llu < %llu tasks", kept,
                  (unsigned long long)t.dropped, (unsigned long long)ntasks);
    tmpdir_remove(&d);
    tu_env_restore(&ev);
}
END_TEST

START_TEST(test_trace_env_var)
{
    tu_failures_reset();
    tu_env_saved ev = tu_env_set("WEFT_TRACE_EVENTS", NULL);
    tmpdir d;
    tmpdir_make(&d);
    char env_path[PATH_MAX], cfg_path[PATH_MAX];
    tmpdir_file(&d, env_path, sizeof(env_path), "env.json");
    tmpdir_file(&d, cfg_path, sizeof(cfg_path), "cfg.json");

    /* trace_path NULL: $WEFT_TRACE */
    tu_env_saved et = tu_env_set("WEFT_TRACE", env_path);
    weft_pool *p = traced_pool(2, "env", NULL, NULL);
    run_tasks(p, 10);
    ck_assert_int_eq(weft_pool_destroy(p), 0);
    tr_summary t;
    tr_load(env_path, 2, &t);
    ck_assert_uint_eq(t.tasks, 10);
    ck_assert_uint_eq(t.dropped, 0);
    ck_assert_int_eq(unlink(env_path), 0);

    /* trace_path set: it wins over $WEFT_TRACE */
    p = traced_pool(2, "env", cfg_path, NULL);
    run_tasks(p, 5);
    ck_assert_int_eq(weft_pool_destroy(p), 0);
    tr_load(cfg_path, 2, &t);
    ck_assert_uint_eq(t.tasks, 5);
    ck_assert_msg(!file_exists(env_path), "$WEFT_TRACE written although trace_path was set");
    tu_env_restore(&et);

    /* neither: no trace (nothing appears where the last ones went) */
    ck_assert_int_eq(unlink(cfg_path), 0);
    et = tu_env_set("WEFT_TRACE", NULL);
    p = traced_pool(2, "env", NULL, NULL);
    run_tasks(p, 5);
    ck_assert_int_eq(weft_pool_destroy(p), 0);
    ck_assert(!file_exists(env_path));
    ck_assert(!file_exists(cfg_path));
    tu_env_restore(&et);

    tmpdir_remove(&d);
    tu_env_restore(&ev);
}
END_TEST

/* weft_config.trace_path is copied at creation. */
START_TEST(test_trace_path_copied)
{
    tmpdir d;
    tmpdir_make(&d);
    char *path = malloc(PATH_MAX);
    ck_assert_ptr_nonnull(path);
    tmpdir_file(&d, path, PATH_MAX, "copied.json");
    char keep[PATH_MAX];
    snprintf(keep, sizeof(keep), "%s", path);
    weft_pool *p = traced_pool(1, "cp", path, NULL);
    memset(path, 'x', 32);
    path[32] = '\0';
    free(path);
    run_tasks(p, 3);
    ck_assert_int_eq(weft_pool_destroy(p), 0);
    tr_summary t;
    tr_load(keep, 1, &t);
    ck_assert_uint_eq(t.tasks, 3);
    tmpdir_remove(&d);
}
END_TEST

START_TEST(test_trace_unwritable_path)
{
    tmpdir d;
    tmpdir_make(&d);
    char missing[PATH_MAX];
    tmpdir_file(&d, missing, sizeof(missing), "no-such-dir/trace.json");
    /* in a directory that does not exist, a directory itself, an empty path */
    const char *paths[] = {missing, d.path, "/nonexistent-weft-dir/x/y/trace.json", ""};
    for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
        weft_pool *p = traced_pool(2, "unw", paths[k], NULL);
        run_tasks(p, 20);
        int rc = weft_pool_destroy(p);
        ck_assert_msg(rc == 0, "destroy with trace path %s = %d (%s)", paths[k], rc,
                      weft_strerror(rc));
    }
    ck_assert(!file_exists(missing));
    struct stat st;
    ck_assert_int_eq(stat(d.path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    tmpdir_remove(&d);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * WEFT_DISPLAY_ENV
 */

typedef struct capture {
    int saved;
    FILE *tmp;
} capture;

/* Test thread only: from now on fd 2 goes to a temporary file. */
static void capture_begin(capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    ck_assert_ptr_nonnull(c->tmp);
    c->saved = dup(2);
    ck_assert_int_ge(c->saved, 0);
    ck_assert_int_eq(dup2(fileno(c->tmp), 2), 2);
}

/* Test thread only: restores fd 2 and returns what was written to it. */
static char *capture_end(capture *c)
{
    fflush(stderr);
    ck_assert_int_eq(dup2(c->saved, 2), 2);
    close(c->saved);
    ck_assert_int_eq((int)lseek(fileno(c->tmp), 0, SEEK_SET), 0);
    char *text = tu_read_fd(fileno(c->tmp), NULL);
    ck_assert_ptr_nonnull(text);
    fclose(c->tmp);
    return text;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Test thread only: creates a pool of n workers (trace_path as given) with stderr captured,
 * destroys it (stderr captured separately) and returns what creation printed. */
static char *display_run(unsigned n, const char *trace_path, char **at_destroy)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = n;
    cfg.name = "dsp";
    cfg.trace_path = trace_path;
    capture c;
    capture_begin(&c);
    weft_pool *p = NULL;
    int rc = weft_pool_create(&cfg, &p);
    char *text = capture_end(&c);
    ck_assert_msg(rc == 0, "weft_pool_create = %d (%s)", rc, weft_strerror(rc));
    tu_pool_check_works(p);
    capture_begin(&c);
    rc = weft_pool_destroy(p);
    char *text2 = capture_end(&c);
    ck_assert_int_eq(rc, 0);
    if (at_destroy != NULL)
        *at_destroy = text2;
    else
        free(text2);
    return text;
}

START_TEST(test_display_env)
{
    tu_env_saved dbg = tu_env_set("WEFT_DEBUG", NULL);
    tu_env_saved tr = tu_env_set("WEFT_TRACE", NULL);
    tu_env_saved de = tu_env_set("WEFT_DISPLAY_ENV", "1");

    char *at_destroy = NULL;
    char *text = display_run(3, NULL, &at_destroy);
    const char *begin = strstr(text, "WEFT DISPLAY ENVIRONMENT BEGIN");
    const char *end = strstr(text, "WEFT DISPLAY ENVIRONMENT END");
    ck_assert_msg(begin != NULL, "no BEGIN line on stderr; got:\n%s", text);
    ck_assert_msg(end != NULL, "no END line on stderr; got:\n%s", text);
    ck_assert_msg(begin < end, "END before BEGIN:\n%s", text);
    ck_assert_msg(count_of(text, "WEFT DISPLAY ENVIRONMENT BEGIN") == 1,
                  "the block was printed more than once:\n%s", text);
    const char *threads = strstr(text, "WEFT_THREADS = '3'");
    ck_assert_msg(threads != NULL && threads > begin && threads < end,
                  "no \"WEFT_THREADS = '3'\" inside the block:\n%s", text);
    ck_assert_msg(strstr(text, weft_version()) != NULL, "no version in the block:\n%s", text);
    ck_assert_msg(at_destroy[0] == '\0', "destroy printed:\n%s", at_destroy);
    free(text);
    free(at_destroy);

    /* the trace path in effect is shown */
    tmpdir d;
    tmpdir_make(&d);
    char path[PATH_MAX];
    tmpdir_file(&d, path, sizeof(path), "shown.json");
    text = display_run(2, path, NULL);
    ck_assert_msg(strstr(text, "WEFT_THREADS = '2'") != NULL, "got:\n%s", text);
    ck_assert_msg(strstr(text, path) != NULL, "trace path %s not shown:\n%s", path, text);
    free(text);
    tmpdir_remove(&d);

    tu_env_restore(&de);
    tu_env_restore(&tr);
    tu_env_restore(&dbg);
}
END_TEST

START_TEST(test_display_env_off)
{
    tu_env_saved dbg = tu_env_set("WEFT_DEBUG", NULL);
    static const char *const off[] = {NULL, "", "0", "false"};
    for (size_t k = 0; k < sizeof(off) / sizeof(off[0]); k++) {
        tu_env_saved de = tu_env_set("WEFT_DISPLAY_ENV", off[k]);
        char *at_destroy = NULL;
        char *text = display_run(2, NULL, &at_destroy);
        tu_env_restore(&de);
        ck_assert_msg(text[0] == '\0', "WEFT_DISPLAY_ENV=%s: creation printed:\n%s",
                      off[k] ? off[k] : "(unset)", text);
        ck_assert_msg(at_destroy[0] == '\0', "WEFT_DISPLAY_ENV=%s: destroy printed:\n%s",
                      off[k] ? off[k] : "(unset)", at_destroy);
        free(text);
        free(at_destroy);
    }
    tu_env_restore(&dbg);
}
END_TEST

/* $WEFT_TRACE with %n (the pool's name) and %p (the process id): two pools of one process each
 * write their own trace instead of the second overwriting the first. */
START_TEST(test_trace_per_pool_files)
{
    tmpdir d;
    tmpdir_make(&d);
    char tmpl[160], a[160], b[160];
    tmpdir_file(&d, tmpl, sizeof(tmpl), "t-%n-%p.json");
    tu_env_saved e = tu_env_set("WEFT_TRACE", tmpl);
    weft_pool *p1 = traced_pool(1, "first", NULL, NULL);
    weft_pool *p2 = traced_pool(2, "second", NULL, NULL);
    tu_pool_check_works(p1);
    tu_pool_check_works(p2);
    tu_pool_free(p1);
    tu_pool_free(p2);
    tu_env_restore(&e);
    char name[64];
    snprintf(name, sizeof(name), "t-first-%ld.json", (long)getpid());
    tmpdir_file(&d, a, sizeof(a), name);
    snprintf(name, sizeof(name), "t-second-%ld.json", (long)getpid());
    tmpdir_file(&d, b, sizeof(b), name);
    tr_summary t;
    tr_load(a, 1, &t); /* each a whole JSON text of its own pool */
    ck_assert_str_eq(t.pool, "first");
    tr_load(b, 2, &t);
    ck_assert_str_eq(t.pool, "second");
    tmpdir_remove(&d);
}
END_TEST

/* Writes a file at path as another process would have left it. */
static void write_foreign(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    ck_assert_int_eq(fclose(fp), 0);
}

/* $WEFT_TRACE without %n or %p: the second pool of the process does not overwrite the first's
 * file but writes t.1.json, the third t.2.json; files that another process left under those
 * names (an earlier run) are overwritten, not skipped. */
START_TEST(test_trace_numbered_files)
{
    tmpdir d;
    tmpdir_make(&d);
    char tmpl[160], f0[160], f1[160], f2[160], f3[160], plain[160], plain1[160];
    tmpdir_file(&d, tmpl, sizeof(tmpl), "t.json");
    tmpdir_file(&d, f0, sizeof(f0), "t.json");
    tmpdir_file(&d, f1, sizeof(f1), "t.1.json");
    tmpdir_file(&d, f2, sizeof(f2), "t.2.json");
    tmpdir_file(&d, f3, sizeof(f3), "t.3.json");
    /* An earlier run's files, from a process that is not this one. */
    write_foreign(f0, "{\"otherData\": {\"producer\": \"weft\", \"writer\": \"1.1\"}}\n");
    write_foreign(f1, "{\"otherData\": {\"producer\": \"weft\", \"writer\": \"1.1\"}}\n");
    tu_env_saved e = tu_env_set("WEFT_TRACE", tmpl);
    const char *names[3] = {"one", "two", "three"};
    for (unsigned k = 0; k < 3; k++) {
        weft_pool *p = traced_pool(k + 1, names[k], NULL, NULL);
        tu_pool_check_works(p);
        tu_pool_free(p);
    }
    tu_env_restore(&e);
    const char *files[3] = {f0, f1, f2};
    char writer[64] = "";
    for (unsigned k = 0; k < 3; k++) {
        tr_summary t;
        tr_load(files[k], k + 1, &t);
        ck_assert_str_eq(t.pool, names[k]);
        if (k == 0)
            snprintf(writer, sizeof(writer), "%s", t.writer);
        ck_assert_str_eq(t.writer, writer); /* one process wrote them all */
    }
    char pid[32];
    snprintf(pid, sizeof(pid), "%ld.", (long)getpid());
    ck_assert_msg(strncmp(writer, pid, strlen(pid)) == 0, "writer %s, pid %s", writer, pid);
    ck_assert(!file_exists(f3));

    /* A name without an extension gets its number at the end; trace_path works alike. */
    tmpdir_file(&d, plain, sizeof(plain), "plain");
    tmpdir_file(&d, plain1, sizeof(plain1), "plain.1");
    for (unsigned k = 0; k < 2; k++) {
        weft_pool *p = traced_pool(1, names[k], plain, NULL);
        tu_pool_free(p);
    }
    tr_summary t;
    tr_load(plain, 1, &t);
    ck_assert_str_eq(t.pool, "one");
    tr_load(plain1, 1, &t);
    ck_assert_str_eq(t.pool, "two");
    tmpdir_remove(&d);
}
END_TEST

/* --- labels --- */

typedef struct label_ctx {
    weft_pool *pool;
    int item;
    atomic_int b_started;
} label_ctx;

/* Labels its slice from a buffer it then overwrites: the trace must hold a copy. */
static int label_item(void *arg, void **result)
{
    (void)result;
    char buf[32];
    snprintf(buf, sizeof(buf), "item %d", (int)(intptr_t)arg % 3);
    TU_EXPECT(weft_trace_label(buf) == 1);
    memset(buf, 'Z', sizeof(buf) - 1);
    return 0;
}

static int label_twice(void *arg, void **result)
{
    (void)arg;
    (void)result;
    TU_EXPECT(weft_trace_label("first name") == 1);
    TU_EXPECT(weft_trace_label("second name") == 1);
    return 0;
}

/* Quotes, a backslash, control characters, UTF-8 and a byte that is not UTF-8. */
static const char odd_label[] = "q\"b\\n\nt\t\xc3\xa9 \xff!";
static const char odd_label_read[] = "q\"b\\n\nt\t\xc3\xa9 ?!";

static int label_odd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    TU_EXPECT(weft_trace_label(odd_label) == 1);
    return 0;
}

static int label_long(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[201];
    memset(buf, 'x', 200);
    buf[200] = '\0';
    TU_EXPECT(weft_trace_label(buf) == 1);
    return 0;
}

static int label_child(void *arg, void **result)
{
    (void)arg;
    (void)result;
    TU_EXPECT(weft_trace_label("child") == 1);
    return 0;
}

/* Labels itself, then waits on a child that it runs itself (one worker), which labels its own
 * slice: the parent's slice keeps "parent". */
static int label_parent(void *arg, void **result)
{
    (void)result;
    label_ctx *c = arg;
    TU_EXPECT(weft_trace_label("parent") == 1);
    weft_future *f = NULL;
    if (TU_EXPECT(weft_submit(c->pool, label_child, NULL, &f) == 0)) {
        TU_EXPECT(weft_future_result(f, NULL) == 0);
        weft_future_release(f);
    }
    return 0;
}

/* The same, labelled after the wait. */
static int label_after(void *arg, void **result)
{
    (void)result;
    label_ctx *c = arg;
    weft_future *f = NULL;
    if (TU_EXPECT(weft_submit(c->pool, label_child, NULL, &f) == 0)) {
        TU_EXPECT(weft_future_result(f, NULL) == 0);
        weft_future_release(f);
    }
    TU_EXPECT(weft_trace_label("after the wait") == 1);
    return 0;
}

static int label_untraced(void *arg, void **result)
{
    (void)arg;
    (void)result;
    TU_EXPECT(weft_trace_label("nobody records this") == 0);
    return 0;
}

/* 4096 distinct labels fit a worker, the next does not; the slice keeps the last that fit. */
static int label_many(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[32];
    for (int i = 0; i < 4096; i++) {
        snprintf(buf, sizeof(buf), "L%d", i);
        if (!TU_EXPECT(weft_trace_label(buf) == 1))
            break;
    }
    TU_EXPECT(weft_trace_label("one too many") == -ENOSPC);
    TU_EXPECT(weft_trace_label("L7") == 1); /* known labels still work */
    TU_EXPECT(weft_trace_label("L4095") == 1);
    return 0;
}

static void label_steal_a(void *arg)
{
    label_ctx *c = arg;
    TU_EXPECT(weft_submit(c->pool, noop_task, NULL, NULL) == 0);
    TU_EXPECT(tu_wait_atomic_ge(&c->b_started, 1, TU_PATIENCE_S));
}

/* Certainly stolen (steal_a's worker is busy until it started): a join slice of its own. */
static void label_steal_b(void *arg)
{
    label_ctx *c = arg;
    TU_EXPECT(weft_trace_label("stolen half") == 1);
    atomic_store(&c->b_started, 1);
}

static int label_joiner(void *arg, void **result)
{
    (void)result;
    TU_EXPECT(weft_trace_label("joiner") == 1);
    weft_join(label_steal_a, arg, label_steal_b, arg);
    return 0;
}

static void run_one(weft_pool *p, weft_fn fn, void *arg)
{
    weft_future *f = NULL;
    ck_assert_int_eq(weft_submit(p, fn, arg, &f), 0);
    ck_assert_int_eq(weft_future_result(f, NULL), 0);
    weft_future_release(f);
}

START_TEST(test_trace_labels)
{
    tu_failures_reset();
    tmpdir d;
    tmpdir_make(&d);
    char path[PATH_MAX], path2[PATH_MAX], path3[PATH_MAX];
    tmpdir_file(&d, path, sizeof(path), "labels.json");
    tmpdir_file(&d, path2, sizeof(path2), "joins.json");
    tmpdir_file(&d, path3, sizeof(path3), "many.json");

    /* Outside any task there is nothing to name; NULL is refused. */
    ck_assert_int_eq(weft_trace_label("main"), 0);
    ck_assert_int_eq(weft_trace_label(NULL), -EINVAL);
    weft_pool *plain = tu_pool_new(1, "plain");
    run_one(plain, label_untraced, NULL);
    tu_pool_free(plain);

    weft_pool *p = traced_pool(1, "lbl", path, NULL);
    label_ctx c = {.pool = p};
    atomic_init(&c.b_started, 0);
    for (int i = 0; i < 9; i++)
        run_one(p, label_item, (void *)(intptr_t)i);
    run_one(p, label_twice, NULL);
    run_one(p, label_odd, NULL);
    run_one(p, label_long, NULL);
    run_one(p, label_parent, &c);
    run_one(p, label_after, &c);
    run_one(p, noop_task, NULL); /* unlabelled: "task" */
    tu_pool_free(p);

    weft_pool *q = traced_pool(2, "lbj", path2, NULL);
    label_ctx cj = {.pool = q};
    atomic_init(&cj.b_started, 0);
    run_one(q, label_joiner, &cj);
    tu_pool_free(q);

    weft_pool *m = traced_pool(1, "lbm", path3, NULL);
    run_one(m, label_many, NULL);
    tu_pool_free(m);
    TU_ASSERT_NO_FAILURES();

    tr_summary t;
    tr_load(path, 1, &t);
    ck_assert_uint_eq(tr_count(&t, "item 0"), 3);
    ck_assert_uint_eq(tr_count(&t, "item 1"), 3);
    ck_assert_uint_eq(tr_count(&t, "item 2"), 3);
    ck_assert_uint_eq(tr_count(&t, "first name"), 0);
    ck_assert_uint_eq(tr_count(&t, "second name"), 1);
    ck_assert_uint_eq(tr_count(&t, odd_label_read), 1);
    char cut[128];
    memset(cut, 'x', 127);
    cut[127] = '\0';
    ck_assert_uint_eq(tr_count(&t, cut), 1);
    ck_assert_uint_eq(tr_count(&t, "parent"), 1);
    ck_assert_uint_eq(tr_count(&t, "after the wait"), 1);
    ck_assert_uint_eq(tr_count(&t, "child"), 2);
    for (size_t k = 0; k < t.nlabels; k++) {
        /* The children ran inside their parents' waits, one slice deeper. */
        ck_assert_str_eq(t.label_cat[k], "task");
        ck_assert_uint_eq(t.label_depth[k], strcmp(t.labels[k], "child") == 0 ? 1 : 0);
    }
    ck_assert_uint_eq(t.nlabels, 9);
    ck_assert_uint_eq(t.tasks, 9 + 1 + 1 + 1 + 2 * 2 + 1); /* unlabelled ones too */

    tr_load(path2, 2, &t);
    ck_assert_uint_eq(tr_count(&t, "joiner"), 1);
    ck_assert_uint_eq(tr_count(&t, "stolen half"), 1);
    for (size_t k = 0; k < t.nlabels; k++) {
        if (strcmp(t.labels[k], "stolen half") == 0)
            ck_assert_str_eq(t.label_cat[k], "join");
    }

    tr_load(path3, 1, &t);
    ck_assert_uint_eq(t.nlabels, 1);
    ck_assert_uint_eq(tr_count(&t, "L4095"), 1);
    tmpdir_remove(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace");

    TCase *tc = tcase_create("trace");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_trace_file_contents);
    tcase_add_test(tc, test_trace_thread_names);
    tcase_add_test(tc, test_trace_ring_is_bounded);
    tcase_add_test(tc, test_trace_env_var);
    tcase_add_test(tc, test_trace_path_copied);
    tcase_add_test(tc, test_trace_unwritable_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("display_env");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_display_env);
    tcase_add_test(tc, test_display_env_off);
    tcase_add_test(tc, test_trace_per_pool_files);
    tcase_add_test(tc, test_trace_numbered_files);
    tcase_add_test(tc, test_trace_labels);
    suite_add_tcase(s, tc);

    return tu_run_suite(s);
}
