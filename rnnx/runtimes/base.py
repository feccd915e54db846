"""One protocol for every backend: `run(feeds) -> outputs`, named numpy arrays in and out.

The base class validates feeds against the model's Signature once, so every backend reports
the same clear errors before any backend code runs. A backend implements `_run`, and may keep
streaming state in its own form (device memory) by overriding the three `_state` hooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnx.errors import InputError
from rnnx.exporter.signature import Signature, TensorSpec

if TYPE_CHECKING:
    from rnnx.runtimes.streaming import Stream


class Session:
    runtime = "base"

    def __init__(self, signature: Signature) -> None:
        self.signature = signature

    @property
    def providers(self) -> list[str]:
        """Where the computation actually runs (onnxruntime providers, torch devices)."""
        return ["cpu"]

    def run(self, feeds: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
        """Run on named inputs (or positional ones, in the signature's order)."""
        named = self._name(feeds)
        validate(self.signature.inputs, named)
        return self._run(named)

    def stream(self, batch: int = 1) -> Stream:
        """A stateful stream over this session; many streams may share one session."""
        from rnnx.runtimes.streaming import Stream

        return Stream(self, batch)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # Streaming hooks. The default keeps states as numpy arrays; device backends keep them on
    # the device between steps so a stream never copies its state to the host and back.
    def _state_from_numpy(self, state: dict[str, np.ndarray]) -> Any:
        return state

    def _state_to_numpy(self, state: Any) -> dict[str, np.ndarray]:
        return state

    def _step(self, feeds: dict[str, np.ndarray], state: Any) -> tuple[dict[str, np.ndarray], Any]:
        """One call with `state` as the initial states.

        Returns the data outputs (not the final states) and the next state.
        """
        outputs = self._run({**feeds, **state})
        next_state = {i: outputs.pop(o) for o, i in self.signature.state_pairs}
        return outputs, next_state

    def _name(self, feeds: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
        names = self.signature.input_names
        if not isinstance(feeds, Mapping):
            feeds = list(feeds)
            if len(feeds) != len(names):
                raise InputError(
                    f"expected {len(names)} inputs ({', '.join(names)}), got {len(feeds)}"
                )
            feeds = dict(zip(names, feeds))
        check_names(feeds, names)
        return {n: np.asarray(feeds[n]) for n in names}


def check_names(feeds: Iterable[str], names: list[str]) -> None:
    given = list(feeds)
    unknown = [n for n in given if n not in names]
    if unknown:
        raise InputError(f"unknown input {unknown[0]!r}; the model's inputs are {', '.join(names)}")
    missing = [n for n in names if n not in given]
    if missing:
        raise InputError(f"missing input {missing[0]!r}; the model's inputs are {', '.join(names)}")


def validate(
    specs: Iterable[TensorSpec], feeds: Mapping[str, np.ndarray], sizes: Mapping[str, int] = {}
) -> None:
    """Check dtype, rank, fixed sizes and that symbolic dims (batch, time) agree across inputs.

    `sizes` pins symbolic dims in advance (a stream's batch).
    """
    seen = {dim: (size, "the stream") for dim, size in sizes.items()}
    for spec in specs:
        array = feeds[spec.name]
        expected = spec.describe()
        if array.dtype != np.dtype(spec.dtype):
            raise InputError(f"input {spec.name!r} has dtype {array.dtype}, expected {spec.dtype}")
        if array.ndim != len(spec.dims):
            raise InputError(
                f"input {spec.name!r} has shape {list(array.shape)} (rank {array.ndim}), "
                f"expected {expected}"
            )
        for axis, (dim, size) in enumerate(zip(spec.dims, array.shape)):
            if isinstance(dim, int) and size != dim:
                raise InputError(
                    f"input {spec.name!r} has size {size} on axis {axis}, expected {dim} "
                    f"(shape {expected})"
                )
            if isinstance(dim, str):
                if size < 1:
                    raise InputError(f"input {spec.name!r} has an empty {dim} axis")
                first = seen.setdefault(dim, (size, repr(spec.name)))
                if first[0] != size:
                    raise InputError(
                        f"input {spec.name!r} has {dim} size {size} but {first[1]} "
                        f"has {dim} size {first[0]}"
                    )
