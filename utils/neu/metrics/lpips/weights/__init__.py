# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The pretrained parameters: which files exist (:mod:`registry`), where they are found and
how they are checked and read (:mod:`store`), fetched (:mod:`download`), and made from the
published PyTorch/JAX weights (:mod:`conversion`, through the restricted :mod:`pickles`)."""
from . import registry
from .registry import is_lin_parameter, lin_name
from .store import WeightsError, load_weights, resolve_params_dir

__all__ = ["registry", "WeightsError", "is_lin_parameter", "lin_name", "load_weights",
           "resolve_params_dir"]
