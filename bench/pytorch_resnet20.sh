#!/usr/bin/env bash
# bench/pytorch_resnet20.sh [DATA_DIR] [SEEDS] [THREADS] [SPARSITY] [LR_SCHEDULE]
#
# ResNet-20 side by side: `prunelab run experiments/resnet20.yaml` (one cell
# of its sweep: l1 criterion, global schedule, SPARSITY of the channels,
# default 0.5) and the same recipe in PyTorch (bench/resnet20_torch.py: the
# same network, 2 epochs of Adam lr 1e-3 at batch 128, group-aware global L1
# channel pruning, 2 retraining epochs), for each seed in SEEDS (default
# "1 2 3"), then mean ± sd of each side. DATA_DIR (default data/mnist) is a
# folder with the four IDX files of MNIST or Fashion-MNIST, plain or .gz
# (Debian's dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist).
# LR_SCHEDULE (default step, the recipe's) sets both sides' per-epoch
# learning rate in every phase: step (1e-3, then x0.1 each epoch:
# train.lr_schedule.type=step, step_size 1), constant (1e-3 throughout) or
# cosine (train.lr_schedule.type=cosine).
# Training throughput (images/s) of both sides is printed too; compare the
# two sides of one run, not runs of different days (machine load is printed
# at the start and the end). Needs PyTorch (Debian: python3-torch); without
# it only the prunelab side runs. Not a test: about 4 epochs of a 31 M-MAC
# network per seed and side.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-data/mnist}
seeds=${2:-1 2 3}
threads=${3:-2}
sparsity=${4:-0.5}
lrs=${5:-step}
case $lrs in
constant) pl_lrs=(--set train.lr_schedule.type=constant) th_lrs=() ;;
step) pl_lrs=(--set train.lr_schedule.type=step --set train.lr_schedule.step_size=1 --set train.lr_schedule.gamma=0.1)
      th_lrs=(--lr-schedule step --step-size 1 --gamma 0.1) ;;
cosine) pl_lrs=(--set train.lr_schedule.type=cosine) th_lrs=(--lr-schedule cosine) ;;
*) echo "pytorch_resnet20: LR_SCHEDULE must be constant, step or cosine (got $lrs)" >&2; exit 2 ;;
esac
cd "$root"
[ -x build/prunelab ] || { echo "pytorch_resnet20: build/prunelab not found (make build)" >&2; exit 2; }
[ -d "$data" ] || { echo "pytorch_resnet20: $data is not a folder with IDX files" >&2; exit 2; }
data=$(cd "$data" && pwd)
. "$root/bench/torch_python.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one cell of the recipe: its sweep removed, the model path made absolute
sed -e '/^sweep:/,$d' -e "s#^model: *\([^/].*\)#model: $root/\1#" experiments/resnet20.yaml > "$tmp/cell.yaml"
echo "== load at the start: $(uptime)"
echo "== data $data, seeds $seeds, $threads thread(s), l1 + global at $sparsity of the channels, $lrs learning rate"
echo "| seed | side | dense acc | pruned+retrained acc | params after | MACs after | latency before → after (ms) | train images/s |"
echo "|---|---|---|---|---|---|---|---|"
for s in $seeds; do
    t0=$(date +%s.%N)
    build/prunelab run "$tmp/cell.yaml" --set seed="$s" \
        --set prune.criterion=l1 --set prune.schedule.plugin=global --set prune.sparsity="$sparsity" \
        --set dataset.path="$data" --set report.cache="$tmp/cache$s" --threads "$threads" ${pl_lrs[@]+"${pl_lrs[@]}"} \
        --out "$tmp/pl$s" --quiet >/dev/null
    t1=$(date +%s.%N)
    awk -F, -v s="$s" -v secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" '
        NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i }
        NR == 2 {
            imgs = (2 * 60000 + 2 * 60000) # baseline and retraining epochs
            printf "| %s | prunelab | %s | %s | %s | %s | %s → %s | %.0f (whole run incl. tests) |\n", s,
                $h["acc_baseline"], $h["acc_final"], $h["params_after"], $h["macs_after"],
                $h["latency_ms_before"], $h["latency_ms_after"], imgs / secs
        }' "$tmp/pl$s/results.csv" | tee -a "$tmp/pl.md"
    if [ -n "$py" ]; then
        "$py" bench/resnet20_torch.py "$data" --seeds "$s" --epochs 2 --sparsity "$sparsity" \
            --retrain-epochs 2 --batch 128 --threads "$threads" ${th_lrs[@]+"${th_lrs[@]}"} > "$tmp/th$s"
        awk -v s="$s" '
            $3 == "dense" { d = $5; r = $7 }
            $3 == "pruned" { printf "| %s | PyTorch | %s | %s | %s | - | - | %s (dense epochs) |\n", s, d, $5, $9, r }' \
            "$tmp/th$s" | tee -a "$tmp/th.md"
    fi
done
summary() { # file side
    awk -F'|' -v side="$2" '{ d[NR] = $4; f[NR] = $5; n = NR }
        END {
            if (!n) exit
            for (i = 1; i <= n; i++) { sd += d[i]; sf += f[i] }
            md = sd / n; mf = sf / n
            for (i = 1; i <= n; i++) { vd += (d[i] - md) ^ 2; vf += (f[i] - mf) ^ 2 }
            k = n > 1 ? n - 1 : 1
            printf "%s: dense %.2f ± %.2f, pruned+retrained %.2f ± %.2f (n = %d)\n", side, md, sqrt(vd / k), mf, sqrt(vf / k), n
        }' "$1"
}
echo "== mean ± sd over seeds"
summary "$tmp/pl.md" prunelab
[ -s "$tmp/th.md" ] && summary "$tmp/th.md" PyTorch
echo "== load at the end: $(uptime)"
