"""The LPIPS graph: properties, gradients, parameter isolation and input errors."""
import os

import imageio.v3 as iio
import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np
import pytest

from conftest import DATA
from metrics.lpips import LPIPS
from metrics.lpips.data.images import to_model_input
from metrics.lpips.trunks import TRUNKS
from metrics.lpips.weights import load_weights
from metrics.lpips.weights.store import write_h5

MODELS = ["alex", "vgg", "squeeze"]


@pytest.fixture(scope="module")
def images():
    """Four 64x64 crops of real photographs, float32 (4, 3, 64, 64) in [-1, 1]."""
    names = ["astronaut_blur_0", "astronaut_blur_1", "coffee_vs_astronaut_0", "chelsea_jpeg_0"]
    return np.concatenate([to_model_input(iio.imread(
        os.path.join(DATA, "pairs", n + ".png"))[:64, :64]) for n in names])


def folder_for(model, params_dir, squeeze_params_dir):
    return squeeze_params_dir if model == "squeeze" else params_dir


def run(net, a, b, **kw):
    out = net(nn.Variable.from_numpy_array(a), nn.Variable.from_numpy_array(b), **kw)
    out.forward()
    return out.d.copy()


@pytest.fixture(params=MODELS)
def net(request, params_dir, squeeze_params_dir):
    return LPIPS(request.param, params_dir=folder_for(request.param, params_dir, squeeze_params_dir))


def test_identical_images_score_zero(net, images):
    assert np.all(run(net, images, images) == 0)


def test_symmetric(net, images):
    d01 = run(net, images[:2], images[2:])
    d10 = run(net, images[2:], images[:2])
    assert np.all(d01 > 0.01)
    np.testing.assert_allclose(d01, d10, atol=1e-6)


def test_score_independent_of_batch_size_and_position(net, images):
    together = run(net, images[[0, 1, 2]], images[[3, 3, 3]]).ravel()
    alone = [run(net, images[[i]], images[[3]]).item() for i in (0, 1, 2)]
    reversed_order = run(net, images[[2, 1, 0]], images[[3, 3, 3]]).ravel()[::-1]
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(reversed_order, alone, atol=1e-6)


def test_normalize_flag_equals_rescaling(net, images):
    unit = (images + 1) / 2
    np.testing.assert_allclose(run(net, unit[:2], unit[2:], normalize=True),
                               run(net, images[:2], images[2:]), atol=1e-6)


def test_mean_batch_and_spatial_map(params_dir, images):
    net = LPIPS("alex", params_dir=params_dir)
    scores = run(net, images[:2], images[2:])
    assert scores.shape == (2, 1, 1, 1)
    np.testing.assert_allclose(run(net, images[:2], images[2:], mean_batch=True).ravel(),
                               scores.mean(), atol=1e-6)
    spatial = run(LPIPS("alex", params_dir=params_dir, spatial=True), images[:2], images[2:])
    assert spatial.shape == (2, 1, 64, 64)
    np.testing.assert_allclose(spatial.mean(axis=(2, 3)).ravel(), scores.ravel(), rtol=0.1)


def test_per_layer_values_sum_to_the_score(params_dir, images):
    net = LPIPS("vgg", params_dir=params_dir)
    total, layers = net(nn.Variable.from_numpy_array(images[:1]),
                        nn.Variable.from_numpy_array(images[2:3]), per_layer=True)
    nn.forward_all([total] + layers)
    assert len(layers) == 5
    np.testing.assert_allclose(sum(v.d.item() for v in layers), total.d.item(), rtol=1e-6)


def test_gradient_matches_finite_differences(params_dir, images):
    net = LPIPS("alex", params_dir=params_dir)
    x = nn.Variable.from_numpy_array(images[:1, :, :40, :40], need_grad=True)
    y = nn.Variable.from_numpy_array(images[2:3, :, :40, :40])
    loss = F.sum(net(x, y))
    loss.forward()
    x.grad.zero()
    loss.backward()
    analytic = x.g.copy()
    rng = np.random.default_rng(0)
    base = x.d.copy()
    for _ in range(6):
        idx = tuple(rng.integers(0, s) for s in base.shape)
        eps = 1e-2
        values = []
        for sign in (1, -1):
            x.d = base
            x.d[idx] += sign * eps
            loss.forward()
            values.append(loss.d.item())
        numeric = (values[0] - values[1]) / (2 * eps)
        assert abs(numeric - analytic[idx]) < 0.05 * abs(analytic[idx]) + 2e-4, (idx, numeric, analytic[idx])


@pytest.mark.parametrize("model", MODELS)
def test_gradients_finite_on_identical_inputs(model, params_dir, squeeze_params_dir, images):
    net = LPIPS(model, params_dir=folder_for(model, params_dir, squeeze_params_dir))
    x = nn.Variable.from_numpy_array(images[:1], need_grad=True)
    loss = F.sum(net(x, nn.Variable.from_numpy_array(images[:1])))
    loss.forward()
    x.grad.zero()
    loss.backward()
    assert loss.d.item() == 0 and np.all(np.isfinite(x.g))


def test_gradients_finite_where_a_feature_vector_is_all_zero(params_dir, tmp_path, images):
    # Real trunks rarely zero a whole feature vector, so make one that does: the first conv
    # outputs -1 everywhere, its ReLU tap is exactly zero (where sqrt's gradient is infinite).
    params = dict(load_weights("alex", "0.1", params_dir))
    params["conv0/conv/W"] = np.zeros_like(params["conv0/conv/W"])
    params["conv0/conv/b"] = -np.ones_like(params["conv0/conv/b"])
    write_h5(str(tmp_path / "alex_with_LPIPS.h5"), params)
    net = LPIPS("alex", params_dir=str(tmp_path))
    x = nn.Variable.from_numpy_array(images[:1], need_grad=True)
    for other in (images[:1], images[1:2]):
        feats = net.features(x)
        loss = F.sum(net(x, nn.Variable.from_numpy_array(other)))
        nn.forward_all([loss, feats[0]])
        assert np.all(feats[0].d == 0)
        x.grad.zero()
        loss.backward()
        assert np.all(np.isfinite(x.g))


def test_gradients_in_auto_forward_mode(params_dir, images):
    net = LPIPS("vgg", params_dir=params_dir)
    with nn.auto_forward(True):
        x = nn.Variable.from_numpy_array(images[:1], need_grad=True)
        loss = F.sum(net(x, nn.Variable.from_numpy_array(images[2:3])))
        assert loss.d.item() > 0.01  # computed while building
        loss.backward()
    assert np.all(np.isfinite(x.g)) and np.abs(x.g).max() > 0


def test_pretrained_parameters_stay_private_and_fixed(params_dir, images):
    with nn.parameter_scope("generator"):
        w = nn.parameter.get_parameter_or_create("w", (1, 3, 1, 1), np.ones((1, 3, 1, 1), np.float32))
    alex = LPIPS("alex", params_dir=params_dir)
    vgg = LPIPS("vgg", params_dir=params_dir)
    assert list(nn.get_parameters(grad_only=False)) == ["generator/w"]
    assert all(not v.need_grad for v in alex.parameters().values())
    assert alex.parameters()["conv0/conv/W"].shape == (64, 3, 11, 11)  # two backbones,
    assert vgg.parameters()["conv0/conv/W"].shape == (64, 3, 3, 3)  # same names, no collision
    before = {k: v.d.copy() for k, v in alex.parameters().items()}

    solver = S.Sgd(lr=1.0)
    solver.set_parameters(nn.get_parameters())
    x = F.mul2(nn.Variable.from_numpy_array(images[:1]), w)  # a "generator" output
    target = nn.Variable.from_numpy_array(images[2:3])
    loss = F.sum(alex(x, target)) + F.sum(vgg(x, target))
    loss.forward()
    solver.zero_grad()
    loss.backward()
    assert np.abs(w.g).max() > 0  # gradients reach the caller's parameter
    solver.update()
    assert all(np.array_equal(before[k], v.d) for k, v in alex.parameters().items())
    # Still fixed after graphs were built, run forward and backward (NNabla's fix_parameters
    # path marks the stored ones need_grad=True unless they are set back).
    for net in (alex, vgg):
        assert not any(v.need_grad for v in net.parameters().values())
    # Both backbones still give their own scores after sharing a graph.
    np.testing.assert_allclose(run(alex, images[:1], images[2:3]),
                               run(LPIPS("alex", params_dir=params_dir), images[:1], images[2:3]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_gives_a_non_finite_score(params_dir, images, bad):
    alex = LPIPS("alex", params_dir=params_dir)
    a, b = images[:2].copy(), images[2:4]
    clean = run(alex, a, b)
    a[0, 1, 10, 20] = bad
    x0 = nn.Variable.from_numpy_array(a, need_grad=True)
    x1 = nn.Variable.from_numpy_array(b, need_grad=True)
    total, layers = alex(x0, x1, per_layer=True)
    loss = F.sum(total)
    loss.forward()
    # The pair holding the bad value scores NaN (each layer too), as the reference does;
    # the other pair's score and gradient are those of a clean batch.
    assert np.isnan(total.d[0]).all() and all(np.isnan(l.d[0]).all() for l in layers)
    assert total.d[1] == clean[1]
    x0.grad.zero()
    loss.backward()
    reference = nn.Variable.from_numpy_array(images[:2], need_grad=True)
    clean_loss = F.sum(alex(reference, nn.Variable.from_numpy_array(b)))
    clean_loss.forward()
    reference.grad.zero()
    clean_loss.backward()
    np.testing.assert_array_equal(x0.g[1], reference.g[1])
    spatial = LPIPS("alex", params_dir=params_dir, spatial=True)
    assert np.isnan(run(spatial, a, b)[0]).all() and np.isfinite(run(spatial, a, b)[1]).all()


def test_loading_and_building_print_nothing(params_dir, images, capfd):
    net = LPIPS("alex", params_dir=params_dir)
    run(net, images[:1], images[1:2])
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_unknown_model_and_version_list_the_valid_ones(params_dir):
    with pytest.raises(ValueError, match="alex, vgg, squeeze"):
        LPIPS("resnet", params_dir=params_dir)
    with pytest.raises(ValueError, match="0.1, 0.0"):
        LPIPS("alex", params_dir=params_dir, version="0.2")


def test_input_errors(params_dir, images):
    net = LPIPS("alex", params_dir=params_dir)
    a = nn.Variable.from_numpy_array(images[:1])
    with pytest.raises(TypeError, match="nnabla.Variable"):
        net(images[:1], a)
    with pytest.raises(ValueError, match=r"same shape.*\(1, 3, 64, 64\).*\(1, 3, 40, 40\)"):
        net(a, nn.Variable.from_numpy_array(images[:1, :, :40, :40]))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(nn.Variable((1, 1, 64, 64)), nn.Variable((1, 1, 64, 64)))


@pytest.mark.parametrize("model", MODELS)
def test_minimum_size(model, params_dir, squeeze_params_dir):
    net = LPIPS(model, params_dir=folder_for(model, params_dir, squeeze_params_dir))
    m = TRUNKS[model].min_size
    ok = np.zeros((1, 3, m, m + 5), np.float32)
    assert run(net, ok, ok).shape == (1, 1, 1, 1)
    small = nn.Variable((1, 3, m - 1, m + 5))
    with pytest.raises(ValueError, match="at least {}x{}".format(m, m)):
        net(small, small)


def test_version_00_skips_scaling_and_differs(params_dir, images):
    v01 = LPIPS("alex", params_dir=params_dir)
    v00 = LPIPS("alex", params_dir=params_dir, version="0.0")
    assert v01.apply_scale and not v00.apply_scale
    assert abs(run(v01, images[:1], images[2:3]).item() - run(v00, images[:1], images[2:3]).item()) > 1e-3
