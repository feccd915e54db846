"""One protocol for every backend: `run(feeds) -> outputs`, named numpy arrays in and out.

The base class validates feeds against the model's Signature once, so every backend reports
the same clear errors before any backend code runs. A backend implements `_run`, and may keep
streaming state in its own form (device memory) by overriding the three `_state` hooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnnx.core.errors import InputError
from rnnx.core.signature import Signature
from rnnx.runtimes.streaming import Stream


class Session:
    runtime = "base"
    # The most an axis may hold in one call of this artifact ({"time": T} for a pte program
    # exported with --max-time T); the verifier checks it at sizes within them.
    limits: Mapping[str, int] = {}

    def __init__(self, signature: Signature) -> None:
        self.signature = signature

    @property
    def providers(self) -> list[str]:
        """Where the computation actually runs (onnxruntime providers, torch devices)."""
        return ["cpu"]

    def run(self, feeds: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
        """Run on named inputs (or positional ones, in the signature's order).

        State inputs left out start at zero (the same policy as `rnnx run` and C++ Model::run).
        """
        return self._run(self.signature.check_feeds(self._name(feeds)))

    def stream(self, batch: int = 1) -> Stream:
        """A stateful stream over this session; many streams may share one session."""
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

    def _name(self, feeds: Mapping[str, Any] | Sequence[Any]) -> Mapping[str, Any]:
        if isinstance(feeds, Mapping):
            return feeds
        names = self.signature.input_names
        feeds = list(feeds)
        data = len(self.signature.data_inputs)
        if not data <= len(feeds) <= len(names):
            raise InputError(f"expected {len(names)} inputs ({', '.join(names)}), got {len(feeds)}")
        return dict(zip(names, feeds))
