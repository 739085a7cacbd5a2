"""Prints the largest absolute difference from the reference PyTorch LPIPS (the golden values
in tests/data/golden/) per trunk: scalar, per-layer, spatial map (NNabla graph) and scalar
(ONNX Runtime backend, with and without Winograd convolutions). Needs `make setup` (weights and carriers).

    PYTHONPATH=utils/neu .venv/bin/python benchmarks/parity_report.py
"""
import json
import os
import sys
import tempfile

import imageio.v3 as iio
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, p) for p in ("utils/neu", "tests", "tests/golden")]

import conftest  # noqa: E402
import nnabla as nn  # noqa: E402
from metrics.lpips import LPIPS, Scorer  # noqa: E402
from metrics.lpips.weights.conversion import convert  # noqa: E402
from metrics.lpips.data.images import to_model_input  # noqa: E402
from torch_writer import write_squeezenet_checkpoint  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "data", "golden")
PAIRS = os.path.join(ROOT, "tests", "data", "pairs")


def main():
    squeeze_dir = tempfile.mkdtemp()
    convert(squeeze_dir, lpips=conftest.LPIPS_WHEEL,
            torchvision=[write_squeezenet_checkpoint(os.path.join(squeeze_dir, "random.pth"))])
    with open(os.path.join(GOLDEN, "reference.json")) as f:
        records = json.load(f)["records"]
    maps = np.load(os.path.join(GOLDEN, "reference_maps.npz"))
    worst = {}
    for r in records:
        folder = squeeze_dir if r["model"] == "squeeze" else None
        kw = dict(params_dir=folder, version=r["version"], lpips=r["lpips"])
        x = [to_model_input(iio.imread(os.path.join(PAIRS, "{}_{}.png".format(r["pair"], i)))) for i in (0, 1)]
        a, b = (nn.Variable.from_numpy_array(v) for v in x)
        total, layers = LPIPS(r["model"], **kw)(a, b, per_layer=True)
        spatial = LPIPS(r["model"], spatial=True, **kw)(a, b)
        nn.forward_all([total, spatial] + layers)
        ort, ort_direct = (Scorer(r["model"], backend="onnxruntime", winograd=w, **kw).score_inputs(*x)[0]
                           for w in (True, False))
        expected_map = maps["{}|{}|{}|{}".format(r["model"], r["version"], int(r["lpips"]), r["pair"])]
        errors = [abs(total.d.item() - r["score"]),
                  max(abs(v.d.item() - e) for v, e in zip(layers, r["layers"])),
                  float(np.abs(spatial.d[0, 0] - expected_map).max()),
                  abs(ort - r["score"]), abs(ort_direct - r["score"])]
        worst[r["model"]] = [max(p, q) for p, q in zip(worst.get(r["model"], errors), errors)]
    print("max |ours - reference| over {} records".format(len(records)))
    for model, e in worst.items():
        print("{:<8} score {:.1e}  per-layer {:.1e}  spatial map {:.1e}  onnxruntime score {:.1e} "
              "(direct convolutions {:.1e})".format(model, *e))


if __name__ == "__main__":
    main()
