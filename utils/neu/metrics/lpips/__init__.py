# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS, the learned perceptual image patch similarity (Zhang et al., CVPR 2018), in NNabla.

``LPIPS`` builds the graph (a metric and a differentiable loss); ``Scorer`` and
``distance`` score numpy images; ``trunks`` exposes the feature trunks on their own.
"""
from .lpips import LPIPS
from .scorer import Scorer, distance
from .trunks import TRUNKS
from .weights import WeightsError

__all__ = ["LPIPS", "Scorer", "distance", "TRUNKS", "WeightsError"]
