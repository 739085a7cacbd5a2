# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS, the learned perceptual image patch similarity (Zhang et al., CVPR 2018), in NNabla.

The metric: ``LPIPS`` builds the graph (a metric and a differentiable loss) from
:mod:`trunks` and :mod:`distances`. Around it: :mod:`weights` (the pretrained files),
:mod:`engines` (``Scorer`` and ``distance`` on numpy arrays, fast), :mod:`data` (files in,
reports out), :mod:`evaluation` (agreement with human judgments) and :mod:`cli` (what the
commands share); one module per command (``compute``, ``convert``, ``evaluate``,
``datasets``). ``ARCHITECTURE.md`` at the repository's root has the map.
"""
import os as _os
import signal as _signal
import sys as _sys
import threading as _threading

if _sys.argv[:1] == ["-m"] and _threading.current_thread() is _threading.main_thread():
    # Loading as ``python -m metrics.lpips.<command>`` (argv[0] is "-m" until the command is
    # found). Ctrl-C or SIGTERM during the imports (NNabla's take about a second) exits at
    # once and quietly: a KeyboardInterrupt inside NNabla's initialisation printed a traceback
    # and crashed its exit handler (segfaults in 4 of 16 tries, measured). The command
    # installs its own handlers when it starts.
    def _quit_while_loading(signum, frame):
        _os._exit(128 + signum)

    for _signum in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(_signum, _quit_while_loading)

from .engines import Scorer, distance  # noqa: E402
from .lpips import LPIPS  # noqa: E402
from .trunks import TRUNKS  # noqa: E402
from .weights import WeightsError  # noqa: E402

__all__ = ["LPIPS", "Scorer", "distance", "TRUNKS", "WeightsError"]
