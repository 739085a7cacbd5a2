# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS's per-entry distance maps as one NNabla function node whose forward and backward
passes run on ONNX Runtime (:mod:`.gradient_engine`), for the graph API on a CPU context:
everything around it (the [0, 1] mapping, the spatial means or upsampling, the sum over
layers, the batch mean, and whatever made the images) stays an ordinary NNabla graph.
"""
import nnabla as nn
from nnabla.backward_functions import register
from nnabla.function import PythonFunction

from ..errors import UsageProblem

NODE_NAME = "LpipsOnnxRuntime"


class GradientGraphError(UsageProblem, NotImplementedError):
    """``nn.grad`` was asked for a graph of the node's gradient, which it does not have."""


def _no_gradient_graph(*args, **kwargs):
    raise GradientGraphError(
        "nn.grad cannot differentiate LPIPS's ONNX Runtime node (its gradient runs on ONNX "
        "Runtime, not as an NNabla graph); build the metric with LPIPS(..., engine=\"nnabla\") "
        "for nn.grad and second derivatives (loss.backward() works with either)")


# nn.grad looks functions up by name; without this entry it fails naming no way out.
register(NODE_NAME, _no_gradient_graph)


class LayerMapsNode(PythonFunction):
    """(img0, img1), (N, 3, H, W) in [-1, 1] -> the per-entry (N, 1, h, w) distance maps of
    ``engine``'s network; ``masks``: E-LPIPS' dropout masks (float32 (N, C, h, w) per
    convolution), fixed for the node's life. ``both``: the forward pass keeps what img1's
    gradient needs too (else a backward pass asking for it runs the forward pass again)."""

    def __init__(self, engine, masks=None, both=False, ctx=None):
        super(LayerMapsNode, self).__init__(ctx or nn.get_current_context())
        self._engine, self._masks, self._both, self._forward = engine, masks, both, None

    @property
    def name(self):
        return NODE_NAME

    def min_outputs(self):
        return self._engine.entry_count

    def setup_impl(self, inputs, outputs):
        n, _, h, w = inputs[0].shape
        for output, shape in zip(outputs, self._engine.map_shapes((h, w))):
            output.reset_shape((n,) + shape, True)

    def forward_impl(self, inputs, outputs):
        self._forward = None  # the last pass's tensors go before this pass makes its own
        self._forward = self._engine.forward(inputs[0].d, inputs[1].d, self._masks, self._both)
        for output, value in zip(outputs, self._forward.maps):
            output.d = value

    def backward_impl(self, inputs, outputs, propagate_down, accum):
        if not any(propagate_down[:2]):
            return
        both = bool(propagate_down[1])
        grads = self._engine.backward(self._forward, [o.g for o in outputs], both=both)
        for i, grad in enumerate(grads):
            if not propagate_down[i]:
                continue
            if accum[i]:
                inputs[i].g += grad
            else:
                inputs[i].g = grad

    def grad_depends_output_data(self, i, o):
        return False

    def grad_depends_input_data(self, i, j):
        return False  # the forward pass keeps what the backward pass reads


def layer_maps(engine, img0, img1, masks=None):
    """The node applied to two Variables: a list of per-entry map Variables."""
    maps = LayerMapsNode(engine, masks, both=img1.need_grad)(img0, img1)
    return list(maps) if isinstance(maps, (list, tuple)) else [maps]
