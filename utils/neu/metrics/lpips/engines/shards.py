# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Passes split into shards of the batch, run side by side on the cores by one single-threaded
ONNX Runtime session.

Why: a network of small maps leaves ONNX Runtime's intra-op threads waiting on each other at
every operator. On 2 cores (AlexNet's "pairs" graph, ``benchmarks/bench_lpips.py``'s inputs),
two 1-thread sessions on half a batch each against one 2-thread session on the whole:
AlexNet 64 px x 32 pairs 2907 against 2004 pairs/s, 256 px x 8 172 against 130; VGG 64 px x 16
135 against 120, 256 px x 4 8.7 against 7.5. One 1-thread session run from two threads at once
is as fast (AlexNet 2798, VGG 139 at 64 px) and holds its weights once (VGG: 623 against
864 MB). ONNX Runtime releases the GIL while it runs, so Python threads are enough.
"""
import concurrent.futures
import os
import threading

import numpy as np

_POOL = None
_POOL_LOCK = threading.Lock()


def _forget_pool():
    """In a forked child the pool's threads are gone: the next pass makes a new pool."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool():
    """One thread pool for every engine of the process (its idle threads cost nothing)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="lpips-shard")
        return _POOL


# The fewest images a shard holds. Below 8 images ONNX Runtime's matrix products of
# Winograd's small maps take another path, whose rounding differs (scores by 1.5e-8): a
# pair's score would then depend on how its batch was split, and a resumed run (another
# batch size) would not equal an uninterrupted one.
MIN_SHARD_IMAGES = 8


def bounds(count, workers, minimum=1):
    """[(start, stop), ...]: ``count`` items in at most ``workers`` shards of near-equal size,
    each of at least ``minimum`` items (one shard when that is all there is)."""
    shards = max(1, min(workers, count // minimum))
    edges = [count * k // shards for k in range(shards + 1)]
    return list(zip(edges[:-1], edges[1:]))


def split_feed(feed, shard_bounds, pairs=False):
    """One feed per shard. Every input is batch-first; with ``pairs`` each holds 2N images,
    the pairs (i, N + i), and a shard takes both halves of its pairs."""
    feeds = []
    for start, stop in shard_bounds:
        shard = {}
        for name, value in feed.items():
            if pairs:
                half = len(value) // 2
                value = np.concatenate([value[start:stop], value[half + start:half + stop]])
            else:
                value = value[start:stop]
            shard[name] = np.ascontiguousarray(value)
        feeds.append(shard)
    return feeds


def side_by_side(fn, items):
    """``[fn(item) for item in items]``, run side by side; the calling thread runs the first.
    (One session may be run from several threads at once, its weights held once.)"""
    if len(items) == 1:
        return [fn(items[0])]
    others = [_pool().submit(fn, item) for item in items[1:]]
    return [fn(items[0])] + [o.result() for o in others]


def join(parts):
    """The shards' outputs (a list of arrays per shard), each joined along the batch."""
    if len(parts) == 1:
        return list(parts[0])
    return [np.concatenate(outputs) for outputs in zip(*parts)]
