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
. "$(dirname "$0")/lib.sh"
BUILD=$(cd "$1" && pwd) || exit 2
cd "$2" || exit 2
PL="$BUILD/prunelab"
B=${PL_ALLOC_CONFIG:-tests/fixtures/bad/base.yaml} # test_merge_alloc_fail.sh: another config
T=$(mktemp -d "${TMPDIR:-/tmp}/pl-alloc.XXXXXX")
trap 'rm -rf "$T"' EXIT
unset PRUNELAB_PLUGIN_PATH
total=$(PRUNELAB_ALLOC_COUNT=1 PRUNELAB_FAIL_ALLOC=0 "$PL" run "$B" --out "$T/full" --quiet 2>&1 >/dev/null |
        awk '/allocations:/ { print $NF }')
if [[ -z $total || ! -s $T/full/results.csv ]]; then
    echo "FAIL: the reference run did not work"
    exit 1
fi

# the driver (pl_alloc_cases, lib.sh) runs each case through these
alloc_run() { # K DIR
    PRUNELAB_FAIL_ALLOC=$1 timeout 60 "$PL" run "$B" --out "$2/r" --quiet >"$2/out" 2>"$2/err"
}
alloc_left() { # DIR
    [[ -z $(find "$1/r" -name '*.tmp*' 2>/dev/null) ]] || echo "temporary files left"
}
alloc_same() { # DIR: the same results as the reference (e.g. an optional cache failed)
    cmp -s <(cut -d, -f1-23 "$1/r/results.csv" 2>/dev/null) <(cut -d, -f1-23 "$T/full/results.csv")
}
alloc_failed() { # DIR RC: no report, the reference's report, or the run's row marked failed
    local d=$1 rc=$2 rows st id ref
    [[ -f $d/r/results.csv ]] || return 0
    rows=$(awk 'END { print NR }' "$d/r/results.csv")
    st=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "status") c = i } NR == 2 { print $c }' "$d/r/results.csv")
    id=$(awk -F, 'NR == 2 { print $1 }' "$d/r/results.csv")
    ref=$(awk -F, 'NR == 2 { print $1 }' "$T/full/results.csv")
    if cmp -s <(cut -d, -f1-23 "$d/r/results.csv") <(cut -d, -f1-23 "$T/full/results.csv"); then
        [[ $rc == 1 ]] || echo "exit $rc after a complete report" # a later report file failed, named on stderr
    elif [[ $rc != 1 || $rows != 2 || $st != failed || $id != "$ref" ]]; then
        echo "a partial or different results.csv (exit $rc, $rows lines, status '$st', run $id)"
    fi
}
export -f alloc_run alloc_left alloc_same alloc_failed
export PL B
pl_alloc_cases "$total" "$(pl_alloc_stride 1)" run
