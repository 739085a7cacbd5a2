# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Fast lin-mode training: with the trunk fixed and no dropout, a distance is linear in the
lin weights, d(ref, p) = sum over layers l and channels c of w_lc m_lc, m_lc being the
spatial mean of channel c's squared difference of unit-normalized features (of their
channel means or sorted activations for the other distance methods). The m of every
triplet are computed once (on the fastest engine, ONNX Runtime on the CPU), and training then
runs on those vectors only.
"""
import numpy as np

from ..distances import EPS, MIN_SQUARED_NORM, check_method
from ..engines.select import make_engine
from ..lpips import LPIPS
from ..weights.registry import is_lin_parameter, lin_name


def _unit(feat):
    # einsum and a matrix-vector product below: numpy's own reductions over these small,
    # strided axes took three to six times as long (measured on AlexNet's 64 px maps).
    squared = np.einsum("nchw,nchw->nhw", feat, feat)[:, None]
    norm = np.sqrt(np.maximum(squared, MIN_SQUARED_NORM))
    return feat / (norm + np.float32(EPS))


def _squared_means(a, b, mask=None):
    """(N, C): per channel, the spatial mean of the squared difference of ``a`` and ``b``
    (multiplied by ``mask``, a dropout mask of their shape, when given)."""
    diff = a - b
    np.square(diff, out=diff)
    if mask is not None:
        diff *= mask
    n, c, h, w = diff.shape
    return (diff.reshape(n * c, h * w) @ np.full(h * w, 1 / (h * w), np.float32)).reshape(n, c)


def _modified(feat, modifier):
    """A tap's maps as a distance method compares them (numpy's
    :func:`~metrics.lpips.distances.method_taps`): ``mean``, each channel's spatial mean
    (N, C, 1, 1); ``sort``, each channel's activations sorted ascending."""
    if modifier == "mean":
        return feat.mean(axis=(2, 3), keepdims=True, dtype=np.float32)
    n, c, h, w = feat.shape
    return np.sort(feat.reshape(n, c, h * w), axis=2).reshape(feat.shape)


def method_maps(feats, method="spatial"):
    """The maps ``method`` compares, from the taps ``feats``: the taps, their modified copies,
    or for ``spatial+X`` both lists."""
    modifier = check_method(method).replace("spatial+", "")
    modified = [] if modifier == "spatial" else [_modified(f, modifier) for f in feats]
    return (list(feats) if method.startswith("spatial") else []) + modified


def channel_terms(feats, n, channel_norm=True, mask=None, method="spatial"):
    """((N, C_total) terms of (ref, p0), (N, C_total) of (ref, p1)) from the taps ``feats``
    of the three batches joined (3N images each): per map ``method`` compares (in
    :func:`method_maps`' order) and channel, the spatial mean of the squared difference of the
    unit-normalized maps (each image's normalized once; raw without ``channel_norm``).
    ``mask(shape)``, when given, returns a dropout mask for each squared difference, asked for
    in that order (p0's maps, then p1's)."""
    units = [_unit(f) if channel_norm else f for f in method_maps(feats, method)]
    return tuple(np.concatenate([
        _squared_means(u[:n], u[k * n:(k + 1) * n], mask((n,) + u.shape[1:]) if mask else None)
        for u in units], axis=1) for k in (1, 2))


def lin_vector(params):
    """A trained parameter file's lin weights (``params``: name -> array) as one vector in the
    terms' order (:func:`channel_terms`): a distance is the terms times it. Two sets for a
    ``spatial+X`` file."""
    count = sum(1 for name in params if is_lin_parameter(name))
    return np.concatenate([np.reshape(params[lin_name(k)], -1) for k in range(count)])


class TermMaker(object):
    """Computes the terms of (ref, p0, p1) batches with ``model``'s pretrained trunk (from
    ``params_dir``, its input scaled as ``input_norm`` says) on ``backend`` (ONNX Runtime
    with ``threads``, default all cores), for ``method`` and ``channel_norm``."""

    def __init__(self, model, params_dir=None, backend="auto", threads=None, method="spatial",
                 channel_norm=True, input_norm=None):
        self.engine = make_engine(LPIPS(model, params_dir=params_dir, input_norm=input_norm),
                                  backend, threads)
        self.method, self.channel_norm = check_method(method), channel_norm

    def __call__(self, ref, p0, p1):
        """((N, C_total) terms of (ref, p0), (N, C_total) of (ref, p1)) for float32 [-1, 1]
        batches (see :func:`channel_terms`)."""
        feats = self.engine.features(np.ascontiguousarray(np.concatenate([ref, p0, p1])))
        return channel_terms(feats, len(ref), self.channel_norm, method=self.method)
