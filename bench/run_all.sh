#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: bench/run_all.sh [-b BUILD_DIR] [-N] [-t THREADS] [-r REPS] OUTPUT
#        bench/run_all.sh -s [-b BUILD_DIR] [-N] [-o RESULTS_DIR] [BENCH...]
#
# The benchmark driver, in two modes. Both first build BUILD_DIR (default build/release, the
# Release tree tools/run builds, configured through tools/lib.sh when it does not exist yet; an
# existing tree is only rebuilt, which picks up changes to the library), unless -N says to run
# what BUILD_DIR holds as it is.
#
# Comparison (the first form): runs every bench_* program in BUILD_DIR/bench with its default
# sizes, one after the other, and writes
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
# and the external-submission figures of bench_submit. bench_promise's cases come in the same rows
# and are summarised like the others (weft1/ser: a promise's or a continuation's cost over a
# direct call); the lines of the other weft-only programs (bench_gather) are collected but not
# summarised. -t and -r go to every program whose usage lists them (-t THREADS, -r REPS). A
# program that fails (wrong result, failing call, timeout) is reported and the others still run;
# the script then exits with status 1.
#
# Scaling profile (-s; tools/run runs it): for every bench_* program in BUILD_DIR/bench (with
# BENCH names, only those), runs BUILD_DIR/tools/weft-scale at thread counts 1 to twice the
# default thread count, a few runs per count, each run timed by the median_ns the benchmark
# reports for its weft row; then the same for BUILD_DIR/bench/weft-work, a loop with no shared
# data whose curve shows what scaling this machine allows at all. Writes to RESULTS_DIR
# (default build/profile):
#   summary.txt             every table, one after the other
#   <name>.csv, <name>.json weft-scale's table and data, one per benchmark
#   <name>.svg (.png)       its plot of speedup against threads (PNG when rsvg-convert exists)
#   <name>.log              the benchmark's own output, every run
#   info.txt, info.json     weft-info: the machine as weft sees it
#   trace.json              a Chrome trace (ui.perfetto.dev, chrome://tracing) of weft-work -m tree
#                           (a fork-join tree) on a pool of the default size
#   stats.json              that pool's statistics (weft_stats_write_json)
# Benchmarks missing from the build are skipped. One that fails is reported and the others still
# run; the script then exits 1.
#
# Each benchmark runs at its default size with only its serial and weft rows (-i weft); bench_fib
# measures its cutoff case (-m 0) and bench_submit its batched submissions (-w batched);
# bench_gather, bench_promise and bench_soak (latency, the cost of one operation, endurance: not
# scaling) are left out. The trace comes from weft-work rather than from a benchmark because a
# benchmark destroys two pools, and each writes $WEFT_TRACE when destroyed: the file would end up
# holding the one-worker pool.
#
# Environment, comparison: WEFT_BENCH_TIMEOUT, seconds allowed to each program (default 300);
# WEFT_BENCH_SKIP, space-separated programs not to run (default: bench_soak, a soak test of
# 100 M tasks that checks memory, not a timing).
# Environment, scaling profile:
#   WEFT_PROFILE_REPS        runs per thread count (default 3)
#   WEFT_PROFILE_BENCH_REPS  the benchmark's own repetitions, its -r (default 3)
#   WEFT_PROFILE_THREADS     thread counts as weft-scale -T takes them (default 1..2D for a
#                            default thread count D up to 4; beyond, powers of two, D and 2D)
#   WEFT_PROFILE_TIMEOUT     seconds allowed to one run of a benchmark (default 300)
#   WEFT_PROFILE_WORK        weft-work's arguments (default: -n 1048576 -k 64)
# WEFT_JOBS: the build's parallelism (default: every core).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tools/lib.sh
source "$root/tools/lib.sh"

build=$root/build/release
out=
profile=0
build_it=1
args=()

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//'
}

usage_error() {
    echo "run_all.sh: $*" >&2
    usage >&2
    exit 2
}

while getopts 't:r:b:o:sNh' opt; do
    case $opt in
    t | r) args+=("-$opt" "$OPTARG") ;;
    b) build=$OPTARG ;;
    o) out=$OPTARG ;;
    s) profile=1 ;;
    N) build_it=0 ;;
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

if ((profile)); then
    if ((${#args[@]} > 0)); then
        usage_error "-t and -r are for the comparison, not the scaling profile (-s)"
    fi
    out=${out:-$root/build/profile}
    only=("$@")
else
    if [[ -n $out ]]; then
        usage_error "-o is for the scaling profile (-s); the comparison takes OUTPUT"
    fi
    if (($# != 1)); then
        usage >&2
        exit 2
    fi
    out=$1
fi

if ((build_it)); then
    if [[ ! -f $build/CMakeCache.txt ]]; then
        weft_configure "$build" "${WEFT_RELEASE_FLAGS[@]}" >/dev/null
    fi
    weft_build "$build" >/dev/null
fi

# --- comparison: every program once, one table ---

compare() {
    local log=$out.log
    local limit=${WEFT_BENCH_TIMEOUT:-300}
    local skip programs=() failed=()
    read -ra skip <<<"${WEFT_BENCH_SKIP-bench_soak}"

    mapfile -t programs < <(find "$build/bench" -maxdepth 1 -type f -perm -u+x -name 'bench_*' |
        sort)
    if ((${#programs[@]} == 0)); then
        echo "run_all.sh: no bench_* program in $build/bench" >&2
        exit 1
    fi

    : >"$out"
    : >"$log"
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    local program name usage_text these i start status
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
}

# --- scaling profile: weft-scale over every program, a trace, the statistics ---

# thread_counts D: 1..2D for D up to 4; beyond, powers of two, D and 2D.
thread_counts() {
    local d=$1 p list=()
    if ((d <= 4)); then
        for ((p = 1; p <= 2 * d; p++)); do
            list+=("$p")
        done
    else
        for ((p = 1; p < 2 * d; p *= 2)); do
            list+=("$p")
        done
        list+=("$d" $((2 * d)))
    fi
    printf '%s\n' "${list[@]}" | sort -n -u | paste -s -d, -
}

# wanted NAME: whether NAME is among the BENCH names (all are when none were given).
wanted() {
    local name=$1 w
    if ((${#only[@]} == 0)); then
        return 0
    fi
    for w in "${only[@]}"; do
        if [[ $name == "$w" ]]; then
            return 0
        fi
    done
    return 1
}

# bench_setup NAME: the arguments, line filter and metric of each benchmark; the last matching
# line counts.
bench_setup() {
    metric=median_ns
    case $1 in
    bench_submit)
        bench_args=(-r "$bench_reps" -w batched)
        match='^bench=submit_batched '
        ;;
    bench_fib)
        bench_args=(-i weft -r "$bench_reps" -m 0)
        match=' impl=weft variant=default '
        ;;
    *)
        bench_args=(-i weft -r "$bench_reps")
        match=' impl=weft variant=default '
        ;;
    esac
}

# profile_one NAME TITLE METRIC MATCH COMMAND...: one weft-scale run, its table kept in NAME.txt.
profile_one() {
    local name=$1 title=$2 metric=$3 match=$4 rc=0
    shift 4
    local t0=$SECONDS
    "$scale" -q -T "$threads" -r "$reps" -k "$limit" -m "$metric" -M "$match" -t "$title" \
        -o "$out/$name" -- "$@" >"$out/$name.txt" || rc=$?
    cat "$out/$name.txt"
    if ((rc != 0)); then
        echo "$name: weft-scale failed (status $rc); its output is in $out/$name.log"
        failed+=("$name")
        return 0
    fi
    cat "$out/$name.txt" >>"$out/summary.txt"
    echo >>"$out/summary.txt"
    if command -v rsvg-convert >/dev/null 2>&1; then
        rsvg-convert -o "$out/$name.png" "$out/$name.svg" ||
            echo "$name: rsvg-convert could not render $out/$name.svg"
    fi
    done_names+=("$name")
    echo "($((SECONDS - t0)) s)"
}

scaling_profile() {
    reps=${WEFT_PROFILE_REPS:-3}
    bench_reps=${WEFT_PROFILE_BENCH_REPS:-3}
    limit=${WEFT_PROFILE_TIMEOUT:-300}
    local work_args
    read -r -a work_args <<<"${WEFT_PROFILE_WORK:--n 1048576 -k 64}"

    scale=$build/tools/weft-scale
    local work=$build/bench/weft-work info=$build/tools/weft-info tool
    for tool in "$scale" "$work" "$info"; do
        if [[ ! -x $tool ]]; then
            echo "run_all.sh: no $tool: build $build first (or leave out -N)" >&2
            exit 1
        fi
    done

    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    local start=$SECONDS

    # The machine.
    "$info" >"$out/info.txt"
    "$info" --json >"$out/info.json"
    local default_threads
    default_threads=$(sed -n 's/^ *"default_threads": \([0-9]*\).*/\1/p' "$out/info.json")
    default_threads=${default_threads:-1}
    threads=${WEFT_PROFILE_THREADS:-$(thread_counts "$default_threads")}

    weft_log "scaling profile: threads $threads, $reps runs each," \
        "default thread count $default_threads"
    sed -n '/^Default thread count/,/^.WEFT_THREADS/p' "$out/info.txt"

    # The benchmarks.
    local programs=() program name
    if [[ -d $build/bench ]]; then
        while IFS= read -r program; do
            if wanted "$(basename "$program")"; then
                programs+=("$program")
            fi
        done < <(find "$build/bench" -maxdepth 1 -type f -perm -u+x -name 'bench_*' | sort)
    fi
    if ((${#programs[@]} == 0)); then
        echo "no bench_* program in $build/bench${only[*]:+ named ${only[*]}}"
    fi

    : >"$out/summary.txt"
    failed=()
    done_names=()
    for program in "${programs[@]}"; do
        name=$(basename "$program")
        case $name in
        bench_gather | bench_promise | bench_soak)
            continue # latency, per-operation and endurance measurements, not scaling ones
            ;;
        esac
        bench_setup "$name"
        weft_log "$name ${bench_args[*]}"
        profile_one "$name" "$name ${bench_args[*]}" "$metric" "$match" "$program" \
            "${bench_args[@]}"
    done

    if wanted weft-work; then
        weft_log "weft-work ${work_args[*]} (the reference: no shared data, no synchronisation)"
        profile_one weft-work "weft-work ${work_args[*]}" work_ns '^work=' "$work" \
            "${work_args[@]}"
    fi

    # A trace and the statistics of one pool.
    weft_log "trace: weft-work -m tree ${work_args[*]} on a pool of the default size"
    rm -f "$out/trace.json" "$out/stats.json"
    if WEFT_TRACE=$out/trace.json "$work" -m tree "${work_args[@]}" -s "$out/stats.json" \
        >"$out/trace.log" 2>&1 && [[ -s $out/trace.json ]]; then
        cat "$out/trace.log"
    else
        echo "weft-work with WEFT_TRACE failed:"
        cat "$out/trace.log"
        failed+=(trace)
    fi

    # Where everything is.
    weft_log "summary ($((SECONDS - start)) s)"
    if ((${#done_names[@]} > 0)); then
        printf '%-16s %8s %9s %10s %11s\n' program threads speedup efficiency karp-flatt
        for name in "${done_names[@]}"; do
            # The row at the default thread count, or the last one below it.
            awk -F, -v d="$default_threads" -v name="$name" '
                NR > 1 && $1 <= d { row = $0 }
                END {
                    split(row, f, ",")
                    printf "%-16s %8s %9.2f %10.2f %11s\n", name, f[1], f[6], f[7], \
                        f[8] == "" ? "-" : sprintf("%.3f", f[8])
                }' "$out/$name.csv"
        done
    fi
    echo
    echo "tables: $out/summary.txt; per program $out/<name>.csv and .json"
    if compgen -G "$out/*.png" >/dev/null; then
        echo "plots:  $out/<name>.svg and .png"
    else
        echo "plots:  $out/<name>.svg (no PNG: rsvg-convert is not installed)"
    fi
    if [[ -s $out/trace.json ]]; then
        echo "trace:  $out/trace.json (open it in ui.perfetto.dev or chrome://tracing)"
        echo "stats:  $out/stats.json"
    fi
    echo "machine: $out/info.txt"
    if ((${#failed[@]} > 0)); then
        echo "failed: ${failed[*]}"
        exit 1
    fi
}

if ((profile)); then
    scaling_profile
else
    compare
fi
