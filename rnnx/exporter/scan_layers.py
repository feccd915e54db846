"""Recurrent layers as loops over time (`torch.ops.higher_order.scan`), for ExecuTorch.

`aten.lstm`/`gru`/`rnn_*` are not ExecuTorch core ops, so torch.export decomposes them into one
step per time step, which freezes the time axis; rnnx's custom ops (recurrent_ops.py) are
Python, which ExecuTorch cannot run. A scan over one cell is a loop ExecuTorch 1.5 lowers and
runs with the time axis symbolic (up to a declared maximum): the pte format's dynamic-time
variant (pte_export.py). Each direction of each layer computes the input gates of all its steps
in one matmul (XNNPACK takes it), then scans the cell (portable kernels); the reverse direction
flips time around its scan. Measured against nn.RNN/LSTM/GRU: at most 3e-7 apart.

Within `recurrent_kernels_as_scans()`, torch._VF.lstm/gru/rnn_tanh/rnn_relu (what nn.RNN/LSTM/GRU
call, and what a subclass's own forward reaches) are these loops, so bare layers and whole
models are rewritten alike, as recurrent_ops.py does for the ONNX path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional

from rnnx.core.errors import UnsupportedModelError

_VF = torch._VF  # type: ignore[attr-defined]
KERNELS = ("lstm", "gru", "rnn_tanh", "rnn_relu")

# cell(states, input gates of the step, w_hh^T, b_hh, w_hr^T) -> the next states; states[0] is h
Cell = Callable[[tuple[Tensor, ...], Tensor, Tensor, Tensor | None, Tensor | None],
                tuple[Tensor, ...]]  # fmt: skip


def _times(h: Tensor, w_t: Tensor, bias: Tensor | None = None) -> Tensor:
    """h·W^T (+ bias) with W^T transposed once outside the loop: F.linear inside it would copy
    the transposed weight at every step (ExecuTorch's permute_copy)."""
    return torch.mm(h, w_t) if bias is None else torch.addmm(bias, h, w_t)


def _rnn_cell(activation: Callable[[Tensor], Tensor]) -> Cell:
    def cell(states, gates_x, w_hh_t, b_hh, w_hr_t):
        return (activation(gates_x + _times(states[0], w_hh_t, b_hh)),)

    return cell


def _lstm_cell(states, gates_x, w_hh_t, b_hh, w_hr_t):
    h, c = states
    i, f, g, o = (gates_x + _times(h, w_hh_t, b_hh)).chunk(4, -1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    return (h_next if w_hr_t is None else _times(h_next, w_hr_t), c_next)


def _gru_cell(states, gates_x, w_hh_t, b_hh, w_hr_t):
    # PyTorch applies the reset gate to the recurrent term, bias included
    (h,) = states
    x_r, x_z, x_n = gates_x.chunk(3, -1)
    h_r, h_z, h_n = _times(h, w_hh_t, b_hh).chunk(3, -1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return ((1 - z) * n + z * h,)


CELLS: dict[str, Cell] = {
    "lstm": _lstm_cell,
    "gru": _gru_cell,
    "rnn_tanh": _rnn_cell(torch.tanh),
    "rnn_relu": _rnn_cell(torch.relu),
}


def scanned_stack(
    kind: str,
    x: Tensor,
    states: Sequence[Tensor],
    weights: Sequence[Tensor],
    has_biases: bool,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
) -> tuple[Tensor, ...]:
    """What torch._VF.<kind> returns (output, h_n[, c_n]), computed by one scan per layer and
    direction. `weights` are nn.RNNBase._flat_weights: per layer and direction w_ih, w_hh,
    [b_ih, b_hh], [w_hr]."""
    directions = 2 if bidirectional else 1
    per_direction = len(weights) // (num_layers * directions)
    x = x.transpose(0, 1) if batch_first else x  # time-major: scan walks axis 0
    finals: list[list[Tensor]] = [[] for _ in states]
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            own = weights[index * per_direction : (index + 1) * per_direction]
            initial = tuple(s[index] for s in states)
            y, last = _scanned_direction(kind, x, initial, own, has_biases, reverse=direction == 1)
            outputs.append(y)
            for collected, state in zip(finals, last):
                collected.append(state)
        x = torch.cat(outputs, -1) if directions == 2 else outputs[0]
    y = x.transpose(0, 1) if batch_first else x
    return (y, *(torch.stack(f) for f in finals))


def _scanned_direction(
    kind: str,
    x: Tensor,
    initial: tuple[Tensor, ...],
    weights: Sequence[Tensor],
    has_biases: bool,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    from torch._higher_order_ops.scan import scan

    w_ih, w_hh = weights[0], weights[1]
    b_ih, b_hh = (weights[2], weights[3]) if has_biases else (None, None)
    w_hr = weights[-1] if len(weights) > 2 + 2 * has_biases else None  # an LSTM's proj_size
    cell = CELLS[kind]
    gates_x = functional.linear(x.flip(0) if reverse else x, w_ih, b_ih)  # every step at once
    w_hh_t = w_hh.t().contiguous()
    w_hr_t = None if w_hr is None else w_hr.t().contiguous()

    def step(states: tuple[Tensor, ...], gates: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        following = cell(states, gates, w_hh_t, b_hh, w_hr_t)
        return following, following[0].clone()  # scan's outputs may not alias its carry

    last, y = scan(step, initial, gates_x)
    return (y.flip(0) if reverse else y), tuple(last)


def _scanned_kernel(kind: str) -> Callable[..., tuple[Tensor, ...]]:
    """A stand-in for torch._VF.<kind>(input, hx, weights, has_biases, num_layers, dropout,
    train, bidirectional, batch_first) (eval mode: no dropout)."""

    def kernel(*args: Any) -> tuple[Tensor, ...]:
        if len(args) != 9 or not isinstance(args[3], bool):  # (data, batch_sizes, hx, ...)
            raise UnsupportedModelError(
                "a PackedSequence cannot be written as a loop over time (pte); pass a padded batch"
            )
        x, hx, weights, has_biases, num_layers, _, _, bidirectional, batch_first = args
        states = tuple(hx) if kind == "lstm" else (hx,)
        return scanned_stack(kind, x, states, weights, has_biases, num_layers, bidirectional,
                             batch_first)  # fmt: skip

    return kernel


@contextlib.contextmanager
def recurrent_kernels_as_scans() -> Iterator[None]:
    """Within the block, every nn.RNN/LSTM/GRU computes with scans (torch._VF's recurrent
    kernels replaced; restored on exit)."""
    for kind in KERNELS:
        setattr(_VF, kind, _scanned_kernel(kind))
    try:
        yield
    finally:
        for kind in KERNELS:
            delattr(_VF, kind)
