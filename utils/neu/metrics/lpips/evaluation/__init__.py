# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Judging a distance against people: the 2AFC and JND protocols of Zhang et al. (2018),
Sec. 5, over the distances of any metric (:mod:`protocols`)."""
