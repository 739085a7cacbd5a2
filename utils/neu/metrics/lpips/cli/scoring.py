# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Scoring image files: path pairs through the input pipeline and a :class:`Scorer`."""
import functools
import logging
import os

from ..data.pairs import InputError, load_pair
from ..data.pipeline import Failure, batches
from ..distances import METHODS
from ..lpips import INPUT_NORMS

logger = logging.getLogger(__name__)


def add_method_arguments(parser):
    """The distance-method options every scoring command takes (see :func:`method_options`)."""
    parser.add_argument("--method", choices=METHODS, default="spatial",
                        help="how each layer's features are compared: spatial (LPIPS, the "
                        "default), each channel's mean, its sorted activations, or the sum of "
                        "spatial and one of those (Sjögren et al. 2022)")
    parser.add_argument("--no-channel-norm", dest="channel_norm", action="store_false",
                        help="compare raw activations, not unit-normalized feature vectors")
    parser.add_argument("--input-norm", choices=[n for n in INPUT_NORMS if n != "none"],
                        help="the trunk's input scaling: lpips (the version's, default) or "
                        "imagenet (torchvision's mean and std)")


def method_options(args):
    """The keyword arguments of :class:`~metrics.lpips.engines.Scorer` those options give."""
    return dict(method=args.method, channel_norm=args.channel_norm, input_norm=args.input_norm)


def score_pairs(scorer, pairs, resize=False, skip_bad=False, heatmap_dir=None, progress=None,
                stop=None, on_batch=None):
    """Scores ``pairs``, a list of (index, (path0, path1)), in batches of equal shapes.

    ``scorer`` must be spatial when ``heatmap_dir`` is given (each pair's map is saved there
    as ``<index>_<name of path0>.png``). ``progress`` (a :class:`~.progress.Progress`) is
    updated per batch; ``stop`` is called between pairs and after every batch, and raises to
    end the run. A pair that cannot be read raises :class:`InputError`, or with ``skip_bad``
    is logged and listed. ``on_batch(scored, skipped)`` gets each batch's results as they come
    ([(index, path0, path1, score)], [(index, path0, path1, reason)]), before ``stop``.

    Returns ({index: score}, [(index, path0, path1, reason) skipped])."""
    scores, skipped = {}, []
    load = functools.partial(_load, model=scorer.net.model, resize=resize)
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
                scores[index] = float(values[k])
                batch.append((index, path0, path1, scores[index]))
                if maps is not None:
                    from ..data.heatmap import save_heatmap
                    stem = os.path.splitext(os.path.basename(path0))[0]
                    save_heatmap(os.path.join(heatmap_dir, "{:05d}_{}.png".format(index, stem)),
                                 maps[k])
            if on_batch is not None:
                on_batch(batch, [])
            if stop is not None:
                stop()
        if progress is not None:
            progress.update(1 if isinstance(out, Failure) else len(out.indices))
    return scores, skipped


def _load(paths, model, resize):
    return load_pair(paths[0], paths[1], model, resize)
