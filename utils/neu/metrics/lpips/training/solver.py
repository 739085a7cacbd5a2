# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Adam as PyTorch computes it, on NNabla's solver.

NNabla's Adam adds epsilon to sqrt(v) before the bias correction of v, PyTorch after it:
w -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps). The two agree when NNabla's
epsilon is eps * sqrt(1 - b2^t), which changes with t; so the NNabla solver is made again
with that epsilon whenever it changes in float32, its state (m, v, t) carried over (with
beta2 0.999: most of the first 10,000 steps, none after step 16,101). Where gradients are
tiny the difference is not: at t = 1 NNabla's own formula moves a weight whose gradient is
1e-7 by a quarter of PyTorch's step.
"""
import numpy as np

import nnabla.solvers as S


class TorchAdam(object):
    """NNabla's Adam over ``params`` (dict name -> Variable), stepping as ``torch.optim.Adam``
    (lr, betas=(beta1, beta2), eps)."""

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self._params, self._lr = params, lr
        self._beta1, self._beta2, self._eps = beta1, beta2, eps
        self._solver, self._t = self._make(1), 0

    def _epsilon(self, t):
        """NNabla's epsilon for step ``t``, as NNabla keeps it (float32)."""
        return np.float32(self._eps * (1 - self._beta2 ** t) ** 0.5)

    def _make(self, t):
        solver = S.Adam(alpha=self._lr, beta1=self._beta1, beta2=self._beta2,
                        eps=float(self._epsilon(t)))
        solver.set_parameters(self._params)
        return solver

    def zero_grad(self):
        self._solver.zero_grad()

    def update(self):
        self._t += 1
        if self._t > 1 and self._epsilon(self._t) != self._epsilon(self._t - 1):
            states = self._solver.get_states()
            self._solver = self._make(self._t)
            self._solver.set_states(states)
        self._solver.update()

    def set_learning_rate(self, lr):
        self._lr = lr
        self._solver.set_learning_rate(lr)

    @property
    def learning_rate(self):
        return self._lr

    def get_states(self):
        return self._solver.get_states()

    def set_states(self, states):
        self._t = max((s.t for s in states.values()), default=0)
        self._solver = self._make(self._t + 1)
        self._solver.set_states(states)
