#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer harnesses (tests/fuzz/) with clang and run
# each one for FUZZ_SECONDS (default 60), one after the other.
#
#   scripts/fuzz.sh                    every harness, FUZZ_SECONDS each
#   FUZZ_SECONDS=10 scripts/fuzz.sh    a short run (CI)
#   scripts/fuzz.sh fuzz_idx           only the named harness(es)
#
# Environment: FUZZ_SECONDS, FUZZ_BUILD (default build-fuzz), FUZZ_OUT
# (default fuzz-out), FUZZ_CC (default clang), FUZZ_KEEP_GOING=1 (fork
# mode: record every crash, timeout and OOM and keep fuzzing instead of
# stopping at the first one — for long sessions).
#
# The seed corpus tests/fuzz/corpus/<harness>/ (with the dictionary
# tests/fuzz/<harness>.dict) is read, never written: new inputs go to
# FUZZ_OUT/corpus/<harness>/, crashes, leaks and timeouts to
# FUZZ_OUT/crashes/<harness>/. Exits 1 when any harness found something new,
# 2 when the build failed. To fold new inputs into the seed corpus:
#   build-fuzz/<harness> -merge=1 tests/fuzz/corpus/<harness> fuzz-out/corpus/<harness>
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS_EACH=${FUZZ_SECONDS:-60}
BUILD=${FUZZ_BUILD:-build-fuzz}
OUT=${FUZZ_OUT:-fuzz-out}
ALL=(fuzz_config fuzz_model fuzz_idx fuzz_checkpoint fuzz_onnx)
HARNESSES=("${@:-${ALL[@]}}")
MODE=()
if [[ ${FUZZ_KEEP_GOING:-0} == 1 ]]; then
    MODE=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi

say() { printf 'fuzz: %s\n' "$*"; }

if ! [[ $SECONDS_EACH =~ ^[0-9]+$ ]] || ((SECONDS_EACH < 1)); then
    printf 'fuzz: FUZZ_SECONDS must be a positive integer, got %s\n' "$SECONDS_EACH" >&2
    exit 2
fi
for h in "${HARNESSES[@]}"; do
    case " ${ALL[*]} " in
    *" $h "*) ;;
    *) printf 'fuzz: unknown harness %s (have: %s)\n' "$h" "${ALL[*]}" >&2; exit 2 ;;
    esac
done
CC=${FUZZ_CC:-$(command -v clang || true)}
if [[ -z $CC ]]; then
    printf 'fuzz: clang not found; install clang and libclang-rt-14-dev (scripts/setup.sh --no-data)\n' >&2
    exit 2
fi

mkdir -p "$OUT"
say "building harnesses in $BUILD with $CC"
if ! { cmake -S tests/fuzz -B "$BUILD" -DCMAKE_C_COMPILER="$CC" >"$OUT/build.log" 2>&1 &&
    cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" >>"$OUT/build.log" 2>&1; }; then
    tail -n 30 "$OUT/build.log" >&2
    printf 'fuzz: build failed (full log: %s)\n' "$OUT/build.log" >&2
    exit 2
fi
failed=()
for h in "${HARNESSES[@]}"; do
    corpus="$OUT/corpus/$h"
    crashes="$OUT/crashes/$h"
    log="$OUT/$h.log"
    mkdir -p "$corpus" "$crashes"
    before=$(ls -1 "$crashes")
    say "$h: ${SECONDS_EACH}s (seeds tests/fuzz/corpus/$h, log $log)"
    dict=()
    [[ -f tests/fuzz/$h.dict ]] && dict=(-dict="tests/fuzz/$h.dict")
    rc=0
    # -timeout: a single input taking longer is a finding too (a file that
    # hangs the loader); -rss_limit_mb: likewise for memory.
    "$BUILD/$h" "$corpus" "tests/fuzz/corpus/$h" \
        -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 "${dict[@]}" "${MODE[@]}" \
        -artifact_prefix="$crashes/" >"$log" 2>&1 || rc=$?
    # executions: the final stats line, or (fork mode) the last progress line
    execs=$(awk '/stat::number_of_executed_units/ { s += $2; n++ } END { if (n) print s }' "$log")
    [[ -n $execs ]] || execs=$(awk '/^#[0-9]+/ { n = substr($1, 2) + 0 } END { print n + 0 }' "$log")
    found=$(comm -13 <(printf '%s\n' "$before" | LC_ALL=C sort) <(ls -1 "$crashes" | LC_ALL=C sort) | sed '/^$/d')
    if ((rc != 0)) || [[ -n $found ]]; then
        say "$h: FOUND A PROBLEM after $execs executions (exit $rc); new inputs in $crashes/:"
        printf '%s\n' "$found" | sed '/^$/d; s/^/fuzz:   /'
        grep -m1 -E 'ERROR: |runtime error|fuzz_[a-z]+: ' "$log" | sed 's/^/fuzz:   /' || true
        failed+=("$h")
    else
        say "$h: ok, $execs executions, corpus $(ls "$corpus" | wc -l) inputs"
    fi
done

if ((${#failed[@]})); then
    say "problems found by: ${failed[*]} (reproduce: $BUILD/<harness> $OUT/crashes/<harness>/<file>)"
    exit 1
fi
say "${#HARNESSES[@]} harness(es) ran ${SECONDS_EACH}s each without a crash"
