# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Progress of a long job on stderr: a tqdm bar on a terminal, a log line every few seconds
elsewhere (CI, files), nothing when turned off (``-q``, MPI ranks other than the first)."""
import contextlib
import logging
import os
import sys
import time

logger = logging.getLogger(__name__)

LOG_SECONDS = 5.0


def _eta(seconds):
    seconds = int(round(seconds))
    return "{}:{:02d}:{:02d}".format(seconds // 3600, seconds // 60 % 60, seconds % 60)


class Progress(object):
    """Counts finished items out of ``total``: ``update(n)`` after each step, ``close()`` at
    the end (or use it as a context manager).

    Args:
        total (int): items in the job.
        unit (str): what an item is ("pairs", "triplets", ...).
        verb (str): what is done to them ("scored", ...), for the log lines.
        enabled (bool): False shows nothing.
        stream: where the bar goes (default ``sys.stderr``); a terminal gets a bar.
        log_seconds (float): seconds between log lines when ``stream`` is not a terminal.
        initial (int): items done before this run (a resumed download); not in the rate.
        in_bytes (bool): the items are bytes, shown as kB, MB, GB.
    """

    def __init__(self, total, unit="pairs", verb="scored", enabled=True, stream=None,
                 log_seconds=LOG_SECONDS, initial=0, in_bytes=False):
        self.total, self.unit, self.verb = total, unit, verb
        self.done = self._initial = initial
        self._in_bytes = in_bytes
        self._started = time.monotonic()
        self._last_log = None
        self._log_seconds = log_seconds
        self._bar = None
        self._redirect = contextlib.ExitStack()
        stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled) and total > 0
        if self.enabled and _isatty(stream):
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm
            # A terminal that reports no size (a new pseudo-terminal) would hide the bar.
            size = {} if _columns(stream) > 0 else {"ncols": 80, "nrows": 20}
            units = ({"unit": "B", "unit_scale": True, "unit_divisor": 1024} if in_bytes else
                     {"unit": " " + unit})
            self._bar = tqdm(total=total, initial=initial, file=stream, dynamic_ncols=not size,
                             leave=False, smoothing=0.1, **units, **size)
            # Log records (a skipped file, a warning) are printed above the bar, not through it.
            self._redirect.enter_context(logging_redirect_tqdm())

    @property
    def rate(self):
        """Items per second so far (in this run)."""
        return (self.done - self._initial) / max(time.monotonic() - self._started, 1e-9)

    def update(self, n=1):
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled:
            now = time.monotonic()
            if self.done < self.total and (self._last_log is None or
                                           now - self._last_log >= self._log_seconds):
                self._last_log = now
                rate = self.rate
                left = _eta((self.total - self.done) / max(rate, 1e-9))
                if self._in_bytes:
                    logger.info("%s of %s %s, %s/s, about %s left", _megabytes(self.done),
                                _megabytes(self.total), self.verb, _megabytes(rate), left)
                else:
                    logger.info("%d/%d %s %s, %.1f %s/s, about %s left", self.done, self.total,
                                self.unit, self.verb, rate, self.unit, left)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._redirect.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _megabytes(n):
    return "{:.1f} MB".format(n / 1e6)


def _columns(stream):
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False
