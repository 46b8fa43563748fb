#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: tests/fuzz/run.sh [SECONDS] [LIBFUZZER-OPTION...]
#
# Builds the API fuzzer (tests/fuzz/fuzz_api.c) with Clang, libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, the library instrumented for coverage too, in build/fuzz
# (configured on first use), and runs it for SECONDS seconds (default: $WEFT_FUZZ_SECONDS, else
# 60). It starts from a copy of the seeds (tests/fuzz/corpus/seed-*) in build/fuzz/corpus-new,
# where the inputs it finds accumulate from run to run; the repository's corpus is never
# written (its regress-* inputs are replayed by the CTest test fuzz_corpus_replay). A crash,
# leak, hang or contract violation leaves its input in build/fuzz/artifacts/ and makes the
# script fail; replay it with build/fuzz/tests/fuzz/fuzz_api FILE, with WEFT_FUZZ_TRACE=1 to see
# each operation. Ends with the number of executions (libFuzzer's -print_final_stats).
#
# Environment: WEFT_FUZZ_SECONDS (default 60); WEFT_FUZZ_SANITIZE, "address" (the default:
# AddressSanitizer, LeakSanitizer and UBSan) or "undefined" (UBSan only, in build/fuzz-undefined:
# the library's per-thread block caches are on, which ASan builds bypass, so this mode fuzzes
# them; leaks are not checked); WEFT_FUZZ_BUILD (build directory); WEFT_FUZZ_ALLOW (known
# deviations to tolerate, see fuzz_api.c); CC (default clang); WEFT_JOBS (build parallelism).
# WEFT_FUZZ_QUIET=1 keeps libFuzzer's progress lines out of the terminal (they stay in the log).
# WEFT_FUZZ_FRESH=1 starts from the seeds alone: libFuzzer first runs every input of the corpus,
# so an accumulated corpus-new makes a run last longer than SECONDS (about 100 inputs a second).
# WEFT_FUZZ_WATCHDOG (default 20): seconds after which an input counts as hung and every
# thread's stack is printed (with gdb) before it aborts.
# Extra arguments go to libFuzzer, e.g. -seed=1.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/lib.sh
source "$root/tools/lib.sh"
seconds=${WEFT_FUZZ_SECONDS:-60}
if (($# > 0)) && [[ $1 =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
sanitize=${WEFT_FUZZ_SANITIZE:-address}
case $sanitize in
address)
    dir=${WEFT_FUZZ_BUILD:-$root/build/fuzz}
    flags=(-DWEFT_SANITIZE=address "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link")
    ;;
undefined)
    dir=${WEFT_FUZZ_BUILD:-$root/build/fuzz-undefined}
    flags=(-DWEFT_SANITIZE=
        "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,undefined -fno-sanitize-recover=all")
    ;;
*)
    echo "tests/fuzz/run.sh: WEFT_FUZZ_SANITIZE must be address or undefined" >&2
    exit 2
    ;;
esac
cc=${CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "tests/fuzz/run.sh: $cc not found; the fuzzer needs Clang with libFuzzer" >&2
    exit 1
fi

if [[ ! -f $dir/CMakeCache.txt ]]; then
    # -fsanitize=fuzzer-no-link on everything: libFuzzer then sees the library's coverage, not
    # only the harness's. assert() stays on (no -DNDEBUG), as in the other sanitizer builds.
    weft_configure "$dir" \
        -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g" \
        -DWEFT_WERROR=OFF "${flags[@]}"
fi
weft_build "$dir" --target fuzz_api

corpus=$dir/corpus-new
artifacts=$dir/artifacts
if [[ ${WEFT_FUZZ_FRESH:-0} != 0 ]]; then
    rm -rf "$corpus"
fi
mkdir -p "$corpus" "$artifacts"
# The seeds only: regress-* inputs are bugs found before, which fuzz_corpus_replay (CTest) runs.
cp -n "$root"/tests/fuzz/corpus/seed-* "$corpus"/ 2>/dev/null || true

# A hang shows every thread's stack (fuzz_api.c's watchdog), before libFuzzer's -timeout, which
# shows the main thread's only.
export WEFT_FUZZ_WATCHDOG=${WEFT_FUZZ_WATCHDOG:-20}
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

log=$dir/fuzz.log
stamp=$dir/.fuzz-start
touch "$stamp"
echo "fuzzing for $seconds s on $corpus (log: $log)"
progress() {
    if [[ ${WEFT_FUZZ_QUIET:-0} != 0 ]]; then
        grep --line-buffered -Ev '^#[0-9]+[[:space:]]' || true
    else
        cat
    fi
}
rc=0
start=$SECONDS
"$dir/tests/fuzz/fuzz_api" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 \
    -max_len=4096 -artifact_prefix="$artifacts/" "$@" "$corpus" 2>&1 | tee "$log" | progress ||
    rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
echo "fuzz: ${execs:-?} executions in $((SECONDS - start)) s (${rate:-?} per second)," \
    "corpus $(find "$corpus" -type f | wc -l) inputs"
if ((rc != 0)); then
    echo "tests/fuzz/run.sh: the fuzzer failed (exit $rc); inputs in $artifacts:" >&2
    find "$artifacts" -type f -newer "$stamp" | head -n 5 >&2
    exit 1
fi
