# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""A planted-metric data set in the BAPPS layout: something to try ``train`` and ``evaluate`` on
without BAPPS' 5 GB.

Patches are random crops (flipped at random) of photographs, the bundled samples unless
others are given, and their distortions (blur, noise, JPEG, a shift, contrast, colour gains).
A hidden "teacher" judges them: AlexNet's pretrained trunk with sparse non-negative lin
weights (5% of the channels, exponential values, from the teacher seed), applied to the
per-channel terms training uses. Simulated observers answer from the teacher's distances
with some noise: 2AFC ``judge`` is the fraction of 5 who chose p1, JND ``same`` of 3 who saw
no difference. Of six candidate triplets per kept one, those whose uncalibrated distances
(the channel sum) are nearest a tie are kept, so that the teacher has to be learned rather
than found in the trunk as it is.
"""
import io
import os
import shutil
import tempfile

import numpy as np

from ..training.loop import to_input

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples",
                       "ref")
SUBSETS = (("2afc", "train"), ("2afc", "val"), ("jnd", "val"))
NAME = "synthetic"
TEACHER_FRACTION = 0.05
CANDIDATES_PER_KEPT = 6
OBSERVERS = {"2afc": 5, "jnd": 3}


def _blur(img, rng):
    from PIL import Image, ImageFilter
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 2.0))))


def _noise(img, rng):
    return np.clip(img + rng.normal(0, rng.uniform(2, 20), img.shape), 0, 255).astype(np.uint8)


def _jpeg(img, rng):
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(rng.integers(8, 70)))
    return np.asarray(Image.open(buf).convert("RGB"))


def _shift(img, rng):
    return np.roll(img, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))


def _contrast(img, rng):
    mean = img.mean()
    return np.clip((img - mean) * rng.uniform(0.7, 1.3) + mean, 0, 255).astype(np.uint8)


def _colour(img, rng):
    return np.clip(img * rng.uniform(0.85, 1.15, 3), 0, 255).astype(np.uint8)


DISTORTIONS = (_blur, _noise, _jpeg, _shift, _contrast, _colour)


def distort(img, rng):
    """One of :data:`DISTORTIONS`, drawn with its strength from ``rng``."""
    return DISTORTIONS[rng.integers(len(DISTORTIONS))](img, rng)


def read_sources(folder=None):
    """The RGB photographs of ``folder`` (default the bundled samples), sorted by name."""
    from ..data.images import IMAGE_EXTENSIONS, read_image, to_unit_range
    folder = folder or SAMPLES
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    images = [np.round(to_unit_range(read_image(os.path.join(folder, n))) * 255).astype(np.uint8)
              for n in names]
    if not images:
        raise ValueError("{} holds no image to crop patches from".format(folder))
    return images


def crops(sources, count, side, rng):
    """``count`` random side x side crops of ``sources``, each flipped left-right at random."""
    usable = [s for s in sources if min(s.shape[:2]) >= side]
    if not usable:
        raise ValueError("no source image is {0}x{0} px or larger".format(side))
    out = []
    for _ in range(count):
        img = usable[rng.integers(len(usable))]
        y = rng.integers(0, img.shape[0] - side + 1)
        x = rng.integers(0, img.shape[1] - side + 1)
        patch = img[y:y + side, x:x + side]
        out.append(np.ascontiguousarray(patch[:, ::-1] if rng.random() < 0.5 else patch))
    return out


def teacher_weights(channels, seed, fraction=TEACHER_FRACTION):
    """The teacher's sparse non-negative per-channel weights (about ``fraction`` of them on)."""
    rng = np.random.default_rng(seed)
    on = rng.random(channels) < fraction
    w = np.zeros(channels)
    w[on] = rng.exponential(1.0, on.sum())
    return w


def _terms(term_maker, ref, p0, p1, batch=256):
    """Per-channel terms of d(ref, p0) and d(ref, p1), float64."""
    t0, t1 = [], []
    for s in range(0, len(ref), batch):
        a, b = term_maker(*(to_input(x[s:s + batch]) for x in (ref, p0, p1)))
        t0.append(a)
        t1.append(b)
    return np.concatenate(t0).astype(np.float64), np.concatenate(t1).astype(np.float64)


def _observed(rng, probability, observers):
    """The fraction of ``observers`` who say yes, each with ``probability``."""
    return rng.binomial(observers, probability) / float(observers)


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _two_afc(rng, term_maker, sources, count, side, w, noise):
    """(ref, p0, p1, judge) of ``count`` triplets, kept from six candidates each."""
    n = count * CANDIDATES_PER_KEPT
    ref = crops(sources, n, side, rng)
    p0, p1 = [distort(r, rng) for r in ref], [distort(r, rng) for r in ref]
    t0, t1 = _terms(term_maker, ref, p0, p1)
    u0, u1 = t0.sum(axis=1), t1.sum(axis=1)
    kept = np.argsort(np.abs(u0 - u1) / np.maximum(u0 + u1, 1e-12), kind="stable")[:count]
    d0, d1 = t0[kept] @ w, t1[kept] @ w
    scale = noise * np.median(np.abs(d0 - d1)) + 1e-12
    judge = _observed(rng, _logistic((d0 - d1) / scale), OBSERVERS["2afc"])
    return [ref[i] for i in kept], [p0[i] for i in kept], [p1[i] for i in kept], judge


def _jnd(rng, term_maker, sources, count, side, w, noise):
    """(p0, p1, same) of ``count`` pairs: a patch and its distortion."""
    p0 = crops(sources, count, side, rng)
    p1 = [distort(p, rng) for p in p0]
    t, _ = _terms(term_maker, p0, p1, p1)
    d = t @ w
    scale = noise * np.median(np.abs(d - np.median(d))) + 1e-12
    same = _observed(rng, _logistic((np.median(d) - d) / scale), OBSERVERS["jnd"])
    return p0, p1, same


def _write(folder, columns, judgments, judgment_name):
    from PIL import Image
    for name, images in columns:
        os.makedirs(os.path.join(folder, name))
        for k, img in enumerate(images):
            Image.fromarray(img).save(os.path.join(folder, name, "{:06d}.png".format(k)))
    os.makedirs(os.path.join(folder, judgment_name))
    for k, value in enumerate(judgments):
        np.save(os.path.join(folder, judgment_name, "{:06d}.npy".format(k)),
                np.array([value], np.float32))


def make(root, train=600, val=200, jnd=200, side=64, seed=0, teacher_seed=1, noise=0.5,
         sources=None, params_dir=None, term_maker=None, teacher_fraction=TEACHER_FRACTION):
    """Writes ``root``/2afc/train/synthetic, 2afc/val/synthetic and jnd/val/synthetic (those
    with a count above 0) and returns their folders. ``noise``: the observers' noise, a
    fraction of the median distance gap (smaller: more unanimous judgments);
    ``teacher_fraction``: the share of channels the teacher weighs. Each folder
    appears whole or not at all; one that exists already is an error (``FileExistsError``).
    ``term_maker``: a :class:`~metrics.lpips.training.precompute.TermMaker` (default
    AlexNet's, from ``params_dir``)."""
    counts = {("2afc", "train"): train, ("2afc", "val"): val, ("jnd", "val"): jnd}
    targets = {key: os.path.join(root, key[0], key[1], NAME) for key in SUBSETS if counts[key]}
    for folder in targets.values():
        if os.path.exists(folder):
            raise FileExistsError("{} exists already; choose another --dataroot or delete "
                                  "it".format(folder))
    if term_maker is None:
        from ..training.precompute import TermMaker
        term_maker = TermMaker("alex", params_dir)
    sources = read_sources() if sources is None else sources
    probe = crops(sources, 1, side, np.random.default_rng(0))
    channels = term_maker(*(to_input(probe) for _ in range(3)))[0].shape[1]
    w = teacher_weights(channels, teacher_seed, teacher_fraction)
    made = {}
    for key in SUBSETS:
        if not counts[key]:
            continue
        # Each subset draws from its own stream: the same seed gives the same subset, whichever
        # others are made with it.
        subset_rng = np.random.default_rng([seed, SUBSETS.index(key)])
        if key[0] == "2afc":
            ref, p0, p1, judge = _two_afc(subset_rng, term_maker, sources, counts[key], side, w,
                                          noise)
            made[key] = ([("ref", ref), ("p0", p0), ("p1", p1)], judge, "judge")
        else:
            p0, p1, same = _jnd(subset_rng, term_maker, sources, counts[key], side, w, noise)
            made[key] = ([("p0", p0), ("p1", p1)], same, "same")
    for key, (columns, judgments, judgment_name) in made.items():
        parent = os.path.dirname(targets[key])
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix="." + NAME + "-", dir=parent)
        try:
            _write(os.path.join(staging, NAME), columns, judgments, judgment_name)
            os.rename(os.path.join(staging, NAME), targets[key])
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [targets[key] for key in SUBSETS if key in targets]
