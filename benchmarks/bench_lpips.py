"""Speed and memory of metrics.lpips, against the PyTorch reference measured in the same run.

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/bench_lpips.py \
        [--reference-python /path/to/python-with-torch-and-lpips] [--seconds 3] [--cli-pairs 500] \
        [--rounds 3] [--cli64-pairs 5000] [--skip-library] [--skip-cli]
        [--variants nnabla direct winograd]

Prints, for alex and vgg at 64 and 256 px: pairs per second and peak memory of the library
call (each backend; ONNX Runtime with and without Winograd convolutions), 2AFC triplets per
second, the achieved FLOP/s of the trunk convolutions against a float32 matrix-multiply peak
measured in this run (counted as direct convolutions, so Winograd can pass 100%); the CLI
over folders of 64 px PNG pairs against the engine's own rate (how much the input pipeline
costs), and over folders of 256 px PNG pairs; with the reference's figures and the ratio where
a reference is given (for the CLI: whole processes, and the reference's loop alone).
Every measurement runs in a fresh process, so peak memory (max RSS) is its own. Each is
repeated ``--rounds`` times, ours and the reference's in turn, and the best of each kept
(peak memory: the largest), so that a busy moment of the machine does not decide a ratio.
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

from timing import seeded_images, timed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIB = os.path.join(ROOT, "utils", "neu")
SAMPLES = os.path.join(LIB, "metrics", "lpips", "samples", "ref")
VARIANTS = {"nnabla": ("nnabla", False), "direct": ("onnxruntime", False),
            "winograd": ("onnxruntime", True)}  # name: (backend, winograd)
CASES = [("alex", 64, 32), ("alex", 256, 8), ("vgg", 64, 16), ("vgg", 256, 4)]  # model, px, batch


def trunk_flops_per_image(model, size):
    """Multiply-adds x 2 of the trunk's convolutions for one size x size image."""
    import nnabla as nn
    import nnabla.functions as F
    from metrics.lpips.trunks import get_trunk
    total = []

    def count(f):
        if f.info.type_name == "Convolution":
            o, i, kh, kw = f.inputs[1].shape
            _, _, ho, wo = f.outputs[0].shape
            total.append(2 * o * i * kh * kw * ho * wo)

    with nn.parameter_scope("flops", {}):
        F.sink(*get_trunk(model).build(nn.Variable((1, 3, size, size)))).visit(count)
    return sum(total)


def worker(config):
    """One measurement of our library (run in its own process)."""
    sys.path.insert(0, LIB)
    from metrics.lpips import Scorer
    scorer = Scorer(config["model"], batch_size=config["batch"], backend=config["backend"],
                    winograd=config["winograd"])
    n, size = config["batch"], config["size"]
    ref, p0, p1 = (seeded_images(n, size, seed) for seed in (1, 2, 3))
    if config["mode"] == "pairs":
        rate = timed(lambda: scorer.score_inputs(ref, p0), n, config["seconds"])
    else:
        rate = timed(lambda: scorer.score_2afc(ref, p0, p1), n, config["seconds"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    backend = scorer.backend + ("+winograd" if config["winograd"] and scorer.backend == "onnxruntime" else "")
    print(json.dumps({"per_s": rate, "peak_mb": peak, "backend": backend,
                      "flops_per_image": trunk_flops_per_image(config["model"], size)}))


def run_json(command, env=None):
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError("{} failed:\n{}".format(command[:3], out.stderr[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_worker(script, config):
    """The JSON line of ``script --worker CONFIG`` run by this Python with the package."""
    env = dict(os.environ, PYTHONPATH=LIB)
    return run_json([sys.executable, script, "--worker", json.dumps(config)], env)


def ours(config):
    return run_worker(__file__, config)


def reference(python, config, script="reference_lpips.py"):
    """The JSON line of a reference script of this folder run by ``python``."""
    return run_json([python, os.path.join(HERE, script), json.dumps(config)])


def reference_script(python, dirs):
    """The reference's folder script as a whole process: (loop pairs/s, wall s, peak MB)."""
    start = time.perf_counter()
    r = reference(python, {"mode": "dirs", "model": "alex", "dir0": dirs[0], "dir1": dirs[1]})
    return r["per_s"], time.perf_counter() - start, r["peak_mb"]


def best(results):
    """The fastest of repeated measurements (dicts with per_s and peak_mb), with the largest
    peak memory among them."""
    top = dict(max(results, key=lambda r: r["per_s"]))
    top["peak_mb"] = max(r["peak_mb"] for r in results)
    return top


def matmul_peak(n=2048, repeats=5):
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    best = min(_time(lambda: a @ a) for _ in range(repeats))
    return 2 * n ** 3 / best


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_pair_folders(root, count, size=256):
    """``count`` pairs of size x size PNGs (crops of the samples, the second one noisy)."""
    import imageio.v3 as iio
    from PIL import Image
    sources = [np.asarray(Image.fromarray(iio.imread(os.path.join(SAMPLES, f))).resize((size, size)))
               for f in sorted(os.listdir(SAMPLES))]
    rng = np.random.default_rng(0)
    dirs = [os.path.join(root, "a"), os.path.join(root, "b")]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    for i in range(count):
        img = np.roll(sources[i % len(sources)], i, axis=1)
        noisy = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
        iio.imwrite(os.path.join(dirs[0], "{:04d}.png".format(i)), img)
        iio.imwrite(os.path.join(dirs[1], "{:04d}.png".format(i)), noisy)
    return dirs


def run_cli(dirs, batch, out):
    """Wall time and peak RSS of one CLI run over the two folders."""
    env = dict(os.environ, PYTHONPATH=LIB)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "metrics.lpips.compute", dirs[0], dirs[1],
                             "-o", out, "-q", "--batch-size", str(batch)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise RuntimeError("the CLI failed with status {}".format(status))
    return elapsed, usage.ru_maxrss / 1024.0


def cli_against_engine(tmp, pairs, rounds, reference_python=None):
    """The CLI's end-to-end pairs/s over folders of 64 px PNG pairs against the engine's own
    pairs/s on arrays, measured in turn. The CLI's rate is marginal: (N - N/5) pairs over the
    difference of two whole runs' times, so start-up (imports, sessions) cancels out."""
    small = make_pair_folders(os.path.join(tmp, "small64"), max(pairs // 5, 1), size=64)
    big = make_pair_folders(os.path.join(tmp, "big64"), pairs, size=64)
    n_small, n_big = len(os.listdir(small[0])), len(os.listdir(big[0]))
    out = os.path.join(tmp, "scores64.txt")
    engine, t_small, t_big, theirs = [], [], [], []
    config = {"model": "alex", "size": 64, "batch": 32, "mode": "pairs", "seconds": 3.0,
              "backend": "auto", "winograd": True}
    for _ in range(rounds):
        engine.append(ours(config))
        t_small.append(run_cli(small, 32, out)[0])
        t_big.append(run_cli(big, 32, out)[0])
        if reference_python:
            theirs.append(reference(reference_python, {"mode": "dirs", "model": "alex",
                                                       "dir0": big[0], "dir1": big[1]})["per_s"])
    engine_rate = best(engine)["per_s"]
    cli_rate = (n_big - n_small) / (min(t_big) - min(t_small))
    print("\nCLI, alex, folders of 64 px PNG pairs, batch 32 (best of {} rounds):".format(rounds))
    print("  engine alone (Scorer.score_inputs on arrays): {:7.1f} pairs/s".format(engine_rate))
    print("  CLI end to end ({} and {} pairs; marginal): {:7.1f} pairs/s = {:.0f}% of the "
          "engine's".format(n_small, n_big, cli_rate, 100 * cli_rate / engine_rate))
    if theirs:
        print("  reference folder loop (lpips_2dirs.py, one pair a forward): {:7.1f} pairs/s; "
              "ours {:.2f}x".format(max(theirs), cli_rate / max(theirs)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", help="a Python with torch, torchvision, lpips 0.1.4")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--cli-pairs", type=int, default=500, help="pairs for the CLI benchmark")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measurements per case, ours and the reference's in turn (best kept)")
    parser.add_argument("--skip-library", action="store_true")
    parser.add_argument("--cli64-pairs", type=int, default=5000,
                        help="pairs for the 64 px CLI-against-engine case")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS),
                        help="our backends to measure in the library cases")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))

    peak = matmul_peak()
    print("machine: {} cores; float32 matmul peak (numpy, 2048^3): {:.1f} GFLOP/s".format(
        os.cpu_count(), peak / 1e9))
    if not args.skip_library:
        print("\n{:<5} {:>4} {:<6} {:<20} {:>9} {:>8} {:>9} {:>6} | {:>9} {:>8} | {:>6}".format(
            "model", "px", "mode", "backend", "per s", "peak MB", "GFLOP/s", "%peak",
            "ref per s", "ref MB", "ratio"))
        for model, size, batch in CASES:
            for mode in ("pairs", "2afc"):
                config = {"model": model, "size": size, "batch": batch, "mode": mode,
                          "seconds": args.seconds}
                variants = [VARIANTS[v] for v in args.variants]
                runs = {variant: [] for variant in variants}
                refs = []
                for _ in range(args.rounds):
                    if args.reference_python:
                        refs.append(reference(args.reference_python, config))
                    for backend, winograd in variants:
                        runs[backend, winograd].append(ours(dict(config, backend=backend,
                                                                 winograd=winograd)))
                ref = best(refs) if refs else None
                for variant in variants:
                    r = best(runs[variant])
                    images_per_item = 2 if mode == "pairs" else 3
                    flops = r["per_s"] * images_per_item * r["flops_per_image"]
                    print("{:<5} {:>4} {:<6} {:<20} {:>9.2f} {:>8.0f} {:>9.1f} {:>5.1f}% | {} | {}".format(
                        model, size, mode, r["backend"], r["per_s"], r["peak_mb"], flops / 1e9,
                        100 * flops / peak,
                        "{:>9.2f} {:>8.0f}".format(ref["per_s"], ref["peak_mb"]) if ref else " " * 18,
                        "{:>5.2f}x".format(r["per_s"] / ref["per_s"]) if ref else "     -"), flush=True)
    if not args.skip_cli:
        with tempfile.TemporaryDirectory() as tmp:
            cli_against_engine(tmp, args.cli64_pairs, args.rounds, args.reference_python)
            print("\nCLI, alex, folders of 256 px PNG pairs (default backend; best of {} "
                  "for the full set at batch 32 and the reference):".format(args.rounds))
            small = make_pair_folders(os.path.join(tmp, "small"), max(args.cli_pairs // 5, 1))
            dirs = make_pair_folders(os.path.join(tmp, "big"), args.cli_pairs)
            n = len(os.listdir(dirs[0]))
            out = os.path.join(tmp, "scores.txt")
            mine, theirs = [], []
            for _ in range(args.rounds):
                mine.append(run_cli(dirs, 32, out))
                if args.reference_python:
                    theirs.append(reference_script(args.reference_python, dirs))
            fastest = (min(e for e, _ in mine), max(rss for _, rss in mine))
            runs = [(dirs, 32, fastest), (small, 32, run_cli(small, 32, out)),
                    (dirs, 8, run_cli(dirs, 8, out))]
            for folders, batch, (elapsed, rss) in runs:
                count = len(os.listdir(folders[0]))
                print("  ours: {:>4} pairs, batch {:>2}: {:6.1f} s, {:6.1f} pairs/s, peak {:5.0f} MB".format(
                    count, batch, elapsed, count / elapsed, rss), flush=True)
            if theirs:
                ours_elapsed = fastest[0]
                loop_rate = max(t[0] for t in theirs)
                ref_elapsed = min(t[1] for t in theirs)
                ref_rss = max(t[2] for t in theirs)
                print("  reference lpips_2dirs.py: {:>4} pairs: {:6.1f} s, {:6.1f} pairs/s, peak {:5.0f} MB; "
                      "its loop alone {:6.1f} pairs/s".format(n, ref_elapsed, n / ref_elapsed, ref_rss, loop_rate))
                print("  ours (batch 32, whole process) against the reference: {:.2f}x whole process, "
                      "{:.2f}x its loop alone".format(ref_elapsed / ours_elapsed, n / ours_elapsed / loop_rate))

if __name__ == "__main__":
    main()
