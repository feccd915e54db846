"""`rnnx.export`: module or checkpoint -> export directory (ONNX, TorchScript, manifest)."""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import rnnx
from rnnx.errors import RnnxError, UnsupportedModelError, VerificationError
from rnnx.exporter.layer_module import wrap_layer
from rnnx.exporter.manifest import ARTIFACTS, MANIFEST, QUANTIZED_ARTIFACT, write_json
from rnnx.exporter.onnx_export import DEFAULT_OPSET, MIN_OPSET, export_onnx
from rnnx.exporter.quantize import quantize_int8
from rnnx.exporter.signature import Signature, artifact_metadata, random_inputs
from rnnx.exporter.spec import LayerSpec
from rnnx.exporter.torchscript_export import export_torchscript
from rnnx.verify import VerificationReport, VerifyOptions, verify_artifacts

if TYPE_CHECKING:
    from rnnx.exporter.checkpoint import LoadOptions

# The example shape the exporters trace with. Not 1 (torch.export specialises size-1 axes)
# and unlike every shape the verifier checks, so a frozen axis cannot pass unnoticed.
EXAMPLE_SIZES = {"batch": 2, "time": 5}


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    formats: tuple[str, ...] = tuple(ARTIFACTS)
    opset: int = DEFAULT_OPSET
    stateless: bool = False  # input -> output only, states start at zero
    verify: bool = True
    verify_options: VerifyOptions = VerifyOptions()
    force: bool = False  # replace an existing output directory
    quantize: str | None = None  # "int8": also write a dynamically quantized ONNX model


@dataclasses.dataclass
class ExportResult:
    output_dir: Path
    manifest: dict[str, Any]
    report: VerificationReport | None


def export(
    model: nn.Module,
    output_dir: str | os.PathLike,
    options: ExportOptions = ExportOptions(),
    *,
    source: dict[str, Any] | None = None,
) -> ExportResult:
    """Export a bare nn.RNN/LSTM/GRU to `output_dir`, verified against the module itself.

    `source` (recorded in the manifest) says how to rebuild the module, so that `rnnx verify`
    can run later; `export_checkpoint` fills it in.
    """
    _check_options(options)
    spec = LayerSpec.from_module(model)
    _check_float32(model)
    was_training = model.training
    try:
        return _export_layer(model, spec, Path(output_dir), options, source)
    finally:
        model.train(was_training)  # exporting runs in eval mode; give the module back as it was


def _export_layer(
    model: nn.Module,
    spec: LayerSpec,
    output_dir: Path,
    options: ExportOptions,
    source: dict[str, Any] | None,
) -> ExportResult:
    reference = wrap_layer(model, stateless=options.stateless)
    signature = Signature.for_layer(spec, stateless=options.stateless)
    example = [torch.from_numpy(a) for a in random_inputs(signature, EXAMPLE_SIZES).values()]
    metadata = artifact_metadata(signature, spec, rnnx.__version__)

    with _staging_directory(output_dir, force=options.force) as staging:
        artifacts = {fmt: ARTIFACTS[fmt] for fmt in ARTIFACTS if fmt in options.formats}
        if "onnx" in artifacts:
            export_onnx(
                reference,
                example,
                signature,
                staging / artifacts["onnx"],
                opset=options.opset,
                metadata=metadata,
            )
        quantization = None
        if options.quantize:
            quantization = _quantize(staging, artifacts, spec)
        if "torchscript" in artifacts:
            export_torchscript(
                reference, example, staging / artifacts["torchscript"], metadata=metadata
            )
        report = None
        if options.verify:
            paths = {fmt: staging / name for fmt, name in artifacts.items()}
            report = verify_artifacts(paths, reference, signature, options.verify_options)
            if not report.passed:
                raise VerificationError(
                    f"exported model does not match eager PyTorch: {report.first_failure()} "
                    "(nothing written; --no-verify writes it anyway)"
                )
        manifest = {
            "rnnx_version": rnnx.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch_version": torch.__version__,
            "opset": options.opset if "onnx" in artifacts else None,
            "model": "layer",
            "stateless": options.stateless,
            "spec": spec.to_dict(),
            "signature": signature.to_dict(),
            "example_sizes": EXAMPLE_SIZES,
            "artifacts": artifacts,
            "source": source,
            "quantization": quantization,
            "verification": report.to_dict() if report else None,
        }
        write_json(staging / MANIFEST, manifest)
    return ExportResult(output_dir, manifest, report)


def export_checkpoint(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    options: ExportOptions = ExportOptions(),
    load_options: LoadOptions | None = None,
) -> ExportResult:
    from rnnx.exporter.checkpoint import LoadOptions, load_checkpoint

    loaded = load_checkpoint(checkpoint, load_options or LoadOptions())
    if loaded.spec is None:
        raise UnsupportedModelError(
            f"{checkpoint}: the model is a {type(loaded.module).__name__}; rnnx exports bare "
            "nn.RNN/nn.LSTM/nn.GRU layers"
        )
    return export(loaded.module, output_dir, options, source=loaded.source)


def _quantize(staging: Path, artifacts: dict[str, str], spec: LayerSpec) -> dict[str, Any]:
    """Add the int8 artifact to `artifacts` when onnxruntime's quantizer finds work to do."""
    name, filename = QUANTIZED_ARTIFACT
    ops = quantize_int8(staging / artifacts["onnx"], staging / filename)
    if not ops:
        (staging / filename).unlink()
        reason = f"onnxruntime's quantizer has no {spec.kind} support; nothing to quantize"
        warnings.warn(f"--quantize int8: {reason}; no int8 model written", stacklevel=3)
        return {"int8": None, "reason": reason}
    artifacts[name] = filename
    return {"int8": filename, "quantized_ops": ops}


def _check_options(options: ExportOptions) -> None:
    if options.quantize not in (None, "int8"):
        raise RnnxError(f"--quantize must be int8, got {options.quantize!r}")
    if options.quantize and "onnx" not in options.formats:
        raise RnnxError("--quantize int8 quantizes the ONNX model: include onnx in --format")
    unknown = [f for f in options.formats if f not in ARTIFACTS]
    if unknown or not options.formats:
        raise RnnxError(f"--format must be one of {', '.join(ARTIFACTS)} or all, got {unknown}")
    if options.opset < MIN_OPSET:
        raise RnnxError(f"--opset must be at least {MIN_OPSET}, got {options.opset}")
    maximum = _max_opset()
    if options.opset > maximum:
        raise RnnxError(
            f"--opset must be at most {maximum} (this onnx/onnxruntime), got {options.opset}"
        )


def _max_opset() -> int:
    import onnx

    return onnx.defs.onnx_opset_version()


def _check_float32(model: nn.Module) -> None:
    for name, parameter in model.named_parameters():
        if parameter.dtype != torch.float32:
            raise UnsupportedModelError(
                f"parameter {name} is {parameter.dtype}; rnnx exports float32 models "
                "(call .float())"
            )


class _staging_directory:
    """Build the export in a temporary sibling directory; rename it into place on success.

    On any failure the temporary directory is removed, so no partial export is ever left at
    `target`.
    """

    def __init__(self, target: Path, *, force: bool) -> None:
        self.target = target
        self.force = force

    def __enter__(self) -> Path:
        if self.target.exists() and not (self.target.is_dir() and not any(self.target.iterdir())):
            if not self.force:
                raise RnnxError(
                    f"output '{self.target}' already exists; pass --force to replace it"
                )
            if not self.target.is_dir() or not (self.target / MANIFEST).exists():
                raise RnnxError(
                    f"output '{self.target}' exists and is not an rnnx export directory; "
                    "refusing to replace it"
                )
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(
            tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent)
        )
        self.staging.chmod(0o755)  # mkdtemp makes it private; an export directory is not
        return self.staging

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
        os.replace(self.staging, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
