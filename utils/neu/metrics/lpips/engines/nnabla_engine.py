# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The NNabla engine: the trunk and the distance head as NNabla graphs, on the current
default context (the CPU, or cuDNN when the caller chose it), one built graph per shape."""
import nnabla as nn
import numpy as np

from ..data.images import to_model_input
from .base import Engine


class NNablaHead(object):
    """Distances between two lists of trunk features, one NNabla graph per (feature shapes,
    image size), built from :meth:`~metrics.lpips.lpips.LPIPS.layer_distances` and reused."""

    def __init__(self, net):
        self.net = net
        self._graphs = {}  # (what, input shapes, image size) -> (inputs, outputs)

    def _forward(self, key, arrays, build):
        """The outputs of the graph ``build(inputs)`` makes from Variables shaped as ``arrays``
        (built once per ``key``, then reused), run on ``arrays``."""
        if key not in self._graphs:
            with nn.auto_forward(False), nn.no_grad():
                inputs = [nn.Variable(a.shape) for a in arrays]
                outputs = build(inputs)
            for output in outputs:
                output.persistent = True  # requested outputs survive clear_buffer
            self._graphs[key] = (inputs, outputs)
        inputs, outputs = self._graphs[key]
        for v, a in zip(inputs, arrays):
            v.d = a
        nn.forward_all(outputs, clear_buffer=True)
        return outputs

    def _features_forward(self, what, feats0, feats1, size, reduce):
        n = len(feats0)

        def build(inputs):
            return reduce(self.net.layer_distances(inputs[:n], inputs[n:]))

        arrays = list(feats0) + list(feats1)
        return self._forward((what, tuple(a.shape for a in arrays), size), arrays, build)

    def layer_maps(self, feats0, feats1):
        """The per-tap (N, 1, h_l, w_l) distance maps, as float32 arrays."""
        outputs = self._features_forward("layers", feats0, feats1, None, list)
        return [output.d.copy() for output in outputs]

    def reduce_maps(self, layer_maps, size=None):
        """What :meth:`__call__` returns, from per-tap distance maps (arrays) instead of
        features, as a list: [total, per tap..., and with ``size`` the (N, 1, H, W) map]."""
        def build(inputs):
            total, layers = self.net.reduce(inputs)
            return [total] + layers + ([self.net.reduce(inputs, size)[0]] if size else [])

        key = ("reduce", tuple(m.shape for m in layer_maps), size)
        return [output.d.copy() for output in self._forward(key, layer_maps, build)]

    def __call__(self, feats0, feats1, size=None):
        """(N,) float32 scores; with ``size`` = (H, W), a tuple (scores, (N, H, W) maps)."""
        size = None if size is None else tuple(size)

        def reduce(maps):
            return [self.net.reduce(maps)[0]] + ([self.net.reduce(maps, size)[0]] if size else [])

        outputs = self._features_forward("scores", feats0, feats1, size, reduce)
        scores = outputs[0].d.reshape(-1).copy()
        return scores if size is None else (scores, outputs[1].d[:, 0].copy())


class NNablaEngine(Engine):
    """Runs the trunk and the head of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`) with
    NNabla. Inputs are float32 (N, 3, H, W) arrays in [-1, 1]. E-LPIPS' draws run on the
    differentiable NNabla graph instead (:mod:`~metrics.lpips.ensemble`): it takes no masks."""

    name = "nnabla"

    def __init__(self, net):
        self.net = net
        self.head = NNablaHead(net)
        self._trunks = {}  # input shape -> (input variable, tap variables)

    @staticmethod
    def to_input(images):
        """Channel-last (N, H, W, 3) images (uint8, uint16, or float in [0, 1]) -> contiguous
        float32 (N, 3, H, W) in [-1, 1], by :func:`~metrics.lpips.data.images.to_model_input`."""
        return np.ascontiguousarray(to_model_input(images))

    def features(self, x, masks=None):
        """The trunk's taps for ``x``: a list of (N, C_l, h_l, w_l) arrays."""
        if masks is not None:
            raise ValueError("the nnabla engine takes no dropout masks (see "
                             "Engine.takes_dropout_masks)")
        shape = tuple(x.shape)
        if shape not in self._trunks:
            with nn.auto_forward(False), nn.no_grad():
                v = nn.Variable(shape)
                taps = self.net.features(v)
            for tap in taps:
                tap.persistent = True  # requested outputs survive clear_buffer
            self._trunks[shape] = (v, taps)
        v, taps = self._trunks[shape]
        v.d = x
        nn.forward_all(taps, clear_buffer=True)
        return [tap.d.copy() for tap in taps]

    def distances(self, feats0, feats1, size=None):
        """(N,) scores between two equal-shaped feature lists; with ``size`` = (H, W) of the
        images, a tuple (scores, (N, H, W) spatial maps)."""
        return self.head(feats0, feats1, size)

    @staticmethod
    def memory_kind(image_pixels=None):
        """Which of the tuning table's ``bytes_per_pixel`` this engine's passes take."""
        return "nnabla"

    def pair_layer_maps(self, x):
        """The per-tap (N, 1, h_l, w_l) distance maps of the pairs (x[i], x[N + i])."""
        n = len(x) // 2
        feats = self.features(x)
        return self.head.layer_maps([f[:n] for f in feats], [f[n:] for f in feats])

    def reduce_maps(self, layer_maps, size=None):
        """[total, per tap..., and with ``size`` the (N, 1, H, W) map] from per-tap maps."""
        return self.head.reduce_maps(layer_maps, size)

    def pair_distances(self, x, size=None):
        """Scores of the pairs (x[i], x[N + i]) of 2N images, as :meth:`distances`."""
        n = len(x) // 2
        feats = self.features(x)
        return self.distances([f[:n] for f in feats], [f[n:] for f in feats], size)
