#!/usr/bin/env bash
# bench/graph_matrix.sh [OUT_DIR] [THREADS] [MODELS] [GRANULARITIES]
#
# Every criterion (l1 l2 random taylor lsh apoz fpgm bn_scale) x schedule
# (oneshot iterative global) with the recipe of experiments/graph_matrix.yaml,
# one run at a time, on the bundled graph models (MODELS, default
# "resnet20 mobilenet_mini densenet_mini"), at 50% of the channels and at 90% of the weights (GRANULARITIES, default
# "channel:0.5 weight:0.9"), each run checked against its target by
# bench/graph_matrix_check.py: within one unit per pruning group. A
# combination prunelab refuses (`prunelab validate` exits 2) is listed with
# its one-line message and must be exactly one line. Prints a Markdown
# table (model, granularity, criterion, schedule, result) and exits 1 if a
# run fails its check, errs, or a refusal is not one line. The runs share
# OUT_DIR (default reports/graph_matrix; finished runs are not repeated).
# CRITERIA and SCHEDULES (environment) narrow the matrix, PRUNELAB names
# the binary (default build/prunelab). About an hour on two busy cores,
# most of it resnet20 (tests/cli/test_graph_matrix.sh runs a corner of it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-reports/graph_matrix}
threads=${2:-2}
models=${3:-resnet20 mobilenet_mini densenet_mini}
grans=${4:-channel:0.5 weight:0.9}
cd "$root"
pl=${PRUNELAB:-build/prunelab}
[ -x "$pl" ] || { echo "graph_matrix: $pl not found (make build)" >&2; exit 2; }
py=$(command -v python3 || true)
[ -n "$py" ] || { echo "graph_matrix: python3 not found (bench/graph_matrix_check.py needs it)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e '/^sweep:/,$d' experiments/graph_matrix.yaml > "$tmp/cell.yaml"
criteria=${CRITERIA:-l1 l2 random taylor lsh apoz fpgm bn_scale}
schedules=${SCHEDULES:-oneshot iterative global}
echo "== load at the start: $(uptime)"
echo "| model | granularity | criterion | schedule | result |"
echo "|---|---|---|---|---|"
fail=0 pass=0 refused=0
for g in $grans; do
    gran=${g%%:*} sp=${g#*:}
    for model in $models; do
        for crit in $criteria; do
            for sched in $schedules; do
                set -- --set model="$root/configs/models/$model.yaml" --set prune.criterion="$crit" \
                    --set prune.schedule.plugin="$sched" --set prune.granularity="$gran" --set prune.sparsity="$sp"
                rc=0
                "$pl" validate "$tmp/cell.yaml" "$@" > "$tmp/v.txt" 2> "$tmp/v.err" || rc=$?
                if [ "$rc" = 2 ]; then
                    lines=$(wc -l < "$tmp/v.err")
                    msg=$(head -c 400 "$tmp/v.err" | tr '\n' ' ' | sed 's/|/\\|/g')
                    if [ "$lines" = 1 ]; then
                        refused=$((refused + 1))
                        echo "| $model | $gran $sp | $crit | $sched | refused: \`$msg\` |"
                    else
                        fail=$((fail + 1))
                        echo "| $model | $gran $sp | $crit | $sched | FAIL: refusal is $lines lines: \`$msg\` |"
                    fi
                    continue
                elif [ "$rc" != 0 ]; then
                    fail=$((fail + 1))
                    echo "| $model | $gran $sp | $crit | $sched | FAIL: validate exit $rc |"
                    continue
                fi
                id=$(sed -n 's/^ *run id *\([0-9a-f]*\).*/\1/p' "$tmp/v.txt" | head -1)
                rc=0
                "$pl" run "$tmp/cell.yaml" "$@" --out "$out" --threads "$threads" --quiet \
                    > /dev/null 2> "$tmp/r.err" || rc=$?
                if [ "$rc" != 0 ]; then
                    fail=$((fail + 1))
                    echo "| $model | $gran $sp | $crit | $sched | FAIL: run exit $rc: $(head -c 300 "$tmp/r.err" | tr '\n' ' ') |"
                    continue
                fi
                res=$("$py" bench/graph_matrix_check.py "$tmp/v.txt" "$out/layers.csv" "$id" "$gran" "$sp" "$sched") || true
                case $res in PASS*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
                echo "| $model | $gran $sp | $crit | $sched | $res |"
            done
        done
    done
done
echo "== $pass passed, $fail failed, $refused refused (one-line configuration errors)"
echo "== load at the end: $(uptime)"
[ "$fail" = 0 ]
