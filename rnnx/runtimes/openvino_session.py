"""OpenVINO backend: the ONNX artifact compiled by OpenVINO for the CPU, at a chosen precision.

OpenVINO reads rnnx's ONNX graphs directly (native LSTM/GRU/RNN ops become its sequence ops).
The precision is OpenVINO's inference precision hint: "f32", or "bf16"/"f16" where the CPU has
them (AVX512-BF16 or AMX for bf16); a precision the CPU lacks is an error naming what it has.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.errors import RnnxError, UnsupportedModelError, first_line
from rnnx.core.manifest import Manifest
from rnnx.core.signature import Signature
from rnnx.runtimes.base import Session
from rnnx.runtimes.non_finite import graph_hides_nan, nan_sequences, poison

# rnnx's precision names -> OpenVINO's inference precision, and the CPU capability it needs.
PRECISIONS = {"f32": ("f32", "FP32"), "bf16": ("bf16", "BF16"), "f16": ("f16", "FP16")}


# The CPU flags of which native bf16 needs one (core/machine.py reads them, after the
# ONEDNN_MAX_CPU_ISA cap that OpenVINO's oneDNN obeys and its capability list ignores).
_BF16_FLAGS = ("avx512_bf16", "amx_tile")


def supported_precisions() -> list[str]:
    """The precisions this machine's CPU runs: OpenVINO's own capability list, and for bf16
    the CPU class too (OpenVINO lists BF16 even when ONEDNN_MAX_CPU_ISA caps its kernels below
    it, as on a machine of the lower class)."""
    import openvino as ov

    from rnnx.core.machine import this_machine

    capabilities = set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    if not any(flag in this_machine().flags for flag in _BF16_FLAGS):
        capabilities.discard("BF16")
    return [name for name, (_, needs) in PRECISIONS.items() if needs in capabilities]


class OpenVinoSession(Session):
    runtime = "openvino"

    def __init__(
        self,
        path: str | os.PathLike,
        signature: Signature,
        *,
        precision: str = "f32",
        threads: int | None = None,
    ) -> None:
        import openvino as ov

        super().__init__(signature)
        if precision not in PRECISIONS:
            raise RnnxError(
                f"precision {precision!r} is not one rnnx knows; expected {', '.join(PRECISIONS)}"
            )
        supported = supported_precisions()
        if precision not in supported:
            raise RnnxError(
                f"precision {precision!r} is not supported by this CPU in OpenVINO; it supports "
                f"{', '.join(supported)}"
            )
        _refuse_untyped_scan(path)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": PRECISIONS[precision][0]}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self._compiled = ov.Core().compile_model(os.fspath(path), "CPU", config)
        except Exception as error:  # OpenVINO raises RuntimeError with a multi-line report
            raise RnnxError(f"OpenVINO cannot compile '{path}': {first_line(error)}") from error
        self.precision = precision
        # Its CPU kernels hide a NaN input too (ReLU RNN): the sequence gets NaN, as in eager.
        self._hides_nan = graph_hides_nan(path)
        self._names = [output.get_any_name() for output in self._compiled.outputs]
        self._input_names = [port.get_any_name() for port in self._compiled.inputs]
        self._tensor = ov.Tensor
        # An infer request is not for concurrent use: one per thread, so streams on several
        # threads can share the session as with the other runtimes.
        self._local = threading.local()

    @property
    def providers(self) -> list[str]:
        return [f"openvino:CPU:{self.precision}"]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        # Inputs shared, not copied (the call is synchronous): OpenVINO's default copies each
        # input into the request, which doubled a small model's call (keyword spotter 1×100
        # bf16: 0.60 -> 0.27 ms). Tensors set by index and the outputs read from the request,
        # rather than through infer(dict), which dispatches on each value's type in Python: 40
        # of that model's ~320 µs. The outputs are copied, as they must be: the request reuses
        # its buffers on the next call.
        for index, name in enumerate(self._input_names):
            array = np.ascontiguousarray(feeds[name])
            request.set_input_tensor(index, self._tensor(array, shared_memory=True))
        request.infer()
        outputs = {name: request.get_output_tensor(index).data.copy()
                   for index, name in enumerate(self._names)}  # fmt: skip
        mask = nan_sequences(self.signature, feeds) if self._hides_nan else None
        return outputs if mask is None else poison(self.signature, outputs, mask)


def _refuse_untyped_scan(path: str | os.PathLike) -> None:
    """Projected LSTMs are ONNX Scans. OpenVINO 2026 runs them when the Scan body's inputs carry
    an element type (rnnx's lowering writes them typed); untyped ones, as exports of rnnx before
    that wrote, compile and then fail at inference or return empty outputs: refuse those here
    rather than run them wrong."""
    import onnx

    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    for node in graph.node:
        bodies = [a.g for a in node.attribute if node.op_type == "Scan" and a.name == "body"]
        if any(not v.type.tensor_type.elem_type for body in bodies for v in body.input):
            raise UnsupportedModelError(
                f"'{path}' holds a projected LSTM written by an older rnnx (its Scan body is "
                "untyped, which OpenVINO runs wrong): export it again"
            )


def open_openvino(
    path: Path,
    manifest: Manifest,
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
    precision: str = "f32",
) -> OpenVinoSession:
    """The "openvino" runtime's opener (rnnx/formats.py): the CPU device only."""
    if provider != "cpu":
        raise RnnxError(f"the openvino runtime runs on cpu here, not {provider!r}")
    return OpenVinoSession(path, manifest.signature, precision=precision, threads=threads)
