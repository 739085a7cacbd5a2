"""The feature-map figures: what layer_view computes, and the command's PNGs and errors."""
import os

import imageio.v3 as iio
import nnabla as nn
import numpy as np
import pytest

from conftest import ROOT, run_command
from metrics.lpips import LPIPS
from metrics.lpips.data.images import read_image, to_model_input
from metrics.lpips.features import layer_view

SAMPLES = os.path.join(ROOT, "utils", "neu", "metrics", "lpips", "samples")
REF, DISTORTED = (os.path.join(SAMPLES, kind, "cat.png") for kind in ("ref", "distorted"))


def features_cli(*args):
    return run_command("features", *args)


@pytest.mark.heavy
@pytest.mark.parametrize("method", ["spatial", "sort", "spatial+mean"])
def test_the_layer_view_adds_up_to_the_metrics_per_layer_value(method, params_dir):
    net = LPIPS("vgg", params_dir=params_dir, method=method)
    images = [read_image(REF), read_image(DISTORTED)]
    x0, x1 = [nn.Variable.from_numpy_array(to_model_input(i)) for i in images]
    _, layers = net(x0, x1, per_layer=True)
    nn.forward_all(layers)
    for layer in (1, len(layers) - 1):
        view = layer_view(net, images, layer)
        assert view["distance"].mean() == pytest.approx(layers[layer].d.item(), rel=1e-5)
        # the channels' shares sum to the layer's distance (the lin layer is a weighted sum)
        assert view["contribution"].sum() == pytest.approx(layers[layer].d.item(), rel=1e-4)
        assert view["squared"].shape == view["activations"].shape[1:]


def _image_stats(path):
    png = iio.imread(path)
    return png.shape, float(png[..., :3].std())


def test_one_image_draws_a_grid_of_the_most_active_channels(tmp_path, params_dir):
    out = tmp_path / "grid.png"
    result = features_cli(REF, "--model", "vgg", "--layer", "relu3_3", "--channels", "9",
                          "--params-dir", params_dir, "-o", out)
    assert result.returncode == 0, result.stderr
    shape, spread = _image_stats(out)
    assert shape[0] > 300 and shape[1] > 300 and spread > 20  # a picture, not a blank page


def test_two_images_draw_differences_and_the_distance_map(tmp_path, params_dir):
    out = tmp_path / "pair.png"
    result = features_cli(REF, DISTORTED, "--layer", "2", "--method", "sort",
                          "--params-dir", params_dir, "-o", out)
    assert result.returncode == 0, result.stderr
    shape, spread = _image_stats(out)
    assert shape[0] > 500 and shape[1] > 500 and spread > 20


@pytest.mark.parametrize("args,code,message", [
    (["--layer", "relu9"], 2, "relu1, relu2, relu3, relu4, relu5"),
    (["--layer", "5"], 2, "0-4"),
    (["--method", "spatial+sort", "--layer", "relu2/mean"], 2, "relu2/sort"),
    (["--channels", "0"], 2, "--channels must be at least 1"),
])
def test_bad_options_are_usage_errors(tmp_path, params_dir, args, code, message):
    out = tmp_path / "x.png"
    result = features_cli(REF, "--params-dir", params_dir, "-o", out, *args)
    assert result.returncode == code and message in result.stderr
    assert not out.exists()


def test_bad_images_exit_3_and_write_nothing(tmp_path, params_dir):
    out = tmp_path / "x.png"
    missing = features_cli(tmp_path / "none.png", "--params-dir", params_dir, "-o", out)
    assert missing.returncode == 3 and "none.png" in missing.stderr
    small = tmp_path / "small.png"
    iio.imwrite(small, np.zeros((20, 40, 3), np.uint8))
    other = features_cli(REF, small, "--params-dir", params_dir, "-o", out)
    assert other.returncode == 3 and "--resize" in other.stderr
    three = features_cli(REF, REF, REF, "--params-dir", params_dir, "-o", out)
    assert three.returncode == 2 and "one image or two" in three.stderr
    assert not out.exists()
