"""ExecuTorch programs (`model.pte`: exporter/pte_export.py) as a Session.

A fixed-chunk program runs a sequence of any length as its N-step chunks (`forward`), then
single steps (`step`) for the rest, the states carried between calls (only models that stream
have this variant). A dynamic-time program runs a sequence of up to its maximum length in one
call and refuses a longer one. The program's batch is 1: a batch runs one sequence at a time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.errors import InputError, RnnxError, first_line
from rnnx.core.manifest import Manifest
from rnnx.core.quiet import third_party_logs
from rnnx.core.signature import Signature
from rnnx.runtimes.base import Session
from rnnx.runtimes.streaming import assemble_chunks


class ExecuTorchSession(Session):
    runtime = "executorch"

    def __init__(self, path: str | os.PathLike, signature: Signature, notes: Any) -> None:
        import torch

        with third_party_logs():
            from executorch.runtime import Runtime

        super().__init__(signature)
        try:
            # no variant: written by an rnnx before dynamic-time, fixed-chunk
            dynamic = notes.get("variant", "fixed-chunk") == "dynamic-time"
            self.chunk = None if dynamic else int(notes["chunk"])
            self.max_time = int(notes["max_time"]) if dynamic else None
            methods = dict(notes["methods"])
        except (AttributeError, KeyError, TypeError, ValueError) as error:  # None, or a bad field
            raise RnnxError(f"'{path}': the manifest's pte notes are malformed ({error})") from None
        try:
            program = Runtime.get().load_program(Path(path))
            self._methods = {name: program.load_method(name) for name in methods}
        except Exception as error:  # ExecuTorch raises RuntimeError with its own codes
            raise RnnxError(f"ExecuTorch cannot load '{path}': {first_line(error)}") from error
        self._torch = torch
        self._timed = [t for t in signature.data_inputs if "time" in t.dims]

    @property
    def providers(self) -> list[str]:
        return ["executorch:xnnpack"]

    @property
    def limits(self) -> dict[str, int]:
        return {} if self.max_time is None else {"time": self.max_time}

    def _call(self, method: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = [self._torch.from_numpy(np.ascontiguousarray(feeds[n]))
                   for n in self.signature.input_names]  # fmt: skip
        try:
            outputs = self._methods[method].execute(tensors)
        except Exception as error:  # RuntimeError: method->execute() failed with error 0x..
            raise InputError(f"ExecuTorch cannot run {method}: {first_line(error)}") from error
        return {name: o.detach().numpy().copy()
                for name, o in zip(self.signature.output_names, outputs)}  # fmt: skip

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        first = self._timed[0]
        batch = feeds[first.name].shape[first.dims.index("batch")]
        if batch == 1:
            return self._sequence(feeds)
        signature = self.signature
        per_sequence = [self._sequence({
            t.name: np.take(feeds[t.name], [b], t.dims.index("batch")) if "batch" in t.dims
            else feeds[t.name] for t in signature.inputs
        }) for b in range(batch)]  # fmt: skip
        return {t.name: np.concatenate([r[t.name] for r in per_sequence], t.dims.index("batch"))
                for t in signature.outputs}  # fmt: skip

    def _sequence(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One sequence (batch 1): up to the maximum in one call (dynamic-time), or of any
        length as N-step chunks, then single steps (fixed-chunk)."""
        first = self._timed[0]
        batch, steps = 1, feeds[first.name].shape[first.dims.index("time")]
        if self.max_time is not None:
            if steps > self.max_time:
                raise InputError(
                    f"this pte program takes at most {self.max_time} time steps, got {steps}: "
                    "export again with a larger --max-time"
                )
            return self._call("forward", feeds)
        assert self.chunk is not None
        if steps == self.chunk:
            return self._call("forward", feeds)
        if "step" not in self._methods and self.chunk > 1:  # written by another rnnx
            raise InputError(f"this pte program takes exactly {self.chunk} time steps, got {steps}")
        signature = self.signature
        states = {name: feeds[name] for name in signature.state_inputs}
        pieces = []
        start = 0
        while start < steps:
            size = self.chunk if steps - start >= self.chunk else 1
            method = "forward" if size == self.chunk else "step"
            window = range(start, start + size)
            piece = {t.name: np.take(feeds[t.name], window, t.dims.index("time"))
                     for t in self._timed}  # fmt: skip
            outputs = self._call(method, {**feeds, **piece, **states})
            states = {i: outputs.pop(o) for o, i in signature.state_pairs}
            pieces.append(outputs)
            start += size
        result = {name: assemble_chunks(signature.output(name).dims, [p[name] for p in pieces],
                                        batch) for name in pieces[0]}  # fmt: skip
        result.update({o: states[i] for o, i in signature.state_pairs})
        return {name: result[name] for name in signature.output_names}


def open_executorch(
    path: Path,
    manifest: Manifest,
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
) -> ExecuTorchSession:
    """The "executorch" runtime's opener (rnnx/formats.py): CPU, XNNPACK."""
    if provider != "cpu":
        raise RnnxError(f"the executorch runtime runs on cpu here, not {provider!r}")
    return ExecuTorchSession(path, manifest.signature, manifest.notes.get("pte"))
