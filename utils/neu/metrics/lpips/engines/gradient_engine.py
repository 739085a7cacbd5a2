# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS's input gradient on ONNX Runtime: the forward pass keeps what the backward pass
reads, and the backward pass returns the images' gradients for given gradients of the
per-entry distance maps (a vector-Jacobian product). The graphs are
:mod:`.onnx.gradient_graphs`, built in memory from the network's own parameters (nothing is
written to the export cache) per image size, and compiled once per size and kind.

Direct convolutions only: the Winograd rewrite the scoring engine uses (:mod:`.onnx.winograd`)
was measured here too, on both passes: VGG 14% faster at 256 px but 35% slower at 64 px,
AlexNet 15-20% slower, and its filter transforms took VGG's peak memory from 1.0 to 1.9 GB.
"""
import collections
import os

import numpy as np

from ..distances import EPS, MIN_SQUARED_NORM, check_method
from . import shards
from .base import BackendError

# ONNX Runtime's memory arena keeps the largest pass's buffers for the next: 10-40% faster
# for small passes, but for large ones it held twice the memory (VGG, 8 x 256 px: 5.0 GB with
# it, 2.6 without, the same speed; benchmarks/bench_loss.py). Passes whose ReLU outputs take
# more than this many bytes run without it.
ARENA_MAX_BYTES = 256 << 20
# Passes whose ReLU outputs take more than this keep, of the ReLUs that are no taps, where
# they are positive (booleans) instead of their outputs (gradient_graphs' ``compact``):
# SqueezeNet, 8 x 256 px with a changing target, 1235 MB against 1395 at the same speed.
COMPACT_MIN_BYTES = 64 << 20

# What a forward pass leaves for the backward pass; ``inputs``: its (x0, x1, masks);
# ``saved``: per shard of the batch, its (start, stop) and the tensors kept. With ``rows``
# (the finite pairs' indices), ``saved`` is the Forward of those pairs alone.
Forward = collections.namedtuple("Forward", ["maps", "saved", "key", "both", "inputs", "rows"])


def head_of(net):
    """The :class:`.onnx.gradient_graphs.Head` of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`)."""
    from .onnx.gradient_graphs import Entry, Head
    count = len(net.trunk.taps)
    modifier = check_method(net.method).replace("spatial+", "")
    modifiers = ([None] * count if net.method.startswith("spatial") else []) + (
        [modifier] * count if modifier != "spatial" else [])
    params = net.parameters() if net.lpips else {}
    names = net.lin_names() if net.lpips else [None] * len(modifiers)
    entries = [Entry(k % count, m, params[name].d.copy() if net.lpips else None)
               for k, (m, name) in enumerate(zip(modifiers, names))]
    return Head(entries, net.channel_norm, EPS, MIN_SQUARED_NORM)


_shared_arena = []  # [True] once this process has registered it


def _use_shared_arena(ort, options):
    """Makes the session of ``options`` allocate from one memory arena shared by every session
    that asks for it (registered with ONNX Runtime's environment on first use; sessions that
    do not ask, as the scoring engine's, keep their own). Each session's own arena kept its
    largest pass's buffers apart from the others': the forward and backward sessions of one
    model held two sets (SqueezeNet, 8 x 256 px: 1477 MB peak with their own arenas, 935
    shared, at the same speed; VGG, 1 x 256 px: 1126 and 850)."""
    if not _shared_arena:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                 ort.OrtMemType.DEFAULT)
        # No limit, growing by powers of two (which measured less than growing as requested).
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 0, -1, -1))
        _shared_arena.append(True)
    options.add_session_config_entry("session.use_env_allocators", "1")


def available():
    """Whether what the gradient engine needs imports: ONNX Runtime and onnx."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def gradient_graphs_cover(net):
    """Whether the gradient graphs compute ``net``'s distance (all but the ``sort`` methods)."""
    return "sort" not in net.method


class GradientEngine(object):
    """Forward and backward passes of ``net``'s per-entry distance maps on ONNX Runtime's CPU
    kernels, ``threads`` of them (default: every core)."""

    def __init__(self, net, threads=None):
        try:
            import onnx  # noqa: F401  (the graphs are built with it)
            import onnxruntime
        except ImportError as e:
            raise BackendError("LPIPS on ONNX Runtime needs onnxruntime and onnx (`make setup` "
                               "installs them), or LPIPS(..., engine=\"nnabla\"): {}".format(e)) from None
        self._ort, self._net = onnxruntime, net
        self._threads = threads or os.cpu_count() or 1
        self._head = head_of(net)
        self.entry_count = len(self._head.entries)
        self._traces = {}    # (size, dropout) -> trace
        self._relu_elements = {}  # (size, dropout) -> an image's ReLU outputs' elements
        self._sessions = {}  # key (see _key) -> {kind: session}, see _session
        self._saved = {}  # key -> the names of the tensors the forward pass keeps
        self._constants = None  # the trunk's parameters, as traced
        self._flipped = {}  # the backward graphs' filters, shared between them
        self._target = None  # (the last fixed img1, its shards, per shard {name: its taps})

    def trace(self, size, dropout=False):
        """The trunk's :class:`.onnx.trace.Trace` for images of ``size`` = (H, W)."""
        key = (tuple(size), bool(dropout))
        if key not in self._traces:
            from .onnx.trace import trace_trunk
            trace = trace_trunk(self._net, size[0], size[1], dropout)
            if self._constants is None:  # one copy for every size (the same parameters)
                self._constants = trace.constants
            self._traces[key] = trace._replace(constants=self._constants)
            self._relu_elements[key] = sum(int(np.prod(trace.shapes[op.output]))
                                           for op in trace.ops if op.kind == "relu")
        return self._traces[key]

    def map_shapes(self, size):
        """The (1, h, w) of each entry's distance map for images of ``size``."""
        trace = self.trace(size)
        return [(1, 1, 1) if e.modifier == "mean" else (1,) + trace.shapes[trace.taps[e.tap]][1:]
                for e in self._head.entries]

    def _new_session(self, graph, arena, threads):
        options = self._ort.SessionOptions()
        options.enable_cpu_mem_arena = arena
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_external_initializers(
            list(graph.supplied),
            [self._ort.OrtValue.ortvalue_from_numpy(a) for a in graph.supplied.values()])
        if arena:
            _use_shared_arena(self._ort, options)
        return self._ort.InferenceSession(graph.model.SerializeToString(), options,
                                          providers=["CPUExecutionProvider"])

    def _key(self, shape, dropout, both, split=False):
        """Sessions are made per image size, dropout, kind of backward pass, arena, how ReLUs
        are kept (decided by the whole pass's size), and threads: one for a pass ``split``
        among the threads (:mod:`.shards`: measured for scoring, the same small maps), else
        all of them."""
        self.trace(shape[2:], dropout)
        activations = 8 * shape[0] * self._relu_elements[(tuple(shape[2:]), bool(dropout))]
        return (tuple(shape[2:]), bool(dropout), bool(both), activations <= ARENA_MAX_BYTES,
                activations > COMPACT_MIN_BYTES, 1 if split else self._threads)

    def _parts(self, count):
        """The shards of a pass of ``count`` pairs."""
        return shards.bounds(count, self._threads, shards.MIN_SHARD_IMAGES // 2)

    def _session(self, key, kind):
        """The session of ``kind`` for ``key`` (see :meth:`_key`): ``forward``, ``backward``,
        ``trunk`` (:meth:`features`) or ``given target`` (the forward pass taking img1's taps, without ``both`` or
        dropout); made when first asked. Making the last drops the first (a fixed target
        rarely changes), which is made again if it does."""
        from .onnx.gradient_graphs import backward_model, forward_model, trunk_model
        sessions = self._sessions.setdefault(key, {})
        if kind not in sessions:
            size, dropout, both, arena, compact, threads = key
            trace = self.trace(size, dropout)
            if kind == "trunk":
                graph = trunk_model(trace)
            elif kind == "backward":
                # The forward pass came first, and named what it keeps.
                graph = backward_model(trace, self._head, self._saved[key], both, self._flipped)
            else:
                graph, self._saved[key] = forward_model(trace, self._head, both,
                                                        kind == "given target", compact)
                if kind == "given target":
                    sessions.pop("forward", None)
            sessions[kind] = self._new_session(graph, arena, threads)
        return sessions[kind]

    def features(self, x):
        """The trunk's taps for ``x`` (N, 3, H, W float32 in [-1, 1]): a list of arrays."""
        x = np.ascontiguousarray(x, np.float32)
        parts = shards.bounds(len(x), self._threads, shards.MIN_SHARD_IMAGES)
        session = self._session(self._key(x.shape, False, False, len(parts) > 1), "trunk")
        return shards.join(shards.side_by_side(
            lambda part: session.run(None, {"x": x[part[0]:part[1]]}), parts))

    def forward(self, x0, x1, masks=None, both=False):
        """The per-entry maps between ``x0`` and ``x1`` (N, 3, H, W float32 in [-1, 1]), with
        E-LPIPS' ``masks`` (float32 (N, C, h, w) per convolution) when given: a
        :class:`Forward` that :meth:`backward` takes, keeping what the backward pass of
        ``x0`` (with ``both``, of both) reads. The kept tensors stay ONNX Runtime's values
        (converting them to numpy would copy each).

        When only ``x0`` needs a gradient and ``x1`` equals the previous call's (a fixed
        target, as in projection or image matching: compared exactly), its taps are reused
        and its trunk does not run again (the same values).

        A pair holding a NaN or an infinity gets NaN maps and gradients, as in the reference;
        the other pairs are computed without it (a max pool's index over a window of NaNs
        may point anywhere, and a gradient sent there would reach another image)."""
        finite = np.isfinite(x0).all(axis=(1, 2, 3)) & np.isfinite(x1).all(axis=(1, 2, 3))
        if finite.all():
            return self._forward(x0, x1, masks, both)
        rows = np.flatnonzero(finite)
        inner = self._forward(x0[rows], x1[rows], masks and [m[rows] for m in masks], both) \
            if rows.size else None
        maps = [np.full((len(x0),) + shape, np.nan, np.float32)
                for shape in self.map_shapes(x0.shape[2:])]
        for whole, part in zip(maps, inner.maps if inner else ()):
            whole[rows] = part
        return Forward(maps, inner, None, both, (x0, x1, masks), rows)

    def _forward(self, x0, x1, masks, both):
        from .onnx.gradient_graphs import target_taps
        x0, x1 = (np.ascontiguousarray(x, np.float32) for x in (x0, x1))
        masks = masks and [np.ascontiguousarray(m, np.float32) for m in masks]
        parts = self._parts(len(x0))
        key = self._key(x0.shape, masks is not None, both, len(parts) > 1)
        target, reusable = self._target, not both and masks is None
        if reusable and target is not None and target[0].shape == x1.shape \
                and np.array_equal(target[0], x1) and target[1] == parts:
            session, given = self._session(key, "given target"), target[2]
        else:
            session, given = self._session(key, "forward"), None
        names = [o.name for o in session.get_outputs()]
        count = self.entry_count

        def run(k):
            start, stop = parts[k]
            feed = {"x0": x0[start:stop]}
            feed.update(("m{}".format(i), m[start:stop]) for i, m in enumerate(masks or ()))
            if given is None:
                feed["x1"] = x1[start:stop]
            feed = {n: self._ort.OrtValue.ortvalue_from_numpy(v) for n, v in feed.items()}
            if given is not None:
                feed.update(given[k])
            values = session.run_with_ort_values(names, feed)
            saved = dict(zip(names[count:], values[count:]))
            saved.update((n, v) for n, v in feed.items()
                         if n.startswith("m") or n.startswith("saved1/"))
            return [v.numpy() for v in values[:count]], saved

        results = shards.side_by_side(run, list(range(len(parts))))
        if reusable and given is None:
            taps = target_taps(self.trace(x0.shape[2:]))
            self._target = (x1.copy(), parts, [{n: saved[n] for n in taps} for _, saved in results])
        return Forward(shards.join([maps for maps, _ in results]),
                       list(zip(parts, [saved for _, saved in results])), key, bool(both),
                       (x0, x1, masks), None)

    def backward(self, forward, map_grads, both=False):
        """[dx0] (or [dx0, dx1] when ``both``) from the maps' gradients ``map_grads``."""
        if forward.rows is not None:  # some pairs were not finite: see forward()
            grads = [np.full(x.shape, np.nan, np.float32) for x in forward.inputs[:2 if both else 1]]
            if forward.saved is not None:
                for whole, part in zip(grads, self.backward(
                        forward.saved, [g[forward.rows] for g in map_grads], both)):
                    whole[forward.rows] = part
            return grads
        if both and not forward.both:  # kept too little: run the forward pass again
            forward = self.forward(*forward.inputs, both=True)
        session = self._session(forward.key, "backward")
        map_grads = [np.ascontiguousarray(g, np.float32) for g in map_grads]
        names = ["dx0", "dx1"] if both else ["dx0"]

        def run(shard):
            (start, stop), saved = shard
            feed = dict(saved)
            feed.update(("g{}".format(k), self._ort.OrtValue.ortvalue_from_numpy(g[start:stop]))
                        for k, g in enumerate(map_grads))
            return [v.numpy() for v in session.run_with_ort_values(names, feed)]

        return shards.join(shards.side_by_side(run, forward.saved))
