# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Training LPIPS on 2AFC triplets, as the reference's ``lpips.Trainer`` does: lin layers from a
random start, dropout 0.5 on each lin layer's input, a ranking head on (d0, d1), binary
cross-entropy against the judgment, Adam(lr, beta1, 0.999) over lin and ranking weights, and
the lin weights clamped to >= 0 after every step. The trunk is fixed (``lin``, the reference's
default), trained from its pretrained weights (``tune``, its ``--train_trunk``) or from a
random start (``scratch``, its ``--from_scratch``).

The lin weights are the :class:`~metrics.lpips.lpips.LPIPS` instance's own parameters (made
trainable), so the trained network scores as any other once saved.
"""
import collections

import numpy as np

import nnabla as nn
import nnabla.functions as F

from ..distances import method_taps, spatial_average, squared_difference
from ..lpips import LPIPS
from ..trunks import get_trunk, trainable_trunk
from ..weights import is_lin_parameter, lin_name
from . import ranking
from .precompute import channel_terms
from .solver import TorchAdam

DROPOUT = 0.5  # the reference's nn.Dropout() before each lin layer
MODES = ("lin", "tune", "scratch")

StepResult = collections.namedtuple("StepResult", ["loss", "accuracy", "d0", "d1"])


def _pytorch_default(weight_shape, is_bias, rng):
    bound = 1.0 / np.sqrt(int(np.prod(weight_shape[1:])))
    return rng.uniform(-bound, bound, weight_shape[:1] if is_bias else weight_shape)


def _kaiming_normal_fan_out(weight_shape, is_bias, rng):
    if is_bias:
        return np.zeros(weight_shape[:1])
    fan_out = weight_shape[0] * int(np.prod(weight_shape[2:]))
    return rng.normal(0, np.sqrt(2.0 / fan_out), weight_shape)


def _kaiming_uniform(weight_shape, is_bias, rng):
    if is_bias:
        return np.zeros(weight_shape[:1])
    bound = np.sqrt(6.0 / int(np.prod(weight_shape[1:])))
    return rng.uniform(-bound, bound, weight_shape)


# Random starts of a trunk convolution's weight or bias, as torchvision initialises the
# network the reference takes when ``pnet_rand`` (named by ``Trunk.scratch_init``): PyTorch's
# convolution default U(-b, b), b = 1/sqrt(fan_in), for weights and biases (AlexNet);
# N(0, 2 / fan_out) (Kaiming, fan out; VGG16) or U(-b, b), b = sqrt(6 / fan_in) (Kaiming
# uniform; SqueezeNet) with zero biases.
SCRATCH_INITS = {"pytorch-default": _pytorch_default,
                 "kaiming-normal-fan-out": _kaiming_normal_fan_out,
                 "kaiming-uniform": _kaiming_uniform}


def _scratch_value(model, weight_shape, is_bias, rng):
    """A random start for a trunk convolution's weight (``weight_shape``) or bias."""
    init = SCRATCH_INITS[get_trunk(model).scratch_init]
    return np.asarray(init(weight_shape, is_bias, rng), np.float32)


def _dropout_mask(rng, shape, rows=None):
    """A dropout mask of ``shape`` (keep with probability 1 - DROPOUT, scaled to keep the
    mean) drawn from ``rng``; with ``rows`` = (indices, the whole batch's size) drawn for the
    whole batch and those rows taken, as one process would draw them."""
    whole = shape if rows is None else (rows[1],) + tuple(shape[1:])
    drawn = (rng.random(whole, dtype=np.float32) >= DROPOUT) / np.float32(1 - DROPOUT)
    return drawn if rows is None else drawn[rows[0]]


def accuracy(d0, d1, judge):
    """The reference's per-triplet agreement: the judgment's share for the image the metric
    calls closer (p1 when d1 < d0, else p0)."""
    judge = np.asarray(judge, np.float64).reshape(-1)
    closer1 = (np.asarray(d1).reshape(-1) < np.asarray(d0).reshape(-1)).astype(np.float64)
    return closer1 * judge + (1 - closer1) * (1 - judge)


class Trainer(object):
    """Training of ``model``'s lin layers, and with ``mode`` ``tune`` or ``scratch`` of its
    trunk (from ``params_dir`` as LPIPS loads it, or for ``scratch`` drawn as torchvision
    initialises it). The lin layers start from PyTorch's default for a bias-free 1x1
    convolution, U(-1/sqrt(C), 1/sqrt(C)), and the ranking head from its defaults (NNabla's
    generator, seeded from ``seed``), all drawn from ``seed``;
    ``dropout`` (0.5 before each lin layer, its masks drawn from the generator each step is
    given, so that a run can be reproduced and resumed) can be switched off. ``head`` is the
    ranking head (:data:`~metrics.lpips.training.ranking.HEADS`). In ``lin`` mode on a CPU
    context the trunk's features come from ONNX Runtime unless ``engine`` is ``"nnabla"``
    (see :class:`~metrics.lpips.lpips.LPIPS`); ``tune`` and ``scratch`` need the trunk's weight
    gradients, which run on NNabla. ``method``, ``channel_norm`` and ``input_norm`` are the
    comparison the lin layers learn (see :class:`~metrics.lpips.lpips.LPIPS`): one lin layer
    per map the method compares, two sets for ``spatial+X``."""

    def __init__(self, model="alex", params_dir=None, lr=1e-4, beta1=0.5, dropout=True, seed=0,
                 head="reference", mode="lin", engine="auto", method="spatial",
                 channel_norm=True, input_norm=None):
        if mode not in MODES:
            raise ValueError("mode must be one of {}, got {!r}".format(", ".join(MODES), mode))
        if head not in ranking.HEADS:
            raise ValueError("head must be one of {}, got {!r}".format(
                ", ".join(ranking.HEADS), head))
        self.head = ranking.HEADS[head]
        self.net = LPIPS(model, params_dir=params_dir, engine=engine, method=method,
                         channel_norm=channel_norm, input_norm=input_norm)
        self.dropout, self.lr = dropout, lr
        rng = np.random.default_rng(seed)
        channels = self.net.trunk.channels
        with self.net.scope():
            for k in range(len(channels), len(self.net.layer_names)):  # spatial+X's second set
                nn.parameter.set_parameter(lin_name(k), nn.Variable(
                    (1, channels[k % len(channels)], 1, 1)))
            self.lins = [nn.parameter.get_parameter(lin_name(k))
                         for k in range(len(self.net.layer_names))]
        for w in self.lins:
            bound = 1.0 / np.sqrt(w.shape[1])
            w.d = rng.uniform(-bound, bound, w.shape)
            w.need_grad = True
        self.mode = mode
        self.trunk_params = collections.OrderedDict()
        if mode != "lin":
            self.trunk_params.update((name, v) for name, v in self.net.parameters().items()
                                     if not is_lin_parameter(name))
        if mode == "scratch":
            for name, v in self.trunk_params.items():
                weight = self.trunk_params[name[:-1] + "W"]  # .../W and .../b
                v.d = _scratch_value(model, weight.shape, name.endswith("/b"), rng)
        self._rank_scope = collections.OrderedDict()
        nn.seed(int(rng.integers(2 ** 31)))
        with nn.auto_forward(False), self.rank_scope():  # makes the ranking parameters
            one = nn.Variable((1, 1, 1, 1))
            self.head(one, one, one)
        self.solver = TorchAdam(self.parameters(), lr, beta1, 0.999)
        self._graphs = {}
        # A fixed trunk's features come from ONNX Runtime on a CPU context (several times
        # NNabla's speed) and reach the graph as channel terms (_masked_terms); a trained
        # trunk needs weight gradients, which only NNabla has.
        self._trunk_engine = self.net.gradient_engine() \
            if mode == "lin" and self.net.runs_on_onnxruntime() else None

    def rank_scope(self):
        return nn.parameter_scope("rank", self._rank_scope)

    def parameters(self):
        """What the solver trains: ``lin/<name>`` and ``rank/<name>`` -> Variable."""
        params = collections.OrderedDict(("lin/" + lin_name(k), w)
                                         for k, w in enumerate(self.lins))
        params.update(("trunk/" + name, v) for name, v in self.trunk_params.items())
        with self.rank_scope():
            params.update(("rank/" + name, v) for name, v in nn.get_parameters().items())
        return params

    def _distance(self, feats_ref, feats_p, masks):
        """(N, 1, 1, 1): the lin-weighted distance, each lin layer's input multiplied by its
        dropout mask (a Variable of its shape, fed each step) when ``masks``."""
        total = None
        maps_ref, maps_p = (method_taps(f, self.net.method) for f in (feats_ref, feats_p))
        for f_ref, f_p, w in zip(maps_ref, maps_p, self.lins):
            diff = squared_difference(f_ref, f_p, self.net.channel_norm)
            if masks is not None:
                masks.append(nn.Variable(diff.shape))
                diff = diff * masks[-1]
            layer = spatial_average(F.convolution(diff, w))
            total = layer if total is None else total + layer
        return total

    def _graph(self, shape):
        """Inputs (ref, p0, p1, judge), dropout masks and outputs (loss, (d0, d1) along the
        batch) for batches of ``shape``."""
        if shape not in self._graphs:
            with nn.auto_forward(False):
                n = shape[0]
                ref, p0, p1 = (nn.Variable(shape) for _ in range(3))
                judge = nn.Variable((n, 1, 1, 1))
                # A frozen trunk (lin) gets no backward pass at all.
                with nn.no_grad() if self.mode == "lin" else trainable_trunk():
                    feats = self.net.features(F.concatenate(ref, p0, p1, axis=0))
                # features() marks its scope's parameters fixed
                for w in list(self.lins) + list(self.trunk_params.values()):
                    w.need_grad = True
                parts = [[F.slice(f, (k * n, 0, 0, 0), ((k + 1) * n,) + f.shape[1:])
                          for f in feats] for k in range(3)]
                masks = [] if self.dropout else None
                both = F.concatenate(self._distance(parts[0], parts[1], masks),
                                     self._distance(parts[0], parts[2], masks), axis=0)
                loss = self._loss(both, judge)
            self._graphs[shape] = (ref, p0, p1, judge), masks, (loss, both)
        return self._graphs[shape]

    def _terms_graph(self, shape):
        """As :meth:`_graph`, from precomputed channel terms (N, C_total) of (ref, p0) and
        (ref, p1) (:mod:`~metrics.lpips.training.precompute`): the lin weights, joined into
        one vector, applied to the channels' spatial means (the same sum in another order) by
        one matrix product for both distances. A step here is mostly the overhead of its
        functions and array accesses, so there are few of both: the two distances are one
        output, (2N, 1, 1, 1), read once."""
        key = ("terms",) + shape
        if key not in self._graphs:
            with nn.auto_forward(False):
                n, total = shape
                t0, t1 = nn.Variable((n, total)), nn.Variable((n, total))
                judge = nn.Variable((n, 1, 1, 1))
                weights = F.concatenate(*[F.reshape(w, (w.shape[1], 1)) for w in self.lins],
                                        axis=0)
                both = F.reshape(F.affine(F.concatenate(t0, t1, axis=0), weights),
                                 (2 * n, 1, 1, 1))
                loss = self._loss(both, judge)
            self._graphs[key] = (t0, t1, judge), None, (loss, both)
        return self._graphs[key]

    def _loss(self, both, judge):
        """The ranking head's loss on the distances ``both`` = (d0, d1) along the batch, which
        is kept for reading after the backward pass."""
        both.persistent = True
        n = both.shape[0] // 2
        d0 = F.slice(both, (0, 0, 0, 0), (n, 1, 1, 1))
        d1 = F.slice(both, (n, 0, 0, 0), (2 * n, 1, 1, 1))
        with self.rank_scope():
            return self.head(d0, d1, judge)

    def forward_backward(self, ref, p0, p1, judge, rng=None, rows=None):
        """The loss of a batch ((N, 3, H, W) arrays in [-1, 1], judgments (N,) in [0, 1]) and
        the gradients of every trained weight (left in their ``.g``). With dropout, ``rng``
        (a numpy Generator) draws the masks: keep with probability 0.5, scaled by 2. When the
        batch is a process's share of a larger one, ``rows`` = (its rows, the whole batch's
        size): the masks are drawn for the whole batch and these rows taken, as one process
        would draw them."""
        if self._trunk_engine is not None:
            terms = self._masked_terms(ref, p0, p1, rng, rows)
            graph = self._terms_graph((len(ref), terms[0].shape[1]))
            for var, value in zip(graph[0], terms):
                var.d = value
            return self._run(graph, judge, None)
        graph = self._graph(tuple(np.shape(ref)))
        for var, value in zip(graph[0], (ref, p0, p1)):
            var.d = value
        return self._run(graph, judge, rng, rows)

    def _masked_terms(self, ref, p0, p1, rng, rows):
        """The channel terms of (ref, p0) and (ref, p1) ((N, C_total) each) from the trunk on
        ONNX Runtime, each squared difference multiplied by its dropout mask (drawn as
        :meth:`_run` draws the image graph's, in the same order) before its spatial mean: a
        distance is linear in the lin weights, so the terms graph gives the same loss and
        gradients as the image graph, without NNabla's slow head on full feature maps."""
        feats = self._trunk_engine.features(np.concatenate([ref, p0, p1]))
        return channel_terms(feats, len(ref), self.net.channel_norm, (
            lambda shape: _dropout_mask(rng, shape, rows)) if self.dropout else None,
            self.net.method)

    def forward_backward_terms(self, terms0, terms1, judge, rows=None):
        """As :meth:`forward_backward` from precomputed terms (N, C_total); no dropout. With
        ``rows`` (indices) the batch is those rows of ``terms0``, ``terms1`` and ``judge``,
        gathered straight into the graph's inputs (a copy saved counts in a step this short)."""
        if self.dropout or self.mode != "lin":
            raise ValueError("precomputed terms need a fixed trunk and no dropout: make the "
                             "Trainer with mode='lin' and dropout=False")
        count = len(terms0) if rows is None else len(rows)
        graph = self._terms_graph((count, np.shape(terms0)[1]))
        for var, terms in zip(graph[0], (terms0, terms1)):
            if rows is None:
                var.d = terms
            else:
                np.take(terms, rows, axis=0, out=var.d)
        return self._run(graph, judge if rows is None else np.asarray(judge)[rows], None)

    def _run(self, graph, judge, rng, rows=None):
        """Forward and backward through ``graph``, whose images or terms are set."""
        inputs, masks, (loss, both) = graph
        inputs[-1].d = np.reshape(judge, (-1, 1, 1, 1))
        for mask in masks or ():
            mask.d = _dropout_mask(rng, mask.shape, rows)
        loss.forward(clear_no_need_grad=True)
        self.solver.zero_grad()
        loss.backward(clear_buffer=True)
        d0, d1 = np.split(both.d.reshape(-1).copy(), 2)
        return StepResult(float(loss.d), accuracy(d0, d1, judge), d0, d1)

    def calibrate_head(self, terms0, terms1):
        """Sets the monotone head's scale s so that its starting logits s (d0 - d1) spread by
        about 1 over the precomputed terms (at the starting lin weights); other heads are left
        as they are. The terms' magnitudes differ by orders between trunks, layers and data,
        and s moves by about the learning rate a step, in log space: from a fixed start it
        spent the run growing. Measured over six planted sets (benchmarks/recipe_study.py,
        lr 1e-2): held-out scores 0.020 below the logistic fit on the same terms on average
        (0.040 at worst) from s = 10, 0.006 (0.013) calibrated."""
        if self.head is not ranking.monotone_loss:
            return
        w = np.concatenate([v.d.reshape(-1) for v in self.lins]).astype(np.float64)
        gap = np.asarray(terms0, np.float64) @ w - np.asarray(terms1, np.float64) @ w
        spread = float(np.sqrt(np.mean(np.square(gap))))
        if spread > 0 and np.isfinite(spread):
            with self.rank_scope():
                nn.parameter.get_parameter("log_scale").d = np.log(1.0 / spread)

    def update(self):
        """One Adam step, then the lin weights clamped to >= 0."""
        self.solver.update()
        for w in self.lins:
            values = w.d  # NNabla's array itself: clamped in place
            np.maximum(values, 0, out=values)

    def step(self, ref, p0, p1, judge, rng=None):
        """One training step on a batch: :meth:`forward_backward`, then :meth:`update`."""
        result = self.forward_backward(ref, p0, p1, judge, rng)
        self.update()
        return result

    def step_terms(self, terms0, terms1, judge):
        """One training step from precomputed terms."""
        result = self.forward_backward_terms(terms0, terms1, judge)
        self.update()
        return result

    def set_learning_rate(self, lr):
        self.solver.set_learning_rate(lr)
