"""How a whole model's forward maps onto graph inputs and outputs.

A bare nn.LSTM's I/O is known (signature.Signature.for_layer). A whole model's is declared
(a `ModelIO` passed to export, or a model's `rnnx_io` attribute) or inferred from forward's
parameter names, the example inputs and the first recurrent layer's batch_first, which covers
models shaped like the zoo's: features (or token ids) in, recurrent states in and out.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from rnnx.core.errors import UnsupportedModelError
from rnnx.core.signature import Dim, Signature, TensorSpec

_STATE_NAME = re.compile(r"^(h|c|hx|cx|h0|c0|h_0|c_0|hidden|cell|state|states|memory)(_\w+)?$")


@dataclasses.dataclass(frozen=True)
class ModelIO:
    inputs: tuple[str, ...]
    # per input, per axis: "batch", "time" or None (fixed at the example's size)
    dims: Mapping[str, tuple[str | None, ...]]
    outputs: tuple[str, ...]
    state_pairs: tuple[tuple[str, str], ...] = ()  # (output, input) carried between calls
    # integer inputs (token ids): values drawn in [0, high) when verifying
    int_ranges: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # sequence lengths of a padded batch (for pack_padded_sequence)
    lengths: tuple[str, ...] = ()


def resolve_io(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    outputs: Sequence[torch.Tensor],
    io: ModelIO | None,
) -> ModelIO:
    """`io`, else the model's `rnnx_io`, else inferred; `outputs` is forward's flat result."""
    declared = io or getattr(model, "rnnx_io", None)
    if isinstance(declared, Mapping):
        declared = ModelIO(**declared)
    if declared is not None:
        if len(declared.inputs) != len(example_inputs):
            raise UnsupportedModelError(
                f"{type(model).__name__}: rnnx_io names {len(declared.inputs)} inputs but "
                f"{len(example_inputs)} example inputs were given"
            )
        return declared
    return _infer(model, example_inputs, outputs)


def _infer(
    model: nn.Module, example_inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]
) -> ModelIO:
    parameters = list(inspect.signature(model.forward).parameters)[: len(example_inputs)]
    batch_first = _batch_first(model)
    dims: dict[str, tuple[str | None, ...]] = {}
    for name, tensor in zip(parameters, example_inputs):
        dims[name] = _guess_dims(name, tensor, batch_first)
    states = [n for n in parameters if _STATE_NAME.match(n)]
    # A step model returns its new states last, in the order it takes them.
    pairs: list[tuple[str, str]] = []
    if states and len(outputs) > len(states):
        tail = outputs[-len(states) :]
        by_name = dict(zip(parameters, example_inputs))
        if all(o.shape == by_name[s].shape for o, s in zip(tail, states)):
            pairs = [(f"{s}_out", s) for s in states]
    data_outputs = len(outputs) - len(pairs)
    names = ["output"] if data_outputs == 1 else [f"output_{i}" for i in range(data_outputs)]
    lengths = tuple(
        n for n, t in zip(parameters, example_inputs)
        if t.dim() == 1 and not t.is_floating_point() and re.search("len", n)
    )  # fmt: skip
    return ModelIO(
        inputs=tuple(parameters),
        dims=dims,
        outputs=tuple(names + [o for o, _ in pairs]),
        state_pairs=tuple(pairs),
        lengths=lengths,
    )


def _guess_dims(
    name: str, tensor: torch.Tensor, batch_first: bool | None
) -> tuple[str | None, ...]:
    sequence: tuple[str | None, ...] = ("batch", "time") if batch_first else ("time", "batch")
    if _STATE_NAME.match(name):
        # (layers*directions, batch, size) for layers, (batch, size) for cells
        return (None, "batch", None) if tensor.dim() == 3 else ("batch", None)
    if tensor.dim() == 3:
        return (*sequence, None)
    if tensor.dim() == 2:
        # token ids (batch, time) / (time, batch), or one step of features (batch, features)
        return sequence if not tensor.is_floating_point() else ("batch", None)
    if tensor.dim() == 1:
        return ("batch",)
    raise UnsupportedModelError(
        f"cannot tell the axes of input {name!r} of shape {list(tensor.shape)}"
    )


def _batch_first(model: nn.Module) -> bool | None:
    for module in model.modules():
        if isinstance(module, nn.RNNBase):
            return module.batch_first
    return None


def flatten_outputs(result: Any) -> list[torch.Tensor]:
    """forward's result (a tensor, or nested tuples/lists of them) in graph output order."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in flatten_outputs(item)]
    raise UnsupportedModelError(
        f"forward returns a {type(result).__name__}; rnnx exports tensors and tuples of them"
    )


class FlatOutputs(nn.Module):
    """forward returning nested tuples -> one flat tuple: the graph's output order.

    What is exported, and what runs as the eager reference of a whole model.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(flatten_outputs(self.model(*inputs)))


def input_signature(io: ModelIO, example_inputs: Sequence[torch.Tensor]) -> list[TensorSpec]:
    specs = []
    for name, tensor in zip(io.inputs, example_inputs):
        axes = io.dims.get(name, (None,) * tensor.dim())
        if len(axes) != tensor.dim():
            raise UnsupportedModelError(
                f"input {name!r}: {len(axes)} axes declared, example has {tensor.dim()}"
            )
        dims: tuple[Dim, ...] = tuple(a if a else int(size) for a, size in zip(axes, tensor.shape))
        dtype = str(tensor.dtype).removeprefix("torch.")
        role = "lengths" if name in io.lengths else None
        specs.append(TensorSpec(name, dims, dtype, io.int_ranges.get(name), role))
    return specs


def streamable(model: nn.Module, io: ModelIO) -> bool:
    """Streams need carried states and nothing that looks ahead in time."""
    bidirectional = any(isinstance(m, nn.RNNBase) and m.bidirectional for m in model.modules())
    return bool(io.state_pairs) and not bidirectional


def whole_model_signature(
    io: ModelIO,
    inputs: Sequence[TensorSpec],
    output_dims: Sequence[tuple[Dim, ...]],
    output_dtypes: Sequence[str],
    is_streamable: bool,
) -> Signature:
    outputs = tuple(TensorSpec(n, d, t) for n, d, t in zip(io.outputs, output_dims, output_dtypes))
    return Signature(tuple(inputs), outputs, io.state_pairs, is_streamable)
