# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The speed layer: running the metric on numpy arrays, fast.

:class:`Scorer` batches arrays for an engine (:mod:`select` chooses one). Every engine keeps
the contract of :class:`base.Engine`: the NNabla engine (:mod:`nnabla_engine`, any NNabla
context) and the ONNX Runtime engine (:mod:`onnxruntime_engine`, CPU), which runs graphs
exported and cached by the :mod:`onnx` package. :mod:`tuning` holds how each trunk is run
best; :mod:`context` chooses where NNabla computes; :mod:`tiling` scores pairs too large for
the memory budget tile by tile. Every engine computes the same
:class:`~metrics.lpips.lpips.LPIPS` graph; none changes a score beyond float rounding.
"""
from .base import BackendError, Engine
from .scorer import Scorer, distance
from .select import BACKENDS, make_engine
from .tiling import TileTooLarge

__all__ = ["Scorer", "distance", "BACKENDS", "BackendError", "Engine", "TileTooLarge",
           "make_engine"]
