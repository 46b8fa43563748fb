#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: check_uts.sh published TREE UTS_SERIAL
#        check_uts.sh small TREE UTS_SERIAL UTS_CHECK_PY
#        check_uts.sh long TREE UTS_SERIAL
#        check_uts.sh local TREE WEFT_UTS_LOCAL UTS_SERIAL
#
# The UTS tests (registered in tools/examples/mpi/CMakeLists.txt):
#   published  uts-serial --check: the count must be the published one (T1, T3)
#   small      uts-serial's count of a small tree against uts_check.py's, an independent
#              breadth-first count in Python with hashlib (S1, S3); once hashing through the
#              provider's functions, once through EVP (UTS_SHA1_EVP=1)
#   long       as published, for T1L and T3L (~100 M nodes, ~10 s each); skipped (exit 77)
#              unless WEFT_LONG_TESTS=1
#   local      weft-uts-local with pools of 1, 2 and 4 workers: its nodes, leaves and depth must
#              be uts-serial's
# Every program runs under timeout(1), so that a hang fails instead of stalling the suite.
set -euo pipefail

if (($# < 3)); then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//' >&2
    exit 2
fi
mode=$1
tree=$2
shift 2

limit=${WEFT_UTS_TIMEOUT:-600}

# The line every UTS program prints, checked for its form; prints its "nodes= leaves= depth=".
line_of() {
    local out=$1 line
    line=$(grep -E '^nodes=[0-9]+ leaves=[0-9]+ depth=[0-9]+ time_ns=[0-9]+ ranks=[0-9]+ threads=[0-9]+$' <<<"$out" || true)
    if [[ -z $line || $(wc -l <<<"$line") -ne 1 ]]; then
        echo "FAIL: expected one result line, got:" >&2
        echo "$out" >&2
        return 1
    fi
    echo "${line%% time_ns=*}"
}

case $mode in
published | long)
    if [[ $mode == long && ${WEFT_LONG_TESTS:-0} != 1 ]]; then
        echo "skipped: $tree takes minutes under sanitizers; run with WEFT_LONG_TESTS=1 ctest -L long"
        exit 77
    fi
    out=$(timeout "$limit" "$1" --tree "$tree" --check)
    echo "$out"
    line_of "$out" >/dev/null
    grep -qx 'check=ok' <<<"$out"
    ;;
small)
    if ! command -v python3 >/dev/null 2>&1; then
        echo "skipped: python3 is needed for the independent count"
        exit 77
    fi
    out=$(timeout "$limit" "$1" --tree "$tree" --check)
    echo "$out"
    ours=$(line_of "$out")
    theirs=$(timeout "$limit" python3 "$2" "$tree")
    echo "uts_check.py: $theirs"
    if [[ $ours != "$theirs" ]]; then
        echo "FAIL: uts-serial counts '$ours', uts_check.py '$theirs'" >&2
        exit 1
    fi
    # The same through libcrypto's EVP interface, the path taken when the provider's own
    # functions cannot be had.
    out=$(UTS_SHA1_EVP=1 timeout "$limit" "$1" --tree "$tree" --ns-per-node)
    echo "UTS_SHA1_EVP=1: $out"
    grep -q 'sha1_path=evp$' <<<"$out"
    if [[ $(line_of "$out") != "$theirs" ]]; then
        echo "FAIL: uts-serial with UTS_SHA1_EVP=1 counts '$(line_of "$out")'" >&2
        exit 1
    fi
    ;;
local)
    want=$(line_of "$(timeout "$limit" "$2" --tree "$tree")")
    echo "uts-serial: $want"
    for threads in 1 2 4; do
        out=$(timeout "$limit" "$1" --tree "$tree" --threads "$threads")
        echo "$out"
        got=$(line_of "$out")
        if [[ $got != "$want" ]]; then
            echo "FAIL: weft-uts-local --threads $threads counts '$got', uts-serial '$want'" >&2
            exit 1
        fi
        if ! grep -q " threads=$threads\$" <<<"$out"; then
            echo "FAIL: weft-uts-local --threads $threads does not report threads=$threads" >&2
            exit 1
        fi
    done
    ;;
*)
    echo "check_uts.sh: unknown mode '$mode'" >&2
    exit 2
    ;;
esac
echo "ok"
