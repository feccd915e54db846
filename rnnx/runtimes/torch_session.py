"""PyTorch backends: TorchScript artifacts and the eager module (the reference)."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnx.core.errors import FallbackWarning, RnnxError, first_line
from rnnx.core.manifest import Manifest
from rnnx.core.quiet import torch_kernel_notices
from rnnx.core.signature import Signature
from rnnx.runtimes.base import Session


def torch_device(device: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:1' -> torch.device, with a clear error when CUDA is missing."""
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise RnnxError(
            f"device {device!r} is not a torch device (expected cpu, cuda or cuda:N)"
        ) from error
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise RnnxError(f"device {device!r} requested but this torch build sees no CUDA device")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise RnnxError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif parsed.type != "cpu":
        raise RnnxError(f"device {device!r} is not supported (expected cpu, cuda or cuda:N)")
    return parsed


def fallback_device(device: str, allow_fallback: bool) -> str:
    """`device`, or cpu with a warning when CUDA is missing and the caller allows it."""
    if device.startswith("cuda") and not torch.cuda.is_available() and allow_fallback:
        warnings.warn(
            f"device {device!r} is not available; running on cpu", FallbackWarning, stacklevel=4
        )
        return "cpu"
    return device


class EagerSession(Session):
    """Runs an nn.Module whose forward takes the signature's inputs in order."""

    runtime = "eager"
    _first_call = True  # see _forward

    def __init__(
        self, module: torch.nn.Module, signature: Signature, *, device: str = "cpu"
    ) -> None:
        super().__init__(signature)
        self.device = torch_device(device)
        self.module = module.eval().to(self.device)

    @property
    def providers(self) -> list[str]:
        return [str(self.device)]

    def _forward(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # torch's notice about a projected LSTM's CPU kernel comes once per process, on the
        # first forward of such a module: a session's first call is where it can arise (later
        # calls are not wrapped: catch_warnings touches process state, and streams run in
        # threads).
        quiet = torch_kernel_notices() if self._first_call else contextlib.nullcontext()
        self._first_call = False
        with torch.inference_mode(), quiet:
            result = self.module(*(tensors[n] for n in self.signature.input_names))
        if isinstance(result, torch.Tensor):
            result = (result,)
        return dict(zip(self.signature.output_names, result))

    def _to_device(self, arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {
            name: torch.from_numpy(np.ascontiguousarray(a)).to(self.device, non_blocking=True)
            for name, a in arrays.items()
        }

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._forward(self._to_device(feeds))
        return {name: t.cpu().numpy() for name, t in outputs.items()}

    # Streaming states stay torch tensors on the session's device between chunks.
    def _state_from_numpy(self, state: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return self._to_device(state)

    def _state_to_numpy(self, state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {name: t.cpu().numpy() for name, t in state.items()}

    def _step(self, feeds: dict[str, np.ndarray], state: Any) -> tuple[dict, dict]:
        outputs = self._forward({**self._to_device(feeds), **state})
        next_state = {i: outputs.pop(o) for o, i in self.signature.state_pairs}
        return {name: t.cpu().numpy() for name, t in outputs.items()}, next_state


class TorchScriptSession(EagerSession):
    runtime = "torchscript"

    def __init__(
        self, path: str | os.PathLike, signature: Signature, *, device: str = "cpu"
    ) -> None:
        target = torch_device(device)
        try:
            module = torch.jit.load(os.fspath(path), map_location=target)
        except Exception as error:
            raise RnnxError(f"cannot load TorchScript '{path}': {first_line(error)}") from error
        super().__init__(module, signature, device=device)


def open_torchscript(
    path: Path,
    manifest: Manifest,
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
) -> TorchScriptSession:
    """The "torchscript" runtime's opener (rnnx/formats.py). `threads` is torch's own setting,
    process-wide, so it is left to the caller (torch.set_num_threads)."""
    device = fallback_device(provider, allow_fallback)
    return TorchScriptSession(path, manifest.signature, device=device)
