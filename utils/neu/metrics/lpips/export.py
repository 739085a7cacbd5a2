# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: the whole metric as one ONNX model, for other runtimes.

    python -m metrics.lpips.export --model vgg [--method spatial+sort] [--spatial] \\
        -o lpips_vgg.onnx

Inputs ``img0``, ``img1``: float32 (N, 3, H, W) RGB in [-1, 1], any N, H, W (at least the
trunk's smallest side); outputs ``score`` (N, 1, 1, 1) and with ``--spatial`` ``map``
(N, 1, H, W). The weights are inside the file; the model's metadata states the input
convention and every option. NNabla's exporter writes the trunk and the distance head (for
``sort`` methods the sorting is ONNX's TopK). Before the file is put in place it is run in
ONNX Runtime on the bundled sample pairs (and a batch of two odd-sized ones) and compared
with the NNabla graph; a difference over ``--tolerance`` (relative for values over 1) is an
error and writes nothing.
Exit codes: 0 written, 1 the check failed, 2 usage error, 4 weights or onnx missing.
"""
import glob
import logging
import os
import sys

import nnabla as nn
import numpy as np

from .cli.common import check_model_version, check_outputs
from .cli.options import add_model_options, add_output_options, add_quiet_option, make_parser
from .cli.runner import run
from .cli.scoring import add_method_arguments, method_options
from .data.atomic import atomic_path
from .engines.select import onnxruntime_available
from .data.images import read_image, to_model_input
from .errors import EnvironmentProblem
from .lpips import LPIPS

logger = logging.getLogger(__name__)
EXIT_CHECK_FAILED = 1
SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def sample_batches(min_size):
    """Input batches to check an export on: each bundled sample pair (ref, distorted), and
    two random pairs of an odd size in one batch."""
    batches = []
    for ref in sorted(glob.glob(os.path.join(SAMPLES, "ref", "*.png"))):
        pair = [to_model_input(read_image(p)) for p in (ref, ref.replace("ref", "distorted"))]
        batches.append(tuple(pair))
    rng = np.random.default_rng(0)
    side = (max(min_size, 45), max(min_size, 37) + 22)
    odd = rng.uniform(-1, 1, (4, 3) + side).astype(np.float32)
    batches.append((odd[:2], odd[2:]))
    return batches


def largest_difference(model_bytes, net, batches):
    """The largest difference between ONNX Runtime running the exported model and the NNabla
    graph of ``net``, over ``batches``, per output name: absolute, or relative for values over
    1 (without channel normalisation distances are raw squared activations, in the
    thousands, where float32 itself differs by more than 1e-5)."""
    import onnxruntime as ort
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    worst = dict.fromkeys(names, 0.0)
    for x0, x1 in batches:
        got = dict(zip(names, session.run(None, {"img0": x0, "img1": x1})))
        v0, v1 = nn.Variable.from_numpy_array(x0), nn.Variable.from_numpy_array(x1)
        expected = {"score": net(v0, v1)}
        if "map" in names:
            net.spatial = True
            expected["map"] = net(v0, v1)
            net.spatial = False
        nn.forward_all(list(expected.values()))
        for name in names:
            scale = np.maximum(1.0, np.abs(expected[name].d))
            worst[name] = max(worst[name], float((np.abs(got[name] - expected[name].d) / scale).max()))
    return worst


def build_parser():
    p = make_parser("export", "Write the LPIPS metric as one ONNX model.")
    add_model_options(p, lin=True)
    add_method_arguments(p)
    p.add_argument("--spatial", action="store_true", help="also output the spatial map")
    p.add_argument("--tolerance", type=float, default=1e-5,
                   help="largest difference from NNabla the check accepts")
    add_output_options(p, outfile_help="the .onnx file to write", required=True)
    add_quiet_option(p)
    return p


def _run(parser, args):
    check_model_version(args.model, args.version)
    check_outputs(args.outfile)
    if not onnxruntime_available():  # before any work (the check runs ONNX Runtime)
        raise EnvironmentProblem("exporting needs onnx, onnxruntime and nnabla-converter "
                                 "(`make setup` installs them)")
    from .engines.onnx.metric_model import metric_model
    net = LPIPS(args.model, params_dir=args.params_dir, version=args.version, lpips=args.lin,
                engine="nnabla", **method_options(args))  # the check's values: NNabla's graph
    model = metric_model(net, spatial=args.spatial)
    data = model.SerializeToString()
    worst = largest_difference(data, net, sample_batches(net.trunk.min_size))
    report = ", ".join("{} {:.2g}".format(k, v) for k, v in worst.items())
    if not max(worst.values()) <= args.tolerance:
        logger.error("the exported model differs from NNabla by up to %s (tolerance %g); "
                     "nothing was written", report, args.tolerance)
        return EXIT_CHECK_FAILED
    try:
        with atomic_path(args.outfile) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
    except OSError as e:
        raise EnvironmentProblem("cannot write {}: {}".format(args.outfile,
                                                             e.strerror or e)) from None
    logger.info("written to %s (%.1f MB); ONNX Runtime against NNabla on the samples: largest "
                "difference %s", args.outfile, len(data) / 1e6, report)


def main(argv=None):
    return run(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
