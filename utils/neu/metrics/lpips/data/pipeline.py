# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The input pipeline every command shares: items in, decoded arrays out, batched by shape.

    for out in batches(enumerate(pairs), load, batch_size=32, stop=stop_if_interrupted):
        if isinstance(out, Failure):
            ...  # out.index, out.item, out.error: that item could not be loaded
        else:
            ...  # out.indices, out.items, out.arrays: one stacked array per slot of load()

An item is anything ``load`` understands (a pair of paths, a 2AFC triplet, ...); ``load``
returns a tuple of arrays. Worker threads decode ahead of the caller, in chunks of items so
that futures and locks cost little per item, at a low priority (Linux) so that they take the
cores while the engine waits rather than delay it. Decoded items are grouped by the shapes
of their arrays; a group is yielded when it holds ``batch_size`` items, when too many items
or bytes are held back, and at the end. Within a group, and among failures, input order is
kept; the ``index`` of each item places it in the whole.
"""
import collections
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

Failure = collections.namedtuple("Failure", ["index", "item", "error"])
Failure.__doc__ = "An item that ``load`` rejected with one of the expected errors."
Batch = collections.namedtuple("Batch", ["indices", "items", "arrays"])
Batch.__doc__ = """Items whose arrays share their shapes: ``arrays`` holds one array per slot
of ``load``'s result, the items' arrays stacked on a new first axis in the order of ``indices``."""

CHUNK_SIZE = 8
# Decoded arrays held back (ahead of the caller, or in incomplete groups), at most, in bytes;
# the look-ahead shrinks to fit it once the first item's size is known (64 px pairs: all of
# it; 256 px pairs: about 80).
MAX_BYTES = 128 << 20


def _lower_priority():
    """Lowers the calling thread's priority (Linux; elsewhere a no-op). Decoders then run when
    the engine's threads wait instead of delaying them (measured: 500 pairs 3% faster)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def _load_chunk(load, chunk, errors):
    results = []
    for index, item in chunk:
        try:
            results.append((index, item, load(item), None))
        except errors as e:
            results.append((index, item, None, e))
    return results


def _nbytes(arrays):
    return sum(np.asarray(a).nbytes for a in arrays)


def decoded(items, load, errors=(ValueError,), workers=2, chunk_size=CHUNK_SIZE, lookahead=64,
            max_bytes=MAX_BYTES):
    """Yields ``(index, item, arrays, error)`` for each ``(index, item)`` of ``items``, in
    order: ``arrays`` is ``load(item)``, or None when it raised one of ``errors`` (then in
    ``error``); other exceptions propagate. At most ``lookahead`` items (and about
    ``max_bytes`` of arrays) are decoded ahead of the caller by ``workers`` threads. Closing
    the generator early (an error, Ctrl-C) cancels what is not decoding yet."""
    source = iter(items)
    with ThreadPoolExecutor(max_workers=workers, initializer=_lower_priority) as pool:
        pending = collections.deque()  # (number of items, future) per chunk, in input order
        # Items ahead, at most: one chunk until the first items' size is known (they may be
        # huge), then as many as ``lookahead`` and ``max_bytes`` allow.
        limit = [max(1, min(lookahead, chunk_size))]

        def fill():
            while sum(n for n, _ in pending) < limit[0]:
                chunk = list(itertools.islice(source, max(1, min(chunk_size, limit[0]))))
                if not chunk:
                    return
                pending.append((len(chunk), pool.submit(_load_chunk, load, chunk, errors)))

        try:
            fill()
            while pending:
                _, future = pending.popleft()
                results = future.result()
                sizes = [_nbytes(r[2]) for r in results if r[2] is not None]
                if sizes:
                    limit[0] = max(1, min(lookahead, max_bytes // max(1, max(sizes))))
                fill()  # the workers go on while the caller handles this chunk
                for result in results:
                    yield result
        finally:
            for _, future in pending:
                future.cancel()


def batches(items, load, batch_size, stop=None, errors=(ValueError,), workers=2,
            chunk_size=CHUNK_SIZE, lookahead=None, max_buffered=None, max_bytes=MAX_BYTES):
    """Yields :class:`Batch` es of up to ``batch_size`` equal-shaped items and
    :class:`Failure` s, from ``items`` of ``(index, item)`` decoded by ``load`` (see
    :func:`decoded`; ``lookahead`` defaults to 4 batches: measured on 2 cores with 64 px PNG
    pairs, 5-7% faster than 2, as fast as 8).

    ``stop``, if given, is called between items and before each batch is yielded; it
    raises (for example ``KeyboardInterrupt``) to end the run there. Incomplete groups are
    yielded early, the largest first, when more than ``max_buffered`` items (default 4
    batches) or ``max_bytes`` are held back, so memory stays bounded with many shapes."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError("batch_size must be a positive integer, got {!r}".format(batch_size))
    lookahead = lookahead or 4 * batch_size
    max_buffered = max_buffered or 4 * batch_size
    groups = collections.OrderedDict()  # shapes and dtypes -> [(index, item, arrays)]
    held = {"items": 0, "bytes": 0}

    def take(key):
        group = groups.pop(key)
        held["items"] -= len(group)
        held["bytes"] -= sum(_nbytes(arrays) for _, _, arrays in group)
        if stop is not None:
            stop()
        slots = zip(*(arrays for _, _, arrays in group))
        return Batch([g[0] for g in group], [g[1] for g in group],
                     tuple(np.stack(slot) for slot in slots))

    for index, item, arrays, error in decoded(items, load, errors, workers, chunk_size,
                                              lookahead, max_bytes):
        if stop is not None:
            stop()
        if error is not None:
            yield Failure(index, item, error)
            continue
        key = tuple((a.shape, a.dtype.str) for a in arrays)
        groups.setdefault(key, []).append((index, item, arrays))
        held["items"] += 1
        held["bytes"] += _nbytes(arrays)
        if len(groups[key]) >= batch_size:
            yield take(key)
        elif held["items"] > max_buffered or held["bytes"] > max_bytes:
            yield take(max(groups, key=lambda k: len(groups[k])))
    for key in list(groups):
        yield take(key)
