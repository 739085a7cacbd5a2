# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Optimising an image through the metric with NNabla's solvers: the reference's
``perceptual_loss.py`` (an image pulled towards a target under LPIPS) and E-LPIPS'
barycenters (``ex_pairwise_average.py``, ``ex_bary10.py``: the image whose summed squared
distance to a set of images is least).

The image ``X`` is a parameter in [0, 1] (the metric sees 2X - 1), kept within ``TOLERANCE``
of the ends after every step, as E-LPIPS' examples do. Their step size schedule (used by
:func:`decaying_rate`) starts gently and then decays between 1/t and 1/sqrt(t). With an
E-LPIPS metric every step draws a new transformation (a new graph); with plain LPIPS the
graph is built once.
"""
import collections

import numpy as np

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S

from .elpips import ELPIPS

TOLERANCE = 1e-5  # how far X is kept from 0 and 1 (E-LPIPS' examples)

Step = collections.namedtuple("Step", ["step", "loss", "learning_rate"])


def decaying_rate(base):
    """E-LPIPS' barycenter schedule: base / (1 + 0.02 s^0.75), s = sqrt(100^2 + t^2) - 100."""
    def rate(t):
        s = np.sqrt(100.0 ** 2 + t ** 2) - 100.0
        return base / (1.0 + 0.02 * s ** 0.75)
    return rate


def constant_rate(base):
    return lambda t: base


def noise_start(shape, rng):
    """E-LPIPS' initial image: 0.5 + 0.2 N(0, 1) per value, clipped."""
    return np.clip(0.5 + 0.2 * rng.standard_normal(shape), TOLERANCE, 1 - TOLERANCE).astype(
        np.float32)


def blurred_start(image, sigma=4.0):
    """A Gaussian-blurred copy of ``image`` (1, 3, H, W) in [0, 1]: a start near the target."""
    from scipy.ndimage import gaussian_filter
    return np.clip(gaussian_filter(image, (0, 0, sigma, sigma), mode="reflect"),
                   TOLERANCE, 1 - TOLERANCE).astype(np.float32)


class Objective(object):
    """Sum over ``targets`` (K, 3, H, W) in [0, 1] of d(X, target)^``power``, d being
    ``metric`` (an :class:`~metrics.lpips.lpips.LPIPS` or an
    :class:`~metrics.lpips.elpips.ELPIPS`). With ``per_step`` = k, each step takes k targets
    drawn at random (E-LPIPS' ``ex_bary10.py`` takes one), an unbiased estimate of the sum
    up to the factor K / k."""

    def __init__(self, metric, targets, power=1, per_step=None):
        self.metric, self.power = metric, power
        self.targets = np.ascontiguousarray(targets, dtype=np.float32)
        self.per_step = per_step
        self._fixed = None

    @property
    def stochastic(self):
        return isinstance(self.metric, ELPIPS) or self.per_step is not None

    def graph(self, x, rng):
        """The loss of ``x`` (a (1, 3, H, W) Variable in [0, 1]) as a scalar Variable: built
        once, or (stochastic objectives) for every step."""
        if self._fixed is not None:
            return self._fixed
        targets = self.targets
        if self.per_step is not None:
            targets = targets[rng.choice(len(targets), self.per_step, replace=False)]
        count = len(targets)
        image = F.tile(x, (count, 1, 1, 1)) * 2 - 1
        other = nn.Variable.from_numpy_array(targets * 2 - 1)
        if isinstance(self.metric, ELPIPS):
            d = self.metric(image, other, rng)
        else:
            d = self.metric(image, other)
        loss = F.sum(d ** self.power if self.power != 1 else d)
        if not self.stochastic:
            self._fixed = loss
        return loss

    def value(self, x, draws=8):
        """The objective at ``x`` ((1, 3, H, W) array in [0, 1]) over all targets: exact for
        LPIPS; for E-LPIPS the mean of ``draws`` draws, seeded alike for every ``x`` (so two
        values differ by the images, not the draws)."""
        whole = Objective(self.metric, self.targets, self.power)
        total = 0.0
        repeats = draws if isinstance(self.metric, ELPIPS) else 1
        with nn.auto_forward(False), nn.no_grad():
            v = nn.Variable.from_numpy_array(x)
            for k in range(repeats):
                whole._fixed = None
                loss = whole.graph(v, np.random.default_rng(k))
                loss.forward(clear_buffer=True)
                total += float(loss.d)
        return total / repeats


def optimize(objective, start, steps, rate, rng, on_step=None):
    """Adam (betas 0.9, 0.999) on ``objective`` from ``start`` (1, 3, H, W) in [0, 1] for
    ``steps`` steps, the step size ``rate(t)``; X is clipped to [TOLERANCE, 1 - TOLERANCE]
    after each. ``on_step(Step, X array)`` sees every step's loss (before its update).
    Returns X."""
    x = nn.Variable.from_numpy_array(np.array(start, np.float32), need_grad=True)
    solver = S.Adam(alpha=rate(0), beta1=0.9, beta2=0.999)
    solver.set_parameters({"x": x})
    with nn.auto_forward(False):
        for t in range(steps):
            loss = objective.graph(x, rng)
            solver.set_learning_rate(rate(t))
            loss.forward(clear_no_need_grad=True)
            if on_step is not None:
                on_step(Step(t, float(loss.d), rate(t)), x.d)
            solver.zero_grad()
            loss.backward(clear_buffer=True)
            solver.update()
            x.d = np.clip(x.d, TOLERANCE, 1 - TOLERANCE)
    return x.d.copy()
