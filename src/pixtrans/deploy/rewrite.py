"""Exact rewrites of an exported ONNX graph that ONNX Runtime's CPU kernels run faster.

The exported file stays as it is (plain Conv / ConvTranspose, what other runtimes expect); the
ONNX Runtime backend and the int8 quantizer apply these to their own copy:

    model = for_onnxruntime(model)   # = the three below, in this order

- fold_batchnorm: a BatchNormalization that alone reads a ConvTranspose becomes its weight/bias.
- conv_transpose_to_subpixel: ONNX Runtime's CPU provider has no integer ConvTranspose, so in an
  int8 model the decoders (half of a U-Net's FLOPs) would stay in float. A stride-s ConvTranspose
  whose output is exactly s times its input is the same function as s*s ordinary convolutions (one
  per output phase, each reading only the kernel taps that land on that phase) whose outputs
  interleave with DepthToSpace ("sub-pixel" form). Those Convs quantize; same FLOPs.
- widen_narrow_convs: a Conv with fewer than MIN_OUT_CHANNELS outputs (the RGB output layer) gets
  zero filters up to that many, sliced off after; the integer kernel is about 7x slower on 3
  outputs than on 16 (ResNet-9's 7x7 64->3 at 256x256: 62 ms vs 8.8 ms, AMX Xeon).

Per axis, with kernel K, stride s, pads (p_begin, p_end), output padding op and K + op - p_begin
- p_end == s, output row o = s*q + a (phase a) reads input row i = q - d through tap
k = s*d + a + p_begin for every integer d with 0 <= k < K: a correlation over rows q - d_max ...
q - d_min, i.e. a Conv with kernel length d_max - d_min + 1, padded d_max before and -d_min after.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixtrans.deploy import require

MIN_OUT_CHANNELS = 16


def _attrs(node) -> dict[str, Any]:
    helper = require("onnx").helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _phase_taps(K: int, s: int, p_begin: int, a: int) -> tuple[list[int], int, int]:
    """(kernel taps in correlation order, pad before, pad after) of output phase `a` on one axis."""
    ds = [d for d in range(-K, K + 1) if 0 <= s * d + a + p_begin < K]
    if not ds:
        return [], 0, 0
    d_min, d_max = min(ds), max(ds)
    return [s * (d_max - j) + a + p_begin for j in range(d_max - d_min + 1)], d_max, -d_min


def _subpixel_plan(attrs: dict[str, Any], w: np.ndarray):
    """The per-phase (taps_h, taps_w, pads) of a 2-D ConvTranspose, or None where not exact."""
    if w.ndim != 4 or attrs.get("group", 1) != 1 or "output_shape" in attrs:
        return None
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    K = w.shape[2:]
    strides = attrs.get("strides", [1, 1])
    pads = attrs.get("pads", [0, 0, 0, 0])
    out_pad = attrs.get("output_padding", [0, 0])
    if any(d != 1 for d in attrs.get("dilations", [1, 1])) or strides[0] != strides[1] or strides[0] < 2:
        return None
    s = strides[0]
    for axis in range(2):
        if K[axis] + out_pad[axis] - pads[axis] - pads[axis + 2] != s:  # output must be s * input
            return None
    phases = []
    for a_h in range(s):
        for a_w in range(s):  # DepthToSpace DCR order: channel (a_h * s + a_w) * C_out + c
            th, bh, eh = _phase_taps(K[0], s, pads[0], a_h)
            tw, bw, ew = _phase_taps(K[1], s, pads[1], a_w)
            if not th or not tw or min(bh, eh, bw, ew) < 0:
                return None
            phases.append((th, tw, [bh, bw, eh, ew]))
    return s, phases


def _constants(graph) -> dict[str, np.ndarray]:
    """Initializers by name, and the Identity outputs that alias them (the exporter dedups equal
    tensors, e.g. fresh BatchNorm statistics, through Identity nodes)."""
    nh = require("onnx").numpy_helper
    values = {t.name: nh.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


def _consumers(graph) -> dict[str, list]:
    uses: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
    return uses


def fold_batchnorm(model):
    """Fold each inference-mode BatchNormalization that alone reads a ConvTranspose into it."""
    onnx = require("onnx")
    nh = onnx.numpy_helper
    graph = model.graph
    consts = _constants(graph)
    uses = _consumers(graph)
    graph_outputs = {o.name for o in graph.output}
    drop = []
    for node in graph.node:
        if node.op_type != "ConvTranspose" or node.output[0] in graph_outputs:
            continue
        readers = uses.get(node.output[0], [])
        if len(readers) != 1 or readers[0].op_type != "BatchNormalization":
            continue
        bn = readers[0]
        has_bias = len(node.input) > 2 and bool(node.input[2])
        needed = [node.input[1], *bn.input[1:5]] + ([node.input[2]] if has_bias else [])
        if len(bn.output) != 1 or not all(n in consts for n in needed) or _attrs(node).get("group", 1) != 1:
            continue
        if _attrs(bn).get("training_mode", 0):  # batch statistics: not a fixed affine map
            continue
        gamma, beta, mean, var = (consts[n].astype(np.float64) for n in bn.input[1:5])
        scale = gamma / np.sqrt(var + _attrs(bn).get("epsilon", 1e-5))  # y = (x - mean) * scale + beta
        w = consts[node.input[1]]  # [C_in, C_out, kH, kW]
        b = consts[node.input[2]] if has_bias else np.zeros(w.shape[1])
        base = bn.output[0] + "_folded"
        w_folded, b_folded = w * scale[None, :, None, None], (b - mean) * scale + beta
        graph.initializer.append(nh.from_array(w_folded.astype(np.float32), base + "_w"))
        graph.initializer.append(nh.from_array(b_folded.astype(np.float32), base + "_b"))
        node.input[:] = [node.input[0], base + "_w", base + "_b"]
        node.output[0] = bn.output[0]
        drop.append(bn)
    for bn in drop:
        graph.node.remove(bn)
    _drop_unused(graph)
    return model


def conv_transpose_to_subpixel(model):
    """Replace every exact-rewritable ConvTranspose by per-phase Convs + Concat + DepthToSpace."""
    onnx = require("onnx")
    helper, nh = onnx.helper, onnx.numpy_helper
    graph = model.graph
    consts = _constants(graph)
    new_nodes = []
    for node in graph.node:
        plan = None
        if node.op_type == "ConvTranspose" and node.input[1] in consts:
            bias_ok = len(node.input) < 3 or not node.input[2] or node.input[2] in consts
            w = consts[node.input[1]]  # [C_in, C_out, kH, kW]
            plan = _subpixel_plan(_attrs(node), w) if bias_ok else None
        if plan is None:
            new_nodes.append(node)
            continue
        s, phases = plan
        has_bias = len(node.input) > 2 and bool(node.input[2])
        phase_outputs = []
        for i, (th, tw, pads) in enumerate(phases):
            base = f"{node.output[0]}_phase{i}"
            wp = np.ascontiguousarray(w[:, :, th][:, :, :, tw].transpose(1, 0, 2, 3))  # [C_out, C_in, h, w]
            graph.initializer.append(nh.from_array(wp.astype(np.float32), base + "_w"))
            inputs = [node.input[0], base + "_w"] + ([node.input[2]] if has_bias else [])
            new_nodes.append(
                helper.make_node(
                    "Conv", inputs, [base], name=base, kernel_shape=list(wp.shape[2:]), pads=pads
                )
            )
            phase_outputs.append(base)
        cat = node.output[0] + "_phases"
        new_nodes.append(helper.make_node("Concat", phase_outputs, [cat], name=cat, axis=1))
        new_nodes.append(
            helper.make_node(
                "DepthToSpace", [cat], [node.output[0]], name=node.output[0] + "_d2s", blocksize=s, mode="DCR"
            )
        )
    del graph.node[:]
    graph.node.extend(new_nodes)
    _drop_unused(graph)
    return model


def _drop_unused(graph) -> None:
    """Remove Identity nodes and initializers nothing reads any more."""
    while True:
        used = {n for node in graph.node for n in node.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type == "Identity" and n.output[0] not in used]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used |= {i.name for i in graph.input}  # an initializer listed as an input stays feedable
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)


def widen_narrow_convs(model, min_channels: int = MIN_OUT_CHANNELS):
    """Give each Conv with fewer than `min_channels` outputs zero filters up to that many, and
    slice the extra channels off its output (same values; module docstring)."""
    onnx = require("onnx")
    helper, nh = onnx.helper, onnx.numpy_helper
    graph = model.graph
    consts = _constants(graph)
    new_nodes = []
    for node in graph.node:
        w = consts.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if w is None or w.shape[0] >= min_channels or _attrs(node).get("group", 1) != 1:
            new_nodes.append(node)
            continue
        has_bias = len(node.input) > 2 and bool(node.input[2])
        if has_bias and node.input[2] not in consts:
            new_nodes.append(node)
            continue
        c_out, out = w.shape[0], node.output[0]
        wide = np.zeros((min_channels, *w.shape[1:]), np.float32)
        wide[:c_out] = w
        bias = np.zeros(min_channels, np.float32)
        bias[:c_out] = consts[node.input[2]] if has_bias else 0.0
        base = out + "_wide"
        graph.initializer.extend(
            [
                nh.from_array(wide, base + "_w"),
                nh.from_array(bias, base + "_b"),
                nh.from_array(np.array([0], np.int64), base + "_start"),
                nh.from_array(np.array([c_out], np.int64), base + "_end"),
                nh.from_array(np.array([1], np.int64), base + "_axis"),
            ]
        )
        node.input[:] = [node.input[0], base + "_w", base + "_b"]
        node.output[0] = base
        new_nodes.append(node)
        new_nodes.append(
            helper.make_node(
                "Slice", [base, base + "_start", base + "_end", base + "_axis"], [out], name=base + "_slice"
            )
        )
    del graph.node[:]
    graph.node.extend(new_nodes)
    _drop_unused(graph)
    return model


def for_onnxruntime(model):
    """All of this module's rewrites, in order (module docstring)."""
    return widen_narrow_convs(conv_transpose_to_subpixel(fold_batchnorm(model)))
