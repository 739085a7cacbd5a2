# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The whole metric as one self-contained ONNX model, for users (``python -m
metrics.lpips.export``): the graphs the ONNX Runtime engine runs, joined, with their weights
inside and the spatial map made in ONNX."""
import os
import tempfile

import onnx
from onnx import TensorProto, helper

from .export import EXPORT_TEMP_PREFIX, export_head, export_trunk, head_entries
from .graph import GraphBuilder, replace_nodes
from .pairs import export_pairs

# What a user-facing export says about its inputs (also in its metadata).
INPUT_CONVENTION = ("img0, img1: float32 (N, 3, H, W) RGB in [-1, 1] (8-bit values / 127.5 - 1), "
                    "N, H and W free; the two of the same shape")


def metric_model(net, spatial=False):
    """The whole metric of ``net`` as one self-contained ONNX model (weights inside): inputs
    ``img0``, ``img1`` (see :data:`INPUT_CONVENTION`); output ``score`` (N, 1, 1, 1), and with
    ``spatial`` also ``map`` (N, 1, H, W), the per-layer maps upsampled bilinearly to the
    image size (as ``LPIPS(spatial=True)``) and summed. Made from the graphs the ONNX Runtime
    engine runs: NNabla's exporter writes trunk and head, direct convolutions only."""
    with tempfile.TemporaryDirectory(prefix=EXPORT_TEMP_PREFIX) as tmp:
        trunk = export_trunk(net, os.path.join(tmp, "trunk.onnx"),
                             os.path.join(tmp, "weights.onnx.data"))
        head = export_head(net, os.path.join(tmp, "head.onnx"), per_tap=spatial)
        pairs = export_pairs(trunk, head, os.path.join(tmp, "pairs.onnx"), head_entries(net))
        model = onnx.load(pairs)  # the weights file's tensors now inside
    graph = model.graph
    del model.metadata_props[:]  # the cache's bookkeeping
    images = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3, "H", "W"])
              for name in ("img0", "img1")]
    del graph.input[:]
    graph.input.extend(images)
    body = list(graph.node)
    replace_nodes(graph, [helper.make_node("Concat", ["img0", "img1"], ["x"], axis=0,
                                           name="pairs/concat")] + body)
    if spatial:
        _add_score_and_map(graph, [output.name for output in graph.output])
        del graph.output[:]
        graph.output.extend([
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1, 1, 1]),
            helper.make_tensor_value_info("map", TensorProto.FLOAT, ["N", 1, "H", "W"])])
    for key, value in [("lpips.input", INPUT_CONVENTION),
                       ("lpips.output", "score: (N, 1, 1, 1)" + (
                           "; map: (N, 1, H, W), the spatial distance map" if spatial else "")),
                       ("lpips.model", net.model), ("lpips.version", net.version),
                       ("lpips.method", net.method), ("lpips.lin_layers", str(net.lpips)),
                       ("lpips.channel_norm", str(net.channel_norm)),
                       ("lpips.input_norm", net.input_norm),
                       ("lpips.layers", ",".join(net.layer_names))]:
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "metrics.lpips.export (NNabla's ONNX exporter)"
    model.doc_string = "LPIPS ({} trunk, v{}, {} method): {}".format(
        net.model, net.version, net.method, INPUT_CONVENTION)
    onnx.checker.check_model(model)
    return model


def _add_score_and_map(graph, maps):
    """Appends the nodes that make ``score`` (the sum of the maps' spatial means) and ``map``
    (the sum of the maps resized bilinearly to the images' size, half-pixel centres as
    PyTorch's ``align_corners=False``) from the per-layer maps ``maps``."""
    g = GraphBuilder(graph, "map")
    image_hw = g.op("Slice", [g.op("Shape", ["img0"]), g.ints(2), g.ints(4)])
    means, resized = [], []
    for d in maps:
        means.append(g.op("ReduceMean", [d], axes=[2, 3], keepdims=1))
        sizes = g.op("Concat", [g.op("Slice", [g.op("Shape", [d]), g.ints(0), g.ints(2)]),
                                image_hw], axis=0)
        resized.append(g.op("Resize", [d, "", "", sizes], mode="linear",
                            coordinate_transformation_mode="half_pixel"))
    # Summed in the reference's order, layer by layer.
    for name, parts in (("score", means), ("map", resized)):
        total = parts[0]
        for part in parts[1:-1]:
            total = g.op("Add", [total, part])
        if len(parts) > 1:
            g.op("Add", [total, parts[-1]], name)
        else:
            g.op("Identity", [total], name)
