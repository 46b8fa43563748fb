#!/usr/bin/env python3
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
    FAULT, HELPER, BURST, SWEEP = range(30)

# task kinds: the byte that selects each in kind_table
VALUE, FAIL, SPIN, CHILD, JOIN, SLEEPK, GATEK, SELF, MULTI, DETACH, SHUT = 0, 2, 4, 5, 7, 8, 9, \
    10, 11, 12, 15

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
