"""The shared input pipeline: order, batching by shape, errors per item, bounded look-ahead,
stopping between items, and its decoding threads."""
import os
import sys
import threading
import time

import numpy as np
import pytest

from metrics.lpips.data.pipeline import Batch, Failure, batches, decoded


def square(side):
    return lambda item: (np.full((side(item), side(item)), item, np.int32),)


def run(items, load, batch_size, **kw):
    return list(batches(list(enumerate(items)), load, batch_size, **kw))


def test_one_shape_keeps_input_order_in_full_batches():
    out = run(range(23), square(lambda i: 4), 5)
    assert all(isinstance(b, Batch) for b in out)
    assert [len(b.indices) for b in out] == [5, 5, 5, 5, 3]
    assert [i for b in out for i in b.indices] == list(range(23))
    for b in out:  # arrays stacked on a new axis, in the order of indices
        assert b.arrays[0].shape == (len(b.indices), 4, 4)
        assert b.arrays[0][:, 0, 0].tolist() == b.items


def test_shapes_are_grouped_and_every_item_comes_out_once():
    sides = [3, 5, 3, 3, 5, 7, 3, 5, 5, 3]
    out = run(range(len(sides)), square(lambda i: sides[i]), 3)
    assert sorted(i for b in out for i in b.indices) == list(range(len(sides)))
    for b in out:
        assert len({sides[i] for i in b.indices}) == 1  # one shape a batch
        assert b.indices == sorted(b.indices)  # input order within a shape
        assert len(b.indices) <= 3
    assert [b.indices for b in out][:2] == [[0, 2, 3], [1, 4, 7]]  # full groups go first


def test_many_shapes_are_flushed_early_to_bound_memory():
    # Every item a new shape: nothing fills a batch, so groups leave when 4 are held back.
    out = run(range(12), square(lambda i: i + 1), 8, max_buffered=4)
    assert [len(b.indices) for b in out] == [1] * 12
    assert [b.indices[0] for b in out][:3] == [0, 1, 2]


def test_failures_come_per_item_and_the_rest_is_scored():
    def load(item):
        if item in (2, 5):
            raise ValueError("bad item {}".format(item))
        return (np.zeros(2) + item,)

    out = run(range(8), load, 3)
    failures = [o for o in out if isinstance(o, Failure)]
    assert [(f.index, f.item, str(f.error)) for f in failures] == [(2, 2, "bad item 2"),
                                                                 (5, 5, "bad item 5")]
    assert [i for o in out if isinstance(o, Batch) for i in o.indices] == [0, 1, 3, 4, 6, 7]


def test_unexpected_errors_propagate():
    def load(item):
        raise RuntimeError("a bug, not a bad file")

    with pytest.raises(RuntimeError, match="a bug"):
        run(range(3), load, 2, errors=(ValueError,))


def test_look_ahead_is_bounded_by_items():
    started = []

    def load(item):
        started.append(item)
        return (np.zeros(1),)

    ahead = []
    for index, _, _, _ in decoded(enumerate(range(200)), load, lookahead=6, chunk_size=2):
        time.sleep(0.001)  # a slow consumer: the workers run ahead as far as they may
        ahead.append(len(started) - (index + 1))
    assert len(started) == 200
    assert max(ahead) <= 6 + 2  # the look-ahead, plus the chunk being handed out
    assert max(ahead) >= 4  # and it does decode ahead


def test_look_ahead_shrinks_for_large_items():
    started = []

    def load(item):
        started.append(item)
        return (np.zeros(1 << 18, np.uint8),)  # 256 kB an item

    ahead = []
    for index, _, _, _ in decoded(enumerate(range(60)), load, lookahead=40, chunk_size=1,
                                  max_bytes=1 << 20):
        time.sleep(0.002)
        ahead.append(len(started) - (index + 1))
    assert max(ahead) <= 4 + 1  # 1 MB holds 4 items, whatever the look-ahead in items


def test_stop_ends_the_run_between_items_and_cancels_the_rest():
    started, seen = [], []

    def load(item):
        started.append(item)
        time.sleep(0.002)
        return (np.zeros(1),)

    def stop():
        if len(seen) >= 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        for out in batches(list(enumerate(range(500))), load, 1, stop=stop, lookahead=8,
                           chunk_size=2):
            seen.extend(out.indices)
    assert seen == [0, 1, 2, 3, 4]
    time.sleep(0.1)  # anything still queued would start now
    assert len(started) <= 5 + 8 + 2 * 2  # the look-ahead and the chunks in the workers' hands


def test_stop_is_checked_before_the_batches_flushed_at_the_end():
    calls = []

    def stop():
        calls.append(1)
        if len(calls) > 3:  # the three items pass; the final flush must not
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(range(3), square(lambda i: 2), 10, stop=stop)


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch_size"):
        run(range(3), square(lambda i: 2), 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are Linux's")
def test_decoding_runs_on_low_priority_threads():
    priorities = []

    def load(item):
        priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return (np.zeros(1),)

    run(range(5), load, 2)
    assert priorities == [19] * 5
