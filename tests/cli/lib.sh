# lib.sh — the preamble the CLI tests share. A test sources it after `set -u`:
#
#     . "$(dirname "$0")/lib.sh"
#     pl_dirs "$1" "$2"      # B (build), S (source), P ($B/prunelab)
#     cd "$S" || exit 2
#     pl_tmp NAME            # T, a scratch folder removed at exit
#
# then counts its checks with ok / no MESSAGE (no names the current $case),
# runs prunelab with run ARGS... (stdout in $T/out, stderr in $T/err, exit
# status in $rc) and ends with pl_summary, which prints "N passed, M failed"
# and fails when a check failed. A test may redefine run or add checks.

pl_dirs() { # BUILD_DIR SOURCE_DIR
    B=$(cd "$1" && pwd -P) || exit 2
    S=$(cd "$2" && pwd -P) || exit 2
    P="$B/prunelab"
    unset PRUNELAB_PLUGIN_PATH
}

pl_tmp() { # NAME
    T=$(mktemp -d "/tmp/pl-$1.XXXXXX") || exit 2
    trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
}

passed=0 failed=0
ok() { passed=$((passed + 1)); }
no() { failed=$((failed + 1)); echo "FAIL [$case] $*"; }

# run ARGS...: runs prunelab, leaves $rc, $T/out, $T/err
run() {
    case="prunelab $*"
    "$P" "$@" >"$T/out" 2>"$T/err"
    rc=$?
}

pl_summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# ---- allocation-failure injection (core/src/alloc.c) --------------------------
# A test counts its reference command's host allocations (TOTAL: run it with
# PRUNELAB_ALLOC_COUNT=1 PRUNELAB_FAIL_ALLOC=0), defines
#     alloc_run K DIR     the command with allocation K failing: stdout to
#                         DIR/out, stderr to DIR/err; returns its exit status
#     alloc_same DIR      after exit 0: succeeds when DIR holds the
#                         reference's answer (a failed allocation with a
#                         fallback); anything else is a silent wrong answer
# and optionally
#     alloc_left DIR      prints what a case left behind (any exit), if anything
#     alloc_failed DIR RC after exit 1 or 2 with one line: prints what else
#                         is wrong, if anything
# exports them (export -f) and calls
#     pl_alloc_cases TOTAL STRIDE WHAT
# which fails allocation k alone for k = 1, 1+STRIDE, ... TOTAL, the cases
# in parallel on every core (PL_ALLOC_JOBS, default nproc), each in its own
# folder. A case is clean when it ends with no signal, timeout or sanitizer
# report, and either exit 0 with the reference's answer, or exit 1 or 2 with
# exactly one "prunelab: " line on stderr. It prints every defect and the
# count, and fails on any defect. Uses $T.

# pl_alloc_stride SANITIZED_DEFAULT: PL_ALLOC_STRIDE, else 1, or
# SANITIZED_DEFAULT under the sanitizers (PL_SANITIZED=1)
pl_alloc_stride() {
    local d=1
    [[ ${PL_SANITIZED:-0} == 1 ]] && d=$1
    echo "${PL_ALLOC_STRIDE:-$d}"
}

pl_alloc_case() { # K -> $T/res/K: "clean", "ok0" or "FAIL ..."
    local k=$1 d=$T/c$1 rc why lines
    mkdir -p "$d"
    alloc_run "$k" "$d"
    rc=$?
    why=""
    lines=$(awk 'END { print NR }' "$d/err")
    if ((rc >= 124)); then
        why="exit $rc (signal or timeout)"
    elif grep -qE 'Sanitizer|runtime error' "$d/err"; then
        why="sanitizer report"
    elif declare -F alloc_left >/dev/null && why=$(alloc_left "$d") && [[ -n $why ]]; then
        :
    elif ((rc == 0)); then
        if alloc_same "$d"; then
            echo ok0 >"$T/res/$k"
            rm -rf "$d"
            return
        fi
        why="exit 0 with a different or missing answer (a silent wrong answer)"
    elif [[ $lines != 1 ]] || ! grep -q '^prunelab: ' "$d/err"; then
        why="exit $rc with $lines lines on stderr"
    elif declare -F alloc_failed >/dev/null; then
        why=$(alloc_failed "$d" "$rc")
    fi
    if [[ -n $why ]]; then
        echo "FAIL allocation $k of $ALLOC_TOTAL: $why: $(head -c 300 "$d/err" | tr '\n' ' ')" >"$T/res/$k"
    else
        echo clean >"$T/res/$k"
    fi
    rm -rf "$d"
}

pl_alloc_cases() { # TOTAL STRIDE WHAT
    local total=$1 stride=$2 what=$3 jobs k r tried=0 clean=0 ok0=0 bad=0
    export -f pl_alloc_case
    export T ALLOC_TOTAL=$total
    mkdir -p "$T/res"
    jobs=${PL_ALLOC_JOBS:-$(nproc 2>/dev/null || echo 2)}
    seq 1 "$stride" "$total" | xargs -P "$jobs" -I{} bash -c 'pl_alloc_case {}'
    for ((k = 1; k <= total; k += stride)); do
        tried=$((tried + 1))
        r=$(cat "$T/res/$k" 2>/dev/null || echo "FAIL allocation $k of $total: no result recorded")
        case $r in
        clean) clean=$((clean + 1)) ;;
        ok0) clean=$((clean + 1)) ok0=$((ok0 + 1)) ;;
        *) bad=$((bad + 1)); echo "$r" ;;
        esac
    done
    echo "allocations in the $what: $total; failed one at a time: $tried (every ${stride}); clean: $clean (of which $ok0 recovered, exit 0); defects: $bad"
    echo "$clean passed, $bad failed"
    ((bad == 0))
}
