"""rnnx: PyTorch recurrent models to ONNX Runtime and TorchScript, verified.

The public API is re-exported here lazily so that `import rnnx` (and `rnnx --help`) stays fast:
torch and onnxruntime are imported only when a function that needs them is called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Bound eagerly: the submodule rnnx/verify.py would otherwise shadow the function of the same
# name once imported. It needs only numpy, so `import rnnx` stays free of torch/onnxruntime.
from rnnx.verify import VerifyOptions, verify  # noqa: E402

__all__ = ["__version__", "export", "verify", "load", "LayerSpec", "ExportOptions", "VerifyOptions"]

_LAZY = {
    "export": ("rnnx.exporter.api", "export"),
    "ExportOptions": ("rnnx.exporter.api", "ExportOptions"),
    "load": ("rnnx.runtimes", "load"),
    "LayerSpec": ("rnnx.exporter.spec", "LayerSpec"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'rnnx' has no attribute {name!r}")
