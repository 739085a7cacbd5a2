"""train --method: lin layers per distance method (Sjögren et al. 2022), two sets for
spatial+X, loaded for that method only."""
import json
import os

import numpy as np
import pytest

import nnabla as nn

from conftest import SAMPLES, run_command
from metrics.lpips import LPIPS, WeightsError
from metrics.lpips.distances import METHODS
from metrics.lpips.evaluation import synthetic
from metrics.lpips.training.precompute import TermMaker, channel_terms
from metrics.lpips.trunks import get_trunk
from metrics.lpips.weights import lin_name
from metrics.lpips.weights.store import load_weights, read_comparison, write_h5

OTHER_METHODS = [m for m in METHODS if m != "spatial"]


def _trained_file(folder, params_dir, method, channel_norm=True, seed=0):
    """The pretrained trunk with random lin layers for ``method``, as train writes them."""
    params = load_weights("alex", "0.1", params_dir)
    channels = get_trunk("alex").channels
    rng = np.random.default_rng(seed)
    for k in range(len(channels) * (2 if method.startswith("spatial+") else 1)):
        params[lin_name(k)] = rng.uniform(0, 1, (1, channels[k % 5], 1, 1)).astype(np.float32)
    os.makedirs(folder, exist_ok=True)
    write_h5(os.path.join(folder, "alex_with_LPIPS.h5"), params, trained="a test",
             comparison={"method": method, "channel_norm": channel_norm, "input_norm": "lpips"})
    return params


@pytest.mark.parametrize("method", METHODS)
def test_training_terms_times_the_lin_weights_are_the_distance(method, params_dir, tmp_path):
    # What training fits (the precomputed terms, one per map the method compares and channel)
    # is what the metric computes with the file it writes.
    params = _trained_file(str(tmp_path), params_dir, method, channel_norm=method != "mean")
    net = LPIPS("alex", params_dir=str(tmp_path), method=method,
                channel_norm=method != "mean", engine="nnabla")
    weights = np.concatenate([params[name].reshape(-1) for name in net.lin_names()])
    if method.startswith("spatial+"):
        assert net.lin_names() == [lin_name(k) for k in range(10)]
    x = np.random.default_rng(1).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    with nn.auto_forward(True):
        feats = [f.d.copy() for f in net.features(nn.Variable.from_numpy_array(x))]
        expected = net(nn.Variable.from_numpy_array(x[:1]),
                       nn.Variable.from_numpy_array(x[1:2])).d.reshape(-1)
    t0, t1 = channel_terms(feats, 1, method != "mean", method=method)
    assert t0.shape == (1, len(weights))
    np.testing.assert_allclose(t0 @ weights, expected, rtol=2e-5)
    assert not np.allclose(t0 @ weights, t1 @ weights)


def test_a_file_is_loaded_for_its_own_comparison_only(params_dir, tmp_path):
    folder = str(tmp_path / "sort")
    _trained_file(folder, params_dir, "sort")
    assert read_comparison(os.path.join(folder, "alex_with_LPIPS.h5"))["method"] == "sort"
    LPIPS("alex", params_dir=folder, method="sort")
    LPIPS("alex", params_dir=folder, method="sort", lpips=False)  # no lin layers: any method
    for other in (dict(method="spatial"), dict(method="sort", channel_norm=False),
                  dict(method="sort", input_norm="imagenet")):
        with pytest.raises(WeightsError, match="trained for method sort"):
            LPIPS("alex", params_dir=folder, **other)
    # The pretrained file serves every method (its lin layers for each tap's maps).
    net = LPIPS("alex", params_dir=params_dir, method="spatial+sort")
    assert net.lin_names() == [lin_name(k % 5) for k in range(10)]

    pair = [os.path.join(SAMPLES, part, "cat.png") for part in ("ref", "distorted")]
    result = run_command("compute", *pair, "--params-dir", folder)
    assert result.returncode == 4
    assert "--method sort" in result.stderr and result.stdout == ""
    result = run_command("compute", *pair, "--params-dir", folder, "--method", "sort")
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory, params_dir):
    root = str(tmp_path_factory.mktemp("synthetic") / "set")
    synthetic.make(root, jnd=0, term_maker=TermMaker("alex", params_dir))
    return root


def test_each_method_learns_on_the_synthetic_set(synthetic_root, params_dir, tmp_path):
    trained = {}
    for method in OTHER_METHODS:
        out = str(tmp_path / method.replace("+", "-"))
        result = run_command("train", "--dataroot", synthetic_root, "--datasets",
                             "train/synthetic", "--eval-datasets", "val/synthetic", "--method",
                             method, "--epochs", "10", "--epochs-decay", "10", "--out", out,
                             "--params-dir", params_dir, "-q")
        assert result.returncode == 0, result.stderr
        trained[method] = out
        with open(os.path.join(out, "checkpoints", "epoch_020", "state.json")) as f:
            assert json.load(f)["settings"]["method"] == method
    # One grid: each trained folder is scored with its own method (whatever --method says),
    # beside the untrained channel sum of every method.
    outfile = str(tmp_path / "grid.json")
    result = run_command("evaluate", "--dataroot", synthetic_root, "--datasets",
                         "val/synthetic", "--metric", "baseline", "lpips", "--method",
                         *OTHER_METHODS, "--params-dir", params_dir, "--format", "json",
                         "-o", outfile, "-q", "--batch-size", "10",
                         *["--weights={}={}".format(m, d) for m, d in trained.items()])
    assert result.returncode == 0, result.stderr
    with open(outfile) as f:
        rows = {row["metric"]: row["score"] for row in json.load(f)["results"]}
    for method in OTHER_METHODS:
        learned = rows["lpips-alex-v0.1-{}[{}]".format(method, method)]
        untrained = rows["baseline-alex-v0.1-" + method]
        assert learned > untrained + 0.02, (method, learned, untrained)
    # A trained method's folder cannot be resumed as another method's run.
    result = run_command("train", "--dataroot", synthetic_root, "--datasets",
                         "train/synthetic", "--method", "mean", "--epochs", "10",
                         "--epochs-decay", "11", "--out", trained["sort"], "--resume",
                         "--params-dir", params_dir, "-q")
    assert result.returncode == 2 and "method" in result.stderr


def test_results_of_trained_weights_say_whose(params_dir, tmp_path):
    from metrics.lpips.evaluation.runner import Distance
    folder = str(tmp_path / "mine")
    _trained_file(folder, params_dir, "sort")
    assert Distance("lpips", params_dir=folder, method="sort").name == \
        "lpips-alex-v0.1-sort[{}]".format(folder)
    assert Distance("lpips", params_dir=folder, method="sort", label="x").name == \
        "lpips-alex-v0.1-sort[x]"
    assert Distance("lpips", params_dir=params_dir).name == "lpips-alex-v0.1"  # published
    assert LPIPS("alex", params_dir=folder, method="sort").trained == "a test"


def test_lin_layers_trained_on_the_pretrained_trunk_share_its_features(params_dir, tmp_path):
    # A grid computes a trunk's features once for every configuration with the same trunk
    # weights, wherever they were read from: a lin-trained folder adds no trunk pass.
    from metrics.lpips.evaluation.runner import Distance
    folder = str(tmp_path / "lin")
    params = _trained_file(folder, params_dir, "spatial")
    pretrained = Distance("lpips", params_dir=params_dir)
    assert Distance("lpips", params_dir=folder).trunk_key == pretrained.trunk_key
    params["conv0/conv/W"] = params["conv0/conv/W"] * 1.01  # a tuned trunk computes others
    tuned = str(tmp_path / "tuned")
    os.makedirs(tuned)
    write_h5(os.path.join(tuned, "alex_with_LPIPS.h5"), params, trained="a test",
             comparison={"method": "spatial", "channel_norm": True, "input_norm": "lpips"})
    assert Distance("lpips", params_dir=tuned).trunk_key != pretrained.trunk_key
