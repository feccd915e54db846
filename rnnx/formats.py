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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rnnx.core.errors import RnnxError, UntrustedCodeError
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
            "ExecuTorch program (XNNPACK), fixed chunks of --chunk N steps plus single steps",
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
            ("onnx", "onnx-int8", "onnx-folded"),
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
    **options: Any,
) -> Session:
    """Open an export directory as a Session: `session.run(feeds) -> outputs`.

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
        return _load_tuned(export_dir, provider, allow_fallback, reference, options)
    entry = get_runtime(runtime)
    check_code_trust(entry, export_dir, trust)
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
    opener = resolve(entry.opener)
    return opener(
        path if path is not None else Path(export_dir),
        manifest,
        provider=provider,
        allow_fallback=allow_fallback,
        threads=threads,
        **options,
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
    options: dict[str, Any],
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
                threads=threads, reference=reference, **chosen, **options)  # fmt: skip


def _tuned_record(record: Mapping[str, Any], export_dir: Any) -> tuple:
    """(runtime, options, threads, batch, time) of a `tuned` record, checked: a manifest is
    input, so it may only pick among runtimes, formats and precisions, nothing else."""
    runtime, options = record.get("runtime"), record.get("options") or {}
    numbers = [record.get(k) for k in ("threads", "batch", "time")]
    valid = (
        runtime in PYTHON_RUNTIMES and runtime != "eager"
        and isinstance(options, Mapping) and set(options) <= {"format", "precision"}
        and all(isinstance(v, str) for v in options.values())
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in numbers)
    )  # fmt: skip
    if not valid:
        raise RnnxError(f"'{export_dir}': a 'tuned' record of its manifest is malformed: re-tune")
    return (runtime, dict(options), *numbers)


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
    precision = options.get("precision", "f32")
    for name, entry in chosen:
        check_code_trust(entry, export_dir, trust)
        label = name if runtime is None else f"{runtime}:{name}"
        label += f"[{precision}]" if precision != "f32" else ""
        path = artifact_path(export_dir, manifest, name, entry)
        sessions[label] = resolve(str(entry.opener))(path, manifest, **options)
        classes[label] = FORMATS[name].tolerance if precision == "f32" else precision
    return sessions, classes
