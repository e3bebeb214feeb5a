#!/usr/bin/env bash
# bench/pytorch_model_compare.sh [MODEL] [BUILD_DIR] [STEPS] [RUNS]
#
# Training throughput of one network in prunelab and in PyTorch, side by
# side in one script, at 1 and 2 threads (batch 64, Adam lr 1e-3, MNIST).
# MODEL is resnet20 (default; configs/models/resnet20.yaml against
# bench/resnet20_torch.py's ResNet20) or simple_cnn (configs/models/
# simple_cnn.yaml against bench/mnist_simplecnn.py's SimpleCNN).
#
#  - PyTorch: STEPS (default 150) steps over pre-loaded tensors after 10
#    untimed ones, RUNS (default 3) times, the thread counts alternating
#    (1,2 then 2,1 ...); the median images/s, then a torch.profiler table of
#    20 steps at 2 threads (self CPU time per operator).
#  - prunelab: `prunelab bench --backend simd --model MODEL --runs RUNS`
#    (whole training epochs through the real training loop, the FMA probe
#    in the same repetitions, and its per-layer-type profile of a step).
#
# Printed: images/s on both sides, the ratio, the step's GFLOP/s (both
# sides counted with prunelab's FLOP count of the network) and its share of
# the FMA probe at that thread count, and where a prunelab step goes by
# layer type. Machine load is printed at the start and the end; on a shared
# machine compare the two sides of one run, never runs of different times.
# Needs PyTorch (Debian: python3-torch); without it the script says so and
# exits 0 (it never installs anything). resnet20 with RUNS=3 takes about
# 15 minutes on two quiet cores (the prunelab side trains 8 epochs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-resnet20}
build=${2:-$root/build}
steps=${3:-150}
runs=${4:-3}
prunelab=$build/prunelab

case "$model" in
resnet20 | simple_cnn) ;;
*)
    echo "pytorch_model_compare: MODEL must be resnet20 or simple_cnn, not '$model'" >&2
    exit 2
    ;;
esac
. "$root/bench/torch_python.sh"
if [ -z "$py" ]; then
    echo "pytorch_model_compare: PyTorch (with numpy) is not installed for python3: nothing to compare."
    echo "  (Debian: apt-get install python3-torch; this script never installs it)"
    exit 0
fi
if [ ! -x "$prunelab" ]; then
    echo "pytorch_model_compare: $prunelab not found (build first, or pass BUILD_DIR)" >&2
    exit 2
fi
if [ ! -r "$root/data/mnist/train-images-idx3-ubyte" ]; then
    echo "pytorch_model_compare: MNIST is not in $root/data/mnist" >&2
    exit 2
fi

cd "$root"
echo "== load at the start: $(uptime)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== PyTorch $($py -c 'import torch; print(torch.__version__)'), $model, $runs x $steps steps of batch 64 per thread count"
PYTHONPATH="$root/bench" "$py" - "$root/data/mnist" "$model" "$steps" "$runs" > "$tmp/torch" <<'PY'
import statistics, sys, time
import torch
import torch.nn.functional as F

path, model, steps, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if model == "resnet20":
    from resnet20_torch import ResNet20 as Net, load
else:
    from mnist_simplecnn import SimpleCNN as Net, load
X, Y, _, _ = load(path)
torch.manual_seed(1)

def run(threads, n, prof=False):
    torch.set_num_threads(threads)
    net = Net()
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    perm = torch.randperm(X.shape[0])
    def step(i):
        b = perm[(i * 64) % (X.shape[0] - 64):][:64]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(X[b]), Y[b]).backward()
        opt.step()
    for i in range(10):
        step(i)
    if prof:
        with torch.profiler.profile() as p:
            for i in range(n):
                step(10 + i)
        return p
    t0 = time.perf_counter()
    for i in range(n):
        step(10 + i)
    return n * 64 / (time.perf_counter() - t0)

ips = {1: [], 2: []}
for r in range(runs):
    for t in ((1, 2) if r % 2 == 0 else (2, 1)):
        ips[t].append(run(t, steps))
for t in (1, 2):
    v = ips[t]
    print(f"ips {t} {statistics.median(v):.1f} {min(v):.1f} {max(v):.1f}")
p = run(2, 20, prof=True)
print("profile")
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
PY
grep '^ips' "$tmp/torch" | while read -r _ t med lo hi; do
    echo "   $t thread(s): $med images/s (min $lo, max $hi)"
done

echo "== prunelab bench --backend simd --model configs/models/$model.yaml --runs $runs --threads 2"
"$prunelab" bench --backend simd --model "configs/models/$model.yaml" --runs "$runs" --threads 2 \
    --csv "$tmp/bench.csv" > "$tmp/bench.txt"
grep -E '^\| [0-9]+ \| [0-9]' "$tmp/bench.txt" | head -n 2 | sed 's/^/   /'

csv() { # median of metric $2 in section $1 at $3 threads
    awk -F, -v s="$1" -v m="$2" -v t="$3" '$1 == s && $3 == "simd" && $4 == t && $5 == m { print $6; exit }' "$tmp/bench.csv"
}
echo "== side by side (FLOP per image: prunelab's count of the network, forward + both gradients)"
for t in 1 2; do
    pi=$(csv train images_per_second "$t")
    pg=$(csv train gflops "$t")
    probe=$(csv probe fma_gflops "$t")
    ti=$(awk -v t="$t" '$1 == "ips" && $2 == t { print $3 }' "$tmp/torch")
    awk -v t="$t" -v pi="$pi" -v pg="$pg" -v probe="$probe" -v ti="$ti" 'BEGIN {
        f = pg / pi  # GFLOP per image
        printf "   %d thread(s): prunelab %.0f images/s, %.1f GFLOP/s = %.0f%% of the probe (%.0f GFLOP/s); PyTorch %.0f images/s, %.1f GFLOP/s = %.0f%%; prunelab/PyTorch %.2fx\n",
            t, pi, pg, 100 * pg / probe, probe, ti, ti * f, 100 * ti * f / probe, pi / ti }'
done
echo "== prunelab: where a training step goes (ms per step, by layer type)"
awk '/where a training step of batch 64 goes/ { on = 1; next } on && /^\|/ { print "   " $0; seen = 1; next } seen { exit }' "$tmp/bench.txt"
echo "== PyTorch: self CPU time per operator, 20 steps at 2 threads"
sed -n '/^profile$/,$p' "$tmp/torch" | sed '1d' | sed 's/^/   /'
echo "== load at the end: $(uptime)"
