#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the Spin models tests/model/*.pml (or the files given as arguments).
#
# Each model lists its configurations in lines of its header comment of the form
#     @run NAME EXPECT [-DMACRO...]
# where EXPECT is `pass` (no violation allowed), `fail` (a negative variant: a violation must be
# found) or `bug` (lib/ as it is, with a known bug: a violation must be found; when lib/ is fixed,
# make it `pass`). A model without @run lines is run once, expecting `pass`.
#
# For each configuration: spin -a with the macros; then
#   - the safety run: pan built with -DNOCLAIM, run with no option: assertion violations and
#     invalid end states (deadlocks: a process blocked forever outside an end state);
#   - one run per `ltl NAME { ... }` claim of the file: pan -a -f -N NAME (acceptance cycles,
#     with weak fairness).
# A configuration is violated if any run reports errors. The script fails when a `pass`
# configuration is violated, or a `fail`/`bug` one is not, or a search was truncated.
#
# Environment: SPIN (default spin), CC (default cc), SPIN_MAX_DEPTH (default 1000000),
# WEFT_MODEL_BIG=1 also runs configurations marked @run-big.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SPIN=${SPIN:-spin}
CC=${CC:-cc}
depth=${SPIN_MAX_DEPTH:-1000000}
big=${WEFT_MODEL_BIG:-0}

if ! command -v "$SPIN" >/dev/null 2>&1; then
    echo "run_spin.sh: $SPIN not found (apt-get install spin)" >&2
    exit 1
fi

models=("$@")
if ((${#models[@]} == 0)); then
    models=("$here"/*.pml)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failures=0
total=0
start_all=$(date +%s%N)

# One pan run: prints a summary line, returns 0 if no error, 1 on errors, 2 on a truncated or
# broken search.
run_pan() {
    local label=$1
    shift
    local out rc=0
    out=$("$@" 2>&1) || true
    local errors states elapsed
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' <<<"$out" | tail -1)
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' <<<"$out" | tail -1)
    elapsed=$(sed -n 's/.*elapsed time \([0-9.e+]*\) seconds.*/\1/p' <<<"$out" | tail -1)
    if [[ -z $errors ]]; then
        echo "    $label: pan did not finish:"
        tail -20 <<<"$out" | sed 's/^/      | /'
        return 2
    fi
    if grep -q "max search depth too small\|out of memory" <<<"$out"; then
        echo "    $label: search truncated (raise SPIN_MAX_DEPTH):"
        grep "max search depth too small\|out of memory" <<<"$out" | sed 's/^/      | /'
        return 2
    fi
    local what=""
    if ((errors > 0)); then
        what=$(grep -m1 -E "^pan:[0-9]+: |assertion violated|invalid end state|acceptance cycle" <<<"$out" || true)
        rc=1
    fi
    printf '    %-28s errors %s, %s states stored, %ss%s\n' "$label:" "$errors" "${states:-?}" \
        "${elapsed:-?}" "${what:+  ($what)}"
    return $rc
}

for model in "${models[@]}"; do
    base=$(basename "$model" .pml)
    mapfile -t runs < <(sed -n 's/^.*@run \(.*\)$/\1/p' "$model")
    if ((big != 0)); then
        mapfile -t more < <(sed -n 's/^.*@run-big \(.*\)$/\1/p' "$model")
        runs+=("${more[@]}")
    fi
    if ((${#runs[@]} == 0)); then
        runs=("default pass")
    fi
    mapfile -t claims < <(sed -n 's/^ *ltl \([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$model")

    for r in "${runs[@]}"; do
        read -r -a f <<<"$r"
        name=${f[0]}
        expect=${f[1]}
        defines=("${f[@]:2}")
        total=$((total + 1))
        echo "$base/$name (${defines[*]:-no macros}): expect $expect"
        dir="$work/$base-$name"
        mkdir -p "$dir"
        cp "$model" "$dir/model.pml"
        if ! (cd "$dir" && "$SPIN" "${defines[@]}" -a model.pml >spin.log 2>&1); then
            sed 's/^/    | /' "$dir/spin.log"
            echo "  -> FAIL: spin -a failed"
            failures=$((failures + 1))
            continue
        fi
        violated=0
        broken=0
        (cd "$dir" && "$CC" -O2 -w -DNOCLAIM -o pan_safety pan.c)
        rc=0
        run_pan "safety" "$dir/pan_safety" -m"$depth" || rc=$?
        ((rc == 1)) && violated=1
        ((rc == 2)) && broken=1
        if ((${#claims[@]} > 0)); then
            (cd "$dir" && "$CC" -O2 -w -o pan_ltl pan.c)
            for c in "${claims[@]}"; do
                rc=0
                run_pan "ltl $c" "$dir/pan_ltl" -a -f -N "$c" -m"$depth" || rc=$?
                ((rc == 1)) && violated=1
                ((rc == 2)) && broken=1
            done
        fi
        if ((broken)); then
            echo "  -> FAIL: a search did not complete"
            failures=$((failures + 1))
        elif [[ $expect == pass ]] && ((violated)); then
            echo "  -> FAIL: property violated (replay: spin ${defines[*]} -t -p $model after pan)"
            failures=$((failures + 1))
        elif [[ $expect != pass ]] && ((!violated)); then
            if [[ $expect == bug ]]; then
                echo "  -> FAIL: the known bug was not found: if lib/ was fixed, mark this run 'pass'"
            else
                echo "  -> FAIL: negative variant not detected"
            fi
            failures=$((failures + 1))
        else
            case $expect in
            pass) echo "  -> PASS" ;;
            fail) echo "  -> PASS (violation found, as expected of this negative variant)" ;;
            bug) echo "  -> PASS (violation found: the known bug in lib/, see the model's header)" ;;
            esac
        fi
    done
done

elapsed_ms=$((($(date +%s%N) - start_all) / 1000000))
echo "run_spin.sh: $total configuration(s), $failures failure(s), $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))s"
((failures == 0))
