"""The export directory's manifest (rnnx.json): what was exported, where, and how it verified.

An export directory is input rnnx reads back (verify, run, bench, C++ runners), so the manifest
is parsed into a typed `Manifest` with one-line errors, and artifact paths are kept inside the
directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from rnnx.core.errors import RnnxError
from rnnx.core.metadata import SCHEMA, check_schema
from rnnx.core.paths import inside
from rnnx.core.signature import Signature
from rnnx.core.spec import LayerSpec

__all__ = ["MANIFEST", "Manifest", "inside", "read_manifest", "write_json"]

MANIFEST = "rnnx.json"
MAX_MANIFEST_BYTES = 64 << 20  # a manifest is a few kB; tuned records and notes add little
# Format names of schema 1 for the keys older manifests used.
_OLD_FORMAT_NAMES = {"onnx_int8": "onnx-int8"}


@dataclasses.dataclass(frozen=True)
class Manifest:
    signature: Signature
    artifacts: Mapping[str, str]  # format name -> file name inside the export directory
    model: str = "layer"  # "layer" (a bare nn.RNN/LSTM/GRU) or "module" (a whole model)
    spec: LayerSpec | None = None  # bare layers
    stateless: bool = False
    # how forward's nested arguments are built from the graph inputs (a torch pytree spec as
    # JSON), when some argument is a tuple/list of tensors such as hidden=(h, c)
    input_structure: str | None = None
    class_path: str | None = None  # the exported module's class, module.qualname
    # How to rebuild the eager reference: a checkpoint (`source`, see exporter/checkpoint.py), or
    # the weights file inside the export that a bare layer exported from memory carries.
    source: Mapping[str, Any] | None = None
    reference: str | None = None
    opset: int | None = None
    example_sizes: Mapping[str, int] | None = None
    quantization: Mapping[str, Any] | None = None
    # what each format's writer reported, by format: pt2's export and compile seconds, a
    # skipped format's reason ({"skipped": ...})
    notes: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    doctor: tuple[Mapping[str, Any], ...] = ()
    verification: Mapping[str, Any] | None = None
    # `rnnx tune`: the fastest verified way to run each measured shape, as
    # {"batch", "time", "runtime", "options", "threads", "p50_ms"} records
    tuned: tuple[Mapping[str, Any], ...] = ()
    # the machines the artifacts passed verification on: CPU class, flags, runtime versions
    # and the artifacts (core/machine.py verified_record); the export's own first
    verified_on: tuple[Mapping[str, Any], ...] = ()
    rnnx_version: str = ""
    torch_version: str = ""
    created: str = ""
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "rnnx_version": self.rnnx_version,
            "created": self.created,
            "torch_version": self.torch_version,
            "opset": self.opset,
            "model": self.model,
            "class": self.class_path,
            "stateless": self.stateless,
            "input_structure": self.input_structure,
            "spec": self.spec.to_dict() if self.spec else None,
            "signature": self.signature.to_dict(),
            "example_sizes": dict(self.example_sizes) if self.example_sizes else None,
            "artifacts": dict(self.artifacts),
            "source": dict(self.source) if self.source else None,
            "reference": self.reference,
            "quantization": self.quantization,
            "notes": dict(self.notes),
            "doctor": list(self.doctor),
            "verification": self.verification,
            "tuned": list(self.tuned),
            "verified_on": list(self.verified_on),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Manifest:
        if not isinstance(data, Mapping):
            raise RnnxError(f"{source} is not a JSON object")
        if "signature" not in data:
            raise RnnxError(f"{source} has no signature; was it written by rnnx export?")
        if "schema" in data:
            schema = check_schema(data["schema"], source)
        else:  # schema 0: the same fields, older format names
            schema = SCHEMA
            data = {**data, "artifacts": _renamed(data.get("artifacts") or {})}
        artifacts = data.get("artifacts") or {}
        if not isinstance(artifacts, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in artifacts.items()
        ):
            raise RnnxError(f"{source}: 'artifacts' must map format names to file names")
        for name in artifacts.values():
            _check_inside(name, source)
        model = data.get("model", "layer")
        if model not in ("layer", "module"):
            raise RnnxError(f'{source}: \'model\' must be "layer" or "module", got {model!r}')
        try:
            spec = LayerSpec.from_dict(data["spec"]) if data.get("spec") else None
        except (TypeError, KeyError, ValueError) as error:
            raise RnnxError(f"{source}: 'spec' is malformed ({error})") from None
        reference = data.get("reference")
        if reference is not None:
            _check_inside(reference, source)
        source_field = data.get("source")
        if source_field is not None and not isinstance(source_field, Mapping):
            raise RnnxError(f"{source}: 'source' must be an object")
        return cls(
            signature=Signature.from_dict(data["signature"], f"{source}: signature"),
            artifacts=dict(artifacts),
            model=model,
            spec=spec,
            stateless=bool(data.get("stateless")),
            input_structure=_optional_str(data, "input_structure", source),
            class_path=_optional_str(data, "class", source),
            source=source_field,
            reference=reference,
            opset=_optional(data, "opset", int, source),
            example_sizes=_optional(data, "example_sizes", Mapping, source),
            quantization=_optional(data, "quantization", Mapping, source),
            notes=_optional(data, "notes", Mapping, source) or {},
            doctor=_doctor(data.get("doctor"), source),
            verification=_verification(data.get("verification"), source),
            tuned=_records(data.get("tuned"), source),
            verified_on=_verified_on(data.get("verified_on"), source),
            rnnx_version=str(data.get("rnnx_version", "")),
            torch_version=str(data.get("torch_version", "")),
            created=str(data.get("created", "")),
            schema=schema,
        )

    def artifact_paths(self, export_dir: str | os.PathLike) -> dict[str, Path]:
        return {fmt: inside(export_dir, name) for fmt, name in self.artifacts.items()}


def read_manifest(export_dir: str | os.PathLike) -> Manifest:
    path = Path(export_dir) / MANIFEST
    if not Path(export_dir).is_dir():
        raise RnnxError(f"export directory '{export_dir}' not found")
    if path.is_symlink() or path.exists():
        inside(export_dir, MANIFEST)  # the manifest too: a link to /dev/zero is no manifest
        if not path.is_file():
            raise RnnxError(f"manifest '{path}' is not a regular file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise RnnxError(f"manifest '{path}' is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RnnxError(f"'{export_dir}' is not an rnnx export directory (no {MANIFEST})") from None
    except (OSError, ValueError) as error:
        raise RnnxError(f"cannot read manifest '{path}': {error}") from error
    return Manifest.from_dict(data, f"manifest '{path}'")


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise RnnxError(f"cannot write '{path}': {error.strerror}") from error


def _records(value: Any, source: str) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise RnnxError(f"{source}: 'tuned' must be a list of objects")
    return tuple(value)


def _verified_on(value: Any, source: str) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    well_formed = isinstance(value, list) and all(
        isinstance(v, Mapping)
        and isinstance(v.get("cpu_class"), str)
        and isinstance(v.get("artifacts"), list)
        and all(isinstance(a, str) for a in v["artifacts"])
        for v in value
    )
    if not well_formed:
        raise RnnxError(
            f"{source}: 'verified_on' must be a list of {{cpu_class, artifacts, ...}} objects"
        )
    return tuple(value)


def _optional_str(data: Mapping[str, Any], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise RnnxError(f"{source}: {key!r} must be a string")
    return value


def _optional(data: Mapping[str, Any], key: str, kind: type, source: str) -> Any:
    value = data.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise RnnxError(f"{source}: {key!r} must be {'an integer' if kind is int else 'an object'}")
    return value


def _doctor(value: Any, source: str) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, Mapping) for d in value):
        raise RnnxError(f"{source}: 'doctor' must be a list of findings")
    return tuple(value)


def _verification(value: Any, source: str) -> Mapping[str, Any] | None:
    """The report recorded at export, in the shape `rnnx inspect` shows (compare.py writes it)."""
    if value is None:
        return None
    summary = value.get("summary") if isinstance(value, Mapping) else None
    reduced = value.get("reduced_precision") if isinstance(value, Mapping) else None
    well_formed = (
        isinstance(value, Mapping)
        and value.get("passed") in (True, False, None)
        and isinstance(summary or {}, Mapping)
        and all(_report_row(row) for row in (summary or {}).values())
        and isinstance(reduced or {}, Mapping)
        and all(isinstance(pair, list) and len(pair) == 2 for pair in (reduced or {}).values())
    )
    if not well_formed:
        raise RnnxError(f"{source}: 'verification' is malformed; verify the export again")
    return value


def _report_row(row: Any) -> bool:
    return isinstance(row, Mapping) and row.get("passed") in (True, False, None)


def _renamed(artifacts: Any) -> Any:
    if not isinstance(artifacts, Mapping):
        return artifacts
    return {_OLD_FORMAT_NAMES.get(k, k): v for k, v in artifacts.items()}


def _check_inside(name: str, source: str) -> None:
    """A manifest names files inside its own directory: never an absolute path or '..'."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not name or os.path.isabs(name) or name.startswith("/") or ".." in parts:
        raise RnnxError(f"{source}: artifact path {name!r} is not a file inside the export")
