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
 *               load of idle; and_acq_rel claims a bit), weft__park_notify_all, weft__park_unpark,
 *               weft__park_notify_if_idle (park.h: relaxed load of idle, then notify_one)
 *     worker.c  run_worker's loop (the hand-back at a task boundary when want_back is up, with
 *               its pass-on of an owed wake-up; find_task, park_prepare, the exit test, the
 *               re-check weft__work_visible || weft__lend_wanted, cancel or commit),
 *               weft__thread_main, find_task, take_injected, steal_any, weft__work_visible,
 *               and weft__help with one_ops (first, has_private and publish: the waiting task's
 *               private frames shared) and block (arm, lend, sleep on the thread's own word
 *               until ready, reclaim)
 *     join.c    publish (weft__publish in a pool that does not measure work and span): the
 *               owner's relaxed reads of its private slots, weft__deque_publish (release),
 *               weft__park_notify_if_idle
 *     lend.c    weft__lend, weft__lend_reclaim, weft__lend_hand_back, weft__lend_await,
 *               weft__lend_close, grant, take_returning, weft__thread_wake; the mutex as a
 *               pthread mutex, the lists as flags and counts under it
 *     inject.c  one shard per worker, as weft_pool_create makes them: weft__inject_push (seq_cst
 *               count increment, closed check, link_in), pop_one, weft__inject_pop (relaxed count
 *               hint, trylock, release decrement), _maybe_nonempty (acquire), _drained (seq_cst);
 *               `head` is an rl::var under the consumer mutex (a pthread mutex: trylock fails
 *               only when it is held)
 *     deque.*   each worker's split deque, transcribed in deque_model.h (checked by
 *               deque_relacy.cpp)
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
 * SCENARIOS (threads: 0 submitter, 1 worker 0's own thread, 2 worker 1's, 3 a spare). The
 *   submitter runs a script: 'S' submits the next task, 'F' finishes the future that worker
 *   0's thread waits on.
 *   submitN       both workers' threads run the main loop; the submitter submits N tasks (S,
 *                 SS, SSS); the spare has nothing to do.
 *   help_*        worker 0's thread starts in a task that waits in weft__help for the future
 *                 the submitter finishes ('F': weft__future_finish's final CAS, then one_fire's
 *                 weft__thread_wake). It lends worker 0 to the spare (idle from the start, as
 *                 lib/'s reserve spare is after the first lend), sleeps on its own word, then asks for worker 0
 *                 back, which the spare hands back at a task boundary. The task then goes on
 *                 until every task has run before it returns to the loop: so a wake-up that
 *                 the spare consumed and neither used to look for work nor passed on is lost,
 *                 and the model deadlocks.
 *
 * BUG FOUND BY THIS MODEL IN THE LENDING PROTOCOL, FIXED IN lib/ BEFORE IT LANDED
 *   (1) A spare holding worker 0 took the exit test while worker 0's own thread was still
 *   blocked in its wait: it left the loop, and the thread never got its worker back (DEADLOCK,
 *   help scenarios). lib/ keeps a lent worker in the loop (!weft__lend_pending in the exit
 *   test). (2) A spare woken for new work (notify_one chose worker 0) that handed worker 0
 *   back before looking for work consumed the wake-up: the thread taking worker 0 back goes on
 *   with its task. lib/ passes an owed wake-up on (ParkLib::owed); neg_no_owed keeps the old
 *   rule and must fail.
 *
 * DEVIATIONS FROM lib/
 *   - keep_spinning() is modelled as zero rounds: spinning only repeats find_task before the
 *     park, which the scheduler's freedom to delay a thread covers. Its heuristics are left out
 *     with it: the head count of spinners and wake()'s relaxed timestamp (woken_at), which order
 *     nothing. Where lib/ loops back after
 *     seeing work it cannot take yet (weft__work_visible true while a push is half done or another
 *     consumer holds the shard), the model calls rl::yield so that Relacy's fair schedulers do not
 *     mistake the spin for a livelock.
 *   - Statistics, tracing, weft__help's deadline and the random first victim are left out (two
 *     workers: one victim). The future is one atomic word: ready() is its acquire load (wait.c
 *     finished()), arm() refuses once it is final (weft__future_add_node), and finishing always
 *     wakes worker 0's thread as if its node were registered (an extra wake-up is at worst a
 *     spurious return for it). It is a promise, which one_find (weft__claim) never offers to
 *     run, so help() has no find step.
 *   - The spare is idle from the start, as lib/'s reserve is once a first lend has started a
 *     spare (weft__lend starts one on demand; a spare that takes a worker starts the next
 *     reserve): weft__lend never starts a thread here (nor takes the path for one that could
 *     not start), and weft__lend_reserve is not modelled. The stop hooks and their barrier after the loop are
 *     left out (a thread ends when it leaves the loop; the last one out calls lend_close).
 *     join.c's readers of the epoch (leapfrogging) are not modelled.
 *   - Deques have 16 slots (lib/: 256), so take_injected takes at most room + 1 = 17 tasks.
 *   - The workers push only shared items (take_injected's pushes: tasks come from outside, and
 *     weft__enqueue's path from a worker is not modelled), never weft_offer's private frames.
 *     Their deques hold no private items, so help()'s has_private is false and publish never
 *     runs (it is transcribed all the same); publish's fill() of a frame weft_offer pushed
 *     inline (run NULL) is left out, and so is find_task's weft__frame_fill: the model's tasks
 *     are whole. deque_relacy.cpp checks private items, publishes and take_if.
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
 *   latest store or the one before; see deque_relacy.cpp). Iterations on this machine:
 *   core_submit1        S,   2 workers                  bound 2    1 572 328 executions
 *   core_submit2        SS,  2 workers                  bound 1       66 096
 *   core_help_fs/sf/sfs/ssf  worker 0's thread waits    bound 1      169 468 - 367 804
 *   full_submit1        S,   2 workers                  bound 1      657 632
 *   full_submit2_random / full_submit3_random           random       300 000 each
 *   full_help_sf        SF,  worker 0's thread waits    bound 1    1 662 256
 *   full_help_sfs_random / full_help_ssf_random         random       300 000 each
 *   (about 85 s in all). WEFT_MODEL_BIG=1 adds (each passes): big_core_submit1 (bound 3:
 *   55 097 816), big_core_submit2 (bound 2: 5 697 260), big_core_help_sf (bound 2: 16 907 848),
 *   big_core_help_fs (bound 2: 19 024 380), big_full_submit2 and big_full_help_fs (bound 1),
 *   big_full_submit3_random and big_full_help_ssf_random (20 000 000 each).
 *
 * NEGATIVE TESTS (each must fail: Relacy must report DEADLOCK, the lost wake-up)
 *   neg_no_f1          prepare without F1 (core bound 2, and neg_no_f1_full: full bound 1).
 *   neg_no_f2          notify_one without F2 (likewise).
 *   neg_no_owed        run_worker hands its worker back without passing on an owed wake-up,
 *                      scenario SF (core bound 1).
 *
 * RUNNING
 *   park_relacy                 the default suite; park_relacy NAME... | all
 *   WEFT_MODEL_BIG=1            also the big configurations
 *   WEFT_MODEL_TRACE=1          print a failing execution's history (always written to
 *                               park_relacy.NAME.trace)
 *   park_relacy custom SCRIPT HELP(0|1) full|bound|random BOUND ITERATIONS [VARIANT [core]]
 *                               one ad-hoc run (VARIANT: lib no_f1 no_f2 no_owed)
 */
#include "deque_model.h"
#include "model_runner.h"

namespace
{

using model::Deque;
using model::DequeOrders;

/* ---- the variants ---- */

struct ParkLib {
    static const bool f1 = true;    /* park.c prepare: weft_fence_seq_cst() F1 */
    static const bool f2 = true;    /* park.c notify_one: weft_fence_seq_cst() F2 */
    static const bool owed = true;  /* worker.c run_worker: an owed wake-up is passed on */
};
struct NoF1 : ParkLib {
    static const bool f1 = false;
};
struct NoF2 : ParkLib {
    static const bool f2 = false;
};
/* run_worker without the pass-on of an owed wake-up when it hands its worker back. */
struct NoOwed : ParkLib {
    static const bool owed = false;
};

/* ---- configuration ---- */

struct Config {
    const char *script; /* submitter: 'S' submit the next task, 'F' finish the future */
    bool help;          /* worker 0's thread starts in weft__help on that future */
};
Config g_cfg;

const unsigned NWORKERS = 2;
const unsigned NSHARDS = NWORKERS; /* weft_pool_create: inject_init(threads) */
const unsigned SUBMIT_SHARD = 1;   /* weft__inject_home of the submitting thread */
const int MAX_TASKS = 3;
const int64_t DEQUE_CAP = model::MODEL_MAX_CAP; /* lib/: 256 */
const int64_t INJECT_BATCH = 32;                /* worker.c */

const unsigned SHUT_CLOSED = 0x1, SHUT_EXIT = 0x4; /* pool.h */
const unsigned NTHREADS = NWORKERS + 1; /* the workers' own threads and one spare (lend.c) */
const int NONE = -1;

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
    rl::atomic<int> want_back;    /* lenders waiting to get it back (lend.c) */
    rl::atomic<unsigned> epoch;   /* bumped when it is lent */
    rl::var<int> holder;          /* under mu: the thread holding it */
    rl::var<int> nlenders;        /* the length of its lenders list (under mu) */
};

/* struct weft__thread: a pool thread (lend.c); the lists are flags, under mu */
struct Thr {
    rl::atomic<int> twake; /* its futex word (lib/: wake) */
    rl::var<int> slot;    /* granted: the worker it is to hold, NONE: leave */
    rl::var<bool> granted;
    rl::var<bool> back;     /* a lender whose wait is over */
    rl::var<int> lender_of; /* on that worker's lenders list, or NONE */
    rl::var<bool> idle;     /* on the idle list */
};

template <class O, bool CORE>
struct ParkTest : rl::test_suite<ParkTest<O, CORE>, 1 + NTHREADS> {
    Shard shard[NSHARDS];
    /* CORE: the abstract queue (see the header) */
    rl::atomic<long> ccount; /* as inject.c's count */
    PthreadMutex cmutex;     /* as inject.c's consumer mutex, and link_in's release/acquire */
    rl::var<int> chead, ctail;
    Worker workers[NWORKERS];
    rl::atomic<unsigned long> idle; /* park.c: the idle set, one word */
    rl::atomic<unsigned> spinners;  /* pool->spinners: always 0 here (keep_spinning, header) */
    rl::atomic<unsigned> shutdown;  /* pool->shutdown */
    rl::atomic<int> fstate;         /* the future worker 0 waits on: 0 pending, 1 final */
    rl::atomic<int> ndone;          /* tasks run (model only) */
    Thr thr[NTHREADS];              /* 0, 1: the workers' own threads; 2: the spare */
    PthreadMutex mu;           /* pool->lend.mu */
    rl::var<bool> closing;          /* pool->lend.closing */
    rl::atomic<int> exited;         /* pool->exited */
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
            workers[i].want_back.store(0, rl::mo_relaxed, $);
            workers[i].epoch.store(0, rl::mo_relaxed, $);
            workers[i].holder($) = (int)i;
            workers[i].nlenders($) = 0;
        }
        for (unsigned i = 0; i < NTHREADS; i++) { /* init_threads; the spare as a reserve */
            thr[i].twake.store(0, rl::mo_relaxed, $);
            bool own = i < NWORKERS;
            thr[i].slot($) = own ? (int)i : NONE;
            thr[i].granted($) = own;
            thr[i].back($) = false;
            thr[i].lender_of($) = NONE;
            /* the spare, with a wait only: weft__lend_reserve, weft__lend_enlist */
            thr[i].idle($) = !own && g_cfg.help;
        }
        closing($) = false;
        exited.store(0, rl::mo_relaxed, $);
        ccount.store(0, rl::mo_relaxed, $);
        chead($) = 0;
        ctail($) = 0;
        idle.store(0, rl::mo_relaxed, $);
        spinners.store(0, rl::mo_relaxed, $);
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

    /* weft__park_notify_if_idle (park.h): the idle set is one word */
    void notify_if_idle()
    {
        if (idle.load(rl::mo_relaxed, $) != 0) {
            notify_one();
            return;
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
            return t; /* t->run == NULL (a frame weft_offer pushed): never here, see the header */
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
        int done = ndone.fetch_add(1, rl::mo_acq_rel, $) + 1;
        futex_wake(ndone); /* for task_goes_on (model only) */
        if (done == ntasks) {
            /* check_drift: begin pool.destroy (weft_pool_destroy, compared by check_drift.py) */
            shutdown.fetch_or(SHUT_CLOSED, rl::mo_seq_cst, $);             /* weft_pool_shutdown */
            shutdown.fetch_or(SHUT_CLOSED | SHUT_EXIT, rl::mo_seq_cst, $); /* teardown */
            notify_all();
            /* check_drift: end pool.destroy */
        }
    }

    /* ---- lend.c ---- */

    /* weft__thread_wake */
    void thread_wake(int t)
    {
        thr[t].twake.fetch_add(1, rl::mo_release, $);
        futex_wake(thr[t].twake); /* weft__futex_wake(&t->wake, 1) */
    }

    /* grant, under mu */
    void grant(int t, int w)
    {
        thr[t].slot($) = w;
        thr[t].granted($) = true;
        if (w != NONE)
            workers[w].holder($) = t;
        thread_wake(t);
    }

    /* weft__lend_await */
    int lend_await(int me)
    {
        for (;;) {
            int key = thr[me].twake.load(rl::mo_acquire, $);
            mu.lock($);
            if (thr[me].granted($)) {
                thr[me].granted($) = false;
                int w = thr[me].slot($);
                mu.unlock($);
                return w;
            }
            mu.unlock($);
            futex_wait(thr[me].twake, key); /* weft__futex_wait(&me->wake, key, -1) */
        }
    }

    /* take_returning, under mu */
    int take_returning(Worker &w)
    {
        for (unsigned t = 0; t < NTHREADS; t++) {
            if (thr[t].lender_of($) == (int)w.index && thr[t].back($)) {
                thr[t].lender_of($) = NONE;
                w.nlenders($) = w.nlenders($) - 1; /* weft__list_remove */
                thr[t].back($) = false;
                w.want_back.store(w.want_back.load(rl::mo_relaxed, $) - 1, rl::mo_release, $);
                return (int)t;
            }
        }
        return NONE;
    }

    /* weft__lend (the spare is the reserve: no thread is started here) */
    bool lend(Worker &w, int me)
    {
        mu.lock($);
        RL_ASSERT(w.holder($) == me);
        int to = take_returning(w);
        if (to == NONE) {
            for (unsigned t = 0; t < NTHREADS && to == NONE; t++) {
                if (thr[t].idle($)) {
                    thr[t].idle($) = false;
                    to = (int)t;
                }
            }
        }
        if (to == NONE) {
            mu.unlock($);
            return false;
        }
        thr[me].back($) = false;
        thr[me].lender_of($) = (int)w.index;
        w.nlenders($) = w.nlenders($) + 1; /* weft__list_push_head */
        w.epoch.fetch_add(1, rl::mo_release, $);
        grant(to, (int)w.index);
        mu.unlock($);
        return true;
    }

    /* weft__lend_reclaim */
    void lend_reclaim(Worker &w, int me)
    {
        mu.lock($);
        if (!thr[me].granted($)) {
            thr[me].back($) = true;
            w.want_back.store(w.want_back.load(rl::mo_relaxed, $) + 1, rl::mo_release, $);
        }
        mu.unlock($);
        wake(w.index); /* weft__park_unpark */
        int back = lend_await(me);
        RL_ASSERT(back == (int)w.index);
    }

    /* weft__lend_hand_back */
    bool lend_hand_back(Worker &w, int me)
    {
        mu.lock($);
        RL_ASSERT(w.holder($) == me);
        int to = take_returning(w);
        if (to != NONE) {
            thr[me].idle($) = true;
            grant(to, (int)w.index);
        }
        mu.unlock($);
        return to != NONE;
    }

    /* weft__lend_close */
    void lend_close()
    {
        mu.lock($);
        closing($) = true;
        for (unsigned t = 0; t < NTHREADS; t++) {
            if (thr[t].idle($)) {
                thr[t].idle($) = false;
                grant((int)t, NONE);
            }
        }
        mu.unlock($);
    }

    /* weft__lend_pending: read by w's holder, the only thread that changes it */
    bool lend_pending(Worker &w)
    {
        return w.nlenders($) != 0;
    }

    /* weft__lend_wanted */
    bool lend_wanted(Worker &w)
    {
        return w.want_back.load(rl::mo_acquire, $) != 0;
    }

    /* ---- worker.c ---- */

    enum { HANDED_BACK, LEFT };

    /* run_worker's loop */
    int run_worker(int me, Worker &w)
    {
        bool owed = false;
        for (;;) {
            if (lend_wanted(w) && lend_hand_back(w, me)) {
                if (O::owed && owed)
                    notify_one();
                return HANDED_BACK;
            }
            Task *t = find_task(w);
            owed = false;
            if (t != nullptr) {
                run_task(w, t);
                continue;
            }
            /* keep_spinning(): zero rounds (see the header) */
            int key = park_prepare(w.index);
            if ((shutdown.load(rl::mo_seq_cst, $) & SHUT_EXIT) && inject_drained() &&
                !work_visible() && !lend_pending(w)) {
                park_cancel(w.index);
                break;
            }
            if (work_visible() || lend_wanted(w)) {
                owed = park_cancel(w.index);
                rl::yield(1, $); /* lib/ spins here until the work can be taken */
                continue;
            }
            owed = park_commit(w.index, key); /* park(w, key, -1) */
        }
        return LEFT;
    }

    /* weft__thread_main, without the hooks and their barrier (see the header) */
    void thread_main(int me)
    {
        thread_loop(me, lend_await(me));
    }

    /* its loop, from worker w on */
    void thread_loop(int me, int w)
    {
        while (w != NONE) {
            if (run_worker(me, workers[w]) == LEFT) {
                if (exited.fetch_add(1, rl::mo_acq_rel, $) + 1 == (int)NWORKERS)
                    lend_close(); /* idle spares leave */
                return;
            }
            w = lend_await(me);
        }
    }

    /* the future: wait.c finished() (one_ready), one_arm (weft__future_add_node refuses a final
     * future) */
    bool ready()
    {
        return fstate.load(rl::mo_acquire, $) != 0;
    }
    bool arm()
    {
        return fstate.load(rl::mo_acquire, $) == 0;
    }

    /* block */
    void block(Worker &w, int me)
    {
        if (!arm())
            return;
        bool lent = lend(w, me);
        for (;;) {
            int key = thr[me].twake.load(rl::mo_acquire, $);
            if (ready())
                break;
            futex_wait(thr[me].twake, key); /* weft__futex_wait(&me->wake, key, -1) */
        }
        if (lent)
            lend_reclaim(w, me);
        /* one_disarm: weft__future_remove_node, nothing to model */
    }

    /* ---- join.c ---- */

    /* publish (weft__publish) in a pool that does not measure work and span (ws false). Never
     * runs here: the model's deques hold no private items (see the header). */
    void publish(Worker &w)
    {
        Deque<DequeOrders, Task> &d = w.deque;
        for (int64_t i = d.split.load(rl::mo_relaxed, $), b = d.bottom.load(rl::mo_relaxed, $);
             i < b; i++) {
            Task *t = d.slot[i & d.mask].load(rl::mo_relaxed, $);
            RL_ASSERT(t != nullptr); /* t->run == NULL: fill(), for a frame weft_offer pushed */
        }
        w.deque.publish(); /* release: publishes the fills */
        if (spinners.load(rl::mo_relaxed, $) != 0) /* a spinning worker will find them */
            return;
        notify_if_idle();
    }

    /* weft__help with one_ops, deadline -1 */
    void help(Worker &w, int me)
    {
        /* the waiting task's private frames made whole and shared */
        if (w.deque.has_private())
            publish(w);
        for (;;) {
            for (;;) {
                if (ready())
                    return;
                /* one_find: weft__claim refuses a future that is no task (the model's is a
                 * promise) */
                if (lend_wanted(w) || true) /* keep_spinning() false: zero rounds */
                    break;
            }
            block(w, me);
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

    /* weft__future_finish's final CAS, then one_fire: weft__thread_wake(worker 0's thread) */
    void finish_future()
    {
        fstate.exchange(1, rl::mo_acq_rel, $);
        thread_wake(0);
    }

    /* The waiting task's own code, after its wait: it runs until every task has (so a task
     * left queued with every worker asleep deadlocks the model), then returns to the pool. */
    void task_goes_on()
    {
        for (;;) {
            int n = ndone.load(rl::mo_acquire, $);
            if (n == ntasks)
                return;
            futex_wait(ndone, n);
        }
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
        } else if (index == 1 && g_cfg.help) {
            /* worker 0's thread, in a task that waits (weft__help), then goes on */
            int w = lend_await(0); /* granted from the start */
            help(workers[w], 0);
            task_goes_on();
            thread_loop(0, w); /* the task returned: back to the scheduling loop */
        } else if (index - 1 < NWORKERS || g_cfg.help) {
            thread_main((int)index - 1); /* a worker's own thread, or the spare */
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
        {"core_submit1", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 2,
         "abstract queue, submitter S, 2 workers", c_s},
        {"core_submit2", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 1,
         "abstract queue, submitter SS, 2 workers", c_ss},
        {"core_help_fs", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 1,
         "abstract queue, submitter FS, worker 0's thread waits", c_help_fs},
        {"core_help_sf", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 1,
         "abstract queue, submitter SF, worker 0's thread waits", c_help_sf},
        {"core_help_sfs", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 1,
         "abstract queue, submitter SFS, worker 0's thread waits", c_help_sfs},
        {"core_help_ssf", false, MUST_PASS, run_core<ParkLib>, BOUND, 0, 1,
         "abstract queue, submitter SSF, worker 0's thread waits", c_help_ssf},
        /* lib/'s queues and deques */
        {"full_submit1", false, MUST_PASS, run<ParkLib>, BOUND, 0, 1,
         "injection queue + deques, submitter S, 2 workers", c_s},
        {"full_submit2_random", false, MUST_PASS, run<ParkLib>, RANDOM, 300000, 0,
         "injection queue + deques, submitter SS, 2 workers", c_ss},
        {"full_submit3_random", false, MUST_PASS, run<ParkLib>, RANDOM, 300000, 0,
         "injection queue + deques, submitter SSS, 2 workers", c_sss},
        {"full_help_sf", false, MUST_PASS, run<ParkLib>, BOUND, 0, 1,
         "injection queue + deques, submitter SF, worker 0's thread waits", c_help_sf},
        {"full_help_sfs_random", false, MUST_PASS, run<ParkLib>, RANDOM, 300000, 0,
         "injection queue + deques, submitter SFS, worker 0's thread waits", c_help_sfs},
        {"full_help_ssf_random", false, MUST_PASS, run<ParkLib>, RANDOM, 300000, 0,
         "injection queue + deques, submitter SSF, worker 0's thread waits", c_help_ssf},
        /* negative */
        {"neg_no_f1", false, NEGATIVE, run_core<NoF1>, BOUND, 0, 2,
         "abstract queue, submitter S, 2 workers, no F1", c_s},
        {"neg_no_f1_full", false, NEGATIVE, run<NoF1>, BOUND, 0, 1,
         "injection queue + deques, submitter S, 2 workers, no F1", c_s},
        {"neg_no_f2", false, NEGATIVE, run_core<NoF2>, BOUND, 0, 2,
         "abstract queue, submitter S, 2 workers, no F2", c_s},
        {"neg_no_f2_full", false, NEGATIVE, run<NoF2>, BOUND, 0, 1,
         "injection queue + deques, submitter S, 2 workers, no F2", c_s},
        {"neg_no_owed", false, NEGATIVE, run_core<NoOwed>, BOUND, 0, 1,
         "abstract queue, submitter SF, worker 0's thread waits, no pass-on at hand-back",
         c_help_sf},
        /* big: WEFT_MODEL_BIG=1 */
        {"big_core_submit1", true, MUST_PASS, run_core<ParkLib>, BOUND, 0, 3,
         "abstract queue, submitter S, 2 workers", c_s},
        {"big_core_submit2", true, MUST_PASS, run_core<ParkLib>, BOUND, 0, 2,
         "abstract queue, submitter SS, 2 workers", c_ss},
        {"big_core_help_sf", true, MUST_PASS, run_core<ParkLib>, BOUND, 0, 2,
         "abstract queue, submitter SF, worker 0's thread waits", c_help_sf},
        {"big_core_help_fs", true, MUST_PASS, run_core<ParkLib>, BOUND, 0, 2,
         "abstract queue, submitter FS, worker 0's thread waits", c_help_fs},
        {"big_full_submit2", true, MUST_PASS, run<ParkLib>, BOUND, 0, 1,
         "injection queue + deques, submitter SS, 2 workers", c_ss},
        {"big_full_help_fs", true, MUST_PASS, run<ParkLib>, BOUND, 0, 1,
         "injection queue + deques, submitter FS, worker 0's thread waits", c_help_fs},
        {"big_full_submit3_random", true, MUST_PASS, run<ParkLib>, RANDOM, 20000000, 0,
         "injection queue + deques, submitter SSS, 2 workers", c_sss},
        {"big_full_help_ssf_random", true, MUST_PASS, run<ParkLib>, RANDOM, 20000000, 0,
         "injection queue + deques, submitter SSF, worker 0's thread waits", c_help_ssf},
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
        else if (o == "no_owed")
            r = core ? run_core<NoOwed>(s, iters, bound) : run<NoOwed>(s, iters, bound);
        else
            return 2;
        std::printf("%s after %llu iterations, %.1f s\n", rl::test_result_str(r.res), r.iterations,
                    r.seconds);
        return r.pass ? 0 : 1;
    }
    return model::run_suite("park_relacy", cases, argc, argv);
}
