#!/usr/bin/env bash
# test_merge_alloc_fail.sh BUILD_DIR SOURCE_DIR — test_alloc_fail.sh on a
# run whose pruning merges (lsh, merge: true; tests/fixtures/alloc/merge.yaml):
# an allocation failing after the fold must not leave a half-merged model.
# Most of this run's allocations are test_alloc_fail.sh's own (every one of
# them is failed there), so this one fails every 3rd (every 13th under the
# sanitizers) to stay well inside the time limit; PL_ALLOC_STRIDE=1 tries all.
# The undo of a fold after a failed surgery is tested directly in
# tests/core/test_merge.c.
d=3
[[ ${PL_SANITIZED:-0} == 1 ]] && d=13
exec env PL_ALLOC_CONFIG=tests/fixtures/alloc/merge.yaml PL_ALLOC_STRIDE="${PL_ALLOC_STRIDE:-$d}" \
    bash "$(dirname "$0")/test_alloc_fail.sh" "$@"
