#!/usr/bin/env python3
"""The PyTorch half of bench/onnx_roundtrip.sh.

    onnx_roundtrip_torch.py train DATA_DIR OUT.onnx [--epochs E] [--seed S]
        trains a small residual CNN with batchnorm on MNIST in PyTorch,
        prints "torch_test_acc=<percent>" on the 10,000 test images, and
        exports it to ONNX (opset 13, default form: batchnorm folded).
    onnx_roundtrip_torch.py opencv DATA_DIR MODEL.onnx
        scores an ONNX file with OpenCV's DNN module on the test images:
        prints "opencv_test_acc=<percent>".

Images are normalised like prunelab's idx dataset with normalize
{mean: 0.1307, std: 0.3081}: float32 of (byte/255 - mean)/std in double.
Needs numpy, torch (python3-torch) for `train`, cv2 (python3-opencv) for
`opencv`. Not a test: a measurement for the ONNX issue's closing figures.
"""
import os
import sys

import numpy as np

MEAN, STD = 0.1307, 0.3081


def idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    nd = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def images(d, split):
    x = idx(os.path.join(d, split + "-images-idx3-ubyte")).astype(np.float64)
    x = ((x / 255.0 - MEAN) / STD).astype(np.float32)
    return x.reshape(-1, 1, 28, 28)


def labels(d, split):
    return idx(os.path.join(d, split + "-labels-idx1-ubyte")).astype(np.int64)


def train(d, out, epochs, seed):
    import torch
    import torch.nn as nn
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + x)

    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        Block(16), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        Block(32), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
    xtr, ytr = torch.from_numpy(images(d, "train")), torch.from_numpy(labels(d, "train"))
    xte, yte = torch.from_numpy(images(d, "t10k")), torch.from_numpy(labels(d, "t10k"))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum()) for i in range(0, 10000, 1000))
    print("torch_test_acc=%.2f" % (correct / 100.0))
    torch.onnx.export(net, xte[:1], out, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})


def opencv(d, model):
    import cv2
    net = cv2.dnn.readNetFromONNX(model)
    x, y = images(d, "t10k"), labels(d, "t10k")
    correct = 0
    for i in range(0, len(x), 500):
        net.setInput(x[i:i + 500])
        correct += int((net.forward().argmax(1) == y[i:i + 500]).sum())
    print("opencv_test_acc=%.2f" % (100.0 * correct / len(x)))


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "train":
        ep = int(a[a.index("--epochs") + 1]) if "--epochs" in a else 1
        sd = int(a[a.index("--seed") + 1]) if "--seed" in a else 1
        train(a[1], a[2], ep, sd)
    elif len(a) == 3 and a[0] == "opencv":
        opencv(a[1], a[2])
    else:
        sys.exit(__doc__)
