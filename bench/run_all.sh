#!/usr/bin/env bash
# Usage: bench/run_all.sh [-t THREADS] [-r REPS] [-b BUILD_DIR] OUTPUT
#
# Builds the benchmarks (a Release tree in build/bench unless -b names another; an existing tree
# is only rebuilt, which picks up changes to the library), runs every bench_* program in it with
# its default sizes, one after the other, and writes
#   OUTPUT      the machine-readable lines (bench=... key=value ...) of every program
#   OUTPUT.log  everything the programs printed, their own tables included
# then prints a summary, one line per benchmark case:
#   serial ms     median time of the serial baseline
#   weft1/ser     weft on a 1-worker pool over serial: weft's overhead (1.00: none)
#   weftN x       speedup of weft on N workers over serial (N: -t, default one per core)
#   cpus          cores weft on N workers kept busy (CPU time over wall time)
#   denied        cores something else took from weft on N workers (time its threads were
#                 runnable but not running, over wall time): the noise of a shared machine.
#                 cpus below N with denied near 0 is weft leaving cores idle
#   cpu/ser       CPU time of weft on N workers over serial's: the work weft added (1.00:
#                 none), which a neighbour taking a core barely changes
#   omp x, tbb x  the same speedup for OpenMP (its better schedule, if it has two) and oneTBB
#   peer          the faster of omp and tbb on this case
#   peer/weft     median of the faster peer over weft's on N workers: above 1, weft is faster
# and the external-submission figures of bench_submit; the lines of the other weft-only programs
# (bench_gather) are collected but not summarised. -t and -r go to every program whose usage
# lists them (-t THREADS, -r REPS). A program that fails (wrong result, failing call, timeout) is
# reported and the others still run; the script then exits with status 1.
# Environment: WEFT_BENCH_TIMEOUT, seconds allowed to each program (default 300);
# WEFT_BENCH_SKIP, space-separated programs not to run (default: bench_soak, a soak test of
# 100 M tasks that checks memory, not a timing).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/bench
args=()

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

while getopts 't:r:b:h' opt; do
    case $opt in
    t | r) args+=("-$opt" "$OPTARG") ;;
    b) build=$OPTARG ;;
    h)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
if (($# != 1)); then
    usage >&2
    exit 2
fi
out=$1
log=$out.log
limit=${WEFT_BENCH_TIMEOUT:-300}
read -ra skip <<<"${WEFT_BENCH_SKIP-bench_soak}"

if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
fi
cmake --build "$build" -j "$(nproc)" >/dev/null

mapfile -t programs < <(find "$build/bench" -maxdepth 1 -type f -perm -u+x -name 'bench_*' | sort)
if ((${#programs[@]} == 0)); then
    echo "run_all.sh: no bench_* program in $build/bench" >&2
    exit 1
fi

: >"$out"
: >"$log"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
failed=()
for program in "${programs[@]}"; do
    name=$(basename "$program")
    if [[ " ${skip[*]} " == *" $name "* ]]; then
        printf '%-18s skipped (WEFT_BENCH_SKIP)\n' "$name"
        continue
    fi
    # Only the options this program's usage lists, with the meaning they have here.
    usage_text=$("$program" -h 2>&1 || true)
    these=()
    for ((i = 0; i < ${#args[@]}; i += 2)); do
        case ${args[i]} in
        -t) [[ $usage_text == *"-t THREADS"* ]] && these+=("${args[i]}" "${args[i + 1]}") ;;
        -r) [[ $usage_text == *"-r REPS"* ]] && these+=("${args[i]}" "${args[i + 1]}") ;;
        esac
    done
    start=$SECONDS
    status=0
    timeout "$limit" "$program" "${these[@]}" >"$tmp" 2>&1 || status=$?
    {
        echo "==> $name ${these[*]}"
        cat "$tmp"
    } >>"$log"
    grep '^bench=' "$tmp" >>"$out" || true
    if ((status == 0)); then
        printf '%-18s ok      %4d s\n' "$name" $((SECONDS - start))
    else
        printf '%-18s FAILED  %4d s (status %d; see %s)\n' "$name" $((SECONDS - start)) \
            "$status" "$log"
        grep -v '^#' "$tmp" | grep -v '^bench=' | sed 's/^/    /' || true
        failed+=("$name")
    fi
done

echo
awk '
function ratio(num, den) {
    return (num > 0 && den > 0) ? sprintf("%.2f", num / den) : "-"
}
{
    delete kv
    for (i = 1; i <= NF; i++) {
        eq = index($i, "=")
        if (eq > 1)
            kv[substr($i, 1, eq - 1)] = substr($i, eq + 1)
    }
    if (!("impl" in kv) || !("case" in kv)) {
        # a weft-only program without the comparison format
        if (kv["bench"] !~ /^submit_/)
            other++
    }
    if (kv["bench"] ~ /^submit_/) {
        submit[kv["bench"]] = $0
        nsubmit++
        submit_rate[kv["bench"]] = kv["tasks_per_s_median"]
        submit_ns[kv["bench"]] = kv["ns_per_round_trip_median"]
        submit_threads = kv["threads"]
        next
    }
    if (!("impl" in kv) || !("case" in kv))
        next
    key = kv["bench"] "/" kv["case"]
    if (!(key in seen)) {
        seen[key] = 1
        order[++nkeys] = key
    }
    med = kv["median_ns"] + 0
    impl = kv["impl"]
    if (impl == "serial") {
        serial[key] = med
    } else if (impl == "weft" && kv["variant"] == "default") {
        # the first default weft row is the 1-worker pool, the second the N-worker one
        if (!(key in weft1)) {
            weft1[key] = med
        } else {
            weftn[key] = med
            cpus[key] = kv["cpus_used"]
            denied[key] = kv["cpus_denied"]
            work[key] = kv["cpu_vs_serial"]
            threads = kv["threads"]
        }
    } else if (impl == "omp" || impl == "tbb") {
        if (!((key, impl) in best) || med < best[key, impl]) {
            best[key, impl] = med
            variant[key, impl] = kv["variant"]
        }
    }
}
END {
    printf "%-24s %9s %9s %7s %5s %6s %7s %14s %6s %-4s %9s\n", "benchmark", "serial ms",
        "weft1/ser", "weftN x", "cpus", "denied", "cpu/ser", "omp x", "tbb x", "peer", "peer/weft"
    for (k = 1; k <= nkeys; k++) {
        key = order[k]
        s = serial[key]
        omp = "-"
        if ((key, "omp") in best) {
            omp = ratio(s, best[key, "omp"])
            if (variant[key, "omp"] != "default")
                omp = omp " (" variant[key, "omp"] ")"
        }
        tbb = ((key, "tbb") in best) ? ratio(s, best[key, "tbb"]) : "-"
        peer = ""
        peer_ns = 0
        if ((key, "omp") in best) {
            peer = "omp"
            peer_ns = best[key, "omp"]
        }
        if (((key, "tbb") in best) && (peer_ns == 0 || best[key, "tbb"] < peer_ns)) {
            peer = "tbb"
            peer_ns = best[key, "tbb"]
        }
        printf "%-24s %9.2f %9s %7s %5s %6s %7s %14s %6s %-4s %9s\n", key, s / 1e6,
            ratio(weft1[key], s), ratio(s, weftn[key]), (key in cpus) ? cpus[key] : "-",
            (key in denied) ? denied[key] : "-", (key in work) ? work[key] : "-", omp, tbb,
            peer == "" ? "-" : peer, ratio(peer_ns, weftn[key])
    }
    if (nkeys > 0)
        printf "(N = %s; x = speedup over serial, medians; peer/weft above 1: weft faster)\n",
            threads
    if (nsubmit > 0) {
        printf "\nexternal submission, weft only, %s workers:", submit_threads
        if ("submit_batched" in submit)
            printf " batched %.2f M tasks/s;", submit_rate["submit_batched"] / 1e6
        if ("submit_single" in submit)
            printf " one at a time %.1f us per round trip;", submit_ns["submit_single"] / 1e3
        if ("submit_detached" in submit)
            printf " detached %.2f M tasks/s", submit_rate["submit_detached"] / 1e6
        printf "\n"
    }
    if (other > 0)
        printf "%d more lines of weft-only programs (bench_gather...) are in the output file\n",
            other
}' "$out"

echo
echo "machine-readable lines: $out; full output: $log"
if ((${#failed[@]} > 0)); then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
