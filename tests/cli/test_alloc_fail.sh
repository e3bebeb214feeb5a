#!/usr/bin/env bash
# test_alloc_fail.sh BUILD_DIR SOURCE_DIR — allocation-failure injection
# (core/src/alloc.c, SQLite-style): a small run (config -> train -> prune ->
# report, tiny MLP on synthetic data) is repeated with its k-th host
# allocation failing, for every k (PL_ALLOC_STRIDE=n tries every n-th).
# Each must end cleanly: no signal or sanitizer report (leaks included
# under ASan), no temporary file left, and either
#   - exit 1 or 2 with exactly one "prunelab: " line on stderr and no
#     results.csv (the failure came before the run started), or
#   - exit 1, one "prunelab: " line, and a complete report whose one row is
#     the same run (same run_id) marked failed (a run failure is recorded,
#     as a sweep records it), or
#   - exit 1, one line, and a results.csv identical to the reference's (the
#     failure came in a later report file, which the line names; rerunning
#     rebuilds the report), or
#   - exit 0 and a report identical to the reference run's (a failed
#     allocation with a fallback, e.g. an optional cache).
# A different run_id or result under exit 0 is a silent wrong answer and
# fails the test. PRUNELAB_FAIL_ALLOC_TRACE=1 shows where allocation k is.
set -u
BUILD=$(cd "$1" && pwd) || exit 2
cd "$2" || exit 2
PL="$BUILD/prunelab"
B=tests/fixtures/bad/base.yaml
T=$(mktemp -d "${TMPDIR:-/tmp}/pl-alloc.XXXXXX")
trap 'rm -rf "$T"' EXIT
unset PRUNELAB_PLUGIN_PATH
total=$(PRUNELAB_ALLOC_COUNT=1 PRUNELAB_FAIL_ALLOC=0 "$PL" run "$B" --out "$T/full" --quiet 2>&1 >/dev/null |
        awk '/allocations:/ { print $NF }')
if [[ -z $total || ! -s $T/full/results.csv ]]; then
    echo "FAIL: the reference run did not work"
    exit 1
fi
stride=${PL_ALLOC_STRIDE:-1}

# One case per allocation k, independent of the others: run them on every
# core (PL_ALLOC_JOBS, default nproc), each in its own folder, then count.
check() { # k -> writes $T/res/k: "clean", "ok0" or "FAIL ..."
    local k=$1 d=$T/c$1 rc why lines rows st id ref
    mkdir -p "$d"
    PRUNELAB_FAIL_ALLOC=$k timeout 60 "$PL" run "$B" --out "$d/r" --quiet >"$d/out" 2>"$d/err"
    rc=$?
    why=""
    lines=$(awk 'END { print NR }' "$d/err")
    if ((rc >= 124)); then
        why="exit $rc (signal or timeout)"
    elif grep -qE 'Sanitizer|runtime error' "$d/err"; then
        why="sanitizer report"
    elif [[ -n $(find "$d/r" -name '*.tmp*' 2>/dev/null) ]]; then
        why="temporary files left"
    elif ((rc == 0)); then
        if cmp -s <(cut -d, -f1-23 "$d/r/results.csv" 2>/dev/null) <(cut -d, -f1-23 "$T/full/results.csv"); then
            echo ok0 >"$T/res/$k" # the failed allocation had a fallback (e.g. an optional cache)
            rm -rf "$d"
            return
        fi
        why="exit 0 with a different or missing results.csv (a silent wrong answer)"
    elif [[ $lines != 1 ]] || ! grep -q '^prunelab: ' "$d/err"; then
        why="$lines lines on stderr"
    elif [[ -f $d/r/results.csv ]]; then
        rows=$(awk 'END { print NR }' "$d/r/results.csv")
        st=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "status") c = i } NR == 2 { print $c }' "$d/r/results.csv")
        id=$(awk -F, 'NR == 2 { print $1 }' "$d/r/results.csv")
        ref=$(awk -F, 'NR == 2 { print $1 }' "$T/full/results.csv")
        if cmp -s <(cut -d, -f1-23 "$d/r/results.csv") <(cut -d, -f1-23 "$T/full/results.csv"); then
            [[ $rc == 1 ]] || why="exit $rc after a complete report" # a later report file failed, named on stderr
        elif [[ $rc != 1 || $rows != 2 || $st != failed || $id != "$ref" ]]; then
            why="a partial or different results.csv (exit $rc, $rows lines, status '$st', run $id)"
        fi
    fi
    if [[ -n $why ]]; then
        echo "FAIL allocation $k of $total: $why: $(head -c 300 "$d/err" | tr '\n' ' ')" >"$T/res/$k"
    else
        echo clean >"$T/res/$k"
    fi
    rm -rf "$d"
}
export -f check
export T PL B total
mkdir -p "$T/res"
jobs=${PL_ALLOC_JOBS:-$(nproc 2>/dev/null || echo 2)}
seq 1 "$stride" "$total" | xargs -P "$jobs" -I{} bash -c 'check {}'
tried=0 clean=0 ok0=0 bad=0
for ((k = 1; k <= total; k += stride)); do
    tried=$((tried + 1))
    r=$(cat "$T/res/$k" 2>/dev/null || echo "FAIL allocation $k of $total: no result recorded")
    case $r in
    clean) clean=$((clean + 1)) ;;
    ok0) clean=$((clean + 1)) ok0=$((ok0 + 1)) ;;
    *) bad=$((bad + 1)); echo "$r" ;;
    esac
done
echo "allocations in the run: $total; failed one at a time: $tried (every ${stride}); clean: $clean (of which $ok0 recovered, exit 0); defects: $bad"
echo "$clean passed, $bad failed"
((bad == 0))
