"""ONNX lowering of the rnnx custom ops (see recurrent_ops.py), written with onnxscript.

Each layer becomes one native ONNX RNN/LSTM/GRU node (all directions in one node) with
sequence-major data: onnxruntime rejects the ops' `layout=1` ("Batchwise recurrent operations
(layout == 1) are not supported"), so batch_first models get a Transpose before and after the
stack, not per layer.

Projected LSTMs (proj_size > 0) have no ONNX op. In model.onnx they are lowered to a `Scan`
over time whose body is one LSTM cell with the projection, after a single MatMul computes the
input gates of all time steps at once. The onnx-folded format (model.folded.onnx, asked for
with --format onnx-folded) folds the projection into the native op instead
(R_eff = W_hh·W_hr, outputs projected afterwards, h0 lifted with pinv(W_hr)), which multiplies
the per-step recurrent work by hidden/proj but runs each layer as one native kernel. Measured
side by side (2 layers, input 80, time 100, 1 thread, ratio to eager PyTorch, Scan vs folded;
benchmarks/projected_lstm_lowerings.py):
  1024/256 batch 1:  onnxruntime 0.62 vs 1.81, OpenVINO f32 0.74 vs 1.69, bf16 0.50 vs 0.96
  1024/256 batch 16: onnxruntime 0.43 vs 1.08, OpenVINO f32 0.44 vs 0.93, bf16 0.28 vs 0.45
  256/128 batch 1:   onnxruntime 0.56 vs 0.47, OpenVINO f32 1.01 vs 0.56, bf16 0.89 vs 0.37
  256/128 batch 16:  onnxruntime 0.42 vs 0.49, OpenVINO f32 0.54 vs 0.48, bf16 0.40 vs 0.28
Folding loses about 2x at hidden/proj = 4 and wins at 2 (in OpenVINO at both batches, in
onnxruntime at batch 1), so neither replaces the other: the Scan is the default, the folded
model an extra format that `rnnx tune` measures beside it.
Reordering the Scan cell's gates so one Sigmoid covers three of them and fusing the recurrent
MatMul+Add into a Gemm (14 -> 12 nodes per step) measured no change (0.67x eager at 256/128
batch 16): per-node overhead is not the bottleneck.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import onnx
import onnx_ir as ir
from onnxscript import FLOAT, INT64, graph, script
from onnxscript import opset18 as op
from onnxscript.values import Opset

from rnnx.exporter.weights import SCAN_LSTM_GATE_ORDER, native_op_weights, permute_gates

_ACTIVATION = {"RNN_TANH": "Tanh", "RNN_RELU": "Relu"}

# The folded lowering (the onnx-folded format) needs pinv(W_hr), which no ONNX op computes: the
# graph names it with this placeholder op, and onnx_export.fold_pinv replaces each one by an
# initializer once the weights are constants (at translation time they are symbolic).
PINV_DOMAIN = "rnnx.fold"
PINV_OP = "PinvTranspose"  # (P, H) = pinv(W_hr)^T for W_hr of shape (P, H)
_fold = Opset(PINV_DOMAIN, 1)


def _register_pinv_schema() -> None:
    """onnxscript records an op only when onnx knows its schema: declare the placeholder's."""
    if onnx.defs.has(PINV_OP, PINV_DOMAIN):
        return
    parameter = onnx.defs.OpSchema.FormalParameter
    onnx.defs.register_schema(
        onnx.defs.OpSchema(
            PINV_OP,
            PINV_DOMAIN,
            1,
            "pinv(W)^T of a constant matrix; replaced by an initializer before saving",
            inputs=[parameter("W", "T")],
            outputs=[parameter("lift", "T")],
            type_constraints=[("T", ["tensor(float)"], "float32")],
        )
    )


_register_pinv_schema()
_FOLDING = contextvars.ContextVar("fold_projections", default=False)


@contextlib.contextmanager
def folded_projections() -> Iterator[None]:
    """Within the block, projected LSTMs lower to the native LSTM op with the projection folded
    into its recurrent weight (the onnx-folded format), instead of a Scan."""
    token = _FOLDING.set(True)
    try:
        yield
    finally:
        _FOLDING.reset(token)


def lstm_to_onnx(
    x,
    h0,
    c0,
    weights,
    hidden_size,
    num_layers,
    bidirectional,
    batch_first,
    has_biases,
    proj_size,
    lengths=None,
):
    out, (h_n, c_n) = _lower_stack(
        "LSTM",
        x,
        (h0, c0),
        weights,
        hidden_size,
        num_layers,
        bidirectional,
        batch_first,
        has_biases,
        proj_size,
        lengths,
    )
    return out, h_n, c_n


def rnn_to_onnx(
    x,
    h0,
    weights,
    mode,
    hidden_size,
    num_layers,
    bidirectional,
    batch_first,
    has_biases,
    lengths=None,
):
    out, (h_n,) = _lower_stack(
        mode,
        x,
        (h0,),
        weights,
        hidden_size,
        num_layers,
        bidirectional,
        batch_first,
        has_biases,
        0,
        lengths,
    )
    return out, h_n


def _lower_stack(
    kind,
    x,
    states,
    weights,
    hidden_size,
    num_layers,
    bidirectional,
    batch_first,
    has_biases,
    proj_size,
    lengths=None,
):
    directions = 2 if bidirectional else 1
    # Packed batches: the ops take each sequence's length (int32) and zero the padded steps.
    sequence_lens = None if lengths is None else op.Cast(lengths, to=ir.DataType.INT32)
    per_direction = 2 + 2 * has_biases + bool(proj_size)  # nn.RNNBase._flat_weights layout
    if batch_first:
        x = op.Transpose(x, perm=[1, 0, 2])
    # Each state is (layers * directions, batch, size); split it per layer.
    per_layer = [_split(s, num_layers) for s in states]
    finals: list[list[Any]] = [[] for _ in states]
    for layer in range(num_layers):
        start = layer * directions * per_direction
        params = weights[start : start + directions * per_direction]
        by_direction = [
            params[d * per_direction : (d + 1) * per_direction] for d in range(directions)
        ]
        initial = [s[layer] for s in per_layer]
        if proj_size and _FOLDING.get():
            x, layer_finals = _folded_lstm_layer(x, initial, by_direction, hidden_size, has_biases)
        elif proj_size:
            x, layer_finals = _projected_lstm_layer(x, initial, by_direction, has_biases)
        else:
            x, layer_finals = _native_layer(
                kind, x, initial, by_direction, hidden_size, has_biases, sequence_lens
            )
        for collected, final in zip(finals, layer_finals):
            collected.append(final)
    if batch_first:
        x = op.Transpose(x, perm=[1, 0, 2])
    return x, tuple(_concat(f, axis=0) for f in finals)


def _native_layer(kind, x, initial, by_direction, hidden_size, has_biases, sequence_lens=None):
    """One layer, all directions, as a single ONNX RNN/LSTM/GRU node."""
    w, r, b = native_op_weights(op, kind, by_direction, hidden_size, has_biases)
    direction = "bidirectional" if len(by_direction) == 2 else "forward"
    if kind == "LSTM":
        y, h_n, c_n = op.LSTM(
            x,
            w,
            r,
            b,
            sequence_lens,
            initial[0],
            initial[1],
            direction=direction,
            hidden_size=hidden_size,
        )
        finals = (h_n, c_n)
    elif kind == "GRU":
        # PyTorch applies the reset gate after the recurrent matmul: linear_before_reset=1.
        y, h_n = op.GRU(
            x,
            w,
            r,
            b,
            sequence_lens,
            initial[0],
            direction=direction,
            hidden_size=hidden_size,
            linear_before_reset=1,
        )
        finals = (h_n,)
    else:
        y, h_n = op.RNN(
            x,
            w,
            r,
            b,
            sequence_lens,
            initial[0],
            direction=direction,
            hidden_size=hidden_size,
            activations=[_ACTIVATION[kind]] * len(by_direction),
        )
        finals = (h_n,)
    return _merge_directions(y), finals


def _merge_directions(y):
    """(time, directions, batch, hidden) -> (time, batch, directions * hidden)."""
    y = op.Transpose(y, perm=[0, 2, 1, 3])
    return op.Reshape(y, op.Constant(value_ints=[0, 0, -1]))


def _projected_lstm_layer(x, initial, by_direction, has_biases):
    """One projected-LSTM layer: per direction, input gates for all steps, then a Scan."""
    h0 = _split(initial[0], len(by_direction))
    c0 = _split(initial[1], len(by_direction))
    outputs, h_finals, c_finals = [], [], []
    for d, params in enumerate(by_direction):
        w_ih, w_hh, w_hr = params[0], params[1], params[-1]
        hidden = w_hr.shape[1]

        # Gates (i, f, o, g): the cell applies one Sigmoid to three adjacent gates. The
        # permutation folds into the weights at export time.
        def gates_order(tensor, hidden=hidden):
            return permute_gates(op, tensor, SCAN_LSTM_GATE_ORDER, hidden)

        x_gates = op.MatMul(x, op.Transpose(gates_order(w_ih), perm=[1, 0]))
        if has_biases:
            x_gates = op.Add(x_gates, gates_order(op.Add(params[2], params[3])))
        if d == 1:
            x_gates = _reverse_time(x_gates)
        h_n, c_n, y = projected_lstm_scan(
            x_gates,
            op.Squeeze(h0[d], [0]),
            op.Squeeze(c0[d], [0]),
            op.Transpose(gates_order(w_hh), perm=[1, 0]),
            op.Transpose(w_hr, perm=[1, 0]),
            op.Constant(value_ints=[3 * hidden, hidden]),
        )
        outputs.append(_reverse_time(y) if d == 1 else y)
        h_finals.append(op.Unsqueeze(h_n, [0]))
        c_finals.append(op.Unsqueeze(c_n, [0]))
    return _concat(outputs, axis=2), (_concat(h_finals, axis=0), _concat(c_finals, axis=0))


def _folded_lstm_layer(x, initial, by_direction, hidden_size, has_biases):
    """One projected-LSTM layer as one native LSTM node over m_t = o_t * tanh(c_t), the state
    before the projection h_t = W_hr m_t: the gates see W_hh h_{t-1} = (W_hh W_hr) m_{t-1}.
    h0 is lifted to m0 = pinv(W_hr) h0, so that W_hr m0 = h0 (exact when W_hr has full row
    rank, which fold_pinv checks); outputs and h_n are projected back with W_hr. The states
    a caller sees stay h (proj_size) and c."""
    w_hr = [params[-1] for params in by_direction]
    folded = [[p[0], op.MatMul(p[1], p[-1]), *p[2:-1]] for p in by_direction]
    w, r, b = native_op_weights(op, "LSTM", folded, hidden_size, has_biases)
    lift = _stack([_fold.PinvTranspose(m) for m in w_hr])  # (directions, proj, hidden)
    project = _stack([op.Transpose(m, perm=[1, 0]) for m in w_hr])  # (directions, hidden, proj)
    direction = "bidirectional" if len(by_direction) == 2 else "forward"
    y, m_n, c_n = op.LSTM(x, w, r, b, None, op.MatMul(initial[0], lift), initial[1],
                          direction=direction, hidden_size=hidden_size)  # fmt: skip
    # (time, directions, batch, hidden) @ (directions, hidden, proj): each direction its own
    return _merge_directions(op.MatMul(y, project)), (op.MatMul(m_n, project), c_n)


def _stack(tensors):
    expanded = [op.Unsqueeze(t, [0]) for t in tensors]
    return expanded[0] if len(expanded) == 1 else op.Concat(*expanded, axis=0)


def _reverse_time(x):
    # The reverse direction reverses time with a Slice instead of Scan's direction attributes,
    # so that one script function (below) serves both directions.
    return op.Slice(x, [-1], [-(2**62)], [0], [-1])


@script()
def projected_lstm_scan(
    x_gates: FLOAT, h0: FLOAT, c0: FLOAT, w_hh_t: FLOAT, w_hr_t: FLOAT, split: INT64
) -> tuple[FLOAT, FLOAT, FLOAT]:
    """An LSTM cell with projection, scanned over time; gates in (i, f, o, g) order.

    A script function because Scan's body is a graph attribute and its outputs are variadic,
    which onnxscript's script mode expresses and the exporter's op tracer does not. The body
    reads the weights and `split` ([3·hidden, hidden]) from the enclosing scope, as ONNX
    subgraphs may. 12 nodes per step; the per-node cost is what dominates at small batch.
    The body's inputs are typed (FLOAT[...]): OpenVINO's ONNX reader makes untyped ones
    parameters of dynamic element type, and its CPU plugin then fails at inference ("Node of
    type TensorIterator: object is not initialized") or returns empty outputs.
    """

    @graph()
    def cell(h: FLOAT[...], c: FLOAT[...], gates_x: FLOAT[...]):
        gates = op.Gemm(h, w_hh_t, gates_x)  # h·W_hh^T + input gates in one node
        sigmoid_gates, g = op.Split(gates, split, axis=1)
        i, f, o = op.Split(op.Sigmoid(sigmoid_gates), axis=1, num_outputs=3)
        c_next = op.Add(op.Mul(f, c), op.Mul(i, op.Tanh(g)))
        h_next = op.MatMul(op.Mul(o, op.Tanh(c_next)), w_hr_t)
        h_out = op.Identity(h_next)  # a Scan body output may not be listed twice
        return h_next, c_next, h_out

    h_n, c_n, y = op.Scan(h0, c0, x_gates, body=cell, num_scan_inputs=1)
    return h_n, c_n, y


def _split(value, parts: int) -> Sequence[Any]:
    if parts == 1:
        return [value]
    return op.Split(value, axis=0, num_outputs=parts)


def _concat(values: Sequence[Any], axis: int):
    return values[0] if len(values) == 1 else op.Concat(*values, axis=axis)
