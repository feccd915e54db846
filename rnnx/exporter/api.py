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

import onnx
import torch
from torch import nn

import rnnx
from rnnx.doctor import Finding, check_plan
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
class ExportPlan:
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
        plan = plan_export(model, example_inputs, io, stateless=options.stateless)
        # rnnx doctor as a pre-flight: hazards are warnings, and recorded in the manifest.
        findings = check_plan(plan, was_training)
        for finding in findings:
            warnings.warn(finding.describe(), RnnxWarning, stacklevel=2)
        return _write(plan, Path(output_dir), options, source, findings)
    finally:
        model.train(was_training)  # exporting runs in eval mode; give the module back as it was


def plan_export(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor] | None = None,
    io: ModelIO | None = None,
    *,
    stateless: bool = False,
) -> ExportPlan:
    """What export would trace: the module with the graph's I/O, its example inputs and specs."""
    if isinstance(model, nn.RNNBase) and example_inputs is None:
        return _layer_plan(model, stateless)
    return _module_plan(model, example_inputs, io, stateless)


def _layer_plan(layer: nn.RNNBase, stateless: bool) -> ExportPlan:
    spec = LayerSpec.from_module(layer)
    signature = Signature.for_layer(spec, stateless=stateless)
    example = [torch.from_numpy(a) for a in random_inputs(signature, EXAMPLE_SIZES).values()]
    return ExportPlan(
        module=wrap_layer(layer, stateless=stateless),
        example=example,
        inputs=list(signature.inputs),
        output_names=signature.output_names,
        spec=spec,
        kind="layer",
        finish=lambda dims: signature,
    )


def _module_plan(
    model: nn.Module, example_inputs: Any, io: ModelIO | None, stateless: bool
) -> ExportPlan:
    if stateless:
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
    with torch.inference_mode():
        outputs = flatten_outputs(model(*example))
    model_io = resolve_io(model, example, outputs, io)
    if len(outputs) != len(model_io.outputs):
        raise UnsupportedModelError(
            f"{type(model).__name__} returns {len(outputs)} tensors but its I/O names "
            f"{len(model_io.outputs)} outputs"
        )
    dtypes = [str(t.dtype).removeprefix("torch.") for t in outputs]
    is_streamable = streamable(model, model_io)
    inputs = input_signature(model_io, example)
    return ExportPlan(
        module=FlatOutputs(model),
        example=example,
        inputs=inputs,
        output_names=list(model_io.outputs),
        spec=None,
        kind="module",
        finish=lambda dims: whole_model_signature(model_io, inputs, dims, dtypes, is_streamable),
    )


def _write(
    plan: ExportPlan, output_dir: Path, options: ExportOptions, source: Any, findings: list[Finding]
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
        warnings.warn(
            f"--quantize int8: {reason}; no int8 model written", RnnxWarning, stacklevel=4
        )
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
    maximum = onnx.defs.onnx_opset_version()
    if options.opset > maximum:
        raise RnnxError(
            f"--opset must be at most {maximum} (this onnx/onnxruntime), got {options.opset}"
        )


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
