#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: update.sh BUILD_DIR
#
# Regenerates tests/abi/libweft.abi, the reference ABI of the library's current SONAME, from
# BUILD_DIR/lib/libweft.so (which needs debug information: configure with RelWithDebInfo or
# Debug). Run it only deliberately (docs/packaging.md, "ABI"): after bumping the SONAME for an
# incompatible change, or at a release to record the functions it adds. Commit the result with
# a message that says why.
set -euo pipefail

build=${1:?usage: update.sh BUILD_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$(dirname "$here")")
lib=$(readlink -f "$build/lib/libweft.so")
command -v abidw >/dev/null 2>&1 || {
    echo "abidw not found (Debian: apt-get install abigail-tools)" >&2
    exit 1
}
[[ $(readelf -S "$lib") == *.debug_info* ]] || {
    echo "$lib has no debug information: configure $build with -DCMAKE_BUILD_TYPE=RelWithDebInfo" >&2
    exit 1
}
# Only what the exported functions reach, and no paths, line numbers or DT_NEEDED, so that the
# file changes only when the ABI does. Types that are not in the public headers are written as
# declarations only: changes to them (the inside of weft_pool, say) are not ABI changes. The
# source directory is cut from the names of the translation units.
abidw --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed --type-id-style hash \
    --headers-dir "$root/include" --drop-private-types --exported-interfaces-only \
    --out-file "$here/libweft.abi.tmp" "$lib"
sed "s|path='$root/|path='|" "$here/libweft.abi.tmp" >"$here/libweft.abi"
rm -f "$here/libweft.abi.tmp"
echo "wrote $here/libweft.abi ($(sed -n "s/^<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$here/libweft.abi"))"
