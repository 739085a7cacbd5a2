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

Forward = collections.namedtuple("Forward", ["maps", "saved", "size", "dropout"])


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
        self._graphs = {}    # (size, dropout) -> (trace, forward model, saved names)
        self._sessions = {}  # (size, dropout, kind) -> session

    def trace(self, size, dropout=False):
        """The trunk's :class:`.onnx.trace.Trace` for images of ``size`` = (H, W)."""
        return self._graph_set(size, dropout)[0]

    def map_shapes(self, size):
        """The (1, h, w) of each entry's distance map for images of ``size``."""
        trace = self.trace(size)
        return [(1, 1, 1) if e.modifier == "mean" else (1,) + trace.shapes[trace.taps[e.tap]][1:]
                for e in self._head.entries]

    def _graph_set(self, size, dropout):
        key = (tuple(size), bool(dropout))
        if key not in self._graphs:
            from .onnx.gradient_graphs import forward_model
            from .onnx.trace import trace_trunk
            trace = trace_trunk(self._net, size[0], size[1], dropout)
            model, saved = forward_model(trace, self._head)
            self._graphs[key] = (trace, model, saved)
        return self._graphs[key]

    def _session(self, size, dropout, kind):
        key = (tuple(size), bool(dropout), kind)
        if key not in self._sessions:
            trace, model, saved = self._graph_set(size, dropout)
            if kind != "forward":
                from .onnx.gradient_graphs import backward_model
                model = backward_model(trace, self._head, saved, both=(kind == "both"))
            options = self._ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = self._threads, 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            self._sessions[key] = self._ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return self._sessions[key]

    def forward(self, x0, x1, masks=None):
        """The per-entry maps between ``x0`` and ``x1`` (N, 3, H, W float32 in [-1, 1]), with
        E-LPIPS' ``masks`` (float32 (N, C, h, w) per convolution) when given: a
        :class:`Forward` that :meth:`backward` takes."""
        size, dropout = tuple(x0.shape[2:]), masks is not None
        session = self._session(size, dropout, "forward")
        feed = {"x0": np.ascontiguousarray(x0, np.float32), "x1": np.ascontiguousarray(x1, np.float32)}
        for k, m in enumerate(masks or ()):
            feed["m{}".format(k)] = m
        names = [o.name for o in session.get_outputs()]
        values = session.run(None, feed)
        count = self.entry_count
        saved = dict(zip(names[count:], values[count:]))
        saved.update((k, v) for k, v in feed.items() if k.startswith("m"))
        return Forward(values[:count], saved, size, dropout)

    def backward(self, forward, map_grads, both=False):
        """[dx0] (or [dx0, dx1] when ``both``) from the maps' gradients ``map_grads``."""
        session = self._session(forward.size, forward.dropout, "both" if both else "first")
        feed = dict(forward.saved)
        for k, g in enumerate(map_grads):
            feed["g{}".format(k)] = np.ascontiguousarray(g, np.float32)
        return session.run(None, feed)
