#!/usr/bin/env python3
"""make_fixtures.py - regenerate the ONNX import fixtures in tests/onnx/fixtures/.

Needs PyTorch 1.13 and the onnx package (Debian: python3-torch, python3-onnx);
the tests that use the fixtures need neither, the files are committed. Run it
from the repository root with an interpreter that has torch:

    python3 tests/onnx/make_fixtures.py        # or /usr/bin/python3 ...

Each network is exported twice, in the two forms PyTorch 1.13 writes:

    <name>.onnx         torch.onnx.export defaults (batchnorm folded into the
                        convolutions, constants folded)
    <name>_bn.onnx      do_constant_folding=False,
                        training=torch.onnx.TrainingMode.PRESERVE
                        (BatchNormalization nodes kept)

both with a symbolic batch dimension, input "input", output "logits". Beside
them, <name>.ref holds a few input images and PyTorch's logits for them (the
same for both forms), in this little-endian binary layout:

    8 bytes   magic "PLREF01\\n"
    5 x int32 n, c, h, w, classes
    n*c*h*w   float32 inputs, NCHW
    n*classes float32 logits (PyTorch, eval mode)

Weights and batchnorm statistics are random but fixed (torch.manual_seed), so
the files are reproducible up to PyTorch's own export details.

It also writes the small broken files the error tests load (bad_*.onnx), made
with onnx.helper: an unsupported operator, a 3-D input, Gemm with alpha != 1,
a giant declared initializer, a cycle (a node reading its own output), and a
constant operand of Add.
"""
import os
import struct
import sys

try:
    import torch
    import torch.nn as nn
    import onnx
    from onnx import helper, TensorProto
except ImportError as e:  # pragma: no cover
    sys.exit("make_fixtures.py: needs torch and onnx (%s); try /usr/bin/python3" % e)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def randomize_bn(model, gen):
    """Non-trivial batchnorm parameters and statistics, so folding matters."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(c, generator=gen) * 2.0 + 0.2)


class Chain(nn.Module):
    """SimpleCNN-like: conv-relu-pool-conv-relu-pool-flatten-linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.pool2 = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class Residual(nn.Module):
    """A tiny ResNet: stem, an identity block, a projection block, GAP, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = self.pool(x)
        return self.fc(x.reshape(-1, 16))


class Depthwise(nn.Module):
    """A depthwise-separable block, average pooling with padding, dropout."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(16)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(16 * 6 * 6, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.dw(x)))
        x = torch.relu(self.bn3(self.pw(x)))
        x = self.pool(x)
        return self.fc(self.drop(torch.flatten(x, 1)))


class Concat(nn.Module):
    """DenseNet-like: two dense layers concatenated onto their input, a 1x1
    transition, average pooling, then a MatMul + Add head."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv1 = nn.Conv2d(6, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(10)
        self.conv2 = nn.Conv2d(10, 4, 3, padding=1, bias=False)
        self.trans = nn.Conv2d(14, 8, 1)
        self.pool = nn.AvgPool2d(2)
        self.w = nn.Parameter(torch.randn(8 * 4 * 4, 10) * 0.1)
        self.b = nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        x = self.conv0(x)
        y = self.conv1(torch.relu(self.bn1(x)))
        x = torch.cat([x, y], 1)
        y = self.conv2(torch.relu(self.bn2(x)))
        x = torch.cat([x, y], 1)
        x = self.pool(torch.relu(self.trans(x)))
        return torch.matmul(torch.flatten(x, 1), self.w) + self.b


NETS = [  # name, class, input c, h, w
    ("chain", Chain, 1, 28, 28),
    ("residual", Residual, 1, 12, 12),
    ("depthwise", Depthwise, 3, 12, 12),
    ("concat", Concat, 3, 8, 8),
]


def export(model, x, path, **kw):
    torch.onnx.export(model, x, path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, **kw)
    onnx.checker.check_model(onnx.load(path))


def write_ref(path, x, y):
    n, c, h, w = x.shape
    with open(path, "wb") as f:
        f.write(b"PLREF01\n")
        f.write(struct.pack("<5i", n, c, h, w, y.shape[1]))
        f.write(x.contiguous().numpy().astype("<f4").tobytes())
        f.write(y.contiguous().numpy().astype("<f4").tobytes())


def nets():
    for i, (name, cls, c, h, w) in enumerate(NETS):
        torch.manual_seed(100 + i)
        gen = torch.Generator().manual_seed(200 + i)
        model = cls()
        randomize_bn(model, gen)
        model.eval()
        x = torch.randn(4, c, h, w, generator=gen)
        with torch.no_grad():
            y = model(x)
        export(model, x[:1], os.path.join(OUT, name + ".onnx"))
        export(model, x[:1], os.path.join(OUT, name + "_bn.onnx"), do_constant_folding=False,
               training=torch.onnx.TrainingMode.PRESERVE)
        write_ref(os.path.join(OUT, name + ".ref"), x, y)
        print("wrote %s.onnx, %s_bn.onnx, %s.ref" % (name, name, name))


def save(graph, name, opset=13):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_fixtures")
    with open(os.path.join(OUT, name), "wb") as f:  # unchecked on purpose: some are invalid
        f.write(m.SerializeToString())
    print("wrote", name)


def conv_graph(extra_nodes, extra_inits, out_name, out_shape, in_shape=("N", 1, 4, 4), nodes_first=None):
    """input -> Conv(1->2, 3x3, pad 1) named conv1 -> extra nodes -> out_name."""
    w = helper.make_tensor("conv1.weight", TensorProto.FLOAT, [2, 1, 3, 3], [0.1] * 18)
    conv = helper.make_node("Conv", ["input", "conv1.weight"], ["c1"], name="/conv1/Conv", pads=[1, 1, 1, 1])
    nodes = (nodes_first or []) + [conv] + extra_nodes
    return helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(in_shape))],
                             [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(out_shape))],
                             [w] + extra_inits)


def bad_files():
    # an operator prunelab does not implement: node 1 is Sigmoid
    save(conv_graph([helper.make_node("Sigmoid", ["c1"], ["s"], name="/act/Sigmoid"),
                     helper.make_node("Flatten", ["s"], ["logits"], name="/Flatten")], [], "logits", ["N", 32]),
         "bad_sigmoid.onnx")
    # a 3-D input [N, C, L]
    g = helper.make_graph([helper.make_node("Relu", ["input"], ["r"], name="/Relu"),
                           helper.make_node("Flatten", ["r"], ["logits"], name="/Flatten")], "bad",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 48])])
    save(g, "bad_rank.onnx")
    # Gemm with alpha 2
    fw = helper.make_tensor("fc.weight", TensorProto.FLOAT, [3, 32], [0.01] * 96)
    save(conv_graph([helper.make_node("Flatten", ["c1"], ["f"], name="/Flatten"),
                     helper.make_node("Gemm", ["f", "fc.weight"], ["logits"], name="/fc/Gemm", alpha=2.0, transB=1)],
                    [fw], "logits", ["N", 3]), "bad_gemm_alpha.onnx")
    # an initializer declaring 2^40 floats (its data is absent)
    huge = TensorProto()
    huge.name = "fc.weight"
    huge.data_type = TensorProto.FLOAT
    huge.dims.extend([1 << 20, 1 << 20])
    save(conv_graph([helper.make_node("Flatten", ["c1"], ["f"], name="/Flatten"),
                     helper.make_node("Gemm", ["f", "fc.weight"], ["logits"], name="/fc/Gemm", transB=1)],
                    [huge], "logits", ["N", 3]), "bad_huge.onnx")
    # a cycle: the Relu reads the Add that reads it
    save(conv_graph([helper.make_node("Relu", ["a"], ["r"], name="/Relu"),
                     helper.make_node("Add", ["c1", "r"], ["a"], name="/Add"),
                     helper.make_node("Flatten", ["a"], ["logits"], name="/Flatten")], [], "logits", ["N", 32]),
         "bad_cycle.onnx")
    # Add of a constant to a convolution's output
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [1.0])
    save(conv_graph([helper.make_node("Add", ["c1", "k"], ["a"], name="/Add"),
                     helper.make_node("Flatten", ["a"], ["logits"], name="/Flatten")], [k], "logits", ["N", 32]),
         "bad_add_const.onnx")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    nets()
    bad_files()


if __name__ == "__main__":
    main()
