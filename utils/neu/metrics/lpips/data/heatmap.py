# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Spatial LPIPS maps as colour PNG heatmaps."""
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


def save_heatmap(path, dist_map, vmax=None):
    """Writes the colourized map as a PNG, atomically."""
    import imageio.v3 as iio
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, colorize(dist_map, vmax), extension=".png")
