"""AOTInductor packages (`model.pt2`) as a Session: the compiled model, loaded in-process."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rnnx.core.errors import RnnxError, first_line
from rnnx.core.manifest import Manifest
from rnnx.core.signature import Signature
from rnnx.runtimes.base import Session
from rnnx.runtimes.torch_session import EagerSession, torch_device


class AotiSession(EagerSession):
    """Runs a package from torch._inductor.aoti_load_package; the package is called like the
    exported module (its inputs in the signature's order, a list of outputs back), so the
    eager session's feeding and streaming (states kept as tensors between steps) apply."""

    runtime = "aoti"

    def __init__(self, path: str | os.PathLike, signature: Signature) -> None:
        Session.__init__(self, signature)
        self.device = torch_device("cpu")
        try:
            self.module = torch._inductor.aoti_load_package(os.fspath(path))
        except Exception as error:
            message = f"cannot load AOTInductor package '{path}': {first_line(error)}"
            raise RnnxError(message) from error


def open_aoti(
    path: Path,
    manifest: Manifest,
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
) -> AotiSession:
    """The "aoti" runtime's opener (rnnx/formats.py). The package is compiled for CPU, so
    provider is cpu; `threads`, as for TorchScript, is torch's process-wide setting."""
    if provider != "cpu":
        raise RnnxError(f"the aoti runtime runs CPU packages; provider {provider!r} is not cpu")
    return AotiSession(path, manifest.signature)
