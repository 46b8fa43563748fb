#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: loadtest.sh [options] WEFT_HTTPD [OUT.md]
#
# Load test of weft-httpd with wrk, on 127.0.0.1 only: the weft backend against the uv backend
# (libuv's own thread pool), with the same number of threads and the same back-pressure limit.
#   load      closed-loop load at 2, 8, 32 and 128 connections on GET /hash?rounds=5000 (about
#             0.25 ms of CPU per request), the backends interleaved (weft, uv, uv, weft, ...)
#             and the whole phase repeated --rounds times
#   overload  256 connections on /hash?rounds=50000 (about 2.5 ms each, far more than the cores
#             can do), once with --max-pending 16 and once without a limit. Requests past the
#             limit wait unread for room (parked), none is refused: with a limit the pool's queue
#             stays short and the waiting moves to the server's connections. Phase
#             "overload+ra" repeats the limited run with clients that honour "Retry-After: 1"
#             on a 503 (through wrk's Lua delay()); the server sends 503 only while shutting
#             down, so it should see none.
# Prints a table and writes it, with the conditions of the run, as markdown to OUT.md (default
# loadtest.md). Rows aggregate the rounds: req/s, 2xx/s, p50 and p99 are medians (with an even
# number of rounds, the mean of the middle two), counts sums. wrk runs with one thread, on the
# same cores as the server: the numbers compare the backends under the same conditions; they
# are not the server's peak.
#
# Options:
#   --duration S  seconds per wrk run (default 3)
#   --rounds R    repetitions of the load phase (default 2; 3 or more make the medians robust
#                 on a shared machine)
#   --load-only   skip the overload phases
#   --threads N   server threads, both backends (default: every CPU, nproc)
#   --allocs      also count heap allocations per request of each backend, preloading
#                 libweft-malloc-count.so from WEFT_HTTPD's directory (two more runs each)
# Takes about (8 R + 6) D + 20 seconds: about 90 s by default, about 2 minutes with --allocs
# (8 R D + 10 s with --load-only).
# Every server started is stopped with SIGTERM (and checked to exit 0 after its drain), or
# killed if the script ends early: nothing is left running.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//'
}

duration=3
rounds=2
threads=$(nproc)
allocs=0
load_only=0
args=()
while (($#)); do
    case $1 in
    --duration | --rounds | --threads)
        if [[ ${2:-} != [1-9]* || ${2:-} == *[!0-9]* ]]; then
            echo "loadtest.sh: $1 needs a positive integer" >&2
            exit 2
        fi
        case $1 in
        --duration) duration=$2 ;;
        --rounds) rounds=$2 ;;
        --threads) threads=$2 ;;
        esac
        shift 2
        ;;
    --allocs)
        allocs=1
        shift
        ;;
    --load-only)
        load_only=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    -*)
        echo "loadtest.sh: unknown option '$1'" >&2
        exit 2
        ;;
    *)
        args+=("$1")
        shift
        ;;
    esac
done
if ((${#args[@]} < 1 || ${#args[@]} > 2)) || [[ ! -x ${args[0]} ]]; then
    usage >&2
    exit 2
fi
bin=${args[0]}
out=${args[1]:-loadtest.md}
if ! command -v wrk >/dev/null 2>&1; then
    echo "loadtest.sh: wrk is not installed (Debian package wrk)" >&2
    exit 1
fi

load_path='/hash?rounds=5000'
heavy_path='/hash?rounds=50000'
load_conns=(2 8 32 128)
heavy_conns=256
heavy_limits=(16 0)
if ((load_only)); then
    heavy_limits=()
fi

tmp=$(mktemp -d)
declare -A pid_of=() port_of=()
cleanup() {
    local name
    for name in "${!pid_of[@]}"; do
        kill -KILL "${pid_of[$name]}" 2>/dev/null || true
        wait "${pid_of[$name]}" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

say() {
    printf '%s\n' "$*" >&2
}

# start NAME ARGS...: weft-httpd on a free port; pid_of[NAME], port_of[NAME]. $server_env
# (an array of VAR=value) goes into its environment.
server_env=()
start() {
    local name=$1 i port=
    shift
    : >"$tmp/$name.out"
    env "${server_env[@]}" "$bin" --port 0 --threads "$threads" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid_of[$name]=$!
    for ((i = 0; i < 200; i++)); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.out")
        [[ -n $port ]] && break
        sleep 0.05
    done
    if [[ -z $port ]]; then
        say "loadtest.sh: weft-httpd $* did not start:"
        cat "$tmp/$name.err" >&2
        exit 1
    fi
    port_of[$name]=$port
}

# stop NAME: SIGTERM; it must drain and exit 0 within 30 s.
stop() {
    local name=$1 pid=${pid_of[$1]} i rc=0
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "loadtest.sh: $name did not exit 30 s after SIGTERM; killing it"
        kill -KILL "$pid"
    fi
    wait "$pid" || rc=$?
    unset "pid_of[$name]"
    if ((rc != 0)) || ! grep -q 'shutdown: [0-9]* in flight drained' "$tmp/$name.err"; then
        say "loadtest.sh: $name exited with status $rc:"
        cat "$tmp/$name.err" >&2
        exit 1
    fi
}

# A client that honours Retry-After: each 503 makes one of the next requests of this wrk thread
# wait 1 s (delay() runs when a connection is about to send, usually the one just answered).
cat >"$tmp/retry_after.lua" <<'EOF'
local owed = 0
function response(status, headers, body)
    if status == 503 then
        owed = owed + 1
    end
end
function delay()
    if owed > 0 then
        owed = owed - 1
        return 1000
    end
    return 0
end
EOF

# wrk_run NAME CONNS PATH SECONDS [SCRIPT]: one wrk run; prints "req/s 2xx/s p50_ms p99_ms
# non2xx errors requests".
wrk_run() {
    local name=$1 conns=$2 path=$3 secs=$4 lua=()
    if [[ -n ${5:-} ]]; then
        lua=(-s "$5")
    fi
    timeout $((secs + 30)) wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s --latency "${lua[@]}" \
        "http://127.0.0.1:${port_of[$name]}$path" >"$tmp/wrk.out" 2>&1 || true
    # shellcheck disable=SC2016 # awk program, not shell
    awk '
    function ms(v,    x) {
        x = v + 0
        if (v ~ /us$/) return x / 1000
        if (v ~ /ms$/) return x
        if (v ~ /m$/) return x * 60000
        if (v ~ /s$/) return x * 1000
        return x
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    / requests in / { n = $1; t = $4 + 0 }
    /Non-2xx or 3xx responses:/ { non = $NF }
    /Socket errors:/ { errs = $4 + $6 + $8 + $10 }
    $1 == "Requests/sec:" { rps = $2 }
    END {
        if (n == "" || t <= 0) { print "wrk gave no result" > "/dev/stderr"; exit 1 }
        printf "%.0f %.0f %.3f %.3f %d %d %d\n", rps, (n - non) / t, p50, p99, non, errs, n
    }' "$tmp/wrk.out" || {
        cat "$tmp/wrk.out" >&2
        exit 1
    }
}

results=$tmp/results # phase backend limit conns path | req/s 2xx/s p50 p99 non2xx errors n
record() {
    local phase=$1 backend=$2 limit=$3 conns=$4 path=$5 script=${6:-} r
    r=$(wrk_run "$backend-$limit" "$conns" "$path" "$duration" "$script")
    echo "$phase $backend $limit $conns $path $r" >>"$results"
    say "  $phase $backend max-pending=$limit conns=$conns: $r"
}

t0=$SECONDS
default_limit=$((64 * threads))
say "weft-httpd load test: $threads server threads, ${duration}s per run, $rounds rounds"

# --- load ------------------------------------------------------------------------------------
for b in weft uv; do
    start "$b-$default_limit" --backend "$b"
    wrk_run "$b-$default_limit" 8 "$load_path" 1 >/dev/null # warm-up
done
for ((r = 0; r < rounds; r++)); do
    for c in "${load_conns[@]}"; do
        order=(weft uv)
        if (((r + c) % 2)); then
            order=(uv weft)
        fi
        for b in "${order[@]}"; do
            record load "$b" "$default_limit" "$c" "$load_path"
        done
    done
done
for b in weft uv; do
    stop "$b-$default_limit"
done

# --- overload --------------------------------------------------------------------------------
for limit in "${heavy_limits[@]}"; do
    for b in weft uv; do
        start "$b-$limit" --backend "$b" --max-pending "$limit"
    done
    for b in weft uv; do
        record overload "$b" "$limit" "$heavy_conns" "$heavy_path"
    done
    if ((limit != 0)); then
        for b in uv weft; do
            record overload+ra "$b" "$limit" "$heavy_conns" "$heavy_path" "$tmp/retry_after.lua"
        done
    fi
    for b in weft uv; do
        stop "$b-$limit"
    done
done

# --- allocations per request -----------------------------------------------------------------
alloc_line=
if ((allocs)); then
    so=$(dirname "$bin")/libweft-malloc-count.so
    if [[ ! -f $so ]]; then
        say "loadtest.sh: no $so (sanitizer build?): skipping --allocs"
    else
        alloc_line="Heap allocations per request in steady state (every thread of the server;"
        alloc_line+=" LD_PRELOAD counter, difference between a 1 s and a 3 s run at 8"
        alloc_line+=" connections on $load_path):"
        for b in weft uv; do
            declare -A count=() reqs=()
            for d in 1 3; do
                server_env=("LD_PRELOAD=$so" "MALLOC_COUNT_FILE=$tmp/allocs.$b.$d")
                start "$b-allocs" --backend "$b"
                server_env=()
                r=$(wrk_run "$b-allocs" 8 "$load_path" "$d")
                stop "$b-allocs"
                count[$d]=$(cat "$tmp/allocs.$b.$d")
                reqs[$d]=${r##* }
            done
            per=$(awk -v c1="${count[1]}" -v c3="${count[3]}" -v n1="${reqs[1]}" \
                -v n3="${reqs[3]}" 'BEGIN { printf "%.4f", (c3 - c1) / (n3 - n1) }')
            alloc_line+=" $b $per (${count[1]} allocations for ${reqs[1]} requests,"
            alloc_line+=" ${count[3]} for ${reqs[3]});"
            say "  allocations $b: ${count[1]} / ${reqs[1]} requests, ${count[3]} / ${reqs[3]}"
            unset count reqs
        done
        alloc_line=${alloc_line%;}.
    fi
fi

# --- the table -------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
wrk_version=$( (wrk -v 2>&1 || true) | head -n 1 | awk '{print $1, $2}')
{
    echo "weft-httpd, $threads server threads, $(nproc) CPUs (${cpu:-unknown CPU}), $(uname -sr)," \
        "$wrk_version with one thread on the same machine; ${duration}s per run, load rows over" \
        "$rounds rounds (req/s, 2xx/s, p50, p99: medians; counts: sums)."
    echo "Load: GET $load_path (about 0.25 ms of CPU). Overload: GET $heavy_path (about 2.5 ms)" \
        "at $heavy_conns connections; max-pending 0 is no limit; overload retries a 503 at once," \
        "overload+ra waits 1 s (Retry-After) first."
    echo
    echo "| phase | backend | max-pending | conns | req/s | 2xx/s | p50 ms | p99 ms | non-2xx | socket errors |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    # shellcheck disable=SC2016 # awk program, not shell
    awk '
    # median of the space-separated numbers in s
    function median(s,    v, n, i, j, t) {
        n = split(s, v, " ")
        for (i = 2; i <= n; i++) {
            t = v[i] + 0
            for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]
            v[j + 1] = t
        }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    {
        k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
        if (!(k in runs)) { order[++nk] = k }
        runs[k]++; rps[k] = rps[k] " " $6; ok[k] = ok[k] " " $7; p50[k] = p50[k] " " $8
        p99[k] = p99[k] " " $9; non[k] += $10; errs[k] += $11
    }
    END {
        for (i = 1; i <= nk; i++) {
            k = order[i]; split(k, f, SUBSEP)
            printf "| %s | %s | %s | %s | %.0f | %.0f | %.2f | %.2f | %d | %d |\n", f[1], f[2],
                f[3], f[4], median(rps[k]), median(ok[k]), median(p50[k]), median(p99[k]),
                non[k], errs[k]
        }
    }' <(sort -s -k1,1 -k3,3nr -k4,4n -k2,2r "$results")
    if [[ -n $alloc_line ]]; then
        echo
        echo "$alloc_line"
    fi
} >"$tmp/table.md"
cp "$tmp/table.md" "$out"
cat "$tmp/table.md"
say "written to $out in $((SECONDS - t0)) s"
