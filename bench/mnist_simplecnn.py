"""The seed's SimpleCNN and MNIST for the PyTorch side of bench/*.sh.

load(path) reads the IDX files of data/mnist with numpy and normalises the
images as the seed's transforms do (ToTensor: x/255 in float32, then
Normalize(0.1307, 0.3081)); test(model, Xt, Yt) is the test accuracy in
percent, in batches of 1,000 as the seed evaluates.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _idx(path, name, offset):
    with open(f"{path}/{name}", "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def _images(path, name):
    x = torch.from_numpy(_idx(path, name, 16).reshape(-1, 1, 28, 28).astype(np.float32)) / 255.0
    return (x - 0.1307) / 0.3081


def _labels(path, name):
    return torch.from_numpy(_idx(path, name, 8).astype(np.int64))


def load(path):
    return (_images(path, "train-images-idx3-ubyte"), _labels(path, "train-labels-idx1-ubyte"),
            _images(path, "t10k-images-idx3-ubyte"), _labels(path, "t10k-labels-idx1-ubyte"))


class SimpleCNN(nn.Module):  # the seed's network
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def test(model, Xt, Yt):
    model.eval()
    with torch.no_grad():
        right = sum((model(Xt[i:i + 1000]).argmax(1) == Yt[i:i + 1000]).sum().item()
                    for i in range(0, len(Xt), 1000))
    return 100.0 * right / len(Xt)
