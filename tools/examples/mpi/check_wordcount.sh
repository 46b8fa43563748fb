#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: check_wordcount.sh NP WEFT_WORDCOUNT MPIEXEC
#
# The tests wordcount_np1, _np2 and _np4 (tools/examples/mpi/CMakeLists.txt): weft-wordcount
# under "MPIEXEC --oversubscribe -np NP" on files this script generates with a known answer:
#   - a seeded generator writes 40 files (empty ones, one of white space only, a few of
#     ~200 KB, words longer than a chunk, every kind of white space, no final newline) and the
#     count of every word it wrote;
#   - with 4 KiB chunks (words cross chunk boundaries) and --check, the dump of every word's
#     count must equal the generator's, the totals its totals and wc -w's, and --check (a serial
#     recount on rank 0) must pass;
#   - with the default 1 MiB chunks and one worker per rank, the same totals;
#   - with a missing file among the inputs, every rank must exit non-zero, naming the file.
# Every run is under timeout(1), so that a hang fails. Exits 77 (skipped) without mpiexec or
# python3.
set -euo pipefail

if (($# != 3)); then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//' >&2
    exit 2
fi
np=$1
program=$2
mpiexec=$3

if [[ -z $mpiexec || ! -x $mpiexec ]]; then
    echo "skipped: no mpiexec ('$mpiexec')"
    exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "skipped: python3 is needed to generate the input"
    exit 77
fi
if ((EUID == 0)); then
    # Open MPI refuses to run as root without both.
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# One machine: shared memory between ranks (Open MPI's TCP transport also takes locks in an
# order ThreadSanitizer reports, inside Open MPI).
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
# In sanitizer builds: Open MPI's allocations kept until exit are not the example's leaks.
export OMPI_MCA_mca_base_component_disable_dlclose=1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$here/lsan-openmpi.supp:print_suppressions=0

limit=${WEFT_MPI_TIMEOUT:-120}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# The generator: files in $dir/in, the expected dump in $dir/expected (every word as
# "COUNT WORD", in byte order), and "WORDS DISTINCT" on stdout.
read -r want_words want_distinct < <(python3 - "$dir" <<'EOF'
import os
import random
import sys

root = sys.argv[1]
rng = random.Random(20240611)
os.mkdir(os.path.join(root, "in"))
vocab = [f"w{i}" for i in range(400)]
vocab += ["Word", "word", "WORD", "it's", "--", "a", "na\u00efve", "caf\u00e9", "x" * 5000, "y" * 9000]
weights = [1.0 / (i + 1) for i in range(len(vocab))]
spaces = [" ", " ", " ", "\n", "\t", "  ", "\r\n", " \f ", "\v", "\n\n"]
counts = {}
for f in range(40):
    if f in (3, 17):
        data = b""
    elif f == 5:
        data = b" \n\t\r\v\f  \n"
    else:
        n = 30000 if f % 13 == 0 else rng.randint(1, 2500)
        parts = [rng.choice(spaces)] if f % 4 == 0 else []
        for w in rng.choices(vocab, weights, k=n):
            wb = w.encode()
            counts[wb] = counts.get(wb, 0) + 1
            parts.append(wb.decode())
            parts.append(rng.choice(spaces))
        if f % 3 == 0:
            parts.pop()  # no white space at the end
        data = "".join(parts).encode()
    with open(os.path.join(root, "in", f"part-{f:03d}.txt"), "wb") as out:
        out.write(data)
with open(os.path.join(root, "expected"), "wb") as out:
    for w in sorted(counts):
        out.write(b"%d " % counts[w] + w + b"\n")
print(sum(counts.values()), len(counts))
EOF
)
files=("$dir"/in/*.txt)
# File by file: cat would join the last word of a file without a final newline to the next.
wc_words=0
for f in "${files[@]}"; do
    wc_words=$((wc_words + $(LC_ALL=C wc -w <"$f")))
done
echo "generated ${#files[@]} files: $want_words words ($wc_words by wc -w), $want_distinct distinct"
if ((wc_words != want_words)); then
    echo "FAIL: the generator wrote $want_words words, wc -w counts $wc_words" >&2
    exit 1
fi

run() {
    timeout "$limit" "$mpiexec" --oversubscribe -np "$np" "$program" "$@"
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

expect_line() {
    local out=$1 threads=$2
    local line
    line=$(grep -E '^words=' <<<"$out" || true)
    [[ -n $line ]] || fail "no result line in: $out"
    [[ $line =~ ^words=$want_words\ distinct=$want_distinct\ files=${#files[@]}\ bytes=[0-9]+\ time_ns=[0-9]+\ ranks=$np\ threads=$threads$ ]] ||
        fail "result line '$line', expected words=$want_words distinct=$want_distinct files=${#files[@]} ranks=$np threads=$threads"
}

# 1. Small chunks, the dump and the serial check.
out=$(run --threads 2 --chunk 4096 --top 3 --check --dump "$dir/dump" "${files[@]}") ||
    fail "weft-wordcount exited $?: $out"
echo "$out"
expect_line "$out" 2
grep -qx 'check=ok' <<<"$out" || fail "no check=ok"
cmp "$dir/dump" "$dir/expected" || fail "the dump differs from the generator's counts"

# 2. Default chunks, one worker per rank: the same totals.
out=$(run --threads 1 "${files[@]}") || fail "weft-wordcount exited $?: $out"
echo "$out"
expect_line "$out" 1

# 3. A missing file: non-zero on every rank, the file named, no hang.
set +e
out=$(run --threads 1 "${files[@]}" "$dir/in/missing.txt" 2>&1)
rc=$?
set -e
echo "with a missing file: exit $rc"
if ((rc == 0 || rc == 124)); then
    fail "a missing input gave exit status $rc: $out"
fi
grep -q 'missing.txt' <<<"$out" || fail "the missing file is not named: $out"
echo "ok"
