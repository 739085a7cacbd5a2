"""datasets synthetic (a planted-metric set in the BAPPS layout) and datasets info (what a set
holds)."""
import csv
import filecmp
import json
import os

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import run_command
from metrics.lpips.evaluation import bapps, set_info, synthetic
from metrics.lpips.training.loop import to_input
from metrics.lpips.training.precompute import TermMaker

SMALL = dict(train=12, val=8, jnd=6, side=32)


@pytest.fixture(scope="module")
def terms(params_dir):
    return TermMaker("alex", params_dir)


def files_of(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


def same_files(a, b):
    names = files_of(a)
    return names == files_of(b) and all(
        filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False) for n in names)


def test_a_seed_makes_one_set(tmp_path, terms):
    roots = [str(tmp_path / name) for name in ("a", "b", "c", "d")]
    synthetic.make(roots[0], seed=3, term_maker=terms, **SMALL)
    synthetic.make(roots[1], seed=3, term_maker=terms, **SMALL)
    synthetic.make(roots[2], seed=4, term_maker=terms, **SMALL)
    synthetic.make(roots[3], seed=3, teacher_seed=2, term_maker=terms, **SMALL)
    assert len(files_of(roots[0])) == 12 * 4 + 8 * 4 + 6 * 3
    assert same_files(roots[0], roots[1])
    assert not same_files(roots[0], roots[2])
    # Another teacher judges the same patches (kept by the channel sum, not the teacher).
    val = os.path.join("2afc", "val", "synthetic")
    assert filecmp.cmp(os.path.join(roots[0], val, "p1", "000005.png"),
                       os.path.join(roots[3], val, "p1", "000005.png"), shallow=False)
    judged = [bapps.read_folder(os.path.join(r, val), "2afc").judgments for r in (roots[0], roots[3])]
    assert not np.array_equal(*judged)
    # A subset does not depend on which others are made with it.
    alone = str(tmp_path / "alone")
    synthetic.make(alone, seed=3, train=0, val=8, jnd=0, side=32, term_maker=terms)
    assert same_files(os.path.join(alone, val), os.path.join(roots[0], val))


def test_the_planted_judgments_follow_the_teacher(tmp_path, terms):
    # Without observer noise the 2AFC judgments are unanimous and the teacher's own choice.
    root = str(tmp_path / "set")
    synthetic.make(root, noise=0, term_maker=terms, **SMALL)
    judged = bapps.read_folder(os.path.join(root, "2afc", "val", "synthetic"), "2afc")
    assert set(judged.judgments) <= {0.0, 1.0}
    columns = [[iio.imread(item[k]) for item in judged.items] for k in range(3)]
    t0, t1 = (t.astype(np.float64) for t in terms(*(to_input(c) for c in columns)))
    w = synthetic.teacher_weights(t0.shape[1], 1)
    np.testing.assert_array_equal(judged.judgments, (t1 @ w < t0 @ w).astype(float))


def test_info_counts_the_set(tmp_path, terms):
    root = str(tmp_path / "set")
    synthetic.make(root, seed=1, term_maker=terms, **SMALL)
    result = run_command("datasets", "info", root, "--format", "json")
    assert result.returncode == 0, result.stderr
    sets = {s["name"]: s for s in json.loads(result.stdout)["sets"]}
    assert sorted(sets) == ["2afc/train/synthetic", "2afc/val/synthetic", "jnd/val/synthetic"]
    for name, count, images in [("2afc/train/synthetic", 12, 36), ("2afc/val/synthetic", 8, 24),
                                ("jnd/val/synthetic", 6, 12)]:
        info = sets[name]
        assert info["count"] == count and sum(info["judgments"].values()) == count
        assert info["image_sizes"] == {"32x32": images}
    j = bapps.read_folder(os.path.join(root, "2afc", "val", "synthetic"), "2afc").judgments
    assert sets["2afc/val/synthetic"]["human"] == pytest.approx(np.mean(j ** 2 + (1 - j) ** 2))
    assert sets["2afc/val/synthetic"]["best"] == pytest.approx(np.mean(np.maximum(j, 1 - j)))
    assert sets["2afc/val/synthetic"]["judgments"] == {
        "{:.3g}".format(v): int(np.sum(j == v)) for v in sorted(set(j))}
    assert "human" not in sets["jnd/val/synthetic"]
    text = run_command("datasets", "info", os.path.join(root, "jnd", "val", "synthetic"))
    assert text.returncode == 0 and text.stdout.startswith(os.path.join(root, "jnd"))
    assert "6 pairs" in text.stdout and "32x32 x12" in text.stdout


def test_info_reads_a_csv_of_either_kind(tmp_path, terms):
    root = str(tmp_path / "set")
    synthetic.make(root, train=0, val=3, jnd=2, side=32, term_maker=terms)
    judged = bapps.read_folder(os.path.join(root, "2afc", "val", "synthetic"), "2afc")
    with open(str(tmp_path / "mine.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ref", "p0", "p1", "judge"])
        for item, j in zip(judged.items, judged.judgments):
            writer.writerow([os.path.relpath(p, str(tmp_path)) for p in item] + [j])
    (info,) = [set_info.describe(s) for s in set_info.read_sets(str(tmp_path / "mine.csv"))]
    assert (info["mode"], info["count"]) == ("2afc", 3)
    jnd = bapps.read_folder(os.path.join(root, "jnd", "val", "synthetic"), "jnd")
    with open(str(tmp_path / "same.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["p0", "p1", "same"])
        for item, j in zip(jnd.items, jnd.judgments):
            writer.writerow(list(item) + [j])
    (info,) = [set_info.describe(s) for s in set_info.read_sets(str(tmp_path / "same.csv"))]
    assert (info["mode"], info["count"]) == ("jnd", 2)


def test_an_existing_set_is_left_alone(tmp_path, params_dir):
    folder = tmp_path / "2afc" / "val" / "synthetic"
    folder.mkdir(parents=True)
    (folder / "mine.txt").write_text("keep")
    result = run_command("datasets", "synthetic", "--dataroot", tmp_path, "--train", 0,
                         "--jnd", 0, "--params-dir", params_dir)
    assert result.returncode == 2 and "exists already" in result.stderr
    assert os.listdir(str(folder)) == ["mine.txt"]
    assert run_command("datasets", "synthetic", "--dataroot", tmp_path / "x", "--size",
                       16).returncode == 2


def test_info_on_a_folder_without_sets_says_what_it_expected(tmp_path):
    result = run_command("datasets", "info", tmp_path)
    assert result.returncode == 3 and "holds no judged data set" in result.stderr
