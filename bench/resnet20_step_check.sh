#!/usr/bin/env bash
# bench/resnet20_step_check.sh [BACKEND] [N] [K] [DATA_DIR]
#
# Compiles bench/resnet20_step.c against build/libplcore.a and runs
# bench/resnet20_step_check.py: K (default 3) training steps of ResNet-20 on
# the first N (default 32) MNIST training images in prunelab (BACKEND,
# default simd) and in PyTorch from the same initial weights, compared loss
# by loss, gradient by gradient. A few seconds. Needs PyTorch (Debian:
# python3-torch); without it, it says so and exits 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
backend=${1:-simd}
n=${2:-32}
k=${3:-3}
data=${4:-$root/data/mnist}
cd "$root"
[ -f build/libplcore.a ] || { echo "resnet20_step_check: build/libplcore.a not found (make build)" >&2; exit 2; }
. "$root/bench/torch_python.sh"
[ -n "$py" ] || { echo "resnet20_step_check: no python3 with torch and numpy (Debian: python3-torch); skipped"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
libs=(build/libplcore.a)
[ -f build/libpl_onnx_pb.a ] && libs+=(build/libpl_onnx_pb.a)
extra=$(pkg-config --libs yaml-0.1 zlib 2>/dev/null || echo "-lyaml -lz")
pc=$(pkg-config --libs libprotobuf-c 2>/dev/null || true)
${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -Icore/src -Icore/include -o "$tmp/resnet20_step" bench/resnet20_step.c \
    "${libs[@]}" $extra $pc -lm -ldl -lpthread
"$py" bench/resnet20_step_check.py "$tmp/resnet20_step" "$root/build/plugins" "$data" --backend "$backend" --n "$n" --k "$k"
