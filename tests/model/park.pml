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
 *   (acquire_task, decide), max_pending (the page's pending count), and teardown's store of nthreads.
 *
 *   lib/                                     here
 *   worker.c weft__worker_main loop          proctype Worker
 *     find_task -> take_injected ->          find_task (inline)
 *       inject.c weft__inject_pop            (count hint, trylock, pop, unlock, count -= n)
 *     keep_spinning                          zero rounds (spinning only delays the park)
 *     weft__park_prepare:                    key = word[i]; idle = idle | bit;  (F1: SC)
 *       key = ld_acquire(word); or(idle); F1
 *     exit test: EXIT && drained && !visible exiting, then count == 0, then count == 0
 *     weft__work_visible -> cancel, continue count > 0 -> leave; goto top
 *     park -> weft__park_commit:             (word[i] != key): blocks while word[i] == key,
 *       futex_wait(word, key); leave()       the futex's atomic compare-and-sleep; then leave
 *   park.c leave: and(~bit), chosen          leave (inline), one atomic statement
 *   park.c notify_one: F2; v = load(idle);   notify_one (inline): v = idle, then for each set
 *     lowest bit: old = and(~bit); if set:   bit from the lowest: old = idle; idle &= ~bit; if
 *     wake: word += 1, futex_wake            it was set, word[j]++ (which ends the wait)
 *   park.c notify_all (teardown)             notify_all (inline)
 *   pool.c weft_submit (outside):            proctype Submitter: count++, linked++,
 *     inject_push: count += 1, link_in;      notify_one
 *     weft__park_notify_one
 *   worker.c weft__help (worker 0, HELP)     proctype Helper
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
 *   (none)        both workers in the main loop: must pass.
 *   REORDER       negative: the worker re-checks for work BEFORE announcing itself in the idle
 *                 set (announce and re-check swapped): must fail.
 *   HELP          worker 0 starts in weft__help waiting for a future that the submitter
 *                 finishes at a point it chooses (any point of its script: Spin explores all);
 *                 when the wait returns, worker 0 leaves (its thread ends: the waiting task's
 *                 own code may run for any time without coming back to the pool). lib/ as it
 *                 is: fails (the lost wake-up in weft__help described in park_relacy.cpp).
 *   HELP FIX      the proposed fix (an owed wake-up is passed on if the wait ends before the
 *                 worker looked for work): must pass.
 *   HELP NO_PASS_ON  negative: without the pass-on rule: must fail.
 *   NTASKS=n      the number of tasks the submitter submits (default 2).
 *
 * The configurations run_spin.sh runs (NAME EXPECT MACROS):
 * @run main_1task pass -DNTASKS=1
 * @run main_2tasks pass -DNTASKS=2
 * @run main_3tasks pass -DNTASKS=3
 * @run neg_reorder fail -DREORDER
 * @run neg_help_old_pass_on fail -DHELP
 * @run help_fixed pass -DHELP -DFIX
 * @run neg_help_no_pass_on fail -DHELP -DNO_PASS_ON
 * and with WEFT_MODEL_BIG=1:
 * @run-big help_fixed_3tasks pass -DHELP -DFIX -DNTASKS=3
 * @run-big main_4tasks pass -DNTASKS=4
 *
 * RESULTS (Spin 6.5.2, this machine; states stored by the safety run / the LTL run)
 *   main_1task 25 960 / 33 790; main_2tasks 185 940 / 281 523; main_3tasks 767 645 /
 *   1 257 710: no error. help_fixed 731 378 / 1 133 008: no error.
 *   neg_reorder: invalid end state (a worker sleeps, a task queued) and acceptance cycle.
 *   neg_help_old_pass_on (weft__help's former pass-on rule, fixed in lib/ since; -DFIX is what
 *   lib/ does now): the same, after 1 211 states: the bug (trail: worker 1 parks; worker 0 parks;
 *   the submitter pushes task 2, claims worker 0 and wakes it; worker 0 sees chosen && !ready;
 *   the submitter finishes the future; worker 0 sees ready and leaves; worker 1 sleeps with
 *   count == 1). neg_help_no_pass_on: the same, after 1 060 states.
 */
#define NW 2
#ifndef NTASKS
#define NTASKS 2
#endif

byte count = 0;     /* inject.c shard->count: queued or being pushed */
byte linked = 0;    /* tasks linked into the queue, not yet popped */
bool consumer = 0;  /* inject.c shard->consumer (the mutex) */
byte idle = 0;      /* park.c p->idle: bit i = worker i parked or about to */
byte word[NW];      /* park.c p->words[i]: the futex words */
bool exiting = 0;   /* pool->shutdown & WEFT_SHUT_EXIT */
bool fdone = 0;     /* HELP: the future worker 0 waits on has finished */
byte ran = 0;       /* tasks run (model only) */

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

/* worker.c weft__worker_main's loop */
proctype Worker(byte i) {
    byte key, v, lowbit, old;
    bool got, chosen, last;
top:
    find_task(got);
    if
    :: got -> run_task(); goto top
    :: else -> skip
    fi;
#ifndef REORDER
    key = word[i];                 /* weft__park_prepare: ld_acquire(word) */
    idle = idle | (1 << i);        /* or_seq_cst(idle, bit); F1 */
    if                             /* exit test */
    :: exiting && count == 0 && count == 0 -> leave(i, chosen); goto done
    :: else -> skip
    fi;
    if                             /* weft__work_visible */
    :: count > 0 -> leave(i, chosen); goto top
    :: else -> skip
    fi;
#else
    /* negative: the re-check happens before the worker announces itself */
    key = word[i];
    if
    :: exiting && count == 0 && count == 0 -> goto done
    :: else -> skip
    fi;
    if
    :: count > 0 -> goto top
    :: else -> skip
    fi;
    idle = idle | (1 << i);
#endif
    (word[i] != key);              /* futex_wait(word, key): sleeps while word == key */
    leave(i, chosen);
    goto top;
done:
    assert(count == 0)
}

#ifdef HELP
/* worker.c weft__help with one_ops, for worker 0 (then the thread leaves the pool) */
proctype Helper() {
    byte key, v, lowbit, old;
    bool got, chosen, last, owed = 0;
top:
    if                             /* ops->ready(ctx) */
    :: fdone ->
#ifdef FIX
        if
        :: owed -> notify_one(v, lowbit, old)
        :: else -> skip
        fi;
#endif
        goto done
    :: else -> skip
    fi;
    find_task(got);
    owed = 0;
    if
    :: got -> run_task(); goto top
    :: else -> skip
    fi;
    if                             /* ops->arm(): refused once the future is final */
    :: fdone -> goto done
    :: else -> skip
    fi;
    key = word[0];                 /* weft__park_prepare */
    idle = idle | 1;
    if
    :: fdone -> leave(0, chosen)   /* ops->ready(ctx) || ... */
    :: else ->
        if
        :: count > 0 -> leave(0, chosen)   /* ... || weft__work_visible(pool) */
        :: else -> (word[0] != key); leave(0, chosen)
        fi
    fi;
#ifndef NO_PASS_ON
    if                             /* if (chosen && ops->ready(ctx)) notify_one */
    :: chosen && fdone -> notify_one(v, lowbit, old)
#ifdef FIX
    :: chosen && !fdone -> owed = 1
#endif
    :: else -> skip
    fi;
#endif
    goto top;
done:
    skip
}
#endif

/* pool.c weft_submit from outside the pool, NTASKS times; with HELP, the future is finished
 * (weft__future_finish, then one_fire: weft__park_unpark(worker 0)) at any point */
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
    :: !finished -> fdone = 1; wake(0); finished = 1
    :: n == NTASKS && finished -> break
#else
    :: n == NTASKS -> break
#endif
    od
}

init {
    atomic {
        run Submitter();
#ifdef HELP
        run Helper();
#else
        run Worker(0);
#endif
        run Worker(1)
    }
}

ltl live { [] ((count > 0) -> <> (count == 0)) }
