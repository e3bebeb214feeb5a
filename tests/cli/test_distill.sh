#!/usr/bin/env bash
# test_distill.sh BUILD_DIR SOURCE_DIR — retrain.distill end to end: with
# alpha 0 the pruned network retrains to the very weights plain retraining
# gives (the teacher runs, its term weighs exactly 0), with alpha 0.5 to
# others; a distilled run has its own run id but shares the baseline;
# validate shows it; misuse is a one-line error at the key (exit 2).
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp distill

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1 ($(head -c 300 "$T/err"))"; }
one_line() {
    if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -Eq -- "$1" "$T/err"; then
        no "want one stderr line matching '$1', got: $(head -c 300 "$T/err")"
    else ok; fi
}
final_norms() { awk -F, '$2 == "final"' "$1"/norms/*.csv | cut -d, -f2-; }

exp() { # RETRAIN-EXTRA TRAIN-EXTRA
    cat <<YAML
name: distill
seed: 2
model: configs/models/simple_cnn.yaml
dataset: {plugin: synthetic, train_count: 512, test_count: 256}
backend: ref
train: {epochs: 1, batch_size: 64$2}
prune: {criterion: l1, granularity: channel, schedule: oneshot, sparsity: 0.5}
retrain:
  epochs: 1
$1
report: {latency_runs: 1, plots: false, cache: $T/cache}
YAML
}
exp "" "" >"$T/plain.yaml"
exp "  distill: {alpha: 0, temperature: 3}" "" >"$T/zero.yaml"
exp "  distill: {alpha: 0.5, temperature: 3}" "" >"$T/half.yaml"
for v in plain zero half; do
    run run "$T/$v.yaml" --out "$T/out-$v" --threads 1
    rc_is 0
    cp "$T/out" "$T/log-$v"
done
case="alpha 0 retrains to the plain run's weights, bit for bit"
a=$(final_norms "$T/out-plain") b=$(final_norms "$T/out-zero") c=$(final_norms "$T/out-half")
[ -n "$a" ] && [ "$a" = "$b" ] && ok || no "$(diff <(echo "$a") <(echo "$b") | head -3)"
case="alpha 0.5 retrains to other weights"
[ -n "$c" ] && [ "$c" != "$a" ] && ok || no "alpha 0.5 gave the plain weights"
case="the distilled runs say so"
grep -q "distill from the dense baseline: alpha 0.5, temperature 3" "$T/log-half" && ok || no "no distill line"
case="run ids: three runs"
ids=$(for v in plain zero half; do tail -1 "$T/out-$v/results.csv" | cut -d, -f1; done | sort -u | wc -l)
[ "$ids" = 3 ] && ok || no "$ids distinct run ids"
case="one shared baseline"
n=$(ls "$T/cache"/baseline-*.ckpt 2>/dev/null | wc -l)
[ "$n" = 1 ] && ok || no "$n cached baselines"
run validate "$T/half.yaml"
rc_is 0
case="validate shows the teacher"
grep -q "retrain .*distill from the dense baseline (alpha 0.5, temperature 3)" "$T/out" && ok || no "$(grep retrain "$T/out")"

# misuse: one line, exit 2, at the key
exp "  distill: {alpha: 2}" "" >"$T/a.yaml"
run validate "$T/a.yaml"
rc_is 2; one_line 'a.yaml:10:20: retrain.distill.alpha must be a number in \[0, 1\] \(got 2\)'
exp "  distill: {temperature: 0}" "" >"$T/t.yaml"
run validate "$T/t.yaml"
rc_is 2; one_line 't.yaml:10:26: retrain.distill.temperature must be a finite number > 0'
exp "" ", distill: {alpha: 0.5}" >"$T/tr.yaml"
run validate "$T/tr.yaml"
rc_is 2; one_line 'tr.yaml:6:[0-9]+: train.distill: the baseline has no teacher'
run validate "$T/half.yaml" --set finetune.distill.alpha=-1
rc_is 2; one_line 'finetune.distill.alpha must be a number in \[0, 1\]'

pl_summary
