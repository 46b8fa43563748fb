#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: check_cli.sh demo|httpd PROGRAM
#
# The command lines of the example programs, which all parse with getopt_long and share their
# option names: --help (exit 0, every option with its short form), --threads N, --threads=N and
# -t N alike, and exit status 2 with a message for an unknown option, a missing or bad value and
# a stray argument. For a demo (weft-demo-gather, -wait, -promise) the forms are checked on the
# banner line it prints ("N threads"); weft-httpd is started on port 0 with --threads=2, its
# first lines read, and stopped with SIGTERM.
# Registered as the CTest tests cli_gather, cli_wait, cli_promise and cli_httpd
# (tools/examples/CMakeLists.txt).
set -euo pipefail

if (($# != 2)) || [[ $1 != demo && $1 != httpd ]]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//' >&2
    exit 2
fi
kind=$1
program=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-cli.XXXXXX")
server=
cleanup() {
    if [[ -n $server ]]; then
        kill -KILL "$server" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# status WANT ARGS...: runs the program with ARGS, its output in $tmp/out and $tmp/err.
status() {
    local want=$1 rc=0
    shift
    timeout 30 "$program" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if ((rc != want)); then
        fail "$(basename "$program") $*: exit status $rc, expected $want"
        sed 's/^/  stderr: /' "$tmp/err" | head -n 5
        return 1
    fi
}

if status 0 --help; then
    for opt in '-t, --threads N' '-h, --help' "--threads=4"; do
        grep -qF -- "$opt" "$tmp/out" || fail "--help does not show '$opt'"
    done
    if [[ $kind == httpd ]]; then
        for opt in '-p, --port P' '-m, --max-pending N' '-b, --backend B'; do
            grep -qF -- "$opt" "$tmp/out" || fail "--help does not show '$opt'"
        done
    else
        grep -qF -- '-s, --scale F' "$tmp/out" || fail "--help does not show '-s, --scale F'"
    fi
fi
status 0 -h || true

# Errors: each says what was wrong, then the usage on stderr.
if status 2 --bogus; then
    grep -q 'bogus' "$tmp/err" || fail "an unknown option is not named"
fi
if status 2 --threads; then
    grep -q 'requires an argument' "$tmp/err" || fail "a missing value is not reported"
fi
# (weft-httpd takes --threads 0 as "one per core", the demos do not.)
bad_values=(--threads=abc "--threads=-1" "-t 1025")
if [[ $kind == demo ]]; then
    bad_values+=(--threads=0)
fi
for bad in "${bad_values[@]}"; do
    # shellcheck disable=SC2086 # "-t 1025" is two words on purpose
    if status 2 $bad; then
        grep -q "bad value" "$tmp/err" || fail "$bad: no 'bad value' message"
        grep -q -i 'usage' "$tmp/err" || fail "$bad: no usage after the message"
    fi
done
status 2 --threads 2 stray || true

if [[ $kind == demo ]]; then
    # Every form of an option with a value gives the same pool, at a short scale.
    for form in "--threads=3 --scale=0.01" "--threads 3 --scale 0.01" "-t 3 -s 0.01" "-t3 -s0.01" \
        "--thr=3 --sca=0.01"; do
        # shellcheck disable=SC2086 # the forms are several words
        if status 0 $form; then
            head -n 1 "$tmp/out" | grep -q ', 3 threads$' ||
                fail "$form: the banner is '$(head -n 1 "$tmp/out")'"
        fi
    done
    status 2 --scale=0 || true
else
    status 2 --backend=tcp || true
    status 2 --port=70000 || true
    # The server with --opt=value forms: its first lines, then SIGTERM and a clean exit.
    "$program" --threads=2 --port=0 -m 16 --backend=weft >"$tmp/out" 2>"$tmp/err" &
    server=$!
    for _ in $(seq 1 100); do
        if grep -q '^listening on 127.0.0.1:' "$tmp/out"; then
            break
        fi
        sleep 0.1
    done
    grep -q '^listening on 127.0.0.1:[1-9]' "$tmp/out" || fail "weft-httpd did not start"
    grep -q 'backend weft, 2 threads, max-pending 16' "$tmp/err" ||
        fail "weft-httpd's settings: $(head -n 1 "$tmp/err")"
    kill -TERM "$server"
    rc=0
    wait "$server" || rc=$?
    server=
    ((rc == 0)) || fail "weft-httpd exited with $rc after SIGTERM"
fi

if ((failures > 0)); then
    echo "$kind $(basename "$program"): $failures failure(s)"
    exit 1
fi
echo "$kind $(basename "$program"): ok"
