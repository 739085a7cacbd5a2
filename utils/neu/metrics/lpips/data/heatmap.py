# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Spatial LPIPS maps as colour PNG heatmaps, with a labelled colour bar."""
import numpy as np

from .atomic import atomic_path

# A perceptually ordered dark-to-bright ramp (black, purple, red, orange, pale yellow).
_STOPS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
                  dtype=np.float32)


def colorize(dist_map, vmax=None):
    """(H, W) non-negative map -> (H, W, 3) uint8; 0 is black, ``vmax`` (default: the map's
    maximum) is pale yellow."""
    dist_map = np.asarray(dist_map, dtype=np.float32)
    top = float(dist_map.max()) if vmax is None else float(vmax)
    t = np.clip(dist_map / top, 0, 1) if top > 0 else np.zeros_like(dist_map)
    pos = t * (len(_STOPS) - 1)
    lo = np.minimum(pos.astype(np.int64), len(_STOPS) - 2)
    frac = (pos - lo)[..., None]
    return np.rint(_STOPS[lo] * (1 - frac) + _STOPS[lo + 1] * frac).astype(np.uint8)


BAR_WIDTH = 44  # the colour bar and its labels, right of the map


def _as_uint8(image):
    """A channel-last image (uint8, uint16, or float in [0, 1]) as uint8."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


def render(dist_map, vmax=None, image=None):
    """The picture a heat map file holds: (H, W + ``BAR_WIDTH``, 3) uint8. The map colourized
    from 0 (black) to ``vmax`` (pale yellow; default the map's maximum), over ``image`` (the
    pair's first image, H x W x 3) half and half when given; right of it a colour bar labelled
    with its two ends, so that maps on one ``vmax`` can be compared by eye and any map read."""
    from PIL import Image, ImageDraw, ImageFont
    dist_map = np.asarray(dist_map, dtype=np.float32)
    top = float(dist_map.max()) if vmax is None else float(vmax)
    picture = colorize(dist_map, top).astype(np.float32)
    if image is not None:
        picture = 0.5 * picture + 0.5 * _as_uint8(image)
    height = dist_map.shape[0]
    ramp = colorize(np.linspace(top, 0, height, dtype=np.float32)[:, None].repeat(10, 1), top)
    canvas = np.zeros((height, dist_map.shape[1] + BAR_WIDTH, 3), np.uint8)
    canvas[:, :dist_map.shape[1]] = np.rint(picture).astype(np.uint8)
    canvas[:, dist_map.shape[1] + 2:dist_map.shape[1] + 12] = ramp
    bar = Image.fromarray(canvas)
    draw, font = ImageDraw.Draw(bar), ImageFont.load_default()
    left = dist_map.shape[1] + 14
    draw.text((left, 0), "{:.3g}".format(top), fill=(255, 255, 255), font=font)
    draw.text((left, max(0, height - 12)), "0", fill=(255, 255, 255), font=font)
    return np.asarray(bar)


def save_heatmap(path, dist_map, vmax=None, image=None):
    """Writes :func:`render`'s picture as a PNG, atomically."""
    import imageio.v3 as iio
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, render(dist_map, vmax, image), extension=".png")
