#!/usr/bin/env bash
# test_onnx.sh BUILD_DIR SOURCE_DIR — `model: net.onnx` from the command
# line: validate prints the imported layer table (also through --set
# model=...), a small run prunes an imported model, and broken or
# unsupported files are one line on stderr with exit status 2.
# Fixtures: tests/onnx/fixtures/ (tests/onnx/make_fixtures.py).
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp onnx
FX=tests/onnx/fixtures

cat >"$T/x.yaml" <<YAML
name: onnx_cli
model: $FX/residual_bn.onnx
dataset: {plugin: synthetic, height: 12, width: 12, train_count: 128, test_count: 64}
train: {epochs: 1, batch_size: 32}
prune: {sparsity: 0.5}
YAML

# validate: the layer table of the import
run validate "$T/x.yaml"
if [[ $rc == 0 ]] && grep -q '^model residual_bn: input 1x12x12, 10 classes' "$T/out" &&
    grep -qE '^  layer2_shortcut_0 +conv2d +16x6x6 +128 ' "$T/out" &&
    grep -qE '^  layer2_add +add +16x6x6 .*<- layer2_bn2, layer2_shortcut_1' "$T/out" &&
    grep -qE '^  fc +linear +10x1x1 +170 ' "$T/out"; then ok; else no "rc $rc: $(head -c 600 "$T/out" "$T/err")"; fi

# --set model=... swaps in another export (the folded form: no batchnorm layers)
run validate "$T/x.yaml" --set model=$FX/residual.onnx
if [[ $rc == 0 ]] && grep -q '^model residual: input 1x12x12' "$T/out" && ! grep -q batchnorm2d "$T/out"; then
    ok
else
    no "rc $rc: $(head -c 600 "$T/out" "$T/err")"
fi

# a run: train, prune half the channels, retrain, from the file's weights
run run "$T/x.yaml" --out "$T/r" --quiet
if [[ $rc == 0 && -s $T/r/results.csv ]] && grep -q ',ok,' "$T/r/results.csv"; then ok; else no "rc $rc: $(cat "$T/err")"; fi

# one line, exit 2, naming file, node, op and opset
run validate "$T/x.yaml" --set model=$FX/bad_sigmoid.onnx
want="prunelab: $FX/bad_sigmoid.onnx: node 1 '/act/Sigmoid' (Sigmoid, opset 13): operator not supported by prunelab (supported: Conv, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Add, Concat, Flatten, Reshape, Gemm, MatMul, Identity, Dropout, Pad, Constant, Slice)"
if [[ $rc == 2 && $(cat "$T/err") == "$want" ]]; then ok; else no "rc $rc: $(cat "$T/err")"; fi

run validate "$T/x.yaml" --set model=$FX/bad_add_const.onnx
if [[ $rc == 2 && $(wc -l <"$T/err") == 1 ]] && grep -q "^prunelab: $FX/bad_add_const.onnx: node 1 '/Add' (Add, opset 13): adds the constant" "$T/err"; then
    ok
else
    no "rc $rc: $(cat "$T/err")"
fi

# a missing file, a truncated one, a text file named .onnx
run validate "$T/x.yaml" --set model=$T/missing.onnx
if [[ $rc == 2 && $(wc -l <"$T/err") == 1 ]] && grep -q "$T/missing.onnx" "$T/err" && grep -q 'named by model: in' "$T/err"; then
    ok
else
    no "rc $rc: $(cat "$T/err")"
fi
head -c 5000 $FX/concat.onnx >"$T/cut.onnx"
run validate "$T/x.yaml" --set model=$T/cut.onnx
if [[ $rc == 2 && $(cat "$T/err") == "prunelab: $T/cut.onnx: not an ONNX model: length runs past the end of its message (is it a .onnx file, complete?)" ]]; then
    ok
else
    no "rc $rc: $(cat "$T/err")"
fi
cp "$T/x.yaml" "$T/text.onnx"
run validate "$T/x.yaml" --set model=$T/text.onnx
if [[ $rc == 2 && $(wc -l <"$T/err") == 1 ]] && grep -q "^prunelab: $T/text.onnx: not an ONNX model" "$T/err"; then
    ok
else
    no "rc $rc: $(cat "$T/err")"
fi

pl_summary
