"""evaluate over a grid of configurations (metrics x models x methods x weights) in one process:
the same cells as the runs it replaces, one table, the people's own agreement beside it."""
import csv
import io
import json
import os
import shutil

import numpy as np
import pytest

from conftest import ROOT, run_command
from metrics.lpips.evaluation import bapps
from metrics.lpips.evaluation.runner import Distance, evaluate, evaluate_many
from metrics.lpips.evaluation.set_info import human_agreement

DATAROOT = os.path.join(ROOT, "tests", "data", "bapps")


def evaluate_cli(*args):
    return run_command("evaluate", "--dataroot", DATAROOT, "-q", *args)


@pytest.mark.parametrize("mode", ["2afc", "jnd"])
def test_a_grid_equals_the_runs_it_replaces(mode, params_dir):
    judged = bapps.read_folder(os.path.join(DATAROOT, mode, "val", "mixed"), mode)
    configs = [dict(metric="lpips", model="alex"), dict(metric="lpips", model="alex", method="mean"),
               dict(metric="baseline", model="alex"), dict(metric="lpips", model="vgg"),
               dict(metric="l2"), dict(metric="ssim", colorspace="RGB")]
    distances = [Distance(params_dir=params_dir, **c) for c in configs]
    grid = evaluate_many(judged, distances, batch_size=4)
    assert [r["metric"] for r in grid] == [d.name for d in distances]
    for cell, config in zip(grid, configs):  # each alone, in a distance of its own
        alone = evaluate(judged, Distance(params_dir=params_dir, **config), batch_size=4)
        assert cell["score"] == alone["score"], cell["metric"]
        for key in ("d0", "d1", "d"):
            if key in alone:
                np.testing.assert_array_equal(cell[key], alone[key])


def test_the_grid_command_names_every_configuration(params_dir, tmp_path):
    trained = tmp_path / "trained"
    trained.mkdir()
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(trained))
    args = ["--datasets", "val/mixed", "val/other", "--metric", "lpips", "l2",
            "--metric", "baseline",  # repeated: every one is kept
            "--model", "alex", "vgg", "--params-dir", params_dir, "--weights",
            "mine={}".format(trained)]
    result = evaluate_cli(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    names = ["lpips-alex-v0.1", "lpips-alex-v0.1[mine]", "lpips-vgg-v0.1", "l2-Lab",
             "baseline-alex-v0.1", "baseline-vgg-v0.1"]  # vgg: not in the trained folder
    assert doc["settings"]["metric"] == names
    assert [(r["metric"], r["dataset"]) for r in doc["results"]] == [
        (n, d) for d in ("val/mixed", "val/other") for n in names]
    cells = {(r["metric"], r["dataset"]): r["score"] for r in doc["results"]}
    # The same weights under a label score the same.
    assert cells["lpips-alex-v0.1", "val/mixed"] == cells["lpips-alex-v0.1[mine]", "val/mixed"]
    judged = bapps.read_folder(os.path.join(DATAROOT, "2afc", "val", "other"), "2afc")
    assert doc["human"]["val/other"] == pytest.approx(human_agreement(judged.judgments))
    assert doc["means"]["l2-Lab"] == pytest.approx(
        (cells["l2-Lab", "val/mixed"] + cells["l2-Lab", "val/other"]) / 2)
    text = evaluate_cli(*args).stdout.splitlines()
    assert text[1].split() == ["configuration", "val/mixed", "val/other", "mean"]
    assert [line.split()[0] for line in text[2:]] == names + ["human"]
    row = text[2 + names.index("l2-Lab")].split()
    assert float(row[1]) == pytest.approx(100 * cells["l2-Lab", "val/mixed"], abs=0.005)
    rows = list(csv.DictReader(io.StringIO(evaluate_cli(*args, "--format", "csv").stdout)))
    assert len(rows) == 2 * len(names) + 2 and rows[-1]["metric"] == "human"


def test_grid_options_are_checked_before_any_work(params_dir, tmp_path):
    result = evaluate_cli("--datasets", "val/mixed", "--metric", "l2", "--method", "mean")
    assert result.returncode == 2 and "apply to --metric lpips and baseline" in result.stderr
    result = evaluate_cli("--datasets", "val/mixed", "--weights", "x={}".format(tmp_path / "none"))
    assert result.returncode == 2 and "is not a folder" in result.stderr
    result = evaluate_cli("--datasets", "val/mixed", "--weights", "x={}".format(tmp_path))
    assert result.returncode == 2 and "holds no alex weights" in result.stderr
    result = evaluate_cli("--datasets", "val/mixed", "--metric", "l2", "--weights",
                          "x={}".format(tmp_path))
    assert result.returncode == 2 and "go with --metric lpips" in result.stderr


def test_the_grid_figure_is_drawn(params_dir, tmp_path):
    result = evaluate_cli("--datasets", "val/mixed", "val/other", "--metric", "lpips", "ssim",
                          "--params-dir", params_dir, "--plot", tmp_path)
    assert result.returncode == 0, result.stderr
    from PIL import Image
    with Image.open(str(tmp_path / "2afc.png")) as image:
        assert image.size[0] > 400
