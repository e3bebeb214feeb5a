#!/usr/bin/env bash
# test_onnx_export.sh BUILD_DIR SOURCE_DIR — `prunelab export` and
# `prunelab eval` against independent clients, and given weights as the
# baseline (train.epochs: 0 + model_init:).
#
# Tiny runs on the first MNIST images (idx limit) train and prune SimpleCNN
# and the graph models resnet20, mobilenet_mini and densenet_mini (channel
# pruning; weight pruning for the masks), and a model with the padding ONNX
# imports bring (pads [t, l, b, r], dilation, count_include_pad 0). Every checkpoint is exported with
# and without --fold-bn and tests/onnx/check_export.py checks each file with
# onnx.checker (full_check) and OpenCV's DNN module, whose logits on the same
# images must equal `prunelab eval --logits` within 1e-4 of the logit scale
# (a tampered logits file must fail that check). `eval` must print the
# accuracy the run recorded; epochs 0 + model_init must score the checkpoint's
# accuracy as the baseline, and another checkpoint at the same path must
# give another run (no stale baseline). Bad inputs: one line, non-zero exit,
# no file left behind.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp onnx-export

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1; stderr: $(head -c 400 "$T/err")"; }
rc_not0() { [ "$rc" -ne 0 ] && ok || no "exit 0, want an error"; }
out_has() { grep -Eq -- "$1" "$T/out" && ok || no "stdout lacks /$1/: $(head -c 400 "$T/out")"; }
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
nothing_in() { # DIR: no file at all (no .onnx, no temporary)
    local left
    left=$(ls -A "$1" 2>/dev/null)
    [ -z "$left" ] && ok || no "left behind in $1: $left"
}

# the interpreter with onnx and cv2: python3 first, then Debian's
PY=
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import numpy, onnx, onnx.checker, cv2' 2>/dev/null; then
        PY=$py
        break
    fi
done
if [ -z "$PY" ]; then
    case="python with onnx and cv2"
    no "neither python3 nor /usr/bin/python3 imports onnx and cv2 (install python3-onnx and python3-opencv: scripts/setup.sh)"
    pl_summary
    exit
fi
CHECK="$S/tests/onnx/check_export.py"

[ -f data/mnist/t10k-images-idx3-ubyte ] || { echo "data/mnist is missing (scripts/setup.sh fetches it)"; exit 1; }

LIMIT=256
cat >"$T/x.yaml" <<EOF
name: onnx
seed: 1
model: configs/models/simple_cnn.yaml
dataset: {plugin: idx, path: data/mnist, limit: $LIMIT}
backend: simd
train: {epochs: 2, batch_size: 32}
prune: {criterion: l1, granularity: channel, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1}
report: {latency_runs: 1, plots: false}
EOF

# check NAME CKPT: export with and without --fold-bn, eval --logits, check both files
check() {
    local name=$1 ckpt=$2 zeros
    run eval "$ckpt" "$T/x.yaml" --logits "$T/$name.csv" --threads 2
    rc_is 0
    for fold in "" --fold-bn; do
        run export "$ckpt" -o "$T/$name$fold.onnx" $fold
        rc_is 0
        zeros=$(sed -n 's/.*parameters (\([0-9]*\) masked weights as zeros.*/\1/p' "$T/out")
        case="check_export $name$fold"
        if "$PY" "$CHECK" "$T/$name$fold.onnx" "$T/$name.csv" --idx data/mnist --limit $LIMIT \
            --expect-zeros "${zeros:-0}" >"$T/chk" 2>&1; then
            ok
            sed 's/^/  /' "$T/chk"
        else
            no "$(cat "$T/chk")"
        fi
    done
}

# ---- SimpleCNN (a chain): channel, then weight pruning ---------------------------
run run "$T/x.yaml" --out "$T/cnn" --threads 2 --quiet
rc_is 0
CNN=$(ls "$T"/cnn/models/*.ckpt 2>/dev/null | head -1)
check simple_cnn "$CNN"

# eval prints the accuracy the run recorded for that model
case="eval accuracy = the run's acc_final"
rec=$(ls "$T"/cnn/runs/*.json | head -1)
want=$("$PY" -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["acc_final"])' "$rec")
run eval "$CNN" "$T/x.yaml"
out_has "^test accuracy: $want% \($LIMIT images\)$"
out_has '^params: [0-9]+ \(nonzero [0-9]+\)$'
out_has '^macs: [0-9]+ \(effective [0-9]+\)$'
# the same from --set alone (no experiment file)
run eval "$CNN" --set dataset.plugin=idx --set dataset.path=data/mnist --set dataset.limit=$LIMIT
rc_is 0; out_has "^test accuracy: $want%"

# a tampered logits file fails the comparison (the check can fail)
case="check_export detects a wrong logit"
awk -F, -v OFS=, 'NR == 2 { $3 = $3 + 0.01 } { print }' "$T/simple_cnn.csv" >"$T/bad.csv"
"$PY" "$CHECK" "$T/simple_cnn.onnx" "$T/bad.csv" --idx data/mnist --limit $LIMIT >"$T/chk" 2>&1
[ $? -eq 1 ] && grep -q 'max |opencv - prunelab|' "$T/chk" && ok || no "accepted: $(cat "$T/chk")"
case="check_export detects missing zeros"
"$PY" "$CHECK" "$T/simple_cnn.onnx" "$T/simple_cnn.csv" --idx data/mnist --limit $LIMIT --expect-zeros 1 >"$T/chk" 2>&1
[ $? -eq 1 ] && ok || no "accepted: $(cat "$T/chk")"

run run "$T/x.yaml" --out "$T/cnnw" --threads 2 --quiet --set prune.granularity=weight --set prune.sparsity=0.7
rc_is 0
check simple_cnn_weight "$(ls "$T"/cnnw/models/*.ckpt | head -1)"
case="weight pruning writes zeros"
grep -Eq '\(([1-9][0-9]*) masked weights as zeros' "$T/out" && ok || no "no masked zeros: $(cat "$T/out")"

# ---- graph models ------------------------------------------------------------------
for m in resnet20 mobilenet_mini densenet_mini; do
    run run "$T/x.yaml" --out "$T/$m" --threads 2 --quiet --set model=configs/models/$m.yaml \
        --set train.epochs=1 --set train.batch_size=32 --set retrain.epochs=0
    rc_is 0
    check "$m" "$(ls "$T/$m"/models/*.ckpt | head -1)"
done
# ---- the padding ONNX imports bring: pads [t, l, b, r], dilation, count_include_pad 0
# (MaxPool dilations are left out: OpenCV 4.6's MaxPool ignores them) ----------------
cat >"$T/geometry.yaml" <<'YAML'
name: geometry
input: [1, 28, 28]
classes: 10
layers:
  - {name: c1, type: conv2d, out: 6, kernel: 3, padding: [1, 0, 2, 1], dilation: 2}
  - {type: relu}
  - {name: p1, type: maxpool2d, kernel: 3, stride: 2, padding: [0, 0, 1, 1]}
  - {name: c2, type: conv2d, out: 8, kernel: 3, stride: 2, padding: [1, 1, 0, 0]}
  - {type: relu}
  - {name: p2, type: avgpool2d, kernel: 3, stride: 2, padding: [1, 1, 1, 0], count_include_pad: false}
  - {type: flatten}
  - {name: fc, type: linear, out: 10}
YAML
run run "$T/x.yaml" --out "$T/geo" --threads 2 --quiet --set model="$T/geometry.yaml" \
    --set train.epochs=1 --set retrain.epochs=0
rc_is 0
check geometry "$(ls "$T"/geo/models/*.ckpt | head -1)"
run run "$T/x.yaml" --out "$T/mbw" --threads 2 --quiet --set model=configs/models/mobilenet_mini.yaml \
    --set train.epochs=1 --set train.batch_size=32 --set retrain.epochs=0 --set prune.granularity=weight
rc_is 0
check mobilenet_weight "$(ls "$T"/mbw/models/*.ckpt | head -1)"
# a file whose batchnorm epsilon is off by 1e-3 fails the check (the check can fail)
case="check_export detects a wrong batchnorm epsilon"
"$PY" - "$T/mobilenet_mini.onnx" "$T/mut.onnx" <<'EOF'
import sys, onnx
m = onnx.load(sys.argv[1])
for n in m.graph.node:
    for a in n.attribute:
        if n.op_type == "BatchNormalization" and a.name == "epsilon":
            a.f += 1e-3
onnx.save(m, sys.argv[2])
EOF
"$PY" "$CHECK" "$T/mut.onnx" "$T/mobilenet_mini.csv" --idx data/mnist --limit $LIMIT >"$T/chk" 2>&1
[ $? -eq 1 ] && grep -q 'max |opencv - prunelab|' "$T/chk" && ok || no "accepted: $(cat "$T/chk")"
# the cached baseline exports too (nothing pruned)
check resnet20_baseline "$(ls "$T"/resnet20/cache/baseline-*.ckpt | head -1)"

# ---- train.epochs: 0 + model_init: the checkpoint's weights are the baseline ----------
BASE=$(ls "$T"/cnn/cache/baseline-*.ckpt | head -1)
cp "$BASE" "$T/init.ckpt"
run eval "$T/init.ckpt" "$T/x.yaml"
init_acc=$(sed -n 's/^test accuracy: \([0-9.]*\)%.*/\1/p' "$T/out")
run run "$T/x.yaml" --out "$T/given" --threads 2 --set train.epochs=0 --set model_init="$T/init.ckpt"
rc_is 0
out_has "^baseline: test accuracy "
case="epochs 0: acc_baseline = the checkpoint's accuracy"
rec=$(ls "$T"/given/runs/*.json | head -1)
got=$("$PY" -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["acc_baseline"])' "$rec")
[ -n "$init_acc" ] && [ "$got" = "$init_acc" ] && ok || no "acc_baseline $got, the checkpoint scores $init_acc"
id1=$(basename "$rec" .json)
# another checkpoint at the same path: another identity, a fresh baseline
run run "$T/x.yaml" --out "$T/other" --threads 2 --quiet --set seed=2 --set prune=null
rc_is 0
cp "$(ls "$T"/other/cache/baseline-*.ckpt | head -1)" "$T/init.ckpt"
run eval "$T/init.ckpt" "$T/x.yaml"
init_acc2=$(sed -n 's/^test accuracy: \([0-9.]*\)%.*/\1/p' "$T/out")
run run "$T/x.yaml" --out "$T/given" --threads 2 --set train.epochs=0 --set model_init="$T/init.ckpt"
rc_is 0
case="a changed model_init is not a stale baseline"
grep -q 'baseline: reusing' "$T/out" && no "reused a cached baseline: $(grep reusing "$T/out")" || ok
n=$(ls "$T"/given/runs/*.json | wc -l)
[ "$n" -eq 2 ] && ok || no "$n run records, want 2 (a new run id)"
rec2=$(ls -t "$T"/given/runs/*.json | head -1)
[ "$(basename "$rec2" .json)" != "$id1" ] && ok || no "same run id $id1"
got2=$("$PY" -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["acc_baseline"])' "$rec2")
[ "$got2" = "$init_acc2" ] && ok || no "acc_baseline $got2, the new checkpoint scores $init_acc2"
# the same bytes at another path: the same run (the content is the identity)
cp "$T/init.ckpt" "$T/init-copy.ckpt"
run validate "$T/x.yaml" --set train.epochs=0 --set model_init="$T/init-copy.ckpt"
rc_is 0
case="model_init: identity is the content"
out_has "run id +$(basename "$rec2" .json)"

# ---- configuration errors ------------------------------------------------------------
run validate "$T/x.yaml" --set train.epochs=0
rc_is 2; one_line "train.epochs: 0 needs model_init: FILE.ckpt or an .onnx model"
run validate "$T/x.yaml" --set model_init="$T/nope.ckpt"
rc_is 2; one_line "--set model_init=$T/nope.ckpt: model_init: $T/nope.ckpt: cannot open"
run validate "$T/x.yaml" --set model_init="$CNN"
rc_is 2; one_line "model_init must be an unpruned checkpoint of this model"
run validate "$T/x.yaml" --set model_init="$(ls "$T"/resnet20/cache/baseline-*.ckpt | head -1)"
rc_is 2; one_line "it holds model 'resnet20'"
printf 'name: a\nmodel: configs/models/simple_cnn.yaml\nmodel_init: %s/x.yaml\n' "$T" >"$T/mi.yaml"
run validate "$T/mi.yaml"
rc_is 2; one_line "mi.yaml:3:13: model_init: $T/x.yaml: not a prunelab checkpoint"

# ---- bad input: one line, non-zero, nothing written -----------------------------------
mkdir -p "$T/o"
run export "$T/missing.ckpt" -o "$T/o/m.onnx"
rc_not0; one_line "missing.ckpt"; nothing_in "$T/o"
head -c 300 "$CNN" >"$T/trunc.ckpt"
run export "$T/trunc.ckpt" -o "$T/o/m.onnx"
rc_is 2; one_line "trunc.ckpt"; nothing_in "$T/o"
run export "$T/x.yaml" -o "$T/o/m.onnx"
rc_is 2; one_line "not a prunelab checkpoint"; nothing_in "$T/o"
run export "$CNN" -o "$T/no/such/dir/m.onnx"
rc_not0; one_line "m.onnx"
[ -e "$T/no" ] && no "created $T/no" || ok
touch "$T/afile"
run export "$CNN" -o "$T/afile/m.onnx"
rc_not0; one_line "m.onnx"
mkdir -p "$T/ro"
chmod a-w "$T/ro"
if [ ! -w "$T/ro" ]; then # (root writes anywhere)
    run export "$CNN" -o "$T/ro/m.onnx"
    rc_not0; one_line "m.onnx"; nothing_in "$T/ro"
fi
run export "$CNN"
rc_is 2; one_line "export needs -o FILE.onnx"
run export -o "$T/o/m.onnx"
rc_is 2; one_line "export needs exactly one checkpoint"
run export "$CNN" -o "$T/o/m.onnx" --frob
rc_is 2; one_line "unknown option '--frob'"; nothing_in "$T/o"
run export "$CNN" -o "$T/o/m.onnx" --set seed=1
rc_is 2; one_line "--set does not apply to 'export'"; nothing_in "$T/o"
run eval "$CNN"
rc_is 2; one_line "eval needs a dataset"
run eval "$CNN" --logits "$T/o/l.csv"
rc_is 2; one_line "eval needs a dataset"; nothing_in "$T/o"
run eval "$T/missing.ckpt" "$T/x.yaml" --logits "$T/o/l.csv"
rc_not0; one_line "missing.ckpt"; nothing_in "$T/o"
run eval "$CNN" --set dataset.plugin=synthetic --set dataset.channels=3 --logits "$T/o/l.csv"
rc_is 2; one_line "takes 1x28x28 inputs"; nothing_in "$T/o"
run eval "$CNN" "$T/x.yaml" --logits "$T/no/such/l.csv"
rc_not0; one_line "l.csv"
run eval "$CNN" "$T/x.yaml" --fold-bn
rc_is 2; one_line "--fold-bn does not apply to 'eval'"

# ---- allocation failures: each k-th host allocation failing ends cleanly ---------------
# (exit 0 with the same file, or non-zero with one line and nothing written)
alloc_case() { # NAME STRIDE OUTFILE REF -- ARGS...  (every STRIDE-th k)
    local name=$1 stride=$2 of=$3 ref=$4 total k bad=0
    shift 5
    # under the sanitizers (make test's second tree) every process start is
    # slow: every 4th of the same allocations (PL_ALLOC_STRIDE overrides)
    local mul=1
    [ -n "${PL_SANITIZED:-}" ] && mul=4
    [ -n "${PL_ALLOC_STRIDE:-}" ] && mul=$PL_ALLOC_STRIDE
    stride=$((stride * mul))
    total=$(PRUNELAB_ALLOC_COUNT=1 PRUNELAB_FAIL_ALLOC=0 "$P" "$@" 2>&1 >/dev/null | awk '/allocations:/ { print $NF }')
    case="allocation failures: $name"
    [ -n "$total" ] || { no "no allocation count"; return; }
    for ((k = 1; k <= total; k += stride)); do
        rm -rf "$T/af" && mkdir -p "$T/af"
        PRUNELAB_FAIL_ALLOC=$k "$P" "$@" >"$T/af.out" 2>"$T/af.err"
        rc=$?
        if ((rc >= 124)) || grep -qE 'Sanitizer|runtime error' "$T/af.err"; then
            why="exit $rc: $(head -c 200 "$T/af.err")"
        elif ((rc == 0)); then
            cmp -s "$of" "$ref" && why="" || why="exit 0 but the file differs"
        elif [ "$(wc -l <"$T/af.err")" -ne 1 ] || ! grep -q '^prunelab: ' "$T/af.err"; then
            why="$(wc -l <"$T/af.err") lines on stderr: $(head -c 200 "$T/af.err")"
        elif [ -n "$(ls -A "$T/af")" ]; then
            why="left behind: $(ls -A "$T/af")"
        else
            why=""
        fi
        if [ -n "$why" ]; then
            bad=1
            no "allocation $k of $total: $why"
            break
        fi
    done
    [ $bad -eq 0 ] && ok
}
alloc_case export 1 "$T/af/m.onnx" "$T/simple_cnn.onnx" -- export "$CNN" -o "$T/af/m.onnx"
alloc_case "export --fold-bn" 5 "$T/af/m.onnx" "$T/mobilenet_mini--fold-bn.onnx" -- \
    export "$(ls "$T"/mobilenet_mini/models/*.ckpt | head -1)" -o "$T/af/m.onnx" --fold-bn
alloc_case "eval --logits" 4 "$T/af/l.csv" "$T/simple_cnn.csv" -- eval "$CNN" "$T/x.yaml" --logits "$T/af/l.csv" --threads 1

pl_summary
