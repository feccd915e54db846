"""Latency of an export across runtimes, side by side, against eager and against the machine.

Runs are interleaved (eager, torchscript, onnxruntime, eager, ...) so drift in clock speed or
background load hits every runtime alike, and each ratio to eager comes from the same rounds.
For a bare recurrent layer the floor is also computed: the time the arithmetic needs at this
machine's measured matmul rate, or the time to stream the recurrent weights once per step at
its measured bandwidth for that many bytes, whichever is larger.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from rnnx.errors import RnnxError
from rnnx.exporter.signature import random_inputs

PYTHON_RUNTIMES = ("eager", "torchscript", "onnxruntime", "onnxruntime-int8")
CPP_RUNTIMES = {"cpp-onnxruntime": "onnxruntime", "cpp-torchscript": "torchscript"}


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    # None: every runtime this export and machine have (eager is required: it is the baseline).
    # A list: exactly those, each of which must be available.
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


@dataclasses.dataclass
class BenchRow:
    runtime: str
    providers: str
    batch: int
    time: int
    threads: int
    chunk: int | None  # streaming chunk size; None: whole sequence per call
    p50_ms: float
    p90_ms: float
    p99_ms: float
    repeats: int
    sequences_per_s: float
    frames_per_s: float
    ratio_to_eager: float | None
    floor_ms: float | None
    times_floor: float | None  # p50 / floor (1.0 would be the hardware limit)
    real_time_factor: float | None  # streaming: compute time / audio time

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def bench(
    export_dir: str | os.PathLike,
    options: BenchOptions = BenchOptions(),
    *,
    reference: Any = None,
    progress: Callable[[int], None] | None = None,
) -> list[BenchRow]:
    """Measure every (runtime, batch, time, threads[, chunk]) of `options` on an export."""
    import torch

    from rnnx.exporter.manifest import read_manifest
    from rnnx.exporter.spec import LayerSpec

    manifest = read_manifest(export_dir)
    runtimes, runners = _select_runtimes(options.runtimes, export_dir, manifest, reference)
    spec = LayerSpec.from_dict(manifest["spec"]) if manifest.get("spec") else None
    machine = measure_machine() if spec is not None else None
    rows: list[BenchRow] = []
    for threads in options.threads:
        torch.set_num_threads(threads)
        sessions = {
            _label(r, provider): _open(r, export_dir, provider, threads, reference)
            for provider in options.providers
            for r in runtimes
            if r.startswith("onnxruntime") or _torch_device(provider)
        }
        signature = next(iter(sessions.values())).signature
        for batch in options.batches:
            for steps in options.times:
                feeds = random_inputs(signature, {"batch": batch, "time": steps})
                floor = _floor_ms(spec, batch, steps, machine) if spec and machine else None
                if options.chunks:
                    calls = {
                        r: _stream_calls(s, feeds, batch, options.chunks)
                        for r, s in sessions.items()
                    }
                else:
                    calls = {
                        r: {None: (lambda s=s, f=feeds: s.run(f))} for r, s in sessions.items()
                    }
                measured = _measure(calls, sessions, options, batch, steps, threads, floor)
                eager = {r.chunk: r.p50_ms for r in measured if r.runtime == "eager"}
                for runtime, binary in runners.items():
                    measured += _cpp_rows(runtime, binary, export_dir, signature, feeds,
                                          options, threads, floor, eager)  # fmt: skip
                rows += measured
                if progress:
                    progress(1)
    return rows


def _label(runtime: str, provider: str) -> str:
    return runtime if provider == "cpu" else f"{runtime}[{provider}]"


def _torch_device(provider: str) -> str | None:
    """The torch device for a provider name; None for providers torch has no device for."""
    return provider if provider == "cpu" or provider.startswith("cuda") else None


_RUNNER_BENCH = re.compile(r"p50 ([\d.]+) us, p90 ([\d.]+) us, p99 ([\d.]+) us")


def _cpp_rows(runtime: str, binary: Any, export_dir: Any, signature: Any, feeds: dict,
              options: BenchOptions, threads: int, floor: float | None,
              eager: dict[int | None, float]) -> list[BenchRow]:  # fmt: skip
    """The C++ runner's own --bench, in a separate process (so not interleaved with Python)."""
    import subprocess
    import tempfile

    data = signature.data_inputs
    if len(data) != 1 or data[0].dtype != "float32":
        return []  # the runners take one float32 data input (states start at zero)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "input.npy")
        np.save(path, feeds[data[0].name])
        batch = feeds[data[0].name].shape[data[0].dims.index("batch")]
        steps = feeds[data[0].name].shape[data[0].dims.index("time")]
        for chunk in options.chunks or (None,):
            command = [str(binary), str(export_dir), path, "--bench", str(options.repeats)]
            command += ["--threads", str(threads)] + (["--chunk", str(chunk)] if chunk else [])
            done = subprocess.run(command, capture_output=True, text=True)
            match = _RUNNER_BENCH.search(done.stdout)
            if done.returncode != 0 or match is None:
                raise RnnxError(
                    f"{binary}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}"
                )
            p50, p90, p99 = (float(v) / 1e3 for v in match.groups())
            frames = chunk or steps
            rows.append(BenchRow(
                runtime=runtime, providers="cpu", batch=batch, time=steps, threads=threads,
                chunk=chunk, p50_ms=p50, p90_ms=p90, p99_ms=p99, repeats=options.repeats,
                sequences_per_s=batch / (p50 / 1e3), frames_per_s=batch * frames / (p50 / 1e3),
                ratio_to_eager=p50 / eager[chunk] if chunk in eager else None,
                floor_ms=floor if not chunk else None,
                times_floor=p50 / floor if floor and not chunk else None,
                real_time_factor=(p50 / 1e3) / (chunk / options.frame_rate) if chunk else None,
            ))  # fmt: skip
    return rows


# How to get each runtime that an export or this machine lacks.
_HOW = {
    "eager": "export from a checkpoint, or pass the model as reference=",
    "torchscript": "export with --format torchscript or all",
    "onnxruntime": "export with --format onnx or all",
    "onnxruntime-int8": "export with --quantize int8 (LSTM layers and MatMuls only)",
    "cpp-onnxruntime": "build the C++ runners with `rnnx cpp build`",
    "cpp-torchscript": "build the C++ runners with `rnnx cpp build`",
}


def _select_runtimes(
    wanted: Sequence[str] | None, export_dir: Any, manifest: dict, reference: Any
) -> tuple[list[str], dict[str, Any]]:
    """(Python runtimes, C++ runner paths) to measure; see BenchOptions.runtimes."""
    from rnnx.cpp_build import RUNNERS, SOURCE_DIR
    from rnnx.exporter.manifest import artifact_paths

    unknown = [r for r in wanted or () if r not in _HOW]
    if unknown:
        raise RnnxError(f"unknown runtime {unknown[0]!r}; expected one of {', '.join(_HOW)}")
    artifacts = artifact_paths(export_dir, manifest)
    runners = {r: SOURCE_DIR / "build" / RUNNERS[CPP_RUNTIMES[r]] for r in CPP_RUNTIMES}
    available = {
        "eager": reference is not None or bool(manifest.get("source")),
        "torchscript": "torchscript" in artifacts,
        "onnxruntime": "onnx" in artifacts,
        "onnxruntime-int8": "onnx_int8" in artifacts,
        # The runners take the ONNX or TorchScript file, and one float32 data input.
        "cpp-onnxruntime": runners["cpp-onnxruntime"].is_file() and "onnx" in artifacts,
        "cpp-torchscript": runners["cpp-torchscript"].is_file() and "torchscript" in artifacts,
    }
    missing = [r for r in wanted or ("eager",) if not available[r]]
    if missing:
        raise RnnxError(
            f"runtime {missing[0]} is not available for '{export_dir}': {_HOW[missing[0]]}"
        )
    chosen = [r for r in wanted or _HOW if available[r]]
    return [r for r in chosen if r in PYTHON_RUNTIMES], {
        r: runners[r] for r in chosen if r in CPP_RUNTIMES
    }


def _open(runtime: str, export_dir: Any, provider: str, threads: int, reference: Any) -> Any:
    from rnnx.runtimes import load

    if runtime == "onnxruntime-int8":
        return load(
            export_dir,
            "onnxruntime",
            provider=provider,
            threads=threads,
            inter_op_threads=1,
            artifact="onnx_int8",
        )
    if runtime == "onnxruntime":
        return load(export_dir, runtime, provider=provider, threads=threads, inter_op_threads=1)
    device = _torch_device(provider) or "cpu"
    return load(
        export_dir, runtime, provider=device, reference=reference if runtime == "eager" else None
    )


def _stream_calls(session: Any, feeds: dict, batch: int, chunks: Sequence[int]) -> dict:
    """One timed call = one chunk through a stream (state carried, as in serving)."""
    signature = session.signature
    calls = {}
    for chunk in chunks:
        stream = session.stream(batch)
        piece = {}
        for tensor in signature.data_inputs:
            axis = tensor.dims.index("time")
            piece[tensor.name] = np.ascontiguousarray(
                np.take(feeds[tensor.name], range(chunk), axis)
            )
        calls[chunk] = lambda stream=stream, piece=piece: stream.step(piece)
    return calls


def _measure(
    calls: dict,
    sessions: dict,
    options: BenchOptions,
    batch: int,
    steps: int,
    threads: int,
    floor: float | None,
) -> list[BenchRow]:
    rows = []
    chunk_sizes = next(iter(calls.values())).keys()
    for chunk in chunk_sizes:
        samples: dict[str, list[float]] = {r: [] for r in calls}
        for _ in range(options.warmup):
            for r in calls:
                calls[r][chunk]()
        started = time.perf_counter()
        rounds = 0
        while rounds < options.repeats or time.perf_counter() - started < options.min_seconds * len(
            calls
        ):
            for r in calls:  # interleaved: every round times each runtime once
                t0 = time.perf_counter()
                calls[r][chunk]()
                samples[r].append(time.perf_counter() - t0)
            rounds += 1
        eager_p50 = float(np.median(samples["eager"])) if "eager" in samples else None
        frames = chunk if chunk else steps
        for r, values in samples.items():
            ms = np.array(values) * 1e3
            p50 = float(np.percentile(ms, 50))
            rows.append(
                BenchRow(
                    runtime=r,
                    providers=",".join(sessions[r].providers),
                    batch=batch,
                    time=steps,
                    threads=threads,
                    chunk=chunk,
                    p50_ms=p50,
                    p90_ms=float(np.percentile(ms, 90)),
                    p99_ms=float(np.percentile(ms, 99)),
                    repeats=len(values),
                    sequences_per_s=batch / (p50 / 1e3),
                    frames_per_s=batch * frames / (p50 / 1e3),
                    ratio_to_eager=p50 / (eager_p50 * 1e3) if eager_p50 else None,
                    # The floor is fp32 arithmetic and bytes: it does not bound an int8 model.
                    floor_ms=floor if not chunk and "int8" not in r else None,
                    times_floor=p50 / floor if floor and not chunk and "int8" not in r else None,
                    real_time_factor=(p50 / 1e3) / (chunk / options.frame_rate) if chunk else None,
                )
            )
    return rows


# --- the machine's limit -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Machine:
    matmul_gflops: float  # fp32, one thread, large square matmul
    bandwidth_gbs: dict[int, float]  # bytes touched per pass -> GB/s for reading that many bytes


_MACHINE: Machine | None = None


def measure_machine() -> Machine:
    """This machine's fp32 matmul rate and read bandwidth at several working-set sizes (once)."""
    global _MACHINE
    if _MACHINE is None:
        import torch

        a = torch.randn(512, 512)
        b = torch.randn(512, 512)
        seconds = _best(lambda: torch.mm(a, b), 20)
        gflops = 2 * 512**3 / seconds / 1e9
        bandwidth = {}
        for size in (1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26):
            buffer = torch.ones(size // 4)
            bandwidth[size] = size / _best(lambda buffer=buffer: buffer.sum(), 10) / 1e9
        _MACHINE = Machine(gflops, bandwidth)
    return _MACHINE


def _best(function: Callable[[], Any], repeats: int) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - t0)
    return best


def layer_cost(spec: Any, batch: int, steps: int) -> tuple[float, float]:
    """(FLOPs, bytes of recurrent weights and states read per time step) of a bare layer."""
    from rnnx.exporter.spec import GATES

    gates = GATES[spec.kind] * spec.hidden_size
    flops = 0.0
    recurrent_bytes = 0.0
    for layer in range(spec.num_layers):
        layer_input = spec.input_size if layer == 0 else spec.output_size * spec.num_directions
        per_direction = 2 * batch * gates * (layer_input + spec.output_size)
        per_direction += 2 * batch * spec.proj_size * spec.hidden_size
        flops += per_direction * spec.num_directions * steps
        weights = gates * spec.output_size + spec.proj_size * spec.hidden_size
        state = batch * (spec.hidden_size + spec.output_size)
        recurrent_bytes += 4 * (weights + state) * spec.num_directions
    return flops, recurrent_bytes


def _floor_ms(spec: Any, batch: int, steps: int, machine: Machine) -> float:
    flops, per_step_bytes = layer_cost(spec, batch, steps)
    compute = flops / (machine.matmul_gflops * 1e9)
    # The recurrent weights must be read every step; their bandwidth is that of a working set
    # of their size (cache-resident for small layers, memory for large ones).
    size = min(machine.bandwidth_gbs, key=lambda s: abs(np.log(s / max(per_step_bytes, 1))))
    memory = steps * per_step_bytes / (machine.bandwidth_gbs[size] * 1e9)
    return max(compute, memory) * 1e3


# (header, width, cell) of the printed table
_COLUMNS: list[tuple[str, str, Callable[[BenchRow], str]]] = [
    ("runtime", "<18", lambda r: r.runtime),
    ("batch", ">5", lambda r: str(r.batch)),
    ("time", ">5", lambda r: str(r.time)),
    ("thr", ">3", lambda r: str(r.threads)),
    ("chunk", ">5", lambda r: str(r.chunk) if r.chunk else "-"),
    ("p50 ms", ">9", lambda r: f"{r.p50_ms:.3f}"),
    ("p90 ms", ">9", lambda r: f"{r.p90_ms:.3f}"),
    ("p99 ms", ">9", lambda r: f"{r.p99_ms:.3f}"),
    ("frames/s", ">10", lambda r: f"{r.frames_per_s:.0f}"),
    (
        "vs eager",
        ">8",
        lambda r: f"{r.ratio_to_eager:.2f}x" if r.ratio_to_eager is not None else "-",
    ),
    ("x floor", ">7", lambda r: f"{r.times_floor:.1f}" if r.times_floor is not None else "-"),
    ("RTF", ">6", lambda r: f"{r.real_time_factor:.3f}" if r.real_time_factor is not None else "-"),
    ("providers", "<", lambda r: r.providers),
]


def format_table(rows: Iterable[BenchRow]) -> str:
    def line(cells: Iterable[str]) -> str:
        return " ".join(f"{c:{w}}" for c, (_, w, _) in zip(cells, _COLUMNS)).rstrip()

    header = line(h for h, _, _ in _COLUMNS)
    body = [line(cell(r) for _, _, cell in _COLUMNS) for r in rows]
    return "\n".join([header, "-" * len(header), *body])


def configurations(options: BenchOptions) -> int:
    """How many (threads, batch, time) configurations `bench` will measure (for progress)."""
    return len(options.threads) * len(options.batches) * len(options.times)


def write_csv(rows: Sequence[BenchRow], path: str | os.PathLike) -> None:
    import csv

    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0].to_dict()))
        writer.writeheader()
        writer.writerows(r.to_dict() for r in rows)


def plot(rows: Sequence[BenchRow], path: str | os.PathLike, title: str = "") -> None:
    """Bar chart of p50 latency per configuration and runtime (needs matplotlib: [plot] extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise RnnxError("--plot needs matplotlib: pip install 'rnnx[plot]'") from error
    labels = list(dict.fromkeys(_config_label(r) for r in rows))
    runtimes = list(dict.fromkeys(r.runtime for r in rows))
    width = 0.8 / len(runtimes)
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(labels)), 4))
    for i, runtime in enumerate(runtimes):
        by_label = {_config_label(r): r.p50_ms for r in rows if r.runtime == runtime}
        xs = [j + i * width for j, label in enumerate(labels) if label in by_label]
        axes.bar(
            xs, [by_label[label] for label in labels if label in by_label], width, label=runtime
        )
    axes.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels, fontsize=8)
    axes.set_ylabel("p50 latency (ms)")
    axes.set_yscale("log")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _config_label(row: BenchRow) -> str:
    chunk = f" chunk {row.chunk}" if row.chunk else ""
    return f"b{row.batch}×t{row.time}{chunk}\n{row.threads} thr"
