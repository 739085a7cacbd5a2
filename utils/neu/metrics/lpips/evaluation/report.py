# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Evaluation results as a text table, CSV or JSON: one configuration's scores per data set,
or a grid (configurations by data sets) with the people's own agreement beside them."""
import csv
import io
import json
import math

KEYS = ["dataset", "mode", "metric", "score", "count", "pearson", "spearman"]


def _mean(scores):
    scores = [s for s in scores if not math.isnan(s)]
    return sum(scores) / len(scores) if scores else None


def names_in(results, key):
    """The distinct values of ``key`` in ``results``, in order of first appearance."""
    return list(dict.fromkeys(r[key] for r in results))


def render(results, fmt, settings, human=None):
    """The results as a text table, CSV or JSON (per-item distances are left out).
    ``human``: {dataset: the 2AFC agreement of a random person with the others}."""
    human = human or {}
    rows = [{k: r[k] for k in KEYS if k in r} for r in results]
    metrics = names_in(results, "metric")
    means = {m: _mean([r["score"] for r in results if r["metric"] == m]) for m in metrics}
    if fmt == "json":
        return json.dumps({"settings": settings, "results": rows,
                           "mean": means[metrics[0]] if len(metrics) == 1 else None,
                           "means": means, "human": human}, indent=1) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=KEYS, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(rows)
        writer.writerows({"dataset": name, "mode": "2afc", "metric": "human", "score": value}
                         for name, value in human.items())
        return buf.getvalue()
    if len(metrics) == 1:
        return _one_table(rows, means[metrics[0]], human)
    return _grid_table(results, metrics, means, human)


def _one_table(rows, mean, human):
    width = max([len(r["dataset"]) for r in rows] + [7])
    lines = ["{:<{w}}  {:<4}  {:>7}  {:>6}  {:>8}  {:>8}  {:>7}".format(
        "dataset", "mode", "score", "count", "pearson", "spearman", "human", w=width)]
    for r in rows:
        corr = ["{:8.4f}".format(r[k]) if k in r else "       -" for k in ("pearson", "spearman")]
        people = "{:6.2f}%".format(100 * human[r["dataset"]]) if r["dataset"] in human else "      -"
        lines.append("{:<{w}}  {:<4}  {:6.2f}%  {:>6}  {}  {}  {}".format(
            r["dataset"], r["mode"], 100 * r["score"], r["count"], *corr, people, w=width))
    if mean is not None:
        lines.append("{:<{w}}  {:<4}  {:6.2f}%".format("mean", "", 100 * mean, w=width))
    return "# {}\n".format(rows[0]["metric"]) + "\n".join(lines) + "\n"


def _grid_table(results, metrics, means, human):
    datasets = names_in(results, "dataset")
    score = {(r["metric"], r["dataset"]): r["score"] for r in results}
    mode = results[0]["mode"]
    first = max([len(m) for m in metrics] + [len("configuration")])
    widths = [max(len(d), 7) for d in datasets]
    head = "{:<{w}}".format("configuration", w=first) + "".join(
        "  {:>{w}}".format(d, w=w) for d, w in zip(datasets, widths)) + "  {:>7}".format("mean")
    lines = ["# {} ({}), by configuration and data set".format(
        "2AFC score" if mode == "2afc" else "JND mAP", "%"), head]
    for m in metrics:
        cells = "".join("  {:>{w}.2f}".format(100 * score[m, d], w=w)
                        for d, w in zip(datasets, widths))
        lines.append("{:<{w}}{}  {:>7.2f}".format(m, cells, 100 * means[m], w=first))
    if human:
        cells = "".join("  {:>{w}}".format("{:.2f}".format(100 * human[d]) if d in human else "-",
                                           w=w) for d, w in zip(datasets, widths))
        lines.append("{:<{w}}{}".format("human", cells, w=first))
    return "\n".join(lines) + "\n"
