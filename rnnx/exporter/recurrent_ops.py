"""Recurrent layers as opaque custom ops, so torch.export keeps them whole.

`torch.export` decomposes nn.RNN/LSTM/GRU into per-time-step ops, which freezes the time (and
often the batch) axis in the exported graph. Routing each layer through a
`torch.library.custom_op` keeps it a single node whose fake implementation only states the
output shapes; `lowering.py` then translates that node into native ONNX ops.

The eager implementations call the same `torch._VF` kernels nn.RNNBase uses, so a patched
module computes exactly what the original does. Packed sequences (pack_padded_sequence ->
layer -> pad_packed_sequence) reach the ops as a padded batch plus lengths, which the ONNX ops
take as `sequence_lens`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnx.core.errors import UnsupportedModelError

_VF = torch._VF  # type: ignore[attr-defined]
# The kernels nn.RNN/LSTM/GRU call, kept before export replaces them (see _kernel_as_custom_op).
_KERNELS = {name: getattr(_VF, name) for name in ("lstm", "gru", "rnn_tanh", "rnn_relu")}
_MODES = {"gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}


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
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    if lengths is not None:
        y, h, c = _packed(_KERNELS["lstm"], x, (h0, c0), weights, lengths, num_layers,
                          bidirectional, batch_first, has_biases)  # fmt: skip
        return y, h, c
    y, h, c = _KERNELS["lstm"](
        x, (h0, c0), weights, has_biases, num_layers, 0.0, False, bidirectional, batch_first
    )
    return y, h, c


@lstm.register_fake
def _lstm_fake(x, h0, c0, weights, hidden_size, num_layers, bidirectional, batch_first,
               has_biases, proj_size, lengths=None):  # fmt: skip
    directions = 2 if bidirectional else 1
    y = x.new_empty(x.shape[0], x.shape[1], directions * h0.shape[-1])
    return y, torch.empty_like(h0), torch.empty_like(c0)


_RNN_KERNELS = {mode: _KERNELS[name] for name, mode in _MODES.items()}


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
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """RNN (tanh or relu) and GRU: the layers whose only state is h."""
    kernel = _RNN_KERNELS[mode]
    if lengths is not None:
        y, h = _packed(kernel, x, h0, weights, lengths, num_layers, bidirectional, batch_first,
                       has_biases)  # fmt: skip
        return y, h
    y, h = kernel(x, h0, weights, has_biases, num_layers, 0.0, False, bidirectional, batch_first)
    return y, h


@rnn.register_fake
def _rnn_fake(x, h0, weights, mode, hidden_size, num_layers, bidirectional, batch_first,
              has_biases, lengths=None):  # fmt: skip
    directions = 2 if bidirectional else 1
    y = x.new_empty(x.shape[0], x.shape[1], directions * h0.shape[-1])
    return y, torch.empty_like(h0)


def _packed(kernel, x, hx, weights, lengths, num_layers, bidirectional, batch_first, has_biases):
    """Eager semantics of a padded batch with lengths: pack, run, pad back to the input's time."""
    rnn_utils = nn.utils.rnn
    packed = rnn_utils.pack_padded_sequence(x, lengths.cpu(), batch_first, enforce_sorted=False)
    states = tuple(s.index_select(1, packed.sorted_indices) for s in _as_tuple(hx))
    result = kernel(packed.data, packed.batch_sizes, states if len(states) > 1 else states[0],
                    weights, has_biases, num_layers, 0.0, False, bidirectional)  # fmt: skip
    output = PackedSequence(result[0], packed.batch_sizes, packed.sorted_indices,
                            packed.unsorted_indices)  # fmt: skip
    time = x.shape[1 if batch_first else 0]
    padded, _ = rnn_utils.pad_packed_sequence(output, batch_first, total_length=time)
    return (padded, *(f.index_select(1, packed.unsorted_indices) for f in result[1:]))


def _as_tuple(state):
    return tuple(state) if isinstance(state, tuple) else (state,)


def _select_batch(state, indices):
    """hx or (h, c) reordered along the batch axis, as nn.RNNBase.permute_hidden does."""
    selected = tuple(s.index_select(1, indices) for s in _as_tuple(state))
    return selected if isinstance(state, tuple) else selected[0]


def _custom_op_forward(layer: nn.RNNBase):
    """A drop-in forward for `layer` that calls the custom op instead of the decomposable kernel."""
    directions = 2 if layer.bidirectional else 1
    out_size = layer.proj_size or layer.hidden_size  # proj_size is 0 except for projected LSTMs
    weights = [getattr(layer, name) for name in layer._flat_weights_names]  # named initializers

    def zeros(x: Tensor, batch: int):
        h0 = x.new_zeros(layer.num_layers * directions, batch, out_size)
        if layer.mode == "LSTM":
            return h0, x.new_zeros(h0.shape[0], batch, layer.hidden_size)
        return h0

    def run(x: Tensor, hx, batch_first: bool, lengths: Tensor | None):
        common = dict(hidden_size=layer.hidden_size, num_layers=layer.num_layers,
                      bidirectional=layer.bidirectional, batch_first=batch_first,
                      has_biases=layer.bias, lengths=lengths)  # fmt: skip
        if layer.mode == "LSTM":
            y, h, c = lstm(x, hx[0], hx[1], weights, proj_size=layer.proj_size, **common)
            return y, (h, c)
        return rnn(x, hx, weights, mode=layer.mode, **common)

    def forward(input, hx=None):
        if isinstance(input, PackedSequence):
            return packed_forward(input, hx)
        batch_dim = 0 if layer.batch_first else 1
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(batch_dim)
        if hx is not None and not batched:
            hx = tuple(s.unsqueeze(1) for s in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        y, state = run(
            x, zeros(x, x.shape[batch_dim]) if hx is None else hx, layer.batch_first, None
        )
        if not batched:
            y = y.squeeze(batch_dim)
            state = (
                tuple(s.squeeze(1) for s in state) if isinstance(state, tuple) else state.squeeze(1)
            )
        return y, state

    def packed_forward(packed: PackedSequence, hx):
        lengths = _PADDED_LENGTHS.get(id(packed.data))
        if lengths is None:
            raise UnsupportedModelError(
                f"{type(layer).__name__} receives a PackedSequence not made by "
                "pack_padded_sequence (the only packing rnnx exports)"
            )
        if layer.proj_size:
            raise UnsupportedModelError(
                "a PackedSequence into an LSTM with proj_size is not supported yet"
            )
        x = packed.data  # padded and time-major: see _pack_as_padded
        if hx is None:
            hx = zeros(x, x.shape[1])
        elif packed.sorted_indices is not None:
            hx = _select_batch(hx, packed.sorted_indices)
        y, state = run(x, hx, False, lengths)
        _PADDED_LENGTHS[id(y)] = lengths
        if packed.unsorted_indices is not None:
            state = _select_batch(state, packed.unsorted_indices)
        return PackedSequence(
            y, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        ), state

    return forward


# During export a PackedSequence carries the padded, time-major batch as its `data` (with the
# true batch_sizes, so pad_packed_sequence's length checks still hold), and its lengths are
# kept here by the data tensor's id. The real packed layout has a data-dependent size, which
# is what makes torch.export fail on such models.
_PADDED_LENGTHS: dict[int, Tensor] = {}


def _pack_as_padded(input: Tensor, lengths: Tensor, batch_first: bool) -> tuple[Tensor, Tensor]:
    data = input.transpose(0, 1) if batch_first else input
    steps = torch.arange(data.shape[0], device=lengths.device)
    batch_sizes = (lengths.unsqueeze(0) > steps.unsqueeze(1)).sum(1)
    _PADDED_LENGTHS[id(data)] = lengths
    return data, batch_sizes


def _pad_as_padded(data: Tensor, batch_sizes: Tensor, batch_first: bool, padding_value: float,
                   total_length: int) -> tuple[Tensor, Tensor]:  # fmt: skip
    lengths = _PADDED_LENGTHS[id(data)]
    steps = torch.arange(data.shape[0], device=data.device)
    valid = (steps.unsqueeze(1) < lengths.to(data.device).unsqueeze(0)).unsqueeze(-1)
    padded = torch.where(valid, data, torch.full_like(data, padding_value))
    if isinstance(total_length, int) and total_length > data.shape[0]:  # a fixed total_length
        extra = padded.new_full((total_length - data.shape[0], *padded.shape[1:]), padding_value)
        padded = torch.cat([padded, extra])
    return (padded.transpose(0, 1) if batch_first else padded), lengths


def _kernel_as_custom_op(name: str):
    """torch._VF.lstm/gru/rnn_* routed to the custom ops, for layers with a forward of their own.

    A subclass of nn.LSTM that changes its weights in forward before calling the kernel (weight
    drop, weight scaling), or a layer whose forward is wrapped, computes something else than
    nn.LSTM.forward: its own forward runs, and whatever weights it hands the kernel reach the
    exported op. So the export computes what the subclass computes, never the raw weights.
    """

    def kernel(*args: Any) -> Any:
        if len(args) != 9 or not isinstance(args[2], (list, tuple)):  # (data, batch_sizes, ...)
            raise UnsupportedModelError(
                "a PackedSequence into a recurrent layer with its own forward (a subclass or a "
                "wrapped nn.RNN/LSTM/GRU) is not supported; pass it a padded batch"
            )
        x, hx, weights, has_biases, num_layers, _, _, bidirectional, batch_first = args
        common = dict(num_layers=num_layers, bidirectional=bidirectional,
                      batch_first=batch_first, has_biases=has_biases)  # fmt: skip
        if name == "lstm":
            h0, c0 = hx
            proj = h0.shape[-1] if h0.shape[-1] != c0.shape[-1] else 0
            return lstm(x, h0, c0, list(weights), hidden_size=c0.shape[-1], proj_size=proj,
                        **common)  # fmt: skip
        return rnn(x, hx, list(weights), mode=_MODES[name], hidden_size=hx.shape[-1], **common)

    return kernel


def _has_own_forward(layer: nn.RNNBase) -> bool:
    standard = (nn.RNN.forward, nn.LSTM.forward, nn.GRU.forward)
    return "forward" in vars(layer) or type(layer).forward not in standard


_PAD_PACKED = nn.utils.rnn.pad_packed_sequence


def _pad_packed_to_longest(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """pad_packed_sequence as in eager: without total_length, the output spans the longest
    sequence (max(lengths) steps, a size only known from the lengths' values), not the input's
    padded time."""
    padded, lengths = _PAD_PACKED(sequence, batch_first, padding_value, total_length)
    if total_length is not None or torch.jit.is_tracing():  # a trace packs for real: as eager
        return padded, lengths
    axis = 1 if batch_first else 0
    longest = lengths.max().item()
    torch._check(longest >= 1)
    torch._check(longest <= padded.shape[axis])
    return padded.narrow(axis, 0, longest), lengths


def _numpy_while_tracing(original):
    """Tensor.numpy() returning the tensor while a graph is being captured: the idiom
    pack_padded_sequence(x, lengths.cpu().numpy()) keeps its lengths a graph input (eager code
    is unchanged: outside capture, numpy() is numpy())."""

    def numpy(self, *args, **kwargs):
        if torch.jit.is_tracing() or not isinstance(self, torch.Tensor) or _is_fake(self):
            return self
        return original(self, *args, **kwargs)

    return numpy


def _is_fake(tensor: Tensor) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor
    from torch._subclasses.functional_tensor import FunctionalTensor

    return isinstance(tensor, (FakeTensor, FunctionalTensor))


@contextlib.contextmanager
def host_lengths_traceable(module: nn.Module) -> Iterator[None]:
    """While exporting or tracing `module`: lengths.cpu().numpy() stays a tensor, and
    pad_packed_sequence without total_length trims to the longest sequence, in the user's code
    whether it calls nn.utils.rnn.pad_packed_sequence or imported the name."""
    homes = {sys.modules.get(type(m).__module__) for m in module.modules()} - {None}
    rebound = [(home, name) for home in homes for name, value in vars(home).items()
               if value is _PAD_PACKED]  # fmt: skip
    original_numpy = torch.Tensor.numpy
    torch.Tensor.numpy = _numpy_while_tracing(original_numpy)  # type: ignore[method-assign]
    nn.utils.rnn.pad_packed_sequence = _pad_packed_to_longest
    for home, name in rebound:
        setattr(home, name, _pad_packed_to_longest)
    try:
        yield
    finally:
        torch.Tensor.numpy = original_numpy  # type: ignore[method-assign]
        nn.utils.rnn.pad_packed_sequence = _PAD_PACKED
        for home, name in rebound:
            setattr(home, name, _PAD_PACKED)


@contextlib.contextmanager
def recurrent_layers_as_custom_ops(module: nn.Module) -> Iterator[None]:
    """Within the block, every nn.RNN/LSTM/GRU inside `module` runs through the custom ops, and
    pack_padded_sequence / pad_packed_sequence keep the batch padded, lengths on the side.

    Plain layers get a forward that calls the ops (packed sequences included); layers with a
    forward of their own keep it, and the kernels it reaches are the ops.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.RNNBase)]
    patched = [layer for layer in layers if not _has_own_forward(layer)]
    for layer in patched:
        layer.forward = _custom_op_forward(layer)  # type: ignore[method-assign]
    for name in _KERNELS:
        setattr(_VF, name, _kernel_as_custom_op(name))
    host_lengths = host_lengths_traceable(module)
    host_lengths.__enter__()
    # torch.nn.utils.rnn calls these through torch._VF at every call: replaceable here.
    _VF._pack_padded_sequence = _pack_as_padded
    _VF._pad_packed_sequence = _pad_as_padded
    try:
        yield
    finally:
        for layer in patched:
            del layer.forward
        host_lengths.__exit__(None, None, None)
        for name in _KERNELS:
            delattr(_VF, name)
        del _VF._pack_padded_sequence, _VF._pad_packed_sequence
        _PADDED_LENGTHS.clear()
