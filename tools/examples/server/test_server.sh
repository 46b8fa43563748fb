#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: test_server.sh WEFT_HTTPD [--backend weft|uv]
#
# End-to-end test of weft-httpd on 127.0.0.1 (free ports, --port 0), with curl and bash's
# /dev/tcp as clients:
#   1. right bodies: nqueens counts (8 -> 92, 9 -> 352, ...), a hash checked against FNV-1a
#      computed here in bash, /health; keep-alive reuses one connection; HTTP/1.0 closes.
#   2. bad requests get their 4xx (400, 404, 405, 414, 431, 505) and the server stays up;
#      clients that vanish partway through a request or while its job runs change nothing.
#   3. back-pressure: a burst far past --max-inflight and --max-pending on one thread: requests
#      wait for room (parked, /health says how many) instead of being refused, every one gets
#      200 with the right body, in the end nothing is in flight or parked, and the server
#      serves normally afterwards. Then SIGTERM in the middle of such a burst: parked requests
#      were accepted, so they too are answered, and the server exits 0.
#   4. SIGTERM with requests in flight: new connections are refused, idle ones closed, every
#      in-flight request gets its whole response, and the server exits 0 logging
#      "shutdown: N in flight drained".
# With --backend uv (lighter) section 2 keeps a few cases: the parser is shared.
# Exit 0 when all pass, 1 otherwise, 77 (skipped) without curl. Registered as the CTest tests
# server_e2e and server_e2e_uv (tools/examples/server/CMakeLists.txt).
set -euo pipefail

if (($# < 1)) || [[ ! -x $1 ]]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//' >&2
    exit 2
fi
bin=$1
shift
backend=weft
while (($#)); do
    case $1 in
    --backend)
        backend=${2:?--backend needs weft or uv}
        shift 2
        ;;
    *)
        echo "test_server.sh: unknown argument '$1'" >&2
        exit 2
        ;;
    esac
done
if ! command -v curl >/dev/null 2>&1; then
    echo "SKIP: curl is not installed (Debian package curl)"
    exit 77
fi

tmp=$(mktemp -d)
server_pid=
client_pids=()
cleanup() {
    local pid
    for pid in "${client_pids[@]}" $server_pid; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() {
    passed=$((passed + 1))
}
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}
# check WHAT EXPECTED ACTUAL
check() {
    if [[ $2 == "$3" ]]; then
        ok
    else
        bad "$1: expected '$2', got '$3'"
    fi
}

# start_server NAME ARGS...: starts weft-httpd in the background; sets server_pid, port, and
# server_out/server_err (its stdout and stderr).
start_server() {
    local name=$1 i
    shift
    server_out=$tmp/$name.out
    server_err=$tmp/$name.err
    : >"$server_out"
    "$bin" --port 0 --backend "$backend" "$@" >"$server_out" 2>"$server_err" &
    server_pid=$!
    port=
    for ((i = 0; i < 200; i++)); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$server_out")
        [[ -n $port ]] && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    echo "FAIL: weft-httpd $* did not start:"
    cat "$server_err"
    exit 1
}

# A sanitizer build's reports (races, leaks, undefined behaviour) fail the test.
sanitizer_clean() {
    if grep -q 'Sanitizer\|runtime error:' "$server_err"; then
        bad "sanitizer report from weft-httpd:"
        cat "$server_err"
    fi
}

# stop_server: SIGTERM, then the exit status must be 0 and the drain logged.
stop_server() {
    local rc=0
    kill -TERM "$server_pid"
    wait "$server_pid" || rc=$?
    server_pid=
    check "exit status after SIGTERM" 0 "$rc"
    sanitizer_clean
    if ! grep -q '^weft-httpd: shutdown: [0-9]* in flight drained$' "$server_err"; then
        bad "no drain line in the log:"
        cat "$server_err"
    fi
}

url() {
    echo "http://127.0.0.1:$port/$1"
}

# get PATH: the body (with -w, "code body")
get() {
    curl -sS --max-time 30 "$(url "$1")"
}

alive() {
    local body
    body=$(get health 2>&1) || true
    if [[ $body == "ok inflight="* ]]; then
        ok
    else
        bad "server not answering /health after $1: '$body'"
    fi
}

# raw REQUEST: sends REQUEST (printf %b escapes) on a new connection and prints the status code
# of the response, or "none" when the connection ends without one.
raw() {
    local fd reply
    exec {fd}<>"/dev/tcp/127.0.0.1/$port"
    (printf '%b' "$1" >&"$fd") 2>/dev/null || true
    reply=$(timeout 10 head -c 200 <&"$fd" | tr -d '\0' | head -n 1) || true
    exec {fd}>&-
    reply=${reply%$'\r'}
    if [[ $reply =~ ^HTTP/1\.1\ ([0-9]{3})\  ]]; then
        echo "${BASH_REMATCH[1]}"
    else
        echo none
    fi
}

# FNV-1a rounds as weft-httpd's hash_rounds, in bash's 64-bit arithmetic.
fnv_rounds() {
    local rounds=$1 h r i k
    local -a b
    for ((i = 0; i < 32; i++)); do
        b[i]=$i
    done
    h=$((0xcbf29ce484222325))
    for ((r = 0; r < rounds; r++)); do
        for ((i = 0; i < 32; i++)); do
            h=$(((h ^ b[i]) * 0x100000001b3))
        done
        for ((k = 0; k < 8; k++)); do
            b[8 * (r % 4) + k]=$(((h >> (8 * k)) & 255))
        done
    done
    printf '%016x\n' "$h"
}

echo "== weft-httpd --backend $backend"

# --- 1. bodies -------------------------------------------------------------------------------
start_server main --threads 2
declare -A queens=([1]=1 [2]=0 [4]=2 [6]=4 [8]=92 [9]=352 [10]=724)
for n in "${!queens[@]}"; do
    check "nqueens n=$n" "${queens[$n]}" "$(get "nqueens?n=$n")"
done
check "hash rounds=7" "$(fnv_rounds 7)" "$(get 'hash?rounds=7')"
check "hash rounds=1" "$(fnv_rounds 1)" "$(get 'hash?rounds=1')"
check "health" "ok inflight=0 parked=0" "$(get health)"
# Keep-alive: curl reuses the connection for the second URL (0 new connects).
check "keep-alive" "92;1 352;0 " "$(curl -sS --max-time 30 -w '%{num_connects} ' \
    "$(url 'nqueens?n=8')" "$(url 'nqueens?n=9')" | tr '\n' ';')"
check "HTTP/1.0 closes" "Connection: close" \
    "$(curl -sS -0 -D - -o /dev/null "$(url health)" | tr -d '\r' | grep -i '^connection:')"
check "HTTP/1.1 keeps" "Connection: keep-alive" \
    "$(curl -sS -D - -o /dev/null "$(url health)" | tr -d '\r' | grep -i '^connection:')"

# --- 2. bad requests -------------------------------------------------------------------------
H='Host: x\r\n'
big=$(printf '%*s' 9000 '' | tr ' ' a)
declare -a cases=(
    "400|GARBAGE\r\n\r\n"
    "400|GET /nqueens?n=0 HTTP/1.1\r\n$H\r\n"
    "400|GET /nqueens?n=14 HTTP/1.1\r\n$H\r\n"
    "400|GET /hash?rounds=10000001 HTTP/1.1\r\n$H\r\n"
    "404|GET /nope HTTP/1.1\r\n$H\r\n"
    "405|POST /hash?rounds=5 HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc"
    "400|GET /health HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello"
    "431|GET /health HTTP/1.1\r\n${H}X-Big: $big\r\n\r\n"
)
if [[ $backend == weft ]]; then
    cases+=(
        "400|GET /nqueens?n=abc HTTP/1.1\r\n$H\r\n"
        "400|GET /nqueens HTTP/1.1\r\n$H\r\n"
        "400|GET /nqueens? HTTP/1.1\r\n$H\r\n"
        "400|GET /nqueens?m=3 HTTP/1.1\r\n$H\r\n"
        "400|GET /nqueens?n=3&n=4 HTTP/1.1\r\n$H\r\n"
        "400|GET /nqueens?n=-3 HTTP/1.1\r\n$H\r\n"
        "400|GET /hash?rounds=0 HTTP/1.1\r\n$H\r\n"
        "400|GET /hash?rounds=99999999999999999999 HTTP/1.1\r\n$H\r\n"
        "400|GET /hash?rounds= HTTP/1.1\r\n$H\r\n"
        "404|GET / HTTP/1.1\r\n$H\r\n"
        "404|GET /nqueensx?n=3 HTTP/1.1\r\n$H\r\n"
        "405|get /health HTTP/1.1\r\n$H\r\n"
        "400|GET /health HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        "400|GET /health HTTP/1.1\r\n\r\n"
        "400|GET /health HTTP/1.1\r\n${H}${H}\r\n"
        "400|GET /health HTTP/1.1\r\nno colon here\r\n\r\n"
        "400|GET /health HTTP/1.1\r\n${H} folded\r\n\r\n"
        "400|GET /health HTTP/1.1\r\n${H}Content-Length: x\r\n\r\n"
        "400|GET  /health HTTP/1.1\r\n$H\r\n"
        "400|GET /health HTTP/1.1 \r\n$H\r\n"
        "400|GET /health\r\n$H\r\n"
        "400|GET /health HTTP/x.1\r\n$H\r\n"
        "505|GET /health HTTP/2.0\r\n$H\r\n"
        "400|\x00\x01\x02\xff\r\n\r\n"
        "400|GET /he\x01lth HTTP/1.1\r\n$H\r\n"
        "414|GET /$big HTTP/1.1\r\n$H\r\n"
        "200|\r\n\r\nGET /health HTTP/1.1\r\n${H}Connection: close\r\n\r\n"
        "200|GET /health HTTP/1.0\n\n"
    )
fi
for c in "${cases[@]}"; do
    expect=${c%%|*}
    req=${c#*|}
    check "raw request '${req:0:60}'" "$expect" "$(raw "$req")"
done
alive "the bad requests"

# Clients that go away: partway through a head, after a whole request (its job runs on and its
# answer is dropped), and in the middle of a response's life on a keep-alive connection.
exec {fd}<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /hash?rou' >&"$fd"
exec {fd}>&-
exec {fd}<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /hash?rounds=2000000 HTTP/1.1\r\nHost: x\r\n\r\n' >&"$fd"
exec {fd}>&-
curl -s --max-time 0.01 "$(url 'hash?rounds=3000000')" >/dev/null 2>&1 || true
# Pipelined: two requests in one write, answered in order on the same connection.
exec {fd}<>"/dev/tcp/127.0.0.1/$port"
printf '%b' 'GET /nqueens?n=8 HTTP/1.1\r\nHost: x\r\n\r\n' \
    'GET /nqueens?n=9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&"$fd"
check "pipelined" "keep-alive;92;close;352;" "$(timeout 10 cat <&"$fd" | tr -d '\r' |
    sed -n 's/^\([0-9][0-9]*\)$/\1/p; s/^Connection: //p' | tr '\n' ';')"
exec {fd}>&-
for ((i = 0; i < 100; i++)); do
    [[ $(get health) == "ok inflight=0 parked=0" ]] && break
    sleep 0.05
done
check "in flight after vanished clients" "ok inflight=0 parked=0" "$(get health)"
alive "clients that vanished"
stop_server
if ! grep -q 'answers dropped' "$server_err"; then
    bad "no summary line"
fi

# --- 3. back-pressure ------------------------------------------------------------------------
# One worker, at most 2 jobs in the pool (1 waiting to start): of 24 simultaneous ~50 ms
# requests most must wait for room. None may be refused, lost or left hanging.
# burst NAME N: N parallel requests in the background (curl per request, so that each has its
# own connection); their status and body go to $tmp/NAME.I.
burst() {
    local name=$1 n=$2 i
    burst_pids=()
    for ((i = 0; i < n; i++)); do
        curl -s --max-time 120 -o "$tmp/$name.$i.body" -w '%{http_code}' \
            "$(url "hash?rounds=$rounds")" >"$tmp/$name.$i.code" 2>/dev/null &
        burst_pids+=($!)
        client_pids+=($!)
    done
}
# burst_check NAME N: every request of the burst answered 200 with the right body.
burst_check() {
    local name=$1 n=$2 i good=0 rc
    for ((i = 0; i < n; i++)); do
        rc=0
        wait "${burst_pids[i]}" || rc=$?
        if ((rc == 0)) && [[ $(cat "$tmp/$name.$i.code") == 200 ]] &&
            [[ $(cat "$tmp/$name.$i.body") == "$want" ]]; then
            good=$((good + 1))
        fi
    done
    client_pids=()
    check "$name: requests answered 200 with the right body" "$n" "$good"
}
# parked_now: the parked count /health reports, or -1
parked_now() {
    local h
    h=$(get health 2>/dev/null) || true
    if [[ $h =~ parked=([0-9]+) ]]; then
        echo "${BASH_REMATCH[1]}"
    else
        echo -1
    fi
}

start_server burst --threads 1 --max-pending 1 --max-inflight 2
rounds=1000000
want=$(get "hash?rounds=$rounds")
n=24
burst burst "$n"
most=0
for ((i = 0; i < 400; i++)); do
    p=$(parked_now)
    ((p > most)) && most=$p
    ((most >= 10)) && break
    sleep 0.01
done
if ((most >= 10)); then
    ok
else
    bad "burst: at most $most requests seen parked, expected 10 or more"
fi
burst_check burst "$n"
echo "burst: $n answered, up to $most parked at once"
check "after the burst" "ok inflight=0 parked=0" "$(get health)"
check "hash after the burst" "$want" "$(get "hash?rounds=$rounds")"
stop_server
waited=$(sed -n 's/.*; \([0-9]*\) requests waited for room$/\1/p' "$server_err")
if [[ -n $waited ]] && ((waited >= most && waited < n)); then
    ok
else
    bad "burst: '$waited' requests waited for room (seen parked at once: $most, of $n)"
fi
if grep -q 'rejected (503)' "$server_err" && ! grep -q ' 0 rejected (503)' "$server_err"; then
    bad "requests were refused:"
    cat "$server_err"
fi

# SIGTERM while requests are parked: they were accepted, so they are answered too.
start_server parked --threads 1 --max-pending 1 --max-inflight 1
n=8
burst parked "$n"
for ((i = 0; i < 400; i++)); do
    (($(parked_now) >= 4)) && break
    sleep 0.01
done
check "parked before SIGTERM" yes "$( (($(parked_now) >= 4)) && echo yes || echo "$(get health)")"
kill -TERM "$server_pid"
burst_check parked "$n"
rc=0
wait "$server_pid" || rc=$?
server_pid=
check "exit status after a drain with parked requests" 0 "$rc"
sanitizer_clean

# --- 4. drain on SIGTERM ---------------------------------------------------------------------
start_server drain --threads 2 --max-pending 64
rounds=6000000
want=$(get "hash?rounds=$rounds")
k=6
for ((i = 0; i < k; i++)); do
    curl -sS --max-time 120 -D "$tmp/drain.h$i" -o "$tmp/drain.b$i" \
        "$(url "hash?rounds=$rounds")" 2>"$tmp/drain.e$i" &
    client_pids+=($!)
done
for ((i = 0; i < 400; i++)); do
    [[ $(get health) == "ok inflight=$k parked=0" ]] && break
    sleep 0.025
done
check "in flight before SIGTERM" "ok inflight=$k parked=0" "$(get health)"
# An idle keep-alive connection and one partway through a head: both are closed.
exec {idle}<>"/dev/tcp/127.0.0.1/$port"
exec {partial}<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /health HTTP/1.1\r\n' >&"$partial"
kill -TERM "$server_pid"
for ((i = 0; i < 200; i++)); do
    grep -q 'signal 15: stopping' "$server_err" && break
    sleep 0.025
done
crc=0
curl -s --max-time 10 -o /dev/null "$(url health)" || crc=$?
check "connect after SIGTERM (7: refused)" 7 "$crc"
check "idle connection closed" "" "$(timeout 10 cat <&"$idle" || echo timeout)"
check "partial request closed" "" "$(timeout 10 cat <&"$partial" || echo timeout)"
exec {idle}>&- {partial}>&-
# Every request gets its whole response. Those still running at the signal (usually all k; one
# may have just finished) are answered with "Connection: close", and the server drains exactly
# as many as it had in flight when the signal came.
closing=0
for ((i = 0; i < k; i++)); do
    rc=0
    wait "${client_pids[i]}" || rc=$?
    check "in-flight request $i: curl status" 0 "$rc"
    check "in-flight request $i: status line" "HTTP/1.1 200 OK" \
        "$(head -n 1 "$tmp/drain.h$i" | tr -d '\r')"
    check "in-flight request $i: body" "$want" "$(cat "$tmp/drain.b$i")"
    if tr -d '\r' <"$tmp/drain.h$i" | grep -qi '^connection: close$'; then
        closing=$((closing + 1))
    fi
done
client_pids=()
rc=0
wait "$server_pid" || rc=$?
server_pid=
check "exit status after the drain" 0 "$rc"
sanitizer_clean
at_signal=$(sed -n 's/^weft-httpd: signal 15: stopping; \([0-9]*\) in flight.*/\1/p' "$server_err")
if [[ -z $at_signal ]] || ((at_signal < 1)); then
    bad "nothing in flight at the signal: '$at_signal'"
else
    ok
fi
echo "drain: $at_signal of $k in flight at SIGTERM"
check "responses that closed the connection" "$at_signal" "$closing"
check "drain log line" "weft-httpd: shutdown: $at_signal in flight drained" \
    "$(grep 'shutdown:' "$server_err" || true)"

echo "$passed passed, $failed failed"
((failed == 0))
