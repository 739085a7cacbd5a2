# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Feature trunks (AlexNet, VGG16, SqueezeNet 1.1) built with NNabla's parametric functions.

Layer names follow the indices of torchvision's ``features`` modules
(``conv0``, ``conv3``, ... and ``fire3``, ...), which are also the names used in
the official NNabla ``{alex,vgg}_with_LPIPS.h5`` files, so those files load unchanged.

Every builder takes an ``nn.Variable`` of shape (N, 3, H, W), already scaled as the
trunk expects, and returns the list of tapped ReLU outputs, as in Zhang et al. (2018), Sec. 3.
The parameters are fixed (``need_grad=False``); call the builders inside a parameter
scope holding the pretrained weights.
"""
import collections
import contextlib
import contextvars
import dataclasses
import functools
import typing

import numpy as np

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
from nnabla.initializer import ConstantInitializer


# What a graph being built does to every convolution's input (E-LPIPS' dropout); None: nothing.
_CONV_INPUT = contextvars.ContextVar("conv_input", default=None)


@contextlib.contextmanager
def conv_input_hook(hook):
    """While building a trunk in this context, each convolution reads ``hook(x)`` instead of
    its input ``x`` (E-LPIPS applies dropout there, Kettunen et al. 2019, Sec. 3)."""
    token = _CONV_INPUT.set(hook)
    try:
        yield
    finally:
        _CONV_INPUT.reset(token)


# Whether a graph being built may train the trunk's convolutions (the tune and scratch modes).
_TRAINABLE = contextvars.ContextVar("trainable", default=False)


@contextlib.contextmanager
def trainable_trunk():
    """While building a trunk in this context, its convolutions read their stored parameters
    themselves (gradients reach them) instead of fixed copies."""
    token = _TRAINABLE.set(True)
    try:
        yield
    finally:
        _TRAINABLE.reset(token)


# Whether a graph being built only shows the parameters' shapes (new ones are zeros, not
# random: building must not draw from the client's nn.random.prng).
_SHAPES_ONLY = contextvars.ContextVar("shapes_only", default=False)


def _conv_relu(x, outmaps, kernel, name, pad=0, stride=1):
    hook = _CONV_INPUT.get()
    if hook is not None:
        x = hook(x)
    zeros = {"w_init": ConstantInitializer(0), "b_init": ConstantInitializer(0)} \
        if _SHAPES_ONLY.get() else {}
    h = PF.convolution(x, outmaps, (kernel, kernel), pad=(pad, pad), stride=(stride, stride),
                       fix_parameters=not _TRAINABLE.get(), name=name, **zeros)
    return F.relu(h)


def alex_features(x):
    """AlexNet taps after torchvision's conv 0, 3, 6, 8 and 10 (64, 192, 384, 256, 256 channels)."""
    relu1 = _conv_relu(x, 64, 11, "conv0", pad=2, stride=4)
    h = F.max_pooling(relu1, (3, 3), (2, 2))
    relu2 = _conv_relu(h, 192, 5, "conv3", pad=2)
    h = F.max_pooling(relu2, (3, 3), (2, 2))
    relu3 = _conv_relu(h, 384, 3, "conv6", pad=1)
    relu4 = _conv_relu(relu3, 256, 3, "conv8", pad=1)
    relu5 = _conv_relu(relu4, 256, 3, "conv10", pad=1)
    return [relu1, relu2, relu3, relu4, relu5]


# (first conv index, output channels, number of convs) per VGG16 block.
_VGG16_BLOCKS = ((0, 64, 2), (5, 128, 2), (10, 256, 3), (17, 512, 3), (24, 512, 3))


def _vgg16(x, pool, every_relu):
    """VGG16's convolutions, ``pool`` (2x2, stride 2) before blocks 2-5; the taps: every ReLU,
    or (not ``every_relu``) each block's last."""
    taps = []
    h = x
    for block, (first, outmaps, n_convs) in enumerate(_VGG16_BLOCKS):
        if block > 0:
            h = pool(h, (2, 2), (2, 2))
        for k in range(n_convs):
            h = _conv_relu(h, outmaps, 3, "conv{}".format(first + 2 * k), pad=1)
            if every_relu or k == n_convs - 1:
                taps.append(h)
    return taps


def vgg_features(x):
    """VGG16 taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (64, 128, 256, 512, 512 channels).

    Like the reference, no max pool follows relu5_3.
    """
    return _vgg16(x, F.max_pooling, every_relu=False)


def elpips_vgg_features(x):
    """E-LPIPS-VGG (Kettunen et al. 2019, ``networks.vgg16_full_avg``): VGG16's convolutions
    with 2x2 average pooling (rounding down) in place of max pooling, tapping the scaled input
    itself and every one of the 13 ReLUs (3, 64, 64, 128, 128, 256 x 3, 512 x 6 channels)."""
    # The input tap gets its own node, so that an exported graph can output it.
    return [F.identity(x)] + _vgg16(x, F.average_pooling, every_relu=True)


def _fire(x, name, squeeze_planes, expand_planes):
    with nn.parameter_scope(name):
        s = _conv_relu(x, squeeze_planes, 1, "squeeze")
        e1 = _conv_relu(s, expand_planes, 1, "expand1x1")
        e3 = _conv_relu(s, expand_planes, 3, "expand3x3", pad=1)
    return F.concatenate(e1, e3, axis=1)


def _ceil_pool(x, kernel=3, stride=2):
    """Max pooling with PyTorch's ``ceil_mode=True`` (SqueezeNet's pools): ceil((n - k) / s) + 1
    outputs per side. NNabla's ``ignore_border=False`` gives ceil(n / s), one too many when
    (n - k) is a multiple of s, so the input is padded with -inf to the exact extent instead."""
    pad_width = []
    for n in x.shape[2:]:
        outputs = -(-(n - kernel) // stride) + 1
        pad_width += [0, (outputs - 1) * stride + kernel - n]
    if any(pad_width):
        x = F.pad(x, pad_width, constant_value=-np.inf)
    return F.max_pooling(x, (kernel, kernel), (stride, stride))


def squeeze_features(x):
    """SqueezeNet 1.1 taps after conv0 and fire 4, 7, 9, 10, 11, 12 (64, 128, 256, 384, 384, 512, 512)."""
    relu1 = _conv_relu(x, 64, 3, "conv0", stride=2)
    h = _fire(_ceil_pool(relu1), "fire3", 16, 64)
    fire4 = _fire(h, "fire4", 16, 64)
    h = _fire(_ceil_pool(fire4), "fire6", 32, 128)
    fire7 = _fire(h, "fire7", 32, 128)
    fire9 = _fire(_ceil_pool(fire7), "fire9", 48, 192)
    fire10 = _fire(fire9, "fire10", 48, 192)
    fire11 = _fire(fire10, "fire11", 64, 256)
    fire12 = _fire(fire11, "fire12", 64, 256)
    return [relu1, fire4, fire7, fire9, fire10, fire11, fire12]


@dataclasses.dataclass(frozen=True)
class Trunk:
    """Everything the package knows about one feature trunk, in one place.

    The architecture: ``build`` makes the graph from a scaled (N, 3, H, W) input and returns the
    tapped activations, named ``taps`` as in the reference's ``pretrained_networks.py`` with
    ``channels`` channels each; ``min_size`` is the smallest image side the reference accepts
    (PyTorch refuses smaller pools; NNabla would silently round them up); ``ceil_mode_pools``
    says its max pools round up (PyTorch's ``ceil_mode=True``).

    How the engines run it (export size, Winograd tiles, pass sizes, memory slopes) is theirs:
    ``engines/tuning.py``.

    Tiling (see ``engines/tiling.py``): ``tap_strides`` are the taps' strides in input pixels;
    ``tile_align`` is the deepest one, and a multiple of every pool's; ``tile_halo`` (a
    multiple of it) is at least how far the deepest tap's receptive field reaches past its
    own stride on either side (max(P, R - s - P) for receptive field R, padding P, stride s).

    ``display_name`` names the network for people; ``scratch_init`` is how torchvision
    initialises it (``training.trainer`` draws a scratch trunk so); ``trainable`` says whether
    ``train`` fits it (E-LPIPS-VGG's lin layers come from E-LPIPS' own training, which is not
    the reference's 2AFC recipe); ``in_original_module``: the original NNabla module had it
    (its output format names it).
    """
    name: str
    build: typing.Callable
    taps: typing.Tuple[str, ...]
    channels: typing.Tuple[int, ...]
    min_size: int
    display_name: str
    scratch_init: str
    ceil_mode_pools: bool = False
    trainable: bool = True
    in_original_module: bool = False
    tap_strides: typing.Tuple[int, ...] = ()
    tile_align: int = 16
    tile_halo: int = 96


TRUNKS = collections.OrderedDict((t.name, t) for t in [
    # relu5: receptive field 163, padding 66, stride 16 -> halo >= max(66, 81).
    Trunk("alex", alex_features, ("relu1", "relu2", "relu3", "relu4", "relu5"),
          (64, 192, 384, 256, 256), 31, "AlexNet", "pytorch-default", in_original_module=True,
          tap_strides=(4, 8, 16, 16, 16), tile_halo=96),
    # relu5_3: receptive field 196, padding 90, stride 16 -> halo >= max(90, 90).
    Trunk("vgg", vgg_features, ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
          (64, 128, 256, 512, 512), 16, "VGG", "kaiming-normal-fan-out", in_original_module=True,
          tap_strides=(1, 2, 4, 8, 16), tile_halo=96),
    # relu7: receptive field 207, padding 88, stride 16 -> halo >= max(88, 103).
    Trunk("squeeze", squeeze_features, ("relu1", "relu2", "relu3", "relu4", "relu5", "relu6", "relu7"),
          (64, 128, 256, 384, 384, 512, 512), 17, "SqueezeNet", "kaiming-uniform",
          ceil_mode_pools=True,
          tap_strides=(2, 4, 8, 16, 16, 16, 16), tile_halo=112),
    Trunk("elpips-vgg", elpips_vgg_features,
          ("input", "relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3",
           "relu4_1", "relu4_2", "relu4_3", "relu5_1", "relu5_2", "relu5_3"),
          (3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512), 16,
          "E-LPIPS-VGG", "kaiming-normal-fan-out", trainable=False,
          tap_strides=(1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16), tile_halo=96),
])


def get_trunk(model):
    """Returns the :class:`Trunk` named ``model``; ``ValueError`` lists the valid names otherwise."""
    try:
        return TRUNKS[model]
    except (KeyError, TypeError):
        raise ValueError("unknown model {!r}; expected one of {}".format(
            model, ", ".join(TRUNKS))) from None


def check_size(model, height, width, what="the image"):
    """Raises ``ValueError`` naming ``what`` and the minimum when a ``height`` x ``width``
    image is too small for the ``model`` trunk."""
    side = get_trunk(model).min_size
    if min(height, width) < side:
        raise ValueError("{} is {}x{} pixels; the {!r} trunk needs at least {}x{}".format(
            what, width, height, model, side, side))


def parameter_shapes(model):
    """The names and shapes of the trunk's parameters, found by building it once on a dummy
    input (once per process; with zeros, so NNabla's random generator is left as it was)."""
    return collections.OrderedDict(_parameter_shapes(model))


@functools.lru_cache(maxsize=None)
def _parameter_shapes(model):
    trunk = get_trunk(model)
    scope = collections.OrderedDict()
    token = _SHAPES_ONLY.set(True)
    try:
        with nn.parameter_scope("trunk", scope), nn.auto_forward(False):
            trunk.build(nn.Variable((1, 3, trunk.min_size, trunk.min_size)))
            params = nn.get_parameters(grad_only=False)
    finally:
        _SHAPES_ONLY.reset(token)
    return tuple((name, tuple(v.shape)) for name, v in params.items())
