# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""What one layer of the metric sees, as a figure.

    python -m metrics.lpips.features IMAGE [IMAGE2] --model vgg --layer relu3_3 -o out.png

With one image: a grid of the layer's channel activations, the most active channels (by mean
activation) first, on one colour scale. With two: both images, the layer's distance map (what
the layer adds to the score at each position, before its spatial mean) and the per-channel
squared differences of the features (unit-normalized unless ``--no-channel-norm``), the
channels that add most to the distance first. ``--method`` shows the maps that method
compares (``mean``: constant maps; ``sort``: each channel's values in ascending order).
Exit codes: 2 usage, 3 unreadable images, 4 matplotlib or the weights missing.
"""
import functools
import logging
import math
import os
import sys

import nnabla as nn
import numpy as np

from .cli.common import check_outputs, require_matplotlib
from .cli.options import add_model_options, add_output_options, add_quiet_option, make_parser
from .cli.runner import run
from .cli.scoring import add_method_arguments, method_options
from .data.images import read_image, to_model_input
from .data.pairs import InputError, load_pair
from .distances import method_taps, squared_difference
from .lpips import LPIPS
from .errors import EnvironmentProblem, UsageProblem
from .trunks import check_size

logger = logging.getLogger(__name__)


def layer_view(net, images, layer):
    """One layer's arrays for one or two (H, W, 3) images, as :class:`LPIPS` ``net`` compares
    them: ``activations`` (n, C, h, w); with two images also ``squared`` (C, h, w), the
    squared feature difference, ``contribution`` (C,), each channel's share of the layer's
    distance (its lin weight, or 1 without lin layers, times the spatial mean of ``squared``),
    and ``distance`` (h, w), the layer's distance map."""
    x = np.ascontiguousarray(np.concatenate([to_model_input(image[None]) for image in images]))
    with nn.auto_forward(True), nn.no_grad():
        feats = net.features(nn.Variable.from_numpy_array(x))
        taps = method_taps(feats, net.method)
        view = {"activations": taps[layer].d.copy()}
        if len(images) == 2:
            halves = [[nn.Variable.from_numpy_array(f.d[i:i + 1]) for f in feats] for i in (0, 1)]
            maps = net.layer_distances(*halves)
            squared = squared_difference(*[nn.Variable.from_numpy_array(a[None]) for a in
                                           view["activations"]], net.channel_norm).d[0]
            weight = np.ones(len(squared), np.float32)
            if net.lpips:
                weight = net.parameters()[net.lin_names()[layer]].d.reshape(-1)
            view.update(squared=squared, distance=maps[layer].d[0, 0].copy(),
                        contribution=weight * squared.mean(axis=(1, 2)))
    return view


def _grid(figure, spec, maps, titles, cmap, label):
    """``maps`` drawn in a grid within ``spec`` on one colour scale, with its bar."""
    import matplotlib.gridspec as gridspec
    cols = math.ceil(math.sqrt(len(maps)))
    rows = math.ceil(len(maps) / cols)
    inner = gridspec.GridSpecFromSubplotSpec(rows, cols, subplot_spec=spec, wspace=0.08,
                                             hspace=0.25)
    vmax = max(float(np.max(maps)), 1e-12)
    shown = None
    for k, (m, title) in enumerate(zip(maps, titles)):
        axes = figure.add_subplot(inner[k // cols, k % cols])
        shown = axes.imshow(m, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
        axes.set_title(title, fontsize=7)
        axes.set_axis_off()
    figure.colorbar(shown, ax=figure.axes[-len(maps):], shrink=0.8, label=label)


# Room for the title and no more: matplotlib's default top (0.88) left an empty band.
_MARGINS = {"top": 0.94, "bottom": 0.02}


def _image_titles(paths):
    """Short names for the images: their file names, or where two are alike (ref/cat.png and
    distorted/cat.png) their folder too."""
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) < len(names):
        names = [os.path.join(os.path.basename(os.path.dirname(os.path.abspath(p))), n)
                 for p, n in zip(paths, names)]
    return names


def _show_image(axes, image, title):
    axes.imshow(image if image.dtype == np.uint8 else (image / np.max(image)))
    axes.set_title(title, fontsize=8)
    axes.set_axis_off()


def draw(net, images, view, layer, channels, names=None):
    """The figure of :func:`layer_view`'s arrays (matplotlib)."""
    from .figures import plt
    layer_name = net.layer_names[layer]
    acts = view["activations"]
    count = min(channels, acts.shape[1])
    titles = _image_titles(names or ["image 0", "image 1"][:len(images)])
    if len(images) == 1:
        order = np.argsort(-acts[0].mean(axis=(1, 2)), kind="stable")[:count]
        figure = plt.figure(figsize=(9, 10.5))
        outer = figure.add_gridspec(2, 1, height_ratios=[1, 3], hspace=0.12, **_MARGINS)
        _show_image(figure.add_subplot(outer[0]), images[0], titles[0])
        _grid(figure, outer[1], acts[0][order],
              ["ch {} ({:.3g})".format(c, acts[0][c].mean()) for c in order], "viridis",
              "activation")
        figure.suptitle("{} {}: the {} most active of {} channels (mean activation)".format(
            net.model, layer_name, count, acts.shape[1]), y=0.985)
        return figure
    order = np.argsort(-view["contribution"], kind="stable")[:count]
    total = float(view["distance"].mean())
    figure = plt.figure(figsize=(10, 11))
    outer = figure.add_gridspec(2, 1, height_ratios=[1, 2.4], hspace=0.1, **_MARGINS)
    top = outer[0].subgridspec(1, 3, wspace=0.15)
    for k, (image, title) in enumerate(zip(images, titles)):
        _show_image(figure.add_subplot(top[0, k]), image, title)
    axes = figure.add_subplot(top[0, 2])
    shown = axes.imshow(view["distance"], cmap="magma", vmin=0, interpolation="nearest")
    axes.set_title("distance map (mean {:.4g})".format(total), fontsize=8)
    axes.set_axis_off()
    figure.colorbar(shown, ax=axes, shrink=0.8)
    share = view["contribution"] / max(float(view["contribution"].sum()), 1e-30)
    _grid(figure, outer[1], view["squared"][order],
          ["ch {} ({:.1%})".format(c, share[c]) for c in order], "inferno",
          "squared difference" + (" (unit-normalized features)" if net.channel_norm else ""))
    figure.suptitle("{} {}: layer distance {:.4g}; the {} of {} channels adding most".format(
        net.model, layer_name, total, count, acts.shape[1]), y=0.985)
    return figure


def build_parser():
    p = make_parser("features", "Draw one layer's feature maps for an image, or its "
                                "differences and distance map for a pair.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="one image, or two to compare")
    add_model_options(p, version=False)
    p.add_argument("--layer", default="0",
                   help="the layer: its index in the distance's list (0 = first) or its name "
                        "(relu1, relu3_3, relu2/sort ...)")
    p.add_argument("--channels", type=int, default=16, help="channels shown")
    add_method_arguments(p)
    p.add_argument("--resize", action="store_true",
                   help="resize the second image to the first's size when they differ")
    add_output_options(p, outfile_help="the PNG to write", required=True)
    add_quiet_option(p)
    return p


def _layer_index(net, layer):
    names = net.layer_names
    if layer in names:
        return names.index(layer)
    try:
        index = int(layer)
    except ValueError:
        index = None
    if index is None or not 0 <= index < len(names):
        raise UsageProblem("--layer {!r} is not one of this distance's layers: 0-{} or {}".format(
            layer, len(names) - 1, ", ".join(names)))
    return index


def _run(parser, args):
    if len(args.images) > 2:
        raise UsageProblem("give one image or two, got {}".format(len(args.images)))
    if args.channels < 1:
        raise UsageProblem("--channels must be at least 1")
    check_outputs(args.outfile)
    require_matplotlib("drawing")
    net = LPIPS(args.model, params_dir=args.params_dir, **method_options(args))
    layer = _layer_index(net, args.layer)
    try:
        if len(args.images) == 2:
            images = list(load_pair(args.images[0], args.images[1],
                                    functools.partial(check_size, args.model), args.resize))
        else:
            images = [read_image(args.images[0])]
            check_size(args.model, images[0].shape[0], images[0].shape[1], args.images[0])
    except ValueError as e:
        raise InputError(str(e)) from None
    from .figures import save_figure
    view = layer_view(net, images, layer)
    try:
        save_figure(draw(net, images, view, layer, args.channels, args.images), args.outfile)
    except OSError as e:
        raise EnvironmentProblem("cannot write {}: {}".format(args.outfile,
                                                             e.strerror or e)) from None
    logger.info("written to %s", args.outfile)


def main(argv=None):
    return run(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
