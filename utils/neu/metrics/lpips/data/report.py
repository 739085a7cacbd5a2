# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Formatting scores as text, CSV or JSON."""
import csv
import io
import json
import math
import re

from ..trunks import get_trunk

FORMATS = ("text", "csv", "json")
# What the original NNabla module's constructor printed on stdout, before any score.


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


# A file name's bytes that are not UTF-8, as Python holds them (os.fsdecode's surrogates).
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def encodable(path):
    """``path`` with the bytes of its name that are not UTF-8 written ``\\xe9``, so that a
    UTF-8 output can hold it (``caf\\xe9.png`` for a Latin-1 name)."""
    return _UNDECODABLE.sub(lambda m: "\\x{:02x}".format(ord(m.group()) - 0xdc00), path)


def printable(path):
    """``path`` with control characters escaped (a newline as ``\\n``), so that a file name
    cannot break a line-per-pair text output in two, and its non-UTF-8 bytes as
    :func:`encodable` writes them."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), "\\x{:02x}".format(ord(m.group()))),
                        encodable(path))


def summarize(scores):
    """Count, mean and standard error of the mean (sample std / sqrt(n); 0 for one score)."""
    n = len(scores)
    if n == 0:
        return {"count": 0, "mean": None, "stderr": None}
    mean = math.fsum(scores) / n
    var = math.fsum((s - mean) ** 2 for s in scores) / (n - 1) if n > 1 else 0.0
    return {"count": n, "mean": mean, "stderr": math.sqrt(var / n)}


def csv_header(ensemble=False, column="lpips"):
    """``path0,path1,<column>``; with an ensemble (scores with ``details()``) the estimate's
    precision too."""
    return "path0,path1,{}{}\n".format(column, ",half_width,stderr,draws" if ensemble else "")


def line(fmt, path0, path1, score):
    """One pair's line in the ``text`` or ``csv`` format (lines stand alone, so that they can
    be printed as the pairs are scored). An ensemble's score shows its 95% half-width and
    draws (text: ``0.016511 +- 0.000411 (2100 draws): path0 - path1``)."""
    details = score.details() if hasattr(score, "details") else None
    if fmt == "text":
        shown = "{:.6f}".format(score)
        if details:
            shown += " +- {:.6f} ({} draws)".format(details["half_width"], details["draws"])
        return "{}: {} - {}\n".format(shown, printable(path0), printable(path1))
    row = [encodable(path0), encodable(path1), repr(float(score))]
    if details:
        row += [repr(details["half_width"]), repr(details["stderr"]), details["draws"]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


def csv_summary(scores):
    """The CSV format's last line: ``# count= mean= stderr=``."""
    return "# count={count} mean={mean!r} stderr={stderr!r}\n".format(
        **summarize([float(s) for s in scores]))


def render(rows, fmt, info=None, skipped=(), column="lpips"):
    """``rows``: (path0, path1, score) in input order; ``skipped``: (path0, path1, reason);
    ``column``: what the scores are (``lpips``, or a classic metric's name).

    text: the original module's ``score: path0 - path1`` lines (6 decimals);
    csv: header ``path0,path1,<column>`` with full precision, then a ``#`` summary line;
    json: the settings, every pair (its score under ``column``), the skipped pairs and the
    summary.
    Ensemble scores also give their 95% half-width, standard error and draws (see :func:`line`).
    """
    if fmt in ("text", "csv"):
        lines = [line(fmt, p0, p1, s) for p0, p1, s in rows]
        if fmt == "csv":
            ensemble = any(hasattr(s, "details") for _, _, s in rows)
            lines = [csv_header(ensemble, column)] + lines + [csv_summary([s for _, _, s in rows])]
        return "".join(lines)
    if fmt == "json":
        summary = summarize([float(s) for _, _, s in rows])
        doc = dict(info or {})
        doc["pairs"] = [dict({"path0": encodable(p0), "path1": encodable(p1),
                              column: _json_number(s)},
                             **{k: _json_number(v)
                                for k, v in (s.details() if hasattr(s, "details") else {}).items()})
                        for p0, p1, s in rows]
        doc["skipped"] = [{"path0": encodable(p0), "path1": encodable(p1), "reason": r}
                          for p0, p1, r in skipped]
        doc["summary"] = {k: _json_number(v) for k, v in summary.items()}
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"
    raise ValueError("unknown format {!r}; expected one of {}".format(fmt, ", ".join(FORMATS)))


def _json_number(value):
    """JSON has no infinity or NaN (identical images' PSNR is inf): those are written null."""
    if value is None or isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def render_original(rows, model, single, outfile=None):
    """The original NNabla module's output, for scripts that parse it: (stdout text, file
    text or None). Scores have 3 decimals; one pair of images prints ``LPIPS: 0.123``; pairs
    print ``0.123: path0 - path1`` lines, in a file after an ``LPIPS`` header line (and stdout
    says where they went). The model line its constructor printed comes first."""
    trunk = get_trunk(model)
    stdout = "Use {}'s features\n".format(trunk.display_name) if trunk.in_original_module else ""
    if single:
        line = "".join("LPIPS: {:.3f}\n".format(s) for _, _, s in rows)
        return (stdout, line) if outfile else (stdout + line, None)
    lines = "".join("{:.3f}: {} - {}\n".format(s, printable(p0), printable(p1))
                    for p0, p1, s in rows)
    if outfile is None:
        return stdout + lines, None
    stdout += "All the computed LPIPS scores are recorded to {}.\n".format(outfile)
    return stdout, "LPIPS\n" + lines
