# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Fast lin-mode training: with the trunk fixed and no dropout, a distance is linear in the
lin weights, d(ref, p) = sum over layers l and channels c of w_lc m_lc, m_lc being the
spatial mean of channel c's squared difference of unit-normalized features. The m of every
triplet are computed once (on the fastest engine, ONNX Runtime on the CPU), and training then
runs on those vectors only.
"""
import numpy as np

from ..distances import EPS
from ..engines.select import make_engine
from ..lpips import LPIPS

_MIN_SQUARED_NORM = 1e-30  # as distances.unit_normalize


def _unit(feat):
    norm = np.sqrt(np.maximum(np.sum(feat * feat, axis=1, keepdims=True), _MIN_SQUARED_NORM))
    return feat / (norm + np.float32(EPS))


def channel_terms(feats_a, feats_b):
    """(N, C_total) float32: per layer and channel, the spatial mean of the squared difference
    of the unit-normalized features (layers in tap order)."""
    parts = [np.mean((_unit(a) - _unit(b)) ** 2, axis=(2, 3)) for a, b in zip(feats_a, feats_b)]
    return np.concatenate(parts, axis=1).astype(np.float32)


class TermMaker(object):
    """Computes the terms of (ref, p0, p1) batches with ``model``'s pretrained trunk (from
    ``params_dir``) on ``backend`` (ONNX Runtime with ``threads``, default all cores)."""

    def __init__(self, model, params_dir=None, backend="auto", threads=None):
        self.engine = make_engine(LPIPS(model, params_dir=params_dir), backend, threads)

    def __call__(self, ref, p0, p1):
        """((N, C) terms of (ref, p0), (N, C) of (ref, p1)) for float32 [-1, 1] batches."""
        n = len(ref)
        feats = self.engine.features(np.ascontiguousarray(np.concatenate([ref, p0, p1])))
        parts = [[f[k * n:(k + 1) * n] for f in feats] for k in range(3)]
        return channel_terms(parts[0], parts[1]), channel_terms(parts[0], parts[2])
