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
 * benchmarks that time their own repetitions and leave setup out), on the lines --match lets
 * through; the serial baseline the program prints (--baseline) gives the speedup against serial
 * code beside the one against 1 thread. The command's stdout and stderr go to a log file. The
 * medians give a table of speedup T1/Tp, efficiency S/p and the Karp-Flatt serial fraction
 * (scale_math.h), written as PREFIX.csv, PREFIX.json and an SVG plot, PREFIX.svg.
 *
 * The command runs with WEFT_DISPLAY_ENV=1: every pool it makes prints its size, so a program
 * that sets its own thread count is caught (scale_diagnose). --mpi runs it under mpirun for
 * ranks x threads; --workspan runs it once more with WEFT_WORKSPAN and sets the measured
 * speedups beside the work-span bounds. A progress line with the time left goes to stderr
 * when it is a terminal.
 *
 * Exits with 1, naming the thread counts, when the command fails (non-zero exit, signal,
 * timeout, no metric in its output, lines of two different rows with the metric) at any count,
 * and then writes no file but the log.
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
    "  -M, --match FILTER  with --metric, only lines that pass FILTER count: key=value words\n"
    "                  the line must hold as whole words ('impl=weft variant=default'), or an\n"
    "                  extended regex; lines of two different rows passing is an error\n"
    "  -B, --baseline FILTER  with --metric, the lines of the serial baseline (the same KEY),\n"
    "                  for the speedup against serial code beside the one against 1 thread;\n"
    "                  default: the --match words with impl=serial for impl=...; 'none': off\n"
    "      --mpi LIST  also run under 'mpirun --oversubscribe -np R' for each rank count R of\n"
    "                  LIST (e.g. 1,2,4): ranks x threads, speedup against 1 x 1\n"
    "      --workspan[=P]  run once more at WEFT_THREADS=P (default: the most threads measured\n"
    "                  within the cores) with WEFT_WORKSPAN set, and plot the work-span bound\n"
    "                  min(P, parallelism) and the burdened estimate for 1 to 256 threads\n"
    "  -o PREFIX       write PREFIX.csv, PREFIX.json, PREFIX.svg (default weft-scale)\n"
    "  -l LOG          the command's output (default PREFIX.log)\n"
    "  -t TITLE        title of the table and the plot (default: the command)\n"
    "  -k SECONDS      kill a run that takes longer; it counts as a failure (default: none)\n"
    "  -q              no per-round lines on stderr\n"
    "      --progress  a progress line with the time left on stderr, even when stderr is not\n"
    "                  a terminal (then one line per run); default: only on a terminal\n"
    "      --no-progress  no progress line\n"
    "  -h, --help      this text\n"
    "The command runs with WEFT_DISPLAY_ENV=1, so that weft-scale sees the size of every pool\n"
    "it creates: a program that sets its own thread count gets a warning.\n"
    "Exit status: 0; 1 when the command fails at some thread count (each is named), a file\n"
    "cannot be written or --workspan gets no figures; 2 for a usage error.\n";

/* What one run is asked and what it gave. */
typedef struct runner {
    char **argv;     /* the command */
    char **mpi_argv; /* mpirun --oversubscribe -np R COMMAND..., R filled in per run */
    int log_fd;
    const char *metric;
    const scale_filter *match;
    const scale_filter *baseline;
    bool baseline_required; /* given with -B: a run without it fails */
    double timeout_s;
    sigset_t old_mask;    /* restored in the child before exec */
    char *metric_line;    /* the line of the last value read */
    const char *workspan; /* WEFT_WORKSPAN for this run, or NULL */
    char why[512];        /* what went wrong with the last run */
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

/* In the child: the environment, stdin from /dev/null, stdout and stderr to the log, then exec
 * the command, under mpirun when ranks > 0. */
static void child(const runner *rn, unsigned ranks, unsigned threads)
{
    char value[16], np[16];
    snprintf(value, sizeof(value), "%u", threads);
    sigprocmask(SIG_SETMASK, &rn->old_mask, NULL);
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0 && in != STDIN_FILENO) {
        dup2(in, STDIN_FILENO);
        close(in);
    }
    /* WEFT_DISPLAY_ENV: every pool prints its size, which tells whether WEFT_THREADS took. */
    if (setenv("WEFT_THREADS", value, 1) != 0 || setenv("WEFT_DISPLAY_ENV", "1", 1) != 0 ||
        (rn->workspan != NULL && setenv("WEFT_WORKSPAN", rn->workspan, 1) != 0) ||
        dup2(rn->log_fd, STDOUT_FILENO) < 0 || dup2(rn->log_fd, STDERR_FILENO) < 0)
        _exit(127);
    char **argv = rn->argv;
    if (ranks > 0) {
        /* Open MPI refuses to run as root without both of these. */
        if (geteuid() == 0) {
            setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
            setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
        }
        snprintf(np, sizeof(np), "%u", ranks);
        rn->mpi_argv[3] = np;
        argv = rn->mpi_argv;
    }
    execvp(argv[0], argv);
    dprintf(STDERR_FILENO, "weft-scale: cannot run %s: %s\n", argv[0], strerror(errno));
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

/* What the last run wrote to the log since offset, NUL-terminated, or NULL. */
static char *read_log(runner *rn, off_t from)
{
    off_t end = lseek(rn->log_fd, 0, SEEK_END);
    if (end < from) {
        snprintf(rn->why, sizeof(rn->why), "cannot read the log back");
        return NULL;
    }
    size_t len = (size_t)(end - from);
    char *buf = malloc(len + 1);
    if (buf == NULL) {
        snprintf(rn->why, sizeof(rn->why), "out of memory reading the log");
        return NULL;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(rn->log_fd, buf + got, len - got, from + (off_t)got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return buf;
}

/* Reads what a run printed: the pools it made, the metric and its row, the serial baseline.
 * False with rn->why set when the metric is missing or ambiguous. */
static bool inspect(runner *rn, char *out, scale_point *pt, double *ns)
{
    scale_pools pools;
    scale_display_pools(out, pt->threads, &pools);
    if (pools.pools > 0) {
        pt->runs_with_pools++;
        pt->runs_matched += pools.matched > 0;
        pt->from_config = pt->from_config || pools.from_config;
        if (pools.max_workers > pt->max_workers)
            pt->max_workers = pools.max_workers;
    }
    if (rn->metric == NULL)
        return true;
    scale_found m;
    scale_scan(out, rn->metric, rn->match, (size_t)-1, &m);
    if (!m.found) {
        snprintf(rn->why, sizeof(rn->why), "no %s=<number> in its output%s", rn->metric,
                 rn->match != NULL ? " on a line that passes --match" : "");
        return false;
    }
    if (m.ambiguous) {
        snprintf(rn->why, sizeof(rn->why),
                 "lines of two different rows have %s=: '%.200s' and '%.200s'; give --match the "
                 "key=value words of the one to time",
                 rn->metric, m.other, m.row);
        return false;
    }
    *ns = m.value;
    free(rn->metric_line);
    rn->metric_line = strndup(m.line, m.line_len);
    pt->reported = scale_line_count(m.line, m.line_len, "threads");
    if (rn->baseline != NULL) {
        scale_found b;
        scale_scan(out, rn->metric, rn->baseline, m.offset, &b);
        if (b.found && !b.ambiguous) {
            pt->serial[pt->nserial++] = b.value;
        } else if (rn->baseline_required) {
            snprintf(rn->why, sizeof(rn->why), "%s",
                     b.found ? "lines of two different rows pass --baseline"
                             : "no line passes --baseline");
            return false;
        }
    }
    return true;
}

/* One run; true with its time in *ns, false with rn->why set. ranks 0: without mpirun. */
static bool run_once(runner *rn, scale_point *pt, unsigned ranks, unsigned round, unsigned rounds,
                     double *ns)
{
    if (ranks > 0)
        dprintf(rn->log_fd, "==> %u rank%s, WEFT_THREADS=%u, run %u of %u\n", ranks,
                ranks == 1 ? "" : "s", pt->threads, round, rounds);
    else
        dprintf(rn->log_fd, "==> WEFT_THREADS=%u, run %u of %u\n", pt->threads, round, rounds);
    off_t from = lseek(rn->log_fd, 0, SEEK_END);
    fflush(NULL);

    double t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(rn->why, sizeof(rn->why), "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0)
        child(rn, ranks, pt->threads);
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
    char *out = read_log(rn, from);
    if (out == NULL)
        return false;
    *ns = t1 - t0;
    bool ok = inspect(rn, out, pt, ns);
    free(out);
    return ok;
}

/* --- progress --- */

typedef struct progress {
    bool on;      /* show it */
    bool tty;     /* redraw one line in place; else a line per run */
    size_t total; /* runs planned */
    size_t done;
    double start;  /* ns */
    double *spent; /* per configuration: time its runs took so far */
    unsigned *ran; /* and how many ran */
    size_t ncells;
    unsigned rounds;
} progress;

static void put_duration(FILE *fp, double s)
{
    if (s >= 3600)
        fprintf(fp, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        fprintf(fp, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        fprintf(fp, "%.0fs", s);
}

/* The time the runs still to come should take: each configuration's own mean so far, or the
 * mean of all runs for one not yet run. Runs at one count cost alike; counts differ a lot. */
static double progress_left(const progress *pg, unsigned round, size_t cell)
{
    double all = 0;
    unsigned n = 0;
    for (size_t i = 0; i < pg->ncells; i++) {
        all += pg->spent[i];
        n += pg->ran[i];
    }
    double mean = n > 0 ? all / n : 0, left = 0;
    for (size_t i = 0; i < pg->ncells; i++) {
        /* Runs of configuration i still to come: this round's, if i comes after cell, and one
         * per later round. */
        unsigned todo = pg->rounds - round + (i > cell ? 1 : 0);
        left += todo * (pg->ran[i] > 0 ? pg->spent[i] / pg->ran[i] : mean);
    }
    return left / 1e9;
}

static void progress_show(progress *pg, unsigned round, size_t cell, const char *what)
{
    if (!pg->on)
        return;
    double elapsed = (now_ns() - pg->start) / 1e9;
    fprintf(stderr, "%sweft-scale: %zu/%zu runs (%s), ", pg->tty ? "\r\033[K" : "", pg->done,
            pg->total, what);
    put_duration(stderr, elapsed);
    fputs(" elapsed", stderr);
    if (pg->done > 0 && pg->done < pg->total) {
        fputs(", about ", stderr);
        put_duration(stderr, progress_left(pg, round, cell));
        fputs(" left", stderr);
    }
    fputs(pg->tty ? "" : "\n", stderr);
    fflush(stderr);
}

/* Clears the line in place, so that other messages print over it. */
static void progress_clear(const progress *pg)
{
    if (pg->on && pg->tty) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
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
    const scale_point *x = a, *y = b;
    if (x->ranks != y->ranks)
        return (x->ranks > y->ranks) - (x->ranks < y->ranks);
    return (x->threads > y->threads) - (x->threads < y->threads);
}

/* A list of counts as -T and --mpi take it, with 1 added first if missing (the baseline).
 * Returns the number, or exits with a usage error. */
static size_t count_list(const char *list, const char *opt, unsigned *out, bool quiet)
{
    int n = scale_parse_threads(list, out + 1, WEFT_MAX_THREADS, WEFT_MAX_THREADS);
    if (n < 0) {
        fprintf(stderr, "weft-scale: %s: '%s' is not a list of distinct counts in 1..%u\n", opt,
                list, WEFT_MAX_THREADS);
        fputs("(weft-scale -h for help)\n", stderr);
        exit(2);
    }
    size_t count = (size_t)n;
    bool has_one = false;
    for (size_t i = 1; i <= count; i++)
        has_one = has_one || out[i] == 1;
    if (has_one) {
        memmove(out, out + 1, count * sizeof(*out));
        return count;
    }
    out[0] = 1;
    if (!quiet)
        fprintf(stderr, "weft-scale: 1 added to the %s list: speedups are relative to it\n", opt);
    return count + 1;
}

/* Runs the command once more with WEFT_WORKSPAN=<a temporary file> and reads the work and span
 * it wrote. False with a message on stderr when it could not. */
static bool measure_workspan(runner *rn, unsigned ranks, unsigned threads, scale_workspan *ws)
{
    const char *dir = getenv("TMPDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/weft-scale-workspan-XXXXXX",
             dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "weft-scale: --workspan: cannot make a temporary file: %s\n",
                strerror(errno));
        return false;
    }
    close(fd);
    unlink(path); /* the program creates it: an empty file would read as a failed write */
    scale_point pt = {.ranks = ranks != 0 ? ranks : 1, .threads = threads, .reported = -1};
    double serial[1];
    pt.serial = serial;
    rn->workspan = path;
    const scale_filter *required = rn->baseline;
    rn->baseline = NULL;
    double ns;
    bool ok = run_once(rn, &pt, ranks, 1, 1, &ns);
    rn->workspan = NULL;
    rn->baseline = required;
    if (!ok) {
        fprintf(stderr, "weft-scale: --workspan: the run with WEFT_WORKSPAN failed: %s\n", rn->why);
        unlink(path);
        return false;
    }
    char text[8192] = "";
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof(text) - 1);
        text[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    unlink(path);
    if (fd < 0 || !scale_parse_workspan(text, ws)) {
        fprintf(stderr,
                "weft-scale: --workspan: the program wrote %s to WEFT_WORKSPAN (work_ns, "
                "span_ns, burdened_span_ns expected): is its weft built with work-span "
                "measurement?\n",
                fd < 0 ? "nothing" : "no work-span figures");
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    enum { OPT_MPI = 256, OPT_WORKSPAN, OPT_PROGRESS, OPT_NO_PROGRESS };
    static const struct option longopts[] = {
        {"metric", required_argument, NULL, 'm'},
        {"match", required_argument, NULL, 'M'},
        {"baseline", required_argument, NULL, 'B'},
        {"mpi", required_argument, NULL, OPT_MPI},
        {"workspan", optional_argument, NULL, OPT_WORKSPAN},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned max_threads = 0, runs = 5, ws_threads = 0;
    const char *list = NULL, *prefix = "weft-scale", *log_path = NULL, *title = NULL;
    const char *metric = NULL, *match = NULL, *baseline = NULL, *mpi_list = NULL;
    double timeout_s = 0;
    bool quiet = false, workspan = false;
    int progress_opt = -1; /* -1: on a terminal */
    int opt;
    /* "+": options end at the command, whose own options are its own. */
    while ((opt = getopt_long(argc, argv, "+n:T:r:m:M:B:o:l:t:k:qh", longopts, NULL)) != -1) {
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
        case 'B':
            baseline = optarg;
            break;
        case OPT_MPI:
            mpi_list = optarg;
            break;
        case OPT_WORKSPAN:
            workspan = true;
            if (optarg != NULL)
                ws_threads = (unsigned)parse_ulong(
                    optarg, "--workspan: '%s' is not a thread count in 1..1024", 1,
                    WEFT_MAX_THREADS);
            break;
        case OPT_PROGRESS:
            progress_opt = 1;
            break;
        case OPT_NO_PROGRESS:
            progress_opt = 0;
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
    if (baseline != NULL && metric == NULL)
        usage_error("%s", "--baseline needs --metric");

    weft_machine_info info;
    if (weft_machine_query(&info) != 0) {
        fputs("weft-scale: weft_machine_query failed\n", stderr);
        return 1;
    }

    char err[256];
    scale_filter match_f, base_f;
    bool have_match = false, have_base = false, base_required = false;
    char *base_auto = NULL;
    if (match != NULL) {
        if (scale_filter_init(&match_f, match, err, sizeof(err)) != 0) {
            fprintf(stderr, "weft-scale: --match '%s': %s\n", match, err);
            return 2;
        }
        have_match = true;
    }
    if (baseline == NULL && have_match)
        baseline = base_auto = scale_serial_filter(&match_f);
    else if (baseline != NULL && strcmp(baseline, "none") != 0)
        base_required = true;
    else
        baseline = NULL;
    if (baseline != NULL) {
        if (scale_filter_init(&base_f, baseline, err, sizeof(err)) != 0) {
            fprintf(stderr, "weft-scale: --baseline '%s': %s\n", baseline, err);
            return 2;
        }
        have_base = true;
    }

    /* The thread counts, in the order they run within a round; 1 (the baseline) first. */
    unsigned *counts = calloc(WEFT_MAX_THREADS + 1, sizeof(*counts));
    unsigned *ranks = calloc(WEFT_MAX_THREADS + 1, sizeof(*ranks));
    if (counts == NULL || ranks == NULL) {
        fputs("weft-scale: out of memory\n", stderr);
        return 1;
    }
    size_t ncounts = 0, nranks = 1;
    if (list != NULL) {
        ncounts = count_list(list, "-T", counts, quiet);
    } else {
        unsigned n = max_threads != 0 ? max_threads : 2 * info.default_threads;
        if (n > WEFT_MAX_THREADS)
            n = WEFT_MAX_THREADS;
        for (unsigned p = 1; p <= n; p++)
            counts[ncounts++] = p;
    }
    ranks[0] = 0; /* without mpirun */
    if (mpi_list != NULL)
        nranks = count_list(mpi_list, "--mpi", ranks, quiet);
    size_t ncells = ncounts * nranks;

    char *csv = with_suffix(prefix, ".csv"), *json = with_suffix(prefix, ".json");
    char *svg = with_suffix(prefix, ".svg"), *log_default = with_suffix(prefix, ".log");
    char *title_default = command_title(argv + optind);
    scale_point *points = calloc(ncells, sizeof(*points));
    double *samples = calloc(ncells * runs, sizeof(*samples));
    double *serials = calloc(ncells * runs, sizeof(*serials));
    char **why = calloc(ncells, sizeof(*why));
    size_t nargs = (size_t)(argc - optind);
    char **mpi_argv = calloc(nargs + 5, sizeof(*mpi_argv));
    double *spent = calloc(ncells, sizeof(*spent));
    unsigned *ran = calloc(ncells, sizeof(*ran));
    int status = 0;
    runner rn = {.argv = argv + optind,
                 .mpi_argv = mpi_argv,
                 .log_fd = -1,
                 .metric = metric,
                 .match = have_match ? &match_f : NULL,
                 .baseline = have_base ? &base_f : NULL,
                 .baseline_required = base_required,
                 .timeout_s = timeout_s};
    scale_result res = {.argv = argv + optind, .title = NULL};
    if (csv == NULL || json == NULL || svg == NULL || log_default == NULL ||
        title_default == NULL || points == NULL || samples == NULL || serials == NULL ||
        why == NULL || mpi_argv == NULL || spent == NULL || ran == NULL) {
        fputs("weft-scale: out of memory\n", stderr);
        status = 1;
        goto out;
    }
    mpi_argv[0] = "mpirun";
    mpi_argv[1] = "--oversubscribe";
    mpi_argv[2] = "-np";
    for (size_t i = 0; i < nargs; i++)
        mpi_argv[4 + i] = argv[optind + (int)i];
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

    for (size_t r = 0; r < nranks; r++) {
        for (size_t i = 0; i < ncounts; i++) {
            scale_point *pt = &points[r * ncounts + i];
            pt->ranks = ranks[r] != 0 ? ranks[r] : 1;
            pt->threads = counts[i];
            pt->samples = samples + (r * ncounts + i) * runs;
            pt->serial = serials + (r * ncounts + i) * runs;
            pt->reported = -1;
        }
    }
    progress pg = {.on = progress_opt == 1 || (progress_opt == -1 && isatty(STDERR_FILENO)),
                   .tty = isatty(STDERR_FILENO),
                   .total = ncells * runs,
                   .start = now_ns(),
                   .spent = spent,
                   .ran = ran,
                   .ncells = ncells,
                   .rounds = runs};
    if (!quiet)
        fprintf(stderr, "weft-scale: %s: %zu %s x %u run%s, output in %s\n", title, ncells,
                mpi_list != NULL ? "configurations (ranks x threads)" : "thread counts", runs,
                runs == 1 ? "" : "s", log_path);
    size_t failures = 0;
    char line[2048];
    for (unsigned round = 1; round <= runs; round++) {
        size_t k =
            (size_t)snprintf(line, sizeof(line), "  run %u/%u, ms at each count:", round, runs);
        for (size_t i = 0; i < ncells; i++) {
            scale_point *pt = &points[i];
            unsigned nr = ranks[i / ncounts];
            if (why[i] != NULL)
                continue; /* failed before: not run again */
            char what[64];
            if (nr > 0)
                snprintf(what, sizeof(what), "%u rank%s x %u thread%s, run %u/%u", nr,
                         nr == 1 ? "" : "s", pt->threads, pt->threads == 1 ? "" : "s", round, runs);
            else
                snprintf(what, sizeof(what), "%u thread%s, run %u/%u", pt->threads,
                         pt->threads == 1 ? "" : "s", round, runs);
            progress_show(&pg, round, i, what);
            double ns, t0 = now_ns();
            bool ok = run_once(&rn, pt, nr, round, runs, &ns);
            spent[i] += now_ns() - t0;
            ran[i]++;
            pg.done++;
            if (ok) {
                pt->samples[pt->nsamples++] = ns;
                if (k < sizeof(line) - 32)
                    k += (size_t)(nr > 0 ? snprintf(line + k, sizeof(line) - k, " %ux%u:%.1f", nr,
                                                    pt->threads, ns / 1e6)
                                         : snprintf(line + k, sizeof(line) - k, " %u:%.1f",
                                                    pt->threads, ns / 1e6));
            } else {
                why[i] = strdup(rn.why);
                failures++;
                if (k < sizeof(line) - 32)
                    k += (size_t)snprintf(line + k, sizeof(line) - k, " %u:FAILED", pt->threads);
                pg.total -= runs - round; /* not run again */
            }
        }
        if (!quiet) {
            progress_clear(&pg);
            fprintf(stderr, "%s\n", line);
        }
    }
    progress_clear(&pg);
    if (pg.on && !pg.tty)
        fprintf(stderr, "weft-scale: %zu runs in %.0f s\n", pg.done, (now_ns() - pg.start) / 1e9);

    qsort(points, ncells, sizeof(*points), cmp_point);
    res = (scale_result){.argv = argv + optind,
                         .title = title,
                         .metric = metric,
                         .match = match,
                         .baseline = have_base ? baseline : NULL,
                         .version = weft_version(),
                         .runs = runs,
                         .cores = info.default_threads,
                         .mpi = mpi_list != NULL,
                         .npoints = ncells,
                         .points = points};
    if (failures > 0) {
        for (size_t i = 0; i < ncells; i++) {
            if (why[i] == NULL)
                continue;
            if (mpi_list != NULL)
                fprintf(stderr, "weft-scale: %s failed with %u rank%s, WEFT_THREADS=%u: %s\n",
                        title, ranks[i / ncounts], ranks[i / ncounts] == 1 ? "" : "s",
                        counts[i % ncounts], why[i]);
            else
                fprintf(stderr, "weft-scale: %s failed with WEFT_THREADS=%u: %s\n", title,
                        counts[i % ncounts], why[i]);
        }
        fprintf(stderr, "weft-scale: %zu of %zu %s failed; the output is in %s\n", failures, ncells,
                mpi_list != NULL ? "configurations" : "thread counts", log_path);
        status = 1;
        goto out;
    }
    if (workspan) {
        /* Default: the most threads measured within the usable cores. */
        if (ws_threads == 0) {
            ws_threads = 1;
            for (size_t i = 0; i < ncounts; i++) {
                if (counts[i] > ws_threads && counts[i] <= info.default_threads)
                    ws_threads = counts[i];
            }
        }
        if (!quiet)
            fprintf(stderr, "weft-scale: one more run with WEFT_WORKSPAN, at WEFT_THREADS=%u\n",
                    ws_threads);
        res.ws_threads = ws_threads;
        res.have_ws = measure_workspan(&rn, mpi_list != NULL ? 1 : 0, ws_threads, &res.ws);
        if (!res.have_ws)
            status = 1;
    }
    res.metric_line = rn.metric_line; /* the extra run may have replaced it */
    scale_compute(&res);
    scale_diagnose(&res);
    scale_print_table(&res, stdout);
    for (size_t i = 0; i < res.nwarnings; i++)
        fprintf(stderr, "weft-scale: warning: %s\n", res.warnings[i]);
    const char *paths[] = {csv, json, svg};
    int (*const writers[])(const scale_result *, const char *) = {scale_write_csv, scale_write_json,
                                                                  scale_write_svg};
    bool written = true;
    for (size_t i = 0; i < 3; i++) {
        int rc = writers[i](&res, paths[i]);
        if (rc != 0) {
            fprintf(stderr, "weft-scale: cannot write %s: %s\n", paths[i], strerror(-rc));
            status = 1;
            written = false;
        }
    }
    if (written)
        printf("wrote %s, %s, %s (the command's output: %s)\n", csv, json, svg, log_path);

out:
    if (rn.log_fd >= 0)
        close(rn.log_fd);
    scale_free_warnings(&res);
    for (size_t i = 0; why != NULL && i < ncells; i++)
        free(why[i]);
    free(why);
    free(samples);
    free(serials);
    free(points);
    free(counts);
    free(ranks);
    free(mpi_argv);
    free(spent);
    free(ran);
    free(rn.metric_line);
    free(csv);
    free(json);
    free(svg);
    free(log_default);
    free(title_default);
    free(base_auto);
    if (have_match)
        scale_filter_free(&match_f);
    if (have_base)
        scale_filter_free(&base_f);
    return status;
}
