/* SPDX-License-Identifier: MIT */
/*
 * Spin model of weft's parking protocol (lib/park.c, lib/worker.c, lib/inject.c, lib/pool.c):
 * no lost wake-up. Promela is sequentially consistent, so this checks the protocol's logic
 * (who announces, who re-checks, who claims whom, the pass-on rule); the memory orders and
 * fences are checked by park_relacy.cpp.
 *
 * WHAT IS MODELLED (2 workers, 1 outside submitter, NTASKS tasks, default 2)
 *   The injection queue as inject.c has it: `count` (incremented before the push, decremented
 *   after the pop), the linked tasks (`linked`, one counter: which task is which does not
 *   matter here) and the consumer mutex (`consumer`, taken with trylock). Workers' deques are
 *   left out (park_relacy.cpp has them). Each worker has a futex word `word[i]`; the idle set is
 *   the bitmap `idle`.
 *   Every statement is atomic in Promela; each lib/ atomic access is one statement here.
 *   Left out, as in park_relacy.cpp: a CANCEL shutdown and the `taking` handshake it relies on
 *   (acquire_task, decide), max_pending (the page's budget), wake()'s relaxed timestamp
 *   (woken_at, for the spinning heuristic; it orders nothing), teardown's store of
 *   nthreads, the stop hooks' barrier, and the epoch's readers (join.c's leapfrogging).
 *
 *   lib/                                     here
 *   worker.c run_worker's loop               inline run_worker, run by proctype Thread
 *     weft__lend_wanted -> hand back         want_back[i] != 0 -> lend_hand_back; an owed
 *                                            wake-up is passed on (notify_one)
 *     find_task -> take_injected ->          find_task (inline)
 *       inject.c weft__inject_pop            (count hint, trylock, pop, unlock, count -= n)
 *     keep_spinning                          zero rounds (spinning only delays the park)
 *     weft__park_prepare:                    key = word[i]; idle = idle | bit;  (F1: SC)
 *       key = ld_acquire(word); or(idle); F1
 *     exit test: EXIT && drained && !visible exiting, then count == 0, then count == 0,
 *       && !weft__lend_pending               then nlenders[i] == 0
 *     weft__work_visible || lend_wanted      count > 0, or want_back[i] != 0 -> leave
 *       -> cancel (owed = chosen), continue  (owed = chosen); goto top
 *     park -> weft__park_commit:             (word[i] != key): blocks while word[i] == key,
 *       futex_wait(word, key); leave()       the futex's atomic compare-and-sleep; then leave
 *   worker.c weft__thread_main               proctype Thread: lend_await, then the loop;
 *                                            the last worker out calls lend_close
 *   park.c leave: and(~bit), chosen          leave (inline), one atomic statement
 *   park.c notify_one: F2; v = load(idle);   notify_one (inline): v = idle, then for each set
 *     lowest bit: old = and(~bit); if set:   bit from the lowest: old = idle; idle &= ~bit; if
 *     wake: word += 1, futex_wake            it was set, word[j]++ (which ends the wait)
 *   park.c notify_all (teardown)             notify_all (inline)
 *   lend.c weft__lend, _reclaim, _hand_back, inlines of the same names; the mutex `mu` taken
 *     _await, _close, grant, take_returning, with `atomic { mu == 0 -> mu = 1 }`; the lists as
 *     weft__thread_wake                      flags per thread (lender_of, tidle) under mu
 *   pool.c weft_submit (outside):            proctype Submitter: count++, linked++,
 *     inject_push: count += 1, link_in;      notify_one
 *     weft__park_notify_one
 *   worker.c weft__help (worker 0's thread,  inline help, run by proctype Helper
 *     HELP) with block: arm, lend, sleep on
 *     its own word, reclaim
 *
 * THE PROPERTY: no lost wake-up.
 *   The worker that runs the last task shuts the pool down as weft_pool_destroy does (sets
 *   EXIT, notify_all), and workers leave by lib/'s exit test. So every execution must end with
 *   all processes at their end, every task run once (asserted). A state where some worker
 *   sleeps for good with a task queued is a deadlock: Spin reports an invalid end state
 *   (safety run, pan compiled with -DNOCLAIM). The LTL claim `live`,
 *   [] (count > 0 -> <> count == 0), is checked too (pan -a -f -N live: acceptance cycles
 *   under weak fairness; a final deadlock counts as stuttering forever).
 *
 * CONFIGURATIONS (cpp macros; tests/model/run_spin.sh runs each and knows what to expect)
 *   (none)        both workers' threads in the main loop: must pass.
 *   REORDER       negative: the worker re-checks for work BEFORE announcing itself in the idle
 *                 set (announce and re-check swapped): must fail.
 *   HELP          worker 0's thread starts in a task that waits (weft__help) for a future that
 *                 the submitter finishes at a point it chooses (any point of its script: Spin
 *                 explores all). It lends worker 0 to the spare (thread 2, idle from the start
 *                 as lib/'s reserve is after a first lend) and sleeps on its own word; once the future is final it
 *                 asks for worker 0 back, and the spare hands it back at a task boundary. The
 *                 task then goes on until every task has run, so a wake-up that the spare
 *                 consumed and neither used nor passed on deadlocks the model. Must pass.
 *   HELP NO_OWED  negative: run_worker hands the worker back without passing on an owed
 *                 wake-up: must fail.
 *   NTASKS=n      the number of tasks the submitter submits (default 2).
 *
 * The configurations run_spin.sh runs (NAME EXPECT MACROS):
 * @run main_1task pass -DNTASKS=1
 * @run main_2tasks pass -DNTASKS=2
 * @run main_3tasks pass -DNTASKS=3
 * @run neg_reorder fail -DREORDER
 * @run help_1task pass -DHELP -DNTASKS=1
 * @run neg_help_no_owed fail -DHELP -DNO_OWED -DNTASKS=1
 * and with WEFT_MODEL_BIG=1:
 * @run-big help_2tasks pass -DHELP -DNTASKS=2
 * @run-big main_4tasks pass -DNTASKS=4
 *
 * RESULTS (Spin 6.5.2, this machine; states stored by the safety run)
 *   main_1task 52 752; main_2tasks 350 324; help_1task 5 246 448; help_2tasks 31 306 299: no
 *   error. neg_reorder: invalid end state after 16 805 states (a worker sleeps, a task
 *   queued). neg_help_no_owed: invalid end state after 14 609 states (the trail: worker 1's
 *   thread parks; the spare, holding worker 0, parks; the submitter pushes a task, claims
 *   worker 0 and wakes the spare; the future finishes and worker 0's thread asks for worker 0
 *   back; the spare hands it back without looking for work, and nobody wakes worker 1).
 *   Earlier, the helping wait (which ran any task while waiting) had the same lost wake-up
 *   in its own form: its pass-on rule came from this model.
 */
#define NW 2
#define NT 3        /* threads: 0, 1 the workers' own (lib/ pool->threads), 2 a spare */
#define NONE 255
#ifndef NTASKS
#define NTASKS 2
#endif

byte count = 0;     /* inject.c shard->count: queued or being pushed */
byte linked = 0;    /* tasks linked into the queue, not yet popped */
bool consumer = 0;  /* inject.c shard->consumer (the mutex) */
byte idle = 0;      /* park.c p->idle: bit i = worker i parked or about to */
byte word[NW];      /* park.c p->words[i]: the workers' futex words */
bool exiting = 0;   /* pool->shutdown & WEFT_SHUT_EXIT */
bool fdone = 0;     /* HELP: the future worker 0's thread waits on has finished */
byte ran = 0;       /* tasks run (model only) */
/* lend.c */
bool mu = 0;        /* pool->lend.mu */
byte want_back[NW]; /* w->want_back */
byte epoch[NW];     /* w->epoch */
byte nlenders[NW];  /* w->lenders, its length; under mu */
byte twake[NT];     /* t->wake: the threads' futex words */
bool granted[NT];   /* under mu */
byte slot[NT];      /* under mu */
bool back[NT];      /* under mu */
byte lender_of[NT]; /* under mu: on that worker's lenders list, or NONE */
bool tidle[NT];     /* under mu: on the idle list */
bool closing = 0;   /* under mu */
byte exited = 0;    /* pool->exited */

/* park.c leave(): and_acq_rel(&idle, ~bit); chosen when a waker had cleared the bit first */
inline leave(i, chosen) {
    atomic { chosen = ((idle & (1 << i)) == 0); idle = idle & ~(1 << i) }
}

/* park.c wake(): add_release(word, 1); futex_wake(word, 1) */
inline wake(j) {
    word[j]++
}

/* park.c weft__park_notify_one */
inline notify_one(v, lowbit, old) {
    /* F2: sequential consistency */
    v = idle;
    do
    :: v == 0 -> break
    :: else ->
        lowbit = 1;
        do
        :: (v & lowbit) == 0 -> lowbit = lowbit << 1
        :: else -> break
        od;
        atomic { old = idle; idle = idle & ~lowbit };
        if
        :: (old & lowbit) != 0 ->
            if
            :: lowbit == 1 -> wake(0)
            :: else -> wake(1)
            fi;
            break
        :: else -> v = old & ~lowbit
        fi
    od
}

/* park.c weft__park_notify_all */
inline notify_all() {
    wake(0);
    wake(1)
}

/* worker.c find_task on the injection queue: inject.c weft__inject_pop(wait = false) of one
 * task (take_injected), the count a hint read first */
inline find_task(got) {
    got = 0;
    if
    :: count == 0 -> skip
    :: else ->
        if
        :: atomic { consumer == 0 -> consumer = 1 } ->   /* trylock succeeded */
            if
            :: linked > 0 -> linked--; got = 1
            :: else -> skip                            /* a push is half done */
            fi;
            consumer = 0;
            if
            :: got -> count--
            :: else -> skip
            fi
        :: else -> skip                                /* another consumer: give up */
        fi
    fi
}

/* weft__run_task; after the last task, weft_pool_destroy: EXIT, then notify_all */
inline run_task() {
    d_step { ran++; assert(ran <= NTASKS); last = (ran == NTASKS) };
    if
    :: last ->
        /* check_drift: begin pool.destroy (weft_pool_destroy, compared by check_drift.py) */
        exiting = 1; notify_all()
        /* check_drift: end pool.destroy */
    :: else -> skip
    fi
}

/* ---- lend.c ---- */

/* weft__thread_wake: add_release(&t->wake, 1); futex_wake */
inline thread_wake(t) {
    twake[t]++
}

/* grant, under mu */
inline grant(t, w) {
    slot[t] = w;
    granted[t] = 1;
    thread_wake(t)
}

/* weft__lend_await: the worker granted, NONE to leave */
inline lend_await(me, w, key) {
    do
    :: key = twake[me];
        atomic { mu == 0 -> mu = 1 };
        if
        :: granted[me] -> granted[me] = 0; w = slot[me]; mu = 0; break
        :: else -> mu = 0
        fi;
        (twake[me] != key)             /* futex_wait(&me->wake, key): sleeps while equal */
    od
}

/* take_returning, under mu: the thread that lent w and waits to get it back, or NONE */
inline take_returning(w, to, t, v) {
    to = NONE;
    t = 0;
    do
    :: t < NT && lender_of[t] == w && back[t] ->
        lender_of[t] = NONE; nlenders[w]--; back[t] = 0;
        v = want_back[w];              /* ld_relaxed, then st_release of one less: under mu */
        want_back[w] = v - 1;
        to = t; break
    :: t < NT && !(lender_of[t] == w && back[t]) -> t++
    :: t == NT -> break
    od
}

/* weft__lend: the spare is the reserve, idle from the start (no thread starts here) */
inline lend(w, me, lent, to, t, v) {
    atomic { mu == 0 -> mu = 1 };
    take_returning(w, to, t, v);
    if
    :: to == NONE ->
        t = 0;
        do
        :: t < NT && tidle[t] -> tidle[t] = 0; to = t; break
        :: t < NT && !tidle[t] -> t++
        :: t == NT -> break
        od
    :: else -> skip
    fi;
    if
    :: to == NONE -> mu = 0; lent = 0
    :: else ->
        back[me] = 0; lender_of[me] = w; nlenders[w]++;
        epoch[w]++;                    /* add_release(&w->epoch, 1) */
        grant(to, w);
        mu = 0; lent = 1
    fi
}

/* weft__lend_reclaim */
inline lend_reclaim(w, me, key, got_w, v) {
    atomic { mu == 0 -> mu = 1 };
    if
    :: !granted[me] -> back[me] = 1; v = want_back[w]; want_back[w] = v + 1   /* under mu */
    :: else -> skip
    fi;
    mu = 0;
    wake(w);                           /* weft__park_unpark */
    lend_await(me, got_w, key);
    assert(got_w == w)
}

/* weft__lend_hand_back */
inline lend_hand_back(w, me, handed, to, t, v) {
    atomic { mu == 0 -> mu = 1 };
    take_returning(w, to, t, v);
    if
    :: to != NONE -> tidle[me] = 1; grant(to, w); handed = 1
    :: else -> handed = 0
    fi;
    mu = 0
}

/* weft__lend_close */
inline lend_close(t) {
    atomic { mu == 0 -> mu = 1 };
    closing = 1;
    t = 0;
    do
    :: t < NT -> if :: tidle[t] -> tidle[t] = 0; grant(t, NONE) :: else -> skip fi; t++
    :: t == NT -> break
    od;
    mu = 0
}

/* ---- worker.c ---- */

/* run_worker's loop for worker i, held by thread me; ends with handed = 1 (handed back) or
 * handed = 0 (left) */
inline run_worker(i, me, handed) {
    owed = 0;
top:
    if                             /* weft__lend_wanted(w) && weft__lend_hand_back(w, me) */
    :: want_back[i] != 0 ->
        lend_hand_back(i, me, handed, to, t, v);
        if
        :: handed ->
#ifndef NO_OWED
            if
            :: owed -> notify_one(v, lowbit, old)
            :: else -> skip
            fi;
#endif
            goto out
        :: else -> skip
        fi
    :: else -> skip
    fi;
    find_task(got);
    owed = 0;
    if
    :: got -> run_task(); goto top
    :: else -> skip
    fi;
#ifndef REORDER
    key = word[i];                 /* weft__park_prepare: ld_acquire(word) */
    idle = idle | (1 << i);        /* or_seq_cst(idle, bit); F1 */
    if                             /* exit test, then !weft__lend_pending(w) */
    :: exiting && count == 0 && count == 0 && nlenders[i] == 0 ->
        leave(i, chosen); handed = 0; goto out
    :: else -> skip
    fi;
    if                             /* weft__work_visible || weft__lend_wanted */
    :: count > 0 -> leave(i, owed); goto top
    :: else ->
        if
        :: want_back[i] != 0 -> leave(i, owed); goto top
        :: else -> skip
        fi
    fi;
#else
    /* negative: the re-check happens before the worker announces itself */
    key = word[i];
    if
    :: exiting && count == 0 && count == 0 && nlenders[i] == 0 -> handed = 0; goto out
    :: else -> skip
    fi;
    if
    :: count > 0 -> goto top
    :: else -> skip
    fi;
    idle = idle | (1 << i);
#endif
    (word[i] != key);              /* futex_wait(word, key): sleeps while word == key */
    leave(i, owed);
    goto top;
out:
    skip
}

/* weft__thread_main's loop from worker w on (hooks and their barrier left out) */
inline thread_loop(me, w) {
    do
    :: w == NONE -> break
    :: else ->
        run_worker(w, me, handed);
        if
        :: !handed ->
            assert(count == 0);
            d_step { exited++; last = (exited == NW) };
            if
            :: last -> lend_close(t)
            :: else -> skip
            fi;
            break
        :: else -> lend_await(me, w, key)
        fi
    od
}

/* a worker's own thread (and the spare: me == 2) */
proctype Thread(byte me) {
    byte key, v, lowbit, old, to, t, w;
    bool got, chosen, last, owed, handed;
    lend_await(me, w, key);
    thread_loop(me, w)
}

#ifdef HELP
/* worker.c weft__help with one_ops for worker 0's thread; one_find offers nothing (the future
 * is a promise); keep_spinning is zero rounds */
inline help(w, me) {
    do
    :: fdone -> break              /* ops->ready(ctx) */
    :: else ->
        if                         /* weft__lend_wanted(w) || !keep_spinning: both block */
        :: want_back[w] != 0 -> skip
        :: else -> skip
        fi;
        /* block */
        if                         /* ops->arm(): refused once the future is final */
        :: fdone -> skip
        :: else ->
            lend(w, me, lent, to, t, v);
            do
            :: key = twake[me];
                if
                :: fdone -> break  /* ops->ready(ctx) */
                :: else -> (twake[me] != key)   /* futex_wait(&me->wake, key) */
                fi
            od;
            if
            :: lent -> lend_reclaim(w, me, key, got_w, v)
            :: else -> skip
            fi
        fi
    od
}

/* worker 0's thread: a task that waits on the future, then goes on until every task has run
 * (so a task left queued with every worker asleep is a deadlock), then returns to the loop */
proctype Helper() {
    byte key, v, lowbit, old, to, t, w, got_w;
    bool got, chosen, last, owed, handed, lent;
    lend_await(0, w, key);
    help(w, 0);
    (ran == NTASKS);
    thread_loop(0, w)
}
#endif

/* pool.c weft_submit from outside the pool, NTASKS times; with HELP, the future is finished
 * (weft__future_finish, then one_fire: weft__thread_wake of worker 0's thread) at any point */
proctype Submitter() {
    byte n = 0, v, lowbit, old;
    bool finished = 0;
    do
    :: n < NTASKS ->
        count++;                   /* inject_push: add_seq_cst(count, 1) */
        linked++;                  /* link_in */
        notify_one(v, lowbit, old);   /* weft__park_notify_one */
        n++
#ifdef HELP
    :: !finished -> fdone = 1; thread_wake(0); finished = 1
    :: n == NTASKS && finished -> break
#else
    :: n == NTASKS -> break
#endif
    od
}

init {
    atomic {
        byte k;
        for (k : 0 .. NT - 1) {
            lender_of[k] = NONE;
            slot[k] = NONE
        }
        slot[0] = 0; granted[0] = 1;   /* init_threads */
        slot[1] = 1; granted[1] = 1;
#ifdef HELP
        tidle[2] = 1;                  /* weft__lend_reserve, weft__lend_enlist */
        run Submitter();
        run Helper();
        run Thread(1);
        run Thread(2)
#else
        run Submitter();
        run Thread(0);
        run Thread(1)
#endif
    }
}

ltl live { [] ((count > 0) -> <> (count == 0)) }
