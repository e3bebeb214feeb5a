#!/usr/bin/env bash
# test_cli.sh BUILD_DIR SOURCE_DIR — the CLI contract of docs/design.md: exit
# status (0 ok, 1 run failed / regression, 2 usage or configuration error),
# errors as ONE line "prunelab: ..." on stderr naming the file (and
# line:col), `validate`, `plugins` (search path, shadowing, refusals),
# `compare` and a tiny `run` on the synthetic dataset.
# Prints "N passed, M failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp cli

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1; stderr: $(head -c 400 "$T/err")"; }
out_has() { grep -Eq -- "$1" "$T/out" && ok || no "stdout lacks /$1/: $(head -c 400 "$T/out")"; }
err_has() { grep -Eq -- "$1" "$T/err" && ok || no "stderr lacks /$1/: $(head -c 400 "$T/err")"; }
err_lacks() { grep -Eq -- "$1" "$T/err" && no "stderr has /$1/: $(head -c 400 "$T/err")" || ok; }
out_empty() { [ ! -s "$T/out" ] && ok || no "stdout not empty: $(head -c 200 "$T/out")"; }
err_empty() { [ ! -s "$T/err" ] && ok || no "stderr not empty: $(head -c 400 "$T/err")"; }
# the whole of stderr is one line "prunelab: ..." matching $1
one_line() {
    local n
    n=$(wc -l <"$T/err")
    if [ "$n" -ne 1 ]; then
        no "stderr has $n lines, want 1: $(head -c 400 "$T/err")"
    elif ! grep -Eq -- "^prunelab: .*$1" "$T/err"; then
        no "stderr line does not match /^prunelab: .*$1/: $(cat "$T/err")"
    else
        ok
    fi
}

# ---- help, version, usage errors ------------------------------------------------
run --help
rc_is 0; out_has '^usage: prunelab <command>'; out_has 'validate EXPERIMENT.yaml'; err_empty
run -h
rc_is 0; out_has '^usage: prunelab'
run --version
rc_is 0; out_has '^prunelab [0-9]+\.[0-9]+\.[0-9]+ .*plugin ABI [0-9]+\.[0-9]+'; err_empty
run
rc_is 2; out_empty; err_has '^usage: prunelab'
run frobnicate
rc_is 2; out_empty; one_line "unknown command 'frobnicate'"
run --frobnicate plugins
rc_is 2; out_empty; one_line "unknown option '--frobnicate'"
run validate experiments/seed.yaml --frobnicate
rc_is 2; one_line "unknown option '--frobnicate'"
run validate
rc_is 2; one_line 'validate needs exactly one EXPERIMENT.yaml'
run validate experiments/seed.yaml --set
rc_is 2; one_line '--set needs key=value'
run validate experiments/seed.yaml --threads 0
rc_is 2; one_line '--threads needs an integer'
run plugins extra
rc_is 2; one_line "plugins takes no arguments"

# ---- validate -------------------------------------------------------------------
run validate experiments/seed.yaml
rc_is 0; err_empty
out_has 'model simple_cnn'
out_has '^ *conv1 +conv2d +4x28x28 +40 +28,224'
out_has '^ *fc2 +linear +10x1x1 +650 +640'
out_has '^ *total +26,138 +110,400'
out_has 'conv1 +remove 2 of 4 channels'

run validate "$T/none.yaml"
rc_is 2; one_line "$T/none.yaml"

# a misspelt key in a file: file:line:col, the key and a suggestion, one line
cat >"$T/typo.yaml" <<'EOF'
name: typo
model: configs/models/simple_cnn.yaml
train:
  epochz: 1
EOF
run validate "$T/typo.yaml"
rc_is 2; out_empty
one_line "typo\.yaml:4:3: unknown key 'epochz'.*did you mean 'epochs'"
grep -Eq "^prunelab: .*:[0-9]+:[0-9]+: unknown key 'epochz'.*did you mean 'epochs'" "$T/err" && ok ||
    no "contract regex: $(cat "$T/err")"
run run "$T/typo.yaml" --out "$T/typo-out"
rc_is 2; one_line "typo\.yaml:4:3: unknown key 'epochz'"
[ ! -e "$T/typo-out/results.csv" ] && ok || no "a refused run wrote results.csv"

run validate experiments/seed.yaml --set train.epochz=1
rc_is 2; one_line "--set train\.epochz=1: unknown key 'epochz'.*did you mean 'epochs'"
run validate experiments/seed.yaml --set prune.criterion=../evil
rc_is 2; one_line "'\.\./evil'.*(never a path|never paths)"
run validate experiments/seed.yaml --set prune.criterion.plugin=/tmp/evil
rc_is 2; one_line "'/tmp/evil'"
run validate experiments/seed.yaml --set prune.criterion=L1
rc_is 2; one_line "'L1'"
run validate experiments/seed.yaml --set prune.criterion=l3
rc_is 2; one_line "unknown criterion plugin 'l3'.*available: .*l1"
err_has 'available: .*l1, l2, .*random, taylor'
run validate experiments/seed.yaml --set prune.criterion=tayler
rc_is 2; one_line "did you mean 'taylor'"
run validate experiments/seed.yaml --set prune.schedule=oneshoot
rc_is 2; one_line "unknown schedule plugin 'oneshoot'.*did you mean 'oneshot'.*global.*iterative"
run validate experiments/seed.yaml --set backend=nope
rc_is 2; one_line "unknown backend plugin 'nope'.*ref.*simd"
run validate experiments/seed.yaml --set prune.criterion.batches=3
rc_is 2; one_line "unknown parameter 'batches' for criterion plugin 'l1'"

# ---- plugins ----------------------------------------------------------------------
run plugins
rc_is 0
for kn in criterion:criteria:l1 criterion:criteria:l2 criterion:criteria:random \
    criterion:criteria:taylor schedule:schedules:oneshot schedule:schedules:iterative \
    schedule:schedules:global dataset:datasets:idx dataset:datasets:synthetic \
    backend:backends:ref backend:backends:simd; do
    IFS=: read -r kind dir name <<<"$kn"
    case="prunelab plugins ($name)"
    out_has "^$kind +$name +[^ ]+ .* $B/plugins/$dir/$name\.so$"
done
case="prunelab plugins"
grep -q '(shadows)' "$T/out" && no "shadows without a second dir" || ok

# --plugin-path adds a folder, first on the path; what it hides is shown
mkdir -p "$T/pp/criteria" "$T/pp2/criteria"
cp "$B/plugins/criteria/l1.so" "$T/pp/criteria/l1.so"
cp "$B/testplugins/nan_scores.so" "$T/pp/criteria/nan_scores.so"
cp "$B/plugins/criteria/l1.so" "$T/pp2/criteria/l1.so"
run --plugin-path "$T/pp" plugins
rc_is 0
out_has "^criterion +nan_scores +.* $T/pp/criteria/nan_scores\.so$"
out_has "^criterion +l1 +.* $T/pp/criteria/l1\.so$"
grep -A1 -E "^criterion +l1 " "$T/out" | grep -Eq "\(shadows\) +$B/plugins/criteria/l1\.so$" && ok ||
    no "l1 does not show that it shadows the build's l1: $(cat "$T/out")"
out_has "^criterion +l2 +.* $B/plugins/criteria/l2\.so$"
run plugins --plugin-path="$T/pp"
rc_is 0; out_has "^criterion +nan_scores "
# PRUNELAB_PLUGIN_PATH comes after --plugin-path, before the build tree
case="PRUNELAB_PLUGIN_PATH=pp prunelab --plugin-path pp2 plugins"
PRUNELAB_PLUGIN_PATH="$T/pp" "$P" --plugin-path "$T/pp2" plugins >"$T/out" 2>"$T/err"
rc=$?
rc_is 0
out_has "^criterion +l1 +.* $T/pp2/criteria/l1\.so$"
grep -A1 -E "^criterion +l1 " "$T/out" | grep -Eq "\(shadows\) +$T/pp/criteria/l1\.so$" && ok ||
    no "pp2's l1 does not shadow pp's: $(cat "$T/out")"
out_has "^criterion +nan_scores +.* $T/pp/criteria/nan_scores\.so$"

# a plugin from --plugin-path is usable by name
run validate experiments/seed.yaml --plugin-path "$T/pp" --set prune.criterion=nan_scores
rc_is 0; out_has "criterion +nan_scores .*$T/pp/criteria/nan_scores\.so"
run validate experiments/seed.yaml --set prune.criterion=nan_scores
rc_is 2; one_line "unknown criterion plugin 'nan_scores'"

# broken and refused plugins: `plugins` warns and goes on; using one is exit 2
mkdir -p "$T/broken/criteria" "$T/dup/criteria" "$T/ww/criteria" "$T/wwf/criteria"
cp "$B/testplugins/abi_major.so" "$T/broken/criteria/abi_major.so"
printf 'not a shared object\n' >"$T/broken/criteria/x.so"
run --plugin-path "$T/broken" plugins
rc_is 0
out_has "^criterion +l1 "
err_has "warning: skipping .*abi_major\.so.*ABI major 2"
err_has "warning: skipping .*x\.so.*not a loadable shared object"
run validate experiments/seed.yaml --plugin-path "$T/broken" --set prune.criterion=abi_major
rc_is 2; one_line "abi_major\.so: plugin ABI major 2"
run validate experiments/seed.yaml --plugin-path "$T/broken" --set prune.criterion=x
rc_is 2; one_line "x\.so: not a loadable shared object"

cp "$B/plugins/criteria/l1.so" "$T/dup/criteria/l1.so"
cp "$B/plugins/criteria/l1.so" "$T/dup/l1.so"
run validate experiments/seed.yaml --plugin-path "$T/dup"
rc_is 2; one_line "two criterion plugins named 'l1' in one directory"

cp "$B/plugins/criteria/l1.so" "$T/ww/criteria/l1.so"
chmod 0777 "$T/ww/criteria"
run validate experiments/seed.yaml --plugin-path "$T/ww"
rc_is 2; one_line "l1\.so: refusing a plugin in a world-writable directory"

cp "$B/plugins/criteria/l1.so" "$T/wwf/criteria/l1.so"
chmod 0666 "$T/wwf/criteria/l1.so"
run validate experiments/seed.yaml --plugin-path "$T/wwf"
rc_is 2; one_line "l1\.so: refusing a world-writable plugin file"

# ---- compare ------------------------------------------------------------------------
run compare "$T/missing.csv" "$T/missing2.csv"
rc_is 2; out_empty; one_line "missing\.csv"
run compare "$T/only-one.csv"
rc_is 2; one_line 'compare needs BASELINE.csv CURRENT.csv'

# ---- a tiny run on synthetic data ----------------------------------------------------
cat >"$T/tiny.yaml" <<'EOF'
name: tiny
seed: 3
model: configs/models/lenet_300_100.yaml
dataset: {plugin: synthetic, train_count: 256, test_count: 128}
backend: ref
train: {epochs: 1, batch_size: 64}
prune: {criterion: l1, granularity: neuron, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1}
report: {latency_runs: 1, plots: false}
EOF
run run "$T/tiny.yaml" --out "$T/out-tiny" --threads 1 --quiet
rc_is 0
case="run tiny: results.csv"
csv="$T/out-tiny/results.csv"
if [ -f "$csv" ]; then
    ok
    header=$(head -1 "$csv")
    for col in run_id experiment model dataset backend seed criterion schedule granularity \
        target_sparsity achieved_sparsity params_before params_after nonzero_params_after \
        macs_before macs_after flops_before flops_after acc_baseline acc_pruned acc_retrained \
        acc_final latency_ms_before latency_ms_after train_seconds status baseline_seconds \
        macs_after_physical; do
        case ",$header," in
        *",$col,"*) ok ;;
        *) no "results.csv header lacks $col: $header" ;;
        esac
    done
    case "$header" in
    run_id,experiment,model,dataset,backend,seed,criterion,schedule,granularity,target_sparsity,achieved_sparsity,*) ok ;;
    *) no "results.csv header does not start with the contract's columns: $header" ;;
    esac
    [ "$(wc -l <"$csv")" -eq 2 ] && ok || no "results.csv has $(wc -l <"$csv") lines, want 2"
    # one row: lenet_300_100 has 266,610 params; neuron pruning at 0.5, status ok
    awk -F, 'NR==1 { for (i = 1; i <= NF; i++) c[$i] = i }
             NR==2 { exit !($c["experiment"] == "tiny" && $c["dataset"] == "synthetic" &&
                            $c["criterion"] == "l1" && $c["params_before"] == 266610 &&
                            $c["params_after"] < 266610 && $c["target_sparsity"] == 0.5 &&
                            $c["status"] == "ok") }' "$csv" && ok || no "unexpected row: $(cat "$csv")"
else
    no "no $csv (stderr: $(head -c 400 "$T/err"))"
fi
[ ! -e reports/tiny ] && ok || no "--out was ignored: reports/tiny exists"

run run "$T/tiny.yaml" --out "$T/out-bad" --set dataset.train_count=0
rc_is 2; one_line "train_count"

pl_summary
