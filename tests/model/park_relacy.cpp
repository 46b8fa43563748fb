/* SPDX-License-Identifier: MIT */
/*
 * Relacy model of weft's parking protocol: no lost wake-up.
 *
 * WHAT IS MODELLED
 *   A pool of 2 workers and 1 thread outside it that submits, with the code of lib/ transcribed
 *   statement for statement and the same memory order on every atomic access:
 *     park.c    weft__park_prepare (key = ld_acquire(word); or_seq_cst(idle); F1 = seq_cst
 *               fence), weft__park_cancel, weft__park_commit, leave (and_acq_rel), wake
 *               (add_release; futex_wake), weft__park_notify_one (F2 = seq_cst fence; relaxed
 *               load of idle; and_acq_rel claims a bit), weft__park_notify_all, weft__park_unpark
 *     worker.c  weft__worker_main's loop (find_task, park_prepare, the exit test, the re-check
 *               weft__work_visible, cancel or commit), find_task, take_injected, steal_any,
 *               weft__work_visible, and weft__help with one_ops (the helping wait and its
 *               pass-on rule `if (chosen && ops->ready(ctx)) weft__park_notify_one()`)
 *     inject.c  one shard per worker, as weft_pool_create makes them: weft__inject_push (seq_cst
 *               count increment, closed check, link_in), pop_one, weft__inject_pop (relaxed count
 *               hint, trylock, release decrement), _maybe_nonempty (acquire), _drained (seq_cst);
 *               `head` is an rl::var under the consumer mutex (a pthread mutex: trylock fails
 *               only when it is held)
 *     deque.*   each worker's deque, transcribed in deque_model.h (checked by deque_relacy.cpp)
 *     pool.c    weft_submit from outside the pool (CLOSED check, inject push, notify_one) and,
 *               run by the worker that runs the last task, weft_pool_destroy's shutdown
 *               (or_seq_cst CLOSED, or_acq_rel CLOSED|EXIT, weft__park_notify_all)
 *   The futex (platform.c) as Relacy's rl_futex models it: a seq_cst fence (the kernel's full
 *   barrier), then the comparison of the word with the key and the sleep with no scheduling point
 *   in between; waking is a fence and a wake-up. Spurious returns only under the random
 *   scheduler (see futex_wait). Tasks carry an rl::var payload written before the submission and
 *   read by the worker that runs them, so every hand-off (injection queue, deques) is also
 *   checked for data races.
 *
 *   Two sizes of the same code (template parameter CORE):
 *     full  lib/'s injection queue and deques as above.
 *     core  the queue reduced to inject.c's `count` with its orders (seq_cst increment before the
 *           push, release decrement after the pop, relaxed hint, acquire re-check, seq_cst
 *           drained test) and the tasks in a list under the consumer mutex (whose unlock/lock
 *           carries link_in's release/acquire); no deques. Small enough for deeper bounds.
 *
 * THE PROPERTY: no lost wake-up. Every execution must end with every task run exactly once.
 *   Workers sleep in the futex and the submitter ends after its last action, so a task can only
 *   be run if some worker is awake or gets woken. The worker that runs the last task shuts the
 *   pool down (above) and workers leave their loop by lib/'s own exit test. So if a task stays
 *   queued while every worker sleeps, no thread can ever run again and Relacy reports DEADLOCK
 *   (all threads blocked). A task run twice or never fails an assertion; a worker spinning
 *   forever is reported as LIVELOCK.
 *
 * SCENARIOS (threads: 0 submitter, 1 worker 0, 2 worker 1). The submitter runs a script:
 *   'S' submits the next task, 'F' finishes the future that worker 0 waits on.
 *   submitN       both workers run the main loop; the submitter submits N tasks (S, SS, SSS).
 *   help_*        worker 0 starts in weft__help, waiting for the future that the submitter
 *                 finishes ('F': weft__future_finish's final CAS, then one_fire's
 *                 weft__park_unpark of worker 0). When that wait returns, worker 0 leaves (its
 *                 thread ends): this stands for the waiting task's own code, which may run for
 *                 any time without coming back to the pool. So a wake-up that worker 0 consumes
 *                 and neither uses to look for work nor passes on is lost: worker 1 must be woken
 *                 instead. This is the case the pass-on rule is there for.
 *
 * BUG FOUND IN lib/worker.c weft__help, NOW FIXED THERE (HelpFix is what lib/ does now; the old
 * rule stays as negative tests neg_help_old_pass_on and neg_help_old_pass_on_full, and in
 * park.pml, which must keep finding the lost wake-up)
 *   The pass-on test `if (chosen && ops->ready(ctx)) weft__park_notify_one(...)` runs once,
 *   right after the park. If the future is not final at that moment but becomes final before
 *   the loop comes back to its first statement, `if (ops->ready(ctx)) return 0;` (checked before
 *   find_task), the worker returns having consumed a wake-up that a submitter aimed at it, without
 *   looking for work and without passing it on. Execution found (SF, 2 workers): worker 1 parks
 *   (its re-check comes before the submission); worker 0 parks; the submitter pushes a task,
 *   notify_one sees both bits, claims worker 0 (lowest bit) and wakes it; worker 0 wakes, chosen,
 *   evaluates ready() = false; the submitter finishes the future; worker 0's loop sees ready() =
 *   true and returns. The task stays queued and worker 1 sleeps until something else wakes it.
 *   HelpFix is the fix proposed in the report (the wake-up stays owed until the worker has looked
 *   for work once; if the wait ends first, it is passed on); the *_fixed tests check it.
 *
 * DEVIATIONS FROM lib/
 *   - keep_spinning() is modelled as zero rounds: spinning only repeats find_task before the
 *     park, which the scheduler's freedom to delay a thread covers. Where lib/ loops back after
 *     seeing work it cannot take yet (weft__work_visible true while a push is half done or another
 *     consumer holds the shard), the model calls rl::yield so that Relacy's fair schedulers do not
 *     mistake the spin for a livelock.
 *   - Statistics, tracing, weft__help's deadline and the random first victim are left out (two
 *     workers: one victim). The future is one atomic word: ready() is its acquire load (worker.c
 *     finished()), arm() refuses once it is final (weft__future_add_node), and finishing always
 *     unparks worker 0 as if its node were registered (an extra wake-up of worker 0 is at worst a
 *     spurious return for it).
 *   - Deques have 16 slots (lib/: 256), so take_injected takes at most room + 1 = 17 tasks.
 *   - A CANCEL shutdown is not modelled (the property is about lost wake-ups), and so neither is
 *     the `taking` handshake it relies on: acquire_task's st_seq_cst of taking and decide()'s
 *     ld_seq_cst of the bits and st_release of taking are left out; find_task is called
 *     directly. Nor is max_pending (the pool has no limit): weft__task_new's relaxed add and
 *     sub on the page's pending count are left out. teardown's relaxed store of nthreads (for the stop
 *     hooks' barrier after the loop) is left out: the model's workers end with the loop, and so
 *     is the weft__park_notify_all a worker makes after its loop (it wakes a worker that parked
 *     after the exit bit was set, having seen a shard's count still up: a lost wake-up at exit
 *     that the fuzzer found and these bounds did not).
 *
 * LINE-BY-LINE CORRESPONDENCE: each function below is named after the lib/ function it copies
 *   and keeps its statement order; each atomic access has the order of the lib/ line (atomic.h
 *   macro -> Relacy order: ld_acquire -> mo_acquire, or_seq_cst -> fetch_or(mo_seq_cst),
 *   and_acq_rel -> fetch_and(mo_acq_rel), weft_fence_seq_cst -> atomic_thread_fence(seq_cst)).
 *
 * BOUNDS (default suite; context-bound = exhaustive over executions with at most N preemptions;
 *   Relacy's seq_cst fence is stronger than C11's, and in its exhaustive modes a load reads the
 *   latest store or the one before; see deque_relacy.cpp)
 *   core_submit1        S,   2 workers                  bound 3    3 592 984 executions
 *   core_submit2        SS,  2 workers                  bound 2      672 240
 *   core_help_fs        FS,  worker 0 helping           bound 2      226 064
 *   core_help_sfs       SFS, worker 0 helping           bound 2      640 452
 *   core_help_sf_fixed  SF,  helping, HelpFix           bound 2      246 700
 *   core_help_ssf_fixed SSF, helping, HelpFix           bound 2      739 168
 *   full_submit1        S,   2 workers                  bound 1      140 400
 *   full_submit2        SS,  2 workers (batch to deque) bound 1    1 379 224
 *   full_submit2_random / full_submit3_random           random       300 000 each
 *   full_help_fs        FS,  helping                    bound 1      114 924
 *   full_help_sfs_random SFS, helping                   random       300 000
 *   full_help_sf_fixed  SF,  helping, HelpFix           bound 1      112 428
 *   full_help_ssf_fixed_random SSF, helping, HelpFix    random       300 000
 *   (about 60 s in all). WEFT_MODEL_BIG=1 adds (all pass, about 13 minutes):
 *   big_core_submit2 (SS, bound 3: 31 355 360), big_core_help_sf_fixed (bound 3: 6 710 384),
 *   big_full_submit1 (S, bound 2: 16 498 164), big_full_submit3_random and
 *   big_full_help_ssf_fixed_random (20 000 000 each).
 *
 * KNOWN BUG AND NEGATIVE TESTS (each must fail: Relacy must report DEADLOCK, the lost wake-up)
 *   neg_help_old_pass_on       weft__help's former pass-on rule, scenario SF, core, bound 2.
 *   neg_help_old_pass_on_full  the same with the full queue, bound 1.
 *   neg_no_f1          prepare without F1 (core bound 2, and neg_no_f1_full: full bound 1).
 *   neg_no_f2          notify_one without F2 (likewise).
 *   neg_no_pass_on     weft__help without the pass-on rule, scenario FS (core bound 2).
 *
 * RUNNING
 *   park_relacy                 the default suite; park_relacy NAME... | all
 *   WEFT_MODEL_BIG=1            also the big configurations
 *   WEFT_MODEL_TRACE=1          print a failing execution's history (always written to
 *                               park_relacy.NAME.trace)
 *   park_relacy custom SCRIPT HELP(0|1) full|bound|random BOUND ITERATIONS [VARIANT [core]]
 *                               one ad-hoc run (VARIANT: lib no_f1 no_f2 no_pass_on help_fix)
 */
#include "deque_model.h"
#include "model_runner.h"

namespace
{

using model::Deque;
using model::DequeOrders;

/* ---- the variants ---- */

struct ParkLib {
    static const bool f1 = true;      /* park.c prepare: weft_fence_seq_cst() F1 */
    static const bool f2 = true;      /* park.c notify_one: weft_fence_seq_cst() F2 */
    static const bool pass_on = true; /* worker.c weft__help: the pass-on rule */
    static const bool help_fix = false;
};
struct NoF1 : ParkLib {
    static const bool f1 = false;
};
struct NoF2 : ParkLib {
    static const bool f2 = false;
};
struct NoPassOn : ParkLib {
    static const bool pass_on = false;
};
/* The fix proposed in the report: a wake-up this worker was chosen for stays owed until it has
 * looked for work once; if the wait ends first, it is passed on. */
struct HelpFix : ParkLib {
    static const bool help_fix = true;
};

/* ---- configuration ---- */

struct Config {
    const char *script; /* submitter: 'S' submit the next task, 'F' finish the future */
    bool help;          /* worker 0 starts in weft__help on that future */
};
Config g_cfg;

const unsigned NWORKERS = 2;
const unsigned NSHARDS = NWORKERS; /* weft_pool_create: inject_init(threads) */
const unsigned SUBMIT_SHARD = 1;   /* weft__inject_home of the submitting thread */
const int MAX_TASKS = 3;
const int64_t DEQUE_CAP = model::MODEL_MAX_CAP; /* lib/: 256 */
const int64_t INJECT_BATCH = 32;                /* worker.c */

const unsigned SHUT_CLOSED = 0x1, SHUT_EXIT = 0x4; /* pool.h */

/* The futex (platform.c weft__futex_wait / weft__futex_wake), as Relacy's rl_futex models it:
 * a seq_cst fence (the kernel's full barrier), then the comparison of the word with the key and
 * the sleep with no scheduling point in between. Unlike rl_futex, spurious returns are allowed
 * only under the random scheduler: the exhaustive ones would otherwise explore unboundedly many
 * of them (a worker woken spuriously just loops, which the random runs cover). Each word has
 * one sleeper, its worker, so waking one or all is the same. */
void futex_wait(rl::atomic<int> &word, int key)
{
    rl::context &c = rl::ctx();
    c.sched();
    c.atomic_thread_fence_seq_cst();
    int v;
    {
        rl::preemption_disabler pd(c);
        v = word.load(rl::mo_acquire, $);
    }
    if (v != key)
        return; /* EAGAIN */
    word.wait(c, false, c.is_random_sched(), $);
}

void futex_wake(rl::atomic<int> &word)
{
    rl::context &c = rl::ctx();
    c.sched();
    c.atomic_thread_fence_seq_cst();
    word.wake(c, 1, $);
}

/* pthread_mutex_t as Relacy's pthread emulation has it: trylock fails only when the mutex is
 * held (rl::mutex, std::mutex's model, may also fail spuriously, which glibc's does not). */
struct PthreadMutex : rl::generic_mutex<rl::mutex_tag_pthread_mtx> {
    PthreadMutex()
    {
        init(false, false, false, false, $);
    }
    ~PthreadMutex()
    {
        deinit($);
    }
    void lock(rl::debug_info_param info)
    {
        lock_exclusive(info);
    }
    bool try_lock(rl::debug_info_param info)
    {
        return try_lock_exclusive(info);
    }
    void unlock(rl::debug_info_param info)
    {
        unlock_exclusive(info);
    }
};

/* struct weft__task (the part the queues use) + the task's data */
struct Task {
    rl::atomic<Task *> next;
    rl::var<int> payload;
    int id;
};

/* struct weft__inject_shard */
struct Shard {
    rl::atomic<Task *> tail;
    rl::atomic<long> count;
    PthreadMutex consumer;
    rl::var<Task *> head; /* under consumer */
    Task stub;
};

struct Worker {
    Deque<DequeOrders, Task> deque;
    rl::atomic<int> wake; /* the futex word */
    unsigned index;
    unsigned inject_home;
};

template <class O, bool CORE> struct ParkTest : rl::test_suite<ParkTest<O, CORE>, 1 + NWORKERS> {
    Shard shard[NSHARDS];
    /* CORE: the abstract queue (see the header) */
    rl::atomic<long> ccount; /* as inject.c's count */
    PthreadMutex cmutex;     /* as inject.c's consumer mutex, and link_in's release/acquire */
    rl::var<int> chead, ctail;
    Worker workers[NWORKERS];
    rl::atomic<unsigned long> idle; /* park.c: the idle set, one word */
    rl::atomic<unsigned> shutdown;  /* pool->shutdown */
    rl::atomic<int> fstate;         /* the future worker 0 waits on: 0 pending, 1 final */
    rl::atomic<int> ndone;          /* tasks run (model only) */
    Task tasks[MAX_TASKS];
    int ntasks = 0;
    int got[MAX_TASKS] = {};

    void before()
    {
        for (const char *c = g_cfg.script; *c; c++)
            ntasks += *c == 'S';
        RL_ASSERT(ntasks <= MAX_TASKS);
        for (int i = 0; i < ntasks; i++) {
            tasks[i].id = i;
            tasks[i].payload($) = 0;
            tasks[i].next.store(nullptr, rl::mo_relaxed, $);
        }
        for (unsigned s = 0; s < NSHARDS; s++) { /* weft__inject_init */
            Shard &sh = shard[s];
            sh.stub.next.store(nullptr, rl::mo_relaxed, $);
            sh.tail.store(&sh.stub, rl::mo_relaxed, $);
            sh.count.store(0, rl::mo_relaxed, $);
            sh.head($) = &sh.stub;
        }
        for (unsigned i = 0; i < NWORKERS; i++) { /* weft_pool_create */
            workers[i].index = i;
            workers[i].inject_home = i % NSHARDS;
            workers[i].wake.store(0, rl::mo_relaxed, $);
            workers[i].deque.init(DEQUE_CAP);
        }
        ccount.store(0, rl::mo_relaxed, $);
        chead($) = 0;
        ctail($) = 0;
        idle.store(0, rl::mo_relaxed, $);
        shutdown.store(0, rl::mo_relaxed, $);
        fstate.store(0, rl::mo_relaxed, $);
        ndone.store(0, rl::mo_relaxed, $);
    }

    void after()
    {
        for (int i = 0; i < ntasks; i++)
            RL_ASSERT(got[i] == 1); /* every task ran, once */
        for (unsigned i = 0; i < NWORKERS; i++)
            workers[i].deque.destroy();
    }

    /* ---- inject.c ---- */

    /* link_in */
    void link_in(Shard &sh, Task *t)
    {
        t->next.store(nullptr, rl::mo_relaxed, $);
        Task *prev = sh.tail.exchange(t, rl::mo_acq_rel, $);
        prev->next.store(t, rl::mo_release, $);
    }

    /* weft__inject_push with closed = &pool->shutdown, closed_mask = WEFT_SHUT_CLOSED */
    int inject_push(unsigned s, Task *t)
    {
        Shard &sh = shard[s];
        sh.count.fetch_add(1, rl::mo_seq_cst, $);
        if ((shutdown.load(rl::mo_seq_cst, $) & SHUT_CLOSED) != 0) {
            sh.count.fetch_sub(1, rl::mo_release, $);
            return -1; /* -ESHUTDOWN */
        }
        link_in(sh, t);
        /* add_relaxed(&sh->total, 1): a statistic, not modelled */
        return 0;
    }

    /* pop_one */
    Task *pop_one(Shard &sh)
    {
        Task *h = sh.head($);
        Task *next = h->next.load(rl::mo_acquire, $);
        if (h == &sh.stub) {
            if (next == nullptr)
                return nullptr;
            sh.head($) = next;
            h = next;
            next = h->next.load(rl::mo_acquire, $);
        }
        if (next != nullptr) {
            sh.head($) = next;
            return h;
        }
        if (sh.tail.load(rl::mo_acquire, $) != h)
            return nullptr;
        link_in(sh, &sh.stub);
        next = h->next.load(rl::mo_acquire, $);
        if (next != nullptr) {
            sh.head($) = next;
            return h;
        }
        return nullptr;
    }

    /* weft__inject_pop with wait == false */
    long inject_pop(unsigned s, Task **out, long max)
    {
        Shard &sh = shard[s];
        if (sh.count.load(rl::mo_relaxed, $) == 0)
            return 0;
        if (!sh.consumer.try_lock($))
            return 0;
        long n = 0;
        while (n < max) {
            Task *t = pop_one(sh);
            if (t == nullptr)
                break;
            out[n++] = t;
        }
        sh.consumer.unlock($);
        return n; /* count stays up until weft__inject_taken (take_injected) */
    }

    /* weft__inject_taken */
    void inject_taken(unsigned s, long n)
    {
        if (n > 0)
            shard[s].count.fetch_sub(n, rl::mo_release, $);
    }

    /* weft__inject_maybe_nonempty */
    bool inject_maybe_nonempty()
    {
        for (unsigned i = 0; i < NSHARDS; i++) {
            if (shard[i].count.load(rl::mo_acquire, $) != 0)
                return true;
        }
        return false;
    }

    /* weft__inject_drained */
    bool inject_drained()
    {
        if (CORE)
            return ccount.load(rl::mo_seq_cst, $) == 0;
        for (unsigned i = 0; i < NSHARDS; i++) {
            if (shard[i].count.load(rl::mo_seq_cst, $) != 0)
                return false;
        }
        return true;
    }

    /* ---- park.c ---- */

    /* weft__park_prepare */
    int park_prepare(unsigned i)
    {
        int key = workers[i].wake.load(rl::mo_acquire, $);
        idle.fetch_or(1ul << i, rl::mo_seq_cst, $);
        if (O::f1)
            rl::atomic_thread_fence(rl::mo_seq_cst, $); /* F1 */
        return key;
    }

    /* leave */
    bool leave(unsigned i)
    {
        unsigned long bit = 1ul << i;
        return (idle.fetch_and(~bit, rl::mo_acq_rel, $) & bit) == 0;
    }

    /* weft__park_cancel */
    bool park_cancel(unsigned i)
    {
        return leave(i);
    }

    /* weft__park_commit, deadline -1 */
    bool park_commit(unsigned i, int key)
    {
        futex_wait(workers[i].wake, key); /* weft__futex_wait(p->words[i], key, -1) */
        return leave(i);
    }

    /* wake */
    void wake(unsigned i)
    {
        workers[i].wake.fetch_add(1, rl::mo_release, $);
        futex_wake(workers[i].wake); /* weft__futex_wake(p->words[i], 1) */
    }

    /* weft__park_notify_one */
    void notify_one()
    {
        if (O::f2)
            rl::atomic_thread_fence(rl::mo_seq_cst, $); /* F2 */
        unsigned long v = idle.load(rl::mo_relaxed, $);
        while (v != 0) {
            unsigned long bit = v & -v;
            unsigned long old = idle.fetch_and(~bit, rl::mo_acq_rel, $);
            if (old & bit) {
                wake((unsigned)__builtin_ctzl(bit));
                return;
            }
            v = old & ~bit;
        }
    }

    /* weft__park_notify_all */
    void notify_all()
    {
        rl::atomic_thread_fence(rl::mo_seq_cst, $); /* F2 as in notify_one */
        for (unsigned i = 0; i < NWORKERS; i++) {
            workers[i].wake.fetch_add(1, rl::mo_release, $);
            futex_wake(workers[i].wake); /* weft__futex_wake(p->words[i], INT_MAX) */
        }
    }

    /* ---- worker.c ---- */

    /* take_injected */
    Task *take_injected(Worker &w, unsigned s)
    {
        int64_t room = w.deque.room();
        long max = room < INJECT_BATCH ? (long)room + 1 : (long)INJECT_BATCH;
        Task *batch[INJECT_BATCH];
        long n = inject_pop(s, batch, max);
        if (n == 0)
            return nullptr;
        for (long i = n - 1; i >= 1; i--) /* newest first: taken from the bottom in order */
            w.deque.push(batch[i]);
        inject_taken(s, n); /* all placed: the rest in the deque, batch[0] in hand */
        if (n > 1)
            notify_one();
        return batch[0];
    }

    /* steal_any (two workers: one victim) */
    Task *steal_any(Worker &w)
    {
        for (unsigned v = 0; v < NWORKERS; v++) {
            if (v == w.index)
                continue;
            Task *x;
            int tries = 0;
            do {
                x = workers[v].deque.steal();
            } while (x == model::steal_abort<Task>() && ++tries < 4);
            if (x != model::steal_empty<Task>() && x != model::steal_abort<Task>())
                return x;
        }
        for (unsigned k = 1; k <= NSHARDS; k++) {
            unsigned s = (w.inject_home + k) % NSHARDS;
            Task *t = take_injected(w, s);
            if (t != nullptr)
                return t;
        }
        return nullptr;
    }

    /* CORE: weft__inject_push of one shard, the list under a mutex instead of link_in */
    int core_push(Task *t)
    {
        ccount.fetch_add(1, rl::mo_seq_cst, $);
        if ((shutdown.load(rl::mo_seq_cst, $) & SHUT_CLOSED) != 0) {
            ccount.fetch_sub(1, rl::mo_release, $);
            return -1;
        }
        cmutex.lock($);
        RL_ASSERT(&tasks[ctail($)] == t);
        ctail($) = ctail($) + 1;
        cmutex.unlock($);
        return 0;
    }

    /* CORE: weft__inject_pop of one task, wait == false */
    Task *core_pop()
    {
        if (ccount.load(rl::mo_relaxed, $) == 0)
            return nullptr;
        if (!cmutex.try_lock($))
            return nullptr;
        Task *t = nullptr;
        int h = chead($);
        if (h < ctail($)) {
            t = &tasks[h];
            chead($) = h + 1;
        }
        cmutex.unlock($);
        if (t != nullptr)
            ccount.fetch_sub(1, rl::mo_release, $);
        return t;
    }

    /* find_task */
    Task *find_task(Worker &w)
    {
        if (CORE)
            return core_pop();
        Task *t = w.deque.take();
        if (t != nullptr)
            return t;
        t = take_injected(w, w.inject_home);
        if (t != nullptr)
            return t;
        return steal_any(w);
    }

    /* weft__work_visible */
    bool work_visible()
    {
        if (CORE)
            return ccount.load(rl::mo_acquire, $) != 0;
        if (inject_maybe_nonempty())
            return true;
        for (unsigned i = 0; i < NWORKERS; i++) {
            if (workers[i].deque.maybe_nonempty())
                return true;
        }
        return false;
    }

    /* weft__run_task: runs the task (reads its data) and, after the last one, shuts the pool
     * down as weft_pool_destroy does (weft_pool_shutdown DRAIN, then teardown). */
    void run_task(Worker &w, Task *t)
    {
        (void)w;
        RL_ASSERT(t >= tasks && t < tasks + ntasks);
        int v = t->payload($);
        RL_ASSERT(v == 100 + t->id);
        t->payload($) = -1;
        got[t->id]++;
        if (ndone.fetch_add(1, rl::mo_acq_rel, $) + 1 == ntasks) {
            /* check_drift: begin pool.destroy (weft_pool_destroy, compared by check_drift.py) */
            shutdown.fetch_or(SHUT_CLOSED, rl::mo_seq_cst, $);             /* weft_pool_shutdown */
            shutdown.fetch_or(SHUT_CLOSED | SHUT_EXIT, rl::mo_seq_cst, $); /* teardown */
            notify_all();
            /* check_drift: end pool.destroy */
        }
    }

    /* weft__worker_main's loop */
    void worker_main(Worker &w)
    {
        for (;;) {
            Task *t = find_task(w);
            if (t != nullptr) {
                run_task(w, t);
                continue;
            }
            /* keep_spinning(): zero rounds (see the header) */
            int key = park_prepare(w.index);
            if ((shutdown.load(rl::mo_seq_cst, $) & SHUT_EXIT) && inject_drained() &&
                !work_visible()) {
                park_cancel(w.index);
                break;
            }
            if (work_visible()) {
                park_cancel(w.index);
                rl::yield(1, $); /* lib/ spins here until the work can be taken */
                continue;
            }
            park_commit(w.index, key); /* park(w, key, -1) */
        }
    }

    /* the future: worker.c finished(), one_arm (weft__future_add_node refuses a final future) */
    bool ready()
    {
        return fstate.load(rl::mo_acquire, $) != 0;
    }
    bool arm()
    {
        return fstate.load(rl::mo_acquire, $) == 0;
    }

    /* weft__help with one_ops, deadline -1 */
    void help(Worker &w)
    {
        bool owed = false; /* HelpFix only */
        for (;;) {
            for (;;) {
                if (ready()) {
                    if (O::help_fix && owed)
                        notify_one();
                    return;
                }
                Task *t = find_task(w);
                owed = false;
                if (t != nullptr) {
                    run_task(w, t);
                    continue;
                }
                break; /* keep_spinning() false: zero rounds */
            }
            if (!arm())
                return;
            int key = park_prepare(w.index);
            bool chosen;
            if (ready() || work_visible()) {
                chosen = park_cancel(w.index);
            } else {
                chosen = park_commit(w.index, key);
            }
            /* one_disarm: weft__future_remove_node, nothing to model */
            if (O::pass_on && chosen && ready())
                notify_one(); /* the wake-up was meant for new work */
            else if (O::help_fix && chosen)
                owed = true;
            if (!chosen)
                rl::yield(1, $); /* a spurious return or work seen: lib/ loops */
        }
    }

    /* weft_submit from outside the pool */
    void submit(Task *t)
    {
        RL_ASSERT((shutdown.load(rl::mo_acquire, $) & SHUT_CLOSED) == 0);
        t->payload($) = 100 + t->id; /* the task's data, before it is published */
        int rc = CORE ? core_push(t) : inject_push(SUBMIT_SHARD, t);
        RL_ASSERT(rc == 0);
        notify_one();
    }

    /* weft__future_finish's final CAS, then one_fire: weft__unpark_worker(worker 0) */
    void finish_future()
    {
        fstate.exchange(1, rl::mo_acq_rel, $);
        wake(0); /* weft__park_unpark */
    }

    void thread(unsigned index)
    {
        if (index == 0) {
            int next = 0;
            for (const char *c = g_cfg.script; *c; c++) {
                if (*c == 'S')
                    submit(&tasks[next++]);
                else if (*c == 'F')
                    finish_future();
            }
        } else {
            Worker &w = workers[index - 1];
            if (g_cfg.help && w.index == 0)
                help(w); /* then the waiting task's own code: leaves the pool */
            else
                worker_main(w);
        }
    }
};

template <class O>
model::Result run(rl::scheduler_type_e s, unsigned long long iterations, unsigned bound)
{
    return model::run<ParkTest<O, false>>(s, iterations, bound);
}
template <class O>
model::Result run_core(rl::scheduler_type_e s, unsigned long long iterations, unsigned bound)
{
    return model::run<ParkTest<O, true>>(s, iterations, bound);
}

#define CONFIG(fn, SCRIPT, HELP)                                                                   \
    void fn()                                                                                      \
    {                                                                                              \
        g_cfg = Config{SCRIPT, HELP};                                                              \
    }
CONFIG(c_s, "S", false)
CONFIG(c_ss, "SS", false)
CONFIG(c_sss, "SSS", false)
CONFIG(c_help_sf, "SF", true)
CONFIG(c_help_fs, "FS", true)
CONFIG(c_help_ssf, "SSF", true)
CONFIG(c_help_sfs, "SFS", true)

} // namespace

int main(int argc, char **argv)
{
    using model::Case;
    using model::KNOWN_BUG;
    using model::MUST_PASS;
    using model::NEGATIVE;
    const rl::scheduler_type_e BOUND = rl::sched_bound, RANDOM = rl::sched_random;
    std::vector<Case> cases = {
        /* the abstract queue (CORE), exhaustive within the preemption bound */
        {"core_submit1", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 3,
         "abstract queue, submitter S, 2 workers", c_s},
        {"core_submit2", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 2,
         "abstract queue, submitter SS, 2 workers", c_ss},
        {"core_help_fs", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 2,
         "abstract queue, submitter FS, worker 0 helping", c_help_fs},
        {"core_help_sfs", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 2,
         "abstract queue, submitter SFS, worker 0 helping", c_help_sfs},
        {"core_help_sf_fixed", false, MUST_PASS, run_core<HelpFix>, BOUND, 0, 2,
         "abstract queue, submitter SF, worker 0 helping, weft__help fixed", c_help_sf},
        {"core_help_ssf_fixed", false, MUST_PASS, run_core<HelpFix>, BOUND, 0, 2,
         "abstract queue, submitter SSF, worker 0 helping, weft__help fixed", c_help_ssf},
        /* lib/'s queues and deques */
        {"full_submit1", false, MUST_PASS, run<ParkLib>, BOUND, 0, 1,
         "injection queue + deques, submitter S, 2 workers", c_s},
        {"full_submit2", false, MUST_PASS, run<ParkLib>, BOUND, 0, 1,
         "injection queue + deques, submitter SS, 2 workers", c_ss},
        {"full_submit2_random", false, MUST_PASS, run<ParkLib>, RANDOM, 300000, 0,
         "injection queue + deques, submitter SS, 2 workers", c_ss},
        {"full_submit3_random", false, MUST_PASS, run<ParkLib>, RANDOM, 300000, 0,
         "injection queue + deques, submitter SSS, 2 workers", c_sss},
        {"full_help_fs", false, MUST_PASS, run<ParkLib>, BOUND, 0, 1,
         "injection queue + deques, submitter FS, worker 0 helping", c_help_fs},
        {"full_help_sfs_random", false, MUST_PASS, run<ParkLib>, RANDOM, 300000, 0,
         "injection queue + deques, submitter SFS, worker 0 helping", c_help_sfs},
        {"full_help_sf_fixed", false, MUST_PASS, run<HelpFix>, BOUND, 0, 1,
         "injection queue + deques, submitter SF, worker 0 helping, weft__help fixed", c_help_sf},
        {"full_help_ssf_fixed_random", false, MUST_PASS, run<HelpFix>, RANDOM, 300000, 0,
         "injection queue + deques, submitter SSF, worker 0 helping, weft__help fixed", c_help_ssf},
        /* the lost wake-up of weft__help's former pass-on rule (see the header): must fail */
        {"neg_help_old_pass_on", false, KNOWN_BUG, run_core<ParkLib>, BOUND, 0, 2,
         "abstract queue, submitter SF, worker 0 helping (former rule)", c_help_sf},
        {"neg_help_old_pass_on_full", false, KNOWN_BUG, run<ParkLib>, BOUND, 0, 1,
         "injection queue + deques, submitter SF, worker 0 helping (former rule)", c_help_sf},
        /* negative */
        {"neg_no_f1", false, NEGATIVE, run_core<NoF1>, BOUND, 0, 2,
         "abstract queue, submitter S, 2 workers, no F1", c_s},
        {"neg_no_f1_full", false, NEGATIVE, run<NoF1>, BOUND, 0, 1,
         "injection queue + deques, submitter S, 2 workers, no F1", c_s},
        {"neg_no_f2", false, NEGATIVE, run_core<NoF2>, BOUND, 0, 2,
         "abstract queue, submitter S, 2 workers, no F2", c_s},
        {"neg_no_f2_full", false, NEGATIVE, run<NoF2>, BOUND, 0, 1,
         "injection queue + deques, submitter S, 2 workers, no F2", c_s},
        {"neg_no_pass_on", false, NEGATIVE, run_core<NoPassOn>, BOUND, 0, 2,
         "abstract queue, submitter FS, worker 0 helping, no pass-on", c_help_fs},
        /* big: WEFT_MODEL_BIG=1 */
        {"big_core_submit2", true, MUST_PASS, run_core<ParkLib>, BOUND, 0, 3,
         "abstract queue, submitter SS, 2 workers", c_ss},
        {"big_core_help_sf_fixed", true, MUST_PASS, run_core<HelpFix>, BOUND, 0, 3,
         "abstract queue, submitter SF, worker 0 helping, weft__help fixed", c_help_sf},
        {"big_full_submit1", true, MUST_PASS, run<ParkLib>, BOUND, 0, 2,
         "injection queue + deques, submitter S, 2 workers", c_s},
        {"big_full_submit3_random", true, MUST_PASS, run<ParkLib>, RANDOM, 20000000, 0,
         "injection queue + deques, submitter SSS, 2 workers", c_sss},
        {"big_full_help_ssf_fixed_random", true, MUST_PASS, run<HelpFix>, RANDOM, 20000000, 0,
         "injection queue + deques, submitter SSF, worker 0 helping, weft__help fixed", c_help_ssf},
    };
    if (argc >= 7 && strcmp(argv[1], "custom") == 0) {
        g_cfg = Config{argv[2], atoi(argv[3]) != 0};
        rl::scheduler_type_e s = model::sched_from(argv[4]);
        unsigned bound = (unsigned)atoi(argv[5]);
        unsigned long long iters = strtoull(argv[6], nullptr, 10);
        std::string o = argc >= 8 ? argv[7] : "lib";
        bool core = argc >= 9 && strcmp(argv[8], "core") == 0;
        model::Result r;
        if (o == "lib")
            r = core ? run_core<ParkLib>(s, iters, bound) : run<ParkLib>(s, iters, bound);
        else if (o == "no_f1")
            r = core ? run_core<NoF1>(s, iters, bound) : run<NoF1>(s, iters, bound);
        else if (o == "no_f2")
            r = core ? run_core<NoF2>(s, iters, bound) : run<NoF2>(s, iters, bound);
        else if (o == "no_pass_on")
            r = core ? run_core<NoPassOn>(s, iters, bound) : run<NoPassOn>(s, iters, bound);
        else if (o == "help_fix")
            r = core ? run_core<HelpFix>(s, iters, bound) : run<HelpFix>(s, iters, bound);
        else
            return 2;
        std::printf("%s after %llu iterations, %.1f s\n", rl::test_result_str(r.res), r.iterations,
                    r.seconds);
        return r.pass ? 0 : 1;
    }
    return model::run_suite("park_relacy", cases, argc, argv);
}
