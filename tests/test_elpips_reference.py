"""E-LPIPS against the reference's own TensorFlow code (tests/golden/make_elpips_tf_golden.py,
mkettune/elpips run under TensorFlow 2's compat.v1): the networks exactly, the ensemble
within sampling error, on images the other E-LPIPS tests do not use."""
import json
import os

import imageio.v3 as iio
import nnabla as nn
import numpy as np
import pytest

from conftest import DATA
from metrics.lpips import LPIPS
from metrics.lpips.elpips import Config, ELPIPS
from metrics.lpips.engines.select import make_engine
from metrics.lpips.ensemble import estimate

GOLDEN = json.load(open(os.path.join(DATA, "golden", "elpips_tf.json")))
NETWORKS = {"vgg_ensemble": ("elpips-vgg", "0.1"), "vgg": ("vgg", "elpips")}


def _pair(name):
    return [np.ascontiguousarray(iio.imread(os.path.join(DATA, "pairs", "{}_{}.png".format(
        name, i)))[:, :, :3].transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1)
            for i in (0, 1)]


@pytest.mark.heavy
@pytest.mark.parametrize("metric", sorted(NETWORKS))
def test_one_plain_draw_is_the_reference_networks_distance(params_dir, metric):
    model, version = NETWORKS[metric]
    net = LPIPS(model, params_dir=params_dir, version=version)
    engine = make_engine(net, "onnxruntime")
    records = [r for r in GOLDEN["single"] if r["metric"] == metric]
    assert len(records) == 5
    for record in records:
        a, b = _pair(record["pair"])
        d = net(nn.Variable.from_numpy_array(a), nn.Variable.from_numpy_array(b))
        d.forward()
        assert d.d.item() == pytest.approx(record["distance"], rel=1e-5, abs=1e-8)
        fast = engine.pair_distances(np.concatenate([a, b]))[0]
        assert fast == pytest.approx(record["distance"], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("record", [r for r in GOLDEN["ensembles"]
                                    if not r["pair"].startswith("adv")],
                         ids=lambda r: r["pair"])
@pytest.mark.heavy
def test_ensemble_means_match_the_reference_code(params_dir, record):
    a, b = _pair(record["pair"])
    net = LPIPS("elpips-vgg", params_dir=params_dir)
    config = Config.for_image(*a.shape[2:])
    assert config.num_scales == record["num_scales"]
    ours = estimate(ELPIPS(net, config), a, b, np.random.default_rng(7), samples=60,
                    batch=GOLDEN["meta"]["batch"], engine=make_engine(net, "onnxruntime"))
    combined = np.hypot(ours.stderr, record["stderr"])
    print("{}: ours {:.5f} +- {:.5f}, reference {:.5f} +- {:.5f} ({:.1f} combined SE)".format(
        record["pair"], ours.mean, ours.stderr, record["mean"], record["stderr"],
        (ours.mean - record["mean"]) / combined))
    assert abs(ours.mean - record["mean"]) < 3 * combined
