"""onnxruntime backend."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from rnnx.errors import RnnxError
from rnnx.exporter.signature import Signature
from rnnx.runtimes.base import Session

# Short provider names users type, and the execution provider each stands for.
PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRuntimeSession(Session):
    runtime = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike,
        signature: Signature,
        *,
        provider: str = "cpu",
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        super().__init__(signature)
        name, _, device = provider.partition(":")
        ep = PROVIDER_ALIASES.get(name.lower(), provider)
        available = ort.get_available_providers()
        if ep not in available:
            raise RnnxError(
                f"provider {provider!r} ({ep}) is not available; available: {', '.join(available)}"
            )
        options: dict[str, Any] = {"device_id": int(device)} if device else {}
        session_options = ort.SessionOptions()
        if threads:
            session_options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                os.fspath(path), session_options, providers=[(ep, options)]
            )
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise RnnxError(f"onnxruntime cannot load '{path}': {first_line[:300]}") from error
        self._output_names = [o.name for o in self._session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return self._session.get_providers()

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, outputs))
