#!/usr/bin/env bash
# test_adversarial.sh BUILD_DIR SOURCE_DIR — the adversarial pass of issue 14:
# 170 hostile or careless inputs (numbers at their limits, broken and
# strange files, records and CSVs, output folders, plugins, command lines).
# Each case must end cleanly: "err" cases exit 1 or 2 with exactly one
# "prunelab: " line on stderr, "ok" cases exit 0, none may end by a signal,
# a timeout or a sanitizer report. About 30 s.
set -u
BUILD=$(cd "$1" && pwd); cd "$2" || exit 2
PL="$BUILD/prunelab"; FX=tests/fixtures/bad
unset PRUNELAB_PLUGIN_PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/pl-adv.XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0; clean=0; bad=0
case_() { # case_ NAME WANT(err|ok|any) -- ARGS
    local name=$1 want=$2
    shift 3
    n=$((n+1))
    timeout 60 "$PL" "$@" >"$T/out" 2>"$T/err" </dev/null
    local rc=$? lines
    lines=$(awk 'END{print NR}' "$T/err")
    local why=""
    if ((rc >= 124)); then why="rc $rc (signal/timeout)"
    elif grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$T/err"; then why="sanitizer"
    elif [[ $want == ok && $rc != 0 ]]; then why="rc $rc, want 0: $(head -c 200 "$T/err")"
    elif [[ $want == err && $rc == 0 ]]; then why="accepted (rc 0)"
    elif [[ $want == usage ]]; then [[ $rc == 2 ]] || why="rc $rc, want 2 with the usage"
    elif [[ $want == regression ]]; then [[ $rc == 1 && ! -s $T/err ]] || why="rc $rc, want 1 and the table on stdout"
    elif ((rc != 0)) && [[ $lines != 1 ]]; then why="$lines stderr lines"
    elif ((rc != 0)) && ! grep -q '^prunelab: ' "$T/err"; then why="no prunelab: prefix"
    fi
    if [[ -z $why ]]; then clean=$((clean+1)); else bad=$((bad+1)); echo "DEFECT $name: $why"; fi
}
B="$FX/base.yaml"
R() { echo "$T/r$n"; }
# numbers at their limits (--set)
for kv in train.epochs=-1 train.epochs=2147483648 train.epochs=1e309 train.epochs=nan train.epochs=0x10 \
    train.epochs=1_0 train.batch_size=0 train.batch_size=-5 train.batch_size=99999999999 \
    train.optimizer.lr=nan train.optimizer.lr=inf train.optimizer.lr=-inf train.optimizer.lr=1e309 \
    train.optimizer.lr=-0 train.optimizer.lr=abc prune.sparsity=1 prune.sparsity=-0.0001 \
    prune.sparsity=nan prune.sparsity=2 seed=-1 seed=18446744073709551616 seed=1.5 seed=abc \
    report.latency_runs=-1 report.latency_runs=99999999999 limits.max_runs=-1 \
    dataset.height=0 dataset.height=-8 dataset.height=100000 dataset.classes=1 dataset.classes=0 \
    dataset.train_count=0 dataset.test_count=-1 dataset.noise=nan dataset.noise=-1 \
    train.optimizer.type=rmsprop prune.granularity=block prune.criterion= prune.criterion=L1 \
    'prune.criterion=l1 ' backend=REF backend= name= 'name=a/b' 'name=..' 'name=a b' \
    train.optimizer.weight_decay=-1 'model=' 'report.dir=' \
    train.epochs= 'train={}' 'prune=[]' 'sweep={seed: []}' 'sweep.seed=[1,2]' '=1' 'a.b.c=1' '.=1' \
    'train..epochs=1' 'train.epochs.x=1'; do
    case_ "--set $kv" err -- run "$B" --set "$kv" --out "$(R)"
done
# numbers that are fine at their edge
for kv in train.optimizer.lr=1e-30 prune.sparsity=0.0001 seed=18446744073709551615 seed=0 \
    report.latency_runs=1 train.batch_size=64; do
    case_ "--set $kv (valid edge)" ok -- run "$B" --set "$kv" --out "$(R)"
done
# command line
for args in "--threads 0" "--threads 257" "--threads -1" "--threads abc" "--threads 1e3" "--threads" \
    "--out" "--set" "--shard" "--shard 1/1/1" "--shard /" "--shard 1.5/2" "--plugin-path" "--frob"; do
    # shellcheck disable=SC2086
    case_ "run $args" err -- run "$B" $args
done
case_ "no command" usage --
case_ "unknown command" err -- frobnicate
case_ "run two files" err -- run "$B" "$B"
case_ "compare one file" err -- compare "$B"
case_ "report no dir" err -- report
case_ "report missing dir" err -- report "$T/none"
case_ "report a file" err -- report "$B"
case_ "plugins with arg" err -- plugins x
case_ "plugin-check unknown" err -- plugin-check nosuch
case_ "plugin-check path" err -- plugin-check ../l1
# files
: >"$T/empty.yaml"; case_ "empty experiment" err -- validate "$T/empty.yaml"
case_ "/dev/null experiment" err -- validate /dev/null
case_ "directory experiment" err -- validate "$T"
ln -s "$T/loop" "$T/loop"; case_ "symlink loop experiment" err -- validate "$T/loop"
long=$(printf 'a%.0s' {1..5000}); case_ "5000-char path" err -- validate "$T/$long.yaml"
printf 'name: x\nmodel: %s\n' "$T/empty.yaml" >"$T/em.yaml"; case_ "empty model file" err -- validate "$T/em.yaml"
head -c 3000 /dev/urandom >"$T/junk.yaml"; case_ "random bytes experiment" err -- validate "$T/junk.yaml"
printf 'name: x\n' >"$T/nomodel.yaml"; case_ "no model key" err -- validate "$T/nomodel.yaml"
printf -- '- a\n- b\n' >"$T/seq.yaml"; case_ "a YAML list" err -- validate "$T/seq.yaml"
printf 'name: x\n---\nname: y\n' >"$T/multi.yaml"; case_ "two documents" err -- validate "$T/multi.yaml"
printf 'a: &x 1\nb: *x\n' >"$T/alias.yaml"; case_ "anchors" err -- validate "$T/alias.yaml"
{ printf 'name: x\ntrain: '; for i in $(seq 1 5000); do printf '{a: '; done; } >"$T/deep.yaml"; case_ "5000-deep flow map" err -- validate "$T/deep.yaml"
{ printf 'name: '; head -c 100000 /dev/zero | tr '\0' 'a'; printf '\n'; } >"$T/longname.yaml"; case_ "100 kB name" err -- validate "$T/longname.yaml"
for m in "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers: []\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: flatten}\n" \
    "name: m\ninput: [0, 8, 8]\nclasses: 4\nlayers:\n  - {type: flatten}\n  - {type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: flatten}\n  - {type: linear, out: 2147483647}\n  - {type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: conv2d, out: 4, kernel: 9}\n  - {type: flatten}\n  - {type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: conv2d, out: 4, kernel: 3, stride: 0}\n  - {type: flatten}\n  - {type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: maxpool2d, kernel: 0}\n  - {type: flatten}\n  - {type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: dropout, p: 1}\n  - {type: flatten}\n  - {type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: batchnorm2d, eps: -1}\n  - {type: flatten}\n  - {type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {name: a, type: flatten}\n  - {name: a, type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: teleport}\n" \
    "name: m\ninput: [1, 8]\nclasses: 4\nlayers:\n  - {type: flatten}\n  - {type: linear, out: 4}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 1\nlayers:\n  - {type: flatten}\n  - {type: linear, out: 1}\n" \
    "name: m\ninput: [1, 8, 8]\nclasses: 4\nlayers:\n  - {type: flatten}\n  - {type: linear, out: 4, bias: maybe}\n"; do
    n2=$((n+1)); printf "$m" >"$T/m$n2.yaml"
    case_ "model: $(printf "$m" | tail -n 2 | head -n 1 | cut -c1-60)" err -- validate "$B" --set "model=$T/m$n2.yaml"
done
# compare inputs
G=tests/fixtures/report/results.csv.golden
: >"$T/e.csv"; case_ "compare empty" err -- compare "$G" "$T/e.csv"
head -1 "$G" >"$T/h.csv"; case_ "compare header only (all runs missing)" regression -- compare "$G" "$T/h.csv"
cut -d, -f2- "$G" >"$T/norid.csv"; case_ "compare without run_id" err -- compare "$G" "$T/norid.csv"
{ cat "$G"; sed -n 2p "$G"; } >"$T/dup.csv"; case_ "compare duplicate run_id" err -- compare "$G" "$T/dup.csv"
sed 's/$/\r/' "$G" >"$T/crlf.csv"; case_ "compare CRLF (valid)" ok -- compare "$G" "$T/crlf.csv"
{ head -1 "$G"; printf '"unterminated,\n'; } >"$T/q.csv"; case_ "compare unterminated quote" err -- compare "$G" "$T/q.csv"
{ cat "$G"; head -c 2000000 /dev/zero | tr '\0' 'x'; echo; } >"$T/longline.csv"; case_ "compare 2 MB line" err -- compare "$G" "$T/longline.csv"
head -c 5000 /dev/urandom >"$T/rand.csv"; case_ "compare random bytes" err -- compare "$G" "$T/rand.csv"
for tol in "acc=-1" "acc=nan" "acc=" "x=1" "acc=1e309" "acc=inf" ",," "acc=1,acc=2" "=1"; do
    case_ "compare --tolerance '$tol'" err -- compare "$G" "$G" --tolerance "$tol"
done
case_ "compare same file (valid)" ok -- compare "$G" "$G"
# report folders and records
"$PL" run "$B" --out "$T/rep" >/dev/null 2>&1
rec=$(compgen -G "$T/rep/runs/*.json" | head -1)
cp -r "$T/rep" "$T/rep0"
mut() { # mut NAME SED: a mutated copy of the record, then `report`
    rm -rf "$T/repm"; cp -r "$T/rep0" "$T/repm"
    local f; f=$(compgen -G "$T/repm/runs/*.json" | head -1)
    sed -i "$2" "$f"
    case_ "record: $1" err -- report "$T/repm"
}
mut "extra key" 's/^{/{"extra": 1,/'
mut "duplicate key" 's/^{/{"run_id": "x",/'
mut "status unknown" 's/"status": "ok"/"status": "great"/'
mut "seed negative" 's/"seed": 1,/"seed": -1,/'
mut "seed float" 's/"seed": 1,/"seed": 1.5,/'
mut "run_index huge" 's/"run_index": 0/"run_index": 1e30/'
mut "sparsity 2" 's/"achieved_sparsity": [0-9.e+-]*/"achieved_sparsity": 2/'
mut "latency -1" 's/"latency_ms_after": [0-9.e+-]*/"latency_ms_after": -1/'
mut "version 2" 's/"version": 1/"version": 2/'
mut "format other" 's/"format": "[^"]*"/"format": "x"/'
mut "bad escape" 's/"experiment": "/"experiment": "\\q/'
mut "\\u0000" 's/"experiment": "/"experiment": "\\u0000/'
mut "lone surrogate" 's/"experiment": "/"experiment": "\\ud800/'
mut "manifest not a string" 's/"threads": "[0-9]*"/"threads": 2/'
mut "layers not a list" 's/"layers": \[/"layers": {/'
mut "truncated" '$d'
mut "trailing text" '$a trailing'
mut "run_id mismatch" 's/"run_id": "[0-9a-f]*"/"run_id": "ffffffffffffffff"/'
mkdir -p "$T/repdir/runs/x.json"; case_ "record that is a directory" err -- report "$T/repdir"
mkdir -p "$T/repfile"; printf x >"$T/repfile/runs"; case_ "runs is a file" err -- report "$T/repfile"
ln -s /dev/zero "$T/rep0/runs/zero.json"; case_ "record symlink to /dev/zero" err -- report "$T/rep0"; rm -f "$T/rep0/runs/zero.json"
# output folders
printf x >"$T/afile"; case_ "--out is a file" err -- run "$B" --out "$T/afile"
case_ "--out /dev/null" err -- run "$B" --out /dev/null
case_ "--out under /proc" err -- run "$B" --out /proc/prunelab-x
case_ "--out 5000-char" err -- run "$B" --out "$T/$long"
case_ "--out with newline (valid)" ok -- run "$B" --out "$T/a
b"
# plugins
case_ "--plugin-path missing dir (valid: searched, not needed)" ok -- validate "$B" --plugin-path "$T/none"
case_ "plugin name 64 chars" err -- validate "$B" --set "prune.criterion=$(printf 'a%.0s' {1..64})"
case_ "plugin name uppercase" err -- validate "$B" --set "prune.criterion=L1"
case_ "plugin of the wrong kind" err -- validate "$B" --set "prune.criterion=oneshot"
case_ "backend named as dataset" err -- validate "$B" --set "backend=synthetic"
mkdir -p "$T/pl/criteria"; cp "$BUILD/plugins/criteria/l2.so" "$T/pl/criteria/l1.so"; chmod -R go-w "$T/pl"
case_ "a plugin file under another name" err -- validate "$B" --plugin-path "$T/pl"
printf 'x' >"$T/pl/criteria/l1.so"; case_ "a truncated plugin" err -- validate "$B" --plugin-path "$T/pl"
: >"$T/pl/criteria/l1.so"; case_ "an empty plugin" err -- validate "$B" --plugin-path "$T/pl"
# environment
PRUNELAB_PLUGIN_PATH=":::" case_ "PRUNELAB_PLUGIN_PATH of colons (valid)" ok -- validate "$B"
echo "cases $n clean $clean defects $bad"
echo "$clean passed, $bad failed"
((bad == 0))
