#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: check_weft_uts.sh TREE NP WEFT_UTS UTS_SERIAL
#
# weft-uts on NP ranks (mpirun, through tests/mpi/run_mpi.sh: Open MPI as root,
# oversubscription, a time limit) must count tree TREE as uts-serial does, and, for a tree with
# a published size, say check=ok. Runs with WEFT_THREADS=2 unless the environment sets it.
set -euo pipefail

tree=${1:?usage: check_weft_uts.sh TREE NP WEFT_UTS UTS_SERIAL}
np=${2:?missing NP}
weft_uts=${3:?missing WEFT_UTS}
serial=${4:?missing UTS_SERIAL}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run_mpi=$here/../../../tests/mpi/run_mpi.sh
limit=${WEFT_UTS_TIMEOUT:-600}
export WEFT_THREADS=${WEFT_THREADS:-2}

result() {
    grep -E '^nodes=[0-9]+ leaves=[0-9]+ depth=[0-9]+ time_ns=[0-9]+ ranks=[0-9]+ threads=[0-9]+$' |
        sed 's/ time_ns=.*//'
}

want=$(timeout "$limit" "$serial" --tree "$tree" | result)
echo "uts-serial: $want"
out=$(bash "$run_mpi" "$np" "$limit" "$weft_uts" --tree "$tree" --check --stats)
echo "$out"
got=$(result <<<"$out")
if [[ -z $got || $got != "$want" ]]; then
    echo "FAIL: weft-uts on $np ranks counts '$got', uts-serial '$want'" >&2
    exit 1
fi
if ! grep -Eq " ranks=$np threads=$WEFT_THREADS\$" <<<"$out"; then
    echo "FAIL: weft-uts does not report ranks=$np threads=$WEFT_THREADS" >&2
    exit 1
fi
grep -qx 'check=ok' <<<"$out" || { echo "FAIL: no check=ok" >&2; exit 1; }
echo "ok"
