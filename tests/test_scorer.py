"""The numpy-level API: Scorer and distance()."""
import os

import imageio.v3 as iio
import nnabla as nn
import numpy as np
import pytest

from conftest import DATA
from metrics.lpips import LPIPS, Scorer, distance
from metrics.lpips.data.images import to_model_input


@pytest.fixture(scope="module")
def pair():
    return [iio.imread(os.path.join(DATA, "pairs", "rocket_shift_{}.png".format(i))) for i in (0, 1)]


def graph_score(params_dir, a, b):
    net = LPIPS("alex", params_dir=params_dir)
    out = net(nn.Variable.from_numpy_array(to_model_input(a)), nn.Variable.from_numpy_array(to_model_input(b)))
    out.forward()
    return out.d.item()


def test_uint8_uint16_and_float_inputs_agree_with_the_graph(params_dir, pair):
    expected = graph_score(params_dir, *pair)
    a, b = pair
    assert distance(a, b) == pytest.approx(expected, abs=1e-6)
    assert distance(a.astype(np.uint16) * 257, b.astype(np.uint16) * 257) == pytest.approx(expected, abs=1e-5)
    assert distance(a / 255.0, b / 255.0) == pytest.approx(expected, abs=1e-5)


def test_batches_return_one_score_per_pair(params_dir, pair):
    a, b = pair
    scores = Scorer("alex", params_dir=params_dir, batch_size=2)(np.stack([a, b, a]), np.stack([b, b, a]))
    assert scores.shape == (3,)
    np.testing.assert_allclose(scores, [distance(a, b), 0, 0], atol=1e-6)


def test_one_graph_per_shape_is_reused(params_dir, pair):
    scorer = Scorer("alex", params_dir=params_dir, batch_size=4, backend="nnabla")
    a, b = pair
    for _ in range(3):
        scorer(a, b)
    scorer(a[:64, :64], b[:64, :64])
    assert len(scorer.engine.head._graphs) == 2 and len(scorer.engine._trunks) == 2


def test_maps_come_with_scores(params_dir, pair):
    scorer = Scorer("alex", params_dir=params_dir, spatial=True)
    x0, x1 = to_model_input(pair[0]), to_model_input(pair[1])
    scores, maps = scorer.score_inputs(x0, x1)
    assert maps.shape == (1,) + pair[0].shape[:2]
    assert maps.mean() == pytest.approx(scores[0], rel=0.1)


def test_input_errors(params_dir, pair):
    a, b = pair
    with pytest.raises(ValueError, match=r"\[0, 1\].*min -0.449.*max 0.5"):
        distance(a / 255.0 - 0.5, b / 255.0)
    with pytest.raises(TypeError, match="uint8, uint16 or floating"):
        distance(a.astype(np.int32), b.astype(np.int32))
    with pytest.raises(ValueError, match=r"H x W x 3.*\(131, 97\)"):
        distance(a[:, :, 0], b[:, :, 0])
    with pytest.raises(ValueError, match="batch_size"):
        Scorer("alex", params_dir=params_dir, batch_size=0)


def test_arrays_out_of_range_or_empty_are_refused(params_dir, random_batches):
    scorer = Scorer("alex", params_dir=params_dir)
    x0, x1, x2 = random_batches
    bad = x1.copy()
    bad[2, 0, 3, 4] = np.nan
    for wrong, what in ((x1 * 255, "from"), (bad, "NaN present"), (x1 + 1.5, "from")):
        with pytest.raises(ValueError, match="finite and lie in \\[-1, 1\\].*" + what):
            scorer.score_inputs(x0, wrong)
        with pytest.raises(ValueError, match="finite and lie in"):
            scorer.score_2afc(x0, x2, wrong)
        with pytest.raises(ValueError, match="finite and lie in"):
            scorer.features(wrong)
        with pytest.raises(ValueError, match="finite and lie in"):
            scorer.score_one_to_many(x0[0], wrong)
    empty = np.zeros((0, 3, 64, 64), np.float32)
    with pytest.raises(ValueError, match="no images"):
        scorer.score_inputs(empty, empty)
    with pytest.raises(ValueError, match="no images"):
        distance(np.zeros((0, 64, 64, 3), np.uint8), np.zeros((0, 64, 64, 3), np.uint8),
                 params_dir=params_dir)
    # The graph refuses an empty batch when it is built (NNabla ran it into SIGFPE).
    empty_var = nn.Variable((0, 3, 64, 64))
    with pytest.raises(ValueError, match="img0 holds no images"):
        LPIPS("alex", params_dir=params_dir)(empty_var, empty_var)


def test_distance_keeps_one_scorer_per_context(params_dir, pair):
    from nnabla.ext_utils import get_extension_context
    from metrics.lpips.engines import scorer as scorer_module
    a, b = pair
    scorer_module._scorers.clear()
    first = distance(a, b, params_dir=params_dir)
    assert distance(a, b, params_dir=params_dir) == first and len(scorer_module._scorers) == 1
    nn.set_default_context(get_extension_context("cpu", type_config="half"))
    distance(a, b, params_dir=params_dir)
    assert len(scorer_module._scorers) == 2  # not the engine chosen for the other context


@pytest.fixture(scope="module")
def random_batches():
    rng = np.random.default_rng(0)
    return [rng.random((5, 3, 45, 70), dtype=np.float32) * 2 - 1 for _ in range(3)]


@pytest.mark.parametrize("backend", ["nnabla", "onnxruntime"])
def test_feature_reuse_gives_the_same_scores(params_dir, random_batches, backend):
    ref, p0, p1 = random_batches
    scorer = Scorer("alex", params_dir=params_dir, batch_size=2, backend=backend)
    d0, d1 = scorer.score_2afc(ref, p0, p1)
    np.testing.assert_allclose(d0, scorer.score_inputs(ref, p0), atol=1e-6)
    np.testing.assert_allclose(d1, scorer.score_inputs(ref, p1), atol=1e-6)
    many = scorer.score_one_to_many(ref[0], p0)
    np.testing.assert_allclose(many, scorer.score_inputs(np.repeat(ref[:1], 5, axis=0), p0), atol=1e-6)


def count_trunk_passes(scorer):
    """Wraps the scorer's engine; returns the list it appends each trunk pass's image count to
    (passes for features and for pair scores alike)."""
    calls = []
    engine = scorer.engine

    class CountingEngine(object):
        name = engine.name
        distances = staticmethod(engine.distances)
        memory_kind = staticmethod(engine.memory_kind)

        @staticmethod
        def features(x):
            calls.append(len(x))
            return engine.features(x)

        @staticmethod
        def pair_distances(x, size=None):
            calls.append(len(x))
            return engine.pair_distances(x, size)

    scorer.engine = CountingEngine()
    return calls


def test_2afc_uses_three_trunk_passes(params_dir, random_batches):
    scorer = Scorer("alex", params_dir=params_dir, batch_size=8, backend="nnabla")
    calls = count_trunk_passes(scorer)
    scorer.score_2afc(*random_batches)
    assert calls == [15]  # one pass over 3 x 5 images


def test_large_images_take_fewer_pairs_per_pass_on_onnxruntime(params_dir):
    from metrics.lpips.engines.tuning import TUNING
    side = 512
    per_pass = TUNING["alex"].pixels_per_pass // (side * side)
    assert 1 <= per_pass < 3
    scorer = Scorer("alex", params_dir=params_dir, batch_size=32, backend="onnxruntime")
    calls = count_trunk_passes(scorer)
    rng = np.random.default_rng(3)
    x0, x1 = (rng.random((3, 3, side, side), dtype=np.float32) * 2 - 1 for _ in range(2))
    scores = scorer.score_inputs(x0, x1)
    assert calls == [2 * per_pass] * (3 // per_pass) + [2 * (3 % per_pass)] * (3 % per_pass > 0)
    one_by_one = [scorer.score_inputs(x0[i:i + 1], x1[i:i + 1])[0] for i in range(3)]
    np.testing.assert_allclose(scores, one_by_one, atol=1e-6)


def test_size_checked_before_the_trunk(params_dir):
    scorer = Scorer("alex", params_dir=params_dir)
    x = np.zeros((1, 3, 30, 64), np.float32)
    with pytest.raises(ValueError, match="at least 31x31"):
        scorer.score_inputs(x, x)


@pytest.mark.parametrize("backend", ["nnabla", "onnxruntime"])
def test_engines_convert_images_bit_for_bit(params_dir, backend):
    engine = Scorer("alex", params_dir=params_dir, backend=backend).engine
    rng = np.random.default_rng(6)
    for shape in [(3, 41, 57, 3), (1, 64, 64, 3)]:
        images = rng.integers(0, 256, shape, dtype=np.uint8)
        x = engine.to_input(images)
        assert x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(x, to_model_input(images))  # the same bits


@pytest.mark.parametrize("backend", ["nnabla", "onnxruntime"])
def test_score_images_equals_score_inputs(params_dir, pair, backend):
    scorer = Scorer("alex", params_dir=params_dir, backend=backend, batch_size=2)
    a, b = (np.stack([img[:, :, :3]] * 3) for img in pair)  # 3 pairs: two passes
    expected = scorer.score_inputs(to_model_input(a), to_model_input(b))
    np.testing.assert_array_equal(scorer.score_images(a, b), expected)
    wide = (a.astype(np.uint16) * 257, b.astype(np.uint16) * 257)
    np.testing.assert_allclose(scorer.score_images(*wide), expected, atol=1e-6)
    mixed = scorer.score_images(a, b.astype(np.float32) / 255)  # one side float
    np.testing.assert_allclose(mixed, expected, atol=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        scorer.score_images(a, b[:2])
