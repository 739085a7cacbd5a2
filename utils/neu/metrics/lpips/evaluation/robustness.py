# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Changes people hardly notice (small shifts, rotations, rescalings) against real
distortions (blur, noise, JPEG) of about the same LPIPS, for judging distance methods as
Sjögren et al. (2022, ``analysis.py``) do: a method that is robust to the first kind scores
each of them below every real distortion of the same image.

Every variant is compared with the image's centre crop (``MARGIN`` px cut from each side), so
that shifts and rotations need no padding: a shift by s px is the crop taken s px to the
right; rotations and rescalings turn or scale the whole image about its centre, then crop.
Images are uint8 (H, W, 3).
"""
import io

import numpy as np
from PIL import Image, ImageFilter

MARGIN = 12  # covers the largest shift (8 px) and a 4 degree turn of a 128 px image's corner

GEOMETRIC = ([("shift {} px".format(s), "shift", s) for s in (1, 2, 4, 8)]
             + [("rotate {} deg".format(a), "rotate", a) for a in (1, 2, 4)]
             + [("scale {}".format(f), "scale", f) for f in (0.95, 1.05, 1.1)])
# Levels from mild to strong; the analysis keeps, per family, the one whose spatial LPIPS is
# closest to the geometric changes' mean.
DISTORTIONS = {"blur": (0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0),  # Gaussian sigma, px
               "noise": (2, 3, 4, 6, 8, 12, 16, 24, 32),  # Gaussian sigma, of 255
               "jpeg": (90, 75, 60, 45, 30, 20, 12, 6)}  # quality
NOISE_SEED = 0


def centre_crop(img, margin=MARGIN):
    h, w = img.shape[:2]
    if min(h, w) <= 2 * margin:
        raise ValueError("an image of {}x{} px is too small for the analysis's {} px "
                         "margins".format(w, h, margin))
    return img[margin:h - margin, margin:w - margin]


def _crop_to(img, height, width):
    top, left = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
    return img[top:top + height, left:left + width]


def geometric_variant(img, kind, amount):
    """``img`` changed by ``kind`` (shift, rotate, scale) of ``amount``, as the crop the
    reference crop is compared with."""
    h, w = img.shape[0] - 2 * MARGIN, img.shape[1] - 2 * MARGIN
    if kind == "shift":
        return img[MARGIN:MARGIN + h, MARGIN + amount:MARGIN + amount + w]
    pil = Image.fromarray(img)
    if kind == "rotate":
        return _crop_to(np.asarray(pil.rotate(amount, resample=Image.BICUBIC)), h, w)
    size = (round(img.shape[1] * amount), round(img.shape[0] * amount))
    return _crop_to(np.asarray(pil.resize(size, resample=Image.BICUBIC)), h, w)


def distorted(crop, family, level):
    """The reference crop under a real distortion of ``family`` at ``level``."""
    if family == "blur":
        return np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(level)))
    if family == "noise":
        rng = np.random.default_rng(NOISE_SEED)
        noisy = crop.astype(np.float64) + rng.normal(0, level, crop.shape)
        return np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="JPEG", quality=level)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def variants(img, score_spatial):
    """The variants of ``img`` to score: ([(label, kind, array)], reference crop), the
    geometric changes first (kind ``geometric``), then one level per distortion family (kind
    ``distortion``), chosen by ``score_spatial(reference, [arrays]) -> distances`` (spatial
    LPIPS) as the one closest to the geometric changes' mean."""
    crop = centre_crop(img)
    changes = [(label, "geometric", geometric_variant(img, kind, amount))
               for label, kind, amount in GEOMETRIC]
    target = float(np.mean(score_spatial(crop, [c[2] for c in changes])))
    for family, levels in DISTORTIONS.items():
        candidates = [distorted(crop, family, level) for level in levels]
        scores = score_spatial(crop, candidates)
        best = int(np.argmin(np.abs(np.asarray(scores) - target)))
        changes.append(("{} {}".format(family, levels[best]), "distortion", candidates[best]))
    return changes, crop


def ranks_below_every_distortion(distances, kinds):
    """Per geometric change, whether its distance is below that of every distortion."""
    nearest = min(d for d, k in zip(distances, kinds) if k == "distortion")
    return [d < nearest for d, k in zip(distances, kinds) if k == "geometric"]
