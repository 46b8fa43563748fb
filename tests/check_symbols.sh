#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: check_symbols.sh LIBRARY
# Fails when the shared library exports a defined symbol whose name does not start with
# weft_, or exports no weft_ symbol at all. Uses $NM if set, else nm.
set -euo pipefail

lib=${1:?usage: check_symbols.sh LIBRARY}
nm_tool=${NM:-nm}

# Linker-made symbols that may show up in the dynamic table of any shared library, and those
# the sanitizers' instrumentation adds.
ignored='^(_init|_fini|_edata|_end|__bss_start|_DYNAMIC|_GLOBAL_OFFSET_TABLE_|__dso_handle)$'
ignored+='|^__(odr_asan|asan_|tsan_|ubsan_|sanitizer_)'

symbols=$("$nm_tool" -D --defined-only "$lib" | awk 'NF >= 3 { print $2, $3 }')

bad=$(printf '%s\n' "$symbols" |
    awk '$1 ~ /^[A-Za-z]$/ { print $2 }' |
    sed 's/@.*//' |
    grep -Ev "$ignored" |
    grep -v '^weft_' || true)
count=$(printf '%s\n' "$symbols" | awk '$2 ~ /^weft_/' | wc -l)

if [[ -n $bad ]]; then
    echo "FAIL: $lib exports symbols without the weft_ prefix:" >&2
    while IFS= read -r name; do
        echo "  $name" >&2
    done <<<"$bad"
    exit 1
fi
if ((count == 0)); then
    echo "FAIL: $lib exports no weft_ symbol" >&2
    exit 1
fi
echo "ok: $lib exports $count symbols, all weft_"
