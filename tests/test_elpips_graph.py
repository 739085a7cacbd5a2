"""The E-LPIPS graph: each transformation on its own, the draws' statistics, dropout shared by
both images, reproducibility, and gradients."""
import collections
import json
import os

import imageio.v3 as iio
import nnabla as nn
import numpy as np

from conftest import DATA, ROOT
from metrics.lpips import LPIPS
from metrics.lpips.data.images import to_model_input
from metrics.lpips.elpips import PERMUTATIONS, Config, Draw, ELPIPS, sample, transform

OFF = Config.plain()
SAMPLES = os.path.join(ROOT, "utils", "neu", "metrics", "lpips", "samples")


def _images(seed, n=2, h=40, w=52):
    x = np.random.default_rng(seed).random((n, 3, h, w)).astype(np.float32)
    return x


def _apply(x, draw, config):
    y = transform(nn.Variable.from_numpy_array(x), draw, config)
    y.forward()
    return y.d


def _draw(n, **fields):
    base = dict(scale=1, scale_offset=(0, 0), offsets=np.zeros((n, 2), int), flips=np.full(n, 3),
                swap=False, permutations=[(0, 1, 2)] * n, colors=np.ones((n, 3), np.float32))
    base.update(fields)
    return Draw(**base)


def test_with_everything_off_one_draw_is_lpips(params_dir):
    net = LPIPS("alex", params_dir=params_dir)
    x0, x1 = (nn.Variable.from_numpy_array(a * 2 - 1) for a in (_images(0), _images(1)))
    plain, e = net(x0, x1), ELPIPS(net, OFF)(x0, x1, np.random.default_rng(0))
    nn.forward_all([plain, e])
    np.testing.assert_array_equal(e.d, plain.d)


def test_each_transformation_on_its_own():
    x = _images(2)
    flip = _apply(x, _draw(2, flips=np.array([0, 2])), Config.plain().__class__(
        **dict(OFF.__dict__, flip=True)))
    np.testing.assert_array_equal(flip[0], x[0, :, :, ::-1])
    np.testing.assert_array_equal(flip[1], x[1, :, ::-1, ::-1])
    swap = _apply(x, _draw(2, swap=True), Config(**dict(OFF.__dict__, swap=True)))
    np.testing.assert_array_equal(swap, x.transpose(0, 1, 3, 2))
    order = PERMUTATIONS[3]
    perm = _apply(x, _draw(2, permutations=[order, order]), Config(**dict(OFF.__dict__, permutation=True)))
    np.testing.assert_array_equal(perm, x[:, list(order)])
    colors = np.array([[0.2, 0.5, 1.0], [1.0, 0.3, 0.7]], np.float32)
    color = _apply(x, _draw(2, colors=colors), Config(**dict(OFF.__dict__, color=True)))
    np.testing.assert_allclose(color, x * colors[:, :, None, None])
    offsets = np.array([[0, 7], [3, 2]])
    shifted = _apply(x, _draw(2, offsets=offsets), Config(**dict(OFF.__dict__, offset=True)))
    for i, (oy, ox) in enumerate(offsets):
        expected = np.pad(x[i], ((0, 0), (7 - oy, oy), (7 - ox, ox)), mode="reflect")
        np.testing.assert_array_equal(shifted[i], expected)
    scaled = _apply(x, _draw(2, scale=3, scale_offset=(1, 2)), Config(**dict(OFF.__dict__, scale=True)))
    h, w = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 42 - h - 1), (2, 54 - w - 2)), mode="reflect")
    expected = padded.reshape(2, 3, 14, 3, 18, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(scaled, expected, rtol=1e-6)


def test_draws_follow_the_reference_distributions():
    rng, config = np.random.default_rng(3), Config(num_scales=4)
    levels = collections.Counter(sample(rng, 1, config).scale for _ in range(4000))
    p = config.scale_probabilities()
    for s in range(1, 5):  # within 4 standard errors of 1/s^2
        assert abs(levels[s] / 4000 - p[s - 1]) < 4 * np.sqrt(p[s - 1] * (1 - p[s - 1]) / 4000)
    draw = sample(rng, 12, config)
    assert sorted(draw.flips) == sorted([0, 1, 2, 3] * 3)  # stratified
    assert sorted(draw.permutations) == sorted(PERMUTATIONS * 2)
    for c in range(3):  # one factor in each twelfth of [0.2, 1]
        u = np.sort((draw.colors[:, c] - 0.2) / 0.8)
        assert np.all((u >= np.arange(12) / 12 - 1e-6) & (u <= np.arange(1, 13) / 12 + 1e-6))
    assert draw.offsets.min() >= 0 and draw.offsets.max() <= 7


def test_both_images_get_the_same_transformation_and_dropout_mask(params_dir):
    net = LPIPS("alex", params_dir=params_dir)
    x = nn.Variable.from_numpy_array(_images(4, n=3) * 2 - 1)
    d = ELPIPS(net, Config(num_scales=1))(x, x, np.random.default_rng(5))
    d.forward()
    np.testing.assert_array_equal(d.d, 0)  # any difference in either would show


def test_a_seed_reproduces_a_draw_and_samples_differ(params_dir):
    net = LPIPS("alex", params_dir=params_dir)
    x0, x1 = (nn.Variable.from_numpy_array(_images(k, n=1, h=64, w=64) * 2 - 1) for k in (6, 7))
    e = ELPIPS(net, Config(num_scales=1))
    runs = []
    for _ in range(2):
        d = e.samples(x0, x1, 6, np.random.default_rng(11))
        d.forward()
        runs.append(d.d.ravel().copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert len(set(np.round(runs[0], 7))) == 6


def test_gradients_reach_both_images(params_dir):
    net = LPIPS("alex", params_dir=params_dir)
    x0, x1 = (nn.Variable.from_numpy_array(_images(k, n=1, h=64, w=64) * 2 - 1, need_grad=True)
              for k in (8, 9))
    loss = nn.functions.sum(ELPIPS(net, Config(num_scales=1)).samples(x0, x1, 3, np.random.default_rng(1)))
    loss.forward()
    for x in (x0, x1):
        x.grad.zero()
    loss.backward()
    for x in (x0, x1):
        assert np.isfinite(x.g).all() and np.abs(x.g).max() > 0
    assert not net.parameters()["lin0_model_1_weight"].need_grad


def test_ensemble_means_match_an_independent_torch_implementation(params_dir):
    # tests/golden/make_elpips_golden.py: 3000 independent draws per pair in torch. Here 30
    # batches of 4 draws (the ONNX Runtime draws, which equal these, meet the reference's own
    # code in test_elpips_reference.py); a batch shares its scale level and swap (as the
    # reference's), so the standard error comes from the batch means.
    with open(os.path.join(DATA, "golden", "elpips.json")) as f:
        golden = json.load(f)["records"]
    net = LPIPS("alex", params_dir=params_dir)
    rng = np.random.default_rng(2)
    for r in golden:
        x0, x1 = (nn.Variable.from_numpy_array(to_model_input(iio.imread(
            os.path.join(SAMPLES, kind, r["pair"] + ".png")))) for kind in ("ref", "distorted"))
        e = ELPIPS(net, Config.for_image(*x0.shape[2:]))
        assert e.config.num_scales == r["num_scales"]
        means = []
        for _ in range(30):
            d = e.samples(x0, x1, 4, rng)
            d.forward(clear_buffer=True)
            means.append(d.d.mean())
        error = np.std(means, ddof=1) / np.sqrt(len(means))
        assert abs(np.mean(means) - r["mean"]) <= 3 * np.hypot(error, r["stderr"]), (
            r["pair"], np.mean(means), error, r["mean"], r["stderr"])
