# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Figures of evaluation results (matplotlib, an optional dependency: importing this module
raises ImportError without it)."""
import os

import numpy as np

from ..figures import plt, save_figure
from .report import names_in


def save(results, folder, human=None):
    """Writes ``2afc.png`` (each configuration's score per data set, values on the bars, the
    people's own agreement as a line over each group) and ``jnd.png`` (precision-recall
    curves) for the results of those modes into ``folder``; returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    written = []
    two_afc = [r for r in results if r["mode"] == "2afc"]
    if two_afc:
        written.append(_grouped_bars(two_afc, human or {}, os.path.join(folder, "2afc.png")))
    jnd = [r for r in results if r["mode"] == "jnd"]
    if jnd:
        several = len(names_in(jnd, "metric")) > 1
        figure, axes = plt.subplots(figsize=(4.5 if several else 4, 3.2))
        for r in jnd:
            name = "{} {}".format(r["metric"], r["dataset"]) if several else r["dataset"]
            axes.plot(r["recall"], r["precision"],
                      label="{} (mAP {:.1f}%)".format(name, 100 * r["score"]))
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        if not several:
            axes.set_title(jnd[0]["metric"])
        axes.legend(fontsize="x-small")
        written.append(save_figure(figure, os.path.join(folder, "jnd.png")))
    return written


def _grouped_bars(results, human, path):
    datasets, metrics = names_in(results, "dataset"), names_in(results, "metric")
    score = {(r["metric"], r["dataset"]): 100 * r["score"] for r in results}
    width = 0.8 / len(metrics)
    figure, axes = plt.subplots(figsize=(3.4 + len(datasets) * (0.6 + 0.45 * len(metrics)), 3.6))
    x = np.arange(len(datasets))
    for k, m in enumerate(metrics):
        values = [score[m, d] for d in datasets]
        bars = axes.bar(x - 0.4 + (k + 0.5) * width, values, width, label=m)
        axes.bar_label(bars, fmt="%.1f", fontsize="x-small", padding=1)
    for i, d in enumerate(datasets):
        if d in human:
            axes.hlines(100 * human[d], i - 0.45, i + 0.45, colors="black", linestyles="--",
                        label="human" if i == 0 else None)
    axes.set_xticks(x)
    axes.set_xticklabels(datasets, rotation=20 if len(datasets) > 3 else 0)
    axes.set_ylabel("2AFC score (%)")
    lowest = min(list(score.values()) + [100 * v for v in human.values()])
    axes.set_ylim(max(0, 10 * np.floor(lowest / 10) - 10), 100)
    if len(metrics) == 1:
        axes.set_title(metrics[0])
    axes.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    return save_figure(figure, path)
