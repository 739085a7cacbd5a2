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
from .common import OutputError, check_output_path

FORMAT = "metrics.lpips journal 1"
SYNC_SECONDS = 5.0  # at most this much work is lost to a power cut (a crash loses none)


class JournalError(UsageProblem, ValueError):
    """A journal that belongs to other inputs or settings, or cannot be read: one line that
    says what to do, no usage."""
    show_usage = False


def settings_of(args, pairs):
    """What a journal must match to be resumed: the inputs (every pair, by digest) and what
    changes a score (model, version, resizing, distance method, metric, lin layers); not the
    backend, batch size or format."""
    # Names as the file system has them: bytes that are not UTF-8 are names too.
    digest = hashlib.sha256(b"\n".join(os.fsencode(os.path.abspath(a)) + b"\t"
                                       + os.fsencode(os.path.abspath(b))
                                       for a, b in pairs)).hexdigest()
    return dict({"pairs": len(pairs), "pairs_sha256": digest, "model": args.model,
                 "version": args.version, "resize": bool(args.resize), "metric": args.metric,
                 "colorspace": args.colorspace, "lin": args.lin},
                **method_options(args), **ensemble_options(args))


def journal_paths(outfile):
    """Every journal of ``outfile``: the single-process one and the MPI ranks' ones."""
    base = outfile + ".partial"
    return sorted(p for p in [base] + glob.glob(glob.escape(base) + ".*") if os.path.isfile(p))


def _load(path):
    """(header, entries) of the journal ``path``; JournalError when it is none (not UTF-8 JSON
    lines with our header). An empty file, or a header alone, has no entries."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError:
        text = None
    except OSError as e:
        raise JournalError("{} cannot be read ({}); delete it to start again".format(
            path, e.strerror or e)) from None
    lines = text.split("\n") if text is not None else None
    if lines == [""]:
        return None, []  # made, then killed before its header reached the disk
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise JournalError("{} is not a journal of this command: delete it (or choose another "
                           "-o) to start again".format(path))
    entries = []
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # empty, or cut by a crash mid-write
        if isinstance(entry, dict) and "i" in entry and ("s" in entry or "skip" in entry):
            entries.append(entry)
    return header, entries


def discard_scoreless(outfile):
    """Deletes ``outfile``'s journals that hold no result (a run stopped before its first
    batch: killed, interrupted, or ended by an input error), and returns the others.
    JournalError for one that is not a journal of this command."""
    kept = []
    for path in journal_paths(outfile):
        if _load(path)[1]:
            kept.append(path)
        else:
            os.remove(path)
    return kept


def read(outfile, settings):
    """Scores and skips recorded in ``outfile``'s journals: ({index: score}, [(index, path0,
    path1, reason)]). Raises JournalError when one was written for other inputs or settings,
    or is no journal of this command."""
    scores, skipped = {}, {}
    for path in journal_paths(outfile):
        header, entries = _load(path)
        if header is None:
            continue
        differ = differences(settings, header.get("settings", {}))
        if differ:
            raise JournalError("{} was written for other inputs or settings ({}); delete it to "
                               "start again, or run with the settings it was made with".format(
                                   path, differ))
        for entry in entries:
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
        self.recorded = 0  # results this run wrote
        try:  # the output's checks, for the journal beside it; folders made as the writer does
            check_output_path(self.path)
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
            self._file = open(self.path, "w" if new else "a", encoding="utf-8")
            if new:  # on disk before anything can stop the run: never an empty journal
                self._write({"format": FORMAT, "settings": settings})
                self._file.flush()
                os.fsync(self._file.fileno())
        except OSError as e:
            raise OutputError("cannot write the journal {}: {}".format(
                self.path, e.strerror or e)) from None
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
        self.recorded += len(scores) + len(skipped)
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
