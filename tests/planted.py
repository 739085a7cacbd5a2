"""A planted-metric 2AFC set, for checking that training learns (made at test time, seeded).

Triplets are 64 x 64 crops of the committed photographs (ref) and two seeded distortions of
each (p0, p1; tests/golden/make_bapps_fixture.py's). A planted metric judges them: the AlexNet
trunk with sparse non-negative lin weights (5% of the channels, exponential values, seeded),
judge = 1 when it finds p1 closer, else 0. Of CANDIDATES triplets, the KEPT whose uncalibrated
distances (the channel sum) are closest to a tie are written, shuffled, in the BAPPS layout:
TRAIN of them to ``2afc/train/planted``, the rest to ``2afc/val/planted``. On them, measured:
the uncalibrated LPIPS agrees with 0.64 of the held-out judgments and the pretrained one
with about as many, so agreement well above that has to be learned.
"""
import os

import numpy as np

import make_bapps_fixture as fixture
from metrics.lpips.training.precompute import TermMaker

CANDIDATES, KEPT, TRAIN = 4800, 800, 600
SIDE = 64
PLANTED_FRACTION = 0.05


def _crops(rng, count):
    sources = [np.asarray(fixture.Image.open(p).convert("RGB")) for p in fixture.SOURCES]
    refs, p0, p1 = [], [], []
    for _ in range(count):
        img = sources[rng.integers(len(sources))]
        y, x = rng.integers(0, img.shape[0] - SIDE + 1), rng.integers(0, img.shape[1] - SIDE + 1)
        ref = np.ascontiguousarray(img[y:y + SIDE, x:x + SIDE])
        refs.append(ref)
        p0.append(fixture.distort(ref, rng))
        p1.append(fixture.distort(ref, rng))
    return refs, p0, p1


def _to_input(images):
    return np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1


def planted_weights(channels, seed=1):
    rng = np.random.default_rng(seed)
    w = np.zeros(channels)
    on = rng.random(channels) < PLANTED_FRACTION
    w[on] = rng.exponential(1.0, on.sum())
    return w


def make(root, params_dir, seed=0):
    """Writes the set under ``root`` (a BAPPS data root); returns the held-out judgments."""
    rng = np.random.default_rng(seed)
    refs, p0, p1 = _crops(rng, CANDIDATES)
    terms = TermMaker("alex", params_dir)
    t0, t1 = [], []
    for s in range(0, CANDIDATES, 200):
        a, b = terms(*(_to_input(x[s:s + 200]) for x in (refs, p0, p1)))
        t0.append(a)
        t1.append(b)
    t0, t1 = np.concatenate(t0).astype(np.float64), np.concatenate(t1).astype(np.float64)
    w = planted_weights(t0.shape[1])
    judge = ((t1 @ w) < (t0 @ w)).astype(np.float64)
    u0, u1 = t0.sum(axis=1), t1.sum(axis=1)
    kept = np.argsort(np.abs(u0 - u1) / (u0 + u1))[:KEPT]
    rng.shuffle(kept)
    for name, chosen in (("train/planted", kept[:TRAIN]), ("val/planted", kept[TRAIN:])):
        folder = os.path.join(root, "2afc", name)
        for k, i in enumerate(chosen):
            for sub, images in (("ref", refs), ("p0", p0), ("p1", p1)):
                fixture.save(os.path.join(folder, sub), k, images[i])
            fixture.save(os.path.join(folder, "judge"), k, np.array([judge[i]]))
    return judge[kept[TRAIN:]]
