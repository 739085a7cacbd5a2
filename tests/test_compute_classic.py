"""compute --metric l2|ssim|psnr (evaluate's definitions, as people know the quantities) and
--no-lin (the uncalibrated network)."""
import csv
import io
import json
import os

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import SAMPLES, run_command
from metrics.lpips import Scorer
from metrics.lpips.evaluation import baselines
from metrics.lpips.evaluation.runner import Distance

NAMES = sorted(os.listdir(os.path.join(SAMPLES, "ref")))


def cli(*args):
    return run_command("compute", *args)


def samples(kind):
    return np.stack([iio.imread(os.path.join(SAMPLES, kind, n))[:, :, :3] for n in NAMES])


@pytest.mark.parametrize("colorspace", ["RGB", "Lab"])
def test_classic_metrics_are_evaluate_formulas_on_the_images_as_read(colorspace):
    # evaluate applies the same formulas after the reference's round trip through tensors
    # (l2; DSSIM = (1 - SSIM) / 2; -PSNR), which compute leaves out.
    ref, dist = samples("ref"), samples("distorted")
    for metric, formula in [("l2", baselines.l2_of), ("ssim", baselines.ssim_of),
                            ("psnr", baselines.psnr_of)]:
        result = cli(os.path.join(SAMPLES, "ref"), os.path.join(SAMPLES, "distorted"),
                     "--metric", metric, "--colorspace", colorspace, "--format", "csv")
        assert result.returncode == 0, result.stderr
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0] == ["path0", "path1", metric]
        got = [float(r[2]) for r in rows[1:-1]]
        np.testing.assert_allclose(got, formula(ref, dist, colorspace), rtol=1e-15)
        assert "mean" in rows[-1][0]
    rgb = Distance("l2", colorspace="RGB").pairs(ref, dist)  # no round trip for RGB's L2
    np.testing.assert_array_equal(rgb, baselines.l2_of(ref, dist, "RGB"))


def test_psnr_and_ssim_are_the_textbook_ones():
    # scikit-image's, on the files' 8-bit values (evaluate's round trip through the
    # reference's tensors would lower 63 of the 256 values by one, and its PSNR with them).
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    ref, dist = samples("ref")[0], samples("distorted")[0]
    pair = os.path.join(SAMPLES, "ref", NAMES[0]), os.path.join(SAMPLES, "distorted", NAMES[0])
    result = cli(*pair, "--metric", "psnr", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["metric"] == "psnr" and doc["colorspace"] == "RGB"
    want = peak_signal_noise_ratio(ref, dist, data_range=255)
    assert doc["pairs"][0]["psnr"] == pytest.approx(want, rel=1e-12)
    assert "PSNR (dB) of the one pair" in result.stderr
    assert abs(-baselines.negative_psnr(ref[None], dist[None], "RGB")[0] - want) > 0.01
    ssim = json.loads(cli(*pair, "--metric", "ssim", "--format", "json").stdout)["pairs"][0]
    assert ssim["ssim"] == pytest.approx(structural_similarity(
        ref, dist, data_range=255, channel_axis=2), rel=1e-12)


def test_identical_images_have_infinite_psnr_and_valid_json(tmp_path):
    image = os.path.join(SAMPLES, "ref", NAMES[0])
    text = cli(image, image, "--metric", "psnr")
    assert text.returncode == 0 and text.stdout.startswith("inf: ")
    result = cli(image, image, "--metric", "psnr", "--format", "json")
    doc = json.loads(result.stdout)  # JSON has no infinity: null
    assert doc["pairs"][0]["psnr"] is None and doc["summary"]["mean"] is None
    ssim = json.loads(cli(image, image, "--metric", "ssim", "--format", "json").stdout)
    assert ssim["pairs"][0]["ssim"] == 1.0


def test_no_lin_scores_the_uncalibrated_network(params_dir):
    result = cli(os.path.join(SAMPLES, "ref"), os.path.join(SAMPLES, "distorted"), "--no-lin",
                 "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["metric"] == "lpips" and doc["lin"] is False
    want = Scorer("alex", params_dir=params_dir, lpips=False).score_images(
        samples("ref"), samples("distorted"))
    np.testing.assert_allclose([p["lpips"] for p in doc["pairs"]], want, rtol=1e-6)
    calibrated = json.loads(cli(os.path.join(SAMPLES, "ref"), os.path.join(SAMPLES, "distorted"),
                                "--format", "json").stdout)
    assert calibrated["lin"] is True
    assert all(abs(a["lpips"] - b["lpips"]) > 0.1
               for a, b in zip(doc["pairs"], calibrated["pairs"]))


@pytest.mark.parametrize("args, named", [
    (["--metric", "psnr", "--model", "vgg"], "--model"),
    (["--metric", "ssim", "--no-lin"], "--no-lin"),
    (["--metric", "l2", "--ensemble", "4"], "--ensemble"),
    (["--metric", "l2", "--heatmap-dir", "maps"], "--heatmap-dir"),
    (["--metric", "psnr", "--format", "original"], "--format original"),
    (["--metric", "psnr", "--method", "mean"], "--method"),
    (["--colorspace", "Lab"], "--colorspace")])
def test_options_of_the_other_kind_of_metric_are_refused(args, named, tmp_path):
    result = cli(os.path.join(SAMPLES, "ref"), os.path.join(SAMPLES, "distorted"), *args,
                 "-o", tmp_path / "out.txt")
    assert result.returncode == 2 and named in result.stderr
    assert os.listdir(str(tmp_path)) == []


def test_an_image_too_small_for_ssim_is_an_input_error(tmp_path):
    for name in ("a.png", "b.png"):
        iio.imwrite(str(tmp_path / name), np.zeros((5, 9, 3), np.uint8))
    result = cli(tmp_path / "a.png", tmp_path / "b.png", "--metric", "ssim")
    assert result.returncode == 3 and "SSIM needs at least 7x7" in result.stderr
    assert cli(tmp_path / "a.png", tmp_path / "b.png", "--metric", "psnr").returncode == 0


def test_a_journal_of_another_metric_is_refused(tmp_path):
    out = tmp_path / "scores.txt"
    (tmp_path / "scores.txt.partial").write_text(json.dumps(
        {"format": "metrics.lpips journal 1", "settings": {"metric": "lpips"}}) + "\n" + json.dumps(
        {"i": 0, "p0": "a.png", "p1": "b.png", "s": 0.5}) + "\n")
    result = cli(os.path.join(SAMPLES, "ref"), os.path.join(SAMPLES, "distorted"),
                 "--metric", "psnr", "-o", out, "--resume")
    assert result.returncode == 2 and "metric: psnr here, lpips there" in result.stderr


def test_classic_values_of_16_bit_images_are_those_of_their_8_bit_values(tmp_path):
    # 16-bit images are rounded to 8 bits: the formulas are the reference's for 8 bits.
    ref, dist = samples("ref")[:1], samples("distorted")[:1]
    for name, image in (("a.tif", ref[0]), ("b.tif", dist[0])):
        iio.imwrite(str(tmp_path / name), image.astype(np.uint16) * 257)
    assert iio.imread(str(tmp_path / "a.tif")).dtype == np.uint16  # really a 16-bit file
    result = cli(tmp_path / "a.tif", tmp_path / "b.tif", "--metric", "l2", "--format", "json")
    assert result.returncode == 0, result.stderr
    want = baselines.l2_of(ref, dist, "RGB")[0]
    assert json.loads(result.stdout)["pairs"][0]["l2"] == want
