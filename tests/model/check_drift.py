#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
check_drift.py: the models in tests/model must state the same orders as lib/ (STYLE.md,
principle 18). This is the test that fails when they drift apart.

WHAT IS COMPARED
  For every function that a model says it transcribes (the header comments of deque_model.h,
  deque_relacy.cpp, park_relacy.cpp and park.pml), the sequence of its atomic operations in
  source order, on both sides:

      kind    load, store, exchange, cas, fetch_add, fetch_sub, fetch_or, fetch_and, fence
      order   relaxed, acquire, release, acq_rel, seq_cst (a CAS has two: success/failure)
      object  the atomic variable, by its lib/ field name (top, bottom, idle, count, ...)

  and, in their places, the steps that are not atomic accesses but order things all the same:
  calls to other compared functions ("call park.leave"), futex waits and wakes, and the
  consumer mutex's lock, trylock and unlock. A call is one step: the callee is compared on its
  own. The functions are named by UNITS below ("deque.take", "park.prepare", ...).

  lib/ side: the atomic.h macros (ld_acquire, st_release, cas_seq_cst, add_seq_cst, or_acq_rel,
    weft_fence_seq_cst, ...), read from atomic.h itself so that a change to a macro counts, and
    any C11 atomic_*() call; atomic_init is a relaxed store (Relacy has no initialisation).
    Arguments are evaluated before the call that uses them, so st(x, ld(y)) is "load, store".
    WEFT_ASSERT(...) is skipped (debug builds only). A call to a lib/ function or macro that is
    neither compared, nor listed in LIB_CALLS, nor free of atomic operations is an error: every
    helper that touches an atomic must be classified (expanded in place, kept as one opaque
    step, or ignored with a reason).
  Relacy side: x.load(order, $), x.store(v, order, $), exchange, compare_exchange_strong,
    fetch_add/sub/or/and and rl::atomic_thread_fence; an order is rl::mo_*, or O::name resolved
    through the model's order table (DequeOrders in deque_model.h). The model's own variant
    switches (if (O::f1) ..., if (O::help_fix && ...)) are not evaluated: the model text is read
    with every branch in, so a switch may turn off an operation that lib/ has (for a negative
    test) but an operation that lib/ lacks needs an entry in DEVIATIONS. LIB_VARIANTS checks
    that the variant the model calls lib/'s sets every switch that way. The model's CORE size
    (an abstract queue; park_relacy.cpp "Two sizes of the same code") is skipped: `if (CORE)
    stmt;` and `CORE ? a : b` are read as the full size (b).
  Spin side (park.pml): Promela is sequentially consistent and has no memory orders, so for
    Spin only the kind and object of each step are compared, never the order, and fences are
    dropped on the lib/ side (park.pml's header: "the memory orders and fences are checked by
    park_relacy.cpp"). What Spin is compared on is the protocol: which shared variable each
    step reads or writes, in which order, and which call comes where. Each Promela statement on
    a global is one step: a read in a guard or on the right of `=` is a load, `v = e` a store,
    `v = v op e` / `v++` / `v--` a fetch_op, an `atomic { }` block one read-modify-write of its
    variable (with a guard: a CAS; on the mutex `consumer`: trylock; `consumer = 0`: unlock), and
    an expression statement that is not a guard a blocking wait (on `word`: the futex wait).
    The file is read with the macros of lib/'s configuration (SPIN_LIB_MACROS). The lib/ side is
    brought to Promela's granularity: calls to functions that park.pml writes in place are
    expanded (recursively) and those it leaves out or abstracts are replaced as SPIN_RULES says
    (the deques are left out, the queue's linked list is one counter, ...).

  Source order is textual order (arguments first): both branches of an `if` count, a loop body
  counts once, so the two sides must keep the same statement structure, which is what the
  models promise ("statement for statement"). Within compared model functions an rl::atomic
  used through an operator (x++, x = v, if (x): an implicit seq_cst access) is an error. On the
  lib/ side, atomic.h's rule that every access goes through its macros is assumed, not checked:
  a bare operator on an _Atomic object would go unseen.

  Parts of a function a model transcribes inside a larger one (the shutdown run by the last
  task) are delimited in the model by marker comments:
      /* check_drift: begin NAME */ ... /* check_drift: end NAME */

DEVIATIONS
  Where a model deliberately differs, DEVIATIONS says so: on one side of one function, a run of
  steps is rewritten into what the other side has, with the reason. Each entry must match
  exactly (count) times, and after the rewrites the two sequences must be equal; an entry that
  no longer matches fails the test too (the drift was fixed: delete the entry). Entries marked
  "found by check_drift: differs today" are differences this checker found that no model
  header documents; fixing one side or the other is still to be decided.

RUNNING
  check_drift.py                      compare lib/ with tests/model (the repository's)
  check_drift.py --lib DIR --models DIR
  check_drift.py -v                   also print every compared sequence
  check_drift.py --self-test          copies lib/ and tests/model to a temporary directory and
                                      checks that a changed order (or call) on each side, in
                                      each model, makes the check fail; and that a deviation
                                      that stops applying does too
  Exit status 0: no drift; 1: drift (or an entry of DEVIATIONS that no longer applies, or
  sources the checker cannot read); 2: bad usage.
"""

import argparse
import io
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


class DriftError(Exception):
    """Sources the checker cannot read past (a unit not found, an unclassified call, ...)."""


# ================================================================================================
# The functions compared
# ================================================================================================


@dataclass
class Unit:
    name: str  # canonical name, used in calls ("call deque.take") and in messages
    lib: tuple  # (file in lib/, function[, "loop"]) -- "loop": only its first `for (;;)`
    relacy: tuple = None  # (file in tests/model, function[, "loop"]) or (file, "@marker")
    spin: str = None  # park.pml: "inline NAME", "proctype NAME" or "@marker"


UNITS = [
    # deque_model.h: "Every function below follows the lib/ function named in its comment"
    Unit("deque.init", ("deque.c", "weft__deque_init"), ("deque_model.h", "init")),
    Unit("deque.destroy", ("deque.c", "weft__deque_destroy"), ("deque_model.h", "destroy")),
    Unit("deque.buf_new", ("deque.c", "buf_new"), ("deque_model.h", "buf_new")),
    Unit("deque.grow", ("deque.c", "weft__deque_grow"), ("deque_model.h", "grow")),
    Unit("deque.publish", ("deque.h", "weft__deque_publish"), ("deque_model.h", "publish")),
    Unit("deque.push", ("deque.h", "weft__deque_push"), ("deque_model.h", "push")),
    Unit("deque.try_push", ("deque.h", "weft__deque_try_push"), ("deque_model.h", "try_push")),
    Unit("deque.take_shared", ("deque.h", "weft__deque_take_shared"),
         ("deque_model.h", "take_shared")),
    Unit("deque.take", ("deque.h", "weft__deque_take"), ("deque_model.h", "take")),
    Unit("deque.take_if", ("deque.h", "weft__deque_take_if"), ("deque_model.h", "take_if")),
    Unit("deque.room", ("deque.h", "weft__deque_room"), ("deque_model.h", "room")),
    Unit("deque.has_private", ("deque.h", "weft__deque_has_private"),
         ("deque_model.h", "has_private")),
    Unit("deque.steal", ("deque.c", "weft__deque_steal"), ("deque_model.h", "steal")),
    Unit("deque.maybe_nonempty", ("deque.h", "weft__deque_maybe_nonempty"),
         ("deque_model.h", "maybe_nonempty")),
    Unit("deque.owner_nonempty", ("deque.h", "weft__deque_owner_nonempty"),
         ("deque_model.h", "owner_nonempty")),
    # park_relacy.cpp, WHAT IS MODELLED: inject.c
    Unit("inject.link_in", ("inject.c", "link_in"), ("park_relacy.cpp", "link_in")),
    Unit("inject.push", ("inject.c", "weft__inject_push"), ("park_relacy.cpp", "inject_push")),
    Unit("inject.pop_one", ("inject.c", "pop_one"), ("park_relacy.cpp", "pop_one")),
    Unit("inject.pop", ("inject.c", "weft__inject_pop"), ("park_relacy.cpp", "inject_pop")),
    Unit("inject.taken", ("inject.c", "weft__inject_taken"), ("park_relacy.cpp", "inject_taken")),
    Unit("inject.maybe_nonempty", ("inject.c", "weft__inject_maybe_nonempty"),
         ("park_relacy.cpp", "inject_maybe_nonempty")),
    Unit("inject.drained", ("inject.c", "weft__inject_drained"),
         ("park_relacy.cpp", "inject_drained")),
    # lib/ only (no model counterpart, see DEVIATIONS); listed so that Spin can expand it
    Unit("inject.taken", ("inject.c", "weft__inject_taken")),
    # park.c
    Unit("park.prepare", ("park.c", "weft__park_prepare"), ("park_relacy.cpp", "park_prepare")),
    Unit("park.leave", ("park.c", "leave"), ("park_relacy.cpp", "leave"), "inline leave"),
    Unit("park.cancel", ("park.c", "weft__park_cancel"), ("park_relacy.cpp", "park_cancel")),
    Unit("park.commit", ("park.c", "weft__park_commit"), ("park_relacy.cpp", "park_commit")),
    Unit("park.wake", ("park.c", "wake"), ("park_relacy.cpp", "wake"), "inline wake"),
    Unit("park.notify_one", ("park.c", "weft__park_notify_one"),
         ("park_relacy.cpp", "notify_one"), "inline notify_one"),
    Unit("park.notify_all", ("park.c", "weft__park_notify_all"),
         ("park_relacy.cpp", "notify_all"), "inline notify_all"),
    Unit("park.notify_if_idle", ("park.h", "weft__park_notify_if_idle"),
         ("park_relacy.cpp", "notify_if_idle")),
    # join.c: weft__publish (an alias, LIB_CALLS) is publish with ws false
    Unit("join.publish", ("join.c", "publish"), ("park_relacy.cpp", "publish")),
    # worker.c
    Unit("worker.take_injected", ("worker.c", "take_injected"),
         ("park_relacy.cpp", "take_injected")),
    Unit("worker.steal_any", ("worker.c", "steal_any"), ("park_relacy.cpp", "steal_any")),
    Unit("worker.find_task", ("worker.c", "find_task"), ("park_relacy.cpp", "find_task"),
         "inline find_task"),
    Unit("worker.work_visible", ("worker.c", "weft__work_visible"),
         ("park_relacy.cpp", "work_visible")),
    Unit("worker.main_loop", ("worker.c", "run_worker", "loop"),
         ("park_relacy.cpp", "run_worker", "loop"), "inline run_worker"),
    Unit("worker.help", ("worker.c", "weft__help"), ("park_relacy.cpp", "help"), "inline help"),
    Unit("worker.block", ("worker.c", "block"), ("park_relacy.cpp", "block")),
    # lend.c
    Unit("lend.thread_wake", ("lend.c", "weft__thread_wake"), ("park_relacy.cpp", "thread_wake"),
         "inline thread_wake"),
    Unit("lend.grant", ("lend.c", "grant"), ("park_relacy.cpp", "grant"), "inline grant"),
    Unit("lend.await", ("lend.c", "weft__lend_await"), ("park_relacy.cpp", "lend_await"),
         "inline lend_await"),
    Unit("lend.take_returning", ("lend.c", "take_returning"),
         ("park_relacy.cpp", "take_returning"), "inline take_returning"),
    Unit("lend.lend", ("lend.c", "weft__lend"), ("park_relacy.cpp", "lend"), "inline lend"),
    Unit("lend.reclaim", ("lend.c", "weft__lend_reclaim"), ("park_relacy.cpp", "lend_reclaim"),
         "inline lend_reclaim"),
    Unit("lend.hand_back", ("lend.c", "weft__lend_hand_back"),
         ("park_relacy.cpp", "lend_hand_back"), "inline lend_hand_back"),
    Unit("lend.close", ("lend.c", "weft__lend_close"), ("park_relacy.cpp", "lend_close"),
         "inline lend_close"),
    Unit("lend.wanted", ("worker.h", "weft__lend_wanted"), ("park_relacy.cpp", "lend_wanted")),
    # the future worker 0 waits on: ready() is wait.c's one_ready (finished(): acquire load)
    Unit("future.ready", ("wait.c", "one_ready"), ("park_relacy.cpp", "ready")),
    # pool.c / submit.c: the submission from outside and the shutdown the last task runs
    Unit("pool.submit", ("submit.c", "weft_submit"), ("park_relacy.cpp", "submit"),
         "proctype Submitter"),
    Unit("pool.destroy", ("pool.c", "weft_pool_destroy"), ("park_relacy.cpp", "@pool.destroy"),
         "@pool.destroy"),
]

# Claimed by the models' headers but not compared, and why (printed with -v).
NOT_COMPARED = {
    "weft__park_unpark": "one call of wake(); the model's finish_future calls wake(0) directly",
    "weft__future_finish, one_fire": "the model's future is one word (park_relacy.cpp "
                                     "DEVIATIONS): finish_future is an exchange and a wake",
    "one_arm (weft__future_add_node)": "the model's arm() is one acquire load (DEVIATIONS)",
    "weft__inject_init, weft_pool_create": "single-threaded set-up in the models' before()",
    "weft__futex_wait/_wake": "platform.c and the kernel; modelled as rl_futex is",
}

# ================================================================================================
# Where the two sides differ on purpose, or differ today
# ================================================================================================

FOUND = "found by check_drift: differs today"


@dataclass
class Dev:
    checker: str  # "relacy" or "spin"
    units: tuple
    side: str  # "lib" or "model": the sequence rewritten
    old: str  # steps, separated by ";"
    new: str
    kind: str  # "documented" (a model header lists it), "form" (the same, written
    #           differently), or FOUND
    why: str
    count: int = 1  # occurrences expected in each unit


_TAKING = ("park_relacy.cpp and park.pml DEVIATIONS: a CANCEL shutdown is not modelled, nor the "
           "`taking` handshake it relies on (acquire_task's st_seq_cst of taking, decide()'s "
           "check and st_release); find_task is called directly")
_TAKEN = ("lib/ keeps the shard's count up until the popped batch is in the deque: "
          "weft__inject_pop no longer decrements it, take_injected calls weft__inject_taken "
          "(sub_release) after the pushes (commit 60a8f0b). The model still decrements inside "
          "inject_pop, before the pushes")

_RESIZE = ("resize.c: the models' pools keep the size they were made with, so this is a "
           "constant there: ")
_RESIZE_MU = ("resize.c: teardown counts the workers that will leave their loop and sets the "
              "exit bit under the resize mutex, so that no worker retires after (a shrink is not "
              "modelled: the models' pools keep their size)")

DEVIATIONS = [
    Dev("relacy", ("park.wake",), "lib", "store relaxed woken_at", "", "documented",
        "park_relacy.cpp DEVIATIONS: wake()'s timestamp for the spinning heuristic is left out"),
    Dev("spin", ("park.wake",), "lib", "store woken_at", "", "documented",
        "park.pml: wake()'s relaxed timestamp (woken_at) is left out"),
    # ---- deque_relacy.cpp / deque_model.h ------------------------------------------------
    Dev("relacy", ("deque.buf_new",), "model", "store relaxed slot", "", "documented",
        "deque_relacy.cpp DEVIATIONS: new buffers' slots are stored NULL before publication "
        "(lib/'s buf_new has weft__mem_alloc zero them, which is no atomic operation)"),
    # ---- park_relacy.cpp ----------------------------------------------------------------
    Dev("relacy", ("inject.push",), "lib", "fetch_add relaxed total", "", "documented",
        "park_relacy.cpp DEVIATIONS: statistics are left out (inject_push: 'add_relaxed(&sh->"
        "total, 1): a statistic, not modelled')"),
    Dev("relacy", ("inject.pop",), "lib",
        "load relaxed count; mutex_lock consumer; mutex_trylock consumer",
        "load relaxed count; mutex_trylock consumer", "documented",
        "the model transcribes weft__inject_pop with wait == false, as worker.c calls it (the "
        "waiting lock is shutdown's sweep)"),
    Dev("relacy", ("worker.main_loop",), "lib",
        "store seq_cst taking; call worker.find_task; call worker.decide",
        "call worker.find_task", "documented", _TAKING),
    Dev("relacy", ("worker.help",), "lib", "call future.find; call worker.run_task", "",
        "documented",
        "park_relacy.cpp DEVIATIONS: the future worker 0's thread waits on is a promise, which "
        "one_find (weft__claim) never offers to run; weft__help's deadline is left out"),
    Dev("relacy", ("lend.lend",), "lib", "mutex_unlock mu; mutex_lock mu; mutex_unlock mu",
        "mutex_unlock mu", "documented",
        "park_relacy.cpp DEVIATIONS: the spare is the reserve, idle from the start: weft__lend "
        "never starts a thread, so its path for a thread that could not start is left out"),
    Dev("relacy", ("worker.block",), "lib", "call future.disarm", "", "documented",
        "park_relacy.cpp DEVIATIONS: the future is one atomic word; block(): 'one_disarm: "
        "weft__future_remove_node, nothing to model'"),
    Dev("relacy", ("pool.submit",), "lib",
        "call deque.has_private; call join.publish; store seq_cst taking; load seq_cst shutdown; "
        "call deque.push; store release taking", "",
        "documented",
        "park_relacy.cpp WHAT IS MODELLED: weft_submit from outside the pool (the path from a "
        "worker publishes its private frames and pushes to its own deque, in weft__enqueue)"),
    Dev("relacy", ("pool.destroy",), "lib", "store relaxed nthreads", "", "documented",
        "teardown's st_relaxed(&pool->nthreads) (the count the workers' stop-hook barrier after "
        "the loop waits for) is not in the model, whose workers end with the loop; not "
        "documented"),
    Dev("relacy", ("pool.destroy",), "lib",
        "mutex_lock resize_mu; fetch_or seq_cst shutdown; mutex_unlock resize_mu",
        "fetch_or seq_cst shutdown", "documented", _RESIZE_MU),
    # ---- park.pml ------------------------------------------------------------------------
    Dev("spin", ("park.notify_one",), "model", "call park.wake; call park.wake", "call park.wake",
        "form",
        "Promela indexes word[] by a constant: `if :: lowbit == 1 -> wake(0) :: else -> wake(1) "
        "fi` is one wake of the worker the claimed bit names"),
    Dev("spin", ("park.notify_all",), "model", "call park.wake; call park.wake",
        "fetch_add words", "form",
        "the loop over the NW = 2 workers unrolled; each turn is wake()'s increment, which lib/ "
        "writes in place (add_release, then futex_wake, implicit in Promela)"),
    Dev("spin", ("worker.find_task",), "lib",
        "load count; mutex_lock consumer; mutex_trylock consumer",
        "load count; mutex_trylock consumer", "documented",
        "park.pml: 'inject.c weft__inject_pop(wait = false)'"),
    Dev("spin", ("worker.find_task",), "lib", "fetch_sub count; call park.notify_one",
        "fetch_sub count", "documented",
        "park.pml: find_task pops 'one task' (take_injected's batch of one): the notify_one "
        "for the rest of a batch (n > 1) never happens"),
    Dev("spin", ("worker.main_loop",), "lib",
        "store taking; call worker.find_task; call worker.decide", "call worker.find_task",
        "documented",
        _TAKING),
    Dev("spin", ("worker.help",), "lib", "call future.find; call worker.run_task", "",
        "documented",
        "park.pml: 'one_find offers nothing (the future is a promise)'; the deadline is left "
        "out (park_relacy.cpp DEVIATIONS)"),
    Dev("spin", ("worker.main_loop",), "model",
        "load count; call park.leave; load want_back; call park.leave",
        "load count; load want_back; call park.leave", "form",
        "`if (weft__work_visible(pool) || weft__lend_wanted(w)) cancel` written as nested "
        "options, each cancelling"),
    Dev("spin", ("pool.submit",), "lib", "store taking; load shutdown; store taking", "",
        "documented", "park.pml: 'pool.c weft_submit (outside)' (the path from a worker, "
        "weft__enqueue's own-deque push, is not modelled; its deque push is dropped already)"),
    Dev("spin", ("pool.submit",), "lib",
        "load shutdown; fetch_add count; load shutdown; fetch_sub count", "fetch_add count",
        "documented",
        "park.pml's table has weft_submit as 'count++, linked++, notify_one': no CLOSED bit, "
        "so neither weft__task_new's fast refusal nor inject_push's check and back-out (the "
        "pool closes after the last task)"),
    Dev("spin", ("pool.submit",), "lib", "fetch_add total", "", "documented",
        "statistics are left out"),
    Dev("spin", ("pool.submit",), "model", "store state; call lend.thread_wake", "", "form",
        "the Submitter also finishes the future worker 0's thread waits on "
        "(weft__future_finish, then one_fire's weft__thread_wake), at a point Spin chooses: not "
        "part of weft_submit"),
    Dev("spin", ("lend.lend",), "lib", "mutex_unlock mu; mutex_lock mu; mutex_unlock mu",
        "mutex_unlock mu", "documented",
        "park.pml: 'the spare is the reserve, idle from the start (no thread starts here)': "
        "weft__lend's path for a spare that could not start is left out"),
    Dev("spin", ("pool.destroy",), "lib", "store nthreads", "", "documented",
        "teardown's nthreads store is not modelled (as for Relacy)"),
    Dev("spin", ("pool.destroy",), "lib",
        "mutex_lock resize_mu; fetch_or shutdown; mutex_unlock resize_mu", "fetch_or shutdown",
        "documented", _RESIZE_MU),
    Dev("spin", ("pool.destroy",), "lib", "fetch_or shutdown; fetch_or shutdown",
        "store shutdown", "documented",
        "park.pml: the last task's worker 'sets EXIT': `exiting`, one flag for the CLOSED and "
        "CLOSED|EXIT RMWs of weft_pool_shutdown and teardown"),
]

# The variant a model calls lib/'s must switch its guarded operations as lib/ does (the text
# is read with every branch in, see the header).
LIB_VARIANTS = [
    ("park_relacy.cpp", "ParkLib", {"f1": "true", "f2": "true", "owed": "true"},
     "park_relacy.cpp: 'ParkLib is what lib/ does'"),
    ("deque_model.h", "DequeOrders",
     {"free_old_buffer": "false", "take_repair": "true", "take_private_any": "false"},
     "deque_model.h: 'lib/ is DequeOrders: take_repair true, take_private_any false' and 'lib/ "
     "keeps old buffers on the retired list until destroy'"),
]

# The Relacy order tables: O::name in a model file is looked up in this struct.
RELACY_ORDERS = {"deque_model.h": "DequeOrders"}

# ================================================================================================
# How calls are read
# ================================================================================================

EXPAND = "expand"  # the helper's steps, in place
IGNORE = "ignore"  # nothing (the reason says why)
# otherwise ("call", canonical): one opaque step; ("alias", canonical): a wrapper checked to do
# nothing but call canonical; ("futex", op) / ("mutex", op): a step on the call's first argument

LIB_CALLS = {
    "acquire_task": (EXPAND, "worker.c: raises taking, find_task, decide"),
    "decide": (("call", "worker.decide"), "worker.c: the CANCEL decision on a taken task, "
                                          "with futures; no model has it"),
    "park": (("alias", "park.commit"), "worker.c: weft__park_commit with statistics and "
                                       "tracing around it"),
    "weft__run_task": (("call", "worker.run_task"), "runs the task; the models' run_task is a "
                                                    "stand-in"),
    "weft__task_new": (EXPAND, "submit.c: weft_submit's first step"),
    "weft__enqueue": (EXPAND, "submit.c: weft_submit's second step"),
    "weft__publish": (("alias", "join.publish"), "join.c: publish(w, w->ws != NULL); the models' "
                                                 "pools do not measure work and span"),
    "fill": (IGNORE, "join.c: fills in a frame weft_offer pushed inline (plain stores and an "
                     "atomic_init of its state, while the frame is still private, before the "
                     "release of the publish); the models have no weft_offer frames "
                     "(park_relacy.cpp DEVIATIONS)"),
    "weft__frame_fill": (IGNORE, "join.c: fill() of a frame weft_offer pushed inline, by its "
                                 "owner, when it takes one back that was never published; the "
                                 "models' tasks are whole (park_relacy.cpp DEVIATIONS)"),
    "ws_notify": (IGNORE, "join.c: publish's wake-up in a pool that measures work and span (not "
                          "modelled: the models' pools do not measure, ws is false)"),
    "weft__task_discard": (IGNORE, "weft_submit's error path (the models' submissions succeed)"),
    "weft__future_new": (IGNORE, "allocates the future (not shared yet)"),
    "weft__block_free": (IGNORE, "frees the refused future (weft__task_new's error path)"),
    "weft_pool_shutdown": (EXPAND, "pool.c: weft_pool_destroy's first step (DRAIN)"),
    "teardown": (EXPAND, "pool.c: weft_pool_destroy's second step"),
    "cancel_everything_queued": (IGNORE, "CANCEL mode only; weft_pool_destroy uses DRAIN"),
    "free_pool": (IGNORE, "after every worker was joined"),
    "wait_workers_left": (IGNORE, "pool.c: teardown waits for the workers' barrier before it "
                                  "joins the threads; the models' workers end with their loop "
                                  "and nothing is joined"),
    "weft__pool_write_trace": (IGNORE, "tracing, after every worker was joined"),
    "weft__pool_write_stats": (IGNORE, "statistics file, after every worker was joined"),
    "weft__ws_write": (IGNORE, "work and span file, after every worker was joined"),
    "weft__pool_forked": (IGNORE, "fork() child detection, not modelled"),
    "weft__page_get": (IGNORE, "the max_pending budget holds the page (DEVIATIONS: not modelled)"),
    "weft__mem_alloc": (IGNORE, "alloc.c: the pool's allocator; its relaxed byte tally for "
                                "weft_pool_memory orders nothing (the models allocate with new)"),
    "weft__mem_alloc_quiet": (IGNORE, "alloc.c: as weft__mem_alloc, without the fault site"),
    "weft__mem_free": (IGNORE, "alloc.c: as weft__mem_alloc"),
    "keep_spinning": (IGNORE, "worker.c: idle spinning; its relaxed head count of spinners only "
                              "limits spinning (the models' workers park at once: DEVIATIONS)"),
    "spin_end": (IGNORE, "worker.c: gives back the place among the spinners (as keep_spinning)"),
    "weft__park_woken_at": (IGNORE, "park.h: the relaxed timestamp of the last wake-up, for the "
                                    "spinning heuristic (DEVIATIONS: left out)"),
    "idle_spell_done": (IGNORE, "worker.c: the owner's average of idle spells, no atomics"),
    "weft__room_take": (IGNORE, "page.c: the max_pending/max_inflight budget, outside the "
                                "scheduler (not modelled; its own Dekker pair is argued in page.c "
                                "and tested by test_room)"),
    "weft__room_shut": (IGNORE, "page.c: wakes submitters waiting for room (not modelled, as "
                                "weft__room_take)"),
    "weft__page_pool_dying": (IGNORE, "continuations' launches, after every worker was joined; "
                                      "not modelled"),
    "weft__me": (IGNORE, "the calling worker, with fork() child detection, not modelled"),
    "weft__futex_wait": (("futex", "futex_wait"), "platform.c"),
    "weft__futex_wake": (("futex", "futex_wake"), "platform.c"),
    "pthread_mutex_lock": (("mutex", "mutex_lock"), ""),
    "pthread_mutex_trylock": (("mutex", "mutex_trylock"), ""),
    "pthread_mutex_unlock": (("mutex", "mutex_unlock"), ""),
    "finished": (EXPAND, "wait.c: one_ready's acquire load"),
    "weft__park_unpark": (("call", "park.wake"), "park.c: wake() of worker i, in the idle set "
                                                  "or not"),
    "weft__lend_reserve": (IGNORE, "lend.c: the reserve spare, idle from the start in the "
                                   "models (DEVIATIONS)"),
    "start_spare": (IGNORE, "lend.c: pthread_create (DEVIATIONS: no thread starts in the "
                            "models' lend)"),
    "calloc": (IGNORE, "lend.c: a new spare's record, not shared yet"),
    "free": (IGNORE, "lend.c: a record no other thread saw"),
    "spell_begin": (IGNORE, "statistics (DEVIATIONS: left out)"),
    "spell_end": (IGNORE, "statistics (DEVIATIONS: left out)"),
    "WEFT_COUNT": (IGNORE, "statistics (DEVIATIONS: left out)"),
    "weft__trace_add": (IGNORE, "tracing (DEVIATIONS: left out)"),
    "keep_spinning": (IGNORE, "spinning: zero rounds in the models (DEVIATIONS)"),
    "next_rand": (IGNORE, "the random first victim (DEVIATIONS: left out)"),
    # weft_pool_resize (resize.c) is not modelled: the models' pools keep their size, so these
    # read values that never change there, or decide nothing.
    "weft__pool_slots": (IGNORE, _RESIZE + "the number of worker records, an acquire load "
                                           "that pairs with the release of a grow"),
    "weft__park_nwords": (IGNORE, _RESIZE + "the words of the idle set in use (relaxed; "
                                            "park.h argues why after F2)"),
    "registered": (IGNORE, _RESIZE + "park.c: the workers registered (acquire, for the table "
                                     "of futex words)"),
    "weft_pool_size": (IGNORE, _RESIZE + "submit.c: a lone worker skips its wake-up"),
    "weft__retire_due": (IGNORE, _RESIZE + "no worker is ever at or above the target, so this "
                                           "is false and the retirement never runs"),
    "weft__retire": (IGNORE, "resize.c: the retirement after a shrink (not modelled, see "
                             "weft__retire_due; its handshake is argued in resize.c)"),
}
# Calls through a pointer member: (object, member).
LIB_MEMBER_CALLS = {
    ("ops", "ready"): (("call", "future.ready"), "weft__help's condition (one_ready)"),
    ("ops", "arm"): (("call", "future.arm"), "one_arm: weft__future_add_node"),
    ("ops", "disarm"): (("call", "future.disarm"), "one_disarm: weft__future_remove_node"),
    ("ops", "find"): (("call", "future.find"), "one_find: weft__claim of the awaited task"),
}
LIB_SKIP_CALLS = {"WEFT_ASSERT"}  # the call and its arguments: debug builds only
# lib/ names of the same variable in the models
LIB_OBJECT_ALIASES = {"closed": "shutdown",  # weft__inject_push(..., &pool->shutdown, CLOSED)
                      "word": "words"}  # park.c: word = word_of(p, i), worker i's futex word

MODEL_CALLS = {
    "futex_wait": (("futex", "futex_wait"), "park_relacy.cpp: platform.c as rl_futex has it"),
    "futex_wake": (("futex", "futex_wake"), "park_relacy.cpp: platform.c as rl_futex has it"),
    "run_task": (("call", "worker.run_task"), "weft__run_task, plus the shutdown after the "
                                              "last task (pool.destroy, compared)"),
    "arm": (("call", "future.arm"), "one_arm (not compared: see NOT_COMPARED)"),
    "core_pop": (IGNORE, "the CORE size's abstract queue"),
    "core_push": (IGNORE, "the CORE size's abstract queue"),
}
# the workers' futex words; a thread's futex word; the future's state
MODEL_OBJECT_ALIASES = {"wake": "words", "twake": "wake", "fstate": "state"}

# ---- Spin ----
SPIN_LIB_MACROS = {"HELP": "adds inline help (the wait) and proctype Helper"}
# park.pml's globals, by their lib/ names; None: the model's own bookkeeping
SPIN_VARS = {"count": "count", "linked": "linked", "consumer": "consumer", "idle": "idle",
             "word": "words", "exiting": "shutdown", "fdone": "state", "ran": None,
             "mu": "mu", "want_back": "want_back", "epoch": "epoch", "twake": "wake",
             # lend.c's plain fields, under mu: not atomic operations in lib/
             "nlenders": None, "granted": None, "slot": None, "back": None, "lender_of": None,
             "tidle": None, "closing": None, "exited": None}
SPIN_MUTEXES = {"consumer", "mu"}
SPIN_LOCKS = {"mu"}  # taken with a blocking lock (`atomic { mu == 0 -> mu = 1 }`), never tried
SPIN_INLINE_CALLS = {"leave": "park.leave", "wake": "park.wake", "notify_one": "park.notify_one",
                     "notify_all": "park.notify_all", "find_task": "worker.find_task",
                     "run_task": "worker.run_task", "thread_wake": "lend.thread_wake",
                     "grant": "lend.grant", "lend_await": "lend.await",
                     "take_returning": "lend.take_returning", "lend": "lend.lend",
                     "lend_reclaim": "lend.reclaim", "lend_hand_back": "lend.hand_back",
                     "lend_close": "lend.close", "run_worker": "worker.main_loop",
                     "help": "worker.help"}
SPIN_IGNORE_CALLS = {"assert", "printf"}
# How the lib/ side is brought to park.pml's granularity (calls not listed here are kept if
# park.pml has them as inlines, else expanded).
SPIN_RULES = {
    "deque": (None, "park.pml: 'Workers' deques are left out' (every deque.* call dropped)"),
    "join.publish": (None, "park.pml leaves the deques out, and with them the private frames a "
                           "publish shares (weft__help's and weft__enqueue's first step)"),
    "worker.steal_any": (None, "no deques and one queue: nothing to steal"),
    "inject.pop_one": ("load linked; fetch_sub linked", "park.pml: 'the linked tasks (`linked`, "
                       "one counter)'"),
    "inject.link_in": ("fetch_add linked", "the same counter"),
    "future.arm": ("load state", "park.pml: 'ops->arm(): refused once the future is final'"),
    "future.disarm": ("", "the future is one flag: nothing to disarm"),
    "futex_wake": (None, "Promela: the increment of word[i] ends the blocking `(word[i] != key)`"),
    "fence": (None, "Promela is sequentially consistent"),
}
SPIN_KEEP_CALLS = {"park.leave", "park.wake", "park.notify_one", "park.notify_all",
                   "worker.find_task", "worker.run_task", "worker.decide", "lend.thread_wake",
                   "lend.grant", "lend.await", "lend.take_returning", "lend.lend",
                   "lend.reclaim", "lend.hand_back", "lend.close"}

# ================================================================================================
# Lexing
# ================================================================================================

TOKEN_RE = re.compile(
    r"""
    (?P<directive>^[ \t]*\#(?:\\\n|[^\n])*)
   |(?P<nl>\n)
   |(?P<ws>[ \t\r\f\v]+)
   |(?P<comment>/\*.*?\*/|//[^\n]*)
   |(?P<string>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
   |(?P<ident>[A-Za-z_]\w*)
   |(?P<number>\d[\w.]*)
   |(?P<punct>->|::|\+\+|--|&&|\|\||<<|>>|==|!=|<=|>=|[-+*/%&|^!~=<>?:;,.(){}\[\]$@\#\\])
    """,
    re.M | re.S | re.X,
)
MARKER_RE = re.compile(r"check_drift:\s*(begin|end)\s+(\S+)")


@dataclass
class Tok:
    kind: str
    text: str
    line: int
    pos: int  # offset in the file


class Source:
    """A lexed file: tokens without comments and directives, brackets matched, markers found.
    With macros (Promela), #ifdef/#ifndef/#else/#endif are evaluated; otherwise directives are
    dropped and both branches kept."""

    _cache = {}  # (path, display, macros, text) -> Source: the self-test re-reads unchanged files

    def __new__(cls, path, display, macros=None):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise DriftError(f"cannot read {path}: {e.strerror}")
        key = (path, display, tuple(sorted(macros.items())) if macros else None, text)
        if key not in cls._cache:
            self = super().__new__(cls)
            self._lex(path, display, macros, text)
            cls._cache[key] = self
        return cls._cache[key]

    def _lex(self, path, display, macros, text):
        self.path, self.display = path, display
        self.toks, self.markers, self.directives = [], {}, []
        line, pos, stack = 1, 0, []
        macros = dict(macros) if macros is not None else None
        while pos < len(text):
            m = TOKEN_RE.match(text, pos)
            if m is None:
                raise DriftError(f"{display}:{line}: cannot lex {text[pos:pos + 20]!r}")
            kind, val = m.lastgroup, m.group()
            active = all(stack)
            if kind == "directive":
                self.directives.append((val.strip(), line))
                if macros is not None:
                    self._directive(val, line, stack, macros)
            elif kind == "comment":
                for mk in MARKER_RE.finditer(val):
                    if active:
                        self.markers.setdefault(mk.group(2), {})[mk.group(1)] = len(self.toks)
            elif kind not in ("nl", "ws") and active:
                self.toks.append(Tok(kind, val, line, pos))
            line += val.count("\n")
            pos = m.end()
        if stack:
            raise DriftError(f"{display}: unterminated #if")
        self.pairs = self._match()
        self._defs = None

    def _directive(self, val, line, stack, macros):
        words = val.strip()[1:].split()
        if not words:
            return
        d = words[0]
        if d in ("ifdef", "ifndef"):
            stack.append((words[1] in macros) == (d == "ifdef"))
        elif d == "else":
            if not stack:
                raise DriftError(f"{self.display}:{line}: #else without #if")
            stack[-1] = not stack[-1]
        elif d == "endif":
            if not stack:
                raise DriftError(f"{self.display}:{line}: #endif without #if")
            stack.pop()
        elif d == "define":
            if all(stack):
                macros[words[1]] = " ".join(words[2:])
        elif d in ("if", "elif"):
            raise DriftError(f"{self.display}:{line}: #{d} is not supported here")

    def _match(self):
        pairs, stack = {}, []
        opening = {")": "(", "]": "[", "}": "{"}
        for i, t in enumerate(self.toks):
            if t.kind != "punct":
                continue
            if t.text in "([{":
                stack.append(i)
            elif t.text in ")]}":
                if not stack or self.toks[stack[-1]].text != opening[t.text]:
                    return None  # unbalanced (#if branches); an error only if used
                j = stack.pop()
                pairs[i], pairs[j] = j, i
        return pairs if not stack else None

    def where(self, i):
        return f"{self.display}:{self.toks[i].line}"

    def need_pairs(self):
        if self.pairs is None:
            raise DriftError(f"{self.display}: unbalanced brackets")
        return self.pairs

    # ---- function definitions ----
    NOT_FUNCTIONS = {"if", "for", "while", "switch", "return", "sizeof", "catch", "do", "else",
                     "_Alignof", "alignof", "defined", "_Static_assert", "static_assert",
                     "__attribute__", "decltype", "typeof", "__typeof__", "case", "_Alignas"}

    def definitions(self):
        """name -> [(index of '{', index of '}')] of every function definition."""
        if self._defs is not None:
            return self._defs
        self._defs = {}
        pairs = self.pairs
        if pairs is None:
            return self._defs
        toks = self.toks
        for i, t in enumerate(toks):
            if t.text != "{" or t.kind != "punct":
                continue
            j = i - 1
            while j >= 0 and toks[j].text in ("const", "override", "noexcept", "final"):
                j -= 1
            if j < 0 or toks[j].text != ")":
                continue
            k = pairs[j] - 1
            if k >= 0 and toks[k].kind == "ident" and toks[k].text not in self.NOT_FUNCTIONS:
                self._defs.setdefault(toks[k].text, []).append((i, pairs[i]))
        return self._defs

    def function(self, name):
        defs = self.definitions().get(name, [])
        if self.pairs is None:
            raise DriftError(f"{self.display}: unbalanced brackets")
        if len(defs) != 1:
            raise DriftError(f"{self.display}: {len(defs)} definitions of {name}() (want 1)")
        return defs[0]

    def first_forever_loop(self, lo, hi, name):
        toks = self.toks
        for i in range(lo, hi):
            if [t.text for t in toks[i:i + 6]] == ["for", "(", ";", ";", ")", "{"]:
                return i + 5, self.pairs[i + 5]
        raise DriftError(f"{self.display}: no `for (;;)` loop in {name}()")

    def marker_region(self, name):
        m = self.markers.get(name, {})
        if "begin" not in m or "end" not in m or m["end"] < m["begin"]:
            raise DriftError(f"{self.display}: no region /* check_drift: begin {name} */ ... "
                             f"/* check_drift: end {name} */")
        return m["begin"] - 1, m["end"]  # exclusive bounds, like a body's braces

    def promela_unit(self, spec):
        """'inline NAME' / 'proctype NAME' -> (index of '{', index of '}')."""
        kw, name = spec.split()
        toks, pairs = self.toks, self.need_pairs()
        found = [i for i in range(len(toks) - 2)
                 if toks[i].text == kw and toks[i + 1].text == name and toks[i + 2].text == "("]
        if len(found) != 1:
            raise DriftError(f"{self.display}: {len(found)} definitions of {spec} (want 1; "
                             f"macros {sorted(SPIN_LIB_MACROS)})")
        close = pairs[found[0] + 2]
        if toks[close + 1].text != "{":
            raise DriftError(f"{self.display}: {spec}: no body")
        return close + 1, pairs[close + 1]


# ================================================================================================
# Steps
# ================================================================================================


@dataclass
class Step:
    text: str  # what is compared: "load acquire top", "call park.leave", ...
    where: str  # file:line (+ " via helper" when expanded)


ORDERED = {"load", "store", "exchange", "cas", "cas_weak", "fetch_add", "fetch_sub", "fetch_or",
           "fetch_and", "fetch_xor"}
C11_KINDS = {"load": "load", "store": "store", "exchange": "exchange",
             "compare_exchange_strong": "cas", "compare_exchange_weak": "cas_weak",
             "fetch_add": "fetch_add", "fetch_sub": "fetch_sub", "fetch_or": "fetch_or",
             "fetch_and": "fetch_and", "fetch_xor": "fetch_xor", "thread_fence": "fence"}
CAS_FAILURE = {"seq_cst": "seq_cst", "acq_rel": "acquire", "release": "relaxed",
               "acquire": "acquire", "relaxed": "relaxed", "consume": "consume"}


def op_text(kind, orders, obj):
    if kind in ("cas", "cas_weak") and len(orders) == 1:
        orders = [orders[0], CAS_FAILURE[orders[0]]]
    o = "/".join(orders)
    return f"fence {o}" if kind == "fence" else f"{kind} {o} {obj}"


def split_args(toks, lo, hi):
    """Top-level comma-separated argument token lists of toks[lo:hi]."""
    args, cur, depth = [], [], 0
    for t in toks[lo:hi]:
        if t.text in ("(", "[", "{"):
            depth += 1
        elif t.text in (")", "]", "}"):
            depth -= 1
        if t.text == "," and depth == 0:
            args.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur or args:
        args.append(cur)
    return args


def object_name(arg):
    """The variable an atomic argument names: the last identifier outside [...]."""
    depth, last = 0, None
    for t in arg:
        if t.text == "[":
            depth += 1
        elif t.text == "]":
            depth -= 1
        elif depth == 0 and t.kind == "ident":
            last = t.text
    return last or "?"


@dataclass
class Call:
    name: str  # possibly qualified: rl::atomic_thread_fence
    obj: str  # for a member call x.f( / x->f(: the identifier before it
    member: bool
    open: int  # index of '('


def call_at(src, i):
    toks, pairs = src.toks, src.pairs
    t = toks[i]
    if t.kind != "ident" or t.text in Source.NOT_FUNCTIONS:
        return None
    j = i + 1
    if j < len(toks) and toks[j].text == "<":  # template arguments: f<T>(
        k = j + 1
        while k < len(toks) and (toks[k].kind == "ident" or toks[k].text in ("::", "*", ",")):
            k += 1
        if k >= len(toks) or toks[k].text != ">":
            return None
        j = k + 1
    if j >= len(toks) or toks[j].text != "(":
        return None
    name, q = t.text, i
    while q >= 2 and toks[q - 1].text == "::" and toks[q - 2].kind == "ident":
        name = toks[q - 2].text + "::" + name
        q -= 2
    obj, member = None, False
    if q >= 1 and toks[q - 1].text in (".", "->"):
        member = True
        k = q - 2
        while k >= 0 and toks[k].text in ("]", ")"):
            k = pairs[k] - 1
        obj = toks[k].text if k >= 0 and toks[k].kind == "ident" else None
    return Call(name, obj, member, j)


class Reader:
    """Turns a function body into steps. Subclasses classify calls (lib/ or Relacy)."""

    def __init__(self, sources):
        self.sources = sources  # file name -> Source

    def steps(self, src, lo, hi, via=""):
        """Steps of src.toks[lo+1:hi] (lo, hi: the enclosing braces or bounds)."""
        toks, pairs = src.toks, src.need_pairs()
        out, stack, i = [], [], lo + 1
        while i < hi:
            t = toks[i]
            c = call_at(src, i) if t.kind == "ident" else None
            if c is None and t.kind == "ident":
                self.check_ident(src, i, lo, hi)
            if c is not None:
                if c.name in self.skip_calls:
                    i = pairs[c.open] + 1
                    continue
                stack.append((c, i))
                i = c.open + 1
                continue
            if t.text == "(":
                stack.append((None, i))
            elif t.text == ")":
                if not stack:
                    raise DriftError(f"{src.where(i)}: unbalanced ')'")
                c, at = stack.pop()
                if c is not None:
                    args = split_args(toks, c.open + 1, i)
                    where = src.where(at) + via
                    out.extend(self.call_steps(src, c, args, where, via))
            i += 1
        return out

    skip_calls = set()

    def check_ident(self, src, i, lo, hi):
        pass


class LibReader(Reader):
    skip_calls = LIB_SKIP_CALLS

    def __init__(self, sources, atomic_h, unit_names):
        super().__init__(sources)
        self.macros = self._atomic_macros(atomic_h)
        self.unit_by_func = unit_names  # lib function name -> canonical
        self.other_atomic_macros = set()
        for s in sources.values():
            for text, _ in s.directives:
                m = re.match(r"#\s*define\s+(\w+)\s*\(", text)
                if m and m.group(1) not in self.macros and self._mentions_atomics(text):
                    self.other_atomic_macros.add(m.group(1))
        self._has = {}

    @staticmethod
    def _atomic_macros(src):
        """atomic.h's named wrappers -> (kind, [orders])."""
        out = {}
        for text, line in src.directives:
            m = re.match(r"#\s*define\s+(\w+)\s*\(([^)]*)\)(.*)", text.replace("\\\n", " "), re.S)
            if not m:
                continue
            body = m.group(3)
            f = re.search(r"\batomic_(\w+?)(?:_explicit)?\s*\(", body)
            if not f or f.group(1) not in C11_KINDS:
                continue
            orders = re.findall(r"memory_order_(\w+)", body) or ["seq_cst"]
            out[m.group(1)] = (C11_KINDS[f.group(1)], orders)
        if not out:
            raise DriftError(f"{src.display}: no atomic macros found")
        return out

    def _mentions_atomics(self, text):
        return bool(re.search(r"\batomic_\w+\s*\(", text)) or any(
            re.search(r"\b%s\s*\(" % re.escape(m), text) for m in self.macros)

    def c11(self, name):
        m = re.fullmatch(r"atomic_(\w+?)(_explicit)?", name)
        if m and m.group(1) in C11_KINDS:
            return C11_KINDS[m.group(1)], bool(m.group(2))
        return None

    def find_defs(self, name, prefer):
        """Definitions of name: the one in prefer (the caller's file) if any, else all of lib/."""
        if prefer is not None and name in prefer.definitions():
            return [(prefer, d) for d in prefer.definitions()[name]]
        return [(s, d) for s in self.sources.values() for d in s.definitions().get(name, [])]

    def find_def(self, name, prefer, where):
        hits = self.find_defs(name, prefer)
        if len(hits) != 1:
            raise DriftError(f"{where}: {len(hits)} definitions of {name}() in lib/ (want 1)")
        return hits[0]

    def has_atomics(self, name, prefer=None, seen=None):
        key = (name, prefer.path if prefer else None)
        if key in self._has:
            return self._has[key]
        seen = set() if seen is None else seen
        if name in seen:
            return False
        seen.add(name)
        result = False
        for src, (lo, hi) in self.find_defs(name, prefer):
            for i in range(lo + 1, hi):
                c = call_at(src, i)
                if c is None or c.member:
                    continue
                if (c.name in self.macros or self.c11(c.name) or c.name == "atomic_init"
                        or c.name in self.other_atomic_macros
                        or self.has_atomics(c.name, src, seen)):
                    result = True
                    break
            if result:
                break
        self._has[key] = result
        return result

    def call_steps(self, src, c, args, where, via):
        name = c.name
        if name in self.macros:
            kind, orders = self.macros[name]
            obj = None if kind == "fence" else self.obj(args[0])
            return [Step(op_text(kind, orders, obj), where)]
        k = self.c11(name)
        if k is not None:
            kind, explicit = k
            orders = [re.search(r"memory_order_(\w+)", "".join(t.text for t in a)).group(1)
                      for a in args if any(t.text.startswith("memory_order_") for t in a)]
            orders = orders or ["seq_cst"]
            obj = None if kind == "fence" else self.obj(args[0])
            return [Step(op_text(kind, orders, obj), where)]
        if name == "atomic_init":
            return [Step(op_text("store", ["relaxed"], self.obj(args[0])),
                         where + " (atomic_init)")]
        if c.member:
            entry = LIB_MEMBER_CALLS.get((c.obj, name), (None,))[0]
            return self.apply(entry, src, c, args, where, via) if entry else []
        if name in self.unit_by_func:
            return [Step("call " + self.unit_by_func[name], where)]
        entry = LIB_CALLS.get(name, (None,))[0]
        if entry is not None:
            return self.apply(entry, src, c, args, where, via)
        if name in self.other_atomic_macros:
            raise DriftError(f"{where}: macro {name}() has atomic operations: classify it in "
                             f"LIB_CALLS (check_drift.py)")
        if self.has_atomics(name, src):
            raise DriftError(f"{where}: {name}() reaches atomic operations but is neither "
                             f"compared nor classified: add it to UNITS or LIB_CALLS "
                             f"(check_drift.py)")
        return []

    def obj(self, arg):
        o = object_name(arg)
        return LIB_OBJECT_ALIASES.get(o, o)

    def apply(self, entry, src, c, args, where, via):
        if entry == IGNORE:
            return []
        if entry == EXPAND:
            d = self.find_def(c.name, src, where)
            if via.count(" via ") > 8:
                raise DriftError(f"{where}: expansion too deep")
            s2, (lo, hi) = d
            return self.steps(s2, lo, hi, f" via {c.name}(){via}")
        what, arg = entry
        if what == "call":
            return [Step("call " + arg, where)]
        if what in ("futex", "mutex"):
            return [Step(f"{arg} {self.obj(args[0])}", where)]
        if what == "alias":
            s2, (lo, hi) = self.find_def(c.name, src, where)
            inner = {s.text for s in self.steps(s2, lo, hi, f" via {c.name}()")}
            if inner != {"call " + arg}:
                raise DriftError(f"{where}: {c.name}() was read as a wrapper of {arg}, but it "
                                 f"does {sorted(inner)}: update LIB_CALLS (check_drift.py)")
            return [Step("call " + arg, where)]
        raise AssertionError(entry)


RELACY_METHODS = {"load": "load", "store": "store", "exchange": "exchange",
                  "compare_exchange_strong": "cas", "compare_exchange_weak": "cas_weak",
                  "fetch_add": "fetch_add", "fetch_sub": "fetch_sub", "fetch_or": "fetch_or",
                  "fetch_and": "fetch_and", "fetch_xor": "fetch_xor"}
MUTEX_METHODS = {"lock": "mutex_lock", "try_lock": "mutex_trylock", "unlock": "mutex_unlock"}


class RelacyReader(Reader):
    def __init__(self, sources, funcs, deque_methods):
        super().__init__(sources)
        self.funcs = funcs  # model file -> {function: canonical}
        self.deque_methods = deque_methods  # method -> canonical
        self.orders = {f: parse_constants(sources[f], s) for f, s in RELACY_ORDERS.items()}
        self.atomics = set()  # names of rl::atomic variables and members
        for src in sources.values():
            toks = src.toks
            for i in range(len(toks) - 3):
                if [t.text for t in toks[i:i + 4]] == ["rl", "::", "atomic", "<"]:
                    j, depth = i + 3, 0
                    while True:
                        depth += toks[j].text == "<"
                        depth -= toks[j].text == ">"
                        j += 1
                        if depth == 0:
                            break
                    if toks[j].kind == "ident":
                        self.atomics.add(toks[j].text)
        self._locals = {}

    def locals_of(self, src, lo, hi):
        """Names declared in src.toks[lo:hi] (`T x =`, `T *x;`, ...): they may shadow members."""
        key = (id(src), lo, hi)
        if key not in self._locals:
            toks, names = src.toks, set()
            for k in range(lo + 1, hi - 1):
                t = toks[k]
                if (t.kind == "ident" and toks[k + 1].text in ("=", ";", ",", "[")
                        and (toks[k - 1].text in ("*", "&", ">")
                             or (toks[k - 1].kind == "ident"
                                 and toks[k - 1].text not in ("return", "delete", "else")))):
                    names.add(t.text)
            self._locals[key] = names
        return self._locals[key]

    def check_ident(self, src, i, lo, hi):
        """An rl::atomic must be used through a method (with an explicit order) or passed by
        reference: an operator (x++, x = v, if (x)) would be an implicit seq_cst access."""
        toks = src.toks
        name = toks[i].text
        if name not in self.atomics:
            return
        qualified = toks[i - 1].text in (".", "->")
        if not qualified and name in self.locals_of(src, lo, hi):
            return
        j = i + 1
        if toks[j].text == "[":
            j = src.need_pairs()[j] + 1
        if toks[j].text in (".", ",", ")"):
            return
        if not qualified and toks[i - 1].text in ("*", "&", ">") and toks[j].text in ("=", ";"):
            return  # a declaration
        raise DriftError(f"{src.where(i)}: rl::atomic `{name}` used without a method: an "
                         f"implicit seq_cst access check_drift cannot compare; write "
                         f"{name}.load/.store(..., order, $)")

    def order(self, src, arg, where):
        text = "".join(t.text for t in arg)
        m = re.fullmatch(r"(?:rl|std)::(?:mo_|memory_order_)(\w+)", text)
        if m:
            return m.group(1)
        m = re.fullmatch(r"O::(\w+)", text)
        if m:
            table = self.orders.get(os.path.basename(src.path))
            if table is None or m.group(1) not in table:
                raise DriftError(f"{where}: cannot resolve {text}")
            return self.order(src, table[m.group(1)], where)
        return None

    def orders_of(self, src, args, where):
        out = [o for o in (self.order(src, a, where) for a in args) if o is not None]
        if not out:
            raise DriftError(f"{where}: atomic operation without a memory order")
        return out

    def call_steps(self, src, c, args, where, via):
        name = c.name
        if c.member and name in RELACY_METHODS:
            obj = MODEL_OBJECT_ALIASES.get(c.obj, c.obj)
            return [Step(op_text(RELACY_METHODS[name], self.orders_of(src, args, where), obj),
                         where)]
        if name in ("rl::atomic_thread_fence", "std::atomic_thread_fence"):
            return [Step(op_text("fence", self.orders_of(src, args, where), None), where)]
        if c.member and c.obj == "deque" and name in self.deque_methods:
            return [Step("call " + self.deque_methods[name], where)]
        if c.member and name in MUTEX_METHODS:
            return [Step(f"{MUTEX_METHODS[name]} {c.obj}", where)]
        if c.member:
            return []
        base = name.split("::")[-1]
        here = self.funcs.get(os.path.basename(src.path), {})
        if base in here:
            return [Step("call " + here[base], where)]
        entry = MODEL_CALLS.get(base, (None,))[0]
        if entry is not None:
            if entry == IGNORE:
                return []
            what, arg = entry
            if what == "call":
                return [Step("call " + arg, where)]
            obj = object_name(args[0])
            return [Step(f"{arg} {MODEL_OBJECT_ALIASES.get(obj, obj)}", where)]
        if self.has_atomics(getattr(src, "_src", src), base):
            raise DriftError(f"{where}: {base}() has atomic operations but is neither compared "
                             f"nor classified: add it to UNITS or MODEL_CALLS (check_drift.py)")
        return []

    def has_atomics(self, src, name, seen=None):
        seen = set() if seen is None else seen
        if name in seen or name not in src.definitions():
            return False
        seen.add(name)
        for lo, hi in src.definitions()[name]:
            for i in range(lo + 1, hi):
                c = call_at(src, i)
                if c is None:
                    continue
                if (c.member and c.name in RELACY_METHODS) or "atomic_thread_fence" in c.name:
                    return True
                if not c.member and self.has_atomics(src, c.name, seen):
                    return True
        return False


def parse_constants(src, struct):
    """`static const T NAME = VALUE;` of a struct and of its bases: {NAME: [value tokens]}."""
    toks, pairs = src.toks, src.need_pairs()
    found = [i for i in range(len(toks) - 1)
             if toks[i].text == "struct" and toks[i + 1].text == struct]
    for i in found:
        j = i + 2
        bases = []
        if toks[j].text == ":":
            j += 1
            while toks[j].text != "{":
                if toks[j].kind == "ident" and toks[j].text not in ("public", "private"):
                    bases.append(toks[j].text)
                j += 1
        if toks[j].text != "{":
            continue  # a declaration or a use
        out = {}
        for b in bases:
            out.update(parse_constants(src, b))
        k = j + 1
        while k < pairs[j]:
            if toks[k].text == "static":
                e = k
                while toks[e].text != ";":
                    e += 1
                stmt = toks[k:e]
                eq = [n for n, t in enumerate(stmt) if t.text == "="]
                if eq:
                    out[stmt[eq[0] - 1].text] = stmt[eq[0] + 1:]
                k = e
            k += 1
        return out
    raise DriftError(f"{src.display}: struct {struct} not found")


# ---- CORE (park_relacy.cpp's abstract queue) ----


def strip_core(src, lo, hi):
    """Token indexes of src in (lo, hi) with `if (CORE) stmt` and `CORE ? a :` removed."""
    toks, pairs = src.toks, src.need_pairs()
    drop = set()
    i = lo + 1
    while i < hi:
        txt = [t.text for t in toks[i:i + 4]]
        if txt == ["if", "(", "CORE", ")"]:
            j = i + 4
            if toks[j].text == "{":
                end = pairs[j]
            else:
                end, depth = j, 0
                while not (toks[end].text == ";" and depth == 0):
                    depth += toks[end].text in "([{"
                    depth -= toks[end].text in ")]}"
                    end += 1
            if toks[end + 1].text == "else":
                raise DriftError(f"{src.where(i)}: `if (CORE) ... else` is not supported")
            drop.update(range(i, end + 1))
            i = end + 1
            continue
        if txt[:2] == ["CORE", "?"]:
            j, depth = i + 2, 0
            while not (toks[j].text == ":" and depth == 0):
                depth += toks[j].text in "([{"
                depth -= toks[j].text in ")]}"
                j += 1
            drop.update(range(i, j + 1))
            i = j + 1
            continue
        if toks[i].text == "CORE":
            raise DriftError(f"{src.where(i)}: a use of CORE that check_drift cannot read")
        i += 1
    return drop


class CoreStripped:
    """A view of a Source without the CORE parts of one range (same interface as Source)."""

    def __init__(self, src, lo, hi):
        drop = strip_core(src, lo, hi)
        keep = [i for i in range(lo, hi + 1) if i not in drop]
        self.toks = [src.toks[i] for i in keep]
        self.path, self.display = src.path, src.display
        index = {old: new for new, old in enumerate(keep)}
        self.pairs = {index[a]: index[b] for a, b in src.pairs.items()
                      if a in index and b in index}
        self._src = src
        self.lo, self.hi = 0, len(self.toks) - 1

    def need_pairs(self):
        return self.pairs

    def where(self, i):
        return f"{self.display}:{self.toks[i].line}"

    def definitions(self):
        return self._src.definitions()


# ================================================================================================
# Promela
# ================================================================================================

PROMELA_TYPES = {"byte", "bool", "bit", "short", "int", "unsigned", "chan", "mtype", "pid"}


class SpinReader:
    def __init__(self, src):
        self.src = src
        self.globals = self._globals()
        for g in self.globals:
            if g not in SPIN_VARS:
                raise DriftError(f"{src.display}: global `{g}` is not in SPIN_VARS "
                                 f"(check_drift.py): say which lib/ variable it is")

    def _globals(self):
        toks, pairs = self.src.toks, self.src.need_pairs()
        out, i, depth = [], 0, 0
        while i < len(toks):
            t = toks[i]
            if t.text in ("{", "("):  # bodies; parameter lists
                i = pairs[i] + 1
                continue
            if t.text in PROMELA_TYPES:
                j = i + 1
                expect = True
                while toks[j].text != ";":
                    if expect and toks[j].kind == "ident":
                        out.append(toks[j].text)
                        expect = False
                    elif toks[j].text == ",":
                        expect = True
                    elif toks[j].text in ("[", "("):
                        j = pairs[j]
                    j += 1
                i = j
            i += 1
        return out

    def var(self, name):
        return SPIN_VARS.get(name) if name in self.globals else None

    def shared_reads(self, toks):
        return [self.var(t.text) for t in toks
                if t.kind == "ident" and self.var(t.text) is not None]

    def steps(self, lo, hi, in_atomic=False):
        src, toks, pairs = self.src, self.src.toks, self.src.need_pairs()
        out, i, guard = [], lo + 1, False
        while i < hi:
            t = toks[i]
            x = t.text
            if x in ("if", "do", "fi", "od", ";", "->"):
                i += 1
                continue
            if x == "::":
                guard = True
                i += 1
                continue
            if x in ("else", "skip", "break"):
                guard = False
                i += 1
                continue
            if x == "goto":
                guard = False
                i += 2
                continue
            if t.kind == "ident" and i + 1 < hi and toks[i + 1].text == ":":
                i += 2  # label
                continue
            if x in ("atomic", "d_step"):
                close = pairs[i + 1]
                inner = self.steps(i + 1, close, in_atomic=True)
                out.extend(self.combine(inner, src.where(i)))
                guard = False
                i = close + 1
                continue
            if x in PROMELA_TYPES:
                while toks[i].text != ";":
                    i += 1
                continue
            j, depth = i, 0
            while j < hi:
                y = toks[j].text
                if depth == 0 and y in (";", "->", "::", "fi", "od", "}"):
                    break
                depth += y in ("(", "[")
                depth -= y in (")", "]")
                j += 1
            out.extend(self.statement(toks[i:j], guard or in_atomic, src.where(i)))
            guard = False
            i = j
        return out

    def statement(self, st, guard, where):
        names = [t.text for t in st]
        if st[0].kind == "ident" and len(st) > 1 and names[1] == "(":
            if names[0] in SPIN_INLINE_CALLS:
                return [Step("call " + SPIN_INLINE_CALLS[names[0]], where)]
            if names[0] in SPIN_IGNORE_CALLS:
                return []
            raise DriftError(f"{where}: call of {names[0]} not known to check_drift")
        if names[-1] in ("++", "--") and st[0].kind == "ident":
            v = self.var(names[0])
            kind = "fetch_add" if names[-1] == "++" else "fetch_sub"
            return [Step(f"{kind} {v}", where)] if v else []
        if "=" in names:
            k = names.index("=")
            lhs, rhs = st[:k], st[k + 1:]
            v = self.var(lhs[0].text)
            reads = self.shared_reads(rhs)
            if v is None:
                return [Step(f"load {r}", where) for r in reads]
            if lhs[0].text in SPIN_MUTEXES and [t.text for t in rhs] == ["0"]:
                return [Step(f"mutex_unlock {v}", where)]
            rhs_names = [t.text for t in rhs]
            if lhs[0].text in rhs_names:
                at = rhs_names.index(lhs[0].text)
                op = rhs_names[at + 1] if at + 1 < len(rhs_names) else None
                kind = {"|": "fetch_or", "&": "fetch_and", "+": "fetch_add",
                        "-": "fetch_sub"}.get(op)
                if kind is None:
                    raise DriftError(f"{where}: cannot read `{' '.join(names)}`")
                others = [r for r in reads if r != v]
                return [Step(f"load {r}", where) for r in others] + [Step(f"{kind} {v}", where)]
            return [Step(f"load {r}", where) for r in reads] + [Step(f"store {v}", where)]
        reads = self.shared_reads(st)
        if guard:
            return [Step(f"load {r}", where) for r in reads]
        if not reads:
            return []
        if reads in (["words"], ["wake"]):
            return [Step("futex_wait " + reads[0], where)]
        return [Step("block " + ",".join(reads), where)]

    def combine(self, inner, where):
        """An atomic block: one step on its one variable."""
        if not inner:
            return []
        objs = {s.text.split()[1] for s in inner}
        if len(objs) != 1:
            raise DriftError(f"{where}: atomic block on several variables: "
                             f"{[s.text for s in inner]}")
        v = objs.pop()
        kinds = [s.text.split()[0] for s in inner]
        writes = [k for k in kinds if k != "load"]
        if not writes:
            return inner
        if len(writes) > 1:
            raise DriftError(f"{where}: atomic block with several writes: {kinds}")
        w = writes[0]
        if w == "store":
            if "load" not in kinds:
                return [Step(f"store {v}", where)]
            name = [k for k, val in SPIN_VARS.items() if val == v][0]
            if name in SPIN_LOCKS:
                return [Step("mutex_lock " + v, where)]
            return [Step(("mutex_trylock " if name in SPIN_MUTEXES else "cas ") + v, where)]
        return [Step(f"{w} {v}", where)]


# ================================================================================================
# Comparing
# ================================================================================================


def parse_steps(s):
    return [x.strip() for x in s.split(";") if x.strip()]


def strip_order(text):
    w = text.split()
    if w[0] in ORDERED and len(w) == 3:
        return f"{w[0]} {w[2]}"
    return text


class Checker:
    def __init__(self, lib_dir, model_dir, out):
        self.lib_dir, self.model_dir, self.out = lib_dir, model_dir, out
        self.failures = 0
        self.compared = {"relacy": 0, "spin": 0}
        self.used = {}  # (dev index, unit) -> count
        self.verbose = False

    def display(self, path):
        p = os.path.abspath(path)
        return os.path.relpath(p, REPO) if p.startswith(REPO + os.sep) else p

    def load(self):
        lib = {}
        for n in sorted(os.listdir(self.lib_dir)):
            if n.endswith((".c", ".h")):
                p = os.path.join(self.lib_dir, n)
                lib[n] = Source(p, self.display(p))
        if "atomic.h" not in lib:
            raise DriftError(f"{self.lib_dir}: no atomic.h")
        models = {}
        for n in ("deque_model.h", "park_relacy.cpp"):
            p = os.path.join(self.model_dir, n)
            models[n] = Source(p, self.display(p))
        p = os.path.join(self.model_dir, "park.pml")
        self.pml = Source(p, self.display(p), macros=SPIN_LIB_MACROS)
        self.lib, self.models = lib, models
        lib_funcs = {u.lib[1]: u.name for u in UNITS}
        self.libr = LibReader(lib, lib["atomic.h"], lib_funcs)
        funcs = {}
        for u in UNITS:
            if u.relacy and not u.relacy[1].startswith("@"):
                funcs.setdefault(u.relacy[0], {})[u.relacy[1]] = u.name
        self.relr = RelacyReader(models, funcs, funcs.get("deque_model.h", {}))
        self.spinr = SpinReader(self.pml)
        self._lib_raw = {}

    # ---- the lib/ side ----
    def unit(self, name):
        return next(u for u in UNITS if u.name == name)

    def lib_raw(self, name):
        if name not in self._lib_raw:
            u = self.unit(name)
            f = u.lib[0]
            if f not in self.lib:
                raise DriftError(f"{self.lib_dir}: no {f}")
            src = self.lib[f]
            lo, hi = src.function(u.lib[1])
            if len(u.lib) > 2 and u.lib[2] == "loop":
                lo, hi = src.first_forever_loop(lo, hi, u.lib[1])
            self._lib_raw[name] = self.libr.steps(src, lo, hi)
        return self._lib_raw[name]

    def lib_label(self, u):
        s = self.lib[u.lib[0]].display
        return f"{s} {u.lib[1]}" + ("'s loop" if len(u.lib) > 2 else "")

    # ---- the Relacy side ----
    def relacy_steps(self, u):
        f, what = u.relacy[0], u.relacy[1]
        src = self.models[f]
        if what.startswith("@"):
            lo, hi = src.marker_region(what[1:])
        else:
            lo, hi = src.function(what)
            if len(u.relacy) > 2 and u.relacy[2] == "loop":
                lo, hi = src.first_forever_loop(lo, hi, what)
        view = CoreStripped(src, lo, hi)
        return self.relr.steps(view, view.lo, view.hi)

    def relacy_label(self, u):
        s = self.models[u.relacy[0]].display
        w = u.relacy[1]
        return f"{s} " + (f"region {w[1:]}" if w.startswith("@") else w +
                          ("'s loop" if len(u.relacy) > 2 else ""))

    # ---- the Spin side ----
    def spin_lib(self, steps, depth=0):
        out = []
        for s in steps:
            kind = s.text.split()[0]
            if kind == "fence":
                continue
            if kind == "futex_wake":
                continue
            if kind == "call":
                c = s.text.split()[1]
                rule = SPIN_RULES.get(c) or (SPIN_RULES["deque"] if c.startswith("deque.")
                                             else None)
                if rule is not None:
                    if rule[0]:
                        out.extend(Step(t, s.where) for t in parse_steps(rule[0]))
                    continue
                if c in SPIN_KEEP_CALLS or not any(u.name == c for u in UNITS):
                    out.append(s)
                    continue
                if depth > 8:
                    raise DriftError(f"{s.where}: expansion too deep")
                out.extend(Step(x.text, f"{x.where} via {c}")
                           for x in self.spin_lib(self.lib_raw(c), depth + 1))
                continue
            out.append(Step(strip_order(s.text), s.where))
        return out

    def spin_steps(self, u):
        if u.spin.startswith("@"):
            lo, hi = self.pml.marker_region(u.spin[1:])
        else:
            lo, hi = self.pml.promela_unit(u.spin)
        return self.spinr.steps(lo, hi)

    # ---- the comparison ----
    def rewrite(self, checker, unit, side, steps):
        for n, d in enumerate(DEVIATIONS):
            if d.checker != checker or unit not in d.units or d.side != side:
                continue
            old, new = parse_steps(d.old), parse_steps(d.new)
            texts = [s.text for s in steps]
            hits, i, res = 0, 0, []
            while i < len(steps):
                if texts[i:i + len(old)] == old:
                    w = steps[i].where
                    res.extend(Step(t, w + f" (deviation {n + 1})") for t in new)
                    hits += 1
                    i += len(old)
                else:
                    res.append(steps[i])
                    i += 1
            self.used[(n, unit)] = hits
            steps = res
        return steps

    def compare(self, checker, u, lib_steps, model_steps, lib_label, model_label):
        self.compared[checker] += 1
        lib_steps = self.rewrite(checker, u.name, "lib", lib_steps)
        model_steps = self.rewrite(checker, u.name, "model", model_steps)
        stale = [(n, d) for n, d in enumerate(DEVIATIONS)
                 if d.checker == checker and u.name in d.units
                 and self.used.get((n, u.name)) != d.count]
        a, b = [s.text for s in lib_steps], [s.text for s in model_steps]
        ndev = sum(1 for n, d in enumerate(DEVIATIONS)
                   if d.checker == checker and u.name in d.units)
        p = self.out
        if a == b and not stale:
            extra = f", {ndev} allowed deviation{'s' * (ndev != 1)}" if ndev else ""
            p.write(f"ok     {checker:<6} {u.name:<22} {len(a):2d} operations matched "
                    f"({lib_label} == {model_label}{extra})\n")
            if self.verbose:
                for k, s in enumerate(lib_steps):
                    p.write(f"           {k + 1:2d}. {s.text}\n")
            return
        self.failures += 1
        for n, d in stale:
            p.write(f"STALE  {checker:<6} {u.name}: deviation {n + 1} ({d.side}: '{d.old}' -> "
                    f"'{d.new}') matched {self.used.get((n, u.name), 0)} time(s), expected "
                    f"{d.count}. If lib/ and the model now agree here, delete the entry from "
                    f"DEVIATIONS in tests/model/check_drift.py; else update it.\n")
        if a != b:
            k = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
            la = f"{a[k]}  ({lib_steps[k].where})" if k < len(a) else "(nothing more)"
            lb = f"{b[k]}  ({model_steps[k].where})" if k < len(b) else "(nothing more)"
            p.write(f"DRIFT  {checker:<6} {u.name}: {lib_label} vs {model_label} differ at "
                    f"operation {k + 1}:\n"
                    f"         lib:   {la}\n"
                    f"         model: {lb}\n")
            width = max([len(x) for x in a] + [10])
            p.write(f"         {'lib/ (after deviations)':<{width + 5}} model (after deviations)\n")
            for j in range(max(len(a), len(b))):
                x = a[j] if j < len(a) else ""
                y = b[j] if j < len(b) else ""
                mark = "  " if x == y else "!="
                p.write(f"      {mark} {j + 1:2d}. {x:<{width}}  {y}\n")

    def run(self):
        self.load()
        for name, struct, flags, why in [(f, s, fl, w) for f, s, fl, w in LIB_VARIANTS]:
            vals = parse_constants(self.models[name], struct)
            for k, want in flags.items():
                got = " ".join(t.text for t in vals.get(k, []))
                if got != want:
                    self.failures += 1
                    self.out.write(f"DRIFT  relacy {name} {struct}::{k} is {got or '(missing)'}, "
                                   f"want {want} ({why})\n")
        for checker in ("relacy", "spin"):
            for u in UNITS:
                try:
                    if checker == "relacy" and u.relacy is not None:
                        self.compare("relacy", u, self.lib_raw(u.name), self.relacy_steps(u),
                                     self.lib_label(u), self.relacy_label(u))
                    elif checker == "spin" and u.spin is not None:
                        label = f"{self.pml.display} " + (
                            f"region {u.spin[1:]}" if u.spin[0] == "@" else u.spin)
                        self.compare("spin", u, self.spin_lib(self.lib_raw(u.name)),
                                     self.spin_steps(u), self.lib_label(u), label)
                except DriftError as e:
                    self.failures += 1
                    for n, d in enumerate(DEVIATIONS):
                        if d.checker == checker and u.name in d.units:
                            self.used.setdefault((n, u.name), d.count)  # not stale: not read
                    self.out.write(f"ERROR  {checker:<6} {u.name}: {e}\n")
        # deviations naming a unit no checker compares
        for n, d in enumerate(DEVIATIONS):
            for un in d.units:
                if (n, un) not in self.used:
                    self.failures += 1
                    self.out.write(f"STALE  deviation {n + 1} names {un}, which {d.checker} does "
                                   f"not compare\n")
        found = sum(1 for d in DEVIATIONS if d.kind == FOUND)
        self.out.write(
            f"check_drift: {self.compared['relacy']} functions compared with Relacy, "
            f"{self.compared['spin']} with Spin; {len(DEVIATIONS)} allowed deviations "
            f"({found} {FOUND}); " +
            ("no drift\n" if not self.failures else f"{self.failures} FAILURE(S)\n"))
        if self.verbose:
            self.out.write("allowed deviations:\n")
            for n, d in enumerate(DEVIATIONS):
                self.out.write(f"  {n + 1:2d}. {d.checker} {', '.join(d.units)} [{d.side}] "
                               f"'{d.old}' -> '{d.new}'\n      {d.kind}: {d.why}\n")
            self.out.write("claimed by the models but not compared:\n")
            for k, v in NOT_COMPARED.items():
                self.out.write(f"  {k}: {v}\n")
        return self.failures == 0


def check(lib_dir, model_dir, out, verbose=False):
    c = Checker(lib_dir, model_dir, out)
    c.verbose = verbose
    try:
        return c.run()
    except DriftError as e:
        out.write(f"ERROR  {e}\n")
        return False


# ================================================================================================
# Self-test
# ================================================================================================

# (lib/ or models, file, scope, text, replacement, what the failure must name). The text must
# occur once in the scope: the body of a function (C: its name; Promela: "inline NAME" or
# "proctype NAME"), or the whole file (None).
MUTATIONS = [
    # the split deque: take_shared's store-load pair, steal's load of split, publish's release
    ("lib", "deque.h", "weft__deque_take_shared", "st_seq_cst(&d->split, b);",
     "st_release(&d->split, b);", "relacy deque.take_shared"),
    ("models", "deque_model.h", None, "take_top = rl::mo_seq_cst;", "take_top = rl::mo_acquire;",
     "relacy deque.take_shared"),
    ("lib", "deque.c", "weft__deque_steal", "int64_t s = ld_seq_cst(&d->split);",
     "int64_t s = ld_acquire(&d->split);", "relacy deque.steal"),
    ("models", "deque_model.h", "steal", "split.load(O::steal_split, $)",
     "split.load(rl::mo_acquire, $)", "relacy deque.steal"),
    ("lib", "deque.c", "weft__deque_steal", "cas_seq_cst(&d->top, &t, t + 1)",
     "cas_acq_rel(&d->top, &t, t + 1)", "relacy deque.steal"),
    ("lib", "deque.h", "weft__deque_publish", "st_release(&d->split, b);",
     "st_relaxed(&d->split, b);", "relacy deque.publish"),
    # a private take that no longer reads split
    ("lib", "deque.h", "weft__deque_take", "b >= ld_relaxed(&d->split)", "b >= 0",
     "DRIFT  relacy deque.take:"),
    # the variant the model calls lib/'s leaves split lowered
    ("models", "deque_model.h", None, "take_repair = true;", "take_repair = false;",
     "DequeOrders::take_repair is false"),
    # weft__help no longer shares the private frames first
    ("lib", "worker.c", "weft__help", "weft__publish(w);", "(void)0;", "relacy worker.help"),
    ("lib", "park.c", "weft__park_prepare", "weft_fence_seq_cst();", "(void)0;",
     "relacy park.prepare"),
    ("models", "park_relacy.cpp", "park_prepare", "fetch_or(1ul << i, rl::mo_seq_cst",
     "fetch_or(1ul << i, rl::mo_acq_rel", "relacy park.prepare"),
    ("lib", "inject.c", "weft__inject_maybe_nonempty", "ld_acquire(", "ld_relaxed(",
     "relacy inject.maybe_nonempty"),
    ("lib", "worker.c", "run_worker", "weft__work_visible(pool) || weft__lend_wanted(w)",
     "weft__lend_wanted(w) || weft__work_visible(pool)", "relacy worker.main_loop"),
    ("lib", "worker.c", "run_worker", "weft__work_visible(pool) || weft__lend_wanted(w)",
     "weft__lend_wanted(w) || weft__work_visible(pool)", "spin   worker.main_loop"),
    ("lib", "lend.c", "weft__lend_reclaim",
     "st_release(&w->want_back, ld_relaxed(&w->want_back) + 1);",
     "st_relaxed(&w->want_back, ld_relaxed(&w->want_back) + 1);", "relacy lend.reclaim"),
    ("lib", "worker.c", "block", "weft__lend_reclaim(w, me);", "(void)0;", "spin   worker.help"),
    ("models", "park.pml", "inline run_worker",
     "    key = word[i];                 /* weft__park_prepare: ld_acquire(word) */\n"
     "    idle = idle | (1 << i);        /* or_seq_cst(idle, bit); F1 */\n",
     "    idle = idle | (1 << i);        /* or_seq_cst(idle, bit); F1 */\n"
     "    key = word[i];                 /* weft__park_prepare: ld_acquire(word) */\n",
     "spin   worker.main_loop"),
    ("models", "park.pml", "inline notify_one", "atomic { old = idle; idle = idle & ~lowbit }",
     "old = idle; idle = idle & ~lowbit", "spin   park.notify_one"),
    # a drift fixed on one side: its DEVIATIONS entry no longer applies
    ("lib", "pool.c", "teardown", "st_relaxed(&pool->nthreads, all);", "/* gone */",
     "STALE  relacy pool.destroy"),
    # teardown's order weakened in the model
    ("models", "park_relacy.cpp", "run_task", "SHUT_CLOSED | SHUT_EXIT, rl::mo_seq_cst",
     "SHUT_CLOSED | SHUT_EXIT, rl::mo_acq_rel", "DRIFT  relacy pool.destroy"),
    # an implicit (operator) access to an rl::atomic in a model
    ("models", "park_relacy.cpp", "notify_one", "v = idle.load(rl::mo_relaxed, $);", "v = idle;",
     "rl::atomic `idle` used without a method"),
    # the variant the model calls lib/'s switches a guarded operation off
    ("models", "park_relacy.cpp", None,
     "    static const bool owed = true;  /* worker.c run_worker",
     "    static const bool owed = false;  /* worker.c run_worker",
     "ParkLib::owed is false"),
    # an operation added to lib/ only
    ("lib", "worker.c", "find_task", "struct weft__task *t = weft__deque_take(&w->deque);",
     "st_relaxed(&w->taking, 0);\n    struct weft__task *t = weft__deque_take(&w->deque);",
     "DRIFT  relacy worker.find_task"),
    # a new helper with an atomic operation must be classified
    ("lib", "worker.c", None, "static struct weft__task *find_task(struct weft__worker *w)\n{\n",
     "static void new_helper(struct weft__worker *w) { st_relaxed(&w->taking, 0); }\n"
     "static struct weft__task *find_task(struct weft__worker *w)\n{\n    new_helper(w);\n",
     "new_helper() reaches atomic operations"),
]


def mutate(path, scope, old, new):
    """Replaces old by new inside scope of the file; returns the original text, or an error."""
    with open(path, encoding="utf-8") as f:
        orig = f.read()
    lo, hi = 0, len(orig)
    if scope is not None:
        try:
            src = Source(path, path, macros=SPIN_LIB_MACROS if path.endswith(".pml") else None)
            a, b = (src.promela_unit(scope) if " " in scope else src.function(scope))
        except DriftError as e:
            return None, str(e)
        lo, hi = src.toks[a].pos, src.toks[b].pos
    n = orig.count(old, lo, hi)
    if n != 1:
        return None, f"the text to change occurs {n} times in {scope or 'the file'} (want 1)"
    at = orig.index(old, lo, hi)
    with open(path, "w", encoding="utf-8") as f:
        f.write(orig[:at] + new + orig[at + len(old):])
    return orig, None


def self_test(lib_dir, model_dir):
    ok = True
    with tempfile.TemporaryDirectory(prefix="check_drift.") as tmp:
        dirs = {"lib": os.path.join(tmp, "lib"), "models": os.path.join(tmp, "model")}
        shutil.copytree(lib_dir, dirs["lib"])
        shutil.copytree(model_dir, dirs["models"], ignore=shutil.ignore_patterns("*.trace"))
        buf = io.StringIO()
        if not check(dirs["lib"], dirs["models"], buf):
            print("self-test: FAIL: the unmodified copy does not pass:")
            print(buf.getvalue())
            return False
        print("self-test: the unmodified copy passes")
        for where, name, scope, old, new, expect in MUTATIONS:
            path = os.path.join(dirs[where], name)
            first = [x.strip().splitlines()[0][:50] for x in (old, new)]
            label = (f"{'lib/' if where == 'lib' else 'tests/model/'}{name}"
                     f"{' ' + scope if scope else ''}: {first[0]!r} -> {first[1]!r}")
            orig, err = mutate(path, scope, old, new)
            if err is not None:
                print(f"self-test: FAIL: {label}: {err}: update MUTATIONS")
                ok = False
                continue
            buf = io.StringIO()
            passed = check(dirs["lib"], dirs["models"], buf)
            with open(path, "w", encoding="utf-8") as f:
                f.write(orig)
            report = buf.getvalue()
            if passed:
                print(f"self-test: FAIL: {label}: not detected")
                ok = False
            elif expect not in report:
                print(f"self-test: FAIL: {label}: failed, but without '{expect}':")
                print(report)
                ok = False
            else:
                first = next(line for line in report.splitlines() if expect in line)
                print(f"self-test: ok: {label}\n    -> {first.strip()}")
    print("self-test: " + ("PASS" if ok else "FAIL"))
    return ok


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=os.path.join(REPO, "lib"), help="lib/ directory")
    ap.add_argument("--models", default=HERE, help="tests/model directory")
    ap.add_argument("--self-test", action="store_true",
                    help="check that changes on either side are caught")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every sequence")
    args = ap.parse_args(argv)
    for d in (args.lib, args.models):
        if not os.path.isdir(d):
            ap.error(f"{d}: not a directory")
    if args.self_test:
        return 0 if self_test(args.lib, args.models) else 1
    return 0 if check(args.lib, args.models, sys.stdout, args.verbose) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
