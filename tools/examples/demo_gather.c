/* SPDX-License-Identifier: MIT */
/*
 * weft-demo-gather: asyncio.gather, nested, with cancellation and return_exceptions, in C.
 *
 * The Python story this retells:
 *
 *     async def task(group, i):            # "task 2.3 start" ... "task 2.3 finished -> 23"
 *         await asyncio.sleep(random.uniform(1, 3))
 *         return 10 * group + i
 *
 *     groups = [asyncio.gather(*(task(g, i) for i in range(1, n + 1)))
 *               for g, n in ((1, 5), (2, 3), (3, 9))]
 *     results = await asyncio.gather(*groups)   # a gather of gathers
 *
 * then three variants of it, each with fresh tasks:
 *   [a] group 2 is cancelled while it runs: its unfinished tasks end CANCELLED, groups 1 and 3
 *       complete, the outer gather fails with -ECANCELED, and an outer gather with
 *       WEFT_RETURN_EXCEPTIONS over the same groups still gives the results of groups 1 and 3;
 *   [b] the outer gather is cancelled: every unfinished task at every depth is cancelled;
 *   [c] WEFT_RETURN_EXCEPTIONS everywhere and task 2.2 fails with -EIO: every gather is DONE,
 *       weft_gather_child() shows the failed slot's code and the others' results.
 *
 * A task sleeps in slices of 2 ms and polls weft_cancel_requested() in between; when a cancel
 * was requested it returns -ECANCELED, which ends its future CANCELLED (weft cannot interrupt a
 * running task, as asyncio interrupts an await). A task decides between "finished" and
 * "cancelled" with the output lock held, and the main thread cancels with that lock held too,
 * so the output shows exactly which tasks finished before a cancel and which after.
 *
 * Usage: weft-demo-gather [--seed N] [--scale F] [--threads N]; see demo_util.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "demo_util.h"
#include "weft.h"

#define NGROUPS 3
#define NTASKS  17 /* 5 + 3 + 9 */
static const int group_size[NGROUPS] = {5, 3, 9};

/* Group 2 is cancelled in variant [a]. */
#define CANCEL_GROUP 2

/* Task 2.2 fails in variant [c], with a code of its own that weft does not use. */
#define FAIL_GROUP 2
#define FAIL_INDEX 2
#define FAIL_CODE  (-EIO)

enum phase { PHASE_PENDING, PHASE_RUNNING, PHASE_OVER };

typedef struct task {
    int group;      /* 1-based */
    int index;      /* 1-based, within the group */
    int value;      /* what it returns: 10 * group + index */
    double sleep_s; /* unscaled */
    double scale;
    int fail_code;    /* 0, or the code the task fails with after its sleep */
    enum phase phase; /* under the output lock */
} task;

typedef struct run {
    weft_pool *pool;
    task tasks[NTASKS];
    weft_future *leaves[NTASKS];  /* the tasks' futures, group by group */
    weft_future *groups[NGROUPS]; /* one gather per group */
} run;

static int task_fn(void *arg, void **result)
{
    task *t = arg;
    demo_lock();
    t->phase = PHASE_RUNNING;
    demo_say_locked("task %d.%d start (sleeps %.3f s)", t->group, t->index, t->sleep_s);
    demo_unlock();

    int rc = demo_nap(t->sleep_s * t->scale);

    demo_lock();
    /* Decided under the lock: a cancel issued (under the lock) before this point is seen here,
     * one issued after it comes after the "finished" line. */
    if (weft_cancel_requested())
        rc = -ECANCELED;
    t->phase = PHASE_OVER;
    if (rc == -ECANCELED) {
        demo_say_locked("task %d.%d cancelled", t->group, t->index);
    } else if (t->fail_code != 0) {
        char buf[128];
        rc = t->fail_code;
        demo_say_locked("task %d.%d failed -> %s", t->group, t->index,
                        demo_describe(rc, buf, sizeof buf));
    } else {
        demo_say_locked("task %d.%d finished -> %d", t->group, t->index, t->value);
        *result = (void *)(intptr_t)t->value;
    }
    demo_unlock();
    return rc;
}

/* Submits the 17 tasks and gathers each group with `flags`. */
static void start_run(run *r, weft_pool *pool, const demo_opts *o, uint64_t *rng, unsigned flags,
                      bool with_failure)
{
    memset(r, 0, sizeof *r);
    r->pool = pool;
    size_t k = 0;
    for (int g = 0; g < NGROUPS; g++) {
        size_t first = k;
        for (int i = 0; i < group_size[g]; i++, k++) {
            task *t = &r->tasks[k];
            t->group = g + 1;
            t->index = i + 1;
            t->value = 10 * t->group + t->index;
            t->sleep_s = demo_rand_sleep(rng);
            t->scale = o->scale;
            t->phase = PHASE_PENDING;
            if (with_failure && t->group == FAIL_GROUP && t->index == FAIL_INDEX)
                t->fail_code = FAIL_CODE;
            DEMO_CHECK(weft_submit(pool, task_fn, t, &r->leaves[k]));
        }
        DEMO_CHECK(weft_gather(&r->leaves[first], (size_t)group_size[g], flags, &r->groups[g]));
    }
}

/* Waits until every task has finished, one way or another, and reports the tasks that were
 * cancelled before they started (they never ran, so they said nothing themselves). */
static void settle(run *r)
{
    weft_future *out[NTASKS];
    size_t ndone = 0;
    DEMO_CHECK(weft_wait(r->leaves, NTASKS, WEFT_ALL_COMPLETED, WEFT_FOREVER, out, &ndone));
    for (size_t k = 0; k < NTASKS; k++) {
        task *t = &r->tasks[k];
        if (t->phase == PHASE_PENDING && weft_future_state(r->leaves[k]) == WEFT_CANCELLED)
            demo_say("task %d.%d cancelled (never started)", t->group, t->index);
    }
}

static void end_run(run *r)
{
    for (size_t k = 0; k < NTASKS; k++)
        weft_future_release(r->leaves[k]);
    for (int g = 0; g < NGROUPS; g++)
        weft_future_release(r->groups[g]);
}

/* Appends item to the comma-separated list in buf. */
static void append(char *buf, size_t size, const char *item)
{
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", len == 0 ? "" : ", ", item);
}

/* "group 2 results: [21, cancelled, 23] (gather CANCELLED)", read child by child with
 * weft_gather_child(): a value, "cancelled", or "error -EIO" (the code by name). */
static void say_group(const run *r, int g)
{
    char list[512] = "";
    for (int i = 0; i < group_size[g]; i++) {
        void *v = NULL;
        char item[48], name[32];
        int code = weft_gather_child(r->groups[g], (size_t)i, &v);
        if (code == 0)
            snprintf(item, sizeof item, "%d", (int)(intptr_t)v);
        else if (code == -ECANCELED)
            snprintf(item, sizeof item, "cancelled");
        else
            snprintf(item, sizeof item, "error %s", demo_code_name(code, name, sizeof name));
        append(list, sizeof list, item);
    }
    demo_say("group %d results: [%s] (gather %s)", g + 1, list,
             weft_state_name(weft_future_state(r->groups[g])));
}

static void say_outer(const char *what, weft_future *outer)
{
    char buf[128];
    int rc = weft_future_result(outer, NULL);
    weft_state s = weft_future_state(outer);
    if (rc == 0)
        demo_say("%s: %s", what, weft_state_name(s));
    else
        demo_say("%s: %s with %s", what, weft_state_name(s), demo_describe(rc, buf, sizeof buf));
}

/* Counts the tasks of group g (or of all groups, g < 0) by phase; output lock held. */
static void count_phases(const run *r, int g, int *pending, int *running, int *over)
{
    *pending = *running = *over = 0;
    for (size_t k = 0; k < NTASKS; k++) {
        const task *t = &r->tasks[k];
        if (g >= 0 && t->group != g + 1)
            continue;
        *pending += t->phase == PHASE_PENDING;
        *running += t->phase == PHASE_RUNNING;
        *over += t->phase == PHASE_OVER;
    }
}

/* The plain story: gather each group, gather the groups, print the nested results. */
static void normal_run(weft_pool *pool, const demo_opts *o, uint64_t *rng)
{
    run r;
    demo_say("== [run] gather of gathers: groups of 5, 3 and 9 tasks ==");
    start_run(&r, pool, o, rng, 0, false);
    weft_future *outer = NULL;
    DEMO_CHECK(weft_gather(r.groups, NGROUPS, 0, &outer));
    void *res = NULL;
    DEMO_CHECK(weft_future_result(outer, &res));
    demo_say("outer gather: %s", weft_state_name(weft_future_state(outer)));
    /* The outer result is an array of the groups' results, each an array of task results. */
    void **per_group = res;
    for (int g = 0; g < NGROUPS; g++) {
        void **values = per_group[g];
        char list[512] = "";
        for (int i = 0; i < group_size[g]; i++) {
            char item[32];
            snprintf(item, sizeof item, "%d", (int)(intptr_t)values[i]);
            append(list, sizeof list, item);
        }
        demo_say("group %d results: [%s]", g + 1, list);
    }
    settle(&r);
    weft_future_release(outer);
    end_run(&r);
}

/* [a]: cancel the gather of group CANCEL_GROUP once one of its tasks runs. */
static void cancel_one_group(weft_pool *pool, const demo_opts *o, uint64_t *rng)
{
    run r;
    demo_say("== [a] cancel group %d while it runs ==", CANCEL_GROUP);
    start_run(&r, pool, o, rng, 0, false);
    weft_future *outer = NULL, *outer_rx = NULL;
    DEMO_CHECK(weft_gather(r.groups, NGROUPS, 0, &outer));
    DEMO_CHECK(weft_gather(r.groups, NGROUPS, WEFT_RETURN_EXCEPTIONS, &outer_rx));

    /* The gate: cancel when a task of the group is running (its start line is out and it has not
     * decided how it ends), so that the cancel meets it mid-sleep whatever the timing. If every
     * task of the group is over before that happens (a very loaded machine), cancel anyway: the
     * cancel then finds nothing to do and says so. */
    for (;;) {
        int pending, running, over;
        demo_lock();
        count_phases(&r, CANCEL_GROUP - 1, &pending, &running, &over);
        if (running > 0 || over == group_size[CANCEL_GROUP - 1]) {
            int rc = weft_future_cancel(r.groups[CANCEL_GROUP - 1]);
            demo_say_locked("cancel group %d (%d running, %d finished, %d not started): "
                            "weft_future_cancel -> %d",
                            CANCEL_GROUP, running, over, pending, rc);
            demo_unlock();
            break;
        }
        demo_unlock();
        demo_sleep_real(0.001);
    }

    say_outer("outer gather", outer);
    say_outer("outer gather with WEFT_RETURN_EXCEPTIONS", outer_rx);
    settle(&r);
    for (int g = 0; g < NGROUPS; g++) {
        char buf[128];
        int code = weft_gather_child(outer_rx, (size_t)g, NULL);
        demo_say("outer slot %d: %s", g + 1, demo_describe(code, buf, sizeof buf));
    }
    for (int g = 0; g < NGROUPS; g++)
        say_group(&r, g);
    weft_future_release(outer);
    weft_future_release(outer_rx);
    end_run(&r);
}

/* [b]: cancel the outer gather 1.5 s after the first task started. */
static void cancel_everything(weft_pool *pool, const demo_opts *o, uint64_t *rng)
{
    run r;
    demo_say("== [b] cancel everything: cancel the outer gather after 1.5 s ==");
    start_run(&r, pool, o, rng, 0, false);
    weft_future *outer = NULL;
    DEMO_CHECK(weft_gather(r.groups, NGROUPS, 0, &outer));
    for (;;) {
        int pending, running, over;
        demo_lock();
        count_phases(&r, -1, &pending, &running, &over);
        demo_unlock();
        if (running + over > 0)
            break;
        demo_sleep_real(0.001);
    }
    demo_sleep_real(1.5 * o->scale);
    int pending, running, over;
    demo_lock();
    count_phases(&r, -1, &pending, &running, &over);
    int rc = weft_future_cancel(outer);
    demo_say_locked("cancel the outer gather (%d running, %d finished, %d not started): "
                    "weft_future_cancel -> %d",
                    running, over, pending, rc);
    demo_unlock();

    settle(&r);
    say_outer("outer gather", outer);
    for (int g = 0; g < NGROUPS; g++)
        say_group(&r, g);
    weft_future_release(outer);
    end_run(&r);
}

/* [c]: WEFT_RETURN_EXCEPTIONS at both levels, and task 2.2 fails. */
static void return_exceptions(weft_pool *pool, const demo_opts *o, uint64_t *rng)
{
    run r;
    char buf[128];
    demo_say("== [c] WEFT_RETURN_EXCEPTIONS: task %d.%d fails with %s ==", FAIL_GROUP, FAIL_INDEX,
             demo_describe(FAIL_CODE, buf, sizeof buf));
    start_run(&r, pool, o, rng, WEFT_RETURN_EXCEPTIONS, true);
    weft_future *outer = NULL;
    DEMO_CHECK(weft_gather(r.groups, NGROUPS, WEFT_RETURN_EXCEPTIONS, &outer));
    say_outer("outer gather with WEFT_RETURN_EXCEPTIONS", outer);
    settle(&r);
    for (int g = 0; g < NGROUPS; g++)
        say_group(&r, g);
    for (int i = 0; i < group_size[FAIL_GROUP - 1]; i++) {
        void *v = NULL;
        int code = weft_gather_child(r.groups[FAIL_GROUP - 1], (size_t)i, &v);
        if (code == 0)
            demo_say("weft_gather_child(group %d, %d) -> 0, result %d (task %d.%d)", FAIL_GROUP, i,
                     (int)(intptr_t)v, FAIL_GROUP, i + 1);
        else
            demo_say("weft_gather_child(group %d, %d) -> %s (task %d.%d)", FAIL_GROUP, i,
                     demo_describe(code, buf, sizeof buf), FAIL_GROUP, i + 1);
    }
    weft_future_release(outer);
    end_run(&r);
}

int main(int argc, char **argv)
{
    demo_opts o;
    /* One worker per task by default. The tasks sleep instead of computing, and a sleeping task
     * holds its worker (weft runs tasks to completion; there is no await to switch at). asyncio
     * runs all the coroutines of a gather at once on one thread because each sleep yields; to
     * see the same concurrency here every task needs a worker of its own, so the pool gets as
     * many workers as tasks can be alive at once (17; they cost nothing while they sleep).
     * With fewer (--threads 2) the story is the same but the tasks run in waves. */
    demo_parse(argc, argv, "asyncio.gather in C: nested gathers, cancellation, return_exceptions.",
               NTASKS, NULL, &o);
    demo_start();
    weft_pool *pool = demo_pool(o.threads);
    demo_say("weft %s: weft-demo-gather, seed %llu, scale %g, %u threads", weft_version(),
             (unsigned long long)o.seed, o.scale, weft_pool_size(pool));
    uint64_t rng = o.seed;

    normal_run(pool, &o, &rng);
    cancel_one_group(pool, &o, &rng);
    cancel_everything(pool, &o, &rng);
    return_exceptions(pool, &o, &rng);

    DEMO_CHECK(weft_pool_destroy(pool));
    demo_say("== end ==");
    return 0;
}
