"""E-LPIPS estimates (auto-iteration) and paired comparisons, and the compare command."""
import json
import subprocess

import imageio.v3 as iio
import nnabla as nn
import numpy as np
import pytest

from conftest import COMMAND_ENV as ENV, command_line
from metrics.lpips import LPIPS
from metrics.lpips.elpips import Config, ELPIPS
from metrics.lpips.ensemble import MIN_BATCHES, MIN_SAMPLES, compare, estimate, standard_error



def _pair(seed, side=64):
    rng = np.random.default_rng(seed)
    a = rng.random((1, 3, side, side)).astype(np.float32) * 2 - 1
    b = np.clip(a + rng.normal(0, 0.2, a.shape), -1, 1).astype(np.float32)
    return a, b


@pytest.fixture(scope="module")
def alex_elpips(params_dir):
    return ELPIPS(LPIPS("alex", params_dir=params_dir), Config(num_scales=1))


def test_a_fixed_count_takes_that_many_draws(alex_elpips):
    a, b = _pair(0)
    e = estimate(alex_elpips, a, b, np.random.default_rng(0), samples=13, batch=4)
    assert e.count == 13 and e.mean > 0 and e.half_width == pytest.approx(1.96 * e.stderr)


def test_auto_stops_when_the_tolerance_is_met_and_not_before(alex_elpips):
    a, b = _pair(1)
    loose = estimate(alex_elpips, a, b, np.random.default_rng(1), abs_tol=1.0, rel_tol=1.0,
                     batch=4)
    assert loose.count == 4 * MIN_BATCHES  # the first chance: MIN_BATCHES batches of 4
    assert MIN_SAMPLES <= loose.count
    tight = estimate(alex_elpips, a, b, np.random.default_rng(1), abs_tol=1e-9, rel_tol=1e-9,
                     max_samples=20, batch=4)
    assert tight.count == 20 and tight.half_width > 1e-9
    seen = []
    medium = estimate(alex_elpips, a, b, np.random.default_rng(1), abs_tol=0.01, rel_tol=0.05,
                      max_samples=400, batch=8, on_batch=lambda v: seen.append(list(v)))
    assert medium.half_width < 0.01 and medium.half_width < 0.05 * medium.mean
    before = seen[-2]  # one batch earlier the rule was not yet met
    means = np.reshape(before, (-1, 8)).mean(axis=1)
    bound = 1.96 * np.std(means, ddof=1) / np.sqrt(len(means))
    assert len(means) < MIN_BATCHES or not (bound < 0.01 and bound < 0.05 * np.mean(before))


def test_without_randomness_every_draw_is_lpips(params_dir):
    net = LPIPS("alex", params_dir=params_dir)
    a, b = _pair(2)
    e = estimate(ELPIPS(net, Config.plain()), a, b, np.random.default_rng(0), batch=5)
    plain = net(nn.Variable.from_numpy_array(a), nn.Variable.from_numpy_array(b))
    plain.forward()
    # equal draws (to float rounding across the batch): the rule is met at the first chance
    assert e.count == 5 * MIN_BATCHES and e.stderr < 1e-8
    assert e.mean == pytest.approx(plain.d.item(), abs=1e-7)


def test_standard_errors_come_from_batch_means():
    # draws that share a batch also share part of their value (E-LPIPS: the scale level)
    rng = np.random.default_rng(0)
    shared = np.repeat(rng.normal(0, 1, 400), 10)
    values = shared + rng.normal(0, 0.1, 4000)
    naive = np.std(values, ddof=1) / np.sqrt(len(values))
    assert standard_error(values, 10) == pytest.approx(
        np.std(values.reshape(400, 10).mean(axis=1), ddof=1) / np.sqrt(400))
    assert standard_error(values, 10) > 2.5 * naive  # the per-draw formula understates it ~3x
    assert standard_error(values, 1) == pytest.approx(naive)
    # over independent repetitions, the batch-means error is the spread of the means
    means = [np.mean(np.repeat(r.normal(0, 1, 40), 10) + r.normal(0, 0.1, 400))
             for r in (np.random.default_rng(k) for k in range(300))]
    errors = [standard_error(np.repeat(r.normal(0, 1, 40), 10) + r.normal(0, 0.1, 400), 10)
              for r in (np.random.default_rng(k) for k in range(300))]
    assert np.mean(errors) == pytest.approx(np.std(means), rel=0.15)


def test_compare_decides_when_one_image_is_the_reference(alex_elpips):
    a, b = _pair(3)
    result = compare(alex_elpips, a, a, b, np.random.default_rng(0), batch=4)
    assert result.closer == "a" and result.d_a == 0 and result.difference < -result.half_width
    swapped = compare(alex_elpips, a, b, a, np.random.default_rng(0), batch=4)
    assert swapped.closer == "b"
    same = compare(alex_elpips, a, b, b, np.random.default_rng(0), max_samples=12, batch=4)
    assert same.closer is None and same.count == 12 and same.difference == 0


def test_the_compare_command(tmp_path, params_dir):
    a, b = _pair(4, side=64)
    paths = []
    for name, x in (("ref", a), ("same", a), ("noisy", b)):
        path = tmp_path / (name + ".png")
        iio.imwrite(path, np.round((x[0].transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8))
        paths.append(str(path))
    run = command_line("compare", "--model", "alex", "--version", "0.1",
           "--params-dir", params_dir, "--draws-per-pass", "4", "-q")
    text = subprocess.run(run + paths, capture_output=True, text=True, env=ENV)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("{} is closer to {}".format(paths[1], paths[0]))
    doc = json.loads(subprocess.run(run + [paths[0], paths[2], paths[1], "--format", "json",
                                           "--ensemble", "8"],
                                    capture_output=True, text=True, env=ENV).stdout)
    assert doc["closer"] == paths[1] and doc["count"] == 8 and doc["d_b"] == 0
    small = tmp_path / "small.png"
    iio.imwrite(small, np.zeros((32, 40, 3), np.uint8))
    bad = subprocess.run(run + [paths[0], paths[1], str(small)], capture_output=True, text=True,
                         env=ENV)
    assert bad.returncode == 3 and "small.png is 40x32" in bad.stderr
    usage = subprocess.run(run + paths + ["--ensemble", "0"], capture_output=True, text=True, env=ENV)
    assert usage.returncode == 2 and "positive number of draws" in usage.stderr


def test_the_compare_command_keeps_to_its_memory_budget(tmp_path, params_dir):
    a, _ = _pair(5, side=64)
    path = tmp_path / "a.png"
    iio.imwrite(path, np.round((a[0].transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8))
    run = command_line("compare", str(path), str(path), str(path),
           "--model", "alex", "--params-dir", params_dir, "-q", "--max-memory", "0.0001")
    result = subprocess.run(run, capture_output=True, text=True, env=ENV)
    assert result.returncode == 4 and "cannot be tiled" in result.stderr
