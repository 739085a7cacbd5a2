# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Exit codes, logging and output, the same for every command."""
import logging
import os
import sys

from ..data.atomic import atomic_path, written_in_place
from ..errors import EnvironmentProblem, UsageProblem

logger = logging.getLogger(__name__)




def configure_logging(quiet=False, rank=0):
    """Diagnostics to stderr: INFO from the first process, only warnings with ``quiet`` and
    from the other MPI ranks. NNabla configures the root logger when imported; this replaces
    that configuration."""
    level = logging.WARNING if quiet or rank > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr,
                        force=True)
    logging.getLogger("nnabla").setLevel(level)


class OutputError(EnvironmentProblem, RuntimeError):
    """An output cannot be written (a full disk, a closed pipe, a path that is no file)."""


def _cannot_make(path):
    """Why ``path`` (which does not exist) cannot be made, or None: the nearest existing path
    above it is a file, or a folder we may not write in."""
    above = os.path.dirname(path)
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        return "{} is a file, not a folder".format(above)
    if not os.access(above, os.W_OK | os.X_OK):
        return "no permission to write in {}".format(above)
    return None


def check_output_path(outfile):
    """Raises OutputError, before any work, when ``outfile`` cannot be a file we write: a
    directory, or a path under a file. (A full disk is only found when writing.)"""
    if written_in_place(outfile):
        return
    real = os.path.realpath(outfile)
    if os.path.isdir(real):
        raise OutputError("{} is a directory; -o takes a file name".format(outfile))
    why = None if os.path.exists(real) else _cannot_make(real)
    if why:
        raise OutputError("{} cannot be made: {}".format(outfile, why))


def check_output_folder(folder, option):
    """UsageProblem, before any work, when ``folder`` (given as ``option``) cannot be a folder
    we write in: a file, a path under a file, or a place without write permission."""
    real = os.path.realpath(folder)
    if os.path.exists(real) and not os.path.isdir(real):
        raise UsageProblem("{} {} is a file, not a folder".format(option, folder))
    if os.path.exists(real):
        why = None if os.access(real, os.W_OK | os.X_OK) else "no permission to write in it"
    else:
        why = _cannot_make(real)
    if why:
        raise UsageProblem("{} {} cannot be written: {}".format(option, folder, why))


def check_outputs(*paths):
    """A usage error for the first of ``paths`` (None skipped) that cannot be a file we
    write, before any work."""
    for path in filter(None, paths):
        try:
            check_output_path(path)
        except OutputError as e:
            raise UsageProblem(str(e)) from None


def check_model_version(model, version):
    """A usage error naming the models that have ``version``, when ``model`` has not."""
    from ..weights.registry import get_weight_file
    try:
        get_weight_file(model, version)
    except ValueError as e:
        raise UsageProblem(str(e)) from None


def require_matplotlib(what):
    """Raises EnvironmentProblem (exit 4, before any work) when matplotlib, which ``what``
    needs, does not import."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise EnvironmentProblem("{} needs matplotlib (pip install matplotlib): {}".format(
            what, e)) from None


def _stdout_gone():
    # Later writes (and the interpreter's own flush at exit) go nowhere instead of failing.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def write_output(text, outfile=None):
    """Writes ``text`` to stdout, or whole to ``outfile`` (atomically: an error or Ctrl-C
    leaves the old file, or none). Raises OutputError when it cannot."""
    if outfile is None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            _stdout_gone()
            raise OutputError("stdout was closed before all output was written") from None
        except OSError as e:
            _stdout_gone()
            raise OutputError("cannot write to stdout: {}".format(e.strerror or e)) from None
        return
    try:
        with atomic_path(outfile) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
    except OSError as e:
        raise OutputError("cannot write {}: {}".format(outfile, e.strerror or e)) from None
    logger.info("written to %s", outfile)


# E-LPIPS ensembles hold every draw's masks and transformed images: without --max-memory they
# took 4.2 (compute) and 5.2 GB (compare) of a third of the free memory on one 400x357 pair;
# this default keeps them laptop-sized (passes shrink; the samples do not change).
ENSEMBLE_DEFAULT_BUDGET = 2 << 30


def memory_budget(args, ensemble=False):
    """``--max-memory`` in bytes (None: the default budget; for an E-LPIPS ``ensemble`` at most
    ``ENSEMBLE_DEFAULT_BUDGET``); a usage error unless positive."""
    if args.max_memory is None:
        if ensemble:
            from ..engines.tiling import default_budget
            return min(default_budget(), ENSEMBLE_DEFAULT_BUDGET)
        return None
    if not args.max_memory > 0:
        raise UsageProblem("--max-memory must be a positive number of GiB")
    return args.max_memory * (1 << 30)
