/* SPDX-License-Identifier: MIT */
/*
 * bench_promise: what a promise (weft_future_create, set_result) and a continuation
 * (weft_future_then) cost, each beside the submission it replaces and a plain function call.
 *
 * Every operation here turns a value x into x + 1 by calling bump() (a BENCH_KERNEL: one
 * out-of-line call), so every row returns the number of operations, checked against serial.
 *
 *   promise   N operations from the calling thread, outside any pool:
 *     serial          x = bump(x), a direct call
 *     weft (default)  weft_future_create, weft_future_set_result(bump(x)), weft_future_result,
 *                     weft_future_release: a promise completed and read by one thread. No pool
 *                     is involved; the row is the harness's 1-worker row (threads=1) so that
 *                     run_all.sh's "weft1/ser" column shows its cost over a direct call
 *     weft submit     weft_submit of a task calling bump, weft_future_result, weft_future_release,
 *                     on the 1-worker pool and on the N-worker pool: the round trip through a
 *                     worker that a promise replaces when the result comes from elsewhere
 *   chain     one chain of L continuations, run to completion on a pool:
 *     serial          x = bump(x), L times: the work of the links, without them
 *     weft (default)  inside a task (bench_weft_root): a head promise, L weft_future_then on it
 *                     one after the other (each link returns its predecessor's result + 1), the
 *                     head set, the tail's result taken (the task helps: it runs the links), on
 *                     the 1-worker and on the N-worker pool. Per link: the then call, the link's
 *                     run as a task, the completion that queues the next link, and the frees
 *     weft submit     inside a task: L times weft_submit of bump's task, weft_future_result,
 *                     weft_future_release (the task goes to the worker's own deque and the
 *                     result call runs it), on both pools
 *   chain_short  the same with N links in chains of S: N / S chains of S links each, one after
 *                the other, against the same N round trips and calls. A chain keeps every
 *                link's two blocks (its future and the continuation) until its tail is freed,
 *                so a chain much longer than a block cache holds (256 blocks) makes malloc
 *                calls that short chains do not: the two cases show both regimes.
 *
 * Output: bench_harness.h's rows (bench=promise case=promise|chain|chain_short impl=...
 * variant=default|submit ...), each with ns_per_op_median= and ns_per_op_best=, then one
 * summary line per case with the ratios between the rows' medians,
 *   bench=promise_ratios case=<case> <row>_ns=... <a>_vs_<b>=...
 * (no impl= key: run_all.sh and weft-scale read only the rows), and "# " lines in words.
 *
 * Usage: bench_promise [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-l L] [-s S]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bench_util.h"
#include "weft.h"

static BENCH_KERNEL uint64_t bump(uint64_t x)
{
    return x + 1;
}

static uint64_t as_u64(void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static void *as_ptr(uint64_t x)
{
    return (void *)(uintptr_t)x;
}

/* What the rows of one case need to know: the operations of a timed call, and chain lengths. */
typedef struct sizes {
    uint64_t ops;   /* operations (links, round trips, calls) per timed call */
    uint64_t chain; /* links per chain */
} sizes;

static const sizes *sizes_of(const bench_row *row)
{
    return row->ctx;
}

/* A task calling bump: the submitted counterpart of a direct call. */
static int bump_task(void *arg, void **result)
{
    *result = as_ptr(bump(as_u64(arg)));
    return 0;
}

/* A link: its predecessor's result + 1. */
static int bump_link(weft_future *prev, void *arg, void **result)
{
    (void)arg;
    void *v = NULL;
    int rc = weft_future_result(prev, &v); /* finished: returns at once */
    if (rc != 0)
        return rc;
    *result = as_ptr(bump(as_u64(v)));
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * promise: from the calling thread
 */

static uint64_t serial_calls(const bench_row *row)
{
    uint64_t x = 0;
    for (uint64_t i = 0; i < sizes_of(row)->ops; i++)
        x = bump(x);
    return x;
}

static uint64_t promise_ops(const bench_row *row)
{
    uint64_t x = 0;
    for (uint64_t i = 0; i < sizes_of(row)->ops; i++) {
        weft_future *p = NULL;
        void *v = NULL;
        BENCH_CHECK(weft_future_create(&p));
        BENCH_CHECK(weft_future_set_result(p, as_ptr(bump(x))));
        BENCH_CHECK(weft_future_result(p, &v));
        weft_future_release(p);
        x = as_u64(v);
    }
    return x;
}

/* submit, result, release, one at a time: from outside the pool (the calling thread), or from
 * inside a task (then the task goes to the worker's own deque). */
static uint64_t round_trips(weft_pool *pool, uint64_t n)
{
    uint64_t x = 0;
    for (uint64_t i = 0; i < n; i++) {
        weft_future *f = NULL;
        void *v = NULL;
        BENCH_CHECK(weft_submit(pool, bump_task, as_ptr(x), &f));
        BENCH_CHECK(weft_future_result(f, &v));
        weft_future_release(f);
        x = as_u64(v);
    }
    return x;
}

static uint64_t submit_outside(const bench_row *row)
{
    return round_trips(row->pool, sizes_of(row)->ops);
}

/* ---------------------------------------------------------------------------------------------
 * chain, chain_short: inside a task
 */

/* One chain of len links from x: returns x + len. Runs on a worker of pool. */
static uint64_t one_chain(weft_pool *pool, uint64_t x, uint64_t len)
{
    weft_future *head = NULL, *tail = NULL;
    BENCH_CHECK(weft_future_create(&head));
    tail = head;
    weft_future_retain(head); /* tail's reference, while tail is the head */
    for (uint64_t i = 0; i < len; i++) {
        weft_future *next = NULL;
        BENCH_CHECK(weft_future_then(tail, pool, bump_link, NULL, &next));
        weft_future_release(tail); /* next's continuation holds its own */
        tail = next;
    }
    BENCH_CHECK(weft_future_set_result(head, as_ptr(x))); /* queues the first link */
    weft_future_release(head);
    void *v = NULL;
    BENCH_CHECK(weft_future_result(tail, &v)); /* helps: this worker runs the links */
    weft_future_release(tail);                 /* frees the whole chain */
    return as_u64(v);
}

static int chains_task(void *arg, void **result)
{
    const bench_row *row = arg;
    const sizes *sz = sizes_of(row);
    uint64_t x = 0;
    for (uint64_t done = 0; done < sz->ops; done += sz->chain)
        x = one_chain(row->pool, x, sz->ops - done < sz->chain ? sz->ops - done : sz->chain);
    *result = as_ptr(x);
    return 0;
}

static int round_trips_task(void *arg, void **result)
{
    const bench_row *row = arg;
    *result = as_ptr(round_trips(row->pool, sizes_of(row)->ops));
    return 0;
}

static uint64_t chains_inside(const bench_row *row)
{
    return as_u64(bench_weft_root(row->pool, chains_task, (void *)row));
}

static uint64_t submit_inside(const bench_row *row)
{
    return as_u64(bench_weft_root(row->pool, round_trips_task, (void *)row));
}

/* ---------------------------------------------------------------------------------------------
 * Cases and their ratios
 */

/* The median ns per operation of the row of kind and variant, 0 when -i left it out. */
static double per_op(const bench_case *c, bench_kind kind, const char *variant)
{
    for (size_t i = 0; i < c->nrows; i++)
        if (c->rows[i].kind == kind && strcmp(c->rows[i].variant, variant) == 0)
            return (double)c->rows[i].stats.median_ns / (double)c->ops;
    return 0;
}

static void print_ratio(const char *key, double num, double den)
{
    if (num > 0 && den > 0)
        printf(" %s=%.2f", key, num / den);
}

/* The summary of a case: its per-operation medians and their ratios, as a line for scripts and
 * in words. what: the weft operation ("promise", "link"). */
static void summarize(const bench_case *c, bool pooled, const char *what)
{
    double serial = per_op(c, BENCH_SERIAL, "default");
    double op1 = per_op(c, BENCH_WEFT1, "default"), opn = per_op(c, BENCH_WEFTN, "default");
    double sub1 = per_op(c, BENCH_WEFT1, "submit"), subn = per_op(c, BENCH_WEFTN, "submit");
    printf("bench=promise_ratios case=%s serial_ns=%.1f", c->name, serial);
    if (op1 > 0)
        printf(" %s1_ns=%.1f", what, op1);
    if (opn > 0)
        printf(" %sN_ns=%.1f", what, opn);
    if (sub1 > 0)
        printf(" submit1_ns=%.1f", sub1);
    if (subn > 0)
        printf(" submitN_ns=%.1f", subn);
    char key[64];
    snprintf(key, sizeof key, "%s1_vs_serial", what);
    print_ratio(key, op1, serial);
    snprintf(key, sizeof key, "submit1_vs_%s1", what);
    print_ratio(key, sub1, op1);
    if (pooled) {
        snprintf(key, sizeof key, "%sN_vs_serial", what);
        print_ratio(key, opn, serial);
        snprintf(key, sizeof key, "submitN_vs_%sN", what);
        print_ratio(key, subn, opn);
    } else {
        snprintf(key, sizeof key, "submitN_vs_%s1", what);
        print_ratio(key, subn, op1);
    }
    printf("\n");

    if (!(serial > 0 && op1 > 0 && sub1 > 0 && subn > 0 && (!pooled || opn > 0)))
        return; /* -i left rows out: no sentence to make */
    if (!pooled) {
        printf("# %s: a promise %.1f ns (%.1fx a direct call, %.1f ns); a submit round trip from "
               "outside %.1f ns to 1 worker (%.1fx the promise), %.1f ns to N (%.1fx)\n",
               c->name, op1, op1 / serial, serial, sub1, sub1 / op1, subn, subn / op1);
    } else {
        printf("# %s: a link %.1f ns on 1 worker (%.1fx a direct call, %.1f ns), %.1f ns on N; "
               "a submit round trip inside a task %.1f ns on 1 worker (%.2fx a link), %.1f ns "
               "on N (%.2fx)\n",
               c->name, op1, op1 / serial, serial, opn, sub1, sub1 / op1, subn, subn / opn);
    }
}

/* bench_env_start without its lines about OpenMP and oneTBB, which have no rows here: the 1-worker
 * and the N-worker pool, and what is compared. */
static void env_start(bench_env *env)
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
    printf("# bench_promise: weft %s, pools of 1 and %u worker%s, %zu interleaved repetitions; "
           "weft only (no OpenMP or oneTBB rows)\n",
           weft_version(), env->threads, env->threads == 1 ? "" : "s", env->reps);
    fflush(stdout);
}

static void usage(FILE *to, const char *argv0)
{
    fprintf(to,
            "usage: %s [-t THREADS] [-r REPS] [-i IMPLS] [-n N] [-l L] [-s S]\n" BENCH_COMMON_USAGE
            "  -n N        operations of the promise and chain_short cases (default 100000)\n"
            "  -l L        links of the one chain of the chain case (default 100000)\n"
            "  -s S        links per chain in chain_short (default 64)\n",
            argv0);
}

int main(int argc, char **argv)
{
    bench_env env;
    bench_env_init(&env);
    uint64_t n = 100000, chain = 100000, short_len = 64;
    int opt;
    while ((opt = getopt(argc, argv, BENCH_COMMON_OPTS "n:l:s:h")) != -1) {
        if (bench_env_option(&env, opt, optarg))
            continue;
        switch (opt) {
        case 'n':
            n = bench_parse_num('n', optarg, 1, (unsigned long long)1 << 32);
            break;
        case 'l':
            chain = bench_parse_num('l', optarg, 1, (unsigned long long)1 << 24);
            break;
        case 's':
            short_len = bench_parse_num('s', optarg, 1, (unsigned long long)1 << 24);
            break;
        case 'h':
            usage(stdout, argv[0]);
            return 0;
        default:
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr, argv[0]);
        return 2;
    }
    env.impls &= (1u << BENCH_SERIAL) | (1u << BENCH_WEFT1) | (1u << BENCH_WEFTN);
    env_start(&env);

    /* promise: from this thread, outside any pool. */
    static bench_case c;
    sizes promise_sz = {n, 0};
    bench_case_init(&c, "promise", "promise");
    snprintf(c.params, sizeof c.params, "n=%" PRIu64, n);
    c.ops = n;
    bench_add(&c, &env, BENCH_SERIAL, serial_calls, &promise_sz);
    bench_add(&c, &env, BENCH_WEFT1, promise_ops, &promise_sz);
    bench_row *row = bench_add(&c, &env, BENCH_WEFT1, submit_outside, &promise_sz);
    if (row != NULL)
        row->variant = "submit";
    row = bench_add(&c, &env, BENCH_WEFTN, submit_outside, &promise_sz);
    if (row != NULL)
        row->variant = "submit";
    bench_case_run(&c, &env);
    summarize(&c, false, "promise");

    /* chain (one chain of L links) and chain_short (N links in chains of S), inside a task. */
    sizes chain_sz = {chain, chain}, short_sz = {n, short_len};
    const struct {
        const char *name;
        sizes *sz;
    } chains[] = {{"chain", &chain_sz}, {"chain_short", &short_sz}};
    for (size_t k = 0; k < sizeof chains / sizeof chains[0]; k++) {
        sizes *sz = chains[k].sz;
        bench_case_init(&c, "promise", chains[k].name);
        snprintf(c.params, sizeof c.params, "n=%" PRIu64 " chain=%" PRIu64, sz->ops, sz->chain);
        c.ops = sz->ops;
        bench_add(&c, &env, BENCH_SERIAL, serial_calls, sz);
        bench_add(&c, &env, BENCH_WEFT1, chains_inside, sz);
        bench_add(&c, &env, BENCH_WEFTN, chains_inside, sz);
        row = bench_add(&c, &env, BENCH_WEFT1, submit_inside, sz);
        if (row != NULL)
            row->variant = "submit";
        row = bench_add(&c, &env, BENCH_WEFTN, submit_inside, sz);
        if (row != NULL)
            row->variant = "submit";
        bench_case_run(&c, &env);
        summarize(&c, true, "link");
    }

    bench_env_finish(&env);
    return 0;
}
