#!/usr/bin/env bash
# prunelab sensitivity: each prunable unit pruned alone at each ratio, no
# retraining. On a graph model (pruning groups, members joined by '+'), on
# weight granularity (a unit per layer), the baseline shared with `run`
# through the report's cache, the prune.layers block it writes (which must
# validate as written), and every refusal as one line with exit 2 and
# nothing written.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp sens

one_line() { # PATTERN: stderr is exactly one line matching PATTERN
    if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -Eq -- "$1" "$T/err"; then
        no "want one stderr line matching '$1', got: $(head -c 300 "$T/err")"
    else ok; fi
}
rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1 ($(head -c 300 "$T/err"))"; }

cat >"$T/mob.yaml" <<'YAML'
name: mob
seed: 2
model: configs/models/mobilenet_mini.yaml
dataset: {plugin: synthetic, train_count: 256, test_count: 128}
backend: ref
train: {epochs: 1, batch_size: 64}
prune: {criterion: l1, granularity: channel, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1}
report: {latency_runs: 1, plots: false}
YAML

# the run trains and caches the baseline; sensitivity must reuse it
run run "$T/mob.yaml" --out "$T/mob" --threads 1 --quiet
rc_is 0
run sensitivity "$T/mob.yaml" --out "$T/mob" --threads 1 --ratios 0.25,0.5 --max-drop 100
rc_is 0
case="sensitivity reuses run's baseline"
grep -q "baseline: reusing" "$T/out" && ok || no "no 'baseline: reusing' in: $(head -c 300 "$T/out")"
csv="$T/mob/sensitivity.csv"
case="sensitivity.csv header"
[ "$(head -1 "$csv")" = "unit,members,ratio,achieved,accuracy,acc_drop,params,macs" ] && ok ||
    no "header: $(head -1 "$csv")"
case="every unit at every ratio, a group with several members"
awk -F, 'NR == 2 { if ($1 != "(baseline)" || $3 != "0.00") bad = "row 2 is not the baseline" }
         NR > 2 { n[$1]++; if ($4 <= 0 || $4 >= 1) bad = "achieved " $4 " for " $1 " at " $3
                  if ($2 ~ /\+/) grouped = 1 }
         END { for (u in n) { units++; if (n[u] != 2) bad = u " has " n[u] " rows" }
               if (units < 3) bad = "only " units " units"
               if (!grouped) bad = "no unit with several members"
               if (bad) { print bad; exit 1 } }' "$csv" >"$T/why" && ok || no "$(cat "$T/why")"
case="a pruned unit has fewer MACs than the baseline"
awk -F, 'NR == 2 { base = $8 } NR > 2 && $8 >= base { print $1 " at " $3 ": " $8 " >= " base; exit 1 }' \
    "$csv" >"$T/why" && ok || no "$(cat "$T/why")"

# --max-drop 100: every unit at its largest ratio, and the block validates
layers="$T/mob/sensitivity_layers.yaml"
case="layers block"
n_units=$(awk -F, 'NR > 2 { u[$1] = 1 } END { print length(u) }' "$csv")
n_lines=$(grep -c '{fraction: 0.50}' "$layers")
[ "$n_lines" -eq "$n_units" ] && ok || no "$n_lines lines at 0.50 for $n_units units: $(cat "$layers")"
{
    sed '/^prune:/d' "$T/mob.yaml"
    echo "prune:"
    echo "  criterion: l1"
    echo "  granularity: channel"
    echo "  schedule: oneshot"
    sed -n '/^layers:/,$p' "$layers" | sed 's/^/  /'
} >"$T/from-layers.yaml"
run validate "$T/from-layers.yaml"
rc_is 0

# weight granularity: a unit per prunable layer
cat >"$T/lenet.yaml" <<'YAML'
name: lenet
model: configs/models/lenet_300_100.yaml
dataset: {plugin: synthetic, train_count: 256, test_count: 128}
backend: ref
train: {epochs: 1, batch_size: 64}
prune: {criterion: l1, granularity: weight, sparsity: 0.5}
report: {latency_runs: 1}
YAML
run sensitivity "$T/lenet.yaml" --out "$T/lenet" --threads 1 --ratios 0.5,0.9 --quiet
rc_is 0
case="weight granularity: one unit per prunable layer"
units=$(awk -F, 'NR > 2 { u[$1] = 1 } END { n = 0; for (k in u) n++; print n }' "$T/lenet/sensitivity.csv")
[ "$units" = 2 ] && ok || no "$units units (want fc1 and fc2)"
case="the plot"
[ -s "$T/lenet/sensitivity.png" ] && [ -s "$T/lenet/sensitivity.svg" ] && ok || no "no sensitivity.png/.svg"

# refusals: one line, exit 2, nothing written
printf 'sweep:\n  seed: [1, 2]\n' | cat "$T/mob.yaml" - >"$T/sweep.yaml"
run sensitivity "$T/sweep.yaml" --out "$T/bad1"
rc_is 2; one_line 'sweeps 2 runs; sensitivity analyses one'
sed '/^prune:/d' "$T/mob.yaml" >"$T/noprune.yaml"
run sensitivity "$T/noprune.yaml" --out "$T/bad2"
rc_is 2; one_line 'no prune: section'
sed 's/granularity: channel/granularity: layer/' "$T/mob.yaml" >"$T/layer.yaml"
run sensitivity "$T/layer.yaml" --out "$T/bad3"
rc_is 2; one_line 'granularity layer'
for r in 0.5,0.2 1.5 abc 0.1,,0.2; do
    run sensitivity "$T/mob.yaml" --out "$T/bad4" --ratios "$r"
    rc_is 2; one_line '^prunelab: --ratios'
done
run sensitivity "$T/mob.yaml" --out "$T/bad5" --max-drop -1
rc_is 2; one_line '^prunelab: --max-drop needs'
run run "$T/mob.yaml" --out "$T/bad6" --ratios 0.5
rc_is 2; one_line 'does not apply'
case="nothing written by a refused analysis"
ls -d "$T"/bad* >/dev/null 2>&1 && no "$(ls -d "$T"/bad*)" || ok

pl_summary
