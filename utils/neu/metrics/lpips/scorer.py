# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS on numpy arrays, for scripts: one built graph per input shape, reused."""
import nnabla as nn
import numpy as np

from .images import to_model_input
from .lpips import LPIPS


class Scorer(object):
    """Scores numpy image batches with one LPIPS model.

    Args:
        model, version, params_dir, lpips: as :class:`~metrics.lpips.lpips.LPIPS`.
        batch_size (int): pairs per forward pass.
        with_maps (bool): :meth:`score_inputs` also returns the (N, H, W) spatial maps.
    """

    def __init__(self, model="alex", version="0.1", params_dir=None, lpips=True, batch_size=32,
                 with_maps=False):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError("batch_size must be a positive integer, got {!r}".format(batch_size))
        self.net = LPIPS(model=model, params_dir=params_dir, version=version, lpips=lpips)
        self.batch_size = batch_size
        self.with_maps = with_maps
        self._graphs = {}  # input shape -> (x0, x1, outputs)

    def _graph(self, shape):
        if shape not in self._graphs:
            with nn.auto_forward(False), nn.no_grad():
                x0, x1 = nn.Variable(shape), nn.Variable(shape)
                layer_maps = self.net.layer_maps(x0, x1)
                outputs = [self.net.reduce(layer_maps)[0]]
                if self.with_maps:
                    outputs.append(self.net.reduce(layer_maps, shape[2:])[0])
                self._graphs[shape] = (x0, x1, outputs)
        return self._graphs[shape]

    def score_inputs(self, x0, x1):
        """Scores float32 (N, 3, H, W) arrays already in [-1, 1]: (N,) float32 scores, and
        with ``with_maps`` a tuple (scores, (N, H, W) spatial maps)."""
        if x0.shape != x1.shape:
            raise ValueError("the two batches differ in shape: {} and {}".format(
                x0.shape, x1.shape))
        scores = np.empty(len(x0), dtype=np.float32)
        maps = np.empty((len(x0),) + x0.shape[2:], dtype=np.float32) if self.with_maps else None
        for start in range(0, len(x0), self.batch_size):
            stop = start + self.batch_size
            v0, v1, outputs = self._graph(x0[start:stop].shape)
            v0.d, v1.d = x0[start:stop], x1[start:stop]
            nn.forward_all(outputs, clear_buffer=True)
            scores[start:stop] = outputs[0].d.reshape(-1)
            if self.with_maps:
                maps[start:stop] = outputs[1].d[:, 0]
        return (scores, maps) if self.with_maps else scores

    def __call__(self, img0, img1):
        """LPIPS between channel-last images: H x W x 3 (returns a float) or N x H x W x 3
        (returns (N,) float32). uint8 is read as 0..255, uint16 as 0..65535, float as [0, 1]."""
        single = np.ndim(img0) == 3
        scores = self.score_inputs(to_model_input(img0), to_model_input(img1))
        if self.with_maps:
            scores = scores[0]
        return float(scores[0]) if single else scores


_scorers = {}


def distance(img0, img1, model="alex", version="0.1", params_dir=None, lpips=True):
    """LPIPS between numpy images (see :meth:`Scorer.__call__` for shapes and ranges).

    Keeps one :class:`Scorer` per configuration, so repeated calls reuse built graphs."""
    key = (model, version, params_dir, lpips)
    if key not in _scorers:
        _scorers[key] = Scorer(model=model, version=version, params_dir=params_dir, lpips=lpips)
    return _scorers[key](img0, img1)
