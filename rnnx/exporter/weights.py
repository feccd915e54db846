"""The one place where PyTorch's gate order becomes ONNX's gate order.

PyTorch stacks gate blocks as LSTM (i, f, g, o), GRU (r, z, n); the ONNX ops expect
LSTM (i, o, f, c) and GRU (z, r, h). Each weight or bias is a stack of `gates` blocks of
`hidden_size` rows, so reordering is a split into blocks and a concat in the new order, emitted
as ONNX ops on the original parameters. The exporter then constant-folds them, so the saved
model holds the reordered initializers and runs no reordering at inference time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# For each kind, the PyTorch block index that goes to each ONNX position.
ONNX_GATE_ORDER: dict[str, tuple[int, ...]] = {
    "LSTM": (0, 3, 1, 2),  # i, f, g, o  ->  i, o, f, c
    "GRU": (1, 0, 2),  # r, z, n  ->  z, r, h  (exact with linear_before_reset=1)
    "RNN_TANH": (0,),
    "RNN_RELU": (0,),
}


# The projected-LSTM Scan cell (lowering.py) wants the three sigmoid gates adjacent.
SCAN_LSTM_GATE_ORDER = (0, 1, 3, 2)  # i, f, g, o  ->  i, f, o, g


def reorder_gates(op: Any, tensor: Any, kind: str, hidden_size: int) -> Any:
    """Reorder the gate blocks along axis 0 of a PyTorch weight or bias into ONNX order."""
    return permute_gates(op, tensor, ONNX_GATE_ORDER[kind], hidden_size)


def permute_gates(op: Any, tensor: Any, order: Sequence[int], hidden_size: int) -> Any:
    """Gate block `order[k]` of `tensor` becomes block k (blocks of hidden_size rows)."""
    if tuple(order) == tuple(range(len(order))):
        return tensor
    # One Slice per block rather than a Split: onnxscript's constant folder skips multi-output
    # nodes, and the reordering must fold away.
    blocks = [op.Slice(tensor, [i * hidden_size], [(i + 1) * hidden_size], [0]) for i in order]
    return op.Concat(*blocks, axis=0)


def native_op_weights(
    op: Any, kind: str, directions: Sequence[Sequence[Any]], hidden_size: int, has_biases: bool
) -> tuple[Any, Any, Any | None]:
    """W, R, B inputs of the ONNX RNN/LSTM/GRU op for one layer.

    `directions` holds each direction's PyTorch parameters in nn.RNNBase order:
    weight_ih, weight_hh[, bias_ih, bias_hh]. B is None without biases (the op's default is 0).
    """

    def stack(tensors: list[Any]) -> Any:
        expanded = [op.Unsqueeze(t, [0]) for t in tensors]
        return expanded[0] if len(expanded) == 1 else op.Concat(*expanded, axis=0)

    def reorder(tensor: Any) -> Any:
        return reorder_gates(op, tensor, kind, hidden_size)

    w = stack([reorder(params[0]) for params in directions])
    r = stack([reorder(params[1]) for params in directions])
    if not has_biases:
        return w, r, None
    # ONNX wants [Wb, Rb] concatenated per direction.
    b = stack([op.Concat(reorder(p[2]), reorder(p[3]), axis=0) for p in directions])
    return w, r, b
