#!/usr/bin/env bash
# retrain.rewind (lottery tickets): rewinding to the baseline's own last
# epoch changes nothing (the rewind source is rebuilt bit for bit), rewinding
# to init or to a random initialisation does, and every misuse is a one-line
# config error at the key's position.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp lottery

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1 ($(head -c 300 "$T/err"))"; }
one_line() {
    if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -Eq -- "$1" "$T/err"; then
        no "want one stderr line matching '$1', got: $(head -c 300 "$T/err")"
    else ok; fi
}

base() { # REWIND-LINE
    cat <<YAML
name: lottery
seed: 4
model: configs/models/lenet_300_100.yaml
dataset: {plugin: synthetic, train_count: 512, test_count: 256}
backend: ref
train: {epochs: 2, batch_size: 64}
prune: {criterion: l1, granularity: weight, schedule: oneshot, sparsity: 0.6}
retrain: {epochs: 0$1}
report: {latency_runs: 1, plots: false}
YAML
}
final_norms() { # DIR: the final model's per-layer weight norms (norms/<run>.csv), run id cut off
    awk -F, '$2 == "final"' "$1"/norms/*.csv | cut -d, -f2-
}

base "" >"$T/none.yaml"
base ", rewind: 'epoch:2'" >"$T/last.yaml"
base ", rewind: init" >"$T/init.yaml"
base ", rewind: random" >"$T/random.yaml"
for v in none last init random; do
    run run "$T/$v.yaml" --out "$T/out-$v" --threads 1
    rc_is 0
done
case="rewind to the last baseline epoch is the trained weights, bit for bit"
a=$(final_norms "$T/out-none") b=$(final_norms "$T/out-last")
[ -n "$a" ] && [ "$a" = "$b" ] && ok || no "final weights differ: $(diff <(echo "$a") <(echo "$b") | head -3)"
case="rewind to init and to random give other weights"
c=$(final_norms "$T/out-init") d=$(final_norms "$T/out-random")
[ -n "$c" ] && [ "$c" != "$a" ] && [ "$d" != "$c" ] && [ "$d" != "$a" ] && ok || no "init or random equals another"
case="the run says what it rewound to"
run run "$T/last.yaml" --out "$T/out-last2" --threads 1
grep -q "rewind: surviving weights reset (epoch:2)" "$T/out" && ok || no "no rewind line in: $(head -c 300 "$T/out")"

# a sweep over retrain.rewind: one plot series per value, each named
sed 's/plots: false/plots: true/' "$T/init.yaml" >"$T/sweep.yaml"
printf 'sweep:\n  retrain.rewind: [init, random]\n' >>"$T/sweep.yaml"
run run "$T/sweep.yaml" --out "$T/out-sweep" --threads 1 --quiet
rc_is 0
case="the plot has a series per rewind"
if command -v gnuplot >/dev/null 2>&1; then
    svg="$T/out-sweep/acc_vs_sparsity.svg"
    grep -q 'retrain.rewind=init' "$svg" 2>/dev/null && grep -q 'retrain.rewind=random' "$svg" && ok ||
        no "$svg lacks a series per retrain.rewind value"
else
    ok # no gnuplot: no plots (report_plot.c warns); nothing to check
fi

# misuse: one line, exit 2, at the key
sed 's/granularity: weight/granularity: channel/' "$T/init.yaml" >"$T/chan.yaml"
run validate "$T/chan.yaml"
rc_is 2; one_line 'chan.yaml:8:[0-9]+: retrain.rewind needs prune.granularity: weight'
base ", rewind: 'epoch:3'" >"$T/past.yaml"
run validate "$T/past.yaml"
rc_is 2; one_line 'past.yaml:8:[0-9]+: retrain.rewind: epoch:3 is past the baseline'
base ", rewind: later" >"$T/bad.yaml"
run validate "$T/bad.yaml"
rc_is 2; one_line "bad.yaml:8:[0-9]+: retrain.rewind: unknown value 'later' \(give init, epoch:K, random or none\)"
base ", rewind: 'epoch:x'" >"$T/badk.yaml"
run validate "$T/badk.yaml"
rc_is 2; one_line "retrain.rewind: 'epoch:x' needs a whole number"
sed 's/^train: {epochs: 2, batch_size: 64}/train: {epochs: 2, batch_size: 64, rewind: init}/' "$T/none.yaml" >"$T/ontrain.yaml"
run validate "$T/ontrain.yaml"
rc_is 2; one_line 'train.rewind: rewinding applies to retraining only'
run validate "$T/none.yaml" --set retrain.rewind=init --set prune=null
rc_is 2; one_line 'retrain.rewind: nothing is pruned'

pl_summary
