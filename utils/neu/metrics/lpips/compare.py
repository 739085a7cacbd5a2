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
import argparse
import json
import logging
import sys

import numpy as np

from .cli.common import (EXIT_ENVIRONMENT, EXIT_INPUT, OutputError, check_model_version,
                         configure_logging, memory_budget, write_output)
from .data.images import read_image, to_model_input
from .cli.scoring import add_ensemble_arguments, check_ensemble_arguments
from .elpips import ELPIPS, Config
from .engines import BACKENDS, BackendError, Scorer, TileTooLarge
from .engines.ensemble_scorer import images_per_pass
from .ensemble import compare
from .trunks import TRUNKS, check_size
from .weights import WeightsError, registry

logger = logging.getLogger(__name__)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m metrics.lpips.compare",
                                description="Which of A and B is closer to REF under E-LPIPS.")
    p.add_argument("ref", metavar="REF")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--model", choices=list(TRUNKS), default="elpips-vgg")
    p.add_argument("--version", choices=list(registry.VERSIONS), default="0.1")
    p.add_argument("--params-dir", help="folder with the .h5 weight files")
    add_ensemble_arguments(p, default="auto", tolerances=False)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (ONNX Runtime on the CPU when installed, else NNabla; default), "
                        "nnabla, onnxruntime")
    p.add_argument("--max-memory", type=float, metavar="GIB",
                   help="memory the draws may take (default a third of the memory available); "
                        "on ONNX Runtime a batch of draws goes through in smaller passes")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_model_version(parser, args.model, args.version)
    check_ensemble_arguments(parser, args)
    max_memory = memory_budget(parser, args)
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
    ref, a, b = (np.ascontiguousarray(to_model_input(img)) for img in images)
    try:
        scorer = Scorer(args.model, params_dir=args.params_dir, version=args.version,
                        backend=args.backend, max_memory=max_memory)
        elpips = ELPIPS(scorer.net, Config.for_image(*ref.shape[2:]))
        chunk = images_per_pass(scorer, elpips, ref.shape[2], ref.shape[3],
                                args.draws_per_pass, parts=3)
    except (BackendError, WeightsError, TileTooLarge) as e:
        logger.error("%s", e)
        return EXIT_ENVIRONMENT
    auto = args.ensemble == "auto"
    result = compare(elpips, ref, a, b, np.random.default_rng(args.seed),
                     max_samples=args.max_samples if auto else args.ensemble,
                     batch=args.draws_per_pass, stop_early=auto,
                     engine=scorer.engine if scorer.backend == "onnxruntime" else None,
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
    try:
        write_output(text)
    except OutputError as e:
        logger.error("%s", e)
        return EXIT_ENVIRONMENT
    return 0


if __name__ == "__main__":
    sys.exit(main())
