# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The export cache's weights file: the trunk's parameters, stored once per model and read by
every trunk and pairs graph of it as ONNX external data.

The file holds each initializer of at least ``EXTERNAL_BYTES`` of the plain exported trunk,
sorted by name and aligned, so every variant (version, ``lpips`` setting, Winograd or direct)
makes the same bytes. Graphs record its CRC-32, checked when they are loaded. Winograd's
transformed filters (4x the filters for F(4, 3)) are not stored: the graphs say which filters
each is made from, and :func:`initializers_to_supply` makes them for ONNX Runtime, which
copies them when it creates the session.
"""
import json
import os
import zlib

import numpy as np
import onnx
from onnx import numpy_helper

from ...data.atomic import atomic_path
from .graph import MADE_WHEN_LOADED, point_at
from .winograd import DERIVED_KEY, filter_transform


# Metadata of a graph reading a weights file: JSON {"file": its name, "crc32": its CRC-32}.
WEIGHTS_KEY = "lpips.weights_file"
# Initializers at least this large go to the weights file: the trunk's filters and biases.
# The rest (scalars, Winograd's small transforms, the lin layers) stay in the graphs.
EXTERNAL_BYTES = 1024
_ALIGN = 64  # each tensor of the weights file starts at a multiple of this


def weights_layout(model):
    """{name: (offset, raw bytes)} of the initializers the weights file holds, sorted by name:
    the same file for every graph exported from the same trunk parameters and code."""
    layout, offset = {}, 0
    for tensor in sorted(model.graph.initializer, key=lambda t: t.name):
        data = numpy_helper.to_array(tensor).tobytes()
        if len(data) >= EXTERNAL_BYTES:
            layout[tensor.name] = (offset, data)
            offset += -(-len(data) // _ALIGN) * _ALIGN
    return layout


def _weights_pieces(layout):
    """The weights file of ``layout``, piece by piece: each tensor after the zeros aligning it."""
    end = 0
    for offset, data in sorted(layout.values(), key=lambda item: item[0]):
        yield bytes(offset - end)
        yield data
        end = offset + len(data)


def file_crc32(path):
    """The CRC-32 of the file ``path``, read a MiB at a time (26 ms for VGG's 59 MB here)."""
    crc = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            crc = zlib.crc32(block, crc)
    return crc


def write_weights(layout, path):
    """Writes the weights file of ``layout`` (see :func:`weights_layout`) to ``path``, synced
    to disk, unless the file there holds the same bytes (another variant of the model wrote
    it); returns its CRC-32, which the graphs record (:func:`initializers_to_supply` checks it)."""
    crc = 0
    for piece in _weights_pieces(layout):
        crc = zlib.crc32(piece, crc)
    if os.path.isfile(path) and file_crc32(path) == crc:
        return crc
    with atomic_path(path) as tmp_path, open(tmp_path, "wb") as f:
        for piece in _weights_pieces(layout):
            f.write(piece)
        f.flush()
        os.fsync(f.fileno())  # raw floats: a file zeroed by a crash would still load
    return crc


# Where a graph says the tensors made when it is loaded are: no such file, so a loader that
# does not supply them (:func:`initializers_to_supply`) fails instead of reading wrong bytes.


def _derived(model):
    """The Winograd transforms' metadata entry of ``model`` (see ``winograd.DERIVED_KEY``)
    and its value, {} when it has none."""
    for entry in model.metadata_props:
        if entry.key == DERIVED_KEY:
            return entry, json.loads(entry.value)
    return None, {}


def use_weights_file(model, layout, path, crc):
    """Points ``model``'s initializers that ``layout`` holds at the weights file ``path`` (a
    name in the graph's own folder; ``crc`` its CRC-32) instead of carrying their bytes, and
    drops the bytes of those :func:`initializers_to_supply` makes again from them."""
    location = os.path.basename(path)
    model.metadata_props.add(key=WEIGHTS_KEY, value=json.dumps({"file": location, "crc32": crc}))
    entry, derived = _derived(model)
    for tensor in model.graph.initializer:
        if tensor.name in layout:
            offset, data = layout[tensor.name]
            point_at(tensor, location, offset, len(data))
        elif derived.get(tensor.name, {}).get("from") in layout:
            made = derived[tensor.name]  # where its filters are, for the loader
            made.update(location=location, offset=layout[made["from"]][0])
            point_at(tensor, MADE_WHEN_LOADED, 0, 0)
    if entry is not None:
        entry.value = json.dumps(derived, sort_keys=True)


def initializers_to_supply(path, checked):
    """{name: float32 array} of the tensors the cached graph ``path`` leaves to be made when
    it is loaded, to hand to ONNX Runtime (``add_external_initializers``), after checking the
    weights file it reads against the CRC-32 it recorded (unless in ``checked``, a set of
    weights files found whole, updated). Raises ValueError for a damaged or missing file: a
    disk error, or a crash before the data reached the disk."""
    model = onnx.load(path, load_external_data=False)
    folder = os.path.dirname(path)
    for entry in model.metadata_props:
        if entry.key == WEIGHTS_KEY:
            expected = json.loads(entry.value)
            weights = os.path.join(folder, expected["file"])
            if weights not in checked:
                if not os.path.isfile(weights) or file_crc32(weights) != expected["crc32"]:
                    raise ValueError("{} is missing or damaged".format(weights))
                checked.add(weights)
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    made = {}
    for name, how in sorted(_derived(model)[1].items()):
        if "location" not in how:
            continue  # kept in the graph
        (alpha2, c_in, c_out), m = shapes[name], how["m"]
        r = int(round(alpha2 ** 0.5)) - m + 1
        count, weights = c_out * c_in * r * r, os.path.join(folder, how["location"])
        filters = np.fromfile(weights, np.float32, count=count, offset=how["offset"])
        if filters.size != count:
            raise ValueError("{} ends before the filters of {}".format(weights, name))
        made[name] = filter_transform(filters.reshape(c_out, c_in, r, r), m)
    return made
