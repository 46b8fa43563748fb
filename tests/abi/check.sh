#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: check.sh LIBWEFT_SO REFERENCE [--self-test]
#
# The ABI rule of docs/packaging.md, checked: compares the exported ABI of the built library
# (LIBWEFT_SO, with its DWARF) against the committed reference (tests/abi/libweft.abi, written
# by abidw) with abidiff, and fails when
#   - the library's SONAME is not the reference's: the SONAME was bumped, so the reference must
#     be regenerated with it (tests/abi/update.sh), deliberately;
#   - with the same SONAME, anything the reference has was removed or changed: a function or
#     variable gone, a signature changed, a struct users see (weft_config, weft_scope,
#     weft_spawn, weft_frame, weft_stats, weft_worker_stats, weft_machine_info) grown, shrunk or
#     rearranged, an enumerator renumbered. Such a change needs a new SONAME.
# Additions (new functions, a reserved member turned into an anonymous union of the same size)
# pass, and are listed.
#
# --self-test: checks that the check can fail. Runs it against two doctored copies of
# REFERENCE (one with a function the library lacks, one in which weft_config is smaller) and
# fails unless both are refused.
#
# Exits 77 (ctest: skipped) without abidiff (Debian: abigail-tools), or when the library has no
# debug information or is built for another architecture than the reference.
set -euo pipefail

lib=${1:?usage: check.sh LIBWEFT_SO REFERENCE [--self-test]}
ref=${2:?usage: check.sh LIBWEFT_SO REFERENCE [--self-test]}
mode=${3:-}

for tool in abidiff readelf; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool not found (Debian: apt-get install abigail-tools binutils)"
        exit 77
    fi
done
lib=$(readlink -f "$lib")
if [[ $(readelf -S "$lib") != *.debug_info* ]]; then
    echo "SKIP: $lib has no debug information (build with -g, e.g. RelWithDebInfo)"
    exit 77
fi

ref_arch=$(sed -n "s/^<abi-corpus [^>]*architecture='\([^']*\)'.*/\1/p" "$ref" | head -n 1)
case $(readelf -h "$lib" | sed -n 's/^ *Machine: *//p') in
*X86-64*) lib_arch=elf-amd-x86_64 ;;
*AArch64*) lib_arch=elf-arm-aarch64 ;;
*) lib_arch=other ;;
esac
if [[ $ref_arch != "$lib_arch" ]]; then
    echo "SKIP: the reference describes $ref_arch, the library is $lib_arch"
    exit 77
fi

# check REFERENCE: 0 when the rule holds, 1 when it does not.
check() {
    local ref=$1 ref_soname soname report rc=0 line bad=0
    ref_soname=$(sed -n "s/^<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$ref" | head -n 1)
    soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
    if [[ $soname != "$ref_soname" ]]; then
        echo "FAIL: the library's SONAME is $soname, the reference's $ref_soname."
        echo "      After a deliberate SONAME bump, regenerate the reference:"
        echo "      tests/abi/update.sh <build dir>   (docs/packaging.md, \"ABI\")"
        return 1
    fi
    report=$(abidiff "$ref" "$lib") || rc=$?
    echo "$report"
    # abidiff's exit status is a bit set: 1 error, 2 usage, 4 some change, 8 incompatible.
    if ((rc & 3)); then
        echo "FAIL: abidiff could not compare (exit $rc)"
        return 1
    fi
    if ((rc & 8)); then
        bad=1
    fi
    # "N Removed, M Changed" in any summary line is a change to what $soname offers.
    while read -r line; do
        if [[ $line =~ ([0-9]+)\ Removed ]] && ((BASH_REMATCH[1] > 0)); then
            bad=1
        fi
        if [[ $line =~ ([0-9]+)\ Changed ]] && ((BASH_REMATCH[1] > 0)); then
            bad=1
        fi
    done < <(grep -i 'changes summary' <<<"$report")
    if ((bad)); then
        echo "FAIL: the ABI of $soname changed incompatibly (above). Either undo the change, or"
        echo "      bump the SONAME (WEFT_SOVERSION in lib/CMakeLists.txt) and regenerate the"
        echo "      reference with tests/abi/update.sh (docs/packaging.md, \"ABI\")."
        return 1
    fi
    if ((rc & 4)); then
        echo "ok: $soname keeps the reference's ABI, with additions (listed above)"
    else
        echo "ok: $soname has exactly the reference's ABI"
    fi
}

if [[ $mode != --self-test ]]; then
    check "$ref"
    exit $?
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-abi.XXXXXX")
trap 'rm -rf "$work"' EXIT
# A function the library does not have: "removed".
sed "0,/<elf-function-symbols>/s//<elf-function-symbols>\n    <elf-symbol name='weft_removed_by_self_test' type='func-type' binding='global-binding' visibility='default-visibility' is-defined='yes'\/>/" \
    "$ref" >"$work/removed.abi"
# weft_config one pointer smaller than it is: the library's "grew".
size=$(sed -n "s/.*<class-decl name='weft_config' size-in-bits='\([0-9]*\)'.*/\1/p" "$ref" | head -n 1)
[[ -n $size ]] || {
    echo "FAIL: no weft_config in $ref"
    exit 1
}
sed "s/\(<class-decl name='weft_config' size-in-bits='\)$size'/\1$((size - 64))'/" "$ref" >"$work/grown.abi"
declare -A what=([removed]="lacks a function of the reference"
    [grown]="has a larger weft_config than the reference")
for doctored in removed grown; do
    if check "$work/$doctored.abi" >"$work/$doctored.log" 2>&1; then
        cat "$work/$doctored.log"
        echo "FAIL: the check accepted a library that ${what[$doctored]}"
        exit 1
    fi
    echo "ok: the check refuses a library that ${what[$doctored]}"
done
