# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Training checkpoints, written whole or not at all.

In the output folder ``OUT``:
  * ``<model>_with_LPIPS.h5``: the trained network in the official layout (trunk and lin
    parameters, two lin sets for a ``spatial+X`` method), so that ``LPIPS(model,
    params_dir=OUT)``, ``--params-dir OUT`` and the evaluation tool load it as any weights
    file, with the comparison its lin layers were trained for (method, channel
    normalisation, input norm) recorded, which they are then only loaded for; replaced
    atomically after every epoch;
  * ``best/<model>_with_LPIPS.h5``: with validation, the weights of the epoch that scored
    highest on it (the first of equal ones);
  * ``checkpoints/epoch_NNN/``: what ``--resume`` needs: ``state.h5`` (every trained
    parameter, the ranking network's included, and the solver's m, v and t) and
    ``state.json`` (the settings, the epoch, the per-epoch log). Made in a temporary folder and
    renamed into place, so a run killed at any moment leaves the previous epoch's whole;
    older epochs are removed once a newer one is in place.
"""
import json
import os
import re
import shutil
import tempfile

import h5py
import numpy as np

from ..data.atomic import atomic_path
from ..data.settings import differences
from ..weights import registry
from ..weights.store import write_h5
from ..errors import UsageProblem

FOLDER = "checkpoints"
_EPOCH = re.compile(r"^epoch_(\d{3,})$")


class CheckpointError(UsageProblem, ValueError):
    """No checkpoint to resume from, or one of other settings."""


def weights_path(out, model):
    return os.path.join(out, registry.get_weight_file(model, "0.1").filename)


def save_weights(out, trainer, description):
    """The trained network as ``OUT/<model>_with_LPIPS.h5`` (replaced atomically), marked as
    trained (``description``: the run) so that loading it does not warn that its values are
    not the published ones."""
    net = trainer.net
    write_h5(weights_path(out, net.model),
             {name: value.d for name, value in net.parameters().items()}, trained=description,
             comparison=net.comparison)


BEST = "best"


def keep_as_best(out, model):
    """Copies the epoch's ``OUT/<model>_with_LPIPS.h5`` to ``OUT/best/`` (replaced
    atomically): the weights of the epoch with the highest validation score so far."""
    os.makedirs(os.path.join(out, BEST), exist_ok=True)
    with atomic_path(weights_path(os.path.join(out, BEST), model)) as tmp:
        shutil.copyfile(weights_path(out, model), tmp)


def save_state(out, trainer, settings, epoch, log):
    """What resuming after ``epoch`` (completed) needs, as one folder renamed into place."""
    folder = os.path.join(out, FOLDER)
    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".epoch-", dir=folder)
    try:
        with h5py.File(os.path.join(tmp, "state.h5"), "w") as f:
            for name, var in trainer.parameters().items():
                f.create_dataset("param/" + name, data=var.d)
            for name, state in trainer.solver.get_states().items():
                for key, value in state.pstate.items():
                    f.create_dataset("solver/{}/{}".format(name, key), data=value.d)
                f["solver/" + name].attrs["t"] = state.t
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump({"settings": settings, "epoch": epoch, "log": log}, f, indent=1)
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name), "rb") as f:
                os.fsync(f.fileno())
        final = os.path.join(folder, "epoch_{:03d}".format(epoch))
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for name in os.listdir(folder):
        match = _EPOCH.match(name)
        if (match and int(match.group(1)) < epoch) or name.startswith(".epoch-"):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def latest(out):
    """The newest complete checkpoint folder in ``out``, or None."""
    folder = os.path.join(out, FOLDER)
    if not os.path.isdir(folder):
        return None
    epochs = [(int(m.group(1)), name) for name in os.listdir(folder)
              for m in [_EPOCH.match(name)] if m]
    return os.path.join(folder, max(epochs)[1]) if epochs else None


def read_state(out):
    """The newest checkpoint folder in ``out`` and its ``state.json`` (settings, epoch, log).
    Raises CheckpointError when there is none."""
    found = latest(out)
    if found is None:
        raise CheckpointError("{} holds no checkpoint to resume from".format(out))
    with open(os.path.join(found, "state.json")) as f:
        return found, json.load(f)


# A resumed run may be given more epochs than it was started with (extended).
EXTENDABLE = ("epochs", "epochs_decay")


def check_resumable(out, settings, partial=False):
    """The newest checkpoint folder in ``out`` and its state, after checking that it was made
    with ``settings`` (with ``partial``, only the keys ``settings`` has: a command checks what
    its arguments say before it loads any data), the numbers of epochs aside, and that those
    cover the epochs done. Raises CheckpointError when there is no checkpoint or a setting
    differs."""
    found, state = read_state(out)
    made = {k: v for k, v in state["settings"].items() if k not in EXTENDABLE}
    asked = {k: v for k, v in settings.items() if k not in EXTENDABLE}
    differ = differences(asked, {k: made.get(k) for k in asked} if partial else made)
    if differ:
        raise CheckpointError("the checkpoint in {} was made with other settings ({}); resume "
                              "with the same ones, or train into another folder".format(
                                  found, differ))
    if all(k in settings for k in EXTENDABLE) and \
            settings["epochs"] + settings["epochs_decay"] < state["epoch"]:
        raise CheckpointError("{} has trained {} epochs already: --epochs and --epochs-decay "
                              "must add up to at least that".format(out, state["epoch"]))
    return found, state


def load(out, trainer, settings):
    """Restores ``trainer`` from the newest checkpoint in ``out``: returns (epoch, log).
    Raises CheckpointError when there is none or its settings differ from ``settings``."""
    found, state = check_resumable(out, settings)
    params = trainer.parameters()
    with h5py.File(os.path.join(found, "state.h5"), "r") as f:
        for name, var in params.items():
            var.d = np.asarray(f["param/" + name])
        states = trainer.solver.get_states()
        for name, solver_state in states.items():
            group = f["solver/" + name]
            for key, value in solver_state.pstate.items():
                value.d = np.asarray(group[key])
            solver_state.t = int(group.attrs["t"])
        trainer.solver.set_states(states)
    return state["epoch"], state["log"]
