# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Scores of a distance function against human judgments, as the reference computes them
(pip ``lpips`` 0.1.4, ``lpips/trainer.py`` ``score_2afc_dataset`` and ``score_jnd_dataset``,
``lpips/__init__.py`` ``voc_ap``), over distances from any metric.

2AFC (two-alternative forced choice): people saw a reference and two distortions p0, p1 and
chose the one closer to the reference; ``judge`` is the fraction who chose p1. A metric agrees
with them as often as its choice matches: ``(d0 < d1) * (1 - judge) + (d1 < d0) * judge``, a
tie counting half. The score is the mean over triplets (the human ceiling is below 1 where
people disagree).

JND (just noticeable difference): people saw two patches briefly and said whether they were
the same; ``same`` is the fraction who said so. Pairs are ranked by increasing distance, and
the score is the average precision of finding the "same" pairs first (VOC's area under the
precision-recall curve, not its 11-point variant). Judgments are taken in float32, as the
reference's ``torch.FloatTensor`` holds them.
"""
import numpy as np


def _vector(values, name):
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError("{} is empty".format(name))
    return arr


def _judgments(values, name, count):
    arr = _vector(values, name)
    if arr.size != count:
        raise ValueError("{} holds {} values for {} distances".format(name, arr.size, count))
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError("{} must be fractions in [0, 1]; got min {}, max {}".format(
            name, np.nanmin(arr), np.nanmax(arr)))
    return arr.astype(np.float32).astype(np.float64)


def two_afc_score(d0, d1, judge):
    """The 2AFC score of distances ``d0`` = d(ref, p0) and ``d1`` = d(ref, p1) against
    ``judge`` (the fraction of people who chose p1), each of N values (any shape, flattened).

    Returns (score in [0, 1], (N,) per-triplet agreement)."""
    d0, d1 = _vector(d0, "d0"), _vector(d1, "d1")
    if d0.size != d1.size:
        raise ValueError("d0 holds {} distances and d1 {}".format(d0.size, d1.size))
    judge = _judgments(judge, "judge", d0.size)
    agreement = (d0 < d1) * (1.0 - judge) + (d1 < d0) * judge + (d1 == d0) * 0.5
    return float(np.mean(agreement)), agreement


def voc_ap(recall, precision):
    """Area under the precision-recall curve as PASCAL VOC computes it after 2007: the
    precision made monotone from the right, summed over the steps of recall."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the precision envelope
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def jnd_map(distances, same):
    """The JND score of ``distances`` d(p0, p1) against ``same`` (the fraction of people who
    saw no difference), N values each: the average precision of ranking the pairs by
    increasing distance. (The reference sorts its (N, 1, 1, 1) distances without flattening
    them, which leaves them unsorted; they are flattened here.)

    Returns (mAP in [0, 1], precision, recall), the last two (N,) along the ranking. With no
    "same" judgment at all, recall and so the mAP are nan, as in the reference."""
    distances = _vector(distances, "distances")
    same = _judgments(same, "same", distances.size)
    order = np.argsort(distances)  # numpy's default sort, as the reference
    same = same[order]
    true_pos = np.cumsum(same)
    false_pos = np.cumsum(1.0 - same)
    false_neg = np.sum(same) - true_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = true_pos / (true_pos + false_pos)
        recall = true_pos / (true_pos + false_neg)
    return voc_ap(recall, precision), precision, recall


def judgment_correlations(d0, d1, judge):
    """Pearson and Spearman correlations of ``d1 - d0`` with ``judge``: how well the margin
    between the two distances follows the share of people choosing p1 (positive is good).
    Returns (pearson, spearman) over the triplets whose margin is finite (PSNR's is not for
    identical patches); nan where either side is constant."""
    from scipy import stats
    d0, d1 = _vector(d0, "d0"), _vector(d1, "d1")
    judge = _judgments(judge, "judge", d0.size)
    with np.errstate(invalid="ignore"):
        margin = d1 - d0
    finite = np.isfinite(margin)
    margin, judge = margin[finite], judge[finite]
    if margin.size < 2 or np.all(margin == margin[0]) or np.all(judge == judge[0]):
        return float("nan"), float("nan")
    return float(stats.pearsonr(margin, judge)[0]), float(stats.spearmanr(margin, judge)[0])
