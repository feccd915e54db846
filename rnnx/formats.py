"""The registry: every artifact format rnnx writes and every runtime that runs one.

Adding a format or a runtime is one module (its writer, or its Session class) and one entry
here; the export pipeline, `rnnx.load`, the verifier, `rnnx bench` and the CLI's choices all
loop over these tables. Writers and openers are named as "module:function" strings and
imported on use, so reading the registry (the CLI's --help) imports neither torch nor
onnxruntime.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rnnx.core.errors import RnnxError, RnnxWarning, UntrustedCodeError
from rnnx.core.limits import MAX_DIM, check_threads, is_count, shown
from rnnx.core.manifest import Manifest, read_manifest
from rnnx.runtimes.base import Session


@dataclasses.dataclass(frozen=True)
class Format:
    name: str  # the one name: manifest key, --format value, rnnx.load(format=...)
    file: str  # the file it is written to inside the export directory
    writer: str  # "module:function" taking (WriteJob, Path), returning manifest notes or None
    description: str
    tolerance: str = "fp32"  # the verification tolerance class (VerifyOptions.tolerance)
    default: bool = True  # written by --format all
    requires: tuple[str, ...] = ()  # formats written before it, which it is derived from
    hint: str = ""  # how to get it into an export; default: --format NAME
    # CPU flags of which the machine running it needs one (rnnx/core/machine.py); () for any
    cpu_flags: tuple[str, ...] = ()
    cpu_reason: str = ""  # why, for the one-line refusal


@dataclasses.dataclass(frozen=True)
class Runtime:
    name: str
    # the formats it reads, its default first (() reads the eager reference); the first Python
    # runtime registered for a format is the one that verifies it
    formats: tuple[str, ...]
    opener: str | None  # "module:function" -> Session; None for an external runner
    install_hint: str  # how to get it when it is missing
    modules: tuple[str, ...] = ()  # Python packages it needs
    runner: str | None = None  # a C++ runner executable (cpp/), measured by `rnnx bench`
    # what its `provider` names: "execution-providers" (onnxruntime's: cpu, cuda:N,
    # TensorrtExecutionProvider, ...), "torch" (devices: cpu, cuda:N) or "cpu" (cpu only)
    devices: str = "torch"
    bench_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # inference precisions it offers beyond f32 (its opener's `precision=`), and the
    # "module:function" that says which of them this machine runs
    precisions: tuple[str, ...] = ()
    supported_precisions: str | None = None
    # its artifact is native code (a compiled library) that opening it runs: an export
    # directory is untrusted input, so only an explicit trust opens it (check_code_trust)
    runs_code: bool = False
    # "module:function" -> why it cannot run here (one line: what to install), or None; for
    # what `modules` cannot say (a browser, an npm package)
    check: str | None = None

    def precisions_here(self) -> list[str]:
        """The reduced precisions this runtime runs on this machine."""
        if not self.precisions or not self.supported_precisions:
            return []
        return [p for p in resolve(self.supported_precisions)() if p in self.precisions]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "onnx",
            "model.onnx",
            "rnnx.exporter.onnx_export:write_onnx",
            "ONNX with native RNN/LSTM/GRU ops",
        ),
        Format(
            "torchscript",
            "model.torchscript.pt",
            "rnnx.exporter.torchscript_export:write_torchscript",
            "traced TorchScript",
        ),
        Format(
            "onnx-int8",
            "model.int8.onnx",
            "rnnx.exporter.quantize:write_int8",
            "ONNX with int8 dynamic quantization (every recurrent layer and MatMul)",
            tolerance="int8",
            default=False,
            requires=("onnx",),
            hint="export with --quantize int8",
        ),
        Format(
            "onnx-int8-vnni",
            "model.int8-vnni.onnx",
            "rnnx.exporter.quantize:write_int8_vnni",
            "ONNX int8 with full-range int8 weights: faster, for CPUs with VNNI only",
            tolerance="int8",
            default=False,
            requires=("onnx",),
            hint="export with --quantize int8-vnni",
            cpu_flags=("avx512_vnni", "avx_vnni"),
            cpu_reason="its int8 weights saturate onnxruntime's int8 GEMM on CPUs without VNNI; "
            "use onnx-int8 (--quantize int8), which is correct on every x86-64 CPU",
        ),
        Format(
            "onnx-folded",
            "model.folded.onnx",
            "rnnx.exporter.onnx_export:write_onnx_folded",
            "ONNX with projected LSTMs as native LSTM ops (projection folded into the recurrence)",
            default=False,
            hint="export with --format onnx-folded (models with a projected LSTM only)",
        ),
        Format(
            "pt2",
            "model.pt2",
            "rnnx.exporter.pt2_export:write_pt2",
            "torch.export program compiled by AOTInductor (CPU), no TorchScript",
            # compiling takes ~20 s a model: asked for by name, so `--format all` stays fast
            default=False,
        ),
        Format(
            "pte",
            "model.pte",
            "rnnx.exporter.pte_export:write_pte",
            "ExecuTorch program (XNNPACK): fixed chunks of --chunk N steps, or up to --max-time",
            default=False,  # lowering an unrolled chunk takes tens of seconds: asked for by name
            hint="export with --format pte (pip install executorch)",
        ),
    )
}

RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime(
            "eager",
            (),
            "rnnx.formats:open_eager",
            "export from a checkpoint, or pass the model as reference=",
            modules=("torch",),
        ),
        Runtime(
            "torchscript",
            ("torchscript",),
            "rnnx.runtimes.torch_session:open_torchscript",
            "export with --format torchscript or all",
            modules=("torch",),
        ),
        Runtime(
            "onnxruntime",
            ("onnx", "onnx-int8", "onnx-int8-vnni", "onnx-folded"),
            "rnnx.runtimes.onnxruntime_session:open_onnxruntime",
            "export with --format onnx or all (pip install onnxruntime)",
            modules=("onnxruntime",),
            devices="execution-providers",
            # one inter-op thread: --threads alone sets the parallelism a row measures
            bench_options={"inter_op_threads": 1},
        ),
        Runtime(
            "openvino",
            ("onnx", "onnx-folded"),
            "rnnx.runtimes.openvino_session:open_openvino",
            "pip install openvino (the rnnx[openvino] extra)",
            modules=("openvino",),
            devices="cpu",
            precisions=("bf16", "f16"),
            supported_precisions="rnnx.runtimes.openvino_session:supported_precisions",
        ),
        Runtime(
            "aoti",
            ("pt2",),
            "rnnx.runtimes.aoti_session:open_aoti",
            "export with --format pt2",
            modules=("torch",),
            devices="cpu",  # the package is compiled for the CPU it was exported on
            runs_code=True,  # the package is a shared library, loaded into this process
        ),
        Runtime(
            "executorch",
            ("pte",),
            "rnnx.runtimes.executorch_session:open_executorch",
            "export with --format pte (pip install executorch)",
            modules=("executorch",),
            devices="cpu",
        ),
        Runtime(
            "node",
            ("onnx", "onnx-int8", "onnx-folded"),
            "rnnx.runtimes.js_session:open_node",
            "apt-get install nodejs npm, then `make js` (the npm package onnxruntime-node)",
            devices="cpu",
            check="rnnx.runtimes.js_host:missing_node",
        ),
        Runtime(
            "web",
            ("onnx", "onnx-int8", "onnx-folded"),
            "rnnx.runtimes.js_session:open_web",
            "apt-get install chromium, pip install playwright, then `make js` (onnxruntime-web)",
            modules=("playwright",),
            devices="cpu",
            check="rnnx.runtimes.js_host:missing_web",
        ),
        Runtime(
            "cpp-onnxruntime",
            ("onnx",),
            None,
            "build the C++ runners with `rnnx cpp build`",
            modules=("onnxruntime",),  # libonnxruntime, from the onnxruntime wheel
            runner="rnnx-ort-run",
        ),
        Runtime(
            "cpp-torchscript",
            ("torchscript",),
            None,
            "build the C++ runners with `rnnx cpp build`",
            modules=("torch",),  # libtorch, from the torch wheel
            runner="rnnx-torch-run",
        ),
        Runtime(
            "cpp-aoti",
            ("pt2",),
            None,
            "build the C++ runners with `rnnx cpp build`",
            modules=("torch",),  # libtorch's AOTIModelPackageLoader, from the torch wheel
            runner="rnnx-aoti-run",
            devices="cpu",
            runs_code=True,  # the runner loads the package's shared library into its process
        ),
    )
}

PYTHON_RUNTIMES = tuple(name for name, r in RUNTIMES.items() if r.opener)


def device_for(runtime: Runtime, provider: str) -> str | None:
    """The `provider` argument `runtime` takes for a provider column of `rnnx bench` (cpu,
    cuda:0, an execution provider), or None when it has no such device."""
    if runtime.devices == "execution-providers":
        return provider
    if provider == "cpu" or (runtime.devices == "torch" and provider.startswith("cuda")):
        return provider
    return None


def runtimes_for(format: str) -> list[Runtime]:
    """The runtimes that read `format`, in registry order."""
    return [r for r in RUNTIMES.values() if format in r.formats]


def format_choices(*, defaults_only: bool = False) -> list[str]:
    return [name for name, f in FORMATS.items() if f.default or not defaults_only]


def resolve(reference: str) -> Callable[..., Any]:
    """'package.module:function' -> the function (imported now, not when the registry is)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def cpu_refusal(format: str, machine: Any = None) -> str | None:
    """Why `format` cannot run correctly on this machine's CPU (or `machine`'s); None if it can."""
    from rnnx.core.machine import this_machine

    entry = FORMATS[format]
    facts = machine or this_machine()
    if not entry.cpu_flags or any(flag in facts.flags for flag in entry.cpu_flags):
        return None
    needs = " or ".join(entry.cpu_flags)
    return f"{format} needs a CPU with {needs} (this one is {facts.cpu_class}): {entry.cpu_reason}"


def check_cpu(format: str, path: Any, machine: Any = None) -> None:
    reason = cpu_refusal(format, machine)
    if reason:
        raise RnnxError(f"'{path}': {reason}")


def runtime_available(runtime: Runtime) -> bool:
    """Whether this machine has what `runtime` needs (not whether an export has its format)."""
    return runtime_missing(runtime) is None


def runtime_missing(runtime: Runtime) -> str | None:
    """What this machine lacks to run `runtime` (one line saying how to install it), or None."""
    absent = [m for m in runtime.modules if importlib.util.find_spec(m) is None]
    if absent:
        return f"runtime {runtime.name} needs {', '.join(absent)}: {runtime.install_hint}"
    return resolve(runtime.check)() if runtime.check else None


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        known = ", ".join(PYTHON_RUNTIMES)
        raise RnnxError(f"unknown runtime {name!r}; expected one of {known}, or auto")
    return RUNTIMES[name]


def load(
    export_dir: str | os.PathLike,
    runtime: str = "onnxruntime",
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
    reference: Any = None,
    format: str | None = None,
    trust: Any = None,
    warn_unverified: bool = True,
    **options: Any,
) -> Session:
    """Open an export directory as a Session: `session.run(feeds) -> outputs`.

    An int8 or bf16 artifact that never passed verification on this CPU class (the manifest's
    `verified_on`) is opened with a warning, once per process, unless `warn_unverified` is
    False (rnnx bench: it measures speed; rnnx tune verifies before it measures).

    runtime: "auto" (what `rnnx tune` recorded as fastest for `batch=N`), or a name from
    RUNTIMES: "onnxruntime" (provider "cpu", "cuda[:N]" or any installed
    execution provider by name), "torchscript" or "eager" (provider is the torch device: "cpu",
    "cuda[:N]"). The eager model is rebuilt from the checkpoint recorded at export (or the
    weights a bare layer's export carries), or is `reference` if given; `trust` (a
    LoadOptions with model= and/or trust_checkpoint=) is what lets rebuilding it run code: the
    manifest never grants that. `format` picks another
    format the runtime reads ("onnx-int8", "onnx-folded"). Other keyword arguments are its own
    options (onnxruntime: inter_op_threads, graph_optimization, optimized_model_path,
    provider_options).
    """
    if runtime == "auto":
        return _load_tuned(export_dir, provider, allow_fallback, reference, trust, options)
    entry = get_runtime(runtime)
    check_code_trust(entry, export_dir, trust)
    if threads is not None:
        check_threads(threads, "threads")
    if entry.opener is None:
        raise RnnxError(f"{runtime} is a C++ runner: run {entry.runner} (see rnnx cpp build)")
    manifest = read_manifest(export_dir)
    path = None
    if entry.formats:
        path = artifact_path(export_dir, manifest, format or entry.formats[0], entry)
    elif format is not None:
        raise RnnxError(f"the {runtime} runtime reads no artifact; format={format!r} is not for it")
    else:
        options.update(reference=reference, trust=trust)
    missing = runtime_missing(entry)
    if missing:
        raise RnnxError(missing)
    if path is not None and warn_unverified:
        _warn_if_unverified_here(export_dir, manifest, entry, format or entry.formats[0],
                                 options.get("precision") or "f32")  # fmt: skip
    opener = resolve(entry.opener)
    return opener(
        path if path is not None else Path(export_dir),
        manifest,
        provider=provider,
        allow_fallback=allow_fallback,
        threads=threads,
        **options,
    )


_WARNED: set[tuple[str, str]] = set()


def _warn_if_unverified_here(
    export_dir: Any, manifest: Manifest, runtime: Runtime, format: str, precision: str
) -> None:
    """Warn (once per artifact and process) when an artifact whose numerics depend on the
    instruction set (int8, bf16, f16) never passed verification on this CPU class: its export
    was verified elsewhere, and may compute other numbers here."""
    from rnnx.core.machine import this_machine

    if FORMATS[format].tolerance == "fp32" and precision == "f32":
        return
    suffix = f"[{precision}]" if precision != "f32" else ""
    labels = {f"{runtime.name}:{format}{suffix}"}
    if not suffix and next((r for r in runtimes_for(format) if r.opener), None) is runtime:
        labels.add(format)  # the export's own verification labels artifacts by format
    here = this_machine().cpu_class
    classes = {r["cpu_class"] for r in manifest.verified_on if labels & set(r["artifacts"])}
    key = (str(Path(export_dir).resolve()), min(labels))
    if here in classes or key in _WARNED:
        return
    _WARNED.add(key)
    where = f"on {', '.join(sorted(classes))}" if classes else "on no recorded CPU class"
    warnings.warn(
        f"'{export_dir}': {min(labels)} was verified {where}, never on this CPU class ({here}), "
        f"and its numerics depend on the CPU: run `rnnx verify {export_dir} --record` here",
        RnnxWarning,
        stacklevel=3,
    )


def check_code_trust(runtime: Runtime, export_dir: Any, trust: Any) -> None:
    """Refuse to open an artifact that is native code unless `trust` (a LoadOptions with
    trust_checkpoint, the CLI's --trust-checkpoint) allows running code from the export."""
    if runtime.runs_code and not getattr(trust, "trust_checkpoint", False):
        raise UntrustedCodeError(
            f"'{export_dir}': the {runtime.name} runtime loads a compiled library from the export "
            "(runs its code): pass --trust-checkpoint (trust=LoadOptions(trust_checkpoint=True)) "
            "if you trust where it came from"
        )


def _load_tuned(
    export_dir: str | os.PathLike, provider: str, allow_fallback: bool, reference: Any,
    trust: Any, options: dict[str, Any],
) -> Session:  # fmt: skip
    """The runtime `rnnx tune` found fastest (and verified) for the batch asked for (the nearest
    batch tuned, the longest time among those)."""
    batch = options.pop("batch", 1)
    tuned = read_manifest(export_dir).tuned
    if not tuned:
        raise RnnxError(f"'{export_dir}' has no tuning: run `rnnx tune {export_dir}` first")
    records = [_tuned_record(r, export_dir) for r in tuned]
    runtime, chosen, threads = min(records, key=lambda r: (abs(r[3] - batch), -r[4]))[:3]
    return load(export_dir, runtime, provider=provider, allow_fallback=allow_fallback,
                threads=threads, reference=reference, trust=trust, **chosen,
                **options)  # fmt: skip


def _tuned_record(record: Mapping[str, Any], export_dir: Any) -> tuple:
    """(runtime, options, threads, batch, time) of a `tuned` record, checked: a manifest is
    input, so it may only pick among runtimes, formats and precisions, nothing else, and its
    numbers are bounded before they reach a runtime (one line naming the field)."""
    where = f"'{export_dir}': a 'tuned' record's"
    runtime, options = record.get("runtime"), record.get("options") or {}
    if runtime not in PYTHON_RUNTIMES or runtime == "eager":
        raise RnnxError(f"{where} 'runtime' {shown(runtime)} is not a runtime rnnx.load opens: "
                        "re-tune")  # fmt: skip
    if not (isinstance(options, Mapping) and set(options) <= {"format", "precision"}
            and all(isinstance(v, str) for v in options.values())):  # fmt: skip
        raise RnnxError(f"{where} 'options' may only name a format and a precision: re-tune")
    check_threads(record.get("threads"), f"{where} 'threads'")
    for key in ("batch", "time"):
        if not is_count(record.get(key), MAX_DIM):
            raise RnnxError(
                f"{where} {key!r} must be an integer from 1 to {MAX_DIM}, "
                f"got {shown(record.get(key))}: re-tune"
            )
    return (runtime, dict(options), *(record[k] for k in ("threads", "batch", "time")))


def artifact_path(
    export_dir: str | os.PathLike, manifest: Manifest, format: str, runtime: Runtime
) -> Path:
    if format not in runtime.formats:
        readable = ", ".join(runtime.formats)
        raise RnnxError(f"the {runtime.name} runtime reads {readable}, not {format!r}")
    path = manifest.artifact_paths(export_dir).get(format)
    if path is None:
        hint = FORMATS[format].hint or f"export with --format {format}"
        raise RnnxError(f"'{export_dir}' has no {format} artifact ({hint})")
    if not path.is_file():
        raise RnnxError(f"artifact '{path}' listed in the manifest is missing")
    check_cpu(format, path)
    return path


def open_eager(
    export_dir: Path,
    manifest: Manifest,
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
    reference: Any = None,
    checkpoint: str | os.PathLike | None = None,
    trust: Any = None,
) -> Session:
    """The eager reference as a Session (the "eager" runtime's opener); `trust`: the caller's
    LoadOptions (--model, --trust-checkpoint), the only thing that lets rebuilding run code."""
    from rnnx.exporter.reference import load_reference, reference_module
    from rnnx.runtimes.torch_session import EagerSession, fallback_device

    if reference is None:
        reference = load_reference(export_dir, manifest, checkpoint, trust)
    device = fallback_device(provider, allow_fallback)
    return EagerSession(reference_module(manifest, reference), manifest.signature, device=device)


def verification_sessions(
    export_dir: str | os.PathLike,
    manifest: Manifest,
    runtime: str | None = None,
    format: str | None = None,
    *,
    trust: Any = None,
    **options: Any,
) -> tuple[dict[str, Session], dict[str, str]]:
    """The sessions that verify an export, by label, and each one's tolerance class.

    By default each artifact, opened on CPU by the first runtime that reads its format (label:
    the format). With `runtime`: the formats it reads (or only `format`), with its `options`
    (label: runtime:format[precision]; a precision is its own tolerance class). An artifact
    that is native code is opened only with `trust` (check_code_trust).
    """
    sessions: dict[str, Session] = {}
    classes: dict[str, str] = {}
    unknown = [name for name in manifest.artifacts if name not in FORMATS]
    if unknown:
        raise RnnxError(f"'{export_dir}': the manifest lists an unknown format {unknown[0]!r}")
    machine = None
    if options.get("emulate_cpu") is not None:
        from rnnx.runtimes.emulated import emulated_machine

        machine = emulated_machine(options["emulate_cpu"])
    if runtime is None:
        chosen = [(name, next(r for r in runtimes_for(name) if r.opener))
                  for name in manifest.artifacts]  # fmt: skip
    else:
        entry = get_runtime(runtime)
        missing = runtime_missing(entry)
        if missing:
            raise RnnxError(missing)
        chosen = [(name, entry) for name in entry.formats
                  if name in manifest.artifacts and format in (None, name)]  # fmt: skip
        if not chosen:
            raise RnnxError(f"'{export_dir}' has no artifact the {runtime} runtime reads")
    runnable = []
    for name, entry in chosen:  # an artifact this CPU cannot run correctly: said, not hidden
        reason = cpu_refusal(name, machine)
        if reason and format == name:
            raise RnnxError(f"'{export_dir}': not verified on this CPU: {reason}")
        if reason:
            warnings.warn(f"{reason}; not verified here", RnnxWarning, stacklevel=3)
        else:
            runnable.append((name, entry))
    chosen = runnable
    precision = options.get("precision", "f32")
    for name, entry in chosen:
        check_code_trust(entry, export_dir, trust)
        label = name if runtime is None else f"{runtime}:{name}"
        label += f"[{precision}]" if precision != "f32" else ""
        path = artifact_path(export_dir, manifest, name, entry)
        sessions[label] = resolve(str(entry.opener))(path, manifest, **options)
        classes[label] = FORMATS[name].tolerance if precision == "f32" else precision
    return sessions, classes
