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
default_stride=1
[[ ${PL_SANITIZED:-0} == 1 ]] && default_stride=9
stride=${PL_ALLOC_STRIDE:-$default_stride}

check() { # k -> $T/res/k: "clean", "ok0" or "FAIL ..."
    local k=$1 rc why lines
    PRUNELAB_FAIL_ALLOC=$k timeout 60 "$PL" validate "$T/x.yaml" >"$T/out$k" 2>"$T/err$k"
    rc=$?
    why=""
    lines=$(awk 'END { print NR }' "$T/err$k")
    if ((rc >= 124)); then
        why="exit $rc (signal or timeout)"
    elif grep -qE 'Sanitizer|runtime error' "$T/err$k"; then
        why="sanitizer report"
    elif ((rc == 0)); then
        if cmp -s "$T/out$k" "$T/ref"; then
            echo ok0 >"$T/res/$k"
            rm -f "$T/out$k" "$T/err$k"
            return
        fi
        why="exit 0 with a different output (a silent wrong answer)"
    elif [[ $lines != 1 ]] || ! grep -q '^prunelab: ' "$T/err$k"; then
        why="exit $rc with $lines lines on stderr"
    fi
    if [[ -n $why ]]; then
        echo "FAIL allocation $k of $total: $why: $(head -c 300 "$T/err$k" | tr '\n' ' ')" >"$T/res/$k"
    else
        echo clean >"$T/res/$k"
    fi
    rm -f "$T/out$k" "$T/err$k"
}
export -f check
export T PL total
mkdir -p "$T/res"
jobs=${PL_ALLOC_JOBS:-$(nproc 2>/dev/null || echo 2)}
seq 1 "$stride" "$total" | xargs -P "$jobs" -I{} bash -c 'check {}'
tried=0 clean=0 ok0=0 bad=0
for ((k = 1; k <= total; k += stride)); do
    tried=$((tried + 1))
    r=$(cat "$T/res/$k" 2>/dev/null || echo "FAIL allocation $k of $total: no result recorded")
    case $r in
    clean) clean=$((clean + 1)) ;;
    ok0) clean=$((clean + 1)) ok0=$((ok0 + 1)) ;;
    *) bad=$((bad + 1)); echo "$r" ;;
    esac
done
echo "allocations in the validation: $total; failed one at a time: $tried (every ${stride}); clean: $clean (of which $ok0 recovered, exit 0); defects: $bad"
echo "$clean passed, $bad failed"
((bad == 0))
