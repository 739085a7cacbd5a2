# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Downloading a file so that a failure never leaves anything a later run would load."""
import requests

from ..data.atomic import atomic_path

CHUNK_BYTES = 1 << 20


class DownloadError(RuntimeError):
    """The file could not be fetched whole, or its content was rejected."""


def download_file(url, dest, check=None, timeout=30):
    """Streams ``url`` into a temporary file beside ``dest``, calls ``check(tmp_path)`` (which
    raises to reject the content), then renames it to ``dest``. On any failure the temporary
    file is removed and ``dest`` is left as it was."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out:
            try:
                with requests.get(url, stream=True, timeout=timeout) as response:
                    response.raise_for_status()
                    expected = response.headers.get("Content-Length")
                    received = 0
                    for chunk in response.iter_content(CHUNK_BYTES):
                        out.write(chunk)
                        received += len(chunk)
            except requests.RequestException as e:
                raise DownloadError("{}: {}".format(url, e)) from None
        if expected is not None and received != int(expected):
            raise DownloadError("{}: truncated, {} of {} bytes".format(url, received, expected))
        if check is not None:
            try:
                check(tmp)
            except Exception as e:  # the checker's own error type says why
                raise DownloadError("{}: content rejected: {}".format(url, e)) from None
