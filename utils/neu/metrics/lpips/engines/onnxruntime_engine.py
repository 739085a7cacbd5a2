# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The ONNX Runtime engine: the trunk and the distance head exported from the NNabla graphs
(:mod:`onnx_export`) and run by ONNX Runtime on the CPU, with the exports cached on disk.

Its scores equal the NNabla engine's to about 1e-6 (the tests hold them to 1e-5). Spatial
maps are computed from its features by the NNabla head (they need an upsampling to each
image size, which ONNX graphs exported at one size cannot do).
"""
import hashlib
import logging
import os
import re
import tempfile

import numpy as np

from ..weights.store import default_params_dir
from .nnabla_engine import NNablaEngine, NNablaHead
from .select import BackendError

logger = logging.getLogger(__name__)


def _code_digest(kind):
    """A short digest of the code that builds a ``kind`` entry: the metric's modules the graphs
    are built from (``lpips``, ``trunks``, ``distances``), the exporter and its weights file,
    and the Winograd rewrite for the ``-winograd`` kinds. Entries made by other code are never
    used again."""
    from . import onnx_export, onnx_weights, winograd
    from .. import distances, lpips, trunks
    h = hashlib.sha256(kind.encode("utf-8"))
    modules = [lpips, trunks, distances, onnx_export, onnx_weights]
    for module in modules + ([winograd] if "winograd" in kind else []):
        with open(module.__file__, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:8]


def parameter_hashes(net):
    """Each parameter of ``net``'s digest (name -> bytes), for :func:`onnx_cache_path`: an
    engine's graphs are named from one pass over VGG's 59 MB of weights instead of one a
    graph (0.26 s each time, measured)."""
    return {name: hashlib.sha256(value.d.tobytes()).digest()
            for name, value in net.parameters().items()}


def _params_digest(net, kind, hashes=None):
    """A short digest of the parameters and options a ``kind`` entry of ``net`` bakes in (the
    trunk record's export settings included). The ``weights`` file holds the trunk's
    parameters alone, so the graphs of every version and option share it."""
    hashes = hashes or parameter_hashes(net)
    if kind == "weights":
        h = hashlib.sha256("{} weights".format(net.model).encode("utf-8"))
        wanted = lambda name: not name.startswith("lin")  # noqa: E731
    else:
        has_trunk, has_head = not kind.startswith("head"), not kind.startswith("trunk")
        trunk = net.trunk
        export = ((trunk.export_size, trunk.ceil_mode_pools, trunk.winograd_tiles)
                  if has_trunk else None)
        head = (net.lpips, net.method, net.channel_norm) if has_head else None
        h = hashlib.sha256("{} {} input={} head={} export={}".format(
            net.model, kind, has_trunk and net.input_norm, head, export).encode("utf-8"))
        wanted = lambda name: has_head if name.startswith("lin") else has_trunk  # noqa: E731
    for name in sorted(hashes):
        if wanted(name):
            h.update(name.encode("utf-8"))
            h.update(hashes[name])
    return h.hexdigest()[:12]


CACHE_DIR_ENV = "NNABLA_LPIPS_CACHE_DIR"


def _writable_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def cache_folder():
    """Where exported graphs are cached: ``$NNABLA_LPIPS_CACHE_DIR``, else
    ``<NNabla data home>/lpips/onnx``, else (neither writable) a temporary folder, with a
    warning. Never the weights folder a user names, which may be read-only or shared."""
    for folder in (os.environ.get(CACHE_DIR_ENV), os.path.join(default_params_dir(), "onnx")):
        if folder and _writable_folder(folder):
            return os.path.abspath(folder)
        if folder:
            logger.warning("cannot write the ONNX export cache in %s", folder)
    folder = os.path.join(tempfile.gettempdir(), "lpips-onnx-cache-{}".format(os.getuid()))
    logger.warning("caching exported graphs in %s (set $%s to keep them)", folder,
                   CACHE_DIR_ENV)
    return folder


def onnx_cache_path(net, kind, folder=None, hashes=None):
    """Where a cache entry is: ``<folder>/<model>-<kind>-<code digest>-<parameters
    digest>.onnx`` (``folder`` defaults to :func:`cache_folder`), ``kind`` being ``trunk``,
    ``head`` or ``pairs`` (trunk and head joined), the first and last with ``-winograd`` for
    Winograd convolutions, pairs with ``-per-image`` for large images (see
    :func:`~metrics.lpips.engines.onnx_export.export_pairs`); or ``weights``, the trunk's parameters those graphs read
    (``.onnx.data``). A changed exporter, rewrite, weight file or option never meets a stale
    entry, so one cache serves every weights folder. ``hashes``: :func:`parameter_hashes` of
    ``net``, when the caller has them."""
    return os.path.join(folder or cache_folder(), "{}-{}-{}-{}.onnx{}".format(
        net.model, kind, _code_digest(kind), _params_digest(net, kind, hashes),
        ".data" if kind == "weights" else ""))


def remove_stale_exports(path):
    """Deletes the cache entries of ``path``'s model and kind that other versions of the code
    made (so upgrades do not pile up files of up to 60 MB); those of other weights stay."""
    folder, name = os.path.split(path)
    model_kind, code, _ = name.rsplit("-", 2)
    # <model>-<kind>-<code>-<params>.onnx[.data], or the earliest <model>-<kind>-<digest>.onnx
    entry = re.compile(re.escape(model_kind) + r"-([0-9a-f]+)(-[0-9a-f]+)?\.onnx(\.data)?$")
    for other in os.listdir(folder):
        match = entry.match(other)
        if match and (match.group(2) is None or match.group(1) != code):
            logger.info("removing %s, exported by another version", other)
            try:
                os.remove(os.path.join(folder, other))
            except OSError:
                pass  # another process got there first, or it is read-only: harmless


def _uint8_to_input_graph():
    """A small ONNX graph (serialized): uint8 ``images`` (N, H, W, 3) -> float32 ``x``
    (N, 3, H, W) = (images / 255) * 2 - 1, in float32 as numpy computes it."""
    from onnx import TensorProto, helper, numpy_helper
    constants = [numpy_helper.from_array(np.array(v, np.float32), name)
                 for name, v in (("c255", 255.0), ("c2", 2.0), ("c1", 1.0))]
    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Div", ["f", "c255"], ["unit"]),
             helper.make_node("Mul", ["unit", "c2"], ["twice"]),
             helper.make_node("Sub", ["twice", "c1"], ["hwc"]),
             helper.make_node("Transpose", ["hwc"], ["x"], perm=[0, 3, 1, 2])]
    graph = helper.make_graph(
        nodes, "uint8_to_input",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


class OnnxRuntimeEngine(object):
    """Runs the trunk and the distance head of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`)
    with ONNX Runtime on the CPU, from exports cached on disk (made when missing); each
    session is created when first used. Inputs are float32 (N, 3, H, W) arrays in [-1, 1].
    The trunk's wide 3x3 and 5x5 convolutions use Winograd's algorithm (1.4-1.8x faster up to
    a few hundred pixels a side, equal to the direct convolution to ~1e-6): with ``winograd``
    None (the default) for images of up to the trunk's ``winograd_max_pixels`` and direct
    convolutions above, where those are faster and need less memory; True always; False never.
    ``hashes``: :func:`parameter_hashes` of ``net``, when the caller has them."""

    name = "onnxruntime"

    def __init__(self, net, threads=None, winograd=None, arena=True, hashes=None):
        try:
            import onnxruntime as ort
            from . import onnx_export
        except ImportError as e:
            raise BackendError("the onnxruntime backend needs onnxruntime, onnx and "
                               "nnabla-converter (`make setup` installs them): {}".format(e)) from None
        self._ort, self._threads, self._arena = ort, threads or os.cpu_count() or 1, arena
        self._nnabla_head = NNablaHead(net)
        # Images of more pixels run direct convolutions without an arena (that engine made
        # when needed), unless Winograd's are asked for everywhere.
        self._net, self._large = net, None
        self._large_from = (net.trunk.winograd_max_pixels if winograd is not True and arena
                            else None)
        self._whole = set()  # weights files whose checksum was verified
        suffix = "" if winograd is False else "-winograd"
        # The trunk export writes the weights file too (kept if there already). The per-tap
        # maps (for tiled scoring) are exported when first needed.
        exports = [("weights", None),
                   ("trunk", lambda path: onnx_export.export_trunk(
                       net, path, self._paths["weights"], winograd is not False)),
                   ("head", lambda path: onnx_export.export_head(net, path)),
                   ("pairs", lambda path: onnx_export.export_pairs(
                       self._paths["trunk"], self._paths["head"], path, per_image=not arena)),
                   ("head-maps", lambda path: onnx_export.export_head(net, path, per_tap=True)),
                   ("pairs-maps", lambda path: onnx_export.export_pairs(
                       self._paths["trunk"], self._paths["head-maps"], path,
                       per_image=not arena)),
                   ("trunk-dropout", lambda path: onnx_export.export_trunk(
                       net, path, self._paths["weights"], winograd is not False, dropout=True))]
        # Sorting has no ONNX export in NNabla: other methods than spatial run their head (as
        # maps always do) in NNabla on the ONNX Runtime trunk's features.
        self._head_exported = net.method == "spatial"
        if not self._head_exported:
            exports = [(role, export) for role, export in exports
                       if not role.startswith(("head", "pairs"))]
        self._model, self._exports, self._sessions = net.model, exports, {}
        self._on_demand = {"head-maps", "pairs-maps", "trunk-dropout"}
        # Large images (no arena) run the trunk once per image of a pair (see export_pairs).
        self._kinds = {role: role + (suffix if role.startswith(("trunk", "pairs")) else "")
                       + ("-per-image" if role.startswith("pairs") and not arena else "")
                       for role, _ in exports}
        folder = cache_folder()
        self._hashes = hashes or parameter_hashes(net)
        self._paths = {role: onnx_cache_path(net, kind, folder, self._hashes)
                       for role, kind in self._kinds.items()}
        try:  # all up front: export errors belong to the set-up
            self._export_missing()
        except Exception as e:  # a damaged trunk or head cannot be joined into pairs
            self._rebuild(e)

    def _export_missing(self, wanted=()):
        """Exports the missing graphs every engine needs, and the on-demand ones ``wanted``."""
        from . import onnx_export
        missing = [role for role, _ in self._exports if not os.path.isfile(self._paths[role])
                   and (role not in self._on_demand or role in wanted)]
        if missing:
            onnx_export.remove_abandoned(os.path.dirname(self._paths[missing[0]]))
        if "weights" in missing:
            missing.append("trunk")
        for role, export in self._exports:
            path = self._paths[role]
            if role in missing and export is not None:
                logger.info("exporting the %s %s to %s", self._model, self._kinds[role], path)
                export(path)
            if role in missing:
                remove_stale_exports(path)

    def _rebuild(self, error):
        """A cached graph that does not load (a disk error, an interrupted copy of the cache)
        is exported again, with the graphs made from it, instead of failing every run."""
        logger.warning("a cached ONNX graph of the %s model cannot be used (%s); exporting "
                       "its graphs again", self._model, str(error).splitlines()[0][:200])
        for path in self._paths.values():
            if os.path.exists(path):
                os.remove(path)
        self._export_missing()

    def _session(self, role):
        from .onnx_weights import initializers_to_supply
        options = self._ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self._threads, 1
        # Sessions (conversion, trunk, head, pairs) run in turn: idle workers must sleep, not
        # spin, or they take the cores from the next session (measured: 1.6x slower at 64 px).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_cpu_mem_arena = self._arena
        source = self._paths.get(role)  # a path: ONNX Runtime finds the weights file beside it
        if source is None:  # the uint8 conversion: built in memory, too small to cache
            source = _uint8_to_input_graph()
        else:
            made = initializers_to_supply(source, self._whole)
            if made:  # copied by ONNX Runtime when it creates the session (tested)
                options.add_external_initializers(
                    list(made), [self._ort.OrtValue.ortvalue_from_numpy(a) for a in made.values()])
        return self._ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def _run(self, role, feed):
        if role not in self._sessions:
            if role in self._on_demand and not os.path.isfile(self._paths[role]):
                self._export_missing(wanted=(role, "head-maps") if role == "pairs-maps"
                                     else (role,))
            try:
                self._sessions[role] = self._session(role)
            except Exception as e:  # ONNX Runtime's errors share no useful base class
                if role not in self._paths:
                    raise
                self._sessions.clear()  # the others may have come from the same damaged set
                self._whole.clear()
                self._rebuild(e)
                self._sessions[role] = self._session(role)
        return self._sessions[role].run(None, feed)

    def to_input(self, images):
        """Channel-last (N, H, W, 3) images -> contiguous float32 (N, 3, H, W) in [-1, 1].
        uint8 batches are converted by ONNX Runtime on all its threads, with the float32
        operations of :func:`~metrics.lpips.data.images.to_model_input` (the same bits);
        other types by that function."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            return NNablaEngine.to_input(images)
        return self._run("uint8", {"images": np.ascontiguousarray(images)})[0]

    def _is_large(self, image_pixels):
        return self._large_from is not None and image_pixels > self._large_from

    def _for_size(self, x):
        """The engine for a pass of ``x``: this one, or for images of more than
        ``winograd_max_pixels`` the same model with direct convolutions and no memory arena
        (its graphs read the same cached weights)."""
        return self._large_engine() if self._is_large(x.shape[2] * x.shape[3]) else self

    def memory_kind(self, image_pixels=None):
        """Which of the trunk's ``bytes_per_pixel`` a pass of images of ``image_pixels`` each
        takes (None: a tile pass, :meth:`pair_layer_maps`): ``direct`` (no arena) or
        ``winograd`` (Winograd's, or small images' direct convolutions with an arena)."""
        if image_pixels is None or self._is_large(image_pixels) or not self._arena:
            return "direct"
        return "winograd"

    def _large_engine(self):
        """This model with direct convolutions and no memory arena, made when first needed."""
        if not self._arena:
            return self
        if self._large is None:
            # Large passes vary in shape (tiles, edges): an arena keeps the largest block of
            # each, growing by powers of two (measured: 2.2 GB after two 736 px VGG tiles,
            # 1.1 GB without; at 256 px the arena is worth 10% to VGG, so small images keep it).
            self._large = OnnxRuntimeEngine(self._net, self._threads, winograd=False, arena=False,
                                            hashes=self._hashes)
        return self._large

    def features(self, x, masks=None):
        """The trunk's taps for ``x``: a list of (N, C_l, h_l, w_l) arrays. ``masks``, one
        array per convolution of its input's shape, multiply those inputs (E-LPIPS'
        dropout)."""
        engine = self._for_size(x)
        if engine is not self:
            return engine.features(x, masks)
        if masks is None:
            return self._run("trunk", {"x": x})
        feed = {"m{}".format(k): m for k, m in enumerate(masks)}
        feed["x"] = x
        return self._run("trunk-dropout", feed)

    def pair_layer_maps(self, x):
        """The per-tap (N, 1, h_l, w_l) distance maps of the pairs (x[i], x[N + i]), trunk and
        per-tap head in one graph. For tiled scoring, so always by the engine large images
        get (direct convolutions, no arena), whose memory the budget knows."""
        engine = self._large_engine()
        if engine is not self:
            return engine.pair_layer_maps(x)
        return self._run("pairs-maps", {"x": x})

    def reduce_maps(self, layer_maps, size=None):
        """[total, per tap..., and with ``size`` the (N, 1, H, W) map] from per-tap maps."""
        return self._nnabla_head.reduce_maps(layer_maps, size)

    def distances(self, feats0, feats1, size=None):
        """(N,) scores between two equal-shaped feature lists; with ``size`` = (H, W) of the
        images, a tuple (scores, (N, H, W) spatial maps), the maps from the NNabla head."""
        if size is not None or not self._head_exported:
            return self._nnabla_head(feats0, feats1, size)
        feed = {}
        for i, (a, b) in enumerate(zip(feats0, feats1)):
            feed["a{}".format(i)] = np.ascontiguousarray(a)
            feed["b{}".format(i)] = np.ascontiguousarray(b)
        return self._run("head", feed)[0].reshape(-1)

    def pair_distances(self, x, size=None):
        """Scores of the pairs (x[i], x[N + i]) of 2N images, as :meth:`distances`; without
        maps, trunk and head run as one graph and the features never leave ONNX Runtime."""
        engine = self._for_size(x)
        if engine is not self:
            return engine.pair_distances(x, size)
        if size is None and self._head_exported:
            return self._run("pairs", {"x": x})[0].reshape(-1)
        n = len(x) // 2
        feats = self.features(x)
        return self.distances([f[:n] for f in feats], [f[n:] for f in feats], size)
