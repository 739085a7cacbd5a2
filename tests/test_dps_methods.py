"""The deep-perceptual-similarity distance methods (spatial, mean, sort, spatial+mean,
spatial+sort; channel normalisation on and off; LPIPS's or ImageNet's input scaling).

Golden values: tests/data/golden/dps.json, made by tests/golden/make_dps_golden.py (a torch
re-implementation of the authors' ExtractionModifier and DistanceMetric, committed there, on
pip lpips' trunks and lin layers). Ours within 1e-5; without channel normalisation the values
are raw squared activations (up to 4e4 here, where a float32's spacing is 4e-3), so there
within 1e-5 of the pair's score (measured: 2e-7 to 4e-7 of it).
"""
import collections
import json
import os
import types

import imageio.v3 as iio
import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

from conftest import DATA, run_command
from metrics.lpips import LPIPS, Scorer, distances
from metrics.lpips.data.images import to_model_input
from metrics.lpips.engines.tiling import TileTooLarge
from metrics.lpips.weights import lin_name

TOL = 1e-5

with open(os.path.join(DATA, "golden", "dps.json")) as f:
    GOLDEN = json.load(f)["records"]
CONFIGS = sorted({(r["model"], r["method"], r["channel_norm"], r["lpips"], r["input_norm"])
                  for r in GOLDEN})


def pair_arrays(name):
    return [to_model_input(iio.imread(os.path.join(DATA, "pairs", "{}_{}.png".format(name, i))))
            for i in (0, 1)]


def test_golden_covers_every_method_both_norms_and_both_models():
    assert {c[1] for c in CONFIGS} == set(distances.METHODS)
    for model in ("alex", "vgg"):
        for method in distances.METHODS:
            for norm in (True, False):
                for use_lpips in (True, False):
                    assert (model, method, norm, use_lpips, "lpips") in CONFIGS
    assert {c[4] for c in CONFIGS} == {"lpips", "imagenet"}
    assert len({r["pair"] for r in GOLDEN}) >= 5


def _tap_features(model, params_dir, input_norm):
    """Each golden pair's trunk taps (one trunk pass per pair, shared by the methods)."""
    net = LPIPS(model, params_dir=params_dir, input_norm=input_norm)
    feats = {}
    for name in {r["pair"] for r in GOLDEN}:
        x = nn.Variable.from_numpy_array(np.concatenate(pair_arrays(name)))
        taps = net.features(x)
        nn.forward_all(taps)
        feats[name] = ([t.d[:1].copy() for t in taps], [t.d[1:].copy() for t in taps])
    return feats


@pytest.mark.heavy
@pytest.mark.parametrize("model", ["alex", "vgg"])
def test_every_method_matches_the_reference_code(model, params_dir):
    feats = {norm: _tap_features(model, params_dir, norm) for norm in ("lpips", "imagenet")}
    errors = collections.defaultdict(float)
    for config in [c for c in CONFIGS if c[0] == model]:
        _, method, norm, use_lpips, input_norm = config
        net = LPIPS(model, params_dir=params_dir, lpips=use_lpips, method=method,
                    channel_norm=norm, input_norm=input_norm)
        for r in GOLDEN:
            if (r["model"], r["method"], r["channel_norm"], r["lpips"], r["input_norm"]) != config:
                continue
            f0, f1 = [[nn.Variable.from_numpy_array(a) for a in side]
                      for side in feats[input_norm][r["pair"]]]
            total, layers = net.reduce(net.layer_distances(f0, f1))
            nn.forward_all([total] + layers)
            assert len(layers) == len(r["layers"])
            scale = 1.0 if norm else abs(r["score"])
            errors[config] = max(errors[config], abs(total.d.item() - r["score"]) / scale, np.abs(
                np.array([v.d.item() for v in layers]) - r["layers"]).max() / scale)
    worst = max(errors.items(), key=lambda kv: kv[1])
    assert worst[1] < TOL, worst
    assert len(errors) == len([c for c in CONFIGS if c[0] == model])


@pytest.mark.parametrize("method", ["sort", "spatial+mean"])
def test_the_onnxruntime_engine_scores_the_methods_as_the_reference(method, params_dir):
    pytest.importorskip("onnxruntime")
    for norm in (True, False):
        scorer = Scorer("alex", params_dir=params_dir, backend="onnxruntime", method=method,
                        channel_norm=norm)
        for r in GOLDEN:
            if (r["model"], r["method"], r["channel_norm"], r["lpips"], r["input_norm"]) != (
                    "alex", method, norm, True, "lpips"):
                continue
            x0, x1 = pair_arrays(r["pair"])
            score = scorer.score_inputs(x0, x1)[0]
            scale = 1.0 if norm else abs(r["score"])
            assert abs(score - r["score"]) < TOL * scale, (r["pair"], norm, score, r["score"])


def test_spatial_is_todays_lpips_bit_for_bit(params_dir):
    x0, x1 = [nn.Variable.from_numpy_array(a) for a in pair_arrays("chelsea_jpeg")]
    plain, spatial = LPIPS("alex", params_dir=params_dir), LPIPS(
        "alex", params_dir=params_dir, method="spatial")
    a, b = plain(x0, x1), spatial(x0, x1)
    nn.forward_all([a, b])
    assert a.d.item() == b.d.item()


def _features(seed, shape=(2, 8, 5, 7)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(np.float32)


def _layer_distance(net, f0, f1):
    d = net.layer_distances([nn.Variable.from_numpy_array(f0)],
                            [nn.Variable.from_numpy_array(f1)])
    out = [distances.spatial_average(m) for m in d]
    nn.forward_all(out)
    return np.array([o.d.ravel() for o in out])


class _OneTapNet(LPIPS):
    """The methods on one tap of 8 channels, with fixed non-negative lin weights: the
    distance alone, without a trunk."""

    def __init__(self, method, channel_norm, use_lpips=True):  # noqa: no trunk to load
        self.method, self.channel_norm, self.lpips = method, channel_norm, use_lpips
        self.trunk = types.SimpleNamespace(taps=("tap",))
        self._scope = collections.OrderedDict()
        with self.scope():
            nn.parameter.set_parameter(lin_name(0), nn.Variable.from_numpy_array(
                np.linspace(0.1, 1.0, 8, dtype=np.float32).reshape(1, 8, 1, 1)))


def _permute_each_channel(f, seed):
    rng = np.random.default_rng(seed)
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w).copy()
    for i in range(n):
        for j in range(c):
            flat[i, j] = flat[i, j, rng.permutation(h * w)]
    return flat.reshape(f.shape)


def test_mean_ignores_where_each_channels_values_are_without_channel_norm():
    net = _OneTapNet("mean", channel_norm=False)
    f0, f1 = _features(0), _features(1)
    before = _layer_distance(net, f0, f1)
    after = _layer_distance(net, _permute_each_channel(f0, 2), _permute_each_channel(f1, 3))
    assert before.min() > 0
    np.testing.assert_allclose(after, before, rtol=1e-5)
    # ... which spatial comparison does not
    spatial = _OneTapNet("spatial", channel_norm=False)
    assert not np.allclose(_layer_distance(spatial, f0, _permute_each_channel(f1, 3)),
                           _layer_distance(spatial, f0, f1), rtol=1e-3)


@pytest.mark.parametrize("channel_norm", [True, False])
def test_sort_ignores_any_rearrangement_of_the_maps(channel_norm):
    net = _OneTapNet("sort", channel_norm)
    f0, f1 = _features(0), _features(1)
    before = _layer_distance(net, f0, f1)
    after = _layer_distance(net, _permute_each_channel(f0, 4), _permute_each_channel(f1, 5))
    assert before.min() > 0
    np.testing.assert_allclose(after, before, rtol=1e-5)


def test_spatial_plus_x_adds_the_two_distances_layer_list():
    f0, f1 = _features(0), _features(1)
    for x in ("mean", "sort"):
        both = _layer_distance(_OneTapNet("spatial+" + x, True), f0, f1)
        assert len(both) == 2
        np.testing.assert_allclose(both[0], _layer_distance(_OneTapNet("spatial", True), f0, f1)[0])
        np.testing.assert_allclose(both[1], _layer_distance(_OneTapNet(x, True), f0, f1)[0])


@pytest.mark.parametrize("method", ["sort", "mean", "spatial+sort"])
@pytest.mark.parametrize("channel_norm", [True, False])
def test_gradients_match_finite_differences(method, channel_norm):
    net = _OneTapNet(method, channel_norm)
    f0, f1 = _features(6, (1, 8, 4, 5)), _features(7, (1, 8, 4, 5))
    v0, v1 = nn.Variable.from_numpy_array(f0, need_grad=True), nn.Variable.from_numpy_array(f1)
    total, _ = net.reduce(net.layer_distances([v0], [v1]))
    total = F.sum(total)
    total.forward()
    v0.grad.zero()
    total.backward()
    assert np.isfinite(v0.g).all() and np.abs(v0.g).max() > 0

    def value(f):
        return _layer_distance(net, f.astype(np.float32), f1).sum()

    rng = np.random.default_rng(8)
    for index in [tuple(rng.integers(0, s) for s in f0.shape) for _ in range(12)]:
        step = np.zeros_like(f0, dtype=np.float64)
        step[index] = 1e-3  # small enough not to reorder a sort here
        numeric = (value(f0 + step) - value(f0 - step)) / 2e-3
        assert abs(numeric - v0.g[index]) <= 5e-4 + 1e-2 * abs(numeric), (index, numeric, v0.g[index])


def test_sorted_activations_send_gradients_where_the_values_came_from():
    # NNabla 1.39's own F.sort backward sends them to the inverse permutation instead.
    a = np.array([[[[1.6, -0.6], [-1.1, -0.5]]]], np.float32)
    x = nn.Variable.from_numpy_array(a, need_grad=True)
    rank_weight = nn.Variable.from_numpy_array(np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2))
    y = F.sum(distances.sorted_activations(x) * rank_weight)
    y.forward()
    x.grad.zero()
    y.backward()
    np.testing.assert_array_equal(x.g.ravel(), [3, 1, 0, 2])  # the rank of each value


def test_gradients_reach_both_images_through_the_graph(params_dir):
    net = LPIPS("alex", params_dir=params_dir, method="spatial+sort")
    x0, x1 = [nn.Variable.from_numpy_array(a, need_grad=True) for a in pair_arrays("brick_contrast")]
    d = net(x0, x1)
    d.forward()
    x0.grad.zero()
    x1.grad.zero()
    d.backward()
    for x in (x0, x1):
        assert np.isfinite(x.g).all() and np.abs(x.g).max() > 0


def test_unknown_method_and_input_norm_name_the_choices(params_dir):
    with pytest.raises(ValueError, match="spatial, mean, sort"):
        LPIPS("alex", params_dir=params_dir, method="sorted")
    with pytest.raises(ValueError, match="lpips, imagenet"):
        LPIPS("alex", params_dir=params_dir, input_norm="torch")


def test_whole_map_methods_refuse_to_tile_with_a_clear_error(params_dir):
    scorer = Scorer("alex", params_dir=params_dir, backend="nnabla", method="mean",
                    max_memory=64 << 20)
    x = np.zeros((1, 3, 512, 512), np.float32)
    with pytest.raises(TileTooLarge, match="mean method compares whole feature maps"):
        scorer.score_inputs(x, x)


def compute(args):
    return run_command("compute", *args)


def test_cli_method_options(params_dir):
    paths = [os.path.join(DATA, "pairs", "coffee_noise_{}.png".format(i)) for i in (0, 1)]
    record = next(r for r in GOLDEN if (r["model"], r["method"], r["channel_norm"], r["lpips"],
                                        r["input_norm"], r["pair"]) ==
                  ("alex", "spatial+sort", False, True, "lpips", "coffee_noise"))
    out = compute(paths + ["--method", "spatial+sort", "--no-channel-norm", "--params-dir",
                           params_dir, "--format", "json", "-q"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["method"], doc["channel_norm"]) == ("spatial+sort", False)
    assert abs(doc["pairs"][0]["lpips"] - record["score"]) < TOL * abs(record["score"])
    bad = compute(paths + ["--method", "median", "--params-dir", params_dir])
    assert bad.returncode == 2 and "invalid choice: 'median'" in bad.stderr
