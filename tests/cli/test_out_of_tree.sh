#!/usr/bin/env bash
# test_out_of_tree.sh BUILD_DIR SOURCE_DIR — the plugin author's path end to
# end: install prunelab under a temporary prefix; build
# examples/criterion-example against the INSTALLED plugin.h found through
# pkg-config (PKG_CONFIG_PATH=<prefix>/lib*/pkgconfig); the installed
# prunelab lists the example with --plugin-path, passes it through
# plugin-check, validates and runs a recipe with `prune.criterion: absmax`
# (by --plugin-path and by `plugin_path:`), finds its own bundled plugins
# with no environment variable, and finds the example once it is installed
# under the same prefix.
# Prints "N passed, M failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
pl_tmp oot
chmod 755 "$T"
cd "$T" || exit 2 # nothing below may depend on the source tree as working directory

# run COMMAND ARGS...: any command, not only prunelab
run() {
    case="$*"
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
}
rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1; stdout: $(tail -c 800 "$T/out"); stderr: $(tail -c 800 "$T/err")"; }
out_has() { grep -Eq -- "$1" "$T/out" && ok || no "stdout lacks /$1/: $(head -c 1500 "$T/out")"; }
out_lacks() { grep -Eq -- "$1" "$T/out" && no "stdout has /$1/: $(grep -E -- "$1" "$T/out" | head -3)" || ok; }
finish() {
    pl_summary
    exit
}

# ---- install ------------------------------------------------------------------------
PREFIX="$T/prefix"
run cmake --install "$B" --prefix "$PREFIX"
rc_is 0
PL="$PREFIX/bin/prunelab"
case="installed files"
[ -x "$PL" ] && ok || no "no $PL"
[ -f "$PREFIX/include/prunelab/plugin.h" ] && ok || no "no installed plugin.h"
PCDIR=$(ls -d "$PREFIX"/lib*/pkgconfig 2>/dev/null | head -1)
[ -n "$PCDIR" ] && [ -f "$PCDIR/prunelab.pc" ] && ok || { no "no prunelab.pc under $PREFIX/lib*/pkgconfig"; finish; }
for kind_name in criteria/l1 criteria/lsh schedules/oneshot datasets/synthetic backends/ref; do
    ls "$PREFIX"/lib*/prunelab/plugins/$kind_name.so >/dev/null 2>&1 && ok || no "$kind_name.so not installed"
done

# ---- the installed prunelab finds its bundled plugins with no env var -------------------
run env -u PRUNELAB_PLUGIN_PATH "$PL" plugins
rc_is 0
for name in l1 l2 random taylor lsh oneshot iterative global idx synthetic ref simd; do
    out_has " $name +[0-9].* $PREFIX/lib[^ ]*/prunelab/plugins/[a-z]+/$name\.so$"
done
out_lacks "$B/plugins"
run env -u PRUNELAB_PLUGIN_PATH "$PL" plugin-check l1
rc_is 0

# ---- build the example against the installed header ---------------------------------
export PKG_CONFIG_PATH="$PCDIR"
EX="$T/example-build"
extra=()
inc=$(pkg-config --variable=includedir prunelab 2>/dev/null)
if [ ! -f "$inc/prunelab/plugin.h" ]; then
    # The .pc file carries the configure-time prefix; `cmake --install
    # --prefix` does not rewrite it. pkgconf can derive the prefix from the
    # .pc file's own location instead.
    echo "note: $PCDIR/prunelab.pc says includedir=$inc, not under $PREFIX; building with pkg-config --define-prefix"
    extra=(-DPKG_CONFIG_ARGN=--define-prefix)
fi
run cmake -S "$S/examples/criterion-example" -B "$EX" -DCMAKE_INSTALL_PREFIX="$PREFIX" "${extra[@]}"
rc_is 0
run cmake --build "$EX"
rc_is 0
case="example built"
[ -f "$EX/criteria/absmax.so" ] && ok || { no "no $EX/criteria/absmax.so"; finish; }
case="example compiled against the installed header"
grep -rqs -- "$PREFIX/include" "$EX/CMakeFiles" && ok || no "the build does not use -I$PREFIX/include"
case="exports one symbol"
if command -v nm >/dev/null 2>&1; then
    syms=$(nm -D --defined-only "$EX/criteria/absmax.so" | awk '$2 ~ /^[A-Z]$/ && $2 != "A" { print $3 }' | grep -v '^_')
    [ "$syms" = prunelab_plugin_desc ] && ok || no "exported: $syms"
fi

# ---- the installed prunelab uses it -----------------------------------------------------
run "$PL" plugins --plugin-path "$EX"
rc_is 0
out_has "^criterion +absmax +1\.0\.0 .*$EX/criteria/absmax\.so$"
run "$PL" plugin-check absmax --plugin-path "$EX"
rc_is 0; out_has '^  [0-9]+ passed, 0 failed'

cat >"$T/absmax.yaml" <<EOF
name: absmax_demo
seed: 2
model: $S/configs/models/lenet_300_100.yaml
dataset: {plugin: synthetic, train_count: 256, test_count: 128}
backend: ref
train: {epochs: 1, batch_size: 64}
prune: {criterion: absmax, granularity: neuron, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1}
report: {dir: $T/report, latency_runs: 1, plots: false}
EOF
run "$PL" validate "$T/absmax.yaml" --plugin-path "$EX"
rc_is 0
out_has "criterion.*absmax"
run "$PL" validate "$T/absmax.yaml" --plugin-path "$EX" --set prune.criterion.include_bias=true
rc_is 0
run "$PL" validate "$T/absmax.yaml" --plugin-path "$EX" --set prune.criterion.include_bias=maybe
rc_is 2
# without the path it is unknown, with a hint
run "$PL" validate "$T/absmax.yaml"
rc_is 2
case="unknown without a path"
grep -q "absmax" "$T/err" && ok || no "stderr does not name absmax: $(cat "$T/err")"
# plugin_path: in the recipe instead of --plugin-path
{ cat "$T/absmax.yaml"; echo "plugin_path: [$EX]"; } >"$T/absmax_path.yaml"
run "$PL" validate "$T/absmax_path.yaml"
rc_is 0
# and a real (tiny) run prunes with it
run "$PL" run "$T/absmax.yaml" --plugin-path "$EX" --out "$T/run" --threads 1 --quiet
rc_is 0
case="results.csv of the absmax run"
if [ -f "$T/run/results.csv" ]; then
    awk -F, 'NR==1 { for (i = 1; i <= NF; i++) c[$i] = i }
             NR==2 { exit !($c["criterion"] == "absmax" && $c["status"] == "ok" &&
                            $c["params_after"] < $c["params_before"]) }' "$T/run/results.csv" \
        && ok || no "unexpected row: $(cat "$T/run/results.csv")"
else
    no "no results.csv (stderr: $(tail -c 400 "$T/err"))"
fi

# ---- installed next to the bundled plugins, it needs no path -----------------------------
run cmake --install "$EX"
rc_is 0
run env -u PRUNELAB_PLUGIN_PATH "$PL" plugins
out_has "^criterion +absmax .*$PREFIX/lib/prunelab/plugins/criteria/absmax\.so$"
run env -u PRUNELAB_PLUGIN_PATH "$PL" validate "$T/absmax.yaml"
rc_is 0

finish
