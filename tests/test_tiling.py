"""Large images: exact tiled scoring, the memory budget, and the size-based engine choice."""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import COMMAND_ENV as ENV, command_line
from metrics.lpips import Scorer
from metrics.lpips.engines import TileTooLarge, tiling
from metrics.lpips.engines.tuning import TUNING

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pair(height, width, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((2, 3, height, width), dtype=np.float32) * 2 - 1


def _untiled_and_tiled(scorer, x, core):
    """[total, per tap..., spatial map] of the pair x, whole and in tiles of ``core`` px."""
    size = x.shape[2:]
    whole = scorer.engine.pair_layer_maps(x)
    tiled = tiling.layer_maps_tiled(scorer.engine, scorer.net, x[:1], x[1:],
                                    np.ascontiguousarray, False, core)
    return (scorer.engine.reduce_maps(whole, size), scorer.engine.reduce_maps(tiled, size),
            whole, tiled)


@pytest.mark.parametrize("model,backend,size,core", [
    ("alex", "onnxruntime", (173, 219), 32),  # sides neither multiples of the core nor of 16
    ("alex", "nnabla", (97, 301), 48),
    ("alex", "onnxruntime", (40, 250), 48),  # a grid of one row
    ("vgg", "onnxruntime", (150, 45), 32),  # a grid of one column
    ("vgg", "onnxruntime", (129, 131), 64),
    ("squeeze", "onnxruntime", (161, 203), 32),
    ("squeeze", "onnxruntime", (33, 200), 16),  # one row, the smallest core
])
@pytest.mark.heavy
def test_tiled_equals_untiled(model, backend, size, core, params_dir, squeeze_params_dir):
    folder = squeeze_params_dir if model == "squeeze" else params_dir
    scorer = Scorer(model, params_dir=folder, backend=backend, winograd=False)
    whole, tiled, whole_maps, tiled_maps = _untiled_and_tiled(scorer, _pair(*size), core)
    rows, cols = tiling.tile_grid(*size, core, scorer.net.trunk.tile_halo)
    assert rows * cols > 1 and (rows == 1) == (size[0] <= core) and (cols == 1) == (size[1] <= core)
    for a, b in zip(whole_maps, tiled_maps):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=1e-5)
    np.testing.assert_allclose(tiled[0], whole[0], atol=1e-5)  # score
    for a, b in zip(whole[1:-1], tiled[1:-1]):  # per layer
        np.testing.assert_allclose(b, a, atol=1e-5)
    np.testing.assert_allclose(tiled[-1], whole[-1], atol=1e-5)  # spatial map


@pytest.mark.heavy
def test_a_halo_too_small_is_found(params_dir, monkeypatch):
    # The halo is what makes tiling exact: with a fraction of it the scores differ.
    scorer = Scorer("vgg", params_dir=params_dir, backend="onnxruntime", winograd=False)
    scorer.net.trunk = dataclasses.replace(scorer.net.trunk, tile_halo=16)
    whole, tiled, _, _ = _untiled_and_tiled(scorer, _pair(129, 131), 32)
    assert abs(float(tiled[0].ravel()[0]) - float(whole[0].ravel()[0])) > 1e-4


def test_scorer_tiles_a_pair_over_the_budget(params_dir, caplog, monkeypatch):
    x = _pair(300, 420, seed=3)
    exact = Scorer("alex", params_dir=params_dir, spatial=True, max_memory=float("inf"),
                   winograd=True)
    expected = exact.score_inputs(x[:1], x[1:])
    monkeypatch.setattr(tiling, "resident_bytes", lambda: 0)  # the estimate, without the process
    scorer = Scorer("alex", params_dir=params_dir, spatial=True, winograd=True)
    per_pixel = TUNING["alex"].memory_slope("direct")  # tiles run direct
    scorer.max_memory = tiling.PASS_OVERHEAD + per_pixel * 2 * 250 * 250
    with caplog.at_level("INFO"):
        scores, maps = scorer.score_inputs(x[:1], x[1:])
    import re
    rows, cols = map(int, re.search(r"scoring it in tiles, (\d+) x (\d+)", caplog.text).groups())
    assert rows * cols > 1
    np.testing.assert_allclose(scores, expected[0], atol=1e-5)
    np.testing.assert_allclose(maps, expected[1], atol=1e-5)


def test_a_budget_not_even_one_tile_fits_says_so_before_any_work(params_dir):
    scorer = Scorer("vgg", params_dir=params_dir, max_memory=1)
    with pytest.raises(TileTooLarge, match=r"a 420x300 pair does not fit in 0 MiB"):
        scorer.score_inputs(*np.split(_pair(300, 420), 2))


def test_passes_shrink_to_the_budget(params_dir, monkeypatch):
    monkeypatch.setattr(tiling, "resident_bytes", lambda: 0)
    scorer = Scorer("alex", params_dir=params_dir, batch_size=32)
    per_pixel = TUNING["alex"].memory_slope("winograd")
    scorer.max_memory = tiling.PASS_OVERHEAD + per_pixel * 2 * 64 * 64 * 5
    chunks = scorer._chunks(32, (64, 64))
    assert max(stop - start for start, stop in chunks) <= 5 and chunks[-1][1] == 32


# Runs a command (its stderr to the file $LOG) and prints its peak RSS in KiB and its exit
# code: from this small process, because a child forked from the test process would count the
# test process's pages until it execs.
_MEASURE = ("import os, resource, subprocess, sys\n"
            "with open(os.environ['LOG'], 'w') as log:\n"
            "    code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=log)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n")


def _peak_mb(args, log):
    """Peak RSS (MB) of a child process running ``args``, and its exit code."""
    env = dict(ENV, LOG=log)
    out = subprocess.run([sys.executable, "-c", _MEASURE] + args, stdout=subprocess.PIPE,
                         env=env, universal_newlines=True, check=True).stdout.split()
    return int(out[0]) / 1024.0, int(out[1])


@pytest.mark.heavy
def test_a_tiled_run_stays_within_its_budget(params_dir, tmp_path):
    # A 2400 x 1800 AlexNet pair takes ~0.8 GB whole; with --max-memory 0.4 (GiB) it is tiled.
    from PIL import Image
    rng = np.random.default_rng(0)
    paths = []
    for k in range(2):
        small = rng.integers(0, 256, (1800 // 8, 2400 // 8, 3), dtype=np.uint8)
        paths.append(str(tmp_path / "{}.png".format(k)))
        Image.fromarray(small).resize((2400, 1800)).save(paths[-1], compress_level=1)
    budget_gib, log = 0.4, str(tmp_path / "log.txt")
    args = command_line("compute", paths[0], paths[1], "--model", "alex",
            "--params-dir", params_dir, "--max-memory", str(budget_gib),
            "-o", str(tmp_path / "s.txt"))
    assert _peak_mb(args, log)[1] == 0  # the first run may export the tile graphs (not budgeted)
    peak, code = _peak_mb(args, log)
    assert code == 0 and "scoring it in tiles" in open(log).read()
    assert peak <= budget_gib * 1024 * 1.05, peak  # a margin of 5% over the budget
    assert 0 < float(open(str(tmp_path / "s.txt")).read().split(":")[0]) < 2


def test_cli_names_the_budget_when_no_tile_fits(params_dir, tmp_path):
    from PIL import Image
    paths = []
    for k in range(2):
        paths.append(str(tmp_path / "{}.png".format(k)))
        Image.fromarray(np.full((300, 420, 3), 40 * k, np.uint8)).save(paths[-1])
    out = subprocess.run(command_line("compute", paths[0], paths[1],
                          "--params-dir", params_dir, "--max-memory", "0.01"),
                         env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert out.returncode == 4 and out.stdout == ""
    assert "does not fit in 10 MiB" in out.stderr and "--max-memory" in out.stderr
