#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: run_mpi.sh [--expect-fail REGEX] NP SECONDS PROGRAM [ARGS...]
#
# Runs PROGRAM on NP ranks with mpirun, killed after SECONDS (a hang fails the test rather than
# the suite). With --expect-fail, the job must end on its own, before the limit, with a non-zero
# status and output matching REGEX (a rank that fails must end the whole job, never hang it).
#
# Open MPI refuses to run as root unless told; containers and CI run as root, so tell it. Ranks
# may outnumber cores (--oversubscribe), and then must yield rather than spin: Open MPI's
# mpi_yield_when_idle is set for the same reason.
set -uo pipefail

expect_fail=
if [[ ${1:-} == --expect-fail ]]; then
    expect_fail=$2
    shift 2
fi
np=${1:?usage: run_mpi.sh [--expect-fail REGEX] NP SECONDS PROGRAM [ARGS...]}
limit=${2:?missing SECONDS}
shift 2

mpirun=${MPIEXEC:-mpirun}
args=(-np "$np")
if "$mpirun" --version 2>&1 | grep -q 'Open MPI'; then
    args+=(--oversubscribe)
    if ((EUID == 0)); then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    export OMPI_MCA_mpi_yield_when_idle=1
fi

# Sanitizer builds: Open MPI's own leaks and uninstrumented threads are not weft's findings.
# Its components stay loaded at MPI_Finalize, so that reports can name them (and be
# suppressed by name) instead of showing "<unknown module>".
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export OMPI_MCA_mca_base_component_disable_dlclose=1
export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export TSAN_OPTIONS="suppressions=$here/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

if [[ -z $expect_fail ]]; then
    timeout --kill-after=10 "$limit" "$mpirun" "${args[@]}" "$@"
    rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "FAIL: $* on $np ranks did not end within ${limit}s" >&2
    fi
    exit "$rc"
fi

out=$(timeout --kill-after=10 "$limit" "$mpirun" "${args[@]}" "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if ((rc == 124 || rc == 137)); then
    echo "FAIL: the failing job on $np ranks hung (killed after ${limit}s)" >&2
    exit 1
fi
if ((rc == 0)); then
    echo "FAIL: the job on $np ranks exited 0, expected a failure" >&2
    exit 1
fi
if ! grep -Eq -- "$expect_fail" <<<"$out"; then
    echo "FAIL: the output of the failing job does not match '$expect_fail'" >&2
    exit 1
fi
echo "ok: the job failed as expected (exit $rc) and said so"
