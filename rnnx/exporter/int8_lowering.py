"""GRU and RNN layers rewritten into graphs that onnxruntime's int8 quantizer can quantize.

onnxruntime's `quantize_dynamic` makes native LSTM nodes DynamicQuantizeLSTM and MatMuls
integer MatMuls; it has no quantized GRU or RNN kernel and leaves those nodes in fp32. So each
native GRU/RNN node (all its directions) becomes, here:
  - the input projection of every time step and direction as ONE MatMul (X·Wᵀ, biases added),
  - one Scan over time whose body is the cell of each direction, with its recurrent MatMul
    (h·Rᵀ) and the gate arithmetic in fp32;
and quantize_dynamic (subgraphs enabled) then quantizes both MatMuls, which onnxruntime fuses
into DynamicQuantizeMatMul at load. Feeding precomputed gates to the native op instead (its W
set to the identity) would add a (3H × 3H) fp32 GEMM per time step, more arithmetic than the
layer has, and leave the recurrence in fp32; the recurrence is what costs at batch 1.
Gemm nodes inside Scan/Loop bodies (the projected LSTM's cell) become MatMul + Add: Gemm is not
among the quantizer's dynamic ops.

What a GRU step costs in onnxruntime 1.32 (hidden 256, batch 1, 1 thread, measured here): the
int8 recurrent product 2.1 µs (fp32: 7 µs, the native GRU's whole step is ~9 µs), the Scan
iteration 0.65 µs, and the cell's 11 other nodes ~0.35 µs each: 6.8 µs a step. So at batch 1
the int8 GRU is bounded by node dispatch at ~0.35-0.38× eager (2 layers × 100 steps), not by
the arithmetic; at batch 64 × 200 it is 0.24-0.28× (fp32 ONNX 0.48-0.52×). A cell of fewer
nodes is what would go further (splitting the input gates outside the Scan took one Split a
step off: 7.4 -> 6.8 µs).

Written with onnx.helper because no library rewrites a recurrent node into a cell: the torch
exporter's lowering (lowering.py) targets the native ops every runtime reads; this graph is
for the int8 artifact only.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_RECURRENT = ("GRU", "RNN")


def lower_for_int8(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of `model` with its GRU/RNN nodes as MatMul + Scan cells, the Gemms of its
    subgraphs as MatMul + Add, and NaN in its float inputs zeroed (a recurrent node with
    sequence_lens or computed weights stays native); and the names of the MatMuls that read a
    graph input, which should stay fp32.

    The model's inputs (the user's features) have no known range: one scale per call for all
    of them lets a single outlier coarsen every value. Measured on GRU 2×256 (input 80, unit
    normal, the verifier's sizes): max abs error 7.1e-3 with the first layer's input projection
    in int8, 2.9e-3 with it in fp32 (the issue's bound is 5e-3), for +30 µs in 1.5 ms at batch
    1 × 100 and +8.5 ms in 60 ms at 64 × 200. Later layers read outputs of tanh/sigmoid cells,
    bounded by 1."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    names = _Names(graph)
    nodes: list[onnx.NodeProto] = []
    sequences = []
    for node in graph.node:
        lowered = _lower_recurrent(node, weights, names) if node.op_type in _RECURRENT else None
        if lowered is None:
            nodes.append(node)
            continue
        new_nodes, initializers, sequence = lowered
        nodes += new_nodes
        graph.initializer.extend(initializers)
        sequences += [sequence] if sequence else []
    nodes = _without_direction_axis(nodes, sequences, graph, weights)
    del graph.node[:]
    graph.node.extend(nodes)
    _gemm_to_matmul(graph, weights)
    _name_matmuls(graph, names)
    inputs = {value.name for value in graph.input}
    reading_inputs = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[0] in inputs]
    _zero_nan_inputs(graph, names)
    _drop_unused_initializers(graph)
    return model, reading_inputs


def _without_direction_axis(
    nodes: list[onnx.NodeProto], sequences: list, graph: onnx.GraphProto, weights: dict
) -> list[onnx.NodeProto]:
    """rnnx's lowering turns a native op's Y (time, directions, batch, hidden) into (time, batch,
    directions·hidden) with Transpose + Reshape (lowering._merge_directions), a copy of the
    whole sequence (4% of GRU 2×256 at batch 64 × 200). The Scan gives each direction's (time,
    batch, hidden): concatenated on the last axis, they are that result, with no copy."""
    consumers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
    for node in nodes:
        for name in node.input:
            consumers[name].append(node)
    outputs = {value.name for value in graph.output}
    replaced: dict[int, onnx.NodeProto | None] = {}
    for y_out, parts, stacking in sequences:
        transpose = consumers[y_out]
        if y_out in outputs or len(transpose) != 1 or transpose[0].op_type != "Transpose":
            continue
        perm = [list(a.ints) for a in transpose[0].attribute if a.name == "perm"]
        reshape = consumers[transpose[0].output[0]]
        if perm != [[0, 2, 1, 3]] or len(reshape) != 1 or reshape[0].op_type != "Reshape":
            continue
        shape = weights.get(reshape[0].input[1])
        if shape is None or numpy_helper.to_array(shape).tolist() != [0, 0, -1]:
            continue
        merged = (
            helper.make_node("Concat", parts, list(reshape[0].output), axis=-1)
            if len(parts) > 1
            else helper.make_node("Identity", parts, list(reshape[0].output))
        )
        replaced.update({id(node): None for node in (*stacking, transpose[0])})
        replaced[id(reshape[0])] = merged
    kept = [replaced.get(id(node), node) for node in nodes]
    return [node for node in kept if node is not None]


def _name_matmuls(graph: onnx.GraphProto, names: _Names) -> None:
    """Every top-level MatMul named: the quantizer excludes nodes by name."""
    for node in graph.node:
        if node.op_type == "MatMul" and not node.name:
            node.name = names("matmul")


class _Names:
    """Fresh value names, unused anywhere in the graph or its subgraphs."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self._taken = set(_all_names(graph))
        self._count = itertools.count()

    def __call__(self, hint: str) -> str:
        while True:
            name = f"int8/{hint}_{next(self._count)}"
            if name not in self._taken:
                self._taken.add(name)
                return name


def _all_names(graph: onnx.GraphProto):
    yield from (v.name for v in (*graph.input, *graph.output, *graph.initializer))
    for node in graph.node:
        yield from node.input
        yield from node.output
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _all_names(attribute.g)


def _lower_recurrent(
    node: onnx.NodeProto, weights: dict[str, onnx.TensorProto], names: _Names
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], Any] | None:
    inputs = list(node.input) + [""] * (6 - len(node.input))
    x, w, r, b, sequence_lens, initial_h = inputs[:6]
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    plain = (
        all(name in weights for name in (w, r)) and (not b or b in weights)
        and not sequence_lens and initial_h  # rnnx always passes the initial state
        and attributes.get("layout", 0) == 0 and "clip" not in attributes
        and (node.op_type == "RNN" or attributes.get("linear_before_reset", 0) == 1)
    )  # fmt: skip
    if not plain:
        return None  # left native: fp32, as onnxruntime's quantizer leaves it
    hidden = int(attributes["hidden_size"])
    direction = attributes.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    w_all, r_all = (numpy_helper.to_array(weights[n]) for n in (w, r))
    directions, gates = w_all.shape[0], w_all.shape[1]
    b_all = numpy_helper.to_array(weights[b]) if b else np.zeros((directions, 2 * gates), "f4")
    activations = [a.decode() if isinstance(a, bytes) else a
                   for a in attributes.get("activations", [])] or ["Tanh"] * directions  # fmt: skip
    layer = _Layer(node.op_type, hidden, names)
    cells = []
    for d in range(directions):
        reverse = direction == "reverse" or d == 1
        x_bias, recurrent_bias = _biases(node.op_type, b_all[d], hidden)
        cells.append(layer.cell(d, r_all[d].T, recurrent_bias, activations[d], reverse))
        layer.input_projection(w_all[d].T, x_bias)
    return layer.build(x, initial_h, cells, node.output)


def _biases(kind: str, b: np.ndarray, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """(bias added to the input projection, bias of the recurrent MatMul). GRU: the candidate
    gate's recurrent bias is inside r ⊙ (h·Rₕᵀ + Rbₕ), so it stays with the recurrence."""
    gates = b.shape[0] // 2
    input_bias, recurrent_bias = b[:gates].copy(), b[gates:].copy()
    if kind == "RNN":
        return input_bias + recurrent_bias, np.zeros_like(recurrent_bias)
    input_bias[: 2 * hidden] += recurrent_bias[: 2 * hidden]
    recurrent_bias[: 2 * hidden] = 0.0
    return input_bias, recurrent_bias


@dataclasses.dataclass
class _Cell:
    """One direction's part of the Scan body."""

    state: str  # h, the body's state input
    scanned: list[str]  # its scan inputs: the input gates of this step
    state_out: str  # h', the body's state output
    output: str  # h' again, as the scan output
    nodes: list[onnx.NodeProto]
    reverse: bool


class _Layer:
    """The nodes of one rewritten GRU/RNN node: one input projection, one Scan."""

    def __init__(self, kind: str, hidden: int, names: _Names) -> None:
        self.kind, self.hidden, self.names = kind, hidden, names
        self.initializers: list[onnx.TensorProto] = []
        self.projections: list[tuple[np.ndarray, np.ndarray]] = []

    def constant(self, hint: str, value: np.ndarray) -> str:
        name = self.names(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def input_projection(self, w_t: np.ndarray, bias: np.ndarray) -> None:
        self.projections.append((w_t, bias))

    def cell(
        self, d: int, r_t: np.ndarray, bias: np.ndarray, activation: str, reverse: bool
    ) -> _Cell:
        """The body of direction `d`."""
        n = self.names
        h, h_next, y = n(f"h{d}"), n(f"h_next{d}"), n(f"y{d}")
        recurrent, gh = n(f"hR{d}"), n(f"gh{d}")
        nodes = [
            helper.make_node("MatMul", [h, self.constant(f"R{d}", r_t.astype("f4"))], [recurrent]),
            helper.make_node("Add", [recurrent, self.constant(f"Rb{d}", bias.astype("f4"))], [gh]),
        ]
        if self.kind == "RNN":
            x_gates = [n(f"x{d}")]
            total = n(f"pre{d}")
            nodes += [
                helper.make_node("Add", [x_gates[0], gh], [total]),
                helper.make_node(activation, [total], [h_next]),
            ]
        else:
            nodes_, x_gates = self._gru_cell(d, h, gh, h_next)
            nodes += nodes_
        nodes.append(helper.make_node("Identity", [h_next], [y]))  # one value, two outputs
        return _Cell(h, x_gates, h_next, y, nodes, reverse)

    def _gru_cell(self, d: int, h: str, gh: str, h_next: str):
        """ONNX GRU with linear_before_reset=1 (PyTorch's GRU), gates (z, r | candidate):
        z, r = σ(x_zr + h·R_zrᵀ); n = tanh(x_n + r ⊙ (h·R_nᵀ + Rb_n)); h' = n + z ⊙ (h - n).
        The input gates arrive split in two scan inputs: no Split of them per step."""
        n = self.names
        x_zr, x_n = n(f"x_zr{d}"), n(f"x_n{d}")
        gh_zr, gh_n, zr_pre, zr, z, r = (n(f"{s}{d}") for s in ("gh_zr", "gh_n", "zr_pre", "zr",
                                                                 "z", "r"))  # fmt: skip
        r_gh, n_pre, cand, diff, keep = (n(f"{s}{d}") for s in ("r_gh", "n_pre", "n", "diff",
                                                                "keep"))  # fmt: skip
        split = self.constant("split", np.array([2 * self.hidden, self.hidden], np.int64))
        nodes = [
            helper.make_node("Split", [gh, split], [gh_zr, gh_n], axis=-1),
            helper.make_node("Add", [x_zr, gh_zr], [zr_pre]),
            helper.make_node("Sigmoid", [zr_pre], [zr]),
            helper.make_node("Split", [zr], [z, r], axis=-1, num_outputs=2),
            helper.make_node("Mul", [r, gh_n], [r_gh]),
            helper.make_node("Add", [x_n, r_gh], [n_pre]),
            helper.make_node("Tanh", [n_pre], [cand]),
            helper.make_node("Sub", [h, cand], [diff]),
            helper.make_node("Mul", [z, diff], [keep]),
            helper.make_node("Add", [cand, keep], [h_next]),
        ]
        return nodes, [x_zr, x_n]

    def build(self, x: str, initial_h: str, cells: list[_Cell], outputs) -> tuple[list, list, Any]:
        """The layer's nodes, its initializers, and (Y, each direction's output, the nodes
        stacking them) for _without_direction_axis."""
        n, hidden = self.names, self.hidden
        directions = len(cells)
        w_t = np.concatenate([w for w, _ in self.projections], axis=1).astype("f4")
        bias = np.concatenate([b for _, b in self.projections]).astype("f4")
        projected, gates = n("xW"), n("x_gates")
        nodes = [
            helper.make_node("MatMul", [x, self.constant("W", w_t)], [projected]),
            helper.make_node("Add", [projected, self.constant("Wb", bias)], [gates]),
        ]
        # Per direction, the scan inputs in the cell's order: GRU (zr, n), RNN (all).
        widths = [2 * hidden, hidden] if self.kind == "GRU" else [hidden]
        scan_inputs = [n("x_part") for _ in range(directions * len(widths))]
        sizes = self.constant("widths", np.array(widths * directions, np.int64))
        nodes.append(helper.make_node("Split", [gates, sizes], scan_inputs, axis=-1))
        h0 = [n("h0") for _ in range(directions)]
        if directions == 1:
            nodes.append(helper.make_node("Squeeze", [initial_h, self.constant("axis", _i64(0))],
                                          h0))  # fmt: skip
        else:
            halves = [n("h0_split") for _ in range(directions)]
            nodes.append(helper.make_node("Split", [initial_h], halves, axis=0,
                                          num_outputs=directions))  # fmt: skip
            axis = self.constant("axis", _i64(0))
            nodes += [helper.make_node("Squeeze", [s, axis], [h]) for s, h in zip(halves, h0)]
        h_n = [n("h_n") for _ in range(directions)]
        y = [n("y") for _ in range(directions)]
        body = _body(cells, self.kind)
        reverse = [int(c.reverse) for c in cells]
        nodes.append(
            helper.make_node(
                "Scan", [*h0, *scan_inputs], [*h_n, *y], body=body,
                num_scan_inputs=len(scan_inputs),
                scan_input_directions=[rev for rev in reverse for _ in widths],
                scan_output_directions=reverse,
            )
        )  # fmt: skip
        y_out, h_out = (list(outputs) + ["", ""])[:2]
        stacking = self.stack(y, 1, y_out)
        nodes += stacking + self.stack(h_n, 0, h_out)
        return nodes, self.initializers, (y_out, y, stacking) if y_out else None

    def stack(self, values: list[str], axis: int, out: str) -> list[onnx.NodeProto]:
        """The directions' tensors stacked on a new `axis`, as the native op's outputs are."""
        if not out:
            return []
        where = self.constant("axis", _i64(axis))
        if len(values) == 1:
            return [helper.make_node("Unsqueeze", [values[0], where], [out])]
        expanded = [self.names("stack") for _ in values]
        nodes = [helper.make_node("Unsqueeze", [v, where], [e]) for v, e in zip(values, expanded)]
        return nodes + [helper.make_node("Concat", expanded, [out], axis=axis)]


def _body(cells: list[_Cell], kind: str) -> onnx.GraphProto:
    def value(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)

    states = [value(c.state) for c in cells]
    scanned = [value(x) for c in cells for x in c.scanned]
    outputs = [value(c.state_out) for c in cells] + [value(c.output) for c in cells]
    nodes = [node for c in cells for node in c.nodes]
    return helper.make_graph(nodes, f"int8_{kind.lower()}_cell", states + scanned, outputs)


def _i64(value: int) -> np.ndarray:
    return np.array([value], np.int64)


def _gemm_to_matmul(graph: onnx.GraphProto, weights: dict[str, onnx.TensorProto]) -> None:
    """In Scan/Loop bodies: Gemm(a, B, c) with a constant B, no transposes and unit scales ->
    MatMul + Add, which quantize_dynamic quantizes (its dynamic ops have no Gemm)."""
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _rewrite_gemms(attribute.g, weights)


def _rewrite_gemms(body: onnx.GraphProto, weights: dict[str, onnx.TensorProto]) -> None:
    nodes = []
    for node in body.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (
            node.op_type == "Gemm" and node.input[1] in weights and len(node.input) == 3
            and all(attributes.get(k, 0) == 0 for k in ("transA", "transB"))
            and all(attributes.get(k, 1.0) == 1.0 for k in ("alpha", "beta"))
        )  # fmt: skip
        if not plain:
            nodes.append(node)
            continue
        product = f"{node.output[0]}/matmul"
        nodes.append(helper.make_node("MatMul", node.input[:2], [product]))
        nodes.append(helper.make_node("Add", [product, node.input[2]], list(node.output)))
    del body.node[:]
    body.node.extend(nodes)
    _gemm_to_matmul(body, weights)


def _zero_nan_inputs(graph: onnx.GraphProto, names: _Names) -> None:
    """Dynamic quantization takes one scale per tensor, batch included: a NaN in one sequence
    would reach the others through it. The graph zeroes NaN in its float inputs, and the
    session gives the sequences that had one NaN back (runtimes/non_finite.py)."""
    guarded = {}
    nodes = []
    for value in graph.input:
        if value.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        clean, is_nan = names(f"{value.name}_no_nan"), names(f"{value.name}_is_nan")
        zero = names("zero")
        graph.initializer.append(numpy_helper.from_array(np.array(0.0, np.float32), zero))
        nodes += [
            helper.make_node("IsNaN", [value.name], [is_nan]),
            helper.make_node("Where", [is_nan, zero, value.name], [clean]),
        ]
        guarded[value.name] = clean
    _rename_uses(graph, guarded)
    for node in reversed(nodes):
        graph.node.insert(0, node)


def _rename_uses(graph: onnx.GraphProto, renamed: dict[str, str]) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _rename_uses(attribute.g, renamed)


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = set(_all_names_used(graph))
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _all_names_used(graph: onnx.GraphProto):
    yield from (v.name for v in graph.output)
    for node in graph.node:
        yield from node.input
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _all_names_used(attribute.g)
