#!/usr/bin/env bash
# ONNX both ways: a pruned checkpoint exported with `prunelab export` and
# imported again (`model: FILE.onnx`, `prunelab eval FILE.onnx`) is the same
# network — same accuracy, the same logits within float rounding — for a
# chain (SimpleCNN) and a graph model with residual adds and depthwise
# convolutions (mobilenet_mini); and an imported model with train.epochs: 0
# is its own baseline (acc_baseline = eval's accuracy), pruned and
# retrained from there.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp onnx-rt

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1; stderr: $(head -c 400 "$T/err")"; }
acc_of() { sed -n 's/^.*accuracy[: ]* \([0-9.]*\) *%.*$/\1/p' "$1" | head -1; }
col() { # CSV COLUMN: the first data row's value
    awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i } NR == 2 { print $k }' "$1"
}

for model in simple_cnn mobilenet_mini; do
    cat >"$T/$model.yaml" <<YAML
name: rt-$model
seed: 5
model: configs/models/$model.yaml
dataset: {plugin: synthetic, train_count: 256, test_count: 200}
backend: ref
train: {epochs: 1, batch_size: 64}
prune: {criterion: l1, granularity: channel, sparsity: 0.5}
retrain: {epochs: 1}
report: {latency_runs: 1, plots: false}
YAML
    run run "$T/$model.yaml" --out "$T/run-$model" --threads 1 --quiet
    rc_is 0
    ckpt=$(ls "$T/run-$model"/models/*.ckpt | head -1)
    run export "$ckpt" -o "$T/$model.onnx"
    rc_is 0
    run eval "$ckpt" "$T/$model.yaml" --logits "$T/$model-ckpt.csv"
    rc_is 0
    cp "$T/out" "$T/$model-ckpt.out"
    run eval "$T/$model.onnx" "$T/$model.yaml" --logits "$T/$model-onnx.csv"
    rc_is 0
    cp "$T/out" "$T/$model-onnx.out"
    case="$model: the imported export scores what the checkpoint scores"
    a=$(acc_of "$T/$model-ckpt.out") b=$(acc_of "$T/$model-onnx.out")
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || no "checkpoint $a, its ONNX export $b"
    case="$model: same logits"
    paste -d, "$T/$model-ckpt.csv" "$T/$model-onnx.csv" | awk -F, -v h=$(($(head -1 "$T/$model-ckpt.csv" | tr ',' '\n' | wc -l))) '
        NR == 1 { next }
        { for (i = 3; i <= h; i++) { d = $i - $(i + h); if (d < 0) d = -d; s = $i < 0 ? -$i : $i
              if (d > 1e-5 + 1e-5 * s) { printf "row %d col %d: %s vs %s\n", NR, i, $i, $(i + h); exit 1 } }
          n++ }
        END { if (n != 200) { print n " rows"; exit 1 } }' >"$T/why" && ok || no "$(cat "$T/why")"
    case="$model: the same counts"
    grep -E "params|MACs" "$T/$model-ckpt.out" >"$T/c1"; grep -E "params|MACs" "$T/$model-onnx.out" >"$T/c2"
    [ -s "$T/c1" ] && cmp -s "$T/c1" "$T/c2" && ok || no "$(diff "$T/c1" "$T/c2" | head -3)"
done

# the exported graph model as a given baseline: no training, prune, retrain
sed -e "s|model: configs/models/mobilenet_mini.yaml|model: $T/mobilenet_mini.onnx|" \
    -e 's/train: {epochs: 1, batch_size: 64}/train: {epochs: 0, batch_size: 64}/' \
    -e 's/name: rt-mobilenet_mini/name: rt-given/' "$T/mobilenet_mini.yaml" >"$T/given.yaml"
run run "$T/given.yaml" --out "$T/run-given" --threads 1 --quiet
rc_is 0
case="train.epochs: 0 on an ONNX model: its accuracy is the baseline"
g=$(col "$T/run-given/results.csv" acc_baseline) b=$(acc_of "$T/mobilenet_mini-onnx.out")
[ -n "$g" ] && awk -v g="$g" -v b="$b" 'BEGIN { exit !(g + 0 == b + 0) }' && ok || no "acc_baseline $g, eval $b"
case="and it was pruned"
p=$(col "$T/run-given/results.csv" achieved_sparsity)
awk -v p="$p" 'BEGIN { exit !(p > 0.3) }' && ok || no "achieved sparsity $p"

pl_summary
