#!/usr/bin/env bash
# bench/pytorch_model_compare.sh [MODEL] [BUILD_DIR] [STEPS] [RUNS]
#
# Training throughput of one network in prunelab and in PyTorch, side by
# side in one script, at 1 and 2 threads (batch 64, Adam lr 1e-3, MNIST).
# MODEL is resnet20 (default; configs/models/resnet20.yaml against
# bench/resnet20_torch.py's ResNet20) or simple_cnn (configs/models/
# simple_cnn.yaml against bench/mnist_simplecnn.py's SimpleCNN).
#
# Both sides are measured the same way: STEPS (default 150) training steps
# of batch 64 over images already in memory, after 10 untimed ones, RUNS
# (default 3) times with the thread counts alternating (1,2 then 2,1 ...);
# the median images/s with min..max.
#  - PyTorch: a tight loop (zero_grad, forward, cross-entropy, backward,
#    Adam), then a torch.profiler table of 20 steps at 2 threads (self CPU
#    time per operator).
#  - prunelab: bench/train_steps.c, compiled here against
#    build/libplcore.a: pl_train_step (what a training phase calls:
#    forward, loss, backward, Adam) on a fresh model, the FMA probe in the
#    same repetitions, the weights hash after the steps at 1 and at 2
#    threads (must be equal), prunelab's per-layer-type step profile at 1
#    and 2 threads and the process's peak RSS.
#    PL_EPOCHS=1 (environment) also runs `prunelab bench --model` (whole
#    epochs through the real training loop; about 15 minutes for resnet20).
#
# Printed: images/s on both sides, the ratio, the step's GFLOP/s (both
# sides counted with prunelab's FLOP count of the network) and its share of
# the FMA probe at that thread count, and where a prunelab step goes by
# layer type. Machine load is printed at the start and the end; on a shared
# machine compare the two sides of one run, never runs of different times.
# Needs PyTorch (Debian: python3-torch); without it the script says so and
# exits 0 (it never installs anything). resnet20 with the defaults takes
# about 5 minutes on two quiet cores.
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
if [ ! -x "$prunelab" ] || [ ! -f "$build/libplcore.a" ]; then
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

echo "== prunelab (bench/train_steps.c, simd), $model, $runs x $steps steps of batch 64 per thread count"
libs=("$build/libplcore.a")
[ -f "$build/libpl_onnx_pb.a" ] && libs+=("$build/libpl_onnx_pb.a")
extra=$(pkg-config --libs yaml-0.1 zlib 2>/dev/null || echo "-lyaml -lz")
pc=$(pkg-config --libs libprotobuf-c 2>/dev/null || true)
${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -I"$root/core/src" -I"$root/core/include" -o "$tmp/train_steps" \
    "$root/bench/train_steps.c" "${libs[@]}" $extra $pc -lm -ldl -lpthread
"$tmp/train_steps" "$build/plugins" "configs/models/$model.yaml" "$root/data/mnist" "$steps" "$runs" > "$tmp/pl"
get() { awk -v k="$1" -v t="$2" -v f="$3" '$1 == k && $2 == t { print $f; exit }' "$tmp/pl"; }
for t in 1 2; do
    echo "   $t thread(s): $(get ips $t 3) images/s (min $(get ips $t 4), max $(get ips $t 5)); CPU $(get cpu $t 3) s per step; weights hash $(get hash $t 3)"
done
if [ "$(get hash 1 3)" != "$(get hash 2 3)" ]; then
    echo "pytorch_model_compare: the weights after the same steps differ between 1 and 2 threads" >&2
    exit 1
fi
# GFLOP per training image as `prunelab bench` counts it (README, bench/README.md): 2 x (forward +
# weight-gradient + input-gradient MACs of the conv and linear layers, none for the first layer's input)
case "$model" in
resnet20) gflop=0.185905920 ;;  # 2 x (3 x 31,021,952 - 112,896)
simple_cnn) gflop=0.000606 ;;
esac

echo "== side by side (FLOP per image: prunelab's count of the network, forward + both gradients: $gflop GFLOP)"
for t in 1 2; do
    pi=$(get ips $t 3)
    probe=$(get probe $t 3)
    plo=$(get probe $t 4)
    phi=$(get probe $t 5)
    ti=$(awk -v t="$t" '$1 == "ips" && $2 == t { print $3 }' "$tmp/torch")
    awk -v t="$t" -v pi="$pi" -v f="$gflop" -v probe="$probe" -v plo="$plo" -v phi="$phi" -v ti="$ti" 'BEGIN {
        printf "   %d thread(s): prunelab %.0f images/s, %.1f GFLOP/s = %.0f%% of the probe (%.0f GFLOP/s, %.0f..%.0f); PyTorch %.0f images/s, %.1f GFLOP/s = %.0f%%; prunelab/PyTorch %.2fx\n",
            t, pi, pi * f, 100 * pi * f / probe, probe, plo, phi, ti, ti * f, 100 * ti * f / probe, pi / ti }'
done
echo "== prunelab: where a training step goes (ms per step over 20 steps, by layer type; a fused ReLU counts to the layer before it)"
for t in 1 2; do
    awk -v t="$t" '$1 == "prof" && $2 == t { printf "   %d thread(s)  %-16s forward %7.2f  backward %7.2f\n", t, $3, $4, $5 }' "$tmp/pl"
done
echo "   peak RSS of the prunelab process (model, optimizer state, 10,240 images as floats): $(( $(awk '$1 == "maxrss" { print $2 }' "$tmp/pl") / 1024 )) MB"
if [ "${PL_EPOCHS:-0}" = 1 ]; then
    echo "== prunelab bench --backend simd --model configs/models/$model.yaml --runs $runs --threads 2 (whole epochs)"
    "$prunelab" bench --backend simd --model "configs/models/$model.yaml" --runs "$runs" --threads 2 > "$tmp/bench.txt"
    grep -E '^\| [0-9]+ \| [0-9]' "$tmp/bench.txt" | head -n 2 | sed 's/^/   /'
fi
echo "== PyTorch: self CPU time per operator, 20 steps at 2 threads"
sed -n '/^profile$/,$p' "$tmp/torch" | sed '1d' | sed 's/^/   /'
echo "== load at the end: $(uptime)"
