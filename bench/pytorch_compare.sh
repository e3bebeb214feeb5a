#!/usr/bin/env bash
# bench/pytorch_compare.sh [BUILD_DIR] [EPOCHS]
#
# The seed's SimpleCNN recipe (MNIST, batch 64, Adam lr 1e-3, one epoch) in a
# tight PyTorch loop over pre-loaded tensors (the IDX files of data/mnist read
# with numpy, normalised once), next to `prunelab bench --backend simd` in the
# same script, and the ratio of their seconds per training epoch at 1 and 2
# threads. Needs PyTorch (Debian: python3-torch); without it the script says
# so and exits 0. Run it from anywhere; BUILD_DIR defaults to build/.
#
# PyTorch is timed over EPOCHS epochs (default 3) after one untimed warm-up
# epoch; the median is reported. Machine load (uptime) is printed at the start
# and the end: compare the two sides of one run, not runs of different days.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
epochs=${2:-3}
prunelab=$build/prunelab

. "$root/bench/torch_python.sh"
if [ -z "$py" ]; then
    echo "pytorch_compare: PyTorch (with numpy) is not installed for python3: nothing to compare."
    echo "  (Debian: apt-get install python3-torch; this script never installs it)"
    exit 0
fi
if [ ! -x "$prunelab" ]; then
    echo "pytorch_compare: $prunelab not found (build first, or pass BUILD_DIR)" >&2
    exit 2
fi
if [ ! -r "$root/data/mnist/train-images-idx3-ubyte" ]; then
    echo "pytorch_compare: MNIST is not in $root/data/mnist" >&2
    exit 2
fi

cd "$root"
echo "== load at the start: $(uptime)"
nproc=$(nproc)
threads=$(( nproc < 2 ? nproc : 2 ))
tlist=1
[ "$threads" -gt 1 ] && tlist="1 $threads"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for t in $tlist; do
    echo "== PyTorch $($py -c 'import torch; print(torch.__version__)'), $t thread(s), $epochs epochs after a warm-up"
    PYTHONPATH="$root/bench" "$py" - "$root/data/mnist" "$t" "$epochs" > "$tmp/torch_$t" <<'PY'
import sys, time, statistics
import torch
import torch.nn.functional as F
from mnist_simplecnn import SimpleCNN, load

path, threads, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(1)
X, Y, Xt, Yt = load(path)

times = []
for ep in range(epochs + 1):  # epoch 0 warms up
    model = SimpleCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(X.shape[0])
    t0 = time.perf_counter()
    for i in range(0, X.shape[0], 64):
        b = perm[i:i + 64]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(X[b]), Y[b])
        loss.backward()
        opt.step()
    if ep > 0:
        times.append(time.perf_counter() - t0)
with torch.no_grad():
    t0 = time.perf_counter()
    acc = sum((model(Xt[i:i + 1000]).argmax(1) == Yt[i:i + 1000]).sum().item() for i in range(0, 10000, 1000))
    infer = time.perf_counter() - t0
print(f"{statistics.median(times):.4f} {min(times):.4f} {max(times):.4f} {infer * 1000:.1f} {acc / 100:.2f}")
PY
    read -r med lo hi infer acc < "$tmp/torch_$t"
    echo "   epoch ${med} s (min ${lo}, max ${hi}), inference of the 10k test images ${infer} ms, test accuracy ${acc}%"
done

echo "== prunelab bench --backend simd --runs 5 --threads $threads"
"$prunelab" bench --backend simd --runs 5 --threads "$threads" --csv "$tmp/bench.csv" > "$tmp/bench.txt"
grep -E '^\| [0-9]+ \| [0-9]' "$tmp/bench.txt" | head -n 2 | sed 's/^/   /'

pl_epoch() { # median epoch seconds of simd at $1 threads
    awk -F, -v t="$1" '$1 == "train" && $3 == "simd" && $4 == t && $5 == "epoch_seconds" { print $6 }' "$tmp/bench.csv"
}
echo "== ratio (PyTorch seconds per epoch / prunelab seconds per epoch, same thread count)"
for t in $tlist; do
    read -r med _ < "$tmp/torch_$t"
    pe=$(pl_epoch "$t")
    awk -v a="$med" -v b="$pe" -v t="$t" 'BEGIN { printf "   %d thread(s): PyTorch %.3f s, prunelab %.3f s: prunelab is %.1fx faster\n", t, a, b, a / b }'
done
echo "== load at the end: $(uptime)"
