# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Downloading files so that a failure never leaves anything a later run would take as whole.

Two ways: ``download_file`` for small files (a temporary file renamed into place, nothing
kept on failure) and ``download_resumable`` for large ones (the bytes received so far are
kept in ``<dest>.part`` and the next call asks the server only for the rest).
"""
import os
import re
import time

import requests

from .atomic import atomic_path
from ..errors import EnvironmentProblem

CHUNK_BYTES = 1 << 16  # at most, per read
# Seconds to connect (an offline machine fails in this time) and between two received chunks.
TIMEOUT = (10, 60)
# A server that trickles (a byte every few seconds never trips the timeout above) is given up
# on when fewer than MIN_BYTES_PER_WINDOW arrive in WINDOW_SECONDS.
WINDOW_SECONDS = 60.0
MIN_BYTES_PER_WINDOW = 64 * 1024


class DownloadError(EnvironmentProblem, RuntimeError):
    """The file could not be fetched whole, or its content was rejected."""


class UnreachableError(DownloadError):
    """No answer from the server at all: offline, a wrong address, a firewall."""


def _get(url, timeout, headers=None):
    try:
        response = requests.get(url, stream=True, timeout=timeout, headers=headers or {})
    except requests.RequestException as e:
        raise UnreachableError("{}: {}".format(url, e)) from None
    return response


def _arriving(response):
    """The body in pieces as they arrive: a trickling server's few bytes come back at once
    (``iter_content`` would wait for a whole chunk), so a stall can be seen."""
    import urllib3
    try:
        while True:
            piece = response.raw.read1(CHUNK_BYTES, decode_content=True)
            if not piece:
                return
            yield piece
    except (urllib3.exceptions.HTTPError, OSError) as e:  # what iter_content would wrap
        raise requests.ConnectionError(str(e)) from None


def _copy(response, out, progress=None):
    """Writes the response body to ``out``; returns the number of bytes written. Raises
    DownloadError when the transfer stalls (see ``MIN_BYTES_PER_WINDOW``)."""
    received, window_start, window_bytes = 0, time.monotonic(), 0
    for chunk in _arriving(response):
        out.write(chunk)
        received += len(chunk)
        window_bytes += len(chunk)
        if progress is not None:
            progress(len(chunk))
        now = time.monotonic()
        if now - window_start >= WINDOW_SECONDS:
            if window_bytes < MIN_BYTES_PER_WINDOW:
                raise DownloadError("{}: stalled, {} bytes in the last {:.0f} s".format(
                    response.url, window_bytes, now - window_start))
            window_start, window_bytes = now, 0
    return received


def download_file(url, dest, check=None, timeout=TIMEOUT):
    """Streams ``url`` into a temporary file beside ``dest``, calls ``check(tmp_path)`` (which
    raises to reject the content), then renames it to ``dest``. On any failure the temporary
    file is removed and ``dest`` is left as it was."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out, _get(url, timeout) as response:
            try:
                response.raise_for_status()
                expected = response.headers.get("Content-Length")
                received = _copy(response, out)
            except requests.RequestException as e:
                raise DownloadError("{}: {}".format(url, e)) from None
        if expected is not None and received != int(expected):
            raise DownloadError("{}: truncated, {} of {} bytes".format(url, received, expected))
        if check is not None:
            try:
                check(tmp)
            except Exception as e:  # the checker's own error type says why
                raise DownloadError("{}: content rejected: {}".format(url, e)) from None


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+)")


def _content_range(response):
    """(first byte, total size) of a ranged answer; None where the header does not say."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if match is None:
        return None, None
    return (int(match.group(1)) if match.group(1) else None), int(match.group(2))


def part_path(dest):
    """Where ``download_resumable`` keeps the bytes of ``dest`` received so far."""
    return dest + ".part"


def download_resumable(url, dest, on_start=None, progress=None, timeout=TIMEOUT):
    """Downloads ``url`` to ``dest``, continuing an earlier interrupted download.

    ``dest`` appears only when every byte has arrived (checked against the size the server
    states). Until then the bytes are in ``part_path(dest)``; an error or Ctrl-C keeps them,
    and the next call asks for the rest with an HTTP range request (a server that ignores it
    sends the whole file again, which replaces them).

    Args:
        on_start: called once as ``on_start(total, have)`` (total size in bytes or None, bytes
            already here) before any byte is written; it may raise to stop (no disk space).
        progress: called with the size of every chunk written.

    Raises:
        UnreachableError: no connection to the server.
        DownloadError: an HTTP error, a connection cut mid-transfer (the bytes are kept),
            or an answer that does not fit what is here.
    """
    if os.path.exists(dest):
        return dest
    part = part_path(dest)
    have = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"Range": "bytes={}-".format(have)} if have else None
    with _get(url, timeout, headers) as response:
        if response.status_code == 416 and have:
            # Nothing left to send: the part is whole if the server's size says so.
            total = _content_range(response)[1]
            if total == have:
                os.replace(part, dest)
                return dest
            os.remove(part)
            raise DownloadError("{}: the {} bytes kept in {} do not fit the file on the server "
                                "({} bytes); they were removed, run again".format(
                                    url, have, part, total))
        try:
            response.raise_for_status()
        except requests.RequestException as e:
            raise DownloadError("{}: {}".format(url, e)) from None
        if response.status_code == 206:
            first, total = _content_range(response)
            if first != have:
                raise DownloadError("{}: asked for the bytes from {}, the server sent them "
                                    "from {}".format(url, have, first))
        else:  # a whole answer: any earlier part is replaced
            have = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
        if on_start is not None:
            on_start(total, have)
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        with open(part, "ab" if have else "wb") as out:
            try:
                _copy(response, out, progress)
            except (requests.RequestException, DownloadError) as e:
                raise DownloadError("{}: cut off after {} of {} bytes ({}); they are kept in {}, "
                                    "run again to resume".format(url, out.tell(), total or "?",
                                                                 e, part)) from None
            got = out.tell()
    if total is not None and got != total:
        raise DownloadError("{}: cut off after {} of {} bytes; they are kept in {}, run again to "
                            "resume".format(url, got, total, part))
    os.replace(part, dest)
    return dest
