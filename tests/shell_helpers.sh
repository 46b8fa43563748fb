# SPDX-License-Identifier: MIT
# Sourced by tests/install/run.sh and tests/package/run.sh: failing with a message, and running
# a command quietly. The sourcing script sets $work (a scratch directory) first.

die() {
    echo "FAIL: $*" >&2
    exit 1
}

# Runs a command quietly, showing its output only when it fails.
quiet() {
    local log=$work/last.log
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "$*"
    fi
}
