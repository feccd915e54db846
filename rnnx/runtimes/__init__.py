"""Runtimes behind one protocol (see base.Session), opened from an export directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rnnx.errors import RnnxError
from rnnx.runtimes.base import Session
from rnnx.runtimes.streaming import Stream, step_together

__all__ = ["RUNTIMES", "Session", "Stream", "load", "step_together"]

RUNTIMES = ("onnxruntime", "torchscript", "eager")


def load(
    export_dir: str | os.PathLike,
    runtime: str = "onnxruntime",
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
    reference: Any = None,
    artifact: str | None = None,
    **onnxruntime_options: Any,
) -> Session:
    """Open an export directory as a Session: `session.run(feeds) -> outputs`.

    runtime: "onnxruntime" (provider "cpu", "cuda[:N]" or any installed execution provider by
    name), "torchscript" or "eager" (provider is the torch device: "cpu", "cuda[:N]"). The eager
    model is rebuilt from the checkpoint recorded at export, or is `reference` if given.
    `artifact` picks another ONNX file of the export for onnxruntime ("onnx_int8").
    Extra keyword arguments are OnnxRuntimeOptions fields (inter_op_threads,
    graph_optimization, optimized_model_path, provider_options).
    """
    from rnnx.exporter.manifest import artifact_paths, manifest_signature, read_manifest

    if runtime not in RUNTIMES:
        raise RnnxError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    if onnxruntime_options and runtime != "onnxruntime":
        raise RnnxError(f"{', '.join(onnxruntime_options)} apply to the onnxruntime runtime only")
    manifest = read_manifest(export_dir)
    signature = manifest_signature(manifest)
    if runtime == "eager":
        device = _torch_device(provider, allow_fallback)
        return _eager(export_dir, manifest, signature, device, reference)
    if artifact is not None and (runtime != "onnxruntime" or not artifact.startswith("onnx")):
        raise RnnxError(f"artifact {artifact!r} is not an ONNX model for onnxruntime")
    artifact = artifact or ("onnx" if runtime == "onnxruntime" else "torchscript")
    path: Path | None = artifact_paths(export_dir, manifest).get(artifact)
    if path is None or not path.is_file():
        raise RnnxError(
            f"'{export_dir}' has no {artifact} artifact (export with --format {artifact})"
        )
    if runtime == "torchscript":
        from rnnx.runtimes.torch_session import TorchScriptSession

        return TorchScriptSession(path, signature, device=_torch_device(provider, allow_fallback))
    import dataclasses

    from rnnx.runtimes.onnxruntime_session import OnnxRuntimeOptions, OnnxRuntimeSession

    known = {f.name for f in dataclasses.fields(OnnxRuntimeOptions)}
    unknown = sorted(set(onnxruntime_options) - known)
    if unknown:
        raise RnnxError(
            f"unknown onnxruntime option {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )
    options = OnnxRuntimeOptions(
        threads=threads, allow_fallback=allow_fallback, **onnxruntime_options
    )
    return OnnxRuntimeSession(path, signature, provider=provider, options=options)


def _torch_device(device: str, allow_fallback: bool) -> str:
    import warnings

    import torch

    if device.startswith("cuda") and not torch.cuda.is_available() and allow_fallback:
        warnings.warn(
            f"device {device!r} is not available; running on cpu", RuntimeWarning, stacklevel=3
        )
        return "cpu"
    return device


def _eager(export_dir: Any, manifest: dict, signature: Any, device: str, reference: Any) -> Session:
    from rnnx.exporter.checkpoint import load_module_from_source
    from rnnx.exporter.model_io import reference_module
    from rnnx.runtimes.torch_session import EagerSession

    if reference is None:
        if not manifest.get("source"):
            raise RnnxError(
                f"'{export_dir}' was exported from an in-memory model: pass it as reference="
            )
        reference = load_module_from_source(manifest["source"])
    reference = reference_module(manifest, reference)
    return EagerSession(reference, signature, device=device)
