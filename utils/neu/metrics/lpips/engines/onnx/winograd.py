# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Winograd convolutions for the exported ONNX trunk.

ONNX Runtime's CPU convolutions already run near the machine's matrix-multiply peak, so the
only way to be faster is to multiply less. Winograd's minimal filtering F(m, r) computes an
m x m output tile of an r x r convolution from an alpha x alpha input tile (alpha = m + r - 1)
with alpha^2 multiplies per channel pair instead of m^2 r^2: 4x fewer for F(4, 3), 2.8x for
F(2, 5). This module rewrites the eligible ``Conv`` nodes of an ONNX graph into that
algorithm, written with plain ONNX operators and dynamic in batch and size:

    input tiles d -> V = B^T d B  (cheap: small integer matrices)
    M[xi, nu] = U[xi, nu] @ V[xi, nu]   with U = G g G^T in float64, then float32
    y = A^T M A

U is 4x the size of the filters for F(4, 3). The rewrite records which filters each U is
made from (:data:`DERIVED_KEY` in the model's metadata), so that a cache can store the
filters alone and make U again with :func:`filter_transform` when it loads the graph.

The rounding differs from a direct convolution. With the interpolation points below (0, +-1,
+-2 and infinity) LPIPS scores move by about 1e-6 at most (measured against the golden values
and the NNabla graph; the tests hold them to 1e-5). Larger tiles, F(3, 5) and F(4, 5) with
+-1/2 as points, were measured too: faster for AlexNet, but 1.1e-5 off on spatial maps.
"""
import json
from fractions import Fraction

import numpy as np
from onnx import helper, numpy_helper

from .graph import GraphBuilder, drop_unread

# Output tile size per kernel size, by default. Larger tiles multiply less but round worse,
# and waste more where they overhang the map.
TILE_FOR_KERNEL = {3: 4, 5: 2}
POINTS = (0, 1, -1, 2, -2)  # interpolation points before infinity, for alpha = 6
# Below these channel counts the transforms cost more than the multiplies saved (measured
# per layer with ONNX Runtime on 2 cores: 64 -> 64 channels is 1.5x slower, 64 -> 128 even).
MIN_INPUT_CHANNELS, MIN_OUTPUT_CHANNELS = 64, 128
# Metadata of a rewritten model: JSON {U's initializer: {"from": its filters' initializer,
# "m": m}}; the filters' initializer may be gone from the graph (nothing else reads it).
DERIVED_KEY = "lpips.winograd.filter_transforms"


def _poly_mul(p, q):
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def transforms(m, r):
    """The Cook-Toom matrices (A^T, G, B^T) of F(m, r), as float64 arrays, for the
    correlation y[i] = sum_k g[k] d[i + k] = A^T ((G g) * (B^T d))."""
    alpha = m + r - 1
    points = [Fraction(p) for p in POINTS[:alpha - 1]]
    if len(points) != alpha - 1:
        raise ValueError("F({}, {}) needs {} points".format(m, r, alpha - 1))
    n = alpha - 1
    at = [[p ** i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    g = []
    for j, p in enumerate(points):
        f = Fraction(1)
        for k, q in enumerate(points):
            if k != j:
                f *= p - q
        g.append([p ** k / f for k in range(r)])
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    # Row j of B^T: coefficients of prod_{k != j} (x - p_k); last row: of prod_k (x - p_k).
    bt = []
    for j in range(n + 1):
        poly = [Fraction(1)]
        for k, q in enumerate(points):
            if k != j:
                poly = _poly_mul(poly, [-q, Fraction(1)])
        bt.append(poly + [Fraction(0)] * (alpha - len(poly)))
    as_array = lambda rows: np.array([[float(v) for v in row] for row in rows])  # noqa: E731
    return as_array(at), as_array(g), as_array(bt)


def _arange(g, stop, step=1):
    return g.op("Mul", [g.op("Range", [g.ints(0), g.op("Squeeze", [stop]), g.ints(1)]), g.ints(step)])


def filter_transform(weight, m):
    """U (alpha^2, C_in, C_out) float32 for the filters ``weight`` (C_out, C_in, r, r):
    U[xi * alpha + nu, i, o] = (G w[o, i] G^T)[xi, nu], computed in float64."""
    c_out, c_in, r, _ = weight.shape
    alpha = m + r - 1
    gm = transforms(m, r)[1]
    # sum_kl G[xi, k] G[nu, l] w[k, l]: a product by the Kronecker matrix (alpha^2, r^2),
    # a few input channels at a time so the float64 intermediate stays small.
    kron = np.einsum("ak,bl->abkl", gm, gm).reshape(alpha * alpha, r * r)
    filters = np.asarray(weight, np.float32).reshape(c_out, c_in, r * r).transpose(2, 1, 0)
    u = np.empty((alpha * alpha, c_in, c_out), np.float32)
    step = max(1, 8192 // c_out)
    for i in range(0, c_in, step):
        block = filters[:, i:i + step].astype(np.float64).reshape(r * r, -1)
        u[:, i:i + step] = (kron @ block).reshape(alpha * alpha, -1, c_out)
    return u


def _winograd_conv(g, x, u, weight_shape, bias, pad, m, output):
    """Appends nodes computing ``output`` = Conv(x, weight, bias) with stride 1 and ``pad`` on
    every side, by Winograd's F(m, r), from ``u`` (the name of the weight's
    :func:`filter_transform`) and ``bias`` (a name, or None). ``x`` and ``output`` are in
    (H, W, N, C) layout, where a pixel of every image and channel is one contiguous row."""
    c_out, c_in, r, _ = weight_shape
    alpha = m + r - 1
    at, _, bt = transforms(m, r)
    bt, at = bt.astype(np.float32), at.astype(np.float32)

    shape = g.op("Shape", [x])
    height, width, batch = (g.op("Slice", [shape, g.ints(a), g.ints(a + 1)]) for a in range(3))
    out_h, out_w = (g.op("Add", [v, g.ints(2 * pad - r + 1)]) for v in (height, width))
    th, tw = (g.op("Div", [g.op("Add", [v, g.ints(m - 1)]), g.ints(m)]) for v in (out_h, out_w))
    # Pad to the tiles' extent, (tiles - 1) * m + alpha, and flatten the pixels.
    pad_h, pad_w = (g.op("Sub", [g.op("Add", [g.op("Mul", [t, g.ints(m)]), g.ints(alpha - m - pad)]),
                                 v]) for t, v in ((th, height), (tw, width)))
    pads = g.op("Concat", [g.ints(pad, pad, 0, 0), pad_h, pad_w, g.ints(0, 0)], axis=0)
    rows_of = lambda c: g.op("Concat", [g.ints(-1), batch, g.ints(c)], axis=0)  # noqa: E731
    xp = g.op("Reshape", [g.op("Pad", [x, pads]), rows_of(c_in)])  # (Hp * Wp, N, C)
    padded_w = g.op("Add", [g.op("Mul", [tw, g.ints(m)]), g.ints(alpha - m)])
    # Input tiles d (xi, nu, th, tw, N, C): pixel (th * m + xi, tw * m + nu), one Gather.
    tile_rows = g.op("Add", [g.op("Unsqueeze", [_arange(g, th, m), g.ints(1)]),
                             g.const(np.arange(alpha).reshape(-1, 1, 1, 1))])  # (alpha, 1, th, 1)
    tile_cols = g.op("Add", [_arange(g, tw, m), g.const(np.arange(alpha).reshape(1, -1, 1, 1))])
    index = g.op("Add", [g.op("Mul", [tile_rows, padded_w]), tile_cols])
    d = g.op("Gather", [xp, index], axis=0)
    # V = B^T d B, separably (xi, then nu), then one product per tile position.
    v = g.op("MatMul", [g.const(bt, "BT"), g.op("Reshape", [d, g.ints(alpha, -1)])])
    v = g.op("MatMul", [g.const(bt, "BT"), g.op("Reshape", [v, g.ints(alpha, alpha, -1)])])
    prod = g.op("MatMul", [g.op("Reshape", [v, g.ints(alpha * alpha, -1, c_in)]), u])
    # Y = A^T M A, separably: (i, j, th, tw, N, C_out).
    y = g.op("MatMul", [g.const(at, "AT"), g.op("Reshape", [prod, g.ints(alpha, -1)])])
    y = g.op("MatMul", [g.const(at, "AT"), g.op("Reshape", [y, g.ints(m, alpha, -1)])])
    y = g.op("Reshape", [y, rows_of(c_out)])
    # Output pixel (h, w) is Y[h % m, w % m, h // m, w // m]: one Gather, cropped.
    tiles = g.op("Mul", [th, tw])
    rows, cols = _arange(g, out_h), _arange(g, out_w)
    row_index = g.op("Add", [g.op("Mul", [g.op("Mod", [rows, g.ints(m)]), g.op("Mul", [tiles, g.ints(m)])]),
                             g.op("Mul", [g.op("Div", [rows, g.ints(m)]), tw])])
    col_index = g.op("Add", [g.op("Mul", [g.op("Mod", [cols, g.ints(m)]), tiles]),
                             g.op("Div", [cols, g.ints(m)])])
    index = g.op("Add", [g.op("Unsqueeze", [row_index, g.ints(1)]), col_index])
    y = g.op("Gather", [y, index], axis=0)
    if bias is None:
        return g.op("Identity", [y], output)
    return g.op("Add", [y, bias], output)


def _winograd_pad(node, weight, tiles):
    """The padding of a Conv that Winograd should compute (stride 1, no dilation or groups,
    the same padding on every side, a square kernel of a size in ``tiles``, enough channels),
    or None for one it should leave alone."""
    attrs = {a.name: a for a in node.attribute}
    ints = lambda key, default: list(attrs[key].ints) if key in attrs else default  # noqa: E731
    c_out, c_in, kh, kw = weight.shape
    pads = ints("pads", [0, 0, 0, 0])
    eligible = (kh == kw and kh in tiles and c_in >= MIN_INPUT_CHANNELS
                and c_out >= MIN_OUTPUT_CHANNELS
                and ints("strides", [1, 1]) == [1, 1] and ints("dilations", [1, 1]) == [1, 1]
                and (attrs["group"].i if "group" in attrs else 1) == 1
                and len(set(pads)) == 1 and "auto_pad" not in attrs)
    return pads[0] if eligible else None


_LAYOUT_FREE = {"Relu"}  # operators that act the same in (H, W, N, C) as in (N, C, H, W)


def _to_pixel_rows(g, x, channels):
    """(N, C, H, W) -> (H, W, N, C). As a 3-D transpose, which ONNX Runtime does ~8x faster
    than the equivalent 4-D one."""
    hw = g.op("Slice", [g.op("Shape", [x]), g.ints(2), g.ints(4)])
    x = g.op("Reshape", [x, g.op("Concat", [g.ints(-1), hw], axis=0)])
    x = g.op("Transpose", [x], perm=[1, 2, 0])
    return g.op("Reshape", [x, g.ints(0, 0, -1, channels)])


def _from_pixel_rows(g, x, channels, output):
    """(H, W, N, C) -> (N, C, H, W), likewise."""
    hw = g.op("Slice", [g.op("Shape", [x]), g.ints(0), g.ints(2)])
    x = g.op("Transpose", [g.op("Reshape", [x, g.ints(0, 0, -1)])], perm=[2, 0, 1])
    return g.op("Reshape", [x, g.op("Concat", [g.ints(-1, channels), hw], axis=0)], output)


def rewrite(model, tiles=None):
    """Replaces, in place, the eligible ``Conv`` nodes of ``model`` (an ONNX ModelProto) by
    Winograd subgraphs, returning how many were replaced. ``tiles`` maps a kernel size to the
    output tile size m of F(m, r) (default ``TILE_FOR_KERNEL``); other kernels stay direct.

    Winograd layers work in (H, W, N, C) layout; tensors between them stay in it (through
    ReLU) and are transposed back only where something else reads them."""
    tiles = TILE_FOR_KERNEL if tiles is None else tiles
    graph = model.graph
    derived = {}  # U's name -> {"from": the filters' name, "m": m}
    weights = {t.name: t for t in graph.initializer}
    nodes = list(graph.node)
    del graph.node[:]
    rowwise = {}  # name -> the same tensor in (H, W, N, C) layout
    channels = {}  # name -> its number of channels, for those in rowwise
    plain = {i.name for i in graph.input} | set(weights)  # names that exist in (N, C, H, W)

    def as_plain(name):
        if name not in plain:
            _from_pixel_rows(GraphBuilder(graph, name + "/to_nchw"), rowwise[name], channels[name], name)
            plain.add(name)
        return name

    def as_rowwise(name, c):
        if name not in rowwise:
            rowwise[name] = _to_pixel_rows(GraphBuilder(graph, name + "/to_hwnc"), name, c)
            channels[name] = c
        return rowwise[name]

    replaced = 0
    for node in nodes:
        w, pad = None, None
        if node.op_type == "Conv" and node.input[1] in weights:
            w = numpy_helper.to_array(weights[node.input[1]])
            pad = _winograd_pad(node, w, tiles) if w.ndim == 4 else None
        out = node.output[0]
        if pad is not None:
            bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
            rowwise[out], channels[out] = out + "/hwnc", w.shape[0]
            m, g = tiles[w.shape[2]], GraphBuilder(graph, out + "/winograd")
            u = g.const(filter_transform(w, m), "U")
            derived[u] = {"from": node.input[1], "m": m}
            _winograd_conv(g, as_rowwise(node.input[0], w.shape[1]), u, w.shape, bias, pad, m,
                           rowwise[out])
            replaced += 1
        elif node.op_type in _LAYOUT_FREE and node.input[0] not in plain:
            rowwise[out], channels[out] = out + "/hwnc", channels[node.input[0]]
            moved = helper.make_node(node.op_type, [rowwise[node.input[0]]], [rowwise[out]])
            moved.attribute.extend(node.attribute)
            graph.node.append(moved)
        else:
            for name in node.input:
                if name:
                    as_plain(name)
            graph.node.append(node)
            plain.update(node.output)
    for value in graph.output:
        as_plain(value.name)
    drop_unread(graph)
    if derived:
        entries = [p for p in model.metadata_props if p.key == DERIVED_KEY]
        entry = entries[0] if entries else model.metadata_props.add(key=DERIVED_KEY)
        derived.update(json.loads(entry.value or "{}"))
        entry.value = json.dumps(derived, sort_keys=True)
    return replaced
