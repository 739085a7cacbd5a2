"""LPIPS as a loss on ONNX Runtime (engines/gradient_engine.py, engines/onnx_node.py): values
and gradients equal NNabla's graph, in every way the graph API is used."""
import os

import imageio.v3 as iio
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import nnabla.solvers as S
import numpy as np
import pytest
from nnabla.initializer import NormalInitializer

from conftest import DATA
from metrics.lpips import LPIPS
from metrics.lpips.data.images import to_model_input
from metrics.lpips.elpips import ELPIPS, Config
from metrics.lpips.engines.onnx_node import NODE_NAME, GradientGraphError

TOLERANCE = 1e-5  # relative error: the largest over the batch of |ours - NNabla's| / |NNabla's|
# Two values of a pooling window closer than this (relatively) are a near tie: the engines'
# features differ by about 1e-7 relative, and pairs 7e-7 and 4e-6 apart were seen ordered
# differently.
NEAR_TIE = 1e-5
# Likewise a ReLU input this close to 0 (relative to its layer's largest): seen 3e-10 from 0
# and switched on in one engine, off in the other. Noise puts many within 1e-7 (VGG), and
# those seen so far fell alike.
NEAR_KINK = 1e-8


def random_images(n, height, width, seed):
    """Uniform noise in [-1, 1] (see :func:`untied_pair` for inputs to compare gradients on)."""
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, height, width)).astype(np.float32)


def _trunk_functions(net, images, kind):
    """The trunk's NNabla functions of type ``kind``, computed over ``images``."""
    found = []
    with nn.auto_forward(False):
        out = F.sink(*net.features(nn.Variable.from_numpy_array(images)))
        out.visit(lambda f: found.append(f) if f.info.type_name == kind else None)
        out.forward(clear_buffer=False)
    return found, out


def _closest_kink(net, images):
    """The ReLU input closest to 0, relative to its layer's largest: where rounding could put
    it on either side (and the gradient through it on or off)."""
    relus, _keep = _trunk_functions(net, images, "ReLU")
    return min(float(np.abs(f.inputs[0].d).min() / np.abs(f.inputs[0].d).max()) for f in relus)


def _closest_tie(net, images):
    """The smallest relative gap between the two largest values of a max-pooling window of
    ``net``'s trunk over ``images``, among windows whose maximum is positive (a zero maximum's
    gradient stops at the ReLU before the pool)."""
    pools, _keep = _trunk_functions(net, images, "MaxPooling")
    closest = np.inf
    for f in pools:
        (k, _), (s, _) = f.info.args["kernel"], f.info.args["stride"]
        v = f.inputs[0].d
        rows, cols = (v.shape[2] - k) // s + 1, (v.shape[3] - k) // s + 1
        windows = np.stack([v[:, :, i:i + s * rows:s, j:j + s * cols:s]
                            for i in range(k) for j in range(k)])
        top = np.sort(windows, axis=0)[-2:]
        positive = top[1] > 0
        gaps = (top[1] - top[0])[positive] / top[1][positive]
        closest = min(closest, gaps.min(initial=np.inf))
    return closest


def _shortest_feature(net, images):
    """The shortest feature vector of any tap over ``images``, relative to the tap's median:
    the unit normalisation's gradient is ill-conditioned at a short one (1 / |f|, and a
    difference of nearly equal terms), in float32 in every framework. E-LPIPS-VGG's first
    tap, the image itself, has only 3 channels, and noise makes short ones."""
    with nn.auto_forward(True):
        feats = net.features(nn.Variable.from_numpy_array(images))
    norms = [np.sqrt((f.d.astype(np.float64) ** 2).sum(axis=1)) for f in feats]
    return min(float(n.min() / np.median(n)) for n in norms)


def untied_pair(model, folder, n, height, width, seed, net_options=None):
    """Two batches of noise on which the gradient is well conditioned: no feature vector is
    short (:func:`_shortest_feature`), no ReLU input lies within rounding of 0
    (:func:`_closest_kink`), and max-pooling windows have no ties, nor near ties that the
    two engines' rounding could order differently (:data:`NEAR_TIE`). Real ties (flat images) make
    the gradient of a maximum ill-conditioned in every framework: ONNX Runtime, NNabla and
    PyTorch all send it to the first maximum in row-major order, but where two values are
    within rounding, either can be first."""
    net = LPIPS(model, engine="nnabla", params_dir=folder, **(net_options or {}))
    for attempt in range(20):
        img0, img1 = (random_images(n, height, width, seed + 1000 * attempt + k) for k in (0, 1))
        both = np.concatenate([img0, img1])
        if _closest_tie(net, both) > NEAR_TIE and _closest_kink(net, both) > NEAR_KINK \
                and _shortest_feature(net, both) > 0.05:
            return img0, img1
    raise AssertionError("no well-conditioned input in 20 attempts")


def relative(got, want):
    """The largest relative error of an item of the batch (Euclidean norms)."""
    got, want = (np.asarray(v, np.float64).reshape(len(v), -1) for v in (got, want))
    return float((np.linalg.norm(got - want, axis=1)
                  / np.maximum(np.linalg.norm(want, axis=1), 1e-30)).max())


def value_and_grads(net, img0, img1, both=False, **call):
    """The loss (summed, each output weighed differently so that every map's gradient is
    checked) and the gradients of both inputs (img1's only with ``both``)."""
    a = nn.Variable.from_numpy_array(img0, need_grad=True)
    b = nn.Variable.from_numpy_array(img1, need_grad=both)
    out = net(a, b, **call)
    outputs = list(out[1]) + [out[0]] if call.get("per_layer") else [out]
    loss = sum(F.sum(o) * (k + 1) for k, o in enumerate(outputs))
    loss.forward()
    a.grad.zero()
    b.grad.zero()
    loss.backward()
    return [o.d.copy() for o in outputs], a.g.copy(), b.g.copy() if both else None


def node_count(output):
    found = []
    output.visit(lambda f: found.append(f.info.type_name))
    return found.count(NODE_NAME)


def compare(model, folder, shape, seed, both=False, net_options=None, scale=1.0, **call):
    options = dict(net_options or {}, params_dir=folder)
    img0, img1 = (v * scale + (1 - scale) for v in untied_pair(model, folder, *shape, seed, net_options))
    ours = value_and_grads(LPIPS(model, **options), img0, img1, both, **call)
    theirs = value_and_grads(LPIPS(model, engine="nnabla", **options), img0, img1, both, **call)
    for got, want in zip(ours[0], theirs[0]):
        assert relative(got, want) < TOLERANCE
    assert relative(ours[1], theirs[1]) < TOLERANCE
    if both:
        assert relative(ours[2], theirs[2]) < TOLERANCE
        assert np.abs(ours[2]).max() > 0


@pytest.mark.parametrize("model, version", [
    ("alex", "0.1"), ("alex", "0.0"), ("vgg", "0.1"), ("vgg", "0.0"), ("vgg", "elpips"),
    ("squeeze", "0.1"), ("squeeze", "0.0"), ("elpips-vgg", "0.1")])
def test_gradients_equal_nnabla_for_every_trunk_and_version(model, version, params_dir,
                                                            squeeze_params_dir):
    folder = squeeze_params_dir if model == "squeeze" else params_dir
    compare(model, folder, (3, 33, 45), 0, net_options={"version": version}, per_layer=True)


@pytest.mark.parametrize("call", [
    {"normalize": True}, {"mean_batch": True}, {"per_layer": True, "normalize": True}])
def test_gradients_equal_nnabla_with_call_options(call, params_dir):
    scale = 0.5 if call.get("normalize") else 1.0  # [0, 1] inputs
    compare("alex", params_dir, (3, 64, 48), 2, scale=scale, **call)


@pytest.mark.parametrize("options", [
    {"spatial": True}, {"method": "mean"}, {"method": "spatial+mean"}, {"lpips": False},
    {"channel_norm": False}, {"input_norm": "imagenet"}])
def test_gradients_equal_nnabla_for_maps_and_methods(options, params_dir):
    compare("alex", params_dir, (1, 45, 77), 4, net_options=options)


def test_large_passes_keep_relus_compactly_with_the_same_gradients(params_dir, monkeypatch):
    """Large passes run without ONNX Runtime's arena and keep where ReLUs are positive
    instead of their outputs: the same values (every pass here counts as large)."""
    from metrics.lpips.engines import gradient_engine
    monkeypatch.setattr(gradient_engine, "ARENA_MAX_BYTES", 0)
    monkeypatch.setattr(gradient_engine, "COMPACT_MIN_BYTES", 0)
    compare("vgg", params_dir, (2, 40, 36), 8, both=True)
    net = LPIPS("vgg", params_dir=params_dir)
    net(nn.Variable((1, 3, 40, 36)), nn.Variable((1, 3, 40, 36))).forward()
    (key, sessions), = net.gradient_engine()._sessions.items()
    assert key[3:5] == (False, True)  # no arena, compact
    kept = [o.name for o in sessions["forward"].get_outputs()]
    assert any(name.endswith("/positive") for name in kept)


def test_passes_split_among_threads_equal_one_thread(params_dir):
    """A pass of at least 4 pairs a thread is split among the threads (engines/shards.py):
    the same maps and gradients as one thread, with a fixed target's taps kept per shard,
    and E-LPIPS' masks split with their images."""
    from metrics.lpips.engines.gradient_engine import GradientEngine
    net = LPIPS("alex", params_dir=params_dir)
    split, whole = GradientEngine(net, threads=2), GradientEngine(net, threads=1)
    x0, x1, x2 = (random_images(9, 32, 40, seed) for seed in (1, 2, 3))  # shards of 4 and 5
    grads = [np.random.default_rng(4).random((9,) + shape, dtype=np.float32)
             for shape in whole.map_shapes((32, 40))]
    for target in (x1, x1, x2):  # the second call reuses the target's taps, the third not
        ours, theirs = split.forward(x0, target), whole.forward(x0, target)
        for a, b in zip(ours.maps + split.backward(ours, grads),
                        theirs.maps + whole.backward(theirs, grads)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
        assert [len(p) for p in (ours.saved, theirs.saved)] == [2, 1]
    ours, theirs = split.forward(x0, x1, both=True), whole.forward(x0, x1, both=True)
    for a, b in zip(split.backward(ours, grads, both=True), whole.backward(theirs, grads, both=True)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    for a, b in zip(split.features(np.concatenate([x0, x1])), whole.features(np.concatenate([x0, x1]))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    rng = np.random.default_rng(5)
    masks = [(rng.random((9,) + shape) < 0.9).astype(np.float32)
             for _, shape in split.trace((32, 40), dropout=True).masks]
    ours, theirs = split.forward(x0, x1, masks), whole.forward(x0, x1, masks)
    for a, b in zip(ours.maps + split.backward(ours, grads),
                    theirs.maps + whole.backward(theirs, grads)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    kinds = {(kind, dropout) for (_, dropout, *_, threads), sessions in split._sessions.items()
             for kind in sessions if threads == 1}
    assert kinds == {("given target", False), ("backward", False), ("forward", False),
                     ("trunk", False), ("forward", True), ("backward", True)}


def test_gradients_reach_both_inputs(params_dir):
    compare("vgg", params_dir, (1, 40, 36), 6, both=True, per_layer=True)


def test_gradient_matches_central_differences(params_dir):
    net = LPIPS("alex", params_dir=params_dir)
    x = nn.Variable.from_numpy_array(random_images(1, 33, 35, 8) * 0.5, need_grad=True)
    loss = F.sum(net(x, nn.Variable.from_numpy_array(random_images(1, 33, 35, 9) * 0.5)))
    assert node_count(loss) == 1
    loss.forward()
    x.grad.zero()
    loss.backward()
    analytic, base = x.g.copy(), x.d.copy()
    rng = np.random.default_rng(0)
    for _ in range(4):  # directional derivatives along random directions
        direction = rng.standard_normal(base.shape).astype(np.float32)
        values = []
        for sign in (1, -1):
            x.d = base + sign * 1e-4 * direction
            loss.forward()
            values.append(float(loss.d))
        numeric = (values[0] - values[1]) / 2e-4
        exact = float((analytic * direction).sum())
        assert abs(numeric - exact) < 0.02 * abs(exact), (numeric, exact)


def test_projection_pattern_gives_the_same_losses(params_dir):
    """StyleGAN2's projection: auto-forward, an NNabla network makes img0, Adam on its
    parameters; 5 steps on each engine."""
    target = random_images(1, 48, 48, 10)
    latent = np.random.default_rng(11).standard_normal((1, 8, 48, 48)).astype(np.float32)
    losses = {}
    for engine in ("auto", "nnabla"):
        net = LPIPS("vgg", params_dir=params_dir, engine=engine)
        with nn.parameter_scope("generator_" + engine), nn.auto_forward(True):
            z = nn.Variable.from_numpy_array(latent)
            image = F.tanh(PF.convolution(z, 3, (3, 3), pad=(1, 1), w_init=NormalInitializer(
                0.1, rng=np.random.RandomState(0))))
            solver = S.Adam(0.01)
            solver.set_parameters(nn.get_parameters())
            assert len(nn.get_parameters()) == 2  # the generator's, no LPIPS parameter
            seen = []
            for _ in range(5):
                image = F.tanh(PF.convolution(z, 3, (3, 3), pad=(1, 1)))
                loss = F.mean(net(image, nn.Variable.from_numpy_array(target)))
                seen.append(float(loss.d))
                solver.zero_grad()
                loss.backward()
                solver.update()
            losses[engine] = seen
    assert losses["auto"][-1] < losses["auto"][0]
    np.testing.assert_allclose(losses["auto"], losses["nnabla"], rtol=TOLERANCE)


def test_static_graph_reused_for_several_steps(params_dir):
    nets = {e: LPIPS("alex", params_dir=params_dir, engine=e) for e in ("auto", "nnabla")}
    graphs = {}
    for engine, net in nets.items():
        x = nn.Variable((2, 3, 40, 40), need_grad=True)
        t = nn.Variable((2, 3, 40, 40))
        graphs[engine] = x, t, F.sum(net(x, t))
    assert node_count(graphs["auto"][2]) == 1 and node_count(graphs["nnabla"][2]) == 0
    for step in range(3):
        # The target changes at step 2 (after being reused at step 1).
        img0, img1 = random_images(2, 40, 40, 20 + step), random_images(2, 40, 40, 30 + step // 2)
        results = {}
        for engine, (x, t, loss) in graphs.items():
            x.d, t.d = img0, img1
            loss.forward(clear_no_need_grad=True)
            x.grad.zero()
            loss.backward(clear_buffer=True)
            results[engine] = float(loss.d), x.g.copy()
        assert results["auto"][0] == pytest.approx(results["nnabla"][0], rel=TOLERANCE)
        assert relative(results["auto"][1], results["nnabla"][1]) < TOLERANCE


def test_elpips_steps_with_fixed_draws_equal_nnabla(params_dir):
    img0, img1 = random_images(2, 64, 64, 12), random_images(2, 64, 64, 13)
    results = {}
    for engine in ("auto", "nnabla"):
        metric = ELPIPS(LPIPS("elpips-vgg", params_dir=params_dir, engine=engine),
                        Config.for_image(64, 64))
        with nn.auto_forward(True):
            a = nn.Variable.from_numpy_array(img0, need_grad=True)
            d = metric(a, nn.Variable.from_numpy_array(img1), np.random.default_rng(5), copies=2)
            assert node_count(d) == (1 if engine == "auto" else 0)
            F.sum(d).backward()
        results[engine] = d.d.copy(), a.g.copy()
    assert relative(results["auto"][0], results["nnabla"][0]) < TOLERANCE
    assert relative(results["auto"][1], results["nnabla"][1]) < TOLERANCE


def test_nn_grad_names_the_opt_out(params_dir):
    net = LPIPS("alex", params_dir=params_dir)
    x = nn.Variable.from_numpy_array(random_images(1, 32, 32, 14), need_grad=True)
    loss = net(x, nn.Variable.from_numpy_array(random_images(1, 32, 32, 15)))
    with pytest.raises(GradientGraphError, match='engine="nnabla"'):
        nn.grad([loss], [x])
    # The opt-out differentiates twice.
    net = LPIPS("alex", params_dir=params_dir, engine="nnabla")
    loss = net(x, nn.Variable.from_numpy_array(random_images(1, 32, 32, 15)))
    grad = nn.grad([loss], [x])[0]
    F.sum(grad ** 2).forward()
    assert np.isfinite(grad.d).all()


def test_uncovered_cases_and_other_contexts_build_nnabla_graphs(params_dir, monkeypatch):
    net = LPIPS("alex", params_dir=params_dir, method="sort")
    assert not net.runs_on_onnxruntime()
    with pytest.raises(ValueError, match="sort"):
        LPIPS("alex", params_dir=params_dir, method="sort", engine="onnxruntime").runs_on_onnxruntime()
    cudnn = nn.Context(backend=["cudnn:float", "cuda:float", "cpu:float"], array_class="CudaCachedArray")
    net = LPIPS("alex", params_dir=params_dir)
    assert net.runs_on_onnxruntime()
    monkeypatch.setattr(nn, "get_current_context", lambda: cudnn)  # as under a GPU
    assert not net.runs_on_onnxruntime()
    x = nn.Variable((1, 3, 32, 32))
    assert node_count(net(x, x)) == 0
    with pytest.raises(ValueError, match="cudnn"):
        LPIPS("alex", params_dir=params_dir, engine="onnxruntime").runs_on_onnxruntime()
    with pytest.raises(ValueError, match="engine must be one of"):
        LPIPS("alex", params_dir=params_dir, engine="torch")


def test_leaves_nnabla_state_alone(params_dir):
    nn.random.prng = np.random.RandomState(123)
    expected = np.random.RandomState(123).rand()
    context = nn.get_current_context()
    net = LPIPS("alex", params_dir=params_dir)
    with nn.auto_forward(True):
        x = nn.Variable.from_numpy_array(random_images(1, 32, 32, 16), need_grad=True)
        F.sum(net(x, nn.Variable.from_numpy_array(random_images(1, 32, 32, 17)))).backward()
    assert not nn.get_auto_forward()
    assert str(nn.get_current_context()) == str(context)
    assert nn.get_parameters(grad_only=False) == {}
    assert nn.random.prng.rand() == expected


def test_real_photographs_score_as_nnabla(params_dir):
    """Photographs have flat regions (tied maxima in pools): the scores agree exactly as
    ever, and so do the gradients where no window ties (the most of them)."""
    names = ["astronaut_blur_0", "chelsea_jpeg_0"]
    images = [to_model_input(iio.imread(os.path.join(DATA, "pairs", n + ".png"))[:64, :64])
              for n in names]
    ours = value_and_grads(LPIPS("vgg", params_dir=params_dir), *images)
    theirs = value_and_grads(LPIPS("vgg", params_dir=params_dir, engine="nnabla"), *images)
    assert relative(ours[0][0], theirs[0][0]) < TOLERANCE
    assert np.median(np.abs(ours[1] - theirs[1])) < 1e-5 * np.abs(theirs[1]).max()
