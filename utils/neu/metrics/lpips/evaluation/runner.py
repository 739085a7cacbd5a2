# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Scoring a distance on judged data: patches through the shared input pipeline, distances
from an LPIPS :class:`~metrics.lpips.engines.Scorer` or a classic baseline, then the 2AFC or
JND protocol."""
import functools

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
                 colorspace="Lab", batch_size=50, backend="auto", **method_options):
        if metric not in METRICS:
            raise ValueError("unknown metric {!r}; expected one of {}".format(
                metric, ", ".join(METRICS)))
        baselines.check_colorspace(colorspace)
        self.metric, self.colorspace = metric, colorspace
        self.scorer = None
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
        else:
            self._baseline = functools.partial(baselines.DISTANCES[metric], colorspace=colorspace)
            self.name = "{}-{}".format(metric, colorspace)

    def pairs(self, a, b):
        if self.scorer is not None:
            return self.scorer.score_images(a, b).astype(np.float64)
        return self._baseline(a, b)

    def triplets(self, ref, p0, p1):
        if self.scorer is not None:  # three trunk passes: the reference's features once
            x = self.scorer.engine.to_input(np.concatenate([ref, p0, p1]))
            n = len(ref)
            d0, d1 = self.scorer.score_2afc(x[:n], x[n:2 * n], x[2 * n:])
            return d0.astype(np.float64), d1.astype(np.float64)
        return self._baseline(ref, p0), self._baseline(ref, p1)


def _load_item(paths):
    return tuple(bapps.load_patch(p) for p in paths)


def evaluate(judged, distance, batch_size=50, progress=None, stop=None):
    """Scores ``distance`` (a :class:`Distance`) on ``judged`` (a :class:`bapps.Judged`).

    Returns a dict: ``dataset``, ``mode``, ``metric``, ``score`` (the 2AFC score or the JND
    mAP, in [0, 1]), ``count``; for 2AFC also ``pearson`` and ``spearman`` (of d1 - d0 with
    the judgments), ``d0`` and ``d1``; for JND ``d``, ``precision`` and ``recall``.
    Unreadable patches raise :class:`bapps.DatasetError`."""
    n = len(judged.items)
    columns = {}
    for out in batches(list(enumerate(judged.items)), _load_item, batch_size, stop=stop,
                       errors=(bapps.DatasetError,)):
        if isinstance(out, Failure):
            raise out.error
        found = distance.triplets(*out.arrays) if judged.mode == "2afc" else (
            distance.pairs(*out.arrays),)
        for k, values in enumerate(found):
            columns.setdefault(k, np.full(n, np.nan))[out.indices] = values
        if progress is not None:
            progress.update(len(out.indices))
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
