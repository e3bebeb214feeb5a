#!/usr/bin/env bash
# bench/pytorch_seed.sh [FIRST_SEED] [LAST_SEED] [THREADS]
#
# The seed experiment itself (shared/seed: SimpleCNN on MNIST, Adam lr 1e-3,
# batch 64, one epoch; remove the 2 of conv1's 4 filters with the smallest
# L1 norm and cut conv2's inputs to match; a fresh Adam; one more epoch;
# test) in PyTorch, for each seed, next to `prunelab run experiments/seed.yaml`
# with the same seed: the accuracy distributions the seed issue compares.
# PyTorch follows the seed's code, which re-creates conv2 and so loses its
# trained bias ("seed"), and also keeps that bias as prunelab does ("kept").
# Data: the IDX files of data/mnist read with numpy, normalised as the
# seed's transforms do; shuffling from torch.randperm under
# torch.manual_seed(seed), as the DataLoader does. Needs PyTorch (Debian:
# python3-torch); without it the script says so and exits 0. Not a test.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
first=${1:-1}
last=${2:-5}
threads=${3:-1}
. "$root/bench/torch_python.sh"
if [ -z "$py" ]; then
    echo "pytorch_seed: PyTorch (with numpy) is not installed for python3: nothing to compare."
    exit 0
fi
cd "$root"
[ -x build/prunelab ] || { echo "pytorch_seed: build/prunelab not found (make build)" >&2; exit 2; }
[ -r data/mnist/train-images-idx3-ubyte ] || { echo "pytorch_seed: MNIST is not in data/mnist" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "| seed | prunelab base | prunelab final | PyTorch base | PyTorch final (seed: conv2 bias lost) | PyTorch final (bias kept) |"
echo "|---|---|---|---|---|---|"
for s in $(seq "$first" "$last"); do
    build/prunelab run experiments/seed.yaml --set seed="$s" --out "$tmp/pl$s" --quiet >/dev/null
    pl=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} NR==2{print $h["acc_baseline"], $h["acc_final"]}' "$tmp/pl$s/results.csv")
    th=$(PYTHONPATH="$root/bench" "$py" - data/mnist "$s" "$threads" <<'PY'
import sys
import torch
import torch.nn as nn
import torch.nn.functional as F
from mnist_simplecnn import SimpleCNN, load, test

path, seed, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
X, Y, Xt, Yt = load(path)

def epoch(model):  # a fresh Adam each time, as the seed's code does
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    model.train()
    for b in torch.randperm(len(X)).split(64):
        opt.zero_grad()
        F.cross_entropy(model(X[b]), Y[b]).backward()
        opt.step()

out = []
for keep_bias in (False, True):
    torch.manual_seed(seed)
    model = SimpleCNN()
    epoch(model)
    base = test(model, Xt, Yt)
    order = torch.argsort(model.conv1.weight.data.abs().sum(dim=[1, 2, 3]))[2:]
    w1, b1 = model.conv1.weight.data[order], model.conv1.bias.data[order]
    w2, b2 = model.conv2.weight.data[:, order], model.conv2.bias.data.clone()
    model.conv1 = nn.Conv2d(1, 2, 3, padding=1)
    model.conv1.weight.data, model.conv1.bias.data = w1, b1
    model.conv2 = nn.Conv2d(2, 8, 3, padding=1)
    model.conv2.weight.data = w2
    if keep_bias:
        model.conv2.bias.data = b2
    epoch(model)
    out.append(test(model, Xt, Yt))
print(f"{base:.2f} {out[0]:.2f} {out[1]:.2f}")
PY
)
    set -- $pl $th
    echo "| $s | $1 | $2 | $3 | $4 | $5 |"
done
