# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""LPIPS and its input gradient as two ONNX graphs, written from a :mod:`.trace` of the trunk
and the head's formulas, for ONNX Runtime to run a loss's forward and backward passes.

Why this route: NNabla's exporter has no backward functions, and ONNX Runtime's training
build is not on PyPI for every platform; the adjoint of these few operators is short to
write, and ONNX Runtime runs it with its fast kernels (``benchmarks/bench_loss.py``).

The *forward* graph takes ``x0``, ``x1`` (N, 3, H, W) in [-1, 1] (and E-LPIPS' masks ``m<k>``,
one per convolution, the same for both images of a pair) and returns the per-entry distance
maps ``d<k>`` (N, 1, h, w), then what the backward pass reads: each ReLU's output (or for
large passes where it is positive), each max pool's argmax indices, and the taps, for the
images whose gradient is wanted (img0's, or both), and img1's taps. Keeping them costs no
recomputation: the backward graph does only the adjoint work.

The *backward* graph takes those tensors, the maps' gradients ``g<k>`` and the masks, and
returns ``dx0`` (and ``dx1`` when both inputs need one): a vector-Jacobian product. Each
operator's adjoint:

* a convolution's input gradient is a transposed convolution with the same filters; with
  stride 1 it is again a convolution (filters flipped, in and out channels swapped), which
  ONNX Runtime runs 1.6x faster than ConvTranspose (and which the Winograd rewrite takes);
* ReLU passes the gradient where its output is positive (0 at 0, as NNabla and PyTorch);
* max pooling sends each output's gradient to its window's maximum, by the indices ONNX
  Runtime's MaxPool returns (on a tie, the first maximum in row-major order within the
  window, as NNabla and PyTorch pick); overlapping windows (AlexNet's) add up;
* average pooling spreads it evenly over each window; padding crops it; concatenation
  splits it; the input scaling and dropout masks multiply it;
* the head (unit normalisation across channels, squared difference, lin layer, channel
  mean for the ``mean`` method) by its formulas, recomputed from the saved features.
"""
import collections

import numpy as np
from onnx import TensorProto, helper

from .graph import GraphBuilder, make_model, placeholder
from .trace import TraceError

OPSET = 17  # ScatterElements' reduction="add" (max pools whose windows overlap) needs 16
# What the head computes, in the order of its entries: the tap read, the modifier applied
# ("mean" or None), the lin layer's weight (1, C, 1, 1) or None (a plain channel sum).
Entry = collections.namedtuple("Entry", ["tap", "modifier", "weight"])
Head = collections.namedtuple("Head", ["entries", "channel_norm", "eps", "min_squared_norm"])
# A model whose large constants are placeholders, and those constants: {name: array}.
Graph = collections.namedtuple("Graph", ["model", "supplied"])

MODIFIERS = (None, "mean")  # the others (sort) take the NNabla graph
SUPPLIED_BYTES = 4096  # constants this large are handed to ONNX Runtime as arrays
INDEX, POSITIVE = "/index", "/positive"  # what a kept max pool's and ReLU's tensors are named


def _value_info(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _saved_info(name):
    """The type of a tensor the forward pass keeps: pool indices, where a ReLU's output is
    positive, or a float."""
    kind = TensorProto.INT64 if name.endswith(INDEX) else (
        TensorProto.BOOL if name.endswith(POSITIVE) else TensorProto.FLOAT)
    return helper.make_tensor_value_info(name, kind, None)


def _pads(pad):
    return [int(pad[0]), int(pad[1]), int(pad[0]), int(pad[1])]


class _Builder(GraphBuilder):
    """A graph builder whose large constants stay numpy arrays (``supplied``: name -> array)
    that ONNX Runtime is handed when it loads the model, instead of copies inside it."""

    def __init__(self, name):
        super(_Builder, self).__init__(helper.make_graph([], name, [], []), name)
        self.supplied, self._named = {}, {}

    def const(self, value, hint="const"):
        value = np.asarray(value)
        if value.nbytes < SUPPLIED_BYTES:
            return super(_Builder, self).const(value, hint)
        if id(value) in self._named:  # the same array read twice (the two sides' trunks)
            return self._named[id(value)][0]
        name = self.name(hint)
        self._named[id(value)] = (name, value)  # kept: an id is only unique while alive
        self.graph.initializer.append(placeholder(name, value))
        self.supplied[name] = value
        return name

    def ops(self, op_type, inputs, outputs, **attributes):
        """A node with several ``outputs`` (names)."""
        self.graph.node.append(helper.make_node(op_type, list(inputs), list(outputs),
                                                name=self.name(op_type + "_node"), **attributes))
        return outputs

    def channel_sum(self, x, channels):
        """(N, C, h, w) -> (N, 1, h, w): as a 1x1 convolution with ones, which ONNX Runtime
        runs several times faster than ReduceSum across channels."""
        return self.op("Conv", [x, self.const(np.ones((1, channels, 1, 1), np.float32), "ones")])

    def model(self):
        """A :data:`Graph` of what was built."""
        return Graph(make_model(self.graph, OPSET), self.supplied)


def _forward_trunk(b, trace, x, masks, side, save, compact=False):
    """Appends the trunk's nodes for the images ``x`` of ``side`` (0 or 1); returns
    {trace name: graph name} and, in order, the graph outputs the backward pass reads: with
    ``save`` every ReLU's output (with ``compact``, where those that are no taps are
    positive) and max pool's indices, else only the taps."""
    names = {"x": x}
    names.update(masks)
    names.update({k: b.const(v, k) for k, v in trace.constants.items()})
    saved = collections.OrderedDict()

    def saved_name(name):
        return "saved{}/{}".format(side, name)
    for op in trace.ops:
        ins = [names[i] for i in op.inputs]
        a = op.attrs
        if op.kind == "conv":
            out = b.op("Conv", ins, pads=_pads(a["pad"]), strides=a["stride"],
                       dilations=a["dilation"], group=a["group"])
        elif op.kind == "relu":
            tap = op.output in trace.taps
            out = b.op("Relu", ins, saved_name(op.output) if tap or (save and not compact) else None)
            if save and (tap or not compact):
                saved[op.output] = out
            elif save and compact:  # where it is positive: a byte, not four
                saved[op.output + POSITIVE] = b.op("Greater", [out, b.const(np.float32(0))],
                                                   saved_name(op.output + POSITIVE))
        elif op.kind == "maxpool":  # the indices only where read: they cost 3x the pooling
            outputs = [b.name("pool")] + ([saved_name(op.output + INDEX)] if save else [])
            out = b.ops("MaxPool", ins, outputs, kernel_shape=a["kernel"], strides=a["stride"],
                        pads=_pads(a["pad"]))
            if save:
                saved[op.output + INDEX] = out[1]
            out = out[0]
        elif op.kind == "avgpool":
            out = b.op("AveragePool", ins, kernel_shape=a["kernel"], strides=a["stride"])
        elif op.kind == "pad":
            top, bottom, left, right = a["pad_width"]
            out = b.op("Pad", [ins[0], b.ints(0, 0, top, left, 0, 0, bottom, right),
                               b.const(np.float32(a["constant_value"]))])
        else:  # a tap is output as it is made (a copy of it would cost a pass over it)
            out = b.op({"concat": "Concat", "identity": "Identity", "sub": "Sub", "div": "Div",
                        "mul": "Mul", "mask": "Mul"}[op.kind], ins,
                       saved_name(op.output) if op.output in trace.taps else None,
                       **({"axis": a["axis"]} if op.kind == "concat" else {}))
        names[op.output] = out
    for tap in trace.taps:
        if tap not in saved:
            saved[tap] = names[tap] if names[tap] == saved_name(tap) else b.op(
                "Identity", [names[tap]], saved_name(tap))
    return names, saved


def _check(trace, head):
    for op in trace.ops:
        a = op.attrs
        if op.kind in ("maxpool", "avgpool") and not a["ignore_border"]:
            raise TraceError("pools that keep the border have no gradient graph")
        if op.kind == "avgpool" and (list(a["kernel"]) != list(a["stride"]) or any(a["pad"])):
            raise TraceError("average pools with overlapping windows or padding")
        if op.kind == "pad" and a["mode"] != "constant":
            raise TraceError("{} padding in a trunk".format(a["mode"]))
    for entry in head.entries:
        if entry.modifier not in MODIFIERS:
            raise TraceError("the {} method has no gradient graph".format(entry.modifier))


class _HeadTerms(object):
    """The head's intermediate values for one side of one entry (``feat``: (N, C, h, w))."""

    def __init__(self, b, feat, head, channels):
        self.feat, self.norm, self.channels = feat, None, channels
        if head.channel_norm:
            squared = b.channel_sum(b.op("Mul", [feat, feat]), channels)
            clamp = b.const(np.float32(head.min_squared_norm))
            self.valid = b.op("Cast", [b.op("Greater", [squared, clamp])], to=TensorProto.FLOAT)
            self.norm = b.op("Sqrt", [b.op("Max", [squared, clamp])])
            self.denominator = b.op("Add", [self.norm, b.const(np.float32(head.eps))])
            self.unit = b.op("Div", [feat, self.denominator])
        else:
            self.unit = feat

    def gradient(self, b, weighted, scale):
        """d feat for d unit = ``scale`` * ``weighted`` (scale: (N, 1, h, w)). For
        u = f / (n + eps), n = |f|: df = du / (n + eps) - u <du, u> / n, the second term 0
        where NNabla's clamp of the squared norm holds (an all-zero vector). Written so that
        the full-size products are few: the per-position factors are computed first."""
        if self.norm is None:
            return b.op("Mul", [weighted, scale])
        first = b.op("Mul", [weighted, b.op("Div", [scale, self.denominator])])
        inner = b.channel_sum(b.op("Mul", [weighted, self.unit]), self.channels)
        factor = b.op("Mul", [b.op("Div", [b.op("Mul", [scale, inner]), self.norm]), self.valid])
        return b.op("Sub", [first, b.op("Mul", [self.unit, factor])])


def _modified(b, feat, modifier):
    return b.op("ReduceMean", [feat], axes=[2, 3], keepdims=1) if modifier == "mean" else feat


def _entry_map(b, head, entry, terms0, terms1):
    difference = b.op("Sub", [terms0.unit, terms1.unit])
    squared = b.op("Mul", [difference, difference])
    if entry.weight is None:
        return difference, b.channel_sum(squared, terms0.channels)
    return difference, b.op("Conv", [squared, b.const(entry.weight, "lin")])


def target_taps(trace):
    """The names under which the forward graph outputs img1's taps (and, with
    ``given_target``, takes them)."""
    return ["saved1/" + tap for tap in trace.taps]


def forward_model(trace, head, both, given_target=False, compact=False):
    """The forward :data:`Graph` (see the module's description) and the names of what the
    backward pass reads: for the backward pass of img0 alone, or with ``both`` of both. With
    ``given_target`` (not with ``both``), img1's taps are inputs (:func:`target_taps`, as an
    earlier pass output them) instead of ``x1``: a fixed target's trunk runs once. With
    ``compact``, a ReLU that is no tap is kept as where it is positive (booleans: a quarter
    of the memory, for 7% of AlexNet's step at 8 x 64 px)."""
    _check(trace, head)
    b = _Builder("lpips_forward")
    b.graph.input.append(_value_info("x0", ["N", 3, None, None]))
    b.graph.input.extend(_value_info(name, ["N"] + list(shape)) for name, shape in trace.masks)
    masks = {name: name for name, _ in trace.masks}
    sides = [_forward_trunk(b, trace, "x0", masks, 0, True, compact)]
    if given_target:
        b.graph.input.extend(_value_info(name, ["N"] + list(trace.shapes[tap]))
                             for tap, name in zip(trace.taps, target_taps(trace)))
        sides.append((dict(zip(trace.taps, target_taps(trace))), {}))
    else:
        b.graph.input.append(_value_info("x1", ["N", 3, None, None]))
        sides.append(_forward_trunk(b, trace, "x1", masks, 1, both, compact))
    outputs = []
    for k, entry in enumerate(head.entries):
        tap = trace.taps[entry.tap]
        terms = [_HeadTerms(b, _modified(b, names[tap], entry.modifier), head, trace.shapes[tap][0])
                 for names, _ in sides]
        _, dist = _entry_map(b, head, entry, *terms)
        outputs.append(_value_info(b.op("Identity", [dist], "d{}".format(k)), None))
    saved = [n for _, side in sides for n in side.values()]
    outputs += [_saved_info(n) for n in saved]
    b.graph.output.extend(outputs)
    # What the backward pass reads: the outputs after the maps, and any given target's taps.
    kept = [o.name for o in outputs[len(head.entries):]]
    return b.model(), kept + (target_taps(trace) if given_target else [])


def trunk_model(trace):
    """The trunk alone as a :data:`Graph`: ``x`` (N, 3, H, W) in [-1, 1] -> its taps
    ``f0``, ``f1``, ... (a fixed trunk's features, for training lin layers on them)."""
    b = _Builder("lpips_trunk")
    b.graph.input.append(_value_info("x", ["N", 3, None, None]))
    names, _ = _forward_trunk(b, trace, "x", {}, 0, False)
    for k, tap in enumerate(trace.taps):
        b.op("Identity", [names[tap]], "f{}".format(k))
    b.graph.output.extend(_value_info("f{}".format(k), None) for k in range(len(trace.taps)))
    return b.model()


def _conv_input_gradient(b, grad, weight, a, in_shape, out_shape, flipped):
    """The gradient of a convolution's input (C, h, w) = ``in_shape`` from its output's;
    ``flipped`` returns the filters flipped (kept by the caller for every graph)."""
    pad, stride = [int(p) for p in a["pad"]], [int(s) for s in a["stride"]]
    kh, kw = weight.shape[2:]
    if stride == [1, 1] and list(a["dilation"]) == [1, 1] and a["group"] == 1:
        return b.op("Conv", [grad, b.const(flipped(), "flipped")],
                    pads=_pads([kh - 1 - pad[0], kw - 1 - pad[1]]))
    extra = [in_shape[1 + i] - (stride[i] * (out_shape[1 + i] - 1) + (k - 1) * a["dilation"][i] + 1
                                - 2 * pad[i]) for i, k in enumerate((kh, kw))]
    return b.op("ConvTranspose", [grad, b.const(weight, "weight")], pads=_pads(pad), strides=stride,
                dilations=a["dilation"], group=a["group"], output_padding=extra)


def _pool_input_gradient(b, grad, index, a, in_shape):
    """Max pooling's adjoint: each output's gradient added at its maximum's position."""
    batch = b.op("Slice", [b.op("Shape", [grad]), b.ints(0), b.ints(1)])
    full = b.op("Concat", [batch, b.ints(*in_shape)], axis=0)
    if list(a["kernel"]) == list(a["stride"]):  # windows do not overlap: one scatter each
        return b.op("MaxUnpool", [grad, index, full], kernel_shape=a["kernel"], strides=a["stride"])
    flat = b.ints(-1)
    zeros = b.op("ConstantOfShape", [b.op("ReduceProd", [full], keepdims=1)],
                 value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))
    added = b.op("ScatterElements", [zeros, b.op("Reshape", [index, flat]), b.op("Reshape", [grad, flat])],
                 axis=0, reduction="add")
    return b.op("Reshape", [added, full])


def _avgpool_input_gradient(b, grad, a, in_shape, out_shape):
    kh, kw = a["kernel"]
    c, h, w = out_shape
    spread = b.op("Mul", [b.op("Reshape", [grad, b.ints(-1, c, h, 1, w, 1)]),
                          b.const(np.full((1, 1, 1, kh, 1, kw), 1.0 / (kh * kw), np.float32))])
    spread = b.op("Reshape", [spread, b.ints(-1, c, h * kh, w * kw)])
    rest_h, rest_w = in_shape[1] - h * kh, in_shape[2] - w * kw  # rows the pool dropped
    if rest_h or rest_w:
        spread = b.op("Pad", [spread, b.ints(0, 0, 0, 0, 0, 0, rest_h, rest_w)])
    return spread


def flip_filters(weight):
    """A stride-1 convolution's filters for its input gradient: in and out channels swapped,
    the kernel turned by 180 degrees."""
    return np.ascontiguousarray(weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])


def _trunk_adjoint(b, trace, grads, saved, masks, flip):
    """Appends the trunk's backward pass for one side, from the taps' gradients ``grads``
    ({trace name: graph name}, consumed); returns the gradient of its input."""
    def add_grad(name, g):
        grads[name] = g if name not in grads else b.op("Add", [grads[name], g])

    for op in reversed(trace.ops):
        if op.output not in grads:
            continue
        g, a, src = grads.pop(op.output), op.attrs, op.inputs[0]
        in_shape, out_shape = trace.shapes.get(src), trace.shapes[op.output]
        if op.kind == "conv":
            g = _conv_input_gradient(b, g, trace.constants[op.inputs[1]], a, in_shape, out_shape,
                                     lambda name=op.inputs[1]: flip(name))
        elif op.kind == "relu":
            positive = saved.get(op.output + POSITIVE) or b.op(
                "Greater", [saved[op.output], b.const(np.float32(0))])
            g = b.op("Where", [positive, g, b.const(np.float32(0))])
        elif op.kind == "maxpool":
            g = _pool_input_gradient(b, g, saved[op.output + INDEX], a, in_shape)
        elif op.kind == "avgpool":
            g = _avgpool_input_gradient(b, g, a, in_shape, out_shape)
        elif op.kind == "pad":
            top, _, left, _ = a["pad_width"]
            g = b.op("Slice", [g, b.ints(top, left), b.ints(top + in_shape[1], left + in_shape[2]),
                               b.ints(2, 3)])
        elif op.kind == "concat":
            start = 0
            for name in op.inputs:
                channels = trace.shapes[name][0]
                add_grad(name, b.op("Slice", [g, b.ints(start), b.ints(start + channels), b.ints(1)]))
                start += channels
            continue
        elif op.kind in ("div", "mul"):
            g = b.op("Div" if op.kind == "div" else "Mul", [g, b.const(trace.constants[op.inputs[1]])])
        elif op.kind == "mask":
            g = b.op("Mul", [g, masks[op.inputs[1]]])
        add_grad(src, g)  # identity and sub pass it on unchanged
    return grads["x"]


def backward_model(trace, head, saved_names, both, flipped=None):
    """The backward :data:`Graph`, from :func:`forward_model`'s saved outputs ``saved_names``
    (made with the same ``both``): ``dx0``, and ``dx1`` when ``both``. ``flipped``: a dict
    the caller keeps of :func:`flip_filters` per constant (filled as needed)."""
    _check(trace, head)
    flipped = {} if flipped is None else flipped

    def flip(name):
        if name not in flipped:
            flipped[name] = flip_filters(trace.constants[name])
        return flipped[name]

    b = _Builder("lpips_backward")
    saved = [{}, {}]  # per side: trace name -> graph input
    for n in saved_names:
        side, name = n[len("saved"):].split("/", 1)
        saved[int(side)][name] = n
    b.graph.input.extend(_saved_info(n) for n in saved_names)
    b.graph.input.extend(_value_info("g{}".format(k), ["N", 1, None, None])
                         for k in range(len(head.entries)))
    b.graph.input.extend(_value_info(name, ["N"] + list(shape)) for name, shape in trace.masks)
    masks = {name: name for name, _ in trace.masks}
    sides = (0, 1) if both else (0,)
    grads = [{} for _ in sides]
    for k, entry in enumerate(head.entries):
        tap = trace.taps[entry.tap]
        feats = [_modified(b, saved[side][tap], entry.modifier) for side in (0, 1)]
        terms = [_HeadTerms(b, f, head, trace.shapes[tap][0]) for f in feats]
        difference, _ = _entry_map(b, head, entry, *terms)
        # d map / d unit0 = 2 G w (u0 - u1); for unit1 its negative.
        weighted = difference if entry.weight is None else b.op(
            "Mul", [difference, b.const(entry.weight, "lin")])
        scale = b.op("Mul", ["g{}".format(k), b.const(np.float32(2.0))])
        for side in sides:
            d_feat = terms[side].gradient(b, weighted, scale if side == 0 else b.op("Neg", [scale]))
            if entry.modifier == "mean":
                c, h, w = trace.shapes[tap]
                d_feat = b.op("Expand", [b.op("Mul", [d_feat, b.const(np.float32(1.0 / (h * w)))]),
                                         b.op("Shape", [saved[side][tap]])])
            grads[side][tap] = d_feat if tap not in grads[side] else b.op(
                "Add", [grads[side][tap], d_feat])
    for side in sides:
        dx = _trunk_adjoint(b, trace, grads[side], saved[side], masks, flip)
        b.op("Identity", [dx], "dx{}".format(side))
    b.graph.output.extend(_value_info("dx{}".format(side), ["N", 3, None, None]) for side in sides)
    return b.model()
