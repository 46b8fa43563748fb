/* SPDX-License-Identifier: MIT */
/*
 * weft-scale: runs a program that uses weft at several thread counts and reports how it scales.
 *
 * Usage: weft-scale [OPTIONS] [--] COMMAND [ARG...]
 *
 * COMMAND runs with WEFT_THREADS=p in its environment for every thread count p (1..N, or the
 * -T list), R times each, in interleaved order (1, 2, ..., N, 1, 2, ..., N, ...) so that a noisy
 * neighbour slows every count alike rather than one. Each run is timed by wall clock from fork
 * to waitpid (CLOCK_MONOTONIC) or, with --metric KEY, by the last KEY=<ns> in its output (for
 * benchmarks that time their own repetitions and leave setup out). The command's stdout and
 * stderr go to a log file. The medians give a table of speedup T1/Tp, efficiency S/p and the
 * Karp-Flatt serial fraction (scale_math.h), written as PREFIX.csv, PREFIX.json and an SVG plot,
 * PREFIX.svg. Exits with 1, naming the thread counts, when the command fails (non-zero exit,
 * signal, timeout, no metric in its output) at any count, and then writes no file but the log.
 */
#include "scale_math.h"
#include "scale_out.h"
#include "scale_parse.h"
#include "weft.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: weft-scale [OPTIONS] [--] COMMAND [ARG...]\n"
    "Runs COMMAND with WEFT_THREADS=1..N, R times each in interleaved order, and reports the\n"
    "median time, speedup T1/Tp, efficiency and Karp-Flatt serial fraction of each count.\n"
    "  -n N            thread counts 1..N (default: twice weft's default thread count, to\n"
    "                  show oversubscription)\n"
    "  -T LIST         the thread counts to run, e.g. 1,2,4,8 (1 is added if missing)\n"
    "  -r R            runs per thread count (default 5)\n"
    "  -m, --metric KEY  time a run by the last KEY=<nanoseconds> in its output instead of\n"
    "                  by wall clock (e.g. median_ns of a benchmark line)\n"
    "  -M, --match REGEX  with --metric, only lines matching this extended regex count\n"
    "  -o PREFIX       write PREFIX.csv, PREFIX.json, PREFIX.svg (default weft-scale)\n"
    "  -l LOG          the command's output (default PREFIX.log)\n"
    "  -t TITLE        title of the table and the plot (default: the command)\n"
    "  -k SECONDS      kill a run that takes longer; it counts as a failure (default: none)\n"
    "  -q              no progress on stderr\n"
    "  -h, --help      this text\n"
    "Exit status: 0; 1 when the command fails at some thread count (each is named) or a file\n"
    "cannot be written; 2 for a usage error.\n";

typedef struct runner {
    char **argv;
    int log_fd;
    const char *metric;
    const regex_t *match;
    double timeout_s;
    sigset_t old_mask; /* restored in the child before exec */
    char *metric_line; /* the line of the last value read */
    char why[160];     /* what went wrong with the last run */
} runner;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void usage_error(const char *fmt, const char *arg)
{
    fputs("weft-scale: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(weft-scale -h for help)\n", stderr);
    exit(2);
}

static unsigned long parse_ulong(const char *s, const char *what, unsigned long lo,
                                 unsigned long hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
        usage_error(what, s);
    return v;
}

/* In the child: WEFT_THREADS, stdin from /dev/null, stdout and stderr to the log, then exec. */
static void child(const runner *rn, unsigned threads)
{
    char value[16];
    snprintf(value, sizeof(value), "%u", threads);
    sigprocmask(SIG_SETMASK, &rn->old_mask, NULL);
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0 && in != STDIN_FILENO) {
        dup2(in, STDIN_FILENO);
        close(in);
    }
    if (setenv("WEFT_THREADS", value, 1) != 0 || dup2(rn->log_fd, STDOUT_FILENO) < 0 ||
        dup2(rn->log_fd, STDERR_FILENO) < 0)
        _exit(127);
    execvp(rn->argv[0], rn->argv);
    dprintf(STDERR_FILENO, "weft-scale: cannot run %s: %s\n", rn->argv[0], strerror(errno));
    _exit(127);
}

/* Waits for pid, killing it after the timeout if there is one; false when it was killed. SIGCHLD
 * is blocked, so sigtimedwait wakes as soon as the child ends. */
static bool wait_child(const runner *rn, pid_t pid, int *status)
{
    if (rn->timeout_s <= 0) {
        while (waitpid(pid, status, 0) < 0) {
            if (errno != EINTR)
                return false;
        }
        return true;
    }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    double deadline = now_ns() + rn->timeout_s * 1e9;
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid)
            return true;
        double left = deadline - now_ns();
        if (left <= 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return false;
        }
        struct timespec ts = {(time_t)(left / 1e9), (long)fmod(left, 1e9)};
        sigtimedwait(&chld, NULL, &ts);
    }
}

/* Reads what the last run wrote to the log since offset and finds the metric in it. */
static bool read_metric(runner *rn, off_t from, double *ns)
{
    off_t end = lseek(rn->log_fd, 0, SEEK_END);
    if (end < from) {
        snprintf(rn->why, sizeof(rn->why), "cannot read the log back");
        return false;
    }
    size_t len = (size_t)(end - from);
    char *buf = malloc(len + 1);
    if (buf == NULL) {
        snprintf(rn->why, sizeof(rn->why), "out of memory reading the log");
        return false;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(rn->log_fd, buf + got, len - got, from + (off_t)got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    const char *line = NULL;
    size_t line_len = 0;
    bool found = scale_find_metric(buf, rn->metric, rn->match, ns, &line, &line_len);
    if (found) {
        free(rn->metric_line);
        rn->metric_line = strndup(line, line_len);
    } else {
        snprintf(rn->why, sizeof(rn->why), "no %s=<number> in its output%s", rn->metric,
                 rn->match != NULL ? " on a line that matches --match" : "");
    }
    free(buf);
    return found;
}

/* One run at the given thread count; true with its time in *ns, false with rn->why set. */
static bool run_once(runner *rn, unsigned threads, unsigned round, unsigned rounds, double *ns)
{
    dprintf(rn->log_fd, "==> WEFT_THREADS=%u, run %u of %u\n", threads, round, rounds);
    off_t from = lseek(rn->log_fd, 0, SEEK_END);
    fflush(NULL);

    double t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(rn->why, sizeof(rn->why), "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0)
        child(rn, threads);
    int status = 0;
    bool finished = wait_child(rn, pid, &status);
    double t1 = now_ns();

    if (!finished) {
        snprintf(rn->why, sizeof(rn->why), "killed after the %g s timeout", rn->timeout_s);
        return false;
    }
    if (WIFSIGNALED(status)) {
        snprintf(rn->why, sizeof(rn->why), "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        return false;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        snprintf(rn->why, sizeof(rn->why), "exit status %d%s", code,
                 code == 127 ? " (could it be run? see the log)" : "");
        return false;
    }
    if (rn->metric != NULL)
        return read_metric(rn, from, ns);
    *ns = t1 - t0;
    return true;
}

/* The default title: the command with its program's directory left out. */
static char *command_title(char **argv)
{
    size_t len = 1;
    for (size_t i = 0; argv[i] != NULL; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    const char *prog = strrchr(argv[0], '/');
    strcpy(s, prog != NULL && prog[1] != '\0' ? prog + 1 : argv[0]);
    for (size_t i = 1; argv[i] != NULL; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

static char *with_suffix(const char *prefix, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s%s", prefix, suffix);
    return s;
}

static int cmp_point(const void *a, const void *b)
{
    unsigned x = ((const scale_point *)a)->threads, y = ((const scale_point *)b)->threads;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"metric", required_argument, NULL, 'm'},
        {"match", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned max_threads = 0, runs = 5;
    const char *list = NULL, *prefix = "weft-scale", *log_path = NULL, *title = NULL;
    const char *metric = NULL, *match = NULL;
    double timeout_s = 0;
    bool quiet = false;
    int opt;
    /* "+": options end at the command, whose own options are its own. */
    while ((opt = getopt_long(argc, argv, "+n:T:r:m:M:o:l:t:k:qh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            max_threads = (unsigned)parse_ulong(optarg, "-n: '%s' is not a count in 1..1024", 1,
                                                WEFT_MAX_THREADS);
            break;
        case 'T':
            list = optarg;
            break;
        case 'r':
            runs = (unsigned)parse_ulong(optarg, "-r: '%s' is not a count in 1..100000", 1, 100000);
            break;
        case 'm':
            metric = optarg;
            if (metric[0] == '\0' || strchr(metric, '=') != NULL)
                usage_error("--metric: '%s' is not a key name", metric);
            break;
        case 'M':
            match = optarg;
            break;
        case 'o':
            prefix = optarg;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 't':
            title = optarg;
            break;
        case 'k': {
            char *end;
            timeout_s = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(timeout_s > 0))
                usage_error("-k: '%s' is not a number of seconds", optarg);
            break;
        }
        case 'q':
            quiet = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs("(weft-scale -h for help)\n", stderr);
            return 2;
        }
    }
    if (optind >= argc)
        usage_error("%s", "no command to run");
    if (match != NULL && metric == NULL)
        usage_error("%s", "--match needs --metric");

    weft_machine_info info;
    if (weft_machine_query(&info) != 0) {
        fputs("weft-scale: weft_machine_query failed\n", stderr);
        return 1;
    }

    regex_t re;
    if (match != NULL) {
        int rc = regcomp(&re, match, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &re, msg, sizeof(msg));
            fprintf(stderr, "weft-scale: --match '%s': %s\n", match, msg);
            return 2;
        }
    }

    /* The thread counts, in the order they run within a round; 1 (the baseline) first. */
    unsigned *counts = calloc(WEFT_MAX_THREADS + 1, sizeof(*counts));
    if (counts == NULL) {
        fputs("weft-scale: out of memory\n", stderr);
        return 1;
    }
    size_t ncounts = 0;
    if (list != NULL) {
        int n = scale_parse_threads(list, counts + 1, WEFT_MAX_THREADS, WEFT_MAX_THREADS);
        if (n < 0)
            usage_error("-T: '%s' is not a list of distinct thread counts in 1..1024", list);
        ncounts = (size_t)n;
        bool has_one = false;
        for (size_t i = 1; i <= ncounts; i++)
            has_one = has_one || counts[i] == 1;
        if (has_one) {
            memmove(counts, counts + 1, ncounts * sizeof(*counts));
        } else {
            counts[0] = 1;
            ncounts++;
            if (!quiet)
                fputs("weft-scale: 1 thread added to the list: speedups are relative to it\n",
                      stderr);
        }
    } else {
        unsigned n = max_threads != 0 ? max_threads : 2 * info.default_threads;
        if (n > WEFT_MAX_THREADS)
            n = WEFT_MAX_THREADS;
        for (unsigned p = 1; p <= n; p++)
            counts[ncounts++] = p;
    }

    char *csv = with_suffix(prefix, ".csv"), *json = with_suffix(prefix, ".json");
    char *svg = with_suffix(prefix, ".svg"), *log_default = with_suffix(prefix, ".log");
    char *title_default = command_title(argv + optind);
    scale_point *points = calloc(ncounts, sizeof(*points));
    double *samples = calloc(ncounts * runs, sizeof(*samples));
    char **why = calloc(ncounts, sizeof(*why));
    int status = 0;
    runner rn = {.argv = argv + optind,
                 .log_fd = -1,
                 .metric = metric,
                 .match = match != NULL ? &re : NULL,
                 .timeout_s = timeout_s};
    if (csv == NULL || json == NULL || svg == NULL || log_default == NULL ||
        title_default == NULL || points == NULL || samples == NULL || why == NULL) {
        fputs("weft-scale: out of memory\n", stderr);
        status = 1;
        goto out;
    }
    if (log_path == NULL)
        log_path = log_default;
    if (title == NULL)
        title = title_default;

    rn.log_fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (rn.log_fd < 0) {
        fprintf(stderr, "weft-scale: cannot open %s: %s\n", log_path, strerror(errno));
        status = 1;
        goto out;
    }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &rn.old_mask);

    for (size_t i = 0; i < ncounts; i++) {
        points[i].threads = counts[i];
        points[i].samples = samples + i * runs;
    }
    if (!quiet)
        fprintf(stderr, "weft-scale: %s: %zu thread count%s x %u run%s, output in %s\n", title,
                ncounts, ncounts == 1 ? "" : "s", runs, runs == 1 ? "" : "s", log_path);
    size_t failures = 0;
    for (unsigned round = 1; round <= runs; round++) {
        if (!quiet)
            fprintf(stderr, "  run %u/%u, ms at each count:", round, runs);
        for (size_t i = 0; i < ncounts; i++) {
            scale_point *pt = &points[i];
            if (why[i] != NULL)
                continue; /* failed before: not run again */
            double ns;
            if (run_once(&rn, pt->threads, round, runs, &ns)) {
                pt->samples[pt->nsamples++] = ns;
                if (!quiet)
                    fprintf(stderr, " %u:%.1f", pt->threads, ns / 1e6);
            } else {
                why[i] = strdup(rn.why);
                failures++;
                if (!quiet)
                    fprintf(stderr, " %u:FAILED", pt->threads);
            }
            if (!quiet)
                fflush(stderr);
        }
        if (!quiet)
            fputc('\n', stderr);
    }
    close(rn.log_fd);

    if (failures > 0) {
        for (size_t i = 0; i < ncounts; i++) {
            if (why[i] != NULL)
                fprintf(stderr, "weft-scale: %s failed with WEFT_THREADS=%u: %s\n", title,
                        points[i].threads, why[i]);
        }
        fprintf(stderr, "weft-scale: %zu of %zu thread counts failed; the output is in %s\n",
                failures, ncounts, log_path);
        status = 1;
    } else {
        qsort(points, ncounts, sizeof(*points), cmp_point);
        scale_result res = {.argv = argv + optind,
                            .title = title,
                            .metric = metric,
                            .match = match,
                            .metric_line = rn.metric_line,
                            .version = weft_version(),
                            .runs = runs,
                            .cores = info.default_threads,
                            .npoints = ncounts,
                            .points = points};
        scale_compute(&res);
        scale_print_table(&res, stdout);
        const char *paths[] = {csv, json, svg};
        int (*const writers[])(const scale_result *,
                               const char *) = {scale_write_csv, scale_write_json, scale_write_svg};
        for (size_t i = 0; i < 3; i++) {
            int rc = writers[i](&res, paths[i]);
            if (rc != 0) {
                fprintf(stderr, "weft-scale: cannot write %s: %s\n", paths[i], strerror(-rc));
                status = 1;
            }
        }
        if (status == 0)
            printf("wrote %s, %s, %s (the command's output: %s)\n", csv, json, svg, log_path);
    }

out:
    for (size_t i = 0; why != NULL && i < ncounts; i++)
        free(why[i]);
    free(why);
    free(samples);
    free(points);
    free(counts);
    free(rn.metric_line);
    free(csv);
    free(json);
    free(svg);
    free(log_default);
    free(title_default);
    if (match != NULL)
        regfree(&re);
    return status;
}
