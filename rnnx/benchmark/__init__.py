"""Latency of an export across runtimes, side by side, against eager and against the machine.

Runs are interleaved (eager, torchscript, onnxruntime, eager, ...) so drift in clock speed or
background load hits every runtime alike, and each ratio to eager comes from the same rounds.
Every runtime of the registry (rnnx/formats.py) is a candidate, for each format it reads:
`onnxruntime`, `onnxruntime:onnx-int8`, and the C++ runners. For a bare recurrent layer the
floor is also computed (machine.py).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from rnnx.benchmark.cpp_runners import runner_latency
from rnnx.benchmark.machine import floor_ms, measure_machine
from rnnx.benchmark.measure import BenchRow, interleaved, stream_calls
from rnnx.core.errors import RnnxError, RnnxWarning, UnsupportedModelError, UntrustedCodeError
from rnnx.core.limits import MAX_ELEMENTS, check_threads, is_count, shown
from rnnx.core.manifest import Manifest, read_manifest
from rnnx.core.signature import random_inputs
from rnnx.cpp_build import runner_path
from rnnx.formats import (
    FORMATS,
    RUNTIMES,
    Runtime,
    check_code_trust,
    cpu_refusal,
    device_for,
    load,
    runtime_missing,
)

__all__ = [
    "BenchOptions", "BenchRow", "Target", "available_targets", "bench", "configurations",
    "targets", "unavailable",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    # None: every target this export and machine have (eager is required: it is the baseline).
    # A list: exactly those (names from `targets()`), each of which must be available.
    runtimes: tuple[str, ...] | None = None
    providers: tuple[str, ...] = ("cpu",)  # onnxruntime providers / torch devices, each a column
    batches: tuple[int, ...] = (1,)
    times: tuple[int, ...] = (100,)
    threads: tuple[int, ...] = (1,)
    chunks: tuple[int, ...] = ()  # streaming mode: per-chunk latency for these chunk sizes
    frame_rate: float = 100.0  # frames per second of the stream, for the real-time factor
    repeats: int = 30
    warmup: int = 3
    min_seconds: float = 0.0  # keep repeating until each runtime ran this long (stable medians)
    trust: Any = None  # LoadOptions (--model, --trust-checkpoint) for the eager reference

    def __post_init__(self) -> None:
        check_counts({"--repeats": self.repeats, "--batch": self.batches, "--time": self.times,
                      "--chunk": self.chunks}, threads=self.threads)  # fmt: skip
        check_counts({"warmup": self.warmup}, least=0)


def check_counts(
    options: Mapping[str, int | tuple[int, ...]], *, threads: tuple[int, ...] = (), least: int = 1
) -> None:
    """Bench and tune settings, checked before anything runs (one line naming the option):
    integers of at least `least` (repeats, batches, times, chunks), threads in 1..MAX_THREADS."""
    for option, value in options.items():
        for item in value if isinstance(value, tuple) else (value,):
            if not is_count(item, MAX_ELEMENTS, least):
                raise RnnxError(
                    f"{option} must be an integer of at least {least}, got {shown(item)}"
                )
    for item in threads:
        check_threads(item, "--threads")


@dataclasses.dataclass(frozen=True)
class Target:
    """A runtime on one of the formats it reads: what one benchmark column measures."""

    runtime: Runtime
    format: str | None  # None: the eager reference
    precision: str = "f32"  # the runtime's inference precision (Runtime.precisions)

    @property
    def name(self) -> str:
        """runtime[:format][@precision]: onnxruntime, onnxruntime:onnx-int8, openvino@bf16."""
        default = self.format is None or self.format == self.runtime.formats[0]
        name = self.runtime.name if default else f"{self.runtime.name}:{self.format}"
        return name if self.precision == "f32" else f"{name}@{self.precision}"

    @property
    def options(self) -> dict[str, Any]:
        """What rnnx.load takes to open it (besides the runtime and provider)."""
        options: dict[str, Any] = {"format": self.format} if self.format else {}
        return {**options, "precision": self.precision} if self.precision != "f32" else options


def targets() -> dict[str, Target]:
    """Every benchmark target the registry offers, by name (the CLI's --runtime choices)."""
    found = [
        Target(r, f, p)
        for r in RUNTIMES.values()
        for f in (r.formats or (None,))
        for p in ("f32", *r.precisions)
    ]
    return {t.name: t for t in found if t.format is None or t.runtime.runner is None
            or t.format == t.runtime.formats[0]}  # fmt: skip


def bench(
    export_dir: str | os.PathLike,
    options: BenchOptions = BenchOptions(),
    *,
    reference: Any = None,
    progress: Callable[[int], None] | None = None,
    peers: Mapping[str, Callable[[Mapping[str, Any]], Any]] | None = None,
) -> list[BenchRow]:
    """Measure every (target, batch, time, threads[, chunk]) of `options` on an export.

    `peers` are other tools' ways to run the same model (name -> a function of the feeds),
    timed in the same interleaved rounds so the comparison with them is side by side; they
    are measured on whole sequences only.
    """
    import torch

    manifest = read_manifest(export_dir)
    chosen = _select(options.runtimes, export_dir, manifest, reference)
    python = [t for t in chosen if t.runtime.runner is None]
    runners = []
    for t in (t for t in chosen if t.runtime.runner is not None):
        try:  # a runner that loads native code from the export needs the same trust
            check_code_trust(t.runtime, export_dir, options.trust)
        except UntrustedCodeError as error:
            if options.runtimes:
                raise
            warnings.warn(f"{t.name} left out: {error}", RnnxWarning, stacklevel=2)
            continue
        runners.append(t)
    machine = measure_machine() if manifest.spec is not None else None
    rows: list[BenchRow] = []
    torch_threads = torch.get_num_threads()
    try:
        for threads in options.threads:
            torch.set_num_threads(threads)
            sessions = {}
            for provider in options.providers:
                for t in python:
                    if device_for(t.runtime, provider) is None:
                        continue
                    try:
                        session = _open(t, export_dir, provider, threads, reference, options.trust)
                    except (UnsupportedModelError, UntrustedCodeError) as error:
                        if options.runtimes:  # asked for by name: its failure is the answer
                            raise
                        # every available runtime: one that refuses this model is left out,
                        # and says why
                        warnings.warn(f"{t.name} left out: {error}", RnnxWarning, stacklevel=2)
                        continue
                    sessions[_label(t.name, provider)] = session
            measured = set()
            for batch in options.batches:
                for steps in options.times:
                    # once per size the model takes: sizes below a minimum length run at the
                    # minimum, and an axis the model fixes has one size
                    sizes = manifest.signature.fit({"batch": batch, "time": steps})
                    labels = tuple(manifest.signature.labels(sizes).values())
                    if labels not in measured:
                        measured.add(labels)
                        rows += _configuration(sessions, runners, export_dir, manifest, options,
                                               sizes, threads, machine, peers or {})  # fmt: skip
                    if progress:
                        progress(1)
    finally:
        torch.set_num_threads(torch_threads)
    return rows


def _configuration(
    sessions: dict, runners: list[Target], export_dir: Any, manifest: Manifest,
    options: BenchOptions, sizes: dict[str, int], threads: int, machine: Any,
    peers: Mapping[str, Callable[[Mapping[str, Any]], Any]],
) -> list[BenchRow]:  # fmt: skip
    signature = manifest.signature
    feeds = random_inputs(signature, sizes)
    batch, steps = sizes["batch"], sizes["time"]
    floor = floor_ms(manifest.spec, batch, steps, machine) if manifest.spec and machine else None
    labels = signature.labels(sizes)
    if options.chunks:
        calls = {r: stream_calls(s, feeds, batch, options.chunks) for r, s in sessions.items()}
    else:
        calls = {r: {None: (lambda s=s: s.run(feeds))} for r, s in sessions.items()}
        calls.update({name: {None: (lambda f=f: f(feeds))} for name, f in peers.items()})
    # the JavaScript runtimes also time each call inside the browser or Node (last_ms): the
    # cost of the deployment target itself, without the transport from Python
    inner = {r: (f"{r} (js)", lambda s=s: s.last_ms) for r, s in sessions.items()
             if hasattr(s, "last_ms")}  # fmt: skip
    owners = {series: sessions[r] for r, (series, _) in inner.items()}
    measured = interleaved(calls, repeats=options.repeats, warmup=options.warmup,
                           min_seconds=options.min_seconds, inner=inner)  # fmt: skip
    common = dict(batch=labels["batch"], steps=labels["time"], threads=threads, floor_ms=floor,
                  frame_rate=options.frame_rate)  # fmt: skip
    rows = []
    for chunk, by_runtime in measured.items():
        eager = by_runtime.get("eager", ((None,), 0))[0][0]
        for runtime, (percentiles, count) in by_runtime.items():
            session = sessions.get(runtime) or owners.get(runtime)
            providers = ",".join(session.providers) if session is not None else "peer"
            rows.append(BenchRow.from_latency(
                runtime, providers, chunk=chunk,
                percentiles_ms=percentiles, repeats=count, eager_p50_ms=eager, **common,
            ))  # fmt: skip
    for target in runners:
        for chunk in options.chunks or (None,):
            binary = runner_path(target.runtime)
            latency = runner_latency(binary, export_dir, signature, feeds, repeats=options.repeats,
                                     threads=threads, chunk=chunk)  # fmt: skip
            if latency is None:
                continue
            eager = measured.get(chunk, {}).get("eager", ((None,), 0))[0][0]
            rows.append(BenchRow.from_latency(
                target.name, "cpu", chunk=chunk, percentiles_ms=latency[0], repeats=latency[1],
                eager_p50_ms=eager, **common,
            ))  # fmt: skip
    return rows


def configurations(options: BenchOptions) -> int:
    """How many (threads, batch, time) configurations `bench` will measure (for progress)."""
    return len(options.threads) * len(options.batches) * len(options.times)


def _select(
    wanted: tuple[str, ...] | None, export_dir: Any, manifest: Manifest, reference: Any
) -> list[Target]:
    """The targets to measure; see BenchOptions.runtimes."""
    offered = targets()
    unknown = [name for name in wanted or () if name not in offered]
    if unknown:
        raise RnnxError(f"unknown runtime {unknown[0]!r}; expected one of {', '.join(offered)}")
    for name in wanted or ("eager",):
        reason = unavailable(offered[name], manifest, reference)
        if reason:
            raise RnnxError(f"runtime {name} is not available for '{export_dir}': {reason}")
    if wanted:
        return [offered[n] for n in wanted]
    return available_targets(manifest, reference)


def available_targets(manifest: Manifest, reference: Any = None) -> list[Target]:
    """Every target this export and machine have (the default of `rnnx bench`, and what
    `rnnx tune` tries)."""
    return [t for t in targets().values() if not unavailable(t, manifest, reference)]


def unavailable(target: Target, manifest: Manifest, reference: Any = None) -> str | None:
    """Why `target` cannot run on this export and machine (what to do); None when it can."""
    if target.format is None:
        has_reference = reference is not None or bool(manifest.source or manifest.reference)
        return None if has_reference else target.runtime.install_hint
    if target.format not in manifest.artifacts:
        return FORMATS[target.format].hint or f"export with --format {target.format}"
    refusal = cpu_refusal(target.format)
    if refusal:
        return refusal
    if target.runtime.runner is not None:
        found = runner_path(target.runtime).is_file()
        return None if found else target.runtime.install_hint
    missing = runtime_missing(target.runtime)
    if missing:
        return missing
    if target.precision != "f32" and target.precision not in target.runtime.precisions_here():
        return f"this CPU does not run {target.precision} in {target.runtime.name}"
    return None


def _label(name: str, provider: str) -> str:
    return name if provider == "cpu" else f"{name}[{provider}]"


def _open(
    target: Target, export_dir: Any, provider: str, threads: int, reference: Any, trust: Any
) -> Any:
    runtime = target.runtime
    device = device_for(runtime, provider)
    if target.format is None:
        return load(export_dir, runtime.name, provider=device, reference=reference, trust=trust)
    # measured for speed (verification is rnnx verify's and rnnx tune's): no unverified warning
    return load(export_dir, runtime.name, provider=device, threads=threads, trust=trust,
                warn_unverified=False, **target.options, **runtime.bench_options)  # fmt: skip
