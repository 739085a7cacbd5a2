# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""E-LPIPS ensembles in the Scorer's interface, for the commands: each pair's score is the mean
over random-transformation draws (:mod:`~metrics.lpips.elpips`), a fixed number of them or
until the estimate is as precise as asked (:func:`~metrics.lpips.ensemble.estimate`).

Each pair's draws are seeded by the seed and the two images' bytes, so a pair gets the same
estimate whatever else is scored with it, in any order, on any number of processes, resumed or
not. On ONNX Runtime the draws run on the engine (the trunk exported with its dropout masks as
inputs), elsewhere on the NNabla graph; both give the same samples.
"""
import logging
import time
import zlib

import numpy as np

from ..elpips import ELPIPS, Config
from ..ensemble import EnsembleScore, estimate
from .scorer import check_range
from .tiling import GIB, TileTooLarge

logger = logging.getLogger(__name__)

# A batch's masks: a byte each (booleans), and while drawn four more (the float32 random
# numbers of one convolution at a time: at most all of them, counted so).
_BATCH_MASK_BYTES = 5
# The trunk with masks, against the trunk's measured bytes per pixel (measured on a 400x357
# pair, E-LPIPS-VGG: 4 images a pass peaked at about twice the plain trunk's estimate).
_MASKED_TRUNK_FACTOR = 2


def pair_rng(seed, x0, x1):
    """The random generator of one pair's draws: from ``seed`` and both images' bytes."""
    return np.random.default_rng([seed, zlib.crc32(x0.tobytes()), zlib.crc32(x1.tobytes())])


def images_per_pass(scorer, elpips, height, width, draws_per_pass, parts=2):
    """Images per trunk pass of E-LPIPS draws of ``height`` x ``width`` images within
    ``scorer``'s memory budget (a :class:`~metrics.lpips.engines.Scorer`: its engine and
    ``max_memory``). A batch of draws holds its dropout masks for every convolution as
    booleans, and while each is drawn a float32 array of it; a pass holds the trunk's
    activations and the float32 masks of its images. On an engine that takes dropout masks
    a batch is run in as many passes as that needs (the samples do not change); the NNabla
    graph runs all ``parts`` images of the draws (both sides of a pair, three for a
    comparison) at once. Images that cannot fit raise :class:`TileTooLarge` (an ensemble transforms whole images: it cannot be
    tiled)."""
    image = (height + 7) * (width + 7)  # translated by up to 7 px
    masks = elpips.mask_elements(height + 7, width + 7) if elpips.config.dropout else 0
    batch_masks = draws_per_pass * masks * _BATCH_MASK_BYTES
    on_engine = scorer.engine.takes_dropout_masks

    def fits(images):  # the masked trunk keeps each convolution's masked input too
        pass_bytes = (scorer._pass_bytes(_MASKED_TRUNK_FACTOR * images * image, image)
                      + images * masks * 4)
        return pass_bytes + batch_masks <= scorer.max_memory
    step = draws_per_pass * (1 if on_engine else parts)
    while on_engine and step > 1 and not fits(step):
        step //= 2
    if not fits(step):
        raise TileTooLarge(
            "{}x{} images need more than the memory budget ({:.2f} GiB) for {} E-LPIPS "
            "draw(s) at once, and ensembles cannot be tiled; raise --max-memory or lower "
            "--draws-per-pass".format(width, height, scorer.max_memory / GIB, draws_per_pass))
    return step


PROGRESS_SECONDS = 5.0


class _ProgressLog(object):
    """Logs a pair's estimate so far every ``PROGRESS_SECONDS`` while its draws go on (an
    ``auto`` estimate of a large pair takes minutes)."""

    def __init__(self):
        self._last = time.monotonic()

    def __call__(self, values):
        if time.monotonic() - self._last >= PROGRESS_SECONDS:
            self._last = time.monotonic()
            logger.info("E-LPIPS: %d draws so far, estimate %.6f", len(values), np.mean(values))


class EnsembleScorer(object):
    """Scores pairs with E-LPIPS over ``scorer``'s network and engine (a
    :class:`~metrics.lpips.engines.Scorer`; its transformations on, as E-LPIPS' defaults,
    with as many scale levels as the image size allows, ``Config.for_image``).

    ``samples``: draws per pair, or None to draw until 1.96 standard errors are below
    ``abs_tol`` and ``rel_tol`` times the mean (at most ``max_samples``). Draws are made
    ``draws_per_pass`` at a time, stratified as E-LPIPS does, and go through the trunk
    together (on ONNX Runtime in smaller passes when the scorer's memory budget asks; the
    samples do not change). Scores are :class:`~metrics.lpips.ensemble.EnsembleScore` floats."""

    spatial = False

    def __init__(self, scorer, samples=None, abs_tol=0.01, rel_tol=0.025, max_samples=5000,
                 draws_per_pass=8, seed=0):
        if scorer.spatial:
            raise ValueError("E-LPIPS ensembles give scores, not spatial maps")
        self._scorer, self.net, self.engine = scorer, scorer.net, scorer.engine
        self.batch_size = scorer.batch_size
        self.check_size = scorer.check_size
        self._settings = dict(samples=samples, abs_tol=abs_tol, rel_tol=rel_tol,
                              max_samples=max_samples)
        self._draws_per_pass, self.seed = draws_per_pass, seed
        self._elpips = {}

    @property
    def backend(self):
        return self.engine.name

    def _elpips_for(self, height, width):
        key = (height, width)
        if key not in self._elpips:
            self._elpips[key] = ELPIPS(self.net, Config.for_image(height, width))
        return self._elpips[key]

    def _images_per_pass(self, height, width):
        return images_per_pass(self._scorer, self._elpips_for(height, width), height, width,
                               self._draws_per_pass)

    def score_inputs(self, x0, x1):
        """E-LPIPS between float32 (N, 3, H, W) arrays in [-1, 1], pair by pair: a list of
        :class:`~metrics.lpips.ensemble.EnsembleScore`."""
        self._scorer.check_pair(x0, x1)
        check_range(x0, x1)
        height, width = x0.shape[2:]
        elpips, chunk = self._elpips_for(height, width), self._images_per_pass(height, width)
        scores = []
        for a, b in zip(x0, x1):
            a = np.ascontiguousarray(a[None], dtype=np.float32)
            b = np.ascontiguousarray(b[None], dtype=np.float32)
            scores.append(EnsembleScore.of(estimate(
                elpips, a, b, pair_rng(self.seed, a, b), batch=self._draws_per_pass,
                engine=self.engine, chunk=chunk, on_batch=_ProgressLog(),
                **self._settings)))
            self._say_if_unmet(scores[-1])
        return scores

    def _say_if_unmet(self, score):
        """A warning when ``auto`` stopped at ``max_samples`` before its tolerance was met."""
        settings = self._settings
        if settings["samples"] is not None or score.count < settings["max_samples"]:
            return
        wanted = min(settings["abs_tol"], settings["rel_tol"] * abs(float(score)))
        if score.half_width >= wanted:
            logger.warning("the E-LPIPS estimate %.6f +- %.6f stopped at --max-samples %d "
                           "before reaching the tolerance (+- %.6f); raise --max-samples for "
                           "more precision", float(score), score.half_width, score.count, wanted)

    def score_images(self, img0, img1):
        """As :meth:`score_inputs`, for channel-last batches read as
        :meth:`~metrics.lpips.engines.Scorer.score_images` reads them."""
        img0, img1 = self._scorer.check_images(img0, img1)
        to_input = self.engine.to_input
        return self.score_inputs(np.concatenate([to_input(x[None]) for x in img0]),
                                 np.concatenate([to_input(x[None]) for x in img1]))
