"""Makes tests/data/bapps/: a small data set in the BAPPS layout, for the evaluation tests.

Run once (any Python with numpy and Pillow):
    python tests/golden/make_bapps_fixture.py

Patches are 80 x 80 crops of the committed test and sample photographs (see
utils/neu/metrics/lpips/samples/README.md for their sources and licences), so the loader's
resize to 64 px is exercised. Each distortion is seeded; judgments are seeded fractions, as
BAPPS stores them (2AFC val: 5 people, JND: 3). One 2AFC triplet has p0 == p1 (a tie for every
metric) and one JND pair is identical.
"""
import io
import os

import numpy as np
from PIL import Image, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "tests", "data", "bapps")
SOURCES = [os.path.join(REPO, "tests", "data", "pairs", name) for name in (
    "chelsea_jpeg_0.png", "coffee_vs_astronaut_0.png", "rocket_shift_0.png")] + [
    os.path.join(REPO, "utils", "neu", "metrics", "lpips", "samples", "ref", name)
    for name in ("cat.png", "coffee.png", "rocket.png")]
SIDE = 80


def crop(rng):
    img = np.asarray(Image.open(SOURCES[rng.integers(len(SOURCES))]).convert("RGB"))
    y, x = rng.integers(0, img.shape[0] - SIDE + 1), rng.integers(0, img.shape[1] - SIDE + 1)
    return img[y:y + SIDE, x:x + SIDE]


def distort(img, rng):
    kind = rng.integers(6)
    if kind == 0:
        return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5))))
    if kind == 1:
        noisy = img + rng.normal(0, rng.uniform(3, 25), img.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)
    if kind == 2:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(rng.integers(5, 60)))
        return np.asarray(Image.open(buf).convert("RGB"))
    if kind == 3:
        return np.roll(img, tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
    if kind == 4:
        gain = rng.uniform(0.6, 1.4)
        return np.clip((img.astype(np.float64) - 128) * gain + 128, 0, 255).astype(np.uint8)
    gains = rng.uniform(0.8, 1.2, 3)
    return np.clip(img * gains, 0, 255).astype(np.uint8)


def save(folder, index, array):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "{:06d}".format(index))
    if array.dtype == np.uint8:
        Image.fromarray(array).save(path + ".png")
    else:
        np.save(path + ".npy", array)


def two_afc(name, count, seed):
    rng = np.random.default_rng(seed)
    root = os.path.join(OUT, "2afc", "val", name)
    for i in range(count):
        ref = crop(rng)
        p0, p1 = distort(ref, rng), distort(ref, rng)
        if i == 3:
            p1 = p0  # a tie
        for folder, img in (("ref", ref), ("p0", p0), ("p1", p1)):
            save(os.path.join(root, folder), i, img)
        save(os.path.join(root, "judge"), i, np.array([rng.integers(0, 6) / 5.0]))


def jnd(name, count, seed):
    rng = np.random.default_rng(seed)
    root = os.path.join(OUT, "jnd", "val", name)
    for i in range(count):
        p0 = crop(rng)
        p1 = p0 if i == 2 else distort(p0, rng)
        save(os.path.join(root, "p0"), i, p0)
        save(os.path.join(root, "p1"), i, p1)
        save(os.path.join(root, "same"), i, np.array([rng.integers(0, 4) / 3.0]))


if __name__ == "__main__":
    two_afc("mixed", 16, 1)
    two_afc("other", 16, 2)
    jnd("mixed", 20, 3)
    print("wrote", OUT)
