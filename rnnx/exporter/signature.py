"""The exported graph's inputs and outputs, and how states flow from outputs back to inputs.

A `Signature` is what runtimes validate feeds against, what the verifier draws random inputs
from, and what travels inside the artifacts as metadata (so C++ and other consumers discover
names, layouts and state pairs without rnnx). Dimensions are ints or the symbolic names
"batch" and "time".
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from rnnx.exporter.spec import LayerSpec

Dim = int | str


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    dims: tuple[Dim, ...]
    dtype: str = "float32"
    high: int | None = None  # integer inputs (token ids): valid values are [0, high)
    role: str | None = None  # "lengths": each sequence's length in a padded batch

    def shape_for(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.dims)

    @property
    def axis_names(self) -> tuple[str | None, ...]:
        """Per axis: "batch", "time" (or another symbolic name), or None for a fixed size."""
        return tuple(d if isinstance(d, str) else None for d in self.dims)

    def describe(self) -> str:
        return f"{self.name}[{', '.join(str(d) for d in self.dims)}]"


@dataclasses.dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # final-state output name -> initial-state input name
    state_pairs: tuple[tuple[str, str], ...] = ()
    # True when feeding a sequence chunk by chunk, carrying the states, equals one call on the
    # whole sequence: the model has states and no part of it looks ahead (no reverse direction).
    streamable: bool = False

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def state_inputs(self) -> list[str]:
        return [i for _, i in self.state_pairs]

    @property
    def data_inputs(self) -> list[TensorSpec]:
        """The inputs that are not states (what a stream is fed)."""
        states = set(self.state_inputs)
        return [t for t in self.inputs if t.name not in states]

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(t for t in self.outputs if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [_tensor_dict(t) for t in self.inputs],
            "outputs": [_tensor_dict(t) for t in self.outputs],
            "state_pairs": [list(p) for p in self.state_pairs],
            "streamable": self.streamable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        def tensors(items: Any) -> tuple[TensorSpec, ...]:
            return tuple(
                TensorSpec(
                    t["name"],
                    tuple(t["dims"]),
                    t.get("dtype", "float32"),
                    t.get("high"),
                    t.get("role"),
                )
                for t in items
            )

        return cls(
            inputs=tensors(data["inputs"]),
            outputs=tensors(data["outputs"]),
            state_pairs=tuple((o, i) for o, i in data.get("state_pairs", [])),
            streamable=bool(data.get("streamable", False)),
        )

    @classmethod
    def for_layer(cls, spec: LayerSpec, *, stateless: bool = False) -> Signature:
        """input, h0[, c0] -> output, h_n[, c_n], mirroring nn.RNN/LSTM/GRU's forward."""
        seq: tuple[Dim, Dim] = ("batch", "time") if spec.batch_first else ("time", "batch")
        inputs = [TensorSpec("input", (*seq, spec.input_size))]
        outputs = [TensorSpec("output", (*seq, spec.num_directions * spec.output_size))]
        if stateless:
            return cls(tuple(inputs), tuple(outputs))
        stack = spec.num_layers * spec.num_directions
        for initial, final in zip(spec.state_names, spec.final_state_names):
            inputs.append(TensorSpec(initial, (stack, "batch", spec.state_size(initial))))
            outputs.append(TensorSpec(final, (stack, "batch", spec.state_size(initial))))
        pairs = tuple(zip(spec.final_state_names, spec.state_names))
        return cls(tuple(inputs), tuple(outputs), pairs, streamable=not spec.bidirectional)


def _tensor_dict(tensor: TensorSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"name": tensor.name, "dims": list(tensor.dims), "dtype": tensor.dtype}
    if tensor.high is not None:
        data["high"] = tensor.high
    if tensor.role is not None:
        data["role"] = tensor.role
    return data


METADATA_PREFIX = "rnnx."


def artifact_metadata(signature: Signature, spec: LayerSpec | None, version: str) -> dict[str, str]:
    """Flat string metadata stored in ONNX metadata_props and TorchScript extra files.

    Simple comma-separated keys for consumers without a JSON parser (the C++ side), plus the
    whole signature and spec as JSON.
    """
    first = signature.inputs[0]
    meta = {
        "version": version,
        "inputs": ",".join(signature.input_names),
        "outputs": ",".join(signature.output_names),
        "state_pairs": ",".join(f"{o}:{i}" for o, i in signature.state_pairs),
        "batch_axis": str(first.dims.index("batch")) if "batch" in first.dims else "",
        "time_axis": str(first.dims.index("time")) if "time" in first.dims else "",
        "streamable": "1" if signature.streamable else "0",
        "signature": json.dumps(signature.to_dict()),
    }
    if spec is not None:
        meta["spec"] = json.dumps(spec.to_dict())
    return {METADATA_PREFIX + k: v for k, v in meta.items()}


def random_inputs(
    signature: Signature, sizes: Mapping[str, int], *, seed: int = 0, zero_state: bool = False
) -> dict[str, Any]:
    """Unit-scale random float32 inputs for `signature` at the given batch/time sizes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    states = set(signature.state_inputs)
    feeds = {}
    for tensor in signature.inputs:
        shape = tensor.shape_for(sizes)
        if tensor.role == "lengths":
            feeds[tensor.name] = sequence_lengths(shape[0], sizes["time"]).astype(tensor.dtype)
        elif tensor.dtype != "float32":
            feeds[tensor.name] = rng.integers(0, tensor.high or 2, shape).astype(tensor.dtype)
        elif zero_state and tensor.name in states:
            feeds[tensor.name] = np.zeros(shape, dtype=np.float32)
        else:
            feeds[tensor.name] = rng.standard_normal(shape, dtype=np.float32)
    return feeds


def zero_states(signature: Signature, batch: int) -> dict[str, Any]:
    """Initial states of zeros, as a stream or a call without given states starts."""
    import numpy as np

    return {
        name: np.zeros(signature.input(name).shape_for({"batch": batch}), np.float32)
        for name in signature.state_inputs
    }


def sequence_lengths(batch: int, time: int) -> Any:
    """Valid lengths for a padded batch: from `time` (the longest) down to 1, sorted descending
    as pack_padded_sequence(enforce_sorted=True) requires."""
    import numpy as np

    return np.round(np.linspace(time, 1, batch)).astype(np.int64)
