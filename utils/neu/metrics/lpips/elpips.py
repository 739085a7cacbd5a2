# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""E-LPIPS: LPIPS averaged over random transformations applied alike to both images
(Kettunen et al., "E-LPIPS: Robust Perceptual Image Similarity via Random Transformation
Ensembles", 2019; the reference is their TensorFlow code, mkettune/elpips, ``elpips.py``).

One *draw* transforms a batch of N images, in this order, on [0, 1] values:

1. a scale level s in 1..S with P(s) proportional to 1/s^2, and an offset o in [0, s) per
   axis: reflect-pad o before and F - H - o after, F = floor((H + 2(s - 1)) / s) s, then the
   mean of each s x s block (one level and offset for the whole batch);
2. a translation o in [0, 7] per axis and image: reflect-pad 7 - o before and o after (the
   image grows by 7 px);
3. a flip per image: 0 mirrors x, 1 mirrors y, 2 both, 3 none;
4. x and y swapped, with probability 1/2 (for the whole batch);
5. one of the 6 RGB orders per image (output channel c takes input channel perm[c]);
6. a factor 0.2 + 0.8u per image and channel;

then the trunk, with dropout (keep 0.99, scaled by 1/0.99) on every convolution's input,
the mask the same for both images. Over a batch, flips, orders and factors are stratified as
the reference does (shuffled repeats of the 4 flips and 6 orders; u_i = (U_i + i) / N).
Everything is an NNabla graph, so E-LPIPS is differentiable; a new draw builds a new graph.
Where the network runs on ONNX Runtime (:meth:`~metrics.lpips.lpips.LPIPS.runs_on_onnxruntime`),
the transformations stay NNabla's and the trunk and head, with the draw's masks, are one
ONNX Runtime node, forward and backward.
"""
import collections
import dataclasses
import itertools

import numpy as np

import nnabla as nn
import nnabla.functions as F

from .lpips import LPIPS
from .trunks import conv_input_hook

PERMUTATIONS = tuple(itertools.permutations(range(3)))  # the reference's order

Draw = collections.namedtuple(
    "Draw", ["scale", "scale_offset", "offsets", "flips", "swap", "permutations", "colors"])


@dataclasses.dataclass(frozen=True)
class Config:
    """Which transformations a draw makes (the reference's ``Config``); all on by default.
    ``num_scales`` is S; the reference's examples use max(1, min(H, W) // 64)
    (:meth:`for_image`)."""
    scale: bool = True
    num_scales: int = 8
    offset: bool = True
    offset_max: int = 7
    flip: bool = True
    swap: bool = True
    permutation: bool = True
    color: bool = True
    dropout: bool = True
    keep_prob: float = 0.99

    @classmethod
    def for_image(cls, height, width, **changes):
        """The configuration with ``num_scales`` set by the image size, as the reference's
        ``set_scale_levels_by_image_size``."""
        return cls(num_scales=max(1, min(height, width) // 64), **changes)

    @classmethod
    def plain(cls):
        """No transformation and no dropout: one draw is LPIPS itself."""
        return cls(scale=False, offset=False, flip=False, swap=False, permutation=False,
                   color=False, dropout=False)

    def scale_probabilities(self):
        weights = np.array([1.0 / s ** 2 for s in range(1, self.num_scales + 1)])
        return weights / weights.sum()


def sample(rng, n, config):
    """One draw for a batch of ``n`` images, from ``rng`` (a numpy Generator)."""
    scale = int(rng.choice(np.arange(1, config.num_scales + 1), p=config.scale_probabilities())) \
        if config.scale else 1
    flips = np.arange((n + 3) // 4 * 4) % 4
    rng.shuffle(flips)
    orders = np.tile(np.arange(len(PERMUTATIONS)), (n + len(PERMUTATIONS) - 1) // len(PERMUTATIONS))
    rng.shuffle(orders)
    colors = np.empty((n, 3))
    for c in range(3):
        u = (rng.random(n) + np.arange(n)) / n
        rng.shuffle(u)
        colors[:, c] = u
    return Draw(scale=scale, scale_offset=tuple(int(v) for v in rng.integers(0, scale, 2)),
                offsets=rng.integers(0, config.offset_max + 1, (n, 2)),
                flips=flips[:n], swap=bool(rng.integers(0, 2)),
                permutations=[PERMUTATIONS[k] for k in orders[:n]],
                colors=(0.2 + 0.8 * colors).astype(np.float32))


def _per_image(x, fn):
    """``fn(image_i, i)`` for each image of the batch, joined again."""
    parts = [fn(F.slice(x, (i, 0, 0, 0), (i + 1,) + tuple(x.shape[1:])), i)
             for i in range(x.shape[0])]
    return parts[0] if len(parts) == 1 else F.concatenate(*parts, axis=0)


def _flip(image, code):
    axes = {0: [3], 1: [2], 2: [2, 3]}.get(int(code))
    return F.flip(image, axes=axes) if axes else image


def _permute(image, order):
    if tuple(order) == (0, 1, 2):
        return image
    h, w = image.shape[2:]
    return F.concatenate(*[F.slice(image, (0, c, 0, 0), (1, c + 1, h, w)) for c in order], axis=1)


def transform(x, draw, config):
    """The draw's transformation of ``x`` (N, 3, H, W) in [0, 1], as a graph."""
    if config.scale and draw.scale > 1:
        s, (oy, ox) = draw.scale, draw.scale_offset
        h, w = x.shape[2:]
        full_h, full_w = (h + 2 * (s - 1)) // s * s, (w + 2 * (s - 1)) // s * s
        x = F.pad(x, (oy, full_h - h - oy, ox, full_w - w - ox), mode="reflect")
        x = F.average_pooling(x, (s, s), (s, s))
    if config.offset:
        m = config.offset_max
        x = _per_image(x, lambda image, i: F.pad(
            image, (m - draw.offsets[i][0], draw.offsets[i][0],
                    m - draw.offsets[i][1], draw.offsets[i][1]), mode="reflect"))
    if config.flip:
        x = _per_image(x, lambda image, i: _flip(image, draw.flips[i]))
    if config.swap and draw.swap:
        x = F.transpose(x, (0, 1, 3, 2))
    if config.permutation:
        x = _per_image(x, lambda image, i: _permute(image, draw.permutations[i]))
    if config.color:
        x = x * nn.Variable.from_numpy_array(draw.colors.reshape(-1, 3, 1, 1))
    return x


class ELPIPS(object):
    """E-LPIPS over any LPIPS network: ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`, or
    the arguments to make one, by default E-LPIPS-VGG), transformations and dropout as
    ``config`` says.

    ``elpips(img0, img1, rng)`` builds the graph of one draw for the N pairs (one sample each):
    (N, 1, 1, 1) distances, differentiable with respect to both inputs ((N, 3, H, W) in
    [-1, 1]). An ensemble of K samples of one pair is a batch of K copies of it
    (:meth:`samples`)."""

    def __init__(self, net=None, config=None, **lpips_args):
        if net is None:
            net = LPIPS(**dict({"model": "elpips-vgg"}, **lpips_args))
        self.net = net
        self.config = config if config is not None else Config()
        self._conv_shapes = {}

    def _kept(self, rng, shape):
        """Which values a dropout mask keeps (probability keep each), as booleans."""
        return rng.random(shape, dtype=np.float32) < self.config.keep_prob

    def mask_values(self, kept):
        """A dropout mask's values from :meth:`_kept`: 1 / keep where kept, else 0."""
        return kept.astype(np.float32) / np.float32(self.config.keep_prob)

    def _mask(self, rng, shape):
        return self.mask_values(self._kept(rng, shape))

    def _dropout(self, rng, repeats):
        """A hook that multiplies a convolution's input by random masks, one per image of a
        batch of ``repeats`` equal parts (both sides of every pair, and the copies of a
        draw), the same in every part."""
        def hook(x):
            mask = self._mask(rng, (x.shape[0] // repeats,) + tuple(x.shape[1:]))
            return x * nn.Variable.from_numpy_array(np.concatenate([mask] * repeats))
        return hook

    def conv_input_shapes(self, shape):
        """The (C, h, w) of every convolution's input, in the trunk's order, for images of
        ``shape`` (3, H, W)."""
        shape = tuple(shape)
        if shape not in self._conv_shapes:
            seen = []

            def record(x):
                seen.append(tuple(x.shape[1:]))
                return x
            with nn.auto_forward(False), conv_input_hook(record):
                self.net.features(nn.Variable((1,) + shape))
            self._conv_shapes[shape] = seen
        return self._conv_shapes[shape]

    def draw_arrays(self, images, rng):
        """One draw for ``n`` pairs as arrays, for an engine that runs the trunk itself:
        ``images`` is a list of parts, each (n, 3, H, W) in [-1, 1] (the pairs' two sides,
        or more parts sharing the draw, as ``copies`` in :meth:`__call__`). Returns the parts
        transformed, and the dropout masks per convolution as booleans ((n, C, h, w), the same
        for every part, a quarter of float32's memory: :meth:`mask_values` makes the values;
        None without dropout). The random numbers are taken in the order of :meth:`__call__`,
        so both give the same samples from the same ``rng``."""
        n = images[0].shape[0]
        draw = sample(rng, n, self.config)
        with nn.auto_forward(True), nn.no_grad():
            parts = [(transform((nn.Variable.from_numpy_array(x) + 1) * 0.5, draw,
                                self.config) * 2 - 1).d.copy() for x in images]
        masks = None
        if self.config.dropout:
            masks = [self._kept(rng, (n,) + s) for s in self.conv_input_shapes(parts[0].shape[1:])]
        return parts, masks

    def mask_elements(self, height, width):
        """Values in one image's dropout masks (all convolutions) when the draw's images are
        ``height`` x ``width`` (at most the input's size plus the translation's 7 px)."""
        return sum(int(np.prod(s)) for s in self.conv_input_shapes((3, height, width)))

    def __call__(self, img0, img1, rng, draw=None, copies=1):
        """Distances (N, 1, 1, 1) between the pairs (img0[i], img1[i]) under one draw. With
        ``copies`` = c, the batch is c parts of N / c pairs that get the same draw and dropout
        (common random numbers, for comparing distances)."""
        n = img0.shape[0] // copies
        draw = sample(rng, n, self.config) if draw is None else draw
        repeats = 2 * copies  # both sides, each in ``copies`` parts
        both = transform((F.concatenate(img0, img1, axis=0) + 1) * 0.5, Draw(
            draw.scale, draw.scale_offset, np.concatenate([draw.offsets] * repeats),
            np.concatenate([draw.flips] * repeats), draw.swap, list(draw.permutations) * repeats,
            np.concatenate([draw.colors] * repeats)), self.config) * 2 - 1
        total = n * copies
        if self.net.runs_on_onnxruntime():
            return self._onnxruntime_distance(both, total, copies, rng)
        hook = self._dropout(rng, repeats) if self.config.dropout else None
        with conv_input_hook(hook):
            feats = self.net.features(both)
        halves = [[F.slice(f, (k * total, 0, 0, 0), ((k + 1) * total,) + tuple(f.shape[1:]))
                   for f in feats] for k in (0, 1)]
        distance, _ = self.net.reduce(self.net.layer_distances(*halves))
        return distance

    def _onnxruntime_distance(self, both, total, copies, rng):
        """:meth:`__call__`'s distances from the transformed images ``both`` (the two sides'
        ``total`` images each), the trunk and head on ONNX Runtime with masks drawn as the
        NNabla graph's dropout draws them (the same samples from the same ``rng``)."""
        from .engines.onnx_node import layer_maps
        shape = tuple(both.shape[1:])
        sides = [F.slice(both, (k * total, 0, 0, 0), ((k + 1) * total,) + shape) for k in (0, 1)]
        masks = None
        if self.config.dropout:
            masks = [np.concatenate([self._mask(rng, (total // copies,) + s)] * copies)
                     for s in self.conv_input_shapes(shape)]
        distance, _ = self.net.reduce(layer_maps(self.net.gradient_engine(), *sides, masks=masks))
        return distance

    def samples(self, img0, img1, count, rng):
        """``count`` samples of E-LPIPS between one pair ((1, 3, H, W) each), in one pass:
        (count, 1, 1, 1) distances."""
        tile = (count, 1, 1, 1)
        return self(F.tile(img0, tile), F.tile(img1, tile), rng)
