"""Winograd convolutions: the transforms' algebra, and the ONNX rewrite against ONNX Runtime's
direct convolution (end-to-end parity with the reference is in test_parity and test_engines)."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from metrics.lpips.engines.onnx import winograd


@pytest.mark.parametrize("m,r", [(2, 3), (3, 3), (4, 3), (2, 5)])
def test_transforms_compute_a_correlation(m, r):
    at, g, bt = winograd.transforms(m, r)
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, w = rng.normal(size=m + r - 1), rng.normal(size=r)
        direct = np.array([np.dot(w, d[i:i + r]) for i in range(m)])
        np.testing.assert_allclose(at @ ((g @ w) * (bt @ d)), direct, rtol=0, atol=1e-12)


def _conv_model(layers):
    """A chain Conv(+ReLU) per layer (c_in, c_out, kernel, stride, group), with a MaxPool
    after the second layer and every ReLU output a graph output."""
    rng = np.random.default_rng(1)
    nodes, inits, outputs, x = [], [], [], "x"
    for i, (c_in, c_out, k, stride, group) in enumerate(layers):
        w = rng.normal(0, (c_in * k * k / group) ** -0.5, (c_out, c_in // group, k, k))
        inits += [numpy_helper.from_array(w.astype(np.float32), "w%d" % i),
                  numpy_helper.from_array(rng.normal(0, 0.1, c_out).astype(np.float32), "b%d" % i)]
        nodes += [helper.make_node("Conv", [x, "w%d" % i, "b%d" % i], ["c%d" % i], kernel_shape=[k, k],
                                   pads=[k // 2] * 4, strides=[stride] * 2, group=group),
                  helper.make_node("Relu", ["c%d" % i], ["y%d" % i])]
        outputs.append("y%d" % i)
        x = "y%d" % i
        if i == 1:
            nodes.append(helper.make_node("MaxPool", [x], ["p"], kernel_shape=[2, 2], strides=[2, 2]))
            x = "p"
    value = lambda name: helper.make_tensor_value_info(  # noqa: E731
        name, TensorProto.FLOAT, ["N", "C", "H", "W"])
    graph = helper.make_graph(nodes, "chain", [value("x")], [value(o) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


LAYERS = [(64, 128, 3, 1, 1),   # Winograd F(4, 3) (or F(3, 3))
          (128, 128, 5, 1, 1),  # Winograd F(2, 5)
          (128, 128, 3, 2, 1),  # strided: direct
          (128, 128, 3, 1, 2),  # grouped: direct
          (128, 32, 3, 1, 1),   # too few output channels: direct
          (32, 128, 3, 1, 1),   # too few input channels: direct
          (128, 256, 3, 1, 1)]  # Winograd again, after direct layers


def test_rewrite_replaces_only_eligible_convolutions():
    model = _conv_model(LAYERS)
    assert winograd.rewrite(model) == 3
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 4
    assert [o.name for o in model.graph.output] == ["y%d" % i for i in range(len(LAYERS))]
    model = _conv_model(LAYERS)
    assert winograd.rewrite(model, {5: 2}) == 1  # kernels without a tile size stay direct


def test_rewrite_uses_the_given_tile_sizes():
    def tile_positions(tiles):  # alpha^2 per replaced layer, from the transformed weights U
        model = _conv_model(LAYERS)
        winograd.rewrite(model, tiles)
        return [t.dims[0] for t in model.graph.initializer if "/U_" in t.name]

    assert tile_positions(None) == [6 * 6, 6 * 6, 6 * 6]  # F(4, 3), F(2, 5), F(4, 3)
    assert tile_positions({3: 3, 5: 2}) == [5 * 5, 6 * 6, 5 * 5]


@pytest.mark.heavy
@pytest.mark.parametrize("tiles", [None, {3: 3, 5: 2}])
@pytest.mark.parametrize("shape", [(1, 64, 16, 16), (3, 64, 23, 30), (2, 64, 9, 5)])
def test_rewrite_equals_direct_convolution(shape, tiles):
    x = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    direct = _run(_conv_model(LAYERS), x)
    rewritten = _conv_model(LAYERS)
    assert winograd.rewrite(rewritten, tiles) == 3
    fast = _run(rewritten, x)
    for a, b in zip(direct, fast):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()
