"""ResNet-20 in PyTorch, the same network as configs/models/resnet20.yaml, and
the recipe of experiments/resnet20.yaml for the PyTorch side of
bench/pytorch_resnet20.sh.

    python3 bench/resnet20_torch.py DATA_DIR --seeds 1 2 3 --epochs 2 \
        --sparsity 0.5 --retrain-epochs 2 --batch 128 --threads 2

DATA_DIR holds the four IDX files of an MNIST-format dataset (MNIST,
Fashion-MNIST), plain or .gz. Images are normalised as prunelab's idx plugin
does by default: x = (pixel/255 - 0.1307) / 0.3081.

The recipe per seed: train EPOCHS epochs (Adam lr LR (1e-3), batch BATCH (128),
shuffled each epoch; --lr-schedule step|cosine sets each epoch's learning rate
as prunelab's train.lr_schedule does, per phase), test; then, if --sparsity is given, prune that share of the
prunable channels, retrain RETRAIN_EPOCHS epochs, test. Pruning follows
prunelab's rules for this graph: the channels that must go together form a
group (a block's inner channels: conv1 -> bn1 -> conv2's input; a stage's
residual stream: every conv whose output is added into it, its batchnorms
and every consumer), a group channel's score is the mean over the group's
producing convs of the L1 norm of that channel's filter, scores are divided
by their group's mean score (prunelab's global schedule, normalize: mean)
and ranked across groups, each group keeps at least max(1, ceil(0.05 *
size)) channels. Removed channels are held at exactly zero (filters and
batchnorm affine parameters) which computes what the physically smaller
network computes. Prints one line per seed and phase:

    seed S dense|pruned acc A train_img_s R params P
"""
import argparse
import gzip
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _read(path, name):
    for n in (name, name + ".gz"):
        p = os.path.join(path, n)
        if os.path.exists(p):
            with (gzip.open if n.endswith(".gz") else open)(p, "rb") as f:
                return f.read()
    raise SystemExit(f"resnet20_torch: {path}: no {name} (nor {name}.gz)")


def load(path):
    def images(name):
        raw = np.frombuffer(_read(path, name), dtype=np.uint8, offset=16)
        x = torch.from_numpy(raw.reshape(-1, 1, 28, 28).astype(np.float32)) / 255.0
        return (x - 0.1307) / 0.3081

    def labels(name):
        return torch.from_numpy(np.frombuffer(_read(path, name), dtype=np.uint8, offset=8).astype(np.int64))

    return (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"),
            images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte"))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        o = F.relu(self.bn1(self.conv1(x)))
        o = self.bn2(self.conv2(o))
        return F.relu(o + (self.proj(x) if self.proj is not None else x))


class ResNet20(nn.Module):
    def __init__(self, in_c=1, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(in_c, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for k in range(3):
                blocks.append(Block(cin, cout, stride if k == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def groups(net):
    """[(producers [(conv, bn)], size)]: the prunable channel groups."""
    out, stage, stages = [], [(net.conv, net.bn)], []
    for b in net.blocks:
        out.append(([(b.conv1, b.bn1)], b.conv1.out_channels))
        if b.proj is not None:
            stages.append(stage)
            stage = [(b.proj[0], b.proj[1])]
        stage.append((b.conv2, b.bn2))
    stages.append(stage)
    out += [(s, s[0][0].out_channels) for s in stages]
    return out


def prune_masks(net, sparsity, floor=0.05):
    """{param: 0/1 mask}: the lowest-ranked channels of every group."""
    gs = groups(net)
    cand = []  # (normalised score, group, channel)
    for gi, (members, size) in enumerate(gs):
        s = torch.stack([c.weight.detach().abs().flatten(1).sum(1).double() for c, _ in members]).mean(0)
        s = s / s.mean() if s.mean() > 0 else s
        cand += [(s[c].item(), gi, c) for c in range(size)]
    total = sum(size for _, size in gs)
    want = round(sparsity * total)
    left = [size for _, size in gs]
    keep_min = [max(1, math.ceil(floor * size)) for _, size in gs]
    cut = [[] for _ in gs]
    for score, gi, c in sorted(cand, key=lambda t: (t[0], t[1], t[2])):
        if want == 0:
            break
        if left[gi] > keep_min[gi]:
            cut[gi].append(c)
            left[gi] -= 1
            want -= 1
    masks = {}
    for (members, size), cs in zip(gs, cut):
        m = torch.ones(size)
        m[cs] = 0
        for conv, bn in members:
            masks[conv.weight] = m.view(-1, 1, 1, 1).expand_as(conv.weight).clone()
            masks[bn.weight] = m.clone()
            masks[bn.bias] = m.clone()
    return masks, sum(len(c) for c in cut), total


def kept_params(net, masks):
    """Parameters of the physically pruned network (convs lose input and output channels)."""
    gs = groups(net)
    alive = {}
    for (members, size), in zip(gs):
        m = masks[members[0][0].weight][:, 0, 0, 0] if members[0][0].weight in masks else torch.ones(size)
        for conv, bn in members:
            alive[conv] = int(m.sum().item())
            alive[bn] = alive[conv]
    n, cin = 0, 1
    n += alive[net.conv] * 1 * 9 + 2 * alive[net.bn]
    cin = alive[net.conv]
    for b in net.blocks:
        c1, c2 = alive[b.conv1], alive[b.conv2]
        n += c1 * cin * 9 + 2 * c1 + c2 * c1 * 9 + 2 * c2
        if b.proj is not None:
            n += alive[b.proj[0]] * cin + 2 * alive[b.proj[0]]
        cin = c2
    return n + cin * net.fc.out_features + net.fc.out_features


def epoch_lr(a, epoch, epochs):
    """prunelab's train.lr_schedule: the learning rate of epoch `epoch` (0-based)."""
    if a.lr_schedule == "step":
        return a.lr * a.gamma ** (epoch // max(1, a.step_size))
    if a.lr_schedule == "cosine":
        return a.min_lr + (a.lr - a.min_lr) * (1 + math.cos(math.pi * epoch / epochs)) / 2
    return a.lr


def train(net, X, Y, epochs, masks, gen, a, phase="", seed=0, test_set=None):
    batch = a.batch
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    seen, secs = 0, 0.0
    for ep in range(epochs):
        for g in opt.param_groups:
            g["lr"] = epoch_lr(a, ep, epochs)
        t0 = time.perf_counter()
        net.train()
        perm = torch.randperm(X.shape[0], generator=gen)
        for i in range(0, X.shape[0], batch):
            b = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(X[b]), Y[b]).backward()
            opt.step()
            if masks:
                with torch.no_grad():
                    for p, m in masks.items():
                        p.mul_(m)
            seen += b.numel()
        secs += time.perf_counter() - t0
        if a.epoch_acc and test_set is not None:
            print(f"seed {seed} epoch {phase} {ep + 1} acc {test(net, *test_set):.2f}", flush=True)
    return seen / secs


def test(net, Xt, Yt):
    net.eval()
    with torch.no_grad():
        right = sum((net(Xt[i:i + 1000]).argmax(1) == Yt[i:i + 1000]).sum().item() for i in range(0, len(Xt), 1000))
    return 100.0 * right / len(Xt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--sparsity", type=float, default=None)
    ap.add_argument("--retrain-epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (a smoke test)")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (train.optimizer.lr)")
    ap.add_argument("--lr-schedule", choices=("constant", "step", "cosine"), default="constant",
                    help="per-epoch schedule of each phase, as prunelab's train.lr_schedule.type")
    ap.add_argument("--step-size", type=int, default=1, help="lr_schedule.step_size (step)")
    ap.add_argument("--gamma", type=float, default=0.1, help="lr_schedule.gamma (step)")
    ap.add_argument("--min-lr", type=float, default=0.0, help="lr_schedule.min_lr (cosine)")
    ap.add_argument("--epoch-acc", action="store_true",
                    help="also print each epoch's test accuracy: seed S epoch dense|pruned E acc A")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    X, Y, Xt, Yt = load(a.data)
    if a.limit:
        X, Y = X[:a.limit], Y[:a.limit]
    for seed in a.seeds:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = ResNet20(X.shape[1], 10)
        dense_params = sum(p.numel() for p in net.parameters())
        rate = train(net, X, Y, a.epochs, None, gen, a, "dense", seed, (Xt, Yt))
        print(f"seed {seed} dense acc {test(net, Xt, Yt):.2f} train_img_s {rate:.0f} params {dense_params}", flush=True)
        if a.sparsity is not None:
            masks, cut, total = prune_masks(net, a.sparsity)
            with torch.no_grad():
                for p, m in masks.items():
                    p.mul_(m)
            rate = train(net, X, Y, a.retrain_epochs, masks, gen, a, "pruned", seed, (Xt, Yt))
            print(f"seed {seed} pruned acc {test(net, Xt, Yt):.2f} train_img_s {rate:.0f} "
                  f"params {kept_params(net, masks)} channels_cut {cut}/{total}", flush=True)


if __name__ == "__main__":
    main()
