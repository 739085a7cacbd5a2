# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The speed layer: running the metric on numpy arrays, fast.

:class:`Scorer` batches arrays for an engine (:mod:`select` chooses one): the NNabla engine
(:mod:`nnabla_engine`, any NNabla context) or the ONNX Runtime engine (:mod:`onnxruntime_engine`,
CPU), which runs graphs exported by :mod:`onnx_export` with :mod:`winograd` convolutions.
:mod:`context` chooses where NNabla computes; :mod:`tiling` scores pairs too large for the
memory budget tile by tile. Every engine computes the same
:class:`~metrics.lpips.lpips.LPIPS` graph; none changes a score beyond float rounding.
"""
from .scorer import Scorer, distance
from .select import BACKENDS, BackendError, make_engine
from .tiling import TileTooLarge

__all__ = ["Scorer", "distance", "BACKENDS", "BackendError", "TileTooLarge", "make_engine"]
