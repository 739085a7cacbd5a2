# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Per-layer feature distances and their spatial reductions (Zhang et al. 2018, Eq. 1).

A distance method first turns each tap's features into the list of maps it compares
(:func:`method_taps`); a layer distance takes the two maps of one entry, (N, C, h, w) each, and
returns a (N, 1, h, w) map; a reduction turns that map into the (N, 1, 1, 1) score or the
(N, 1, H, W) spatial map.

The methods besides LPIPS's own position-by-position comparison are those of Sjögren et al.,
"Identifying and Mitigating Flaws of Deep Perceptual Similarity Metrics" (2022), whose code
(``loss_networks.py``, ``ExtractionModifier`` with ``shape_policy='keep'``) defines them:

* ``spatial``: the features as they are (LPIPS).
* ``mean``: each channel's spatial mean (as if broadcast back over the map).
* ``sort``: each channel's h*w activations sorted ascending, laid back in the map's shape.
* ``spatial+mean``, ``spatial+sort``: both lists of maps, one after the other, so the
  distance is the sum of the two and has twice the layers.

Channel normalisation, when on, comes after the mean or sort step, as there.
"""
import nnabla.functions as F

METHODS = ("spatial", "mean", "sort", "spatial+mean", "spatial+sort")

EPS = 1e-10
# sqrt's gradient is infinite at 0, where an all-zero feature vector puts it (0 * inf = NaN).
# Inside the trunks ReLU's backward happens to mask that NaN, but the distance must be safe
# on its own (features from elsewhere, trained lin layers): clamping the squared norm at
# 1e-30 keeps gradients finite and changes no value (sqrt(1e-30) = 1e-15, invisible next to EPS).
MIN_SQUARED_NORM = 1e-30


def unit_normalize(feat, eps=EPS):
    """``feat / (||feat||_2 + eps)`` across channels, as the reference's ``normalize_tensor``."""
    squared = F.sum(feat ** 2, axis=1, keepdims=True)
    return feat / (F.pow_scalar(F.maximum_scalar(squared, MIN_SQUARED_NORM), 0.5) + eps)


def channel_means(feat):
    """Each channel's spatial mean, (N, C, 1, 1): the reference broadcasts it back over the
    map, which changes no distance (the same value at every position) and which a graph of
    any image size cannot export as a constant shape; an upsampled map of it is constant."""
    return F.mean(feat, axis=(2, 3), keepdims=True)


def sorted_activations(feat):
    """Each channel's h*w activations sorted ascending, in the map's (N, C, h, w) shape.

    The values are picked by the sort's index with ``F.gather``, whose gradient goes back
    to where each value came from: NNabla 1.39's own ``F.sort`` backward sends it to the
    inverse permutation instead (``tests/test_distances.py`` keeps a check of that)."""
    n, c, h, w = feat.shape
    flat = F.reshape(feat, (n, c, h * w))
    order = F.sort(flat, axis=2, only_index=True)
    return F.reshape(F.gather(flat, order, axis=2, batch_dims=2), feat.shape)


_MODIFIERS = {"mean": channel_means, "sort": sorted_activations}


def check_method(method):
    """``method`` itself, or ValueError listing the valid ones."""
    if method not in METHODS:
        raise ValueError("method must be one of {}, got {!r}".format(", ".join(METHODS), method))
    return method


def method_taps(feats, method):
    """The maps ``method`` compares, from one image batch's list of tap features: for
    ``spatial+X`` the L features followed by their L modified copies."""
    modify = _MODIFIERS.get(check_method(method).replace("spatial+", ""))
    modified = [modify(f) for f in feats] if modify else []
    return (list(feats) if method.startswith("spatial") else []) + modified


def squared_difference(feat0, feat1, channel_norm=True):
    """Squared difference of the features, (N, C, h, w), unit-normalized across channels
    first unless ``channel_norm`` is off."""
    if channel_norm:
        feat0, feat1 = unit_normalize(feat0), unit_normalize(feat1)
    return (feat0 - feat1) ** 2


def lin_distance(feat0, feat1, weight, channel_norm=True):
    """The learned LPIPS distance: the squared difference weighted per channel by the
    non-negative lin layer ``weight`` (1, C, 1, 1), a bias-free 1x1 convolution."""
    return F.convolution(squared_difference(feat0, feat1, channel_norm), weight)


def channel_sum_distance(feat0, feat1, channel_norm=True):
    """The uncalibrated baseline (``lpips=False``): the squared difference summed over channels."""
    return F.sum(squared_difference(feat0, feat1, channel_norm), axis=1, keepdims=True)


def spatial_average(dist):
    """(N, 1, h, w) -> (N, 1, 1, 1)."""
    return F.mean(dist, axis=(2, 3), keepdims=True)


def upsample(dist, size):
    """Bilinear upsampling to ``size`` = (H, W), matching PyTorch's ``align_corners=False``."""
    return F.interpolate(dist, output_size=tuple(size), mode="linear", align_corners=False,
                         half_pixel=True)
