# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""E-LPIPS estimates: draws in batches until the mean is known well enough, and comparisons of
two distances with common random numbers (the reference's ``ex_evaluate_distance.py`` and
``ex_compare_distances.py``, mkettune/elpips).

Inputs are float32 (1, 3, H, W) arrays in [-1, 1]; ``elpips`` an
:class:`~metrics.lpips.elpips.ELPIPS`; ``rng`` a numpy Generator (the seed makes a run
reproducible). The confidence bounds are 1.96 standard errors of the mean, as the
reference's, but the standard error comes from the means of the batches of draws, not from
the draws: a batch shares its scale level and x/y swap (as the reference's), so its draws are
not independent and the per-draw formula understates the error (on E-LPIPS' example pair,
with five scale levels and batches of 10, by about 3x). With batches of one draw the two
agree. No stopping rule applies before ``MIN_BATCHES`` batches and ``MIN_SAMPLES`` draws.
"""
import collections

import nnabla as nn
import numpy as np

MIN_SAMPLES = 10  # before any stopping rule is applied (as the reference)
MIN_BATCHES = 4  # and enough batch means for their spread to mean something
Z95 = 1.96

Estimate = collections.namedtuple("Estimate", ["mean", "half_width", "stderr", "count"])
Comparison = collections.namedtuple(
    "Comparison", ["closer", "d_a", "d_b", "difference", "half_width", "count"])


class EnsembleScore(float):
    """An E-LPIPS estimate that is its mean (a float, wherever scores are floats) and carries
    ``half_width`` (1.96 standard errors), ``stderr`` and ``count`` (draws)."""

    def __new__(cls, mean, half_width, stderr, count):
        score = float.__new__(cls, mean)
        score.half_width, score.stderr, score.count = float(half_width), float(stderr), int(count)
        return score

    def __reduce__(self):  # for pickling (MPI gathers scores)
        return EnsembleScore, (float(self), self.half_width, self.stderr, self.count)

    @classmethod
    def of(cls, estimate):
        return cls(estimate.mean, estimate.half_width, estimate.stderr, estimate.count)

    def details(self):
        """The fields beside the mean, as the JSON outputs and the journal write them."""
        return {"half_width": self.half_width, "stderr": self.stderr, "draws": self.count}


def _batches(elpips, pairs, rng, batch, engine=None, chunk=None):
    """Yields arrays of E-LPIPS samples, ``batch`` draws at a time, for every pair in ``pairs``
    (a list of (img0, img1)) under the same draws and dropout: (len(pairs), batch). On the
    NNabla graph, or with ``engine`` (when it takes dropout masks: ONNX Runtime's) with the
    same samples; there the trunk takes at most ``chunk`` images a pass (to bound memory;
    the samples do not change)."""
    if engine is not None and engine.takes_dropout_masks:
        yield from _engine_batches(elpips, engine, pairs, rng, batch, chunk or batch)
        return
    copies = len(pairs)
    img0 = np.concatenate([np.repeat(a, batch, axis=0) for a, _ in pairs])
    img1 = np.concatenate([np.repeat(b, batch, axis=0) for _, b in pairs])
    with nn.auto_forward(False), nn.no_grad():
        v0, v1 = nn.Variable.from_numpy_array(img0), nn.Variable.from_numpy_array(img1)
        while True:
            d = elpips(v0, v1, rng, copies=copies)
            d.forward(clear_buffer=True)
            yield d.d.reshape(copies, batch).copy()


def _engine_batches(elpips, engine, pairs, rng, batch, chunk):
    """:func:`_batches` on an engine: the draws are made as arrays (:meth:`ELPIPS.draw_arrays`)
    and go through the trunk ``chunk`` images at a time, each distinct image once (a
    reference shared by two pairs is not run twice); a chunk's distances are taken before the
    next chunk runs, so only one chunk's features are held."""
    sources = []  # the distinct images, by identity
    for pair in pairs:
        for image in pair:
            if not any(image is known for known in sources):
                sources.append(image)
    index = [[next(k for k, known in enumerate(sources) if known is image) for image in pair]
             for pair in pairs]
    repeated = [np.ascontiguousarray(np.repeat(image, batch, axis=0)) for image in sources]
    while True:
        parts, kept = elpips.draw_arrays(repeated, rng)
        distances = []
        for start in range(0, batch, chunk):
            rows = slice(start, start + chunk)
            masks = None if kept is None else [elpips.mask_values(k[rows]) for k in kept]
            feats = [engine.features(np.ascontiguousarray(x[rows]), masks) for x in parts]
            distances.append([engine.distances(feats[i], feats[j]) for i, j in index])
        yield np.concatenate([np.stack(d) for d in distances], axis=1)


def standard_error(values, batch):
    """The standard error of the mean of ``values``, drawn ``batch`` at a time: from the
    means of the complete batches (all of the values when there are fewer than two)."""
    complete = len(values) // batch
    if complete >= 2:
        means = np.mean(np.reshape(values[:complete * batch], (complete, batch)), axis=1)
        return float(np.std(means, ddof=1) / np.sqrt(complete))
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("inf")


def _may_stop(count, batch):
    return count >= MIN_SAMPLES and count >= MIN_BATCHES * batch


def estimate(elpips, img0, img1, rng, samples=None, abs_tol=0.01, rel_tol=0.025,
             max_samples=5000, batch=8, on_batch=None, engine=None, chunk=None):
    """E-LPIPS between ``img0`` and ``img1``: exactly ``samples`` draws, or (None) draws until
    1.96 standard errors are below both ``abs_tol`` and ``rel_tol`` times the mean, at most
    ``max_samples``. ``on_batch(values so far)`` is called after each batch. ``engine``: run
    on that engine (see :func:`_batches`, also for ``chunk``), else on the NNabla graph."""
    wanted = samples if samples is not None else max_samples
    batch = min(batch, wanted)
    values = []
    for part in _batches(elpips, [(img0, img1)], rng, batch, engine, chunk):
        values.extend(part[0][:wanted - len(values)])
        if on_batch is not None:
            on_batch(values)
        if len(values) >= wanted:
            break
        if samples is None and _may_stop(len(values), batch):
            bound = Z95 * standard_error(values, batch)
            if bound < abs_tol and bound < rel_tol * np.mean(values):
                break
    error = standard_error(values, batch)
    return Estimate(float(np.mean(values)), Z95 * error, error, len(values))


def compare(elpips, ref, img_a, img_b, rng, max_samples=5000, batch=8, stop_early=True,
            on_batch=None, engine=None, chunk=None):
    """Which of ``img_a`` and ``img_b`` is closer to ``ref`` under E-LPIPS: both distances are
    sampled under the same draws, so their difference varies less than each. Sampling stops
    once the difference's 95% interval excludes 0 (unless ``stop_early`` is off), or at
    ``max_samples``; ``closer`` is "a", "b", or None when the interval still holds 0.
    ``engine`` and ``chunk`` as :func:`estimate`."""
    batch = min(batch, max_samples)
    diffs, d_a, d_b = [], [], []
    for part in _batches(elpips, [(ref, img_a), (ref, img_b)], rng, batch, engine, chunk):
        take = max_samples - len(diffs)
        d_a.extend(part[0][:take])
        d_b.extend(part[1][:take])
        diffs.extend((part[0] - part[1])[:take])
        if on_batch is not None:
            on_batch(diffs)
        if (stop_early and _may_stop(len(diffs), batch)
                and abs(np.mean(diffs)) > Z95 * standard_error(diffs, batch)):
            break
        if len(diffs) >= max_samples:
            break
    mean, bound = float(np.mean(diffs)), Z95 * standard_error(diffs, batch)
    closer = None if abs(mean) <= bound else ("a" if mean < 0 else "b")
    return Comparison(closer, float(np.mean(d_a)), float(np.mean(d_b)), mean, bound, len(diffs))
