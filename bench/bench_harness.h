/* SPDX-License-Identifier: MIT */
/*
 * bench_harness.h: runs the implementations of one workload side by side in one process and
 * prints them as comparable rows (header-only, C; the programs that compare weft with its peers
 * use it, and bench_promise for its weft-only rows; bench_submit does not).
 *
 * The implementations ("impls") of a workload:
 *   serial  plain sequential C, the baseline every other row is checked against and divided by
 *   weft    on a pool of 1 worker (weft's overhead over serial) and on a pool of N workers
 *   omp     gcc's libgomp with N threads (tasks/taskwait, or parallel for), when built with OpenMP
 *   tbb     oneTBB in a task_arena of N threads, when built with TBB
 * N is -t (0, the default: weft's default pool size, one worker per usable core). The two weft
 * pools and the TBB arena are created once per program and reused by every case. omp and tbb
 * count the calling thread among their N, as weft counts only its workers (the main thread
 * sleeps while a weft pool runs), so every parallel row has N threads computing.
 *
 * Method. A case is one workload at one size with its rows (an impl, a thread count, maybe a
 * variant such as an OpenMP schedule). bench_case_run first runs every row once untimed (warm-up:
 * thread start-up, page faults, caches), then -r repetitions INTERLEAVED: repetition r runs
 * every row once, starting at row r mod rows, so that a noisy neighbour taking a core for a
 * while slows all rows alike instead of one. Before each timed call the harness waits until
 * the process is quiet (no thread of ours still spinning: libgomp and TBB workers spin for a
 * while after a region ends, weft workers briefly before they park), so that no runtime's idle
 * spinning steals the core the next one runs on. Each row's result is checked after every call
 * against the serial row (a value, plus an optional check of the output array); any mismatch
 * exits with status 1.
 *
 * Output, per row, one machine-readable line of space-separated key=value pairs:
 *   bench=<workload> case=<case> impl=<serial|weft|omp|tbb> variant=<v> threads=<n> <params>
 *   reps=<r> median_ns= min_ns= speedup_vs_serial= speedup_vs_serial_best= ratio_vs_weft=
 *   cpus_used= cpus_denied= cpu_vs_serial=
 * and, in a case that measures the cost of one operation (bench_case.ops set: every row's timed
 * call does that many), ns_per_op_median= ns_per_op_best= right after min_ns= (the median and
 * minimum times over ops), and an "ns/op" column in the table.
 * speedup_vs_serial is the serial median over this row's median (_best: over the minima);
 * ratio_vs_weft is this row's median over the median of the weft row at N workers (above 1:
 * slower than weft). The other three are over the row's timed calls, and tell noise from
 * runtime on this shared machine:
 *   cpus_used      process CPU time over wall time: how many cores the row kept busy (spinning
 *                  counts; parked or sleeping threads do not)
 *   cpus_denied    time our threads spent runnable but waiting for a CPU (Linux schedstat) over
 *                  wall time: how many cores something else took from the row. A speedup below
 *                  N with cpus_denied near 0 and cpus_used below N is the runtime leaving cores
 *                  idle; with cpus_denied high it is the neighbour.
 *   cpu_vs_serial  the row's CPU time over the serial row's: the work the runtime added
 *                  (scheduling, idle spinning, lost locality), which a neighbour taking a core
 *                  barely changes
 * variant is "default" except for rows that differ from the other rows of their impl
 * (static/dynamic OpenMP schedules, an alternative weft formulation): summaries take weft's
 * default rows and the best row of each peer. Human-readable lines start with "# ".
 */
#ifndef WEFT_BENCH_HARNESS_H
#define WEFT_BENCH_HARNESS_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "weft.h"

#ifdef BENCH_HAVE_TBB
#include "bench_tbb.h"
#endif
#define BENCH_MAX_ROWS 16

/* The omp rows' variant: "default" for gcc's libgomp, "libomp" when clang built the program
 * (bench/CMakeLists.txt builds bench_fib and bench_nqueens a second time with clang's -fopenmp,
 * as bench_fib_libomp and bench_nqueens_libomp, when clang and libomp are found). */
#ifdef __clang__
#define BENCH_OMP_VARIANT "libomp"
#else
#define BENCH_OMP_VARIANT "default"
#endif

/* For the kernels a workload's variants share (the serial leaf below a cutoff, a loop body):
 * each is compiled once, out of line, in the program's C file, and every variant (the TBB one
 * in its C++ file included) calls that one copy. Inlined into each variant instead, the same
 * loop compiled to the same instructions ran 12 % faster or 24 % slower than serial on one
 * pinned core depending only on where the linker placed it (seen on this AMD EPYC host), a
 * difference that would be credited to the runtime. noipa also keeps gcc from cloning the
 * function for its C callers. */
#if defined(__clang__) || !defined(__GNUC__)
#define BENCH_KERNEL __attribute__((noinline))
#else
#define BENCH_KERNEL __attribute__((noipa))
#endif

typedef enum { BENCH_SERIAL, BENCH_WEFT1, BENCH_WEFTN, BENCH_OMP, BENCH_TBB } bench_kind;

typedef struct bench_row bench_row;

/* The timed call of a row. Returns a value that must equal the serial row's (a count, a
 * checksum; 0 when the output is checked by verify instead). */
typedef uint64_t (*bench_run_fn)(const bench_row *row);

struct bench_row {
    bench_kind kind;
    const char *impl;    /* serial, weft, omp, tbb */
    const char *variant; /* "default" or a name such as "static" */
    unsigned threads;
    weft_pool *pool; /* weft rows: the pool to run on */
    bench_run_fn run;
    void *ctx;
    /* Untimed, before each call: restore the input (NULL: nothing to do). */
    void (*prepare)(const bench_row *row);
    /* Untimed, after each call: whether the output is right (NULL: the value alone is checked). */
    bool (*verify)(const bench_row *row);
    /* Filled in by bench_case_run. */
    uint64_t *samples;
    uint64_t cpu_ns, wall_ns, wait_ns;
    bench_stats stats;
};

typedef struct bench_case {
    const char *bench; /* bench= */
    const char *name;  /* case= */
    char params[256];  /* key=value pairs describing the size, printed in every line */
    uint64_t ops;      /* 0, or the operations each timed call does: ns per operation printed */
    size_t nrows;
    bench_row rows[BENCH_MAX_ROWS];
} bench_case;

/* What every program shares: the options -t, -r, -i and the runtimes they set up. */
typedef struct bench_env {
    unsigned threads_opt; /* -t as given (0: weft's default) */
    unsigned threads;     /* N, once started */
    size_t reps;
    unsigned impls; /* -i: bit (1u << kind) for every kind to run; serial always runs */
    weft_pool *one, *all;
} bench_env;

#define BENCH_COMMON_OPTS "t:r:i:"
#define BENCH_COMMON_USAGE                                                                         \
    "  -t THREADS  threads of the parallel rows, 0 (default) = one per usable core\n"              \
    "  -r REPS     interleaved repetitions (default 5); median and min are reported\n"             \
    "  -i IMPLS    comma-separated subset of weft1,weft,omp,tbb to run (serial always runs;\n"     \
    "              default all); for profiling one runtime with perf record\n"

static inline void bench_env_init(bench_env *env)
{
    memset(env, 0, sizeof *env);
    env->reps = 5;
    env->impls = ~0u;
}

static inline unsigned bench_parse_impls(const char *s)
{
    unsigned mask = 1u << BENCH_SERIAL;
    const char *p = s;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if (len == 6 && strncmp(p, "serial", len) == 0)
            ;
        else if (len == 5 && strncmp(p, "weft1", len) == 0)
            mask |= 1u << BENCH_WEFT1;
        else if (len == 4 && strncmp(p, "weft", len) == 0)
            mask |= 1u << BENCH_WEFTN;
        else if (len == 3 && strncmp(p, "omp", len) == 0)
            mask |= 1u << BENCH_OMP;
        else if (len == 3 && strncmp(p, "tbb", len) == 0)
            mask |= 1u << BENCH_TBB;
        else {
            fprintf(stderr, "-i: unknown impl '%.*s' (serial, weft1, weft, omp, tbb)\n", (int)len,
                    p);
            exit(2);
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return mask;
}

/* Handles the options every program takes; false when opt is not one of them. */
static inline bool bench_env_option(bench_env *env, int opt, const char *arg)
{
    switch (opt) {
    case 't':
        env->threads_opt = (unsigned)bench_parse_num('t', arg, 0, WEFT_MAX_THREADS);
        return true;
    case 'r':
        env->reps = (size_t)bench_parse_num('r', arg, 1, 1000);
        return true;
    case 'i':
        env->impls = bench_parse_impls(arg);
        return true;
    default:
        return false;
    }
}

/* Creates the pools (1 worker and N), sets up the TBB arena, and says what is compared. */
static inline void bench_env_start(bench_env *env, const char *program)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    cfg.name = "weft1";
    BENCH_CHECK(weft_pool_create(&cfg, &env->one));
    cfg.threads = env->threads_opt;
    cfg.name = "weftN";
    BENCH_CHECK(weft_pool_create(&cfg, &env->all));
    env->threads = weft_pool_size(env->all);
    printf("# %s: weft %s, %u thread%s for the parallel rows, %zu interleaved repetitions\n",
           program, weft_version(), env->threads, env->threads == 1 ? "" : "s", env->reps);
#ifdef _OPENMP
    if (env->impls & (1u << BENCH_OMP))
        printf("# omp: libgomp, OpenMP %d\n", _OPENMP);
    else
        printf("# omp: left out by -i\n");
#else
    printf("# omp: not built (OpenMP was not found at configure time): omp rows skipped\n");
#endif
#ifdef BENCH_HAVE_TBB
    if (env->impls & (1u << BENCH_TBB)) {
        if (bench_tbb_start(env->threads) != 0) {
            fprintf(stderr, "%s: could not set up a TBB arena of %u threads\n", program,
                    env->threads);
            exit(1);
        }
        printf("# tbb: oneTBB %s\n", bench_tbb_version());
    } else {
        printf("# tbb: left out by -i\n");
    }
#else
    printf("# tbb: not built (TBB was not found at configure time): tbb rows skipped\n");
#endif
    fflush(stdout);
}

/* Tears down what bench_env_start set up. */
static inline void bench_env_finish(bench_env *env)
{
#ifdef BENCH_HAVE_TBB
    if (env->impls & (1u << BENCH_TBB))
        bench_tbb_stop();
#endif
    BENCH_CHECK(weft_pool_destroy(env->all));
    BENCH_CHECK(weft_pool_destroy(env->one));
}

static inline void bench_case_init(bench_case *c, const char *bench, const char *name)
{
    memset(c, 0, sizeof *c);
    c->bench = bench;
    c->name = name;
}

/* Adds a row of the given kind unless -i left it out or its runtime is not built; returns it
 * (to set prepare, verify or variant) or NULL. An omp row's variant is BENCH_OMP_VARIANT. */
static inline bench_row *bench_add(bench_case *c, const bench_env *env, bench_kind kind,
                                   bench_run_fn run, void *ctx)
{
    static const char *const names[] = {"serial", "weft", "weft", "omp", "tbb"};
    if (kind != BENCH_SERIAL && !(env->impls & (1u << kind)))
        return NULL;
#ifndef _OPENMP
    if (kind == BENCH_OMP)
        return NULL;
#endif
#ifndef BENCH_HAVE_TBB
    if (kind == BENCH_TBB)
        return NULL;
#endif
    if (c->nrows == BENCH_MAX_ROWS) {
        fprintf(stderr, "%s/%s: more than %d rows\n", c->bench, c->name, BENCH_MAX_ROWS);
        exit(1);
    }
    bench_row *row = &c->rows[c->nrows++];
    memset(row, 0, sizeof *row);
    row->kind = kind;
    row->impl = names[kind];
    row->variant = kind == BENCH_OMP ? BENCH_OMP_VARIANT : "default";
    row->threads = kind == BENCH_SERIAL || kind == BENCH_WEFT1 ? 1 : env->threads;
    row->pool = kind == BENCH_WEFT1 ? env->one : kind == BENCH_WEFTN ? env->all : NULL;
    row->run = run;
    row->ctx = ctx;
    return row;
}

/* A weft variant of a case: a row on 1 worker and one on all, both named variant. */
static inline void bench_add_weft(bench_case *c, const bench_env *env, bench_run_fn run, void *ctx,
                                  const char *variant)
{
    bench_row *one = bench_add(c, env, BENCH_WEFT1, run, ctx);
    if (one != NULL)
        one->variant = variant;
    bench_row *all = bench_add(c, env, BENCH_WEFTN, run, ctx);
    if (all != NULL)
        all->variant = variant;
}

/* Gives every row of the case the same prepare and verify (see bench_row). */
static inline void bench_case_io(bench_case *c, void (*prepare)(const bench_row *row),
                                 bool (*verify)(const bench_row *row))
{
    for (size_t i = 0; i < c->nrows; i++) {
        c->rows[i].prepare = prepare;
        c->rows[i].verify = verify;
    }
}

/* Sleeps until the process stops burning CPU in other threads: a runtime whose workers still
 * spin after their last region would otherwise take a core from the next row. Gives up after
 * 200 ms (then a spinning thread is a property of that runtime, and its rows pay for it). */
static inline void bench_quiesce(void)
{
    const struct timespec slice = {0, 1000000};
    for (int i = 0; i < 200; i++) {
        uint64_t c0 = bench_cpu_ns(), w0 = bench_now_ns();
        nanosleep(&slice, NULL);
        uint64_t c1 = bench_cpu_ns(), w1 = bench_now_ns();
        if ((c1 - c0) * 10 < w1 - w0)
            return;
    }
}

/* The time the threads of this process have spent runnable but not running, waiting for a CPU
 * that something else had (the second field of each thread's /proc schedstat); 0 where Linux
 * does not say. Over a timed call it tells a runtime that left a core idle (it parked, or
 * waited) from one that was denied it (a neighbour took the core). */
static inline uint64_t bench_wait_ns(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL)
        return 0;
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* the thread has just exited */
        unsigned long long run = 0, wait = 0;
        if (fscanf(f, "%llu %llu", &run, &wait) == 2)
            sum += wait;
        fclose(f);
    }
    closedir(dir);
    return sum;
}

/* One untimed or timed call of a row, checked; returns its wall time. */
static inline uint64_t bench_call(const bench_case *c, bench_row *row, uint64_t expect, bool timed)
{
    if (row->prepare != NULL)
        row->prepare(row);
    bench_quiesce();
    uint64_t w0 = bench_wait_ns();
    uint64_t c0 = bench_cpu_ns(), t0 = bench_now_ns();
    uint64_t v = row->run(row);
    uint64_t t1 = bench_now_ns(), c1 = bench_cpu_ns();
    uint64_t w1 = bench_wait_ns();
    if (timed) {
        row->cpu_ns += c1 - c0;
        row->wall_ns += t1 - t0;
        row->wait_ns += w1 - w0;
    }
    bool ok = v == expect && (row->verify == NULL || row->verify(row));
    if (!ok) {
        fprintf(stderr,
                "%s/%s: impl=%s variant=%s threads=%u: wrong result (value %" PRIu64
                ", serial %" PRIu64 ")\n",
                c->bench, c->name, row->impl, row->variant, row->threads, v, expect);
        fflush(stdout);
        exit(1);
    }
    return t1 - t0;
}

static inline void bench_print_ratio(const char *key, uint64_t num, uint64_t den)
{
    if (num && den)
        printf(" %s=%.3f", key, (double)num / (double)den);
}

/* Runs every row of the case (warm-up, then interleaved repetitions), prints the rows. */
static inline void bench_case_run(bench_case *c, bench_env *env)
{
    if (c->nrows == 0 || c->rows[0].kind != BENCH_SERIAL) {
        fprintf(stderr, "%s/%s: the first row must be the serial one\n", c->bench, c->name);
        exit(1);
    }
    size_t reps = env->reps;
    for (size_t i = 0; i < c->nrows; i++) {
        c->rows[i].samples = bench_xcalloc(reps, sizeof(uint64_t));
        c->rows[i].cpu_ns = c->rows[i].wall_ns = c->rows[i].wait_ns = 0;
    }

    /* Warm-up; the serial row's value becomes the expected one. */
    if (c->rows[0].prepare != NULL)
        c->rows[0].prepare(&c->rows[0]);
    uint64_t expect = c->rows[0].run(&c->rows[0]);
    for (size_t i = 0; i < c->nrows; i++)
        bench_call(c, &c->rows[i], expect, false);

    for (size_t r = 0; r < reps; r++)
        for (size_t j = 0; j < c->nrows; j++) {
            bench_row *row = &c->rows[(r + j) % c->nrows];
            row->samples[r] = bench_call(c, row, expect, true);
        }

    const bench_row *weft = NULL;
    for (size_t i = 0; i < c->nrows; i++) {
        bench_row *row = &c->rows[i];
        row->stats = bench_summarize(row->samples, reps);
        if (weft == NULL && row->kind == BENCH_WEFTN && strcmp(row->variant, "default") == 0)
            weft = row;
    }
    const bench_row *serial = &c->rows[0];
    for (size_t i = 0; i < c->nrows; i++) {
        const bench_row *row = &c->rows[i];
        printf("bench=%s case=%s impl=%s variant=%s threads=%u%s%s reps=%zu median_ns=%" PRIu64
               " min_ns=%" PRIu64,
               c->bench, c->name, row->impl, row->variant, row->threads, c->params[0] ? " " : "",
               c->params, reps, row->stats.median_ns, row->stats.min_ns);
        if (c->ops > 0)
            printf(" ns_per_op_median=%.1f ns_per_op_best=%.1f",
                   (double)row->stats.median_ns / (double)c->ops,
                   (double)row->stats.min_ns / (double)c->ops);
        bench_print_ratio("speedup_vs_serial", serial->stats.median_ns, row->stats.median_ns);
        bench_print_ratio("speedup_vs_serial_best", serial->stats.min_ns, row->stats.min_ns);
        if (weft != NULL)
            bench_print_ratio("ratio_vs_weft", row->stats.median_ns, weft->stats.median_ns);
        double wall = row->wall_ns ? (double)row->wall_ns : 1;
        printf(" cpus_used=%.2f cpus_denied=%.2f", (double)row->cpu_ns / wall,
               (double)row->wait_ns / wall);
        bench_print_ratio("cpu_vs_serial", row->cpu_ns, serial->cpu_ns);
        printf("\n");
    }

    printf("# %s/%s (%s): medians of %zu interleaved repetitions\n", c->bench, c->name, c->params,
           reps);
    printf("#   %-6s %-8s %7s %11s %11s %8s %8s %5s %6s %7s%s\n", "impl", "variant", "threads",
           "median ms", "min ms", "speedup", "vs weft", "cpus", "denied", "cpu/ser",
           c->ops > 0 ? "    ns/op" : "");
    for (size_t i = 0; i < c->nrows; i++) {
        const bench_row *row = &c->rows[i];
        printf("#   %-6s %-8s %7u %11.3f %11.3f %8.2f", row->impl, row->variant, row->threads,
               (double)row->stats.median_ns / 1e6, (double)row->stats.min_ns / 1e6,
               (double)serial->stats.median_ns / (double)row->stats.median_ns);
        if (weft != NULL)
            printf(" %8.2f", (double)row->stats.median_ns / (double)weft->stats.median_ns);
        else
            printf(" %8s", "-");
        double wall = row->wall_ns ? (double)row->wall_ns : 1;
        printf(" %5.2f %6.2f %7.2f", (double)row->cpu_ns / wall, (double)row->wait_ns / wall,
               serial->cpu_ns ? (double)row->cpu_ns / (double)serial->cpu_ns : 0);
        if (c->ops > 0)
            printf(" %9.1f", (double)row->stats.median_ns / (double)c->ops);
        printf("\n");
    }
    fflush(stdout);
    for (size_t i = 0; i < c->nrows; i++) {
        free(c->rows[i].samples);
        c->rows[i].samples = NULL;
    }
}

/* Runs fn(arg) as a task on pool from outside it and returns the task's result: how the
 * recursive benchmarks enter a pool (weft_join and scopes only fork on a worker). */
static inline void *bench_weft_root(weft_pool *pool, weft_fn fn, void *arg)
{
    weft_future *f = NULL;
    void *result = NULL;
    BENCH_CHECK(weft_submit(pool, fn, arg, &f));
    BENCH_CHECK(weft_future_result(f, &result));
    weft_future_release(f);
    return result;
}

#endif /* WEFT_BENCH_HARNESS_H */
