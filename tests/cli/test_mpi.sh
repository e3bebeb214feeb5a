#!/usr/bin/env bash
# The mpi executor under mpirun: a synthetic sweep with shared baselines over
# 3 ranks equals the one-process run and trains each baseline once; a rank
# killed mid-sweep ends the job non-zero with a message, leaves no torn
# record, and the rerun completes equal to an uninterrupted run.
# Skips (exit 0, saying so) when the mpi plugin was not built or mpirun is
# missing. Usage: test_mpi.sh BUILD_DIR SOURCE_DIR
set -u
B=$(cd "$1" && pwd -P) || exit 2
S=$(cd "$2" && pwd -P) || exit 2
PL="$B/prunelab"
cd "$S" || exit 2
if [ ! -f "$B/plugins/executors/mpi.so" ] || ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP: the mpi executor is not built or mpirun is missing (apt-get install libopenmpi-dev openmpi-bin, then rebuild)"
    echo "0 passed, 0 failed (skipped)"
    exit 0
fi
unset PRUNELAB_PLUGIN_PATH PRUNELAB_CLAIM_WAIT
# root in containers and CI; a 2-core machine runs 3 ranks
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Under AddressSanitizer, LeakSanitizer reports what Open MPI itself never
# frees; the suppressions name Open MPI's libraries only, never ours. They
# match only with full stacks: Open MPI's libraries lack frame pointers, so
# the fast unwinder stops inside them.
export LSAN_OPTIONS="suppressions=$S/tests/lsan-openmpi.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
MPIRUN=(mpirun --oversubscribe --bind-to none)
T=$(mktemp -d /tmp/pl-mpi.XXXXXX) || exit 2
mpid=
trap '[ -n "$mpid" ] && kill -9 "$mpid" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$2"; then ok; else bad "$1"; fi; }

strip_timing() {
    awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i ~ /^latency_|_seconds$/) skip[i]=1}
             {s=""; for(i=1;i<=NF;i++) if(!skip[i]) s=s (s==""?"":",") $i; print s}' "$1"
}
n_trainings() { cat "$1"/runs/*.json | grep -o '"baseline_seconds": *[^,}]*' | sort -u | wc -l; }
same() { "$PL" compare "$1/results.csv" "$2/results.csv" --tolerance acc=0,params=0,macs=0,sparsity=0 >/dev/null 2>&1 &&
    diff <(strip_timing "$1/results.csv") <(strip_timing "$2/results.csv") >/dev/null && cmp -s "$1/layers.csv" "$2/layers.csv"; }

# 18 runs from 3 baselines (one per seed)
cat >"$T/sweep.yaml" <<'EOF'
name: mpitest
seed: 1
model: configs/models/lenet_300_100.yaml
dataset: {plugin: synthetic, train_count: 1280, test_count: 200, noise: 2.0}
backend: simd
train: {epochs: 1, batch_size: 64}
prune: {criterion: l1, granularity: neuron, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 10} # runs long enough that the kill below lands mid-sweep
report: {latency_runs: 1, plots: false}
sweep:
  prune.criterion: [l1, l2, random]
  prune.sparsity: [0.25, 0.5]
  seed: [1, 2, 3]
EOF

"$PL" run "$T/sweep.yaml" --threads 1 --out "$T/ref" --quiet >"$T/ref.log" 2>&1
check "one-process reference exits 0" '[ $? -eq 0 ]'

# -- 3 ranks
timeout 600 "${MPIRUN[@]}" -n 3 "$PL" run "$T/sweep.yaml" --executor mpi --threads 1 --out "$T/m3" >"$T/m3.log" 2>&1
rc=$?
check "mpirun -n 3 exits 0 (got $rc)" '[ $rc -eq 0 ] || { tail -5 "$T/m3.log"; false; }'
check "mpirun -n 3: 18 records" '[ "$(ls "$T/m3/runs" | grep -c "\.json$")" -eq 18 ]'
check "mpirun -n 3: report equals the one-process report (zero tolerance)" 'same "$T/ref" "$T/m3"'
check "mpirun -n 3: each baseline trained once (3 trainings)" '[ "$(n_trainings "$T/m3")" -eq 3 ]'
check "mpirun -n 3: every rank executed runs" \
    'for r in 0 1 2; do grep -q "^\[mpi\] .* run [0-9a-f]* on rank $r: ok" "$T/m3.log" || exit 1; done'
check "mpirun -n 3: progress with done/total and ETA" 'grep -q "^\[mpi\] 18/18 runs done, 3/3 baselines .* ETA 0s" "$T/m3.log"'
# each run finished after the baseline it starts from (the seed's): the
# progress lines name a run needing the baseline, results.csv maps runs to seeds
baseline_before_runs() {
    awk -F, 'FNR==NR { if (FNR > 1) seed[$1] = $6; next }
             /baseline for [0-9a-f]+ on rank/ { match($0, /baseline for [0-9a-f]+/); id = substr($0, RSTART + 13, 16); ready[seed[id]] = 1; nb++ }
             / run [0-9a-f]+ on rank [0-9]+: / { match($0, / run [0-9a-f]+ on/); id = substr($0, RSTART + 5, 16); nr++; if (!ready[seed[id]]) bad++ }
             END { exit !(nb == 3 && nr == 18 && !bad) }' "$T/m3/results.csv" "$T/m3.log"
}
check "mpirun -n 3: every run finished after its baseline" baseline_before_runs
check "mpirun -n 3: one report written" 'grep -c "^report: " "$T/m3.log" | grep -qx 1'

# -- kill one worker rank mid-sweep
"${MPIRUN[@]}" -n 3 "$PL" run "$T/sweep.yaml" --executor mpi --threads 1 --out "$T/killed" >"$T/killed.log" 2>&1 &
mpid=$!
victim=
for _ in $(seq 1 1200); do
    n=$(ls "$T/killed/runs" 2>/dev/null | grep -c '\.json$')
    if [ "$n" -ge 3 ]; then
        # freeze every rank first: on a fast machine the others would
        # otherwise finish the sweep before mpirun sees the death
        ranks=$(pgrep -P "$mpid")
        kill -STOP $ranks 2>/dev/null
        for p in $ranks; do
            tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
        done
        break
    fi
    sleep 0.05
done
[ -n "$victim" ] && kill -9 "$victim"
sleep 1 # mpirun has seen rank 1 die; the others resume only to be stopped by it
[ -n "${ranks:-}" ] && kill -CONT $ranks 2>/dev/null
wait "$mpid"
rc=$?
mpid=
n=$(ls "$T/killed/runs" | grep -c '\.json$')
check "killed rank: found and killed rank 1" '[ -n "$victim" ]'
check "killed rank: mpirun exits non-zero (got $rc)" '[ $rc -ne 0 ]'
check "killed rank: mpirun says which rank died" 'grep -Eqi "rank 1 .*(exited on signal 9|killed)" "$T/killed.log" || { tail -5 "$T/killed.log"; false; }'
check "killed rank: stopped midway ($n of 18 records)" '[ "$n" -ge 3 ] && [ "$n" -lt 18 ]'
check "killed rank: every record parses (none torn)" '"$PL" report "$T/killed" >/dev/null 2>&1'
n2=$(ls "$T/killed/runs" | grep -c '\.json$') # the other ranks may have finished a run meanwhile
timeout 600 "${MPIRUN[@]}" -n 3 "$PL" run "$T/sweep.yaml" --executor mpi --threads 1 --out "$T/killed" >"$T/rerun.log" 2>&1
rc=$?
check "killed rank: the rerun exits 0 (got $rc)" '[ $rc -eq 0 ] || { tail -5 "$T/rerun.log"; false; }'
check "killed rank: the rerun resumed (ran only what was missing)" \
    'grep -q "^\[mpi\] 3 rank(s): $((18 - n2)) run(s) from" "$T/rerun.log"'
check "killed rank: the rerun equals an uninterrupted run" 'same "$T/ref" "$T/killed"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
