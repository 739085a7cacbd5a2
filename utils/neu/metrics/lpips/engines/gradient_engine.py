# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS's input gradient on ONNX Runtime: the forward pass keeps what the backward pass
reads, and the backward pass returns the images' gradients for given gradients of the
per-entry distance maps (a vector-Jacobian product). The graphs are
:mod:`.onnx.gradient_graphs`, built in memory from the network's own parameters (nothing is
written to the export cache) per image size, and compiled once per size and kind.
"""
import collections
import os

import numpy as np

from ..distances import EPS, MIN_SQUARED_NORM, check_method
from ..weights import lin_name
from .base import BackendError

# What a forward pass leaves for the backward pass; ``inputs``: its (x0, x1, masks).
Forward = collections.namedtuple("Forward", ["maps", "saved", "size", "dropout", "both", "inputs"])


def head_of(net):
    """The :class:`.onnx.gradient_graphs.Head` of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`)."""
    from .onnx.gradient_graphs import Entry, Head
    count = len(net.trunk.taps)
    modifier = check_method(net.method).replace("spatial+", "")
    modifiers = ([None] * count if net.method.startswith("spatial") else []) + (
        [modifier] * count if modifier != "spatial" else [])
    params = net.parameters() if net.lpips else {}
    entries = [Entry(k % count, m, params[lin_name(k % count)].d.copy() if net.lpips else None)
               for k, m in enumerate(modifiers)]
    return Head(entries, net.channel_norm, EPS, MIN_SQUARED_NORM)


def gradient_graphs_cover(net):
    """Whether the gradient graphs compute ``net``'s distance (all but the ``sort`` methods)."""
    return "sort" not in net.method


class GradientEngine(object):
    """Forward and backward passes of ``net``'s per-entry distance maps on ONNX Runtime's CPU
    kernels, ``threads`` of them (default: every core)."""

    def __init__(self, net, threads=None):
        try:
            import onnxruntime
        except ImportError as e:
            raise BackendError("LPIPS gradients on ONNX Runtime need onnxruntime (`make setup` "
                               "installs it): {}".format(e)) from None
        self._ort, self._net = onnxruntime, net
        self._threads = threads or os.cpu_count() or 1
        self._head = head_of(net)
        self.entry_count = len(self._head.entries)
        self._traces = {}    # (size, dropout) -> trace
        self._sessions = {}  # (size, dropout, both) -> (forward, backward, saved names)
        self._constants = None  # the trunk's parameters, as traced
        self._flipped = {}  # the backward graphs' filters, shared between them

    def trace(self, size, dropout=False):
        """The trunk's :class:`.onnx.trace.Trace` for images of ``size`` = (H, W)."""
        key = (tuple(size), bool(dropout))
        if key not in self._traces:
            from .onnx.trace import trace_trunk
            trace = trace_trunk(self._net, size[0], size[1], dropout)
            if self._constants is None:  # one copy for every size (the same parameters)
                self._constants = trace.constants
            self._traces[key] = trace._replace(constants=self._constants)
        return self._traces[key]

    def map_shapes(self, size):
        """The (1, h, w) of each entry's distance map for images of ``size``."""
        trace = self.trace(size)
        return [(1, 1, 1) if e.modifier == "mean" else (1,) + trace.shapes[trace.taps[e.tap]][1:]
                for e in self._head.entries]

    def _new_session(self, graph):
        options = self._ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self._threads, 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_external_initializers(
            list(graph.supplied),
            [self._ort.OrtValue.ortvalue_from_numpy(a) for a in graph.supplied.values()])
        return self._ort.InferenceSession(graph.model.SerializeToString(), options,
                                          providers=["CPUExecutionProvider"])

    def _sessions_for(self, size, dropout, both):
        """The (forward, backward) sessions and the saved tensors' names, made when first asked."""
        key = (tuple(size), bool(dropout), bool(both))
        if key not in self._sessions:
            from .onnx.gradient_graphs import backward_model, forward_model
            trace = self.trace(size, dropout)
            graph, saved = forward_model(trace, self._head, both)
            self._sessions[key] = (self._new_session(graph), self._new_session(
                backward_model(trace, self._head, saved, both, self._flipped)), saved)
        return self._sessions[key]

    def forward(self, x0, x1, masks=None, both=False):
        """The per-entry maps between ``x0`` and ``x1`` (N, 3, H, W float32 in [-1, 1]), with
        E-LPIPS' ``masks`` (float32 (N, C, h, w) per convolution) when given: a
        :class:`Forward` that :meth:`backward` takes, keeping what the backward pass of
        ``x0`` (with ``both``, of both) reads."""
        size, dropout = tuple(x0.shape[2:]), masks is not None
        session = self._sessions_for(size, dropout, both)[0]
        feed = {"x0": np.ascontiguousarray(x0, np.float32), "x1": np.ascontiguousarray(x1, np.float32)}
        for k, m in enumerate(masks or ()):
            feed["m{}".format(k)] = m
        values = session.run(None, feed)
        count = self.entry_count
        names = [o.name for o in session.get_outputs()]
        saved = dict(zip(names[count:], values[count:]))
        saved.update((k, v) for k, v in feed.items() if k.startswith("m"))
        return Forward(values[:count], saved, size, dropout, bool(both), (x0, x1, masks))

    def backward(self, forward, map_grads, both=False):
        """[dx0] (or [dx0, dx1] when ``both``) from the maps' gradients ``map_grads``."""
        if both and not forward.both:  # kept too little: run the forward pass again
            forward = self.forward(*forward.inputs, both=True)
        session = self._sessions_for(forward.size, forward.dropout, forward.both)[1]
        feed = dict(forward.saved)
        for k, g in enumerate(map_grads):
            feed["g{}".format(k)] = np.ascontiguousarray(g, np.float32)
        grads = session.run(None, feed)
        return grads if both else grads[:1]
