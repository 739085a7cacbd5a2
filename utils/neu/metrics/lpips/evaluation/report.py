# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Evaluation results as a text table, CSV or JSON."""
import csv
import io
import json
import math


def _summary(results):
    scores = [r["score"] for r in results if not math.isnan(r["score"])]
    return {"count": len(scores), "mean": sum(scores) / len(scores) if scores else None}


def render(results, fmt, settings):
    """The results as a text table, CSV or JSON (per-item distances are left out)."""
    keys = ["dataset", "mode", "metric", "score", "count", "pearson", "spearman"]
    rows = [{k: r[k] for k in keys if k in r} for r in results]
    summary = _summary(results)
    if fmt == "json":
        return json.dumps({"settings": settings, "results": rows, "mean": summary["mean"]},
                          indent=1) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    width = max([len(r["dataset"]) for r in rows] + [7])
    lines = ["{:<{w}}  {:<4}  {:>7}  {:>6}  {:>8}  {:>8}".format(
        "dataset", "mode", "score", "count", "pearson", "spearman", w=width)]
    for r in rows:
        corr = ["{:8.4f}".format(r[k]) if k in r else "       -" for k in ("pearson", "spearman")]
        lines.append("{:<{w}}  {:<4}  {:6.2f}%  {:>6}  {}  {}".format(
            r["dataset"], r["mode"], 100 * r["score"], r["count"], *corr, w=width))
    if summary["mean"] is not None:
        lines.append("{:<{w}}  {:<4}  {:6.2f}%".format("mean", "", 100 * summary["mean"], w=width))
    return "# {}\n".format(results[0]["metric"]) + "\n".join(lines) + "\n"
