#!/usr/bin/env bash
# bench/seed_pipeline.sh [BUILD_DIR] [PAIRS]
#
# The whole seed pipeline against the seed's own PyTorch script, wall clock,
# side by side: `prunelab run experiments/seed.yaml` (what `make run` runs:
# train one epoch, remove 2 of conv1's 4 filters, retrain one epoch, test,
# plus the latency passes and the report) into a fresh folder, against
# `python3 bench/seed_torch.py` (the seed's script: torchvision's MNIST with
# its per-image transforms, a DataLoader, the same recipe). PAIRS (default
# 3) pairs, the order alternating within each pair (prunelab first, then
# PyTorch first, ...); prints each pair's seconds and ratio, then the
# medians and the ratio of the medians. Both sides use their defaults for
# threads (all cores). Process start, dataset open and checks, every
# evaluation and the report are inside prunelab's time, as the interpreter
# start, imports and dataset decoding are inside PyTorch's.
#
# Also prints, from the last prunelab run, where its wall time went
# (phases from the run record's timings). Needs python3-torch and
# python3-torchvision; without them the script says so and exits 0 (it never
# installs anything). About 1 minute per pair on two quiet cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
pairs=${2:-3}
prunelab=$build/prunelab
. "$root/bench/torch_python.sh"
if [ -n "$py" ] && ! "$py" -c 'import torchvision' >/dev/null 2>&1; then
    py=""
fi
if [ -z "$py" ]; then
    echo "seed_pipeline: PyTorch with torchvision is not installed for python3: nothing to compare."
    echo "  (Debian: apt-get install python3-torch python3-torchvision; this script never installs them)"
    exit 0
fi
[ -x "$prunelab" ] || { echo "seed_pipeline: $prunelab not found (make build, or pass BUILD_DIR)" >&2; exit 2; }
mnist=$root/data/mnist
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -r "$mnist/$f" ] || { echo "seed_pipeline: $mnist/$f is missing (make data)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/torch/MNIST/raw"
for f in "$mnist"/*-ubyte; do ln -s "$f" "$tmp/torch/MNIST/raw/"; done

now() { date +%s.%N; }
pl_run() {
    local t0 t1
    rm -rf "$tmp/pl"
    t0=$(now)
    (cd "$root" && "$prunelab" run experiments/seed.yaml --out "$tmp/pl" --quiet >"$tmp/pl.log" 2>&1) ||
        { cat "$tmp/pl.log" >&2; echo "seed_pipeline: prunelab failed" >&2; exit 1; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}'
}
py_run() {
    local t0 t1
    t0=$(now)
    "$py" "$root/bench/seed_torch.py" "$tmp/torch" >"$tmp/py.log" 2>&1 ||
        { cat "$tmp/py.log" >&2; echo "seed_pipeline: seed_torch.py failed" >&2; exit 1; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}'
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| pair | prunelab s | PyTorch s | ratio |"
echo "|---|---|---|---|"
: >"$tmp/pl.s"
: >"$tmp/py.s"
for i in $(seq 1 "$pairs"); do
    if [ $((i % 2)) -eq 1 ]; then a=$(pl_run); b=$(py_run); else b=$(py_run); a=$(pl_run); fi
    echo "$a" >>"$tmp/pl.s"
    echo "$b" >>"$tmp/py.s"
    printf '| %d | %.2f | %.2f | %.1fx |\n' "$i" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{print b / a}')"
done
median() { sort -g "$1" | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
range() { sort -g "$1" | awk 'NR==1{lo=$1} {hi=$1} END{printf "%.2f..%.2f", lo, hi}'; }
mpl=$(median "$tmp/pl.s")
mpy=$(median "$tmp/py.s")
printf 'median: prunelab %.2f s (%s), PyTorch %.2f s (%s): %.1fx\n' \
    "$mpl" "$(range "$tmp/pl.s")" "$mpy" "$(range "$tmp/py.s")" "$(awk -v a="$mpl" -v b="$mpy" 'BEGIN{print b / a}')"
acc_pl=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} NR==2{print $h["acc_final"]}' "$tmp/pl/results.csv")
acc_py=$(sed -n 's/^accuracy \(.*\)%$/\1/p' "$tmp/py.log")
echo "last test accuracy: prunelab $acc_pl %, PyTorch $acc_py %"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
