# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The trunk of an LPIPS network as a short list of operations, read from the NNabla graph
that :mod:`~metrics.lpips.trunks` builds, so that the gradient graphs (:mod:`.gradient_graphs`)
know the architecture from the same single source as every other engine.

A trace is made for one image size (pools that round up pad by a size-dependent amount) and
any batch. It holds the operations the trunks use: the input scaling (subtraction and
division by constants), convolution, ReLU, max and average pooling, constant padding,
concatenation along channels, identity, and E-LPIPS' dropout (a product with a mask that is
an input of the graph).
"""
import collections

import nnabla as nn
import nnabla.functions as F

from ...errors import EnvironmentProblem
from ...trunks import conv_input_hook

# One operation: ``kind``, the names of its ``inputs`` (tensors, then constants), its
# ``output`` name and its ``attrs``.
Op = collections.namedtuple("Op", ["kind", "inputs", "output", "attrs"])

Trace = collections.namedtuple("Trace", [
    "ops",        # [Op] in the order they run
    "taps",       # names of the tapped tensors, in the trunk's order
    "constants",  # {name: float32 array}: parameters and scaling constants
    "masks",      # [(name, (C, h, w))]: one dropout mask per convolution, when asked for
    "shapes",     # {tensor name: its (C, h, w)}
])

# NNabla function -> (kind, the attributes kept).
_KINDS = {
    "Convolution": ("conv", ("pad", "stride", "dilation", "group")),
    "ReLU": ("relu", ()),
    "MaxPooling": ("maxpool", ("kernel", "stride", "pad", "ignore_border")),
    "AveragePooling": ("avgpool", ("kernel", "stride", "pad", "ignore_border", "including_pad")),
    "Pad": ("pad", ("pad_width", "mode", "constant_value")),
    "Concatenate": ("concat", ("axis",)),
    "Identity": ("identity", ()),
    "Sub2": ("sub", ()),
    "Div2": ("div", ()),
    "Mul2": ("mul", ()),
}


class TraceError(EnvironmentProblem, NotImplementedError):
    """The trunk holds an operation the gradient graphs do not know (a trunk added later)."""


def trace_trunk(net, height, width, dropout=False):
    """The :class:`Trace` of ``net``'s trunk (an :class:`~metrics.lpips.lpips.LPIPS`, input
    scaling included) for images of ``height`` x ``width``; with ``dropout`` every
    convolution's input is multiplied by a mask input, as E-LPIPS does."""
    placeholders = []

    def masked(x):
        placeholders.append(nn.Variable(x.shape))
        return x * placeholders[-1]

    # features() marks the instance's parameters fixed; a trainer may have made some trainable.
    trainable = {name: v.need_grad for name, v in net.parameters().items()}
    try:
        with nn.auto_forward(False), conv_input_hook(masked if dropout else None):
            x = nn.Variable((1, 3, height, width))
            taps = net.features(x)
            functions = []
            F.sink(*taps).visit(functions.append)  # kept alive: a Variable's hash is its address
    finally:
        for name, v in net.parameters().items():
            v.need_grad = trainable[name]
    names = {hash(x): "x"}
    mask_names = {}
    for k, m in enumerate(placeholders):
        names[hash(m)] = mask_names[hash(m)] = "m{}".format(k)
    constants, shapes, ops = {}, {"x": (3, height, width)}, []

    def name_of(v):
        key = hash(v)
        if key not in names:
            if v.parent is not None:
                raise TraceError("a tensor was read before it was made")
            names[key] = "c{}".format(len(constants))
            constants[names[key]] = v.d.copy()
        return names[key]

    for f in functions[:-1]:  # the last is the sink
        kind, kept = _KINDS.get(f.info.type_name, (None, None))
        if kind is None:
            raise TraceError("no gradient graph for NNabla's {}".format(f.info.type_name))
        inputs = [name_of(v) for v in f.inputs]
        output = "t{}".format(len(ops))
        names[hash(f.outputs[0])] = output
        shapes[output] = tuple(f.outputs[0].shape[1:])
        attrs = {key: f.info.args[key] for key in kept if key in f.info.args}
        if kind == "mul" and inputs[1] in mask_names.values():
            kind = "mask"
        ops.append(Op(kind, inputs, output, attrs))
    masks = [(mask_names[hash(m)], tuple(m.shape[1:])) for m in placeholders]
    return Trace(ops, [names[hash(t)] for t in taps], constants, masks, shapes)
