#!/usr/bin/env bash
# test_graph_matrix.sh BUILD_DIR SOURCE_DIR — a corner of the graph-model
# pruning matrix (bench/graph_matrix.sh): l1, taylor and bn_scale x the
# iterative and global schedules on mobilenet_mini and densenet_mini, at 50%
# of the channels and 90% of the weights, on 256 synthetic images. Every run
# must reach its target within one unit per pruning group, the combinations
# prunelab refuses (bn_scale where no batchnorm follows a pruned conv, and at
# weight granularity) must be refused with one line, and the check itself
# must notice a run that missed its target.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp graph_matrix
command -v python3 >/dev/null 2>&1 || { echo "test_graph_matrix: python3 not found (bench/graph_matrix_check.py needs it)"; exit 1; }

case="bench/graph_matrix.sh on mobilenet_mini and densenet_mini"
CRITERIA="l1 taylor bn_scale" SCHEDULES="iterative global" PRUNELAB="$P" \
    bench/graph_matrix.sh "$T/report" 1 "mobilenet_mini densenet_mini" "channel:0.5 weight:0.9" > "$T/table" 2>&1
rc=$?
[ "$rc" = 0 ] && ok || no "exit $rc: $(grep -v 'PASS' "$T/table" | head -c 2000)"
# 2 models x 3 criteria x 2 schedules x 2 granularities; refused: bn_scale on
# densenet_mini's channels (2 schedules) and at weight granularity (4)
grep -q "^== 18 passed, 0 failed, 6 refused" "$T/table" && ok || no "$(grep '^==' "$T/table")"
[ "$(grep -c '^| [a-z_0-9]* | \(channel\|weight\)' "$T/table")" = 24 ] && ok || no "not 24 rows"
grep -q "densenet_mini | channel 0.5 | bn_scale | global | refused: .*no batchnorm2d\|densenet_mini | channel 0.5 | bn_scale | global | refused: .*has none after it" "$T/table" &&
    ok || no "densenet_mini bn_scale not refused: $(grep 'densenet_mini | channel 0.5 | bn_scale' "$T/table")"

# layers.csv gives a depthwise conv's weight shape (out x in/groups x k x k)
case="layers.csv shape of a depthwise conv"
grep -q "^[0-9a-f]*,b1_dw,conv2d,64x1x3x3,32x1x3x3," "$T/report/layers.csv" && ok ||
    no "$(grep ',b1_dw,' "$T/report/layers.csv" | head -2)"

# the check fails a run held to another target, and passes it at its own
case="graph_matrix_check.py against a wrong target"
sed -e '/^sweep:/,$d' experiments/graph_matrix.yaml > "$T/cell.yaml"
"$P" validate "$T/cell.yaml" --set model="$S/configs/models/mobilenet_mini.yaml" --set prune.schedule.plugin=iterative \
    > "$T/v.txt" 2>&1 || no "validate failed"
id=$(sed -n 's/^ *run id *\([0-9a-f]*\).*/\1/p' "$T/v.txt" | head -1)
python3 bench/graph_matrix_check.py "$T/v.txt" "$T/report/layers.csv" "$id" channel 0.5 iterative > "$T/c1" && ok ||
    no "$(cat "$T/c1")"
python3 bench/graph_matrix_check.py "$T/v.txt" "$T/report/layers.csv" "$id" channel 0.4 iterative > "$T/c2" &&
    no "passed at 0.4: $(cat "$T/c2")" || ok
python3 bench/graph_matrix_check.py "$T/v.txt" "$T/report/layers.csv" "$id" channel 0.5 global > /dev/null && ok || no "global view"
python3 bench/graph_matrix_check.py "$T/v.txt" "$T/report/layers.csv" "$id" channel 0.3 global > /dev/null &&
    no "global passed at 0.3" || ok
pl_summary
