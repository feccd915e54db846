"""What a recurrent layer is, inferred from a module or from its state_dict.

A `LayerSpec` is the single description every other part reads: the exporter lowers it to ONNX
ops, the manifest records it, runtimes derive input/output names and state shapes from it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from rnnx.core.errors import CheckpointError, UnsupportedModelError

# PyTorch's mode names (the same strings nn.RNNBase.mode uses).
KINDS = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}

_PARAM_KEY = re.compile(r"^(weight_ih|weight_hh|weight_hr|bias_ih|bias_hh)_l(\d+)(_reverse)?$")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    kind: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    batch_first: bool = False
    bias: bool = True
    proj_size: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UnsupportedModelError(
                f"unknown recurrent kind {self.kind!r}; expected one of {KINDS}"
            )
        if self.proj_size and self.kind != "LSTM":
            raise UnsupportedModelError("proj_size is only defined for LSTM")
        if self.proj_size >= self.hidden_size > 0 and self.proj_size:
            raise UnsupportedModelError(
                f"proj_size ({self.proj_size}) must be smaller than "
                f"hidden_size ({self.hidden_size})"
            )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Size of h (and of each direction's output): proj_size when projecting."""
        return self.proj_size or self.hidden_size

    @property
    def has_cell_state(self) -> bool:
        return self.kind == "LSTM"

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the initial-state inputs, in forward's order."""
        return ("h0", "c0") if self.has_cell_state else ("h0",)

    @property
    def final_state_names(self) -> tuple[str, ...]:
        return ("h_n", "c_n") if self.has_cell_state else ("h_n",)

    def state_size(self, name: str) -> int:
        return self.hidden_size if name == "c0" else self.output_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    @classmethod
    def from_module(cls, module: Any) -> LayerSpec:
        import torch.nn as nn

        if not isinstance(module, nn.RNNBase):
            raise UnsupportedModelError(
                f"{type(module).__name__} is not an nn.RNN, nn.LSTM or nn.GRU layer"
            )
        mode = module.mode
        return cls(
            kind=mode,
            input_size=module.input_size,
            hidden_size=module.hidden_size,
            num_layers=module.num_layers,
            bidirectional=module.bidirectional,
            batch_first=module.batch_first,
            bias=module.bias,
            proj_size=getattr(module, "proj_size", 0),
            dropout=float(module.dropout),
        )

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, Any],
        *,
        nonlinearity: str = "tanh",
        batch_first: bool = False,
        source: str = "state_dict",
    ) -> LayerSpec:
        """Infer a bare layer's architecture from its parameter names and shapes.

        The kind comes from the gate count (rows of weight_ih / hidden size): 4 → LSTM,
        3 → GRU, 1 → RNN (tanh unless `nonlinearity="relu"`, which the weights cannot tell).
        """
        shapes: dict[tuple[str, int, bool], tuple[int, ...]] = {}
        for key, value in state_dict.items():
            match = _PARAM_KEY.match(key)
            if not match or not hasattr(value, "shape"):
                raise CheckpointError(
                    f"{source}: key {key!r} is not a parameter of nn.RNN/nn.LSTM/nn.GRU "
                    "(expected names like weight_ih_l0, bias_hh_l1_reverse); "
                    "use --model to export another module"
                )
            name, layer, reverse = match.group(1), int(match.group(2)), bool(match.group(3))
            shapes[(name, layer, reverse)] = tuple(value.shape)
        if ("weight_ih", 0, False) not in shapes or ("weight_hh", 0, False) not in shapes:
            raise CheckpointError(f"{source}: no weight_ih_l0/weight_hh_l0, not a recurrent layer")
        for (name, layer, reverse), shape in shapes.items():
            rank = 1 if name.startswith("bias") else 2
            if len(shape) != rank or 0 in shape:
                key = f"{name}_l{layer}{'_reverse' if reverse else ''}"
                raise CheckpointError(
                    f"{source}: {key} has shape {list(shape)}, not a non-empty {rank}-D tensor"
                )

        num_layers = 1 + max(layer for _, layer, _ in shapes)
        bidirectional = any(reverse for _, _, reverse in shapes)
        bias = ("bias_ih", 0, False) in shapes
        gate_rows, input_size = shapes[("weight_ih", 0, False)]
        w_hh_rows, w_hh_cols = shapes[("weight_hh", 0, False)]
        proj = shapes.get(("weight_hr", 0, False))
        proj_size = proj[0] if proj else 0
        hidden_size = proj[1] if proj else w_hh_cols
        gates, remainder = divmod(gate_rows, hidden_size)
        kind_by_gates = {
            4: "LSTM",
            3: "GRU",
            1: "RNN_RELU" if nonlinearity == "relu" else "RNN_TANH",
        }
        if remainder or gates not in kind_by_gates or w_hh_rows != gate_rows:
            raise CheckpointError(
                f"{source}: weight_ih_l0 {list(shapes[('weight_ih', 0, False)])} and weight_hh_l0 "
                f"{[w_hh_rows, w_hh_cols]} do not form an RNN, GRU or LSTM layer (expected both "
                f"to have 1, 3 or 4 × hidden size {hidden_size} rows)"
            )
        if nonlinearity not in ("tanh", "relu"):
            raise CheckpointError(f"--nonlinearity must be tanh or relu, got {nonlinearity!r}")
        if nonlinearity == "relu" and gates != 1:
            raise CheckpointError("--nonlinearity relu applies to nn.RNN only, not LSTM/GRU")
        spec = cls(
            kind=kind_by_gates[gates],
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            bias=bias,
            proj_size=proj_size,
        )
        expected = set(spec.parameter_shapes())
        if set(shapes) != expected:
            missing = sorted(_key(*k) for k in expected - set(shapes))
            unexpected = sorted(_key(*k) for k in set(shapes) - expected)
            raise CheckpointError(
                f"{source}: inconsistent layer parameters (missing: {missing or 'none'}, "
                f"unexpected: {unexpected or 'none'})"
            )
        for k, shape in spec.parameter_shapes().items():
            if shapes[k] != shape:
                raise CheckpointError(
                    f"{source}: {_key(*k)} has shape {list(shapes[k])}, expected {list(shape)} "
                    f"for a {spec.describe()}"
                )
        return spec

    def parameter_shapes(self) -> dict[tuple[str, int, bool], tuple[int, ...]]:
        """The (name, layer, reverse) → shape table of nn.RNNBase's parameters."""
        gates = GATES[self.kind] * self.hidden_size
        table: dict[tuple[str, int, bool], tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.output_size * self.num_directions
            for reverse in (False, True)[: self.num_directions]:
                table[("weight_ih", layer, reverse)] = (gates, layer_input)
                table[("weight_hh", layer, reverse)] = (gates, self.output_size)
                if self.bias:
                    table[("bias_ih", layer, reverse)] = (gates,)
                    table[("bias_hh", layer, reverse)] = (gates,)
                if self.proj_size:
                    table[("weight_hr", layer, reverse)] = (self.proj_size, self.hidden_size)
        return table

    def build(self) -> Any:
        """A fresh eval-mode nn.RNN/LSTM/GRU with this architecture."""
        import torch.nn as nn

        common = dict(
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bias=self.bias,
            batch_first=self.batch_first,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
        )
        if self.kind == "LSTM":
            module = nn.LSTM(proj_size=self.proj_size, **common)
        elif self.kind == "GRU":
            module = nn.GRU(**common)
        else:
            nonlinearity = "relu" if self.kind == "RNN_RELU" else "tanh"
            module = nn.RNN(nonlinearity=nonlinearity, **common)
        return module.eval()

    def describe(self) -> str:
        parts = [
            f"{self.kind}({self.input_size}→{self.hidden_size})",
            f"{self.num_layers} layer(s)",
        ]
        if self.bidirectional:
            parts.append("bidirectional")
        if self.batch_first:
            parts.append("batch_first")
        if not self.bias:
            parts.append("no bias")
        if self.proj_size:
            parts.append(f"proj {self.proj_size}")
        return ", ".join(parts)


def _key(name: str, layer: int, reverse: bool) -> str:
    return f"{name}_l{layer}{'_reverse' if reverse else ''}"
