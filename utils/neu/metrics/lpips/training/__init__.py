# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Training the metric on 2AFC judgments, as the reference's ``train.py`` and
``lpips/trainer.py`` do: :mod:`ranking` (the network that turns two distances into a predicted
judgment, and its loss), :mod:`trainer` (the trainable LPIPS and one Adam step)."""
