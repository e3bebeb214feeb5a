#!/usr/bin/env bash
# test_install.sh BUILD_DIR SOURCE_DIR — a new user's path: install prunelab
# under a temporary prefix, then, from an EMPTY folder, validate and run
# bundled recipes by name (`prunelab run quickstart`) and by their source
# tree path (experiments/seed.yaml, whose model: configs/models/... is
# found in the installed share folder), and a model by name
# (--set model=lenet5); an unknown model names the folders searched.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
pl_tmp inst

# run COMMAND ARGS...: any command, not only prunelab
run() {
    case="$*"
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
}
rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1; stdout: $(tail -c 600 "$T/out"); stderr: $(tail -c 600 "$T/err")"; }
out_has() { grep -Eq -- "$1" "$T/out" && ok || no "stdout lacks /$1/: $(head -c 800 "$T/out")"; }
err_has() { grep -Eq -- "$1" "$T/err" && ok || no "stderr lacks /$1/: $(head -c 800 "$T/err")"; }

PREFIX="$T/prefix"
run cmake --install "$B" --prefix "$PREFIX"
rc_is 0
PL="$PREFIX/bin/prunelab"
case="installed share folder"
for f in models/simple_cnn.yaml models/lenet5.yaml models/lenet_300_100.yaml models/vgg_mini.yaml \
         experiments/quickstart.yaml experiments/seed.yaml experiments/compare-criteria.yaml; do
    [ -f "$PREFIX/share/prunelab/$f" ] && ok || no "no $PREFIX/share/prunelab/$f"
done

mkdir "$T/empty" && cd "$T/empty" || exit 2
run "$PL" validate quickstart
rc_is 0; out_has "model simple_cnn: input 1x28x28"
run "$PL" run quickstart --threads 1 --quiet
rc_is 0
case="run quickstart from an empty folder"
[ -f reports/quickstart/results.csv ] && [ -f reports/quickstart/results.tex ] &&
    [ -f reports/quickstart/history.csv ] && ok || no "no report in $T/empty/reports/quickstart: $(ls -R . | head)"
grep -q ',ok,' reports/quickstart/results.csv && ok || no "run not ok: $(cat reports/quickstart/results.csv)"

# the history: every epoch and every prune step, with a test accuracy each
case="history.csv of an iterative run"
run "$PL" run quickstart --threads 1 --quiet --out it --set prune.schedule.plugin=iterative
rc_is 0
n_prune=$(awk -F, '$2 == "prune" && $9 != "" { n++ } END { print n + 0 }' it/history.csv)
[ "$n_prune" -eq 3 ] && ok || no "want 3 prune rows with a test accuracy: $(cat it/history.csv)"
n_rows=$(tail -n +2 it/history.csv | wc -l)
[ "$n_rows" -eq 7 ] && ok || no "want 7 rows (1 train, 3 prune, 3 retrain): $(cat it/history.csv)"
grep -q '"kept": "' it/runs/*.json && ok || no "the record lists no kept units"

run "$PL" validate quickstart --set model=lenet5
rc_is 0; out_has "model lenet5: input 1x28x28"
run "$PL" validate quickstart --set model=resnet20 --set prune.granularity=weight
rc_is 0; out_has "model resnet20: input 1x28x28"
run "$PL" validate quickstart --set model=resnet56
rc_is 2
err_has "model 'resnet56' is not a file and not a bundled model \(searched: .*$PREFIX/share/prunelab/models; found: .*simple_cnn"
run "$PL" validate nosuchrecipe
rc_is 2; err_has "experiment 'nosuchrecipe' is not a file and not a bundled recipe"

# the seed recipe by its source-tree path: the model comes from the share
# folder; its MNIST path does not exist here, which validate reports
run "$PL" validate experiments/seed.yaml
rc_is 2; err_has "data/mnist"
if [ -f "$S/data/mnist/train-images-idx3-ubyte" ] || [ -f "$S/data/mnist/train-images-idx3-ubyte.gz" ]; then
    run "$PL" validate experiments/seed.yaml --set dataset.path="$S/data/mnist"
    rc_is 0; out_has "model simple_cnn"
fi

pl_summary
