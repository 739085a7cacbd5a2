# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Choosing where NNabla computes: the cuDNN extension when it can be had, else the CPU.

Returns contexts; setting the global default context is left to the caller (the CLI)."""
import importlib
import logging

from nnabla.ext_utils import get_extension_context
from ..errors import EnvironmentProblem

logger = logging.getLogger(__name__)

CONTEXTS = ("auto", "cpu", "cudnn")


class ContextError(EnvironmentProblem, RuntimeError):
    """The requested compute context cannot be had on this machine."""


def _cuda_devices():
    """How many CUDA devices the cuDNN extension sees; raises ImportError without it."""
    importlib.import_module("nnabla_ext.cudnn")
    cuda = importlib.import_module("nnabla_ext.cuda")
    return int(cuda.get_device_count())


def choose_context(name="auto", device_id=0):
    """An NNabla context for ``name`` (one of ``CONTEXTS``).

    ``auto`` takes cuDNN when ``nnabla_ext.cudnn`` imports and sees ``device_id``, else the CPU;
    an explicit ``cudnn`` that cannot be had raises :class:`ContextError` instead of falling back.
    """
    if name not in CONTEXTS:
        raise ValueError("unknown context {!r}; expected one of {}".format(name, ", ".join(CONTEXTS)))
    if name == "cpu":
        return get_extension_context("cpu")
    try:
        devices = _cuda_devices()
        problem = None if device_id < devices else "device {} requested, {} found".format(
            device_id, devices)
    except (ImportError, RuntimeError, OSError) as e:  # missing wheel, driver or CUDA libraries
        problem = "the NNabla CUDA extension is not usable ({})".format(e)
    if problem is None:
        logger.info("computing with cuDNN on device %d", device_id)
        return get_extension_context("cudnn", device_id=str(device_id))
    if name == "cudnn":
        raise ContextError("cannot use cudnn: {}; install nnabla-ext-cuda matching your CUDA, "
                           "or pass -c cpu".format(problem))
    logger.info("computing on the CPU (%s)", problem)
    return get_extension_context("cpu")
