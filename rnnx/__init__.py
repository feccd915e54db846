"""rnnx: PyTorch recurrent models to ONNX Runtime and TorchScript, verified.

The public API is re-exported here lazily so that `import rnnx` (and `rnnx --help`) stays fast:
torch and onnxruntime are imported only when a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

from rnnx.core.version import __version__

__all__ = [
    "__version__",
    "export",
    "verify",
    "load",
    "bench",
    "LayerSpec",
    "ModelIO",
    "ExportOptions",
    "VerifyOptions",
    "BenchOptions",
    "LoadOptions",
    "RnnxError",
]

_LAZY = {
    "export": ("rnnx.pipeline", "export"),
    "ExportOptions": ("rnnx.pipeline", "ExportOptions"),
    "verify": ("rnnx.pipeline", "verify"),
    "VerifyOptions": ("rnnx.compare", "VerifyOptions"),
    "load": ("rnnx.formats", "load"),
    "bench": ("rnnx.benchmark", "bench"),
    "BenchOptions": ("rnnx.benchmark", "BenchOptions"),
    "LayerSpec": ("rnnx.core.spec", "LayerSpec"),
    "ModelIO": ("rnnx.exporter.model_io", "ModelIO"),
    "LoadOptions": ("rnnx.exporter.checkpoint", "LoadOptions"),
    "RnnxError": ("rnnx.core.errors", "RnnxError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(module_name), attribute)
    raise AttributeError(f"module 'rnnx' has no attribute {name!r}")
