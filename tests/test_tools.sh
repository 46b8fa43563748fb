#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: test_tools.sh info WEFT_INFO
#        test_tools.sh scale WEFT_SCALE WEFT_WORK
#        test_tools.sh scale_fail WEFT_SCALE
#        test_tools.sh scale_rows WEFT_SCALE
#        test_tools.sh scale_workspan WEFT_SCALE
#        test_tools.sh scale_mpi WEFT_SCALE
#        test_tools.sh profile RUN_ALL WEFT_SCALE WEFT_WORK WEFT_INFO
#
# Tests of the tools (tools/weft-info, tools/weft-scale) and of the benchmark driver
# (bench/run_all.sh), registered from tools/CMakeLists.txt as tools_info, tools_scale,
# tools_scale_fail, tools_scale_rows, tools_scale_workspan, tools_scale_mpi and tools_profile:
#   info        weft-info runs; --json is valid JSON with the expected keys, and follows
#               $WEFT_THREADS and -t
#   scale       weft-scale on weft-work and on commands whose output is known: the CSV header
#               and rows, the JSON, the SVG (well-formed XML with the data and ideal lines),
#               speedup exactly 1 and no Karp-Flatt value at one thread nor past the cores,
#               WEFT_THREADS reaching the child, --metric and --match, no warning for a
#               program that follows WEFT_THREADS, --progress
#   scale_fail  a command failing at every or at one thread count, one that cannot be run, a
#               timeout, a signal, a missing metric: weft-scale exits 1 and names the counts;
#               usage errors exit 2
#   scale_rows  --match by whole key=value words (not impl=weft1, and two rows passing is an
#               error), the serial baseline (--baseline, or derived from --match) and the
#               speedup against it, warnings for programs that fix their own thread count
#   scale_workspan  --workspan with a stand-in that writes WEFT_WORKSPAN's JSON: the bounds,
#               the burdened estimate and its ratio to the measured speedups, the log plot
#   scale_mpi   --mpi with a stand-in mpirun in front of PATH (ranks x threads, speedup against
#               1 x 1, a line per rank count), then one real mpirun run when Open MPI is there
#   profile     bench/run_all.sh over a build tree of stand-ins, as it is (-N): the scaling
#               profile (-s: outputs, trace, failure report) and the comparison table
# Needs python3 (JSON and XML checks); exits 77, which CTest reports as skipped, without it.
set -euo pipefail

if (($# < 2)); then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//' >&2
    exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is needed for the JSON and XML checks"
    exit 77
fi

mode=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-tools.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect_status WANT CMD...: runs CMD with its output in $tmp/out and $tmp/err.
expect_status() {
    local want=$1 rc=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if ((rc != want)); then
        fail "exit status $rc, expected $want: $*"
        sed 's/^/  stdout: /' "$tmp/out"
        sed 's/^/  stderr: /' "$tmp/err"
        return 1
    fi
    return 0
}

# py CHECK-NAME SCRIPT ARGS...: a python3 check; its assertion message becomes the failure.
py() {
    local name=$1 script=$2
    shift 2
    if ! python3 -c "$script" "$@" 2>"$tmp/py"; then
        fail "$name: $(tail -n 3 "$tmp/py" | tr '\n' ' ')"
    fi
}

test_info() {
    local info=$1
    if expect_status 0 "$info"; then
        grep -q '^weft [0-9]' "$tmp/out" || fail "weft-info: no version line"
        grep -q '^Default thread count: [0-9]' "$tmp/out" || fail "weft-info: no default thread count"
        grep -q 'COMPACT' "$tmp/out" || fail "weft-info: no placement table"
    fi

    if expect_status 0 "$info" --json; then
        python3 -m json.tool "$tmp/out" >/dev/null || fail "weft-info --json: not valid JSON"
        py "weft-info --json keys" '
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("weft_version", "hwloc_api_version", "topology", "machine", "affinity", "threads",
          "bind_plan", "env"):
    assert k in d, "no key " + k
m, t, b = d["machine"], d["threads"], d["bind_plan"]
for k in ("default_threads", "cores", "pus", "affinity_cpus", "cgroup_cpus", "hwloc"):
    assert k in m, "no machine." + k
assert m["default_threads"] >= 1
assert t["default"] == m["default_threads"], "threads.default differs from machine"
assert t["source"] in ("cores", "cgroup", "affinity"), t["source"]
assert t["reason"], "empty reason"
assert t["env"] is None and t["effective"] == t["default"], t
assert b["threads"] == t["default"]
assert len(b["compact"]) == len(b["spread"]) == b["threads"]
cpus = d["affinity"]["cpus"]
assert len(cpus) == m["affinity_cpus"], (cpus, m["affinity_cpus"])
assert all(c in cpus for c in b["compact"] + b["spread"]), "a worker placed outside the mask"
if m["hwloc"]:
    pus = [p for pkg in d["topology"]["packages"] for c in pkg["cores"] for p in c["pus"]]
    assert sum(p["allowed"] for p in pus) == m["pus"], "allowed PUs differ from machine.pus"
assert set(d["env"]) >= {"WEFT_THREADS", "WEFT_BIND", "WEFT_TRACE", "WEFT_DISPLAY_ENV"}
' "$tmp/out"
    fi

    if expect_status 0 env WEFT_THREADS=3 "$info" --json; then
        py "weft-info with WEFT_THREADS=3" '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["threads"]["env"] == "3" and d["threads"]["effective"] == 3, d["threads"]
assert d["bind_plan"]["threads"] == 3 and len(d["bind_plan"]["compact"]) == 3
assert d["env"]["WEFT_THREADS"] == "3"
' "$tmp/out"
    fi
    if expect_status 0 env WEFT_THREADS=many "$info" --json; then
        py "weft-info with WEFT_THREADS=many" '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["threads"]["effective"] is None, d["threads"]
' "$tmp/out"
    fi
    if expect_status 0 "$info" --json -t 5; then
        py "weft-info -t 5" '
import json, sys
b = json.load(open(sys.argv[1]))["bind_plan"]
assert b["threads"] == 5 and len(b["compact"]) == 5 and len(b["spread"]) == 5, b
' "$tmp/out"
    fi
    expect_status 2 "$info" -t 0 || true
    expect_status 2 "$info" extra || true
}

# check_outputs PREFIX COUNTS...: the CSV, JSON and SVG of a successful run over COUNTS.
check_outputs() {
    local prefix=$1
    shift
    local counts=("$@") header
    for ext in csv json svg log; do
        [[ -s $prefix.$ext ]] || fail "no $prefix.$ext"
    done
    [[ -s $prefix.csv ]] || return 0
    header=$(head -n 1 "$prefix.csv")
    [[ $header == threads,runs,median_ns,min_ns,max_ns,speedup,efficiency,karp_flatt,abs_speedup,ranks,oversubscribed,estimate ]] ||
        fail "CSV header is '$header'"
    py "CSV, JSON and SVG of $prefix" '
import csv, json, sys
import xml.etree.ElementTree as ET
prefix, counts = sys.argv[1], [int(c) for c in sys.argv[2:]]
rows = list(csv.DictReader(open(prefix + ".csv")))
d = json.load(open(prefix + ".json"))
cores = d["cores"]
assert [int(r["threads"]) for r in rows] == counts, [r["threads"] for r in rows]
one = rows[0]
assert float(one["speedup"]) == 1.0, "speedup at p=1 is " + one["speedup"]
assert float(one["efficiency"]) == 1.0
assert one["karp_flatt"] == "", "Karp-Flatt at p=1 is " + repr(one["karp_flatt"])
def close(a, b):  # the CSV rounds to 6 decimals; the Karp-Flatt value amplifies that
    return abs(a - b) <= 1e-3 * max(1.0, abs(b))
for r in rows:
    assert float(r["min_ns"]) <= float(r["median_ns"]) <= float(r["max_ns"]), r
    p, s = int(r["threads"]), float(r["speedup"])
    assert r["ranks"] == "1", r
    assert close(float(r["efficiency"]), s / p), r
    assert r["oversubscribed"] == ("1" if p > cores else "0"), (r, cores)
    if p > cores:
        assert r["karp_flatt"] == "", "Karp-Flatt past the cores: " + repr(r)
    elif p > 1:
        e = (1 / s - 1 / p) / (1 - 1 / p)
        assert close(float(r["karp_flatt"]), e), r

for k in ("command", "metric", "runs_per_count", "cores", "results", "weft_version",
          "warnings", "serial_ns", "baseline", "workspan", "mpi"):
    assert k in d, "no key " + k
res = d["results"]
assert [x["threads"] for x in res] == counts
assert all(len(x["samples_ns"]) == x["runs"] == d["runs_per_count"] for x in res)
assert res[0]["speedup"] == 1.0 and res[0]["karp_flatt"] is None
assert all((x["karp_flatt"] is None) == (x["threads"] == 1 or x["threads"] > cores) for x in res)

ns = "{http://www.w3.org/2000/svg}"
svg = ET.parse(prefix + ".svg").getroot()
assert svg.tag == ns + "svg", svg.tag
lines = {p.get("id"): p for p in svg.iter(ns + "polyline")}
assert "speedup" in lines and "ideal" in lines, sorted(k for k in lines if k)
assert len(lines["speedup"].get("points").split()) == len(counts)
assert len(list(svg.iter(ns + "circle"))) >= len(counts)
texts = " ".join(t.text or "" for t in svg.iter(ns + "text"))
assert "threads" in texts and "speedup" in texts, "axis labels missing"
over = d["cores"] < max(counts)
ids = {e.get("id") for e in svg.iter()}
assert ("cores" in ids) == over and ("oversubscribed" in ids) == over, (over, ids)
assert ("abs-speedup" in lines) == (d["serial_ns"] is not None), sorted(k for k in lines if k)
' "$prefix" "${counts[@]}"
}

test_scale() {
    local scale=$1 work=$2 cores n expect=()

    # A real weft program, by wall time.
    if expect_status 0 "$scale" -q -T 1,2 -r 2 -o "$tmp/w" -- "$work" -n 20000 -k 16; then
        check_outputs "$tmp/w" 1 2
        grep -q '^==> WEFT_THREADS=2, run 2 of 2' "$tmp/w.log" || fail "no run header in the log"
        grep -q '^work=reduce .* threads=2 ' "$tmp/w.log" ||
            fail "weft-work did not see WEFT_THREADS=2"
        grep -q 'speedup' "$tmp/out" || fail "no table on stdout"
        grep -q "WEFT_THREADS = '2' (from \\\$WEFT_THREADS)" "$tmp/w.log" ||
            fail "the child did not run with WEFT_DISPLAY_ENV"
        py "no warnings for weft-work" '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["warnings"] == [], d["warnings"]
assert all(x["pools_seen_runs"] == x["runs"] for x in d["results"]), d["results"]
' "$tmp/w.json"
        if grep -q warning "$tmp/out" "$tmp/err"; then
            fail "a warning for weft-work"
        fi
    fi

    # The same program timed by its own metric, on the matching lines only.
    if expect_status 0 "$scale" -q -T 2,1 -r 2 -m work_ns -M '^work=' -o "$tmp/m" -- \
        "$work" -n 20000 -k 16; then
        check_outputs "$tmp/m" 1 2
        py "metric JSON" '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["metric"] == "work_ns" and d["match"] == "^work=", d
assert d["metric_line"].startswith("work=reduce "), d["metric_line"]
' "$tmp/m.json"
    fi

    # A metric the test knows: t_ns = 1000 / p, so the speedup is p and Karp-Flatt is 0.
    # shellcheck disable=SC2016 # expanded by the child's shell
    if expect_status 0 "$scale" -q -T 1,2,4 -r 3 -m t_ns -o "$tmp/k" -- \
        sh -c 'echo "noise t_ns=1"; echo "result t_ns=$((1000 / WEFT_THREADS))"'; then
        check_outputs "$tmp/k" 1 2 4
        py "exact speedups" '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    p = int(r["threads"])
    assert float(r["median_ns"]) == 1000 // p, r
    assert abs(float(r["speedup"]) - p) < 1e-6 and abs(float(r["efficiency"]) - 1) < 1e-6, r
    assert p == 1 or r["oversubscribed"] == "1" or abs(float(r["karp_flatt"])) < 1e-6, r
' "$tmp/k.csv"
    fi

    # Pure mechanics: /bin/true, default thread counts 1..2x the default, past the cores.
    cores=$(sed -n 's/.*"cores": \([0-9]*\).*/\1/p' "$tmp/k.json")
    if expect_status 0 "$scale" -q -r 1 -o "$tmp/t" -- true; then
        for ((n = 1; n <= 2 * ${cores:-1}; n++)); do
            expect+=("$n")
        done
        check_outputs "$tmp/t" "${expect[@]}"
    fi
    # -n and a list without 1, which weft-scale adds.
    if expect_status 0 "$scale" -q -n 3 -r 1 -o "$tmp/n" -- true; then
        check_outputs "$tmp/n" 1 2 3
    fi
    if expect_status 0 "$scale" -T 3 -r 1 -o "$tmp/a" -- true; then
        check_outputs "$tmp/a" 1 3
        grep -q '1 added to the -T list' "$tmp/err" || fail "no notice that 1 was added"
    fi
    # A title with characters XML and JSON must escape.
    if expect_status 0 "$scale" -q -T 1 -r 1 -t 'a <b> & "c" é \ x' -o "$tmp/e" -- true; then
        check_outputs "$tmp/e" 1
    fi

    # Progress: none when stderr is not a terminal, unless asked; then a line per run, with
    # the time left once a run has been timed.
    if expect_status 0 "$scale" -q -T 1,2 -r 2 -o "$tmp/g" -- true; then
        if grep -q 'runs (' "$tmp/err"; then
            fail "progress lines without a terminal"
        fi
    fi
    if expect_status 0 "$scale" -q --progress -T 1,2 -r 2 -o "$tmp/g" -- true; then
        [[ $(grep -c '^weft-scale: [0-4]/4 runs (' "$tmp/err") == 4 ]] ||
            fail "--progress: not one line per run: $(cat "$tmp/err")"
        grep -q '^weft-scale: 3/4 runs (2 threads, run 2/2), .* about .* left' "$tmp/err" ||
            fail "--progress: no time left"
        grep -q '^weft-scale: 4 runs in ' "$tmp/err" || fail "--progress: no closing line"
    fi
    if expect_status 0 "$scale" -q --progress --no-progress -T 1 -r 1 -o "$tmp/g" -- true; then
        [[ ! -s $tmp/err ]] || fail "--no-progress: $(cat "$tmp/err")"
    fi
}

# write_rows FILE: a stand-in benchmark: serial 1000 ns; the weft row 2000/p ns, so speedup p
# against 1 thread and p/2 against serial; rows that a loose filter would also take
# (variant=join, impl=weft1).
write_rows() {
    cat >"$1" <<'PROG'
#!/bin/sh
p=${WEFT_THREADS:-1}
echo "bench=x case=a impl=serial variant=default threads=1 median_ns=1000"
echo "bench=x case=a impl=weft variant=default threads=$p median_ns=$((2000 / p))"
echo "bench=x case=a impl=weft variant=join threads=$p median_ns=99999"
echo "bench=x case=a impl=weft1 variant=default threads=1 median_ns=5"
PROG
    chmod +x "$1"
}

test_scale_rows() {
    local scale=$1 prog=$tmp/rows cores
    write_rows "$prog"

    # impl=weft passes two rows: an error that names both, not the time of the last one.
    if expect_status 1 "$scale" -q -T 1,2 -r 1 -m median_ns -M 'impl=weft' -o "$tmp/a" -- "$prog"; then
        grep -q 'two different rows' "$tmp/err" || fail "ambiguous rows not reported"
        grep -q 'variant=join' "$tmp/err" || fail "the other row is not named"
    fi
    # Whole words: variant=def matches nothing.
    if expect_status 1 "$scale" -q -T 1 -r 1 -m median_ns -M 'impl=weft variant=def' -o "$tmp/b" \
        -- "$prog"; then
        grep -q 'no median_ns=' "$tmp/err" || fail "a partial word matched"
    fi
    # The right row, and the serial baseline derived from --match.
    if expect_status 0 "$scale" -q -T 1,2 -r 2 -m median_ns -M ' impl=weft variant=default ' \
        -o "$tmp/c" -- "$prog"; then
        check_outputs "$tmp/c" 1 2
        grep -q 'vs serial' "$tmp/out" || fail "no speedup against serial in the table"
        py "rows and baseline" '
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1] + ".csv")))
for r in rows:
    p = int(r["threads"])
    assert float(r["median_ns"]) == 2000 // p, r
    assert abs(float(r["speedup"]) - p) < 1e-6, r
    assert abs(float(r["abs_speedup"]) - p / 2) < 1e-6, r
d = json.load(open(sys.argv[1] + ".json"))
assert d["baseline"] == "impl=serial variant=default", d["baseline"]
assert d["serial_ns"] == 1000, d["serial_ns"]
assert all(x["serial_ns"] == [1000, 1000] for x in d["results"]), d["results"]
assert all(x["reported_threads"] == x["threads"] for x in d["results"])
assert d["warnings"] == [], d["warnings"]
' "$tmp/c"
    fi
    # -B none: no baseline; an explicit one that matches nothing fails the runs.
    if expect_status 0 "$scale" -q -T 1,2 -r 1 -m median_ns -M 'impl=weft variant=default' \
        -B none -o "$tmp/d" -- "$prog"; then
        check_outputs "$tmp/d" 1 2
        py "no baseline" '
import csv, sys
assert all(r["abs_speedup"] == "" for r in csv.DictReader(open(sys.argv[1])))
' "$tmp/d.csv"
    fi
    if expect_status 1 "$scale" -q -T 1 -r 1 -m median_ns -M 'impl=weft variant=default' \
        -B 'impl=nothing' -o "$tmp/e" -- "$prog"; then
        grep -q 'no line passes --baseline' "$tmp/err" || fail "missing baseline not reported"
    fi
    # A regular expression still works as one.
    if expect_status 0 "$scale" -q -T 1,2 -r 1 -m median_ns -M '^bench=x .*impl=weft variant=d' \
        -o "$tmp/f" -- "$prog"; then
        check_outputs "$tmp/f" 1 2
    fi
    expect_status 2 "$scale" -q -B x -- true || true
    expect_status 2 "$scale" -q -m t -M '   ' -- true || true

    # A program whose pools take their size from weft_config.threads, whatever WEFT_THREADS
    # says (as WEFT_DISPLAY_ENV prints it).
    cat >"$tmp/fixed" <<'PROG'
#!/bin/sh
echo "WEFT DISPLAY ENVIRONMENT BEGIN" >&2
echo "  WEFT_THREADS = '4' (from weft_config.threads)" >&2
echo "WEFT DISPLAY ENVIRONMENT END" >&2
echo "t_ns=1000"
PROG
    chmod +x "$tmp/fixed"
    if expect_status 0 "$scale" -q -T 1,2,3 -r 1 -m t_ns -o "$tmp/g" -- "$tmp/fixed"; then
        grep -q 'warning: at WEFT_THREADS=2,3 no pool .* had that many workers (the largest had 4, set by weft_config.threads)' \
            "$tmp/err" || fail "a fixed thread count not reported: $(cat "$tmp/err")"
        grep -q '^warning: ' "$tmp/out" || fail "the warning is not under the table"
        py "warning in the JSON" '
import json, sys
w = json.load(open(sys.argv[1]))["warnings"]
assert len(w) == 1 and "sets its own thread count" in w[0], w
' "$tmp/g.json"
    fi
    # One that reports its own thread count on the line timed.
    if expect_status 0 "$scale" -q -T 1,2 -r 1 -m t_ns -o "$tmp/h" -- echo "threads=1 t_ns=10"; then
        grep -q 'warning: at WEFT_THREADS=2 the line timed reports another thread count (threads=1)' \
            "$tmp/err" || fail "a reported thread count not compared: $(cat "$tmp/err")"
    fi
    # One that says nothing and whose time does not move, within the cores.
    cores=$(sed -n 's/.*"cores": \([0-9]*\).*/\1/p' "$tmp/h.json")
    if ((${cores:-1} >= 2)); then
        if expect_status 0 "$scale" -q -T 1,2 -r 1 -m t_ns -o "$tmp/i" -- echo t_ns=10; then
            grep -q 'warning: the time did not change with WEFT_THREADS' "$tmp/err" ||
                fail "flat times not reported: $(cat "$tmp/err")"
        fi
    fi
}

test_scale_workspan() {
    local scale=$1 prog=$tmp/ws
    # Work 8 ms, span 1 ms (parallelism 8), burdened span 2 ms; time 8/p + 2 ms; the file only
    # when asked for it, with a field more than weft-scale reads.
    cat >"$prog" <<'PROG'
#!/bin/sh
p=${WEFT_THREADS:-1}
echo "ws=${WEFT_WORKSPAN:-none} p=$p"
if [ -n "$WEFT_WORKSPAN" ]; then
    printf '{"work_ns": 8000000, "span_ns": 1000000, "parallelism": 8.0, "burdened_span_ns": 2000000, "steals": 3}\n' >"$WEFT_WORKSPAN"
fi
echo "t_ns=$((8000000 / p + 2000000))"
PROG
    chmod +x "$prog"
    if expect_status 0 "$scale" -q -T 1,2,3 -r 1 -m t_ns --workspan=3 -o "$tmp/w" -- "$prog"; then
        check_outputs "$tmp/w" 1 2 3
        [[ $(grep -c '^ws=/' "$tmp/w.log") == 1 ]] || fail "not one run with WEFT_WORKSPAN"
        grep -q '^ws=/.* p=3$' "$tmp/w.log" || fail "the work-span run was not at 3 threads"
        grep -q 'parallelism 8.0' "$tmp/out" || fail "no work-span line in the table"
        grep -q 'measured/burdened' "$tmp/out" || fail "no ratio column"
        py "work-span bounds" '
import csv, json, sys
import xml.etree.ElementTree as ET
prefix = sys.argv[1]
d = json.load(open(prefix + ".json"))
w = d["workspan"]
assert w["threads"] == 3 and w["work_ns"] == 8e6 and w["span_ns"] == 1e6, w
assert w["parallelism"] == 8 and w["burdened_span_ns"] == 2e6, w
ps = [b["p"] for b in w["bounds"]]
assert ps == [1, 2, 3, 4, 8, 16, 32, 64, 128, 256], ps
sp = {x["threads"]: x["speedup"] for x in d["results"]}
for b in w["bounds"]:
    p = b["p"]
    est = 8e6 / (8e6 / p + 2e6)
    assert abs(b["bound"] - min(p, 8)) < 1e-6, b
    assert abs(b["burdened"] - est) < 1e-5, b
    if p in sp:
        assert abs(b["measured"] - sp[p]) < 1e-5 and abs(b["ratio"] - sp[p] / est) < 1e-5, b
    else:
        assert b["measured"] is None and b["ratio"] is None, b
for r in csv.DictReader(open(prefix + ".csv")):
    p = int(r["threads"])
    assert abs(float(r["estimate"]) - 8e6 / (8e6 / p + 2e6)) < 1e-5, r
ns = "{http://www.w3.org/2000/svg}"
svg = ET.parse(prefix + ".svg").getroot()
lines = {p.get("id"): p for p in svg.iter(ns + "polyline")}
assert "span-bound" in lines and "burdened" in lines, sorted(k for k in lines if k)
xs = [float(pt.split(",")[0]) for pt in lines["span-bound"].get("points").split()]
assert len(xs) == 10, xs
# A log axis: powers of two (1, 2, 4, ..., 256; 3 left out) equally spaced.
pw = [xs[i] for i in (0, 1, 3, 4, 5, 6, 7, 8, 9)]
gaps = [b - a for a, b in zip(pw, pw[1:])]
assert max(gaps) - min(gaps) < 0.2, gaps
' "$tmp/w"
    fi
    # The default thread count of the extra run: the most measured within the cores.
    if expect_status 0 "$scale" -q -T 1 -r 1 -m t_ns --workspan -o "$tmp/x" -- "$prog"; then
        grep -q '^ws=/.* p=1$' "$tmp/x.log" || fail "the work-span run was not at 1 thread"
    fi
    # A program whose weft writes no work-span file: exit 1, but the rest is written.
    if expect_status 1 "$scale" -q -T 1,2 -r 1 -m t_ns --workspan -o "$tmp/y" -- echo t_ns=5; then
        grep -q 'wrote nothing to WEFT_WORKSPAN' "$tmp/err" || fail "no work-span file not reported"
        check_outputs "$tmp/y" 1 2
    fi
    expect_status 2 "$scale" -q --workspan=0 -- true || true
}

test_scale_mpi() {
    local scale=$1 bin=$tmp/bin
    mkdir -p "$bin"
    # A stand-in mpirun: the options weft-scale gives, OMPI_COMM_WORLD_SIZE for the program,
    # and Open MPI's refusal to run as root without both variables.
    cat >"$bin/mpirun" <<'PROG'
#!/bin/sh
[ "$1" = --oversubscribe ] && [ "$2" = -np ] || { echo "mpirun: bad options: $*" >&2; exit 2; }
np=$3
shift 3
if [ "$(id -u)" = 0 ] && { [ "$OMPI_ALLOW_RUN_AS_ROOT" != 1 ] || [ "$OMPI_ALLOW_RUN_AS_ROOT_CONFIRM" != 1 ]; }; then
    echo "mpirun: refusing to run as root" >&2
    exit 1
fi
echo "fake mpirun -np $np"
OMPI_COMM_WORLD_SIZE=$np exec "$@"
PROG
    cat >"$tmp/mpiprog" <<'PROG'
#!/bin/sh
r=${OMPI_COMM_WORLD_SIZE:-1}
echo "t_ns=$((12000 / (r * WEFT_THREADS)))"
PROG
    chmod +x "$bin/mpirun" "$tmp/mpiprog"
    if expect_status 0 env PATH="$bin:$PATH" "$scale" --no-progress --mpi 2 -T 1,2 -r 2 -m t_ns \
        -o "$tmp/m" -- "$tmp/mpiprog"; then
        grep -q '1 added to the --mpi list' "$tmp/err" || fail "no notice that 1 rank was added"
        grep -q '^fake mpirun -np 2$' "$tmp/m.log" || fail "not run under mpirun -np 2"
        grep -q '^==> 2 ranks, WEFT_THREADS=2, run 2 of 2' "$tmp/m.log" || fail "no run header"
        grep -q '^ *ranks *threads' "$tmp/out" || fail "no ranks column in the table"
        py "ranks x threads" '
import csv, json, sys
import xml.etree.ElementTree as ET
prefix = sys.argv[1]
rows = list(csv.DictReader(open(prefix + ".csv")))
cells = [(int(r["ranks"]), int(r["threads"])) for r in rows]
assert cells == [(1, 1), (1, 2), (2, 1), (2, 2)], cells
d = json.load(open(prefix + ".json"))
for r in rows:
    n = int(r["ranks"]) * int(r["threads"])
    assert float(r["median_ns"]) == 12000 // n, r
    assert abs(float(r["speedup"]) - n) < 1e-6 and abs(float(r["efficiency"]) - 1) < 1e-6, r
    assert r["oversubscribed"] == ("1" if n > d["cores"] else "0"), r
assert d["mpi"] is True and [x["ranks"] for x in d["results"]] == [1, 1, 2, 2]
ns = "{http://www.w3.org/2000/svg}"
svg = ET.parse(prefix + ".svg").getroot()
lines = {p.get("id"): p for p in svg.iter(ns + "polyline")}
assert "speedup-r1" in lines and "speedup-r2" in lines and "ideal" in lines, sorted(lines)
assert len(lines["speedup-r2"].get("points").split()) == 2
texts = " ".join(t.text or "" for t in svg.iter(ns + "text"))
assert "ranks" in texts, "no ranks on the x axis"
' "$tmp/m"
    fi
    # mpirun that fails: the configurations are named with their ranks.
    printf '#!/bin/sh\nexit 3\n' >"$bin/mpirun"
    if expect_status 1 env PATH="$bin:$PATH" "$scale" -q --mpi 1 -T 1 -r 1 -o "$tmp/f" -- true; then
        grep -q 'failed with 1 rank, WEFT_THREADS=1: exit status 3' "$tmp/err" ||
            fail "an mpirun failure not named: $(cat "$tmp/err")"
    fi
    expect_status 2 "$scale" -q --mpi 0 -- true || true

    # The real Open MPI, when installed: one trivial program at 1 and 2 ranks.
    if command -v mpirun >/dev/null 2>&1 && mpirun --version 2>/dev/null | grep -q 'Open MPI'; then
        if expect_status 0 "$scale" -q --mpi 1,2 -T 1 -r 1 -k 120 -o "$tmp/r" -- true; then
            py "a real mpirun" '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [(r["ranks"], r["threads"]) for r in rows] == [("1", "1"), ("2", "1")], rows
' "$tmp/r.csv"
        fi
    else
        echo "note: no Open MPI mpirun: the real run is skipped"
    fi
}

test_scale_fail() {
    local scale=$1
    # shellcheck disable=SC2016 # expanded by the child's shell
    local fails_at_2='test "$WEFT_THREADS" != 2'

    if expect_status 1 "$scale" -q -T 1,2 -r 2 -o "$tmp/f" -- sh -c 'exit 1'; then
        grep -q 'WEFT_THREADS=1: exit status 1' "$tmp/err" || fail "p=1 failure not named"
        grep -q 'WEFT_THREADS=2: exit status 1' "$tmp/err" || fail "p=2 failure not named"
        [[ ! -e $tmp/f.csv && ! -e $tmp/f.svg ]] || fail "outputs written after a failure"
        [[ -e $tmp/f.log ]] || fail "no log after a failure"
    fi
    if expect_status 1 "$scale" -q -T 1,2,3 -r 2 -o "$tmp/g" -- sh -c "$fails_at_2"; then
        grep -q 'WEFT_THREADS=2: exit status 1' "$tmp/err" || fail "p=2 failure not named"
        if grep -q 'WEFT_THREADS=[13]:' "$tmp/err"; then
            fail "a count that succeeded is reported as failed"
        fi
        grep -q '1 of 3 thread counts failed' "$tmp/err" || fail "no failure count"
    fi
    if expect_status 1 "$scale" -q -T 1 -r 1 -o "$tmp/x" -- "$tmp/no-such-program"; then
        grep -q 'exit status 127' "$tmp/err" || fail "exec failure not reported"
        grep -q 'cannot run' "$tmp/x.log" || fail "exec failure not in the log"
    fi
    if expect_status 1 "$scale" -q -T 1 -r 1 -o "$tmp/s" -- sh -c 'kill -KILL $$'; then
        grep -q 'signal 9' "$tmp/err" || fail "signal not reported"
    fi
    local t0=$SECONDS
    if expect_status 1 "$scale" -q -T 1 -r 1 -k 0.3 -o "$tmp/k" -- sleep 30; then
        grep -q 'timeout' "$tmp/err" || fail "timeout not reported"
        ((SECONDS - t0 < 10)) || fail "the timeout did not stop the run"
    fi
    if expect_status 1 "$scale" -q -T 1 -r 1 -m t_ns -o "$tmp/m" -- echo other=1; then
        grep -q 'no t_ns=' "$tmp/err" || fail "missing metric not reported"
    fi
    expect_status 2 "$scale" -q -T 1 || true
    expect_status 2 "$scale" -q -T 0 -- true || true
    expect_status 2 "$scale" -q -T 1,1 -- true || true
    expect_status 2 "$scale" -q -r 0 -- true || true
    expect_status 2 "$scale" -q -M x -- true || true
    expect_status 2 "$scale" -q -m 'a=b' -- true || true
    expect_status 2 "$scale" -q -m t -M '(' -- true || true
}

test_profile() {
    local run_all=$1 scale=$2 work=$3 info=$4 build=$tmp/build
    mkdir -p "$build/tools" "$build/bench"
    ln -s "$scale" "$build/tools/weft-scale"
    ln -s "$work" "$build/bench/weft-work"
    ln -s "$info" "$build/tools/weft-info"
    # A stand-in benchmark whose weft row takes 1 ms / p (p = $WEFT_THREADS, else 1), and one
    # that always fails.
    cat >"$build/bench/bench_fake" <<'EOF'
#!/bin/sh
p=${WEFT_THREADS:-1}
echo "# a stand-in"
echo "bench=fake case=a impl=serial variant=default threads=1 median_ns=1000000"
echo "bench=fake case=a impl=weft variant=default threads=$p median_ns=$((1000000 / p))"
EOF
    printf '#!/bin/sh\necho "bench_broken: wrong result" >&2\nexit 1\n' >"$build/bench/bench_broken"
    chmod +x "$build/bench/bench_fake" "$build/bench/bench_broken"

    export WEFT_PROFILE_REPS=1 WEFT_PROFILE_THREADS=1,2 WEFT_PROFILE_WORK='-n 20000 -k 8'
    if expect_status 1 bash "$run_all" -s -N -b "$build" -o "$tmp/p"; then
        grep -q 'failed: bench_broken' "$tmp/out" || fail "profile: the failure is not reported"
    fi
    if expect_status 0 bash "$run_all" -s -N -b "$build" -o "$tmp/q" bench_fake weft-work; then
        for f in summary.txt info.txt info.json bench_fake.csv bench_fake.json bench_fake.svg \
            weft-work.csv weft-work.svg trace.json stats.json; do
            [[ -s $tmp/q/$f ]] || fail "profile: no $f"
        done
        [[ ! -e $tmp/q/bench_broken.csv ]] || fail "profile ran a benchmark it was not asked to"
        grep -q 'bench_fake' "$tmp/q/summary.txt" || fail "profile: bench_fake not in the summary"
        grep -q "^trace: *$tmp/q/trace.json" "$tmp/out" || fail "profile: trace not announced"
        grep -q "^tables: " "$tmp/out" || fail "profile: tables not announced"
        py "profile outputs" '
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/bench_fake.csv")))
assert [float(r["speedup"]) for r in rows] == [1.0, 2.0], rows
t = json.load(open(d + "/trace.json"))
assert t["traceEvents"], "empty trace"
s = json.load(open(d + "/stats.json"))
assert s["total"]["tasks_run"] + s["total"]["joins"] > 0, s["total"]
' "$tmp/q"
    fi

    # The comparison: every program once, one summary line per case, the failure reported.
    if expect_status 1 bash "$run_all" -N -b "$build" "$tmp/c"; then
        grep -q '^bench_broken  *FAILED' "$tmp/out" || fail "run_all: the failure is not reported"
        grep -q '^bench_fake  *ok' "$tmp/out" || fail "run_all: bench_fake not reported ok"
        grep -q '^fake/a  ' "$tmp/out" || fail "run_all: no summary line for fake/a"
        grep -q '^bench=fake case=a impl=weft ' "$tmp/c" || fail "run_all: no bench= lines"
        grep -q '^==> bench_fake' "$tmp/c.log" || fail "run_all: no full output"
    fi
    expect_status 2 bash "$run_all" -s -N -b "$build" -t 2 || true
    expect_status 2 bash "$run_all" -N -b "$build" -o "$tmp/x" "$tmp/y" || true
}

case $mode in
info) test_info "$@" ;;
scale) test_scale "$@" ;;
scale_fail) test_scale_fail "$@" ;;
scale_rows) test_scale_rows "$@" ;;
scale_workspan) test_scale_workspan "$@" ;;
scale_mpi) test_scale_mpi "$@" ;;
profile) test_profile "$@" ;;
*)
    echo "test_tools.sh: unknown test '$mode'" >&2
    exit 2
    ;;
esac

if ((failures > 0)); then
    echo "$mode: $failures failure(s)"
    exit 1
fi
echo "$mode: ok"
