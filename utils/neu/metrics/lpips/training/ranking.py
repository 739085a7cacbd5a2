# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Ranking heads: two distances (N, 1, 1, 1) and the judgments (the fraction of people who
judged the second image closer, (N, 1, 1, 1)) in, the mean binary cross-entropy of the head's
prediction against them out.

* ``reference``: the reference's ``Dist2LogitLayer`` and ``BCERankingLoss``.
* ``monotone``: sigmoid(s (d0 - d1) + b), s > 0 (stored as log s): the probability can only
  grow with d0 - d1, so the distance cannot learn to rank backwards, which the reference's
  network allows (``docs/training.md`` compares what each learns). Its cross-entropy is taken
  from the logit (no log of a saturated sigmoid, and fewer functions in a step that is mostly
  their overhead)."""
import numpy as np

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

CHANNELS = 32
EPS = 0.1  # in d0 / (d1 + eps), as the reference
LAYERS = ("rank0", "rank1", "rank2")


def ranking_inputs(d0, d1):
    """The five features the reference feeds its ranking network: d0, d1, d0 - d1,
    d0 / (d1 + 0.1), d1 / (d0 + 0.1), along the channel axis."""
    return F.concatenate(d0, d1, d0 - d1, d0 / (d1 + EPS), d1 / (d0 + EPS), axis=1)


def ranking_probability(d0, d1):
    """1x1 convolutions 5 -> 32 -> LeakyReLU(0.2) -> 32 -> LeakyReLU(0.2) -> 1 -> sigmoid, in
    the current parameter scope (parameters ``rank0/conv/W`` ...): (N, 1, 1, 1)."""
    h = ranking_inputs(d0, d1)
    for k, name in enumerate(LAYERS):
        h = PF.convolution(h, CHANNELS if k < 2 else 1, (1, 1), name=name,
                           w_init=_torch_uniform(h.shape[1]), b_init=_torch_uniform(h.shape[1]))
        h = F.leaky_relu(h, alpha=0.2) if k < 2 else F.sigmoid(h)
    return h


INITIAL_SCALE = 10.0  # distances differ by ~0.01-0.1: s = 10 starts with probabilities near 1/2


def monotone_logit(d0, d1):
    """exp(log_scale) (d0 - d1) + bias, parameters in the current scope."""
    log_scale = nn.parameter.get_parameter_or_create(
        "log_scale", (1, 1, 1, 1), np.full((1, 1, 1, 1), np.log(INITIAL_SCALE), np.float32))
    bias = nn.parameter.get_parameter_or_create("bias", (1, 1, 1, 1),
                                                np.zeros((1, 1, 1, 1), np.float32))
    return F.exp(log_scale) * (d0 - d1) + bias


def reference_loss(d0, d1, judge):
    """The reference's loss: its network's probability, then torch's ``BCELoss``."""
    return bce(ranking_probability(d0, d1), judge)


def monotone_loss(d0, d1, judge):
    """Binary cross-entropy of sigmoid(:func:`monotone_logit`) against the judgments,
    computed from the logit z: softplus(z) - judge z. Not ``F.sigmoid_cross_entropy``:
    NNabla's takes its target as an integer, so a judgment of 0.6 counted as 0 and only
    unanimous ones as 1 (``tests/test_training.py`` keeps a check of that)."""
    logit = monotone_logit(d0, d1)
    return F.mean(F.softplus(logit) - judge * logit)


HEADS = {"reference": reference_loss, "monotone": monotone_loss}


def _torch_uniform(fan_in):
    """PyTorch's default for a 1x1 convolution: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from
    NNabla's seeded generator."""
    from nnabla.initializer import UniformInitializer
    bound = 1.0 / np.sqrt(fan_in)
    return UniformInitializer((-bound, bound))


def bce(probability, target):
    """Mean binary cross-entropy, torch's ``BCELoss`` (each log clamped at -100)."""
    log_p = F.maximum_scalar(F.log(probability), -100.0)
    log_q = F.maximum_scalar(F.log(1 - probability), -100.0)
    return -F.mean(target * log_p + (1 - target) * log_q)
