/* SPDX-License-Identifier: MIT */
/*
 * demo_util.h: helpers shared by the weft-demo-* programs (header-only, each program includes
 * it once; not part of the library): options, output, sleeping, random sleeps, error texts.
 *
 * Output: every line goes through demo_say() (or demo_say_locked() with the output lock held),
 * which prefixes the seconds since the start and writes the whole line with one printf under a
 * mutex, on a line-buffered stdout. Lines from different threads therefore never mix, and their
 * order is the order in which their critical sections ran. A program can hold the lock around a
 * decision and the line that reports it (demo_lock/demo_unlock), so that the order of the lines
 * is the order of the decisions.
 */
#ifndef WEFT_DEMO_UTIL_H
#define WEFT_DEMO_UTIL_H

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft.h"

typedef struct demo_opts {
    uint64_t seed;    /* --seed N: the random sleeps (default DEMO_DEFAULT_SEED) */
    double scale;     /* --scale F: multiplies every sleep and timeout (default 1.0) */
    unsigned threads; /* --threads N: pool size (default: the program's choice) */
} demo_opts;

#define DEMO_DEFAULT_SEED 1u

static pthread_mutex_t demo_out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec demo_t0;

/* Exits with status 1 after saying which call failed and why. The demos have nothing sensible
 * to do with a weft call that fails but report it. */
#define DEMO_CHECK(call)                                                                           \
    do {                                                                                           \
        int demo_rc_ = (call);                                                                     \
        if (demo_rc_ != 0)                                                                         \
            demo_fail(__FILE__, __LINE__, #call, demo_rc_);                                        \
    } while (0)

static inline void demo_fail(const char *file, int line, const char *what, int rc)
{
    fflush(stdout);
    fprintf(stderr, "%s:%d: %s failed: %d (%s)\n", file, line, what, rc, weft_strerror(rc));
    exit(1);
}

static inline double demo_elapsed(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - demo_t0.tv_sec) + (double)(now.tv_nsec - demo_t0.tv_nsec) / 1e9;
}

/* Call first: starts the clock and makes stdout line-buffered. */
static inline void demo_start(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    clock_gettime(CLOCK_MONOTONIC, &demo_t0);
}

static inline void demo_lock(void)
{
    pthread_mutex_lock(&demo_out_lock);
}

static inline void demo_unlock(void)
{
    pthread_mutex_unlock(&demo_out_lock);
}

/* One line, with the output lock held by the caller. */
__attribute__((format(printf, 1, 2))) static inline void demo_say_locked(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("[%7.3f] %s\n", demo_elapsed(), line);
}

/* One line, atomically with respect to every other line. */
__attribute__((format(printf, 1, 2))) static inline void demo_say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    demo_lock();
    printf("[%7.3f] %s\n", demo_elapsed(), line);
    demo_unlock();
}

static inline void demo_sleep_real(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Sleeps `seconds` (already scaled) inside a task, in slices of at most 2 ms, and returns
 * -ECANCELED as soon as weft_cancel_requested() says the task's future was cancelled, 0 when
 * the whole time has passed. A task that returns -ECANCELED after a request ends CANCELLED;
 * this is how a blocked task cooperates with cancellation (the executor cannot interrupt it). */
static inline int demo_nap(double seconds)
{
    double end = demo_elapsed() + seconds;
    for (;;) {
        if (weft_cancel_requested())
            return -ECANCELED;
        double left = end - demo_elapsed();
        if (left <= 0)
            return 0;
        demo_sleep_real(left < 0.002 ? left : 0.002);
    }
}

/* splitmix64: small, good enough, and the same sequence everywhere for a given seed. */
static inline uint64_t demo_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A random sleep between 1 and 3 seconds (unscaled), to the millisecond, like
 * random.uniform(1, 3) in the Python versions. */
static inline double demo_rand_sleep(uint64_t *state)
{
    return 1.0 + (double)(demo_rand(state) % 2001u) / 1000.0;
}

/* "-ECANCELED", "-EIO": a code as its errno name when it has one, else as a number. */
static inline const char *demo_code_name(int code, char *buf, size_t size)
{
    const char *name = code < 0 ? strerrorname_np(-code) : NULL;
    if (name != NULL)
        snprintf(buf, size, "-%s", name);
    else
        snprintf(buf, size, "%d", code);
    return buf;
}

/* "-ECANCELED (cancelled)": the code's name and its text, from weft_strerror() for the codes
 * weft itself returns and from the C library for the others (a task's own code, such as -EIO,
 * which weft_strerror() only calls "unknown error code"). */
static inline const char *demo_describe(int code, char *buf, size_t size)
{
    const char *text = weft_strerror(code);
    switch (code) {
    case 0:
    case -EINVAL:
    case -ENOMEM:
    case -ETIMEDOUT:
    case -ECANCELED:
    case -ESHUTDOWN:
    case -EAGAIN:
    case -EDEADLK:
    case -ENOENT:
        break;
    default:
        if (code < 0 && strerrordesc_np(-code) != NULL)
            text = strerrordesc_np(-code);
        break;
    }
    char name[32];
    snprintf(buf, size, "%s (%s)", demo_code_name(code, name, sizeof name), text);
    return buf;
}

/* An option of one program only, taking a number of seconds (unscaled), or none (name NULL). */
typedef struct demo_extra {
    const char *name; /* "--timeout" */
    const char *help; /* the usage text after "--timeout S" */
    double *value;    /* holds the default, receives the value */
} demo_extra;

/* The options every demo takes (weft-demo-promise and weft-httpd use the same names and short
 * forms): -S/--seed N, -s/--scale F, -t/--threads N, -h/--help. */
static inline void demo_usage(FILE *to, const char *prog, const char *what, unsigned threads,
                              const demo_extra *extra)
{
    bool has_extra = extra != NULL && extra->name != NULL;
    fprintf(to,
            "Usage: %s [--seed N] [--scale F] [--threads N]%s%s%s\n"
            "%s\n"
            "  -S, --seed N      seed of the random 1-3 s sleeps (default %u)\n"
            "  -s, --scale F     multiply every sleep and timeout by F > 0 (default 1.0)\n"
            "  -t, --threads N   pool size, 1-%u (default %u: one worker per task that may run\n"
            "                    at once, since the tasks sleep rather than compute)\n",
            prog, has_extra ? " [" : "", has_extra ? extra->name : "", has_extra ? " S]" : "", what,
            DEMO_DEFAULT_SEED, WEFT_MAX_THREADS, threads);
    if (has_extra) {
        char opt[64];
        snprintf(opt, sizeof opt, "    %s S", extra->name);
        fprintf(to, "%-18s  %s (default %g)\n", opt, extra->help, *extra->value);
    }
    fputs("  -h, --help        this text\n"
          "Options take their value as the next argument or after '=' (--threads=4).\n",
          to);
}

/* Parses the options above and the extra one if any (getopt_long: "--opt value", "--opt=value",
 * "-t value", "-tvalue", unique prefixes of long names) into *o and *extra->value. Exits with 0
 * after --help, with 2 after a bad argument. */
static inline void demo_parse(int argc, char **argv, const char *what, unsigned default_threads,
                              const demo_extra *extra, demo_opts *o)
{
    enum { OPT_EXTRA = 256 };
    o->seed = DEMO_DEFAULT_SEED;
    o->scale = 1.0;
    o->threads = default_threads;
    bool has_extra = extra != NULL && extra->name != NULL;
    const struct option longopts[] = {
        {"seed", required_argument, NULL, 'S'},
        {"scale", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        /* The extra option, or the end of the table. */
        {has_extra ? extra->name + 2 : NULL, has_extra ? required_argument : 0, NULL,
         has_extra ? OPT_EXTRA : 0},
        {NULL, 0, NULL, 0},
    };
    int opt, index = -1;
    while ((opt = getopt_long(argc, argv, "S:s:t:h", longopts, &index)) != -1) {
        char *end = NULL;
        errno = 0;
        bool ok;
        const char *name = opt == 'S'   ? "--seed"
                           : opt == 's' ? "--scale"
                           : opt == 't' ? "--threads"
                           : has_extra  ? extra->name
                                        : "";
        switch (opt) {
        case 'S': {
            unsigned long long v = strtoull(optarg, &end, 0);
            ok = errno == 0 && end != optarg && *end == '\0' && optarg[0] != '-';
            o->seed = v;
            break;
        }
        case 's': {
            double v = strtod(optarg, &end);
            ok = errno == 0 && end != optarg && *end == '\0' && isfinite(v) && v > 0 && v <= 1000;
            o->scale = v;
            break;
        }
        case 't': {
            unsigned long v = strtoul(optarg, &end, 10);
            ok = errno == 0 && end != optarg && *end == '\0' && optarg[0] != '-' && v >= 1 &&
                 v <= WEFT_MAX_THREADS;
            o->threads = (unsigned)v;
            break;
        }
        case OPT_EXTRA: {
            double v = strtod(optarg, &end);
            ok = has_extra && errno == 0 && end != optarg && *end == '\0' && isfinite(v) &&
                 v >= 0 && v <= 3600;
            if (ok)
                *extra->value = v;
            break;
        }
        case 'h':
            demo_usage(stdout, argv[0], what, default_threads, extra);
            exit(0);
        default: /* getopt_long said what was wrong */
            demo_usage(stderr, argv[0], what, default_threads, extra);
            exit(2);
        }
        if (!ok) {
            fprintf(stderr, "%s: bad value '%s' for %s\n", argv[0], optarg, name);
            demo_usage(stderr, argv[0], what, default_threads, extra);
            exit(2);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
        demo_usage(stderr, argv[0], what, default_threads, extra);
        exit(2);
    }
}

static inline weft_pool *demo_pool(unsigned threads)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = threads;
    cfg.name = "demo";
    weft_pool *pool = NULL;
    DEMO_CHECK(weft_pool_create(&cfg, &pool));
    return pool;
}

#endif /* WEFT_DEMO_UTIL_H */
