/* SPDX-License-Identifier: MIT */
/*
 * weft-demo-wait: asyncio.wait, in C, with its done and pending sets.
 *
 * The Python story this retells:
 *
 *     tasks = [asyncio.create_task(sleeper(f"t{i}")) for i in range(10)]   # 1-3 s each
 *     done, pending = await asyncio.wait(tasks, return_when=FIRST_COMPLETED)
 *     done, pending = await asyncio.wait(pending, timeout=2)
 *     done, pending = await asyncio.wait(pending)                          # ALL_COMPLETED
 *
 * printing each step's done and pending sets by task name and the time it took. weft_wait()
 * sorts its out array into the finished futures followed by the unfinished ones, so the array
 * is waited on in place: each step waits on out + ndone of the previous one.
 *
 * Usage: weft-demo-wait [--seed N] [--scale F] [--threads N]; see demo_util.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "demo_util.h"
#include "weft.h"

#define NTASKS 10

typedef struct sleeper {
    char name[8];
    double sleep_s; /* unscaled */
    double scale;
} sleeper;

static int sleeper_fn(void *arg, void **result)
{
    sleeper *s = arg;
    demo_say("task %s start (sleeps %.3f s)", s->name, s->sleep_s);
    int rc = demo_nap(s->sleep_s * s->scale);
    if (rc != 0) {
        demo_say("task %s cancelled", s->name);
        return rc;
    }
    demo_say("task %s finished", s->name);
    *result = s->name;
    return 0;
}

/* The names of fs[0..n), space-separated, in buf. */
static const char *names(weft_future *const fs[], size_t n, weft_future *const all[],
                         const sleeper tasks[], char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < NTASKS && all[k] != fs[i])
            k++;
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i == 0 ? "" : " ",
                                k < NTASKS ? tasks[k].name : "?");
        if (len >= size)
            break;
    }
    return buf;
}

int main(int argc, char **argv)
{
    demo_opts o;
    /* One worker per task by default: the tasks sleep rather than compute, and a sleeping task
     * holds its worker (there is no await to switch at). asyncio runs the ten coroutines at
     * once because each sleep yields; ten workers give the same concurrency, and sleeping
     * workers cost nothing. With fewer (--threads 2) the waits see the tasks finish in waves. */
    /* Step 2's timeout. With 2 s, as in the Python version, step 2 usually sees every task
     * finish: step 1 returns after at least 1 s and no task sleeps more than 3 s. A shorter
     * one (--timeout 0.5) leaves tasks for step 3. */
    double timeout_s = 2.0;
    const demo_extra extra = {"--timeout", "step 2's timeout in seconds, scaled too", &timeout_s};
    demo_parse(argc, argv, "asyncio.wait in C: FIRST_COMPLETED, a timeout, then ALL_COMPLETED.",
               NTASKS, &extra, &o);
    demo_start();
    weft_pool *pool = demo_pool(o.threads);
    demo_say("weft %s: weft-demo-wait, seed %llu, scale %g, %u threads", weft_version(),
             (unsigned long long)o.seed, o.scale, weft_pool_size(pool));

    uint64_t rng = o.seed;
    sleeper tasks[NTASKS];
    weft_future *all[NTASKS]; /* in creation order, to name the futures */
    weft_future *fs[NTASKS];  /* waited on in place: done first, then pending */
    for (size_t k = 0; k < NTASKS; k++) {
        snprintf(tasks[k].name, sizeof tasks[k].name, "t%zu", k);
        tasks[k].sleep_s = demo_rand_sleep(&rng);
        tasks[k].scale = o.scale;
    }
    for (size_t k = 0; k < NTASKS; k++) {
        DEMO_CHECK(weft_submit(pool, sleeper_fn, &tasks[k], &all[k]));
        fs[k] = all[k];
    }

    char timeout_what[64];
    snprintf(timeout_what, sizeof timeout_what, "ALL_COMPLETED, timeout %g s", timeout_s);
    const struct {
        weft_return_when when;
        double timeout_s; /* unscaled; < 0: forever */
        const char *what;
    } steps[] = {
        {WEFT_FIRST_COMPLETED, -1, "FIRST_COMPLETED"},
        {WEFT_ALL_COMPLETED, timeout_s, timeout_what},
        {WEFT_ALL_COMPLETED, -1, "ALL_COMPLETED"},
    };
    weft_future **pending = fs;
    size_t npending = NTASKS;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        double t0 = demo_elapsed();
        size_t ndone = 0;
        int64_t timeout =
            steps[s].timeout_s < 0 ? WEFT_FOREVER : (int64_t)(steps[s].timeout_s * o.scale * 1e9);
        if (npending > 0) /* n == 0 is -EINVAL: nothing left to wait for */
            DEMO_CHECK(weft_wait(pending, npending, steps[s].when, timeout, pending, &ndone));
        char done_names[256], pending_names[256];
        demo_say("step %zu %s: done %zu [%s] pending %zu [%s] (waited %.3f s)", s + 1,
                 steps[s].what, ndone,
                 names(pending, ndone, all, tasks, done_names, sizeof done_names), npending - ndone,
                 names(pending + ndone, npending - ndone, all, tasks, pending_names,
                       sizeof pending_names),
                 demo_elapsed() - t0);
        pending += ndone;
        npending -= ndone;
    }

    for (size_t k = 0; k < NTASKS; k++)
        weft_future_release(all[k]);
    DEMO_CHECK(weft_pool_destroy(pool));
    demo_say("== end ==");
    return 0;
}
