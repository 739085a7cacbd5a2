# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Joining an exported trunk and head into one graph that scores pairs, so that features never
leave ONNX Runtime."""
import copy

import onnx
from onnx import helper

from .export import save
from .graph import rename
from .rewrites import fuse_sums_of_squares, sort_channels


def _trunk_per_half(graph):
    """Replaces the trunk's nodes by two copies that share its weights: one reads the first
    half of the batch ``x`` and names its tensors ``a/...``, the other the second half
    (``b/...``)."""
    shared = {t.name for t in graph.initializer}
    trunk_nodes = list(graph.node)
    del graph.node[:]
    graph.node.append(helper.make_node("Split", ["x"], ["half/a", "half/b"], axis=0,
                                       name="half/split"))
    for side in "ab":
        def renamed(name, side=side):
            if not name or name in shared:
                return name
            return "half/" + side if name == "x" else "{}/{}".format(side, name)
        for k, node in enumerate(trunk_nodes):
            twin = copy.deepcopy(node)
            rename(twin, renamed)
            twin.name = "{}/{}_{}".format(side, k, node.name)
            graph.node.append(twin)


def export_pairs(trunk_path, head_path, path, entries=None, per_image=False):
    """Writes the graph that scores pairs in one run, from an exported trunk and head: input
    ``x`` (2N, 3, H, W), the N first images then the N second ones, in [-1, 1]; outputs the
    head's (``score`` (N, 1, 1, 1), or its per-tap maps). The trunk runs on the whole batch
    and each tap is split in halves for the head; with ``per_image`` (for large images) the
    input is split instead and the trunk appears twice, once per half (sharing its weights),
    so that the taps reach the head as they come, and the head's squared norms are fused.
    Splitting large taps copies them (1.7 s of 25 for a 4 MP VGG pair), while two half
    batches of small images cost per-operator overhead (8-11% at 64 px, measured).
    ``entries`` (of :func:`.export.head_entries`) says which head inputs take a sorted half."""
    # The trunk's parameters stay in its weights file, which the pairs graph reads too.
    model = onnx.load(trunk_path, load_external_data=False)
    head = onnx.load(head_path).graph
    graph = model.graph
    taps = [value.name for value in graph.output]
    if per_image:
        fuse_sums_of_squares(head)
        _trunk_per_half(graph)
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
                sort_channels(graph, half, name)
            else:
                graph.node.append(helper.make_node("Identity", [half], [name]))
        k += 1
    kept = {value.name for value in list(head.input) + list(head.output)}
    for k, node in enumerate(head.node):
        rename(node, lambda name: name if not name or name in kept else "head/" + name)
        node.name = "head/{}_{}".format(node.op_type, k)
        graph.node.append(node)
    for tensor in head.initializer:
        tensor.name = "head/" + tensor.name
        graph.initializer.append(tensor)
    del graph.output[:]
    graph.output.extend(head.output)
    return save(model, path, check=False)
