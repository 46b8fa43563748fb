#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: check_man.sh PAGE TOOL BUILD_DIR INSTALLED
#
# A manual page and its tool: PAGE formats without a single warning (groff -man -ww, and man -l
# when man is installed); every option that `TOOL --help` lists appears in the formatted page as
# a word of its own; and `cmake --install BUILD_DIR --component tools` puts PAGE, unchanged, at
# INSTALLED under the prefix (e.g. share/man/man1/weft-info.1). Registered from
# tools/CMakeLists.txt as tools_man_info and tools_man_scale. Exits 77 (skipped) without groff
# (Debian: groff-base).
set -euo pipefail

if (($# != 4)); then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//' >&2
    exit 2
fi
page=$1
tool=$2
build=$3
installed=$4
if ! command -v groff >/dev/null 2>&1; then
    echo "SKIP: groff is needed to format $page"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# No warnings of any kind, in UTF-8 as a terminal shows it.
groff -man -Tutf8 -ww -z "$page" 2>"$tmp/warn" || fail "groff failed on $page"
if [[ -s $tmp/warn ]]; then
    fail "groff warns about $page:"
    sed 's/^/  /' "$tmp/warn"
fi
if command -v man >/dev/null 2>&1; then
    MANWIDTH=80 man --warnings -l "$page" >/dev/null 2>"$tmp/warn" || fail "man -l failed on $page"
    if [[ -s $tmp/warn ]]; then
        fail "man -l warns about $page:"
        sed 's/^/  /' "$tmp/warn"
    fi
fi

# The options of --help, each a word of the formatted page (ASCII, no overstriking).
groff -man -Tascii -P-cbou "$page" >"$tmp/text" 2>/dev/null
"$tool" --help >"$tmp/help"
mapfile -t options < <(grep -oE -- '(^|[][ ,|(])--?[A-Za-z][A-Za-z0-9-]*' "$tmp/help" |
    sed -E 's/^[][ ,|(]//' | sort -u)
((${#options[@]} >= 3)) || fail "only ${#options[@]} options found in $tool --help"
for opt in "${options[@]}"; do
    if ! grep -qE -- "(^|[^A-Za-z0-9-])${opt}([^A-Za-z0-9-]|$)" "$tmp/text"; then
        fail "$opt (from $(basename "$tool") --help) is not in $(basename "$page")"
    fi
done

# Installed where man finds it.
cmake --install "$build" --prefix "$tmp/prefix" --component tools >"$tmp/install" 2>&1 ||
    fail "cmake --install --component tools: $(cat "$tmp/install")"
if [[ ! -f $tmp/prefix/$installed ]]; then
    fail "not installed as $installed"
elif ! cmp -s "$page" "$tmp/prefix/$installed"; then
    fail "$installed differs from $page"
fi

if ((failures > 0)); then
    echo "$(basename "$page"): $failures failure(s)"
    exit 1
fi
echo "$(basename "$page"): ok (${#options[@]} options: ${options[*]})"
