#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage: check_demos.sh gather|wait|promise PROGRAM [ARGS...]
#
# Runs a weft-demo-* program and checks the facts of the story in its output: who started,
# finished, was cancelled or failed, in which order relative to a cancel, and the results.
# Never timings: the lines' timestamps are dropped before checking, and nothing assumes which of
# two sleeps ends first (for promise: only the order libuv gives timers started together, by
# duration). With ARGS the program runs once with them; without, it runs several times at
# --scale 0.01 with different pool sizes, seeds (and, for wait, timeouts).
# Registered as the CTest tests demo_gather, demo_wait and demo_promise
# (tools/examples/CMakeLists.txt).
set -euo pipefail

if (($# < 2)) || [[ $1 != gather && $1 != wait && $1 != promise ]]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '/SPDX-License-Identifier/d; $d; s/^# \{0,1\}//' >&2
    exit 2
fi
demo=$1
program=$2
shift 2

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# The facts of weft-demo-gather's output. Sections: [run] the plain nested gather, [a] group 2
# cancelled, [b] the outer gather cancelled, [c] return-exceptions with task 2.2 failing.
# shellcheck disable=SC2016 # awk program, not shell
gather_awk='
function bad(msg) { print "FAIL: " msg; nbad++ }
function expected(g,    i, s) {
    s = ""
    for (i = 1; i <= size[g]; i++)
        s = s (i > 1 ? ", " : "") (10 * g + i)
    return s
}
# The results of group g in section sec, split into item[1..size[g]].
function items(sec, g,    n) {
    if (nres[sec, g] != 1) {
        bad("[" sec "] " nres[sec, g] + 0 " result lines for group " g ", expected 1")
        return 0
    }
    n = split(res[sec, g], item, /, /)
    if (n != size[g]) {
        bad("[" sec "] group " g " has " n " results, expected " size[g] ": [" res[sec, g] "]")
        return 0
    }
    return 1
}
# Task t of section sec ran and finished once, with the right value, and nothing else.
function finished_once(sec, t, value) {
    if (started[sec, t] != 1)
        bad("[" sec "] task " t " started " started[sec, t] + 0 " times, expected once")
    if (fin[sec, t] != 1)
        bad("[" sec "] task " t " finished " fin[sec, t] + 0 " times, expected once")
    else if (finval[sec, t] != value)
        bad("[" sec "] task " t " finished -> " finval[sec, t] ", expected " value)
    if (canc[sec, t] + failed[sec, t] != 0)
        bad("[" sec "] task " t " also cancelled or failed")
}
# Task t of section sec (the i-th of group g) either finished before the cancel or was
# cancelled after it, not both, and its result slot says which.
function finished_or_cancelled(sec, t, g, i, have_items) {
    if (started[sec, t] > 1)
        bad("[" sec "] task " t " started " started[sec, t] " times")
    if (failed[sec, t])
        bad("[" sec "] task " t " failed")
    if (fin[sec, t] + canc[sec, t] != 1) {
        bad("[" sec "] task " t " finished " fin[sec, t] + 0 " and cancelled " canc[sec, t] + 0 \
            " times, expected one of them once")
        return
    }
    if (fin[sec, t]) {
        if (finline[sec, t] > cancelline[sec])
            bad("[" sec "] task " t " finished after the cancel")
        if (finval[sec, t] != 10 * g + i)
            bad("[" sec "] task " t " finished -> " finval[sec, t] ", expected " 10 * g + i)
        if (have_items && item[i] != 10 * g + i)
            bad("[" sec "] group " g " slot " i " is " item[i] ", expected " 10 * g + i)
    } else {
        if (cancline[sec, t] < cancelline[sec])
            bad("[" sec "] task " t " cancelled before the cancel")
        if (have_items && item[i] != "cancelled")
            bad("[" sec "] group " g " slot " i " is " item[i] ", expected cancelled")
    }
}
BEGIN {
    size[1] = 5; size[2] = 3; size[3] = 9
    nsecs = split("run a b c", secs, " ")
    for (g = 1; g <= 3; g++)
        for (i = 1; i <= size[g]; i++)
            known[g "." i] = 1
}
{ sub(/^\[ *[0-9]+\.[0-9]+\] /, "") }
/^== \[[a-z]+\] / { sec = substr($2, 2, length($2) - 2); seen[sec]++; next }
/^== end ==$/ { ended = 1; sec = ""; next }
sec == "" { next }
/^task / && !($2 in known) { bad("[" sec "] unknown task: " $0); next }
/^task [0-9.]+ start / { started[sec, $2]++; next }
/^task [0-9.]+ finished -> / { fin[sec, $2]++; finline[sec, $2] = NR; finval[sec, $2] = $5; next }
/^task [0-9.]+ cancelled/ { canc[sec, $2]++; cancline[sec, $2] = NR; next }
/^task [0-9.]+ failed -> / { failed[sec, $2]++; failcode[sec, $2] = $5; next }
/^cancel / { ncancel[sec]++; cancelline[sec] = NR; cancelrc[sec] = $NF; next }
/^outer gather: / { outer[sec] = substr($0, 15); next }
/^outer gather with WEFT_RETURN_EXCEPTIONS: / { outerrx[sec] = substr($0, 43); next }
/^group [0-9]+ results: \[/ {
    g = $2; s = substr($0, index($0, "[") + 1); e = index(s, "]")
    res[sec, g] = substr(s, 1, e - 1); suffix[sec, g] = substr(s, e + 2); nres[sec, g]++
    next
}
END {
    for (k = 1; k <= nsecs; k++)
        if (seen[secs[k]] != 1)
            bad("section [" secs[k] "] seen " seen[secs[k]] + 0 " times, expected once")
    if (!ended)
        bad("no \"== end ==\" line")

    # [run]: every task once, the results in input order.
    for (g = 1; g <= 3; g++) {
        for (i = 1; i <= size[g]; i++)
            finished_once("run", g "." i, 10 * g + i)
        if (res["run", g] != expected(g))
            bad("[run] group " g " results [" res["run", g] "], expected [" expected(g) "]")
    }
    if (outer["run"] != "DONE")
        bad("[run] outer gather: " outer["run"] ", expected DONE")

    # [a]: group 2 cancelled; nothing of it finishes after the cancel; groups 1 and 3 complete.
    if (ncancel["a"] != 1)
        bad("[a] " ncancel["a"] + 0 " cancel lines, expected 1")
    for (g = 1; g <= 3; g += 2) {
        for (i = 1; i <= size[g]; i++)
            finished_once("a", g "." i, 10 * g + i)
        if (res["a", g] != expected(g) || suffix["a", g] != "(gather DONE)")
            bad("[a] group " g ": [" res["a", g] "] " suffix["a", g] ", expected [" \
                expected(g) "] (gather DONE)")
    }
    have = items("a", 2); ncanc = 0
    for (i = 1; i <= size[2]; i++) {
        finished_or_cancelled("a", "2." i, 2, i, have)
        ncanc += canc["a", "2." i]
    }
    if (cancelrc["a"] == 1) {
        if (ncanc == 0)
            bad("[a] the cancel took effect but no task of group 2 was cancelled")
        if (outer["a"] !~ /^FAILED with -ECANCELED /)
            bad("[a] outer gather: " outer["a"] ", expected FAILED with -ECANCELED")
        if (suffix["a", 2] != "(gather CANCELLED)")
            bad("[a] group 2 gather " suffix["a", 2] ", expected (gather CANCELLED)")
    } else if (cancelrc["a"] != 0) {
        bad("[a] weft_future_cancel -> " cancelrc["a"] ", expected 1 or 0")
    } else if (ncanc != 0) {
        bad("[a] the cancel found group 2 finished, yet tasks of it were cancelled")
    }
    if (outerrx["a"] != "DONE")
        bad("[a] outer gather with WEFT_RETURN_EXCEPTIONS: " outerrx["a"] ", expected DONE")

    # [b]: everything cancelled; every task finished before the cancel or was cancelled.
    if (ncancel["b"] != 1)
        bad("[b] " ncancel["b"] + 0 " cancel lines, expected 1")
    ncanc = 0
    for (g = 1; g <= 3; g++) {
        have = items("b", g)
        for (i = 1; i <= size[g]; i++) {
            finished_or_cancelled("b", g "." i, g, i, have)
            ncanc += canc["b", g "." i]
        }
    }
    if (cancelrc["b"] == 1) {
        if (ncanc == 0)
            bad("[b] the cancel took effect but no task was cancelled")
        if (outer["b"] !~ /^CANCELLED/)
            bad("[b] outer gather: " outer["b"] ", expected CANCELLED")
    } else if (cancelrc["b"] != 0) {
        bad("[b] weft_future_cancel -> " cancelrc["b"] ", expected 1 or 0")
    } else if (ncanc != 0 || outer["b"] != "DONE") {
        bad("[b] the cancel found everything finished, yet: outer " outer["b"] ", " ncanc \
            " cancelled")
    }

    # [c]: exactly task 2.2 fails, with its code in its slot; every gather is DONE.
    for (g = 1; g <= 3; g++) {
        for (i = 1; i <= size[g]; i++) {
            t = g "." i
            if (t != "2.2") {
                finished_once("c", t, 10 * g + i)
                continue
            }
            if (started["c", t] != 1 || failed["c", t] != 1 || fin["c", t] + canc["c", t] != 0)
                bad("[c] task 2.2: started " started["c", t] + 0 ", failed " failed["c", t] + 0 \
                    ", finished " fin["c", t] + 0 ", cancelled " canc["c", t] + 0 \
                    "; expected started and failed once")
        }
        want = expected(g)
        if (g == 2)
            want = "21, error " failcode["c", "2.2"] ", 23"
        if (res["c", g] != want || suffix["c", g] != "(gather DONE)")
            bad("[c] group " g ": [" res["c", g] "] " suffix["c", g] ", expected [" want \
                "] (gather DONE)")
    }
    if (failcode["c", "2.2"] == "" || failcode["c", "2.2"] == "0")
        bad("[c] task 2.2 gave no error code")
    if (outerrx["c"] != "DONE")
        bad("[c] outer gather with WEFT_RETURN_EXCEPTIONS: " outerrx["c"] ", expected DONE")
    exit nbad > 0
}'

# The facts of weft-demo-wait's output: three steps whose done sets split the ten tasks.
# shellcheck disable=SC2016 # awk program, not shell
wait_awk='
function bad(msg) { print "FAIL: " msg; nbad++ }
# The text between the first [ and the next ] of s, and rest = what follows that ].
function bracket(s,    b, e) {
    b = index(s, "["); s = substr(s, b + 1); e = index(s, "]")
    rest = substr(s, e + 1)
    return substr(s, 1, e - 1)
}
BEGIN {
    ntasks = 10
    for (k = 0; k < ntasks; k++)
        known["t" k] = 1
}
{ sub(/^\[ *[0-9]+\.[0-9]+\] /, "") }
/^== end ==$/ { ended = 1; next }
/^task / && !($2 in known) { bad("unknown task: " $0); next }
/^task t[0-9]+ start / { started[$2]++; next }
/^task t[0-9]+ finished/ { fin[$2]++; finline[$2] = NR; next }
/^task t[0-9]+ cancelled/ { canc[$2]++; next }
/^step [0-9]+ / {
    step = $2
    nsteps++
    if (step != nsteps)
        bad("step " step " comes as step number " nsteps)
    s = substr($0, index($0, ": done ") + 7)
    ndone = s + 0
    donelist = bracket(s)
    s = rest
    sub(/^ pending /, "", s)
    npending = s + 0
    pendinglist = bracket(s)
    nd = split(donelist, d, " ")
    np = split(pendinglist, p, " ")
    if (nd != ndone || np != npending)
        bad("step " step ": counts " ndone "/" npending " but lists of " nd "/" np)
    if (step == 1 && nd < 1)
        bad("step 1 (FIRST_COMPLETED) returned no finished task")
    if (totaldone + nd + np != ntasks)
        bad("step " step ": done so far " totaldone + 0 " + done " nd " + pending " np " != " ntasks)
    # Each step splits what the previous one left pending, and nothing else.
    delete now
    for (k = 1; k <= nd; k++) {
        t = d[k]
        if (t in donein)
            bad("step " step ": " t " already done in step " donein[t])
        if (now[t]++)
            bad("step " step ": " t " listed twice")
        donein[t] = step
        if (fin[t] != 1 || finline[t] > NR)
            bad("step " step ": " t " is done but did not say finished before")
    }
    for (k = 1; k <= np; k++) {
        t = p[k]
        if (t in donein)
            bad("step " step ": " t " pending but done in step " donein[t])
        if (now[t]++)
            bad("step " step ": " t " listed twice")
    }
    if (step > 1 && nd + np != lastpending)
        bad("step " step ": done + pending = " nd + np ", previous pending was " lastpending)
    totaldone += nd
    lastpending = np
    next
}
END {
    if (nsteps != 3)
        bad(nsteps + 0 " steps, expected 3")
    if (lastpending != 0)
        bad("the last step left " lastpending " pending, expected 0")
    for (t in known) {
        if (!(t in donein))
            bad(t " is in no done set")
        if (started[t] != 1 || fin[t] != 1 || canc[t] + 0 != 0)
            bad(t ": started " started[t] + 0 ", finished " fin[t] + 0 ", cancelled " \
                canc[t] + 0 " times; expected started and finished once")
    }
    if (!ended)
        bad("no \"== end ==\" line")
    exit nbad > 0
}'

# The facts of weft-demo-promise's output. Sections: [gather] three timers and two file reads,
# [fail] the same and a missing file (the gather fails fast), [rx] WEFT_RETURN_EXCEPTIONS with
# the missing file and t4, raced by a deadline. Each section: every callback once, with what
# set_result or set_error returned; the timers in the order of their durations; the
# continuation once, on a worker, after the completions its gather waited for, and the loop's
# report after it; the results in input order, with the files' sizes, lines, words and digests
# (the same in every section and every run); the final state of every promise.
# shellcheck disable=SC2016 # awk program, not shell
promise_awk='
function bad(msg) { print "FAIL: " msg; nbad++ }
# The text after the first occurrence of key in s, up to the next space or comma.
function after(s, key,    i) {
    i = index(s, key)
    if (i == 0)
        return ""
    s = substr(s, i + length(key))
    return substr(s, 1, match(s, /[ ,]|$/) - 1)
}
function completion(t, rc) {
    ncalls[sec, t]++
    callrc[sec, t] = rc
    seq[sec] = seq[sec] (seq[sec] == "" ? "" : " ") t
    if (rc == "0")
        lastdone[sec] = NR
}
BEGIN {
    nsecs = split("gather fail rx", secs, " ")
    srcs["gather"] = "t1 t2 t3 alpha.txt beta.txt"
    srcs["fail"] = srcs["gather"] " missing.txt"
    srcs["rx"] = srcs["fail"] " t4"
    flagtext["gather"] = "a gather"; flagtext["fail"] = "a gather"
    flagtext["rx"] = "a gather with WEFT_RETURN_EXCEPTIONS"
    ms["t1"] = 1500; ms["t2"] = 500; ms["t3"] = 1000; ms["t4"] = 2000
    timers["gather"] = "t2 t3 t1"; timers["fail"] = "t2 t3 t1"
    timers["rx"] = "t2 t4-deadline t3 t1 t4"
    bytes["alpha.txt"] = 16500; lines["alpha.txt"] = 300; words["alpha.txt"] = 3300
    bytes["beta.txt"] = 50000; lines["beta.txt"] = 1000; words["beta.txt"] = 10000
    # FNV-1a 64 over the bytes, 256 rounds: the files are the same bytes at every run.
    digest["alpha.txt"] = "fbae2d4caf4d1125"; digest["beta.txt"] = "dcad367a7949b325"
    enoent = "-ENOENT (no such file or directory)"
    cont["gather"] = "gather DONE, 5 results; digests of 2 files in parallel"
    cont["fail"] = "gather FAILED with " enoent ": nothing to summarize"
    cont["rx"] = "gather DONE, 7 results; digests of 2 files in parallel"
    taken["gather"] = "gather DONE, 5 slots"
    taken["fail"] = "gather FAILED with " enoent
    taken["rx"] = "gather DONE, 7 slots"
    promises["gather"] = "t1 DONE, t2 DONE, t3 DONE, alpha.txt DONE, beta.txt DONE"
    promises["fail"] = promises["gather"] ", missing.txt FAILED -ENOENT"
    promises["rx"] = promises["fail"] ", t4 FAILED -ETIMEDOUT"
}
{ sub(/^\[ *[0-9]+\.[0-9]+\] /, "") }
/^weft .*: weft-demo-promise, / { threads = $(NF - 1) + 0; next }
/^== \[[a-z]+\] / {
    sec = substr($2, 2, length($2) - 2)
    seen[sec]++
    order = order (order == "" ? "" : " ") sec
    next
}
/^== end ==$/ { ended = 1; sec = ""; next }
sec == "" { bad("a line outside the sections: " $0); next }
/^loop: [0-9]+ promises, / {
    nsetup[sec]++
    if ($0 != "loop: " split(srcs[sec], tmp, " ") " promises, " flagtext[sec] \
        " and its continuation set up")
        bad("[" sec "] set-up line: " $0)
    next
}
/^loop: timer t[0-9] fired / {
    t = $3
    if ($5 != "(" ms[t])
        bad("[" sec "] timer " t " fired after " $5 " ms, expected " ms[t])
    completion(t, after($0, "set_result -> "))
    next
}
/^loop: deadline of t[0-9] / {
    t = $4 "-deadline"
    if ($0 !~ /\(800 ms\): set_error -ETIMEDOUT -> /)
        bad("[" sec "] deadline line: " $0)
    completion(t, after($0, "set_error -ETIMEDOUT -> "))
    next
}
/^loop: read [a-z.]+: [0-9]+ bytes: set_result -> / {
    f = $3; sub(/:$/, "", f)
    if ($4 != bytes[f])
        bad("[" sec "] read " f ": " $4 " bytes, expected " bytes[f])
    completion(f, after($0, "set_result -> "))
    next
}
/^loop: open missing\.txt failed: / {
    if (index($0, "failed: " enoent ": set_error -> ") == 0)
        bad("[" sec "] missing.txt: " $0)
    completion("missing.txt", after($0, "set_error -> "))
    failline[sec] = NR
    next
}
/^continuation on worker -?[0-9]+: / {
    ncont[sec]++
    contline[sec] = NR
    worker = $4; sub(/:$/, "", worker)
    if (worker !~ /^[0-9]+$/ || (threads > 0 && worker + 0 >= threads))
        bad("[" sec "] the continuation ran on worker " worker ", not one of the " threads)
    conttext[sec] = substr($0, index($0, ": ") + 2)
    next
}
/^loop: report taken: / { ntaken[sec]++; takenline[sec] = NR; takentext[sec] = substr($0, 21); next }
/^report slot [0-9]+: / {
    i = $3 + 0
    nslot[sec, i]++
    slot[sec, i] = substr($0, index($0, ": ") + 2)
    nslots[sec]++
    next
}
/^report total: / { total[sec] = substr($0, 15); next }
/^promises: / { nprom[sec]++; prom[sec] = substr($0, 11); next }
{ bad("[" sec "] unexpected line: " $0) }
END {
    if (order != "gather fail rx")
        bad("sections [" order "], expected [gather fail rx]")
    if (!ended)
        bad("no \"== end ==\" line")
    if (threads < 1)
        bad("no header line with the thread count")
    for (k = 1; k <= nsecs; k++) {
        s = secs[k]
        if (nsetup[s] != 1)
            bad("[" s "] " nsetup[s] + 0 " set-up lines, expected 1")
        # Every callback once, with what weft returned.
        n = split(srcs[s], names, " ")
        for (i = 1; i <= n; i++) {
            t = names[i]
            want = (s == "rx" && t == "t4") ? "-EALREADY" : "0"
            if (ncalls[s, t] != 1)
                bad("[" s "] " t ": " ncalls[s, t] + 0 " completion lines, expected 1")
            else if (callrc[s, t] != want)
                bad("[" s "] " t ": completing its promise returned " callrc[s, t] \
                    ", expected " want)
        }
        if (s == "rx" && (ncalls[s, "t4-deadline"] != 1 || callrc[s, "t4-deadline"] != "0"))
            bad("[rx] the deadline of t4: " ncalls[s, "t4-deadline"] + 0 " lines, returned " \
                callrc[s, "t4-deadline"] "; expected once, 0")
        # The timers (and the deadline) in the order of their durations.
        m = split(seq[s], events, " ")
        got = ""
        for (i = 1; i <= m; i++)
            if (events[i] ~ /^t[0-9]/)
                got = got (got == "" ? "" : " ") events[i]
        if (got != timers[s])
            bad("[" s "] timers fired in the order [" got "], expected [" timers[s] "]")
        # The continuation: once, after what its gather waited for; the report after it.
        if (ncont[s] != 1) {
            bad("[" s "] " ncont[s] + 0 " continuation lines, expected 1")
        } else {
            if (conttext[s] != cont[s])
                bad("[" s "] continuation: \"" conttext[s] "\", expected \"" cont[s] "\"")
            if (s == "fail" && contline[s] < failline[s])
                bad("[fail] the continuation ran before missing.txt failed")
            if (s != "fail" && contline[s] < lastdone[s])
                bad("[" s "] the continuation ran before the last promise completed")
        }
        if (ntaken[s] != 1)
            bad("[" s "] " ntaken[s] + 0 " report lines, expected 1")
        else if (takenline[s] < contline[s])
            bad("[" s "] the loop took the report before the continuation ran")
        else if (takentext[s] != taken[s])
            bad("[" s "] report: \"" takentext[s] "\", expected \"" taken[s] "\"")
        # The results, in input order.
        if (s == "fail") {
            if (nslots[s] + 0 != 0 || s in total)
                bad("[fail] the failed gather has slots in its report")
        } else {
            if (nslots[s] != n)
                bad("[" s "] " nslots[s] + 0 " report slots, expected " n)
            for (i = 1; i <= n; i++) {
                t = names[i]
                if (t ~ /^t[0-9]$/ && !(s == "rx" && t == "t4"))
                    want = t " timer " ms[t] " ms"
                else if (t in bytes)
                    want = t " " bytes[t] " bytes, " lines[t] " lines, " words[t] \
                        " words, digest " digest[t]
                else
                    want = t " failed " (t == "t4" ? "-ETIMEDOUT" : "-ENOENT")
                if (nslot[s, i] != 1 || slot[s, i] != want)
                    bad("[" s "] slot " i ": \"" slot[s, i] "\", expected \"" want "\"")
            }
            if (total[s] != "timers 3000 ms, files 66500 bytes")
                bad("[" s "] total: \"" total[s] "\"")
        }
        if (nprom[s] != 1 || prom[s] != promises[s])
            bad("[" s "] promises: \"" prom[s] "\", expected \"" promises[s] "\"")
    }
    exit nbad > 0
}'

if [[ $demo == gather ]]; then
    program_awk=$gather_awk
    cases=("--scale 0.01" "--scale 0.01 --threads 2 --seed 7" "--scale 0.01 --threads 1 --seed 3")
elif [[ $demo == promise ]]; then
    program_awk=$promise_awk
    cases=("--scale 0.01" "--scale 0.01 --threads 1" "--scale 0.02 --threads 4")
else
    program_awk=$wait_awk
    cases=("--scale 0.01" "--scale 0.01 --timeout 0.5 --seed 7"
        "--scale 0.01 --threads 2 --timeout 0.5 --seed 3")
fi
if (($# > 0)); then
    cases=("$*")
fi

failures=0
for case_args in "${cases[@]}"; do
    read -ra args <<<"$case_args"
    rc=0
    "$program" "${args[@]}" >"$out" 2>&1 || rc=$?
    verdict=0
    report=$(awk "$program_awk" "$out") || verdict=$?
    if ((rc != 0)); then
        report+=$'\n'"FAIL: exit status $rc"
        verdict=1
    fi
    if ((verdict == 0)); then
        echo "ok    ${program##*/} $case_args ($(wc -l <"$out") lines)"
    else
        failures=$((failures + 1))
        echo "FAILED ${program##*/} $case_args"
        echo "$report"
        echo "--- output:"
        cat "$out"
        echo "---"
    fi
done
exit $((failures > 0))
