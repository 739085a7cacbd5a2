# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Files in, reports out: reading images (:mod:`images`), finding and loading pairs
(:mod:`pairs`), the shared decode-ahead input pipeline (:mod:`pipeline`), score reports
(:mod:`report`), heat maps (:mod:`heatmap`) and atomic writes (:mod:`atomic`)."""
