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
from ..lpips import INPUT_NORMS
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


def _export(net, inputs, outputs, dims, opset=13):
    """The NNabla graph from ``inputs`` to ``outputs`` (ordered dicts name -> Variable) as an
    ONNX model, with ``dims`` {name: symbolic names per axis, None to keep} applied."""
    import onnx
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter
    from nnabla.utils.save import save

    with tempfile.TemporaryDirectory(prefix=EXPORT_TEMP_PREFIX) as tmp, pending(tmp), \
            _quiet_nnabla():
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


def _prepend_scaling(model, input_norm):
    """Makes the graph's input ``x`` [-1, 1] images, scaled in the graph as
    :meth:`~metrics.lpips.lpips.LPIPS.scale_input` does for ``input_norm``, with the same
    float32 operations. (NNabla's exporter cannot write that part: it drops the constants.)"""
    from onnx import helper, numpy_helper
    shift, scale = INPUT_NORMS[input_norm]
    graph = model.graph
    for node in graph.node:
        _rename(node, lambda name: "x/scaled" if name == "x" else name)
    graph.initializer.extend([numpy_helper.from_array(shift, "x/shift"),
                              numpy_helper.from_array(scale, "x/scale")])
    nodes = [helper.make_node("Sub", ["x", "x/shift"], ["x/shifted"], name="x/sub"),
             helper.make_node("Div", ["x/shifted", "x/scale"], ["x/scaled"], name="x/div")]
    nodes += list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def export_trunk(net, path, weights_path, winograd=False, dropout=False):
    """Writes the trunk of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`) as ONNX: input
    ``x`` (N, 3, H, W) in [-1, 1] (scaled in the graph as ``net.input_norm`` says); outputs
    ``f0``, ``f1``, ... the tapped activations. Its parameters go to ``weights_path``, a file
    beside ``path`` shared by the model's graphs (written if missing). With ``winograd``, the
    convolutions that gain from it are rewritten into Winograd's algorithm (see
    :mod:`winograd`). With ``dropout``, every convolution's input is multiplied by an input
    ``m0``, ``m1``, ... of its shape (E-LPIPS' dropout masks)."""
    from ..trunks import conv_input_hook
    size = net.trunk.export_size
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
    layout = onnx_weights.weights_layout(model)  # before any rewrite: the same for every variant
    if winograd:
        from . import winograd as winograd_rewrite
        tiles = net.trunk.winograd_tiles
        winograd_rewrite.rewrite(model, dict(tiles) if tiles else None)
    if net.apply_scale:
        _prepend_scaling(model, net.input_norm)
    import onnx
    onnx.checker.check_model(model)  # with its bytes: the checker cannot follow the file
    onnx_weights.use_weights_file(model, layout, weights_path,
                                  onnx_weights.write_weights(layout, weights_path))
    return _save(model, path, check=False)


def head_entries(net):
    """What the head's inputs ``a<k>``, ``b<k>`` hold, per k: (tap index, sorted). Sorting
    has no NNabla export, so heads of ``sort`` methods take the sorted taps as inputs and
    :func:`export_pairs` sorts them with ONNX's TopK; other methods take the taps."""
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
    return _save(_export(net, inputs, outputs, dims), path)


def _fuse_sums_of_squares(graph):
    """Replaces, in place, each ``Mul(x, x)`` read only by a ``ReduceSum`` (the squared norm of
    the features over their channels) by one ``ReduceSumSquare``: the square is never written
    out, which at 4 MP and VGG's 64 channels is a gigabyte a tap (a 1024 px VGG pair 3% faster;
    64 px ones 3% slower, so only large images' graphs have it). Opset 13: the axes become an
    attribute."""
    from onnx import helper, numpy_helper
    readers = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants.update((node.output[0], numpy_helper.to_array(node.attribute[0].t))
                     for node in graph.node if node.op_type == "Constant")
    fused = []
    for node in graph.node:
        users = readers.get(node.output[0], []) if node.op_type == "Mul" else []
        if (node.op_type == "Mul" and node.input[0] == node.input[1] and len(users) == 1
                and users[0].op_type == "ReduceSum" and len(users[0].input) == 2
                and users[0].input[1] in constants):
            total = users[0]
            axes = [int(a) for a in np.ravel(constants[total.input[1]])]
            keep = [a for a in total.attribute if a.name == "keepdims"]
            total.op_type = "ReduceSumSquare"
            del total.input[:], total.attribute[:]
            total.input.append(node.input[0])
            total.attribute.extend(keep + [helper.make_attribute("axes", axes)])
            fused.append(node)
    for node in fused:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _sorted_nodes(source, target):
    """ONNX nodes that write ``source`` (N, C, h, w) with each channel's h*w values sorted
    ascending, in its shape, to ``target`` (TopK over all of them, smallest first)."""
    from onnx import helper

    def name(suffix):
        return "{}/sort/{}".format(target, suffix)

    def constant(suffix, value):
        return helper.make_node("Constant", [], [name(suffix)], value=helper.make_tensor(
            name(suffix) + "_value", 7, [1], [value]))  # 7: int64

    return [
        constant("0", 0), constant("2", 2), constant("3", 3), constant("-1", -1),
        helper.make_node("Shape", [source], [name("shape")]),
        helper.make_node("Slice", [name("shape"), name("0"), name("2")], [name("nc")]),
        helper.make_node("Concat", [name("nc"), name("-1")], [name("flat_shape")], axis=0),
        helper.make_node("Reshape", [source, name("flat_shape")], [name("flat")]),
        helper.make_node("Shape", [name("flat")], [name("flat_dims")]),
        helper.make_node("Slice", [name("flat_dims"), name("2"), name("3")], [name("count")]),
        helper.make_node("TopK", [name("flat"), name("count")], [name("values"), name("order")],
                         axis=-1, largest=0, sorted=1),
        helper.make_node("Reshape", [name("values"), name("shape")], [target]),
    ]


def export_pairs(trunk_path, head_path, path, entries=None, per_image=False):
    """Writes the graph that scores pairs in one run, from an exported trunk and head: input
    ``x`` (2N, 3, H, W), the N first images then the N second ones, in [-1, 1]; outputs the
    head's (``score`` (N, 1, 1, 1), or its per-tap maps). The trunk runs on the whole batch
    and each tap is split in halves for the head; with ``per_image`` (for large images) the
    input is split instead and the trunk appears twice, once per half (sharing its weights),
    so that the taps reach the head as they come, and the head's squared norms are fused.
    Splitting large taps copies them (1.7 s of 25 for a 4 MP VGG pair), while two half
    batches of small images cost per-operator overhead (8-11% at 64 px, measured).
    ``entries`` (of :func:`head_entries`) says which head inputs take a sorted half."""
    import copy

    import onnx
    from onnx import helper
    # The trunk's parameters stay in its weights file, which the pairs graph reads too.
    model = onnx.load(trunk_path, load_external_data=False)
    head = onnx.load(head_path).graph
    graph = model.graph
    taps = [value.name for value in graph.output]
    if per_image:
        _fuse_sums_of_squares(head)
        shared = {t.name for t in graph.initializer}
        trunk_nodes = list(graph.node)
        del graph.node[:]
        graph.node.append(helper.make_node("Split", ["x"], ["half/a", "half/b"], axis=0,
                                           name="half/split"))
        for side in "ab":
            def rename(name, side=side):
                if not name or name in shared:
                    return name
                return "half/" + side if name == "x" else "{}/{}".format(side, name)
            for k, node in enumerate(trunk_nodes):
                twin = copy.deepcopy(node)
                _rename(twin, rename)
                twin.name = "{}/{}_{}".format(side, k, node.name)
                graph.node.append(twin)
        halves = {i: ("a/" + tap, "b/" + tap) for i, tap in enumerate(taps)}
    else:
        halves = {i: ("split/a{}".format(i), "split/b{}".format(i)) for i in range(len(taps))}
        for i, tap in enumerate(taps):
            graph.node.append(helper.make_node("Split", [tap], list(halves[i]), axis=0,
                                               name="split/" + tap))
    head_inputs = {value.name for value in head.input}
    # The head's input k is tap i's half, or (heads of sort methods) that half sorted.
    k = 0
    while "a{}".format(k) in head_inputs:
        i, is_sorted = entries[k] if entries else (k, False)
        for half, name in zip(halves[i], ("a{}".format(k), "b{}".format(k))):
            if is_sorted:
                graph.node.extend(_sorted_nodes(half, name))
            else:
                graph.node.append(helper.make_node("Identity", [half], [name]))
        k += 1
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


# What a user-facing export says about its inputs (also in its metadata).
INPUT_CONVENTION = ("img0, img1: float32 (N, 3, H, W) RGB in [-1, 1] (8-bit values / 127.5 - 1), "
                    "N, H and W free; the two of the same shape")


def metric_model(net, spatial=False):
    """The whole metric of ``net`` as one self-contained ONNX model (weights inside): inputs
    ``img0``, ``img1`` (see :data:`INPUT_CONVENTION`); output ``score`` (N, 1, 1, 1), and with
    ``spatial`` also ``map`` (N, 1, H, W), the per-layer maps upsampled bilinearly to the
    image size (as ``LPIPS(spatial=True)``) and summed. Made from the graphs the ONNX Runtime
    engine runs: NNabla's exporter writes trunk and head, direct convolutions only."""
    import onnx
    from onnx import TensorProto, helper
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
    nodes = [helper.make_node("Concat", ["img0", "img1"], ["x"], axis=0, name="pairs/concat")]
    if spatial:
        maps = [output.name for output in graph.output]
        nodes += _score_and_map_nodes(maps)
        del graph.output[:]
        graph.output.extend([
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1, 1, 1]),
            helper.make_tensor_value_info("map", TensorProto.FLOAT, ["N", 1, "H", "W"])])
    kept = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes[:1] + kept + nodes[1:])
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


def _score_and_map_nodes(maps):
    """Nodes that make ``score`` (the sum of the maps' spatial means) and ``map`` (the sum
    of the maps resized bilinearly to the images' size, half-pixel centres as PyTorch's
    ``align_corners=False``) from the per-layer maps ``maps``."""
    from onnx import helper
    nodes = [helper.make_node("Shape", ["img0"], ["map/image_shape"]),
             helper.make_node("Constant", [], ["map/two"], value=helper.make_tensor(
                 "map/two_value", 7, [1], [2])),
             helper.make_node("Constant", [], ["map/four"], value=helper.make_tensor(
                 "map/four_value", 7, [1], [4])),
             helper.make_node("Slice", ["map/image_shape", "map/two", "map/four"], ["map/hw"])]
    means, resized = [], []
    for k, d in enumerate(maps):
        p = "map/{}/".format(k)
        nodes += [
            helper.make_node("ReduceMean", [d], [p + "mean"], axes=[2, 3], keepdims=1),
            helper.make_node("Shape", [d], [p + "shape"]),
            helper.make_node("Slice", [p + "shape", "map/zero", "map/two"], [p + "nc"]),
            helper.make_node("Concat", [p + "nc", "map/hw"], [p + "sizes"], axis=0),
            helper.make_node("Resize", [d, "", "", p + "sizes"], [p + "resized"], mode="linear",
                             coordinate_transformation_mode="half_pixel")]
        means.append(p + "mean")
        resized.append(p + "resized")
    nodes.insert(1, helper.make_node("Constant", [], ["map/zero"], value=helper.make_tensor(
        "map/zero_value", 7, [1], [0])))
    # Summed in the reference's order, layer by layer.
    for name, parts in (("score", means), ("map", resized)):
        total = parts[0]
        for k, part in enumerate(parts[1:], 1):
            out = name if k == len(parts) - 1 else "{}/sum{}".format(name, k)
            nodes.append(helper.make_node("Add", [total, part], [out]))
            total = out
        if len(parts) == 1:
            nodes.append(helper.make_node("Identity", [total], [name]))
    return nodes
