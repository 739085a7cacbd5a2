# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS, the learned perceptual image patch similarity (Zhang et al., CVPR 2018), in NNabla.

The metric: ``LPIPS`` builds the graph (a metric and a differentiable loss) from
:mod:`trunks` and :mod:`distances`. Around it: :mod:`weights` (the pretrained files),
:mod:`engines` (``Scorer`` and ``distance`` on numpy arrays, fast), :mod:`data` (files in,
reports out) and :mod:`cli` (what the commands share); one module per command
(``compute``, ``convert``). ``ARCHITECTURE.md`` at the repository's root has the map.
"""
from .engines import Scorer, distance
from .lpips import LPIPS
from .trunks import TRUNKS
from .weights import WeightsError

__all__ = ["LPIPS", "Scorer", "distance", "TRUNKS", "WeightsError"]
