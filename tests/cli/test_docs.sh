#!/usr/bin/env bash
# test_docs.sh BUILD_DIR SOURCE_DIR — the repository does not point outside
# itself: no tracked file cites a design document or source text that is
# not in the repository (DESIGN.md, seed/..., ../shared), every docs/
# file README.md links exists, and every report folder shipped under
# reports/ carries the report marker, so running its experiment writes into
# it instead of refusing a folder prunelab "did not write".
set -u
. "$(dirname "$0")/lib.sh"
S=$(cd "$2" && pwd -P) || exit 2
cd "$S" || exit 2

case="no references outside the repository"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files | grep -v '^tests/cli/test_docs.sh$')
else
    files=$(find . -type f -not -path './build*' -not -path './.git/*' | sed 's|^\./||')
fi
hits=$(printf '%s\n' "$files" | xargs grep -nI -E 'DESIGN\.md|seed/model-pruning|\.\./shared|zh\.txt' 2>/dev/null)
[ -z "$hits" ] && ok || no "$(printf '%s\n' "$hits" | head -5)"

case="README links to docs/ exist"
for f in $(grep -oE 'docs/[A-Za-z0-9_.-]+\.md' README.md | sort -u); do
    [ -f "$f" ] && ok || no "README links $f, which does not exist"
done

case="shipped report folders are marked as reports"
for r in reports/*/results.md; do
    [ -f "$r" ] || continue
    d=${r%/results.md}
    [ -f "$d/.prunelab-report" ] && ok || no "$d has results.md but no .prunelab-report: 'prunelab run' would refuse the folder"
done

pl_summary
