"""Training the lin layers: one step against the reference's trainer."""
import json
import os

import imageio.v3 as iio
import nnabla as nn
import numpy as np
import pytest

from conftest import DATA
from metrics.lpips.training.trainer import Trainer, accuracy

GOLDEN = os.path.join(DATA, "golden", "train_step.json")


def _golden_batch(doc):
    side, shift = doc["side"], doc["shift"]
    ref, p0, p1 = [], [], []
    for name in doc["names"]:
        a, b = (iio.imread(os.path.join(DATA, "pairs", "{}_{}.png".format(name, i)))
                for i in (0, 1))
        ref.append(a[:side, :side])
        p0.append(b[:side, :side])
        p1.append(a[shift:shift + side, shift:shift + side])
    return [np.stack(x).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
            for x in (ref, p0, p1)]


def _set_initial(trainer, doc):
    params = trainer.parameters()
    names = {"lin{}".format(k): "lin/lin{}_model_1_weight".format(k) for k in range(5)}
    names.update({"rank{}/{}".format(k, p): "rank/rank{}/conv/{}".format(k, p)
                  for k in range(3) for p in "Wb"})
    for theirs, ours in names.items():
        params[ours].d = np.array(doc["initial"][theirs], np.float32).reshape(params[ours].shape)
    return names


def test_one_step_equals_the_reference_trainer(params_dir):
    with open(GOLDEN) as f:
        doc = json.load(f)
    trainer = Trainer("alex", params_dir=params_dir, lr=doc["lr"], beta1=doc["beta1"],
                      dropout=False)
    names = _set_initial(trainer, doc)
    result = trainer.forward_backward(*_golden_batch(doc), doc["judge"])
    np.testing.assert_allclose(result.d0, doc["d0"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result.d1, doc["d1"], rtol=1e-5, atol=1e-7)
    assert result.loss == pytest.approx(doc["loss"], abs=1e-6)
    np.testing.assert_allclose(result.accuracy, doc["accuracy"])
    params = trainer.parameters()
    for theirs, ours in names.items():
        grad = params[ours].g.reshape(-1)
        np.testing.assert_allclose(grad, doc["grads"][theirs], rtol=1e-4,
                                   atol=1e-5 * np.abs(doc["grads"][theirs]).max() + 1e-12,
                                   err_msg=theirs)
    trainer.update()
    for theirs, ours in names.items():
        np.testing.assert_allclose(params[ours].d.reshape(-1), doc["after"][theirs], atol=1e-5,
                                   err_msg=theirs)
    clamped = [k for k in range(5) if min(doc["initial"]["lin{}".format(k)]) < 0]
    assert clamped and all(params["lin/lin{}_model_1_weight".format(k)].d.min() == 0
                           for k in clamped)


def test_lin_mode_features_from_onnxruntime_equal_nnabla(params_dir):
    with open(GOLDEN) as f:
        doc = json.load(f)
    results = {}
    for engine in ("auto", "nnabla"):
        trainer = Trainer("alex", params_dir=params_dir, dropout=True, engine=engine)
        assert (trainer._trunk_engine is None) == (engine == "nnabla")
        _set_initial(trainer, doc)
        results[engine] = trainer.forward_backward(*_golden_batch(doc), doc["judge"],
                                                   rng=np.random.default_rng(0))
        results[engine] = results[engine], {k: v.g.copy() for k, v in trainer.parameters().items()}
    (ours, grads), (theirs, their_grads) = results["auto"], results["nnabla"]
    np.testing.assert_allclose(ours.d0, theirs.d0, rtol=1e-5)
    assert ours.loss == pytest.approx(theirs.loss, rel=1e-5)
    for name, g in grads.items():
        np.testing.assert_allclose(g, their_grads[name], rtol=1e-4, atol=1e-5 * np.abs(g).max())
    assert Trainer("alex", params_dir=params_dir, mode="tune")._trunk_engine is None


def test_accuracy_is_the_judgments_share_for_the_closer_image():
    np.testing.assert_allclose(accuracy([0.2, 0.1, 0.3], [0.1, 0.2, 0.3], [0.8, 0.8, 0.3]),
                               [0.8, 0.2, 0.7])


def test_torch_adam_follows_pytorchs_formula_over_many_steps():
    # Each step against the formula (the weights themselves drift apart in float32 over
    # thousands of steps). Past step 16,101 NNabla's epsilon no longer changes in float32 and
    # the solver is kept: the tiny gradients show a wrong epsilon.
    import nnabla as nn
    from metrics.lpips.training.solver import TorchAdam
    rng = np.random.default_rng(0)
    w = nn.Variable.from_numpy_array(rng.standard_normal(6).astype(np.float32), need_grad=True)
    solver = TorchAdam({"w": w}, lr=1e-2, beta1=0.5, beta2=0.999)
    m, v = np.zeros(6), np.zeros(6)
    for t in range(1, 16200):
        g = rng.standard_normal(6) * np.array([1, 1e-3, 1e-6, 1e-7, 1e-8, 0])
        before = w.d.astype(np.float64)
        solver.zero_grad()
        w.g = g
        solver.update()
        m, v = 0.5 * m + 0.5 * g, 0.999 * v + 0.001 * g * g
        step = 1e-2 / (1 - 0.5 ** t) * m / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        if t == 3:  # a checkpoint's state carries over
            states = solver.get_states()
            solver = TorchAdam({"w": w}, lr=1e-2, beta1=0.5, beta2=0.999)
            solver.set_states(states)
        np.testing.assert_allclose(before - w.d, step, rtol=1e-4, atol=1e-7, err_msg=str(t))


def _batch(doc_side=48):
    with open(GOLDEN) as f:
        doc = json.load(f)
    return _golden_batch(doc), doc["judge"]


def test_tune_mode_trains_the_trunk_by_its_gradient(params_dir):
    (ref, p0, p1), judge = _batch()
    trainer = Trainer("alex", params_dir=params_dir, dropout=False, mode="tune", lr=1e-3)
    w = trainer.parameters()["trunk/conv3/conv/W"]
    before = w.d.copy()
    trainer.forward_backward(ref, p0, p1, judge)
    grad = w.g.copy()
    assert np.abs(grad).max() > 0
    # the gradient is the loss's: a finite difference along it agrees
    direction = grad / np.linalg.norm(grad)
    losses = []
    for sign in (1, -1):
        w.d = before + sign * 1e-3 * direction
        losses.append(trainer.forward_backward(ref, p0, p1, judge).loss)
    w.d = before
    assert (losses[0] - losses[1]) / 2e-3 == pytest.approx(np.linalg.norm(grad), rel=0.05)
    trainer.forward_backward(ref, p0, p1, judge)
    trainer.update()
    assert not np.allclose(w.d, before)
    with pytest.raises(ValueError, match="fixed trunk"):
        Trainer("alex", params_dir=params_dir, dropout=False, mode="tune").step_terms(
            np.zeros((2, 1152)), np.zeros((2, 1152)), [0, 1])


@pytest.mark.parametrize("model, spread", [("alex", "uniform"), ("vgg", "normal")])
def test_scratch_mode_starts_the_trunk_as_torchvision_does(params_dir, model, spread):
    trainer = Trainer(model, params_dir=params_dir, mode="scratch", seed=1)
    params = trainer.trunk_params
    name = next(n for n in params if n.endswith("/W") and params[n].shape[0] >= 128)
    w, b = params[name].d, params[name[:-1] + "b"].d
    fan_in, fan_out = np.prod(w.shape[1:]), w.shape[0] * np.prod(w.shape[2:])
    if spread == "uniform":  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        assert np.abs(w).max() <= 1 / np.sqrt(fan_in)
        assert np.std(w) == pytest.approx(1 / np.sqrt(3 * fan_in), rel=0.05)
        assert np.abs(b).max() <= 1 / np.sqrt(fan_in) and np.std(b) > 0
    else:  # Kaiming normal, fan out; zero biases
        assert np.std(w) == pytest.approx(np.sqrt(2 / fan_out), rel=0.05)
        assert not b.any()


def test_array_access_does_not_search_the_import_path(monkeypatch):
    # metrics.lpips.training marks NNabla's first, always failing, import attempt absent.
    import importlib.machinery
    import sys
    import nnabla as nn
    v = nn.Variable((2, 2))
    v.d = np.ones((2, 2), np.float32)  # NNabla's CPU extension loaded, once
    searched = []
    real = importlib.machinery.PathFinder.find_spec.__func__

    def find_spec(cls, name, path=None, target=None):
        searched.append(name)
        return real(cls, name, path, target)

    monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", classmethod(find_spec))
    v.d = np.full((2, 2), 2, np.float32)
    assert v.d.sum() == 8 and searched == []
    monkeypatch.delitem(sys.modules, "nnabla.nnabla_ext")  # without the mark: searched
    v.d = np.zeros((2, 2), np.float32)
    assert v.d.sum() == 0 and "nnabla.nnabla_ext" in searched


def test_gradients_go_through_nnabla_communicator_when_the_world_has_one():
    # On GPUs the processes' gradients are summed by NNabla's communicator (NCCL), in place
    # on the device. A stand-in for two processes with the same gradients: its all_reduce
    # doubles them.
    import nnabla as nn
    from metrics.lpips.cli.mpi import World, nnabla_communicator
    from metrics.lpips.training.loop import sum_gradients

    class TwoProcesses(object):
        def __init__(self):
            self.calls = []

        def all_reduce(self, arrays, division, inplace):
            self.calls.append((len(arrays), division, inplace))
            for array in arrays:
                array *= 2

    params = [nn.Variable((2, 3), need_grad=True), nn.Variable((4,), need_grad=True)]
    for k, var in enumerate(params):
        var.g = np.full(var.shape, k + 1, np.float32)
    world = World()
    world.communicator = TwoProcesses()
    sum_gradients(world, params, np.float32(0.25))
    assert world.communicator.calls == [(2, False, True)]
    np.testing.assert_array_equal(params[0].g, np.full((2, 3), 0.5))
    np.testing.assert_array_equal(params[1].g, np.full((4,), 1.0))
    from nnabla.ext_utils import get_extension_context
    assert nnabla_communicator(get_extension_context("cpu")) is None  # NNabla has none there


def test_the_monotone_head_takes_judgments_as_fractions():
    # Its loss is the binary cross-entropy against soft judgments (0.6: three of five chose
    # p1), value and gradient; NNabla's sigmoid_cross_entropy, which it once used, takes the
    # target as an integer (0.6 counted as 0), so the check beside it shows why it is not.
    import nnabla.functions as F
    from metrics.lpips.training import ranking
    logit = np.array([-2.0, 0.5, 3.0, -40.0, 40.0], np.float32).reshape(-1, 1, 1, 1)
    judge = np.array([0.4, 0.6, 1.0, 0.2, 0.8], np.float32).reshape(-1, 1, 1, 1)
    want = np.logaddexp(0, logit) - judge * logit
    scope = {}
    with nn.auto_forward(True), nn.parameter_scope("rank", scope):
        d0 = nn.Variable.from_numpy_array(logit / ranking.INITIAL_SCALE, need_grad=True)
        d1 = nn.Variable.from_numpy_array(np.zeros_like(logit))
        t = nn.Variable.from_numpy_array(judge)
        loss = ranking.monotone_loss(d0, d1, t)
        nnabla_own = F.sigmoid_cross_entropy(nn.Variable.from_numpy_array(logit), t)
    loss.backward()
    assert float(loss.d) == pytest.approx(want.mean(), rel=1e-6)
    sigmoid = 1 / (1 + np.exp(-logit))
    np.testing.assert_allclose(d0.g, (sigmoid - judge) * ranking.INITIAL_SCALE / len(logit),
                               rtol=1e-5, atol=1e-7)
    assert abs(float(nnabla_own.d[1].ravel()[0]) - float(want[1].ravel()[0])) > 0.2


def test_the_head_scale_starts_from_the_terms_spread(params_dir):
    rng = np.random.default_rng(0)
    trainer = Trainer("alex", params_dir=params_dir, dropout=False, head="monotone")
    channels = sum(w.shape[1] for w in trainer.lins)
    t0, t1 = (rng.uniform(0, 1e-4, (40, channels)).astype(np.float32) for _ in range(2))
    trainer.calibrate_head(t0, t1)
    w = np.concatenate([v.d.reshape(-1) for v in trainer.lins])
    with trainer.rank_scope():
        scale = np.exp(nn.get_parameters()["log_scale"].d.item())
    assert np.sqrt(np.mean((scale * (t0 @ w - t1 @ w)) ** 2)) == pytest.approx(1, rel=1e-4)
    reference = Trainer("alex", params_dir=params_dir, dropout=False, head="reference")
    before = {k: v.d.copy() for k, v in reference.parameters().items()}
    reference.calibrate_head(t0, t1)  # its network has no scale to set
    for k, v in reference.parameters().items():
        np.testing.assert_array_equal(v.d, before[k])
