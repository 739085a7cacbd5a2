"""Parity with the reference PyTorch implementation (pip lpips 0.1.4), to 1e-5 absolute.

Golden values: tests/data/golden/, made by tests/golden/make_golden.py (see its docstring):
alex and vgg with the real trunks, squeeze with the random trunk of golden/random_trunk.py,
real lin layers throughout; scalar, per-layer values and spatial maps for every pair.
"""
import collections
import json
import os

import imageio.v3 as iio
import nnabla as nn
import numpy as np
import pytest

from conftest import DATA
from metrics.lpips import LPIPS
from metrics.lpips.data.images import to_model_input

TOL = 1e-5

with open(os.path.join(DATA, "golden", "reference.json")) as f:
    GOLDEN = json.load(f)
CONFIGS = sorted({(r["model"], r["version"], r["lpips"]) for r in GOLDEN["records"]})


def load_pair(name):
    return [nn.Variable.from_numpy_array(to_model_input(
        iio.imread(os.path.join(DATA, "pairs", "{}_{}.png".format(name, i))))) for i in (0, 1)]


def test_golden_covers_what_the_issue_asks():
    pairs = {r["pair"] for r in GOLDEN["records"]}
    assert len(pairs) >= 5
    shapes = {iio.imread(os.path.join(DATA, "pairs", p + "_0.png")).shape[:2] for p in pairs}
    assert any(h != w for h, w in shapes), "a non-square pair"
    assert any(h % 32 and w % 32 for h, w in shapes), "sides that are not multiples of 32"
    assert len(CONFIGS) == 12  # 3 models x 2 versions x lpips on/off


@pytest.mark.heavy
@pytest.mark.parametrize("model,version,use_lpips", CONFIGS)
def test_matches_reference(model, version, use_lpips, params_dir, squeeze_params_dir):
    folder = squeeze_params_dir if model == "squeeze" else params_dir
    scalar_net = LPIPS(model, params_dir=folder, version=version, lpips=use_lpips)
    spatial_net = LPIPS(model, params_dir=folder, version=version, lpips=use_lpips, spatial=True)
    maps = np.load(os.path.join(DATA, "golden", "reference_maps.npz"))
    errors = collections.defaultdict(float)
    for r in GOLDEN["records"]:
        if (r["model"], r["version"], r["lpips"]) != (model, version, use_lpips):
            continue
        x0, x1 = load_pair(r["pair"])
        total, layers = scalar_net(x0, x1, per_layer=True)
        spatial = spatial_net(x0, x1)
        nn.forward_all([total, spatial] + layers)
        errors["score"] = max(errors["score"], abs(total.d.item() - r["score"]))
        errors["layers"] = max(errors["layers"], np.abs(
            np.array([v.d.item() for v in layers]) - r["layers"]).max())
        expected_map = maps["{}|{}|{}|{}".format(model, version, int(use_lpips), r["pair"])]
        assert spatial.shape == (1, 1) + expected_map.shape
        errors["map"] = max(errors["map"], np.abs(spatial.d[0, 0] - expected_map).max())
    assert len(errors) == 3
    assert max(errors.values()) < TOL, dict(errors)


@pytest.mark.heavy
@pytest.mark.parametrize("backend", ["nnabla", "onnxruntime"])
@pytest.mark.parametrize("model", ["alex", "vgg", "squeeze"])
def test_scorer_backends_match_reference(model, backend, params_dir, squeeze_params_dir):
    from metrics.lpips import Scorer
    folder = squeeze_params_dir if model == "squeeze" else params_dir
    maps = np.load(os.path.join(DATA, "golden", "reference_maps.npz"))
    worst = 0.0
    # NNabla's graph meets every configuration in test_matches_reference; its engine is the
    # same code for each, so one configuration (the default) covers it here.
    configs = [(v, l) for m, v, l in CONFIGS if m == model
               and (backend == "onnxruntime" or (v, l) == ("0.1", True))]
    assert configs
    for version, use_lpips in configs:
        scorer = Scorer(model, params_dir=folder, version=version, lpips=use_lpips,
                        backend=backend)
        mapper = Scorer(model, params_dir=folder, version=version, lpips=use_lpips,
                        backend=backend, spatial=True)
        for r in GOLDEN["records"]:
            if (r["model"], r["version"], r["lpips"]) != (model, version, use_lpips):
                continue
            x0, x1 = (to_model_input(iio.imread(os.path.join(DATA, "pairs", "{}_{}.png".format(
                r["pair"], i)))) for i in (0, 1))
            scores = scorer.score_inputs(x0, x1)
            _, smap = mapper.score_inputs(x0, x1)
            expected_map = maps["{}|{}|{}|{}".format(model, version, int(use_lpips), r["pair"])]
            worst = max(worst, abs(scores[0] - r["score"]), np.abs(smap[0] - expected_map).max())
    assert worst < TOL
