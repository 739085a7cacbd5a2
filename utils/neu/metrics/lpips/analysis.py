# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: how each distance method ranks changes people hardly notice (shifts of 1-8
px, turns of 1-4 degrees, rescalings by 5-10%) against real distortions (blur, noise, JPEG)
of about the same spatial LPIPS, as Sjögren et al. (2022) analyse them.

    python -m metrics.lpips.analysis IMAGE [IMAGE ...] [--model alex] [--methods ...] \\
        [--no-lin] [--no-channel-norm] [--input-norm imagenet] [--format text|json] \\
        [-o FILE] [--plot PNG]

For every image and method: each variant's distance to the image (see
:mod:`~metrics.lpips.evaluation.robustness`), and how many of the geometric changes score
below every real distortion (a method robust to them gets all). ``--no-lin`` sums channels
instead of using the pretrained LPIPS lin layers, as that paper's analysis does. Results go
to stdout or ``-o`` (written whole or not at all). Exit codes: 0 done, 2 usage error,
3 unreadable or too small images, 4 weights, compute context or matplotlib missing.
"""
import json
import logging
import os
import sys

import numpy as np

from .cli.common import check_outputs, require_matplotlib, write_output
from .cli.options import (add_compute_options, add_model_options, add_output_options,
                          add_quiet_option, make_parser, use_context)
from .cli.runner import run
from .data.images import read_image, to_unit_range
from .data.pairs import InputError
from .distances import METHODS
from .engines import Scorer
from .evaluation import robustness
from .lpips import INPUT_NORMS

logger = logging.getLogger(__name__)


def analyse(images, scorers, lpips_scorer):
    """Scores every variant of every image (name -> uint8 (H, W, 3)) with every scorer
    (method -> :class:`Scorer`), the distortions' levels chosen by ``lpips_scorer`` (plain
    LPIPS). Returns a list, per image, of dicts: ``image``, ``labels``, ``kinds``,
    ``distances`` (method -> list) and ``robust`` (method -> count of geometric changes below
    every distortion)."""
    def score(scorer, crop, arrays):
        return scorer.score_images(np.stack([crop] * len(arrays)), np.stack(arrays))

    results = []
    for name, img in images.items():
        changes, crop = robustness.variants(img, lambda c, a: score(lpips_scorer, c, a))
        kinds = [k for _, k, _ in changes]
        distances = {m: [float(d) for d in score(s, crop, [a for _, _, a in changes])]
                     for m, s in scorers.items()}
        robust = {m: int(sum(robustness.ranks_below_every_distortion(d, kinds)))
                  for m, d in distances.items()}
        results.append({"image": name, "size": list(crop.shape[:2]),
                        "labels": [label for label, _, _ in changes], "kinds": kinds,
                        "distances": distances, "robust": robust})
    return results


def render_text(results, settings):
    methods = list(results[0]["distances"])
    width = max(12, max(len(m) for m in methods))
    lines = ["{} trunk, {}, channel norm {}, input {}".format(
        settings["model"], "LPIPS lin layers" if settings["lin"] else "channel sums",
        "on" if settings["channel_norm"] else "off", settings["input_norm"])]
    for r in results:
        lines.append("")
        lines.append("{} ({}x{} px compared)".format(r["image"], r["size"][1], r["size"][0]))
        lines.append("{:<16}".format("change") + "".join("{:>{w}}".format(m, w=width + 1)
                                                       for m in methods))
        for i, (label, kind) in enumerate(zip(r["labels"], r["kinds"])):
            lines.append("{:<16}".format(label + (" *" if kind == "distortion" else "")) + "".join(
                "{:>{w}.5f}".format(r["distances"][m][i], w=width + 1) for m in methods))
        n = r["kinds"].count("geometric")
        lines.append("{:<16}".format("below all *") + "".join(
            "{:>{w}}".format("{}/{}".format(r["robust"][m], n), w=width + 1) for m in methods))
    total = sum(r["kinds"].count("geometric") for r in results)
    lines.append("")
    lines.append("geometric changes scored below every real distortion (*) of their image, "
                 "of {}:".format(total))
    lines.append("  " + ", ".join("{} {}".format(m, sum(r["robust"][m] for r in results))
                                  for m in methods))
    return "\n".join(lines) + "\n"


def plot(results, path):
    """Each method's distances, divided per image by the mean of its real distortions: the
    geometric changes (dots) should lie below the distortions (crosses)."""
    from .figures import plt, save_figure
    methods = list(results[0]["distances"])
    figure, axes = plt.subplots(figsize=(1.6 + 1.3 * len(methods), 3.6))
    for j, method in enumerate(methods):
        for r in results:
            d = np.asarray(r["distances"][method])
            kinds = np.asarray(r["kinds"])
            scale = d[kinds == "distortion"].mean()
            jitter = np.linspace(-0.25, 0.25, len(d))
            axes.scatter(j + jitter[kinds == "geometric"], d[kinds == "geometric"] / scale,
                         s=12, color="#3b6ea8", label="shift, turn, rescale" if j == 0 and r is results[0] else None)
            axes.scatter(j + jitter[kinds == "distortion"], d[kinds == "distortion"] / scale,
                         s=24, marker="x", color="#c0392b",
                         label="blur, noise, JPEG" if j == 0 and r is results[0] else None)
    axes.set_xticks(range(len(methods)))
    axes.set_xticklabels(methods, rotation=20)
    axes.set_yscale("log")
    axes.set_ylabel("distance / mean distortion distance")
    axes.legend(fontsize="small")
    axes.set_title("which changes each method finds larger")
    return save_figure(figure, path)


def build_parser():
    p = make_parser("analysis", "Rank small shifts, turns and rescalings against real "
                                "distortions, per distance method.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_model_options(p, version=False, lin=True)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   help="the methods compared")
    p.add_argument("--no-channel-norm", dest="channel_norm", action="store_false",
                   help="compare raw activations, not unit-normalized feature vectors")
    p.add_argument("--input-norm", choices=[n for n in INPUT_NORMS if n != "none"],
                   default="lpips", help="the trunk's input scaling")
    add_compute_options(p)
    add_output_options(p, ("text", "json"))
    p.add_argument("--plot", metavar="PNG", help="also draw the distances (matplotlib)")
    add_quiet_option(p)
    return p


def _read(paths):
    images = {}
    try:
        for path in paths:
            img = read_image(path)
            if img.dtype != np.uint8:  # the distortions (JPEG) work on 8 bits
                img = np.round(to_unit_range(img) * 255).astype(np.uint8)
            robustness.centre_crop(img)  # too small: said now, before any work
            images[os.path.basename(path)] = img
    except ValueError as e:
        raise InputError(str(e)) from None
    return images


def _run(parser, args):
    check_outputs(args.outfile, args.plot)
    if args.plot:
        require_matplotlib("--plot")
    images = _read(args.images)
    use_context(args)
    scorers = {m: Scorer(args.model, params_dir=args.params_dir, lpips=args.lin, method=m,
                         channel_norm=args.channel_norm, input_norm=args.input_norm,
                         backend=args.backend) for m in dict.fromkeys(args.methods)}
    lpips_scorer = Scorer(args.model, params_dir=args.params_dir, backend=args.backend)
    try:
        results = analyse(images, scorers, lpips_scorer)
    except ValueError as e:  # an image smaller than the trunk takes, once cropped
        raise InputError(str(e)) from None
    settings = {"model": args.model, "lin": args.lin, "channel_norm": args.channel_norm,
                "input_norm": args.input_norm}
    text = (json.dumps({"settings": settings, "results": results}, indent=1) + "\n"
            if args.format == "json" else render_text(results, settings))
    write_output(text, args.outfile)
    if args.plot:
        plot(results, args.plot)
        logger.info("plot written to %s", args.plot)


def main(argv=None):
    return run(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
