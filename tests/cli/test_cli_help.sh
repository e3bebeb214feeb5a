#!/usr/bin/env bash
# test_cli_help.sh BUILD_DIR SOURCE_DIR — a CLI that explains itself:
# `prunelab COMMAND --help` against the golden texts in
# tests/fixtures/help/, options that do not apply to a command (exit 2, one
# line), `--set key=null`, errors pointing at the --set rather than the
# file, hints for a bare sweep key and for `seed: [1, 2]`, `validate` on a
# missing dataset, the searched directories of an unknown plugin, and
# `compare --only-common`.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp help

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1; stderr: $(head -c 400 "$T/err")"; }
out_has() { grep -Eq -- "$1" "$T/out" && ok || no "stdout lacks /$1/: $(head -c 400 "$T/out")"; }
out_lacks() { grep -Eq -- "$1" "$T/out" && no "stdout has /$1/" || ok; }
one_line() {
    local n
    n=$(wc -l <"$T/err")
    if [ "$n" -ne 1 ]; then
        no "stderr has $n lines, want 1: $(head -c 400 "$T/err")"
    elif ! grep -Fq -- "$1" "$T/err"; then
        no "stderr does not contain '$1': $(cat "$T/err")"
    else
        ok
    fi
}
err_lacks() { grep -Fq -- "$1" "$T/err" && no "stderr has '$1': $(cat "$T/err")" || ok; }

# ---- help texts (golden) -------------------------------------------------------
for c in run validate sensitivity plugins plugin-check compare report bench export eval; do
    run "$c" --help
    rc_is 0
    cmp -s "$T/out" "tests/fixtures/help/$c.txt" && ok ||
        no "differs from tests/fixtures/help/$c.txt: $(diff "tests/fixtures/help/$c.txt" "$T/out" | head -5)"
    run help "$c"
    cmp -s "$T/out" "tests/fixtures/help/$c.txt" && ok || no "'help $c' differs from '$c --help'"
    out_has '^example:'
done
run --help
rc_is 0
cmp -s "$T/out" tests/fixtures/help/global.txt && ok || no "differs from tests/fixtures/help/global.txt"
run frob --help
rc_is 2; one_line "unknown command 'frob'"

# ---- options that do not apply ---------------------------------------------------
run run experiments/seed.yaml --tolerance acc=1
rc_is 2; one_line "--tolerance does not apply to 'run'"
run compare a.csv b.csv --set seed=2
rc_is 2; one_line "--set does not apply to 'compare'"
run validate experiments/seed.yaml --out "$T/x"
rc_is 2; one_line "--out does not apply to 'validate'"
run report "$T" --only-common
rc_is 2; one_line "--only-common does not apply to 'report'"
run plugins --kind criterion
rc_is 2; one_line "--kind does not apply to 'plugins'"
run plugins --threads 1 --quiet
rc_is 0

# ---- --set key=null, --set errors -------------------------------------------------
run validate experiments/seed.yaml --set prune.sparsity=0.5
rc_is 2; one_line "--set prune.sparsity=0.5: prune: give either sparsity"
run validate experiments/seed.yaml --set prune.layers=null --set prune.sparsity=0.5
rc_is 0; out_has 'conv1 +remove 2 of 4 channels'; out_has 'conv2 +remove 4 of 8 channels'
run validate experiments/seed.yaml --set 'prune.layers="null"'
rc_is 2
run validate experiments/seed.yaml --set prune.layers.conv1.count=9
rc_is 2; one_line "prunelab: --set prune.layers.conv1.count=9: count 9 would remove every unit"
run validate experiments/seed.yaml --set prune.layers.conv9.count=1
rc_is 2; one_line "prunelab: --set prune.layers.conv9.count=1: prune.layers names 'conv9'"; err_lacks ":0:0:"
run validate experiments/seed.yaml --set criterion=l2
rc_is 2; one_line "did you mean 'prune.criterion'?"

# ---- hints -----------------------------------------------------------------------
printf 'name: a\nmodel: configs/models/simple_cnn.yaml\nsweep:\n  sparsity: [0.5, 0.75]\n' >"$T/bare.yaml"
run validate "$T/bare.yaml"
rc_is 2; one_line "bare.yaml:4:3: unknown key 'sparsity' at top level (did you mean 'prune.sparsity'?)"
printf 'name: a\nseed: [1, 2]\nmodel: configs/models/simple_cnn.yaml\n' >"$T/seeds.yaml"
run validate "$T/seeds.yaml"
rc_is 2; one_line "seeds.yaml:2:7: seed: expected a non-negative integer (got a list; to run several values, list them under sweep: {seed: [...]})"

# ---- errors in file order ------------------------------------------------------------
printf 'name: a\nmodel: configs/models/simple_cnn.yaml\nprune:\n  sparsity: 1.5\ntrain:\n  epochz: 1\n' >"$T/order1.yaml"
run validate "$T/order1.yaml"
rc_is 2; one_line "order1.yaml:4:13: prune.sparsity must be in [0, 1)"
printf 'name: a\nmodel: configs/models/simple_cnn.yaml\ntrain:\n  epochz: 1\nprune:\n  sparsity: 1.5\n' >"$T/order2.yaml"
run validate "$T/order2.yaml"
rc_is 2; one_line "order2.yaml:4:3: unknown key 'epochz' in train"
printf 'name: a\nmodel: configs/models/simple_cnn.yaml\nretrain: {epochs: -1}\ntrain: {batch_size: 0}\n' >"$T/order3.yaml"
run validate "$T/order3.yaml"
rc_is 2; one_line "order3.yaml:3:"

# ---- validate checks data and plugins ------------------------------------------
run validate experiments/seed.yaml --set dataset.path="$T/no-such-dir"
rc_is 2; one_line "no-such-dir"
[ ! -s "$T/out" ] && ok || no "half a plan on stdout before the error: $(head -c 200 "$T/out")"
run validate experiments/seed.yaml --set prune.criterion=nope
rc_is 2; one_line "unknown criterion plugin 'nope'"; one_line "searched: $B/plugins"

# ---- compare --only-common ----------------------------------------------------------
H="run_id,experiment,model,dataset,backend,seed,criterion,schedule,granularity,target_sparsity,achieved_sparsity,params_before,params_after,nonzero_params_after,macs_before,macs_after,macs_after_physical,flops_before,flops_after,acc_baseline,acc_pruned,acc_retrained,acc_final,latency_ms_before,latency_ms_after,train_seconds,baseline_seconds,status,sweep"
row() { echo "$1,e,m,d,ref,1,l1,oneshot,channel,0.5000,0.5000,100,50,50,1000,500,500,2000,1000,90.00,80.00,89.00,$2,1.0,0.5,1.0,1.0,ok,seed=1"; }
{ echo "$H"; row aaaa 89.00; row bbbb 89.00; row cccc 89.00; } >"$T/full.csv"
{ echo "$H"; row bbbb 89.00; row dddd 70.00; } >"$T/shard.csv"
run compare "$T/full.csv" "$T/shard.csv"
rc_is 1; out_has 'missing in current'
run compare "$T/full.csv" "$T/shard.csv" --only-common
rc_is 0; out_lacks 'missing in current'; out_lacks 'dddd'; out_has '1 rows compared'; out_has '3 rows in one file only skipped'
{ echo "$H"; row bbbb 80.00; } >"$T/shard-bad.csv"
run compare "$T/full.csv" "$T/shard-bad.csv" --only-common
rc_is 1; out_has 'bbbb'; out_has 'REGRESSION|regression'

pl_summary
