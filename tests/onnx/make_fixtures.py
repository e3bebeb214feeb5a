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

Two more cover what those networks do not: legacy.onnx (opset 10, where Pad
and Dropout take attributes; max pooling with padding; the batchnorm form)
and mlp.onnx (built with onnx.helper, reference computed with numpy: a
vector input [N, 12], Gemm with transB=0 behind an Identity, batchnorm of
vectors, Dropout with its ratio as an input, MatMul + Add with the bias
from a Constant node, and a node the output does not depend on).

two_inputs.onnx has two graph inputs (a Slice of one, an Add and a Concat
of both), which prunelab packs along the channels into one input;
two_inputs.ref holds the packed input; bad_pack.onnx (inputs of other
heights and widths), bad_slice_axis.onnx and bad_slice_step.onnx are what
the importer refuses there. `make_fixtures.py two_inputs` writes only
these files.

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


class Legacy(nn.Module):
    """Exported at opset 10: max pooling with padding, average pooling with
    padding (count_include_pad), batchnorm kept."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=1, padding=1, bias=False)
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x):
        x = self.pool1(self.bn1(self.conv1(x)))  # no relu: negative values meet the padding
        x = self.pool2(torch.relu(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


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


def legacy():
    torch.manual_seed(300)
    gen = torch.Generator().manual_seed(301)
    model = Legacy()
    randomize_bn(model, gen)
    model.eval()
    x = torch.randn(4, 3, 10, 10, generator=gen)
    with torch.no_grad():
        y = model(x)
    export(model, x[:1], os.path.join(OUT, "legacy.onnx"), opset_version=10, do_constant_folding=False,
           training=torch.onnx.TrainingMode.PRESERVE)
    write_ref(os.path.join(OUT, "legacy.ref"), x, y)
    print("wrote legacy.onnx, legacy.ref")


def mlp():
    import numpy as np
    rng = np.random.default_rng(400)
    f32 = lambda a: np.asarray(a, dtype=np.float32)
    w1 = f32(rng.normal(0, 0.3, (12, 16)))           # [in, out]: Gemm transB=0
    b1 = f32(rng.normal(0, 0.1, 16))
    gamma, beta = f32(rng.uniform(0.5, 1.5, 16)), f32(rng.normal(0, 0.1, 16))
    mean, var = f32(rng.normal(0, 0.2, 16)), f32(rng.uniform(0.5, 2.0, 16))
    w2 = f32(rng.normal(0, 0.3, (16, 5)))
    b2 = f32(rng.normal(0, 0.1, 5))
    T = lambda name, a: helper.make_tensor(name, TensorProto.FLOAT, a.shape, a.flatten().tolist())
    nodes = [
        helper.make_node("Identity", ["fc1.weight"], ["w1"], name="/fc1/Identity"),
        helper.make_node("Gemm", ["input", "w1", "fc1.bias"], ["h"], name="/fc1/Gemm", transB=0),
        helper.make_node("BatchNormalization", ["h", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                         ["hb"], name="/bn/BatchNormalization", epsilon=1e-3, momentum=0.8),
        helper.make_node("Relu", ["hb"], ["r"], name="/Relu"),
        helper.make_node("Relu", ["h"], ["unused"], name="/dead/Relu"),
        helper.make_node("Constant", [], ["ratio"], name="/drop/Constant",
                         value=helper.make_tensor("ratio_value", TensorProto.FLOAT, [], [0.25])),
        helper.make_node("Dropout", ["r", "ratio"], ["d"], name="/drop/Dropout"),
        helper.make_node("MatMul", ["d", "fc2_w"], ["m"], name="/fc2/MatMul"),
        helper.make_node("Constant", [], ["b2"], name="/fc2/Constant", value=T("b2_value", b2)),
        helper.make_node("Add", ["m", "b2"], ["logits"], name="/fc2/Add"),
    ]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 12])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
                          [T("fc1.weight", w1), T("fc1.bias", b1), T("bn.weight", gamma), T("bn.bias", beta),
                           T("bn.running_mean", mean), T("bn.running_var", var), T("fc2_w", w2)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_fixtures")
    onnx.checker.check_model(m)
    with open(os.path.join(OUT, "mlp.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    x = rng.normal(0, 1, (4, 12)).astype(np.float32)
    h = x.astype(np.float64) @ w1 + b1
    h = (h - mean) / np.sqrt(var.astype(np.float64) + np.float64(np.float32(1e-3))) * gamma + beta
    y = np.maximum(h, 0) @ w2 + b2
    write_ref(os.path.join(OUT, "mlp.ref"), torch.from_numpy(x.reshape(4, 12, 1, 1)),
              torch.from_numpy(y.astype(np.float32)))
    print("wrote mlp.onnx, mlp.ref")


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


class TwoInputs(nn.Module):
    """Two graph inputs a [N, 2, 6, 6] and b [N, 4, 6, 6]: a Conv of a, added
    to channels 1..3 of b (a Slice), then concatenated with b."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(7, 5)

    def forward(self, a, b):
        s = torch.relu(self.conv(a)) + b[:, 1:4]
        y = torch.cat([s, b], 1)
        y = nn.functional.adaptive_avg_pool2d(y, 1)
        return self.fc(torch.flatten(y, 1))


def two_inputs():
    """two_inputs.onnx: graph inputs a and b, which prunelab packs into one
    input [N, 6, 6, 6] (a's channels 0-1, b's 2-5); two_inputs.ref holds
    that packed input and PyTorch's logits."""
    torch.manual_seed(300)
    gen = torch.Generator().manual_seed(301)
    model = TwoInputs().eval()
    a = torch.randn(4, 2, 6, 6, generator=gen)
    b = torch.randn(4, 4, 6, 6, generator=gen)
    with torch.no_grad():
        y = model(a, b)
    path = os.path.join(OUT, "two_inputs.onnx")
    torch.onnx.export(model, (a[:1], b[:1]), path, input_names=["a", "b"], output_names=["logits"],
                      dynamic_axes={"a": {0: "N"}, "b": {0: "N"}, "logits": {0: "N"}}, opset_version=13)
    onnx.checker.check_model(onnx.load(path))
    write_ref(os.path.join(OUT, "two_inputs.ref"), torch.cat([a, b], 1), y)
    print("wrote two_inputs.onnx, two_inputs.ref")
    # inputs that cannot be packed, and Slice forms prunelab refuses
    vi = helper.make_tensor_value_info

    def two(nodes, b_shape, inits=(), out_shape=("N", 2, 4, 4)):
        return helper.make_graph(nodes, "bad", [vi("a", TensorProto.FLOAT, ["N", 2, 4, 4]),
                                                vi("b", TensorProto.FLOAT, list(b_shape))],
                                 [vi("y", TensorProto.FLOAT, list(out_shape))], list(inits))

    save(two([helper.make_node("Add", ["a", "b"], ["y"], name="/Add")], ["N", 2, 5, 5]), "bad_pack.onnx")
    ints = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [len(v)], v)
    save(two([helper.make_node("Slice", ["b", "s", "e", "ax"], ["t"], name="/Slice"),
              helper.make_node("Add", ["a", "t"], ["y"], name="/Add")], ["N", 2, 4, 4],
             [ints("s", [0]), ints("e", [2]), ints("ax", [3])]), "bad_slice_axis.onnx")
    save(two([helper.make_node("Slice", ["b", "s", "e", "ax", "st"], ["t"], name="/Slice"),
              helper.make_node("Add", ["a", "t"], ["y"], name="/Add")], ["N", 4, 4, 4],
             [ints("s", [0]), ints("e", [4]), ints("ax", [1]), ints("st", [2])]), "bad_slice_step.onnx")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    if sys.argv[1:] == ["two_inputs"]:  # only the packed-input fixture
        two_inputs()
        return
    nets()
    legacy()
    mlp()
    bad_files()
    two_inputs()


if __name__ == "__main__":
    main()
