# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Per-layer feature distances and their spatial reductions (Zhang et al. 2018, Eq. 1).

A layer distance takes the two feature maps of one tap, (N, C, h, w) each, and returns a
(N, 1, h, w) map; a reduction turns that map into the (N, 1, 1, 1) score or the (N, 1, H, W)
spatial map. New feature-distance methods plug in here.
"""
import nnabla.functions as F

EPS = 1e-10
# sqrt's gradient is infinite at 0, where an all-zero feature vector puts it (0 * inf = NaN).
# Inside the trunks ReLU's backward happens to mask that NaN, but the distance must be safe
# on its own (features from elsewhere, trained lin layers): clamping the squared norm at
# 1e-30 keeps gradients finite and changes no value (sqrt(1e-30) = 1e-15, invisible next to EPS).
_MIN_SQUARED_NORM = 1e-30


def unit_normalize(feat, eps=EPS):
    """``feat / (||feat||_2 + eps)`` across channels, as the reference's ``normalize_tensor``."""
    squared = F.sum(feat ** 2, axis=1, keepdims=True)
    return feat / (F.pow_scalar(F.maximum_scalar(squared, _MIN_SQUARED_NORM), 0.5) + eps)


def squared_difference(feat0, feat1):
    """Squared difference of the unit-normalized features, (N, C, h, w)."""
    return (unit_normalize(feat0) - unit_normalize(feat1)) ** 2


def lin_distance(feat0, feat1, weight):
    """The learned LPIPS distance: the squared difference weighted per channel by the
    non-negative lin layer ``weight`` (1, C, 1, 1), a bias-free 1x1 convolution."""
    return F.convolution(squared_difference(feat0, feat1), weight)


def channel_sum_distance(feat0, feat1):
    """The uncalibrated baseline (``lpips=False``): the squared difference summed over channels."""
    return F.sum(squared_difference(feat0, feat1), axis=1, keepdims=True)


def spatial_average(dist):
    """(N, 1, h, w) -> (N, 1, 1, 1)."""
    return F.mean(dist, axis=(2, 3), keepdims=True)


def upsample(dist, size):
    """Bilinear upsampling to ``size`` = (H, W), matching PyTorch's ``align_corners=False``."""
    return F.interpolate(dist, output_size=tuple(size), mode="linear", align_corners=False,
                         half_pixel=True)
