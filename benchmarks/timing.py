"""Helpers shared by bench_lpips.py and reference_lpips.py (which runs under another Python,
so this module needs nothing but numpy)."""
import time

import numpy as np


def seeded_images(n, size, seed):
    """The same float32 (n, 3, size, size) images in [-1, 1] for our code and the reference."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 3, size, size), dtype=np.float32) * 2 - 1


def timed(step, count, seconds):
    """Items per second of ``step`` (``count`` items a call), after one warm-up call (graph
    building, exports, allocation), over at least ``seconds``."""
    step()
    done, start = 0, time.perf_counter()
    while True:
        step()
        done += count
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed
