# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Choosing the engine that runs a model: NNabla, or ONNX Runtime on the CPU."""
import logging

import nnabla as nn

from .base import BackendError

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "nnabla", "onnxruntime")


def onnxruntime_available():
    """Whether ONNX Runtime, onnx and NNabla's ONNX exporter all import."""
    try:
        import nnabla.utils.converter.onnx  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_engine(net, backend="auto", threads=None, winograd=None):
    """The engine for ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`) and ``backend`` (one of
    ``BACKENDS``): ``auto`` takes ONNX Runtime when NNabla computes on the CPU and ONNX Runtime
    is installed, else NNabla; an explicit backend that cannot run raises
    :class:`BackendError`. ``threads`` and ``winograd`` are ONNX Runtime's (see
    :class:`~metrics.lpips.engines.onnxruntime_engine.OnnxRuntimeEngine`)."""
    if backend not in BACKENDS:
        raise ValueError("unknown backend {!r}; expected one of {}".format(
            backend, ", ".join(BACKENDS)))
    on_cpu = nn.get_current_context().backend[0].startswith("cpu")
    chosen = backend
    if backend == "auto":
        backend = "onnxruntime" if on_cpu and onnxruntime_available() else "nnabla"
    engine = None
    if backend == "onnxruntime":
        if not on_cpu:
            raise BackendError("the onnxruntime backend runs on the CPU; use the nnabla backend "
                               "with a GPU context")
        from .onnxruntime_engine import OnnxRuntimeEngine
        try:
            engine = OnnxRuntimeEngine(net, threads, winograd)
        except OSError as e:  # the export cache cannot be written: read-only, blocked, full
            if chosen != "auto":
                raise BackendError("the onnxruntime backend cannot cache its exported graphs: "
                                   "{}".format(e)) from None
            logger.warning("ONNX Runtime cannot be used (its export cache: %s); NNabla runs "
                           "the model instead, more slowly", e)
    if engine is None:
        from .nnabla_engine import NNablaEngine
        engine = NNablaEngine(net)
    logger.info("backend: %s", engine.describe())
    return engine
