#!/usr/bin/env bash
# Scale-out without MPI: concurrent processes on one report folder claim runs
# and baselines (three --shard processes, two plain runs), stale claims of
# dead processes are taken over, a live claim is waited for (bounded), the
# executor option (built-in `local`, a missing `mpi`), and the host binary
# never links MPI.
# Usage: test_scaleout.sh BUILD_DIR SOURCE_DIR
set -u
B=$(cd "$1" && pwd -P) || exit 2
S=$(cd "$2" && pwd -P) || exit 2
PL="$B/prunelab"
cd "$S" || exit 2
unset PRUNELAB_PLUGIN_PATH PRUNELAB_CLAIM_WAIT
T=$(mktemp -d /tmp/pl-scale.XXXXXX) || exit 2
holder=
trap '[ -n "$holder" ] && kill "$holder" 2>/dev/null; rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$2"; then ok; else bad "$1"; fi; }

strip_timing() {
    awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i ~ /^latency_|_seconds$/) skip[i]=1}
             {s=""; for(i=1;i<=NF;i++) if(!skip[i]) s=s (s==""?"":",") $i; print s}' "$1"
}
# distinct baseline_seconds over DIR's records: a baseline trained twice
# would give its runs two different timings (records keep full precision)
n_trainings() { cat "$1"/runs/*.json | grep -o '"baseline_seconds": *[^,}]*' | sort -u | wc -l; }
# how often each run was executed, over the logs given: "== run i/n ID ..."
max_executions() { cat "$@" | awk '/^== run /{c[$4]++} END{m=0; for(k in c) if(c[k]>m) m=c[k]; print m}'; }
n_executed() { cat "$@" | awk '/^== run /{c[$4]=1} END{print length(c)}'; }

# 12 runs from 2 baselines (one per seed); training long enough that
# processes started together really overlap
cat >"$T/sweep.yaml" <<'EOF'
name: scaletest
seed: 1
model: configs/models/lenet_300_100.yaml
dataset: {plugin: synthetic, train_count: 3000, test_count: 200, noise: 2.0}
backend: simd
train: {epochs: 1, batch_size: 64}
prune: {criterion: l1, granularity: neuron, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1}
report: {latency_runs: 1, plots: false}
sweep:
  prune.criterion: [l1, l2, random]
  prune.sparsity: [0.25, 0.5]
  seed: [1, 2]
EOF
RUN=("$PL" run "$T/sweep.yaml" --threads 1)

# -- the reference: one process
"${RUN[@]}" --out "$T/ref" --quiet >"$T/ref.log" 2>&1
check "reference run exits 0" '[ $? -eq 0 ]'
check "reference has 12 rows" '[ "$(tail -n +2 "$T/ref/results.csv" | wc -l)" -eq 12 ]'

# -- two plain runs at once on one --out
"${RUN[@]}" --out "$T/two" >"$T/two1.log" 2>&1 &
p1=$!
"${RUN[@]}" --out "$T/two" >"$T/two2.log" 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
check "two concurrent runs exit 0 ($r1, $r2)" '[ $r1 -eq 0 ] && [ $r2 -eq 0 ]'
check "two concurrent runs: every run executed (12)" '[ "$(n_executed "$T"/two[12].log)" -eq 12 ]'
check "two concurrent runs: no run executed twice" '[ "$(max_executions "$T"/two[12].log)" -eq 1 ]'
check "two concurrent runs: each baseline trained once (2 trainings)" '[ "$(n_trainings "$T/two")" -eq 2 ]'
check "two concurrent runs: 2 baseline epochs in the logs" '[ "$(cat "$T"/two[12].log | grep -c "^train ")" -eq 2 ]'
check "two concurrent runs: the report (written last) equals the one-process report" \
    'diff <(strip_timing "$T/ref/results.csv") <(strip_timing "$T/two/results.csv") >/dev/null'
check "two concurrent runs: layers.csv equal" 'cmp -s "$T/ref/layers.csv" "$T/two/layers.csv"'
check "two concurrent runs: no claim left" '[ -z "$(ls "$T/two/claims")" ] && ! ls "$T/two/cache" | grep -q claim'

# -- three --shard processes at once on one --out, then `prunelab report`
pids=()
for i in 1 2 3; do
    "${RUN[@]}" --out "$T/shards" --shard $i/3 >"$T/shard$i.log" 2>&1 &
    pids+=($!)
done
rs=0
for p in "${pids[@]}"; do wait "$p" || rs=1; done
check "three concurrent shards exit 0" '[ $rs -eq 0 ]'
check "shards: every run executed once" \
    '[ "$(n_executed "$T"/shard?.log)" -eq 12 ] && [ "$(max_executions "$T"/shard?.log)" -eq 1 ]'
check "shards: each baseline trained once (2 trainings)" '[ "$(n_trainings "$T/shards")" -eq 2 ]'
check "shards: 2 baseline epochs in the logs" '[ "$(cat "$T"/shard?.log | grep -c "^train ")" -eq 2 ]'
"$PL" report "$T/shards" >/dev/null 2>&1
check "report after the shards exits 0" '[ $? -eq 0 ]'
check "shards: report equals the one-process report" \
    'diff <(strip_timing "$T/ref/results.csv") <(strip_timing "$T/shards/results.csv") >/dev/null'

# run ids in sweep order, from validate
mapfile -t ids < <("$PL" validate "$T/sweep.yaml" | awk '/^run [0-9]+\/12 /{print $3}')
check "validate lists 12 run ids" '[ "${#ids[@]}" -eq 12 ]'
host=$(hostname)
claim() { printf 'prunelab-claim 1\nhost %s\npid %s\nstart %s\n' "$host" "$1" "$2"; }

# -- stale claims (a dead process of this host) are taken over
mkdir -p "$T/stale/claims" "$T/stale/cache"
true &
dead=$!
wait $dead
claim "$dead" 12345 >"$T/stale/claims/${ids[0]}.claim"
claim 1 1 >"$T/stale/claims/${ids[1]}.claim" # pid 1 lives, but started at another time: recycled pid
"${RUN[@]}" --out "$T/stale" --quiet >"$T/stale.log" 2>&1
check "stale claims: run exits 0" '[ $? -eq 0 ]'
check "stale claims: every run done" '[ "$(ls "$T/stale/runs" | grep -c "\.json$")" -eq 12 ]'
check "stale claims: removed" '[ -z "$(ls "$T/stale/claims")" ]'

# -- a live claim is left to its holder, then waited for, boundedly
sleep 120 &
holder=$!
start=$(awk '{print $22}' /proc/$holder/stat)
mkdir -p "$T/live/claims"
claim "$holder" "$start" >"$T/live/claims/${ids[0]}.claim"
PRUNELAB_CLAIM_WAIT=1 "${RUN[@]}" --out "$T/live" --quiet >"$T/live.out" 2>"$T/live.err"
rc=$?
check "live claim: gives up with exit 2 (got $rc)" '[ $rc -eq 2 ]'
check "live claim: the other 11 runs are done" '[ "$(ls "$T/live/runs" | grep -c "\.json$")" -eq 11 ]'
check "live claim: one-line error naming the holder and the claim" \
    '[ "$(wc -l <"$T/live.err")" -eq 1 ] && grep -q "gave up after 1 s waiting for $host pid $holder to finish run ${ids[0]}.*remove .*${ids[0]}.claim" "$T/live.err"'
# the same for a baseline: a live claim on one of the two baselines
mkdir -p "$T/liveb/cache"
key=$(ls "$T/ref/cache" | grep -m1 '^baseline-.*\.ckpt$')
claim "$holder" "$start" >"$T/liveb/cache/$key.claim"
PRUNELAB_CLAIM_WAIT=1 "${RUN[@]}" --out "$T/liveb" >"$T/liveb.out" 2>"$T/liveb.err"
rc=$?
check "live baseline claim: waits, says for whom, gives up with exit 2 (got $rc)" \
    '[ $rc -eq 2 ] && grep -q "^baseline: waiting for $host pid $holder, which is training .*$key" "$T/liveb.out" &&
     grep -q "gave up after 1 s waiting for $host pid $holder to train this baseline" "$T/liveb.err"'
check "live baseline claim: that baseline was not trained" '[ ! -e "$T/liveb/cache/$key" ]'
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
holder=
"${RUN[@]}" --out "$T/live" --quiet >/dev/null 2>&1
check "live claim: after the holder died, a rerun finishes the sweep" \
    '[ $? -eq 0 ] && diff <(strip_timing "$T/ref/results.csv") <(strip_timing "$T/live/results.csv") >/dev/null'
"${RUN[@]}" --out "$T/liveb" --quiet >/dev/null 2>&1
check "live baseline claim: after the holder died, a rerun trains it and finishes" \
    '[ $? -eq 0 ] && [ -e "$T/liveb/cache/$key" ] && diff <(strip_timing "$T/ref/results.csv") <(strip_timing "$T/liveb/results.csv") >/dev/null'

# -- executors
"$PL" plugins >"$T/plugins.out" 2>&1
check "plugins lists the built-in local executor" 'grep -Eq "^executor +local .*\(built-in\)" "$T/plugins.out"'
"${RUN[@]}" --out "$T/ref" --executor local --quiet >/dev/null 2>&1
check "--executor local works (and resumes: nothing to do)" '[ $? -eq 0 ]'
# a prunelab with every plugin but the executors: --executor mpi is a clear error
mkdir -p "$T/bin/plugins"
cp "$PL" "$T/bin/prunelab"
for k in criteria schedules datasets backends; do ln -s "$B/plugins/$k" "$T/bin/plugins/$k"; done
"$T/bin/prunelab" run "$T/sweep.yaml" --executor mpi --out "$T/nompi" >"$T/nompi.out" 2>"$T/nompi.err"
rc=$?
check "--executor mpi without the plugin exits 2 (got $rc)" '[ $rc -eq 2 ]'
check "--executor mpi without the plugin: one line naming where it looked" \
    '[ "$(wc -l <"$T/nompi.err")" -eq 1 ] && grep -q "no executor plugin .mpi. (looked for executors/mpi.so .* in: $T/bin/plugins" "$T/nompi.err"'
check "--executor mpi without the plugin writes nothing" '[ ! -e "$T/nompi" ]'
"$PL" run "$T/sweep.yaml" --executor "" >/dev/null 2>&1
check "--executor needs a name" '[ $? -eq 2 ]'
check "the host binary does not link MPI" '! readelf -d "$PL" | grep NEEDED | grep -qi mpi'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
