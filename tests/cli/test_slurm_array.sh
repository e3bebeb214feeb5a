#!/usr/bin/env bash
# scripts/slurm-array.sh against a stand-in sbatch (Slurm is not installed
# here): the array tasks run at once as `--shard I/N` processes on one
# folder, the dependent job runs `prunelab report`; the report equals a
# one-process run and each baseline is trained once.
# Usage: test_slurm_array.sh BUILD_DIR SOURCE_DIR
set -u
B=$(cd "$1" && pwd -P) || exit 2
S=$(cd "$2" && pwd -P) || exit 2
PL="$B/prunelab"
cd "$S" || exit 2
unset PRUNELAB_PLUGIN_PATH PRUNELAB_CLAIM_WAIT
T=$(mktemp -d /tmp/pl-slurm.XXXXXX) || exit 2
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$2"; then ok; else bad "$1"; fi; }
strip_timing() {
    awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i ~ /^latency_|_seconds$/) skip[i]=1}
             {s=""; for(i=1;i<=NF;i++) if(!skip[i]) s=s (s==""?"":",") $i; print s}' "$1"
}

mkdir -p "$T/bin" "$T/slurm"
cat >"$T/bin/sbatch" <<'EOF'
#!/usr/bin/env bash
# stand-in for sbatch: --array tasks start at once in the background; a
# --dependency job waits until every task has ended (afterany), then runs
array= wrap= dep= out=
for a; do
    case $a in
    --array=*) array=${a#--array=} ;;
    --wrap=*) wrap=${a#--wrap=} ;;
    --dependency=*) dep=${a#--dependency=} ;;
    --output=*) out=${a#--output=} ;;
    esac
done
st=$FAKE_SLURM_DIR
if [ -n "$array" ]; then
    for i in $(seq "${array%-*}" "${array#*-}"); do
        (SLURM_ARRAY_TASK_ID=$i bash -c "$wrap" >"${out//%a/$i}" 2>&1; echo $? >"$st/task-$i.rc") &
        echo "$i" >>"$st/tasks"
    done
    echo 4242
else
    [ "$dep" = "afterany:4242" ] || { echo "unexpected dependency $dep" >&2; exit 1; }
    while [ "$(ls "$st"/task-*.rc 2>/dev/null | wc -l)" -lt "$(wc -l <"$st/tasks")" ]; do sleep 0.1; done
    bash -c "$wrap" >"$out" 2>&1
    echo $? >"$st/report.rc"
    echo 4243
fi
EOF
chmod +x "$T/bin/sbatch"

cat >"$T/sweep.yaml" <<'EOF'
name: slurmtest
seed: 1
model: configs/models/lenet_300_100.yaml
dataset: {plugin: synthetic, train_count: 1280, test_count: 200, noise: 2.0}
backend: simd
train: {epochs: 1, batch_size: 64}
prune: {criterion: l1, granularity: neuron, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1}
report: {latency_runs: 1, plots: false}
sweep:
  prune.criterion: [l1, l2]
  prune.sparsity: [0.25, 0.5]
  seed: [1, 2]
EOF
"$PL" run "$T/sweep.yaml" --threads 1 --out "$T/ref" --quiet >/dev/null 2>&1
check "reference run exits 0" '[ $? -eq 0 ]'

PATH="$T/bin:$PATH" FAKE_SLURM_DIR="$T/slurm" PRUNELAB="$PL" \
    bash scripts/slurm-array.sh "$T/sweep.yaml" "$T/out" 3 1 >"$T/submit.log" 2>&1
check "slurm-array.sh exits 0" '[ $? -eq 0 ] || { cat "$T/submit.log"; false; }'
check "slurm-array.sh says what it submitted" 'grep -q "submitted array job 4242 (3 tasks) and report job 4243" "$T/submit.log"'
check "three array tasks, each exit 0" '[ "$(cat "$T"/slurm/task-*.rc | tr -d "\n")" = "000" ]'
check "the report job exits 0" '[ "$(cat "$T/slurm/report.rc")" = 0 ]'
check "task logs land in OUT/slurm" '[ -f "$T/out/slurm/task-1.log" ] && [ -f "$T/out/slurm/report.log" ]'
check "each baseline trained once (2 trainings)" \
    '[ "$(cat "$T"/out/runs/*.json | grep -o "\"baseline_seconds\": *[^,}]*" | sort -u | wc -l)" -eq 2 ]'
check "the report equals the one-process report" \
    'diff <(strip_timing "$T/ref/results.csv") <(strip_timing "$T/out/results.csv") >/dev/null'
DRY_RUN=1 PRUNELAB="$PL" bash scripts/slurm-array.sh "$T/sweep.yaml" "$T/dry" 7 2 >"$T/dry.log" 2>&1
check "DRY_RUN prints the array and the report command" \
    'grep -q -- "--array=1-7" "$T/dry.log" && grep -q -- "--dependency=afterany:JOBID" "$T/dry.log"'
PRUNELAB="$PL" bash scripts/slurm-array.sh "$T/sweep.yaml" "$T/bad" 0 >/dev/null 2>"$T/bad.err"
check "TASKS 0 is refused with exit 2" '[ $? -eq 2 ] && grep -q "TASKS must be a positive integer" "$T/bad.err"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
