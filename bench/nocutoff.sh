#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: bench/nocutoff.sh [BUILD_DIR] [REPS]
#
# Fork-join with no cutoff, every call a task, side by side in one run: fib(36) (weft_join, the
# inline weft_offer/weft_reclaim pair, a scope per call) and nqueens(12) with a task per
# placement (scopes, offers; the bitmask search, then Cilk's and Lace's array search), each
# against the serial recursion, oneTBB, libgomp and, when
# clang built the _libomp programs, libomp. Medians of REPS (default 5) interleaved repetitions
# on 1 and on all workers; ratios to the serial baseline, CPU time beside wall time
# (bench_harness.h explains the columns).
set -euo pipefail
build=${1:-build/release}
reps=${2:-5}
b="$build/bench"
for prog in bench_fib bench_nqueens; do
    [[ -x "$b/$prog" ]] || {
        echo "nocutoff.sh: $b/$prog not built (cmake --build $build)" >&2
        exit 1
    }
done
run() {
    echo "## $*"
    "$@" | grep '^#'
}
run "$b/bench_fib" -r "$reps" -c 0 -n 36 -m 0
if [[ -x "$b/bench_fib_libomp" ]]; then
    run "$b/bench_fib_libomp" -r "$reps" -c 0 -n 36 -m 0 -i omp
fi
run "$b/bench_nqueens" -r "$reps" -n 12 -c 12 -a 12
if [[ -x "$b/bench_nqueens_libomp" ]]; then
    run "$b/bench_nqueens_libomp" -r "$reps" -n 12 -c 12 -a 12 -i omp
fi
