"""Optimising images through LPIPS and E-LPIPS (short runs of the examples)."""
import csv
import os

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import ROOT, run_command
from metrics.lpips import LPIPS
from metrics.lpips.elpips import Config, ELPIPS
from metrics.lpips.optimization import TOLERANCE, Objective, noise_start, optimize
from metrics.lpips.optimize import _perturbed

SAMPLES = os.path.join(ROOT, "utils", "neu", "metrics", "lpips", "samples", "ref")


def _run(*args):
    return run_command("optimize", *args)


def _image(seed, side=48):
    rng = np.random.default_rng(seed)
    smooth = rng.random((1, 3, side // 8, side // 8))
    return np.clip(np.kron(smooth, np.ones((1, 1, 8, 8))) +
                   0.05 * rng.standard_normal((1, 3, side, side)), 0, 1).astype(np.float32)


def test_matching_under_lpips_pulls_the_image_to_the_target(params_dir):
    net = LPIPS("alex", params_dir=params_dir)
    target = _image(0)
    objective = Objective(net, target)
    start = noise_start(target.shape, np.random.default_rng(1))
    seen = []
    result = optimize(objective, start, 15, lambda t: 0.02, np.random.default_rng(2),
                      on_step=lambda step, x: seen.append(step.loss))
    assert len(seen) == 15 and seen[0] == pytest.approx(objective.value(start), rel=1e-5)
    assert objective.value(result) < 0.7 * objective.value(start)
    assert result.min() >= np.float32(TOLERANCE) and result.max() <= np.float32(1 - TOLERANCE)


def test_an_elpips_barycenter_lowers_the_summed_squared_distances(params_dir):
    targets = np.concatenate([_image(3), _image(4)])
    elpips = ELPIPS(LPIPS("alex", params_dir=params_dir), Config.for_image(48, 48))
    objective = Objective(elpips, targets, power=2)
    assert objective.stochastic
    start = noise_start((1, 3, 48, 48), np.random.default_rng(5))
    result = optimize(objective, start, 12, lambda t: 0.03, np.random.default_rng(6))
    assert objective.value(result) < 0.8 * objective.value(start)
    # with the transformations off, the value is the sum of squared LPIPS distances
    plain = Objective(ELPIPS(elpips.net, Config.plain()), targets, power=2)
    parts = [Objective(elpips.net, t[None]).value(result) ** 2 for t in targets]
    assert plain.value(result) == pytest.approx(sum(parts), rel=1e-5)


def test_perturbed_copies_are_noisy_or_shifted_copies():
    image = _image(7, side=40)
    noisy = _perturbed(image, 3, "noise", 0.07, np.random.default_rng(0))
    assert noisy.shape == (3, 3, 40, 40) and noisy.min() >= 0 and noisy.max() <= 1
    assert 0.03 < np.std(noisy - image) < 0.08
    shifted = _perturbed(image, 6, "shift", 0.07, np.random.default_rng(1))
    for copy in shifted:
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(copy[:, 2:-2, 2:-2],
                                   image[0, :, 2 - dy:38 - dy, 2 - dx:38 - dx])]
        assert found, "a copy that is no shift of the image"


def test_the_optimize_command(tmp_path, params_dir):
    out = tmp_path / "match"
    result = _run("match", os.path.join(SAMPLES, "cat.png"), "-o", str(out), "--model", "alex",
                  "--params-dir", params_dir, "--size", "48", "--steps", "8", "--snapshots", "3",
                  "--start", "blur", "-q")
    assert result.returncode == 0, result.stderr
    before, after = (float(v) for v in result.stdout.split("loss ")[1].split(" over")[0]
                     .split(" -> "))
    assert after < before
    names = set(os.listdir(out))
    assert {"input_00.png", "start.png", "result.png", "step_000008.png", "loss.csv"} <= names
    assert iio.imread(out / "result.png").shape == (48, 48, 3)
    with open(out / "loss.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "loss"] and len(rows) == 9

    out = tmp_path / "bary"
    result = _run("average", os.path.join(SAMPLES, "cat.png"), os.path.join(SAMPLES, "rocket.png"),
                  "-o", str(out), "--model", "alex", "--params-dir", params_dir, "--size", "40",
                  "--steps", "3", "--snapshots", "0", "-q")
    assert result.returncode == 0, result.stderr
    inputs = [iio.imread(out / "input_{:02d}.png".format(k)).astype(float) for k in (0, 1)]
    mean = iio.imread(out / "l2_mean.png").astype(float)
    assert np.abs(mean - (inputs[0] + inputs[1]) / 2).max() <= 1.0  # rounding of each


@pytest.mark.parametrize("task", ["match", "average"])
def test_optimize_steps_equal_on_both_backends(task, tmp_path, params_dir):
    """The default runs the loss and its gradient on ONNX Runtime (LPIPS for match, E-LPIPS
    for average), --backend nnabla on NNabla's graph: the same losses step by step."""
    losses = {}
    for backend in ("auto", "nnabla"):
        out = tmp_path / backend
        extra = ["--copies", "2"] if task == "average" else []
        result = _run(task, os.path.join(SAMPLES, "cat.png"), "-o", str(out), "--model", "alex",
                      "--params-dir", params_dir, "--size", "40", "--steps", "4", "--snapshots",
                      "0", "--backend", backend, "-q", *extra)
        assert result.returncode == 0, result.stderr
        with open(out / "loss.csv") as f:
            losses[backend] = [float(row[1]) for row in list(csv.reader(f))[1:]]
    assert len(losses["auto"]) == 4
    np.testing.assert_allclose(losses["auto"], losses["nnabla"], rtol=1e-4)


def test_optimize_usage_and_input_errors(tmp_path, params_dir):
    cat = os.path.join(SAMPLES, "cat.png")
    common = ["-o", str(tmp_path / "out"), "--params-dir", params_dir, "--model", "alex", "-q"]
    one = _run("average", cat, *common)
    assert one.returncode == 2 and "two or more images" in one.stderr
    two = _run("average", cat, cat, "--copies", "3", *common)
    assert two.returncode == 2 and "--copies takes one IMAGE" in two.stderr
    small = tmp_path / "small.png"
    iio.imwrite(small, np.zeros((40, 50, 3), np.uint8))
    sizes = _run("average", cat, str(small), *common)
    assert sizes.returncode == 3 and "small.png is 50x40" in sizes.stderr
    bad = _run("match", cat, "--steps", "0", *common)
    assert bad.returncode == 2
    assert not os.path.exists(tmp_path / "out")  # nothing made before the errors
