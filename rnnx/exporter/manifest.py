"""The export directory's layout and its manifest (rnnx.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rnnx.errors import RnnxError
from rnnx.exporter.signature import Signature

MANIFEST = "rnnx.json"
ARTIFACTS = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
QUANTIZED_ARTIFACT = ("onnx_int8", "model.int8.onnx")  # written by --quantize int8


def read_manifest(export_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(export_dir) / MANIFEST
    if not Path(export_dir).is_dir():
        raise RnnxError(f"export directory '{export_dir}' not found")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise RnnxError(f"'{export_dir}' is not an rnnx export directory (no {MANIFEST})") from None
    except (OSError, ValueError) as error:
        raise RnnxError(f"cannot read manifest '{path}': {error}") from error
    if not isinstance(manifest, dict) or "signature" not in manifest:
        raise RnnxError(f"manifest '{path}' has no signature; was it written by rnnx export?")
    return manifest


def manifest_signature(manifest: dict[str, Any]) -> Signature:
    return Signature.from_dict(manifest["signature"])


def artifact_paths(export_dir: str | os.PathLike, manifest: dict[str, Any]) -> dict[str, Path]:
    return {fmt: Path(export_dir) / name for fmt, name in manifest.get("artifacts", {}).items()}


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)
