"""Recurrent layers as opaque custom ops, so torch.export keeps them whole.

`torch.export` decomposes nn.RNN/LSTM/GRU into per-time-step ops, which freezes the time (and
often the batch) axis in the exported graph. Routing each layer through a
`torch.library.custom_op` keeps it a single node whose fake implementation only states the
output shapes; `lowering.py` then translates that node into native ONNX ops.

The eager implementations call the same `torch._VF` kernels nn.RNNBase uses, so a patched
module computes exactly what the original does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnx.errors import UnsupportedModelError


@torch.library.custom_op("rnnx::lstm", mutates_args=())
def lstm(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weights: list[Tensor],
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    has_biases: bool,
    proj_size: int,
) -> tuple[Tensor, Tensor, Tensor]:
    y, h, c = torch._VF.lstm(  # type: ignore[attr-defined]
        x, (h0, c0), weights, has_biases, num_layers, 0.0, False, bidirectional, batch_first
    )
    return y, h, c


@lstm.register_fake
def _lstm_fake(
    x, h0, c0, weights, hidden_size, num_layers, bidirectional, batch_first, has_biases, proj_size
):
    directions = 2 if bidirectional else 1
    y = x.new_empty(x.shape[0], x.shape[1], directions * h0.shape[-1])
    return y, torch.empty_like(h0), torch.empty_like(c0)


_RNN_KERNELS = {
    "RNN_TANH": torch._VF.rnn_tanh,  # type: ignore[attr-defined]
    "RNN_RELU": torch._VF.rnn_relu,  # type: ignore[attr-defined]
    "GRU": torch._VF.gru,  # type: ignore[attr-defined]
}


@torch.library.custom_op("rnnx::rnn", mutates_args=())
def rnn(
    x: Tensor,
    h0: Tensor,
    weights: list[Tensor],
    mode: str,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    has_biases: bool,
) -> tuple[Tensor, Tensor]:
    """RNN (tanh or relu) and GRU: the layers whose only state is h."""
    y, h = _RNN_KERNELS[mode](
        x, h0, weights, has_biases, num_layers, 0.0, False, bidirectional, batch_first
    )
    return y, h


@rnn.register_fake
def _rnn_fake(
    x, h0, weights, mode, hidden_size, num_layers, bidirectional, batch_first, has_biases
):
    directions = 2 if bidirectional else 1
    y = x.new_empty(x.shape[0], x.shape[1], directions * h0.shape[-1])
    return y, torch.empty_like(h0)


def _custom_op_forward(layer: nn.RNNBase):
    """A drop-in forward for `layer` that calls the custom op instead of the decomposable kernel."""
    directions = 2 if layer.bidirectional else 1
    out_size = layer.proj_size or layer.hidden_size  # proj_size is 0 except for projected LSTMs
    batch_dim = 0 if layer.batch_first else 1

    def forward(input: Tensor, hx=None):
        if isinstance(input, PackedSequence):
            raise UnsupportedModelError(
                f"{type(layer).__name__} receives a PackedSequence; packed sequences are not "
                "supported yet: pass padded tensors"
            )
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(batch_dim)
        if hx is not None and not batched:
            hx = tuple(s.unsqueeze(1) for s in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        if hx is None:
            batch = x.shape[batch_dim]
            h0 = x.new_zeros(layer.num_layers * directions, batch, out_size)
            hx = (
                (h0, x.new_zeros(h0.shape[0], batch, layer.hidden_size))
                if layer.mode == "LSTM"
                else h0
            )
        common = dict(
            hidden_size=layer.hidden_size,
            num_layers=layer.num_layers,
            bidirectional=layer.bidirectional,
            batch_first=layer.batch_first,
            has_biases=layer.bias,
        )
        # By attribute name, so the ONNX initializers keep the parameters' names.
        weights = [getattr(layer, name) for name in layer._flat_weights_names]
        if layer.mode == "LSTM":
            y, h, c = lstm(x, hx[0], hx[1], weights, proj_size=layer.proj_size, **common)
            state = (h, c)
        else:
            y, state = rnn(x, hx, weights, mode=layer.mode, **common)
        if not batched:
            y = y.squeeze(batch_dim)
            state = (
                tuple(s.squeeze(1) for s in state) if isinstance(state, tuple) else state.squeeze(1)
            )
        return y, state

    return forward


@contextlib.contextmanager
def recurrent_layers_as_custom_ops(module: nn.Module) -> Iterator[None]:
    """Within the block, every nn.RNN/LSTM/GRU inside `module` runs through the custom ops."""
    layers = [m for m in module.modules() if isinstance(m, nn.RNNBase)]
    for layer in layers:
        layer.forward = _custom_op_forward(layer)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward
