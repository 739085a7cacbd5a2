"""The user-facing ONNX export: one self-contained model, two images in, scores (and maps) out,
equal to the NNabla graph within 1e-5 at any batch and size."""
import os

import nnabla as nn
import numpy as np
import pytest

from conftest import run_command

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from metrics.lpips import LPIPS  # noqa: E402

TOL = 1e-5


def export_cli(*args):
    return run_command("export", *args)


def _inputs(seed, n, h, w):
    x = np.random.default_rng(seed).uniform(-1, 1, (2 * n, 3, h, w)).astype(np.float32)
    return x[:n], x[n:]


@pytest.mark.heavy
@pytest.mark.parametrize("model,method", [("alex", "spatial"), ("alex", "spatial+sort"),
                                          ("vgg", "mean"), ("squeeze", "sort")])
def test_the_exported_metric_equals_nnabla_at_any_batch_and_size(tmp_path, params_dir,
                                                                 squeeze_params_dir, model, method):
    folder = squeeze_params_dir if model == "squeeze" else params_dir
    path = tmp_path / "m.onnx"
    result = export_cli("--model", model, "--method", method, "--spatial", "--params-dir", folder,
                        "-o", path)
    assert result.returncode == 0, result.stderr
    assert "largest difference" in result.stderr
    files = os.listdir(tmp_path)
    assert files == ["m.onnx"], files  # weights inside: no data file beside it
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = LPIPS(model, params_dir=folder, method=method)
    spatial = LPIPS(model, params_dir=folder, method=method, spatial=True)
    for seed, (n, h, w) in enumerate([(1, 64, 64), (3, 50, 77)]):
        x0, x1 = _inputs(seed, n, h, w)
        score, dist_map = session.run(["score", "map"], {"img0": x0, "img1": x1})
        v0, v1 = nn.Variable.from_numpy_array(x0), nn.Variable.from_numpy_array(x1)
        expected, expected_map = net(v0, v1), spatial(v0, v1)
        nn.forward_all([expected, expected_map])
        assert score.shape == (n, 1, 1, 1) and dist_map.shape == (n, 1, h, w)
        np.testing.assert_allclose(score, expected.d, atol=TOL, rtol=0)
        np.testing.assert_allclose(dist_map, expected_map.d, atol=TOL, rtol=0)


def test_the_model_states_its_input_convention_and_options(tmp_path, params_dir):
    path = tmp_path / "alex.onnx"
    result = export_cli("--no-channel-norm", "--input-norm", "imagenet", "--params-dir", params_dir,
                        "-o", path, "-q")
    assert result.returncode == 0, result.stderr
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert "[-1, 1]" in meta["lpips.input"] and "(N, 3, H, W)" in meta["lpips.input"]
    assert (meta["lpips.model"], meta["lpips.method"], meta["lpips.channel_norm"],
            meta["lpips.input_norm"]) == ("alex", "spatial", "False", "imagenet")
    assert [i.name for i in model.graph.input] == ["img0", "img1"]
    assert [o.name for o in model.graph.output] == ["score"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x0, x1 = _inputs(5, 2, 40, 48)
    net = LPIPS("alex", params_dir=params_dir, channel_norm=False, input_norm="imagenet")
    expected = net(nn.Variable.from_numpy_array(x0), nn.Variable.from_numpy_array(x1))
    expected.forward()
    (score,) = session.run(None, {"img0": x0, "img1": x1})
    np.testing.assert_allclose(score, expected.d, rtol=1e-5)  # raw activations: large values


def test_a_failed_check_writes_nothing(tmp_path, params_dir):
    path = tmp_path / "m.onnx"
    result = export_cli("--tolerance", "0", "--params-dir", params_dir, "-o", path)
    assert result.returncode == 1 and "nothing was written" in result.stderr
    assert not path.exists() and os.listdir(tmp_path) == []


def test_usage_errors(tmp_path):
    assert export_cli("--method", "median", "-o", tmp_path / "m.onnx").returncode == 2
    missing = export_cli("--model", "alex")
    assert missing.returncode == 2 and "-o/--outfile" in missing.stderr
    folder = export_cli("-o", tmp_path)
    assert folder.returncode == 2 and "is a directory" in folder.stderr
