"""Makes the committed test image pairs and demo samples from scikit-image's bundled photos.

Run once (any Python with numpy, imageio and Pillow):
    pip download --no-deps --only-binary=:all: --python-version 3.11 scikit-image==0.26.0
    python tests/golden/make_images.py scikit_image-0.26.0-*.whl

Sources (licences as stated in scikit-image's ``skimage/data/_fetchers.py``):
astronaut.png (NASA, public domain), rocket.jpg (SpaceX, public domain),
chelsea.png (Stefan van der Walt, CC0), coffee.png (Rachel Michetti, CC0),
brick.png (CC0Textures, CC0).
"""
import io
import os
import sys
import zipfile

import imageio.v3 as iio
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAIRS_DIR = os.path.join(REPO, "tests", "data", "pairs")
SAMPLES_DIR = os.path.join(REPO, "utils", "neu", "metrics", "lpips", "samples")


def load(wheel, name):
    with zipfile.ZipFile(wheel) as z:
        return np.asarray(iio.imread(io.BytesIO(z.read("skimage/data/" + name))))


def resize(img, h, w):
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC))


def blur(img, k=5):
    pad = np.pad(img.astype(np.float32), ((k // 2, k // 2), (k // 2, k // 2), (0, 0)), "edge")
    out = np.zeros(img.shape, np.float32)
    for dy in range(k):
        for dx in range(k):
            out += pad[dy:dy + img.shape[0], dx:dx + img.shape[1]]
    return np.clip(np.rint(out / (k * k)), 0, 255).astype(np.uint8)


def noise(img, sigma, seed):
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)


def jpeg(img, quality):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def contrast(img, factor):
    mean = img.mean(axis=(0, 1), keepdims=True)
    return np.clip(np.rint(mean + factor * (img - mean)), 0, 255).astype(np.uint8)


def rgb(img):
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3]


def main(wheel):
    astronaut = load(wheel, "astronaut.png")
    chelsea = load(wheel, "chelsea.png")
    coffee = load(wheel, "coffee.png")
    rocket = load(wheel, "rocket.jpg")
    brick = rgb(load(wheel, "brick.png"))

    # Golden pairs: different content, square and not, sides not multiples of 32.
    a = resize(astronaut[0:300, 100:400], 64, 64)
    b = resize(chelsea[50:250, 100:400], 100, 150)
    c = resize(coffee[:, 100:550], 75, 111)
    d = resize(rocket[:, 100:550], 131, 97)
    e = resize(brick[:300, :220], 67, 50)
    f0 = resize(coffee[50:350, 50:450], 96, 128)
    f1 = resize(astronaut[50:350, 50:450], 96, 128)
    pairs = {
        "astronaut_blur": (a, blur(a)),
        "chelsea_jpeg": (b, jpeg(b, 10)),
        "coffee_noise": (c, noise(c, 20, seed=1)),
        "rocket_shift": (d, resize(rocket[2:, 103:553], 131, 97)),
        "brick_contrast": (e, contrast(e, 0.6)),
        "coffee_vs_astronaut": (f0, f1),
    }
    os.makedirs(PAIRS_DIR, exist_ok=True)
    for name, (x0, x1) in pairs.items():
        iio.imwrite(os.path.join(PAIRS_DIR, name + "_0.png"), x0)
        iio.imwrite(os.path.join(PAIRS_DIR, name + "_1.png"), x1)

    # Demo samples: a reference folder and a distorted folder with the same file names.
    ref = {"cat.png": resize(chelsea[20:280, 120:380], 128, 128),
           "coffee.png": resize(coffee[:, 100:500], 128, 128),
           "rocket.png": resize(rocket[:, 120:520], 128, 128)}
    distorted = {"cat.png": blur(ref["cat.png"], 3),
                 "coffee.png": jpeg(ref["coffee.png"], 15),
                 "rocket.png": noise(ref["rocket.png"], 12, seed=2)}
    for sub, images in (("ref", ref), ("distorted", distorted)):
        os.makedirs(os.path.join(SAMPLES_DIR, sub), exist_ok=True)
        for name, img in images.items():
            iio.imwrite(os.path.join(SAMPLES_DIR, sub, name), img)


if __name__ == "__main__":
    main(sys.argv[1])
