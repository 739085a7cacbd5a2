# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Rewrites of exported graphs, each in place and each for one reason: symbolic sizes, the
reference's own square and square root, fused squared norms, the input scaling NNabla's
exporter cannot write, and sorting (which it has no export for)."""
import numpy as np
from onnx import helper, numpy_helper

from ...lpips import INPUT_NORMS
from .graph import GraphBuilder, constant_values, drop_unread, readers, rename, replace_nodes
from ...errors import EnvironmentProblem


class ExportError(EnvironmentProblem, RuntimeError):
    """A graph could not be exported to ONNX."""


def make_dynamic(graph, dims):
    """Gives the inputs and outputs symbolic axes (``dims``: {name: a name per axis, None to
    keep}) and makes the constants NNabla's exporter wrote at the export size (the scalars
    of ``maximum_scalar``, ``pow_scalar``) broadcastable scalars; any other size-dependent
    node is refused."""
    size_dependent = {node.op_type for node in graph.node} & {"Pad", "Reshape", "Slice", "Resize"}
    if size_dependent:
        raise ExportError("the exported graph has size-dependent {} nodes".format(
            ", ".join(sorted(size_dependent))))
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        tensor = node.attribute[0].t
        value = numpy_helper.to_array(tensor)
        if value.size > 1:
            if not np.all(value == value.flat[0]):
                raise ExportError("the exported graph has a size-dependent constant")
            tensor.CopyFrom(numpy_helper.from_array(
                np.full((1,) * value.ndim, value.flat[0], value.dtype), tensor.name))
    for value in list(graph.input) + list(graph.output):
        for dim, name in zip(value.type.tensor_type.shape.dim, dims[value.name]):
            if name:
                dim.ClearField("dim_value")
                dim.dim_param = name
    del graph.value_info[:]  # intermediate shapes were recorded at the export size


def square_and_sqrt(graph):
    """Pow(x, 2) -> Mul(x, x) and Pow(x, 0.5) -> Sqrt(x): what the reference computes (torch
    squares ``x ** 2`` and takes ``sqrt``), and faster than ONNX Runtime's generic Pow
    (measured: the VGG head on 64 px features of 32 pairs, 45 -> 40 ms)."""
    constants = constant_values(graph)
    nodes = []
    for node in graph.node:
        exponent = constants.get(node.input[1]) if node.op_type == "Pow" else None
        value = float(exponent.reshape(-1)[0]) if exponent is not None and exponent.size == 1 else None
        if value == 2.0:
            node = helper.make_node("Mul", [node.input[0]] * 2, list(node.output), name=node.name)
        elif value == 0.5:
            node = helper.make_node("Sqrt", [node.input[0]], list(node.output), name=node.name)
        nodes.append(node)
    replace_nodes(graph, nodes)
    drop_unread(graph)  # the exponents


def fuse_sums_of_squares(graph):
    """Replaces each ``Mul(x, x)`` read only by a ``ReduceSum`` (the squared norm of the
    features over their channels) by one ``ReduceSumSquare``: the square is never written
    out, which at 4 MP and VGG's 64 channels is a gigabyte a tap (a 1024 px VGG pair 3% faster;
    64 px ones 3% slower, so only large images' graphs have it). Opset 13: the axes become an
    attribute."""
    users, constants = readers(graph), constant_values(graph)
    fused = []
    for node in graph.node:
        if node.op_type != "Mul" or node.input[0] != node.input[1]:
            continue
        readers_of = users.get(node.output[0], [])
        if (len(readers_of) == 1 and readers_of[0].op_type == "ReduceSum"
                and len(readers_of[0].input) == 2 and readers_of[0].input[1] in constants):
            total = readers_of[0]
            axes = [int(a) for a in np.ravel(constants[total.input[1]])]
            keep = [a for a in total.attribute if a.name == "keepdims"]
            total.op_type = "ReduceSumSquare"
            del total.input[:], total.attribute[:]
            total.input.append(node.input[0])
            total.attribute.extend(keep + [helper.make_attribute("axes", axes)])
            fused.append(node)
    for node in fused:
        graph.node.remove(node)
    drop_unread(graph)


def prepend_scaling(model, input_norm):
    """Makes the graph's input ``x`` [-1, 1] images, scaled in the graph as
    :meth:`~metrics.lpips.lpips.LPIPS.scale_input` does for ``input_norm``, with the same
    float32 operations. (NNabla's exporter cannot write that part: it drops the constants.)"""
    shift, scale = INPUT_NORMS[input_norm]
    graph = model.graph
    body = list(graph.node)
    for node in body:
        rename(node, lambda name: "x/scaled" if name == "x" else name)
    del graph.node[:]
    g = GraphBuilder(graph, "x")
    g.op("Div", [g.op("Sub", ["x", g.const(shift, "shift")]), g.const(scale, "scale")], "x/scaled")
    graph.node.extend(body)


def sort_channels(graph, source, target):
    """Appends nodes that write ``source`` (N, C, h, w) to ``target`` with each channel's h*w
    values sorted ascending, in its shape (TopK over all of them, smallest first)."""
    g = GraphBuilder(graph, target + "/sort")
    shape = g.op("Shape", [source])
    flat = g.op("Reshape", [source, g.op("Concat", [g.op("Slice", [shape, g.ints(0), g.ints(2)]),
                                                    g.ints(-1)], axis=0)])
    count = g.op("Slice", [g.op("Shape", [flat]), g.ints(2), g.ints(3)])
    values = g.name("values")
    g.graph.node.append(helper.make_node("TopK", [flat, count], [values, g.name("order")],
                                         axis=-1, largest=0, sorted=1))
    g.op("Reshape", [values, shape], target)
