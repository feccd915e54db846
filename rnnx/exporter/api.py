"""`rnnx.export`: module or checkpoint -> export directory (ONNX, TorchScript, manifest)."""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import rnnx
from rnnx.doctor import Finding, diagnose
from rnnx.errors import RnnxError, RnnxWarning, UnsupportedModelError, VerificationError
from rnnx.exporter.layer_module import wrap_layer
from rnnx.exporter.manifest import ARTIFACTS, MANIFEST, QUANTIZED_ARTIFACT, write_json
from rnnx.exporter.model_io import (
    FlatOutputs,
    ModelIO,
    flatten_outputs,
    input_signature,
    resolve_io,
    streamable,
    whole_model_signature,
)
from rnnx.exporter.onnx_export import DEFAULT_OPSET, MIN_OPSET, build_onnx, output_dims, save_onnx
from rnnx.exporter.quantize import quantize_int8
from rnnx.exporter.signature import Signature, TensorSpec, artifact_metadata, random_inputs
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


@dataclasses.dataclass
class _Plan:
    """What to export: a module whose forward takes the signature's inputs, and its I/O."""

    module: nn.Module
    example: list[torch.Tensor]
    inputs: list[TensorSpec]
    output_names: list[str]
    spec: LayerSpec | None  # bare layers
    kind: str  # "layer" or "module"
    finish: Callable[[list[tuple]], Signature]  # graph output dims -> the full signature


def export(
    model: nn.Module,
    output_dir: str | os.PathLike,
    options: ExportOptions = ExportOptions(),
    *,
    example_inputs: Sequence[torch.Tensor] | None = None,
    io: ModelIO | None = None,
    source: dict[str, Any] | None = None,
) -> ExportResult:
    """Export `model` to `output_dir`, verified against the module itself.

    A bare nn.RNN/LSTM/GRU needs nothing else. Any other module needs example inputs (or an
    `example_inputs()` method); its I/O comes from `io`, its `rnnx_io` attribute, or is
    inferred (model_io.py). `source` (recorded in the manifest) says how to rebuild the
    module, so that `rnnx verify` can run later; `export_checkpoint` fills it in.
    """
    _check_options(options)
    _check_float32(model)
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, nn.RNNBase) and example_inputs is None:
            plan = _layer_plan(model, options)
        else:
            plan = _module_plan(model, example_inputs, io, options)
        findings = _preflight(plan, was_training)
        return _write(plan, Path(output_dir), options, source, findings)
    finally:
        model.train(was_training)  # exporting runs in eval mode; give the module back as it was


def _layer_plan(layer: nn.RNNBase, options: ExportOptions) -> _Plan:
    spec = LayerSpec.from_module(layer)
    signature = Signature.for_layer(spec, stateless=options.stateless)
    example = [torch.from_numpy(a) for a in random_inputs(signature, EXAMPLE_SIZES).values()]
    return _Plan(
        module=wrap_layer(layer, stateless=options.stateless),
        example=example,
        inputs=list(signature.inputs),
        output_names=signature.output_names,
        spec=spec,
        kind="layer",
        finish=lambda dims: signature,
    )


def _module_plan(
    model: nn.Module, example_inputs: Any, io: ModelIO | None, options: ExportOptions
) -> _Plan:
    if options.stateless:
        raise RnnxError(
            "--stateless applies to bare layers; a whole model's forward decides its inputs"
        )
    if example_inputs is None:
        if not callable(getattr(model, "example_inputs", None)):
            raise UnsupportedModelError(
                f"{type(model).__name__} is not a bare nn.RNN/LSTM/GRU: give example inputs "
                "(rnnx.export(model, dir, example_inputs=...)) or an example_inputs() method"
            )
        example_inputs = model.example_inputs()
    example = [example_inputs] if isinstance(example_inputs, torch.Tensor) else list(example_inputs)
    model_io = resolve_io(model, example, io)
    with torch.inference_mode():
        outputs = flatten_outputs(model(*example))
    if len(outputs) != len(model_io.outputs):
        raise UnsupportedModelError(
            f"{type(model).__name__} returns {len(outputs)} tensors but its I/O names "
            f"{len(model_io.outputs)} outputs"
        )
    dtypes = [str(t.dtype).removeprefix("torch.") for t in outputs]
    is_streamable = streamable(model, model_io)
    return _Plan(
        module=FlatOutputs(model),
        example=example,
        inputs=input_signature(model_io, example),
        output_names=list(model_io.outputs),
        spec=None,
        kind="module",
        finish=lambda dims: whole_model_signature(model_io, example, dims, dtypes, is_streamable),
    )


def _preflight(plan: _Plan, was_training: bool) -> list[Finding]:
    """`rnnx doctor` before exporting: each hazard becomes a warning and a manifest entry."""
    dims = {t.name: tuple(d if isinstance(d, str) else None for d in t.dims) for t in plan.inputs}
    lengths = [t.name for t in plan.inputs if t.role == "lengths"]
    findings = diagnose(plan.module, plan.example, dims, [t.name for t in plan.inputs], lengths)
    if was_training:
        fix = "it is exported in eval mode (dropout off); call model.eval() to silence this"
        findings.insert(0, Finding("train-mode", "the model was in training mode", fix))
    for finding in findings:
        warnings.warn(finding.describe(), RnnxWarning, stacklevel=3)
    return findings


def _write(
    plan: _Plan, output_dir: Path, options: ExportOptions, source: Any, findings: list[Finding]
) -> ExportResult:
    with _staging_directory(output_dir, force=options.force) as staging:
        artifacts = {fmt: ARTIFACTS[fmt] for fmt in ARTIFACTS if fmt in options.formats}
        onnx_model, dims = None, []
        if "onnx" in artifacts or plan.kind == "module":
            # A whole model's output dims are only known from the exported graph.
            onnx_model = build_onnx(plan.module, plan.example, plan.inputs, plan.output_names,
                                    opset=options.opset)  # fmt: skip
            dims = output_dims(onnx_model)
        signature = plan.finish(dims)
        metadata = artifact_metadata(signature, plan.spec, rnnx.__version__)
        if "onnx" in artifacts and onnx_model is not None:
            save_onnx(onnx_model, staging / artifacts["onnx"], metadata)
        quantization = _quantize(staging, artifacts) if options.quantize else None
        if "torchscript" in artifacts:
            export_torchscript(plan.module, plan.example, staging / artifacts["torchscript"],
                               metadata=metadata)  # fmt: skip
        report = None
        if options.verify:
            paths = {fmt: staging / name for fmt, name in artifacts.items()}
            report = verify_artifacts(paths, plan.module, signature, options.verify_options)
            if not report.passed:
                raise VerificationError(
                    f"exported model does not match eager PyTorch: {report.first_failure()} "
                    "(nothing written; --no-verify writes it anyway)"
                )
        module = plan.module.model if isinstance(plan.module, FlatOutputs) else plan.module
        manifest = {
            "rnnx_version": rnnx.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch_version": torch.__version__,
            "opset": options.opset if "onnx" in artifacts else None,
            "model": plan.kind,
            "class": f"{type(module).__module__}.{type(module).__qualname__}",
            "stateless": options.stateless,
            "spec": plan.spec.to_dict() if plan.spec else None,
            "signature": signature.to_dict(),
            "example_sizes": EXAMPLE_SIZES if plan.kind == "layer" else None,
            "artifacts": artifacts,
            "source": source,
            "quantization": quantization,
            "doctor": [dataclasses.asdict(f) for f in findings],
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
    module = loaded.module
    if loaded.spec is None and not callable(getattr(module, "example_inputs", None)):
        recurrent = any(isinstance(m, (nn.RNNBase, nn.RNNCellBase)) for m in module.modules())
        raise UnsupportedModelError(
            f"{checkpoint}: {type(module).__name__} is not an nn.RNN/nn.LSTM/nn.GRU layer"
            + (
                "; to export a whole model give its class an example_inputs() method"
                if recurrent
                else " and contains no recurrent layer"
            )
        )
    return export(module, output_dir, options, source=loaded.source)


def _quantize(staging: Path, artifacts: dict[str, str]) -> dict[str, Any]:
    """Add the int8 artifact to `artifacts` when onnxruntime's quantizer finds work to do."""
    name, filename = QUANTIZED_ARTIFACT
    ops = quantize_int8(staging / artifacts["onnx"], staging / filename)
    if not ops:
        (staging / filename).unlink()
        reason = "nothing to quantize: onnxruntime's quantizer has no GRU/RNN support"
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
