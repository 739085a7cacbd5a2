"""E-LPIPS draws on ONNX Runtime (the trunk with its dropout masks as inputs), ensembles in
the Scorer's interface, and ``compute --ensemble``."""
import json
import os
import pickle

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import run_command
from metrics.lpips import LPIPS
from metrics.lpips.cli import journal
from metrics.lpips.elpips import Config, ELPIPS
from metrics.lpips.engines import Scorer, TileTooLarge, tiling
from metrics.lpips.engines.ensemble_scorer import EnsembleScorer
from metrics.lpips.engines.select import make_engine
from metrics.lpips.ensemble import EnsembleScore, compare, estimate



def _pair(seed, height=70, width=83):
    rng = np.random.default_rng(seed)
    a = rng.random((1, 3, height, width)).astype(np.float32) * 2 - 1
    b = np.clip(a + rng.normal(0, 0.2, a.shape), -1, 1).astype(np.float32)
    return a, b


# AlexNet with two scale levels; E-LPIPS-VGG (14 taps, every convolution masked) smaller:
# NNabla keeps the memory its graphs took for the rest of the suite's process.
@pytest.mark.heavy
@pytest.mark.parametrize("model, height, width", [("alex", 128, 131), ("elpips-vgg", 64, 70)])
def test_onnxruntime_draws_equal_the_nnabla_graphs(params_dir, model, height, width):
    net = LPIPS(model, params_dir=params_dir)
    elpips = ELPIPS(net, Config.for_image(height, width))
    engine = make_engine(net, "onnxruntime")
    a, b = _pair(0, height, width)
    _, c = _pair(1, height, width)
    graph = estimate(elpips, a, b, np.random.default_rng(3), samples=6, batch=3)
    fast = estimate(elpips, a, b, np.random.default_rng(3), samples=6, batch=3, engine=engine)
    assert fast.mean == pytest.approx(graph.mean, rel=1e-5)
    assert fast.stderr == pytest.approx(graph.stderr, rel=1e-4)
    # split into passes of one image: the same samples
    chunked = estimate(elpips, a, b, np.random.default_rng(3), samples=6, batch=3,
                       engine=engine, chunk=1)
    assert chunked.mean == pytest.approx(fast.mean, rel=1e-6)
    both = [compare(elpips, a, b, c, np.random.default_rng(4), max_samples=4, batch=4,
                    stop_early=False, engine=e) for e in (None, engine)]
    assert both[1].d_a == pytest.approx(both[0].d_a, rel=1e-5)
    assert both[1].d_b == pytest.approx(both[0].d_b, rel=1e-5)
    # the dropout masks matter: without them the engine's samples differ
    plain = ELPIPS(net, Config.for_image(height, width, dropout=False))
    undropped = estimate(plain, a, b, np.random.default_rng(3), samples=6, batch=3,
                         engine=engine)
    assert abs(undropped.mean / fast.mean - 1) > 1e-3


@pytest.fixture(scope="module")
def ensemble_scorer(params_dir):
    return EnsembleScorer(Scorer("alex", params_dir=params_dir),
                          samples=8, draws_per_pass=4, seed=5)


def _images(seed, n=2, side=72):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    b = np.clip(a + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_a_pairs_estimate_depends_on_it_and_the_seed_alone(ensemble_scorer, params_dir):
    a, b = _images(0, n=3)
    together = ensemble_scorer.score_images(a, b)
    assert all(isinstance(s, EnsembleScore) and s.count == 8 for s in together)
    alone = ensemble_scorer.score_images(a[2:], b[2:])
    reversed_order = ensemble_scorer.score_images(a[::-1], b[::-1])
    assert float(alone[0]) == float(together[2]) == float(reversed_order[0])
    other_seed = EnsembleScorer(ensemble_scorer._scorer, samples=8, draws_per_pass=4, seed=6)
    assert float(other_seed.score_images(a[2:], b[2:])[0]) != float(together[2])
    nnabla = EnsembleScorer(Scorer("alex", params_dir=params_dir, backend="nnabla"),
                            samples=8, draws_per_pass=4, seed=5)
    assert float(nnabla.score_images(a[2:], b[2:])[0]) == pytest.approx(float(alone[0]),
                                                                         rel=1e-5)


def test_a_small_budget_splits_passes_without_changing_scores(params_dir, ensemble_scorer,
                                                              monkeypatch):
    a, b = _images(1, n=1, side=96)
    roomy = ensemble_scorer.score_images(a, b)[0]
    scorer = Scorer("alex", params_dir=params_dir)
    tight = EnsembleScorer(scorer, samples=8, draws_per_pass=4, seed=5)
    monkeypatch.setattr(tiling, "resident_bytes", lambda: 10 ** 8)  # steady, for the budget
    scorer.max_memory = 2 ** 30
    assert tight._images_per_pass(96, 96) == 4
    image = 103 * 103  # translated by up to 7 px
    masks = tight._elpips_for(96, 96).mask_elements(103, 103)

    def needs(images):  # the batch's masks, then the pass's activations and float masks
        return (4 * masks * 5 + scorer._pass_bytes(2 * images * image, image)
                + images * masks * 4)
    scorer.max_memory = (needs(1) + needs(2)) / 2  # one image a pass
    assert tight._images_per_pass(96, 96) == 1
    assert float(tight.score_images(a, b)[0]) == pytest.approx(float(roomy), rel=1e-6)
    scorer.max_memory = 1
    with pytest.raises(TileTooLarge, match="96x96 images .* cannot be tiled"):
        tight.score_images(a, b)


def test_ensemble_scores_pickle_and_survive_the_journal(tmp_path):
    score = EnsembleScore(0.25, 0.01, 0.005, 40)
    back = pickle.loads(pickle.dumps(score))
    assert (float(back), back.half_width, back.stderr, back.count) == (0.25, 0.01, 0.005, 40)
    out = str(tmp_path / "scores.json")
    log = journal.Journal(out, {"k": 1}, 0, 1)
    log.record([(0, "a.png", "b.png", score), (1, "c.png", "d.png", 0.5)], [])
    log.close()
    scores, _ = journal.read(out, {"k": 1})
    assert scores[0].details() == score.details() and float(scores[0]) == 0.25
    assert scores[1] == 0.5 and not isinstance(scores[1], EnsembleScore)


def _run(*args):
    return run_command("compute", *args)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    a, b = _images(2, n=2, side=80)
    for side, images in (("a", a), ("b", b)):
        os.makedirs(root / side)
        for k, image in enumerate(images):
            iio.imwrite(root / side / "{}.png".format(k), image)
    return str(root / "a"), str(root / "b")


def test_compute_ensemble_outputs_carry_the_precision(folders, params_dir, tmp_path):
    common = ["--params-dir", params_dir, "-q", "--draws-per-pass", "4"]
    doc = json.loads(_run(*folders, "--ensemble", "8", "--format", "json", *common).stdout)
    assert doc["ensemble"] == 8 and doc["seed"] == 0
    for pair in doc["pairs"]:
        assert pair["draws"] == 8 and pair["half_width"] == pytest.approx(1.96 * pair["stderr"])
        assert pair["lpips"] > 0
    text = _run(*folders, "--ensemble", "8", *common)
    first = text.stdout.splitlines()[0]
    assert first.startswith("{:.6f} +- {:.6f} (8 draws): ".format(
        doc["pairs"][0]["lpips"], doc["pairs"][0]["half_width"]))
    csv_text = _run(*folders, "--ensemble", "8", "--format", "csv", *common).stdout
    assert csv_text.splitlines()[0] == "path0,path1,lpips,half_width,stderr,draws"
    auto = json.loads(_run(*folders, "--ensemble", "auto", "--abs-tol", "0.02", "--rel-tol",
                           "0.5", "--format", "json", *common).stdout)
    for pair in auto["pairs"]:  # stopped by the rule, at a batch boundary
        assert pair["half_width"] < 0.02 and pair["half_width"] < 0.5 * pair["lpips"]
        assert pair["draws"] % 4 == 0 and pair["draws"] >= 10
    # a journal of another seed is refused on --resume
    out = str(tmp_path / "scores.csv")
    with open(out + ".partial", "w") as f:  # with a score: a journal with none is discarded
        f.write(json.dumps({"format": journal.FORMAT, "settings": {}}) + "\n"
                + json.dumps({"i": 0, "p0": "a.png", "p1": "b.png", "s": 0.5}) + "\n")
    refused = _run(*folders, "--ensemble", "8", "-o", out, "--resume", *common)
    assert refused.returncode == 2 and "ensemble: 8 here, None there" in refused.stderr


def test_compute_ensemble_usage_and_budget_errors(folders, params_dir, tmp_path):
    common = ["--params-dir", params_dir, "-q"]
    maps = _run(*folders, "--ensemble", "4", "--heatmap-dir", str(tmp_path / "maps"), *common)
    assert maps.returncode == 2 and "--heatmap-dir and --ensemble" in maps.stderr
    for bad, said in ((["--ensemble", "x"], "positive number of draws"),
                      (["--ensemble", "auto", "--rel-tol", "0"], "--rel-tol must be positive"),
                      (["--ensemble", "4", "--draws-per-pass", "0"], "at least 1")):
        result = _run(*folders, *bad, *common)
        assert result.returncode == 2 and said in result.stderr, result.stderr
    small = _run(*folders, "--ensemble", "4", "--max-memory", "0.0001", *common)
    assert small.returncode == 4 and "cannot be tiled" in small.stderr
