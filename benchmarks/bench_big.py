"""Large images: speed and peak memory of one pair, per size and convolution algorithm, and the
CLI on 4 MP and 24 MP PNG pairs against the PyTorch reference in the same run.

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/bench_big.py --sweep [--models alex vgg] \
        [--sides 256 512 1024 2048] [--variants winograd direct nnabla] [--what score|maps]
    PYTHONPATH=utils/neu .venv/bin/python benchmarks/bench_big.py \
        [--reference-python /path/to/python-with-torch-and-lpips] [--models alex vgg] \
        [--cases 4mp 24mp] [--reference-limit-gb 20]

``--sweep`` scores one random pair of side x side images, untiled, per variant (ONNX Runtime
with Winograd's convolutions, with direct ones as large images get them, NNabla), each in a
fresh process after a 64 px warm-up: seconds for the pair and peak RSS. The engine's size
threshold (``Tuning.winograd_max_pixels`` in ``engines/tuning.py``) is read from the times; ``--what maps`` computes
the per-tap maps a tile pass computes, whose peak-memory slopes give ``Tuning.bytes_per_pixel``. The default run writes a pair of PNGs per
case (smooth noise and a distorted copy) and runs ``python -m metrics.lpips.compute`` on it
with default settings (best of two runs, the first of which may fill the export cache), then the reference (``lpips.LPIPS``, random trunk, ``load_image`` and
``im2tensor`` as its ``lpips_2imgs.py``) under an address-space limit so that a reference
that runs out of memory fails instead of taking the machine: wall time, peak RSS, score.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "utils", "neu")
CASES = {"4mp": (2448, 1632), "24mp": (6000, 4000)}  # width, height


VARIANTS = {"winograd": dict(backend="onnxruntime", winograd=True),
            "direct": dict(backend="onnxruntime", winograd=False),
            "nnabla": dict(backend="nnabla")}


def sweep_worker(model, side, variant, what):
    """One pair of side x side images, untiled: its score (``what`` = score) or its per-tap
    maps (``maps``, what a tile pass computes)."""
    sys.path.insert(0, LIB)
    from metrics.lpips import Scorer
    scorer = Scorer(model, max_memory=float("inf"), **VARIANTS[variant])
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, side, side), dtype=np.float32) * 2 - 1
    run = (lambda z: scorer.score_inputs(z[:1], z[1:])) if what == "score" else \
        scorer.engine.pair_layer_maps
    run(rng.random((2, 3, 64, 64), dtype=np.float32) * 2 - 1)  # sessions made
    start = time.perf_counter()
    run(x)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def run_measured(args, env=None, limit_gb=None):
    """(wall seconds, peak RSS MB, stdout) of a child process, through a tiny launcher that
    reports the child's own rusage (so the parent's memory is not counted)."""
    launcher = ("import json, os, resource, subprocess, sys, time\n"
                "limit = float(sys.argv[1])\n"
                "def pre():\n"
                "    if limit:\n"
                "        resource.setrlimit(resource.RLIMIT_AS, (int(limit * (1 << 30)),) * 2)\n"
                "t = time.perf_counter()\n"
                "p = subprocess.run(sys.argv[2:], preexec_fn=pre, stdout=subprocess.PIPE,\n"
                "                   stderr=subprocess.PIPE, universal_newlines=True)\n"
                "t = time.perf_counter() - t\n"
                "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
                "print(json.dumps({'rc': p.returncode, 'seconds': t, 'peak_mb': peak,\n"
                "                  'out': p.stdout, 'err': p.stderr[-2000:]}))\n")
    out = subprocess.run([sys.executable, "-c", launcher, str(limit_gb or 0)] + list(args),
                         env=env, stdout=subprocess.PIPE, universal_newlines=True, check=True)
    return json.loads(out.stdout)


def sweep(models, sides, rounds, variants, what):
    env = dict(os.environ, PYTHONPATH=LIB)
    print("{} of one pair, untiled: seconds and peak RSS (MB) per variant".format(what))
    print("{:6s} {:>6s} ".format("model", "side") + " ".join(
        "{:>10s} {:>7s}".format(v + " s", "MB") for v in variants))
    for model in models:
        for side in sides:
            cells = []
            for variant in variants:
                best, peak = None, 0
                for _ in range(rounds):
                    r = run_measured([sys.executable, __file__, "--sweep-worker", model, str(side),
                                      variant, what], env)
                    if r["rc"]:
                        raise RuntimeError(r["err"])
                    seconds = json.loads(r["out"].strip().splitlines()[-1])["seconds"]
                    best = seconds if best is None else min(best, seconds)
                    peak = max(peak, r["peak_mb"])
                cells.append("{:10.3f} {:7.0f}".format(best, peak))
            print("{:6s} {:6d} ".format(model, side) + " ".join(cells), flush=True)


def write_pair(folder, width, height):
    """A smooth random image and a noisier, blurred copy, as PNGs (what restoration people
    score); returns the two paths."""
    from PIL import Image, ImageFilter
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    ref = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    noisy = np.asarray(ref.filter(ImageFilter.GaussianBlur(2)), np.int16)
    noisy = np.clip(noisy + rng.integers(-12, 13, noisy.shape), 0, 255).astype(np.uint8)
    paths = os.path.join(folder, "ref.png"), os.path.join(folder, "distorted.png")
    ref.save(paths[0], compress_level=1)
    Image.fromarray(noisy).save(paths[1], compress_level=1)
    return paths


REFERENCE = """
import json, sys, torch, lpips
torch.set_num_threads(int(sys.argv[4]))
net = lpips.LPIPS(net=sys.argv[1], pnet_rand=True, verbose=False)
with torch.no_grad():
    d = net(lpips.im2tensor(lpips.load_image(sys.argv[2])), lpips.im2tensor(lpips.load_image(sys.argv[3])))
print(json.dumps({"score": float(d)}))
"""


def big_cases(models, cases, reference_python, limit_gb):
    env = dict(os.environ, PYTHONPATH=LIB)
    threads = os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="bench-big-") as tmp:
        for case in cases:
            width, height = CASES[case]
            paths = write_pair(tmp, width, height)
            for model in models:
                # Best of two: the first may export this version's graphs to the cache.
                ours = min((run_measured([sys.executable, "-m", "metrics.lpips.compute",
                                          paths[0], paths[1], "--model", model, "-q"], env)
                            for _ in range(2)), key=lambda r: (r["rc"] != 0, r["seconds"]))
                line = "{:5s} {:5s} ours: ".format(case, model)
                if ours["rc"]:
                    line += "failed (exit {}): {}".format(ours["rc"], ours["err"].strip()[-300:])
                else:
                    line += "{:7.1f} s, peak {:6.0f} MB".format(ours["seconds"], ours["peak_mb"])
                if reference_python:
                    ref = run_measured([reference_python, "-c", REFERENCE, model, paths[0],
                                        paths[1], str(threads)], limit_gb=limit_gb)
                    if ref["rc"]:
                        line += " | reference: failed (exit {}, address space limited to {} GB): {}".format(
                            ref["rc"], limit_gb, ref["err"].strip().splitlines()[-1:])
                    else:
                        line += " | reference: {:7.1f} s, peak {:6.0f} MB".format(
                            ref["seconds"], ref["peak_mb"])
                        if not ours["rc"]:
                            line += " | ours {:.2f}x faster, {:.2f}x its memory".format(
                                ref["seconds"] / ours["seconds"], ours["peak_mb"] / ref["peak_mb"])
                print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--models", nargs="+", default=["alex", "vgg"])
    parser.add_argument("--sides", nargs="+", type=int, default=[256, 512, 1024, 2048])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["4mp", "24mp"])
    parser.add_argument("--reference-python")
    parser.add_argument("--reference-limit-gb", type=float, default=20.0)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS),
                        default=["winograd", "direct"])
    parser.add_argument("--what", choices=["score", "maps"], default="score")
    parser.add_argument("--sweep-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sweep_worker:
        model, side, variant, what = args.sweep_worker
        return sweep_worker(model, int(side), variant, what)
    if args.sweep:
        return sweep(args.models, args.sides, args.rounds, args.variants, args.what)
    big_cases(args.models, args.cases, args.reference_python, args.reference_limit_gb)


if __name__ == "__main__":
    main()
