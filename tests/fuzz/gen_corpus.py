#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz_api.c into tests/fuzz/corpus (or the directory given).

Each seed (seed-*) is a short program in the harness's encoding (see the comment at the top of
fuzz_api.c); together they reach every operation and every task kind. The regress-* inputs
written here reproduce library bugs the fuzzer found (see REGRESS); other regress-* files, saved
from fuzzer crashes, are left alone. The output is deterministic: running this again gives the
same files.
"""
import os
import sys

# opcodes
POOL_CREATE, SUBMIT, SUBMIT_DETACH, CANCEL, WAIT, RESULT, ON_DONE, RETAIN, RELEASE, GATHER, \
    GATHER_CHILD, WAIT_MANY, AS_COMPLETED, COMPL_CREATE, COMPL_ADD, COMPL_NEXT, COMPL_FD, \
    COMPL_DESTROY, SHUTDOWN, DESTROY, BAD_ARGS, GATE, LOOP, STATS, CHECK_ALL, SLEEP, \
    FAULT, HELPER, BURST, SWEEP, PROM_CREATE, PROM_SET, THEN, ABANDON, HELPER_SET, \
    RESIZE = range(36)

# task kinds: the byte that selects each in kind_table
VALUE, FAIL, SPIN, CHILD, JOIN, SLEEPK, GATEK, SELF, MULTI, DETACH, SHUT = 0, 2, 4, 5, 7, 8, 9, \
    10, 11, 12, 15
PROMISEK = 16  # a promise and continuations made inside the pool

# how a promise is completed (prom_set, helper_set)
SET_RESULT, SET_ERROR, CANCEL_P, SET_ERROR0 = range(4)

# timeouts
T0, TFOREVER, T1US, T10US, T100US, T1MS, TBAD1, TBAD2 = range(8)


def pool(slot=0, threads=1, bind=0, flags=0, name=0, max_pending=0, stack=0):
    """threads 1-4; flags: 1 hooks, 2 max_pending, 0x18 trace, 0x20 NULL out, 0x40 NULL cfg."""
    return [POOL_CREATE, slot, threads - 1, bind, flags, name, max_pending, stack]


def submit(p=0, kind=VALUE, p1=0, p2=0, p3=0, flags=0):
    return [SUBMIT, p, kind, p1, p2, p3, flags]


def detach(p=0, kind=VALUE, p1=0, p2=0, p3=0):
    return [SUBMIT_DETACH, p, kind, p1, p2, p3]


def op(code, *args):
    return [code, *args]


def prom(code=0):
    """a promise in the next free slot; code & 7 picks its set_error code"""
    return [PROM_CREATE, code]


def pset(fut, how=SET_RESULT, again=None):
    """complete future fut: how; again: a second completion right after"""
    b = how
    if again is not None:
        b |= 4 | (again << 3)
    return [PROM_SET, fut, b]


def then(fut, p=0, kind=VALUE, p1=0, p2=0, p3=0, flags=0):
    """a continuation of future fut on pool p, running a task of that kind"""
    return [THEN, fut, p, kind, p1, p2, p3, flags]


def wmany(when, tmo, mode, futs, tmo2=None):
    """weft_wait over 1 to 8 futures (see wait_many in fuzz_api.c for mode)"""
    assert 1 <= len(futs) <= 8
    return [WAIT_MANY, len(futs) - 1, when, tmo, mode, *futs] + ([] if tmo2 is None else [tmo2])


def hset(futs, hows, p=0, k=0, kind=VALUE, mode=0, first=False):
    """a helper thread submitting 1 + k % 8 tasks to pool p and completing up to 4 futures"""
    assert 1 <= len(futs) <= 4 and len(hows) == len(futs)
    how = 0
    for i, h in enumerate(hows):
        how |= h << (2 * i)
    return [HELPER_SET, p, k, kind, mode, (len(futs) - 1) | (0x80 if first else 0), how, *futs]


def seq(*parts):
    out = []
    for p in parts:
        out += p
    return bytes(out)


def results(n):
    """result on each of the first n live futures (the live ones stay in slot order)."""
    out = []
    for i in range(n):
        out += op(RESULT, i, 0)
    return out


SEEDS = {
    "resize-under-load": seq(pool(threads=2, flags=1), op(GATE, 5), submit(kind=GATEK),
                             submit(kind=JOIN, p1=4, p2=64, p3=3), op(RESIZE, 0, 3),
                             submit(kind=CHILD, p1=4, p2=2, p3=0x36), op(RESIZE, 0, 0),
                             op(RESIZE, 0, 15), op(RESIZE, 0, 31), detach(kind=DETACH, p1=2),
                             op(STATS, 0, 4), op(GATE, 0), op(RESIZE, 0, 5), submit(),
                             op(RESIZE, 0, 1), results(4), op(STATS, 0, 0x84)),
    "resize-shutdown": seq(pool(threads=3, flags=1), submit(kind=SPIN, p1=20), op(RESIZE, 0, 0),
                           op(SHUTDOWN, 0, 1), op(RESIZE, 0, 4), submit(), results(1),
                           op(DESTROY, 0)),
    "basic-value": seq(pool(), submit(), op(RESULT, 0, 0), op(RELEASE, 0)),
    "basic-fail-codes": seq(pool(threads=2), *[submit(kind=FAIL, p1=i) for i in range(8)],
                            results(8), op(CHECK_ALL)),
    "cancel-pending": seq(pool(), op(GATE, 7), submit(kind=GATEK), submit(), submit(),
                          submit(kind=FAIL), op(CANCEL, 1), op(CANCEL, 3), op(GATE, 0),
                          results(4), op(CANCEL, 0)),
    "cancel-running": seq(pool(threads=2), submit(kind=SPIN, p1=31), op(SLEEP, 40), op(CANCEL, 0),
                          op(RESULT, 0, 0), submit(kind=GATEK, p1=1), op(GATE, 3),
                          op(SLEEP, 20), op(CANCEL, 1), op(WAIT, 1, TFOREVER)),
    "children": seq(pool(threads=2), submit(kind=CHILD, p1=0, p2=1, p3=6),
                    submit(kind=CHILD, p1=4, p2=2, p3=0x36), submit(kind=CHILD, p1=1, p3=2),
                    submit(kind=MULTI, p1=3, p2=0, p3=1), submit(kind=MULTI, p1=3, p2=1),
                    submit(kind=MULTI, p1=2, p2=2, p3=3), submit(kind=MULTI, p1=3, p2=3, p3=8),
                    results(7)),
    "join-loops": seq(pool(threads=3), submit(kind=JOIN, p1=4, p2=64, p3=3),
                      submit(kind=JOIN, p1=3, p2=65, p3=0x10),
                      submit(kind=JOIN, p1=69, p2=17, p3=0x12), op(LOOP, 0, 60, 64, 2),
                      op(LOOP, 0, 5, 0, 0), results(3)),
    "self-deadlock": seq(pool(threads=2), submit(kind=SELF), op(SLEEP, 30), submit(kind=SELF),
                         op(WAIT, 1, TFOREVER), results(2)),
    "detached": seq(pool(threads=2), detach(kind=VALUE), detach(kind=DETACH, p1=2),
                    detach(kind=CHILD, p1=4), detach(kind=SLEEPK, p1=10), op(SLEEP, 50)),
    "on-done": seq(pool(), op(GATE, 2), submit(kind=GATEK), op(ON_DONE, 0, 0), op(ON_DONE, 0, 1),
                   op(ON_DONE, 0, 2), op(ON_DONE, 0, 3), op(GATE, 0), op(WAIT, 0, TFOREVER),
                   op(ON_DONE, 0, 0), op(ON_DONE, 0, 3), submit(flags=1), submit(flags=5)),
    "retain-release": seq(pool(), submit(), op(RETAIN, 0), op(RETAIN, 0), op(RELEASE, 0),
                          op(RELEASE, 0), submit(), op(RELEASE, 0), op(RESULT, 0, 0)),
    "gather-basic": seq(pool(threads=2), submit(), submit(), submit(kind=SLEEPK, p1=5),
                        op(GATHER, 3, 0, 0, 1, 2), op(RESULT, 3, 0), op(GATHER_CHILD, 3, 0),
                        op(GATHER_CHILD, 3, 2), op(GATHER_CHILD, 3, 4), op(GATHER_CHILD, 0, 0),
                        op(GATHER, 0, 0), op(RESULT, 4, 0)),
    "gather-failures": seq(pool(threads=2), submit(), submit(kind=FAIL, p1=2),
                           submit(kind=SPIN, p1=20), op(GATHER, 3, 0, 0, 1, 2),
                           op(GATHER, 3, 1, 0, 1, 2), op(GATHER, 3, 2, 0, 1, 2),
                           op(GATHER, 3, 3, 2, 1, 0), op(CHECK_ALL), results(7),
                           op(GATHER_CHILD, 4, 1), op(GATHER_CHILD, 4, 0x81)),
    "gather-nested-cancel": seq(pool(), op(GATE, 6), submit(kind=GATEK, p1=1), submit(),
                                submit(kind=SPIN, p1=30), op(GATHER, 2, 0, 0, 1),
                                op(GATHER, 2, 1, 3, 2), op(CANCEL, 4), op(GATE, 0),
                                op(CHECK_ALL), op(CANCEL, 3), results(5)),
    "gather-two-pools": seq(pool(0, threads=1), pool(1, threads=2), submit(0), submit(1),
                            submit(0, kind=FAIL), submit(1, kind=SLEEPK, p1=20),
                            op(GATHER, 4, 1, 0, 1, 2, 3), op(GATHER, 2, 0, 0, 1),
                            op(GATHER, 2, 0x1c, 0, 1), op(GATHER, 1, 0xc0, 0),
                            op(DESTROY, 0), op(CHECK_ALL), op(DESTROY, 1), op(CHECK_ALL)),
    "wait-many": seq(pool(threads=2), op(GATE, 4), submit(kind=GATEK), submit(),
                     submit(kind=FAIL, p1=1), submit(kind=SLEEPK, p1=30),
                     op(WAIT_MANY, 4, 0, TFOREVER, 0, 0, 1, 2, 3),
                     op(WAIT_MANY, 4, 1, T100US, 1, 0, 1, 2, 3),
                     op(WAIT_MANY, 4, 2, T1MS, 3 | (2 << 2), 0, 1, 2, 3, T1MS),
                     op(WAIT_MANY, 2, 3, T0, 0, 0, 1), op(WAIT_MANY, 2, 4, T0, 1, 0, 1),
                     op(WAIT_MANY, 2, 0, TBAD1, 0, 0, 1), op(GATE, 0),
                     op(WAIT_MANY, 3, 2, TFOREVER, 3, 0, 0, 1, TFOREVER)),
    "wait-many-poll": seq(pool(threads=2), submit(kind=SLEEPK, p1=31), submit(kind=SPIN, p1=9),
                          submit(), op(WAIT_MANY, 2, 2, T0, 0x81, 0, 1),
                          op(WAIT_MANY, 3, 1, T1US, 0x81, 2, 1, 0)),
    "wait-many-large": seq(pool(threads=2), submit(), submit(kind=SLEEPK, p1=3),
                           op(WAIT_MANY, 0x80 | 5, 2, TFOREVER, 1, *([0, 1] * 35)),
                           op(WAIT_MANY, 0x80 | 9, 0, T10US, 0, *([1, 0] * 37))),
    "wait-single": seq(pool(), op(GATE, 1), submit(kind=GATEK), op(WAIT, 0, T0),
                       op(WAIT, 0, T1US), op(WAIT, 0, T1MS), op(WAIT, 0, TBAD1),
                       op(WAIT, 0, TBAD2), op(GATE, 0), op(WAIT, 0, TFOREVER)),
    "as-completed": seq(pool(threads=2), submit(kind=SLEEPK, p1=20), submit(), submit(kind=FAIL),
                        op(AS_COMPLETED, 0, 3, 0, 1, 2), op(COMPL_NEXT, 0, T0),
                        op(COMPL_NEXT, 0, TFOREVER), op(COMPL_NEXT, 0, T1MS),
                        op(COMPL_NEXT, 0, TFOREVER), op(COMPL_NEXT, 0, T0),
                        op(COMPL_NEXT, 0, TBAD1), op(AS_COMPLETED, 1, 0),
                        op(COMPL_NEXT, 1, TFOREVER), op(AS_COMPLETED, 2, 2, 1, 1)),
    "completion-set": seq(pool(threads=2), op(COMPL_CREATE, 1), op(COMPL_FD, 1, 1), submit(),
                          submit(kind=SLEEPK, p1=9), op(COMPL_ADD, 1, 0), op(COMPL_ADD, 1, 1),
                          op(COMPL_ADD, 1, 0), op(SLEEP, 60), op(COMPL_FD, 1, 1),
                          op(COMPL_NEXT, 1, TFOREVER), op(COMPL_FD, 1, 0),
                          op(COMPL_NEXT, 1, T10US), op(COMPL_DESTROY, 1), op(COMPL_CREATE, 2),
                          op(COMPL_ADD, 2, 1), op(COMPL_FD, 2, 1)),
    "shutdown-drain": seq(pool(threads=2), submit(kind=SLEEPK, p1=10), submit(),
                          op(SHUTDOWN, 0, 0), submit(), detach(), op(LOOP, 0, 3, 3, 1),
                          op(SHUTDOWN, 0, 0), op(SHUTDOWN, 0, 2), op(SHUTDOWN, 0, 3),
                          results(2)),
    "shutdown-cancel": seq(pool(), op(GATE, 7), submit(kind=GATEK), submit(), submit(),
                           submit(kind=JOIN, p1=3), detach(), op(SHUTDOWN, 0, 1), op(CHECK_ALL),
                           op(GATE, 0), submit(), op(SHUTDOWN, 0, 0), results(4)),
    "destroy-recreate": seq(pool(threads=2, flags=1), submit(kind=CHILD, p1=1), op(DESTROY, 0),
                            op(CHECK_ALL), pool(threads=1, flags=1), submit(), op(DESTROY, 0),
                            op(DESTROY, 0), results(2)),
    "bad-args": seq(pool(), submit(), *[op(BAD_ARGS, i, 0, 0) for i in range(18)],
                    op(COMPL_CREATE, 1), op(BAD_ARGS, 9, 0, 0), op(BAD_ARGS, 11, 0, 0)),
    "pool-configs": seq(pool(0, threads=1, bind=1, name=2, stack=4),
                        pool(1, threads=2, bind=2, name=3, stack=5, flags=1),
                        pool(2, threads=4, name=4, flags=0x18), op(POOL_CREATE, 0, 13, 0, 0, 0, 0, 0),
                        op(POOL_CREATE, 0, 14, 0, 0, 0, 0, 0), op(POOL_CREATE, 0, 0, 3, 0, 0, 0, 0),
                        op(POOL_CREATE, 0, 0, 4, 0, 0, 0, 0), op(POOL_CREATE, 0, 0, 0, 0, 0, 0, 6),
                        op(POOL_CREATE, 0, 0, 0, 0, 0, 0, 7), op(POOL_CREATE, 0, 0, 0, 0x20, 0, 0, 0),
                        submit(0), submit(1, kind=JOIN, p1=2), submit(2, kind=MULTI, p1=3),
                        op(DESTROY, 2), op(POOL_CREATE, 2, 12, 0, 0x40, 0, 0, 0), submit(2),
                        results(4)),
    "max-pending": seq(pool(threads=1, flags=2, max_pending=0), op(GATE, 7), submit(kind=GATEK),
                       op(SLEEP, 30), submit(), submit(), submit(), detach(),
                       op(LOOP, 0, 4, 4, 1), op(GATE, 0), op(BAD_ARGS, 11, 0, 0), results(3)),
    "loop-swept-by-cancel": seq(pool(threads=1), op(GATE, 3), submit(kind=GATEK), op(SLEEP, 20),
                                submit(kind=SHUT, p1=1, p3=0x80), op(LOOP, 0, 4, 4, 1)),
    "stats": seq(pool(threads=2, flags=1), submit(), submit(kind=JOIN, p1=2), op(STATS, 0, 2),
                 op(STATS, 0, 0x84), op(WAIT, 1, TFOREVER), op(STATS, 0, 4), op(STATS, 1, 0)),
    "task-shutdown": seq(pool(threads=2, flags=1), submit(kind=SLEEPK, p1=20),
                         submit(kind=SHUT, p1=1, p3=0x80), submit(kind=CHILD),
                         op(SLEEP, 50), submit(), results(3)),
    "fault-injection": seq(pool(threads=2), op(FAULT, 1), submit(), op(FAULT, 2),
                           op(GATHER, 1, 0, 0), op(FAULT, 1), op(AS_COMPLETED, 0, 1, 0),
                           op(FAULT, 1), op(ON_DONE, 0, 1), op(FAULT, 3), pool(1, threads=3),
                           op(FAULT, 1), op(COMPL_CREATE, 2), op(FAULT, 0), results(2)),
    "helper-threads": seq(pool(0, threads=2), pool(1, threads=1, flags=3, max_pending=1),
                          op(HELPER, 0, 7, 0, 0), op(HELPER, 1, 5, 3, 3), submit(0), submit(1),
                          op(HELPER, 0, 3, 1, 4), op(SHUTDOWN, 1, 1), op(HELPER, 1, 2, 0, 5),
                          results(2), op(DESTROY, 0)),
    "join-cancel-shutdown": seq(pool(threads=1), submit(kind=JOIN, p1=4, p2=0, p3=0x20),
                                submit(kind=JOIN, p1=3, p3=0x20), op(SLEEP, 40),
                                op(SHUTDOWN, 0, 1), op(CHECK_ALL), op(DESTROY, 0)),
    "burst-cycles": seq(*[seq(pool(threads=1 + c % 2), op(BURST, 0, 31, VALUE, 0),
                              op(BURST, 0, 31 | 0x80, SLEEPK, 0), op(SLEEP, 5 * c),
                              op(CANCEL, 40), op(CANCEL, 20), op(SHUTDOWN, 0, 0), op(DESTROY, 0),
                              op(SWEEP)) for c in range(4)]),
    "promise-basic": seq(pool(), prom(0), prom(1), prom(2), prom(3), submit(),
                         op(WAIT, 0, T1MS), op(WAIT, 0, T0), op(CHECK_ALL),
                         pset(0, SET_RESULT, again=SET_ERROR), op(RESULT, 0, 0),
                         pset(1, SET_ERROR, again=CANCEL_P), op(RESULT, 1, 0),
                         op(CANCEL, 2), pset(2, SET_RESULT, again=SET_ERROR0), op(RESULT, 2, 0),
                         pset(3, SET_ERROR0), op(GATHER_CHILD, 3, 0), pset(4, SET_RESULT),
                         pset(4, SET_ERROR), op(RESULT, 4, 0), op(RETAIN, 3), op(RELEASE, 3),
                         op(CHECK_ALL), op(RELEASE, 0), op(SWEEP)),
    "promise-gather-wait-sets": seq(pool(threads=2), submit(), prom(1), prom(2), prom(3),
                                    submit(kind=SLEEPK, p1=9),
                                    op(GATHER, 5, 0, 0, 1, 2, 3, 4),
                                    op(GATHER, 5, 1, 0, 1, 2, 3, 4),
                                    op(GATHER, 2, 0, 1, 2), op(ON_DONE, 1, 0), op(ON_DONE, 2, 1),
                                    op(AS_COMPLETED, 0, 4, 1, 2, 3, 4), op(COMPL_CREATE, 1),
                                    op(COMPL_ADD, 1, 0), op(COMPL_ADD, 1, 1), op(COMPL_ADD, 1, 5),
                                    op(COMPL_FD, 1, 1), op(COMPL_NEXT, 1, T10US),
                                    wmany(0, T0, 0x81, [0, 1, 2, 3, 4]),
                                    wmany(2, T1MS, 3 | (1 << 2), [1, 2, 3], T10US),
                                    pset(1, SET_RESULT), op(COMPL_FD, 1, 1), op(CHECK_ALL),
                                    pset(2, SET_ERROR), op(GATHER_CHILD, 6, 1),
                                    op(GATHER_CHILD, 5, 2), op(COMPL_NEXT, 0, TFOREVER),
                                    op(RESULT, 7, 0), op(CANCEL, 3), op(RESULT, 6, 0),
                                    op(RESULT, 5, 0), op(COMPL_NEXT, 1, TFOREVER),
                                    op(COMPL_NEXT, 0, TFOREVER), op(CHECK_ALL),
                                    prom(4), op(GATHER, 1, 2, 8), op(CANCEL, 9), op(CHECK_ALL)),
    "promise-wait-forever": seq(pool(threads=2), prom(0), prom(5), op(GATHER, 2, 0, 0, 1),
                                then(2, kind=VALUE), op(WAIT, 3, TFOREVER),
                                prom(2), wmany(2, TFOREVER, 0, [4, 4, 0]),
                                prom(3), op(COMPL_CREATE, 0), op(COMPL_ADD, 0, 5),
                                op(COMPL_NEXT, 0, TFOREVER), prom(6), op(RESULT, 6, 2)),
    "promise-helpers-race": seq(pool(0, threads=2), pool(1, threads=1), *[prom(i) for i in range(6)],
                                op(GATHER, 3, 2, 0, 1, 2), op(GATHER, 3, 1, 3, 4, 5),
                                hset([0, 1, 2, 3], [SET_RESULT, SET_ERROR, CANCEL_P, SET_RESULT],
                                     p=0, k=3, mode=0, first=True),
                                hset([3, 4, 5, 6], [SET_ERROR, SET_RESULT, SET_ERROR0, CANCEL_P],
                                     p=1, k=2, kind=2, mode=1),
                                pset(0, SET_ERROR), pset(3, CANCEL_P), pset(4, SET_ERROR),
                                op(CANCEL, 6), op(CHECK_ALL), op(SLEEP, 30), op(CHECK_ALL),
                                hset([1, 7], [SET_RESULT, SET_ERROR], p=0, mode=0),
                                results(6), op(DESTROY, 1), op(CHECK_ALL)),
    "then-basic": seq(pool(threads=2), submit(p1=1), op(WAIT, 0, TFOREVER),
                      then(0, kind=VALUE), prom(3), then(2, kind=FAIL, p1=2),
                      then(3, kind=VALUE, flags=1), then(4, kind=SLEEPK, p1=5),
                      op(WAIT, 5, T10US), op(CHECK_ALL), pset(2, SET_RESULT),
                      op(RESULT, 5, 0), op(RESULT, 1, 0), op(CHECK_ALL),
                      prom(1), then(6, kind=VALUE), op(CANCEL, 7), pset(6, SET_ERROR),
                      op(RESULT, 7, 0), prom(2), then(8, kind=SPIN, p1=3), op(CANCEL, 8),
                      op(RESULT, 9, 0), op(GATHER, 2, 1, 0, 2), then(10, kind=VALUE),
                      op(RESULT, 11, 0), then(11, kind=MULTI, p1=2, p2=2), op(RESULT, 12, 0),
                      op(GATHER_CHILD, 12, 0), pset(12, SET_RESULT), op(BAD_ARGS, 18, 12, 0),
                      op(CHECK_ALL)),
    # Continuations queued on pool 0 by pool 1's workers: pool 1 goes first, so that whoever
    # queues on pool 0 has returned before it is destroyed.
    "then-chain-two-pools": seq(pool(0, threads=1), pool(1, threads=2), prom(0),
                                then(0, 1), then(1, 0, kind=SLEEPK, p1=3), then(2, 0),
                                then(3, 0, kind=FAIL, p1=1), then(4, 0), then(5, 0, flags=3),
                                op(ON_DONE, 6, 1), op(CHECK_ALL), pset(0, SET_RESULT),
                                op(RESULT, 6, 0), op(CHECK_ALL), submit(1, kind=SLEEPK, p1=8),
                                then(7, 0), op(RESULT, 8, 0), op(DESTROY, 1), op(DESTROY, 0),
                                op(CHECK_ALL)),
    "then-shutdown": seq(pool(0, threads=1), pool(1, threads=1), prom(0), prom(1),
                         then(0, 0), then(1, 0, kind=GATEK), then(0, 1), op(SHUTDOWN, 0, 0),
                         pset(0, SET_RESULT), then(0, 0), op(CHECK_ALL), op(SHUTDOWN, 1, 1),
                         pset(1, SET_ERROR), op(RESULT, 2, 0), op(RESULT, 3, 0),
                         op(RESULT, 4, 0), op(CHECK_ALL), op(DESTROY, 0), op(DESTROY, 1),
                         op(CHECK_ALL)),
    "then-max-pending": seq(pool(threads=1, flags=2, max_pending=1), prom(0),
                            then(0), then(0), then(0), op(CANCEL, 1), then(0), then(0),
                            op(BAD_ARGS, 19, 0, 0), op(BAD_ARGS, 19, 1, 1),
                            pset(0, SET_RESULT), results(4), then(0), op(RESULT, 4, 0)),
    "then-inside-tasks": seq(pool(threads=2), *[submit(kind=PROMISEK, p1=i, p2=i * 3, p3=i * 5)
                                                for i in range(6)],
                             detach(kind=PROMISEK, p1=7), submit(kind=JOIN, p1=3, p2=5),
                             results(7), op(CHECK_ALL), prom(0),
                             then(7, kind=PROMISEK, p1=1), pset(7, SET_ERROR),
                             op(RESULT, 8, 0)),
    "abandon": seq(pool(), op(ABANDON, 0), op(ABANDON, 2), op(ABANDON, 4), op(ABANDON, 8),
                   op(ABANDON, 14), prom(0), op(COMPL_CREATE, 0), op(COMPL_ADD, 0, 0),
                   op(COMPL_DESTROY, 0), op(RELEASE, 0)),
    "promise-fault": seq(pool(threads=2), op(FAULT, 1), prom(0), op(FAULT, 1), prom(0),
                         submit(), op(FAULT, 1), then(0), op(FAULT, 2), then(0),
                         op(FAULT, 1), op(GATHER, 2, 0, 0, 1), op(FAULT, 0),
                         pset(0, SET_RESULT), op(CHECK_ALL), op(RESULT, 1, 0), op(CHECK_ALL)),
    "everything": seq(pool(0, threads=2, flags=1), pool(1, threads=1), op(GATE, 3),
                      submit(0, kind=GATEK, p1=1), submit(1, kind=CHILD, p1=7, p3=0xf6),
                      submit(0, kind=MULTI, p1=3, p2=2, p3=2), submit(1, kind=JOIN, p1=4, p2=33),
                      op(GATHER, 3, 3, 0, 1, 2), op(AS_COMPLETED, 0, 4, 0, 1, 2, 3),
                      op(ON_DONE, 4, 3), op(CANCEL, 0),
                      op(WAIT_MANY, 5, 1, T100US, 3, 0, 1, 2, 3, 4, TFOREVER),
                      op(COMPL_FD, 0, 1), op(GATE, 0), op(COMPL_NEXT, 0, TFOREVER),
                      op(SHUTDOWN, 1, 1), op(STATS, 0, 3), op(CHECK_ALL), op(DESTROY, 1),
                      op(RESULT, 4, 0), op(RELEASE, 4)),
}


REGRESS = {
    # weft_pool_stats after a CANCEL shutdown swept join frames: submitted_outside counts the
    # frames the sweep put back on the injection queue.
    "stats-join-requeue": seq(pool(threads=1, flags=1), submit(kind=JOIN, p1=4, p2=0, p3=0x20),
                              op(SLEEP, 40), op(SHUTDOWN, 0, 1)),
    # weft_wait over copies of one future that finishes meanwhile: the copies are split between
    # the done and the pending part.
    "wait-duplicate-split": seq(pool(threads=1), *[seq(submit(kind=SLEEPK, p1=r % 32),
                                                       op(WAIT_MANY, 7, 2, T0, 0x81, *[0] * 8),
                                                       op(RELEASE, 0)) for r in range(60)]),
    # Tasks still PENDING when weft_pool_shutdown(CANCEL) has returned (and some of them then
    # run): the sweep misses tasks a worker holds between taking and starting them.
    "cancel-shutdown-pending": seq(*[seq(pool(threads=1), op(BURST, 0, 31, VALUE, 0),
                                         op(BURST, 0, 31, VALUE, 0), op(SLEEP, c % 8),
                                         op(SHUTDOWN, 0, 1), op(DESTROY, 0), op(SWEEP))
                                     for c in range(28)]),
    # A start hook that runs while the harness resizes the pool it was made with: it must read
    # the size, then the most workers the pool may have, then the flag that says a resize was
    # called (weft_pool_size acquires what the resize released), or it can pair a new size, or
    # a raised bound, with the flag still clear.
    "start-hook-during-resize": seq(*[seq(pool(threads=2, flags=1), op(RESIZE, 0, r % 6),
                                          op(DESTROY, 0)) for r in range(30)]),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.startswith("seed-"):
            os.remove(os.path.join(out, name))
    files = [("seed-" + k, v) for k, v in SEEDS.items()]
    files += [("regress-" + k, v) for k, v in REGRESS.items()]
    for name, data in sorted(files):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds and {len(REGRESS)} regression inputs written to {out}")


if __name__ == "__main__":
    main()
