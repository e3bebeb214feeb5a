#!/usr/bin/env bash
# test_onnx_alloc_fail.sh BUILD_DIR SOURCE_DIR — allocation-failure
# injection (core/src/alloc.c) over `prunelab validate` of an experiment
# whose model is an ONNX file (a graph with batchnorm and concatenations):
# parsing the protobuf, importing the graph and its weights, building the
# model with them. With the k-th host allocation failing, for every k
# (PL_ALLOC_STRIDE=n tries every n-th; by default 1, and 9 under the
# sanitizers, PL_SANITIZED=1, where each of the ~1,100 runs takes a second
# or more; the Release suite tries every k), each run must end cleanly: no
# signal or sanitizer report, and either exit 1 or 2 with exactly one
# "prunelab: " line on stderr, or exit 0 with the reference's output (a
# failed allocation with a fallback). A different output under exit 0 is a
# silent wrong answer.
set -u
. "$(dirname "$0")/lib.sh"
BUILD=$(cd "$1" && pwd) || exit 2
cd "$2" || exit 2
PL="$BUILD/prunelab"
T=$(mktemp -d "${TMPDIR:-/tmp}/pl-onnx-alloc.XXXXXX")
trap 'rm -rf "$T"' EXIT
unset PRUNELAB_PLUGIN_PATH
cat >"$T/x.yaml" <<YAML
name: onnx_alloc
model: tests/onnx/fixtures/concat_bn.onnx
dataset: {plugin: synthetic, channels: 3, height: 8, width: 8, train_count: 64, test_count: 32}
YAML
total=$(PRUNELAB_ALLOC_COUNT=1 PRUNELAB_FAIL_ALLOC=0 "$PL" validate "$T/x.yaml" 2>&1 >"$T/ref" |
        awk '/allocations:/ { print $NF }')
if [[ -z $total ]] || ! grep -q '^model concat_bn: input 3x8x8' "$T/ref"; then
    echo "FAIL: the reference validation did not work"
    exit 1
fi

# the driver (pl_alloc_cases, lib.sh) runs each case through these
alloc_run() { # K DIR
    PRUNELAB_FAIL_ALLOC=$1 timeout 60 "$PL" validate "$T/x.yaml" >"$2/out" 2>"$2/err"
}
alloc_same() { # DIR
    cmp -s "$1/out" "$T/ref"
}
export -f alloc_run alloc_same
export PL
pl_alloc_cases "$total" "$(pl_alloc_stride 9)" validation
