"""First-run time, later start-up time and disk use of the ONNX export cache, per model.

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/bench_cache.py [--models alex vgg] \
        [--rounds 3] [--no-winograd]

For each model, in fresh processes with an empty cache folder of their own: the time to a
first score of a 64 px pair with the onnxruntime backend (weights read, graphs exported,
sessions created, one pair scored through the pairs graph), the same once the cache is
filled (the start-up a user meets on every later run), and the bytes the cache then holds,
against the model's ``.h5`` parameter file. Best of ``--rounds`` for times.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "utils", "neu")


def worker(model, winograd):
    """One timed start-up (run in its own process): prints seconds to the first score."""
    start = time.perf_counter()
    sys.path.insert(0, LIB)
    import numpy as np
    from metrics.lpips import Scorer
    scorer = Scorer(model, backend="onnxruntime", winograd=winograd)
    x = np.zeros((2, 3, 64, 64), np.float32)
    scorer.score_inputs(x[:1], x[1:])
    print(json.dumps({"seconds": time.perf_counter() - start}))


def run_worker(model, winograd, cache):
    env = dict(os.environ, NNABLA_LPIPS_CACHE_DIR=cache, PYTHONPATH=LIB)
    out = subprocess.run([sys.executable, __file__, "--worker", model, str(int(winograd))],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if out.returncode:
        sys.exit("the {} worker failed:\n{}".format(model, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))


def h5_bytes(model):
    sys.path.insert(0, LIB)
    from metrics.lpips.weights.store import default_params_dir
    return os.path.getsize(os.path.join(default_params_dir(), model + "_with_LPIPS.h5"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["alex", "vgg"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-winograd", dest="winograd", action="store_false")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], bool(int(args.worker[1])))
    print("{:6s} {:>10s} {:>10s} {:>10s} {:>10s} {:>6s}".format(
        "model", "first s", "later s", "cache MB", ".h5 MB", "ratio"))
    for model in args.models:
        first, later, size = [], [], None
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
                first.append(run_worker(model, args.winograd, cache))
                later.append(run_worker(model, args.winograd, cache))
                size = folder_bytes(cache)
        weights = h5_bytes(model)
        print("{:6s} {:10.2f} {:10.2f} {:10.1f} {:10.1f} {:6.2f}".format(
            model, min(first), min(later), size / 1e6, weights / 1e6, size / weights))


if __name__ == "__main__":
    main()
