#!/usr/bin/env bash
# onnx_roundtrip.sh [BUILD_DIR] [DATA_DIR] [EPOCHS] — a network trained and
# exported by PyTorch goes through prunelab and out to another runtime:
#
#   1. PyTorch trains a small residual CNN with batchnorm on MNIST and
#      exports it to ONNX (bench/onnx_roundtrip_torch.py; its test accuracy);
#   2. prunelab imports it as the baseline (train.epochs: 0: acc_baseline is
#      the imported weights' accuracy), removes half the channels with the
#      global L1 ranking, retrains 1 epoch;
#   3. `prunelab export` writes the pruned model and OpenCV's DNN module
#      scores it on the same 10,000 test images.
#
# Prints the four accuracies, the MACs and the latencies. Needs python3-torch
# and python3-opencv (Debian) for /usr/bin/python3 or python3; without them
# it says so and exits 0. Not a test: the measurement behind the README's
# ONNX figures.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
DATA=$(cd "${2:-$ROOT/data/mnist}" && pwd)
EPOCHS=${3:-1}
P=$BUILD/prunelab
PY=
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import numpy, torch, cv2' 2>/dev/null; then
        PY=$py
        break
    fi
done
if [ -z "$PY" ]; then
    echo "onnx_roundtrip: needs PyTorch and OpenCV for python3 (Debian: python3-torch python3-opencv); nothing measured."
    exit 0
fi
[ -x "$P" ] || { echo "onnx_roundtrip: $P not built (make build)" >&2; exit 2; }
W=$(mktemp -d /tmp/onnx-roundtrip.XXXXXX)
trap 'rm -rf "$W"' EXIT

"$PY" "$ROOT/bench/onnx_roundtrip_torch.py" train "$DATA" "$W/net.onnx" --epochs "$EPOCHS" 2>/dev/null | grep '^torch_test_acc='
cat >"$W/given.yaml" <<YAML
name: torch-given
seed: 1
model: $W/net.onnx
dataset: {plugin: idx, path: $DATA, normalize: {mean: 0.1307, std: 0.3081}}
train: {epochs: 0}
prune: {criterion: l1, granularity: channel, schedule: {plugin: global}, sparsity: 0.5}
retrain: {epochs: 1}
report: {dir: $W/report, plots: false}
YAML
"$P" run "$W/given.yaml" --quiet >/dev/null
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i }
         NR == 2 { printf "prunelab: acc_baseline=%s acc_final=%s MACs %s -> %s latency_ms/1k %s -> %s\n",
                   $c["acc_baseline"], $c["acc_final"], $c["macs_before"], $c["macs_after"],
                   $c["latency_ms_before"], $c["latency_ms_after"] }' "$W/report/results.csv"
ckpt=$(ls "$W"/report/models/*.ckpt | head -1)
"$P" export "$ckpt" -o "$W/pruned.onnx"
"$PY" "$ROOT/bench/onnx_roundtrip_torch.py" opencv "$DATA" "$W/pruned.onnx" 2>/dev/null
