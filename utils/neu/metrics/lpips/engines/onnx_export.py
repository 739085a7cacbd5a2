# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Exporting LPIPS graphs to ONNX with NNabla's own exporter, dynamic in batch and size.

Two graphs are exported: the trunk ([-1, 1] images -> tapped features) and the head (two
lists of features -> scores, the same :mod:`distances` code as everywhere else); a third,
for scoring pairs in one run, joins them (:func:`export_pairs`).
The trunk's parameters are stored once, outside the graphs, in a weights file that every
trunk and pairs graph of the model reads (ONNX external data, :mod:`onnx_weights`), so the
cache holds about one copy of the ``.h5``.
NNabla's exporter (``nnabla-converter``, installed with ``--no-deps``: it runs without the
TensorFlow its metadata asks for) records the shapes the graph was built with, so:
  * inputs and outputs get symbolic batch, height and width;
  * constants it wrote at the export size (the scalars of ``maximum_scalar``, ``pow_scalar``)
    become broadcastable scalars, and any other size-dependent node is refused;
  * ceil-mode pools (SqueezeNet's), padded in NNabla by a size-dependent amount, are exported
    at the trunk's ``export_size``, where no pool needs padding, and get ONNX's own
    ``ceil_mode=1`` (exact at every size).
"""
import contextlib
import io
import logging
import os
import tempfile
import warnings

import numpy as np

import nnabla as nn

from ..data.atomic import atomic_path, pending
from ..lpips import SCALE, SHIFT
from . import onnx_weights

logger = logging.getLogger(__name__)

_HEAD_EXPORT_SIDE = 4
EXPORT_TEMP_PREFIX = "lpips-export-"
# A partial export untouched this long was left by a killed process (an export takes seconds).
ABANDONED_SECONDS = 3600


def remove_abandoned(cache_folder):
    """Deletes what killed exports left: ``.*.part`` files in ``cache_folder`` and
    ``lpips-export-*`` folders in the system's temporary folder (up to 220 and 2 x 57 MB for
    VGG), when untouched for ``ABANDONED_SECONDS``: another process may be exporting now."""
    import shutil
    import time
    now = time.time()
    candidates = []
    if os.path.isdir(cache_folder):
        candidates += [os.path.join(cache_folder, n) for n in os.listdir(cache_folder)
                       if n.startswith(".") and n.endswith(".part")]
    temp = tempfile.gettempdir()
    candidates += [os.path.join(temp, n) for n in os.listdir(temp)
                   if n.startswith(EXPORT_TEMP_PREFIX)]
    for path in candidates:
        try:
            if now - os.stat(path).st_mtime < ABANDONED_SECONDS:
                continue
            logger.info("removing %s, left by an interrupted export", path)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError:
            pass  # gone already, or not ours to remove: harmless


class ExportError(RuntimeError):
    """A graph could not be exported to ONNX."""


def _export(net, inputs, outputs, dims, opset=13):
    """The NNabla graph from ``inputs`` to ``outputs`` (ordered dicts name -> Variable) as an
    ONNX model, with ``dims`` {name: symbolic names per axis, None to keep} applied."""
    import onnx
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter
    from nnabla.utils.save import save

    with tempfile.TemporaryDirectory(prefix=EXPORT_TEMP_PREFIX) as tmp, pending(tmp):
        nnp_path, onnx_path = os.path.join(tmp, "graph.nnp"), os.path.join(tmp, "graph.onnx")
        with net.scope():
            save(nnp_path, {
                "networks": [{"name": "graph", "batch_size": 1, "names": inputs, "outputs": outputs}],
                "executors": [{"name": "runtime", "network": "graph", "data": list(inputs),
                               "output": list(outputs)}]})
        chatter = io.StringIO()  # the converter print()s; stdout is the CLI's score output
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the converter's own numpy calls
            nnp = NnpImporter(nnp_path, expand_network=True, executor_index=0).execute()
            OnnxExporter(nnp, -1, ir_version=8, opset=str(opset)).execute(onnx_path)
        logger.debug("nnabla-converter said: %s", chatter.getvalue())
        model = onnx.load(onnx_path)
    _make_dynamic(model.graph, dims)
    _square_and_sqrt(model.graph)
    if net.trunk.ceil_mode_pools:
        for node in model.graph.node:
            if node.op_type == "MaxPool":
                node.attribute.append(onnx.helper.make_attribute("ceil_mode", 1))
    return model


def _save(model, path, check=True):
    """Writes ``model`` to ``path`` atomically, after ONNX's checker unless ``check`` is off
    (for a model whose tensors are in a weights file: the checker cannot follow it)."""
    import onnx
    if check:
        onnx.checker.check_model(model)
    with atomic_path(path) as tmp_path:
        onnx.save(model, tmp_path)
    return path


def _make_dynamic(graph, dims):
    from onnx import numpy_helper
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


def _square_and_sqrt(graph):
    """Pow(x, 2) -> Mul(x, x) and Pow(x, 0.5) -> Sqrt(x): what the reference computes (torch
    squares ``x ** 2`` and takes ``sqrt``), and faster than ONNX Runtime's generic Pow
    (measured: the VGG head on 64 px features of 32 pairs, 45 -> 40 ms)."""
    from onnx import helper, numpy_helper
    constants = {node.output[0]: numpy_helper.to_array(node.attribute[0].t)
                 for node in graph.node if node.op_type == "Constant" and node.attribute
                 and node.attribute[0].name == "value"}
    constants.update((t.name, numpy_helper.to_array(t)) for t in graph.initializer)
    nodes = []
    for node in graph.node:
        exponent = constants.get(node.input[1]) if node.op_type == "Pow" else None
        value = float(exponent.reshape(-1)[0]) if exponent is not None and exponent.size == 1 else None
        if value == 2.0:
            node = helper.make_node("Mul", [node.input[0]] * 2, list(node.output), name=node.name)
        elif value == 0.5:
            node = helper.make_node("Sqrt", [node.input[0]], list(node.output), name=node.name)
        nodes.append(node)
    used = {name for node in nodes for name in node.input}
    used.update(output.name for output in graph.output)
    # The exponents' Constant nodes are left without readers (ONNX Runtime would warn).
    nodes = [node for node in nodes
             if node.op_type != "Constant" or any(out in used for out in node.output)]
    del graph.node[:]
    graph.node.extend(nodes)


def _rename(node, rename):
    """Renames ``node``'s inputs and outputs in place, by the function ``rename``."""
    inputs, outputs = [rename(n) for n in node.input], [rename(n) for n in node.output]
    del node.input[:], node.output[:]
    node.input.extend(inputs)
    node.output.extend(outputs)


def _prepend_scaling(model):
    """Makes the graph's input ``x`` [-1, 1] images, scaled in the graph as
    :meth:`~metrics.lpips.lpips.LPIPS.scale_input` does, with the same float32 operations.
    (NNabla's exporter cannot write that part: it drops the constants.)"""
    from onnx import helper, numpy_helper
    graph = model.graph
    for node in graph.node:
        _rename(node, lambda name: "x/scaled" if name == "x" else name)
    graph.initializer.extend([numpy_helper.from_array(SHIFT, "x/shift"),
                              numpy_helper.from_array(SCALE, "x/scale")])
    nodes = [helper.make_node("Sub", ["x", "x/shift"], ["x/shifted"], name="x/sub"),
             helper.make_node("Div", ["x/shifted", "x/scale"], ["x/scaled"], name="x/div")]
    nodes += list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def export_trunk(net, path, weights_path, winograd=False):
    """Writes the trunk of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`) as ONNX: input
    ``x`` (N, 3, H, W) in [-1, 1] (scaled in the graph when ``net.apply_scale``); outputs
    ``f0``, ``f1``, ... the tapped activations. Its parameters go to ``weights_path``, a file
    beside ``path`` shared by the model's graphs (written if missing). With ``winograd``, the
    convolutions that gain from it are rewritten into Winograd's algorithm (see
    :mod:`winograd`)."""
    size = net.trunk.export_size
    with nn.auto_forward(False), net.scope():
        x = nn.Variable((1, 3, size, size))
        taps = net.trunk.build(x)
    outputs = {"f{}".format(i): tap for i, tap in enumerate(taps)}
    dims = {"x": ("N", None, "H", "W")}
    dims.update({name: ("N", None, name + "_h", name + "_w") for name in outputs})

    model = _export(net, {"x": x}, outputs, dims)
    layout = onnx_weights.weights_layout(model)  # before any rewrite: the same for every variant
    if winograd:
        from . import winograd as winograd_rewrite
        tiles = net.trunk.winograd_tiles
        winograd_rewrite.rewrite(model, dict(tiles) if tiles else None)
    if net.apply_scale:
        _prepend_scaling(model)
    import onnx
    onnx.checker.check_model(model)  # with its bytes: the checker cannot follow the file
    onnx_weights.use_weights_file(model, layout, weights_path,
                                  onnx_weights.write_weights(layout, weights_path))
    return _save(model, path, check=False)


def export_head(net, path, per_tap=False):
    """Writes the distance head of ``net`` as ONNX: inputs ``a0``, ``b0``, ``a1``, ``b1``, ...
    (the two images' features per tap); output ``score`` (N, 1, 1, 1), or with ``per_tap``
    the distance maps ``d0``, ``d1``, ... (N, 1, h_l, w_l) before their spatial means."""
    side = _HEAD_EXPORT_SIDE
    with nn.auto_forward(False):
        feats = [(nn.Variable((1, c, side, side)), nn.Variable((1, c, side, side)))
                 for c in net.trunk.channels]
        maps = net.layer_distances([a for a, _ in feats], [b for _, b in feats])
    inputs, dims = {}, {"score": ("N", None, None, None)}
    for i, (a, b) in enumerate(feats):
        inputs["a{}".format(i)], inputs["b{}".format(i)] = a, b
        dims["a{}".format(i)] = dims["b{}".format(i)] = ("N", None, "h{}".format(i), "w{}".format(i))
        dims["d{}".format(i)] = ("N", None, "h{}".format(i), "w{}".format(i))
    if per_tap:
        outputs = {"d{}".format(i): m for i, m in enumerate(maps)}
    else:
        outputs = {"score": net.reduce(maps)[0]}
    return _save(_export(net, inputs, outputs, dims), path)


def export_pairs(trunk_path, head_path, path):
    """Writes the graph that scores pairs in one run, from an exported trunk and head: input
    ``x`` (2N, 3, H, W), the N first images then the N second ones, in [-1, 1]; outputs the
    head's (``score`` (N, 1, 1, 1), or its per-tap maps). Each tap is split in halves between
    the two graphs, so the features never leave ONNX Runtime."""
    import onnx
    from onnx import helper
    # The trunk's parameters stay in its weights file, which the pairs graph reads too.
    model = onnx.load(trunk_path, load_external_data=False)
    head = onnx.load(head_path).graph
    graph = model.graph
    for i, tap in enumerate(value.name for value in graph.output):
        graph.node.append(helper.make_node("Split", [tap], ["a{}".format(i), "b{}".format(i)],
                                           axis=0, name="split/" + tap))
    kept = {value.name for value in list(head.input) + list(head.output)}
    for k, node in enumerate(head.node):
        _rename(node, lambda name: name if not name or name in kept else "head/" + name)
        node.name = "head/{}_{}".format(node.op_type, k)
        graph.node.append(node)
    for tensor in head.initializer:
        tensor.name = "head/" + tensor.name
        graph.initializer.append(tensor)
    del graph.output[:]
    graph.output.extend(head.output)
    return _save(model, path, check=False)
