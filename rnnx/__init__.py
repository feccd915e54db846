"""rnnx: PyTorch recurrent models to ONNX Runtime and TorchScript, verified.

The public API is re-exported here lazily so that `import rnnx` (and `rnnx --help`) stays fast:
torch and onnxruntime are imported only when a function that needs them is called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Bound eagerly: the submodules rnnx/verify.py and rnnx/bench.py would otherwise shadow the
# functions of the same names once imported. They need only numpy at import time, so
# `import rnnx` stays free of torch/onnxruntime.
from rnnx.bench import BenchOptions, bench  # noqa: E402
from rnnx.verify import VerifyOptions, verify  # noqa: E402

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
]

_LAZY = {
    "export": ("rnnx.exporter.api", "export"),
    "ExportOptions": ("rnnx.exporter.api", "ExportOptions"),
    "load": ("rnnx.runtimes", "load"),
    "LayerSpec": ("rnnx.exporter.spec", "LayerSpec"),
    "ModelIO": ("rnnx.exporter.model_io", "ModelIO"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'rnnx' has no attribute {name!r}")
