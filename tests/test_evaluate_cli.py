"""The evaluate command: output formats, judgment CSV files, plots, and every input error
(exit code 3, nothing written)."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import COMMAND_ENV as ENV, command_line, DATA, run_command
from test_cli import ctrl_c_after

BAPPS = os.path.join(DATA, "bapps")
GOLDEN = json.load(open(os.path.join(DATA, "golden", "bapps.json")))["results"]


def evaluate(*args):
    return run_command("evaluate", *args)


def golden(metric, mode, dataset):
    return next(r for r in GOLDEN if (r["metric"], r["mode"], r["dataset"]) == (metric, mode, dataset))


def test_json_results_are_the_reference_scores(params_dir):
    result = evaluate("--dataroot", BAPPS, "--dataset-mode", "2afc", "--datasets", "val/mixed",
                      "val/other", "--metric", "lpips", "--format", "json", "-q")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [r["dataset"] for r in doc["results"]] == ["val/mixed", "val/other"]
    for r in doc["results"]:
        assert r["mode"] == "2afc" and r["metric"] == "lpips-alex-v0.1" and r["count"] == 16
        assert r["score"] == pytest.approx(golden("lpips-alex", "2afc", r["dataset"])["score"], abs=1e-4)
        assert -1 <= r["pearson"] <= 1 and -1 <= r["spearman"] <= 1
    assert doc["mean"] == pytest.approx(np.mean([r["score"] for r in doc["results"]]))


def test_text_table_and_csv_for_jnd(tmp_path):
    result = evaluate("--dataroot", BAPPS, "--dataset-mode", "jnd", "--datasets", "val/mixed",
                      "--metric", "l2", "--colorspace", "RGB")
    assert result.returncode == 0, result.stderr
    expected = 100 * golden("l2-RGB", "jnd", "val/mixed")["score"]
    assert result.stdout.splitlines()[0] == "# l2-RGB"
    assert "val/mixed  jnd   {:6.2f}%      20".format(expected) in result.stdout
    assert "20/20" not in result.stderr  # no progress line after the last item
    out = tmp_path / "r.csv"
    result = evaluate("--dataroot", BAPPS, "--dataset-mode", "jnd", "--datasets", "val/mixed",
                      "--metric", "psnr", "--format", "csv", "-o", out, "-q")
    assert result.returncode == 0 and result.stdout == ""
    rows = list(csv.DictReader(open(str(out))))
    assert float(rows[0]["score"]) == pytest.approx(golden("psnr-Lab", "jnd", "val/mixed")["score"], abs=1e-4)


def write_csv(path, rows, header=("ref", "p0", "p1", "judge")):
    with open(str(path), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def fixture_rows(folder):
    root = os.path.join(BAPPS, "2afc", "val", "mixed")
    rows = []
    for i in range(16):
        name = "{:06d}".format(i)
        for sub in ("ref", "p0", "p1"):
            os.makedirs(str(folder / sub), exist_ok=True)
            shutil.copy(os.path.join(root, sub, name + ".png"), str(folder / sub))
        judge = float(np.load(os.path.join(root, "judge", name + ".npy"))[0])
        rows.append(["ref/{}.png".format(name), "p0/{}.png".format(name), "p1/{}.png".format(name), judge])
    return rows


def test_judgment_csv_gives_the_folder_scores(tmp_path):
    write_csv(tmp_path / "mine.csv", fixture_rows(tmp_path))
    result = evaluate("--csv", tmp_path / "mine.csv", "--metric", "ssim", "--format", "json", "-q")
    assert result.returncode == 0, result.stderr
    score = json.loads(result.stdout)["results"][0]["score"]
    assert score == pytest.approx(golden("ssim-Lab", "2afc", "val/mixed")["score"], abs=1e-4)


def test_plots_are_written(tmp_path):
    result = evaluate("--dataroot", BAPPS, "--dataset-mode", "jnd", "--datasets", "val/mixed",
                      "--metric", "l2", "--plot", tmp_path / "figs", "-q")
    assert result.returncode == 0, result.stderr
    assert os.listdir(str(tmp_path / "figs")) == ["jnd.png"]
    assert open(str(tmp_path / "figs" / "jnd.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_without_matplotlib_are_an_environment_error(monkeypatch, tmp_path, capsys):
    from metrics.lpips import evaluate as command
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for module in ("metrics.lpips.evaluation.plots", "metrics.lpips.figures"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    code = command.main(["--dataroot", BAPPS, "--datasets", "val/mixed", "--metric", "l2",
                         "--plot", str(tmp_path), "-q"])
    assert code == 4 and "needs matplotlib" in capsys.readouterr().err


def copy_dataset(tmp_path, mode="2afc"):
    target = tmp_path / "root" / mode / "val" / "mixed"
    shutil.copytree(os.path.join(BAPPS, mode, "val", "mixed"), str(target))
    return tmp_path / "root", target


@pytest.mark.parametrize("damage, message", [
    ("no judge", "mixed lacks judge/ \\(a 2afc data set holds ref/, p0/, p1/, judge/\\)"),
    ("unequal", "p1/ 15"),
    ("corrupt image", "cannot read image .*000005.png"),
    ("bad judge", "000002.npy must hold one number, found shape \\(2,\\)"),
    ("judge out of range", "judgment 1 is 1.5, outside \\[0, 1\\]"),
])
def test_broken_datasets_exit_3_and_write_nothing(tmp_path, damage, message):
    root, target = copy_dataset(tmp_path)
    if damage == "no judge":
        shutil.rmtree(str(target / "judge"))
    elif damage == "unequal":
        os.remove(str(target / "p1" / "000009.png"))
    elif damage == "corrupt image":
        (target / "p0" / "000005.png").write_bytes(b"not a png")
    elif damage == "bad judge":
        np.save(str(target / "judge" / "000002.npy"), np.array([0.2, 0.4]))
    else:
        np.save(str(target / "judge" / "000000.npy"), np.array([1.5]))
    out = tmp_path / "out.txt"
    result = evaluate("--dataroot", root, "--datasets", "val/mixed", "--metric", "l2", "-o", out)
    assert result.returncode == 3, result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not out.exists()


@pytest.mark.parametrize("damage, message", [
    ("missing column", "lacks the column\\(s\\) judge"),
    ("missing path", "line 3: .*p0/nothere.png not found"),
    ("not a number", "line 2: judge 'many' is not a number"),
])
def test_broken_judgment_csv_exits_3(tmp_path, damage, message):
    rows = fixture_rows(tmp_path)[:3]
    header = ("ref", "p0", "p1", "judge")
    if damage == "missing column":
        header, rows = header[:3], [r[:3] for r in rows]
    elif damage == "missing path":
        rows[1][1] = "p0/nothere.png"
    else:
        rows[0][3] = "many"
    write_csv(tmp_path / "mine.csv", rows, header)
    result = evaluate("--csv", tmp_path / "mine.csv", "--metric", "l2", "-q")
    assert result.returncode == 3 and result.stdout == ""
    assert re.search(message, result.stderr), result.stderr


def test_usage_errors_exit_2():
    assert evaluate("--metric", "l2").returncode == 2  # no data
    assert evaluate("--csv", "x.csv", "--dataroot", BAPPS, "--datasets", "a").returncode == 2
    assert evaluate("--dataroot", BAPPS, "--datasets", "val/mixed", "--metric", "ms-ssim").returncode == 2


def test_ctrl_c_exits_130_and_writes_nothing(params_dir, tmp_path):
    source = os.path.join(BAPPS, "2afc", "val", "mixed")
    target = tmp_path / "data" / "2afc" / "val" / "many"
    for sub in ("ref", "p0", "p1", "judge"):
        (target / sub).mkdir(parents=True)
        for copy in range(12):  # 192 triplets: seconds of VGG, one triplet a batch
            for name in os.listdir(os.path.join(source, sub)):
                shutil.copy(os.path.join(source, sub, name), str(target / sub / "{}_{}".format(copy, name)))
    out = tmp_path / "results.json"
    proc = subprocess.Popen(command_line("evaluate", "--dataroot",
                             str(tmp_path / "data"), "--datasets", "val/many", "--model", "vgg",
                             "--batch-size", "1", "--format", "json", "-o", str(out)), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ctrl_c_after(proc, "/192 triplets scored")
    assert proc.returncode == 130, err
    assert "interrupted" in err and not out.exists()


def test_distance_method_options_reach_the_scorer(params_dir):
    from metrics.lpips import Scorer
    from metrics.lpips.evaluation import bapps, protocols
    result = evaluate("--dataroot", BAPPS, "--datasets", "val/mixed", "--method", "sort",
                      "--no-channel-norm", "--format", "json", "-q")
    assert result.returncode == 0, result.stderr
    (r,) = json.loads(result.stdout)["results"]
    assert r["metric"] == "lpips-alex-v0.1-sort-no-channel-norm"
    judged = bapps.read_folder(os.path.join(BAPPS, "2afc", "val", "mixed"), "2afc", name="val/mixed")
    ref, p0, p1 = (np.stack([bapps.load_patch(item[k]) for item in judged.items]) for k in range(3))
    scorer = Scorer("alex", params_dir=params_dir, method="sort", channel_norm=False)
    expected = protocols.two_afc_score(scorer.score_images(ref, p0), scorer.score_images(ref, p1),
                                       judged.judgments)[0]
    assert r["score"] == pytest.approx(expected, abs=1e-9)
    other = evaluate("--dataroot", BAPPS, "--datasets", "val/mixed", "--metric", "l2",
                     "--method", "sort")
    assert other.returncode == 2 and "apply to --metric lpips and baseline, not l2" in other.stderr
