# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: which of two images is closer to a reference under E-LPIPS.

    python -m metrics.lpips.compare REF A B [--model elpips-vgg] \\
        [--ensemble auto|N] [--max-samples 5000] [--seed 0] [--format text|json]

Both distances are sampled under the same random transformations and dropout (common random
numbers, as the reference's ``ex_compare_distances.py``), so their difference needs fewer
draws than either distance; ``auto`` (default) stops once the difference's 95% interval
excludes 0, or at ``--max-samples`` (then: undecided); ``N`` takes exactly N draws. The
network is ``--model``/``--version`` (default E-LPIPS-VGG, the reference's). Exit codes:
0 done (decided or not), 2 usage error, 3 unreadable or mismatched images, 4 weights.
"""
import argparse
import json
import logging
import sys

import numpy as np

from .cli.common import (EXIT_ENVIRONMENT, EXIT_INPUT, OutputError, check_model_version,
                         configure_logging, write_output)
from .data.images import read_image, to_model_input
from .elpips import ELPIPS, Config
from .ensemble import compare
from .lpips import LPIPS
from .trunks import TRUNKS, check_size
from .weights import WeightsError, registry

logger = logging.getLogger(__name__)


def _ensemble(text):
    if text == "auto":
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError("expected auto or a positive number of draws, got "
                                         "{!r}".format(text))
    return count


def build_parser():
    p = argparse.ArgumentParser(prog="python -m metrics.lpips.compare",
                                description="Which of A and B is closer to REF under E-LPIPS.")
    p.add_argument("ref", metavar="REF")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--model", choices=list(TRUNKS), default="elpips-vgg")
    p.add_argument("--version", choices=list(registry.VERSIONS), default="0.1")
    p.add_argument("--params-dir", help="folder with the .h5 weight files")
    p.add_argument("--ensemble", type=_ensemble, default=None, metavar="auto|N",
                   help="auto (default): draw until the answer is significant; N: N draws")
    p.add_argument("--max-samples", type=int, default=5000, help="cap for auto (default 5000)")
    p.add_argument("--batch", type=int, default=8, help="draws per pass (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_model_version(parser, args.model, args.version)
    if args.max_samples < 1 or args.batch < 1:
        parser.error("--max-samples and --batch must be at least 1")
    configure_logging(args.quiet)
    try:
        images = [read_image(p) for p in (args.ref, args.a, args.b)]
        for path, img in zip((args.a, args.b), images[1:]):
            if img.shape != images[0].shape:
                raise ValueError("{} is {}x{} but {} is {}x{}".format(
                    path, img.shape[1], img.shape[0], args.ref, images[0].shape[1],
                    images[0].shape[0]))
        check_size(args.model, images[0].shape[0], images[0].shape[1], args.ref)
    except ValueError as e:
        logger.error("%s", e)
        return EXIT_INPUT
    try:
        net = LPIPS(args.model, params_dir=args.params_dir, version=args.version)
    except WeightsError as e:
        logger.error("%s", e)
        return EXIT_ENVIRONMENT
    ref, a, b = (np.ascontiguousarray(to_model_input(img)) for img in images)
    elpips = ELPIPS(net, Config.for_image(*ref.shape[2:]))
    cap = args.ensemble or args.max_samples
    result = compare(elpips, ref, a, b, np.random.default_rng(args.seed), max_samples=cap,
                     batch=args.batch, stop_early=args.ensemble is None)
    names = {"a": args.a, "b": args.b}
    if args.format == "json":
        text = json.dumps(dict(result._asdict(), closer=names.get(result.closer),
                               ref=args.ref, model=args.model, version=args.version,
                               seed=args.seed), indent=1) + "\n"
    else:
        verdict = ("{} is closer to {}".format(names[result.closer], args.ref)
                   if result.closer else "undecided")
        text = ("{}: d(A) = {:.5f}, d(B) = {:.5f}, d(A) - d(B) = {:.5f} +- {:.5f} (95%), "
                "{} draws\n".format(verdict, result.d_a, result.d_b, result.difference,
                                    result.half_width, result.count))
    try:
        write_output(text)
    except OutputError as e:
        logger.error("%s", e)
        return EXIT_ENVIRONMENT
    return 0


if __name__ == "__main__":
    sys.exit(main())
