# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The ONNX Runtime engine: the trunk and the distance head exported from the NNabla graphs
(:mod:`.onnx.export`, kept by :mod:`.onnx.cache`) and run by ONNX Runtime on the CPU.

Its scores equal the NNabla engine's to about 1e-6 (the tests hold them to 1e-5). Spatial
maps are computed from its features by the NNabla head (they need an upsampling to each
image size, which ONNX graphs exported at one size cannot do).
"""
import logging
import os

import numpy as np

from . import shards
from .base import BackendError, Engine
from .nnabla_engine import NNablaEngine, NNablaHead
from .tuning import tuning_for

logger = logging.getLogger(__name__)


class OnnxRuntimeEngine(Engine):
    """Runs the trunk and the distance head of ``net`` (an :class:`~metrics.lpips.lpips.LPIPS`)
    with ONNX Runtime on the CPU, from exports cached on disk (made when missing); each
    session is created when first used. Inputs are float32 (N, 3, H, W) arrays in [-1, 1].
    The trunk's wide 3x3 and 5x5 convolutions use Winograd's algorithm (1.4-1.8x faster up to
    a few hundred pixels a side, equal to the direct convolution to ~1e-6): with ``winograd``
    None (the default) for images of up to the tuning table's ``winograd_max_pixels`` and
    direct convolutions above, where those are faster and need less memory; True always;
    False never. ``hashes``: :func:`.onnx.cache.parameter_hashes` of ``net``, when the caller
    has them."""

    name = "onnxruntime"
    takes_dropout_masks = True

    def __init__(self, net, threads=None, winograd=None, arena=True, hashes=None):
        try:
            import onnxruntime as ort
            from .onnx.cache import ExportCache
        except ImportError as e:
            raise BackendError("the onnxruntime backend needs onnxruntime, onnx and "
                               "nnabla-converter (`make setup` installs them): {}".format(e)) from None
        self._ort, self._threads, self._arena = ort, threads or os.cpu_count() or 1, arena
        self._nnabla_head = NNablaHead(net)
        self._tuning = tuning_for(net.model)
        self.pixels_per_pass = self._tuning.pixels_per_pass
        self.winograd = winograd is not False
        # Images of more pixels run direct convolutions without an arena (that engine made
        # when needed), unless Winograd's are asked for everywhere.
        self._net, self._large = net, None
        self._large_from = (self._tuning.winograd_max_pixels if winograd is not True and arena
                            else None)
        # That engine runs large images: one session on every thread suits them.
        self._split_max_pixels = self._tuning.split_max_pixels if arena else 0
        self._whole = set()  # weights files whose checksum was verified
        self._sessions = {}
        self._cache = ExportCache(net, self.winograd, per_image=not arena, hashes=hashes)
        self._head_exported = self._cache.head_exported
        try:  # all up front: export errors belong to the set-up
            self._cache.make_missing()
        except Exception as e:  # a damaged trunk or head cannot be joined into pairs
            self._cache.rebuild(e)

    def _session(self, role, threads):
        from .onnx.graph import uint8_to_input_model
        from .onnx.weights_file import initializers_to_supply
        options = self._ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # Sessions (conversion, trunk, head, pairs) run in turn: idle workers must sleep, not
        # spin, or they take the cores from the next session (measured: 1.6x slower at 64 px).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_cpu_mem_arena = self._arena
        if role == "uint8":  # the input conversion: built in memory, too small to cache
            source = uint8_to_input_model()
        else:  # a path: ONNX Runtime finds the weights file beside it
            source = self._cache.ensure(role)
            made = initializers_to_supply(source, self._whole)
            if made:  # copied by ONNX Runtime when it creates the session (tested)
                options.add_external_initializers(
                    list(made), [self._ort.OrtValue.ortvalue_from_numpy(a) for a in made.values()])
        return self._ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def _session_for(self, role, threads):
        """The session of ``role`` with ``threads`` intra-op threads, made when first asked."""
        key = (role, threads)
        if key not in self._sessions:
            if role != "uint8":
                self._cache.ensure(role)  # an export that fails says so; it is no damaged entry
            try:
                self._sessions[key] = self._session(role, threads)
            except Exception as e:  # ONNX Runtime's errors share no useful base class
                if role == "uint8":
                    raise
                self._sessions.clear()  # the others may have come from the same damaged set
                self._whole.clear()
                self._cache.rebuild(e)
                self._sessions[key] = self._session(role, threads)
        return self._sessions[key]

    def _run(self, role, feed, pairs=False, image_pixels=None, images_per_item=1):
        """The outputs of ``role``'s graph on ``feed`` (batch-first inputs; with ``pairs`` 2N
        images, the pairs (i, N + i); from images of ``image_pixels`` each; an item of the
        batch made from ``images_per_item`` images). A pass of several items,
        images of up to the tuning table's ``split_max_pixels``, is split among the engine's
        threads, which run one single-threaded session side by side (:mod:`.shards`). A pass
        of one item runs on that session too once it exists (a folder's last, short pass),
        else on a session using every thread, so that one model's weights are rarely held
        twice."""
        count = len(next(iter(feed.values())))
        if pairs:
            count, images_per_item = count // 2, 2
        parts = shards.bounds(count, self._threads, shards.MIN_SHARD_IMAGES // images_per_item)
        large = image_pixels is not None and image_pixels > self._split_max_pixels
        if large or (len(parts) == 1 and (role, 1) not in self._sessions):
            return self._session_for(role, self._threads).run(None, feed)
        feeds = shards.split_feed(feed, parts, pairs) if len(parts) > 1 else [feed]
        session = self._session_for(role, 1)
        return shards.join(shards.side_by_side(lambda f: session.run(None, f), feeds))

    def to_input(self, images):
        """Channel-last (N, H, W, 3) images -> contiguous float32 (N, 3, H, W) in [-1, 1].
        uint8 batches are converted by ONNX Runtime on all its threads, with the float32
        operations of :func:`~metrics.lpips.data.images.to_model_input` (the same bits);
        other types by that function."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            return NNablaEngine.to_input(images)
        return self._run("uint8", {"images": np.ascontiguousarray(images)},
                         image_pixels=images.shape[1] * images.shape[2])[0]

    def _is_large(self, image_pixels):
        return self._large_from is not None and image_pixels > self._large_from

    def _for_size(self, x):
        """The engine for a pass of ``x``: this one, or for images of more than
        ``winograd_max_pixels`` the same model with direct convolutions and no memory arena
        (its graphs read the same cached weights)."""
        return self._large_engine() if self._is_large(x.shape[2] * x.shape[3]) else self

    def memory_kind(self, image_pixels=None):
        """Which of the tuning table's ``bytes_per_pixel`` a pass of images of ``image_pixels``
        each takes (None: a tile pass, :meth:`pair_layer_maps`): ``direct`` (no arena) or
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
                                            hashes=self._cache.hashes)
        return self._large

    @property
    def parameter_hashes(self):
        """:func:`.onnx.cache.parameter_hashes` of the model, as made for its cache."""
        return self._cache.hashes

    def features(self, x, masks=None):
        """The trunk's taps for ``x``: a list of (N, C_l, h_l, w_l) arrays. ``masks``, one
        array per convolution of its input's shape, multiply those inputs (E-LPIPS'
        dropout)."""
        engine = self._for_size(x)
        if engine is not self:
            return engine.features(x, masks)
        if masks is None:
            return self._run("trunk", {"x": x}, image_pixels=x.shape[2] * x.shape[3])
        feed = {"m{}".format(k): m for k, m in enumerate(masks)}
        feed["x"] = x
        return self._run("trunk-dropout", feed, image_pixels=x.shape[2] * x.shape[3])

    def pair_layer_maps(self, x):
        """The per-tap (N, 1, h_l, w_l) distance maps of the pairs (x[i], x[N + i]), trunk and
        per-tap head in one graph. For tiled scoring, so always by the engine large images
        get (direct convolutions, no arena), whose memory the budget knows."""
        engine = self._large_engine()
        if engine is not self:
            return engine.pair_layer_maps(x)
        return self._run("pairs-maps", {"x": x}, pairs=True, image_pixels=x.shape[2] * x.shape[3])

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
        # The first tap's size stands for the images': VGG's is theirs, AlexNet's a 16th.
        tap = feed["a0"].shape
        return self._run("head", feed, image_pixels=tap[2] * tap[3],
                         images_per_item=2)[0].reshape(-1)

    def pair_distances(self, x, size=None):
        """Scores of the pairs (x[i], x[N + i]) of 2N images, as :meth:`distances`; without
        maps, trunk and head run as one graph and the features never leave ONNX Runtime."""
        engine = self._for_size(x)
        if engine is not self:
            return engine.pair_distances(x, size)
        if size is None and self._head_exported:
            return self._run("pairs", {"x": x}, pairs=True,
                             image_pixels=x.shape[2] * x.shape[3])[0].reshape(-1)
        n = len(x) // 2
        feats = self.features(x)
        return self.distances([f[:n] for f in feats], [f[n:] for f in feats], size)
