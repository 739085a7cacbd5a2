# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Figures of evaluation results (matplotlib, an optional dependency: importing this module
raises ImportError without it)."""
import os

from ..figures import plt, save_figure


def save(results, folder):
    """Writes ``2afc.png`` (scores per data set) and ``jnd.png`` (precision-recall curves) for
    the results of those modes into ``folder``; returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    written = []
    two_afc = [r for r in results if r["mode"] == "2afc"]
    if two_afc:
        figure, axes = plt.subplots(figsize=(1.2 + 0.9 * len(two_afc), 3.2))
        axes.bar([r["dataset"] for r in two_afc], [100 * r["score"] for r in two_afc],
                 color="#3b6ea8")
        axes.set_ylabel("2AFC score (%)")
        axes.set_ylim(0, 100)
        axes.set_title(two_afc[0]["metric"])
        axes.tick_params(axis="x", rotation=30)
        written.append(save_figure(figure, os.path.join(folder, "2afc.png")))
    jnd = [r for r in results if r["mode"] == "jnd"]
    if jnd:
        figure, axes = plt.subplots(figsize=(4, 3.2))
        for r in jnd:
            axes.plot(r["recall"], r["precision"],
                      label="{} (mAP {:.1f}%)".format(r["dataset"], 100 * r["score"]))
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.set_title(jnd[0]["metric"])
        axes.legend(fontsize="small")
        written.append(save_figure(figure, os.path.join(folder, "jnd.png")))
    return written
