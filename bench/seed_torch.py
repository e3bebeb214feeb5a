"""The seed experiment as the seed's own PyTorch script does it.

Used by bench/seed_pipeline.sh as the PyTorch side of "the seed pipeline
against its PyTorch script": the same work, done the same way, so that the
time includes what a user of that script pays for (torchvision's MNIST
dataset and per-image transforms, a DataLoader, printing the model).

  python3 seed_torch.py ROOT

ROOT holds MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, the
layout torchvision's MNIST reads without downloading.

The recipe: SimpleCNN (conv 1->4, conv 4->8, both 3x3 pad 1 with ReLU and
2x2 max pooling, fc 392->64 with ReLU, fc 64->10), Adam lr 1e-3, batch 64,
shuffled, one epoch; drop the 2 of conv1's 4 filters with the smallest L1
norm, rebuild conv1 and conv2 around the survivors (as the seed's code does,
conv2 gets a fresh layer whose bias is re-initialised); a new Adam; one more
epoch; test accuracy with batches of 1,000.
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import datasets, transforms


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(8 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.view(x.size(0), -1)))
        return self.fc2(x)


def train_one_epoch(model, loader):
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    total = 0.0
    for data, target in loader:
        opt.zero_grad()
        loss = loss_fn(model(data), target)
        loss.backward()
        opt.step()
        total += loss.item() * data.size(0)
    print(f"epoch loss {total / len(loader.dataset):.4f}")


def drop_conv1_filters(model, count):
    order = torch.argsort(model.conv1.weight.data.abs().sum(dim=[1, 2, 3]))
    keep = order[count:]
    kept = model.conv1.out_channels - count
    w1 = torch.index_select(model.conv1.weight.data, 0, keep)
    b1 = torch.index_select(model.conv1.bias.data, 0, keep)
    w2 = model.conv2.weight.data[:, keep, :, :]
    model.conv1 = nn.Conv2d(1, kept, kernel_size=3, padding=1)
    model.conv1.weight.data, model.conv1.bias.data = w1, b1
    model.conv2 = nn.Conv2d(kept, 8, kernel_size=3, padding=1)
    model.conv2.weight.data = w2
    print("pruned conv1 filters:", order[:count].tolist())


def test(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for data, target in loader:
            pred = model(data).argmax(1)
            correct += (pred == target).sum().item()
            total += target.size(0)
    return 100.0 * correct / total


def main():
    root = sys.argv[1]
    tf = transforms.Compose([transforms.ToTensor(),
                             transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(root, train=True, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True)
    model = SimpleCNN()
    print(model)
    train_one_epoch(model, loader)
    drop_conv1_filters(model, 2)
    print(model)
    train_one_epoch(model, loader)
    test_set = datasets.MNIST(root, train=False, download=False, transform=tf)
    acc = test(model, torch.utils.data.DataLoader(test_set, batch_size=1000))
    print(f"accuracy {acc:.2f}%")


if __name__ == "__main__":
    main()
