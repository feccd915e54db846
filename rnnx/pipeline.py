"""The export pipeline: plan -> doctor pre-flight -> write each format -> verify -> rename.

It sits above the exporter (which only lowers and writes formats), the runtimes and the
comparator, and drives them through the registry (rnnx/formats.py). Also `verify` of an
existing export directory, which opens its artifacts the same way.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
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

from rnnx.compare import NAN_SIZE, STREAM_SIZE, VerificationReport, VerifyOptions, compare
from rnnx.core.errors import (
    ExportError,
    RnnxError,
    RnnxWarning,
    UnsupportedModelError,
    VerificationError,
)
from rnnx.core.machine import this_machine, verified_record
from rnnx.core.manifest import MANIFEST, Manifest, read_manifest, write_json
from rnnx.core.metadata import metadata_props
from rnnx.core.quiet import torch_kernel_notices
from rnnx.core.version import __version__
from rnnx.doctor import Finding, check_plan, check_streaming
from rnnx.exporter.checkpoint import LoadOptions, load_checkpoint
from rnnx.exporter.model_io import ModelIO
from rnnx.exporter.opsets import DEFAULT_OPSET, MIN_OPSET
from rnnx.exporter.plan import EXAMPLE_SIZES, ExportPlan, FormatSkipped, WriteJob, plan_export
from rnnx.exporter.reference import (
    REFERENCE_FILE,
    write_reference,
)
from rnnx.exporter.routes import ROUTES, Captured
from rnnx.formats import (
    FORMATS,
    cpu_refusal,
    format_choices,
    open_eager,
    resolve,
    verification_sessions,
)
from rnnx.runtimes.isolated import crash_at


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    # rnnx/formats.py names; "all": the default formats, each kept only if it verifies (a
    # format named here fails the export when it does not)
    formats: tuple[str, ...] = ("all",)
    opset: int = DEFAULT_OPSET
    stateless: bool = False  # input -> output only, states start at zero
    verify: bool = True
    verify_options: VerifyOptions = VerifyOptions()
    force: bool = False  # replace an existing output directory
    # "int8": also write the onnx-int8 format (any x86-64 CPU); "int8-vnni": onnx-int8-vnni
    # (faster, VNNI CPUs only); both, comma-separated
    quantize: str | None = None
    chunk: int = 16  # time steps per call of the fixed-chunk pte format
    # the most time steps per call of the dynamic-time pte format; given, a model that streams
    # gets that variant too (exporter/pte_export.py)
    max_time: int | None = None


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
    """Capture, write and verify each format; a format that fails verification is left out
    (or, named by the user, fails the export), and a graph that fails is captured again by
    the next route (exporter/routes.py) until one passes."""
    required = _named(options)
    with _staging_directory(output_dir, force=options.force) as staging:
        # A whole model's output dims are only known from the exported graph.
        graph = "onnx" in formats or plan.kind == "module"
        failures: list[dict[str, str]] = []
        start, last = 0, None
        primary: RnnxError | None = None  # rnnx's own route's error, when it made no graph
        while True:
            try:
                captured, start = (
                    _capture(plan, options.opset, start, failures) if graph else (None, 0)
                )
            except RnnxError:
                if last is None:
                    raise
                # no later route made a graph: the last one's artifacts stand, each on its own
                manifest, report = last
                manifest = _keep_verified(staging, manifest, report, required, primary)
                report = report.only(manifest.artifacts)
                manifest = _verified(manifest, report)
                break
            if start > 0 and primary is None and failures:
                primary = failures[0].get("error")
            staged = _stage(plan, staging, formats, options, source, findings, captured, failures)
            manifest, report = staged
            # A graph made by a route other than rnnx's own is verified whatever the options
            # say: the verification is what chooses the route.
            if not (options.verify or start > 0):
                break
            crash = _crashes(staging, manifest, options) if start > 0 else None
            if crash:  # a fallback route's graph that takes onnxruntime down is no graph
                failures.append({"route": ROUTES[start].name, "reason": f"its graph: {crash}"})
                if start + 1 < len(ROUTES):
                    start += 1
                    continue
                error = primary or ExportError(f"onnx: {crash}")
                raise type(error)(f"{error} ({ROUTES[start].name}'s graph: {crash})")
            report = _verify(staging, manifest, plan, options)
            fallback = start + 1 < len(ROUTES) and captured is not None
            if "onnx" in manifest.artifacts and not report.artifact_passed("onnx") and fallback:
                last = (manifest, report)
                failures.append({"route": captured.route,  # type: ignore[union-attr]
                                 "reason": "its graph does not match eager PyTorch: "
                                 + report.first_failure("onnx")})  # fmt: skip
                start += 1
                continue
            manifest = _keep_verified(staging, manifest, report, required, primary)
            report = report.only(manifest.artifacts)
            manifest = _verified(manifest, report)
            break
        write_json(staging / MANIFEST, manifest.to_dict())
    return ExportResult(output_dir, manifest, report)


def _capture(
    plan: ExportPlan, opset: int, start: int, failures: list[dict[str, str]]
) -> tuple[Captured, int]:
    """The graph of the first route from `start` that captures the model, and its index; when
    none does, rnnx's own route's error (it names the line and the fix), the others' after."""
    errors: list[RnnxError] = []
    for index in range(start, len(ROUTES)):
        result = ROUTES[index].run(plan, opset)
        if isinstance(result, Captured):
            return result, index
        failures.append({"route": result.route, "reason": result.reason, "error": result.error})
        errors.append(result.error)
    first = errors[0] if errors and start == 0 else None
    if first is None:
        tried = "; ".join(f"{f['route']}: {f['reason'][:200]}" for f in failures)
        raise ExportError(f"no capture route made a graph that matches eager PyTorch ({tried})")
    line = re.match(r"[\w.-]+\.py:\d+", str(first))
    others = ", ".join(
        f"{f['route']} at the same line" if line and f["reason"].startswith(line.group())
        else f"{f['route']}: {f['reason'][:160]}"
        for f in failures[1:]
    )  # fmt: skip
    raise type(first)(f"{first} (other routes: {others})") from first


def _stage(
    plan: ExportPlan,
    staging: Path,
    formats: list[str],
    options: ExportOptions,
    source: Any,
    findings: list[Finding],
    captured: Captured | None,
    failures: list[dict[str, str]],
) -> tuple[Manifest, VerificationReport | None]:
    """Write every format into `staging` from one captured graph; the manifest, unverified."""
    onnx_model = captured.model if captured else None
    signature, streaming = check_streaming(plan.module, plan.finish(captured.dims if captured
                                                                    else []))  # fmt: skip
    for finding in streaming:
        warnings.warn(finding.describe(), RnnxWarning, stacklevel=5)
    findings = findings + streaming
    if plan.not_streamable and signature.state_pairs and not streaming:
        findings.append(Finding("not-streamable", f"the model cannot stream: "
                                f"{plan.not_streamable}", "run whole sequences"))  # fmt: skip
    metadata = metadata_props(signature, plan.spec, __version__)
    written: dict[str, Path] = {}
    notes: dict[str, Any] = {}
    for name in formats:
        path = staging / FORMATS[name].file
        job = WriteJob(plan, signature, metadata, staging, written, options.opset, onnx_model,
                       chunk=options.chunk, max_time=options.max_time)  # fmt: skip
        try:
            notes[name] = resolve(FORMATS[name].writer)(job, path)
        except FormatSkipped as skipped:
            warnings.warn(f"{name}: {skipped}; not written", RnnxWarning, stacklevel=5)
            notes[name] = {"skipped": str(skipped)}
            continue
        except RnnxError as failed:  # a default format that cannot be written is left out
            if name in _named(options) or isinstance(failed, UnsupportedModelError):
                raise
            path.unlink(missing_ok=True)
            warnings.warn(f"{name}: left out, it cannot be written: {failed}", RnnxWarning,
                          stacklevel=5)  # fmt: skip
            notes[name] = {"skipped": f"cannot be written: {failed}"}
            continue
        written[name] = path
    if not written:  # every format asked for skipped this model: an export of nothing
        reasons = "; ".join(f"{n}: {notes[n]['skipped']}" for n in formats)
        raise UnsupportedModelError(f"no format could be written ({reasons})")
    if captured is not None and "onnx" in written:
        earlier = [{"route": f["route"], "reason": f["reason"]} for f in failures]
        notes["onnx"] = {**(notes.get("onnx") or {}), "route": captured.route,
                         **({"routes_failed": earlier} if earlier else {})}  # fmt: skip
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
    return manifest, None


def _crashes(staging: Path, manifest: Manifest, options: ExportOptions) -> str | None:
    """Whether onnxruntime crashes (not raises) on the graph at the shapes the verifier will
    run, found in a child process (runtimes/isolated.py)."""
    if "onnx" not in manifest.artifacts:
        return None
    verify = options.verify_options
    sizes = [*verify.sizes, *((STREAM_SIZE[0], c) for c in verify.stream_chunks), STREAM_SIZE,
             NAN_SIZE]  # fmt: skip
    return crash_at(staging / manifest.artifacts["onnx"], manifest.signature, sizes)


def _verify(
    staging: Path, manifest: Manifest, plan: ExportPlan, options: ExportOptions
) -> VerificationReport:
    eager = open_eager(staging, manifest, reference=plan.user_module)
    # the artifacts were written by this process a moment ago: trusted
    sessions, classes = verification_sessions(staging, manifest, trust=_WRITTEN_HERE)
    report = compare(sessions, eager, options.verify_options, classes)
    report.machine = this_machine().to_dict()
    return report


def _verified(manifest: Manifest, report: VerificationReport) -> Manifest:
    """The manifest with its verification, and this machine among those it passed on."""
    record = verified_record(this_machine(), report.passed_labels(), report.passed)
    return dataclasses.replace(manifest, verification=report.to_dict(), verified_on=(record,))


def _keep_verified(
    staging: Path,
    manifest: Manifest,
    report: VerificationReport,
    required: set[str],
    primary: RnnxError | None = None,
) -> Manifest:
    """Each format on its own: one that fails verification is left out with a warning naming
    the cause, unless the user named it (then the export fails, as when nothing passes). A
    format derived from one left out goes with it. A graph that no route made right fails
    with rnnx's own route's error (`primary`: it names the user's line and the fix)."""
    failed = [name for name in manifest.artifacts if not report.artifact_passed(name)]
    failed += [name for name in manifest.artifacts if name not in failed
               and any(base in failed for base in FORMATS[name].requires)]  # fmt: skip
    kept = [name for name in manifest.artifacts if name not in failed]
    causes = {name: _cause(name, manifest, report) for name in failed}
    for name, cause in causes.items():
        if name in required or not kept:
            if name == "onnx" and primary is not None:
                raise type(primary)(
                    f"{primary} (the other routes' graphs do not match eager PyTorch: "
                    f"{report.first_failure(name)})"
                ) from primary
            others = f"; --format {','.join(kept)} writes the others" if kept else ""
            raise VerificationError(
                f"exported model does not match eager PyTorch: {cause} "
                f"(nothing written; --no-verify writes it anyway{others})"
            )
    notes = dict(manifest.notes)
    for name, cause in causes.items():
        warnings.warn(
            f"{name}: left out, it does not match eager PyTorch: {cause}; the export keeps "
            f"{', '.join(kept)} (--format {','.join(kept)} skips {name})",
            RnnxWarning,
            stacklevel=5,
        )
        (staging / manifest.artifacts[name]).unlink(missing_ok=True)
        notes[name] = {**notes.get(name, {}), "skipped": f"fails verification: {cause}"}
    artifacts = {name: file for name, file in manifest.artifacts.items() if name in kept}
    return dataclasses.replace(manifest, artifacts=artifacts, notes=notes,
                               opset=manifest.opset if "onnx" in kept else None)  # fmt: skip


def _cause(name: str, manifest: Manifest, report: VerificationReport) -> str:
    """Why a format failed verification; for a graph, also why rnnx's own route did not make
    it (the line of the user's code it stopped at)."""
    cause = report.first_failure(name)
    if cause == "no failure":
        cause = f"derived from {', '.join(FORMATS[name].requires)}, which failed"
    earlier = [f for f in (manifest.notes.get(name) or {}).get("routes_failed") or []
               if not f["reason"].startswith("its graph")]  # capture failures only  # fmt: skip
    if earlier:
        cause += f"; {earlier[0]['route']} failed first: {earlier[0]['reason']}"
    return cause


def _named(options: ExportOptions) -> set[str]:
    """The formats the user asked for by name ("all" names none: it asks for what passes);
    --quantize names its int8 formats."""
    quantized = {f"onnx-{q.strip()}" for q in (options.quantize or "").split(",") if q.strip()}
    return {name for name in options.formats if name != "all"} | quantized


def _formats(options: ExportOptions) -> list[str]:
    """The formats to write, in registry order (a derived format after its base)."""
    quantized = {"int8": "onnx-int8", "int8-vnni": "onnx-int8-vnni"}
    asked = [q.strip() for q in (options.quantize or "").split(",") if q.strip()]
    if any(q not in quantized for q in asked) or (options.quantize is not None and not asked):
        raise RnnxError(
            f"--quantize must be {' or '.join(quantized)} (or both, comma-separated), "
            f"got {options.quantize!r}"
        )
    given = set(options.formats)
    if "all" in given:
        given = (given - {"all"}) | set(format_choices(defaults_only=True))
    wanted = given | {quantized[q] for q in asked}
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
