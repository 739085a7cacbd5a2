# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS on numpy arrays, for scripts and the commands.

A :class:`Scorer` feeds batches to an engine (NNabla or ONNX Runtime, see :mod:`select`),
which runs the trunk and the distance head with graphs built once per shape and reused. On
ONNX Runtime, pairs are scored by trunk and head joined in one graph, so their features never
become arrays. Features are plain arrays, so they can be reused: one reference against many
images, and 2AFC triplets (reference, p0, p1) in three trunk passes instead of four.
"""
import logging

import numpy as np

import nnabla as nn

from ..data.images import check_unit_range, to_unit_range
from ..lpips import LPIPS
from ..trunks import check_size
from . import tiling
from .select import make_engine
from .tuning import tuning_for

logger = logging.getLogger(__name__)


def _contiguous_float32(x):
    return np.ascontiguousarray(x, dtype=np.float32)  # what the engines are fed


def check_range(*arrays):
    """The model's inputs lie in [-1, 1]: anything else (0..255 values, NaN) would be scored
    as a plausible but meaningless number."""
    for x in arrays:
        lo, hi = np.min(x), np.max(x)
        if not (lo >= -1 and hi <= 1):  # also false for NaN
            raise ValueError("inputs must be finite and lie in [-1, 1]; got values from {} to "
                             "{}{}".format(lo, hi, " (NaN present)" if np.isnan(lo) else ""))


class Scorer(object):
    """Scores numpy image batches with one LPIPS model.

    Args:
        model, version, params_dir, lpips, method, channel_norm, input_norm: as
            :class:`~metrics.lpips.lpips.LPIPS`.
        batch_size (int): pairs per trunk pass, at most (both sides go in one pass); large
            images are passed in fewer where the engine says (its ``pixels_per_pass``).
        spatial (bool): :meth:`score_inputs` and the other scoring methods also return the
            (N, H, W) spatial maps, as ``LPIPS(spatial=True)`` does.
        backend (str): ``auto`` (ONNX Runtime on the CPU when installed, else NNabla),
            ``nnabla`` or ``onnxruntime``.
        threads (int, optional): CPU threads for ONNX Runtime (default: all cores).
        winograd (bool, optional): ONNX Runtime computes the wide convolutions with Winograd's
            algorithm (faster; scores equal to the direct convolution's within ~1e-6): None
            (default) where that is faster (passes of up to the trunk's
            ``winograd_max_pixels`` in :mod:`.tuning`), True always, False never.
        max_memory (int, optional): bytes of memory scoring may take (the process's peak,
            estimated); default a third of the memory available. Passes are sized to fit, and a
            pair too large for it is scored tile by tile, with the same result (see
            :mod:`~metrics.lpips.engines.tiling`). ``float("inf")`` never tiles. Methods
            other than ``spatial`` compare whole maps and cannot be tiled: a pair too large
            for the budget raises :class:`~metrics.lpips.engines.tiling.TileTooLarge`.
    """

    def __init__(self, model="alex", version="0.1", params_dir=None, lpips=True, batch_size=32,
                 spatial=False, backend="auto", threads=None, winograd=None, max_memory=None,
                 method="spatial", channel_norm=True, input_norm=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError("batch_size must be a positive integer, got {!r}".format(batch_size))
        if max_memory is not None and not max_memory > 0:
            raise ValueError("max_memory must be a positive number of bytes, got {!r}".format(
                max_memory))
        # Its graphs are the NNabla engine's (and E-LPIPS' on it): never the ONNX Runtime node.
        self.net = LPIPS(model=model, params_dir=params_dir, version=version, lpips=lpips,
                         method=method, channel_norm=channel_norm, input_norm=input_norm,
                         engine="nnabla")
        self.batch_size = batch_size
        self.spatial = bool(spatial)
        self.max_memory = tiling.default_budget() if max_memory is None else max_memory
        self.engine = make_engine(self.net, backend, threads, winograd)
        self._pixels_per_pass = self.engine.pixels_per_pass

    def _pass_bytes(self, pixels, image_pixels=None):
        """The estimated peak memory of the process for a pass of ``pixels`` (all its images,
        of ``image_pixels`` each; None for a tile pass): its memory now plus the trunk's
        measured bytes per pixel for the engine that runs it."""
        per_pixel = tuning_for(self.net.model).memory_slope(self.engine.memory_kind(image_pixels))
        return tiling.resident_bytes() + tiling.PASS_OVERHEAD + per_pixel * pixels

    @property
    def backend(self):
        """The name of the engine in use: ``nnabla`` or ``onnxruntime``."""
        return self.engine.name

    def features(self, x):
        """Trunk features of float32 (N, 3, H, W) images in [-1, 1]: a list of arrays,
        computed in passes of at most ``batch_size`` images that fit ``max_memory``."""
        check_range(x)
        parts = [self.engine.features(_contiguous_float32(x[start:stop]))
                 for start, stop in self._chunks(len(x), x.shape[2:], images=1)]
        return parts[0] if len(parts) == 1 else [np.concatenate(f) for f in zip(*parts)]

    def score_features(self, feats0, feats1, size=None):
        """Scores two equal-shaped lists of features: (N,) float32, and with ``spatial`` a
        tuple (scores, (N, H, W) maps), ``size`` = (H, W) being the images' size."""
        return self.engine.distances(feats0, feats1, self._map_size(size))

    def _map_size(self, size):
        if not self.spatial:
            return None
        if size is None:
            raise ValueError("a spatial Scorer needs the images' size (H, W) to upsample maps")
        return tuple(size)

    def check_size(self, height, width, what="the image"):
        """Raises ``ValueError`` naming ``what`` when it is too small for the trunk."""
        check_size(self.net.model, height, width, what)

    def check_pair(self, x0, x1):
        if x0.shape != x1.shape:
            raise ValueError("the two batches differ in shape: {} and {}".format(x0.shape, x1.shape))
        if x0.ndim != 4 or x0.shape[1] != 3:
            raise ValueError("expected (N, 3, H, W) arrays, got {}".format(x0.shape))
        if x0.shape[0] == 0:
            raise ValueError("the batches hold no images (N = 0)")
        check_size(self.net.model, x0.shape[2], x0.shape[3], "the images")

    def _chunks(self, n, size, images=2):
        """Passes over ``n`` items of ``images`` images of ``size`` each: at most
        ``batch_size`` items, the engine's ``pixels_per_pass`` and what fits ``max_memory``."""
        step, pixels = self.batch_size, images * size[0] * size[1]
        if self._pixels_per_pass:
            step = min(step, max(1, self._pixels_per_pass // (size[0] * size[1])))
        if self.max_memory != float("inf"):
            image = size[0] * size[1]
            while step > 1 and self._pass_bytes(step * pixels, image) > self.max_memory:
                step //= 2
        return [(s, min(s + step, n)) for s in range(0, n, step)]

    def _tile_core(self, size):
        """None when a pair of ``size`` fits ``max_memory`` whole, else the core side of the
        tiles that do (raises TileTooLarge, before any work, when none does)."""
        image = size[0] * size[1]
        if self.max_memory == float("inf") or self._pass_bytes(2 * image, image) <= self.max_memory:
            return None
        if not self.net.is_local:
            raise tiling.TileTooLarge(
                "a {}x{} pair needs about {:.1f} GiB scored whole, over the memory budget of "
                "{:.1f} GiB, and the {} method compares whole feature maps, so it cannot be "
                "scored tile by tile: raise the budget (--max-memory GIB)".format(
                    size[1], size[0], self._pass_bytes(2 * image, image) / tiling.GIB,
                    self.max_memory / tiling.GIB, self.net.method))
        kept = tiling.whole_map_bytes(self.net, size[0], size[1], self.spatial)

        def estimate(pixels):
            return kept + self._pass_bytes(pixels)

        tiling.core_side(self.net.trunk, estimate, self.max_memory, *size)  # raises at once
        # The tile engine's sessions, made by one smallest pass, take memory too (measured:
        # 150-250 MB for VGG): the estimate starts from the resident memory after them.
        side = self.net.trunk.min_size
        self.engine.pair_layer_maps(np.zeros((2, 3, side, side), np.float32))
        return tiling.core_side(self.net.trunk, estimate, self.max_memory, *size)

    def _merge(self, parts):
        if self.spatial:
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return np.concatenate(parts)

    def score_inputs(self, x0, x1):
        """Scores float32 (N, 3, H, W) arrays in [-1, 1], one trunk pass per batch for both
        sides: (N,) float32 scores, and with ``spatial`` a tuple (scores, (N, H, W) maps)."""
        self.check_pair(x0, x1)
        check_range(x0, x1)
        return self._score_pairs(x0, x1, _contiguous_float32)

    def score_images(self, img0, img1):
        """Scores channel-last (N, H, W, 3) batches (uint8 read as 0..255, uint16 as 0..65535,
        float as [0, 1]) as :meth:`score_inputs` does. The engine converts each pass's images
        (ONNX Runtime converts uint8 ones itself, on all its threads)."""
        img0, img1 = self.check_images(img0, img1)
        return self._score_pairs(img0, img1, self.engine.to_input, channel_last=True)

    def check_images(self, img0, img1):
        """Channel-last batches checked for :meth:`score_images`: returned as uint8, or
        when either side is not, both in [0, 1]."""
        img0, img1 = np.asarray(img0), np.asarray(img1)
        if img0.shape != img1.shape:
            raise ValueError("the two batches differ in shape: {} and {}".format(
                img0.shape, img1.shape))
        if img0.ndim != 4 or img0.shape[3] != 3:
            raise ValueError("expected N x H x W x 3 images, got shape {}".format(img0.shape))
        if img0.shape[0] == 0:
            raise ValueError("the batches hold no images (N = 0)")
        check_size(self.net.model, img0.shape[1], img0.shape[2], "the images")
        if img0.dtype != np.uint8 or img1.dtype != np.uint8:  # each side's type and range checked
            img0, img1 = to_unit_range(img0), to_unit_range(img1)
        return img0, img1

    def _score_pairs(self, a, b, to_input, channel_last=False):
        """Scores the pairs (a[i], b[i]), each pass's two halves joined and made the engine's
        input by ``to_input``."""
        size = a.shape[1:3] if channel_last else a.shape[2:]
        core = self._tile_core(size)
        parts = []
        if core is not None:
            rows, cols = tiling.tile_grid(size[0], size[1], core, self.net.trunk.tile_halo)
            logger.info("a %dx%d pair exceeds the memory budget (%.2f GiB): scoring it in "
                        "tiles, %d x %d of %d px with a %d px halo", size[1], size[0],
                        self.max_memory / tiling.GIB, rows, cols, core, self.net.trunk.tile_halo)
            for i in range(len(a)):
                parts.append(self._score_pair_tiled(a[i:i + 1], b[i:i + 1], to_input,
                                                    channel_last, core, size))
            return self._merge(parts)
        for start, stop in self._chunks(len(a), size):
            both = to_input(np.concatenate([a[start:stop], b[start:stop]]))
            parts.append(self.engine.pair_distances(both, self._map_size(size)))
        return self._merge(parts)

    def _score_pair_tiled(self, a, b, to_input, channel_last, core, size):
        """One pair scored tile by tile (:func:`tiling.layer_maps_tiled`), then reduced by the
        same NNabla graphs as untiled maps."""
        maps = tiling.layer_maps_tiled(self.engine, self.net, a, b, to_input, channel_last, core)
        reduced = self.engine.reduce_maps(maps, self._map_size(size))
        scores = reduced[0].reshape(-1)
        return (scores, reduced[-1][:, 0]) if self.spatial else scores

    def score_one_to_many(self, ref, xs):
        """Scores one (3, H, W) or (1, 3, H, W) reference against (N, 3, H, W) images, the
        reference's features computed once."""
        ref = np.asarray(ref).reshape((1,) + tuple(xs.shape[1:]))
        self.check_pair(ref, xs[:1])
        check_range(ref, xs)
        ref_feats = self.engine.features(_contiguous_float32(ref))
        parts = []
        for start, stop in self._chunks(len(xs), xs.shape[2:], images=1):
            feats = self.engine.features(_contiguous_float32(xs[start:stop]))
            tiled = [np.broadcast_to(r, f.shape) for r, f in zip(ref_feats, feats)]
            parts.append(self.score_features(tiled, feats, xs.shape[2:]))
        return self._merge(parts)

    def score_2afc(self, ref, p0, p1):
        """2AFC triplets: (d(ref, p0), d(ref, p1)) for (N, 3, H, W) arrays in [-1, 1], in three
        trunk passes per batch instead of four."""
        self.check_pair(ref, p0)
        self.check_pair(ref, p1)
        check_range(ref, p0, p1)
        d0, d1 = [], []
        for start, stop in self._chunks(len(ref), ref.shape[2:], images=3):
            n = stop - start
            feats = self.engine.features(_contiguous_float32(
                np.concatenate([ref[start:stop], p0[start:stop], p1[start:stop]])))
            fr, f0, f1 = ([f[k * n:(k + 1) * n] for f in feats] for k in range(3))
            d0.append(self.score_features(fr, f0, ref.shape[2:]))
            d1.append(self.score_features(fr, f1, ref.shape[2:]))
        return self._merge(d0), self._merge(d1)

    def __call__(self, img0, img1):
        """LPIPS between channel-last images: H x W x 3 (returns a float) or N x H x W x 3
        (returns (N,) float32). uint8 is read as 0..255, uint16 as 0..65535, float as [0, 1]."""
        single = np.ndim(img0) == 3
        if single:
            img0, img1 = np.asarray(img0), np.asarray(img1)
            for img in (img0, img1):  # a range error names the shape given, not the batch's
                check_unit_range(img)
            img0, img1 = img0[None], img1[None]
        scores = self.score_images(img0, img1)
        if self.spatial:
            scores = scores[0]
        return float(scores[0]) if single else scores


_scorers = {}


def distance(img0, img1, model="alex", version="0.1", params_dir=None, lpips=True, **options):
    """LPIPS between numpy images (see :meth:`Scorer.__call__` for shapes and ranges);
    ``options``: ``method``, ``channel_norm``, ``input_norm`` as :class:`Scorer`.

    Keeps one :class:`Scorer` per configuration, so repeated calls reuse built graphs."""
    ctx = nn.get_current_context()  # the engine was chosen for it (cuDNN or CPU)
    key = (model, version, params_dir, lpips, tuple(sorted(options.items())),
           tuple(ctx.backend), ctx.array_class, ctx.device_id)
    if key not in _scorers:
        _scorers[key] = Scorer(model=model, version=version, params_dir=params_dir, lpips=lpips,
                               **options)
    return _scorers[key](img0, img1)
