#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: bench/stats_cost.sh [OUT_DIR]
#
# What the per-worker statistics cost: builds the library and bench_fib twice, with the counters
# (the default) and without them (-DWEFT_STATS=OFF), then compares
#   - instructions per fork, counted by callgrind (exact and repeatable on a noisy machine) on
#     fib(24) forking down to the leaves on one worker, and
#   - the time of the leaves case (fib(30), one fork per few ns of work: the worst case for any
#     per-fork cost), both builds run alternately.
# Reading the counters is not part of the cost: nothing is read unless weft_pool_stats is called.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tools/lib.sh
source "$root/tools/lib.sh"
out=${1:-$root/build/stats-cost}
mkdir -p "$out"
for variant in on off; do
    flag=ON
    [[ $variant == off ]] && flag=OFF
    weft_configure "$out/$variant" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DWEFT_STATS=$flag >/dev/null
    weft_build "$out/$variant" --target bench_fib >/dev/null
done

instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" -t 1 -r 1 -i weft1 -n 0 -m 24 \
        -f 0 2>&1 | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p; s/.*I *refs: *\([0-9,]*\).*/\1/p' |
        tr -d , | tail -n 1
}
forks=$(( $(printf '%s\n' 'a=0;b=1;for(i=0;i<25;i++){t=a+b;a=b;b=t};a-1' | bc) ))
if command -v valgrind >/dev/null 2>&1 && command -v bc >/dev/null 2>&1; then
    on=$(instructions "$out/on/bench/bench_fib")
    off=$(instructions "$out/off/bench/bench_fib")
    printf 'bench=stats_cost_instructions forks=%s with_stats=%s without=%s per_fork_delta=%s\n' \
        "$forks" "$on" "$off" "$(echo "scale=2; ($on - $off) / $forks" | bc)"
fi

median_of() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
time_on=() time_off=()
for _ in 1 2 3 4 5; do
    time_on+=("$("$out/on/bench/bench_fib" -t 1 -r 3 -i weft1 -n 0 -m 30 -f 0 |
        sed -n 's/.*case=leaves.*impl=weft .*median_ns=\([0-9]*\).*/\1/p' | tail -n 1)")
    time_off+=("$("$out/off/bench/bench_fib" -t 1 -r 3 -i weft1 -n 0 -m 30 -f 0 |
        sed -n 's/.*case=leaves.*impl=weft .*median_ns=\([0-9]*\).*/\1/p' | tail -n 1)")
done
m_on=$(printf '%s\n' "${time_on[@]}" | median_of)
m_off=$(printf '%s\n' "${time_off[@]}" | median_of)
printf 'bench=stats_cost_time case=leaves with_stats_ns=%s without_ns=%s ratio=%s\n' \
    "$m_on" "$m_off" "$(echo "scale=3; $m_on / $m_off" | bc)"
