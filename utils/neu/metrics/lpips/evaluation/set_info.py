# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""What a judged data set holds, for ``datasets info``: counts, the judgments' histogram, the
images' sizes and, for 2AFC, how well people agree among themselves.

Two ceilings for 2AFC, from each triplet's share ``j`` of people who chose p1: ``human``, the
agreement a random person reaches with the others, mean(j^2 + (1 - j)^2) (the paper's "human"
row is this kind of figure); and ``best``, what a metric reaches by always taking the
majority's side, mean(max(j, 1 - j)).
"""
import collections
import json
import os

import numpy as np

from . import bapps


def read_sets(path):
    """The :class:`~.bapps.Judged` sets at ``path``: a CSV of judgments (2AFC or JND by its
    header), one data set folder (holding ``judge/`` or ``same/``), or a data root holding
    ``2afc/<split>/<name>/`` and ``jnd/<split>/<name>/`` folders."""
    if os.path.isfile(path):
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            header = [c.strip() for c in f.readline().split(",")]
        mode = "2afc" if bapps.JUDGMENT_FOLDER["2afc"] in header else "jnd"
        return [bapps.read_csv(path, mode)]
    if not os.path.isdir(path):
        raise bapps.DatasetError("{} is neither a judgment CSV nor a folder".format(path))
    for mode in bapps.MODES:
        if os.path.isdir(os.path.join(path, bapps.JUDGMENT_FOLDER[mode])):
            return [bapps.read_folder(path, mode)]
    found = []
    for mode in bapps.MODES:
        base = os.path.join(path, mode)
        for split in _folders(base):
            for name in _folders(os.path.join(base, split)):
                found.append(bapps.read_folder(os.path.join(base, split, name), mode,
                                               name="{}/{}/{}".format(mode, split, name)))
    if not found:
        raise bapps.DatasetError("{} holds no judged data set: expected a CSV, a folder with "
                                 "judge/ or same/, or a data root with 2afc/ or jnd/".format(path))
    return found


def _folders(path):
    """The sub-folders of ``path`` by name, hidden ones (a set being written) left out."""
    if not os.path.isdir(path):
        return []
    return sorted(n for n in os.listdir(path)
                  if not n.startswith(".") and os.path.isdir(os.path.join(path, n)))


def _size(path):
    from PIL import Image
    with Image.open(path) as image:  # reads the header only
        return "{}x{}".format(*image.size)


def describe(judged):
    """A dict of what ``judged`` holds (see the module's docstring)."""
    j = np.asarray(judged.judgments, dtype=np.float64)
    histogram = collections.Counter("{:.3g}".format(v) for v in j)
    sizes = collections.Counter(_size(p) for item in judged.items for p in item)
    info = {"name": judged.name, "mode": judged.mode, "count": len(judged.items),
            "judgments": dict(sorted(histogram.items(), key=lambda kv: float(kv[0]))),
            "mean_judgment": float(j.mean()),
            "image_sizes": dict(sizes.most_common())}
    if judged.mode == "2afc":
        info["human"] = human_agreement(j)
        info["best"] = float(np.mean(np.maximum(j, 1 - j)))
    return info


def human_agreement(judge):
    """The 2AFC agreement of a random person with the others: mean(j^2 + (1 - j)^2)."""
    j = np.asarray(judge, dtype=np.float64)
    return float(np.mean(j ** 2 + (1 - j) ** 2))


def render(infos, fmt="text"):
    """The descriptions as text or JSON."""
    if fmt == "json":
        return json.dumps({"sets": infos}, indent=1) + "\n"
    lines = []
    for info in infos:
        what = "triplets" if info["mode"] == "2afc" else "pairs"
        lines.append("{} ({}): {} {}".format(info["name"], info["mode"], info["count"], what))
        column = "judge (share choosing p1)" if info["mode"] == "2afc" else "same (share seeing none)"
        lines.append("  {}: {}; mean {:.3f}".format(column, ", ".join(
            "{} x{}".format(v, n) for v, n in info["judgments"].items()), info["mean_judgment"]))
        lines.append("  image sizes: {}".format(", ".join(
            "{} x{}".format(s, n) for s, n in info["image_sizes"].items())))
        if info["mode"] == "2afc":
            lines.append("  human agreement {:.4f}; majority (best a metric can do) {:.4f}".format(
                info["human"], info["best"]))
    return "\n".join(lines) + "\n"
