# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The classic distances LPIPS is compared with, computed as the reference computes them
(pip ``lpips`` 0.1.4: ``lpips.L2``, ``lpips.DSSIM`` and the helpers in ``lpips/__init__.py``).

The reference feeds them the loader's float32 tensors in [-1, 1] and, except for L2 in RGB,
first turns those back into 8-bit images with ``tensor2im``, ``(x + 1) * 127.5`` truncated
to uint8 (not rounded: a pixel can come back one lower), and for Lab through scikit-image's
``rgb2lab`` stored as float32. Those steps are repeated here, so that the distances, and the
2AFC choices made from them, are the reference's:
  * ``l2``: RGB, ``mean((x0 - x1)^2)`` over the [-1, 1] tensors; Lab, ``0.5 * mean((L0/100 -
    L1/100)^2)``;
  * ``ssim``: DSSIM ``(1 - SSIM) / 2`` with scikit-image's ``structural_similarity``
    (``channel_axis=2``, data range 255 for RGB, 100 for Lab);
  * ``psnr``: the reference's ``psnr`` (peak 255 for RGB, 100 for Lab) made a distance by
    its sign: ``-PSNR`` (identical patches: ``-inf``).
The distances take two uint8 (N, H, W, 3) batches, as the patches are read, and return (N,)
float64 values. ``l2_of``, ``ssim_of`` and ``psnr_of`` are the formulas alone, on 8-bit images
as they are (``compute --metric`` reports them so, with no round trip through tensors).
"""
import numpy as np

METRICS = ("l2", "ssim", "psnr")
COLORSPACES = ("Lab", "RGB")


def network_input(images):
    """uint8 (N, H, W, 3) -> the reference loader's float32 (N, 3, H, W) tensors in [-1, 1]:
    ``ToTensor`` (x / 255) then ``Normalize(0.5, 0.5)`` ((x - 0.5) / 0.5)."""
    unit = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    return (unit - np.float32(0.5)) / np.float32(0.5)


def as_8bit(x):
    """The reference's ``tensor2im`` of one (3, H, W) tensor: H x W x 3 uint8 by
    ``(x + 1) * 127.5``, truncated, in the same memory layout (a transposed view's)."""
    return ((np.transpose(x, (1, 2, 0)) + np.float32(1.0)) * np.float32(127.5)).astype(np.uint8)


def _lab(image_8bit):
    """scikit-image's Lab of an 8-bit image, stored as float32 (3, H, W) and viewed H x W x 3,
    as the reference's ``np2tensor`` and ``tensor2np`` leave it."""
    from skimage.color import rgb2lab
    lab = rgb2lab(image_8bit)
    return np.ascontiguousarray(lab.transpose(2, 0, 1), dtype=np.float32).transpose(1, 2, 0)


def through_tensors(images):
    """The 8-bit images the reference's metrics see of uint8 (N, H, W, 3) patches: each
    through its float32 tensor and ``tensor2im`` back (63 of the 256 values come back one
    lower), as :func:`as_8bit` views."""
    return [as_8bit(x) for x in network_input(images)]


def _compared(image_8bit, colorspace):
    """What the reference's metric compares of one 8-bit image, and its data range."""
    if colorspace == "RGB":
        return 1.0 * image_8bit, 255.0
    return _lab(image_8bit), 100.0


def l2_of(img0, img1, colorspace="Lab"):
    """The reference's L2 distance between 8-bit H x W x 3 images, item by item: RGB over
    their float32 tensors in [-1, 1], Lab over L / 100."""
    if colorspace == "RGB":
        x0, x1 = (network_input(np.asarray(img)) for img in (img0, img1))
        return np.array([float(np.mean((a - b) ** 2, dtype=np.float64)) for a, b in zip(x0, x1)])
    out = []
    for a, b in zip(img0, img1):
        p, q = _lab(a), _lab(b)
        out.append(float(0.5 * np.mean((p / np.float32(100) - q / np.float32(100)) ** 2)))
    return np.array(out)


def ssim_of(img0, img1, colorspace="Lab"):
    """scikit-image's SSIM of 8-bit H x W x 3 images (or their Lab), item by item."""
    from skimage.metrics import structural_similarity
    out = []
    for a, b in zip(img0, img1):
        (p, data_range), (q, _) = _compared(a, colorspace), _compared(b, colorspace)
        out.append(structural_similarity(p, q, data_range=data_range, channel_axis=2))
    return np.array(out, dtype=np.float64)


def psnr_of(img0, img1, colorspace="Lab"):
    """The reference's PSNR of 8-bit H x W x 3 images (or their Lab), item by item, in dB
    (identical images: inf)."""
    out = []
    for a, b in zip(img0, img1):
        (p, peak), (q, _) = _compared(a, colorspace), _compared(b, colorspace)
        mse = np.mean((1.0 * p - 1.0 * q) ** 2)
        out.append(np.inf if mse == 0 else 10.0 * np.log10(peak ** 2 / mse))
    return np.array(out, dtype=np.float64)


def l2(img0, img1, colorspace="Lab"):
    """The reference's L2 distance (see the module's docstring)."""
    _check(img0, img1, colorspace)
    if colorspace == "RGB":  # over the tensors themselves, with no way back to 8 bits
        return l2_of(img0, img1, colorspace)
    return l2_of(through_tensors(img0), through_tensors(img1), colorspace)


def dssim(img0, img1, colorspace="Lab"):
    """The reference's DSSIM, (1 - SSIM) / 2 (see the module's docstring)."""
    _check(img0, img1, colorspace)
    return (1.0 - ssim_of(through_tensors(img0), through_tensors(img1), colorspace)) / 2.0


def negative_psnr(img0, img1, colorspace="Lab"):
    """Minus the reference's PSNR, so that larger means more different."""
    _check(img0, img1, colorspace)
    return -psnr_of(through_tensors(img0), through_tensors(img1), colorspace)


DISTANCES = {"l2": l2, "ssim": dssim, "psnr": negative_psnr}


def check_colorspace(colorspace):
    if colorspace not in COLORSPACES:
        raise ValueError("unknown colorspace {!r}; expected one of {}".format(
            colorspace, ", ".join(COLORSPACES)))


def _check(img0, img1, colorspace):
    check_colorspace(colorspace)
    for img in (img0, img1):
        if img.dtype != np.uint8 or img.ndim != 4 or img.shape[3] != 3:
            raise ValueError("expected uint8 N x H x W x 3 patches, got {} {}".format(
                img.dtype, img.shape))
    if img0.shape != img1.shape:
        raise ValueError("the two batches differ in shape: {} and {}".format(img0.shape, img1.shape))
