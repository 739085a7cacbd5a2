# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Training the metric on 2AFC judgments, as the reference's ``train.py`` and
``lpips/trainer.py`` do: :mod:`ranking` (the network that turns two distances into a predicted
judgment, and its loss), :mod:`trainer` (the trainable LPIPS and one Adam step)."""
import sys as _sys

# Every read or write of an NNabla array's values (``.d``) looks up the default context, and
# NNabla 1.39's compiled code first tries the module ``nnabla.nnabla_ext.cpu``, whose package
# ``nnabla.nnabla_ext`` does not exist: a search of the import path each time. Marking that
# package absent makes the attempt fail at once: a write and a read of an array took 75 us,
# now 23 (measured), and a step on precomputed terms makes about ten.
_sys.modules.setdefault("nnabla.nnabla_ext", None)
