"""The robustness analysis: its variants, how the distortions are calibrated, and the command."""
import json
import os

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import ROOT, run_command
from metrics.lpips import Scorer
from metrics.lpips.evaluation import robustness

SAMPLES = os.path.join(ROOT, "utils", "neu", "metrics", "lpips", "samples", "ref")


def analysis_cli(*args):
    return run_command("analysis", *args)


def _image(seed=0, size=(80, 96)):
    return np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)


def test_a_shift_is_the_crop_moved_and_no_change_is_the_crop():
    img, m = _image(), robustness.MARGIN
    crop = robustness.centre_crop(img)
    shifted = robustness.geometric_variant(img, "shift", 3)
    assert shifted.shape == crop.shape
    np.testing.assert_array_equal(shifted[:, :-3], crop[:, 3:])
    h, w = img.shape[:2]
    np.testing.assert_array_equal(shifted[:, -3:], img[m:h - m, w - m:w - m + 3])
    for kind, none in (("rotate", 0), ("scale", 1.0)):
        np.testing.assert_array_equal(robustness.geometric_variant(img, kind, none), crop)
    assert not np.array_equal(robustness.geometric_variant(img, "rotate", 2), crop)


def test_each_family_keeps_the_level_closest_to_the_geometric_changes():
    img = _image()
    calls = []

    def fake_score(crop, arrays):  # geometric changes: mean 0.5; each family's levels 0.1, 0.2 ...
        calls.append(len(arrays))
        if len(calls) == 1:
            return [0.5] * len(arrays)
        return [0.1 * (k + 1) for k in range(len(arrays))]

    changes, crop = robustness.variants(img, fake_score)
    chosen = [label for label, kind, _ in changes if kind == "distortion"]
    # 0.5 is the 5th level (0.1 * 5) of every family
    assert chosen == ["{} {}".format(f, v[4]) for f, v in robustness.DISTORTIONS.items()]
    assert [kind for _, kind, _ in changes].count("geometric") == len(robustness.GEOMETRIC)
    assert all(a.shape == crop.shape and a.dtype == np.uint8 for _, _, a in changes)


def test_ranks_below_every_distortion():
    kinds = ["geometric", "geometric", "distortion", "geometric", "distortion"]
    assert robustness.ranks_below_every_distortion([0.1, 0.5, 0.4, 0.39, 0.6], kinds) == [
        True, False, True]


def test_too_small_an_image_is_refused_naming_its_size():
    with pytest.raises(ValueError, match="20x30 px is too small"):
        robustness.centre_crop(_image(size=(30, 20)))


def test_the_command_scores_what_the_scorer_scores(tmp_path, params_dir):
    path = os.path.join(SAMPLES, "cat.png")
    out, figure = tmp_path / "a.json", tmp_path / "a.png"
    result = analysis_cli(path, "--methods", "spatial", "sort", "--format", "json",
                          "--params-dir", params_dir, "-o", out, "--plot", figure)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    (r,) = doc["results"]
    assert set(r["distances"]) == {"spatial", "sort"}
    scorer = Scorer("alex", params_dir=params_dir, method="sort")
    changes, crop = robustness.variants(iio.imread(path), lambda c, a: Scorer(
        "alex", params_dir=params_dir).score_images(np.stack([c] * len(a)), np.stack(a)))
    assert r["labels"] == [label for label, _, _ in changes]
    expected = scorer.score_images(np.stack([crop] * len(changes)), np.stack([a for _, _, a in changes]))
    np.testing.assert_allclose(r["distances"]["sort"], expected, atol=1e-6)
    for method, d in r["distances"].items():
        assert r["robust"][method] == sum(robustness.ranks_below_every_distortion(d, r["kinds"]))
    png = iio.imread(figure)
    assert png.shape[0] > 200 and png.shape[1] > 400 and png[..., :3].std() > 10


def test_the_text_report_names_every_method_and_the_tally(params_dir):
    result = analysis_cli(os.path.join(SAMPLES, "rocket.png"), "--no-lin", "--params-dir", params_dir)
    assert result.returncode == 0, result.stderr
    assert "channel sums" in result.stdout and "below all *" in result.stdout
    tally = result.stdout.strip().splitlines()[-1]
    assert all(m in tally for m in ("spatial", "mean", "sort", "spatial+mean", "spatial+sort"))


def test_errors(tmp_path, params_dir):
    small = tmp_path / "small.png"
    iio.imwrite(small, _image(size=(20, 40)))
    out = tmp_path / "r.txt"
    result = analysis_cli(small, "--params-dir", params_dir, "-o", out)
    assert result.returncode == 3 and "too small" in result.stderr and not out.exists()
    missing = analysis_cli(tmp_path / "none.png", "--params-dir", params_dir)
    assert missing.returncode == 3 and "none.png" in missing.stderr
    bad = analysis_cli(small, "--methods", "median")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
