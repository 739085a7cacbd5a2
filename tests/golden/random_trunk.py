"""Deterministic random trunk weights, made identically by the golden script (PyTorch side)
and by the tests (NNabla side) from a parameter's official name and shape."""
import zlib

import numpy as np

SEED = 20260101


def random_parameter(name, shape, seed=SEED):
    """He-normal kernels and small uniform biases, seeded by ``seed`` and ``name``."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return rng.uniform(-0.05, 0.05, shape).astype(np.float32)
