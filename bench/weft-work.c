/* SPDX-License-Identifier: MIT */
/*
 * weft-work: a fixed, deterministic amount of CPU work spread over a weft pool, for weft-scale's
 * tests and for the trace of the scaling profile (bench/run_all.sh -s).
 *
 * Usage: weft-work [-m reduce|tree] [-n ITEMS] [-k STEPS] [-g GRAIN] [-s STATS.json]
 *
 * Item i costs STEPS rounds of splitmix64 from the seed i; the items' final states are summed
 * on a pool of the default size (so WEFT_THREADS sets it), by weft_parallel_reduce (-m reduce,
 * the default: a loop split lazily, about once per worker) or by a tree of weft_join calls
 * halving the range down to GRAIN items (-m tree: many forks, and steals a trace shows). The
 * serial sum is computed first (serial_ns) and the parallel one must equal it. Prints one line
 *
 *   work=reduce items=N steps=K threads=T checksum=0x... serial_ns=... work_ns=...
 *
 * where work_ns is the wall time of the parallel sum alone. -s writes the pool's
 * statistics as JSON (weft_stats_write_json) after the work. Exit status 1 if anything fails,
 * 2 for a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "weft.h"

typedef struct work {
    uint64_t steps;
} work;

static uint64_t item(uint64_t i, uint64_t steps)
{
    uint64_t x = i;
    for (uint64_t s = 0; s < steps; s++) {
        x += 0x9E3779B97F4A7C15u;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
        x ^= z ^ (z >> 31);
    }
    return x;
}

static void body(size_t lo, size_t hi, void *acc, void *ctx)
{
    const work *w = ctx;
    uint64_t sum = 0;
    for (size_t i = lo; i < hi; i++)
        sum += item(i, w->steps);
    *(uint64_t *)acc += sum;
}

static void combine(void *acc, const void *other, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc += *(const uint64_t *)other;
}

/* A range of the tree: its two halves are joined, each summed the same way. */
typedef struct range {
    size_t lo, hi, grain;
    const work *w;
    uint64_t sum;
} range;

static void tree(void *arg)
{
    range *r = arg;
    if (r->hi - r->lo <= r->grain) {
        r->sum = 0;
        body(r->lo, r->hi, &r->sum, (void *)r->w);
        return;
    }
    size_t mid = r->lo + (r->hi - r->lo) / 2;
    range left = {r->lo, mid, r->grain, r->w, 0}, right = {mid, r->hi, r->grain, r->w, 0};
    weft_join(tree, &left, tree, &right);
    r->sum = left.sum + right.sum;
}

/* The root of the tree, as a task: weft_join forks only on a worker. */
static int tree_task(void *arg, void **result)
{
    (void)result;
    tree(arg);
    return 0;
}

static int tree_sum(weft_pool *pool, range *root)
{
    weft_future *f;
    int rc = weft_submit(pool, tree_task, root, &f);
    if (rc != 0)
        return rc;
    rc = weft_future_result(f, NULL);
    weft_future_release(f);
    return rc;
}

static unsigned long long number(const char *s, char opt, unsigned long long max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
        fprintf(stderr, "weft-work: -%c: '%s' is not a number up to %llu\n", opt, s, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    size_t items = (size_t)1 << 20, grain = 0;
    uint64_t steps = 64;
    const char *stats_path = NULL, *mode = "reduce";
    int opt;
    while ((opt = getopt(argc, argv, "m:n:k:g:s:h")) != -1) {
        switch (opt) {
        case 'm':
            mode = optarg;
            if (strcmp(mode, "reduce") != 0 && strcmp(mode, "tree") != 0) {
                fprintf(stderr, "weft-work: -m: '%s' is neither reduce nor tree\n", mode);
                return 2;
            }
            break;
        case 'n':
            items = (size_t)number(optarg, 'n', (size_t)1 << 40);
            break;
        case 'k':
            steps = number(optarg, 'k', 1u << 20);
            break;
        case 'g':
            grain = (size_t)number(optarg, 'g', (size_t)1 << 40);
            break;
        case 's':
            stats_path = optarg;
            break;
        case 'h':
            printf("usage: weft-work [-m reduce|tree] [-n ITEMS (1048576)] [-k STEPS (64)]\n"
                   "                 [-g GRAIN (0: reduce chooses, tree uses 1024)] "
                   "[-s STATS.json]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "weft-work: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    work w = {.steps = steps};
    uint64_t t0 = bench_now_ns();
    uint64_t expect = 0;
    for (size_t i = 0; i < items; i++)
        expect += item(i, steps);
    uint64_t serial_ns = bench_now_ns() - t0;

    weft_pool *pool;
    int rc = weft_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "weft-work: weft_pool_create: %s\n", weft_strerror(rc));
        return 1;
    }
    const uint64_t zero = 0;
    uint64_t sum = 0;
    t0 = bench_now_ns();
    if (strcmp(mode, "tree") == 0) {
        range root = {0, items, grain != 0 ? grain : 1024, &w, 0};
        rc = tree_sum(pool, &root);
        sum = root.sum;
    } else {
        rc = weft_parallel_reduce(pool, 0, items, grain, sizeof(sum), &zero, body, combine, &w,
                                  &sum);
    }
    uint64_t work_ns = bench_now_ns() - t0;
    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "weft-work: %s: %s\n", mode, weft_strerror(rc));
        status = 1;
    } else if (sum != expect) {
        fprintf(stderr, "weft-work: checksum 0x%016" PRIx64 ", serial 0x%016" PRIx64 "\n", sum,
                expect);
        status = 1;
    }
    if (status == 0)
        printf("work=%s items=%zu steps=%" PRIu64 " threads=%u checksum=0x%016" PRIx64
               " serial_ns=%" PRIu64 " work_ns=%" PRIu64 "\n",
               mode, items, steps, weft_pool_size(pool), sum, serial_ns, work_ns);
    if (stats_path != NULL) {
        int fd = open(stats_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        rc = fd < 0 ? -errno : weft_stats_write_json(pool, fd);
        if (fd >= 0 && close(fd) != 0 && rc == 0)
            rc = -errno;
        if (rc != 0) {
            fprintf(stderr, "weft-work: cannot write %s: %s\n", stats_path, strerror(-rc));
            status = 1;
        }
    }
    rc = weft_pool_destroy(pool);
    if (rc != 0) {
        fprintf(stderr, "weft-work: weft_pool_destroy: %s\n", weft_strerror(rc));
        status = 1;
    }
    return status;
}
