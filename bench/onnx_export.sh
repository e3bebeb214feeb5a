#!/usr/bin/env bash
# bench/onnx_export.sh [BUILD_DIR] [LIMIT] [THREADS] — what pruning buys an
# ONNX runtime: resnet20 trained briefly on the first LIMIT MNIST images
# (default 1000, both splits), 50 % of its channels removed (L1, one shot),
# both checkpoints (dense baseline, pruned) exported with and without
# --fold-bn, then per file: its size, `prunelab export` time, OpenCV 4.6 DNN
# latency on the LIMIT test images (batches of 100, median of 5 passes after
# a warm-up, THREADS OpenCV threads) and the largest |OpenCV - prunelab|
# logit difference. Needs python3-opencv (python3 or /usr/bin/python3).
set -eu
B=${1:-build}
LIMIT=${2:-1000}
THREADS=${3:-1}
P="$B/prunelab"
[ -x "$P" ] || { echo "no $P (build first)" >&2; exit 2; }
PY=
for py in python3 /usr/bin/python3; do
    if "$py" -c 'import numpy, cv2' 2>/dev/null; then PY=$py; break; fi
done
[ -n "$PY" ] || { echo "needs python3-opencv (numpy, cv2) in python3 or /usr/bin/python3" >&2; exit 2; }
T=$(mktemp -d /tmp/pl-onnx-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
cat >"$T/x.yaml" <<EOF
name: onnx-bench
seed: 1
model: configs/models/resnet20.yaml
dataset: {plugin: idx, path: data/mnist, limit: $LIMIT}
backend: simd
train: {epochs: 1, batch_size: 32}
prune: {criterion: l1, granularity: channel, schedule: oneshot, sparsity: 0.5}
retrain: {epochs: 1, batch_size: 32}
report: {latency_runs: 1, plots: false}
EOF
"$P" run "$T/x.yaml" --out "$T/r" --quiet --threads "$THREADS" | tail -1
dense=$(ls "$T"/r/cache/baseline-*.ckpt)
pruned=$(ls "$T"/r/models/*.ckpt)
for w in dense pruned; do
    ck=${!w}
    "$P" eval "$ck" "$T/x.yaml" --logits "$T/$w.csv" --threads "$THREADS" | sed -n 's/^/  '"$w"': /p' | grep -v logits
    for f in "" --fold-bn; do
        t0=$(date +%s.%N)
        "$P" export "$ck" -o "$T/$w$f.onnx" $f >/dev/null
        t1=$(date +%s.%N)
        echo "$w$f $(echo "($t1 - $t0) * 1000" | bc -l)" >>"$T/export_ms"
    done
done
"$PY" - "$T" "$LIMIT" "$THREADS" <<'EOF'
import os, sys, time
import numpy as np, cv2
T, limit, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cv2.setNumThreads(threads)
raw = open("data/mnist/t10k-images-idx3-ubyte", "rb").read()
imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)[:limit]
lut = ((np.arange(256) / 255.0 - 0.1307) / 0.3081).astype(np.float32)
x = lut[imgs]
export_ms = dict(l.split() for l in open(os.path.join(T, "export_ms")))
print("| file | bytes | export ms (incl. process start) | OpenCV ms / %d images | max abs logit diff |" % len(x))
print("|---|---|---|---|---|")
for w in ("dense", "pruned"):
    ref = np.loadtxt(os.path.join(T, w + ".csv"), delimiter=",", skiprows=1)[:, 2:]
    for f in ("", "--fold-bn"):
        path = os.path.join(T, w + f + ".onnx")
        net = cv2.dnn.readNetFromONNX(path)
        def run():
            out = []
            for i in range(0, len(x), 100):
                net.setInput(np.ascontiguousarray(x[i:i + 100]), "input")
                out.append(net.forward("logits").reshape(-1, ref.shape[1]))
            return np.concatenate(out)
        lg = run()  # warm-up
        ts = []
        for _ in range(5):
            t0 = time.perf_counter(); run(); ts.append(time.perf_counter() - t0)
        print("| resnet20 %s%s | %d | %.1f | %.1f | %.2g |" % (w, " " + f if f else "", os.path.getsize(path),
              float(export_ms[w + f]), 1000 * sorted(ts)[2], float(np.abs(lg - ref).max())))
EOF
