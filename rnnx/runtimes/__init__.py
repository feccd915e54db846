"""Runtimes behind one protocol (see base.Session), opened from an export directory."""

from __future__ import annotations

import os
from pathlib import Path

from rnnx.errors import RnnxError
from rnnx.runtimes.base import Session

__all__ = ["Session", "load", "RUNTIMES"]

RUNTIMES = ("onnxruntime", "torchscript")


def load(
    export_dir: str | os.PathLike,
    runtime: str = "onnxruntime",
    *,
    provider: str = "cpu",
    threads: int | None = None,
) -> Session:
    """Open an artifact of an export directory as a Session: `session.run(feeds) -> outputs`."""
    from rnnx.exporter.manifest import artifact_paths, manifest_signature, read_manifest

    if runtime not in RUNTIMES:
        raise RnnxError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    manifest = read_manifest(export_dir)
    artifact = "onnx" if runtime == "onnxruntime" else "torchscript"
    path: Path | None = artifact_paths(export_dir, manifest).get(artifact)
    if path is None or not path.is_file():
        raise RnnxError(
            f"'{export_dir}' has no {artifact} artifact (export with --format {artifact})"
        )
    signature = manifest_signature(manifest)
    if runtime == "onnxruntime":
        from rnnx.runtimes.onnxruntime_session import OnnxRuntimeSession

        return OnnxRuntimeSession(path, signature, provider=provider, threads=threads)
    from rnnx.runtimes.torch_session import TorchScriptSession

    return TorchScriptSession(path, signature, device=provider)
