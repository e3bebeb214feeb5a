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

tried=0 clean=0 ok0=0 bad=0
for ((k = 1; k <= total; k += stride)); do
    tried=$((tried + 1))
    rm -rf "$T/r"
    PRUNELAB_FAIL_ALLOC=$k timeout 60 "$PL" run "$B" --out "$T/r" --quiet >"$T/out" 2>"$T/err"
    rc=$?
    why=""
    lines=$(awk 'END { print NR }' "$T/err")
    if ((rc >= 124)); then
        why="exit $rc (signal or timeout)"
    elif grep -qE 'Sanitizer|runtime error' "$T/err"; then
        why="sanitizer report"
    elif [[ -n $(find "$T/r" -name '*.tmp*' 2>/dev/null) ]]; then
        why="temporary files left"
    elif ((rc == 0)); then
        if cmp -s <(cut -d, -f1-23 "$T/r/results.csv" 2>/dev/null) <(cut -d, -f1-23 "$T/full/results.csv"); then
            ok0=$((ok0 + 1)) # the failed allocation had a fallback (e.g. an optional cache)
        else
            why="exit 0 with a different or missing results.csv (a silent wrong answer)"
        fi
    elif [[ $lines != 1 ]] || ! grep -q '^prunelab: ' "$T/err"; then
        why="$lines lines on stderr"
    elif [[ -f $T/r/results.csv ]]; then
        # a recorded run failure: the same run, marked failed, in a complete file
        rows=$(awk 'END { print NR }' "$T/r/results.csv")
        st=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "status") c = i } NR == 2 { print $c }' "$T/r/results.csv")
        id=$(awk -F, 'NR == 2 { print $1 }' "$T/r/results.csv")
        ref=$(awk -F, 'NR == 2 { print $1 }' "$T/full/results.csv")
        if cmp -s <(cut -d, -f1-23 "$T/r/results.csv") <(cut -d, -f1-23 "$T/full/results.csv"); then
            [[ $rc == 1 ]] || why="exit $rc after a complete report" # a later report file failed, named on stderr
        elif [[ $rc != 1 || $rows != 2 || $st != failed || $id != "$ref" ]]; then
            why="a partial or different results.csv (exit $rc, $rows lines, status '$st', run $id)"
        fi
    fi
    if [[ -n $why ]]; then
        bad=$((bad + 1))
        echo "FAIL allocation $k of $total: $why: $(head -c 300 "$T/err" | tr '\n' ' ')"
    else
        clean=$((clean + 1))
    fi
done
echo "allocations in the run: $total; failed one at a time: $tried (every ${stride}); clean: $clean (of which $ok0 recovered, exit 0); defects: $bad"
echo "$clean passed, $bad failed"
((bad == 0))
