"""LPIPS as a loss: speed and memory of a forward and backward step, against the PyTorch
reference measured in the same run.

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/bench_loss.py \
        [--reference-python /path/to/python-with-torch-and-lpips] [--seconds 3] [--rounds 3] \
        [--models alex vgg squeeze] [--skip-steps] [--skip-elpips] [--skip-optimize]

Prints:

* steps per second and peak memory of one loss step (d(x, target) and its gradient with
  respect to x, weights frozen; a static graph through ``LPIPS(model=...)`` reused, as the
  StyleGAN2 projection and ``perceptual_loss.py`` use it) for each model at batch 1 and 8, 64
  and 256 px: ours on the default engine (ONNX Runtime on the CPU) and with
  ``engine="nnabla"``, the reference, and the ratios; with ``--changing-target`` also ours
  with a target that changes every step (as in training);
* E-LPIPS-VGG steps (a new draw and graph every step, 64 px), default against NNabla;
* ``optimize match`` end to end (VGG, 64 px, the CLI as a whole process; steps per second
  from two runs of different lengths so start-up cancels) against the reference's
  ``perceptual_loss.py`` loop, and against ``--backend nnabla``.

Every measurement runs in a fresh process (so peak memory is its own), ``--rounds`` times in
turn with the reference; the best speed and the largest peak are kept. SqueezeNet's
trunk is in no PyPI package: ours uses a random one in the official layout (made as the
tests make it), the reference ``pnet_rand=True``, like every reference trunk here.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

import bench_lpips
from bench_lpips import best, run_worker
from timing import seeded_images, timed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIB = os.path.join(ROOT, "utils", "neu")
SAMPLE = os.path.join(LIB, "metrics", "lpips", "samples", "ref", os.listdir(
    os.path.join(LIB, "metrics", "lpips", "samples", "ref"))[0])
CASES = [(model, batch, size) for model in ("alex", "vgg", "squeeze")
         for size in (64, 256) for batch in (1, 8)]


def squeeze_params_dir(folder):
    """A random SqueezeNet with the real lin layers, in the official layout (as the tests'
    ``squeeze_params_dir`` fixture makes it): speed does not depend on the values."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
    from metrics.lpips.weights.conversion import convert
    from torch_writer import write_squeezenet_checkpoint
    wheel = os.path.join(ROOT, ".cache", "carriers", "lpips-0.1.4-py3-none-any.whl")
    if not os.path.isfile(os.path.join(folder, "squeeze_with_LPIPS.h5")):
        convert(folder, lpips=wheel, torchvision=[write_squeezenet_checkpoint(
            os.path.join(folder, "squeezenet_random.pth"))])
    return folder


def worker(config):
    """One measurement of ours (in its own process)."""
    sys.path.insert(0, LIB)
    import nnabla as nn
    import nnabla.functions as F
    from metrics.lpips import LPIPS
    from metrics.lpips.elpips import ELPIPS, Config
    params_dir = config.get("params_dir")
    n, size = config["batch"], config["size"]
    x = nn.Variable.from_numpy_array(seeded_images(n, size, 1), need_grad=True)
    target = nn.Variable.from_numpy_array(seeded_images(n, size, 2))
    if config["mode"] == "step":
        net = LPIPS(config["model"], params_dir=params_dir, engine=config["engine"])
        loss = F.sum(net(x, target))
        targets = [seeded_images(n, size, seed) for seed in (2, 3)]

        def step():
            if config.get("changing_target"):  # a training loop's: new values every step
                targets.reverse()
                target.d = targets[0]
            loss.forward(clear_no_need_grad=True)
            x.grad.zero()
            loss.backward(clear_buffer=True)
    else:  # E-LPIPS: a new draw, so a new graph, every step
        metric = ELPIPS(LPIPS("elpips-vgg", engine=config["engine"]), Config.for_image(size, size))
        rng = np.random.default_rng(0)

        def step():
            loss = F.sum(metric(x, target, rng))
            loss.forward(clear_no_need_grad=True)
            x.grad.zero()
            loss.backward(clear_buffer=True)
    rate = timed(step, 1, config["seconds"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"per_s": rate, "peak_mb": peak}))


def ours(config):
    return run_worker(__file__, config)


def reference(python, config):
    return bench_lpips.reference(python, config, "reference_loss.py")


def steps(args, params_dir):
    print("\nloss steps (forward + gradient of x), static graph, best of {} rounds:".format(args.rounds))
    print("{:<7} {:>5} {:>4} | {:>9} {:>8} | {:>9} {:>8} {:>7} | {:>9} {:>8} {:>7} | {:>9} "
          "{:>8} {:>7}".format("model", "batch", "px", "ref /s", "ref MB", "ours /s", "ours MB",
                               "ratio", "nnabla/s", "MB", "ratio", "changing", "MB", "ratio"))
    for model, batch, size in CASES:
        if model not in args.models:
            continue
        config = {"mode": "step", "model": model, "batch": batch, "size": size,
                  "seconds": args.seconds, "params_dir": params_dir if model == "squeeze" else None}
        refs, mine, theirs, changing = [], [], [], []
        for _ in range(args.rounds):
            if args.reference_python:
                refs.append(reference(args.reference_python, config))
            mine.append(ours(dict(config, engine="auto")))
            if not args.skip_nnabla:
                theirs.append(ours(dict(config, engine="nnabla")))
            if args.changing_target:
                changing.append(ours(dict(config, engine="auto", changing_target=True)))
        ref = best(refs) if refs else None
        a = best(mine)
        b = best(theirs) if theirs else None
        c = best(changing) if changing else None
        cell = lambda r: "{:>9.2f} {:>8.0f}".format(r["per_s"], r["peak_mb"]) if r else " " * 18  # noqa: E731
        ratio = lambda r: "{:>6.2f}x".format(r["per_s"] / ref["per_s"]) if r and ref else "      -"  # noqa: E731
        print("{:<7} {:>5} {:>4} | {} | {} {} | {} {} | {} {}".format(
            model, batch, size, cell(ref), cell(a), ratio(a), cell(b), ratio(b), cell(c),
            ratio(c)), flush=True)


def elpips_steps(args):
    print("\nE-LPIPS-VGG steps (new draw every step), 64 px, batch 1, best of {}:".format(args.rounds))
    config = {"mode": "elpips", "batch": 1, "size": 64, "seconds": args.seconds}
    mine, theirs = [], []
    for _ in range(args.rounds):
        mine.append(ours(dict(config, engine="auto")))
        theirs.append(ours(dict(config, engine="nnabla")))
    a, b = best(mine), best(theirs)
    print("  default (ONNX Runtime): {:7.2f} steps/s, peak {:5.0f} MB".format(a["per_s"], a["peak_mb"]))
    print("  engine=\"nnabla\":        {:7.2f} steps/s, peak {:5.0f} MB; default {:.2f}x".format(
        b["per_s"], b["peak_mb"], a["per_s"] / b["per_s"]), flush=True)


def _optimize_run(tmp, backend, count):
    """Wall seconds and peak MB of ``optimize match`` for ``count`` steps."""
    env = dict(os.environ, PYTHONPATH=LIB)
    command = [sys.executable, "-m", "metrics.lpips.optimize", "match", SAMPLE, "-o",
               os.path.join(tmp, "out"), "--size", "64", "--steps", str(count), "--snapshots",
               "1", "--backend", backend, "-c", "cpu", "-q"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError("optimize failed: {}".format(command))
    return time.perf_counter() - start, usage.ru_maxrss / 1024.0


def optimize_match(args):
    short, long = args.optimize_steps // 5, args.optimize_steps
    print("\noptimize match, vgg, 64 px (marginal steps/s of the whole CLI between {} and {} "
          "steps; best of {}):".format(short, long, args.rounds))
    rates, refs = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for backend in ("auto", "nnabla"):
                t_short, _ = _optimize_run(tmp, backend, short)
                t_long, peak = _optimize_run(tmp, backend, long)
                rates.setdefault(backend, []).append(
                    {"per_s": (long - short) / (t_long - t_short), "peak_mb": peak})
            if args.reference_python:
                refs.append(reference(args.reference_python, {
                    "mode": "match", "model": "vgg", "batch": 1, "size": 64, "steps": long}))
    ref = best(refs) if refs else None
    for backend, label in (("auto", "ours (default)"), ("nnabla", "ours (--backend nnabla)")):
        r = best(rates[backend])
        print("  {:<24} {:7.2f} steps/s, peak {:5.0f} MB{}".format(
            label, r["per_s"], r["peak_mb"],
            "; {:.2f}x the reference".format(r["per_s"] / ref["per_s"]) if ref else ""))
    if ref:
        print("  reference perceptual_loss.py loop: {:7.2f} steps/s, peak {:5.0f} MB".format(
            ref["per_s"], ref["peak_mb"]))
    a, b = best(rates["auto"]), best(rates["nnabla"])
    print("  default against --backend nnabla: {:.2f}x".format(a["per_s"] / b["per_s"]), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", help="a Python with torch, torchvision, lpips 0.1.4")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per case (best kept)")
    parser.add_argument("--models", nargs="+", default=["alex", "vgg", "squeeze"])
    parser.add_argument("--optimize-steps", type=int, default=200)
    parser.add_argument("--skip-nnabla", action="store_true", help="no engine=\"nnabla\" column")
    parser.add_argument("--changing-target", action="store_true",
                        help="also ours with a target whose values change every step (a "
                             "training loop's; a fixed target's trunk runs once)")
    parser.add_argument("--skip-steps", action="store_true")
    parser.add_argument("--skip-elpips", action="store_true")
    parser.add_argument("--skip-optimize", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    print("machine: {} cores".format(os.cpu_count()))
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_steps:
            sys.path.insert(0, LIB)
            params = squeeze_params_dir(tmp) if "squeeze" in args.models else None
            steps(args, params)
    if not args.skip_elpips:
        elpips_steps(args)
    if not args.skip_optimize:
        optimize_match(args)


if __name__ == "__main__":
    main()
