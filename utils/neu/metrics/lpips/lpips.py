# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The LPIPS graph: Zhang et al., "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", CVPR 2018; numerically the reference PyTorch package ``lpips`` 0.1.4.

Usable as a metric and as a differentiable loss::

    lpips = LPIPS(model="vgg")
    loss = lpips(fake, real)           # (N, 1, 1, 1); inputs (N, 3, H, W) in [-1, 1]

The pretrained parameters live in a parameter scope owned by the instance, with
``need_grad=False``: ``nn.get_parameters()`` (and so a solver) never sees them, and
several models coexist in one process.

On a CPU context the trunk and the head run, forward and backward, as one NNabla function
node on ONNX Runtime (:mod:`~metrics.lpips.engines.onnx_node`), several times faster than
NNabla's CPU kernels; ``engine="nnabla"`` builds NNabla's own graph, which every other
context (cuDNN) and the ``sort`` methods use anyway. Both give the same values and
gradients (to ~1e-6).
"""
import collections

import numpy as np

import nnabla as nn
import nnabla.functions as F

from . import distances
from .trunks import check_size, get_trunk
from .weights import WeightsError, lin_name, load_weights
from .weights.registry import get_weight_file
from .weights.store import read_comparison, trained_description, weights_file

# Version 0.1 input scaling (the reference's ScalingLayer), per RGB channel, (1, 3, 1, 1).
SHIFT = np.array([-.030, -.088, -.188], np.float32).reshape(1, 3, 1, 1)
SCALE = np.array([.458, .448, .450], np.float32).reshape(1, 3, 1, 1)
# torchvision's ImageNet normalisation, (x01 - mean) / std, written for [-1, 1] images:
# (x - (2 mean - 1)) / (2 std). The deep-perceptual-similarity code's default input.
_IMAGENET_MEAN = np.array([.485, .456, .406]).reshape(1, 3, 1, 1)
_IMAGENET_STD = np.array([.229, .224, .225]).reshape(1, 3, 1, 1)
INPUT_NORMS = {"lpips": (SHIFT, SCALE),
               "imagenet": ((2 * _IMAGENET_MEAN - 1).astype(np.float32),
                            (2 * _IMAGENET_STD).astype(np.float32)),
               "none": None}

_SCOPE = "lpips"
ENGINES = ("auto", "onnxruntime", "nnabla")


def describe_comparison(comparison):
    """``comparison`` (:attr:`LPIPS.comparison`) in words."""
    return "method {}, channel normalisation {}, input norm {}".format(
        comparison["method"], "on" if comparison["channel_norm"] else "off",
        comparison["input_norm"])


def comparison_flags(comparison):
    """The command-line options that ask for ``comparison``."""
    return " ".join(["--method " + comparison["method"],
                     "--input-norm " + comparison["input_norm"]] +
                    ([] if comparison["channel_norm"] else ["--no-channel-norm"]))


def _non_finite_marker(img0, img1):
    """(N, 1, 1, 1): 0 for a pair of finite images, NaN when either holds a NaN or an
    infinity. Added to the distance maps, it makes a non-finite input give a non-finite score,
    as the reference does (NNabla's ReLU turns NaN into 0, so the trunk alone would hide it),
    for two reductions over the inputs; its gradient is 0."""
    total = F.sum(img0, axis=(1, 2, 3), keepdims=True) + F.sum(img1, axis=(1, 2, 3), keepdims=True)
    return 0 * total


class LPIPS(object):
    """LPIPS distance between two image batches.

    Args:
        model (str): feature trunk, ``"alex"`` (best as a metric, the default), ``"vgg"``
            (closest to traditional perceptual losses) or ``"squeeze"``.
        params_dir (str, optional): folder holding the ``.h5`` files; default
            ``$NNABLA_LPIPS_PARAMS_DIR``, then ``<NNabla data home>/lpips``.
        spatial (bool): return the (N, 1, H, W) distance map instead of the score.
        apply_scale (bool, optional): scale the input as version 0.1 does; default: as the
            version says (off for "0.0", on for the others).
        version (str): ``"0.1"`` (default), ``"0.0"`` (the original release, for old papers)
            or ``"elpips"`` (VGG only: the lin layers E-LPIPS retrained for LPIPS-VGG,
            Kettunen et al. 2019, its ``lpips_vgg`` metric; made on first use from the copy
            this package ships).
        lpips (bool): use the learned lin layers (default); ``False`` sums squared
            differences over channels (the paper's uncalibrated baseline).
        method (str): how each tap's features are compared (:mod:`~metrics.lpips.distances`):
            ``"spatial"`` (LPIPS, the default), ``"mean"``, ``"sort"``, ``"spatial+mean"`` or
            ``"spatial+sort"`` (Sjögren et al. 2022). With ``lpips``, the pretrained lin
            layers weigh the modified features too (our extension: that paper trains lin
            layers per method, as ``metrics.lpips.train --method`` does); ``spatial+X``
            applies tap l's lin layer to both of its maps, or the second set of a file
            trained for it to the X maps. A trained file is only loaded for the method,
            ``channel_norm`` and ``input_norm`` it was trained with.
        channel_norm (bool): unit-normalize each position's feature vector before comparing
            (default; after the mean or sort step). ``False`` compares raw activations.
        input_norm (str, optional): the trunk's input scaling: ``"lpips"`` (the v0.1 shift
            and scale), ``"imagenet"`` (torchvision's mean and std, the deep-perceptual-
            similarity code's default) or ``"none"``; default: as ``apply_scale`` says.
        engine (str): what graphs built on a CPU context (``float``) run on: ``"auto"`` (the
            default: ONNX Runtime when installed and the method is not a ``sort`` one),
            ``"onnxruntime"`` (the same, or ``ValueError`` when it cannot) or ``"nnabla"``
            (NNabla's graph, needed for second derivatives). Other contexts build NNabla's.

    Raises:
        ValueError: unknown ``model``, ``version``, ``method``, ``input_norm`` or ``engine``.
        metrics.lpips.WeightsError: the parameter file cannot be had, does not fit, or was
            trained for another comparison.
    """

    def __init__(self, model="alex", params_dir=None, spatial=False, apply_scale=None,
                 version="0.1", lpips=True, method="spatial", channel_norm=True, input_norm=None,
                 engine="auto"):
        if engine not in ENGINES:
            raise ValueError("engine must be one of {}, got {!r}".format(", ".join(ENGINES), engine))
        self.engine, self._gradients = engine, None
        self.trunk = get_trunk(model)
        get_weight_file(model, version)  # validates the version before any file is touched
        self.model, self.version = model, version
        self.spatial, self.lpips = bool(spatial), bool(lpips)
        self.method, self.channel_norm = distances.check_method(method), bool(channel_norm)
        if input_norm is None:
            scaled = (version != "0.0") if apply_scale is None else bool(apply_scale)
            input_norm = "lpips" if scaled else "none"
        if input_norm not in INPUT_NORMS:
            raise ValueError("input_norm must be one of {}, got {!r}".format(
                ", ".join(INPUT_NORMS), input_norm))
        self.input_norm, self.apply_scale = input_norm, input_norm != "none"
        self._scope = collections.OrderedDict()
        with self.scope():
            for name, value in load_weights(model, version, params_dir, self.lpips).items():
                nn.parameter.set_parameter(
                    name, nn.Variable.from_numpy_array(value, need_grad=False))
        path = weights_file(model, version, params_dir)
        #: the description of the training run that made the weights (None: published ones)
        self.trained = trained_description(path)
        if self.lpips:
            self._check_comparison(path)

    @property
    def comparison(self):
        """How this instance compares features: what a trained file records of its run."""
        return {"method": self.method, "channel_norm": self.channel_norm,
                "input_norm": self.input_norm}

    def _check_comparison(self, path):
        """Lin layers trained for one comparison are meaningless for another: refused."""
        trained = read_comparison(path)
        if trained and trained != self.comparison:
            raise WeightsError(
                "{}'s lin layers were trained for {}, not for {} as asked: score with the "
                "options it was trained with ({}), or leave the lin layers out (--no-lin, "
                "lpips=False)".format(path, describe_comparison(trained),
                                      describe_comparison(self.comparison),
                                      comparison_flags(trained)))

    def lin_names(self):
        """The lin parameter weighing each map the method compares (as :attr:`layer_names`):
        tap l's for both maps of a ``spatial+X`` method, unless the weights hold a second
        set (trained for that method)."""
        count, maps = len(self.trunk.taps), len(self.layer_names)
        with self.scope():
            own = nn.parameter.get_parameter(lin_name(count)) is not None
        return [lin_name(k if own else k % count) for k in range(maps)]

    def scope(self):
        """A context manager that enters the instance's own parameter scope."""
        return nn.parameter_scope(_SCOPE, self._scope)

    def parameters(self):
        """The instance's own (pretrained, fixed) parameters: dict name -> Variable."""
        with self.scope():
            return nn.get_parameters(grad_only=False)

    def runs_on_onnxruntime(self):
        """Whether a graph built now computes the distance maps on ONNX Runtime (see
        ``engine``): on a CPU context, in float, for every method but ``sort``."""
        if self.engine == "nnabla":
            return False
        from .engines.gradient_engine import available, gradient_graphs_cover
        backend = nn.get_current_context().backend[0]
        if backend != "cpu:float" or not gradient_graphs_cover(self):
            if self.engine == "onnxruntime":
                raise ValueError("engine=\"onnxruntime\" runs on a CPU context in float, for every "
                                 "method but sort; here: {}, method {}".format(backend, self.method))
            return False
        return self.engine == "onnxruntime" or available()

    def gradient_engine(self):
        """The :class:`~metrics.lpips.engines.gradient_engine.GradientEngine` behind this
        instance's ONNX Runtime graphs (made on first use)."""
        if self._gradients is None:
            from .engines.gradient_engine import GradientEngine
            self._gradients = GradientEngine(self)
        return self._gradients

    @property
    def is_local(self):
        """Whether each position of a distance map depends only on nearby pixels (``spatial``),
        so that a pair can be scored tile by tile; ``mean`` and ``sort`` see whole maps."""
        return self.method == "spatial"

    @property
    def layer_names(self):
        """The names of the layers the distance sums, in order: the trunk's taps (``relu1``
        ...), for ``mean``/``sort`` as ``relu1/mean``, for ``spatial+X`` both lists."""
        taps = list(self.trunk.taps)
        modified = self.method.replace("spatial+", "")
        other = [] if modified == "spatial" else [t + "/" + modified for t in taps]
        return (taps if self.method.startswith("spatial") else []) + other

    def scale_input(self, x):
        """[-1, 1] images -> the trunk's input (scaled as ``input_norm`` says)."""
        if not self.apply_scale:
            return x
        shift, scale = INPUT_NORMS[self.input_norm]
        return (x - nn.Variable.from_numpy_array(shift)) / nn.Variable.from_numpy_array(scale)

    def features(self, x):
        """The trunk's tapped activations for ``x`` (N, 3, H, W) in [-1, 1], scaled as
        configured: a list of (N, C_l, h_l, w_l) Variables, reusable on their own."""
        self._check_image(x, "x")
        with self.scope():
            feats = self.trunk.build(self.scale_input(x))
            # NNabla's fix_parameters=True marks the stored parameter need_grad=True and
            # returns an unlinked fixed copy: the graph is unaffected, the store is restored.
            for param in nn.get_parameters(grad_only=False).values():
                param.need_grad = False
        return feats

    def layer_distances(self, feats0, feats1):
        """Per-layer (N, 1, h_l, w_l) distance maps between two lists of trunk features: one
        per tap, or for ``spatial+X`` methods two (the L spatial ones, then the L of X)."""
        return self.compare(distances.method_taps(feats0, self.method),
                            distances.method_taps(feats1, self.method))

    def compare(self, taps0, taps1):
        """The distance maps between the lists of maps the method compares (see
        :func:`~metrics.lpips.distances.method_taps`): entry k weighed by the lin layer of
        tap k mod L, or summed over channels without lin layers."""
        norm = self.channel_norm
        if self.lpips:
            with self.scope():
                weights = [nn.parameter.get_parameter(name) for name in self.lin_names()]
            return [distances.lin_distance(f0, f1, w, norm) for f0, f1, w in zip(taps0, taps1, weights)]
        return [distances.channel_sum_distance(f0, f1, norm) for f0, f1 in zip(taps0, taps1)]

    def layer_maps(self, img0, img1, normalize=False):
        """Per-tap (N, 1, h_l, w_l) distance maps between two (N, 3, H, W) batches, from one
        trunk pass over both; ``normalize`` as in :meth:`__call__`."""
        self._check_pair(img0, img1)
        if normalize:
            img0, img1 = 2 * img0 - 1, 2 * img1 - 1
        if self.runs_on_onnxruntime():  # it gives a pair with a non-finite value NaN maps itself
            from .engines.onnx_node import layer_maps
            return layer_maps(self.gradient_engine(), img0, img1)
        poison = _non_finite_marker(img0, img1)
        n = img0.shape[0]
        feats = self.features(F.concatenate(img0, img1, axis=0))
        feats0 = [F.slice(f, (0, 0, 0, 0), (n,) + f.shape[1:]) for f in feats]
        feats1 = [F.slice(f, (n, 0, 0, 0), (2 * n,) + f.shape[1:]) for f in feats]
        return [d + poison for d in self.layer_distances(feats0, feats1)]

    @staticmethod
    def reduce(layer_maps, size=None):
        """Per-tap maps -> (total, per-tap results): spatial means, or with ``size`` = (H, W)
        maps upsampled bilinearly to the image size, as the reference's ``spatial=True``."""
        if size is None:
            layers = [distances.spatial_average(d) for d in layer_maps]
        else:
            layers = [distances.upsample(d, size) for d in layer_maps]
        total = layers[0]
        for layer in layers[1:]:  # the reference's order of summation (and exportable to ONNX)
            total = total + layer
        return total, layers

    def __call__(self, img0, img1, normalize=False, mean_batch=False, per_layer=False):
        """LPIPS between ``img0`` and ``img1``.

        Args:
            img0, img1 (nn.Variable): (N, 3, H, W) RGB, in [-1, 1] (or [0, 1] with ``normalize``).
            normalize (bool): inputs are in [0, 1]; they are mapped to [-1, 1] first.
            mean_batch (bool): average the N scores (the result has no batch axis).
            per_layer (bool): also return the list of per-tap results.

        Returns:
            nn.Variable: (N, 1, 1, 1) scores, or (N, 1, H, W) maps when ``spatial``
            (upsampled bilinearly per tap, so their mean is close to the score);
            with ``per_layer``, a tuple (total, [per tap]).
        """
        maps = self.layer_maps(img0, img1, normalize)
        total, layers = self.reduce(maps, img0.shape[2:] if self.spatial else None)
        if mean_batch:
            total = F.mean(total, axis=0)
        return (total, layers) if per_layer else total

    def _check_image(self, x, name):
        if not isinstance(x, nn.Variable):
            raise TypeError("{} must be an nnabla.Variable, got {}".format(name, type(x).__name__))
        shape = tuple(x.shape)
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError("{} must have shape (N, 3, H, W), got {}".format(name, shape))
        if shape[0] == 0:
            raise ValueError("{} holds no images (N = 0)".format(name))
        check_size(self.model, shape[2], shape[3], name)

    def _check_pair(self, img0, img1):
        self._check_image(img0, "img0")
        self._check_image(img1, "img1")
        if img0.shape != img1.shape:
            raise ValueError("img0 and img1 must have the same shape, got {} and {}".format(
                tuple(img0.shape), tuple(img1.shape)))
