#!/usr/bin/env bash
# Sweeps: expansion, shared baselines (cache hits and misses), resume after a
# kill, shards merged by `prunelab report`, and `compare` on the results.
# Usage: test_sweep.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$1
SRC=$2
PL="$BUILD/prunelab"
cd "$SRC" || exit 2
T=$(mktemp -d /tmp/pl-sweep.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$2"; then ok; else bad "$1"; fi; }

# results.csv without the timing columns (latency_*, *_seconds)
strip_timing() {
    awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i ~ /^latency_|_seconds$/) skip[i]=1}
             {s=""; for(i=1;i<=NF;i++) if(!skip[i]) s=s (s==""?"":",") $i; print s}' "$1"
}

cat >"$T/sweep.yaml" <<'EOF'
name: sweeptest
seed: 1
model: configs/models/lenet_300_100.yaml
dataset: {plugin: synthetic, train_count: 640, test_count: 200, noise: 2.0}
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

# -- expansion
out=$("$PL" validate "$T/sweep.yaml" 2>&1)
check "validate reports 12 runs" 'grep -q "12 run(s)" <<<"$out"'
check "validate lists the axes" 'grep -q "sweep prune.criterion: 3 value(s)" <<<"$out"'
check "last key varies fastest" '[ "$(grep -m2 "^run " <<<"$out" | sed "s/.*seed=//" | tr "\n" " ")" = "1 2 " ]'

# -- full run: 12 runs, 2 baselines (one per seed)
"$PL" run "$T/sweep.yaml" --out "$T/full" --quiet >"$T/full.log" 2>&1
check "full sweep exits 0" '[ $? -eq 0 ]'
check "12 records" '[ "$(ls "$T/full/runs" | wc -l)" -eq 12 ]'
check "12 result rows" '[ "$(tail -n +2 "$T/full/results.csv" | wc -l)" -eq 12 ]'
check "2 cached baselines (one per seed)" '[ "$(ls "$T/full/cache" | wc -l)" -eq 2 ]'
check "runs of one seed share acc_baseline" '[ "$(awk -F, "NR>1 && \$6==1 {print \$20}" "$T/full/results.csv" | sort -u | wc -l)" -eq 1 ]'

# -- cache hit: a new experiment sharing the cache trains no baseline
sed -e 's/prune.sparsity: \[0.25, 0.5\]/prune.sparsity: [0.75]/' "$T/sweep.yaml" >"$T/more.yaml"
"$PL" run "$T/more.yaml" --set report.cache="$T/full/cache" --out "$T/more" >"$T/more.log" 2>&1
check "cache hit run exits 0" '[ $? -eq 0 ]'
check "cache hit reuses baselines" '[ "$(grep -c "baseline: reusing" "$T/more.log")" -eq 6 ]'
check "cache hit trains no baseline" '! grep -q "^train " "$T/more.log"'
check "cache miss when the training section differs" '"$PL" run "$T/more.yaml" --set report.cache="$T/full/cache" --set train.batch_size=32 --out "$T/miss" 2>&1 | grep -q "^train "'

# -- resume after a kill: SIGKILL once 3 records exist, rerun, same table
"$PL" run "$T/sweep.yaml" --out "$T/killed" --quiet >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    n=$(ls "$T/killed/runs" 2>/dev/null | grep -c '\.json$')
    [ "$n" -ge 3 ] && break
    sleep 0.05
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
n=$(ls "$T/killed/runs" | grep -c '\.json$')
check "killed midway (some but not all records)" '[ "$n" -ge 3 ] && [ "$n" -lt 12 ]'
check "no half-written record" '! ls "$T/killed/runs" | grep -qv "\.json$"'
"$PL" run "$T/sweep.yaml" --out "$T/killed" >"$T/resume.log" 2>&1
check "resume exits 0" '[ $? -eq 0 ]'
check "resume says what it kept" 'grep -q "resumed: $n finished run(s) kept" "$T/resume.log"'
check "resumed results.csv equals the uninterrupted one (timing aside)" \
    'diff <(strip_timing "$T/full/results.csv") <(strip_timing "$T/killed/results.csv") >/dev/null'
check "resumed layers.csv equals the uninterrupted one" 'cmp -s "$T/full/layers.csv" "$T/killed/layers.csv"'

# -- shards: 1/3, 2/3, 3/3 into one folder, then report
for i in 1 2 3; do
    "$PL" run "$T/sweep.yaml" --out "$T/shards" --shard $i/3 --quiet >/dev/null 2>&1 || bad "shard $i/3 failed"
done
check "shard 1/3 ran runs 0,3,6,9 only" '[ "$(ls "$T/shards/runs" | wc -l)" -eq 12 ]'
"$PL" report "$T/shards" >/dev/null 2>&1
check "report after shards exits 0" '[ $? -eq 0 ]'
check "sharded results.csv equals the full one (timing aside)" \
    'diff <(strip_timing "$T/full/results.csv") <(strip_timing "$T/shards/results.csv") >/dev/null'
check "--shard 0/2 is a usage error" '"$PL" run "$T/sweep.yaml" --shard 0/2 >/dev/null 2>&1; [ $? -eq 2 ]'

# -- compare: identical → 0; a baseline expecting 2 more points → 1, row named
"$PL" compare "$T/full/results.csv" "$T/killed/results.csv" >"$T/cmp.out" 2>&1
check "compare identical exits 0" '[ $? -eq 0 ]'
awk -F, 'BEGIN{OFS=","} NR==1{for(i=1;i<=NF;i++) if($i=="acc_final") c=i; print; next} {$c=sprintf("%.2f",$c+2); print}' \
    "$T/full/results.csv" >"$T/edited.csv"
"$PL" compare "$T/edited.csv" "$T/full/results.csv" >"$T/cmp2.out" 2>&1
check "compare against +2 points exits 1" '[ $? -eq 1 ]'
first=$(awk -F, 'NR==2{print $1}' "$T/full/results.csv")
check "compare names the regressed row" 'grep -q "$first" "$T/cmp2.out"'
check "compare marks REGRESSION" 'grep -q "REGRESSION" "$T/cmp2.out"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
