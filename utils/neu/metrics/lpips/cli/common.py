# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Exit codes, logging and output, the same for every command."""
import logging
import sys

from ..data.atomic import atomic_path

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 2, 3, 4, 130


def configure_logging(quiet=False, rank=0):
    """Diagnostics to stderr: INFO from the first process, only warnings with ``quiet`` and
    from the other MPI ranks. NNabla configures the root logger when imported; this replaces
    that configuration."""
    level = logging.WARNING if quiet or rank > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr,
                        force=True)
    logging.getLogger("nnabla").setLevel(level)


def write_output(text, outfile=None):
    """Writes ``text`` to stdout, or whole to ``outfile`` (atomically: an error or Ctrl-C
    leaves the old file, or none)."""
    if outfile is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(outfile) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    logger.info("written to %s", outfile)
