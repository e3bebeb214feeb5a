#!/usr/bin/env bash
# test_bad_inputs.sh BUILD_DIR SOURCE_DIR — the bad-input matrix.
#
# Every bad input must give exit status 2 (configuration or input) or 1 (a
# run failed), exactly ONE line on stderr that names the file (with
# line:col where the input has one), the cause and a hint, and must leave
# the report folder as it was: a report made before by a good run is
# checksummed before every case and compared after it, and no *.tmp* file
# may remain. No case may crash or print a sanitizer report (either would
# show as a signal status or as more than one line on stderr).
#
# Fixtures live in tests/fixtures/bad/ (YAML cases, small models, a tiny
# 8x8 4-class IDX dataset); data cases break copies of that dataset in a
# temporary folder. Run by CTest from the source folder; about 10 s.
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
if [[ ! -x $PL ]]; then
    echo "test_bad_inputs: $PL not found; build first" >&2
    exit 2
fi
unset PRUNELAB_PLUGIN_PATH
# physical path: the registry names plugin files by their realpath
T=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/prunelab-bad.XXXXXX")" && pwd -P) || exit 2
BG=""
cleanup() {
    [[ -n $BG ]] && kill "$BG" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

passed=0
failed=0
failures=()
ERR="$T/stderr"
OUT="$T/stdout"
REPORT="$T/report"

ok() {
    passed=$((passed + 1))
    printf 'ok   %s\n' "$1"
}
not_ok() {
    failed=$((failed + 1))
    failures+=("$1")
    printf 'FAIL %s: %s\n' "$1" "$2"
    if [[ -s $ERR ]]; then
        sed -n '1,12p' "$ERR" | sed 's/^/     stderr| /'
    fi
}

# Checksums of every file under a folder (empty output for a missing one).
snapshot() {
    [[ -d $1 ]] || return 0
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

tmp_files() {
    [[ -d $1 ]] && find "$1" -name '*.tmp*' -print
}

# Checks the one-line error in $ERR. Args: name file pos cause-regex.
# file: fixed text the line must contain; pos: "pos" when it must be
# followed by :LINE:COL; cause: extended regex (case-insensitive).
check_line() {
    local name=$1 file=$2 pos=$3 cause=$4
    local lines line
    lines=$(awk 'END { print NR }' "$ERR")
    if [[ $lines != 1 ]]; then
        not_ok "$name" "expected exactly one line on stderr, got $lines"
        return 1
    fi
    line=$(cat "$ERR")
    if [[ $line != "prunelab: "* ]]; then
        not_ok "$name" "the line does not start with 'prunelab: '"
        return 1
    fi
    if [[ $line != *"$file"* ]]; then
        not_ok "$name" "the line does not name $file"
        return 1
    fi
    if [[ $pos == pos ]] && ! awk -v f="$file" '{
              i = index($0, f)
              if (!i || substr($0, i + length(f)) !~ /^:[0-9]+:[0-9]+: /) exit 1 }' <<<"$line"; then
        not_ok "$name" "the line has no $file:LINE:COL: position"
        return 1
    fi
    if ! grep -qiE -- "$cause" <<<"$line"; then
        not_ok "$name" "the line does not give the expected cause (/$cause/)"
        return 1
    fi
    # a hint: a parenthesis, a '; ...' or a dash clause after the cause
    if ! grep -qE -- '[(;]|—|did you mean|available' <<<"${line#prunelab: }"; then
        not_ok "$name" "the line gives no hint (nothing after the cause)"
        return 1
    fi
    return 0
}

# expect NAME STATUS FILE POS CAUSE -- ARGS...
# Runs prunelab ARGS with the report folder $KEEP (default: the
# pre-existing report) checksummed around it; STATUS is the exact exit
# status wanted.
expect() {
    local name=$1 want=$2 file=$3 pos=$4 cause=$5 keep=${KEEP:-$REPORT}
    shift 5
    [[ $1 == -- ]] && shift
    local before after rc
    before=$(snapshot "$keep")
    timeout 120 "$PL" "$@" >"$OUT" 2>"$ERR"
    rc=$?
    after=$(snapshot "$keep")
    if ((rc >= 124)); then
        not_ok "$name" "exit status $rc (crash, signal or timeout; want $want)"
        return
    fi
    if ((rc != want)); then
        not_ok "$name" "exit status $rc, want $want"
        return
    fi
    check_line "$name" "$file" "$pos" "$cause" || return
    if [[ $before != "$after" ]]; then
        not_ok "$name" "files in the report folder changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -3 | tr '\n' ' ')"
        return
    fi
    if [[ -n $(tmp_files "$keep") ]]; then
        not_ok "$name" "temporary files left: $(tmp_files "$keep" | head -3 | tr '\n' ' ')"
        return
    fi
    ok "$name"
}

# ---- a report made by a good run, which no bad case may touch --------------------
if "$PL" run "$FX/base.yaml" --out "$REPORT" >"$OUT" 2>"$ERR" && [[ -s $REPORT/results.csv ]]; then
    ok "setup: a good run writes the report every case compares against"
else
    not_ok "setup: a good run writes the report every case compares against" "exit status $?"
fi

# ---- YAML experiments --------------------------------------------------------------
y() { # y NAME FIXTURE POS CAUSE: `prunelab run FIXTURE --out REPORT`, status 2
    expect "yaml: $1" 2 "$FX/$2" "$3" "$4" -- run "$FX/$2" --out "$REPORT"
}
y "not YAML at all (markup)" not_yaml.yaml pos "unknown key|map"
y "not YAML at all (prose)" prose.yaml pos "map"
y "not YAML at all (binary)" binary.yaml pos "not a YAML|control|invalid"
y "empty file" empty.yaml - "empty"
y "tab-indented" tab.yaml pos "tab"
y "truncated" truncated.yaml pos "invalid YAML|expected|end"
y "duplicate keys" dup_key.yaml pos "duplicate key 'name'"
y "unknown key" unknown_key.yaml pos "unknown key 'trian'"
y "wrong type (word for an integer)" wrong_type.yaml pos "epochs.*integer"
y "wrong type (scalar for a map)" wrong_type_map.yaml pos "train.*map"
y "negative epochs" epochs_neg.yaml pos "epochs"
y "sparsity >= 1" sparsity_one.yaml pos "sparsity"
y "sparsity < 0" sparsity_neg.yaml pos "sparsity"
y "batch size 0" batch_zero.yaml pos "batch_size"
y "lr = 0" lr_zero.yaml pos "lr"
y "lr < 0" lr_neg.yaml pos "lr"
y "lr .nan" lr_nan.yaml pos "lr.*nan|nan.*lr|finite"
y "sweep of zero runs" sweep_zero.yaml pos "zero runs|no values"
y "sweep over limits.max_runs" sweep_max_runs.yaml pos "max_runs"
y "prune.layers names a layer the model lacks" prune_layer_missing.yaml pos "fc9"
y "model and dataset shapes differ (simple_cnn on 3x32x32)" shape_mismatch.yaml pos "3x32x32|1x28x28"
y "model and dataset classes differ" classes_mismatch.yaml pos "classes"
expect "yaml: batch size larger than the dataset" 2 "$FX/batch_too_big.yaml" - "batch_size" -- \
    run "$FX/batch_too_big.yaml" --out "$REPORT"
expect "yaml: model file does not exist" 2 "$FX/models/no_such_model.yaml" - "no such file|cannot open" -- \
    run "$FX/model_missing.yaml" --out "$REPORT"
expect "yaml: last layer does not give the model's classes" 2 "$FX/models/last_layer_classes.yaml" - "classes" -- \
    run "$FX/model_last_layer.yaml" --out "$REPORT"
expect "yaml: --set of a key that does not exist" 2 "--set train.epochz=2" - "unknown key" -- \
    run "$FX/base.yaml" --set train.epochz=2 --out "$REPORT"
expect "yaml: --set of an out-of-range value" 2 "--set prune.sparsity=1.5" - "sparsity" -- \
    run "$FX/base.yaml" --set prune.sparsity=1.5 --out "$REPORT"
expect "yaml: experiment file does not exist" 2 "$FX/no_such_experiment.yaml" - "no such file|cannot open" -- \
    run "$FX/no_such_experiment.yaml" --out "$REPORT"
# models whose sizes overflow int in shape inference (pad_overflow and
# flatten_overflow written by hand, conv_output_overflow found by fuzz_model)
expect "model: padding near INT_MAX (validate)" 2 "$FX/models/pad_overflow.yaml" - "padding|too large|fit" -- \
    validate "$FX/model_pad_overflow.yaml"
expect "model: padding near INT_MAX (run)" 2 "$FX/models/pad_overflow.yaml" - "padding|too large|fit" -- \
    run "$FX/model_pad_overflow.yaml" --out "$REPORT"
expect "model: conv output over INT_MAX values (validate)" 2 "$FX/models/conv_output_overflow.yaml" - "too large|overflow|fit" -- \
    validate "$FX/model_conv_output_overflow.yaml"
expect "model: flatten size over INT_MAX (validate)" 2 "$FX/models/flatten_overflow.yaml" - "too large|overflow|fit|values" -- \
    validate "$FX/model_flatten_overflow.yaml"

# ---- data ------------------------------------------------------------------------------
IMG=train-images-idx3-ubyte
LBL=train-labels-idx1-ubyte
dataset() { # dataset NAME: a fresh copy of the good IDX files in $T/data/NAME
    rm -rf "$T/data/$1"
    mkdir -p "$T/data/$1"
    cp "$FX"/idx/*-ubyte "$T/data/$1/"
    printf '%s' "$T/data/$1"
}
poke() { # poke FILE OFFSET OCTAL-ESCAPES: overwrite bytes in place
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
d() { # d NAME DIR FILE CAUSE: `prunelab run idx.yaml` on DIR, status 2, naming FILE
    expect "data: $1" 2 "$3" - "$4" -- run "$FX/idx.yaml" --set "dataset.path=$2" --out "$REPORT"
}
dir=$(dataset good_raw)
if "$PL" run "$FX/idx.yaml" --set "dataset.path=$dir" --out "$T/good_raw" >"$OUT" 2>"$ERR"; then
    ok "data: the good IDX files load (raw)"
else
    not_ok "data: the good IDX files load (raw)" "exit status $?"
fi
dir=$(dataset good_gz)
gzip -n "$dir"/*-ubyte
if "$PL" run "$FX/idx.yaml" --set "dataset.path=$dir" --out "$T/good_gz" >"$OUT" 2>"$ERR"; then
    ok "data: the good IDX files load (.gz)"
else
    not_ok "data: the good IDX files load (.gz)" "exit status $?"
fi
d "missing directory" "$T/data/none" "$T/data/none" "no such directory"
dir=$(dataset missing_file)
rm "$dir/$LBL"
d "missing file" "$dir" "$dir/$LBL" "no such file"
dir=$(dataset empty_file)
: >"$dir/$IMG"
d "empty file" "$dir" "$dir/$IMG" "empty"
dir=$(dataset wrong_magic)
poke "$dir/$IMG" 0 '\120\113\003\004'
d "wrong magic" "$dir" "$dir/$IMG" "magic|not an IDX"
dir=$(dataset labels_as_images)
cp "$FX/idx/$LBL" "$dir/$IMG"
d "a labels file where images belong" "$dir" "$dir/$IMG" "1-D|magic"
dir=$(dataset short_file)
head -c 1000 "$FX/idx/$IMG" >"$dir/$IMG"
d "header dims vs file length (truncated)" "$dir" "$dir/$IMG" "header says|truncated"
dir=$(dataset long_file)
printf 'extra' >>"$dir/$LBL"
d "header dims vs file length (trailing bytes)" "$dir" "$dir/$LBL" "header says|too long"
dir=$(dataset big_header)
poke "$dir/$IMG" 4 '\177\377\377\377'
d "header dims far beyond the file" "$dir" "$dir/$IMG" "header says|truncated"
dir=$(dataset truncated_gz)
gzip -n -c "$FX/idx/$IMG" >"$T/whole.gz"
rm "$dir/$IMG"
head -c $(($(wc -c <"$T/whole.gz") - 12)) "$T/whole.gz" >"$dir/$IMG.gz"
d "truncated gzip" "$dir" "$dir/$IMG.gz" "gzip|truncated|ends early"
dir=$(dataset corrupt_gz)
cp "$T/whole.gz" "$dir/$IMG.gz"
rm "$dir/$IMG"
poke "$dir/$IMG.gz" 30 '\377\377\377\377'
d "corrupt gzip" "$dir" "$dir/$IMG.gz" "gzip|corrupt"
dir=$(dataset bad_label)
poke "$dir/$LBL" 12 '\011'
d "labels outside the class range" "$dir" "$dir/$LBL" "label 9|out of range"
dir=$(dataset count_mismatch)
head -c 39 "$FX/idx/$LBL" >"$dir/$LBL" # 31 labels, and a header that says so
poke "$dir/$LBL" 4 '\000\000\000\037'
d "image and label counts disagree" "$dir" "$dir/$LBL" "32 images.*31 labels|31 labels|do not belong"

# ---- plugins -------------------------------------------------------------------------
expect "plugin: a name with '/' or '..'" 2 "$FX/plugin_slash.yaml" pos "never a path|a-z0-9_" -- \
    run "$FX/plugin_slash.yaml" --out "$REPORT"
expect "plugin: an absolute path as the name" 2 "$FX/plugin_path.yaml" pos "never a path|a-z0-9_" -- \
    run "$FX/plugin_path.yaml" --out "$REPORT"
expect "plugin: '..' given with --set" 2 "--set backend=../ref" - "never a path|a-z0-9_" -- \
    run "$FX/base.yaml" --set backend=../ref --out "$REPORT"
expect "plugin: unknown name lists the available ones" 2 "$FX/plugin_unknown.yaml" pos "available: .*l1" -- \
    run "$FX/plugin_unknown.yaml" --out "$REPORT"
mkdir -p "$T/plugins/backends"
printf 'this is not an ELF file\n' >"$T/plugins/backends/fake.so"
chmod 644 "$T/plugins/backends/fake.so"
chmod 755 "$T/plugins" "$T/plugins/backends"
expect "plugin: --plugin-path with a .so that is not a shared object" 2 "$T/plugins/backends/fake.so" - \
    "shared object|ELF" -- run "$FX/base.yaml" --plugin-path "$T/plugins" --set backend=fake --out "$REPORT"
expect "plugin: init() fails" 2 "$FX/plugin_init_fail.yaml" pos "initiali[sz]e|std" -- \
    run "$FX/plugin_init_fail.yaml" --out "$REPORT"

# ---- checkpoints and records in a report folder ---------------------------------------
# a corrupt cached baseline: the next run that would reuse it must refuse it
cp -r "$REPORT" "$T/ckpt"
for f in "$T"/ckpt/cache/baseline-*.ckpt; do
    poke "$f" 100 '\377\377\377\377'
done
f=$(compgen -G "$T/ckpt/cache/baseline-*.ckpt" | head -n 1)
KEEP="$T/ckpt" expect "checkpoint: corrupt cached baseline" 2 "${f:-$T/ckpt/cache/baseline}" - "checksum|corrupt" -- \
    run "$FX/base.yaml" --set prune.sparsity=0.25 --out "$T/ckpt"
cp -r "$REPORT" "$T/ckpt2"
for f in "$T"/ckpt2/cache/baseline-*.ckpt; do
    head -c 40 "$f" >"$f.cut" && mv "$f.cut" "$f"
done
f=$(compgen -G "$T/ckpt2/cache/baseline-*.ckpt" | head -n 1)
KEEP="$T/ckpt2" expect "checkpoint: truncated cached baseline" 2 "${f:-$T/ckpt2/cache/baseline}" - "truncated" -- \
    run "$FX/base.yaml" --set prune.sparsity=0.25 --out "$T/ckpt2"
cp -r "$REPORT" "$T/records"
for f in "$T"/records/runs/*.json; do
    head -c 50 "$f" >"$f.cut" && mv "$f.cut" "$f"
done
f=$(compgen -G "$T/records/runs/*.json" | head -n 1)
KEEP="$T/records" expect "record: a truncated run record" 2 "${f:-$T/records/runs/}" - "." -- report "$T/records"

# ---- runtime ---------------------------------------------------------------------------
# a 2-run sweep whose second run diverges: the sweep finishes, the row says
# diverged, exit 1
name="runtime: a diverging run is marked and the sweep goes on"
timeout 120 "$PL" run "$FX/diverge_sweep.yaml" --out "$T/diverge" >"$OUT" 2>"$ERR"
rc=$?
if ((rc != 1)); then
    not_ok "$name" "exit status $rc, want 1"
elif check_line "$name" "$FX/diverge_sweep.yaml" - "diverged"; then
    statuses=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "status") c = i; next }
                        { print $c }' "$T/diverge/results.csv" 2>/dev/null | LC_ALL=C sort | tr '\n' ' ')
    if [[ $statuses != "diverged ok " ]]; then
        not_ok "$name" "results.csv statuses are '$statuses', want one ok and one diverged"
    elif [[ -n $(tmp_files "$T/diverge") ]]; then
        not_ok "$name" "temporary files left"
    else
        ok "$name"
    fi
fi

# the report folder cannot be created (a path beneath a regular file)
printf 'a regular file\n' >"$T/regular"
before=$(sha256sum <"$T/regular")
name="runtime: report folder beneath a regular file"
timeout 120 "$PL" run "$FX/base.yaml" --out "$T/regular/sub" >"$OUT" 2>"$ERR"
rc=$?
if ((rc == 0 || rc >= 124)); then
    not_ok "$name" "exit status $rc, want 1 or 2"
elif check_line "$name" "$T/regular" - "directory|not a dir"; then
    if [[ $(sha256sum <"$T/regular") != "$before" ]]; then
        not_ok "$name" "the regular file changed"
    else
        ok "$name"
    fi
fi

# SIGINT after the first finished run: finished records stay intact, no
# temporary files, non-zero exit, and the records still make a report
name="runtime: SIGINT during a sweep keeps the finished runs"
timeout 300 "$PL" run "$FX/interrupt_sweep.yaml" --out "$T/intr" >"$OUT" 2>"$ERR" &
BG=$!
for _ in $(seq 1 1200); do
    compgen -G "$T/intr/runs/*.json" >/dev/null && break
    kill -0 "$BG" 2>/dev/null || break
    sleep 0.05
done
records=$(snapshot "$T/intr/runs")
kill -INT "$BG" 2>/dev/null
wait "$BG"
rc=$?
BG=""
after=$(snapshot "$T/intr/runs")
kept=$(comm -23 <(LC_ALL=C sort <<<"$records") <(LC_ALL=C sort <<<"$after"))
if [[ -z $records ]]; then
    not_ok "$name" "no run record appeared before the sweep ended (exit $rc)"
elif ((rc == 0 || rc >= 124)); then
    not_ok "$name" "exit status $rc, want 1 (interrupted)"
elif check_line "$name" "$FX/interrupt_sweep.yaml" - "interrupt"; then
    if [[ -n $kept ]]; then
        not_ok "$name" "finished records changed or vanished: $kept"
    elif [[ -n $(tmp_files "$T/intr") ]]; then
        not_ok "$name" "temporary files left: $(tmp_files "$T/intr" | tr '\n' ' ')"
    elif ! "$PL" report "$T/intr" >"$OUT" 2>"$ERR"; then
        not_ok "$name" "prunelab report cannot rebuild the report from the kept records"
    else
        ok "$name"
    fi
fi

echo
if ((failed)); then
    echo "failed cases:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
