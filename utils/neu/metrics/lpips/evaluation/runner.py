# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Scoring a distance on judged data: patches through the shared input pipeline, distances
from an LPIPS :class:`~metrics.lpips.engines.Scorer` or a classic baseline, then the 2AFC or
JND protocol."""
import functools
import os

import numpy as np

from ..data.pipeline import Failure, batches
from . import baselines, bapps, protocols

METRICS = ("lpips", "baseline") + baselines.METRICS


class Distance(object):
    """A distance between uint8 (N, 64, 64, 3) patch batches: ``pairs(a, b)`` -> (N,) and
    ``triplets(ref, p0, p1)`` -> (d(ref, p0), d(ref, p1)).

    ``metric`` is ``lpips`` (the calibrated metric), ``baseline`` (the same trunk without lin
    layers, ``lpips=False``), or one of :data:`baselines.METRICS` computed in ``colorspace``.
    ``method_options`` (``method``, ``channel_norm``, ``input_norm``) go to the
    :class:`~metrics.lpips.engines.Scorer` of the first two.
    """

    def __init__(self, metric="lpips", model="alex", version="0.1", params_dir=None,
                 colorspace="Lab", batch_size=50, backend="auto", label=None, **method_options):
        if metric not in METRICS:
            raise ValueError("unknown metric {!r}; expected one of {}".format(
                metric, ", ".join(METRICS)))
        baselines.check_colorspace(colorspace)
        self.metric, self.colorspace = metric, colorspace
        self.scorer, self.trunk_key = None, None
        if metric in ("lpips", "baseline"):
            from ..engines import Scorer
            self.scorer = Scorer(model=model, version=version, params_dir=params_dir,
                                 lpips=metric == "lpips", batch_size=batch_size, backend=backend,
                                 **method_options)
            net = self.scorer.net
            self.name = "{}-{}-v{}".format(metric, model, version) + "".join(
                suffix for suffix, on in [("-" + net.method, net.method != "spatial"),
                                          ("-no-channel-norm", not net.channel_norm),
                                          ("-" + net.input_norm + "-input",
                                           net.input_norm not in ("lpips", "none"))] if on)
            # Distances whose trunks compute the same features share them (see evaluate_many):
            # the same weights, wherever they were read from (lin layers trained on the
            # pretrained trunk keep it).
            from ..engines.onnx.cache import trunk_digest
            hashes = getattr(self.scorer.engine, "parameter_hashes", None)  # not made twice
            self.trunk_key = (model, net.apply_scale, net.input_norm, trunk_digest(net, hashes),
                              backend)
        else:
            self._baseline = functools.partial(baselines.DISTANCES[metric], colorspace=colorspace)
            self.name = "{}-{}".format(metric, colorspace)
        if label is None and metric == "lpips" and params_dir and net.trained:
            label = os.path.normpath(params_dir)  # weights trained here: say whose
        if label:  # which weights: a trained folder's results say so
            self.name += "[{}]".format(label)

    def features(self, images):
        """The trunk's features of uint8 (N, H, W, 3) patches (network distances only)."""
        return self.scorer.features(self.scorer.engine.to_input(images))

    def from_features(self, feats0, feats1):
        """(N,) float64 distances between two feature lists of :meth:`features`."""
        return self.scorer.score_features(feats0, feats1).astype(np.float64)

    def pairs(self, a, b):
        return self.columns((a, b))[0]

    def triplets(self, ref, p0, p1):
        return self.columns((ref, p0, p1))

    def columns(self, arrays, shared=None):
        """The distances of the first of ``arrays`` (uint8 batches) to each other one: (d,)
        for JND's (p0, p1), (d0, d1) for 2AFC's (ref, p0, p1). A network distance computes
        its trunk's features of all of them in one go (the reference's once), or takes them
        from ``shared`` ({trunk key: features}), where the first distance of a trunk leaves
        them."""
        first, others = arrays[0], arrays[1:]
        if self.scorer is None:
            return tuple(self._baseline(first, other) for other in others)
        shared = {} if shared is None else shared
        if self.trunk_key not in shared:
            shared[self.trunk_key] = _parts(self.features(np.concatenate(arrays)), len(arrays))
        feats = shared[self.trunk_key]
        return tuple(self.from_features(feats[0], f) for f in feats[1:])


def _parts(feats, count):
    """Features of ``count`` stacked batches, split back into one list per batch."""
    n = len(feats[0]) // count
    return [[f[k * n:(k + 1) * n] for f in feats] for k in range(count)]


def _load_item(paths):
    return tuple(bapps.load_patch(p) for p in paths)


def evaluate(judged, distance, batch_size=50, progress=None, stop=None):
    """Scores ``distance`` (a :class:`Distance`) on ``judged``: :func:`evaluate_many`'s
    result for one distance."""
    return evaluate_many(judged, [distance], batch_size, progress, stop)[0]


def evaluate_many(judged, distances, batch_size=50, progress=None, stop=None):
    """Scores each of ``distances`` (:class:`Distance` objects) on ``judged`` (a
    :class:`bapps.Judged`), reading each patch once; distances whose trunks compute the same
    features (the same network, input scaling and weights, other methods or lin layers)
    share them.

    Returns a list with a dict per distance: ``dataset``, ``mode``, ``metric``, ``score``
    (the 2AFC score or the JND mAP, in [0, 1]), ``count``; for 2AFC also ``pearson`` and
    ``spearman`` (of d1 - d0 with the judgments), ``d0`` and ``d1``; for JND ``d``,
    ``precision`` and ``recall``. Unreadable patches raise :class:`bapps.DatasetError`."""
    n = len(judged.items)
    columns = [{} for _ in distances]
    for out in batches(list(enumerate(judged.items)), _load_item, batch_size, stop=stop,
                       errors=(bapps.DatasetError,)):
        if isinstance(out, Failure):
            raise out.error
        shared = {}
        for distance, found in zip(distances, columns):
            for k, values in enumerate(distance.columns(out.arrays, shared)):
                found.setdefault(k, np.full(n, np.nan))[out.indices] = values
        if progress is not None:
            progress.update(len(out.indices))
    return [_result(judged, distance, found) for distance, found in zip(distances, columns)]


def _result(judged, distance, columns):
    n = len(judged.items)
    result = {"dataset": judged.name, "mode": judged.mode, "metric": distance.name, "count": n}
    if judged.mode == "2afc":
        d0, d1 = columns[0], columns[1]
        result["score"] = protocols.two_afc_score(d0, d1, judged.judgments)[0]
        result["pearson"], result["spearman"] = protocols.judgment_correlations(
            d0, d1, judged.judgments)
        result["d0"], result["d1"] = d0, d1
    else:
        d = columns[0]
        result["score"], result["precision"], result["recall"] = protocols.jnd_map(
            d, judged.judgments)
        result["d"] = d
    return result
