"""PyTorch backends: TorchScript artifacts and the eager module (the reference)."""

from __future__ import annotations

import os

import numpy as np
import torch

from rnnx.exporter.signature import Signature
from rnnx.runtimes.base import Session


class EagerSession(Session):
    """Runs an nn.Module whose forward takes the signature's inputs in order."""

    runtime = "eager"

    def __init__(
        self, module: torch.nn.Module, signature: Signature, *, device: str = "cpu"
    ) -> None:
        super().__init__(signature)
        self.device = torch.device(device)
        self.module = module.eval().to(self.device)

    @property
    def providers(self) -> list[str]:
        return [str(self.device)]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = [
            torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in feeds.values()
        ]
        with torch.inference_mode():
            result = self.module(*tensors)
        if isinstance(result, torch.Tensor):
            result = (result,)
        return {
            name: tensor.detach().cpu().numpy()
            for name, tensor in zip(self.signature.output_names, result)
        }


class TorchScriptSession(EagerSession):
    runtime = "torchscript"

    def __init__(
        self, path: str | os.PathLike, signature: Signature, *, device: str = "cpu"
    ) -> None:
        module = torch.jit.load(os.fspath(path), map_location=device)
        super().__init__(module, signature, device=device)
