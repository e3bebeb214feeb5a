#!/usr/bin/env bash
# test_cifar.sh BUILD_DIR SOURCE_DIR — the cifar dataset plugin end to end:
# CIFAR-10 binary files in the real format, written here (a learnable
# pattern: class k has a bright square at a class-dependent place), feed a
# whole run of configs/models/vgg_mini_cifar.yaml (train, channel-prune,
# retrain); the run learns (test accuracy well above chance), the report
# names the dataset checksum, and a truncated file is a one-line error
# (exit 2) that writes no record.
# Prints "N passed, M failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib.sh"
pl_dirs "$1" "$2"
cd "$S" || exit 2
pl_tmp cifar

rc_is() { [ "$rc" -eq "$1" ] && ok || no "exit $rc, want $1; stdout: $(tail -c 1500 "$T/out"); stderr: $(head -c 400 "$T/err")"; }
err_has() { grep -Eq -- "$1" "$T/err" && ok || no "stderr lacks /$1/: $(head -c 400 "$T/err")"; }

# N records of class (i mod 10): a 8x8 square of 250 at a class-dependent
# place in channel (class mod 3), the rest noise below 100.
mk() { # FILE N SEED
    perl -e '
        my ($n, $seed) = @ARGV; srand($seed); binmode STDOUT;
        for my $i (0 .. $n - 1) {
            my $k = ($i * 7 + $seed) % 10;
            my @px = map { int(rand(100)) } 1 .. 3072;
            my ($oy, $ox) = (int($k / 4) * 8 + 2, ($k % 4) * 8);
            for my $y ($oy .. $oy + 7) { for my $x ($ox .. $ox + 7) { $px[($k % 3) * 1024 + $y * 32 + $x] = 250; } }
            print pack("C*", $k, @px);
        }' "$2" "$3" >"$1"
}
mkdir -p "$T/cifar"
for k in 1 2 3 4 5; do mk "$T/cifar/data_batch_$k.bin" 200 "$k"; done
mk "$T/cifar/test_batch.bin" 300 9

cat >"$T/x.yaml" <<YAML
name: cifar-e2e
model: configs/models/vgg_mini_cifar.yaml
dataset: {plugin: cifar, path: $T/cifar}
train: {epochs: 1, batch_size: 32}
prune: {criterion: l1, granularity: channel, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1}
YAML

run run "$T/x.yaml" --out "$T/r" --threads 1 --quiet
rc_is 0
case="results row"
row=$(grep -v '^run_id' "$T/r/results.csv" 2>/dev/null | head -1)
[ -n "$row" ] && ok || no "no results row"
acc=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "acc_final") c = i } NR == 2 { print $c }' "$T/r/results.csv")
case="learns (acc_final $acc > 50)"
awk -v a="$acc" 'BEGIN { exit !(a > 50) }' && ok || no "acc_final $acc"
case="status ok"
grep -q ',ok' "$T/r/results.csv" && ok || no "$(cat "$T/r/results.csv")"

# a truncated test file: one line naming it, exit 2, no record written
head -c 5000 "$T/cifar/test_batch.bin" >"$T/cifar/t" && mv "$T/cifar/t" "$T/cifar/test_batch.bin"
run run "$T/x.yaml" --out "$T/r2" --threads 1 --quiet
rc_is 2
err_has 'test_batch.bin: length 5000 is not a positive multiple of the 3073-byte CIFAR-10 record'
case="one line"
[ "$(wc -l <"$T/err")" -eq 1 ] && ok || no "$(cat "$T/err")"
case="no record"
[ -z "$(ls "$T/r2/runs" 2>/dev/null)" ] && ok || no "$(ls "$T/r2/runs")"

pl_summary
