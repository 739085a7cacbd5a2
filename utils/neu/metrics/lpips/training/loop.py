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
import csv
import io
import logging
import os
import time

import numpy as np

from ..data.atomic import atomic_path
from ..evaluation.bapps import load_patch
from . import checkpoint
from .curves import write_monitor_series

logger = logging.getLogger(__name__)

LOADER_THREADS = 4  # the reference's nThreads


SCHEDULES = ("linear", "cosine", "plateau")
# plateau: the rate is halved each time this many epochs in a row have not beaten the best
# validation.
PLATEAU_EPOCHS = 2


def learning_rate(lr, epoch, epochs, epochs_decay, schedule="linear", log=()):
    """The step size of (1-based) ``epoch``. ``linear`` (the reference's
    ``update_learning_rate`` after each epoch past ``epochs``): ``lr`` through epoch
    ``epochs`` + 1, then lowered by lr / epochs_decay an epoch. ``cosine``: the same epochs
    at ``lr``, then along half a cosine over the decay epochs, from lr to lr / 2 (1 -
    cos(pi / epochs_decay)). ``plateau``: ``lr`` halved once for every run of
    :data:`PLATEAU_EPOCHS` epochs in ``log`` (the rows before this epoch) whose validation did
    not beat the best before it."""
    if schedule == "plateau":
        best, stalled, halvings = None, 0, 0
        for row in log:
            score = row.get("validation")
            if score is None:
                continue
            if best is None or score > best:
                best, stalled = score, 0
            else:
                stalled += 1
                if stalled == PLATEAU_EPOCHS:
                    halvings, stalled = halvings + 1, 0
        return lr * 0.5 ** halvings
    lowered = max(0, epoch - epochs - 1)
    if not epochs_decay:
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1 + np.cos(np.pi * lowered / epochs_decay))
    return lr * (1 - lowered / epochs_decay)


def to_input(patches):
    """uint8 (H, W, 3) patches -> the float32 (N, 3, H, W) batch in [-1, 1] training feeds."""
    return np.stack(patches).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1


def load_triplets(items, pool):
    """(ref, p0, p1) float32 (N, 3, 64, 64) in [-1, 1] for the (ref, p0, p1) path ``items``,
    patches loaded as the reference's loader does."""
    patches = list(pool.map(load_patch, [p for item in items for p in item]))
    return [to_input(patches[k::3]) for k in range(3)]


def _decoded_ahead(batches, pool):
    """The decoded triplets of each batch of (ref, p0, p1) path items, in order; the next
    batch decodes (on a worker that hands its patches to the others) while this one is used."""
    pending = pool.submit(load_triplets, batches[0], pool) if batches else None
    for k in range(len(batches)):
        current = pending.result()
        if k + 1 < len(batches):
            pending = pool.submit(load_triplets, batches[k + 1], pool)
        yield current


def _share(count, world):
    """This process's positions among ``count`` (contiguous blocks, the first ones a row
    longer); all of them without ``world``."""
    if world is None or world.size == 1:
        return np.arange(count)
    return np.array_split(np.arange(count), world.size)[world.rank]


def _allreduce(world, array):
    """The sum of ``array`` over the processes (float64 for scalars, the array's type else)."""
    from mpi4py import MPI
    buf = np.ascontiguousarray(array)
    world.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return buf


def sum_gradients(world, params, weight):
    """Each of ``params``' gradients times ``weight``, summed over the processes: on the
    device by NNabla's communicator when the world has one (``world.communicator``, GPUs),
    else through mpi4py on the host."""
    communicator = getattr(world, "communicator", None)
    if communicator is None:
        for var in params:
            var.g = _allreduce(world, var.g * weight)
        return
    grads = [var.grad for var in params]
    for grad in grads:
        grad *= weight
    communicator.all_reduce(grads, division=False, inplace=True)


def precompute_terms(judged, make_terms, batch_size=50, on_batch=None, world=None):
    """The channel terms of every triplet of ``judged`` (``make_terms`` a
    :class:`~metrics.lpips.training.precompute.TermMaker`): two (N, C_total) arrays. Under
    MPI (``world``) each process computes its block of triplets and all get the whole."""
    items = [judged.items[i] for i in _share(len(judged.items), world)]
    batches = [items[start:start + batch_size] for start in range(0, len(items), batch_size)]
    parts0, parts1 = [], []
    with concurrent.futures.ThreadPoolExecutor(LOADER_THREADS) as pool:
        for k, batch in enumerate(_decoded_ahead(batches, pool)):
            t0, t1 = make_terms(*batch)
            parts0.append(t0)
            parts1.append(t1)
            if on_batch is not None:
                on_batch(k + 1, len(batches))
    terms = np.concatenate(parts0), np.concatenate(parts1)
    if world is None or world.size == 1:
        return terms
    blocks = world.allgather(terms)
    return tuple(np.concatenate([block[k] for block in blocks]) for k in (0, 1))


def best_epoch(log):
    """(epoch, score) of the highest ``validation`` in ``log`` (the first of equal ones), or
    (None, None) when no row has one."""
    scored = [(row["validation"], -row["epoch"]) for row in log if "validation" in row]
    if not scored:
        return None, None
    score, negative = max(scored)
    return -negative, score


def train(trainer, judged, out, epochs=5, epochs_decay=5, batch_size=50, seed=0, settings=None,
          resume=False, evaluate=None, on_batch=None, on_epoch=None, terms=None, world=None,
          patience=None, schedule="linear"):
    """Trains ``trainer`` on ``judged`` (a :class:`~metrics.lpips.evaluation.bapps.Judged`
    2AFC set, or several joined) and checkpoints into ``out`` after every epoch.

    ``evaluate(out)`` -> {name: 2AFC score} is called after each epoch, once the epoch's
    weights are in ``out``, for the log; their mean is the epoch's ``validation``, and the
    weights of the epoch with the highest one are kept in ``out/best/``. With ``patience``,
    training stops once that many epochs in a row have not beaten the best (early stopping;
    the learning-rate schedule is not shortened). ``schedule``: see :func:`learning_rate`.
    ``on_batch(done, count)`` and ``on_epoch(row)``
    report progress. With ``resume`` the newest checkpoint in ``out`` (of the same
    ``settings``) is continued, up to ``epochs`` + ``epochs_decay``, which may be more than it
    was started with (extended). ``terms`` (from :func:`precompute_terms`) trains on them
    instead of the images. Under MPI (``world``: a ``rank``/``size``/``comm``/``allgather``
    object, as ``cli.mpi.World``) each process takes a block of every batch and the gradients
    are summed, weighted by the blocks' sizes, before each step: the same steps as one
    process, up to floating point; the first process writes the checkpoints and evaluates.
    Returns the log: one dict per epoch (epoch, lr, loss, accuracy, seconds, and the
    evaluation's scores)."""
    settings = dict(settings or {}, epochs=epochs, epochs_decay=epochs_decay,
                    batch_size=batch_size, seed=seed)
    if schedule != "linear":  # the reference's schedule keeps older checkpoints resumable
        settings["schedule"] = schedule
    first, log = 1, []
    if resume:
        done, log = checkpoint.load(out, trainer, settings)
        first = done + 1
        _note_extension(log, trainer.lr, epochs, epochs_decay, schedule)
        best, _ = best_epoch(log)
        if patience and best is not None and done - best >= patience:
            return log  # that run stopped early: there is nothing to continue
    if terms is not None and not resume:
        trainer.calibrate_head(*terms)
    first_process = world is None or world.rank == 0
    with concurrent.futures.ThreadPoolExecutor(LOADER_THREADS) as pool:
        for epoch in range(first, epochs + epochs_decay + 1):
            started = time.perf_counter()
            lr = learning_rate(trainer.lr, epoch, epochs, epochs_decay, schedule, log)
            trainer.set_learning_rate(lr)
            loss, agreement = _epoch(trainer, judged, np.random.default_rng([seed, epoch]),
                                     batch_size, pool, terms, world, on_batch)
            row = {"epoch": epoch, "lr": lr, "loss": loss, "accuracy": agreement,
                   "seconds": time.perf_counter() - started}
            if first_process:
                checkpoint.save_weights(out, trainer, "epoch {} of {}, {}".format(
                    epoch, epochs + epochs_decay, judged.name))  # what the evaluation loads
                if evaluate is not None:
                    scores = evaluate(out)
                    row.update(scores)
                    row["validation"] = float(np.mean(list(scores.values())))
            log.append(row)
            stop = False
            if first_process:
                best, _ = best_epoch(log)
                if best == epoch:
                    checkpoint.keep_as_best(out, trainer.net.model)
                checkpoint.save_state(out, trainer, settings, epoch, log)
                _write_log(os.path.join(out, "log.csv"), log)
                write_monitor_series(out, log)
                stop = bool(patience) and best is not None and epoch - best >= patience
            if world is not None and world.size > 1:
                stop = world.allgather(stop)[0]  # the others wait for the checkpoint
            if on_epoch is not None:
                on_epoch(row)
            if stop:
                break
    return log


def _note_extension(log, lr, epochs, epochs_decay, schedule):
    """Warns when the epochs a resumed run did ran at other rates than the schedule now asked
    for gives them (a run extended after its rate began to fall): the run then differs from one
    trained with these settings from the start. Extending at the full rate does not."""
    changed = [row["epoch"] for row in log
               if not np.isclose(row["lr"], learning_rate(lr, row["epoch"], epochs, epochs_decay,
                                                          schedule, log[:row["epoch"] - 1]),
                                 rtol=1e-9, atol=0)]
    if changed:
        logger.warning("epochs %s ran at other learning rates than --epochs %d --epochs-decay %d "
                       "give them: the run goes on from there, and differs from one trained "
                       "with these settings from the start", _epoch_ranges(changed), epochs,
                       epochs_decay)


def _epoch_ranges(epochs):
    """[3, 4, 5, 8] -> '3-5, 8'."""
    runs = []
    for e in epochs:
        if runs and e == runs[-1][1] + 1:
            runs[-1][1] = e
        else:
            runs.append([e, e])
    return ", ".join(str(a) if a == b else "{}-{}".format(a, b) for a, b in runs)


def _epoch(trainer, judged, rng, batch_size, pool, terms, world, on_batch):
    """One pass over ``judged`` in the order ``rng`` draws: (mean loss, mean agreement)."""
    items, judgments = judged.items, np.asarray(judged.judgments, np.float32)
    order = rng.permutation(len(items))
    batches = [order[start:start + batch_size] for start in range(0, len(items), batch_size)]
    mine = [batch[_share(len(batch), world)] for batch in batches]
    parallel = world is not None and world.size > 1
    params = list(trainer.parameters().values()) if parallel else None
    losses, agreement = [], []
    if terms is None:
        decoded = _decoded_ahead([[items[i] for i in chosen] for chosen in mine], pool)
    for b, chosen in enumerate(mine):
        if terms is not None:
            result = trainer.forward_backward_terms(terms[0], terms[1], judgments, chosen)
        else:
            ref, p0, p1 = next(decoded)
            rows = (_share(len(batches[b]), world), len(batches[b]))
            result = trainer.forward_backward(ref, p0, p1, judgments[chosen], rng, rows)
        loss = result.loss * len(chosen)
        if parallel:
            sum_gradients(world, params, np.float32(len(chosen) / len(batches[b])))
            loss = float(_allreduce(world, np.array([loss]))[0])
            agreement.extend(a for part in world.allgather(list(result.accuracy)) for a in part)
        else:
            agreement.extend(result.accuracy)
        trainer.update()
        losses.append(loss)
        if on_batch is not None:
            on_batch(b + 1, len(batches))
    return sum(losses) / len(items), float(np.mean(agreement))


def _write_log(path, log):
    """The per-epoch log as CSV, replaced whole."""
    columns = list(dict.fromkeys(k for row in log for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(log)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(buf.getvalue())
