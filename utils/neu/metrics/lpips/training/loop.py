# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The training loop of the reference's ``train.py``: epochs over shuffled 2AFC triplets in
batches, a constant learning rate for ``epochs``, then ``epochs_decay`` more with it lowered
linearly (the reference lowers it by lr / epochs_decay after each epoch past ``epochs``), a
checkpoint and a log row after every epoch.

Every epoch's randomness (the order of triplets and the dropout masks) comes from a generator
seeded by (seed, epoch), so a resumed run continues exactly as an uninterrupted one would.
"""
import concurrent.futures
import math
import os

import numpy as np

from ..evaluation.bapps import load_patch
from . import checkpoint

LOADER_THREADS = 4  # the reference's nThreads


def learning_rate(lr, epoch, epochs, epochs_decay):
    """The step size of (1-based) ``epoch``: ``lr`` through epoch ``epochs`` + 1, then
    lowered by lr / epochs_decay an epoch (the reference's ``update_learning_rate`` after
    each epoch past ``epochs``)."""
    lowered = max(0, epoch - epochs - 1)
    return lr * (1 - lowered / epochs_decay) if epochs_decay else lr


def _to_input(patches):
    return np.stack(patches).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1


def load_triplets(items, pool):
    """(ref, p0, p1) float32 (N, 3, 64, 64) in [-1, 1] for the (ref, p0, p1) path ``items``,
    patches loaded as the reference's loader does."""
    patches = list(pool.map(load_patch, [p for item in items for p in item]))
    return [_to_input(patches[k::3]) for k in range(3)]


def precompute_terms(judged, make_terms, batch_size=50, on_batch=None):
    """The channel terms of every triplet of ``judged`` (``make_terms`` a
    :class:`~metrics.lpips.training.precompute.TermMaker`): two (N, C_total) arrays."""
    parts0, parts1 = [], []
    with concurrent.futures.ThreadPoolExecutor(LOADER_THREADS) as pool:
        starts = range(0, len(judged.items), batch_size)
        for k, start in enumerate(starts):
            t0, t1 = make_terms(*load_triplets(judged.items[start:start + batch_size], pool))
            parts0.append(t0)
            parts1.append(t1)
            if on_batch is not None:
                on_batch(k + 1, len(starts))
    return np.concatenate(parts0), np.concatenate(parts1)


def train(trainer, judged, out, epochs=5, epochs_decay=5, batch_size=50, seed=0, settings=None,
          resume=False, evaluate=None, on_batch=None, on_epoch=None, terms=None):
    """Trains ``trainer`` on ``judged`` (a :class:`~metrics.lpips.evaluation.bapps.Judged`
    2AFC set, or several joined) and checkpoints into ``out`` after every epoch.

    ``evaluate(out)`` -> {name: 2AFC score} is called after each epoch, once the epoch's
    weights are in ``out``, for the log;
    ``on_batch(done, count)`` and ``on_epoch(row)`` report progress. With ``resume`` the
    newest checkpoint in ``out`` (of the same ``settings``) is continued. ``terms`` (from
    :func:`precompute_terms`) trains on them instead of the images. Returns the log: one
    dict per epoch (epoch, lr, loss, accuracy, seconds, and the evaluation's scores)."""
    import time
    settings = dict(settings or {}, epochs=epochs, epochs_decay=epochs_decay,
                    batch_size=batch_size, seed=seed)
    first, log = 1, []
    if resume:
        done, log = checkpoint.load(out, trainer, settings)
        first = done + 1
    items, judgments = judged.items, np.asarray(judged.judgments, np.float32)
    batches = math.ceil(len(items) / batch_size)
    with concurrent.futures.ThreadPoolExecutor(LOADER_THREADS) as pool:
        for epoch in range(first, epochs + epochs_decay + 1):
            started = time.perf_counter()
            rng = np.random.default_rng([seed, epoch])
            lr = learning_rate(trainer.lr, epoch, epochs, epochs_decay)
            trainer.set_learning_rate(lr)
            order = rng.permutation(len(items))
            losses, agreement = [], []
            # One batch decodes ahead, on a worker that hands its patches to the others.
            if terms is None:
                next_batch = pool.submit(load_triplets, [items[i] for i in order[:batch_size]],
                                         pool)
            for b in range(batches):
                chosen = order[b * batch_size:(b + 1) * batch_size]
                if terms is not None:
                    result = trainer.step_terms(terms[0][chosen], terms[1][chosen],
                                                judgments[chosen])
                else:
                    ref, p0, p1 = next_batch.result()
                    if b + 1 < batches:  # decode the next batch while this one trains
                        following = order[(b + 1) * batch_size:(b + 2) * batch_size]
                        next_batch = pool.submit(load_triplets, [items[i] for i in following],
                                                 pool)
                    result = trainer.step(ref, p0, p1, judgments[chosen], rng)
                losses.append(result.loss * len(chosen))
                agreement.extend(result.accuracy)
                if on_batch is not None:
                    on_batch(b + 1, batches)
            row = {"epoch": epoch, "lr": lr, "loss": sum(losses) / len(items),
                   "accuracy": float(np.mean(agreement)),
                   "seconds": time.perf_counter() - started}
            checkpoint.save_weights(out, trainer, "epoch {} of {}, {}".format(
                epoch, epochs + epochs_decay, judged.name))  # what the evaluation loads
            if evaluate is not None:
                row.update(evaluate(out))
            log.append(row)
            checkpoint.save_state(out, trainer, settings, epoch, log)
            _write_log(os.path.join(out, "log.csv"), log)
            if on_epoch is not None:
                on_epoch(row)
    return log


def _write_log(path, log):
    """The per-epoch log as CSV, replaced whole."""
    import csv
    import io
    from ..data.atomic import atomic_path
    columns = list(dict.fromkeys(k for row in log for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(log)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(buf.getvalue())
