# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Small tools for editing ONNX graphs in place, shared by the exporter, the rewrites and the
Winograd rewrite."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

OPSET = 13  # what NNabla's exporter writes and every rewrite here assumes (axes as attributes)
IR_VERSION = 8
# The location of initializers whose data ONNX Runtime is handed as arrays when it loads the
# graph (``add_external_initializers``).
MADE_WHEN_LOADED = "made-when-loaded-by-metrics.lpips"


class GraphBuilder(object):
    """Appends nodes and constants (as initializers) to an ONNX graph under unique names that
    start with ``prefix``."""

    def __init__(self, graph, prefix):
        self.graph, self.prefix, self.count = graph, prefix, 0

    def name(self, hint):
        self.count += 1
        return "{}/{}_{}".format(self.prefix, hint, self.count)

    def const(self, value, hint="const"):
        name = self.name(hint)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def ints(self, *values):
        """A 1-D int64 constant (shapes, axes, indices)."""
        return self.const(np.array(values, np.int64), "ints")

    def op(self, op_type, inputs, output=None, **attributes):
        output = output or self.name(op_type)
        self.graph.node.append(helper.make_node(op_type, list(inputs), [output],
                                                name=self.name(op_type + "_node"), **attributes))
        return output


def constant_values(graph):
    """{name: numpy array} of the graph's initializers and ``Constant`` nodes' values."""
    found = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    found.update((node.output[0], numpy_helper.to_array(node.attribute[0].t))
                 for node in graph.node if node.op_type == "Constant" and node.attribute
                 and node.attribute[0].name == "value")
    return found


def readers(graph):
    """{tensor name: the nodes that read it}."""
    found = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def rename(node, how):
    """Renames ``node``'s inputs and outputs in place, by the function ``how``."""
    inputs, outputs = [how(n) for n in node.input], [how(n) for n in node.output]
    del node.input[:], node.output[:]
    node.input.extend(inputs)
    node.output.extend(outputs)


def replace_nodes(graph, nodes):
    del graph.node[:]
    graph.node.extend(nodes)


def drop_unread(graph):
    """Removes the initializers and ``Constant`` nodes nothing reads any more (ONNX Runtime
    warns about them)."""
    used = {name for node in graph.node for name in node.input}
    used.update(output.name for output in graph.output)
    replace_nodes(graph, [node for node in graph.node if node.op_type != "Constant"
                          or any(out in used for out in node.output)])
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def make_model(graph, opset=OPSET):
    """A model of ``graph`` at ``opset`` (by default the one everything here writes) and the
    IR version."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = IR_VERSION
    return model


def uint8_to_input_model():
    """A small ONNX model (serialized): uint8 ``images`` (N, H, W, 3) -> float32 ``x``
    (N, 3, H, W) = (images / 255) * 2 - 1, in float32 as numpy computes it."""
    graph = helper.make_graph(
        [], "uint8_to_input",
        [helper.make_tensor_value_info("images", onnx.TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"])])
    g = GraphBuilder(graph, "to_input")
    unit = g.op("Div", [g.op("Cast", ["images"], to=onnx.TensorProto.FLOAT),
                        g.const(np.float32(255.0))])
    hwc = g.op("Sub", [g.op("Mul", [unit, g.const(np.float32(2.0))]), g.const(np.float32(1.0))])
    g.op("Transpose", [hwc], "x", perm=[0, 3, 1, 2])
    return make_model(graph).SerializeToString()


def point_at(tensor, location, offset, length):
    """Makes ``tensor`` refer to ``length`` bytes at ``offset`` of the file ``location``."""
    if not tensor.HasField("raw_data"):  # set_external_data wants one
        tensor.raw_data = numpy_helper.to_array(tensor).tobytes()
    set_external_data(tensor, location, offset, length)
    tensor.data_location = TensorProto.EXTERNAL
    for field in ("raw_data", "float_data", "int64_data", "int32_data", "double_data"):
        tensor.ClearField(field)


def placeholder(name, array):
    """An initializer for ``array`` that holds no data: ONNX Runtime is handed the array
    itself (``add_external_initializers``) when it loads the model."""
    tensor = numpy_helper.from_array(np.zeros((0,), array.dtype), name)
    del tensor.dims[:]
    tensor.dims.extend(array.shape)
    point_at(tensor, MADE_WHEN_LOADED, 0, 0)
    return tensor
