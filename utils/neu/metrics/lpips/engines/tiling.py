# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Exact LPIPS of pairs too large for memory, tile by tile.

Every trunk layer is local, so an image's features can be computed a tile at a time. Each
tile answers for a *core* and is read with a *halo* on every side, clipped at the image's
borders (where the zero padding is then the whole image's own). The halo
(``Trunk.tile_halo``) covers what the deepest tap's receptive field reaches past its
feature's stride, so every feature of the core sees exactly the pixels it sees in the whole
image. Cores (and so reads) start at multiples of ``Trunk.tile_align``, the deepest tap's
stride, so every convolution and pooling window falls where it falls in the whole image (the
pools' floor or ceil rounding included). Each tap's distance map is cut to the core's
features and pasted into the whole image's map, which is then reduced as an untiled one: the
same numbers up to float rounding (the tests hold scores, per-layer values and spatial maps
to 1e-5). Inference only: a loss on huge images must be tiled by its caller.
"""
import ctypes
import os

import numpy as np

import nnabla as nn
from ..errors import EnvironmentProblem

GIB = 1 << 30
# What a pass's estimate adds to the slopes: its input conversion, the decoded images' copies,
# the allocator's slack. Measured on a 2400x1800 AlexNet pair within 0.4 GiB (410 MB): 36 MB
# over without it; peaks of 379-432 MB over runs with 64 MiB; 363-374 MB with 96 MiB.
PASS_OVERHEAD = 96 << 20


def available_memory():
    """Bytes of memory available now (``MemAvailable``), None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _release_freed_memory():
    """Gives the heap's freed pages back to the system (glibc's ``malloc_trim``). Tile passes
    allocate and free blocks of many sizes, which the allocator would otherwise keep
    (measured: the resident memory grew from 361 to 827 MB over 20 VGG tiles)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # another C library: nothing to do


def resident_bytes():
    """The memory this process holds now (its resident set; where /proc is missing, the
    largest it held)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def default_budget():
    """A third of the memory available now, so that two such runs (or MPI ranks) and the rest
    of the machine still fit; 4 GiB where it cannot be read."""
    available = available_memory()
    return available // 3 if available else 4 * GIB


def spans(length, core, halo):
    """The tiles along one axis of ``length`` pixels: (read start, read stop, core start, core
    stop) for cores of ``core`` pixels from 0 (the last one shorter), each read with ``halo``
    pixels on both sides, clipped to the image."""
    return [(max(0, start - halo), min(length, start + core + halo), start,
             min(start + core, length)) for start in range(0, length, core)]


def tile_grid(height, width, core, halo):
    """(rows, columns) of tiles for a height x width image."""
    return len(spans(height, core, halo)), len(spans(width, core, halo))


def tap_shapes(net, height, width):
    """The (h, w) of every tap of ``net`` for a height x width image (shapes only: nothing is
    computed or allocated)."""
    with nn.auto_forward(False), nn.no_grad():
        taps = net.features(nn.Variable((1, 3, height, width)))
    return [tuple(t.shape[2:]) for t in taps]


def whole_map_bytes(net, height, width, spatial):
    """Bytes of what a tiled pair keeps whole: each tap's distance map, and with ``spatial``
    the maps upsampled to the image and their sum."""
    taps = sum(h * w for h, w in tap_shapes(net, height, width))
    upsampled = (len(net.trunk.taps) + 1) * height * width if spatial else 0
    return 4 * (taps + upsampled)


class TileTooLarge(EnvironmentProblem, MemoryError):
    """Even the smallest tile of a pair would not fit the memory budget."""


def core_side(trunk, estimate, budget, height, width):
    """The largest core side (a multiple of ``trunk.tile_align``) whose tile pass (both images,
    halo included) ``estimate(pixels)`` keeps within ``budget`` bytes. Raises TileTooLarge
    naming the sizes when not even one of ``tile_align`` pixels fits."""
    align, halo = trunk.tile_align, trunk.tile_halo

    def pass_pixels(core):
        return 2 * min(height, core + 2 * halo) * min(width, core + 2 * halo)

    largest = -(-max(height, width) // align) * align
    if estimate(pass_pixels(align)) > budget:
        raise TileTooLarge(
            "a {}x{} pair does not fit in {:.0f} MiB of memory even a tile at a time: the "
            "smallest tile ({} px, halo included) needs about {:.0f} MiB with what the process "
            "holds; raise --max-memory (max_memory)".format(
                width, height, budget / (1 << 20), align + 2 * halo,
                estimate(pass_pixels(align)) / (1 << 20)))
    low, high = 1, largest // align  # in units of align: low fits, find the largest that does
    while low < high:
        mid = (low + high + 1) // 2
        if estimate(pass_pixels(mid * align)) <= budget:
            low = mid
        else:
            high = mid - 1
    return low * align


def layer_maps_tiled(engine, net, a, b, to_input, channel_last, core):
    """Per-tap (1, 1, h_l, w_l) distance maps of the pair (``a``, ``b``), each one image (1, H, W,
    3) when ``channel_last``, else (1, 3, H, W), computed tile by tile with cores of ``core``
    pixels: ``to_input`` turns a tile of both images into the engine's input, and
    ``engine.pair_layer_maps`` gives its per-tap distance maps."""
    height, width = (a.shape[1:3] if channel_last else a.shape[2:])
    strides, halo = net.trunk.tap_strides, net.trunk.tile_halo
    shapes = tap_shapes(net, height, width)
    maps = [np.empty((1, 1) + shape, np.float32) for shape in shapes]

    def crop(x, rows, cols):
        return x[:, rows[0]:rows[1], cols[0]:cols[1]] if channel_last else \
            x[:, :, rows[0]:rows[1], cols[0]:cols[1]]

    for rows in spans(height, core, halo):
        for cols in spans(width, core, halo):
            tile_maps = engine.pair_layer_maps(
                to_input(np.concatenate([crop(a, rows, cols), crop(b, rows, cols)])))
            for tile_map, whole, stride, (h, w) in zip(tile_maps, maps, strides, shapes):
                # The core's features: from its start / stride to the next core's (or the end).
                r0, c0 = rows[2] // stride, cols[2] // stride
                r1 = h if rows[3] == height else rows[3] // stride
                c1 = w if cols[3] == width else cols[3] // stride
                r_off, c_off = rows[0] // stride, cols[0] // stride
                whole[:, :, r0:r1, c0:c1] = tile_map[:, :, r0 - r_off:r1 - r_off,
                                                     c0 - c_off:c1 - c_off]
            del tile_maps
            _release_freed_memory()
    return maps
