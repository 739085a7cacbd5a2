# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""What training is judged by after every epoch: held-out 2AFC sets (BAPPS' val sets, or a
seeded part of the training triplets held out) and the scorers that score an epoch's weights
on them."""
import csv
import os

import numpy as np

from ..data.atomic import atomic_path
from ..evaluation import bapps, protocols
from ..weights.store import read_h5
from . import checkpoint
from .loop import precompute_terms
from .precompute import TermMaker, lin_vector

HELD_OUT = "held-out"
_SPLIT_STREAM = 1  # the split's own random stream, beside the epochs' (seed, epoch)


def split(judged, fraction, seed):
    """(kept, held out): ``judged``'s triplets divided at random (seeded by ``seed``), about
    ``fraction`` of them held out (at least one, and at least one kept); both keep the
    triplets' order. ValueError when ``judged`` is too small to divide."""
    count = len(judged.items)
    held_count = max(1, int(round(fraction * count)))
    if held_count >= count:
        raise ValueError("holding out {:g} of {} triplets leaves none to train on".format(
            fraction, count))
    order = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(count)
    held = np.zeros(count, bool)
    held[order[:held_count]] = True

    def part(mask, name):
        return bapps.Judged(name, judged.mode, [judged.items[i] for i in np.flatnonzero(mask)],
                            np.asarray(judged.judgments)[mask])
    return part(~held, judged.name), part(held, HELD_OUT)


def write_csv(judged, path):
    """``judged``'s 2AFC triplets as a CSV that ``--csv`` and ``evaluate`` read (absolute
    paths), replaced whole."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["ref", "p0", "p1", "judge"])
            for item, judge in zip(judged.items, judged.judgments):
                writer.writerow([os.path.abspath(p) for p in item] + [repr(float(judge))])


def lin_scorer(sets, model, params_dir, batch_size, options):
    """The per-epoch scorer of lin-mode training (the pretrained trunk fixed): a distance is
    linear in the lin weights (the channel terms times the weights), so each set's terms are
    computed once, by one engine, and an epoch costs a product; no network is made and
    nothing is exported per epoch (a new network per epoch put two graphs into the export
    cache each time). ``options``: the comparison (``method``, ``channel_norm``,
    ``input_norm``)."""
    make_terms = TermMaker(model, params_dir, **options)
    terms = [precompute_terms(s, make_terms, batch_size) for s in sets]

    def scores(out):
        w = lin_vector(read_h5(checkpoint.weights_path(out, model)))
        return {"2afc " + s.name: protocols.two_afc_score(t0 @ w, t1 @ w, s.judgments)[0]
                for s, (t0, t1) in zip(sets, terms)}
    return scores


def network_scorer(sets, model, options):
    """The per-epoch scorer when the trunk is trained too: the epoch's whole network, on
    NNabla. ONNX Runtime would export each epoch's new trunk into the shared cache, its
    weights included (tens of megabytes an epoch that nothing removes)."""
    from ..evaluation.runner import Distance, evaluate

    def scores(out):
        distance = Distance("lpips", model, params_dir=out, backend="nnabla", **options)
        return {"2afc " + s.name: evaluate(s, distance)["score"] for s in sets}
    return scores
