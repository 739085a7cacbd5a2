"""Lin-mode training speed: ``--recipe reference`` (images every step) and ``--precompute``
(terms once, then steps on them) against the reference's ``train.py`` loop (pip lpips 0.1.4),
on the same folder of triplets, measured in one run.

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/bench_train.py \\
        --reference-python /path/to/python-with-torch-and-lpips [--triplets 1000] [--model alex]

The folder is bench_evaluate.py's: 256 px PNG patches in the BAPPS layout (every loader
resizes them to 64). By default their content is 64 px, stored enlarged by pixel repetition,
because BAPPS' own files are that small: its training archive is 5.3 GB for 454,209 PNGs,
11.7 KB a file, against 80 KB for a photograph at 256 px (``--content 256``), which takes
three times as long to decode. Prints triplets per second of one epoch for each (decoding
included: every loader decodes as it goes), and for ``--precompute`` its two parts: the
terms (decoding and the trunk, once) and an epoch on them, timed on the set's terms repeated
to BAPPS' size. The estimate for BAPPS' training set (151,403 triplets) with the default
recipe is the terms once plus 40 such epochs.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "utils", "neu"))
import bench_evaluate  # noqa: E402  (the folder of triplets)

BAPPS_TRAIN = 151403


def ours(folder, model):
    from metrics.lpips.evaluation import bapps
    from metrics.lpips.training.loop import load_triplets, precompute_terms, train
    from metrics.lpips.training.precompute import TermMaker
    from metrics.lpips.training.trainer import Trainer
    judged = bapps.read_folder(folder, "2afc", bench_evaluate.DATASET)
    n = len(judged.items)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model, dropout=True)
        start = time.perf_counter()
        train(trainer, judged, os.path.join(out, "a"), epochs=1, epochs_decay=0, batch_size=50)
        images = time.perf_counter() - start
        make_terms = TermMaker(model)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # sessions made before timing
            make_terms(*load_triplets(judged.items[:2], pool))
        start = time.perf_counter()
        terms = precompute_terms(judged, make_terms, batch_size=50)
        precompute = time.perf_counter() - start
        # An epoch on the terms of a set of BAPPS' size (these terms repeated), timed whole:
        # its steps, gathering batches from arrays of that size, and its checkpoint.
        repeat = -(-BAPPS_TRAIN // n)
        larger = judged._replace(items=judged.items * repeat,
                                 judgments=list(judged.judgments) * repeat)
        terms = tuple(np.tile(t, (repeat, 1)) for t in terms)
        fast = Trainer(model, dropout=False, head="monotone", lr=1e-3)
        start = time.perf_counter()
        train(fast, larger, os.path.join(out, "b"), epochs=1, epochs_decay=0, batch_size=50,
              terms=terms)
        epoch = time.perf_counter() - start
    return n, images, precompute, len(larger.items), epoch


def reference(python, folder, model):
    config = json.dumps({"folder": folder, "model": model})
    env = dict(os.environ, PYTHONPATH=HERE)
    out = subprocess.run([python, os.path.join(HERE, "reference_train.py"), config],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError("the reference failed:\n" + out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", help="a Python with torch, torchvision, lpips")
    parser.add_argument("--triplets", type=int, default=1000)
    parser.add_argument("--model", default="alex")
    parser.add_argument("--content", type=int, choices=(64, 256), default=64,
                        help="the patches' detail in px (stored at 256 either way)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as dataroot:
        folder = bench_evaluate.make_folder(dataroot, args.triplets, content=args.content)
        pngs = glob.glob(os.path.join(folder, "*", "*.png"))
        print("{} triplets of {} px PNG patches ({} px content, {:.1f} KB a file), batch 50, "
              "{}, cores: {}".format(args.triplets, bench_evaluate.SIDE, args.content,
                                     sum(map(os.path.getsize, pngs)) / len(pngs) / 1e3,
                                     args.model, os.cpu_count()))
        n, images, precompute, large, epoch = ours(folder, args.model)
        print("ours, --recipe reference: {:7.1f} triplets/s ({:.1f} s an epoch)".format(
            n / images, images))
        print("ours, --precompute:       terms {:7.1f} triplets/s ({:.1f} s, once); an epoch "
              "on {} triplets' terms: {:.1f} s ({:.0f} triplets/s, {:.3f} ms a step)".format(
                  n / precompute, precompute, large, epoch, large / epoch,
                  epoch / large * 50e3))
        terms_s = BAPPS_TRAIN / n * precompute
        epochs_s = 40 * epoch * BAPPS_TRAIN / large
        estimate = terms_s + epochs_s
        print("estimate for BAPPS train ({} triplets), default recipe: terms {:.1f} min + 40 "
              "epochs {:.1f} min = {:.1f} min".format(BAPPS_TRAIN, terms_s / 60, epochs_s / 60,
                                                      estimate / 60))
        if args.reference_python:
            theirs = reference(args.reference_python, folder, args.model)
            rate = theirs["triplets"] / theirs["loop_s"]
            print("reference train.py:       {:7.1f} triplets/s ({:.1f} s an epoch, {} torch "
                  "threads); BAPPS train, 10 epochs: {:.0f} min".format(
                      rate, theirs["loop_s"], theirs["threads"], BAPPS_TRAIN * 10 / rate / 60))
            print("ours / reference: --recipe reference {:.2f}x; default recipe, whole run "
                  "{:.1f}x (10 reference epochs against terms + 40 epochs)".format(
                      (n / images) / rate, (BAPPS_TRAIN * 10 / rate) / estimate))


if __name__ == "__main__":
    main()
