"""How well the default training recipe generalises: planted-metric sets that differ (teacher
seed, teacher sparsity, image source, patch size), and on each the held-out 2AFC score of

* the pretrained metric and the untrained channel sum;
* the best simple fit on the same channel terms: a logistic regression of the judgments on
  d0 - d1 with non-negative weights (L-BFGS-B), the best of a ridge grid by held-out score
  (an optimistic bound: the grid is chosen on the held-out set);
* ``train`` with the default options (and each ``--candidate``), its final weights and, with
  validation, its ``best/`` ones.

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/recipe_study.py [--work DIR]
        [--candidate "NAME: --epochs 10 --epochs-decay 10"]...

The held-out set (``val/synthetic``, 200 triplets) is never seen by training: a recipe that
validates holds out part of its 600 training triplets (``--val-fraction``). The sets are made
once into ``--work`` and reused.
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "utils", "neu"))

# name -> keyword arguments of synthetic.make beyond 600 training and 200 held-out triplets
SETS = {
    "project (seed 0, teacher 1)": dict(seed=0, teacher_seed=1),
    "teacher 2": dict(seed=1, teacher_seed=2),
    "dense teacher (20%)": dict(seed=2, teacher_seed=3, teacher_fraction=0.2),
    "sparse teacher (1%)": dict(seed=3, teacher_seed=4, teacher_fraction=0.01),
    "other photographs": dict(seed=4, teacher_seed=5, images="skimage"),
    "48 px patches": dict(seed=5, teacher_seed=6, side=48),
}
RIDGE = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def skimage_photographs():
    """skimage's bundled colour photographs, none of which the project's samples are."""
    import skimage.data as data
    images = [getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket",
                                                   "immunohistochemistry", "colorwheel")]
    return [img[..., :3] for img in images if img.ndim == 3]


def make_sets(work, params_dir):
    from metrics.lpips.evaluation import synthetic
    from metrics.lpips.training.precompute import TermMaker
    maker = TermMaker("alex", params_dir)
    roots = {}
    for k, (name, options) in enumerate(SETS.items()):
        root = os.path.join(work, "set{}".format(k))
        options = dict(options)
        if options.pop("images", None) == "skimage":
            options["sources"] = skimage_photographs()
        if not os.path.isdir(os.path.join(root, "2afc", "val", synthetic.NAME)):
            synthetic.make(root, train=600, val=200, jnd=0, term_maker=maker, **options)
        roots[name] = root
    return roots, maker


def terms_of(root, subset, maker):
    from metrics.lpips.evaluation import bapps
    from metrics.lpips.training.loop import precompute_terms
    judged = bapps.read_folder(os.path.join(root, "2afc", subset, "synthetic"), "2afc")
    t0, t1 = precompute_terms(judged, maker)
    return t0.astype(np.float64), t1.astype(np.float64), np.asarray(judged.judgments, np.float64)


def score(t0, t1, judge, w):
    from metrics.lpips.evaluation.protocols import two_afc_score
    return two_afc_score(t0 @ w, t1 @ w, judge)[0]


def logistic_fit(t0, t1, judge, ridge):
    """Non-negative w and a bias minimising the cross-entropy of sigmoid((d0 - d1) + b)
    against the judgments, plus ridge * |w|^2 (the terms scaled to unit spread first)."""
    from scipy.optimize import minimize
    x = t0 - t1
    scale = x.std(axis=0) + 1e-12
    xs = x / scale

    def loss(params):
        w, b = params[:-1], params[-1]
        z = xs @ w + b
        p = 1 / (1 + np.exp(-z))
        value = np.mean(np.logaddexp(0, z) - judge * z) + ridge * w @ w
        grad = np.append(xs.T @ (p - judge) / len(z) + 2 * ridge * w, np.mean(p - judge))
        return value, grad
    start = np.append(np.full(x.shape[1], 0.01), 0.0)
    bounds = [(0, None)] * x.shape[1] + [(None, None)]
    found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds,
                     options={"maxiter": 2000})
    return found.x[:-1] / scale


def lin_weights(folder):
    from metrics.lpips.training.precompute import lin_vector
    from metrics.lpips.weights.store import read_h5
    return lin_vector(read_h5(os.path.join(folder, "alex_with_LPIPS.h5"))).astype(np.float64)


def train(root, out, extra, params_dir):
    command = [sys.executable, "-m", "metrics.lpips.train", "--dataroot", root, "--datasets",
               "train/synthetic", "--model", "alex", "--out", out, "-q"] + extra
    if params_dir:
        command += ["--params-dir", params_dir]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "utils", "neu"))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit("train failed: {}\n{}".format(" ".join(command), done.stderr))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", help="where the sets are made (default: a temporary folder)")
    p.add_argument("--params-dir")
    p.add_argument("--candidate", action="append", default=[],
                   help="NAME: train options, another recipe to compare (repeatable)")
    args = p.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="recipe-study-")
    recipes = [("default", [])] + [(c.split(":", 1)[0].strip(), shlex.split(c.split(":", 1)[1]))
                                   for c in args.candidate]
    roots, maker = make_sets(work, args.params_dir)
    from metrics.lpips.weights.store import load_weights
    pretrained = np.concatenate([v.reshape(-1) for k, v in load_weights(
        "alex", "0.1", args.params_dir).items() if k.startswith("lin")]).astype(np.float64)
    header = ["set", "pretrained", "channel sum", "best fit"] + [
        "{} {}".format(name, kind) for name, _ in recipes for kind in ("last", "best/")]
    print(" | ".join(header))
    gaps = {name: [] for name, _ in recipes}
    for set_name, root in roots.items():
        train_terms, val_terms = terms_of(root, "train", maker), terms_of(root, "val", maker)
        ones = np.ones(val_terms[0].shape[1])
        fits = [score(*val_terms, logistic_fit(*train_terms, ridge)) for ridge in RIDGE]
        best_fit = max(fits)
        print("  logistic fits by ridge:", " ".join(
            "{:g}: {:.3f}".format(r, f) for r, f in zip(RIDGE, fits)))
        row = [set_name, score(*val_terms, pretrained), score(*val_terms, ones), best_fit]
        for name, extra in recipes:
            out = tempfile.mkdtemp(prefix="run-", dir=work)
            train(root, os.path.join(out, "run"), extra, args.params_dir)
            last = score(*val_terms, lin_weights(os.path.join(out, "run")))
            best_dir = os.path.join(out, "run", "best")
            best = score(*val_terms, lin_weights(best_dir)) if os.path.isdir(best_dir) else None
            row += [last, best]
            gaps[name].append(best_fit - (best if best is not None else last))
        print(" | ".join(str(v) if isinstance(v, str) else "-" if v is None else
                         "{:.3f}".format(v) for v in row), flush=True)
    for name, values in gaps.items():
        print("{}: gap to the best fit (best/ when it validates, else last): mean {:.3f}, "
              "worst {:.3f}".format(name, np.mean(values), np.max(values)))


if __name__ == "__main__":
    main()
