"""The export pipeline: plan -> doctor pre-flight -> write each format -> verify -> rename.

It sits above the exporter (which only lowers and writes formats), the runtimes and the
comparator, and drives them through the registry (rnnx/formats.py). Also `verify` of an
existing export directory, which opens its artifacts the same way.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import signal
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from rnnx.compare import VerificationReport, VerifyOptions, compare
from rnnx.core.errors import RnnxError, RnnxWarning, UnsupportedModelError, VerificationError
from rnnx.core.machine import this_machine, verified_record
from rnnx.core.manifest import MANIFEST, Manifest, read_manifest, write_json
from rnnx.core.metadata import metadata_props
from rnnx.core.quiet import torch_kernel_notices
from rnnx.core.version import __version__
from rnnx.doctor import Finding, check_plan, check_streaming
from rnnx.exporter.checkpoint import LoadOptions, load_checkpoint
from rnnx.exporter.model_io import ModelIO
from rnnx.exporter.onnx_export import build_onnx, output_dims
from rnnx.exporter.opsets import DEFAULT_OPSET, MIN_OPSET
from rnnx.exporter.plan import EXAMPLE_SIZES, ExportPlan, FormatSkipped, WriteJob, plan_export
from rnnx.exporter.reference import (
    REFERENCE_FILE,
    write_reference,
)
from rnnx.formats import (
    FORMATS,
    cpu_refusal,
    format_choices,
    open_eager,
    resolve,
    verification_sessions,
)


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    formats: tuple[str, ...] = tuple(format_choices(defaults_only=True))  # rnnx/formats.py names
    opset: int = DEFAULT_OPSET
    stateless: bool = False  # input -> output only, states start at zero
    verify: bool = True
    verify_options: VerifyOptions = VerifyOptions()
    force: bool = False  # replace an existing output directory
    # "int8": also write the onnx-int8 format (any x86-64 CPU); "int8-vnni": onnx-int8-vnni
    # (faster, VNNI CPUs only); both, comma-separated
    quantize: str | None = None
    chunk: int = 16  # time steps per call of the fixed-chunk pte format


@dataclasses.dataclass
class ExportResult:
    output_dir: Path
    manifest: Manifest
    report: VerificationReport | None


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
    module, so that `rnnx verify` can run later; `export_checkpoint` fills it in. A bare layer
    exported from memory carries its weights instead (reference.safetensors).
    """
    formats = _formats(options)
    was_training = model.training
    model.eval()
    try:
        # Planning, the pre-flight and the verification run the model: torch's notice about the
        # CPU kernel it picks (rnnx/core/quiet.py) is not about the model. rnnx's warnings pass.
        with torch_kernel_notices():
            plan = plan_export(model, example_inputs, io, stateless=options.stateless)
            # rnnx doctor as a pre-flight: hazards are warnings, and recorded in the manifest.
            findings = check_plan(plan, was_training)
            for finding in findings:
                warnings.warn(finding.describe(), RnnxWarning, stacklevel=2)
            return _write(plan, Path(output_dir), formats, options, source, findings)
    finally:
        model.train(was_training)  # exporting runs in eval mode; give the module back as it was


def export_checkpoint(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    options: ExportOptions = ExportOptions(),
    load_options: LoadOptions | None = None,
) -> ExportResult:
    target = Path(output_dir).resolve()
    if options.force and Path(checkpoint).resolve().is_relative_to(target):
        raise RnnxError(
            f"checkpoint '{checkpoint}' is inside the output '{output_dir}' that --force replaces"
        )
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


def verify(
    export_dir: str | os.PathLike,
    reference: nn.Module | None = None,
    options: VerifyOptions = VerifyOptions(),
    *,
    checkpoint: str | os.PathLike | None = None,
    trust: LoadOptions | None = None,
    runtime: str | None = None,
    format: str | None = None,
    record: bool = False,
    **runtime_options: Any,
) -> VerificationReport:
    """Verify every artifact in an export directory against eager PyTorch.

    The eager reference is `reference` if given, else rebuilt from the checkpoint recorded in
    the manifest (or `checkpoint`, if the file has moved since export), or from the weights a
    bare layer's export carries. Each artifact runs in the runtime that verifies its format,
    or in `runtime` (with its options, e.g. precision="bf16"), for the formats it reads (or
    only `format`). Rebuilding the reference runs code (--model, a pickled module) only when
    `trust` says so: the manifest never grants it. `emulate_cpu="avx2"` (an onnxruntime
    option) runs the onnxruntime artifacts under qemu-user presenting that CPU class.

    The report names the machine it ran on; `record` adds the artifacts that passed, with that
    machine, to the manifest's `verified_on`, which rnnx.load reads.
    """
    manifest = read_manifest(export_dir)
    cpu = runtime_options.get("emulate_cpu")
    if cpu is not None and runtime in (None, "onnxruntime"):
        runtime = "onnxruntime"  # only onnxruntime can be emulated (runtimes/emulated.py)
    elif cpu is not None:
        raise RnnxError(f"--emulate-cpu runs onnxruntime, not the {runtime} runtime")
    eager = open_eager(
        Path(export_dir), manifest, reference=reference, checkpoint=checkpoint, trust=trust
    )
    sessions, classes = verification_sessions(
        export_dir, manifest, runtime, format, trust=trust, **runtime_options
    )
    report = compare(sessions, eager, options, classes)
    machine = this_machine()
    if cpu is not None:
        from rnnx.runtimes.emulated import emulated_machine

        machine = emulated_machine(cpu)
    report.machine = machine.to_dict()
    if record and report.passed_labels():
        entry = verified_record(machine, report.passed_labels(), report.passed)
        updated = dataclasses.replace(manifest, verified_on=(*manifest.verified_on, entry))
        write_json(Path(export_dir) / MANIFEST, updated.to_dict())
    return report


def machine_line(export_dir: str | os.PathLike, report: VerificationReport) -> str:
    """One line: the CPU class this verification ran on, and the export's when they differ
    (int8 and bf16 numerics depend on it: this run re-checked them for this class)."""
    here = report.machine or {}
    where = here.get("cpu_class", "unknown") + (" (emulated)" if here.get("emulated") else "")
    versions = ", ".join(f"{k} {v}" for k, v in (here.get("versions") or {}).items())
    line = f"verified on CPU class {where}; {versions}"
    exported = (read_manifest(export_dir).verification or {}).get("machine") or {}
    if exported and exported.get("cpu_class") != here.get("cpu_class"):
        line += (
            f"\nthe export was verified on another CPU class, {exported.get('cpu_class')}: "
            "its int8/bf16 artifacts were re-checked for this one"
        )
    return line


# What the export's own verification opens its fresh artifacts with: the process that just
# wrote them trusts them (a pt2 package is a library it compiled itself).
_WRITTEN_HERE = LoadOptions(trust_checkpoint=True)


def check_report_path(export_dir: str | os.PathLike, path: str | os.PathLike) -> None:
    """A report written next to an export must not replace its manifest or an artifact."""
    manifest = read_manifest(export_dir)
    names = [MANIFEST, *manifest.artifacts.values(), *filter(None, [manifest.reference])]
    taken = {(Path(export_dir) / name).resolve() for name in names}
    if Path(path).resolve() in taken:
        raise RnnxError(f"--json '{path}' would overwrite a file of the export '{export_dir}'")


def _write(
    plan: ExportPlan,
    output_dir: Path,
    formats: list[str],
    options: ExportOptions,
    source: Any,
    findings: list[Finding],
) -> ExportResult:
    with _staging_directory(output_dir, force=options.force) as staging:
        onnx_model, dims = None, []
        if "onnx" in formats or plan.kind == "module":
            # A whole model's output dims are only known from the exported graph.
            onnx_model = build_onnx(plan.module, plan.example, plan.inputs, plan.output_names,
                                    opset=options.opset)  # fmt: skip
            dims = output_dims(onnx_model)
        signature, streaming = check_streaming(plan.module, plan.finish(dims))
        for finding in streaming:
            warnings.warn(finding.describe(), RnnxWarning, stacklevel=4)
        findings = findings + streaming
        metadata = metadata_props(signature, plan.spec, __version__)
        written: dict[str, Path] = {}
        notes: dict[str, Any] = {}
        for name in formats:
            path = staging / FORMATS[name].file
            job = WriteJob(plan, signature, metadata, staging, written, options.opset, onnx_model,
                           chunk=options.chunk)  # fmt: skip
            try:
                notes[name] = resolve(FORMATS[name].writer)(job, path)
            except FormatSkipped as skipped:
                warnings.warn(f"{name}: {skipped}; not written", RnnxWarning, stacklevel=4)
                notes[name] = {"skipped": str(skipped)}
                continue
            written[name] = path
        if not written:  # every format asked for skipped this model: an export of nothing
            reasons = "; ".join(f"{n}: {notes[n]['skipped']}" for n in formats)
            raise UnsupportedModelError(f"no format could be written ({reasons})")
        reference = None
        # A subclass computes something of its own: only its class can rebuild it.
        if source is None and type(plan.user_module) in (nn.RNN, nn.LSTM, nn.GRU):
            reference = REFERENCE_FILE
            write_reference(plan.user_module, staging / reference)
        module = plan.user_module
        manifest = Manifest(
            signature=signature,
            artifacts={name: FORMATS[name].file for name in written},
            model=plan.kind,
            spec=plan.spec,
            stateless=options.stateless,
            input_structure=plan.input_structure,
            class_path=f"{type(module).__module__}.{type(module).__qualname__}",
            source=source,
            reference=reference,
            opset=options.opset if "onnx" in written else None,
            example_sizes=EXAMPLE_SIZES if plan.kind == "layer" else None,
            quantization=notes.get("onnx-int8") or notes.get("onnx-int8-vnni"),
            notes={name: note for name, note in notes.items() if note},
            doctor=tuple(dataclasses.asdict(f) for f in findings),
            rnnx_version=__version__,
            torch_version=torch.__version__,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        )
        report = None
        if options.verify:
            eager = open_eager(staging, manifest, reference=plan.user_module)
            # the artifacts were written by this process a moment ago: trusted
            sessions, classes = verification_sessions(staging, manifest, trust=_WRITTEN_HERE)
            report = compare(sessions, eager, options.verify_options, classes)
            if not report.passed:
                raise VerificationError(
                    f"exported model does not match eager PyTorch: {report.first_failure()} "
                    "(nothing written; --no-verify writes it anyway)"
                )
            report.machine = this_machine().to_dict()
            record = verified_record(this_machine(), report.passed_labels(), True)
            manifest = dataclasses.replace(
                manifest, verification=report.to_dict(), verified_on=(record,)
            )
        write_json(staging / MANIFEST, manifest.to_dict())
    return ExportResult(output_dir, manifest, report)


def _formats(options: ExportOptions) -> list[str]:
    """The formats to write, in registry order (a derived format after its base)."""
    quantized = {"int8": "onnx-int8", "int8-vnni": "onnx-int8-vnni"}
    asked = [q.strip() for q in (options.quantize or "").split(",") if q.strip()]
    if any(q not in quantized for q in asked) or (options.quantize is not None and not asked):
        raise RnnxError(
            f"--quantize must be {' or '.join(quantized)} (or both, comma-separated), "
            f"got {options.quantize!r}"
        )
    wanted = set(options.formats) | {quantized[q] for q in asked}
    unknown = sorted(wanted - set(FORMATS))
    if unknown or not options.formats:
        raise RnnxError(
            f"--format must be one of {', '.join(FORMATS)} or all, got {unknown or 'nothing'}"
        )
    for name in wanted:
        missing = [base for base in FORMATS[name].requires if base not in wanted]
        if missing:
            raise RnnxError(
                f"format {name} is derived from {missing[0]}: include {missing[0]} in --format"
            )
    for name in wanted:  # an artifact this CPU cannot run correctly cannot be verified here
        reason = cpu_refusal(name)
        if reason and options.verify:
            raise RnnxError(f"cannot verify {reason} (--no-verify writes it unverified)")
    if options.opset < MIN_OPSET:
        raise RnnxError(f"--opset must be at least {MIN_OPSET}, got {options.opset}")
    maximum = onnx.defs.onnx_opset_version()
    if options.opset > maximum:
        raise RnnxError(
            f"--opset must be at most {maximum} (this onnx/onnxruntime), got {options.opset}"
        )
    return [name for name in FORMATS if name in wanted]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while an export was being staged (raised to unwind and clean up)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


def _block_sigterm(block: bool) -> None:
    if hasattr(signal, "pthread_sigmask"):  # POSIX; elsewhere the renames are not guarded
        signal.pthread_sigmask(signal.SIG_BLOCK if block else signal.SIG_UNBLOCK, {signal.SIGTERM})


class _staging_directory:
    """Build the export in a temporary sibling directory; rename it into place on success.

    On any failure, Ctrl-C or SIGTERM the temporary directory is removed, so no partial export
    is ever left at `target` (a SIGTERM is then delivered again, so the process still ends as
    the sender asked). A symlinked target is followed: what it points to is replaced.
    """

    def __init__(self, target: Path, *, force: bool) -> None:
        self.given = target
        self.target = target.resolve()
        self.force = force
        self.handling = False

    def __enter__(self) -> Path:
        self._check_target()
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(
                tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent)
            )
            self.staging.chmod(0o755)  # mkdtemp makes it private; an export directory is not
        except OSError as error:
            raise RnnxError(f"cannot create output '{self.given}': {error.strerror}") from error
        # Only where SIGTERM would otherwise kill the process outright (not in a thread, not
        # under an application's own handler).
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            self.handling = True
        return self.staging

    def _check_target(self) -> None:
        given, target = self.given, self.target
        if Path.cwd().is_relative_to(target):
            raise RnnxError(
                f"output '{given}' is the current directory or contains it; name a new directory"
            )
        if target.exists() and not (target.is_dir() and not any(target.iterdir())):
            if not self.force:
                raise RnnxError(f"output '{given}' already exists; pass --force to replace it")
            if not target.is_dir() or not (target / MANIFEST).exists():
                raise RnnxError(
                    f"output '{given}' exists and is not an rnnx export directory; "
                    "refusing to replace it"
                )

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self._restore(again=exc_type is Terminated)
            return
        # The two renames are one step: a SIGTERM waits until both are done.
        _block_sigterm(True)
        try:
            old = None
            if self.target.exists():
                old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
                os.replace(self.target, old)
            os.replace(self.staging, self.target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as error:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise RnnxError(f"cannot move the export into '{self.given}': {error}") from error
        finally:
            self._restore(again=False)
            _block_sigterm(False)

    def _restore(self, *, again: bool) -> None:
        if self.handling:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self.handling = False
            if again:
                os.kill(os.getpid(), signal.SIGTERM)
