#!/usr/bin/env bash
# test_plugin_check.sh BUILD_DIR SOURCE_DIR — `prunelab plugin-check`:
# every bundled plugin passes its contract (exit 0); the deliberately broken
# criterion tests/fixtures/plugins/broken_check.c (writes one score past the
# end, NaN on an all-zero layer) fails with lines naming both faults (exit
# 1); the backends' grouped-convolution rows pass for ref and simd, say "not
# provided" for a backend without those slots, and fail for the broken
# tests/fixtures/plugins/grouped_broken.c; a plugin the registry refuses
# fails its `abi` row (exit 1); an unknown
# name or kind is a usage error (exit 2); a crashing plugin fails the check
# it crashed in instead of taking plugin-check down.
# Prints "N passed, M failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp check
chmod 755 "$T"

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1; stdout: $(tail -c 1500 "$T/out"); stderr: $(head -c 400 "$T/err")"; }
out_has() { grep -Eq -- "$1" "$T/out" && ok || no "stdout lacks /$1/: $(head -c 1500 "$T/out")"; }
out_lacks() { grep -Eq -- "$1" "$T/out" && no "stdout has /$1/: $(grep -E -- "$1" "$T/out" | head -5)" || ok; }
err_has() { grep -Eq -- "$1" "$T/err" && ok || no "stderr lacks /$1/: $(head -c 400 "$T/err")"; }

# ---- every bundled plugin passes ------------------------------------------------
for name in l1 l2 random taylor lsh fpgm apoz bn_scale oneshot iterative global ref simd synthetic idx cifar; do
    run plugin-check "$name"
    rc_is 0
    out_has "^plugin-check: [a-z]+ '$name' "
    out_has '^  abi +PASS'
    out_has '^  params +PASS'
    out_has '^  [0-9]+ passed, 0 failed, [0-9]+ skipped$'
    out_lacks ' FAIL '
done

# the kind-specific rows are there
run plugin-check lsh --kind criterion
rc_is 0
for row in 'score conv 32x16x3x3 channel' 'score linear 64x128 neuron' 'score conv 32x16x3x3 weight' \
           'score linear 64x128 weight' 'masked weights' 'deterministic' 'all-zero weights' \
           'one unit' 'time'; do
    out_has "^  $row +PASS"
done
out_has 'time +PASS  median of 5: conv 32x16x3x3 channel [0-9.]+ ms'
run plugin-check taylor
out_has 'synthetic gradient'
run plugin-check iterative
rc_is 0; out_has '^  plan target 0\.50 +PASS  3 step\(s\), progress 0\.3333, 0\.6667, 1, layer scope'
run plugin-check global
out_has 'global scope'
for be in simd ref; do
    run plugin-check $be
    rc_is 0
    for row in conv2d_forward conv2d_backward_data conv2d_backward_weight linear_forward \
               linear_backward_data linear_backward_weight conv2d_grouped_forward \
               conv2d_grouped_backward_data conv2d_grouped_backward_weight 'thread count'; do
        out_has "^  $row +PASS"
    done
    out_has 'conv2d_forward +PASS .*vs ref.*vs a direct double sum'
    out_has 'conv2d_grouped_forward +PASS .*vs its dense slots per group.*vs a direct double sum; groups 1 bit-identical to conv2d_forward'
    out_has 'thread count +PASS  all 9 kernels bit-identical'
done
# a backend without the grouped slots: one row, not a failure
run plugin-check kernel_fails --plugin-path "$B/testplugins"
out_has '^  conv2d_grouped_\* +SKIP  not provided \(host falls back to dense per group\)$'
out_lacks 'conv2d_grouped_forward'
# broken grouped slots fail their rows (tests/fixtures/plugins/grouped_broken.c)
run plugin-check grouped_broken --plugin-path "$B/testplugins"
rc_is 1
out_has '^  conv2d_forward +PASS'
out_has '^  conv2d_grouped_forward +FAIL  x 2x6x7x5 w 9x2x3x3 groups 3 s2x1 p1x2: relative error'
out_has '^  conv2d_grouped_backward_data +FAIL  .*wrote 1 value\(s\) past the end of its output'
out_has '^  conv2d_grouped_backward_weight +SKIP  not provided \(host falls back to dense per group\)$'
run plugin-check synthetic --kind dataset
rc_is 0; out_has '^  read train +PASS'; out_has '^  deterministic test +PASS'
# a dataset that cannot be opened is skipped, not failed
mkdir -p "$T/empty"
(cd "$T/empty" && "$P" plugin-check idx >"$T/out" 2>"$T/err"); rc=$?; case="idx without data"
rc_is 0; out_has '^  open train +SKIP  cannot open'

# ---- the broken criterion fails, naming its faults --------------------------------
run plugin-check broken_check --plugin-path "$B/testplugins"
rc_is 1
out_has "^plugin-check: criterion 'broken_check' "
out_has '^  abi +PASS'
out_has '^  score conv 32x16x3x3 channel +FAIL  .*wrote 1 value\(s\) past the end of its output \(first: scores\[32\] of 32\)'
out_has '^  all-zero weights +FAIL  .*non-finite score'
out_has '^  [0-9]+ passed, [1-9][0-9]* failed'
# the same plugin by file path
run plugin-check "$B/testplugins/broken_check.so"
rc_is 1; out_has 'score linear 64x128 neuron +FAIL'

# ---- refused, unknown, wrong usage ------------------------------------------------------
if [ -f "$B/testplugins/abi_major.so" ]; then
    run plugin-check abi_major --plugin-path "$B/testplugins"
    rc_is 1; out_has '^  abi +FAIL  .*ABI major'
fi
run plugin-check no_such_plugin
rc_is 2; err_has "^prunelab: no plugin named 'no_such_plugin'"
run plugin-check l1 --kind schedule
rc_is 2; err_has "unknown schedule plugin 'l1'"
run plugin-check l1 --kind bogus
rc_is 2; err_has "--kind 'bogus' is not a plugin kind"
run plugin-check Bad/../name
rc_is 2
run plugin-check 'UPPER'
rc_is 2; err_has 'invalid'
run plugin-check
rc_is 2; err_has 'plugin-check needs exactly one plugin NAME'
run --help
out_has 'plugin-check NAME'

# ---- a crashing plugin fails the check it crashed in -----------------------------
if command -v cc >/dev/null 2>&1; then
    mkdir -p "$T/pp/criteria"
    cat >"$T/crashy.c" <<'EOF'
#include <prunelab/plugin.h>
static pl_status crashy_score(void *st, const pl_unit_view *v, double *s, int64_t *n)
{
    (void)st;
    if (v->units == 1) {
        volatile int *p = 0;
        *p = 1;
    }
    for (int64_t u = 0; u < v->units; u++)
        s[u] = 1.0;
    *n = v->units;
    return PL_OK;
}
static const pl_criterion_ops ops = {.score = crashy_score};
PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER, .kind = PL_KIND_CRITERION, .name = "crashy", .version = "0",
    .description = "crashes on one-unit layers", .ops = &ops};
EOF
    if cc -shared -fPIC -I"$S/core/include" -o "$T/pp/criteria/crashy.so" "$T/crashy.c" 2>"$T/cc.err"; then
        chmod -R go-w "$T/pp"
        run plugin-check crashy --plugin-path "$T/pp"
        rc_is 1
        # SIGSEGV, or SIGABRT when the host runs under AddressSanitizer
        out_has '^  one unit +FAIL  (crashed with signal (11|6)|the check process ended early)'
        out_has '^  all-zero weights +PASS'
    else
        case="cc crashy.c"; no "cannot build the crashing fixture: $(head -c 300 "$T/cc.err")"
    fi
fi

pl_summary
