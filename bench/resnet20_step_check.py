"""One batch, K training steps of ResNet-20 in prunelab and in PyTorch from
the same initial weights: are the two computing the same thing?

    python3 bench/resnet20_step_check.py STEP_EXE PLUGIN_DIR DATA_DIR [--backend simd] [--n 32] [--k 3]

STEP_EXE is bench/resnet20_step.c built (bench/resnet20_step_check.sh does
that). prunelab initialises the network (seed 1) and runs K steps of Adam
(lr 1e-3) on the first N training images; this script loads those initial
weights into bench/resnet20_torch.py's network, runs the same K steps in
PyTorch and prints, side by side: the loss of every step, the first step's
gradient of every parameter tensor (relative difference), the parameters
and batchnorm running statistics after K steps, and the evaluation-mode
logits. Rounding differs (PyTorch sums in other orders; prunelab's
batchnorm statistics are in double precision), so expect agreement to
about 1e-5 relative in the first step, except where a ReLU input within
rounding of zero falls on the other side (a gradient then differs
upstream of that layer by a few 1e-3), and growing differences over the
steps (Adam's first steps move each weight by about lr whatever the
gradient's size, so a tiny gradient of the other sign moves it the other
way).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resnet20_torch as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step_exe")
    ap.add_argument("plugin_dir")
    ap.add_argument("data")
    ap.add_argument("--backend", default="simd")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--k", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    X, Y, _, _ = R.load(a.data)
    x, y = X[:a.n].contiguous(), Y[:a.n].contiguous()
    d = tempfile.mkdtemp(prefix="resnet20_step.")
    x.numpy().astype(np.float32).tofile(d + "/x.bin")
    y.numpy().astype(np.int32).tofile(d + "/y.bin")
    subprocess.check_call([a.step_exe, a.plugin_dir, os.path.join(root, "configs/models/resnet20.yaml"), a.backend,
                           "1", d + "/x.bin", d + "/y.bin", str(a.n), str(a.k), d])
    net = R.ResNet20()
    mods = [("conv", net.conv, net.bn)]  # prunelab's layer order
    for i, b in enumerate(net.blocks):
        mods += [(f"blocks.{i}.conv1", b.conv1, b.bn1), (f"blocks.{i}.conv2", b.conv2, b.bn2)]
        if b.proj is not None:
            mods.append((f"blocks.{i}.proj", b.proj[0], b.proj[1]))
    order = []
    for name, c, bn in mods:
        order += [(name, c), (name.replace("conv", "bn") if "proj" not in name else name + "bn", bn)]
    order.append(("fc", net.fc))

    def tensors(mod):
        if isinstance(mod, torch.nn.BatchNorm2d):
            return [("gamma", mod.weight), ("beta", mod.bias), ("running_mean", mod.running_mean),
                    ("running_var", mod.running_var)]
        return [("w", mod.weight)] + ([("b", mod.bias)] if mod.bias is not None else [])

    def each(path):
        v, o = np.fromfile(path, dtype=np.float32), 0
        for name, mod in order:
            for what, t in tensors(mod):
                k = t.numel()
                yield name, what, t, torch.from_numpy(v[o:o + k].copy()).view_as(t)
                o += k
        assert o == v.size, f"{path}: {v.size} floats, the network has {o}"

    with torch.no_grad():
        for _, _, t, v in each(d + "/init.bin"):
            t.copy_(v)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for k in range(a.k):
        net.train()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        losses.append(loss.item())
        if k == 0:
            print("first step's gradients, |prunelab - PyTorch| / |PyTorch| (norms):")
            worst = 0.0
            for name, what, t, g in each(d + "/grads1.bin"):
                if t.grad is None:
                    continue
                rel = ((g - t.grad).norm() / (t.grad.norm() + 1e-30)).item()
                worst = max(worst, rel)
                print(f"  {name:18s} {what:6s} {rel:.2e}")
            print(f"  worst {worst:.2e}")
        opt.step()
    pl = [float(line.split()[1]) for line in open(d + "/losses.txt")]
    for k in range(a.k):
        print(f"step {k + 1}: loss PyTorch {losses[k]:.6f} prunelab {pl[k]:.6f}")
    worst = max((((v - t.detach()).abs().max() / (t.detach().abs().max() + 1e-12)).item(), name, what)
                for name, what, t, v in each(d + "/final.bin"))
    print("after %d steps, largest difference relative to the tensor's largest value: %.2e (%s %s)"
          % (a.k, worst[0], worst[1], worst[2]))
    net.eval()
    with torch.no_grad():
        z = net(x)
    zp = torch.from_numpy(np.fromfile(d + "/logits_eval.bin", dtype=np.float32)).view_as(z)
    print("evaluation-mode logits: max |difference| %.2e (largest logit %.2f)" % ((z - zp).abs().max(), z.abs().max()))
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    os.rmdir(d)


if __name__ == "__main__":
    main()
