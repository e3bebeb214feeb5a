#!/usr/bin/env bash
# test_merge_alloc_fail.sh BUILD_DIR SOURCE_DIR — test_alloc_fail.sh on a
# run whose pruning merges (lsh, merge: true; tests/fixtures/alloc/merge.yaml):
# an allocation failing after the fold must not leave a half-merged model.
exec env PL_ALLOC_CONFIG=tests/fixtures/alloc/merge.yaml bash "$(dirname "$0")/test_alloc_fail.sh" "$@"
