# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: which of two images is closer to a reference under E-LPIPS.

    python -m metrics.lpips.compare REF A B [--model elpips-vgg] [--ensemble auto|N] \\
        [--max-samples 5000] [--draws-per-pass 8] [--seed 0] [--backend auto] \\
        [--format text|json]

Both distances are sampled under the same random transformations and dropout (common random
numbers, as the reference's ``ex_compare_distances.py``), so their difference needs fewer
draws than either distance; ``auto`` (default) stops once the difference's 95% interval
excludes 0, or at ``--max-samples`` (then: undecided); ``N`` takes exactly N draws. The
network is ``--model``/``--version`` (default E-LPIPS-VGG, the reference's); on the CPU the
draws run on ONNX Runtime when installed (the same samples as NNabla's, several times
faster). Exit codes: 0 done (decided or not), 2 usage error, 3 unreadable or mismatched
images, 4 weights, backend, or images too large for --max-memory.
"""
import json
import logging
import sys

import numpy as np

from .cli.common import check_model_version, memory_budget, write_output
from .cli.options import (add_compute_options, add_model_options, add_quiet_option, make_parser,
                          use_context)
from .cli.runner import run
from .cli.scoring import add_ensemble_arguments, check_ensemble_arguments
from .data.images import read_image, to_model_input
from .data.pairs import InputError
from .elpips import ELPIPS, Config
from .engines import Scorer
from .engines.ensemble_scorer import images_per_pass
from .ensemble import compare
from .trunks import check_size

logger = logging.getLogger(__name__)


def build_parser():
    p = make_parser("compare", "Which of A and B is closer to REF under E-LPIPS.")
    p.add_argument("ref", metavar="REF")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    add_model_options(p, default="elpips-vgg")
    add_ensemble_arguments(p, default="auto", tolerances=False)
    add_compute_options(p)
    p.add_argument("--max-memory", type=float, metavar="GIB",
                   help="memory the draws may take (default a third of the memory available); "
                        "on ONNX Runtime a batch of draws goes through in smaller passes")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="a sentence, or one JSON object")
    add_quiet_option(p)
    return p


def _read(args):
    """The three images as model inputs; InputError for unreadable or mismatched ones."""
    try:
        images = [read_image(p) for p in (args.ref, args.a, args.b)]
        for path, img in zip((args.a, args.b), images[1:]):
            if img.shape != images[0].shape:
                raise InputError("{} is {}x{} but {} is {}x{}".format(
                    path, img.shape[1], img.shape[0], args.ref, images[0].shape[1],
                    images[0].shape[0]))
        check_size(args.model, images[0].shape[0], images[0].shape[1], args.ref)
    except ValueError as e:
        raise InputError(str(e)) from None
    return [np.ascontiguousarray(to_model_input(img)) for img in images]


def _run(parser, args):
    check_model_version(args.model, args.version)
    check_ensemble_arguments(args)
    max_memory = memory_budget(args, ensemble=True)
    ref, a, b = _read(args)
    use_context(args)
    scorer = Scorer(args.model, params_dir=args.params_dir, version=args.version,
                    backend=args.backend, max_memory=max_memory)
    elpips = ELPIPS(scorer.net, Config.for_image(*ref.shape[2:]))
    chunk = images_per_pass(scorer, elpips, ref.shape[2], ref.shape[3], args.draws_per_pass,
                            parts=3)
    auto = args.ensemble == "auto"
    result = compare(elpips, ref, a, b, np.random.default_rng(args.seed),
                     max_samples=args.max_samples if auto else args.ensemble,
                     batch=args.draws_per_pass, stop_early=auto,
                     engine=scorer.engine,
                     chunk=chunk)
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
    write_output(text)


def main(argv=None):
    return run(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
