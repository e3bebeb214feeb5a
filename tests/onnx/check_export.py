#!/usr/bin/env python3
"""Checks an ONNX file written by `prunelab export` with two independent
clients: python3-onnx's checker (full_check: types and shape inference) and
OpenCV's DNN module, whose logits on the same test images must equal the
ones `prunelab eval --logits` wrote.

    check_export.py MODEL.onnx LOGITS.csv --idx data/mnist [--limit N]
        [--mean 0.1307 --std 0.3081] [--tol 1e-4] [--expect-zeros K]
        [--batch B]

The images are read from the IDX test files and normalised exactly as
prunelab's idx dataset does (float32 of (byte/255 - mean)/std, computed in
double). Tolerance: |opencv - prunelab| <= tol * max(1, max |logit|) over
the whole file. Both sides compute in float32 but sum in different orders
(prunelab's SIMD/blocked kernels vs OpenCV's), which moves a logit by a few
float32 ulps per layer, ~1e-6 relative over 20 layers; a wrong mapping (a
padding, an epsilon, a transposed or unmasked weight, a BN momentum used as
a scale) moves logits by 1e-2 or more. The difference must also stay below
1e-2 of the logits' spread over the images (median over classes of max -
min), so a barely trained network whose logits hardly depend on the image
is still checked where it matters. Exit 0 when everything holds, 1 with
one line per failure otherwise, 2 when a module is missing.
"""
import argparse
import os
import sys

try:
    import numpy as np
    import onnx
    import onnx.checker
    import onnx.numpy_helper
    import cv2
except ImportError as e:  # scripts/setup.sh installs python3-onnx and python3-opencv
    print("check_export.py: %s (install python3-onnx and python3-opencv: scripts/setup.sh)" % e, file=sys.stderr)
    sys.exit(2)


def read_idx_images(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            if p.endswith(".gz"):
                import gzip
                data = gzip.open(p).read()
            else:
                data = open(p, "rb").read()
            break
    else:
        raise SystemExit("check_export.py: %s: no such file" % path)
    magic, n = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    if magic != 0x803:
        raise SystemExit("check_export.py: %s: not an IDX image file" % path)
    h, w = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 1, h, w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("logits")
    ap.add_argument("--idx", required=True, help="directory with t10k-images-idx3-ubyte")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--mean", type=float, default=0.1307)
    ap.add_argument("--std", type=float, default=0.3081)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--expect-zeros", type=int, default=-1,
                    help="at least this many Conv/Gemm weights must be exactly 0 (masked)")
    ap.add_argument("--batch", type=int, default=100)
    a = ap.parse_args()
    fails = []

    # ---- onnx: the checker, and the contract of the file ----
    m = onnx.load(a.model)
    try:
        onnx.checker.check_model(m, full_check=True)
    except Exception as e:  # onnx.checker.ValidationError, shape inference errors
        fails.append("onnx.checker: " + str(e).splitlines()[0])
    opset = {o.domain: o.version for o in m.opset_import}
    if opset.get("", 0) != 13:
        fails.append("opset %r, want 13" % opset)
    if m.ir_version != 7:
        fails.append("ir_version %d, want 7" % m.ir_version)
    if m.producer_name != "prunelab":
        fails.append("producer_name %r" % m.producer_name)
    g = m.graph
    if [i.name for i in g.input] != ["input"] or [o.name for o in g.output] != ["logits"]:
        fails.append("inputs %s outputs %s, want input / logits" % ([i.name for i in g.input], [o.name for o in g.output]))
    d0 = g.input[0].type.tensor_type.shape.dim[0] if g.input else None
    if d0 is None or d0.dim_param != "N":
        fails.append("the batch dimension is not symbolic N")
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    weights = set()
    for n in g.node:
        if n.op_type in ("Conv", "Gemm") and len(n.input) > 1:
            weights.add(n.input[1])
        if n.op_type in ("Dropout",):
            fails.append("node %s: %s in an evaluation graph" % (n.name, n.op_type))
    zeros = sum(int((inits[w] == 0).sum()) for w in weights if w in inits)
    if a.expect_zeros >= 0 and zeros < a.expect_zeros:
        fails.append("%d zero weights in Conv/Gemm initializers, want >= %d (masked weights)" % (zeros, a.expect_zeros))

    # ---- prunelab's logits ----
    rows = np.loadtxt(a.logits, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    idx, labels, ref = rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2:].astype(np.float32)

    # ---- the same images, normalised like prunelab's idx dataset ----
    imgs = read_idx_images(os.path.join(a.idx, "t10k-images-idx3-ubyte"))
    if a.limit:
        imgs = imgs[: a.limit]
    if len(imgs) != len(idx) or not (idx == np.arange(len(idx))).all():
        fails.append("%s has %d rows, the test split %d images" % (a.logits, len(idx), len(imgs)))
        report(a, fails, 0, 0, 0)
    lut = ((np.arange(256, dtype=np.float64) / 255.0 - a.mean) / a.std).astype(np.float32)
    x = lut[imgs]

    # ---- OpenCV DNN ----
    net = cv2.dnn.readNetFromONNX(a.model)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    out = []
    for f in range(0, len(x), a.batch):
        net.setInput(np.ascontiguousarray(x[f:f + a.batch]), "input")
        out.append(np.array(net.forward("logits")).reshape(-1, ref.shape[1]))
    cv = np.concatenate(out).astype(np.float32)
    if cv.shape != ref.shape:
        fails.append("OpenCV gives logits %s, prunelab %s" % (cv.shape, ref.shape))
        report(a, fails, 0, 0, 0)
    diff = float(np.abs(cv.astype(np.float64) - ref).max())
    scale = max(1.0, float(np.abs(ref).max()))
    if not np.isfinite(diff) or diff > a.tol * scale:
        fails.append("max |opencv - prunelab| = %.3g > %g x %.3g" % (diff, a.tol, scale))
    # a barely trained network's logits hardly depend on the image: the
    # difference must also be small against what the images change
    spread = float(np.median(ref.max(0) - ref.min(0))) if len(ref) > 1 else 0.0
    if spread > 0 and diff > 1e-2 * spread:
        fails.append("max |opencv - prunelab| = %.3g > 1e-2 x %.3g (the logits' spread over the images)"
                     % (diff, spread))
    acc_pl = 100.0 * float((ref.argmax(1) == labels).mean())
    acc_cv = 100.0 * float((cv.argmax(1) == labels).mean())
    report(a, fails, diff, acc_pl, acc_cv, zeros)


def report(a, fails, diff, acc_pl, acc_cv, zeros=0):
    for f in fails:
        print("check_export.py: %s: %s" % (a.model, f))
    if fails:
        sys.exit(1)
    print("ok %s: checker passed, %d bytes, max abs diff %.3g, accuracy prunelab %.4f opencv %.4f, %d zero weights"
          % (a.model, os.path.getsize(a.model), diff, acc_pl, acc_cv, zeros))
    sys.exit(0)


if __name__ == "__main__":
    main()
