#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: weft-uts-table.sh BUILD_DIR [TREES...] (default T1L T3L); REPEAT=n runs (default 3)
#
# The ranks x workers table of docs/mpi.md: uts-serial, then weft-uts at 1x1, 1x2, 2x1 and 4x1
# (ranks x WEFT_THREADS, 4 ranks oversubscribed on a 2-core machine), each the best of REPEAT
# runs, in seconds, with each configuration's time relative to uts-serial and the CPU seconds
# (user + system, all processes) of the best run. Use a Release build (tools/run builds one in
# build/release) and an otherwise idle machine.
set -euo pipefail

build=${1:?usage: weft-uts-table.sh BUILD_DIR [TREES...]}
shift
trees=("$@")
((${#trees[@]})) || trees=(T1L T3L)
repeat=${REPEAT:-3}
dir=$build/tools/examples/mpi
mpirun_args=(--oversubscribe)
if ((EUID == 0)); then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# Runs "$@" REPEAT times; prints the best wall time (s) and that run's CPU time (s).
best() {
    local b='' cpu='' i t out tf
    tf=$(mktemp)
    for ((i = 0; i < repeat; i++)); do
        out=$(/usr/bin/time -f '%U %S' -o "$tf" "$@" 2>/dev/null)
        t=$(sed -n 's/.* time_ns=\([0-9]*\) .*/\1/p' <<<"$out")
        if [[ -z $b ]] || ((t < b)); then
            b=$t
            cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$tf")
        fi
    done
    rm -f "$tf"
    awk -v t="$b" -v c="$cpu" 'BEGIN { printf "%.3f %s\n", t / 1e9, c }'
}

printf '%-5s %-12s %9s %8s %8s\n' tree config seconds vs_serial cpu_s
for tree in "${trees[@]}"; do
    read -r serial scpu < <(best "$dir/uts-serial" --tree "$tree")
    printf '%-5s %-12s %9s %8s %8s\n' "$tree" serial "$serial" 1.00 "$scpu"
    for cfg in 1x1 1x2 2x1 4x1; do
        r=${cfg%x*} w=${cfg#*x}
        if ((r == 1)); then
            read -r t cpu < <(WEFT_THREADS=$w best "$dir/weft-uts" --tree "$tree")
        else
            read -r t cpu < <(WEFT_THREADS=$w best mpirun "${mpirun_args[@]}" -np "$r" \
                "$dir/weft-uts" --tree "$tree")
        fi
        printf '%-5s %-12s %9s %8s %8s\n' "$tree" "$cfg" "$t" \
            "$(awk -v a="$t" -v b="$serial" 'BEGIN { printf "%.2f", a / b }')" "$cpu"
    done
done
