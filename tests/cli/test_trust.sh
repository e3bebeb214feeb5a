#!/usr/bin/env bash
# test_trust.sh BUILD_DIR SOURCE_DIR — trustworthy runs (issue 14): a run's
# identity comes from what it reads (model content, dataset checksum,
# plugin files), cached baselines are checked against the model they must
# be, and the failure paths a careless or hostile user finds. Each case
# failed before its fix. Same one-line-error rules as test_bad_inputs.sh.
set -u
if (($# != 2)); then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd) || exit 2
SRC=$(cd "$2" && pwd) || exit 2
cd "$SRC" || exit 2
PL="$BUILD/prunelab"
FX=tests/fixtures/bad
unset PRUNELAB_PLUGIN_PATH
T=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/prunelab-trust.XXXXXX")" && pwd -P) || exit 2
trap 'chmod -R u+w "$T" 2>/dev/null; [[ -n ${KEEPT:-} ]] || rm -rf "$T"' EXIT
passed=0
failed=0
ERR="$T/stderr"
OUT="$T/stdout"
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
not_ok() {
    failed=$((failed + 1))
    printf 'FAIL %s: %s\n' "$1" "$2"
    [[ -s $ERR ]] && sed -n '1,8p' "$ERR" | sed 's/^/     stderr| /'
}
# one line on stderr, "prunelab: ", naming $2, matching regex $3
one_line() {
    local lines
    lines=$(awk 'END { print NR }' "$ERR")
    [[ $lines == 1 ]] || { not_ok "$1" "expected one line on stderr, got $lines"; return 1; }
    grep -q "^prunelab: .*$2" "$ERR" || { not_ok "$1" "the line does not name $2"; return 1; }
    grep -qiE -- "$3" "$ERR" || { not_ok "$1" "the line does not give the cause /$3/"; return 1; }
    return 0
}
# expect NAME STATUS FILE CAUSE -- ARGS...: exact exit status and one line
expect() {
    local name=$1 want=$2 file=$3 cause=$4 rc
    shift 4
    [[ $1 == -- ]] && shift
    timeout 120 "$PL" "$@" >"$OUT" 2>"$ERR"
    rc=$?
    if ((rc != want)); then
        not_ok "$name" "exit status $rc, want $want"
        return 1
    fi
    one_line "$name" "$file" "$cause" && ok "$name"
}
col() { # col FILE COLUMN: that column of every data row of a results.csv
    awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } { print $k }' "$1"
}

# ---- identity from content -------------------------------------------------------------
# Editing the model file (fc1 16 -> 8) must not resume the old record.
cp "$FX/models/tiny.yaml" "$T/model.yaml"
run_model() { "$PL" run "$FX/base.yaml" --set "model=$T/model.yaml" --out "$T/edit" "$@" >"$OUT" 2>"$ERR"; }
name="identity: an edited model file is a new run, not a resumed one"
if run_model; then
    p1=$(col "$T/edit/results.csv" params_before)
    sed -i 's/out: 16/out: 8/' "$T/model.yaml"
    if ! run_model; then
        not_ok "$name" "second run failed (exit $?)"
    elif grep -q resumed "$OUT"; then
        not_ok "$name" "the edited model resumed the old record"
    elif ! col "$T/edit/results.csv" params_before | grep -qx 556; then
        not_ok "$name" "no row with the edited model's 556 params (had $p1)"
    else
        ok "$name"
    fi
else
    not_ok "$name" "first run failed"
fi

# The same model path and data path with other contents (input 8x8 -> 12x12):
# the cached baseline of the old model was loaded into the new shapes and
# idx_read overflowed the batch buffer.
mkidx() { # mkidx DIR SIZE: a 4-class IDX dataset of SIZE x SIZE images (64 train, 32 test)
    mkdir -p "$1"
    python3 - "$1" "$2" <<'PY'
import struct, sys, random
d, s = sys.argv[1], int(sys.argv[2])
random.seed(1)
for split, n in (("train", 64), ("t10k", 32)):
    labels = [i % 4 for i in range(n)]
    with open(f"{d}/{split}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, s, s))
        for y in labels:
            f.write(bytes((40 * y + random.randrange(60)) % 256 for _ in range(s * s)))
    with open(f"{d}/{split}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
PY
}
mkidx "$T/shape" 8
cp "$FX/models/tiny.yaml" "$T/shape.yaml"
shape_run() {
    timeout 120 "$PL" run "$FX/idx.yaml" --set "dataset.path=$T/shape" --set "model=$T/shape.yaml" \
        --set prune.criterion=l1 --set prune.granularity=neuron --set prune.sparsity=0.5 --out "$T/shaperep" "$@" >"$OUT" 2>"$ERR"
}
name="identity: a cached baseline is never reused for a model of another shape"
if ! shape_run; then
    not_ok "$name" "first run failed"
else
    rm -rf "$T/shape"
    mkidx "$T/shape" 12
    sed -i 's/\[1, 8, 8\]/[1, 12, 12]/' "$T/shape.yaml"
    shape_run --set prune.sparsity=0.25
    rc=$?
    if ((rc != 0)); then
        not_ok "$name" "exit status $rc"
    elif grep -q "reusing" "$OUT"; then
        not_ok "$name" "the old baseline was reused"
    elif ! col "$T/shaperep/results.csv" params_before | grep -qx 2388; then
        not_ok "$name" "no row with the 12x12 model's 2,388 params"
    else
        ok "$name"
    fi
fi

# A cached baseline whose contents do not match its model (planted under the
# right name) is refused with the checkpoint named.
name="identity: a planted baseline of another architecture is refused, naming it"
"$PL" run "$FX/base.yaml" --out "$T/plant" >"$OUT" 2>"$ERR"
f=$(compgen -G "$T/plant/cache/baseline-*.ckpt" | head -n 1)
sed 's/out: 16/out: 32/' "$FX/models/tiny.yaml" >"$T/wide.yaml"
"$PL" run "$FX/base.yaml" --set "model=$T/wide.yaml" --out "$T/other" >"$OUT" 2>"$ERR"
g=$(compgen -G "$T/other/cache/baseline-*.ckpt" | head -n 1)
if [[ -z $f || -z $g ]]; then
    not_ok "$name" "no baselines to plant"
else
    cp "$g" "$f"
    rm -rf "$T/plant/runs"
    expect "$name" 2 "$f" "does not match|architecture|layer" -- run "$FX/base.yaml" --out "$T/plant"
fi

# ---- the dataset checksum cache ---------------------------------------------------------
mkidx "$T/cache" 8
crun() { timeout 120 "$PL" validate "$FX/idx.yaml" --set "dataset.path=$T/cache" >"$OUT" 2>"$ERR"; awk '/run id/ { print $3 }' "$OUT"; }
C="$T/cache/.train-images-idx3-ubyte.prunelab-sha256"
id0=$(crun)
name="checksum cache: written beside the data, same identity when read back"
if [[ ! -f $C ]]; then
    not_ok "$name" "no cache file $C"
elif [[ -z $id0 || $(crun) != "$id0" ]]; then
    not_ok "$name" "run id changed on the cached read"
else
    ok "$name"
fi
name="checksum cache: a planted digest with a wrong CRC is recomputed, not trusted"
sed -i -e 's/^crc32 .*/crc32 00000000/' -e 's/^sha256 .*/sha256 '"$(printf '0%.0s' {1..64})"'/' "$C"
id1=$(crun)
if [[ $id1 != "$id0" ]]; then
    not_ok "$name" "run id $id1, want $id0"
elif grep -q '^crc32 00000000' "$C"; then
    not_ok "$name" "the bad entry was not rewritten"
else
    ok "$name"
fi
name="checksum cache: a group-writable entry is ignored"
sed -i -e 's/^sha256 .*/sha256 '"$(printf '1%.0s' {1..64})"'/' "$C"
chmod g+w "$C"
if [[ $(crun) != "$id0" ]]; then
    not_ok "$name" "the group-writable entry was trusted"
else
    ok "$name"
fi
name="checksum cache: edited data (same size, mtime restored) gets a new checksum"
rm -f "$C"
crun >/dev/null
m=$(stat -c %y "$T/cache/train-images-idx3-ubyte")
printf '\377' | dd of="$T/cache/train-images-idx3-ubyte" bs=1 seek=100 conv=notrunc status=none
touch -d "$m" "$T/cache/train-images-idx3-ubyte"
id2=$(crun)
if [[ -z $id2 || $id2 == "$id0" ]]; then
    not_ok "$name" "same run id $id2 after the data changed"
else
    ok "$name"
fi
name="checksum cache: an unwritable cache place is no error and leaves no temporary file"
rm -rf "$T/cache"/.*.prunelab-sha256
mkdir "$C"
id3=$(crun)
if [[ $id3 != "$id2" ]]; then
    not_ok "$name" "run id $id3, want $id2 (exit/err: $(cat "$ERR"))"
elif compgen -G "$T/cache/*.tmp.*" >/dev/null || compgen -G "$T/cache/.*.tmp.*" >/dev/null; then
    not_ok "$name" "temporary files left"
else
    ok "$name"
fi

# ---- the run manifest --------------------------------------------------------------------
name="manifest: every record carries one; results.csv and results.md carry the essentials"
"$PL" run "$FX/base.yaml" --out "$T/man" --threads 1 >"$OUT" 2>"$ERR"
rec=$(compgen -G "$T/man/runs/*.json" | head -n 1)
missing=""
for k in prunelab_version abi compiler flags cpu isa threads start end config identity dataset.train \
    dataset.test plugin.backend plugin.dataset plugin.criterion plugin.schedule; do
    grep -q "^    \"$k\": " "$rec" || missing="$missing $k"
done
if [[ -n $missing ]]; then
    not_ok "$name" "record lacks:$missing"
elif ! head -1 "$T/man/results.csv" | grep -q ',status,sweep,prunelab_version,dataset_checksum$'; then
    not_ok "$name" "results.csv header: $(head -1 "$T/man/results.csv")"
elif [[ -z $(col "$T/man/results.csv" prunelab_version) ]]; then
    not_ok "$name" "empty prunelab_version cell"
elif ! grep -q '^## Provenance' "$T/man/results.md" || ! grep -q '^| threads | 1 |' "$T/man/results.md"; then
    not_ok "$name" "results.md has no provenance footnote with the thread count"
else
    ok "$name"
fi

name="manifest: a record made by another build of a plugin is not reused"
mkdir -p "$T/plugins"
cp -r "$BUILD/plugins/criteria" "$T/plugins/"
chmod -R go-w "$T/plugins"
"$PL" run "$FX/base.yaml" --plugin-path "$T/plugins" --out "$T/rebuilt" >"$OUT" 2>"$ERR"
printf '\0' >>"$T/plugins/criteria/l1.so" # another file, same name and version
"$PL" run "$FX/base.yaml" --plugin-path "$T/plugins" --out "$T/rebuilt" >"$OUT" 2>"$ERR"
rc=$?
if ((rc != 0)); then
    not_ok "$name" "exit status $rc"
elif grep -q resumed "$OUT" || ! grep -q "other plugin files" "$OUT"; then
    not_ok "$name" "the old record was kept"
elif ! grep -q "$(sha256sum "$T/plugins/criteria/l1.so" | cut -c1-64)" "$T"/rebuilt/runs/*.json; then
    not_ok "$name" "the new record does not carry the new file's hash"
else
    ok "$name"
fi

# ---- divergence is a status ---------------------------------------------------------------
name="divergence: lr 50 explodes the loss (finite): row diverged, exit 1, one line"
timeout 120 "$PL" run "$FX/base.yaml" --set train.optimizer.lr=50 --out "$T/div" >"$OUT" 2>"$ERR"
rc=$?
if ((rc != 1)); then
    not_ok "$name" "exit status $rc, want 1"
elif one_line "$name" "$FX/base.yaml" "diverged.*times its starting"; then
    if [[ $(col "$T/div/results.csv" status) != diverged ]]; then
        not_ok "$name" "status $(col "$T/div/results.csv" status)"
    else
        ok "$name"
    fi
fi
if [[ -f data/mnist/train-images-idx3-ubyte || -f data/mnist/train-images-idx3-ubyte.gz ]]; then
    name="divergence: MNIST at lr 0.1 ends at chance accuracy: diverged, exit 1"
    timeout 300 "$PL" run experiments/seed.yaml --set train.optimizer.lr=0.1 --out "$T/chance" >"$OUT" 2>"$ERR"
    rc=$?
    if ((rc != 1)); then
        not_ok "$name" "exit status $rc, want 1"
    elif one_line "$name" "experiments/seed.yaml" "at chance" && [[ $(col "$T/chance/results.csv" status) == diverged ]]; then
        ok "$name"
    fi
fi

# ---- inputs that are not regular files ----------------------------------------------------
mkfifo "$T/fifo.yaml" "$T/fifo.csv"
expect "fifo: experiment" 2 "$T/fifo.yaml" "FIFO" -- validate "$T/fifo.yaml"
expect "fifo: model" 2 "$T/fifo.yaml" "FIFO" -- validate "$FX/base.yaml" --set "model=$T/fifo.yaml"
expect "fifo: compare input" 2 "$T/fifo.csv" "FIFO" -- compare tests/fixtures/report/results.csv.golden "$T/fifo.csv"
expect "device: compare reads /dev/zero" 2 "/dev/zero" "device" -- compare tests/fixtures/report/results.csv.golden /dev/zero
"$PL" run "$FX/base.yaml" --out "$T/fiforec" >"$OUT" 2>"$ERR"
mkfifo "$T/fiforec/runs/0000000000000000.json"
expect "fifo: a run record" 2 "$T/fiforec/runs/0000000000000000.json" "FIFO" -- report "$T/fiforec"
rm -f "$T/fiforec/runs/0000000000000000.json"

# ---- compare fails closed -------------------------------------------------------------------
G=tests/fixtures/report/results.csv.golden
for bad in nan inf -inf 1e300 -5 100.5; do
    awk -F, -v OFS=, -v b="$bad" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "acc_final") c = i }
                                  NR == 2 { $c = b } { print }' "$G" >"$T/cur.csv"
    expect "compare: acc_final $bad fails closed" 2 "$T/cur.csv" "finite|outside" -- compare "$G" "$T/cur.csv"
done

# ---- stdout that cannot be written ------------------------------------------------------------
name="stdout: validate > /dev/full exits non-zero"
"$PL" validate "$FX/base.yaml" >/dev/full 2>"$ERR"
rc=$?
if ((rc == 0)); then
    not_ok "$name" "exit status 0"
elif one_line "$name" "standard output" "write error"; then
    ok "$name"
fi

# ---- --shard -----------------------------------------------------------------------------------
for sh in 99999999999/99999999999 1/4294967297 0/1 2/1 1/2x " 1/2" 1/; do
    expect "shard: '$sh' refused" 2 "--shard" "I/N" -- run "$FX/base.yaml" --shard "$sh" --out "$T/shard"
done
name="shard: a shard with no runs says so"
"$PL" run "$FX/base.yaml" --shard 3/4 --out "$T/shard" >"$OUT" 2>"$ERR"
rc=$?
if ((rc != 0)) || ! grep -q "shard 3/4 has no runs" "$OUT"; then
    not_ok "$name" "exit $rc; stdout: $(head -2 "$OUT")"
else
    ok "$name"
fi

# ---- encodings, sweeps, records ----------------------------------------------------------------
printf '\xfe\xff\x00n\x00a' >"$T/utf16.yaml"
expect "encoding: UTF-16 experiment" 2 "$T/utf16.yaml" "UTF-16" -- validate "$T/utf16.yaml"
{ printf '\xef\xbb\xbf\xef\xbb\xbf'; cat "$FX/base.yaml"; } >"$T/bom2.yaml"
expect "encoding: two UTF-8 BOMs" 2 "$T/bom2.yaml" "byte-order" -- validate "$T/bom2.yaml"
{ printf '\xef\xbb\xbf'; cat "$FX/base.yaml"; } >"$T/bom1.yaml"
name="encoding: one UTF-8 BOM is fine"
if "$PL" validate "$T/bom1.yaml" >"$OUT" 2>"$ERR"; then ok "$name"; else not_ok "$name" "exit $?"; fi
{ cat "$FX/base.yaml"; printf 'sweep:\n  seed: [1, 2, 1]\n'; } >"$T/dup.yaml"
expect "sweep: a value listed twice" 2 "$T/dup.yaml" "lists '1' again" -- run "$T/dup.yaml" --out "$T/dup"
"$PL" run "$FX/base.yaml" --out "$T/range" >"$OUT" 2>"$ERR"
rec=$(compgen -G "$T/range/runs/*.json" | head -n 1)
sed -i 's/"acc_final": [0-9.e+-]*/"acc_final": 1e300/' "$rec"
expect "record: accuracy 1e300" 2 "$rec" "acc_final.*outside" -- report "$T/range"
sed -i 's/"acc_final": 1e300/"acc_final": 50/; s/"params_before": [0-9]*/"params_before": -5/' "$rec"
expect "record: negative params" 2 "$rec" "params_before -5" -- report "$T/range"

# ---- no orphan files ---------------------------------------------------------------------------
mkdir -p "$T/orphan"
printf 'not a folder\n' >"$T/orphan/models"
name="orphans: the final checkpoint cannot be written: no norms file is left"
"$PL" run "$FX/base.yaml" --out "$T/orphan" >"$OUT" 2>"$ERR"
rc=$?
if ((rc == 0)); then
    not_ok "$name" "exit 0"
elif compgen -G "$T/orphan/norms/*.csv" >/dev/null || compgen -G "$T/orphan/runs/*" >/dev/null; then
    not_ok "$name" "left: $(cd "$T/orphan" && find norms runs -type f 2>/dev/null | tr '\n' ' ')"
else
    ok "$name"
fi

# ---- --out into a folder that is not a prunelab report --------------------------------------
mkdir -p "$T/mine"
printf 'my own results\n' >"$T/mine/results.csv"
expect "out: a non-empty folder that is not a report is refused" 2 "$T/mine" "not a prunelab report" -- \
    run "$FX/base.yaml" --out "$T/mine"
name="out: the user's file is untouched, a report folder carries the marker and is reused"
if [[ $(cat "$T/mine/results.csv") != "my own results" ]]; then
    not_ok "$name" "results.csv changed"
elif [[ ! -f $T/man/.prunelab-report ]]; then
    not_ok "$name" "no marker in a report folder"
elif ! "$PL" run "$FX/base.yaml" --out "$T/man" >"$OUT" 2>"$ERR"; then
    not_ok "$name" "rerun into a report folder failed"
else
    ok "$name"
fi

# ---- plugin folders checked like OpenSSH StrictModes -------------------------------------------
mkdir -p "$T/ww/a/b/criteria"
cp "$BUILD/plugins/criteria/l1.so" "$T/ww/a/b/criteria/"
chmod 755 "$T/ww/a" "$T/ww/a/b" "$T/ww/a/b/criteria"
chmod 777 "$T/ww"
expect "plugins: a world-writable ancestor folder is refused" 2 "$T/ww" "world-writable directory" -- \
    validate "$FX/base.yaml" --plugin-path "$T/ww/a/b"
chmod 775 "$T/ww"
expect "plugins: a group-writable ancestor folder is refused" 2 "$T/ww" "writable by its group" -- \
    validate "$FX/base.yaml" --plugin-path "$T/ww/a/b"
chmod 755 "$T/ww"
name="plugins: 60 search-path entries do not drop the bundled plugins"
many=$(printf "$T/none%d:" $(seq 1 60))
if PRUNELAB_PLUGIN_PATH="$many" "$PL" validate "$FX/base.yaml" >"$OUT" 2>"$ERR"; then
    ok "$name"
else
    not_ok "$name" "exit $?"
fi

# ---- names that would break Markdown ------------------------------------------------------------
mkdir -p "$T/md"
cp "$FX/models/tiny.yaml" "$T/md/a|b"$'\n'"c.yaml"
sed -e "s#^model: .*#model: \"$T/md/a|b\\\\nc.yaml\"#" "$FX/base.yaml" >"$T/md.yaml"
name="markdown: a '|' and a newline in a model path keep results.md's tables whole"
if ! "$PL" run "$T/md.yaml" --out "$T/mdrep" >"$OUT" 2>"$ERR"; then
    not_ok "$name" "run failed (exit $?)"
elif ! awk '/^\|/ { n = gsub(/[^\\]\|/, "&"); if (!cols) cols = n; else if (n != cols && !/^\| \| \|$/ && !/^\|---\|---\|$/ && !/^\| [a-zA-Z ]+ \| /) bad = 1 }
          /^\| model/ { cols = gsub(/[^\\]\|/, "&") } END { exit bad }' "$T/mdrep/results.md"; then
    not_ok "$name" "a table row has the wrong number of cells"
elif grep -q '^c.yaml' "$T/mdrep/results.md"; then
    not_ok "$name" "the newline broke a line"
else
    ok "$name"
fi

# ---- a backend kernel's own message survives ----------------------------------------------------
name="backend: a failing kernel's own message reaches the row and stderr"
"$PL" run "$FX/base.yaml" --plugin-path "$BUILD/testplugins" --set backend=kernel_fails --out "$T/kf" >"$OUT" 2>"$ERR"
rc=$?
if ((rc == 0)); then
    not_ok "$name" "exit 0"
elif one_line "$name" "$FX/base.yaml" "failed in layer fc1.*kernel_fails says so"; then
    if ! grep -q "kernel_fails says so" "$T"/kf/runs/*.json; then
        not_ok "$name" "the record's message lacks it"
    else
        ok "$name"
    fi
fi

# ---- SIGINT while a big sweep is loaded and checked --------------------------------------------
{ cat "$FX/base.yaml"; printf 'limits: {max_runs: 100000}\nsweep:\n  seed: ['; seq -s, 1 50000; printf ']\n'; } >"$T/big.yaml"
for cmd in validate run; do
    name="signals: SIGINT during '$cmd' of a 50,000-run sweep ends it within 5 s"
    "$PL" $cmd "$T/big.yaml" --out "$T/bigrep" >"$OUT" 2>"$ERR" &
    pid=$!
    sleep 1
    kill -INT "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        wait "$pid"
        not_ok "$name" "still running 5 s after SIGINT"
    else
        wait "$pid"
        rc=$?
        if ((rc == 0)); then
            not_ok "$name" "exit 0"
        elif compgen -G "$T/bigrep/runs/*" >/dev/null; then
            not_ok "$name" "records were written"
        else
            ok "$name"
        fi
    fi
done

echo
echo "$passed passed, $failed failed"
((failed == 0))
