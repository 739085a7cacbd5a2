# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Trunk runners: numpy [-1, 1] images in, numpy features out, computed by NNabla or ONNX
Runtime.

The ONNX Runtime runner also computes the distances, from a head exported from the same
:mod:`distances` graph: between features (``scores``) and, in one run from the images,
between pairs (``pair_scores``); the NNabla runner leaves them to the scorer's NNabla head.
Both give the same scores to about 1e-6 (checked by the tests to 1e-5).
"""
import hashlib
import logging
import os
import re

import nnabla as nn
import numpy as np

from .weights import resolve_params_dir

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "nnabla", "onnxruntime")


class BackendError(RuntimeError):
    """The requested backend cannot run here."""


class NNablaTrunk(object):
    """Runs the trunk with NNabla (on the current default context), one graph per shape.

    Its ``scores`` and ``pair_scores`` are None: the scorer's NNabla head computes the
    distances."""

    name = "nnabla"
    scores = pair_scores = None

    def __init__(self, net):
        self.net = net
        self._graphs = {}

    def __call__(self, x):
        shape = tuple(x.shape)
        if shape not in self._graphs:
            with nn.auto_forward(False), nn.no_grad():
                v = nn.Variable(shape)
                taps = self.net.features(v)
            for tap in taps:
                tap.persistent = True  # requested outputs survive clear_buffer
            self._graphs[shape] = (v, taps)
        v, taps = self._graphs[shape]
        v.d = x
        nn.forward_all(taps, clear_buffer=True)
        return [tap.d.copy() for tap in taps]


def _code_digest(kind):
    """A short digest of the code that builds a ``kind`` graph: the exporter, and the Winograd
    rewrite for the ``-winograd`` kinds. Entries made by other code are never used again."""
    from . import onnx_export, winograd
    h = hashlib.sha256(kind.encode("utf-8"))
    for module in [onnx_export] + ([winograd] if kind.endswith("winograd") else []):
        with open(module.__file__, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:8]


def _params_digest(net, kind):
    """A short digest of the parameters and options a ``kind`` graph of ``net`` bakes in."""
    has_trunk, has_head = not kind.startswith("head"), not kind.startswith("trunk")
    h = hashlib.sha256("{} {} scale={} lpips={}".format(
        net.model, kind, has_trunk and net.apply_scale, has_head and net.lpips).encode("utf-8"))
    for name, value in sorted(net.parameters().items()):
        if (has_head if name.startswith("lin") else has_trunk):
            h.update(name.encode("utf-8"))
            h.update(value.d.tobytes())
    return h.hexdigest()[:12]


def onnx_cache_path(net, kind, params_dir=None):
    """Where an exported graph is cached:
    ``<params dir>/onnx/<model>-<kind>-<code digest>-<parameters digest>.onnx``, ``kind`` being
    ``trunk``, ``head`` or ``pairs`` (trunk and head joined), the first and last with
    ``-winograd`` for Winograd convolutions. A changed exporter, rewrite, weight file or option
    never meets a stale entry."""
    folder = os.path.join(resolve_params_dir(params_dir), "onnx")
    return os.path.join(folder, "{}-{}-{}-{}.onnx".format(
        net.model, kind, _code_digest(kind), _params_digest(net, kind)))


def remove_stale_exports(path):
    """Deletes the cached graphs of ``path``'s model and kind that other versions of the code
    made (so upgrades do not pile up files of up to 235 MB); those of other weights stay."""
    folder, name = os.path.split(path)
    model_kind, code, _ = name.rsplit("-", 2)
    # <model>-<kind>-<code>-<params>.onnx, or this module's earlier <model>-<kind>-<digest>.onnx
    entry = re.compile(re.escape(model_kind) + r"-([0-9a-f]+)(-[0-9a-f]+)?\.onnx$")
    for other in os.listdir(folder):
        match = entry.match(other)
        if match and (match.group(2) is None or match.group(1) != code):
            logger.info("removing %s, exported by another version", other)
            try:
                os.remove(os.path.join(folder, other))
            except OSError:
                pass  # another process got there first, or it is read-only: harmless


class OnnxTrunk(object):
    """Runs the trunk, and the distance head, with ONNX Runtime on the CPU, from exports
    cached on disk (made when missing); each session is created when first used. With
    ``winograd`` (the default), the trunk's wide 3x3 and 5x5 convolutions use Winograd's
    algorithm: 1.4-1.8x faster, equal to the direct convolution to ~1e-6."""

    name = "onnxruntime"

    def __init__(self, net, params_dir=None, threads=None, winograd=True):
        try:
            import onnxruntime as ort
            from . import onnx_export
        except ImportError as e:
            raise BackendError("the onnxruntime backend needs onnxruntime, onnx and "
                               "nnabla-converter (`make setup` installs them): {}".format(e)) from None
        self._ort = ort
        self._options = ort.SessionOptions()
        self._options.intra_op_num_threads = threads or os.cpu_count() or 1
        self._options.inter_op_num_threads = 1
        # Two sessions (trunk, head) run in turn: idle workers must sleep, not spin, or
        # they take the cores from the other session (measured: 1.6x slower at 64 px).
        self._options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        suffix = "-winograd" if winograd else ""
        exports = [("trunk", lambda path: onnx_export.export_trunk(net, path, winograd)),
                   ("head", lambda path: onnx_export.export_head(net, path)),
                   ("pairs", lambda path: onnx_export.export_pairs(
                       self._paths["trunk"], self._paths["head"], path))]
        self._paths, self._sessions = {}, {}
        for role, export in exports:  # all up front: export errors belong to the set-up
            kind = role + (suffix if role != "head" else "")
            path = self._paths[role] = onnx_cache_path(net, kind, params_dir)
            if not os.path.isfile(path):
                logger.info("exporting the %s %s to %s", net.model, kind, path)
                export(path)
                remove_stale_exports(path)

    def _run(self, role, feed):
        if role not in self._sessions:
            self._sessions[role] = self._ort.InferenceSession(
                self._paths[role], self._options, providers=["CPUExecutionProvider"])
        return self._sessions[role].run(None, feed)

    def __call__(self, x):
        return self._run("trunk", {"x": x})

    def scores(self, feats0, feats1):
        """(N,) scores between two lists of features."""
        feed = {}
        for i, (a, b) in enumerate(zip(feats0, feats1)):
            feed["a{}".format(i)] = np.ascontiguousarray(a)
            feed["b{}".format(i)] = np.ascontiguousarray(b)
        return self._run("head", feed)[0].reshape(-1)

    def pair_scores(self, x):
        """(N,) scores of the pairs (x[i], x[N + i]) of 2N images, features kept inside."""
        return self._run("pairs", {"x": x})[0].reshape(-1)


def onnxruntime_available():
    try:
        import nnabla.utils.converter.onnx  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_trunk_runner(net, backend="auto", params_dir=None, threads=None, winograd=True):
    """A trunk runner for ``backend``: ``auto`` takes ONNX Runtime when NNabla computes on the
    CPU and ONNX Runtime is installed, else NNabla; an explicit backend that cannot run raises
    :class:`BackendError`. ``winograd`` is passed to :class:`OnnxTrunk`."""
    if backend not in BACKENDS:
        raise ValueError("unknown backend {!r}; expected one of {}".format(
            backend, ", ".join(BACKENDS)))
    on_cpu = nn.get_current_context().backend[0].startswith("cpu")
    if backend == "auto":
        backend = "onnxruntime" if on_cpu and onnxruntime_available() else "nnabla"
    if backend == "onnxruntime":
        if not on_cpu:
            raise BackendError("the onnxruntime backend runs on the CPU; use the nnabla backend "
                               "with a GPU context")
        runner = OnnxTrunk(net, params_dir, threads, winograd)
    else:
        runner = NNablaTrunk(net)
    logger.info("trunk backend: %s%s", runner.name,
                " (Winograd convolutions)" if runner.name == "onnxruntime" and winograd else "")
    return runner
