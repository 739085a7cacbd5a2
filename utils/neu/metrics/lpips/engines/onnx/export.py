# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Exporting the metric's NNabla graphs to ONNX with NNabla's own exporter, dynamic in batch and
size: the trunk ([-1, 1] images -> tapped features) and the head (two lists of features ->
scores, the same :mod:`~metrics.lpips.distances` code as everywhere else). :mod:`.pairs` joins
them; :mod:`.cache` decides where they are kept.

The trunk's parameters are stored once, outside the graphs, in a weights file that every
trunk and pairs graph of the model reads (ONNX external data, :mod:`.weights_file`), so the
cache holds about one copy of the ``.h5``.
NNabla's exporter (``nnabla-converter``, installed with ``--no-deps``: it runs without the
TensorFlow its metadata asks for) records the shapes the graph was built with, so
:func:`.rewrites.make_dynamic` gives inputs and outputs symbolic batch, height and width, and
ceil-mode pools (SqueezeNet's), padded in NNabla by a size-dependent amount, are exported at
the tuning table's ``export_size``, where no pool needs padding, and get ONNX's own
``ceil_mode=1`` (exact at every size).
"""
import contextlib
import io
import logging
import os
import tempfile
import warnings

import onnx

import nnabla as nn

from ...data.atomic import atomic_path, pending
from ...trunks import conv_input_hook
from ..tuning import tuning_for
from . import rewrites, weights_file, winograd
from .graph import IR_VERSION, OPSET

logger = logging.getLogger(__name__)

_HEAD_EXPORT_SIDE = 4  # any size does: the head has no size-dependent node
EXPORT_TEMP_PREFIX = "lpips-export-"


@contextlib.contextmanager
def _quiet_nnabla():
    """NNabla's saver and converter log every file they write at INFO: our temporary ones."""
    nnabla_logger = logging.getLogger("nnabla")
    level = nnabla_logger.level
    nnabla_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        nnabla_logger.setLevel(level)


def _export(net, inputs, outputs, dims):
    """The NNabla graph from ``inputs`` to ``outputs`` (ordered dicts name -> Variable) as an
    ONNX model, with ``dims`` {name: symbolic names per axis, None to keep} applied."""
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter
    from nnabla.utils.save import save as save_nnp

    with tempfile.TemporaryDirectory(prefix=EXPORT_TEMP_PREFIX) as tmp, pending(tmp), \
            _quiet_nnabla():
        nnp_path, onnx_path = os.path.join(tmp, "graph.nnp"), os.path.join(tmp, "graph.onnx")
        with net.scope():
            save_nnp(nnp_path, {
                "networks": [{"name": "graph", "batch_size": 1, "names": inputs, "outputs": outputs}],
                "executors": [{"name": "runtime", "network": "graph", "data": list(inputs),
                               "output": list(outputs)}]})
        chatter = io.StringIO()  # the converter print()s; stdout is the CLI's score output
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the converter's own numpy calls
            nnp = NnpImporter(nnp_path, expand_network=True, executor_index=0).execute()
            OnnxExporter(nnp, -1, ir_version=IR_VERSION, opset=str(OPSET)).execute(onnx_path)
        logger.debug("nnabla-converter said: %s", chatter.getvalue())
        model = onnx.load(onnx_path)
    rewrites.make_dynamic(model.graph, dims)
    rewrites.square_and_sqrt(model.graph)
    if net.trunk.ceil_mode_pools:
        for node in model.graph.node:
            if node.op_type == "MaxPool":
                node.attribute.append(onnx.helper.make_attribute("ceil_mode", 1))
    return model


def save(model, path, check=True):
    """Writes ``model`` to ``path`` atomically, after ONNX's checker unless ``check`` is off
    (for a model whose tensors are in a weights file: the checker cannot follow it)."""
    if check:
        onnx.checker.check_model(model)
    with atomic_path(path) as tmp_path:
        onnx.save(model, tmp_path)
    return path


def export_trunk(net, path, weights_path, use_winograd=False, dropout=False):
    """Writes the trunk of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`) as ONNX: input
    ``x`` (N, 3, H, W) in [-1, 1] (scaled in the graph as ``net.input_norm`` says); outputs
    ``f0``, ``f1``, ... the tapped activations. Its parameters go to ``weights_path``, a file
    beside ``path`` shared by the model's graphs (written if missing). With ``use_winograd``, the
    convolutions that gain from it are rewritten into Winograd's algorithm (see
    :mod:`.winograd`). With ``dropout``, every convolution's input is multiplied by an input
    ``m0``, ``m1``, ... of its shape (E-LPIPS' dropout masks)."""
    tuning = tuning_for(net.model)
    size = tuning.export_size
    masks = []

    def masked(v):
        masks.append(nn.Variable(v.shape))
        return v * masks[-1]
    with nn.auto_forward(False), net.scope(), conv_input_hook(masked if dropout else None):
        x = nn.Variable((1, 3, size, size))
        taps = net.trunk.build(x)
    outputs = {"f{}".format(i): tap for i, tap in enumerate(taps)}
    dims = {"x": ("N", None, "H", "W")}
    inputs = {"x": x}
    for k, m in enumerate(masks):
        inputs["m{}".format(k)] = m
        dims["m{}".format(k)] = ("N", None, "m{}_h".format(k), "m{}_w".format(k))
    dims.update({name: ("N", None, name + "_h", name + "_w") for name in outputs})

    model = _export(net, inputs, outputs, dims)
    layout = weights_file.weights_layout(model)  # before any rewrite: the same for every variant
    if use_winograd:
        winograd.rewrite(model, dict(tuning.winograd_tiles) if tuning.winograd_tiles else None)
    if net.apply_scale:
        rewrites.prepend_scaling(model, net.input_norm)
    onnx.checker.check_model(model)  # with its bytes: the checker cannot follow the file
    weights_file.use_weights_file(model, layout, weights_path,
                                  weights_file.write_weights(layout, weights_path))
    return save(model, path, check=False)


def head_entries(net):
    """What the head's inputs ``a<k>``, ``b<k>`` hold, per k: (tap index, sorted). Sorting
    has no NNabla export, so heads of ``sort`` methods take the sorted taps as inputs and
    :func:`.pairs.export_pairs` sorts them with ONNX's TopK; other methods take the taps."""
    taps = range(len(net.trunk.taps))
    if "sort" not in net.method:
        return [(i, False) for i in taps]
    return ([(i, False) for i in taps] if net.method.startswith("spatial+") else []) + [
        (i, True) for i in taps]


def export_head(net, path, per_tap=False):
    """Writes the distance head of ``net`` as ONNX: inputs ``a0``, ``b0``, ``a1``, ``b1``, ...
    (the two images' features per tap, or what :func:`head_entries` says); output ``score``
    (N, 1, 1, 1), or with ``per_tap`` the distance maps ``d0``, ``d1``, ... (N, 1, h_l, w_l)
    before their spatial means."""
    side = _HEAD_EXPORT_SIDE
    entries = head_entries(net)
    with nn.auto_forward(False):
        feats = [(nn.Variable((1, net.trunk.channels[i], side, side)),
                  nn.Variable((1, net.trunk.channels[i], side, side))) for i, _ in entries]
        halves = [a for a, _ in feats], [b for _, b in feats]
        maps = net.compare(*halves) if "sort" in net.method else net.layer_distances(*halves)
    inputs, dims = {}, {"score": ("N", None, None, None)}
    for k, (a, b) in enumerate(feats):
        inputs["a{}".format(k)], inputs["b{}".format(k)] = a, b
        dims["a{}".format(k)] = dims["b{}".format(k)] = ("N", None, "h{}".format(k), "w{}".format(k))
    for k, m in enumerate(maps):
        dims["d{}".format(k)] = ("N", None, "dh{}".format(k), "dw{}".format(k))
    if per_tap:
        outputs = {"d{}".format(k): m for k, m in enumerate(maps)}
    else:
        outputs = {"score": net.reduce(maps)[0]}
    return save(_export(net, inputs, outputs, dims), path)


