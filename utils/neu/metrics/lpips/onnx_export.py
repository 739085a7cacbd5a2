# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Exporting a feature trunk to ONNX with NNabla's own exporter, dynamic in batch and size.

NNabla's exporter (``nnabla-converter``, installed with ``--no-deps``: it runs without the
TensorFlow its metadata asks for) writes the shapes the graph was built with. The trunks are
Conv/ReLU/MaxPool/Concat only, so making the input's batch, height and width symbolic is
enough, with one exception: SqueezeNet's ceil-mode pools are padded in NNabla by an amount
that depends on the size. It is therefore exported at a size where no pool needs padding and
its MaxPools get ONNX's own ``ceil_mode=1``, which is exact at every size.
"""
import contextlib
import io
import logging
import os
import tempfile
import warnings

import nnabla as nn

from .atomic import atomic_path

logger = logging.getLogger(__name__)

# Export sizes at which no pool needs padding (SqueezeNet: 31 -> 15 -> 7 -> 3 -> 1).
_EXPORT_SIZE = {"alex": 64, "vgg": 64, "squeeze": 31}
_CEIL_MODE_POOLS = {"squeeze"}


class ExportError(RuntimeError):
    """The trunk could not be exported to ONNX."""


def export_trunk(net, path, opset=13):
    """Writes the trunk of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`) with its
    parameters as ONNX to ``path`` (atomically).

    The model's input is ``x`` (N, 3, H, W), already scaled as the trunk expects; its outputs
    ``f0``, ``f1``, ... are the tapped activations."""
    import onnx
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter
    from nnabla.utils.save import save

    model = net.model
    size = _EXPORT_SIZE[model]
    with tempfile.TemporaryDirectory() as tmp:
        nnp_path, onnx_path = os.path.join(tmp, "trunk.nnp"), os.path.join(tmp, "trunk.onnx")
        with nn.auto_forward(False), net.scope():
            x = nn.Variable((1, 3, size, size))
            taps = net.trunk.build(x)
            outputs = ["f{}".format(i) for i in range(len(taps))]
            save(nnp_path, {
                "networks": [{"name": "trunk", "batch_size": 1, "names": {"x": x},
                              "outputs": dict(zip(outputs, taps))}],
                "executors": [{"name": "runtime", "network": "trunk", "data": ["x"],
                               "output": outputs}]})
        chatter = io.StringIO()  # the converter print()s; stdout is the CLI's score output
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the converter's own numpy calls
            nnp = NnpImporter(nnp_path, expand_network=True, executor_index=0).execute()
            OnnxExporter(nnp, -1, ir_version=8, opset=str(opset)).execute(onnx_path)
        logger.debug("nnabla-converter said: %s", chatter.getvalue())
        graph_model = onnx.load(onnx_path)
    _make_dynamic(graph_model, model)
    onnx.checker.check_model(graph_model)
    with atomic_path(path) as tmp_path:
        onnx.save(graph_model, tmp_path)
    return path


def _make_dynamic(graph_model, model):
    graph = graph_model.graph
    ops = {node.op_type for node in graph.node}
    if "Pad" in ops or "Reshape" in ops:
        raise ExportError("the exported {} trunk has size-dependent {} nodes".format(
            model, ", ".join(sorted(ops & {"Pad", "Reshape"}))))
    for value, names in [(graph.input[0], ("N", None, "H", "W"))] + [
            (out, ("N", None, out.name + "_h", out.name + "_w")) for out in graph.output]:
        for dim, name in zip(value.type.tensor_type.shape.dim, names):
            if name:
                dim.ClearField("dim_value")
                dim.dim_param = name
    del graph.value_info[:]  # intermediate shapes were recorded for the export size
    if model in _CEIL_MODE_POOLS:
        import onnx
        for node in graph.node:
            if node.op_type == "MaxPool":
                node.attribute.append(onnx.helper.make_attribute("ceil_mode", 1))
