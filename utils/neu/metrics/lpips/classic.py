# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""PSNR, SSIM and L2 of image pairs, for ``compute --metric``: the formulas ``evaluate`` uses
(:mod:`.evaluation.baselines`, the reference's), reported as the quantities people know: PSNR
in dB and SSIM as a similarity (higher is closer for both; ``evaluate`` ranks by -PSNR and
DSSIM = (1 - SSIM) / 2), L2 as the distance itself.

They are computed on the 8-bit images as read. ``evaluate`` first passes patches through the
reference's float32 tensors and back, truncating, so that 63 of the 256 values come back one
lower: needed to reproduce the reference's 2AFC and JND scores, but a PSNR of the files must
not move (the cat sample: 31.33 dB here, 31.27 through the tensors).
"""
import numpy as np

from .data.images import to_unit_range
from .evaluation import baselines

METRICS = ("l2", "ssim", "psnr")
# What each metric's value is, for logs and docs.
DESCRIPTIONS = {"l2": "L2 distance", "ssim": "SSIM", "psnr": "PSNR (dB)"}
_VALUES = {"l2": baselines.l2_of, "ssim": baselines.ssim_of, "psnr": baselines.psnr_of}
# scikit-image's SSIM window is 7 x 7.
SSIM_MIN_SIZE = 7


class ClassicScorer(object):
    """Scores channel-last image batches with one classic metric, in the
    :class:`~metrics.lpips.engines.Scorer` interface that the commands' pipeline uses.
    16-bit and resized (float) images are rounded to 8 bits first: the formulas are the
    reference's for 8-bit images."""

    def __init__(self, metric, colorspace="RGB", batch_size=32):
        if metric not in METRICS:
            raise ValueError("unknown metric {!r}; expected one of {}".format(
                metric, ", ".join(METRICS)))
        baselines.check_colorspace(colorspace)
        self.metric, self.colorspace, self.batch_size = metric, colorspace, batch_size

    def check_size(self, height, width, what="the image"):
        """Raises ``ValueError`` naming ``what`` when SSIM's window does not fit it."""
        if self.metric == "ssim" and min(height, width) < SSIM_MIN_SIZE:
            raise ValueError("{} is {}x{} pixels; SSIM needs at least {}x{}".format(
                what, width, height, SSIM_MIN_SIZE, SSIM_MIN_SIZE))

    def score_images(self, img0, img1):
        """(N,) float64 values of the pairs (img0[i], img1[i]) of (N, H, W, 3) images."""
        img0, img1 = np.asarray(img0), np.asarray(img1)
        if img0.shape != img1.shape:
            raise ValueError("the two batches differ in shape: {} and {}".format(
                img0.shape, img1.shape))
        self.check_size(img0.shape[1], img0.shape[2], "the images")
        img0, img1 = (img if img.dtype == np.uint8
                      else np.round(to_unit_range(img) * 255).astype(np.uint8)
                      for img in (img0, img1))
        return _VALUES[self.metric](img0, img1, self.colorspace)
