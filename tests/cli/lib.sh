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
