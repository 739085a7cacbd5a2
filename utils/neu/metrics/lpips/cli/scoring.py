# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Scoring image files: path pairs through the input pipeline and a :class:`Scorer`."""
import argparse
import functools
import logging
import os

from ..data.pairs import InputError, load_pair
from ..data.pipeline import Failure, batches
from ..distances import METHODS
from ..ensemble import EnsembleScore
from ..errors import UsageProblem
from ..lpips import INPUT_NORMS

logger = logging.getLogger(__name__)


def add_method_arguments(parser, many=False):
    """The distance-method options every scoring command takes (see :func:`method_options`);
    with ``many``, ``--method`` takes one or more (a list, None when not given)."""
    text = ("how each layer's features are compared: spatial (LPIPS itself), each channel's "
            "mean, its sorted activations, or the sum of spatial and one of those (Sjögren et "
            "al. 2022)")
    if many:
        parser.add_argument("--method", choices=METHODS, nargs="+", action="extend",
                            metavar="METHOD", help=text + "; one or more of " + ", ".join(
                                METHODS) + " (default spatial)")
    else:
        parser.add_argument("--method", choices=METHODS, default="spatial", help=text)
    parser.add_argument("--no-channel-norm", dest="channel_norm", action="store_false",
                        help="compare raw activations, not unit-normalized feature vectors")
    parser.add_argument("--input-norm", choices=[n for n in INPUT_NORMS if n != "none"],
                        help="the trunk's input scaling: lpips (the version's, default) or "
                        "imagenet (torchvision's mean and std)")


def method_options(args):
    """The keyword arguments of :class:`~metrics.lpips.engines.Scorer` those options give."""
    return dict(method=args.method, channel_norm=args.channel_norm, input_norm=args.input_norm)


def _ensemble_count(text):
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError("expected auto or a positive number of draws, got "
                                         "{!r}".format(text))
    return count


def add_ensemble_arguments(parser, default=None, tolerances=True):
    """E-LPIPS ensemble options: ``--ensemble auto|N`` (off unless ``default``),
    ``--max-samples``, ``--draws-per-pass``, ``--seed``, and with ``tolerances`` the
    automatic rule's ``--abs-tol`` and ``--rel-tol``."""
    parser.add_argument("--ensemble", type=_ensemble_count, default=default, metavar="auto|N",
                        help="E-LPIPS: the mean over random transformations, N draws or (auto) "
                        "as many as the precision asked needs")
    if tolerances:
        parser.add_argument("--abs-tol", type=float, default=0.01,
                            help="auto: stop when 1.96 standard errors are below this "
                            "...")
        parser.add_argument("--rel-tol", type=float, default=0.025,
                            help="... and below this fraction of the mean")
    parser.add_argument("--max-samples", type=int, default=5000,
                        help="auto: at most this many draws")
    parser.add_argument("--draws-per-pass", type=int, default=8,
                        help="draws made together, stratified as E-LPIPS does")
    parser.add_argument("--seed", type=int, default=0, help="random seed")


def check_ensemble_arguments(args):
    """Usage errors of the ensemble options, before any work."""
    if args.max_samples < 1 or args.draws_per_pass < 1:
        raise UsageProblem("--max-samples and --draws-per-pass must be at least 1")
    for name in ("abs_tol", "rel_tol"):
        if not getattr(args, name, 1) > 0:
            raise UsageProblem("--{} must be positive".format(name.replace("_", "-")))


def ensemble_options(args):
    """The ensemble settings that change a score (for journals and JSON outputs): empty
    without ``--ensemble``."""
    if not getattr(args, "ensemble", None):
        return {}
    options = {"ensemble": args.ensemble, "seed": args.seed,
               "draws_per_pass": args.draws_per_pass}
    if args.ensemble == "auto":
        options.update(abs_tol=args.abs_tol, rel_tol=args.rel_tol, max_samples=args.max_samples)
    return options


def score_pairs(scorer, pairs, resize=False, skip_bad=False, heatmap_dir=None, progress=None,
                stop=None, on_batch=None, heatmap_scale=None, heatmap_overlay=False):
    """Scores ``pairs``, a list of (index, (path0, path1)), in batches of equal shapes.

    ``scorer`` must be spatial when ``heatmap_dir`` is given (each pair's map is saved there
    as ``<index>_<name of path0>.png``, coloured up to ``heatmap_scale`` or to its own maximum,
    over the first image with ``heatmap_overlay``). ``progress`` (a :class:`~.progress.Progress`) is
    updated per batch; ``stop`` is called between pairs and after every batch, and raises to
    end the run. A pair that cannot be read raises :class:`InputError`, or with ``skip_bad``
    is logged and listed. ``on_batch(scored, skipped)`` gets each batch's results as they come
    ([(index, path0, path1, score)], [(index, path0, path1, reason)]), before ``stop``.

    Returns ({index: score}, [(index, path0, path1, reason) skipped])."""
    scores, skipped = {}, []
    load = functools.partial(_load, check_size=scorer.check_size, resize=resize)
    for out in batches(pairs, load, scorer.batch_size, stop=stop, errors=(InputError,)):
        if isinstance(out, Failure):
            if not skip_bad:
                raise out.error
            path0, path1 = out.item
            logger.warning("skipped %s - %s: %s", path0, path1, out.error)
            skipped.append((out.index, path0, path1, str(out.error)))
            if on_batch is not None:
                on_batch([], [skipped[-1]])
        else:
            result = scorer.score_images(*out.arrays)
            values, maps = result if heatmap_dir else (result, None)
            batch = []
            for k, (index, (path0, path1)) in enumerate(zip(out.indices, out.items)):
                scores[index] = values[k] if isinstance(values[k], EnsembleScore) \
                    else float(values[k])
                batch.append((index, path0, path1, scores[index]))
                if maps is not None:
                    from ..data.heatmap import save_heatmap
                    stem = os.path.splitext(os.path.basename(path0))[0]
                    save_heatmap(os.path.join(heatmap_dir, "{:05d}_{}.png".format(index, stem)),
                                 maps[k], heatmap_scale,
                                 out.arrays[0][k] if heatmap_overlay else None)
            if on_batch is not None:
                on_batch(batch, [])
            if stop is not None:
                stop()
        if progress is not None:
            progress.update(1 if isinstance(out, Failure) else len(out.indices))
    return scores, skipped


def _load(paths, check_size, resize):
    return load_pair(paths[0], paths[1], check_size, resize)
