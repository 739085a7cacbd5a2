# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The journal of a long run: scores appended next to the output as they are computed, so that
a crash, a kill or Ctrl-C loses minutes, not hours, and ``--resume`` scores only the rest.

``<outfile>.partial`` (``<outfile>.partial.<rank>`` for each MPI process): a JSON header line
naming the inputs and settings, then one JSON line per pair (``i`` its input index, ``p0``,
``p1``, and ``s`` the score or ``skip`` the reason; with ``--ensemble``, ``e`` the estimate's
half-width, standard error and count). A line cut by a crash is ignored.
"""
import glob
import hashlib
import json
import os
import time

from ..data.settings import differences
from ..ensemble import EnsembleScore
from .scoring import ensemble_options, method_options
from ..errors import UsageProblem

FORMAT = "metrics.lpips journal 1"
SYNC_SECONDS = 5.0  # at most this much work is lost to a power cut (a crash loses none)


class JournalError(UsageProblem, ValueError):
    """A journal that belongs to other inputs or settings, or cannot be read."""


def settings_of(args, pairs):
    """What a journal must match to be resumed: the inputs (every pair, by digest) and what
    changes a score (model, version, resizing, distance method); not the backend, batch size
    or format."""
    digest = hashlib.sha256("\n".join("{}\t{}".format(os.path.abspath(a), os.path.abspath(b))
                                      for a, b in pairs).encode("utf-8")).hexdigest()
    return dict({"pairs": len(pairs), "pairs_sha256": digest, "model": args.model,
                 "version": args.version, "resize": bool(args.resize)},
                **method_options(args), **ensemble_options(args))


def journal_paths(outfile):
    """Every journal of ``outfile``: the single-process one and the MPI ranks' ones."""
    base = outfile + ".partial"
    return sorted(p for p in [base] + glob.glob(glob.escape(base) + ".*") if os.path.isfile(p))


def read(outfile, settings):
    """Scores and skips recorded in ``outfile``'s journals: ({index: score}, [(index, path0,
    path1, reason)]). Raises JournalError when one was written for other inputs or settings."""
    scores, skipped = {}, {}
    for path in journal_paths(outfile):
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            raise JournalError("{} is not a journal of this command".format(path)) from None
        if header.get("format") != FORMAT:
            raise JournalError("{} is not a journal of this command".format(path))
        differ = differences(settings, header.get("settings", {}))
        if differ:
            raise JournalError("{} was written for other inputs or settings ({}); delete it to "
                               "start again, or run with the settings it was made with".format(
                                   path, differ))
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # empty, or cut by a crash mid-write
            if "skip" in entry:
                skipped[entry["i"]] = (entry["i"], entry["p0"], entry["p1"], entry["skip"])
            else:
                scores[entry["i"]] = (EnsembleScore(entry["s"], **entry["e"]) if "e" in entry
                                      else entry["s"])
    for i in scores:
        skipped.pop(i, None)
    return scores, sorted(skipped.values())


class Journal(object):
    """Appends this process's results to its journal; ``close()`` keeps it (an interrupted
    run), ``remove()`` deletes every journal of the output (a finished one)."""

    def __init__(self, outfile, settings, rank=0, size=1):
        self.outfile = outfile
        self.path = outfile + ".partial" + (".{}".format(rank) if size > 1 else "")
        new = not os.path.exists(self.path)
        self._file = open(self.path, "a", encoding="utf-8")
        if new:
            self._write({"format": FORMAT, "settings": settings})
        self._synced = time.monotonic()

    def _write(self, entry):
        self._file.write(json.dumps(entry) + "\n")

    def record(self, scores, skipped):
        """One batch's results: ``scores`` [(index, path0, path1, score)], ``skipped``
        [(index, path0, path1, reason)]. Written through at once; on disk every few seconds."""
        for i, p0, p1, s in scores:
            entry = {"i": i, "p0": p0, "p1": p1, "s": float(s)}
            if isinstance(s, EnsembleScore):
                entry["e"] = {"half_width": s.half_width, "stderr": s.stderr, "count": s.count}
            self._write(entry)
        for i, p0, p1, reason in skipped:
            self._write({"i": i, "p0": p0, "p1": p1, "skip": reason})
        self._file.flush()
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            os.fsync(self._file.fileno())
            self._synced = time.monotonic()

    def close(self):
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def remove(self):
        self.close()
        for path in journal_paths(self.outfile):
            os.remove(path)
