#!/usr/bin/env bash
# test_augment.sh BUILD_DIR SOURCE_DIR — dataset.augment end to end:
# augmented training is the same for 1 and 2 threads on both backends,
# differs from training without it, and is a run of its own; a crop_pad
# too large for the images and bad values are one-line errors at the key;
# experiments/cifar10-resnet20.yaml validates unchanged on CIFAR-10 files
# in the real binary format written here.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp augment

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1 ($(head -c 300 "$T/err"))"; }
one_line() {
    if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -Eq -- "$1" "$T/err"; then
        no "want one stderr line matching '$1', got: $(head -c 300 "$T/err")"
    else ok; fi
}
final_norms() { # DIR: the final model's per-layer weight norms, run id cut off
    awk -F, '$2 == "final"' "$1"/norms/*.csv | cut -d, -f2-
}

exp() { # BACKEND AUGMENT-LINE
    cat <<YAML
name: aug
seed: 3
model: configs/models/simple_cnn.yaml
dataset:
  plugin: synthetic
  train_count: 512
  test_count: 256
$2
backend: $1
train: {epochs: 1, batch_size: 64}
prune: {criterion: l1, granularity: channel, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1}
report: {latency_runs: 1, plots: false}
YAML
}

for be in ref simd; do
    exp $be "  augment: {crop_pad: 3, hflip: true}" >"$T/$be.yaml"
    exp $be "" >"$T/$be-plain.yaml"
    for th in 1 2; do
        run run "$T/$be.yaml" --out "$T/out-$be-$th" --threads $th --quiet
        rc_is 0
    done
    run run "$T/$be-plain.yaml" --out "$T/out-$be-plain" --threads 1 --quiet
    rc_is 0
    case="$be: augmented training is the same for 1 and 2 threads"
    a=$(final_norms "$T/out-$be-1") b=$(final_norms "$T/out-$be-2") c=$(final_norms "$T/out-$be-plain")
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || no "$(diff <(echo "$a") <(echo "$b") | head -3)"
    case="$be: augmentation changes training"
    [ -n "$c" ] && [ "$a" != "$c" ] && ok || no "same final weights with and without augment"
    case="$be: a run of its own"
    ia=$(cut -d, -f1 "$T/out-$be-1/results.csv" | tail -1) ic=$(cut -d, -f1 "$T/out-$be-plain/results.csv" | tail -1)
    [ -n "$ia" ] && [ "$ia" != "$ic" ] && ok || no "run ids $ia and $ic"
done

# errors: one line, exit 2, at the key
exp ref "  augment: {crop_pad: 28}" >"$T/big.yaml"
run run "$T/big.yaml" --out "$T/out-big" --quiet
rc_is 2; one_line 'big.yaml:5:[0-9]+: dataset.augment.crop_pad 28 is not below the 28x28 image size'
exp ref "  augment: {crop_pad: -2}" >"$T/neg.yaml"
run validate "$T/neg.yaml"
rc_is 2; one_line 'neg.yaml:8:23: dataset.augment.crop_pad must be in \[0, 4096\]'
exp ref "  augment: {hflip: sometimes}" >"$T/flip.yaml"
run validate "$T/flip.yaml"
rc_is 2; one_line 'flip.yaml:8:20: dataset.augment.hflip'
exp ref "  augment: {vflip: true}" >"$T/key.yaml"
run validate "$T/key.yaml"
rc_is 2; one_line "key.yaml:8:[0-9]+: unknown key 'vflip'"

# experiments/cifar10-resnet20.yaml on CIFAR-10 files in the real format:
# 3073-byte records (label, 1024 R, 1024 G, 1024 B)
mkdir -p "$T/cifar"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
    perl -e 'binmode STDOUT; srand(5); for my $i (0 .. 39) { print pack("C*", $i % 10, map { int(rand(256)) } 1 .. 3072) }' \
        >"$T/cifar/$f.bin"
done
run validate experiments/cifar10-resnet20.yaml --set dataset.path="$T/cifar"
rc_is 0
case="cifar10-resnet20: the model takes CIFAR's 3x32x32 images"
grep -q "model resnet20_cifar: input 3x32x32, 10 classes" "$T/out" && ok || no "$(head -c 300 "$T/out")"
case="cifar10-resnet20: augmentation on"
grep -q "augment    crop_pad 4, hflip true (training batches only)" "$T/out" && ok || no "no augment line"
case="cifar10-resnet20: 6 runs"
grep -q "experiments/cifar10-resnet20.yaml): 6 run(s)" "$T/out" && ok || no "$(head -1 "$T/out")"

pl_summary
